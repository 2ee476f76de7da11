/* Probability calibration: maps a classifier's raw score (log-odds, SVM decision value)
 * to a probability that matches observed frequencies, fitted on the validation set (or,
 * with drisk recalibrate, on the most recent labelled window); for eta, conformal
 * intervals: P50 and P90 as the score shifted by quantiles of held-out residuals.
 * Platt scaling fits p = 1 / (1 + exp(a*score + b)); isotonic regression fits the best
 * non-decreasing step function (pool-adjacent-violators) and applies it by linear
 * interpolation between its breakpoints. A calibrator is attached to a model
 * (drisk_model_calibrate) and saved inside its file. */
#ifndef DRISK_CALIBRATE_H
#define DRISK_CALIBRATE_H

#include <stddef.h>

#include "base/error.h"

/* Stored as these integers in model files: never renumber. */
enum drisk_calib_kind {
    DRISK_CALIB_NONE = 0,
    DRISK_CALIB_PLATT = 1,
    DRISK_CALIB_ISOTONIC = 2,
    DRISK_CALIB_CONFORMAL = 3 /* eta: P50 = exp(score + q50), P90 = exp(score + q90) */
};

struct drisk_calibrator;

/* "none", "platt", "isotonic", "conformal"; NULL for an unknown value. Static storage. */
const char *drisk_calib_kind_name(enum drisk_calib_kind kind);
/* The kind named s; -1 if s names none. */
int drisk_calib_kind_parse(const char *s);

/* Fits a calibrator of kind (PLATT or ISOTONIC) on n (score, y) pairs, y in {0,1}, with
 * optional non-negative weights w (NULL: all 1). Needs both classes present. All arrays
 * are borrowed for the call. On DRISK_OK *out is new; free it with drisk_calibrator_free.
 * Platt uses Platt's smoothed targets ((N+ + 1)/(N+ + 2) and 1/(N- + 2)) and Newton's
 * method with a backtracking line search (Lin, Lin and Weng 2007). */
enum drisk_status drisk_calibrator_fit(enum drisk_calib_kind kind, const double *score,
                                       const double *y, const double *w, size_t n,
                                       struct drisk_calibrator **out, struct drisk_error *err);

/* The split-conformal 0.5 and 0.9 quantiles of n residuals (truth - prediction) with
 * optional non-negative weights w (NULL: all 1): the smallest residual whose cumulative
 * weight reaches q (W + W/n), for unit weights the ceil(q (n+1))-th, the finite-sample
 * guarantee of split conformal prediction. resid is sorted in place (w with it). n > 0. */
void drisk_conformal_quantiles(double *resid, double *w, size_t n, double *q50, double *q90);

/* Fits a conformal interval calibrator (DRISK_CALIB_CONFORMAL) on n residuals (log-hours
 * to delivery minus the model's score), sorted in place. On DRISK_OK *out is new. */
enum drisk_status drisk_calibrator_fit_conformal(double *resid, double *w, size_t n,
                                                 struct drisk_calibrator **out,
                                                 struct drisk_error *err);

/* A conformal calibrator's residual quantiles; -1 if c is not conformal. */
int drisk_calibrator_interval(const struct drisk_calibrator *c, double *q50, double *q90);

/* The calibrated probability of score. Reentrant; c is only read. */
double drisk_calibrator_apply(const struct drisk_calibrator *c, double score);

enum drisk_calib_kind drisk_calibrator_kind(const struct drisk_calibrator *c);

/* Platt's a and b (p = 1 / (1 + exp(a*score + b))); -1 if c is not Platt. */
int drisk_calibrator_platt(const struct drisk_calibrator *c, double *a, double *b);

/* Isotonic breakpoints: their count, and (when x, y non-NULL) pointers borrowed from c.
 * 0 if c is not isotonic. x is strictly increasing, y non-decreasing. */
size_t drisk_calibrator_isotonic(const struct drisk_calibrator *c, const double **x,
                                 const double **y);

/* NULL is a no-op. */
void drisk_calibrator_free(struct drisk_calibrator *c);

#endif
