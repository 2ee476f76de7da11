/* Incremental network statistics. Facilities live in an array indexed by location id;
 * carriers and lanes in an array found by name through a string map. Windows are
 * rings of time buckets stamped with their hour or day, so a stale bucket is recognized
 * and reset instead of being subtracted: O(1) per event, no history kept. */
#include "engine/network.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/strmap.h"
#include "engine/vocab.h"

#define HOURS 24
#define DAYS 28
#define MAX_FACILITIES (1 << 22)
#define MAX_KEYS (1 << 20)
#define DWELL_ALPHA 0.02    /* EWMA weight of one completed dwell */
#define TRANSIT_ALPHA 0.05
#define SMOOTH_K 20.0       /* pseudo-counts pulling a rate toward its parent */

struct hour_bucket {
    int64_t hour; /* ts / 3600 of what the bucket holds */
    double departures, dwell_sum_h, scans, exceptions;
};

struct facility {
    double dwell_mean_h; /* EWMA of completed dwells; 0 with dwell_n = 0 */
    int64_t dwell_n;
    struct hour_bucket ring[HOURS];
};

struct day_bucket {
    int64_t day;
    double late, n;
};

struct rate {
    struct day_bucket ring[DAYS];
    double transit_h; /* EWMA of created->delivered hours; 0 with transit_n = 0 */
    int64_t transit_n;
};

struct drisk_network {
    struct facility *fac;
    size_t n_fac;
    struct drisk_strmap *index; /* carrier or lane key -> position in rates */
    struct rate *rates;
    size_t n_rates, cap_rates;
    struct day_bucket overall[DAYS];
};

struct drisk_network *drisk_network_create(void)
{
    struct drisk_network *net = calloc(1, sizeof *net);
    if (net && !(net->index = drisk_strmap_create(MAX_KEYS))) {
        free(net);
        return NULL;
    }
    return net;
}

void drisk_network_free(struct drisk_network *net)
{
    if (!net)
        return;
    drisk_strmap_free(net->index);
    free(net->rates);
    free(net->fac);
    free(net);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static struct facility *facility(struct drisk_network *net, int64_t id)
{
    if (id <= 0 || id >= MAX_FACILITIES)
        return NULL;
    if ((size_t)id >= net->n_fac) {
        size_t n = net->n_fac ? net->n_fac : 64;
        while (n <= (size_t)id)
            n *= 2;
        struct facility *f = realloc(net->fac, n * sizeof *f);
        if (!f)
            return NULL;
        memset(f + net->n_fac, 0, (n - net->n_fac) * sizeof *f);
        net->fac = f;
        net->n_fac = n;
    }
    return &net->fac[id];
}

static struct hour_bucket *hour_bucket(struct facility *f, int64_t ts)
{
    int64_t h = floor_div(ts, 3600);
    struct hour_bucket *b = &f->ring[(h % HOURS + HOURS) % HOURS];
    if (b->hour != h) {
        if (b->hour > h)
            return NULL; /* older than the window */
        memset(b, 0, sizeof *b);
        b->hour = h;
    }
    return b;
}

static void day_add(struct day_bucket *ring, int64_t ts, int late)
{
    int64_t d = floor_div(ts, 86400);
    struct day_bucket *b = &ring[(d % DAYS + DAYS) % DAYS];
    if (b->day != d) {
        if (b->day > d)
            return;
        b->day = d;
        b->late = b->n = 0;
    }
    b->late += late;
    b->n += 1;
}

/* Sums the buckets of the DAYS days ending with the day of now (days after now are
 * ignored, so a view for an earlier moment never sees later outcomes). */
static void day_sum(const struct day_bucket *ring, int64_t now, double *late, double *n)
{
    int64_t d = floor_div(now, 86400);
    *late = *n = 0;
    for (int i = 0; i < DAYS; i++)
        if (ring[i].day > d - DAYS && ring[i].day <= d) {
            *late += ring[i].late;
            *n += ring[i].n;
        }
}

static const struct rate *rate_find(const struct drisk_network *net, const char *key)
{
    int64_t i;
    return drisk_strmap_find(net->index, key, &i) ? &net->rates[i] : NULL;
}

/* The entry of key, created if needed; NULL when out of memory or full. The pointer is
 * valid until the next rate_get. */
static struct rate *rate_get(struct drisk_network *net, const char *key)
{
    int64_t i;
    if (drisk_strmap_find(net->index, key, &i))
        return &net->rates[i];
    if (net->n_rates == net->cap_rates) {
        size_t ncap = net->cap_rates ? net->cap_rates * 2 : 64;
        struct rate *r = realloc(net->rates, ncap * sizeof *r);
        if (!r)
            return NULL;
        net->rates = r;
        net->cap_rates = ncap;
    }
    if (drisk_strmap_put(net->index, key, (int64_t)net->n_rates))
        return NULL;
    memset(&net->rates[net->n_rates], 0, sizeof *net->rates);
    return &net->rates[net->n_rates++];
}

/* "carrier|origin|destination" (buf holds 3 * DRISK_NAME_MAX + 4); no printf: it runs
 * for every snapshot. */
static void lane_key(const struct drisk_shipment *sh, char *buf, size_t cap)
{
    const char *parts[3] = { sh->carrier, sh->origin, sh->destination };
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t l = strnlen(parts[i], DRISK_NAME_MAX - 1);
        if (n + l + 2 > cap)
            break;
        if (i)
            buf[n++] = '|';
        memcpy(buf + n, parts[i], l);
        n += l;
    }
    buf[n] = '\0';
}

