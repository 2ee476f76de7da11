/* Evaluation metrics for drisk's targets (CONTRACT §3, §5; issue 3 §4): ranking and
 * calibration metrics of a binary probability (`late`, `lost`), error and quantile metrics
 * of the `eta` hours, alert metrics at a threshold, and the shipment-level lead time of
 * alerts computed over repeated snapshots (CONTRACT §4). Everything here is pure C with
 * no global state: every function is reentrant and safe to call from several threads on
 * the same (read-only) inputs. Inputs are borrowed for the duration of the call and never
 * modified; functions that must order rows allocate their own scratch block (for a
 * linear-time radix sort: 32 bytes a row plus 96 KB, so 160 MB for 5M rows) and free it
 * before returning; DRISK_ENOMEM if that fails. Results go to caller-owned variables and
 * structs, written only when DRISK_OK is returned.
 *
 * Common conventions of the binary functions:
 *   n       number of rows (snapshots); 0 is DRISK_EINVAL.
 *   y       labels, each exactly 0.0 or 1.0 (anything else is DRISK_EINVAL).
 *   score   the model's score, finite. The ranking metrics (AUC, AP, thresholds) use only
 *           its order; the probability metrics (Brier, log loss, ECE, reliability) require
 *           it to lie in [0, 1].
 *   weight  optional per-row weights (NULL: every row weighs 1), finite and >= 0, with a
 *           positive total. A row of integer weight k counts exactly as k copies of it.
 * A rate whose denominator is zero (AUC with one class absent, precision with nothing
 * flagged, ...) is NAN, never a made-up 0 or 0.5: callers that write JSON must print
 * such values as null. */
#ifndef DRISK_METRICS_H
#define DRISK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* ---- binary targets: ranking and calibration ---- */

/* ROC AUC: the probability that a random positive scores above a random negative, tied
 * pairs counting 1/2 (the Mann-Whitney statistic, equal to the trapezoidal area under the
 * ROC curve with tied scores as one step). Weighted, each pair counts w_pos * w_neg.
 * *auc is NAN when the positives or the negatives have zero total weight. O(n) time
 * after an O(n) radix sort; allocates 32 bytes a row. */
enum drisk_status drisk_metrics_roc_auc(size_t n, const double *y, const double *score,
                                        const double *weight, double *auc,
                                        struct drisk_error *err);

/* Average precision (PR-AUC), scikit-learn's average_precision_score: over the distinct
 * scores t in decreasing order, sum of (R_k - R_{k-1}) * P_k where P_k and R_k are the
 * precision and recall of flagging every row with score >= t, and R_0 = 0. Tied scores are
 * one threshold. *ap is NAN when the positives have zero total weight. Same cost as
 * drisk_metrics_roc_auc. */
enum drisk_status drisk_metrics_average_precision(size_t n, const double *y,
                                                  const double *score, const double *weight,
                                                  double *ap, struct drisk_error *err);

/* Brier score: weighted mean of (score - y)^2. Scores must lie in [0, 1]. */
enum drisk_status drisk_metrics_brier(size_t n, const double *y, const double *score,
                                      const double *weight, double *brier,
                                      struct drisk_error *err);

/* Log loss (cross-entropy, natural log): weighted mean of -(y ln p + (1 - y) ln(1 - p))
 * with p the score clipped to [DRISK_LOGLOSS_EPS, 1 - DRISK_LOGLOSS_EPS], as scikit-learn's
 * log_loss(..., eps=1e-15) (its default before 1.2; 1.2 defaults to the float64 epsilon,
 * which differs only for scores within 1e-15 of 0 or 1). Scores must lie in [0, 1]. */
#define DRISK_LOGLOSS_EPS 1e-15
enum drisk_status drisk_metrics_log_loss(size_t n, const double *y, const double *score,
                                         const double *weight, double *log_loss,
                                         struct drisk_error *err);

/* Reliability (calibration) table of equal-width probability bins. Bin b of n_bins covers
 * [b/n_bins, (b+1)/n_bins), the last one including 1.0; a score p goes to bin
 * min(floor(p * n_bins), n_bins - 1) computed in double. */
#define DRISK_ECE_BINS 10
#define DRISK_RELIABILITY_MAX_BINS 100

