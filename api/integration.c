/* Merchant integration's routes (api/http.h): webhook endpoints and their delivery log,
 * the aggregators' tracking webhooks in and their secrets, and what merchants did with a
 * recommendation. docs/WEBHOOKS.md, docs/INBOUND.md, docs/POLICY.md. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "api/inbound.h"
#include "api/json.h"
#include "base/sha256.h"
#include "base/timeutil.h"
#include "data/live.h"
#include "data/outbox.h"

/* POST /v1/recommendations/{id}/outcome {"outcome", "amount", "note"}: what the merchant
 * did with it; settled claims (claim_paid, claim_denied) feed the carrier's observed claim
 * success into later recommendations (docs/POLICY.md). */
enum MHD_Result http_rec_outcome(struct ctx *x, const char *rest, const cJSON *body)
{
    struct api_error e;
    char *end;
    errno = 0;
    long long id = strtoll(rest, &end, 10);
    if (end == rest || strcmp(end, "/outcome") != 0 || errno || id <= 0)
        return api_fail(&e, 404, "not_found", "no recommendation \"%.40s\"", rest),
               http_send_error(x->c, x->r, &e);
    const cJSON *oc = cJSON_GetObjectItemCaseSensitive(body, "outcome");
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(body, "amount");
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(body, "note");
    const char *const *names = drisk_rec_outcome_names();
    const char *outcome = NULL;
    for (size_t i = 0; cJSON_IsString(oc) && names[i]; i++)
        if (strcmp(oc->valuestring, names[i]) == 0)
            outcome = names[i];
    if (!cJSON_IsObject(body) || !outcome)
        return api_fail(&e, 400, "invalid_body", "send {\"outcome\": \"accepted\" | \"dismissed\" "
                        "| \"claim_filed\" | \"claim_paid\" | \"claim_denied\"} (claim_paid with "
                        "\"amount\", what the carrier paid)"),
               http_send_error(x->c, x->r, &e);
    int paid = strcmp(outcome, "claim_paid") == 0;
    if (paid && !(cJSON_IsNumber(am) && am->valuedouble >= 0 && am->valuedouble <= 1e9))
        return api_fail(&e, 422, "invalid_field", "amount: claim_paid needs the amount the "
                        "carrier paid, a number from 0 to 1e9"),
               http_send_error(x->c, x->r, &e);
    if (!paid && am && !cJSON_IsNull(am))
        return api_fail(&e, 422, "invalid_field", "amount: only claim_paid carries an amount"),
               http_send_error(x->c, x->r, &e);
    if (note && !cJSON_IsNull(note) && (!cJSON_IsString(note) || strlen(note->valuestring) > 500))
        return api_fail(&e, 422, "invalid_field", "note: a string of at most 500 bytes"),
               http_send_error(x->c, x->r, &e);
    struct drisk_rec_row rec;
    struct drisk_error err = { 0 };
    enum drisk_status rc = drisk_store_rec_outcome(
        x->st, x->who.merchant, id, outcome, paid ? am->valuedouble : NAN,
        cJSON_IsString(note) ? note->valuestring : NULL, x->now, &rec, &err);
    if (rc == DRISK_ENOTFOUND) /* another merchant's is not there either */
        return api_fail(&e, 404, "not_found", "%s", err.msg), http_send_error(x->c, x->r, &e);
    if (rc)
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    if (paid || strcmp(outcome, "claim_denied") == 0)
        svc_settings_changed(x->svc); /* the carrier's claim success moved */
    return http_send_json(x->c, x->r, 200, api_rec_json(&rec));
}

/* ---- webhooks ---- */

static cJSON *webhook_json(const struct drisk_webhook *w)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)w->id);
    cJSON_AddStringToObject(o, "url", w->url);
    cJSON *ev = cJSON_AddArrayToObject(o, "events");
    /* stored as ",a,b,": each name between commas */
    for (const char *p = w->events; *p;) {
        const char *q = strchr(++p, ',');
        if (!q)
            break;
        if (q > p) {
            char name[64];
            size_t n = (size_t)(q - p) < sizeof name - 1 ? (size_t)(q - p) : sizeof name - 1;
            memcpy(name, p, n);
            name[n] = '\0';
            cJSON_AddItemToArray(ev, cJSON_CreateString(name));
        }
        p = q;
    }
    cJSON_AddStringToObject(o, "status", w->disabled_at == DRISK_TS_NONE ? "enabled" : "disabled");
    api_add_ts(o, "created_at", w->created_at);
    api_add_ts(o, "disabled_at", w->disabled_at);
    if (w->disabled_reason[0])
        cJSON_AddStringToObject(o, "disabled_reason", w->disabled_reason);
    else
        cJSON_AddNullToObject(o, "disabled_reason");
    return o;
}

