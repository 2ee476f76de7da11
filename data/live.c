/* The server's tables (data/live.h). Statements live in the connection's live slots,
 * prepared on first use and reset after each. */
#include "data/live.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/store_impl.h"
#include "engine/vocab.h"

enum {
    L_SET_OUTCOME,
    L_RISK_PUT,
    L_RISK_GET,
    L_ALERTS_OPEN,
    L_ALERT_OPEN,
    L_ALERT_CHANGE,
    L_ALERT_FEED,
    L_REC_SAME,
    L_REC_UPDATE,
    L_REC_INSERT,
    L_REC_CLOSE,
    L_REC_GET,
    L_REC_LIST,
    L_SETTINGS_GET,
    L_SETTINGS_PUT,
    L_ACTIVE,
    L_SHADOWS,
    L_SHADOW_PUT,
    L_ALERT_GET,
    L_INBOUND_GET,
    L_INBOUND_PUT,
    L_INBOUND_DELETE,
    L_CLAIM_RECORDS,
    L_FEED_LOCK,
    L_LOG_PUT,
    L_LOG_POSITION,
    L_LOG_FOLLOW,
    L_SHARD_CLAIM,
    L_SHARD_DONE,
    L_COUNT
};

#define NEXT_SEQ "(SELECT coalesce(max(seq), 0) + 1 FROM alerts)"
#define ALERT_COLS                                                                          \
    "a.id, a.seq, a.shipment_id, s.shipment_key, a.type, a.severity, a.opened_at,"        \
    " a.updated_at, a.cleared_at, a.message, a.acked_at"
#define REC_COLS                                                                            \
    "r.id, r.shipment_id, s.shipment_key, r.created_at, r.updated_at, r.action, r.deadline," \
    " r.costs, r.why, o.outcome, o.amount, o.created_at, r.open"
/* a recommendation's latest reported outcome, if any */
#define REC_OUTCOME                                                                         \
    " LEFT JOIN rec_outcomes o ON o.id = (SELECT max(x.id) FROM rec_outcomes x"            \
    " WHERE x.recommendation_id = r.id)"

