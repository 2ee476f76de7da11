/* models/: the logistic objective against a naive loop and finite differences, L-BFGS
 * against Newton's method, class and row weights, the lognormal eta learner's coverage,
 * Platt and isotonic calibration, and the model file format: bit-identical round trips,
 * schema refusal, and every truncation and corruption refused without a crash. All data
 * comes from fixed seeds. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/calibrate.h"
#include "models/format.h"
#include "models/model.h"
#include "tests/check.h"

#define SCHEMA "feat-v1-0123456789abcdef"

/* ---- deterministic random numbers ---- */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s;
}

static uint64_t rng_u64(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unif(void)
{
    return (double)(rng_u64() >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(void)
{
    double u = rng_unif(), v = rng_unif();
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static double sigmoid(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

/* A classification set: x ~ N(shift_j, scale_j), y ~ Bernoulli(sigmoid(b0 + x.beta)).
 * Columns have different offsets and scales so standardization matters. Caller frees. */
struct synth {
    struct drisk_dataset ds;
    double *x, *y;
};

static void synth_free(struct synth *s)
{
    free(s->x);
    free(s->y);
}

static void make_logistic(struct synth *s, size_t n, size_t d, double b0, uint64_t seed)
{
    rng_seed(seed);
    s->x = malloc(n * d * sizeof *s->x);
    s->y = malloc(n * sizeof *s->y);
    for (size_t i = 0; i < n; i++) {
        double z = b0;
        for (size_t j = 0; j < d; j++) {
            double v = rng_normal();
            s->x[i * d + j] = 10.0 * (double)j + (1.0 + (double)j) * v;
            z += (j % 2 ? -0.7 : 0.9) * v / (1.0 + 0.3 * (double)j);
        }
        s->y[i] = rng_unif() < sigmoid(z) ? 1.0 : 0.0;
    }
    s->ds = (struct drisk_dataset){ n, d, s->x, s->y, NULL };
}

/* ---- the objective ---- */

static double naive_objective(const double *xs, size_t n, size_t d, const double *y,
                              const double *sw, double sw_sum, double l2, const double *theta,
                              double *grad)
{
    double loss = 0.0;
    for (size_t j = 0; j <= d; j++)
        grad[j] = 0.0;
    for (size_t i = 0; i < n; i++) {
        double z = theta[d];
        for (size_t j = 0; j < d; j++)
            z += xs[i * d + j] * theta[j];
        double w = sw ? sw[i] : 1.0;
        double p = 1.0 / (1.0 + exp(-z));
        loss += w * (log(1.0 + exp(z)) - y[i] * z);
        for (size_t j = 0; j < d; j++)
            grad[j] += w * (p - y[i]) * xs[i * d + j] / sw_sum;
        grad[d] += w * (p - y[i]) / sw_sum;
    }
    double reg = 0.0;
    for (size_t j = 0; j < d; j++) {
        reg += theta[j] * theta[j];
        grad[j] += l2 * theta[j];
    }
    return loss / sw_sum + 0.5 * l2 * reg;
}

static double rel_err(double a, double b, double floor)
{
    double den = fabs(b) > floor ? fabs(b) : floor;
    return fabs(a - b) / den;
}

static void test_objective(void)
{
    enum { N = 300, D = 7 };
    double *xs = malloc(N * D * sizeof *xs), y[N], sw[N], theta[D + 1], g[D + 1], gn[D + 1];
    double gt[D + 1], z[N], r[N], tp[D + 1];
    rng_seed(42);
    double sw_sum = 0.0;
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < D; j++)
            xs[i * D + j] = rng_normal();
        y[i] = rng_unif() < 0.3 ? 1.0 : 0.0;
        sw[i] = 0.5 + rng_unif();
        sw_sum += sw[i];
    }
    for (size_t j = 0; j <= D; j++)
        theta[j] = 0.8 * rng_normal();
    for (int weighted = 0; weighted < 2; weighted++) {
        const double *w = weighted ? sw : NULL;
        double wsum = weighted ? sw_sum : N;
        double l2 = weighted ? 0.05 : 0.0;
        double f = drisk_logreg_objective(xs, N, D, y, w, wsum, l2, theta, g, z, r);
        double fn = naive_objective(xs, N, D, y, w, wsum, l2, theta, gn);
        CHECK_MSG(rel_err(f, fn, 1e-300) < 1e-10, "loss %.17g naive %.17g", f, fn);
        double worst = 0.0, worst_fd = 0.0;
        for (size_t j = 0; j <= D; j++) {
            double e = rel_err(g[j], gn[j], 1e-3);
            worst = e > worst ? e : worst;
            /* central finite difference */
            double h = 1e-5;
            memcpy(tp, theta, sizeof tp);
            tp[j] = theta[j] + h;
            double fp = drisk_logreg_objective(xs, N, D, y, w, wsum, l2, tp, gt, z, r);
            tp[j] = theta[j] - h;
            double fm = drisk_logreg_objective(xs, N, D, y, w, wsum, l2, tp, gt, z, r);
            double fd = (fp - fm) / (2.0 * h);
            e = rel_err(fd, g[j], 1e-3);
            worst_fd = e > worst_fd ? e : worst_fd;
        }
        CHECK_MSG(worst < 1e-10, "gradient vs naive: relative error %.3g", worst);
        CHECK_MSG(worst_fd < 1e-6, "gradient vs finite differences: relative error %.3g",
                  worst_fd);
    }
    /* huge scores neither overflow nor lose the loss */
    for (size_t j = 0; j <= D; j++)
        tp[j] = 400.0;
    double fbig = drisk_logreg_objective(xs, N, D, y, NULL, N, 0.0, tp, g, z, r);
    CHECK(isfinite(fbig) && fbig > 10.0);
    free(xs);

    /* enough rows for the row blocks to be shared among threads: same as the naive loop */
    enum { NB = 200003, DB = 9 };
    double *bx = malloc(NB * DB * sizeof *bx), *by = malloc(NB * sizeof *by);
    double *bz = malloc(NB * sizeof *bz), *br = malloc(NB * sizeof *br);
    double bt[DB + 1], bg[DB + 1], bgn[DB + 1];
    for (size_t i = 0; i < NB; i++) {
        for (size_t j = 0; j < DB; j++)
            bx[i * DB + j] = rng_normal();
        by[i] = rng_unif() < 0.2 ? 1.0 : 0.0;
    }
    for (size_t j = 0; j <= DB; j++)
        bt[j] = 0.3 * rng_normal();
    double fb = drisk_logreg_objective(bx, NB, DB, by, NULL, NB, 0.01, bt, bg, bz, br);
    double fbn = naive_objective(bx, NB, DB, by, NULL, NB, 0.01, bt, bgn);
    double worst = 0.0;
    for (size_t j = 0; j <= DB; j++)
        worst = fmax(worst, rel_err(bg[j], bgn[j], 1e-3));
    CHECK_MSG(rel_err(fb, fbn, 1e-300) < 1e-10 && worst < 1e-9, "%zu rows: loss %.17g naive "
              "%.17g, gradient error %.3g", (size_t)NB, fb, fbn, worst);
    /* and the same bits on every call (a fixed partition of rows among threads) */
    double bg2[DB + 1];
    CHECK(drisk_logreg_objective(bx, NB, DB, by, NULL, NB, 0.01, bt, bg2, bz, br) == fb &&
          memcmp(bg, bg2, sizeof bg) == 0);
    free(bx);
    free(by);
    free(bz);
    free(br);
}

/* ---- L-BFGS against Newton ---- */

/* Solves a k x k system (row-major a, destroyed) by Gaussian elimination with pivoting. */
static void gauss_solve(double *a, double *b, size_t k)
{
    for (size_t c = 0; c < k; c++) {
        size_t p = c;
        for (size_t i = c + 1; i < k; i++)
            if (fabs(a[i * k + c]) > fabs(a[p * k + c]))
                p = i;
        for (size_t j = 0; j < k; j++) {
            double t = a[c * k + j];
            a[c * k + j] = a[p * k + j];
            a[p * k + j] = t;
        }
        double t = b[c];
        b[c] = b[p];
        b[p] = t;
        for (size_t i = c + 1; i < k; i++) {
            double f = a[i * k + c] / a[c * k + c];
            for (size_t j = c; j < k; j++)
                a[i * k + j] -= f * a[c * k + j];
            b[i] -= f * b[c];
        }
    }
    for (size_t i = k; i-- > 0;) {
        double s = b[i];
        for (size_t j = i + 1; j < k; j++)
            s -= a[i * k + j] * b[j];
        b[i] = s / a[i * k + i];
    }
}

/* Newton's method on the standardized problem, naive loops throughout. */
static void newton_logreg(const double *xs, size_t n, size_t d, const double *y, double l2,
                          double *theta)
{
    size_t k = d + 1;
    double *h = malloc(k * k * sizeof *h), *g = malloc(k * sizeof *g);
    for (size_t j = 0; j < k; j++)
        theta[j] = 0.0;
    for (int it = 0; it < 50; it++) {
        naive_objective(xs, n, d, y, NULL, (double)n, l2, theta, g);
        memset(h, 0, k * k * sizeof *h);
        for (size_t i = 0; i < n; i++) {
            double z = theta[d];
            for (size_t j = 0; j < d; j++)
                z += xs[i * d + j] * theta[j];
            double p = sigmoid(z), s = p * (1.0 - p) / (double)n;
            for (size_t a = 0; a < k; a++)
                for (size_t b = 0; b < k; b++)
                    h[a * k + b] += s * (a < d ? xs[i * d + a] : 1.0) *
                                    (b < d ? xs[i * d + b] : 1.0);
        }
        for (size_t j = 0; j < d; j++)
            h[j * k + j] += l2;
        gauss_solve(h, g, k);
        for (size_t j = 0; j < k; j++)
            theta[j] -= g[j];
    }
    free(h);
    free(g);
}

static void test_lbfgs_optimum(void)
{
    enum { N = 400, D = 5 };
    struct synth s;
    make_logistic(&s, N, D, -0.5, 7);
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_LATE);
    opt.l2 = 1e-3;
    opt.tol = 1e-11;
    opt.ftol = 0.0;
    struct drisk_model *m = NULL;
    struct drisk_error err = { 0 };
    CHECK_MSG(drisk_model_fit(&drisk_logreg_ops, &s.ds, NULL, &opt, &m, &err) == DRISK_OK, "%s",
              err.msg);
    if (!m)
        goto out;
    const char *stop = drisk_model_meta_param(&m->meta, "stop");
    const char *gi = drisk_model_meta_param(&m->meta, "grad_inf");
    CHECK_MSG(stop && strcmp(stop, "gradient") == 0, "stopped by %s, max |gradient| %s",
              stop ? stop : "?", gi ? gi : "?");
    CHECK(gi && atof(gi) < 1e-11);
    CHECK(atoi(drisk_model_meta_param(&m->meta, "iterations")) < 100);

    /* the same problem by Newton on the test's own standardization */
    double mean[D] = { 0 }, sd[D] = { 0 }, theta[D + 1];
    double *xs = malloc(N * D * sizeof *xs);
    for (size_t j = 0; j < D; j++) {
        for (size_t i = 0; i < N; i++)
            mean[j] += s.x[i * D + j] / N;
        for (size_t i = 0; i < N; i++)
            sd[j] += (s.x[i * D + j] - mean[j]) * (s.x[i * D + j] - mean[j]) / N;
        sd[j] = sqrt(sd[j]);
        for (size_t i = 0; i < N; i++)
            xs[i * D + j] = (s.x[i * D + j] - mean[j]) / sd[j];
    }
    newton_logreg(xs, N, D, s.y, opt.l2, theta);
    /* explain a row at mean + std: each contribution is then the weight itself */
    double row[D], contrib[D], base;
    for (size_t j = 0; j < D; j++)
        row[j] = mean[j] + sd[j];
    CHECK(drisk_model_explain(m, row, contrib, &base, &err) == DRISK_OK);
    double worst = fabs(base - theta[D]);
    for (size_t j = 0; j < D; j++)
        worst = fmax(worst, fabs(contrib[j] - theta[j]));
    CHECK_MSG(worst < 1e-7, "L-BFGS vs Newton: max coefficient difference %.3g", worst);
    /* Newton really found something non-trivial */
    CHECK(fabs(theta[0]) > 0.3);
    free(xs);
out:
    drisk_model_free(m);
    synth_free(&s);
}

/* ---- class and row weights ---- */

static double mean_prob(const struct drisk_model *m, const struct drisk_dataset *ds, int cls)
{
    struct drisk_prediction *p = malloc(ds->n_rows * sizeof *p);
    struct drisk_error err;
    double s = 0.0, c = 0.0;
    if (drisk_model_predict(m, ds->x, ds->n_rows, p, &err) == DRISK_OK) {
        for (size_t i = 0; i < ds->n_rows; i++) {
            if (cls < 0 || ds->y[i] == (double)cls) {
                s += p[i].prob;
                c += 1.0;
            }
        }
    }
    free(p);
    return c > 0 ? s / c : -1.0;
}

static void test_weights(void)
{
    enum { N = 3000, D = 4 };
    struct synth s;
    make_logistic(&s, N, D, -2.8, 11); /* about 10% positive */
    double rate = 0.0;
    for (size_t i = 0; i < N; i++)
        rate += s.y[i] / N;
    CHECK(rate > 0.04 && rate < 0.2);
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_LOST);
    opt.tol = 1e-10;
    opt.ftol = 0.0;
    opt.l2 = 1e-3;
    struct drisk_model *plain = NULL, *bal = NULL, *wtd = NULL, *dup = NULL;
    struct drisk_error err = { 0 };
    double *w = NULL, *x2 = NULL, *y2 = NULL;
    CHECK(drisk_model_fit(&drisk_logreg_ops, &s.ds, NULL, &opt, &plain, &err) == DRISK_OK);
    opt.class_weight_balanced = 1;
    CHECK(drisk_model_fit(&drisk_logreg_ops, &s.ds, NULL, &opt, &bal, &err) == DRISK_OK);
    opt.class_weight_balanced = 0;
    if (!plain || !bal)
        goto out;
    /* optimality with an unpenalized intercept: mean p = mean y (unweighted), and the two
     * classes' mean p average to 1/2 (balanced) */
    double mp = mean_prob(plain, &s.ds, -1);
    CHECK_MSG(fabs(mp - rate) < 1e-7, "plain: mean p %.9f, base rate %.9f", mp, rate);
    double b1 = mean_prob(bal, &s.ds, 1), b0 = mean_prob(bal, &s.ds, 0);
    CHECK_MSG(fabs(0.5 * (b1 + b0) - 0.5) < 1e-7, "balanced: class means %.9f %.9f", b1, b0);
    CHECK(mean_prob(bal, &s.ds, -1) > mp + 0.2);
    double row[D] = { 0 }, c[D], base_plain, base_bal;
    drisk_model_explain(plain, row, c, &base_plain, &err);
    drisk_model_explain(bal, row, c, &base_bal, &err);
    CHECK(base_bal > base_plain + 1.0);
    CHECK(strcmp(drisk_model_meta_param(&bal->meta, "class_weight"), "balanced") == 0);

    /* a row weight of 2 is the same as the row twice */
    w = malloc(N * sizeof *w);
    x2 = malloc(2 * N * D * sizeof *x2);
    y2 = malloc(2 * N * sizeof *y2);
    size_t n2 = 0;
    for (size_t i = 0; i < N; i++) {
        w[i] = i % 3 == 0 ? 2.0 : 1.0;
        for (int k = 0; k < (int)w[i]; k++) {
            memcpy(x2 + n2 * D, s.x + i * D, D * sizeof *x2);
            y2[n2++] = s.y[i];
        }
    }
    struct drisk_dataset dw = s.ds, dd = { n2, D, x2, y2, NULL };
    dw.weight = w;
    opt.l2 = 0.0; /* the penalty acts on standardized weights, and standardization is unweighted */
    CHECK(drisk_model_fit(&drisk_logreg_ops, &dw, NULL, &opt, &wtd, &err) == DRISK_OK);
    CHECK(drisk_model_fit(&drisk_logreg_ops, &dd, NULL, &opt, &dup, &err) == DRISK_OK);
    if (wtd && dup) {
        /* standardization differs (it is unweighted), so compare predictions */
        struct drisk_prediction pa[50], pb[50];
        drisk_model_predict(wtd, s.x, 50, pa, &err);
        drisk_model_predict(dup, s.x, 50, pb, &err);
        double worst = 0.0;
        for (int i = 0; i < 50; i++)
            worst = fmax(worst, fabs(pa[i].prob - pb[i].prob));
        CHECK_MSG(worst < 1e-6, "weight 2 vs duplicated rows: %.3g", worst);
        drisk_model_predict(plain, s.x, 50, pb, &err);
        worst = 0.0;
        for (int i = 0; i < 50; i++)
            worst = fmax(worst, fabs(pa[i].prob - pb[i].prob));
        CHECK(worst > 1e-4); /* and the weights did change something */
    }
out:
    drisk_model_free(plain);
    drisk_model_free(bal);
    drisk_model_free(wtd);
    drisk_model_free(dup);
    free(w);
    free(x2);
    free(y2);
    synth_free(&s);
}

/* ---- eta ---- */

static void make_lognormal(struct synth *s, size_t n, size_t d, double sigma, uint64_t seed)
{
    rng_seed(seed);
    s->x = malloc(n * d * sizeof *s->x);
    s->y = malloc(n * sizeof *s->y);
    for (size_t i = 0; i < n; i++) {
        double mu = 3.0;
        for (size_t j = 0; j < d; j++) {
            double v = rng_normal();
            s->x[i * d + j] = 5.0 + 2.0 * v;
            mu += 0.2 * (double)(j + 1) * v * (j % 2 ? -1.0 : 1.0);
        }
        s->y[i] = exp(mu + sigma * rng_normal());
    }
    s->ds = (struct drisk_dataset){ n, d, s->x, s->y, NULL };
}

static void test_eta(void)
{
    enum { N = 20000, D = 5 };
    struct synth tr, te;
    make_lognormal(&tr, N, D, 0.5, 21);
    make_lognormal(&te, N, D, 0.5, 22);
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_ETA);
    struct drisk_model *m = NULL, *mv = NULL;
    struct drisk_prediction *p = malloc(N * sizeof *p);
    struct drisk_error err = { 0 };
    CHECK_MSG(drisk_model_fit(&drisk_lognormal_ops, &tr.ds, NULL, &opt, &m, &err) == DRISK_OK,
              "%s", err.msg);
    if (!m)
        goto out;
    CHECK(drisk_model_predict(m, te.x, N, p, &err) == DRISK_OK);
    double below50 = 0, below90 = 0;
    for (size_t i = 0; i < N; i++) {
        below50 += te.y[i] <= p[i].p50_h;
        below90 += te.y[i] <= p[i].p90_h;
        if (!(p[i].p90_h > p[i].p50_h))
            break;
    }
    below50 /= N;
    below90 /= N;
    CHECK_MSG(fabs(below50 - 0.5) < 0.02, "P50 coverage %.4f", below50);
    CHECK_MSG(fabs(below90 - 0.9) < 0.015, "P90 coverage %.4f", below90);
    double sigma = atof(drisk_model_meta_param(&m->meta, "sigma"));
    CHECK_MSG(fabs(sigma - 0.5) < 0.02, "sigma %.4f", sigma);
    /* sigma from a noisier validation set widens P90 only */
    struct synth va;
    make_lognormal(&va, 5000, D, 0.8, 23);
    opt.sigma_from_valid = 1;
    CHECK(drisk_model_fit(&drisk_lognormal_ops, &tr.ds, &va.ds, &opt, &mv, &err) == DRISK_OK);
    if (mv) {
        struct drisk_prediction q;
        drisk_model_predict(mv, te.x, 1, &q, &err);
        CHECK(q.p50_h == p[0].p50_h);
        CHECK(q.p90_h > p[0].p90_h * 1.2);
        CHECK(fabs(atof(drisk_model_meta_param(&mv->meta, "sigma")) - 0.8) < 0.04);
    }
    /* conformal recalibration on a noisier window (drisk recalibrate): the intervals the
     * sigma-0.5 model gives miss on sigma-0.8 data, the recalibrated ones cover it */
    struct synth vb;
    make_lognormal(&vb, N, D, 0.8, 24);
    double cov[2][2] = { { 0, 0 }, { 0, 0 } };
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            CHECK_MSG(drisk_model_calibrate(m, DRISK_CALIB_CONFORMAL, &va.ds, &err) == DRISK_OK,
                      "%s", err.msg);
        CHECK(drisk_model_predict(m, vb.x, N, p, &err) == DRISK_OK);
        for (size_t i = 0; i < N; i++) {
            cov[pass][0] += (vb.y[i] <= p[i].p50_h) / (double)N;
            cov[pass][1] += (vb.y[i] <= p[i].p90_h) / (double)N;
        }
    }
    CHECK_MSG(cov[0][1] < 0.82 && fabs(cov[1][0] - 0.5) < 0.02 && fabs(cov[1][1] - 0.9) < 0.015,
              "P90 coverage %.4f before; P50 %.4f, P90 %.4f after", cov[0][1], cov[1][0], cov[1][1]);
    CHECK(drisk_calibrator_kind(m->calibrator) == DRISK_CALIB_CONFORMAL);
    {
        /* kept in the model file; the wrong kind for the target is refused */
        struct drisk_buf buf = { 0 };
        struct drisk_model *back = NULL;
        struct drisk_prediction q;
        CHECK(drisk_model_set_schema(m, "h", &err) == DRISK_OK &&
              drisk_model_save(m, &buf, &err) == DRISK_OK &&
              drisk_model_load(buf.data, buf.len, "h", &back, &err) == DRISK_OK);
        if (back) {
            CHECK(drisk_model_predict(back, vb.x, 1, &q, &err) == DRISK_OK);
            CHECK(q.p50_h == p[0].p50_h && q.p90_h == p[0].p90_h);
        }
        drisk_model_free(back);
        drisk_buf_free(&buf);
        CHECK(drisk_model_calibrate(m, DRISK_CALIB_PLATT, &va.ds, &err) == DRISK_EINVAL);
    }
    synth_free(&vb);
    synth_free(&va);
    /* the eta learner refuses classification, the classifier refuses eta */
    struct drisk_model *bad = NULL;
    CHECK(drisk_model_fit(&drisk_logreg_ops, &tr.ds, NULL, &opt, &bad, &err) == DRISK_EINVAL);
    CHECK(bad == NULL);
    /* non-positive hours are refused */
    tr.y[5] = 0.0;
    opt.sigma_from_valid = 0;
    CHECK(drisk_model_fit(&drisk_lognormal_ops, &tr.ds, NULL, &opt, &bad, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "row 5") != NULL);
