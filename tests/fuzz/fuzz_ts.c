/* libFuzzer harness: the timestamp parser, and that what it accepts formats and parses
 * back to the same instant. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t t, back;
    const char *why;
    if (drisk_ts_parse((const char *)data, size, &t, &why) == 0) {
        char buf[DRISK_TS_BUF];
        const char *s = drisk_ts_format(t, buf);
        if (drisk_ts_parse(s, strlen(s), &back, &why) != 0 || back != t)
            abort(); /* a formatted time must read back as itself */
    }
    return 0;
}