static const char *const sql[L_COUNT] = {
    [L_SET_OUTCOME] = "UPDATE shipments SET outcome = ?2, delivered_at = ?3"
                      " WHERE id = ?1 AND outcome IS NULL",
    [L_RISK_PUT] = "INSERT INTO risk(shipment_id, as_of, p_late, p_lost, eta, eta_p90,"
                   " level, reasons, model_ids) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"
                   " ON CONFLICT(shipment_id) DO UPDATE SET as_of = excluded.as_of,"
                   " p_late = excluded.p_late, p_lost = excluded.p_lost, eta = excluded.eta,"
                   " eta_p90 = excluded.eta_p90, level = excluded.level,"
                   " reasons = excluded.reasons, model_ids = excluded.model_ids",
    [L_RISK_GET] = "SELECT as_of, p_late, p_lost, eta, eta_p90, level, reasons, model_ids"
                   " FROM risk WHERE shipment_id = ?1",
    [L_ALERTS_OPEN] = "SELECT " ALERT_COLS " FROM alerts a JOIN shipments s ON s.id = a.shipment_id"
                      " WHERE a.shipment_id = ?1 AND a.cleared_at IS NULL ORDER BY a.id",
    [L_ALERT_OPEN] = "INSERT INTO alerts(merchant_id, shipment_id, type, severity, opened_at,"
                     " updated_at, message, seq) SELECT merchant_id, id, ?2, ?3, ?5, ?5, ?4, "
                     NEXT_SEQ " FROM shipments WHERE id = ?1"
                     " ON CONFLICT (shipment_id, type) WHERE cleared_at IS NULL DO NOTHING",
    [L_ALERT_CHANGE] = "UPDATE alerts SET severity = coalesce(?2, severity),"
                       " message = coalesce(?3, message), updated_at = ?5,"
                       " cleared_at = CASE WHEN ?4 <> 0 THEN ?5 END, seq = " NEXT_SEQ
                       " WHERE id = ?1 AND cleared_at IS NULL",
    [L_ALERT_FEED] = "SELECT " ALERT_COLS " FROM alerts a JOIN shipments s ON s.id = a.shipment_id"
                     " WHERE a.merchant_id = (SELECT id FROM merchants WHERE name = ?1)"
                     " AND a.seq > ?2 AND (CAST(?4 AS TEXT) IS NULL OR a.type = ?4)"
                     " AND (CAST(?5 AS TEXT) IS NULL OR a.severity = ?5) AND (CAST(?6 AS TEXT) IS NULL OR"
                     " (CASE WHEN a.cleared_at IS NULL THEN 'open' ELSE 'cleared' END) = ?6)"
                     " ORDER BY a.seq LIMIT ?3",
    /* the same action as before: only its costs, deadline and reasons move */
    [L_REC_SAME] = "UPDATE recommendations SET action = ?2, deadline = ?3, costs = ?4, why = ?5,"
                   " updated_at = ?6 WHERE shipment_id = ?1 AND open = 1 AND action = ?2",
    [L_REC_UPDATE] = "UPDATE recommendations SET action = ?2, deadline = ?3, costs = ?4, why = ?5,"
                     " updated_at = ?6 WHERE shipment_id = ?1 AND open = 1",
    [L_REC_INSERT] = "INSERT INTO recommendations(merchant_id, shipment_id, created_at, updated_at,"
                     " action, deadline, costs, why, open) SELECT merchant_id, id, ?6, ?6, ?2, ?3,"
                     " ?4, ?5, 1 FROM shipments WHERE id = ?1"
                     " ON CONFLICT (shipment_id) WHERE open = 1 DO NOTHING",
    [L_REC_CLOSE] = "UPDATE recommendations SET open = 0, updated_at = ?2"
                    " WHERE shipment_id = ?1 AND open = 1",
    [L_REC_GET] = "SELECT " REC_COLS " FROM recommendations r JOIN shipments s"
                  " ON s.id = r.shipment_id" REC_OUTCOME " WHERE r.shipment_id = ?1 AND r.open = 1",
    [L_REC_LIST] = "SELECT " REC_COLS " FROM recommendations r JOIN shipments s"
                   " ON s.id = r.shipment_id" REC_OUTCOME
                   " WHERE r.merchant_id = (SELECT id FROM merchants WHERE name = ?1)"
                   " AND r.open = 1 AND r.action <> 'wait' AND r.id > ?2 ORDER BY r.id LIMIT ?3",
    [L_SETTINGS_GET] = "SELECT settings FROM merchants WHERE name = ?1",
    [L_SETTINGS_PUT] = "INSERT INTO merchants(name, settings) VALUES (?1, ?2)"
                       " ON CONFLICT(name) DO UPDATE SET settings = excluded.settings",
    [L_ACTIVE] = "SELECT target, id FROM models WHERE active = 1",
    [L_SHADOWS] = "SELECT target, id FROM models WHERE shadow = 1",
    [L_SHADOW_PUT] = "INSERT INTO shadow_scores(shipment_id, target, as_of, champion_id,"
                     " champion_score, champion_p90, shadow_id, shadow_score, shadow_p90)"
                     " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [L_INBOUND_GET] = "SELECT i.secret FROM inbound_secrets i JOIN merchants m"
                      " ON m.id = i.merchant_id WHERE m.name = ?1 AND i.provider = ?2",
    [L_INBOUND_PUT] = "INSERT INTO inbound_secrets(merchant_id, provider, secret, created_at)"
                      " SELECT id, ?2, ?3, ?4 FROM merchants WHERE name = ?1"
                      " ON CONFLICT(merchant_id, provider) DO UPDATE SET secret = excluded.secret,"
                      " created_at = excluded.created_at",
    [L_INBOUND_DELETE] = "DELETE FROM inbound_secrets WHERE provider = ?2"
                         " AND merchant_id = (SELECT id FROM merchants WHERE name = ?1)",
    [L_CLAIM_RECORDS] = "SELECT s.carrier, sum(CASE WHEN o.outcome = 'claim_paid' THEN 1 ELSE 0 END),"
                        " sum(CASE WHEN o.outcome = 'claim_denied' THEN 1 ELSE 0 END)"
                        " FROM rec_outcomes o"
                        " JOIN recommendations r ON r.id = o.recommendation_id"
                        " JOIN shipments s ON s.id = r.shipment_id"
                        " WHERE o.merchant_id = (SELECT id FROM merchants WHERE name = ?1)"
                        " AND o.id = (SELECT max(x.id) FROM rec_outcomes x"
                        " WHERE x.recommendation_id = o.recommendation_id"
                        " AND x.outcome IN ('claim_paid', 'claim_denied'))"
                        " GROUP BY s.carrier ORDER BY count(*) DESC",
    [L_ALERT_GET] = "SELECT " ALERT_COLS " FROM alerts a JOIN shipments s ON s.id = a.shipment_id"
                    " WHERE a.id = ?1",
    [L_LOG_PUT] = "INSERT INTO ingest_log(node, kind, shipment_id, ts, event, location, delivered,"
                  " created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
    /* SQLite writes one transaction at a time, so seq order is commit order */
    [L_LOG_POSITION] = "SELECT coalesce(max(seq), 0) FROM ingest_log",
    [L_LOG_FOLLOW] = "SELECT node, kind, shipment_id, ts, event, location, delivered, seq"
                     " FROM ingest_log WHERE seq > ?1 ORDER BY seq",
    [L_SHARD_CLAIM] = "UPDATE sweep_shards SET lease_until = ?2, node = ?3 WHERE shard ="
                      " (SELECT shard FROM sweep_shards WHERE swept_at <= ?4 AND lease_until <= ?1"
                      " ORDER BY swept_at, shard LIMIT 1) RETURNING shard, swept_at",
    [L_SHARD_DONE] = "UPDATE sweep_shards SET swept_at = ?3, lease_until = 0"
                     " WHERE shard = ?1 AND node = ?2",
};

/* PostgreSQL's text where it differs. Its writers run at once, so: */
static const char *const sql_pg[L_COUNT] = {
    /* feed seqs are taken under a lock held to commit: they commit in their order */
    [L_FEED_LOCK] = "SELECT pg_advisory_xact_lock(hashtext('drisk alert feed'))",
    /* the log is read by snapshots: what committed between the cursor's and now's. An
     * entry's transaction id is not visible in the old snapshot when it is at or above
     * its xmax or was in progress then (xip); it is in the new one when it committed. */
    [L_LOG_POSITION] = "SELECT CAST(pg_current_snapshot() AS TEXT)",
    [L_LOG_FOLLOW] = "SELECT node, kind, shipment_id, ts, event, location, delivered, seq"
                     " FROM ingest_log l WHERE (l.xid >= pg_snapshot_xmax(CAST(?1 AS pg_snapshot))"
                     " OR l.xid = ANY(ARRAY(SELECT pg_snapshot_xip(CAST(?1 AS pg_snapshot)))))"
                     " AND l.xid < pg_snapshot_xmax(CAST(?2 AS pg_snapshot))"
                     " AND pg_visible_in_snapshot(l.xid, CAST(?2 AS pg_snapshot))"
                     " ORDER BY l.xid, l.seq",
    /* the shard a concurrent claim holds is skipped, not waited for */
    [L_SHARD_CLAIM] = "UPDATE sweep_shards SET lease_until = ?2, node = ?3 WHERE shard ="
                      " (SELECT shard FROM sweep_shards WHERE swept_at <= ?4 AND lease_until <= ?1"
                      " ORDER BY swept_at, shard LIMIT 1 FOR UPDATE SKIP LOCKED)"
                      " AND lease_until <= ?1 RETURNING shard, swept_at",
};