static cJSON *delivery_json(const struct drisk_delivery *d)
{
    cJSON *o = cJSON_CreateObject();
    char evt[32];
    snprintf(evt, sizeof evt, "evt_%lld", (long long)d->event_id);
    cJSON_AddNumberToObject(o, "id", (double)d->id);
    cJSON_AddStringToObject(o, "event_id", evt);
    cJSON_AddStringToObject(o, "type", d->type);
    api_add_ts(o, "event_created_at", d->event_created_at);
    cJSON_AddStringToObject(o, "status", drisk_delivery_status_name(d->status));
    cJSON_AddNumberToObject(o, "attempts", d->attempts);
    api_add_ts(o, "last_attempt_at", d->last_attempt_at);
    if (d->last_code)
        cJSON_AddNumberToObject(o, "last_status_code", d->last_code);
    else
        cJSON_AddNullToObject(o, "last_status_code");
    if (d->last_error[0])
        cJSON_AddStringToObject(o, "last_error", d->last_error);
    else
        cJSON_AddNullToObject(o, "last_error");
    api_add_ts(o, "next_attempt_at", d->status == DRISK_DELIVERY_PENDING && d->next_at_ms
                                         ? (d->next_at_ms + 999) / 1000 : DRISK_TS_NONE);
    api_add_ts(o, "delivered_at", d->delivered_at);
    return o;
}

/* POST /v1/webhooks {"url", "events"}: a new endpoint; its secret is in this answer only. */
enum MHD_Result http_webhook_create(struct ctx *x, const cJSON *body)
{
    struct api_error e;
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(body, "url");
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(body, "events");
    if (!cJSON_IsObject(body) || !cJSON_IsString(url))
        return api_fail(&e, 400, "invalid_body", "send {\"url\": \"https://...\", \"events\": "
                        "[\"alert.opened\", ...]}"),
               http_send_error(x->c, x->r, &e);
    if (events && !cJSON_IsNull(events) && !cJSON_IsArray(events))
        return api_fail(&e, 400, "invalid_body", "events: an array of event types"),
               http_send_error(x->c, x->r, &e);
    if (wh_check_url(url->valuestring, x->allow_private, &e))
        return http_send_error(x->c, x->r, &e);
    char list[DRISK_WEBHOOK_EVENTS_MAX] = ",";
    int n = 0, all = !events || cJSON_IsNull(events) || cJSON_GetArraySize(events) == 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, events) {
        const char *name = cJSON_IsString(it) ? it->valuestring : NULL;
        int known = name && strcmp(name, "*") == 0;
        for (size_t k = 0; name && !known && wh_event_types[k]; k++)
            known = strcmp(name, wh_event_types[k]) == 0;
        if (!known) {
            char types[320] = "";
            for (size_t k = 0; wh_event_types[k]; k++)
                snprintf(types + strlen(types), sizeof types - strlen(types), "%s, ",
                         wh_event_types[k]);
            return api_fail(&e, 422, "invalid_event", "events[%d]: not an event type: use %sor "
                            "\"*\" for all", n, types),
                   http_send_error(x->c, x->r, &e);
        }
        all |= strcmp(name, "*") == 0;
        char probe[72];
        snprintf(probe, sizeof probe, ",%s,", name);
        if (!strstr(list, probe)) /* each once */
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s,", name);
        n++;
    }
    if (all)
        snprintf(list, sizeof list, ",*,");
    char secret[DRISK_WEBHOOK_SECRET_MAX];
    memcpy(secret, "whsec_", 7);
    if (drisk_random_hex(32, secret + 6))
        return api_fail(&e, 503, "no_randomness", "cannot read random bytes for the secret"),
               http_send_error(x->c, x->r, &e);
    struct drisk_error err = { 0 };
    struct drisk_webhook w;
    int64_t id = 0;
    enum drisk_status rc = drisk_webhook_create(x->st, x->who.merchant, url->valuestring, list,
                                                secret, x->now, &id, &err);
    if (rc == DRISK_OK)
        rc = drisk_webhook_get(x->st, x->who.merchant, id, &w, &err);
    if (rc == DRISK_EINVAL)
        return api_fail(&e, 409, "too_many_webhooks", "%s", err.msg), http_send_error(x->c, x->r, &e);
    if (rc)
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    cJSON *o = webhook_json(&w);
    cJSON_AddStringToObject(o, "secret", secret);
    return http_send_json(x->c, x->r, 201, o);
}

