/* Feature building. One emitter walks the feature list in order and either records
 * names or writes values, so the schema's names and the vector's layout come from the
 * same code and cannot drift apart. */
#include "engine/features.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strmap.h"
#include "base/timeutil.h"
#include "engine/vocab.h"

/* ---- vocabularies ---- */

#define BUILDER_MAX 4096

struct counts {
    int n;
    char name[BUILDER_MAX][DRISK_NAME_MAX];
    int64_t count[BUILDER_MAX];
};

struct drisk_schema_builder {
    struct counts carriers, services;
};

struct drisk_schema_builder *drisk_schema_builder_create(void)
{
    return calloc(1, sizeof(struct drisk_schema_builder));
}

void drisk_schema_builder_free(struct drisk_schema_builder *b)
{
    free(b);
}

static void count(struct counts *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->name[i], name) == 0) {
            c->count[i]++;
            return;
        }
    if (c->n < BUILDER_MAX) {
        snprintf(c->name[c->n], DRISK_NAME_MAX, "%s", name);
        c->count[c->n++] = 1;
    }
}

void drisk_schema_builder_add(struct drisk_schema_builder *b, const struct drisk_shipment *sh)
{
    count(&b->carriers, sh->carrier);
    count(&b->services, sh->service);
}

static void choose(const struct counts *c, int64_t min_count, struct drisk_vocab *v)
{
    /* selection of the most frequent, ties by name: small n, simple passes */
    int taken[BUILDER_MAX] = { 0 };
    v->n = 0;
    while (v->n < DRISK_VOCAB_MAX) {
        int best = -1;
        for (int i = 0; i < c->n; i++) {
            if (taken[i] || c->count[i] < min_count)
                continue;
            if (best < 0 || c->count[i] > c->count[best] ||
                (c->count[i] == c->count[best] && strcmp(c->name[i], c->name[best]) < 0))
                best = i;
        }
        if (best < 0)
            break;
        taken[best] = 1;
        memcpy(v->name[v->n++], c->name[best], DRISK_NAME_MAX);
    }
    /* sorted by name, so the schema does not depend on counts' order among equals */
    for (int i = 1; i < v->n; i++)
        for (int j = i; j > 0 && strcmp(v->name[j - 1], v->name[j]) > 0; j--) {
            char t[DRISK_NAME_MAX];
            memcpy(t, v->name[j], DRISK_NAME_MAX);
            memcpy(v->name[j], v->name[j - 1], DRISK_NAME_MAX);
            memcpy(v->name[j - 1], t, DRISK_NAME_MAX);
        }
}

static int vocab_index(const struct drisk_vocab *v, const char *name)
{
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->name[i], name) == 0)
            return i;
    return v->n; /* "other" */
}

/* ---- the emitter ---- */

struct emitter {
    double *out;                         /* values, or NULL */
    char (*names)[DRISK_FEATURE_NAME_MAX]; /* names, or NULL */
    size_t i;
    struct drisk_progress *progress;     /* what was read, or NULL */
};

static void put(struct emitter *e, const char *name, double v)
{
    if (e->out)
        e->out[e->i] = isfinite(v) ? v : 0.0;
    if (e->names)
        snprintf(e->names[e->i], DRISK_FEATURE_NAME_MAX, "%s", name);
    e->i++;
}

/* Formats a name only when names are being recorded: building values stays cheap. */
#define NAMED(e, buf, ...) ((e)->names ? (snprintf((buf), sizeof(buf), __VA_ARGS__), (buf)) : "")

static void put_onehot(struct emitter *e, const char *prefix, const struct drisk_vocab *v,
                       int index)
{
    char name[DRISK_FEATURE_NAME_MAX];
    for (int k = 0; k <= v->n; k++)
        put(e, NAMED(e, name, "%s=%s", prefix, k < v->n ? v->name[k] : "other"), k == index);
}

static double log1p_pos(double x)
{
    return log1p(x > 0 ? x : 0);
}