_Static_assert(L_COUNT <= DRISK_STORE_SLOTS_LIVE, "data/live.c has more statements than slots");

static enum drisk_status fail(struct drisk_store *store, const char *what, struct drisk_error *err)
{
    return drisk_store_fail(store, what, err);
}

/* The prepared statement of slot i (reset, bindings cleared), or NULL with err set. */
static int is_pg(struct drisk_store *store)
{
    return drisk_sql_kind(drisk_store_sql(store)) == DRISK_SQL_PG;
}

static struct drisk_sql_stmt *stmt(struct drisk_store *store, int i, struct drisk_error *err)
{
    return drisk_store_slot(store, i, is_pg(store) && sql_pg[i] ? sql_pg[i] : sql[i], err);
}

/* Before a feed seq is taken: on PostgreSQL, the lock that orders them (see
 * drisk_store_alert_open); SQLite's one writer orders them already. */
static enum drisk_status feed_lock(struct drisk_store *store, struct drisk_error *err)
{
    if (!is_pg(store))
        return DRISK_OK;
    struct drisk_sql_stmt *st = stmt(store, L_FEED_LOCK, err);
    if (!st)
        return DRISK_EIO;
    int r = drisk_sql_step(st);
    drisk_sql_reset(st);
    return r == DRISK_SQL_ROW || r == DRISK_SQL_DONE ? DRISK_OK
                                                     : fail(store, "ordering the alert feed", err);
}

static double real_col(struct drisk_sql_stmt *st, int i)
{
    return drisk_sql_col_null(st, i) ? NAN : drisk_sql_col_double(st, i);
}

enum drisk_status drisk_store_set_outcome(struct drisk_store *store, int64_t shipment, int outcome,
                                          int64_t delivered_at, int *changed,
                                          struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_SET_OUTCOME, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, shipment);
    drisk_bind_text(st, 2, drisk_outcome_name(outcome));
    drisk_bind_ts(st, 3, outcome == DRISK_OUTCOME_DELIVERED ? delivered_at : DRISK_TS_NONE);
    enum drisk_status rc = drisk_store_run(store, st, "recording a shipment's outcome", err);
    *changed = !rc && drisk_sql_changes(drisk_store_sql(store)) > 0;
    return rc;
}

enum drisk_status drisk_store_risk_put(struct drisk_store *store, int64_t shipment,
                                       const struct drisk_risk_row *r, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_RISK_PUT, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, shipment);
    drisk_sql_bind_int64(st, 2, r->as_of);
    if (!isnan(r->p_late))
        drisk_sql_bind_double(st, 3, r->p_late);
    if (!isnan(r->p_lost))
        drisk_sql_bind_double(st, 4, r->p_lost);
    drisk_bind_ts(st, 5, r->eta);
    drisk_bind_ts(st, 6, r->eta_p90);
    drisk_sql_bind_text(st, 7, r->level);
    drisk_sql_bind_text(st, 8, r->reasons);
    drisk_sql_bind_text(st, 9, r->model_ids);
    return drisk_store_run(store, st, "storing a risk", err);
}

enum drisk_status drisk_store_risk_get(struct drisk_store *store, int64_t shipment,
                                       struct drisk_risk_row *r, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_RISK_GET, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, shipment);
    int s = drisk_sql_step(st);
    if (s == DRISK_SQL_ROW) {
        r->as_of = drisk_sql_col_int64(st, 0);
        r->p_late = drisk_sql_col_null(st, 1) ? NAN : drisk_sql_col_double(st, 1);
        r->p_lost = drisk_sql_col_null(st, 2) ? NAN : drisk_sql_col_double(st, 2);
        r->eta = drisk_col_ts(st, 3);
        r->eta_p90 = drisk_col_ts(st, 4);
        drisk_store_copy_col(st, 5, r->level, sizeof r->level);
        drisk_store_copy_col(st, 6, r->reasons, sizeof r->reasons);
        drisk_store_copy_col(st, 7, r->model_ids, sizeof r->model_ids);
    }
    drisk_sql_reset(st);
    if (s == DRISK_SQL_ROW)
        return DRISK_OK;
    return s == DRISK_SQL_DONE ? DRISK_ENOTFOUND : fail(store, "reading a risk", err);
}

static void read_alert(struct drisk_sql_stmt *st, struct drisk_alert_row *a)
{
    a->id = drisk_sql_col_int64(st, 0);
    a->seq = drisk_sql_col_int64(st, 1);
    a->shipment = drisk_sql_col_int64(st, 2);
    drisk_store_copy_col(st, 3, a->shipment_id, sizeof a->shipment_id);
    drisk_store_copy_col(st, 4, a->type, sizeof a->type);
    drisk_store_copy_col(st, 5, a->severity, sizeof a->severity);
    a->opened_at = drisk_sql_col_int64(st, 6);
    a->updated_at = drisk_sql_col_int64(st, 7);
    a->cleared_at = drisk_col_ts(st, 8);
    drisk_store_copy_col(st, 9, a->message, sizeof a->message);
    a->acked_at = drisk_col_ts(st, 10);
}

