/* The drisk command: finds the command named by argv[1] and hands it the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "data/store.h"
#include "base/log.h"
#include "base/progress.h"
#include "base/text.h"

static const struct drisk_command *const commands[] = {
    &drisk_cmd_simulate,
    &drisk_cmd_import,
    &drisk_cmd_stats,
    &drisk_cmd_train,
    &drisk_cmd_retrain,
    &drisk_cmd_eval,
    &drisk_cmd_report,
    &drisk_cmd_recalibrate,
    &drisk_cmd_export,
    &drisk_cmd_models,
    &drisk_cmd_keys,
    &drisk_cmd_serve,
    &drisk_cmd_checkpoint,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

int drisk_exit_code(enum drisk_status status)
{
    return status == DRISK_OK ? 0
           : status == DRISK_EINVAL || status == DRISK_ESCHEMA || status == DRISK_ENOTFOUND ? 2
                                                                                            : 1;
}

int drisk_fail(const char *cmd, const struct drisk_error *err)
{
    fprintf(stderr, "drisk %s: %s\n", cmd, err->msg[0] ? err->msg : drisk_status_name(err->status));
    return drisk_exit_code(err->status);
}

int drisk_cli_open_store(const char *cmd, const char *path, int must_exist,
                         struct drisk_store **store)
{
    struct drisk_error err;
    drisk_error_clear(&err);
    if (must_exist && !drisk_store_is_server(path) && access(path, F_OK) != 0) {
        fprintf(stderr, "drisk %s: %s does not exist: create it with drisk simulate or drisk "
                "import\n", cmd, path);
        return 2;
    }
    if (drisk_store_open(path, store, &err))
        return drisk_fail(cmd, &err);
    return 0;
}

void drisk_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else if (*p < 0x80) {
            fputc(*p, f);
        } else {
            /* Copy a whole valid UTF-8 sequence; a byte that starts none (a file name in
             * another encoding) becomes U+FFFD, so the output is always valid JSON. */
            size_t n = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
            if (strnlen((const char *)p, n) == n && drisk_utf8_valid((const char *)p, n)) {
                fwrite(p, 1, n, f);
                p += n - 1;
            } else {
                fputs("\\ufffd", f);
            }
        }
    }
    fputc('"', f);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: drisk COMMAND [OPTIONS]\n\n"
               "drisk predicts which parcels will be late or lost, from shipments and their\n"
               "carrier tracking scans.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\nRun drisk COMMAND --help for a command's options and their defaults.\n"
               "--db can also come from the environment as DRISK_DB.\n"
               "Exit status: 0 success, 2 bad usage or bad input, 1 other failures.\n"
               "Set DRISK_LOG_LEVEL to error, warn, info (default) or debug.\n"
               "Long steps report done/total, rate and ETA on stderr (a live line on a\n"
               "terminal, a line every 10 s otherwise, or every DRISK_PROGRESS_EVERY seconds);\n"
               "--quiet, with any command, turns it off.\n");
}

int main(int argc, char **argv)
{
    const char *level = getenv("DRISK_LOG_LEVEL");
    if (level && drisk_log_set_level(level) != 0) {
        fprintf(stderr, "drisk: DRISK_LOG_LEVEL=%s is not one of error, warn, info, debug\n", level);
        return 2;
    }
    /* --quiet, anywhere: no progress lines; else a live line on a terminal, a plain line
     * every 10 s otherwise (base/progress.h) */
    int quiet = 0, k = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quiet") == 0)
            quiet = 1;
        else
            argv[k++] = argv[i];
    }
    argc = k;
    argv[argc] = NULL;
    drisk_progress_mode = quiet                    ? DRISK_PROGRESS_OFF
                          : isatty(STDERR_FILENO) ? DRISK_PROGRESS_LIVE
                                                  : DRISK_PROGRESS_PLAIN;
    const char *every = getenv("DRISK_PROGRESS_EVERY");
    if (every) {
        char *end;
        double v = strtod(every, &end);
        if (*end || !(v >= 0 && v <= 86400)) {
            fprintf(stderr, "drisk: DRISK_PROGRESS_EVERY=%s is not a number of seconds from 0 "
                    "to 86400\n", every);
            return 2;
        }
        drisk_progress_plain_s = v;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("drisk 0.1.0 (store schema %d)\n", drisk_store_schema_version());
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i]->name) != 0)
            continue;
        struct drisk_args args;
        int rc = drisk_args_parse(commands[i], argc - 2, argv + 2, &args);
        if (rc == 1)
            return 0;
        if (rc)
            return rc;
        return commands[i]->run(&args);
    }
    fprintf(stderr, "drisk: unknown command \"%s\" (run drisk --help for the list)\n", argv[1]);
    return 2;
}
