/* The shipment simulator: a deterministic, documented model of a parcel network
 * (docs/SIMULATOR.md) that writes a realistic shipment history into the store and,
 * optionally, as interchange CSVs. It is the test bed of everything drisk learns. */
#ifndef DRISK_SIM_H
#define DRISK_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "data/store.h"
#include "base/error.h"

/* Bounds drisk_sim_run accepts (DRISK_EINVAL outside them). */
#define DRISK_SIM_MAX_SHIPMENTS 100000000LL
#define DRISK_SIM_MAX_DAYS 3660

struct drisk_sim_options {
    int64_t shipments;  /* how many shipments to create (>= 1) */
    uint64_t seed;      /* same seed and options: same history, same export bytes */
    int64_t start;      /* UTC midnight of the first day of orders */
    int days;           /* orders are created over [start, start + days); the simulated
                         * "now" is start + days: later events are not yet known, so
                         * shipments still in flight then have no outcome */
    const char *export_dir; /* if not NULL: write shipments.csv and scans.csv there
                             * (the directory is created if missing) */
    const char *scenario; /* the simulated world (drisk_sim_scenario_name); NULL or "base":
                           * the documented network, whose histories do not change */
};

/* Fills opts with defaults: 10,000 shipments, seed 1, start 2025-01-01, 365 days, no export,
 * scenario "base". */
void drisk_sim_options_default(struct drisk_sim_options *opts);

/* The scenarios: worlds whose structure differs from the base network, so that models
 * are not tuned to one simulated world (docs/SIMULATOR.md, "Scenarios"). The name of
 * scenario i (0 = "base"; a static string), NULL past the last one. */
const char *drisk_sim_scenario_name(int i);

/* The index of the scenario called name (NULL: "base"), or -1 if there is none. */
int drisk_sim_scenario_find(const char *name);

/* The moment the drift scenario's facility starts to degrade, for these options: UTC
 * midnight of day floor(days * 85 / 100) after start's day (docs/SIMULATOR.md). */
int64_t drisk_sim_drift_at(const struct drisk_sim_options *opts);

struct drisk_sim_summary {
    int64_t shipments, scans;
    int64_t delivered, on_time, lost, returned, in_flight;
};

/* Runs the simulation into store (which may be NULL to only export) inside one
 * transaction. Running it twice with the same options into the same store adds nothing
 * (the store is idempotent). Fills *summary. An unknown scenario is DRISK_EINVAL, with
 * the valid names in the message. */
enum drisk_status drisk_sim_run(struct drisk_store *store, const struct drisk_sim_options *opts,
                                struct drisk_sim_summary *summary, struct drisk_error *err);

/* A network disruption the simulator generates from the seed: a storm slows every
 * facility of a region, a backlog one facility, for every parcel there in [start, end). */
struct drisk_sim_disruption {
    char location[DRISK_NAME_MAX]; /* region code ("R05", storm) or facility ("R05-DS2") */
    int storm;                     /* 1 storm, 0 facility backlog */
    int64_t start, end;            /* UTC, whole days */
    int delay_h;                   /* the largest extra dwell a parcel there gets */
};

/* Lists the disruptions drisk_sim_run generates for opts (they depend on seed, start,
 * days and the scenario's network only), in start order: writes at most cap of them to out (may be NULL when cap
 * is 0) and sets *n to how many there are. For tests, demos and docs. */
enum drisk_status drisk_sim_disruptions(const struct drisk_sim_options *opts,
                                        struct drisk_sim_disruption *out, size_t cap,
                                        size_t *n, struct drisk_error *err);

#endif