enum drisk_status drisk_store_alerts_open(struct drisk_store *store, int64_t shipment,
                                          struct drisk_alert_row *out, size_t *n,
                                          struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_ALERTS_OPEN, err);
    *n = 0;
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, shipment);
    int s;
    while ((s = drisk_sql_step(st)) == DRISK_SQL_ROW)
        if (*n < DRISK_ALERTS_MAX_OPEN)
            read_alert(st, &out[(*n)++]);
    drisk_sql_reset(st);
    return s == DRISK_SQL_DONE ? DRISK_OK : fail(store, "reading alerts", err);
}

enum drisk_status drisk_store_alert_open(struct drisk_store *store, int64_t shipment,
                                         const char *type, const char *severity,
                                         const char *message, int64_t now, int64_t *id,
                                         struct drisk_error *err)
{
    if (feed_lock(store, err))
        return DRISK_EIO;
    struct drisk_sql_stmt *st = stmt(store, L_ALERT_OPEN, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, shipment);
    drisk_sql_bind_text(st, 2, type);
    drisk_sql_bind_text(st, 3, severity);
    drisk_sql_bind_text(st, 4, message);
    drisk_sql_bind_int64(st, 5, now);
    enum drisk_status rc = drisk_store_run(store, st, "raising an alert", err);
    if (!rc && id)
        *id = drisk_sql_changes(drisk_store_sql(store)) > 0
                  ? drisk_sql_last_id(drisk_store_sql(store))
                  : 0;
    return rc;
}

enum drisk_status drisk_store_alert_get(struct drisk_store *store, int64_t id,
                                        struct drisk_alert_row *out, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_ALERT_GET, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, id);
    int s = drisk_sql_step(st);
    if (s == DRISK_SQL_ROW)
        read_alert(st, out);
    drisk_sql_reset(st);
    if (s == DRISK_SQL_ROW)
        return DRISK_OK;
    return s == DRISK_SQL_DONE ? drisk_error_set(err, DRISK_ENOTFOUND, "no alert %lld", (long long)id)
                            : fail(store, "reading an alert", err);
}

enum drisk_status drisk_store_alert_change(struct drisk_store *store, int64_t alert_id,
                                           const char *severity, const char *message,
                                           int clear, int64_t now, struct drisk_error *err)
{
    if (feed_lock(store, err))
        return DRISK_EIO;
    struct drisk_sql_stmt *st = stmt(store, L_ALERT_CHANGE, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, alert_id);
    drisk_bind_text(st, 2, severity);
    drisk_bind_text(st, 3, message);
    drisk_sql_bind_int(st, 4, clear != 0);
    drisk_sql_bind_int64(st, 5, now);
    return drisk_store_run(store, st, "updating an alert", err);
}

enum drisk_status drisk_store_alert_feed(struct drisk_store *store, const char *merchant,
                                         int64_t since, int limit,
                                         const struct drisk_alert_filter *f, drisk_alert_fn fn,
                                         void *ctx, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_ALERT_FEED, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_int64(st, 2, since);
    drisk_sql_bind_int(st, 3, limit);
    drisk_bind_text(st, 4, f ? f->type : NULL);
    drisk_bind_text(st, 5, f ? f->severity : NULL);
    drisk_bind_text(st, 6, f ? f->status : NULL);
    struct drisk_alert_row a;
    int s;
    while ((s = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        read_alert(st, &a);
        if (fn(&a, ctx)) {
            s = DRISK_SQL_DONE;
            break;
        }
    }
    drisk_sql_reset(st);
    return s == DRISK_SQL_DONE ? DRISK_OK : fail(store, "reading the alert feed", err);
}

enum drisk_status drisk_store_alert_ack(struct drisk_store *store, const char *merchant,
                                        int64_t id, int64_t now, struct drisk_alert_row *out,
                                        struct drisk_error *err)
{
    struct drisk_sql *db = drisk_store_sql(store);
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(db, "UPDATE alerts SET acked_at = coalesce(acked_at, ?3) WHERE id = ?1"
                           " AND merchant_id = (SELECT id FROM merchants WHERE name = ?2)", 0, &st))
        return fail(store, "acknowledging an alert", err);
    drisk_sql_bind_int64(st, 1, id);
    drisk_sql_bind_text(st, 2, merchant);
    drisk_sql_bind_int64(st, 3, now);
    int r = drisk_sql_step(st);
    drisk_sql_finalize(st);
    if (r != DRISK_SQL_DONE)
        return fail(store, "acknowledging an alert", err);
    if (drisk_sql_changes(db) == 0)
        return drisk_error_set(err, DRISK_ENOTFOUND, "no alert %lld: see GET /v1/alerts",
                               (long long)id);
    if (drisk_sql_prepare(db, "SELECT " ALERT_COLS " FROM alerts a JOIN shipments s"
                           " ON s.id = a.shipment_id WHERE a.id = ?1", 0, &st))
        return fail(store, "reading an alert", err);
    drisk_sql_bind_int64(st, 1, id);
    r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        read_alert(st, out);
    drisk_sql_finalize(st);
    return r == DRISK_SQL_ROW ? DRISK_OK : fail(store, "reading an alert", err);
}

static void bind_rec(struct drisk_sql_stmt *st, int64_t shipment, const struct drisk_rec_row *r,
                     int64_t now)
{
    drisk_sql_bind_int64(st, 1, shipment);
    drisk_sql_bind_text(st, 2, r->action);
    drisk_bind_ts(st, 3, r->deadline);
    drisk_sql_bind_text(st, 4, r->costs);
    drisk_sql_bind_text(st, 5, r->why);
    drisk_sql_bind_int64(st, 6, now);
}

