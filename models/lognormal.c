/* The eta learner ("lognormal"): hours until delivery as a log-normal residual model.
 * Ridge regression on log(hours) over standardized features gives mu(x), the residual
 * standard deviation sigma is measured on the training rows (or, with sigma_from_valid,
 * on the validation rows), and the prediction is P50 = exp(mu), P90 = exp(mu + z90 sigma)
 * with z90 = 1.2815515655446004, the standard normal's 90th percentile.
 *
 * The ridge solution comes from the normal equations (Xs^T W Xs / W + l2 I) beta =
 * Xs^T W log(y) / W with an unpenalized intercept column. Xs^T W Xs is accumulated block
 * by block with cblas_dsyrk over a small standardized buffer (so memory stays
 * O(block * d) however many rows there are, and the matrix is read once), the right-hand
 * side with cblas_dgemv, and the (d+1) x (d+1) system is solved by a Cholesky
 * factorization written here.
 *
 * Payload: the linear payload (models/format.h: d, b, means, stds, weights), then f64
 * sigma. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "models/format.h"
#include "base/log.h"

#define Z90 1.2815515655446004
#define BLOCK_ROWS 4096
#define MAX_FEATURES 4096 /* the dense normal equations are (d+1)^2 */

struct lognormal {
    struct drisk_model base;
    struct drisk_linear lin;
    double sigma;
};

static void lognormal_free(struct drisk_model *base)
{
    struct lognormal *m = (struct lognormal *)base;
    drisk_linear_clear(&m->lin);
    free(m);
}

/* In-place Cholesky A = L L^T of a symmetric positive definite k x k row-major matrix
 * (lower triangle written); -1 if A is not numerically positive definite. */
static int cholesky(double *a, size_t k)
{
    for (size_t j = 0; j < k; j++) {
        double s = a[j * k + j];
        for (size_t p = 0; p < j; p++)
            s -= a[j * k + p] * a[j * k + p];
        if (!(s > 0.0) || !isfinite(s))
            return -1;
        double ljj = sqrt(s);
        a[j * k + j] = ljj;
        for (size_t i = j + 1; i < k; i++) {
            double t = a[i * k + j];
            for (size_t p = 0; p < j; p++)
                t -= a[i * k + p] * a[j * k + p];
            a[i * k + j] = t / ljj;
        }
    }
    return 0;
}

/* Solves L L^T x = b in place (b becomes x). */
static void cholesky_solve(const double *l, size_t k, double *b)
{
    for (size_t i = 0; i < k; i++) {
        double s = b[i];
        for (size_t p = 0; p < i; p++)
            s -= l[i * k + p] * b[p];
        b[i] = s / l[i * k + i];
    }
    for (size_t i = k; i-- > 0;) {
        double s = b[i];
        for (size_t p = i + 1; p < k; p++)
            s -= l[p * k + i] * b[p];
        b[i] = s / l[i * k + i];
    }
}

/* The weighted RMS of log(y) - mu(x) over ds. */
static double residual_sigma(const struct drisk_linear *lin, const struct drisk_dataset *ds)
{
    double ss = 0.0, sw = 0.0;
    for (size_t i = 0; i < ds->n_rows; i++) {
        double w = ds->weight ? ds->weight[i] : 1.0;
        double r = log(ds->y[i]) - drisk_linear_score(lin, ds->x + i * ds->n_features);
        ss += w * r * r;
        sw += w;
    }
    return sqrt(ss / sw);
}

static enum drisk_status lognormal_fit(const struct drisk_dataset *train,
                                       const struct drisk_dataset *valid,
                                       const struct drisk_fit_options *opt,
                                       struct drisk_model **out, struct drisk_error *err)
{
    enum drisk_status st;
    size_t n = train->n_rows, d = train->n_features, k = d + 1;
    struct lognormal *m = NULL;
    double *buf = NULL, *zb = NULL, *a = NULL, *rhs = NULL;
    if (d > MAX_FEATURES || n > (size_t)2147483647) {
        st = drisk_error_set(err, DRISK_EINVAL, "lognormal: %zu rows x %zu features is too many "
                             "(at most %d features)", n, d, MAX_FEATURES);
        goto out;
    }
    if (opt->sigma_from_valid && !valid) {
        st = drisk_error_set(err, DRISK_EINVAL, "lognormal: sigma_from_valid needs a validation "
                             "set");
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        st = drisk_error_set(err, DRISK_ENOMEM, "lognormal: out of memory");
        goto out;
    }
    m->base.ops = &drisk_lognormal_ops;
    if ((st = drisk_linear_init(&m->lin, d, err)) != DRISK_OK)
        goto out;
    buf = malloc(BLOCK_ROWS * k * sizeof *buf);
    zb = malloc(BLOCK_ROWS * sizeof *zb);
    a = calloc(k * k, sizeof *a);
    rhs = calloc(k, sizeof *rhs);
    if (!buf || !zb || !a || !rhs) {
        st = drisk_error_set(err, DRISK_ENOMEM, "lognormal: out of memory");
        goto out;
    }
    struct drisk_linear *lin = &m->lin;
    if ((st = drisk_column_moments(train->x, n, d, lin->mean, lin->std, err)) != DRISK_OK)
        goto out;

