/* The analyst's tables (training/tables.h). */
#include "training/tables.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "engine/shipment.h"
#include "training/metrics.h"

#define HOUR 3600.0
#define WEEK_S (7 * 86400LL)
#define SLICE_REPS 100
#define WINDOW_REPS 200

static const double sweep_at[DRISK_SWEEP_N] = { 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 };

static const struct drisk_eval_row *g_rows; /* qsort has no context: one sort at a time */

static int by_shipment_time(const void *a, const void *b)
{
    const struct drisk_eval_row *x = &g_rows[*(const size_t *)a], *y = &g_rows[*(const size_t *)b];
    if (x->shipment != y->shipment)
        return (x->shipment > y->shipment) - (x->shipment < y->shipment);
    return (x->as_of > y->as_of) - (x->as_of < y->as_of);
}

/* The Monday 00:00 UTC starting t's week (1970-01-01 was a Thursday). */
static int64_t week_of(int64_t t)
{
    int64_t day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t dow = ((day + 3) % 7 + 7) % 7; /* 0 = Monday */
    return (day - dow) * 86400;
}

static int by_score_desc(const void *a, const void *b)
{
    double x = g_rows[*(const size_t *)a].score, y = g_rows[*(const size_t *)b].score;
    return (x < y) - (x > y);
}

/* Keeps at most DRISK_CURVE_MAX of n points, evenly spaced, the last included. */
static void curve_add(struct drisk_curve *c, const double *x, const double *y, size_t n)
{
    c->n = 0;
    if (n == 0)
        return;
    size_t keep = n < DRISK_CURVE_MAX ? n : DRISK_CURVE_MAX;
    for (size_t k = 0; k < keep; k++) {
        size_t i = keep == 1 ? n - 1 : (size_t)((double)k * (double)(n - 1) / (double)(keep - 1));
        c->x[c->n] = x[i];
        c->y[c->n++] = y[i];
    }
}

