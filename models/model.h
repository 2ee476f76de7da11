/* The learners' function table and the model object every other module uses. Like
 * ggml's backend table or SQLite's sqlite3_io_methods: a learner is a const
 * `struct drisk_model_ops` (fit, predict, explain, save, load, free) found by name in
 * one registry, and a model is a `struct drisk_model` header that the learner's own
 * struct embeds as its first member. Training and serving call only the drisk_model_*
 * functions below, so a new learner (libsvm SVM, MLP) joins by adding its ops to the
 * registry in models/model.c, without touching them.
 *
 * Life of a model: drisk_model_fit (or drisk_model_load) creates it; the caller may then
 * set metadata, metrics and a calibrator (drisk_model_calibrate); from the moment it is
 * shared it is immutable: drisk_model_predict and drisk_model_explain only read it and
 * are reentrant, so any number of server threads may score through one model at once.
 * Reference counting for hot swaps belongs to whoever shares it (the server). */
#ifndef DRISK_MODEL_H
#define DRISK_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "models/calibrate.h"
#include "base/error.h"

/* What a model predicts. Stored in model files by name ("late", "lost", "eta"). */
/* What a model predicts, and an index (0 .. DRISK_TARGET_COUNT - 1) for per-target arrays
 * everywhere (training, scoring, the server). Model files store the name, not the number. */
enum drisk_target {
    DRISK_TARGET_LATE = 0, /* classification: y in {0,1}, 1 = delivered after the promise */
    DRISK_TARGET_LOST,     /* classification: y in {0,1}, 1 = never delivered */
    DRISK_TARGET_ETA,      /* regression: y = hours until delivery, > 0 */
    DRISK_TARGET_COUNT
};

/* "late", "lost", "eta"; NULL for an unknown value. Static storage. */
const char *drisk_target_name(enum drisk_target target);
/* The target named s (NULL allowed), or -1 if s names none. */
int drisk_target_parse(const char *s);
/* 1 for late and lost, 0 for eta. */
int drisk_target_is_classification(enum drisk_target target);

/* A dense training or scoring matrix, borrowed for the duration of a call: row i's
 * features are x[i*n_features .. i*n_features + n_features-1] (row-major). y holds the
 * targets (NULL when only predicting), weight optional non-negative row weights (NULL:
 * all 1). */
struct drisk_dataset {
    size_t n_rows, n_features;
    const double *x;
    const double *y;
    const double *weight;
};

/* Options of every learner in one struct; a learner reads the fields it understands and
 * ignores the rest. Always start from drisk_fit_options_init. */
struct drisk_fit_options {
    enum drisk_target target;
    double l2;                 /* L2 strength on the weighted mean loss (intercept is not
                                  penalized); default 1e-4 */
    int max_iter;              /* optimizer iterations; default 500 */
    double tol;                /* stop when max |gradient| < tol; default 1e-6 */
    double ftol;               /* ... or when the loss improves by less than ftol relative
                                  over one iteration (0: never); default 1e-12 */
    int lbfgs_m;               /* L-BFGS history length; default 10 */
    int class_weight_balanced; /* classification: weight class c by W / (2 W_c) (W the total
                                  row weight); default 0 */
    int sigma_from_valid;      /* eta: residual sigma from the validation set instead of
                                  the training rows (needs valid); default 0 */
    /* Called after every optimizer iteration when set (a terminal progress bar). Runs on
     * the fitting thread; must not call back into the model. */
    void (*progress)(void *ctx, int iter, double loss, double grad_norm);
    void *progress_ctx;
    uint64_t seed;             /* stochastic learners (sampling, initialisation); default 1 */

