/* data/: the CSV and JSON Lines readers, the store (migrations, upserts, idempotent
 * scans, ordered iteration) and the importer (atomicity, idempotency, updates,
 * --skip-invalid, foreign vocabularies, JSON Lines). argv[1]: a scratch directory.
 * Under tests/pg/with_pg.sh the stores are PostgreSQL databases (tests/store_target.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/csv.h"
#include "data/import.h"
#include "data/jsonl.h"
#include "data/live.h"
#include "data/outbox.h"
#include "data/store.h"
#include "base/sha256.h"
#include "base/timeutil.h"
#include "engine/vocab.h"
#include "tests/check.h"
#include "tests/store_target.h"

static const char *dir;

static char *path(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* ---- CSV ---- */

static int csv_all(const char *text, struct drisk_csv_record *recs, int max, int *errors)
{
    FILE *f = fmemopen((void *)text, strlen(text), "rb");
    struct drisk_csv *csv = drisk_csv_create(f);
    struct drisk_error err;
    int n = 0, r;
    *errors = 0;
    static char store[16][4][64];
    while ((r = drisk_csv_next(csv, &recs[n], &err)) != 0) {
        if (r < 0) {
            (*errors)++;
            continue;
        }
        /* copy fields out: they are borrowed until the next call */
        for (int i = 0; i < recs[n].n_fields && i < 4; i++) {
            snprintf(store[n][i], 64, "%s", recs[n].field[i]);
            recs[n].field[i] = store[n][i];
        }
        if (++n == max)
            break;
    }
    drisk_csv_free(csv);
    fclose(f);
    return n;
}

static void test_csv(void)
{
    struct drisk_csv_record r[16];
    int errors;
    int n = csv_all("a,b,c\n1,2,3\n", r, 16, &errors);
    CHECK(n == 2 && errors == 0);
    CHECK(r[1].n_fields == 3 && strcmp(r[1].field[2], "3") == 0 && r[1].line == 2);

    /* BOM and CRLF */
    n = csv_all("\xEF\xBB\xBFid,name\r\nx,y\r\n", r, 16, &errors);
    CHECK(n == 2 && errors == 0);
    CHECK(strcmp(r[0].field[0], "id") == 0 && strcmp(r[1].field[1], "y") == 0);
    CHECK(r[1].len[1] == 1);

    /* quotes, doubled quotes, commas and an embedded CRLF newline inside quotes */
    n = csv_all("a,b\n\"x, \"\"y\"\"\",\"line1\r\nline2\"\nlast,\"\"\n", r, 16, &errors);
    CHECK(n == 3 && errors == 0);
    CHECK(strcmp(r[1].field[0], "x, \"y\"") == 0);
    CHECK(strcmp(r[1].field[1], "line1\r\nline2") == 0);
    CHECK(r[2].line == 4); /* the embedded newline counted */
    CHECK(strcmp(r[2].field[1], "") == 0 && r[2].n_fields == 2);

    /* short rows, empty fields, blank lines, no final newline */
    n = csv_all("a,b,c\n\n1\n,,\n4,5,6", r, 16, &errors);
    CHECK(n == 4 && errors == 0);
    CHECK(r[1].n_fields == 1 && r[1].line == 3);
    CHECK(r[2].n_fields == 3 && r[2].len[0] == 0);
    CHECK(r[3].n_fields == 3 && strcmp(r[3].field[2], "6") == 0 && r[3].line == 5);

    /* a lone "" is a row with one empty field, not a blank line */
    n = csv_all("a\n\"\"\nb\n", r, 16, &errors);
    CHECK(n == 3 && errors == 0 && r[1].n_fields == 1 && r[1].len[0] == 0);

    /* errors: unterminated quote; junk after a closing quote (reader recovers) */
    n = csv_all("a\n\"open\n", r, 16, &errors);
    CHECK(n == 1 && errors == 1);
    n = csv_all("a,b\n\"x\"y,2\n3,4\n", r, 16, &errors);
    CHECK(n == 2 && errors == 1 && strcmp(r[1].field[0], "3") == 0);

    /* the record buffer grows from 4 KiB: a 600 KiB record is read whole, one over the
     * 1 MiB limit is refused and the reader goes on with the next line */
    size_t big = (size_t)DRISK_CSV_MAX_RECORD + 100, mid = 600 * 1024;
    char *text = malloc(2 * big + 64);
    if (text) {
        size_t k = 0;
        k += (size_t)sprintf(text + k, "a,b\n");
        memset(text + k, 'x', mid), k += mid;
        k += (size_t)sprintf(text + k, ",1\n");
        memset(text + k, 'y', big), k += big;
        k += (size_t)sprintf(text + k, ",2\nlast,3\n");
        text[k] = '\0';
        FILE *f = fmemopen(text, k, "rb");
        struct drisk_csv *csv = drisk_csv_create(f);
        struct drisk_csv_record rec;
        struct drisk_error err;
        int got[4] = { 0, 0, 0, 0 }, i = 0, rc;
        size_t len_mid = 0;
        while (csv && i < 4 && (rc = drisk_csv_next(csv, &rec, &err)) != 0) {
            got[i++] = rc;
            if (i == 2 && rc == 1)
                len_mid = rec.len[0];
            if (rc < 0)
                CHECK(strstr(err.msg, "record longer than") != NULL);
        }
        CHECK_MSG(i == 4 && got[0] == 1 && got[1] == 1 && len_mid == mid && got[2] == -1 &&
                  got[3] == 1, "%d: %d %d %d %d, %zu", i, got[0], got[1], got[2], got[3], len_mid);
        drisk_csv_free(csv);
        fclose(f);
        free(text);
    }
}

/* ---- JSON Lines ---- */

/* The line and scratch buffers grow from 4 KiB: a 600 KiB line parses whole, one over
 * the 1 MiB limit is refused, and reading goes on with the next line. */
