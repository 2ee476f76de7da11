/* Webhooks out: the delivery worker and what the routes need of it. The worker is one
 * thread with its own store connection and a libcurl multi handle: it takes due
 * deliveries from the outbox (data/outbox.h), POSTs each signed body (CONTRACT §6:
 * Drisk-Signature: t=UNIX_SECONDS,v1=hex HMAC-SHA256 of "t.body"), and records what came
 * back. A 2xx is delivered; anything else is retried with exponential backoff and jitter
 * until the retry period (24 h) after the event ends; 410 Gone disables the endpoint.
 * Scoring never waits for it: requests only write outbox rows. Private to api/. */
#ifndef DRISK_API_WEBHOOKS_H
#define DRISK_API_WEBHOOKS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "api/service.h"

struct wh_options {
    int allow_private;     /* deliver to loopback / private addresses (tests, a LAN) */
    double retry_base_s;   /* the first retry's delay; doubled each time, capped at 1 h */
    double retry_for_s;    /* retry this long after the event; 0: 86400 */
    double timeout_s;      /* one attempt, connection included; 0: 10 */
    unsigned concurrency;  /* attempts in flight at once (at most 8 per endpoint); 0: 16 */
};

struct wh_stats {
    atomic_llong delivered, retried, failed, disabled, refused;
};

struct wh_worker;

/* Opens its own connection to db_path and starts the thread. */
int wh_start(const char *db_path, const struct wh_options *o, struct wh_worker **out,
             struct api_error *e);
/* New deliveries were committed: attempt them now rather than at the next poll. */
void wh_poke(void *worker);
/* Stops the thread (attempts in flight are abandoned: their leases expire and they are
 * attempted again, after a restart too). */
void wh_stop(struct wh_worker *w);
const struct wh_stats *wh_stats(const struct wh_worker *w);

/* The event types an endpoint may subscribe to (NULL-terminated). */
extern const char *const wh_event_types[];

/* Whether url may receive webhooks: http or https with a host, and, unless allow_private,
 * no loopback, private, link-local or other non-public address literal and no localhost.
 * (Names are checked again at connection time, on the address they resolve to.) -1 with
 * e set (422 invalid_url). */
int wh_check_url(const char *url, int allow_private, struct api_error *e);

/* The Drisk-Signature header value of body signed with secret at t. */
#define WH_SIGNATURE_MAX 96
void wh_sign(const char *secret, int64_t t, const char *body, size_t len,
             char out[WH_SIGNATURE_MAX]);

#endif
