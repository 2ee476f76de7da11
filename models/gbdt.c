/* Gradient-boosted decision trees ("gbdt") for late, lost and eta: second-order boosting
 * of depth-limited regression trees on histograms, the method of XGBoost's "hist" and
 * LightGBM, so analysts can set drisk's own trees beside them. Classifiers minimize the
 * log loss (the score is log-odds); eta minimizes the pseudo-Huber loss of log(hours)
 * (quadratic near the truth, linear beyond gbdt_huber_delta, so the score follows the
 * typical delivery rather than being dragged by stuck parcels; delta 0 is the squared
 * error, whose score is the mean log-hours, as the lognormal learner's), and its P50 and P90
 * are the score shifted by the 0.5 and 0.9 quantiles of the validation residuals
 * log(y) - score (split-conformal: the validation window is the most recent labelled
 * one, so the intervals carry its spread forward).
 *
 * Fitting: each feature is cut at up to 255 of its training quantiles (from every row, or
 * a regular sample of 2,000,000), so a row is d one-byte bin codes, and the features'
 * histograms lie end to end with as many slots as each has bins (a one-hot column takes
 * two). Every round takes a sample of the rows and of the features (each kept with
 * probability 0.8, from the seed), computes the gradient and hessian of each sampled row
 * at its current score (log loss: g = p - y, h = p (1 - p); squared error: g = score -
 * log y, h = 1; pseudo-Huber: g = r / sqrt(q), h = q^-3/2 with r = score - log y and
 * q = 1 + (r / delta)^2; times the row's weight), and grows a tree level by level: the sampled
 * rows are an index list kept partitioned by node (stable, so a node's rows stay in
 * memory order), a node's histogram sums g and h per feature and bin over its rows, only
 * the smaller child's is built (the larger's is its parent's minus it), and a node splits
 * where G_L^2/(H_L+lambda) + G_R^2/(H_R+lambda) - G^2/(H+lambda) is largest (lambda 1,
 * each side with hessian >= 1). A leaf holds -G/(H+lambda) times the shrinkage (default
 * 0.05). Training and validation scores are kept and only the new tree's output is added
 * each round (the validation rows are binned once, and x <= cut is code <= bin, so the
 * binned walk is the raw one). Rounds stop 30 after the validation loss last improved,
 * and the model keeps the rounds up to its best; without a validation set a classifier
 * keeps all rounds, and eta is refused (its intervals need held-out residuals).
 *
 * Threads: one per core (up to 8) in a pool that lives for the fit. Work is cut into
 * pieces that depend only on the data (fixed row chunks; a node's rows in parts of
 * 16,384), every piece writes its own output and partial sums are added in piece order,
 * so a fit is the same for a seed whatever the number of cores.
 *
 * Scoring walks each tree with the raw feature values (x <= threshold goes left): no
 * bins, no allocation, reentrant. Explanations are path attributions (gbdt_explain).
 *
 * Payload, version 2: u32 0x32544247 ("GBT2"), u32 features (the model's d again, so
 * that a damaged header cannot make a walk read past a row), f64 base score, f64 q50,
 * f64 q90 (eta: the residual quantiles in log-hours, q50 <= q90; classifiers: 0 and 0),
 * u32 trees, then per tree u32 nodes and per node u32 feature (0xffffffff: a leaf), f64
 * threshold, u32 left, u32 right (indices into the tree's nodes, after their parent), f64
 * value (a leaf's output; a split's own Newton step, the reference of the path
 * attributions). Version 1 (classifiers only) is the same without the tag and the two
 * quantiles, and still loads. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/format.h"
#include "base/log.h"
#include "base/progress.h"

#define GBDT_MAX_BINS 256
#define GBDT_SAMPLE 2000000
#define GBDT_LAMBDA 1.0
#define GBDT_MIN_HESSIAN 1.0
#define GBDT_ROW_SAMPLE 0.8
#define GBDT_COL_SAMPLE 0.8
#define GBDT_STOP_ROUNDS 30
#define GBDT_LEAF ((uint32_t)0xffffffff)
#define GBDT_MAX_NODES ((1u << 21) - 1)
#define GBDT_MAX_THREADS 8
#define GBDT_PAYLOAD_V2 0x32544247u
#define GBDT_MAX_Q 50.0 /* |q50|, |q90| in log-hours: e^50 hours is beyond any parcel */
/* Pieces of work: a node's rows are cut into parts of PART_ROWS (at most MAX_PARTS), per
 * row passes into CHUNK rows. A part of a histogram beyond the first sums into one of
 * SCRATCH_HISTS scratch histograms; a level whose parts need more runs in waves. */
#define GBDT_PART_ROWS 16384
#define GBDT_MAX_PARTS 16
#define GBDT_SCRATCH_HISTS 32
#define GBDT_CHUNK 16384

struct gnode {
    uint32_t feature; /* GBDT_LEAF for a leaf */
    uint32_t left, right;
    double threshold;
    double value;
    int bin; /* while fitting: the split's bin (left: codes <= bin); not saved */
};

struct gtree {
    uint32_t n;
    struct gnode *node;
};

struct gbdt {
    struct drisk_model base;
    size_t d;
    double base_score;
    double q50, q90; /* eta: validation residual quantiles, log-hours; 0 for classifiers */
    uint32_t n_trees;
    struct gtree *tree;
};

static void gbdt_free(struct drisk_model *base)
{
    struct gbdt *m = (struct gbdt *)base;
    for (uint32_t t = 0; t < m->n_trees; t++)
        free(m->tree[t].node);
    free(m->tree);
    free(m);
}

static struct gbdt *gbdt_new(size_t d, uint32_t max_trees, struct drisk_error *err)
{
    struct gbdt *m = calloc(1, sizeof *m);
    if (!m || !(m->tree = calloc(max_trees ? max_trees : 1, sizeof *m->tree))) {
        free(m);
        drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory");
        return NULL;
    }
    m->base.ops = &drisk_gbdt_ops;
    m->d = d;
    return m;
}

static double tree_score(const struct gtree *t, const double *x)
{
    const struct gnode *n = t->node;
    while (n->feature != GBDT_LEAF)
        n = t->node + (x[n->feature] <= n->threshold ? n->left : n->right);
    return n->value;
}

static enum drisk_status gbdt_predict(const struct drisk_model *base, const double *x, size_t n,
                                      struct drisk_prediction *out, struct drisk_error *err)
{
    (void)err;
    const struct gbdt *m = (const struct gbdt *)base;
    int eta = m->base.meta.target == DRISK_TARGET_ETA;
    for (size_t i = 0; i < n; i++) {
        const double *row = x + i * m->d;
        double s = m->base_score;
        for (uint32_t t = 0; t < m->n_trees; t++)
            s += tree_score(&m->tree[t], row);
        out[i].score = s;
        if (eta) {
            out[i].p50_h = exp(s + m->q50);
            out[i].p90_h = exp(s + m->q90);
        }
    }
    return DRISK_OK;
}

