/* One SQL interface over the two stores drisk speaks to: an embedded SQLite file (the
 * default) and a PostgreSQL server through libpq. The store code above it (data/store.c,
 * data/live.c, data/outbox.c) prepares, binds, steps and reads columns the same way on
 * both, with SQLite's shape: statements are prepared once and reset after each use,
 * parameters are ?1, ?2, ... (rewritten to $1, $2, ... for PostgreSQL), and a row's
 * columns are read by index. Where the two dialects differ, the caller picks the text
 * with drisk_sql_kind. Private to data/: SQLite and libpq live here and nowhere else.
 *
 * Threads: a struct drisk_sql is one connection; use it, and its statements, from one
 * thread at a time. */
#ifndef DRISK_SQL_H
#define DRISK_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct drisk_sql;
struct drisk_sql_stmt;

enum drisk_sql_kind {
    DRISK_SQL_SQLITE = 0,
    DRISK_SQL_PG
};

/* What drisk_sql_step returns. */
enum {
    DRISK_SQL_ERROR = -1,
    DRISK_SQL_ROW = 1,
    DRISK_SQL_DONE = 2
};

/* prepare flags */
enum {
    DRISK_SQL_PERSISTENT = 1, /* kept for the connection's life (a named statement) */
    DRISK_SQL_STREAM = 2      /* a large result: PostgreSQL reads it through a cursor, in
                                 batches, so memory stays bounded and other statements may
                                 run between its rows (SQLite streams anyway) */
};

/* 1 when target names a PostgreSQL database (postgresql://... or postgres://...). */
int drisk_sql_is_pg_url(const char *target);

/* Opens a SQLite file (created if missing) or connects to the PostgreSQL URL. On success
 * *out is owned by the caller and released with drisk_sql_close. */
enum drisk_status drisk_sql_open(const char *target, struct drisk_sql **out,
                                 struct drisk_error *err);
/* Says the connection is about to close: finalizing its statements then sends nothing
 * to the server (which forgets them with the session). */
void drisk_sql_ending(struct drisk_sql *db);
/* Closes the connection; an open transaction is rolled back. NULL is a no-op. */
void drisk_sql_close(struct drisk_sql *db);

enum drisk_sql_kind drisk_sql_kind(const struct drisk_sql *db);
/* The SQLite file's path ("" for an in-memory database); NULL on PostgreSQL. */
const char *drisk_sql_filename(struct drisk_sql *db);

/* Runs one or more statements without parameters or rows. 0 on success, -1 on error
 * (drisk_sql_errmsg says why). */
int drisk_sql_exec(struct drisk_sql *db, const char *sql);
/* The connection's last error message (valid until its next call). */
const char *drisk_sql_errmsg(struct drisk_sql *db);
/* 1 when the last error was a unique or check constraint that refused a row. */
int drisk_sql_constraint_failed(struct drisk_sql *db);
/* Rows changed by the last completed INSERT, UPDATE or DELETE. */
int64_t drisk_sql_changes(struct drisk_sql *db);
/* The id the last INSERT gave its row (SQLite's rowid; PostgreSQL's lastval()). */
int64_t drisk_sql_last_id(struct drisk_sql *db);

/* Prepares sql (flags: DRISK_SQL_PERSISTENT, DRISK_SQL_STREAM). 0 on success; -1 with the
 * message in drisk_sql_errmsg. */
int drisk_sql_prepare(struct drisk_sql *db, const char *sql, int flags,
                      struct drisk_sql_stmt **out);
/* Releases a statement; NULL is a no-op. */
void drisk_sql_finalize(struct drisk_sql_stmt *st);
/* Ends the current execution (the next step runs the statement again); bindings stay. */
void drisk_sql_reset(struct drisk_sql_stmt *st);
/* Sets every parameter to NULL. */
void drisk_sql_clear(struct drisk_sql_stmt *st);

/* Parameters are numbered from 1. bind_text's s must stay valid until the statement is
 * stepped (SQLite's SQLITE_STATIC); bind_text_copy copies it. NULL s binds NULL. */
void drisk_sql_bind_int64(struct drisk_sql_stmt *st, int i, int64_t v);
void drisk_sql_bind_int(struct drisk_sql_stmt *st, int i, int v);
void drisk_sql_bind_double(struct drisk_sql_stmt *st, int i, double v);
void drisk_sql_bind_text(struct drisk_sql_stmt *st, int i, const char *s);
void drisk_sql_bind_text_copy(struct drisk_sql_stmt *st, int i, const char *s);
void drisk_sql_bind_blob(struct drisk_sql_stmt *st, int i, const void *p, size_t n);
void drisk_sql_bind_null(struct drisk_sql_stmt *st, int i);

/* Runs the statement on the first call after prepare or reset, then moves to the next
 * row: DRISK_SQL_ROW (columns readable), DRISK_SQL_DONE, or DRISK_SQL_ERROR. */
int drisk_sql_step(struct drisk_sql_stmt *st);

/* The current row's column c (from 0). Text and blob pointers live until the next step or
 * reset; a NULL column reads as 0, 0.0 or NULL. */
int drisk_sql_col_null(struct drisk_sql_stmt *st, int c);
int64_t drisk_sql_col_int64(struct drisk_sql_stmt *st, int c);
int drisk_sql_col_int(struct drisk_sql_stmt *st, int c);
double drisk_sql_col_double(struct drisk_sql_stmt *st, int c);
const char *drisk_sql_col_text(struct drisk_sql_stmt *st, int c);
const void *drisk_sql_col_blob(struct drisk_sql_stmt *st, int c);
/* Bytes of column c's text or blob. */
size_t drisk_sql_col_bytes(struct drisk_sql_stmt *st, int c);

/* ---- bulk loads (PostgreSQL's COPY) ----
 * Rows in COPY's text format, built field by field: a NULL text or a NaN double is SQL
 * NULL. Zero-initialize; release with drisk_sql_copy_free. */
struct drisk_sql_copy {
    char *p;
    size_t len, cap;
    int fields; /* in the current row */
    int failed; /* out of memory: drisk_sql_copy_in refuses it */
};
void drisk_sql_copy_text(struct drisk_sql_copy *c, const char *s);
void drisk_sql_copy_int64(struct drisk_sql_copy *c, int64_t v);
void drisk_sql_copy_double(struct drisk_sql_copy *c, double v);
void drisk_sql_copy_row(struct drisk_sql_copy *c); /* ends the row */
void drisk_sql_copy_clear(struct drisk_sql_copy *c);
void drisk_sql_copy_free(struct drisk_sql_copy *c);
/* Runs copy_sql ("COPY table (cols) FROM STDIN") with c's rows (PostgreSQL only). 0 or -1
 * with the message in drisk_sql_errmsg. */
int drisk_sql_copy_in(struct drisk_sql *db, const char *copy_sql, const struct drisk_sql_copy *c);

#endif
