/* Small text checks shared by every input path (importers now, the HTTP API later):
 * UTF-8 validity and strict number parsing. */
#ifndef DRISK_TEXT_H
#define DRISK_TEXT_H

#include <stddef.h>

/* 1 if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code points above
 * U+10FFFF), else 0. */
int drisk_utf8_valid(const char *s, size_t len);

/* Parses the whole of s[0..len) as a finite decimal number (leading/trailing spaces
 * allowed). Returns 0 and sets *out, or -1. Locale-independent. */
int drisk_parse_double(const char *s, size_t len, double *out);

#endif
