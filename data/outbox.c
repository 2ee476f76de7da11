/* Webhook endpoints, the event outbox and its deliveries (data/outbox.h). Statements live
 * in the connection's slots after data/live.c's. */
#include "data/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/store_impl.h"

enum {
    O_CREATE,
    O_COUNT_HOOKS,
    O_GET,
    O_LIST,
    O_DELETE_LOG,
    O_DELETE,
    O_DISABLE,
    O_DISABLE_PENDING,
    O_WANTED,
    O_EMIT_EVENT,
    O_EMIT_DELIVERIES,
    O_DUE,
    O_RESULT,
    O_LOG,
    O_REDELIVER,
    O_DELIVERY_GET,
    O_CLAIM,
    O_COUNT
};

#define HOOK_COLS "w.id, w.url, w.events, w.created_at, w.disabled_at, w.disabled_reason"
#define MERCHANT_ROW "(SELECT id FROM merchants WHERE name = ?1)"
#define DELIVERY_COLS                                                                       \
    "d.id, d.event_id, d.webhook_id, d.shipment_id, e.type, e.created_at, d.status,"      \
    " d.attempts, d.next_at, d.last_attempt_at, d.last_code, d.last_error, d.delivered_at"
#define DELIVERY_NCOLS 13

static const char *const sql[O_COUNT] = {
    /* due still (no other node took it since it was read): due again at ?3 */
    [O_CLAIM] = "UPDATE webhook_deliveries SET next_at = ?3 WHERE id = ?1 AND status = 'pending'"
                " AND next_at <= ?2",
    [O_CREATE] = "INSERT INTO webhooks(merchant_id, url, events, secret, created_at)"
                 " VALUES (" MERCHANT_ROW ", ?2, ?3, ?4, ?5)",
    [O_COUNT_HOOKS] = "SELECT count(*) FROM webhooks WHERE merchant_id = " MERCHANT_ROW,
    [O_GET] = "SELECT " HOOK_COLS " FROM webhooks w WHERE w.merchant_id = " MERCHANT_ROW
              " AND w.id = ?2",
    [O_LIST] = "SELECT " HOOK_COLS " FROM webhooks w WHERE w.merchant_id = " MERCHANT_ROW
               " AND w.id > ?2 ORDER BY w.id LIMIT ?3",
    [O_DELETE_LOG] = "DELETE FROM webhook_deliveries WHERE webhook_id = (SELECT id FROM webhooks"
                     " WHERE merchant_id = " MERCHANT_ROW " AND id = ?2)",
    [O_DELETE] = "DELETE FROM webhooks WHERE merchant_id = " MERCHANT_ROW " AND id = ?2",
    [O_DISABLE] = "UPDATE webhooks SET disabled_at = ?2, disabled_reason = ?3"
                  " WHERE id = ?1 AND disabled_at IS NULL",
    [O_DISABLE_PENDING] = "UPDATE webhook_deliveries SET status = 'disabled', next_at = NULL"
                          " WHERE webhook_id = ?1 AND status = 'pending'",
    [O_WANTED] = "SELECT 1 FROM shipments s JOIN webhooks w ON w.merchant_id = s.merchant_id"
                 " WHERE s.id = ?1 AND w.disabled_at IS NULL AND (instr(w.events, ',' || ?2 || ',') > 0"
                 " OR w.events = ',*,') LIMIT 1",
    /* only when some enabled endpoint of the shipment's merchant takes the type */
    [O_EMIT_EVENT] = "INSERT INTO webhook_events(merchant_id, shipment_id, type, created_at, data)"
                     " SELECT s.merchant_id, s.id, ?2, ?3, ?4 FROM shipments s WHERE s.id = ?1"
                     " AND EXISTS (SELECT 1 FROM webhooks w WHERE w.merchant_id = s.merchant_id"
                     " AND w.disabled_at IS NULL AND (instr(w.events, ',' || ?2 || ',') > 0"
                     " OR w.events = ',*,'))",
    [O_EMIT_DELIVERIES] = "INSERT INTO webhook_deliveries(event_id, webhook_id, shipment_id, next_at)"
                          " SELECT e.id, w.id, e.shipment_id, ?2 FROM webhook_events e"
                          " JOIN webhooks w ON w.merchant_id = e.merchant_id"
                          " WHERE e.id = ?1 AND w.disabled_at IS NULL AND"
                          " (instr(w.events, ',' || e.type || ',') > 0 OR w.events = ',*,')",
    [O_DUE] = "SELECT " DELIVERY_COLS ", w.url, w.secret, e.data FROM webhook_deliveries d"
              " JOIN webhook_events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id"
              " WHERE d.status = 'pending' AND d.next_at <= ?1 AND d.id = (SELECT min(x.id)"
              " FROM webhook_deliveries x WHERE x.status = 'pending' AND x.webhook_id = d.webhook_id"
              " AND x.shipment_id = d.shipment_id) ORDER BY d.next_at, d.id LIMIT ?2",
    [O_RESULT] = "UPDATE webhook_deliveries SET status = ?2, next_at = ?3, last_code = ?4,"
                 " last_error = ?5, delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 END,"
                 " attempts = attempts + 1, last_attempt_at = ?6"
                 " WHERE id = ?1 AND status = 'pending'",
    [O_LOG] = "SELECT " DELIVERY_COLS " FROM webhook_deliveries d"
              " JOIN webhook_events e ON e.id = d.event_id"
              " WHERE d.webhook_id = (SELECT id FROM webhooks WHERE merchant_id = " MERCHANT_ROW
              " AND id = ?2) AND (?3 = 0 OR d.id < ?3) AND (CAST(?4 AS TEXT) IS NULL OR d.status = ?4)"
              " ORDER BY d.id DESC LIMIT ?5",
    [O_REDELIVER] = "UPDATE webhook_deliveries SET status = 'pending', next_at = ?4,"
                    " delivered_at = NULL WHERE id = ?3 AND webhook_id = (SELECT id FROM webhooks"
                    " WHERE merchant_id = " MERCHANT_ROW " AND id = ?2 AND disabled_at IS NULL)",
    [O_DELIVERY_GET] = "SELECT " DELIVERY_COLS " FROM webhook_deliveries d"
                       " JOIN webhook_events e ON e.id = d.event_id"
                       " WHERE d.id = ?3 AND d.webhook_id = (SELECT id FROM webhooks"
                       " WHERE merchant_id = " MERCHANT_ROW " AND id = ?2)",
};

