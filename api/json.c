/* JSON bodies of the HTTP API (api/json.h). */
#include "api/json.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/import.h"
#include "base/text.h"
#include "base/timeutil.h"
#include "engine/vocab.h"

#define ARENA_BYTES (64 * 1024)

static _Thread_local char *arena;
static _Thread_local size_t arena_used;
static _Thread_local int arena_on;

static void *arena_malloc(size_t n)
{
    if (arena_on && arena) {
        size_t need = (n + 15) & ~(size_t)15;
        if (need <= ARENA_BYTES - arena_used) {
            void *p = arena + arena_used;
            arena_used += need;
            return p;
        }
    }
    return malloc(n);
}

static void arena_free(void *p)
{
    /* a pointer into this thread's arena is released with the arena */
    if (arena && (char *)p >= arena && (char *)p < arena + ARENA_BYTES)
        return;
    free(p);
}

static pthread_key_t arena_key; /* frees a thread's arena when the thread ends */

static void install_hooks(void)
{
    cJSON_Hooks h = { arena_malloc, arena_free };
    pthread_key_create(&arena_key, free);
    cJSON_InitHooks(&h);
}

void api_json_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_hooks);
}

void api_json_arena_begin(void)
{
    if (!arena && (arena = malloc(ARENA_BYTES)) != NULL)
        pthread_setspecific(arena_key, arena); /* kept for the thread's life */
    arena_used = 0;
    arena_on = 1;
}

void api_json_arena_end(void)
{
    arena_on = 0;
    arena_used = 0;
}

/* The offset of the first \u0000 escape inside a string of valid JSON text, or len. */
static size_t json_nul_escape(const char *buf, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = buf[i] == '"';
        } else if (buf[i] == '"') {
            in_string = 0;
        } else if (buf[i] == '\\' && i + 1 < len) {
            if (buf[i + 1] == 'u' && i + 5 < len && memcmp(buf + i + 2, "0000", 4) == 0)
                return i;
            i++; /* the escaped character, a quote or a backslash included */
        }
    }
    return len;
}

int api_body_parse(const char *buf, size_t len, cJSON **out, struct api_error *e)
{
    *out = NULL;
    if (len == 0)
        return api_fail(e, 400, "invalid_json", "the request body is empty: send a JSON object");
    if (!drisk_utf8_valid(buf, len))
        return api_fail(e, 400, "invalid_json", "the request body is not valid UTF-8");
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!v) {
        size_t at = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : 0;
        return api_fail(e, 400, "invalid_json",
                        "the request body is not valid JSON (near byte %zu%s): check its syntax",
                        at, at >= len ? ", the end: truncated?" : "");
    }
    for (const char *p = end; p < buf + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(v);
            return api_fail(e, 400, "invalid_json",
                            "unexpected data after the JSON value at byte %zu: send one value",
                            (size_t)(p - buf));
        }
    size_t nul = json_nul_escape(buf, len);
    if (nul < len) {
        /* cJSON's strings end at a NUL: the field would be cut short without a word */
        cJSON_Delete(v);
        return api_fail(e, 400, "invalid_json", "a string holds \\u0000 (NUL) at byte %zu: no "
                        "field may contain it", nul);
    }
    *out = v;
    return 0;
}

static const char *where_text(struct api_where at, char buf[48])
{
    if (at.index < 0)
        return at.list;
    snprintf(buf, 48, "%s[%d]", at.list, at.index);
    return buf;
}

/* x / 10^decimals in decimal, written backwards ending just before end (a NUL is put at
 * end), trailing fractional zeros dropped; returns the first character. */
static char *fixed_text(unsigned long long x, int decimals, int negative, char *end)
{
    unsigned long long scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    unsigned long long whole = x / scale, frac = x % scale;
    char *q = end;
    *q = '\0';
    if (frac) {
        int digits = decimals;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        while (digits--) {
            *--q = (char)('0' + frac % 10);
            frac /= 10;
        }
        *--q = '.';
    }
    do
        *--q = (char)('0' + whole % 10);
    while ((whole /= 10) != 0);
    if (negative)
        *--q = '-';
    return q;
}

