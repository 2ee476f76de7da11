/* The HTTP layer: libmicrohttpd with epoll and a thread pool, request bodies collected
 * under a size cap, bearer-key authentication scoped to a merchant, routing, JSON
 * errors, the access log and the metrics page. The work itself is api/service.c. */
#include "api/server.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "api/http.h"
#include "api/inbound.h"
#include "api/json.h"
#include "api/service.h"
#include "api/webhooks.h"
#include "data/live.h"
#include "engine/network.h"
#include "engine/vocab.h"
#include "base/timeutil.h"
#include "base/log.h"

#define MAX_BATCH 1000

static const char *const route_names[R_COUNT] = {
    "healthz", "metrics", "shipments_post", "shipment_get", "scans", "score", "alerts",
    "recommendations", "settings_get", "settings_put", "model_activate", "shipments_list",
    "alert_ack", "webhooks_post", "webhooks_list", "webhook_get", "webhook_delete",
    "webhook_deliveries", "webhook_redeliver", "inbound", "inbound_secret_put",
    "inbound_secret_delete", "recommendation_outcome", "other",
};

struct drisk_server {
    struct MHD_Daemon *d;
    struct svc *svc;
    struct wh_worker *hooks;
    struct drisk_server_options o;
    uint16_t port;
    int64_t started;
    atomic_llong requests[R_COUNT][4]; /* 2xx, 4xx, 5xx, aborted (no answer sent) */
    atomic_llong hist[R_COUNT][16];
    atomic_llong ns[R_COUNT]; /* total time per route */
    pthread_mutex_t log_lock;
    /* connections waiting for a request's headers, and the watchdog that cuts those past
     * the header deadline (a client sending a byte a second never reaches on_request, and
     * every byte restarts libmicrohttpd's idle timeout) */
    pthread_mutex_t conn_lock;
    struct conn_watch *conns;
    pthread_t watchdog;
    int watchdog_up, stopping;
    pthread_cond_t watchdog_cond;
    atomic_llong header_timeouts;
};

struct conn_watch {
    int fd;
    int in_request; /* its request's headers are in: on_request has it */
    int cut;        /* shut down by the watchdog */
    double since;   /* waiting for headers since (monotonic s) */
    struct conn_watch *prev, *next;
};

/* ---- routes ---- */

static cJSON *health_json(struct drisk_server *srv)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON *m = cJSON_AddObjectToObject(o, "models");
    struct svc_model_set *ms = svc_models_acquire(srv->svc);
    for (int k = 0; k < DRISK_TARGET_COUNT; k++)
        if (ms && ms->scorer.id[k])
            cJSON_AddNumberToObject(m, drisk_target_name((enum drisk_target)k), (double)ms->scorer.id[k]);
        else
            cJSON_AddNullToObject(m, drisk_target_name((enum drisk_target)k));
    svc_models_release(ms);
    cJSON_AddNumberToObject(o, "uptime_s", (double)(time(NULL) - srv->started));
    return o;
}

static void put_hist(struct api_text *t, const char *name, const char *labels, atomic_llong *h,
                     long long total_ns)
{
    size_t nb;
    const double *b = svc_latency_bounds(&nb);
    long long cum = 0;
    for (size_t k = 0; k <= nb; k++) {
        cum += atomic_load_explicit(&h[k], memory_order_relaxed);
        if (k < nb)
            api_text_printf(t, "%s_bucket{%s%sle=\"%g\"} %lld\n", name, labels, labels[0] ? "," : "", b[k], cum);
        else
            api_text_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %lld\n", name, labels, labels[0] ? "," : "", cum);
    }
    api_text_printf(t, "%s_sum{%s} %.6f\n", name, labels, (double)total_ns * 1e-9);
    api_text_printf(t, "%s_count{%s} %lld\n", name, labels, cum);
}

