/* libFuzzer harness: the model loader on any bytes. The input's last 4 bytes are
 * replaced by the CRC-32 of the rest, so that mutations reach the metadata, payload and
 * calibrator parsers instead of stopping at the checksum; a model that loads then
 * predicts and explains one row. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/format.h"
#include "models/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 16 || size > (1 << 22))
        return 0;
    unsigned char *buf = malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    uint32_t crc = drisk_crc32(buf, size - 4);
    for (int i = 0; i < 4; i++)
        buf[size - 4 + i] = (unsigned char)(crc >> (8 * i));
    struct drisk_model_meta meta;
    struct drisk_error err;
    struct drisk_model *m = NULL;
    if (drisk_model_read_meta(buf, size, &meta, &err) == DRISK_OK &&
        drisk_model_load(buf, size, meta.schema_hash, &m, &err) == DRISK_OK &&
        m->meta.n_features > 0 && m->meta.n_features <= 4096) {
        size_t d = m->meta.n_features;
        double *x = calloc(d, sizeof *x), *contrib = calloc(d, sizeof *contrib), base;
        struct drisk_prediction p;
        if (x && contrib) {
            for (size_t i = 0; i < d; i++)
                x[i] = (double)(i % 7) - 3.0;
            drisk_model_predict(m, x, 1, &p, &err);
            drisk_model_explain(m, x, contrib, &base, &err);
        }
        free(x);
        free(contrib);
    }
    drisk_model_free(m);
    free(buf);
    return 0;
}