enum drisk_status drisk_store_rec_put(struct drisk_store *store, int64_t shipment,
                                      const struct drisk_rec_row *r, int64_t now, int *what,
                                      struct drisk_error *err)
{
    /* the common case first: the same action again, one statement; the update again
     * after an insert that found one open (another connection's, committed meanwhile) */
    static const int order[4] = { L_REC_SAME, L_REC_UPDATE, L_REC_INSERT, L_REC_UPDATE };
    for (int i = 0; i < 4; i++) {
        struct drisk_sql_stmt *st = stmt(store, order[i], err);
        if (!st)
            return DRISK_EIO;
        bind_rec(st, shipment, r, now);
        enum drisk_status rc = drisk_store_run(store, st, "storing a recommendation", err);
        if (rc)
            return rc;
        if (drisk_sql_changes(drisk_store_sql(store)) > 0) {
            if (what)
                *what = i == 0 ? DRISK_REC_SAME : i == 2 ? DRISK_REC_CREATED : DRISK_REC_CHANGED;
            return DRISK_OK;
        }
    }
    return drisk_error_set(err, DRISK_ENOTFOUND, "no shipment %lld to recommend for",
                           (long long)shipment);
}

enum drisk_status drisk_store_rec_close(struct drisk_store *store, int64_t shipment, int64_t now,
                                        int *closed, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_REC_CLOSE, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, shipment);
    drisk_sql_bind_int64(st, 2, now);
    enum drisk_status rc = drisk_store_run(store, st, "closing a recommendation", err);
    if (closed)
        *closed = !rc && drisk_sql_changes(drisk_store_sql(store)) > 0;
    return rc;
}

static void read_rec(struct drisk_sql_stmt *st, struct drisk_rec_row *r)
{
    r->id = drisk_sql_col_int64(st, 0);
    r->shipment = drisk_sql_col_int64(st, 1);
    drisk_store_copy_col(st, 2, r->shipment_id, sizeof r->shipment_id);
    r->created_at = drisk_sql_col_int64(st, 3);
    r->updated_at = drisk_col_ts(st, 4);
    drisk_store_copy_col(st, 5, r->action, sizeof r->action);
    r->deadline = drisk_col_ts(st, 6);
    drisk_store_copy_col(st, 7, r->costs, sizeof r->costs);
    drisk_store_copy_col(st, 8, r->why, sizeof r->why);
    drisk_store_copy_col(st, 9, r->outcome, sizeof r->outcome);
    r->outcome_amount = real_col(st, 10);
    r->outcome_at = drisk_col_ts(st, 11);
    r->open = drisk_sql_col_int(st, 12);
}

enum drisk_status drisk_store_rec_get(struct drisk_store *store, int64_t shipment,
                                      struct drisk_rec_row *out, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_REC_GET, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, shipment);
    int s = drisk_sql_step(st);
    if (s == DRISK_SQL_ROW)
        read_rec(st, out);
    drisk_sql_reset(st);
    if (s == DRISK_SQL_ROW)
        return DRISK_OK;
    return s == DRISK_SQL_DONE ? DRISK_ENOTFOUND : fail(store, "reading a recommendation", err);
}

