/* SQLite-backed store: opening and migrating, transactions, shipment upserts, scan
 * inserts, and the streaming shipment+scans iterator that training and evaluation read.
 * Statements are prepared once per connection and reset after each use. */
#include "data/store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "data/schema.h"
#include "data/store_impl.h"
#include "engine/features.h"
#include "base/sha256.h"
#include "base/strmap.h"
#include "engine/vocab.h"
#include "models/model.h"

enum stmt_id {
    ST_MERCHANT_FIND,
    ST_MERCHANT_INSERT,
    ST_SHIPMENT_FIND_FULL,
    ST_SHIPMENT_FIND,
    ST_SHIPMENT_FIND_ANY,
    ST_SHIPMENT_INSERT,
    ST_SHIPMENT_UPDATE,
    ST_SHIPMENT_ENSURE,
    ST_SCAN_INSERT,
    ST_LOCATION_FIND,
    ST_LOCATION_INSERT,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_MERCHANT_FIND] = "SELECT id FROM merchants WHERE name = ?1",
    [ST_MERCHANT_INSERT] = "INSERT INTO merchants(name) VALUES (?1)",
    [ST_SHIPMENT_FIND_FULL] =
        "SELECT id, order_id, carrier, service, origin, destination, weight_kg,"
        " declared_value, created_at, promised_at, delivered_at, outcome, carrier_eta"
        " FROM shipments WHERE merchant_id = ?1 AND shipment_key = ?2",
    [ST_SHIPMENT_FIND] =
        "SELECT s.id FROM shipments s JOIN merchants m ON m.id = s.merchant_id"
        " WHERE m.name = ?1 AND s.shipment_key = ?2",
    [ST_SHIPMENT_FIND_ANY] = "SELECT id FROM shipments WHERE shipment_key = ?1 LIMIT 2",
    [ST_SHIPMENT_INSERT] =
        "INSERT INTO shipments(merchant_id, shipment_key, order_id, carrier, service, origin,"
        " destination, weight_kg, declared_value, created_at, promised_at, delivered_at, outcome,"
        " carrier_eta) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
    [ST_SHIPMENT_UPDATE] =
        "UPDATE shipments SET order_id=?3, carrier=?4, service=?5, origin=?6, destination=?7,"
        " weight_kg=?8, declared_value=?9, created_at=?10, promised_at=?11, delivered_at=?12,"
        " outcome=?13, carrier_eta = coalesce(?14, carrier_eta)"
        " WHERE merchant_id = ?1 AND shipment_key = ?2",
    /* aggregator webhooks: a known shipment keeps its fields, only the carrier's estimate
     * moves */
    [ST_SHIPMENT_ENSURE] =
        "INSERT INTO shipments(merchant_id, shipment_key, order_id, carrier, service, origin,"
        " destination, weight_kg, declared_value, created_at, promised_at, delivered_at, outcome,"
        " carrier_eta) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
        " ON CONFLICT(merchant_id, shipment_key) DO UPDATE"
        " SET carrier_eta = coalesce(excluded.carrier_eta, carrier_eta) RETURNING id",
    [ST_SCAN_INSERT] =
        "INSERT OR IGNORE INTO scans(shipment_id, ts, event, location_id, reason, description)"
        " VALUES (?1,?2,?3,?4,?5,?6)",
    [ST_LOCATION_FIND] = "SELECT id FROM locations WHERE code = ?1",
    [ST_LOCATION_INSERT] = "INSERT INTO locations(code) VALUES (?1)",
};

/* Location code -> id cache: real networks have thousands of facilities; beyond this many
 * codes, lookups go to SQLite. */
#define LOC_CACHE_MAX (1 << 16)

struct drisk_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    int in_txn;
    int bulk; /* in a drisk_store_begin_bulk transaction: foreign keys off */
    struct drisk_strmap *loc; /* location code -> id, NULL until first used */
    /* One-entry merchant cache: imports and the simulator use few merchants. */
    char merchant_name[DRISK_ID_MAX];
    int64_t merchant_id;
    sqlite3_stmt *live[DRISK_STORE_LIVE_STMTS]; /* data/live.c's, prepared on first use */
    sqlite3_stmt *by_id; /* drisk_store_iterate of one shipment, prepared on first use */
    int lock_fd;         /* drisk_store_lock's file, -1 when none */
    char lock_name[32];
};

sqlite3 *drisk_store_sqlite(struct drisk_store *store)
{
    return store->db;
}

sqlite3_stmt **drisk_store_live_stmts(struct drisk_store *store)
{
    return store->live;
}

/* Waits for a lock another connection holds in steps of 1 ms, for 10 s at most. SQLite's
 * own busy timeout sleeps on a growing schedule (up to 100 ms a try), which turned a few
 * milliseconds of contention between the server's writers (requests, the sweep, the
 * webhook worker) into stalls of 100 ms and more. */
static int busy_wait(void *ctx, int tries)
{
    (void)ctx;
    if (tries >= 10000)
        return 0;
    struct timespec t = { 0, 1000000 };
    nanosleep(&t, NULL);
    return 1;
}

enum drisk_status drisk_store_fail(struct drisk_store *store, const char *what,
                                   struct drisk_error *err)
{
    return drisk_error_set(err, DRISK_EIO, "database error while %s: %s", what,
                           sqlite3_errmsg(store->db));
}

sqlite3_stmt *drisk_store_slot(struct drisk_store *store, int i, const char *sql,
                               struct drisk_error *err)
{
    sqlite3_stmt **slot = &store->live[i];
    if (!*slot && sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot,
                                     NULL) != SQLITE_OK) {
        drisk_store_fail(store, "preparing a statement", err);
        *slot = NULL;
        return NULL;
    }
    sqlite3_clear_bindings(*slot);
    return *slot;
}

enum drisk_status drisk_store_run(struct drisk_store *store, sqlite3_stmt *st, const char *what,
                                  struct drisk_error *err)
{
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    return r == SQLITE_DONE ? DRISK_OK : drisk_store_fail(store, what, err);
}


static enum drisk_status db_error(struct drisk_store *store, struct drisk_error *err,
                                  const char *what)
{
    return drisk_store_fail(store, what, err);
}