/* v as text that reads back as exactly v, into buf[40]; returns its length. Numbers with
 * at most six decimals (weights, values: nearly all) are written by integer arithmetic:
 * when x / 1e6 == v for the integer x, the decimal x * 1e-6 rounds back to v. */
static size_t number_text(double v, char buf[40])
{
    double scaled = v * 1e6;
    if (fabs(v) < 1e9 && scaled == (double)(long long)scaled &&
        (double)(long long)scaled / 1e6 == v) {
        long long x = (long long)scaled;
        char tmp[40], *q = fixed_text(x < 0 ? (unsigned long long)-x : (unsigned long long)x, 6,
                                      x < 0, tmp + sizeof tmp - 1);
        size_t len = (size_t)(tmp + sizeof tmp - 1 - q);
        memcpy(buf, q, len + 1);
        return len;
    }
    return (size_t)snprintf(buf, 40, "%.17g", v);
}

/* Text of the fields of object o as a record of kind (0 shipments, 1 scans). Numbers are
 * printed into num (so "weight_kg": 2.5 and "2.5" agree); other types are refused. */
static int to_record(const cJSON *o, int kind, struct api_where at, struct drisk_record *r,
                     char num[DRISK_RECORD_FIELDS][40], struct api_error *e)
{
    char where[48];
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(o))
        return api_fail(e, 400, "invalid_body", "%s: must be a JSON object", where_text(at, where));
    for (const cJSON *c = o->child; c; c = c->next) {
        if (!c->string)
            continue;
        int f = drisk_record_field(kind, c->string, strlen(c->string));
        if (f < 0)
            continue; /* carriers' payloads carry extra fields: ignored */
        if (cJSON_IsNull(c)) {
            r->v[f] = NULL;
        } else if (cJSON_IsString(c)) {
            r->v[f] = c->valuestring;
            r->len[f] = strlen(c->valuestring);
        } else if (cJSON_IsNumber(c)) {
            if (!isfinite(c->valuedouble))
                return api_fail(e, 400, "invalid_field", "%s.%s: the number is out of range",
                                where_text(at, where), c->string);
            r->v[f] = num[f];
            r->len[f] = number_text(c->valuedouble, num[f]);
        } else {
            return api_fail(e, 400, "invalid_field", "%s.%s: must be a string%s",
                            where_text(at, where), c->string, kind == 0 ? " or a number" : "");
        }
    }
    return 0;
}

int api_shipment_from(const cJSON *o, const char *merchant, int for_score, int64_t as_of,
                      struct api_where at, struct drisk_shipment *sh, struct api_error *e)
{
    struct drisk_record r;
    char num[DRISK_RECORD_FIELDS][40], msg[400], where[48];
    char created[DRISK_TS_BUF], promised[DRISK_TS_BUF];
    if (to_record(o, 0, at, &r, num, e))
        return -1;
    int f_id = drisk_record_field(0, "shipment_id", 11);
    int f_created = drisk_record_field(0, "created_at", 10);
    int f_promised = drisk_record_field(0, "promised_at", 11);
    int f_merchant = drisk_record_field(0, "merchant_id", 11);
    if (for_score) {
        if (!r.v[f_id]) {
            r.v[f_id] = "inline";
            r.len[f_id] = 6;
        }
        int64_t c = as_of;
        const char *why;
        if (!r.v[f_created]) {
            r.v[f_created] = drisk_ts_format(as_of, created);
            r.len[f_created] = strlen(created);
        } else if (drisk_ts_parse(r.v[f_created], r.len[f_created], &c, &why)) {
            c = as_of; /* the validator reports it */
        }
        if (!r.v[f_promised]) {
            r.v[f_promised] = drisk_ts_format(c + 5 * 86400, promised);
            r.len[f_promised] = strlen(promised);
        }
    }
    if (r.v[f_merchant] && (strlen(merchant) != r.len[f_merchant] ||
                            memcmp(merchant, r.v[f_merchant], r.len[f_merchant]) != 0))
        return api_fail(e, 403, "wrong_merchant",
                        "%s.merchant_id: not your key's merchant: leave it out", where_text(at, where));
    if (drisk_record_shipment(&r, sh, msg, sizeof msg))
        return api_fail(e, 422, "invalid_field", "%s: %s", where_text(at, where), msg);
    size_t ml = strlen(merchant);
    ml = ml < sizeof sh->merchant ? ml : sizeof sh->merchant - 1;
    memcpy(sh->merchant, merchant, ml);
    sh->merchant[ml] = '\0';
    return 0;
}

