/* Aggregator tracking webhooks in (api/inbound.h). Each reader picks out the few fields
 * drisk learns from and writes them as interchange objects; anything it cannot place is
 * left out or reported in `skipped`, never guessed. */
#include "api/inbound.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/sha256.h"
#include "base/timeutil.h"
#include "engine/shipment.h"
#include "engine/vocab.h"

#define SHIPPO_TOLERANCE_S 300

const char *const inbound_names[INBOUND_COUNT] = { "easypost", "aftership", "shippo" };

int inbound_provider_parse(const char *name)
{
    for (int i = 0; i < INBOUND_COUNT; i++)
        if (strcmp(name, inbound_names[i]) == 0)
            return i;
    return -1;
}

const char *inbound_signature_header(int provider)
{
    static const char *const h[INBOUND_COUNT] = { "X-Hmac-Signature", "aftership-hmac-sha256",
                                                  "Shippo-Auth-Signature" };
    return provider >= 0 && provider < INBOUND_COUNT ? h[provider] : "";
}

/* ---- signatures ---- */

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? a[v & 63] : '=';
    }
    out[o] = '\0';
}

static int same_text(const char *want, const char *got)
{
    size_t n = strlen(want);
    return strlen(got) == n && drisk_equal_ct(want, got, n);
}