out:
    free(p);
    drisk_model_free(m);
    drisk_model_free(mv);
    synth_free(&tr);
    synth_free(&te);
}

/* ---- calibration ---- */

static void test_platt(void)
{
    enum { N = 100000 };
    const double A = -1.5, B = 0.4;
    double *f = malloc(N * sizeof *f), *y = malloc(N * sizeof *y);
    rng_seed(5);
    for (size_t i = 0; i < N; i++) {
        f[i] = 2.0 * rng_normal();
        y[i] = rng_unif() < 1.0 / (1.0 + exp(A * f[i] + B)) ? 1.0 : 0.0;
    }
    struct drisk_calibrator *c = NULL;
    struct drisk_error err = { 0 };
    CHECK(drisk_calibrator_fit(DRISK_CALIB_PLATT, f, y, NULL, N, &c, &err) == DRISK_OK);
    double a = 0, b = 0;
    CHECK(drisk_calibrator_platt(c, &a, &b) == 0);
    CHECK_MSG(fabs(a - A) < 0.04 && fabs(b - B) < 0.04, "platt a %.4f b %.4f", a, b);
    CHECK(fabs(drisk_calibrator_apply(c, 1.0) - 1.0 / (1.0 + exp(a + b))) < 1e-15);
    CHECK(drisk_calibrator_isotonic(c, NULL, NULL) == 0);
    drisk_calibrator_free(c);
    c = NULL;
    /* one class only is refused */
    for (size_t i = 0; i < N; i++)
        y[i] = 0.0;
    CHECK(drisk_calibrator_fit(DRISK_CALIB_PLATT, f, y, NULL, N, &c, &err) == DRISK_EINVAL);
    CHECK(c == NULL);
    free(f);
    free(y);
}