static enum MHD_Result route_metrics(struct ctx *x)
{
    struct drisk_server *srv = x->srv;
    struct svc_counters *sc = svc_counters(x->svc);
    struct api_text t = { 0 };
    static const char *const classes[4] = { "2xx", "4xx", "5xx", "aborted" };
    api_text_printf(&t, "# HELP drisk_http_requests_total HTTP requests by route and status class.\n"
            "# TYPE drisk_http_requests_total counter\n");
    for (int rt = 0; rt < R_COUNT; rt++)
        for (int k = 0; k < 4; k++)
            api_text_printf(&t, "drisk_http_requests_total{route=\"%s\",code=\"%s\"} %lld\n", route_names[rt],
                classes[k], atomic_load(&srv->requests[rt][k]));
    api_text_printf(&t, "# HELP drisk_http_header_timeouts_total Connections closed for not sending "
            "a request's headers within the header deadline.\n"
            "# TYPE drisk_http_header_timeouts_total counter\ndrisk_http_header_timeouts_total %lld\n",
            atomic_load(&srv->header_timeouts));
    api_text_printf(&t, "# HELP drisk_http_request_duration_seconds Time from request to response.\n"
            "# TYPE drisk_http_request_duration_seconds histogram\n");
    for (int rt = 0; rt < R_COUNT; rt++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_names[rt]);
        put_hist(&t, "drisk_http_request_duration_seconds", labels, srv->hist[rt],
                 atomic_load(&srv->ns[rt]));
    }
    api_text_printf(&t, "# HELP drisk_scoring_duration_seconds One shipment's features, models and reasons.\n"
            "# TYPE drisk_scoring_duration_seconds histogram\n");
    put_hist(&t, "drisk_scoring_duration_seconds", "", sc->score_hist, atomic_load(&sc->score_ns));
    api_text_printf(&t, "# HELP drisk_alerts_raised_total Alerts opened, by type.\n"
            "# TYPE drisk_alerts_raised_total counter\n");
    for (int a = 0; a < DRISK_ALERT_COUNT; a++)
        api_text_printf(&t, "drisk_alerts_raised_total{type=\"%s\"} %lld\n", drisk_alert_type_name(a),
            atomic_load(&sc->alerts_raised[a]));
    api_text_printf(&t, "# TYPE drisk_scans_ingested_total counter\ndrisk_scans_ingested_total %lld\n"
            "# TYPE drisk_scans_duplicate_total counter\ndrisk_scans_duplicate_total %lld\n"
            "# TYPE drisk_sweeps_total counter\ndrisk_sweeps_total %lld\n"
            "# HELP drisk_swept_shipments_total Open shipments this node re-scored in its sweeps "
            "(the nodes of a store divide them).\n"
            "# TYPE drisk_swept_shipments_total counter\ndrisk_swept_shipments_total %lld\n"
            "# HELP drisk_followed_entries_total Scans and late outcomes other nodes ingested, "
            "fed to this node's network statistics.\n"
            "# TYPE drisk_followed_entries_total counter\ndrisk_followed_entries_total %lld\n"
            "# TYPE drisk_model_swaps_total counter\ndrisk_model_swaps_total %lld\n",
        atomic_load(&sc->scans_inserted), atomic_load(&sc->scans_duplicate),
        atomic_load(&sc->sweeps), atomic_load(&sc->swept_shipments), atomic_load(&sc->followed),
        atomic_load(&sc->model_swaps));
    api_text_printf(&t, "# HELP drisk_active_model_id The model serving each target (0: none).\n"
            "# TYPE drisk_active_model_id gauge\n");
    struct svc_model_set *ms = svc_models_acquire(x->svc);
    for (int k = 0; k < DRISK_TARGET_COUNT; k++)
        api_text_printf(&t, "drisk_active_model_id{target=\"%s\"} %lld\n", drisk_target_name((enum drisk_target)k),
            ms ? (long long)ms->scorer.id[k] : 0LL);
    api_text_printf(&t, "# HELP drisk_shadow_model_id The shadow scored beside each target's "
            "model (0: none).\n# TYPE drisk_shadow_model_id gauge\n");
    for (int k = 0; k < DRISK_TARGET_COUNT; k++)
        api_text_printf(&t, "drisk_shadow_model_id{target=\"%s\"} %lld\n",
                        drisk_target_name((enum drisk_target)k),
                        ms ? (long long)ms->scorer.shadow_id[k] : 0LL);
    svc_models_release(ms);
    api_text_printf(&t, "# HELP drisk_live_score Live probabilities of late and lost, of the "
            "active model and of its shadow.\n# TYPE drisk_live_score histogram\n");
    static const char *const roles[2] = { "active", "shadow" };
    for (int k = 0; k < 2; k++)
        for (int role = 0; role < 2; role++) {
            long long cum = 0;
            const char *tn = drisk_target_name((enum drisk_target)k);
            for (int b = 0; b < SVC_SCORE_BUCKETS; b++) {
                cum += atomic_load(&sc->score_dist[k][role][b]);
                if (b < SVC_SCORE_BUCKETS - 1)
                    api_text_printf(&t, "drisk_live_score_bucket{target=\"%s\",role=\"%s\","
                                    "le=\"%.1f\"} %lld\n", tn, roles[role],
                                    (b + 1) / (double)SVC_SCORE_BUCKETS, cum);
            }
            api_text_printf(&t, "drisk_live_score_bucket{target=\"%s\",role=\"%s\",le=\"+Inf\"} "
                            "%lld\ndrisk_live_score_sum{target=\"%s\",role=\"%s\"} %.6f\n"
                            "drisk_live_score_count{target=\"%s\",role=\"%s\"} %lld\n",
                            tn, roles[role], cum, tn, roles[role],
                            (double)atomic_load(&sc->score_sum_micro[k][role]) * 1e-6, tn,
                            roles[role], cum);
        }
    api_text_printf(&t, "# TYPE drisk_shadow_scorings_total counter\ndrisk_shadow_scorings_total "
                    "%lld\n", atomic_load(&sc->shadow_scored));
    if (srv->hooks) {
        const struct wh_stats *ws = wh_stats(srv->hooks);
        api_text_printf(&t, "# HELP drisk_webhook_attempts_total Webhook delivery attempts by "
                        "result.\n# TYPE drisk_webhook_attempts_total counter\n"
                        "drisk_webhook_attempts_total{result=\"delivered\"} %lld\n"
                        "drisk_webhook_attempts_total{result=\"retry\"} %lld\n"
                        "drisk_webhook_attempts_total{result=\"failed\"} %lld\n"
                        "drisk_webhook_attempts_total{result=\"disabled\"} %lld\n"
                        "# TYPE drisk_webhook_refused_total counter\n"
                        "drisk_webhook_refused_total %lld\n",
                        atomic_load(&ws->delivered), atomic_load(&ws->retried),
                        atomic_load(&ws->failed), atomic_load(&ws->disabled),
                        atomic_load(&ws->refused));
    }
    if (t.failed) {
        free(t.p);
        return MHD_NO;
    }
    return http_send_text(x->c, x->r, 200, t.p, t.len, "text/plain; version=0.0.4");
}

static enum MHD_Result route_scans(struct ctx *x, const cJSON *body)
{
    struct api_error e;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "scans");
    if (!cJSON_IsObject(body) || !cJSON_IsArray(arr))
        return api_fail(&e, 400, "invalid_body", "send {\"scans\": [scan, ...]}"),
               http_send_error(x->c, x->r, &e);
    int n = cJSON_GetArraySize(arr);
    if (n > MAX_BATCH)
        return api_fail(&e, 413, "batch_too_large", "%d scans in one request: send at most %d",
                        n, MAX_BATCH),
               http_send_error(x->c, x->r, &e);
    struct svc_scan_in *in = malloc((size_t)(n ? n : 1) * sizeof *in);
    if (!in)
        return api_fail(&e, 503, "out_of_memory", "out of memory"), http_send_error(x->c, x->r, &e);
    int i = 0;
    for (const cJSON *s = arr->child; s; s = s->next, i++) {
        if (api_scan_from(s, x->who.merchant, NULL, (struct api_where){ "scans", i }, &in[i], &e)) {
            free(in);
            return http_send_error(x->c, x->r, &e);
        }
        if (in[i].scan.ts > x->now + 3600) {
            free(in);
            return api_fail(&e, 422, "invalid_field",
                            "scans[%d].ts: more than an hour in the future: check the clock or "
                            "the time zone offset", i),
                   http_send_error(x->c, x->r, &e);
        }
    }
    struct svc_ingest_result res;
    if (svc_ingest(x->svc, x->who.merchant, NULL, in, (size_t)n, x->now, &res, &e)) {
        free(in);
        free(res.touched);
        return http_send_error(x->c, x->r, &e);
    }
    free(in);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "received", (double)res.received);
    cJSON_AddNumberToObject(o, "inserted", (double)res.inserted);
    cJSON_AddNumberToObject(o, "duplicates", (double)res.duplicates);
    cJSON_AddNumberToObject(o, "alerts_raised", res.alerts_raised);
    cJSON *ships = cJSON_AddArrayToObject(o, "shipments");
    struct svc_model_set *m = svc_models_acquire(x->svc);
    const int64_t zero[DRISK_TARGET_COUNT] = { 0, 0, 0 };
    for (size_t k = 0; k < res.n_touched; k++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "shipment_id", res.touched[k].shipment_id);
        if (res.touched[k].scored)
            cJSON_AddItemToObject(s, "risk", api_risk_json(&res.touched[k].risk,
                                                            m ? m->scorer.id : zero));
        else
            cJSON_AddNullToObject(s, "risk");
        cJSON_AddItemToArray(ships, s);
    }
    svc_models_release(m);
    free(res.touched);
    return http_send_json(x->c, x->r, 200, o);
}