static void test_jsonl_long_lines(void)
{
    size_t mid = 600 * 1024, big = (size_t)DRISK_JSONL_MAX_LINE + 100;
    char *text = malloc(mid + big + 256);
    if (!text)
        return;
    size_t k = 0;
    k += (size_t)sprintf(text + k, "{\"a\": \"");
    memset(text + k, 'x', mid), k += mid;
    k += (size_t)sprintf(text + k, "\"}\n{\"b\": \"");
    memset(text + k, 'y', big), k += big;
    k += (size_t)sprintf(text + k, "\"}\n{\"c\": 1}\n");
    FILE *f = fmemopen(text, k, "rb");
    struct drisk_jsonl *j = drisk_jsonl_create(f);
    struct drisk_jsonl_record rec;
    struct drisk_error err;
    int got[3] = { 0, 0, 0 };
    size_t len0 = 0;
    for (int i = 0; j && i < 3; i++) {
        got[i] = drisk_jsonl_next(j, &rec, &err);
        if (i == 0 && got[i] == 1)
            len0 = rec.len[0];
        if (got[i] < 0)
            CHECK(strstr(err.msg, "longer than") != NULL);
        if (i == 2 && got[i] == 1)
            CHECK(strcmp(rec.key[0], "c") == 0);
    }
    CHECK_MSG(got[0] == 1 && len0 == mid && got[1] == -1 && got[2] == 1, "%d %d %d %zu",
              got[0], got[1], got[2], len0);
    drisk_jsonl_free(j);
    fclose(f);
    free(text);
}

static void test_jsonl(void)
{
    struct drisk_jsonl_record rec;
    struct drisk_error err;
    char scratch[512];
    const char *line = "{\"a\": \"x\\\"y\\u00e9\\ud83d\\udce6\", \"n\": -1.5e2, \"t\": true, \"z\": null}";
    CHECK(drisk_jsonl_parse_line(line, strlen(line), scratch, &rec, &err) == 0);
    CHECK(rec.n == 4);
    CHECK(strcmp(rec.key[0], "a") == 0 && strcmp(rec.val[0], "x\"y\xc3\xa9\xf0\x9f\x93\xa6") == 0);
    CHECK(strcmp(rec.val[1], "-1.5e2") == 0 && strcmp(rec.val[2], "true") == 0);
    CHECK(rec.is_null[3] && rec.len[3] == 0);
    const char *bad[] = {
        "[1,2]", "{\"a\":}", "{\"a\":1,}", "{\"a\":{\"b\":1}}", "{\"a\":[1]}", "{\"a\":\"x}",
        "{\"a\":1} {\"b\":2}", "{a:1}", "{\"a\":01}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\u0000\"}",
        "{\"a\":\"tab\there\"}", "{\"a\":tru}", "{\"a\":1", "{\"a\":nul}", "{\"a\":n}",
        "{\"a\":\"x\",\"b\":nulL}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(drisk_jsonl_parse_line(bad[i], strlen(bad[i]), scratch, &rec, &err) == -1,
                  "accepted %s", bad[i]);
    CHECK(drisk_jsonl_parse_line("{}", 2, scratch, &rec, &err) == 0 && rec.n == 0);
}

/* ---- store ---- */

static void fill(struct drisk_shipment *sh, const char *id, int64_t created)
{
    memset(sh, 0, sizeof *sh);
    snprintf(sh->merchant, sizeof sh->merchant, "m1");
    snprintf(sh->shipment_id, sizeof sh->shipment_id, "%s", id);
    snprintf(sh->carrier, sizeof sh->carrier, "apex");
    snprintf(sh->service, sizeof sh->service, "ground");
    snprintf(sh->origin, sizeof sh->origin, "R01");
    snprintf(sh->destination, sizeof sh->destination, "R02");
    sh->weight_kg = 1.25;
    sh->declared_value = NAN;
    sh->created_at = created;
    sh->promised_at = created + 3 * 86400;
    sh->delivered_at = DRISK_TS_NONE;
}

struct collected {
    int64_t hub_ids[8];
    int n_hub;
    int n;
    char ids[8][DRISK_ID_MAX];
    int n_scans[8];
    int64_t first_ts[8];
    int ordered;
};

static int collect(const struct drisk_shipment *sh, const struct drisk_scan *scans, size_t n,
                   void *ctx, struct drisk_error *err)
{
    (void)err;
    struct collected *c = ctx;
    if (c->n < 8) {
        snprintf(c->ids[c->n], DRISK_ID_MAX, "%s", sh->shipment_id);
        c->n_scans[c->n] = (int)n;
        c->first_ts[c->n] = n ? scans[0].ts : 0;
    }
    for (size_t i = 1; i < n; i++)
        if (scans[i].ts < scans[i - 1].ts)
            c->ordered = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(scans[i].location, "R01-HUB") == 0 && c->n_hub < 8)
            c->hub_ids[c->n_hub++] = scans[i].location_id;
        else if (!scans[i].location[0] && scans[i].location_id != 0)
            c->ordered = 0;
    c->n++;
    return 0;
}

