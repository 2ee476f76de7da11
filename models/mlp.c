/* A multilayer perceptron ("mlp") for late, lost and eta: 1 to 3 hidden ReLU layers on
 * standardized features, trained by mini-batch Adam with L2 on the weights and early
 * stopping on the validation loss; the weights that scored best on validation are kept.
 *
 * Classification has one output, the log-odds, trained on the (optionally class-weighted)
 * log loss. eta has two outputs, the 0.5 and 0.9 quantiles of log-hours (standardized by
 * the training mean and spread of log-hours), trained on the sum of their pinball losses;
 * quantiles commute with the monotone log, so exp() of them are the P50 and P90 hours.
 *
 * The network computes in single precision: every matrix product of the forward and
 * backward passes is one cblas_sgemm over the whole mini-batch, and the rest is O(rows x
 * units) element work. Categorical features arrive one-hot from engine/features.c, so
 * the first layer is their embedding. Fitting is deterministic for a seed: the seed drives
 * the initial weights and each epoch's shuffle (OpenBLAS keeps its summation order for a
 * given thread count).
 *
 * Payload: u8 quantile, u32 layers L, u32 sizes[0..L], d f64 means, d f64 stds, f64
 * y_mean, f64 y_std, u64 n_params, then n_params f64 (each exactly a float): per layer
 * l the weights W_l (size[l+1] rows of size[l]) then the biases b_l. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "models/format.h"
#include "base/log.h"
#include "base/progress.h"

#define MLP_MAX_UNITS 4096
#define MLP_MAX_FEATURES ((size_t)1 << 16)
#define MLP_EVAL_ROWS 4096
#define MLP_CHECKS_PER_EPOCH 4

#define MLP_MAX_MEMBERS 16

struct mlp {
    struct drisk_model base;
    int n_members;      /* networks of one architecture whose outputs are averaged */
    struct drisk_mlp_net net[MLP_MAX_MEMBERS];
    double *mean, *std; /* d each: the standardization */
    double y_mean, y_std; /* eta: the standardization of log-hours */
};

/* ---- the network ---- */

enum drisk_status drisk_mlp_net_init(struct drisk_mlp_net *net, size_t d, int n_hidden,
                                     const int *hidden, int quantile, struct drisk_error *err)
{
    memset(net, 0, sizeof *net);
    if (d == 0 || d > MLP_MAX_FEATURES || n_hidden < 1 || n_hidden > DRISK_MLP_MAX_HIDDEN)
        return drisk_error_set(err, DRISK_EINVAL, "mlp: %zu inputs and %d hidden layers are out "
                               "of range", d, n_hidden);
    net->n_layers = n_hidden + 1;
    net->quantile = quantile;
    net->size[0] = (int)d;
    for (int l = 0; l < n_hidden; l++) {
        if (hidden[l] < 1 || hidden[l] > MLP_MAX_UNITS)
            return drisk_error_set(err, DRISK_EINVAL, "mlp: hidden layer %d has %d units (1 to "
                                   "%d)", l + 1, hidden[l], MLP_MAX_UNITS);
        net->size[l + 1] = hidden[l];
    }
    net->size[net->n_layers] = quantile ? 2 : 1;
    size_t off = 0;
    for (int l = 0; l < net->n_layers; l++) {
        net->w_off[l] = off;
        off += (size_t)net->size[l + 1] * (size_t)net->size[l];
        net->b_off[l] = off;
        off += (size_t)net->size[l + 1];
    }
    net->n_params = off;
    if (!(net->theta = calloc(off, sizeof *net->theta)))
        return drisk_error_set(err, DRISK_ENOMEM, "mlp: out of memory for %zu parameters", off);
    return DRISK_OK;
}

void drisk_mlp_net_clear(struct drisk_mlp_net *net)
{
    free(net->theta);
    net->theta = NULL;
}

static int max_width(const struct drisk_mlp_net *net)
{
    int w = 0;
    for (int l = 1; l <= net->n_layers; l++)
        if (net->size[l] > w)
            w = net->size[l];
    return w;
}