static enum drisk_status exec(struct drisk_store *store, const char *sql, const char *what,
                              struct drisk_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        drisk_error_set(err, DRISK_EIO, "database error while %s: %s", what,
                        msg ? msg : sqlite3_errmsg(store->db));
        sqlite3_free(msg);
        return DRISK_EIO;
    }
    return DRISK_OK;
}

int drisk_store_schema_version(void)
{
    return DRISK_SCHEMA_VERSION;
}

static int read_version(struct drisk_store *store, int *version)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    int r = sqlite3_step(st);
    *version = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? 0 : -1;
}

/* Applies the missing migrations, each in its own write transaction. The version is read
 * again under the write lock, so two processes opening a new database at once do not
 * both apply the same migration. */
static enum drisk_status migrate(struct drisk_store *store, struct drisk_error *err)
{
    int version;
    enum drisk_status rc;
    for (;;) {
        if (read_version(store, &version))
            return db_error(store, err, "reading the schema version");
        if (version > DRISK_SCHEMA_VERSION)
            return drisk_error_set(err, DRISK_ESCHEMA,
                                   "the database has schema version %d but this drisk knows "
                                   "only up to %d: use a newer drisk build",
                                   version, DRISK_SCHEMA_VERSION);
        if (version == DRISK_SCHEMA_VERSION)
            return DRISK_OK;
        if ((rc = exec(store, "BEGIN IMMEDIATE", "starting a migration", err)))
            return rc;
        if (read_version(store, &version)) {
            sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
            return db_error(store, err, "reading the schema version");
        }
        if (version >= DRISK_SCHEMA_VERSION) { /* another process got there first */
            sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
            continue;
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
        if ((rc = exec(store, drisk_migrations[version], "migrating the schema", err)) ||
            (rc = exec(store, sql, "migrating the schema", err)) ||
            (rc = exec(store, "COMMIT", "migrating the schema", err))) {
            sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
}

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/* Process-wide SQLite settings, before its first use: no memory statistics (a global
 * mutex on every malloc otherwise). Connections are opened NOMUTEX: each struct
 * drisk_store is used by one thread at a time. */
static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

enum drisk_status drisk_store_open(const char *path, struct drisk_store **out,
                                   struct drisk_error *err)
{
    enum drisk_status rc = DRISK_OK;
    pthread_once(&sqlite_once, sqlite_setup);
    struct drisk_store *store = calloc(1, sizeof *store);
    *out = NULL;
    if (!store)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory opening %s", path);
    store->lock_fd = -1;
    if (sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                                   SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        rc = drisk_error_set(err, DRISK_EIO, "cannot open database %s: %s (check the path and "
                             "its directory's permissions)", path,
                             store->db ? sqlite3_errmsg(store->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_handler(store->db, busy_wait, NULL);
    /* WAL lets the server read while an import writes; synchronous=FULL makes every
     * commit durable when it returns (a bulk import commits once, so it costs little).
     * threads=2 lets index builds sort on a second core. */
    if ((rc = exec(store,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                   "PRAGMA cache_size=-65536; PRAGMA threads=2;",
                   "configuring the connection", err)))
        goto out;
    if ((rc = migrate(store, err)))
        goto out;
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(store->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &store->stmt[i], NULL) != SQLITE_OK) {
            rc = db_error(store, err, "preparing statements");
            goto out;
        }
    }
out:
    if (rc) {
        if (rc == DRISK_EIO && err && strstr(err->msg, "not a database"))
            drisk_error_set(err, DRISK_EINVAL, "%s is not a drisk (SQLite) database: give "
                            "another --db path", path);
        drisk_store_free(store);
        return rc;
    }
    *out = store;
    return DRISK_OK;
}

/* The id of location code: from the connection's cache, else SQL; a code never seen is
 * added when add is set, else its id is 0. Found ids are cached (an id never changes). */
static enum drisk_status location_lookup(struct drisk_store *store, const char *code, int add,
                                         int64_t *id, struct drisk_error *err)
{
    *id = 0;
    if (!code[0] || (store->loc && drisk_strmap_find(store->loc, code, id)))
        return DRISK_OK;
    sqlite3_stmt *st = store->stmt[ST_LOCATION_FIND];
    sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (r == SQLITE_DONE && add) {
        st = store->stmt[ST_LOCATION_INSERT];
        sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            return db_error(store, err, "adding a location");
        *id = sqlite3_last_insert_rowid(store->db);
    } else if (r != SQLITE_ROW && r != SQLITE_DONE) {
        return db_error(store, err, "looking up a location");
    }
    if (!*id)
        return DRISK_OK;
    /* the cache is only a shortcut: a full or unallocated one just means SQL next time */
    if (!store->loc)
        store->loc = drisk_strmap_create(LOC_CACHE_MAX);
    if (store->loc)
        drisk_strmap_put(store->loc, code, *id);
    return DRISK_OK;
}

enum drisk_status drisk_store_location_find(struct drisk_store *store, const char *code,
                                            int64_t *id, struct drisk_error *err)
{
    return location_lookup(store, code, 0, id, err);
}

void drisk_store_free(struct drisk_store *store)
{
    if (!store)
        return;
    if (store->in_txn)
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(store->stmt[i]);
    for (int i = 0; i < DRISK_STORE_LIVE_STMTS; i++)
        sqlite3_finalize(store->live[i]);
    sqlite3_finalize(store->by_id);
    sqlite3_close(store->db);
    if (store->lock_fd >= 0)
        close(store->lock_fd); /* releases the flock */
    drisk_strmap_free(store->loc);
    free(store);
}

enum drisk_status drisk_store_begin(struct drisk_store *store, struct drisk_error *err)
{
    enum drisk_status rc = exec(store, "BEGIN IMMEDIATE", "starting a transaction", err);
    if (!rc)
        store->in_txn = 1;
    return rc;
}

enum drisk_status drisk_store_begin_bulk(struct drisk_store *store, struct drisk_error *err)
{
    /* foreign_keys can only change outside a transaction. */
    enum drisk_status rc = exec(store, "PRAGMA foreign_keys=OFF", "preparing a bulk load", err);
    if (!rc && (rc = drisk_store_begin(store, err)) != DRISK_OK)
        sqlite3_exec(store->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    store->bulk = !rc;
    return rc;
}

static void end_bulk(struct drisk_store *store)
{
    if (store->bulk)
        sqlite3_exec(store->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    store->bulk = 0;
}

enum drisk_status drisk_store_commit(struct drisk_store *store, struct drisk_error *err)
{
    enum drisk_status rc = exec(store, "COMMIT", "committing", err);
    if (!rc) {
        store->in_txn = 0;
        end_bulk(store);
    }
    return rc;
}

void drisk_store_rollback(struct drisk_store *store)
{
    if (store->in_txn)
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    store->in_txn = 0;
    end_bulk(store);
    /* cached merchant and location rows may have been rolled back */
    store->merchant_name[0] = '\0';
    if (store->loc)
        drisk_strmap_clear(store->loc);
}

void drisk_store_set_synchronous(struct drisk_store *store, int level)
{
    sqlite3_exec(store->db, level >= 2 ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                 NULL, NULL, NULL);
}

void drisk_store_set_autocheckpoint(struct drisk_store *store, int on)
{
    sqlite3_wal_autocheckpoint(store->db, on ? 1000 : 0);
}

void drisk_store_set_mmap(struct drisk_store *store, int64_t bytes)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA mmap_size=%lld", (long long)bytes);
    sqlite3_exec(store->db, sql, NULL, NULL, NULL);
}

void drisk_store_set_cache_bytes(struct drisk_store *store, int64_t bytes)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=%lld", -(long long)(bytes / 1024));
    sqlite3_exec(store->db, sql, NULL, NULL, NULL);
}

enum drisk_status drisk_store_merchant(struct drisk_store *store, const char *name, int64_t *id,
                                       struct drisk_error *err)
{
    if (store->merchant_name[0] && strcmp(store->merchant_name, name) == 0) {
        *id = store->merchant_id;
        return DRISK_OK;
    }
    sqlite3_stmt *st = store->stmt[ST_MERCHANT_FIND];
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    } else {
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            return db_error(store, err, "looking up a merchant");
        st = store->stmt[ST_MERCHANT_INSERT];
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            return db_error(store, err, "creating a merchant");
        *id = sqlite3_last_insert_rowid(store->db);
    }
    snprintf(store->merchant_name, sizeof store->merchant_name, "%s", name);
    store->merchant_id = *id;
    return DRISK_OK;
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s[0])
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_opt_double(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v))
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_double(st, i, v);
}

static void bind_shipment(sqlite3_stmt *st, int64_t mid, const struct drisk_shipment *sh)
{
    sqlite3_bind_int64(st, 1, mid);
    sqlite3_bind_text(st, 2, sh->shipment_id, -1, SQLITE_STATIC);
    bind_opt_text(st, 3, sh->order_id);
    sqlite3_bind_text(st, 4, sh->carrier, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, sh->service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, sh->origin, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, sh->destination, -1, SQLITE_STATIC);
    bind_opt_double(st, 8, sh->weight_kg);
    bind_opt_double(st, 9, sh->declared_value);
    sqlite3_bind_int64(st, 10, sh->created_at);
    sqlite3_bind_int64(st, 11, sh->promised_at);
    if (sh->delivered_at == DRISK_TS_NONE)
        sqlite3_bind_null(st, 12);
    else
        sqlite3_bind_int64(st, 12, sh->delivered_at);
    bind_opt_text(st, 13, drisk_outcome_name(sh->outcome));
    if (sh->carrier_eta > 0) /* none is DRISK_TS_NONE, or 0 where a caller zeroed the struct */
        sqlite3_bind_int64(st, 14, sh->carrier_eta);
    else
        sqlite3_bind_null(st, 14);
}

static int text_eq(sqlite3_stmt *st, int col, const char *s)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return v ? strcmp((const char *)v, s) == 0 : s[0] == '\0';
}

