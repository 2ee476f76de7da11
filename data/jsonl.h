/* A streaming JSON Lines reader for flat objects: one object per line whose values are
 * strings, numbers, booleans or null (what the interchange format holds). Lines are
 * read into a fixed buffer, so memory stays bounded whatever the input. */
#ifndef DRISK_JSONL_H
#define DRISK_JSONL_H

#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

#define DRISK_JSONL_MAX_LINE (1 << 20)
#define DRISK_JSONL_MAX_PAIRS 256

struct drisk_jsonl;

/* One object. Keys and values are unescaped, NUL-terminated and borrowed until the next
 * drisk_jsonl_next or free. A number keeps its JSON spelling ("1.50"); true/false become
 * "true"/"false"; null is an empty value with is_null set. raw is the line as read. */
struct drisk_jsonl_record {
    int n;
    const char *key[DRISK_JSONL_MAX_PAIRS];
    const char *val[DRISK_JSONL_MAX_PAIRS];
    size_t len[DRISK_JSONL_MAX_PAIRS];
    unsigned char is_null[DRISK_JSONL_MAX_PAIRS];
    int64_t line;
    const char *raw;
    size_t raw_len;
};

/* Wraps f (borrowed). NULL when out of memory. */
struct drisk_jsonl *drisk_jsonl_create(FILE *f);
void drisk_jsonl_free(struct drisk_jsonl *j);

/* Returns 1 with the next object, 0 at end of input, or -1 with rec->line set to the
 * line and err saying what is wrong (without the line: the caller adds the place).
 * After a bad line reading goes on with the next; after a read error (DRISK_EIO) the
 * input ends. */
int drisk_jsonl_next(struct drisk_jsonl *j, struct drisk_jsonl_record *rec, struct drisk_error *err);

/* Parses one line of len bytes into rec using scratch (at least len + 1 bytes, which
 * keys and values then point into). Returns 0, or -1 with a reason in err. Exposed for
 * tests and for callers that already hold a line. */
int drisk_jsonl_parse_line(const char *line, size_t len, char *scratch,
                           struct drisk_jsonl_record *rec, struct drisk_error *err);

/* Bytes consumed so far (for progress). */
int64_t drisk_jsonl_offset(const struct drisk_jsonl *j);

#endif
