/* Evaluation metrics (see metrics.h for the definitions and conventions). The ranking
 * metrics, the threshold searches, the median and the lead time need the rows in order:
 * they copy (key, payload) records into their own block and sort them with an LSD radix
 * sort on an order-preserving integer image of the key, so millions of snapshots sort in
 * linear time and the caller's arrays stay untouched. Ties are always handled as groups of
 * equal keys, never by sort position, so the results do not depend on the input order. */
#include "training/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- sorting ---- */

/* A key and what travels with it: the row's index, or for the binary metrics (where the
 * rows are split by class first) the row's weight, so the walks over the sorted rows read
 * memory sequentially instead of looking labels and weights up at random. */
struct sort_rec {
    uint64_t key;
    union {
        size_t idx;
        double w;
    } v;
};

/* An unsigned integer in the same order as the finite double v, -0.0 equal to +0.0 so that
 * equal scores are equal keys. */
static uint64_t key_of_double(double v)
{
    uint64_t u;
    if (v == 0)
        v = 0.0;
    memcpy(&u, &v, sizeof u);
    return (u & UINT64_C(0x8000000000000000)) ? ~u : u ^ UINT64_C(0x8000000000000000);
}

static double double_of_key(uint64_t k)
{
    uint64_t u = (k & UINT64_C(0x8000000000000000)) ? k ^ UINT64_C(0x8000000000000000) : ~k;
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static uint64_t key_of_int64(int64_t v)
{
    return (uint64_t)v ^ UINT64_C(0x8000000000000000);
}

#define RADIX_BITS 11
#define RADIX_DIGITS ((64 + RADIX_BITS - 1) / RADIX_BITS)
#define RADIX_BUCKETS (1u << RADIX_BITS)
#define RADIX_HIST_BYTES (RADIX_DIGITS * RADIX_BUCKETS * sizeof(size_t))

/* One block for sorting n rows: *a, n records to fill; then n records of scratch; then the
 * radix sort's bucket counts (recs_hist), kept off the stack for threads with small ones.
 * The caller frees *a. */
static enum drisk_status recs_alloc(size_t n, struct sort_rec **a, struct drisk_error *err)
{
    *a = NULL;
    if (n > (SIZE_MAX - RADIX_HIST_BYTES) / (2 * sizeof **a) ||
        !(*a = malloc(2 * n * sizeof **a + RADIX_HIST_BYTES)))
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory sorting %zu rows", n);
    return DRISK_OK;
}

static size_t *recs_hist(struct sort_rec *block, size_t n)
{
    return (size_t *)(void *)(block + 2 * n);
}

/* Stable ascending sort of a[0..n) by key, using tmp[0..n) and hist (RADIX_HIST_BYTES) as
 * scratch: LSD radix sort in six 11-bit digits (measured about 18% faster than eight 8-bit
 * ones on 5M probabilities). Digits in which all keys agree (the sign and high exponent
 * bits of probabilities, the high bits of small ids) cost no pass. Returns whichever of a
 * and tmp holds the result. */
static struct sort_rec *radix_sort(struct sort_rec *a, struct sort_rec *tmp, size_t n,
                                   size_t *hist)
{
    static const uint64_t mask = RADIX_BUCKETS - 1;
    memset(hist, 0, RADIX_HIST_BYTES);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = a[i].key;
        for (int d = 0; d < RADIX_DIGITS; d++)
            hist[d * RADIX_BUCKETS + ((k >> (RADIX_BITS * d)) & mask)]++;
    }
    for (int d = 0; d < RADIX_DIGITS; d++) {
        size_t *h = hist + d * RADIX_BUCKETS;
        if (n == 0 || h[(a[0].key >> (RADIX_BITS * d)) & mask] == n)
            continue;
        size_t off = 0;
        for (unsigned b = 0; b < RADIX_BUCKETS; b++) {
            size_t c = h[b];
            h[b] = off;
            off += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[h[(a[i].key >> (RADIX_BITS * d)) & mask]++] = a[i];
        struct sort_rec *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

/* ---- input checks ---- */

struct totals {
    size_t positives;  /* rows with y = 1 */
    double weight;
    double positive_weight;
};

static enum drisk_status check_weight(const double *weight, size_t i, struct drisk_error *err)
{
    if (weight && (!(weight[i] >= 0) || isinf(weight[i])))
        return drisk_error_set(err, DRISK_EINVAL,
                               "row %zu: weight %g is not a finite number >= 0", i, weight[i]);
    return DRISK_OK;
}

/* Checks the binary inputs (metrics.h conventions; probabilities in [0, 1] when need_prob)
 * and sums the class weights. */
static enum drisk_status check_binary(size_t n, const double *y, const double *score,
                                      const double *weight, int need_prob, struct totals *t,
                                      struct drisk_error *err)
{
    enum drisk_status rc;
    memset(t, 0, sizeof *t);
    if (n == 0)
        return drisk_error_set(err, DRISK_EINVAL, "no rows to evaluate");
    if (!y || !score)
        return drisk_error_set(err, DRISK_EINVAL, "labels or scores missing");
    for (size_t i = 0; i < n; i++) {
        if (y[i] != 0 && y[i] != 1)
            return drisk_error_set(err, DRISK_EINVAL, "row %zu: label %g is not 0 or 1", i, y[i]);
        if (!isfinite(score[i]))
            return drisk_error_set(err, DRISK_EINVAL, "row %zu: score is not a finite number", i);
        if (need_prob && !(score[i] >= 0 && score[i] <= 1))
            return drisk_error_set(err, DRISK_EINVAL,
                                   "row %zu: score %g is not a probability in [0, 1]", i,
                                   score[i]);
        if ((rc = check_weight(weight, i, err)))
            return rc;
        double w = weight ? weight[i] : 1.0;
        t->weight += w;
        if (y[i] == 1) {
            t->positives++;
            t->positive_weight += w;
        }
    }
    if (!(t->weight > 0))
        return drisk_error_set(err, DRISK_EINVAL, "all %zu rows have weight 0", n);
    return DRISK_OK;
}

static enum drisk_status check_regression(size_t n, const double *truth, const double *pred,
                                          const double *weight, double *total,
                                          struct drisk_error *err)
{
    enum drisk_status rc;
    double w = 0;
    if (n == 0)
        return drisk_error_set(err, DRISK_EINVAL, "no rows to evaluate");
    if (!truth || !pred)
        return drisk_error_set(err, DRISK_EINVAL, "true or predicted values missing");
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(truth[i]))
            return drisk_error_set(err, DRISK_EINVAL, "row %zu: true value is not a finite number",
                                   i);
        if (!isfinite(pred[i]))
            return drisk_error_set(err, DRISK_EINVAL,
                                   "row %zu: prediction is not a finite number", i);
        if ((rc = check_weight(weight, i, err)))
            return rc;
        w += weight ? weight[i] : 1.0;
    }
    if (!(w > 0))
        return drisk_error_set(err, DRISK_EINVAL, "all %zu rows have weight 0", n);
    *total = w;
    return DRISK_OK;
}

/* ---- binary: ranking ---- */

/* The rows sorted by score within each class, as (score key, weight) records: the
 * positives pos[0..n_pos) and the negatives neg[0..n_neg), ascending. block owns both. */
struct class_sort {
    struct sort_rec *block;
    const struct sort_rec *pos, *neg;
    size_t n_pos, n_neg;
    size_t i, j;  /* walk cursor: the groups above pos[i], neg[j] are consumed */
};

static enum drisk_status class_sort_create(size_t n, const double *y, const double *score,
                                           const double *weight, struct class_sort *cs,
                                           struct drisk_error *err)
{
    enum drisk_status rc = recs_alloc(n, &cs->block, err);
    if (rc)
        return rc;
    size_t np = 0, nn = 0;
    for (size_t i = 0; i < n; i++)
        np += y[i] == 1;
    struct sort_rec *pos = cs->block, *neg = cs->block + np;
    np = 0;
    for (size_t i = 0; i < n; i++) {
        struct sort_rec r = {key_of_double(score[i]), {.w = weight ? weight[i] : 1.0}};
        if (y[i] == 1)
            pos[np++] = r;
        else
            neg[nn++] = r;
    }
    cs->n_pos = np;
    cs->n_neg = nn;
    cs->pos = radix_sort(pos, cs->block + n, np, recs_hist(cs->block, n));
    cs->neg = radix_sort(neg, cs->block + n + np, nn, recs_hist(cs->block, n));
    cs->i = np;
    cs->j = nn;
    return DRISK_OK;
}

/* The next group of tied scores from the top: its key and the weights of its positives and
 * negatives. Returns 0 when all rows are consumed. */
static int class_sort_next(struct class_sort *cs, uint64_t *key, double *gp, double *gn)
{
    size_t i = cs->i, j = cs->j;
    if (i == 0 && j == 0)
        return 0;
    uint64_t k = i == 0 ? cs->neg[j - 1].key
               : j == 0 ? cs->pos[i - 1].key
               : (cs->pos[i - 1].key > cs->neg[j - 1].key ? cs->pos[i - 1].key
                                                          : cs->neg[j - 1].key);
    double p = 0, q = 0;
    while (i > 0 && cs->pos[i - 1].key == k)
        p += cs->pos[--i].v.w;
    while (j > 0 && cs->neg[j - 1].key == k)
        q += cs->neg[--j].v.w;
    cs->i = i;
    cs->j = j;
    *key = k;
    *gp = p;
    *gn = q;
    return 1;
}

/* Restarts the walk from the top. */
static void class_sort_rewind(struct class_sort *cs)
{
    cs->i = cs->n_pos;
    cs->j = cs->n_neg;
}

/* Walks the groups of tied scores from the highest down, accumulating the weights of
 * positives (tp) and negatives (fp) at or above each score. AUC: each negative group counts
 * the positives strictly above it plus half of the tied ones. AP: each positive group adds
 * its recall step times the precision at its score. */
static enum drisk_status rank_metrics(size_t n, const double *y, const double *score,
                                      const double *weight, double *auc, double *ap,
                                      struct drisk_error *err)
{
    struct class_sort cs = {0};
    enum drisk_status rc = class_sort_create(n, y, score, weight, &cs, err);
    if (rc)
        goto out;
    double tp = 0, fp = 0, pairs = 0, ap_sum = 0, gp, gn;
    uint64_t key;
    while (class_sort_next(&cs, &key, &gp, &gn)) {
        pairs += gn * (tp + 0.5 * gp);
        tp += gp;
        fp += gn;
        if (gp > 0)
            ap_sum += gp * (tp / (tp + fp));
    }
    *auc = (tp > 0 && fp > 0) ? pairs / (tp * fp) : NAN;
    *ap = tp > 0 ? ap_sum / tp : NAN;
out:
    free(cs.block);
    return rc;
}

enum drisk_status drisk_metrics_roc_auc(size_t n, const double *y, const double *score,
                                        const double *weight, double *auc,
                                        struct drisk_error *err)
{
    struct totals t;
    double a, ap;
    enum drisk_status rc = check_binary(n, y, score, weight, 0, &t, err);
    if (rc || (rc = rank_metrics(n, y, score, weight, &a, &ap, err)))
        goto out;
    *auc = a;
out:
    return rc;
}

enum drisk_status drisk_metrics_average_precision(size_t n, const double *y,
                                                  const double *score, const double *weight,
                                                  double *ap, struct drisk_error *err)
{
    struct totals t;
    double a, p;
    enum drisk_status rc = check_binary(n, y, score, weight, 0, &t, err);
    if (rc || (rc = rank_metrics(n, y, score, weight, &a, &p, err)))
        goto out;
    *ap = p;
out:
    return rc;
}

/* ---- binary: probabilities ---- */

static void brier_logloss(size_t n, const double *y, const double *score, const double *weight,
                          double total, double *brier, double *log_loss)
{
    double sb = 0, sl = 0;
    for (size_t i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        double p = score[i], d = p - y[i];
        sb += w * d * d;
        if (p < DRISK_LOGLOSS_EPS)
            p = DRISK_LOGLOSS_EPS;
        else if (p > 1 - DRISK_LOGLOSS_EPS)
            p = 1 - DRISK_LOGLOSS_EPS;
        sl -= w * (y[i] == 1 ? log(p) : log1p(-p));
    }
    *brier = sb / total;
    *log_loss = sl / total;
}

enum drisk_status drisk_metrics_brier(size_t n, const double *y, const double *score,
                                      const double *weight, double *brier,
                                      struct drisk_error *err)
{
    struct totals t;
    double ll;
    enum drisk_status rc = check_binary(n, y, score, weight, 1, &t, err);
    if (rc == DRISK_OK)
        brier_logloss(n, y, score, weight, t.weight, brier, &ll);
    return rc;
}

enum drisk_status drisk_metrics_log_loss(size_t n, const double *y, const double *score,
                                         const double *weight, double *log_loss,
                                         struct drisk_error *err)
{
    struct totals t;
    double b;
    enum drisk_status rc = check_binary(n, y, score, weight, 1, &t, err);
    if (rc == DRISK_OK)
        brier_logloss(n, y, score, weight, t.weight, &b, log_loss);
    return rc;
}

/* Fills the table from inputs already checked; total is their weight. */
static void reliability_fill(size_t n, const double *y, const double *score,
                             const double *weight, size_t n_bins, double total,
                             struct drisk_reliability *table)
{
    double sum_p[DRISK_RELIABILITY_MAX_BINS] = {0}, sum_y[DRISK_RELIABILITY_MAX_BINS] = {0};
    memset(table, 0, sizeof *table);
    table->n_bins = n_bins;
    table->rows = n;
    for (size_t i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        size_t b = (size_t)(score[i] * (double)n_bins);
        if (b >= n_bins)
            b = n_bins - 1;
        table->bins[b].count++;
        table->bins[b].weight += w;
        sum_p[b] += w * score[i];
        sum_y[b] += w * y[i];
    }
    for (size_t b = 0; b < n_bins; b++) {
        struct drisk_reliability_bin *bin = &table->bins[b];
        bin->lo = (double)b / (double)n_bins;
        bin->hi = (double)(b + 1) / (double)n_bins;
        if (bin->weight > 0) {
            bin->mean_score = sum_p[b] / bin->weight;
            bin->observed = sum_y[b] / bin->weight;
            table->ece += bin->weight / total * fabs(bin->mean_score - bin->observed);
        } else {
            bin->mean_score = NAN;
            bin->observed = NAN;
        }
    }
}

enum drisk_status drisk_metrics_reliability(size_t n, const double *y, const double *score,
                                            const double *weight, size_t n_bins,
                                            struct drisk_reliability *table,
                                            struct drisk_error *err)
{
    struct totals t;
    enum drisk_status rc;
    if (n_bins < 1 || n_bins > DRISK_RELIABILITY_MAX_BINS)
        return drisk_error_set(err, DRISK_EINVAL, "%zu reliability bins: use 1 to %d", n_bins,
                               DRISK_RELIABILITY_MAX_BINS);
    if (!table)
        return drisk_error_set(err, DRISK_EINVAL, "no reliability table to fill");
    if ((rc = check_binary(n, y, score, weight, 1, &t, err)))
        return rc;
    reliability_fill(n, y, score, weight, n_bins, t.weight, table);
    return DRISK_OK;
}

enum drisk_status drisk_metrics_ece(size_t n, const double *y, const double *score,
                                    const double *weight, double *ece,
                                    struct drisk_error *err)
{
    struct totals t;
    struct drisk_reliability *table = NULL;
    enum drisk_status rc = check_binary(n, y, score, weight, 1, &t, err);
    if (rc)
        goto out;
    if (!(table = malloc(sizeof *table))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    reliability_fill(n, y, score, weight, DRISK_ECE_BINS, t.weight, table);
    *ece = table->ece;
out:
    free(table);
    return rc;
}

enum drisk_status drisk_metrics_binary(size_t n, const double *y, const double *score,
                                       const double *weight, struct drisk_binary_metrics *out,
                                       struct drisk_error *err)
{
    struct totals t;
    struct drisk_binary_metrics m;
    struct drisk_reliability *table = NULL;
    enum drisk_status rc = check_binary(n, y, score, weight, 1, &t, err);
    if (rc)
        goto out;
    if (!(table = malloc(sizeof *table))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = rank_metrics(n, y, score, weight, &m.auc, &m.pr_auc, err)))
        goto out;
    brier_logloss(n, y, score, weight, t.weight, &m.brier, &m.log_loss);
    reliability_fill(n, y, score, weight, DRISK_ECE_BINS, t.weight, table);
    m.ece = table->ece;
    m.rows = n;
    m.positives = t.positives;
    m.weight = t.weight;
    m.positive_weight = t.positive_weight;
    *out = m;
out:
    free(table);
    return rc;
}

/* ---- binary: thresholds ---- */

static void confusion_fill(struct drisk_confusion *c, double threshold, double tp, double fp,
                           double tn, double fn)
{
    double total = tp + fp + tn + fn;
    c->threshold = threshold;
    c->tp = tp;
    c->fp = fp;
    c->tn = tn;
    c->fn = fn;
    c->precision = tp + fp > 0 ? tp / (tp + fp) : NAN;
    c->recall = tp + fn > 0 ? tp / (tp + fn) : NAN;
    c->f1 = 2 * tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : NAN;
    c->flagged = total > 0 ? (tp + fp) / total : NAN;
}

enum drisk_status drisk_metrics_confusion(size_t n, const double *y, const double *score,
                                          const double *weight, double threshold,
                                          struct drisk_confusion *out,
                                          struct drisk_error *err)
{
    struct totals t;
    enum drisk_status rc;
    if (isnan(threshold))
        return drisk_error_set(err, DRISK_EINVAL, "the threshold is not a number");
    if ((rc = check_binary(n, y, score, weight, 0, &t, err)))
        return rc;
    double tp = 0, fp = 0, tn = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        int flag = score[i] >= threshold;
        if (y[i] == 1) {
            if (flag)
                tp += w;
            else
                fn += w;
        } else {
            if (flag)
                fp += w;
            else
                tn += w;
        }
    }
    confusion_fill(out, threshold, tp, fp, tn, fn);
    return DRISK_OK;
}

