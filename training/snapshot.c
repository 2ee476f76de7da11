/* The snapshot replay. Shipments arrive from the store in created_at order; each one's
 * events (scans, the moment its lateness became known, its delivery, its snapshot
 * moments) go into a min-heap ordered by (time, kind). Before a shipment created at t is
 * added, every event before t is processed, so the network state always holds exactly
 * the events up to the moment being processed. At equal times scans and outcomes come
 * before snapshots: a snapshot "right after a scan" includes it. */
#include "training/snapshot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/export.h"
#include "engine/network.h"
#include "base/timeutil.h"
#include "engine/vocab.h"

enum kind { EV_SCAN = 0, EV_OUTCOME, EV_DELIVERED, EV_SNAPSHOT, EV_DONE };

struct active {
    struct drisk_shipment sh;
    struct drisk_scan_event *scans;
    size_t n_scans;
    int emit; /* snapshots wanted */
};

struct event {
    int64_t t;
    int kind;
    uint64_t seq; /* insertion order: ties stay stable */
    struct active *a;
    int64_t arg;  /* scan index, or late flag */
};

struct replay {
    const struct drisk_feature_schema *schema;
    const struct drisk_snapshot_options *opts;
    struct drisk_network *net;
    struct event *heap;
    size_t n, cap;
    uint64_t seq;
    double *x;
    drisk_snapshot_fn fn;
    void *ctx;
    enum drisk_status status;
};

static int before(const struct event *a, const struct event *b)
{
    if (a->t != b->t)
        return a->t < b->t;
    if (a->kind != b->kind)
        return a->kind < b->kind;
    return a->seq < b->seq;
}

static int push(struct replay *r, int64_t t, int kind, struct active *a, int64_t arg)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 4096;
        struct event *h = realloc(r->heap, ncap * sizeof *h);
        if (!h)
            return -1;
        r->heap = h;
        r->cap = ncap;
    }
    struct event e = { t, kind, r->seq++, a, arg };
    size_t i = r->n++;
    while (i > 0 && before(&e, &r->heap[(i - 1) / 2])) {
        r->heap[i] = r->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    r->heap[i] = e;
    return 0;
}

static struct event pop(struct replay *r)
{
    struct event top = r->heap[0], last = r->heap[--r->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= r->n)
            break;
        if (c + 1 < r->n && before(&r->heap[c + 1], &r->heap[c]))
            c++;
        if (!before(&r->heap[c], &last))
            break;
        r->heap[i] = r->heap[c];
        i = c;
    }
    if (r->n)
        r->heap[i] = last;
    return top;
}

static void free_active(struct active *a)
{
    free(a->scans);
    free(a);
}

static int process(struct replay *r, const struct event *e, struct drisk_error *err)
{
    struct active *a = e->a;
    const struct drisk_shipment *sh = &a->sh;
    enum drisk_status st = DRISK_OK;
    switch (e->kind) {
    case EV_SCAN:
        st = drisk_network_on_scan(r->net, sh, e->arg > 0 ? &a->scans[e->arg - 1] : NULL,
                                   &a->scans[e->arg]);
        break;
    case EV_OUTCOME:
        st = drisk_network_on_outcome(r->net, sh, a->scans, a->n_scans, (int)e->arg, e->t);
        break;
    case EV_DELIVERED:
        st = drisk_network_on_delivered(r->net, sh, a->scans, a->n_scans);
        break;
    case EV_SNAPSHOT: {
        size_t n = 0;
        while (n < a->n_scans && a->scans[n].ts <= e->t)
            n++;
        struct drisk_snapshot s = { .sh = sh, .as_of = e->t, .late = -1, .lost = -1,
                                    .eta_h = NAN, .x = r->x };
        int known = sh->outcome != DRISK_OUTCOME_NONE;
        int delivered = sh->outcome == DRISK_OUTCOME_DELIVERED;
        if (known && e->t < sh->promised_at)
            s.late = !(delivered && sh->delivered_at <= sh->promised_at);
        if (known && e->t <= sh->promised_at + DRISK_LOST_WINDOW_S)
            s.lost = sh->outcome == DRISK_OUTCOME_LOST;
        if (delivered)
            s.eta_h = (double)(sh->delivered_at - e->t) / 3600.0;
        drisk_features_build(r->schema, r->net, sh, a->scans, n, e->t, r->x, NULL);
        if (r->fn(&s, r->ctx, err)) {
            r->status = DRISK_EINVAL;
            return -1;
        }
        break;
    }
    case EV_DONE:
        free_active(a);
        break;
    }
    if (st) {
        r->status = drisk_error_set(err, st, "out of memory in the network statistics");
        return -1;
    }
    return 0;
}

/* Processes every event strictly before t. */
static int drain(struct replay *r, int64_t t, struct drisk_error *err)
{
    while (r->n && r->heap[0].t < t) {
        struct event e = pop(r);
        if (process(r, &e, err))
            return -1;
    }
    return 0;
}

