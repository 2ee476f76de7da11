/* JSON Lines: a bounded line reader and a parser for one flat JSON object. Values are
 * unescaped into a scratch buffer no longer than the line (unescaping never grows text:
 * \uXXXX is 6 bytes in, at most 3 out; a surrogate pair is 12 in, 4 out). */
#include "data/jsonl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LINE_FIRST (1 << 12)

struct drisk_jsonl {
    FILE *f;
    char *line;    /* cap bytes each, doubling up to DRISK_JSONL_MAX_LINE + 1: a reader */
    char *scratch; /* of short lines stays small */
    size_t cap;
    int64_t lineno, offset;
    int failed; /* a read error was reported: the input ends there */
};

struct drisk_jsonl *drisk_jsonl_create(FILE *f)
{
    struct drisk_jsonl *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->f = f;
    j->line = malloc(LINE_FIRST);
    j->scratch = malloc(LINE_FIRST);
    j->cap = LINE_FIRST;
    if (!j->line || !j->scratch) {
        drisk_jsonl_free(j);
        return NULL;
    }
    return j;
}

void drisk_jsonl_free(struct drisk_jsonl *j)
{
    if (!j)
        return;
    free(j->line);
    free(j->scratch);
    free(j);
}

int64_t drisk_jsonl_offset(const struct drisk_jsonl *j)
{
    return j->offset;
}

struct parser {
    const char *s;
    size_t i, len;
    char *out;
    size_t o;
    struct drisk_error *err;
};

static void ws(struct parser *p)
{
    while (p->i < p->len &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r' || p->s[p->i] == '\n'))
        p->i++;
}

static int fail(struct parser *p, const char *what)
{
    drisk_error_set(p->err, DRISK_EINVAL, "column %zu: %s", p->i + 1, what);
    return -1;
}

static int hex4(struct parser *p, unsigned *v)
{
    if (p->i + 4 > p->len)
        return -1;
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        *v = *v * 16 + d;
    }
    return 0;
}

