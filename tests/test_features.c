/* engine/features, engine/network and training/snapshot: the schema (hash, text round
 * trip), network windows, the outcome histories of places, and the leakage test: a
 * history whose every scan and outcome after T0 is changed yields bit-identical features
 * for every snapshot up to T0 (every feature, the outcome histories included), with a
 * control that shows the comparison catches features built from later outcomes.
 * argv[1]: a scratch directory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/import.h"
#include "data/replay.h"
#include "data/sim.h"
#include "data/store.h"
#include "engine/features.h"
#include "engine/network.h"
#include "engine/risk.h"
#include "base/timeutil.h"
#include "engine/vocab.h"
#include "tests/check.h"
#include "tests/store_target.h"
#include "training/snapshot.h"

static const char *dir;

static void path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static void test_schema(void)
{
    struct drisk_schema_builder *b = drisk_schema_builder_create();
    struct drisk_shipment sh;
    memset(&sh, 0, sizeof sh);
    const char *carriers[] = { "apex", "apex", "apex", "rare,one;%" , "fleetex", "fleetex" };
    for (int i = 0; i < 6; i++) {
        snprintf(sh.carrier, sizeof sh.carrier, "%s", carriers[i]);
        snprintf(sh.service, sizeof sh.service, "ground");
        snprintf(sh.origin, sizeof sh.origin, "R01");
        snprintf(sh.destination, sizeof sh.destination, "R0%d", 1 + i % 3);
        drisk_schema_builder_add(b, &sh);
    }
    struct drisk_feature_schema s1, s2, s3;
    drisk_schema_builder_finish(b, 2, &s1);
    drisk_schema_builder_finish(b, 1, &s3);
    drisk_schema_builder_free(b);
    CHECK(s1.carriers.n == 2 && strcmp(s1.carriers.name[0], "apex") == 0);
    CHECK(s3.carriers.n == 3);
    CHECK(strcmp(s1.hash, s3.hash) != 0 && s1.n_features + 1 == s3.n_features);
    char text[8192], name[DRISK_FEATURE_NAME_MAX];
    struct drisk_error err;
    CHECK(drisk_feature_schema_write(&s3, text, sizeof text) > 0);
    CHECK(drisk_feature_schema_read(text, &s2, &err) == DRISK_OK);
    CHECK(strcmp(s2.hash, s3.hash) == 0 && s2.n_features == s3.n_features);
    CHECK(strcmp(s2.carriers.name[2], "rare,one;%") == 0);
    CHECK(drisk_feature_schema_read("drisk-features v99;carriers=;services=;regions=", &s2, &err) ==
          DRISK_ESCHEMA);
    CHECK(drisk_feature_schema_read("drisk-features v4;carriers=a%G1;services=", &s2, &err) ==
          DRISK_EINVAL);
    CHECK(drisk_feature_schema_read("drisk-features v3;carriers=;services=", &s2, &err) ==
          DRISK_ESCHEMA); /* before the promise in units of the typical transit */
    CHECK(drisk_feature_schema_read("drisk-features v2;carriers=;services=", &s2, &err) ==
          DRISK_ESCHEMA); /* before the recent outcome memories and absolute dwells */
    CHECK(drisk_feature_schema_read("drisk-features v1;carriers=;services=;regions=", &s2, &err) ==
          DRISK_ESCHEMA); /* the schema with 48 regions: models built for it are retrained */
    /* names are unique and the first ones are as documented */
    drisk_feature_name(&s1, 0, name);
    CHECK(strcmp(name, "promised_business_days") == 0);
    int dup = 0;
    for (size_t i = 0; i < s1.n_features; i++) {
        char a[DRISK_FEATURE_NAME_MAX], c[DRISK_FEATURE_NAME_MAX];
        drisk_feature_name(&s1, i, a);
        for (size_t j = i + 1; j < s1.n_features; j++) {
            drisk_feature_name(&s1, j, c);
            dup += strcmp(a, c) == 0;
        }
    }
    CHECK(dup == 0);
}

/* Outcome histories per category: no cap (100,000 destinations each keep their own),
 * fallback to the parent for the unseen, decay, facilities from the scans up to the
 * outcome only. */
