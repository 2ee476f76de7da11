/* The server's live state and operations, behind the HTTP layer (api/server.c): the
 * active models (reference-counted, swapped without stopping scoring), the network
 * statistics (replayed from the store at start, then fed every live event), one store
 * connection per thread, ingestion, scoring, alerts and recommendations, and the
 * periodic sweep. Private to api/. */
#ifndef DRISK_API_SERVICE_H
#define DRISK_API_SERVICE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "data/live.h"
#include "data/store.h"
#include "engine/policy.h"
#include "engine/risk.h"

struct svc;

/* The active models, shared by every request that acquired them. */
struct svc_model_set {
    atomic_int refs;
    struct drisk_model *model[DRISK_TARGET_COUNT];
    struct drisk_feature_schema schema[DRISK_TARGET_COUNT];
    signed char *families[DRISK_TARGET_COUNT];
    struct drisk_model *shadow[DRISK_TARGET_COUNT];          /* drisk models shadow */
    struct drisk_feature_schema shadow_schema[DRISK_TARGET_COUNT];
    int64_t shadow_tried[DRISK_TARGET_COUNT]; /* the shadow ids asked for (loaded or not) */
    struct drisk_scorer scorer;
};

/* The one error convention of api/: every function here that can fail returns 0, or -1
 * with a struct api_error: the HTTP status, a JSON error code and message, and the
 * drisk_status behind it (for drisk_server_start, which speaks drisk_status to its
 * caller). Errors from the modules below (struct drisk_error) are converted where they
 * are received (api_fail_from). */
struct api_error {
    int status;
    char code[32];
    char message[480];
    enum drisk_status cause; /* DRISK_EINVAL for a 4xx, DRISK_EIO for a 5xx unless set */
};

