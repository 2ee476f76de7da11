/* Support vector machines from libsvm for late and lost: C-SVC with an RBF kernel
 * ("svm_rbf") or a linear one ("svm_linear").
 *
 * Fitting: features are scaled to [0, 1] by their training minimum and maximum (what
 * libsvm's guide and svm-scale do; a one-hot zero stays zero, so the sparse rows libsvm
 * reads stay short). libsvm's training time grows about quadratically with rows, so a
 * training set above opt->svm_max_rows is sampled down to it, stratified by class (each
 * class keeps its share, except that the rarer class keeps at least a quarter of the cap
 * when it has that many rows), with a warning saying so. Classes are weighted as asked
 * (balanced: W / (2 W_c)); the raw decision value is the score, and the caller calibrates
 * it on the validation set (libsvm's own probability estimates would cost five more fits).
 * libsvm's console output goes to our log at debug level.
 *
 * Scoring does not go through libsvm: the model keeps the support vectors densely, and a
 * batch of rows is scored with one cblas_dgemm against them (RBF: exp(-gamma |x - sv|^2)
 * from |x|^2 + |sv|^2 - 2 x.sv); the linear kernel collapses to one weight vector. So a
 * loaded model needs no temporary file and is read-only: any number of threads may score
 * through it.
 *
 * Payload: u8 kernel (0 linear, 2 RBF, libsvm's numbering), f64 gamma, f64 rho, d f64
 * minimums, d f64 scales, d f64 training means; linear: d f64 weights; RBF: u64 n_sv,
 * n_sv f64 coefficients, n_sv * d f64 scaled support vectors (row-major). The score is
 * sum_i coef_i K(x', sv_i) - rho, positive toward class 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <svm.h>

#include "models/format.h"
#include "base/log.h"
#include "base/progress.h"

#define SVM_MAX_SV ((size_t)1 << 24)
#define SVM_CHUNK 32

struct svm {
    struct drisk_model base;
    int kernel; /* LINEAR or RBF */
    size_t d, n_sv;
    double gamma, rho;
    double *lo, *scale, *mean; /* d each */
    double *w;                 /* linear: d */
    double *coef, *sv, *sv_sq; /* RBF: n_sv, n_sv x d, n_sv */
};

static void svm_model_free(struct drisk_model *base)
{
    struct svm *m = (struct svm *)base;
    free(m->lo);
    free(m->w);
    free(m->coef);
    free(m->sv);
    free(m->sv_sq);
    free(m);
}

static struct svm *svm_new(const struct drisk_model_ops *ops, size_t d, struct drisk_error *err)
{
    struct svm *m = calloc(1, sizeof *m);
    if (!m || !(m->lo = calloc(3 * d, sizeof *m->lo))) {
        free(m);
        drisk_error_set(err, DRISK_ENOMEM, "svm: out of memory");
        return NULL;
    }
    m->base.ops = ops;
    m->kernel = ops == &drisk_svm_rbf_ops ? RBF : LINEAR;
    m->d = d;
    m->scale = m->lo + d;
    m->mean = m->lo + 2 * d;
    return m;
}

/* libsvm prints a dot every 1,000 iterations of its solver, and gives no other hook: the
 * dots drive the fit's progress line (its total is unknown). One fit at a time. */
static struct drisk_meter svm_meter;
static int64_t svm_dots;

static void svm_log(const char *s)
{
    for (const char *p = s; *p; p++)
        if (*p == '.' && drisk_meter_due(&svm_meter))
            drisk_meter_show(&svm_meter, ++svm_dots * 1000, NULL);
        else if (*p == '.')
            svm_dots++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '.'))
        n--; /* libsvm prints dots for progress */
    if (n > 0)
        DRISK_LOG(DRISK_LOG_DEBUG, "libsvm: %.*s", (int)n, s);
}


/* Marks keep[i] for a uniform sample of `want` of the rows with label c (Knuth's
 * selection sampling: in order, deterministic for the seed). */
static void sample_class(const double *y, size_t n, double c, size_t have, size_t want,
                         unsigned char *keep, uint64_t *rng)
{
    size_t seen = 0, taken = 0;
    for (size_t i = 0; i < n && taken < want; i++) {
        if (y[i] != c)
            continue;
        double u = (double)(drisk_splitmix64(rng) >> 11) / 9007199254740992.0;
        if ((double)(have - seen) * u < (double)(want - taken)) {
            keep[i] = 1;
            taken++;
        }
        seen++;
    }
}