struct drisk_reliability_bin {
    double lo, hi;      /* the bin's probability range */
    size_t count;       /* rows in the bin (unweighted) */
    double weight;      /* their total weight (= count without weights) */
    double mean_score;  /* weighted mean predicted probability; NAN if weight is 0 */
    double observed;    /* weighted fraction of positives; NAN if weight is 0 */
};

struct drisk_reliability {
    size_t n_bins;
    size_t rows;        /* sum of the bins' counts: every row falls in exactly one bin */
    double ece;         /* sum over bins of weight/total * |mean_score - observed| */
    struct drisk_reliability_bin bins[DRISK_RELIABILITY_MAX_BINS];
};

/* Fills the caller-owned *table (no allocation; the struct is about 4 KB, so heap or
 * static storage is advisable in deep call stacks) with n_bins bins, 1..
 * DRISK_RELIABILITY_MAX_BINS. Scores must lie in [0, 1]. */
enum drisk_status drisk_metrics_reliability(size_t n, const double *y, const double *score,
                                            const double *weight, size_t n_bins,
                                            struct drisk_reliability *table,
                                            struct drisk_error *err);

/* Expected calibration error over DRISK_ECE_BINS (10) equal-width bins, each bin's
 * |mean predicted - observed rate| weighted by its share of the (weighted) rows. The same
 * value as drisk_metrics_reliability(..., DRISK_ECE_BINS, ...)'s ece, without the table. */
enum drisk_status drisk_metrics_ece(size_t n, const double *y, const double *score,
                                    const double *weight, double *ece,
                                    struct drisk_error *err);

/* The CONTRACT §5 `eval --json` numbers of a binary target in one call (one sort shared by
 * AUC and AP). Scores must lie in [0, 1]. */
struct drisk_binary_metrics {
    size_t rows;
    size_t positives;        /* rows with y = 1 (unweighted) */
    double weight;           /* total weight (= rows without weights) */
    double positive_weight;  /* total weight of the positives */
    double auc;              /* NAN if one class is absent */
    double pr_auc;           /* average precision; NAN if there are no positives */
    double brier;
    double log_loss;
    double ece;              /* DRISK_ECE_BINS bins */
};

enum drisk_status drisk_metrics_binary(size_t n, const double *y, const double *score,
                                       const double *weight, struct drisk_binary_metrics *out,
                                       struct drisk_error *err);

/* ---- binary targets: alerts at a threshold ---- */

/* A row is flagged (predicted positive) when score >= threshold. Counts are weighted. */
struct drisk_confusion {
    double threshold;
    double tp, fp, tn, fn;
    double precision;  /* tp / (tp + fp); NAN if nothing is flagged */
    double recall;     /* tp / (tp + fn); NAN if there are no positives */
    double f1;         /* 2tp / (2tp + fp + fn): 0 when tp = 0; NAN if that is 0/0 */
    double flagged;    /* (tp + fp) / total: the alert rate */
};

/* The confusion counts and rates of flagging score >= threshold. O(n), no allocation.
 * threshold may be any number except NAN (-INFINITY flags everything). */
enum drisk_status drisk_metrics_confusion(size_t n, const double *y, const double *score,
                                          const double *weight, double threshold,
                                          struct drisk_confusion *out,
                                          struct drisk_error *err);

/* A threshold chosen to reach a target, among the distinct scores of the rows. */
struct drisk_threshold_pick {
    int found;                  /* 0 if no threshold reaches the target */
    struct drisk_confusion at;  /* at.threshold is the chosen score; NAN when !found */
};

/* The lowest threshold (the most alerts, so the highest recall) whose precision is
 * >= target, target in (0, 1]. Precision is not monotone in the threshold: this is the
 * lowest one meeting the target, not the first one met when lowering it. */
enum drisk_status drisk_metrics_threshold_for_precision(size_t n, const double *y,
                                                        const double *score,
                                                        const double *weight, double target,
                                                        struct drisk_threshold_pick *out,
                                                        struct drisk_error *err);

/* The highest threshold (the fewest alerts) whose recall is >= target, target in (0, 1].
 * Not found only when there are no positives. */
enum drisk_status drisk_metrics_threshold_for_recall(size_t n, const double *y,
                                                     const double *score,
                                                     const double *weight, double target,
                                                     struct drisk_threshold_pick *out,
                                                     struct drisk_error *err);

/* ---- regression (`eta`, hours) ---- */

/* Weighted mean |truth - pred|. truth and pred finite; weight as above. */
enum drisk_status drisk_metrics_mae(size_t n, const double *truth, const double *pred,
                                    const double *weight, double *mae,
                                    struct drisk_error *err);

