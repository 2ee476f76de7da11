/* data/sql.h over SQLite and libpq. SQLite calls map one to one. PostgreSQL statements
 * keep their parameters as text (blobs as binary), run with PQexecParams or, when
 * persistent, as named prepared statements, and return every row at once, except
 * DRISK_SQL_STREAM statements, which read a WITH HOLD cursor in batches. */
#include "data/sql.h"

#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STREAM_BATCH 2000

struct drisk_sql {
    enum drisk_sql_kind kind;
    sqlite3 *lite;
    PGconn *pg;
    char errmsg[1024];
    int constraint;
    int64_t changes;
    unsigned names; /* prepared statements and cursors named so far */
    int ending;     /* drisk_sql_ending: statements are finalized without a word */
};

struct pg_param {
    const char *val; /* NULL: SQL NULL */
    int len;
    int binary;
    Oid type; /* from the binding (0: let the server infer it, as for a NULL never bound) */
    char num[32];
    char *copy;
    size_t copy_cap;
};

struct drisk_sql_stmt {
    struct drisk_sql *db;
    sqlite3_stmt *lite;
    /* PostgreSQL */
    char *sql; /* with $n parameters */
    int flags;
    char name[24]; /* the prepared statement's or the cursor's, "" until used */
    int nparams;
    struct pg_param *params;
    PGresult *res;
    int row, nrows;
    int ran;         /* executed since the last reset */
    int cursor_open; /* a DRISK_SQL_STREAM cursor is declared */
    int cursor_done; /* ... and its last batch is in res */
    unsigned char *blob; /* the decoded bytea of blob_col in the current row */
    size_t blob_len;
    int blob_col, blob_row;
};

