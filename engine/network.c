/* Incremental network statistics. Facilities live in an array indexed by location id;
 * carriers and lanes in an array found by name through a string map. Windows are
 * rings of time buckets stamped with their hour or day, so a stale bucket is recognized
 * and reset instead of being subtracted: O(1) per event, no history kept. */
#include "engine/network.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strmap.h"
#include "engine/vocab.h"

#define HOURS 24
#define DAYS 28
#define MAX_FACILITIES (1 << 22)
#define MAX_KEYS ((size_t)1 << 32) /* no cap in practice: memory is the limit */
#define DWELL_HALF_LIFE_D 28.0 /* a facility's normal dwell: a month-scale baseline, so a
                                * facility that slows down shows as slow for weeks */
#define TRANSIT_ALPHA 0.05
#define SMOOTH_K 20.0       /* pseudo-counts pulling a rate toward its parent */

struct hour_bucket {
    int64_t hour; /* ts / 3600 of what the bucket holds */
    double departures, dwell_sum_h, scans, exceptions;
};

/* Decayed sums of a category's outcomes: late / n over known outcomes, delay (days after
 * the promise) summed over dn deliveries. */
struct cat_sums {
    double n, late, dn, delay;
};

/* A category's outcome history, decayed to time t: the long memory (half-life
 * DRISK_CATEGORY_HALF_LIFE_D) and the recent one (DRISK_CATEGORY_RECENT_HALF_LIFE_D); and
 * its parcels in flight: those picked up (weighted by the recent decay since pickup) and
 * the part of them not delivered yet. */
struct cat_stat {
    struct cat_sums all, recent;
    double picked, open;
    int64_t t;
};

struct facility {
    double dwell_w, dwell_sum_h; /* completed dwells, decayed to dwell_t (normal dwell) */
    int64_t dwell_t;
    struct hour_bucket ring[HOURS];
    struct cat_stat hist;
};

struct day_bucket { /* 12 bytes: a lane holds 28 of them, and lanes number millions */
    int32_t day; /* days since 1970 (timestamps are years 0000-9999: it fits) */
    float late, n; /* exact up to 2^24 outcomes a day */
};

struct rate {
    struct day_bucket ring[DAYS];
    double transit_h; /* EWMA of created->delivered hours; 0 with transit_n = 0 */
    int64_t transit_n;
};

/* Entries of elem bytes found by a string key: the carriers' and lanes' rates, the
 * categories' histories. */
struct table {
    struct drisk_strmap *index; /* key -> position in data */
    unsigned char *data;
    size_t n, cap, elem;
};

struct drisk_network {
    struct facility *fac;
    size_t n_fac;
    struct table rates; /* struct rate by carrier or lane key */
    struct day_bucket overall[DAYS];
    struct table cats;  /* struct cat_stat by category key (cat_key) */
    struct cat_stat overall_hist;
};

static const void *table_find(const struct table *t, const char *key)
{
    int64_t i;
    return drisk_strmap_find(t->index, key, &i) ? t->data + (size_t)i * t->elem : NULL;
}

/* The entry of key, created zeroed if needed; NULL when out of memory. The pointer is
 * valid until the next table_get on t. */
static void *table_get(struct table *t, const char *key)
{
    void *e = (void *)table_find(t, key);
    if (e)
        return e;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        unsigned char *d = realloc(t->data, ncap * t->elem);
        if (!d)
            return NULL;
        t->data = d;
        t->cap = ncap;
    }
    if (drisk_strmap_put(t->index, key, (int64_t)t->n))
        return NULL;
    e = t->data + t->n++ * t->elem;
    memset(e, 0, t->elem);
    return e;
}

struct drisk_network *drisk_network_create(void)
{
    struct drisk_network *net = calloc(1, sizeof *net);
    if (!net)
        return NULL;
    net->rates.elem = sizeof(struct rate);
    net->cats.elem = sizeof(struct cat_stat);
    if (!(net->rates.index = drisk_strmap_create(MAX_KEYS)) ||
        !(net->cats.index = drisk_strmap_create(MAX_KEYS))) {
        drisk_network_free(net);
        return NULL;
    }
    return net;
}

