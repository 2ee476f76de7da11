/* The model file format: byte buffers and readers, the CRC, save and load (the registry
 * and wrappers are models/model.c).
 *
 * A model file (version 1) is, in order:
 *   "DRISKMDL"                      8-byte magic
 *   u32 format version              1
 *   u32 count, then count entries   typed metadata: key (string), u8 type, value, where
 *                                   type 1 = i64, 2 = f64, 3 = string. Keys: algorithm,
 *                                   target, schema_hash, n_features, train_from,
 *                                   train_until, valid_from, valid_until, n_train_rows,
 *                                   n_valid_rows, "metric.<name>" (f64), "param.<name>"
 *                                   (string). Unknown keys are skipped (a newer writer may
 *                                   add some); the first four are required.
 *   u64 length, payload             the learner's parameters (its ops->save)
 *   u64 length, calibrator          see drisk_calibrator_save in models/format.h
 *   u32 CRC-32 of all bytes before it
 * and nothing after. Encodings are in models/format.h: little-endian integers, doubles as
 * raw IEEE-754 bytes (exact round trip). The checksum makes a flipped byte anywhere a
 * clean refusal rather than a quietly different model. */
#include "models/format.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define MAGIC "DRISKMDL"
#define MAGIC_LEN 8
#define FORMAT_VERSION 1u
#define MAX_META_ENTRIES 1024u
#define META_KEY_BUF 64
#define META_STR_BUF 128

enum meta_type { META_I64 = 1, META_F64 = 2, META_STR = 3 };

/* ---- byte buffer ---- */

void drisk_buf_free(struct drisk_buf *buf)
{
    if (!buf)
        return;
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
    buf->failed = 0;
}

void drisk_buf_put(struct drisk_buf *buf, const void *bytes, size_t n)
{
    if (buf->failed || n == 0)
        return;
    if (n > DRISK_MODEL_MAX_BYTES - buf->len) {
        buf->failed = 1;
        return;
    }
    if (buf->len + n > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < buf->len + n)
            cap = cap > DRISK_MODEL_MAX_BYTES / 2 ? DRISK_MODEL_MAX_BYTES : cap * 2;
        unsigned char *p = realloc(buf->data, cap);
        if (!p) {
            buf->failed = 1;
            return;
        }
        buf->data = p;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
}

void drisk_buf_put_u8(struct drisk_buf *buf, uint8_t v)
{
    drisk_buf_put(buf, &v, 1);
}

void drisk_buf_put_u32(struct drisk_buf *buf, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    drisk_buf_put(buf, b, 4);
}

void drisk_buf_put_u64(struct drisk_buf *buf, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    drisk_buf_put(buf, b, 8);
}

void drisk_buf_put_f64(struct drisk_buf *buf, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    drisk_buf_put_u64(buf, bits);
}

void drisk_buf_put_f64s(struct drisk_buf *buf, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        drisk_buf_put_f64(buf, v[i]);
}

void drisk_buf_put_str(struct drisk_buf *buf, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT32_MAX) {
        buf->failed = 1;
        return;
    }
    drisk_buf_put_u32(buf, (uint32_t)n);
    drisk_buf_put(buf, s, n);
}

/* ---- reader ---- */

static const unsigned char *reader_take(struct drisk_reader *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t drisk_reader_u8(struct drisk_reader *r)
{
    const unsigned char *p = reader_take(r, 1);
    return p ? p[0] : 0;
}

uint32_t drisk_reader_u32(struct drisk_reader *r)
{
    const unsigned char *p = reader_take(r, 4);
    uint32_t v = 0;
    if (p)
        for (int i = 0; i < 4; i++)
            v |= (uint32_t)p[i] << (8 * i);
    return v;
}

uint64_t drisk_reader_u64(struct drisk_reader *r)
{
    const unsigned char *p = reader_take(r, 8);
    uint64_t v = 0;
    if (p)
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)p[i] << (8 * i);
    return v;
}

double drisk_reader_f64(struct drisk_reader *r)
{
    uint64_t bits = drisk_reader_u64(r);
    double v;
    memcpy(&v, &bits, 8);
    return v;
}

void drisk_reader_f64s(struct drisk_reader *r, double *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = drisk_reader_f64(r);
}

size_t drisk_reader_count(struct drisk_reader *r, size_t elem_bytes, size_t max)
{
    uint64_t n = drisk_reader_u64(r);
    if (r->bad)
        return 0;
    if (n > max || (elem_bytes && n > (r->len - r->pos) / elem_bytes)) {
        r->bad = 1;
        return 0;
    }
    return (size_t)n;
}

