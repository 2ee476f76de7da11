/* The string map: linear probing over a table of (key, value) slots. */
#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

struct slot {
    char *key; /* NULL: empty */
    int64_t value;
};

struct drisk_strmap {
    struct slot *tab;
    size_t cap, count, max;
};

uint64_t drisk_fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

uint64_t drisk_fnv1a_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

struct drisk_strmap *drisk_strmap_create(size_t max_entries)
{
    struct drisk_strmap *m = calloc(1, sizeof *m);
    if (m)
        m->max = max_entries;
    return m;
}

void drisk_strmap_clear(struct drisk_strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->tab[i].key);
        m->tab[i].key = NULL;
    }
    m->count = 0;
}

void drisk_strmap_free(struct drisk_strmap *m)
{
    if (!m)
        return;
    drisk_strmap_clear(m);
    free(m->tab);
    free(m);
}

static struct slot *probe(struct slot *tab, size_t cap, const char *key)
{
    size_t i = (size_t)drisk_fnv1a(DRISK_FNV_SEED, key) & (cap - 1);
    while (tab[i].key && strcmp(tab[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

int drisk_strmap_find(const struct drisk_strmap *m, const char *key, int64_t *value)
{
    if (!m->cap)
        return 0;
    const struct slot *s = probe(m->tab, m->cap, key);
    if (!s->key)
        return 0;
    *value = s->value;
    return 1;
}

int drisk_strmap_put(struct drisk_strmap *m, const char *key, int64_t value)
{
    if (m->cap) {
        struct slot *s = probe(m->tab, m->cap, key);
        if (s->key) {
            s->value = value;
            return 0;
        }
    }
    if (m->count >= m->max)
        return -1;
    if ((m->count + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        struct slot *nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->tab[i].key)
                *probe(nt, ncap, m->tab[i].key) = m->tab[i];
        free(m->tab);
        m->tab = nt;
        m->cap = ncap;
    }
    struct slot *s = probe(m->tab, m->cap, key);
    if (!(s->key = strdup(key)))
        return -1;
    s->value = value;
    m->count++;
    return 0;
}

size_t drisk_strmap_count(const struct drisk_strmap *m)
{
    return m->count;
}

void drisk_strmap_each(const struct drisk_strmap *m,
                       void (*fn)(const char *key, int64_t value, void *ctx), void *ctx)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->tab[i].key)
            fn(m->tab[i].key, m->tab[i].value, ctx);
}
