/* Tests of the shipment simulator (data/sim.c) against the properties docs/SIMULATOR.md
 * promises: determinism, label consistency, the calendar rules, the network, carriers
 * and merchants, disruptions, and the documented rates. A history of 30,000 shipments is
 * simulated into a store in the scratch directory argv[1] and read back shipment by
 * shipment; the CSV export is checked for determinism byte for byte. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/sim.h"
#include "data/store.h"
#include "base/timeutil.h"
#include "engine/vocab.h"
#include "check.h"
#include "store_target.h"

#define DAY 86400
#define N_SHIPMENTS 30000

/* ---------------------------------------------------------------- helpers */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    *len = 0;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        *len = fread(buf, 1, (size_t)n, f);
        buf[*len] = '\0';
    }
    fclose(f);
    return buf;
}

static int same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = read_file(a, &la), *y = read_file(b, &lb);
    int same = x && y && la == lb && la > 0 && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

static int64_t day_of(int64_t ts)
{
    return ts / DAY;
}

static int is_holiday(int64_t ts)
{
    int y, m, d;
    drisk_civil_from_days(day_of(ts), &y, &m, &d);
    return (m == 1 && d == 1) || (m == 12 && (d == 25 || d == 26));
}

static int is_peak(int64_t ts)
{
    int y, m, d;
    drisk_civil_from_days(day_of(ts), &y, &m, &d);
    return (m == 11 && d >= 20) || (m == 12 && d <= 24);
}

static int is_terminal(int ev)
{
    return ev == DRISK_EVENT_DELIVERED || ev == DRISK_EVENT_RETURN_TO_SENDER ||
           ev == DRISK_EVENT_LOST;
}

/* Facility codes "Rxx-HUB" / "Rxx-DSk" as a small integer (region * 8 + 0 for the hub,
 * + k for station k); -1 for anything else. */
static int fac_key(const char *loc)
{
    if (loc[0] != 'R' || loc[1] < '0' || loc[1] > '9' || loc[2] < '0' || loc[2] > '9' ||
        loc[3] != '-')
        return -1;
    int r = (loc[1] - '0') * 10 + (loc[2] - '0');
    if (r < 1 || r > 12)
        return -1;
    if (strcmp(loc + 4, "HUB") == 0)
        return r * 8;
    if (loc[4] == 'D' && loc[5] == 'S' && loc[6] >= '1' && loc[6] <= '4' && loc[7] == '\0')
        return r * 8 + (loc[6] - '0');
    return -1;
}

enum { AP, FX, UP, CH, N_CARRIERS };
static const char *const carrier_names[N_CARRIERS] = { "apex", "fleetex", "unipost", "cityhop" };
static const char *const carrier_prefix[N_CARRIERS] = { "APX", "FX", "UP", "CH" };

