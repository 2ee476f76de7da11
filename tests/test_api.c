/* The scoring server over real HTTP: a store with a simulated history ending now, models
 * trained on it, the server on a free port, and a plain-socket client. Covers auth,
 * merchant isolation, idempotent and out-of-order ingestion, all-or-nothing batches, bad
 * bodies answered 4xx while the server keeps serving, alert de-duplication and
 * escalation, a claim recommendation for a valuable parcel stalled past its promise,
 * settings, stateless scoring, metrics, and a model hot swap under load.
 * argv: scratch dir. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/json.h"
#include "api/server.h"
#include "data/sim.h"
#include "data/store.h"
#include "base/sha256.h"
#include "base/timeutil.h"
#include "tests/check.h"
#include "tests/store_target.h"
#include "training/learn.h"

static uint16_t port;
static const char *KEY_A = "key-merchant-a", *KEY_B = "key-merchant-b", *KEY_ADMIN = "key-admin";
static const char *MERCHANT_A = "acme-outdoor";

struct resp {
    int status;
    char *body; /* malloc'd, NUL-terminated */
    cJSON *json;
    char *head; /* the status line and headers, malloc'd */
};

static void resp_free(struct resp *r)
{
    free(r->head);
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

/* Every response received, as JSON Lines for tests/spec_check.py, which validates each
 * against api/openapi.yaml (NULL: not logged). */
static FILE *resp_log;

static void log_response(const char *method, const char *path, const struct resp *r)
{
    if (!resp_log || r->status == 0)
        return;
    char ct[128] = "";
    const char *h = r->head ? strstr(r->head, "\r\nContent-Type: ") : NULL;
    if (h)
        sscanf(h + 16, "%127[^\r;]", ct);
    cJSON *o = cJSON_CreateObject();
    size_t plen = strcspn(path, "?");
    char *p = strndup(path, plen);
    cJSON_AddStringToObject(o, "method", method);
    cJSON_AddStringToObject(o, "path", p);
    cJSON_AddNumberToObject(o, "status", r->status);
    cJSON_AddStringToObject(o, "content_type", ct);
    cJSON_AddStringToObject(o, "body", r->body ? r->body : "");
    char *line = cJSON_PrintUnformatted(o);
    if (line)
        fprintf(resp_log, "%s\n", line);
    free(line);
    free(p);
    cJSON_Delete(o);
}

/* One request on a fresh connection; status 0 when the exchange failed. */
static struct resp http(const char *method, const char *path, const char *key, const char *body,
                        size_t len)
{
    struct resp r = { 0, NULL, NULL, NULL };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return r;
    }
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, key ? "Authorization: Bearer " : "", key ? key : "",
                     key ? "\r\n" : "", body ? len : 0);
    int ok = write(fd, head, (size_t)n) == n;
    for (size_t off = 0; ok && body && off < len;) {
        ssize_t w = write(fd, body + off, len - off);
        if (w <= 0)
            break; /* the server may answer early (413) and close */
        off += (size_t)w;
    }
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (got + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        ssize_t k = read(fd, buf + got, cap - got - 1);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    char *sp = strchr(buf, ' ');
    char *start = strstr(buf, "\r\n\r\n");
    if (sp && start) {
        r.status = atoi(sp + 1);
        r.body = strdup(start + 4);
        r.json = cJSON_Parse(r.body);
        r.head = strndup(buf, (size_t)(start - buf));
    }
    free(buf);
    log_response(method, path, &r);
    return r;
}

static struct resp post(const char *path, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct resp post(const char *path, const char *key, const char *fmt, ...)
{
    char body[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return http("POST", path, key, body, strlen(body));
}

static const char *error_code(const struct resp *r)
{
    const cJSON *e = cJSON_GetObjectItem(r->json, "error");
    const cJSON *c = cJSON_GetObjectItem(e, "code");
    return cJSON_IsString(c) ? c->valuestring : "";
}

static double num(const cJSON *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok && o; tok = strtok(NULL, "."))
        o = cJSON_GetObjectItem(o, tok);
    return cJSON_IsNumber(o) ? o->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok && o; tok = strtok(NULL, "."))
        o = cJSON_GetObjectItem(o, tok);
    return cJSON_IsString(o) ? o->valuestring : "";
}

/* GETs path (a filtered list) and checks that every item of array list has field equal
 * to want: the items' count, or -1 when the answer failed or an item does not match. */
static int filter_holds(const char *key, const char *path, const char *list, const char *field,
                        const char *want)
{
    struct resp r = http("GET", path, key, NULL, 0);
    const cJSON *items = cJSON_GetObjectItem(r.json, list);
    int n = cJSON_GetArraySize(items), ok = r.status == 200;
    for (int i = 0; i < n; i++)
        ok &= strcmp(str(cJSON_GetArrayItem(items, i), field), want) == 0;
    if (!ok)
        fprintf(stderr, "%s: an item without %s = %s: %.300s\n", path, field, want, r.body);
    resp_free(&r);
    return ok ? n : -1;
}

/* Walks a list one item a page from its start: base is the path with its query, ending in
 * limit=1; list names the array. Sets the items seen and the pages; returns 1 when the walk
 * ended on has_more false and, with field, each page's item had a larger field than the
 * page before's (the feed's order). */
static int walk_pages(const char *key, const char *base, const char *list, const char *field,
                      int *items, int *pages)
{
    int more = 1, ordered = 1;
    int64_t cur = 0;
    double prev = -1;
    char path[700];
    *items = *pages = 0;
    while (more && *pages < 1000) {
        snprintf(path, sizeof path, "%s&cursor=%lld", base, (long long)cur);
        struct resp r = http("GET", path, key, NULL, 0);
        if (r.status != 200) {
            resp_free(&r);
            return 0;
        }
        const cJSON *page = cJSON_GetObjectItem(r.json, list);
        *items += cJSON_GetArraySize(page);
        if (field && cJSON_GetArraySize(page)) {
            double v = num(cJSON_GetArrayItem(page, 0), field);
            ordered &= v > prev;
            prev = v;
        }
        more = cJSON_IsTrue(cJSON_GetObjectItem(r.json, "has_more"));
        cur = (int64_t)num(r.json, "next_cursor");
        (*pages)++;
        resp_free(&r);
    }
    return !more && ordered;
}

static char *ts(int64_t t, char buf[DRISK_TS_BUF])
{
    return drisk_ts_format(t, buf);
}

static int64_t count(struct drisk_store *st, int scans)
{
    int64_t s, c;
    struct drisk_error err = { 0 };
    drisk_store_count(st, &s, &c, &err);
    return scans ? c : s;
}

static int64_t train(struct drisk_store *st, const char *target, int64_t until)
{
    struct drisk_train_options o = { .target = target, .until = until, .min_count = 30,
                                     .valid_fraction = 0.15,
                                     .activate = DRISK_ACTIVATE_IF_FIRST };
    drisk_fit_options_init(&o.fit, drisk_target_parse(target));
    struct drisk_train_result res;
    struct drisk_error err = { 0 };
    enum drisk_status rc = drisk_train(st, &o, &res, &err);
    CHECK_MSG(rc == DRISK_OK, "train %s: %s", target, err.msg);
    return res.model_id;
}

static void add_key(struct drisk_store *st, const char *key, const char *merchant, int admin)
{
    unsigned char h[DRISK_SHA256_BYTES];
    int64_t id;
    struct drisk_error err = { 0 };
    drisk_sha256(key, strlen(key), h);
    CHECK(drisk_store_key_add(st, merchant, admin, h, time(NULL), &id, &err) == DRISK_OK);
}