    /* mlp: hidden layer widths (n_hidden 1..3; default 2 layers of 64 and 32), epochs
     * (the most; early stopping usually ends sooner; default 30), mini-batch rows
     * (default 512), Adam's step size (default 1e-3). The validation loss is checked four
     * times an epoch; a check without improvement cuts the step size by 4, `patience`
     * such checks in a row end the fit (default 2), and the best weights are kept. */
    int n_hidden;
    int hidden[3];
    int epochs;
    int batch_size;
    double learning_rate;
    int patience;
    int mlp_members; /* networks trained from different seeds whose outputs are averaged
                        (1 to 16; default 1) */
    /* svm_rbf / svm_linear: the cost C (default 1), the RBF width gamma on [0,1]-scaled
     * features (0: 1 / (n_features x the variance of all scaled values), scikit-learn's
     * "scale") and the cap on training rows: a
     * larger training set is sampled down to it, stratified by class, because libsvm's
     * cost grows about quadratically with rows (default 20000). */
    double svm_c;
    double svm_gamma;
    size_t svm_max_rows;
    /* gbdt: at most gbdt_trees boosting rounds (early stopping on the validation log loss
     * usually ends sooner; default 1000) of trees with gbdt_depth levels of splits (1 to 8;
     * default 6), each tree's output scaled by gbdt_eta (the shrinkage; default 0.05).
     * eta's loss is the pseudo-Huber loss of log-hours with gbdt_huber_delta (default 0.3:
     * quadratic within about 35 % of the truth, linear beyond, so a stuck parcel pulls the
     * trees toward the median, not the mean); 0 is the squared error. */
    int gbdt_trees;
    int gbdt_depth;
    double gbdt_eta;
    double gbdt_huber_delta;
};

void drisk_fit_options_init(struct drisk_fit_options *opt, enum drisk_target target);

/* One row's prediction. Unused fields are 0. */
struct drisk_prediction {
    double score; /* the learner's raw score: log-odds before calibration for classifiers,
                     predicted mean log-hours for eta */
    double prob;  /* classification: probability of the positive class, calibrated when the
                     model carries a calibrator, else the logistic of score */
    double p50_h; /* eta: median hours until delivery */
    double p90_h; /* eta: 90th percentile hours until delivery */
};

#define DRISK_MODEL_NAME_MAX 32     /* algorithm name, incl. NUL */
#define DRISK_SCHEMA_HASH_MAX 80    /* feature schema hash text, incl. NUL */
#define DRISK_META_KEY_MAX 48       /* metric / param key, incl. NUL */
#define DRISK_META_VALUE_MAX 96     /* param value, incl. NUL */
#define DRISK_MODEL_MAX_METRICS 64
#define DRISK_MODEL_MAX_PARAMS 32
#define DRISK_MODEL_MAX_BYTES ((size_t)512 << 20) /* cap on a saved model */

struct drisk_model_metric {
    char key[DRISK_META_KEY_MAX];
    double value;
};

struct drisk_model_param {
    char key[DRISK_META_KEY_MAX];
    char value[DRISK_META_VALUE_MAX];
};

/* What a model file says about itself (drisk models show). Times are UTC seconds, 0 when
 * unknown. Metrics are the validation metrics ("auc", "log_loss", ...; a model chosen
 * among candidates may carry "svm_rbf.pr_auc" and the like); params are the learner's
 * settings and fit diagnostics as text ("l2", "iterations", "sigma", ...). */
struct drisk_model_meta {
    char algorithm[DRISK_MODEL_NAME_MAX];
    enum drisk_target target;
    char schema_hash[DRISK_SCHEMA_HASH_MAX];
    size_t n_features;
    int64_t train_from, train_until;
    int64_t valid_from, valid_until;
    uint64_t n_train_rows, n_valid_rows;
    size_t n_metrics;
    struct drisk_model_metric metrics[DRISK_MODEL_MAX_METRICS];
    size_t n_params;
    struct drisk_model_param params[DRISK_MODEL_MAX_PARAMS];
};

struct drisk_model_ops;
struct drisk_reader;

/* A growable byte buffer (a saved model). Zero-initialise it; free with drisk_buf_free.
 * It never grows beyond DRISK_MODEL_MAX_BYTES. */
struct drisk_buf {
    unsigned char *data;
    size_t len, cap;
    int failed; /* sticky: an append ran out of memory or past the cap */
};

void drisk_buf_free(struct drisk_buf *buf);

/* The common header of every model. Callers read meta; they never write a shared model.
 * Learners embed it as the first member of their own struct. */