static enum MHD_Result route_shipments_post(struct ctx *x, const cJSON *body)
{
    struct api_error e;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "shipments");
    int batch = cJSON_IsArray(arr);
    if (!cJSON_IsObject(body))
        return api_fail(&e, 400, "invalid_body", "send a shipment object or {\"shipments\": [...]}"),
               http_send_error(x->c, x->r, &e);
    int n = batch ? cJSON_GetArraySize(arr) : 1;
    if (n > MAX_BATCH)
        return api_fail(&e, 413, "batch_too_large", "%d shipments in one request: send at most %d",
                        n, MAX_BATCH),
               http_send_error(x->c, x->r, &e);
    struct drisk_shipment *sh = malloc((size_t)(n ? n : 1) * sizeof *sh);
    if (!sh)
        return api_fail(&e, 503, "out_of_memory", "out of memory"), http_send_error(x->c, x->r, &e);
    int i = 0;
    for (const cJSON *o = batch ? arr->child : body; o && i < n; o = o->next, i++) {
        struct api_where at = { batch ? "shipments" : "shipment", batch ? i : -1 };
        if (api_shipment_from(o, x->who.merchant, 0, x->now, at, &sh[i], &e)) {
            free(sh);
            return http_send_error(x->c, x->r, &e);
        }
    }
    struct drisk_error err = { 0 };
    cJSON *out = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(out, "shipments");
    struct svc_model_set *m = svc_models_acquire(x->svc);
    const int64_t zero[DRISK_TARGET_COUNT] = { 0, 0, 0 };
    static const char *const results[3] = { "inserted", "updated", "unchanged" };
    int failed = 0;
    if (drisk_store_begin(x->st, &err)) {
        failed = api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg);
    } else {
        for (i = 0; i < n && !failed; i++) {
            int64_t row;
            enum drisk_upsert what;
            struct drisk_risk risk;
            if (drisk_store_upsert_shipment(x->st, &sh[i], &row, &what, &err)) {
                failed = api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg);
                break;
            }
            if (svc_refresh(x->svc, x->st, m, row, x->now, &risk, &e)) {
                failed = 1;
                break;
            }
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "shipment_id", sh[i].shipment_id);
            cJSON_AddStringToObject(s, "result", results[what]);
            cJSON_AddItemToObject(s, "risk", api_risk_json(&risk, m ? m->scorer.id : zero));
            cJSON_AddItemToArray(list, s);
        }
        if (!failed && drisk_store_commit(x->st, &err))
            failed = api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg);
        if (failed)
            drisk_store_rollback(x->st);
        else
            svc_events_committed(x->svc);
    }
    svc_models_release(m);
    free(sh);
    if (failed) {
        cJSON_Delete(out);
        return http_send_error(x->c, x->r, &e);
    }
    return http_send_json(x->c, x->r, 200, out);
}

static int cmp_scan_ts(const void *a, const void *b)
{
    const struct svc_scan_in *x = a, *y = b;
    return x->scan.ts < y->scan.ts ? -1 : x->scan.ts > y->scan.ts;
}

/* Appends to /v1/score's answer (*text, "{...}") the promise used, where it came from,
 * and warnings for what the network has no outcome history of. 0, or -1 out of memory
 * (*text freed). */
static int score_extras(char **text, size_t *len, const struct drisk_shipment *sh,
                        unsigned unseen, const char *promise, double transit_h)
{
    cJSON *w = cJSON_CreateArray();
    char msg[320], ts[DRISK_TS_BUF];
    if (unseen & (1u << DRISK_CAT_CARRIER_SERVICE)) {
        snprintf(msg, sizeof msg, "carrier and service \"%.60s\" / \"%.60s\" have no outcome "
                 "history here: scored with the overall figures", sh->carrier, sh->service);
        cJSON_AddItemToArray(w, cJSON_CreateString(msg));
    }
    if (unseen & (1u << DRISK_CAT_ORIGIN)) {
        snprintf(msg, sizeof msg, "origin \"%.60s\" has no outcome history: scored with the "
                 "overall figures", sh->origin);
        cJSON_AddItemToArray(w, cJSON_CreateString(msg));
    }
    if (unseen & (1u << DRISK_CAT_DESTINATION)) {
        snprintf(msg, sizeof msg, "destination \"%.60s\" has no outcome history: scored with "
                 "its postal area's or the overall figures", sh->destination);
        cJSON_AddItemToArray(w, cJSON_CreateString(msg));
    } else if (unseen & (1u << DRISK_CAT_LANE)) {
        snprintf(msg, sizeof msg, "lane \"%.60s\" > \"%.60s\" has no outcome history: scored "
                 "with the destination's figures", sh->origin, sh->destination);
        cJSON_AddItemToArray(w, cJSON_CreateString(msg));
    }
    if (strcmp(promise, "default_5_days") == 0)
        cJSON_AddItemToArray(w, cJSON_CreateString("no promised_at given and no transit time "
                                                   "learned for this lane or service: promised 5 "
                                                   "days after created_at"));
    char *wtext = cJSON_PrintUnformatted(w);
    cJSON_Delete(w);
    if (!wtext) {
        free(*text);
        *text = NULL;
        return -1;
    }
    char transit[48] = "null", lane[48] = "null";
    if (isfinite(transit_h) && strcmp(promise, "given") != 0)
        snprintf(transit, sizeof transit, "%.1f", transit_h);
    if (strcmp(promise, "lane_transit") == 0)
        snprintf(lane, sizeof lane, "%s", transit);
    size_t extra = strlen(wtext) + 200;
    char *t = realloc(*text, *len + extra);
    if (!t) {
        cJSON_free(wtext);
        free(*text);
        *text = NULL;
        return -1;
    }
    /* the answer ends with its closing brace: the extras go before it */
    int n = snprintf(t + *len - 1, extra + 1, ",\"promised_at\":\"%s\",\"promise\":\"%s\","
                     "\"transit_h\":%s,\"lane_transit_h\":%s,\"warnings\":%s}",
                     drisk_ts_format(sh->promised_at, ts), promise, transit, lane, wtext);
    cJSON_free(wtext);
    *text = t;
    *len = *len - 1 + (size_t)n;
    return 0;
}