enum pick_goal { PICK_PRECISION, PICK_RECALL };

/* Walks the tied-score groups from the highest score down twice: once for the class totals
 * (summed in the same order as the running sums, so that the lowest threshold's recall is
 * exactly 1), once to find the threshold. The threshold is the group's score recovered
 * from its key (-0.0 comes back as +0.0, which compares the same). */
static enum drisk_status threshold_pick(size_t n, const double *y, const double *score,
                                        const double *weight, enum pick_goal goal,
                                        double target, struct drisk_threshold_pick *out,
                                        struct drisk_error *err)
{
    struct totals t;
    struct class_sort cs = {0};
    enum drisk_status rc;
    if (!(target > 0 && target <= 1)) {
        rc = drisk_error_set(err, DRISK_EINVAL, "target %s %g is not in (0, 1]",
                             goal == PICK_PRECISION ? "precision" : "recall", target);
        goto out;
    }
    if ((rc = check_binary(n, y, score, weight, 0, &t, err)) ||
        (rc = class_sort_create(n, y, score, weight, &cs, err)))
        goto out;

    double pos = 0, neg = 0, gp, gn;
    uint64_t key;
    while (class_sort_next(&cs, &key, &gp, &gn)) {
        pos += gp;
        neg += gn;
    }
    class_sort_rewind(&cs);
    int found = 0;
    double tp = 0, fp = 0, best_tp = 0, best_fp = 0, best_thr = NAN;
    while (class_sort_next(&cs, &key, &gp, &gn)) {
        tp += gp;
        fp += gn;
        int meets = goal == PICK_PRECISION ? (tp + fp > 0 && tp / (tp + fp) >= target)
                                           : (pos > 0 && tp / pos >= target);
        if (meets) {
            found = 1;
            best_tp = tp;
            best_fp = fp;
            best_thr = double_of_key(key);
            if (goal == PICK_RECALL)
                break;
        }
    }
    out->found = found;
    if (found)
        confusion_fill(&out->at, best_thr, best_tp, best_fp, neg - best_fp, pos - best_tp);
    else
        confusion_fill(&out->at, NAN, NAN, NAN, NAN, NAN);
out:
    free(cs.block);
    return rc;
}