static void test_categories(void)
{
    struct drisk_network *net = drisk_network_create();
    struct drisk_network_view v;
    struct drisk_shipment sh;
    memset(&sh, 0, sizeof sh);
    snprintf(sh.carrier, sizeof sh.carrier, "apex");
    snprintf(sh.service, sizeof sh.service, "ground");
    snprintf(sh.merchant, sizeof sh.merchant, "m1");
    snprintf(sh.origin, sizeof sh.origin, "O1");
    int64_t t0 = 1700000000;
    sh.promised_at = t0;
    /* 100,000 destinations 10000..109999; those ending in 7 are always late, the others
     * never; postal area 941 (94100..94199) is always late */
    for (int i = 0; i < 100000; i++) {
        int d = 10000 + i;
        snprintf(sh.destination, sizeof sh.destination, "%d", d);
        int late = d % 10 == 7 || d / 100 == 941;
        CHECK(drisk_network_on_outcome(net, &sh, NULL, 0, late, t0 + i) == DRISK_OK);
    }
    int64_t now = t0 + 100000;
    snprintf(sh.destination, sizeof sh.destination, "%d", 55557);
    drisk_network_view(net, &sh, 0, 0, now, &v);
    double late7 = v.cat[DRISK_CAT_DESTINATION].late_rate;
    snprintf(sh.destination, sizeof sh.destination, "%d", 55558);
    drisk_network_view(net, &sh, 0, 0, now, &v);
    double late8 = v.cat[DRISK_CAT_DESTINATION].late_rate;
    /* one outcome each, against a prior of 10: distinct, and both pulled to the area's */
    CHECK_MSG(late7 > late8 + 0.05, "%g vs %g", late7, late8);
    CHECK(!(v.unseen & (1u << DRISK_CAT_DESTINATION)) && !(v.unseen & (1u << DRISK_CAT_LANE)));
    CHECK(fabs(v.cat[DRISK_CAT_DESTINATION].n - 1) < 0.01);
    /* an unseen code in the late postal area falls back to the area (941..), an unseen
     * code elsewhere to its own area, and an unseen lane to its destination */
    snprintf(sh.destination, sizeof sh.destination, "941ZZ");
    drisk_network_view(net, &sh, 0, 0, now, &v);
    CHECK(v.unseen & (1u << DRISK_CAT_DESTINATION));
    CHECK(!(v.unseen & (1u << DRISK_CAT_DEST_PREFIX)));
    CHECK_MSG(v.cat[DRISK_CAT_DESTINATION].late_rate > 0.9, "%g",
              v.cat[DRISK_CAT_DESTINATION].late_rate);
    CHECK(v.cat[DRISK_CAT_LANE].late_rate == v.cat[DRISK_CAT_DESTINATION].late_rate);
    snprintf(sh.origin, sizeof sh.origin, "O2");
    snprintf(sh.destination, sizeof sh.destination, "55557");
    drisk_network_view(net, &sh, 0, 0, now, &v);
    CHECK((v.unseen & (1u << DRISK_CAT_LANE)) && (v.unseen & (1u << DRISK_CAT_ORIGIN)));
    CHECK(v.cat[DRISK_CAT_LANE].late_rate == v.cat[DRISK_CAT_DESTINATION].late_rate);
    /* short codes (regions, states) have no postal area: the overall figures */
    snprintf(sh.destination, sizeof sh.destination, "SP");
    drisk_network_view(net, &sh, 0, 0, now, &v);
    CHECK(v.unseen & (1u << DRISK_CAT_DEST_PREFIX));
    CHECK(fabs(v.cat[DRISK_CAT_DEST_PREFIX].late_rate - (0.1 + 0.1 * 100000 / 10.0) /
                                                      (1 + 100000 / 10.0)) < 0.01);
    /* counts halve every half-life */
    snprintf(sh.destination, sizeof sh.destination, "%d", 55557);
    drisk_network_view(net, &sh, 0, 0, now + (int64_t)(DRISK_CATEGORY_HALF_LIFE_D * 86400), &v);
    CHECK(fabs(v.cat[DRISK_CAT_DESTINATION].n - 0.5) < 0.01);
    /* facilities: those scanned up to the outcome, current and previous read apart */
    struct drisk_scan_event sc[3] = { { now + 10, 3, DRISK_EVENT_ARRIVED_AT_FACILITY, 0 },
                                      { now + 20, 4, DRISK_EVENT_ARRIVED_AT_FACILITY, 0 },
                                      { now + 999, 5, DRISK_EVENT_ARRIVED_AT_FACILITY, 0 } };
    for (int i = 0; i < 20; i++)
        CHECK(drisk_network_on_outcome(net, &sh, sc, 3, 1, now + 100) == DRISK_OK);
    drisk_network_view(net, &sh, 4, 3, now + 100, &v);
    CHECK(v.cat[DRISK_CAT_FACILITY].late_rate > 0.6 && v.cat[DRISK_CAT_PREV_FACILITY].late_rate > 0.6);
    CHECK(!(v.unseen & (1u << DRISK_CAT_FACILITY)));
    drisk_network_view(net, &sh, 5, 0, now + 100, &v);
    CHECK(v.unseen & (1u << DRISK_CAT_FACILITY)); /* scanned after the outcome was known */
    CHECK(v.unseen & (1u << DRISK_CAT_PREV_FACILITY));
    /* deliveries give the mean delay against the promise */
    sh.promised_at = now;
    sh.delivered_at = now + 3 * 86400;
    for (int i = 0; i < 50; i++)
        CHECK(drisk_network_on_delivered(net, &sh, NULL, 0) == DRISK_OK);
    drisk_network_view(net, &sh, 0, 0, now + 3 * 86400, &v);
    CHECK_MSG(v.cat[DRISK_CAT_DESTINATION].delay_d > 2.0, "%g", v.cat[DRISK_CAT_DESTINATION].delay_d);
    drisk_network_free(net);

    /* parcels in flight: 100 picked up for lane L1 -> D9, none delivered: the lane's open
     * share is near 1 (the prior of 10 pulls toward the overall, also all open); 80
     * delivered: near 0.2; another lane is untouched (its parent's); a label alone, or a
     * delivery scan first, is not a pickup */
    net = drisk_network_create();
    snprintf(sh.origin, sizeof sh.origin, "L1");
    snprintf(sh.destination, sizeof sh.destination, "D9");
    struct drisk_scan_event fl[100][2];
    for (int i = 0; i < 100; i++) {
        fl[i][0] = (struct drisk_scan_event){ now + i, 0, DRISK_EVENT_LABEL_CREATED, 0 };
        fl[i][1] = (struct drisk_scan_event){ now + 3600 + i, 0, DRISK_EVENT_PICKED_UP, 0 };
        CHECK(drisk_network_on_scan(net, &sh, NULL, &fl[i][0]) == DRISK_OK);
        CHECK(drisk_network_on_scan(net, &sh, &fl[i][0], &fl[i][1]) == DRISK_OK);
    }
    drisk_network_view(net, &sh, 0, 0, now + 2 * 86400, &v);
    CHECK_MSG(v.cat[DRISK_CAT_LANE].open_share > 0.99 && v.overall_open_share > 0.94, "%g %g",
              v.cat[DRISK_CAT_LANE].open_share, v.overall_open_share);
    sh.promised_at = now + 5 * 86400;
    sh.delivered_at = now + 2 * 86400;
    for (int i = 0; i < 80; i++)
        CHECK(drisk_network_on_delivered(net, &sh, fl[i], 2) == DRISK_OK);
    drisk_network_view(net, &sh, 0, 0, now + 2 * 86400, &v);
    /* the overall figure is smoothed toward the prior 0.5 with 10 pseudo-counts */
    CHECK_MSG(fabs(v.cat[DRISK_CAT_LANE].open_share - 0.2) < 0.02 &&
              fabs(v.overall_open_share - 25.0 / 110) < 0.01, "%g %g", v.cat[DRISK_CAT_LANE].open_share,
              v.overall_open_share);
    snprintf(sh.origin, sizeof sh.origin, "L2");
    drisk_network_view(net, &sh, 0, 0, now + 2 * 86400, &v);
    CHECK(v.cat[DRISK_CAT_LANE].open_share == v.cat[DRISK_CAT_DESTINATION].open_share);
    struct drisk_scan_event dl = { now + 3 * 86400, 0, DRISK_EVENT_DELIVERED, 0 };
    CHECK(drisk_network_on_scan(net, &sh, &fl[0][0], &dl) == DRISK_OK);
    CHECK(drisk_network_on_scan(net, &sh, NULL, &fl[0][0]) == DRISK_OK);
    drisk_network_view(net, &sh, 0, 0, now + 3 * 86400, &v);
    CHECK_MSG(fabs(v.overall_open_share - 25.0 / 110) < 0.01, "%g", v.overall_open_share);
    drisk_network_free(net);
}

