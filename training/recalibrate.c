/* drisk recalibrate, and the window rule drisk eval --recalibrate-every shares
 * (training/recalibrate.h). */
#include "training/recalibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/features.h"
#include "base/timeutil.h"
#include "base/log.h"
#include "training/metrics.h"

/* Shipments created this long before a window's start can still have labels in it (a
 * promise months after checkout is rare; later ones are simply not in the window). */
#define RECAL_CREATED_MARGIN_S (120 * 86400LL)

void drisk_recal_moments(const struct drisk_snapshot *s, enum drisk_target target,
                         int64_t *known, int64_t *avail)
{
    int64_t p = s->sh->promised_at;
    *known = *avail = p; /* late: on time by the promise, or late at it */
    if (target == DRISK_TARGET_LOST) {
        *known = *avail = p + DRISK_LOST_WINDOW_S;
    } else if (target == DRISK_TARGET_ETA) {
        *known = p + DRISK_RECAL_ETA_WAIT_S;
        *avail = s->sh->delivered_at;
    }
}

int drisk_recal_known_in(const struct drisk_snapshot *s, enum drisk_target target, int64_t from,
                         int64_t to)
{
    int64_t known, avail;
    drisk_recal_moments(s, target, &known, &avail);
    return known > from && known <= to && avail <= to;
}

int drisk_recal_pool_add(struct drisk_recal_pool *p, const double *x, double y, int64_t known,
                         int64_t avail)
{
    if (p->rows.n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16384;
        int64_t *nk = realloc(p->known, ncap * sizeof *nk);
        if (!nk)
            return -1;
        p->known = nk;
        int64_t *na = realloc(p->avail, ncap * sizeof *na);
        if (!na)
            return -1;
        p->avail = na;
        p->cap = ncap;
    }
    if (drisk_rows_push(&p->rows, x, y))
        return -1;
    p->known[p->rows.n - 1] = known;
    p->avail[p->rows.n - 1] = avail;
    return 0;
}

static int in_window(const struct drisk_recal_pool *p, size_t i, int64_t t, int64_t window_s)
{
    return p->known[i] > t - window_s && p->known[i] <= t && p->avail[i] <= t;
}

enum drisk_status drisk_recal_fit(const struct drisk_recal_pool *p, struct drisk_model *m,
                                  int64_t t, int64_t window_s, size_t *rows,
                                  struct drisk_error *err)
{
    int cls = drisk_target_is_classification(m->meta.target);
    size_t n = 0, pos = 0;
    *rows = 0;
    for (size_t i = 0; i < p->rows.n; i++)
        if (in_window(p, i, t, window_s)) {
            n++;
            pos += p->rows.y[i] > 0.5;
        }
    if (n < DRISK_RECAL_MIN_ROWS || (cls && (pos == 0 || pos == n)))
        return DRISK_OK;
    double *x = malloc(n * p->rows.d * sizeof *x), *y = malloc(n * sizeof *y);
    enum drisk_status st;
    if (!x || !y) {
        st = drisk_error_set(err, DRISK_ENOMEM, "recalibration: out of memory for %zu rows", n);
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < p->rows.n; i++)
        if (in_window(p, i, t, window_s)) {
            memcpy(x + k * p->rows.d, p->rows.x + i * p->rows.d, p->rows.d * sizeof *x);
            y[k++] = p->rows.y[i];
        }
    struct drisk_dataset ds = { n, p->rows.d, x, y, NULL };
    st = drisk_model_calibrate(m, cls ? DRISK_CALIB_PLATT : DRISK_CALIB_CONFORMAL, &ds, err);
    if (st == DRISK_OK)
        *rows = n;
out:
    free(x);
    free(y);
    return st;
}

int64_t drisk_recal_history_from(int64_t t, int64_t window_s)
{
    return t - window_s - DRISK_LOST_WINDOW_S - RECAL_CREATED_MARGIN_S;
}

void drisk_recal_pool_prune(struct drisk_recal_pool *p, int64_t t, int64_t window_s)
{
    size_t k = 0;
    for (size_t i = 0; i < p->rows.n; i++) {
        if (p->known[i] <= t - window_s)
            continue;
        if (k != i) {
            memmove(p->rows.x + k * p->rows.d, p->rows.x + i * p->rows.d, p->rows.d * sizeof *p->rows.x);
            p->rows.y[k] = p->rows.y[i];
            p->known[k] = p->known[i];
            p->avail[k] = p->avail[i];
        }
        k++;
    }
    p->rows.n = k;
}

void drisk_recal_pool_free(struct drisk_recal_pool *p)
{
    drisk_rows_free(&p->rows);
    free(p->known);
    free(p->avail);
    memset(p, 0, sizeof *p);
}

/* ---- drisk recalibrate ---- */

struct collect {
    enum drisk_target target;
    struct drisk_recal_pool pool;
    int64_t t, window_s;
};

static int collect_row(const struct drisk_snapshot *s, void *ctx, struct drisk_error *err)
{
    struct collect *c = ctx;
    double y = drisk_snapshot_label(s, c->target);
    if (isnan(y) || (c->target == DRISK_TARGET_ETA && y <= 0))
        return 0;
    int64_t known, avail;
    drisk_recal_moments(s, c->target, &known, &avail);
    if (!(known > c->t - c->window_s && known <= c->t && avail <= c->t))
        return 0;
    if (drisk_recal_pool_add(&c->pool, s->x, y, known, avail)) {
        drisk_error_set(err, DRISK_ENOMEM, "out of memory collecting snapshots (%zu rows)",
                        c->pool.rows.n);
        return -1;
    }
    return 0;
}