static double clamp(double x, double lo, double hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

static int is_peak(int64_t ts)
{
    int y, m, d;
    drisk_civil_from_days(ts >= 0 ? ts / 86400 : (ts - 86399) / 86400, &y, &m, &d);
    return (m == 11 && d >= 20) || m == 12;
}

static int business_days_between(int64_t from, int64_t to)
{
    int n = 0;
    for (int64_t day = from - from % 86400 + 86400; day <= to && n < 60; day += 86400)
        n += drisk_is_business_day(day);
    return n;
}

static void emit(const struct drisk_feature_schema *s, const struct drisk_network *net,
                 const struct drisk_shipment *sh, const struct drisk_scan_event *scans, size_t n,
                 int64_t as_of, struct emitter *e)
{
    char name[DRISK_FEATURE_NAME_MAX];
    const double H = 3600.0;

    /* static: what is known at checkout */
    put(e, "promised_business_days", business_days_between(sh->created_at, sh->promised_at));
    put(e, "promised_h_log", log1p_pos((double)(sh->promised_at - sh->created_at) / H));
    int dow = drisk_weekday(sh->created_at);
    static const char *const days[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
    for (int k = 0; k < 7; k++)
        put(e, NAMED(e, name, "created_dow=%s", days[k]), dow == k);
    int64_t sod = sh->created_at % 86400;
    put(e, "created_hour", (double)(sod < 0 ? sod + 86400 : sod) / 86400.0);
    put(e, "peak_season", is_peak(sh->created_at));
    put(e, "weight_kg_log", isnan(sh->weight_kg) ? 0 : log1p_pos(sh->weight_kg));
    put(e, "weight_missing", isnan(sh->weight_kg));
    put(e, "declared_value_log", isnan(sh->declared_value) ? 0 : log1p_pos(sh->declared_value));
    put(e, "declared_value_missing", isnan(sh->declared_value));
    put_onehot(e, "carrier", &s->carriers, vocab_index(&s->carriers, sh->carrier));
    put_onehot(e, "service", &s->services, vocab_index(&s->services, sh->service));
    put(e, "same_region", strcmp(sh->origin, sh->destination) == 0);

    /* progress: the shipment's own scans up to as_of */
    int last_event = n ? scans[n - 1].event : 0;
    int64_t last_ts = n ? scans[n - 1].ts : sh->created_at;
    int exceptions = 0, attempts = 0, picked = 0, ofd = 0, facilities = 0;
    int reasons[DRISK_REASON_COUNT] = { 0 }, last_reason = 0;
    int64_t loc = 0, prev_loc = 0, before_loc = 0, arrived_at = DRISK_TS_NONE;
    for (size_t k = 0; k < n; k++) {
        const struct drisk_scan_event *sc = &scans[k];
        exceptions += sc->event == DRISK_EVENT_EXCEPTION;
        if (sc->event == DRISK_EVENT_EXCEPTION)
            last_reason = sc->reason;
        attempts += sc->event == DRISK_EVENT_DELIVERY_ATTEMPTED;
        picked |= sc->event == DRISK_EVENT_PICKED_UP;
        ofd |= sc->event == DRISK_EVENT_OUT_FOR_DELIVERY;
        if (sc->event == DRISK_EVENT_EXCEPTION && sc->reason > 0 && sc->reason < DRISK_REASON_COUNT)
            reasons[sc->reason] = 1;
        if (sc->location_id > 0) {
            if (sc->location_id != prev_loc) {
                facilities++;
                before_loc = prev_loc;
                prev_loc = sc->location_id;
            }
            loc = sc->location_id;
            if (sc->event == DRISK_EVENT_ARRIVED_AT_FACILITY)
                arrived_at = sc->ts;
        }
    }
    put(e, "scans_log", log1p_pos((double)n));
    for (int k = 0; k <= DRISK_EVENT_COUNT; k++)
        put(e, NAMED(e, name, "last_event=%s", k ? drisk_event_name(k) : "none"), last_event == k);
    double since_last_h = (double)(as_of - last_ts) / H;
    double age_h = (double)(as_of - sh->created_at) / H;
    double until_promise_h = (double)(sh->promised_at - as_of) / H;
    put(e, "h_since_last_scan_log", log1p_pos(since_last_h));
    put(e, "h_since_created_log", log1p_pos(age_h));
    put(e, "days_until_promise", clamp(until_promise_h / 24.0, -30, 30));
    put(e, "past_promise", until_promise_h < 0);
    put(e, "facilities_visited", facilities);
    put(e, "exceptions", exceptions);
    put(e, "delivery_attempts", attempts);
    for (int k = 1; k < DRISK_REASON_COUNT; k++)
        put(e, NAMED(e, name, "exception_reason=%s", drisk_reason_name(k)), reasons[k]);
    put(e, "picked_up", picked);
    put(e, "out_for_delivery_seen", ofd);

    /* network, as of as_of */
    struct drisk_network_view v;
    drisk_network_view(net, sh, loc, before_loc, as_of, &v);
    if (e->progress)
        *e->progress = (struct drisk_progress){
            last_ts, last_event,
            last_event == DRISK_EVENT_ARRIVED_AT_FACILITY ? arrived_at : DRISK_TS_NONE,
            exceptions, attempts, facilities, ofd, last_reason, v };
    int transit_known = !isnan(v.lane_transit_h) && v.lane_transit_h > 0;
    put(e, "pace_vs_lane", transit_known ? clamp(age_h / v.lane_transit_h, 0, 10) : 0);
    put(e, "lane_transit_unknown", !transit_known);
    /* the promise in units of the typical transit (the lane's, else the carrier x
     * service's): a network that slows down shrinks every new parcel's slack */
    double typical_h = transit_known ? v.lane_transit_h
                     : !isnan(v.service_transit_h) && v.service_transit_h > 0 ? v.service_transit_h : NAN;
    put(e, "promise_vs_transit",
        !isnan(typical_h) ? clamp(log(((double)(sh->promised_at - sh->created_at) / H + 1.0) /
                                      (typical_h + 1.0)), -4, 4) : 0);
    put(e, "until_promise_vs_transit",
        !isnan(typical_h) ? clamp(until_promise_h / (typical_h + 1.0), -5, 5) : 0);
    int dwell_known = !isnan(v.facility_dwell_h) && v.facility_dwell_h > 0;
    int at_facility = last_event == DRISK_EVENT_ARRIVED_AT_FACILITY && arrived_at != DRISK_TS_NONE;
    put(e, "dwell_vs_facility_normal",
        at_facility && dwell_known ? clamp(((double)(as_of - arrived_at) / H) / v.facility_dwell_h, 0, 20) : 0);
    put(e, "facility_congestion",
        dwell_known && !isnan(v.facility_recent_dwell_h)
            ? clamp(log(v.facility_recent_dwell_h / v.facility_dwell_h + 1e-3), -5, 5) : 0);
    /* the absolute levels too: a slow facility is slow whatever its own normal */
    put(e, "facility_dwell_h_log", dwell_known ? log1p_pos(v.facility_dwell_h) : 0);
    put(e, "facility_recent_dwell_h_log",
        !isnan(v.facility_recent_dwell_h) ? log1p_pos(v.facility_recent_dwell_h)
        : dwell_known ? log1p_pos(v.facility_dwell_h) : 0);
    put(e, "facility_exception_rate_24h", v.facility_exception_rate);
    put(e, "facility_scans_24h_log", log1p_pos(v.facility_scans_24h));
    put(e, "carrier_late_rate_28d", v.carrier_late_rate);
    put(e, "lane_late_rate_28d", v.lane_late_rate);
    put(e, "overall_late_rate_28d", v.overall_late_rate);
    put(e, "inflight_overall_open", v.overall_open_share);

    /* every place, lane, service and merchant: its outcome history up to as_of */
    for (int c = 0; c < DRISK_CAT_COUNT; c++) {
        const char *cn = drisk_category_name(c);
        put(e, NAMED(e, name, "hist_%s_late", cn), v.cat[c].late_rate);
        put(e, NAMED(e, name, "hist_%s_delay_d", cn), v.cat[c].delay_d);
        put(e, NAMED(e, name, "hist_%s_n_log", cn), log1p_pos(v.cat[c].n));
        put(e, NAMED(e, name, "recent_%s_late", cn), v.cat[c].recent_late_rate);
        put(e, NAMED(e, name, "recent_%s_delay_d", cn), v.cat[c].recent_delay_d);
        if (c == DRISK_CAT_ORIGIN || c == DRISK_CAT_DESTINATION || c == DRISK_CAT_CARRIER_SERVICE)
            put(e, NAMED(e, name, "inflight_%s_open", cn), v.cat[c].open_share);
    }
}

/* ---- schema ---- */

static size_t count_features(const struct drisk_feature_schema *s)
{
    struct drisk_shipment sh;
    memset(&sh, 0, sizeof sh);
    sh.weight_kg = sh.declared_value = NAN;
    struct emitter e = { NULL, NULL, 0, NULL };
    struct drisk_network *net = drisk_network_create();
    if (net)
        emit(s, net, &sh, NULL, 0, 0, &e);
    drisk_network_free(net);
    return e.i;
}

static void schema_hash(struct drisk_feature_schema *s)
{
    char ver[16];
    char (*names)[DRISK_FEATURE_NAME_MAX] = calloc(s->n_features, DRISK_FEATURE_NAME_MAX);
    snprintf(ver, sizeof ver, "v%d", s->version);
    uint64_t h = drisk_fnv1a(DRISK_FNV_SEED, ver);
    if (names && drisk_feature_names(s, names) == 0) {
        for (size_t i = 0; i < s->n_features; i++)
            h = (drisk_fnv1a(h, names[i]) ^ 0xff) * 1099511628211ULL; /* 0xff ends a name */
        snprintf(s->hash, sizeof s->hash, "%016llx", (unsigned long long)h);
    } else {
        s->hash[0] = '\0'; /* out of memory: no model will match an empty hash */
    }
    free(names);
}

void drisk_schema_builder_finish(const struct drisk_schema_builder *b, int64_t min_count,
                                 struct drisk_feature_schema *schema)
{
    memset(schema, 0, sizeof *schema);
    schema->version = DRISK_FEATURE_VERSION;
    choose(&b->carriers, min_count, &schema->carriers);
    choose(&b->services, min_count, &schema->services);
    schema->n_features = count_features(schema);
    schema_hash(schema);
}

int drisk_feature_names(const struct drisk_feature_schema *s,
                        char (*names)[DRISK_FEATURE_NAME_MAX])
{
    struct drisk_network *net = drisk_network_create();
    if (!net)
        return -1;
    struct drisk_shipment sh;
    memset(&sh, 0, sizeof sh);
    struct emitter e = { NULL, names, 0, NULL };
    emit(s, net, &sh, NULL, 0, 0, &e);
    drisk_network_free(net);
    return 0;
}

int drisk_feature_index(const struct drisk_feature_schema *s, const char *name)
{
    int found = -1;
    char (*names)[DRISK_FEATURE_NAME_MAX] = calloc(s->n_features, DRISK_FEATURE_NAME_MAX);
    if (names && drisk_feature_names(s, names) == 0)
        for (size_t i = 0; i < s->n_features && found < 0; i++)
            if (strcmp(names[i], name) == 0)
                found = (int)i;
    free(names);
    return found;
}

void drisk_feature_name(const struct drisk_feature_schema *s, size_t i,
                        char buf[DRISK_FEATURE_NAME_MAX])
{
    buf[0] = '\0';
    if (i >= s->n_features)
        return;
    char (*names)[DRISK_FEATURE_NAME_MAX] = calloc(s->n_features, DRISK_FEATURE_NAME_MAX);
    if (names && drisk_feature_names(s, names) == 0)
        memcpy(buf, names[i], DRISK_FEATURE_NAME_MAX);
    free(names);
}

void drisk_features_build(const struct drisk_feature_schema *schema,
                          const struct drisk_network *net, const struct drisk_shipment *sh,
                          const struct drisk_scan_event *scans, size_t n_scans, int64_t as_of,
                          double *out, struct drisk_progress *progress)
{
    struct emitter e = { out, NULL, 0, progress };
    emit(schema, net, sh, scans, n_scans, as_of, &e);
}

/* ---- text form: "drisk-features v4;carriers=a,b;services=..." with ',' ';' '%' and
 * control bytes in names percent-encoded ---- */

static int put_text(char *buf, size_t cap, size_t *n, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ',' || c == ';' || c == '%' || c < 0x20) {
            if (*n + 3 >= cap)
                return -1;
            *n += (size_t)snprintf(buf + *n, cap - *n, "%%%02X", c);
        } else {
            if (*n + 1 >= cap)
                return -1;
            buf[(*n)++] = (char)c;
        }
    }
    buf[*n] = '\0';
    return 0;
}

