/* The webhook delivery worker (api/webhooks.h): libcurl's multi interface drives up to
 * `concurrency` POSTs at once from one thread, so a slow receiver costs a connection slot,
 * never a scoring thread. An attempt's result is written when it ends (the results of one
 * wake-up in one transaction); until then the delivery stays pending in the store, so a
 * crash mid-attempt means it is attempted again at the next start: at least once. */
#include "api/webhooks.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sha256.h"
#include "base/timeutil.h"
#include "data/outbox.h"

#define PER_ENDPOINT 8          /* attempts in flight to one endpoint */
#define BACKOFF_CAP_S 3600.0
#define IDLE_POLL_MS 250        /* the outbox is read this often without a poke */
#define CLAIM_SLACK_MS 30000    /* a claimed delivery is due again an attempt's timeout and
                                 * this after its claim (its sender died, or its result was
                                 * not written) */

const char *const wh_event_types[] = { "alert.opened", "alert.escalated", "alert.cleared",
                                       "recommendation.created", "recommendation.changed",
                                       "recommendation.closed", NULL };

struct xfer {
    CURL *h;
    struct curl_slist *headers;
    char *body;
    int64_t id, webhook_id, event_created_at;
    int attempts;
    int refused;            /* the address was not public (SSRF guard) */
    size_t answered;        /* bytes of the answer read (discarded) */
    char errbuf[CURL_ERROR_SIZE];
    struct wh_worker *w;
};

struct wh_worker {
    struct wh_options o;
    struct drisk_store *st;
    CURLM *multi;
    pthread_t thread;
    atomic_int stopping;
    struct xfer **live;     /* attempts in flight */
    size_t n_live;
    unsigned seed;
    struct wh_stats stats;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- addresses: what is not public ---- */

static int private_v4(uint32_t a) /* host order */
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||  /* this, private, loopback */
           (a >> 16) == 0xa9fe || (a >> 20) == 0xac1 ||               /* 169.254/16, 172.16/12 */
           (a >> 16) == 0xc0a8 || (a >> 22) == (100u << 2 | 1) ||     /* 192.168/16, 100.64/10 */
           (a >> 8) == 0xc00000 || (a >> 17) == (0xc612u >> 1) ||     /* 192.0.0/24, 198.18/15 */
           (a >> 28) >= 0xe;                                          /* multicast, reserved */
}

static int private_addr(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return private_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6)
        return 1;
    const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b };
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return private_v4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
    int zero = 1;
    for (int i = 0; i < 15; i++)
        zero &= b[i] == 0;
    return (zero && b[15] <= 1) ||            /* :: and ::1 */
           (b[0] & 0xfe) == 0xfc ||           /* fc00::/7 unique local */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
           b[0] == 0xff;                      /* multicast */
}

