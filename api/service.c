/* The server's live state and operations (api/service.h). */
#include "api/service.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/json.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "base/sha256.h"
#include "base/strmap.h"
#include "data/outbox.h"
#include "data/replay.h"
#include "engine/network.h"
#include "engine/vocab.h"

#define MAX_STORES 512
#define SWEEP_WINDOW_S (120 * 86400) /* open shipments created this long ago at most */
#define SWEEP_CHUNK 256
#define SWEEP_LEASE_S 600     /* a shard whose sweeper died is free again after this */
#define FOLLOW_EVERY_S 0.25   /* how often a node reads the others' ingest log entries */
#define UPKEEP_EVERY_S 600.0  /* drisk_store_maintain: partitions, the ingest log pruned */

struct svc {
    char *db_path;
    pthread_key_t store_key;
    pthread_mutex_t stores_lock;
    struct drisk_store *stores[MAX_STORES];
    size_t n_stores;

    pthread_rwlock_t net_lock;
    struct drisk_network *net;
    int64_t started;   /* the start's replay fed every outcome known up to here */
    int checkpoint_used; /* the start found a checkpoint (else the first one is written soon) */
    int64_t node;      /* this process's id in the ingest log and the sweep's shards */
    struct drisk_log_cursor cursor; /* the follower's place in the ingest log */

    pthread_mutex_t models_lock;
    struct svc_model_set *models;

    pthread_t bg, follower;
    int bg_running, follower_running;
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond;
    int stopping;
    double sweep_s;

    struct svc_counters counters;
    atomic_uint settings_gen;

    void (*on_events)(void *); /* webhooks: new deliveries were committed */
    void *on_events_ctx;
    atomic_int events_queued;
};

/* Per-thread caches of keys and settings (no locks on the request path). */
#define CACHE_SLOTS 16
struct key_cache {
    char key[128]; /* the key as sent ("" when longer), to skip hashing on a hit */
    size_t key_len;
    char merchant[DRISK_ID_MAX];
    int admin;
    double expires;
};
struct settings_cache {
    char merchant[DRISK_ID_MAX];
    struct drisk_settings settings;
    unsigned gen;
    double expires;
};
static _Thread_local const struct svc *cache_owner;
static _Thread_local struct key_cache key_cache[CACHE_SLOTS];
static _Thread_local struct settings_cache settings_cache[CACHE_SLOTS];

/* Empties this thread's caches when they belong to another (earlier) server. */
static void cache_claim(const struct svc *s)
{
    if (cache_owner != s) {
        memset(key_cache, 0, sizeof key_cache);
        memset(settings_cache, 0, sizeof settings_cache);
        cache_owner = s;
    }
}

static const double latency_bounds[15] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                           0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                           1,      2.5,     5 };

const double *svc_latency_bounds(size_t *n)
{
    *n = sizeof latency_bounds / sizeof latency_bounds[0];
    return latency_bounds;
}

void svc_observe(atomic_llong *hist, double seconds)
{
    size_t k = 0;
    while (k < 15 && seconds > latency_bounds[k])
        k++;
    atomic_fetch_add_explicit(&hist[k], 1, memory_order_relaxed);
}

struct svc_counters *svc_counters(struct svc *s)
{
    return &s->counters;
}

int api_fail(struct api_error *e, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    snprintf(e->code, sizeof e->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    e->cause = status >= 500 ? DRISK_EIO : DRISK_EINVAL;
    return -1;
}

int api_fail_from(struct api_error *e, int status, const char *code, const struct drisk_error *err)
{
    api_fail(e, status, code, "%s", err->msg);
    e->cause = err->status != DRISK_OK ? err->status : e->cause;
    return -1;
}

static int store_fail(struct api_error *e, const struct drisk_error *err)
{
    DRISK_LOG(DRISK_LOG_ERROR, "store: %s", err->msg);
    return api_fail(e, 503, "store_unavailable", "the store failed: %s; retry later", err->msg);
}

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

/* ---- store connections: one per thread ---- */

struct drisk_store *svc_store(struct svc *s, struct api_error *e)
{
    struct drisk_store *st = pthread_getspecific(s->store_key);
    if (st)
        return st;
    struct drisk_error err = { 0 };
    if (drisk_store_open(s->db_path, &st, &err)) {
        store_fail(e, &err);
        return NULL;
    }
    drisk_store_set_mmap(st, (int64_t)1 << 30); /* reads without a copy per page */
    pthread_mutex_lock(&s->stores_lock);
    if (s->n_stores == MAX_STORES) {
        pthread_mutex_unlock(&s->stores_lock);
        drisk_store_free(st);
        api_fail(e, 503, "busy", "too many server threads hold store connections");
        return NULL;
    }
    s->stores[s->n_stores++] = st;
    pthread_mutex_unlock(&s->stores_lock);
    pthread_setspecific(s->store_key, st);
    return st;
}

/* ---- models ---- */

static void set_free(struct svc_model_set *m)
{
    if (!m)
        return;
    for (int k = 0; k < DRISK_TARGET_COUNT; k++) {
        drisk_model_free(m->model[k]);
        drisk_model_free(m->shadow[k]);
        free(m->families[k]);
    }
    free(m);
}

void svc_models_release(struct svc_model_set *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        set_free(m);
}

struct svc_model_set *svc_models_acquire(struct svc *s)
{
    pthread_mutex_lock(&s->models_lock);
    struct svc_model_set *m = s->models;
    if (m)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->models_lock);
    return m;
}

/* Loads model id with its feature schema. */
static enum drisk_status load_one(struct drisk_store *st, int64_t id,
                                  struct drisk_feature_schema *schema, struct drisk_model **m,
                                  struct drisk_error *err)
{
    struct drisk_model_row row;
    enum drisk_status rc = drisk_store_model_get(st, id, NULL, &row, err);
    if (rc)
        return rc;
    if (!(rc = drisk_feature_schema_read(row.schema, schema, err)))
        rc = drisk_model_load(row.payload, row.payload_len, schema->hash, m, err);
    drisk_store_model_row_free(&row);
    return rc;
}