/* Textbook PAV by repeated passes over sorted distinct scores: the reference. */
static void pav_reference(const double *v_in, const double *w_in, size_t n, double *out)
{
    double *v = malloc(n * sizeof *v), *w = malloc(n * sizeof *w);
    size_t *start = malloc(n * sizeof *start), *len = malloc(n * sizeof *len);
    size_t nb = n;
    for (size_t i = 0; i < n; i++) {
        v[i] = v_in[i];
        w[i] = w_in[i];
        start[i] = i;
        len[i] = 1;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t k = 0; k + 1 < nb; k++) {
            if (v[k] > v[k + 1]) {
                v[k] = (v[k] * w[k] + v[k + 1] * w[k + 1]) / (w[k] + w[k + 1]);
                w[k] += w[k + 1];
                len[k] += len[k + 1];
                for (size_t j = k + 1; j + 1 < nb; j++) {
                    v[j] = v[j + 1];
                    w[j] = w[j + 1];
                    start[j] = start[j + 1];
                    len[j] = len[j + 1];
                }
                nb--;
                changed = 1;
                break;
            }
        }
    }
    for (size_t k = 0; k < nb; k++)
        for (size_t i = 0; i < len[k]; i++)
            out[start[k] + i] = v[k];
    free(v);
    free(w);
    free(start);
    free(len);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_isotonic(void)
{
    struct drisk_error err = { 0 };
    struct drisk_calibrator *c = NULL;
    /* hand-checked: sorted by score the labels are 0 1 0 0 1 1 0 1; PAV pools {2,3,4} to
     * 1/3 and {5,6,7} to 2/3. Given shuffled. */
    const double f[8] = { 5, 1, 8, 3, 7, 2, 6, 4 };
    const double y[8] = { 1, 0, 1, 0, 0, 1, 1, 0 };
    const double want[8] = { 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 2.0 / 3, 2.0 / 3, 2.0 / 3, 1 };
    CHECK(drisk_calibrator_fit(DRISK_CALIB_ISOTONIC, f, y, NULL, 8, &c, &err) == DRISK_OK);
    if (!c)
        return;
    for (int i = 0; i < 8; i++)
        CHECK_MSG(fabs(drisk_calibrator_apply(c, i + 1.0) - want[i]) < 1e-15, "score %d: %.17g",
                  i + 1, drisk_calibrator_apply(c, i + 1.0));
    CHECK(fabs(drisk_calibrator_apply(c, 4.5) - 0.5) < 1e-15); /* interpolated */
    CHECK(drisk_calibrator_apply(c, -100.0) == 0.0);          /* clamped */
    CHECK(drisk_calibrator_apply(c, 100.0) == 1.0);
    CHECK(drisk_calibrator_isotonic(c, NULL, NULL) == 6); /* 1 | 2,4 | 5,7 | 8 */
    drisk_calibrator_free(c);
    c = NULL;

    /* ties pool first: scores 1,1,2 with labels 1,0,0 give 1/3 everywhere */
    const double tf[3] = { 1, 1, 2 }, ty[3] = { 1, 0, 0 };
    CHECK(drisk_calibrator_fit(DRISK_CALIB_ISOTONIC, tf, ty, NULL, 3, &c, &err) == DRISK_OK);
    if (c) {
        CHECK(fabs(drisk_calibrator_apply(c, 1.0) - 1.0 / 3) < 1e-15);
        CHECK(fabs(drisk_calibrator_apply(c, 2.0) - 1.0 / 3) < 1e-15);
    }
    drisk_calibrator_free(c);
    c = NULL;

    /* random weighted data: monotone, and equal to the reference PAV at every score */
    enum { N = 2000 };
    double *rf = malloc(N * sizeof *rf), *ry = malloc(N * sizeof *ry), *rw = malloc(N * sizeof *rw);
    double *sorted = malloc(N * sizeof *sorted), *ref = malloc(N * sizeof *ref);
    double *sy = malloc(N * sizeof *sy), *sw = malloc(N * sizeof *sw);
    rng_seed(9);
    for (size_t i = 0; i < N; i++) {
        rf[i] = (double)(rng_u64() % 1000) / 100.0; /* many ties */
        ry[i] = rng_unif() < sigmoid(rf[i] - 5.0) ? 1.0 : 0.0;
        rw[i] = 0.5 + rng_unif();
    }
    CHECK(drisk_calibrator_fit(DRISK_CALIB_ISOTONIC, rf, ry, rw, N, &c, &err) == DRISK_OK);
    /* distinct scores in order, with their pooled weighted label means */
    memcpy(sorted, rf, N * sizeof *sorted);
    qsort(sorted, N, sizeof *sorted, cmp_double);
    size_t nd = 0;
    for (size_t i = 0; i < N; i++)
        if (nd == 0 || sorted[i] != sorted[nd - 1])
            sorted[nd++] = sorted[i];
    for (size_t k = 0; k < nd; k++) {
        double s = 0, w = 0;
        for (size_t i = 0; i < N; i++) {
            if (rf[i] == sorted[k]) {
                s += rw[i] * ry[i];
                w += rw[i];
            }
        }
        sy[k] = s / w;
        sw[k] = w;
    }
    pav_reference(sy, sw, nd, ref);
    double worst = 0.0, prev = -1.0;
    int monotone = 1;
    for (size_t k = 0; k < nd && c; k++)
        worst = fmax(worst, fabs(drisk_calibrator_apply(c, sorted[k]) - ref[k]));
    for (double t = -1.0; t < 11.0 && c; t += 0.001) {
        double v = drisk_calibrator_apply(c, t);
        monotone &= v >= prev;
        prev = v;
    }
    CHECK_MSG(worst < 1e-12, "isotonic vs reference PAV: %.3g", worst);
    CHECK(monotone);
    CHECK(ref[0] < ref[nd - 1]); /* the data is not flat, so the check above has teeth */
    drisk_calibrator_free(c);
    free(rf);
    free(ry);
    free(rw);
    free(sorted);
    free(ref);
    free(sy);
    free(sw);
}

