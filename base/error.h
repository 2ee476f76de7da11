/* Status codes and the caller-owned error buffer every fallible drisk function fills.
 * Like curl's error buffer: no global "last error", so it is safe across threads.
 * It lives in models/, the bottom of the dependency order, so every module may use it. */
#ifndef DRISK_ERROR_H
#define DRISK_ERROR_H

#include <stddef.h>

enum drisk_status {
    DRISK_OK = 0,
    DRISK_EINVAL,   /* bad input or usage: the user can fix it (CLI exit 2) */
    DRISK_ENOMEM,
    DRISK_EIO,      /* file or database failure (CLI exit 1) */
    DRISK_ENOTFOUND,
    DRISK_ESCHEMA   /* database or model built for another schema version */
};

#define DRISK_ERROR_MAX 512

struct drisk_error {
    enum drisk_status status;
    char msg[DRISK_ERROR_MAX];
};

/* Fills err (may be NULL) with a printf-style message and returns status. */
enum drisk_status drisk_error_set(struct drisk_error *err, enum drisk_status status,
                                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears err to DRISK_OK with an empty message. */
void drisk_error_clear(struct drisk_error *err);

/* A short name for a status ("invalid input", "I/O error", ...). Static storage. */
const char *drisk_status_name(enum drisk_status status);

#endif
