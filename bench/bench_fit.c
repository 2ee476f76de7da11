/* One drisk learner on an exported snapshot matrix (drisk export), to set beside
 * scikit-learn on the same file (bench/speed_logreg.py, bench/speed_nonlinear.py): the
 * same split (shipments created in the last 15% of the training period validate), no
 * class weights, no calibration (the raw model's validation log loss is what the
 * baselines report too). Reports the fit's time and peak RSS, the validation log loss,
 * AUC and PR-AUC, and the scoring latency of one snapshot at a time (median and p99 over
 * up to 100,000 validation rows, through drisk_model_predict as the server calls it).
 *
 * usage: bench_fit LEARNER TRAIN.csv UNTIL(YYYY-MM-DD) [key=value ...]
 *   logreg: C=1 (the L2 strength is 1 / (C n), scikit-learn's objective) tol=1e-4
 *   mlp: hidden=64,32 epochs=30 lr=0.001 batch=512 l2=1e-6 patience=2 seed=1 members=1
 *   svm_rbf, svm_linear: svm_c=1 svm_max_rows=20000 gamma=0 (0: "scale")
 *   gbdt: trees=1000 depth=6 eta=0.05 huber=0.3 (eta's pseudo-Huber delta; 0: squared error)
 *   any: balanced=1 (class weights) json=FILE (the figures as one JSON object)
 *        test=TEST.csv (also the AUC, PR-AUC and log loss on a later exported matrix)
 *        scores=FILE (with test: "shipment_id,raw score" per test row, for blends) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"
#include "base/strmap.h"
#include "base/timeutil.h"
#include "base/log.h"
#include "models/model.h"
#include "training/metrics.h"

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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* An exported snapshot matrix: shipment ids, as_of, labels and the features. */
struct matrix {
    size_t n, d;
    double *x, *y;
    int64_t *as_of;
    char **ship;
};

static int load_matrix(const char *path, struct matrix *m)
{
    FILE *f = fopen(path, "rb");
    struct drisk_csv *csv = f ? drisk_csv_create(f) : NULL;
    struct drisk_csv_record rec;
    struct drisk_error err;
    const char *why;
    if (!csv || drisk_csv_next(csv, &rec, &err) != 1) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    size_t d = (size_t)rec.n_fields - 4, n = 0, cap = 1 << 20;
    double *x = malloc(cap * d * sizeof *x), *y = malloc(cap * sizeof *y);
    int64_t *as_of = malloc(cap * sizeof *as_of);
    char **ship = malloc(cap * sizeof *ship);
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
    *m = (struct matrix){ n, d, x, y, as_of, ship };
    return 0;
}

