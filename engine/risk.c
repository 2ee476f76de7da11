/* Scoring and reasons (engine/risk.h). Each feature belongs to a family (stall,
 * exceptions, promise, carrier, ...); a family's weight in a prediction is the sum of
 * its features' positive contributions (log-odds, from drisk_model_explain) to the late
 * or the lost model, whichever is larger. The heaviest families become reasons, each
 * worded from the shipment's own facts and the network statistics. */
#include "engine/risk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/timeutil.h"
#include "engine/vocab.h"

enum family {
    F_STALL = 0, F_EXCEPTION, F_PROMISE, F_CARRIER, F_LANE, F_FACILITY, F_SERVICE,
    F_CALENDAR, F_PARCEL, F_PROGRESS, F_MERCHANT, F_COUNT
};

struct prefix_family {
    const char *prefix;
    int family;
};

static const struct prefix_family families[] = {
    { "h_since_last_scan", F_STALL }, { "dwell_vs_facility", F_STALL },
    { "last_event=", F_STALL },       { "exception", F_EXCEPTION },
    { "delivery_attempts", F_EXCEPTION }, { "days_until_promise", F_PROMISE },
    { "past_promise", F_PROMISE },    { "pace_vs_lane", F_PROMISE },
    { "h_since_created", F_PROMISE }, { "lane_transit_unknown", F_PROMISE },
    { "promise_vs_transit", F_PROMISE }, { "until_promise_vs_transit", F_PROMISE },
    { "carrier", F_CARRIER },         { "lane_late_rate", F_CARRIER },
    { "overall_late_rate", F_CARRIER }, { "origin=", F_LANE },
    { "destination=", F_LANE },       { "same_region", F_LANE },
    { "facility_", F_FACILITY },      { "service=", F_SERVICE },
    { "promised_", F_SERVICE },       { "created_", F_CALENDAR },
    { "peak_season", F_CALENDAR },    { "weight", F_PARCEL },
    { "declared_value", F_PARCEL },   { "scans_log", F_PROGRESS },
    { "facilities_visited", F_PROGRESS }, { "picked_up", F_PROGRESS },
    { "out_for_delivery_seen", F_PROGRESS },
    { "hist_origin", F_LANE },        { "hist_dest", F_LANE },
    { "hist_lane", F_LANE },          { "hist_carrier_service", F_SERVICE },
    { "hist_merchant", F_MERCHANT },  { "hist_facility", F_FACILITY },
    { "hist_prev_facility", F_FACILITY },
    { "recent_origin", F_LANE },      { "recent_dest", F_LANE },
    { "recent_lane", F_LANE },        { "recent_carrier_service", F_SERVICE },
    { "recent_merchant", F_MERCHANT }, { "recent_facility", F_FACILITY },
    { "recent_prev_facility", F_FACILITY },
    { "inflight_overall", F_CARRIER }, { "inflight_origin", F_LANE },
    { "inflight_dest", F_LANE },      { "inflight_lane", F_LANE },
    { "inflight_carrier_service", F_SERVICE }, { "inflight_merchant", F_MERCHANT },
};

static int family_of(const char *name)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strncmp(name, families[i].prefix, strlen(families[i].prefix)) == 0)
            return families[i].family;
    return -1;
}

/* The reasons are written with a small appender, not printf: formatting them was the
 * largest single cost of a /v1/score request after the kernel's. */
struct text {
    char *p;
    size_t cap, n;
};

static void put_s(struct text *t, const char *s)
{
    while (*s && t->n + 1 < t->cap)
        t->p[t->n++] = *s++;
    t->p[t->n] = '\0';
}

static long long r0(double x)
{
    return isfinite(x) && fabs(x) < 1e15 ? llround(x) : 0;
}

