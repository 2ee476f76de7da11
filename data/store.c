/* SQLite-backed store: opening and migrating, transactions, shipment upserts, scan
 * inserts, and the streaming shipment+scans iterator that training and evaluation read.
 * Statements are prepared once per connection and reset after each use. */
#include "data/store.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "data/schema.h"
#include "data/schema_pg.h"
#include "data/sql.h"
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
    /* an upsert, not a plain insert: two PostgreSQL connections may add the same new
     * merchant or location at once (SQLite's write lock serializes them) */
    [ST_MERCHANT_INSERT] = "INSERT INTO merchants(name) VALUES (?1)"
                           " ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id",
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
        "INSERT INTO shipments AS t (merchant_id, shipment_key, order_id, carrier, service, origin,"
        " destination, weight_kg, declared_value, created_at, promised_at, delivered_at, outcome,"
        " carrier_eta) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
        " ON CONFLICT(merchant_id, shipment_key) DO UPDATE"
        " SET carrier_eta = coalesce(excluded.carrier_eta, t.carrier_eta) RETURNING id",
    [ST_SCAN_INSERT] =
        "INSERT INTO scans(shipment_id, ts, event, location_id, reason, description)"
        " VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT DO NOTHING",
    [ST_LOCATION_FIND] = "SELECT id FROM locations WHERE code = ?1",
    [ST_LOCATION_INSERT] = "INSERT INTO locations(code) VALUES (?1)"
                           " ON CONFLICT(code) DO UPDATE SET code = excluded.code RETURNING id",
};

/* Location code -> id cache: real networks have thousands of facilities; beyond this many
 * codes, lookups go to SQLite. */
#define LOC_CACHE_MAX (1 << 16)

struct drisk_store {
    struct drisk_sql *db;
    struct drisk_sql_stmt *stmt[ST_COUNT];
    int in_txn;
    int bulk; /* in a drisk_store_begin_bulk transaction: foreign keys off */
    struct drisk_strmap *loc; /* location code -> id, NULL until first used */
    /* One-entry merchant cache: imports and the simulator use few merchants. */
    char merchant_name[DRISK_ID_MAX];
    int64_t merchant_id;
    struct drisk_sql_stmt *live[DRISK_STORE_LIVE_STMTS]; /* data/live.c's, prepared on first use */
    struct drisk_sql_stmt *by_id; /* drisk_store_iterate of one shipment, prepared on first use */
    struct drisk_sql_stmt *put_each_prep, *put_each; /* pg_put_scans_each's two statements,
                                                      * prepared on first use */
    int pg;              /* a PostgreSQL store (else SQLite) */
    int lock_fd;         /* drisk_store_lock's file, -1 when none */
    char lock_name[32];
};

struct drisk_sql *drisk_store_sql(struct drisk_store *store)
{
    return store->db;
}

struct drisk_sql_stmt **drisk_store_live_stmts(struct drisk_store *store)
{
    return store->live;
}

enum drisk_status drisk_store_fail(struct drisk_store *store, const char *what,
                                   struct drisk_error *err)
{
    return drisk_error_set(err, DRISK_EIO, "database error while %s: %s", what,
                           drisk_sql_errmsg(store->db));
}

struct drisk_sql_stmt *drisk_store_slot(struct drisk_store *store, int i, const char *sql,
                               struct drisk_error *err)
{
    struct drisk_sql_stmt **slot = &store->live[i];
    if (!*slot && drisk_sql_prepare(store->db, sql, DRISK_SQL_PERSISTENT, slot)) {
        drisk_store_fail(store, "preparing a statement", err);
        *slot = NULL;
        return NULL;
    }
    drisk_sql_clear(*slot);
    return *slot;
}

enum drisk_status drisk_store_run(struct drisk_store *store, struct drisk_sql_stmt *st, const char *what,
                                  struct drisk_error *err)
{
    int r = drisk_sql_step(st);
    drisk_sql_reset(st);
    return r == DRISK_SQL_DONE ? DRISK_OK : drisk_store_fail(store, what, err);
}


static enum drisk_status db_error(struct drisk_store *store, struct drisk_error *err,
                                  const char *what)
{
    return drisk_store_fail(store, what, err);
}

static enum drisk_status exec(struct drisk_store *store, const char *sql, const char *what,
                              struct drisk_error *err)
{
    if (drisk_sql_exec(store->db, sql))
        return drisk_error_set(err, DRISK_EIO, "database error while %s: %s", what,
                               drisk_sql_errmsg(store->db));
    return DRISK_OK;
}

int drisk_store_schema_version(void)
{
    return DRISK_SCHEMA_VERSION;
}

static int read_version(struct drisk_store *store, int *version)
{
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(store->db, "PRAGMA user_version", 0, &st))
        return -1;
    int r = drisk_sql_step(st);
    *version = r == DRISK_SQL_ROW ? drisk_sql_col_int(st, 0) : 0;
    drisk_sql_finalize(st);
    return r == DRISK_SQL_ROW ? 0 : -1;
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
            drisk_sql_exec(store->db, "ROLLBACK");
            return db_error(store, err, "reading the schema version");
        }
        if (version >= DRISK_SCHEMA_VERSION) { /* another process got there first */
            drisk_sql_exec(store->db, "ROLLBACK");
            continue;
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
        if ((rc = exec(store, drisk_migrations[version], "migrating the schema", err)) ||
            (rc = exec(store, sql, "migrating the schema", err)) ||
            (rc = exec(store, "COMMIT", "migrating the schema", err))) {
            drisk_sql_exec(store->db, "ROLLBACK");
            return rc;
        }
    }
}

_Static_assert(sizeof drisk_migrations_pg / sizeof drisk_migrations_pg[0] == DRISK_SCHEMA_VERSION,
               "every migration has its PostgreSQL twin in data/schema_pg.h");

/* migrate on PostgreSQL: one transaction under an advisory lock, so concurrent openers
 * (several serve nodes starting at once) apply each migration once; DDL is transactional,
 * so a failed migration leaves nothing behind. The version lives in drisk_schema. */
static enum drisk_status migrate_pg(struct drisk_store *store, struct drisk_error *err)
{
    enum drisk_status rc;
    struct drisk_sql_stmt *st = NULL;
    int version = 0;
    if ((rc = exec(store, "BEGIN; SELECT pg_advisory_xact_lock(hashtext('drisk migrations'));"
                   "CREATE TABLE IF NOT EXISTS drisk_schema (version INTEGER NOT NULL);",
                   "starting a migration", err)))
        goto fail;
    if (drisk_sql_prepare(store->db, "SELECT coalesce(max(version), 0) FROM drisk_schema", 0,
                          &st) ||
        drisk_sql_step(st) != DRISK_SQL_ROW) {
        rc = db_error(store, err, "reading the schema version");
        goto fail;
    }
    version = drisk_sql_col_int(st, 0);
    drisk_sql_finalize(st);
    st = NULL;
    if (version > DRISK_SCHEMA_VERSION) {
        rc = drisk_error_set(err, DRISK_ESCHEMA, "the database has schema version %d but this "
                             "drisk knows only up to %d: use a newer drisk build", version,
                             DRISK_SCHEMA_VERSION);
        goto fail;
    }
    for (; version < DRISK_SCHEMA_VERSION; version++) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM drisk_schema; INSERT INTO drisk_schema VALUES (%d)",
                 version + 1);
        if ((rc = exec(store, drisk_migrations_pg[version], "migrating the schema", err)) ||
            (rc = exec(store, sql, "migrating the schema", err)))
            goto fail;
    }
    if ((rc = exec(store, "COMMIT", "migrating the schema", err)))
        goto fail;
    return DRISK_OK;
fail:
    drisk_sql_finalize(st);
    drisk_sql_exec(store->db, "ROLLBACK");
    return rc;
}

int drisk_store_is_server(const char *target)
{
    return drisk_sql_is_pg_url(target);
}

