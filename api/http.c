/* What drisk serve's route handlers share (api/http.h): answers, auth, query parameters
 * and pages. */
#include "api/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/json.h"
#include "base/timeutil.h"

/* ---- responses ---- */

enum MHD_Result http_send_text(struct MHD_Connection *c, struct req *r, int status, char *text,
                               size_t len, const char *type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == 503) /* the store was busy or failed: nothing was written, try again */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 405 && r->allow) /* the methods the route takes */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    r->status = status;
    r->bytes = len;
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

enum MHD_Result http_send_json(struct MHD_Connection *c, struct req *r, int status, cJSON *v)
{
    /* cJSON's text may live in the request arena: MHD gets its own copy */
    char *text = v ? cJSON_PrintUnformatted(v) : NULL;
    cJSON_Delete(v);
    char *copy = text ? strdup(text) : NULL;
    cJSON_free(text);
    if (!copy) {
        static const char oom[] = "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
        copy = strdup(oom);
        status = 503;
        if (!copy)
            return MHD_NO;
    }
    return http_send_text(c, r, status, copy, strlen(copy), "application/json");
}

enum MHD_Result http_send_error(struct MHD_Connection *c, struct req *r, const struct api_error *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(err, "code", e->code);
    cJSON_AddStringToObject(err, "message", e->message);
    return http_send_json(c, r, e->status, o);
}

/* ---- auth ---- */

int http_authenticate(struct svc *svc, struct drisk_store *st, struct MHD_Connection *c,
                        struct caller *who, struct api_error *e)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h)
        return api_fail(e, 401, "unauthorized", "missing Authorization: Bearer KEY (create a key "
                        "with drisk keys --db DB create --merchant M)");
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return api_fail(e, 401, "unauthorized", "the Authorization header must be Bearer KEY");
    const char *key = h + 7;
    while (*key == ' ')
        key++;
    size_t len = strlen(key);
    while (len && key[len - 1] == ' ')
        len--;
    return svc_auth(svc, st, key, len, who->merchant, &who->admin, e);
}

int http_need_merchant(const struct caller *who, struct api_error *e)
{
    if (!who->merchant[0])
        return api_fail(e, 403, "no_merchant", "this admin key has no merchant: use a merchant's "
                        "key for merchant data");
    return 0;
}

/* ---- query parameters ---- */

int http_query_int(struct MHD_Connection *c, const char *name, int64_t dflt, int64_t lo,
                     int64_t hi, int64_t *out, struct api_error *e)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    *out = dflt;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return api_fail(e, 400, "invalid_parameter", "%s: an integer from %lld to %lld", name,
                        (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

/* A query parameter that must be one of the NULL-terminated choices (NULL when absent). */
int http_query_choice(struct MHD_Connection *c, const char *name, const char *const *choices,
                        const char **out, struct api_error *e)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    *out = NULL;
    if (!v)
        return 0;
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0) {
            *out = choices[i];
            return 0;
        }
    char list[160] = "";
    for (size_t i = 0; choices[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", choices[i]);
    return api_fail(e, 400, "invalid_parameter", "%s: one of %s", name, list);
}

/* An RFC 3339 query parameter (dflt when absent). */
int http_query_ts(struct MHD_Connection *c, const char *name, int64_t dflt, int64_t *out,
                    struct api_error *e)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    const char *why = NULL;
    *out = dflt;
    if (v && drisk_ts_parse(v, strlen(v), out, &why) != 0)
        return api_fail(e, 400, "invalid_parameter", "%s: %s (want RFC 3339, e.g. "
                        "2025-06-01T00:00:00Z)", name, why ? why : "not a time");
    return 0;
}

/* 1 when the page has room for one more item (counted), 0 when it is full: the row the
 * store gave beyond it says there is more. */
int http_page_room(struct list_ctx *l)
{
    if (l->n == l->max) {
        l->more = 1;
        return 0;
    }
    l->n++;
    return 1;
}

/* Sends the page: its items, next_cursor (exact: as an integer, a double's text may
 * round it) and has_more, plus extra names for next_cursor older clients read. */
enum MHD_Result http_page_send(struct ctx *x, cJSON *o, const struct list_ctx *l,
                                 const char *also)
{
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)l->last);
    cJSON_AddRawToObject(o, "next_cursor", cur);
    cJSON_AddBoolToObject(o, "has_more", l->more);
    if (also)
        cJSON_AddRawToObject(o, also, cur);
    return http_send_json(x->c, x->r, 200, o);
}

