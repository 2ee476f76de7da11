/* L2-regularized logistic regression ("logreg") for the late and lost targets, solved
 * with L-BFGS, and the linear building blocks the eta learner shares (column moments,
 * standardized linear scores).
 *
 * Fitting standardizes the features once into a copy (mean and population std from the
 * training rows, stored in the model; a constant column gets std 1 and so standardizes
 * to 0 and keeps weight 0), folds class weights ("balanced": W / (2 W_c)) into the row
 * weights, and minimizes the weighted mean log loss plus l2/2 |w|^2 (intercept not
 * penalized). Every pass over the matrix is OpenBLAS: per block of rows, z = Xs w is one
 * cblas_dgemv and the gradient Xs^T r another, while the block is in cache; blocks are
 * shared among one thread per core (drisk_logreg_objective), and the rest is O(n) vector
 * work. L-BFGS (Nocedal and Wright, algorithms 7.4 and 3.5/3.6)
 * keeps the last m (s, y) pairs and searches for a step meeting the strong Wolfe
 * conditions by bracketing and safeguarded cubic interpolation; step 1 is nearly always
 * accepted, so an iteration costs about one evaluation. It stops when max |gradient| <
 * tol, when an iteration improves the loss by less than ftol relative, or after max_iter.
 *
 * Payload: u64 d, f64 intercept, then d f64 means, d f64 stds, d f64 weights (the
 * weights act on standardized features). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cblas.h>

#include "models/format.h"
#include "base/log.h"
#include "base/progress.h"

#define LS_C1 1e-4
#define LS_C2 0.9
#define LS_MAX_BRACKET 25
#define LS_MAX_ZOOM 30
#define MAX_FEATURES ((size_t)1 << 20)

struct logreg {
    struct drisk_model base;
    struct drisk_linear lin;
};

/* ---- shared linear building blocks ---- */

