/* What drisk serve's route handlers share: the request record, the per-request context,
 * answers, auth and query parameters, and the page of a list (api/http.c), and the
 * merchant-integration routes of api/integration.c (webhooks out,
 * aggregators' webhooks in, recommendation outcomes) that api/server.c dispatches to.
 * Private to api/. */
#ifndef DRISK_API_HTTP_H
#define DRISK_API_HTTP_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "api/service.h"
#include "api/webhooks.h"

enum route {
    R_HEALTHZ, R_METRICS, R_SHIPMENTS_POST, R_SHIPMENT_GET, R_SCANS, R_SCORE, R_ALERTS,
    R_RECS, R_SETTINGS_GET, R_SETTINGS_PUT, R_ACTIVATE, R_SHIPMENTS_LIST, R_ALERT_ACK,
    R_WEBHOOKS_POST, R_WEBHOOKS_LIST, R_WEBHOOK_GET, R_WEBHOOK_DELETE, R_WEBHOOK_DELIVERIES,
    R_WEBHOOK_REDELIVER, R_INBOUND, R_INBOUND_SECRET_PUT, R_INBOUND_SECRET_DELETE,
    R_REC_OUTCOME, R_OTHER, R_COUNT
};
struct req {
    double t0;
    int route;
    char method[8];
    char path[160];
    char *body;
    size_t len, cap;
    int too_big;
    int status;
    size_t bytes;
    char merchant[DRISK_ID_MAX];
    const char *allow; /* a 405's Allow header */
};

#define API_CURSOR_MAX 9007199254740991LL /* 2^53 - 1 */

struct caller {
    char merchant[DRISK_ID_MAX];
    int admin;
};

struct ctx {
    struct drisk_server *srv;
    struct svc *svc;
    struct drisk_store *st;
    struct MHD_Connection *c;
    struct req *r;
    struct caller who;
    int64_t now;
    int allow_private;        /* drisk serve --webhook-allow-private */
    struct wh_worker *hooks;  /* the webhook worker, to wake */
};

/* A page of a list: up to max items; one row more is asked of the store, to know
 * has_more. */
struct list_ctx {
    cJSON *arr;
    int64_t last; /* the cursor of the last item taken */
    int64_t max, n;
    int more;
};

/* Answers: text (taken, freed by libmicrohttpd) of a content type, JSON (v deleted), or
 * the error body of e; a 503 carries Retry-After, a 405 the route's Allow. */
enum MHD_Result http_send_text(struct MHD_Connection *c, struct req *r, int status, char *text,
                               size_t len, const char *type);
enum MHD_Result http_send_json(struct MHD_Connection *c, struct req *r, int status, cJSON *v);
enum MHD_Result http_send_error(struct MHD_Connection *c, struct req *r, const struct api_error *e);
/* The merchant (or admin) of the request's Bearer key; -1 with e set (401). */
int http_authenticate(struct svc *svc, struct drisk_store *st, struct MHD_Connection *c,
                      struct caller *who, struct api_error *e);
/* -1 with e set (403) for a key without a merchant. */
int http_need_merchant(const struct caller *who, struct api_error *e);
/* Query parameters: an integer in [lo, hi] (dflt when absent), one of the NULL-terminated
 * choices (NULL when absent), an RFC 3339 time. -1 with e set (400). */
int http_query_int(struct MHD_Connection *c, const char *name, int64_t dflt, int64_t lo,
                   int64_t hi, int64_t *out, struct api_error *e);
int http_query_choice(struct MHD_Connection *c, const char *name, const char *const *choices,
                      const char **out, struct api_error *e);
int http_query_ts(struct MHD_Connection *c, const char *name, int64_t dflt, int64_t *out,
                  struct api_error *e);
int http_page_room(struct list_ctx *l);
enum MHD_Result http_page_send(struct ctx *x, cJSON *o, const struct list_ctx *l, const char *also);

/* ---- api/integration.c ---- */
enum MHD_Result http_webhook_create(struct ctx *x, const cJSON *body);    /* POST /v1/webhooks */
enum MHD_Result http_webhook_list(struct ctx *x);                         /* GET /v1/webhooks */
/* GET, DELETE /v1/webhooks/{id} and POST .../deliveries/{did}/redeliver (rest: after
 * "/v1/webhooks/") */
enum MHD_Result http_webhook_one(struct ctx *x, const char *rest);
enum MHD_Result http_webhook_deliveries(struct ctx *x, const char *rest); /* GET .../deliveries */
/* PUT, DELETE /v1/inbound/{provider}/secret (rest: after "/v1/inbound/") */
enum MHD_Result http_inbound_secret(struct ctx *x, const char *rest, const cJSON *body);
/* Who sends POST /v1/inbound/{provider}: a merchant's key, or ?merchant= with the
 * provider's signature; -1 with e set. */
int http_inbound_caller(struct ctx *x, int provider, struct api_error *e);
enum MHD_Result http_inbound(struct ctx *x, const char *name, const cJSON *body);
/* POST /v1/recommendations/{id}/outcome (rest: after "/v1/recommendations/") */
enum MHD_Result http_rec_outcome(struct ctx *x, const char *rest, const cJSON *body);

#endif
