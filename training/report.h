/* drisk eval --report: the evaluation as a self-contained HTML page. */
#ifndef DRISK_REPORT_H
#define DRISK_REPORT_H

#include <stdio.h>

#include "training/learn.h"

/* Writes the report of res (target "late", "lost" or "eta") to f; 0, or -1 if the stream
 * reports an error (check fclose too). */
int drisk_eval_report_html(FILE *f, const struct drisk_eval_result *res, const char *target,
                           double threshold);

#endif