void drisk_network_free(struct drisk_network *net)
{
    if (!net)
        return;
    drisk_strmap_free(net->rates.index);
    drisk_strmap_free(net->cats.index);
    free(net->rates.data);
    free(net->cats.data);
    free(net->fac);
    free(net);
}

const char *drisk_category_name(int cat)
{
    static const char *const names[DRISK_CAT_COUNT] = {
        "origin", "dest_prefix", "destination", "lane", "carrier_service", "merchant",
        "facility", "prev_facility"
    };
    return cat >= 0 && cat < DRISK_CAT_COUNT ? names[cat] : NULL;
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
        b->day = (int32_t)d;
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

/* "carrier|origin|destination" (buf holds 3 * DRISK_NAME_MAX + 4); no printf: it runs
 * for every snapshot. */
/* "\x01carrier|service": the leading control byte, which no validated name holds, keeps
 * it apart from carrier and lane keys. */
static void service_key(const struct drisk_shipment *sh, char *buf, size_t cap)
{
    snprintf(buf, cap, "\x01%.*s|%.*s", DRISK_NAME_MAX - 1, sh->carrier, DRISK_NAME_MAX - 1,
             sh->service);
}

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

/* ---- categories' outcome histories ---- */

/* The weight now of an observation made at t: 2^(-(now - t) / half-life). */
static double decay(int64_t now, int64_t t, double half_life_d)
{
    return now > t ? exp2(-(double)(now - t) / (half_life_d * 86400.0)) : 1.0;
}

static void sums_scale(struct cat_sums *s, double f)
{
    s->n *= f, s->late *= f, s->dn *= f, s->delay *= f;
}

static void sums_add(struct cat_sums *s, double w, int late, double delay_d)
{
    if (late >= 0) {
        s->n += w;
        s->late += w * late;
    }
    if (!isnan(delay_d)) {
        s->dn += w;
        s->delay += w * delay_d;
    }
}

/* Brings c's sums to time ts when it is later; *w and *wr get the weight now (long and
 * recent memory) of an observation made at ts, below 1 when ts is older than the sums
 * (the server may learn a delivery late). */
static void cat_advance(struct cat_stat *c, int64_t ts, double *w, double *wr)
{
    if (c->all.n == 0 && c->all.dn == 0 && c->recent.n == 0 && c->recent.dn == 0 &&
        c->picked == 0 && c->open == 0)
        c->t = ts; /* empty: nothing to decay */
    *w = *wr = 1.0;
    if (ts > c->t) {
        double fr = decay(ts, c->t, DRISK_CATEGORY_RECENT_HALF_LIFE_D);
        sums_scale(&c->all, decay(ts, c->t, DRISK_CATEGORY_HALF_LIFE_D));
        sums_scale(&c->recent, fr);
        c->picked *= fr;
        c->open *= fr;
        c->t = ts;
    } else {
        *w = decay(c->t, ts, DRISK_CATEGORY_HALF_LIFE_D);
        *wr = decay(c->t, ts, DRISK_CATEGORY_RECENT_HALF_LIFE_D);
    }
}

/* Adds one outcome at ts: late (0/1, or -1 for none) and delay_d (NAN for none). */
static void cat_add(struct cat_stat *c, int64_t ts, int late, double delay_d)
{
    double w, wr;
    cat_advance(c, ts, &w, &wr);
    sums_add(&c->all, w, late, delay_d);
    sums_add(&c->recent, wr, late, delay_d);
}

/* A parcel picked up at pick_ts enters the flight (now = pick_ts), or leaves it at its
 * delivery (now), with the weight it entered with, decayed since. */
static void cat_flight(struct cat_stat *c, int64_t now, int64_t pick_ts, int enter)
{
    double w, wr;
    cat_advance(c, now, &w, &wr);
    wr = decay(c->t, pick_ts, DRISK_CATEGORY_RECENT_HALF_LIFE_D);
    if (enter) {
        c->picked += wr;
        c->open += wr;
    } else {
        c->open = c->open > wr ? c->open - wr : 0;
    }
}

/* sc is the scan that put its parcel in the carrier's hands: the first after the label
 * (a delivery scan does not count: the parcel never was in flight for the network). */
static int is_pickup(const struct drisk_scan_event *prev, const struct drisk_scan_event *sc)
{
    return sc->event != DRISK_EVENT_LABEL_CREATED && sc->event != DRISK_EVENT_DELIVERED &&
           (!prev || prev->event == DRISK_EVENT_LABEL_CREATED);
}

/* Sums s decayed by f, smoothed toward prior's rates with DRISK_CATEGORY_PRIOR
 * pseudo-counts. */
static void sums_view(const struct cat_sums *s, double f, double prior_late, double prior_delay,
                      double *n, double *late_rate, double *delay_d)
{
    const double k = DRISK_CATEGORY_PRIOR;
    double cn = s ? s->n * f : 0, dn = s ? s->dn * f : 0;
    *n = cn;
    *late_rate = ((s ? s->late * f : 0) + k * prior_late) / (cn + k);
    *delay_d = ((s ? s->delay * f : 0) + k * prior_delay) / (dn + k);
}

/* c's figures as of now (NULL c: never seen, the parent's): the long memory smoothed
 * toward parent, the recent one toward c's own long memory. */
static void cat_view(const struct cat_stat *c, const struct drisk_category_view *parent,
                     int64_t now, struct drisk_category_view *out)
{
    double rn;
    sums_view(c ? &c->all : NULL, c ? decay(now, c->t, DRISK_CATEGORY_HALF_LIFE_D) : 0,
              parent->late_rate, parent->delay_d, &out->n, &out->late_rate, &out->delay_d);
    double fr = c ? decay(now, c->t, DRISK_CATEGORY_RECENT_HALF_LIFE_D) : 0;
    sums_view(c ? &c->recent : NULL, fr, out->late_rate, out->delay_d, &rn,
              &out->recent_late_rate, &out->recent_delay_d);
    out->open_share = ((c ? c->open * fr : 0) + DRISK_CATEGORY_PRIOR * parent->open_share) /
                      ((c ? c->picked * fr : 0) + DRISK_CATEGORY_PRIOR);
}

/* Category keys: a tag byte, then the parts separated by 0x1f (never in imported text),
 * so no two categories' keys can collide. Returns 0 when the category is absent. */
static int cat_key(const struct drisk_shipment *sh, int cat, char *buf, size_t cap)
{
    const char *parts[2] = { NULL, NULL };
    size_t limit[2] = { DRISK_NAME_MAX - 1, DRISK_NAME_MAX - 1 };
    switch (cat) {
    case DRISK_CAT_ORIGIN: parts[0] = sh->origin; break;
    case DRISK_CAT_DEST_PREFIX:
        if (strnlen(sh->destination, DRISK_DEST_PREFIX_LEN + 1) <= DRISK_DEST_PREFIX_LEN)
            return 0;
        parts[0] = sh->destination;
        limit[0] = DRISK_DEST_PREFIX_LEN;
        break;
    case DRISK_CAT_DESTINATION: parts[0] = sh->destination; break;
    case DRISK_CAT_LANE: parts[0] = sh->origin, parts[1] = sh->destination; break;
    case DRISK_CAT_CARRIER_SERVICE: parts[0] = sh->carrier, parts[1] = sh->service; break;
    case DRISK_CAT_MERCHANT: parts[0] = sh->merchant; limit[0] = DRISK_ID_MAX - 1; break;
    default: return 0;
    }
    size_t n = 0;
    buf[n++] = (char)('a' + cat);
    for (int i = 0; i < 2 && parts[i]; i++) {
        size_t l = strnlen(parts[i], limit[i]);
        if (n + l + 2 > cap)
            return 0;
        buf[n++] = 0x1f;
        memcpy(buf + n, parts[i], l);
        n += l;
    }
    buf[n] = '\0';
    return 1;
}

#define CAT_KEY_MAX (DRISK_ID_MAX + 2 * DRISK_NAME_MAX + 4)

/* One outcome into every category of sh and every facility its scans up to ts visited. */
static enum drisk_status cats_add(struct drisk_network *net, const struct drisk_shipment *sh,
                                  const struct drisk_scan_event *scans, size_t n, int64_t ts,
                                  int late, double delay_d)
{
    char key[CAT_KEY_MAX];
    cat_add(&net->overall_hist, ts, late, delay_d);
    for (int c = 0; c < DRISK_CAT_FACILITY; c++) {
        if (!cat_key(sh, c, key, sizeof key))
            continue;
        struct cat_stat *s = table_get(&net->cats, key);
        if (!s)
            return DRISK_ENOMEM;
        cat_add(s, ts, late, delay_d);
    }
    /* each stay at a facility once, however many scans it gave (linear: a shipment may
     * carry thousands of scans) */
    int64_t last = 0;
    for (size_t k = 0; k < n && scans[k].ts <= ts; k++) {
        int64_t id = scans[k].location_id;
        if (id <= 0 || id == last)
            continue;
        last = id;
        struct facility *f = facility(net, id);
        if (!f)
            return id >= MAX_FACILITIES ? DRISK_OK : DRISK_ENOMEM;
        cat_add(&f->hist, ts, late, delay_d);
    }
    return DRISK_OK;
}

/* sh's parcel, picked up at pick_ts, enters (or leaves) the flight of each of its
 * categories but the facilities. */
static enum drisk_status cats_flight(struct drisk_network *net, const struct drisk_shipment *sh,
                                     int64_t now, int64_t pick_ts, int enter)
{
    char key[CAT_KEY_MAX];
    cat_flight(&net->overall_hist, now, pick_ts, enter);
    for (int c = 0; c < DRISK_CAT_FACILITY; c++) {
        if (!cat_key(sh, c, key, sizeof key))
            continue;
        struct cat_stat *s = enter ? table_get(&net->cats, key)
                                   : (struct cat_stat *)table_find(&net->cats, key);
        if (!s) {
            if (enter)
                return DRISK_ENOMEM;
            continue;
        }
        cat_flight(s, now, pick_ts, enter);
    }
    return DRISK_OK;
}

enum drisk_status drisk_network_on_scan(struct drisk_network *net, const struct drisk_shipment *sh,
                                        const struct drisk_scan_event *prev,
                                        const struct drisk_scan_event *sc)
{
    if (is_pickup(prev, sc)) {
        enum drisk_status st = cats_flight(net, sh, sc->ts, sc->ts, 1);
        if (st)
            return st;
    }
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
        double dwell_h = (double)(sc->ts - prev->ts) / 3600.0, w = 1.0;
        if (f->dwell_w == 0 || sc->ts > f->dwell_t) {
            double d = f->dwell_w == 0 ? 0 : decay(sc->ts, f->dwell_t, DWELL_HALF_LIFE_D);
            f->dwell_w *= d;
            f->dwell_sum_h *= d;
            f->dwell_t = sc->ts;
        } else {
            w = decay(f->dwell_t, sc->ts, DWELL_HALF_LIFE_D);
        }
        f->dwell_w += w;
        f->dwell_sum_h += w * dwell_h;
        if (b) {
            b->departures += 1;
            b->dwell_sum_h += dwell_h;
        }
    }
    return DRISK_OK;
}

