/* The evaluation report as one self-contained HTML page (drisk eval --report): headline
 * metrics, a reliability diagram drawn as inline SVG, alerts beside the naive rule, and
 * slices. No scripts, no external files: it can be mailed or archived as it is. */
#include "training/report.h"

#include <math.h>

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

static void reliability_svg(FILE *f, const struct drisk_reliability *r)
{
    const int W = 320, P = 30;
    fprintf(f, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
               "aria-label=\"reliability diagram\">\n", W + 2 * P, W + 2 * P, W + 2 * P, W + 2 * P);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n",
            P, P, W, W);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>\n",
            P, P + W, P + W, P);
    fputs("<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\" points=\"", f);
    for (size_t i = 0; i < r->n_bins; i++) {
        const struct drisk_reliability_bin *b = &r->bins[i];
        if (b->count && !isnan(b->mean_score) && !isnan(b->observed))
            fprintf(f, "%.1f,%.1f ", P + b->mean_score * W, P + (1 - b->observed) * W);
    }
    fputs("\"/>\n", f);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">predicted</text>", P + W / 2 - 25,
            2 * P + W - 8);
    fprintf(f, "<text x=\"4\" y=\"%d\" font-size=\"11\" transform=\"rotate(-90 10 %d)\">observed"
               "</text>\n</svg>\n", P + W / 2, P + W / 2);
}

static void lead_row(FILE *f, const char *name, const struct drisk_lead_time *l)
{
    fputs("<tr><td>", f);
    esc(f, name);
    fputs("</td><td>", f);
    num(f, l->precision, 3);
    fputs("</td><td>", f);
    num(f, l->recall, 3);
    fputs("</td><td>", f);
    num(f, l->median_lead_h, 1);
    fputs("</td></tr>\n", f);
}

int drisk_eval_report_html(FILE *f, const struct drisk_eval_result *res, const char *target,
                           double threshold)
{
    int cls = target[0] != 'e';
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>drisk "
          "evaluation</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:"
          "60em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:"
          "3px 8px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}"
          "</style></head><body>\n", f);
    fprintf(f, "<h1>drisk evaluation: %s</h1>\n<p>Model %lld (", cls ? target : "eta",
            (long long)res->model_id);
    esc(f, res->algorithm);
    fprintf(f, ") on %zu snapshots of the shipments in the evaluation window.</p>\n",
            res->rows);
    if (cls) {
        fputs("<table><tr><th>AUC</th><th>PR-AUC</th><th>Brier</th><th>log loss</th><th>ECE</th>"
              "<th>positives</th></tr><tr>", f);
        const double v[5] = { res->m.auc, res->m.pr_auc, res->m.brier, res->m.log_loss, res->m.ece };
        for (int i = 0; i < 5; i++) {
            fputs("<td>", f);
            num(f, v[i], 4);
            fputs("</td>", f);
        }
        fprintf(f, "<td>%zu</td></tr></table>\n<h2>Calibration</h2>\n", res->m.positives);
        reliability_svg(f, &res->reliability);
        fputs("<table><tr><th>predicted</th><th>rows</th><th>mean predicted</th><th>observed</th></tr>\n", f);
        for (size_t i = 0; i < res->reliability.n_bins; i++) {
            const struct drisk_reliability_bin *b = &res->reliability.bins[i];
            if (!b->count)
                continue;
            fprintf(f, "<tr><td>%.1f&ndash;%.1f</td><td>%zu</td><td>", b->lo, b->hi, b->count);
            num(f, b->mean_score, 3);
            fputs("</td><td>", f);
            num(f, b->observed, 3);
            fputs("</td></tr>\n", f);
        }
        fprintf(f, "</table>\n<h2>Alerts per shipment</h2>\n<table><tr><th>rule</th><th>precision"
                   "</th><th>recall</th><th>median hours before the promise</th></tr>\n");
        char name[64];
        snprintf(name, sizeof name, "drisk at p >= %.2f", threshold);
        lead_row(f, name, &res->alerts);
        lead_row(f, target[1] == 'o' ? "naive: no scan for 7 days"
                                      : "naive: exception scan or promise passed", &res->naive);
        fputs("</table>\n", f);
    } else {
        fputs("<table><tr><th>MAE h</th><th>median AE h</th><th>P50 coverage</th><th>P90 coverage"
              "</th></tr><tr><td>", f);
        num(f, res->eta.mae_h, 1);
        fputs("</td><td>", f);
        num(f, res->eta.median_ae_h, 1);
        fputs("</td><td>", f);
        num(f, res->eta.p50_coverage, 3);
        fputs("</td><td>", f);
        num(f, res->eta.p90_coverage, 3);
        fputs("</td></tr></table>\n", f);
    }
    fputs("<h2>Slices</h2>\n<table><tr><th>slice</th><th>rows</th>", f);
    fputs(cls ? "<th>AUC</th><th>PR-AUC</th><th>ECE</th></tr>\n"
              : "<th>MAE h</th><th>P90 coverage</th></tr>\n", f);
    for (size_t i = 0; i < res->n_slices; i++) {
        const struct drisk_eval_slice *s = &res->slices[i];
        fputs("<tr><td>", f);
        esc(f, s->kind);
        fputs(" = ", f);
        esc(f, s->name);
        fprintf(f, "</td><td>%zu</td><td>", cls ? s->m.rows : s->eta.rows);
        if (cls) {
            num(f, s->m.auc, 4);
            fputs("</td><td>", f);
            num(f, s->m.pr_auc, 4);
            fputs("</td><td>", f);
            num(f, s->m.ece, 4);
        } else {
            num(f, s->eta.mae_h, 1);
            fputs("</td><td>", f);
            num(f, s->eta.p90_coverage, 3);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n</body></html>\n", f);
    return ferror(f) ? -1 : 0;
}
