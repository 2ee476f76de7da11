/* training/metrics: AUC and average precision against naive O(n^2) references on random
 * data with ties (fixed seeds) and against values scikit-learn gives for small hand
 * examples; Brier, log loss, ECE and the reliability table, thresholds, the regression
 * metrics and the lead time on hand-built cases; integer weights against duplicated rows;
 * and the refusal of bad input. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "models/format.h"
#include "training/bootstrap.h"
#include "training/metrics.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int near(double a, double b, double tol)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return fabs(a - b) <= tol * (1 + fabs(b));
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double rng_unif(void)
{
    return (double)(rng_next() >> 11) * 0x1.0p-53;
}

/* ---- naive references ---- */

/* Every (positive, negative) pair, ties 1/2, weighted by the product of the weights. */
static double naive_auc(size_t n, const double *y, const double *s, const double *w)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] != 1)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (y[j] != 0)
                continue;
            double ww = (w ? w[i] : 1) * (w ? w[j] : 1);
            den += ww;
            num += ww * (s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0);
        }
    }
    return den > 0 ? num / den : NAN;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Tallies the weights of positives and negatives with score >= t. */
static void naive_counts(size_t n, const double *y, const double *s, const double *w, double t,
                         double *tp, double *fp)
{
    *tp = *fp = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= t) {
            if (y[i] == 1)
                *tp += w ? w[i] : 1;
            else
                *fp += w ? w[i] : 1;
        }
    }
}

/* The distinct scores, highest first; returns how many (the caller frees *out). */
static size_t distinct_desc(size_t n, const double *s, double **out)
{
    double *d = malloc(n * sizeof *d);
    size_t m = 0;
    memcpy(d, s, n * sizeof *d);
    qsort(d, n, sizeof *d, cmp_desc);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || d[i] != d[m - 1])
            d[m++] = d[i];
    *out = d;
    return m;
}

/* scikit-learn's average_precision_score, literally: thresholds at the distinct scores in
 * decreasing order, sum of (R_k - R_{k-1}) P_k with R_0 = 0. */
static double naive_ap(size_t n, const double *y, const double *s, const double *w)
{
    double *thr, pos, neg, prev_r = 0, ap = 0;
    size_t m = distinct_desc(n, s, &thr);
    naive_counts(n, y, s, w, -INFINITY, &pos, &neg);
    for (size_t k = 0; k < m; k++) {
        double tp, fp;
        naive_counts(n, y, s, w, thr[k], &tp, &fp);
        double prec = tp + fp > 0 ? tp / (tp + fp) : 0, rec = tp / pos;
        ap += (rec - prev_r) * prec;
        prev_r = rec;
    }
    free(thr);
    return pos > 0 ? ap : NAN;
}

/* ---- hand examples (the values scikit-learn 1.2 gives, derived by hand) ---- */

