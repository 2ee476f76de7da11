/* Leveled logging to stderr. DRISK_LOG checks the level before formatting, so a
 * disabled debug line costs one comparison. Library code never writes to stdout. */
#ifndef DRISK_LOG_H
#define DRISK_LOG_H

enum drisk_log_level {
    DRISK_LOG_ERROR = 0,
    DRISK_LOG_WARN,
    DRISK_LOG_INFO,
    DRISK_LOG_DEBUG
};

extern enum drisk_log_level drisk_log_threshold;

/* Sets the threshold from a name ("error", "warn", "info", "debug"); returns 0 on
 * success, -1 for an unknown name (threshold unchanged). */
int drisk_log_set_level(const char *name);

void drisk_log_write(enum drisk_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Seconds on the monotonic clock: for timings and progress lines (differences only). */
double drisk_monotonic_s(void);

#define DRISK_LOG(level, ...)                                   \
    do {                                                        \
        if ((level) <= drisk_log_threshold)                     \
            drisk_log_write((level), __VA_ARGS__);              \
    } while (0)

#endif
