/* The drisk store: one database holding merchants, shipments, their scans, and the
 * tables later modules use (model registry, risk, alerts, recommendations, API keys):
 * an embedded SQLite file (the default) or a PostgreSQL server, chosen by --db and
 * invisible above data/. SQLite and libpq live in data/ and nowhere else (data/sql.h);
 * every statement is prepared once, with parameters bound (no SQL is ever assembled from
 * input).
 *
 * Threads: a struct drisk_store is one connection; use it from one thread at a time
 * (open one per thread). Timestamps are int64 UTC seconds (base/timeutil.h). */
#ifndef DRISK_STORE_H
#define DRISK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/shipment.h"
#include "base/error.h"

struct drisk_store;

enum drisk_upsert {
    DRISK_UPSERT_INSERTED = 0,
    DRISK_UPSERT_UPDATED,
    DRISK_UPSERT_UNCHANGED
};

/* 1 when target names a PostgreSQL database (postgresql://... or postgres://...), which
 * a server holds; otherwise target is a SQLite file's path. */
int drisk_store_is_server(const char *target);

/* Opens (creating if needed) the SQLite database at path, or connects to the PostgreSQL
 * URL, and brings its schema up to date. On success *out is owned by the caller and
 * released with drisk_store_free. Fails with DRISK_ESCHEMA for a database written by a
 * newer drisk. */
enum drisk_status drisk_store_open(const char *path, struct drisk_store **out,
                                   struct drisk_error *err);

/* Closes the connection; NULL is a no-op. An open transaction is rolled back. */
void drisk_store_free(struct drisk_store *store);

/* The schema version this build migrates to (PRAGMA user_version). */
int drisk_store_schema_version(void);

/* Transactions. begin takes the write lock at once (BEGIN IMMEDIATE) so a long import
 * never fails half-way on a busy database; commit is durable when it returns. */
enum drisk_status drisk_store_begin(struct drisk_store *store, struct drisk_error *err);
enum drisk_status drisk_store_commit(struct drisk_store *store, struct drisk_error *err);

/* A read-only transaction whose reads all see the store as of one moment (PostgreSQL:
 * REPEATABLE READ; SQLite: a deferred transaction, whose first read fixes its view). End
 * it with commit or rollback. */
enum drisk_status drisk_store_begin_snapshot(struct drisk_store *store, struct drisk_error *err);

/* begin for bulk loads (import, simulate): the same, with SQLite's foreign-key checks off
 * until commit or rollback. Two B-tree probes per scan saved; the caller guarantees the
 * references instead, since every shipment and location id it writes comes from a lookup
 * or insert in the same transaction (drisk_store_upsert_shipment, find_shipment). */
enum drisk_status drisk_store_begin_bulk(struct drisk_store *store, struct drisk_error *err);
void drisk_store_rollback(struct drisk_store *store);

/* SQLite's synchronous level for this connection's next commits: 2 (FULL, the default:
 * durable when commit returns) or 1 (NORMAL: in WAL mode, consistent but the last
 * commits may be lost on power failure; for data that can be recomputed). */
void drisk_store_set_synchronous(struct drisk_store *store, int level);

/* Whether this connection's commits run SQLite's WAL checkpoint when the log passes 1,000
 * pages (on, the default), copying pages back and syncing the database file: a stall of
 * hundreds of milliseconds on a slow disk. Off for a connection whose latency matters more
 * than the others' (the webhook worker's): the others keep checkpointing. */
void drisk_store_set_autocheckpoint(struct drisk_store *store, int on);

/* Lets this connection read the database through a memory map of up to bytes (SQLite's
 * mmap_size; 0 turns it off): page reads without a copy, for long-running readers like
 * the server. */
void drisk_store_set_mmap(struct drisk_store *store, int64_t bytes);

/* Sets the page cache size for bulk work (bytes); the default is 64 MiB. */
void drisk_store_set_cache_bytes(struct drisk_store *store, int64_t bytes);

/* Inserts the shipment, or updates the stored row with the same (merchant, shipment_id)
 * when any field differs. Sets *id (the row id) and *result. The merchant is created on
 * first use. sh is only read. */
enum drisk_status drisk_store_upsert_shipment(struct drisk_store *store,
                                              const struct drisk_shipment *sh, int64_t *id,
                                              enum drisk_upsert *result,
                                              struct drisk_error *err);