_Static_assert(DRISK_STORE_SLOTS_LIVE + O_COUNT <= DRISK_STORE_LIVE_STMTS,
               "data/outbox.c has more statements than slots");

static struct drisk_sql_stmt *stmt(struct drisk_store *store, int i, struct drisk_error *err)
{
    return drisk_store_slot(store, DRISK_STORE_SLOTS_LIVE + i, sql[i], err);
}

static const char *const status_names[] = { "pending", "delivered", "failed", "disabled" };

const char *drisk_delivery_status_name(int status)
{
    return status >= 0 && status < 4 ? status_names[status] : "pending";
}

int drisk_delivery_status_parse(const char *s)
{
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

/* ---- endpoints ---- */

enum drisk_status drisk_webhook_create(struct drisk_store *store, const char *merchant,
                                       const char *url, const char *events, const char *secret,
                                       int64_t now, int64_t *id, struct drisk_error *err)
{
    enum drisk_status rc = drisk_store_begin(store, err);
    if (rc)
        return rc;
    /* the merchant exists from its first shipment, setting or endpoint */
    struct drisk_sql *db = drisk_store_sql(store);
    struct drisk_sql_stmt *st;
    int64_t mid;
    if ((rc = drisk_store_merchant(store, merchant, &mid, err)))
        goto out;
    if (!(st = stmt(store, O_COUNT_HOOKS, err))) {
        rc = err->status;
        goto out;
    }
    drisk_sql_bind_text(st, 1, merchant);
    int64_t have = drisk_sql_step(st) == DRISK_SQL_ROW ? drisk_sql_col_int64(st, 0) : 0;
    drisk_sql_reset(st);
    if (have >= DRISK_WEBHOOKS_PER_MERCHANT) {
        rc = drisk_error_set(err, DRISK_EINVAL, "this merchant has %d webhook endpoints, the most "
                             "it may have: delete one first (DELETE /v1/webhooks/{id})",
                             DRISK_WEBHOOKS_PER_MERCHANT);
        goto out;
    }
    if (!(st = stmt(store, O_CREATE, err))) {
        rc = err->status;
        goto out;
    }
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_text(st, 2, url);
    drisk_sql_bind_text(st, 3, events);
    drisk_sql_bind_text(st, 4, secret);
    drisk_sql_bind_int64(st, 5, now);
    if ((rc = drisk_store_run(store, st, "adding a webhook", err)))
        goto out;
    *id = drisk_sql_last_id(db);
    return drisk_store_commit(store, err);
out:
    drisk_store_rollback(store);
    return rc;
}

static void read_hook(struct drisk_sql_stmt *st, struct drisk_webhook *w)
{
    w->id = drisk_sql_col_int64(st, 0);
    drisk_store_copy_col(st, 1, w->url, sizeof w->url);
    drisk_store_copy_col(st, 2, w->events, sizeof w->events);
    w->created_at = drisk_sql_col_int64(st, 3);
    w->disabled_at = drisk_col_ts(st, 4);
    drisk_store_copy_col(st, 5, w->disabled_reason, sizeof w->disabled_reason);
}

enum drisk_status drisk_webhook_get(struct drisk_store *store, const char *merchant, int64_t id,
                                    struct drisk_webhook *out, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_GET, err);
    if (!st)
        return err->status;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_int64(st, 2, id);
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        read_hook(st, out);
    drisk_sql_reset(st);
    if (r == DRISK_SQL_ROW)
        return DRISK_OK;
    if (r == DRISK_SQL_DONE)
        return drisk_error_set(err, DRISK_ENOTFOUND, "no webhook endpoint %lld: see GET /v1/webhooks",
                               (long long)id);
    return drisk_store_fail(store, "reading a webhook", err);
}

