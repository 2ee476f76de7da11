/* The model container: the targets, the learner registry, the drisk_model_* wrappers that
 * validate input before any learner sees it, calibration and metadata. The file format is
 * models/format.c. */
#include "models/format.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* ---- targets and options ---- */

const char *drisk_target_name(enum drisk_target target)
{
    switch (target) {
    case DRISK_TARGET_LATE: return "late";
    case DRISK_TARGET_LOST: return "lost";
    case DRISK_TARGET_ETA: return "eta";
    case DRISK_TARGET_COUNT: break;
    }
    return NULL;
}

int drisk_target_parse(const char *s)
{
    for (int t = 0; s && t < DRISK_TARGET_COUNT; t++)
        if (strcmp(s, drisk_target_name((enum drisk_target)t)) == 0)
            return t;
    return -1;
}

int drisk_target_is_classification(enum drisk_target target)
{
    return target == DRISK_TARGET_LATE || target == DRISK_TARGET_LOST;
}

void drisk_fit_options_init(struct drisk_fit_options *opt, enum drisk_target target)
{
    memset(opt, 0, sizeof *opt);
    opt->target = target;
    opt->l2 = 1e-4;
    opt->max_iter = 500;
    opt->tol = 1e-6;
    opt->ftol = 1e-12;
    opt->lbfgs_m = 10;
    opt->seed = 1;
    opt->n_hidden = 2;
    opt->hidden[0] = 64;
    opt->hidden[1] = 32;
    opt->epochs = 30;
    opt->batch_size = 512;
    opt->learning_rate = 1e-3;
    opt->patience = 2;
    opt->mlp_members = 1;
    opt->svm_c = 1.0;
    opt->svm_gamma = 0.0;
    opt->svm_max_rows = 20000;
    opt->gbdt_trees = 1000;
    opt->gbdt_depth = 6;
    opt->gbdt_eta = 0.05;
    opt->gbdt_huber_delta = 0.3;
}

/* ---- registry ---- */

/* In the order --model auto fits them: the fast linear ones first, the trees last. */
static const struct drisk_model_ops *const registry[] = {
    &drisk_logreg_ops,
    &drisk_lognormal_ops,
    &drisk_svm_linear_ops,
    &drisk_svm_rbf_ops,
    &drisk_mlp_ops,
    &drisk_gbdt_ops,
};

const struct drisk_model_ops *drisk_model_ops_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const struct drisk_model_ops *drisk_model_ops_at(size_t i)
{
    return i < sizeof registry / sizeof registry[0] ? registry[i] : NULL;
}

/* ---- wrappers ---- */

static enum drisk_status check_dataset(const struct drisk_dataset *ds, const char *what,
                                       enum drisk_target target, struct drisk_error *err)
{
    if (!ds || !ds->x || !ds->y)
        return drisk_error_set(err, DRISK_EINVAL, "%s set: no data", what);
    if (ds->n_rows == 0 || ds->n_features == 0)
        return drisk_error_set(err, DRISK_EINVAL, "%s set is empty (%zu rows, %zu features)",
                               what, ds->n_rows, ds->n_features);
    if (ds->n_features > SIZE_MAX / sizeof(double) / ds->n_rows)
        return drisk_error_set(err, DRISK_EINVAL, "%s set too large", what);
    int cls = drisk_target_is_classification(target);
    double wsum = 0.0, pos = 0.0;
    for (size_t i = 0; i < ds->n_rows; i++) {
        double y = ds->y[i];
        double w = ds->weight ? ds->weight[i] : 1.0;
        if (!isfinite(w) || w < 0.0)
            return drisk_error_set(err, DRISK_EINVAL, "%s set row %zu: weight %g is not a "
                                   "finite non-negative number", what, i, w);
        if (cls && y != 0.0 && y != 1.0)
            return drisk_error_set(err, DRISK_EINVAL, "%s set row %zu: label %g is not 0 or 1",
                                   what, i, y);
        if (!cls && !(isfinite(y) && y > 0.0))
            return drisk_error_set(err, DRISK_EINVAL, "%s set row %zu: target %g hours is not "
                                   "a positive number", what, i, y);
        wsum += w;
        pos += w * y;
    }
    if (!(wsum > 0.0) || !isfinite(wsum))
        return drisk_error_set(err, DRISK_EINVAL, "%s set: row weights sum to %g", what, wsum);
    if (cls && (pos <= 0.0 || pos >= wsum))
        return drisk_error_set(err, DRISK_EINVAL, "%s set has only one class (%g of %g weight "
                               "positive): cannot fit a classifier", what, pos, wsum);
    return DRISK_OK;
}