/* Inserts sh when its (merchant, shipment_id) is new; a stored one keeps every field but
 * carrier_eta, which sh sets when it has one. *id: the row either way. */
enum drisk_status drisk_store_ensure_shipment(struct drisk_store *store,
                                              const struct drisk_shipment *sh, int64_t *id,
                                              struct drisk_error *err);

/* ---- bulk loads (drisk import) ----
 * Batches of rows, which PostgreSQL loads with COPY (a round trip per batch, not per row)
 * and SQLite row by row; inside the caller's transaction, so an import stays atomic. */

/* Upserts n shipments as drisk_store_upsert_shipment does, in order, setting result[i]
 * (a shipment repeated in the batch is updated, or unchanged, by its later rows). */
enum drisk_status drisk_store_put_shipments(struct drisk_store *store,
                                            const struct drisk_shipment *const *sh, size_t n,
                                            enum drisk_upsert *result, struct drisk_error *err);

/* A scan as a file names its shipment: merchant ("" when the file has none: the
 * shipment_id must then belong to one merchant) and shipment_id. Borrowed. */
struct drisk_scan_put {
    const char *merchant;
    const char *shipment_id;
    const struct drisk_scan *scan;
};

enum drisk_scan_put_result {
    DRISK_SCAN_PUT_STORED = 0,  /* stored now, or already (a duplicate, ignored) */
    DRISK_SCAN_PUT_NO_SHIPMENT, /* the store has no such shipment: nothing written */
    DRISK_SCAN_PUT_AMBIGUOUS    /* no merchant, and several merchants have the shipment_id */
};

/* Inserts n scans, setting result[i] (enum drisk_scan_put_result) and *inserted, how
 * many of the stored rows are new (the others were duplicates: of a stored scan, or of
 * one earlier in the batch). */
enum drisk_status drisk_store_put_scans(struct drisk_store *store,
                                        const struct drisk_scan_put *rows, size_t n,
                                        int *result, size_t *inserted, struct drisk_error *err);

/* drisk_store_put_scans for a request (the server's ingestion), in the caller's
 * transaction: the same, and for each row, out[i]: its shipment's row id (0 when none)
 * and whether it was stored now (fresh; 0 for a duplicate, of a stored scan or of an
 * earlier row). PostgreSQL takes a batch in a few round trips, not a few per row. */
struct drisk_scan_put_out {
    int64_t shipment;
    int fresh;
};
enum drisk_status drisk_store_put_scans_each(struct drisk_store *store,
                                             const struct drisk_scan_put *rows, size_t n,
                                             int *result, struct drisk_scan_put_out *out,
                                             size_t *inserted, struct drisk_error *err);

/* Finds a shipment's row id; DRISK_ENOTFOUND (err untouched) when there is none. With
 * merchant NULL, the shipment_id must belong to exactly one merchant: DRISK_EINVAL (err
 * filled) when several merchants have it. */
enum drisk_status drisk_store_find_shipment(struct drisk_store *store, const char *merchant,
                                            const char *shipment_id, int64_t *id,
                                            struct drisk_error *err);

/* Inserts a scan of the shipment with row id shipment; a scan equal on (shipment, ts,
 * event, location) to a stored one is ignored (*inserted = 0), so ingestion is
 * idempotent. A location seen for the first time gets an id in the locations table. */
enum drisk_status drisk_store_insert_scan(struct drisk_store *store, int64_t shipment,
                                          const struct drisk_scan *scan, int *inserted,
                                          struct drisk_error *err);

/* The id of location code, or 0 when the store has never seen it (nothing is added).
 * Found ids are cached by the connection (an id never changes). */
enum drisk_status drisk_store_location_find(struct drisk_store *store, const char *code,
                                            int64_t *id, struct drisk_error *err);

/* Which shipments drisk_store_iterate visits: created_at in [created_from, created_to),
 * and of one merchant unless merchant is NULL; with open_only, only those whose outcome
 * is not yet known. A non-zero shipment (row id) visits that one shipment alone and
 * ignores the rest. With a created_from, scans more than a year older than it are not
 * read (no real parcel is scanned a year before its label). */
struct drisk_store_filter {
    const char *merchant;
    int64_t created_from; /* INT64_MIN for no bound */
    int64_t created_to;   /* INT64_MAX for no bound */
    int open_only;
    int64_t shipment;
    int shards, shard; /* shards > 0: only shipments whose row id % shards == shard */
    const int64_t *ids; /* n_ids > 0: these shipments only, by row id (the range ignored) */
    size_t n_ids;
};