/* ---- the file format ---- */

static int predictions_equal(const struct drisk_model *a, const struct drisk_model *b,
                             const double *x, size_t n)
{
    struct drisk_prediction *pa = calloc(n, sizeof *pa), *pb = calloc(n, sizeof *pb);
    struct drisk_error err;
    int same = drisk_model_predict(a, x, n, pa, &err) == DRISK_OK &&
               drisk_model_predict(b, x, n, pb, &err) == DRISK_OK &&
               memcmp(pa, pb, n * sizeof *pa) == 0;
    free(pa);
    free(pb);
    return same;
}

static void write_crc(unsigned char *buf, size_t len)
{
    uint32_t c = drisk_crc32(buf, len - 4);
    for (int i = 0; i < 4; i++)
        buf[len - 4 + (size_t)i] = (unsigned char)(c >> (8 * i));
}

/* Every prefix, single-byte flips (caught by the checksum), and flips with the checksum
 * recomputed (reaching the parser and the learners' validation). */
static void check_corruption(const struct drisk_buf *saved, const double *x, size_t d)
{
    struct drisk_error err;
    struct drisk_model *m = NULL;
    int prefix_ok = 1, flip_ok = 1, parsed_bad = 0, parsed_loaded = 0;
    for (size_t len = 0; len < saved->len; len++) {
        unsigned char *copy = malloc(len ? len : 1); /* exact size, so ASan sees overreads */
        memcpy(copy, saved->data, len);
        if (drisk_model_load(copy, len, SCHEMA, &m, &err) == DRISK_OK || m || !err.msg[0])
            prefix_ok = 0;
        drisk_model_free(m);
        m = NULL;
        free(copy);
    }
    CHECK(prefix_ok);
    unsigned char *copy = malloc(saved->len);
    rng_seed(77);
    for (int t = 0; t < 3000; t++) {
        memcpy(copy, saved->data, saved->len);
        size_t at = rng_u64() % saved->len;
        copy[at] ^= (unsigned char)(1 + rng_u64() % 255);
        if (drisk_model_load(copy, saved->len, SCHEMA, &m, &err) == DRISK_OK || m)
            flip_ok = 0;
        drisk_model_free(m);
        m = NULL;
        /* the same flip past the checksum */
        if (at < saved->len - 4) {
            write_crc(copy, saved->len);
            if (drisk_model_load(copy, saved->len, SCHEMA, &m, &err) == DRISK_OK) {
                struct drisk_prediction p;
                struct drisk_error e2;
                double contrib[64], base;
                parsed_loaded++;
                drisk_model_predict(m, x, 1, &p, &e2); /* must not crash */
                if (d <= 64)
                    drisk_model_explain(m, x, contrib, &base, &e2);
            } else {
                parsed_bad++;
            }
            drisk_model_free(m);
            m = NULL;
        }
    }
    CHECK(flip_ok);
    CHECK(parsed_bad > 100); /* the parser itself refuses many of them */
    free(copy);
}

static void test_format(void)
{
    enum { N = 2000, D = 6 };
    struct synth s, e;
    make_logistic(&s, N, D, -1.0, 31);
    make_lognormal(&e, N, D, 0.4, 32);
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_LATE);
    struct drisk_model *m = NULL, *eta = NULL, *back = NULL;
    struct drisk_buf buf = { 0 };
    struct drisk_error err = { 0 };
    CHECK(drisk_model_fit(&drisk_logreg_ops, &s.ds, NULL, &opt, &m, &err) == DRISK_OK);
    drisk_fit_options_init(&opt, DRISK_TARGET_ETA);
    CHECK(drisk_model_fit(&drisk_lognormal_ops, &e.ds, NULL, &opt, &eta, &err) == DRISK_OK);
    if (!m || !eta)
        goto out;

    /* no schema yet: refused */
    CHECK(drisk_model_save(m, &buf, &err) == DRISK_EINVAL);
    drisk_buf_free(&buf);
    CHECK(drisk_model_set_schema(m, SCHEMA, &err) == DRISK_OK);
    CHECK(drisk_model_set_schema(eta, SCHEMA, &err) == DRISK_OK);
    drisk_model_set_window(m, 1700000000, 1710000000, 1708000000, 1710000000);
    CHECK(drisk_model_set_metric(m, "auc", 0.8123456789012345, &err) == DRISK_OK);
    CHECK(drisk_model_set_metric(m, "log_loss", 0.1 + 0.2, &err) == DRISK_OK);
    CHECK(drisk_model_set_metric(m, "bad key!", 1.0, &err) == DRISK_EINVAL);

    /* conformal intervals are eta's: a classifier refuses them */
    CHECK(drisk_model_calibrate(m, DRISK_CALIB_CONFORMAL, &s.ds, &err) == DRISK_EINVAL);
    /* logreg plain, then with Platt, then isotonic */
    for (int kind = DRISK_CALIB_NONE; kind <= DRISK_CALIB_ISOTONIC; kind++) {
        struct drisk_dataset valid = s.ds;
        valid.n_rows = 800; /* calibrate on a part of it */
        CHECK(drisk_model_calibrate(m, (enum drisk_calib_kind)kind, &valid, &err) == DRISK_OK);
        CHECK(drisk_calibrator_kind(m->calibrator) == (enum drisk_calib_kind)kind);
        CHECK(drisk_model_save(m, &buf, &err) == DRISK_OK);
        CHECK(memcmp(buf.data, "DRISKMDL", 8) == 0);
        CHECK(drisk_model_load(buf.data, buf.len, SCHEMA, &back, &err) == DRISK_OK);
        if (back) {
            CHECK_MSG(predictions_equal(m, back, s.x, N), "calibrator %d", kind);
            CHECK(drisk_calibrator_kind(back->calibrator) == (enum drisk_calib_kind)kind);
            CHECK(strcmp(back->meta.algorithm, "logreg") == 0);
            CHECK(back->meta.target == DRISK_TARGET_LATE);
            CHECK(back->meta.n_features == D && back->meta.n_train_rows == N);
            CHECK(back->meta.train_from == 1700000000 && back->meta.valid_from == 1708000000);
            const double *auc = drisk_model_meta_metric(&back->meta, "auc");
            const double *ll = drisk_model_meta_metric(&back->meta, "log_loss");
            CHECK(auc && *auc == 0.8123456789012345);
            CHECK(ll && *ll == 0.1 + 0.2);
            CHECK(strcmp(drisk_model_meta_param(&back->meta, "class_weight"), "none") == 0);
            double c1[D], c2[D], b1, b2;
            drisk_model_explain(m, s.x + 7 * D, c1, &b1, &err);
            drisk_model_explain(back, s.x + 7 * D, c2, &b2, &err);
            CHECK(memcmp(c1, c2, sizeof c1) == 0 && b1 == b2);
        }
        /* the probability really went through the calibrator */
        if (kind != DRISK_CALIB_NONE) {
            struct drisk_prediction p;
            drisk_model_predict(m, s.x, 1, &p, &err);
            CHECK(p.prob == drisk_calibrator_apply(m->calibrator, p.score));
            CHECK(p.prob != 1.0 / (1.0 + exp(-p.score)));
        }
        drisk_model_free(back);
        back = NULL;
        if (kind == DRISK_CALIB_ISOTONIC)
            check_corruption(&buf, s.x, D);
        drisk_buf_free(&buf);
    }

    /* eta round trip */
    CHECK(drisk_model_save(eta, &buf, &err) == DRISK_OK);
    CHECK(drisk_model_load(buf.data, buf.len, SCHEMA, &back, &err) == DRISK_OK);
    if (back) {
        CHECK(predictions_equal(eta, back, e.x, N));
        CHECK(back->meta.target == DRISK_TARGET_ETA && back->calibrator == NULL);
    }
    drisk_model_free(back);
    back = NULL;
    check_corruption(&buf, e.x, D);

    /* another schema: refused with both hashes in the message */
    CHECK(drisk_model_load(buf.data, buf.len, "feat-v2-ffff", &back, &err) == DRISK_ESCHEMA);
    CHECK(back == NULL);
    CHECK(strstr(err.msg, SCHEMA) && strstr(err.msg, "feat-v2-ffff") && strstr(err.msg, "retrain"));
    /* metadata without the schema check, for listing */
    struct drisk_model_meta meta;
    CHECK(drisk_model_read_meta(buf.data, buf.len, &meta, &err) == DRISK_OK);
    CHECK(strcmp(meta.schema_hash, SCHEMA) == 0 && strcmp(meta.algorithm, "lognormal") == 0);

    /* a newer format version, with a valid checksum, is refused by name */
    unsigned char *copy = malloc(buf.len);
    memcpy(copy, buf.data, buf.len);
    copy[8] = 2;
    write_crc(copy, buf.len);
    CHECK(drisk_model_load(copy, buf.len, SCHEMA, &back, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "version 2") != NULL);
    copy[0] = 'X';
    CHECK(drisk_model_load(copy, buf.len, SCHEMA, &back, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "not a drisk model") != NULL);
    free(copy);
    /* a stray byte before the checksum (checksum recomputed) is refused */
    copy = malloc(buf.len + 1);
    memcpy(copy, buf.data, buf.len - 4);
    copy[buf.len - 4] = 0;
    write_crc(copy, buf.len + 1);
    CHECK(drisk_model_load(copy, buf.len + 1, SCHEMA, &back, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "stray") != NULL);
    free(copy);
    /* a payload longer than the learner reads is refused: the eta payload is d, b, 3d
     * doubles and sigma, followed by the calibrator section (u64 1, u8 0) */
    size_t plen = 8 + 8 + 3 * D * 8 + 8, len_at = buf.len - 4 - 9 - plen - 8;
    CHECK(buf.data[len_at] == plen && buf.data[buf.len - 13] == 1);
    copy = malloc(buf.len + 1);
    memcpy(copy, buf.data, len_at + 8 + plen);
    copy[len_at] = (unsigned char)(plen + 1);
    copy[len_at + 8 + plen] = 0;
    memcpy(copy + len_at + 8 + plen + 1, buf.data + len_at + 8 + plen, 9 + 4);
    write_crc(copy, buf.len + 1);
    CHECK(drisk_model_load(copy, buf.len + 1, SCHEMA, &back, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "payload: 1 stray") != NULL);
    free(copy);
    /* trailing garbage is refused */
    drisk_buf_put_u8(&buf, 0);
    CHECK(drisk_model_load(buf.data, buf.len, SCHEMA, &back, &err) == DRISK_EINVAL);
    drisk_buf_free(&buf);

    /* through a file */
    char path[] = "/tmp/drisk_test_model_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        CHECK(drisk_model_save_file(m, path, &err) == DRISK_OK);
        CHECK(drisk_model_load_file(path, SCHEMA, &back, &err) == DRISK_OK);
        if (back)
            CHECK(predictions_equal(m, back, s.x, 100));
        drisk_model_free(back);
        back = NULL;
        CHECK(drisk_model_load_file(path, "other", &back, &err) == DRISK_ESCHEMA);
        CHECK(strstr(err.msg, path) != NULL);
        unlink(path);
    }
    CHECK(drisk_model_save_file(m, "/nonexistent-dir/x.model", &err) == DRISK_EIO);
