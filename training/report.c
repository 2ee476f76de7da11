/* The comparison report as one self-contained HTML page (training/report.h). */
#include "training/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"

static const char *const palette[] = { "#1f6feb", "#d1242f", "#2da44e", "#8250df", "#bf8700",
                                       "#0a7e8c", "#6e7781", "#e16f24" };
#define COLOR(i) palette[(i) % (sizeof palette / sizeof palette[0])]

static void num(FILE *f, double v, int decimals)
{
    if (isnan(v) || isinf(v))
        fputs("&ndash;", f);
    else
        fprintf(f, "%.*f", decimals, v);
}

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void model_name(FILE *f, const struct drisk_report_model *m, size_t i)
{
    fprintf(f, "<span style=\"color:%s\">&#9632;</span> model %lld (", COLOR(i),
            (long long)m->res->model_id);
    esc(f, m->res->algorithm);
    fputs(")", f);
}

struct series {
    size_t n;
    const double *x, *y;
    int dots; /* points instead of a line */
};

/* A square plot of [0,1] x [0,1] with ticks every 0.2, axis titles and a legend. */
static void plot(FILE *f, const char *title, const char *xl, const char *yl,
                 const struct drisk_report_model *m, const struct series *s, size_t n,
                 int diagonal)
{
    const int W = 300, L = 48, T = 28, B = 42, R = 12;
    int width = L + W + R, height = T + W + B + 16 * (int)n;
    fprintf(f, "<figure><svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
               "aria-label=\"", width, height, width, height);
    esc(f, title);
    fprintf(f, "\" font-family=\"system-ui,sans-serif\" font-size=\"11\">\n<text x=\"%d\" y=\"16\" "
               "font-size=\"13\" font-weight=\"600\">", L);
    esc(f, title);
    fputs("</text>\n", f);
    for (int k = 0; k <= 5; k++) {
        double v = k / 5.0;
        int gx = L + (int)(v * W), gy = T + W - (int)(v * W);
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eee\"/>"
                   "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eee\"/>\n",
                gx, T, gx, T + W, L, gy, L + W, gy);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%.1f</text>"
                   "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.1f</text>\n",
                gx, T + W + 14, v, L - 5, gy + 4, v);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n",
            L, T, W, W);
    if (diagonal)
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#aaa\" "
                   "stroke-dasharray=\"4\"/>\n", L, T + W, L + W, T);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", L + W / 2, T + W + 30);
    esc(f, xl);
    fprintf(f, "</text><text x=\"12\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 12 %d)\">",
            T + W / 2, T + W / 2);
    esc(f, yl);
    fputs("</text>\n", f);
    for (size_t i = 0; i < n; i++) {
        const struct series *p = &s[i];
        if (p->dots) {
            for (size_t k = 0; k < p->n; k++)
                if (!isnan(p->x[k]) && !isnan(p->y[k]))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", L + p->x[k] * W,
                            T + (1 - p->y[k]) * W, COLOR(i));
            fputs("\n", f);
        }
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"", COLOR(i));
        for (size_t k = 0; k < p->n; k++)
            if (!isnan(p->x[k]) && !isnan(p->y[k]))
                fprintf(f, "%.1f,%.1f ", L + p->x[k] * W, T + (1 - p->y[k]) * W);
        fputs("\"/>\n", f);
        int ly = T + W + B + 16 * (int)i;
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/><text x=\"%d\" "
                   "y=\"%d\">model %lld (", L, ly - 4, COLOR(i), L + 20, ly,
                (long long)m[i].res->model_id);
        esc(f, m[i].res->algorithm);
        fputs(")</text>\n", f);
    }
    fputs("</svg></figure>\n", f);
}

static void ci_cell(FILE *f, const struct drisk_ci *c, int d)
{
    fputs("<td>", f);
    num(f, c->value, d);
    if (!isnan(c->lo)) {
        fputs(" <small>[", f);
        num(f, c->lo, d);
        fputs(", ", f);
        num(f, c->hi, d);
        fputs("]</small>", f);
    }
    fputs("</td>", f);
}

