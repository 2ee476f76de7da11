/* Tests of the shipment simulator (data/sim.c) against the properties docs/SIMULATOR.md
 * promises: determinism, label consistency, the calendar rules, the network, carriers
 * and merchants, disruptions, and the documented rates. A history of 30,000 shipments is
 * simulated into a store in the scratch directory argv[1] and read back shipment by
 * shipment; the CSV export is checked for determinism byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/sim.h"
#include "data/store.h"
#include "engine/timeutil.h"
#include "engine/vocab.h"
#include "check.h"

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
    snprintf(path, sizeof path, "%s/sim.db", dir);
    remove(path);
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
    CHECK_DONE();
}
