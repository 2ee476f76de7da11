/* drisk's logistic regression on an exported snapshot matrix (drisk export), to set beside
 * scikit-learn's LogisticRegression(lbfgs) on the same file (bench/speed_logreg.py): the
 * same split (shipments created in the last 15% of the training period validate), the
 * same objective (mean log loss + ||w||^2 / (2 C n), intercept free, standardized
 * features, no class weights), the same stopping rule (max |gradient| < 1e-4, sklearn's
 * default tol). Reports the fit's time and peak RSS and the validation log loss.
 * usage: bench_logreg TRAIN.csv UNTIL(YYYY-MM-DD) [C] [TOL] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/csv.h"
#include "engine/strmap.h"
#include "engine/timeutil.h"
#include "models/model.h"
#include "training/metrics.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Resets the kernel's peak-RSS mark (VmHWM), so the next reading covers the fit alone. */
static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static double peak_mib(void)
{
    char line[256];
    double kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_logreg TRAIN.csv UNTIL [C]\n");
        return 2;
    }
    double C = argc > 3 ? atof(argv[3]) : 1.0;
    int64_t until;
    const char *why;
    if (drisk_date_or_ts_parse(argv[2], &until, &why)) {
        fprintf(stderr, "bad UNTIL: %s\n", why);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    struct drisk_csv *csv = f ? drisk_csv_create(f) : NULL;
    struct drisk_csv_record rec;
    struct drisk_error err;
    if (!csv || drisk_csv_next(csv, &rec, &err) != 1) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    size_t d = (size_t)rec.n_fields - 4, n = 0, cap = 1 << 20;
    double *x = malloc(cap * d * sizeof *x), *y = malloc(cap * sizeof *y);
    int64_t *as_of = malloc(cap * sizeof *as_of);
    char **ship = malloc(cap * sizeof *ship);
    double t0 = now_s();
    while (drisk_csv_next(csv, &rec, &err) == 1) {
        if (n == cap) {
            cap *= 2;
            x = realloc(x, cap * d * sizeof *x);
            y = realloc(y, cap * sizeof *y);
            as_of = realloc(as_of, cap * sizeof *as_of);
            ship = realloc(ship, cap * sizeof *ship);
        }
        ship[n] = strdup(rec.field[0]);
        drisk_ts_parse(rec.field[2], rec.len[2], &as_of[n], &why);
        y[n] = atof(rec.field[3]);
        for (size_t k = 0; k < d; k++)
            x[n * d + k] = strtod(rec.field[4 + k], NULL);
        n++;
    }
    drisk_csv_free(csv);
    fclose(f);
    double load_s = now_s() - t0;
    /* each shipment's creation = its first as_of; the last 15% of the period validates */
    struct drisk_strmap *ids = drisk_strmap_create(SIZE_MAX);
    int64_t *created = malloc(n * sizeof *created), *sid = malloc(n * sizeof *sid);
    int64_t first = INT64_MAX, n_ship = 0;
    for (size_t i = 0; i < n; i++) {
        if (!drisk_strmap_find(ids, ship[i], &sid[i])) {
            sid[i] = n_ship;
            created[n_ship++] = INT64_MAX;
            if (drisk_strmap_put(ids, ship[i], sid[i])) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
        }
        if (as_of[i] < created[sid[i]])
            created[sid[i]] = as_of[i];
        if (as_of[i] < first)
            first = as_of[i];
    }
    int64_t cut = first + (int64_t)(0.85 * (double)(until - first));
    size_t nf = 0, nv = 0;
    double *xf = malloc(n * d * sizeof *xf), *yf = malloc(n * sizeof *yf);
    double *xv = malloc(n * d * sizeof *xv), *yv = malloc(n * sizeof *yv);
    for (size_t i = 0; i < n; i++) {
        int valid = created[sid[i]] >= cut;
        memcpy((valid ? xv + nv * d : xf + nf * d), x + i * d, d * sizeof *x);
        if (valid)
            yv[nv++] = y[i];
        else
            yf[nf++] = y[i];
    }
    free(x);
    struct drisk_dataset train = { nf, d, xf, yf, NULL }, valid = { nv, d, xv, yv, NULL };
    struct drisk_fit_options fo;
    drisk_fit_options_init(&fo, DRISK_TARGET_LATE);
    fo.l2 = 1.0 / (C * (double)nf);
    fo.tol = argc > 4 ? atof(argv[4]) : 1e-4;
    struct drisk_model *model = NULL;
    reset_peak();
    double before = peak_mib(), t1 = now_s();
    if (drisk_model_fit(drisk_model_ops_find("logreg"), &train, &valid, &fo, &model, &err)) {
        fprintf(stderr, "fit: %s\n", err.msg);
        return 1;
    }
    double fit_s = now_s() - t1, peak = peak_mib();
    struct drisk_prediction *pr = malloc(nv * sizeof *pr);
    double *p = malloc(nv * sizeof *p);
    drisk_model_predict(model, xv, nv, pr, &err);
    for (size_t i = 0; i < nv; i++)
        p[i] = pr[i].prob;
    struct drisk_binary_metrics bm;
    drisk_metrics_binary(nv, yv, p, NULL, &bm, &err);
    const char *it = drisk_model_meta_param(&model->meta, "iterations");
    printf("drisk logreg on %zu x %zu, validated on %zu: fit %.2f s, %s iterations, validation "
           "log loss %.5f, AUC %.4f; peak RSS %.0f MiB (%.0f MiB with the data loaded); CSV load "
           "%.1f s\n", nf, d, nv, fit_s, it ? it : "?", bm.log_loss, bm.auc, peak, before, load_s);
    drisk_model_free(model);
    return 0;
}