int api_scan_from(const cJSON *o, const char *merchant, const char *default_id,
                  struct api_where at, struct svc_scan_in *out, struct api_error *e)
{
    struct drisk_record r;
    char num[DRISK_RECORD_FIELDS][40], msg[400], m[DRISK_ID_MAX], where[48];
    if (to_record(o, 1, at, &r, num, e))
        return -1;
    int f_id = drisk_record_field(1, "shipment_id", 11);
    if (default_id && !r.v[f_id]) {
        r.v[f_id] = default_id;
        r.len[f_id] = strlen(default_id);
    }
    if (drisk_record_scan(&r, m, out->shipment_id, &out->scan, msg, sizeof msg))
        return api_fail(e, 422, "invalid_field", "%s: %s", where_text(at, where), msg);
    if (m[0] && strcmp(m, merchant) != 0)
        return api_fail(e, 403, "wrong_merchant",
                        "%s.merchant_id: not your key's merchant: leave it out", where_text(at, where));
    return 0;
}

/* ---- settings ---- */

struct setting {
    const char *name;
    size_t offset;
    double lo, hi;
};

#define S(field, lo, hi) { #field, offsetof(struct drisk_settings, field), lo, hi }
static const struct setting settings_table[] = {
    S(late_alert, 0, 1),      S(late_critical, 0, 1),     S(lost_alert, 0, 1),
    S(lost_critical, 0, 1),   S(stall_hours, 0, 24 * 365), S(late_medium, 0, 1),
    S(lost_medium, 0, 1),     S(default_value, 0, 1e9),   S(goods_cost_ratio, 0, 10),
    S(reship_cost, 0, 1e9),   S(notify_cost, 0, 1e9),     S(lost_customer_cost, 0, 1e9),
    S(churn_if_lost, 0, 1),   S(churn_if_late, 0, 1),     S(notify_effect, 0, 1),
    S(refund_ratio, 0, 10),   S(claim_cost, 0, 1e9),      S(claim_success, 0, 1),
    S(claim_prior_n, 0, 1e6),
};
#undef S

static int window_from(const cJSON *w, const char *carrier, struct drisk_claim_window *out,
                       struct api_error *e)
{
    if (!cJSON_IsObject(w))
        return api_fail(e, 400, "invalid_settings", "claim_windows.%s: must be an object with "
                        "anchor, open_days and close_days", carrier);
    struct drisk_claim_window cw = *out;
    for (const cJSON *c = w->child; c; c = c->next) {
        if (strcmp(c->string, "anchor") == 0) {
            if (cJSON_IsString(c) && strcmp(c->valuestring, "created") == 0)
                cw.anchor = DRISK_ANCHOR_CREATED;
            else if (cJSON_IsString(c) && strcmp(c->valuestring, "promised") == 0)
                cw.anchor = DRISK_ANCHOR_PROMISED;
            else
                return api_fail(e, 400, "invalid_settings",
                                "claim_windows.%s.anchor: use \"created\" or \"promised\"", carrier);
        } else if (strcmp(c->string, "open_days") == 0 || strcmp(c->string, "close_days") == 0) {
            if (!cJSON_IsNumber(c) || !(c->valuedouble >= 0 && c->valuedouble <= 3650))
                return api_fail(e, 400, "invalid_settings",
                                "claim_windows.%s.%s: a number of days from 0 to 3650", carrier,
                                c->string);
            *(c->string[0] == 'o' ? &cw.open_days : &cw.close_days) = c->valuedouble;
        } else {
            return api_fail(e, 400, "invalid_settings",
                            "claim_windows.%s.%s: unknown key (anchor, open_days, close_days)",
                            carrier, c->string);
        }
    }
    if (cw.close_days < cw.open_days)
        return api_fail(e, 400, "invalid_settings",
                        "claim_windows.%s: close_days is before open_days", carrier);
    *out = cw;
    return 0;
}