static enum drisk_status load_set(struct drisk_store *st, const int64_t ids[DRISK_TARGET_COUNT],
                                  const int64_t shadows[DRISK_TARGET_COUNT],
                                  struct svc_model_set **out, struct drisk_error *err)
{
    struct svc_model_set *m = calloc(1, sizeof *m);
    enum drisk_status rc = DRISK_OK;
    if (!m)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory loading models");
    atomic_init(&m->refs, 1);
    for (int k = 0; k < DRISK_TARGET_COUNT && !rc; k++) {
        if (!ids[k])
            continue;
        if ((rc = load_one(st, ids[k], &m->schema[k], &m->model[k], err)))
            break;
        m->families[k] = malloc(m->schema[k].n_features);
        if (!m->families[k] || drisk_risk_families(&m->schema[k], m->families[k])) {
            rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory loading models");
            break;
        }
        m->scorer.model[k] = m->model[k];
        m->scorer.schema[k] = &m->schema[k];
        m->scorer.families[k] = m->families[k];
        m->scorer.id[k] = ids[k];
    }
    /* a shadow scores beside an active model only; one that does not load is left out
     * (said in the log) rather than stopping the active ones */
    for (int k = 0; k < DRISK_TARGET_COUNT && !rc; k++) {
        struct drisk_error why = { 0 };
        if (!shadows[k] || !m->model[k])
            continue;
        m->shadow_tried[k] = shadows[k];
        if (load_one(st, shadows[k], &m->shadow_schema[k], &m->shadow[k], &why)) {
            DRISK_LOG(DRISK_LOG_WARN, "shadow model %lld not scored: %s", (long long)shadows[k],
                      why.msg);
            continue;
        }
        m->scorer.shadow[k] = m->shadow[k];
        m->scorer.shadow_schema[k] = &m->shadow_schema[k];
        m->scorer.shadow_id[k] = shadows[k];
    }
    if (rc) {
        set_free(m);
        return rc;
    }
    *out = m;
    return DRISK_OK;
}

static int reload_with(struct svc *s, struct drisk_store *st, struct api_error *e)
{
    int64_t ids[DRISK_TARGET_COUNT], shadows[DRISK_TARGET_COUNT];
    struct drisk_error err = { 0 };
    if (drisk_store_active_models(st, ids, &err) || drisk_store_shadow_models(st, shadows, &err))
        return api_fail_from(e, 503, "store_unavailable", &err);
    struct svc_model_set *cur = svc_models_acquire(s);
    int same = cur && memcmp(cur->scorer.id, ids, sizeof ids) == 0;
    for (int k = 0; same && k < DRISK_TARGET_COUNT; k++) /* a shadow that did not load is not retried */
        same = cur->shadow_tried[k] == (ids[k] ? shadows[k] : 0);
    svc_models_release(cur);
    if (same)
        return 0;
    struct svc_model_set *m = NULL;
    if (load_set(st, ids, shadows, &m, &err))
        return api_fail_from(e, 503, "models_unavailable", &err);
    pthread_mutex_lock(&s->models_lock);
    struct svc_model_set *old = s->models;
    s->models = m;
    pthread_mutex_unlock(&s->models_lock);
    svc_models_release(old); /* freed when the last request using it lets go */
    atomic_fetch_add(&s->counters.model_swaps, 1);
    DRISK_LOG(DRISK_LOG_INFO, "serving models late=%lld lost=%lld eta=%lld; shadows late=%lld "
              "lost=%lld eta=%lld", (long long)ids[DRISK_TARGET_LATE],
              (long long)ids[DRISK_TARGET_LOST], (long long)ids[DRISK_TARGET_ETA],
              (long long)m->scorer.shadow_id[DRISK_TARGET_LATE],
              (long long)m->scorer.shadow_id[DRISK_TARGET_LOST],
              (long long)m->scorer.shadow_id[DRISK_TARGET_ETA]);
    return 0;
}

int svc_models_reload(struct svc *s, struct api_error *e)
{
    struct drisk_store *st = svc_store(s, e);
    return st ? reload_with(s, st, e) : -1;
}

/* ---- settings ---- */

int svc_settings(struct svc *s, struct drisk_store *st, const char *merchant,
                 struct drisk_settings *out, struct api_error *e)
{
    char buf[8192];
    struct drisk_error err = { 0 };
    double now = drisk_monotonic_s();
    unsigned gen = atomic_load_explicit(&s->settings_gen, memory_order_acquire);
    size_t h = drisk_fnv1a(DRISK_FNV_SEED, merchant) % CACHE_SLOTS;
    cache_claim(s);
    struct settings_cache *c = &settings_cache[h];
    if (c->expires > now && c->gen == gen && strcmp(c->merchant, merchant) == 0) {
        *out = c->settings;
        return 0;
    }
    drisk_settings_default(out);
    if (drisk_store_settings_get(st, merchant, buf, sizeof buf, &err))
        return store_fail(e, &err);
    if (buf[0] && api_settings_parse(buf, strlen(buf), out, e)) {
        DRISK_LOG(DRISK_LOG_WARN, "stored settings of %s unreadable (%s): using defaults",
                  merchant, e->message);
        drisk_settings_default(out);
    }
    /* the merchant's settled claims: each carrier's observed claim success */
    if (drisk_store_claim_records(st, merchant, out->claims, DRISK_MAX_CLAIM_RECORDS,
                                  &out->n_claims, &err))
        return store_fail(e, &err);
    snprintf(c->merchant, sizeof c->merchant, "%s", merchant);
    c->settings = *out;
    c->gen = gen;
    c->expires = now + SVC_CACHE_S;
    return 0;
}

void svc_settings_changed(struct svc *s)
{
    atomic_fetch_add_explicit(&s->settings_gen, 1, memory_order_release);
}

int svc_auth(struct svc *s, struct drisk_store *st, const char *key, size_t len,
             char merchant[DRISK_ID_MAX], int *admin, struct api_error *e)
{
    double now = drisk_monotonic_s();
    cache_claim(s);
    unsigned slot = len ? ((unsigned char)key[len - 1] + 31u * (unsigned char)key[len / 2]) % CACHE_SLOTS
                        : 0;
    struct key_cache *c = &key_cache[slot];
    if (c->expires > now && len < sizeof c->key && c->key_len == len &&
        drisk_equal_ct(c->key, key, len)) {
        memcpy(merchant, c->merchant, DRISK_ID_MAX);
        *admin = c->admin;
        return 0;
    }
    unsigned char hash[DRISK_SHA256_BYTES];
    drisk_sha256(key, len, hash);
    struct drisk_key_row row;
    struct drisk_error err = { 0 };
    enum drisk_status rc = drisk_store_key_find(st, hash, &row, &err);
    if (rc == DRISK_ENOTFOUND)
        return api_fail(e, 401, "unauthorized", "unknown or revoked API key");
    if (rc)
        return store_fail(e, &err);
    snprintf(merchant, DRISK_ID_MAX, "%s", row.merchant);
    *admin = row.admin;
    if (len < sizeof c->key) { /* longer keys are not ours: never cached */
        memcpy(c->key, key, len);
        c->key_len = len;
        memcpy(c->merchant, merchant, DRISK_ID_MAX);
        c->admin = *admin;
        c->expires = now + SVC_CACHE_S;
    }
    return 0;
}

/* ---- shipments ---- */

void svc_shipment_free(struct svc_shipment *ls)
{
    free(ls->scans);
    free(ls->ev);
    ls->scans = NULL;
    ls->ev = NULL;
}