static void test_store(void)
{
    struct drisk_store *st = NULL;
    struct drisk_error err;
    struct drisk_shipment a, b;
    int64_t id_a, id_b, id;
    enum drisk_upsert res;
    char db[512];
    store_target(dir, "store.db", db, sizeof db);
    CHECK(drisk_store_open(db, &st, &err) == DRISK_OK);
    if (!st)
        return;
    fill(&a, "A1", 1700000000);
    fill(&b, "B1", 1690000000);
    CHECK(drisk_store_upsert_shipment(st, &a, &id_a, &res, &err) == 0 && res == DRISK_UPSERT_INSERTED);
    CHECK(drisk_store_upsert_shipment(st, &a, &id, &res, &err) == 0 && res == DRISK_UPSERT_UNCHANGED && id == id_a);
    a.delivered_at = a.created_at + 86400;
    a.outcome = DRISK_OUTCOME_DELIVERED;
    CHECK(drisk_store_upsert_shipment(st, &a, &id, &res, &err) == 0 && res == DRISK_UPSERT_UPDATED && id == id_a);
    CHECK(drisk_store_upsert_shipment(st, &b, &id_b, &res, &err) == 0 && res == DRISK_UPSERT_INSERTED);
    /* the same shipment_id for another merchant is another shipment */
    snprintf(b.merchant, sizeof b.merchant, "m2");
    CHECK(drisk_store_upsert_shipment(st, &b, &id, &res, &err) == 0 && res == DRISK_UPSERT_INSERTED && id != id_b);

    struct drisk_scan sc = { .ts = 1700000100, .event = DRISK_EVENT_PICKED_UP };
    snprintf(sc.location, sizeof sc.location, "R01-HUB");
    int ins;
    CHECK(drisk_store_insert_scan(st, id_a, &sc, &ins, &err) == 0 && ins == 1);
    CHECK(drisk_store_insert_scan(st, id_a, &sc, &ins, &err) == 0 && ins == 0);
    sc.ts = 1700000050; /* an older scan arriving later */
    sc.event = DRISK_EVENT_LABEL_CREATED;
    CHECK(drisk_store_insert_scan(st, id_a, &sc, &ins, &err) == 0 && ins == 1);
    /* a location first seen in a rolled-back transaction is added again afterwards */
    CHECK(drisk_store_begin(st, &err) == 0);
    snprintf(sc.location, sizeof sc.location, "R09-DS1");
    CHECK(drisk_store_insert_scan(st, id_b, &sc, &ins, &err) == 0 && ins == 1);
    drisk_store_rollback(st);
    CHECK(drisk_store_insert_scan(st, id_b, &sc, &ins, &err) == 0 && ins == 1);
    snprintf(sc.location, sizeof sc.location, "R01-HUB");
    CHECK(drisk_store_insert_scan(st, id_b, &sc, &ins, &err) == 0 && ins == 1);
    CHECK(drisk_store_find_shipment(st, "m1", "A1", &id, &err) == DRISK_OK && id == id_a);
    CHECK(drisk_store_find_shipment(st, "m1", "nope", &id, &err) == DRISK_ENOTFOUND);
    CHECK(drisk_store_find_shipment(st, "m3", "A1", &id, &err) == DRISK_ENOTFOUND);

    struct collected c = { .ordered = 1 };
    CHECK(drisk_store_iterate(st, NULL, collect, &c, &err) == DRISK_OK);
    CHECK(c.n == 3);
    /* by created_at: B1 (m1), B1 (m2), then A1 with its two scans in time order */
    CHECK(strcmp(c.ids[0], "B1") == 0 && strcmp(c.ids[2], "A1") == 0);
    CHECK(c.n_scans[2] == 2 && c.first_ts[2] == 1700000050 && c.ordered);
    CHECK(c.n_scans[0] == 2);
    /* one location, one id, whichever shipment scanned there */
    CHECK(c.n_hub == 3 && c.hub_ids[0] > 0 && c.hub_ids[0] == c.hub_ids[1] &&
          c.hub_ids[1] == c.hub_ids[2]);
    struct drisk_store_filter f = { .merchant = "m1", .created_from = 1695000000,
                                    .created_to = INT64_MAX };
    c = (struct collected){ .ordered = 1 };
    CHECK(drisk_store_iterate(st, &f, collect, &c, &err) == DRISK_OK && c.n == 1);

    /* a rolled-back transaction leaves nothing */
    int64_t ns, nc;
    CHECK(drisk_store_begin(st, &err) == 0);
    fill(&a, "C1", 1710000000);
    CHECK(drisk_store_upsert_shipment(st, &a, &id, &res, &err) == 0);
    drisk_store_rollback(st);
    CHECK(drisk_store_count(st, &ns, &nc, &err) == 0 && ns == 3 && nc == 4);

    /* SQLite: foreign keys are off inside a bulk transaction only */
    sc.ts = 1700009999;
    CHECK(drisk_store_begin_bulk(st, &err) == 0);
    CHECK(drisk_store_insert_scan(st, 987654, &sc, &ins, &err) == DRISK_OK && ins == 1);
    drisk_store_rollback(st);
    CHECK(drisk_store_begin_bulk(st, &err) == 0);
    CHECK(drisk_store_commit(st, &err) == 0);
    if (!store_target_pg()) { /* PostgreSQL's scans carry no foreign keys (data/schema_pg.h) */
        CHECK(drisk_store_insert_scan(st, 987654, &sc, &ins, &err) != DRISK_OK);
        CHECK(strstr(err.msg, "FOREIGN KEY") != NULL);
    }
    /* PostgreSQL: upkeep makes the current months' scan partitions, so a live scan lands
     * in its month's; a scan of a month without one lands in the default partition */
    if (store_target_pg()) {
        int64_t now = time(NULL);
        CHECK(drisk_store_maintain(st, now, &err) == DRISK_OK);
        sc.ts = now;
        CHECK(drisk_store_insert_scan(st, id_a, &sc, &ins, &err) == DRISK_OK && ins == 1);
        sc.ts = now + 400 * 86400L;
        CHECK(drisk_store_insert_scan(st, id_a, &sc, &ins, &err) == DRISK_OK && ins == 1);
        char q[160];
        snprintf(q, sizeof q, "SELECT count(*) FROM scans_default WHERE ts = %lld", (long long)now);
        CHECK(store_target_query("store.db", q) == 0);
        snprintf(q, sizeof q, "SELECT count(*) FROM scans WHERE ts = %lld", (long long)now);
        CHECK(store_target_query("store.db", q) == 1);
        snprintf(q, sizeof q, "SELECT count(*) FROM scans_default WHERE ts = %lld",
                 (long long)(now + 400 * 86400L));
        CHECK(store_target_query("store.db", q) == 1);
        nc += 2;
    }

    drisk_store_free(st);

    /* reopening keeps data and schema */
    CHECK(drisk_store_open(db, &st, &err) == DRISK_OK);
    int64_t nc_before = nc;
    CHECK(st && drisk_store_count(st, &ns, &nc, &err) == 0 && ns == 3 && nc == nc_before);
    drisk_store_free(st);
    if (store_target_pg())
        return;
    write_file(path("notadb.db"), "this is not a database, it is a text file of some length........");
    st = NULL;
    CHECK(drisk_store_open(path("notadb.db"), &st, &err) != DRISK_OK && st == NULL);
    CHECK(strstr(err.msg, "not a drisk") != NULL);
}

