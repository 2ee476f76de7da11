/* Gradient-boosted decision trees ("gbdt") for late and lost: the log loss minimized by
 * second-order boosting of depth-limited regression trees on histograms, the method of
 * XGBoost's "hist" and LightGBM, so analysts can set drisk's own trees beside them.
 *
 * Fitting: each feature is cut at up to 255 of its training quantiles (from a regular
 * sample of at most 200,000 rows), so a row is d one-byte bin codes. Every round takes a
 * sample of the rows and of the features (each kept with probability 0.8, from the seed),
 * computes the gradient g = p - y and hessian h = p (1 - p) of each sampled row (times
 * its weight), and grows a tree level by level: a node's histogram sums g and h per
 * feature and bin, the larger child's histogram is its parent's minus the smaller
 * child's, and a node splits where G_L^2/(H_L+lambda) + G_R^2/(H_R+lambda) - G^2/(H+lambda)
 * is largest (lambda 1, each side with hessian >= 1). A leaf holds -G/(H+lambda) times the
 * shrinkage (default 0.05: more, smaller steps generalize a little better than 0.1). Rounds stop 30 after the validation log loss last improved, and the model
 * keeps the rounds up to its best; without a validation set all rounds are kept.
 *
 * Histograms are built on one thread per core (up to 8), each summing its own run of a
 * node's rows: a fit is deterministic for a seed and a core count.
 *
 * Scoring walks each tree with the raw feature values (x <= threshold goes left): no
 * bins, no allocation, reentrant. Explanations are path attributions (gbdt_explain).
 *
 * Payload: u32 features (the model's d again, so that a damaged header cannot make a walk
 * read past a row), f64 base score, u32 trees, then per tree u32 nodes and
 * per node u32 feature (0xffffffff: a leaf), f64 threshold, u32 left, u32 right (indices
 * into the tree's nodes, after their parent), f64 value (a leaf's output; a split's own
 * Newton step, the reference of the path attributions). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/format.h"
#include "models/log.h"

#define GBDT_MAX_BINS 256
#define GBDT_SAMPLE 200000
#define GBDT_LAMBDA 1.0
#define GBDT_MIN_HESSIAN 1.0
#define GBDT_ROW_SAMPLE 0.8
#define GBDT_COL_SAMPLE 0.8
#define GBDT_STOP_ROUNDS 30
#define GBDT_LEAF ((uint32_t)0xffffffff)
#define GBDT_MAX_NODES ((1u << 21) - 1)
#define GBDT_MAX_THREADS 8

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

static double model_score(const struct gbdt *m, const double *x, uint32_t trees)
{
    double s = m->base_score;
    for (uint32_t t = 0; t < trees; t++)
        s += tree_score(&m->tree[t], x);
    return s;
}

static enum drisk_status gbdt_predict(const struct drisk_model *base, const double *x, size_t n,
                                      struct drisk_prediction *out, struct drisk_error *err)
{
    (void)err;
    const struct gbdt *m = (const struct gbdt *)base;
    for (size_t i = 0; i < n; i++)
        out[i].score = model_score(m, x + i * m->d, m->n_trees);
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

/* ---- fitting ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The cut points of each feature: cuts[j * 255 + b] for b < n_cuts[j], ascending; a value
 * v falls in bin b, the first with v <= cut b (n_cuts[j] when above every cut). */
static enum drisk_status find_cuts(const double *x, size_t n, size_t d, double *cuts,
                                   int *n_cuts, struct drisk_error *err)
{
    size_t step = n > GBDT_SAMPLE ? n / GBDT_SAMPLE : 1, ns = (n + step - 1) / step;
    double *col = malloc(ns * sizeof *col);
    if (!col)
        return drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for the bins");
    for (size_t j = 0; j < d; j++) {
        for (size_t i = 0, k = 0; k < ns; i += step, k++)
            col[k] = x[i * d + j];
        qsort(col, ns, sizeof *col, cmp_double);
        size_t distinct = 1;
        for (size_t k = 1; k < ns; k++)
            distinct += col[k] != col[k - 1];
        double *c = cuts + j * (GBDT_MAX_BINS - 1);
        int nc = 0;
        if (distinct <= GBDT_MAX_BINS) { /* every value but the largest is a cut */
            for (size_t k = 0; k + 1 < ns; k++)
                if (col[k] != col[k + 1])
                    c[nc++] = col[k];
        } else {
            for (int b = 1; b < GBDT_MAX_BINS; b++) {
                double v = col[(size_t)((double)b * (double)(ns - 1) / GBDT_MAX_BINS)];
                if (v < col[ns - 1] && (nc == 0 || v > c[nc - 1]))
                    c[nc++] = v;
            }
        }
        n_cuts[j] = nc;
    }
    free(col);
    return DRISK_OK;
}