static int put_vocab(char *buf, size_t cap, size_t *n, const char *key, const struct drisk_vocab *v)
{
    if (*n + strlen(key) + 3 >= cap)
        return -1;
    *n += (size_t)snprintf(buf + *n, cap - *n, ";%s=", key);
    for (int i = 0; i < v->n; i++) {
        if (i) {
            if (*n + 2 >= cap)
                return -1;
            buf[(*n)++] = ',';
            buf[*n] = '\0';
        }
        if (put_text(buf, cap, n, v->name[i]))
            return -1;
    }
    return 0;
}

int drisk_feature_schema_write(const struct drisk_feature_schema *s, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "drisk-features v%d", s->version);
    if (n >= cap || put_vocab(buf, cap, &n, "carriers", &s->carriers) ||
        put_vocab(buf, cap, &n, "services", &s->services))
        return -1;
    return (int)n;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Parses "key=a,b,c" up to ';' or the end into v; returns the rest, or NULL. */
static const char *read_vocab(const char *p, const char *key, struct drisk_vocab *v)
{
    size_t kl = strlen(key);
    if (*p != ';' || strncmp(p + 1, key, kl) != 0 || p[1 + kl] != '=')
        return NULL;
    p += kl + 2;
    v->n = 0;
    if (*p == ';' || !*p)
        return p;
    for (;;) {
        if (v->n == DRISK_VOCAB_MAX)
            return NULL;
        size_t len = 0;
        char *dst = v->name[v->n];
        while (*p && *p != ',' && *p != ';') {
            int c = (unsigned char)*p;
            if (c == '%') {
                int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
                if (lo < 0)
                    return NULL;
                c = hi * 16 + lo;
                p += 2;
            }
            if (len + 1 >= DRISK_NAME_MAX)
                return NULL;
            dst[len++] = (char)c;
            p++;
        }
        dst[len] = '\0';
        v->n++;
        if (*p != ',')
            return p;
        p++;
    }
}

enum drisk_status drisk_feature_schema_read(const char *text, struct drisk_feature_schema *s,
                                            struct drisk_error *err)
{
    memset(s, 0, sizeof *s);
    const char *p = text;
    int version = 0, used = 0;
    if (sscanf(p, "drisk-features v%d%n", &version, &used) != 1 || version != DRISK_FEATURE_VERSION)
        return drisk_error_set(err, DRISK_ESCHEMA,
                               "feature schema \"%.40s\" is not version %d of this drisk: "
                               "retrain the model", text, DRISK_FEATURE_VERSION);
    p += used;
    s->version = version;
    if (!(p = read_vocab(p, "carriers", &s->carriers)) ||
        !(p = read_vocab(p, "services", &s->services)) || *p)
        return drisk_error_set(err, DRISK_EINVAL, "malformed feature schema text");
    s->n_features = count_features(s);
    schema_hash(s);
    return DRISK_OK;
}
