/* SHA-256 (FIPS 180-4) and a constant-time comparison: API keys are stored only as their
 * SHA-256, and a presented key's hash is compared without early exit, so response times
 * say nothing about how much of a hash matched. */
#ifndef DRISK_SHA256_H
#define DRISK_SHA256_H

#include <stddef.h>

#define DRISK_SHA256_BYTES 32

/* out receives the 32-byte digest of len bytes at data (data may be NULL when len is 0). */
void drisk_sha256(const void *data, size_t len, unsigned char out[DRISK_SHA256_BYTES]);

/* 1 if the n bytes at a and b are equal, else 0; the time taken depends only on n. */
int drisk_equal_ct(const void *a, const void *b, size_t n);

#endif
