/* Training and evaluation (drisk train / drisk eval): snapshot datasets with a time-based
 * split, fitting through the models/ function table, calibration, the model registry,
 * and honest evaluation on later shipments than the model was trained on. */
#ifndef DRISK_LEARN_H
#define DRISK_LEARN_H

#include <stdint.h>
#include <stdio.h>

#include "data/store.h"
#include "base/error.h"
#include "models/model.h"
#include "training/metrics.h"

enum drisk_activate_policy {
    DRISK_ACTIVATE_IF_FIRST = 0, /* the first model of a target becomes active (default) */
    DRISK_ACTIVATE_ALWAYS,
    DRISK_ACTIVATE_NEVER         /* registered inactive: drisk retrain decides after its gate */
};

/* The learner `drisk train` uses without --model, for every target: the one that wins
 * the quality matrix (bench/RESULTS.md, "Quality matrix"). */
#define DRISK_TRAIN_DEFAULT_MODEL "gbdt"

struct drisk_train_options {
    const char *target;    /* late, lost, eta */
    const char *algorithm; /* a learner name (models/model.h), or "auto": fit every learner
                            * of the target and keep the best on validation (calibrated log
                            * loss for late/lost, mean pinball loss of P50 and P90 for eta);
                            * NULL: DRISK_TRAIN_DEFAULT_MODEL */
    struct drisk_fit_options fit; /* the learners' settings (drisk_fit_options_init); the
                            * L2 strength, tolerance and class weights of each family are
                            * set by training itself */
    int64_t from;          /* ... and at or after this (INT64_MIN: from the first; older
                            * shipments still feed the network's outcome histories) */
    int64_t until;         /* train on shipments created before this (INT64_MAX: all) */
    int64_t labels_by;     /* > 0: only snapshots whose label was known by this moment
                            * (training/recalibrate.h's rule), as a job run then would
                            * have seen them; 0: every labelled snapshot */
    int64_t min_count;     /* feature vocabularies (engine/features.h) */
    double valid_fraction; /* the last part of the training period validates (0.15) */
    enum drisk_activate_policy activate;
};

#define DRISK_TRAIN_MAX_CANDIDATES 8

/* One fitted learner's validation figures (after calibration). */
struct drisk_train_candidate {
    char algorithm[32];
    struct drisk_binary_metrics valid;  /* classification */
    struct drisk_eta_metrics valid_eta; /* eta */
    double seconds_fit;
};

struct drisk_train_result {
    int64_t model_id;
    int active;
    char algorithm[32];
    size_t n_candidates;  /* > 1 with --model auto, in the order fitted */
    struct drisk_train_candidate candidates[DRISK_TRAIN_MAX_CANDIDATES];
    size_t train_rows, valid_rows, n_features;
    double l2;
    struct drisk_binary_metrics valid;   /* classification */
    struct drisk_eta_metrics valid_eta;  /* eta */
    double seconds_snapshots, seconds_fit;
};

enum drisk_status drisk_train(struct drisk_store *store, const struct drisk_train_options *opts,
                              struct drisk_train_result *res, struct drisk_error *err);

struct drisk_eval_options {
    const char *target;
    int64_t model_id;    /* 0: the active model of target */
    int64_t from, to;    /* shipments created in [from, to) */
    double threshold;    /* alert threshold on the probability */
    FILE *predictions;   /* if not NULL: shipment_id,as_of,target,label,score rows */
    int64_t recalibrate_every_s; /* > 0: walk forward, refitting the model's calibration
                                  * every so often (at from, from + every, ...) on the most
                                  * recent labelled window as drisk recalibrate does
                                  * (training/recalibrate.h); 0: the model as stored */
    int64_t recalibrate_window_s; /* that window (DRISK_RECAL_WINDOW_DAYS when 0) */
    int64_t labels_from, labels_to; /* labels_to > 0: only snapshots whose label became
                                  * known in (labels_from, labels_to] (a holdout of the
                                  * labels a job sees at labels_to) */
    int keep_rows;               /* hand every scored snapshot back in res->scored */
    int drift;                   /* also: each feature's importance (mean |contribution|
                                  * over a sample of the window's snapshots) and its
                                  * population stability index between the model's training
                                  * window and this one (res->features) */
};