/* The window's figures under m: log loss and ECE, or P50 and P90 coverage. */
static enum drisk_status window_figures(const struct drisk_model *m, const struct drisk_recal_pool *p,
                                        double out[2], struct drisk_error *err)
{
    int cls = drisk_target_is_classification(m->meta.target);
    double *s = malloc(p->rows.n * sizeof *s), *s90 = malloc(p->rows.n * sizeof *s90);
    enum drisk_status st;
    if (!s || !s90) {
        st = drisk_error_set(err, DRISK_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = drisk_rows_predict(m, &p->rows, s, s90, err)))
        goto out;
    if (cls) {
        struct drisk_binary_metrics bm;
        if (!(st = drisk_metrics_binary(p->rows.n, p->rows.y, s, NULL, &bm, err)))
            out[0] = bm.log_loss, out[1] = bm.ece;
    } else {
        struct drisk_eta_metrics em;
        if (!(st = drisk_metrics_eta(p->rows.n, p->rows.y, s, s90, NULL, &em, err)))
            out[0] = em.p50_coverage, out[1] = em.p90_coverage;
    }
out:
    free(s);
    free(s90);
    return st;
}

enum drisk_status drisk_recalibrate(struct drisk_store *store,
                                    const struct drisk_recalibrate_options *opts,
                                    struct drisk_recalibrate_result *res, struct drisk_error *err)
{
    struct drisk_model_row row = { 0 };
    struct drisk_feature_schema schema;
    struct drisk_model *m = NULL;
    struct drisk_buf buf = { 0 };
    struct collect c = { 0 };
    enum drisk_status rc;
    int64_t first, last;
    memset(res, 0, sizeof *res);
    res->before[0] = res->before[1] = res->after[0] = res->after[1] = NAN;
    int t = drisk_target_parse(opts->target);
    if (t < 0)
        return drisk_error_set(err, DRISK_EINVAL, "unknown target \"%s\": use late, lost or eta",
                               opts->target);
    if (opts->window_s <= 0)
        return drisk_error_set(err, DRISK_EINVAL, "the window must be at least a day");
    c.target = (enum drisk_target)t;
    c.window_s = opts->window_s;
    if ((rc = drisk_registry_load(store, opts->model_id, opts->target, &row, &schema, &m, err)))
        goto out;
    res->source_id = row.id;
    if ((rc = drisk_store_created_range(store, &first, &last, err)))
        goto out;
    if (first == DRISK_TS_NONE) {
        rc = drisk_error_set(err, DRISK_EINVAL, "the store holds no shipments");
        goto out;
    }
    c.t = opts->now == DRISK_TS_NONE ? last : opts->now;
    c.pool.rows.d = schema.n_features;
    struct drisk_snapshot_options so = { drisk_recal_history_from(c.t, c.window_s), c.t,
                                         INT64_MIN, c.t, 1 };
    if ((rc = drisk_snapshots_run(store, &schema, &so, collect_row, &c, err)))
        goto out;
    snprintf(res->calibration, sizeof res->calibration, "%s",
             drisk_calib_kind_name(drisk_target_is_classification(m->meta.target)
                                   ? DRISK_CALIB_PLATT : DRISK_CALIB_CONFORMAL));
    if (c.pool.rows.n > 0 && (rc = window_figures(m, &c.pool, res->before, err)))
        goto out;
    if ((rc = drisk_recal_fit(&c.pool, m, c.t, c.window_s, &res->rows, err)))
        goto out;
    if (res->rows == 0) {
        DRISK_LOG(DRISK_LOG_WARN, "recalibrate: %zu labelled %s snapshots in the window (at "
                  "least %d of both classes needed): model %lld kept as it is", c.pool.rows.n,
                  opts->target, DRISK_RECAL_MIN_ROWS, (long long)row.id);
        goto out;
    }
    if ((rc = window_figures(m, &c.pool, res->after, err)))
        goto out;
    char ts[DRISK_TS_BUF], from[24], win[24], rows[24], mjson[256];
    snprintf(from, sizeof from, "%lld", (long long)row.id);
    snprintf(win, sizeof win, "%g", (double)c.window_s / 86400.0);
    snprintf(rows, sizeof rows, "%zu", res->rows);
    if ((rc = drisk_model_set_param(m, "recalibrated_from", from, err)) ||
        (rc = drisk_model_set_param(m, "recalibrated_until", drisk_ts_format(c.t, ts), err)) ||
        (rc = drisk_model_set_param(m, "recalibrated_window_d", win, err)) ||
        (rc = drisk_model_set_param(m, "recalibrated_rows", rows, err)) ||
        (rc = drisk_model_save(m, &buf, err)))
        goto out;
    int cls = drisk_target_is_classification(m->meta.target);
    snprintf(mjson, sizeof mjson, cls ? "{\"recalibrated_rows\": %zu, \"log_loss\": %.6f, "
             "\"ece\": %.6f}" : "{\"recalibrated_rows\": %zu, \"p50_coverage\": %.4f, "
             "\"p90_coverage\": %.4f}", res->rows, res->after[0], res->after[1]);
    struct drisk_model_row nr = row;
    nr.id = 0;
    nr.train_until = c.t; /* its calibration saw labels up to here: eval starts after */
    nr.metrics = mjson;
    nr.payload = buf.data;
    nr.payload_len = buf.len;
    if ((rc = drisk_store_model_add(store, &nr, row.active ? 1 : 0, &res->model_id, err)))
        goto out;
    res->active = row.active;
    res->changed = 1;
out:
    drisk_recal_pool_free(&c.pool);
    drisk_buf_free(&buf);
    drisk_model_free(m);
    drisk_store_model_row_free(&row);
    return rc;
}
