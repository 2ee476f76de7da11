/* Importing shipments and scans in the interchange format (CONTRACT §2), CSV or JSON
 * Lines, into the store: validation of every field, foreign status vocabularies mapped
 * (engine/vocab.h), atomic by default, idempotent, streaming in bounded memory. */
#ifndef DRISK_IMPORT_H
#define DRISK_IMPORT_H

#include <stdint.h>

#include "data/store.h"
#include "base/error.h"

struct drisk_import_counts {
    int64_t read, inserted, updated, unchanged, rejected;
};

struct drisk_import_result {
    struct drisk_import_counts shipments, scans;
    int64_t problems; /* invalid rows found (all of them, not only those reported) */
};

/* Called for each of the first max_problems problems with a one-line message naming
 * the file, line, field and what is wrong. */
typedef void (*drisk_problem_fn)(const char *message, void *ctx);

struct drisk_import_options {
    const char *shipments_path; /* NULL: none; "-": standard input */
    const char *scans_path;     /* NULL: none; "-": standard input */
    /* NULL: atomic (any invalid row and nothing is written). Otherwise valid rows are
     * imported and rejected ones are written to this CSV with their line and reason. */
    const char *rejects_path;
    int max_problems; /* how many problems to report through on_problem (e.g. 20) */
    drisk_problem_fn on_problem;
    void *problem_ctx;
};

/* Imports the shipments file, then the scans file, in one transaction. Format: JSON
 * Lines for names ending .jsonl/.ndjson/.json or content starting with '{', else CSV.
 * Returns DRISK_OK (committed), DRISK_EINVAL (bad input: in atomic mode nothing was
 * written; err says how many rows were invalid), or another status on I/O failure
 * (nothing written). *result is filled in every case. */
enum drisk_status drisk_import(struct drisk_store *store, const struct drisk_import_options *opts,
                               struct drisk_import_result *result, struct drisk_error *err);

/* One record of the interchange format from any source (an HTTP body's object, say):
 * each field's text by position in drisk_record_field's order, v[f] NULL when absent.
 * The validators below are the importers' own, so every input path agrees. */
#define DRISK_RECORD_FIELDS 18
struct drisk_record {
    const char *v[DRISK_RECORD_FIELDS];
    size_t len[DRISK_RECORD_FIELDS];
};

/* The rules every field of every input path follows (docs/IMPORT.md, "Field rules"):
 * text is UTF-8 without NUL; ids and codes hold no control character at all, free text
 * (a scan's description) none but tab, line feed and carriage return; times fall in
 * [DRISK_TS_PLAUSIBLE_MIN, DRISK_TS_PLAUSIBLE_MAX); amounts are numbers >= 0 up to their
 * field's cap. */
#define DRISK_TS_PLAUSIBLE_MIN 946684800LL  /* 2000-01-01T00:00:00Z */
#define DRISK_TS_PLAUSIBLE_MAX 4102444800LL /* 2100-01-01T00:00:00Z */
#define DRISK_WEIGHT_KG_MAX 100000.0        /* 100 t: a full truck, far beyond any parcel */
#define DRISK_DECLARED_VALUE_MAX 1e9

/* The field named name (case-insensitive) if shipments (kind 0) or scans (kind 1) use it,
 * else -1 (other fields are ignored, as extra columns are). */
int drisk_record_field(int kind, const char *name, size_t len);
/* Validates a shipment / scan record. 0, or -1 with "field X: what is wrong" in msg. A
 * shipment without merchant_id gets "default"; a scan's merchant is "" when absent. */
int drisk_record_shipment(const struct drisk_record *r, struct drisk_shipment *sh, char *msg,
                          size_t cap);
int drisk_record_scan(const struct drisk_record *r, char merchant[DRISK_ID_MAX],
                      char shipment_id[DRISK_ID_MAX], struct drisk_scan *sc, char *msg,
                      size_t cap);

#endif