enum drisk_status drisk_store_rec_list(struct drisk_store *store, const char *merchant,
                                       int64_t after_id, int limit, drisk_rec_fn fn, void *ctx,
                                       struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_REC_LIST, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_int64(st, 2, after_id);
    drisk_sql_bind_int(st, 3, limit);
    struct drisk_rec_row r;
    int s;
    while ((s = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        read_rec(st, &r);
        if (fn(&r, ctx)) {
            s = DRISK_SQL_DONE;
            break;
        }
    }
    drisk_sql_reset(st);
    return s == DRISK_SQL_DONE ? DRISK_OK : fail(store, "listing recommendations", err);
}

enum drisk_status drisk_store_ship_list(struct drisk_store *store, const struct drisk_ship_query *q,
                                        drisk_ship_list_fn fn, void *ctx, struct drisk_error *err)
{
    enum { R = DRISK_SHIPMENT_NCOLS }; /* the risk's columns follow the shipment's */
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(drisk_store_sql(store),
                           "SELECT " DRISK_SHIPMENT_COLS ", r.as_of, r.p_late, r.p_lost, r.level"
                           " FROM shipments s JOIN merchants m ON m.id = s.merchant_id"
                           " LEFT JOIN risk r ON r.shipment_id = s.id"
                           " WHERE m.name = ?1 AND s.id > ?2 AND (CAST(?3 AS TEXT) IS NULL OR r.level = ?3)"
                           " AND (CAST(?4 AS TEXT) IS NULL OR coalesce(s.outcome, 'in_transit') = ?4)"
                           " AND (CAST(?5 AS TEXT) IS NULL OR s.carrier = ?5) AND s.created_at >= ?6"
                           " AND s.created_at < ?7 ORDER BY s.id LIMIT ?8", 0, &st))
        return fail(store, "listing shipments", err);
    drisk_sql_bind_text(st, 1, q->merchant);
    drisk_sql_bind_int64(st, 2, q->after_id);
    drisk_bind_text(st, 3, q->risk_level);
    drisk_bind_text(st, 4, q->status);
    drisk_bind_text(st, 5, q->carrier);
    drisk_sql_bind_int64(st, 6, q->created_from);
    drisk_sql_bind_int64(st, 7, q->created_to);
    drisk_sql_bind_int(st, 8, q->limit);
    int s;
    while ((s = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        struct drisk_ship_list_row r;
        memset(&r, 0, sizeof r);
        drisk_store_read_shipment(st, &r.sh);
        r.has_risk = !drisk_sql_col_null(st, R);
        r.risk_as_of = drisk_sql_col_int64(st, R);
        r.p_late = real_col(st, R + 1);
        r.p_lost = real_col(st, R + 2);
        drisk_store_copy_col(st, R + 3, r.risk_level, sizeof r.risk_level);
        if (fn(&r, ctx))
            break;
    }
    drisk_sql_finalize(st);
    return s == DRISK_SQL_ROW || s == DRISK_SQL_DONE ? DRISK_OK : fail(store, "listing shipments", err);
}

enum drisk_status drisk_store_settings_get(struct drisk_store *store, const char *merchant,
                                           char *buf, size_t cap, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_SETTINGS_GET, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_text(st, 1, merchant);
    int s = drisk_sql_step(st);
    buf[0] = '\0';
    if (s == DRISK_SQL_ROW)
        drisk_store_copy_col(st, 0, buf, cap);
    drisk_sql_reset(st);
    return s == DRISK_SQL_ROW || s == DRISK_SQL_DONE ? DRISK_OK : fail(store, "reading settings", err);
}

enum drisk_status drisk_store_settings_put(struct drisk_store *store, const char *merchant,
                                           const char *json, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_SETTINGS_PUT, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_text(st, 2, json);
    return drisk_store_run(store, st, "storing settings", err);
}

static enum drisk_status models_by_role(struct drisk_store *store, int which,
                                        int64_t ids[DRISK_TARGET_COUNT], struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, which, err);
    for (int k = 0; k < DRISK_TARGET_COUNT; k++)
        ids[k] = 0;
    if (!st)
        return DRISK_EIO;
    int s;
    while ((s = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        const char *t = drisk_sql_col_text(st, 0);
        int k = drisk_target_parse((const char *)t);
        if (k >= 0)
            ids[k] = drisk_sql_col_int64(st, 1);
    }
    drisk_sql_reset(st);
    return s == DRISK_SQL_DONE ? DRISK_OK : fail(store, "reading the models in force", err);
}

enum drisk_status drisk_store_active_models(struct drisk_store *store, int64_t ids[DRISK_TARGET_COUNT],
                                            struct drisk_error *err)
{
    return models_by_role(store, L_ACTIVE, ids, err);
}

enum drisk_status drisk_store_shadow_models(struct drisk_store *store, int64_t ids[DRISK_TARGET_COUNT],
                                            struct drisk_error *err)
{
    return models_by_role(store, L_SHADOWS, ids, err);
}

static void real_or_null(struct drisk_sql_stmt *st, int i, double v)
{
    if (isnan(v))
        drisk_sql_bind_null(st, i);
    else
        drisk_sql_bind_double(st, i, v);
}

enum drisk_status drisk_store_shadow_put(struct drisk_store *store, const struct drisk_shadow_row *r,
                                         struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_SHADOW_PUT, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, r->shipment);
    drisk_sql_bind_text(st, 2, drisk_target_name(r->target));
    drisk_sql_bind_int64(st, 3, r->as_of);
    drisk_sql_bind_int64(st, 4, r->champion_id);
    real_or_null(st, 5, r->champion);
    real_or_null(st, 6, r->champion_p90);
    drisk_sql_bind_int64(st, 7, r->shadow_id);
    real_or_null(st, 8, r->shadow);
    real_or_null(st, 9, r->shadow_p90);
    return drisk_store_run(store, st, "storing a shadow score", err);
}

enum drisk_status drisk_store_shadow_iterate(struct drisk_store *store, enum drisk_target target,
                                             int64_t from, int64_t to, drisk_shadow_fn fn,
                                             void *ctx, struct drisk_error *err)
{
    enum { X = DRISK_SHIPMENT_NCOLS }; /* the scores' columns follow the shipment's */
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(drisk_store_sql(store),
                           "SELECT " DRISK_SHIPMENT_COLS ", x.as_of, x.champion_id,"
                           " x.champion_score, x.champion_p90, x.shadow_id, x.shadow_score,"
                           " x.shadow_p90 FROM shadow_scores x JOIN shipments s"
                           " ON s.id = x.shipment_id JOIN merchants m ON m.id = s.merchant_id"
                           " WHERE x.target = ?1 AND s.created_at >= ?2 AND s.created_at < ?3"
                           " ORDER BY x.as_of, x.id", 0, &st))
        return fail(store, "reading shadow scores", err);
    drisk_sql_bind_text(st, 1, drisk_target_name(target));
    drisk_sql_bind_int64(st, 2, from);
    drisk_sql_bind_int64(st, 3, to);
    int s;
    while ((s = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        struct drisk_shadow_row r;
        memset(&r, 0, sizeof r);
        r.target = target;
        drisk_store_read_shipment(st, &r.sh);
        r.shipment = r.sh.id;
        r.as_of = drisk_sql_col_int64(st, X);
        r.champion_id = drisk_sql_col_int64(st, X + 1);
        r.champion = real_col(st, X + 2);
        r.champion_p90 = real_col(st, X + 3);
        r.shadow_id = drisk_sql_col_int64(st, X + 4);
        r.shadow = real_col(st, X + 5);
        r.shadow_p90 = real_col(st, X + 6);
        if (fn(&r, ctx)) {
            drisk_sql_finalize(st);
            return err && err->status ? err->status
                                      : drisk_error_set(err, DRISK_EINVAL, "reading shadow "
                                                        "scores: stopped by the caller");
        }
    }
    drisk_sql_finalize(st);
    return s == DRISK_SQL_DONE ? DRISK_OK : fail(store, "reading shadow scores", err);
}


/* ---- aggregator webhooks' secrets ---- */

