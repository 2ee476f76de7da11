/* Snapshot datasets (CONTRACT §4): every shipment as it looked right after each of its
 * scans and every 24 h after creation while undelivered, with its features and labels.
 * History is replayed in one time-ordered pass: a merge of the shipments' events through
 * a heap feeds the network statistics and builds each snapshot exactly when its moment
 * comes, so nothing after as_of can reach its features, and memory holds only the
 * shipments still in flight at the replay's current moment. */
#ifndef DRISK_SNAPSHOT_H
#define DRISK_SNAPSHOT_H

#include <stdint.h>
#include <stdio.h>

#include "data/store.h"
#include "engine/features.h"
#include "base/error.h"
#include "models/model.h"

struct drisk_snapshot {
    const struct drisk_shipment *sh;
    int64_t as_of;
    int late;     /* 1 late, 0 on time; -1 unlabeled or not a late snapshot (as_of >= promise) */
    int lost;     /* 1 lost, 0 not; -1 unlabeled or past promised_at + 21 days */
    double eta_h; /* hours from as_of to delivered_at; NAN when not delivered */
    const double *x; /* schema->n_features values */
};

/* Called for each snapshot in as_of order; everything it points to is borrowed for the
 * call. A non-zero return stops the replay (DRISK_EINVAL, the callback's err kept). */
typedef int (*drisk_snapshot_fn)(const struct drisk_snapshot *snap, void *ctx,
                                 struct drisk_error *err);

struct drisk_snapshot_options {
    int64_t emit_from, emit_to; /* snapshots of shipments created in [emit_from, emit_to) */
    int64_t history_from;       /* shipments created from here on feed the network */
    int64_t now;                /* no event or snapshot after this moment (DRISK_TS_NONE:
                                 * the last created_at in the store) */
    int labeled_only;           /* skip shipments whose outcome is unknown */
};

/* Replays the store's history per opts and calls fn for each snapshot. */
enum drisk_status drisk_snapshots_run(struct drisk_store *store,
                                      const struct drisk_feature_schema *schema,
                                      const struct drisk_snapshot_options *opts,
                                      drisk_snapshot_fn fn, void *ctx, struct drisk_error *err);

/* Feeds net (empty, caller-owned) every event of the store's history up to now: scans,
 * deliveries, and the moments shipments became known late or on time, in time order, as
 * drisk_snapshots_run does before each snapshot. The server starts from this state and
 * feeds live events after it. */
enum drisk_status drisk_network_replay(struct drisk_store *store, int64_t now,
                                       struct drisk_network *net, struct drisk_error *err);

#define DRISK_LOST_WINDOW_S (21 * 86400) /* lost snapshots: up to promised_at + 21 days */

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