/* ---- hot swap under load ---- */

static atomic_int stop_load, load_ok, load_failed;

static void *load_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_load)) {
        struct resp r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\","
                             "\"origin\":\"R01\",\"destination\":\"R05\"}");
        if (r.status == 200 && cJSON_IsNumber(cJSON_GetObjectItem(
                                   cJSON_GetObjectItem(r.json, "risk"), "p_late")))
            atomic_fetch_add(&load_ok, 1);
        else
            atomic_fetch_add(&load_failed, 1);
        resp_free(&r);
    }
    return NULL;
}

/* The /v1/score answer written directly is the text cJSON makes of the same risk, quotes,
 * backslashes, control characters, UTF-8, nulls and big numbers included. */
static void test_risk_text(void)
{
    static const int64_t id_sets[2][3] = { { 1, 0, 3 }, { 12345678901LL, 2, 0 } };
    for (int v = 0; v < 2; v++) {
        struct drisk_risk r;
        memset(&r, 0, sizeof r);
        r.as_of = 1767225600 + v;
        r.p_late = v ? 0.123456789012 : 1e-12;
        r.p_lost = v ? NAN : 2e6;
        r.eta_p50_h = v ? NAN : 30.5;
        r.eta_p90_h = 1e300;
        r.level = v ? DRISK_RISK_HIGH : DRISK_RISK_LOW;
        r.n_reasons = v ? 0 : 3;
        snprintf(r.reasons[0], sizeof r.reasons[0], "a \"quoted\" \\ path\x01\x1f end");
        snprintf(r.reasons[1], sizeof r.reasons[1], "tab\there\nnew line\r\b\f");
        snprintf(r.reasons[2], sizeof r.reasons[2], "S\xc3\xa3o Paulo \xe2\x86\x92 R05/HUB");
        size_t len = 0;
        char *direct = api_risk_text(&r, id_sets[v], &len);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "risk", api_risk_json(&r, id_sets[v]));
        char *tree = cJSON_PrintUnformatted(o);
        CHECK_MSG(direct && tree && strcmp(direct, tree) == 0 && len == strlen(direct),
                  "direct %s\n  cJSON %s", direct ? direct : "(null)", tree ? tree : "(null)");
        free(direct);
        cJSON_free(tree);
        cJSON_Delete(o);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_api SCRATCH_DIR\n");
        return 2;
    }
    char db[512], path[600], body[8192], t0s[DRISK_TS_BUF], t1s[DRISK_TS_BUF],
        t2s[DRISK_TS_BUF], t3s[DRISK_TS_BUF], t4s[DRISK_TS_BUF];
    signal(SIGPIPE, SIG_IGN); /* the server may close while a too-large body is sent */
    test_risk_text();
    mkdir(argv[1], 0755);
    snprintf(path, sizeof path, "%s/responses.jsonl", argv[1]);
    resp_log = fopen(path, "w");
    CHECK(resp_log != NULL);
    store_target(argv[1], "api.db", db, sizeof db);

    /* a history ending today, and models trained on it */
    int64_t now = time(NULL), today = now - now % 86400;
    struct drisk_store *st;
    struct drisk_error err = { 0 };
    CHECK(drisk_store_open(db, &st, &err) == DRISK_OK);
    struct drisk_sim_options so;
    drisk_sim_options_default(&so);
    so.shipments = 8000;
    so.days = 200;
    so.start = today - 200 * 86400;
    struct drisk_sim_summary sum;
    CHECK(drisk_sim_run(st, &so, &sum, &err) == DRISK_OK);
    int64_t until = today - 30 * 86400;
    int64_t late1 = train(st, "late", until);
    train(st, "lost", until);
    train(st, "eta", until);
    int64_t late2 = train(st, "late", until - 20 * 86400); /* a second, inactive late model */
    CHECK(late2 != late1);
    add_key(st, KEY_A, MERCHANT_A, 0);
    add_key(st, KEY_B, "other-merchant", 0);
    add_key(st, KEY_ADMIN, NULL, 1);

    FILE *logf = tmpfile();
    struct drisk_server_options opts = { .db_path = db, .host = "127.0.0.1", .port = 0,
                                         .threads = 4, .sweep_s = 0, .access_log = logf };
    struct drisk_server *srv = NULL;
    CHECK_MSG(drisk_server_start(&opts, &srv, &err) == DRISK_OK, "%s", err.msg);
    if (!srv)
        CHECK_DONE();
    port = drisk_server_port(srv);
    CHECK(port > 0);

    /* health, no auth */
    struct resp r = http("GET", "/healthz", NULL, NULL, 0);
    CHECK(r.status == 200 && strcmp(str(r.json, "status"), "ok") == 0);
    CHECK(num(r.json, "models.late") == (double)late1);
    resp_free(&r);

    /* auth failures */
    r = http("GET", "/v1/alerts", NULL, NULL, 0);
    CHECK(r.status == 401 && strcmp(error_code(&r), "unauthorized") == 0);
    resp_free(&r);
    r = http("GET", "/v1/alerts", "not-a-key", NULL, 0);
    CHECK(r.status == 401);
    resp_free(&r);
    r = http("GET", "/v1/settings", KEY_ADMIN, NULL, 0); /* admin without a merchant */
    CHECK(r.status == 403);
    resp_free(&r);
    r = http("GET", "/v1/nothing", KEY_A, NULL, 0);
    CHECK(r.status == 404);
    resp_free(&r);
    r = http("DELETE", "/v1/scans", KEY_A, NULL, 0);
    CHECK(r.status == 405 && r.head && strstr(r.head, "\r\nAllow: POST"));
    resp_free(&r);
    r = http("POST", "/v1/settings", KEY_A, "{}", 2);
    CHECK(r.status == 405 && r.head && strstr(r.head, "\r\nAllow: GET, HEAD, PUT"));
    resp_free(&r);
    /* HEAD on GET routes: the GET's status and headers, no body */
    r = http("HEAD", "/healthz", NULL, NULL, 0);
    CHECK_MSG(r.status == 200 && r.body && r.body[0] == '\0' && r.head &&
              strstr(r.head, "Content-Type: application/json"), "%d", r.status);
    resp_free(&r);
    r = http("HEAD", "/v1/alerts", KEY_A, NULL, 0);
    CHECK(r.status == 200 && r.body && r.body[0] == '\0');
    resp_free(&r);
    r = http("HEAD", "/v1/alerts", NULL, NULL, 0);
    CHECK(r.status == 401);
    resp_free(&r);
    r = http("GET", "/v1/shipments/", KEY_A, NULL, 0);
    CHECK(r.status == 404);
    resp_free(&r);

    /* a shipment of merchant A: created 35 days ago, promised 30 days ago, valuable, no
     * scan for 34 days (the simulated carriers lose such parcels) */
    int64_t t0 = now - 35 * 86400, t1 = t0 + 3600, t2 = t0 + 86400, t4 = now - 3600;
    r = post("/v1/shipments", KEY_A,
             "{\"shipment_id\":\"S-STALL\",\"carrier\":\"apex\",\"service\":\"ground\","
             "\"origin\":\"R01\",\"destination\":\"R05\",\"declared_value\":2000,"
             "\"created_at\":\"%s\",\"promised_at\":\"%s\"}",
             ts(t0, t0s), ts(t0 + 5 * 86400, t1s));
    CHECK_MSG(r.status == 200, "%d %s", r.status, r.body);
    CHECK(strcmp(str(cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "shipments"), 0), "result"),
                 "inserted") == 0);
    resp_free(&r);

    /* merchant isolation: B cannot see or scan A's shipment */
    r = http("GET", "/v1/shipments/S-STALL", KEY_B, NULL, 0);
    CHECK(r.status == 404 && !strstr(r.body, "apex"));
    resp_free(&r);
    int64_t scans_before = count(st, 1), ships_before;
    r = post("/v1/scans", KEY_B, "{\"scans\":[{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\","
             "\"event\":\"picked_up\"}]}", ts(t1, t1s));
    CHECK(r.status == 422 && strcmp(error_code(&r), "unknown_shipment") == 0);
    resp_free(&r);
    CHECK(count(st, 1) == scans_before);

    /* ingestion: idempotent */
    snprintf(body, sizeof body,
             "{\"scans\":[{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\",\"event\":\"label_created\","
             "\"location\":\"R01-WH\"},{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\","
             "\"event\":\"picked_up\",\"location\":\"R01-WH\"},{\"shipment_id\":\"S-STALL\","
             "\"ts\":\"%s\",\"event\":\"arrived_at_facility\",\"location\":\"R01-HUB\"}]}",
             ts(t0, t0s), ts(t1, t1s), ts(t2, t2s));
    r = http("POST", "/v1/scans", KEY_A, body, strlen(body));
    CHECK_MSG(r.status == 200 && num(r.json, "inserted") == 3, "%d %s", r.status, r.body);
    const cJSON *risk = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r.json,
                                                                 "shipments"), 0), "risk");
    double p_lost = num(risk, "p_lost");
    CHECK_MSG(p_lost > 0.5, "p_lost %g for a parcel stalled 34 days, past its promise", p_lost);
    CHECK(strcmp(str(risk, "risk_level"), "high") == 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(risk, "reasons")) >= 1);
    CHECK_MSG(strstr(r.body, "no scan for") != NULL, "a stall reason: %s", r.body);
    char as_of[DRISK_TS_BUF];
    snprintf(as_of, sizeof as_of, "%s", str(risk, "as_of"));
    resp_free(&r);
    /* the same shipment given inline to /v1/score scores the same (one feature function) */
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\",\"declared_value\":2000,\"created_at\":\"%s\","
             "\"promised_at\":\"%s\",\"as_of\":\"%s\",\"scans\":[{\"ts\":\"%s\","
             "\"event\":\"label_created\",\"location\":\"R01-WH\"},{\"ts\":\"%s\","
             "\"event\":\"picked_up\",\"location\":\"R01-WH\"},{\"ts\":\"%s\","
             "\"event\":\"arrived_at_facility\",\"location\":\"R01-HUB\"}]}",
             ts(t0, t0s), ts(t0 + 5 * 86400, t1s), as_of, ts(t0, t2s),
             ts(t1, t3s), ts(t2, t4s));
    CHECK_MSG(r.status == 200 && fabs(num(r.json, "risk.p_lost") - p_lost) < 1e-6,
              "inline %g vs stored %g", num(r.json, "risk.p_lost"), p_lost);
    resp_free(&r);
    /* one validator for every input path (data/import.h's rules): NUL, control characters,
     * amounts beyond their caps and implausible years are refused with the field named */
    static const char *const refused[][3] = {
        { "\"carrier\":\"ap\\u0000ex\"", "400", "\\u0000 (NUL)" },
        { "\"carrier\":\"ap\\u0001ex\"", "422", "field carrier: holds a control character" },
        { "\"carrier\":\"apex\",\"weight_kg\":1e308", "422", "field weight_kg: 1e+308 is over" },
        { "\"carrier\":\"apex\",\"declared_value\":\"2e9\"", "422", "field declared_value: 2e9 is over" },
        { "\"carrier\":\"apex\",\"created_at\":\"9999-01-01T00:00:00Z\"", "422",
          "field created_at: is outside the years 2000 to 2099" },
        { "\"carrier\":\"apex\",\"created_at\":\"0000-01-01T00:00:00Z\"", "422",
          "field created_at: is outside the years 2000 to 2099" },
    };
    for (size_t v = 0; v < sizeof refused / sizeof refused[0]; v++) {
        r = post("/v1/score", KEY_A, "{%s,\"service\":\"ground\",\"origin\":\"R01\","
                 "\"destination\":\"R05\",\"as_of\":\"%s\"}", refused[v][0], as_of);
        CHECK_MSG(r.status == atoi(refused[v][1]) && r.body && strstr(r.body, refused[v][2]),
                  "%s: %d %s", refused[v][0], r.status, r.body ? r.body : "");
        resp_free(&r);
    }
    /* an escaped backslash before u0000 is text, not a NUL */
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\",\"order_id\":\"a\\\\u0000\",\"as_of\":\"%s\"}", as_of);
    CHECK_MSG(r.status == 200, "%d %s", r.status, r.body ? r.body : "");
    resp_free(&r);
    /* a number and its text are the same field value (numbers are written as text for the
     * importers' validators, with a fast path for up to six decimals) */
    static const char *const values[][2] = {
        { "2.5", "119.99" }, { "0.30000000000000004", "1e-7" }, { "0.000001", "1234567.125" },
    };
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
        struct resp a = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\","
                             "\"origin\":\"R01\",\"destination\":\"R05\",\"weight_kg\":%s,"
                             "\"declared_value\":%s,\"created_at\":\"%s\",\"as_of\":\"%s\"}",
                             values[v][0], values[v][1], t0s, as_of);
        struct resp b = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\","
                             "\"origin\":\"R01\",\"destination\":\"R05\",\"weight_kg\":\"%s\","
                             "\"declared_value\":\"%s\",\"created_at\":\"%s\",\"as_of\":\"%s\"}",
                             values[v][0], values[v][1], t0s, as_of);
        CHECK_MSG(a.status == 200 && b.status == 200 && strcmp(a.body, b.body) == 0,
                  "numbers %s, %s: %s vs %s", values[v][0], values[v][1], a.body, b.body);
        resp_free(&a);
        resp_free(&b);
    }
    r = http("POST", "/v1/scans", KEY_A, body, strlen(body)); /* the same webhook again */
    CHECK(r.status == 200 && num(r.json, "inserted") == 0 && num(r.json, "duplicates") == 3);
    CHECK(num(r.json, "alerts_raised") == 0); /* alerts do not repeat */
    resp_free(&r);
    CHECK(count(st, 1) == scans_before + 3);

    /* the claim recommendation for the valuable stalled parcel */
    r = http("GET", "/v1/recommendations", KEY_A, NULL, 0);
    CHECK(r.status == 200);
    const cJSON *recs = cJSON_GetObjectItem(r.json, "recommendations"), *rec = NULL;
    for (int i = 0; i < cJSON_GetArraySize(recs); i++)
        if (strcmp(str(cJSON_GetArrayItem(recs, i), "shipment_id"), "S-STALL") == 0)
            rec = cJSON_GetArrayItem(recs, i);
    CHECK_MSG(rec && strcmp(str(rec, "action"), "file_carrier_claim") == 0, "%s", r.body);
    CHECK(rec && num(rec, "expected_costs.file_carrier_claim") < num(rec, "expected_costs.wait"));
    CHECK(rec && str(rec, "deadline")[0] && strstr(str(rec, "why"), "claim"));
    resp_free(&r);
    r = http("GET", "/v1/recommendations", KEY_B, NULL, 0);
    CHECK(r.status == 200 && !strstr(r.body, "S-STALL"));
    resp_free(&r);

    /* an exception opens carrier_exception once; a second escalates it */
    r = post("/v1/scans", KEY_A, "{\"scans\":[{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\","
             "\"event\":\"exception\",\"reason\":\"weather_delay\",\"location\":\"R01-HUB\"}]}",
             ts(now - 7200, t3s));
    CHECK(r.status == 200 && num(r.json, "alerts_raised") == 1);
    resp_free(&r);
    r = post("/v1/scans", KEY_A, "{\"scans\":[{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\","
             "\"event\":\"exception\",\"reason\":\"delayed\",\"location\":\"R01-HUB\"}]}",
             ts(now - 5400, t3s));
    CHECK(r.status == 200 && num(r.json, "alerts_raised") == 0);
    resp_free(&r);
    r = http("GET", "/v1/alerts?since=0&limit=1000", KEY_A, NULL, 0);
    CHECK(r.status == 200);
    const cJSON *alerts = cJSON_GetObjectItem(r.json, "alerts");
    int exc = 0, exc_critical = 0, delay = 0, stalled_open = 0;
    int64_t cursor = 0;
    for (int i = 0; i < cJSON_GetArraySize(alerts); i++) {
        const cJSON *a = cJSON_GetArrayItem(alerts, i);
        if (strcmp(str(a, "shipment_id"), "S-STALL") != 0)
            continue;
        CHECK(num(a, "cursor") > (double)cursor); /* oldest first */
        cursor = (int64_t)num(a, "cursor");
        exc += strcmp(str(a, "type"), "carrier_exception") == 0;
        exc_critical += strcmp(str(a, "type"), "carrier_exception") == 0 &&
                        strcmp(str(a, "severity"), "critical") == 0;
        delay += strcmp(str(a, "type"), "delay_risk") == 0;
        stalled_open += strcmp(str(a, "type"), "stalled") == 0 && strcmp(str(a, "status"), "open") == 0;
    }
    CHECK_MSG(exc == 1 && exc_critical == 1, "one carrier_exception alert, escalated: %s", r.body);
    CHECK(delay == 1);
    CHECK(stalled_open == 0); /* the new scans ended the stall */
    int64_t next = (int64_t)num(r.json, "next_cursor");
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/alerts?since=%lld", (long long)next);
    r = http("GET", path, KEY_A, NULL, 0); /* resumed at the end: nothing new */
    CHECK(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "alerts")) == 0 &&
          cJSON_IsFalse(cJSON_GetObjectItem(r.json, "has_more")));
    resp_free(&r);
    /* one pagination scheme: limit, cursor, next_cursor, has_more; walking the feed one
     * alert a page visits every alert once, in order, and ends with has_more false */
    {
        int pages, seen;
        int ok = walk_pages(KEY_A, "/v1/alerts?limit=1", "alerts", "cursor", &seen, &pages);
        r = http("GET", "/v1/alerts?limit=1000", KEY_A, NULL, 0);
        int all = r.status == 200 ? cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "alerts")) : -1;
        resp_free(&r);
        CHECK_MSG(all >= 2 && seen == all && pages == all && ok,
                  "%d alerts in %d pages of one, %d in all", seen, pages, all);
    }
    r = http("GET", "/v1/alerts", KEY_B, NULL, 0);
    CHECK(r.status == 200 && !strstr(r.body, "S-STALL"));
    resp_free(&r);
    /* filters on the feed: every alert passes the ones asked for */
    {
        static const char *const q[][3] = { { "type=carrier_exception", "type", "carrier_exception" },
                                            { "severity=critical", "severity", "critical" },
                                            { "status=open", "status", "open" },
                                            { "status=cleared", "status", "cleared" } };
        for (size_t k = 0; k < sizeof q / sizeof q[0]; k++) {
            snprintf(path, sizeof path, "/v1/alerts?limit=1000&%s", q[k][0]);
            int n = filter_holds(KEY_A, path, "alerts", q[k][1], q[k][2]);
            CHECK_MSG(n >= 1, "%s: %d", q[k][0], n);
        }
        r = http("GET", "/v1/alerts?severity=loud", KEY_A, NULL, 0);
        CHECK(r.status == 400 && strstr(r.body, "warning, critical"));
        resp_free(&r);
        /* acknowledging: once; again changes nothing; another merchant's is not there */
        r = http("GET", "/v1/alerts?limit=1", KEY_A, NULL, 0);
        long long aid = (long long)num(cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "alerts"), 0), "id");
        CHECK(aid > 0 && cJSON_IsNull(cJSON_GetObjectItem(
                             cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "alerts"), 0),
                             "acknowledged_at")));
        resp_free(&r);
        snprintf(path, sizeof path, "/v1/alerts/%lld/ack", aid);
        r = post(path, KEY_A, "{}");
        char first[DRISK_TS_BUF] = "";
        CHECK(r.status == 200 && num(r.json, "id") == (double)aid &&
              cJSON_IsString(cJSON_GetObjectItem(r.json, "acknowledged_at")));
        snprintf(first, sizeof first, "%s", str(r.json, "acknowledged_at"));
        resp_free(&r);
        sleep(1);
        r = post(path, KEY_A, "{}");
        CHECK(r.status == 200 && strcmp(str(r.json, "acknowledged_at"), first) == 0);
        resp_free(&r);
        r = post(path, KEY_B, "{}");
        CHECK(r.status == 404);
        resp_free(&r);
        r = post("/v1/alerts/99999999/ack", KEY_A, "{}");
        CHECK(r.status == 404);
        resp_free(&r);
        r = http("GET", path, KEY_A, NULL, 0);
        CHECK(r.status == 405 && r.head && strstr(r.head, "\r\nAllow: POST"));
        resp_free(&r);
    }

    /* delivered, then an older scan arrives late: still delivered; alerts cleared */
    r = post("/v1/scans", KEY_A, "{\"scans\":[{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\","
             "\"event\":\"delivered\",\"location\":\"R05-DS1\"}]}", ts(t4, t4s));
    CHECK(r.status == 200);
    resp_free(&r);
    r = post("/v1/scans", KEY_A, "{\"scans\":[{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\","
             "\"event\":\"out_for_delivery\",\"location\":\"R05-DS1\"}]}", ts(t4 - 1800, t3s));
    CHECK(r.status == 200 && num(r.json, "inserted") == 1);
    resp_free(&r);
    r = http("GET", "/v1/shipments/S-STALL", KEY_A, NULL, 0);
    CHECK(r.status == 200 && strcmp(str(r.json, "shipment.outcome"), "delivered") == 0);
    CHECK(strcmp(str(r.json, "shipment.delivered_at"), t4s) == 0);
    CHECK(num(r.json, "risk.p_lost") == 0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "alerts")) == 0);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(r.json, "recommendation")));
    const cJSON *tl = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "shipment"), "timeline");
    int n_tl = cJSON_GetArraySize(tl);
    CHECK(n_tl == 7 && strcmp(str(cJSON_GetArrayItem(tl, n_tl - 1), "event"), "delivered") == 0);
    resp_free(&r);

    /* all or nothing: one bad scan in a batch stores none of it */
    scans_before = count(st, 1);
    r = post("/v1/scans", KEY_A, "{\"scans\":[{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\","
             "\"event\":\"in_transit\"},{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\","
             "\"event\":\"teleported\"}]}", ts(t2 + 60, t1s), ts(t2 + 120, t2s));
    CHECK(r.status == 422 && strstr(r.body, "scans[1]") && strstr(r.body, "event"));
    resp_free(&r);
    CHECK(count(st, 1) == scans_before);

    /* bad bodies: 4xx, and the server keeps serving */
    static const char *const bad[] = {
        "{\"scans\": [", "{\"scans\": \"x\"}", "[1,2,3]", "", "{\"scans\":[{\"shipment_id\":"
        "\"S-STALL\",\"ts\":12,\"event\":\"in_transit\"}]}", "{\"scans\":[{\"shipment_id\":[],"
        "\"ts\":\"2025-01-01T00:00:00Z\",\"event\":\"in_transit\"}]}", "{} trailing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = http("POST", "/v1/scans", KEY_A, bad[i], strlen(bad[i]));
        CHECK_MSG(r.status >= 400 && r.status < 500 && error_code(&r)[0], "body %zu: %d %s", i,
                  r.status, r.body);
        resp_free(&r);
    }
    static const char invalid_utf8[] = "{\"scans\":[{\"shipment_id\":\"S\xff\xfe\",\"ts\":"
                                       "\"2025-01-01T00:00:00Z\",\"event\":\"in_transit\"}]}";
    r = http("POST", "/v1/scans", KEY_A, invalid_utf8, strlen(invalid_utf8));
    CHECK(r.status == 400);
    resp_free(&r);
    r = post("/v1/shipments", KEY_A, "{\"shipment_id\":\"S-HUGE\",\"carrier\":\"apex\","
             "\"service\":\"ground\",\"origin\":\"R01\",\"destination\":\"R05\","
             "\"weight_kg\":1e999,\"created_at\":\"%s\",\"promised_at\":\"%s\"}",
             ts(t0, t0s), ts(t0 + 86400, t1s));
    CHECK_MSG(r.status == 400 || r.status == 422, "%d %s", r.status, r.body);
    resp_free(&r);
    size_t deep = 200000;
    char *nest = malloc(2 * deep);
    memset(nest, '[', deep);
    memset(nest + deep, ']', deep);
    r = http("POST", "/v1/scans", KEY_A, nest, 2 * deep);
    CHECK(r.status == 400);
    resp_free(&r);
    free(nest);
    size_t big = 10u << 20;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    r = http("POST", "/v1/scans", KEY_A, huge, big);
    CHECK_MSG(r.status == 413, "10 MB body: %d", r.status);
    resp_free(&r);
    free(huge);
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\",\"unknown_field\":{\"x\":[1,2]},\"declared_value\":\"12.5\"}");
    CHECK_MSG(r.status == 200, "unknown fields are ignored: %d %s", r.status, r.body);
    resp_free(&r);
    /* more than 1,000 scans in one request: 413, nothing stored */
    scans_before = count(st, 1);
    {
        size_t cap = 1001 * 120 + 32, len = 0;
        char *many = malloc(cap);
        len += (size_t)snprintf(many, cap, "{\"scans\":[");
        for (int i = 0; i < 1001; i++)
            len += (size_t)snprintf(many + len, cap - len,
                                    "%s{\"shipment_id\":\"S-STALL\",\"ts\":\"%s\",\"event\":\"in_transit\"}",
                                    i ? "," : "", ts(t0 + 100 + i, t1s));
        len += (size_t)snprintf(many + len, cap - len, "]}");
        r = http("POST", "/v1/scans", KEY_A, many, len);
        CHECK_MSG(r.status == 413 && strcmp(error_code(&r), "batch_too_large") == 0, "%d %s",
                  r.status, r.body);
        resp_free(&r);
        free(many);
    }
    CHECK(count(st, 1) == scans_before);
    /* a batch (PostgreSQL stores four scans or more with one statement): a repeat within it
     * and a repeat of a stored scan are duplicates, each new scan is counted once and its
     * delivery sets the outcome; one unknown shipment among them refuses them all */
    r = post("/v1/shipments", KEY_B, "{\"shipment_id\":\"S-BATCH\",\"carrier\":\"apex\","
             "\"service\":\"ground\",\"origin\":\"R01\",\"destination\":\"R05\","
             "\"created_at\":\"%s\",\"promised_at\":\"%s\"}", ts(t0, t0s), ts(t0 + 5 * 86400, t1s));
    CHECK_MSG(r.status == 200, "%d %s", r.status, r.body);
    resp_free(&r);
    {
        char a[4][DRISK_TS_BUF];
        for (int i = 0; i < 4; i++)
            ts(t0 + 3600 * (i + 1), a[i]);
#define BATCH_FMT                                                                          \
    "{\"scans\":[{\"shipment_id\":\"S-BATCH\",\"ts\":\"%s\",\"event\":\"picked_up\","            \
    "\"location\":\"R01-WH\"},{\"shipment_id\":\"S-BATCH\",\"ts\":\"%s\",\"event\":"          \
    "\"in_transit\",\"location\":\"R01-HUB\"},{\"shipment_id\":\"S-BATCH\",\"ts\":\"%s\","      \
    "\"event\":\"picked_up\",\"location\":\"R01-WH\"},{\"shipment_id\":\"%s\",\"ts\":\"%s\","  \
    "\"event\":\"delivered\",\"location\":\"R05-DS1\"}]}"
        scans_before = count(st, 1);
        r = post("/v1/scans", KEY_B, BATCH_FMT, a[0], a[1], a[0], "S-NOPE", a[3]);
        CHECK_MSG(r.status == 422 && strcmp(error_code(&r), "unknown_shipment") == 0 &&
                      strstr(r.body, "scans[3]"), "%d %s", r.status, r.body);
        resp_free(&r);
        CHECK(count(st, 1) == scans_before);
        r = post("/v1/scans", KEY_B, BATCH_FMT, a[0], a[1], a[0], "S-BATCH", a[3]);
        CHECK_MSG(r.status == 200 && num(r.json, "inserted") == 3 && num(r.json, "duplicates") == 1,
                  "%d %s", r.status, r.body);
        resp_free(&r);
        r = post("/v1/scans", KEY_B, BATCH_FMT, a[2], a[1], a[2], "S-BATCH", a[3]);
        CHECK_MSG(r.status == 200 && num(r.json, "inserted") == 1 && num(r.json, "duplicates") == 3,
                  "%d %s", r.status, r.body);
        resp_free(&r);
#undef BATCH_FMT
        CHECK(count(st, 1) == scans_before + 4);
        r = http("GET", "/v1/shipments/S-BATCH", KEY_B, NULL, 0);
        CHECK_MSG(r.status == 200 && strstr(r.body, "\"outcome\":\"delivered\""), "%d %s", r.status,
                  r.body);
        resp_free(&r);
    }
    /* a merchant_id other than the key's is refused, not written to the other merchant */
    ships_before = count(st, 0);
    r = post("/v1/shipments", KEY_A, "{\"shipments\":[{\"shipment_id\":\"S-X\",\"merchant_id\":"
             "\"other-merchant\",\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\",\"created_at\":\"%s\",\"promised_at\":\"%s\"}]}",
             ts(t0, t0s), ts(t0 + 86400, t1s));
    CHECK(r.status == 403 && strcmp(error_code(&r), "wrong_merchant") == 0 &&
          strstr(r.body, "shipments[0].merchant_id"));
    resp_free(&r);
    CHECK(count(st, 0) == ships_before);
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\",\"scans\":{\"ts\":1}}");
    CHECK(r.status == 400 && strstr(r.body, "scans: must be an array"));
    resp_free(&r);
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\",\"as_of\":\"yesterday\"}");
    CHECK(r.status == 422 && strstr(r.body, "as_of"));
    resp_free(&r);
    r = http("GET", "/healthz", NULL, NULL, 0);
    CHECK(r.status == 200);
    resp_free(&r);
    /* a place never seen falls back to its parent's history, and the reasons say so */
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"Z9999\"}");
    CHECK_MSG(r.status == 200 && strstr(r.body, "new destination Z9999: no outcome history yet, "
                                                 "scored with all parcels'"), "%s", r.body);
    resp_free(&r);
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\"}");
    {
        char *reasons = r.json ? cJSON_PrintUnformatted(cJSON_GetObjectItem(
                                     cJSON_GetObjectItem(r.json, "risk"), "reasons"))
                               : NULL;
        CHECK_MSG(r.status == 200 && reasons && !strstr(reasons, "no outcome history"), "%s",
                  r.body);
        cJSON_free(reasons);
    }
    resp_free(&r);

    /* stateless scoring stores nothing; with no scans it answers the pre-purchase question */
    ships_before = count(st, 0);
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\",\"scans\":[{\"ts\":\"%s\",\"event\":\"picked_up\","
             "\"location\":\"R01-WH\"}],\"as_of\":\"%s\",\"created_at\":\"%s\"}",
             ts(now - 7200, t1s), ts(now, t2s), ts(now - 10000, t3s));
    CHECK(r.status == 200);
    double pl = num(r.json, "risk.p_late");
    CHECK(pl >= 0 && pl <= 1 && str(r.json, "risk.eta")[0] && str(r.json, "risk.eta_p90")[0]);
    resp_free(&r);
    CHECK(count(st, 0) == ships_before);

    /* settings */
    r = http("GET", "/v1/settings", KEY_A, NULL, 0);
    CHECK(r.status == 200 && num(r.json, "stall_hours") == 72);
    CHECK(num(r.json, "claim_windows.usps.open_days") == 15);
    resp_free(&r);
    const char *put = "{\"stall_hours\": 24, \"claim_windows\": {\"apex\": {\"anchor\": "
                      "\"created\", \"open_days\": 1, \"close_days\": 20}}}";
    r = http("PUT", "/v1/settings", KEY_A, put, strlen(put));
    CHECK(r.status == 200 && num(r.json, "stall_hours") == 24);
    resp_free(&r);
    r = http("GET", "/v1/settings", KEY_A, NULL, 0);
    CHECK(num(r.json, "stall_hours") == 24 && num(r.json, "claim_windows.apex.close_days") == 20);
    resp_free(&r);
    r = http("GET", "/v1/settings", KEY_B, NULL, 0);
    CHECK(num(r.json, "stall_hours") == 72); /* per merchant */
    resp_free(&r);
    r = http("PUT", "/v1/settings", KEY_A, "{\"bogus\": 1}", 12);
    CHECK(r.status == 400 && strstr(r.body, "bogus"));
    resp_free(&r);
    r = http("PUT", "/v1/settings", KEY_A, "{\"late_alert\": 2}", 17);
    CHECK(r.status == 400);
    resp_free(&r);
    const char *backwards = "{\"claim_windows\": {\"ups\": {\"open_days\": 30, \"close_days\": 10}}}";
    r = http("PUT", "/v1/settings", KEY_A, backwards, strlen(backwards));
    CHECK(r.status == 400 && strstr(r.body, "close_days is before open_days"));
    resp_free(&r);
    r = http("GET", "/v1/settings", KEY_A, NULL, 0); /* a refused PUT changed nothing */
    CHECK(num(r.json, "claim_windows.ups.close_days") == 270 && num(r.json, "stall_hours") == 24);
    resp_free(&r);

    /* hot swap under load: no request fails while the active late model changes */
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, load_thread, NULL);
    r = post("/v1/models/1/activate", KEY_A, "{}");
    CHECK(r.status == 403);
    resp_free(&r);
    for (int i = 0; i < 10; i++) {
        snprintf(path, sizeof path, "/v1/models/%lld/activate", (long long)(i % 2 ? late1 : late2));
        r = post(path, KEY_ADMIN, "{}");
        CHECK_MSG(r.status == 200, "%d %s", r.status, r.body);
        resp_free(&r);
        usleep(50000);
    }
    atomic_store(&stop_load, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_MSG(atomic_load(&load_failed) == 0 && atomic_load(&load_ok) > 20,
              "%d ok, %d failed", atomic_load(&load_ok), atomic_load(&load_failed));
    r = http("GET", "/healthz", NULL, NULL, 0);
    CHECK(num(r.json, "models.late") == (double)late1);
    resp_free(&r);

    /* a model whose file is damaged is refused before the store names it, by the API and
     * by drisk models activate alike: the active model and /healthz stay as they were */
    {
        struct drisk_model_row good = { 0 };
        int64_t broken = 0;
        CHECK(drisk_store_model_get(st, late1, NULL, &good, &err) == DRISK_OK);
        if (good.payload_len > 100) {
            ((unsigned char *)good.payload)[good.payload_len / 2] ^= 0x5a;
            CHECK(drisk_store_model_add(st, &good, 0, &broken, &err) == DRISK_OK);
        }
        drisk_store_model_row_free(&good);
        snprintf(path, sizeof path, "/v1/models/%lld/activate", (long long)broken);
        r = post(path, KEY_ADMIN, "{}");
        CHECK_MSG(r.status == 422 && strstr(r.body, "invalid_model") &&
                  strstr(r.body, "cannot be activated"), "%d %s", r.status, r.body);
        resp_free(&r);
        CHECK(drisk_store_model_activate(st, broken, &err) == DRISK_EINVAL &&
              strstr(err.msg, "the active model stays"));
        struct drisk_model_row act = { 0 };
        CHECK(drisk_store_model_get(st, 0, "late", &act, &err) == DRISK_OK && act.id == late1);
        drisk_store_model_row_free(&act);
        r = http("GET", "/healthz", NULL, NULL, 0);
        CHECK(num(r.json, "models.late") == (double)late1);
        resp_free(&r);
    }

    /* metrics */
    r = http("GET", "/metrics", NULL, NULL, 0);
    CHECK(r.status == 200 && r.body &&
          strstr(r.body, "drisk_http_requests_total{route=\"score\",code=\"2xx\"}") &&
          strstr(r.body, "drisk_http_request_duration_seconds_bucket{route=\"scans\"") &&
          strstr(r.body, "drisk_scoring_duration_seconds_count") &&
          strstr(r.body, "drisk_alerts_raised_total{type=\"carrier_exception\"} 1") &&
          strstr(r.body, "drisk_active_model_id{target=\"late\"}"));
    resp_free(&r);

    /* activation from elsewhere (drisk models activate) is picked up within a second */
    CHECK(drisk_store_model_activate(st, late2, &err) == DRISK_OK);
    int swapped = 0;
    for (int i = 0; i < 40 && !swapped; i++) {
        usleep(100000);
        r = http("GET", "/healthz", NULL, NULL, 0);
        swapped = num(r.json, "models.late") == (double)late2;
        resp_free(&r);
    }
    CHECK(swapped);

    /* shadow scoring: late1 scored beside the active late2 on live traffic; the answer and
     * the stored risk are late2's, both scores are kept, /metrics shows both distributions,
     * and the live comparison reads them back once the outcome is known */
    CHECK(drisk_store_model_shadow(st, late2, 1, &err) == DRISK_EINVAL &&
          strstr(err.msg, "active model"));
    CHECK(drisk_store_model_shadow(st, late1, 1, &err) == DRISK_OK);
    int shadowed = 0;
    for (int i = 0; i < 40 && !shadowed; i++) {
        usleep(100000);
        r = http("GET", "/metrics", NULL, NULL, 0);
        const char *g = r.body ? strstr(r.body, "drisk_shadow_model_id{target=\"late\"} ") : NULL;
        shadowed = g && atoll(g + strlen("drisk_shadow_model_id{target=\"late\"} ")) == late1;
        resp_free(&r);
    }
    CHECK(shadowed);
    {
        int64_t c0 = now - 2 * 86400, p0 = now + 3 * 86400;
        r = post("/v1/shipments", KEY_A, "{\"shipment_id\":\"S-SHADOW\",\"carrier\":\"apex\","
                 "\"service\":\"ground\",\"origin\":\"R01\",\"destination\":\"R05\","
                 "\"created_at\":\"%s\",\"promised_at\":\"%s\"}", ts(c0, t0s), ts(p0, t1s));
        CHECK(r.status == 200);
        resp_free(&r);
        r = post("/v1/scans", KEY_A, "{\"scans\":[{\"shipment_id\":\"S-SHADOW\",\"ts\":\"%s\","
                 "\"event\":\"picked_up\",\"location\":\"R01-WH\"},{\"shipment_id\":\"S-SHADOW\","
                 "\"ts\":\"%s\",\"event\":\"exception\",\"location\":\"R01-HUB\"}]}",
                 ts(c0 + 3600, t2s), ts(now - 3600, t3s));
        CHECK_MSG(r.status == 200, "%d %s", r.status, r.body);
        const cJSON *rk = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r.json,
                                                                   "shipments"), 0), "risk");
        double answered = num(rk, "p_late");
        resp_free(&r);
        /* delivered (before its promise: on time), so the live comparison has a label */
        r = post("/v1/scans", KEY_A, "{\"scans\":[{\"shipment_id\":\"S-SHADOW\",\"ts\":\"%s\","
                 "\"event\":\"delivered\",\"location\":\"R05-DS\"}]}", ts(now - 60, t4s));
        CHECK_MSG(r.status == 200, "%d %s", r.status, r.body);
        resp_free(&r);
        struct drisk_eval_result live[2];
        CHECK_MSG(drisk_eval_live(st, "late", late2, late1, INT64_MIN, INT64_MAX, 0.5, live,
                                  &err) == DRISK_OK, "%s", err.msg);
        CHECK(live[0].rows >= 1 && live[0].rows == live[1].rows && live[0].scored &&
              live[1].scored);
        if (live[0].scored && live[1].scored && live[0].rows) {
            size_t last = live[0].rows - 1;
            CHECK(live[0].scored[last].y == 0.0 && live[1].scored[last].y == 0.0);
            CHECK_MSG(fabs(live[0].scored[last].score - answered) < 1e-9 &&
                      live[0].scored[last].score != live[1].scored[last].score,
                      "answered %g, stored active %g, shadow %g", answered,
                      live[0].scored[last].score, live[1].scored[last].score);
        }
        drisk_eval_result_free(&live[0]);
        drisk_eval_result_free(&live[1]);
        r = http("GET", "/metrics", NULL, NULL, 0);
        CHECK(r.body && strstr(r.body, "drisk_live_score_count{target=\"late\",role=\"shadow\"}") &&
              !strstr(r.body, "drisk_live_score_count{target=\"late\",role=\"shadow\"} 0\n") &&
              !strstr(r.body, "drisk_shadow_scorings_total 0\n"));
        resp_free(&r);
        /* neither the active model nor its shadow can be deleted */
        CHECK(drisk_store_model_delete(st, late1, &err) == DRISK_EINVAL &&
              strstr(err.msg, "active or shadow"));
        CHECK(drisk_store_model_delete(st, late2, &err) == DRISK_EINVAL);
        CHECK(drisk_store_model_shadow(st, late1, 0, &err) == DRISK_OK);
    }
    /* /v1/score says what the network has never seen, and learns the promise it was not
     * given from the lane's transit times */
    r = post("/v1/score", KEY_A, "{\"carrier\":\"unipost\",\"service\":\"standard\","
             "\"origin\":\"R01\",\"destination\":\"R05\"}");
    CHECK_MSG(r.status == 200 && strcmp(str(r.json, "promise"), "lane_transit") == 0 &&
              num(r.json, "lane_transit_h") > 12 && num(r.json, "lane_transit_h") < 24 * 20 &&
              num(r.json, "transit_h") == num(r.json, "lane_transit_h") &&
              cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "warnings")) == 0, "%s", r.body);
    double lane_h = num(r.json, "transit_h");
    resp_free(&r);
    /* a lane with no deliveries: the carrier x service's transit over all its lanes */
    r = post("/v1/score", KEY_A, "{\"carrier\":\"unipost\",\"service\":\"standard\","
             "\"origin\":\"ZZ9\",\"destination\":\"R05\"}");
    CHECK_MSG(r.status == 200 && strcmp(str(r.json, "promise"), "service_transit") == 0 &&
              num(r.json, "transit_h") > 12 && num(r.json, "transit_h") < 24 * 20 &&
              num(r.json, "transit_h") != lane_h && cJSON_IsNull(cJSON_GetObjectItem(r.json, "lane_transit_h")),
              "%s", r.body);
    resp_free(&r);
    r = post("/v1/score", KEY_A, "{\"carrier\":\"nocarrier\",\"service\":\"ground\",\"origin\":\"ZZ1\","
             "\"destination\":\"ZZ2\",\"created_at\":\"%s\"}", ts(now - 3600, t0s));
    CHECK_MSG(r.status == 200 && strcmp(str(r.json, "promise"), "default_5_days") == 0 &&
              strstr(r.body, "carrier and service \\\"nocarrier\\\"") &&
              strstr(r.body, "origin \\\"ZZ1\\\" has no outcome history") &&
              strstr(r.body, "destination \\\"ZZ2\\\"") && strstr(r.body, "promised 5 days"),
              "%s", r.body);
    resp_free(&r);
    r = post("/v1/score", KEY_A, "{\"carrier\":\"apex\",\"service\":\"ground\",\"origin\":\"R01\","
             "\"destination\":\"R05\",\"created_at\":\"%s\",\"promised_at\":\"%s\"}",
             ts(now - 3600, t0s), ts(now + 86400, t1s));
    CHECK(r.status == 200 && strcmp(str(r.json, "promise"), "given") == 0 &&
          strcmp(str(r.json, "promised_at"), t1s) == 0);
    resp_free(&r);
    r = post("/v1/score", KEY_A, "{\"carrier\":\"unipost\",\"service\":\"standard\",\"origin\":\"R01\","
             "\"destination\":\"ZZ3\",\"created_at\":\"%s\",\"promised_at\":\"%s\"}",
             ts(now - 3600, t0s), ts(now + 86400, t1s));
    CHECK_MSG(r.status == 200 && strcmp(str(r.json, "promise"), "given") == 0 &&
              strstr(r.body, "destination \\\"ZZ3\\\" has no outcome history") &&
              !strstr(r.body, "origin \\\"R01\\\""), "%s", r.body);
    resp_free(&r);

    /* GET /v1/shipments: the merchant's shipments, filtered and paginated */
    {
        /* the recent ones: S-SHADOW and the simulated history's last days */
        char recent[64];
        snprintf(recent, sizeof recent, "created_from=%s", ts(now - 3 * 86400, t0s));
        snprintf(path, sizeof path, "/v1/shipments?limit=1000&%s", recent);
        r = http("GET", path, KEY_A, NULL, 0);
        CHECK(r.status == 200 && cJSON_IsFalse(cJSON_GetObjectItem(r.json, "has_more")));
        int all = cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "shipments"));
        CHECK_MSG(all >= 2 && all < 1000 && strstr(r.body, "\"S-SHADOW\"") &&
                  !strstr(r.body, "\"S-STALL\""), "%d: %.300s", all, r.body);
        resp_free(&r);
        snprintf(path, sizeof path, "/v1/shipments?carrier=apex&created_from=%s&limit=1000",
                 ts(now - 40 * 86400, t0s));
        r = http("GET", path, KEY_A, NULL, 0);
        CHECK(r.status == 200 && strstr(r.body, "\"S-STALL\""));
        resp_free(&r);
        int seen, pages;
        snprintf(path, sizeof path, "/v1/shipments?%s&limit=1", recent);
        int walked = walk_pages(KEY_A, path, "shipments", NULL, &seen, &pages);
        CHECK_MSG(walked && seen == all && pages == all, "%d of %d shipments in %d pages", seen, all,
                  pages);
        /* each filter holds for every item it lets through */
        static const char *const filters[][3] = {
            { "status=delivered", "status", "delivered" },
            { "status=in_transit", "status", "in_transit" },
            { "carrier=APEX", "carrier", "apex" },
            { "risk_level=low", "risk.risk_level", "low" },
        };
        for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++) {
            snprintf(path, sizeof path, "/v1/shipments?%s", filters[f][0]);
            int n = filter_holds(KEY_A, path, "shipments", filters[f][1], filters[f][2]);
            CHECK_MSG(n >= 1, "%s: %d items", filters[f][0], n);
        }
        snprintf(path, sizeof path, "/v1/shipments?created_from=%s", ts(now + 3600, t0s));
        r = http("GET", path, KEY_A, NULL, 0);
        CHECK(r.status == 200 && cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "shipments")) == 0);
        resp_free(&r);
        r = http("GET", "/v1/shipments?status=flying", KEY_A, NULL, 0);
        CHECK(r.status == 400 && strstr(r.body, "in_transit, delivered, lost, returned"));
        resp_free(&r);
        r = http("GET", "/v1/shipments?created_to=yesterday", KEY_A, NULL, 0);
        CHECK(r.status == 400 && strstr(r.body, "created_to"));
        resp_free(&r);
        r = http("GET", "/v1/shipments?limit=1000", KEY_B, NULL, 0); /* isolation */
        CHECK(r.status == 200 && !strstr(r.body, "S-STALL") && !strstr(r.body, "S-SHADOW"));
        resp_free(&r);
    }
    /* cursors stay exact as JSON numbers: up to 2^53 - 1, given back as sent */
    r = http("GET", "/v1/alerts?since=9223372036854775000", KEY_A, NULL, 0);
    CHECK(r.status == 400 && strstr(r.body, "9007199254740991"));
    resp_free(&r);
    r = http("GET", "/v1/alerts?since=9007199254740991", KEY_A, NULL, 0);
    CHECK_MSG(r.status == 200 && strstr(r.body, "\"next_cursor\":9007199254740991"), "%s", r.body);
    resp_free(&r);
    /* a store held by another writer past the busy timeout: 503 with Retry-After, nothing
     * written (SQLite's whole-database write lock; PostgreSQL's writers lock rows) */
    int pg = store_target_pg();
    if (!pg) {
        CHECK(drisk_store_begin(st, &err) == DRISK_OK);
        r = post("/v1/scans", KEY_A, "{\"scans\":[{\"shipment_id\":\"S-1\",\"ts\":\"2025-03-01T10:00:00Z\","
                 "\"event\":\"in_transit\",\"location\":\"R01-HUB\"}]}");
        CHECK_MSG(r.status == 503 && r.head && strstr(r.head, "Retry-After: 1"), "%d %s", r.status,
                  r.head ? r.head : "");
        resp_free(&r);
        drisk_store_rollback(st);
    }

    /* the access log: a path with a line feed (URL-encoded) cannot forge a line of its own;
     * a client that leaves mid-body is counted as aborted, not as a server error (the one
     * 5xx of the scans route is the busy store's above) */
    r = http("GET", "/v1/shipments/X%0a2026-01-01T00:00:00Z%20FORGED%20GET%20/%20200", KEY_A, NULL, 0);
    CHECK(r.status == 404);
    resp_free(&r);
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            const char *h = "POST /v1/scans HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"scans\":";
            CHECK(write(fd, h, strlen(h)) == (ssize_t)strlen(h));
            usleep(100000);
        }
        if (fd >= 0)
            close(fd);
        usleep(200000);
    }
    r = http("GET", "/metrics", NULL, NULL, 0);
    CHECK_MSG(r.body && strstr(r.body, "drisk_http_requests_total{route=\"scans\",code=\"aborted\"} 1") &&
              strstr(r.body, pg ? "drisk_http_requests_total{route=\"scans\",code=\"5xx\"} 0"
                                : "drisk_http_requests_total{route=\"scans\",code=\"5xx\"} 1"), "%s",
              r.body ? r.body : "");
    resp_free(&r);
    drisk_server_stop(srv);
    {
        char line[1024];
        int forged = 0, escaped = 0;
        rewind(logf);
        while (fgets(line, sizeof line, logf)) {
            forged += strncmp(line, "2026-01-01T00:00:00Z FORGED", 27) == 0;
            escaped += strstr(line, " /v1/shipments/X\\x0a2026-01-01T00:00:00Z\\x20FORGED") != NULL;
        }
        CHECK_MSG(!forged && escaped == 1, "%d forged, %d escaped", forged, escaped);
        fclose(logf);
        opts.access_log = NULL; /* the servers started below log nowhere */
    }

    /* the sweep: a shipment written behind the server's back, with no scan since its
     * label 6 days ago, gets its stall and delay alerts without any request about it */
    struct drisk_shipment quiet = { 0 };
    snprintf(quiet.merchant, sizeof quiet.merchant, "%s", MERCHANT_A);
    snprintf(quiet.shipment_id, sizeof quiet.shipment_id, "S-QUIET");
    snprintf(quiet.carrier, sizeof quiet.carrier, "apex");
    snprintf(quiet.service, sizeof quiet.service, "ground");
    snprintf(quiet.origin, sizeof quiet.origin, "R01");
    snprintf(quiet.destination, sizeof quiet.destination, "R05");
    quiet.weight_kg = quiet.declared_value = NAN;
    quiet.created_at = now - 6 * 86400;
    quiet.promised_at = now - 3 * 86400;
    quiet.delivered_at = DRISK_TS_NONE;
    int64_t qid;
    enum drisk_upsert what;
    CHECK(drisk_store_upsert_shipment(st, &quiet, &qid, &what, &err) == DRISK_OK);
    opts.sweep_s = 1;
    CHECK_MSG(drisk_server_start(&opts, &srv, &err) == DRISK_OK, "%s", err.msg);
    port = drisk_server_port(srv);
    int stalled = 0, late_alert = 0;
    for (int i = 0; i < 50 && !(stalled && late_alert); i++) {
        usleep(100000);
        r = http("GET", "/v1/alerts?limit=1000", KEY_A, NULL, 0);
        const cJSON *list = cJSON_GetObjectItem(r.json, "alerts");
        stalled = late_alert = 0;
        for (int k = 0; k < cJSON_GetArraySize(list); k++) {
            const cJSON *a = cJSON_GetArrayItem(list, k);
            if (strcmp(str(a, "shipment_id"), "S-QUIET") != 0)
                continue;
            stalled |= strcmp(str(a, "type"), "stalled") == 0;
            late_alert |= strcmp(str(a, "type"), "delay_risk") == 0;
        }
        resp_free(&r);
    }
    CHECK_MSG(stalled && late_alert, "the sweep raised stalled %d, delay_risk %d", stalled,
              late_alert);
    drisk_server_stop(srv);
    drisk_store_free(st);
    if (resp_log)
        fclose(resp_log);
    CHECK_DONE();
}