enum drisk_status drisk_network_on_outcome(struct drisk_network *net, const struct drisk_shipment *sh,
                                           const struct drisk_scan_event *scans, size_t n,
                                           int late, int64_t ts)
{
    char key[3 * DRISK_NAME_MAX + 4];
    /* one entry at a time: table_get may move the array */
    struct rate *r = table_get(&net->rates, sh->carrier);
    if (!r)
        return DRISK_ENOMEM;
    day_add(r->ring, ts, late);
    lane_key(sh, key, sizeof key);
    if (!(r = table_get(&net->rates, key)))
        return DRISK_ENOMEM;
    day_add(r->ring, ts, late);
    day_add(net->overall, ts, late);
    return cats_add(net, sh, scans, n, ts, late, NAN);
}

enum drisk_status drisk_network_on_delivered(struct drisk_network *net,
                                             const struct drisk_shipment *sh,
                                             const struct drisk_scan_event *scans, size_t n)
{
    char key[3 * DRISK_NAME_MAX + 4];
    lane_key(sh, key, sizeof key);
    struct rate *l = table_get(&net->rates, key);
    if (!l)
        return DRISK_ENOMEM;
    double h = (double)(sh->delivered_at - sh->created_at) / 3600.0;
    l->transit_h = l->transit_n ? l->transit_h + TRANSIT_ALPHA * (h - l->transit_h) : h;
    l->transit_n++;
    /* and the carrier x service's, the fallback of a lane with few deliveries */
    service_key(sh, key, sizeof key);
    struct rate *sv = table_get(&net->rates, key);
    if (!sv)
        return DRISK_ENOMEM;
    sv->transit_h = sv->transit_n ? sv->transit_h + TRANSIT_ALPHA * (h - sv->transit_h) : h;
    sv->transit_n++;
    double delay_d = (double)(sh->delivered_at - sh->promised_at) / 86400.0;
    delay_d = delay_d < -10 ? -10 : delay_d > 20 ? 20 : delay_d; /* one odd parcel stays one */
    /* out of flight: the pickups on_scan counted (the same rule, over the same order) */
    for (size_t k = 0; k < n && scans[k].ts <= sh->delivered_at; k++)
        if (is_pickup(k ? &scans[k - 1] : NULL, &scans[k]))
            cats_flight(net, sh, sh->delivered_at, scans[k].ts, 0);
    return cats_add(net, sh, scans, n, sh->delivered_at, -1, delay_d);
}