static int double_eq(sqlite3_stmt *st, int col, double v)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return isnan(v);
    return !isnan(v) && sqlite3_column_double(st, col) == v;
}

static int ts_eq(sqlite3_stmt *st, int col, int64_t v)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return v == DRISK_TS_NONE;
    return sqlite3_column_int64(st, col) == v;
}

/* 1 when the stored row (ST_SHIPMENT_FIND_FULL's current row) equals sh. */
static int shipment_unchanged(sqlite3_stmt *st, const struct drisk_shipment *sh)
{
    return text_eq(st, 1, sh->order_id) && text_eq(st, 2, sh->carrier) &&
           text_eq(st, 3, sh->service) && text_eq(st, 4, sh->origin) &&
           text_eq(st, 5, sh->destination) && double_eq(st, 6, sh->weight_kg) &&
           double_eq(st, 7, sh->declared_value) && ts_eq(st, 8, sh->created_at) &&
           ts_eq(st, 9, sh->promised_at) && ts_eq(st, 10, sh->delivered_at) &&
           text_eq(st, 11, drisk_outcome_name(sh->outcome)) &&
           (sh->carrier_eta <= 0 || ts_eq(st, 12, sh->carrier_eta)); /* none keeps the stored */
}

enum drisk_status drisk_store_upsert_shipment(struct drisk_store *store,
                                              const struct drisk_shipment *sh, int64_t *id,
                                              enum drisk_upsert *result,
                                              struct drisk_error *err)
{
    int64_t mid = 0;
    enum drisk_status rc = drisk_store_merchant(store, sh->merchant, &mid, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = store->stmt[ST_SHIPMENT_FIND_FULL];
    sqlite3_bind_int64(st, 1, mid);
    sqlite3_bind_text(st, 2, sh->shipment_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        int same = shipment_unchanged(st, sh);
        sqlite3_reset(st);
        if (same) {
            *result = DRISK_UPSERT_UNCHANGED;
            return DRISK_OK;
        }
        st = store->stmt[ST_SHIPMENT_UPDATE];
        bind_shipment(st, mid, sh);
        r = sqlite3_step(st);
        sqlite3_reset(st);
        if (r != SQLITE_DONE)
            return db_error(store, err, "updating a shipment");
        *result = DRISK_UPSERT_UPDATED;
        return DRISK_OK;
    }
    sqlite3_reset(st);
    if (r != SQLITE_DONE)
        return db_error(store, err, "looking up a shipment");
    st = store->stmt[ST_SHIPMENT_INSERT];
    bind_shipment(st, mid, sh);
    r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r != SQLITE_DONE)
        return db_error(store, err, "inserting a shipment");
    *id = sqlite3_last_insert_rowid(store->db);
    *result = DRISK_UPSERT_INSERTED;
    return DRISK_OK;
}