static void scale_row(const struct svm *m, const double *x, double *dst)
{
    for (size_t j = 0; j < m->d; j++)
        dst[j] = (x[j] - m->lo[j]) * m->scale[j];
}

static enum drisk_status fit_kernel(int kernel, const struct drisk_dataset *train,
                                 const struct drisk_fit_options *opt, struct drisk_model **out,
                                 struct drisk_error *err)
{
    enum drisk_status st;
    size_t n = train->n_rows, d = train->n_features;
    struct svm *m = NULL;
    unsigned char *keep = NULL;
    struct svm_node *nodes = NULL;
    struct svm_node **rows = NULL;
    double *ys = NULL, *row = NULL;
    struct svm_model *lm = NULL;
    if (d > (size_t)1 << 20 || d > (size_t)2147483646) {
        st = drisk_error_set(err, DRISK_EINVAL, "svm: %zu features is too many", d);
        goto out;
    }
    if (!(m = svm_new(kernel == RBF ? &drisk_svm_rbf_ops : &drisk_svm_linear_ops, d, err))) {
        st = DRISK_ENOMEM;
        goto out;
    }
    if (!(keep = calloc(n, 1)) || !(row = malloc(d * sizeof *row))) {
        st = drisk_error_set(err, DRISK_ENOMEM, "svm: out of memory");
        goto out;
    }

    /* the sample: stratified by class, the rarer class keeping at least a quarter */
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += train->y[i] != 0.0;
    size_t cap = opt->svm_max_rows, take_pos = pos, take_neg = n - pos;
    if (n > cap) {
        size_t minority = pos < n - pos ? pos : n - pos;
        size_t share = (size_t)((double)cap * (double)minority / (double)n + 0.5);
        if (share < cap / 4)
            share = minority < cap / 4 ? minority : cap / 4;
        if (pos < n - pos) {
            take_pos = share;
            take_neg = cap - share;
        } else {
            take_neg = share;
            take_pos = cap - share;
        }
        DRISK_LOG(DRISK_LOG_WARN, "%s: training on a sample of %zu of %zu rows (%zu of %zu "
                  "positive), stratified by class: libsvm's time grows about quadratically "
                  "with rows; raise --svm-max-rows to use more", m->base.ops->name, cap, n,
                  take_pos, pos);
    }
    uint64_t rng = opt->seed * 0x9e3779b97f4a7c15ULL + 7;
    sample_class(train->y, n, 1.0, pos, take_pos, keep, &rng);
    sample_class(train->y, n, 0.0, n - pos, take_neg, keep, &rng);
    size_t l = take_pos + take_neg;

    /* scaling to [0, 1] and the training means (explanations), from the sample */
    for (size_t j = 0; j < d; j++) {
        m->lo[j] = INFINITY;
        m->scale[j] = -INFINITY; /* the maximum, for now */
    }
    for (size_t i = 0; i < n; i++) {
        if (!keep[i])
            continue;
        const double *x = train->x + i * d;
        for (size_t j = 0; j < d; j++) {
            m->lo[j] = fmin(m->lo[j], x[j]);
            m->scale[j] = fmax(m->scale[j], x[j]);
            m->mean[j] += x[j] / (double)l;
        }
    }
    size_t nnz = 0;
    for (size_t j = 0; j < d; j++) {
        double range = m->scale[j] - m->lo[j];
        m->scale[j] = range > 0.0 && isfinite(range) ? 1.0 / range : 0.0;
    }
    double sum = 0.0, sum2 = 0.0; /* of every scaled value, for the default gamma */
    for (size_t i = 0; i < n; i++) {
        if (!keep[i])
            continue;
        scale_row(m, train->x + i * d, row);
        for (size_t j = 0; j < d; j++) {
            nnz += row[j] != 0.0;
            sum += row[j];
            sum2 += row[j] * row[j];
        }
    }
    double cells = (double)l * (double)d, var = sum2 / cells - (sum / cells) * (sum / cells);

