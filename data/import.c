/* The importer: reads CSV or JSON Lines row by row (data/csv.h, data/jsonl.h), maps
 * columns to interchange fields by name, validates each field into a struct
 * drisk_shipment / drisk_scan, and writes through the store inside one transaction.
 * Nothing here holds more than one row: memory is bounded whatever the file size. */
#include "data/import.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/csv.h"
#include "data/export.h"
#include "data/jsonl.h"
#include "base/log.h"
#include "base/progress.h"
#include "base/text.h"
#include "base/timeutil.h"
#include "engine/vocab.h"

enum field {
    F_SHIPMENT_ID, F_MERCHANT_ID, F_ORDER_ID, F_CARRIER, F_SERVICE, F_ORIGIN, F_DESTINATION,
    F_WEIGHT_KG, F_DECLARED_VALUE, F_CREATED_AT, F_PROMISED_AT, F_DELIVERED_AT, F_OUTCOME,
    F_TS, F_EVENT, F_LOCATION, F_REASON, F_DESCRIPTION,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "shipment_id", "merchant_id", "order_id", "carrier", "service", "origin", "destination",
    "weight_kg", "declared_value", "created_at", "promised_at", "delivered_at", "outcome",
    "ts", "event", "location", "reason", "description",
};

enum kind { KIND_SHIPMENTS, KIND_SCANS };

/* Which fields each kind reads, and which of them are required. */
static const enum field shipment_fields[] = {
    F_SHIPMENT_ID, F_MERCHANT_ID, F_ORDER_ID, F_CARRIER, F_SERVICE, F_ORIGIN, F_DESTINATION,
    F_WEIGHT_KG, F_DECLARED_VALUE, F_CREATED_AT, F_PROMISED_AT, F_DELIVERED_AT, F_OUTCOME,
};
static const enum field shipment_required[] = {
    F_SHIPMENT_ID, F_CARRIER, F_SERVICE, F_ORIGIN, F_DESTINATION, F_CREATED_AT, F_PROMISED_AT,
};
static const enum field scan_fields[] = {
    F_SHIPMENT_ID, F_MERCHANT_ID, F_TS, F_EVENT, F_LOCATION, F_REASON, F_DESCRIPTION,
};
static const enum field scan_required[] = { F_SHIPMENT_ID, F_TS, F_EVENT };

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int field_of_kind(enum kind kind, int f)
{
    const enum field *fs = kind == KIND_SHIPMENTS ? shipment_fields : scan_fields;
    size_t n = kind == KIND_SHIPMENTS ? N_OF(shipment_fields) : N_OF(scan_fields);
    for (size_t i = 0; i < n; i++)
        if ((int)fs[i] == f)
            return 1;
    return 0;
}

/* Maps a column/key name (case-insensitive, surrounding spaces ignored) to a field of
 * this kind; -1 for a column we do not use (other tools' extra columns are ignored). */
static int field_by_name(enum kind kind, const char *name, size_t len)
{
    while (len > 0 && (*name == ' ' || *name == '\t')) {
        name++;
        len--;
    }
    while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
        len--;
    if (len == 0)
        return -1;
    int first = name[0] | 0x20; /* every name starts with a lowercase letter */
    for (int f = 0; f < F_COUNT; f++)
        if (field_names[f][0] == first && strlen(field_names[f]) == len &&
            strncasecmp(field_names[f], name, len) == 0)
            return field_of_kind(kind, f) ? f : -1;
    return -1;
}

/* One input row as field values; v[f] is NULL when the field is absent or null. */
struct row {
    const char *v[F_COUNT];
    size_t len[F_COUNT];
    int64_t line;
};

struct source {
    const char *path, *name;
    enum kind kind;
    FILE *f;
    int jsonl;
    struct drisk_csv *csv;
    struct drisk_jsonl *jl;
    struct drisk_csv_record crec;
    struct drisk_jsonl_record jrec;
    int n_cols;
    int col_field[DRISK_CSV_MAX_FIELDS];
    int64_t size; /* bytes, or -1 when unknown (a pipe) */
};

struct importer {
    struct drisk_store *store;
    const struct drisk_import_options *opts;
    struct drisk_import_result *result;
    FILE *rejects;
    struct writer *w;          /* write_batch's arrays */
    int64_t fresh;             /* new scans of the batch being written */
    struct timespec t0;
    struct drisk_meter meter; /* the current file's bytes */
};

/* A field-level problem found while validating a row. */
struct problem {
    int field;      /* -1: the row as a whole */
    int has_record; /* the row's fields were read and can be written to the rejects */
    char msg[256];
};

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static int64_t source_offset(const struct source *src)
{
    return src->jsonl ? drisk_jsonl_offset(src->jl) : drisk_csv_offset(src->csv);
}

