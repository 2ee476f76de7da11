/* Webhooks out, as stored: merchants' endpoints, the outbox of events and one delivery
 * per (event, endpoint). An event is written in the caller's transaction, the one that
 * makes the change it reports (an alert opened, a recommendation changed), together with
 * a pending delivery to every enabled endpoint of the merchant that subscribes to its
 * type: what commits is delivered, what rolls back never existed. The delivery worker
 * (api/webhooks.c) takes due deliveries, at most one per (endpoint, shipment) at a time
 * and oldest first, so each endpoint sees a shipment's events in order; a delivery stays
 * pending until its result is written, so one whose result never was (a crash) is
 * attempted again. Same threading rules as data/store.h. */
#ifndef DRISK_OUTBOX_H
#define DRISK_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "data/store.h"

#define DRISK_WEBHOOK_URL_MAX 2048
#define DRISK_WEBHOOK_EVENTS_MAX 512  /* the subscribed types, ",a,b," */
#define DRISK_WEBHOOK_SECRET_MAX 80
#define DRISK_WEBHOOKS_PER_MERCHANT 16

struct drisk_webhook {
    int64_t id;
    char url[DRISK_WEBHOOK_URL_MAX];
    char events[DRISK_WEBHOOK_EVENTS_MAX]; /* ",alert.opened,alert.cleared," or ",*," */
    int64_t created_at;
    int64_t disabled_at;                   /* DRISK_TS_NONE while enabled */
    char disabled_reason[256];
};

/* Adds an endpoint for merchant (created if new); *id receives its id. DRISK_EINVAL when
 * the merchant has DRISK_WEBHOOKS_PER_MERCHANT already. */
enum drisk_status drisk_webhook_create(struct drisk_store *store, const char *merchant,
                                       const char *url, const char *events, const char *secret,
                                       int64_t now, int64_t *id, struct drisk_error *err);
/* The merchant's endpoint id (DRISK_ENOTFOUND, err set, when it has none such). */
enum drisk_status drisk_webhook_get(struct drisk_store *store, const char *merchant, int64_t id,
                                    struct drisk_webhook *out, struct drisk_error *err);
typedef int (*drisk_webhook_fn)(const struct drisk_webhook *w, void *ctx);
/* The merchant's endpoints with id above after_id, by id, at most limit. */
enum drisk_status drisk_webhook_list(struct drisk_store *store, const char *merchant,
                                     int64_t after_id, int limit, drisk_webhook_fn fn, void *ctx,
                                     struct drisk_error *err);
/* Deletes the merchant's endpoint id and its delivery log (DRISK_ENOTFOUND when none). */
enum drisk_status drisk_webhook_delete(struct drisk_store *store, const char *merchant,
                                       int64_t id, struct drisk_error *err);
/* Disables endpoint id (a 410 Gone from its receiver): its pending deliveries stop. In
 * the caller's transaction. */
enum drisk_status drisk_webhook_disable(struct drisk_store *store, int64_t id, const char *reason,
                                        int64_t now, struct drisk_error *err);

/* *wanted: 1 when some enabled endpoint of shipment row's merchant takes type (one indexed
 * lookup: the caller builds an event's data only then). */
enum drisk_status drisk_outbox_wanted(struct drisk_store *store, int64_t shipment, const char *type,
                                      int *wanted, struct drisk_error *err);
/* In the caller's transaction: the event type about shipment row (of its merchant), with
 * data (JSON object text) as its "data", for every enabled endpoint subscribed to type.
 * Nothing is written when none is. *queued: the deliveries made (may be NULL). */
enum drisk_status drisk_outbox_emit(struct drisk_store *store, int64_t shipment, const char *type,
                                    const char *data, int64_t now, int *queued,
                                    struct drisk_error *err);

enum drisk_delivery_status {
    DRISK_DELIVERY_PENDING = 0, /* waiting for its (next) attempt */
    DRISK_DELIVERY_DELIVERED,   /* a 2xx answer */
    DRISK_DELIVERY_FAILED,      /* retried for the whole retry period without a 2xx */
    DRISK_DELIVERY_DISABLED     /* its endpoint was disabled (410 Gone) first */
};
const char *drisk_delivery_status_name(int status);
int drisk_delivery_status_parse(const char *s); /* -1 if unknown */

struct drisk_delivery {
    int64_t id, event_id, webhook_id, shipment;
    char type[32];
    int64_t event_created_at;
    int status;
    int attempts;
    int64_t next_at_ms;        /* the next attempt (pending only), Unix ms */
    int64_t last_attempt_at;   /* DRISK_TS_NONE before the first */
    int last_code;             /* the last HTTP status, 0 when none (no answer) */
    char last_error[256];
    int64_t delivered_at;      /* DRISK_TS_NONE unless delivered */
    /* filled by drisk_outbox_due only: the endpoint and the event's data, malloc'd */
    char url[DRISK_WEBHOOK_URL_MAX];
    char secret[DRISK_WEBHOOK_SECRET_MAX];
    char *data;
};

typedef int (*drisk_delivery_fn)(const struct drisk_delivery *d, void *ctx);
/* Pending deliveries due by now_ms, each the oldest pending one of its (endpoint,
 * shipment), soonest first, at most limit; d->data is valid during the call only. */
enum drisk_status drisk_outbox_due(struct drisk_store *store, int64_t now_ms, int limit,
                                   drisk_delivery_fn fn, void *ctx, struct drisk_error *err);
/* Takes delivery id, read as due by now_ms, for one attempt: it stays pending, due again
 * at until_ms (so a sender that dies mid-attempt leaves it to be attempted again then),
 * and no other connection's worker takes it meanwhile. *claimed: 0 when another took it
 * first. Its own statement (autocommit). */
enum drisk_status drisk_outbox_claim(struct drisk_store *store, int64_t id, int64_t now_ms,
                                     int64_t until_ms, int *claimed, struct drisk_error *err);
/* What an attempt at now gave (it counts the attempt): status (DELIVERED, or PENDING
 * again at next_ms, FAILED, or DISABLED), the HTTP code (0: none) and an error text (""
 * when none). In the caller's transaction, if any. */
enum drisk_status drisk_outbox_result(struct drisk_store *store, int64_t id, int status,
                                      int64_t next_ms, int code, const char *error, int64_t now,
                                      struct drisk_error *err);
/* Endpoint webhook_id's deliveries (of merchant) with id below before_id (0: from the
 * newest), newest first, status -1 for any, at most limit. */
enum drisk_status drisk_outbox_log(struct drisk_store *store, const char *merchant,
                                   int64_t webhook_id, int64_t before_id, int status, int limit,
                                   drisk_delivery_fn fn, void *ctx, struct drisk_error *err);
/* Puts delivery id of the merchant's endpoint webhook_id back in line to go now (a
 * redelivery); out receives it. DRISK_ENOTFOUND when there is no such delivery,
 * DRISK_EINVAL when the endpoint is disabled. */
enum drisk_status drisk_outbox_redeliver(struct drisk_store *store, const char *merchant,
                                         int64_t webhook_id, int64_t id, int64_t now_ms,
                                         struct drisk_delivery *out, struct drisk_error *err);

#endif