static int carrier_index(const char *name)
{
    for (int i = 0; i < N_CARRIERS; i++)
        if (strcmp(name, carrier_names[i]) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------- the read-back pass */

#define MAX_FAC (13 * 8)

struct stats {
    int64_t start, now, tab_day0;
    int tab_days;
    uint8_t *disrupted; /* [MAX_FAC][tab_days]: 1 backlog, 2 storm */
    int64_t shipments, scans, inconsistent, order_bad;
    int64_t delivered, on_time, lost, returned, in_flight;
    int64_t labeled_c[N_CARRIERS], on_time_c[N_CARRIERS], shipments_c[N_CARRIERS];
    int64_t scans_c[N_CARRIERS], delivered_c[N_CARRIERS], picked_up_c[N_CARRIERS];
    int64_t lost_c[N_CARRIERS];
    int64_t labeled_peak, on_time_peak, labeled_off, on_time_off;
    int64_t orders_by_weekday[7], days_by_weekday[7];
    int64_t orders_peak, orders_oct, days_peak, days_oct;
    int64_t bad_delivery_day, sat_delivery_c[N_CARRIERS], bad_pickup_day, economy_sunday;
    int64_t bad_promise, recent, recent_in_flight;
    int64_t lost_with_scan, lost_silent, lost_bad, returned_bad, lost_scan_soon;
    int64_t attempts, attempts_bad_retry, afp, afp_bad;
    int64_t reasons[DRISK_REASON_COUNT];
    int64_t bad_location, delivered_elsewhere, three_hubs, in_transit, local, local_bad;
    int64_t bad_id, bad_order, bad_carrier;
    double dwell_dis_h, dwell_norm_h;
    int64_t n_dwell_dis, n_dwell_norm, exc_in_dis;
    int64_t weather_outside_storm, weather;
    int64_t labeled_dis, late_dis, labeled_undis, late_undis;
    double weight_sum[4];
    int64_t weight_n[4];
    int origins_mask[4];
    int64_t merchant_other;
};

static int merchant_index(const char *m)
{
    static const char *const names[4] = { "acme-outdoor", "bloom-beauty", "techhaven",
                                          "casa-home" };
    for (int i = 0; i < 4; i++)
        if (strcmp(m, names[i]) == 0)
            return i;
    return -1;
}

static int disruption_at(const struct stats *st, int key, int64_t ts)
{
    int64_t d = day_of(ts) - st->tab_day0;
    if (key < 0 || d < 0 || d >= st->tab_days)
        return 0;
    return st->disrupted[(size_t)key * (size_t)st->tab_days + (size_t)d];
}

static int visit(const struct drisk_shipment *sh, const struct drisk_scan *sc, size_t n,
                 void *ctx, struct drisk_error *err)
{
    struct stats *st = ctx;
    int c = carrier_index(sh->carrier);
    int m = merchant_index(sh->merchant);
    int ok = 1;
    (void)err;
    st->shipments++;
    st->scans += (int64_t)n;
    if (c < 0) {
        st->bad_carrier++;
        return 0;
    }
    st->shipments_c[c]++;
    st->scans_c[c] += (int64_t)n;

    /* Tracking number: the carrier's prefix and digits; an order reference. */
    size_t pl = strlen(carrier_prefix[c]);
    if (strncmp(sh->shipment_id, carrier_prefix[c], pl) != 0 ||
        sh->shipment_id[pl] < '0' || sh->shipment_id[pl] > '9')
        st->bad_id++;
    if (!sh->order_id[0])
        st->bad_order++;

    if (m < 0) {
        st->merchant_other++;
    } else {
        st->weight_sum[m] += sh->weight_kg;
        st->weight_n[m]++;
        st->origins_mask[m] |= 1 << atoi(sh->origin + 1);
    }

    /* Labels and timeline consistency. */
    int n_delivered = 0, n_rts = 0, n_lost = 0, pickup = 0, hubs_seen = 0;
    int64_t delivered_ts = DRISK_TS_NONE;
    int touched_disruption = 0;
    char hubs[8][DRISK_NAME_MAX];
    if (n == 0 || sc[0].event != DRISK_EVENT_LABEL_CREATED || sc[0].ts != sh->created_at)
        ok = 0;
    if (sh->promised_at <= sh->created_at)
        ok = 0;
    for (size_t i = 0; i < n; i++) {
        const struct drisk_scan *s = &sc[i];
        int wd = drisk_weekday(s->ts);
        if (s->ts < sh->created_at || s->ts > st->now)
            ok = 0;
        if (i > 0 && s->ts < sc[i - 1].ts)
            ok = 0;
        if (i > 0 && is_terminal(sc[i - 1].event))
            ok = 0; /* nothing after the end of the journey */
        if (s->reason > 0 && s->reason < DRISK_REASON_COUNT)
            st->reasons[s->reason]++;
        switch (s->event) {
        case DRISK_EVENT_DELIVERED:
            n_delivered++;
            delivered_ts = s->ts;
            if (strncmp(s->location, sh->destination, strlen(sh->destination)) != 0 ||
                strstr(s->location, "-DS") == NULL)
                st->delivered_elsewhere++;
            /* fall through */
        case DRISK_EVENT_OUT_FOR_DELIVERY:
        case DRISK_EVENT_DELIVERY_ATTEMPTED:
            if (wd == 6 || is_holiday(s->ts))
                st->bad_delivery_day++;
            if (wd == 5) {
                st->sat_delivery_c[c]++;
            }
            break;
        case DRISK_EVENT_PICKED_UP:
            pickup = 1;
            if (!drisk_is_business_day(s->ts))
                st->bad_pickup_day++;
            break;
        case DRISK_EVENT_RETURN_TO_SENDER: n_rts++; break;
        case DRISK_EVENT_LOST:
            n_lost++;
            if (i > 0 && s->ts - sc[i - 1].ts < 7 * DAY)
                st->lost_scan_soon++;
            break;
        case DRISK_EVENT_IN_TRANSIT: st->in_transit++; break;
        case DRISK_EVENT_DEPARTED_FACILITY:
            if (strcmp(sh->service, "economy") == 0 && wd == 6)
                st->economy_sunday++;
            break;
        default: break;
        }
        if (s->event == DRISK_EVENT_ARRIVED_AT_FACILITY ||
            s->event == DRISK_EVENT_DEPARTED_FACILITY) {
            int key = fac_key(s->location);
            if (key < 0)
                st->bad_location++;
            if (key >= 0 && key % 8 == 0) {
                int seen = 0;
                for (int h = 0; h < hubs_seen; h++)
                    seen |= strcmp(hubs[h], s->location) == 0;
                if (!seen && hubs_seen < 8)
                    snprintf(hubs[hubs_seen++], DRISK_NAME_MAX, "%s", s->location);
            }
        }
        if (s->event == DRISK_EVENT_EXCEPTION && s->reason == DRISK_REASON_WEATHER_DELAY) {
            st->weather++;
            /* reported within hours of the arrival, which may be the day before */
            if (disruption_at(st, fac_key(s->location), s->ts) != 2 &&
                disruption_at(st, fac_key(s->location), s->ts - 3 * 3600) != 2)
                st->weather_outside_storm++;
        }
        /* Dwell: arrival to the next departure from the same facility. */
        if (s->event == DRISK_EVENT_ARRIVED_AT_FACILITY) {
            int key = fac_key(s->location);
            int dis = disruption_at(st, key, s->ts);
            touched_disruption |= dis != 0;
            for (size_t j = i + 1; j < n; j++) {
                if (sc[j].event == DRISK_EVENT_EXCEPTION && dis &&
                    strcmp(sc[j].location, s->location) == 0 &&
                    (sc[j].reason == DRISK_REASON_WEATHER_DELAY ||
                     sc[j].reason == DRISK_REASON_DELAYED))
                    st->exc_in_dis++;
                if (sc[j].event == DRISK_EVENT_ARRIVED_AT_FACILITY)
                    break;
                if (sc[j].event == DRISK_EVENT_DEPARTED_FACILITY &&
                    strcmp(sc[j].location, s->location) == 0) {
                    double h = (double)(sc[j].ts - s->ts) / 3600.0;
                    if (dis) {
                        st->dwell_dis_h += h;
                        st->n_dwell_dis++;
                    } else {
                        st->dwell_norm_h += h;
                        st->n_dwell_norm++;
                    }
                    break;
                }
            }
        }
        /* A failed attempt is retried (or held) on a later day. */
        if (s->event == DRISK_EVENT_DELIVERY_ATTEMPTED &&
            s->reason == DRISK_REASON_RECIPIENT_UNAVAILABLE) {
            st->attempts++;
            if (i + 1 < n && sc[i + 1].event != DRISK_EVENT_RETURN_TO_SENDER &&
                day_of(sc[i + 1].ts) <= day_of(s->ts))
                st->attempts_bad_retry++;
        }
        if (s->event == DRISK_EVENT_AVAILABLE_FOR_PICKUP) {
            st->afp++;
            if (i + 1 < n && sc[i + 1].event != DRISK_EVENT_DELIVERED &&
                sc[i + 1].event != DRISK_EVENT_RETURN_TO_SENDER)
                st->afp_bad++;
        }
    }
    if (hubs_seen >= 3)
        st->three_hubs++;
    if (strcmp(sh->origin, sh->destination) == 0) {
        st->local++;
        if (hubs_seen > 1)
            st->local_bad++;
    }
    if (pickup)
        st->picked_up_c[c]++;

    /* Outcome against the timeline. */
    int64_t last_ts = n ? sc[n - 1].ts : sh->created_at;
    switch (sh->outcome) {
    case DRISK_OUTCOME_DELIVERED:
        if (n_delivered != 1 || delivered_ts != sh->delivered_at ||
            sh->delivered_at < sh->created_at || n_rts || n_lost)
            ok = 0;
        st->delivered++;
        st->delivered_c[c]++;
        st->on_time += sh->delivered_at <= sh->promised_at;
        break;
    case DRISK_OUTCOME_LOST:
        st->lost++;
        st->lost_c[c]++;
        if (n_delivered || n_rts || sh->delivered_at != DRISK_TS_NONE)
            st->lost_bad++;
        if (n_lost)
            st->lost_with_scan++;
        else if (last_ts + 30 * DAY <= st->now)
            st->lost_silent++;
        else
            st->lost_bad++;
        break;
    case DRISK_OUTCOME_RETURNED:
        st->returned++;
        if (n_rts != 1 || n_delivered || n_lost || sh->delivered_at != DRISK_TS_NONE)
            st->returned_bad++;
        break;
    default:
        st->in_flight++;
        if (n_delivered || n_rts || n_lost || sh->delivered_at != DRISK_TS_NONE ||
            last_ts + 30 * DAY <= st->now)
            ok = 0;
        break;
    }
    if (sh->outcome != DRISK_OUTCOME_DELIVERED && sh->delivered_at != DRISK_TS_NONE)
        ok = 0;
    if (!ok)
        st->inconsistent++;

    int labeled = sh->outcome != DRISK_OUTCOME_NONE;
    int on_time = sh->outcome == DRISK_OUTCOME_DELIVERED && sh->delivered_at <= sh->promised_at;
    if (labeled) {
        st->labeled_c[c]++;
        st->on_time_c[c] += on_time;
        if (is_peak(sh->created_at)) {
            st->labeled_peak++;
            st->on_time_peak += on_time;
        } else {
            st->labeled_off++;
            st->on_time_off += on_time;
        }
        if (touched_disruption) {
            st->labeled_dis++;
            st->late_dis += !on_time;
        } else {
            st->labeled_undis++;
            st->late_undis += !on_time;
        }
    }

    /* The promise: 20:00 UTC on a business day, at least one business day out. */
    if (sh->promised_at % DAY != 20 * 3600 || !drisk_is_business_day(sh->promised_at) ||
        sh->promised_at < drisk_add_business_days(sh->created_at, 1) + 20 * 3600 ||
        sh->promised_at > drisk_add_business_days(sh->created_at, 8) + 20 * 3600)
        st->bad_promise++;

    if (sh->created_at > st->now - 12 * 3600) {
        st->recent++;
        st->recent_in_flight += sh->outcome == DRISK_OUTCOME_NONE;
    }

    /* Volume by weekday and season. */
    int wd = drisk_weekday(sh->created_at);
    st->orders_by_weekday[wd]++;
    int y, mo, d;
    drisk_civil_from_days(day_of(sh->created_at), &y, &mo, &d);
    if (is_peak(sh->created_at))
        st->orders_peak++;
    if (mo == 10)
        st->orders_oct++;
    return 0;
}

static int bits(unsigned v)
{
    int n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

static double pct(int64_t a, int64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

/* ---------------------------------------------------------------- the tests */

static void test_options(const char *dir)
{
    struct drisk_sim_options o;
    struct drisk_sim_summary s;
    struct drisk_error err;
    char path[1024];
    drisk_sim_options_default(&o);
    CHECK(o.shipments == 10000 && o.seed == 1 && o.days == 365 && o.export_dir == NULL);
    CHECK(o.start == drisk_days_from_civil(2025, 1, 1) * DAY);
    o.shipments = 0;
    CHECK(drisk_sim_run(NULL, &o, &s, &err) == DRISK_EINVAL && strstr(err.msg, "shipments"));
    o.shipments = 10;
    o.days = 0;
    CHECK(drisk_sim_run(NULL, &o, &s, &err) == DRISK_EINVAL && strstr(err.msg, "days"));
    o.days = 10;
    snprintf(path, sizeof path, "%s/no/such/dir", dir);
    o.export_dir = path;
    CHECK(drisk_sim_run(NULL, &o, &s, &err) == DRISK_EIO && strstr(err.msg, "no/such"));
    /* Tiny histories work too; a shipment lasts at least a day, so with one day of orders
     * most are still in flight. */
    o.export_dir = NULL;
    o.shipments = 1;
    o.days = 1;
    CHECK(drisk_sim_run(NULL, &o, &s, &err) == DRISK_OK && s.shipments == 1 && s.in_flight == 1);
}

static int same_disruptions(const struct drisk_sim_disruption *a,
                            const struct drisk_sim_disruption *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].location, b[i].location) != 0 || a[i].storm != b[i].storm ||
            a[i].start != b[i].start || a[i].end != b[i].end || a[i].delay_h != b[i].delay_h)
            return 0;
    return 1;
}

static void test_determinism(const char *dir, const struct drisk_sim_options *base)
{
    struct drisk_sim_options o = *base;
    struct drisk_sim_summary s1, s2, s3;
    struct drisk_error err;
    char a[1024], b[1024], c[1024], fa[1100], fb[1100], fc[1100];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    o.export_dir = a;
    CHECK(drisk_sim_run(NULL, &o, &s1, &err) == DRISK_OK);
    o.export_dir = b;
    CHECK(drisk_sim_run(NULL, &o, &s2, &err) == DRISK_OK);
    o.export_dir = c;
    o.seed = base->seed + 1;
    CHECK(drisk_sim_run(NULL, &o, &s3, &err) == DRISK_OK);
    CHECK(s1.shipments == base->shipments && s1.scans == s2.scans && s1.on_time == s2.on_time);
    snprintf(fa, sizeof fa, "%s/shipments.csv", a);
    snprintf(fb, sizeof fb, "%s/shipments.csv", b);
    snprintf(fc, sizeof fc, "%s/shipments.csv", c);
    CHECK_MSG(same_file(fa, fb), "same seed, different shipments.csv");
    CHECK_MSG(!same_file(fa, fc), "different seeds, same shipments.csv");
    snprintf(fa, sizeof fa, "%s/scans.csv", a);
    snprintf(fb, sizeof fb, "%s/scans.csv", b);
    snprintf(fc, sizeof fc, "%s/scans.csv", c);
    CHECK_MSG(same_file(fa, fb), "same seed, different scans.csv");
    CHECK_MSG(!same_file(fa, fc), "different seeds, same scans.csv");

    /* The export: one line per shipment and scan, shipments in creation order. */
    size_t len;
    snprintf(fa, sizeof fa, "%s/shipments.csv", a);
    char *text = read_file(fa, &len);
    CHECK(text != NULL);
    int64_t lines = 0, out_of_order = 0;
    char prev[32] = "";
    for (char *line = text ? strchr(text, '\n') : NULL; line && line[1];
         line = strchr(line + 1, '\n')) {
        const char *f = line + 1;
        for (int k = 0; k < 9 && f; k++) {
            f = strchr(f, ',');
            if (f)
                f++;
        }
        lines++;
        if (f) {
            if (strncmp(f, prev, 20) < 0)
                out_of_order++;
            memcpy(prev, f, 20);
            prev[20] = '\0';
        }
    }
    CHECK_MSG(lines == s1.shipments, "%lld lines in shipments.csv", (long long)lines);
    CHECK(out_of_order == 0);
    free(text);

    /* A golden summary: catches a history that silently depends on the compiler (two
     * random draws in one argument list are evaluated in an unspecified order) or on
     * the platform. Update it, with docs/SIMULATOR.md's rates, when the model changes. */
    struct drisk_sim_options g = *base;
    struct drisk_sim_summary gs;
    g.shipments = 2000;
    g.export_dir = NULL;
    CHECK(drisk_sim_run(NULL, &g, &gs, &err) == DRISK_OK);
    CHECK_MSG(gs.shipments == 2000 && gs.scans == 19980 && gs.delivered == 1942 &&
                  gs.on_time == 1778 && gs.lost == 10 && gs.returned == 29 && gs.in_flight == 19,
              "golden summary changed: %lld scans, %lld delivered, %lld on time, %lld lost, "
              "%lld returned, %lld in flight", (long long)gs.scans, (long long)gs.delivered,
              (long long)gs.on_time, (long long)gs.lost, (long long)gs.returned,
              (long long)gs.in_flight);

    /* Disruptions depend on the seed only and are the same every time. */
    size_t n1 = 0, n2 = 0, n3 = 0;
    struct drisk_sim_disruption d1[400], d2[400];
    CHECK(drisk_sim_disruptions(base, d1, 400, &n1, &err) == DRISK_OK);
    CHECK(drisk_sim_disruptions(base, d2, 400, &n2, &err) == DRISK_OK);
    CHECK(n1 > 20 && n1 <= 400 && n1 == n2 && same_disruptions(d1, d2, n1));
    o = *base;
    o.seed = base->seed + 1;
    CHECK(drisk_sim_disruptions(&o, d2, 400, &n3, &err) == DRISK_OK);
    CHECK(n3 != n1 || !same_disruptions(d1, d2, n1));
}

static void fill_disruptions(struct stats *st, const struct drisk_sim_options *o)
{
    struct drisk_error err;
    size_t n = 0;
    int storms = 0, backlogs = 0;
    CHECK(drisk_sim_disruptions(o, NULL, 0, &n, &err) == DRISK_OK && n > 0);
    struct drisk_sim_disruption *ev = calloc(n ? n : 1, sizeof *ev);
    CHECK(ev != NULL);
    if (!ev)
        return;
    CHECK(drisk_sim_disruptions(o, ev, n, &n, &err) == DRISK_OK);
    for (size_t i = 0; i < n; i++) {
        int64_t prev_start = i ? ev[i - 1].start : INT64_MIN;
        CHECK(ev[i].start >= prev_start && ev[i].end > ev[i].start && ev[i].delay_h > 0);
        storms += ev[i].storm;
        backlogs += !ev[i].storm;
        for (int64_t t = ev[i].start; t < ev[i].end; t += DAY) {
            int64_t d = day_of(t) - st->tab_day0;
            if (d < 0 || d >= st->tab_days)
                continue;
            for (int key = 0; key < MAX_FAC; key++) {
                int hit;
                if (ev[i].storm) {
                    int r = atoi(ev[i].location + 1);
                    hit = key / 8 == r;
                } else {
                    hit = key == fac_key(ev[i].location);
                }
                uint8_t *cell = &st->disrupted[(size_t)key * (size_t)st->tab_days + (size_t)d];
                if (hit && *cell < (ev[i].storm ? 2 : 1))
                    *cell = ev[i].storm ? 2 : 1;
            }
        }
    }
    CHECK_MSG(storms >= 10 && backlogs >= 10, "%d storms, %d backlogs", storms, backlogs);
    free(ev);
}

static void test_history(const char *dir, const struct drisk_sim_options *o)
{
    struct drisk_store *store = NULL;
    struct drisk_sim_summary sum, again;
    struct drisk_error err;
    char path[1024];
    int64_t n_sh = 0, n_sc = 0, n_sh2 = 0, n_sc2 = 0;
    struct stats *st = calloc(1, sizeof *st);
    CHECK(st != NULL);
    if (!st)
        return;
    store_target(dir, "sim.db", path, sizeof path);
    CHECK(drisk_store_open(path, &store, &err) == DRISK_OK);
    if (!store) {
        free(st);
        return;
    }
    CHECK(drisk_sim_run(store, o, &sum, &err) == DRISK_OK);
    CHECK(drisk_store_count(store, &n_sh, &n_sc, &err) == DRISK_OK);
    CHECK_MSG(n_sh == sum.shipments && n_sc == sum.scans && n_sh == o->shipments,
              "store %lld/%lld, summary %lld/%lld", (long long)n_sh, (long long)n_sc,
              (long long)sum.shipments, (long long)sum.scans);
    /* Running it again adds nothing. */
    CHECK(drisk_sim_run(store, o, &again, &err) == DRISK_OK);
    CHECK(drisk_store_count(store, &n_sh2, &n_sc2, &err) == DRISK_OK);
    CHECK(n_sh2 == n_sh && n_sc2 == n_sc);

    st->start = o->start;
    st->now = o->start + (int64_t)o->days * DAY;
    st->tab_day0 = day_of(o->start) - 7;
    st->tab_days = o->days + 7 + 150;
    st->disrupted = calloc((size_t)MAX_FAC * (size_t)st->tab_days, 1);
    CHECK(st->disrupted != NULL);
    if (!st->disrupted)
        goto out;
    fill_disruptions(st, o);
    CHECK(drisk_store_iterate(store, NULL, visit, st, &err) == DRISK_OK);
    for (int64_t d = day_of(o->start); d < day_of(st->now); d++) {
        int y, m, dd;
        drisk_civil_from_days(d, &y, &m, &dd);
        if (!is_holiday(d * DAY))
            st->days_by_weekday[drisk_weekday(d * DAY)]++;
        st->days_peak += is_peak(d * DAY);
        st->days_oct += m == 10;
    }

    /* The read-back agrees with the summary. */
    CHECK(st->shipments == sum.shipments && st->scans == sum.scans);
    CHECK(st->delivered == sum.delivered && st->on_time == sum.on_time &&
          st->lost == sum.lost && st->returned == sum.returned &&
          st->in_flight == sum.in_flight);
    CHECK(st->bad_carrier == 0 && st->merchant_other == 0);

    /* Consistency of labels and timelines. */
    CHECK_MSG(st->inconsistent == 0, "%lld inconsistent shipments", (long long)st->inconsistent);
    CHECK(st->lost_bad == 0 && st->returned_bad == 0);
    CHECK_MSG(st->recent > 0 && st->recent_in_flight == st->recent,
              "%lld of %lld shipments created in the last 12 h in flight",
              (long long)st->recent_in_flight, (long long)st->recent);
    CHECK(st->in_flight > 0 && st->in_flight < st->shipments / 50);

    /* Rates (docs/SIMULATOR.md). */
    int64_t labeled = st->delivered + st->lost + st->returned;
    double on_time = pct(st->on_time, labeled), loss = pct(st->lost, labeled);
    CHECK_MSG(on_time >= 85 && on_time <= 92, "on-time %.2f%%", on_time);
    CHECK_MSG(loss >= 0.3 && loss <= 1.5, "loss %.2f%%", loss);
    double ot[N_CARRIERS], lr[N_CARRIERS];
    for (int c = 0; c < N_CARRIERS; c++) {
        ot[c] = pct(st->on_time_c[c], st->labeled_c[c]);
        lr[c] = pct(st->lost_c[c], st->labeled_c[c]);
        CHECK_MSG(st->shipments_c[c] > st->shipments / 10, "%s: %lld shipments",
                  carrier_names[c], (long long)st->shipments_c[c]);
    }
    CHECK_MSG(ot[AP] >= 92 && ot[FX] >= 87 && ot[FX] <= 94 && ot[UP] >= 84 && ot[UP] <= 91 &&
              ot[CH] >= 75 && ot[CH] <= 84,
              "on-time apex %.1f fleetex %.1f unipost %.1f cityhop %.1f", ot[AP], ot[FX],
              ot[UP], ot[CH]);
    CHECK_MSG(ot[AP] - ot[CH] >= 10, "apex %.1f vs cityhop %.1f", ot[AP], ot[CH]);
    CHECK_MSG(lr[AP] < 0.5 && lr[CH] > 0.8 && lr[CH] > 3 * lr[AP],
              "loss apex %.2f%% cityhop %.2f%%", lr[AP], lr[CH]);
    double spp = (double)st->scans / (double)st->shipments;
    CHECK_MSG(spp >= 9 && spp <= 11, "%.2f scans per shipment", spp);

    /* Carriers differ in scan completeness. */
    double pu_ap = pct(st->picked_up_c[AP], st->shipments_c[AP]);
    double pu_ch = pct(st->picked_up_c[CH], st->shipments_c[CH]);
    double spp_ap = (double)st->scans_c[AP] / (double)st->shipments_c[AP];
    double spp_ch = (double)st->scans_c[CH] / (double)st->shipments_c[CH];
    CHECK_MSG(pu_ap > 93 && pu_ch < 80, "pickup scans: apex %.1f%%, cityhop %.1f%%", pu_ap, pu_ch);
    CHECK_MSG(spp_ap > spp_ch + 0.5, "scans per shipment: apex %.2f, cityhop %.2f", spp_ap,
              spp_ch);

    /* Calendar: no deliveries on Sundays and holidays, Saturday only for carriers that
     * deliver then; pickups on business days; economy never departs on a Sunday. */
    CHECK(st->bad_delivery_day == 0);
    CHECK(st->sat_delivery_c[AP] > 0 && st->sat_delivery_c[UP] > 0);
    CHECK(st->sat_delivery_c[FX] == 0 && st->sat_delivery_c[CH] == 0);
    CHECK(st->bad_pickup_day == 0);
    CHECK(st->economy_sunday == 0);
    CHECK_MSG(st->bad_promise == 0, "%lld bad promises", (long long)st->bad_promise);

    /* Weekly and seasonal volume; peak congestion. */
    double weekday = 0, weekend = 0;
    for (int d = 0; d < 5; d++)
        weekday += (double)st->orders_by_weekday[d] / (double)st->days_by_weekday[d] / 5;
    for (int d = 5; d < 7; d++)
        weekend += (double)st->orders_by_weekday[d] / (double)st->days_by_weekday[d] / 2;
    CHECK_MSG(weekend < 0.6 * weekday, "orders/day weekend %.1f weekday %.1f", weekend, weekday);
    double per_day_peak = (double)st->orders_peak / (double)st->days_peak;
    double per_day_oct = (double)st->orders_oct / (double)st->days_oct;
    CHECK_MSG(per_day_peak > 1.4 * per_day_oct, "orders/day peak %.1f October %.1f",
              per_day_peak, per_day_oct);
    double ot_peak = pct(st->on_time_peak, st->labeled_peak);
    double ot_off = pct(st->on_time_off, st->labeled_off);
    CHECK_MSG(ot_peak < ot_off - 5, "on-time peak %.1f%% off-peak %.1f%%", ot_peak, ot_off);

    /* Disruptions slow every parcel passing through, sometimes with an exception scan;
     * weather delays happen only in storms. */
    double dwell_dis = st->n_dwell_dis ? st->dwell_dis_h / (double)st->n_dwell_dis : 0;
    double dwell_norm = st->n_dwell_norm ? st->dwell_norm_h / (double)st->n_dwell_norm : 0;
    CHECK_MSG(st->n_dwell_dis > 500 && dwell_dis > dwell_norm + 8,
              "dwell in disruptions %.1f h (%lld), otherwise %.1f h", dwell_dis,
              (long long)st->n_dwell_dis, dwell_norm);
    CHECK_MSG(st->exc_in_dis > st->n_dwell_dis / 10 && st->exc_in_dis < st->n_dwell_dis,
              "%lld exception scans for %lld disrupted stays", (long long)st->exc_in_dis,
              (long long)st->n_dwell_dis);
    CHECK(st->weather > 0 && st->weather_outside_storm == 0);
    double late_dis = pct(st->late_dis, st->labeled_dis);
    double late_undis = pct(st->late_undis, st->labeled_undis);
    CHECK_MSG(late_dis > late_undis + 10, "late through disruptions %.1f%%, otherwise %.1f%%",
              late_dis, late_undis);

    /* Exceptions, attempts, returns, losses. */
    static const int reasons[] = { DRISK_REASON_WEATHER_DELAY, DRISK_REASON_DELAYED,
                                   DRISK_REASON_MISSORTED, DRISK_REASON_HELD,
                                   DRISK_REASON_DAMAGED, DRISK_REASON_ADDRESS_ISSUE,
                                   DRISK_REASON_RECIPIENT_UNAVAILABLE, DRISK_REASON_REFUSED };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        CHECK_MSG(st->reasons[reasons[i]] > 0, "no %s", drisk_reason_name(reasons[i]));
    CHECK(st->attempts > 100 && st->attempts_bad_retry == 0);
    CHECK(st->afp > 10 && st->afp_bad == 0);
    CHECK(st->returned > 0);
    CHECK_MSG(st->lost_with_scan > 0 && st->lost_silent > 0, "lost: %lld declared, %lld silent",
              (long long)st->lost_with_scan, (long long)st->lost_silent);
    CHECK(st->lost_scan_soon == 0);

    /* The network: facility codes, multi-hop routes, local parcels through one hub,
     * delivery from a station of the destination region. */
    CHECK(st->bad_location == 0);
    CHECK(st->three_hubs > st->shipments / 5);
    CHECK(st->in_transit > st->shipments / 4);
    CHECK(st->local > 0 && st->local_bad == 0);
    CHECK(st->delivered_elsewhere == 0);

    /* Merchants: tracking numbers and orders, origins, parcel weights. */
    CHECK(st->bad_id == 0 && st->bad_order == 0);
    for (int m = 0; m < 4; m++)
        CHECK(st->weight_n[m] > 0 && bits((unsigned)st->origins_mask[m]) <= 2);
    CHECK(st->origins_mask[0] != st->origins_mask[1]);
    if (st->weight_n[1] && st->weight_n[3])
        CHECK(st->weight_sum[3] / (double)st->weight_n[3] >
              3 * st->weight_sum[1] / (double)st->weight_n[1]);

    fprintf(stderr,
            "sim: %lld shipments, %.2f scans each; on-time %.1f%% (apex %.1f, fleetex %.1f, "
            "unipost %.1f, cityhop %.1f; peak %.1f, off-peak %.1f), loss %.2f%%, "
            "dwell %.1f h / %.1f h in disruptions\n",
            (long long)st->shipments, spp, on_time, ot[AP], ot[FX], ot[UP], ot[CH], ot_peak,
            ot_off, loss, dwell_norm, dwell_dis);
out:
    free(st->disrupted);
    free(st);
    drisk_store_free(store);
}

/* ---------------------------------------------------------------- scenarios */

#define N_CODES 100000 /* five-digit postal codes */

/* FNV-1a of the base scenario's export for 3,000 shipments, seed 11, 60 days from
 * 2025-01-01, as written before scenarios existed. */
#define BASE_SHIPMENTS_FNV 0x858908fd5755747eULL
#define BASE_SCANS_FNV 0x8450998d57abe564ULL
#define MAX_LOC_ID 4096
#define FC_MAX_PLACES 256

/* What the scenario tests read back from a history, shipment by shipment. */
struct scen {
    int64_t now, drift_at;
    int64_t shipments, scans, inconsistent, labeled, late, lost;
    char carriers[4][DRISK_NAME_MAX], services[4][DRISK_NAME_MAX];
    int n_carriers, n_services; /* 5: more than 4 */
    int64_t bad_dest_code, bad_orig_code;
    uint8_t *dest_seen, *orig_seen, *loc_seen; /* [N_CODES], [N_CODES], [MAX_LOC_ID] */
    /* late and labeled by destination code and by prefix (many-places) */
    int32_t *code_n, *code_late;
    int32_t prefix_n[1000], prefix_late[1000];
    /* few-carriers: dense indexes of origins and destinations, and per half (even and odd
     * shipments in visit order) the late rate of origins, destinations and lanes and the
     * share of lane parcels that stayed over 20 h at their first hub */
    int16_t *orig_idx, *dest_idx;
    int n_orig_idx, n_dest_idx;
    int32_t o_n[2][FC_MAX_PLACES], o_late[2][FC_MAX_PLACES];
    int32_t d_n[2][FC_MAX_PLACES], d_late[2][FC_MAX_PLACES];
    int32_t *lane_n, *lane_late, *lane_dn, *lane_long; /* [2][FC_MAX_PLACES^2] */
    int32_t o_dn[2][FC_MAX_PLACES], o_long[2][FC_MAX_PLACES];
    int64_t half_n[2], half_late[2];
    /* drift: through R05-HUB (a recorded scan there) or not, created after the change;
     * and everything created well before it */
    int64_t via_after_n, via_after_late, other_after_n, other_after_late;
    int64_t before_delivered, before_on_time, before_lost, before_returned;
    /* scans by base-layout facility (fac_key), and at a carrier's upload times */
    int64_t fac_scans[MAX_FAC];
    int64_t fac_scans_c[N_CARRIERS], at_slot_c[N_CARRIERS], same_batch_c[N_CARRIERS];
};

static void scen_free(struct scen *sc)
{
    if (!sc)
        return;
    free(sc->dest_seen);
    free(sc->orig_seen);
    free(sc->loc_seen);
    free(sc->code_n);
    free(sc->code_late);
    free(sc->orig_idx);
    free(sc->dest_idx);
    free(sc->lane_n);
    free(sc->lane_late);
    free(sc->lane_dn);
    free(sc->lane_long);
    free(sc);
}

static struct scen *scen_new(const struct drisk_sim_options *o)
{
    size_t lanes = 2 * FC_MAX_PLACES * FC_MAX_PLACES;
    struct scen *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->now = o->start + (int64_t)o->days * DAY;
    sc->drift_at = drisk_sim_drift_at(o);
    sc->dest_seen = calloc(N_CODES, 1);
    sc->orig_seen = calloc(N_CODES, 1);
    sc->loc_seen = calloc(MAX_LOC_ID, 1);
    sc->code_n = calloc(N_CODES, sizeof *sc->code_n);
    sc->code_late = calloc(N_CODES, sizeof *sc->code_late);
    sc->orig_idx = malloc(N_CODES * sizeof *sc->orig_idx);
    sc->dest_idx = malloc(N_CODES * sizeof *sc->dest_idx);
    sc->lane_n = calloc(lanes, sizeof *sc->lane_n);
    sc->lane_late = calloc(lanes, sizeof *sc->lane_late);
    sc->lane_dn = calloc(lanes, sizeof *sc->lane_dn);
    sc->lane_long = calloc(lanes, sizeof *sc->lane_long);
    if (!sc->dest_seen || !sc->orig_seen || !sc->loc_seen || !sc->code_n || !sc->code_late ||
        !sc->orig_idx || !sc->dest_idx || !sc->lane_n || !sc->lane_late || !sc->lane_dn ||
        !sc->lane_long) {
        scen_free(sc);
        return NULL;
    }
    memset(sc->orig_idx, 0xff, N_CODES * sizeof *sc->orig_idx);
    memset(sc->dest_idx, 0xff, N_CODES * sizeof *sc->dest_idx);
    return sc;
}

/* A five-digit postal code as a number; -1 for anything else. */
static int postal_code(const char *s)
{
    int v = 0;
    for (int i = 0; i < 5; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return s[5] == '\0' ? v : -1;
}

static int add_name(char (*names)[DRISK_NAME_MAX], int *n, const char *name)
{
    for (int i = 0; i < *n && i < 4; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    if (*n < 4)
        snprintf(names[*n], DRISK_NAME_MAX, "%s", name);
    return (*n)++;
}

static int dense_index(int16_t *idx, int *n, int code)
{
    if (idx[code] < 0 && *n < FC_MAX_PLACES)
        idx[code] = (int16_t)(*n)++;
    return idx[code];
}

/* Facility scans of batching carriers (sparse-scans) are not sent as they happen. */
static int batched_event(int ev)
{
    return ev == DRISK_EVENT_PICKED_UP || ev == DRISK_EVENT_ARRIVED_AT_FACILITY ||
           ev == DRISK_EVENT_DEPARTED_FACILITY || ev == DRISK_EVENT_IN_TRANSIT ||
           ev == DRISK_EVENT_OUT_FOR_DELIVERY || ev == DRISK_EVENT_EXCEPTION;
}

static int scen_visit(const struct drisk_shipment *sh, const struct drisk_scan *s, size_t n,
                      void *ctx, struct drisk_error *err)
{
    struct scen *sc = ctx;
    int half = (int)(sc->shipments & 1);
    int ok = 1, n_delivered = 0, via_r05 = 0;
    int64_t delivered_ts = DRISK_TS_NONE, first_hub_dwell = -1;
    const char *first_hub = NULL;
    (void)err;
    sc->shipments++;
    sc->scans += (int64_t)n;
    add_name(sc->carriers, &sc->n_carriers, sh->carrier);
    add_name(sc->services, &sc->n_services, sh->service);
    int ci = carrier_index(sh->carrier);

    /* The labels and timelines hold in every scenario. */
    if (n == 0 || s[0].event != DRISK_EVENT_LABEL_CREATED || s[0].ts != sh->created_at ||
        sh->promised_at <= sh->created_at)
        ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].ts < sh->created_at || s[i].ts > sc->now || (i > 0 && s[i].ts <= s[i - 1].ts) ||
            (i > 0 && is_terminal(s[i - 1].event)))
            ok = 0;
        if (s[i].event == DRISK_EVENT_DELIVERED) {
            n_delivered++;
            delivered_ts = s[i].ts;
        }
        if ((s[i].event == DRISK_EVENT_ARRIVED_AT_FACILITY ||
             s[i].event == DRISK_EVENT_DEPARTED_FACILITY)) {
            if (s[i].location_id > 0 && s[i].location_id < MAX_LOC_ID)
                sc->loc_seen[s[i].location_id] = 1;
            int key = fac_key(s[i].location);
            if (key >= 0)
                sc->fac_scans[key]++;
            via_r05 |= strcmp(s[i].location, "R05-HUB") == 0;
            if (s[i].event == DRISK_EVENT_ARRIVED_AT_FACILITY && !first_hub &&
                strstr(s[i].location, "-HUB")) {
                first_hub = s[i].location;
                for (size_t j = i + 1; j < n && first_hub_dwell < 0; j++)
                    if (s[j].event == DRISK_EVENT_DEPARTED_FACILITY &&
                        strcmp(s[j].location, first_hub) == 0)
                        first_hub_dwell = s[j].ts - s[i].ts;
            }
        }
        /* At upload times (sparse-scans): unipost's every 6 h from 05:00 UTC, the other
         * carriers' at 22:00 UTC (cityhop's; for apex and fleetex a control). */
        if (ci >= 0 && batched_event(s[i].event)) {
            int64_t at = ci == UP ? (s[i].ts - 5 * 3600) % (6 * 3600)
                                  : (s[i].ts - 22 * 3600) % DAY;
            sc->fac_scans_c[ci]++;
            sc->at_slot_c[ci] += at < 64;
            if (i > 0 && batched_event(s[i - 1].event) && s[i].ts - s[i - 1].ts < 64)
                sc->same_batch_c[ci]++;
        }
    }
    if ((sh->outcome == DRISK_OUTCOME_DELIVERED) !=
            (n_delivered == 1 && delivered_ts == sh->delivered_at) ||
        (sh->outcome != DRISK_OUTCOME_DELIVERED && n_delivered))
        ok = 0;
    if (!ok)
        sc->inconsistent++;

    int labeled = sh->outcome != DRISK_OUTCOME_NONE;
    int late = labeled && !(sh->outcome == DRISK_OUTCOME_DELIVERED &&
                            sh->delivered_at <= sh->promised_at);
    sc->labeled += labeled;
    sc->late += late;
    sc->lost += sh->outcome == DRISK_OUTCOME_LOST;

    /* Places: postal codes and their late rates. */
    int dc = postal_code(sh->destination), oc = postal_code(sh->origin);
    if (dc < 0) {
        sc->bad_dest_code++;
    } else {
        sc->dest_seen[dc] = 1;
        if (labeled) {
            sc->code_n[dc]++;
            sc->code_late[dc] += late;
            sc->prefix_n[dc / 100]++;
            sc->prefix_late[dc / 100] += late;
        }
    }
    if (oc < 0)
        sc->bad_orig_code++;
    else
        sc->orig_seen[oc] = 1;
    if (dc >= 0 && oc >= 0 && labeled) {
        int oi = dense_index(sc->orig_idx, &sc->n_orig_idx, oc);
        int di = dense_index(sc->dest_idx, &sc->n_dest_idx, dc);
        if (oi >= 0 && di >= 0) {
            size_t lane = ((size_t)half * FC_MAX_PLACES + (size_t)oi) * FC_MAX_PLACES + (size_t)di;
            sc->o_n[half][oi]++;
            sc->o_late[half][oi] += late;
            sc->d_n[half][di]++;
            sc->d_late[half][di] += late;
            sc->lane_n[lane]++;
            sc->lane_late[lane] += late;
            sc->half_n[half]++;
            sc->half_late[half] += late;
            if (first_hub_dwell >= 0) {
                int long_stay = first_hub_dwell > 20 * 3600;
                sc->lane_dn[lane]++;
                sc->lane_long[lane] += long_stay;
                sc->o_dn[half][oi]++;
                sc->o_long[half][oi] += long_stay;
            }
        }
    }

    /* drift */
    if (labeled && sh->created_at >= sc->drift_at) {
        if (via_r05) {
            sc->via_after_n++;
            sc->via_after_late += late;
        } else {
            sc->other_after_n++;
            sc->other_after_late += late;
        }
    }
    if (sh->created_at < sc->drift_at - 14 * DAY) {
        sc->before_delivered += sh->outcome == DRISK_OUTCOME_DELIVERED;
        sc->before_on_time += sh->outcome == DRISK_OUTCOME_DELIVERED && !late;
        sc->before_lost += sh->outcome == DRISK_OUTCOME_LOST;
        sc->before_returned += sh->outcome == DRISK_OUTCOME_RETURNED;
    }
    return 0;
}