enum drisk_status drisk_column_moments(const double *x, size_t n, size_t d, double *mean,
                                       double *std, struct drisk_error *err)
{
    enum drisk_status st;
    double *ones = calloc(n, sizeof *ones);
    double *acc = calloc(d, sizeof *acc);
    if (!ones || !acc) {
        st = drisk_error_set(err, DRISK_ENOMEM, "column moments: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        ones[i] = 1.0;
    /* sum first, divide once: a constant column's mean is then its value exactly, whatever
     * order the BLAS kernel of this CPU adds in */
    cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 1.0, x, (int)d, ones, 1, 0.0, mean,
                1);
    for (size_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    /* Two-pass variance: accurate where E[x^2] - mean^2 would cancel. */
    for (size_t i = 0; i < n; i++) {
        const double *row = x + i * d;
        for (size_t j = 0; j < d; j++) {
            double c = row[j] - mean[j];
            acc[j] += c * c;
        }
    }
    for (size_t j = 0; j < d; j++) {
        double v = acc[j] / (double)n;
        if (!isfinite(mean[j]) || !isfinite(v)) {
            st = drisk_error_set(err, DRISK_EINVAL, "feature column %zu holds a non-finite or "
                                 "overflowing value", j);
            goto out;
        }
        std[j] = v > 0.0 ? sqrt(v) : 1.0;
        /* a column constant up to rounding: its centered values are noise */
        if (std[j] <= 1e-12 * fabs(mean[j])) {
            std[j] = 1.0;
            mean[j] = n ? x[j] : mean[j]; /* exactly constant: centered values exactly 0 */
        }
    }
    st = DRISK_OK;
out:
    free(ones);
    free(acc);
    return st;
}

enum drisk_status drisk_linear_init(struct drisk_linear *lin, size_t d, struct drisk_error *err)
{
    memset(lin, 0, sizeof *lin);
    lin->mean = calloc(3 * d, sizeof *lin->mean);
    if (!lin->mean)
        return drisk_error_set(err, DRISK_ENOMEM, "model: out of memory");
    lin->d = d;
    lin->std = lin->mean + d;
    lin->w = lin->std + d;
    return DRISK_OK;
}

void drisk_linear_clear(struct drisk_linear *lin)
{
    free(lin->mean);
    memset(lin, 0, sizeof *lin);
}

/* One loop for every prediction path, so a batch and a single row agree to the bit. */
double drisk_linear_score(const struct drisk_linear *lin, const double *x)
{
    double s = lin->b;
    for (size_t j = 0; j < lin->d; j++)
        s += lin->w[j] * ((x[j] - lin->mean[j]) / lin->std[j]);
    return s;
}

void drisk_linear_explain(const struct drisk_linear *lin, const double *x, double *contrib,
                          double *base)
{
    for (size_t j = 0; j < lin->d; j++)
        contrib[j] = lin->w[j] * ((x[j] - lin->mean[j]) / lin->std[j]);
    *base = lin->b;
}

void drisk_linear_save(const struct drisk_linear *lin, struct drisk_buf *buf)
{
    drisk_buf_put_u64(buf, lin->d);
    drisk_buf_put_f64(buf, lin->b);
    drisk_buf_put_f64s(buf, lin->mean, 3 * lin->d); /* mean, std, w are contiguous */
}

enum drisk_status drisk_linear_load(struct drisk_reader *r, size_t n_features,
                                    struct drisk_linear *lin, struct drisk_error *err)
{
    enum drisk_status st;
    size_t d = drisk_reader_count(r, 3 * sizeof(double), MAX_FEATURES);
    if ((st = drisk_reader_check(r, "model payload", err)) != DRISK_OK)
        goto out;
    if (d != n_features) {
        st = drisk_error_set(err, DRISK_EINVAL, "model payload has %zu features, metadata %zu", d,
                             n_features);
        goto out;
    }
    if ((st = drisk_linear_init(lin, d, err)) != DRISK_OK)
        goto out;
    lin->b = drisk_reader_f64(r);
    drisk_reader_f64s(r, lin->mean, 3 * d);
    if ((st = drisk_reader_check(r, "model payload", err)) != DRISK_OK)
        goto out;
    if (!isfinite(lin->b)) {
        st = drisk_error_set(err, DRISK_EINVAL, "model payload: intercept is not finite");
        goto out;
    }
    for (size_t j = 0; j < d; j++) {
        if (!isfinite(lin->mean[j]) || !isfinite(lin->std[j]) || !(lin->std[j] > 0.0) ||
            !isfinite(lin->w[j])) {
            st = drisk_error_set(err, DRISK_EINVAL, "model payload: feature %zu has an invalid "
                                 "mean, std or weight", j);
            goto out;
        }
    }
out:
    return st;
}

/* ---- objective ---- */

/* The objective runs in row blocks small enough that OpenBLAS computes each product on
 * the calling thread (it threads gemv only above 9216 matrix elements) and that both
 * products of a block run while its rows are still in cache, so an evaluation reads the
 * matrix from memory once; the blocks are split between our own threads, one per core,
 * each summing its share of the loss and gradient, in a fixed partition so that the
 * result does not depend on scheduling. (One big threaded gemv per product reads the
 * matrix twice and spends its time waking threads on a busy machine.) */
#define OBJECTIVE_BLOCK_ELEMS 9000
#define OBJECTIVE_MAX_THREADS 8
#define OBJECTIVE_MIN_ROWS_PER_THREAD 65536

struct objective_part {
    const double *xs, *y, *sw, *theta;
    size_t from, to, d;
    double inv;
    double *z, *r, *grad; /* grad: this part's d sums */
    double loss, rsum;
};

static void objective_part_run(struct objective_part *p)
{
    size_t d = p->d, rows = OBJECTIVE_BLOCK_ELEMS / d ? OBJECTIVE_BLOCK_ELEMS / d : 1;
    const double b = p->theta[d];
    double loss = 0.0, rsum = 0.0;
    for (size_t j = 0; j < d; j++)
        p->grad[j] = 0.0;
    for (size_t i0 = p->from; i0 < p->to; i0 += rows) {
        size_t k = p->to - i0 < rows ? p->to - i0 : rows;
        const double *xb = p->xs + i0 * d;
        double *z = p->z, *r = p->r;
        for (size_t i = i0; i < i0 + k; i++)
            z[i] = b;
        cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)k, (int)d, 1.0, xb, (int)d, p->theta, 1,
                    1.0, z + i0, 1);
        for (size_t i = i0; i < i0 + k; i++) {
            double zi = z[i];
            double e = exp(-fabs(zi));
            /* log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow for any z */
            double li = (zi > 0.0 ? zi : 0.0) + log1p(e) - p->y[i] * zi;
            double pr = zi >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            double wi = p->sw ? p->sw[i] : 1.0;
            loss += wi * li;
            r[i] = wi * (pr - p->y[i]) * p->inv;
            rsum += r[i];
        }
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)k, (int)d, 1.0, xb, (int)d, r + i0, 1, 1.0,
                    p->grad, 1);
    }
    p->loss = loss;
    p->rsum = rsum;
}