static int add_webhook(const struct drisk_webhook *w, void *ctx)
{
    struct list_ctx *l = ctx;
    if (!http_page_room(l))
        return 1;
    cJSON_AddItemToArray(l->arr, webhook_json(w));
    l->last = w->id;
    return 0;
}

enum MHD_Result http_webhook_list(struct ctx *x)
{
    struct api_error e;
    int64_t cursor, limit;
    if (http_query_int(x->c, "cursor", 0, 0, API_CURSOR_MAX, &cursor, &e) ||
        http_query_int(x->c, "limit", 100, 1, 1000, &limit, &e))
        return http_send_error(x->c, x->r, &e);
    cJSON *o = cJSON_CreateObject();
    struct list_ctx l = { cJSON_AddArrayToObject(o, "webhooks"), cursor, limit, 0, 0 };
    struct drisk_error err = { 0 };
    if (drisk_webhook_list(x->st, x->who.merchant, cursor, (int)limit + 1, add_webhook, &l, &err)) {
        cJSON_Delete(o);
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    }
    return http_page_send(x, o, &l, NULL);
}

/* /v1/webhooks/{id}[/deliveries[/{did}/redeliver]]: the ids, 0 where absent; -1 when the
 * path is none of these. */
static int webhook_path(const char *rest, int64_t *id, int64_t *did)
{
    char *end;
    *id = *did = 0;
    errno = 0;
    long long a = strtoll(rest, &end, 10);
    if (end == rest || errno || a <= 0 || !isdigit((unsigned char)rest[0]))
        return -1;
    *id = a;
    if (!*end)
        return 0;
    if (strncmp(end, "/deliveries", 11) != 0)
        return -1;
    end += 11;
    if (!*end)
        return 0;
    if (*end != '/' || !isdigit((unsigned char)end[1]))
        return -1;
    const char *p = end + 1;
    long long b = strtoll(p, &end, 10);
    if (errno || b <= 0 || strcmp(end, "/redeliver") != 0)
        return -1;
    *did = b;
    return 0;
}

enum MHD_Result http_webhook_one(struct ctx *x, const char *rest)
{
    struct api_error e;
    struct drisk_error err = { 0 };
    int64_t id, did;
    if (webhook_path(rest, &id, &did))
        return api_fail(&e, 404, "not_found", "no webhook route /v1/webhooks/%.60s", rest),
               http_send_error(x->c, x->r, &e);
    struct drisk_webhook w;
    enum drisk_status rc = DRISK_OK;
    cJSON *o = NULL;
    int status = 200;
    switch (x->r->route) {
    case R_WEBHOOK_GET:
        if (!(rc = drisk_webhook_get(x->st, x->who.merchant, id, &w, &err)))
            o = webhook_json(&w);
        break;
    case R_WEBHOOK_DELETE:
        if (!(rc = drisk_webhook_delete(x->st, x->who.merchant, id, &err))) {
            o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)id);
            cJSON_AddBoolToObject(o, "deleted", 1);
        }
        break;
    case R_WEBHOOK_REDELIVER: {
        struct drisk_delivery d;
        int64_t now_ms = x->now * 1000;
        if (!(rc = drisk_outbox_redeliver(x->st, x->who.merchant, id, did, now_ms, &d, &err))) {
            o = delivery_json(&d);
            status = 202;
            wh_poke(x->hooks);
        }
        break;
    }
    default:
        break;
    }
    if (rc == DRISK_ENOTFOUND)
        return api_fail(&e, 404, "not_found", "%s", err.msg), http_send_error(x->c, x->r, &e);
    if (rc == DRISK_EINVAL)
        return api_fail(&e, 409, "webhook_disabled", "%s", err.msg), http_send_error(x->c, x->r, &e);
    if (rc)
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    return http_send_json(x->c, x->r, status, o);
}