enum drisk_status drisk_store_ensure_shipment(struct drisk_store *store,
                                              const struct drisk_shipment *sh, int64_t *id,
                                              struct drisk_error *err)
{
    int64_t mid = 0;
    enum drisk_status rc = drisk_store_merchant(store, sh->merchant, &mid, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = store->stmt[ST_SHIPMENT_ENSURE];
    bind_shipment(st, mid, sh);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return r == SQLITE_ROW ? DRISK_OK : db_error(store, err, "writing a shipment");
}

enum drisk_status drisk_store_find_shipment(struct drisk_store *store, const char *merchant,
                                            const char *shipment_id, int64_t *id,
                                            struct drisk_error *err)
{
    sqlite3_stmt *st;
    if (merchant) {
        st = store->stmt[ST_SHIPMENT_FIND];
        sqlite3_bind_text(st, 1, merchant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, shipment_id, -1, SQLITE_STATIC);
    } else {
        st = store->stmt[ST_SHIPMENT_FIND_ANY];
        sqlite3_bind_text(st, 1, shipment_id, -1, SQLITE_STATIC);
    }
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        if (!merchant && sqlite3_step(st) == SQLITE_ROW) {
            sqlite3_reset(st);
            return drisk_error_set(err, DRISK_EINVAL,
                                   "shipment_id is used by several merchants: give merchant_id");
        }
    }
    sqlite3_reset(st);
    if (r == SQLITE_ROW)
        return DRISK_OK;
    if (r == SQLITE_DONE)
        return DRISK_ENOTFOUND;
    return db_error(store, err, "looking up a shipment");
}

enum drisk_status drisk_store_insert_scan(struct drisk_store *store, int64_t shipment,
                                          const struct drisk_scan *scan, int *inserted,
                                          struct drisk_error *err)
{
    int64_t loc = 0;
    enum drisk_status rc = location_lookup(store, scan->location, 1, &loc, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = store->stmt[ST_SCAN_INSERT];
    sqlite3_bind_int64(st, 1, shipment);
    sqlite3_bind_int64(st, 2, scan->ts);
    sqlite3_bind_int(st, 3, scan->event);
    sqlite3_bind_int64(st, 4, loc);
    if (scan->reason)
        sqlite3_bind_int(st, 5, scan->reason);
    else
        sqlite3_bind_null(st, 5);
    bind_opt_text(st, 6, scan->description);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r != SQLITE_DONE)
        return db_error(store, err, "inserting a scan");
    *inserted = sqlite3_changes(store->db) > 0;
    return DRISK_OK;
}

void drisk_store_copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    size_t n = v ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, v, n);
    dst[n] = '\0';
}

void drisk_store_read_shipment(sqlite3_stmt *st, struct drisk_shipment *sh)
{
    sh->id = sqlite3_column_int64(st, 0);
    drisk_store_copy_col(st, 1, sh->merchant, sizeof sh->merchant);
    drisk_store_copy_col(st, 2, sh->shipment_id, sizeof sh->shipment_id);
    drisk_store_copy_col(st, 3, sh->order_id, sizeof sh->order_id);
    drisk_store_copy_col(st, 4, sh->carrier, sizeof sh->carrier);
    drisk_store_copy_col(st, 5, sh->service, sizeof sh->service);
    drisk_store_copy_col(st, 6, sh->origin, sizeof sh->origin);
    drisk_store_copy_col(st, 7, sh->destination, sizeof sh->destination);
    sh->weight_kg = sqlite3_column_type(st, 8) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 8);
    sh->declared_value =
        sqlite3_column_type(st, 9) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 9);
    sh->created_at = sqlite3_column_int64(st, 10);
    sh->promised_at = sqlite3_column_int64(st, 11);
    sh->delivered_at =
        sqlite3_column_type(st, 12) == SQLITE_NULL ? DRISK_TS_NONE : sqlite3_column_int64(st, 12);
    const unsigned char *oc = sqlite3_column_text(st, 13);
    sh->outcome = oc ? drisk_outcome_parse((const char *)oc, strlen((const char *)oc)) : 0;
    if (sh->outcome < 0)
        sh->outcome = 0;
    sh->carrier_eta =
        sqlite3_column_type(st, 14) == SQLITE_NULL ? DRISK_TS_NONE : sqlite3_column_int64(st, 14);
}