static int copy_shipment(const struct drisk_shipment *sh, const struct drisk_scan *scans,
                         size_t n, int keep_text, struct svc_shipment *ls)
{
    memset(ls, 0, sizeof *ls);
    ls->sh = *sh;
    ls->n = n;
    if (n && ((keep_text && !(ls->scans = malloc(n * sizeof *ls->scans))) ||
              !(ls->ev = malloc(n * sizeof *ls->ev)))) {
        svc_shipment_free(ls);
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        if (keep_text)
            ls->scans[k] = scans[k];
        ls->ev[k] = (struct drisk_scan_event){ scans[k].ts, scans[k].location_id, scans[k].event,
                                               scans[k].reason };
        if (scans[k].location[0])
            memcpy(ls->loc, scans[k].location, sizeof ls->loc);
    }
    return 0;
}

static int read_one(const struct drisk_shipment *sh, const struct drisk_scan *scans, size_t n,
                    void *ctx, struct drisk_error *err)
{
    if (copy_shipment(sh, scans, n, 1, ctx)) {
        drisk_error_set(err, DRISK_ENOMEM, "out of memory reading a shipment");
        return -1;
    }
    return 0;
}

int svc_read_shipment(struct drisk_store *st, int64_t id, struct svc_shipment *out,
                      struct api_error *e)
{
    struct drisk_error err = { 0 };
    struct drisk_store_filter f = { .created_from = INT64_MIN, .created_to = INT64_MAX,
                                    .shipment = id };
    memset(out, 0, sizeof *out);
    out->sh.id = 0;
    if (drisk_store_iterate(st, &f, read_one, out, &err))
        return store_fail(e, &err);
    if (out->sh.id != id)
        return api_fail(e, 404, "not_found", "shipment not found");
    return 0;
}

int svc_score(struct svc *s, struct svc_model_set *m, const struct drisk_settings *settings,
              const struct drisk_shipment *sh, const struct drisk_scan_event *ev, size_t n,
              const char *loc, int64_t as_of, struct drisk_risk *out, struct api_error *e)
{
    double t0 = drisk_monotonic_s();
    static const struct drisk_scorer none;
    struct drisk_error err = { 0 };
    pthread_rwlock_rdlock(&s->net_lock);
    enum drisk_status rc = drisk_risk_score(m ? &m->scorer : &none, s->net, settings, sh, ev, n,
                                            as_of, loc, out, &err);
    pthread_rwlock_unlock(&s->net_lock);
    double dt = drisk_monotonic_s() - t0;
    if (!rc && m && sh->outcome == DRISK_OUTCOME_NONE) {
        /* the live score distributions, the active model's and the shadow's (a shipment
         * whose outcome is known gets it, not a model's score) */
        int shadowed = 0;
        for (int k = 0; k < 2; k++) {
            double v[2] = { k == DRISK_TARGET_LATE ? out->p_late : out->p_lost, out->shadow[k] };
            for (int role = 0; role < 2; role++)
                if (!isnan(v[role])) {
                    int b = (int)(v[role] * SVC_SCORE_BUCKETS);
                    b = b < 0 ? 0 : b >= SVC_SCORE_BUCKETS ? SVC_SCORE_BUCKETS - 1 : b;
                    atomic_fetch_add_explicit(&s->counters.score_dist[k][role][b], 1,
                                              memory_order_relaxed);
                    atomic_fetch_add_explicit(&s->counters.score_sum_micro[k][role],
                                              (long long)(v[role] * 1e6), memory_order_relaxed);
                }
            shadowed |= !isnan(v[1]);
        }
        if (shadowed || !isnan(out->shadow[DRISK_TARGET_ETA]))
            atomic_fetch_add_explicit(&s->counters.shadow_scored, 1, memory_order_relaxed);
    }
    svc_observe(s->counters.score_hist, dt);
    atomic_fetch_add_explicit(&s->counters.score_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->counters.score_ns, (long long)(dt * 1e9), memory_order_relaxed);
    if (rc)
        return api_fail(e, 500, "scoring_failed", "scoring failed: %s", err.msg);
    return 0;
}

const char *svc_network_facts(struct svc *s, const struct drisk_shipment *sh, int64_t now,
                              unsigned *unseen, double *transit_h)
{
    struct drisk_network_view v;
    pthread_rwlock_rdlock(&s->net_lock);
    drisk_network_view(s->net, sh, 0, 0, now, &v);
    pthread_rwlock_unlock(&s->net_lock);
    *unseen = v.unseen;
    /* a promise is learned from a few deliveries at least, not from one parcel's: the
     * lane's, else the carrier x service's over all its lanes */
    if (v.lane_transit_n >= SVC_TRANSIT_MIN_N && v.lane_transit_h > 0) {
        *transit_h = v.lane_transit_h;
        return "lane_transit";
    }
    if (v.service_transit_n >= SVC_TRANSIT_MIN_N && v.service_transit_h > 0) {
        *transit_h = v.service_transit_h;
        return "service_transit";
    }
    *transit_h = NAN;
    return "default_5_days";
}

void svc_on_events(struct svc *s, void (*fn)(void *), void *ctx)
{
    s->on_events = fn;
    s->on_events_ctx = ctx;
}

void svc_events_committed(struct svc *s)
{
    if (atomic_exchange(&s->events_queued, 0) && s->on_events)
        s->on_events(s->on_events_ctx);
}

/* Writes a webhook event about shipment ls into the outbox, in the caller's transaction
 * (nothing when no endpoint of the merchant takes type; callers ask wanted() first, to
 * build item only when one does): data holds the shipment id, the risk it was scored at,
 * and item under its key. Takes item. */
static int emit(struct svc *s, struct drisk_store *st, const struct svc_shipment *ls,
                const char *type, const char *key, cJSON *item, const struct drisk_risk *risk,
                const int64_t *ids, int64_t now, struct api_error *e)
{
    cJSON *data = cJSON_CreateObject();
    cJSON_AddItemToObject(data, key, item); /* taken, whatever follows */
    cJSON_AddStringToObject(data, "shipment_id", ls->sh.shipment_id);
    cJSON_AddItemToObject(data, "risk", api_risk_json(risk, ids));
    char *text = cJSON_PrintUnformatted(data);
    cJSON_Delete(data);
    if (!text)
        return api_fail(e, 503, "out_of_memory", "out of memory");
    struct drisk_error err = { 0 };
    int queued = 0;
    enum drisk_status rc = drisk_outbox_emit(st, ls->sh.id, type, text, now, &queued, &err);
    cJSON_free(text);
    if (rc)
        return store_fail(e, &err);
    if (queued)
        atomic_store(&s->events_queued, 1);
    return 0;
}

/* 1 when an endpoint of ls's merchant takes events of type, 0 when none does (the event
 * is not even built: most merchants have no webhooks), -1 with e set. */
static int wanted(struct drisk_store *st, const struct svc_shipment *ls, const char *type,
                  struct api_error *e)
{
    struct drisk_error err = { 0 };
    int yes;
    if (drisk_outbox_wanted(st, ls->sh.id, type, &yes, &err))
        return store_fail(e, &err);
    return yes;
}

