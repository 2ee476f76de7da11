/* Platt scaling and isotonic regression (see models/calibrate.h), and their section in
 * model files. Platt follows Lin, Lin and Weng, "A note on Platt's probabilistic outputs
 * for support vector machines" (2007), the version libsvm uses: smoothed targets, Newton
 * steps on (a, b) with a backtracking line search, and a loss evaluated without overflow.
 * Isotonic is pool-adjacent-violators over the scores sorted once, equal scores pooled
 * first so that the fitted function is well defined; each pooled block keeps its lowest
 * and highest score as breakpoints, and between breakpoints the value is interpolated
 * linearly (outside them it is clamped), as scikit-learn's IsotonicRegression does. */
#include "models/calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/format.h"
#include "base/log.h"

#define PLATT_MAX_ITER 100
#define PLATT_MIN_STEP 1e-10
#define PLATT_SIGMA 1e-12 /* keeps the Hessian positive definite */
#define PLATT_EPS 1e-5    /* gradient tolerance */
#define ISOTONIC_MAX_POINTS ((size_t)1 << 26)
#define CONFORMAL_MAX_Q 50.0 /* |q| in log-hours: e^50 hours is beyond any parcel */

struct drisk_calibrator {
    enum drisk_calib_kind kind;
    double a, b;       /* Platt; conformal: q50, q90 */
    size_t n;          /* isotonic breakpoints */
    double *x, *y;
};

const char *drisk_calib_kind_name(enum drisk_calib_kind kind)
{
    switch (kind) {
    case DRISK_CALIB_NONE: return "none";
    case DRISK_CALIB_PLATT: return "platt";
    case DRISK_CALIB_ISOTONIC: return "isotonic";
    case DRISK_CALIB_CONFORMAL: return "conformal";
    }
    return NULL;
}

int drisk_calib_kind_parse(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "none") == 0)
        return DRISK_CALIB_NONE;
    if (strcmp(s, "platt") == 0)
        return DRISK_CALIB_PLATT;
    if (strcmp(s, "isotonic") == 0)
        return DRISK_CALIB_ISOTONIC;
    if (strcmp(s, "conformal") == 0)
        return DRISK_CALIB_CONFORMAL;
    return -1;
}

/* Platt's loss: sum w_i * cross-entropy(t_i, 1/(1+exp(a f_i + b))), overflow-free. */
static double platt_loss(const double *f, const double *t, const double *w, size_t n, double a,
                         double b)
{
    double loss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double z = f[i] * a + b;
        double wi = w ? w[i] : 1.0;
        loss += wi * (z >= 0 ? t[i] * z + log1p(exp(-z)) : (t[i] - 1.0) * z + log1p(exp(z)));
    }
    return loss;
}