enum drisk_status drisk_metrics_threshold_for_precision(size_t n, const double *y,
                                                        const double *score,
                                                        const double *weight, double target,
                                                        struct drisk_threshold_pick *out,
                                                        struct drisk_error *err)
{
    return threshold_pick(n, y, score, weight, PICK_PRECISION, target, out, err);
}

enum drisk_status drisk_metrics_threshold_for_recall(size_t n, const double *y,
                                                     const double *score,
                                                     const double *weight, double target,
                                                     struct drisk_threshold_pick *out,
                                                     struct drisk_error *err)
{
    return threshold_pick(n, y, score, weight, PICK_RECALL, target, out, err);
}

/* ---- regression ---- */

enum drisk_status drisk_metrics_mae(size_t n, const double *truth, const double *pred,
                                    const double *weight, double *mae,
                                    struct drisk_error *err)
{
    double total = 0, s = 0;
    enum drisk_status rc = check_regression(n, truth, pred, weight, &total, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        s += (weight ? weight[i] : 1.0) * fabs(truth[i] - pred[i]);
    *mae = s / total;
    return DRISK_OK;
}

/* The weighted median (metrics.h) of the values keyed (key_of_double) in r[0..n), sorted
 * ascending, with r[k].v.idx the row of weight[] (NULL: all 1). The total is summed in the
 * same order as the running sum, so the comparisons with half of it are exact for integer
 * weights. */
static double weighted_median(const struct sort_rec *r, size_t n, const double *weight)
{
    double total = 0, cum = 0, lower = NAN;
    for (size_t k = 0; k < n; k++)
        total += weight ? weight[r[k].v.idx] : 1.0;
    double half = total / 2;
    for (size_t k = 0; k < n; k++) {
        double v = double_of_key(r[k].key);
        cum += weight ? weight[r[k].v.idx] : 1.0;
        if (isnan(lower) && cum >= half)
            lower = v;
        if (cum > half)
            return (lower + v) / 2;
    }
    return lower; /* not reached for a positive total */
}

enum drisk_status drisk_metrics_median_abs_error(size_t n, const double *truth,
                                                 const double *pred, const double *weight,
                                                 double *median, struct drisk_error *err)
{
    struct sort_rec *block = NULL;
    double total = 0;
    enum drisk_status rc = check_regression(n, truth, pred, weight, &total, err);
    if (rc || (rc = recs_alloc(n, &block, err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        block[i].key = key_of_double(fabs(truth[i] - pred[i]));
        block[i].v.idx = i;
    }
    const struct sort_rec *r = radix_sort(block, block + n, n, recs_hist(block, n));
    *median = weighted_median(r, n, weight);
out:
    free(block);
    return rc;
}

static double pinball_sum(size_t n, const double *truth, const double *pred,
                          const double *weight, double tau)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = truth[i] - pred[i];
        s += (weight ? weight[i] : 1.0) * (d >= 0 ? tau * d : (tau - 1) * d);
    }
    return s;
}

static double coverage_sum(size_t n, const double *truth, const double *pred,
                           const double *weight)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        if (truth[i] <= pred[i])
            s += weight ? weight[i] : 1.0;
    return s;
}