/* Simulates o into a fresh store under dir and reads it back; NULL on failure. */
static struct scen *scen_run(const char *dir, const char *name, const struct drisk_sim_options *o,
                             struct drisk_sim_summary *sum)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    char path[1024];
    struct scen *sc = scen_new(o);
    CHECK(sc != NULL);
    if (!sc)
        return NULL;
    char file[128];
    snprintf(file, sizeof file, "scenario-%s.db", name);
    store_target(dir, file, path, sizeof path);
    CHECK(drisk_store_open(path, &store, &err) == DRISK_OK);
    if (!store) {
        scen_free(sc);
        return NULL;
    }
    int ok = drisk_sim_run(store, o, sum, &err) == DRISK_OK &&
             drisk_store_iterate(store, NULL, scen_visit, sc, &err) == DRISK_OK;
    CHECK_MSG(ok, "%s: %s", name, err.msg);
    drisk_store_free(store);
    remove(path);
    if (!ok) {
        scen_free(sc);
        return NULL;
    }
    /* Every scenario: consistent, learnable labels; a small loss rate. */
    double late = pct(sc->late, sc->labeled), lost = pct(sc->lost, sc->labeled);
    CHECK_MSG(sc->shipments == o->shipments && sc->scans == sum->scans, "%s: read back %lld/%lld",
              name, (long long)sc->shipments, (long long)sc->scans);
    CHECK_MSG(sc->inconsistent == 0, "%s: %lld inconsistent shipments", name,
              (long long)sc->inconsistent);
    CHECK_MSG(late >= 8 && late <= 25 && lost > 0.1 && lost < 2, "%s: late %.1f%%, lost %.2f%%",
              name, late, lost);
    fprintf(stderr, "sim %s: %lld shipments, %.2f scans each, late %.1f%%, lost %.2f%%\n", name,
            (long long)sc->shipments, (double)sc->scans / (double)sc->shipments, late, lost);
    return sc;
}

