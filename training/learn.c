/* drisk train and drisk eval. Both replay the store through training/snapshot.c, so the
 * features are the ones the server will compute; training splits by creation time (the
 * last part of the training period validates), evaluation scores later shipments. */
#include "training/learn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/live.h"
#include "engine/features.h"
#include "engine/vocab.h"
#include "base/timeutil.h"
#include "base/log.h"
#include "models/format.h"
#include "models/model.h"
#include "training/recalibrate.h"
#include "training/snapshot.h"

static struct drisk_dataset as_dataset(const struct drisk_rows *m)
{
    struct drisk_dataset d = { m->n, m->d, m->x, m->y, NULL };
    return d;
}

struct collect {
    enum drisk_target target;
    int64_t valid_start, labels_by;
    struct drisk_rows train, valid;
    int64_t valid_min_created;
};

static int collect_row(const struct drisk_snapshot *s, void *ctx, struct drisk_error *err)
{
    struct collect *c = ctx;
    double y = drisk_snapshot_label(s, c->target);
    if (isnan(y) || (c->target == DRISK_TARGET_ETA && y <= 0))
        return 0;
    if (c->labels_by > 0 && !drisk_recal_known_in(s, c->target, INT64_MIN, c->labels_by))
        return 0;
    struct drisk_rows *m = s->sh->created_at < c->valid_start ? &c->train : &c->valid;
    if (drisk_rows_push(m, s->x, y)) {
        drisk_error_set(err, DRISK_ENOMEM, "out of memory collecting snapshots (%zu rows)", m->n);
        return -1;
    }
    return 0;
}

static void metrics_json(char *buf, size_t cap, int classification,
                         const struct drisk_binary_metrics *b, const struct drisk_eta_metrics *e)
{
    if (classification)
        snprintf(buf, cap, "{\"auc\": %.6f, \"pr_auc\": %.6f, \"brier\": %.6f, \"log_loss\": %.6f, "
                 "\"ece\": %.6f, \"rows\": %zu, \"positives\": %zu}", b->auc, b->pr_auc, b->brier,
                 b->log_loss, b->ece, b->rows, b->positives);
    else
        snprintf(buf, cap, "{\"mae_h\": %.4f, \"p50_coverage\": %.4f, \"p90_coverage\": %.4f, "
                 "\"pinball50_h\": %.4f, \"pinball90_h\": %.4f, \"rows\": %zu}", e->mae_h,
                 e->p50_coverage, e->p90_coverage, e->pinball50_h, e->pinball90_h, e->rows);
}

/* Fits one learner on train, calibrates a classifier on valid (Platt) and measures it
 * there: *out the model, cand its validation figures, *l2 the L2 strength used. The
 * learner's ops say how: an L2 grid is tried and the best validation loss kept
 * (calibrated log loss; eta: mean P50/P90 pinball loss), with one member first and the
 * ensemble (--members) at the chosen strength when ensemble_after_grid; its
 * training_options adjust the fit options. p and p90 are valid.n-double workspaces. */
static enum drisk_status fit_learner(const struct drisk_model_ops *ops,
                                     const struct drisk_train_options *opts, enum drisk_target mt,
                                     const struct drisk_rows *train, const struct drisk_rows *valid,
                                     double *p, double *p90, struct drisk_model **out,
                                     struct drisk_train_candidate *cand, double *l2,
                                     struct drisk_error *err)
{
    enum drisk_status rc = DRISK_OK;
    int classification = drisk_target_is_classification(mt);
    const double *grid = ops->n_l2_grid ? ops->l2_grid : NULL;
    size_t tries = grid ? ops->n_l2_grid : 1;
    /* one more fit after the grid */
    int ensemble = grid && ops->ensemble_after_grid && opts->fit.mlp_members > 1;
    struct drisk_dataset tr = as_dataset(train), va = as_dataset(valid);
    struct drisk_model *m = NULL;
    double t0 = drisk_monotonic_s(), best_loss = INFINITY, best_l2 = NAN;
    memset(cand, 0, sizeof *cand);
    snprintf(cand->algorithm, sizeof cand->algorithm, "%s", ops->name);
    *out = NULL;
    for (size_t g = 0; g < tries + (size_t)ensemble; g++) {
        int final = g == tries; /* the mlp ensemble at the chosen strength: kept */
        struct drisk_fit_options fo = opts->fit;
        fo.target = mt;
        fo.class_weight_balanced = classification;
        if (grid)
            fo.l2 = final ? best_l2 : grid[g];
        if (ops->ensemble_after_grid && grid)
            fo.mlp_members = final ? opts->fit.mlp_members : 1;
        if (ops->training_options)
            ops->training_options(&fo);
        if ((rc = drisk_model_fit(ops, &tr, &va, &fo, &m, err)))
            goto out;
        struct drisk_binary_metrics bm;
        struct drisk_eta_metrics em;
        double loss;
        char what[64] = "";
        if (grid)
            snprintf(what, sizeof what, " l2=%g%s", fo.l2, !ops->ensemble_after_grid ? ""
                     : final ? " (the ensemble)" : ensemble ? " (one network)" : "");
        if (classification) {
            if ((rc = drisk_model_calibrate(m, DRISK_CALIB_PLATT, &va, err)) ||
                (rc = drisk_rows_predict(m, valid, p, NULL, err)) ||
                (rc = drisk_metrics_binary(valid->n, valid->y, p, NULL, &bm, err)))
                goto out;
            loss = bm.log_loss;
            DRISK_LOG(DRISK_LOG_INFO, "%s%s: validation log loss %.5f, AUC %.4f, PR-AUC %.4f",
                      ops->name, what, bm.log_loss, bm.auc, bm.pr_auc);
        } else {
            if ((rc = drisk_rows_predict(m, valid, p, p90, err)) ||
                (rc = drisk_metrics_eta(valid->n, valid->y, p, p90, NULL, &em, err)))
                goto out;
            loss = (em.pinball50_h + em.pinball90_h) / 2.0;
            DRISK_LOG(DRISK_LOG_INFO, "%s%s: validation MAE %.2f h, pinball P50 %.3f, P90 %.3f",
                      ops->name, what, em.mae_h, em.pinball50_h, em.pinball90_h);
        }
        if (final || loss < best_loss) {
            best_loss = loss;
            best_l2 = fo.l2;
            drisk_model_free(*out);
            *out = m;
            if (classification)
                cand->valid = bm;
            else
                cand->valid_eta = em;
            /* the learners with an L2 strength: svm has C instead, gbdt its own leaf L2 */
            *l2 = grid || ops->reports_l2 ? fo.l2 : NAN;
        } else {
            drisk_model_free(m);
        }
        m = NULL;
    }
    cand->seconds_fit = drisk_monotonic_s() - t0;
out:
    if (m && m != *out)
        drisk_model_free(m);
    if (rc) {
        drisk_model_free(*out);
        *out = NULL;
    }
    return rc;
}

