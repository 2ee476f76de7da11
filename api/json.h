/* JSON bodies of the HTTP API (cJSON): parsing requests into the domain's records with
 * the importers' validation (data/import.h), and rendering risks, alerts,
 * recommendations, shipments and settings. Private to api/. */
#ifndef DRISK_API_JSON_H
#define DRISK_API_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "api/service.h"
#include "data/live.h"
#include "engine/policy.h"
#include "engine/risk.h"

/* cJSON's memory during a request: a per-thread bump arena, reset by each request, so the
 * few hundred small allocations of parsing a body and building an answer cost a pointer
 * increment each (malloc and free were a fifth of a /v1/score request's CPU). Outside
 * begin/end, and past the arena's 64 KiB, cJSON uses malloc. No cJSON value may outlive
 * the request that made it; api_json_init installs the hooks (once per process). */
void api_json_init(void);
void api_json_arena_begin(void);
void api_json_arena_end(void);

/* Parses a request body: valid UTF-8, one JSON value, nothing after it but spaces.
 * -1 with e set (400). */
int api_body_parse(const char *buf, size_t len, cJSON **out, struct api_error *e);

/* Where an object sits in a request, for messages: list[index] ("scans[3]"), or list
 * alone when index < 0 ("shipment"). Formatted only when something is wrong. */
struct api_where {
    const char *list;
    int index;
};

/* A shipment object. merchant_id, when given, must be merchant's. With for_score,
 * shipment_id, created_at and promised_at may be left out (defaults: "inline", as_of,
 * created_at + 5 days). */
int api_shipment_from(const cJSON *o, const char *merchant, int for_score, int64_t as_of,
                      struct api_where at, struct drisk_shipment *sh, struct api_error *e);
/* A scan object; shipment_id defaults to default_id when not NULL. */
int api_scan_from(const cJSON *o, const char *merchant, const char *default_id,
                  struct api_where at, struct svc_scan_in *out, struct api_error *e);

/* Settings: parse (overlaying *s, so a partial object changes only what it names;
 * unknown keys and out-of-range values are refused) and render. */
int api_settings_parse(const char *buf, size_t len, struct drisk_settings *s, struct api_error *e);
int api_settings_apply(const cJSON *o, struct drisk_settings *s, struct api_error *e);
cJSON *api_settings_json(const struct drisk_settings *s);

/* A growing, NUL-terminated text in malloc'd memory (answers written without cJSON, the
 * metrics page). Zero-initialise it; after an allocation failure `failed` is set and
 * further appends do nothing, so a writer checks once at the end. */
struct api_text {
    char *p;
    size_t len, cap;
    int failed;
};
void api_text_put(struct api_text *t, const char *s, size_t n);
void api_text_printf(struct api_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

cJSON *api_risk_json(const struct drisk_risk *r, const int64_t ids[DRISK_TARGET_COUNT]);
/* The same risk as {"risk": {...}} text written directly, no cJSON tree (the /v1/score
 * answer): a malloc'd, NUL-terminated string of *len bytes, or NULL out of memory. */
char *api_risk_text(const struct drisk_risk *r, const int64_t ids[DRISK_TARGET_COUNT], size_t *len);
void api_risk_row(const struct drisk_risk *r, const int64_t ids[DRISK_TARGET_COUNT], struct drisk_risk_row *row);
void api_rec_row(const struct drisk_recommendation *rec, struct drisk_rec_row *row);
cJSON *api_alert_json(const struct drisk_alert_row *a);
cJSON *api_rec_json(const struct drisk_rec_row *r);
cJSON *api_shipment_json(const struct drisk_shipment *sh, const struct drisk_scan *scans, size_t n);

/* Adds an RFC 3339 time (null for DRISK_TS_NONE) / a number (null for NAN). */
void api_add_ts(cJSON *o, const char *key, int64_t ts);
void api_add_num(cJSON *o, const char *key, double v);

#endif