static int count_seen(const uint8_t *seen, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += seen[i] != 0;
    return k;
}

/* Over-dispersion of late rates: sum over groups with at least min_n outcomes of
 * (late - n p)^2 / (n p (1 - p)), p the rate of the group's parent, per group. About 1
 * when groups share their parent's rate; well above when they have their own. */
struct dispersion {
    double chi;
    int groups;
};

static void disperse(struct dispersion *d, int64_t n, int64_t late, double parent_rate,
                     int64_t min_n)
{
    if (n < min_n || parent_rate <= 0 || parent_rate >= 1)
        return;
    double e = (double)n * parent_rate;
    d->chi += ((double)late - e) * ((double)late - e) / (e * (1 - parent_rate));
    d->groups++;
}

static double dispersion_ratio(const struct dispersion *d)
{
    return d->groups ? d->chi / d->groups : 0;
}

/* Pearson correlation of x and y (n pairs). */
static double correlation(const double *x, const double *y, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        mx += x[i] / n;
        my += y[i] / n;
    }
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}

static void test_scenario_names(void)
{
    struct drisk_sim_options o;
    struct drisk_sim_summary s;
    struct drisk_error err;
    static const char *const names[] = { "base", "many-places", "few-carriers", "drift",
                                         "sparse-scans" };
    for (int i = 0; i < 5; i++) {
        CHECK(drisk_sim_scenario_name(i) && strcmp(drisk_sim_scenario_name(i), names[i]) == 0);
        CHECK(drisk_sim_scenario_find(names[i]) == i);
    }
    CHECK(drisk_sim_scenario_name(5) == NULL && drisk_sim_scenario_name(-1) == NULL);
    CHECK(drisk_sim_scenario_find(NULL) == 0 && drisk_sim_scenario_find("Base") < 0);
    drisk_sim_options_default(&o);
    CHECK(o.scenario && strcmp(o.scenario, "base") == 0);
    o.shipments = 10;
    o.scenario = "many_places";
    CHECK_MSG(drisk_sim_run(NULL, &o, &s, &err) == DRISK_EINVAL &&
                  strstr(err.msg, "many_places") && strstr(err.msg, "many-places") &&
                  strstr(err.msg, "sparse-scans"),
              "%s", err.msg);
    size_t n;
    CHECK(drisk_sim_disruptions(&o, NULL, 0, &n, &err) == DRISK_EINVAL);
    /* The drift moment: day floor(0.85 * days) after start. */
    o.start = drisk_days_from_civil(2024, 1, 1) * DAY;
    o.days = 730;
    CHECK(drisk_sim_drift_at(&o) == drisk_days_from_civil(2025, 9, 12) * DAY);
    o.days = 365;
    o.start = drisk_days_from_civil(2025, 1, 1) * DAY;
    CHECK(drisk_sim_drift_at(&o) == (drisk_days_from_civil(2025, 1, 1) + 310) * DAY);
}