/* ---- import ---- */

struct problems {
    int n;
    char first[512];
};

static void on_problem(const char *msg, void *ctx)
{
    struct problems *p = ctx;
    if (p->n++ == 0)
        snprintf(p->first, sizeof p->first, "%s", msg);
}

static enum drisk_status run_import(const char *db, const char *ship, const char *scans,
                                    const char *rejects, struct drisk_import_result *res,
                                    struct problems *pb)
{
    struct drisk_store *st = NULL;
    struct drisk_error err;
    memset(pb, 0, sizeof *pb);
    if (drisk_store_open(db, &st, &err)) {
        fprintf(stderr, "  (open: %s)\n", err.msg);
        return err.status;
    }
    struct drisk_import_options o = { ship, scans, rejects, 20, on_problem, pb };
    enum drisk_status rc = drisk_import(st, &o, res, &err);
    if (rc)
        fprintf(stderr, "  (import: %s)\n", err.msg);
    drisk_store_free(st);
    return rc;
}

static int64_t count_scans(const char *db)
{
    struct drisk_store *st = NULL;
    struct drisk_error err;
    int64_t ns = -1, nc = -1;
    if (drisk_store_open(db, &st, &err) == 0)
        drisk_store_count(st, &ns, &nc, &err);
    drisk_store_free(st);
    return ns * 1000000 + nc; /* shipments and scans in one number */
}

static int s1_seen(const struct drisk_shipment *sh, const struct drisk_scan *sc, size_t n,
                   void *ctx, struct drisk_error *err)
{
    (void)sc, (void)n, (void)err;
    if (strcmp(sh->shipment_id, "S1") == 0 && strcmp(sh->merchant, "m1") == 0 &&
        sh->outcome == DRISK_OUTCOME_DELIVERED)
        *(int64_t *)ctx = sh->delivered_at;
    return 0;
}

/* delivered_at of shipment S1 of m1 as stored, when its outcome is delivered; else -1 */
static int64_t stored_s1_delivered(const char *db)
{
    struct drisk_store *st = NULL;
    struct drisk_error err;
    int64_t v = -1;
    if (drisk_store_open(db, &st, &err) == 0)
        drisk_store_iterate(st, NULL, s1_seen, &v, &err);
    drisk_store_free(st);
    return v;
}

static const char ships_csv[] =
    "shipment_id,merchant_id,carrier,service,origin,destination,weight_kg,declared_value,"
    "created_at,promised_at,delivered_at,outcome\n"
    "S1,m1,Apex,ground,R01,R02,1.5,20.00,2025-03-03T10:00:00Z,2025-03-06T20:00:00Z,,\n"
    "S2,m1,apex,express,R01,R03,,,2025-03-03T11:00:00+01:00,2025-03-04T20:00:00Z,"
    "2025-03-04T15:00:00Z,delivered\n";
static const char scans_csv[] =
    "shipment_id,merchant_id,ts,event,location,reason,description\n"
    "S1,m1,2025-03-03T10:00:00Z,label_created,,,\n"
    "S1,m1,2025-03-03T18:00:00Z,picked_up,R01-HUB,,\"Picked up, by driver\"\n"
    "S2,m1,2025-03-03T10:05:00Z,InfoReceived,,,\n"
    "S2,m1,2025-03-04T08:00:00Z,OutForDelivery,R03-DS1,,\n"
    "S2,m1,2025-03-04T15:00:00Z,DELIVERED,R03-DS1,,\n";