static uint8_t bin_of(const double *c, int nc, double v)
{
    int lo = 0, hi = nc; /* the first cut >= v */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (c[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint8_t)lo;
}

struct hist {
    double g, h;
};

/* A node being grown: rows idx[lo..hi) of the round's sample. */
struct grow {
    uint32_t node;  /* in the tree */
    size_t lo, hi;
    double g, h;
    struct hist *hist; /* d * 256, NULL until built */
};

struct fitter {
    size_t n, d;
    const uint8_t *codes; /* n x d */
    const float *g, *h;
    const double *cuts;
    const int *n_cuts;
    const size_t *use; /* the features of this round (with cuts) */
    size_t n_use;
    size_t *idx;
    int threads;         /* building histograms */
    struct hist *scratch; /* (threads - 1) * d * 256 */
};

/* Sums g and h of rows idx[lo..hi) into the round's features' histograms (zeroed first;
 * the other features' stay stale: nothing reads them). */
static void accumulate(const struct fitter *f, size_t lo, size_t hi, struct hist *hist)
{
    size_t d = f->d;
    for (size_t u = 0; u < f->n_use; u++)
        memset(hist + f->use[u] * GBDT_MAX_BINS, 0, GBDT_MAX_BINS * sizeof *hist);
    for (size_t k = lo; k < hi; k++) {
        size_t i = f->idx[k];
        const uint8_t *row = f->codes + i * d;
        double g = f->g[i], h = f->h[i];
        for (size_t u = 0; u < f->n_use; u++) {
            size_t j = f->use[u];
            struct hist *e = hist + j * GBDT_MAX_BINS + row[j];
            e->g += g;
            e->h += h;
        }
    }
}

struct hist_job {
    const struct fitter *f;
    size_t lo, hi;
    struct hist *hist;
};

static void *hist_worker(void *arg)
{
    struct hist_job *j = arg;
    accumulate(j->f, j->lo, j->hi, j->hist);
    return NULL;
}

#define GBDT_MIN_ROWS_PER_THREAD 20000

/* A node's histograms: its rows split in equal runs over the fitter's threads (each into
 * its own scratch histograms, then summed in thread order, so the sums are the same for a
 * given thread count). */
static void build_hist(const struct fitter *f, const struct grow *nd, struct hist *hist)
{
    size_t rows = nd->hi - nd->lo;
    int threads = f->threads;
    while (threads > 1 && rows / (size_t)threads < GBDT_MIN_ROWS_PER_THREAD)
        threads--;
    if (threads <= 1) {
        accumulate(f, nd->lo, nd->hi, hist);
        return;
    }
    struct hist_job job[GBDT_MAX_THREADS];
    pthread_t tid[GBDT_MAX_THREADS];
    int started[GBDT_MAX_THREADS] = { 0 };
    size_t per = rows / (size_t)threads;
    for (int t = 1; t < threads; t++) {
        size_t lo = nd->lo + (size_t)t * per, hi = t + 1 == threads ? nd->hi : lo + per;
        job[t] = (struct hist_job){ f, lo, hi, f->scratch + (size_t)(t - 1) * f->d * GBDT_MAX_BINS };
        started[t] = pthread_create(&tid[t], NULL, hist_worker, &job[t]) == 0;
    }
    accumulate(f, nd->lo, nd->lo + per, hist);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            hist_worker(&job[t]); /* no thread to be had: this one does it */
        for (size_t u = 0; u < f->n_use; u++) {
            size_t off = f->use[u] * GBDT_MAX_BINS;
            for (size_t b = 0; b < GBDT_MAX_BINS; b++) {
                hist[off + b].g += job[t].hist[off + b].g;
                hist[off + b].h += job[t].hist[off + b].h;
            }
        }
    }
}

static double leaf_gain(double g, double h)
{
    return g * g / (h + GBDT_LAMBDA);
}

