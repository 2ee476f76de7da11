/* Confidence intervals by resampling shipments (a cluster bootstrap): the snapshots of one
 * shipment are correlated, so a resample draws whole shipments with replacement and every
 * snapshot of a drawn shipment counts as many times as it was drawn. Deterministic for a
 * seed, so a decision taken on an interval can be reproduced. */
#ifndef DRISK_BOOTSTRAP_H
#define DRISK_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "models/model.h"

#define DRISK_BOOTSTRAP_REPS 200

/* A figure on the whole sample and the 2.5 % and 97.5 % percentiles of its resamples. */
struct drisk_ci {
    double value, lo, hi;
};

/* Two models' predictions of the same n snapshots (a, b; for eta the P50 in a and b, the
 * P90 in a90 and b90, else those may be NULL), with labels y and the snapshot's shipment.
 * The differences are b minus a: for late and lost d_auc (ROC AUC) and d_loss (log loss);
 * for eta d_loss is the mean of the P50 and P90 pinball losses (hours) and d_auc is NAN.
 * Resamples where AUC is undefined (one class) are skipped. */
struct drisk_paired_ci {
    struct drisk_ci d_auc, d_loss;
    int reps; /* resamples used */
};

/* Sorts v[0..n) and moves its distinct values to the front, in order; returns how many
 * there are (the shipments behind n snapshot rows, for instance). */
size_t drisk_unique_i64(int64_t *v, size_t n);

enum drisk_status drisk_bootstrap_paired(size_t n, const int64_t *shipment, const double *y,
                                         const double *a, const double *a90, const double *b,
                                         const double *b90, enum drisk_target target, int reps,
                                         uint64_t seed, struct drisk_paired_ci *out,
                                         struct drisk_error *err);

#endif