enum drisk_status drisk_network_on_scan(struct drisk_network *net, const struct drisk_shipment *sh,
                                        const struct drisk_scan_event *prev,
                                        const struct drisk_scan_event *sc)
{
    (void)sh;
    if (sc->location_id == 0)
        return DRISK_OK;
    struct facility *f = facility(net, sc->location_id);
    if (!f)
        return sc->location_id >= MAX_FACILITIES ? DRISK_OK : DRISK_ENOMEM;
    struct hour_bucket *b = hour_bucket(f, sc->ts);
    if (b) {
        b->scans += 1;
        b->exceptions += sc->event == DRISK_EVENT_EXCEPTION;
    }
    if (prev && sc->event == DRISK_EVENT_DEPARTED_FACILITY &&
        prev->event == DRISK_EVENT_ARRIVED_AT_FACILITY && prev->location_id == sc->location_id &&
        sc->ts >= prev->ts) {
        double dwell_h = (double)(sc->ts - prev->ts) / 3600.0;
        f->dwell_mean_h = f->dwell_n ? f->dwell_mean_h + DWELL_ALPHA * (dwell_h - f->dwell_mean_h)
                                     : dwell_h;
        f->dwell_n++;
        if (b) {
            b->departures += 1;
            b->dwell_sum_h += dwell_h;
        }
    }
    return DRISK_OK;
}

enum drisk_status drisk_network_on_outcome(struct drisk_network *net, const struct drisk_shipment *sh,
                                           int late, int64_t ts)
{
    char key[3 * DRISK_NAME_MAX + 4];
    /* one entry at a time: rate_get may move the array */
    struct rate *r = rate_get(net, sh->carrier);
    if (!r)
        return DRISK_ENOMEM;
    day_add(r->ring, ts, late);
    lane_key(sh, key, sizeof key);
    if (!(r = rate_get(net, key)))
        return DRISK_ENOMEM;
    day_add(r->ring, ts, late);
    day_add(net->overall, ts, late);
    return DRISK_OK;
}

enum drisk_status drisk_network_on_delivered(struct drisk_network *net,
                                             const struct drisk_shipment *sh)
{
    char key[3 * DRISK_NAME_MAX + 4];
    lane_key(sh, key, sizeof key);
    struct rate *l = rate_get(net, key);
    if (!l)
        return DRISK_ENOMEM;
    double h = (double)(sh->delivered_at - sh->created_at) / 3600.0;
    l->transit_h = l->transit_n ? l->transit_h + TRANSIT_ALPHA * (h - l->transit_h) : h;
    l->transit_n++;
    return DRISK_OK;
}

void drisk_network_view(const struct drisk_network *net, const struct drisk_shipment *sh,
                        int64_t location_id, int64_t now, struct drisk_network_view *v)
{
    double late, n, cl, cn, ll, ln;
    char key[3 * DRISK_NAME_MAX + 4];
    day_sum(net->overall, now, &late, &n);
    v->overall_late_rate = (late + 0.1 * SMOOTH_K) / (n + SMOOTH_K);
    const struct rate *c = rate_find(net, sh->carrier);
    cl = cn = 0;
    if (c)
        day_sum(c->ring, now, &cl, &cn);
    v->carrier_late_rate = (cl + SMOOTH_K * v->overall_late_rate) / (cn + SMOOTH_K);
    lane_key(sh, key, sizeof key);
    const struct rate *l = rate_find(net, key);
    ll = ln = 0;
    if (l)
        day_sum(l->ring, now, &ll, &ln);
    v->lane_late_rate = (ll + SMOOTH_K * v->carrier_late_rate) / (ln + SMOOTH_K);
    v->lane_transit_h = l && l->transit_n ? l->transit_h : NAN;

    v->facility_dwell_h = v->facility_recent_dwell_h = NAN;
    v->facility_exception_rate = v->facility_scans_24h = 0;
    if (location_id <= 0 || (size_t)location_id >= net->n_fac)
        return;
    const struct facility *f = &net->fac[location_id];
    if (f->dwell_n)
        v->facility_dwell_h = f->dwell_mean_h;
    int64_t h = floor_div(now, 3600);
    double dep = 0, dwell = 0, scans = 0, exc = 0;
    for (int i = 0; i < HOURS; i++) {
        const struct hour_bucket *b = &f->ring[i];
        if (b->hour > h - HOURS && b->hour <= h) {
            dep += b->departures;
            dwell += b->dwell_sum_h;
            scans += b->scans;
            exc += b->exceptions;
        }
    }
    if (dep > 0)
        v->facility_recent_dwell_h = dwell / dep;
    v->facility_scans_24h = scans;
    v->facility_exception_rate = scans > 0 ? exc / scans : 0;
}