/* The best split of a node with its histogram built: feature, bin (left: bins <= it),
 * gain; gain <= 0 when none helps. */
static double best_split(const struct fitter *f, const struct grow *nd, size_t *feat, int *bin)
{
    double best = 0.0, parent = leaf_gain(nd->g, nd->h);
    for (size_t u = 0; u < f->n_use; u++) {
        size_t j = f->use[u];
        const struct hist *e = nd->hist + j * GBDT_MAX_BINS;
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
                *feat = j;
                *bin = b;
            }
        }
    }
    return best;
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

/* Grows one tree of at most `depth` levels of splits over the rows idx[0..n_rows), its
 * leaves holding their Newton step times eta. level holds 2 * 2^depth nodes being grown,
 * pool their histograms (2 * 2^depth * d * 256). */
static enum drisk_status grow_tree(const struct fitter *f, size_t n_rows, int depth, double eta,
                                   struct gtree *t, struct grow *levels, struct hist *pool,
                                   struct drisk_error *err)
{
    size_t d = f->d, hist_size = d * GBDT_MAX_BINS;
    uint32_t cap = 0;
    size_t per_level = (size_t)1 << depth;
    struct grow *level[2] = { levels, levels + per_level };
    int n_level = 1;
    if (add_node(t, &cap) < 0)
        return drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for a tree");
    double g = 0.0, h = 0.0;
    for (size_t k = 0; k < n_rows; k++) {
        g += f->g[f->idx[k]];
        h += f->h[f->idx[k]];
    }
    /* histograms live in the pool: two levels' worth, alternating */
    level[0][0] = (struct grow){ 0, 0, n_rows, g, h, pool };
    build_hist(f, &level[0][0], pool);
    int cur = 0;
    for (int dep = 0; dep <= depth && n_level > 0; dep++) {
        int n_next = 0, nxt = 1 - cur;
        struct hist *next_pool = pool + (size_t)nxt * per_level * hist_size;
        for (int q = 0; q < n_level; q++) {
            struct grow *nd = &level[cur][q];
            struct gnode *node = &t->node[nd->node];
            size_t feat = 0;
            int bin = 0;
            double gain = dep < depth ? best_split(f, nd, &feat, &bin) : 0.0;
            /* every node's own Newton step: a leaf's output, a split's reference for the
             * path attributions of gbdt_explain */
            node->value = -nd->g / (nd->h + GBDT_LAMBDA) * eta;
            if (!(gain > 1e-12))
                continue;
            /* partition the node's rows: bins <= bin first */
            size_t a = nd->lo, b = nd->hi;
            while (a < b) {
                if (f->codes[f->idx[a] * d + feat] <= bin)
                    a++;
                else {
                    size_t tmp = f->idx[a];
                    f->idx[a] = f->idx[--b];
                    f->idx[b] = tmp;
                }
            }
            int l = add_node(t, &cap), r = add_node(t, &cap);
            if (l < 0 || r < 0)
                return drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for a tree");
            node = &t->node[nd->node];
            node->feature = (uint32_t)feat;
            node->bin = bin;
            node->threshold = f->cuts[feat * (GBDT_MAX_BINS - 1) + (size_t)bin];
            node->left = (uint32_t)l;
            node->right = (uint32_t)r;
            double gl = 0.0, hl = 0.0;
            for (int k = 0; k <= bin; k++) {
                gl += nd->hist[feat * GBDT_MAX_BINS + (size_t)k].g;
                hl += nd->hist[feat * GBDT_MAX_BINS + (size_t)k].h;
            }
            struct grow *L = &level[nxt][n_next], *R = &level[nxt][n_next + 1];
            *L = (struct grow){ (uint32_t)l, nd->lo, a, gl, hl, next_pool + (size_t)n_next * hist_size };
            *R = (struct grow){ (uint32_t)r, a, nd->hi, nd->g - gl, nd->h - hl,
                                next_pool + (size_t)(n_next + 1) * hist_size };
            n_next += 2;
            if (dep + 1 < depth) { /* children that may split need histograms */
                struct grow *small = L->hi - L->lo <= R->hi - R->lo ? L : R;
                struct grow *large = small == L ? R : L;
                build_hist(f, small, small->hist);
                for (size_t u = 0; u < f->n_use; u++)
                    for (size_t k = f->use[u] * GBDT_MAX_BINS, e = k + GBDT_MAX_BINS; k < e; k++) {
                        large->hist[k].g = nd->hist[k].g - small->hist[k].g;
                        large->hist[k].h = nd->hist[k].h - small->hist[k].h;
                    }
            }
        }
        cur = nxt;
        n_level = n_next;
    }
    return DRISK_OK;
}