int drisk_sql_is_pg_url(const char *target)
{
    return target && (strncmp(target, "postgresql://", 13) == 0 ||
                      strncmp(target, "postgres://", 11) == 0);
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

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

/* Process-wide SQLite settings, before its first use: no memory statistics (a global
 * mutex on every malloc otherwise). Connections are opened NOMUTEX: each is used by one
 * thread at a time. */
static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void pg_quiet(void *arg, const char *message)
{
    (void)arg; /* NOTICEs ("relation already exists, skipping") are not the user's business */
    (void)message;
}

/* The URL without its password, for messages. */
static void redact(const char *url, char *out, size_t cap)
{
    const char *at = strchr(url, '@');
    const char *scheme = strstr(url, "://");
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (at && colon && colon < at)
        snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
    else
        snprintf(out, cap, "%s", url);
}

static void set_err(struct drisk_sql *db, const char *msg)
{
    snprintf(db->errmsg, sizeof db->errmsg, "%s", msg ? msg : "unknown error");
    size_t n = strlen(db->errmsg);
    while (n && (db->errmsg[n - 1] == '\n' || db->errmsg[n - 1] == ' '))
        db->errmsg[--n] = '\0';
}

enum drisk_status drisk_sql_open(const char *target, struct drisk_sql **out,
                                 struct drisk_error *err)
{
    struct drisk_sql *db = calloc(1, sizeof *db);
    *out = NULL;
    if (!db)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory opening %s", target);
    if (drisk_sql_is_pg_url(target)) {
        db->kind = DRISK_SQL_PG;
        db->pg = PQconnectdb(target);
        if (!db->pg || PQstatus(db->pg) != CONNECTION_OK) {
            char shown[512];
            redact(target, shown, sizeof shown);
            set_err(db, db->pg ? PQerrorMessage(db->pg) : "out of memory");
            drisk_error_set(err, DRISK_EIO, "cannot connect to PostgreSQL at %s: %s (is the "
                            "server running, and the URL's user, host, port and database "
                            "right?)", shown, db->errmsg);
            drisk_sql_close(db);
            return DRISK_EIO;
        }
        PQsetNoticeProcessor(db->pg, pg_quiet, NULL);
        /* JIT compiles a statement's expressions when its estimated cost is high, as a
         * batch load's is: 1.4 s of LLVM for a statement that runs in 0.1 s */
        if (drisk_sql_exec(db, "SET jit = off")) {
            drisk_error_set(err, DRISK_EIO, "cannot configure the PostgreSQL session: %s",
                            db->errmsg);
            drisk_sql_close(db);
            return DRISK_EIO;
        }
        *out = db;
        return DRISK_OK;
    }
    pthread_once(&sqlite_once, sqlite_setup);
    db->kind = DRISK_SQL_SQLITE;
    if (sqlite3_open_v2(target, &db->lite,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        drisk_error_set(err, DRISK_EIO, "cannot open database %s: %s (check the path and "
                        "its directory's permissions)", target,
                        db->lite ? sqlite3_errmsg(db->lite) : "out of memory");
        drisk_sql_close(db);
        return DRISK_EIO;
    }
    sqlite3_busy_handler(db->lite, busy_wait, NULL);
    *out = db;
    return DRISK_OK;
}

void drisk_sql_ending(struct drisk_sql *db)
{
    db->ending = 1;
}

void drisk_sql_close(struct drisk_sql *db)
{
    if (!db)
        return;
    if (db->lite)
        sqlite3_close(db->lite);
    if (db->pg)
        PQfinish(db->pg);
    free(db);
}

enum drisk_sql_kind drisk_sql_kind(const struct drisk_sql *db)
{
    return db->kind;
}

const char *drisk_sql_filename(struct drisk_sql *db)
{
    if (db->kind != DRISK_SQL_SQLITE)
        return NULL;
    const char *f = sqlite3_db_filename(db->lite, "main");
    return f ? f : "";
}

const char *drisk_sql_errmsg(struct drisk_sql *db)
{
    if (db->kind == DRISK_SQL_SQLITE)
        return sqlite3_errmsg(db->lite);
    return db->errmsg;
}

int drisk_sql_constraint_failed(struct drisk_sql *db)
{
    if (db->kind == DRISK_SQL_SQLITE)
        return (sqlite3_errcode(db->lite) & 0xff) == SQLITE_CONSTRAINT;
    return db->constraint;
}

int64_t drisk_sql_changes(struct drisk_sql *db)
{
    if (db->kind == DRISK_SQL_SQLITE)
        return sqlite3_changes64(db->lite);
    return db->changes;
}

/* Notes a PostgreSQL result: 0 when it succeeded, else -1 with the message kept. */
static int pg_check(struct drisk_sql *db, PGresult *res)
{
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        const char *n = PQcmdTuples(res);
        if (n && n[0])
            db->changes = strtoll(n, NULL, 10);
        return 0;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    db->constraint = state && strncmp(state, "23", 2) == 0;
    set_err(db, res ? PQresultErrorMessage(res) : PQerrorMessage(db->pg));
    return -1;
}

int64_t drisk_sql_last_id(struct drisk_sql *db)
{
    if (db->kind == DRISK_SQL_SQLITE)
        return sqlite3_last_insert_rowid(db->lite);
    PGresult *res = PQexec(db->pg, "SELECT lastval()");
    int64_t id = 0;
    if (!pg_check(db, res) && PQntuples(res) == 1)
        id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return id;
}

int drisk_sql_exec(struct drisk_sql *db, const char *sql)
{
    if (db->kind == DRISK_SQL_SQLITE) {
        char *msg = NULL;
        if (sqlite3_exec(db->lite, sql, NULL, NULL, &msg) == SQLITE_OK)
            return 0;
        sqlite3_free(msg); /* sqlite3_errmsg keeps it */
        return -1;
    }
    /* SQLite's BEGIN IMMEDIATE takes the write lock at once; PostgreSQL's writers lock
     * rows, not the database */
    if (strcmp(sql, "BEGIN IMMEDIATE") == 0)
        sql = "BEGIN";
    PGresult *res = PQexec(db->pg, sql);
    int r = pg_check(db, res);
    PQclear(res);
    return r;
}

/* ---- statements ---- */

/* sql with ?N (and bare ?) rewritten to $N, outside quotes; *nparams: the largest N. */
static char *pg_translate(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 2 + 16), *o = out;
    int next = 1, max = 0;
    char quote = 0;
    if (!out)
        return NULL;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
            *o++ = *p;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p;
        } else if (*p == '?') {
            int k;
            if (p[1] >= '0' && p[1] <= '9') {
                k = (int)strtol(p + 1, (char **)&p, 10);
                p--;
            } else {
                k = next;
            }
            next = k + 1;
            if (k > max)
                max = k;
            o += sprintf(o, "$%d", k);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    *nparams = max;
    return out;
}

int drisk_sql_prepare(struct drisk_sql *db, const char *sql, int flags,
                      struct drisk_sql_stmt **out)
{
    struct drisk_sql_stmt *st = calloc(1, sizeof *st);
    *out = NULL;
    if (!st) {
        set_err(db, "out of memory preparing a statement");
        return -1;
    }
    st->db = db;
    st->flags = flags;
    st->blob_col = -1;
    if (db->kind == DRISK_SQL_SQLITE) {
        if (sqlite3_prepare_v3(db->lite, sql, -1,
                               (flags & DRISK_SQL_PERSISTENT) ? SQLITE_PREPARE_PERSISTENT : 0,
                               &st->lite, NULL) != SQLITE_OK) {
            free(st);
            return -1;
        }
        *out = st;
        return 0;
    }
    st->sql = pg_translate(sql, &st->nparams);
    st->params = st->nparams ? calloc((size_t)st->nparams, sizeof *st->params) : NULL;
    if (!st->sql || (st->nparams && !st->params)) {
        set_err(db, "out of memory preparing a statement");
        drisk_sql_finalize(st);
        return -1;
    }
    *out = st;
    return 0;
}

static void pg_end(struct drisk_sql_stmt *st)
{
    PQclear(st->res);
    st->res = NULL;
    if (st->cursor_open && !st->db->ending) {
        char sql[48];
        snprintf(sql, sizeof sql, "CLOSE %s", st->name);
        PQclear(PQexec(st->db->pg, sql)); /* gone already when its transaction rolled back */
    }
    st->cursor_open = 0;
    st->ran = st->row = st->nrows = st->cursor_done = 0;
    st->blob_col = -1;
}

void drisk_sql_reset(struct drisk_sql_stmt *st)
{
    if (st->lite)
        sqlite3_reset(st->lite);
    else
        pg_end(st);
}

void drisk_sql_finalize(struct drisk_sql_stmt *st)
{
    if (!st)
        return;
    if (st->lite) {
        sqlite3_finalize(st->lite);
    } else {
        pg_end(st);
        if (st->name[0] && (st->flags & DRISK_SQL_PERSISTENT) && !st->db->ending) {
            char sql[48];
            snprintf(sql, sizeof sql, "DEALLOCATE %s", st->name);
            PQclear(PQexec(st->db->pg, sql));
        }
        for (int i = 0; i < st->nparams; i++)
            free(st->params[i].copy);
        free(st->params);
        free(st->sql);
        PQfreemem(st->blob);
    }
    free(st);
}

void drisk_sql_clear(struct drisk_sql_stmt *st)
{
    if (st->lite) {
        sqlite3_clear_bindings(st->lite);
        return;
    }
    for (int i = 0; i < st->nparams; i++)
        st->params[i].val = NULL;
}

static struct pg_param *param(struct drisk_sql_stmt *st, int i)
{
    if (i < 1 || i > st->nparams)
        return NULL; /* as SQLite, a bind out of range does nothing */
    struct pg_param *p = &st->params[i - 1];
    p->binary = 0;
    return p;
}

void drisk_sql_bind_int64(struct drisk_sql_stmt *st, int i, int64_t v)
{
    if (st->lite) {
        sqlite3_bind_int64(st->lite, i, v);
        return;
    }
    struct pg_param *p = param(st, i);
    if (p) {
        p->len = snprintf(p->num, sizeof p->num, "%lld", (long long)v);
        p->val = p->num;
        p->type = 20; /* int8 */
    }
}

void drisk_sql_bind_int(struct drisk_sql_stmt *st, int i, int v)
{
    drisk_sql_bind_int64(st, i, v);
}

void drisk_sql_bind_double(struct drisk_sql_stmt *st, int i, double v)
{
    if (st->lite) {
        sqlite3_bind_double(st->lite, i, v);
        return;
    }
    struct pg_param *p = param(st, i);
    if (p) {
        p->len = snprintf(p->num, sizeof p->num, "%.17g", v);
        p->val = p->num;
        p->type = 701; /* float8 */
    }
}

void drisk_sql_bind_null(struct drisk_sql_stmt *st, int i)
{
    if (st->lite) {
        sqlite3_bind_null(st->lite, i);
        return;
    }
    struct pg_param *p = param(st, i);
    if (p)
        p->val = NULL;
}

void drisk_sql_bind_text(struct drisk_sql_stmt *st, int i, const char *s)
{
    if (st->lite) {
        if (s)
            sqlite3_bind_text(st->lite, i, s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st->lite, i);
        return;
    }
    struct pg_param *p = param(st, i);
    if (p) {
        p->val = s;
        p->len = s ? (int)strlen(s) : 0;
        if (s)
            p->type = 25; /* text */
    }
}

/* Copies n bytes into p's own buffer. */
static int param_copy(struct drisk_sql_stmt *st, struct pg_param *p, const void *v, size_t n)
{
    if (n + 1 > p->copy_cap) {
        char *c = realloc(p->copy, n + 1);
        if (!c) {
            set_err(st->db, "out of memory binding a parameter");
            p->val = NULL;
            return -1;
        }
        p->copy = c;
        p->copy_cap = n + 1;
    }
    memcpy(p->copy, v, n);
    p->copy[n] = '\0';
    p->val = p->copy;
    p->len = (int)n;
    return 0;
}

void drisk_sql_bind_text_copy(struct drisk_sql_stmt *st, int i, const char *s)
{
    if (st->lite) {
        if (s)
            sqlite3_bind_text(st->lite, i, s, -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(st->lite, i);
        return;
    }
    struct pg_param *p = param(st, i);
    if (p && s && !param_copy(st, p, s, strlen(s)))
        p->type = 25;
    else if (p)
        p->val = NULL;
}

void drisk_sql_bind_blob(struct drisk_sql_stmt *st, int i, const void *v, size_t n)
{
    if (st->lite) {
        sqlite3_bind_blob64(st->lite, i, v, n, SQLITE_STATIC);
        return;
    }
    struct pg_param *p = param(st, i);
    if (p && !param_copy(st, p, v, n)) {
        p->binary = 1;
        p->type = 17; /* bytea */
    }
}

/* Runs st (a cursor's declaration for a stream); 0 or -1. */
static int pg_run(struct drisk_sql_stmt *st)
{
    struct drisk_sql *db = st->db;
    /* parameter types come from the bindings: left to inference, an unknown in a CASE
     * or beside IS NULL resolves to text where the column is a number */
    const char *vals[st->nparams ? st->nparams : 1];
    int lens[st->nparams ? st->nparams : 1], fmts[st->nparams ? st->nparams : 1];
    Oid types[st->nparams ? st->nparams : 1];
    for (int i = 0; i < st->nparams; i++) {
        vals[i] = st->params[i].val;
        lens[i] = st->params[i].len;
        fmts[i] = st->params[i].binary;
        types[i] = st->params[i].type;
    }
    PGresult *res;
    if (st->flags & DRISK_SQL_STREAM) {
        snprintf(st->name, sizeof st->name, "drisk_c%u", ++db->names);
        size_t n = strlen(st->sql) + 64;
        char *decl = malloc(n);
        if (!decl) {
            set_err(db, "out of memory declaring a cursor");
            return -1;
        }
        /* WITH HOLD: the cursor outlives a transaction the caller commits between rows */
        snprintf(decl, n, "DECLARE %s NO SCROLL CURSOR WITH HOLD FOR %s", st->name, st->sql);
        res = PQexecParams(db->pg, decl, st->nparams, types, vals, lens, fmts, 0);
        free(decl);
        if (pg_check(db, res)) {
            PQclear(res);
            return -1;
        }
        PQclear(res);
        st->cursor_open = 1;
        return 0;
    }
    if (st->flags & DRISK_SQL_PERSISTENT) {
        if (!st->name[0]) {
            char name[24];
            snprintf(name, sizeof name, "drisk_s%u", ++db->names);
            res = PQprepare(db->pg, name, st->sql, st->nparams, types);
            int r = pg_check(db, res);
            PQclear(res);
            if (r)
                return -1;
            memcpy(st->name, name, sizeof name);
        }
        res = PQexecPrepared(db->pg, st->name, st->nparams, vals, lens, fmts, 0);
    } else {
        res = PQexecParams(db->pg, st->sql, st->nparams, types, vals, lens, fmts, 0);
    }
    if (pg_check(db, res)) {
        PQclear(res);
        return -1;
    }
    st->res = res;
    st->nrows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
    st->row = -1;
    return 0;
}

/* The cursor's next batch into res; 0 or -1. */
static int pg_fetch(struct drisk_sql_stmt *st)
{
    char sql[64];
    PQclear(st->res);
    snprintf(sql, sizeof sql, "FETCH %d FROM %s", STREAM_BATCH, st->name);
    st->res = PQexec(st->db->pg, sql);
    if (pg_check(st->db, st->res)) {
        PQclear(st->res);
        st->res = NULL;
        return -1;
    }
    st->nrows = PQntuples(st->res);
    st->cursor_done = st->nrows < STREAM_BATCH;
    st->row = -1;
    st->blob_col = -1;
    return 0;
}

int drisk_sql_step(struct drisk_sql_stmt *st)
{
    if (st->lite) {
        int r = sqlite3_step(st->lite);
        return r == SQLITE_ROW ? DRISK_SQL_ROW : r == SQLITE_DONE ? DRISK_SQL_DONE
                                                                  : DRISK_SQL_ERROR;
    }
    if (!st->ran) {
        st->ran = 1;
        if (pg_run(st))
            return DRISK_SQL_ERROR;
        if (st->cursor_open && pg_fetch(st))
            return DRISK_SQL_ERROR;
    }
    if (++st->row < st->nrows)
        return DRISK_SQL_ROW;
    if (st->cursor_open && !st->cursor_done) {
        if (pg_fetch(st))
            return DRISK_SQL_ERROR;
        if (++st->row < st->nrows)
            return DRISK_SQL_ROW;
    }
    return DRISK_SQL_DONE;
}

int drisk_sql_col_null(struct drisk_sql_stmt *st, int c)
{
    if (st->lite)
        return sqlite3_column_type(st->lite, c) == SQLITE_NULL;
    return PQgetisnull(st->res, st->row, c);
}

int64_t drisk_sql_col_int64(struct drisk_sql_stmt *st, int c)
{
    if (st->lite)
        return sqlite3_column_int64(st->lite, c);
    return strtoll(PQgetvalue(st->res, st->row, c), NULL, 10);
}

int drisk_sql_col_int(struct drisk_sql_stmt *st, int c)
{
    if (st->lite)
        return sqlite3_column_int(st->lite, c);
    return (int)strtol(PQgetvalue(st->res, st->row, c), NULL, 10);
}

double drisk_sql_col_double(struct drisk_sql_stmt *st, int c)
{
    if (st->lite)
        return sqlite3_column_double(st->lite, c);
    return strtod(PQgetvalue(st->res, st->row, c), NULL);
}

const char *drisk_sql_col_text(struct drisk_sql_stmt *st, int c)
{
    if (st->lite)
        return (const char *)sqlite3_column_text(st->lite, c);
    return PQgetisnull(st->res, st->row, c) ? NULL : PQgetvalue(st->res, st->row, c);
}

/* Decodes the bytea in column c of the current row once (text results show it as hex). */
static int pg_blob(struct drisk_sql_stmt *st, int c)
{
    if (st->blob_col == c && st->blob_row == st->row)
        return 0;
    PQfreemem(st->blob);
    st->blob = NULL;
    st->blob_len = 0;
    st->blob_col = -1;
    if (PQgetisnull(st->res, st->row, c))
        return -1;
    st->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(st->res, st->row, c),
                               &st->blob_len);
    if (!st->blob)
        return -1;
    st->blob_col = c;
    st->blob_row = st->row;
    return 0;
}

const void *drisk_sql_col_blob(struct drisk_sql_stmt *st, int c)
{
    if (st->lite)
        return sqlite3_column_blob(st->lite, c);
    if (PQftype(st->res, c) != 17 /* bytea */)
        return drisk_sql_col_text(st, c);
    return pg_blob(st, c) ? NULL : st->blob;
}

size_t drisk_sql_col_bytes(struct drisk_sql_stmt *st, int c)
{
    if (st->lite)
        return (size_t)sqlite3_column_bytes(st->lite, c);
    if (PQftype(st->res, c) == 17)
        return pg_blob(st, c) ? 0 : st->blob_len;
    return (size_t)PQgetlength(st->res, st->row, c);
}

/* ---- COPY ---- */

static int copy_room(struct drisk_sql_copy *c, size_t n)
{
    if (c->failed)
        return -1;
    if (c->len + n + 2 > c->cap) {
        size_t cap = c->cap ? c->cap : 1 << 16;
        while (c->len + n + 2 > cap)
            cap *= 2;
        char *p = realloc(c->p, cap);
        if (!p) {
            c->failed = 1;
            return -1;
        }
        c->p = p;
        c->cap = cap;
    }
    if (c->fields++)
        c->p[c->len++] = '\t';
    return 0;
}

void drisk_sql_copy_text(struct drisk_sql_copy *c, const char *s)
{
    if (!s) {
        if (!copy_room(c, 2)) {
            memcpy(c->p + c->len, "\\N", 2);
            c->len += 2;
        }
        return;
    }
    size_t n = strlen(s);
    if (copy_room(c, 2 * n))
        return;
    for (; *s; s++) { /* the text format's escapes: backslash, tab, newline, return */
        char e = *s == '\\' ? '\\' : *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : 0;
        if (e) {
            c->p[c->len++] = '\\';
            c->p[c->len++] = e;
        } else {
            c->p[c->len++] = *s;
        }
    }
}

void drisk_sql_copy_int64(struct drisk_sql_copy *c, int64_t v)
{
    if (!copy_room(c, 24))
        c->len += (size_t)snprintf(c->p + c->len, 24, "%lld", (long long)v);
}

void drisk_sql_copy_double(struct drisk_sql_copy *c, double v)
{
    if (isnan(v)) {
        drisk_sql_copy_text(c, NULL);
        return;
    }
    if (!copy_room(c, 32))
        c->len += (size_t)snprintf(c->p + c->len, 32, "%.17g", v);
}

void drisk_sql_copy_row(struct drisk_sql_copy *c)
{
    c->fields = 0;
    if (!copy_room(c, 1))
        c->p[c->len++] = '\n';
    c->fields = 0;
}

void drisk_sql_copy_clear(struct drisk_sql_copy *c)
{
    c->len = 0;
    c->fields = 0;
    c->failed = 0;
}

void drisk_sql_copy_free(struct drisk_sql_copy *c)
{
    free(c->p);
    memset(c, 0, sizeof *c);
}

int drisk_sql_copy_in(struct drisk_sql *db, const char *copy_sql, const struct drisk_sql_copy *c)
{
    if (db->kind != DRISK_SQL_PG) {
        set_err(db, "COPY is PostgreSQL's");
        return -1;
    }
    if (c->failed) {
        set_err(db, "out of memory building the rows to copy");
        return -1;
    }
    PGresult *res = PQexec(db->pg, copy_sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        pg_check(db, res);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    int ok = 1;
    /* in pieces of at most 1 MiB: libpq buffers what it sends */
    for (size_t off = 0; ok && off < c->len; off += 1 << 20) {
        size_t n = c->len - off < (1 << 20) ? c->len - off : (1 << 20);
        ok = PQputCopyData(db->pg, c->p + off, (int)n) == 1;
    }
    if (PQputCopyEnd(db->pg, ok ? NULL : "drisk stopped sending") != 1)
        ok = 0;
    int r = 0;
    while ((res = PQgetResult(db->pg))) {
        if (pg_check(db, res))
            r = -1;
        PQclear(res);
    }
    if (!ok && !r) {
        set_err(db, PQerrorMessage(db->pg));
        r = -1;
    }
    return r;
}