static void test_network(void)
{
    struct drisk_network *net = drisk_network_create();
    struct drisk_shipment sh;
    struct drisk_network_view v;
    memset(&sh, 0, sizeof sh);
    snprintf(sh.carrier, sizeof sh.carrier, "apex");
    int64_t t0 = 1735689600; /* 2025-01-01 */
    /* dwell at facility 5: arrive, depart 4 h later */
    struct drisk_scan_event arr = { t0, 5, DRISK_EVENT_ARRIVED_AT_FACILITY, 0 };
    struct drisk_scan_event dep = { t0 + 4 * 3600, 5, DRISK_EVENT_DEPARTED_FACILITY, 0 };
    struct drisk_scan_event exc = { t0 + 5 * 3600, 5, DRISK_EVENT_EXCEPTION, 1 };
    CHECK(drisk_network_on_scan(net, &sh, NULL, &arr) == DRISK_OK);
    CHECK(drisk_network_on_scan(net, &sh, &arr, &dep) == DRISK_OK);
    CHECK(drisk_network_on_scan(net, &sh, &dep, &exc) == DRISK_OK);
    drisk_network_view(net, &sh, 5, 0, t0 + 6 * 3600, &v);
    CHECK(fabs(v.facility_dwell_h - 4) < 1e-9 && fabs(v.facility_recent_dwell_h - 4) < 1e-9);
    CHECK(v.facility_scans_24h == 3 && fabs(v.facility_exception_rate - 1.0 / 3) < 1e-9);
    /* 24 h later the window is empty, the long-run dwell stays */
    drisk_network_view(net, &sh, 5, 0, t0 + 30 * 3600, &v);
    CHECK(v.facility_scans_24h == 0 && isnan(v.facility_recent_dwell_h) &&
          fabs(v.facility_dwell_h - 4) < 1e-9);
    /* a view for an earlier moment does not see later scans */
    drisk_network_view(net, &sh, 5, 0, t0 - 3600, &v);
    CHECK(v.facility_scans_24h == 0);
    /* late rates: 10 late outcomes pull the carrier rate up, and age out after 28 days */
    drisk_network_view(net, &sh, 0, 0, t0, &v);
    double before = v.carrier_late_rate;
    for (int i = 0; i < 10; i++)
        CHECK(drisk_network_on_outcome(net, &sh, NULL, 0, 1, t0 + i) == DRISK_OK);
    drisk_network_view(net, &sh, 0, 0, t0 + 3600, &v);
    CHECK(v.carrier_late_rate > before + 0.2 && v.lane_late_rate > before);
    drisk_network_view(net, &sh, 0, 0, t0 + 29 * 86400, &v);
    CHECK(fabs(v.carrier_late_rate - before) < 1e-12);
    /* many carriers and lanes (the tables grow while being updated): each keeps its own */
    for (int i = 0; i < 300; i++) {
        snprintf(sh.carrier, sizeof sh.carrier, "c%d", i);
        snprintf(sh.destination, sizeof sh.destination, "R%d", i);
        for (int k = 0; k <= i % 3; k++)
            CHECK(drisk_network_on_outcome(net, &sh, NULL, 0, i % 2, t0 + 40 * 86400) == DRISK_OK);
    }
    double r_late, r_on_time;
    snprintf(sh.carrier, sizeof sh.carrier, "c%d", 299); /* 299: late, 3 outcomes */
    snprintf(sh.destination, sizeof sh.destination, "R%d", 299);
    drisk_network_view(net, &sh, 0, 0, t0 + 40 * 86400, &v);
    r_late = v.lane_late_rate;
    snprintf(sh.carrier, sizeof sh.carrier, "c%d", 298); /* 298: on time, 2 outcomes */
    snprintf(sh.destination, sizeof sh.destination, "R%d", 298);
    drisk_network_view(net, &sh, 0, 0, t0 + 40 * 86400, &v);
    r_on_time = v.lane_late_rate;
    CHECK(r_late > v.overall_late_rate && r_on_time < v.overall_late_rate);
    drisk_network_free(net);
}