static enum MHD_Result route_score(struct ctx *x, const cJSON *body)
{
    struct api_error e;
    struct drisk_shipment sh;
    int64_t as_of = x->now;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "as_of");
    if (!cJSON_IsObject(body))
        return api_fail(&e, 400, "invalid_body", "send the shipment's fields as a JSON object"),
               http_send_error(x->c, x->r, &e);
    if (a && !cJSON_IsNull(a)) {
        const char *why = "must be an RFC 3339 time";
        if (!cJSON_IsString(a) || drisk_ts_parse(a->valuestring, strlen(a->valuestring), &as_of, &why))
            return api_fail(&e, 422, "invalid_field", "as_of: %s", why), http_send_error(x->c, x->r, &e);
    }
    if (api_shipment_from(body, x->who.merchant, 1, as_of, (struct api_where){ "shipment", -1 },
                          &sh, &e))
        return http_send_error(x->c, x->r, &e);
    /* a promise not given is the lane's learned transit time, else the carrier x
     * service's (5 days when neither has one): only then is the network asked before
     * scoring; what it has not seen comes from the view scoring reads anyway */
    unsigned unseen = 0;
    double transit_h = NAN;
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(body, "promised_at");
    const char *promise = "given";
    if (!given || cJSON_IsNull(given)) {
        promise = svc_network_facts(x->svc, &sh, x->now > as_of ? x->now : as_of, &unseen,
                                    &transit_h);
        if (isfinite(transit_h))
            sh.promised_at = sh.created_at + (int64_t)ceil(transit_h) * 3600;
    }
    sh.outcome = 0; /* scoring asks about the future: outcome fields are ignored */
    sh.delivered_at = DRISK_TS_NONE;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "scans");
    int n = 0;
    if (arr && !cJSON_IsNull(arr)) {
        if (!cJSON_IsArray(arr))
            return api_fail(&e, 400, "invalid_body", "scans: must be an array of scan objects"),
                   http_send_error(x->c, x->r, &e);
        n = cJSON_GetArraySize(arr);
        if (n > MAX_BATCH)
            return api_fail(&e, 413, "batch_too_large", "at most %d scans", MAX_BATCH),
                   http_send_error(x->c, x->r, &e);
    }
    /* a few scans (the usual inline request) stay on the stack */
    struct svc_scan_in stack_in[8];
    struct drisk_scan_event stack_ev[8];
    int small = n <= 8;
    struct svc_scan_in *in = small ? stack_in : malloc((size_t)n * sizeof *in);
    struct drisk_scan_event *ev = small ? stack_ev : malloc((size_t)n * sizeof *ev);
    struct svc_model_set *m = NULL;
    char *text = NULL;
    size_t text_len = 0;
    if (!in || !ev) {
        api_fail(&e, 503, "out_of_memory", "out of memory");
        goto out;
    }
    int i = 0;
    for (const cJSON *s = n ? arr->child : NULL; s && i < n; s = s->next, i++)
        if (api_scan_from(s, x->who.merchant, sh.shipment_id, (struct api_where){ "scans", i },
                          &in[i], &e))
            goto out;
    qsort(in, (size_t)n, sizeof *in, cmp_scan_ts);
    /* inline locations take the store's ids so facility statistics apply; a code never
     * seen gets an id of its own beyond the store's */
    const char *loc = "";
    for (i = 0; i < n; i++) {
        struct drisk_scan *sc = &in[i].scan;
        struct drisk_error err = { 0 };
        if (drisk_store_location_find(x->st, sc->location, &sc->location_id, &err)) {
            api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg);
            goto out;
        }
        if (!sc->location_id && sc->location[0]) {
            sc->location_id = ((int64_t)1 << 40) + i;
            for (int j = 0; j < i; j++)
                if (strcmp(in[j].scan.location, sc->location) == 0)
                    sc->location_id = in[j].scan.location_id;
        }
        ev[i] = (struct drisk_scan_event){ sc->ts, sc->location_id, sc->event, sc->reason };
        if (sc->location[0] && sc->ts <= as_of)
            loc = sc->location;
    }
    struct drisk_settings settings;
    struct drisk_risk risk;
    if (svc_settings(x->svc, x->st, x->who.merchant, &settings, &e))
        goto out;
    m = svc_models_acquire(x->svc);
    if (svc_score(x->svc, m, &settings, &sh, ev, (size_t)n, loc, as_of, &risk, &e) == 0) {
        const int64_t zero[DRISK_TARGET_COUNT] = { 0, 0, 0 };
        if (!(text = api_risk_text(&risk, m ? m->scorer.id : zero, &text_len)) ||
            score_extras(&text, &text_len, &sh, unseen | risk.unseen, promise, transit_h))
            api_fail(&e, 503, "out_of_memory", "out of memory");
    }
out:
    svc_models_release(m);
    if (!small) {
        free(in);
        free(ev);
    }
    return text ? http_send_text(x->c, x->r, 200, text, text_len, "application/json")
                : http_send_error(x->c, x->r, &e);
}

static int64_t find_own(struct ctx *x, const char *id, struct api_error *e)
{
    int64_t row;
    struct drisk_error err = { 0 };
    enum drisk_status rc = drisk_store_find_shipment(x->st, x->who.merchant, id, &row, &err);
    if (rc == DRISK_ENOTFOUND)
        return api_fail(e, 404, "not_found", "no shipment \"%.200s\" for this merchant", id), 0;
    if (rc)
        return api_fail(e, 503, "store_unavailable", "the store failed: %s", err.msg), 0;
    return row;
}

static int add_shipment_row(const struct drisk_ship_list_row *r, void *ctx)
{
    struct list_ctx *p = ctx;
    if (!http_page_room(p))
        return 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "shipment_id", r->sh.shipment_id);
    cJSON_AddStringToObject(o, "carrier", r->sh.carrier);
    cJSON_AddStringToObject(o, "service", r->sh.service);
    cJSON_AddStringToObject(o, "origin", r->sh.origin);
    cJSON_AddStringToObject(o, "destination", r->sh.destination);
    api_add_num(o, "declared_value", r->sh.declared_value);
    api_add_ts(o, "created_at", r->sh.created_at);
    api_add_ts(o, "promised_at", r->sh.promised_at);
    api_add_ts(o, "delivered_at", r->sh.delivered_at);
    cJSON_AddStringToObject(o, "status", r->sh.outcome ? drisk_outcome_name(r->sh.outcome)
                                                       : "in_transit");
    if (r->has_risk) {
        cJSON *k = cJSON_AddObjectToObject(o, "risk");
        api_add_ts(k, "as_of", r->risk_as_of);
        api_add_num(k, "p_late", r->p_late);
        api_add_num(k, "p_lost", r->p_lost);
        cJSON_AddStringToObject(k, "risk_level", r->risk_level);
    } else {
        cJSON_AddNullToObject(o, "risk");
    }
    cJSON_AddItemToArray(p->arr, o);
    p->last = r->sh.id;
    return 0;
}

/* GET /v1/shipments: the merchant's shipments, filtered, by store order, paginated. */
static enum MHD_Result route_shipments_list(struct ctx *x)
{
    struct api_error e;
    static const char *const levels[] = { "low", "medium", "high", NULL };
    static const char *const statuses[] = { "in_transit", "delivered", "lost", "returned", NULL };
    struct drisk_ship_query q = { .merchant = x->who.merchant };
    int64_t cursor, limit;
    char carrier[DRISK_NAME_MAX] = "";
    const char *c = MHD_lookup_connection_value(x->c, MHD_GET_ARGUMENT_KIND, "carrier");
    if (http_query_int(x->c, "cursor", 0, 0, API_CURSOR_MAX, &cursor, &e) ||
        http_query_int(x->c, "limit", 100, 1, 1000, &limit, &e) ||
        http_query_choice(x->c, "risk_level", levels, &q.risk_level, &e) ||
        http_query_choice(x->c, "status", statuses, &q.status, &e) ||
        http_query_ts(x->c, "created_from", INT64_MIN, &q.created_from, &e) ||
        http_query_ts(x->c, "created_to", INT64_MAX, &q.created_to, &e))
        return http_send_error(x->c, x->r, &e);
    if (c) {
        if (!c[0] || strlen(c) >= sizeof carrier)
            return api_fail(&e, 400, "invalid_parameter", "carrier: 1 to %d characters",
                            (int)sizeof carrier - 1),
                   http_send_error(x->c, x->r, &e);
        for (size_t i = 0; c[i]; i++) /* carriers are stored lowercase */
            carrier[i] = (char)(c[i] >= 'A' && c[i] <= 'Z' ? c[i] + 32 : c[i]);
        q.carrier = carrier;
    }
    q.after_id = cursor;
    q.limit = (int)limit + 1;
    cJSON *o = cJSON_CreateObject();
    struct list_ctx p = { cJSON_AddArrayToObject(o, "shipments"), cursor, limit, 0, 0 };
    struct drisk_error err = { 0 };
    if (drisk_store_ship_list(x->st, &q, add_shipment_row, &p, &err)) {
        cJSON_Delete(o);
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    }
    return http_page_send(x, o, &p, NULL);
}

