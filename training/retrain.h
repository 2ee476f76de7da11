/* drisk retrain: the nightly job. At a moment `now` it
 *   1. holds the store's "retrain" lock (a second run at once does nothing and says so);
 *   2. trains a challenger on the shipments created in the rolling window before the
 *      holdout, with only the labels known when the holdout starts; the window ends a
 *      label's maturity before that (the 95th percentile of the promise lead, plus 21 days
 *      for lost and 7 for eta), so that nearly all its shipments have their labels and the
 *      last part, which validates and calibrates, is not skewed toward the early ones;
 *   3. scores the champion (the target's active model) and the challenger on exactly the
 *      same holdout: the snapshots whose labels became known in the last holdout days
 *      (training/recalibrate.h's rule), shipments the challenger never saw;
 *   4. promotes the challenger only when it is better beyond noise (the 95 % interval of a
 *      shipment bootstrap of the loss difference lies below zero), not worse in ranking
 *      beyond noise (late/lost: the AUC difference's interval reaches zero or above), and
 *      calibrated within bounds on the holdout; the first model of a target is promoted;
 *   5. keeps at most `keep` inactive models of the target, never the active one.
 * Every decision comes with one sentence saying why. */
#ifndef DRISK_RETRAIN_H
#define DRISK_RETRAIN_H

#include <stdint.h>

#include "data/store.h"
#include "base/error.h"
#include "training/bootstrap.h"
#include "training/learn.h"

/* Calibration bounds on the holdout: late/lost ECE; eta P50 and P90 coverage. */
#define DRISK_RETRAIN_MAX_ECE 0.05
#define DRISK_RETRAIN_P50_TOLERANCE 0.10
#define DRISK_RETRAIN_P90_TOLERANCE 0.05
#define DRISK_RETRAIN_MAX_PRUNED 256
#define DRISK_RETRAIN_MATURITY_Q 0.95

struct drisk_retrain_options {
    struct drisk_train_options train; /* target, learner and its settings; the window, the
                                       * labels' cut-off and activation are set here */
    int64_t now;       /* the job's moment (DRISK_TS_NONE: one second after the store's last
                        * shipment was created) */
    int64_t window_s;  /* the training window before the holdout */
    int64_t holdout_s; /* the labels known in (now - holdout_s, now] judge both models */
    int keep;          /* inactive models of the target kept (>= 0) */
    uint64_t seed;     /* of the bootstrap */
};

/* One side of the comparison on the holdout. */
struct drisk_retrain_side {
    int64_t id;           /* 0: none */
    char algorithm[32];
    int64_t train_until;
    struct drisk_binary_metrics m;  /* late, lost */
    struct drisk_eta_metrics eta;   /* eta */
};

struct drisk_retrain_result {
    int64_t now, train_from, train_until, holdout_from; /* training: shipments created in
                                           * [train_from, train_until) */
    size_t holdout_rows, holdout_shipments;
    struct drisk_retrain_side champion, challenger;
    struct drisk_paired_ci diff;  /* challenger minus champion (no champion: zeros) */
    int champion_saw_holdout;     /* the champion trained on shipments created after
                                   * holdout_from: its holdout figures flatter it */
    int promoted;
    char reason[400];
    size_t n_pruned;
    int64_t pruned[DRISK_RETRAIN_MAX_PRUNED];
    double seconds;
};

/* Runs the job. A run that cannot take the lock, train or score returns an error and has
 * registered nothing it would leave behind (a challenger that could not be judged is
 * removed again). */
enum drisk_status drisk_retrain(struct drisk_store *store, const struct drisk_retrain_options *opts,
                                struct drisk_retrain_result *res, struct drisk_error *err);

#endif