/* The figure "--model auto" ranks by: higher is better. A proper score (calibrated log
 * loss), not PR-AUC: PR-AUC rewards the ranking of the top few alone and picked, on the
 * simulated lost target, a model with the lower test AUC. */
static double candidate_merit(const struct drisk_train_candidate *c, int classification)
{
    if (classification)
        return isnan(c->valid.log_loss) ? -INFINITY : -c->valid.log_loss;
    return -(c->valid_eta.pinball50_h + c->valid_eta.pinball90_h) / 2.0;
}

/* Every candidate's validation figures, stored with the chosen model as
 * "<algorithm>.<metric>". */
static enum drisk_status store_candidates(struct drisk_model *m,
                                          const struct drisk_train_result *res,
                                          int classification, struct drisk_error *err)
{
    enum drisk_status rc = DRISK_OK;
    for (size_t i = 0; i < res->n_candidates && !rc; i++) {
        const struct drisk_train_candidate *c = &res->candidates[i];
        char key[DRISK_META_KEY_MAX];
#define CAND_METRIC(name, value)                                                         \
        if (!rc) {                                                                       \
            snprintf(key, sizeof key, "%s." name, c->algorithm);                         \
            rc = drisk_model_set_metric(m, key, (value), err);                           \
        }
        if (classification) {
            CAND_METRIC("pr_auc", c->valid.pr_auc)
            CAND_METRIC("auc", c->valid.auc)
            CAND_METRIC("log_loss", c->valid.log_loss)
            CAND_METRIC("ece", c->valid.ece)
        } else {
            CAND_METRIC("pinball_h", (c->valid_eta.pinball50_h + c->valid_eta.pinball90_h) / 2.0)
            CAND_METRIC("mae_h", c->valid_eta.mae_h)
            CAND_METRIC("p90_coverage", c->valid_eta.p90_coverage)
        }
        CAND_METRIC("fit_s", c->seconds_fit)
#undef CAND_METRIC
    }
    if (!rc)
        rc = drisk_model_set_param(m, "chosen_by", classification ? "auto: validation log loss"
                                   : "auto: validation pinball loss", err);
    return rc;
}

enum drisk_status drisk_train(struct drisk_store *store, const struct drisk_train_options *opts,
                              struct drisk_train_result *res, struct drisk_error *err)
{
    enum drisk_status rc = DRISK_OK;
    struct collect c = { 0 };
    struct drisk_feature_schema schema;
    struct drisk_model *best = NULL, *cand = NULL;
    struct drisk_buf buf = { 0 };
    double *p = NULL, *p90 = NULL;
    char schema_text[16384], mjson[512];
    int64_t first, last;
    const char *const *names;
    size_t n_names;

    memset(res, 0, sizeof *res);
    int t = drisk_target_parse(opts->target);
    if (t < 0)
        return drisk_error_set(err, DRISK_EINVAL, "unknown target \"%s\": use late, lost or eta",
                               opts->target);
    c.target = (enum drisk_target)t;
    enum drisk_target mt = c.target;
    int classification = drisk_target_is_classification(mt);
    const char *alg = opts->algorithm ? opts->algorithm : DRISK_TRAIN_DEFAULT_MODEL;
    int is_auto = strcmp(alg, "auto") == 0;
    const char *auto_names[DRISK_TRAIN_MAX_CANDIDATES];
    if (is_auto) {
        /* every registered learner of the target, in the registry's order */
        n_names = 0;
        for (size_t i = 0; drisk_model_ops_at(i) && n_names < DRISK_TRAIN_MAX_CANDIDATES; i++) {
            const struct drisk_model_ops *o = drisk_model_ops_at(i);
            if (classification ? o->classification : o->regression)
                auto_names[n_names++] = o->name;
        }
        names = auto_names;
    } else {
        const struct drisk_model_ops *ops = drisk_model_ops_find(alg);
        if (!ops || (classification ? !ops->classification : !ops->regression))
            return drisk_error_set(err, DRISK_EINVAL, "there is no %s learner \"%s\" for target "
                                   "%s: use %s or auto", classification ? "classification"
                                   : "regression", alg, opts->target, classification
                                   ? "gbdt, logreg, svm_linear, svm_rbf, mlp"
                                   : "gbdt, lognormal, mlp");
        names = &alg;
        n_names = 1;
    }