/* Weighted median of |truth - pred|: the mean of the lower median (the smallest error
 * whose cumulative weight reaches half the total) and the upper median (the smallest whose
 * cumulative weight exceeds half); without weights, the usual median (the mean of the two
 * middle values when n is even). Sorts: allocates 32 bytes a row. */
enum drisk_status drisk_metrics_median_abs_error(size_t n, const double *truth,
                                                 const double *pred, const double *weight,
                                                 double *median, struct drisk_error *err);

/* Pinball (quantile) loss of pred as the tau-quantile, tau in (0, 1): weighted mean of
 * tau * max(truth - pred, 0) + (1 - tau) * max(pred - truth, 0) (scikit-learn's
 * mean_pinball_loss with alpha = tau; half the MAE at tau = 0.5). */
enum drisk_status drisk_metrics_pinball(size_t n, const double *truth, const double *pred,
                                        const double *weight, double tau, double *loss,
                                        struct drisk_error *err);

/* Coverage: weighted fraction of rows with truth <= pred (about tau for a calibrated
 * tau-quantile). */
enum drisk_status drisk_metrics_coverage(size_t n, const double *truth, const double *pred,
                                         const double *weight, double *coverage,
                                         struct drisk_error *err);

/* The CONTRACT §5 `eval --json` numbers of `eta` in one call. p90_h may be NULL: its
 * fields are then NAN. */
struct drisk_eta_metrics {
    size_t rows;
    double mae_h;           /* of the P50 */
    double median_ae_h;     /* of the P50 */
    double pinball50_h;     /* pinball loss of the P50 at tau 0.5 */
    double pinball90_h;     /* pinball loss of the P90 at tau 0.9 */
    double p50_coverage;    /* fraction of truths <= P50: ideally 0.5 */
    double p90_coverage;    /* fraction of truths <= P90: ideally 0.9 */
};

enum drisk_status drisk_metrics_eta(size_t n, const double *truth_h, const double *p50_h,
                                    const double *p90_h, const double *weight,
                                    struct drisk_eta_metrics *out, struct drisk_error *err);

/* ---- alert lead time over repeated snapshots ---- */

/* The snapshots to judge, as parallel columns of n rows (borrowed, any order: the rows of
 * a shipment need not be contiguous or sorted by time). Rows of one shipment must agree on
 * y and promised_at (DRISK_EINVAL otherwise). Times are UTC seconds (base/timeutil.h). */
struct drisk_lead_input {
    size_t n;
    const int64_t *shipment;     /* any integer identifying the shipment (e.g. its rowid) */
    const int64_t *as_of;        /* the snapshot's time */
    const int64_t *promised_at;  /* the shipment's delivery promise */
    const double *score;         /* the model's score at as_of, not NAN */
    const double *y;             /* the shipment's label, 0 or 1 */
};

/* Shipment-level alert metrics: a shipment is flagged when any of its snapshots scores
 * >= threshold, first at the earliest such as_of; its lead time is promised_at minus that
 * first alert, in hours (negative when the first alert came after the promise, as `lost`
 * snapshots may). Unweighted: each shipment counts once. */
struct drisk_lead_time {
    double threshold;
    size_t shipments;               /* distinct shipments */
    size_t positives;               /* shipments with y = 1 */
    size_t flagged_positives;       /* positives flagged at least once */
    size_t flagged_negatives;       /* negatives flagged at least once (false alarms) */
    size_t flagged_before_promise;  /* flagged positives whose lead time is > 0 */
    double precision;               /* flagged_positives / all flagged; NAN if none */
    double recall;                  /* flagged_positives / positives; NAN if none */
    double median_lead_h;           /* over flagged positives (mean of the middle two when
                                     * even); NAN if none */
    double mean_lead_h;             /* over flagged positives; NAN if none */
};

/* Computes *out for one threshold (any number but NAN). Sorts the rows by shipment:
 * allocates about 40 bytes a row. The naive rule merchants use today can be judged by the
 * same function: pass its decision (1 if the rule would have alerted by as_of, else 0) as
 * score with threshold 0.5. */
enum drisk_status drisk_metrics_lead_time(const struct drisk_lead_input *in, double threshold,
                                          struct drisk_lead_time *out,
                                          struct drisk_error *err);

#endif
