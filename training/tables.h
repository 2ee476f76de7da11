/* The analyst's tables of one evaluated model (drisk report, eval --json and --report),
 * computed from the scored snapshots drisk_eval keeps (keep_rows): ROC and PR curves, a
 * threshold sweep, the lead-time distribution of alerts, a money backtest of the claim
 * policy (docs/POLICY.md) against always waiting, the naive rules and an oracle, slices
 * by carrier, service, lane and week with bootstrap intervals, and calibration by week
 * with drift warnings. docs/REPORT.md explains each and its limits. */
#ifndef DRISK_TABLES_H
#define DRISK_TABLES_H

#include <stdio.h>

#include "engine/policy.h"
#include "training/bootstrap.h"
#include "training/learn.h"

#define DRISK_CURVE_MAX 201
#define DRISK_SWEEP_N 10
#define DRISK_TABLE_SLICES 240 /* 3 x 31 names + 147 weeks */
#define DRISK_TABLE_WEEKS 160

/* Drift limits (docs/REPORT.md): a week's ECE above DRISK_WARN_ECE on at least
 * DRISK_WARN_MIN_ROWS snapshots, a feature's PSI above DRISK_WARN_PSI. */
#define DRISK_WARN_ECE 0.05
#define DRISK_WARN_MIN_ROWS 300
#define DRISK_WARN_PSI 0.25

struct drisk_curve {
    size_t n;
    double x[DRISK_CURVE_MAX], y[DRISK_CURVE_MAX]; /* ROC: FPR, TPR; PR: recall, precision */
};

struct drisk_sweep_row {
    double threshold, precision, recall, alerts_per_1000, median_lead_h;
};

/* When alerts come, per shipment, at the report's threshold. For late: hours before the
 * promise. For lost (a loss shows only after the promise, so leads there are negative):
 * hours before the platforms' "no scan for 7 days" rule fires, and also before the
 * promise. recall_at[k]: share of the positive shipments first flagged at least
 * 24, 48, 72 h ahead of the reference (k = 0, 1, 2); naive_recall_at: the naive rule's,
 * ahead of the promise. */
struct drisk_lead_dist {
    const char *reference; /* "promise" or "the 7-day no-scan rule" */
    double recall_at[3], naive_recall_at[3];
    double median_h, naive_median_h; /* the model vs the reference; the naive rule vs the
                                      * promise */
    double promise_median_h;          /* the model vs the promise */
    double silent_median_h;           /* lost: hours the parcel had been silent (since its
                                       * last scan) when first flagged */
    size_t positives;
};

/* Cost per 1,000 shipments of the policy run on the model's probabilities (the other
 * target's at 0), of always waiting, of the naive rule (late: notify at an exception
 * scan or when the promise passes; lost: reship after 7 days without a scan) and of an
 * oracle that knows each outcome. */
struct drisk_money {
    size_t shipments, lost, late;
    double model, wait, naive, oracle;
    size_t acted[DRISK_ACTION_COUNT]; /* shipments by the model policy's final action */
};

struct drisk_slice_row {
    int kind;         /* DRISK_SLICE_* or 3 for a week */
    char name[64];
    size_t rows, shipments;
    double base_rate; /* share of positive snapshots (eta: P90 coverage) */
    struct drisk_ci auc; /* eta: MAE h, no interval */
    double ece;          /* eta: P50 coverage */
    int warn;            /* a week past the drift limit */
};

struct drisk_tables {
    enum drisk_target target;
    double threshold;
    size_t shipments;
    double base_rate;            /* positive snapshots / snapshots */
    struct drisk_ci auc, loss;   /* the whole window, shipment bootstrap (eta: loss only) */
    struct drisk_curve roc, pr;
    struct drisk_sweep_row sweep[DRISK_SWEEP_N];
    struct drisk_lead_dist lead;
    struct drisk_money money;
    size_t n_slices;
    struct drisk_slice_row slices[DRISK_TABLE_SLICES];
    size_t weeks_warned;
};

/* Computes t from res (which needs scored rows, see drisk_eval_options.keep_rows) under
 * the merchant settings s, thresholding alerts at threshold. */
enum drisk_status drisk_tables_compute(const struct drisk_eval_result *res, enum drisk_target target,
                                       const struct drisk_settings *s, double threshold,
                                       struct drisk_tables *t, struct drisk_error *err);

/* The tables as the members of a JSON object (no braces): "window", "reliability",
 * "curves", "sweep", "lead_time", "money" (late and lost), "slice_intervals" and "drift"
 * (res's importance and PSI per feature, and the weeks past the ECE limit). */
void drisk_tables_json(FILE *f, const struct drisk_tables *t, const struct drisk_eval_result *res);

#endif