    if ((rc = drisk_store_created_range(store, &first, &last, err)))
        return rc;
    if (first == DRISK_TS_NONE)
        return drisk_error_set(err, DRISK_EINVAL, "the store holds no shipments: import or "
                               "simulate some first");
    int64_t until = opts->until < last + 1 ? opts->until : last + 1;
    if (opts->from > first)
        first = opts->from;
    if (until <= first)
        return drisk_error_set(err, DRISK_EINVAL, "no shipment was created in the training window "
                               "(before --until)");
    c.labels_by = opts->labels_by;
    c.valid_start = first + (int64_t)((1.0 - opts->valid_fraction) * (double)(until - first));

    double t0 = drisk_monotonic_s();
    if ((rc = drisk_snapshot_schema(store, until, opts->min_count, &schema, err)))
        goto out;
    c.train.d = c.valid.d = schema.n_features;
    struct drisk_snapshot_options so = { first, until, INT64_MIN, DRISK_TS_NONE, 1 };
    if ((rc = drisk_snapshots_run(store, &schema, &so, collect_row, &c, err)))
        goto out;
    res->seconds_snapshots = drisk_monotonic_s() - t0;
    res->train_rows = c.train.n;
    res->valid_rows = c.valid.n;
    res->n_features = schema.n_features;
    if (c.train.n < 100 || c.valid.n < 20) {
        rc = drisk_error_set(err, DRISK_EINVAL, "too few %s snapshots to train on (%zu training, "
                             "%zu validation): import more history or move --until",
                             opts->target, c.train.n, c.valid.n);
        goto out;
    }
    if (!(p = malloc(c.valid.n * sizeof *p)) || !(p90 = malloc(c.valid.n * sizeof *p90))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    double t1 = drisk_monotonic_s(), best_merit = -INFINITY;
    size_t chosen = 0;
    for (size_t i = 0; i < n_names; i++) {
        struct drisk_train_candidate *cd = &res->candidates[res->n_candidates];
        double l2 = 0.0;
        if (is_auto)
            DRISK_LOG(DRISK_LOG_INFO, "auto: fitting %s (%zu of %zu)", names[i], i + 1, n_names);
        if ((rc = fit_learner(drisk_model_ops_find(names[i]), opts, mt, &c.train, &c.valid, p, p90,
                              &cand, cd, &l2, err)))
            goto out;
        res->n_candidates++;
        double merit = candidate_merit(cd, classification);
        if (!best || merit > best_merit) {
            best_merit = merit;
            drisk_model_free(best);
            best = cand;
            chosen = i;
            res->l2 = l2;
        } else {
            drisk_model_free(cand);
        }
        cand = NULL;
    }
    res->valid = res->candidates[chosen].valid;
    res->valid_eta = res->candidates[chosen].valid_eta;
    alg = names[chosen];
    res->seconds_fit = drisk_monotonic_s() - t1;
    if (is_auto && (rc = store_candidates(best, res, classification, err)))
        goto out;

    if ((rc = drisk_model_set_schema(best, schema.hash, err)))
        goto out;
    drisk_model_set_window(best, first, c.valid_start, c.valid_start, until);
    if (opts->labels_by > 0) {
        char ts[DRISK_TS_BUF];
        if ((rc = drisk_model_set_param(best, "labels_by", drisk_ts_format(opts->labels_by, ts),
                                        err)))
            goto out;
    }
    if (classification) {
        if ((rc = drisk_model_set_metric(best, "auc", res->valid.auc, err)) ||
            (rc = drisk_model_set_metric(best, "pr_auc", res->valid.pr_auc, err)) ||
            (rc = drisk_model_set_metric(best, "brier", res->valid.brier, err)) ||
            (rc = drisk_model_set_metric(best, "log_loss", res->valid.log_loss, err)) ||
            (rc = drisk_model_set_metric(best, "ece", res->valid.ece, err)))
            goto out;
    } else if ((rc = drisk_model_set_metric(best, "mae_h", res->valid_eta.mae_h, err)) ||
               (rc = drisk_model_set_metric(best, "pinball50_h", res->valid_eta.pinball50_h, err)) ||
               (rc = drisk_model_set_metric(best, "p90_coverage", res->valid_eta.p90_coverage, err))) {
        goto out;
    }
    snprintf(res->algorithm, sizeof res->algorithm, "%s", alg);

    int activate = opts->activate == DRISK_ACTIVATE_ALWAYS  ? 1
                   : opts->activate == DRISK_ACTIVATE_NEVER ? 0
                                                            : -1;
    if ((rc = drisk_model_save(best, &buf, err)))
        goto out;
    if (drisk_feature_schema_write(&schema, schema_text, sizeof schema_text) < 0) {
        rc = drisk_error_set(err, DRISK_EINVAL, "the feature schema is too long to store");
        goto out;
    }
    metrics_json(mjson, sizeof mjson, classification, &res->valid, &res->valid_eta);
    struct drisk_model_row row = { 0 };
    snprintf(row.target, sizeof row.target, "%s", opts->target);
    snprintf(row.algorithm, sizeof row.algorithm, "%s", alg);
    snprintf(row.schema_hash, sizeof row.schema_hash, "%s", schema.hash);
    row.train_from = first;
    row.train_until = until;
    row.train_rows = (int64_t)c.train.n;
    row.valid_rows = (int64_t)c.valid.n;
    row.metrics = mjson;
    row.schema = schema_text;
    row.payload = buf.data;
    row.payload_len = buf.len;
    if ((rc = drisk_store_model_add(store, &row, activate, &res->model_id, err)))
        goto out;
    struct drisk_model_row now_active;
    if (drisk_store_model_get(store, 0, opts->target, &now_active, NULL) == DRISK_OK) {
        res->active = now_active.id == res->model_id;
        drisk_store_model_row_free(&now_active);
    }
out:
    drisk_model_free(cand);
    drisk_model_free(best);
    drisk_buf_free(&buf);
    drisk_rows_free(&c.train);
    drisk_rows_free(&c.valid);
    free(p);
    free(p90);
    return rc;
}

/* ---- evaluation ---- */

/* A uniform sample of k feature rows of a stream (reservoir sampling, deterministic). */
struct reservoir {
    size_t k, d, n;
    uint64_t seen, rng;
    double *x; /* k x d */
};

static int reservoir_init(struct reservoir *r, size_t k, size_t d)
{
    memset(r, 0, sizeof *r);
    r->k = k;
    r->d = d;
    r->rng = 0x5eed;
    return (r->x = malloc(k * d * sizeof *r->x)) ? 0 : -1;
}

static void reservoir_add(struct reservoir *r, const double *x)
{
    size_t at = r->n;
    r->seen++;
    if (r->n == r->k) {
        uint64_t j = drisk_splitmix64(&r->rng) % r->seen;
        if (j >= r->k)
            return;
        at = (size_t)j;
    } else {
        r->n++;
    }
    memcpy(r->x + at * r->d, x, r->d * sizeof *x);
}

/* Snapshots are scored in batches of this many (one predict call: a batched gemm for
 * the MLP and the RBF SVM instead of one per snapshot). */
#define EVAL_BATCH 256

struct evalctx {
    enum drisk_target target;
    const struct drisk_model *m;
    FILE *predictions;
    size_t n, cap;
    struct drisk_eval_row *rows;
    size_t d, n_pend; /* rows[n - n_pend .. n-1] await their scores */
    double *pend_x;   /* EVAL_BATCH x d */
    char (*pend_id)[DRISK_ID_MAX];
    int f_exceptions, f_since_last;
    struct drisk_eval_result *res; /* its names */
    struct reservoir sample;       /* with drift: the window's snapshots' features */
    int64_t labels_from, labels_to; /* labels_to > 0: the label-known window */
    /* walk forward (recal_m non-NULL: the same model as m, whose calibration is refitted) */
    struct drisk_model *recal_m;
    struct drisk_recal_pool pool;
    int64_t from, next_recal, every_s, window_s;
    size_t recalibrations;
};

static int slice_id(struct evalctx *c, int kind, const char *name)
{
    struct drisk_eval_result *r = c->res;
    for (int i = 0; i < r->n_names[kind]; i++)
        if (strncmp(r->names[kind][i], name, 63) == 0) /* names are kept to 63 bytes */
            return i;
    if (r->n_names[kind] == DRISK_EVAL_NAMES - 1) { /* the last slot collects the rest */
        snprintf(r->names[kind][DRISK_EVAL_NAMES - 1], 64, "other");
        r->n_names[kind] = DRISK_EVAL_NAMES;
    }
    if (r->n_names[kind] == DRISK_EVAL_NAMES)
        return DRISK_EVAL_NAMES - 1;
    snprintf(r->names[kind][r->n_names[kind]], 64, "%.63s", name);
    return r->n_names[kind]++;
}

/* Scores the pending snapshots and writes their prediction lines. */
static enum drisk_status eval_flush(struct evalctx *c, struct drisk_error *err)
{
    struct drisk_prediction pr[EVAL_BATCH];
    enum drisk_status rc;
    if (c->n_pend == 0)
        return DRISK_OK;
    if ((rc = drisk_model_predict(c->m, c->pend_x, c->n_pend, pr, err)))
        return rc;
    for (size_t k = 0; k < c->n_pend; k++) {
        struct drisk_eval_row *r = &c->rows[c->n - c->n_pend + k];
        r->score = c->target == DRISK_TARGET_ETA ? pr[k].p50_h : pr[k].prob;
        r->p90 = pr[k].p90_h;
        if (c->predictions) {
            char ts[DRISK_TS_BUF];
            const char *tn = drisk_target_name(c->target);
            if (c->target == DRISK_TARGET_ETA) /* score is the P50 */
                fprintf(c->predictions, "%s,%s,%s,%.10g,%.10g,%.10g\n", c->pend_id[k],
                        drisk_ts_format(r->as_of, ts), tn, r->y, r->score, r->p90);
            else
                fprintf(c->predictions, "%s,%s,%s,%.10g,%.10g\n", c->pend_id[k],
                        drisk_ts_format(r->as_of, ts), tn, r->y, r->score);
        }
    }
    c->n_pend = 0;
    return DRISK_OK;
}

static int eval_row(const struct drisk_snapshot *s, void *ctx, struct drisk_error *err)
{
    struct evalctx *c = ctx;
    double y = drisk_snapshot_label(s, c->target);
    if (isnan(y) || (c->target == DRISK_TARGET_ETA && y <= 0))
        return 0;
    if (c->recal_m) {
        /* the calibration in force at as_of: refitted at each boundary up to it, on the
         * labels known by then; the snapshots scored so far keep theirs */
        if (s->as_of >= c->next_recal && eval_flush(c, err))
            return -1;
        for (; s->as_of >= c->next_recal; c->next_recal += c->every_s) {
            size_t rows;
            if (drisk_recal_fit(&c->pool, c->recal_m, c->next_recal, c->window_s, &rows, err))
                return -1;
            c->recalibrations += rows > 0;
            drisk_recal_pool_prune(&c->pool, c->next_recal, c->window_s);
        }
        int64_t known, avail;
        drisk_recal_moments(s, c->target, &known, &avail);
        if (drisk_recal_pool_add(&c->pool, s->x, y, known, avail)) {
            drisk_error_set(err, DRISK_ENOMEM, "out of memory evaluating");
            return -1;
        }
        if (s->sh->created_at < c->from)
            return 0; /* before the evaluation window: it only calibrates */
    }
    if (c->labels_to > 0 && !drisk_recal_known_in(s, c->target, c->labels_from, c->labels_to))
        return 0;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 65536;
        struct drisk_eval_row *nr = realloc(c->rows, ncap * sizeof *nr);
        if (!nr) {
            drisk_error_set(err, DRISK_ENOMEM, "out of memory evaluating");
            return -1;
        }
        c->rows = nr;
        c->cap = ncap;
    }
    struct drisk_eval_row *r = &c->rows[c->n++];
    r->shipment = s->sh->id;
    r->as_of = s->as_of;
    r->promised_at = s->sh->promised_at;
    r->created_at = s->sh->created_at;
    r->y = y;
    /* today's rules: late = a carrier exception (or, later, the promise passing);
     * lost = no scan for 7 days */
    r->naive = c->target == DRISK_TARGET_LOST
                   ? (c->f_since_last >= 0 && expm1(s->x[c->f_since_last]) >= 168.0)
                   : (c->f_exceptions >= 0 && s->x[c->f_exceptions] > 0);
    r->carrier = (unsigned char)slice_id(c, DRISK_SLICE_CARRIER, s->sh->carrier);
    r->service = (unsigned char)slice_id(c, DRISK_SLICE_SERVICE, s->sh->service);
    char lane[2 * DRISK_NAME_MAX + 4];
    snprintf(lane, sizeof lane, "%s > %s", s->sh->origin, s->sh->destination);
    r->lane = (unsigned char)slice_id(c, DRISK_SLICE_LANE, lane);
    r->value = s->sh->declared_value;
    r->since_scan_h = c->f_since_last >= 0 ? (float)expm1(s->x[c->f_since_last]) : NAN;
    r->lost = s->sh->outcome == DRISK_OUTCOME_LOST;
    r->late = r->lost || s->sh->delivered_at == DRISK_TS_NONE ||
              s->sh->delivered_at > s->sh->promised_at;
    if (c->sample.x)
        reservoir_add(&c->sample, s->x);
    memcpy(c->pend_x + c->n_pend * c->d, s->x, c->d * sizeof *s->x);
    if (c->predictions) /* the only reader of the id, after the batch is scored */
        snprintf(c->pend_id[c->n_pend], DRISK_ID_MAX, "%s", s->sh->shipment_id);
    return ++c->n_pend == EVAL_BATCH && eval_flush(c, err) ? -1 : 0;
}