static void *objective_thread(void *arg)
{
    objective_part_run(arg);
    return NULL;
}

static int objective_threads(size_t n)
{
    static int cores;
    if (cores == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        cores = c < 1 ? 1 : c > OBJECTIVE_MAX_THREADS ? OBJECTIVE_MAX_THREADS : (int)c;
    }
    size_t by_rows = n / OBJECTIVE_MIN_ROWS_PER_THREAD;
    return by_rows < 1 ? 1 : by_rows < (size_t)cores ? (int)by_rows : cores;
}

double drisk_logreg_objective(const double *xs, size_t n, size_t d, const double *y,
                              const double *sw, double sw_sum, double l2, const double *theta,
                              double *grad, double *z, double *r)
{
    int threads = objective_threads(n);
    struct objective_part part[OBJECTIVE_MAX_THREADS];
    pthread_t tid[OBJECTIVE_MAX_THREADS];
    int started[OBJECTIVE_MAX_THREADS] = { 0 };
    double *gpart = threads > 1 ? malloc((size_t)(threads - 1) * d * sizeof *gpart) : NULL;
    if (!gpart)
        threads = 1; /* out of memory for the partial gradients: one thread does it all */
    for (int t = 0; t < threads; t++) {
        part[t] = (struct objective_part){
            xs, y, sw, theta, n * (size_t)t / (size_t)threads,
            n * (size_t)(t + 1) / (size_t)threads, d, 1.0 / sw_sum, z, r,
            t == 0 ? grad : gpart + (size_t)(t - 1) * d, 0.0, 0.0
        };
    }
    /* part 0 on this thread; a part whose thread cannot start runs here too */
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tid[t], NULL, objective_thread, &part[t]) == 0;
    objective_part_run(&part[0]);
    double loss = part[0].loss, rsum = part[0].rsum;
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            objective_part_run(&part[t]);
        loss += part[t].loss;
        rsum += part[t].rsum;
        for (size_t j = 0; j < d; j++)
            grad[j] += part[t].grad[j];
    }
    free(gpart);
    double reg = 0.0;
    for (size_t j = 0; j < d; j++) {
        grad[j] += l2 * theta[j];
        reg += theta[j] * theta[j];
    }
    grad[d] = rsum;
    return loss / sw_sum + 0.5 * l2 * reg;
}

/* ---- L-BFGS ---- */

struct lbfgs_problem {
    size_t n;
    double (*eval)(void *ctx, const double *x, double *g);
    void *ctx;
};

struct lbfgs_result {
    int iterations, evaluations;
    double f, grad_inf;
    const char *stop;
};

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double inf_norm(const double *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m)
            m = fabs(a[i]);
    return m;
}

/* Line-search state along x + a*dir: evaluates into xt/gt and returns phi(a), phi'(a). */
struct ls_state {
    const struct lbfgs_problem *p;
    const double *x, *dir;
    double *xt, *gt;
    int evals;
};

static double ls_eval(struct ls_state *s, double a, double *dphi)
{
    for (size_t i = 0; i < s->p->n; i++)
        s->xt[i] = s->x[i] + a * s->dir[i];
    double f = s->p->eval(s->p->ctx, s->xt, s->gt);
    s->evals++;
    *dphi = dot(s->gt, s->dir, s->p->n);
    if (!isfinite(f) || !isfinite(*dphi)) {
        *dphi = 0.0;
        return INFINITY; /* too far: the zoom shrinks the step */
    }
    return f;
}

/* The minimizer of the cubic through (a, fa, da) and (b, fb, db), kept inside the
 * interval's middle 80%; bisection when the cubic has no usable minimum. */