enum drisk_status drisk_model_fit(const struct drisk_model_ops *ops,
                                  const struct drisk_dataset *train,
                                  const struct drisk_dataset *valid,
                                  const struct drisk_fit_options *opt,
                                  struct drisk_model **out, struct drisk_error *err)
{
    struct drisk_model *m = NULL;
    enum drisk_status st;
    *out = NULL;
    if (!ops || !opt) {
        st = drisk_error_set(err, DRISK_EINVAL, "fit: no learner or options");
        goto out;
    }
    const char *tname = drisk_target_name(opt->target);
    if (!tname) {
        st = drisk_error_set(err, DRISK_EINVAL, "fit: unknown target %d", (int)opt->target);
        goto out;
    }
    int cls = drisk_target_is_classification(opt->target);
    if ((cls && !ops->classification) || (!cls && !ops->regression)) {
        st = drisk_error_set(err, DRISK_EINVAL, "learner %s cannot fit target %s", ops->name,
                             tname);
        goto out;
    }
    if (!(opt->l2 >= 0.0) || !isfinite(opt->l2) || opt->max_iter < 0 || !(opt->tol >= 0.0) ||
        !(opt->ftol >= 0.0) || opt->lbfgs_m < 1 || opt->lbfgs_m > 100) {
        st = drisk_error_set(err, DRISK_EINVAL, "fit: options out of range (l2 %g, max_iter %d, "
                             "tol %g, ftol %g, lbfgs_m %d)", opt->l2, opt->max_iter, opt->tol,
                             opt->ftol, opt->lbfgs_m);
        goto out;
    }
    int hidden_ok = opt->n_hidden >= 1 && opt->n_hidden <= 3;
    for (int i = 0; hidden_ok && i < opt->n_hidden; i++)
        hidden_ok = opt->hidden[i] >= 1 && opt->hidden[i] <= 4096;
    if (!hidden_ok || opt->epochs < 1 || opt->epochs > 10000 || opt->batch_size < 1 ||
        opt->batch_size > 65536 || !(opt->learning_rate > 0.0 && opt->learning_rate < 1.0) ||
        opt->patience < 1 || opt->mlp_members < 1 || opt->mlp_members > 16) {
        st = drisk_error_set(err, DRISK_EINVAL, "fit: mlp options out of range (1 to 3 hidden "
                             "layers of 1 to 4096 units, epochs %d, batch %d, learning rate %g, "
                             "patience %d, members %d)", opt->epochs, opt->batch_size,
                             opt->learning_rate, opt->patience, opt->mlp_members);
        goto out;
    }
    if (!(opt->svm_c > 0.0) || !isfinite(opt->svm_c) || !(opt->svm_gamma >= 0.0) ||
        !isfinite(opt->svm_gamma) || opt->svm_max_rows < 100 || opt->svm_max_rows > 10000000) {
        st = drisk_error_set(err, DRISK_EINVAL, "fit: svm options out of range (C %g, gamma %g, "
                             "max rows %zu: C > 0, gamma >= 0, 100 to 10000000 rows)",
                             opt->svm_c, opt->svm_gamma, opt->svm_max_rows);
        goto out;
    }
    if (opt->gbdt_trees < 1 || opt->gbdt_trees > 100000 || opt->gbdt_depth < 1 ||
        opt->gbdt_depth > 8 || !(opt->gbdt_eta > 0.0 && opt->gbdt_eta <= 1.0)) {
        st = drisk_error_set(err, DRISK_EINVAL, "fit: gbdt options out of range (trees %d of 1 "
                             "to 100000, depth %d of 1 to 8, shrinkage %g in (0, 1])",
                             opt->gbdt_trees, opt->gbdt_depth, opt->gbdt_eta);
        goto out;
    }
    if ((st = check_dataset(train, "training", opt->target, err)) != DRISK_OK)
        goto out;
    if (valid) {
        if ((st = check_dataset(valid, "validation", opt->target, err)) != DRISK_OK)
            goto out;
        if (valid->n_features != train->n_features) {
            st = drisk_error_set(err, DRISK_EINVAL, "validation set has %zu features, training "
                                 "set %zu", valid->n_features, train->n_features);
            goto out;
        }
    }
    if ((st = ops->fit(train, valid, opt, &m, err)) != DRISK_OK)
        goto out;
    m->ops = ops;
    snprintf(m->meta.algorithm, sizeof m->meta.algorithm, "%s", ops->name);
    m->meta.target = opt->target;
    m->meta.n_features = train->n_features;
    m->meta.n_train_rows = train->n_rows;
    m->meta.n_valid_rows = valid ? valid->n_rows : 0;
    *out = m;
    m = NULL;
out:
    drisk_model_free(m);
    return st;
}

