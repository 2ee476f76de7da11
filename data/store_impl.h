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

#endif
