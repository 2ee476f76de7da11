/* Snapshot datasets (CONTRACT §4): every shipment as it looked right after each of its
 * scans and every 24 h after creation while undelivered, with its features and labels,
 * built on the history replay (data/replay.h, which also serves the server's start). */
#ifndef DRISK_SNAPSHOT_H
#define DRISK_SNAPSHOT_H

#include <stdint.h>
#include <stdio.h>

#include "data/replay.h"
#include "data/store.h"
#include "engine/features.h"
#include "base/error.h"
#include "models/model.h"


/* A growable matrix of snapshot rows: n rows of d features (x, row-major) and a label
 * each (y). Zero-initialize with d set; release with drisk_rows_free. */
struct drisk_rows {
    size_t n, cap, d;
    double *x, *y;
};

/* Appends a row; -1 when out of memory (the rows kept as they were). */
int drisk_rows_push(struct drisk_rows *r, const double *x, double y);
void drisk_rows_free(struct drisk_rows *r);

/* Reads model id (0: target's active one) from the registry with its feature schema and
 * loads it: *row (release with drisk_store_model_row_free), *schema and *m (release with
 * drisk_model_free) are filled on DRISK_OK; a model of another target is refused. */
enum drisk_status drisk_registry_load(struct drisk_store *store, int64_t id, const char *target,
                                      struct drisk_model_row *row,
                                      struct drisk_feature_schema *schema,
                                      struct drisk_model **m, struct drisk_error *err);

/* m's prediction of every row, in batches: p gets the probability (late, lost) or the
 * P50 hours (eta), p90 (may be NULL) the P90 hours; each r->n doubles. */
enum drisk_status drisk_rows_predict(const struct drisk_model *m, const struct drisk_rows *r,
                                     double *p, double *p90, struct drisk_error *err);

/* The snapshot's label for target (0/1, or hours for eta); NAN when the snapshot is not
 * one of target's (unlabeled, or outside its window). Targets are enum drisk_target
 * (models/model.h), parsed with drisk_target_parse. */
double drisk_snapshot_label(const struct drisk_snapshot *s, enum drisk_target target);

/* The feature schema of a training window: vocabularies from the shipments created before
 * until (all when INT64_MAX), keeping categories seen at least min_count times. */
enum drisk_status drisk_snapshot_schema(struct drisk_store *store, int64_t until,
                                        int64_t min_count, struct drisk_feature_schema *schema,
                                        struct drisk_error *err);

/* Writes target's snapshots of shipments created in [from, until) as CSV to out:
 * shipment_id, merchant_id, as_of, label, then one column per feature (schema names).
 * Sets *rows. */
enum drisk_status drisk_snapshot_export(struct drisk_store *store,
                                        const struct drisk_feature_schema *schema,
                                        enum drisk_target target, int64_t from,
                                        int64_t until, FILE *out, int64_t *rows,
                                        struct drisk_error *err);

#endif