enum drisk_status drisk_store_iterate(struct drisk_store *store,
                                      const struct drisk_store_filter *filter,
                                      drisk_shipment_fn fn, void *ctx, struct drisk_error *err)
{
    /* One streaming join: the shipments_by_created index gives the shipment order and the
     * scans primary key gives each shipment's scans in time order, so SQLite sorts nothing. */
#define ITER_SELECT                                                                       \
    "SELECT " DRISK_SHIPMENT_COLS ", c.ts, c.event, c.reason, l.code, c.description,"     \
    " c.location_id"                                                                      \
    " FROM shipments s JOIN merchants m ON m.id = s.merchant_id"                          \
    " LEFT JOIN scans c ON c.shipment_id = s.id"                                          \
    " LEFT JOIN locations l ON l.id = c.location_id"
#define ITER_RANGE " WHERE s.created_at >= ?1 AND s.created_at < ?2 AND (?3 IS NULL OR m.name = ?3)"
#define ITER_ORDER " ORDER BY s.created_at, s.id, c.ts, c.event, c.location_id"
    /* Three fixed statements (no SQL is assembled from input): a created_at range, the
     * same range's shipments still in flight, or one shipment by row id. */
    static const char *const sqls[3] = {
        ITER_SELECT ITER_RANGE ITER_ORDER,
        ITER_SELECT ITER_RANGE " AND s.outcome IS NULL" ITER_ORDER,
        ITER_SELECT " WHERE s.id = ?4" ITER_ORDER,
    };
    const char *sql = sqls[filter && filter->shipment ? 2 : filter && filter->open_only ? 1 : 0];
    enum drisk_status rc = DRISK_OK;
    sqlite3_stmt *st = NULL;
    struct drisk_scan *scans = NULL;
    size_t n = 0, cap = 0;
    struct drisk_shipment cur;
    int have = 0;

    /* one shipment by id is the server's per-request read: its statement is kept */
    int by_id = filter && filter->shipment;
    if (by_id && store->by_id) {
        st = store->by_id;
        sqlite3_clear_bindings(st);
    } else if (sqlite3_prepare_v3(store->db, sql, -1, by_id ? SQLITE_PREPARE_PERSISTENT : 0,
                                  &st, NULL) != SQLITE_OK) {
        return db_error(store, err, "preparing the shipment iterator");
    }
    if (by_id)
        store->by_id = st;
    sqlite3_bind_int64(st, 1, filter ? filter->created_from : INT64_MIN);
    sqlite3_bind_int64(st, 2, filter ? filter->created_to : INT64_MAX);
    if (filter && filter->merchant)
        sqlite3_bind_text(st, 3, filter->merchant, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    if (filter && filter->shipment)
        sqlite3_bind_int64(st, 4, filter->shipment);

    for (;;) {
        int r = sqlite3_step(st);
        if (r != SQLITE_ROW && r != SQLITE_DONE) {
            rc = db_error(store, err, "reading shipments");
            goto out;
        }
        if (r == SQLITE_DONE || !have || sqlite3_column_int64(st, 0) != cur.id) {
            if (have && fn(&cur, scans, n, ctx, err)) {
                rc = DRISK_EINVAL;
                goto out;
            }
            if (r == SQLITE_DONE)
                break;
            drisk_store_read_shipment(st, &cur);
            have = 1;
            n = 0;
        }
        enum { S = DRISK_SHIPMENT_NCOLS }; /* the scan's columns follow the shipment's */
        if (sqlite3_column_type(st, S) == SQLITE_NULL)
            continue; /* a shipment without scans */
        if (n == cap) {
            if (cap >= DRISK_MAX_SCANS_PER_SHIPMENT) {
                rc = drisk_error_set(err, DRISK_EINVAL,
                                     "shipment %s has more than %d scans: drisk refuses to load "
                                     "it; remove its duplicate or bogus scans",
                                     cur.shipment_id, DRISK_MAX_SCANS_PER_SHIPMENT);
                goto out;
            }
            size_t ncap = cap ? cap * 2 : 64;
            if (ncap > DRISK_MAX_SCANS_PER_SHIPMENT)
                ncap = DRISK_MAX_SCANS_PER_SHIPMENT;
            struct drisk_scan *p = realloc(scans, ncap * sizeof *p);
            if (!p) {
                rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory reading scans");
                goto out;
            }
            scans = p;
            cap = ncap;
        }
        struct drisk_scan *sc = &scans[n++];
        sc->ts = sqlite3_column_int64(st, S);
        sc->event = sqlite3_column_int(st, S + 1);
        sc->reason = sqlite3_column_int(st, S + 2);
        drisk_store_copy_col(st, S + 3, sc->location, sizeof sc->location);
        drisk_store_copy_col(st, S + 4, sc->description, sizeof sc->description);
        sc->location_id = sqlite3_column_int64(st, S + 5);
    }
out:
    if (by_id)
        sqlite3_reset(st);
    else
        sqlite3_finalize(st);
    free(scans);
    return rc;
}

static int64_t scalar(struct drisk_store *store, const char *sql, int *ok)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK) {
        *ok = 0;
        return 0;
    }
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        v = sqlite3_column_type(st, 0) == SQLITE_NULL ? DRISK_TS_NONE : sqlite3_column_int64(st, 0);
    else if (r != SQLITE_DONE)
        *ok = 0;
    sqlite3_finalize(st);
    return v;
}

enum drisk_status drisk_store_created_range(struct drisk_store *store, int64_t *first,
                                            int64_t *last, struct drisk_error *err)
{
    int ok = 1;
    *first = scalar(store, "SELECT min(created_at) FROM shipments", &ok);
    *last = scalar(store, "SELECT max(created_at) FROM shipments", &ok);
    return ok ? DRISK_OK : db_error(store, err, "reading the time range");
}

enum drisk_status drisk_store_promise_lead(struct drisk_store *store, int64_t from,
                                           int64_t until, double q, int64_t *lead,
                                           struct drisk_error *err)
{
    sqlite3_stmt *st = NULL;
    *lead = 0;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT promised_at - created_at FROM shipments"
                           " WHERE created_at >= ?1 AND created_at < ?2 ORDER BY 1"
                           " LIMIT 1 OFFSET (SELECT CAST(?3 * (count(*) - 1) AS INTEGER)"
                           " FROM shipments WHERE created_at >= ?1 AND created_at < ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(store, err, "reading promise leads");
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, until);
    sqlite3_bind_double(st, 3, q);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *lead = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r == SQLITE_ROW || r == SQLITE_DONE ? DRISK_OK
                                               : db_error(store, err, "reading promise leads");
}

enum drisk_status drisk_store_count(struct drisk_store *store, int64_t *shipments,
                                    int64_t *scans, struct drisk_error *err)
{
    int ok = 1;
    *shipments = scalar(store, "SELECT count(*) FROM shipments", &ok);
    if (scans) /* NULL: not wanted (the scans table is the largest) */
        *scans = scalar(store, "SELECT count(*) FROM scans", &ok);
    return ok ? DRISK_OK : db_error(store, err, "counting rows");
}