out:
    drisk_model_free(m);
    drisk_model_free(eta);
    drisk_buf_free(&buf);
    synth_free(&s);
    synth_free(&e);
}

/* ---- non-linear learners ---- */

/* An interaction no linear model sees: y ~ Bernoulli(sigmoid(3 x0 x1)), plus noise
 * columns with offsets and scales. */
static void make_xor(struct synth *s, size_t n, size_t d, uint64_t seed)
{
    rng_seed(seed);
    s->x = malloc(n * d * sizeof *s->x);
    s->y = malloc(n * sizeof *s->y);
    for (size_t i = 0; i < n; i++) {
        double v[16];
        for (size_t j = 0; j < d; j++) {
            v[j] = rng_normal();
            s->x[i * d + j] = 3.0 * (double)j + (1.0 + 0.5 * (double)j) * v[j];
        }
        s->y[i] = rng_unif() < sigmoid(3.0 * v[0] * v[1]) ? 1.0 : 0.0;
    }
    s->ds = (struct drisk_dataset){ n, d, s->x, s->y, NULL };
}

/* The rank AUC by pairs (small sets only). */
static double pair_auc(const double *y, const struct drisk_prediction *p, size_t n)
{
    double wins = 0.0, pairs = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (y[i] == 1.0 && y[j] == 0.0) {
                pairs += 1.0;
                wins += p[i].score > p[j].score ? 1.0 : p[i].score == p[j].score ? 0.5 : 0.0;
            }
    return wins / pairs;
}

/* The network's loss by a plain double-precision loop over rows and units. */
static double naive_mlp_loss(const struct drisk_mlp_net *net, const float *x, const float *y,
                             const float *w, size_t n, double l2)
{
    double total = 0.0, wsum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a[2][64], out[2];
        int width = net->size[0];
        for (int j = 0; j < width; j++)
            a[0][j] = x[i * (size_t)width + (size_t)j];
        int cur = 0;
        for (int l = 0; l < net->n_layers; l++) {
            const float *W = net->theta + net->w_off[l], *b = net->theta + net->b_off[l];
            int outw = net->size[l + 1];
            for (int o = 0; o < outw; o++) {
                double z = b[o];
                for (int j = 0; j < width; j++)
                    z += (double)W[(size_t)o * (size_t)width + (size_t)j] * a[cur][j];
                if (l + 1 < net->n_layers)
                    a[1 - cur][o] = z > 0 ? z : 0;
                else
                    out[o] = z;
            }
            cur = 1 - cur;
            width = outw;
        }
        double wi = w ? w[i] : 1.0, li;
        if (!net->quantile) {
            li = log(1.0 + exp(out[0])) - y[i] * out[0];
        } else {
            double u0 = y[i] - out[0], u1 = y[i] - out[1];
            li = u0 * (0.5 - (u0 < 0)) + u1 * (0.9 - (u1 < 0));
        }
        total += wi * li;
        wsum += wi;
    }
    double sq = 0.0;
    for (int l = 0; l < net->n_layers; l++) {
        size_t nw = (size_t)net->size[l + 1] * (size_t)net->size[l];
        for (size_t j = 0; j < nw; j++)
            sq += (double)net->theta[net->w_off[l] + j] * net->theta[net->w_off[l] + j];
    }
    return total / wsum + 0.5 * l2 * sq;
}

static void test_mlp_gradient(void)
{
    enum { N = 40, D = 5 };
    for (int quantile = 0; quantile <= 1; quantile++) {
        struct drisk_mlp_net net;
        struct drisk_mlp_work ws;
        struct drisk_error err;
        int hidden[2] = { 7, 4 };
        CHECK(drisk_mlp_net_init(&net, D, 2, hidden, quantile, &err) == DRISK_OK);
        CHECK(drisk_mlp_work_init(&ws, &net, N, &err) == DRISK_OK);
        float x[N * D], y[N], w[N];
        rng_seed(100 + (uint64_t)quantile);
        for (size_t j = 0; j < net.n_params; j++)
            net.theta[j] = (float)(0.6 * rng_normal());
        for (size_t i = 0; i < N; i++) {
            for (size_t j = 0; j < D; j++)
                x[i * D + j] = (float)rng_normal();
            y[i] = quantile ? (float)rng_normal() : (float)(rng_unif() < 0.4);
            w[i] = (float)(0.5 + rng_unif());
        }
        double l2 = 0.01;
        float *g = calloc(net.n_params, sizeof *g);
        double f = drisk_mlp_loss(&net, x, y, w, N, l2, g, &ws);
        double ref = naive_mlp_loss(&net, x, y, w, N, l2);
        CHECK_MSG(fabs(f - ref) < 1e-5 * fmax(1.0, fabs(ref)), "loss %.8f vs naive %.8f", f, ref);
        CHECK(fabs(drisk_mlp_loss(&net, x, y, NULL, N, l2, NULL, &ws) -
                   naive_mlp_loss(&net, x, y, NULL, N, l2)) < 1e-5);
        /* central differences of the double-precision reference, norm-wise */
        double num = 0.0, den = 0.0;
        for (size_t j = 0; j < net.n_params; j++) {
            float keep = net.theta[j];
            double h = 1e-2;
            net.theta[j] = (float)(keep + h);
            double fp = naive_mlp_loss(&net, x, y, w, N, l2);
            net.theta[j] = (float)(keep - h);
            double fm = naive_mlp_loss(&net, x, y, w, N, l2);
            net.theta[j] = keep;
            double fd = (fp - fm) / (double)((float)(keep + h) - (float)(keep - h));
            num += (fd - g[j]) * (fd - g[j]);
            den += (fd + g[j]) * (fd + g[j]);
        }
        double rel = sqrt(num / den);
        CHECK_MSG(rel < 2e-2, "mlp %s gradient vs finite differences: relative error %.3g",
                  quantile ? "quantile" : "logit", rel);
        free(g);
        drisk_mlp_work_clear(&ws);
        drisk_mlp_net_clear(&net);
    }
}

static void check_explain_sums(const struct drisk_model *m, const double *x, size_t d)
{
    double c[16], base;
    struct drisk_prediction p;
    struct drisk_error err;
    CHECK(drisk_model_explain(m, x, c, &base, &err) == DRISK_OK);
    CHECK(drisk_model_predict(m, x, 1, &p, &err) == DRISK_OK);
    double sum = base;
    for (size_t j = 0; j < d; j++)
        sum += c[j];
    CHECK_MSG(fabs(sum - p.score) < 1e-6 * fmax(1.0, fabs(p.score)), "%s: base + contributions "
              "%.9g, score %.9g", m->meta.algorithm, sum, p.score);
}