static double cubic_step(double a, double fa, double da, double b, double fb, double db)
{
    double lo = a < b ? a : b, hi = a < b ? b : a, w = hi - lo;
    double d1 = da + db - 3.0 * (fa - fb) / (a - b);
    double disc = d1 * d1 - da * db;
    double t = 0.5 * (a + b);
    if (disc >= 0.0 && isfinite(disc) && isfinite(d1)) {
        double d2 = (b > a ? 1.0 : -1.0) * sqrt(disc);
        double den = db - da + 2.0 * d2;
        if (den != 0.0) {
            double c = b - (b - a) * (db + d2 - d1) / den;
            if (isfinite(c))
                t = c;
        }
    }
    if (t < lo + 0.1 * w || t > hi - 0.1 * w)
        t = 0.5 * (a + b);
    return t;
}

/* Strong Wolfe line search from step a0. Returns 0 with xt, gt, *ft at the accepted
 * point, -1 if no step decreased the loss. Near the optimum the loss changes by less
 * than its rounding error, so a step is also accepted under Hager and Zhang's
 * approximate Wolfe conditions: the loss did not rise beyond rounding and the directional
 * derivative, which stays accurate there, shrank enough. */
static int line_search(struct ls_state *s, double f0, double dg0, double a0, double *ft)
{
    const double f_eps = 1e-12 * fabs(f0);
    double a_prev = 0.0, f_prev = f0, dg_prev = dg0;
    double a = a0, lo, flo, dglo, hi, fhi, dghi;
#define CURVATURE_OK(dga) (fabs(dga) <= -LS_C2 * dg0)
#define APPROX_WOLFE(fa, dga) \
    ((fa) <= f0 + f_eps && (dga) <= (2.0 * LS_C1 - 1.0) * dg0 && CURVATURE_OK(dga))
    for (int i = 0;; i++) {
        double dga, fa = ls_eval(s, a, &dga);
        if (APPROX_WOLFE(fa, dga)) {
            *ft = fa;
            return 0;
        }
        if (fa > f0 + LS_C1 * a * dg0 || (i > 0 && fa >= f_prev)) {
            lo = a_prev, flo = f_prev, dglo = dg_prev;
            hi = a, fhi = fa, dghi = dga;
            break;
        }
        if (CURVATURE_OK(dga)) {
            *ft = fa;
            return 0;
        }
        if (dga >= 0.0) {
            lo = a, flo = fa, dglo = dga;
            hi = a_prev, fhi = f_prev, dghi = dg_prev;
            break;
        }
        if (i + 1 >= LS_MAX_BRACKET) {
            *ft = fa; /* still descending after many doublings: take it */
            return 0;
        }
        a_prev = a, f_prev = fa, dg_prev = dga;
        a *= 2.0;
    }
    for (int j = 0; j < LS_MAX_ZOOM; j++) {
        if (fabs(hi - lo) <= 1e-16 * fabs(lo) || fabs(hi - lo) < 1e-300)
            break;
        double a_j = isfinite(fhi) ? cubic_step(lo, flo, dglo, hi, fhi, dghi) : 0.5 * (lo + hi);
        double dga, fa = ls_eval(s, a_j, &dga);
        if (APPROX_WOLFE(fa, dga)) {
            *ft = fa;
            return 0;
        }
        if (fa > f0 + LS_C1 * a_j * dg0 || fa >= flo) {
            hi = a_j, fhi = fa, dghi = dga;
        } else {
            if (CURVATURE_OK(dga)) {
                *ft = fa;
                return 0;
            }
            if (dga * (hi - lo) >= 0.0)
                hi = lo, fhi = flo, dghi = dglo;
            lo = a_j, flo = fa, dglo = dga;
        }
    }
#undef APPROX_WOLFE
#undef CURVATURE_OK
    if (lo > 0.0 && flo < f0) {
        double dga;
        *ft = ls_eval(s, lo, &dga); /* sufficient decrease without the curvature condition */
        return 0;
    }
    return -1;
}

/* Minimizes p from x (updated in place). Never fails on numerics: it reports why it
 * stopped. */