/* Metrics of all rows (kind < 0) or of one carrier (kind 0) or service (kind 1) slice. */
static enum drisk_status subset_metrics(const struct evalctx *c, int kind, int id,
                                        struct drisk_binary_metrics *bm,
                                        struct drisk_eta_metrics *em, struct drisk_error *err)
{
    size_t n = 0;
    double *y = malloc((c->n + 1) * sizeof *y), *s = malloc((c->n + 1) * sizeof *s),
           *s90 = malloc((c->n + 1) * sizeof *s90);
    enum drisk_status rc = DRISK_OK;
    if (!y || !s || !s90) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->n; i++) {
        const struct drisk_eval_row *r = &c->rows[i];
        if (kind >= 0 && (kind == 0 ? r->carrier : r->service) != id)
            continue;
        y[n] = r->y;
        s[n] = r->score;
        s90[n++] = r->p90;
    }
    memset(bm, 0, sizeof *bm);
    memset(em, 0, sizeof *em);
    bm->auc = bm->pr_auc = bm->brier = bm->log_loss = bm->ece = NAN;
    if (n == 0)
        goto out;
    if (c->target == DRISK_TARGET_ETA)
        rc = drisk_metrics_eta(n, y, s, s90, NULL, em, err);
    else
        rc = drisk_metrics_binary(n, y, s, NULL, bm, err);