enum drisk_status drisk_store_inbound_secret(struct drisk_store *store, const char *merchant,
                                             const char *provider, char *out, size_t cap,
                                             struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_INBOUND_GET, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_text(st, 2, provider);
    int s = drisk_sql_step(st);
    if (s == DRISK_SQL_ROW)
        drisk_store_copy_col(st, 0, out, cap);
    drisk_sql_reset(st);
    if (s == DRISK_SQL_ROW)
        return DRISK_OK;
    return s == DRISK_SQL_DONE ? DRISK_ENOTFOUND : fail(store, "reading an inbound secret", err);
}

enum drisk_status drisk_store_inbound_secret_put(struct drisk_store *store, const char *merchant,
                                                 const char *provider, const char *secret,
                                                 int64_t now, struct drisk_error *err)
{
    enum drisk_status rc = drisk_store_begin(store, err);
    if (rc)
        return rc;
    int64_t mid;
    struct drisk_sql_stmt *st = NULL;
    if ((rc = drisk_store_merchant(store, merchant, &mid, err)) ||
        !(st = stmt(store, secret ? L_INBOUND_PUT : L_INBOUND_DELETE, err))) {
        drisk_store_rollback(store);
        return rc ? rc : DRISK_EIO;
    }
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_text(st, 2, provider);
    if (secret) {
        drisk_sql_bind_text(st, 3, secret);
        drisk_sql_bind_int64(st, 4, now);
    }
    if ((rc = drisk_store_run(store, st, "storing an inbound secret", err))) {
        drisk_store_rollback(store);
        return rc;
    }
    return drisk_store_commit(store, err);
}

/* ---- what the merchant did with a recommendation ---- */

static const char *const rec_outcomes[] = { "accepted", "dismissed", "claim_filed", "claim_paid",
                                            "claim_denied", NULL };

const char *const *drisk_rec_outcome_names(void)
{
    return rec_outcomes;
}

enum drisk_status drisk_store_rec_outcome(struct drisk_store *store, const char *merchant,
                                          int64_t id, const char *outcome, double amount,
                                          const char *note, int64_t now,
                                          struct drisk_rec_row *out, struct drisk_error *err)
{
    struct drisk_sql *db = drisk_store_sql(store);
    struct drisk_sql_stmt *st = NULL;
    enum drisk_status rc = drisk_store_begin(store, err);
    if (rc)
        return rc;
    if (drisk_sql_prepare(db, "INSERT INTO rec_outcomes(recommendation_id, merchant_id, outcome,"
                           " amount, note, created_at) SELECT r.id, r.merchant_id, ?3, ?4, ?5, ?6"
                           " FROM recommendations r WHERE r.id = ?1 AND r.merchant_id ="
                           " (SELECT id FROM merchants WHERE name = ?2)", 0, &st)) {
        drisk_store_rollback(store);
        return fail(store, "recording an outcome", err);
    }
    drisk_sql_bind_int64(st, 1, id);
    drisk_sql_bind_text(st, 2, merchant);
    drisk_sql_bind_text(st, 3, outcome);
    if (isnan(amount))
        drisk_sql_bind_null(st, 4);
    else
        drisk_sql_bind_double(st, 4, amount);
    drisk_bind_text(st, 5, note && note[0] ? note : NULL);
    drisk_sql_bind_int64(st, 6, now);
    int r = drisk_sql_step(st);
    drisk_sql_finalize(st);
    if (r != DRISK_SQL_DONE) {
        drisk_store_rollback(store);
        return fail(store, "recording an outcome", err);
    }
    if (drisk_sql_changes(db) == 0) {
        drisk_store_rollback(store);
        return drisk_error_set(err, DRISK_ENOTFOUND, "no recommendation %lld: see GET "
                               "/v1/recommendations", (long long)id);
    }
    if ((rc = drisk_store_commit(store, err)))
        return rc;
    if (drisk_sql_prepare(db, "SELECT " REC_COLS " FROM recommendations r JOIN shipments s"
                           " ON s.id = r.shipment_id" REC_OUTCOME " WHERE r.id = ?1", 0, &st))
        return fail(store, "reading a recommendation", err);
    drisk_sql_bind_int64(st, 1, id);
    r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        read_rec(st, out);
    drisk_sql_finalize(st);
    return r == DRISK_SQL_ROW ? DRISK_OK : fail(store, "reading a recommendation", err);
}

enum drisk_status drisk_store_claim_records(struct drisk_store *store, const char *merchant,
                                            struct drisk_claim_record *out, size_t cap,
                                            size_t *n, struct drisk_error *err)
{
    /* each recommendation counts once, as its latest settlement says (an appeal that
     * turned a denial into a payment counts as paid) */
    struct drisk_sql_stmt *st = stmt(store, L_CLAIM_RECORDS, err);
    *n = 0;
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_text(st, 1, merchant);
    int r;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW && *n < cap) {
        struct drisk_claim_record *c = &out[(*n)++];
        drisk_store_copy_col(st, 0, c->carrier, sizeof c->carrier);
        c->paid = drisk_sql_col_double(st, 1);
        c->denied = drisk_sql_col_double(st, 2);
    }
    drisk_sql_reset(st);
    return r == DRISK_SQL_ROW || r == DRISK_SQL_DONE ? DRISK_OK
                                                : fail(store, "reading claim outcomes", err);
}

/* ---- what the server nodes sharing one store share ---- */

