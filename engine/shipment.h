/* The domain's two records: a shipment (a parcel with a tracking number, its promise
 * and, once known, its outcome) and a scan (one carrier tracking event). Shared by the
 * store, the importers, the simulator, features and scoring. Timestamps are int64 UTC
 * seconds (base/timeutil.h). */
#ifndef DRISK_SHIPMENT_H
#define DRISK_SHIPMENT_H

#include <stdint.h>

/* Field size limits (bytes, including the terminator). Longer input is rejected by the
 * importers with a clear message rather than truncated. */
#define DRISK_ID_MAX 128      /* shipment_id, merchant_id, order_id */
#define DRISK_NAME_MAX 64     /* carrier, service, origin, destination, location */
#define DRISK_DESC_MAX 512    /* scan description */

#define DRISK_TS_NONE INT64_MIN /* an absent timestamp (delivered_at of a parcel in flight) */

struct drisk_shipment {
    int64_t id; /* store row id; 0 before it is stored */
    char merchant[DRISK_ID_MAX];
    char shipment_id[DRISK_ID_MAX];
    char order_id[DRISK_ID_MAX];
    char carrier[DRISK_NAME_MAX]; /* stored lowercase: carriers are case-insensitive */
    char service[DRISK_NAME_MAX];
    char origin[DRISK_NAME_MAX];
    char destination[DRISK_NAME_MAX];
    double weight_kg;      /* NAN when absent */
    double declared_value; /* NAN when absent */
    int64_t created_at;
    int64_t promised_at;
    int64_t delivered_at; /* DRISK_TS_NONE when absent */
    int outcome;          /* enum drisk_outcome */
    int64_t carrier_eta;  /* the carrier's own estimated delivery (aggregator webhooks:
                           * EasyPost est_delivery_date, AfterShip expected_delivery, Shippo
                           * eta); DRISK_TS_NONE, or 0 in a zeroed struct, when unknown */
};

struct drisk_scan {
    int64_t ts;
    int event;  /* enum drisk_event */
    int reason; /* enum drisk_reason */
    int64_t location_id; /* the store's id of location (0: none), set when read from the
                          * store; ignored on insert */
    char location[DRISK_NAME_MAX];
    char description[DRISK_DESC_MAX];
};

/* A scan as features and network statistics see it: no text, 32 bytes. */
struct drisk_scan_event {
    int64_t ts;
    int64_t location_id; /* 0: none */
    int event;           /* enum drisk_event */
    int reason;          /* enum drisk_reason */
};

#endif