/* 64-bit FNV-1a of a file's bytes (0 if it cannot be read). */
static uint64_t file_hash(const char *path)
{
    size_t len;
    char *text = read_file(path, &len);
    uint64_t h = 0xcbf29ce484222325ULL;
    if (!text)
        return 0;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * 0x100000001b3ULL;
    free(text);
    return h;
}

/* Same seed and scenario: the same bytes; another seed: other bytes. The base scenario's
 * export is pinned by hash: the default world must never change (published results and
 * the other tests depend on it). */
static void test_scenario_determinism(const char *dir)
{
    struct drisk_sim_options o;
    struct drisk_sim_summary s;
    struct drisk_error err;
    char a[1024], fa[1100], fb[1100];
    drisk_sim_options_default(&o);
    o.shipments = 3000;
    o.seed = 11;
    o.days = 60;
    uint64_t base_hash[2] = { 0, 0 };
    for (int i = 0; drisk_sim_scenario_name(i); i++) {
        uint64_t h[3][2];
        for (int run = 0; run < 3; run++) {
            snprintf(a, sizeof a, "%s/det-%s-%d", dir, drisk_sim_scenario_name(i), run);
            o.scenario = run == 1 && i == 0 ? NULL : drisk_sim_scenario_name(i);
            o.seed = run == 2 ? 12 : 11;
            o.export_dir = a;
            CHECK(drisk_sim_run(NULL, &o, &s, &err) == DRISK_OK);
            snprintf(fa, sizeof fa, "%s/shipments.csv", a);
            snprintf(fb, sizeof fb, "%s/scans.csv", a);
            h[run][0] = file_hash(fa);
            h[run][1] = file_hash(fb);
        }
        CHECK_MSG(h[0][0] && h[0][0] == h[1][0] && h[0][1] == h[1][1],
                  "%s: same seed, other bytes", drisk_sim_scenario_name(i));
        CHECK_MSG(h[0][0] != h[2][0] && h[0][1] != h[2][1], "%s: other seed, same bytes",
                  drisk_sim_scenario_name(i));
        if (i == 0) {
            base_hash[0] = h[0][0];
            base_hash[1] = h[0][1];
        } else {
            CHECK_MSG(h[0][0] != base_hash[0] && h[0][1] != base_hash[1],
                      "%s: the base history", drisk_sim_scenario_name(i));
        }
    }
    CHECK_MSG(base_hash[0] == BASE_SHIPMENTS_FNV && base_hash[1] == BASE_SCANS_FNV,
              "the base scenario's history changed: shipments.csv %016llx, scans.csv %016llx",
              (unsigned long long)base_hash[0], (unsigned long long)base_hash[1]);
}