/* One loaded model scored from several threads at once gives every thread the bits a
 * lone caller gets (no hidden shared state in predict or explain). Single rows and whole
 * batches are compared with their own kind: the SVM's batched dgemm may round the last
 * bit differently from a one-row product. */
struct share_job {
    const struct drisk_model *m;
    const double *x;
    size_t n, d;
    const struct drisk_prediction *want, *want1;
    int ok;
};

static void *share_run(void *arg)
{
    struct share_job *j = arg;
    struct drisk_prediction *p = malloc(j->n * sizeof *p);
    struct drisk_error err;
    double c[16], base;
    j->ok = 1;
    for (int round = 0; round < 20 && j->ok; round++) {
        for (size_t i = 0; i < j->n && j->ok; i += 7) /* single rows and batches mixed */
            j->ok = drisk_model_predict(j->m, j->x + i * j->d, 1, p + i, &err) == DRISK_OK &&
                    memcmp(&p[i], &j->want1[i], sizeof *p) == 0 &&
                    drisk_model_explain(j->m, j->x + i * j->d, c, &base, &err) == DRISK_OK;
        j->ok = j->ok && drisk_model_predict(j->m, j->x, j->n, p, &err) == DRISK_OK &&
                memcmp(p, j->want, j->n * sizeof *p) == 0;
    }
    free(p);
    return NULL;
}

static void check_shared(const struct drisk_model *m, const double *x, size_t n, size_t d)
{
    enum { THREADS = 4 };
    struct drisk_prediction *want = malloc(n * sizeof *want), *want1 = malloc(n * sizeof *want1);
    struct drisk_error err;
    CHECK(drisk_model_predict(m, x, n, want, &err) == DRISK_OK);
    for (size_t i = 0; i < n; i++)
        CHECK(drisk_model_predict(m, x + i * d, 1, want1 + i, &err) == DRISK_OK);
    pthread_t t[THREADS];
    struct share_job job[THREADS];
    for (int i = 0; i < THREADS; i++) {
        job[i] = (struct share_job){ m, x, n, d, want, want1, 0 };
        CHECK(pthread_create(&t[i], NULL, share_run, &job[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(job[i].ok, "%s: thread %d saw other predictions", m->meta.algorithm, i);
    }
    free(want);
    free(want1);
}

/* Fits ops on an interaction, checks it beats logistic regression on held-out rows, that
 * the model survives a save/load bit-identically and that threads can share it. */
static void check_nonlinear(const struct drisk_model_ops *ops, struct drisk_fit_options *opt,
                            double min_auc)
{
    enum { N = 3000, D = 4 };
    struct synth tr, va, te;
    make_xor(&tr, N, D, 41);
    make_xor(&va, 1000, D, 42);
    make_xor(&te, 1500, D, 43);
    struct drisk_model *m = NULL, *lin = NULL, *back = NULL;
    struct drisk_prediction *p = malloc(1500 * sizeof *p);
    struct drisk_buf buf = { 0 };
    struct drisk_error err = { 0 };
    struct drisk_fit_options lopt;
    drisk_fit_options_init(&lopt, DRISK_TARGET_LATE);
    CHECK_MSG(drisk_model_fit(ops, &tr.ds, &va.ds, opt, &m, &err) == DRISK_OK, "%s: %s", ops->name,
              err.msg);
    CHECK(drisk_model_fit(&drisk_logreg_ops, &tr.ds, NULL, &lopt, &lin, &err) == DRISK_OK);
    if (!m || !lin)
        goto out;
    CHECK(drisk_model_predict(lin, te.x, 1500, p, &err) == DRISK_OK);
    double auc_lin = pair_auc(te.y, p, 1500);
    CHECK(drisk_model_predict(m, te.x, 1500, p, &err) == DRISK_OK);
    double auc = pair_auc(te.y, p, 1500);
    CHECK_MSG(auc > min_auc && auc_lin < 0.6, "%s AUC %.3f, logreg %.3f", ops->name, auc, auc_lin);
    check_explain_sums(m, te.x, D);
    check_explain_sums(m, te.x + D, D);
    CHECK(drisk_model_set_schema(m, SCHEMA, &err) == DRISK_OK);
    CHECK(drisk_model_save(m, &buf, &err) == DRISK_OK);
    CHECK_MSG(drisk_model_load(buf.data, buf.len, SCHEMA, &back, &err) == DRISK_OK, "%s", err.msg);
    if (back) {
        CHECK(predictions_equal(m, back, te.x, 1500));
        CHECK(strcmp(back->meta.algorithm, ops->name) == 0);
        check_shared(back, te.x, 200, D);
    }
    if (buf.len < 20000)
        check_corruption(&buf, te.x, D);
out:
    free(p);
    drisk_buf_free(&buf);
    drisk_model_free(m);
    drisk_model_free(lin);
    drisk_model_free(back);
    synth_free(&tr);
    synth_free(&va);
    synth_free(&te);
}

static void test_mlp(void)
{
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_LATE);
    opt.n_hidden = 2;
    opt.hidden[0] = 16;
    opt.hidden[1] = 8;
    opt.batch_size = 64;
    opt.learning_rate = 0.01;
    opt.epochs = 60;
    opt.patience = 5;
    check_nonlinear(&drisk_mlp_ops, &opt, 0.75);

    /* deterministic for a seed, different for another */
    enum { N = 1000, D = 4 };
    struct synth tr;
    make_xor(&tr, N, D, 51);
    opt.epochs = 3;
    struct drisk_model *a = NULL, *b = NULL, *c = NULL;
    struct drisk_error err;
    CHECK(drisk_model_fit(&drisk_mlp_ops, &tr.ds, &tr.ds, &opt, &a, &err) == DRISK_OK);
    CHECK(drisk_model_fit(&drisk_mlp_ops, &tr.ds, &tr.ds, &opt, &b, &err) == DRISK_OK);
    opt.seed = 2;
    CHECK(drisk_model_fit(&drisk_mlp_ops, &tr.ds, &tr.ds, &opt, &c, &err) == DRISK_OK);
    if (a && b && c) {
        CHECK(predictions_equal(a, b, tr.x, N));
        CHECK(!predictions_equal(a, c, tr.x, N));
    }
    /* members: seed, seed', ... averaged; a different model that still round-trips */
    opt.seed = 1;
    opt.mlp_members = 2;
    struct drisk_model *ens = NULL, *back = NULL;
    struct drisk_buf buf = { 0 };
    CHECK(drisk_model_fit(&drisk_mlp_ops, &tr.ds, &tr.ds, &opt, &ens, &err) == DRISK_OK);
    if (ens && a) {
        CHECK(strcmp(drisk_model_meta_param(&ens->meta, "members"), "2") == 0);
        CHECK(!predictions_equal(a, ens, tr.x, N));
        CHECK(drisk_model_set_schema(ens, SCHEMA, &err) == DRISK_OK &&
              drisk_model_save(ens, &buf, &err) == DRISK_OK &&
              drisk_model_load(buf.data, buf.len, SCHEMA, &back, &err) == DRISK_OK);
        CHECK(back && predictions_equal(ens, back, tr.x, N));
        check_explain_sums(ens, tr.x, D);
    }
    opt.mlp_members = 17;
    struct drisk_model *refused = NULL;
    CHECK(drisk_model_fit(&drisk_mlp_ops, &tr.ds, NULL, &opt, &refused, &err) == DRISK_EINVAL &&
          refused == NULL);
    opt.mlp_members = 1;
    drisk_buf_free(&buf);
    drisk_model_free(ens);
    drisk_model_free(back);
    drisk_model_free(a);
    drisk_model_free(b);
    drisk_model_free(c);
    c = NULL;
    /* out-of-range architectures are refused */
    opt.n_hidden = 4;
    CHECK(drisk_model_fit(&drisk_mlp_ops, &tr.ds, NULL, &opt, &a, &err) == DRISK_EINVAL);
    opt.n_hidden = 1;
    opt.hidden[0] = 0;
    CHECK(drisk_model_fit(&drisk_mlp_ops, &tr.ds, NULL, &opt, &a, &err) == DRISK_EINVAL);
    synth_free(&tr);

    /* eta: the two quantile heads cover about half and nine tenths */
    enum { NE = 20000, DE = 5 };
    struct synth etr, eva, ete;
    make_lognormal(&etr, NE, DE, 0.5, 61);
    make_lognormal(&eva, 4000, DE, 0.5, 62);
    make_lognormal(&ete, NE, DE, 0.5, 63);
    drisk_fit_options_init(&opt, DRISK_TARGET_ETA);
    opt.n_hidden = 1;
    opt.hidden[0] = 16;
    opt.batch_size = 128;
    opt.learning_rate = 0.005;
    struct drisk_model *e = NULL;
    struct drisk_prediction *p = malloc(NE * sizeof *p);
    CHECK_MSG(drisk_model_fit(&drisk_mlp_ops, &etr.ds, &eva.ds, &opt, &e, &err) == DRISK_OK, "%s",
              err.msg);
    if (e && drisk_model_predict(e, ete.x, NE, p, &err) == DRISK_OK) {
        double b50 = 0, b90 = 0;
        int ordered = 1;
        for (size_t i = 0; i < NE; i++) {
            b50 += ete.y[i] <= p[i].p50_h;
            b90 += ete.y[i] <= p[i].p90_h;
            ordered &= p[i].p90_h >= p[i].p50_h && fabs(log(p[i].p50_h) - p[i].score) < 1e-9;
        }
        CHECK_MSG(fabs(b50 / NE - 0.5) < 0.03 && fabs(b90 / NE - 0.9) < 0.02,
                  "mlp eta coverage P50 %.4f P90 %.4f", b50 / NE, b90 / NE);
        CHECK(ordered);
        check_explain_sums(e, ete.x, DE);
    }
    free(p);
    drisk_model_free(e);
    synth_free(&etr);
    synth_free(&eva);
    synth_free(&ete);
}

static void test_svm(void)
{
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_LATE);
    opt.svm_c = 1.0;
    check_nonlinear(&drisk_svm_rbf_ops, &opt, 0.75);

    /* the sample cap: stratified, and said in the model's params */
    enum { N = 4000, D = 4 };
    struct synth tr;
    make_logistic(&tr, N, D, -2.0, 71);
    opt.svm_max_rows = 500;
    opt.class_weight_balanced = 1;
    struct drisk_model *m = NULL, *lin = NULL;
    struct drisk_error err;
    CHECK(drisk_model_fit(&drisk_svm_rbf_ops, &tr.ds, NULL, &opt, &m, &err) == DRISK_OK);
    if (m) {
        CHECK(strcmp(drisk_model_meta_param(&m->meta, "sample_rows"), "500") == 0);
        CHECK(atoi(drisk_model_meta_param(&m->meta, "support_vectors")) <= 500);
    }
    /* the linear kernel finds the linear signal, and explains exactly */
    opt.svm_max_rows = 2000;
    CHECK(drisk_model_fit(&drisk_svm_linear_ops, &tr.ds, NULL, &opt, &lin, &err) == DRISK_OK);
    if (lin) {
        struct drisk_prediction *p = malloc(N * sizeof *p);
        CHECK(drisk_model_predict(lin, tr.x, N, p, &err) == DRISK_OK);
        double auc = pair_auc(tr.y, p, N);
        CHECK_MSG(auc > 0.75, "svm_linear AUC %.3f", auc);
        check_explain_sums(lin, tr.x, D);
        free(p);
    }
    /* svm fits only classification */
    opt.target = DRISK_TARGET_ETA;
    struct drisk_model *bad = NULL;
    for (size_t i = 0; i < N; i++)
        tr.y[i] += 1.0;
    CHECK(drisk_model_fit(&drisk_svm_rbf_ops, &tr.ds, NULL, &opt, &bad, &err) == DRISK_EINVAL);
    drisk_model_free(m);
    drisk_model_free(lin);
    synth_free(&tr);
}

/* ---- the table and the wrappers ---- */

static int progress_calls;

static void on_progress(void *ctx, int iter, double loss, double grad)
{
    (void)iter;
    (void)grad;
    *(double *)ctx = loss;
    progress_calls++;
}

/* Where a saved gbdt model's payload starts (its version tag, "GBT2"), or 0. */
static size_t gbdt_payload_at(const struct drisk_buf *b)
{
    for (size_t i = 8; i + 4 <= b->len; i++)
        if (memcmp(b->data + i, "GBT2", 4) == 0)
            return i;
    return 0;
}

static void test_gbdt(void)
{
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_LATE);
    opt.gbdt_trees = 200;
    opt.gbdt_depth = 3;
    check_nonlinear(&drisk_gbdt_ops, &opt, 0.75);

    /* deterministic for a seed (on enough rows that histograms are built on every core),
     * different for another; early stopping keeps the rounds up to the best validation
     * loss */
    enum { N = 60000, D = 4 };
    struct synth tr, va;
    make_xor(&tr, N, D, 61);
    make_xor(&va, 2000, D, 62);
    opt.gbdt_trees = 400;
    opt.gbdt_eta = 0.3;
    struct drisk_model *a = NULL, *b = NULL, *c = NULL, *refused = NULL;
    struct drisk_error err;
    CHECK(drisk_model_fit(&drisk_gbdt_ops, &tr.ds, &va.ds, &opt, &a, &err) == DRISK_OK);
    CHECK(drisk_model_fit(&drisk_gbdt_ops, &tr.ds, &va.ds, &opt, &b, &err) == DRISK_OK);
    opt.seed = 2;
    CHECK(drisk_model_fit(&drisk_gbdt_ops, &tr.ds, &va.ds, &opt, &c, &err) == DRISK_OK);
    if (a && b && c) {
        CHECK(predictions_equal(a, b, tr.x, 2000));
        CHECK(!predictions_equal(a, c, tr.x, 2000));
        int trees = atoi(drisk_model_meta_param(&a->meta, "trees"));
        CHECK_MSG(trees > 5 && trees < 400, "stopped early at %d trees", trees);
        /* the path attributions go to the two features the label depends on */
        double used = 0.0, unused = 0.0, contrib[D], base;
        for (size_t i = 0; i < 500; i++) {
            check_explain_sums(a, tr.x + i * D, D);
            drisk_model_explain(a, tr.x + i * D, contrib, &base, &err);
            used += fabs(contrib[0]) + fabs(contrib[1]);
            unused += fabs(contrib[2]) + fabs(contrib[3]);
        }
        CHECK_MSG(used > 5.0 * unused, "attributions %g to x0, x1 vs %g to x2, x3", used, unused);
    }
    /* a small forest: every truncation and corrupted byte of its file refused or harmless */
    struct drisk_model *small = NULL;
    struct drisk_buf buf = { 0 };
    opt.gbdt_trees = 8;
    opt.gbdt_depth = 2;
    CHECK(drisk_model_fit(&drisk_gbdt_ops, &va.ds, NULL, &opt, &small, &err) == DRISK_OK);
    if (small && drisk_model_set_schema(small, SCHEMA, &err) == DRISK_OK &&
        drisk_model_save(small, &buf, &err) == DRISK_OK) {
        CHECK_MSG(buf.len < 20000, "%zu bytes", buf.len);
        check_corruption(&buf, va.x, D);
        /* payload version 2 is u32 tag, u32 d, f64 base, f64 q50, f64 q90, u32 trees, ...;
         * version 1 (earlier drisk) has no tag and no quantiles, and still loads */
        size_t at = gbdt_payload_at(&buf);
        CHECK(at > 8);
        if (at > 8) {
            size_t len = buf.len - 20;
            unsigned char *old = malloc(len);
            memcpy(old, buf.data, at);
            memcpy(old + at, buf.data + at + 4, 12);
            memcpy(old + at + 12, buf.data + at + 32, buf.len - at - 32);
            old[at - 8] = (unsigned char)(old[at - 8] - 20); /* the payload's u64 length */
            CHECK(buf.data[at - 8] >= 20);
            write_crc(old, len);
            struct drisk_model *v1 = NULL;
            CHECK_MSG(drisk_model_load(old, len, SCHEMA, &v1, &err) == DRISK_OK, "%s", err.msg);
            if (v1)
                CHECK(predictions_equal(small, v1, va.x, 2000));
            drisk_model_free(v1);
            free(old);
            /* a classifier carries no residual quantiles */
            unsigned char *copy = malloc(buf.len);
            memcpy(copy, buf.data, buf.len);
            copy[at + 16 + 7] = 0x3f; /* q50 becomes a small positive number */
            write_crc(copy, buf.len);
            struct drisk_model *bad = NULL;
            CHECK(drisk_model_load(copy, buf.len, SCHEMA, &bad, &err) == DRISK_EINVAL && !bad &&
                  strstr(err.msg, "quantiles"));
            free(copy);
        }
    }
    drisk_buf_free(&buf);
    drisk_model_free(small);
    opt.gbdt_depth = 9;
    CHECK(drisk_model_fit(&drisk_gbdt_ops, &tr.ds, NULL, &opt, &refused, &err) == DRISK_EINVAL &&
          strstr(err.msg, "depth") && refused == NULL);
    drisk_model_free(a);
    drisk_model_free(b);
    drisk_model_free(c);
    synth_free(&tr);
    synth_free(&va);
}