    /* libsvm's sparse problem */
    if (!(nodes = malloc((nnz + l) * sizeof *nodes)) || !(rows = malloc(l * sizeof *rows)) ||
        !(ys = malloc(l * sizeof *ys))) {
        st = drisk_error_set(err, DRISK_ENOMEM, "svm: out of memory for %zu sampled rows", l);
        goto out;
    }
    size_t k = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep[i])
            continue;
        scale_row(m, train->x + i * d, row);
        rows[k] = nodes + at;
        ys[k++] = train->y[i] != 0.0 ? 1.0 : 0.0;
        for (size_t j = 0; j < d; j++)
            if (row[j] != 0.0)
                nodes[at++] = (struct svm_node){ (int)j + 1, row[j] };
        nodes[at++] = (struct svm_node){ -1, 0.0 };
    }
    struct svm_problem prob = { (int)l, ys, rows };
    int weight_label[2] = { 0, 1 };
    double weight[2] = { 1.0, 1.0 };
    if (opt->class_weight_balanced) {
        weight[0] = (double)l / (2.0 * (double)(l - take_pos));
        weight[1] = (double)l / (2.0 * (double)take_pos);
    }
    struct svm_parameter param = { 0 };
    param.svm_type = C_SVC;
    param.kernel_type = kernel;
    /* scikit-learn's "scale": a kernel width matched to the spread of the scaled data
     * (libsvm's 1 / d assumes [-1, 1] features that fill their range) */
    param.gamma = opt->svm_gamma > 0.0 ? opt->svm_gamma
                : var > 0.0 ? 1.0 / ((double)d * var) : 1.0 / (double)d;
    param.cache_size = 512;
    param.eps = 1e-3;
    param.C = opt->svm_c;
    param.nr_weight = 2;
    param.weight_label = weight_label;
    param.weight = weight;
    param.shrinking = 1;
    param.probability = 0;
    const char *why = svm_check_parameter(&prob, &param);
    if (why) {
        st = drisk_error_set(err, DRISK_EINVAL, "svm: libsvm refuses the parameters: %s", why);
        goto out;
    }
    svm_set_print_string_function(svm_log);
    drisk_meter_start(&svm_meter, "svm fit", "solver iterations", 0);
    svm_dots = 0;
    lm = svm_train(&prob, &param);
    drisk_meter_end(&svm_meter, svm_dots * 1000);
    if (!lm || lm->nr_class != 2 || lm->l < 1) {
        st = drisk_error_set(err, DRISK_EINVAL, "svm: libsvm found no two-class model");
        goto out;
    }
    /* libsvm's decision value is positive toward label[0] */
    double sign = lm->label[0] == 1 ? 1.0 : -1.0;
    m->gamma = param.gamma;
    m->rho = sign * lm->rho[0];
    m->n_sv = (size_t)lm->l;
    if (kernel == LINEAR) {
        if (!(m->w = calloc(d, sizeof *m->w))) {
            st = drisk_error_set(err, DRISK_ENOMEM, "svm: out of memory");
            goto out;
        }
        for (int i = 0; i < lm->l; i++)
            for (const struct svm_node *p = lm->SV[i]; p->index != -1; p++)
                m->w[p->index - 1] += sign * lm->sv_coef[0][i] * p->value;
    } else {
        if (!(m->coef = malloc(m->n_sv * sizeof *m->coef)) ||
            !(m->sv = calloc(m->n_sv * d, sizeof *m->sv)) ||
            !(m->sv_sq = malloc(m->n_sv * sizeof *m->sv_sq))) {
            st = drisk_error_set(err, DRISK_ENOMEM, "svm: out of memory for %zu support vectors",
                                 m->n_sv);
            goto out;
        }
        for (size_t i = 0; i < m->n_sv; i++) {
            m->coef[i] = sign * lm->sv_coef[0][i];
            double sq = 0.0;
            for (const struct svm_node *p = lm->SV[i]; p->index != -1; p++) {
                m->sv[i * d + (size_t)(p->index - 1)] = p->value;
                sq += p->value * p->value;
            }
            m->sv_sq[i] = sq;
        }
    }
    char num[32];
    snprintf(num, sizeof num, "%zu", m->n_sv);
    if ((st = drisk_model_set_param(&m->base, "kernel", kernel == RBF ? "rbf" : "linear", err)) ||
        (st = drisk_model_set_param_g(&m->base, "C", param.C, err)) ||
        (st = drisk_model_set_param_g(&m->base, "gamma", param.gamma, err)) ||
        (st = drisk_model_set_param(&m->base, "support_vectors", num, err)) ||
        (st = drisk_model_set_param_g(&m->base, "sample_rows", (double)l, err)) ||
        (st = drisk_model_set_param_g(&m->base, "max_rows", (double)cap, err)) ||
        (st = drisk_model_set_param(&m->base, "class_weight",
                                    opt->class_weight_balanced ? "balanced" : "none", err)))
        goto out;
    *out = &m->base;
    m = NULL;