/* Every category's figures, each smoothed toward its parent. */
static void cats_view(const struct drisk_network *net, const struct drisk_shipment *sh,
                      int64_t location_id, int64_t prev_location_id, int64_t now,
                      struct drisk_network_view *v)
{
    static const signed char parent[DRISK_CAT_COUNT] = {
        [DRISK_CAT_ORIGIN] = -1, [DRISK_CAT_DEST_PREFIX] = -1,
        [DRISK_CAT_DESTINATION] = DRISK_CAT_DEST_PREFIX, [DRISK_CAT_LANE] = DRISK_CAT_DESTINATION,
        [DRISK_CAT_CARRIER_SERVICE] = -1, [DRISK_CAT_MERCHANT] = -1,
        [DRISK_CAT_FACILITY] = -1, [DRISK_CAT_PREV_FACILITY] = -1,
    };
    struct drisk_category_view prior = { 0, 0.1, 0, 0.1, 0, 0.5 }, overall;
    cat_view(&net->overall_hist, &prior, now, &overall);
    v->overall_open_share = overall.open_share;
    char key[CAT_KEY_MAX];
    v->unseen = 0;
    for (int c = 0; c < DRISK_CAT_COUNT; c++) {
        const struct cat_stat *s = NULL;
        if (c == DRISK_CAT_FACILITY || c == DRISK_CAT_PREV_FACILITY) {
            int64_t id = c == DRISK_CAT_FACILITY ? location_id : prev_location_id;
            if (id > 0 && (size_t)id < net->n_fac)
                s = &net->fac[id].hist;
        } else if (cat_key(sh, c, key, sizeof key)) {
            s = table_find(&net->cats, key);
        }
        /* parents come first in the enum, so theirs is already filled */
        cat_view(s, parent[c] >= 0 ? &v->cat[parent[c]] : &overall, now, &v->cat[c]);
        if (!(s && s->all.n > 0))
            v->unseen |= 1u << c;
    }
}