static void test_import(void)
{
    struct drisk_import_result r;
    struct problems pb;
    char db[512];
    store_target(dir, "imp.db", db, sizeof db);
    write_file(path("s.csv"), ships_csv);
    write_file(path("c.csv"), scans_csv);

    CHECK(run_import(db, path("s.csv"), path("c.csv"), NULL, &r, &pb) == DRISK_OK);
    CHECK(r.shipments.read == 2 && r.shipments.inserted == 2 && r.scans.inserted == 5);
    CHECK(count_scans(db) == 2 * 1000000 + 5);

    /* idempotent */
    CHECK(run_import(db, path("s.csv"), path("c.csv"), NULL, &r, &pb) == DRISK_OK);
    CHECK(r.shipments.unchanged == 2 && r.shipments.inserted == 0 && r.scans.unchanged == 5 &&
          r.scans.inserted == 0);
    CHECK(count_scans(db) == 2 * 1000000 + 5);

    /* an outcome arriving later updates the row */
    write_file(path("s2.csv"),
               "shipment_id,merchant_id,carrier,service,origin,destination,created_at,promised_at,"
               "delivered_at,outcome,weight_kg,declared_value\n"
               "S1,m1,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-06T20:00:00Z,"
               "2025-03-07T09:00:00Z,,1.5,20\n");
    CHECK(run_import(db, path("s2.csv"), NULL, NULL, &r, &pb) == DRISK_OK);
    CHECK(r.shipments.updated == 1);
    CHECK(stored_s1_delivered(db) == 1741338000); /* 2025-03-07T09:00:00Z, outcome delivered */
    CHECK(run_import(db, path("s2.csv"), NULL, NULL, &r, &pb) == DRISK_OK);
    CHECK(r.shipments.unchanged == 1 && r.shipments.updated == 0);
    /* a shipment repeated within one file: its rows apply in order, the last one wins
     * (PostgreSQL: a repeat starts a second statement of the batch) */
    write_file(path("s3.csv"),
               "shipment_id,merchant_id,carrier,service,origin,destination,created_at,promised_at,"
               "delivered_at,outcome,weight_kg,declared_value\n"
               "S1,m1,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-06T20:00:00Z,"
               "2025-03-06T09:00:00Z,,1.5,20\n"
               "S1,m1,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-06T20:00:00Z,"
               "2025-03-06T09:00:00Z,,1.5,20\n"
               "S1,m1,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-06T20:00:00Z,"
               "2025-03-05T09:00:00Z,,1.5,20\n");
    CHECK_MSG(run_import(db, path("s3.csv"), NULL, NULL, &r, &pb) == DRISK_OK &&
              r.shipments.inserted == 0 && r.shipments.updated == 2 &&
              r.shipments.unchanged == 1, "%lld inserted, %lld updated, %lld unchanged",
              (long long)r.shipments.inserted, (long long)r.shipments.updated,
              (long long)r.shipments.unchanged);
    CHECK(stored_s1_delivered(db) == 1741165200); /* 2025-03-05T09:00:00Z: the last row's */
    CHECK(run_import(db, path("s2.csv"), NULL, NULL, &r, &pb) == DRISK_OK &&
          r.shipments.updated == 1); /* back to s2.csv's, which the rest expects */

    /* atomic: one bad row among good ones writes nothing, and names line and field */
    write_file(path("bad.csv"),
               "shipment_id,merchant_id,ts,event,location\n"
               "S1,m1,2025-03-05T10:00:00Z,in_transit,R02-HUB\n"
               "S1,m1,2025-02-30T10:00:00Z,in_transit,R02-HUB\n"
               "S1,m1,2025-03-06T10:00:00Z,arrived_at_facility,R02-HUB\n");
    CHECK(run_import(db, NULL, path("bad.csv"), NULL, &r, &pb) == DRISK_EINVAL);
    CHECK(pb.n == 1 && strstr(pb.first, "bad.csv:3: field ts:") != NULL);
    CHECK(count_scans(db) == 2 * 1000000 + 5);

    /* the field rules the API shares (data/import.h): amounts over their cap, years
     * outside 2000-2099, control characters in codes */
    write_file(path("bad3.csv"),
               "shipment_id,carrier,service,origin,destination,created_at,promised_at,weight_kg\n"
               "Y1,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-05T10:00:00Z,1e308\n"
               "Y2,apex,ground,R01,R02,9999-03-03T10:00:00Z,9999-03-05T10:00:00Z,\n"
               "Y3,ap\x01ex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-05T10:00:00Z,\n");
    CHECK(run_import(db, path("bad3.csv"), NULL, NULL, &r, &pb) == DRISK_EINVAL);
    CHECK_MSG(r.shipments.rejected == 3 && pb.n == 3 &&
              strstr(pb.first, "bad3.csv:2: field weight_kg: 1e308 is over 100000"), "%zu: %s",
              (size_t)r.shipments.rejected, pb.first);

    /* every kind of bad row is found and counted */
    write_file(path("bad2.csv"),
               "shipment_id,carrier,service,origin,destination,created_at,promised_at,outcome,weight_kg\n"
               "X1,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-01T10:00:00Z,,\n"   /* promise before creation */
               ",apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-05T10:00:00Z,,\n"     /* missing id */
               "X3,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-05T10:00:00Z,stolen,\n"
               "X4,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-05T10:00:00Z,,-2\n"
               "X5,apex,ground,R01\n"                                                   /* short row */
               "X6,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-05T10:00:00Z,delivered,\n"
               "X7,apex,ground,R\xff,R02,2025-03-03T10:00:00Z,2025-03-05T10:00:00Z,,\n" /* bad UTF-8 */
               "X8,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-05T10:00:00Z,,\n"); /* valid */
    write_file(path("bad2s.csv"),
               "shipment_id,ts,event\n"
               "X8,2025-03-03T10:00:00Z,teleported\n"
               "NOPE,2025-03-03T10:00:00Z,picked_up\n"
               "X8,2025-03-03T11:00:00Z,picked_up\n");
    CHECK(run_import(db, path("bad2.csv"), path("bad2s.csv"), NULL, &r, &pb) == DRISK_EINVAL);
    CHECK(r.shipments.rejected == 7 && r.scans.rejected == 2 && r.problems == 9);
    CHECK(strstr(pb.first, "bad2.csv:2: field promised_at") != NULL);
    CHECK(count_scans(db) == 2 * 1000000 + 5);

    /* --skip-invalid: the valid rows go in, the others to the rejects file */
    CHECK(run_import(db, path("bad2.csv"), path("bad2s.csv"), path("rej.csv"), &r, &pb) == DRISK_OK);
    CHECK(r.shipments.inserted == 1 && r.scans.inserted == 1 && r.problems == 9);
    CHECK(count_scans(db) == 3 * 1000000 + 6);
    FILE *f = fopen(path("rej.csv"), "r");
    char line[1024];
    int lines = 0, saw_short = 0, saw_unknown = 0;
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        if (strncmp(line, "6,", 2) == 0 && strstr(line, "has 4 fields") && strstr(line, "\"X5,apex,ground,R01\""))
            saw_short = 1;
        if (strstr(line, "shipment_id") && strstr(line, "unknown shipment") && strstr(line, "NOPE"))
            saw_unknown = 1;
    }
    if (f)
        fclose(f);
    CHECK(lines == 10 && saw_short && saw_unknown);

    /* a scan without merchant_id belongs to the one merchant with that shipment_id; when
     * two merchants have it, the scan must say which */
    write_file(path("twin.csv"),
               "shipment_id,merchant_id,carrier,service,origin,destination,created_at,promised_at\n"
               "S1,m2,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-06T20:00:00Z\n"
               "U1,m2,apex,ground,R01,R02,2025-03-03T10:00:00Z,2025-03-06T20:00:00Z\n");
    write_file(path("twin_scans.csv"),
               "shipment_id,ts,event\nU1,2025-03-03T12:00:00Z,picked_up\nS1,2025-03-03T12:00:00Z,picked_up\n");
    CHECK(run_import(db, path("twin.csv"), path("twin_scans.csv"), NULL, &r, &pb) == DRISK_EINVAL);
    CHECK(r.problems == 1 && strstr(pb.first, "twin_scans.csv:3: field merchant_id") != NULL);
    CHECK(run_import(db, path("twin.csv"), path("twin_scans.csv"), path("rej2.csv"), &r, &pb) == DRISK_OK);
    CHECK(r.scans.inserted == 1 && r.scans.rejected == 1);

    /* past several reader batches: one bad row near the end still means nothing written,
     * and --skip-invalid keeps the rest */
    FILE *f2 = fopen(path("many.csv"), "w");
    fputs("shipment_id,merchant_id,ts,event,location\n", f2);
    for (int i = 0; i < 5000; i++)
        fprintf(f2, "S1,m1,2025-03-%02dT%02d:%02d:%02dZ,%s,R%02d-HUB\n", 10 + i / 1440 % 10,
                i / 60 % 24, i % 60, i % 7 == 0 ? 7 : 11,
                i == 4321 ? "warped" : "in_transit", i % 12);
    fclose(f2);
    CHECK(run_import(db, NULL, path("many.csv"), NULL, &r, &pb) == DRISK_EINVAL);
    CHECK(r.problems == 1 && strstr(pb.first, "many.csv:4323: field event") != NULL);
    CHECK(r.scans.read == 5000 && r.scans.inserted == 0);
    CHECK(count_scans(db) == 5 * 1000000 + 7);
    CHECK(run_import(db, NULL, path("many.csv"), path("rej3.csv"), &r, &pb) == DRISK_OK);
    CHECK(r.scans.inserted == 4999 && r.scans.rejected == 1);
    CHECK(count_scans(db) == 5 * 1000000 + 7 + 4999);
    struct stat rst;
    CHECK(stat(path("rej3.csv"), &rst) == 0 && stat(path("rej3.csv.tmp"), &rst) != 0);

    /* the rejects file may not be an input file */
    CHECK(run_import(db, path("s.csv"), NULL, path("s.csv"), &r, &pb) == DRISK_EINVAL);
    CHECK(stat(path("s.csv"), &rst) == 0 && rst.st_size == (off_t)strlen(ships_csv));

    /* a missing required column is refused before any row */
    write_file(path("nocol.csv"), "shipment_id,ts\nS1,2025-03-05T10:00:00Z\n");
    CHECK(run_import(db, NULL, path("nocol.csv"), NULL, &r, &pb) == DRISK_EINVAL);

    /* JSON Lines, foreign statuses, unknown fields ignored, null values */
    write_file(path("s.jsonl"),
               "{\"shipment_id\":\"J1\",\"carrier\":\"FLEETEX\",\"service\":\"ground\",\"origin\":\"R01\","
               "\"destination\":\"R09\",\"created_at\":\"2025-04-01T08:00:00-05:00\","
               "\"promised_at\":\"2025-04-04T20:00:00Z\",\"delivered_at\":null,\"extra\":42}\r\n"
               "\n");
    write_file(path("c.jsonl"),
               "{\"shipment_id\":\"J1\",\"ts\":\"2025-04-01T13:00:00Z\",\"event\":\"pre_transit\"}\n"
               "{\"shipment_id\":\"J1\",\"ts\":\"2025-04-02T13:00:00Z\",\"event\":\"AttemptFail\","
               "\"reason\":\"recipient_unavailable\",\"description\":\"No one home \\u2014 card left\"}\n");
    CHECK(run_import(db, path("s.jsonl"), path("c.jsonl"), NULL, &r, &pb) == DRISK_OK);
    CHECK(count_scans(db) == 6 * 1000000 + 9 + 4999);
    CHECK(r.shipments.inserted == 1 && r.scans.inserted == 2);
    write_file(path("bad.jsonl"), "{\"shipment_id\":\"J1\",\"ts\":\"2025-04-02T14:00:00Z\",\"event\":[\"x\"]}\n"
               "{\"shipment_id\":\"J1\",\"ts\":nul,\"event\":\"x\"}\n"
               "{\"shipment_id\":\"J1\",\"ts\":\"2025-04-02T14:00:00Z\",\"event\":\"delivered\",\"event\":\"lost\"}\n"
               "{\"shipment_id\":\"J1\",\"ts\":\"2025-04-02T14:00:00Z\",\"event\":\"in_tr\\u0000\"}\n");
    CHECK(run_import(db, NULL, path("bad.jsonl"), NULL, &r, &pb) == DRISK_EINVAL);
    CHECK(strstr(pb.first, "bad.jsonl:1:") && strstr(pb.first, "nested"));
    CHECK(r.problems == 4 && r.scans.rejected == 4);
}