int api_settings_apply(const cJSON *o, struct drisk_settings *s, struct api_error *e)
{
    if (!cJSON_IsObject(o))
        return api_fail(e, 400, "invalid_settings", "settings must be a JSON object");
    struct drisk_settings t = *s;
    for (const cJSON *c = o->child; c; c = c->next) {
        const struct setting *k = NULL;
        for (size_t i = 0; i < sizeof settings_table / sizeof settings_table[0]; i++)
            if (strcmp(c->string, settings_table[i].name) == 0)
                k = &settings_table[i];
        if (k) {
            if (!cJSON_IsNumber(c) || !(c->valuedouble >= k->lo && c->valuedouble <= k->hi))
                return api_fail(e, 400, "invalid_settings", "%s: a number from %g to %g",
                                k->name, k->lo, k->hi);
            *(double *)((char *)&t + k->offset) = c->valuedouble;
            continue;
        }
        if (strcmp(c->string, "claim_windows") != 0)
            return api_fail(e, 400, "invalid_settings",
                            "unknown setting \"%.60s\": GET /v1/settings lists them", c->string);
        if (!cJSON_IsObject(c))
            return api_fail(e, 400, "invalid_settings", "claim_windows: must be an object");
        for (const cJSON *w = c->child; w; w = w->next) {
            if (strcmp(w->string, "default") == 0) {
                if (window_from(w, "default", &t.default_window, e))
                    return -1;
                continue;
            }
            size_t len = strlen(w->string);
            if (len == 0 || len >= DRISK_NAME_MAX || !drisk_utf8_valid(w->string, len))
                return api_fail(e, 400, "invalid_settings",
                                "claim_windows: a carrier name of 1 to %d bytes", DRISK_NAME_MAX - 1);
            char carrier[DRISK_NAME_MAX];
            for (size_t i = 0; i <= len; i++)
                carrier[i] = (char)(w->string[i] >= 'A' && w->string[i] <= 'Z'
                                        ? w->string[i] - 'A' + 'a' : w->string[i]);
            struct drisk_claim_window *slot = NULL;
            for (size_t i = 0; i < t.n_windows; i++)
                if (strcmp(t.windows[i].carrier, carrier) == 0)
                    slot = &t.windows[i];
            if (!slot) {
                if (t.n_windows == DRISK_MAX_CLAIM_WINDOWS)
                    return api_fail(e, 400, "invalid_settings",
                                    "claim_windows: at most %d carriers", DRISK_MAX_CLAIM_WINDOWS);
                slot = &t.windows[t.n_windows++];
                *slot = t.default_window;
                memcpy(slot->carrier, carrier, len + 1);
            }
            if (window_from(w, carrier, slot, e))
                return -1;
        }
    }
    if (t.late_critical < t.late_alert || t.lost_critical < t.lost_alert)
        return api_fail(e, 400, "invalid_settings",
                        "late_critical / lost_critical must not be below late_alert / lost_alert");
    *s = t;
    return 0;
}

int api_settings_parse(const char *buf, size_t len, struct drisk_settings *s, struct api_error *e)
{
    cJSON *o;
    if (api_body_parse(buf, len, &o, e))
        return -1;
    int rc = api_settings_apply(o, s, e);
    cJSON_Delete(o);
    return rc;
}

static cJSON *window_json(const struct drisk_claim_window *w)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "anchor", w->anchor == DRISK_ANCHOR_CREATED ? "created" : "promised");
    cJSON_AddNumberToObject(o, "open_days", w->open_days);
    cJSON_AddNumberToObject(o, "close_days", w->close_days);
    return o;
}

cJSON *api_settings_json(const struct drisk_settings *s)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof settings_table / sizeof settings_table[0]; i++)
        cJSON_AddNumberToObject(o, settings_table[i].name,
                                *(const double *)((const char *)s + settings_table[i].offset));
    cJSON *w = cJSON_AddObjectToObject(o, "claim_windows");
    for (size_t i = 0; i < s->n_windows; i++)
        cJSON_AddItemToObject(w, s->windows[i].carrier, window_json(&s->windows[i]));
    cJSON_AddItemToObject(w, "default", window_json(&s->default_window));
    return o;
}