static int cmp_desc(const void *a, const void *b, const struct drisk_eval_feature *fs, int psi)
{
    double x = psi ? fs[*(const size_t *)a].psi : fs[*(const size_t *)a].importance;
    double y = psi ? fs[*(const size_t *)b].psi : fs[*(const size_t *)b].importance;
    if (isnan(x))
        x = -1;
    if (isnan(y))
        y = -1;
    return (x < y) - (x > y);
}

static const struct drisk_eval_feature *g_fs;
static int by_importance(const void *a, const void *b) { return cmp_desc(a, b, g_fs, 0); }
static int by_psi(const void *a, const void *b) { return cmp_desc(a, b, g_fs, 1); }

/* The top k features of res by importance (psi 0) or PSI (psi 1), as bars. */
static void top_features(FILE *f, const struct drisk_eval_result *res, int psi, size_t k)
{
    size_t n = res->n_features, *o = malloc((n + 1) * sizeof *o);
    if (!o || n == 0) {
        free(o);
        fputs("<p>No figures: the model was evaluated without drift.</p>\n", f);
        return;
    }
    for (size_t i = 0; i < n; i++)
        o[i] = i;
    g_fs = res->features;
    qsort(o, n, sizeof *o, psi ? by_psi : by_importance);
    double top = psi ? fmax(res->features[o[0]].psi, DRISK_WARN_PSI) : res->features[o[0]].importance;
    fputs("<table class=\"bars\">", f);
    for (size_t i = 0; i < k && i < n; i++) {
        const struct drisk_eval_feature *x = &res->features[o[i]];
        double v = psi ? x->psi : x->importance;
        int warn = psi && v > DRISK_WARN_PSI;
        fputs("<tr><td>", f);
        esc(f, x->name);
        fprintf(f, "</td><td>%s", warn ? "<b class=\"warn\">" : "");
        num(f, v, psi ? 3 : 4);
        fprintf(f, "%s</td><td><div style=\"background:%s;height:9px;width:%.0fpx\"></div></td>"
                   "</tr>\n", warn ? "</b>" : "", warn ? "#d1242f" : "#1f6feb",
                top > 0 && !isnan(v) ? 220.0 * v / top : 0.0);
    }
    fputs("</table>\n", f);
    free(o);
}

static const char *kind_title(int kind)
{
    return kind == 0 ? "carrier" : kind == 1 ? "service" : kind == 2 ? "lane" : "week (Monday)";
}

