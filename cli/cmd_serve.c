/* drisk serve: the HTTP scoring server, in the foreground until SIGTERM or SIGINT, on
 * which it stops accepting, finishes the requests in flight and closes the store. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/server.h"
#include "data/store.h"
#include "cli/commands.h"
#include "base/log.h"

static const struct drisk_opt serve_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database (simulated or imported history, trained models)" },
    { "listen", DRISK_OPT_STRING, 0, "HOST:PORT", "127.0.0.1:8080", 0, 0, "address to listen on (port 0: any free port)" },
    { "threads", DRISK_OPT_INT, 0, "N", "0", 0, 256, "worker threads (0: one per core)" },
    { "max-connections", DRISK_OPT_INT, 0, "N", "1024", 1, 100000, "open connections at most" },
    { "timeout", DRISK_OPT_INT, 0, "SECONDS", "30", 1, 3600, "close connections idle this long" },
    { "max-connections-per-ip", DRISK_OPT_INT, 0, "N", "256", 1, 100000, "open connections from one address at most" },
    { "header-timeout", DRISK_OPT_INT, 0, "SECONDS", "10", 1, 3600, "close a connection whose request headers are not in after this long (slow clients), or idle this long between requests" },
    { "max-body", DRISK_OPT_INT, 0, "BYTES", "1048576", 1024, 67108864, "largest request body accepted" },
    { "sweep", DRISK_OPT_INT, 0, "SECONDS", "300", 0, 86400, "re-score open shipments this often (0: never)" },
    { "access-log", DRISK_OPT_STRING, 0, "FILE", "-", 0, 0, "one line per request to FILE (- for stderr, none to disable)" },
    { "access-log-format", DRISK_OPT_STRING, 0, "text|json", "text", 0, 0, "text: time ip method path status bytes ms merchant; json: one object per line" },
    { "webhook-allow-private", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "let webhook endpoints be loopback or private addresses (refused by default: SSRF)" },
    { "webhook-timeout", DRISK_OPT_INT, 0, "SECONDS", "10", 1, 300, "one webhook delivery attempt, connection included, at most this long" },
    { "webhook-retry-base", DRISK_OPT_INT, 0, "MS", "30000", 10, 3600000, "the first webhook retry's delay; doubled on each retry (capped at 1 h), with jitter" },
    { "webhook-retry-for", DRISK_OPT_INT, 0, "SECONDS", "86400", 1, 2592000, "retry a webhook event this long after it happened, then mark it failed" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static int stop_pipe[2] = { -1, -1 };

static void on_stop_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(stop_pipe[1], &b, 1) < 0) {
        /* the pipe is full: a stop is already pending */
    }
    errno = saved;
}

static int run_serve(const struct drisk_args *a)
{
    struct drisk_server_options o;
    memset(&o, 0, sizeof o);
    o.db_path = drisk_arg_str(a, "db");
    const char *listen = drisk_arg_str(a, "listen");
    char host[64];
    const char *colon = strrchr(listen, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || (size_t)(colon - listen) >= sizeof host || colon == listen || !colon[1] ||
        *end || port < 0 || port > 65535) {
        fprintf(stderr, "drisk serve: --listen %s: give HOST:PORT, e.g. 127.0.0.1:8080\n", listen);
        return 2;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    o.host = host;
    o.port = (uint16_t)port;
    o.threads = (unsigned)drisk_arg_int(a, "threads");
    o.max_connections = (unsigned)drisk_arg_int(a, "max-connections");
    o.timeout_s = (unsigned)drisk_arg_int(a, "timeout");
    o.max_connections_per_ip = (unsigned)drisk_arg_int(a, "max-connections-per-ip");
    o.header_timeout_s = (unsigned)drisk_arg_int(a, "header-timeout");
    o.max_body = (size_t)drisk_arg_int(a, "max-body");
    o.sweep_s = (double)drisk_arg_int(a, "sweep");
    o.webhook_allow_private = drisk_arg_flag(a, "webhook-allow-private");
    o.webhook_timeout_s = (double)drisk_arg_int(a, "webhook-timeout");
    o.webhook_retry_base_s = (double)drisk_arg_int(a, "webhook-retry-base") / 1000.0;
    o.webhook_retry_for_s = (double)drisk_arg_int(a, "webhook-retry-for");
    const char *fmt = drisk_arg_str(a, "access-log-format");
    if (strcmp(fmt, "text") != 0 && strcmp(fmt, "json") != 0) {
        fprintf(stderr, "drisk serve: --access-log-format must be text or json\n");
        return 2;
    }
    o.access_log_json = strcmp(fmt, "json") == 0;
    const char *log = drisk_arg_str(a, "access-log");
    FILE *logf = NULL;
    if (strcmp(log, "-") == 0) {
        o.access_log = stderr;
    } else if (strcmp(log, "none") != 0) {
        if (!(logf = fopen(log, "a"))) {
            fprintf(stderr, "drisk serve: cannot open --access-log %s: check the path\n", log);
            return 2;
        }
        setvbuf(logf, NULL, _IOLBF, 0);
        o.access_log = logf;
    }
    if (!drisk_store_is_server(o.db_path) && access(o.db_path, F_OK) != 0) {
        fprintf(stderr, "drisk serve: %s does not exist: create it with drisk simulate or drisk "
                "import, and train models with drisk train\n", o.db_path);
        if (logf)
            fclose(logf);
        return 2;
    }

    /* SIGTERM / SIGINT: a handler that writes the signal to a pipe the main thread reads.
     * (Blocking them for sigwait would not do: OpenBLAS starts its threads before main,
     * and a signal delivered to one of those would kill the process.) */
    if (pipe(stop_pipe) != 0) {
        fprintf(stderr, "drisk serve: cannot create a pipe: out of file descriptors?\n");
        if (logf)
            fclose(logf);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct drisk_server *srv;
    struct drisk_error err;
    drisk_error_clear(&err);
    enum drisk_status rc = drisk_server_start(&o, &srv, &err);
    if (rc) {
        if (logf)
            fclose(logf);
        return drisk_fail("serve", &err);
    }
    fprintf(stderr, "drisk serve: listening on http://%s:%u (Ctrl-C or SIGTERM to stop)\n", host,
            (unsigned)drisk_server_port(srv));
    unsigned char sig = 0;
    while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR)
        ;
    fprintf(stderr, "drisk serve: %s received, finishing requests in flight\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    drisk_server_stop(srv);
    if (logf)
        fclose(logf);
    fprintf(stderr, "drisk serve: stopped\n");
    return 0;
}

const struct drisk_command drisk_cmd_serve = {
    "serve", NULL,
    "run the HTTP scoring server (API v1: api/openapi.yaml)",
    "Replays the store's history into the network statistics, loads the active models and\n"
    "serves CONTRACT section 6's routes. Keys: drisk keys create. Stop with SIGTERM or Ctrl-C.",
    serve_opts, 0, run_serve,
};