static void test_hand_ranking(void)
{
    double auc = -1, ap = -1;
    struct drisk_error err = {0};

    /* scikit-learn's documentation example. y = [0,0,1,1], s = [0.1,0.4,0.35,0.8].
     * AUC: pairs (0.35 vs 0.1) 1, (0.35 vs 0.4) 0, (0.8 vs both) 2 -> 3/4.
     * AP: thresholds 0.8: P=1, R=1/2; 0.4: P=1/2, R=1/2; 0.35: P=2/3, R=1; 0.1: P=1/2, R=1
     *     -> 1/2 * 1 + 0 + 1/2 * 2/3 + 0 = 5/6 = 0.8333... */
    {
        double y[] = {0, 0, 1, 1}, s[] = {0.1, 0.4, 0.35, 0.8};
        CHECK(drisk_metrics_roc_auc(4, y, s, NULL, &auc, &err) == DRISK_OK);
        CHECK(near(auc, 0.75, 1e-15));
        CHECK(drisk_metrics_average_precision(4, y, s, NULL, &ap, &err) == DRISK_OK);
        CHECK(near(ap, 5.0 / 6.0, 1e-15));
    }
    /* Ties. y = [1,0,1,0,1], s = [0.9,0.9,0.5,0.5,0.1].
     * AUC: pos 0.9: vs neg 0.9 tie 1/2, vs neg 0.5 1; pos 0.5: vs 0.9 0, vs 0.5 1/2; pos 0.1: 0
     *      -> 2/6 = 1/3.
     * AP: 0.9: tp 1 fp 1 P=1/2 R=1/3; 0.5: tp 2 fp 2 P=1/2 R=2/3; 0.1: tp 3 fp 2 P=3/5 R=1
     *     -> (1/2 + 1/2 + 3/5) / 3 = 1.6/3 = 0.5333... (scikit-learn: 0.5333333333333333) */
    {
        double y[] = {1, 0, 1, 0, 1}, s[] = {0.9, 0.9, 0.5, 0.5, 0.1};
        CHECK(drisk_metrics_roc_auc(5, y, s, NULL, &auc, &err) == DRISK_OK);
        CHECK(near(auc, 1.0 / 3.0, 1e-15));
        CHECK(drisk_metrics_average_precision(5, y, s, NULL, &ap, &err) == DRISK_OK);
        CHECK(near(ap, 1.6 / 3.0, 1e-15));
    }
    /* Weighted. y = [1,0,1,0], s = [0.8,0.6,0.6,0.2], w = [1,2,3,1]. P = 4, N = 3.
     * AUC: pos 0.8 (1): vs neg 0.6 (2) 2, vs neg 0.2 (1) 1; pos 0.6 (3): tie with neg 0.6
     *      3*2/2 = 3, vs 0.2 3 -> 9/12 = 0.75.
     * AP: 0.8: tp 1 fp 0 P=1 R=1/4; 0.6: tp 4 fp 2 P=2/3 R=1; 0.2: R=1
     *     -> 1/4 + 3/4 * 2/3 = 0.75. */
    {
        double y[] = {1, 0, 1, 0}, s[] = {0.8, 0.6, 0.6, 0.2}, w[] = {1, 2, 3, 1};
        CHECK(drisk_metrics_roc_auc(4, y, s, w, &auc, &err) == DRISK_OK);
        CHECK(near(auc, 0.75, 1e-15));
        CHECK(drisk_metrics_average_precision(4, y, s, w, &ap, &err) == DRISK_OK);
        CHECK(near(ap, 0.75, 1e-15));
    }
    /* Perfect, reversed, all tied. */
    {
        double y[] = {0, 1, 0, 1, 1}, good[] = {0.1, 0.7, 0.3, 0.9, 0.8},
               bad[] = {0.9, 0.2, 0.8, 0.1, 0.3}, tied[] = {0.4, 0.4, 0.4, 0.4, 0.4};
        CHECK(drisk_metrics_roc_auc(5, y, good, NULL, &auc, &err) == DRISK_OK && auc == 1.0);
        CHECK(drisk_metrics_average_precision(5, y, good, NULL, &ap, &err) == DRISK_OK &&
              ap == 1.0);
        CHECK(drisk_metrics_roc_auc(5, y, bad, NULL, &auc, &err) == DRISK_OK && auc == 0.0);
        /* reversed AP: positives at ranks 3, 4, 5 -> (1/3)(1/3 + 2/4 + 3/5) */
        CHECK(drisk_metrics_average_precision(5, y, bad, NULL, &ap, &err) == DRISK_OK);
        CHECK(near(ap, (1.0 / 3 + 2.0 / 4 + 3.0 / 5) / 3, 1e-15));
        CHECK(drisk_metrics_roc_auc(5, y, tied, NULL, &auc, &err) == DRISK_OK && auc == 0.5);
        /* all tied: one threshold with precision 3/5 and recall 1 */
        CHECK(drisk_metrics_average_precision(5, y, tied, NULL, &ap, &err) == DRISK_OK);
        CHECK(near(ap, 0.6, 1e-15));
    }
    /* One class absent: NAN, not an error. */
    {
        double y1[] = {1, 1, 1}, y0[] = {0, 0, 0}, s[] = {0.2, 0.5, 0.9};
        CHECK(drisk_metrics_roc_auc(3, y1, s, NULL, &auc, &err) == DRISK_OK && isnan(auc));
        CHECK(drisk_metrics_roc_auc(3, y0, s, NULL, &auc, &err) == DRISK_OK && isnan(auc));
        CHECK(drisk_metrics_average_precision(3, y0, s, NULL, &ap, &err) == DRISK_OK &&
              isnan(ap));
        CHECK(drisk_metrics_average_precision(3, y1, s, NULL, &ap, &err) == DRISK_OK &&
              ap == 1.0);
        /* positives only of weight 0 count as absent */
        double y[] = {1, 0, 0}, w[] = {0, 1, 1};
        CHECK(drisk_metrics_roc_auc(3, y, s, w, &auc, &err) == DRISK_OK && isnan(auc));
    }
    /* Extreme and signed scores (logits, denormals, -0.0 tying +0.0) sort correctly. */
    {
        double s[] = {-1e300, 1e300, -0.0, 0.0, 5e-324, -5e-324, -3.5, 3.5, 1e-300, -1e-300,
                      0.0, -0.0, 42, -42};
        double y[] = {0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1};
        size_t n = N_ELEMS(s);
        CHECK(drisk_metrics_roc_auc(n, y, s, NULL, &auc, &err) == DRISK_OK);
        CHECK_MSG(near(auc, naive_auc(n, y, s, NULL), 1e-15), "%.17g vs %.17g", auc,
                  naive_auc(n, y, s, NULL));
        CHECK(drisk_metrics_average_precision(n, y, s, NULL, &ap, &err) == DRISK_OK);
        CHECK(near(ap, naive_ap(n, y, s, NULL), 1e-15));
    }
}

/* Random scores on a coarse grid (many ties), with and without weights, several seeds and
 * sizes (including one-row and two-row inputs). */
static void test_random_ranking(void)
{
    struct drisk_error err = {0};
    const size_t sizes[] = {1, 2, 3, 17, 400, 1500};
    for (uint64_t seed = 1; seed <= 6; seed++) {
        rng_state = seed;
        for (size_t si = 0; si < N_ELEMS(sizes); si++) {
            size_t n = sizes[si];
            double *y = malloc(n * sizeof *y), *s = malloc(n * sizeof *s),
                   *w = malloc(n * sizeof *w);
            int grid = 2 + (int)(rng_next() % 40); /* from heavy ties to few */
            double base_rate = 0.05 + 0.5 * rng_unif();
            for (size_t i = 0; i < n; i++) {
                y[i] = rng_unif() < base_rate;
                /* informative but noisy; signed so the key transform sees negatives */
                double v = y[i] * 0.8 + rng_unif() - 0.9;
                s[i] = floor(v * grid) / grid;
                w[i] = 0.1 + 3 * rng_unif();
            }
            for (int weighted = 0; weighted <= 1; weighted++) {
                const double *ww = weighted ? w : NULL;
                double auc = -1, ap = -1;
                CHECK(drisk_metrics_roc_auc(n, y, s, ww, &auc, &err) == DRISK_OK);
                CHECK(drisk_metrics_average_precision(n, y, s, ww, &ap, &err) == DRISK_OK);
                double ref_auc = naive_auc(n, y, s, ww), ref_ap = naive_ap(n, y, s, ww);
                CHECK_MSG(near(auc, ref_auc, 1e-12), "seed %llu n %zu w %d: auc %.17g ref %.17g",
                          (unsigned long long)seed, n, weighted, auc, ref_auc);
                CHECK_MSG(near(ap, ref_ap, 1e-12), "seed %llu n %zu w %d: ap %.17g ref %.17g",
                          (unsigned long long)seed, n, weighted, ap, ref_ap);
            }
            free(y);
            free(s);
            free(w);
        }
    }
}