static enum drisk_status platt_fit(const double *f, const double *y, const double *w, size_t n,
                                   struct drisk_calibrator *c, struct drisk_error *err)
{
    enum drisk_status st;
    double *t = malloc(n * sizeof *t);
    if (!t) {
        st = drisk_error_set(err, DRISK_ENOMEM, "platt: out of memory");
        goto out;
    }
    double prior1 = 0.0, prior0 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        if (y[i] > 0.5)
            prior1 += wi;
        else
            prior0 += wi;
    }
    double hi = (prior1 + 1.0) / (prior1 + 2.0), lo = 1.0 / (prior0 + 2.0);
    for (size_t i = 0; i < n; i++)
        t[i] = y[i] > 0.5 ? hi : lo;
    double a = 0.0, b = log((prior0 + 1.0) / (prior1 + 1.0));
    double fval = platt_loss(f, t, w, n, a, b);
    int iter;
    for (iter = 0; iter < PLATT_MAX_ITER; iter++) {
        double h11 = PLATT_SIGMA, h22 = PLATT_SIGMA, h21 = 0.0, g1 = 0.0, g2 = 0.0;
        for (size_t i = 0; i < n; i++) {
            double z = f[i] * a + b, p, q;
            double wi = w ? w[i] : 1.0;
            if (z >= 0) {
                double e = exp(-z);
                p = e / (1.0 + e);
                q = 1.0 / (1.0 + e);
            } else {
                double e = exp(z);
                p = 1.0 / (1.0 + e);
                q = e / (1.0 + e);
            }
            double d2 = wi * p * q;
            h11 += f[i] * f[i] * d2;
            h22 += d2;
            h21 += f[i] * d2;
            double d1 = wi * (t[i] - p);
            g1 += f[i] * d1;
            g2 += d1;
        }
        if (fabs(g1) < PLATT_EPS && fabs(g2) < PLATT_EPS)
            break;
        double det = h11 * h22 - h21 * h21;
        double da = -(h22 * g1 - h21 * g2) / det;
        double db = -(-h21 * g1 + h11 * g2) / det;
        double gd = g1 * da + g2 * db;
        double step = 1.0;
        while (step >= PLATT_MIN_STEP) {
            double na = a + step * da, nb = b + step * db;
            double nf = platt_loss(f, t, w, n, na, nb);
            if (nf < fval + 1e-4 * step * gd) {
                a = na;
                b = nb;
                fval = nf;
                break;
            }
            step /= 2.0;
        }
        if (step < PLATT_MIN_STEP) {
            /* No further descent: (a, b) is as good as double precision allows. */
            DRISK_LOG(DRISK_LOG_DEBUG, "platt: line search stopped at iteration %d", iter);
            break;
        }
    }
    if (iter == PLATT_MAX_ITER)
        DRISK_LOG(DRISK_LOG_WARN, "platt: reached %d iterations without converging",
                  PLATT_MAX_ITER);
    if (!isfinite(a) || !isfinite(b)) {
        st = drisk_error_set(err, DRISK_EINVAL, "platt: fit diverged (scores not finite?)");
        goto out;
    }
    c->a = a;
    c->b = b;
    st = DRISK_OK;
out:
    free(t);
    return st;
}

/* Sort key for isotonic fitting. */
struct iso_point {
    double x, y, w;
};

static int iso_cmp(const void *pa, const void *pb)
{
    const struct iso_point *a = pa, *b = pb;
    return (a->x > b->x) - (a->x < b->x);
}

static enum drisk_status isotonic_fit(const double *f, const double *y, const double *w,
                                      size_t n, struct drisk_calibrator *c,
                                      struct drisk_error *err)
{
    enum drisk_status st;
    /* Blocks: pooled runs with weighted mean y (sy / sw) spanning scores [x0, x1]. */
    struct iso_point *pts = malloc(n * sizeof *pts);
    double *bsy = malloc(n * sizeof *bsy), *bsw = malloc(n * sizeof *bsw);
    double *bx0 = malloc(n * sizeof *bx0), *bx1 = malloc(n * sizeof *bx1);
    if (!pts || !bsy || !bsw || !bx0 || !bx1) {
        st = drisk_error_set(err, DRISK_ENOMEM, "isotonic: out of memory");
        goto out;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        if (wi > 0.0)
            pts[m++] = (struct iso_point){ f[i], y[i], wi };
    }
    qsort(pts, m, sizeof *pts, iso_cmp);
    size_t nb = 0;
    for (size_t i = 0; i < m;) {
        /* equal scores form one point first */
        double sy = 0.0, sw = 0.0, x = pts[i].x;
        for (; i < m && pts[i].x == x; i++) {
            sy += pts[i].w * pts[i].y;
            sw += pts[i].w;
        }
        bsy[nb] = sy;
        bsw[nb] = sw;
        bx0[nb] = bx1[nb] = x;
        nb++;
        /* pool while the last block's mean is below the one before it */
        while (nb > 1 && bsy[nb - 1] * bsw[nb - 2] < bsy[nb - 2] * bsw[nb - 1]) {
            bsy[nb - 2] += bsy[nb - 1];
            bsw[nb - 2] += bsw[nb - 1];
            bx1[nb - 2] = bx1[nb - 1];
            nb--;
        }
    }
    size_t np = 0;
    for (size_t k = 0; k < nb; k++)
        np += bx1[k] > bx0[k] ? 2 : 1;
    c->x = malloc(np * sizeof *c->x);
    c->y = malloc(np * sizeof *c->y);
    if (!c->x || !c->y) {
        st = drisk_error_set(err, DRISK_ENOMEM, "isotonic: out of memory");
        goto out;
    }
    c->n = 0;
    for (size_t k = 0; k < nb; k++) {
        double v = bsy[k] / bsw[k];
        c->x[c->n] = bx0[k];
        c->y[c->n++] = v;
        if (bx1[k] > bx0[k]) {
            c->x[c->n] = bx1[k];
            c->y[c->n++] = v;
        }
    }
    st = DRISK_OK;
out:
    free(pts);
    free(bsy);
    free(bsw);
    free(bx0);
    free(bx1);
    return st;
}