/* eta: squared error of log-hours on the histograms, intervals from the validation
 * residuals (split-conformal), so P50 and P90 cover about half and nine tenths of fresh
 * rows; a save/load round trip scores the same; damaged quantiles are refused. */
static void test_gbdt_eta(void)
{
    enum { N = 20000, NV = 5000, D = 5 };
    struct synth tr, va, te;
    make_lognormal(&tr, N, D, 0.5, 81);
    make_lognormal(&va, NV, D, 0.5, 82);
    make_lognormal(&te, N, D, 0.5, 83);
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_ETA);
    opt.gbdt_depth = 4;
    opt.gbdt_eta = 0.1;
    struct drisk_model *m = NULL, *back = NULL, *bad = NULL, *small = NULL;
    struct drisk_prediction *p = malloc(N * sizeof *p);
    struct drisk_buf buf = { 0 };
    struct drisk_error err = { 0 };
    CHECK_MSG(drisk_model_fit(&drisk_gbdt_ops, &tr.ds, &va.ds, &opt, &m, &err) == DRISK_OK, "%s",
              err.msg);
    if (!m || drisk_model_predict(m, te.x, N, p, &err) != DRISK_OK)
        goto out;
    const char *q50s = drisk_model_meta_param(&m->meta, "q50_log");
    const char *q90s = drisk_model_meta_param(&m->meta, "q90_log");
    CHECK(q50s && q90s);
    double q50 = q50s ? atof(q50s) : NAN, b50 = 0, b90 = 0, se = 0, ly = 0, ly2 = 0;
    int ordered = 1;
    for (size_t i = 0; i < N; i++) {
        b50 += te.y[i] <= p[i].p50_h;
        b90 += te.y[i] <= p[i].p90_h;
        double l = log(te.y[i]), r = l - p[i].score;
        se += r * r;
        ly += l;
        ly2 += l * l;
        ordered &= p[i].p90_h > p[i].p50_h && fabs(log(p[i].p50_h) - p[i].score - q50) < 1e-6;
    }
    CHECK_MSG(fabs(b50 / N - 0.5) < 0.03 && fabs(b90 / N - 0.9) < 0.03,
              "gbdt eta coverage P50 %.4f P90 %.4f", b50 / N, b90 / N);
    CHECK(ordered);
    /* the trees learned mu(x): log-hours vary with sd ~1.5 around it, the noise is 0.5 */
    double rmse = sqrt(se / N), sd = sqrt(ly2 / N - (ly / N) * (ly / N));
    CHECK_MSG(rmse < 0.6 && sd > 1.2, "gbdt eta RMSE %.3f of log-hours with sd %.3f", rmse, sd);
    int trees = atoi(drisk_model_meta_param(&m->meta, "trees"));
    CHECK_MSG(trees > 10 && trees < 1000, "stopped early at %d trees", trees);
    check_explain_sums(m, te.x, D);
    /* the round trip scores bit for bit the same, P50 and P90 included */
    CHECK(drisk_model_set_schema(m, SCHEMA, &err) == DRISK_OK);
    CHECK(drisk_model_save(m, &buf, &err) == DRISK_OK);
    CHECK_MSG(drisk_model_load(buf.data, buf.len, SCHEMA, &back, &err) == DRISK_OK, "%s", err.msg);
    if (back) {
        CHECK(predictions_equal(m, back, te.x, N));
        CHECK(back->meta.target == DRISK_TARGET_ETA && back->calibrator == NULL);
    }
    /* quantiles out of order (P90 below P50): refused, checksum or not */
    size_t at = gbdt_payload_at(&buf);
    CHECK(at > 8);
    if (at > 8) {
        unsigned char *copy = malloc(buf.len), t[8];
        memcpy(copy, buf.data, buf.len);
        memcpy(t, copy + at + 16, 8);
        memmove(copy + at + 16, copy + at + 24, 8);
        memcpy(copy + at + 24, t, 8);
        CHECK(drisk_model_load(copy, buf.len, SCHEMA, &bad, &err) == DRISK_EINVAL && !bad);
        write_crc(copy, buf.len);
        CHECK(drisk_model_load(copy, buf.len, SCHEMA, &bad, &err) == DRISK_EINVAL && !bad &&
              strstr(err.msg, "quantiles"));
        free(copy);
    }
    /* the intervals need held-out rows */
    CHECK(drisk_model_fit(&drisk_gbdt_ops, &tr.ds, NULL, &opt, &bad, &err) == DRISK_EINVAL &&
          !bad && strstr(err.msg, "validation"));
    /* a small eta forest: every truncation and corrupted byte refused or harmless */
    drisk_buf_free(&buf);
    opt.gbdt_trees = 6;
    opt.gbdt_depth = 2;
    CHECK(drisk_model_fit(&drisk_gbdt_ops, &va.ds, &te.ds, &opt, &small, &err) == DRISK_OK);
    if (small && drisk_model_set_schema(small, SCHEMA, &err) == DRISK_OK &&
        drisk_model_save(small, &buf, &err) == DRISK_OK) {
        CHECK_MSG(buf.len < 20000, "%zu bytes", buf.len);
        check_corruption(&buf, te.x, D);
    }
