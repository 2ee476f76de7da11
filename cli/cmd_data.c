/* drisk simulate, import and stats: the commands that fill and describe the store. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "data/import.h"
#include "data/replay.h"
#include "data/sim.h"
#include "data/store.h"
#include "base/timeutil.h"
#include "base/log.h"

/* ---- simulate ---- */

static const struct drisk_opt simulate_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database to write (created if missing)" },
    { "shipments", DRISK_OPT_INT, 0, "N", "10000", 1, 100000000, "number of shipments to simulate" },
    { "seed", DRISK_OPT_INT, 0, "S", "1", 0, INT64_MAX, "random seed: the same seed gives the same history" },
    { "start", DRISK_OPT_DATE, 0, "YYYY-MM-DD", "2025-01-01", 0, 0, "first day of orders" },
    { "days", DRISK_OPT_INT, 0, "D", "365", 1, 3650, "days of orders; the simulated now is start + days" },
    { "export", DRISK_OPT_STRING, 0, "DIR", NULL, 0, 0, "also write shipments.csv and scans.csv (interchange format) to DIR" },
    { "scenario", DRISK_OPT_STRING, 0, "NAME", "base", 0, 0, "the simulated world: base, many-places, few-carriers, drift or sparse-scans (below)" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print the summary as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

/* "base, many-places, ..." from the simulator's own list, for error messages. */
static void scenario_names(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; drisk_sim_scenario_name(i) && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", drisk_sim_scenario_name(i));
}

static int run_simulate(const struct drisk_args *a)
{
    struct drisk_sim_options opts;
    struct drisk_sim_summary sum;
    struct drisk_error err;
    struct drisk_store *store = NULL;
    drisk_error_clear(&err);
    drisk_sim_options_default(&opts);
    opts.shipments = drisk_arg_int(a, "shipments");
    opts.seed = (uint64_t)drisk_arg_int(a, "seed");
    opts.start = drisk_arg_int(a, "start");
    opts.days = (int)drisk_arg_int(a, "days");
    opts.export_dir = drisk_arg_str(a, "export");
    opts.scenario = drisk_arg_str(a, "scenario");
    if (drisk_sim_scenario_find(opts.scenario) < 0) {
        char names[256];
        scenario_names(names, sizeof names);
        fprintf(stderr, "drisk simulate: unknown scenario \"%s\" (valid: %s)\n", opts.scenario,
                names);
        return 2;
    }
    int rc = drisk_cli_open_store("simulate", drisk_arg_str(a, "db"), 0, &store);
    if (rc)
        return rc;
    double t0 = drisk_monotonic_s();
    enum drisk_status st = drisk_sim_run(store, &opts, &sum, &err);
    double dt = drisk_monotonic_s() - t0;
    drisk_store_free(store);
    if (st)
        return drisk_fail("simulate", &err);
    int64_t labeled = sum.delivered + sum.lost + sum.returned;
    double on_time = labeled ? (double)sum.on_time / (double)labeled : NAN;
    double loss = labeled ? (double)sum.lost / (double)labeled : NAN;
    fprintf(stderr,
            "simulated %lld shipments, %lld scans (scenario %s) in %.1f s into %s\n"
            "  delivered %lld (on time %.1f%% of known outcomes), lost %lld (%.2f%%), returned %lld, "
            "in flight %lld\n",
            (long long)sum.shipments, (long long)sum.scans, opts.scenario, dt,
            drisk_arg_str(a, "db"),
            (long long)sum.delivered, 100 * on_time, (long long)sum.lost, 100 * loss,
            (long long)sum.returned, (long long)sum.in_flight);
    if (drisk_arg_flag(a, "json"))
        printf("{\"scenario\": \"%s\", \"shipments\": %lld, \"scans\": %lld, \"delivered\": %lld, "
               "\"on_time\": %lld, \"lost\": %lld, \"returned\": %lld, \"in_flight\": %lld, "
               "\"seconds\": %.3f}\n",
               opts.scenario, (long long)sum.shipments, (long long)sum.scans, (long long)sum.delivered,
               (long long)sum.on_time, (long long)sum.lost, (long long)sum.returned,
               (long long)sum.in_flight, dt);
    return 0;
}

const struct drisk_command drisk_cmd_simulate = {
    "simulate", NULL,
    "simulate a realistic shipment history (carriers, hubs, disruptions, losses) into the store",
    "The model and its rates are described in docs/SIMULATOR.md. Re-running with the same\n"
    "options into the same database adds nothing.\n"
    "\n"
    "Scenarios (--scenario) change the world's structure, not just its seed:\n"
    "  base          the documented network: 12 regions, 4 carriers, region codes as places\n"
    "                (the default; its histories never change)\n"
    "  many-places   ~6,000 five-digit postal codes under 160 three-digit prefixes, 352\n"
    "                facilities; prefixes, codes and facilities have their own delays,\n"
    "                codes are Zipf-popular (many are rare)\n"
    "  few-carriers  one carrier, one service, 140 origins, 210 destinations (postal\n"
    "                codes); delays driven by lanes (origin-destination pairs)\n"
    "  drift         the base network, but hub R05-HUB degrades from the day start +\n"
    "                floor(0.85 x days) on (for --days 730: day 620) and stays slow\n"
    "  sparse-scans  the base journeys, most intermediate scans missing (more for some\n"
    "                carriers and facilities); unipost and cityhop upload facility scans\n"
    "                in batches, so a scan carries its upload time",
    simulate_opts, 0, run_simulate,
};

/* ---- import ---- */

static const struct drisk_opt import_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database to import into (created if missing)" },
    { "shipments", DRISK_OPT_STRING, 0, "FILE", NULL, 0, 0, "shipments file, CSV or JSON Lines (- for stdin)" },
    { "scans", DRISK_OPT_STRING, 0, "FILE", NULL, 0, 0, "scans file, CSV or JSON Lines (- for stdin)" },
    { "skip-invalid", DRISK_OPT_STRING, 0, "REJECTS", NULL, 0, 0, "import the valid rows; write rejected ones with line and reason to REJECTS (default: atomic, any invalid row and nothing is imported)" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print the counts as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static void print_problem(const char *message, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "  %s\n", message);
}

static void counts_json(const char *name, const struct drisk_import_counts *c)
{
    printf("\"%s\": {\"read\": %lld, \"inserted\": %lld, \"updated\": %lld, \"unchanged\": %lld, "
           "\"rejected\": %lld}", name, (long long)c->read, (long long)c->inserted,
           (long long)c->updated, (long long)c->unchanged, (long long)c->rejected);
}

static void counts_text(const char *name, const struct drisk_import_counts *c, double dt)
{
    fprintf(stderr, "%-9s read %lld, inserted %lld, updated %lld, unchanged %lld, rejected %lld",
            name, (long long)c->read, (long long)c->inserted, (long long)c->updated,
            (long long)c->unchanged, (long long)c->rejected);
    if (dt > 0)
        fprintf(stderr, " (%.0f rows/s overall)", (double)c->read / dt);
    fputc('\n', stderr);
}

static int run_import(const struct drisk_args *a)
{
    struct drisk_import_options opts = {
        .shipments_path = drisk_arg_str(a, "shipments"),
        .scans_path = drisk_arg_str(a, "scans"),
        .rejects_path = drisk_arg_str(a, "skip-invalid"),
        .max_problems = 20,
        .on_problem = print_problem,
    };
    struct drisk_import_result res;
    struct drisk_error err;
    struct drisk_store *store = NULL;
    drisk_error_clear(&err);
    if (!opts.shipments_path && !opts.scans_path) {
        fprintf(stderr, "drisk import: nothing to import: give --shipments FILE and/or --scans "
                "FILE (run drisk import --help)\n");
        return 2;
    }
    int rc = drisk_cli_open_store("import", drisk_arg_str(a, "db"), 0, &store);
    if (rc)
        return rc;
    double t0 = drisk_monotonic_s();
    enum drisk_status st = drisk_import(store, &opts, &res, &err);
    double dt = drisk_monotonic_s() - t0;
    drisk_store_free(store);
    if (res.problems > 20)
        fprintf(stderr, "  ... and %lld more problem%s\n", (long long)(res.problems - 20),
                res.problems - 20 == 1 ? "" : "s");
    if (drisk_arg_flag(a, "json")) {
        printf("{");
        counts_json("shipments", &res.shipments);
        printf(", ");
        counts_json("scans", &res.scans);
        printf(", \"seconds\": %.3f", dt);
        if (st) {
            printf(", \"error\": {\"code\": \"%s\", \"message\": ",
                   st == DRISK_EINVAL ? "invalid_input" : "failed");
            drisk_json_string(stdout, err.msg);
            printf("}");
        }
        printf("}\n");
    }
    if (st)
        return drisk_fail("import", &err);
    if (opts.shipments_path)
        counts_text("shipments", &res.shipments, opts.scans_path ? 0 : dt);
    if (opts.scans_path)
        counts_text("scans", &res.scans, opts.shipments_path ? 0 : dt);
    fprintf(stderr, "done in %.1f s\n", dt);
    if (opts.rejects_path && res.problems)
        fprintf(stderr, "%lld rejected row%s written to %s\n", (long long)res.problems,
                res.problems == 1 ? "" : "s", opts.rejects_path);
    return 0;
}

const struct drisk_command drisk_cmd_import = {
    "import", NULL,
    "import shipments and scans (interchange CSV or JSON Lines) into the store",
    "Columns are matched by header name in any order; extra columns are ignored. Events may\n"
    "use drisk codes, AfterShip tags, or EasyPost / Shippo statuses (docs/VOCABULARY.md).\n"
    "Shipments are imported before scans, in one transaction: by default one invalid row\n"
    "means nothing is written (exit status 2) and the first 20 problems are listed.\n"
    "Importing the same rows again changes nothing; changed shipment fields are updated.",
    import_opts, 0, run_import,
};

/* ---- stats ---- */

static const struct drisk_opt stats_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "SQLite database to describe" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print the summary as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static double ratio(int64_t a, int64_t b)
{
    return b ? (double)a / (double)b : NAN;
}

static int run_stats(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_store_stats s;
    struct drisk_error err;
    char t1[DRISK_TS_BUF], t2[DRISK_TS_BUF];
    drisk_error_clear(&err);
    const char *path = drisk_arg_str(a, "db");
    int rc = drisk_cli_open_store("stats", path, 1, &store);
    if (rc)
        return rc;
    enum drisk_status st = drisk_store_stats(store, &s, &err);
    drisk_store_free(store);
    if (st)
        return drisk_fail("stats", &err);
    int json = drisk_arg_flag(a, "json");
    FILE *out = json ? stderr : stdout;
    fprintf(out, "%s: %lld merchants, %lld shipments, %lld scans", path, (long long)s.merchants,
            (long long)s.shipments, (long long)s.scans);
    if (s.shipments)
        fprintf(out, ", created %s to %s", drisk_ts_format(s.first_created, t1),
                drisk_ts_format(s.last_created, t2));
    fprintf(out, "\n\n%-12s %10s %10s %9s %8s %9s %11s\n", "carrier", "shipments", "labeled",
            "on time", "lost", "returned", "scans/ship");
    for (size_t i = 0; i < s.n_carriers; i++) {
        const struct drisk_carrier_stats *c = &s.carriers[i];
        fprintf(out, "%-12s %10lld %10lld %8.1f%% %7.2f%% %8.2f%% %11.2f\n", c->carrier,
                (long long)c->shipments, (long long)c->labeled, 100 * ratio(c->on_time, c->labeled),
                100 * ratio(c->lost, c->labeled), 100 * ratio(c->returned, c->labeled),
                ratio(c->scans, c->shipments));
    }
    if (json) {
        printf("{\"merchants\": %lld, \"shipments\": %lld, \"scans\": %lld, \"carriers\": [",
               (long long)s.merchants, (long long)s.shipments, (long long)s.scans);
        for (size_t i = 0; i < s.n_carriers; i++) {
            const struct drisk_carrier_stats *c = &s.carriers[i];
            printf("%s{\"carrier\": ", i ? ", " : "");
            drisk_json_string(stdout, c->carrier);
            printf(", \"shipments\": %lld, \"labeled\": %lld, \"on_time\": %lld, \"lost\": %lld, "
                   "\"returned\": %lld, \"scans\": %lld}", (long long)c->shipments,
                   (long long)c->labeled, (long long)c->on_time, (long long)c->lost,
                   (long long)c->returned, (long long)c->scans);
        }
        printf("]}\n");
    }
    drisk_store_stats_free(&s);
    return 0;
}

const struct drisk_command drisk_cmd_stats = {
    "stats", NULL,
    "summarize the store: shipments, scans, on-time, loss and return rates per carrier",
    "On-time, lost and returned are fractions of shipments whose outcome is known.",
    stats_opts, 0, run_stats,
};

/* ---- checkpoint ---- */

static const struct drisk_opt checkpoint_opts[] = {
    { "db", DRISK_OPT_STRING, 1, "DB", "", 0, 0, "the store (SQLite file or PostgreSQL URL)" },
    { "now", DRISK_OPT_DATE, 0, "TIME", NULL, 0, 0, "run as if at TIME (default: the clock)" },
    { "rebuild", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "replay the whole history rather than start from the newest checkpoint" },
    { "json", DRISK_OPT_FLAG, 0, NULL, NULL, 0, 0, "print the result as one JSON object on stdout" },
    { NULL, 0, 0, NULL, NULL, 0, 0, NULL },
};

static int run_checkpoint(const struct drisk_args *a)
{
    struct drisk_store *store = NULL;
    struct drisk_error err;
    struct drisk_checkpoint_result r;
    char t1[DRISK_TS_BUF], t2[DRISK_TS_BUF];
    drisk_error_clear(&err);
    int rc = drisk_cli_open_store("checkpoint", drisk_arg_str(a, "db"), 1, &store);
    if (rc)
        return rc;
    int64_t now = drisk_arg_str(a, "now") ? drisk_arg_int(a, "now") : (int64_t)time(NULL);
    double t0 = drisk_monotonic_s();
    enum drisk_status st = drisk_network_checkpoint(store, now, drisk_arg_flag(a, "rebuild"),
                                                    &r, &err);
    drisk_store_free(store);
    if (st)
        return drisk_fail("checkpoint", &err);
    double secs = drisk_monotonic_s() - t0;
    fprintf(stderr, "network checkpoint as of %s (%zu bytes), built from %s in %.1f s\n",
            drisk_ts_format(r.as_of, t1), r.bytes,
            r.from == DRISK_TS_NONE ? "the whole history" : drisk_ts_format(r.from, t2), secs);
    if (drisk_arg_flag(a, "json"))
        printf("{\"as_of\": \"%s\", \"bytes\": %zu, \"from\": %s%s%s, \"seconds\": %.3f}\n",
               drisk_ts_format(r.as_of, t1), r.bytes, r.from == DRISK_TS_NONE ? "" : "\"",
               r.from == DRISK_TS_NONE ? "null" : drisk_ts_format(r.from, t2),
               r.from == DRISK_TS_NONE ? "" : "\"", secs);
    return 0;
}

const struct drisk_command drisk_cmd_checkpoint = {
    "checkpoint", NULL,
    "write a checkpoint of the network statistics, so a server starts without replaying the whole history",
    "The state as of two days before now (scans that arrive up to two days late are in it),\n"
    "built from the newest checkpoint and what followed it. drisk serve writes one a minute\n"
    "after a start that found none, then every 6 hours; run this from cron for stores that\n"
    "several processes start from, or with --rebuild to take in very late scans.",
    checkpoint_opts, 0, run_checkpoint,
};