/* The alert id as it is now, as a webhook event of type. */
static int emit_alert(struct svc *s, struct drisk_store *st, const struct svc_shipment *ls,
                      const char *type, int64_t id, const struct drisk_risk *risk,
                      const int64_t *ids, int64_t now, struct api_error *e)
{
    struct drisk_alert_row a;
    struct drisk_error err = { 0 };
    int w = wanted(st, ls, type, e);
    if (w <= 0)
        return w;
    if (drisk_store_alert_get(st, id, &a, &err))
        return store_fail(e, &err);
    return emit(s, st, ls, type, "alert", api_alert_json(&a), risk, ids, now, e);
}

/* Risk row, alerts and recommendation of a scored shipment, in the caller's transaction,
 * and the webhook events of what changed. *raised counts the alerts opened. */
static int derive(struct svc *s, struct drisk_store *st, const struct svc_shipment *ls,
                  const struct drisk_risk *risk, const struct drisk_settings *settings,
                  const struct svc_model_set *m, int64_t now, int *raised, struct api_error *e)
{
    struct drisk_error err = { 0 };
    struct drisk_risk_row row;
    const int64_t *ids = m ? m->scorer.id : (const int64_t[DRISK_TARGET_COUNT]){ 0, 0, 0 };
    api_risk_row(risk, ids, &row);
    if (drisk_store_risk_put(st, ls->sh.id, &row, &err))
        return store_fail(e, &err);
    /* the shadows' scores beside the active models', for drisk report --live */
    for (int k = 0; m && k < DRISK_TARGET_COUNT; k++) {
        if (!m->scorer.shadow[k] || isnan(risk->shadow[k]))
            continue;
        int eta = k == DRISK_TARGET_ETA;
        struct drisk_shadow_row sr = {
            .shipment = ls->sh.id, .as_of = risk->as_of, .target = (enum drisk_target)k,
            .champion_id = ids[k], .shadow_id = m->scorer.shadow_id[k],
            .champion = eta ? risk->eta_p50_h : k == DRISK_TARGET_LATE ? risk->p_late : risk->p_lost,
            .champion_p90 = eta ? risk->eta_p90_h : NAN,
            .shadow = risk->shadow[k], .shadow_p90 = eta ? risk->shadow_eta_p90_h : NAN,
        };
        if (drisk_store_shadow_put(st, &sr, &err))
            return store_fail(e, &err);
    }

    /* delivered or returned closes the case; a parcel the carrier declared lost stays
     * open for its claim (p_lost is 1) */
    int known = ls->sh.outcome == DRISK_OUTCOME_DELIVERED || ls->sh.outcome == DRISK_OUTCOME_RETURNED;
    struct drisk_alert_want want[DRISK_ALERT_COUNT];
    if (!known)
        drisk_alerts_decide(settings, &ls->sh, ls->ev, ls->n, risk->p_late, risk->p_lost, now, want);
    else
        memset(want, 0, sizeof want);
    struct drisk_alert_row open[DRISK_ALERTS_MAX_OPEN];
    size_t n_open;
    int have[DRISK_ALERT_COUNT] = { 0 };
    if (drisk_store_alerts_open(st, ls->sh.id, open, &n_open, &err))
        return store_fail(e, &err);
    for (size_t i = 0; i < n_open; i++) {
        int type = -1;
        for (int t = 0; t < DRISK_ALERT_COUNT; t++)
            if (strcmp(open[i].type, drisk_alert_type_name(t)) == 0)
                type = t;
        if (type < 0)
            continue;
        have[type] = 1;
        int tr = drisk_alert_transition(type, drisk_severity_parse(open[i].severity),
                                        want[type].severity, known);
        if (tr == 1 && drisk_store_alert_change(st, open[i].id,
                                                drisk_severity_name(want[type].severity),
                                                want[type].message, 0, now, &err))
            return store_fail(e, &err);
        if (tr == 2 && drisk_store_alert_change(st, open[i].id, NULL, NULL, 1, now, &err))
            return store_fail(e, &err);
        if (tr && emit_alert(s, st, ls, tr == 1 ? "alert.escalated" : "alert.cleared",
                             open[i].id, risk, ids, now, e))
            return -1;
    }
    for (int t = 0; t < DRISK_ALERT_COUNT; t++) {
        if (have[t] || want[t].severity == DRISK_SEVERITY_NONE)
            continue;
        int64_t id;
        if (drisk_store_alert_open(st, ls->sh.id, drisk_alert_type_name(t),
                                   drisk_severity_name(want[t].severity), want[t].message, now,
                                   &id, &err))
            return store_fail(e, &err);
        if (!id)
            continue; /* another node raised it since we looked */
        atomic_fetch_add_explicit(&s->counters.alerts_raised[t], 1, memory_order_relaxed);
        (*raised)++;
        if (emit_alert(s, st, ls, "alert.opened", id, risk, ids, now, e))
            return -1;
    }

    struct drisk_rec_row rr;
    if (known || risk->level == DRISK_RISK_LOW) {
        int closed = 0;
        if (drisk_store_rec_close(st, ls->sh.id, now, &closed, &err))
            return store_fail(e, &err);
        int w = closed ? wanted(st, ls, "recommendation.closed", e) : 0;
        if (w <= 0)
            return w;
        /* what was recommended, now closed */
        memset(&rr, 0, sizeof rr);
        rr.shipment = ls->sh.id;
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "shipment_id", ls->sh.shipment_id);
        cJSON_AddStringToObject(item, "status", "closed");
        cJSON_AddStringToObject(item, "reason", known ? drisk_outcome_name(ls->sh.outcome)
                                                      : "risk_low");
        return emit(s, st, ls, "recommendation.closed", "recommendation", item, risk, ids, now, e);
    }
    struct drisk_recommendation rec;
    drisk_recommend(settings, &ls->sh, risk->p_late, risk->p_lost, now, &rec);
    api_rec_row(&rec, &rr);
    int what = DRISK_REC_SAME;
    if (drisk_store_rec_put(st, ls->sh.id, &rr, now, &what, &err))
        return store_fail(e, &err);
    const char *type = what == DRISK_REC_CREATED ? "recommendation.created"
                                                 : "recommendation.changed";
    int w = what == DRISK_REC_SAME ? 0 : wanted(st, ls, type, e);
    if (w <= 0)
        return w;
    struct drisk_rec_row now_row;
    if (drisk_store_rec_get(st, ls->sh.id, &now_row, &err))
        return store_fail(e, &err);
    return emit(s, st, ls, type, "recommendation", api_rec_json(&now_row), risk, ids, now, e);
}

int svc_refresh(struct svc *s, struct drisk_store *st, struct svc_model_set *m, int64_t row,
                int64_t now, struct drisk_risk *risk, struct api_error *e)
{
    struct svc_shipment ls;
    struct drisk_settings settings;
    int raised = 0;
    if (svc_read_shipment(st, row, &ls, e))
        return -1;
    int rc = svc_settings(s, st, ls.sh.merchant, &settings, e) ||
             svc_score(s, m, &settings, &ls.sh, ls.ev, ls.n, ls.loc, now, risk, e) ||
             derive(s, st, &ls, risk, &settings, m, now, &raised, e);
    svc_shipment_free(&ls);
    return rc ? -1 : 0;
}