#define DRISK_EVAL_MAX_SLICES 64

/* One evaluated snapshot. carrier, service and lane index the result's names. */
struct drisk_eval_row {
    int64_t shipment, as_of, promised_at, created_at;
    double y, score, p90, naive; /* naive: today's rule fired (1) or not (0) */
    double value;                /* declared value (NAN: none) */
    float since_scan_h;          /* hours since the last scan at as_of (NAN: unknown) */
    unsigned char carrier, service, lane;
    unsigned char late, lost;    /* the shipment's outcome, whatever the target */
};

/* Slice names: carriers, services and lanes (origin > destination) in order of first
 * appearance; past DRISK_EVAL_NAMES - 1 of a kind the last is "other". */
#define DRISK_EVAL_NAMES 32
enum { DRISK_SLICE_CARRIER = 0, DRISK_SLICE_SERVICE, DRISK_SLICE_LANE, DRISK_SLICE_KINDS };

/* With drift: one feature's importance and stability. */
struct drisk_eval_feature {
    char name[64];
    double importance; /* mean |contribution| to the score over the sample */
    double psi;        /* population stability index, training window -> this window */
};

struct drisk_eval_slice {
    char kind[8];  /* "carrier" or "service" */
    char name[64];
    struct drisk_binary_metrics m;
    struct drisk_eta_metrics eta;
};

struct drisk_eval_result {
    int64_t model_id;
    char algorithm[32];
    struct drisk_model_meta meta; /* the model's stored metadata (params, validation
                                   * metrics, and with --model auto every candidate's) */
    size_t rows;
    struct drisk_binary_metrics m;
    struct drisk_reliability reliability;
    struct drisk_eta_metrics eta;
    struct drisk_lead_time alerts;      /* the model at threshold, per shipment */
    struct drisk_lead_time naive;       /* exception scan or promise passed */
    size_t n_slices;
    struct drisk_eval_slice slices[DRISK_EVAL_MAX_SLICES];
    size_t recalibrations;          /* walk forward: refits made (windows too thin skipped) */
    double seconds;
    struct drisk_eval_row *scored;  /* with keep_rows: the rows, in snapshot order (the same
                                     * order for any model of the window); rows of them */
    char names[DRISK_SLICE_KINDS][DRISK_EVAL_NAMES][64];
    int n_names[DRISK_SLICE_KINDS];
    int64_t train_from, train_until; /* the model's training window */
    struct drisk_eval_feature *features; /* with drift: n_features of them */
    size_t n_features, drift_sample, train_sample; /* sizes of the two samples compared */
    int no_naive;                   /* live scores: no naive rule was evaluated */
    size_t train_rows, train_positives; /* with drift: the model's validation window's
                                         * snapshots and positives (its base rate) */
};

/* The live comparison behind drisk report --live: the scores the server stored for the
 * active model champion_id and its shadow shadow_id of target (data/live.h, shadow
 * scores) of shipments created in [from, to) whose labels are now known, as two results
 * with their rows (res[0] the champion, res[1] the shadow), aligned row for row. The
 * labels follow CONTRACT §3-4 (late: scores before the promise; lost: up to 21 days
 * after it; eta: delivered shipments). No naive rule and no drift figures. */
enum drisk_status drisk_eval_live(struct drisk_store *store, const char *target,
                                  int64_t champion_id, int64_t shadow_id, int64_t from,
                                  int64_t to, double threshold, struct drisk_eval_result res[2],
                                  struct drisk_error *err);

/* Releases what drisk_eval allocated in res (the kept rows). */
void drisk_eval_result_free(struct drisk_eval_result *res);

enum drisk_status drisk_eval(struct drisk_store *store, const struct drisk_eval_options *opts,
                             struct drisk_eval_result *res, struct drisk_error *err);

#endif