enum drisk_status drisk_webhook_list(struct drisk_store *store, const char *merchant,
                                     int64_t after_id, int limit, drisk_webhook_fn fn, void *ctx,
                                     struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_LIST, err);
    if (!st)
        return err->status;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_int64(st, 2, after_id);
    drisk_sql_bind_int(st, 3, limit);
    struct drisk_webhook w;
    int r;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        read_hook(st, &w);
        if (fn(&w, ctx))
            break;
    }
    drisk_sql_reset(st);
    return r == DRISK_SQL_ROW || r == DRISK_SQL_DONE ? DRISK_OK
                                                : drisk_store_fail(store, "listing webhooks", err);
}

enum drisk_status drisk_webhook_delete(struct drisk_store *store, const char *merchant,
                                       int64_t id, struct drisk_error *err)
{
    enum drisk_status rc = drisk_store_begin(store, err);
    if (rc)
        return rc;
    for (int i = O_DELETE_LOG; i <= O_DELETE && !rc; i++) {
        struct drisk_sql_stmt *st = stmt(store, i, err);
        if (!st) {
            rc = err->status;
            break;
        }
        drisk_sql_bind_text(st, 1, merchant);
        drisk_sql_bind_int64(st, 2, id);
        rc = drisk_store_run(store, st, "deleting a webhook", err);
    }
    if (!rc && drisk_sql_changes(drisk_store_sql(store)) == 0)
        rc = drisk_error_set(err, DRISK_ENOTFOUND, "no webhook endpoint %lld: see GET /v1/webhooks",
                             (long long)id);
    if (rc) {
        drisk_store_rollback(store);
        return rc;
    }
    return drisk_store_commit(store, err);
}

enum drisk_status drisk_webhook_disable(struct drisk_store *store, int64_t id, const char *reason,
                                        int64_t now, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_DISABLE, err);
    if (!st)
        return err->status;
    drisk_sql_bind_int64(st, 1, id);
    drisk_sql_bind_int64(st, 2, now);
    drisk_sql_bind_text(st, 3, reason);
    enum drisk_status rc = drisk_store_run(store, st, "disabling a webhook", err);
    if (rc)
        return rc;
    if (!(st = stmt(store, O_DISABLE_PENDING, err)))
        return err->status;
    drisk_sql_bind_int64(st, 1, id);
    return drisk_store_run(store, st, "disabling a webhook", err);
}

/* ---- the outbox ---- */