/* The current row as text for the rejects file (owned by the caller; NULL when out of
 * memory): a JSON line as read, a CSV row re-encoded as one CSV line. */
static char *render_record(const struct source *src)
{
    if (src->jsonl)
        return strndup(src->jrec.raw, src->jrec.raw_len);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    for (int i = 0; i < src->crec.n_fields; i++) {
        if (i)
            fputc(',', f);
        drisk_csv_put_field(f, src->crec.field[i]);
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void report(struct importer *imp, const struct source *src, int64_t line,
                   const struct problem *pb, const char *record)
{
    imp->result->problems++;
    if (imp->rejects) {
        fprintf(imp->rejects, "%lld,", (long long)line);
        drisk_csv_put_field(imp->rejects, src->name);
        fputc(',', imp->rejects);
        drisk_csv_put_field(imp->rejects, pb->field >= 0 ? field_names[pb->field] : "");
        fputc(',', imp->rejects);
        drisk_csv_put_field(imp->rejects, pb->msg);
        fputc(',', imp->rejects);
        if (record)
            drisk_csv_put_field(imp->rejects, record);
        fputc('\n', imp->rejects);
    }
    if (imp->opts->on_problem && imp->result->problems <= imp->opts->max_problems) {
        char msg[512];
        if (pb->field >= 0)
            snprintf(msg, sizeof msg, "%s:%lld: field %s: %s", src->name, (long long)line,
                     field_names[pb->field], pb->msg);
        else
            snprintf(msg, sizeof msg, "%s:%lld: %s", src->name, (long long)line, pb->msg);
        if (imp->meter.shown && drisk_progress_mode == DRISK_PROGRESS_LIVE) {
            fputc('\n', stderr); /* below the live line */
            imp->meter.shown = 0;
        }
        imp->opts->on_problem(msg, imp->opts->problem_ctx);
    }
}

static int set_problem(struct problem *pb, int field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_problem(struct problem *pb, int field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pb->field = field;
    pb->has_record = 1;
    vsnprintf(pb->msg, sizeof pb->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* Prints at most 60 bytes of a value, with control bytes replaced, for messages. */
static const char *shown(const char *v, size_t len, char buf[80])
{
    size_t n = len < 60 ? len : 60;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)v[i] < 32 ? '?' : v[i];
    if (len > 60) {
        memcpy(buf + n, "...", 4);
    } else {
        buf[n] = '\0';
    }
    return buf;
}

static void trim(const char **v, size_t *len)
{
    while (*len > 0 && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*len)--;
    }
    while (*len > 0 && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
        (*len)--;
}

/* Copies a text field into dst (cap bytes). Codes and ids are trimmed; free text
 * (do_trim = 0) is kept as given. lower: fold ASCII to lowercase. */
static int take_text(const struct row *r, int f, char *dst, size_t cap, int required,
                     int do_trim, int lower, struct problem *pb)
{
    const char *v = r->v[f];
    size_t len = r->len[f];
    if (v && do_trim)
        trim(&v, &len);
    if (!v || len == 0) {
        dst[0] = '\0';
        return required ? set_problem(pb, f, "missing: this field is required") : 0;
    }
    if (len >= cap)
        return set_problem(pb, f, "longer than %zu bytes", cap - 1);
    if (!drisk_utf8_valid(v, len))
        return set_problem(pb, f, "not valid UTF-8 (save the file as UTF-8)");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        int free_text_ok = !do_trim && (c == '\t' || c == '\n' || c == '\r');
        if ((c < 0x20 || c == 0x7f) && !free_text_ok)
            return set_problem(pb, f, "holds a control character (byte 0x%02x at position %zu): "
                               "%s", c, i + 1, do_trim ? "ids and codes are printable text"
                               : "free text may hold tabs and line breaks, nothing else below 0x20");
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
    if (lower)
        for (size_t i = 0; i < len; i++)
            if (dst[i] >= 'A' && dst[i] <= 'Z')
                dst[i] = (char)(dst[i] - 'A' + 'a');
    return 0;
}

static int take_ts(const struct row *r, int f, int64_t *out, int required, struct problem *pb)
{
    const char *v = r->v[f], *why;
    size_t len = r->len[f];
    char buf[80];
    if (v)
        trim(&v, &len);
    if (!v || len == 0) {
        *out = DRISK_TS_NONE;
        return required ? set_problem(pb, f, "missing: this field is required") : 0;
    }
    if (drisk_ts_parse(v, len, out, &why))
        return set_problem(pb, f, "%s (got \"%s\")", why, shown(v, len, buf));
    if (*out < DRISK_TS_PLAUSIBLE_MIN || *out >= DRISK_TS_PLAUSIBLE_MAX)
        return set_problem(pb, f, "is outside the years 2000 to 2099 that shipment times fall "
                           "in (got \"%s\"): check the date", shown(v, len, buf));
    return 0;
}

static int take_amount(const struct row *r, int f, double max, double *out, struct problem *pb)
{
    const char *v = r->v[f];
    size_t len = r->len[f];
    char buf[80];
    if (v)
        trim(&v, &len);
    *out = NAN;
    if (!v || len == 0)
        return 0;
    if (drisk_parse_double(v, len, out) || *out < 0)
        return set_problem(pb, f, "must be a number >= 0 with a '.' decimal point (got \"%s\")",
                           shown(v, len, buf));
    if (*out > max)
        return set_problem(pb, f, "%s is over %g, the most this field takes", shown(v, len, buf),
                           max);
    return 0;
}

static int validate_shipment(const struct row *r, struct drisk_shipment *sh, struct problem *pb)
{
    char buf[80];
    if (take_text(r, F_SHIPMENT_ID, sh->shipment_id, sizeof sh->shipment_id, 1, 1, 0, pb) ||
        take_text(r, F_MERCHANT_ID, sh->merchant, sizeof sh->merchant, 0, 1, 0, pb) ||
        take_text(r, F_ORDER_ID, sh->order_id, sizeof sh->order_id, 0, 1, 0, pb) ||
        take_text(r, F_CARRIER, sh->carrier, sizeof sh->carrier, 1, 1, 1, pb) ||
        take_text(r, F_SERVICE, sh->service, sizeof sh->service, 1, 1, 1, pb) ||
        take_text(r, F_ORIGIN, sh->origin, sizeof sh->origin, 1, 1, 0, pb) ||
        take_text(r, F_DESTINATION, sh->destination, sizeof sh->destination, 1, 1, 0, pb) ||
        take_amount(r, F_WEIGHT_KG, DRISK_WEIGHT_KG_MAX, &sh->weight_kg, pb) ||
        take_amount(r, F_DECLARED_VALUE, DRISK_DECLARED_VALUE_MAX, &sh->declared_value, pb) ||
        take_ts(r, F_CREATED_AT, &sh->created_at, 1, pb) ||
        take_ts(r, F_PROMISED_AT, &sh->promised_at, 1, pb) ||
        take_ts(r, F_DELIVERED_AT, &sh->delivered_at, 0, pb))
        return -1;
    if (!sh->merchant[0])
        memcpy(sh->merchant, "default", 8);
    sh->outcome = DRISK_OUTCOME_NONE;
    if (r->v[F_OUTCOME]) {
        const char *v = r->v[F_OUTCOME];
        size_t len = r->len[F_OUTCOME];
        trim(&v, &len);
        int oc = drisk_outcome_parse(v, len);
        if (oc < 0)
            return set_problem(pb, F_OUTCOME,
                               "unknown outcome \"%s\": use delivered, lost, returned or leave "
                               "it empty while in flight", shown(v, len, buf));
        sh->outcome = oc;
    }
    if (sh->promised_at < sh->created_at)
        return set_problem(pb, F_PROMISED_AT, "is before created_at");
    if (sh->delivered_at != DRISK_TS_NONE) {
        if (sh->delivered_at < sh->created_at)
            return set_problem(pb, F_DELIVERED_AT, "is before created_at");
        if (sh->outcome == DRISK_OUTCOME_NONE)
            sh->outcome = DRISK_OUTCOME_DELIVERED;
        else if (sh->outcome != DRISK_OUTCOME_DELIVERED)
            return set_problem(pb, F_OUTCOME, "is %s but delivered_at is set: clear one of them",
                               drisk_outcome_name(sh->outcome));
    } else if (sh->outcome == DRISK_OUTCOME_DELIVERED) {
        return set_problem(pb, F_DELIVERED_AT, "missing: required when outcome is delivered");
    }
    return 0;
}

static int validate_scan(const struct row *r, char *merchant, char *shipment_id,
                         struct drisk_scan *sc, struct problem *pb)
{
    char buf[80];
    if (take_text(r, F_SHIPMENT_ID, shipment_id, DRISK_ID_MAX, 1, 1, 0, pb) ||
        take_text(r, F_MERCHANT_ID, merchant, DRISK_ID_MAX, 0, 1, 0, pb) ||
        take_ts(r, F_TS, &sc->ts, 1, pb) ||
        take_text(r, F_LOCATION, sc->location, sizeof sc->location, 0, 1, 0, pb) ||
        take_text(r, F_DESCRIPTION, sc->description, sizeof sc->description, 0, 0, 0, pb))
        return -1;
    const char *v = r->v[F_EVENT];
    size_t len = r->len[F_EVENT];
    if (v)
        trim(&v, &len);
    if (!v || len == 0)
        return set_problem(pb, F_EVENT, "missing: this field is required");
    sc->event = drisk_event_parse(v, len);
    if (!sc->event)
        return set_problem(pb, F_EVENT,
                           "unknown event \"%s\": use a drisk event code, an AfterShip tag, or "
                           "an EasyPost or Shippo status (docs/VOCABULARY.md)",
                           shown(v, len, buf));
    sc->reason = DRISK_REASON_NONE;
    if ((v = r->v[F_REASON]) != NULL) {
        len = r->len[F_REASON];
        trim(&v, &len);
        int rs = drisk_reason_parse(v, len);
        if (rs < 0)
            return set_problem(pb, F_REASON,
                               "unknown reason \"%s\": use weather_delay, address_issue, damaged, "
                               "delayed, customs, held, refused, missorted, "
                               "recipient_unavailable or other", shown(v, len, buf));
        sc->reason = rs;
    }
    return 0;
}

_Static_assert(DRISK_RECORD_FIELDS == F_COUNT, "struct drisk_record matches the fields");

int drisk_record_field(int kind, const char *name, size_t len)
{
    return field_by_name(kind ? KIND_SCANS : KIND_SHIPMENTS, name, len);
}

static int record_problem(const struct problem *pb, char *msg, size_t cap)
{
    if (pb->field >= 0)
        snprintf(msg, cap, "field %s: %s", field_names[pb->field], pb->msg);
    else
        snprintf(msg, cap, "%s", pb->msg);
    return -1;
}

static void record_row(const struct drisk_record *rec, struct row *r)
{
    memcpy(r->v, rec->v, sizeof r->v);
    memcpy(r->len, rec->len, sizeof r->len);
    r->line = 0;
}

int drisk_record_shipment(const struct drisk_record *rec, struct drisk_shipment *sh, char *msg,
                          size_t cap)
{
    struct row r;
    struct problem pb = { -1, 0, "" };
    record_row(rec, &r);
    memset(sh, 0, sizeof *sh);
    return validate_shipment(&r, sh, &pb) ? record_problem(&pb, msg, cap) : 0;
}

int drisk_record_scan(const struct drisk_record *rec, char merchant[DRISK_ID_MAX],
                      char shipment_id[DRISK_ID_MAX], struct drisk_scan *sc, char *msg,
                      size_t cap)
{
    struct row r;
    struct problem pb = { -1, 0, "" };
    record_row(rec, &r);
    memset(sc, 0, sizeof *sc);
    return validate_scan(&r, merchant, shipment_id, sc, &pb) ? record_problem(&pb, msg, cap) : 0;
}

/* Reads the next row of src into r: 1, 0 at the end, -1 for a row-level problem. */
/* Reads the next row of src into r: 1, 0 at the end, -1 for a row-level problem, -2 for
 * a read error that ends the input (pb holds the message in both cases). */
static int next_row(struct source *src, struct row *r, struct problem *pb)
{
    struct drisk_error perr;
    int rc;
    memset(r->v, 0, sizeof r->v);
    if (src->jsonl) {
        rc = drisk_jsonl_next(src->jl, &src->jrec, &perr);
        r->line = src->jrec.line;
    } else {
        rc = drisk_csv_next(src->csv, &src->crec, &perr);
        r->line = src->crec.line;
    }
    if (rc < 0) {
        set_problem(pb, -1, "%s", perr.msg);
        pb->has_record = 0;
        return perr.status == DRISK_EIO ? -2 : -1;
    }
    if (rc == 0)
        return 0;
    if (src->jsonl) {
        for (int k = 0; k < src->jrec.n; k++) {
            const char *key = src->jrec.key[k];
            int f = field_by_name(src->kind, key, strlen(key));
            for (int q = 0; q < k; q++)
                if (strcmp(src->jrec.key[q], key) == 0)
                    return set_problem(pb, -1, "field \"%s\" appears twice in the object",
                                       key);
            if (f >= 0 && !src->jrec.is_null[k]) {
                r->v[f] = src->jrec.val[k];
                r->len[f] = src->jrec.len[k];
            }
        }
        return 1;
    }
    if (src->crec.n_fields != src->n_cols)
        return set_problem(pb, -1, "row has %d fields but the header has %d (a missing or extra "
                           "comma, or an unquoted line break?)", src->crec.n_fields, src->n_cols);
    for (int i = 0; i < src->n_cols; i++) {
        int f = src->col_field[i];
        if (f >= 0) {
            r->v[f] = src->crec.field[i];
            r->len[f] = src->crec.len[i];
        }
    }
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static void source_close(struct source *src)
{
    drisk_csv_free(src->csv);
    drisk_jsonl_free(src->jl);
    if (src->f && src->f != stdin)
        fclose(src->f);
    memset(src, 0, sizeof *src);
}

/* Opens the file and, for CSV, reads and checks the header. */
static enum drisk_status source_open(struct source *src, const char *path, enum kind kind,
                                     struct drisk_error *err)
{
    memset(src, 0, sizeof *src);
    src->path = path;
    src->kind = kind;
    src->name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    src->size = -1;
    if (strcmp(path, "-") == 0) {
        src->f = stdin;
    } else if (!(src->f = fopen(path, "rb"))) {
        return drisk_error_set(err, DRISK_EINVAL, "cannot open %s file %s: %s (check the path)",
                               kind == KIND_SHIPMENTS ? "shipments" : "scans", path,
                               strerror(errno));
    }
    struct stat stt;
    if (fstat(fileno(src->f), &stt) == 0) {
        if (S_ISDIR(stt.st_mode))
            return drisk_error_set(err, DRISK_EINVAL, "%s is a directory: give the %s file in it",
                                   path, kind == KIND_SHIPMENTS ? "shipments" : "scans");
        if (S_ISREG(stt.st_mode))
            src->size = (int64_t)stt.st_size;
    }
    int c = getc(src->f);
    if (c != EOF)
        ungetc(c, src->f);
    src->jsonl = ends_with(path, ".jsonl") || ends_with(path, ".ndjson") ||
                 ends_with(path, ".json") || c == '{';
    if (src->jsonl) {
        if (!(src->jl = drisk_jsonl_create(src->f)))
            return drisk_error_set(err, DRISK_ENOMEM, "out of memory opening %s", path);
        return DRISK_OK;
    }
    if (!(src->csv = drisk_csv_create(src->f)))
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory opening %s", path);
    struct drisk_error perr;
    int rc = drisk_csv_next(src->csv, &src->crec, &perr);
    if (rc <= 0)
        return drisk_error_set(err, rc < 0 ? perr.status : DRISK_EINVAL, "%s:1: %s", src->name,
                               rc < 0 ? perr.msg : "the file is empty: expected a header row");
    int seen[F_COUNT] = { 0 };
    src->n_cols = src->crec.n_fields;
    for (int i = 0; i < src->n_cols; i++) {
        int f = field_by_name(kind, src->crec.field[i], src->crec.len[i]);
        src->col_field[i] = f;
        if (f >= 0 && seen[f]++)
            return drisk_error_set(err, DRISK_EINVAL, "%s:1: column %s appears twice in the header",
                                   src->name, field_names[f]);
    }
    const enum field *req = kind == KIND_SHIPMENTS ? shipment_required : scan_required;
    size_t n_req = kind == KIND_SHIPMENTS ? N_OF(shipment_required) : N_OF(scan_required);
    char missing[256] = "";
    for (size_t i = 0; i < n_req; i++) {
        if (!seen[req[i]]) {
            if (missing[0])
                strncat(missing, ", ", sizeof missing - strlen(missing) - 1);
            strncat(missing, field_names[req[i]], sizeof missing - strlen(missing) - 1);
        }
    }
    if (missing[0])
        return drisk_error_set(err, DRISK_EINVAL,
                               "%s:1: the header lacks required column(s) %s (is this a %s file? "
                               "see the interchange format in docs/IMPORT.md)",
                               src->name, missing, kind == KIND_SHIPMENTS ? "shipments" : "scans");
    return DRISK_OK;
}

/* Reading and validating (a reader thread) runs beside writing to SQLite (the calling
 * thread), handing rows over in batches: the two halves of an import each take a core.
 * Rows keep their order, so problems are reported in file order. */
#define BATCH_ROWS 8192
#define N_BATCHES 4

struct slot {
    int64_t line;
    int64_t offset; /* bytes consumed after this row (progress) */
    int ok;         /* 1: the payload is valid; 0: pb says what is wrong */
    int fatal;      /* a read error: pb says which; the input ends here */
    struct problem pb;
    char *record; /* a problem row's text for the rejects file (owned) */
    union {
        struct drisk_shipment sh;
        struct {
            char merchant[DRISK_ID_MAX], shipment_id[DRISK_ID_MAX];
            struct drisk_scan sc;
        } scan;
    } u;
};

struct batch {
    struct slot slot[BATCH_ROWS];
    int n;
    int eof;  /* the last batch */
    int full; /* owned by the writer until it clears this */
};

/* What write_batch hands the store, per batch. */
struct writer {
    const struct drisk_shipment *ships[BATCH_ROWS];
    struct drisk_scan_put scans[BATCH_ROWS];
    enum drisk_upsert res[BATCH_ROWS];
    int at[BATCH_ROWS], got[BATCH_ROWS], verdict[BATCH_ROWS];
};

struct pipeline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *b; /* N_BATCHES */
    int stop;        /* the writer gave up: the reader ends */
    struct source *src;
    int want_records;
};

static void *reader_main(void *arg)
{
    struct pipeline *pl = arg;
    struct source *src = pl->src;
    struct row r;
    for (unsigned k = 0;; k++) {
        struct batch *b = &pl->b[k % N_BATCHES];
        pthread_mutex_lock(&pl->mu);
        while (b->full && !pl->stop)
            pthread_cond_wait(&pl->cv, &pl->mu);
        int stop = pl->stop;
        pthread_mutex_unlock(&pl->mu);
        if (stop)
            return NULL;
        b->n = 0;
        b->eof = 0;
        while (b->n < BATCH_ROWS) {
            struct slot *sl = &b->slot[b->n];
            int got = next_row(src, &r, &sl->pb);
            if (got == 0) {
                b->eof = 1;
                break;
            }
            sl->line = r.line;
            sl->record = NULL;
            sl->fatal = got == -2;
            if (got > 0)
                sl->ok = src->kind == KIND_SHIPMENTS
                             ? validate_shipment(&r, &sl->u.sh, &sl->pb) == 0
                             : validate_scan(&r, sl->u.scan.merchant, sl->u.scan.shipment_id,
                                             &sl->u.scan.sc, &sl->pb) == 0;
            else
                sl->ok = 0;
            /* Scans are checked against the store by the writer, so any scan may become a
             * problem row: keep its text when there is a rejects file to write it to. */
            if ((!sl->ok && sl->pb.has_record) ||
                (pl->want_records && src->kind == KIND_SCANS && sl->ok))
                sl->record = render_record(src);
            sl->offset = source_offset(src);
            b->n++;
            if (sl->fatal) {
                b->eof = 1;
                break;
            }
        }
        pthread_mutex_lock(&pl->mu);
        b->full = 1;
        pthread_cond_broadcast(&pl->cv);
        pthread_mutex_unlock(&pl->mu);
        if (b->eof)
            return NULL;
    }
}

/* The store's verdict on a scan row it could not write, as the row's problem. */
static void scan_problem(struct slot *sl, int result)
{
    char b1[80], b2[80];
    const char *merchant = sl->u.scan.merchant, *shipment_id = sl->u.scan.shipment_id;
    if (result == DRISK_SCAN_PUT_AMBIGUOUS)
        set_problem(&sl->pb, F_MERCHANT_ID, "missing, and shipment \"%s\" belongs to "
                    "several merchants: give merchant_id",
                    shown(shipment_id, strlen(shipment_id), b1));
    else if (merchant[0])
        set_problem(&sl->pb, F_SHIPMENT_ID,
                    "unknown shipment \"%s\" of merchant \"%s\": import its row with "
                    "--shipments first (or in the same command)",
                    shown(shipment_id, strlen(shipment_id), b1),
                    shown(merchant, strlen(merchant), b2));
    else
        set_problem(&sl->pb, F_SHIPMENT_ID,
                    "unknown shipment \"%s\": import its row with --shipments first "
                    "(or in the same command)",
                    shown(shipment_id, strlen(shipment_id), b1));
}

/* Writes the valid rows among the batch's first end slots in one store call
 * (PostgreSQL: one COPY), leaving each row's verdict in verdict[]. */
static enum drisk_status write_rows(struct importer *imp, const struct source *src,
                                    struct batch *b, int end, int *verdict,
                                    struct drisk_error *err)
{
    struct writer *w = imp->w;
    const struct drisk_shipment **ships = w->ships;
    struct drisk_scan_put *scans = w->scans;
    int *at = w->at, *got = w->got, n = 0;
    for (int i = 0; i < end; i++) {
        struct slot *sl = &b->slot[i];
        if (!sl->ok || sl->fatal)
            continue;
        at[n] = i;
        if (src->kind == KIND_SHIPMENTS)
            ships[n++] = &sl->u.sh;
        else
            scans[n++] = (struct drisk_scan_put){ sl->u.scan.merchant, sl->u.scan.shipment_id,
                                                  &sl->u.scan.sc };
    }
    enum drisk_status rc;
    if (src->kind == KIND_SHIPMENTS) {
        rc = drisk_store_put_shipments(imp->store, ships, (size_t)n, w->res, err);
        for (int k = 0; !rc && k < n; k++)
            got[k] = (int)w->res[k];
    } else {
        size_t fresh = 0;
        rc = drisk_store_put_scans(imp->store, scans, (size_t)n, got, &fresh, err);
        imp->fresh += fresh;
    }
    for (int k = 0; !rc && k < n; k++)
        verdict[at[k]] = got[k];
    return rc;
}

/* Writes a batch: its valid rows go to the store in one call, then every row up to the
 * first unreadable one is accounted for in line order: counted, or reported as a
 * problem. */
static enum drisk_status write_batch(struct importer *imp, const struct source *src,
                                     struct batch *b, struct drisk_import_counts *c,
                                     struct drisk_error *err)
{
    int *verdict = imp->w->verdict, end = 0;
    imp->fresh = 0;
    while (end < b->n && !b->slot[end].fatal)
        end++;
    enum drisk_status rc = write_rows(imp, src, b, end, verdict, err);
    for (int i = 0; i < end && !rc; i++) {
        struct slot *sl = &b->slot[i];
        c->read++;
        if (!sl->ok) {
            c->rejected++;
            report(imp, src, sl->line, &sl->pb, sl->record);
        } else if (src->kind == KIND_SHIPMENTS) {
            if (verdict[i] == DRISK_UPSERT_INSERTED)
                c->inserted++;
            else if (verdict[i] == DRISK_UPSERT_UPDATED)
                c->updated++;
            else
                c->unchanged++;
        } else if (verdict[i] == DRISK_SCAN_PUT_STORED) {
            c->unchanged++; /* until the new ones are known, below */
        } else {
            scan_problem(sl, verdict[i]);
            c->rejected++;
            report(imp, src, sl->line, &sl->pb, sl->record);
        }
    }
    if (!rc) { /* of the stored scans, the new ones */
        c->inserted += imp->fresh;
        c->unchanged -= imp->fresh;
    }
    return rc;
}

static enum drisk_status import_rows(struct importer *imp, struct source *src,
                                     struct drisk_import_counts *c, struct drisk_error *err)
{
    enum drisk_status rc = DRISK_OK;
    struct pipeline pl = { .src = src, .want_records = imp->rejects != NULL };
    pthread_t reader;

    pl.b = calloc(N_BATCHES, sizeof *pl.b);
    if (!pl.b)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory importing %s", src->name);
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.cv, NULL);
    if (pthread_create(&reader, NULL, reader_main, &pl) != 0) {
        rc = drisk_error_set(err, DRISK_EIO, "cannot start the reader thread");
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &imp->t0);
    char what[300];
    snprintf(what, sizeof what, "import %s", src->name);
    drisk_meter_start(&imp->meter, what, "bytes", src->size > 0 ? src->size : 0);
    for (unsigned k = 0; !rc; k++) {
        struct batch *b = &pl.b[k % N_BATCHES];
        pthread_mutex_lock(&pl.mu);
        while (!b->full)
            pthread_cond_wait(&pl.cv, &pl.mu);
        pthread_mutex_unlock(&pl.mu);
        if (!rc)
            rc = write_batch(imp, src, b, c, err);
        for (int i = 0; i < b->n; i++) {
            struct slot *sl = &b->slot[i];
            if (sl->fatal && !rc)
                rc = drisk_error_set(err, DRISK_EIO, "%s:%lld: %s: nothing was imported",
                                     src->name, (long long)sl->line, sl->pb.msg);
            free(sl->record);
            sl->record = NULL;
        }
        int eof = b->eof;
        if (b->n && drisk_meter_due(&imp->meter))
            drisk_meter_show(&imp->meter, b->slot[b->n - 1].offset, "%lld rows",
                             (long long)c->read);
        pthread_mutex_lock(&pl.mu);
        b->full = 0;
        if (rc)
            pl.stop = 1;
        pthread_cond_broadcast(&pl.cv);
        pthread_mutex_unlock(&pl.mu);
        if (eof)
            break;
    }
    pthread_join(reader, NULL);
    if (!rc)
        drisk_meter_end(&imp->meter, source_offset(src));
out:
    /* Batches the reader filled after the writer stopped may still own record texts. */
    for (int k = 0; k < N_BATCHES; k++)
        for (int i = 0; i < BATCH_ROWS; i++)
            free(pl.b[k].slot[i].record);
    pthread_cond_destroy(&pl.cv);
    pthread_mutex_destroy(&pl.mu);
    free(pl.b);
    return rc;
}

static enum drisk_status import_file(struct importer *imp, const char *path, enum kind kind,
                                     struct drisk_import_counts *c, struct drisk_error *err)
{
    struct source src;
    enum drisk_status rc = source_open(&src, path, kind, err);
    if (!rc)
        rc = import_rows(imp, &src, c, err);
    if (!rc && src.f && ferror(src.f))
        rc = drisk_error_set(err, DRISK_EIO, "error reading %s", src.name);
    source_close(&src);
    return rc;
}

enum drisk_status drisk_import(struct drisk_store *store, const struct drisk_import_options *opts,
                               struct drisk_import_result *result, struct drisk_error *err)
{
    struct importer imp = { .store = store, .opts = opts, .result = result };
    enum drisk_status rc;
    memset(result, 0, sizeof *result);
    if (opts->shipments_path && opts->scans_path && strcmp(opts->shipments_path, "-") == 0 &&
        strcmp(opts->scans_path, "-") == 0)
        return drisk_error_set(err, DRISK_EINVAL,
                               "only one of --shipments and --scans can read standard input");
    char rejects_tmp[4096] = "";
    if (opts->rejects_path) {
        struct stat rs, is;
        const char *inputs[2] = { opts->shipments_path, opts->scans_path };
        if (stat(opts->rejects_path, &rs) == 0)
            for (int i = 0; i < 2; i++)
                if (inputs[i] && stat(inputs[i], &is) == 0 && is.st_dev == rs.st_dev &&
                    is.st_ino == rs.st_ino)
                    return drisk_error_set(err, DRISK_EINVAL,
                                           "--skip-invalid %s is the input file itself: give "
                                           "another path for the rejected rows",
                                           opts->rejects_path);
        /* Written beside the target and renamed into place once the import committed. */
        if ((size_t)snprintf(rejects_tmp, sizeof rejects_tmp, "%s.tmp", opts->rejects_path) >=
            sizeof rejects_tmp)
            return drisk_error_set(err, DRISK_EINVAL, "the rejects file path is too long");
        if (!(imp.rejects = fopen(rejects_tmp, "w")))
            return drisk_error_set(err, DRISK_EINVAL, "cannot write the rejects file %s: %s",
                                   rejects_tmp, strerror(errno));
        fputs("line,file,field,problem,record\n", imp.rejects);
    }
    if (!(imp.w = calloc(1, sizeof *imp.w))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory starting the import");
        goto out;
    }
    drisk_store_set_cache_bytes(store, (int64_t)256 << 20);
    if ((rc = drisk_store_begin_bulk(store, err)))
        goto out;
    if (opts->shipments_path &&
        (rc = import_file(&imp, opts->shipments_path, KIND_SHIPMENTS, &result->shipments, err)))
        goto out;
    if (opts->scans_path &&
        (rc = import_file(&imp, opts->scans_path, KIND_SCANS, &result->scans, err)))
        goto out;
    if (result->problems && !opts->rejects_path) {
        rc = drisk_error_set(err, DRISK_EINVAL,
                             "%lld invalid row%s: nothing was imported. Fix %s, or pass "
                             "--skip-invalid REJECTS_FILE to import the valid rows and set the "
                             "others aside",
                             (long long)result->problems, result->problems == 1 ? "" : "s",
                             result->problems == 1 ? "it" : "them");
        goto out;
    }
    if (imp.rejects && (ferror(imp.rejects) | fflush(imp.rejects))) {
        rc = drisk_error_set(err, DRISK_EIO, "error writing the rejects file %s: nothing was "
                             "imported", opts->rejects_path);
        goto out;
    }
    struct timespec t_commit;
    clock_gettime(CLOCK_MONOTONIC, &t_commit);
    rc = drisk_store_commit(store, err);
    DRISK_LOG(DRISK_LOG_DEBUG, "committed in %.2f s", seconds_since(&t_commit));
out:
    if (rc) {
        drisk_store_rollback(store);
        /* Nothing was written: say so in the counts too. */
        result->shipments.inserted = result->shipments.updated = 0;
        result->scans.inserted = result->scans.updated = 0;
    }
    if (imp.rejects) {
        int close_failed = fclose(imp.rejects) != 0;
        if (rc || close_failed) {
            unlink(rejects_tmp);
            if (!rc)
                rc = drisk_error_set(err, DRISK_EIO, "the import was committed, but writing the "
                                     "rejected rows to %s failed", opts->rejects_path);
        } else if (rename(rejects_tmp, opts->rejects_path) != 0) {
            rc = drisk_error_set(err, DRISK_EIO, "the import was committed, but the rejected "
                                 "rows could not be moved from %s to %s: %s", rejects_tmp,
                                 opts->rejects_path, strerror(errno));
        }
    }
    drisk_store_set_cache_bytes(store, (int64_t)64 << 20);
    free(imp.w);
    return rc;
}