enum drisk_status drisk_store_open(const char *path, struct drisk_store **out,
                                   struct drisk_error *err)
{
    enum drisk_status rc = DRISK_OK;
    struct drisk_store *store = calloc(1, sizeof *store);
    *out = NULL;
    if (!store)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory opening %s", path);
    store->lock_fd = -1;
    if ((rc = drisk_sql_open(path, &store->db, err)))
        goto out;
    store->pg = drisk_sql_kind(store->db) == DRISK_SQL_PG;
    if (store->pg) {
        if ((rc = migrate_pg(store, err)))
            goto out;
        goto prepare;
    }
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
prepare:
    for (int i = 0; i < ST_COUNT; i++) {
        if (drisk_sql_prepare(store->db, stmt_sql[i], DRISK_SQL_PERSISTENT, &store->stmt[i])) {
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
    struct drisk_sql_stmt *st = store->stmt[ST_LOCATION_FIND];
    drisk_sql_bind_text(st, 1, code);
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        *id = drisk_sql_col_int64(st, 0);
    drisk_sql_reset(st);
    if (r == DRISK_SQL_DONE && add) {
        st = store->stmt[ST_LOCATION_INSERT];
        drisk_sql_bind_text(st, 1, code);
        r = drisk_sql_step(st);
        if (r == DRISK_SQL_ROW)
            *id = drisk_sql_col_int64(st, 0);
        drisk_sql_reset(st);
        if (r != DRISK_SQL_ROW)
            return db_error(store, err, "adding a location");
    } else if (r != DRISK_SQL_ROW && r != DRISK_SQL_DONE) {
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
        drisk_sql_exec(store->db, "ROLLBACK");
    /* PostgreSQL releases a session's locks when it notices the connection is gone, a
     * moment after it closes: release them now, so the next holder finds them free */
    if (store->pg && store->lock_name[0])
        drisk_sql_exec(store->db, "SELECT pg_advisory_unlock_all()");
    if (store->db)
        drisk_sql_ending(store->db);
    for (int i = 0; i < ST_COUNT; i++)
        drisk_sql_finalize(store->stmt[i]);
    for (int i = 0; i < DRISK_STORE_LIVE_STMTS; i++)
        drisk_sql_finalize(store->live[i]);
    drisk_sql_finalize(store->by_id);
    drisk_sql_finalize(store->put_each_prep);
    drisk_sql_finalize(store->put_each);
    drisk_sql_close(store->db);
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

enum drisk_status drisk_store_begin_snapshot(struct drisk_store *store, struct drisk_error *err)
{
    enum drisk_status rc = exec(store, store->pg ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                                 : "BEGIN DEFERRED",
                                "starting a read transaction", err);
    if (!rc)
        store->in_txn = 1;
    return rc;
}

enum drisk_status drisk_store_begin_bulk(struct drisk_store *store, struct drisk_error *err)
{
    if (store->pg) /* PostgreSQL checks references in bulk: nothing to turn off */
        return drisk_store_begin(store, err);
    /* foreign_keys can only change outside a transaction. */
    enum drisk_status rc = exec(store, "PRAGMA foreign_keys=OFF", "preparing a bulk load", err);
    if (!rc && (rc = drisk_store_begin(store, err)) != DRISK_OK)
        drisk_sql_exec(store->db, "PRAGMA foreign_keys=ON");
    store->bulk = !rc;
    return rc;
}

static void end_bulk(struct drisk_store *store)
{
    if (store->bulk)
        drisk_sql_exec(store->db, "PRAGMA foreign_keys=ON");
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
        drisk_sql_exec(store->db, "ROLLBACK");
    store->in_txn = 0;
    end_bulk(store);
    /* cached merchant and location rows may have been rolled back */
    store->merchant_name[0] = '\0';
    if (store->loc)
        drisk_strmap_clear(store->loc);
}

void drisk_store_set_synchronous(struct drisk_store *store, int level)
{
    if (!store->pg)
        drisk_sql_exec(store->db, level >= 2 ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

void drisk_store_set_autocheckpoint(struct drisk_store *store, int on)
{
    if (!store->pg)
        drisk_sql_exec(store->db, on ? "PRAGMA wal_autocheckpoint=1000"
                                     : "PRAGMA wal_autocheckpoint=0");
}

void drisk_store_set_mmap(struct drisk_store *store, int64_t bytes)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA mmap_size=%lld", (long long)bytes);
    if (!store->pg)
        drisk_sql_exec(store->db, sql);
}

void drisk_store_set_cache_bytes(struct drisk_store *store, int64_t bytes)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size=%lld", -(long long)(bytes / 1024));
    if (!store->pg)
        drisk_sql_exec(store->db, sql);
}

enum drisk_status drisk_store_merchant(struct drisk_store *store, const char *name, int64_t *id,
                                       struct drisk_error *err)
{
    if (store->merchant_name[0] && strcmp(store->merchant_name, name) == 0) {
        *id = store->merchant_id;
        return DRISK_OK;
    }
    struct drisk_sql_stmt *st = store->stmt[ST_MERCHANT_FIND];
    drisk_sql_bind_text(st, 1, name);
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW) {
        *id = drisk_sql_col_int64(st, 0);
        drisk_sql_reset(st);
    } else {
        drisk_sql_reset(st);
        if (r != DRISK_SQL_DONE)
            return db_error(store, err, "looking up a merchant");
        st = store->stmt[ST_MERCHANT_INSERT];
        drisk_sql_bind_text(st, 1, name);
        r = drisk_sql_step(st);
        if (r == DRISK_SQL_ROW)
            *id = drisk_sql_col_int64(st, 0);
        drisk_sql_reset(st);
        if (r != DRISK_SQL_ROW)
            return db_error(store, err, "creating a merchant");
    }
    snprintf(store->merchant_name, sizeof store->merchant_name, "%s", name);
    store->merchant_id = *id;
    return DRISK_OK;
}

static void bind_opt_text(struct drisk_sql_stmt *st, int i, const char *s)
{
    if (s[0])
        drisk_sql_bind_text(st, i, s);
    else
        drisk_sql_bind_null(st, i);
}

static void bind_opt_double(struct drisk_sql_stmt *st, int i, double v)
{
    if (isnan(v))
        drisk_sql_bind_null(st, i);
    else
        drisk_sql_bind_double(st, i, v);
}

static void bind_shipment(struct drisk_sql_stmt *st, int64_t mid, const struct drisk_shipment *sh)
{
    drisk_sql_bind_int64(st, 1, mid);
    drisk_sql_bind_text(st, 2, sh->shipment_id);
    bind_opt_text(st, 3, sh->order_id);
    drisk_sql_bind_text(st, 4, sh->carrier);
    drisk_sql_bind_text(st, 5, sh->service);
    drisk_sql_bind_text(st, 6, sh->origin);
    drisk_sql_bind_text(st, 7, sh->destination);
    bind_opt_double(st, 8, sh->weight_kg);
    bind_opt_double(st, 9, sh->declared_value);
    drisk_sql_bind_int64(st, 10, sh->created_at);
    drisk_sql_bind_int64(st, 11, sh->promised_at);
    if (sh->delivered_at == DRISK_TS_NONE)
        drisk_sql_bind_null(st, 12);
    else
        drisk_sql_bind_int64(st, 12, sh->delivered_at);
    bind_opt_text(st, 13, drisk_outcome_name(sh->outcome));
    if (sh->carrier_eta > 0) /* none is DRISK_TS_NONE, or 0 where a caller zeroed the struct */
        drisk_sql_bind_int64(st, 14, sh->carrier_eta);
    else
        drisk_sql_bind_null(st, 14);
}

static int text_eq(struct drisk_sql_stmt *st, int col, const char *s)
{
    const char *v = drisk_sql_col_text(st, col);
    return v ? strcmp((const char *)v, s) == 0 : s[0] == '\0';
}

static int double_eq(struct drisk_sql_stmt *st, int col, double v)
{
    if (drisk_sql_col_null(st, col))
        return isnan(v);
    return !isnan(v) && drisk_sql_col_double(st, col) == v;
}

static int ts_eq(struct drisk_sql_stmt *st, int col, int64_t v)
{
    if (drisk_sql_col_null(st, col))
        return v == DRISK_TS_NONE;
    return drisk_sql_col_int64(st, col) == v;
}

/* 1 when the stored row (ST_SHIPMENT_FIND_FULL's current row) equals sh. */
static int shipment_unchanged(struct drisk_sql_stmt *st, const struct drisk_shipment *sh)
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
    struct drisk_sql_stmt *st = store->stmt[ST_SHIPMENT_FIND_FULL];
    drisk_sql_bind_int64(st, 1, mid);
    drisk_sql_bind_text(st, 2, sh->shipment_id);
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW) {
        *id = drisk_sql_col_int64(st, 0);
        int same = shipment_unchanged(st, sh);
        drisk_sql_reset(st);
        if (same) {
            *result = DRISK_UPSERT_UNCHANGED;
            return DRISK_OK;
        }
        st = store->stmt[ST_SHIPMENT_UPDATE];
        bind_shipment(st, mid, sh);
        r = drisk_sql_step(st);
        drisk_sql_reset(st);
        if (r != DRISK_SQL_DONE)
            return db_error(store, err, "updating a shipment");
        *result = DRISK_UPSERT_UPDATED;
        return DRISK_OK;
    }
    drisk_sql_reset(st);
    if (r != DRISK_SQL_DONE)
        return db_error(store, err, "looking up a shipment");
    st = store->stmt[ST_SHIPMENT_INSERT];
    bind_shipment(st, mid, sh);
    r = drisk_sql_step(st);
    drisk_sql_reset(st);
    if (r != DRISK_SQL_DONE)
        return db_error(store, err, "inserting a shipment");
    *id = drisk_sql_last_id(store->db);
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
    struct drisk_sql_stmt *st = store->stmt[ST_SHIPMENT_ENSURE];
    bind_shipment(st, mid, sh);
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        *id = drisk_sql_col_int64(st, 0);
    drisk_sql_reset(st);
    return r == DRISK_SQL_ROW ? DRISK_OK : db_error(store, err, "writing a shipment");
}

enum drisk_status drisk_store_find_shipment(struct drisk_store *store, const char *merchant,
                                            const char *shipment_id, int64_t *id,
                                            struct drisk_error *err)
{
    struct drisk_sql_stmt *st;
    if (merchant) {
        st = store->stmt[ST_SHIPMENT_FIND];
        drisk_sql_bind_text(st, 1, merchant);
        drisk_sql_bind_text(st, 2, shipment_id);
    } else {
        st = store->stmt[ST_SHIPMENT_FIND_ANY];
        drisk_sql_bind_text(st, 1, shipment_id);
    }
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW) {
        *id = drisk_sql_col_int64(st, 0);
        if (!merchant && drisk_sql_step(st) == DRISK_SQL_ROW) {
            drisk_sql_reset(st);
            return drisk_error_set(err, DRISK_EINVAL,
                                   "shipment_id is used by several merchants: give merchant_id");
        }
    }
    drisk_sql_reset(st);
    if (r == DRISK_SQL_ROW)
        return DRISK_OK;
    if (r == DRISK_SQL_DONE)
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
    struct drisk_sql_stmt *st = store->stmt[ST_SCAN_INSERT];
    drisk_sql_bind_int64(st, 1, shipment);
    drisk_sql_bind_int64(st, 2, scan->ts);
    drisk_sql_bind_int(st, 3, scan->event);
    drisk_sql_bind_int64(st, 4, loc);
    if (scan->reason)
        drisk_sql_bind_int(st, 5, scan->reason);
    else
        drisk_sql_bind_null(st, 5);
    bind_opt_text(st, 6, scan->description);
    int r = drisk_sql_step(st);
    drisk_sql_reset(st);
    if (r != DRISK_SQL_DONE)
        return db_error(store, err, "inserting a scan");
    *inserted = drisk_sql_changes(store->db) > 0;
    return DRISK_OK;
}