/* Path attributions (Saabas): walking each tree, a split's feature gets the change from
 * the split node's value to the chosen child's; the walks telescope to the leaves, so
 * *bias (the base score plus every root's value: what the trees say before looking at the
 * row) plus the contributions is the score exactly. One walk per tree, where occlusion
 * would score d + 2 rows. */
static enum drisk_status gbdt_explain(const struct drisk_model *base, const double *x,
                                      double *contrib, double *bias, struct drisk_error *err)
{
    (void)err;
    const struct gbdt *m = (const struct gbdt *)base;
    memset(contrib, 0, m->d * sizeof *contrib);
    double b = m->base_score;
    for (uint32_t t = 0; t < m->n_trees; t++) {
        const struct gtree *tr = &m->tree[t];
        const struct gnode *n = tr->node;
        b += n->value;
        while (n->feature != GBDT_LEAF) {
            const struct gnode *next = tr->node + (x[n->feature] <= n->threshold ? n->left : n->right);
            contrib[n->feature] += next->value - n->value;
            n = next;
        }
    }
    *bias = b;
    return DRISK_OK;
}

/* ---- a pool of threads for the fit ---- */

/* Runs fn(ctx, item, worker) for items 0..n-1 on every thread (the caller's is worker 0):
 * threads take the next item as they finish one, so each item must write only its own
 * output. */
typedef void pool_fn(void *ctx, size_t item, int worker);