enum drisk_status drisk_store_stats(struct drisk_store *store, struct drisk_store_stats *out,
                                    struct drisk_error *err)
{
    static const char sql[] =
        "SELECT s.carrier, count(*), sum(s.outcome IS NOT NULL),"
        " sum(s.outcome = 'delivered' AND s.delivered_at <= s.promised_at),"
        " sum(s.outcome = 'lost'), sum(s.outcome = 'returned')"
        " FROM shipments s GROUP BY s.carrier ORDER BY s.carrier";
    /* One pass over scans, each joined to its shipment by row id. */
    static const char scans_sql[] =
        "SELECT t.carrier, count(*) FROM scans c JOIN shipments t ON t.id = c.shipment_id"
        " GROUP BY t.carrier";
    int ok = 1;
    memset(out, 0, sizeof *out);
    out->merchants = scalar(store, "SELECT count(*) FROM merchants", &ok);
    out->shipments = scalar(store, "SELECT count(*) FROM shipments", &ok);
    out->scans = scalar(store, "SELECT count(*) FROM scans", &ok);
    out->first_created = scalar(store, "SELECT min(created_at) FROM shipments", &ok);
    out->last_created = scalar(store, "SELECT max(created_at) FROM shipments", &ok);
    if (!ok)
        return db_error(store, err, "summarizing the store");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(store, err, "summarizing carriers");
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n_carriers == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct drisk_carrier_stats *p = realloc(out->carriers, ncap * sizeof *p);
            if (!p) {
                sqlite3_finalize(st);
                drisk_store_stats_free(out);
                return drisk_error_set(err, DRISK_ENOMEM, "out of memory summarizing");
            }
            out->carriers = p;
            cap = ncap;
        }
        struct drisk_carrier_stats *c = &out->carriers[out->n_carriers++];
        drisk_store_copy_col(st, 0, c->carrier, sizeof c->carrier);
        c->shipments = sqlite3_column_int64(st, 1);
        c->labeled = sqlite3_column_int64(st, 2);
        c->on_time = sqlite3_column_int64(st, 3);
        c->lost = sqlite3_column_int64(st, 4);
        c->returned = sqlite3_column_int64(st, 5);
        c->scans = 0;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (r != SQLITE_DONE || sqlite3_prepare_v2(store->db, scans_sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 0);
        for (size_t i = 0; name && i < out->n_carriers; i++)
            if (strcmp(out->carriers[i].carrier, (const char *)name) == 0)
                out->carriers[i].scans = sqlite3_column_int64(st, 1);
    }
    if (r != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    return DRISK_OK;
fail:
    sqlite3_finalize(st);
    drisk_store_stats_free(out);
    return db_error(store, err, "summarizing carriers");
}

void drisk_store_stats_free(struct drisk_store_stats *stats)
{
    if (!stats)
        return;
    free(stats->carriers);
    stats->carriers = NULL;
    stats->n_carriers = 0;
}

/* ---- model registry ---- */

static char *dup_col(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return strdup(v ? (const char *)v : "");
}

static void read_model_row(sqlite3_stmt *st, struct drisk_model_row *r)
{
    r->id = sqlite3_column_int64(st, 0);
    drisk_store_copy_col(st, 1, r->target, sizeof r->target);
    drisk_store_copy_col(st, 2, r->algorithm, sizeof r->algorithm);
    r->created_at = sqlite3_column_int64(st, 3);
    r->active = sqlite3_column_int(st, 4);
    drisk_store_copy_col(st, 5, r->schema_hash, sizeof r->schema_hash);
    r->train_from = sqlite3_column_int64(st, 6);
    r->train_until = sqlite3_column_int64(st, 7);
    r->train_rows = sqlite3_column_int64(st, 8);
    r->valid_rows = sqlite3_column_int64(st, 9);
    r->shadow = sqlite3_column_int(st, 13);
}

/* metrics is column 10; schema and payload, when read, 11 and 12; shadow 13 */
#define MODEL_COLS "id, target, algorithm, created_at, active, schema_hash, train_from, " \
                   "train_until, train_rows, valid_rows, metrics"

/* Makes id the only active model of its target: two statements, so the one-active index
 * never sees two active rows. Inside the caller's transaction. */
/* Runs one statement with ?1 bound to id: 0 (*changes, when given, the rows it changed)
 * or -1. */
static int exec_id(struct drisk_store *store, const char *sql, int64_t id, int *changes)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (changes)
        *changes = sqlite3_changes(store->db);
    return r == SQLITE_DONE ? 0 : -1;
}

static int set_active(struct drisk_store *store, int64_t id)
{
    return exec_id(store, "UPDATE models SET active = 0 WHERE active = 1 AND target = (SELECT"
                   " target FROM models WHERE id = ?1)", id, NULL) ||
           exec_id(store, "UPDATE models SET active = 1, shadow = 0 WHERE id = ?1", id, NULL)
               ? -1 /* (a promoted shadow is no longer one) */
               : 0;
}

enum drisk_status drisk_store_model_add(struct drisk_store *store, const struct drisk_model_row *row,
                                        int activate, int64_t *id, struct drisk_error *err)
{
    static const char sql[] =
        "INSERT INTO models(target, algorithm, created_at, active, schema_hash, schema, train_from,"
        " train_until, train_rows, valid_rows, metrics, payload)"
        " VALUES (?1, ?2, strftime('%s','now'), 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    sqlite3_stmt *st = NULL;
    enum drisk_status rc;
    if ((rc = drisk_store_begin(store, err)))
        return rc;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, row->target, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->algorithm, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, row->schema_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, row->schema ? row->schema : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, row->train_from);
    sqlite3_bind_int64(st, 6, row->train_until);
    sqlite3_bind_int64(st, 7, row->train_rows);
    sqlite3_bind_int64(st, 8, row->valid_rows);
    sqlite3_bind_text(st, 9, row->metrics ? row->metrics : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 10, row->payload, row->payload_len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    st = NULL;
    *id = sqlite3_last_insert_rowid(store->db);
    int ok = 1;
    if (activate < 0) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(store->db, "SELECT count(*) FROM models WHERE target = ?1 AND active = 1",
                               -1, &q, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_bind_text(q, 1, row->target, -1, SQLITE_STATIC);
        activate = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0;
        sqlite3_finalize(q);
    }
    if (activate)
        ok = set_active(store, *id) == 0;
    if (!ok)
        goto fail;
    return drisk_store_commit(store, err);
fail:
    rc = db_error(store, err, "registering a model");
    sqlite3_finalize(st);
    drisk_store_rollback(store);
    return rc;
}