enum drisk_status drisk_metrics_pinball(size_t n, const double *truth, const double *pred,
                                        const double *weight, double tau, double *loss,
                                        struct drisk_error *err)
{
    double total = 0;
    enum drisk_status rc;
    if (!(tau > 0 && tau < 1))
        return drisk_error_set(err, DRISK_EINVAL, "quantile %g is not in (0, 1)", tau);
    if ((rc = check_regression(n, truth, pred, weight, &total, err)))
        return rc;
    *loss = pinball_sum(n, truth, pred, weight, tau) / total;
    return DRISK_OK;
}

enum drisk_status drisk_metrics_coverage(size_t n, const double *truth, const double *pred,
                                         const double *weight, double *coverage,
                                         struct drisk_error *err)
{
    double total = 0;
    enum drisk_status rc = check_regression(n, truth, pred, weight, &total, err);
    if (rc)
        return rc;
    *coverage = coverage_sum(n, truth, pred, weight) / total;
    return DRISK_OK;
}

enum drisk_status drisk_metrics_eta(size_t n, const double *truth_h, const double *p50_h,
                                    const double *p90_h, const double *weight,
                                    struct drisk_eta_metrics *out, struct drisk_error *err)
{
    struct drisk_eta_metrics m;
    double total = 0, total90 = 0;
    enum drisk_status rc = check_regression(n, truth_h, p50_h, weight, &total, err);
    if (rc || (p90_h && (rc = check_regression(n, truth_h, p90_h, weight, &total90, err))))
        goto out;
    if ((rc = drisk_metrics_median_abs_error(n, truth_h, p50_h, weight, &m.median_ae_h, err)))
        goto out;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (weight ? weight[i] : 1.0) * fabs(truth_h[i] - p50_h[i]);
    m.rows = n;
    m.mae_h = s / total;
    m.pinball50_h = pinball_sum(n, truth_h, p50_h, weight, 0.5) / total;
    m.p50_coverage = coverage_sum(n, truth_h, p50_h, weight) / total;
    m.pinball90_h = p90_h ? pinball_sum(n, truth_h, p90_h, weight, 0.9) / total : NAN;
    m.p90_coverage = p90_h ? coverage_sum(n, truth_h, p90_h, weight) / total : NAN;
    *out = m;
out:
    return rc;
}