void drisk_network_view(const struct drisk_network *net, const struct drisk_shipment *sh,
                        int64_t location_id, int64_t prev_location_id, int64_t now,
                        struct drisk_network_view *v)
{
    double late, n, cl, cn, ll, ln;
    char key[3 * DRISK_NAME_MAX + 4];
    day_sum(net->overall, now, &late, &n);
    v->overall_late_rate = (late + 0.1 * SMOOTH_K) / (n + SMOOTH_K);
    const struct rate *c = table_find(&net->rates, sh->carrier);
    cl = cn = 0;
    if (c)
        day_sum(c->ring, now, &cl, &cn);
    v->carrier_late_rate = (cl + SMOOTH_K * v->overall_late_rate) / (cn + SMOOTH_K);
    lane_key(sh, key, sizeof key);
    const struct rate *l = table_find(&net->rates, key);
    ll = ln = 0;
    if (l)
        day_sum(l->ring, now, &ll, &ln);
    v->lane_late_rate = (ll + SMOOTH_K * v->carrier_late_rate) / (ln + SMOOTH_K);
    v->lane_transit_h = l && l->transit_n ? l->transit_h : NAN;
    v->lane_transit_n = l ? (double)l->transit_n : 0.0;
    service_key(sh, key, sizeof key);
    const struct rate *sv = table_find(&net->rates, key);
    v->service_transit_h = sv && sv->transit_n ? sv->transit_h : NAN;
    v->service_transit_n = sv ? (double)sv->transit_n : 0.0;
    cats_view(net, sh, location_id, prev_location_id, now, v);