/* API keys: only hashes stored, found by hash, merchant attached, revoked for good. */
static void test_keys(void)
{
    struct drisk_store *st = NULL;
    struct drisk_error err = { 0 };
    char db[512];
    store_target(dir, "keys.db", db, sizeof db);
    CHECK(drisk_store_open(db, &st, &err) == DRISK_OK);
    if (!st)
        return;
    unsigned char h1[32], h2[32], h3[32];
    drisk_sha256("key-one", 7, h1);
    drisk_sha256("key-two", 7, h2);
    drisk_sha256("key-three", 9, h3);
    int64_t id1 = 0, id2 = 0, id;
    CHECK(drisk_store_key_add(st, "shop-a", 0, h1, 1700000000, &id1, &err) == DRISK_OK);
    CHECK(drisk_store_key_add(st, NULL, 1, h2, 1700000001, &id2, &err) == DRISK_OK);
    CHECK(id1 > 0 && id2 > id1);
    /* a merchant key needs a merchant; a hash is registered once */
    CHECK(drisk_store_key_add(st, "", 0, h3, 1, &id, &err) == DRISK_EINVAL);
    CHECK(drisk_store_key_add(st, "shop-b", 0, h1, 1, &id, &err) == DRISK_EINVAL &&
          strstr(err.msg, "already"));
    struct drisk_key_row row;
    CHECK(drisk_store_key_find(st, h1, &row, &err) == DRISK_OK && row.id == id1 &&
          strcmp(row.merchant, "shop-a") == 0 && !row.admin && row.created_at == 1700000000);
    CHECK(drisk_store_key_find(st, h2, &row, &err) == DRISK_OK && row.admin &&
          row.merchant[0] == '\0');
    CHECK(drisk_store_key_find(st, h3, &row, &err) == DRISK_ENOTFOUND);
    CHECK(drisk_store_key_revoke(st, id1, &err) == DRISK_OK);
    CHECK(drisk_store_key_find(st, h1, &row, &err) == DRISK_ENOTFOUND);
    CHECK(drisk_store_key_revoke(st, id1, &err) == DRISK_ENOTFOUND);
    drisk_store_free(st);
}