enum drisk_status drisk_mlp_work_init(struct drisk_mlp_work *ws, const struct drisk_mlp_net *net,
                                      size_t rows, struct drisk_error *err)
{
    memset(ws, 0, sizeof *ws);
    size_t total = 0, wide = (size_t)max_width(net);
    for (int l = 1; l <= net->n_layers; l++)
        total += rows * (size_t)net->size[l];
    total += 2 * rows * wide;
    float *mem = malloc(total * sizeof *mem);
    if (!mem)
        return drisk_error_set(err, DRISK_ENOMEM, "mlp: out of memory for a %zu-row workspace",
                               rows);
    ws->rows = rows;
    ws->mem = mem;
    for (int l = 1; l <= net->n_layers; l++) {
        ws->act[l] = mem;
        mem += rows * (size_t)net->size[l];
    }
    ws->delta = mem;
    ws->delta2 = mem + rows * wide;
    return DRISK_OK;
}

void drisk_mlp_work_clear(struct drisk_mlp_work *ws)
{
    free(ws->mem);
    memset(ws, 0, sizeof *ws);
}

static const float *layer_input(const struct drisk_mlp_work *ws, int l)
{
    return l == 0 ? ws->input : ws->act[l];
}

/* act[l+1] = relu(act[l] W_l^T + b_l) for the hidden layers; the last layer stays linear.
 * x (n rows of size[0]) becomes act[0]. */
static void forward(const struct drisk_mlp_net *net, const float *x, size_t n,
                    struct drisk_mlp_work *ws)
{
    ws->input = x;
    for (int l = 0; l < net->n_layers; l++) {
        int in = net->size[l], outw = net->size[l + 1];
        const float *w = net->theta + net->w_off[l], *b = net->theta + net->b_off[l];
        float *z = ws->act[l + 1];
        for (size_t i = 0; i < n; i++)
            memcpy(z + i * (size_t)outw, b, (size_t)outw * sizeof *z);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, outw, in, 1.0f,
                    layer_input(ws, l), in, w, in, 1.0f, z, outw);
        if (l + 1 < net->n_layers)
            for (size_t i = 0; i < n * (size_t)outw; i++)
                z[i] = z[i] > 0.0f ? z[i] : 0.0f;
    }
}

static const double quantile_tau[2] = { 0.5, 0.9 };

double drisk_mlp_loss(const struct drisk_mlp_net *net, const float *x, const float *y,
                      const float *w, size_t n, double l2, float *grad, struct drisk_mlp_work *ws)
{
    int L = net->n_layers;
    forward(net, x, n, ws);
    const float *out = ws->act[L];
    double wsum = 0.0;
    for (size_t i = 0; i < n; i++)
        wsum += w ? w[i] : 1.0;
    double loss = 0.0;
    float *delta = ws->delta;
    for (size_t i = 0; i < n; i++) {
        double wi = (w ? w[i] : 1.0) / wsum;
        if (!net->quantile) {
            double z = out[i], yi = y[i];
            loss += wi * drisk_logit_loss(z, yi);
            delta[i] = (float)(wi * (drisk_sigmoid(z) - yi));
        } else {
            for (int q = 0; q < 2; q++) {
                double u = (double)y[i] - out[i * 2 + q];
                double below = u < 0.0 ? 1.0 : 0.0;
                loss += wi * u * (quantile_tau[q] - below);
                delta[i * 2 + q] = (float)(wi * (below - quantile_tau[q]));
            }
        }
    }
    for (int l = 0; l < L; l++) {
        const float *wl = net->theta + net->w_off[l];
        size_t nw = (size_t)net->size[l + 1] * (size_t)net->size[l];
        double s = 0.0;
        for (size_t j = 0; j < nw; j++)
            s += (double)wl[j] * wl[j];
        loss += 0.5 * l2 * s;
    }
    if (!grad)
        return loss;
    /* backward: delta holds dloss/dz of layer l+1's pre-activations, n x size[l+1] */
    for (int l = L - 1; l >= 0; l--) {
        int in = net->size[l], outw = net->size[l + 1];
        const float *wl = net->theta + net->w_off[l];
        float *gw = grad + net->w_off[l], *gb = grad + net->b_off[l];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, outw, in, (int)n, 1.0f, delta, outw,
                    layer_input(ws, l), in, 0.0f, gw, in);
        size_t nw = (size_t)outw * (size_t)in;
        for (size_t j = 0; j < nw; j++)
            gw[j] += (float)l2 * wl[j];
        for (int j = 0; j < outw; j++)
            gb[j] = 0.0f;
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < outw; j++)
                gb[j] += delta[i * (size_t)outw + j];
        if (l == 0)
            break;
        float *prev = ws->delta2;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, in, outw, 1.0f, delta, outw,
                    wl, in, 0.0f, prev, in);
        const float *a = ws->act[l];
        for (size_t i = 0; i < n * (size_t)in; i++)
            if (a[i] <= 0.0f)
                prev[i] = 0.0f;
        ws->delta2 = delta;
        ws->delta = delta = prev;
    }
    return loss;
}