/* ---- ingestion ---- */

struct open_list {
    struct svc_shipment *a;
    size_t n, cap;
};

static int cmp_int64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_ship_id(const void *a, const void *b)
{
    int64_t x = ((const struct svc_shipment *)a)->sh.id, y = ((const struct svc_shipment *)b)->sh.id;
    return (x > y) - (x < y);
}

static int collect_text(const struct drisk_shipment *sh, const struct drisk_scan *scans, size_t n,
                        void *ctx, struct drisk_error *err)
{
    struct open_list *l = ctx;
    if (l->n == l->cap) { /* sized by the caller: one per id asked for */
        drisk_error_set(err, DRISK_EIO, "more shipments than asked for");
        return -1;
    }
    if (copy_shipment(sh, scans, n, 1, &l->a[l->n])) {
        drisk_error_set(err, DRISK_ENOMEM, "out of memory reading shipments");
        return -1;
    }
    l->n++;
    return 0;
}

#define READ_MANY_MAX 1000 /* shipments read in one query */

/* Shipments ids[0..n) (distinct) with their scans, READ_MANY_MAX to a query, into *got
 * (allocated here, sorted by id; free each with svc_shipment_free, then got->a). Those
 * not found are left out. */
static int read_many(struct drisk_store *st, const int64_t *ids, size_t n, struct open_list *got,
                     struct drisk_error *err)
{
    memset(got, 0, sizeof *got);
    if (!(got->a = calloc(n ? n : 1, sizeof *got->a))) {
        drisk_error_set(err, DRISK_ENOMEM, "out of memory reading shipments");
        return -1;
    }
    got->cap = n;
    int rc = 0;
    for (size_t from = 0; from < n && !rc; from += READ_MANY_MAX) {
        struct drisk_store_filter f = { .ids = ids + from,
                                        .n_ids = n - from < READ_MANY_MAX ? n - from : READ_MANY_MAX };
        rc = drisk_store_iterate(st, &f, collect_text, got, err) ? -1 : 0;
    }
    qsort(got->a, got->n, sizeof *got->a, cmp_ship_id); /* what was read, even after a failure */
    return rc;
}

static struct svc_shipment *find_read(struct open_list *got, int64_t id)
{
    struct svc_shipment key = { .sh.id = id };
    return got->n ? bsearch(&key, got->a, got->n, sizeof *got->a, cmp_ship_id) : NULL;
}

struct new_scan {
    int64_t row;
    size_t in;     /* index into the request */
    int delivered; /* this scan delivered the shipment */
};

/* Feeds the network one new scan of ls (and the delivery it made, if any), under the
 * write lock held by the caller. */
static void feed(struct svc *s, const struct svc_shipment *ls, const struct drisk_scan *sc,
                 int delivered)
{
    for (size_t k = 0; k < ls->n; k++) {
        const struct drisk_scan *have = &ls->scans[k];
        if (have->ts == sc->ts && have->event == sc->event &&
            strcmp(have->location, sc->location) == 0) {
            if (drisk_network_on_scan(s->net, &ls->sh, k ? &ls->ev[k - 1] : NULL, &ls->ev[k]))
                DRISK_LOG(DRISK_LOG_WARN, "network statistics: out of memory");
            break;
        }
    }
    if (delivered && ls->sh.delivered_at != DRISK_TS_NONE) {
        if (ls->sh.delivered_at <= ls->sh.promised_at)
            drisk_network_on_outcome(s->net, &ls->sh, ls->ev, ls->n, 0, ls->sh.delivered_at);
        drisk_network_on_delivered(s->net, &ls->sh, ls->ev, ls->n);
    }
}

/* Runs derived writes (risk, alerts, recommendations) with synchronous=NORMAL: they can
 * be recomputed from the durable scans, so they do not pay an fsync of their own (the
 * next durable commit carries them). */
static void relaxed(struct drisk_store *st, int on)
{
    drisk_store_set_synchronous(st, on ? 1 : 2);
}