/* Called for each shipment with its scans in time order. Both are borrowed for the
 * duration of the call. A non-zero return stops the iteration and is returned as
 * DRISK_EINVAL with the callback's own message left in err. */
typedef int (*drisk_shipment_fn)(const struct drisk_shipment *sh, const struct drisk_scan *scans,
                                 size_t n_scans, void *ctx, struct drisk_error *err);

/* Visits the filtered shipments in (created_at, id) order, each with its scans, in memory
 * bounded by the largest single shipment (at most DRISK_MAX_SCANS_PER_SHIPMENT scans;
 * more fails with DRISK_EINVAL). */
#define DRISK_MAX_SCANS_PER_SHIPMENT 10000
enum drisk_status drisk_store_iterate(struct drisk_store *store,
                                      const struct drisk_store_filter *filter,
                                      drisk_shipment_fn fn, void *ctx, struct drisk_error *err);

/* Per-carrier summary of the store (what `drisk stats` prints). */
struct drisk_carrier_stats {
    char carrier[DRISK_NAME_MAX];
    int64_t shipments;
    int64_t labeled;   /* outcome known */
    int64_t on_time;   /* delivered at or before promised_at */
    int64_t lost;
    int64_t returned;
    int64_t scans;
};

struct drisk_store_stats {
    int64_t merchants, shipments, scans;
    int64_t first_created, last_created; /* DRISK_TS_NONE when empty */
    size_t n_carriers;
    struct drisk_carrier_stats *carriers; /* owned: release with drisk_store_stats_free */
};

enum drisk_status drisk_store_stats(struct drisk_store *store, struct drisk_store_stats *out,
                                    struct drisk_error *err);
void drisk_store_stats_free(struct drisk_store_stats *stats);

/* The q-quantile (0..1) of promised_at - created_at, in seconds, over the shipments
 * created in [from, until); 0 when there are none. */
enum drisk_status drisk_store_promise_lead(struct drisk_store *store, int64_t from,
                                           int64_t until, double q, int64_t *lead,
                                           struct drisk_error *err);
/* The first and last created_at of all shipments (DRISK_TS_NONE both when empty). */
enum drisk_status drisk_store_created_range(struct drisk_store *store, int64_t *first,
                                            int64_t *last, struct drisk_error *err);

/* ---- model registry ---- */

/* A registered model. Strings and payload are owned by the row when it comes from
 * drisk_store_model_get (release with drisk_store_model_row_free); for
 * drisk_store_model_add they are borrowed. */
struct drisk_model_row {
    int64_t id;
    char target[8];
    char algorithm[32];
    int64_t created_at;
    int active;
    int shadow; /* its target's shadow: scored beside the active one, never acted on */
    char schema_hash[80];
    int64_t train_from, train_until, train_rows, valid_rows;
    char *metrics; /* JSON object text */
    char *schema;  /* feature schema text */
    void *payload; /* the model file */
    size_t payload_len;
};

/* Adds a model. activate: 1 makes it the target's active model, 0 leaves the active one,
 * -1 activates it only if the target has no active model yet. Sets *id. */
enum drisk_status drisk_store_model_add(struct drisk_store *store, const struct drisk_model_row *row,
                                        int activate, int64_t *id, struct drisk_error *err);

/* Reads model id, or with id 0 the active model of target. DRISK_ENOTFOUND (err filled
 * with what to do) when there is none. */
enum drisk_status drisk_store_model_get(struct drisk_store *store, int64_t id, const char *target,
                                        struct drisk_model_row *out, struct drisk_error *err);
void drisk_store_model_row_free(struct drisk_model_row *row);

/* Calls fn for every model, newest first, without its payload or schema text. */
typedef int (*drisk_model_row_fn)(const struct drisk_model_row *row, void *ctx);
enum drisk_status drisk_store_model_list(struct drisk_store *store, drisk_model_row_fn fn,
                                         void *ctx, struct drisk_error *err);

/* Makes model id its target's active model (one transaction), after loading it as the
 * server would: a model whose file or feature schema does not load is refused
 * (DRISK_EINVAL, saying why) and the active model stays. */
enum drisk_status drisk_store_model_activate(struct drisk_store *store, int64_t id,
                                             struct drisk_error *err);