static void test_probability_metrics(void)
{
    struct drisk_error err = {0};
    double v = -1;

    /* Brier: (0.1^2 + 0.1^2 + 0.4^2 + 0.3^2) / 4 = 0.27 / 4 = 0.0675.
     * Log loss: -(ln 0.9 + ln 0.9 + ln 0.6 + ln 0.7) / 4 = 0.26955541... */
    double y[] = {0, 1, 1, 0}, p[] = {0.1, 0.9, 0.6, 0.3};
    CHECK(drisk_metrics_brier(4, y, p, NULL, &v, &err) == DRISK_OK && near(v, 0.0675, 1e-14));
    CHECK(drisk_metrics_log_loss(4, y, p, NULL, &v, &err) == DRISK_OK);
    CHECK(near(v, -(2 * log(0.9) + log(0.6) + log(0.7)) / 4, 1e-14));
    CHECK(near(v, 0.269555402, 1e-8));

    /* Clipping: a confident miss costs -ln(1e-15) = 34.5387763949..., or for a negative
     * scored 1, -ln(1 - (1 - 1e-15)) = -ln(9.992007221626409e-16) = 34.5395759...: in
     * double, 1 - 1e-15 is not exact. scikit-learn 1.2's log_loss(..., eps=1e-15) gives
     * 34.538776394910684, 34.53957599234088 and, for both rows, 34.53917619362578 (its
     * default eps is now the float64 epsilon instead). A confident hit costs about 1e-15;
     * nothing is infinite. */
    double yc[] = {1, 0}, pc[] = {0.0, 1.0}, ph[] = {1.0, 0.0};
    CHECK(drisk_metrics_log_loss(1, yc, pc, NULL, &v, &err) == DRISK_OK);
    CHECK(isfinite(v) && near(v, 34.538776394910684, 1e-14));
    CHECK(drisk_metrics_log_loss(1, yc + 1, pc + 1, NULL, &v, &err) == DRISK_OK);
    CHECK(near(v, -log(9.992007221626409e-16), 1e-14) && near(v, 34.5395759, 1e-8));
    CHECK(drisk_metrics_log_loss(2, yc, pc, NULL, &v, &err) == DRISK_OK);
    CHECK(near(v, 34.53917619362578, 1e-14));
    CHECK(drisk_metrics_log_loss(2, yc, ph, NULL, &v, &err) == DRISK_OK);
    CHECK(v > 0 && v < 1e-14);
    CHECK(drisk_metrics_brier(2, yc, pc, NULL, &v, &err) == DRISK_OK && v == 1.0);

    /* ECE. bin 0: {0.05} obs 0 -> gap 0.05 (1 row); bin 1: {0.15, 0.15} obs 1/2 -> 0.35
     * (2 rows); bin 9: {0.95 x3, 1.0} mean 0.9625 obs 3/4 -> 0.2125 (4 rows).
     * ECE = (0.05 + 2 * 0.35 + 4 * 0.2125) / 7 = 1.6 / 7. */
    double ye[] = {0, 0, 1, 1, 1, 1, 0}, pe[] = {0.05, 0.15, 0.15, 0.95, 0.95, 1.0, 0.95};
    CHECK(drisk_metrics_ece(7, ye, pe, NULL, &v, &err) == DRISK_OK && near(v, 1.6 / 7, 1e-14));
    static struct drisk_reliability rel;
    CHECK(drisk_metrics_reliability(7, ye, pe, NULL, 10, &rel, &err) == DRISK_OK);
    CHECK(rel.n_bins == 10 && rel.rows == 7 && near(rel.ece, 1.6 / 7, 1e-14));
    size_t sum = 0;
    for (size_t b = 0; b < rel.n_bins; b++)
        sum += rel.bins[b].count;
    CHECK(sum == 7);
    CHECK(rel.bins[0].count == 1 && rel.bins[1].count == 2 && rel.bins[9].count == 4);
    CHECK(near(rel.bins[1].mean_score, 0.15, 1e-14) && near(rel.bins[1].observed, 0.5, 1e-14));
    CHECK(near(rel.bins[9].mean_score, 0.9625, 1e-14) && rel.bins[9].observed == 0.75);
    CHECK(rel.bins[4].count == 0 && isnan(rel.bins[4].mean_score) && isnan(rel.bins[4].observed));
    CHECK(near(rel.bins[3].lo, 0.3, 1e-15) && near(rel.bins[3].hi, 0.4, 1e-15));

    /* Perfectly calibrated bins: ECE 0. */
    double yz[] = {1, 0, 0, 0, 1, 1, 1, 0}, pz[] = {0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75};
    CHECK(drisk_metrics_ece(8, yz, pz, NULL, &v, &err) == DRISK_OK && near(v, 0, 1e-15));

    /* Other bin counts; bins always sum to n on random data. */
    rng_state = 99;
    enum { NR = 1000 };
    static double yr[NR], pr[NR];
    for (size_t i = 0; i < NR; i++) {
        pr[i] = floor(rng_unif() * 20) / 20; /* hits the bin edges exactly */
        yr[i] = rng_unif() < pr[i];
    }
    const size_t bins[] = {1, 3, 10, 100};
    for (size_t k = 0; k < N_ELEMS(bins); k++) {
        CHECK(drisk_metrics_reliability(NR, yr, pr, NULL, bins[k], &rel, &err) == DRISK_OK);
        sum = 0;
        double wsum = 0;
        for (size_t b = 0; b < rel.n_bins; b++) {
            sum += rel.bins[b].count;
            wsum += rel.bins[b].weight;
            if (rel.bins[b].count)
                CHECK(rel.bins[b].mean_score >= rel.bins[b].lo - 1e-12 &&
                      rel.bins[b].mean_score <= rel.bins[b].hi + 1e-12);
        }
        CHECK(sum == NR && wsum == NR && rel.n_bins == bins[k]);
    }
    /* one bin: ECE is |mean score - base rate| */
    CHECK(drisk_metrics_reliability(NR, yr, pr, NULL, 1, &rel, &err) == DRISK_OK);
    double ms = 0, my = 0;
    for (size_t i = 0; i < NR; i++) {
        ms += pr[i];
        my += yr[i];
    }
    CHECK(near(rel.ece, fabs(ms - my) / NR, 1e-12));

    /* The combined call agrees with the single ones. */
    struct drisk_binary_metrics m;
    double auc, ap, br, ll, ece;
    CHECK(drisk_metrics_binary(NR, yr, pr, NULL, &m, &err) == DRISK_OK);
    CHECK(drisk_metrics_roc_auc(NR, yr, pr, NULL, &auc, &err) == DRISK_OK);
    CHECK(drisk_metrics_average_precision(NR, yr, pr, NULL, &ap, &err) == DRISK_OK);
    CHECK(drisk_metrics_brier(NR, yr, pr, NULL, &br, &err) == DRISK_OK);
    CHECK(drisk_metrics_log_loss(NR, yr, pr, NULL, &ll, &err) == DRISK_OK);
    CHECK(drisk_metrics_ece(NR, yr, pr, NULL, &ece, &err) == DRISK_OK);
    CHECK(m.rows == NR && m.positives == (size_t)my && m.weight == NR &&
          m.positive_weight == my);
    CHECK(m.auc == auc && m.pr_auc == ap && m.brier == br && m.log_loss == ll && m.ece == ece);
    CHECK(near(auc, naive_auc(NR, yr, pr, NULL), 1e-12) && auc > 0.6);
}