/* ---- bulk loads ---- */

/* The batch's rows go to a temporary staging table with COPY; one statement per batch
 * then judges and upserts them. */
static enum drisk_status pg_put_shipments(struct drisk_store *store,
                                          const struct drisk_shipment *const *sh, size_t n,
                                          enum drisk_upsert *result, struct drisk_error *err)
{
#define SHIP_FIELDS "order_id, carrier, service, origin, destination, weight_kg, declared_value," \
                    " created_at, promised_at, delivered_at, outcome"
    /* each row's verdict from the stored row (0 new, 1 changed, 2 the same), then one
     * upsert of the new and changed: no join against the upsert's own output, which
     * PostgreSQL could only do as a nested loop over the whole batch */
    static const char upsert[] =
        "WITH v AS MATERIALIZED (SELECT g.*, m.id AS mid, CASE WHEN t.id IS NULL THEN 0"
        " WHEN (t.order_id, t.carrier, t.service, t.origin, t.destination, t.weight_kg,"
        " t.declared_value, t.created_at, t.promised_at, t.delivered_at, t.outcome,"
        " t.carrier_eta) IS DISTINCT FROM (g.order_id, g.carrier, g.service, g.origin,"
        " g.destination, g.weight_kg, g.declared_value, g.created_at, g.promised_at,"
        " g.delivered_at, g.outcome, coalesce(g.carrier_eta, t.carrier_eta)) THEN 1 ELSE 2 END"
        " AS verdict FROM drisk_stage_shipments g JOIN merchants m ON m.name = g.merchant"
        " LEFT JOIN shipments t ON t.merchant_id = m.id AND t.shipment_key = g.shipment_key),"
        " up AS (INSERT INTO shipments AS t (merchant_id, shipment_key, " SHIP_FIELDS
        ", carrier_eta) SELECT mid, shipment_key, " SHIP_FIELDS ", carrier_eta FROM v"
        " WHERE verdict < 2 ORDER BY n" /* row ids in file order, as SQLite gives them */
        " ON CONFLICT (merchant_id, shipment_key) DO UPDATE SET order_id = excluded.order_id,"
        " carrier = excluded.carrier, service = excluded.service, origin = excluded.origin,"
        " destination = excluded.destination, weight_kg = excluded.weight_kg,"
        " declared_value = excluded.declared_value, created_at = excluded.created_at,"
        " promised_at = excluded.promised_at, delivered_at = excluded.delivered_at,"
        " outcome = excluded.outcome, carrier_eta = coalesce(excluded.carrier_eta, t.carrier_eta))"
        " SELECT n, verdict FROM v";
    struct drisk_sql_copy c = { 0 };
    struct drisk_sql_stmt *st = NULL;
    enum drisk_status rc = DRISK_OK;
    for (size_t i = 0; i < n; i++) {
        const struct drisk_shipment *s = sh[i];
        drisk_sql_copy_int64(&c, (int64_t)i);
        drisk_sql_copy_text(&c, s->merchant);
        drisk_sql_copy_text(&c, s->shipment_id);
        drisk_sql_copy_text(&c, s->order_id[0] ? s->order_id : NULL);
        drisk_sql_copy_text(&c, s->carrier);
        drisk_sql_copy_text(&c, s->service);
        drisk_sql_copy_text(&c, s->origin);
        drisk_sql_copy_text(&c, s->destination);
        drisk_sql_copy_double(&c, s->weight_kg);
        drisk_sql_copy_double(&c, s->declared_value);
        drisk_sql_copy_int64(&c, s->created_at);
        drisk_sql_copy_int64(&c, s->promised_at);
        if (s->delivered_at == DRISK_TS_NONE)
            drisk_sql_copy_text(&c, NULL);
        else
            drisk_sql_copy_int64(&c, s->delivered_at);
        const char *oc = drisk_outcome_name(s->outcome);
        drisk_sql_copy_text(&c, oc[0] ? oc : NULL);
        if (s->carrier_eta > 0)
            drisk_sql_copy_int64(&c, s->carrier_eta);
        else
            drisk_sql_copy_text(&c, NULL);
        drisk_sql_copy_row(&c);
    }
    if (drisk_sql_exec(store->db,
                       "CREATE TEMP TABLE IF NOT EXISTS drisk_stage_shipments (n INTEGER,"
                       " merchant TEXT, shipment_key TEXT, order_id TEXT, carrier TEXT,"
                       " service TEXT, origin TEXT, destination TEXT, weight_kg DOUBLE PRECISION,"
                       " declared_value DOUBLE PRECISION, created_at BIGINT, promised_at BIGINT,"
                       " delivered_at BIGINT, outcome TEXT, carrier_eta BIGINT);"
                       "TRUNCATE drisk_stage_shipments") ||
        drisk_sql_copy_in(store->db, "COPY drisk_stage_shipments FROM STDIN", &c) ||
        drisk_sql_exec(store->db, "ANALYZE drisk_stage_shipments") ||
        drisk_sql_exec(store->db, "INSERT INTO merchants(name) SELECT DISTINCT merchant"
                       " FROM drisk_stage_shipments ON CONFLICT DO NOTHING") ||
        drisk_sql_prepare(store->db, upsert, 0, &st)) {
        rc = db_error(store, err, "loading shipments");
        goto out;
    }
    size_t seen = 0;
    int r;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        int64_t i = drisk_sql_col_int64(st, 0);
        if (i >= 0 && (size_t)i < n) {
            result[i] = (enum drisk_upsert)drisk_sql_col_int(st, 1);
            seen++;
        }
    }
    if (r != DRISK_SQL_DONE || seen != n)
        rc = r != DRISK_SQL_DONE ? db_error(store, err, "loading shipments")
                                 : drisk_error_set(err, DRISK_EIO, "loading shipments: %zu of "
                                                   "%zu rows came back", seen, n);
