/* The stderr log sink behind DRISK_LOG. One fprintf per line keeps lines from
 * different threads whole (stdio locks the stream per call). */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum drisk_log_level drisk_log_threshold = DRISK_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int drisk_log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            drisk_log_threshold = (enum drisk_log_level)i;
            return 0;
        }
    }
    return -1;
}

void drisk_log_write(enum drisk_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "drisk: %s: %s\n", level_names[level], line);
}

double drisk_monotonic_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