/* ---- leakage ---- */

struct snaps {
    size_t n, cap, dim;
    char (*id)[DRISK_ID_MAX];
    int64_t *as_of;
    double *x;
    int64_t cutoff;
    int nonfinite;
    /* the control: features rebuilt from a network that has seen the whole history */
    const struct drisk_network *future;
    const struct drisk_feature_schema *schema;
};

static int collect(const struct drisk_snapshot *s, void *ctx, struct drisk_error *err)
{
    (void)err;
    struct snaps *c = ctx;
    for (size_t k = 0; k < c->dim; k++)
        if (!isfinite(s->x[k]))
            c->nonfinite++;
    if (s->as_of > c->cutoff)
        return 0;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->id = realloc(c->id, c->cap * sizeof *c->id);
        c->as_of = realloc(c->as_of, c->cap * sizeof *c->as_of);
        c->x = realloc(c->x, c->cap * c->dim * sizeof *c->x);
    }
    snprintf(c->id[c->n], DRISK_ID_MAX, "%s", s->sh->shipment_id);
    c->as_of[c->n] = s->as_of;
    if (c->future) /* no scans: only the shipment's categories read the network */
        drisk_features_build(c->schema, c->future, s->sh, NULL, 0, s->as_of,
                             c->x + c->n * c->dim, NULL);
    else
        memcpy(c->x + c->n * c->dim, s->x, c->dim * sizeof *c->x);
    c->n++;
    return 0;
}

static int64_t parse_ts(const char *s)
{
    int64_t v = 0;
    const char *why;
    drisk_ts_parse(s, strlen(s), &v, &why);
    return v;
}

/* Copies the simulator's export, changing everything after t0: scans after t0 dropped and
 * replaced by exceptions at other places, outcomes known only after t0 cleared. */
