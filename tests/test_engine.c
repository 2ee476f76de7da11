/* engine/: RFC 3339 parsing (offsets, leap days, garbage), formatting, business days,
 * and the event vocabulary mapping of docs/VOCABULARY.md. */
#include <math.h>
#include <string.h>

#include "engine/policy.h"
#include "base/sha256.h"
#include "base/strmap.h"
#include "base/text.h"
#include "base/timeutil.h"
#include "engine/vocab.h"
#include "tests/check.h"

static int64_t ts(const char *s)
{
    int64_t v = -1;
    const char *why;
    if (drisk_ts_parse(s, strlen(s), &v, &why))
        return -1;
    return v;
}

static int ts_bad(const char *s)
{
    int64_t v;
    const char *why = NULL;
    return drisk_ts_parse(s, strlen(s), &v, &why) == -1 && why && why[0];
}

static void test_timestamps(void)
{
    char buf[DRISK_TS_BUF];
    CHECK(ts("1970-01-01T00:00:00Z") == 0);
    CHECK(ts("2025-03-14T09:26:53Z") == 1741944413);
    /* offsets: the same instant three ways */
    CHECK(ts("2025-03-14T11:26:53+02:00") == 1741944413);
    CHECK(ts("2025-03-14T06:26:53-03:00") == 1741944413);
    CHECK(ts("2025-03-14t09:26:53z") == 1741944413);
    CHECK(ts("2025-03-14 09:26:53Z") == 1741944413);
    CHECK(ts("2025-03-14T09:26:53.999Z") == 1741944413); /* fractions truncated */
    CHECK(ts("2025-03-14T09:26:53.1234567+00:00") == 1741944413);
    /* an offset that crosses midnight and a year boundary */
    CHECK(ts("2024-12-31T23:30:00-01:00") == ts("2025-01-01T00:30:00Z"));
    /* leap days */
    CHECK(ts("2024-02-29T12:00:00Z") == ts("2024-02-28T12:00:00Z") + 86400);
    CHECK(ts("2000-02-29T00:00:00Z") > 0);
    CHECK(ts_bad("2023-02-29T12:00:00Z"));
    CHECK(ts_bad("1900-02-29T12:00:00Z"));
    CHECK(ts("2024-03-01T00:00:00Z") - ts("2024-02-28T00:00:00Z") == 2 * 86400);
    /* leap second counts as the next minute's first */
    CHECK(ts("2016-12-31T23:59:60Z") == ts("2017-01-01T00:00:00Z"));
    /* garbage */
    CHECK(ts_bad(""));
    CHECK(ts_bad("yesterday"));
    CHECK(ts_bad("2025-03-14"));
    CHECK(ts_bad("2025-03-14T09:26:53"));       /* no offset */
    CHECK(ts_bad("2025-13-01T00:00:00Z"));
    CHECK(ts_bad("2025-04-31T00:00:00Z"));
    CHECK(ts_bad("2025-03-14T24:00:00Z"));
    CHECK(ts_bad("2025-03-14T09:60:00Z"));
    CHECK(ts_bad("2025-03-14T09:26:53+0200"));
    CHECK(ts_bad("2025-03-14T09:26:53+24:00"));
    CHECK(ts_bad("2025-03-14T09:26:53Zjunk"));
    CHECK(ts_bad("2025-03-14T09:26:53."));
    CHECK(ts_bad("25-03-14T09:26:53Z"));
    CHECK(ts_bad("2025/03/14T09:26:53Z"));
    /* exact length: a NUL inside the slice is garbage, not an end */
    int64_t v;
    const char *why;
    /* found by fuzz_ts: a local year 0000 or 9999 whose offset moves it outside 0000-9999
     * UTC, which cannot be written back */
    CHECK(ts_bad("0000-01-01T00:00:00+23:59") && ts_bad("9999-12-31T23:59:59-00:01"));
    CHECK(!ts_bad("0000-01-01T00:00:00Z") && !ts_bad("9999-12-31T23:59:59Z"));
    CHECK(drisk_ts_parse("2025-03-14T09:26:53Z\0x", 22, &v, &why) == -1);
    CHECK(drisk_ts_parse("2025-03-14T09:26:53Zxx", 20, &v, &why) == 0 && v == 1741944413);
    /* format round trip, before and after the epoch */
    CHECK(strcmp(drisk_ts_format(1741944413, buf), "2025-03-14T09:26:53Z") == 0);
    CHECK(strcmp(drisk_ts_format(-1, buf), "1969-12-31T23:59:59Z") == 0);
    CHECK(strcmp(drisk_ts_format(ts("2024-02-29T23:59:59Z"), buf), "2024-02-29T23:59:59Z") == 0);
    for (int64_t t = -86400 * 400; t < 86400LL * 365 * 60; t += 86400 * 7 + 3607) {
        drisk_ts_format(t, buf);
        if (ts(buf) != t) {
            CHECK_MSG(0, "round trip of %lld gave %s", (long long)t, buf);
            break;
        }
    }
    CHECK(drisk_date_or_ts_parse("2025-01-01", &v, &why) == 0 && v == ts("2025-01-01T00:00:00Z"));
    CHECK(drisk_date_or_ts_parse("2025-1-1", &v, &why) == -1);
}