static enum drisk_status lbfgs_minimize(const struct lbfgs_problem *p, double *x,
                                        const struct drisk_fit_options *opt,
                                        struct lbfgs_result *res, struct drisk_error *err)
{
    enum drisk_status st;
    size_t n = p->n;
    size_t m = (size_t)opt->lbfgs_m;
    double *mem = malloc((4 * n + 2 * m * n + 2 * m) * sizeof *mem);
    if (!mem) {
        st = drisk_error_set(err, DRISK_ENOMEM, "L-BFGS: out of memory");
        goto out;
    }
    double *g = mem, *dir = g + n, *xt = dir + n, *gt = xt + n;
    double *S = gt + n, *Y = S + m * n, *rho = Y + m * n, *alpha = rho + m;
    size_t hist = 0, head = 0;
    memset(res, 0, sizeof *res);
    double f = p->eval(p->ctx, x, g);
    res->evaluations = 1;
    if (!isfinite(f)) {
        st = drisk_error_set(err, DRISK_EINVAL, "L-BFGS: the loss at the start is not finite");
        goto out;
    }
    double gnorm = inf_norm(g, n);
    struct drisk_meter meter;
    drisk_meter_start(&meter, "L-BFGS fit", "iterations", opt->max_iter);
    int k = 0;
    for (;;) {
        if (opt->progress)
            opt->progress(opt->progress_ctx, k, f, gnorm);
        if (drisk_meter_due(&meter))
            drisk_meter_show(&meter, k, "loss %.10g, max |gradient| %.3g", f, gnorm);
        if (gnorm <= opt->tol) {
            res->stop = "gradient";
            break;
        }
        if (k >= opt->max_iter) {
            res->stop = "max_iter";
            break;
        }
        /* two-loop recursion: dir = -H g */
        for (size_t i = 0; i < n; i++)
            dir[i] = -g[i];
        for (size_t h = 0; h < hist; h++) {
            size_t s = (head + m - 1 - h) % m;
            alpha[s] = rho[s] * dot(S + s * n, dir, n);
            for (size_t i = 0; i < n; i++)
                dir[i] -= alpha[s] * Y[s * n + i];
        }
        if (hist > 0) {
            size_t s = (head + m - 1) % m;
            double gamma = 1.0 / (rho[s] * dot(Y + s * n, Y + s * n, n));
            for (size_t i = 0; i < n; i++)
                dir[i] *= gamma;
        }
        for (size_t h = hist; h-- > 0;) {
            size_t s = (head + m - 1 - h) % m;
            double beta = rho[s] * dot(Y + s * n, dir, n);
            for (size_t i = 0; i < n; i++)
                dir[i] += (alpha[s] - beta) * S[s * n + i];
        }
        double dg = dot(g, dir, n);
        if (!(dg < 0.0)) {
            hist = 0;
            for (size_t i = 0; i < n; i++)
                dir[i] = -g[i];
            dg = -dot(g, g, n);
        }
        double a0 = 1.0;
        if (hist == 0) {
            double g2 = sqrt(dot(g, g, n));
            a0 = g2 > 1.0 ? 1.0 / g2 : 1.0;
        }
        struct ls_state ls = { p, x, dir, xt, gt, 0 };
        double ft;
        int ok = line_search(&ls, f, dg, a0, &ft);
        res->evaluations += ls.evals;
        if (ok != 0) {
            if (hist > 0) {
                hist = 0; /* a stale curvature pair: retry along the gradient */
                continue;
            }
            res->stop = "line_search";
            break;
        }
        /* accept: s = xt - x, y = gt - g */
        double *sv = S + head * n, *yv = Y + head * n;
        for (size_t i = 0; i < n; i++) {
            sv[i] = xt[i] - x[i];
            yv[i] = gt[i] - g[i];
        }
        double sy = dot(sv, yv, n), yy = dot(yv, yv, n);
        if (sy > 1e-12 * yy && yy > 0.0) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % m;
            if (hist < m)
                hist++;
        }
        double f_old = f;
        memcpy(x, xt, n * sizeof *x);
        memcpy(g, gt, n * sizeof *g);
        f = ft;
        gnorm = inf_norm(g, n);
        k++;
        double scale = fmax(fmax(fabs(f_old), fabs(f)), 1.0);
        if (gnorm > opt->tol && opt->ftol > 0.0 && f_old - f <= opt->ftol * scale) {
            res->stop = "loss_change";
            break;
        }
    }
    drisk_meter_end(&meter, k);
    res->iterations = k;
    res->f = f;
    res->grad_inf = gnorm;
    st = DRISK_OK;
