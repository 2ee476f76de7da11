/* Aggregator tracking webhooks in (POST /v1/inbound/easypost, /aftership, /shippo): each
 * provider's signature scheme, and its body turned into drisk's interchange objects (one
 * shipment, its scans) so that they pass the very validation of POST /v1/shipments and
 * /v1/scans. docs/INBOUND.md says what is read from where; tests/fixtures/inbound holds
 * the providers' documented bodies. Private to api/. */
#ifndef DRISK_API_INBOUND_H
#define DRISK_API_INBOUND_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "api/service.h"

enum inbound_provider { INBOUND_EASYPOST, INBOUND_AFTERSHIP, INBOUND_SHIPPO, INBOUND_COUNT };

extern const char *const inbound_names[INBOUND_COUNT]; /* "easypost", "aftership", "shippo" */
/* The provider named name, or -1. */
int inbound_provider_parse(const char *name);
/* The request header carrying provider's signature (X-Hmac-Signature,
 * aftership-hmac-sha256, Shippo-Auth-Signature). */
const char *inbound_signature_header(int provider);

/* Checks what arrived against the merchant's secret for provider:
 *   easypost   header "hmac-sha256-hex=" + hex HMAC-SHA256(secret, body)
 *   aftership  header base64 HMAC-SHA256(secret, body)
 *   shippo     header "t=UNIX,v1=" + hex HMAC-SHA256(secret, "UNIX." + body), t within
 *              5 minutes of now; or, when Shippo does not sign (its default), the URL's
 *              token parameter equal to the secret
 * Compared in constant time. -1 with e set (401 bad_signature) otherwise. */
int inbound_verify(int provider, const char *secret, const char *header, const char *token,
                   const char *body, size_t len, int64_t now, struct api_error *e);

/* What a provider's body says, as interchange objects. */
struct inbound_update {
    cJSON *shipment;      /* shipment_id (the tracking number), carrier, service, origin,
                           * destination, created_at, order_id when known */
    cJSON *scans;         /* array of scan objects, oldest first */
    cJSON *skipped;       /* array of {"index", "status", "why"}: entries that name no event */
    int64_t carrier_eta;  /* the provider's estimated delivery, DRISK_TS_NONE if none */
    int64_t promise;      /* the merchant's promise when the provider carries one (AfterShip
                           * order_promised_delivery_date), else DRISK_TS_NONE */
    const char *ignored;  /* non-NULL: an event type this route does not read (answered 200
                           * so that the provider stops retrying) */
};

/* Reads body as provider's tracking webhook. 0 with *u filled (its cJSON values to be
 * deleted with inbound_update_free), or -1 with e set (400/422). */
int inbound_read(int provider, const cJSON *body, struct inbound_update *u, struct api_error *e);
void inbound_update_free(struct inbound_update *u);

#endif