static int add_delivery(const struct drisk_delivery *d, void *ctx)
{
    struct list_ctx *l = ctx;
    if (!http_page_room(l))
        return 1;
    cJSON_AddItemToArray(l->arr, delivery_json(d));
    l->last = d->id;
    return 0;
}

/* GET /v1/webhooks/{id}/deliveries: the endpoint's delivery log, newest first (the cursor
 * goes back in time). */
enum MHD_Result http_webhook_deliveries(struct ctx *x, const char *rest)
{
    struct api_error e;
    int64_t id, did, cursor, limit;
    const char *status = NULL;
    static const char *const states[] = { "pending", "delivered", "failed", "disabled", NULL };
    if (webhook_path(rest, &id, &did) || did)
        return api_fail(&e, 404, "not_found", "no webhook route /v1/webhooks/%.60s", rest),
               http_send_error(x->c, x->r, &e);
    if (http_query_int(x->c, "cursor", 0, 0, API_CURSOR_MAX, &cursor, &e) ||
        http_query_int(x->c, "limit", 100, 1, 1000, &limit, &e) ||
        http_query_choice(x->c, "status", states, &status, &e))
        return http_send_error(x->c, x->r, &e);
    struct drisk_webhook w;
    struct drisk_error err = { 0 };
    enum drisk_status rc = drisk_webhook_get(x->st, x->who.merchant, id, &w, &err);
    if (rc == DRISK_ENOTFOUND)
        return api_fail(&e, 404, "not_found", "%s", err.msg), http_send_error(x->c, x->r, &e);
    cJSON *o = cJSON_CreateObject();
    struct list_ctx l = { cJSON_AddArrayToObject(o, "deliveries"), cursor, limit, 0, 0 };
    if (rc || drisk_outbox_log(x->st, x->who.merchant, id, cursor,
                               status ? drisk_delivery_status_parse(status) : -1, (int)limit + 1,
                               add_delivery, &l, &err)) {
        cJSON_Delete(o);
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    }
    return http_page_send(x, o, &l, NULL);
}

/* ---- aggregator webhooks in ---- */

/* PUT /v1/inbound/{provider}/secret {"secret"} (and DELETE): the secret the provider signs
 * this merchant's webhooks with (Shippo: the URL token). */
enum MHD_Result http_inbound_secret(struct ctx *x, const char *rest, const cJSON *body)
{
    struct api_error e;
    char name[16] = "";
    const char *slash = strchr(rest, '/');
    if (slash && (size_t)(slash - rest) < sizeof name)
        memcpy(name, rest, (size_t)(slash - rest));
    int provider = inbound_provider_parse(name);
    if (provider < 0)
        return api_fail(&e, 404, "not_found", "no provider \"%.20s\": use easypost, aftership "
                        "or shippo", name),
               http_send_error(x->c, x->r, &e);
    const char *secret = NULL;
    if (x->r->route == R_INBOUND_SECRET_PUT) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "secret");
        if (!cJSON_IsString(v) || strlen(v->valuestring) < 8 || strlen(v->valuestring) > 200)
            return api_fail(&e, 400, "invalid_body", "send {\"secret\": \"...\"}: the webhook "
                            "secret %s shows you (8 to 200 characters)", inbound_names[provider]),
                   http_send_error(x->c, x->r, &e);
        secret = v->valuestring;
    }
    struct drisk_error err = { 0 };
    if (drisk_store_inbound_secret_put(x->st, x->who.merchant, inbound_names[provider], secret,
                                       x->now, &err))
        return api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg),
               http_send_error(x->c, x->r, &e);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "provider", inbound_names[provider]);
    cJSON_AddBoolToObject(o, "configured", secret != NULL);
    if (secret) { /* what to give the provider: the merchant is named in the URL */
        char url[300];
        snprintf(url, sizeof url, "/v1/inbound/%s?merchant=%s%s", inbound_names[provider],
                 x->who.merchant, provider == INBOUND_SHIPPO ? "&token=SECRET" : "");
        cJSON_AddStringToObject(o, "path", url);
    }
    return http_send_json(x->c, x->r, 200, o);
}

