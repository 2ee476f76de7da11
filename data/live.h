/* The server's tables in the store: each shipment's latest risk, the alert feed, claim /
 * reship / refund recommendations, merchants' settings, and outcomes learned from scans.
 * Same threading rules as data/store.h: one connection per thread. The JSON columns
 * (reasons, model ids, costs, settings) are text produced and parsed by api/; data/
 * stores them as given. */
#ifndef DRISK_LIVE_H
#define DRISK_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "data/store.h"
#include "engine/policy.h"
#include "models/model.h"

/* ---- outcomes learned from scans ---- */

/* Sets the outcome of shipment row id to outcome (enum drisk_outcome) and, for a
 * delivery, delivered_at. A shipment whose outcome is already known keeps it: an older
 * scan arriving late never reopens a delivered shipment. *changed: 1 if it was set. */
enum drisk_status drisk_store_set_outcome(struct drisk_store *store, int64_t shipment, int outcome,
                                          int64_t delivered_at, int *changed,
                                          struct drisk_error *err);

/* ---- risk ---- */

struct drisk_risk_row {
    int64_t as_of;
    double p_late, p_lost;    /* NAN when no model */
    int64_t eta, eta_p90;     /* DRISK_TS_NONE when no model */
    char level[8];
    char reasons[2048];       /* JSON array text */
    char model_ids[256];      /* JSON object text */
};

enum drisk_status drisk_store_risk_put(struct drisk_store *store, int64_t shipment,
                                       const struct drisk_risk_row *r, struct drisk_error *err);
/* DRISK_ENOTFOUND (err untouched) when the shipment was never scored. */
enum drisk_status drisk_store_risk_get(struct drisk_store *store, int64_t shipment,
                                       struct drisk_risk_row *r, struct drisk_error *err);

/* ---- alerts ---- */

struct drisk_alert_row {
    int64_t id, seq, shipment;
    char shipment_id[DRISK_ID_MAX];
    char type[24];
    char severity[16];
    int64_t opened_at, updated_at, cleared_at; /* cleared_at DRISK_TS_NONE while open */
    int64_t acked_at;                          /* DRISK_TS_NONE until acknowledged */
    char message[512];
};

#define DRISK_ALERTS_MAX_OPEN 8

/* The open alerts of a shipment (at most DRISK_ALERTS_MAX_OPEN). */
enum drisk_status drisk_store_alerts_open(struct drisk_store *store, int64_t shipment,
                                          struct drisk_alert_row *out, size_t *n,
                                          struct drisk_error *err);
/* Opens an alert of type on shipment at now; it takes the next feed seq. *id (may be
 * NULL) receives the alert's id, or 0 when one of type is open already (raised by
 * another connection since the caller looked: a unique index allows one open alert per
 * shipment and type). Feed seqs are handed out one transaction at a time (on
 * PostgreSQL, under a lock held to commit), so they commit in their order and a reader
 * of the feed never skips one. */
enum drisk_status drisk_store_alert_open(struct drisk_store *store, int64_t shipment,
                                         const char *type, const char *severity,
                                         const char *message, int64_t now, int64_t *id,
                                         struct drisk_error *err);
/* Alert id, whoever's (DRISK_ENOTFOUND when none). */
enum drisk_status drisk_store_alert_get(struct drisk_store *store, int64_t id,
                                        struct drisk_alert_row *out, struct drisk_error *err);
/* Changes an open alert's severity and message (escalation), or clears it (clear = 1);
 * either way it takes the next feed seq. */
enum drisk_status drisk_store_alert_change(struct drisk_store *store, int64_t alert_id,
                                           const char *severity, const char *message,
                                           int clear, int64_t now, struct drisk_error *err);

typedef int (*drisk_alert_fn)(const struct drisk_alert_row *row, void *ctx);
/* Filters of the feed; NULL fields match everything. */
struct drisk_alert_filter {
    const char *type;     /* delay_risk, likely_lost, carrier_exception, stalled */
    const char *severity; /* warning, critical */
    const char *status;   /* open, cleared */
};
/* The merchant's alerts whose seq is after since and that pass f (NULL: all), in seq
 * order, at most limit of them; fn returning non-zero stops early. */
enum drisk_status drisk_store_alert_feed(struct drisk_store *store, const char *merchant,
                                         int64_t since, int limit,
                                         const struct drisk_alert_filter *f, drisk_alert_fn fn,
                                         void *ctx, struct drisk_error *err);
/* Acknowledges the merchant's alert id at now (the first acknowledgement stays) and reads
 * it back into out; DRISK_ENOTFOUND when the merchant has no such alert. */
enum drisk_status drisk_store_alert_ack(struct drisk_store *store, const char *merchant,
                                        int64_t id, int64_t now, struct drisk_alert_row *out,
                                        struct drisk_error *err);

/* ---- recommendations ---- */

struct drisk_rec_row {
    int64_t id, shipment;
    char shipment_id[DRISK_ID_MAX];
    int64_t created_at, updated_at;
    char action[24];
    int64_t deadline; /* DRISK_TS_NONE: none */
    char costs[512];  /* JSON object text */
    char why[512];
    int open;
    /* what the merchant last reported doing with it ("" when nothing yet) */
    char outcome[16];
    double outcome_amount; /* NAN when none (claim_paid carries the amount paid) */
    int64_t outcome_at;
};

