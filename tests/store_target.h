/* Where a test keeps a store: a SQLite file in the test's folder, or, when the test runs
 * under tests/pg/with_pg.sh (DRISK_TEST_PG set), a fresh PostgreSQL database of the same
 * name on that private server. The same test code then runs against both stores. */
#ifndef DRISK_STORE_TARGET_H
#define DRISK_STORE_TARGET_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when this run's stores are PostgreSQL databases. */
static inline int store_target_pg(void)
{
    const char *s = getenv("DRISK_TEST_PG");
    return s && s[0];
}

/* The PostgreSQL database name of store name ("store.db" -> t_store_db), in db. */
static inline void store_target_db(const char *name, char db[64])
{
    size_t n = 0;
    for (const char *p = name; *p && n < 63; p++)
        db[n++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_';
    db[n] = '\0';
}

/* The --db of store name (a file name such as "store.db") under dir, in buf (cap bytes),
 * as it is: a store an earlier step made. Returns buf. */
static inline const char *store_target_url(const char *dir, const char *name, char *buf, size_t cap)
{
    char db[64];
    if (!store_target_pg()) {
        snprintf(buf, cap, "%s/%s", dir, name);
        return buf;
    }
    store_target_db(name, db);
    snprintf(buf, cap, "postgresql://postgres@/t_%s?host=%s", db, getenv("DRISK_TEST_PG"));
    return buf;
}

/* store_target_url, emptied first: the SQLite file is removed, the PostgreSQL database
 * dropped and created. Returns buf. */
static inline const char *store_target(const char *dir, const char *name, char *buf, size_t cap)
{
    if (!store_target_pg()) {
        store_target_url(dir, name, buf, cap);
        unlink(buf);
        char side[4200];
        snprintf(side, sizeof side, "%s-wal", buf);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", buf);
        unlink(side);
        return buf;
    }
    char db[64];
    store_target_db(name, db);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "PGOPTIONS='-c client_min_messages=warning' '%s/psql' -q -h '%s' -U postgres -d postgres"
             " -c 'DROP DATABASE IF EXISTS t_%s WITH (FORCE)' -c 'CREATE DATABASE t_%s' >/dev/null",
             getenv("DRISK_TEST_PG_BIN"), getenv("DRISK_TEST_PG"), db, db);
    if (system(cmd) != 0)
        fprintf(stderr, "store_target: could not create database t_%s\n", db);
    return store_target_url(dir, name, buf, cap);
}

/* PostgreSQL only: the first number psql prints for query on store name's database, or
 * -1. */
static inline long store_target_query(const char *name, const char *query)
{
    char db[64], cmd[1400];
    store_target_db(name, db);
    snprintf(cmd, sizeof cmd, "'%s/psql' -qAt -h '%s' -U postgres -d t_%s -c \"%s\"",
             getenv("DRISK_TEST_PG_BIN"), getenv("DRISK_TEST_PG"), db, query);
    FILE *p = popen(cmd, "r");
    long v = -1;
    if (p) {
        if (fscanf(p, "%ld", &v) != 1)
            v = -1;
        pclose(p);
    }
    return v;
}

#endif
