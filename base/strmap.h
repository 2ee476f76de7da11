/* A string -> int64 hash map (open addressing, FNV-1a, power-of-two capacity grown at
 * half load) with a hard cap on entries: the one map behind the store's location cache,
 * the network statistics' carrier and lane tables, and the benchmarks. Keys are copied.
 * Not synchronized: one thread at a time. */
#ifndef DRISK_STRMAP_H
#define DRISK_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#define DRISK_FNV_SEED 14695981039346656037ULL /* the 64-bit FNV offset basis */

/* FNV-1a of the string s, continuing from h (start with DRISK_FNV_SEED). */
uint64_t drisk_fnv1a(uint64_t h, const char *s);
/* The same over n bytes at p. */
uint64_t drisk_fnv1a_bytes(uint64_t h, const void *p, size_t n);

struct drisk_strmap;

/* An empty map holding at most max_entries keys. NULL when out of memory. */
struct drisk_strmap *drisk_strmap_create(size_t max_entries);
/* NULL is a no-op. */
void drisk_strmap_free(struct drisk_strmap *m);

/* 1 and *value when key is present, else 0. */
int drisk_strmap_find(const struct drisk_strmap *m, const char *key, int64_t *value);

/* Sets key's value (adding the key if new). Returns 0, or -1 when the map is full or out
 * of memory (the map is unchanged). */
int drisk_strmap_put(struct drisk_strmap *m, const char *key, int64_t value);

/* Calls fn for every key and its value, in no particular order (fn must not change m). */
void drisk_strmap_each(const struct drisk_strmap *m,
                       void (*fn)(const char *key, int64_t value, void *ctx), void *ctx);

/* Number of keys; removing all of them keeps the allocated table. */
size_t drisk_strmap_count(const struct drisk_strmap *m);
void drisk_strmap_clear(struct drisk_strmap *m);

#endif
