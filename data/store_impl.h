/* Private to data/: what data/live.c needs of a store connection. */
#ifndef DRISK_STORE_IMPL_H
#define DRISK_STORE_IMPL_H

#include <sqlite3.h>

#include "data/store.h"

#define DRISK_STORE_LIVE_STMTS 32

sqlite3 *drisk_store_sqlite(struct drisk_store *store);
/* DRISK_STORE_LIVE_STMTS statement slots owned by the connection (finalized with it). */
sqlite3_stmt **drisk_store_live_stmts(struct drisk_store *store);

/* Copies text column col of st's current row into dst (cap bytes, truncated, always
 * terminated; "" for NULL). */
void drisk_store_copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap);

/* The shipment columns every reader selects first, in this order (s: shipments, m: its
 * merchant), and the reader of them: columns 0 to DRISK_SHIPMENT_NCOLS - 1 of st's row. */
#define DRISK_SHIPMENT_COLS                                                               \
    "s.id, m.name, s.shipment_key, s.order_id, s.carrier, s.service, s.origin,"          \
    " s.destination, s.weight_kg, s.declared_value, s.created_at, s.promised_at,"       \
    " s.delivered_at, s.outcome"
#define DRISK_SHIPMENT_NCOLS 14
void drisk_store_read_shipment(sqlite3_stmt *st, struct drisk_shipment *sh);

#endif