static void put_utf8(struct parser *p, unsigned cp)
{
    if (cp < 0x80) {
        p->out[p->o++] = (char)cp;
    } else if (cp < 0x800) {
        p->out[p->o++] = (char)(0xC0 | (cp >> 6));
        p->out[p->o++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        p->out[p->o++] = (char)(0xE0 | (cp >> 12));
        p->out[p->o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        p->out[p->o++] = (char)(0x80 | (cp & 0x3F));
    } else {
        p->out[p->o++] = (char)(0xF0 | (cp >> 18));
        p->out[p->o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        p->out[p->o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        p->out[p->o++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* Parses a string at p->s[p->i] == '"' into out; *start gets its offset in out. */
static int string(struct parser *p, size_t *start, size_t *len)
{
    p->i++;
    *start = p->o;
    for (;;) {
        if (p->i >= p->len)
            return fail(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->i++];
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(p, "control character inside a string (escape it, e.g. \\n)");
        if (c != '\\') {
            p->out[p->o++] = (char)c;
            continue;
        }
        if (p->i >= p->len)
            return fail(p, "unterminated escape");
        char e = p->s[p->i++];
        switch (e) {
        case '"': p->out[p->o++] = '"'; break;
        case '\\': p->out[p->o++] = '\\'; break;
        case '/': p->out[p->o++] = '/'; break;
        case 'b': p->out[p->o++] = '\b'; break;
        case 'f': p->out[p->o++] = '\f'; break;
        case 'n': p->out[p->o++] = '\n'; break;
        case 'r': p->out[p->o++] = '\r'; break;
        case 't': p->out[p->o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(p, &cp))
                return fail(p, "bad \\u escape: expected 4 hex digits");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p->i + 2 > p->len || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                    return fail(p, "unpaired UTF-16 surrogate in \\u escape");
                p->i += 2;
                if (hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(p, "unpaired UTF-16 surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(p, "unpaired UTF-16 surrogate in \\u escape");
            }
            if (cp == 0)
                return fail(p, "\\u0000 (NUL) is not allowed");
            put_utf8(p, cp);
            break;
        }
        default:
            return fail(p, "unknown escape in string");
        }
    }
    *len = p->o - *start;
    p->out[p->o++] = '\0';
    return 0;
}

/* A JSON number per RFC 8259, copied as spelled. */
static int number(struct parser *p, size_t *start, size_t *len)
{
    size_t b = p->i;
    if (p->i < p->len && p->s[p->i] == '-')
        p->i++;
    if (p->i >= p->len || p->s[p->i] < '0' || p->s[p->i] > '9')
        return fail(p, "expected a value (string, number, true, false or null)");
    if (p->s[p->i] == '0')
        p->i++;
    else
        while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    if (p->i < p->len && p->s[p->i] == '.') {
        p->i++;
        if (p->i >= p->len || p->s[p->i] < '0' || p->s[p->i] > '9')
            return fail(p, "bad number: digits expected after '.'");
        while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    }
    if (p->i < p->len && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->len && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (p->i >= p->len || p->s[p->i] < '0' || p->s[p->i] > '9')
            return fail(p, "bad number: digits expected in the exponent");
        while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
    }
    *start = p->o;
    *len = p->i - b;
    memcpy(p->out + p->o, p->s + b, *len);
    p->o += *len;
    p->out[p->o++] = '\0';
    return 0;
}

static int literal(struct parser *p, const char *word, size_t *start, size_t *len)
{
    size_t wl = strlen(word);
    if (p->i + wl > p->len || memcmp(p->s + p->i, word, wl) != 0)
        return fail(p, "expected a value (string, number, true, false or null)");
    p->i += wl;
    *start = p->o;
    *len = wl;
    memcpy(p->out + p->o, word, wl + 1);
    p->o += wl + 1;
    return 0;
}

int drisk_jsonl_parse_line(const char *line, size_t len, char *scratch,
                           struct drisk_jsonl_record *rec, struct drisk_error *err)
{
    struct parser p = { line, 0, len, scratch, 0, err };
    size_t kstart[DRISK_JSONL_MAX_PAIRS], vstart[DRISK_JSONL_MAX_PAIRS], klen;
    rec->n = 0;
    rec->raw = line;
    rec->raw_len = len;
    ws(&p);
    if (p.i >= p.len || p.s[p.i] != '{')
        return fail(&p, "each line must be one JSON object ({...})");
    p.i++;
    ws(&p);
    if (p.i < p.len && p.s[p.i] == '}') {
        p.i++;
    } else {
        for (;;) {
            ws(&p);
            if (p.i >= p.len || p.s[p.i] != '"')
                return fail(&p, "expected a field name in double quotes");
            if (rec->n == DRISK_JSONL_MAX_PAIRS)
                return fail(&p, "too many fields in one object");
            int k = rec->n;
            if (string(&p, &kstart[k], &klen))
                return -1;
            ws(&p);
            if (p.i >= p.len || p.s[p.i] != ':')
                return fail(&p, "expected ':' after a field name");
            p.i++;
            ws(&p);
            rec->is_null[k] = 0;
            int r;
            char c = p.i < p.len ? p.s[p.i] : '\0';
            if (c == '"') {
                r = string(&p, &vstart[k], &rec->len[k]);
            } else if (c == '{' || c == '[') {
                drisk_error_set(err, DRISK_EINVAL,
                                "field \"%s\": nested objects and arrays are not supported "
                                "(give a string or a number)", scratch + kstart[k]);
                return -1;
            } else if (c == 't') {
                r = literal(&p, "true", &vstart[k], &rec->len[k]);
            } else if (c == 'f') {
                r = literal(&p, "false", &vstart[k], &rec->len[k]);
            } else if (c == 'n') {
                r = literal(&p, "null", &vstart[k], &rec->len[k]);
                if (!r) {
                    scratch[vstart[k]] = '\0';
                    rec->len[k] = 0;
                    rec->is_null[k] = 1;
                }
            } else {
                r = number(&p, &vstart[k], &rec->len[k]);
            }
            if (r)
                return -1;
            rec->n++;
            ws(&p);
            if (p.i < p.len && p.s[p.i] == ',') {
                p.i++;
                continue;
            }
            if (p.i < p.len && p.s[p.i] == '}') {
                p.i++;
                break;
            }
            return fail(&p, "expected ',' or '}' after a value");
        }
    }
    ws(&p);
    if (p.i != p.len)
        return fail(&p, "unexpected text after the object (one object per line)");
    for (int k = 0; k < rec->n; k++) {
        rec->key[k] = scratch + kstart[k];
        rec->val[k] = scratch + vstart[k];
    }
    return 0;
}

int drisk_jsonl_next(struct drisk_jsonl *j, struct drisk_jsonl_record *rec, struct drisk_error *err)
{
    if (j->failed)
        return 0;
    for (;;) {
        size_t n = 0;
        int c, too_long = 0, nul = 0;
        while ((c = getc_unlocked(j->f)) != EOF) {
            j->offset++;
            if (c == '\n')
                break;
            if (c == 0)
                nul = 1;
            if (n + 1 >= j->cap && n < DRISK_JSONL_MAX_LINE && !too_long) {
                size_t cap = j->cap * 2 > DRISK_JSONL_MAX_LINE + 1 ? DRISK_JSONL_MAX_LINE + 1
                                                                   : j->cap * 2;
                char *l = realloc(j->line, cap), *sc = l ? realloc(j->scratch, cap) : NULL;
                if (l)
                    j->line = l;
                if (sc)
                    j->scratch = sc;
                if (l && sc)
                    j->cap = cap;
                else
                    too_long = 1; /* out of memory: reported as too long, the line skipped */
            }
            if (n < DRISK_JSONL_MAX_LINE && n + 1 < j->cap)
                j->line[n++] = (char)c;
            else
                too_long = 1;
        }
        if (c == EOF && ferror(j->f)) {
            j->failed = 1;
            rec->line = j->lineno + 1;
            drisk_error_set(err, DRISK_EIO, "read error: %s", strerror(errno));
            return -1;
        }
        if (c == EOF && n == 0)
            return 0;
        j->lineno++;
        if (j->lineno == 1 && n >= 3 && memcmp(j->line, "\xEF\xBB\xBF", 3) == 0) {
            memmove(j->line, j->line + 3, n - 3);
            n -= 3;
        }
        if (n > 0 && j->line[n - 1] == '\r')
            n--;
        j->line[n] = '\0';
        rec->line = j->lineno;
        if (too_long) {
            drisk_error_set(err, DRISK_EINVAL, "line longer than %d bytes",
                            DRISK_JSONL_MAX_LINE);
            return -1;
        }
        if (nul) {
            drisk_error_set(err, DRISK_EINVAL, "NUL byte in the data (is this a UTF-8 text file?)");
            return -1;
        }
        size_t k = 0;
        while (k < n && (j->line[k] == ' ' || j->line[k] == '\t'))
            k++;
        if (k == n)
            continue; /* blank line */
        if (drisk_jsonl_parse_line(j->line, n, j->scratch, rec, err))
            return -1;
        rec->line = j->lineno;
        return 1;
    }
}
