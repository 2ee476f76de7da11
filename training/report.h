/* drisk report and eval --report: one self-contained HTML page comparing N models on the
 * same evaluation window: headline figures with intervals, ROC, PR and reliability
 * diagrams as inline SVG, the threshold sweep, when alerts come, the money backtest,
 * slices, feature importance and drift warnings. No scripts, no external files. */
#ifndef DRISK_REPORT_H
#define DRISK_REPORT_H

#include <stdio.h>

#include "training/learn.h"
#include "training/tables.h"

struct drisk_report_model {
    const struct drisk_eval_result *res;
    const struct drisk_tables *t;
};

/* Writes the page for target over [from, to) to f; 0, or -1 if the stream reports an
 * error (check fclose too). */
int drisk_report_html(FILE *f, const char *target, int64_t from, int64_t to, double threshold,
                      const struct drisk_report_model *m, size_t n);

#endif