enum drisk_status drisk_store_model_get(struct drisk_store *store, int64_t id, const char *target,
                                        struct drisk_model_row *out, struct drisk_error *err)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    const char *sql = id ? "SELECT " MODEL_COLS ", schema, payload, shadow FROM models WHERE id = ?1"
                         : "SELECT " MODEL_COLS ", schema, payload, shadow FROM models WHERE"
                           " target = ?2 AND active = 1";
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_error(store, err, "reading a model");
    if (id)
        sqlite3_bind_int64(st, 1, id);
    else
        sqlite3_bind_text(st, 2, target ? target : "", -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (r != SQLITE_DONE)
            return db_error(store, err, "reading a model");
        if (id)
            return drisk_error_set(err, DRISK_ENOTFOUND, "there is no model %lld: see drisk models "
                                   "list", (long long)id);
        return drisk_error_set(err, DRISK_ENOTFOUND, "there is no active %s model: train one with "
                               "drisk train --target %s", target, target);
    }
    read_model_row(st, out);
    out->metrics = dup_col(st, 10);
    out->schema = dup_col(st, 11);
    out->payload_len = (size_t)sqlite3_column_bytes(st, 12);
    out->payload = malloc(out->payload_len ? out->payload_len : 1);
    if (out->payload && out->payload_len)
        memcpy(out->payload, sqlite3_column_blob(st, 12), out->payload_len);
    sqlite3_finalize(st);
    if (!out->metrics || !out->schema || !out->payload) {
        drisk_store_model_row_free(out);
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory reading a model");
    }
    return DRISK_OK;
}

void drisk_store_model_row_free(struct drisk_model_row *row)
{
    if (!row)
        return;
    free(row->metrics);
    free(row->schema);
    free(row->payload);
    row->metrics = row->schema = NULL;
    row->payload = NULL;
}

enum drisk_status drisk_store_model_list(struct drisk_store *store, drisk_model_row_fn fn,
                                         void *ctx, struct drisk_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, "SELECT " MODEL_COLS ", NULL, NULL, shadow FROM models"
                           " ORDER BY id DESC", -1, &st, NULL) != SQLITE_OK)
        return db_error(store, err, "listing models");
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct drisk_model_row row;
        memset(&row, 0, sizeof row);
        read_model_row(st, &row);
        row.metrics = (char *)sqlite3_column_text(st, 10);
        if (fn(&row, ctx))
            break;
    }
    sqlite3_finalize(st);
    return r == SQLITE_ROW || r == SQLITE_DONE ? DRISK_OK : db_error(store, err, "listing models");
}

/* Loads model id as the server and eval will: DRISK_EINVAL (saying why, and that what is
 * in force stays) for a model whose file or feature schema does not load. *target gets
 * its target. */
static enum drisk_status model_check(struct drisk_store *store, int64_t id, const char *verb,
                                     struct drisk_error *err)
{
    struct drisk_model_row row;
    enum drisk_status rc = drisk_store_model_get(store, id, NULL, &row, err);
    if (rc)
        return rc;
    /* load it as the server and eval will, before the store names it: a model that
     * cannot serve never becomes active */
    struct drisk_feature_schema schema;
    struct drisk_model *m = NULL;
    struct drisk_error why = { 0 };
    if (drisk_feature_schema_read(row.schema, &schema, &why) == DRISK_OK &&
        strcmp(schema.hash, row.schema_hash) != 0)
        drisk_error_set(&why, DRISK_ESCHEMA, "its feature schema text does not hash to %s",
                        row.schema_hash);
    else if (!why.msg[0] &&
             drisk_model_load(row.payload, row.payload_len, schema.hash, &m, &why) == DRISK_OK &&
             strcmp(drisk_target_name(m->meta.target), row.target) != 0)
        drisk_error_set(&why, DRISK_EINVAL, "its file predicts %s, the registry says %s",
                        drisk_target_name(m->meta.target), row.target);
    drisk_model_free(m);
    drisk_store_model_row_free(&row);
    if (why.msg[0])
        return drisk_error_set(err, DRISK_EINVAL, "model %lld cannot be %s: %s; the %s "
                               "model stays (retrain, or choose another)", (long long)id, verb,
                               why.msg, strcmp(verb, "activated") == 0 ? "active" : "shadow");
    return DRISK_OK;
}

enum drisk_status drisk_store_model_activate(struct drisk_store *store, int64_t id,
                                             struct drisk_error *err)
{
    enum drisk_status rc = model_check(store, id, "activated", err);
    if (rc)
        return rc;
    if ((rc = drisk_store_begin(store, err)))
        return rc;
    if (set_active(store, id)) {
        rc = db_error(store, err, "activating a model");
        drisk_store_rollback(store);
        return rc;
    }
    return drisk_store_commit(store, err);
}

enum drisk_status drisk_store_model_shadow(struct drisk_store *store, int64_t id, int on,
                                           struct drisk_error *err)
{
    enum drisk_status rc = on ? model_check(store, id, "shadowed", err) : DRISK_OK;
    if (rc || (rc = drisk_store_begin(store, err)))
        return rc;
    int changed = 0;
    if (on ? exec_id(store, "UPDATE models SET shadow = 0 WHERE shadow = 1 AND target = (SELECT"
                     " target FROM models WHERE id = ?1)", id, NULL) ||
                 exec_id(store, "UPDATE models SET shadow = 1 WHERE id = ?1 AND active = 0", id,
                         &changed)
           : exec_id(store, "UPDATE models SET shadow = 0 WHERE id = ?1", id, &changed))
        rc = db_error(store, err, "setting a shadow model");
    else if (on && changed == 0)
        rc = drisk_error_set(err, DRISK_EINVAL, "model %lld is its target's active model: a "
                             "shadow is scored beside the active one, so choose another",
                             (long long)id);
    else if (!on && changed == 0)
        rc = drisk_error_set(err, DRISK_ENOTFOUND, "there is no model %lld: see drisk models "
                             "list", (long long)id);
    if (rc) {
        drisk_store_rollback(store);
        return rc;
    }
    return drisk_store_commit(store, err);
}