out:
    free(y);
    free(s);
    free(s90);
    return rc;
}

static enum drisk_status lead_times(const struct evalctx *c, double threshold,
                                    struct drisk_eval_result *res, struct drisk_error *err)
{
    size_t n = c->n, extra = 0;
    int64_t *sh = malloc((2 * n + 1) * sizeof *sh), *as_of = malloc((2 * n + 1) * sizeof *as_of),
            *prom = malloc((2 * n + 1) * sizeof *prom);
    double *score = malloc((2 * n + 1) * sizeof *score), *y = malloc((2 * n + 1) * sizeof *y);
    enum drisk_status rc = DRISK_OK;
    if (!sh || !as_of || !prom || !score || !y) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sh[i] = c->rows[i].shipment;
        as_of[i] = c->rows[i].as_of;
        prom[i] = c->rows[i].promised_at;
        score[i] = c->rows[i].score;
        y[i] = c->rows[i].y;
    }
    struct drisk_lead_input in = { n, sh, as_of, prom, score, y };
    if ((rc = drisk_metrics_lead_time(&in, threshold, &res->alerts, err)))
        goto out;
    /* the naive rule; for late it also fires when the promise passes undelivered: one
     * more row per late shipment, at promised_at */
    for (size_t i = 0; i < n; i++)
        score[i] = c->rows[i].naive;
    if (c->target == DRISK_TARGET_LATE) {
        /* a marker row for every late snapshot: repeats do not change a first alert */
        for (size_t i = 0; i < n; i++) {
            if (c->rows[i].y != 1)
                continue;
            sh[n + extra] = c->rows[i].shipment;
            as_of[n + extra] = c->rows[i].promised_at;
            prom[n + extra] = c->rows[i].promised_at;
            score[n + extra] = 1;
            y[n + extra] = 1;
            extra++;
        }
    }
    in.n = n + extra;
    rc = drisk_metrics_lead_time(&in, 0.5, &res->naive, err);