static enum MHD_Result route_shipment_get(struct ctx *x, const char *id)
{
    struct api_error e;
    int64_t row = find_own(x, id, &e);
    if (!row)
        return http_send_error(x->c, x->r, &e);
    struct svc_shipment ls;
    if (svc_read_shipment(x->st, row, &ls, &e))
        return http_send_error(x->c, x->r, &e);
    struct drisk_settings settings;
    struct drisk_risk risk;
    struct svc_model_set *m = svc_models_acquire(x->svc);
    const int64_t zero[DRISK_TARGET_COUNT] = { 0, 0, 0 };
    int rc = svc_settings(x->svc, x->st, x->who.merchant, &settings, &e) ||
             svc_score(x->svc, m, &settings, &ls.sh, ls.ev, ls.n, ls.loc, x->now, &risk, &e);
    cJSON *o = NULL;
    if (!rc) {
        o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "shipment", api_shipment_json(&ls.sh, ls.scans, ls.n));
        cJSON_AddItemToObject(o, "risk", api_risk_json(&risk, m ? m->scorer.id : zero));
        cJSON *alerts = cJSON_AddArrayToObject(o, "alerts");
        struct drisk_alert_row open[DRISK_ALERTS_MAX_OPEN];
        size_t n_open = 0;
        struct drisk_rec_row rec;
        struct drisk_error err = { 0 };
        if (drisk_store_alerts_open(x->st, row, open, &n_open, &err))
            rc = api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg);
        for (size_t i = 0; i < n_open; i++)
            cJSON_AddItemToArray(alerts, api_alert_json(&open[i]));
        enum drisk_status g = rc ? DRISK_OK : drisk_store_rec_get(x->st, row, &rec, &err);
        if (g == DRISK_OK && !rc)
            cJSON_AddItemToObject(o, "recommendation", api_rec_json(&rec));
        else if (g == DRISK_ENOTFOUND)
            cJSON_AddNullToObject(o, "recommendation");
        else if (!rc)
            rc = api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg);
    }
    svc_models_release(m);
    svc_shipment_free(&ls);
    if (rc) {
        cJSON_Delete(o);
        return http_send_error(x->c, x->r, &e);
    }
    return http_send_json(x->c, x->r, 200, o);
}

static int add_alert(const struct drisk_alert_row *a, void *ctx)
{
    struct list_ctx *l = ctx;
    if (!http_page_room(l))
        return 1;
    cJSON_AddItemToArray(l->arr, api_alert_json(a));
    l->last = a->seq;
    return 0;
}

static int add_rec(const struct drisk_rec_row *r, void *ctx)
{
    struct list_ctx *l = ctx;
    if (!http_page_room(l))
        return 1;
    cJSON_AddItemToArray(l->arr, api_rec_json(r));
    l->last = r->id;
    return 0;
}

/* POST /v1/alerts/{id}/ack: the merchant has seen the alert (the first time counts). */
static enum MHD_Result route_alert_ack(struct ctx *x, const char *rest)
{
    struct api_error e;
    char *end;
    errno = 0;
    long long id = strtoll(rest, &end, 10);
    if (end == rest || strcmp(end, "/ack") != 0 || errno || id <= 0)
        return api_fail(&e, 404, "not_found", "no alert \"%.40s\"", rest),
               http_send_error(x->c, x->r, &e);
    struct drisk_alert_row a;
    struct drisk_error err = { 0 };
    enum drisk_status rc = drisk_store_alert_ack(x->st, x->who.merchant, id, x->now, &a, &err);
    if (rc == DRISK_ENOTFOUND) /* another merchant's alert is not there either */
        return api_fail(&e, 404, "not_found", "%s", err.msg), http_send_error(x->c, x->r, &e);
    if (rc)
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    return http_send_json(x->c, x->r, 200, api_alert_json(&a));
}

static enum MHD_Result route_list(struct ctx *x, int alerts)
{
    struct api_error e;
    int64_t since, limit;
    /* one scheme on every list: cursor (the next_cursor of the page before; the older names
     * since and after still work), limit, and answers next_cursor and has_more. Cursors stay
     * within 2^53 - 1: exact as JSON numbers, so a client can send back any it was given */
    const char *legacy = alerts ? "since" : "after";
    int has_cursor = MHD_lookup_connection_value(x->c, MHD_GET_ARGUMENT_KIND, "cursor") != NULL;
    if (http_query_int(x->c, has_cursor ? "cursor" : legacy, 0, 0, API_CURSOR_MAX, &since, &e) ||
        http_query_int(x->c, "limit", 100, 1, 1000, &limit, &e))
        return http_send_error(x->c, x->r, &e);
    struct drisk_alert_filter f = { NULL, NULL, NULL };
    static const char *const types[] = { "delay_risk", "likely_lost", "carrier_exception",
                                         "stalled", NULL };
    static const char *const severities[] = { "warning", "critical", NULL };
    static const char *const states[] = { "open", "cleared", NULL };
    if (alerts && (http_query_choice(x->c, "type", types, &f.type, &e) ||
                   http_query_choice(x->c, "severity", severities, &f.severity, &e) ||
                   http_query_choice(x->c, "status", states, &f.status, &e)))
        return http_send_error(x->c, x->r, &e);
    cJSON *o = cJSON_CreateObject();
    struct list_ctx l = { cJSON_AddArrayToObject(o, alerts ? "alerts" : "recommendations"), since,
                          limit, 0, 0 };
    struct drisk_error err = { 0 };
    enum drisk_status rc =
        alerts ? drisk_store_alert_feed(x->st, x->who.merchant, since, (int)limit + 1, &f,
                                        add_alert, &l, &err)
               : drisk_store_rec_list(x->st, x->who.merchant, since, (int)limit + 1, add_rec, &l,
                                      &err);
    if (rc) {
        cJSON_Delete(o);
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    }
    return http_page_send(x, o, &l, alerts ? NULL : "next_after");
}

static enum MHD_Result route_settings(struct ctx *x, const cJSON *body)
{
    struct api_error e;
    struct drisk_settings s;
    if (svc_settings(x->svc, x->st, x->who.merchant, &s, &e))
        return http_send_error(x->c, x->r, &e);
    if (body) {
        if (api_settings_apply(body, &s, &e))
            return http_send_error(x->c, x->r, &e);
        cJSON *full = api_settings_json(&s);
        char *text = cJSON_PrintUnformatted(full);
        cJSON_Delete(full);
        struct drisk_error err = { 0 };
        enum drisk_status rc = text ? drisk_store_settings_put(x->st, x->who.merchant, text, &err)
                                    : drisk_error_set(&err, DRISK_ENOMEM, "out of memory");
        cJSON_free(text);
        if (rc)
            return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
                   http_send_error(x->c, x->r, &e);
        svc_settings_changed(x->svc);
    }
    return http_send_json(x->c, x->r, 200, api_settings_json(&s));
}

