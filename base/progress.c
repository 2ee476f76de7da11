/* Progress meters (base/progress.h). */
#include "base/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"

enum drisk_progress_mode drisk_progress_mode = DRISK_PROGRESS_OFF;
double drisk_progress_plain_s = 10.0;

void drisk_meter_start(struct drisk_meter *m, const char *what, const char *unit, int64_t total)
{
    memset(m, 0, sizeof *m);
    snprintf(m->what, sizeof m->what, "%s", what);
    m->unit = unit;
    m->total = total > 0 ? total : 0;
    m->t0 = drisk_monotonic_s();
    /* the first line once the step has run a moment: short steps print nothing */
    m->next = m->t0 + (drisk_progress_mode == DRISK_PROGRESS_PLAIN ? drisk_progress_plain_s
                                                                   : 1.0);
}

int drisk_meter_due(const struct drisk_meter *m)
{
    return drisk_progress_mode != DRISK_PROGRESS_OFF && drisk_monotonic_s() >= m->next;
}

static void duration(char *buf, size_t cap, double s)
{
    if (s < 60)
        snprintf(buf, cap, "%.0f s", s);
    else if (s < 3600)
        snprintf(buf, cap, "%d min %02d s", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, cap, "%d h %02d min", (int)(s / 3600), (int)(s / 60) % 60);
}

static void amount(char *buf, size_t cap, const char *unit, double v)
{
    if (unit && strcmp(unit, "bytes") == 0)
        snprintf(buf, cap, "%.1f MB", v / 1e6);
    else
        snprintf(buf, cap, "%.0f", v);
}

static void line(struct drisk_meter *m, int64_t done, const char *detail, int final)
{
    double now = drisk_monotonic_s(), el = now - m->t0;
    double rate = el > 0 ? (double)done / el : 0.0;
    char d[32], t[32], r[32], eta[32], text[512];
    int bytes = m->unit && strcmp(m->unit, "bytes") == 0;
    amount(d, sizeof d, m->unit, (double)done);
    amount(r, sizeof r, m->unit, rate);
    int len;
    if (m->total) {
        amount(t, sizeof t, m->unit, (double)m->total);
        len = snprintf(text, sizeof text, "%s: %s / %s%s%s (%.0f%%), %s/s", m->what, d, t,
                       bytes ? "" : " ", bytes ? "" : m->unit,
                       100.0 * (double)done / (double)m->total, r);
        if (!final && rate > 0 && done < m->total) {
            duration(eta, sizeof eta, (double)(m->total - done) / rate);
            len += snprintf(text + len, sizeof text - (size_t)len, ", ETA %s", eta);
        }
    } else {
        len = snprintf(text, sizeof text, "%s: %s%s%s, %s/s", m->what, d, bytes ? "" : " ",
                       bytes ? "" : m->unit, r);
    }
    duration(eta, sizeof eta, el);
    if (len > 0 && (size_t)len < sizeof text)
        len += snprintf(text + len, sizeof text - (size_t)len, ", %s%s%s", final ? "took " : "",
                        eta, final ? "" : " so far");
    if (detail && detail[0] && len > 0 && (size_t)len < sizeof text)
        snprintf(text + len, sizeof text - (size_t)len, "; %s", detail);
    if (drisk_progress_mode == DRISK_PROGRESS_LIVE)
        fprintf(stderr, "\r%s\033[K%s", text, final ? "\n" : "");
    else
        fprintf(stderr, "drisk: progress: %s\n", text);
    fflush(stderr);
    m->shown = 1;
    m->next = now + (drisk_progress_mode == DRISK_PROGRESS_LIVE ? DRISK_PROGRESS_LIVE_S
                                                                : drisk_progress_plain_s);
}

void drisk_meter_show(struct drisk_meter *m, int64_t done, const char *fmt, ...)
{
    char detail[256] = "";
    if (drisk_progress_mode == DRISK_PROGRESS_OFF)
        return;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    line(m, done, detail, 0);
}

void drisk_meter_tick(struct drisk_meter *m, int64_t done)
{
    if (drisk_meter_due(m))
        line(m, done, NULL, 0);
}

void drisk_meter_end(struct drisk_meter *m, int64_t done)
{
    if (drisk_progress_mode == DRISK_PROGRESS_OFF)
        return;
    if (m->shown || drisk_monotonic_s() - m->t0 >= (drisk_progress_plain_s < 1.0 ? 0.0 : 1.0))
        line(m, done, NULL, 1);
}