static enum drisk_status curves(const struct drisk_eval_result *res, struct drisk_tables *t,
                                struct drisk_error *err)
{
    size_t n = res->rows, pos = 0;
    size_t *o = malloc(n * sizeof *o);
    double *fx = malloc((n + 1) * sizeof *fx), *fy = malloc((n + 1) * sizeof *fy),
           *rx = malloc((n + 1) * sizeof *rx), *ry = malloc((n + 1) * sizeof *ry);
    if (!o || !fx || !fy || !rx || !ry) {
        free(o), free(fx), free(fy), free(rx), free(ry);
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory for the curves");
    }
    for (size_t i = 0; i < n; i++) {
        o[i] = i;
        pos += res->scored[i].y > 0.5;
    }
    g_rows = res->scored;
    qsort(o, n, sizeof *o, by_score_desc);
    size_t neg = n - pos, tp = 0, fp = 0, k = 0, m = 0;
    fx[k] = fy[k] = 0;
    k++;
    for (size_t i = 0; i < n; i++) {
        if (res->scored[o[i]].y > 0.5)
            tp++;
        else
            fp++;
        if (i + 1 < n && res->scored[o[i + 1]].score == res->scored[o[i]].score)
            continue; /* tied scores are one threshold */
        fx[k] = neg ? (double)fp / (double)neg : 0;
        fy[k++] = pos ? (double)tp / (double)pos : 0;
        rx[m] = pos ? (double)tp / (double)pos : 0;
        ry[m++] = (double)tp / (double)(tp + fp);
    }
    curve_add(&t->roc, fx, fy, k);
    curve_add(&t->pr, rx, ry, m);
    free(o), free(fx), free(fy), free(rx), free(ry);
    return DRISK_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The realized cost of action a taken at now for a shipment whose outcome is known:
 * the policy's formula with the outcome for probabilities. Telling the customer lowers
 * churn (notify_effect) only when it comes early: before the promise for a late parcel,
 * before found_at (when the loss would be found out anyway) for a lost one. */
static double realized(const struct drisk_settings *s, struct drisk_shipment *sh, int late,
                       int lost, int64_t now, int64_t found_at, int a)
{
    struct drisk_recommendation r;
    struct drisk_settings told = *s;
    if (lost ? now >= found_at : now >= sh->promised_at)
        told.notify_effect = 1.0;
    drisk_recommend(&told, sh, late ? 1.0 : 0.0, lost ? 1.0 : 0.0, now, &r);
    return r.available[a] ? r.cost[a] : INFINITY;
}

/* One shipment's rows g[0..n) (time order): lead times and the money backtest. */
struct per_ship {
    double *lead_ref, *lead_naive, *lead_promise, *silent;
    size_t n_ref, n_naive, n_promise, n_silent;
};

static void one_shipment(const struct drisk_eval_result *res, const size_t *g, size_t n,
                         const struct drisk_settings *s, double thr, struct drisk_tables *t,
                         struct per_ship *ps)
{
    const struct drisk_eval_row *r0 = &res->scored[g[0]];
    int lost_target = t->target == DRISK_TARGET_LOST;
    int positive = r0->y > 0.5;
    struct drisk_shipment sh;
    memset(&sh, 0, sizeof sh);
    snprintf(sh.carrier, sizeof sh.carrier, "%s", res->names[DRISK_SLICE_CARRIER][r0->carrier]);
    sh.declared_value = r0->value;
    sh.created_at = r0->created_at;
    sh.promised_at = r0->promised_at;
    int64_t first_alert = INT64_MIN, first_naive = INT64_MIN;
    double silent_at_alert = NAN;
    int action = DRISK_ACTION_WAIT;
    int64_t acted_at = 0;
    double oracle = INFINITY;
    for (size_t k = 0; k < n && first_naive == INT64_MIN; k++)
        if (res->scored[g[k]].naive > 0.5)
            first_naive = res->scored[g[k]].as_of;
    /* a loss is found out when the 7-day rule fires, or at the end of the lost window */
    int64_t found = first_naive != INT64_MIN ? first_naive : r0->promised_at + 21 * 86400LL;
    for (size_t k = 0; k < n; k++) {
        const struct drisk_eval_row *r = &res->scored[g[k]];
        if (first_alert == INT64_MIN && r->score >= thr) {
            first_alert = r->as_of;
            silent_at_alert = r->since_scan_h;
        }
        for (int a = 0; a < DRISK_ACTION_COUNT; a++) {
            double c = realized(s, &sh, r->late, r->lost, r->as_of, found, a);
            if (c < oracle)
                oracle = c;
        }
        /* the policy on the model's probability: act on the first recommendation, and
         * step up once from notifying to a replacement, refund or claim */
        double pl = lost_target ? r->score : 0.0, pd = lost_target ? 0.0 : r->score;
        if (action >= DRISK_ACTION_RESHIP || drisk_risk_level(s, pd, pl) < DRISK_RISK_MEDIUM)
            continue;
        struct drisk_recommendation rec;
        drisk_recommend(s, &sh, pd, pl, r->as_of, &rec);
        if (rec.action > action) {
            action = rec.action;
            acted_at = r->as_of;
        }
    }
    int late = r0->late, lost = r0->lost;
    t->money.shipments++;
    t->money.late += late;
    t->money.lost += lost;
    t->money.acted[action]++;
    double wait = realized(s, &sh, late, lost, r0->as_of, found, DRISK_ACTION_WAIT);
    t->money.wait += wait;
    t->money.model += action == DRISK_ACTION_WAIT
                          ? wait
                          : realized(s, &sh, late, lost, acted_at, found, action);
    t->money.oracle += oracle < wait ? oracle : wait;
    /* the naive rule: late, notify at an exception scan or else when the promise passes;
     * lost, reship after 7 days without a scan */
    if (lost_target)
        t->money.naive += first_naive == INT64_MIN
                              ? wait
                              : realized(s, &sh, late, lost, first_naive, found,
                                         DRISK_ACTION_RESHIP);
    else if (first_naive != INT64_MIN)
        t->money.naive += realized(s, &sh, late, lost, first_naive, found, DRISK_ACTION_NOTIFY);
    else
        t->money.naive += late ? realized(s, &sh, late, lost, r0->promised_at, found,
                                          DRISK_ACTION_NOTIFY)
                               : wait;
    if (!positive)
        return;
    t->lead.positives++;
    /* the reference: the promise (late), or when the 7-day rule fires (lost; the end of
     * the lost window when it never did) */
    int64_t ref = !lost_target                ? r0->promised_at
                  : first_naive != INT64_MIN ? first_naive
                                              : r0->promised_at + 21 * 86400LL;
    if (first_alert != INT64_MIN) {
        ps->lead_ref[ps->n_ref++] = (double)(ref - first_alert) / HOUR;
        ps->lead_promise[ps->n_promise++] = (double)(r0->promised_at - first_alert) / HOUR;
        if (!isnan(silent_at_alert))
            ps->silent[ps->n_silent++] = silent_at_alert;
    }
    int64_t naive_at = first_naive != INT64_MIN ? first_naive
                       : lost_target            ? INT64_MIN
                                                : r0->promised_at;
    if (naive_at != INT64_MIN)
        ps->lead_naive[ps->n_naive++] = (double)(r0->promised_at - naive_at) / HOUR;
}

static void ci_of_auc(const struct drisk_eval_result *res, const size_t *sel, size_t n,
                      int reps, struct drisk_slice_row *sl, double *y, double *p, double *half,
                      int64_t *ship)
{
    struct drisk_paired_ci ci;
    struct drisk_error e;
    for (size_t i = 0; i < n; i++) {
        const struct drisk_eval_row *r = &res->scored[sel[i]];
        y[i] = r->y;
        p[i] = r->score;
        half[i] = 0.5;
        ship[i] = r->shipment;
    }
    sl->auc.value = sl->auc.lo = sl->auc.hi = NAN;
    sl->ece = NAN;
    /* against a constant 0.5 (AUC exactly 1/2 on every resample): the difference is the
     * AUC itself, shifted */
    if (drisk_bootstrap_paired(n, ship, y, half, NULL, p, NULL, DRISK_TARGET_LATE, reps, 7, &ci,
                               &e) == DRISK_OK && !isnan(ci.d_auc.value)) {
        sl->auc.value = ci.d_auc.value + 0.5;
        sl->auc.lo = ci.d_auc.lo + 0.5;
        sl->auc.hi = ci.d_auc.hi + 0.5;
    }
    double ece;
    if (drisk_metrics_ece(n, y, p, NULL, &ece, &e) == DRISK_OK)
        sl->ece = ece;
}

/* Adds a slice of the rows for which key(row) == id. */
static void slice_add(const struct drisk_eval_result *res, struct drisk_tables *t, int kind,
                      const char *name, int id, int64_t week, size_t *sel, double *y, double *p,
                      double *half, int64_t *ship)
{
    if (t->n_slices == DRISK_TABLE_SLICES)
        return;
    size_t n = 0, pos = 0;
    for (size_t i = 0; i < res->rows; i++) {
        const struct drisk_eval_row *r = &res->scored[i];
        int in = kind == DRISK_SLICE_CARRIER   ? r->carrier == id
                 : kind == DRISK_SLICE_SERVICE ? r->service == id
                 : kind == DRISK_SLICE_LANE    ? r->lane == id
                                               : week_of(r->as_of) == week;
        if (in) {
            sel[n++] = i;
            pos += r->y > 0.5;
        }
    }
    if (n == 0)
        return;
    struct drisk_slice_row *sl = &t->slices[t->n_slices++];
    memset(sl, 0, sizeof *sl);
    sl->kind = kind;
    snprintf(sl->name, sizeof sl->name, "%s", name);
    sl->rows = n;
    for (size_t i = 0; i < n; i++)
        ship[i] = res->scored[sel[i]].shipment;
    sl->shipments = drisk_unique_i64(ship, n);
    if (t->target == DRISK_TARGET_ETA) {
        struct drisk_eta_metrics em;
        struct drisk_error e;
        for (size_t i = 0; i < n; i++) {
            y[i] = res->scored[sel[i]].y;
            p[i] = res->scored[sel[i]].score;
            half[i] = res->scored[sel[i]].p90;
        }
        sl->auc.value = sl->auc.lo = sl->auc.hi = sl->ece = sl->base_rate = NAN;
        if (drisk_metrics_eta(n, y, p, half, NULL, &em, &e) == DRISK_OK) {
            sl->auc.value = em.mae_h;
            sl->ece = em.p50_coverage;
            sl->base_rate = em.p90_coverage;
        }
        return;
    }
    sl->base_rate = (double)pos / (double)n;
    ci_of_auc(res, sel, n, SLICE_REPS, sl, y, p, half, ship);
    if (kind == 3 && n >= DRISK_WARN_MIN_ROWS && sl->ece > DRISK_WARN_ECE) {
        sl->warn = 1;
        t->weeks_warned++;
    }
}

enum drisk_status drisk_tables_compute(const struct drisk_eval_result *res, enum drisk_target target,
                                       const struct drisk_settings *s, double threshold,
                                       struct drisk_tables *t, struct drisk_error *err)
{
    enum drisk_status rc = DRISK_OK;
    size_t n = res->rows;
    memset(t, 0, sizeof *t);
    t->target = target;
    t->threshold = threshold;
    if (!res->scored || n == 0)
        return drisk_error_set(err, DRISK_EINVAL, "no scored snapshots to tabulate");
    size_t *o = malloc(n * sizeof *o), *sel = malloc(n * sizeof *sel);
    double *y = malloc(n * sizeof *y), *p = malloc(n * sizeof *p), *h = malloc(n * sizeof *h);
    int64_t *ship = malloc(n * sizeof *ship), *asof = malloc(n * sizeof *asof),
            *prom = malloc(n * sizeof *prom);
    struct per_ship ps = { malloc(n * sizeof(double)), malloc(n * sizeof(double)),
                           malloc(n * sizeof(double)), malloc(n * sizeof(double)), 0, 0, 0, 0 };
    if (!o || !sel || !y || !p || !h || !ship || !asof || !prom || !ps.lead_ref ||
        !ps.lead_naive || !ps.lead_promise || !ps.silent) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory for the report's tables");
        goto out;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const struct drisk_eval_row *r = &res->scored[i];
        y[i] = r->y;
        p[i] = r->score;
        h[i] = target == DRISK_TARGET_ETA ? r->p90 : 0.5;
        ship[i] = r->shipment;
        asof[i] = r->as_of;
        prom[i] = r->promised_at;
        pos += r->y > 0.5;
    }
    t->base_rate = target == DRISK_TARGET_ETA ? NAN : (double)pos / (double)n;
    memcpy(asof, ship, n * sizeof *ship); /* distinct shipments, on a scratch copy */
    t->shipments = drisk_unique_i64(asof, n);
    for (size_t i = 0; i < n; i++)
        asof[i] = res->scored[i].as_of;
    /* the whole window's figures with shipment-bootstrap intervals */
    struct drisk_paired_ci ci;
    if (target == DRISK_TARGET_ETA) {
        struct drisk_eta_metrics em;
        if ((rc = drisk_metrics_eta(n, y, p, h, NULL, &em, err)))
            goto out;
        t->loss.value = (em.pinball50_h + em.pinball90_h) / 2.0;
        t->loss.lo = t->loss.hi = NAN; /* eta's intervals: retrain's paired comparison */
        t->auc.value = t->auc.lo = t->auc.hi = NAN;
    } else {
        if ((rc = drisk_bootstrap_paired(n, ship, y, h, NULL, p, NULL, target, WINDOW_REPS, 7,
                                         &ci, err)))
            goto out;
        t->auc.value = ci.d_auc.value + 0.5;
        t->auc.lo = ci.d_auc.lo + 0.5;
        t->auc.hi = ci.d_auc.hi + 0.5;
        t->loss.value = ci.d_loss.value + log(2.0);
        t->loss.lo = ci.d_loss.lo + log(2.0);
        t->loss.hi = ci.d_loss.hi + log(2.0);
        if ((rc = curves(res, t, err)))
            goto out;
        for (int k = 0; k < DRISK_SWEEP_N; k++) {
            struct drisk_lead_input in = { n, ship, asof, prom, p, y };
            struct drisk_lead_time lt;
            if ((rc = drisk_metrics_lead_time(&in, sweep_at[k], &lt, err)))
                goto out;
            struct drisk_sweep_row *sw = &t->sweep[k];
            sw->threshold = sweep_at[k];
            sw->precision = lt.precision;
            sw->recall = lt.recall;
            sw->alerts_per_1000 = lt.shipments ? 1000.0 * (double)(lt.flagged_positives +
                                                                   lt.flagged_negatives) /
                                                     (double)lt.shipments
                                               : NAN;
            sw->median_lead_h = lt.median_lead_h;
        }
        /* per shipment: lead-time distribution and the money backtest */
        for (size_t i = 0; i < n; i++)
            o[i] = i;
        g_rows = res->scored;
        qsort(o, n, sizeof *o, by_shipment_time);
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && res->scored[o[j]].shipment == res->scored[o[i]].shipment)
                j++;
            one_shipment(res, o + i, j - i, s, threshold, t, &ps);
            i = j;
        }
        double per = t->money.shipments ? 1000.0 / (double)t->money.shipments : 0;
        t->money.model *= per;
        t->money.wait *= per;
        t->money.naive *= per;
        t->money.oracle *= per;
        t->lead.reference = target == DRISK_TARGET_LOST ? "the 7-day no-scan rule" : "promise";
        for (int k = 0; k < 3; k++) {
            size_t a = 0, b = 0;
            for (size_t i = 0; i < ps.n_ref; i++)
                a += ps.lead_ref[i] >= 24.0 * (k + 1);
            for (size_t i = 0; i < ps.n_naive; i++)
                b += ps.lead_naive[i] >= 24.0 * (k + 1);
            t->lead.recall_at[k] = t->lead.positives ? (double)a / (double)t->lead.positives : NAN;
            t->lead.naive_recall_at[k] = t->lead.positives ? (double)b / (double)t->lead.positives
                                                           : NAN;
        }
        if (res->no_naive) { /* live scores: the rule's inputs were not kept */
            t->money.naive = NAN;
            for (int k = 0; k < 3; k++)
                t->lead.naive_recall_at[k] = NAN;
            ps.n_naive = 0;
        }
        t->lead.median_h = median(ps.lead_ref, ps.n_ref);
        t->lead.promise_median_h = median(ps.lead_promise, ps.n_promise);
        t->lead.silent_median_h = median(ps.silent, ps.n_silent);
        t->lead.naive_median_h = median(ps.lead_naive, ps.n_naive);
    }
    /* slices: carrier, service, lane, then the weeks of as_of */
    for (int kind = 0; kind < DRISK_SLICE_KINDS; kind++)
        for (int id = 0; id < res->n_names[kind]; id++)
            slice_add(res, t, kind, res->names[kind][id], id, 0, sel, y, p, h, ship);
    int64_t w0 = INT64_MAX, w1 = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int64_t w = week_of(res->scored[i].as_of);
        w0 = w < w0 ? w : w0;
        w1 = w > w1 ? w : w1;
    }
    /* newest first: a window longer than the table keeps its latest weeks */
    for (int64_t w = w1; w >= w0 && t->n_slices < DRISK_TABLE_SLICES; w -= WEEK_S) {
        char name[DRISK_TS_BUF];
        drisk_ts_format(w, name);
        name[10] = '\0'; /* the date of the Monday */
        slice_add(res, t, 3, name, 0, w, sel, y, p, h, ship);
    }