enum drisk_status drisk_store_log_put(struct drisk_store *store, const struct drisk_log_entry *e,
                                      int64_t now, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_LOG_PUT, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, e->node);
    drisk_sql_bind_int(st, 2, e->kind);
    drisk_sql_bind_int64(st, 3, e->shipment);
    drisk_sql_bind_int64(st, 4, e->ts);
    drisk_sql_bind_int(st, 5, e->event);
    drisk_sql_bind_text(st, 6, e->location);
    drisk_sql_bind_int(st, 7, e->delivered != 0);
    drisk_sql_bind_int64(st, 8, now);
    return drisk_store_run(store, st, "writing the ingest log", err);
}

enum drisk_status drisk_store_log_put_many(struct drisk_store *store,
                                           const struct drisk_log_entry *es, size_t n,
                                           int64_t now, struct drisk_error *err)
{
    if (!is_pg(store) || n < 4) {
        for (size_t i = 0; i < n; i++)
            if (drisk_store_log_put(store, &es[i], now, err))
                return DRISK_EIO;
        return DRISK_OK;
    }
    struct drisk_sql_copy c = { 0 };
    for (size_t i = 0; i < n; i++) {
        drisk_sql_copy_int64(&c, es[i].node);
        drisk_sql_copy_int64(&c, es[i].kind);
        drisk_sql_copy_int64(&c, es[i].shipment);
        drisk_sql_copy_int64(&c, es[i].ts);
        drisk_sql_copy_int64(&c, es[i].event);
        drisk_sql_copy_text(&c, es[i].location);
        drisk_sql_copy_int64(&c, es[i].delivered != 0);
        drisk_sql_copy_int64(&c, now);
        drisk_sql_copy_row(&c);
    }
    int bad = drisk_sql_copy_in(drisk_store_sql(store),
                                "COPY ingest_log(node, kind, shipment_id, ts, event, location,"
                                " delivered, created_at) FROM STDIN", &c);
    drisk_sql_copy_free(&c);
    return bad ? fail(store, "writing the ingest log", err) : DRISK_OK;
}

enum drisk_status drisk_store_log_position(struct drisk_store *store, struct drisk_log_cursor *c,
                                           struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_LOG_POSITION, err);
    if (!st)
        return DRISK_EIO;
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        drisk_store_copy_col(st, 0, c->at, sizeof c->at);
    drisk_sql_reset(st);
    if (r != DRISK_SQL_ROW)
        return fail(store, "reading the ingest log's end", err);
    return strlen(c->at) + 1 < sizeof c->at
               ? DRISK_OK
               : drisk_error_set(err, DRISK_EIO, "the ingest log's position is longer than %d "
                                 "bytes (too many transactions in progress)",
                                 DRISK_LOG_CURSOR_MAX - 2);
}

enum drisk_status drisk_store_log_follow(struct drisk_store *store, struct drisk_log_cursor *c,
                                         drisk_log_fn fn, void *ctx, struct drisk_error *err)
{
    struct drisk_log_cursor next;
    int pg = is_pg(store);
    if (pg && drisk_store_log_position(store, &next, err)) /* before the read: see sql_pg */
        return DRISK_EIO;
    struct drisk_sql_stmt *st = stmt(store, L_LOG_FOLLOW, err);
    if (!st)
        return DRISK_EIO;
    if (pg) {
        drisk_sql_bind_text(st, 1, c->at);
        drisk_sql_bind_text(st, 2, next.at);
    } else {
        drisk_sql_bind_int64(st, 1, strtoll(c->at, NULL, 10));
        snprintf(next.at, sizeof next.at, "%s", c->at);
    }
    int r, stopped = 0;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        struct drisk_log_entry e = {
            .node = drisk_sql_col_int64(st, 0),
            .kind = drisk_sql_col_int(st, 1),
            .shipment = drisk_sql_col_int64(st, 2),
            .ts = drisk_sql_col_int64(st, 3),
            .event = drisk_sql_col_int(st, 4),
            .delivered = drisk_sql_col_int(st, 6),
        };
        drisk_store_copy_col(st, 5, e.location, sizeof e.location);
        if (!pg)
            snprintf(next.at, sizeof next.at, "%lld", (long long)drisk_sql_col_int64(st, 7));
        if (fn(&e, ctx)) {
            stopped = 1;
            break;
        }
    }
    drisk_sql_reset(st);
    if (stopped)
        return drisk_error_set(err, DRISK_EINVAL, "reading the ingest log stopped");
    if (r != DRISK_SQL_DONE)
        return fail(store, "reading the ingest log", err);
    *c = next;
    return DRISK_OK;
}

enum drisk_status drisk_store_shard_claim(struct drisk_store *store, int64_t node, int64_t now,
                                          int64_t every_s, int64_t lease_s, int *shard,
                                          int64_t *swept_at, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_SHARD_CLAIM, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int64(st, 1, now);
    drisk_sql_bind_int64(st, 2, now + lease_s);
    drisk_sql_bind_int64(st, 3, node);
    drisk_sql_bind_int64(st, 4, now - every_s);
    int r = drisk_sql_step(st), got = r == DRISK_SQL_ROW;
    if (got) {
        *shard = drisk_sql_col_int(st, 0);
        *swept_at = drisk_sql_col_int64(st, 1);
        r = drisk_sql_step(st);
    }
    drisk_sql_reset(st);
    if (r != DRISK_SQL_DONE)
        return fail(store, "claiming a sweep shard", err);
    return got ? DRISK_OK : DRISK_ENOTFOUND;
}

enum drisk_status drisk_store_shard_done(struct drisk_store *store, int shard, int64_t node,
                                         int64_t now, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, L_SHARD_DONE, err);
    if (!st)
        return DRISK_EIO;
    drisk_sql_bind_int(st, 1, shard);
    drisk_sql_bind_int64(st, 2, node);
    drisk_sql_bind_int64(st, 3, now);
    return drisk_store_run(store, st, "marking a sweep shard swept", err);
}