static enum MHD_Result route_activate(struct ctx *x, const char *id_text)
{
    struct api_error e;
    if (!x->who.admin)
        return api_fail(&e, 403, "forbidden", "activating models needs an admin key (drisk keys "
                        "create --admin)"),
               http_send_error(x->c, x->r, &e);
    char *end;
    errno = 0;
    long long id = strtoll(id_text, &end, 10);
    if (!*id_text || *end || errno || id <= 0)
        return api_fail(&e, 404, "not_found", "no model \"%.40s\"", id_text),
               http_send_error(x->c, x->r, &e);
    struct drisk_error err = { 0 };
    enum drisk_status rc = drisk_store_model_activate(x->st, id, &err);
    if (rc == DRISK_ENOTFOUND)
        return api_fail(&e, 404, "not_found", "%s", err.msg), http_send_error(x->c, x->r, &e);
    if (rc == DRISK_EINVAL) /* it does not load: nothing changed */
        return api_fail(&e, 422, "invalid_model", "%s", err.msg), http_send_error(x->c, x->r, &e);
    if (rc)
        return api_fail_from(&e, 503, "activation_failed", &err), http_send_error(x->c, x->r, &e);
    if (svc_models_reload(x->svc, &e))
        return http_send_error(x->c, x->r, &e);
    return http_send_json(x->c, x->r, 200, health_json(x->srv));
}

/* ---- dispatch ---- */

/* HEAD is GET without the body (libmicrohttpd leaves the body out). */
static int route_of(const char *method, const char *url)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0,
        post = strcmp(method, "POST") == 0;
    if (strcmp(url, "/healthz") == 0)
        return get ? R_HEALTHZ : R_OTHER;
    if (strcmp(url, "/metrics") == 0)
        return get ? R_METRICS : R_OTHER;
    if (strcmp(url, "/v1/shipments") == 0)
        return post ? R_SHIPMENTS_POST : get ? R_SHIPMENTS_LIST : R_OTHER;
    if (strncmp(url, "/v1/shipments/", 14) == 0 && url[14])
        return get ? R_SHIPMENT_GET : R_OTHER;
    if (strcmp(url, "/v1/scans") == 0)
        return post ? R_SCANS : R_OTHER;
    if (strcmp(url, "/v1/score") == 0)
        return post ? R_SCORE : R_OTHER;
    if (strcmp(url, "/v1/alerts") == 0)
        return get ? R_ALERTS : R_OTHER;
    if (strncmp(url, "/v1/alerts/", 11) == 0) {
        size_t len = strlen(url);
        if (len > 15 && strcmp(url + len - 4, "/ack") == 0)
            return post ? R_ALERT_ACK : R_OTHER;
    }
    if (strcmp(url, "/v1/recommendations") == 0)
        return get ? R_RECS : R_OTHER;
    if (strncmp(url, "/v1/recommendations/", 20) == 0) {
        size_t len = strlen(url);
        if (len > 28 && strcmp(url + len - 8, "/outcome") == 0)
            return post ? R_REC_OUTCOME : R_OTHER;
    }
    if (strcmp(url, "/v1/settings") == 0)
        return get ? R_SETTINGS_GET : strcmp(method, "PUT") == 0 ? R_SETTINGS_PUT : R_OTHER;
    if (strcmp(url, "/v1/webhooks") == 0)
        return post ? R_WEBHOOKS_POST : get ? R_WEBHOOKS_LIST : R_OTHER;
    if (strncmp(url, "/v1/inbound/", 12) == 0 && url[12]) {
        size_t len = strlen(url);
        if (len > 7 && strcmp(url + len - 7, "/secret") == 0)
            return strcmp(method, "PUT") == 0      ? R_INBOUND_SECRET_PUT
                   : strcmp(method, "DELETE") == 0 ? R_INBOUND_SECRET_DELETE : R_OTHER;
        return post && !strchr(url + 12, '/') ? R_INBOUND : R_OTHER;
    }
    if (strncmp(url, "/v1/webhooks/", 13) == 0 && url[13]) {
        size_t len = strlen(url);
        if (len > 10 && strcmp(url + len - 10, "/redeliver") == 0)
            return post ? R_WEBHOOK_REDELIVER : R_OTHER;
        if (len > 11 && strcmp(url + len - 11, "/deliveries") == 0)
            return get ? R_WEBHOOK_DELIVERIES : R_OTHER;
        return get ? R_WEBHOOK_GET : strcmp(method, "DELETE") == 0 ? R_WEBHOOK_DELETE : R_OTHER;
    }
    if (strncmp(url, "/v1/models/", 11) == 0) {
        size_t len = strlen(url);
        if (len > 20 && strcmp(url + len - 9, "/activate") == 0)
            return post ? R_ACTIVATE : R_OTHER;
    }
    return R_OTHER;
}

/* The methods url's route takes (its Allow header), or NULL for no route. */
static const char *allowed_methods(const char *url)
{
    static const struct {
        const char *path, *allow;
    } paths[] = { { "/healthz", "GET, HEAD" },      { "/metrics", "GET, HEAD" },
                  { "/v1/shipments", "GET, HEAD, POST" }, { "/v1/scans", "POST" },
                  { "/v1/score", "POST" },           { "/v1/alerts", "GET, HEAD" },
                  { "/v1/recommendations", "GET, HEAD" }, { "/v1/settings", "GET, HEAD, PUT" },
                  { "/v1/webhooks", "GET, HEAD, POST" } };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (strcmp(url, paths[i].path) == 0)
            return paths[i].allow;
    if (strncmp(url, "/v1/shipments/", 14) == 0 && url[14])
        return "GET, HEAD";
    if (strncmp(url, "/v1/models/", 11) == 0 || strncmp(url, "/v1/alerts/", 11) == 0 ||
        strncmp(url, "/v1/recommendations/", 20) == 0)
        return "POST";
    if (strncmp(url, "/v1/inbound/", 12) == 0) {
        size_t len = strlen(url);
        return len > 7 && strcmp(url + len - 7, "/secret") == 0 ? "PUT, DELETE" : "POST";
    }
    if (strncmp(url, "/v1/webhooks/", 13) == 0) {
        size_t len = strlen(url);
        if (len > 10 && strcmp(url + len - 10, "/redeliver") == 0)
            return "POST";
        if (len > 11 && strcmp(url + len - 11, "/deliveries") == 0)
            return "GET, HEAD";
        return "GET, HEAD, DELETE";
    }
    return NULL;
}