    /* Accumulate Xa^T W Xa and Xa^T W z, Xa = [Xs 1], rows scaled by sqrt(w). */
    double wsum = 0.0;
    for (size_t r0 = 0; r0 < n; r0 += BLOCK_ROWS) {
        size_t rows = n - r0 < BLOCK_ROWS ? n - r0 : BLOCK_ROWS;
        for (size_t i = 0; i < rows; i++) {
            const double *row = train->x + (r0 + i) * d;
            double w = train->weight ? train->weight[r0 + i] : 1.0;
            double sq = sqrt(w);
            double *dst = buf + i * k;
            for (size_t j = 0; j < d; j++)
                dst[j] = sq * ((row[j] - lin->mean[j]) / lin->std[j]);
            dst[d] = sq;
            zb[i] = sq * log(train->y[r0 + i]);
            wsum += w;
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)rows, 1.0, buf, (int)k,
                    1.0, a, (int)k);
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)rows, (int)k, 1.0, buf, (int)k, zb, 1, 1.0,
                    rhs, 1);
    }
    for (size_t i = 0; i < k; i++) {
        for (size_t j = i; j < k; j++) {
            a[i * k + j] /= wsum;
            a[j * k + i] = a[i * k + j]; /* mirror the upper triangle */
        }
        rhs[i] /= wsum;
    }
    for (size_t j = 0; j < d; j++)
        a[j * k + j] += opt->l2;
    if (cholesky(a, k) != 0) {
        st = drisk_error_set(err, DRISK_EINVAL, "lognormal: the normal equations are singular "
                             "(use l2 > 0)");
        goto out;
    }
    cholesky_solve(a, k, rhs);
    for (size_t j = 0; j < k; j++) {
        if (!isfinite(rhs[j])) {
            st = drisk_error_set(err, DRISK_EINVAL, "lognormal: the solution is not finite");
            goto out;
        }
    }
    memcpy(lin->w, rhs, d * sizeof *rhs);
    lin->b = rhs[d];

    double train_sigma = residual_sigma(lin, train);
    m->sigma = opt->sigma_from_valid ? residual_sigma(lin, valid) : train_sigma;
    if (!isfinite(m->sigma)) {
        st = drisk_error_set(err, DRISK_EINVAL, "lognormal: residual sigma is not finite");
        goto out;
    }
    if ((st = drisk_model_set_param_g(&m->base, "l2", opt->l2, err)) != DRISK_OK ||
        (st = drisk_model_set_param_g(&m->base, "sigma", m->sigma, err)) ||
        (st = drisk_model_set_param(&m->base, "sigma_from",
                                    opt->sigma_from_valid ? "valid" : "train", err)) ||
        (st = drisk_model_set_param_g(&m->base, "train_rmse_log", train_sigma, err)))
        goto out;
    *out = &m->base;
    m = NULL;
out:
    if (m)
        lognormal_free(&m->base);
    free(buf);
    free(zb);
    free(a);
    free(rhs);
    return st;
}

static enum drisk_status lognormal_predict(const struct drisk_model *base, const double *x,
                                           size_t n, struct drisk_prediction *out,
                                           struct drisk_error *err)
{
    (void)err;
    const struct lognormal *m = (const struct lognormal *)base;
    for (size_t i = 0; i < n; i++) {
        double mu = drisk_linear_score(&m->lin, x + i * m->lin.d);
        out[i].score = mu;
        out[i].p50_h = exp(mu);
        out[i].p90_h = exp(mu + Z90 * m->sigma);
    }
    return DRISK_OK;
}

static enum drisk_status lognormal_explain(const struct drisk_model *base, const double *x,
                                           double *contrib, double *bias, struct drisk_error *err)
{
    (void)err;
    drisk_linear_explain(&((const struct lognormal *)base)->lin, x, contrib, bias);
    return DRISK_OK;
}

static enum drisk_status lognormal_save(const struct drisk_model *base, struct drisk_buf *buf,
                                        struct drisk_error *err)
{
    (void)err;
    const struct lognormal *m = (const struct lognormal *)base;
    drisk_linear_save(&m->lin, buf);
    drisk_buf_put_f64(buf, m->sigma);
    return DRISK_OK;
}

static enum drisk_status lognormal_load(struct drisk_reader *r,
                                        const struct drisk_model_meta *meta,
                                        struct drisk_model **out, struct drisk_error *err)
{
    enum drisk_status st;
    struct lognormal *m = calloc(1, sizeof *m);
    if (!m) {
        st = drisk_error_set(err, DRISK_ENOMEM, "model: out of memory");
        goto out;
    }
    m->base.ops = &drisk_lognormal_ops;
    if ((st = drisk_linear_load(r, meta->n_features, &m->lin, err)) != DRISK_OK)
        goto out;
    m->sigma = drisk_reader_f64(r);
    if ((st = drisk_reader_check(r, "model payload", err)) != DRISK_OK)
        goto out;
    if (!isfinite(m->sigma) || m->sigma < 0.0) {
        st = drisk_error_set(err, DRISK_EINVAL, "model payload: sigma %g is not a finite "
                             "non-negative number", m->sigma);
        goto out;
    }
    *out = &m->base;
    m = NULL;
out:
    if (m)
        lognormal_free(&m->base);
    return st;
}

static void lognormal_training_options(struct drisk_fit_options *opt)
{
    opt->sigma_from_valid = 1; /* P90 from the spread on held-out rows */
}

const struct drisk_model_ops drisk_lognormal_ops = {
    .name = "lognormal",
    .classification = 0,
    .regression = 1,
    .fit = lognormal_fit,
    .predict = lognormal_predict,
    .explain = lognormal_explain,
    .save = lognormal_save,
    .load = lognormal_load,
    .free = lognormal_free,
    .reports_l2 = 1,
    .training_options = lognormal_training_options,
};