/* The store lock: one per connection, held against another connection (as another
 * process would be) until the holder closes. */
static void test_lock(void)
{
    struct drisk_store *a = NULL, *b = NULL;
    struct drisk_error err;
    char db[512];
    store_target(dir, "lock.db", db, sizeof db);
    CHECK(drisk_store_open(db, &a, &err) == DRISK_OK &&
          drisk_store_open(db, &b, &err) == DRISK_OK);
    if (!a || !b)
        goto out;
    CHECK(drisk_store_lock(a, "retrain", &err) == DRISK_OK);
    CHECK(drisk_store_lock(a, "retrain", &err) == DRISK_OK); /* held already */
    CHECK(drisk_store_lock(a, "other", &err) == DRISK_EINVAL && strstr(err.msg, "one lock"));
    CHECK(drisk_store_lock(b, "retrain", &err) == DRISK_EIO &&
          strstr(err.msg, "another process holds the retrain lock"));
    drisk_store_free(a);
    a = NULL;
    CHECK(drisk_store_lock(b, "retrain", &err) == DRISK_OK); /* released with its holder */
out:
    drisk_store_free(a);
    drisk_store_free(b);
}

/* What the server nodes of one store share (data/live.h), through two connections as two
 * nodes would hold them: the ingest log, the sweep's shards, one open alert and one open
 * recommendation per shipment. */
struct seen {
    int n;
    int64_t ts[16];
};

static int see(const struct drisk_log_entry *e, void *ctx)
{
    struct seen *s = ctx;
    if (s->n < 16)
        s->ts[s->n] = e->ts;
    s->n++;
    return 0;
}

static int first_due(const struct drisk_delivery *d, void *ctx)
{
    int64_t *id = ctx;
    if (!*id)
        *id = d->id;
    return 0;
}

static void log_one(struct drisk_store *st, int64_t ship, int64_t ts)
{
    struct drisk_error err = { 0 };
    struct drisk_log_entry e = { .node = 7, .kind = DRISK_LOG_SCAN, .shipment = ship, .ts = ts,
                                 .event = DRISK_EVENT_ARRIVED_AT_FACILITY };
    snprintf(e.location, sizeof e.location, "R01-HUB");
    CHECK(drisk_store_log_put(st, &e, 1700000000, &err) == DRISK_OK);
}