out:
    free(p);
    drisk_buf_free(&buf);
    drisk_model_free(m);
    drisk_model_free(back);
    drisk_model_free(small);
    synth_free(&tr);
    synth_free(&va);
    synth_free(&te);
}

/* eta's pseudo-Huber loss: where some parcels get stuck (a heavy right tail that depends
 * on x), the squared error chases the mean and its P50 lands above the typical delivery;
 * the default loss follows the median and its P50 is closer (mean absolute error of
 * log-hours, what the median minimizes). */
static void test_gbdt_huber(void)
{
    enum { N = 20000, NV = 5000, D = 5 };
    struct synth s[3];
    static const size_t rows[3] = { N, NV, N };
    for (int k = 0; k < 3; k++) {
        make_lognormal(&s[k], rows[k], D, 0.3, 91 + (uint64_t)k);
        for (size_t i = 0; i < rows[k]; i++) /* x0 above its mean: 30 % stuck ~12x longer */
            if (s[k].x[i * D] > 5.0 && rng_unif() < 0.3)
                s[k].y[i] *= exp(2.5);
    }
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_ETA);
    CHECK(opt.gbdt_huber_delta == 0.3);
    opt.gbdt_depth = 4;
    opt.gbdt_eta = 0.1;
    struct drisk_model *m[2] = { NULL, NULL };
    struct drisk_prediction *p = malloc(N * sizeof *p);
    struct drisk_error err = { 0 };
    double mae[2] = { NAN, NAN };
    for (int k = 0; k < 2; k++) {
        opt.gbdt_huber_delta = k ? 0.0 : 0.3;
        CHECK_MSG(drisk_model_fit(&drisk_gbdt_ops, &s[0].ds, &s[1].ds, &opt, &m[k], &err) ==
                  DRISK_OK, "%s", err.msg);
        if (!m[k] || drisk_model_predict(m[k], s[2].x, N, p, &err) != DRISK_OK)
            continue;
        double sum = 0.0;
        for (size_t i = 0; i < N; i++)
            sum += fabs(log(p[i].p50_h / s[2].y[i]));
        mae[k] = sum / N;
    }
    const char *loss = m[0] ? drisk_model_meta_param(&m[0]->meta, "loss") : NULL;
    CHECK(loss && strstr(loss, "pseudo-Huber"));
    CHECK_MSG(mae[0] < 0.95 * mae[1], "P50 mean abs error of log-hours: pseudo-Huber %.4f, "
              "squared %.4f", mae[0], mae[1]);
    free(p);
    drisk_model_free(m[0]);
    drisk_model_free(m[1]);
    for (int k = 0; k < 3; k++)
        synth_free(&s[k]);
}

static void test_table(void)
{
    struct drisk_error err = { 0 };
    CHECK(drisk_model_ops_find("logreg") == &drisk_logreg_ops);
    CHECK(drisk_model_ops_find("lognormal") == &drisk_lognormal_ops);
    CHECK(drisk_model_ops_find("mlp") == &drisk_mlp_ops);
    CHECK(drisk_model_ops_find("svm_rbf") == &drisk_svm_rbf_ops);
    CHECK(drisk_model_ops_find("svm_linear") == &drisk_svm_linear_ops);
    CHECK(drisk_model_ops_find("gbdt") == &drisk_gbdt_ops);
    CHECK(drisk_model_ops_find("svm") == NULL && drisk_model_ops_find(NULL) == NULL);
    size_t n = 0;
    while (drisk_model_ops_at(n))
        n++;
    CHECK(n == 6);
    drisk_model_free(NULL);
    drisk_calibrator_free(NULL);
    CHECK(drisk_target_parse("lost") == DRISK_TARGET_LOST && drisk_target_parse("x") == -1);
    CHECK(drisk_calib_kind_parse("isotonic") == DRISK_CALIB_ISOTONIC);

    enum { N = 500, D = 3 };
    struct synth s;
    make_logistic(&s, N, D, 0.0, 3);
    /* a constant column: fitted, weight 0 */
    for (size_t i = 0; i < N; i++)
        s.x[i * D + 1] = 42.0;
    struct drisk_fit_options opt;
    drisk_fit_options_init(&opt, DRISK_TARGET_LATE);
    double last_loss = -1.0;
    opt.progress = on_progress;
    opt.progress_ctx = &last_loss;
    struct drisk_model *m = NULL;
    CHECK(drisk_model_fit(&drisk_logreg_ops, &s.ds, NULL, &opt, &m, &err) == DRISK_OK);
    CHECK(progress_calls > 1 && last_loss > 0.0 && last_loss < log(2.0));
    if (m) {
        double c[D], base;
        struct drisk_prediction p;
        CHECK(drisk_model_explain(m, s.x, c, &base, &err) == DRISK_OK);
        CHECK(c[1] == 0.0);
        drisk_model_predict(m, s.x, 1, &p, &err);
        CHECK(fabs(base + c[0] + c[1] + c[2] - p.score) < 1e-12);
        double bad[D] = { 1.0, NAN, 2.0 };
        CHECK(drisk_model_predict(m, bad, 1, &p, &err) == DRISK_EINVAL);
        CHECK(drisk_model_set_param(m, "note", "x", &err) == DRISK_OK);
        CHECK(strcmp(drisk_model_meta_param(&m->meta, "note"), "x") == 0);
    }
    drisk_model_free(m);
    m = NULL;
    /* labels other than 0/1, and a single class, are refused before fitting */
    s.y[3] = 0.5;
    CHECK(drisk_model_fit(&drisk_logreg_ops, &s.ds, NULL, &opt, &m, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "row 3") != NULL);
    for (size_t i = 0; i < N; i++)
        s.y[i] = 1.0;
    CHECK(drisk_model_fit(&drisk_logreg_ops, &s.ds, NULL, &opt, &m, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "one class") != NULL);
    s.y[0] = 0.0;
    s.x[4] = INFINITY;
    CHECK(drisk_model_fit(&drisk_logreg_ops, &s.ds, NULL, &opt, &m, &err) == DRISK_EINVAL);
    CHECK(m == NULL);
    synth_free(&s);
}

int main(void)
{
    test_objective();
    test_lbfgs_optimum();
    test_weights();
    test_eta();
    test_platt();
    test_isotonic();
    test_format();
    test_table();
    test_mlp_gradient();
    test_mlp();
    test_svm();
    test_gbdt();
    test_gbdt_huber();
    test_gbdt_eta();
    CHECK_DONE();
}