out:
    free(mem);
    return st;
}

/* ---- the learner ---- */

struct logreg_fit_ctx {
    const double *xs, *y, *sw;
    size_t n, d;
    double sw_sum, l2;
    double *z, *r;
};

static double logreg_eval(void *ctx, const double *theta, double *grad)
{
    struct logreg_fit_ctx *c = ctx;
    return drisk_logreg_objective(c->xs, c->n, c->d, c->y, c->sw, c->sw_sum, c->l2, theta, grad,
                                  c->z, c->r);
}

static void logreg_free(struct drisk_model *base)
{
    struct logreg *m = (struct logreg *)base;
    drisk_linear_clear(&m->lin);
    free(m);
}

static struct logreg *logreg_new(size_t d, struct drisk_error *err)
{
    struct logreg *m = calloc(1, sizeof *m);
    if (!m) {
        drisk_error_set(err, DRISK_ENOMEM, "model: out of memory");
        return NULL;
    }
    m->base.ops = &drisk_logreg_ops;
    if (drisk_linear_init(&m->lin, d, err) != DRISK_OK) {
        free(m);
        return NULL;
    }
    return m;
}

enum drisk_status drisk_model_set_param_g(struct drisk_model *m, const char *key, double v,
                                          struct drisk_error *err)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.17g", v);
    return drisk_model_set_param(m, key, buf, err);
}

static enum drisk_status logreg_fit(const struct drisk_dataset *train,
                                    const struct drisk_dataset *valid,
                                    const struct drisk_fit_options *opt,
                                    struct drisk_model **out, struct drisk_error *err)
{
    (void)valid;
    enum drisk_status st;
    size_t n = train->n_rows, d = train->n_features;
    struct logreg *m = NULL;
    double *xs = NULL, *work = NULL, *theta = NULL;
    if (d > MAX_FEATURES || n > (size_t)2147483647 || d * n / d != n) {
        st = drisk_error_set(err, DRISK_EINVAL, "logreg: %zu x %zu is beyond what one BLAS call "
                             "takes", n, d);
        goto out;
    }
    if (!(m = logreg_new(d, err))) {
        st = DRISK_ENOMEM;
        goto out;
    }
    xs = malloc(n * d * sizeof *xs);
    work = malloc(3 * n * sizeof *work);
    theta = calloc(d + 1, sizeof *theta);
    if (!xs || !work || !theta) {
        st = drisk_error_set(err, DRISK_ENOMEM, "logreg: out of memory for the %zu x %zu "
                             "standardized copy", n, d);
        goto out;
    }
    if ((st = drisk_column_moments(train->x, n, d, m->lin.mean, m->lin.std, err)) != DRISK_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const double *row = train->x + i * d;
        double *dst = xs + i * d;
        for (size_t j = 0; j < d; j++)
            dst[j] = (row[j] - m->lin.mean[j]) / m->lin.std[j];
    }

