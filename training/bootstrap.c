/* Cluster bootstrap of paired model comparisons (training/bootstrap.h). */
#include "training/bootstrap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/format.h"
#include "training/metrics.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

size_t drisk_unique_i64(int64_t *v, size_t n)
{
    size_t k = 0;
    qsort(v, n, sizeof *v, cmp_i64);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || v[i] != v[k - 1])
            v[k++] = v[i];
    return k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The 2.5 % and 97.5 % percentiles of v[0..n) (sorted in place). */
static void percentiles(double *v, int n, struct drisk_ci *ci)
{
    if (n == 0) {
        ci->lo = ci->hi = NAN;
        return;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    ci->lo = v[(int)floor(0.025 * (n - 1))];
    ci->hi = v[(int)ceil(0.975 * (n - 1))];
}

/* AUC (NAN for eta) and loss of one model's predictions under weights w. */
static enum drisk_status figures(size_t n, const double *y, const double *p, const double *p90,
                                 const double *w, enum drisk_target target, double *auc,
                                 double *loss, struct drisk_error *err)
{
    enum drisk_status rc;
    if (target == DRISK_TARGET_ETA) {
        double l50, l90;
        if ((rc = drisk_metrics_pinball(n, y, p, w, 0.5, &l50, err)) ||
            (rc = drisk_metrics_pinball(n, y, p90, w, 0.9, &l90, err)))
            return rc;
        *auc = NAN;
        *loss = (l50 + l90) / 2.0;
        return DRISK_OK;
    }
    if ((rc = drisk_metrics_roc_auc(n, y, p, w, auc, err)))
        return rc;
    return drisk_metrics_log_loss(n, y, p, w, loss, err);
}

enum drisk_status drisk_bootstrap_paired(size_t n, const int64_t *shipment, const double *y,
                                         const double *a, const double *a90, const double *b,
                                         const double *b90, enum drisk_target target, int reps,
                                         uint64_t seed, struct drisk_paired_ci *out,
                                         struct drisk_error *err)
{
    enum drisk_status rc;
    int eta = target == DRISK_TARGET_ETA;
    if (n == 0)
        return drisk_error_set(err, DRISK_EINVAL, "bootstrap: no rows to compare");
    if (eta && (!a90 || !b90))
        return drisk_error_set(err, DRISK_EINVAL, "bootstrap: eta needs both models' P90");
    int64_t *ids = malloc(n * sizeof *ids);
    size_t *cluster = malloc(n * sizeof *cluster);
    double *w = malloc(n * sizeof *w), *d_auc = malloc((size_t)(reps + 1) * sizeof *d_auc),
           *d_loss = malloc((size_t)(reps + 1) * sizeof *d_loss);
    unsigned *count = NULL;
    if (!ids || !cluster || !w || !d_auc || !d_loss) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "bootstrap: out of memory for %zu rows", n);
        goto out;
    }
    /* dense cluster numbers: the rank of each row's shipment among the distinct ones */
    memcpy(ids, shipment, n * sizeof *ids);
    size_t k = drisk_unique_i64(ids, n);
    for (size_t i = 0; i < n; i++)
        cluster[i] = (size_t)((const int64_t *)bsearch(&shipment[i], ids, k, sizeof *ids,
                                                        cmp_i64) - ids);
    if (!(count = malloc(k * sizeof *count))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "bootstrap: out of memory");
        goto out;
    }
    double auc_a, auc_b, loss_a, loss_b;
    if ((rc = figures(n, y, a, a90, NULL, target, &auc_a, &loss_a, err)) ||
        (rc = figures(n, y, b, b90, NULL, target, &auc_b, &loss_b, err)))
        goto out;
    out->d_auc.value = auc_b - auc_a;
    out->d_loss.value = loss_b - loss_a;
    uint64_t rng = seed;
    int used = 0, used_auc = 0;
    for (int r = 0; r < reps; r++) {
        memset(count, 0, k * sizeof *count);
        for (size_t j = 0; j < k; j++)
            count[drisk_splitmix64(&rng) % k]++;
        for (size_t i = 0; i < n; i++)
            w[i] = count[cluster[i]];
        double wa, wb, la, lb;
        struct drisk_error skip;
        /* a resample with one class only, or no weight at all, says nothing: skipped */
        if (figures(n, y, a, a90, w, target, &wa, &la, &skip) ||
            figures(n, y, b, b90, w, target, &wb, &lb, &skip))
            continue;
        d_loss[used++] = lb - la;
        if (!isnan(wa) && !isnan(wb))
            d_auc[used_auc++] = wb - wa;
    }
    percentiles(d_loss, used, &out->d_loss);
    percentiles(d_auc, used_auc, &out->d_auc);
    if (eta)
        out->d_auc.value = out->d_auc.lo = out->d_auc.hi = NAN;
    out->reps = used;
    rc = DRISK_OK;
out:
    free(ids);
    free(cluster);
    free(w);
    free(d_auc);
    free(d_loss);
    free(count);
    return rc;
}