struct drisk_model {
    const struct drisk_model_ops *ops;
    struct drisk_model_meta meta;
    struct drisk_calibrator *calibrator; /* NULL: prob is the logistic of score */
};

/* The function table a learner implements. Called only through the drisk_model_*
 * wrappers, which validate arguments first (dimensions, finite values, labels, targets)
 * and fill the common header, so a learner sees only well-formed input. */
struct drisk_model_ops {
    const char *name;      /* stored in model files: never rename */
    int classification;    /* 1: fits late/lost */
    int regression;        /* 1: fits eta */
    /* Fits on train (valid may be NULL) and returns a new model in *out whose ops and
     * meta.params it sets; the wrapper fills the rest of meta. */
    enum drisk_status (*fit)(const struct drisk_dataset *train,
                             const struct drisk_dataset *valid,
                             const struct drisk_fit_options *opt,
                             struct drisk_model **out, struct drisk_error *err);
    /* Scores n rows of m->meta.n_features doubles into out[0..n-1] (score, and p50_h/p90_h
     * for regression; the wrapper derives prob). Must be reentrant and allocation-free
     * or clean up after itself. */
    enum drisk_status (*predict)(const struct drisk_model *m, const double *x, size_t n,
                                 struct drisk_prediction *out, struct drisk_error *err);
    /* Optional (NULL if the learner cannot): contrib[j] is feature j's additive share of
     * the score for row x, *base the score of an all-average row, so that score = *base +
     * sum(contrib) up to rounding. */
    enum drisk_status (*explain)(const struct drisk_model *m, const double *x,
                                 double *contrib, double *base, struct drisk_error *err);
    /* Appends the learner's payload to buf (see models/format.h for the encoders). */
    enum drisk_status (*save)(const struct drisk_model *m, struct drisk_buf *buf,
                              struct drisk_error *err);
    /* Reads the payload written by save, validating everything; meta is already parsed
     * and checked. Returns a new model in *out (ops set; the wrapper copies meta). */
    enum drisk_status (*load)(struct drisk_reader *payload, const struct drisk_model_meta *meta,
                              struct drisk_model **out, struct drisk_error *err);
    /* Frees the learner's struct (the wrapper has freed the calibrator already). */
    void (*free)(struct drisk_model *m);

    /* How training (drisk train, --model auto) fits this learner: it reads only these,
     * so a new learner brings its own tuning. */
    const double *l2_grid;   /* L2 strengths tried, the best validation loss kept; NULL:
                              * one fit at opt->l2 */
    size_t n_l2_grid;
    int ensemble_after_grid; /* the grid is tried with one member (mlp_members = 1), then
                              * the ensemble of --members is fitted at the chosen strength */
    int reports_l2;          /* the strength used is worth reporting (train --json "l2") */
    /* Settings training applies on top of the user's (tolerance, class weights, ...),
     * after class_weight_balanced is set for classification targets; NULL: none. */
    void (*training_options)(struct drisk_fit_options *opt);
};

/* The learner called name ("logreg", "lognormal"), or NULL. Static storage. */
const struct drisk_model_ops *drisk_model_ops_find(const char *name);
/* The i-th registered learner (0-based), or NULL past the end: for "--model auto". */
const struct drisk_model_ops *drisk_model_ops_at(size_t i);

/* Fits a model of learner ops on train for opt->target. valid (may be NULL) is used only
 * by learners that need it (eta's sigma_from_valid, early stopping). Both datasets are
 * borrowed for the call. On DRISK_OK *out is a new model the caller frees with
 * drisk_model_free; its meta has algorithm, target, n_features and row counts set, the
 * schema hash and windows empty (drisk_model_set_schema / _set_window).
 * Not thread-safe against other uses of the same options' progress context. */
enum drisk_status drisk_model_fit(const struct drisk_model_ops *ops,
                                  const struct drisk_dataset *train,
                                  const struct drisk_dataset *valid,
                                  const struct drisk_fit_options *opt,
                                  struct drisk_model **out, struct drisk_error *err);

