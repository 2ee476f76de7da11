/* The drisk_error buffer: formatting and clearing. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>

enum drisk_status drisk_error_set(struct drisk_error *err, enum drisk_status status,
                                  const char *fmt, ...)
{
    if (!err)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = status;
    return status;
}

void drisk_error_clear(struct drisk_error *err)
{
    if (!err)
        return;
    err->status = DRISK_OK;
    err->msg[0] = '\0';
}

const char *drisk_status_name(enum drisk_status status)
{
    switch (status) {
    case DRISK_OK: return "ok";
    case DRISK_EINVAL: return "invalid input";
    case DRISK_ENOMEM: return "out of memory";
    case DRISK_EIO: return "I/O error";
    case DRISK_ENOTFOUND: return "not found";
    case DRISK_ESCHEMA: return "schema mismatch";
    }
    return "unknown error";
}