/* many-places: thousands of five-digit destinations under 3-digit prefixes, hundreds of
 * facilities, and late rates that differ by prefix and, within a prefix, by code. */
static void test_many_places(const char *dir)
{
    struct drisk_sim_options o;
    struct drisk_sim_summary sum;
    drisk_sim_options_default(&o);
    o.shipments = 30000;
    o.seed = 7;
    o.scenario = "many-places";
    struct scen *sc = scen_run(dir, o.scenario, &o, &sum);
    if (!sc)
        return;
    int dests = count_seen(sc->dest_seen, N_CODES), facs = count_seen(sc->loc_seen, MAX_LOC_ID);
    int prefixes = 0, rare = 0, top = 0;
    for (int p = 0; p < 1000; p++)
        prefixes += sc->prefix_n[p] > 0;
    for (int c = 0; c < N_CODES; c++) {
        rare += sc->code_n[c] > 0 && sc->code_n[c] <= 3;
        if (sc->code_n[c] > top)
            top = sc->code_n[c];
    }
    CHECK_MSG(sc->bad_dest_code == 0 && sc->bad_orig_code == 0, "%lld / %lld non-postal places",
              (long long)sc->bad_dest_code, (long long)sc->bad_orig_code);
    CHECK_MSG(dests >= 2000 && prefixes >= 100 && prefixes <= 300 && facs >= 300,
              "%d destinations, %d prefixes, %d facilities", dests, prefixes, facs);
    /* Long-tailed popularity: many rare codes, and a head far above the average. */
    CHECK_MSG(rare > dests / 4 && top > 20 * (int)(sc->labeled / dests), "%d rare codes, top %d",
              rare, top);
    /* Prefixes differ beyond chance, and codes within their prefix too. */
    struct dispersion by_prefix = { 0, 0 }, by_code = { 0, 0 };
    double overall = (double)sc->late / (double)sc->labeled;
    for (int p = 0; p < 1000; p++)
        disperse(&by_prefix, sc->prefix_n[p], sc->prefix_late[p], overall, 50);
    for (int c = 0; c < N_CODES; c++) {
        int p = c / 100;
        double rate = sc->prefix_n[p] ? (double)sc->prefix_late[p] / sc->prefix_n[p] : 0;
        disperse(&by_code, sc->code_n[c], sc->code_late[c], rate, 20);
    }
    CHECK_MSG(dispersion_ratio(&by_prefix) > 2.0 && by_prefix.groups > 100,
              "prefix late rates: dispersion %.2f over %d prefixes", dispersion_ratio(&by_prefix),
              by_prefix.groups);
    CHECK_MSG(dispersion_ratio(&by_code) > 1.25 && by_code.groups > 100,
              "code late rates within prefixes: dispersion %.2f over %d codes",
              dispersion_ratio(&by_code), by_code.groups);
    fprintf(stderr, "sim many-places: %d destinations (%d rare), %d prefixes, %d facilities; "
            "late-rate dispersion %.2f by prefix, %.2f by code within prefix\n", dests, rare,
            prefixes, facs, dispersion_ratio(&by_prefix), dispersion_ratio(&by_code));
    scen_free(sc);
}