int inbound_verify(int provider, const char *secret, const char *header, const char *token,
                   const char *body, size_t len, int64_t now, struct api_error *e)
{
    unsigned char mac[DRISK_SHA256_BYTES];
    char want[128];
    const char *name = inbound_signature_header(provider);
    if (provider == INBOUND_SHIPPO && !header) {
        /* Shippo signs only when its support turns that on; its documented default is a
         * secret token in the webhook URL */
        if (token && same_text(secret, token))
            return 0;
        return api_fail(e, 401, "bad_signature", "no %s header and no matching ?token= in the "
                        "URL: give Shippo this route's URL with ?token=SECRET (the secret set "
                        "with PUT /v1/inbound/shippo/secret)", name);
    }
    if (!header)
        return api_fail(e, 401, "bad_signature", "no %s header: a %s webhook must be signed "
                        "(set the same secret in %s and with PUT /v1/inbound/%s/secret)", name,
                        inbound_names[provider], inbound_names[provider], inbound_names[provider]);
    if (provider == INBOUND_SHIPPO) {
        long long t = 0;
        const char *v1 = strstr(header, "v1=");
        if (sscanf(header, "t=%lld", &t) != 1 || !v1)
            return api_fail(e, 401, "bad_signature", "%s: want t=UNIX_SECONDS,v1=HEX", name);
        if (t < now - SHIPPO_TOLERANCE_S || t > now + SHIPPO_TOLERANCE_S)
            return api_fail(e, 401, "bad_signature", "%s: its time t=%lld is more than %d s "
                            "from now (a replay, or a clock far off)", name, t, SHIPPO_TOLERANCE_S);
        char ts[24];
        int n = snprintf(ts, sizeof ts, "%lld.", t);
        const void *parts[2] = { ts, body };
        const size_t lens[2] = { (size_t)n, len };
        drisk_hmac_sha256_parts(secret, strlen(secret), parts, lens, 2, mac);
        drisk_hex(mac, sizeof mac, want);
        char got[80] = "";
        sscanf(v1 + 3, "%79[0-9a-fA-F]", got);
        for (char *p = got; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (same_text(want, got))
            return 0;
    } else {
        const void *parts[1] = { body };
        const size_t lens[1] = { len };
        drisk_hmac_sha256_parts(secret, strlen(secret), parts, lens, 1, mac);
        if (provider == INBOUND_EASYPOST) {
            memcpy(want, "hmac-sha256-hex=", 17);
            drisk_hex(mac, sizeof mac, want + 16);
        } else {
            base64(mac, sizeof mac, want);
        }
        if (same_text(want, header))
            return 0;
    }
    return api_fail(e, 401, "bad_signature", "%s does not match the body signed with this "
                    "merchant's %s secret: check the secret (PUT /v1/inbound/%s/secret) and "
                    "that nothing re-encodes the body on the way", name, inbound_names[provider],
                    inbound_names[provider]);
}

/* ---- reading bodies ---- */

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static const cJSON *obj(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(v) ? v : NULL;
}

/* An RFC 3339 time, or a date alone; a time without a zone (AfterShip's checkpoint_time
 * is the scan's local time) is read as UTC and capped at `cap` (when the provider
 * recorded it, UTC), so that a zone east of UTC never puts a scan in the future.
 * DRISK_TS_NONE when s is absent or unreadable. */
static int64_t when(const char *s, int64_t cap)
{
    int64_t t;
    const char *why;
    if (!s)
        return DRISK_TS_NONE;
    size_t n = strlen(s);
    if (drisk_ts_parse(s, n, &t, &why) == 0)
        return t;
    char buf[48];
    if (n == 10 && snprintf(buf, sizeof buf, "%sT00:00:00Z", s) > 0 &&
        drisk_ts_parse(buf, strlen(buf), &t, &why) == 0)
        return t;
    if (n >= 19 && n < 40 && snprintf(buf, sizeof buf, "%sZ", s) > 0 &&
        drisk_ts_parse(buf, strlen(buf), &t, &why) == 0)
        return cap != DRISK_TS_NONE && t > cap ? cap : t;
    return DRISK_TS_NONE;
}

/* An estimated delivery: a date (or midnight UTC, how the providers send a date) means by
 * the end of that day. */
static int64_t estimate(const char *s)
{
    int64_t t = when(s, DRISK_TS_NONE);
    if (t != DRISK_TS_NONE && t % 86400 == 0)
        t += 86400 - 1;
    return t;
}

static void add_ts(cJSON *o, const char *key, int64_t t)
{
    char buf[DRISK_TS_BUF];
    cJSON_AddStringToObject(o, key, drisk_ts_format(t, buf));
}

/* A place code from a location object: its postal code, else "CITY ST", uppercase; ""
 * when it names none. */
static void place(const cJSON *loc, char *out, size_t cap)
{
    const char *zip = str(loc, "zip") ? str(loc, "zip") : str(loc, "postal_code");
    const char *city = str(loc, "city"), *state = str(loc, "state");
    if (zip)
        snprintf(out, cap, "%s", zip);
    else if (city)
        snprintf(out, cap, "%s%s%s", city, state ? " " : "", state ? state : "");
    else
        out[0] = '\0';
    for (char *p = out; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

/* The event of a scan: its finer code when that names an event, else its status. */
static int event_of(const char *fine, const char *status)
{
    int ev = fine ? drisk_event_parse(fine, strlen(fine)) : 0;
    return ev ? ev : status ? drisk_event_parse(status, strlen(status)) : 0;
}

struct reader {
    struct inbound_update *u;
    int64_t first;               /* the earliest scan's time */
    char origin[DRISK_NAME_MAX]; /* the first scan's place */
};

/* Adds one scan (or its reason for being skipped) to u. */
static void add_scan(struct reader *r, int index, int64_t ts, const char *fine,
                     const char *status, const char *reason, const char *loc_code,
                     const char *message)
{
    int ev = event_of(fine, status);
    if (!ev || ts == DRISK_TS_NONE) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddNumberToObject(s, "index", index);
        cJSON_AddStringToObject(s, "status", status ? status : "");
        cJSON_AddStringToObject(s, "why", !ev ? "names no drisk event (docs/VOCABULARY.md)"
                                              : "no readable time");
        cJSON_AddItemToArray(r->u->skipped, s);
        return;
    }
    cJSON *s = cJSON_CreateObject();
    add_ts(s, "ts", ts);
    cJSON_AddStringToObject(s, "event", drisk_event_name(ev));
    if (loc_code[0])
        cJSON_AddStringToObject(s, "location", loc_code);
    int why = reason ? drisk_reason_parse(reason, strlen(reason)) : 0;
    if (why > 0)
        cJSON_AddStringToObject(s, "reason", drisk_reason_name(why));
    if (message) {
        char d[200]; /* descriptions are short notes */
        snprintf(d, sizeof d, "%s", message);
        cJSON_AddStringToObject(s, "description", d);
    }
    cJSON_AddItemToArray(r->u->scans, s);
    if (r->first == DRISK_TS_NONE || ts < r->first)
        r->first = ts;
    if (!r->origin[0] && loc_code[0])
        snprintf(r->origin, sizeof r->origin, "%s", loc_code);
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* The shipment object: tracking number as its id; the rest where the provider says it. */
static void shipment_obj(struct reader *r, const char *tracking, const char *carrier,
                         const char *service, const char *dest, int64_t created,
                         const char *order_id)
{
    cJSON *s = r->u->shipment;
    char c[DRISK_NAME_MAX], sv[DRISK_NAME_MAX];
    snprintf(c, sizeof c, "%s", carrier ? carrier : "unknown");
    lower(c);
    snprintf(sv, sizeof sv, "%s", service ? service : "unknown");
    cJSON_AddStringToObject(s, "shipment_id", tracking);
    cJSON_AddStringToObject(s, "carrier", c);
    cJSON_AddStringToObject(s, "service", sv);
    cJSON_AddStringToObject(s, "origin", r->origin[0] ? r->origin : "unknown");
    cJSON_AddStringToObject(s, "destination", dest && dest[0] ? dest : "unknown");
    if (r->first != DRISK_TS_NONE && (created == DRISK_TS_NONE || r->first < created))
        created = r->first; /* a scan before the record's own creation time */
    if (created != DRISK_TS_NONE)
        add_ts(s, "created_at", created);
    if (order_id)
        cJSON_AddStringToObject(s, "order_id", order_id);
}

/* EasyPost: an Event whose result is a Tracker (tracker.created / tracker.updated). */
static int read_easypost(const cJSON *b, struct reader *r, struct api_error *e)
{
    const char *what = str(b, "description");
    const cJSON *t = obj(b, "result");
    if (what && strncmp(what, "tracker.", 8) != 0) {
        r->u->ignored = what;
        return 0;
    }
    if (!t || !str(t, "tracking_code"))
        return api_fail(e, 422, "invalid_field", "result.tracking_code: missing (send EasyPost's "
                        "Event with a Tracker as its result)");
    const cJSON *d;
    int i = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(t, "tracking_details")) {
        char loc[DRISK_NAME_MAX];
        place(obj(d, "tracking_location"), loc, sizeof loc);
        /* status_detail names the event where it is finer (received_at_origin_facility),
         * or its cause (weather_delay) */
        add_scan(r, i++, when(str(d, "datetime"), DRISK_TS_NONE), str(d, "status_detail"),
                 str(d, "status"), str(d, "status_detail"), loc, str(d, "message"));
    }
    const cJSON *cd = obj(t, "carrier_detail");
    char dest[DRISK_NAME_MAX];
    place(obj(cd, "destination_tracking_location"), dest, sizeof dest);
    r->u->carrier_eta = estimate(str(t, "est_delivery_date"));
    shipment_obj(r, str(t, "tracking_code"), str(t, "carrier"), str(cd, "service"), dest,
                 when(str(t, "created_at"), DRISK_TS_NONE), NULL);
    return 0;
}

/* AfterShip: {"event": "tracking_update", "msg": tracking}, legacy and versioned names. */
static int read_aftership(const cJSON *b, struct reader *r, struct api_error *e)
{
    const char *what = str(b, "event");
    const cJSON *m = obj(b, "msg");
    if (what && strcmp(what, "tracking_update") != 0) {
        r->u->ignored = what;
        return 0;
    }
    if (!str(m, "tracking_number"))
        return api_fail(e, 422, "invalid_field", "msg.tracking_number: missing (send AfterShip's "
                        "tracking_update body)");
    const cJSON *c;
    int i = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(m, "checkpoints")) {
        char loc[DRISK_NAME_MAX];
        place(c, loc, sizeof loc);
        const char *sub = str(c, "subtag");
        add_scan(r, i++, when(str(c, "checkpoint_time"), when(str(c, "created_at"), DRISK_TS_NONE)),
                 sub, str(c, "tag"), NULL, loc, str(c, "message"));
    }
    /* the carrier's estimate: expected_delivery (legacy), courier_estimated_delivery_date
     * (versioned: a date, or an object holding estimated_delivery_date) */
    const char *eta = str(m, "expected_delivery");
    const cJSON *ced = cJSON_GetObjectItemCaseSensitive(m, "courier_estimated_delivery_date");
    if (!eta)
        eta = cJSON_IsString(ced) ? ced->valuestring : str(ced, "estimated_delivery_date");
    r->u->carrier_eta = estimate(eta);
    r->u->promise = estimate(str(m, "order_promised_delivery_date"));
    const char *dest = str(m, "tracking_postal_code") ? str(m, "tracking_postal_code")
                                                      : str(m, "destination_country_iso3");
    shipment_obj(r, str(m, "tracking_number"), str(m, "slug"), str(m, "shipment_type"), dest,
                 when(str(m, "created_at"), DRISK_TS_NONE), str(m, "order_id"));
    return 0;
}

/* Shippo: {"event": "track_updated", "data": track}. */
static int read_shippo(const cJSON *b, struct reader *r, struct api_error *e)
{
    const char *what = str(b, "event");
    const cJSON *d = obj(b, "data");
    if (what && strcmp(what, "track_updated") != 0) {
        r->u->ignored = what;
        return 0;
    }
    if (!str(d, "tracking_number"))
        return api_fail(e, 422, "invalid_field", "data.tracking_number: missing (send Shippo's "
                        "track_updated body)");
    const cJSON *h;
    int i = 0;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(d, "tracking_history")) {
        char loc[DRISK_NAME_MAX];
        place(obj(h, "location"), loc, sizeof loc);
        const char *sub = str(obj(h, "substatus"), "code");
        add_scan(r, i++, when(str(h, "status_date"), DRISK_TS_NONE), sub, str(h, "status"), sub,
                 loc, str(h, "status_details"));
    }
    r->u->carrier_eta = estimate(str(d, "eta"));
    char dest[DRISK_NAME_MAX], from[DRISK_NAME_MAX];
    place(obj(d, "address_to"), dest, sizeof dest);
    place(obj(d, "address_from"), from, sizeof from);
    if (from[0]) /* the sender's address beats the first scan's place */
        snprintf(r->origin, sizeof r->origin, "%s", from);
    const cJSON *sl = obj(d, "servicelevel");
    shipment_obj(r, str(d, "tracking_number"), str(d, "carrier"), str(sl, "token"), dest,
                 DRISK_TS_NONE, NULL);
    return 0;
}

int inbound_read(int provider, const cJSON *body, struct inbound_update *u, struct api_error *e)
{
    memset(u, 0, sizeof *u);
    u->carrier_eta = u->promise = DRISK_TS_NONE;
    if (!cJSON_IsObject(body))
        return api_fail(e, 400, "invalid_body", "send the provider's webhook body, a JSON object");
    u->shipment = cJSON_CreateObject();
    u->scans = cJSON_CreateArray();
    u->skipped = cJSON_CreateArray();
    struct reader r = { u, DRISK_TS_NONE, "" };
    int rc = provider == INBOUND_EASYPOST    ? read_easypost(body, &r, e)
             : provider == INBOUND_AFTERSHIP ? read_aftership(body, &r, e)
                                             : read_shippo(body, &r, e);
    if (rc)
        inbound_update_free(u);
    return rc;
}

void inbound_update_free(struct inbound_update *u)
{
    cJSON_Delete(u->shipment);
    cJSON_Delete(u->scans);
    cJSON_Delete(u->skipped);
    u->shipment = u->scans = u->skipped = NULL;
}