int drisk_report_html(FILE *f, const char *target, int64_t from, int64_t to, double threshold,
                      const struct drisk_report_model *m, size_t n)
{
    int cls = strcmp(target, "eta") != 0, lost = strcmp(target, "lost") == 0;
    char t0[DRISK_TS_BUF], t1[DRISK_TS_BUF];
    const struct drisk_eval_result *r0 = m[0].res;
    const struct drisk_tables *tb0 = m[0].t;
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>drisk "
          "report</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;"
          "color:#1f2328}table{border-collapse:collapse;margin:.6em 0 1.2em}td,th{border:1px solid "
          "#d0d7de;padding:3px 8px;text-align:right;font-size:13px}th{background:#f6f8fa}"
          "td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:0 1em "
          "1em 0}.warn{color:#d1242f}.box{border:1px solid #d1242f;background:#fff5f5;padding:.5em "
          "1em;margin:1em 0}.note{color:#57606a;font-size:13px}table.bars td{border:none;padding:"
          "1px 6px}small{color:#57606a}</style></head><body>\n", f);
    fprintf(f, "<h1>drisk report: %s, %zu model%s</h1>\n", target, n, n == 1 ? "" : "s");
    fputs("<p>Evaluation window: shipments created ", f);
    fputs(from == INT64_MIN ? "from the start" : drisk_ts_format(from, t0), f);
    fputs(" to ", f);
    fputs(to == INT64_MAX ? "the end" : drisk_ts_format(to, t1), f);
    fprintf(f, ": %zu snapshots of %zu shipments; ", r0->rows, tb0->shipments ? tb0->shipments
                                                                               : r0->rows);
    if (cls)
        fprintf(f, "base rate %.2f%% of snapshots %s. Every model is scored on the same "
                   "snapshots.</p>\n", 100 * tb0->base_rate, target);
    else
        fputs("every model is scored on the same snapshots.</p>\n", f);
    fputs("<table><tr><th>model</th><th>trained on shipments created</th>", f);
    if (cls)
        fputs("<th>base rate, its validation window</th>", f);
    fputs("<th>validation figures stored with it</th></tr>\n", f);
    for (size_t i = 0; i < n; i++) {
        fputs("<tr><td>", f);
        model_name(f, &m[i], i);
        fprintf(f, "</td><td>%s to %s</td><td>", drisk_ts_format(m[i].res->train_from, t0),
                drisk_ts_format(m[i].res->train_until, t1));
        if (cls) {
            num(f, m[i].res->train_rows ? 100.0 * (double)m[i].res->train_positives /
                                              (double)m[i].res->train_rows
                                        : NAN, 2);
            fputs(" %</td><td>", f);
        }
        for (size_t k = 0; k < m[i].res->meta.n_metrics && k < 6; k++) {
            if (strchr(m[i].res->meta.metrics[k].key, '.'))
                continue;
            esc(f, m[i].res->meta.metrics[k].key);
            fprintf(f, " %.4g &nbsp;", m[i].res->meta.metrics[k].value);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);

    /* drift warnings first: they say whether the rest can be trusted */
    size_t warned = 0;
    for (size_t i = 0; i < n; i++) {
        warned += m[i].t->weeks_warned;
        for (size_t j = 0; j < m[i].res->n_features; j++)
            warned += m[i].res->features[j].psi > DRISK_WARN_PSI;
    }
    if (warned) {
        fputs("<div class=\"box\"><b class=\"warn\">Drift warning.</b> ", f);
        for (size_t i = 0; i < n; i++) {
            size_t psi = 0;
            for (size_t j = 0; j < m[i].res->n_features; j++)
                psi += m[i].res->features[j].psi > DRISK_WARN_PSI;
            fprintf(f, "Model %lld: %zu week%s with ECE above %.2f, %zu feature%s with PSI above "
                       "%.2f between its validation window and this one. ",
                    (long long)m[i].res->model_id, m[i].t->weeks_warned,
                    m[i].t->weeks_warned == 1 ? "" : "s", DRISK_WARN_ECE, psi, psi == 1 ? "" : "s",
                    DRISK_WARN_PSI);
        }
        fputs("Recalibrate (drisk recalibrate) or retrain (drisk retrain) before trusting the "
              "probabilities; see Drift below.</div>\n", f);
    }

    fputs("<h2>Summary</h2>\n<table><tr><th>model</th>", f);
    if (cls)
        fprintf(f, "<th>AUC [95%%]</th><th>PR-AUC</th><th>Brier</th><th>log loss [95%%]</th>"
                   "<th>ECE</th><th>precision at %.2f</th><th>recall at %.2f</th><th>median lead "
                   "h</th><th>cost / 1,000 shipments</th></tr>\n", threshold, threshold);
    else
        fputs("<th>MAE h</th><th>median AE h</th><th>pinball h</th><th>P50 coverage</th>"
              "<th>P90 coverage</th></tr>\n", f);
    for (size_t i = 0; i < n; i++) {
        const struct drisk_eval_result *r = m[i].res;
        fputs("<tr><td>", f);
        model_name(f, &m[i], i);
        fputs("</td>", f);
        if (cls) {
            ci_cell(f, &m[i].t->auc, 4);
            const double v[2] = { r->m.pr_auc, r->m.brier };
            for (int k = 0; k < 2; k++) {
                fputs("<td>", f);
                num(f, v[k], 4);
                fputs("</td>", f);
            }
            ci_cell(f, &m[i].t->loss, 4);
            const double w[5] = { r->m.ece, r->alerts.precision, r->alerts.recall,
                                  r->alerts.median_lead_h, m[i].t->money.model };
            const int d[5] = { 4, 3, 3, 1, 0 };
            for (int k = 0; k < 5; k++) {
                fputs("<td>", f);
                num(f, w[k], d[k]);
                fputs("</td>", f);
            }
        } else {
            const double v[5] = { r->eta.mae_h, r->eta.median_ae_h, m[i].t->loss.value,
                                  r->eta.p50_coverage, r->eta.p90_coverage };
            const int d[5] = { 1, 1, 2, 3, 3 };
            for (int k = 0; k < 5; k++) {
                fputs("<td>", f);
                num(f, v[k], d[k]);
                fputs("</td>", f);
            }
        }
        fputs("</tr>\n", f);
    }
    if (cls && !r0->no_naive) {
        fprintf(f, "<tr><td>naive rule: %s</td><td colspan=\"4\"></td><td></td><td>",
                lost ? "no scan for 7 days" : "exception scan or promise passed");
        num(f, r0->naive.precision, 3);
        fputs("</td><td>", f);
        num(f, r0->naive.recall, 3);
        fputs("</td><td>", f);
        num(f, r0->naive.median_lead_h, 1);
        fputs("</td><td>", f);
        num(f, tb0->money.naive, 0);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n<p class=\"note\">Intervals: 2.5&ndash;97.5 % of 200 resamples of whole "
          "shipments. Precision, recall and lead are per shipment: flagged when any snapshot "
          "scores at or above the threshold, lead from the first such snapshot to the "
          "promise.</p>\n", f);

    if (cls) {
        struct series *s = calloc(n, sizeof *s);
        double (*rx)[DRISK_ECE_BINS] = calloc(n, sizeof *rx), (*ry)[DRISK_ECE_BINS] = calloc(n, sizeof *ry);
        if (!s || !rx || !ry) {
            free(s), free(rx), free(ry);
            return -1;
        }
        fputs("<h2>Curves and calibration</h2>\n", f);
        for (size_t i = 0; i < n; i++)
            s[i] = (struct series){ m[i].t->roc.n, m[i].t->roc.x, m[i].t->roc.y, 0 };
        plot(f, "ROC curve", "false positive rate", "true positive rate", m, s, n, 1);
        for (size_t i = 0; i < n; i++)
            s[i] = (struct series){ m[i].t->pr.n, m[i].t->pr.x, m[i].t->pr.y, 0 };
        plot(f, "Precision-recall curve", "recall", "precision", m, s, n, 0);
        for (size_t i = 0; i < n; i++) {
            size_t k = 0;
            const struct drisk_reliability *rel = &m[i].res->reliability;
            for (size_t b = 0; b < rel->n_bins && k < DRISK_ECE_BINS; b++)
                if (rel->bins[b].count) {
                    rx[i][k] = rel->bins[b].mean_score;
                    ry[i][k++] = rel->bins[b].observed;
                }
            s[i] = (struct series){ k, rx[i], ry[i], 1 };
        }
        plot(f, "Reliability (10 bins)", "mean predicted probability", "observed frequency", m, s,
             n, 1);
        free(s), free(rx), free(ry);

        fputs("<h2>Threshold sweep</h2>\n<p class=\"note\">Per shipment. Alerts per 1,000 "
              "shipments: how many a merchant would see.</p>\n<table><tr><th>threshold</th>", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "<th colspan=\"4\">model %lld</th>", (long long)m[i].res->model_id);
        fputs("</tr><tr><th></th>", f);
        for (size_t i = 0; i < n; i++)
            fputs("<th>precision</th><th>recall</th><th>alerts / 1,000</th><th>median lead h</th>", f);
        fputs("</tr>\n", f);
        for (int k = 0; k < DRISK_SWEEP_N; k++) {
            fprintf(f, "<tr><td>%.2f</td>", tb0->sweep[k].threshold);
            for (size_t i = 0; i < n; i++) {
                const struct drisk_sweep_row *w = &m[i].t->sweep[k];
                const double v[4] = { w->precision, w->recall, w->alerts_per_1000, w->median_lead_h };
                const int d[4] = { 3, 3, 0, 1 };
                for (int c = 0; c < 4; c++) {
                    fputs("<td>", f);
                    num(f, v[c], d[c]);
                    fputs("</td>", f);
                }
            }
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);

        fprintf(f, "<h2>When alerts come</h2>\n<p class=\"note\">Share of the %zu %s shipments "
                   "first flagged (at %.2f) at least 24, 48 and 72 hours before %s.%s</p>\n"
                   "<table><tr><th>rule</th><th>&ge; 24 h</th><th>&ge; 48 h</th><th>&ge; 72 h</th>"
                   "<th>median h</th><th>median h before the promise</th><th>median h silent "
                   "when flagged</th></tr>\n",
                tb0->lead.positives, target, threshold, tb0->lead.reference,
                lost ? " A loss shows only after the promise (the parcel stops moving), so leads "
                       "measured against the promise are negative for lost parcels: the "
                       "comparison that matters is with the platforms' rule, which waits for 7 "
                       "days without a scan, and how long the parcel had been silent (since its "
                       "last scan) when drisk flagged it." : "");
        for (size_t i = 0; i < n; i++) {
            const struct drisk_lead_dist *l = &m[i].t->lead;
            fputs("<tr><td>", f);
            model_name(f, &m[i], i);
            fputs("</td>", f);
            const double v[6] = { l->recall_at[0], l->recall_at[1], l->recall_at[2], l->median_h,
                                  l->promise_median_h, l->silent_median_h };
            for (int k = 0; k < 6; k++) {
                fputs("<td>", f);
                num(f, v[k], k < 3 ? 3 : 1);
                fputs("</td>", f);
            }
            fputs("</tr>\n", f);
        }
        if (!r0->no_naive) {
            fprintf(f, "<tr><td>naive: %s (before the promise)</td>",
                    lost ? "no scan for 7 days" : "exception scan or promise passed");
            const double v[5] = { tb0->lead.naive_recall_at[0], tb0->lead.naive_recall_at[1],
                                  tb0->lead.naive_recall_at[2], NAN, tb0->lead.naive_median_h };
            for (int k = 0; k < 5; k++) {
                fputs("<td>", f);
                num(f, v[k], k < 3 ? 3 : 1);
                fputs("</td>", f);
            }
            fputs("</tr>", f);
        }
        fputs("</table>\n", f);

        fprintf(f, "<h2>Money: the claim policy backtested</h2>\n<p class=\"note\">Cost per "
                   "1,000 shipments under the merchant settings (docs/POLICY.md; defaults unless "
                   "set), over the window's %zu shipments (%zu late, %zu lost). The policy acts "
                   "on the first recommendation other than wait at medium or high risk and steps "
                   "up once from notifying to reship, refund or claim; costs are the policy's "
                   "formulas with the real outcome. Always wait: nothing done. Naive: %s. "
                   "Oracle: the cheapest action for each shipment knowing its outcome.</p>\n"
                   "<table><tr><th>model</th><th>policy on the model</th><th>always wait</th>"
                   "<th>naive rule</th><th>oracle</th><th>saved vs always wait</th>"
                   "<th>shipments acted on</th></tr>\n",
                tb0->money.shipments, tb0->money.late, tb0->money.lost,
                lost ? "reship after 7 days without a scan"
                     : "notify at an exception scan or when the promise passes");
        for (size_t i = 0; i < n; i++) {
            const struct drisk_money *mo = &m[i].t->money;
            fputs("<tr><td>", f);
            model_name(f, &m[i], i);
            fputs("</td>", f);
            const double c[5] = { mo->model, mo->wait, mo->naive, mo->oracle, mo->wait - mo->model };
            for (int k = 0; k < 5; k++) {
                fputs("<td>", f);
                num(f, c[k], 0);
                fputs("</td>", f);
            }
            fputs("<td>", f);
            for (int a = 1; a < DRISK_ACTION_COUNT; a++)
                if (mo->acted[a])
                    fprintf(f, "%s %zu ", drisk_action_name(a), mo->acted[a]);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }

    fputs("<h2>Slices</h2>\n", f);
    for (int kind = 0; kind <= 3; kind++) {
        fprintf(f, "<h3>by %s</h3>\n<table><tr><th>%s</th><th>rows</th><th>shipments</th>",
                kind_title(kind), kind_title(kind));
        fputs(cls ? "<th>base rate</th>" : "", f);
        for (size_t i = 0; i < n; i++)
            fprintf(f, cls ? "<th>model %lld AUC [95%%]</th><th>ECE</th>"
                           : "<th>model %lld MAE h</th><th>P50 cov.</th><th>P90 cov.</th>",
                    (long long)m[i].res->model_id);
        fputs("</tr>\n", f);
        for (size_t k = 0; k < tb0->n_slices; k++) {
            const struct drisk_slice_row *s0 = &tb0->slices[k];
            if (s0->kind != kind)
                continue;
            int warn = 0;
            for (size_t i = 0; i < n; i++)
                warn |= k < m[i].t->n_slices && m[i].t->slices[k].warn;
            fprintf(f, "<tr%s><td>", warn ? " class=\"warn\"" : "");
            esc(f, s0->name);
            fprintf(f, "%s</td><td>%zu</td><td>%zu</td>", warn ? " &#9888;" : "", s0->rows,
                    s0->shipments);
            if (cls) {
                fputs("<td>", f);
                num(f, s0->base_rate, 3);
                fputs("</td>", f);
            }
            for (size_t i = 0; i < n; i++) {
                const struct drisk_slice_row *s = k < m[i].t->n_slices ? &m[i].t->slices[k] : NULL;
                if (!s) {
                    fputs(cls ? "<td></td><td></td>" : "<td></td><td></td><td></td>", f);
                    continue;
                }
                if (cls) {
                    ci_cell(f, &s->auc, 3);
                    fputs("<td>", f);
                    num(f, s->ece, 3);
                    fputs("</td>", f);
                } else {
                    const double v[3] = { s->auc.value, s->ece, s->base_rate };
                    for (int c = 0; c < 3; c++) {
                        fputs("<td>", f);
                        num(f, v[c], c ? 3 : 1);
                        fputs("</td>", f);
                    }
                }
            }
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    if (cls)
        fprintf(f, "<p class=\"note\">Weeks are marked &#9888; when ECE exceeds %.2f on at least "
                   "%d snapshots.</p>\n", DRISK_WARN_ECE, DRISK_WARN_MIN_ROWS);

    fputs("<h2>Feature importance</h2>\n<p class=\"note\">Mean absolute contribution to the "
          "score (log-odds for late and lost, log-hours for eta) over a sample of the window's "
          "snapshots; the 15 largest.</p>\n", f);
    for (size_t i = 0; i < n; i++) {
        fputs("<h3>", f);
        model_name(f, &m[i], i);
        fputs("</h3>\n", f);
        top_features(f, m[i].res, 0, 15);
    }
    fprintf(f, "<h2>Drift</h2>\n<p class=\"note\">Population stability index of each feature "
               "between a sample of the model's validation window (the last 15 %% of its "
               "training period; %zu snapshots) and of this window (%zu), on the first "
               "sample's deciles; above %.2f is a major shift, "
               "0.10&ndash;%.2f a moderate one. The 10 largest per model.</p>\n",
            r0->train_sample, r0->drift_sample, DRISK_WARN_PSI, DRISK_WARN_PSI);
    for (size_t i = 0; i < n; i++) {
        fputs("<h3>", f);
        model_name(f, &m[i], i);
        fputs("</h3>\n", f);
        top_features(f, m[i].res, 1, 10);
    }
    fputs("</body></html>\n", f);
    return ferror(f) ? -1 : 0;
}