int svc_ingest(struct svc *s, const char *merchant, const struct drisk_shipment *ensure,
               const struct svc_scan_in *in, size_t n, int64_t now,
               struct svc_ingest_result *res, struct api_error *e)
{
    struct drisk_error err = { 0 };
    struct drisk_store *st = svc_store(s, e);
    memset(res, 0, sizeof *res);
    res->received = n;
    if (!st)
        return -1;
    size_t cap = n ? n : 1;
    struct new_scan *ns = malloc(cap * sizeof *ns);
    int64_t *rows = malloc((n + 1) * sizeof *rows);
    struct drisk_scan_put *puts = malloc(cap * sizeof *puts);
    struct drisk_scan_put_out *outs = malloc(cap * sizeof *outs);
    struct drisk_log_entry *logs = malloc(cap * sizeof *logs);
    int *put_res = malloc(cap * sizeof *put_res);
    struct svc_shipment *ls = NULL;
    size_t n_ns = 0, n_rows = 0, n_logs = 0, fresh = 0;
    int rc = -1;
    if (!ns || !rows || !puts || !outs || !logs || !put_res) {
        api_fail(e, 503, "out_of_memory", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        puts[i] = (struct drisk_scan_put){ merchant, in[i].shipment_id, &in[i].scan };
    if (drisk_store_begin(st, &err)) {
        store_fail(e, &err);
        goto out;
    }
    if ((ensure && drisk_store_ensure_shipment(st, ensure, &res->upserted, &err)) ||
        drisk_store_put_scans_each(st, puts, n, put_res, outs, &fresh, &err)) {
        drisk_store_rollback(st);
        store_fail(e, &err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int changed = 0;
        if (put_res[i] != DRISK_SCAN_PUT_STORED) {
            drisk_store_rollback(st);
            api_fail(e, 422, "unknown_shipment",
                     "scans[%zu].shipment_id: no shipment \"%s\" for this merchant: create it "
                     "first with POST /v1/shipments (nothing from this request was stored)",
                     i, in[i].shipment_id);
            goto out;
        }
        int64_t row = rows[i] = outs[i].shipment;
        if (!outs[i].fresh) {
            res->duplicates++;
            continue;
        }
        res->inserted++;
        ns[n_ns++] = (struct new_scan){ row, i, 0 };
        int ev = in[i].scan.event;
        if ((ev == DRISK_EVENT_DELIVERED || ev == DRISK_EVENT_LOST) &&
            drisk_store_set_outcome(st, row,
                                    ev == DRISK_EVENT_DELIVERED ? DRISK_OUTCOME_DELIVERED
                                                                : DRISK_OUTCOME_LOST,
                                    in[i].scan.ts, &changed, &err)) {
            drisk_store_rollback(st);
            store_fail(e, &err);
            goto out;
        }
        ns[n_ns - 1].delivered = changed && ev == DRISK_EVENT_DELIVERED;
        /* for the other nodes' network statistics (svc_follow) */
        struct drisk_log_entry *le = &logs[n_logs++];
        *le = (struct drisk_log_entry){ .node = s->node, .kind = DRISK_LOG_SCAN, .shipment = row,
                                        .ts = in[i].scan.ts, .event = ev,
                                        .delivered = ns[n_ns - 1].delivered };
        snprintf(le->location, sizeof le->location, "%s", in[i].scan.location);
    }
    if (drisk_store_log_put_many(st, logs, n_logs, now, &err)) {
        drisk_store_rollback(st);
        store_fail(e, &err);
        goto out;
    }
    if (drisk_store_commit(st, &err)) {
        drisk_store_rollback(st);
        store_fail(e, &err);
        goto out;
    }
    atomic_fetch_add_explicit(&s->counters.scans_inserted, (long long)res->inserted,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->counters.scans_duplicate, (long long)res->duplicates,
                              memory_order_relaxed);
    rc = 0; /* durable from here on: what follows is derived and recomputed by the sweep */

    /* every shipment the request names, new scans or not, is re-scored (rows[] holds the
     * row of each scan in request order; made unique here, in place) */
    for (size_t i = 0; i < n; i++) {
        int64_t row = rows[i];
        size_t k = 0;
        while (k < n_rows && rows[k] != row)
            k++;
        if (k == n_rows)
            rows[n_rows++] = row;
    }
    if (ensure) { /* the shipment written first is re-scored too, scans or not */
        size_t k = 0;
        while (k < n_rows && rows[k] != res->upserted)
            k++;
        if (k == n_rows)
            rows[n_rows++] = res->upserted;
    }
    ls = calloc(n_rows ? n_rows : 1, sizeof *ls);
    res->touched = calloc(n_rows ? n_rows : 1, sizeof *res->touched);
    if (!ls || !res->touched) {
        DRISK_LOG(DRISK_LOG_ERROR, "out of memory re-scoring after ingestion");
        goto out;
    }
    res->n_touched = n_rows;
    struct api_error e2;
    struct open_list got;
    if (read_many(st, rows, n_rows, &got, &err))
        DRISK_LOG(DRISK_LOG_WARN, "re-scoring after ingestion: %s", err.msg);
    for (size_t r = 0; r < n_rows; r++) {
        struct svc_shipment *g = find_read(&got, rows[r]);
        res->touched[r].row = rows[r];
        if (!g)
            continue; /* ls[r].sh.id stays 0: not re-scored */
        ls[r] = *g; /* moved */
        memset(g, 0, sizeof *g);
        snprintf(res->touched[r].shipment_id, sizeof res->touched[r].shipment_id, "%s",
                 ls[r].sh.shipment_id);
    }
    for (size_t i = 0; i < got.n; i++)
        svc_shipment_free(&got.a[i]);
    free(got.a);
    pthread_rwlock_wrlock(&s->net_lock);
    for (size_t r = 0; r < n_rows; r++)
        for (size_t q = 0; q < n_ns; q++)
            if (ns[q].row == rows[r] && ls[r].sh.id)
                feed(s, &ls[r], &in[ns[q].in].scan, ns[q].delivered);
    pthread_rwlock_unlock(&s->net_lock);

    struct svc_model_set *m = svc_models_acquire(s);
    struct drisk_settings settings;
    if (svc_settings(s, st, merchant, &settings, &e2) == 0) {
        for (size_t r = 0; r < n_rows; r++)
            if (ls[r].sh.id &&
                svc_score(s, m, &settings, &ls[r].sh, ls[r].ev, ls[r].n, ls[r].loc, now,
                          &res->touched[r].risk, &e2) == 0)
                res->touched[r].scored = 1;
        relaxed(st, 1);
        if (drisk_store_begin(st, &err) == 0) {
            int ok = 1;
            for (size_t r = 0; r < n_rows && ok; r++)
                if (res->touched[r].scored &&
                    derive(s, st, &ls[r], &res->touched[r].risk, &settings, m, now,
                           &res->alerts_raised, &e2))
                    ok = 0;
            if (!ok || drisk_store_commit(st, &err)) {
                drisk_store_rollback(st);
                DRISK_LOG(DRISK_LOG_WARN, "risk after ingestion not stored (the sweep will): %s",
                          ok ? err.msg : e2.message);
            }
            svc_events_committed(s);
        }
        relaxed(st, 0);
    }
    svc_models_release(m);
out:
    if (ls)
        for (size_t r = 0; r < n_rows; r++)
            svc_shipment_free(&ls[r]);
    free(ls);
    free(ns);
    free(rows);
    free(puts);
    free(outs);
    free(logs);
    free(put_res);
    return rc;
}

#define CHECKPOINT_EVERY_S (6 * 3600.0)

/* ---- the sweep ---- */

static int collect_open(const struct drisk_shipment *sh, const struct drisk_scan *scans, size_t n,
                        void *ctx, struct drisk_error *err)
{
    struct open_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        struct svc_shipment *p = realloc(l->a, cap * sizeof *p);
        if (!p) {
            drisk_error_set(err, DRISK_ENOMEM, "out of memory sweeping");
            return -1;
        }
        l->a = p;
        l->cap = cap;
    }
    if (copy_shipment(sh, scans, n, 0, &l->a[l->n])) { /* events only: no scan text */
        drisk_error_set(err, DRISK_ENOMEM, "out of memory sweeping");
        return -1;
    }
    l->n++;
    return 0;
}

/* Sweeps one shard claimed at now, last swept at prev: the promises that passed since
 * with the shipment still in flight become late outcomes (fed here, and logged for the
 * other nodes), then every open shipment of the shard is re-scored. */
static void sweep_shard(struct svc *s, struct drisk_store *st, int shard, int64_t prev,
                        int64_t now, size_t *swept, int *raised)
{
    struct drisk_error err = { 0 };
    struct open_list l = { 0 };
    struct drisk_store_filter f = { .created_from = now - SWEEP_WINDOW_S, .created_to = now + 1,
                                    .open_only = 1, .shards = DRISK_SWEEP_SHARDS, .shard = shard };
    if (drisk_store_iterate(st, &f, collect_open, &l, &err)) {
        DRISK_LOG(DRISK_LOG_WARN, "sweep: %s", err.msg);
        goto out;
    }
    /* a shard never swept logs only what passed since this start (what passed before,
     * the starts' replays fed) */
    int64_t since = prev ? prev : s->started;
    struct drisk_log_entry *late = malloc((l.n ? l.n : 1) * sizeof *late);
    size_t n_late = 0;
    for (size_t i = 0; late && i < l.n; i++) {
        const struct drisk_shipment *sh = &l.a[i].sh;
        if (sh->promised_at > since && sh->promised_at <= now)
            late[n_late++] = (struct drisk_log_entry){ .node = s->node, .kind = DRISK_LOG_LATE,
                                                       .shipment = sh->id, .ts = sh->promised_at };
    }
    if (!late || (n_late && (drisk_store_begin(st, &err) ||
                             drisk_store_log_put_many(st, late, n_late, now, &err) ||
                             drisk_store_commit(st, &err)))) {
        drisk_store_rollback(st);
        DRISK_LOG(DRISK_LOG_WARN, "sweep: late outcomes not logged for the other nodes: %s",
                  late ? err.msg : "out of memory");
    }
    free(late);
    pthread_rwlock_wrlock(&s->net_lock);
    for (size_t i = 0; i < l.n; i++) {
        const struct drisk_shipment *sh = &l.a[i].sh;
        if (sh->promised_at > since && sh->promised_at > s->started && sh->promised_at <= now)
            drisk_network_on_outcome(s->net, sh, l.a[i].ev, l.a[i].n, 1, sh->promised_at);
    }
    pthread_rwlock_unlock(&s->net_lock);

    struct svc_model_set *m = svc_models_acquire(s);
    struct drisk_settings settings;
    char merchant[DRISK_ID_MAX] = "";
    struct api_error e;
    relaxed(st, 1);
    for (size_t i = 0; i < l.n; i += SWEEP_CHUNK) {
        if (drisk_store_begin(st, &err))
            break;
        for (size_t j = i; j < l.n && j < i + SWEEP_CHUNK; j++) {
            struct svc_shipment *ls = &l.a[j];
            struct drisk_risk risk;
            if (strcmp(merchant, ls->sh.merchant) != 0) {
                if (svc_settings(s, st, ls->sh.merchant, &settings, &e))
                    continue;
                snprintf(merchant, sizeof merchant, "%s", ls->sh.merchant);
            }
            if (svc_score(s, m, &settings, &ls->sh, ls->ev, ls->n, ls->loc, now, &risk, &e) == 0)
                derive(s, st, ls, &risk, &settings, m, now, raised, &e);
        }
        if (drisk_store_commit(st, &err)) {
            drisk_store_rollback(st);
            DRISK_LOG(DRISK_LOG_WARN, "sweep: %s", err.msg);
            break;
        }
        svc_events_committed(s);
    }
    relaxed(st, 0);
    svc_models_release(m);
    *swept += l.n;
out:
    for (size_t i = 0; i < l.n; i++)
        svc_shipment_free(&l.a[i]);
    free(l.a);
}

/* One pass: shards that are due, one claim at a time, until none is (the other nodes
 * take theirs meanwhile: whoever is free sweeps the next). */
static void sweep(struct svc *s, struct drisk_store *st)
{
    double t0 = drisk_monotonic_s();
    int64_t every = s->sweep_s >= 1 ? (int64_t)s->sweep_s : 1;
    size_t swept = 0;
    int shards = 0, raised = 0;
    for (;;) {
        struct drisk_error err = { 0 };
        int64_t now = wall_now(), prev;
        int shard;
        enum drisk_status rc = drisk_store_shard_claim(st, s->node, now, every, SWEEP_LEASE_S,
                                                       &shard, &prev, &err);
        if (rc == DRISK_ENOTFOUND)
            break;
        if (rc) {
            DRISK_LOG(DRISK_LOG_WARN, "sweep: %s", err.msg);
            break;
        }
        sweep_shard(s, st, shard, prev, now, &swept, &raised);
        if (drisk_store_shard_done(st, shard, s->node, now, &err))
            DRISK_LOG(DRISK_LOG_WARN, "sweep: %s", err.msg);
        shards++;
    }
    if (!shards)
        return; /* the other nodes swept them all */
    atomic_fetch_add(&s->counters.sweeps, 1);
    atomic_fetch_add(&s->counters.swept_shipments, (long long)swept);
    DRISK_LOG(DRISK_LOG_INFO, "sweep: re-scored %zu open shipments (%d of %d shards) in %.1f s, "
              "%d new alerts", swept, shards, DRISK_SWEEP_SHARDS, drisk_monotonic_s() - t0,
              raised);
}

/* ---- following the other nodes ---- */

struct follow_list {
    struct drisk_log_entry *a;
    size_t n, cap;
    int64_t self;
};

static int collect_entry(const struct drisk_log_entry *e, void *ctx)
{
    struct follow_list *l = ctx;
    if (e->node == l->self)
        return 0; /* fed when it was ingested */
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        struct drisk_log_entry *p = realloc(l->a, cap * sizeof *p);
        if (!p)
            return -1;
        l->a = p;
        l->cap = cap;
    }
    l->a[l->n++] = *e;
    return 0;
}

/* Feeds the network what the other nodes logged since the last call: their scans as
 * svc_ingest feeds its own, and the late outcomes their sweeps saw. */
static void follow(struct svc *s, struct drisk_store *st)
{
    struct drisk_error err = { 0 };
    struct follow_list l = { .self = s->node };
    if (drisk_store_log_follow(st, &s->cursor, collect_entry, &l, &err)) {
        DRISK_LOG(DRISK_LOG_WARN, "following the ingest log: %s", err.msg[0] ? err.msg
                                                                              : "out of memory");
        free(l.a);
        return;
    }
    /* the distinct shipments they name, read together */
    int64_t *ids = malloc((l.n ? l.n : 1) * sizeof *ids);
    size_t n_ids = 0;
    for (size_t i = 0; ids && i < l.n; i++)
        ids[n_ids++] = l.a[i].shipment;
    if (ids) {
        qsort(ids, n_ids, sizeof *ids, cmp_int64);
        size_t u = 0;
        for (size_t i = 0; i < n_ids; i++)
            if (!u || ids[u - 1] != ids[i])
                ids[u++] = ids[i];
        n_ids = u;
    }
    struct open_list got = { 0 };
    if (!ids || read_many(st, ids, n_ids, &got, &err))
        DRISK_LOG(DRISK_LOG_WARN, "following the ingest log: %s", ids ? err.msg : "out of memory");
    pthread_rwlock_wrlock(&s->net_lock);
    for (size_t i = 0; i < l.n; i++) {
        const struct drisk_log_entry *le = &l.a[i];
        const struct svc_shipment *ls = find_read(&got, le->shipment);
        if (!ls)
            continue; /* deleted since */
        if (le->kind == DRISK_LOG_SCAN) {
            struct drisk_scan sc = { .ts = le->ts, .event = le->event };
            snprintf(sc.location, sizeof sc.location, "%s", le->location);
            feed(s, ls, &sc, le->delivered);
        } else if (le->kind == DRISK_LOG_LATE && le->ts > s->started) {
            drisk_network_on_outcome(s->net, &ls->sh, ls->ev, ls->n, 1, le->ts);
        }
    }
    pthread_rwlock_unlock(&s->net_lock);
    for (size_t i = 0; i < got.n; i++)
        svc_shipment_free(&got.a[i]);
    free(got.a);
    free(ids);
    atomic_fetch_add(&s->counters.followed, (long long)l.n);
    free(l.a);
}

/* The follower's thread: the other nodes' ingestion every FOLLOW_EVERY_S, and the model
 * activations made elsewhere every second (here, not beside the sweep, which can take
 * longer than that). */
static void *follower(void *arg)
{
    struct svc *s = arg;
    struct api_error e;
    struct drisk_store *st = svc_store(s, &e);
    double next_reload = drisk_monotonic_s() + 1;
    pthread_mutex_lock(&s->bg_lock);
    while (!s->stopping && st) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        long ns = t.tv_nsec + (long)(FOLLOW_EVERY_S * 1e9);
        t.tv_sec += ns / 1000000000L;
        t.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&s->bg_cond, &s->bg_lock, &t);
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->bg_lock);
        follow(s, st);
        if (drisk_monotonic_s() >= next_reload) {
            struct api_error re;
            if (reload_with(s, st, &re))
                DRISK_LOG(DRISK_LOG_WARN, "model reload: %s", re.message);
            next_reload = drisk_monotonic_s() + 1;
        }
        pthread_mutex_lock(&s->bg_lock);
    }
    pthread_mutex_unlock(&s->bg_lock);
    return NULL;
}