enum drisk_status drisk_outbox_wanted(struct drisk_store *store, int64_t shipment, const char *type,
                                      int *wanted, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_WANTED, err);
    *wanted = 0;
    if (!st)
        return err->status;
    drisk_sql_bind_int64(st, 1, shipment);
    drisk_sql_bind_text(st, 2, type);
    int r = drisk_sql_step(st);
    *wanted = r == DRISK_SQL_ROW;
    drisk_sql_reset(st);
    return r == DRISK_SQL_ROW || r == DRISK_SQL_DONE ? DRISK_OK
                                                : drisk_store_fail(store, "looking up webhooks", err);
}

enum drisk_status drisk_outbox_emit(struct drisk_store *store, int64_t shipment, const char *type,
                                    const char *data, int64_t now, int *queued,
                                    struct drisk_error *err)
{
    struct drisk_sql *db = drisk_store_sql(store);
    struct drisk_sql_stmt *st = stmt(store, O_EMIT_EVENT, err);
    if (queued)
        *queued = 0;
    if (!st)
        return err->status;
    drisk_sql_bind_int64(st, 1, shipment);
    drisk_sql_bind_text(st, 2, type);
    drisk_sql_bind_int64(st, 3, now);
    drisk_sql_bind_text(st, 4, data);
    enum drisk_status rc = drisk_store_run(store, st, "queueing a webhook event", err);
    if (rc || drisk_sql_changes(db) == 0) /* no endpoint takes it */
        return rc;
    int64_t event = drisk_sql_last_id(db);
    if (!(st = stmt(store, O_EMIT_DELIVERIES, err)))
        return err->status;
    drisk_sql_bind_int64(st, 1, event);
    drisk_sql_bind_int64(st, 2, now * 1000);
    if ((rc = drisk_store_run(store, st, "queueing a webhook event", err)))
        return rc;
    if (queued)
        *queued = drisk_sql_changes(db);
    return DRISK_OK;
}

static void read_delivery(struct drisk_sql_stmt *st, struct drisk_delivery *d)
{
    d->id = drisk_sql_col_int64(st, 0);
    d->event_id = drisk_sql_col_int64(st, 1);
    d->webhook_id = drisk_sql_col_int64(st, 2);
    d->shipment = drisk_sql_col_int64(st, 3);
    drisk_store_copy_col(st, 4, d->type, sizeof d->type);
    d->event_created_at = drisk_sql_col_int64(st, 5);
    d->status = drisk_delivery_status_parse(drisk_sql_col_text(st, 6));
    if (d->status < 0)
        d->status = DRISK_DELIVERY_PENDING;
    d->attempts = drisk_sql_col_int(st, 7);
    d->next_at_ms = drisk_sql_col_null(st, 8) ? 0 : drisk_sql_col_int64(st, 8);
    d->last_attempt_at = drisk_col_ts(st, 9);
    d->last_code = drisk_sql_col_int(st, 10);
    drisk_store_copy_col(st, 11, d->last_error, sizeof d->last_error);
    d->delivered_at = drisk_col_ts(st, 12);
    d->url[0] = d->secret[0] = '\0';
    d->data = NULL;
}

/* Calls fn for each row of st (bound), with the endpoint and the event's data when
 * with_target (O_DUE's extra columns), until fn returns non-zero; resets st. */
static enum drisk_status each_delivery(struct drisk_store *store, struct drisk_sql_stmt *st, int with_target,
                                       drisk_delivery_fn fn, void *ctx, const char *what,
                                       struct drisk_error *err)
{
    struct drisk_delivery *d = malloc(sizeof *d); /* 2 KiB of URL: not on the stack */
    if (!d) {
        drisk_sql_reset(st);
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory %s", what);
    }
    int r;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        read_delivery(st, d);
        if (with_target) {
            drisk_store_copy_col(st, DELIVERY_NCOLS, d->url, sizeof d->url);
            drisk_store_copy_col(st, DELIVERY_NCOLS + 1, d->secret, sizeof d->secret);
            d->data = (char *)drisk_sql_col_text(st, DELIVERY_NCOLS + 2);
        }
        if (fn(d, ctx))
            break;
    }
    drisk_sql_reset(st);
    free(d);
    return r == DRISK_SQL_ROW || r == DRISK_SQL_DONE ? DRISK_OK : drisk_store_fail(store, what, err);
}