/* ---- lead time ---- */

enum drisk_status drisk_metrics_lead_time(const struct drisk_lead_input *in, double threshold,
                                          struct drisk_lead_time *out,
                                          struct drisk_error *err)
{
    struct sort_rec *block = NULL;
    double *leads = NULL;
    enum drisk_status rc = DRISK_OK;
    struct drisk_lead_time m;
    memset(&m, 0, sizeof m);

    if (!in || !out) {
        rc = drisk_error_set(err, DRISK_EINVAL, "no lead-time input or output");
        goto out;
    }
    size_t n = in->n;
    if (n == 0) {
        rc = drisk_error_set(err, DRISK_EINVAL, "no rows to evaluate");
        goto out;
    }
    if (!in->shipment || !in->as_of || !in->promised_at || !in->score || !in->y) {
        rc = drisk_error_set(err, DRISK_EINVAL, "a lead-time input column is missing");
        goto out;
    }
    if (isnan(threshold)) {
        rc = drisk_error_set(err, DRISK_EINVAL, "the threshold is not a number");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (in->y[i] != 0 && in->y[i] != 1) {
            rc = drisk_error_set(err, DRISK_EINVAL, "row %zu: label %g is not 0 or 1", i,
                                 in->y[i]);
            goto out;
        }
        if (isnan(in->score[i])) {
            rc = drisk_error_set(err, DRISK_EINVAL, "row %zu: score is not a number", i);
            goto out;
        }
    }
    if ((rc = recs_alloc(n, &block, err)))
        goto out;
    if (!(leads = malloc(n * sizeof *leads))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory for %zu lead times", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        block[i].key = key_of_int64(in->shipment[i]);
        block[i].v.idx = i;
    }
    const struct sort_rec *r = radix_sort(block, block + n, n, recs_hist(block, n));