/* few-carriers: one carrier and service, ~140 origins and ~210 destinations, and lanes
 * with their own behaviour: which lanes' parcels wait at their first hub, and which are
 * late, is a property of the origin-destination pair beyond its origin and destination
 * (split-half correlation of lane residuals). */
static void test_few_carriers(const char *dir)
{
    struct drisk_sim_options o;
    struct drisk_sim_summary sum;
    drisk_sim_options_default(&o);
    o.shipments = 20000;
    o.seed = 7;
    o.scenario = "few-carriers";
    struct scen *sc = scen_run(dir, o.scenario, &o, &sum);
    if (!sc)
        return;
    int origins = count_seen(sc->orig_seen, N_CODES), dests = count_seen(sc->dest_seen, N_CODES);
    CHECK_MSG(sc->n_carriers <= 2 && sc->n_services <= 2, "%d carriers, %d services",
              sc->n_carriers, sc->n_services);
    CHECK_MSG(origins >= 100 && origins <= FC_MAX_PLACES && dests >= 150 &&
                  dests <= FC_MAX_PLACES && sc->bad_dest_code == 0 && sc->bad_orig_code == 0,
              "%d origins, %d destinations", origins, dests);
    static double x[FC_MAX_PLACES * FC_MAX_PLACES], y[FC_MAX_PLACES * FC_MAX_PLACES];
    static double lx[FC_MAX_PLACES * FC_MAX_PLACES], ly[FC_MAX_PLACES * FC_MAX_PLACES];
    int n_dwell = 0, n_late = 0;
    for (int oi = 0; oi < sc->n_orig_idx; oi++) {
        for (int di = 0; di < sc->n_dest_idx; di++) {
            size_t l0 = (size_t)oi * FC_MAX_PLACES + (size_t)di;
            size_t l1 = (size_t)FC_MAX_PLACES * FC_MAX_PLACES + l0;
            if (sc->lane_dn[l0] >= 10 && sc->lane_dn[l1] >= 10) {
                x[n_dwell] = (double)sc->lane_long[l0] / sc->lane_dn[l0] -
                             (double)sc->o_long[0][oi] / sc->o_dn[0][oi];
                y[n_dwell++] = (double)sc->lane_long[l1] / sc->lane_dn[l1] -
                               (double)sc->o_long[1][oi] / sc->o_dn[1][oi];
            }
            if (sc->lane_n[l0] >= 10 && sc->lane_n[l1] >= 10) {
                double r[2];
                for (int h = 0; h < 2; h++) {
                    size_t l = h ? l1 : l0;
                    r[h] = (double)sc->lane_late[l] / sc->lane_n[l] -
                           (double)sc->o_late[h][oi] / sc->o_n[h][oi] -
                           (double)sc->d_late[h][di] / sc->d_n[h][di] +
                           (double)sc->half_late[h] / (double)sc->half_n[h];
                }
                lx[n_late] = r[0];
                ly[n_late++] = r[1];
            }
        }
    }
    double c_dwell = correlation(x, y, n_dwell), c_late = correlation(lx, ly, n_late);
    CHECK_MSG(n_dwell >= 50 && c_dwell > 0.6,
              "first-hub waits by lane beyond the origin: r = %.2f over %d lanes", c_dwell,
              n_dwell);
    CHECK_MSG(n_late >= 50 && c_late > 0.35,
              "late rates by lane beyond origin + destination: r = %.2f over %d lanes", c_late,
              n_late);
    fprintf(stderr, "sim few-carriers: %d carrier(s), %d origins, %d destinations; lane "
            "split-half r = %.2f (first-hub waits, %d lanes), %.2f (late, %d lanes)\n",
            sc->n_carriers, origins, dests, c_dwell, n_dwell, c_late, n_late);
    scen_free(sc);
}