void drisk_reader_str(struct drisk_reader *r, char *dst, size_t cap)
{
    dst[0] = '\0';
    uint32_t n = drisk_reader_u32(r);
    if (r->bad)
        return;
    if (n >= cap) {
        r->bad = 1;
        return;
    }
    const unsigned char *p = reader_take(r, n);
    if (!p)
        return;
    if (memchr(p, 0, n)) {
        r->bad = 1;
        return;
    }
    memcpy(dst, p, n);
    dst[n] = '\0';
}

enum drisk_status drisk_reader_check(const struct drisk_reader *r, const char *what,
                                     struct drisk_error *err)
{
    if (!r->bad)
        return DRISK_OK;
    return drisk_error_set(err, DRISK_EINVAL, "%s: truncated or malformed (at byte %zu of %zu)",
                           what, r->pos, r->len);
}

/* ---- CRC-32 ---- */

uint32_t drisk_crc32(const void *data, size_t n)
{
    /* Nibble table of the reflected polynomial 0xEDB88320: small, constant, thread-safe. */
    static const uint32_t tab[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
        0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
        0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu
    };
    const unsigned char *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ tab[crc & 15];
        crc = (crc >> 4) ^ tab[crc & 15];
    }
    return crc ^ 0xFFFFFFFFu;
}

/* ---- save ---- */

static void put_meta_i64(struct drisk_buf *b, const char *key, int64_t v)
{
    drisk_buf_put_str(b, key);
    drisk_buf_put_u8(b, META_I64);
    drisk_buf_put_u64(b, (uint64_t)v);
}

static void put_meta_str(struct drisk_buf *b, const char *key, const char *v)
{
    drisk_buf_put_str(b, key);
    drisk_buf_put_u8(b, META_STR);
    drisk_buf_put_str(b, v);
}

/* Patches a u64 length at offset now that the section it measures is written. */
static void patch_u64(struct drisk_buf *b, size_t at, uint64_t v)
{
    if (b->failed)
        return;
    for (int i = 0; i < 8; i++)
        b->data[at + (size_t)i] = (unsigned char)(v >> (8 * i));
}

enum drisk_status drisk_model_save(const struct drisk_model *m, struct drisk_buf *out,
                                   struct drisk_error *err)
{
    enum drisk_status st;
    const struct drisk_model_meta *meta = &m->meta;
    size_t start = out->len;
    if (!meta->schema_hash[0]) {
        st = drisk_error_set(err, DRISK_EINVAL, "save: the model has no feature schema hash "
                             "(drisk_model_set_schema)");
        goto out;
    }
    drisk_buf_put(out, MAGIC, MAGIC_LEN);
    drisk_buf_put_u32(out, FORMAT_VERSION);
    drisk_buf_put_u32(out, (uint32_t)(10 + meta->n_metrics + meta->n_params));
    put_meta_str(out, "algorithm", meta->algorithm);
    put_meta_str(out, "target", drisk_target_name(meta->target));
    put_meta_str(out, "schema_hash", meta->schema_hash);
    put_meta_i64(out, "n_features", (int64_t)meta->n_features);
    put_meta_i64(out, "train_from", meta->train_from);
    put_meta_i64(out, "train_until", meta->train_until);
    put_meta_i64(out, "valid_from", meta->valid_from);
    put_meta_i64(out, "valid_until", meta->valid_until);
    put_meta_i64(out, "n_train_rows", (int64_t)meta->n_train_rows);
    put_meta_i64(out, "n_valid_rows", (int64_t)meta->n_valid_rows);
    for (size_t i = 0; i < meta->n_metrics; i++) {
        char key[META_KEY_BUF];
        snprintf(key, sizeof key, "metric.%s", meta->metrics[i].key);
        drisk_buf_put_str(out, key);
        drisk_buf_put_u8(out, META_F64);
        drisk_buf_put_f64(out, meta->metrics[i].value);
    }
    for (size_t i = 0; i < meta->n_params; i++) {
        char key[META_KEY_BUF];
        snprintf(key, sizeof key, "param.%s", meta->params[i].key);
        put_meta_str(out, key, meta->params[i].value);
    }

    size_t len_at = out->len;
    drisk_buf_put_u64(out, 0);
    size_t body = out->len;
    if ((st = m->ops->save(m, out, err)) != DRISK_OK)
        goto out;
    patch_u64(out, len_at, (uint64_t)(out->len - body));