    v->facility_dwell_h = v->facility_recent_dwell_h = NAN;
    v->facility_exception_rate = v->facility_scans_24h = 0;
    if (location_id <= 0 || (size_t)location_id >= net->n_fac)
        return;
    const struct facility *f = &net->fac[location_id];
    if (f->dwell_w > 0)
        v->facility_dwell_h = f->dwell_sum_h / f->dwell_w;
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

/* ---- checkpoints ----
 * Layout: header { magic, version, the record sizes }, n_fac and the facilities, the
 * overall ring and history, then the two tables (entry count, then per entry its key's
 * length, the key and the record), then an FNV-1a checksum of everything before it. */

#define NET_MAGIC "DRKNET01"
#define NET_VERSION 1u

struct net_header {
    char magic[8];
    uint32_t version;
    uint32_t fac_size, rate_size, cat_size, day_size, hours, days, pad;
};

struct out_buf {
    unsigned char *p;
    size_t len, cap;
    int failed;
};

static void put(struct out_buf *b, const void *v, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

struct keys_by_pos {
    const char **key;
    size_t n;
};

static void key_at(const char *key, int64_t value, void *ctx)
{
    struct keys_by_pos *k = ctx;
    if (value >= 0 && (size_t)value < k->n)
        k->key[value] = key;
}

static void put_table(struct out_buf *b, const struct table *t)
{
    struct keys_by_pos k = { calloc(t->n ? t->n : 1, sizeof *k.key), t->n };
    uint64_t n = t->n;
    if (!k.key) {
        b->failed = 1;
        return;
    }
    drisk_strmap_each(t->index, key_at, &k);
    put(b, &n, sizeof n);
    for (size_t i = 0; i < t->n; i++) {
        uint32_t kl = k.key[i] ? (uint32_t)strlen(k.key[i]) : 0;
        put(b, &kl, sizeof kl);
        put(b, k.key[i] ? k.key[i] : "", kl);
        put(b, t->data + i * t->elem, t->elem);
    }
    free(k.key);
}

static struct net_header header_now(void)
{
    struct net_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, NET_MAGIC, 8);
    h.version = NET_VERSION;
    h.fac_size = sizeof(struct facility);
    h.rate_size = sizeof(struct rate);
    h.cat_size = sizeof(struct cat_stat);
    h.day_size = sizeof(struct day_bucket);
    h.hours = HOURS;
    h.days = DAYS;
    return h;
}

enum drisk_status drisk_network_save(const struct drisk_network *net, unsigned char **out,
                                     size_t *len)
{
    struct out_buf b = { 0 };
    struct net_header h = header_now();
    uint64_t n_fac = net->n_fac;
    put(&b, &h, sizeof h);
    put(&b, &n_fac, sizeof n_fac);
    if (n_fac)
        put(&b, net->fac, n_fac * sizeof *net->fac);
    put(&b, net->overall, sizeof net->overall);
    put(&b, &net->overall_hist, sizeof net->overall_hist);
    put_table(&b, &net->rates);
    put_table(&b, &net->cats);
    uint64_t sum = b.failed ? 0 : drisk_fnv1a_bytes(DRISK_FNV_SEED, b.p, b.len);
    put(&b, &sum, sizeof sum);
    if (b.failed) {
        free(b.p);
        *out = NULL;
        *len = 0;
        return DRISK_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return DRISK_OK;
}

struct in_buf {
    const unsigned char *p;
    size_t len, at;
};

static int take(struct in_buf *b, void *v, size_t n)
{
    if (n > b->len - b->at)
        return -1;
    memcpy(v, b->p + b->at, n);
    b->at += n;
    return 0;
}

static enum drisk_status take_table(struct in_buf *b, struct table *t, struct drisk_error *err)
{
    uint64_t n;
    char key[4096];
    if (take(b, &n, sizeof n) || n > (b->len - b->at) / (t->elem + sizeof(uint32_t)))
        return drisk_error_set(err, DRISK_EINVAL, "network checkpoint: truncated table");
    for (uint64_t i = 0; i < n; i++) {
        uint32_t kl;
        if (take(b, &kl, sizeof kl) || kl >= sizeof key || take(b, key, kl))
            return drisk_error_set(err, DRISK_EINVAL, "network checkpoint: bad key %llu",
                                   (unsigned long long)i);
        key[kl] = '\0';
        if (table_find(t, key))
            return drisk_error_set(err, DRISK_EINVAL, "network checkpoint: key %s twice", key);
        void *e = table_get(t, key);
        if (!e)
            return drisk_error_set(err, DRISK_ENOMEM, "network checkpoint: out of memory");
        if (take(b, e, t->elem))
            return drisk_error_set(err, DRISK_EINVAL, "network checkpoint: truncated entry");
    }
    return DRISK_OK;
}

enum drisk_status drisk_network_load(const unsigned char *buf, size_t len,
                                     struct drisk_network **out, struct drisk_error *err)
{
    struct net_header h, want = header_now();
    struct in_buf b = { buf, len, 0 };
    uint64_t sum, n_fac;
    enum drisk_status rc;
    *out = NULL;
    if (len < sizeof h + sizeof sum || take(&b, &h, sizeof h))
        return drisk_error_set(err, DRISK_EINVAL, "network checkpoint: too short (%zu bytes)",
                               len);
    if (memcmp(h.magic, want.magic, sizeof h.magic) != 0)
        return drisk_error_set(err, DRISK_EINVAL, "not a network checkpoint");
    if (memcmp(&h, &want, sizeof h) != 0)
        return drisk_error_set(err, DRISK_EINVAL, "network checkpoint of another drisk build "
                               "(format %u): replay the history instead", h.version);
    memcpy(&sum, buf + len - sizeof sum, sizeof sum);
    if (drisk_fnv1a_bytes(DRISK_FNV_SEED, buf, len - sizeof sum) != sum)
        return drisk_error_set(err, DRISK_EINVAL, "network checkpoint: checksum mismatch "
                               "(the bytes were altered)");
    b.len = len - sizeof sum;
    struct drisk_network *net = drisk_network_create();
    if (!net)
        return drisk_error_set(err, DRISK_ENOMEM, "network checkpoint: out of memory");
    if (take(&b, &n_fac, sizeof n_fac) || n_fac > MAX_FACILITIES ||
        n_fac * sizeof *net->fac > b.len - b.at) {
        rc = drisk_error_set(err, DRISK_EINVAL, "network checkpoint: bad facility count");
        goto fail;
    }
    if (n_fac && !(net->fac = malloc(n_fac * sizeof *net->fac))) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "network checkpoint: out of memory");
        goto fail;
    }
    net->n_fac = n_fac;
    if ((n_fac && take(&b, net->fac, n_fac * sizeof *net->fac)) ||
        take(&b, net->overall, sizeof net->overall) ||
        take(&b, &net->overall_hist, sizeof net->overall_hist)) {
        rc = drisk_error_set(err, DRISK_EINVAL, "network checkpoint: truncated");
        goto fail;
    }
    if ((rc = take_table(&b, &net->rates, err)) || (rc = take_table(&b, &net->cats, err)))
        goto fail;
    if (b.at != b.len) {
        rc = drisk_error_set(err, DRISK_EINVAL, "network checkpoint: %zu bytes left over",
                             b.len - b.at);
        goto fail;
    }
    *out = net;
    return DRISK_OK;
fail:
    drisk_network_free(net);
    return rc;
}