/* drift and sparse-scans against the base history of the same options: drift is the
 * base world until its hub degrades, then that hub's traffic is much later; sparse-scans
 * is the base world with far fewer scans, fewer at some facilities than at others, and
 * two carriers' facility scans at their upload times. */
static void test_drift_and_sparse(const char *dir)
{
    struct drisk_sim_options o;
    struct drisk_sim_summary s_base, s_drift, s_sparse;
    drisk_sim_options_default(&o);
    o.shipments = 20000;
    o.seed = 7;
    o.start = drisk_days_from_civil(2025, 3, 1) * DAY;
    o.days = 200;
    o.scenario = "base";
    struct scen *base = scen_run(dir, "base", &o, &s_base);
    o.scenario = "drift";
    struct scen *drift = scen_run(dir, "drift", &o, &s_drift);
    o.scenario = "sparse-scans";
    struct scen *sparse = scen_run(dir, "sparse-scans", &o, &s_sparse);
    if (!base || !drift || !sparse)
        goto out;

    /* drift */
    double via_base = pct(base->via_after_late, base->via_after_n);
    double via_drift = pct(drift->via_after_late, drift->via_after_n);
    double other_base = pct(base->other_after_late, base->other_after_n);
    double other_drift = pct(drift->other_after_late, drift->other_after_n);
    CHECK(drift->n_carriers == 4 && drift->bad_dest_code == drift->shipments); /* regions */
    CHECK_MSG(drift->before_delivered == base->before_delivered &&
                  drift->before_on_time == base->before_on_time &&
                  drift->before_lost == base->before_lost &&
                  drift->before_returned == base->before_returned,
              "drift differs from base before the change");
    CHECK_MSG(drift->via_after_n > 500 && via_drift > via_base + 15 &&
                  other_drift < other_base + 3,
              "after the change: through R05-HUB %.1f%% late (base %.1f%%, %lld), elsewhere "
              "%.1f%% (base %.1f%%)", via_drift, via_base, (long long)drift->via_after_n,
              other_drift, other_base);
    fprintf(stderr, "sim drift: after the change, through R05-HUB %.1f%% late (base %.1f%%), "
            "elsewhere %.1f%% (base %.1f%%)\n", via_drift, via_base, other_drift, other_base);

    /* sparse-scans: the same parcels, the same outcomes */
    CHECK_MSG(s_sparse.delivered == s_base.delivered && s_sparse.on_time == s_base.on_time &&
                  s_sparse.returned == s_base.returned,
              "sparse-scans outcomes differ from base");
    double spp_base = (double)base->scans / (double)base->shipments;
    double spp_sparse = (double)sparse->scans / (double)sparse->shipments;
    CHECK_MSG(spp_sparse < 0.7 * spp_base, "scans per shipment: sparse %.2f, base %.2f",
              spp_sparse, spp_base);
    /* Some facilities lose far more scans than others. */
    double lo = 1e9, hi = 0;
    for (int k = 0; k < MAX_FAC; k++) {
        if (base->fac_scans[k] < 300)
            continue;
        double kept = (double)sparse->fac_scans[k] / (double)base->fac_scans[k];
        lo = kept < lo ? kept : lo;
        hi = kept > hi ? kept : hi;
    }
    CHECK_MSG(hi > 0 && lo < 0.6 * hi, "facility scans kept: %.2f to %.2f", lo, hi);
    /* Batches: unipost and cityhop facility scans at upload times, several per upload;
     * apex sends as it scans. */
    double slot_up = pct(sparse->at_slot_c[UP], sparse->fac_scans_c[UP]);
    double slot_ch = pct(sparse->at_slot_c[CH], sparse->fac_scans_c[CH]);
    double slot_ap = pct(sparse->at_slot_c[AP], sparse->fac_scans_c[AP]);
    double slot_up_base = pct(base->at_slot_c[UP], base->fac_scans_c[UP]);
    CHECK_MSG(slot_up > 60 && slot_ch > 60 && slot_ap < 5 && slot_up_base < 5,
              "scans at upload times: unipost %.1f%% (base %.1f%%), cityhop %.1f%%, apex %.1f%%",
              slot_up, slot_up_base, slot_ch, slot_ap);
    CHECK_MSG(sparse->same_batch_c[CH] > sparse->fac_scans_c[CH] / 10 &&
                  sparse->same_batch_c[UP] > sparse->fac_scans_c[UP] / 20,
              "scans uploaded with the one before: cityhop %lld, unipost %lld",
              (long long)sparse->same_batch_c[CH], (long long)sparse->same_batch_c[UP]);
    fprintf(stderr, "sim sparse-scans: %.2f scans per shipment (base %.2f); facilities keep "
            "%.2f-%.2f of their base scans; at upload times: unipost %.1f%%, cityhop %.1f%%\n",
            spp_sparse, spp_base, lo, hi, slot_up, slot_ch);
out:
    scen_free(base);
    scen_free(drift);
    scen_free(sparse);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_sim SCRATCH_DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    mkdir(dir, 0777);

    struct drisk_sim_options o;
    drisk_sim_options_default(&o);
    o.shipments = N_SHIPMENTS;
    o.seed = 7;

    test_options(dir);
    test_determinism(dir, &o);
    test_history(dir, &o);
    test_scenario_names();
    test_scenario_determinism(dir);
    test_many_places(dir);
    test_few_carriers(dir);
    test_drift_and_sparse(dir);
    CHECK_DONE();
}