    len_at = out->len;
    drisk_buf_put_u64(out, 0);
    body = out->len;
    drisk_calibrator_save(m->calibrator, out);
    patch_u64(out, len_at, (uint64_t)(out->len - body));

    if (!out->failed)
        drisk_buf_put_u32(out, drisk_crc32(out->data + start, out->len - start));
    if (out->failed) {
        st = drisk_error_set(err, DRISK_ENOMEM, "save: out of memory or model larger than %zu "
                             "bytes", DRISK_MODEL_MAX_BYTES);
        goto out;
    }
    st = DRISK_OK;
out:
    return st;
}

enum drisk_status drisk_model_save_file(const struct drisk_model *m, const char *path,
                                        struct drisk_error *err)
{
    struct drisk_buf buf = { 0 };
    FILE *f = NULL;
    enum drisk_status st;
    if ((st = drisk_model_save(m, &buf, err)) != DRISK_OK)
        goto out;
    f = fopen(path, "wb");
    if (!f) {
        st = drisk_error_set(err, DRISK_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    size_t wrote = fwrite(buf.data, 1, buf.len, f);
    int failed = wrote != buf.len || fflush(f) != 0 || ferror(f);
    int saved_errno = errno;
    int close_failed = fclose(f) != 0;
    f = NULL;
    if (failed || close_failed) {
        st = drisk_error_set(err, DRISK_EIO, "%s: write failed: %s", path,
                             strerror(failed ? saved_errno : errno));
        goto out;
    }
out:
    if (f)
        fclose(f);
    drisk_buf_free(&buf);
    return st;
}

/* ---- load ---- */

/* Checks magic, version, size and checksum; leaves r positioned at the metadata. */
static enum drisk_status open_container(const void *data, size_t len, struct drisk_reader *r,
                                        struct drisk_error *err)
{
    memset(r, 0, sizeof *r);
    if (!data || len < MAGIC_LEN || memcmp(data, MAGIC, MAGIC_LEN) != 0)
        return drisk_error_set(err, DRISK_EINVAL, "not a drisk model (no %s magic in the first "
                               "bytes of %zu)", MAGIC, len);
    r->p = data;
    r->len = len;
    r->pos = MAGIC_LEN;
    uint32_t version = drisk_reader_u32(r);
    if (r->bad)
        return drisk_error_set(err, DRISK_EINVAL, "model truncated: %zu bytes", len);
    if (version != FORMAT_VERSION)
        return drisk_error_set(err, DRISK_EINVAL, "model file format version %u is not supported "
                               "by this drisk (it reads version %u)%s", version, FORMAT_VERSION,
                               version > FORMAT_VERSION ? ": upgrade drisk" : "");
    if (len < MAGIC_LEN + 4 + 4 + 8 + 8 + 4)
        return drisk_error_set(err, DRISK_EINVAL, "model truncated: %zu bytes", len);
    const unsigned char *p = data;
    uint32_t stored = (uint32_t)p[len - 4] | (uint32_t)p[len - 3] << 8 |
                      (uint32_t)p[len - 2] << 16 | (uint32_t)p[len - 1] << 24;
    if (drisk_crc32(data, len - 4) != stored)
        return drisk_error_set(err, DRISK_EINVAL, "model corrupted or truncated: checksum "
                               "mismatch over %zu bytes", len);
    r->len = len - 4; /* the checksum is not part of the sections */
    return DRISK_OK;
}

static enum drisk_status read_meta(struct drisk_reader *r, struct drisk_model_meta *meta,
                                   struct drisk_error *err)
{
    enum drisk_status st;
    int have_alg = 0, have_target = 0, have_schema = 0, have_nf = 0;
    memset(meta, 0, sizeof *meta);
    uint32_t count = drisk_reader_u32(r);
    if (count > MAX_META_ENTRIES) {
        st = drisk_error_set(err, DRISK_EINVAL, "model metadata: %u entries (at most %u)", count,
                             MAX_META_ENTRIES);
        goto out;
    }
    for (uint32_t i = 0; i < count && !r->bad; i++) {
        char key[META_KEY_BUF], sval[META_STR_BUF];
        int64_t ival = 0;
        double fval = 0.0;
        drisk_reader_str(r, key, sizeof key);
        uint8_t type = drisk_reader_u8(r);
        if (r->bad)
            break;
        switch (type) {
        case META_I64: ival = (int64_t)drisk_reader_u64(r); break;
        case META_F64: fval = drisk_reader_f64(r); break;
        case META_STR: drisk_reader_str(r, sval, sizeof sval); break;
        default:
            st = drisk_error_set(err, DRISK_EINVAL, "model metadata '%s': unknown type %u",
                                 key, (unsigned)type);
            goto out;
        }
        if (r->bad)
            break;
        int known = strcmp(key, "algorithm") == 0 || strcmp(key, "target") == 0 ||
                    strcmp(key, "schema_hash") == 0 || strcmp(key, "n_features") == 0 ||
                    strcmp(key, "train_from") == 0 || strcmp(key, "train_until") == 0 ||
                    strcmp(key, "valid_from") == 0 || strcmp(key, "valid_until") == 0 ||
                    strcmp(key, "n_train_rows") == 0 || strcmp(key, "n_valid_rows") == 0 ||
                    strncmp(key, "metric.", 7) == 0 || strncmp(key, "param.", 6) == 0;
        if (!known)
            continue; /* written by a newer drisk: not ours to interpret */
        int want = strcmp(key, "algorithm") == 0 || strcmp(key, "target") == 0 ||
                   strcmp(key, "schema_hash") == 0 || strncmp(key, "param.", 6) == 0 ? META_STR
                 : strncmp(key, "metric.", 7) == 0 ? META_F64 : META_I64;
        if (type != want) {
            st = drisk_error_set(err, DRISK_EINVAL, "model metadata '%s' has type %u, expected %d",
                                 key, (unsigned)type, want);
            goto out;
        }
        if (strcmp(key, "algorithm") == 0) {
            have_alg = sval[0] && strlen(sval) < sizeof meta->algorithm;
            if (have_alg)
                memcpy(meta->algorithm, sval, strlen(sval) + 1);
        } else if (strcmp(key, "target") == 0) {
            int t = drisk_target_parse(sval);
            have_target = t >= 0;
            meta->target = have_target ? (enum drisk_target)t : DRISK_TARGET_LATE;
        } else if (strcmp(key, "schema_hash") == 0) {
            have_schema = sval[0] && strlen(sval) < sizeof meta->schema_hash;
            if (have_schema)
                memcpy(meta->schema_hash, sval, strlen(sval) + 1);
        } else if (strcmp(key, "n_features") == 0) {
            have_nf = ival > 0 && ival <= (int64_t)(SIZE_MAX / 64);
            meta->n_features = have_nf ? (size_t)ival : 0;
        } else if (strcmp(key, "train_from") == 0) {
            meta->train_from = ival;
        } else if (strcmp(key, "train_until") == 0) {
            meta->train_until = ival;
        } else if (strcmp(key, "valid_from") == 0) {
            meta->valid_from = ival;
        } else if (strcmp(key, "valid_until") == 0) {
            meta->valid_until = ival;
        } else if (strcmp(key, "n_train_rows") == 0) {
            meta->n_train_rows = (uint64_t)ival;
        } else if (strcmp(key, "n_valid_rows") == 0) {
            meta->n_valid_rows = (uint64_t)ival;
        } else if (strncmp(key, "metric.", 7) == 0) {
            if ((st = drisk_meta_set_metric(meta, key + 7, fval, err)) != DRISK_OK)
                goto out;
        } else if ((st = drisk_meta_set_param(meta, key + 6, sval, err)) != DRISK_OK) {
            goto out;
        }
    }
    if ((st = drisk_reader_check(r, "model metadata", err)) != DRISK_OK)
        goto out;
    if (!have_alg || !have_target || !have_schema || !have_nf) {
        st = drisk_error_set(err, DRISK_EINVAL, "model metadata lacks a valid %s",
                             !have_alg ? "algorithm" : !have_target ? "target"
                             : !have_schema ? "schema_hash" : "n_features");
        goto out;
    }
    st = DRISK_OK;
out:
    return st;
}

enum drisk_status drisk_model_read_meta(const void *data, size_t len,
                                        struct drisk_model_meta *meta, struct drisk_error *err)
{
    struct drisk_reader r;
    enum drisk_status st = open_container(data, len, &r, err);
    if (st == DRISK_OK)
        st = read_meta(&r, meta, err);
    return st;
}

/* A sub-reader over the next length-prefixed section of r. */
static struct drisk_reader section(struct drisk_reader *r)
{
    struct drisk_reader s = { 0 };
    size_t n = drisk_reader_count(r, 1, SIZE_MAX);
    if (r->bad) {
        s.bad = 1;
        return s;
    }
    s.p = r->p + r->pos;
    s.len = n;
    r->pos += n;
    return s;
}

enum drisk_status drisk_model_load(const void *data, size_t len, const char *expected_schema_hash,
                                   struct drisk_model **out, struct drisk_error *err)
{
    struct drisk_model *m = NULL;
    struct drisk_calibrator *cal = NULL;
    struct drisk_model_meta *meta = NULL;
    struct drisk_reader r;
    enum drisk_status st;
    *out = NULL;
    if (!expected_schema_hash) {
        st = drisk_error_set(err, DRISK_EINVAL, "load: no expected feature schema hash");
        goto out;
    }
    meta = malloc(sizeof *meta);
    if (!meta) {
        st = drisk_error_set(err, DRISK_ENOMEM, "load: out of memory");
        goto out;
    }
    if ((st = open_container(data, len, &r, err)) != DRISK_OK)
        goto out;
    if ((st = read_meta(&r, meta, err)) != DRISK_OK)
        goto out;
    if (strcmp(meta->schema_hash, expected_schema_hash) != 0) {
        st = drisk_error_set(err, DRISK_ESCHEMA, "model was trained for feature schema %s but this "
                             "drisk builds features with schema %s: retrain the model (drisk "
                             "train) with this version", meta->schema_hash, expected_schema_hash);
        goto out;
    }
    const struct drisk_model_ops *ops = drisk_model_ops_find(meta->algorithm);
    if (!ops) {
        st = drisk_error_set(err, DRISK_EINVAL, "model uses algorithm '%s', which this drisk does "
                             "not know", meta->algorithm);
        goto out;
    }
    int cls = drisk_target_is_classification(meta->target);
    if ((cls && !ops->classification) || (!cls && !ops->regression)) {
        st = drisk_error_set(err, DRISK_EINVAL, "model: algorithm %s cannot predict target %s",
                             ops->name, drisk_target_name(meta->target));
        goto out;
    }
    struct drisk_reader payload = section(&r);
    struct drisk_reader calib = section(&r);
    if ((st = drisk_reader_check(&r, "model sections", err)) != DRISK_OK)
        goto out;
    if (r.pos != r.len) {
        st = drisk_error_set(err, DRISK_EINVAL, "model: %zu stray bytes after the sections",
                             r.len - r.pos);
        goto out;
    }
    if ((st = ops->load(&payload, meta, &m, err)) != DRISK_OK)
        goto out;
    m->ops = ops;
    m->meta = *meta;
    if (payload.pos != payload.len) {
        st = drisk_error_set(err, DRISK_EINVAL, "model payload: %zu stray bytes",
                             payload.len - payload.pos);
        goto out;
    }
    if ((st = drisk_calibrator_load(&calib, &cal, err)) != DRISK_OK)
        goto out;
    if (calib.pos != calib.len) {
        st = drisk_error_set(err, DRISK_EINVAL, "model calibrator: %zu stray bytes",
                             calib.len - calib.pos);
        goto out;
    }
    if (cal && cls == (drisk_calibrator_kind(cal) == DRISK_CALIB_CONFORMAL)) {
        st = drisk_error_set(err, DRISK_EINVAL, "model: a %s calibrator on a %s model",
                             drisk_calib_kind_name(drisk_calibrator_kind(cal)),
                             cls ? "classification" : "regression");
        goto out;
    }
    m->calibrator = cal;
    cal = NULL;
    *out = m;
    m = NULL;
out:
    drisk_calibrator_free(cal);
    drisk_model_free(m);
    free(meta);
    return st;
}

enum drisk_status drisk_model_load_file(const char *path, const char *expected_schema_hash,
                                        struct drisk_model **out, struct drisk_error *err)
{
    struct drisk_buf buf = { 0 };
    FILE *f = NULL;
    enum drisk_status st;
    *out = NULL;
    f = fopen(path, "rb");
    if (!f) {
        st = drisk_error_set(err, DRISK_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    unsigned char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        drisk_buf_put(&buf, chunk, n);
        if (buf.failed) {
            st = drisk_error_set(err, DRISK_EINVAL, "%s: larger than %zu bytes or out of memory",
                                 path, DRISK_MODEL_MAX_BYTES);
            goto out;
        }
    }
    if (ferror(f)) {
        st = drisk_error_set(err, DRISK_EIO, "%s: read failed", path);
        goto out;
    }
    if ((st = drisk_model_load(buf.data, buf.len, expected_schema_hash, out, err)) != DRISK_OK) {
        char msg[DRISK_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        drisk_error_set(err, st, "%s: %s", path, msg);
        goto out;
    }
out:
    if (f)
        fclose(f);
    drisk_buf_free(&buf);
    return st;
}
