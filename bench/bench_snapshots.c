/* Snapshot + feature building throughput: replays a store's whole history through
 * drisk_snapshots_run and counts snapshots, without writing them anywhere.
 * usage: bench_snapshots DB */
#include <stdio.h>
#include <time.h>

#include "training/snapshot.h"

static int count(const struct drisk_snapshot *s, void *ctx, struct drisk_error *err)
{
    (void)err;
    int64_t *n = ctx;
    *n += s->x[0] >= 0; /* touch the features */
    return 0;
}

int main(int argc, char **argv)
{
    struct drisk_store *st = NULL;
    struct drisk_error err;
    struct drisk_feature_schema schema;
    struct timespec t0, t1, t2;
    int64_t n = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: bench_snapshots DB\n");
        return 2;
    }
    if (drisk_store_open(argv[1], &st, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (drisk_snapshot_schema(st, INT64_MAX, 30, &schema, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct drisk_snapshot_options o = { INT64_MIN, INT64_MAX, INT64_MIN, DRISK_TS_NONE, 0 };
    if (drisk_snapshots_run(st, &schema, &o, count, &n, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    double ds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double dr = (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) / 1e9;
    printf("schema %.2f s; %lld snapshots x %zu features in %.2f s = %.0f snapshots/s\n", ds,
           (long long)n, schema.n_features, dr, (double)n / dr);
    drisk_store_free(st);
    return 0;
}