out:
    free(sh);
    free(as_of);
    free(prom);
    free(score);
    free(y);
    return rc;
}

/* ---- drift: importance and population stability ---- */

#define DRIFT_SAMPLE 4000
#define PSI_BINS 10
#define PSI_FLOOR 1e-4

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int train_sample_row(const struct drisk_snapshot *s, void *ctx, struct drisk_error *err)
{
    struct evalctx *c = ctx;
    (void)err;
    double y = drisk_snapshot_label(s, c->target);
    if (!isnan(y)) {
        reservoir_add(&c->sample, s->x);
        c->res->train_rows++;
        c->res->train_positives += y > 0.5;
    }
    return 0;
}

/* PSI of feature j: bins at the deciles of the training sample t (n_t rows), shares of
 * both samples per bin floored at PSI_FLOOR, sum of (e - t) ln(e / t). */
static double psi_of(const double *t, size_t n_t, const double *e, size_t n_e, size_t d,
                     size_t j, double *col)
{
    double edge[PSI_BINS - 1], ct[PSI_BINS] = { 0 }, ce[PSI_BINS] = { 0 };
    int ne = 0;
    for (size_t i = 0; i < n_t; i++)
        col[i] = t[i * d + j];
    qsort(col, n_t, sizeof *col, cmp_double);
    for (int q = 1; q < PSI_BINS; q++) {
        double v = col[(size_t)((double)q / PSI_BINS * (double)(n_t - 1))];
        if (ne == 0 || v > edge[ne - 1])
            edge[ne++] = v;
    }
    for (int pass = 0; pass < 2; pass++) {
        const double *x = pass ? e : t;
        size_t n = pass ? n_e : n_t;
        double *cnt = pass ? ce : ct;
        for (size_t i = 0; i < n; i++) {
            double v = x[i * d + j];
            int b = 0;
            while (b < ne && v > edge[b])
                b++;
            cnt[b]++;
        }
    }
    double psi = 0.0;
    for (int b = 0; b <= ne; b++) {
        double pt = fmax(ct[b] / (double)n_t, PSI_FLOOR), pe = fmax(ce[b] / (double)n_e, PSI_FLOOR);
        psi += (pe - pt) * log(pe / pt);
    }
    return psi;
}

/* Each feature's importance on the window's sample and its PSI against a sample of the
 * model's training window. */
static enum drisk_status drift(struct drisk_store *store, const struct drisk_feature_schema *schema,
                               const struct drisk_model *m, const struct drisk_model_row *row,
                               struct evalctx *c, struct drisk_eval_result *res,
                               struct drisk_error *err)
{
    enum drisk_status rc = DRISK_OK;
    size_t d = c->d, ne = c->sample.n;
    double *e = c->sample.x, *contrib = malloc((d + 1) * sizeof *contrib), *col = NULL;
    char (*names)[DRISK_FEATURE_NAME_MAX] = malloc(d * sizeof *names);
    res->features = calloc(d, sizeof *res->features);
    c->sample.x = NULL;
    if (!contrib || !names || !res->features || drisk_feature_names(schema, names)) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    res->n_features = d;
    res->drift_sample = ne;
    for (size_t j = 0; j < d; j++)
        snprintf(res->features[j].name, sizeof res->features[j].name, "%s", names[j]);
    for (size_t i = 0; i < ne; i++) {
        double base;
        if ((rc = drisk_model_explain(m, e + i * d, contrib, &base, err)))
            goto out;
        for (size_t j = 0; j < d; j++)
            res->features[j].importance += fabs(contrib[j]) / (double)ne;
    }
    /* the training window's snapshots of the target, sampled the same way */
    if (reservoir_init(&c->sample, DRIFT_SAMPLE, d)) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    /* the last 15 % of the training period: the validation window its calibration was
     * fitted on (the start of a store's history, before outcome histories fill, is no
     * reference) */
    int64_t from = row->train_until - (int64_t)(0.15 * (double)(row->train_until - row->train_from));
    struct drisk_snapshot_options so = { from, row->train_until, INT64_MIN, DRISK_TS_NONE, 1 };
    if ((rc = drisk_snapshots_run(store, schema, &so, train_sample_row, c, err)))
        goto out;
    res->train_sample = c->sample.n;
    if (c->sample.n == 0 || ne == 0) {
        for (size_t j = 0; j < d; j++)
            res->features[j].psi = NAN;
        goto out;
    }
    if (!(col = malloc(c->sample.n * sizeof *col))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t j = 0; j < d; j++)
        res->features[j].psi = psi_of(c->sample.x, c->sample.n, e, ne, d, j, col);
out:
    free(e);
    free(contrib);
    free(names);
    free(col);
    return rc;
}