enum drisk_status drisk_outbox_due(struct drisk_store *store, int64_t now_ms, int limit,
                                   drisk_delivery_fn fn, void *ctx, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_DUE, err);
    if (!st)
        return err->status;
    drisk_sql_bind_int64(st, 1, now_ms);
    drisk_sql_bind_int(st, 2, limit);
    return each_delivery(store, st, 1, fn, ctx, "reading due webhook deliveries", err);
}

enum drisk_status drisk_outbox_claim(struct drisk_store *store, int64_t id, int64_t now_ms,
                                     int64_t until_ms, int *claimed, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_CLAIM, err);
    *claimed = 0;
    if (!st)
        return err->status;
    drisk_sql_bind_int64(st, 1, id);
    drisk_sql_bind_int64(st, 2, now_ms);
    drisk_sql_bind_int64(st, 3, until_ms);
    enum drisk_status rc = drisk_store_run(store, st, "claiming a webhook delivery", err);
    *claimed = !rc && drisk_sql_changes(drisk_store_sql(store)) == 1;
    return rc;
}

enum drisk_status drisk_outbox_result(struct drisk_store *store, int64_t id, int status,
                                      int64_t next_ms, int code, const char *error, int64_t now,
                                      struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_RESULT, err);
    if (!st)
        return err->status;
    drisk_sql_bind_int64(st, 1, id);
    drisk_sql_bind_text(st, 2, drisk_delivery_status_name(status));
    if (status == DRISK_DELIVERY_PENDING)
        drisk_sql_bind_int64(st, 3, next_ms);
    else
        drisk_sql_bind_null(st, 3);
    if (code)
        drisk_sql_bind_int(st, 4, code);
    else
        drisk_sql_bind_null(st, 4);
    drisk_bind_text(st, 5, error && error[0] ? error : NULL);
    drisk_sql_bind_int64(st, 6, now);
    return drisk_store_run(store, st, "recording a webhook delivery", err);
}

enum drisk_status drisk_outbox_log(struct drisk_store *store, const char *merchant,
                                   int64_t webhook_id, int64_t before_id, int status, int limit,
                                   drisk_delivery_fn fn, void *ctx, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_LOG, err);
    if (!st)
        return err->status;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_int64(st, 2, webhook_id);
    drisk_sql_bind_int64(st, 3, before_id);
    drisk_bind_text(st, 4, status < 0 ? NULL : drisk_delivery_status_name(status));
    drisk_sql_bind_int(st, 5, limit);
    return each_delivery(store, st, 0, fn, ctx, "reading webhook deliveries", err);
}

enum drisk_status drisk_outbox_redeliver(struct drisk_store *store, const char *merchant,
                                         int64_t webhook_id, int64_t id, int64_t now_ms,
                                         struct drisk_delivery *out, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = stmt(store, O_REDELIVER, err);
    if (!st)
        return err->status;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_int64(st, 2, webhook_id);
    drisk_sql_bind_int64(st, 3, id);
    drisk_sql_bind_int64(st, 4, now_ms);
    enum drisk_status rc = drisk_store_run(store, st, "redelivering a webhook event", err);
    if (rc)
        return rc;
    int changed = drisk_sql_changes(drisk_store_sql(store));
    if (!(st = stmt(store, O_DELIVERY_GET, err)))
        return err->status;
    drisk_sql_bind_text(st, 1, merchant);
    drisk_sql_bind_int64(st, 2, webhook_id);
    drisk_sql_bind_int64(st, 3, id);
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        read_delivery(st, out);
    drisk_sql_reset(st);
    if (r == DRISK_SQL_DONE)
        return drisk_error_set(err, DRISK_ENOTFOUND, "no delivery %lld of webhook endpoint %lld: "
                               "see GET /v1/webhooks/%lld/deliveries", (long long)id,
                               (long long)webhook_id, (long long)webhook_id);
    if (r != DRISK_SQL_ROW)
        return drisk_store_fail(store, "reading a webhook delivery", err);
    if (!changed)
        return drisk_error_set(err, DRISK_EINVAL, "webhook endpoint %lld is disabled: create a new "
                               "endpoint to receive events again", (long long)webhook_id);
    return DRISK_OK;
}