static void *background(void *arg)
{
    struct svc *s = arg;
    struct api_error e;
    struct drisk_store *st = svc_store(s, &e);
    double next_sweep = drisk_monotonic_s(); /* the first sweep right away: alerts from the start */
    double next_upkeep = next_sweep;
    /* a start without a checkpoint writes one a minute in; then every CHECKPOINT_EVERY_S */
    double next_checkpoint = next_sweep + (s->checkpoint_used ? CHECKPOINT_EVERY_S : 60);
    pthread_mutex_lock(&s->bg_lock);
    while (!s->stopping) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_sec += 1;
        pthread_cond_timedwait(&s->bg_cond, &s->bg_lock, &t);
        if (s->stopping || !st)
            break;
        pthread_mutex_unlock(&s->bg_lock);
        if (drisk_monotonic_s() >= next_upkeep) {
            struct drisk_error me = { 0 };
            if (drisk_store_maintain(st, wall_now(), &me))
                DRISK_LOG(DRISK_LOG_WARN, "store upkeep: %s", me.msg);
            next_upkeep = drisk_monotonic_s() + UPKEEP_EVERY_S;
        }
        if (drisk_monotonic_s() >= next_checkpoint) { /* the next start replays less */
            struct drisk_error ce = { 0 };
            struct drisk_checkpoint_result cr;
            double c0 = drisk_monotonic_s();
            if (drisk_network_checkpoint(st, wall_now(), 0, &cr, &ce))
                DRISK_LOG(DRISK_LOG_WARN, "network checkpoint: %s", ce.msg);
            else
                DRISK_LOG(DRISK_LOG_INFO, "network checkpoint written (%zu bytes) in %.1f s",
                          cr.bytes, drisk_monotonic_s() - c0);
            next_checkpoint = drisk_monotonic_s() + CHECKPOINT_EVERY_S;
        }
        if (s->sweep_s > 0 && drisk_monotonic_s() >= next_sweep) {
            sweep(s, st);
            next_sweep = drisk_monotonic_s() + s->sweep_s;
        }
        pthread_mutex_lock(&s->bg_lock);
    }
    pthread_mutex_unlock(&s->bg_lock);
    return NULL;
}