/* Scores n rows (x row-major, n * m->meta.n_features doubles, borrowed) into out[0..n-1].
 * Reentrant: m is only read. DRISK_EINVAL for a non-finite feature (out is then
 * unspecified). */
enum drisk_status drisk_model_predict(const struct drisk_model *m, const double *x, size_t n,
                                      struct drisk_prediction *out, struct drisk_error *err);

/* Per-feature contributions to row x's score (contrib has m->meta.n_features slots, base
 * receives the score of an average row; see explain in the ops). For classifiers they are
 * in log-odds, for eta in log-hours: positive means more risk / later. Reentrant.
 * DRISK_EINVAL if the learner cannot explain. */
enum drisk_status drisk_model_explain(const struct drisk_model *m, const double *x,
                                      double *contrib, double *base, struct drisk_error *err);

/* Fits a calibrator of the given kind on valid (the model's raw scores against valid->y)
 * and attaches it, replacing any earlier one: PLATT or ISOTONIC for classifiers,
 * CONFORMAL for eta (P50 and P90 from the quantiles of log(y) - score on valid, replacing
 * the learner's own intervals). Call before the model is shared. */
enum drisk_status drisk_model_calibrate(struct drisk_model *m, enum drisk_calib_kind kind,
                                        const struct drisk_dataset *valid,
                                        struct drisk_error *err);

/* Attaches cal (ownership passes to m; NULL detaches), freeing any earlier calibrator. */
void drisk_model_set_calibrator(struct drisk_model *m, struct drisk_calibrator *cal);

/* Metadata setters for a model not yet shared. Strings are copied; too-long strings,
 * keys outside [A-Za-z0-9_.-] and full tables give DRISK_EINVAL. Setting an existing key
 * replaces its value. */
enum drisk_status drisk_model_set_schema(struct drisk_model *m, const char *schema_hash,
                                         struct drisk_error *err);
void drisk_model_set_window(struct drisk_model *m, int64_t train_from, int64_t train_until,
                            int64_t valid_from, int64_t valid_until);
enum drisk_status drisk_model_set_metric(struct drisk_model *m, const char *key, double value,
                                         struct drisk_error *err);
enum drisk_status drisk_model_set_param(struct drisk_model *m, const char *key,
                                        const char *value, struct drisk_error *err);
/* The metric or param called key in meta, or NULL. Borrowed from meta. */
const double *drisk_model_meta_metric(const struct drisk_model_meta *meta, const char *key);
const char *drisk_model_meta_param(const struct drisk_model_meta *meta, const char *key);

/* Appends m in the model file format (models/format.c) to out, which the caller
 * zero-initialises and frees with drisk_buf_free. m needs a schema hash. */
enum drisk_status drisk_model_save(const struct drisk_model *m, struct drisk_buf *out,
                                   struct drisk_error *err);
/* Writes m to path (replacing it), checking every write, fflush and fclose. */
enum drisk_status drisk_model_save_file(const struct drisk_model *m, const char *path,
                                        struct drisk_error *err);

/* Loads a model from len bytes at data (borrowed for the call only). Every field is
 * validated: not a model file, unsupported version, truncation or corruption give
 * DRISK_EINVAL; a model built for a feature schema other than expected_schema_hash gives
 * DRISK_ESCHEMA naming both hashes. On DRISK_OK *out is a new model the caller frees with
 * drisk_model_free. */
enum drisk_status drisk_model_load(const void *data, size_t len, const char *expected_schema_hash,
                                   struct drisk_model **out, struct drisk_error *err);
enum drisk_status drisk_model_load_file(const char *path, const char *expected_schema_hash,
                                        struct drisk_model **out, struct drisk_error *err);

/* Reads and validates only the metadata of a saved model (no schema check): for listing
 * models. The whole buffer is still checksummed. */
enum drisk_status drisk_model_read_meta(const void *data, size_t len,
                                        struct drisk_model_meta *meta, struct drisk_error *err);

/* Frees m and its calibrator. NULL is a no-op. */
void drisk_model_free(struct drisk_model *m);

#endif