/* ---- random numbers (splitmix64: deterministic for a seed on every platform) ---- */

static double rng_uniform(uint64_t *s) /* in (0, 1) */
{
    return ((double)(drisk_splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(uint64_t *s)
{
    double u = rng_uniform(s), v = rng_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* He initialisation for ReLU layers, LeCun for the linear output. */
static void init_weights(struct drisk_mlp_net *net, uint64_t seed, double out_bias)
{
    uint64_t s = seed;
    for (int l = 0; l < net->n_layers; l++) {
        int in = net->size[l], outw = net->size[l + 1];
        double sd = sqrt((l + 1 < net->n_layers ? 2.0 : 1.0) / in);
        float *w = net->theta + net->w_off[l], *b = net->theta + net->b_off[l];
        for (size_t j = 0; j < (size_t)outw * (size_t)in; j++)
            w[j] = (float)(sd * rng_normal(&s));
        for (int j = 0; j < outw; j++)
            b[j] = 0.0f;
    }
    float *b = net->theta + net->b_off[net->n_layers - 1];
    if (net->quantile) {
        b[0] = 0.0f;
        b[1] = 1.2816f; /* the standard normal's 0.9 quantile */
    } else {
        b[0] = (float)out_bias;
    }
}

/* ---- the learner ---- */

static void mlp_free(struct drisk_model *base)
{
    struct mlp *m = (struct mlp *)base;
    for (int k = 0; k < MLP_MAX_MEMBERS; k++)
        drisk_mlp_net_clear(&m->net[k]);
    free(m->mean);
    free(m->std);
    free(m);
}

static struct mlp *mlp_new(size_t d, struct drisk_error *err)
{
    struct mlp *m = calloc(1, sizeof *m);
    if (!m || !(m->mean = calloc(d, sizeof *m->mean)) || !(m->std = calloc(d, sizeof *m->std))) {
        if (m) {
            free(m->mean);
            free(m);
        }
        drisk_error_set(err, DRISK_ENOMEM, "mlp: out of memory");
        return NULL;
    }
    m->base.ops = &drisk_mlp_ops;
    m->y_std = 1.0;
    return m;
}

static void standardize(const struct mlp *m, const double *x, size_t n, float *dst)
{
    size_t d = (size_t)m->net[0].size[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            dst[i * d + j] = (float)((x[i * d + j] - m->mean[j]) / m->std[j]);
}

/* The training targets as the network sees them, and the row weights (NULL: all 1). */
static int prepare_targets(const struct mlp *m, const struct drisk_dataset *ds, int quantile,
                           double cw0, double cw1, float *y, float **w)
{
    *w = NULL;
    int weighted = ds->weight || cw0 != 1.0 || cw1 != 1.0;
    if (weighted && !(*w = malloc(ds->n_rows * sizeof **w)))
        return -1;
    for (size_t i = 0; i < ds->n_rows; i++) {
        y[i] = quantile ? (float)((log(ds->y[i]) - m->y_mean) / m->y_std) : (float)ds->y[i];
        if (weighted)
            (*w)[i] = (float)((ds->weight ? ds->weight[i] : 1.0) * (ds->y[i] != 0.0 ? cw1 : cw0));
    }
    return 0;
}

/* The loss over a whole set, in chunks, without gradients. */
static double set_loss(const struct drisk_mlp_net *net, const float *x, const float *y,
                       const float *w, size_t n, struct drisk_mlp_work *ws)
{
    size_t d = (size_t)net->size[0];
    double total = 0.0, wtotal = 0.0;
    for (size_t i = 0; i < n; i += ws->rows) {
        size_t k = n - i < ws->rows ? n - i : ws->rows;
        double wk = 0.0;
        for (size_t j = 0; j < k; j++)
            wk += w ? w[i + j] : 1.0;
        total += wk * drisk_mlp_loss(net, x + i * d, y + i, w ? w + i : NULL, k, 0.0, NULL, ws);
        wtotal += wk;
    }
    return total / wtotal;
}

static enum drisk_status mlp_fit(const struct drisk_dataset *train,
                                 const struct drisk_dataset *valid,
                                 const struct drisk_fit_options *opt, struct drisk_model **out,
                                 struct drisk_error *err)
{
    enum drisk_status st;
    size_t n = train->n_rows, d = train->n_features, nv = valid ? valid->n_rows : 0;
    int quantile = !drisk_target_is_classification(opt->target);
    struct mlp *m = NULL;
    struct drisk_mlp_work ws = { 0 }, wv = { 0 };
    float *xs = NULL, *ys = NULL, *ws_row = NULL, *vx = NULL, *vy = NULL, *vw = NULL;
    float *grad = NULL, *adam_m = NULL, *adam_v = NULL, *best = NULL, *xb = NULL, *yb = NULL,
          *wb = NULL;
    size_t *perm = NULL;
    if (n > (size_t)2147483647 || d > MLP_MAX_FEATURES) {
        st = drisk_error_set(err, DRISK_EINVAL, "mlp: %zu x %zu is beyond what one BLAS call takes",
                             n, d);
        goto out;
    }
    if (!(m = mlp_new(d, err))) {
        st = DRISK_ENOMEM;
        goto out;
    }
    m->n_members = opt->mlp_members;
    for (int k = 0; k < m->n_members; k++)
        if ((st = drisk_mlp_net_init(&m->net[k], d, opt->n_hidden, opt->hidden, quantile, err)))
            goto out;
    if ((st = drisk_column_moments(train->x, n, d, m->mean, m->std, err)))
        goto out;
    struct drisk_mlp_net *net = &m->net[0];

    /* targets: log-hours standardized for eta; class weights for classification */
    double cw0 = 1.0, cw1 = 1.0, out_bias = 0.0;
    if (quantile) {
        double s = 0.0, s2 = 0.0;
        for (size_t i = 0; i < n; i++)
            s += log(train->y[i]);
        m->y_mean = s / (double)n;
        for (size_t i = 0; i < n; i++)
            s2 += (log(train->y[i]) - m->y_mean) * (log(train->y[i]) - m->y_mean);
        m->y_std = s2 > 0.0 ? sqrt(s2 / (double)n) : 1.0;
    } else {
        double pos_share;
        drisk_class_weights(train, opt->class_weight_balanced, &cw0, &cw1, &pos_share);
        if (!opt->class_weight_balanced)
            out_bias = log(pos_share / (1.0 - pos_share));
    }
    size_t bs = (size_t)opt->batch_size < n ? (size_t)opt->batch_size : n;
    xs = malloc(n * d * sizeof *xs);
    ys = malloc(n * sizeof *ys);
    perm = malloc(n * sizeof *perm);
    xb = malloc(bs * d * sizeof *xb);
    yb = malloc(bs * sizeof *yb);
    wb = malloc(bs * sizeof *wb);
    grad = calloc(net->n_params, sizeof *grad);
    adam_m = calloc(net->n_params, sizeof *adam_m);
    adam_v = calloc(net->n_params, sizeof *adam_v);
    best = malloc(net->n_params * sizeof *best);
    if (!xs || !ys || !perm || !xb || !yb || !wb || !grad || !adam_m || !adam_v || !best ||
        (nv && (!(vx = malloc(nv * d * sizeof *vx)) || !(vy = malloc(nv * sizeof *vy)))) ||
        prepare_targets(m, train, quantile, cw0, cw1, ys, &ws_row) ||
        (nv && prepare_targets(m, valid, quantile, cw0, cw1, vy, &vw))) {
        st = drisk_error_set(err, DRISK_ENOMEM, "mlp: out of memory for the %zu x %zu "
                             "single-precision copy", n, d);
        goto out;
    }
    standardize(m, train->x, n, xs);
    if (nv)
        standardize(m, valid->x, nv, vx);
    if ((st = drisk_mlp_work_init(&ws, net, bs, err)) ||
        (nv && (st = drisk_mlp_work_init(&wv, net, MLP_EVAL_ROWS, err))))
        goto out;

    /* each member: its own seed for the initial weights and the shuffles */
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double t0 = drisk_monotonic_s(), train_loss = NAN;
    struct drisk_meter meter; /* epochs of all members */
    drisk_meter_start(&meter, "mlp fit", "epochs", (int64_t)m->n_members * opt->epochs);
    char best_epochs[DRISK_META_VALUE_MAX] = "", valid_losses[DRISK_META_VALUE_MAX] = "";
    int checks_run = 0;
    for (int member = 0; member < m->n_members; member++) {
        net = &m->net[member];
        uint64_t seed = opt->seed + (uint64_t)member * 0x9e3779b9ULL;
        init_weights(net, seed, out_bias);
        memcpy(best, net->theta, net->n_params * sizeof *best);
        memset(adam_m, 0, net->n_params * sizeof *adam_m);
        memset(adam_v, 0, net->n_params * sizeof *adam_v);
        for (size_t i = 0; i < n; i++)
            perm[i] = i;
        double lr = opt->learning_rate, best_loss = INFINITY, best_at = 0.0;
        uint64_t rng = seed ^ 0x5deece66dULL;
        long step = 0;
        int bad = 0, stop = 0;
        size_t per_epoch = n / bs, check_every = per_epoch / MLP_CHECKS_PER_EPOCH;
        if (check_every < 1)
            check_every = 1;
        for (int epoch = 1; epoch <= opt->epochs && !stop; epoch++) {
            for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
                size_t j = (size_t)(drisk_splitmix64(&rng) % (uint64_t)(i + 1));
                size_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
            double sum = 0.0;
            size_t batches = 0;
            for (size_t s = 0; s + bs <= n && !stop; s += bs) { /* the remainder waits */
                for (size_t r = 0; r < bs; r++) {
                    size_t src = perm[s + r];
                    memcpy(xb + r * d, xs + src * d, d * sizeof *xb);
                    yb[r] = ys[src];
                    wb[r] = ws_row ? ws_row[src] : 1.0f;
                }
                sum += drisk_mlp_loss(net, xb, yb, ws_row ? wb : NULL, bs, opt->l2, grad, &ws);
                batches++;
                step++;
                double c1 = 1.0 - pow(b1, (double)step), c2 = 1.0 - pow(b2, (double)step);
                float a = (float)(lr * sqrt(c2) / c1);
                float *th = net->theta;
                for (size_t j = 0; j < net->n_params; j++) {
                    float g = grad[j];
                    adam_m[j] = (float)b1 * adam_m[j] + (float)(1.0 - b1) * g;
                    adam_v[j] = (float)b2 * adam_v[j] + (float)(1.0 - b2) * g * g;
                    th[j] -= a * adam_m[j] / (sqrtf(adam_v[j]) + (float)eps);
                }
                train_loss = sum / (double)batches;
                if (!isfinite(train_loss)) {
                    st = drisk_error_set(err, DRISK_EINVAL, "mlp: the fit diverged in epoch %d "
                                         "(loss %g): lower the learning rate", epoch, train_loss);
                    goto out;
                }
                /* a few validation checks per epoch: on a large history the best point is
                 * often within the first epochs */
                if (batches % check_every != 0 && batches != per_epoch)
                    continue;
                double at = (double)(epoch - 1) + (double)batches / (double)per_epoch;
                double vloss = nv ? set_loss(net, vx, vy, vw, nv, &wv) : train_loss;
                checks_run++;
                if (opt->progress)
                    opt->progress(opt->progress_ctx, checks_run, vloss, train_loss);
                /* at most members x epochs: early stopping usually ends sooner */
                if (drisk_meter_due(&meter))
                    drisk_meter_show(&meter, (int64_t)member * opt->epochs + epoch - 1,
                                     "member %d of %d, epoch %.2f: training loss %.5f, "
                                     "validation loss %.5f", member + 1, m->n_members, at,
                                     train_loss, vloss);
                DRISK_LOG(DRISK_LOG_DEBUG, "mlp member %d of %d, epoch %.2f: training loss "
                          "%.5f, validation loss %.5f (%.1f s)", member + 1, m->n_members, at,
                          train_loss, vloss, drisk_monotonic_s() - t0);
                if (!nv || best_loss == INFINITY || vloss < best_loss - 1e-5 * fabs(best_loss)) {
                    best_loss = vloss;
                    best_at = at;
                    bad = 0;
                    memcpy(best, net->theta, net->n_params * sizeof *best);
                } else if (++bad >= opt->patience) {
                    stop = 1;
                } else {
                    lr *= 0.25; /* a plateau: smaller steps before giving up */
                }
            }
        }
        memcpy(net->theta, best, net->n_params * sizeof *best);
        size_t used = strlen(best_epochs);
        snprintf(best_epochs + used, sizeof best_epochs - used, "%s%.2f", member ? "," : "",
                 best_at);
        used = strlen(valid_losses);
        snprintf(valid_losses + used, sizeof valid_losses - used, "%s%.5f", member ? "," : "",
                 best_loss);
    }
    char arch[DRISK_META_VALUE_MAX] = "", num[32];
    for (int l = 1; l < m->net[0].n_layers; l++) {
        size_t used = strlen(arch);
        snprintf(arch + used, sizeof arch - used, "%s%d", l > 1 ? "," : "", m->net[0].size[l]);
    }
    drisk_meter_end(&meter, (int64_t)m->n_members * opt->epochs);
    snprintf(num, sizeof num, "%d", m->n_members);
    if ((st = drisk_model_set_param(&m->base, "hidden", arch, err)) ||
        (st = drisk_model_set_param(&m->base, "members", num, err)) ||
        (st = drisk_model_set_param(&m->base, "best_epoch", best_epochs, err)) ||
        (st = drisk_model_set_param(&m->base, "valid_loss", valid_losses, err)) ||
        (st = drisk_model_set_param_g(&m->base, "l2", opt->l2, err)) ||
        (st = drisk_model_set_param_g(&m->base, "learning_rate", opt->learning_rate, err)) ||
        (st = drisk_model_set_param_g(&m->base, "batch_size", (double)bs, err)) ||
        (st = drisk_model_set_param_g(&m->base, "seed", (double)opt->seed, err)) ||
        (st = drisk_model_set_param_g(&m->base, "train_loss", train_loss, err)) ||
        (st = drisk_model_set_param(&m->base, "class_weight",
                                    opt->class_weight_balanced && !quantile ? "balanced" : "none",
                                    err)))
        goto out;
    snprintf(num, sizeof num, "%d", checks_run);
    if ((st = drisk_model_set_param(&m->base, "validation_checks", num, err)))
        goto out;
    *out = &m->base;
    m = NULL;
out:
    if (m)
        mlp_free(&m->base);
    drisk_mlp_work_clear(&ws);
    drisk_mlp_work_clear(&wv);
    free(xs);
    free(ys);
    free(ws_row);
    free(vx);
    free(vy);
    free(vw);
    free(grad);
    free(adam_m);
    free(adam_v);
    free(best);
    free(xb);
    free(yb);
    free(wb);
    free(perm);
    return st;
}

#define PREDICT_CHUNK 256

static enum drisk_status mlp_predict(const struct drisk_model *base, const double *x, size_t n,
                                     struct drisk_prediction *out, struct drisk_error *err)
{
    const struct mlp *m = (const struct mlp *)base;
    const struct drisk_mlp_net *net0 = &m->net[0];
    size_t d = (size_t)net0->size[0], chunk = n < PREDICT_CHUNK ? n : PREDICT_CHUNK;
    size_t k_out = (size_t)net0->size[net0->n_layers];
    struct drisk_mlp_work ws;
    enum drisk_status st = drisk_mlp_work_init(&ws, net0, chunk, err);
    if (st)
        return st;
    float *xs = malloc(chunk * d * sizeof *xs);
    double *acc = malloc(chunk * k_out * sizeof *acc);
    if (!xs || !acc) {
        free(xs);
        free(acc);
        drisk_mlp_work_clear(&ws);
        return drisk_error_set(err, DRISK_ENOMEM, "mlp: out of memory scoring");
    }
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        standardize(m, x + i * d, k, xs);
        memset(acc, 0, k * k_out * sizeof *acc);
        for (int member = 0; member < m->n_members; member++) {
            forward(&m->net[member], xs, k, &ws);
            const float *o = ws.act[net0->n_layers];
            for (size_t j = 0; j < k * k_out; j++)
                acc[j] += o[j];
        }
        for (size_t j = 0; j < k * k_out; j++)
            acc[j] /= m->n_members;
        for (size_t r = 0; r < k; r++) {
            struct drisk_prediction *p = &out[i + r];
            if (!net0->quantile) {
                p->score = acc[r];
            } else {
                double q50 = m->y_mean + m->y_std * acc[2 * r];
                double q90 = m->y_mean + m->y_std * acc[2 * r + 1];
                p->score = q50;
                p->p50_h = exp(q50);
                p->p90_h = exp(q90 > q50 ? q90 : q50); /* quantiles never cross */
            }
        }
    }
    free(xs);
    free(acc);
    drisk_mlp_work_clear(&ws);
    return DRISK_OK;
}

static enum drisk_status mlp_explain(const struct drisk_model *base, const double *x,
                                     double *contrib, double *bias, struct drisk_error *err)
{
    const struct mlp *m = (const struct mlp *)base;
    return drisk_explain_by_occlusion(base, m->mean, x, contrib, bias, err);
}

static enum drisk_status mlp_save(const struct drisk_model *base, struct drisk_buf *buf,
                                  struct drisk_error *err)
{
    (void)err;
    const struct mlp *m = (const struct mlp *)base;
    const struct drisk_mlp_net *net0 = &m->net[0];
    size_t d = (size_t)net0->size[0];
    drisk_buf_put_u8(buf, (uint8_t)net0->quantile);
    drisk_buf_put_u32(buf, (uint32_t)net0->n_layers);
    for (int l = 0; l <= net0->n_layers; l++)
        drisk_buf_put_u32(buf, (uint32_t)net0->size[l]);
    drisk_buf_put_f64s(buf, m->mean, d);
    drisk_buf_put_f64s(buf, m->std, d);
    drisk_buf_put_f64(buf, m->y_mean);
    drisk_buf_put_f64(buf, m->y_std);
    drisk_buf_put_u32(buf, (uint32_t)m->n_members);
    for (int k = 0; k < m->n_members; k++) {
        drisk_buf_put_u64(buf, m->net[k].n_params);
        for (size_t j = 0; j < m->net[k].n_params; j++)
            drisk_buf_put_f64(buf, (double)m->net[k].theta[j]);
    }
    return DRISK_OK;
}

static enum drisk_status mlp_load(struct drisk_reader *r, const struct drisk_model_meta *meta,
                                  struct drisk_model **out, struct drisk_error *err)
{
    enum drisk_status st;
    size_t d = meta->n_features;
    struct mlp *m = NULL;
    int quantile = drisk_reader_u8(r);
    uint32_t layers = drisk_reader_u32(r);
    if ((st = drisk_reader_check(r, "mlp payload", err)))
        goto out;
    if (quantile != !drisk_target_is_classification(meta->target) || layers < 2 ||
        layers > DRISK_MLP_MAX_HIDDEN + 1) {
        st = drisk_error_set(err, DRISK_EINVAL, "mlp payload: %u layers with %s outputs do not fit "
                             "target %s", layers, quantile ? "quantile" : "logit",
                             drisk_target_name(meta->target));
        goto out;
    }
    int hidden[DRISK_MLP_MAX_HIDDEN];
    uint32_t first = drisk_reader_u32(r);
    for (uint32_t l = 0; l + 1 < layers; l++)
        hidden[l] = (int)(drisk_reader_u32(r) & 0x7fffffff);
    uint32_t outputs = drisk_reader_u32(r);
    if ((st = drisk_reader_check(r, "mlp payload", err)))
        goto out;
    if (first != d || outputs != (quantile ? 2u : 1u)) {
        st = drisk_error_set(err, DRISK_EINVAL, "mlp payload: %u inputs and %u outputs, the model "
                             "says %zu features", first, outputs, d);
        goto out;
    }
    if (!(m = mlp_new(d, err))) {
        st = DRISK_ENOMEM;
        goto out;
    }
    drisk_reader_f64s(r, m->mean, d);
    drisk_reader_f64s(r, m->std, d);
    m->y_mean = drisk_reader_f64(r);
    m->y_std = drisk_reader_f64(r);
    uint32_t members = drisk_reader_u32(r);
    if ((st = drisk_reader_check(r, "mlp payload", err)))
        goto out;
    if (members < 1 || members > MLP_MAX_MEMBERS) {
        st = drisk_error_set(err, DRISK_EINVAL, "mlp payload: %u member networks (1 to %d)",
                             members, MLP_MAX_MEMBERS);
        goto out;
    }
    m->n_members = (int)members;
    for (int k = 0; k < m->n_members; k++) {
        struct drisk_mlp_net *net = &m->net[k];
        if ((st = drisk_mlp_net_init(net, d, (int)layers - 1, hidden, quantile, err)))
            goto out;
        uint64_t np = drisk_reader_u64(r);
        if ((st = drisk_reader_check(r, "mlp payload", err)))
            goto out;
        if (np != net->n_params || np > (r->len - r->pos) / 8) {
            st = drisk_error_set(err, DRISK_EINVAL, "mlp payload: %llu parameters, the layers "
                                 "need %zu", (unsigned long long)np, net->n_params);
            goto out;
        }
        for (size_t j = 0; j < np; j++) {
            double v = drisk_reader_f64(r);
            if (!isfinite(v) || (double)(float)v != v) {
                st = drisk_error_set(err, DRISK_EINVAL, "mlp payload: parameter %zu is not a "
                                     "finite single-precision number", j);
                goto out;
            }
            net->theta[j] = (float)v;
        }
        if ((st = drisk_reader_check(r, "mlp payload", err)))
            goto out;
    }
    for (size_t j = 0; j < d; j++) {
        if (!isfinite(m->mean[j]) || !(m->std[j] > 0.0) || !isfinite(m->std[j])) {
            st = drisk_error_set(err, DRISK_EINVAL, "mlp payload: feature %zu has mean %g, std %g",
                                 j, m->mean[j], m->std[j]);
            goto out;
        }
    }
    if (!isfinite(m->y_mean) || !(m->y_std > 0.0) || !isfinite(m->y_std)) {
        st = drisk_error_set(err, DRISK_EINVAL, "mlp payload: bad target scale");
        goto out;
    }
    *out = &m->base;
    m = NULL;
out:
    if (m)
        mlp_free(&m->base);
    return st;
}

/* Early stopping regularizes too, but weight decay of this order still gained 0.001
 * validation AUC on the simulated late and lost targets. */
static const double mlp_l2_grid[] = { 1e-4, 3e-4, 1e-3 };

static void mlp_training_options(struct drisk_fit_options *opt)
{
    opt->class_weight_balanced = 0; /* rare classes: calibration restores the rate */
}

const struct drisk_model_ops drisk_mlp_ops = {
    .name = "mlp",
    .classification = 1,
    .regression = 1,
    .fit = mlp_fit,
    .predict = mlp_predict,
    .explain = mlp_explain,
    .save = mlp_save,
    .load = mlp_load,
    .free = mlp_free,
    .l2_grid = mlp_l2_grid,
    .n_l2_grid = sizeof mlp_l2_grid / sizeof mlp_l2_grid[0],
    .ensemble_after_grid = 1,
    .reports_l2 = 1,
    .training_options = mlp_training_options,
};
