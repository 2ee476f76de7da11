/* Progress of the long steps (simulate, import, snapshots, each learner's fit, eval,
 * retrain): done / total, rate and ETA, as a live line rewritten in place on a terminal
 * (four times a second) or as a plain line every 10 s otherwise (cron, CI, logs), on
 * stderr. The mode is process-wide, like the log level: off by default, so library users
 * and tests stay silent; the drisk command sets it from its stderr and --quiet. */
#ifndef DRISK_PROGRESS_H
#define DRISK_PROGRESS_H

#include <stdint.h>

enum drisk_progress_mode {
    DRISK_PROGRESS_OFF = 0,
    DRISK_PROGRESS_LIVE,  /* a terminal: one line, rewritten */
    DRISK_PROGRESS_PLAIN  /* not a terminal: a line every DRISK_PROGRESS_PLAIN_S */
};

#define DRISK_PROGRESS_LIVE_S 0.25

extern enum drisk_progress_mode drisk_progress_mode;
extern double drisk_progress_plain_s; /* seconds between plain lines (10) */

/* One step's meter. Single-threaded: tick it from the thread doing the work. */
struct drisk_meter {
    char what[64];     /* "snapshots", "gbdt fit", ... */
    const char *unit;  /* "shipments", "trees", ... ("bytes" prints megabytes) */
    int64_t total;     /* 0 when unknown: no percentage or ETA */
    double t0, next;   /* start, and when the next line is due */
    int shown;         /* a line was printed */
};

void drisk_meter_start(struct drisk_meter *m, const char *what, const char *unit, int64_t total);

/* 1 when a line is due (cheap: a clock read; 0 at once when the mode is off). */
int drisk_meter_due(const struct drisk_meter *m);

/* Prints the line for done now, with an optional detail after it (printf format or
 * NULL), and schedules the next. Callers check drisk_meter_due first. */
void drisk_meter_show(struct drisk_meter *m, int64_t done, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* drisk_meter_show when due. */
void drisk_meter_tick(struct drisk_meter *m, int64_t done);

/* The step is over: a final line when the step printed before or took longer than a
 * second (live: it ends the line being rewritten). */
void drisk_meter_end(struct drisk_meter *m, int64_t done);

#endif
