/* Recalibration on the most recent labelled window. A model's calibration (Platt for
 * late and lost, conformal P50/P90 for eta) is fitted once on its validation window;
 * when the network shifts (a hub degrades, a season starts) its probabilities and
 * intervals drift away from what happens. `drisk recalibrate` refits only the calibration,
 * keeping the learner, on the snapshots whose labels became known in the last --window
 * days; `drisk eval --recalibrate-every` replays the same rule on a schedule to show what
 * a deployment running it (say nightly or weekly from cron) gets.
 *
 * Which snapshots a window holds: those of shipments whose label is certainly known by
 * the window's end T, and became known inside it, so that the window is not tilted
 * toward the early deliveries of recent shipments (a late label is known at the promise,
 * a lost one 21 days after it; eta waits 7 days after the promise, and the few parcels
 * still undelivered then are left out). */
#ifndef DRISK_RECALIBRATE_H
#define DRISK_RECALIBRATE_H

#include <stdint.h>

#include "data/store.h"
#include "base/error.h"
#include "models/model.h"
#include "training/snapshot.h"

#define DRISK_RECAL_WINDOW_DAYS 28
#define DRISK_RECAL_ETA_WAIT_S (7 * 86400)
#define DRISK_RECAL_MIN_ROWS 200 /* fewer window rows (or one class only): keep the old fit */

/* Labelled snapshots with the moments their labels are known (known: the window rule
 * above; avail: when the label exists at all, the delivery for eta). */
struct drisk_recal_pool {
    struct drisk_rows rows;
    size_t cap;            /* of known and avail */
    int64_t *known, *avail;
};

/* The moments of s's label for target, per the rule above. */
void drisk_recal_moments(const struct drisk_snapshot *s, enum drisk_target target,
                         int64_t *known, int64_t *avail);

/* 1 when s's label for target became known in (from, to] and exists by to. */
int drisk_recal_known_in(const struct drisk_snapshot *s, enum drisk_target target, int64_t from,
                         int64_t to);

/* Appends one labelled snapshot (rows.d features). -1 when out of memory. */
int drisk_recal_pool_add(struct drisk_recal_pool *p, const double *x, double y, int64_t known,
                         int64_t avail);

/* Refits m's calibration (PLATT for classifiers, CONFORMAL for eta) on the pool's rows
 * known in (t - window_s, t] and available by t. *rows gets their count. With fewer than
 * DRISK_RECAL_MIN_ROWS rows, or a single class, m is left as it was and *rows is 0. */
enum drisk_status drisk_recal_fit(const struct drisk_recal_pool *p, struct drisk_model *m,
                                  int64_t t, int64_t window_s, size_t *rows,
                                  struct drisk_error *err);

/* The earliest creation time of a shipment whose label can fall in a window of window_s
 * ending at t. */
int64_t drisk_recal_history_from(int64_t t, int64_t window_s);

/* Drops the rows no window ending after t can use (known <= t - window_s). */
void drisk_recal_pool_prune(struct drisk_recal_pool *p, int64_t t, int64_t window_s);

void drisk_recal_pool_free(struct drisk_recal_pool *p);

struct drisk_recalibrate_options {
    const char *target;
    int64_t model_id; /* 0: the active model of target */
    int64_t now;      /* the window's end (DRISK_TS_NONE: the store's last created_at) */
    int64_t window_s;
};

struct drisk_recalibrate_result {
    int64_t source_id, model_id; /* the model recalibrated, and the new one registered */
    int active;                  /* the new model is active (the source was) */
    int changed;                 /* 0: too few rows, nothing registered */
    size_t rows;
    char calibration[16];        /* "platt" or "conformal" */
    /* on the window, before and after: log loss and ECE (late, lost); P50 and P90
     * coverage (eta) */
    double before[2], after[2];
};

/* Refits the calibration of a model on the most recent labelled window and registers the
 * result as a new model (same learner and schema; its training window ends at the
 * recalibration window's end, so that eval's default --from starts after what it saw;
 * params record the source and the window), active when the source was. */
enum drisk_status drisk_recalibrate(struct drisk_store *store,
                                    const struct drisk_recalibrate_options *opts,
                                    struct drisk_recalibrate_result *res, struct drisk_error *err);

#endif