enum drisk_status drisk_calibrator_fit(enum drisk_calib_kind kind, const double *score,
                                       const double *y, const double *w, size_t n,
                                       struct drisk_calibrator **out, struct drisk_error *err)
{
    struct drisk_calibrator *c = NULL;
    enum drisk_status st;
    *out = NULL;
    if (kind != DRISK_CALIB_PLATT && kind != DRISK_CALIB_ISOTONIC) {
        st = drisk_error_set(err, DRISK_EINVAL, "calibrator: unknown kind %d", (int)kind);
        goto out;
    }
    if (n == 0 || !score || !y || n > ISOTONIC_MAX_POINTS) {
        st = drisk_error_set(err, DRISK_EINVAL, "calibrator: need 1 to %zu scores, got %zu",
                             ISOTONIC_MAX_POINTS, n);
        goto out;
    }
    double pos = 0.0, neg = 0.0;
    for (size_t i = 0; i < n; i++) {
        double wi = w ? w[i] : 1.0;
        if (!isfinite(score[i]) || (y[i] != 0.0 && y[i] != 1.0) || !isfinite(wi) || wi < 0.0) {
            st = drisk_error_set(err, DRISK_EINVAL, "calibrator: row %zu has score %g, label %g, "
                                 "weight %g", i, score[i], y[i], wi);
            goto out;
        }
        if (y[i] == 1.0)
            pos += wi;
        else
            neg += wi;
    }
    if (!(pos > 0.0) || !(neg > 0.0)) {
        st = drisk_error_set(err, DRISK_EINVAL, "calibrator: the calibration set needs both "
                             "classes (positive weight %g, negative %g)", pos, neg);
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        st = drisk_error_set(err, DRISK_ENOMEM, "calibrator: out of memory");
        goto out;
    }
    c->kind = kind;
    st = kind == DRISK_CALIB_PLATT ? platt_fit(score, y, w, n, c, err)
                                   : isotonic_fit(score, y, w, n, c, err);
    if (st != DRISK_OK)
        goto out;
    *out = c;
    c = NULL;
out:
    drisk_calibrator_free(c);
    return st;
}

struct resid {
    double r, w;
};

static int resid_cmp(const void *pa, const void *pb)
{
    double x = ((const struct resid *)pa)->r, y = ((const struct resid *)pb)->r;
    return (x > y) - (x < y);
}

static int double_cmp(const void *pa, const void *pb)
{
    double x = *(const double *)pa, y = *(const double *)pb;
    return (x > y) - (x < y);
}

static double conformal_quantile(const double *r, const double *w, size_t n, double total,
                                 double q)
{
    double want = q * (total + total / (double)n), cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cum += w ? w[i] : 1.0;
        if (cum >= want)
            return r[i];
    }
    return r[n - 1];
}

