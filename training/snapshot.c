/* Snapshot datasets on the history replay (data/replay.c): labels, the feature schema of a
 * training window, the export, row matrices and the registry load training shares. */
#include "training/snapshot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "data/export.h"

double drisk_snapshot_label(const struct drisk_snapshot *s, enum drisk_target target)
{
    switch (target) {
    case DRISK_TARGET_LATE: return s->late >= 0 ? s->late : NAN;
    case DRISK_TARGET_LOST: return s->lost >= 0 ? s->lost : NAN;
    case DRISK_TARGET_ETA: return s->eta_h;
    case DRISK_TARGET_COUNT: break;
    }
    return NAN;
}

static int add_to_schema(const struct drisk_shipment *sh, const struct drisk_scan *sc, size_t n,
                         void *ctx, struct drisk_error *err)
{
    (void)sc, (void)n, (void)err;
    drisk_schema_builder_add(ctx, sh);
    return 0;
}

enum drisk_status drisk_snapshot_schema(struct drisk_store *store, int64_t until,
                                        int64_t min_count, struct drisk_feature_schema *schema,
                                        struct drisk_error *err)
{
    struct drisk_schema_builder *b = drisk_schema_builder_create();
    if (!b)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory building the feature schema");
    struct drisk_store_filter f = { .created_from = INT64_MIN, .created_to = until };
    enum drisk_status rc = drisk_store_iterate(store, &f, add_to_schema, b, err);
    if (!rc)
        drisk_schema_builder_finish(b, min_count, schema);
    drisk_schema_builder_free(b);
    return rc;
}

struct export_ctx {
    FILE *out;
    enum drisk_target target;
    size_t dim;
    int64_t rows;
};

/* Most features are 0/1 or small counts: those skip printf. */
static void put_number(FILE *f, double v)
{
    if (v >= 0 && v < 1e9 && v == (double)(int64_t)v) {
        char buf[16], *p = buf + sizeof buf;
        int64_t n = (int64_t)v;
        do {
            *--p = (char)('0' + n % 10);
            n /= 10;
        } while (n);
        *--p = ',';
        fwrite(p, 1, (size_t)(buf + sizeof buf - p), f);
    } else {
        fprintf(f, ",%.17g", v);
    }
}

static int export_row(const struct drisk_snapshot *s, void *ctx, struct drisk_error *err)
{
    struct export_ctx *c = ctx;
    double label = drisk_snapshot_label(s, c->target);
    char ts[DRISK_TS_BUF];
    if (isnan(label))
        return 0;
    drisk_csv_put_field(c->out, s->sh->shipment_id);
    fputc(',', c->out);
    drisk_csv_put_field(c->out, s->sh->merchant);
    fprintf(c->out, ",%s", drisk_ts_format(s->as_of, ts));
    put_number(c->out, label);
    for (size_t k = 0; k < c->dim; k++)
        put_number(c->out, s->x[k]);
    fputc('\n', c->out);
    c->rows++;
    if (ferror(c->out)) {
        drisk_error_set(err, DRISK_EIO, "error writing the snapshot file");
        return -1;
    }
    return 0;
}

enum drisk_status drisk_snapshot_export(struct drisk_store *store,
                                        const struct drisk_feature_schema *schema,
                                        enum drisk_target target, int64_t from,
                                        int64_t until, FILE *out, int64_t *rows,
                                        struct drisk_error *err)
{
    struct export_ctx c = { out, target, schema->n_features, 0 };
    char (*names)[DRISK_FEATURE_NAME_MAX] = calloc(schema->n_features, DRISK_FEATURE_NAME_MAX);
    if (!names || drisk_feature_names(schema, names)) {
        free(names);
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory naming features");
    }
    fputs("shipment_id,merchant_id,as_of,label", out);
    for (size_t k = 0; k < schema->n_features; k++) {
        fputc(',', out);
        drisk_csv_put_field(out, names[k]);
    }
    fputc('\n', out);
    free(names);
    struct drisk_snapshot_options o = { from, until, INT64_MIN, DRISK_TS_NONE, 1 };
    enum drisk_status rc = drisk_snapshots_run(store, schema, &o, export_row, &c, err);
    *rows = c.rows;
    if (!rc && (ferror(out) || fflush(out)))
        rc = drisk_error_set(err, DRISK_EIO, "error writing the snapshot file");
    return rc;
}

int drisk_rows_push(struct drisk_rows *r, const double *x, double y)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16384;
        double *nx = realloc(r->x, ncap * r->d * sizeof *nx);
        if (!nx)
            return -1;
        r->x = nx;
        double *ny = realloc(r->y, ncap * sizeof *ny);
        if (!ny)
            return -1;
        r->y = ny;
        r->cap = ncap;
    }
    memcpy(r->x + r->n * r->d, x, r->d * sizeof *x);
    r->y[r->n++] = y;
    return 0;
}

void drisk_rows_free(struct drisk_rows *r)
{
    free(r->x);
    free(r->y);
    r->x = r->y = NULL;
    r->n = r->cap = 0;
}

enum drisk_status drisk_rows_predict(const struct drisk_model *m, const struct drisk_rows *r,
                                     double *p, double *p90, struct drisk_error *err)
{
    enum { BATCH = 4096 };
    struct drisk_prediction out[BATCH];
    for (size_t i = 0; i < r->n; i += BATCH) {
        size_t k = r->n - i < BATCH ? r->n - i : BATCH;
        enum drisk_status rc = drisk_model_predict(m, r->x + i * r->d, k, out, err);
        if (rc)
            return rc;
        for (size_t j = 0; j < k; j++) {
            p[i + j] = m->meta.target == DRISK_TARGET_ETA ? out[j].p50_h : out[j].prob;
            if (p90)
                p90[i + j] = out[j].p90_h;
        }
    }
    return DRISK_OK;
}

enum drisk_status drisk_registry_load(struct drisk_store *store, int64_t id, const char *target,
                                      struct drisk_model_row *row,
                                      struct drisk_feature_schema *schema,
                                      struct drisk_model **m, struct drisk_error *err)
{
    enum drisk_status rc;
    *m = NULL;
    memset(row, 0, sizeof *row);
    if ((rc = drisk_store_model_get(store, id, target, row, err)))
        return rc;
    if (strcmp(row->target, target) != 0)
        rc = drisk_error_set(err, DRISK_EINVAL, "model %lld predicts %s, not %s",
                             (long long)row->id, row->target, target);
    else if (!(rc = drisk_feature_schema_read(row->schema, schema, err)))
        rc = drisk_model_load(row->payload, row->payload_len, schema->hash, m, err);
    if (rc)
        drisk_store_model_row_free(row);
    return rc;
}
