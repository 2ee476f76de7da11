/* The CSV state machine. Bytes are copied once from the read chunk into the record
 * buffer, unquoting as they go; field boundaries are recorded as offsets and turned
 * into pointers when the record is complete (so the buffer may grow meanwhile: it starts
 * small and doubles up to the record limit, which keeps a reader of a small file small). */
#include "data/csv.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK (1 << 16)
#define REC_FIRST (1 << 12)

struct drisk_csv {
    FILE *f;
    unsigned char *chunk;
    size_t pos, end;
    int eof, started;
    int64_t offset; /* bytes consumed */
    int64_t line;   /* current line number (1-based) */
    char *rec;      /* record buffer of rec_cap bytes, at most DRISK_CSV_MAX_RECORD + 1 */
    size_t rec_cap;
    size_t start[DRISK_CSV_MAX_FIELDS];
};

struct drisk_csv *drisk_csv_create(FILE *f)
{
    struct drisk_csv *csv = calloc(1, sizeof *csv);
    if (!csv)
        return NULL;
    csv->f = f;
    csv->chunk = malloc(CHUNK);
    csv->rec = malloc(REC_FIRST);
    csv->rec_cap = REC_FIRST;
    if (!csv->chunk || !csv->rec) {
        drisk_csv_free(csv);
        return NULL;
    }
    csv->line = 1;
    return csv;
}

void drisk_csv_free(struct drisk_csv *csv)
{
    if (!csv)
        return;
    free(csv->chunk);
    free(csv->rec);
    free(csv);
}

int64_t drisk_csv_offset(const struct drisk_csv *csv)
{
    return csv->offset;
}

/* Next byte, or -1 at end of input (-2 on a read error). */
static inline int next_byte(struct drisk_csv *csv)
{
    if (csv->pos == csv->end) {
        if (csv->eof)
            return -1;
        csv->end = fread(csv->chunk, 1, CHUNK, csv->f);
        csv->pos = 0;
        if (csv->end < CHUNK) {
            csv->eof = 1;
            if (ferror(csv->f))
                return -2;
        }
        if (!csv->started) {
            csv->started = 1;
            if (csv->end >= 3 && memcmp(csv->chunk, "\xEF\xBB\xBF", 3) == 0) {
                csv->pos = 3;
                csv->offset = 3;
            }
        }
        if (csv->pos == csv->end)
            return -1;
    }
    csv->offset++;
    return csv->chunk[csv->pos++];
}

static inline int peek_byte(struct drisk_csv *csv)
{
    int c = next_byte(csv);
    if (c >= 0) {
        csv->pos--;
        csv->offset--;
    }
    return c;
}

/* Skips to just after the next unquoted-or-not line end: recovery after an error. */
static void skip_line(struct drisk_csv *csv)
{
    int c;
    while ((c = next_byte(csv)) >= 0) {
        if (c == '\n') {
            csv->line++;
            return;
        }
        if (c == '\r') {
            if (peek_byte(csv) == '\n')
                next_byte(csv);
            csv->line++;
            return;
        }
    }
}

/* Room for byte n of the record and its terminator: 0, or -1 past the record limit (or
 * out of memory). */
static int rec_room(struct drisk_csv *csv, size_t n)
{
    if (n >= DRISK_CSV_MAX_RECORD)
        return -1;
    if (n + 1 < csv->rec_cap)
        return 0;
    size_t cap = csv->rec_cap * 2 > DRISK_CSV_MAX_RECORD + 1 ? DRISK_CSV_MAX_RECORD + 1
                                                              : csv->rec_cap * 2;
    char *r = realloc(csv->rec, cap);
    if (!r)
        return -1;
    csv->rec = r;
    csv->rec_cap = cap;
    return 0;
}

int drisk_csv_next(struct drisk_csv *csv, struct drisk_csv_record *rec, struct drisk_error *err)
{
    for (;;) {
        size_t n = 0;
        int nf = 0, quoted = 0;
        int c;
        rec->line = csv->line;
        csv->start[nf++] = 0;
        c = next_byte(csv);
        if (c == -1)
            return 0;
        for (;;) {
            if (c == -2) {
                drisk_error_set(err, DRISK_EIO, "read error");
                return -1;
            }
            if (c == -1 || c == '\n' || c == '\r') {
                if (c == '\r' && peek_byte(csv) == '\n')
                    next_byte(csv);
                if (c != -1)
                    csv->line++;
                break;
            }
            if (c == ',') {
                if (rec_room(csv, n))
                    goto too_long;
                csv->rec[n++] = '\0';
                if (nf == DRISK_CSV_MAX_FIELDS) {
                    drisk_error_set(err, DRISK_EINVAL, "more than %d fields",
                                    DRISK_CSV_MAX_FIELDS);
                    skip_line(csv);
                    return -1;
                }
                csv->start[nf++] = n;
                c = next_byte(csv);
                continue;
            }
            if (c == '"' && n == csv->start[nf - 1]) {
                /* A quoted field: runs to the closing quote, "" is a literal quote. */
                quoted = 1;
                for (;;) {
                    c = next_byte(csv);
                    if (c < 0) {
                        drisk_error_set(err, DRISK_EINVAL,
                                        "a quoted field is not closed before the end of the "
                                        "file (a missing '\"'?)");
                        return -1;
                    }
                    if (c == '"') {
                        if (peek_byte(csv) == '"') {
                            next_byte(csv);
                        } else {
                            break;
                        }
                    } else if (c == '\n') {
                        csv->line++;
                    } else if (c == '\r' && peek_byte(csv) != '\n') {
                        csv->line++;
                    }
                    if (c == 0)
                        goto nul_byte;
                    if (rec_room(csv, n))
                        goto too_long;
                    csv->rec[n++] = (char)c;
                }
                c = next_byte(csv);
                if (c >= 0 && c != ',' && c != '\n' && c != '\r') {
                    drisk_error_set(err, DRISK_EINVAL,
                                    "unexpected character '%c' after a closing quote (quotes "
                                    "inside a quoted field must be doubled: \"\")",
                                    c >= 32 && c < 127 ? c : '?');
                    skip_line(csv);
                    return -1;
                }
                continue;
            }
            if (c == 0)
                goto nul_byte;
            if (rec_room(csv, n))
                goto too_long;
            csv->rec[n++] = (char)c;
            c = next_byte(csv);
        }
        csv->rec[n] = '\0';
        if (nf == 1 && n == 0 && !quoted)
            continue; /* blank line (a lone "" is a row with one empty field) */
        rec->n_fields = nf;
        for (int i = 0; i < nf; i++) {
            size_t end = i + 1 < nf ? csv->start[i + 1] - 1 : n;
            rec->field[i] = csv->rec + csv->start[i];
            rec->len[i] = end - csv->start[i];
        }
        return 1;
    too_long:
        drisk_error_set(err, DRISK_EINVAL, "record longer than %d bytes", DRISK_CSV_MAX_RECORD);
        skip_line(csv);
        return -1;
    nul_byte:
        drisk_error_set(err, DRISK_EINVAL, "NUL byte in the data (is this a UTF-8 text file?)");
        skip_line(csv);
        return -1;
    }
}