static void put_i(struct text *t, long long v)
{
    char d[24];
    int k = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        d[k++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        put_s(t, "-");
    while (k > 0 && t->n + 1 < t->cap)
        t->p[t->n++] = d[--k];
    t->p[t->n] = '\0';
}

/* x rounded to a whole number */
static void put_0(struct text *t, double x)
{
    put_i(t, r0(x));
}

/* x with one decimal */
static void put_1(struct text *t, double x)
{
    long long v = r0(x * 10);
    if (v < 0) {
        put_s(t, "-");
        v = -v;
    }
    put_i(t, v / 10);
    put_s(t, ".");
    put_i(t, v % 10);
}

static void put_pct(struct text *t, double rate)
{
    put_0(t, 100 * rate);
    put_s(t, "%");
}

static void say(const struct drisk_shipment *sh, const struct drisk_progress *f, int family,
                int64_t as_of, const char *loc, char *buf, size_t cap)
{
    char ts[DRISK_TS_BUF];
    struct text t = { buf, cap, 0 };
    double idle_h = (double)(as_of - f->last_ts) / 3600.0;
    buf[0] = '\0';
    switch (family) {
    case F_STALL:
        put_s(&t, "no scan for ");
        put_0(&t, idle_h);
        put_s(&t, " h");
        if (f->arrived_at != DRISK_TS_NONE && f->view.facility_dwell_h > 0 &&
            !isnan(f->view.facility_dwell_h)) {
            if (loc[0])
                put_s(&t, " at "), put_s(&t, loc);
            put_s(&t, ", ");
            put_1(&t, ((double)(as_of - f->arrived_at) / 3600.0) / f->view.facility_dwell_h);
            put_s(&t, "x this facility's normal dwell (");
            put_0(&t, f->view.facility_dwell_h);
            put_s(&t, " h)");
        } else {
            put_s(&t, " since ");
            put_s(&t, f->last_event ? drisk_event_name(f->last_event) : "the label was created");
            if (loc[0])
                put_s(&t, " at "), put_s(&t, loc);
        }
        break;
    case F_EXCEPTION:
        if (f->exceptions) {
            put_i(&t, f->exceptions);
            put_s(&t, f->exceptions == 1 ? " carrier exception, the last " : " carrier exceptions, the last ");
            put_s(&t, f->last_reason ? drisk_reason_name(f->last_reason) : "without a reason");
        } else {
            put_i(&t, f->attempts);
            put_s(&t, f->attempts == 1 ? " failed delivery attempt" : " failed delivery attempts");
        }
        break;
    case F_PROMISE: {
        double left_h = (double)(sh->promised_at - as_of) / 3600.0;
        double age_h = (double)(as_of - sh->created_at) / 3600.0;
        if (left_h < 0) {
            put_s(&t, "promised by ");
            put_s(&t, drisk_ts_format(sh->promised_at, ts));
            put_s(&t, ", ");
            put_0(&t, -left_h);
            put_s(&t, " h ago");
        } else {
            put_s(&t, "promise due in ");
            put_0(&t, left_h);
            if (f->view.lane_transit_h > 0 && !isnan(f->view.lane_transit_h)) {
                put_s(&t, " h; ");
                put_0(&t, age_h);
                put_s(&t, " h in transit, ");
                put_1(&t, age_h / f->view.lane_transit_h);
                put_s(&t, "x this lane's typical ");
                put_0(&t, f->view.lane_transit_h);
                put_s(&t, " h");
            } else {
                put_s(&t, " h after ");
                put_0(&t, age_h);
                put_s(&t, " h in transit");
            }
        }
        break;
    }
    case F_CARRIER:
        put_s(&t, sh->carrier);
        put_s(&t, " late on ");
        put_pct(&t, f->view.lane_late_rate);
        put_s(&t, " of this lane's parcels over the last 28 days (");
        put_pct(&t, f->view.carrier_late_rate);
        put_s(&t, " across its lanes, ");
        put_pct(&t, f->view.overall_late_rate);
        put_s(&t, " all carriers)");
        break;
    case F_LANE: {
        const struct drisk_category_view *l = &f->view.cat[DRISK_CAT_LANE],
                                         *d = &f->view.cat[DRISK_CAT_DESTINATION];
        put_s(&t, "lane ");
        put_s(&t, sh->origin);
        put_s(&t, " to ");
        put_s(&t, sh->destination);
        put_s(&t, ": ");
        put_pct(&t, l->late_rate);
        put_s(&t, " of its parcels late (");
        put_0(&t, l->n);
        put_s(&t, " recent outcomes; destination ");
        put_pct(&t, d->late_rate);
        put_s(&t, ", ");
        put_pct(&t, f->view.lane_late_rate);
        put_s(&t, " with this carrier over 28 days)");
        break;
    }
    case F_MERCHANT:
        put_s(&t, "merchant ");
        put_s(&t, sh->merchant);
        put_s(&t, ": ");
        put_pct(&t, f->view.cat[DRISK_CAT_MERCHANT].late_rate);
        put_s(&t, " of its recent parcels late");
        break;
    case F_FACILITY:
        if (!isnan(f->view.facility_recent_dwell_h) && f->view.facility_dwell_h > 0) {
            put_s(&t, loc[0] ? loc : "the current facility");
            put_s(&t, " congested: parcels leaving it in the last 24 h dwelt ");
            put_1(&t, f->view.facility_recent_dwell_h);
            put_s(&t, " h against ");
            put_1(&t, f->view.facility_dwell_h);
            put_s(&t, " h normally; ");
            put_pct(&t, f->view.facility_exception_rate);
            put_s(&t, " of its scans were exceptions");
        } else {
            put_pct(&t, f->view.facility_exception_rate);
            put_s(&t, " of the scans at ");
            put_s(&t, loc[0] ? loc : "the current facility");
            put_s(&t, " in the last 24 h were exceptions");
        }
        if (!(f->view.unseen & (1u << DRISK_CAT_FACILITY))) {
            put_s(&t, "; ");
            put_pct(&t, f->view.cat[DRISK_CAT_FACILITY].late_rate);
            put_s(&t, " of recent parcels through it were late");
        }
        break;
    case F_SERVICE:
        put_s(&t, sh->service);
        put_s(&t, " service promised in ");
        put_1(&t, (double)(sh->promised_at - sh->created_at) / 86400.0);
        put_s(&t, " days");
        break;
    case F_CALENDAR: {
        static const char *const days[7] = { "Thursday", "Friday", "Saturday", "Sunday",
                                             "Monday", "Tuesday", "Wednesday" };
        int64_t d = sh->created_at / 86400 - (sh->created_at % 86400 < 0);
        put_s(&t, "shipped on a ");
        put_s(&t, days[((d % 7) + 7) % 7]);
        put_s(&t, " (");
        put_s(&t, drisk_ts_format(sh->created_at, ts));
        put_s(&t, ")");
        break;
    }
    case F_PARCEL:
        if (!isnan(sh->weight_kg)) {
            put_s(&t, "parcel of ");
            put_1(&t, sh->weight_kg);
            put_s(&t, " kg");
        } else {
            put_s(&t, "parcel without a declared weight");
        }
        break;
    default:
        if (!f->last_event) {
            put_s(&t, "no carrier scan yet");
        } else {
            put_i(&t, f->facilities);
            put_s(&t, f->facilities == 1 ? " facility so far, " : " facilities so far, ");
            put_s(&t, f->out_for_delivery ? "out for delivery" : "not yet out for delivery");
        }
        break;
    }
}

/* Says which category had no history and whose figures stood in for it (lane ->
 * destination -> postal area -> all parcels); 0 when the lane is known. */
static int say_fallback(const struct drisk_shipment *sh, const struct drisk_progress *f,
                        char *buf, size_t cap)
{
    struct text t = { buf, cap, 0 };
    unsigned u = f->view.unseen;
    if (!(u & (1u << DRISK_CAT_LANE)))
        return 0;
    int dest_new = (u >> DRISK_CAT_DESTINATION) & 1;
    int area_new = (u >> DRISK_CAT_DEST_PREFIX) & 1;
    put_s(&t, dest_new ? "new destination " : "new lane ");
    if (!dest_new)
        put_s(&t, sh->origin), put_s(&t, " to ");
    put_s(&t, sh->destination);
    put_s(&t, ": no outcome history yet, scored with ");
    if (!dest_new) {
        put_s(&t, "destination ");
        put_s(&t, sh->destination);
        put_s(&t, "'s (");
    } else if (!area_new) {
        char area[DRISK_DEST_PREFIX_LEN + 1];
        memcpy(area, sh->destination, DRISK_DEST_PREFIX_LEN);
        area[DRISK_DEST_PREFIX_LEN] = '\0';
        put_s(&t, "postal area ");
        put_s(&t, area);
        put_s(&t, "'s (");
    } else {
        put_s(&t, "all parcels' (");
    }
    put_pct(&t, f->view.cat[DRISK_CAT_LANE].late_rate);
    put_s(&t, " late)");
    return 1;
}

static void known_outcome(const struct drisk_shipment *sh, struct drisk_risk *out)
{
    char ts[DRISK_TS_BUF];
    if (sh->outcome == DRISK_OUTCOME_DELIVERED && sh->delivered_at != DRISK_TS_NONE) {
        out->p_lost = 0;
        out->p_late = sh->delivered_at > sh->promised_at;
        out->eta_p50_h = out->eta_p90_h = (double)(sh->delivered_at - out->as_of) / 3600.0;
        snprintf(out->reasons[0], sizeof out->reasons[0], "delivered at %s%s",
                 drisk_ts_format(sh->delivered_at, ts),
                 out->p_late > 0 ? ", after the promise" : "");
    } else {
        out->p_lost = sh->outcome == DRISK_OUTCOME_LOST;
        out->p_late = 1;
        snprintf(out->reasons[0], sizeof out->reasons[0], "outcome: %s",
                 drisk_outcome_name(sh->outcome));
    }
    out->n_reasons = 1;
}

enum drisk_status drisk_risk_score(const struct drisk_scorer *sc, const struct drisk_network *net,
                                   const struct drisk_settings *settings,
                                   const struct drisk_shipment *sh,
                                   const struct drisk_scan_event *scans, size_t n, int64_t as_of,
                                   const char *location_code, struct drisk_risk *out,
                                   struct drisk_error *err)
{
    memset(out, 0, sizeof *out);
    out->as_of = as_of;
    out->p_late = out->p_lost = out->eta_p50_h = out->eta_p90_h = NAN;
    out->shadow[0] = out->shadow[1] = out->shadow[2] = out->shadow_eta_p90_h = NAN;
    while (n > 0 && scans[n - 1].ts > as_of)
        n--;
    if (sh->outcome != DRISK_OUTCOME_NONE) {
        known_outcome(sh, out);
        out->level = sh->outcome == DRISK_OUTCOME_LOST ? DRISK_RISK_HIGH : DRISK_RISK_LOW;
        return DRISK_OK;
    }
    size_t dim = 0;
    for (int k = 0; k < DRISK_TARGET_COUNT; k++) {
        if (sc->model[k] && sc->schema[k]->n_features > dim)
            dim = sc->schema[k]->n_features;
        if (sc->shadow[k] && sc->shadow_schema[k]->n_features > dim)
            dim = sc->shadow_schema[k]->n_features;
    }
    double stack_buf[2 * 256], *buf = stack_buf; /* no malloc for the usual schema sizes */
    if (dim > 256 && !(buf = malloc(2 * dim * sizeof *buf)))
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory scoring");
    double *x = buf, *contrib = buf + dim;
    double weight[F_COUNT] = { 0 };
    const struct drisk_feature_schema *built = NULL;
    struct drisk_progress progress = { 0 };
    enum drisk_status rc = DRISK_OK;
    for (int k = 0; k < DRISK_TARGET_COUNT && !rc; k++) {
        const struct drisk_model *m = sc->model[k];
        if (!m)
            continue;
        if (!built || strcmp(built->hash, sc->schema[k]->hash) != 0) {
            drisk_features_build(sc->schema[k], net, sh, scans, n, as_of, x, &progress);
            built = sc->schema[k];
        }
        struct drisk_prediction p;
        if ((rc = drisk_model_predict(m, x, 1, &p, err)))
            break;
        if (k == DRISK_TARGET_ETA) {
            out->eta_p50_h = p.p50_h;
            out->eta_p90_h = p.p90_h;
            continue;
        }
        if (k == DRISK_TARGET_LATE)
            out->p_late = p.prob;
        else
            out->p_lost = p.prob;
        double base;
        if (drisk_model_explain(m, x, contrib, &base, NULL) != DRISK_OK)
            continue; /* a learner that cannot explain gives no reasons */
        double fam[F_COUNT] = { 0 };
        char name[DRISK_FEATURE_NAME_MAX];
        for (size_t j = 0; j < sc->schema[k]->n_features; j++) {
            if (contrib[j] <= 0)
                continue;
            int f;
            if (sc->families[k])
                f = sc->families[k][j];
            else {
                drisk_feature_name(sc->schema[k], j, name);
                f = family_of(name);
            }
            if (f >= 0)
                fam[f] += contrib[j];
        }
        for (int f = 0; f < F_COUNT; f++)
            if (fam[f] > weight[f])
                weight[f] = fam[f];
    }
    /* the shadows: their scores only (no reasons), on the features already built when
     * they read the same schema */
    for (int k = 0; k < DRISK_TARGET_COUNT && !rc; k++) {
        if (!sc->shadow[k])
            continue;
        if (!built || strcmp(built->hash, sc->shadow_schema[k]->hash) != 0) {
            struct drisk_progress unused;
            drisk_features_build(sc->shadow_schema[k], net, sh, scans, n, as_of, x, &unused);
            built = sc->shadow_schema[k];
        }
        struct drisk_prediction p;
        if (drisk_model_predict(sc->shadow[k], x, 1, &p, NULL) != DRISK_OK)
            continue; /* a shadow never fails the active models' answer: no score kept */
        out->shadow[k] = k == DRISK_TARGET_ETA ? p.p50_h : p.prob;
        if (k == DRISK_TARGET_ETA)
            out->shadow_eta_p90_h = p.p90_h;
    }
    if (buf != stack_buf)
        free(buf);
    if (rc)
        return rc;
    /* past the promise and not delivered, late is no longer a forecast but the label (the
     * late models never saw such a snapshot: they learn from snapshots before the promise) */
    if (as_of > sh->promised_at) {
        if (!isnan(out->p_late))
            out->p_late = 1.0;
        if (!isnan(out->shadow[DRISK_TARGET_LATE]))
            out->shadow[DRISK_TARGET_LATE] = 1.0;
    }
    out->level = drisk_risk_level(settings, out->p_late, out->p_lost);
    out->unseen = built ? progress.view.unseen : 0;

    /* a family weighs only if a model explained, so progress was filled */
    for (size_t r = 0; r < DRISK_RISK_MAX_REASONS - 1; r++) {
        int best = -1;
        for (int f = 0; f < F_COUNT; f++)
            if (weight[f] > 0.1 && (best < 0 || weight[f] > weight[best]))
                best = f;
        if (best < 0)
            break;
        weight[best] = 0;
        say(sh, &progress, best, as_of, location_code ? location_code : "",
            out->reasons[out->n_reasons], sizeof out->reasons[0]);
        out->n_reasons++;
    }
    if (out->n_reasons == 0)
        snprintf(out->reasons[0], sizeof out->reasons[0], "no strong risk signal%s",
                 n ? "" : " (no scans yet: scored from carrier, service and lane)");
    if (out->n_reasons == 0)
        out->n_reasons = 1;
    if (built && say_fallback(sh, &progress, out->reasons[out->n_reasons], sizeof out->reasons[0]))
        out->n_reasons++;
    return DRISK_OK;
}

int drisk_risk_families(const struct drisk_feature_schema *schema, signed char *families_out)
{
    char (*names)[DRISK_FEATURE_NAME_MAX] = calloc(schema->n_features, DRISK_FEATURE_NAME_MAX);
    if (!names || drisk_feature_names(schema, names)) {
        free(names);
        return -1;
    }
    for (size_t j = 0; j < schema->n_features; j++)
        families_out[j] = (signed char)family_of(names[j]);
    free(names);
    return 0;
}