enum drisk_status drisk_store_model_delete(struct drisk_store *store, int64_t id,
                                           struct drisk_error *err)
{
    int changed;
    if (exec_id(store, "DELETE FROM models WHERE id = ?1 AND active = 0 AND shadow = 0", id,
                &changed))
        return db_error(store, err, "deleting a model");
    if (changed == 0)
        return drisk_error_set(err, DRISK_EINVAL, "model %lld was not deleted: it does not exist "
                               "or is its target's active or shadow model", (long long)id);
    return DRISK_OK;
}

enum drisk_status drisk_store_lock(struct drisk_store *store, const char *name,
                                   struct drisk_error *err)
{
    const char *db = sqlite3_db_filename(store->db, "main");
    char path[4096];
    if (store->lock_fd >= 0 && strcmp(store->lock_name, name) != 0)
        return drisk_error_set(err, DRISK_EINVAL, "this connection holds the %s lock: one lock "
                               "per connection", store->lock_name);
    if (!db || !db[0] || store->lock_fd >= 0)
        return DRISK_OK; /* in memory: no other process can open it; or held already */
    if ((size_t)snprintf(path, sizeof path, "%s-%s.lock", db, name) >= sizeof path)
        return drisk_error_set(err, DRISK_EINVAL, "the database path is too long for its lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return drisk_error_set(err, DRISK_EIO, "cannot open the lock file %s: %s (check the "
                               "directory's permissions)", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return drisk_error_set(err, DRISK_EIO, "another process holds the %s lock of this "
                                   "database (%s): wait for it to finish, this run did nothing",
                                   name, path);
        return drisk_error_set(err, DRISK_EIO, "cannot lock %s: %s", path, strerror(e));
    }
    store->lock_fd = fd;
    snprintf(store->lock_name, sizeof store->lock_name, "%s", name);
    return DRISK_OK;
}

/* ---- API keys ---- */

#define KEY_COLS "k.id, coalesce(m.name, ''), k.admin, k.created_at, k.key_hash"

static void key_row_read(sqlite3_stmt *st, struct drisk_key_row *out)
{
    out->id = sqlite3_column_int64(st, 0);
    snprintf(out->merchant, sizeof out->merchant, "%s", (const char *)sqlite3_column_text(st, 1));
    out->admin = sqlite3_column_int(st, 2) != 0;
    out->created_at = sqlite3_column_int64(st, 3);
}

enum drisk_status drisk_store_key_add(struct drisk_store *store, const char *merchant, int admin,
                                      const unsigned char hash[32], int64_t now, int64_t *id,
                                      struct drisk_error *err)
{
    enum drisk_status rc;
    int64_t mid = 0;
    int has_merchant = merchant && merchant[0];
    if (!has_merchant && !admin)
        return drisk_error_set(err, DRISK_EINVAL, "a key needs a merchant unless it is an admin "
                               "key");
    if (has_merchant && strlen(merchant) >= DRISK_ID_MAX)
        return drisk_error_set(err, DRISK_EINVAL, "merchant id longer than %d bytes",
                               DRISK_ID_MAX - 1);
    if ((rc = drisk_store_begin(store, err)))
        return rc;
    if (has_merchant && (rc = drisk_store_merchant(store, merchant, &mid, err)))
        goto fail;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, "INSERT INTO api_keys(merchant_id, key_hash, admin, "
                           "created_at) VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL) != SQLITE_OK) {
        rc = db_error(store, err, "registering a key");
        goto fail;
    }
    if (has_merchant)
        sqlite3_bind_int64(st, 1, mid);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, admin ? 1 : 0);
    sqlite3_bind_int64(st, 4, now);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r == SQLITE_CONSTRAINT) {
        rc = drisk_error_set(err, DRISK_EINVAL, "this key is already registered");
        goto fail;
    }
    if (r != SQLITE_DONE) {
        rc = db_error(store, err, "registering a key");
        goto fail;
    }
    *id = sqlite3_last_insert_rowid(store->db);
    return drisk_store_commit(store, err);
fail:
    drisk_store_rollback(store);
    return rc;
}

enum drisk_status drisk_store_key_find(struct drisk_store *store, const unsigned char hash[32],
                                       struct drisk_key_row *out, struct drisk_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, "SELECT " KEY_COLS " FROM api_keys k LEFT JOIN merchants m"
                           " ON m.id = k.merchant_id WHERE k.key_hash = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return db_error(store, err, "looking up a key");
    sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
    int r = sqlite3_step(st);
    enum drisk_status rc = DRISK_OK;
    if (r == SQLITE_ROW && sqlite3_column_bytes(st, 4) == 32 &&
        drisk_equal_ct(sqlite3_column_blob(st, 4), hash, 32)) {
        key_row_read(st, out);
    } else if (r == SQLITE_ROW || r == SQLITE_DONE) {
        rc = drisk_error_set(err, DRISK_ENOTFOUND, "unknown API key");
    } else {
        rc = db_error(store, err, "looking up a key");
    }
    sqlite3_finalize(st);
    return rc;
}

enum drisk_status drisk_store_key_list(struct drisk_store *store,
                                       int (*fn)(const struct drisk_key_row *row, void *ctx),
                                       void *ctx, struct drisk_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, "SELECT " KEY_COLS " FROM api_keys k LEFT JOIN merchants m"
                           " ON m.id = k.merchant_id ORDER BY k.id", -1, &st, NULL) != SQLITE_OK)
        return db_error(store, err, "listing keys");
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct drisk_key_row row;
        key_row_read(st, &row);
        if (fn(&row, ctx))
            break;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return db_error(store, err, "listing keys");
    return DRISK_OK;
}

enum drisk_status drisk_store_key_revoke(struct drisk_store *store, int64_t id,
                                         struct drisk_error *err)
{
    int changed;
    if (exec_id(store, "DELETE FROM api_keys WHERE id = ?1", id, &changed))
        return db_error(store, err, "revoking a key");
    if (changed == 0)
        return drisk_error_set(err, DRISK_ENOTFOUND, "no key %lld", (long long)id);
    return DRISK_OK;
}