/* Makes model id its target's shadow (on 1; one per target, replacing any other) or
 * stops it being one (on 0). The model is loaded first, as activation does; the active
 * model cannot be its own shadow (DRISK_EINVAL). */
enum drisk_status drisk_store_model_shadow(struct drisk_store *store, int64_t id, int on,
                                           struct drisk_error *err);

/* Removes model id from the registry. A target's active or shadow model is refused
 * (DRISK_EINVAL): activate or unshadow another first. */
enum drisk_status drisk_store_model_delete(struct drisk_store *store, int64_t id,
                                           struct drisk_error *err);

/* Takes the store-wide lock called name (letters, digits, '-') for this connection, held
 * until drisk_store_free or the process ends however it ends (an flock(2) on the file
 * DB-name.lock beside the database; a database without a file needs none). A lock another
 * process holds is DRISK_EIO, saying so, at once: callers never wait. */
enum drisk_status drisk_store_lock(struct drisk_store *store, const char *name,
                                   struct drisk_error *err);

/* ---- API keys (drisk keys; the server's authentication) ----
 * Only a key's SHA-256 is stored. A key belongs to one merchant, or to none when it is an
 * admin key; admin keys may also belong to a merchant. */
struct drisk_key_row {
    int64_t id;
    char merchant[DRISK_ID_MAX]; /* "" for none */
    int admin;
    int64_t created_at;
};

/* Registers a key hash for merchant (created if new; NULL or "" only with admin) at time
 * now. *id receives the key's id. DRISK_EINVAL for a hash already registered. */
enum drisk_status drisk_store_key_add(struct drisk_store *store, const char *merchant, int admin,
                                      const unsigned char hash[32], int64_t now, int64_t *id,
                                      struct drisk_error *err);
/* The key whose hash is hash (found by index, then compared in constant time):
 * DRISK_ENOTFOUND when none. */
enum drisk_status drisk_store_key_find(struct drisk_store *store, const unsigned char hash[32],
                                       struct drisk_key_row *out, struct drisk_error *err);
/* Calls fn for every key, oldest first (fn returns non-zero to stop). */
enum drisk_status drisk_store_key_list(struct drisk_store *store,
                                       int (*fn)(const struct drisk_key_row *row, void *ctx),
                                       void *ctx, struct drisk_error *err);
/* Deletes key id: DRISK_ENOTFOUND when there is none. */
enum drisk_status drisk_store_key_revoke(struct drisk_store *store, int64_t id,
                                         struct drisk_error *err);

/* ---- network checkpoints (data/replay.h) ---- */

/* Stores a checkpoint: the network state's bytes as of as_of, written at now. Keeps the
 * newest two. */
enum drisk_status drisk_store_checkpoint_put(struct drisk_store *store, int64_t as_of,
                                             int64_t now, const void *payload, size_t len,
                                             struct drisk_error *err);
/* The newest checkpoint: *as_of and its bytes (*payload, *len: release with free).
 * DRISK_ENOTFOUND (err untouched) when there is none. */
enum drisk_status drisk_store_checkpoint_get(struct drisk_store *store, int64_t *as_of,
                                             void **payload, size_t *len,
                                             struct drisk_error *err);
/* The earliest created_at of the shipments that may still have events after t: those
 * created in the 60 days before it, and those of the year before it whose outcome is not
 * known, or known after t, or whose lost window (promised_at + 21 days) ends after t.
 * At most t - 60 days. */
enum drisk_status drisk_store_alive_since(struct drisk_store *store, int64_t t,
                                          int64_t *first, struct drisk_error *err);

/* Housekeeping for a long-running process (the server: at start, then every 10
 * minutes): the ingest log (data/live.h) keeps its last DRISK_LOG_KEEP_S seconds (every
 * node reads it within a second; a node paused longer misses what it did not read); on PostgreSQL, the
 * scan partitions of the past month and the next two exist afterwards, so live scans
 * land in their month's partition, not the default one. */
#define DRISK_LOG_KEEP_S 600
enum drisk_status drisk_store_maintain(struct drisk_store *store, int64_t now,
                                       struct drisk_error *err);

/* Row counts of the core tables (cheap enough for tests and summaries); scans may be NULL
 * when only shipments are wanted. */
enum drisk_status drisk_store_count(struct drisk_store *store, int64_t *shipments,
                                    int64_t *scans, struct drisk_error *err);

#endif