static void test_thresholds(void)
{
    struct drisk_error err = {0};
    struct drisk_confusion c;
    struct drisk_threshold_pick pick;
    double y[] = {0, 0, 1, 1}, s[] = {0.1, 0.4, 0.35, 0.8};

    /* score >= threshold is flagged: at 0.4 rows 0.4 and 0.8 */
    CHECK(drisk_metrics_confusion(4, y, s, NULL, 0.4, &c, &err) == DRISK_OK);
    CHECK(c.tp == 1 && c.fp == 1 && c.tn == 1 && c.fn == 1);
    CHECK(c.precision == 0.5 && c.recall == 0.5 && c.f1 == 0.5 && c.flagged == 0.5);
    CHECK(drisk_metrics_confusion(4, y, s, NULL, 0.35, &c, &err) == DRISK_OK);
    /* P = 2/3, R = 1, F1 = 2 * (2/3) / (5/3) = 0.8 */
    CHECK(c.tp == 2 && c.fp == 1 && near(c.precision, 2.0 / 3, 1e-15) && c.recall == 1);
    CHECK(near(c.f1, 0.8, 1e-15));
    CHECK(drisk_metrics_confusion(4, y, s, NULL, 0.9, &c, &err) == DRISK_OK);
    CHECK(c.tp == 0 && c.fp == 0 && isnan(c.precision) && c.recall == 0 && c.f1 == 0);

    /* recall 1 is first reached at 0.35, recall 1/2 already at 0.8 */
    CHECK(drisk_metrics_threshold_for_recall(4, y, s, NULL, 1.0, &pick, &err) == DRISK_OK);
    CHECK(pick.found && pick.at.threshold == 0.35 && pick.at.recall == 1);
    CHECK(drisk_metrics_threshold_for_recall(4, y, s, NULL, 0.5, &pick, &err) == DRISK_OK);
    CHECK(pick.found && pick.at.threshold == 0.8);
    /* precision: 0.8 -> 1, 0.4 -> 1/2, 0.35 -> 2/3, 0.1 -> 1/2; lowest reaching 0.6 is 0.35,
     * reaching 1 is 0.8 */
    CHECK(drisk_metrics_threshold_for_precision(4, y, s, NULL, 0.6, &pick, &err) == DRISK_OK);
    CHECK(pick.found && pick.at.threshold == 0.35 && near(pick.at.precision, 2.0 / 3, 1e-15));
    CHECK(drisk_metrics_threshold_for_precision(4, y, s, NULL, 1.0, &pick, &err) == DRISK_OK);
    CHECK(pick.found && pick.at.threshold == 0.8 && pick.at.tp == 1 && pick.at.fn == 1);
    /* unreachable: the top score is a negative */
    double y2[] = {1, 0}, s2[] = {0.3, 0.9};
    CHECK(drisk_metrics_threshold_for_precision(2, y2, s2, NULL, 0.9, &pick, &err) == DRISK_OK);
    CHECK(!pick.found && isnan(pick.at.threshold));
    CHECK(drisk_metrics_threshold_for_precision(4, y, s, NULL, 0, &pick, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_threshold_for_recall(4, y, s, NULL, 1.5, &pick, &err) == DRISK_EINVAL);

    /* random data against a brute force over every distinct score */
    for (uint64_t seed = 11; seed <= 14; seed++) {
        rng_state = seed;
        enum { N = 300 };
        double yr[N], sr[N], wr[N];
        for (size_t i = 0; i < N; i++) {
            yr[i] = rng_unif() < 0.3;
            sr[i] = floor((yr[i] * 0.3 + rng_unif()) * 25) / 25;
            wr[i] = 0.5 + rng_unif();
        }
        double *thr;
        size_t m = distinct_desc(N, sr, &thr);
        const double targets[] = {0.3, 0.5, 0.7, 0.9, 1.0};
        for (int weighted = 0; weighted <= 1; weighted++) {
            const double *ww = weighted ? wr : NULL;
            double pos, neg;
            naive_counts(N, yr, sr, ww, -INFINITY, &pos, &neg);
            for (size_t ti = 0; ti < N_ELEMS(targets); ti++) {
                double want_p = NAN, want_r = NAN;
                for (size_t k = 0; k < m; k++) {
                    double tp, fp;
                    naive_counts(N, yr, sr, ww, thr[k], &tp, &fp);
                    if (tp / (tp + fp) >= targets[ti])
                        want_p = thr[k]; /* keeps the lowest */
                    if (isnan(want_r) && tp / pos >= targets[ti] - 1e-12)
                        want_r = thr[k]; /* keeps the highest */
                }
                CHECK(drisk_metrics_threshold_for_precision(N, yr, sr, ww, targets[ti], &pick,
                                                            &err) == DRISK_OK);
                CHECK_MSG(pick.found == !isnan(want_p) &&
                              (!pick.found || pick.at.threshold == want_p),
                          "seed %llu precision %g: %g vs %g", (unsigned long long)seed,
                          targets[ti], pick.at.threshold, want_p);
                CHECK(drisk_metrics_threshold_for_recall(N, yr, sr, ww, targets[ti], &pick,
                                                         &err) == DRISK_OK);
                CHECK_MSG(pick.found && pick.at.threshold == want_r,
                          "seed %llu recall %g: %g vs %g", (unsigned long long)seed,
                          targets[ti], pick.at.threshold, want_r);
                /* the pick's confusion is the one at its threshold */
                CHECK(drisk_metrics_confusion(N, yr, sr, ww, pick.at.threshold, &c, &err) ==
                      DRISK_OK);
                CHECK(near(c.tp, pick.at.tp, 1e-12) && near(c.fp, pick.at.fp, 1e-12) &&
                      near(c.tn, pick.at.tn, 1e-12) && near(c.fn, pick.at.fn, 1e-12));
            }
        }
        free(thr);
    }
}

static void test_regression(void)
{
    struct drisk_error err = {0};
    double v = -1;
    /* residuals truth - pred = [-2, 2, 0]; tau 0.9: 0.1*2 + 0.9*2 + 0 = 2 -> 2/3;
     * tau 0.5: 0.5 * MAE; MAE 4/3; coverage (truth <= pred) 10<=12, 20<=18 no, 30<=30 -> 2/3;
     * |errors| sorted [0, 2, 2] -> median 2 */
    double t[] = {10, 20, 30}, q[] = {12, 18, 30};
    CHECK(drisk_metrics_pinball(3, t, q, NULL, 0.9, &v, &err) == DRISK_OK);
    CHECK(near(v, 2.0 / 3, 1e-15));
    CHECK(drisk_metrics_pinball(3, t, q, NULL, 0.1, &v, &err) == DRISK_OK);
    CHECK(near(v, 2.0 / 3, 1e-15)); /* symmetric residuals */
    CHECK(drisk_metrics_pinball(3, t, q, NULL, 0.5, &v, &err) == DRISK_OK);
    CHECK(near(v, 2.0 / 3, 1e-15));
    CHECK(drisk_metrics_mae(3, t, q, NULL, &v, &err) == DRISK_OK && near(v, 4.0 / 3, 1e-15));
    CHECK(drisk_metrics_coverage(3, t, q, NULL, &v, &err) == DRISK_OK && near(v, 2.0 / 3, 1e-15));
    CHECK(drisk_metrics_median_abs_error(3, t, q, NULL, &v, &err) == DRISK_OK && v == 2);
    /* asymmetric: truths above the prediction cost tau each, below (1 - tau) */
    double t2[] = {10, 10}, q2[] = {6, 12}; /* residuals 4, -2 */
    CHECK(drisk_metrics_pinball(2, t2, q2, NULL, 0.9, &v, &err) == DRISK_OK);
    CHECK(near(v, (0.9 * 4 + 0.1 * 2) / 2, 1e-15));
    CHECK(drisk_metrics_pinball(2, t2, q2, NULL, 0.2, &v, &err) == DRISK_OK);
    CHECK(near(v, (0.2 * 4 + 0.8 * 2) / 2, 1e-15));
    /* even count: |errors| [0, 1, 3, 4] -> (1 + 3) / 2 */
    double t3[] = {1, 2, 3, 4}, p3[] = {1, 3, 6, 0};
    CHECK(drisk_metrics_median_abs_error(4, t3, p3, NULL, &v, &err) == DRISK_OK && v == 2);
    /* weighted median: |errors| [0, 1, 3, 4] with weights [1, 0, 1, 3] -> 4 */
    double w3[] = {1, 0, 1, 3};
    CHECK(drisk_metrics_median_abs_error(4, t3, p3, w3, &v, &err) == DRISK_OK && v == 4);
    /* weights [2, 0, 1, 1]: half = 2 reached at 0, exceeded at 3 -> 1.5 (as duplicating) */
    double w4[] = {2, 0, 1, 1};
    CHECK(drisk_metrics_median_abs_error(4, t3, p3, w4, &v, &err) == DRISK_OK && v == 1.5);

    struct drisk_eta_metrics e;
    double p90[] = {15, 25, 29};
    CHECK(drisk_metrics_eta(3, t, q, p90, NULL, &e, &err) == DRISK_OK);
    CHECK(e.rows == 3 && near(e.mae_h, 4.0 / 3, 1e-15) && e.median_ae_h == 2);
    CHECK(near(e.pinball50_h, 2.0 / 3, 1e-15) && near(e.p50_coverage, 2.0 / 3, 1e-15));
    /* P90 residuals [-5, -5, 1]: (0.1*5 + 0.1*5 + 0.9*1) / 3; coverage 2/3 */
    CHECK(near(e.pinball90_h, 1.9 / 3, 1e-15) && near(e.p90_coverage, 2.0 / 3, 1e-15));
    CHECK(drisk_metrics_eta(3, t, q, NULL, NULL, &e, &err) == DRISK_OK);
    CHECK(isnan(e.pinball90_h) && isnan(e.p90_coverage) && e.median_ae_h == 2);
}

/* Rows of integer weight k give exactly what k copies of the row give. */
static void test_weights_duplicate(void)
{
    struct drisk_error err = {0};
    for (uint64_t seed = 21; seed <= 24; seed++) {
        rng_state = seed;
        enum { N = 500 };
        double y[N], s[N], w[N], t[N], p[N];
        size_t m = 0;
        for (size_t i = 0; i < N; i++) {
            y[i] = rng_unif() < 0.25;
            s[i] = floor((0.4 * y[i] + 0.6 * rng_unif()) * 30) / 30;
            w[i] = (double)(rng_next() % 4); /* 0 to 3: zero weights too */
            t[i] = floor(100 * rng_unif());
            p[i] = floor(100 * rng_unif());
            m += (size_t)w[i];
        }
        double *dy = malloc(m * sizeof *dy), *ds = malloc(m * sizeof *ds),
               *dt = malloc(m * sizeof *dt), *dp = malloc(m * sizeof *dp);
        size_t k = 0;
        for (size_t i = 0; i < N; i++) {
            for (int c = 0; c < (int)w[i]; c++, k++) {
                dy[k] = y[i];
                ds[k] = s[i];
                dt[k] = t[i];
                dp[k] = p[i];
            }
        }
        struct drisk_binary_metrics a, b;
        CHECK(drisk_metrics_binary(N, y, s, w, &a, &err) == DRISK_OK);
        CHECK(drisk_metrics_binary(m, dy, ds, NULL, &b, &err) == DRISK_OK);
        CHECK(near(a.auc, b.auc, 1e-12) && near(a.pr_auc, b.pr_auc, 1e-12));
        CHECK(near(a.brier, b.brier, 1e-12) && near(a.log_loss, b.log_loss, 1e-12));
        CHECK(near(a.ece, b.ece, 1e-12) && a.weight == (double)m && a.positive_weight ==
              b.positive_weight);
        /* and they differ from the unweighted rows, or the check would prove nothing */
        struct drisk_binary_metrics u;
        CHECK(drisk_metrics_binary(N, y, s, NULL, &u, &err) == DRISK_OK);
        CHECK(u.auc != a.auc && u.brier != a.brier);

        static struct drisk_reliability ra, rb;
        CHECK(drisk_metrics_reliability(N, y, s, w, 10, &ra, &err) == DRISK_OK);
        CHECK(drisk_metrics_reliability(m, dy, ds, NULL, 10, &rb, &err) == DRISK_OK);
        for (size_t bi = 0; bi < 10; bi++) {
            CHECK(ra.bins[bi].weight == (double)rb.bins[bi].count);
            CHECK(near(ra.bins[bi].mean_score, rb.bins[bi].mean_score, 1e-12));
            CHECK(near(ra.bins[bi].observed, rb.bins[bi].observed, 1e-12));
        }

        struct drisk_confusion ca, cb;
        CHECK(drisk_metrics_confusion(N, y, s, w, 0.5, &ca, &err) == DRISK_OK);
        CHECK(drisk_metrics_confusion(m, dy, ds, NULL, 0.5, &cb, &err) == DRISK_OK);
        CHECK(ca.tp == cb.tp && ca.fp == cb.fp && ca.tn == cb.tn && ca.fn == cb.fn);
        struct drisk_threshold_pick pa, pb;
        CHECK(drisk_metrics_threshold_for_precision(N, y, s, w, 0.6, &pa, &err) == DRISK_OK);
        CHECK(drisk_metrics_threshold_for_precision(m, dy, ds, NULL, 0.6, &pb, &err) ==
              DRISK_OK);
        CHECK(pa.found == pb.found && (!pa.found || pa.at.threshold == pb.at.threshold));
        CHECK(drisk_metrics_threshold_for_recall(N, y, s, w, 0.8, &pa, &err) == DRISK_OK);
        CHECK(drisk_metrics_threshold_for_recall(m, dy, ds, NULL, 0.8, &pb, &err) == DRISK_OK);
        CHECK(pa.found && pb.found && pa.at.threshold == pb.at.threshold);

        double va, vb;
        CHECK(drisk_metrics_mae(N, t, p, w, &va, &err) == DRISK_OK);
        CHECK(drisk_metrics_mae(m, dt, dp, NULL, &vb, &err) == DRISK_OK && near(va, vb, 1e-12));
        CHECK(drisk_metrics_median_abs_error(N, t, p, w, &va, &err) == DRISK_OK);
        CHECK(drisk_metrics_median_abs_error(m, dt, dp, NULL, &vb, &err) == DRISK_OK &&
              va == vb);
        CHECK(drisk_metrics_pinball(N, t, p, w, 0.9, &va, &err) == DRISK_OK);
        CHECK(drisk_metrics_pinball(m, dt, dp, NULL, 0.9, &vb, &err) == DRISK_OK &&
              near(va, vb, 1e-12));
        CHECK(drisk_metrics_coverage(N, t, p, w, &va, &err) == DRISK_OK);
        CHECK(drisk_metrics_coverage(m, dt, dp, NULL, &vb, &err) == DRISK_OK &&
              near(va, vb, 1e-12));
        free(dy);
        free(ds);
        free(dt);
        free(dp);
    }
}

static void test_lead_time(void)
{
    struct drisk_error err = {0};
    const int64_t H = 3600, T0 = 1735689600; /* 2025-01-01T00:00:00Z */
    /* threshold 0.5. Times in hours after T0.
     * A (7):  late, promise 100; flagged first at 20 (rows out of time order) -> lead 80
     * B (3):  late, promise 50;  never above 0.5                               -> missed
     * C (9):  late, promise 200; flagged at 190                                -> lead 10
     * D (1):  on time, flagged at 20                                           -> false alarm
     * E (5):  on time, never flagged
     * F (11): late (lost), promise 100, flagged only at 130, after the promise -> lead -30
     * positives 4, flagged 3 (recall 3/4), flagged negatives 1 (precision 3/4),
     * leads [80, 10, -30]: median 10, mean 20, 2 of them before the promise. */
    struct row {
        int64_t ship, as_of_h, promised_h;
        double score, y;
    } rows[] = {
        {7, 10, 100, 0.2, 1}, {3, 10, 50, 0.1, 1},   {7, 40, 100, 0.7, 1},
        {1, 20, 100, 0.6, 0}, {7, 60, 100, 0.9, 1},  {9, 195, 200, 0.9, 1},
        {5, 10, 80, 0.1, 0},  {7, 20, 100, 0.6, 1},  {3, 30, 50, 0.4, 1},
        {9, 190, 200, 0.8, 1}, {11, 130, 100, 0.95, 1}, {5, 30, 80, 0.2, 0},
        {9, 100, 200, 0.3, 1}, {1, 40, 100, 0.2, 0},
    };
    enum { N = sizeof rows / sizeof rows[0] };
    int64_t ship[N], as_of[N], promised[N];
    double score[N], y[N];
    for (size_t i = 0; i < N; i++) {
        ship[i] = rows[i].ship;
        as_of[i] = T0 + rows[i].as_of_h * H;
        promised[i] = T0 + rows[i].promised_h * H;
        score[i] = rows[i].score;
        y[i] = rows[i].y;
    }
    struct drisk_lead_input in = {N, ship, as_of, promised, score, y};
    struct drisk_lead_time lt;
    CHECK(drisk_metrics_lead_time(&in, 0.5, &lt, &err) == DRISK_OK);
    CHECK(lt.shipments == 6 && lt.positives == 4 && lt.flagged_positives == 3);
    CHECK(lt.flagged_negatives == 1 && lt.flagged_before_promise == 2);
    CHECK(lt.precision == 0.75 && lt.recall == 0.75 && lt.threshold == 0.5);
    CHECK(lt.median_lead_h == 10 && lt.mean_lead_h == 20);

    /* threshold 0.85: A first at 60 (lead 40), C at 195 (lead 5), F at 130 (-30); D not
     * flagged. leads [40, 5, -30] -> median 5; precision 1 */
    CHECK(drisk_metrics_lead_time(&in, 0.85, &lt, &err) == DRISK_OK);
    CHECK(lt.flagged_positives == 3 && lt.flagged_negatives == 0 && lt.precision == 1);
    CHECK(lt.median_lead_h == 5 && near(lt.mean_lead_h, 15.0 / 3, 1e-15));
    /* threshold 0.92: only F -> median = mean = -30, none before the promise */
    CHECK(drisk_metrics_lead_time(&in, 0.92, &lt, &err) == DRISK_OK);
    CHECK(lt.flagged_positives == 1 && lt.median_lead_h == -30 && lt.flagged_before_promise == 0);
    CHECK(near(lt.recall, 0.25, 1e-15));
    /* nothing flagged: rates and leads undefined, counts still right */
    CHECK(drisk_metrics_lead_time(&in, 2.0, &lt, &err) == DRISK_OK);
    CHECK(lt.shipments == 6 && lt.positives == 4 && lt.flagged_positives == 0);
    CHECK(isnan(lt.precision) && lt.recall == 0 && isnan(lt.median_lead_h) &&
          isnan(lt.mean_lead_h));
    /* an even number of leads: with B's row at 10 raised to 0.7, threshold 0.65 flags A at
     * 40 (lead 60), B at 10 (40), C at 190 (10), F (-30), not D -> median (10 + 40) / 2 */
    score[1] = 0.7;
    CHECK(drisk_metrics_lead_time(&in, 0.65, &lt, &err) == DRISK_OK);
    CHECK(lt.flagged_positives == 4 && lt.median_lead_h == 25 && lt.recall == 1);

    /* rows of one shipment that disagree are refused */
    y[3] = 1; /* shipment 1 row at 20 now says late, its row at 40 on time */
    err.msg[0] = '\0';
    CHECK(drisk_metrics_lead_time(&in, 0.5, &lt, &err) == DRISK_EINVAL && err.msg[0]);
    CHECK(strstr(err.msg, "shipment 1") != NULL);
    y[3] = 0;
    promised[0] += H;
    CHECK(drisk_metrics_lead_time(&in, 0.5, &lt, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "promised_at") != NULL);
    promised[0] -= H;
    in.n = 0;
    CHECK(drisk_metrics_lead_time(&in, 0.5, &lt, &err) == DRISK_EINVAL);
}

/* Random shipments against a naive per-shipment scan. */
static void test_lead_time_random(void)
{
    struct drisk_error err = {0};
    enum { N = 600, SHIPS = 60 };
    static int64_t ship[N], as_of[N], promised[N];
    static double score[N], y[N];
    int64_t ship_promised[SHIPS];
    double ship_y[SHIPS];
    for (uint64_t seed = 31; seed <= 34; seed++) {
        rng_state = seed;
        for (size_t k = 0; k < SHIPS; k++) {
            ship_promised[k] = 1700000000 + (int64_t)(rng_next() % 1000) * 3600;
            ship_y[k] = rng_unif() < 0.4;
        }
        for (size_t i = 0; i < N; i++) {
            size_t k = rng_next() % SHIPS;
            ship[i] = (int64_t)k * 1000003 - 7000000; /* negative ids too */
            promised[i] = ship_promised[k];
            y[i] = ship_y[k];
            as_of[i] = promised[i] - 3600 * 400 + (int64_t)(rng_next() % (3600 * 500));
            score[i] = floor((0.3 * y[i] + 0.7 * rng_unif()) * 20) / 20;
        }
        struct drisk_lead_input in = {N, ship, as_of, promised, score, y};
        struct drisk_lead_time lt;
        const double thr = 0.6;
        CHECK(drisk_metrics_lead_time(&in, thr, &lt, &err) == DRISK_OK);
        size_t ships = 0, pos = 0, fpos = 0, fneg = 0;
        double leads[SHIPS], sum = 0;
        for (size_t k = 0; k < SHIPS; k++) {
            int seen = 0, flagged = 0;
            int64_t first = INT64_MAX;
            for (size_t i = 0; i < N; i++) {
                if (ship[i] != (int64_t)k * 1000003 - 7000000)
                    continue;
                seen = 1;
                if (score[i] >= thr && as_of[i] < first) {
                    flagged = 1;
                    first = as_of[i];
                }
            }
            if (!seen)
                continue;
            ships++;
            if (ship_y[k] == 1) {
                pos++;
                if (flagged) {
                    leads[fpos] = (double)(ship_promised[k] - first) / 3600;
                    sum += leads[fpos++];
                }
            } else if (flagged) {
                fneg++;
            }
        }
        qsort(leads, fpos, sizeof leads[0], cmp_desc);
        double med = fpos % 2 ? leads[fpos / 2] : (leads[fpos / 2 - 1] + leads[fpos / 2]) / 2;
        CHECK(lt.shipments == ships && lt.positives == pos);
        CHECK(lt.flagged_positives == fpos && lt.flagged_negatives == fneg);
        CHECK(fpos > 2 && lt.median_lead_h == med && near(lt.mean_lead_h, sum / fpos, 1e-12));
    }
}

static void test_bad_input(void)
{
    struct drisk_error err;
    double v = 123;
    double y[] = {0, 1, 1}, s[] = {0.2, 0.7, 0.9}, w[] = {1, 1, 1};

    err.msg[0] = '\0';
    CHECK(drisk_metrics_roc_auc(0, y, s, NULL, &v, &err) == DRISK_EINVAL && err.msg[0]);
    double ybad[] = {0, 2, 1};
    err.msg[0] = '\0';
    CHECK(drisk_metrics_roc_auc(3, ybad, s, NULL, &v, &err) == DRISK_EINVAL);
    CHECK(strstr(err.msg, "row 1") != NULL);
    double snan[] = {0.2, NAN, 0.9};
    CHECK(drisk_metrics_average_precision(3, y, snan, NULL, &v, &err) == DRISK_EINVAL);
    double sinf[] = {0.2, INFINITY, 0.9};
    CHECK(drisk_metrics_roc_auc(3, y, sinf, NULL, &v, &err) == DRISK_EINVAL);
    /* probabilities outside [0, 1]: fine for ranking, refused for calibration */
    double slogit[] = {-2, 0.5, 3};
    CHECK(drisk_metrics_roc_auc(3, y, slogit, NULL, &v, &err) == DRISK_OK && v == 1);
    v = 123;
    CHECK(drisk_metrics_brier(3, y, slogit, NULL, &v, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_log_loss(3, y, slogit, NULL, &v, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_ece(3, y, slogit, NULL, &v, &err) == DRISK_EINVAL);
    struct drisk_binary_metrics m;
    CHECK(drisk_metrics_binary(3, y, slogit, NULL, &m, &err) == DRISK_EINVAL);
    double wneg[] = {1, -1, 1}, wzero[] = {0, 0, 0}, wnan[] = {1, NAN, 1};
    CHECK(drisk_metrics_roc_auc(3, y, s, wneg, &v, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_brier(3, y, s, wzero, &v, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_mae(3, s, s, wnan, &v, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_mae(3, s, snan, w, &v, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_pinball(3, s, s, NULL, 1.0, &v, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_pinball(3, s, s, NULL, 0.0, &v, &err) == DRISK_EINVAL);
    static struct drisk_reliability rel;
    CHECK(drisk_metrics_reliability(3, y, s, NULL, 0, &rel, &err) == DRISK_EINVAL);
    CHECK(drisk_metrics_reliability(3, y, s, NULL, DRISK_RELIABILITY_MAX_BINS + 1, &rel, &err) ==
          DRISK_EINVAL);
    struct drisk_confusion c;
    CHECK(drisk_metrics_confusion(3, y, s, NULL, NAN, &c, &err) == DRISK_EINVAL);
    CHECK(v == 123); /* nothing written on failure */
    /* a NULL error buffer is allowed */
    CHECK(drisk_metrics_roc_auc(3, ybad, s, NULL, &v, NULL) == DRISK_EINVAL);
}

/* The paired shipment bootstrap: a model against itself differs by exactly 0; an
 * informative model against noise wins with an interval clear of 0; a shipment's rows
 * move together (a resample has whole shipments). */
static void test_bootstrap(void)
{
    enum { N = 3000 };
    static double y[N], good[N], noise[N], p90[N];
    static int64_t ship[N];
    struct drisk_paired_ci ci;
    struct drisk_error err;
    uint64_t s = 7;
    for (size_t i = 0; i < N; i++) {
        ship[i] = (int64_t)(i / 3) * 17 % 1000; /* 1000 shipments of 3 rows, out of order */
        y[i] = ship[i] % 4 == 0;
        double u = (double)(drisk_splitmix64(&s) >> 11) / 9007199254740992.0;
        noise[i] = 0.02 + 0.96 * u;
        good[i] = y[i] ? 0.55 + 0.4 * u : 0.05 + 0.4 * u;
        p90[i] = 1.0;
    }
    CHECK(drisk_bootstrap_paired(N, ship, y, good, NULL, good, NULL, DRISK_TARGET_LATE, 100, 1,
                                 &ci, &err) == DRISK_OK);
    CHECK(ci.reps == 100 && ci.d_auc.value == 0 && ci.d_auc.lo == 0 && ci.d_auc.hi == 0 &&
          ci.d_loss.lo == 0 && ci.d_loss.hi == 0);
    CHECK(drisk_bootstrap_paired(N, ship, y, noise, NULL, good, NULL, DRISK_TARGET_LATE, 100, 1,
                                 &ci, &err) == DRISK_OK);
    CHECK_MSG(ci.d_auc.value > 0.4 && ci.d_auc.lo > 0.3 && ci.d_auc.hi < 0.6 &&
              ci.d_loss.hi < 0 && ci.d_loss.lo <= ci.d_loss.value &&
              ci.d_loss.value <= ci.d_loss.hi, "AUC %+.3f [%+.3f, %+.3f] loss %+.3f [%+.3f, %+.3f]",
              ci.d_auc.value, ci.d_auc.lo, ci.d_auc.hi, ci.d_loss.value, ci.d_loss.lo,
              ci.d_loss.hi);
    /* the same seed, the same interval; eta compares pinball losses and has no AUC */
    struct drisk_paired_ci again;
    CHECK(drisk_bootstrap_paired(N, ship, y, noise, NULL, good, NULL, DRISK_TARGET_LATE, 100, 1,
                                 &again, &err) == DRISK_OK && again.d_loss.lo == ci.d_loss.lo);
    CHECK(drisk_bootstrap_paired(N, ship, y, noise, p90, good, p90, DRISK_TARGET_ETA, 50, 1,
                                 &ci, &err) == DRISK_OK && isnan(ci.d_auc.value) &&
          ci.d_loss.lo <= ci.d_loss.hi);
    CHECK(drisk_bootstrap_paired(N, ship, y, noise, NULL, good, NULL, DRISK_TARGET_ETA, 50, 1,
                                 &ci, &err) == DRISK_EINVAL);
    CHECK(drisk_bootstrap_paired(0, ship, y, noise, NULL, good, NULL, DRISK_TARGET_LATE, 50, 1,
                                 &ci, &err) == DRISK_EINVAL);
}

int main(void)
{
    test_bootstrap();
    test_hand_ranking();
    test_random_ranking();
    test_probability_metrics();
    test_thresholds();
    test_regression();
    test_weights_duplicate();
    test_lead_time();
    test_lead_time_random();
    test_bad_input();
    CHECK_DONE();
}