static int on_shipment(const struct drisk_shipment *sh, const struct drisk_scan *scans,
                       size_t n, void *ctx, struct drisk_error *err)
{
    struct replay *r = ctx;
    const struct drisk_snapshot_options *o = r->opts;
    if (sh->created_at > o->now)
        return 0;
    if (drain(r, sh->created_at, err))
        return -1;
    struct active *a = calloc(1, sizeof *a);
    if (!a || (n && !(a->scans = malloc(n * sizeof *a->scans)))) {
        free(a);
        r->status = drisk_error_set(err, DRISK_ENOMEM, "out of memory replaying history");
        return -1;
    }
    a->sh = *sh;
    a->emit = sh->created_at >= o->emit_from && sh->created_at < o->emit_to &&
              (!o->labeled_only || sh->outcome != DRISK_OUTCOME_NONE);
    int64_t last = sh->created_at;
    for (size_t k = 0; k < n && scans[k].ts <= o->now; k++) {
        a->scans[a->n_scans++] = (struct drisk_scan_event){ scans[k].ts, scans[k].location_id,
                                                            scans[k].event, scans[k].reason };
    }
    int fail = 0;
    for (size_t k = 0; k < a->n_scans; k++) {
        fail |= push(r, a->scans[k].ts, EV_SCAN, a, (int64_t)k);
        if (a->scans[k].ts > last)
            last = a->scans[k].ts;
    }
    /* lateness is known at delivery when on time, else when the promise passes */
    int delivered = sh->outcome == DRISK_OUTCOME_DELIVERED && sh->delivered_at != DRISK_TS_NONE;
    if (delivered && sh->delivered_at <= sh->promised_at && sh->delivered_at <= o->now)
        fail |= push(r, sh->delivered_at, EV_OUTCOME, a, 0);
    else if (!(delivered && sh->delivered_at <= sh->promised_at) && sh->promised_at <= o->now)
        fail |= push(r, sh->promised_at, EV_OUTCOME, a, 1);
    if (delivered && sh->delivered_at <= o->now)
        fail |= push(r, sh->delivered_at, EV_DELIVERED, a, 0);
    if (sh->promised_at > last)
        last = sh->promised_at;
    if (a->emit) {
        /* right after each scan, and every 24 h, while undelivered and not past the lost
         * window (nor past now) */
        int64_t end = sh->promised_at + DRISK_LOST_WINDOW_S;
        if (delivered && sh->delivered_at - 1 < end)
            end = sh->delivered_at - 1;
        if (o->now < end)
            end = o->now;
        int64_t prev = INT64_MIN;
        for (size_t k = 0; k < a->n_scans; k++)
            if (a->scans[k].ts <= end && a->scans[k].ts != prev) {
                fail |= push(r, a->scans[k].ts, EV_SNAPSHOT, a, 0);
                prev = a->scans[k].ts;
            }
        size_t k = 0; /* a 24 h tick that falls on a scan's moment is that scan's snapshot */
        for (int64_t t = sh->created_at + 86400; t <= end; t += 86400) {
            while (k < a->n_scans && a->scans[k].ts < t)
                k++;
            if (k < a->n_scans && a->scans[k].ts == t)
                continue;
            fail |= push(r, t, EV_SNAPSHOT, a, 0);
        }
        if (end > last)
            last = end;
    }
    fail |= push(r, last, EV_DONE, a, 0);
    if (fail) {
        r->status = drisk_error_set(err, DRISK_ENOMEM, "out of memory replaying history");
        return -1;
    }
    return 0;
}

/* The replay behind drisk_snapshots_run and drisk_network_replay: net is the caller's
 * (filled in place) when given, else a fresh one freed at the end. */
static enum drisk_status replay(struct drisk_store *store, const struct drisk_feature_schema *schema,
                                const struct drisk_snapshot_options *opts, drisk_snapshot_fn fn,
                                void *ctx, struct drisk_network *net, struct drisk_error *err)
{
    struct drisk_snapshot_options o = *opts;
    struct replay r = { .schema = schema, .opts = &o, .fn = fn, .ctx = ctx };
    enum drisk_status rc = DRISK_OK;
    if (o.now == DRISK_TS_NONE) {
        int64_t first;
        if ((rc = drisk_store_created_range(store, &first, &o.now, err)))
            return rc;
        if (o.now == DRISK_TS_NONE)
            return DRISK_OK; /* an empty store */
    }
    r.net = net ? net : drisk_network_create();
    r.x = schema ? malloc(schema->n_features * sizeof *r.x) : NULL;
    if (!r.net || (schema && !r.x)) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory replaying history");
        goto out;
    }
    /* every shipment up to now feeds the network, also those created after emit_to: a
     * snapshot days after emit_to must see the network as the server would */
    struct drisk_store_filter f = { NULL, o.history_from, INT64_MAX, 0, 0 };
    rc = drisk_store_iterate(store, &f, on_shipment, &r, err);
    if (rc && r.status)
        rc = r.status;
    if (!rc && drain(&r, INT64_MAX, err))
        rc = r.status;
out:
    /* free what is still in flight (each shipment once: at its EV_DONE) */
    while (r.n) {
        struct event e = pop(&r);
        if (e.kind == EV_DONE)
            free_active(e.a);
    }
    free(r.heap);
    free(r.x);
    if (r.net != net)
        drisk_network_free(r.net);
    return rc;
}

enum drisk_status drisk_snapshots_run(struct drisk_store *store,
                                      const struct drisk_feature_schema *schema,
                                      const struct drisk_snapshot_options *opts,
                                      drisk_snapshot_fn fn, void *ctx, struct drisk_error *err)
{
    return replay(store, schema, opts, fn, ctx, NULL, err);
}

enum drisk_status drisk_network_replay(struct drisk_store *store, int64_t now,
                                       struct drisk_network *net, struct drisk_error *err)
{
    /* no snapshot is wanted: an empty emit range */
    struct drisk_snapshot_options o = { 0, 0, INT64_MIN, now, 0 };
    return replay(store, NULL, &o, NULL, NULL, net, err);
}

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
    struct drisk_store_filter f = { NULL, INT64_MIN, until, 0, 0 };
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