out:
    drisk_sql_finalize(st);
    drisk_sql_copy_free(&c);
    return rc;
#undef SHIP_FIELDS
}

enum drisk_status drisk_store_put_shipments(struct drisk_store *store,
                                            const struct drisk_shipment *const *sh, size_t n,
                                            enum drisk_upsert *result, struct drisk_error *err)
{
    if (store->pg) {
        /* one upsert cannot touch a row twice: a shipment repeated in the batch starts a
         * new statement */
        struct drisk_strmap *seen = drisk_strmap_create(n + 1);
        enum drisk_status rc = seen ? DRISK_OK
                                    : drisk_error_set(err, DRISK_ENOMEM, "out of memory "
                                                      "loading shipments");
        size_t from = 0;
        for (size_t i = 0; i < n && !rc; i++) {
            char key[2 * DRISK_ID_MAX + 2];
            int64_t v;
            snprintf(key, sizeof key, "%s\x1f%s", sh[i]->merchant, sh[i]->shipment_id);
            if (drisk_strmap_find(seen, key, &v)) {
                rc = pg_put_shipments(store, sh + from, i - from, result + from, err);
                from = i;
                drisk_strmap_clear(seen);
            }
            if (!rc && drisk_strmap_put(seen, key, (int64_t)i))
                rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory loading shipments");
        }
        if (!rc && n > from)
            rc = pg_put_shipments(store, sh + from, n - from, result + from, err);
        drisk_strmap_free(seen);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t id;
        enum drisk_status rc = drisk_store_upsert_shipment(store, sh[i], &id, &result[i], err);
        if (rc)
            return rc;
    }
    return DRISK_OK;
}

/* Scans through a staging table: each distinct shipment of the batch is resolved once
 * (by merchant and key, or by key alone when it names one shipment), new locations are
 * added, and one INSERT ... ON CONFLICT DO NOTHING writes the rows whose shipment was
 * found (its row count: the new ones); a second statement lists the rows that were not.
 * The months the batch covers get their partitions first. */
static enum drisk_status pg_put_scans(struct drisk_store *store,
                                      const struct drisk_scan_put *rows, size_t n, int *result,
                                      size_t *inserted, struct drisk_error *err)
{
    /* LATERAL: an index probe per distinct shipment, whatever the planner believes of the
     * table's size */
    static const char resolve[] =
        "CREATE TEMP TABLE drisk_stage_keys ON COMMIT DROP AS"
        " SELECT g.merchant, g.shipment_key, x.sid"
        " FROM (SELECT DISTINCT merchant, shipment_key FROM drisk_stage_scans) g,"
        " LATERAL (SELECT CASE WHEN g.merchant <> '' THEN min(s.id) FILTER"
        " (WHERE m.name = g.merchant) WHEN count(s.id) = 1 THEN min(s.id) ELSE -count(s.id) END"
        " AS sid FROM shipments s JOIN merchants m ON m.id = s.merchant_id"
        " WHERE s.shipment_key = g.shipment_key) x";
    static const char write[] =
        "INSERT INTO scans(shipment_id, ts, event, location_id, reason, description)"
        " SELECT k.sid, g.ts, g.event, coalesce(l.id, 0), g.reason, g.description"
        " FROM drisk_stage_scans g JOIN drisk_stage_keys k ON k.merchant = g.merchant"
        " AND k.shipment_key = g.shipment_key LEFT JOIN locations l ON l.code = g.location"
        " WHERE k.sid > 0 ON CONFLICT DO NOTHING";
    static const char refused[] =
        "SELECT g.n, CASE WHEN k.sid < 0 THEN 2 ELSE 1 END FROM drisk_stage_scans g"
        " JOIN drisk_stage_keys k ON k.merchant = g.merchant AND k.shipment_key = g.shipment_key"
        " WHERE k.sid IS NULL OR k.sid <= 0";
    struct drisk_sql_copy c = { 0 };
    struct drisk_sql_stmt *st = NULL;
    enum drisk_status rc = DRISK_OK;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        const struct drisk_scan *sc = rows[i].scan;
        drisk_sql_copy_int64(&c, (int64_t)i);
        drisk_sql_copy_text(&c, rows[i].merchant ? rows[i].merchant : "");
        drisk_sql_copy_text(&c, rows[i].shipment_id);
        drisk_sql_copy_int64(&c, sc->ts);
        drisk_sql_copy_int64(&c, sc->event);
        drisk_sql_copy_text(&c, sc->location);
        if (sc->reason)
            drisk_sql_copy_int64(&c, sc->reason);
        else
            drisk_sql_copy_text(&c, NULL);
        drisk_sql_copy_text(&c, sc->description[0] ? sc->description : NULL);
        drisk_sql_copy_row(&c);
        lo = sc->ts < lo ? sc->ts : lo;
        hi = sc->ts > hi ? sc->ts : hi;
        result[i] = DRISK_SCAN_PUT_STORED;
    }
    char parts[96];
    snprintf(parts, sizeof parts, "SELECT drisk_scan_partitions(%lld, %lld)", (long long)lo,
             (long long)hi);
    *inserted = 0;
    if (drisk_sql_exec(store->db,
                       "CREATE TEMP TABLE IF NOT EXISTS drisk_stage_scans (n INTEGER,"
                       " merchant TEXT, shipment_key TEXT, ts BIGINT, event INTEGER,"
                       " location TEXT, reason INTEGER, description TEXT);"
                       "TRUNCATE drisk_stage_scans; DROP TABLE IF EXISTS drisk_stage_keys") ||
        drisk_sql_copy_in(store->db, "COPY drisk_stage_scans FROM STDIN", &c) ||
        drisk_sql_exec(store->db, parts) ||
        drisk_sql_exec(store->db, "INSERT INTO locations(code) SELECT DISTINCT location"
                       " FROM drisk_stage_scans WHERE location <> '' ON CONFLICT DO NOTHING") ||
        drisk_sql_exec(store->db, resolve) || drisk_sql_exec(store->db, write)) {
        rc = db_error(store, err, "loading scans");
        goto out;
    }
    *inserted = (size_t)drisk_sql_changes(store->db);
    if (drisk_sql_prepare(store->db, refused, 0, &st)) {
        rc = db_error(store, err, "loading scans");
        goto out;
    }
    int r;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        int64_t i = drisk_sql_col_int64(st, 0);
        if (i >= 0 && (size_t)i < n)
            result[i] = drisk_sql_col_int(st, 1);
    }
    if (r != DRISK_SQL_DONE)
        rc = db_error(store, err, "loading scans");
out:
    drisk_sql_finalize(st);
    drisk_sql_copy_free(&c);
    return rc;
}

/* s as a JSON string literal (quotes, backslashes and control characters escaped). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* The rows of a request's JSON array (pg_put_scans_each). */
#define PG_REQ_ROWS                                                                        \
    "g AS (SELECT * FROM jsonb_to_recordset(CAST(?1 AS JSONB)) AS x(n INTEGER,"            \
    " merchant TEXT, shipment_key TEXT, ts BIGINT, event INTEGER, location TEXT,"         \
    " reason INTEGER, description TEXT))"

/* A request's scans on PostgreSQL in two round trips, the rows as one JSON array. The
 * first statement adds the new locations and the months' partitions; it commits nothing,
 * but a location another connection added meanwhile is waited for, so the second
 * statement (a new snapshot) sees every location. The second resolves the shipments,
 * inserts the new scans and returns each row's shipment (kind 0) and, for each inserted
 * key, the first row that carried it (kind 1: that row is fresh, a later repeat not). */