int api_fail(struct api_error *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* e from err: its message and status kept. -1. */
int api_fail_from(struct api_error *e, int status, const char *code, const struct drisk_error *err);

int svc_create(const char *db_path, struct svc **out, struct api_error *e);
/* Starts the sweep thread, which re-scores open shipments every sweep_s seconds (the
 * shards due, divided with the other nodes of the store: data/live.h), and the follower,
 * which feeds the network statistics what the other nodes ingest, every 0.25 s, and
 * picks up model activations made elsewhere (drisk models activate) within 1 s. */
int svc_start_background(struct svc *s, double sweep_s, struct api_error *e);
void svc_free(struct svc *s);

/* The calling thread's store connection (opened on first use); NULL with e set. */
struct drisk_store *svc_store(struct svc *s, struct api_error *e);

struct svc_model_set *svc_models_acquire(struct svc *s);
void svc_models_release(struct svc_model_set *m);
/* Loads the store's active models and swaps them in (no-op when unchanged). */
int svc_models_reload(struct svc *s, struct api_error *e);

/* The merchant's settings: defaults overlaid with the stored JSON. Cached per thread for
 * a few seconds; svc_settings_changed drops every cached copy (this process's PUTs). */
int svc_settings(struct svc *s, struct drisk_store *st, const char *merchant,
                 struct drisk_settings *out, struct api_error *e);
void svc_settings_changed(struct svc *s);

/* The API key key[0..len): its merchant ("" for none) and admin flag, found by its
 * SHA-256. Answers are cached per thread for SVC_CACHE_S seconds (a hit compares the key
 * in constant time and skips the hash), so a revoked key stops working within that time;
 * unknown keys are never cached. -1 with e set (401). */
#define SVC_CACHE_S 5.0
int svc_auth(struct svc *s, struct drisk_store *st, const char *key, size_t len,
             char merchant[DRISK_ID_MAX], int *admin, struct api_error *e);

/* A shipment as read from the store: its scans as events (what scoring reads), the code
 * of its last located scan (for the reasons) and, when asked for, the scans' full text
 * (timeline, ingestion; NULL otherwise: the sweep holds thousands of shipments). */
struct svc_shipment {
    struct drisk_shipment sh;
    struct drisk_scan *scans;
    size_t n;
    struct drisk_scan_event *ev;
    char loc[DRISK_NAME_MAX];
};
void svc_shipment_free(struct svc_shipment *ls);
/* Reads shipment row id; -1 with e set (404 when gone). */
int svc_read_shipment(struct drisk_store *st, int64_t id, struct svc_shipment *out,
                      struct api_error *e);

/* Scores sh as of as_of from its scan events (time order) with the active models; loc
 * names the facility of the last located scan ("" if none). */
int svc_score(struct svc *s, struct svc_model_set *m, const struct drisk_settings *settings,
              const struct drisk_shipment *sh, const struct drisk_scan_event *ev, size_t n,
              const char *loc, int64_t as_of, struct drisk_risk *out, struct api_error *e);

/* What the network knows of sh's places at now: bit c of *unseen is set when category c
 * (enum drisk_category) has no outcome history yet, and *transit_h is the typical
 * created -> delivered hours of its lane, or else of its carrier x service, learned from
 * SVC_TRANSIT_MIN_N deliveries at least (NAN when neither has that many). Returns where
 * it came from: "lane_transit", "service_transit" or "default_5_days". */
#define SVC_TRANSIT_MIN_N 5
const char *svc_network_facts(struct svc *s, const struct drisk_shipment *sh, int64_t now,
                              unsigned *unseen, double *transit_h);

/* One incoming scan for ingestion. */
struct svc_scan_in {
    char shipment_id[DRISK_ID_MAX];
    struct drisk_scan scan;
};

/* What ingestion did for one touched shipment. */
struct svc_touched {
    int64_t row;
    char shipment_id[DRISK_ID_MAX];
    struct drisk_risk risk;
    int scored;
};

struct svc_ingest_result {
    int64_t upserted; /* the row of the shipment ensured first, if one was */
    size_t received, inserted, duplicates;
    size_t n_touched;
    struct svc_touched *touched; /* malloc'd; free it */
    int alerts_raised;
};

/* Writes the scans of merchant in one durable transaction (idempotent; all or nothing),
 * after ensuring the shipment ensure when not NULL (drisk_store_ensure_shipment: the
 * aggregator webhooks create the shipment their scans belong to, or move its carrier
 * estimate), feeds the new scans to the network, re-scores every touched shipment and
 * updates its risk, alerts and recommendation. -1 with e set. */
int svc_ingest(struct svc *s, const char *merchant, const struct drisk_shipment *ensure,
               const struct svc_scan_in *in, size_t n, int64_t now,
               struct svc_ingest_result *res, struct api_error *e);

/* Webhooks: fn(ctx) is called after a commit that queued webhook deliveries (the
 * caller of svc_refresh commits, then calls svc_events_committed). */
void svc_on_events(struct svc *s, void (*fn)(void *), void *ctx);
void svc_events_committed(struct svc *s);

/* Re-scores stored shipment row (risk, alerts, recommendation) after a change made
 * through POST /v1/shipments; in the caller's transaction. */
int svc_refresh(struct svc *s, struct drisk_store *st, struct svc_model_set *m, int64_t row,
                int64_t now, struct drisk_risk *risk, struct api_error *e);

#define SVC_SCORE_BUCKETS 10

/* Counters the metrics page shows. */
struct svc_counters {
    atomic_llong scans_inserted, scans_duplicate, alerts_raised[DRISK_ALERT_COUNT],
        sweeps, swept_shipments, model_swaps,
        followed; /* ingest log entries of other nodes fed to the network statistics */
    atomic_llong score_hist[16]; /* scoring latency buckets (see api/server.c) */
    atomic_llong score_count;
    atomic_llong score_ns; /* total scoring time */
    /* the live score distributions of late and lost, active model (0) and shadow (1), in
     * tenths: [target][role][bucket 0..9] */
    atomic_llong score_dist[2][2][SVC_SCORE_BUCKETS];
    atomic_llong score_sum_micro[2][2]; /* their sums, in millionths */
    atomic_llong shadow_scored; /* scorings that ran a shadow */
};
struct svc_counters *svc_counters(struct svc *s);
/* Seconds bucket bounds of score_hist (n of them; the last bucket is +Inf). */
const double *svc_latency_bounds(size_t *n);
void svc_observe(atomic_llong *hist, double seconds);


#endif