/* libcurl's socket opener: the resolved address is checked before any byte leaves. */
static curl_socket_t open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = ctx;
    (void)purpose;
    if (!x->w->o.allow_private && private_addr(&a->addr)) {
        x->refused = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

int wh_check_url(const char *url, int allow_private, struct api_error *e)
{
    pthread_once(&curl_once, curl_init);
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;
    if (!u)
        return api_fail(e, 503, "out_of_memory", "out of memory");
    if (strlen(url) >= DRISK_WEBHOOK_URL_MAX) {
        api_fail(e, 422, "invalid_url", "url: at most %d characters", DRISK_WEBHOOK_URL_MAX - 1);
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        api_fail(e, 422, "invalid_url", "url: \"%.200s\" is not an absolute http(s) URL with a host",
                 url);
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        api_fail(e, 422, "invalid_url", "url: scheme \"%.20s\" is not allowed: use http or https",
                 scheme);
        goto out;
    }
    if (!allow_private) {
        char lit[64] = "";
        size_t n = strlen(host);
        if (host[0] == '[' && n > 2 && n - 2 < sizeof lit)
            memcpy(lit, host + 1, n - 2), lit[n - 2] = '\0';
        else if (n < sizeof lit)
            memcpy(lit, host, n + 1);
        struct sockaddr_in v4 = { .sin_family = AF_INET };
        struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
        int is_private = 0;
        /* inet_aton, not inet_pton: it also reads 127.1, 2130706433 and 0x7f.0.0.1, which
         * resolvers accept as addresses too */
        if (inet_aton(lit, &v4.sin_addr))
            is_private = private_addr((struct sockaddr *)&v4);
        else if (inet_pton(AF_INET6, lit, &v6.sin6_addr) == 1)
            is_private = private_addr((struct sockaddr *)&v6);
        else
            is_private = strcasecmp(host, "localhost") == 0 ||
                         (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0);
        if (is_private) {
            api_fail(e, 422, "invalid_url", "url: host %.100s is a loopback, private or reserved "
                     "address: webhooks go to public addresses (drisk serve "
                     "--webhook-allow-private lifts this)", host);
            goto out;
        }
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

void wh_sign(const char *secret, int64_t t, const char *body, size_t len,
             char out[WH_SIGNATURE_MAX])
{
    char ts[24];
    int n = snprintf(ts, sizeof ts, "%lld.", (long long)t);
    const void *parts[2] = { ts, body };
    const size_t lens[2] = { (size_t)n, len };
    unsigned char mac[DRISK_SHA256_BYTES];
    char hex[2 * DRISK_SHA256_BYTES + 1];
    drisk_hmac_sha256_parts(secret, strlen(secret), parts, lens, 2, mac);
    drisk_hex(mac, sizeof mac, hex);
    snprintf(out, WH_SIGNATURE_MAX, "t=%lld,v1=%s", (long long)t, hex);
}

const struct wh_stats *wh_stats(const struct wh_worker *w)
{
    return &w->stats;
}

/* ---- attempts ---- */

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    struct xfer *x = ctx;
    (void)p;
    x->answered += size * n; /* read and dropped: only the status counts */
    return size * n;
}

static void xfer_free(struct xfer *x)
{
    if (!x)
        return;
    if (x->h)
        curl_easy_cleanup(x->h);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
}

/* The event's body: {"id", "type", "created_at", "data"}; the same bytes on every
 * attempt. */
static char *event_body(const struct drisk_delivery *d, size_t *len)
{
    char ts[DRISK_TS_BUF];
    drisk_ts_format(d->event_created_at, ts);
    const char *data = d->data ? d->data : "{}";
    size_t cap = strlen(data) + 160;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    int n = snprintf(b, cap, "{\"id\":\"evt_%lld\",\"type\":\"%s\",\"created_at\":\"%s\",\"data\":%s}",
                     (long long)d->event_id, d->type, ts, data);
    *len = (size_t)n;
    return b;
}

static int in_flight(const struct wh_worker *w, int64_t id, int64_t webhook, int *to_endpoint)
{
    int found = 0;
    *to_endpoint = 0;
    for (size_t i = 0; i < w->n_live; i++) {
        found |= w->live[i]->id == id;
        *to_endpoint += w->live[i]->webhook_id == webhook;
    }
    return found;
}

struct due_ctx {
    struct wh_worker *w;
    struct xfer **start; /* the attempts to start, collected while the statement runs */
    size_t n, cap;
};

static int take_due(const struct drisk_delivery *d, void *ctx)
{
    struct due_ctx *c = ctx;
    struct wh_worker *w = c->w;
    int to_endpoint;
    if (in_flight(w, d->id, d->webhook_id, &to_endpoint) || to_endpoint >= PER_ENDPOINT)
        return 0;
    for (size_t i = 0; i < c->n; i++) /* one endpoint's share within this batch too */
        to_endpoint += c->start[i]->webhook_id == d->webhook_id;
    if (to_endpoint >= PER_ENDPOINT)
        return 0;
    if (c->n == c->cap)
        return 1;
    struct xfer *x = calloc(1, sizeof *x);
    if (!x)
        return 1;
    x->w = w;
    x->id = d->id;
    x->webhook_id = d->webhook_id;
    x->event_created_at = d->event_created_at;
    x->attempts = d->attempts + 1;
    size_t len = 0;
    char sig[WH_SIGNATURE_MAX], hdr[WH_SIGNATURE_MAX + 32], idh[64];
    int64_t t = (int64_t)time(NULL);
    struct curl_slist *h = NULL;
    if (!(x->body = event_body(d, &len)) || !(x->h = curl_easy_init())) {
        xfer_free(x);
        return 1;
    }
    wh_sign(d->secret, t, x->body, len, sig);
    snprintf(hdr, sizeof hdr, "Drisk-Signature: %s", sig);
    snprintf(idh, sizeof idh, "Drisk-Event-Id: evt_%lld", (long long)d->event_id);
    const char *fixed[] = { "Content-Type: application/json", "User-Agent: drisk-webhooks/1",
                            "Expect:", hdr, idh };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        struct curl_slist *n = curl_slist_append(h, fixed[i]);
        if (!n) {
            curl_slist_free_all(h);
            xfer_free(x);
            return 1;
        }
        h = n;
    }
    x->headers = h;
    CURL *e = x->h;
    long timeout_ms = (long)(w->o.timeout_s * 1000);
    curl_easy_setopt(e, CURLOPT_URL, d->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);   /* a redirect is an answer, not a hop */
    curl_easy_setopt(e, CURLOPT_PROXY, "");            /* no proxy from the environment */
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    c->start[c->n++] = x;
    return 0;
}

/* Reads due deliveries and starts as many as there is room for. */
static void start_due(struct wh_worker *w)
{
    size_t room = w->o.concurrency > w->n_live ? w->o.concurrency - w->n_live : 0;
    if (!room)
        return;
    struct xfer *start[64];
    struct due_ctx c = { w, start, 0, room < 64 ? room : 64 };
    struct drisk_error err = { 0 };
    int64_t now = now_ms();
    if (drisk_outbox_due(w->st, now, (int)(c.cap + w->n_live), take_due, &c, &err)) {
        DRISK_LOG(DRISK_LOG_WARN, "webhooks: %s", err.msg);
        for (size_t i = 0; i < c.n; i++)
            xfer_free(start[i]);
        return;
    }
    if (!c.n)
        return;
    /* each delivery goes from one node: the others' workers read it as due too */
    int64_t until = now + (int64_t)(w->o.timeout_s * 1000) + CLAIM_SLACK_MS;
    for (size_t i = 0; i < c.n; i++) {
        int claimed = 0;
        if (drisk_outbox_claim(w->st, start[i]->id, now, until, &claimed, &err) || !claimed) {
            if (err.msg[0])
                DRISK_LOG(DRISK_LOG_WARN, "webhooks: %s", err.msg);
            xfer_free(start[i]);
            continue;
        }
        if (curl_multi_add_handle(w->multi, start[i]->h) != CURLM_OK) {
            xfer_free(start[i]); /* still pending: attempted again when its claim ends */
            continue;
        }
        w->live[w->n_live++] = start[i];
    }
}

/* The delay before attempt `attempts + 1`: base * 2^(attempts - 1), capped, times a
 * uniform jitter in [0.5, 1.5) so that receivers coming back are not hit in lockstep. */
static double backoff_s(struct wh_worker *w, int attempts)
{
    double d = w->o.retry_base_s * pow(2.0, attempts > 1 ? attempts - 1 : 0);
    if (d > BACKOFF_CAP_S)
        d = BACKOFF_CAP_S;
    return d * (0.5 + (double)rand_r(&w->seed) / ((double)RAND_MAX + 1.0));
}

static void finish(struct wh_worker *w, struct xfer *x, CURLcode res)
{
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    int64_t now = (int64_t)time(NULL);
    struct drisk_error err = { 0 };
    char why[256] = "";
    int status;
    int64_t next = 0;
    enum drisk_status rc;
    if (res == CURLE_OK && code >= 200 && code < 300) {
        status = DRISK_DELIVERY_DELIVERED;
        atomic_fetch_add(&w->stats.delivered, 1);
    } else {
        if (x->refused) {
            snprintf(why, sizeof why, "refused: the address is loopback, private or reserved "
                     "(drisk serve --webhook-allow-private lifts this)");
            atomic_fetch_add(&w->stats.refused, 1);
        } else if (res != CURLE_OK) {
            snprintf(why, sizeof why, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(res));
        } else {
            snprintf(why, sizeof why, "the receiver answered %ld", code);
        }
        if (res == CURLE_OK && code == 410) {
            rc = drisk_outbox_result(w->st, x->id, DRISK_DELIVERY_DISABLED, 0, (int)code,
                                     "410 Gone: the endpoint is disabled", now, &err);
            if (!rc)
                rc = drisk_webhook_disable(w->st, x->webhook_id,
                                           "the receiver answered 410 Gone", now, &err);
            atomic_fetch_add(&w->stats.disabled, 1);
            if (rc)
                DRISK_LOG(DRISK_LOG_WARN, "webhooks: %s", err.msg);
            else
                DRISK_LOG(DRISK_LOG_INFO, "webhook endpoint %lld disabled: it answered 410 Gone",
                          (long long)x->webhook_id);
            return;
        }
        double delay = backoff_s(w, x->attempts);
        double age = (double)(now - x->event_created_at) + delay;
        if (age > w->o.retry_for_s) {
            status = DRISK_DELIVERY_FAILED;
            atomic_fetch_add(&w->stats.failed, 1);
        } else {
            status = DRISK_DELIVERY_PENDING;
            next = now_ms() + (int64_t)(delay * 1000);
            atomic_fetch_add(&w->stats.retried, 1);
        }
    }
    if (drisk_outbox_result(w->st, x->id, status, next, (int)code, why, now, &err))
        DRISK_LOG(DRISK_LOG_WARN, "webhooks: %s (the attempt is made again)", err.msg);
}

static void *run(void *arg)
{
    struct wh_worker *w = arg;
    while (!atomic_load(&w->stopping)) {
        start_due(w);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *m;
        int left, in_tx = 0, finished = 0;
        struct drisk_error err = { 0 };
        while ((m = curl_multi_info_read(w->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            /* the results of one wake-up in one transaction */
            if (!in_tx)
                in_tx = drisk_store_begin(w->st, &err) == DRISK_OK ? 1 : -1;
            struct xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode res = m->data.result;
            curl_multi_remove_handle(w->multi, m->easy_handle);
            finish(w, x, res);
            finished++;
            for (size_t i = 0; i < w->n_live; i++)
                if (w->live[i] == x) {
                    w->live[i] = w->live[--w->n_live];
                    break;
                }
            xfer_free(x);
        }
        if (in_tx > 0 && drisk_store_commit(w->st, &err)) {
            drisk_store_rollback(w->st); /* still pending: attempted again */
            DRISK_LOG(DRISK_LOG_WARN, "webhooks: %s", err.msg);
        }
        /* attempts ended: those waiting behind them (the same shipment's next event, an
         * endpoint's share) may go now, without waiting for the idle poll */
        if (finished)
            continue;
        /* woken by a transfer, by wh_poke, or after the idle poll */
        curl_multi_poll(w->multi, NULL, 0, IDLE_POLL_MS, NULL);
    }
    for (size_t i = 0; i < w->n_live; i++) {
        curl_multi_remove_handle(w->multi, w->live[i]->h);
        xfer_free(w->live[i]);
    }
    w->n_live = 0;
    return NULL;
}

int wh_start(const char *db_path, const struct wh_options *o, struct wh_worker **out,
             struct api_error *e)
{
    pthread_once(&curl_once, curl_init);
    struct wh_worker *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w)
        return api_fail(e, 503, "out_of_memory", "out of memory starting webhooks");
    w->o = *o;
    if (w->o.retry_base_s <= 0)
        w->o.retry_base_s = 30;
    if (w->o.retry_for_s <= 0)
        w->o.retry_for_s = 86400;
    if (w->o.timeout_s <= 0)
        w->o.timeout_s = 10;
    if (!w->o.concurrency)
        w->o.concurrency = 16;
    w->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    struct drisk_error err = { 0 };
    if (!(w->live = calloc(w->o.concurrency, sizeof *w->live)) || !(w->multi = curl_multi_init())) {
        api_fail(e, 503, "out_of_memory", "out of memory starting webhooks");
        goto fail;
    }
    if (drisk_store_open(db_path, &w->st, &err)) {
        api_fail_from(e, 503, "store_unavailable", &err);
        goto fail;
    }
    /* delivery state can be rebuilt by attempting again: no fsync of its own, and the
     * checkpoints are left to the request threads' commits (one ran from the worker's
     * commit now and then, and held deliveries up for half a second on a slow disk) */
    drisk_store_set_synchronous(w->st, 1);
    drisk_store_set_autocheckpoint(w->st, 0);
    if (pthread_create(&w->thread, NULL, run, w)) {
        api_fail(e, 503, "no_thread", "cannot start the webhook thread: %s", strerror(errno));
        goto fail;
    }
    *out = w;
    return 0;
fail:
    if (w->multi)
        curl_multi_cleanup(w->multi);
    drisk_store_free(w->st);
    free(w->live);
    free(w);
    return -1;
}

void wh_poke(void *worker)
{
    struct wh_worker *w = worker;
    if (w)
        curl_multi_wakeup(w->multi);
}

void wh_stop(struct wh_worker *w)
{
    if (!w)
        return;
    atomic_store(&w->stopping, 1);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    curl_multi_cleanup(w->multi);
    drisk_store_free(w->st);
    free(w->live);
    free(w);
}
