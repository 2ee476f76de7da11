/* A streaming RFC 4180 CSV reader with hard limits: reads a FILE in 1 MiB chunks and
 * returns one record at a time, so files of any size are read in bounded memory.
 * Accepts a UTF-8 byte-order mark, CRLF or LF line ends, quoted fields with "" escapes
 * and embedded line breaks. Blank lines are skipped. */
#ifndef DRISK_CSV_H
#define DRISK_CSV_H

#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

#define DRISK_CSV_MAX_FIELDS 256
#define DRISK_CSV_MAX_RECORD (1 << 20) /* bytes of one record after unquoting */

struct drisk_csv;

/* One record. Pointers are borrowed: valid until the next drisk_csv_next or free.
 * Each field is NUL-terminated (an embedded NUL byte is an error). */
struct drisk_csv_record {
    int n_fields;
    const char *field[DRISK_CSV_MAX_FIELDS];
    size_t len[DRISK_CSV_MAX_FIELDS];
    int64_t line; /* 1-based line on which the record starts */
};

/* Wraps f (borrowed; the caller closes it). NULL when out of memory. */
struct drisk_csv *drisk_csv_create(FILE *f);
void drisk_csv_free(struct drisk_csv *csv);

/* Reads the next record: returns 1, 0 at end of input, or -1 with err filled (a record
 * over the limits, an unterminated quote, a stray character after a closing quote, a NUL
 * byte: DRISK_EINVAL; a read error: DRISK_EIO) and rec->line set; messages do not name
 * the line, the caller adds the place. After DRISK_EINVAL the reader has skipped to the
 * next line, so the caller may go on to collect further problems; after DRISK_EIO the
 * input ends. */
int drisk_csv_next(struct drisk_csv *csv, struct drisk_csv_record *rec, struct drisk_error *err);

/* Bytes consumed so far (for progress). */
int64_t drisk_csv_offset(const struct drisk_csv *csv);

#endif