/* Who sends an aggregator's webhook: a merchant's key (a relay of the merchant's own), or
 * ?merchant=M with the provider's signature made with M's secret. */
int http_inbound_caller(struct ctx *x, int provider, struct api_error *e)
{
    struct MHD_Connection *c = x->c;
    if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION))
        return http_authenticate(x->svc, x->st, c, &x->who, e) || http_need_merchant(&x->who, e) ? -1 : 0;
    const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "merchant");
    if (!m || !m[0] || strlen(m) >= sizeof x->who.merchant)
        return api_fail(e, 401, "unauthorized", "name the merchant: give %s this URL with "
                        "?merchant=M (see PUT /v1/inbound/%s/secret), or send a merchant's "
                        "Authorization: Bearer KEY", inbound_names[provider], inbound_names[provider]);
    char secret[256];
    struct drisk_error err = { 0 };
    enum drisk_status rc = drisk_store_inbound_secret(x->st, m, inbound_names[provider], secret,
                                                      sizeof secret, &err);
    if (rc == DRISK_ENOTFOUND)
        return api_fail(e, 401, "unauthorized", "merchant \"%.60s\" has no %s secret: set it with "
                        "PUT /v1/inbound/%s/secret", m, inbound_names[provider],
                        inbound_names[provider]);
    if (rc)
        return api_fail(e, 503, "store_unavailable", "the store failed: %s", err.msg);
    if (inbound_verify(provider, secret, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                     inbound_signature_header(provider)),
                       MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token"),
                       x->r->body ? x->r->body : "", x->r->len, x->now, e))
        return -1;
    snprintf(x->who.merchant, sizeof x->who.merchant, "%s", m);
    return 0;
}

/* POST /v1/inbound/{provider}: a tracking webhook as the provider sends it. The shipment
 * (its tracking number as shipment_id) is created when new, its carrier estimate kept;
 * the scans go in as POST /v1/scans would take them (idempotent). */
