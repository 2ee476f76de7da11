/* The history replay (data/replay.h). Shipments arrive from the store in created_at
 * order; each one's events (scans, the moment its lateness became known, its delivery,
 * its snapshot moments) go into a min-heap ordered by (time, kind). Before a shipment
 * created at t is added, every event before t is processed, so the network state always
 * holds exactly the events up to the moment being processed. At equal times scans and
 * outcomes come before snapshots: a snapshot "right after a scan" includes it. */
#include "data/replay.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/progress.h"
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
    int64_t feed_from; /* network events at or before it are already in net (a checkpoint) */
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
    struct drisk_meter meter; /* shipments read */
    int64_t read;
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
    if ((++r->read & 255) == 0)
        drisk_meter_tick(&r->meter, r->read);
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
    int64_t from = r->feed_from; /* events up to it are in the state already */
    for (size_t k = 0; k < a->n_scans; k++) {
        if (a->scans[k].ts > from)
            fail |= push(r, a->scans[k].ts, EV_SCAN, a, (int64_t)k);
        if (a->scans[k].ts > last)
            last = a->scans[k].ts;
    }
    /* lateness is known at delivery when on time, else when the promise passes */
    int delivered = sh->outcome == DRISK_OUTCOME_DELIVERED && sh->delivered_at != DRISK_TS_NONE;
    if (delivered && sh->delivered_at <= sh->promised_at && sh->delivered_at <= o->now) {
        if (sh->delivered_at > from)
            fail |= push(r, sh->delivered_at, EV_OUTCOME, a, 0);
    } else if (!(delivered && sh->delivered_at <= sh->promised_at) && sh->promised_at <= o->now &&
               sh->promised_at > from) {
        fail |= push(r, sh->promised_at, EV_OUTCOME, a, 1);
    }
    if (delivered && sh->delivered_at <= o->now && sh->delivered_at > from)
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
                                void *ctx, struct drisk_network *net, int64_t feed_from,
                                struct drisk_error *err)
{
    struct drisk_snapshot_options o = *opts;
    struct replay r = { .feed_from = feed_from, .schema = schema, .opts = &o, .fn = fn,
                        .ctx = ctx };
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
    struct drisk_store_filter f = { .created_from = o.history_from, .created_to = INT64_MAX };
    int64_t total = 0;
    if (drisk_progress_mode != DRISK_PROGRESS_OFF)
        drisk_store_count(store, &total, NULL, NULL);
    drisk_meter_start(&r.meter, schema ? "snapshots" : "history replay", "shipments", total);
    rc = drisk_store_iterate(store, &f, on_shipment, &r, err);
    if (rc && r.status)
        rc = r.status;
    if (!rc && drain(&r, INT64_MAX, err))
        rc = r.status;
    if (!rc)
        drisk_meter_end(&r.meter, r.read);
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
    return replay(store, schema, opts, fn, ctx, NULL, INT64_MIN, err);
}

enum drisk_status drisk_network_replay(struct drisk_store *store, int64_t now,
                                       struct drisk_network *net, struct drisk_error *err)
{
    /* no snapshot is wanted: an empty emit range */
    struct drisk_snapshot_options o = { 0, 0, INT64_MIN, now, 0 };
    return replay(store, NULL, &o, NULL, NULL, net, INT64_MIN, err);
}

/* ---- checkpoints ---- */

/* A fresh network fed the whole history up to now. */
static enum drisk_status whole_replay(struct drisk_store *store, int64_t now,
                                      struct drisk_network **net, struct drisk_error *err)
{
    if (!(*net = drisk_network_create()))
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory replaying history");
    return drisk_network_replay(store, now, *net, err);
}

/* Feeds net, which holds every event up to from, the events in (from, now]: the
 * shipments that can have any (those still alive at from, found by the store) replayed
 * with only their later events pushed. In the same order as a whole replay's, so the
 * state comes out bit for bit the same. */
static enum drisk_status replay_after(struct drisk_store *store, int64_t from, int64_t now,
                                      struct drisk_network *net, struct drisk_error *err)
{
    int64_t first;
    enum drisk_status rc = drisk_store_alive_since(store, from, &first, err);
    if (rc)
        return rc;
    struct drisk_snapshot_options o = { 0, 0, first, now, 0 };
    return replay(store, NULL, &o, NULL, NULL, net, from, err);
}

enum drisk_status drisk_network_start(struct drisk_store *store, int64_t now,
                                      struct drisk_network **out, int64_t *checkpoint_as_of,
                                      struct drisk_error *err)
{
    void *payload = NULL;
    size_t len = 0;
    int64_t as_of = DRISK_TS_NONE;
    struct drisk_network *net = NULL;
    struct drisk_error cerr = { 0 };
    enum drisk_status rc = drisk_store_checkpoint_get(store, &as_of, &payload, &len, err);
    *out = NULL;
    *checkpoint_as_of = DRISK_TS_NONE;
    if (rc && rc != DRISK_ENOTFOUND)
        return rc;
    if (!rc && as_of <= now && drisk_network_load(payload, len, &net, &cerr) == DRISK_OK) {
        *checkpoint_as_of = as_of;
        rc = replay_after(store, as_of, now, net, err);
    } else {
        if (!rc)
            DRISK_LOG(DRISK_LOG_WARN, "network checkpoint not used (%s): replaying the whole "
                      "history", cerr.msg[0] ? cerr.msg : "it is newer than now");
        rc = whole_replay(store, now, &net, err);
    }
    free(payload);
    if (rc) {
        drisk_network_free(net);
        return rc;
    }
    *out = net;
    return DRISK_OK;
}

enum drisk_status drisk_network_checkpoint(struct drisk_store *store, int64_t now, int rebuild,
                                           struct drisk_checkpoint_result *res,
                                           struct drisk_error *err)
{
    int64_t as_of = now - DRISK_CHECKPOINT_GRACE_S;
    struct drisk_network *net = NULL;
    unsigned char *bytes = NULL;
    size_t len = 0;
    enum drisk_status rc;
    memset(res, 0, sizeof *res);
    res->from = DRISK_TS_NONE;
    rc = rebuild ? whole_replay(store, as_of, &net, err)
                 : drisk_network_start(store, as_of, &net, &res->from, err);
    if (!rc && (rc = drisk_network_save(net, &bytes, &len)))
        drisk_error_set(err, rc, "out of memory writing the network checkpoint");
    if (!rc)
        rc = drisk_store_checkpoint_put(store, as_of, now, bytes, len, err);
    if (!rc) {
        res->as_of = as_of;
        res->bytes = len;
    }
    free(bytes);
    drisk_network_free(net);
    return rc;
}

