/* Private to data/: what data/live.c needs of a store connection. */
#ifndef DRISK_STORE_IMPL_H
#define DRISK_STORE_IMPL_H

#include "data/sql.h"

#include "data/store.h"

/* Statement slots owned by the connection (finalized with it): data/live.c uses the
 * first DRISK_STORE_SLOTS_LIVE, data/outbox.c the rest. */
#define DRISK_STORE_SLOTS_LIVE 32
#define DRISK_STORE_LIVE_STMTS 64

struct drisk_sql *drisk_store_sql(struct drisk_store *store);
struct drisk_sql_stmt **drisk_store_live_stmts(struct drisk_store *store);

/* The id of merchant name, created if new (in the caller's transaction, if any). */
enum drisk_status drisk_store_merchant(struct drisk_store *store, const char *name, int64_t *id,
                                       struct drisk_error *err);

/* Slot i's statement, prepared from sql on first use, bindings cleared; NULL with err
 * set. */
struct drisk_sql_stmt *drisk_store_slot(struct drisk_store *store, int i, const char *sql,
                               struct drisk_error *err);
/* DRISK_EIO with the connection's last error, "database error while <what>: ...". */
enum drisk_status drisk_store_fail(struct drisk_store *store, const char *what,
                                   struct drisk_error *err);
/* Steps a statement that returns no rows, and resets it. */
enum drisk_status drisk_store_run(struct drisk_store *store, struct drisk_sql_stmt *st, const char *what,
                                  struct drisk_error *err);

/* NULL binds for DRISK_TS_NONE / a NULL string, and the NULL-aware column readers. */
static inline void drisk_bind_ts(struct drisk_sql_stmt *st, int i, int64_t ts)
{
    if (ts == DRISK_TS_NONE)
        drisk_sql_bind_null(st, i);
    else
        drisk_sql_bind_int64(st, i, ts);
}
static inline void drisk_bind_text(struct drisk_sql_stmt *st, int i, const char *s)
{
    if (s)
        drisk_sql_bind_text_copy(st, i, s);
    else
        drisk_sql_bind_null(st, i);
}
static inline int64_t drisk_col_ts(struct drisk_sql_stmt *st, int c)
{
    return drisk_sql_col_null(st, c) ? DRISK_TS_NONE : drisk_sql_col_int64(st, c);
}

/* Copies text column col of st's current row into dst (cap bytes, truncated, always
 * terminated; "" for NULL). */
void drisk_store_copy_col(struct drisk_sql_stmt *st, int col, char *dst, size_t cap);

/* The shipment columns every reader selects first, in this order (s: shipments, m: its
 * merchant), and the reader of them: columns 0 to DRISK_SHIPMENT_NCOLS - 1 of st's row. */
#define DRISK_SHIPMENT_COLS                                                               \
    "s.id, m.name, s.shipment_key, s.order_id, s.carrier, s.service, s.origin,"          \
    " s.destination, s.weight_kg, s.declared_value, s.created_at, s.promised_at,"       \
    " s.delivered_at, s.outcome, s.carrier_eta"
#define DRISK_SHIPMENT_NCOLS 15
void drisk_store_read_shipment(struct drisk_sql_stmt *st, struct drisk_shipment *sh);

#endif