enum drisk_status drisk_model_predict(const struct drisk_model *m, const double *x, size_t n,
                                      struct drisk_prediction *out, struct drisk_error *err)
{
    enum drisk_status st = DRISK_OK;
    size_t d = m->meta.n_features;
    if (n == 0)
        goto out;
    if (!x || !out || d > SIZE_MAX / sizeof(double) / n) {
        st = drisk_error_set(err, DRISK_EINVAL, "predict: no rows or too many");
        goto out;
    }
    for (size_t i = 0; i < n * d; i++) {
        if (!isfinite(x[i])) {
            st = drisk_error_set(err, DRISK_EINVAL, "predict: row %zu feature %zu is not a "
                                 "finite number", i / d, i % d);
            goto out;
        }
    }
    memset(out, 0, n * sizeof *out);
    if ((st = m->ops->predict(m, x, n, out, err)) != DRISK_OK)
        goto out;
    double q50, q90;
    if (drisk_target_is_classification(m->meta.target)) {
        for (size_t i = 0; i < n; i++) {
            double s = out[i].score;
            out[i].prob = m->calibrator ? drisk_calibrator_apply(m->calibrator, s) : drisk_sigmoid(s);
        }
    } else if (drisk_calibrator_interval(m->calibrator, &q50, &q90) == 0) {
        /* recalibrated intervals replace the learner's own */
        for (size_t i = 0; i < n; i++) {
            out[i].p50_h = exp(out[i].score + q50);
            out[i].p90_h = exp(out[i].score + q90);
        }
    }
out:
    return st;
}

enum drisk_status drisk_model_explain(const struct drisk_model *m, const double *x,
                                      double *contrib, double *base, struct drisk_error *err)
{
    if (!m->ops->explain)
        return drisk_error_set(err, DRISK_EINVAL, "learner %s cannot explain its scores",
                               m->ops->name);
    for (size_t j = 0; j < m->meta.n_features; j++)
        if (!isfinite(x[j]))
            return drisk_error_set(err, DRISK_EINVAL, "explain: feature %zu is not a finite "
                                   "number", j);
    return m->ops->explain(m, x, contrib, base, err);
}

void drisk_class_weights(const struct drisk_dataset *ds, int balanced, double *cw0, double *cw1,
                         double *pos_share)
{
    double wsum = 0.0, wpos = 0.0;
    for (size_t i = 0; i < ds->n_rows; i++) {
        double wi = ds->weight ? ds->weight[i] : 1.0;
        wsum += wi;
        wpos += wi * ds->y[i];
    }
    *cw0 = balanced ? wsum / (2.0 * (wsum - wpos)) : 1.0;
    *cw1 = balanced ? wsum / (2.0 * wpos) : 1.0;
    *pos_share = wpos / wsum;
}

uint64_t drisk_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