static void test_calendar(void)
{
    int64_t mon = ts("2025-03-10T10:00:00Z"); /* a Monday */
    CHECK(drisk_weekday(mon) == 0);
    CHECK(drisk_weekday(ts("2025-03-16T23:59:59Z")) == 6);
    CHECK(drisk_weekday(ts("1969-12-31T12:00:00Z")) == 2); /* a Wednesday, before the epoch */
    CHECK(drisk_is_business_day(mon));
    CHECK(!drisk_is_business_day(ts("2025-03-15T10:00:00Z")));  /* Saturday */
    CHECK(!drisk_is_business_day(ts("2025-12-25T10:00:00Z")));  /* holiday */
    CHECK(!drisk_is_business_day(ts("2026-01-01T10:00:00Z")));
    /* Friday + 1 business day = Monday; Monday + 5 = next Monday */
    CHECK(drisk_add_business_days(ts("2025-03-14T18:00:00Z"), 1) == ts("2025-03-17T00:00:00Z"));
    CHECK(drisk_add_business_days(mon, 5) == ts("2025-03-17T00:00:00Z"));
    CHECK(drisk_add_business_days(mon, 0) == ts("2025-03-10T00:00:00Z"));
    /* across Christmas: Wed 24 Dec 2025 + 1 = Mon 29 Dec (25, 26 holidays, 27-28 weekend) */
    CHECK(drisk_add_business_days(ts("2025-12-24T09:00:00Z"), 1) == ts("2025-12-29T00:00:00Z"));
}

static int ev(const char *s)
{
    return drisk_event_parse(s, strlen(s));
}