static enum MHD_Result dispatch(struct drisk_server *srv, struct MHD_Connection *c, struct req *r,
                                const char *url)
{
    struct api_error e;
    struct ctx x = { srv, srv->svc, NULL, c, r, { "", 0 }, (int64_t)time(NULL),
                     srv->o.webhook_allow_private, srv->hooks };
    if (r->route == R_OTHER) {
        if ((r->allow = allowed_methods(url)))
            return api_fail(&e, 405, "method_not_allowed", "%s is not allowed on %.100s: "
                            "use %s", r->method, url, r->allow),
                   http_send_error(c, r, &e);
        return api_fail(&e, 404, "not_found", "no route %.100s: see api/openapi.yaml", url),
               http_send_error(c, r, &e);
    }
    if (r->route == R_HEALTHZ)
        return http_send_json(c, r, 200, health_json(srv));
    if (r->route == R_METRICS)
        return route_metrics(&x);
    if (r->route == R_INBOUND) { /* signed by the provider, or a merchant's key */
        cJSON *body = NULL;
        int provider = inbound_provider_parse(url + 12);
        if (provider < 0)
            return api_fail(&e, 404, "not_found", "no provider \"%.20s\": use easypost, "
                            "aftership or shippo", url + 12),
                   http_send_error(c, r, &e);
        if (!(x.st = svc_store(srv->svc, &e)) || http_inbound_caller(&x, provider, &e) ||
            api_body_parse(r->body, r->len, &body, &e))
            return http_send_error(c, r, &e);
        snprintf(r->merchant, sizeof r->merchant, "%s", x.who.merchant);
        enum MHD_Result ok = http_inbound(&x, url + 12, body);
        cJSON_Delete(body);
        return ok;
    }
    if (!(x.st = svc_store(srv->svc, &e)) || http_authenticate(srv->svc, x.st, c, &x.who, &e))
        return http_send_error(c, r, &e);
    snprintf(r->merchant, sizeof r->merchant, "%s", x.who.merchant);
    if (r->route == R_ACTIVATE) {
        char id[32] = "";
        size_t len = strlen(url) - 11 - 9;
        if (len < sizeof id)
            memcpy(id, url + 11, len), id[len] = '\0';
        return route_activate(&x, id);
    }
    if (http_need_merchant(&x.who, &e))
        return http_send_error(c, r, &e);
    cJSON *body = NULL;
    int wants_body = r->route == R_SHIPMENTS_POST || r->route == R_SCANS ||
                     r->route == R_SCORE || r->route == R_SETTINGS_PUT ||
                     r->route == R_WEBHOOKS_POST || r->route == R_INBOUND_SECRET_PUT ||
                     r->route == R_REC_OUTCOME;
    if (wants_body && api_body_parse(r->body, r->len, &body, &e))
        return http_send_error(c, r, &e);
    enum MHD_Result ok;
    switch (r->route) {
    case R_SHIPMENTS_POST: ok = route_shipments_post(&x, body); break;
    case R_SHIPMENT_GET: ok = route_shipment_get(&x, url + 14); break;
    case R_SHIPMENTS_LIST: ok = route_shipments_list(&x); break;
    case R_ALERT_ACK: ok = route_alert_ack(&x, url + 11); break;
    case R_SCANS: ok = route_scans(&x, body); break;
    case R_SCORE: ok = route_score(&x, body); break;
    case R_ALERTS: ok = route_list(&x, 1); break;
    case R_RECS: ok = route_list(&x, 0); break;
    case R_REC_OUTCOME: ok = http_rec_outcome(&x, url + 20, body); break;
    case R_SETTINGS_GET: ok = route_settings(&x, NULL); break;
    case R_SETTINGS_PUT: ok = route_settings(&x, body); break;
    case R_WEBHOOKS_POST: ok = http_webhook_create(&x, body); break;
    case R_WEBHOOKS_LIST: ok = http_webhook_list(&x); break;
    case R_WEBHOOK_GET:
    case R_WEBHOOK_DELETE:
    case R_WEBHOOK_REDELIVER: ok = http_webhook_one(&x, url + 13); break;
    case R_WEBHOOK_DELIVERIES: ok = http_webhook_deliveries(&x, url + 13); break;
    case R_INBOUND_SECRET_PUT:
    case R_INBOUND_SECRET_DELETE: ok = http_inbound_secret(&x, url + 12, body); break;
    default: ok = MHD_NO; break;
    }
    cJSON_Delete(body);
    return ok;
}

/* ---- slow clients: the header deadline ---- */

/* c's request headers are in (in_request 1), or its request is done and the next one's
 * headers are awaited from now (0). */
static void conn_mark(struct drisk_server *srv, struct MHD_Connection *c, int in_request)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_watch *w = ci ? ci->socket_context : NULL;
    if (!w)
        return;
    pthread_mutex_lock(&srv->conn_lock);
    w->in_request = in_request;
    w->since = drisk_monotonic_s();
    pthread_mutex_unlock(&srv->conn_lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct drisk_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_watch *w = ci ? calloc(1, sizeof *w) : NULL;
        if (!w)
            return; /* not watched: the idle timeout still applies */
        w->fd = ci->connect_fd;
        w->since = drisk_monotonic_s();
        pthread_mutex_lock(&srv->conn_lock);
        w->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = w;
        srv->conns = w;
        pthread_mutex_unlock(&srv->conn_lock);
        *socket_context = w;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        /* called before libmicrohttpd closes the socket: the watchdog never sees the fd
         * number again after this */
        struct conn_watch *w = *socket_context;
        pthread_mutex_lock(&srv->conn_lock);
        if (w->prev)
            w->prev->next = w->next;
        else
            srv->conns = w->next;
        if (w->next)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&srv->conn_lock);
        free(w);
        *socket_context = NULL;
    }
}

static void *watchdog_main(void *arg)
{
    struct drisk_server *srv = arg;
    pthread_mutex_lock(&srv->conn_lock);
    while (!srv->stopping) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 250 * 1000000L;
        if (t.tv_nsec >= 1000000000L)
            t.tv_sec++, t.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&srv->watchdog_cond, &srv->conn_lock, &t);
        double now = drisk_monotonic_s();
        for (struct conn_watch *w = srv->conns; w; w = w->next)
            if (!w->in_request && !w->cut && now - w->since > srv->o.header_timeout_s) {
                /* libmicrohttpd sees the end of the stream and closes it as usual */
                shutdown(w->fd, SHUT_RDWR);
                w->cut = 1;
                atomic_fetch_add_explicit(&srv->header_timeouts, 1, memory_order_relaxed);
            }
    }
    pthread_mutex_unlock(&srv->conn_lock);
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct drisk_server *srv = cls;
    struct req *r = *con_cls;
    struct api_error e;
    if (!r) {
        conn_mark(srv, c, 1);
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->t0 = drisk_monotonic_s();
        r->route = route_of(method, url);
        size_t ml = strnlen(method, sizeof r->method - 1), ul = strnlen(url, sizeof r->path - 1);
        memcpy(r->method, method, ml);
        memcpy(r->path, url, ul); /* calloc'd: terminated */
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > srv->o.max_body) {
            r->too_big = 1;
            return api_fail(&e, 413, "body_too_large", "the body is over %zu bytes: split the "
                            "request", srv->o.max_body),
                   http_send_error(c, r, &e);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!r->too_big) {
            if (r->len + *upload_size > srv->o.max_body) {
                r->too_big = 1;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
            } else {
                if (r->len + *upload_size > r->cap) {
                    size_t cap = r->cap ? r->cap : 4096;
                    while (cap < r->len + *upload_size)
                        cap *= 2;
                    char *p = realloc(r->body, cap);
                    if (!p)
                        return MHD_NO;
                    r->body = p;
                    r->cap = cap;
                }
                memcpy(r->body + r->len, upload, *upload_size);
                r->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->status)
        return MHD_YES; /* answered early (413) */
    if (r->too_big)
        return api_fail(&e, 413, "body_too_large", "the body is over %zu bytes: split the request",
                        srv->o.max_body),
               http_send_error(c, r, &e);
    api_json_arena_begin();
    enum MHD_Result ok = dispatch(srv, c, r, url);
    api_json_arena_end();
    return ok;
}