enum drisk_status drisk_explain_by_occlusion(const struct drisk_model *m, const double *ref,
                                             const double *x, double *contrib, double *base,
                                             struct drisk_error *err)
{
    size_t d = m->meta.n_features;
    enum drisk_status st;
    double *rows = malloc((d + 2) * d * sizeof *rows);
    struct drisk_prediction *p = malloc((d + 2) * sizeof *p);
    if (!rows || !p) {
        st = drisk_error_set(err, DRISK_ENOMEM, "explain: out of memory");
        goto out;
    }
    memcpy(rows, x, d * sizeof *rows);
    memcpy(rows + d, ref, d * sizeof *rows);
    for (size_t j = 0; j < d; j++) {
        double *r = rows + (j + 2) * d;
        memcpy(r, x, d * sizeof *r);
        r[j] = ref[j];
    }
    memset(p, 0, (d + 2) * sizeof *p);
    if ((st = m->ops->predict(m, rows, d + 2, p, err)))
        goto out;
    double total = p[0].score - p[1].score, raw_sum = 0.0, abs_sum = 0.0;
    for (size_t j = 0; j < d; j++) {
        contrib[j] = p[0].score - p[j + 2].score;
        raw_sum += contrib[j];
        abs_sum += fabs(contrib[j]);
    }
    double rest = total - raw_sum;
    for (size_t j = 0; j < d; j++)
        contrib[j] += abs_sum > 0.0 ? rest * fabs(contrib[j]) / abs_sum : rest / (double)d;
    *base = p[1].score;
out:
    free(rows);
    free(p);
    return st;
}

void drisk_model_set_calibrator(struct drisk_model *m, struct drisk_calibrator *cal)
{
    drisk_calibrator_free(m->calibrator);
    m->calibrator = cal;
}

enum drisk_status drisk_model_calibrate(struct drisk_model *m, enum drisk_calib_kind kind,
                                        const struct drisk_dataset *valid,
                                        struct drisk_error *err)
{
    struct drisk_prediction *pred = NULL;
    double *score = NULL;
    struct drisk_calibrator *cal = NULL;
    enum drisk_status st;
    int cls = drisk_target_is_classification(m->meta.target);
    if (cls == (kind == DRISK_CALIB_CONFORMAL)) {
        st = drisk_error_set(err, DRISK_EINVAL, "%s calibration does not apply to %s",
                             drisk_calib_kind_name(kind), drisk_target_name(m->meta.target));
        goto out;
    }
    if (kind == DRISK_CALIB_NONE) {
        drisk_model_set_calibrator(m, NULL);
        st = DRISK_OK;
        goto out;
    }
    if ((st = check_dataset(valid, "calibration", m->meta.target, err)) != DRISK_OK)
        goto out;
    if (valid->n_features != m->meta.n_features) {
        st = drisk_error_set(err, DRISK_EINVAL, "calibration set has %zu features, model %zu",
                             valid->n_features, m->meta.n_features);
        goto out;
    }
    pred = malloc(valid->n_rows * sizeof *pred);
    score = malloc(valid->n_rows * sizeof *score);
    if (!pred || !score) {
        st = drisk_error_set(err, DRISK_ENOMEM, "calibration: out of memory");
        goto out;
    }
    if ((st = drisk_model_predict(m, valid->x, valid->n_rows, pred, err)) != DRISK_OK)
        goto out;
    if (cls) {
        for (size_t i = 0; i < valid->n_rows; i++)
            score[i] = pred[i].score;
        st = drisk_calibrator_fit(kind, score, valid->y, valid->weight, valid->n_rows, &cal, err);
    } else { /* the residuals in log-hours; check_dataset has checked y > 0 */
        double *w = NULL;
        for (size_t i = 0; i < valid->n_rows; i++)
            score[i] = log(valid->y[i]) - pred[i].score;
        if (valid->weight && !(w = malloc(valid->n_rows * sizeof *w))) {
            st = drisk_error_set(err, DRISK_ENOMEM, "calibration: out of memory");
            goto out;
        }
        if (w)
            memcpy(w, valid->weight, valid->n_rows * sizeof *w);
        st = drisk_calibrator_fit_conformal(score, w, valid->n_rows, &cal, err);
        free(w);
    }
    if (st != DRISK_OK)
        goto out;
    drisk_model_set_calibrator(m, cal);
    cal = NULL;
out:
    drisk_calibrator_free(cal);
    free(score);
    free(pred);
    return st;
}

void drisk_model_free(struct drisk_model *m)
{
    if (!m)
        return;
    drisk_calibrator_free(m->calibrator);
    m->calibrator = NULL;
    m->ops->free(m);
}

/* ---- metadata ---- */