void drisk_conformal_quantiles(double *resid, double *w, size_t n, double *q50, double *q90)
{
    double total = 0.0;
    if (w) { /* sort the pairs together */
        struct resid *p = malloc(n * sizeof *p);
        if (p) {
            for (size_t i = 0; i < n; i++)
                p[i] = (struct resid){ resid[i], w[i] };
            qsort(p, n, sizeof *p, resid_cmp);
            for (size_t i = 0; i < n; i++)
                resid[i] = p[i].r, w[i] = p[i].w;
            free(p);
        } else {
            w = NULL; /* out of memory: unweighted is still a valid quantile */
        }
    }
    if (!w)
        qsort(resid, n, sizeof *resid, double_cmp);
    for (size_t i = 0; i < n; i++)
        total += w ? w[i] : 1.0;
    *q50 = conformal_quantile(resid, w, n, total, 0.5);
    *q90 = conformal_quantile(resid, w, n, total, 0.9);
}

enum drisk_status drisk_calibrator_fit_conformal(double *resid, double *w, size_t n,
                                                 struct drisk_calibrator **out,
                                                 struct drisk_error *err)
{
    *out = NULL;
    if (n == 0)
        return drisk_error_set(err, DRISK_EINVAL, "conformal: no residuals to fit on");
    double q50, q90;
    drisk_conformal_quantiles(resid, w, n, &q50, &q90);
    if (!(fabs(q50) <= CONFORMAL_MAX_Q && fabs(q90) <= CONFORMAL_MAX_Q))
        return drisk_error_set(err, DRISK_EINVAL, "conformal: residual quantiles %g, %g are out "
                               "of range", q50, q90);
    struct drisk_calibrator *c = calloc(1, sizeof *c);
    if (!c)
        return drisk_error_set(err, DRISK_ENOMEM, "conformal: out of memory");
    c->kind = DRISK_CALIB_CONFORMAL;
    c->a = q50;
    c->b = q90;
    *out = c;
    return DRISK_OK;
}

int drisk_calibrator_interval(const struct drisk_calibrator *c, double *q50, double *q90)
{
    if (!c || c->kind != DRISK_CALIB_CONFORMAL)
        return -1;
    *q50 = c->a;
    *q90 = c->b;
    return 0;
}

double drisk_calibrator_apply(const struct drisk_calibrator *c, double score)
{
    if (c->kind == DRISK_CALIB_PLATT) {
        double z = c->a * score + c->b;
        return z >= 0 ? exp(-z) / (1.0 + exp(-z)) : 1.0 / (1.0 + exp(z));
    }
    if (c->kind != DRISK_CALIB_ISOTONIC || c->n == 0)
        return NAN;
    if (score <= c->x[0])
        return c->y[0];
    if (score >= c->x[c->n - 1])
        return c->y[c->n - 1];
    /* the last breakpoint <= score: x[lo] <= score < x[hi] */
    size_t lo = 0, hi = c->n - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->x[mid] <= score)
            lo = mid;
        else
            hi = mid;
    }
    double t = (score - c->x[lo]) / (c->x[hi] - c->x[lo]);
    return c->y[lo] + t * (c->y[hi] - c->y[lo]);
}

enum drisk_calib_kind drisk_calibrator_kind(const struct drisk_calibrator *c)
{
    return c ? c->kind : DRISK_CALIB_NONE;
}

int drisk_calibrator_platt(const struct drisk_calibrator *c, double *a, double *b)
{
    if (!c || c->kind != DRISK_CALIB_PLATT)
        return -1;
    *a = c->a;
    *b = c->b;
    return 0;
}

size_t drisk_calibrator_isotonic(const struct drisk_calibrator *c, const double **x,
                                 const double **y)
{
    if (!c || c->kind != DRISK_CALIB_ISOTONIC)
        return 0;
    if (x)
        *x = c->x;
    if (y)
        *y = c->y;
    return c->n;
}

void drisk_calibrator_free(struct drisk_calibrator *c)
{
    if (!c)
        return;
    free(c->x);
    free(c->y);
    free(c);
}

