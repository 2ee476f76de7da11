/* Secrets: SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104), a constant-time comparison and
 * random hex from the kernel. API keys are stored only as their SHA-256, and a presented
 * key's hash is compared without early exit, so response times say nothing about how much
 * of a hash matched; webhook bodies are signed with HMAC-SHA256. */
#ifndef DRISK_SHA256_H
#define DRISK_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define DRISK_SHA256_BYTES 32

/* Incremental hashing: init, update any number of times, final. */
struct drisk_sha256_ctx {
    uint32_t h[8];
    unsigned char buf[64];
    size_t fill;
    uint64_t len;
};
void drisk_sha256_init(struct drisk_sha256_ctx *c);
void drisk_sha256_update(struct drisk_sha256_ctx *c, const void *data, size_t len);
void drisk_sha256_final(struct drisk_sha256_ctx *c, unsigned char out[DRISK_SHA256_BYTES]);

/* out receives the 32-byte digest of len bytes at data (data may be NULL when len is 0). */
void drisk_sha256(const void *data, size_t len, unsigned char out[DRISK_SHA256_BYTES]);

/* The HMAC-SHA256 under key of the n parts (parts[i], lens[i] bytes) one after another. */
void drisk_hmac_sha256_parts(const void *key, size_t key_len, const void *const *parts,
                             const size_t *lens, size_t n, unsigned char out[DRISK_SHA256_BYTES]);

/* out receives the 2n lowercase hex digits of the n bytes and a NUL. */
void drisk_hex(const unsigned char *bytes, size_t n, char *out);

/* out receives 2n hex digits of n (at most 64) random bytes from getrandom(2), and a
 * NUL. -1 if the kernel gave none. */
int drisk_random_hex(size_t n, char *out);

/* 1 if the n bytes at a and b are equal, else 0; the time taken depends only on n. */
int drisk_equal_ct(const void *a, const void *b, size_t n);

#endif