enum drisk_status drisk_eval(struct drisk_store *store, const struct drisk_eval_options *opts,
                             struct drisk_eval_result *res, struct drisk_error *err)
{
    struct drisk_model_row row = { 0 };
    struct drisk_feature_schema schema;
    struct drisk_model *m = NULL;
    struct evalctx c = { 0 };
    enum drisk_status rc;
    double t0 = drisk_monotonic_s();
    memset(res, 0, sizeof *res);
    int t = drisk_target_parse(opts->target);
    if (t < 0)
        return drisk_error_set(err, DRISK_EINVAL, "unknown target \"%s\": use late, lost or eta",
                               opts->target);
    c.target = (enum drisk_target)t;
    if ((rc = drisk_registry_load(store, opts->model_id, opts->target, &row, &schema, &m, err)))
        goto out;
    res->model_id = row.id;
    res->meta = m->meta;
    res->train_from = row.train_from;
    res->train_until = row.train_until;
    c.res = res;
    snprintf(res->algorithm, sizeof res->algorithm, "%s", row.algorithm);
    c.m = m;
    c.predictions = opts->predictions;
    c.labels_from = opts->labels_from;
    c.labels_to = opts->labels_to;
    c.f_exceptions = drisk_feature_index(&schema, "exceptions");
    c.f_since_last = drisk_feature_index(&schema, "h_since_last_scan_log");
    if (c.predictions)
        fputs(c.target == DRISK_TARGET_ETA ? "shipment_id,as_of,target,label,score,p90\n"
              : "shipment_id,as_of,target,label,score\n", c.predictions);
    c.d = schema.n_features;
    if (!(c.pend_x = malloc(EVAL_BATCH * c.d * sizeof *c.pend_x)) ||
        !(c.pend_id = malloc(EVAL_BATCH * sizeof *c.pend_id))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    if (opts->drift && reservoir_init(&c.sample, DRIFT_SAMPLE, c.d)) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    struct drisk_snapshot_options so = { opts->from, opts->to, INT64_MIN, DRISK_TS_NONE, 1 };
    if (opts->recalibrate_every_s > 0) {
        c.recal_m = m;
        c.from = c.next_recal = opts->from;
        c.every_s = opts->recalibrate_every_s;
        c.window_s = opts->recalibrate_window_s > 0 ? opts->recalibrate_window_s
                                                    : DRISK_RECAL_WINDOW_DAYS * 86400LL;
        c.pool.rows.d = schema.n_features;
        /* the first window's labels belong to shipments created before from */
        so.emit_from = drisk_recal_history_from(opts->from, c.window_s);
    }
    if ((rc = drisk_snapshots_run(store, &schema, &so, eval_row, &c, err)))
        goto out;
    res->recalibrations = c.recalibrations;
    if ((rc = eval_flush(&c, err)))
        goto out;
    res->rows = c.n;
    if (c.n == 0) {
        rc = drisk_error_set(err, DRISK_EINVAL, "no labeled %s snapshots of shipments created in "
                             "the evaluation window: widen --from/--to", opts->target);
        goto out;
    }
    if ((rc = subset_metrics(&c, -1, 0, &res->m, &res->eta, err)))
        goto out;
    if (c.target != DRISK_TARGET_ETA) {
        double *y = malloc(c.n * sizeof *y), *s = malloc(c.n * sizeof *s);
        if (!y || !s) {
            free(y);
            free(s);
            rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < c.n; i++) {
            y[i] = c.rows[i].y;
            s[i] = c.rows[i].score;
        }
        rc = drisk_metrics_reliability(c.n, y, s, NULL, DRISK_ECE_BINS, &res->reliability, err);
        free(y);
        free(s);
        if (rc || (rc = lead_times(&c, opts->threshold, res, err)))
            goto out;
    }
    for (int kind = 0; kind < 2; kind++)
        for (int i = 0; i < res->n_names[kind] && res->n_slices < DRISK_EVAL_MAX_SLICES; i++) {
            struct drisk_eval_slice *sl = &res->slices[res->n_slices++];
            snprintf(sl->kind, sizeof sl->kind, "%s", kind ? "service" : "carrier");
            snprintf(sl->name, sizeof sl->name, "%s", res->names[kind][i]);
            if ((rc = subset_metrics(&c, kind, i, &sl->m, &sl->eta, err)))
                goto out;
        }
    if (opts->drift && (rc = drift(store, &schema, m, &row, &c, res, err)))
        goto out;
    res->seconds = drisk_monotonic_s() - t0;
    if (opts->keep_rows) {
        res->scored = c.rows;
        c.rows = NULL;
    }
out:
    drisk_recal_pool_free(&c.pool);
    free(c.sample.x);
    free(c.rows);
    free(c.pend_x);
    free(c.pend_id);
    drisk_model_free(m);
    drisk_store_model_row_free(&row);
    return rc;
}

void drisk_eval_result_free(struct drisk_eval_result *res)
{
    if (!res)
        return;
    free(res->scored);
    free(res->features);
    res->scored = NULL;
    res->features = NULL;
}

/* ---- live: the stored scores of a model and its shadow ---- */

struct live_ctx {
    enum drisk_target target;
    int64_t champion, shadow;
    struct evalctx c[2];
    struct drisk_error *err;
};

static int live_row(const struct drisk_shadow_row *r, void *ctx)
{
    struct live_ctx *l = ctx;
    const struct drisk_shipment *sh = &r->sh;
    if (r->champion_id != l->champion || r->shadow_id != l->shadow || isnan(r->champion) ||
        isnan(r->shadow) || sh->outcome == DRISK_OUTCOME_NONE)
        return 0;
    double y;
    int lost = sh->outcome == DRISK_OUTCOME_LOST;
    if (l->target == DRISK_TARGET_LATE) {
        if (r->as_of >= sh->promised_at)
            return 0;
        y = lost || sh->delivered_at == DRISK_TS_NONE || sh->delivered_at > sh->promised_at;
    } else if (l->target == DRISK_TARGET_LOST) {
        if (r->as_of > sh->promised_at + DRISK_LOST_WINDOW_S)
            return 0;
        y = lost;
    } else {
        if (sh->delivered_at == DRISK_TS_NONE || sh->delivered_at <= r->as_of)
            return 0;
        y = (double)(sh->delivered_at - r->as_of) / 3600.0;
    }
    for (int side = 0; side < 2; side++) { /* room on both sides first: rows stay aligned */
        struct evalctx *c = &l->c[side];
        if (c->n == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 4096;
            struct drisk_eval_row *nr = realloc(c->rows, ncap * sizeof *nr);
            if (!nr) {
                drisk_error_set(l->err, DRISK_ENOMEM, "out of memory reading shadow scores");
                return -1;
            }
            c->rows = nr;
            c->cap = ncap;
        }
    }
    for (int side = 0; side < 2; side++) {
        struct evalctx *c = &l->c[side];
        struct drisk_eval_row *e = &c->rows[c->n++];
        memset(e, 0, sizeof *e);
        e->shipment = sh->id;
        e->as_of = r->as_of;
        e->promised_at = sh->promised_at;
        e->created_at = sh->created_at;
        e->y = y;
        e->score = side ? r->shadow : r->champion;
        e->p90 = side ? r->shadow_p90 : r->champion_p90;
        e->value = sh->declared_value;
        e->since_scan_h = NAN;
        e->lost = (unsigned char)lost;
        e->late = lost || sh->delivered_at == DRISK_TS_NONE || sh->delivered_at > sh->promised_at;
        e->carrier = (unsigned char)slice_id(c, DRISK_SLICE_CARRIER, sh->carrier);
        e->service = (unsigned char)slice_id(c, DRISK_SLICE_SERVICE, sh->service);
        char lane[2 * DRISK_NAME_MAX + 4];
        snprintf(lane, sizeof lane, "%s > %s", sh->origin, sh->destination);
        e->lane = (unsigned char)slice_id(c, DRISK_SLICE_LANE, lane);
    }
    return 0;
}

enum drisk_status drisk_eval_live(struct drisk_store *store, const char *target,
                                  int64_t champion_id, int64_t shadow_id, int64_t from,
                                  int64_t to, double threshold, struct drisk_eval_result res[2],
                                  struct drisk_error *err)
{
    enum drisk_status rc;
    struct live_ctx l = { .champion = champion_id, .shadow = shadow_id, .err = err };
    int t = drisk_target_parse(target);
    memset(res, 0, 2 * sizeof *res);
    if (t < 0)
        return drisk_error_set(err, DRISK_EINVAL, "unknown target \"%s\"", target);
    l.target = (enum drisk_target)t;
    for (int side = 0; side < 2; side++) {
        struct drisk_model_row row;
        int64_t id = side ? shadow_id : champion_id;
        if ((rc = drisk_store_model_get(store, id, NULL, &row, err)))
            goto out;
        res[side].model_id = id;
        snprintf(res[side].algorithm, sizeof res[side].algorithm, "%s", row.algorithm);
        res[side].train_from = row.train_from;
        res[side].train_until = row.train_until;
        drisk_store_model_row_free(&row);
        l.c[side].target = l.target;
        l.c[side].res = &res[side];
        res[side].no_naive = 1;
    }
    if ((rc = drisk_store_shadow_iterate(store, l.target, from, to, live_row, &l, err)))
        goto out;
    if (l.c[0].n == 0) {
        rc = drisk_error_set(err, DRISK_EINVAL, "no stored live scores of model %lld beside shadow "
                             "%lld with known %s labels yet: shadow a model (drisk models "
                             "shadow ID), let the server score, and wait for outcomes",
                             (long long)champion_id, (long long)shadow_id, target);
        goto out;
    }
    for (int side = 0; side < 2; side++) {
        struct evalctx *c = &l.c[side];
        struct drisk_eval_result *r = &res[side];
        r->rows = c->n;
        if ((rc = subset_metrics(c, -1, 0, &r->m, &r->eta, err)))
            goto out;
        if (l.target != DRISK_TARGET_ETA) {
            double *y = malloc(c->n * sizeof *y), *s = malloc(c->n * sizeof *s);
            if (!y || !s) {
                free(y), free(s);
                rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < c->n; i++) {
                y[i] = c->rows[i].y;
                s[i] = c->rows[i].score;
            }
            rc = drisk_metrics_reliability(c->n, y, s, NULL, DRISK_ECE_BINS, &r->reliability, err);
            free(y), free(s);
            if (rc || (rc = lead_times(c, threshold, r, err)))
                goto out;
        }
        r->scored = c->rows;
        c->rows = NULL;
    }
    return DRISK_OK;
out:
    for (int side = 0; side < 2; side++) {
        free(l.c[side].rows);
        drisk_eval_result_free(&res[side]);
    }
    return rc;
}