static void write_altered(const char *src_dir, const char *dst_dir, int64_t t0)
{
    char a[700], b[700], line[4096];
    snprintf(a, sizeof a, "%s/scans.csv", src_dir);
    snprintf(b, sizeof b, "%s/scans.csv", dst_dir);
    FILE *in = fopen(a, "r"), *out = fopen(b, "w");
    int k = 0;
    while (in && out && fgets(line, sizeof line, in)) {
        char copy[4096], *f[8];
        int nf = 0;
        memcpy(copy, line, sizeof copy);
        for (char *p = strtok(copy, ","); p && nf < 8; p = strtok(NULL, ","))
            f[nf++] = p;
        if (k++ == 0 || nf < 4 || parse_ts(f[2]) <= t0) {
            fputs(line, out);
            continue;
        }
        if (k % 3 == 0) {
            char ts[DRISK_TS_BUF];
            fprintf(out, "%s,%s,%s,exception,R0%d-HUB,weather_delay,fake\n", f[0], f[1],
                    drisk_ts_format(parse_ts(f[2]) - 60, ts), k % 9 + 1);
        }
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    snprintf(a, sizeof a, "%s/shipments.csv", src_dir);
    snprintf(b, sizeof b, "%s/shipments.csv", dst_dir);
    in = fopen(a, "r");
    out = fopen(b, "w");
    k = 0;
    while (in && out && fgets(line, sizeof line, in)) {
        /* shipment_id,merchant_id,order_id,carrier,service,origin,destination,weight_kg,
         * declared_value,created_at,promised_at,delivered_at,outcome */
        char copy[4096], *f[13];
        int nf = 0;
        memcpy(copy, line, sizeof copy);
        char *p = copy;
        while (nf < 13) {
            f[nf++] = p;
            char *c = strpbrk(p, ",\n");
            if (!c)
                break;
            int end = *c == '\n';
            *c = '\0';
            p = c + 1;
            if (end)
                break;
        }
        if (k++ == 0 || nf < 13 || !f[11][0] || parse_ts(f[11]) <= t0) {
            if (k == 1 || nf < 13 || f[12][0] == '\0' || strcmp(f[12], "delivered") == 0 ||
                parse_ts(f[10]) + 30 * 86400 <= t0) {
                fputs(line, out);
                continue;
            }
        }
        /* the outcome is not known by t0: in flight */
        fprintf(out, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,,\n", f[0], f[1], f[2], f[3], f[4], f[5],
                f[6], f[7], f[8], f[9], f[10]);
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
}

static void run_snaps(const char *db, const struct drisk_feature_schema *schema, int64_t now,
                      struct snaps *c)
{
    struct drisk_store *st = NULL;
    struct drisk_error err;
    struct drisk_snapshot_options o = { INT64_MIN, INT64_MAX, INT64_MIN, now, 0 };
    c->dim = schema->n_features;
    CHECK(drisk_store_open(db, &st, &err) == DRISK_OK);
    if (st)
        CHECK_MSG(drisk_snapshots_run(st, schema, &o, collect, c, &err) == DRISK_OK, "%s", err.msg);
    drisk_store_free(st);
}

static const struct snaps *sort_snaps;

static int by_id_as_of(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int c = strcmp(sort_snaps->id[a], sort_snaps->id[b]);
    if (c)
        return c;
    return (sort_snaps->as_of[a] > sort_snaps->as_of[b]) - (sort_snaps->as_of[a] < sort_snaps->as_of[b]);
}

/* Snapshots with the same (shipment, as_of): a 24 h tick on a scan's moment must not
 * make a second one. */
static size_t duplicates(const struct snaps *c)
{
    size_t *idx = malloc(c->n * sizeof *idx), dup = 0;
    for (size_t i = 0; i < c->n; i++)
        idx[i] = i;
    sort_snaps = c;
    qsort(idx, c->n, sizeof *idx, by_id_as_of);
    for (size_t i = 1; i < c->n; i++)
        dup += by_id_as_of(&idx[i - 1], &idx[i]) == 0;
    free(idx);
    return dup;
}

static int build_schema(const struct drisk_shipment *sh, const struct drisk_scan *sc, size_t n,
                        void *ctx, struct drisk_error *err)
{
    (void)sc, (void)n, (void)err;
    drisk_schema_builder_add(ctx, sh);
    return 0;
}

static void test_leakage(void)
{
    char db_a[600], db_b[600], ex_a[600], ex_b[600], f1[700], f2[700];
    store_target(dir, "leak_a.db", db_a, sizeof db_a);
    store_target(dir, "leak_b.db", db_b, sizeof db_b);
    path(ex_a, sizeof ex_a, "leak_a");
    path(ex_b, sizeof ex_b, "leak_b");
    mkdir(ex_b, 0755);
    struct drisk_error err;
    struct drisk_store *st = NULL;
    struct drisk_sim_options so;
    struct drisk_sim_summary sum;
    drisk_sim_options_default(&so);
    so.shipments = 3000;
    so.days = 40;
    so.seed = 11;
    so.export_dir = ex_a;
    CHECK(drisk_store_open(db_a, &st, &err) == DRISK_OK);
    CHECK(st && drisk_sim_run(st, &so, &sum, &err) == DRISK_OK);
    struct drisk_schema_builder *b = drisk_schema_builder_create();
    drisk_store_iterate(st, NULL, build_schema, b, &err);
    struct drisk_feature_schema schema;
    drisk_schema_builder_finish(b, 10, &schema);
    drisk_schema_builder_free(b);
    drisk_store_free(st);

    int64_t t0 = so.start + 25 * 86400 + 12 * 3600;
    int64_t now = so.start + so.days * 86400;
    write_altered(ex_a, ex_b, t0);
    snprintf(f1, sizeof f1, "%s/shipments.csv", ex_b);
    snprintf(f2, sizeof f2, "%s/scans.csv", ex_b);
    CHECK(drisk_store_open(db_b, &st, &err) == DRISK_OK);
    struct drisk_import_options io = { f1, f2, NULL, 5, NULL, NULL };
    struct drisk_import_result ir;
    CHECK_MSG(st && drisk_import(st, &io, &ir, &err) == DRISK_OK, "%s", err.msg);
    drisk_store_free(st);

    struct snaps a = { .cutoff = t0 }, c = { .cutoff = t0 };
    run_snaps(db_a, &schema, now, &a);
    run_snaps(db_b, &schema, now, &c);
    CHECK(a.nonfinite == 0 && c.nonfinite == 0);
    CHECK_MSG(a.n > 10000 && a.n == c.n, "%zu vs %zu snapshots up to T0", a.n, c.n);
    size_t differ = 0;
    for (size_t i = 0; i < a.n && i < c.n; i++)
        if (strcmp(a.id[i], c.id[i]) != 0 || a.as_of[i] != c.as_of[i] ||
            memcmp(a.x + i * a.dim, c.x + i * c.dim, a.dim * sizeof(double)) != 0)
            differ++;
    CHECK_MSG(differ == 0, "%zu of %zu snapshots up to T0 differ", differ, a.n);

    /* the check can fail: features after T0 do differ */
    struct snaps a2 = { .cutoff = INT64_MAX }, c2 = { .cutoff = INT64_MAX };
    run_snaps(db_a, &schema, now, &a2);
    run_snaps(db_b, &schema, now, &c2);
    size_t later_differ = a2.n != c2.n;
    for (size_t i = 0; !later_differ && i < a2.n; i++)
        later_differ = memcmp(a2.x + i * a2.dim, c2.x + i * c2.dim, a2.dim * sizeof(double)) != 0;
    CHECK(later_differ);
    CHECK_MSG(duplicates(&a2) == 0, "%zu duplicate snapshots", duplicates(&a2));

    /* the control: the same comparison catches features that read outcomes known after
     * their as_of. Snapshots up to T0 built from a network fed the whole history differ
     * between the two stores, in every family of network columns that reads outcomes:
     * outcome histories, parcels in flight and the promise in units of the transit. */
    struct drisk_network *fa = drisk_network_create(), *fb = drisk_network_create();
    struct drisk_store *sa = NULL, *sb = NULL;
    CHECK(drisk_store_open(db_a, &sa, &err) == DRISK_OK && drisk_network_replay(sa, now, fa, &err) == DRISK_OK);
    CHECK(drisk_store_open(db_b, &sb, &err) == DRISK_OK && drisk_network_replay(sb, now, fb, &err) == DRISK_OK);
    drisk_store_free(sa);
    drisk_store_free(sb);
    struct snaps la = { .cutoff = t0, .future = fa, .schema = &schema },
                 lb = { .cutoff = t0, .future = fb, .schema = &schema };
    run_snaps(db_a, &schema, now, &la);
    run_snaps(db_b, &schema, now, &lb);
    char (*names)[DRISK_FEATURE_NAME_MAX] = calloc(schema.n_features, DRISK_FEATURE_NAME_MAX);
    CHECK(names && drisk_feature_names(&schema, names) == 0);
    /* each family of columns on its own: the long outcome memories, the recent ones, the
     * parcels in flight (by prefix), the promise in units of the typical transit (by
     * suffix) */
    static const char *const family[4] = { "hist_", "recent_", "inflight_", "_vs_transit" };
    size_t leaky[4] = { 0, 0, 0, 0 }, cols[4] = { 0, 0, 0, 0 };
    for (size_t j = 0; names && j < schema.n_features; j++) {
        for (int k = 0; k < 4; k++) {
            size_t nl = strlen(names[j]), fl = strlen(family[k]);
            if (k < 3 ? strncmp(names[j], family[k], fl) != 0
                      : nl < fl || strcmp(names[j] + nl - fl, family[k]) != 0)
                continue;
            cols[k]++;
            for (size_t i = 0; i < la.n && i < lb.n; i++)
                leaky[k] += la.x[i * la.dim + j] != lb.x[i * lb.dim + j];
        }
    }
    CHECK(cols[0] == 3 * DRISK_CAT_COUNT && cols[1] == 2 * DRISK_CAT_COUNT &&
          cols[2] == 4 /* overall, origin, destination, carrier_service */ && cols[3] == 2);
    CHECK_MSG(la.n == a.n && leaky[0] > la.n / 10 && leaky[1] > la.n / 10 && leaky[2] > la.n / 10 &&
              leaky[3] > la.n / 10, "control: %zu, %zu, %zu and %zu leaky values in %zu snapshots",
              leaky[0], leaky[1], leaky[2], leaky[3], la.n);
    free(names);

    /* a checkpoint of the state (engine/network.h): read back, it gives every snapshot
     * the same features, bit for bit, and writes the same bytes; altered, truncated or
     * from another layout, it is refused */
    unsigned char *bytes = NULL, *again = NULL;
    size_t n_bytes = 0, n_again = 0;
    struct drisk_network *back = NULL;
    CHECK(drisk_network_save(fa, &bytes, &n_bytes) == DRISK_OK && n_bytes > 1000);
    CHECK_MSG(drisk_network_load(bytes, n_bytes, &back, &err) == DRISK_OK, "%s", err.msg);
    if (back) {
        struct snaps lc = { .cutoff = t0, .future = back, .schema = &schema };
        run_snaps(db_a, &schema, now, &lc);
        CHECK(lc.n == la.n && lc.n > 0 &&
              memcmp(lc.x, la.x, la.n * la.dim * sizeof(double)) == 0);
        CHECK(drisk_network_save(back, &again, &n_again) == DRISK_OK && n_again == n_bytes &&
              memcmp(again, bytes, n_bytes) == 0);
        free(lc.id), free(lc.as_of), free(lc.x);
        drisk_network_free(back);
        back = NULL;
    }
    if (bytes) {
        bytes[n_bytes / 2] ^= 1;
        CHECK(drisk_network_load(bytes, n_bytes, &back, &err) == DRISK_EINVAL && !back &&
              strstr(err.msg, "checksum"));
        bytes[n_bytes / 2] ^= 1;
        CHECK(drisk_network_load(bytes, n_bytes / 3, &back, &err) == DRISK_EINVAL && !back);
        bytes[9] ^= 1; /* the format version */
        CHECK(drisk_network_load(bytes, n_bytes, &back, &err) == DRISK_EINVAL && !back &&
              strstr(err.msg, "another drisk build"));
        CHECK(drisk_network_load((const unsigned char *)"hello", 5, &back, &err) == DRISK_EINVAL);
    }
    free(bytes);
    free(again);
    drisk_network_free(fa);
    drisk_network_free(fb);
    free(la.id), free(la.as_of), free(la.x), free(lb.id), free(lb.as_of), free(lb.x);
    free(a.id), free(a.as_of), free(a.x), free(c.id), free(c.as_of), free(c.x);
    free(a2.id), free(a2.as_of), free(a2.x), free(c2.id), free(c2.as_of), free(c2.x);
}

/* 1 when two states write the same bytes. */
static int same_state(const struct drisk_network *x, const struct drisk_network *y)
{
    unsigned char *bx = NULL, *by = NULL;
    size_t nx = 0, ny = 0;
    int same = x && y && drisk_network_save(x, &bx, &nx) == DRISK_OK &&
               drisk_network_save(y, &by, &ny) == DRISK_OK && nx == ny &&
               memcmp(bx, by, nx) == 0;
    free(bx);
    free(by);
    return same;
}

/* A start from a checkpoint (data/replay.h) gives the state a replay of the whole history
 * gives, bit for bit: from a checkpoint built from scratch, and from one built from an
 * earlier checkpoint. The control: the same comparison against the whole history one day
 * earlier finds them different. */
static void test_checkpoint_start(void)
{
    char db[600];
    struct drisk_error err = { 0 };
    struct drisk_store *st = NULL;
    store_target(dir, "checkpoint.db", db, sizeof db);
    CHECK(drisk_store_open(db, &st, &err) == DRISK_OK);
    if (!st)
        return;
    struct drisk_sim_options so;
    struct drisk_sim_summary sum;
    drisk_sim_options_default(&so);
    so.shipments = 4000;
    so.days = 150;
    so.start = 1735689600; /* 2025-01-01 */
    CHECK(drisk_sim_run(st, &so, &sum, &err) == DRISK_OK);
    int64_t end = so.start + 150 * 86400L;
    int64_t c1 = end - 60 * 86400L, c2 = end - 20 * 86400L;
    struct drisk_checkpoint_result r1, r2;
    struct drisk_network *whole = drisk_network_create(), *earlier = drisk_network_create(),
                         *started = NULL;
    int64_t used = 0;
    void *none = NULL;
    size_t none_len = 0;
    CHECK(drisk_store_checkpoint_get(st, &used, &none, &none_len, &err) == DRISK_ENOTFOUND &&
          !none);
    CHECK(drisk_network_replay(st, end, whole, &err) == DRISK_OK);
    CHECK(drisk_network_replay(st, end - 86400, earlier, &err) == DRISK_OK);
    /* from a checkpoint built from scratch */
    CHECK(drisk_network_checkpoint(st, c1 + DRISK_CHECKPOINT_GRACE_S, 1, &r1, &err) == DRISK_OK &&
          r1.as_of == c1 && r1.from == DRISK_TS_NONE && r1.bytes > 1000);
    CHECK_MSG(drisk_network_start(st, end, &started, &used, &err) == DRISK_OK && used == c1,
              "%s", err.msg);
    CHECK(same_state(started, whole));
    CHECK(!same_state(started, earlier)); /* the control */
    drisk_network_free(started);
    started = NULL;
    /* from one built from the first */
    CHECK(drisk_network_checkpoint(st, c2 + DRISK_CHECKPOINT_GRACE_S, 0, &r2, &err) == DRISK_OK &&
          r2.as_of == c2 && r2.from == c1);
    CHECK(drisk_network_start(st, end, &started, &used, &err) == DRISK_OK && used == c2);
    CHECK(same_state(started, whole));
    drisk_network_free(started);
    drisk_network_free(whole);
    drisk_network_free(earlier);
    drisk_store_free(st);
}

static int count_at(const struct drisk_snapshot *s, void *ctx, struct drisk_error *err)
{
    (void)err;
    int64_t *c = ctx; /* c[0]: the moment, c[1]: snapshots at it, c[2]: all snapshots */
    c[1] += s->as_of == c[0];
    c[2]++;
    return 0;
}

/* A scan exactly 24 h after creation (Olist's picked_up often is) yields one snapshot at
 * that moment, not a scan snapshot and a 24 h one. */
static void test_tick_on_scan(void)
{
    char db[600];
    store_target(dir, "tick.db", db, sizeof db);
    struct drisk_store *st = NULL;
    struct drisk_error err;
    struct drisk_shipment sh;
    int64_t id, t0 = 1736000000;
    enum drisk_upsert res;
    int ins;
    memset(&sh, 0, sizeof sh);
    snprintf(sh.merchant, sizeof sh.merchant, "m");
    snprintf(sh.shipment_id, sizeof sh.shipment_id, "T1");
    snprintf(sh.carrier, sizeof sh.carrier, "apex");
    snprintf(sh.service, sizeof sh.service, "ground");
    snprintf(sh.origin, sizeof sh.origin, "R01");
    snprintf(sh.destination, sizeof sh.destination, "R02");
    sh.weight_kg = sh.declared_value = NAN;
    sh.created_at = t0;
    sh.promised_at = t0 + 5 * 86400;
    sh.delivered_at = t0 + 3 * 86400;
    sh.outcome = DRISK_OUTCOME_DELIVERED;
    CHECK(drisk_store_open(db, &st, &err) == DRISK_OK);
    if (!st)
        return;
    CHECK(drisk_store_upsert_shipment(st, &sh, &id, &res, &err) == DRISK_OK);
    struct drisk_scan sc = { .ts = t0, .event = DRISK_EVENT_LABEL_CREATED };
    CHECK(drisk_store_insert_scan(st, id, &sc, &ins, &err) == DRISK_OK);
    sc.ts = t0 + 86400;
    sc.event = DRISK_EVENT_PICKED_UP;
    CHECK(drisk_store_insert_scan(st, id, &sc, &ins, &err) == DRISK_OK);
    sc.ts = t0 + 3 * 86400;
    sc.event = DRISK_EVENT_DELIVERED;
    CHECK(drisk_store_insert_scan(st, id, &sc, &ins, &err) == DRISK_OK);
    struct drisk_schema_builder *b = drisk_schema_builder_create();
    drisk_schema_builder_add(b, &sh);
    struct drisk_feature_schema schema;
    drisk_schema_builder_finish(b, 1, &schema);
    drisk_schema_builder_free(b);
    int64_t c[3] = { t0 + 86400, 0, 0 };
    struct drisk_snapshot_options o = { INT64_MIN, INT64_MAX, INT64_MIN, t0 + 10 * 86400, 1 };
    CHECK(drisk_snapshots_run(st, &schema, &o, count_at, c, &err) == DRISK_OK);
    /* moments: label_created (t0), picked_up (t0 + 24 h), t0 + 48 h; delivered ends it */
    CHECK_MSG(c[1] == 1 && c[2] == 3, "%lld at the tick, %lld in all", (long long)c[1],
              (long long)c[2]);
    drisk_store_free(st);
}

/* Every feature belongs to a reason family, so whatever a model learns from it can be
 * said in the server's reasons (a new feature without one would be silent). */
static void test_reason_families(void)
{
    struct drisk_schema_builder *b = drisk_schema_builder_create();
    struct drisk_shipment sh;
    memset(&sh, 0, sizeof sh);
    snprintf(sh.carrier, sizeof sh.carrier, "apex");
    snprintf(sh.service, sizeof sh.service, "ground");
    drisk_schema_builder_add(b, &sh);
    struct drisk_feature_schema s;
    drisk_schema_builder_finish(b, 1, &s);
    drisk_schema_builder_free(b);
    signed char *fam = malloc(s.n_features);
    char (*names)[DRISK_FEATURE_NAME_MAX] = calloc(s.n_features, DRISK_FEATURE_NAME_MAX);
    CHECK(fam && names && drisk_risk_families(&s, fam) == 0 && drisk_feature_names(&s, names) == 0);
    for (size_t i = 0; fam && names && i < s.n_features; i++)
        CHECK_MSG(fam[i] >= 0, "feature %s has no reason family (engine/risk.c)", names[i]);
    free(fam);
    free(names);
}

int main(int argc, char **argv)
{
    dir = argc > 1 ? argv[1] : "/tmp/drisk_test_features";
    mkdir(dir, 0755);
    test_schema();
    test_reason_families();
    test_network();
    test_categories();
    test_tick_on_scan();
    test_leakage();
    test_checkpoint_start();
    CHECK_DONE();
}