static void test_vocabulary(void)
{
    /* every row of docs/VOCABULARY.md */
    for (int e = 1; e <= DRISK_EVENT_COUNT; e++)
        CHECK(ev(drisk_event_name(e)) == e);
    CHECK(ev("InfoReceived") == DRISK_EVENT_LABEL_CREATED);
    CHECK(ev("Pending") == DRISK_EVENT_LABEL_CREATED);
    CHECK(ev("InTransit") == DRISK_EVENT_IN_TRANSIT);
    CHECK(ev("OutForDelivery") == DRISK_EVENT_OUT_FOR_DELIVERY);
    CHECK(ev("AttemptFail") == DRISK_EVENT_DELIVERY_ATTEMPTED);
    CHECK(ev("Delivered") == DRISK_EVENT_DELIVERED);
    CHECK(ev("AvailableForPickup") == DRISK_EVENT_AVAILABLE_FOR_PICKUP);
    CHECK(ev("Exception") == DRISK_EVENT_EXCEPTION);
    CHECK(ev("Expired") == DRISK_EVENT_LOST);
    CHECK(ev("InTransit_002") == DRISK_EVENT_IN_TRANSIT);
    CHECK(ev("AttemptFail_001") == DRISK_EVENT_DELIVERY_ATTEMPTED);
    CHECK(ev("pre_transit") == DRISK_EVENT_LABEL_CREATED);
    CHECK(ev("in_transit") == DRISK_EVENT_IN_TRANSIT);
    CHECK(ev("out_for_delivery") == DRISK_EVENT_OUT_FOR_DELIVERY);
    CHECK(ev("delivered") == DRISK_EVENT_DELIVERED);
    CHECK(ev("available_for_pickup") == DRISK_EVENT_AVAILABLE_FOR_PICKUP);
    CHECK(ev("return_to_sender") == DRISK_EVENT_RETURN_TO_SENDER);
    CHECK(ev("failure") == DRISK_EVENT_EXCEPTION);
    CHECK(ev("cancelled") == DRISK_EVENT_EXCEPTION);
    CHECK(ev("PRE_TRANSIT") == DRISK_EVENT_LABEL_CREATED);
    CHECK(ev("TRANSIT") == DRISK_EVENT_IN_TRANSIT);
    CHECK(ev("DELIVERED") == DRISK_EVENT_DELIVERED);
    CHECK(ev("RETURNED") == DRISK_EVENT_RETURN_TO_SENDER);
    CHECK(ev("FAILURE") == DRISK_EVENT_EXCEPTION);
    CHECK(ev("Out-For-Delivery") == DRISK_EVENT_OUT_FOR_DELIVERY);
    /* the finer codes of the aggregators' webhooks */
    CHECK(ev("received_at_origin_facility") == DRISK_EVENT_PICKED_UP);
    CHECK(ev("departed_origin_facility") == DRISK_EVENT_DEPARTED_FACILITY);
    CHECK(ev("arrived_at_destination_facility") == DRISK_EVENT_ARRIVED_AT_FACILITY);
    CHECK(ev("received_at_destination_facility") == DRISK_EVENT_ARRIVED_AT_FACILITY);
    CHECK(ev("information_received") == DRISK_EVENT_LABEL_CREATED);
    CHECK(ev("package_accepted") == DRISK_EVENT_PICKED_UP);
    CHECK(ev("package_arrived") == DRISK_EVENT_ARRIVED_AT_FACILITY);
    CHECK(ev("package_departed") == DRISK_EVENT_DEPARTED_FACILITY);
    CHECK(ev("package_processing") == DRISK_EVENT_IN_TRANSIT);
    CHECK(ev("package_processed") == DRISK_EVENT_IN_TRANSIT);
    CHECK(ev("pickup_available") == DRISK_EVENT_AVAILABLE_FOR_PICKUP);
    CHECK(ev("notice_left") == DRISK_EVENT_DELIVERY_ATTEMPTED);
    CHECK(ev("package_lost") == DRISK_EVENT_LOST);
    CHECK(ev("package_undeliverable") == DRISK_EVENT_EXCEPTION);
    CHECK(ev("package_disposed") == DRISK_EVENT_EXCEPTION);
    CHECK(ev("package_damaged") == DRISK_EVENT_EXCEPTION);
    CHECK(ev("Exception_010") == DRISK_EVENT_RETURN_TO_SENDER);
    CHECK(ev("Exception_011") == DRISK_EVENT_RETURN_TO_SENDER);
    CHECK(ev("Exception_013") == DRISK_EVENT_LOST);
    CHECK(ev("Exception_005") == DRISK_EVENT_EXCEPTION);
    CHECK(ev("weather_delay") == 0 && ev("status_update") == 0 && ev("delayed") == 0);
    /* unknown */
    CHECK(ev("") == 0);
    CHECK(ev("unknown") == 0);
    CHECK(ev("UNKNOWN") == 0);
    CHECK(ev("teleported") == 0);
    CHECK(ev("InTransit_x") == 0);
    CHECK(ev("deliv\xc3\xa9red") == 0);
    CHECK(drisk_reason_parse("weather_delay", 13) == DRISK_REASON_WEATHER_DELAY);
    CHECK(drisk_reason_parse("Recipient Unavailable", 21) == DRISK_REASON_RECIPIENT_UNAVAILABLE);
    CHECK(drisk_reason_parse("", 0) == DRISK_REASON_NONE);
    CHECK(drisk_reason_parse("gremlins", 8) == -1);
    CHECK(drisk_outcome_parse("Delivered", 9) == DRISK_OUTCOME_DELIVERED);
    CHECK(drisk_outcome_parse("lost", 4) == DRISK_OUTCOME_LOST);
    CHECK(drisk_outcome_parse("stolen", 6) == -1);
}