enum { DRISK_REC_SAME, DRISK_REC_CHANGED, DRISK_REC_CREATED };
/* Makes r the shipment's open recommendation (replacing the open one in place; a new row
 * when there is none). *what (may be NULL): DRISK_REC_SAME when the open one had the
 * same action, DRISK_REC_CHANGED when another, DRISK_REC_CREATED when there was none. */
enum drisk_status drisk_store_rec_put(struct drisk_store *store, int64_t shipment,
                                      const struct drisk_rec_row *r, int64_t now, int *what,
                                      struct drisk_error *err);
/* Closes the shipment's open recommendation, if any; *closed (may be NULL): 1 if there
 * was one. */
enum drisk_status drisk_store_rec_close(struct drisk_store *store, int64_t shipment, int64_t now,
                                        int *closed, struct drisk_error *err);
/* DRISK_ENOTFOUND (err untouched) when the shipment has no open recommendation. */
enum drisk_status drisk_store_rec_get(struct drisk_store *store, int64_t shipment,
                                      struct drisk_rec_row *out, struct drisk_error *err);
typedef int (*drisk_rec_fn)(const struct drisk_rec_row *row, void *ctx);
/* The merchant's open recommendations other than "wait", by id after after_id, at most
 * limit of them. */
enum drisk_status drisk_store_rec_list(struct drisk_store *store, const char *merchant,
                                       int64_t after_id, int limit, drisk_rec_fn fn, void *ctx,
                                       struct drisk_error *err);

/* What a merchant may report doing with a recommendation: accepted, dismissed,
 * claim_filed, claim_paid, claim_denied (NULL-terminated). */
const char *const *drisk_rec_outcome_names(void);
/* Records outcome (with amount, NAN for none, and note, may be NULL) on the merchant's
 * recommendation id, in its own transaction, and reads the recommendation back into out.
 * DRISK_ENOTFOUND when the merchant has no such recommendation. */
enum drisk_status drisk_store_rec_outcome(struct drisk_store *store, const char *merchant,
                                          int64_t id, const char *outcome, double amount,
                                          const char *note, int64_t now,
                                          struct drisk_rec_row *out, struct drisk_error *err);
/* The merchant's settled loss claims per carrier (each recommendation as its latest
 * claim_paid / claim_denied says), most claims first, at most cap. */
enum drisk_status drisk_store_claim_records(struct drisk_store *store, const char *merchant,
                                            struct drisk_claim_record *out, size_t cap,
                                            size_t *n, struct drisk_error *err);

/* ---- the merchant's shipments, filtered (GET /v1/shipments) ---- */

struct drisk_ship_query {
    const char *merchant;
    int64_t after_id;            /* store row ids above this */
    int limit;
    const char *risk_level;      /* "low", "medium", "high" or NULL: any */
    const char *status;          /* "in_transit", "delivered", "lost", "returned" or NULL */
    const char *carrier;         /* lowercase, or NULL */
    int64_t created_from, created_to; /* [from, to) */
};

struct drisk_ship_list_row {
    struct drisk_shipment sh;    /* as stored (no scans) */
    int has_risk;
    int64_t risk_as_of;
    double p_late, p_lost;       /* NAN when not scored */
    char risk_level[8];
};

typedef int (*drisk_ship_list_fn)(const struct drisk_ship_list_row *r, void *ctx);
/* Calls fn for each matching shipment, by row id, at most q->limit; fn returning non-zero
 * stops early (not an error). */
enum drisk_status drisk_store_ship_list(struct drisk_store *store, const struct drisk_ship_query *q,
                                        drisk_ship_list_fn fn, void *ctx, struct drisk_error *err);

/* ---- merchants' settings (JSON text) ---- */

/* Copies the merchant's settings into buf ("" when none or no such merchant). */
enum drisk_status drisk_store_settings_get(struct drisk_store *store, const char *merchant,
                                           char *buf, size_t cap, struct drisk_error *err);
/* Stores json as the merchant's settings, creating the merchant if new. */
enum drisk_status drisk_store_settings_put(struct drisk_store *store, const char *merchant,
                                           const char *json, struct drisk_error *err);

/* ---- aggregator webhooks in: each merchant's secret per provider ---- */

/* Copies the merchant's secret for provider ("easypost", "aftership", "shippo") into out;
 * DRISK_ENOTFOUND (err untouched) when none is set. */
enum drisk_status drisk_store_inbound_secret(struct drisk_store *store, const char *merchant,
                                             const char *provider, char *out, size_t cap,
                                             struct drisk_error *err);
/* Sets (secret non-NULL) or removes (NULL) the merchant's secret for provider, creating
 * the merchant if new; its own transaction. */
enum drisk_status drisk_store_inbound_secret_put(struct drisk_store *store, const char *merchant,
                                                 const char *provider, const char *secret,
                                                 int64_t now, struct drisk_error *err);