void drisk_calibrator_save(const struct drisk_calibrator *c, struct drisk_buf *buf)
{
    drisk_buf_put_u8(buf, (uint8_t)drisk_calibrator_kind(c));
    if (!c)
        return;
    if (c->kind == DRISK_CALIB_PLATT || c->kind == DRISK_CALIB_CONFORMAL) {
        drisk_buf_put_f64(buf, c->a);
        drisk_buf_put_f64(buf, c->b);
    } else {
        drisk_buf_put_u64(buf, c->n);
        drisk_buf_put_f64s(buf, c->x, c->n);
        drisk_buf_put_f64s(buf, c->y, c->n);
    }
}

enum drisk_status drisk_calibrator_load(struct drisk_reader *r, struct drisk_calibrator **out,
                                        struct drisk_error *err)
{
    struct drisk_calibrator *c = NULL;
    enum drisk_status st;
    *out = NULL;
    uint8_t kind = drisk_reader_u8(r);
    if ((st = drisk_reader_check(r, "model calibrator", err)) != DRISK_OK)
        goto out;
    if (kind == DRISK_CALIB_NONE)
        goto out;
    if (kind != DRISK_CALIB_PLATT && kind != DRISK_CALIB_ISOTONIC &&
        kind != DRISK_CALIB_CONFORMAL) {
        st = drisk_error_set(err, DRISK_EINVAL, "model calibrator: unknown kind %u",
                             (unsigned)kind);
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        st = drisk_error_set(err, DRISK_ENOMEM, "model calibrator: out of memory");
        goto out;
    }
    c->kind = (enum drisk_calib_kind)kind;
    if (kind == DRISK_CALIB_PLATT || kind == DRISK_CALIB_CONFORMAL) {
        c->a = drisk_reader_f64(r);
        c->b = drisk_reader_f64(r);
        if ((st = drisk_reader_check(r, "model calibrator", err)) != DRISK_OK)
            goto out;
        if (!isfinite(c->a) || !isfinite(c->b)) {
            st = drisk_error_set(err, DRISK_EINVAL, "model calibrator: %s parameters are not "
                                 "finite", drisk_calib_kind_name(c->kind));
            goto out;
        }
        if (kind == DRISK_CALIB_CONFORMAL &&
            !(c->a <= c->b && fabs(c->a) <= CONFORMAL_MAX_Q && fabs(c->b) <= CONFORMAL_MAX_Q)) {
            st = drisk_error_set(err, DRISK_EINVAL, "model calibrator: conformal quantiles %g, %g "
                                 "are out of order or out of range", c->a, c->b);
            goto out;
        }
    } else {
        size_t n = drisk_reader_count(r, 16, ISOTONIC_MAX_POINTS);
        if ((st = drisk_reader_check(r, "model calibrator", err)) != DRISK_OK)
            goto out;
        if (n == 0) {
            st = drisk_error_set(err, DRISK_EINVAL, "model calibrator: isotonic without "
                                 "breakpoints");
            goto out;
        }
        c->x = malloc(n * sizeof *c->x);
        c->y = malloc(n * sizeof *c->y);
        if (!c->x || !c->y) {
            st = drisk_error_set(err, DRISK_ENOMEM, "model calibrator: out of memory");
            goto out;
        }
        c->n = n;
        drisk_reader_f64s(r, c->x, n);
        drisk_reader_f64s(r, c->y, n);
        if ((st = drisk_reader_check(r, "model calibrator", err)) != DRISK_OK)
            goto out;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(c->x[i]) || !(c->y[i] >= 0.0 && c->y[i] <= 1.0) ||
                (i > 0 && !(c->x[i] > c->x[i - 1] && c->y[i] >= c->y[i - 1]))) {
                st = drisk_error_set(err, DRISK_EINVAL, "model calibrator: isotonic breakpoint "
                                     "%zu is out of order or out of range", i);
                goto out;
            }
        }
    }
    *out = c;
    c = NULL;
    st = DRISK_OK;
out:
    drisk_calibrator_free(c);
    return st;
}