static enum drisk_status pg_put_scans_each(struct drisk_store *store,
                                           const struct drisk_scan_put *rows, size_t n,
                                           int *result, struct drisk_scan_put_out *out,
                                           size_t *inserted, struct drisk_error *err)
{
    static const char prep[] =
        "WITH " PG_REQ_ROWS ", nl AS (INSERT INTO locations(code) SELECT DISTINCT location"
        " FROM g WHERE location <> '' ON CONFLICT DO NOTHING)"
        " SELECT drisk_scan_partitions(?2, ?3)";
    static const char put[] =
        "WITH " PG_REQ_ROWS ","
        " k AS (SELECT d.merchant, d.shipment_key, x.sid"
        " FROM (SELECT DISTINCT merchant, shipment_key FROM g) d,"
        " LATERAL (SELECT min(s.id) AS sid FROM shipments s JOIN merchants m ON m.id = s.merchant_id"
        " WHERE s.shipment_key = d.shipment_key AND m.name = d.merchant) x),"
        " r AS (SELECT g.n, k.sid, coalesce(l.id, 0) AS lid, g.ts, g.event, g.reason,"
        " g.description FROM g JOIN k ON k.merchant = g.merchant AND k.shipment_key = g.shipment_key"
        " LEFT JOIN locations l ON l.code = g.location),"
        " w AS (INSERT INTO scans(shipment_id, ts, event, location_id, reason, description)"
        " SELECT sid, ts, event, lid, reason, description FROM r WHERE sid IS NOT NULL"
        " ON CONFLICT DO NOTHING RETURNING shipment_id, ts, event, location_id)"
        " SELECT 0, n, coalesce(sid, 0) FROM r"
        " UNION ALL SELECT 1, min(r.n), 0 FROM w JOIN r ON r.sid = w.shipment_id"
        " AND r.ts = w.ts AND r.event = w.event AND r.lid = w.location_id"
        " GROUP BY w.shipment_id, w.ts, w.event, w.location_id";
    enum drisk_status rc = DRISK_OK;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    char *json = NULL;
    size_t json_len = 0;
    FILE *f = open_memstream(&json, &json_len);
    if (!f)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory storing scans");
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        const struct drisk_scan *sc = rows[i].scan;
        fprintf(f, "%s{\"n\":%zu,\"merchant\":", i ? "," : "", i);
        json_str(f, rows[i].merchant);
        fputs(",\"shipment_key\":", f);
        json_str(f, rows[i].shipment_id);
        fprintf(f, ",\"ts\":%lld,\"event\":%d,\"location\":", (long long)sc->ts, sc->event);
        json_str(f, sc->location);
        if (sc->reason)
            fprintf(f, ",\"reason\":%d", sc->reason);
        if (sc->description[0]) {
            fputs(",\"description\":", f);
            json_str(f, sc->description);
        }
        fputc('}', f);
        lo = sc->ts < lo ? sc->ts : lo;
        hi = sc->ts > hi ? sc->ts : hi;
        result[i] = DRISK_SCAN_PUT_NO_SHIPMENT;
        out[i] = (struct drisk_scan_put_out){ 0, 0 };
    }
    fputc(']', f);
    int bad = ferror(f);
    if (fclose(f) || bad || !json) {
        free(json);
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory storing scans");
    }
    *inserted = 0;
    struct drisk_sql_stmt **slot[2] = { &store->put_each_prep, &store->put_each };
    const char *sqls[2] = { prep, put };
    for (int q = 0; q < 2 && !rc; q++) {
        if (!*slot[q] && drisk_sql_prepare(store->db, sqls[q], DRISK_SQL_PERSISTENT, slot[q])) {
            *slot[q] = NULL;
            rc = db_error(store, err, "storing scans");
            break;
        }
        struct drisk_sql_stmt *st = *slot[q];
        drisk_sql_clear(st);
        drisk_sql_bind_text(st, 1, json);
        if (q == 0) {
            drisk_sql_bind_int64(st, 2, lo);
            drisk_sql_bind_int64(st, 3, hi);
        }
        int r;
        while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
            int64_t i = q ? drisk_sql_col_int64(st, 1) : -1;
            if (i < 0 || (size_t)i >= n)
                continue;
            if (drisk_sql_col_int(st, 0) == 1) { /* the first row of an inserted key */
                out[i].fresh = 1;
                ++*inserted;
            } else if (drisk_sql_col_int64(st, 2) > 0) {
                result[i] = DRISK_SCAN_PUT_STORED;
                out[i].shipment = drisk_sql_col_int64(st, 2);
            }
        }
        drisk_sql_reset(st);
        if (r != DRISK_SQL_DONE)
            rc = db_error(store, err, "storing scans");
    }
    free(json);
    return rc;
}

/* Row by row (SQLite, and PostgreSQL's small batches): a lookup for each run of one
 * shipment's rows, an insert for each row. out may be NULL. */
static enum drisk_status put_scans_rows(struct drisk_store *store,
                                        const struct drisk_scan_put *rows, size_t n, int *result,
                                        struct drisk_scan_put_out *out, size_t *inserted,
                                        struct drisk_error *err)
{
    const char *last_merchant = NULL, *last_id = NULL;
    int64_t row = 0;
    enum drisk_status found = DRISK_OK;
    *inserted = 0;
    for (size_t i = 0; i < n; i++) {
        const char *m = rows[i].merchant ? rows[i].merchant : "";
        if (out)
            out[i] = (struct drisk_scan_put_out){ 0, 0 };
        if (!last_id || strcmp(last_id, rows[i].shipment_id) != 0 || strcmp(last_merchant, m) != 0) {
            struct drisk_error ferr;
            found = drisk_store_find_shipment(store, m[0] ? m : NULL, rows[i].shipment_id, &row,
                                              &ferr);
            if (found && found != DRISK_ENOTFOUND && found != DRISK_EINVAL)
                return drisk_error_set(err, found, "%s", ferr.msg);
            last_merchant = m;
            last_id = rows[i].shipment_id;
        }
        if (found) {
            result[i] = found == DRISK_EINVAL ? DRISK_SCAN_PUT_AMBIGUOUS : DRISK_SCAN_PUT_NO_SHIPMENT;
            continue;
        }
        int ins;
        enum drisk_status rc = drisk_store_insert_scan(store, row, rows[i].scan, &ins, err);
        if (rc)
            return rc;
        result[i] = DRISK_SCAN_PUT_STORED;
        if (out)
            out[i] = (struct drisk_scan_put_out){ row, ins != 0 };
        *inserted += ins != 0;
    }
    return DRISK_OK;
}

/* Below this many rows a batch costs PostgreSQL more round trips than the rows do. */
#define PG_BATCH_MIN 4

enum drisk_status drisk_store_put_scans_each(struct drisk_store *store,
                                             const struct drisk_scan_put *rows, size_t n,
                                             int *result, struct drisk_scan_put_out *out,
                                             size_t *inserted, struct drisk_error *err)
{
    int all_named = 1; /* the batch statement resolves by merchant only */
    for (size_t i = 0; i < n && all_named; i++)
        all_named = rows[i].merchant && rows[i].merchant[0];
    if (store->pg && n >= PG_BATCH_MIN && all_named)
        return pg_put_scans_each(store, rows, n, result, out, inserted, err);
    return put_scans_rows(store, rows, n, result, out, inserted, err);
}

enum drisk_status drisk_store_put_scans(struct drisk_store *store,
                                        const struct drisk_scan_put *rows, size_t n,
                                        int *result, size_t *inserted, struct drisk_error *err)
{
    *inserted = 0;
    if (store->pg)
        return n ? pg_put_scans(store, rows, n, result, inserted, err) : DRISK_OK;
    return put_scans_rows(store, rows, n, result, NULL, inserted, err);
}

void drisk_store_copy_col(struct drisk_sql_stmt *st, int col, char *dst, size_t cap)
{
    const char *v = drisk_sql_col_text(st, col);
    size_t n = v ? (size_t)drisk_sql_col_bytes(st, col) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, v, n);
    dst[n] = '\0';
}

void drisk_store_read_shipment(struct drisk_sql_stmt *st, struct drisk_shipment *sh)
{
    sh->id = drisk_sql_col_int64(st, 0);
    drisk_store_copy_col(st, 1, sh->merchant, sizeof sh->merchant);
    drisk_store_copy_col(st, 2, sh->shipment_id, sizeof sh->shipment_id);
    drisk_store_copy_col(st, 3, sh->order_id, sizeof sh->order_id);
    drisk_store_copy_col(st, 4, sh->carrier, sizeof sh->carrier);
    drisk_store_copy_col(st, 5, sh->service, sizeof sh->service);
    drisk_store_copy_col(st, 6, sh->origin, sizeof sh->origin);
    drisk_store_copy_col(st, 7, sh->destination, sizeof sh->destination);
    sh->weight_kg = drisk_sql_col_null(st, 8) ? NAN : drisk_sql_col_double(st, 8);
    sh->declared_value =
        drisk_sql_col_null(st, 9) ? NAN : drisk_sql_col_double(st, 9);
    sh->created_at = drisk_sql_col_int64(st, 10);
    sh->promised_at = drisk_sql_col_int64(st, 11);
    sh->delivered_at =
        drisk_sql_col_null(st, 12) ? DRISK_TS_NONE : drisk_sql_col_int64(st, 12);
    const char *oc = drisk_sql_col_text(st, 13);
    sh->outcome = oc ? drisk_outcome_parse((const char *)oc, strlen((const char *)oc)) : 0;
    if (sh->outcome < 0)
        sh->outcome = 0;
    sh->carrier_eta =
        drisk_sql_col_null(st, 14) ? DRISK_TS_NONE : drisk_sql_col_int64(st, 14);
}