static void test_text(void)
{
    double d;
    CHECK(drisk_utf8_valid("S\xc3\xa3o Paulo", 10));
    CHECK(!drisk_utf8_valid("\xc3", 1));
    CHECK(!drisk_utf8_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!drisk_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!drisk_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
    CHECK(drisk_utf8_valid("\xf0\x9f\x93\xa6", 4));  /* a parcel emoji */
    /* bad bytes after, between and at the end of runs of eight ASCII bytes (read eight
     * at a time): each at every offset of a 24-byte text */
    for (size_t at = 0; at < 24; at++) {
        char text[25];
        memset(text, 'a', 24);
        text[24] = '\0';
        text[at] = (char)0xff;
        CHECK_MSG(!drisk_utf8_valid(text, 24), "0xff at %zu", at);
        text[at] = 'a';
        if (at + 1 < 24) {
            text[at] = (char)0xc3; /* a valid two-byte character, then a truncated one */
            text[at + 1] = (char)0xa3;
            CHECK_MSG(drisk_utf8_valid(text, 24), "c3 a3 at %zu", at);
            text[at + 1] = 'a';
            CHECK_MSG(!drisk_utf8_valid(text, 24), "c3 alone at %zu", at);
        }
    }
    CHECK(drisk_parse_double(" 12.5 ", 6, &d) == 0 && d == 12.5);
    CHECK(drisk_parse_double("1e3", 3, &d) == 0 && d == 1000);
    CHECK(drisk_parse_double("12,5", 4, &d) == -1);
    CHECK(drisk_parse_double("nan", 3, &d) == -1);
    CHECK(drisk_parse_double("1e999", 5, &d) == -1);
    CHECK(drisk_parse_double("0x10", 4, &d) == -1);
    CHECK(drisk_parse_double("", 0, &d) == -1);
}

static void test_strmap(void)
{
    struct drisk_strmap *m = drisk_strmap_create(1000);
    char key[32];
    int64_t v = -1;
    CHECK(m && drisk_strmap_count(m) == 0 && !drisk_strmap_find(m, "a", &v));
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK(drisk_strmap_put(m, key, i * 3) == 0);
    }
    CHECK(drisk_strmap_put(m, "one too many", 1) == -1); /* the cap holds */
    CHECK(drisk_strmap_put(m, "k7", 70) == 0);            /* replacing is allowed when full */
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        bad += !drisk_strmap_find(m, key, &v) || v != (i == 7 ? 70 : i * 3);
    }
    CHECK(bad == 0 && drisk_strmap_count(m) == 1000 && !drisk_strmap_find(m, "k1000", &v));
    drisk_strmap_clear(m);
    CHECK(drisk_strmap_count(m) == 0 && !drisk_strmap_find(m, "k1", &v));
    CHECK(drisk_strmap_put(m, "k1", 5) == 0 && drisk_strmap_find(m, "k1", &v) && v == 5);
    drisk_strmap_free(m);
    drisk_strmap_free(NULL);
    CHECK(drisk_fnv1a(DRISK_FNV_SEED, "") == DRISK_FNV_SEED);
    CHECK(drisk_fnv1a(DRISK_FNV_SEED, "a") == 0xaf63dc4c8601ec8cULL); /* FNV-1a 64 test vector */
}

/* SHA-256 against the FIPS 180-4 / NIST example vectors (one, two and many blocks), lengths
 * across the padding boundary, and the constant-time comparison. */