out:
    if (lm)
        svm_free_and_destroy_model(&lm);
    if (m)
        svm_model_free(&m->base);
    free(keep);
    free(nodes);
    free(rows);
    free(ys);
    free(row);
    return st;
}

static enum drisk_status svm_rbf_fit(const struct drisk_dataset *train,
                                     const struct drisk_dataset *valid,
                                     const struct drisk_fit_options *opt, struct drisk_model **out,
                                     struct drisk_error *err)
{
    (void)valid;
    return fit_kernel(RBF, train, opt, out, err);
}

static enum drisk_status svm_linear_fit(const struct drisk_dataset *train,
                                        const struct drisk_dataset *valid,
                                        const struct drisk_fit_options *opt,
                                        struct drisk_model **out, struct drisk_error *err)
{
    (void)valid;
    return fit_kernel(LINEAR, train, opt, out, err);
}

static enum drisk_status svm_score_rows(const struct drisk_model *base, const double *x,
                                        size_t n, struct drisk_prediction *out,
                                        struct drisk_error *err)
{
    const struct svm *m = (const struct svm *)base;
    size_t d = m->d;
    if (m->kernel == LINEAR) {
        for (size_t i = 0; i < n; i++) {
            double s = -m->rho;
            for (size_t j = 0; j < d; j++)
                s += m->w[j] * (x[i * d + j] - m->lo[j]) * m->scale[j];
            out[i].score = s;
        }
        return DRISK_OK;
    }
    size_t chunk = n < SVM_CHUNK ? n : SVM_CHUNK;
    double *xs = malloc(chunk * d * sizeof *xs), *g = malloc(chunk * m->n_sv * sizeof *g);
    if (!xs || !g) {
        free(xs);
        free(g);
        return drisk_error_set(err, DRISK_ENOMEM, "svm: out of memory scoring");
    }
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        for (size_t r = 0; r < k; r++)
            scale_row(m, x + (i + r) * d, xs + r * d);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)k, (int)m->n_sv, (int)d, 1.0, xs,
                    (int)d, m->sv, (int)d, 0.0, g, (int)m->n_sv);
        for (size_t r = 0; r < k; r++) {
            double xx = 0.0, s = -m->rho;
            for (size_t j = 0; j < d; j++)
                xx += xs[r * d + j] * xs[r * d + j];
            const double *gr = g + r * m->n_sv;
            for (size_t v = 0; v < m->n_sv; v++)
                s += m->coef[v] * exp(-m->gamma * fmax(xx + m->sv_sq[v] - 2.0 * gr[v], 0.0));
            out[i + r].score = s;
        }
    }
    free(xs);
    free(g);
    return DRISK_OK;
}

static enum drisk_status svm_explain_row(const struct drisk_model *base, const double *x,
                                         double *contrib, double *bias, struct drisk_error *err)
{
    const struct svm *m = (const struct svm *)base;
    if (m->kernel == RBF)
        return drisk_explain_by_occlusion(base, m->mean, x, contrib, bias, err);
    double b = -m->rho;
    for (size_t j = 0; j < m->d; j++) {
        double wj = m->w[j] * m->scale[j];
        contrib[j] = wj * (x[j] - m->mean[j]);
        b += wj * (m->mean[j] - m->lo[j]);
    }
    *bias = b;
    return DRISK_OK;
}

static enum drisk_status svm_payload_save(const struct drisk_model *base,
                                          struct drisk_buf *buf, struct drisk_error *err)
{
    (void)err;
    const struct svm *m = (const struct svm *)base;
    drisk_buf_put_u8(buf, (uint8_t)m->kernel);
    drisk_buf_put_f64(buf, m->gamma);
    drisk_buf_put_f64(buf, m->rho);
    drisk_buf_put_f64s(buf, m->lo, 3 * m->d); /* lo, scale, mean: one allocation */
    if (m->kernel == LINEAR) {
        drisk_buf_put_f64s(buf, m->w, m->d);
    } else {
        drisk_buf_put_u64(buf, m->n_sv);
        drisk_buf_put_f64s(buf, m->coef, m->n_sv);
        drisk_buf_put_f64s(buf, m->sv, m->n_sv * m->d);
    }
    return DRISK_OK;
}