static int key_ok(const char *key)
{
    if (!key || !key[0] || strlen(key) >= DRISK_META_KEY_MAX)
        return 0;
    for (const char *p = key; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

enum drisk_status drisk_model_set_schema(struct drisk_model *m, const char *schema_hash,
                                         struct drisk_error *err)
{
    if (!schema_hash || !schema_hash[0] || strlen(schema_hash) >= DRISK_SCHEMA_HASH_MAX)
        return drisk_error_set(err, DRISK_EINVAL, "schema hash must be 1 to %d characters",
                               DRISK_SCHEMA_HASH_MAX - 1);
    snprintf(m->meta.schema_hash, sizeof m->meta.schema_hash, "%s", schema_hash);
    return DRISK_OK;
}

void drisk_model_set_window(struct drisk_model *m, int64_t train_from, int64_t train_until,
                            int64_t valid_from, int64_t valid_until)
{
    m->meta.train_from = train_from;
    m->meta.train_until = train_until;
    m->meta.valid_from = valid_from;
    m->meta.valid_until = valid_until;
}

enum drisk_status drisk_meta_set_metric(struct drisk_model_meta *meta, const char *key,
                                         double value, struct drisk_error *err)
{
    if (!key_ok(key))
        return drisk_error_set(err, DRISK_EINVAL, "metric name '%s' is not 1 to %d characters of "
                               "[A-Za-z0-9_.-]", key ? key : "", DRISK_META_KEY_MAX - 1);
    for (size_t i = 0; i < meta->n_metrics; i++) {
        if (strcmp(meta->metrics[i].key, key) == 0) {
            meta->metrics[i].value = value;
            return DRISK_OK;
        }
    }
    if (meta->n_metrics >= DRISK_MODEL_MAX_METRICS)
        return drisk_error_set(err, DRISK_EINVAL, "too many metrics (at most %d)",
                               DRISK_MODEL_MAX_METRICS);
    struct drisk_model_metric *e = &meta->metrics[meta->n_metrics++];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->value = value;
    return DRISK_OK;
}

enum drisk_status drisk_meta_set_param(struct drisk_model_meta *meta, const char *key,
                                        const char *value, struct drisk_error *err)
{
    if (!key_ok(key))
        return drisk_error_set(err, DRISK_EINVAL, "parameter name '%s' is not 1 to %d "
                               "characters of [A-Za-z0-9_.-]", key ? key : "",
                               DRISK_META_KEY_MAX - 1);
    if (!value || strlen(value) >= DRISK_META_VALUE_MAX)
        return drisk_error_set(err, DRISK_EINVAL, "parameter %s: value missing or longer than "
                               "%d characters", key, DRISK_META_VALUE_MAX - 1);
    struct drisk_model_param *e = NULL;
    for (size_t i = 0; i < meta->n_params; i++)
        if (strcmp(meta->params[i].key, key) == 0)
            e = &meta->params[i];
    if (!e) {
        if (meta->n_params >= DRISK_MODEL_MAX_PARAMS)
            return drisk_error_set(err, DRISK_EINVAL, "too many parameters (at most %d)",
                                   DRISK_MODEL_MAX_PARAMS);
        e = &meta->params[meta->n_params++];
        snprintf(e->key, sizeof e->key, "%s", key);
    }
    snprintf(e->value, sizeof e->value, "%s", value);
    return DRISK_OK;
}

enum drisk_status drisk_model_set_metric(struct drisk_model *m, const char *key, double value,
                                         struct drisk_error *err)
{
    return drisk_meta_set_metric(&m->meta, key, value, err);
}

enum drisk_status drisk_model_set_param(struct drisk_model *m, const char *key,
                                        const char *value, struct drisk_error *err)
{
    return drisk_meta_set_param(&m->meta, key, value, err);
}

const double *drisk_model_meta_metric(const struct drisk_model_meta *meta, const char *key)
{
    for (size_t i = 0; i < meta->n_metrics; i++)
        if (strcmp(meta->metrics[i].key, key) == 0)
            return &meta->metrics[i].value;
    return NULL;
}

const char *drisk_model_meta_param(const struct drisk_model_meta *meta, const char *key)
{
    for (size_t i = 0; i < meta->n_params; i++)
        if (strcmp(meta->params[i].key, key) == 0)
            return meta->params[i].value;
    return NULL;
}