/* The tree's output for a training row given as bin codes. */
static double tree_score_binned(const struct gtree *t, const uint8_t *row)
{
    const struct gnode *n = t->node;
    while (n->feature != GBDT_LEAF)
        n = t->node + (row[n->feature] <= n->bin ? n->left : n->right);
    return n->value;
}

static double log_loss_of(const double *score, const double *y, const double *w, size_t n)
{
    double s = 0.0, ws = 0.0;
    for (size_t i = 0; i < n; i++) {
        double z = score[i], wi = w ? w[i] : 1.0;
        s += wi * drisk_logit_loss(z, y[i]);
        ws += wi;
    }
    return s / ws;
}

static enum drisk_status gbdt_fit(const struct drisk_dataset *train,
                                  const struct drisk_dataset *valid,
                                  const struct drisk_fit_options *opt, struct drisk_model **out,
                                  struct drisk_error *err)
{
    enum drisk_status st = DRISK_OK;
    size_t n = train->n_rows, d = train->n_features, nv = valid ? valid->n_rows : 0;
    int depth = opt->gbdt_depth;
    struct gbdt *m = gbdt_new(d, (uint32_t)opt->gbdt_trees, err);
    double *cuts = malloc(d * (GBDT_MAX_BINS - 1) * sizeof *cuts);
    int *n_cuts = calloc(d, sizeof *n_cuts);
    uint8_t *codes = malloc(n * d);
    float *g = malloc(n * sizeof *g), *h = malloc(n * sizeof *h);
    double *score = malloc(n * sizeof *score), *vscore = malloc((nv ? nv : 1) * sizeof *vscore);
    double *w = malloc(n * sizeof *w);
    size_t *idx = malloc(n * sizeof *idx), *use = malloc(d * sizeof *use);
    size_t hist_size = d * GBDT_MAX_BINS;
    struct hist *pool = malloc(2 * ((size_t)1 << depth) * hist_size * sizeof *pool);
    struct grow *levels = malloc(2 * ((size_t)1 << depth) * sizeof *levels);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus < 1 ? 1 : cpus > GBDT_MAX_THREADS ? GBDT_MAX_THREADS : (int)cpus;
    struct hist *scratch = malloc((size_t)(threads > 1 ? threads - 1 : 1) * hist_size * sizeof *scratch);
    if (!m || !cuts || !n_cuts || !codes || !g || !h || !score || !vscore || !w || !idx ||
        !use || !pool || !levels || !scratch) {
        st = m ? drisk_error_set(err, DRISK_ENOMEM, "gbdt: out of memory for %zu x %zu", n, d)
               : DRISK_ENOMEM;
        goto out;
    }
    if ((st = find_cuts(train->x, n, d, cuts, n_cuts, err)))
        goto out;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            codes[i * d + j] = bin_of(cuts + j * (GBDT_MAX_BINS - 1), n_cuts[j], train->x[i * d + j]);
    double cw0 = 1.0, cw1 = 1.0, pos_share, wpos = 0.0, wall = 0.0;
    drisk_class_weights(train, opt->class_weight_balanced, &cw0, &cw1, &pos_share);
    for (size_t i = 0; i < n; i++) {
        w[i] = (train->weight ? train->weight[i] : 1.0) * (train->y[i] != 0.0 ? cw1 : cw0);
        wall += w[i];
        wpos += train->y[i] != 0.0 ? w[i] : 0.0;
    }
    m->base_score = log(wpos / (wall - wpos)); /* the weighted base rate */
    for (size_t i = 0; i < n; i++)
        score[i] = m->base_score;
    for (size_t i = 0; i < nv; i++)
        vscore[i] = m->base_score;
    struct fitter f = { n, d, codes, g, h, cuts, n_cuts, use, 0, idx, threads, scratch };
    uint64_t rng = opt->seed ^ 0x6a09e667f3bcc909ULL;
    double best_loss = INFINITY, t0 = drisk_monotonic_s(), last_log = t0, vloss = NAN;
    uint32_t best_trees = 0;
    for (int round = 0; round < opt->gbdt_trees; round++) {
        size_t n_rows = 0;
        for (size_t i = 0; i < n; i++) {
            double p = drisk_sigmoid(score[i]);
            g[i] = (float)(w[i] * (p - train->y[i]));
            h[i] = (float)(w[i] * fmax(p * (1.0 - p), 1e-16));
            if ((double)(drisk_splitmix64(&rng) >> 11) < GBDT_ROW_SAMPLE * 9007199254740992.0)
                idx[n_rows++] = i;
        }
        f.n_use = 0;
        for (size_t j = 0; j < d; j++) {
            int keep = (double)(drisk_splitmix64(&rng) >> 11) < GBDT_COL_SAMPLE * 9007199254740992.0;
            if (keep && n_cuts[j] > 0)
                use[f.n_use++] = j;
        }
        struct gtree *t = &m->tree[m->n_trees];
        if ((st = grow_tree(&f, n_rows, depth, opt->gbdt_eta, t, levels, pool, err))) {
            free(t->node); /* the partial tree: not counted in n_trees, so not freed with m */
            t->node = NULL;
            goto out;
        }
        m->n_trees++;
        for (size_t i = 0; i < n; i++)
            score[i] += tree_score_binned(t, codes + i * d);
        for (size_t i = 0; i < nv; i++)
            vscore[i] += tree_score(t, valid->x + i * d);
        vloss = nv ? log_loss_of(vscore, valid->y, valid->weight, nv)
                   : log_loss_of(score, train->y, w, n);
        if (opt->progress)
            opt->progress(opt->progress_ctx, round + 1, vloss, 0.0);
        if (opt->verbose && drisk_monotonic_s() - last_log >= 1.0) {
            DRISK_LOG(DRISK_LOG_INFO, "gbdt tree %d: validation log loss %.5f (%.1f s)", round + 1,
                      vloss, drisk_monotonic_s() - t0);
            last_log = drisk_monotonic_s();
        }
        if (!nv || vloss < best_loss) {
            best_loss = vloss;
            best_trees = m->n_trees;
        } else if (m->n_trees - best_trees >= GBDT_STOP_ROUNDS) {
            break;
        }
    }
    while (m->n_trees > best_trees) { /* the rounds after the best validation loss */
        m->n_trees--;
        free(m->tree[m->n_trees].node);
        m->tree[m->n_trees].node = NULL;
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
        (st = drisk_model_set_param_g(&m->base, "valid_loss", best_loss, err)) ||
        (st = drisk_model_set_param(&m->base, "class_weight",
                                    opt->class_weight_balanced ? "balanced" : "none", err)))
        goto out;
    *out = &m->base;
    m = NULL;
out:
    if (m)
        gbdt_free(&m->base);
    free(cuts);
    free(n_cuts);
    free(codes);
    free(g);
    free(h);
    free(score);
    free(vscore);
    free(w);
    free(idx);
    free(use);
    free(pool);
    free(levels);
    free(scratch);
    return st;
}

/* ---- the file ---- */

static enum drisk_status gbdt_save(const struct drisk_model *base, struct drisk_buf *buf,
                                   struct drisk_error *err)
{
    (void)err;
    const struct gbdt *m = (const struct gbdt *)base;
    drisk_buf_put_u32(buf, (uint32_t)m->d);
    drisk_buf_put_f64(buf, m->base_score);
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
    uint32_t features = drisk_reader_u32(r);
    double base_score = drisk_reader_f64(r);
    if ((st = drisk_reader_check(r, "gbdt payload", err)))
        return st;
    if (features != d)
        return drisk_error_set(err, DRISK_EINVAL, "gbdt payload: %u features, the model says %zu",
                               features, d);
    struct gbdt *m = gbdt_new(d, 0, err);
    if (!m)
        return DRISK_ENOMEM;
    m->base_score = base_score;
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

const struct drisk_model_ops drisk_gbdt_ops = {
    .name = "gbdt",
    .classification = 1,
    .regression = 0,
    .fit = gbdt_fit,
    .predict = gbdt_predict,
    .explain = gbdt_explain,
    .save = gbdt_save,
    .load = gbdt_load,
    .free = gbdt_free,
};