static int all_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

static enum drisk_status svm_payload_load(struct drisk_reader *r,
                                          const struct drisk_model_meta *meta,
                                          struct drisk_model **out, struct drisk_error *err)
{
    enum drisk_status st;
    size_t d = meta->n_features;
    int kernel = drisk_reader_u8(r);
    int want = strcmp(meta->algorithm, "svm_rbf") == 0 ? RBF : LINEAR;
    struct svm *m = NULL;
    if (kernel != want) {
        st = drisk_error_set(err, DRISK_EINVAL, "svm payload: kernel %d does not match algorithm "
                             "%s", kernel, meta->algorithm);
        goto out;
    }
    if (!(m = svm_new(kernel == RBF ? &drisk_svm_rbf_ops : &drisk_svm_linear_ops, d, err))) {
        st = DRISK_ENOMEM;
        goto out;
    }
    m->gamma = drisk_reader_f64(r);
    m->rho = drisk_reader_f64(r);
    drisk_reader_f64s(r, m->lo, 3 * d);
    if ((st = drisk_reader_check(r, "svm payload", err)))
        goto out;
    if (kernel == LINEAR) {
        if (!(m->w = malloc(d * sizeof *m->w))) {
            st = drisk_error_set(err, DRISK_ENOMEM, "svm: out of memory");
            goto out;
        }
        drisk_reader_f64s(r, m->w, d);
    } else {
        m->n_sv = drisk_reader_count(r, (d + 1) * sizeof(double), SVM_MAX_SV);
        if ((st = drisk_reader_check(r, "svm payload", err)))
            goto out;
        if (m->n_sv == 0) {
            st = drisk_error_set(err, DRISK_EINVAL, "svm payload: no support vectors");
            goto out;
        }
        if (!(m->coef = malloc(m->n_sv * sizeof *m->coef)) ||
            !(m->sv = malloc(m->n_sv * d * sizeof *m->sv)) ||
            !(m->sv_sq = malloc(m->n_sv * sizeof *m->sv_sq))) {
            st = drisk_error_set(err, DRISK_ENOMEM, "svm: out of memory for %zu support vectors",
                                 m->n_sv);
            goto out;
        }
        drisk_reader_f64s(r, m->coef, m->n_sv);
        drisk_reader_f64s(r, m->sv, m->n_sv * d);
        for (size_t i = 0; i < m->n_sv; i++) {
            double sq = 0.0;
            for (size_t j = 0; j < d; j++)
                sq += m->sv[i * d + j] * m->sv[i * d + j];
            m->sv_sq[i] = sq;
        }
    }
    if ((st = drisk_reader_check(r, "svm payload", err)))
        goto out;
    if (!isfinite(m->gamma) || !(m->gamma > 0.0) || !isfinite(m->rho) ||
        !all_finite(m->lo, 3 * d) ||
        (m->w && !all_finite(m->w, d)) || (m->coef && !all_finite(m->coef, m->n_sv)) ||
        (m->sv && !all_finite(m->sv, m->n_sv * d))) {
        st = drisk_error_set(err, DRISK_EINVAL, "svm payload: a value is not finite");
        goto out;
    }
    *out = &m->base;
    m = NULL;
out:
    if (m)
        svm_model_free(&m->base);
    return st;
}

const struct drisk_model_ops drisk_svm_rbf_ops = {
    .name = "svm_rbf",
    .classification = 1,
    .regression = 0,
    .fit = svm_rbf_fit,
    .predict = svm_score_rows,
    .explain = svm_explain_row,
    .save = svm_payload_save,
    .load = svm_payload_load,
    .free = svm_model_free,
};

const struct drisk_model_ops drisk_svm_linear_ops = {
    .name = "svm_linear",
    .classification = 1,
    .regression = 0,
    .fit = svm_linear_fit,
    .predict = svm_score_rows,
    .explain = svm_explain_row,
    .save = svm_payload_save,
    .load = svm_payload_load,
    .free = svm_model_free,
};