struct pool {
    int threads; /* including the caller */
    pthread_t tid[GBDT_MAX_THREADS];
    int worker_id[GBDT_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long gen; /* bumped for every job */
    int busy;          /* workers not yet done with the current job */
    int quit;
    pool_fn *fn;
    void *ctx;
    size_t n_items;
    atomic_size_t next;
};

struct pool_start {
    struct pool *p;
    int worker;
};

static void pool_work(struct pool *p, int worker)
{
    size_t i;
    while ((i = atomic_fetch_add(&p->next, 1)) < p->n_items)
        p->fn(p->ctx, i, worker);
}

static void *pool_main(void *arg)
{
    struct pool *p = ((struct pool_start *)arg)->p;
    int worker = ((struct pool_start *)arg)->worker;
    free(arg);
    unsigned long seen = 0; /* the pool's generation while it starts its workers */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        pool_work(p, worker);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Starts up to threads - 1 workers; with fewer to be had the pool is smaller (results do
 * not depend on it). */
static void pool_init(struct pool *p, int threads)
{
    memset(p, 0, sizeof *p);
    p->threads = 1;
    atomic_init(&p->next, 0);
    if (threads <= 1 || pthread_mutex_init(&p->mu, NULL))
        return;
    if (pthread_cond_init(&p->wake, NULL)) {
        pthread_mutex_destroy(&p->mu);
        return;
    }
    if (pthread_cond_init(&p->done, NULL)) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        return;
    }
    for (int t = 1; t < threads; t++) {
        struct pool_start *s = malloc(sizeof *s);
        if (!s)
            break;
        *s = (struct pool_start){ p, t };
        if (pthread_create(&p->tid[t], NULL, pool_main, s)) {
            free(s);
            break;
        }
        p->threads = t + 1;
    }
    if (p->threads == 1) {
        pthread_cond_destroy(&p->done);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
    }
}

static void pool_run(struct pool *p, pool_fn *fn, void *ctx, size_t n_items)
{
    if (p->threads == 1 || n_items <= 1) {
        for (size_t i = 0; i < n_items; i++)
            fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n_items;
    atomic_store(&p->next, 0);
    p->busy = p->threads - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pool_work(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void pool_destroy(struct pool *p)
{
    if (p->threads == 1)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->threads; t++)
        pthread_join(p->tid[t], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
}

/* ---- fitting ---- */

struct hist {
    double g, h;
};

struct gpair {
    float g, h;
};

/* A node being grown: rows idx[lo..hi) of the round's sample. */
struct grow {
    uint32_t node; /* in the tree */
    size_t lo, hi;
    double g, h;
    struct hist *hist; /* while it may split */
    /* its best split: gain <= 0 when none helps */
    double gain, gl, hl;
    uint32_t feat;
    int bin;
    size_t first_part, n_parts; /* of the current job */
    uint32_t child;             /* its left child in the next level; the right follows */
};

/* A piece of a node's rows: idx[lo..hi) of job node q. */
struct part {
    size_t q, lo, hi;
    struct hist *dest; /* building histograms */
    size_t n_left;     /* partitioning */
};

struct leaf {
    size_t lo, hi;
    double value;
};

struct fitter {
    struct pool pool;
    int regression;
    double huber; /* eta: the pseudo-Huber delta in log-hours; 0 for the squared error */
    size_t n, d, nv;
    const double *x, *vx;   /* raw rows: for the cuts and the bins */
    const double *y, *vy;   /* targets: labels, or log-hours */
    const double *w, *vw;   /* row weights (train: with class weights); vw may be NULL */
    uint8_t *codes, *vcodes; /* n x d, nv x d */
    uint8_t *ccodes;         /* the training codes by column (d x n): for partitioning */
    double *cuts;            /* d x 255 */
    int *n_cuts;
    uint32_t *off; /* feature j's histogram slots start at off[j] */
    size_t n_slots;
    uint64_t *sort_buf; /* per worker: (cut_group + 1) x sample_rows keys */
    size_t sample_step, sample_rows; /* the cuts' sample: every step-th row */
    size_t cut_group;                /* features whose cuts one job item finds */
    struct gpair *gp;   /* per row, for the sampled rows */
    uint32_t *idx, *tmp, *rest;
    size_t n_rows, n_rest;
    uint32_t *ufeat, *uoff; /* the round's features and their first slots */
    size_t n_use;
    double *score, *vscore;
    double *partial; /* 2 per chunk: per-chunk sums, added in chunk order */
    /* the tree being grown */
    struct gtree *tree;
    double eta;
    struct grow *levels;     /* two levels of 2^depth nodes, alternating */
    struct grow *next_level; /* the children of the level being split */
    struct grow **job_nodes;
    struct part *parts;
    size_t n_parts;
    struct hist *hist_pool; /* two levels of 2^(depth-1) histograms */
    struct hist *scratch;   /* GBDT_SCRATCH_HISTS */
    struct leaf *leaves;
    size_t n_leaves;
};

static size_t chunks_of(size_t n)
{
    return (n + GBDT_CHUNK - 1) / GBDT_CHUNK;
}

static size_t parts_of(size_t rows)
{
    size_t p = (rows + GBDT_PART_ROWS - 1) / GBDT_PART_ROWS;
    return p < 1 ? 1 : p > GBDT_MAX_PARTS ? GBDT_MAX_PARTS : p;
}

/* An order-preserving map of doubles to unsigned integers (-0 taken as +0). */
static uint64_t sort_key(double v)
{
    uint64_t u;
    v += 0.0;
    memcpy(&u, &v, sizeof u);
    return u >> 63 ? ~u : u | 0x8000000000000000ULL;
}

static double key_value(uint64_t k)
{
    uint64_t u = k >> 63 ? k & 0x7fffffffffffffffULL : ~k;
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* LSD radix sort of n keys, a byte at a time, skipping the bytes all keys share (most of
 * them for one-hot and integer columns); tmp holds n more. */
static void radix_sort(uint64_t *a, uint64_t *tmp, size_t n)
{
    static const size_t zero[256];
    size_t count[8][256];
    for (int b = 0; b < 8; b++)
        memcpy(count[b], zero, sizeof zero);
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 8; b++)
            count[b][(a[i] >> (8 * b)) & 255]++;
    uint64_t *src = a, *dst = tmp;
    for (int b = 0; b < 8; b++) {
        if (count[b][(a[0] >> (8 * b)) & 255] == n)
            continue;
        size_t pos = 0;
        for (int v = 0; v < 256; v++) {
            size_t c = count[b][v];
            count[b][v] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[b][(src[i] >> (8 * b)) & 255]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

/* The cut points of feature j from its sample's keys (sorted here, tmp the same size):
 * cuts[j * 255 + b] for b < n_cuts[j], ascending; a value v falls in bin b, the first
 * with v <= cut b (n_cuts[j] when above every cut). */
static void feature_cuts(struct fitter *f, size_t j, uint64_t *key, uint64_t *tmp)
{
    size_t ns = f->sample_rows;
    /* most columns (one-hot, counts, flags) hold a few distinct values: gather them in a
     * small hash table (key 0 is no finite double: empty) and sort only those */
    uint64_t table[2 * GBDT_MAX_BINS] = { 0 };
    size_t distinct = 0;
    for (size_t k = 0; k < ns && distinct <= GBDT_MAX_BINS; k++) {
        size_t h = (size_t)((key[k] * 0x9e3779b97f4a7c15ULL) >> 55);
        while (table[h] && table[h] != key[k])
            h = (h + 1) & (2 * GBDT_MAX_BINS - 1);
        if (!table[h]) {
            table[h] = key[k];
            distinct++;
        }
    }
    if (distinct <= GBDT_MAX_BINS) {
        ns = 0;
        for (size_t h = 0; h < 2 * GBDT_MAX_BINS; h++)
            if (table[h])
                key[ns++] = table[h];
    }
    radix_sort(key, tmp, ns);
    double *c = f->cuts + j * (GBDT_MAX_BINS - 1);
    int nc = 0;
    if (distinct <= GBDT_MAX_BINS) { /* every value but the largest is a cut */
        for (size_t k = 0; k + 1 < ns; k++)
            c[nc++] = key_value(key[k]);
    } else {
        double top = key_value(key[ns - 1]);
        for (int b = 1; b < GBDT_MAX_BINS; b++) {
            double v = key_value(key[(size_t)((double)b * (double)(ns - 1) / GBDT_MAX_BINS)]);
            if (v < top && (nc == 0 || v > c[nc - 1]))
                c[nc++] = v;
        }
    }
    f->n_cuts[j] = nc;
}

/* The cuts of a group of cut_group adjacent features: their sample is read in one pass
 * (a strided pass per feature would fetch every cache line of the matrix once for each
 * of the 8 doubles on it). */
static void job_cuts(void *ctx, size_t item, int worker)
{
    struct fitter *f = ctx;
    size_t d = f->d, step = f->sample_step, ns = f->sample_rows, grp = f->cut_group;
    size_t j0 = item * grp, nj = d - j0 < grp ? d - j0 : grp;
    uint64_t *key = f->sort_buf + (size_t)worker * (grp + 1) * ns, *tmp = key + grp * ns;
    for (size_t i = 0, k = 0; k < ns; i += step, k++) {
        const double *row = f->x + i * d + j0;
        for (size_t jj = 0; jj < nj; jj++)
            key[jj * ns + k] = sort_key(row[jj]);
    }
    for (size_t jj = 0; jj < nj; jj++)
        feature_cuts(f, j0 + jj, key + jj * ns, tmp);
}

/* The first cut >= v (nc when none): a binary search without branches on the data, whose
 * outcome a predictor cannot guess (a bin per value of n x d). */
static uint8_t bin_of(const double *c, int nc, double v)
{
    if (nc == 0)
        return 0;
    const double *base = c;
    size_t len = (size_t)nc;
    while (len > 1) {
        size_t half = len / 2;
        base += (size_t)(base[half - 1] < v) * half; /* a multiply, not a jump */
        len -= half;
    }
    return (uint8_t)((base - c) + (*base < v));
}

/* Bin codes of a chunk of training rows (items below the training chunks) or validation
 * rows (the rest). */
static void job_bin(void *ctx, size_t item, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    size_t d = f->d, tc = chunks_of(f->n), n = f->n;
    const double *x = f->x;
    uint8_t *codes = f->codes;
    if (item >= tc) {
        item -= tc;
        n = f->nv;
        x = f->vx;
        codes = f->vcodes;
    }
    size_t end = (item + 1) * GBDT_CHUNK < n ? (item + 1) * GBDT_CHUNK : n;
    for (size_t i = item * GBDT_CHUNK; i < end; i++)
        for (size_t j = 0; j < d; j++)
            codes[i * d + j] = bin_of(f->cuts + j * (GBDT_MAX_BINS - 1), f->n_cuts[j], x[i * d + j]);
    if (codes == f->codes)
        for (size_t j = 0; j < d; j++)
            for (size_t i = item * GBDT_CHUNK; i < end; i++)
                f->ccodes[j * n + i] = codes[i * d + j];
}

/* Gradient and hessian of a chunk of the sampled rows, and their sums. */
static void job_gradient(void *ctx, size_t item, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    size_t end = (item + 1) * GBDT_CHUNK < f->n_rows ? (item + 1) * GBDT_CHUNK : f->n_rows;
    double gs = 0.0, hs = 0.0;
    for (size_t k = item * GBDT_CHUNK; k < end; k++) {
        uint32_t i = f->idx[k];
        double g, h;
        if (f->regression && f->huber > 0) {
            /* pseudo-Huber: d^2 (sqrt(1 + (r/d)^2) - 1), its gradient and curvature */
            double r = f->score[i] - f->y[i], q = 1.0 + (r / f->huber) * (r / f->huber);
            g = f->w[i] * r / sqrt(q);
            h = f->w[i] / (q * sqrt(q));
        } else if (f->regression) {
            g = f->w[i] * (f->score[i] - f->y[i]);
            h = f->w[i];
        } else {
            double p = drisk_sigmoid(f->score[i]);
            g = f->w[i] * (p - f->y[i]);
            h = f->w[i] * fmax(p * (1.0 - p), 1e-16);
        }
        f->gp[i] = (struct gpair){ (float)g, (float)h };
        gs += f->gp[i].g; /* the sums of what the histograms will sum */
        hs += f->gp[i].h;
    }
    f->partial[2 * item] = gs;
    f->partial[2 * item + 1] = hs;
}

/* Sums g and h of rows[0..n) into the round's features' slots of hist (zeroed first; the
 * other features' slots stay stale: nothing reads them). */
static void accumulate(const struct fitter *f, const uint32_t *rows, size_t n, struct hist *hist)
{
    size_t d = f->d, nu = f->n_use;
    const uint32_t *uf = f->ufeat, *uo = f->uoff;
    const uint8_t *codes = f->codes;
    const struct gpair *gp = f->gp;
    for (size_t u = 0; u < nu; u++)
        memset(hist + uo[u], 0, (size_t)(f->n_cuts[uf[u]] + 1) * sizeof *hist);
    for (size_t k = 0; k < n; k++) {
#if defined(__GNUC__)
        if (k + 12 < n) { /* rows of a deep node are far apart: fetch ahead */
            const uint8_t *ahead = codes + (size_t)rows[k + 12] * d;
            __builtin_prefetch(ahead);
            __builtin_prefetch(ahead + d - 1);
        }
#endif
        const uint8_t *row = codes + (size_t)rows[k] * d;
        double g = gp[rows[k]].g, h = gp[rows[k]].h;
        for (size_t u = 0; u < nu; u++) {
            struct hist *e = hist + uo[u] + row[uf[u]];
            e->g += g;
            e->h += h;
        }
    }
}

static void job_hist(void *ctx, size_t item, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    const struct part *p = &f->parts[item];
    accumulate(f, f->idx + p->lo, p->hi - p->lo, p->dest);
}

/* Adds a node's other parts into its first, in part order. */
static void job_reduce(void *ctx, size_t q, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    const struct grow *nd = f->job_nodes[q];
    for (size_t p = 1; p < nd->n_parts; p++) {
        const struct hist *src = f->parts[nd->first_part + p].dest;
        for (size_t u = 0; u < f->n_use; u++)
            for (size_t k = f->uoff[u], e = k + (size_t)f->n_cuts[f->ufeat[u]] + 1; k < e; k++) {
                nd->hist[k].g += src[k].g;
                nd->hist[k].h += src[k].h;
            }
    }
}

/* The histograms of nodes job_nodes[0..count): their parts in waves that fit the scratch
 * histograms. */
static void build_hists(struct fitter *f, size_t count)
{
    size_t i = 0;
    while (i < count) {
        size_t start = i, used = 0;
        f->n_parts = 0;
        while (i < count) {
            struct grow *nd = f->job_nodes[i];
            size_t np = parts_of(nd->hi - nd->lo);
            if (i > start && used + np - 1 > GBDT_SCRATCH_HISTS)
                break;
            nd->first_part = f->n_parts;
            nd->n_parts = np;
            for (size_t p = 0; p < np; p++) {
                size_t rows = nd->hi - nd->lo;
                f->parts[f->n_parts++] = (struct part){
                    i, nd->lo + rows * p / np, nd->lo + rows * (p + 1) / np,
                    p == 0 ? nd->hist : f->scratch + (used++) * f->n_slots, 0 };
            }
            i++;
        }
        /* the job's node numbers start at 0 for job_reduce */
        for (size_t p = 0; p < f->n_parts; p++)
            f->parts[p].q -= start;
        struct grow **all = f->job_nodes;
        f->job_nodes = all + start;
        pool_run(&f->pool, job_hist, f, f->n_parts);
        pool_run(&f->pool, job_reduce, f, i - start);
        f->job_nodes = all;
    }
}

static double leaf_gain(double g, double h)
{
    return g * g / (h + GBDT_LAMBDA);
}

/* The best split of a node with its histogram built (nd->gain <= 0 when none helps). */
static void find_split(const struct fitter *f, struct grow *nd)
{
    double best = 0.0, parent = leaf_gain(nd->g, nd->h);
    nd->gain = 0.0;
    for (size_t u = 0; u < f->n_use; u++) {
        size_t j = f->ufeat[u];
        const struct hist *e = nd->hist + f->uoff[u];
        double gl = 0.0, hl = 0.0;
        for (int b = 0; b < f->n_cuts[j]; b++) {
            gl += e[b].g;
            hl += e[b].h;
            double gr = nd->g - gl, hr = nd->h - hl;
            if (hl < GBDT_MIN_HESSIAN)
                continue;
            if (hr < GBDT_MIN_HESSIAN)
                break;
            double gain = leaf_gain(gl, hl) + leaf_gain(gr, hr) - parent;
            if (gain > best) {
                best = gain;
                nd->gain = gain;
                nd->feat = (uint32_t)j;
                nd->bin = b;
                nd->gl = gl;
                nd->hl = hl;
            }
        }
    }
}

/* Stable partition of a part's rows: those going left packed at its start, the others
 * into tmp at the same positions. */
static void job_partition(void *ctx, size_t item, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    struct part *p = &f->parts[item];
    const struct grow *nd = f->job_nodes[p->q];
    const uint8_t *col = f->ccodes + (size_t)nd->feat * f->n;
    size_t nl = 0, nr = 0;
    uint8_t bin = (uint8_t)nd->bin;
    for (size_t k = p->lo; k < p->hi; k++) {
        uint32_t r = f->idx[k];
        if (col[r] <= bin)
            f->idx[p->lo + nl++] = r;
        else
            f->tmp[p->lo + nr++] = r;
    }
    p->n_left = nl;
}

/* Joins a node's parts: every part's left rows, then every part's right rows. */
static void job_join(void *ctx, size_t q, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    const struct grow *nd = f->job_nodes[q];
    size_t at = nd->lo;
    for (size_t p = nd->first_part; p < nd->first_part + nd->n_parts; p++) {
        memmove(f->idx + at, f->idx + f->parts[p].lo, f->parts[p].n_left * sizeof *f->idx);
        at += f->parts[p].n_left;
    }
    for (size_t p = nd->first_part; p < nd->first_part + nd->n_parts; p++) {
        size_t nr = f->parts[p].hi - f->parts[p].lo - f->parts[p].n_left;
        memcpy(f->idx + at, f->tmp + f->parts[p].lo, nr * sizeof *f->idx);
        at += nr;
    }
}

/* The children of a split parent: the larger's histogram is the parent's minus the
 * smaller's (built before), then both look for their best split. */
static void job_children(void *ctx, size_t q, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    const struct grow *nd = f->job_nodes[q];
    struct grow *L = &f->next_level[nd->child], *R = L + 1;
    struct grow *small = L->hi - L->lo <= R->hi - R->lo ? L : R, *large = small == L ? R : L;
    for (size_t u = 0; u < f->n_use; u++)
        for (size_t k = f->uoff[u], e = k + (size_t)f->n_cuts[f->ufeat[u]] + 1; k < e; k++) {
            large->hist[k].g = nd->hist[k].g - small->hist[k].g;
            large->hist[k].h = nd->hist[k].h - small->hist[k].h;
        }
    find_split(f, L);
    find_split(f, R);
}

static int add_node(struct gtree *t, uint32_t *cap)
{
    if (t->n == *cap) {
        uint32_t nc = *cap ? 2 * *cap : 64;
        struct gnode *p = realloc(t->node, nc * sizeof *p);
        if (!p)
            return -1;
        t->node = p;
        *cap = nc;
    }
    t->node[t->n] = (struct gnode){ GBDT_LEAF, 0, 0, 0.0, 0.0, 0 };
    return (int)t->n++;
}

/* Grows the round's tree of at most `depth` levels of splits over the sampled rows
 * idx[0..n_rows) (g, h their sums), its leaves holding their Newton step times eta, and
 * lists the leaves with their rows in f->leaves. */
static enum drisk_status grow_tree(struct fitter *f, int depth, double g, double h,
                                   struct drisk_error *err)
{
    struct gtree *t = f->tree;
    size_t half = (size_t)1 << (depth - 1);
    struct grow *cur = f->levels, *next = f->levels + ((size_t)1 << depth);
    struct hist *hcur = f->hist_pool, *hnext = f->hist_pool + half * f->n_slots;
    uint32_t cap = 0;
    f->n_leaves = 0;
    if (add_node(t, &cap) < 0)
        return drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for a tree");
    cur[0] = (struct grow){ .node = 0, .lo = 0, .hi = f->n_rows, .g = g, .h = h, .hist = hcur };
    f->job_nodes[0] = &cur[0];
    build_hists(f, 1);
    find_split(f, &cur[0]);
    size_t n_level = 1;
    for (int dep = 0; dep <= depth && n_level > 0; dep++) {
        size_t n_split = 0;
        for (size_t q = 0; q < n_level; q++) {
            struct grow *nd = &cur[q];
            /* every node's own Newton step: a leaf's output, a split's reference for the
             * path attributions of gbdt_explain */
            double value = -nd->g / (nd->h + GBDT_LAMBDA) * f->eta;
            t->node[nd->node].value = value;
            if (dep < depth && nd->hist && nd->gain > 1e-12)
                f->job_nodes[n_split++] = nd;
            else
                f->leaves[f->n_leaves++] = (struct leaf){ nd->lo, nd->hi, value };
        }
        if (n_split == 0)
            break;
        /* partition the splitting nodes' rows */
        f->n_parts = 0;
        for (size_t q = 0; q < n_split; q++) {
            struct grow *nd = f->job_nodes[q];
            size_t rows = nd->hi - nd->lo, np = parts_of(rows);
            nd->first_part = f->n_parts;
            nd->n_parts = np;
            for (size_t p = 0; p < np; p++)
                f->parts[f->n_parts++] = (struct part){ q, nd->lo + rows * p / np,
                                                        nd->lo + rows * (p + 1) / np, NULL, 0 };
        }
        pool_run(&f->pool, job_partition, f, f->n_parts);
        pool_run(&f->pool, job_join, f, n_split);
        /* the children */
        size_t n_next = 0;
        for (size_t q = 0; q < n_split; q++) {
            struct grow *nd = f->job_nodes[q];
            size_t n_left = 0;
            for (size_t p = nd->first_part; p < nd->first_part + nd->n_parts; p++)
                n_left += f->parts[p].n_left;
            int l = add_node(t, &cap), r = add_node(t, &cap);
            if (l < 0 || r < 0)
                return drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for a tree");
            struct gnode *node = &t->node[nd->node];
            node->feature = nd->feat;
            node->bin = nd->bin;
            node->threshold = f->cuts[(size_t)nd->feat * (GBDT_MAX_BINS - 1) + (size_t)nd->bin];
            node->left = (uint32_t)l;
            node->right = (uint32_t)r;
            int may_split = dep + 1 < depth;
            nd->child = (uint32_t)n_next;
            next[n_next] = (struct grow){ .node = (uint32_t)l, .lo = nd->lo, .hi = nd->lo + n_left,
                                          .g = nd->gl, .h = nd->hl,
                                          .hist = may_split ? hnext + n_next * f->n_slots : NULL };
            next[n_next + 1] = (struct grow){ .node = (uint32_t)r, .lo = nd->lo + n_left,
                                              .hi = nd->hi, .g = nd->g - nd->gl, .h = nd->h - nd->hl,
                                              .hist = may_split ? hnext + (n_next + 1) * f->n_slots
                                                                : NULL };
            n_next += 2;
        }
        if (dep + 1 < depth) { /* children that may split: build the smaller's histogram */
            struct grow **parents = f->job_nodes + n_split; /* the same list, kept */
            memmove(parents, f->job_nodes, n_split * sizeof *parents);
            for (size_t q = 0; q < n_split; q++) {
                struct grow *L = &next[parents[q]->child], *R = L + 1;
                f->job_nodes[q] = L->hi - L->lo <= R->hi - R->lo ? L : R;
            }
            f->next_level = next;
            build_hists(f, n_split);
            memmove(f->job_nodes, parents, n_split * sizeof *parents);
            pool_run(&f->pool, job_children, f, n_split);
        }
        struct grow *sw = cur;
        cur = next;
        next = sw;
        struct hist *hs = hcur;
        hcur = hnext;
        hnext = hs;
        n_level = n_next;
    }
    return DRISK_OK;
}

/* The tree's output for a row given as bin codes. */
static double tree_score_binned(const struct gtree *t, const uint8_t *row)
{
    const struct gnode *n = t->node;
    while (n->feature != GBDT_LEAF)
        n = t->node + (row[n->feature] <= n->bin ? n->left : n->right);
    return n->value;
}

/* The new tree's output added to the training scores: a leaf's sampled rows by its
 * value (items below n_leaves), the unsampled rows by walking it (chunks of rest). */
static void job_train_scores(void *ctx, size_t item, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    if (item < f->n_leaves) {
        const struct leaf *lf = &f->leaves[item];
        for (size_t k = lf->lo; k < lf->hi; k++)
            f->score[f->idx[k]] += lf->value;
        return;
    }
    item -= f->n_leaves;
    size_t end = (item + 1) * GBDT_CHUNK < f->n_rest ? (item + 1) * GBDT_CHUNK : f->n_rest;
    for (size_t k = item * GBDT_CHUNK; k < end; k++) {
        uint32_t i = f->rest[k];
        f->score[i] += tree_score_binned(f->tree, f->codes + (size_t)i * f->d);
    }
}

/* A row's loss: the log loss, the squared error of log-hours, or with huber > 0 its
 * pseudo-Huber loss. */
static double row_loss(int regression, double huber, double s, double y)
{
    if (regression && huber > 0) {
        double r = (y - s) / huber;
        return huber * huber * (sqrt(1.0 + r * r) - 1.0);
    }
    return regression ? (y - s) * (y - s) : drisk_logit_loss(s, y);
}

/* The new tree added to a chunk of validation scores, and the chunk's weighted loss. */
static void job_valid(void *ctx, size_t item, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    size_t end = (item + 1) * GBDT_CHUNK < f->nv ? (item + 1) * GBDT_CHUNK : f->nv;
    double s = 0.0, ws = 0.0;
    for (size_t i = item * GBDT_CHUNK; i < end; i++) {
        f->vscore[i] += tree_score_binned(f->tree, f->vcodes + i * f->d);
        double wi = f->vw ? f->vw[i] : 1.0;
        s += wi * row_loss(f->regression, f->huber, f->vscore[i], f->vy[i]);
        ws += wi;
    }
    f->partial[2 * item] = s;
    f->partial[2 * item + 1] = ws;
}

/* A chunk's weighted training loss (progress without a validation set). */
static void job_train_loss(void *ctx, size_t item, int worker)
{
    (void)worker;
    struct fitter *f = ctx;
    size_t end = (item + 1) * GBDT_CHUNK < f->n ? (item + 1) * GBDT_CHUNK : f->n;
    double s = 0.0, ws = 0.0;
    for (size_t i = item * GBDT_CHUNK; i < end; i++) {
        s += f->w[i] * row_loss(f->regression, f->huber, f->score[i], f->y[i]);
        ws += f->w[i];
    }
    f->partial[2 * item] = s;
    f->partial[2 * item + 1] = ws;
}

/* partial[0..2*chunks) as two sums, added in chunk order. */
static void sum_partials(const double *partial, size_t chunks, double *a, double *b)
{
    *a = *b = 0.0;
    for (size_t c = 0; c < chunks; c++) {
        *a += partial[2 * c];
        *b += partial[2 * c + 1];
    }
}

static enum drisk_status gbdt_fit(const struct drisk_dataset *train,
                                  const struct drisk_dataset *valid,
                                  const struct drisk_fit_options *opt, struct drisk_model **out,
                                  struct drisk_error *err)
{
    enum drisk_status st = DRISK_OK;
    size_t n = train->n_rows, d = train->n_features, nv = valid ? valid->n_rows : 0;
    int depth = opt->gbdt_depth, regression = !drisk_target_is_classification(opt->target);
    struct fitter f = { 0 };
    struct gbdt *m = NULL;
    double *w = NULL, *ylog = NULL, *vylog = NULL, *vbest = NULL;
    double *res = NULL, *rw = NULL; /* eta: validation residuals and their weights */
    int pool_up = 0;
    if (n >= UINT32_MAX || d >= ((size_t)1 << 23)) {
        st = drisk_error_set(err, DRISK_EINVAL, "gbdt: %zu rows x %zu features is too many", n, d);
        goto out;
    }
    if (regression && !nv) {
        st = drisk_error_set(err, DRISK_EINVAL, "gbdt: eta needs a validation set (its P50 and "
                             "P90 come from the validation residuals)");
        goto out;
    }
    if (!(m = gbdt_new(d, (uint32_t)opt->gbdt_trees, err))) {
        st = DRISK_ENOMEM;
        goto out;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus < 1 ? 1 : cpus > GBDT_MAX_THREADS ? GBDT_MAX_THREADS : (int)cpus;
    size_t half = (size_t)1 << (depth - 1), per_level = (size_t)1 << depth;
    size_t n_chunks = chunks_of(n > nv ? n : nv) + 1;
    f.regression = regression;
    f.huber = regression && opt->gbdt_huber_delta > 0 ? opt->gbdt_huber_delta : 0.0;
    f.n = n;
    f.d = d;
    f.nv = nv;
    f.x = train->x;
    f.vx = valid ? valid->x : NULL;
    f.vw = valid ? valid->weight : NULL;
    f.eta = opt->gbdt_eta;
    f.cuts = malloc(d * (GBDT_MAX_BINS - 1) * sizeof *f.cuts);
    f.n_cuts = calloc(d, sizeof *f.n_cuts);
    f.off = malloc(d * sizeof *f.off);
    f.codes = malloc(n * d);
    f.ccodes = malloc(n * d);
    f.vcodes = malloc((nv ? nv : 1) * d);
    f.gp = malloc(n * sizeof *f.gp);
    f.idx = malloc(n * sizeof *f.idx);
    f.tmp = malloc(n * sizeof *f.tmp);
    f.rest = malloc(n * sizeof *f.rest);
    f.ufeat = malloc(d * sizeof *f.ufeat);
    f.uoff = malloc(d * sizeof *f.uoff);
    f.score = malloc(n * sizeof *f.score);
    f.vscore = malloc((nv ? nv : 1) * sizeof *f.vscore);
    f.partial = malloc(2 * n_chunks * sizeof *f.partial);
    f.levels = malloc(2 * per_level * sizeof *f.levels);
    f.job_nodes = malloc(2 * per_level * sizeof *f.job_nodes);
    f.parts = malloc(per_level * GBDT_MAX_PARTS * sizeof *f.parts);
    f.leaves = malloc(per_level * sizeof *f.leaves);
    f.sample_step = n > GBDT_SAMPLE ? n / GBDT_SAMPLE : 1;
    f.sample_rows = (n + f.sample_step - 1) / f.sample_step;
    /* up to 8 features a pass, within 4M keys (32 MiB) a thread */
    f.cut_group = ((size_t)1 << 22) / f.sample_rows;
    f.cut_group = f.cut_group < 1 ? 1 : f.cut_group > 8 ? 8 : f.cut_group;
    f.sort_buf = malloc((size_t)threads * (f.cut_group + 1) * f.sample_rows * sizeof *f.sort_buf);
    w = malloc(n * sizeof *w);
    ylog = regression ? malloc(n * sizeof *ylog) : NULL;
    vylog = regression ? malloc(nv * sizeof *vylog) : NULL;
    vbest = regression ? malloc(nv * sizeof *vbest) : NULL;
    if (!f.cuts || !f.n_cuts || !f.off || !f.codes || !f.ccodes || !f.vcodes || !f.gp || !f.idx || !f.tmp ||
        !f.rest || !f.ufeat || !f.uoff || !f.score || !f.vscore || !f.partial || !f.levels ||
        !f.job_nodes || !f.parts || !f.leaves || !f.sort_buf || !w ||
        (regression && (!ylog || !vylog || !vbest))) {
        st = drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for %zu x %zu", n, d);
        goto out;
    }
    pool_init(&f.pool, threads);
    pool_up = 1;

    /* bins: cut points per feature, then every row's codes */
    double t_bins = drisk_monotonic_s();
    pool_run(&f.pool, job_cuts, &f, (d + f.cut_group - 1) / f.cut_group);
    for (size_t j = 0; j < d; j++) {
        f.off[j] = (uint32_t)f.n_slots;
        f.n_slots += (size_t)f.n_cuts[j] + 1;
    }
    f.hist_pool = malloc(2 * half * f.n_slots * sizeof *f.hist_pool);
    f.scratch = malloc(GBDT_SCRATCH_HISTS * f.n_slots * sizeof *f.scratch);
    if (!f.hist_pool || !f.scratch) {
        st = drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for the histograms");
        goto out;
    }
    pool_run(&f.pool, job_bin, &f, chunks_of(n) + chunks_of(nv));
    DRISK_LOG(DRISK_LOG_DEBUG, "gbdt: %zu histogram slots for %zu features, bins in %.2f s",
              f.n_slots, d, drisk_monotonic_s() - t_bins);

    /* targets, weights and the starting score */
    double cw0 = 1.0, cw1 = 1.0, pos_share, wy = 0.0, wall = 0.0;
    if (!regression)
        drisk_class_weights(train, opt->class_weight_balanced, &cw0, &cw1, &pos_share);
    for (size_t i = 0; i < n; i++) {
        double yi = train->y[i];
        w[i] = (train->weight ? train->weight[i] : 1.0) *
               (regression ? 1.0 : yi != 0.0 ? cw1 : cw0);
        if (regression) {
            ylog[i] = log(yi);
            wy += w[i] * ylog[i];
            wall += w[i];
        }
    }
    for (size_t i = 0; regression && i < nv; i++)
        vylog[i] = log(valid->y[i]);
    f.w = w;
    f.y = regression ? ylog : train->y;
    f.vy = regression ? vylog : valid ? valid->y : NULL;
    /* eta starts from the weighted mean log-hours; classifiers from log-odds 0, as XGBoost
     * 1.7 does (base_score 0.5): the first trees then see every row with the same hessian
     * and weigh the classes alike, and on the simulated late and lost targets that
     * validated better than starting from the base rate's log-odds (docs/LEARNERS.md) */
    m->base_score = regression ? wy / wall : 0.0;
    for (size_t i = 0; i < n; i++)
        f.score[i] = m->base_score;
    for (size_t i = 0; i < nv; i++)
        f.vscore[i] = m->base_score;

    uint64_t rng = opt->seed ^ 0x6a09e667f3bcc909ULL;
    double best_loss = INFINITY, vloss = NAN;
    uint32_t best_trees = 0;
    struct drisk_meter meter;
    drisk_meter_start(&meter, "gbdt fit", "trees", opt->gbdt_trees);
    for (int round = 0; round < opt->gbdt_trees; round++) {
        f.n_rows = f.n_rest = 0;
        for (size_t i = 0; i < n; i++) {
            if ((double)(drisk_splitmix64(&rng) >> 11) < GBDT_ROW_SAMPLE * 9007199254740992.0)
                f.idx[f.n_rows++] = (uint32_t)i;
            else
                f.rest[f.n_rest++] = (uint32_t)i;
        }
        f.n_use = 0;
        for (size_t j = 0; j < d; j++) {
            int keep = (double)(drisk_splitmix64(&rng) >> 11) < GBDT_COL_SAMPLE * 9007199254740992.0;
            if (keep && f.n_cuts[j] > 0) {
                f.ufeat[f.n_use] = (uint32_t)j;
                f.uoff[f.n_use++] = f.off[j];
            }
        }
        double g, h;
        pool_run(&f.pool, job_gradient, &f, chunks_of(f.n_rows));
        sum_partials(f.partial, chunks_of(f.n_rows), &g, &h);
        f.tree = &m->tree[m->n_trees];
        if ((st = grow_tree(&f, depth, g, h, err))) {
            free(f.tree->node); /* the partial tree: not counted in n_trees, so not freed with m */
            f.tree->node = NULL;
            goto out;
        }
        m->n_trees++;
        pool_run(&f.pool, job_train_scores, &f, f.n_leaves + chunks_of(f.n_rest));
        double ls, lw;
        if (nv) {
            pool_run(&f.pool, job_valid, &f, chunks_of(nv));
            sum_partials(f.partial, chunks_of(nv), &ls, &lw);
        } else {
            pool_run(&f.pool, job_train_loss, &f, chunks_of(n));
            sum_partials(f.partial, chunks_of(n), &ls, &lw);
        }
        vloss = ls / lw;
        if (opt->progress)
            opt->progress(opt->progress_ctx, round + 1, vloss, 0.0);
        /* at most opt->gbdt_trees: early stopping usually ends sooner */
        if (drisk_meter_due(&meter))
            drisk_meter_show(&meter, round + 1, "validation %s %.5f",
                             !regression ? "log loss" : f.huber > 0 ? "pseudo-Huber loss of "
                             "log-hours" : "squared error of log-hours", vloss);
        if (!nv || vloss < best_loss) {
            best_loss = vloss;
            best_trees = m->n_trees;
            if (regression)
                memcpy(vbest, f.vscore, nv * sizeof *vbest);
        } else if (m->n_trees - best_trees >= GBDT_STOP_ROUNDS) {
            break;
        }
    }
    drisk_meter_end(&meter, m->n_trees);
    while (m->n_trees > best_trees) { /* the rounds after the best validation loss */
        m->n_trees--;
        free(m->tree[m->n_trees].node);
        m->tree[m->n_trees].node = NULL;
    }
    if (regression) { /* the intervals: quantiles of the held-out residuals */
        if (!(res = malloc(nv * sizeof *res)) ||
            (valid->weight && !(rw = malloc(nv * sizeof *rw)))) {
            st = drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for the residuals");
            goto out;
        }
        for (size_t i = 0; i < nv; i++) {
            res[i] = vylog[i] - vbest[i];
            if (rw)
                rw[i] = valid->weight[i];
        }
        drisk_conformal_quantiles(res, rw, nv, &m->q50, &m->q90);
        if (!(fabs(m->q50) <= GBDT_MAX_Q && fabs(m->q90) <= GBDT_MAX_Q)) {
            st = drisk_error_set(err, DRISK_EINVAL, "gbdt: validation residual quantiles %g, %g "
                                 "are out of range", m->q50, m->q90);
            goto out;
        }
    }
    size_t nodes = 0;
    for (uint32_t k = 0; k < m->n_trees; k++)
        nodes += m->tree[k].n;
    char shrink[32];
    snprintf(shrink, sizeof shrink, "%g", opt->gbdt_eta); /* as given: 0.05, not 0.05000...3 */
    if ((st = drisk_model_set_param_g(&m->base, "trees", (double)m->n_trees, err)) ||
        (st = drisk_model_set_param_g(&m->base, "nodes", (double)nodes, err)) ||
        (st = drisk_model_set_param_g(&m->base, "depth", (double)depth, err)) ||
        (st = drisk_model_set_param(&m->base, "shrinkage", shrink, err)) ||
        (st = drisk_model_set_param_g(&m->base, "valid_loss", best_loss, err)))
        goto out;
    char loss[64];
    if (f.huber > 0)
        snprintf(loss, sizeof loss, "pseudo-Huber of log-hours, delta %g", f.huber);
    if (regression ? (st = drisk_model_set_param(&m->base, "loss", f.huber > 0 ? loss
                                                 : "squared error of log-hours", err)) ||
                     (st = drisk_model_set_param_g(&m->base, "q50_log", m->q50, err)) ||
                     (st = drisk_model_set_param_g(&m->base, "q90_log", m->q90, err)) ||
                     (st = drisk_model_set_param(&m->base, "intervals",
                                                 "split-conformal on validation", err))
                   : (st = drisk_model_set_param(&m->base, "class_weight",
                                                 opt->class_weight_balanced ? "balanced" : "none",
                                                 err)))
        goto out;
    *out = &m->base;
    m = NULL;
out:
    if (pool_up)
        pool_destroy(&f.pool);
    if (m)
        gbdt_free(&m->base);
    free(f.cuts);
    free(f.n_cuts);
    free(f.off);
    free(f.codes);
    free(f.ccodes);
    free(f.vcodes);
    free(f.gp);
    free(f.idx);
    free(f.tmp);
    free(f.rest);
    free(f.ufeat);
    free(f.uoff);
    free(f.score);
    free(f.vscore);
    free(f.partial);
    free(f.levels);
    free(f.job_nodes);
    free(f.parts);
    free(f.leaves);
    free(f.sort_buf);
    free(f.hist_pool);
    free(f.scratch);
    free(w);
    free(ylog);
    free(vylog);
    free(vbest);
    free(res);
    free(rw);
    return st;
}

/* ---- the file ---- */

static enum drisk_status gbdt_save(const struct drisk_model *base, struct drisk_buf *buf,
                                   struct drisk_error *err)
{
    (void)err;
    const struct gbdt *m = (const struct gbdt *)base;
    drisk_buf_put_u32(buf, GBDT_PAYLOAD_V2);
    drisk_buf_put_u32(buf, (uint32_t)m->d);
    drisk_buf_put_f64(buf, m->base_score);
    drisk_buf_put_f64(buf, m->q50);
    drisk_buf_put_f64(buf, m->q90);
    drisk_buf_put_u32(buf, m->n_trees);
    for (uint32_t t = 0; t < m->n_trees; t++) {
        drisk_buf_put_u32(buf, m->tree[t].n);
        for (uint32_t k = 0; k < m->tree[t].n; k++) {
            const struct gnode *nd = &m->tree[t].node[k];
            drisk_buf_put_u32(buf, nd->feature);
            drisk_buf_put_f64(buf, nd->threshold);
            drisk_buf_put_u32(buf, nd->left);
            drisk_buf_put_u32(buf, nd->right);
            drisk_buf_put_f64(buf, nd->value);
        }
    }
    return DRISK_OK;
}

static enum drisk_status gbdt_load(struct drisk_reader *r, const struct drisk_model_meta *meta,
                                   struct drisk_model **out, struct drisk_error *err)
{
    enum drisk_status st;
    size_t d = meta->n_features;
    int eta = meta->target == DRISK_TARGET_ETA;
    uint32_t features = drisk_reader_u32(r);
    int v2 = features == GBDT_PAYLOAD_V2 && d != GBDT_PAYLOAD_V2;
    if (v2)
        features = drisk_reader_u32(r);
    double base_score = drisk_reader_f64(r);
    double q50 = v2 ? drisk_reader_f64(r) : 0.0, q90 = v2 ? drisk_reader_f64(r) : 0.0;
    if ((st = drisk_reader_check(r, "gbdt payload", err)))
        return st;
    if (features != d)
        return drisk_error_set(err, DRISK_EINVAL, "gbdt payload: %u features, the model says %zu",
                               features, d);
    if (eta && !v2)
        return drisk_error_set(err, DRISK_EINVAL, "gbdt payload: version 1 holds no eta "
                               "intervals");
    /* eta: ordered quantiles within reach of exp(); a classifier carries none */
    if (eta ? !(q50 <= q90 && fabs(q50) <= GBDT_MAX_Q && fabs(q90) <= GBDT_MAX_Q)
            : q50 != 0.0 || q90 != 0.0)
        return drisk_error_set(err, DRISK_EINVAL, "gbdt payload: residual quantiles %g, %g are "
                               "malformed", q50, q90);
    struct gbdt *m = gbdt_new(d, 0, err);
    if (!m)
        return DRISK_ENOMEM;
    m->base_score = base_score;
    m->q50 = q50;
    m->q90 = q90;
    uint32_t trees = drisk_reader_u32(r);
    if ((st = drisk_reader_check(r, "gbdt payload", err)))
        goto out;
    if (!isfinite(m->base_score) || (size_t)trees > (r->len - r->pos) / 32) { /* >= 32 B each */
        st = drisk_error_set(err, DRISK_EINVAL, "gbdt payload: %u trees do not fit the payload",
                             trees);
        goto out;
    }
    free(m->tree);
    if (!(m->tree = calloc(trees ? trees : 1, sizeof *m->tree))) {
        st = drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory");
        goto out;
    }
    for (uint32_t t = 0; t < trees; t++) {
        uint32_t nn = drisk_reader_u32(r);
        if ((st = drisk_reader_check(r, "gbdt payload", err)))
            goto out;
        if (nn == 0 || nn > GBDT_MAX_NODES || (size_t)nn > (r->len - r->pos) / 28) {
            st = drisk_error_set(err, DRISK_EINVAL, "gbdt payload: tree %u has %u nodes", t, nn);
            goto out;
        }
        struct gtree *tr = &m->tree[t];
        if (!(tr->node = malloc(nn * sizeof *tr->node))) {
            st = drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory");
            goto out;
        }
        m->n_trees = t + 1;
        tr->n = nn;
        for (uint32_t k = 0; k < nn; k++) {
            struct gnode *nd = &tr->node[k];
            nd->feature = drisk_reader_u32(r);
            nd->threshold = drisk_reader_f64(r);
            nd->left = drisk_reader_u32(r);
            nd->right = drisk_reader_u32(r);
            nd->value = drisk_reader_f64(r);
            nd->bin = 0;
            /* children come after their parent, so every walk ends at a leaf */
            int leaf = nd->feature == GBDT_LEAF;
            if (!isfinite(nd->value) ||
                (!leaf && (nd->feature >= d || !isfinite(nd->threshold) || nd->left <= k ||
                           nd->right <= k || nd->left >= nn || nd->right >= nn))) {
                st = drisk_error_set(err, DRISK_EINVAL, "gbdt payload: tree %u node %u is "
                                     "malformed", t, k);
                goto out;
            }
        }
        if ((st = drisk_reader_check(r, "gbdt payload", err)))
            goto out;
    }
    *out = &m->base;
    return DRISK_OK;
out:
    gbdt_free(&m->base);
    return st;
}

static void gbdt_training_options(struct drisk_fit_options *opt)
{
    /* as XGBoost is run: calibration restores the rate; eta has no classes, and its P50
     * and P90 come from the residuals on the validation set */
    opt->class_weight_balanced = 0;
}

const struct drisk_model_ops drisk_gbdt_ops = {
    .name = "gbdt",
    .classification = 1,
    .regression = 1,
    .fit = gbdt_fit,
    .predict = gbdt_predict,
    .explain = gbdt_explain,
    .save = gbdt_save,
    .load = gbdt_load,
    .free = gbdt_free,
    .training_options = gbdt_training_options,
};