static void hex(const unsigned char *d, char *out)
{
    for (int i = 0; i < DRISK_SHA256_BYTES; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_sha256(void)
{
    static const struct { const char *msg; const char *digest; } v[] = {
        { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
        { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
        { "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
          "klmnopqrlmnopqrsmnopqrstnopqrstu",
          "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
    };
    unsigned char d[DRISK_SHA256_BYTES];
    char text[2 * DRISK_SHA256_BYTES + 1];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        drisk_sha256(v[i].msg, strlen(v[i].msg), d);
        hex(d, text);
        CHECK_MSG(strcmp(text, v[i].digest) == 0, "sha256(\"%s\") = %s", v[i].msg, text);
    }
    /* a million "a": many full blocks */
    static char million[1000000];
    memset(million, 'a', sizeof million);
    drisk_sha256(million, sizeof million, d);
    hex(d, text);
    CHECK(strcmp(text, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    /* lengths around the padding boundary differ from each other */
    unsigned char prev[DRISK_SHA256_BYTES] = { 0 };
    int distinct = 1;
    for (size_t n = 50; n < 70; n++) {
        drisk_sha256(million, n, d);
        distinct &= memcmp(d, prev, sizeof d) != 0;
        memcpy(prev, d, sizeof d);
    }
    CHECK(distinct);
    unsigned char a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 3, 5 };
    CHECK(drisk_equal_ct(a, a, 4) && !drisk_equal_ct(a, b, 4) && drisk_equal_ct(a, b, 3));

    /* incremental hashing in uneven pieces gives the one-shot digest */
    struct drisk_sha256_ctx c;
    drisk_sha256_init(&c);
    for (size_t off = 0, step = 1; off < sizeof million; off += step, step = step * 3 % 997 + 1)
        drisk_sha256_update(&c, million + off, off + step > sizeof million ? sizeof million - off : step);
    drisk_sha256_final(&c, d);
    hex(d, text);
    CHECK(strcmp(text, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);

    /* HMAC-SHA256, RFC 4231 test cases 1, 2 and 6 (a key longer than a block), the message
     * in two parts as webhook signatures pass it */
    static const struct { const char *key, *msg, *mac; } h[] = {
        { "\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b",
          "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
        { "Jefe", "what do ya want for nothing?",
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
        { NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
    };
    unsigned char big[131];
    memset(big, 0xaa, sizeof big);
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        const void *key = h[i].key ? (const void *)h[i].key : big;
        size_t klen = h[i].key ? strlen(h[i].key) : sizeof big, mlen = strlen(h[i].msg);
        const void *parts[2] = { h[i].msg, h[i].msg + mlen / 2 };
        const size_t lens[2] = { mlen / 2, mlen - mlen / 2 };
        drisk_hmac_sha256_parts(key, klen, parts, lens, 2, d);
        drisk_hex(d, sizeof d, text);
        CHECK_MSG(strcmp(text, h[i].mac) == 0, "hmac case %zu = %s", i, text);
    }
    char r1[65], r2[65];
    CHECK(drisk_random_hex(32, r1) == 0 && drisk_random_hex(32, r2) == 0 && strlen(r1) == 64 &&
          strcmp(r1, r2) != 0);
}

/* The expected-cost recommendation and the carriers' claim windows (docs/POLICY.md). */
static void test_policy(void)
{
    struct drisk_settings s;
    drisk_settings_default(&s);
    /* claim success: the prior alone, then moved by settled claims, per carrier */
    double paid, settled;
    CHECK(drisk_claim_success(&s, "ups", &paid, &settled) == 0.9 && paid == 0 && settled == 0);
    s.n_claims = 1;
    snprintf(s.claims[0].carrier, sizeof s.claims[0].carrier, "ups");
    s.claims[0].paid = 1;
    s.claims[0].denied = 5;
    CHECK(fabs(drisk_claim_success(&s, "UPS", &paid, &settled) - 10.0 / 16.0) < 1e-12 &&
          paid == 1 && settled == 6);
    CHECK(drisk_claim_success(&s, "fedex", NULL, NULL) == 0.9);
    s.claim_prior_n = 0; /* no prior: the observed rate */
    CHECK(fabs(drisk_claim_success(&s, "ups", NULL, NULL) - 1.0 / 6.0) < 1e-12);
    s.claims[0].paid = s.claims[0].denied = 0;
    CHECK(drisk_claim_success(&s, "ups", NULL, NULL) == 0.9);
    drisk_settings_default(&s);
    struct drisk_shipment sh;
    memset(&sh, 0, sizeof sh);
    strcpy(sh.carrier, "usps");
    sh.weight_kg = NAN;
    sh.declared_value = 1000;
    sh.created_at = 1700000000;
    sh.promised_at = sh.created_at + 3 * 86400;
    struct drisk_recommendation r;

    /* a likely loss of a valuable parcel, inside USPS's window (15..60 days): claim */
    drisk_recommend(&s, &sh, 0.95, 0.9, sh.created_at + 20 * 86400, &r);
    CHECK(r.available[DRISK_ACTION_CLAIM] && r.action == DRISK_ACTION_CLAIM);
    CHECK(r.deadline == sh.created_at + 60 * 86400);
    CHECK(strstr(r.why, "usps") != NULL);
    /* the same on day 10: no claim yet; for goods worth far more than a customer, telling
     * the customer beats paying for a replacement now, and the window's opening is said */
    drisk_recommend(&s, &sh, 0.95, 0.9, sh.created_at + 10 * 86400, &r);
    CHECK(!r.available[DRISK_ACTION_CLAIM] && r.action == DRISK_ACTION_NOTIFY);
    CHECK(r.claim_opens == sh.created_at + 15 * 86400 && strstr(r.why, "from") != NULL);
    /* after the window: no claim */
    drisk_recommend(&s, &sh, 0.95, 0.9, sh.created_at + 61 * 86400, &r);
    CHECK(!r.available[DRISK_ACTION_CLAIM]);
    /* on track: wait, and every cost is the formula's */
    drisk_recommend(&s, &sh, 0.02, 0.001, sh.created_at + 86400, &r);
    CHECK(r.action == DRISK_ACTION_WAIT);
    double replace = 0.6 * 1000 + 8;
    CHECK(fabs(r.cost[DRISK_ACTION_WAIT] - (0.001 * (replace + 0.5 * 40) + 0.019 * 0.1 * 40)) < 1e-9);
    CHECK(fabs(r.cost[DRISK_ACTION_CLAIM] - (r.cost[DRISK_ACTION_RESHIP] + 5 - 0.001 * 0.9 * 1000)) < 1e-9);
    /* likely late, not lost: tell the customer before the promise */
    drisk_recommend(&s, &sh, 0.9, 0.01, sh.created_at + 86400, &r);
    CHECK(r.action == DRISK_ACTION_NOTIFY && r.deadline == sh.promised_at);
    /* a cheap parcel far from home: refund beats reshipping */
    s.reship_cost = 100;
    sh.declared_value = 20;
    drisk_recommend(&s, &sh, 0.99, 0.95, sh.created_at + 10 * 86400, &r);
    CHECK(r.action == DRISK_ACTION_REFUND);
    /* UPS counts from the scheduled delivery; an unknown carrier gets the default window */
    CHECK(drisk_settings_window(&s, "UPS")->anchor == DRISK_ANCHOR_PROMISED);
    CHECK(drisk_settings_window(&s, "apex") == &s.default_window);

    /* risk level and alert transitions */
    CHECK(drisk_risk_level(&s, 0.1, 0.01) == DRISK_RISK_LOW);
    CHECK(drisk_risk_level(&s, 0.4, 0.01) == DRISK_RISK_MEDIUM);
    CHECK(drisk_risk_level(&s, 0.1, 0.6) == DRISK_RISK_HIGH);
    CHECK(drisk_alert_transition(DRISK_ALERT_DELAY_RISK, 1, 1, 0) == 0);  /* no repeat */
    CHECK(drisk_alert_transition(DRISK_ALERT_DELAY_RISK, 1, 2, 0) == 1);  /* escalate */
    CHECK(drisk_alert_transition(DRISK_ALERT_DELAY_RISK, 2, 0, 0) == 0);  /* no flapping */
    CHECK(drisk_alert_transition(DRISK_ALERT_STALLED, 1, 0, 0) == 2);     /* a scan ends a stall */
    CHECK(drisk_alert_transition(DRISK_ALERT_LIKELY_LOST, 2, 2, 1) == 2); /* delivered */

    struct drisk_alert_want w[DRISK_ALERT_COUNT];
    struct drisk_scan_event ev[2] = { { sh.created_at, 1, 1, 0 },
                                      { sh.created_at + 3600, 1, 10, 1 } };
    drisk_alerts_decide(&s, &sh, ev, 2, 0.6, 0.1, sh.created_at + 4 * 86400, w);
    CHECK(w[DRISK_ALERT_DELAY_RISK].severity == DRISK_SEVERITY_CRITICAL); /* past the promise */
    CHECK(w[DRISK_ALERT_LIKELY_LOST].severity == DRISK_SEVERITY_NONE);
    CHECK(w[DRISK_ALERT_CARRIER_EXCEPTION].severity == DRISK_SEVERITY_WARNING &&
          strstr(w[DRISK_ALERT_CARRIER_EXCEPTION].message, "weather_delay"));
    CHECK(w[DRISK_ALERT_STALLED].severity == DRISK_SEVERITY_WARNING); /* 95 h: over 72, under 144 */
}

int main(void)
{
    test_timestamps();
    test_calendar();
    test_vocabulary();
    test_text();
    test_strmap();
    test_sha256();
    test_policy();
    CHECK_DONE();
}