/* ---- rendering ---- */

void api_add_ts(cJSON *o, const char *key, int64_t ts)
{
    char buf[DRISK_TS_BUF];
    if (ts == DRISK_TS_NONE)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddStringToObject(o, key, drisk_ts_format(ts, buf));
}

/* A finite v as response text with 9 decimals (9 significant digits above 1e6), into
 * buf[40]; NULL for NaN and infinities (null in JSON). cJSON prints a number up to three
 * times to find its shortest exact form, a measurable share of a /v1/score request. */
static const char *output_number(double v, char buf[40])
{
    if (isnan(v) || !isfinite(v))
        return NULL;
    if (v >= 0 && v < 1e6)
        return fixed_text((unsigned long long)llround(v * 1e9), 9, 0, buf + 39);
    snprintf(buf, 40, "%.9g", v);
    return buf;
}

void api_add_num(cJSON *o, const char *key, double v)
{
    char buf[40];
    const char *t = output_number(v, buf);
    if (t)
        cJSON_AddRawToObject(o, key, t);
    else
        cJSON_AddNullToObject(o, key);
}

/* as_of + h hours; none for no estimate or one beyond a century (no overflow) */
static int64_t eta_ts(int64_t as_of, double h)
{
    return !(fabs(h) < 876000.0) ? DRISK_TS_NONE : as_of + (int64_t)llround(h * 3600.0);
}

static cJSON *model_ids_json(const int64_t ids[DRISK_TARGET_COUNT])
{
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < DRISK_TARGET_COUNT; k++)
        api_add_num(o, drisk_target_name((enum drisk_target)k), ids[k] ? (double)ids[k] : NAN);
    return o;
}

cJSON *api_risk_json(const struct drisk_risk *r, const int64_t ids[DRISK_TARGET_COUNT])
{
    cJSON *o = cJSON_CreateObject();
    api_add_ts(o, "as_of", r->as_of);
    api_add_num(o, "p_late", r->p_late);
    api_add_num(o, "p_lost", r->p_lost);
    api_add_ts(o, "eta", eta_ts(r->as_of, r->eta_p50_h));
    api_add_ts(o, "eta_p90", eta_ts(r->as_of, r->eta_p90_h));
    cJSON_AddStringToObject(o, "risk_level", drisk_risk_level_name(r->level));
    cJSON *reasons = cJSON_AddArrayToObject(o, "reasons");
    for (size_t i = 0; i < r->n_reasons; i++)
        cJSON_AddItemToArray(reasons, cJSON_CreateString(r->reasons[i]));
    cJSON_AddItemToObject(o, "models", model_ids_json(ids));
    return o;
}

/* ---- JSON text written directly (the /v1/score answer: no tree, one buffer) ---- */

/* Room for n more bytes and the NUL; 0, or -1 with t->failed set. */
static int text_room(struct api_text *t, size_t n)
{
    if (t->failed)
        return -1;
    if (t->len + n + 1 <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 512;
    while (cap < t->len + n + 1)
        cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) {
        t->failed = 1;
        return -1;
    }
    t->p = p;
    t->cap = cap;
    return 0;
}

void api_text_put(struct api_text *t, const char *s, size_t n)
{
    if (text_room(t, n))
        return;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

void api_text_printf(struct api_text *t, const char *fmt, ...)
{
    while (!t->failed) { /* formats once when the text has room, twice when it must grow */
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        text_room(t, (size_t)n);
    }
}

#define JT_LIT(t, s) api_text_put((t), (s), sizeof(s) - 1)

/* A JSON string: quotes, backslashes and control characters escaped (the text is UTF-8
 * already: everything else goes as it is). */
static void jt_str(struct api_text *t, const char *s)
{
    JT_LIT(t, "\"");
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        api_text_put(t, run, (size_t)(s - run));
        char esc[8] = { '\\', (char)c, 0 };
        const char *short_esc = strchr("\b\f\n\r\t", c); /* as cJSON writes them */
        if (c && short_esc) {
            esc[1] = "bfnrt"[short_esc - "\b\f\n\r\t"];
            api_text_put(t, esc, 2);
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            api_text_put(t, esc, 6);
        } else {
            api_text_put(t, esc, 2);
        }
        run = s + 1;
    }
    api_text_put(t, run, (size_t)(s - run));
    JT_LIT(t, "\"");
}