enum MHD_Result http_inbound(struct ctx *x, const char *name, const cJSON *body)
{
    struct api_error e;
    int provider = inbound_provider_parse(name); /* known: dispatch checked */
    struct inbound_update u;
    if (inbound_read(provider, body, &u, &e))
        return http_send_error(x->c, x->r, &e);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "provider", inbound_names[provider]);
    if (u.ignored) { /* answered 2xx: the provider would retry anything else */
        cJSON_AddStringToObject(o, "ignored", u.ignored);
        inbound_update_free(&u);
        return http_send_json(x->c, x->r, 200, o);
    }
    const char *tracking = cJSON_GetObjectItemCaseSensitive(u.shipment, "shipment_id")->valuestring;
    struct drisk_shipment sh;
    struct drisk_error err = { 0 };
    int64_t row = 0;
    int created = 0, rc = 0;
    enum drisk_status f = drisk_store_find_shipment(x->st, x->who.merchant, tracking, &row, &err);
    if (f == DRISK_OK) { /* known: only the carrier's estimate changes (ensure keeps the rest) */
        memset(&sh, 0, sizeof sh);
        snprintf(sh.merchant, sizeof sh.merchant, "%s", x->who.merchant);
        snprintf(sh.shipment_id, sizeof sh.shipment_id, "%s", tracking);
        sh.delivered_at = DRISK_TS_NONE;
    } else if (f == DRISK_ENOTFOUND) {
        /* new: promised by the merchant's date if the provider carries one, else the
         * carrier's estimate, else the lane's learned transit, else 5 days */
        created = 1;
        cJSON *so = u.shipment;
        if (!cJSON_GetObjectItemCaseSensitive(so, "created_at"))
            api_add_ts(so, "created_at", x->now);
        int64_t from = 0;
        const char *why;
        const char *ca = cJSON_GetObjectItemCaseSensitive(so, "created_at")->valuestring;
        drisk_ts_parse(ca, strlen(ca), &from, &why);
        int64_t promise = u.promise != DRISK_TS_NONE ? u.promise : u.carrier_eta;
        if (promise == DRISK_TS_NONE || promise < from) {
            struct drisk_shipment probe;
            memset(&probe, 0, sizeof probe);
            snprintf(probe.carrier, sizeof probe.carrier, "%s",
                     cJSON_GetObjectItemCaseSensitive(so, "carrier")->valuestring);
            snprintf(probe.service, sizeof probe.service, "%s",
                     cJSON_GetObjectItemCaseSensitive(so, "service")->valuestring);
            snprintf(probe.origin, sizeof probe.origin, "%s",
                     cJSON_GetObjectItemCaseSensitive(so, "origin")->valuestring);
            snprintf(probe.destination, sizeof probe.destination, "%s",
                     cJSON_GetObjectItemCaseSensitive(so, "destination")->valuestring);
            unsigned unseen;
            double transit_h;
            svc_network_facts(x->svc, &probe, x->now, &unseen, &transit_h);
            promise = from + (int64_t)(isnan(transit_h) ? 5 * 86400.0 : transit_h * 3600.0);
        }
        api_add_ts(so, "promised_at", promise);
        rc = api_shipment_from(so, x->who.merchant, 0, x->now, (struct api_where){ "shipment", -1 },
                               &sh, &e);
    } else {
        rc = api_fail(&e, 503, "store_unavailable", "the store failed: %s", err.msg);
    }
    if (rc) {
        cJSON_Delete(o);
        inbound_update_free(&u);
        return http_send_error(x->c, x->r, &e);
    }
    sh.carrier_eta = u.carrier_eta; /* DRISK_TS_NONE keeps a stored estimate */
    /* scans that do not pass the validator are reported, not stored: the rest of what the
     * carrier said still counts, and a provider retrying a body that cannot change would
     * gain nothing */
    int n = cJSON_GetArraySize(u.scans), k = 0, i = 0;
    struct svc_scan_in *in = malloc((size_t)(n ? n : 1) * sizeof *in);
    if (!in) {
        cJSON_Delete(o);
        inbound_update_free(&u);
        return api_fail(&e, 503, "out_of_memory", "out of memory"), http_send_error(x->c, x->r, &e);
    }
    for (const cJSON *sc = u.scans->child; sc; sc = sc->next, i++) {
        struct api_error se;
        int ok = api_scan_from(sc, x->who.merchant, tracking, (struct api_where){ "scans", i },
                               &in[k], &se) == 0;
        const char *why = ok ? NULL : se.message;
        if (ok && in[k].scan.ts > x->now + 3600) {
            ok = 0;
            why = "more than an hour in the future: check the provider's time zone";
        }
        if (ok) {
            k++;
            continue;
        }
        cJSON *skip = cJSON_CreateObject();
        cJSON_AddNumberToObject(skip, "index", i);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(sc, "event");
        cJSON_AddStringToObject(skip, "status", cJSON_IsString(ev) ? ev->valuestring : "");
        cJSON_AddStringToObject(skip, "why", why);
        cJSON_AddItemToArray(u.skipped, skip);
    }
    struct svc_ingest_result res;
    rc = svc_ingest(x->svc, x->who.merchant, &sh, in, (size_t)k, x->now, &res, &e);
    free(in);
    if (rc) {
        free(res.touched);
        cJSON_Delete(o);
        inbound_update_free(&u);
        return http_send_error(x->c, x->r, &e);
    }
    cJSON_AddStringToObject(o, "shipment_id", tracking);
    cJSON_AddBoolToObject(o, "created", created);
    api_add_ts(o, "carrier_eta", sh.carrier_eta); /* this body's estimate, if it has one */
    cJSON_AddNumberToObject(o, "received", n);
    cJSON_AddNumberToObject(o, "inserted", (double)res.inserted);
    cJSON_AddNumberToObject(o, "duplicates", (double)res.duplicates);
    cJSON_AddItemToObject(o, "skipped", u.skipped);
    u.skipped = NULL;
    struct svc_model_set *m = svc_models_acquire(x->svc);
    const int64_t zero[DRISK_TARGET_COUNT] = { 0, 0, 0 };
    int scored = 0;
    for (size_t t = 0; t < res.n_touched; t++)
        if (res.touched[t].scored && res.touched[t].row == res.upserted) {
            cJSON_AddItemToObject(o, "risk", api_risk_json(&res.touched[t].risk, m ? m->scorer.id : zero));
            scored = 1;
        }
    if (!scored)
        cJSON_AddNullToObject(o, "risk");
    svc_models_release(m);
    free(res.touched);
    inbound_update_free(&u);
    return http_send_json(x->c, x->r, 200, o);
}