out:
    free(o), free(sel), free(y), free(p), free(h), free(ship), free(asof), free(prom);
    free(ps.lead_ref), free(ps.lead_naive), free(ps.lead_promise), free(ps.silent);
    return rc;
}

static void jnum(FILE *f, const char *key, double v, int comma)
{
    if (isnan(v) || isinf(v))
        fprintf(f, "\"%s\": null%s", key, comma ? ", " : "");
    else
        fprintf(f, "\"%s\": %.6g%s", key, v, comma ? ", " : "");
}

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void jcurve(FILE *f, const char *key, const struct drisk_curve *c, int comma)
{
    fprintf(f, "\"%s\": [", key);
    for (size_t i = 0; i < c->n; i++)
        fprintf(f, "%s[%.5g, %.5g]", i ? ", " : "", c->x[i], c->y[i]);
    fprintf(f, "]%s", comma ? ", " : "");
}

static const char *slice_kind_name(int kind)
{
    return kind == DRISK_SLICE_CARRIER ? "carrier" : kind == DRISK_SLICE_SERVICE ? "service"
           : kind == DRISK_SLICE_LANE  ? "lane" : "week";
}

void drisk_tables_json(FILE *f, const struct drisk_tables *t, const struct drisk_eval_result *res)
{
    int eta = t->target == DRISK_TARGET_ETA;
    fprintf(f, "\"window\": {\"shipments\": %zu, ", t->shipments);
    jnum(f, "base_rate", t->base_rate, 1);
    fprintf(f, "\"auc\": {");
    jnum(f, "value", t->auc.value, 1);
    jnum(f, "lo", t->auc.lo, 1);
    jnum(f, "hi", t->auc.hi, 0);
    fprintf(f, "}, \"%s\": {", eta ? "pinball_h" : "log_loss");
    jnum(f, "value", t->loss.value, 1);
    jnum(f, "lo", t->loss.lo, 1);
    jnum(f, "hi", t->loss.hi, 0);
    fprintf(f, "}}, ");
    if (!eta) {
        fprintf(f, "\"reliability\": [");
        for (size_t i = 0; i < res->reliability.n_bins; i++) {
            const struct drisk_reliability_bin *b = &res->reliability.bins[i];
            fprintf(f, "%s{\"lo\": %.2f, \"hi\": %.2f, \"rows\": %zu, ", i ? ", " : "", b->lo,
                    b->hi, b->count);
            jnum(f, "predicted", b->mean_score, 1);
            jnum(f, "observed", b->observed, 0);
            fputc('}', f);
        }
        fprintf(f, "], \"curves\": {");
        jcurve(f, "roc", &t->roc, 1);
        jcurve(f, "pr", &t->pr, 0);
        fprintf(f, "}, \"sweep\": [");
        for (int k = 0; k < DRISK_SWEEP_N; k++) {
            const struct drisk_sweep_row *s = &t->sweep[k];
            fprintf(f, "%s{", k ? ", " : "");
            jnum(f, "threshold", s->threshold, 1);
            jnum(f, "precision", s->precision, 1);
            jnum(f, "recall", s->recall, 1);
            jnum(f, "alerts_per_1000", s->alerts_per_1000, 1);
            jnum(f, "median_lead_h", s->median_lead_h, 0);
            fputc('}', f);
        }
        fprintf(f, "], \"lead_time\": {\"reference\": \"%s\", \"threshold\": %.4g, "
                "\"positives\": %zu, ", t->lead.reference, t->threshold, t->lead.positives);
        jnum(f, "recall_24h", t->lead.recall_at[0], 1);
        jnum(f, "recall_48h", t->lead.recall_at[1], 1);
        jnum(f, "recall_72h", t->lead.recall_at[2], 1);
        jnum(f, "median_h", t->lead.median_h, 1);
        jnum(f, "median_h_before_promise", t->lead.promise_median_h, 1);
        jnum(f, "median_h_silent_when_flagged", t->lead.silent_median_h, 1);
        fprintf(f, "\"naive_before_promise\": {");
        jnum(f, "recall_24h", t->lead.naive_recall_at[0], 1);
        jnum(f, "recall_48h", t->lead.naive_recall_at[1], 1);
        jnum(f, "recall_72h", t->lead.naive_recall_at[2], 1);
        jnum(f, "median_h", t->lead.naive_median_h, 0);
        fprintf(f, "}}, \"money\": {\"shipments\": %zu, \"late\": %zu, \"lost\": %zu, "
                "\"per_1000_shipments\": {", t->money.shipments, t->money.late, t->money.lost);
        jnum(f, "model_policy", t->money.model, 1);
        jnum(f, "always_wait", t->money.wait, 1);
        jnum(f, "naive_rule", t->money.naive, 1);
        jnum(f, "oracle", t->money.oracle, 0);
        fprintf(f, "}, \"actions\": {");
        for (int a = 0; a < DRISK_ACTION_COUNT; a++)
            fprintf(f, "%s\"%s\": %zu", a ? ", " : "", drisk_action_name(a), t->money.acted[a]);
        fprintf(f, "}}, ");
    }
    fprintf(f, "\"slice_intervals\": [");
    for (size_t i = 0; i < t->n_slices; i++) {
        const struct drisk_slice_row *s = &t->slices[i];
        fprintf(f, "%s{\"kind\": \"%s\", \"name\": ", i ? ", " : "", slice_kind_name(s->kind));
        jstr(f, s->name);
        fprintf(f, ", \"rows\": %zu, \"shipments\": %zu, ", s->rows, s->shipments);
        if (eta) {
            jnum(f, "mae_h", s->auc.value, 1);
            jnum(f, "p50_coverage", s->ece, 1);
            jnum(f, "p90_coverage", s->base_rate, 0);
        } else {
            jnum(f, "base_rate", s->base_rate, 1);
            jnum(f, "auc", s->auc.value, 1);
            jnum(f, "auc_lo", s->auc.lo, 1);
            jnum(f, "auc_hi", s->auc.hi, 1);
            jnum(f, "ece", s->ece, 1);
            fprintf(f, "\"drift_warning\": %s", s->warn ? "true" : "false");
        }
        fputc('}', f);
    }
    fprintf(f, "], \"drift\": {\"ece_limit\": %g, \"psi_limit\": %g, \"weeks_over_limit\": %zu, "
            "\"training_sample\": %zu, \"window_sample\": %zu, ", DRISK_WARN_ECE,
            DRISK_WARN_PSI, t->weeks_warned, res->train_sample, res->drift_sample);
    jnum(f, "validation_base_rate", res->train_rows ? (double)res->train_positives /
                                                          (double)res->train_rows : NAN, 1);
    fputs("\"features\": [", f);
    for (size_t j = 0; j < res->n_features; j++) {
        fprintf(f, "%s{\"name\": ", j ? ", " : "");
        jstr(f, res->features[j].name);
        fputs(", ", f);
        jnum(f, "importance", res->features[j].importance, 1);
        jnum(f, "psi", res->features[j].psi, 0);
        fputc('}', f);
    }
    fputs("]}", f);
}