static void jt_num(struct api_text *t, double v)
{
    char buf[40];
    const char *s = output_number(v, buf);
    if (s)
        api_text_put(t, s, strlen(s));
    else
        JT_LIT(t, "null");
}

static void jt_ts(struct api_text *t, int64_t ts)
{
    char buf[DRISK_TS_BUF];
    if (ts == DRISK_TS_NONE)
        JT_LIT(t, "null");
    else
        jt_str(t, drisk_ts_format(ts, buf));
}

char *api_risk_text(const struct drisk_risk *r, const int64_t ids[DRISK_TARGET_COUNT], size_t *len)
{
    struct api_text t = { 0 };
    JT_LIT(&t, "{\"risk\":{\"as_of\":");
    jt_ts(&t, r->as_of);
    JT_LIT(&t, ",\"p_late\":");
    jt_num(&t, r->p_late);
    JT_LIT(&t, ",\"p_lost\":");
    jt_num(&t, r->p_lost);
    JT_LIT(&t, ",\"eta\":");
    jt_ts(&t, eta_ts(r->as_of, r->eta_p50_h));
    JT_LIT(&t, ",\"eta_p90\":");
    jt_ts(&t, eta_ts(r->as_of, r->eta_p90_h));
    JT_LIT(&t, ",\"risk_level\":");
    jt_str(&t, drisk_risk_level_name(r->level));
    JT_LIT(&t, ",\"reasons\":[");
    for (size_t i = 0; i < r->n_reasons; i++) {
        if (i)
            JT_LIT(&t, ",");
        jt_str(&t, r->reasons[i]);
    }
    JT_LIT(&t, "],\"models\":{\"late\":");
    for (int k = 0; k < DRISK_TARGET_COUNT; k++) {
        if (k)
            api_text_put(&t, k == 1 ? ",\"lost\":" : ",\"eta\":", k == 1 ? 8 : 7);
        jt_num(&t, ids[k] ? (double)ids[k] : NAN);
    }
    JT_LIT(&t, "}}}");
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}

static void print_into(cJSON *v, char *buf, size_t cap)
{
    if (!v || !cJSON_PrintPreallocated(v, buf, (int)cap, 0))
        snprintf(buf, cap, "[]");
    cJSON_Delete(v);
}

void api_risk_row(const struct drisk_risk *r, const int64_t ids[DRISK_TARGET_COUNT], struct drisk_risk_row *row)
{
    memset(row, 0, sizeof *row);
    row->as_of = r->as_of;
    row->p_late = r->p_late;
    row->p_lost = r->p_lost;
    row->eta = eta_ts(r->as_of, r->eta_p50_h);
    row->eta_p90 = eta_ts(r->as_of, r->eta_p90_h);
    snprintf(row->level, sizeof row->level, "%s", drisk_risk_level_name(r->level));
    cJSON *reasons = cJSON_CreateArray();
    for (size_t i = 0; i < r->n_reasons; i++)
        cJSON_AddItemToArray(reasons, cJSON_CreateString(r->reasons[i]));
    print_into(reasons, row->reasons, sizeof row->reasons);
    print_into(model_ids_json(ids), row->model_ids, sizeof row->model_ids);
}

void api_rec_row(const struct drisk_recommendation *rec, struct drisk_rec_row *row)
{
    memset(row, 0, sizeof *row);
    snprintf(row->action, sizeof row->action, "%s", drisk_action_name(rec->action));
    row->deadline = rec->deadline;
    cJSON *costs = cJSON_CreateObject();
    for (int a = 0; a < DRISK_ACTION_COUNT; a++)
        if (rec->available[a])
            cJSON_AddNumberToObject(costs, drisk_action_name(a), round(rec->cost[a] * 100) / 100);
        else
            cJSON_AddNullToObject(costs, drisk_action_name(a));
    print_into(costs, row->costs, sizeof row->costs);
    snprintf(row->why, sizeof row->why, "%s", rec->why);
}