static void test_nodes(void)
{
    struct drisk_store *a = NULL, *b = NULL;
    struct drisk_error err = { 0 };
    char db[512];
    store_target(dir, "nodes.db", db, sizeof db);
    CHECK(drisk_store_open(db, &a, &err) == DRISK_OK && drisk_store_open(db, &b, &err) == DRISK_OK);
    if (!a || !b)
        goto out;
    struct drisk_shipment sh;
    int64_t ship;
    enum drisk_upsert res;
    fill(&sh, "N1", 1700000000);
    CHECK(drisk_store_upsert_shipment(a, &sh, &ship, &res, &err) == DRISK_OK);

    /* the log: each entry once, after the reader's position, none before it */
    struct drisk_log_cursor c;
    struct seen seen = { 0 };
    log_one(a, ship, 1);
    CHECK(drisk_store_log_position(b, &c, &err) == DRISK_OK);
    log_one(a, ship, 2);
    CHECK(drisk_store_log_follow(b, &c, see, &seen, &err) == DRISK_OK);
    CHECK(seen.n == 1 && seen.ts[0] == 2);
    seen.n = 0;
    CHECK(drisk_store_log_follow(b, &c, see, &seen, &err) == DRISK_OK && seen.n == 0);
    /* a position taken in a snapshot transaction is that snapshot's: what commits after
     * its first read is after it, even when the position is read later */
    struct drisk_log_cursor snap;
    int64_t ns, nc;
    CHECK(drisk_store_begin_snapshot(b, &err) == DRISK_OK);
    CHECK(drisk_store_count(b, &ns, &nc, &err) == DRISK_OK);
    log_one(a, ship, 3);
    CHECK(drisk_store_log_position(b, &snap, &err) == DRISK_OK);
    drisk_store_rollback(b);
    seen.n = 0;
    CHECK(drisk_store_log_follow(b, &snap, see, &seen, &err) == DRISK_OK);
    CHECK(seen.n == 1 && seen.ts[0] == 3);
    if (store_target_pg()) {
        /* PostgreSQL's writers commit out of seq order: an entry written first and
         * committed last is still read, after the one that committed before it */
        CHECK(drisk_store_log_follow(b, &c, see, &seen, &err) == DRISK_OK);
        CHECK(drisk_store_begin(a, &err) == DRISK_OK);
        log_one(a, ship, 4); /* the smaller seq */
        CHECK(drisk_store_begin(b, &err) == DRISK_OK);
        log_one(b, ship, 5);
        CHECK(drisk_store_commit(b, &err) == DRISK_OK);
        seen.n = 0;
        CHECK(drisk_store_log_follow(b, &c, see, &seen, &err) == DRISK_OK);
        CHECK(seen.n == 1 && seen.ts[0] == 5);
        CHECK(drisk_store_commit(a, &err) == DRISK_OK);
        seen.n = 0;
        CHECK(drisk_store_log_follow(b, &c, see, &seen, &err) == DRISK_OK);
        CHECK(seen.n == 1 && seen.ts[0] == 4);
    }
    /* upkeep keeps the log's last DRISK_LOG_KEEP_S seconds */
    CHECK(drisk_store_maintain(a, 1700000000 + DRISK_LOG_KEEP_S + 1, &err) == DRISK_OK);
    CHECK(drisk_store_log_position(b, &c, &err) == DRISK_OK);
    log_one(a, ship, 6);
    seen.n = 0;
    CHECK(drisk_store_log_follow(b, &c, see, &seen, &err) == DRISK_OK);
    CHECK(seen.n == 1 && seen.ts[0] == 6);

    /* the sweep's shards: two nodes claiming in turn get each shard once */
    int64_t now = 1800000000, prev;
    int got[DRISK_SWEEP_SHARDS] = { 0 }, shard, n = 0;
    for (int turn = 0;; turn++) {
        enum drisk_status rc = drisk_store_shard_claim(turn % 2 ? b : a, 1 + turn % 2, now, 60,
                                                       600, &shard, &prev, &err);
        if (rc == DRISK_ENOTFOUND)
            break;
        CHECK(rc == DRISK_OK && shard >= 0 && shard < DRISK_SWEEP_SHARDS && prev == 0);
        if (rc || shard < 0 || shard >= DRISK_SWEEP_SHARDS || n++ > DRISK_SWEEP_SHARDS)
            break;
        got[shard]++;
    }
    CHECK(n == DRISK_SWEEP_SHARDS);
    for (int k = 0; k < DRISK_SWEEP_SHARDS; k++)
        CHECK(got[k] == 1);
    /* shard 3 swept by its claimer (node 2: odd turns) is due again a period later; the
     * others, claimed and never marked swept (a node that died), when their lease ends */
    CHECK(drisk_store_shard_done(b, 3, 2, now, &err) == DRISK_OK);
    CHECK(drisk_store_shard_claim(a, 1, now + 30, 60, 600, &shard, &prev, &err) == DRISK_ENOTFOUND);
    CHECK(drisk_store_shard_claim(a, 1, now + 60, 60, 600, &shard, &prev, &err) == DRISK_OK &&
          shard == 3 && prev == now);
    CHECK(drisk_store_shard_claim(a, 1, now + 61, 60, 600, &shard, &prev, &err) == DRISK_ENOTFOUND);
    CHECK(drisk_store_shard_claim(b, 2, now + 600, 60, 600, &shard, &prev, &err) == DRISK_OK &&
          shard != 3 && prev == 0);

    /* one open alert of a type per shipment, whatever the caller believed: the second
     * node's open finds the first's and opens nothing; a cleared one makes room */
    int64_t id1 = 0, id2 = -1;
    CHECK(drisk_store_alert_open(a, ship, "stalled", "warning", "m", now, &id1, &err) == DRISK_OK &&
          id1 > 0);
    CHECK(drisk_store_alert_open(b, ship, "stalled", "critical", "m", now, &id2, &err) == DRISK_OK &&
          id2 == 0);
    struct drisk_alert_row open[DRISK_ALERTS_MAX_OPEN];
    size_t n_open = 0;
    CHECK(drisk_store_alerts_open(b, ship, open, &n_open, &err) == DRISK_OK && n_open == 1 &&
          open[0].id == id1 && strcmp(open[0].severity, "warning") == 0);
    CHECK(drisk_store_alert_change(b, id1, NULL, NULL, 1, now + 1, &err) == DRISK_OK);
    CHECK(drisk_store_alert_open(b, ship, "stalled", "critical", "m", now + 2, &id2, &err) ==
              DRISK_OK && id2 > id1);
    struct drisk_alert_row ra, rb;
    CHECK(drisk_store_alert_get(a, id1, &ra, &err) == DRISK_OK &&
          drisk_store_alert_get(a, id2, &rb, &err) == DRISK_OK && rb.seq > ra.seq);

    /* one open recommendation per shipment: a second node's put replaces it */
    struct drisk_rec_row r = { .deadline = DRISK_TS_NONE };
    snprintf(r.action, sizeof r.action, "notify");
    snprintf(r.costs, sizeof r.costs, "{}");
    int what = -1;
    CHECK(drisk_store_rec_put(a, ship, &r, now, &what, &err) == DRISK_OK && what == DRISK_REC_CREATED);
    snprintf(r.action, sizeof r.action, "reship");
    CHECK(drisk_store_rec_put(b, ship, &r, now, &what, &err) == DRISK_OK && what == DRISK_REC_CHANGED);
    struct drisk_rec_row now_r;
    CHECK(drisk_store_rec_get(a, ship, &now_r, &err) == DRISK_OK &&
          strcmp(now_r.action, "reship") == 0);
    if (store_target_pg())
        CHECK(store_target_query("nodes.db", "SELECT count(*) FROM recommendations WHERE open = 1") ==
              1);

    /* a webhook delivery both nodes' workers read as due goes from one of them, and is
     * due again when the claim ends (its sender died) */
    int64_t hook, due_id = 0;
    int queued = 0, claimed = -1;
    CHECK(drisk_webhook_create(a, "m1", "https://example.com/h", ",*,", "s3cret", now, &hook,
                               &err) == DRISK_OK);
    CHECK(drisk_store_begin(a, &err) == DRISK_OK);
    CHECK(drisk_outbox_emit(a, ship, "alert.opened", "{}", now, &queued, &err) == DRISK_OK &&
          queued == 1);
    CHECK(drisk_store_commit(a, &err) == DRISK_OK);
    CHECK(drisk_outbox_due(b, now * 1000, 10, first_due, &due_id, &err) == DRISK_OK && due_id > 0);
    CHECK(drisk_outbox_claim(a, due_id, now * 1000, now * 1000 + 40000, &claimed, &err) ==
              DRISK_OK && claimed == 1);
    CHECK(drisk_outbox_claim(b, due_id, now * 1000, now * 1000 + 40000, &claimed, &err) ==
              DRISK_OK && claimed == 0);
    int64_t again = 0;
    CHECK(drisk_outbox_due(b, now * 1000 + 1000, 10, first_due, &again, &err) == DRISK_OK &&
          again == 0);
    CHECK(drisk_outbox_due(b, now * 1000 + 40000, 10, first_due, &again, &err) == DRISK_OK &&
          again == due_id);
out:
    drisk_store_free(a);
    drisk_store_free(b);
}

int main(int argc, char **argv)
{
    dir = argc > 1 ? argv[1] : "/tmp/drisk_test_data";
    mkdir(dir, 0755);
    test_csv();
    test_jsonl();
    test_jsonl_long_lines();
    test_store();
    test_lock();
    test_nodes();
    test_import();
    test_keys();
    CHECK_DONE();
}