    /* Row weights: sample weight times class weight; NULL when all 1. */
    double *sw = NULL;
    double cw0, cw1, pos_share;
    drisk_class_weights(train, opt->class_weight_balanced, &cw0, &cw1, &pos_share);
    double sw_sum = (double)n;
    if (train->weight || opt->class_weight_balanced) {
        sw = work + 2 * n;
        sw_sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            double wi = train->weight ? train->weight[i] : 1.0;
            sw[i] = wi * (train->y[i] != 0.0 ? cw1 : cw0);
            sw_sum += sw[i];
        }
    }
    /* Start from the weighted base rate: the intercept-only optimum. */
    double pos = 0.0;
    for (size_t i = 0; i < n; i++)
        pos += (sw ? sw[i] : 1.0) * train->y[i];
    theta[d] = log(pos / (sw_sum - pos));

    struct logreg_fit_ctx ctx = { xs, train->y, sw, n, d, sw_sum, opt->l2, work, work + n };
    struct lbfgs_problem prob = { d + 1, logreg_eval, &ctx };
    struct lbfgs_result res;
    if ((st = lbfgs_minimize(&prob, theta, opt, &res, err)) != DRISK_OK)
        goto out;
    if (strcmp(res.stop, "max_iter") == 0)
        DRISK_LOG(DRISK_LOG_WARN, "logreg: stopped after %d iterations with max |gradient| %.3g "
                  "(tolerance %.3g)", res.iterations, res.grad_inf, opt->tol);
    memcpy(m->lin.w, theta, d * sizeof *theta);
    m->lin.b = theta[d];
    for (size_t j = 0; j < d; j++) {
        if (!isfinite(m->lin.w[j])) {
            st = drisk_error_set(err, DRISK_EINVAL, "logreg: the fit diverged (weight %zu not "
                                 "finite)", j);
            goto out;
        }
    }
    if (!isfinite(m->lin.b)) {
        st = drisk_error_set(err, DRISK_EINVAL, "logreg: the fit diverged (intercept)");
        goto out;
    }
    char num[32];
    snprintf(num, sizeof num, "%d", res.iterations);
    if ((st = drisk_model_set_param_g(&m->base, "l2", opt->l2, err)) != DRISK_OK ||
        (st = drisk_model_set_param(&m->base, "class_weight",
                                    opt->class_weight_balanced ? "balanced" : "none", err)) ||
        (st = drisk_model_set_param(&m->base, "iterations", num, err)) ||
        (st = drisk_model_set_param_g(&m->base, "train_loss", res.f, err)) ||
        (st = drisk_model_set_param_g(&m->base, "grad_inf", res.grad_inf, err)) ||
        (st = drisk_model_set_param(&m->base, "stop", res.stop, err)))
        goto out;
    snprintf(num, sizeof num, "%d", res.evaluations);
    if ((st = drisk_model_set_param(&m->base, "evaluations", num, err)) != DRISK_OK)
        goto out;
    *out = &m->base;
    m = NULL;
out:
    if (m)
        logreg_free(&m->base);
    free(xs);
    free(work);
    free(theta);
    return st;
}

static enum drisk_status logreg_predict(const struct drisk_model *base, const double *x, size_t n,
                                        struct drisk_prediction *out, struct drisk_error *err)
{
    (void)err;
    const struct logreg *m = (const struct logreg *)base;
    for (size_t i = 0; i < n; i++)
        out[i].score = drisk_linear_score(&m->lin, x + i * m->lin.d);
    return DRISK_OK;
}

static enum drisk_status logreg_explain(const struct drisk_model *base, const double *x,
                                        double *contrib, double *bias, struct drisk_error *err)
{
    (void)err;
    drisk_linear_explain(&((const struct logreg *)base)->lin, x, contrib, bias);
    return DRISK_OK;
}

static enum drisk_status logreg_save(const struct drisk_model *base, struct drisk_buf *buf,
                                     struct drisk_error *err)
{
    (void)err;
    drisk_linear_save(&((const struct logreg *)base)->lin, buf);
    return DRISK_OK;
}

static enum drisk_status logreg_load(struct drisk_reader *r, const struct drisk_model_meta *meta,
                                     struct drisk_model **out, struct drisk_error *err)
{
    enum drisk_status st;
    struct logreg *m = calloc(1, sizeof *m);
    if (!m) {
        st = drisk_error_set(err, DRISK_ENOMEM, "model: out of memory");
        goto out;
    }
    m->base.ops = &drisk_logreg_ops;
    if ((st = drisk_linear_load(r, meta->n_features, &m->lin, err)) != DRISK_OK)
        goto out;
    *out = &m->base;
    m = NULL;
out:
    if (m)
        logreg_free(&m->base);
    return st;
}

static const double logreg_l2_grid[] = { 1e-5, 1e-4, 1e-3 };

static void logreg_training_options(struct drisk_fit_options *opt)
{
    opt->tol = 1e-5; /* max |gradient| of the mean loss: finer changes no metric */
}

const struct drisk_model_ops drisk_logreg_ops = {
    .name = "logreg",
    .classification = 1,
    .regression = 0,
    .fit = logreg_fit,
    .predict = logreg_predict,
    .explain = logreg_explain,
    .save = logreg_save,
    .load = logreg_load,
    .free = logreg_free,
    .l2_grid = logreg_l2_grid,
    .n_l2_grid = sizeof logreg_l2_grid / sizeof logreg_l2_grid[0],
    .reports_l2 = 1,
    .training_options = logreg_training_options,
};