/* ---- what the server nodes sharing one store share ----
 * Any number of `drisk serve` processes may use one store. Each keeps network statistics
 * in memory and feeds them what it ingests; the ingest log carries what every node
 * ingested to the others, and the sweep's shards divide its work between them. */

/* One entry of the ingest log: a scan a node stored (DRISK_LOG_SCAN; delivered: it
 * delivered the shipment) or a promise that passed with the shipment still in flight,
 * seen by the sweep (DRISK_LOG_LATE; ts is the promise). */
enum { DRISK_LOG_SCAN = 1, DRISK_LOG_LATE = 2 };
struct drisk_log_entry {
    int64_t node; /* the writer's node id */
    int kind;
    int64_t shipment;
    int64_t ts;
    int event;
    char location[DRISK_NAME_MAX];
    int delivered;
};

/* Writes e into the ingest log, in the caller's transaction, at now (for pruning). */
enum drisk_status drisk_store_log_put(struct drisk_store *store, const struct drisk_log_entry *e,
                                      int64_t now, struct drisk_error *err);

/* The n entries of es, as drisk_store_log_put each (PostgreSQL: one COPY). */
enum drisk_status drisk_store_log_put_many(struct drisk_store *store,
                                           const struct drisk_log_entry *es, size_t n,
                                           int64_t now, struct drisk_error *err);

/* A reader's place in the log: what it has seen. SQLite: the last seq read. PostgreSQL:
 * the snapshot of the last read (entries are taken by whether their transaction had
 * committed then, not by seq, which is handed out before commit). */
#define DRISK_LOG_CURSOR_MAX 4096
struct drisk_log_cursor {
    char at[DRISK_LOG_CURSOR_MAX];
};
/* The log's end as the calling transaction sees it: in a drisk_store_begin_snapshot
 * transaction, exactly the entries whose data its other reads see. */
enum drisk_status drisk_store_log_position(struct drisk_store *store, struct drisk_log_cursor *c,
                                           struct drisk_error *err);
/* Calls fn for every entry committed after c (in commit order on SQLite; on PostgreSQL,
 * in transaction order, each transaction's entries in the order written) and moves c
 * past them. fn returning non-zero stops (DRISK_EINVAL; c does not move). */
typedef int (*drisk_log_fn)(const struct drisk_log_entry *e, void *ctx);
enum drisk_status drisk_store_log_follow(struct drisk_store *store, struct drisk_log_cursor *c,
                                         drisk_log_fn fn, void *ctx, struct drisk_error *err);

/* The sweep's work in DRISK_SWEEP_SHARDS shards (shipment row id modulo). A node claims
 * a due shard (swept every_s ago or more, not leased) for lease_s seconds, sweeps it and
 * marks it swept; a node that dies mid-shard leaves it to another when the lease ends.
 * The claim is atomic across connections (PostgreSQL: FOR UPDATE SKIP LOCKED), so no
 * two nodes sweep a shard at once. DRISK_ENOTFOUND (err untouched) when none is due;
 * else *shard and *swept_at, when it was last swept (0: never). */
#define DRISK_SWEEP_SHARDS 16
enum drisk_status drisk_store_shard_claim(struct drisk_store *store, int64_t node, int64_t now,
                                          int64_t every_s, int64_t lease_s, int *shard,
                                          int64_t *swept_at, struct drisk_error *err);
enum drisk_status drisk_store_shard_done(struct drisk_store *store, int shard, int64_t node,
                                         int64_t now, struct drisk_error *err);

/* ---- models ---- */

/* The active model id of late, lost and eta (0 when none). */
enum drisk_status drisk_store_active_models(struct drisk_store *store, int64_t ids[DRISK_TARGET_COUNT],
                                            struct drisk_error *err);
/* The shadow model id of late, lost and eta (0 when none). */
enum drisk_status drisk_store_shadow_models(struct drisk_store *store, int64_t ids[DRISK_TARGET_COUNT],
                                            struct drisk_error *err);

/* ---- shadow scores: the active and the shadow model's score of one live scoring ---- */

struct drisk_shadow_row {
    int64_t shipment, as_of;   /* the shipment's store row id */
    enum drisk_target target;
    int64_t champion_id, shadow_id;
    double champion, champion_p90, shadow, shadow_p90; /* probability, or eta P50 / P90 h */
    struct drisk_shipment sh;  /* filled by drisk_store_shadow_iterate (no scans) */
};

/* Stores r (sh is not read), in the caller's transaction. */
enum drisk_status drisk_store_shadow_put(struct drisk_store *store, const struct drisk_shadow_row *r,
                                         struct drisk_error *err);

/* Calls fn for every stored shadow score of target whose shipment was created in
 * [from, to), in as_of order, with the shipment as it is now (outcome included). */
typedef int (*drisk_shadow_fn)(const struct drisk_shadow_row *r, void *ctx);
enum drisk_status drisk_store_shadow_iterate(struct drisk_store *store, enum drisk_target target,
                                             int64_t from, int64_t to, drisk_shadow_fn fn,
                                             void *ctx, struct drisk_error *err);

#endif