cJSON *api_alert_json(const struct drisk_alert_row *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)a->id);
    cJSON_AddNumberToObject(o, "cursor", (double)a->seq);
    cJSON_AddStringToObject(o, "shipment_id", a->shipment_id);
    cJSON_AddStringToObject(o, "type", a->type);
    cJSON_AddStringToObject(o, "severity", a->severity);
    cJSON_AddStringToObject(o, "status", a->cleared_at != DRISK_TS_NONE ? "cleared" : "open");
    api_add_ts(o, "opened_at", a->opened_at);
    api_add_ts(o, "updated_at", a->updated_at);
    api_add_ts(o, "cleared_at", a->cleared_at);
    api_add_ts(o, "acknowledged_at", a->acked_at);
    cJSON_AddStringToObject(o, "message", a->message);
    return o;
}

cJSON *api_rec_json(const struct drisk_rec_row *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    cJSON_AddStringToObject(o, "shipment_id", r->shipment_id);
    cJSON_AddStringToObject(o, "action", r->action);
    api_add_ts(o, "deadline", r->deadline);
    cJSON *costs = cJSON_Parse(r->costs);
    cJSON_AddItemToObject(o, "expected_costs", costs ? costs : cJSON_CreateObject());
    cJSON_AddStringToObject(o, "why", r->why);
    api_add_ts(o, "created_at", r->created_at);
    api_add_ts(o, "updated_at", r->updated_at);
    cJSON_AddStringToObject(o, "status", r->open ? "open" : "closed");
    if (r->outcome[0]) { /* what the merchant last reported doing with it */
        cJSON *oc = cJSON_AddObjectToObject(o, "outcome");
        cJSON_AddStringToObject(oc, "outcome", r->outcome);
        api_add_num(oc, "amount", r->outcome_amount);
        api_add_ts(oc, "at", r->outcome_at);
    } else {
        cJSON_AddNullToObject(o, "outcome");
    }
    return o;
}

cJSON *api_shipment_json(const struct drisk_shipment *sh, const struct drisk_scan *scans, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "shipment_id", sh->shipment_id);
    cJSON_AddStringToObject(o, "merchant_id", sh->merchant);
    if (sh->order_id[0])
        cJSON_AddStringToObject(o, "order_id", sh->order_id);
    cJSON_AddStringToObject(o, "carrier", sh->carrier);
    cJSON_AddStringToObject(o, "service", sh->service);
    cJSON_AddStringToObject(o, "origin", sh->origin);
    cJSON_AddStringToObject(o, "destination", sh->destination);
    api_add_num(o, "weight_kg", sh->weight_kg);
    api_add_num(o, "declared_value", sh->declared_value);
    api_add_ts(o, "created_at", sh->created_at);
    api_add_ts(o, "promised_at", sh->promised_at);
    api_add_ts(o, "delivered_at", sh->delivered_at);
    if (sh->outcome)
        cJSON_AddStringToObject(o, "outcome", drisk_outcome_name(sh->outcome));
    else
        cJSON_AddNullToObject(o, "outcome");
    /* the carrier's own estimate, from an aggregator's webhook */
    api_add_ts(o, "carrier_eta", sh->carrier_eta > 0 ? sh->carrier_eta : DRISK_TS_NONE);
    if (scans) {
        cJSON *tl = cJSON_AddArrayToObject(o, "timeline");
        for (size_t k = 0; k < n; k++) {
            cJSON *e = cJSON_CreateObject();
            api_add_ts(e, "ts", scans[k].ts);
            cJSON_AddStringToObject(e, "event", drisk_event_name(scans[k].event));
            if (scans[k].location[0])
                cJSON_AddStringToObject(e, "location", scans[k].location);
            if (scans[k].reason)
                cJSON_AddStringToObject(e, "reason", drisk_reason_name(scans[k].reason));
            if (scans[k].description[0])
                cJSON_AddStringToObject(e, "description", scans[k].description);
            cJSON_AddItemToArray(tl, e);
        }
    }
    return o;
}