    size_t n_leads = 0;
    double lead_sum = 0;
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo + 1, first_row = r[lo].v.idx;
        while (hi < n && r[hi].key == r[lo].key)
            hi++;
        int flagged = 0;
        int64_t first_alert = 0;
        for (size_t k = lo; k < hi; k++) {
            size_t i = r[k].v.idx;
            if (in->y[i] != in->y[first_row] || in->promised_at[i] != in->promised_at[first_row]) {
                rc = drisk_error_set(err, DRISK_EINVAL,
                                     "rows %zu and %zu of shipment %lld disagree on its %s",
                                     first_row, i, (long long)in->shipment[i],
                                     in->y[i] != in->y[first_row] ? "label" : "promised_at");
                goto out;
            }
            if (in->score[i] >= threshold && (!flagged || in->as_of[i] < first_alert)) {
                flagged = 1;
                first_alert = in->as_of[i];
            }
        }
        m.shipments++;
        if (in->y[first_row] == 1) {
            m.positives++;
            if (flagged) {
                /* in double: int64 subtraction of arbitrary inputs could overflow */
                double lead_h =
                    ((double)in->promised_at[first_row] - (double)first_alert) / 3600.0;
                m.flagged_positives++;
                if (lead_h > 0)
                    m.flagged_before_promise++;
                leads[n_leads++] = lead_h;
                lead_sum += lead_h;
            }
        } else if (flagged) {
            m.flagged_negatives++;
        }
        lo = hi;
    }

    m.threshold = threshold;
    size_t all_flagged = m.flagged_positives + m.flagged_negatives;
    m.precision = all_flagged ? (double)m.flagged_positives / (double)all_flagged : NAN;
    m.recall = m.positives ? (double)m.flagged_positives / (double)m.positives : NAN;
    m.mean_lead_h = n_leads ? lead_sum / (double)n_leads : NAN;
    m.median_lead_h = NAN;
    if (n_leads) {
        /* the shipment sort is done with: its block sorts the lead times */
        for (size_t k = 0; k < n_leads; k++) {
            block[k].key = key_of_double(leads[k]);
            block[k].v.idx = k;
        }
        r = radix_sort(block, block + n_leads, n_leads, recs_hist(block, n));
        m.median_lead_h = weighted_median(r, n_leads, NULL);
    }
    *out = m;
out:
    free(leads);
    free(block);
    return rc;
}