/* A random id for this process (the ingest log's node column). */
static int64_t node_id(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1)
        v = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid() << 32;
    if (f)
        fclose(f);
    return (int64_t)(v >> 2) + 1; /* positive, non-zero */
}

int svc_create(const char *db_path, struct svc **out, struct api_error *e)
{
    struct svc *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s || !(s->db_path = strdup(db_path))) {
        free(s);
        return api_fail(e, 503, "out_of_memory", "out of memory starting the server");
    }
    pthread_key_create(&s->store_key, NULL);
    pthread_mutex_init(&s->stores_lock, NULL);
    pthread_rwlock_init(&s->net_lock, NULL);
    pthread_mutex_init(&s->models_lock, NULL);
    pthread_mutex_init(&s->bg_lock, NULL);
    pthread_cond_init(&s->bg_cond, NULL);
    struct drisk_error err = { 0 };
    struct drisk_store *st = svc_store(s, e);
    if (!st)
        goto fail;
    double t0 = drisk_monotonic_s();
    s->started = wall_now();
    s->node = node_id();
    int64_t cp;
    /* the replay and the log's end as of one moment: the follower takes up exactly
     * where the replay stopped */
    if (drisk_store_begin_snapshot(st, &err) || drisk_store_log_position(st, &s->cursor, &err) ||
        drisk_network_start(st, s->started, &s->net, &cp, &err)) {
        drisk_store_rollback(st);
        api_fail_from(e, 503, "store_unavailable", &err);
        goto fail;
    }
    drisk_store_rollback(st); /* it only read */
    char cps[DRISK_TS_BUF];
    s->checkpoint_used = cp != DRISK_TS_NONE;
    DRISK_LOG(DRISK_LOG_INFO, "network statistics replayed from %s in %.1f s (%s%s)", db_path,
              drisk_monotonic_s() - t0, cp != DRISK_TS_NONE ? "from the checkpoint as of "
                                                            : "the whole history: no checkpoint",
              cp != DRISK_TS_NONE ? drisk_ts_format(cp, cps) : "");
    if (reload_with(s, st, e))
        goto fail;
    *out = s;
    return 0;
fail:
    svc_free(s);
    return -1;
}

int svc_start_background(struct svc *s, double sweep_s, struct api_error *e)
{
    s->sweep_s = sweep_s;
    if (pthread_create(&s->bg, NULL, background, s))
        return api_fail(e, 503, "no_thread", "cannot start the sweep thread: %s", strerror(errno));
    s->bg_running = 1;
    if (pthread_create(&s->follower, NULL, follower, s))
        return api_fail(e, 503, "no_thread", "cannot start the ingest log follower: %s",
                        strerror(errno));
    s->follower_running = 1;
    return 0;
}

void svc_free(struct svc *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->bg_lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->bg_cond);
    pthread_mutex_unlock(&s->bg_lock);
    if (s->bg_running)
        pthread_join(s->bg, NULL);
    if (s->follower_running)
        pthread_join(s->follower, NULL);
    svc_models_release(s->models);
    drisk_network_free(s->net);
    for (size_t i = 0; i < s->n_stores; i++)
        drisk_store_free(s->stores[i]);
    pthread_key_delete(s->store_key);
    pthread_mutex_destroy(&s->stores_lock);
    pthread_rwlock_destroy(&s->net_lock);
    pthread_mutex_destroy(&s->models_lock);
    pthread_mutex_destroy(&s->bg_lock);
    pthread_cond_destroy(&s->bg_cond);
    free(s->db_path);
    free(s);
}
