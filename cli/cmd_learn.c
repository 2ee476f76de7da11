/* drisk export: the snapshot feature matrix with labels, for analysts' own tools. (train
 * and eval join here with the learning pipeline.) */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "data/store.h"
#include "training/snapshot.h"

static const struct drisk_opt export_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database to read" },
    { "target", DRISK_OPT_STRING, 0, "late|lost|eta", "", 0, 0, "which label and which snapshots (CONTRACT §3-4)" },
    { "until", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "only shipments created before TIME" },
    { "from", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "only shipments created at or after TIME" },
    { "out", DRISK_OPT_STRING, 0, "FILE.csv", "", 0, 0, "where to write the matrix" },
    { "min-count", DRISK_OPT_INT, 0, "N", "30", 1, INT64_MAX, "carriers, services and regions seen fewer times share the column \"other\"" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print a summary as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static int run_export(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_feature_schema schema;
    struct drisk_error err;
    struct timespec t0, t1;
    const char *out_path = drisk_arg_str(a, "out");
    char tmp[4096];
    int target = drisk_snapshot_target_parse(drisk_arg_str(a, "target"));
    int64_t from = drisk_arg_str(a, "from") ? drisk_arg_int(a, "from") : INT64_MIN;
    int64_t until = drisk_arg_str(a, "until") ? drisk_arg_int(a, "until") : INT64_MAX;
    int64_t rows = 0;
    drisk_error_clear(&err);
    if (target < 0) {
        fprintf(stderr, "drisk export: --target must be late, lost or eta\n");
        return 2;
    }
    if (from >= until) {
        fprintf(stderr, "drisk export: --from must be before --until\n");
        return 2;
    }
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", out_path) >= sizeof tmp) {
        fprintf(stderr, "drisk export: the --out path is too long\n");
        return 2;
    }
    if (access(drisk_arg_str(a, "db"), F_OK) != 0) {
        fprintf(stderr, "drisk export: %s does not exist: create it with drisk simulate or "
                "drisk import\n", drisk_arg_str(a, "db"));
        return 2;
    }
    if (drisk_store_open(drisk_arg_str(a, "db"), &store, &err))
        return drisk_fail("export", &err);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* The vocabularies are the training window's: before --until, or before --from when
     * exporting a later period, so train and test files share one schema. */
    int64_t schema_until = until != INT64_MAX ? until : from != INT64_MIN ? from : INT64_MAX;
    enum drisk_status st = drisk_snapshot_schema(store, schema_until, drisk_arg_int(a, "min-count"),
                                                 &schema, &err);
    FILE *out = NULL;
    if (!st && !(out = fopen(tmp, "w")))
        st = drisk_error_set(&err, DRISK_EINVAL, "cannot write %s: %s", tmp, strerror(errno));
    if (!st)
        st = drisk_snapshot_export(store, &schema, (enum drisk_snapshot_target)target, from,
                                   until, out, &rows, &err);
    if (out && fclose(out) != 0 && !st)
        st = drisk_error_set(&err, DRISK_EIO, "error writing %s", tmp);
    if (!st && rename(tmp, out_path) != 0)
        st = drisk_error_set(&err, DRISK_EIO, "cannot move %s to %s: %s", tmp, out_path,
                             strerror(errno));
    if (st && out)
        unlink(tmp);
    drisk_store_free(store);
    if (st)
        return drisk_fail("export", &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "%lld %s snapshots x %zu features written to %s in %.1f s (%.0f snapshots/s); "
            "feature schema %s\n", (long long)rows, drisk_arg_str(a, "target"),
            schema.n_features, out_path, dt, dt > 0 ? (double)rows / dt : 0.0, schema.hash);
    if (drisk_arg_flag(a, "json"))
        printf("{\"rows\": %lld, \"features\": %zu, \"schema_hash\": \"%s\", \"seconds\": %.3f}\n",
               (long long)rows, schema.n_features, schema.hash, dt);
    return 0;
}

const struct drisk_command drisk_cmd_export = {
    "export", "--db DB --target late|lost|eta [--until TIME] [--from TIME] --out FILE.csv",
    "write the snapshot feature matrix with labels (CSV) for analysts' own tools",
    "One row per labeled snapshot (CONTRACT §4): shipment_id, merchant_id, as_of, label, then\n"
    "one column per feature. Features use only what was known at as_of; labels are the\n"
    "outcomes (late 0/1, lost 0/1, eta hours). Times are YYYY-MM-DD or RFC 3339.",
    export_opts, 0, run_export,
};