/* Applies key=value to fo (and C), or returns -1. */
static int set_option(const char *kv, struct drisk_fit_options *fo, double *C, const char **json,
                      const char **test, const char **scores)
{
    const char *eq = strchr(kv, '=');
    if (!eq)
        return -1;
    size_t k = (size_t)(eq - kv);
    const char *v = eq + 1;
#define KEY(name) (k == strlen(name) && strncmp(kv, name, k) == 0)
    if (KEY("C"))
        *C = atof(v);
    else if (KEY("tol"))
        fo->tol = atof(v);
    else if (KEY("l2"))
        fo->l2 = atof(v);
    else if (KEY("epochs"))
        fo->epochs = atoi(v);
    else if (KEY("lr"))
        fo->learning_rate = atof(v);
    else if (KEY("batch"))
        fo->batch_size = atoi(v);
    else if (KEY("patience"))
        fo->patience = atoi(v);
    else if (KEY("members"))
        fo->mlp_members = atoi(v);
    else if (KEY("trees"))
        fo->gbdt_trees = atoi(v);
    else if (KEY("depth"))
        fo->gbdt_depth = atoi(v);
    else if (KEY("eta"))
        fo->gbdt_eta = atof(v);
    else if (KEY("huber"))
        fo->gbdt_huber_delta = atof(v);
    else if (KEY("seed"))
        fo->seed = (uint64_t)atoll(v);
    else if (KEY("svm_c"))
        fo->svm_c = atof(v);
    else if (KEY("svm_max_rows"))
        fo->svm_max_rows = (size_t)atoll(v);
    else if (KEY("gamma"))
        fo->svm_gamma = atof(v);
    else if (KEY("balanced"))
        fo->class_weight_balanced = atoi(v);
    else if (KEY("json"))
        *json = v;
    else if (KEY("test"))
        *test = v;
    else if (KEY("scores"))
        *scores = v;
    else if (KEY("hidden")) {
        fo->n_hidden = 0;
        for (const char *p = v; *p && fo->n_hidden < 3;) {
            fo->hidden[fo->n_hidden++] = atoi(p);
            p = strchr(p, ',');
            if (!p)
                break;
            p++;
        }
    } else
        return -1;
#undef KEY
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_fit LEARNER TRAIN.csv UNTIL [key=value ...]\n");
        return 2;
    }
    const struct drisk_model_ops *ops = drisk_model_ops_find(argv[1]);
    if (!ops || !ops->classification) {
        fprintf(stderr, "bench_fit: %s is not a classification learner\n", argv[1]);
        return 2;
    }
    struct drisk_fit_options fo;
    drisk_fit_options_init(&fo, DRISK_TARGET_LATE);
    fo.tol = 1e-4;
    fo.l2 = strcmp(ops->name, "mlp") == 0 ? 1e-6 : fo.l2;
    double C = 0.0;
    const char *json = NULL, *test = NULL, *scores = NULL;
    for (int i = 4; i < argc; i++)
        if (set_option(argv[i], &fo, &C, &json, &test, &scores)) {
            fprintf(stderr, "bench_fit: bad option %s\n", argv[i]);
            return 2;
        }
    int64_t until;
    const char *why;
    if (drisk_date_or_ts_parse(argv[3], &until, &why)) {
        fprintf(stderr, "bad UNTIL: %s\n", why);
        return 2;
    }
    double t0 = drisk_monotonic_s();
    struct matrix all;
    if (load_matrix(argv[2], &all))
        return 1;
    size_t d = all.d, n = all.n;
    double *x = all.x, *y = all.y;
    int64_t *as_of = all.as_of;
    char **ship = all.ship;
    struct drisk_error err;
    double load_s = drisk_monotonic_s() - t0;
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
    if (C > 0.0)
        fo.l2 = 1.0 / (C * (double)nf);
    struct drisk_model *model = NULL;
    reset_peak();
    double before = peak_mib(), t1 = drisk_monotonic_s();
    if (drisk_model_fit(ops, &train, &valid, &fo, &model, &err)) {
        fprintf(stderr, "fit: %s\n", err.msg);
        return 1;
    }
    double fit_s = drisk_monotonic_s() - t1, peak = peak_mib();
    struct drisk_prediction *pr = malloc(nv * sizeof *pr);
    double *p = malloc(nv * sizeof *p);
    drisk_model_predict(model, xv, nv, pr, &err);
    for (size_t i = 0; i < nv; i++)
        p[i] = pr[i].prob;
    struct drisk_binary_metrics bm;
    drisk_metrics_binary(nv, yv, p, NULL, &bm, &err);
    /* one snapshot at a time, as the server scores */
    size_t nl = nv < 100000 ? nv : 100000;
    double *lat = malloc(nl * sizeof *lat);
    for (size_t i = 0; i < nl; i++) {
        double a = drisk_monotonic_s();
        drisk_model_predict(model, xv + i * d, 1, pr, &err);
        lat[i] = (drisk_monotonic_s() - a) * 1e6;
    }
    qsort(lat, nl, sizeof *lat, cmp_double);
    double lat50 = lat[nl / 2], lat99 = lat[(size_t)(0.99 * (double)(nl - 1))];
    const char *it = drisk_model_meta_param(&model->meta, "iterations");
    if (!it)
        it = drisk_model_meta_param(&model->meta, "trees");
    const char *ep = drisk_model_meta_param(&model->meta, "validation_checks");
    const char *sv = drisk_model_meta_param(&model->meta, "support_vectors");
    printf("drisk %s on %zu x %zu, validated on %zu: fit %.2f s (%s %s), validation log loss "
           "%.5f, AUC %.4f, PR-AUC %.4f; peak RSS %.0f MiB (%.0f MiB with the data loaded); "
           "scoring one snapshot: median %.1f us, p99 %.1f us over %zu; CSV load %.1f s\n",
           ops->name, nf, d, nv, fit_s, it ? "iterations" : ep ? "validation checks" : "support vectors",
           it ? it : ep ? ep : sv ? sv : "?", bm.log_loss, bm.auc, bm.pr_auc, peak, before,
           lat50, lat99, nl, load_s);
    if (test) { /* the raw (uncalibrated) model on a later matrix: ranking figures */
        struct matrix t;
        if (load_matrix(test, &t))
            return 1;
        if (t.d != d) {
            fprintf(stderr, "%s has %zu features, the training matrix %zu\n", test, t.d, d);
            return 1;
        }
        struct drisk_prediction *tp = malloc(t.n * sizeof *tp);
        double *q = malloc(t.n * sizeof *q);
        struct drisk_binary_metrics tm;
        if (drisk_model_predict(model, t.x, t.n, tp, &err)) {
            fprintf(stderr, "predict: %s\n", err.msg);
            return 1;
        }
        for (size_t i = 0; i < t.n; i++)
            q[i] = tp[i].prob;
        drisk_metrics_binary(t.n, t.y, q, NULL, &tm, &err);
        FILE *df = scores ? fopen(scores, "w") : NULL;
        for (size_t i = 0; df && i < t.n; i++)
            fprintf(df, "%s,%.9g\n", t.ship[i], tp[i].score);
        if (df)
            fclose(df);
        printf("test %s (%zu rows): AUC %.4f, PR-AUC %.4f, log loss %.5f (uncalibrated)\n", test,
               t.n, tm.auc, tm.pr_auc, tm.log_loss);
        free(tp);
        free(q);
    }
    if (json) {
        FILE *j = fopen(json, "w");
        if (!j) {
            fprintf(stderr, "cannot write %s\n", json);
            return 1;
        }
        fprintf(j, "{\"learner\": \"%s\", \"train_rows\": %zu, \"valid_rows\": %zu, \"features\": "
                "%zu, \"fit_s\": %.3f, \"peak_rss_mib\": %.0f, \"rss_before_mib\": %.0f, "
                "\"valid_log_loss\": %.6f, \"valid_auc\": %.6f, \"valid_pr_auc\": %.6f, "
                "\"score_us_p50\": %.2f, \"score_us_p99\": %.2f, \"detail\": \"%s\"}\n",
                ops->name, nf, nv, d, fit_s, peak, before, bm.log_loss, bm.auc, bm.pr_auc, lat50,
                lat99, it ? it : ep ? ep : sv ? sv : "");
        fclose(j);
    }
    free(lat);
    drisk_model_free(model);
    return 0;
}