enum drisk_status drisk_store_iterate(struct drisk_store *store,
                                      const struct drisk_store_filter *filter,
                                      drisk_shipment_fn fn, void *ctx, struct drisk_error *err)
{
    /* One streaming join: the shipments_by_created index gives the shipment order and the
     * scans primary key gives each shipment's scans in time order, so SQLite sorts nothing. */
#define ITER_SELECT(scan_cond)                                                            \
    "SELECT " DRISK_SHIPMENT_COLS ", c.ts, c.event, c.reason, l.code, c.description,"     \
    " c.location_id"                                                                      \
    " FROM shipments s JOIN merchants m ON m.id = s.merchant_id"                          \
    " LEFT JOIN scans c ON c.shipment_id = s.id" scan_cond                                \
    " LEFT JOIN locations l ON l.id = c.location_id"
    /* a range reads scans from ITER_SCAN_LEAD_S before its first created_at on: on
     * PostgreSQL the older monthly partitions of scans are then not searched at all */
#define ITER_SCAN_LEAD_S (365 * 86400LL)
#define ITER_RANGE " WHERE s.created_at >= ?1 AND s.created_at < ?2 AND (CAST(?3 AS TEXT) IS NULL OR m.name = ?3)"
#define ITER_ORDER " ORDER BY s.created_at, s.id, c.ts, c.event, c.location_id"
    /* Three fixed statements (no SQL is assembled from input): a created_at range, the
     * same range's shipments still in flight, or one shipment by row id. */
    static const char *const sqls[3] = {
        ITER_SELECT(" AND c.ts >= ?4") ITER_RANGE ITER_ORDER,
        ITER_SELECT(" AND c.ts >= ?4") ITER_RANGE " AND s.outcome IS NULL"
        " AND (?5 = 0 OR s.id % ?5 = ?6)" ITER_ORDER,
        ITER_SELECT("") " WHERE s.id = ?1" ITER_ORDER,
    };
    /* a list of row ids: bound as one array (PostgreSQL) or JSON array (SQLite) of them.
     * PostgreSQL goes from each id to its shipment and its scans by index probes (the
     * OFFSET 0 keeps the planner from turning the lateral read into a hash join over
     * every scan, which it otherwise picks for a hundred ids) */
    static const char *const by_ids[2] = {
        ITER_SELECT("") " WHERE s.id IN (SELECT value FROM json_each(?1))" ITER_ORDER,
        "SELECT " DRISK_SHIPMENT_COLS ", c.ts, c.event, c.reason, l.code, c.description,"
        " c.location_id FROM unnest(CAST(?1 AS BIGINT[])) q(id)"
        " JOIN shipments s ON s.id = q.id JOIN merchants m ON m.id = s.merchant_id"
        " LEFT JOIN LATERAL (SELECT x.ts, x.event, x.reason, x.description, x.location_id"
        " FROM scans x WHERE x.shipment_id = s.id OFFSET 0) c ON true"
        " LEFT JOIN locations l ON l.id = c.location_id" ITER_ORDER,
    };
    const char *sql = sqls[filter && filter->shipment ? 2 : filter && filter->open_only ? 1 : 0];
    char *ids = NULL;
    if (filter && filter->n_ids) {
        sql = by_ids[store->pg];
        if (!(ids = malloc(filter->n_ids * 21 + 3)))
            return drisk_error_set(err, DRISK_ENOMEM, "out of memory reading shipments");
        size_t len = 0;
        ids[len++] = store->pg ? '{' : '[';
        for (size_t i = 0; i < filter->n_ids; i++)
            len += (size_t)sprintf(ids + len, "%s%lld", i ? "," : "", (long long)filter->ids[i]);
        ids[len++] = store->pg ? '}' : ']';
        ids[len] = '\0';
    }
    enum drisk_status rc = DRISK_OK;
    struct drisk_sql_stmt *st = NULL;
    struct drisk_scan *scans = NULL;
    size_t n = 0, cap = 0;
    struct drisk_shipment cur;
    int have = 0;

    /* one shipment by id is the server's per-request read: its statement is kept */
    int by_id = filter && filter->shipment && !ids;
    if (by_id && store->by_id) {
        st = store->by_id;
        drisk_sql_clear(st);
    } else if (drisk_sql_prepare(store->db, sql, by_id ? DRISK_SQL_PERSISTENT
                                                 : ids ? 0 : DRISK_SQL_STREAM, &st)) {
        free(ids);
        return db_error(store, err, "preparing the shipment iterator");
    }
    if (by_id)
        store->by_id = st;
    if (ids) {
        drisk_sql_bind_text(st, 1, ids);
    } else if (by_id) {
        drisk_sql_bind_int64(st, 1, filter->shipment);
    } else {
        drisk_sql_bind_int64(st, 1, filter ? filter->created_from : INT64_MIN);
        drisk_sql_bind_int64(st, 2, filter ? filter->created_to : INT64_MAX);
        if (filter && filter->merchant)
            drisk_sql_bind_text(st, 3, filter->merchant);
        else
            drisk_sql_bind_null(st, 3);
        int64_t from = filter ? filter->created_from : INT64_MIN;
        drisk_sql_bind_int64(st, 4, from > INT64_MIN + ITER_SCAN_LEAD_S ? from - ITER_SCAN_LEAD_S
                                                                       : INT64_MIN);
        if (filter && filter->open_only) {
            drisk_sql_bind_int64(st, 5, filter->shards > 0 ? filter->shards : 0);
            drisk_sql_bind_int64(st, 6, filter->shards > 0 ? filter->shard : 0);
        }
    }

    for (;;) {
        int r = drisk_sql_step(st);
        if (r != DRISK_SQL_ROW && r != DRISK_SQL_DONE) {
            rc = db_error(store, err, "reading shipments");
            goto out;
        }
        if (r == DRISK_SQL_DONE || !have || drisk_sql_col_int64(st, 0) != cur.id) {
            if (have && fn(&cur, scans, n, ctx, err)) {
                rc = DRISK_EINVAL;
                goto out;
            }
            if (r == DRISK_SQL_DONE)
                break;
            drisk_store_read_shipment(st, &cur);
            have = 1;
            n = 0;
        }
        enum { S = DRISK_SHIPMENT_NCOLS }; /* the scan's columns follow the shipment's */
        if (drisk_sql_col_null(st, S))
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
        sc->ts = drisk_sql_col_int64(st, S);
        sc->event = drisk_sql_col_int(st, S + 1);
        sc->reason = drisk_sql_col_int(st, S + 2);
        drisk_store_copy_col(st, S + 3, sc->location, sizeof sc->location);
        drisk_store_copy_col(st, S + 4, sc->description, sizeof sc->description);
        sc->location_id = drisk_sql_col_int64(st, S + 5);
    }
out:
    if (by_id)
        drisk_sql_reset(st);
    else
        drisk_sql_finalize(st);
    free(ids);
    free(scans);
    return rc;
}

static int64_t scalar(struct drisk_store *store, const char *sql, int *ok)
{
    struct drisk_sql_stmt *st = NULL;
    int64_t v = 0;
    if (drisk_sql_prepare(store->db, sql, 0, &st)) {
        *ok = 0;
        return 0;
    }
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        v = drisk_sql_col_null(st, 0) ? DRISK_TS_NONE : drisk_sql_col_int64(st, 0);
    else if (r != DRISK_SQL_DONE)
        *ok = 0;
    drisk_sql_finalize(st);
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
    struct drisk_sql_stmt *st = NULL;
    *lead = 0;
    if (drisk_sql_prepare(store->db,
                           "SELECT promised_at - created_at FROM shipments"
                           " WHERE created_at >= ?1 AND created_at < ?2 ORDER BY 1"
                           " LIMIT 1 OFFSET (SELECT CAST(CAST(?3 AS DOUBLE PRECISION) * (count(*) - 1) AS INTEGER)"
                           " FROM shipments WHERE created_at >= ?1 AND created_at < ?2)", 0, &st))
        return db_error(store, err, "reading promise leads");
    drisk_sql_bind_int64(st, 1, from);
    drisk_sql_bind_int64(st, 2, until);
    drisk_sql_bind_double(st, 3, q);
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW)
        *lead = drisk_sql_col_int64(st, 0);
    drisk_sql_finalize(st);
    return r == DRISK_SQL_ROW || r == DRISK_SQL_DONE ? DRISK_OK
                                               : db_error(store, err, "reading promise leads");
}