/* in as one access-log field in out (cap >= 5): control characters, bytes above 0x7e,
 * quotes, backslashes and (text) spaces escaped, so that no request can write a line or a
 * field of its own: text as \xHH, JSON as \u00HH (bytes, not characters). */
static void log_field(char *out, size_t cap, const char *in, int json)
{
    size_t n = 0;
    if (!*in && !json)
        in = "-";
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 7 < cap; p++) {
        if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\' || (*p == ' ' && !json))
            n += (size_t)snprintf(out + n, cap - n, json ? "\\u%04x" : "\\x%02x", *p);
        else
            out[n++] = (char)*p;
    }
    out[n] = '\0';
}

static void access_log(struct drisk_server *srv, struct MHD_Connection *c, const struct req *r,
                       double dt)
{
    char ts[DRISK_TS_BUF], ip[64] = "-", method[64], path[4 * sizeof r->path + 8],
         merchant[4 * DRISK_ID_MAX + 8];
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, ip, sizeof ip);
    int json = srv->o.access_log_json;
    log_field(method, sizeof method, r->method, json);
    log_field(path, sizeof path, r->path, json);
    log_field(merchant, sizeof merchant, r->merchant, json);
    drisk_ts_format((int64_t)time(NULL), ts);
    pthread_mutex_lock(&srv->log_lock);
    if (json)
        fprintf(srv->o.access_log, "{\"ts\":\"%s\",\"ip\":\"%s\",\"method\":\"%s\",\"path\":\"%s\","
                "\"status\":%d,\"bytes\":%zu,\"ms\":%.3f,\"merchant\":%s%s%s}\n", ts, ip, method,
                path, r->status, r->bytes, dt * 1e3, r->merchant[0] ? "\"" : "",
                r->merchant[0] ? merchant : "null", r->merchant[0] ? "\"" : "");
    else
        fprintf(srv->o.access_log, "%s %s %s %s %d %zu %.3fms %s\n", ts, ip, method, path,
                r->status, r->bytes, dt * 1e3, merchant);
    pthread_mutex_unlock(&srv->log_lock);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct drisk_server *srv = cls;
    struct req *r = *con_cls;
    conn_mark(srv, c, 0);
    if (!r)
        return;
    double dt = drisk_monotonic_s() - r->t0;
    /* a client that went away before any answer is not a server error */
    int cls_i = r->status == 0 && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? 3
                : r->status >= 500 || r->status == 0 ? 2 : r->status >= 400 ? 1 : 0;
    atomic_fetch_add_explicit(&srv->requests[r->route][cls_i], 1, memory_order_relaxed);
    svc_observe(srv->hist[r->route], dt);
    atomic_fetch_add_explicit(&srv->ns[r->route], (long long)(dt * 1e9), memory_order_relaxed);
    if (srv->o.access_log)
        access_log(srv, c, r, dt);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    DRISK_LOG(DRISK_LOG_WARN, "http: %s", msg);
}

enum drisk_status drisk_server_start(const struct drisk_server_options *opts,
                                     struct drisk_server **out, struct drisk_error *err)
{
    *out = NULL;
    struct drisk_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory starting the server");
    srv->o = *opts;
    if (!srv->o.host)
        srv->o.host = "127.0.0.1";
    if (!srv->o.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        srv->o.threads = n > 0 ? (unsigned)n : 2;
    }
    if (!srv->o.max_connections)
        srv->o.max_connections = 1024;
    if (!srv->o.timeout_s)
        srv->o.timeout_s = 30;
    if (!srv->o.max_body)
        srv->o.max_body = (size_t)1 << 20;
    if (srv->o.sweep_s < 0)
        srv->o.sweep_s = 300;
    if (!srv->o.max_connections_per_ip)
        srv->o.max_connections_per_ip = 256;
    if (!srv->o.header_timeout_s)
        srv->o.header_timeout_s = 10;
    srv->started = (int64_t)time(NULL);
    pthread_mutex_init(&srv->log_lock, NULL);
    pthread_mutex_init(&srv->conn_lock, NULL);
    pthread_cond_init(&srv->watchdog_cond, NULL);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(srv->o.port);
    enum drisk_status rc;
    if (inet_pton(AF_INET, srv->o.host, &addr.sin_addr) != 1) {
        rc = drisk_error_set(err, DRISK_EINVAL, "--listen: \"%s\" is not an IPv4 address "
                             "(e.g. 127.0.0.1 or 0.0.0.0)", srv->o.host);
        goto fail;
    }
    api_json_init();
    struct api_error e;
    if (svc_create(srv->o.db_path, &srv->svc, &e)) {
        rc = drisk_error_set(err, e.cause, "%s", e.message);
        goto fail;
    }
    srv->d = MHD_start_daemon(
        /* the port is also given apart from the address, for libmicrohttpd's own messages */
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG,
        srv->o.port, NULL, NULL,
        on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, srv->o.threads, MHD_OPTION_CONNECTION_LIMIT,
        srv->o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, srv->o.timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->o.max_connections_per_ip,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_END);
    if (!srv->d) {
        rc = drisk_error_set(err, DRISK_EIO, "cannot listen on %s:%u (in use, or not allowed?): "
                             "choose another --listen", srv->o.host, (unsigned)srv->o.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : srv->o.port;
    struct wh_options wo = { srv->o.webhook_allow_private, srv->o.webhook_retry_base_s,
                             srv->o.webhook_retry_for_s, srv->o.webhook_timeout_s, 0 };
    if (wh_start(srv->o.db_path, &wo, &srv->hooks, &e)) {
        rc = drisk_error_set(err, e.cause, "%s", e.message);
        goto fail;
    }
    svc_on_events(srv->svc, wh_poke, srv->hooks);
    if (svc_start_background(srv->svc, srv->o.sweep_s, &e)) {
        rc = drisk_error_set(err, e.cause, "%s", e.message);
        goto fail;
    }
    if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "cannot start the connection watchdog thread");
        goto fail;
    }
    srv->watchdog_up = 1;
    *out = srv;
    return DRISK_OK;
fail:
    drisk_server_stop(srv);
    return rc;
}

uint16_t drisk_server_port(const struct drisk_server *srv)
{
    return srv->port;
}

void drisk_server_stop(struct drisk_server *srv)
{
    if (!srv)
        return;
    if (srv->watchdog_up) {
        pthread_mutex_lock(&srv->conn_lock);
        srv->stopping = 1;
        pthread_cond_signal(&srv->watchdog_cond);
        pthread_mutex_unlock(&srv->conn_lock);
        pthread_join(srv->watchdog, NULL);
    }
    if (srv->d) {
        MHD_quiesce_daemon(srv->d); /* no new connections; those open finish */
        MHD_stop_daemon(srv->d);
    }
    if (srv->svc)
        svc_on_events(srv->svc, NULL, NULL);
    wh_stop(srv->hooks);
    svc_free(srv->svc);
    pthread_mutex_destroy(&srv->log_lock);
    pthread_mutex_destroy(&srv->conn_lock);
    pthread_cond_destroy(&srv->watchdog_cond);
    free(srv);
}