/* ---- network checkpoints ---- */

enum drisk_status drisk_store_checkpoint_put(struct drisk_store *store, int64_t as_of,
                                             int64_t now, const void *payload, size_t len,
                                             struct drisk_error *err)
{
    struct drisk_sql_stmt *st = NULL;
    enum drisk_status rc = drisk_store_begin(store, err);
    if (rc)
        return rc;
    if (drisk_sql_prepare(store->db, "INSERT INTO network_checkpoints(as_of, created_at,"
                          " payload) VALUES (?1, ?2, ?3)", 0, &st))
        goto fail;
    drisk_sql_bind_int64(st, 1, as_of);
    drisk_sql_bind_int64(st, 2, now);
    drisk_sql_bind_blob(st, 3, payload, len);
    int r = drisk_sql_step(st);
    drisk_sql_finalize(st);
    st = NULL;
    if (r != DRISK_SQL_DONE ||
        drisk_sql_exec(store->db, "DELETE FROM network_checkpoints WHERE id NOT IN (SELECT id"
                       " FROM network_checkpoints ORDER BY as_of DESC, id DESC LIMIT 2)"))
        goto fail;
    return drisk_store_commit(store, err);
fail:
    rc = db_error(store, err, "writing a network checkpoint");
    drisk_sql_finalize(st);
    drisk_store_rollback(store);
    return rc;
}

enum drisk_status drisk_store_checkpoint_get(struct drisk_store *store, int64_t *as_of,
                                             void **payload, size_t *len,
                                             struct drisk_error *err)
{
    struct drisk_sql_stmt *st = NULL;
    *payload = NULL;
    *len = 0;
    if (drisk_sql_prepare(store->db, "SELECT as_of, payload FROM network_checkpoints"
                          " ORDER BY as_of DESC, id DESC LIMIT 1", 0, &st))
        return db_error(store, err, "reading a network checkpoint");
    int r = drisk_sql_step(st);
    enum drisk_status rc = DRISK_OK;
    if (r == DRISK_SQL_ROW) {
        size_t n = drisk_sql_col_bytes(st, 1);
        const void *p = drisk_sql_col_blob(st, 1);
        *as_of = drisk_sql_col_int64(st, 0);
        if (!(*payload = malloc(n ? n : 1)))
            rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory reading a checkpoint");
        else if (n)
            memcpy(*payload, p, n);
        *len = n;
    } else {
        rc = r == DRISK_SQL_DONE ? DRISK_ENOTFOUND
                                 : db_error(store, err, "reading a network checkpoint");
    }
    drisk_sql_finalize(st);
    return rc;
}

enum drisk_status drisk_store_alive_since(struct drisk_store *store, int64_t t,
                                          int64_t *first, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = NULL;
    *first = t - 60 * 86400;
    if (drisk_sql_prepare(store->db,
                          "SELECT min(created_at) FROM shipments WHERE created_at >= ?2"
                          " AND created_at < ?3 AND (outcome IS NULL OR delivered_at > ?1"
                          " OR promised_at > ?1 - 1814400)", 0, &st))
        return db_error(store, err, "finding the shipments alive at a checkpoint");
    drisk_sql_bind_int64(st, 1, t);
    drisk_sql_bind_int64(st, 2, t - 365 * 86400);
    drisk_sql_bind_int64(st, 3, *first);
    int r = drisk_sql_step(st);
    if (r == DRISK_SQL_ROW && !drisk_sql_col_null(st, 0))
        *first = drisk_sql_col_int64(st, 0);
    drisk_sql_finalize(st);
    return r == DRISK_SQL_ROW || r == DRISK_SQL_DONE
               ? DRISK_OK
               : db_error(store, err, "finding the shipments alive at a checkpoint");
}

enum drisk_status drisk_store_maintain(struct drisk_store *store, int64_t now,
                                       struct drisk_error *err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM ingest_log WHERE created_at < %lld",
             (long long)(now - DRISK_LOG_KEEP_S));
    enum drisk_status rc = exec(store, sql, "pruning the ingest log", err);
    if (rc || !store->pg)
        return rc;
    snprintf(sql, sizeof sql, "SELECT drisk_scan_partitions(%lld, %lld)",
             (long long)(now - 31 * 86400), (long long)(now + 62 * 86400));
    return exec(store, sql, "making scan partitions", err);
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
        "SELECT s.carrier, count(*), count(s.outcome),"
        " sum(CASE WHEN s.outcome = 'delivered' AND s.delivered_at <= s.promised_at"
        " THEN 1 ELSE 0 END), sum(CASE WHEN s.outcome = 'lost' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN s.outcome = 'returned' THEN 1 ELSE 0 END)"
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
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(store->db, sql, 0, &st))
        return db_error(store, err, "summarizing carriers");
    size_t cap = 0;
    int r;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        if (out->n_carriers == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct drisk_carrier_stats *p = realloc(out->carriers, ncap * sizeof *p);
            if (!p) {
                drisk_sql_finalize(st);
                drisk_store_stats_free(out);
                return drisk_error_set(err, DRISK_ENOMEM, "out of memory summarizing");
            }
            out->carriers = p;
            cap = ncap;
        }
        struct drisk_carrier_stats *c = &out->carriers[out->n_carriers++];
        drisk_store_copy_col(st, 0, c->carrier, sizeof c->carrier);
        c->shipments = drisk_sql_col_int64(st, 1);
        c->labeled = drisk_sql_col_int64(st, 2);
        c->on_time = drisk_sql_col_int64(st, 3);
        c->lost = drisk_sql_col_int64(st, 4);
        c->returned = drisk_sql_col_int64(st, 5);
        c->scans = 0;
    }
    drisk_sql_finalize(st);
    st = NULL;
    if (r != DRISK_SQL_DONE || drisk_sql_prepare(store->db, scans_sql, 0, &st))
        goto fail;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        const char *name = drisk_sql_col_text(st, 0);
        for (size_t i = 0; name && i < out->n_carriers; i++)
            if (strcmp(out->carriers[i].carrier, (const char *)name) == 0)
                out->carriers[i].scans = drisk_sql_col_int64(st, 1);
    }
    if (r != DRISK_SQL_DONE)
        goto fail;
    drisk_sql_finalize(st);
    return DRISK_OK;
fail:
    drisk_sql_finalize(st);
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

static char *dup_col(struct drisk_sql_stmt *st, int col)
{
    const char *v = drisk_sql_col_text(st, col);
    return strdup(v ? (const char *)v : "");
}

static void read_model_row(struct drisk_sql_stmt *st, struct drisk_model_row *r)
{
    r->id = drisk_sql_col_int64(st, 0);
    drisk_store_copy_col(st, 1, r->target, sizeof r->target);
    drisk_store_copy_col(st, 2, r->algorithm, sizeof r->algorithm);
    r->created_at = drisk_sql_col_int64(st, 3);
    r->active = drisk_sql_col_int(st, 4);
    drisk_store_copy_col(st, 5, r->schema_hash, sizeof r->schema_hash);
    r->train_from = drisk_sql_col_int64(st, 6);
    r->train_until = drisk_sql_col_int64(st, 7);
    r->train_rows = drisk_sql_col_int64(st, 8);
    r->valid_rows = drisk_sql_col_int64(st, 9);
    r->shadow = drisk_sql_col_int(st, 13);
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
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(store->db, sql, 0, &st))
        return -1;
    drisk_sql_bind_int64(st, 1, id);
    int r = drisk_sql_step(st);
    drisk_sql_finalize(st);
    if (changes)
        *changes = drisk_sql_changes(store->db);
    return r == DRISK_SQL_DONE ? 0 : -1;
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
        " VALUES (?1, ?2, ?11, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    struct drisk_sql_stmt *st = NULL;
    enum drisk_status rc;
    if ((rc = drisk_store_begin(store, err)))
        return rc;
    if (drisk_sql_prepare(store->db, sql, 0, &st))
        goto fail;
    drisk_sql_bind_text(st, 1, row->target);
    drisk_sql_bind_text(st, 2, row->algorithm);
    drisk_sql_bind_text(st, 3, row->schema_hash);
    drisk_sql_bind_text(st, 4, row->schema ? row->schema : "");
    drisk_sql_bind_int64(st, 5, row->train_from);
    drisk_sql_bind_int64(st, 6, row->train_until);
    drisk_sql_bind_int64(st, 7, row->train_rows);
    drisk_sql_bind_int64(st, 8, row->valid_rows);
    drisk_sql_bind_text(st, 9, row->metrics ? row->metrics : "{}");
    drisk_sql_bind_blob(st, 10, row->payload, row->payload_len);
    drisk_sql_bind_int64(st, 11, (int64_t)time(NULL));
    if (drisk_sql_step(st) != DRISK_SQL_DONE)
        goto fail;
    drisk_sql_finalize(st);
    st = NULL;
    *id = drisk_sql_last_id(store->db);
    int ok = 1;
    if (activate < 0) {
        struct drisk_sql_stmt *q = NULL;
        if (drisk_sql_prepare(store->db, "SELECT count(*) FROM models WHERE target = ?1 AND active = 1", 0, &q))
            goto fail;
        drisk_sql_bind_text(q, 1, row->target);
        activate = drisk_sql_step(q) == DRISK_SQL_ROW && drisk_sql_col_int(q, 0) == 0;
        drisk_sql_finalize(q);
    }
    if (activate)
        ok = set_active(store, *id) == 0;
    if (!ok)
        goto fail;
    return drisk_store_commit(store, err);
fail:
    rc = db_error(store, err, "registering a model");
    drisk_sql_finalize(st);
    drisk_store_rollback(store);
    return rc;
}

enum drisk_status drisk_store_model_get(struct drisk_store *store, int64_t id, const char *target,
                                        struct drisk_model_row *out, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    const char *sql = id ? "SELECT " MODEL_COLS ", schema, payload, shadow FROM models WHERE id = ?1"
                         : "SELECT " MODEL_COLS ", schema, payload, shadow FROM models WHERE"
                           " target = ?1 AND active = 1";
    if (drisk_sql_prepare(store->db, sql, 0, &st))
        return db_error(store, err, "reading a model");
    if (id)
        drisk_sql_bind_int64(st, 1, id);
    else
        drisk_sql_bind_text(st, 1, target ? target : "");
    int r = drisk_sql_step(st);
    if (r != DRISK_SQL_ROW) {
        drisk_sql_finalize(st);
        if (r != DRISK_SQL_DONE)
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
    out->payload_len = (size_t)drisk_sql_col_bytes(st, 12);
    out->payload = malloc(out->payload_len ? out->payload_len : 1);
    if (out->payload && out->payload_len)
        memcpy(out->payload, drisk_sql_col_blob(st, 12), out->payload_len);
    drisk_sql_finalize(st);
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
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(store->db, "SELECT " MODEL_COLS ", NULL, NULL, shadow FROM models"
                           " ORDER BY id DESC", 0, &st))
        return db_error(store, err, "listing models");
    int r;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        struct drisk_model_row row;
        memset(&row, 0, sizeof row);
        read_model_row(st, &row);
        row.metrics = (char *)drisk_sql_col_text(st, 10);
        if (fn(&row, ctx))
            break;
    }
    drisk_sql_finalize(st);
    return r == DRISK_SQL_ROW || r == DRISK_SQL_DONE ? DRISK_OK : db_error(store, err, "listing models");
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

/* drisk_store_lock on PostgreSQL: a session advisory lock, which the server releases when
 * the connection ends, however the process ends. */
static enum drisk_status pg_lock(struct drisk_store *store, const char *name,
                                 struct drisk_error *err)
{
    struct drisk_sql_stmt *st = NULL;
    if (store->lock_name[0])
        return DRISK_OK; /* held already */
    if (drisk_sql_prepare(store->db, "SELECT pg_try_advisory_lock(hashtext('drisk lock ' || CAST(?1 AS TEXT)))",
                          0, &st))
        return db_error(store, err, "taking a lock");
    drisk_sql_bind_text(st, 1, name);
    int r = drisk_sql_step(st);
    int got = r == DRISK_SQL_ROW && drisk_sql_col_text(st, 0) &&
              drisk_sql_col_text(st, 0)[0] == 't';
    drisk_sql_finalize(st);
    if (r != DRISK_SQL_ROW)
        return db_error(store, err, "taking a lock");
    if (!got)
        return drisk_error_set(err, DRISK_EIO, "another process holds the %s lock of this "
                               "database: wait for it to finish, this run did nothing", name);
    snprintf(store->lock_name, sizeof store->lock_name, "%s", name);
    return DRISK_OK;
}

enum drisk_status drisk_store_lock(struct drisk_store *store, const char *name,
                                   struct drisk_error *err)
{
    const char *db = drisk_sql_filename(store->db);
    char path[4096];
    if (store->lock_name[0] && strcmp(store->lock_name, name) != 0)
        return drisk_error_set(err, DRISK_EINVAL, "this connection holds the %s lock: one lock "
                               "per connection", store->lock_name);
    if (store->pg)
        return pg_lock(store, name, err);
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

static void key_row_read(struct drisk_sql_stmt *st, struct drisk_key_row *out)
{
    out->id = drisk_sql_col_int64(st, 0);
    snprintf(out->merchant, sizeof out->merchant, "%s", drisk_sql_col_text(st, 1));
    out->admin = drisk_sql_col_int(st, 2) != 0;
    out->created_at = drisk_sql_col_int64(st, 3);
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
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(store->db, "INSERT INTO api_keys(merchant_id, key_hash, admin, "
                           "created_at) VALUES (?1, ?2, ?3, ?4)", 0, &st)) {
        rc = db_error(store, err, "registering a key");
        goto fail;
    }
    if (has_merchant)
        drisk_sql_bind_int64(st, 1, mid);
    else
        drisk_sql_bind_null(st, 1);
    drisk_sql_bind_blob(st, 2, hash, 32);
    drisk_sql_bind_int(st, 3, admin ? 1 : 0);
    drisk_sql_bind_int64(st, 4, now);
    int r = drisk_sql_step(st);
    int taken = r == DRISK_SQL_ERROR && drisk_sql_constraint_failed(store->db);
    drisk_sql_finalize(st);
    if (taken) {
        rc = drisk_error_set(err, DRISK_EINVAL, "this key is already registered");
        goto fail;
    }
    if (r != DRISK_SQL_DONE) {
        rc = db_error(store, err, "registering a key");
        goto fail;
    }
    *id = drisk_sql_last_id(store->db);
    return drisk_store_commit(store, err);
fail:
    drisk_store_rollback(store);
    return rc;
}

enum drisk_status drisk_store_key_find(struct drisk_store *store, const unsigned char hash[32],
                                       struct drisk_key_row *out, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(store->db, "SELECT " KEY_COLS " FROM api_keys k LEFT JOIN merchants m"
                           " ON m.id = k.merchant_id WHERE k.key_hash = ?1", 0, &st))
        return db_error(store, err, "looking up a key");
    drisk_sql_bind_blob(st, 1, hash, 32);
    int r = drisk_sql_step(st);
    enum drisk_status rc = DRISK_OK;
    if (r == DRISK_SQL_ROW && drisk_sql_col_bytes(st, 4) == 32 &&
        drisk_equal_ct(drisk_sql_col_blob(st, 4), hash, 32)) {
        key_row_read(st, out);
    } else if (r == DRISK_SQL_ROW || r == DRISK_SQL_DONE) {
        rc = drisk_error_set(err, DRISK_ENOTFOUND, "unknown API key");
    } else {
        rc = db_error(store, err, "looking up a key");
    }
    drisk_sql_finalize(st);
    return rc;
}

enum drisk_status drisk_store_key_list(struct drisk_store *store,
                                       int (*fn)(const struct drisk_key_row *row, void *ctx),
                                       void *ctx, struct drisk_error *err)
{
    struct drisk_sql_stmt *st = NULL;
    if (drisk_sql_prepare(store->db, "SELECT " KEY_COLS " FROM api_keys k LEFT JOIN merchants m"
                           " ON m.id = k.merchant_id ORDER BY k.id", 0, &st))
        return db_error(store, err, "listing keys");
    int r;
    while ((r = drisk_sql_step(st)) == DRISK_SQL_ROW) {
        struct drisk_key_row row;
        key_row_read(st, &row);
        if (fn(&row, ctx))
            break;
    }
    drisk_sql_finalize(st);
    if (r != DRISK_SQL_ROW && r != DRISK_SQL_DONE)
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
