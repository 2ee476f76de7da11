/* The shipment simulator. A fixed network (12 regions with a hub and a few delivery
 * stations each), four carriers, three service levels and four merchants; each shipment
 * is simulated on its own counter-based random stream (splitmix64 of seed and shipment
 * index), so the history is identical for the same options however it is consumed, and
 * the network disruptions come from a separate stream of the seed. A parcel's whole
 * journey is simulated, then cut at the simulated "now": what lies after it is not yet
 * known. Shipments are streamed one at a time into the store and the CSV export, so
 * memory does not grow with the history. Scenarios change the world's structure (many
 * postal areas, one freight carrier, a degrading hub, sparse and batched scans); the
 * base scenario is the documented network, and its histories never change.
 * docs/SIMULATOR.md documents the model. */
#include "data/sim.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "data/export.h"
#include "base/progress.h"
#include "base/timeutil.h"
#include "engine/vocab.h"

#define HOUR 3600
#define DAY 86400

/* ---------------------------------------------------------------- random numbers */

/* splitmix64: a counter-based generator; seeding it from (seed, stream, index) gives
 * every shipment and every day its own independent stream. */
struct rng {
    uint64_t s;
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream, uint64_t index)
{
    r->s = mix64(mix64(seed + 0x632be59bd9b4e019ULL * (stream + 1)) ^ index);
}

static uint64_t rng_next(struct rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

/* Uniform in [0, 1). */
static double unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n). */
static int below(struct rng *r, int n)
{
    return (int)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static int chance(struct rng *r, double p)
{
    return unit(r) < p;
}

static int64_t hours(double h)
{
    return (int64_t)(h * HOUR);
}

/* Standard normal (Box-Muller), from two draws taken in order. */
static double gauss(struct rng *r)
{
    double u1 = unit(r);
    double u2 = unit(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/* A place's factor on a rate or a time: lognormal with mean 1 (median exp(-sigma^2 / 2)),
 * clamped to [lo, hi]; places differ without moving the network's average. */
static double place_factor(struct rng *r, double sigma, double lo, double hi)
{
    double f = exp(sigma * gauss(r) - 0.5 * sigma * sigma);
    return f < lo ? lo : f > hi ? hi : f;
}

/* The first k with u < cum[k] (cum non-decreasing, n >= 1); n - 1 if there is none. */
static int pick_cum(const double *cum, int n, double u)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (u < cum[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Shuffles v[0..n) (Fisher-Yates). */
static void shuffle(struct rng *r, int *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = below(r, i + 1);
        int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* ---------------------------------------------------------------- the network */

#define N_REGIONS 12 /* the base network's regions */
#define MAX_DS 4     /* delivery stations per region in the base layout */
#define N_FAC (N_REGIONS * (1 + MAX_DS)) /* hub of r: r; station k of r: N_REGIONS + r*MAX_DS + k */

struct region {
    double x, y; /* position, units of 100 km */
    double pop;  /* share of recipients (relative) */
    int n_ds;    /* delivery stations */
};

static const struct region base_regions[N_REGIONS] = {
    { 1.0, 1.0, 1.2, 3 },  { 4.0, 1.5, 0.8, 2 }, { 7.0, 1.0, 1.0, 3 }, { 10.5, 1.5, 0.7, 2 },
    { 2.0, 4.0, 1.5, 4 },  { 5.5, 4.0, 1.0, 3 }, { 8.5, 4.5, 1.3, 3 }, { 12.0, 4.0, 0.6, 2 },
    { 1.5, 7.0, 0.9, 2 },  { 5.0, 7.5, 1.4, 4 }, { 8.0, 7.0, 1.1, 3 }, { 11.5, 7.5, 0.5, 2 },
};

enum { SV_EXPRESS, SV_STANDARD, SV_ECONOMY, N_SERVICES };
static const char *const service_names[N_SERVICES] = { "express", "standard", "economy" };
static const double service_dwell[N_SERVICES] = { 0.6, 1.0, 1.4 };

#define MAX_HUBS 4 /* hubs on a route */
#define N_CARRIERS 4
struct carrier {
    const char *name, *prefix, *suffix;
    int digits;          /* of the tracking number */
    double scan_p;       /* an intermediate scan is recorded */
    double exc_scan_p;   /* a delay is reported with an exception scan */
    double loss_p;       /* a parcel is lost on the way */
    double declare_p;    /* a lost parcel is declared lost (a `lost` scan) */
    double dwell_h;      /* typical hub dwell, hours */
    double linehaul_f;   /* linehaul time factor */
    double exc_p;        /* an exception (delay) at each hub */
    double fail_p;       /* a delivery attempt fails */
    int max_attempts;    /* then: available for pickup at the station */
    int sat_delivery;    /* delivers on Saturdays */
    int pickup_hour;     /* daily collection at merchants' warehouses (UTC) */
    int cutoff_hour;     /* orders after it count from the next business day */
    int promise_bd[N_SERVICES][MAX_HUBS]; /* business days by hubs on the route - 1;
                                           * 0: service not offered */
    int batch_h;         /* sparse-scans: facility scans are uploaded every batch_h hours
                          * (0: as they happen) ... */
    int batch_at_h;      /* ... the first upload of the day at this UTC hour */
};

static const struct carrier base_carriers[N_CARRIERS] = {
    { "apex", "APX", "", 10, 0.97, 0.90, 0.0015, 0.90, 2.5, 0.90, 0.010, 0.035, 3, 1, 17, 15,
      { { 1, 2, 3, 3 }, { 2, 3, 3, 4 }, { 0, 0, 0, 0 } }, 0, 0 },
    { "fleetex", "FX", "", 12, 0.93, 0.75, 0.0045, 0.70, 3.5, 1.00, 0.020, 0.050, 2, 0, 17, 14,
      { { 1, 2, 3, 3 }, { 2, 2, 3, 4 }, { 2, 3, 4, 5 } }, 0, 0 },
    { "unipost", "UP", "UN", 9, 0.82, 0.40, 0.0110, 0.35, 6.0, 1.10, 0.035, 0.070, 1, 1, 16, 13,
      { { 0, 0, 0, 0 }, { 2, 3, 3, 4 }, { 3, 4, 4, 5 } }, 0, 0 },
    { "cityhop", "CH", "", 10, 0.72, 0.35, 0.0150, 0.30, 5.0, 1.05, 0.045, 0.090, 2, 0, 18, 15,
      { { 0, 0, 0, 0 }, { 2, 2, 3, 4 }, { 2, 3, 3, 4 } }, 0, 0 },
};
enum { C_APEX, C_FLEETEX, C_UNIPOST, C_CITYHOP };

/* few-carriers: the one carrier of a freight-like history (one service, standard). */
static const struct carrier freight_carrier = {
    "northline", "NL", "", 10, 0.90, 0.60, 0.0040, 0.70, 4.0, 1.00, 0.020, 0.050, 2, 0, 17, 14,
    { { 0, 0, 0, 0 }, { 2, 2, 3, 4 }, { 0, 0, 0, 0 } }, 0, 0
};

#define N_MERCHANTS 4
#define MAX_WH 2
#define MAX_LANES 6
static const struct merchant {
    const char *name, *code, *order_prefix;
    double share;                 /* of all orders */
    int n_wh;
    int wh_region[MAX_WH];        /* warehouses (region index) */
    double wh_share[MAX_WH];
    double w_min, w_max;          /* parcel weight range, kg (skewed to light) */
    double v_min, v_max;          /* declared value range (skewed to low) */
    double declared_p;            /* a value is declared */
    double late_handover_p;       /* the parcel is handed over a business day late */
    int n_lanes;
    struct lane {
        int carrier, service;
        double share;
    } lanes[MAX_LANES];
} merchants[N_MERCHANTS] = {
    { "acme-outdoor", "ACME", "AO-", 0.35, 1, { 2, 0 }, { 1.0, 0 }, 0.4, 22.0, 25, 650, 0.95, 0.04,
      6, { { C_FLEETEX, SV_STANDARD, 0.35 }, { C_FLEETEX, SV_ECONOMY, 0.10 },
           { C_UNIPOST, SV_STANDARD, 0.20 }, { C_CITYHOP, SV_STANDARD, 0.15 },
           { C_APEX, SV_STANDARD, 0.10 }, { C_APEX, SV_EXPRESS, 0.10 } } },
    { "bloom-beauty", "BLOOM", "BB-", 0.30, 2, { 4, 10 }, { 0.7, 0.3 }, 0.1, 2.5, 8, 180, 0.6, 0.06,
      5, { { C_UNIPOST, SV_ECONOMY, 0.35 }, { C_UNIPOST, SV_STANDARD, 0.15 },
           { C_CITYHOP, SV_ECONOMY, 0.20 }, { C_CITYHOP, SV_STANDARD, 0.10 },
           { C_FLEETEX, SV_ECONOMY, 0.20 } } },
    { "techhaven", "TECH", "TH-", 0.20, 1, { 6, 0 }, { 1.0, 0 }, 0.3, 9.0, 60, 2800, 1.00, 0.02,
      5, { { C_APEX, SV_EXPRESS, 0.30 }, { C_APEX, SV_STANDARD, 0.25 },
           { C_FLEETEX, SV_EXPRESS, 0.15 }, { C_FLEETEX, SV_STANDARD, 0.20 },
           { C_UNIPOST, SV_STANDARD, 0.10 } } },
    { "casa-home", "CASA", "CASA-", 0.15, 2, { 9, 0 }, { 0.6, 0.4 }, 1.5, 30.0, 30, 900, 0.85, 0.08,
      4, { { C_FLEETEX, SV_STANDARD, 0.35 }, { C_FLEETEX, SV_ECONOMY, 0.15 },
           { C_CITYHOP, SV_STANDARD, 0.25 }, { C_UNIPOST, SV_STANDARD, 0.25 } } },
};

/* Location ids: 0 is "", then the facilities, then the merchants' warehouses, then
 * (few-carriers) the shippers' sites. */
#define LOC_NONE 0
#define LOC_FAC(f) (1 + (f))
#define LOC_MAX 32

/* ---------------------------------------------------------------- the scenarios */

enum { SC_BASE, SC_MANY_PLACES, SC_FEW_CARRIERS, SC_DRIFT, SC_SPARSE_SCANS, N_SCENARIOS };
static const char *const scenario_names[N_SCENARIOS] = {
    "base", "many-places", "few-carriers", "drift", "sparse-scans",
};

/* many-places: 32 hub regions on an 8 x 4 grid, 5 postal prefixes (sectional centers) per
 * region with 2 delivery stations each, 25-50 five-digit codes per prefix. */
#define MP_REGIONS 32
#define MP_COLS 8
#define MP_PREFIXES 5    /* per region */
#define MP_PREFIX_SPAN 28 /* region r's prefixes are 3-digit numbers in [100 + 28 r, + 28) */
#define MP_DS 2          /* delivery stations per prefix */
#define MP_CODES_MIN 25
#define MP_CODES_SPAN 26
#define MP_ZIPF_S 1.1    /* popularity of the code of rank k = 1, 2, ...: 1 / (k + MP_ZIPF_Q)^MP_ZIPF_S */
#define MP_ZIPF_Q 10.0

/* few-carriers: shippers' sites and destinations with 5-digit codes in the base regions;
 * each site ships to FC_LANES destinations. */
#define FC_ORIGINS 140
#define FC_DESTS 210
#define FC_LANES 25
#define FC_PREFIXES 4      /* per region */
#define FC_PREFIX_SPAN 75  /* region r's prefixes are 3-digit numbers in [100 + 75 r, + 75) */
#define FC_ZIPF_S 0.9      /* sites' and destinations' popularity, as MP_ZIPF_S */
#define FC_ZIPF_Q 3.0

/* drift: the hub of region R05 degrades from drisk_sim_drift_at() on. */
#define DRIFT_HUB 4
#define DRIFT_PCT 85
#define DRIFT_MIN_H 18.0 /* extra dwell there: 18-48 h */
#define DRIFT_SPAN_H 30.0

/* Storms and backlogs (per region or facility, per day). */
#define STORM_P_WINTER (1.0 / 40) /* December to February */
#define STORM_P (1.0 / 120)
#define HUB_BACKLOG_P (1.0 / 150)
#define DS_BACKLOG_P (1.0 / 250)
#define DISRUPT_TAIL_DAYS 120 /* disruptions are generated up to now + this */

#define SILENT_LOST_DAYS 30 /* a parcel silent this long before "now" is lost */
#define MAX_SCANS 64        /* per shipment; the longest journey the model makes has 33 */

/* ---------------------------------------------------------------- calendar */

static int64_t day_of(int64_t ts)
{
    return ts >= 0 ? ts / DAY : -((-ts + DAY - 1) / DAY);
}

static int is_holiday(int64_t day)
{
    int y, m, d;
    drisk_civil_from_days(day, &y, &m, &d);
    return (m == 1 && d == 1) || (m == 12 && (d == 25 || d == 26));
}

static int is_business(int64_t day)
{
    return drisk_is_business_day(day * DAY);
}

/* Peak season: 20 November to 24 December. */
static int is_peak(int64_t day)
{
    int y, m, d;
    drisk_civil_from_days(day, &y, &m, &d);
    return (m == 11 && d >= 20) || (m == 12 && d <= 24);
}

/* Deliveries: Monday to Friday, Saturday for some carriers, never Sundays or holidays. */
static int is_delivery_day(const struct carrier *c, int64_t day)
{
    int wd = drisk_weekday(day * DAY);
    if (wd == 6 || is_holiday(day))
        return 0;
    return wd < 5 || c->sat_delivery;
}

/* ---------------------------------------------------------------- simulator state */

struct sim_scan {
    int64_t ts;
    uint8_t event, reason;
    uint16_t loc;
};

enum { END_DELIVERED = 1, END_RETURNED, END_LOST };

/* One parcel's journey while it is simulated. */
struct parcel {
    struct rng rng;
    const struct carrier *c;
    int service;
    int64_t created, promised;
    int64_t last;       /* time of the latest event, recorded or not */
    int lost_stage;     /* lost after this checkpoint; -1: never */
    int stage;
    int end;            /* END_* */
    int64_t end_ts;     /* delivered / returned / declared lost; INT64_MAX: silent */
    int n;
    struct sim_scan scans[MAX_SCANS];
};

struct disruption {
    int storm, where; /* region (storm) or facility (backlog) */
    int64_t start_day, days;
    int delay_h;
};

/* A facility: hubs are facilities 0 .. n_regions - 1 (hub of region r: r), then the
 * delivery stations. */
struct facility {
    int region;
    int valid;     /* base layout: a station slot the region does not have is not valid */
    double dwell_f; /* place-specific factors (1 in the base network): hub dwell, */
    double exc_f;   /* exceptions, */
    double loss_f;  /* losses while there, */
    double scan_f;  /* and scans recorded there */
};

/* A postal area of the many-places and few-carriers scenarios: a destination, or a
 * shipper's site (few-carriers origins). */
struct place {
    char code[16];     /* 5 digits; the first 3 name the prefix (sectional center) */
    int region;        /* whose hub serves it */
    int fac;           /* destinations: the delivery station */
    int prefix;        /* many-places: index in prefix_slip; -1 otherwise */
    double slip_p;     /* destinations: the last mile slips 1-3 days (a route served every
                        * other day, a van that is always full) */
    double fail_f;     /* destinations: first delivery attempt failure factor */
    double handover_p; /* origins: handed over a business day late */
    int merchant;      /* origins: the merchant shipping from here */
};

/* Where one shipment goes and what its places add to its journey. */
struct trip {
    int origin, dest;         /* regions: first and last hub */
    int ds;                   /* delivery station (facility) */
    int wh_loc;               /* location of the label and pickup scans */
    double handover_p;        /* handed over a business day late */
    double lane_slip_p;       /* few-carriers: misses its lane's linehaul at the first hub */
    const struct place *to;   /* many-places / few-carriers destination; NULL: a region */
    const char *origin_code, *dest_code;
};

struct sim {
    const struct drisk_sim_options *opts;
    int scenario;
    int64_t now;
    /* The network: regions (each with a hub), facilities, locations, routes. */
    int n_regions, n_fac, n_loc;
    struct region *reg;
    char (*region_code)[16];
    struct facility *fac;
    char (*loc)[LOC_MAX];
    double *dist_km;         /* [a * n_regions + b] */
    int *route_n;            /* hubs on the route from region a to b */
    int (*route)[MAX_HUBS];
    double *region_cum;      /* recipients by region (base layout) */
    int wh_region[N_MERCHANTS][MAX_WH];
    char wh_code[N_MERCHANTS][MAX_WH][16]; /* the origin a warehouse's shipments name */
    struct carrier carrier[N_CARRIERS];
    /* Postal places (many-places, few-carriers), picked by cumulative popularity. */
    struct place *dest, *orig;
    double *dest_cum, *orig_cum;
    int n_dest, n_orig;
    double *prefix_slip;     /* many-places: the sectional center holds a parcel 1-2 days */
    int *lane_dest;          /* few-carriers: origin o's lane j goes to lane_dest[o * FC_LANES + j] */
    double *lane_cum, *lane_slip;
    /* drift: this hub degrades from drift_at on (-1: none). */
    int drift_fac;
    int64_t drift_at;
    /* Disruptions: per facility and day, the extra dwell in hours (bit 7: storm). */
    int64_t tab_day0;
    int64_t tab_days;
    uint8_t *disrupt;
    struct disruption *events;
    size_t n_events;
    /* Orders: first shipment index of each order day. */
    int64_t *day_first;
    int64_t order_seq[N_MERCHANTS];
};

static int ds_fac(const struct sim *s, int region, int k)
{
    return s->n_regions + region * MAX_DS + k;
}

static int loc_wh(const struct sim *s, int m, int w)
{
    return 1 + s->n_fac + m * MAX_WH + w;
}

/* few-carriers: the location of shipper site o. */
static int loc_site(const struct sim *s, int o)
{
    return 1 + s->n_fac + N_MERCHANTS * MAX_WH + o;
}

static enum drisk_status alloc_network(struct sim *s, int n_regions, int n_fac, int n_sites,
                                       struct drisk_error *err)
{
    size_t nr = (size_t)n_regions;
    s->n_regions = n_regions;
    s->n_fac = n_fac;
    s->n_loc = 1 + n_fac + N_MERCHANTS * MAX_WH + n_sites;
    s->reg = calloc(nr, sizeof *s->reg);
    s->region_code = calloc(nr, sizeof *s->region_code);
    s->fac = calloc((size_t)n_fac, sizeof *s->fac);
    s->loc = calloc((size_t)s->n_loc, sizeof *s->loc);
    s->dist_km = calloc(nr * nr, sizeof *s->dist_km);
    s->route_n = calloc(nr * nr, sizeof *s->route_n);
    s->route = calloc(nr * nr, sizeof *s->route);
    s->region_cum = calloc(nr, sizeof *s->region_cum);
    if (!s->reg || !s->region_code || !s->fac || !s->loc || !s->dist_km || !s->route_n ||
        !s->route || !s->region_cum)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory for the simulated network");
    for (int f = 0; f < n_fac; f++) {
        s->fac[f].valid = 1;
        s->fac[f].dwell_f = s->fac[f].exc_f = s->fac[f].loss_f = s->fac[f].scan_f = 1.0;
    }
    return DRISK_OK;
}

/* Routes between hubs: short hauls go hub to hub, medium ones through the best
 * intermediate hub, long ones through the best pair of intermediate hubs. Also the
 * recipients' cumulative share by region. */
static void build_routes(struct sim *s)
{
    int nr = s->n_regions;
    for (int a = 0; a < nr; a++)
        for (int b = 0; b < nr; b++)
            s->dist_km[a * nr + b] = 100.0 * hypot(s->reg[a].x - s->reg[b].x,
                                                   s->reg[a].y - s->reg[b].y);
    const double *dist = s->dist_km;
    for (int a = 0; a < nr; a++) {
        for (int b = 0; b < nr; b++) {
            int *rt = s->route[a * nr + b];
            int *rn = &s->route_n[a * nr + b];
            double d = dist[a * nr + b];
            rt[0] = a;
            if (a == b) {
                *rn = 1;
            } else if (d <= 450) {
                rt[1] = b;
                *rn = 2;
            } else if (d <= 850) {
                double best = 1e18;
                for (int k = 0; k < nr; k++) {
                    double len = dist[a * nr + k] + dist[k * nr + b];
                    if (k != a && k != b && len < best) {
                        best = len;
                        rt[1] = k;
                    }
                }
                rt[2] = b;
                *rn = 3;
            } else {
                double best = 1e18;
                for (int k = 0; k < nr; k++)
                    for (int l = 0; l < nr; l++) {
                        if (k == a || k == b || l == a || l == b || k == l)
                            continue;
                        double len = dist[a * nr + k] + dist[k * nr + l] + dist[l * nr + b];
                        if (len < best) {
                            best = len;
                            rt[1] = k;
                            rt[2] = l;
                        }
                    }
                rt[3] = b;
                *rn = 4;
            }
        }
    }
    double total = 0;
    for (int r = 0; r < nr; r++)
        total += s->reg[r].pop;
    double acc = 0;
    for (int r = 0; r < nr; r++) {
        acc += s->reg[r].pop / total;
        s->region_cum[r] = acc;
    }
    s->region_cum[nr - 1] = 1.0;
}

/* The base layout: 12 regions, each with a hub and 2-4 delivery stations; merchants'
 * warehouses in their regions. Used by every scenario but many-places. */
static enum drisk_status build_base_network(struct sim *s, int n_sites, struct drisk_error *err)
{
    enum drisk_status rc = alloc_network(s, N_REGIONS, N_FAC, n_sites, err);
    if (rc)
        return rc;
    for (int r = 0; r < N_REGIONS; r++) {
        s->reg[r] = base_regions[r];
        snprintf(s->region_code[r], sizeof s->region_code[r], "R%02d", r + 1);
        snprintf(s->loc[LOC_FAC(r)], LOC_MAX, "R%02d-HUB", r + 1);
        s->fac[r].region = r;
        for (int k = 0; k < MAX_DS; k++) {
            int f = ds_fac(s, r, k);
            snprintf(s->loc[LOC_FAC(f)], LOC_MAX, "R%02d-DS%d", r + 1, k + 1);
            s->fac[f].region = r;
            s->fac[f].valid = k < base_regions[r].n_ds;
        }
    }
    for (int m = 0; m < N_MERCHANTS; m++)
        for (int w = 0; w < MAX_WH; w++) {
            int r = merchants[m].wh_region[w];
            s->wh_region[m][w] = r;
            snprintf(s->wh_code[m][w], sizeof s->wh_code[m][w], "R%02d", r + 1);
            snprintf(s->loc[loc_wh(s, m, w)], LOC_MAX, "R%02d-WH-%s", r + 1, merchants[m].code);
        }
    build_routes(s);
    return DRISK_OK;
}

/* Zipf-like popularity over n places in random rank order: cum[i] is the cumulative
 * share of places 0..i, place i's share proportional to 1 / (k_i + q)^zipf_s for its
 * rank k_i = 1..n. */
static enum drisk_status zipf_cum(struct rng *r, double *cum, int n, double zipf_s, double q,
                                  struct drisk_error *err)
{
    int *rank = malloc((size_t)n * sizeof *rank);
    if (!rank)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory for the simulated places");
    for (int i = 0; i < n; i++)
        rank[i] = i;
    shuffle(r, rank, n);
    double total = 0;
    for (int i = 0; i < n; i++) {
        cum[i] = pow(rank[i] + 1 + q, -zipf_s);
        total += cum[i];
    }
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += cum[i] / total;
        cum[i] = acc;
    }
    cum[n - 1] = 1.0;
    free(rank);
    return DRISK_OK;
}

/* many-places: 32 hub regions on a jittered 8 x 4 grid; each has 5 three-digit postal
 * prefixes (sectional centers), each prefix 2 delivery stations and 25-50 five-digit
 * codes. Hubs and stations have their own dwell, exception and loss factors, prefixes a
 * chance of holding a parcel a day, codes their own last-mile slips and failed attempts;
 * codes are popular by a Zipf law in random order, so many are rare. All from the seed. */
static enum drisk_status build_many_places(struct sim *s, struct drisk_error *err)
{
    enum { N_PREFIX = MP_REGIONS * MP_PREFIXES };
    struct rng r;
    enum drisk_status rc;
    int pick[100];
    if ((rc = alloc_network(s, MP_REGIONS, MP_REGIONS + N_PREFIX * MP_DS, 0, err)))
        return rc;
    s->dest = calloc((size_t)N_PREFIX * (MP_CODES_MIN + MP_CODES_SPAN), sizeof *s->dest);
    s->dest_cum = calloc((size_t)N_PREFIX * (MP_CODES_MIN + MP_CODES_SPAN), sizeof *s->dest_cum);
    s->prefix_slip = calloc(N_PREFIX, sizeof *s->prefix_slip);
    if (!s->dest || !s->dest_cum || !s->prefix_slip)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory for the simulated places");
    rng_seed(&r, s->opts->seed, 5, 0);
    for (int g = 0; g < MP_REGIONS; g++) {
        struct region *rg = &s->reg[g];
        double jx = unit(&r) - 0.5;
        double jy = unit(&r) - 0.5;
        rg->x = 0.75 + 1.5 * (g % MP_COLS) + 0.8 * jx;
        rg->y = 0.94 + 1.875 * (g / MP_COLS) + 0.8 * jy;
        rg->pop = 1.0;
        rg->n_ds = 0;
        snprintf(s->region_code[g], sizeof s->region_code[g], "R%02d", g + 1);
        snprintf(s->loc[LOC_FAC(g)], LOC_MAX, "R%02d-HUB", g + 1);
        s->fac[g].region = g;
    }
    for (int f = 0; f < s->n_fac; f++) {
        s->fac[f].dwell_f = place_factor(&r, 0.35, 0.5, 2.5);
        s->fac[f].exc_f = place_factor(&r, 0.6, 0.25, 4.0);
        s->fac[f].loss_f = place_factor(&r, 0.8, 0.2, 5.0);
    }
    for (int g = 0; g < MP_REGIONS; g++) {
        for (int i = 0; i < MP_PREFIX_SPAN; i++)
            pick[i] = i;
        shuffle(&r, pick, MP_PREFIX_SPAN);
        for (int k = 0; k < MP_PREFIXES; k++) {
            int pf = g * MP_PREFIXES + k;
            int number = 100 + MP_PREFIX_SPAN * g + pick[k];
            double u = unit(&r);
            s->prefix_slip[pf] = 0.35 * u * u * u;
            for (int d = 0; d < MP_DS; d++) {
                int f = MP_REGIONS + pf * MP_DS + d;
                s->fac[f].region = g;
                snprintf(s->loc[LOC_FAC(f)], LOC_MAX, "%03d-DS%d", number, d + 1);
            }
            int pick2[100];
            int n_codes = MP_CODES_MIN + below(&r, MP_CODES_SPAN);
            for (int i = 0; i < 100; i++)
                pick2[i] = i;
            shuffle(&r, pick2, 100);
            for (int c = 0; c < n_codes; c++) {
                struct place *pl = &s->dest[s->n_dest++];
                snprintf(pl->code, sizeof pl->code, "%03d%02d", number, pick2[c]);
                pl->region = g;
                pl->fac = MP_REGIONS + pf * MP_DS + c % MP_DS;
                pl->prefix = pf;
                double v = unit(&r);
                pl->slip_p = 0.5 * pow(v, 5);
                pl->fail_f = place_factor(&r, 0.5, 0.3, 4.0);
            }
        }
    }
    if ((rc = zipf_cum(&r, s->dest_cum, s->n_dest, MP_ZIPF_S, MP_ZIPF_Q, err)))
        return rc;
    /* Warehouses stay where they are on the map: in the nearest region, named by the
     * first code of that region's first prefix. */
    for (int m = 0; m < N_MERCHANTS; m++)
        for (int w = 0; w < MAX_WH; w++) {
            const struct region *at = &base_regions[merchants[m].wh_region[w]];
            int best = 0;
            double best_d = 1e18;
            for (int g = 0; g < MP_REGIONS; g++) {
                double d = hypot(s->reg[g].x - at->x, s->reg[g].y - at->y);
                if (d < best_d) {
                    best_d = d;
                    best = g;
                }
            }
            s->wh_region[m][w] = best;
            for (int i = 0; i < s->n_dest; i++)
                if (s->dest[i].region == best) {
                    memcpy(s->wh_code[m][w], s->dest[i].code, sizeof s->wh_code[m][w]);
                    break;
                }
            snprintf(s->loc[loc_wh(s, m, w)], LOC_MAX, "R%02d-WH-%s", best + 1,
                     merchants[m].code);
        }
    build_routes(s);
    return DRISK_OK;
}

/* few-carriers: a new 5-digit code in a random region (by recipients' share) of the base
 * layout, unique among used (a bitmap of all 100,000 codes). */
static void new_code(struct rng *r, const struct sim *s, const int *prefixes, uint8_t *used,
                     struct place *pl)
{
    int region, number, code;
    do {
        region = pick_cum(s->region_cum, s->n_regions, unit(r));
        number = prefixes[region * FC_PREFIXES + below(r, FC_PREFIXES)];
        code = number * 100 + below(r, 100);
    } while (used[code >> 3] & (1 << (code & 7)));
    used[code >> 3] |= (uint8_t)(1 << (code & 7));
    snprintf(pl->code, sizeof pl->code, "%05d", code);
    pl->region = region;
    pl->prefix = -1;
}

static int in_list(const int *v, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* few-carriers: one carrier with one service, FC_ORIGINS shippers' sites and FC_DESTS
 * destinations with postal codes in the base layout's regions. Each site ships to
 * FC_LANES destinations (popular destinations more often) with Zipf-like lane volumes;
 * each lane has its own chance of missing its linehaul (a trailer that leaves full, a
 * poor interline partner), drawn for the pair, so lanes are not the sum of an origin and
 * a destination effect. Sites have their own late handovers and destinations their own
 * last-mile slips. All from the seed. */
static enum drisk_status build_few_carriers(struct sim *s, struct drisk_error *err)
{
    struct rng r;
    enum drisk_status rc;
    int prefixes[N_REGIONS * FC_PREFIXES], pick[FC_PREFIX_SPAN];
    uint8_t *used = NULL;
    if ((rc = build_base_network(s, FC_ORIGINS, err)))
        return rc;
    s->carrier[0] = freight_carrier;
    s->dest = calloc(FC_DESTS, sizeof *s->dest);
    s->dest_cum = calloc(FC_DESTS, sizeof *s->dest_cum);
    s->orig = calloc(FC_ORIGINS, sizeof *s->orig);
    s->orig_cum = calloc(FC_ORIGINS, sizeof *s->orig_cum);
    s->lane_dest = calloc((size_t)FC_ORIGINS * FC_LANES, sizeof *s->lane_dest);
    s->lane_cum = calloc((size_t)FC_ORIGINS * FC_LANES, sizeof *s->lane_cum);
    s->lane_slip = calloc((size_t)FC_ORIGINS * FC_LANES, sizeof *s->lane_slip);
    used = calloc(100000 / 8, 1);
    if (!s->dest || !s->dest_cum || !s->orig || !s->orig_cum || !s->lane_dest || !s->lane_cum ||
        !s->lane_slip || !used) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory for the simulated places");
        goto out;
    }
    rng_seed(&r, s->opts->seed, 5, 0);
    for (int g = 0; g < N_REGIONS; g++) {
        for (int i = 0; i < FC_PREFIX_SPAN; i++)
            pick[i] = i;
        shuffle(&r, pick, FC_PREFIX_SPAN);
        for (int k = 0; k < FC_PREFIXES; k++)
            prefixes[g * FC_PREFIXES + k] = 100 + FC_PREFIX_SPAN * g + pick[k];
    }
    for (int d = 0; d < FC_DESTS; d++) {
        struct place *pl = &s->dest[d];
        new_code(&r, s, prefixes, used, pl);
        pl->fac = ds_fac(s, pl->region, below(&r, base_regions[pl->region].n_ds));
        double u = unit(&r);
        pl->slip_p = 0.15 * u * u * u;
        pl->fail_f = 1.0;
    }
    s->n_dest = FC_DESTS;
    for (int o = 0; o < FC_ORIGINS; o++) {
        struct place *pl = &s->orig[o];
        new_code(&r, s, prefixes, used, pl);
        double u = unit(&r);
        pl->handover_p = 0.01 + 0.09 * u * u;
        double um = unit(&r);
        int mi = 0;
        while (mi + 1 < N_MERCHANTS && um >= merchants[mi].share) {
            um -= merchants[mi].share;
            mi++;
        }
        pl->merchant = mi;
        snprintf(s->loc[loc_site(s, o)], LOC_MAX, "R%02d-WH-%s", pl->region + 1, pl->code);
    }
    s->n_orig = FC_ORIGINS;
    if ((rc = zipf_cum(&r, s->dest_cum, FC_DESTS, FC_ZIPF_S, FC_ZIPF_Q, err)) ||
        (rc = zipf_cum(&r, s->orig_cum, FC_ORIGINS, FC_ZIPF_S, FC_ZIPF_Q, err)))
        goto out;
    for (int o = 0; o < FC_ORIGINS; o++) {
        int *lanes = &s->lane_dest[o * FC_LANES];
        double *cum = &s->lane_cum[o * FC_LANES];
        double total = 0;
        for (int j = 0; j < FC_LANES; j++) {
            /* Popular destinations more often, each once per site; after 64 repeats
             * the first unused one. */
            int d = -1;
            for (int tries = 0; tries < 64 && d < 0; tries++) {
                int cand = pick_cum(s->dest_cum, FC_DESTS, unit(&r));
                if (!in_list(lanes, j, cand))
                    d = cand;
            }
            for (int cand = 0; d < 0 && cand < FC_DESTS; cand++)
                if (!in_list(lanes, j, cand))
                    d = cand;
            lanes[j] = d;
            cum[j] = 1.0 / (j + 2);
            total += cum[j];
            double u = unit(&r);
            double v = unit(&r);
            s->lane_slip[o * FC_LANES + j] = u < 0.55 ? 0.02
                                             : u < 0.80 ? 0.10 + 0.20 * v
                                             : u < 0.95 ? 0.35 + 0.30 * v
                                                        : 0.70 + 0.25 * v;
        }
        double acc = 0;
        for (int j = 0; j < FC_LANES; j++) {
            acc += cum[j] / total;
            cum[j] = acc;
        }
        cum[FC_LANES - 1] = 1.0;
    }
out:
    free(used);
    return rc;
}

/* sparse-scans: every carrier records fewer intermediate scans, 30 % of the facilities
 * (from the seed) record only 40 % of what the carrier would, and unipost and cityhop
 * upload their facility scans in batches. */
static enum drisk_status build_sparse_scans(struct sim *s, struct drisk_error *err)
{
    static const double scan_p[N_CARRIERS] = { 0.75, 0.55, 0.45, 0.30 };
    struct rng r;
    enum drisk_status rc = build_base_network(s, 0, err);
    if (rc)
        return rc;
    for (int c = 0; c < N_CARRIERS; c++)
        s->carrier[c].scan_p = scan_p[c];
    s->carrier[C_UNIPOST].batch_h = 6; /* 05:00, 11:00, 17:00, 23:00 UTC */
    s->carrier[C_UNIPOST].batch_at_h = 5;
    s->carrier[C_CITYHOP].batch_h = 24; /* nightly at 22:00 UTC */
    s->carrier[C_CITYHOP].batch_at_h = 22;
    rng_seed(&r, s->opts->seed, 5, 0);
    for (int f = 0; f < s->n_fac; f++) {
        double u = unit(&r);
        if (s->fac[f].valid && u < 0.30)
            s->fac[f].scan_f = 0.40;
    }
    return DRISK_OK;
}

static enum drisk_status build_network(struct sim *s, struct drisk_error *err)
{
    enum drisk_status rc;
    memcpy(s->carrier, base_carriers, sizeof s->carrier);
    s->drift_fac = -1;
    switch (s->scenario) {
    case SC_MANY_PLACES: rc = build_many_places(s, err); break;
    case SC_FEW_CARRIERS: rc = build_few_carriers(s, err); break;
    case SC_SPARSE_SCANS: rc = build_sparse_scans(s, err); break;
    case SC_DRIFT:
        rc = build_base_network(s, 0, err);
        s->drift_fac = DRIFT_HUB;
        s->drift_at = drisk_sim_drift_at(s->opts);
        break;
    default: rc = build_base_network(s, 0, err); break;
    }
    return rc;
}

/* Generates the storms and backlogs of [start - 7 days, now + DISRUPT_TAIL_DAYS) from the
 * seed alone, into s->events (in start order) and the per-day table. */
static enum drisk_status build_disruptions(struct sim *s, struct drisk_error *err)
{
    struct rng r;
    size_t cap = 0;
    int n_slots = s->n_regions + s->n_fac;
    int64_t *until = calloc((size_t)n_slots, sizeof *until); /* storms, then backlogs */
    s->tab_day0 = day_of(s->opts->start) - 7;
    s->tab_days = s->opts->days + 7 + DISRUPT_TAIL_DAYS;
    s->disrupt = calloc((size_t)s->tab_days * (size_t)s->n_fac, 1);
    if (!s->disrupt || !until) {
        free(until);
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory for the simulated network");
    }
    rng_seed(&r, s->opts->seed, 2, 0);
    for (int64_t d = 0; d < s->tab_days; d++) {
        int y, m, dd;
        drisk_civil_from_days(s->tab_day0 + d, &y, &m, &dd);
        double storm_p = (m == 12 || m <= 2) ? STORM_P_WINTER : STORM_P;
        for (int i = 0; i < n_slots; i++) {
            struct disruption ev;
            int storm = i < s->n_regions;
            int where = storm ? i : i - s->n_regions;
            if (!storm && !s->fac[where].valid)
                continue;
            double p = storm ? storm_p : where < s->n_regions ? HUB_BACKLOG_P : DS_BACKLOG_P;
            /* Draw for every slot and day so one event never shifts the others. */
            double u = unit(&r);
            uint64_t v = rng_next(&r);
            if (d < until[i] || u >= p)
                continue;
            ev.storm = storm;
            ev.where = where;
            ev.start_day = s->tab_day0 + d;
            ev.days = storm ? 1 + (int)(v % 3) : 2 + (int)(v % 4);
            ev.delay_h = storm ? 12 + (int)((v >> 8) % 37) : 8 + (int)((v >> 8) % 29);
            until[i] = d + ev.days;
            if (s->n_events == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                struct disruption *pe = realloc(s->events, ncap * sizeof *pe);
                if (!pe) {
                    free(until);
                    return drisk_error_set(err, DRISK_ENOMEM,
                                           "out of memory for the simulated disruptions");
                }
                s->events = pe;
                cap = ncap;
            }
            s->events[s->n_events++] = ev;
            for (int64_t k = d; k < d + ev.days && k < s->tab_days; k++) {
                for (int f = 0; f < s->n_fac; f++) {
                    if (storm ? s->fac[f].region != where : f != where)
                        continue;
                    uint8_t *cell = &s->disrupt[(size_t)f * (size_t)s->tab_days + (size_t)k];
                    if ((*cell & 0x7f) < ev.delay_h)
                        *cell = (uint8_t)(ev.delay_h | (storm ? 0x80 : 0));
                }
            }
        }
    }
    free(until);
    return DRISK_OK;
}

/* Order volume per day: weekday, month, peak season, holidays, and day-to-day noise;
 * shipment indexes are spread over the days in proportion. */
static enum drisk_status build_volume(struct sim *s, struct drisk_error *err)
{
    static const double weekday_f[7] = { 1.15, 1.10, 1.05, 1.00, 0.95, 0.45, 0.30 };
    static const double month_f[12] = { 0.85, 0.90, 1.00, 1.00, 1.00, 0.95,
                                        0.90, 0.95, 1.00, 1.05, 1.10, 1.00 };
    int days = s->opts->days;
    double *w = malloc((size_t)days * sizeof *w);
    s->day_first = malloc(((size_t)days + 1) * sizeof *s->day_first);
    if (!w || !s->day_first) {
        free(w);
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory for the order calendar");
    }
    double total = 0;
    int64_t day0 = day_of(s->opts->start);
    for (int d = 0; d < days; d++) {
        struct rng r;
        int y, m, dd;
        rng_seed(&r, s->opts->seed, 3, (uint64_t)d);
        drisk_civil_from_days(day0 + d, &y, &m, &dd);
        double f = weekday_f[drisk_weekday((day0 + d) * DAY)] * month_f[m - 1];
        if (is_peak(day0 + d))
            f *= dd >= 21 && m == 12 ? 1.2 : 1.8;
        if (is_holiday(day0 + d))
            f *= 0.3;
        w[d] = f * (0.9 + 0.2 * unit(&r));
        total += w[d];
    }
    double acc = 0;
    for (int d = 0; d < days; d++) {
        s->day_first[d] = (int64_t)llround(acc / total * (double)s->opts->shipments);
        acc += w[d];
    }
    s->day_first[days] = s->opts->shipments;
    free(w);
    return DRISK_OK;
}

/* Labels are printed mostly in warehouse hours: relative weight of each UTC hour. */
static const double hour_w[24] = { 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.5, 3.0, 5.0, 6.5, 7.0, 7.0,
                                   6.5, 6.5, 6.0, 5.5, 5.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0, 0.7 };

/* The creation time of the j-th of n shipments of a day: the (j + u) / n quantile of the
 * hour profile, so creation times are increasing within the day. */
static int64_t creation_time(int64_t day_start, int64_t j, int64_t n, double u)
{
    double total = 0;
    for (int h = 0; h < 24; h++)
        total += hour_w[h];
    double q = ((double)j + u) / (double)n * total;
    for (int h = 0; h < 24; h++) {
        if (q < hour_w[h] || h == 23) {
            double frac = q / hour_w[h];
            if (frac > 0.9997)
                frac = 0.9997;
            return day_start + h * HOUR + (int64_t)(frac * HOUR);
        }
        q -= hour_w[h];
    }
    return day_start;
}

/* ---------------------------------------------------------------- one parcel */

/* Records an event at ts, or at least a minute after the previous one, so scans are in
 * strictly increasing time (and never collide on the store's key); the carrier records it
 * with probability record_p. Returns the time used.
 * Each call draws from the parcel's stream at most once in its arguments and once here:
 * two draws in one argument list would be evaluated in a compiler-chosen order. */
static int64_t emit(struct parcel *p, int64_t ts, int event, int reason, int loc,
                    double record_p)
{
    if (ts < p->last + 60)
        ts = p->last + 60;
    p->last = ts;
    if ((record_p >= 1 || chance(&p->rng, record_p)) && p->n < MAX_SCANS) {
        struct sim_scan *sc = &p->scans[p->n++];
        sc->ts = ts;
        sc->event = (uint8_t)event;
        sc->reason = (uint8_t)reason;
        sc->loc = (uint16_t)loc;
    }
    return ts;
}

/* 1 when the parcel is lost at this checkpoint of its journey. */
static int lost_here(struct parcel *p)
{
    return p->stage++ == p->lost_stage;
}

static void parcel_lost(struct parcel *p)
{
    p->end = END_LOST;
    p->end_ts = INT64_MAX;
    if (chance(&p->rng, p->c->declare_p))
        p->end_ts = emit(p, p->last + hours(24 * (10 + 15 * unit(&p->rng))), DRISK_EVENT_LOST,
                         0, LOC_NONE, 1);
}

static void parcel_end(struct parcel *p, int end, int64_t ts, int event, int reason, int loc)
{
    p->end = end;
    p->end_ts = emit(p, ts, event, reason, loc, 1);
}

/* Extra dwell at facility f at time t from a storm or backlog there (0 if none). */
static double disruption_delay(const struct sim *s, struct parcel *p, int f, int64_t t,
                               int *storm)
{
    int64_t d = day_of(t) - s->tab_day0;
    if (d < 0 || d >= s->tab_days)
        return 0;
    uint8_t cell = s->disrupt[(size_t)f * (size_t)s->tab_days + (size_t)d];
    if (!cell)
        return 0;
    *storm = cell >> 7;
    return (cell & 0x7f) * (0.5 + 0.5 * unit(&p->rng));
}

/* A random carrier exception at a facility: returns its delay in hours (0: none) and
 * its reason. */
static double random_exception(struct parcel *p, double p_exc, int *reason)
{
    if (!chance(&p->rng, p_exc))
        return 0;
    double u = unit(&p->rng);
    double h = unit(&p->rng);
    if (u < 0.35) {
        *reason = DRISK_REASON_DELAYED;
        return 6 + 18 * h;
    }
    if (u < 0.60) {
        *reason = DRISK_REASON_MISSORTED;
        return 24 + 24 * h;
    }
    if (u < 0.75) {
        *reason = DRISK_REASON_HELD;
        return 24 + 48 * h;
    }
    if (u < 0.90) {
        *reason = DRISK_REASON_DAMAGED;
        return 12 + 24 * h;
    }
    *reason = DRISK_REASON_OTHER;
    return 6 + 18 * h;
}

/* The parcel's time in a hub from arrival t to departure, exceptions recorded on the
 * way. Returns the departure time, or -1 if a damaged parcel is returned to sender. */
static int64_t hub_stay(const struct sim *s, struct parcel *p, const struct trip *tr, int hub,
                        int64_t t, int origin, double heavy)
{
    const struct carrier *c = p->c;
    const struct facility *fa = &s->fac[hub];
    int64_t day = day_of(t);
    int wd = drisk_weekday(t);
    double h = c->dwell_h * service_dwell[p->service] * (0.6 + 0.8 * unit(&p->rng)) * heavy *
               fa->dwell_f;
    if (chance(&p->rng, 0.05))
        h += 4 + 20 * unit(&p->rng);
    if (origin && p->service == SV_ECONOMY)
        h += 12 * unit(&p->rng); /* waits for a full trailer */
    if (origin && tr->lane_slip_p > 0 && chance(&p->rng, tr->lane_slip_p))
        h += 20 + 28 * unit(&p->rng); /* the lane's linehaul left without it */
    if (wd == 5)
        h *= 1.3;
    else if (wd == 6)
        h *= 1.7;
    if (is_peak(day)) {
        h *= 1.5;
        if (chance(&p->rng, 0.25))
            h += 6 + 18 * unit(&p->rng);
    }
    int storm = 0;
    double dh = disruption_delay(s, p, hub, t, &storm);
    if (dh > 0) {
        h += dh;
        if (chance(&p->rng, c->exc_scan_p * 0.7))
            emit(p, t + hours(0.5 + unit(&p->rng)), DRISK_EVENT_EXCEPTION,
                 storm ? DRISK_REASON_WEATHER_DELAY : DRISK_REASON_DELAYED, LOC_FAC(hub), 1);
    }
    if (hub == s->drift_fac && t >= s->drift_at) {
        /* drift: the hub has lost capacity and stays slow */
        h += DRIFT_MIN_H + DRIFT_SPAN_H * unit(&p->rng);
        if (chance(&p->rng, c->exc_scan_p * 0.7))
            emit(p, t + hours(0.5 + unit(&p->rng)), DRISK_EVENT_EXCEPTION, DRISK_REASON_DELAYED,
                 LOC_FAC(hub), 1);
    }
    int reason = 0;
    double eh = random_exception(p, c->exc_p * fa->exc_f, &reason);
    if (eh > 0) {
        int64_t et = emit(p, t + hours(0.5 + 2 * unit(&p->rng)), DRISK_EVENT_EXCEPTION, reason,
                          LOC_FAC(hub), c->exc_scan_p);
        if (reason == DRISK_REASON_DAMAGED && chance(&p->rng, 0.25)) {
            parcel_end(p, END_RETURNED, et + hours(24 + 48 * unit(&p->rng)),
                       DRISK_EVENT_RETURN_TO_SENDER, DRISK_REASON_DAMAGED, LOC_FAC(hub));
            return -1;
        }
        h += eh;
    }
    int64_t dep = t + hours(h);
    if (dep < p->last + 60)
        dep = p->last + 60;
    /* Economy parcels are not line-hauled on Sundays. */
    if (p->service == SV_ECONOMY && drisk_weekday(dep) == 6)
        dep = (day_of(dep) + 1) * DAY + hours(2 + 4 * unit(&p->rng));
    return dep;
}

/* Linehaul time between two hubs, hours. */
static double linehaul_h(const struct sim *s, struct parcel *p, int a, int b)
{
    double km = s->dist_km[a * s->n_regions + b];
    double h;
    if (p->service == SV_EXPRESS && km > 300)
        h = 3.0 + km / 500.0; /* by air */
    else
        h = (1.0 + km / 70.0) * (p->service == SV_ECONOMY ? 1.15 : 1.0);
    return h * p->c->linehaul_f * (0.95 + 0.25 * unit(&p->rng));
}

/* The first delivery day whose vans (leaving about 07:30) can take a parcel ready at t. */
static int64_t delivery_day(const struct carrier *c, int64_t t)
{
    int64_t d = day_of(t);
    if (t > d * DAY + 7 * HOUR)
        d++;
    while (!is_delivery_day(c, d))
        d++;
    return d;
}

/* From arrival at the delivery station at t to delivered, returned or lost. */
static void last_mile(const struct sim *s, struct parcel *p, const struct trip *tr, int64_t t,
                      double value)
{
    int ds = tr->ds;
    const struct carrier *c = p->c;
    struct rng *r = &p->rng;
    int loc = LOC_FAC(ds);
    int64_t ready = t + HOUR;
    int storm = 0;
    double dh = disruption_delay(s, p, ds, t, &storm);
    if (dh > 0) {
        ready += hours(dh);
        if (chance(r, c->exc_scan_p * 0.7))
            emit(p, t + hours(0.5 + unit(r)), DRISK_EVENT_EXCEPTION,
                 storm ? DRISK_REASON_WEATHER_DELAY : DRISK_REASON_DELAYED, loc, 1);
    }
    int reason = 0;
    double eh = random_exception(p, c->exc_p * 0.4 * s->fac[ds].exc_f, &reason);
    if (eh > 0) {
        emit(p, t + hours(0.5 + unit(r)), DRISK_EVENT_EXCEPTION, reason, loc,
             c->exc_scan_p);
        ready += hours(eh);
    }
    if (is_peak(day_of(t)) && chance(r, 0.15))
        ready += DAY; /* vans full: the parcel waits a day */
    double fail_f = 1.0;
    if (tr->to) {
        /* The sectional center's backlog (1-2 days), then the code's own route (1-3). */
        if (tr->to->prefix >= 0 && chance(r, s->prefix_slip[tr->to->prefix]))
            ready += (1 + below(r, 2)) * (int64_t)DAY;
        if (chance(r, tr->to->slip_p))
            ready += (1 + below(r, 3)) * (int64_t)DAY;
        fail_f = tr->to->fail_f;
    }

    double fail_p = c->fail_p * (value > 400 ? 1.8 : 1.0) * fail_f; /* signature required */
    for (int attempt = 1;; attempt++) {
        int64_t d = delivery_day(c, ready);
        int64_t ofd = emit(p, d * DAY + hours(7.5 + 1.5 * unit(r)), DRISK_EVENT_OUT_FOR_DELIVERY,
                           0, loc, p->c->scan_p * s->fac[ds].scan_f);
        if (attempt == 1 && lost_here(p)) {
            parcel_lost(p);
            return;
        }
        int64_t at = ofd + hours(0.5 + 9.5 * unit(r));
        if (!chance(r, attempt == 1 ? fail_p : 0.5)) {
            parcel_end(p, END_DELIVERED, at, DRISK_EVENT_DELIVERED, 0, loc);
            return;
        }
        double u = unit(r);
        int why = u < 0.80 ? DRISK_REASON_RECIPIENT_UNAVAILABLE
                  : u < 0.95 ? DRISK_REASON_ADDRESS_ISSUE : DRISK_REASON_REFUSED;
        at = emit(p, at, DRISK_EVENT_DELIVERY_ATTEMPTED, why, loc, 1);
        if (why == DRISK_REASON_REFUSED) {
            parcel_end(p, END_RETURNED, at + hours(1 + 2 * unit(r)),
                       DRISK_EVENT_RETURN_TO_SENDER, why, loc);
            return;
        }
        if (why == DRISK_REASON_ADDRESS_ISSUE && chance(r, 0.5)) {
            parcel_end(p, END_RETURNED,
                       drisk_add_business_days(at, 2) + hours(8 + 2 * unit(r)),
                       DRISK_EVENT_RETURN_TO_SENDER, why, loc);
            return;
        }
        if (attempt < c->max_attempts) {
            ready = at + 12 * HOUR; /* next delivery day */
            continue;
        }
        /* Last attempt failed: held at the station for the recipient. */
        int64_t held = delivery_day(c, at + 12 * HOUR);
        emit(p, held * DAY + hours(8 + unit(r)), DRISK_EVENT_AVAILABLE_FOR_PICKUP, 0, loc, 1);
        if (chance(r, 0.85)) {
            int64_t pd = held;
            for (int k = below(r, 4); k > 0; k--)
                pd = delivery_day(c, (pd + 1) * DAY);
            parcel_end(p, END_DELIVERED, pd * DAY + hours(10 + 8 * unit(r)),
                       DRISK_EVENT_DELIVERED, 0, loc);
        } else {
            parcel_end(p, END_RETURNED,
                       drisk_add_business_days((held + 7) * DAY, 1) + hours(8 + 2 * unit(r)),
                       DRISK_EVENT_RETURN_TO_SENDER, DRISK_REASON_RECIPIENT_UNAVAILABLE, loc);
        }
        return;
    }
}

/* The lost checkpoint of a parcel on a route of n_hubs hubs: after pickup, at each hub
 * arrival and departure, at the station and on the van (2 n_hubs + 3 of them), or -1.
 * With place-specific loss factors (many-places) a checkpoint is as likely as its
 * facility's factor, and the carrier's loss rate is scaled by their mean. */
static int lost_checkpoint(const struct sim *s, struct parcel *p, const int *route, int n_hubs,
                           int ds)
{
    struct rng *r = &p->rng;
    if (s->scenario != SC_MANY_PLACES)
        return chance(r, p->c->loss_p) ? below(r, 2 * n_hubs + 3) : -1;
    double w[2 * MAX_HUBS + 3], total = 0;
    int n = 2 * n_hubs + 3;
    w[0] = 1.0;
    for (int i = 0; i < n_hubs; i++)
        w[1 + 2 * i] = w[2 + 2 * i] = s->fac[route[i]].loss_f;
    w[n - 2] = w[n - 1] = s->fac[ds].loss_f;
    for (int k = 0; k < n; k++)
        total += w[k];
    if (!chance(r, p->c->loss_p * total / n))
        return -1;
    double u = unit(r) * total;
    for (int k = 0; k < n; k++) {
        if (u < w[k])
            return k;
        u -= w[k];
    }
    return n - 1;
}

/* The whole journey of a parcel from its label to its end (which may be after "now"). */
static void simulate_journey(const struct sim *s, struct parcel *p, const struct trip *tr,
                             double weight, double value)
{
    const struct carrier *c = p->c;
    struct rng *r = &p->rng;
    int n_hubs = s->route_n[tr->origin * s->n_regions + tr->dest];
    const int *route = s->route[tr->origin * s->n_regions + tr->dest];
    int ds = tr->ds;
    double heavy = weight > 15 ? 1.25 : 1.0;

    p->last = p->created - 60;
    emit(p, p->created, DRISK_EVENT_LABEL_CREATED, 0, tr->wh_loc, 1);

    /* Collection: the carrier's daily pickup on business days, after the label. */
    int64_t d = day_of(p->created);
    while (!is_business(d) || p->created + 1800 > d * DAY + c->pickup_hour * HOUR)
        d++;
    if (chance(r, tr->handover_p))
        d = day_of(drisk_add_business_days(d * DAY, 1));
    int64_t t = emit(p, d * DAY + hours(c->pickup_hour + 1.5 * unit(r)), DRISK_EVENT_PICKED_UP,
                     0, tr->wh_loc, p->c->scan_p);
    p->lost_stage = lost_checkpoint(s, p, route, n_hubs, ds);
    if (lost_here(p)) {
        parcel_lost(p);
        return;
    }
    t += hours(0.5 + 2 * unit(r));
    for (int i = 0; i < n_hubs; i++) {
        int hub = route[i];
        double scan_p = p->c->scan_p * s->fac[hub].scan_f;
        t = emit(p, t, DRISK_EVENT_ARRIVED_AT_FACILITY, 0, LOC_FAC(hub), scan_p);
        if (lost_here(p)) {
            parcel_lost(p);
            return;
        }
        int64_t dep = hub_stay(s, p, tr, hub, t, i == 0, heavy);
        if (dep < 0)
            return;
        t = emit(p, dep, DRISK_EVENT_DEPARTED_FACILITY, 0, LOC_FAC(hub), scan_p);
        if (lost_here(p)) {
            parcel_lost(p);
            return;
        }
        if (i + 1 < n_hubs) {
            double h = linehaul_h(s, p, hub, route[i + 1]);
            if (h >= 6)
                emit(p, t + hours(h * (0.3 + 0.4 * unit(r))), DRISK_EVENT_IN_TRANSIT, 0,
                     LOC_NONE, p->c->scan_p);
            t += hours(h);
        } else {
            t += hours(0.75 + 1.75 * unit(r)); /* to the delivery station */
        }
    }
    t = emit(p, t, DRISK_EVENT_ARRIVED_AT_FACILITY, 0, LOC_FAC(ds),
             p->c->scan_p * s->fac[ds].scan_f);
    if (lost_here(p)) {
        parcel_lost(p);
        return;
    }
    last_mile(s, p, tr, t, value);
}

/* Scans sent as they happen: the merchant's label, and the driver's handheld (attempts,
 * delivery) and terminal events. A batching carrier uploads the others in batches. */
static int realtime_event(int event)
{
    return event == DRISK_EVENT_LABEL_CREATED || event == DRISK_EVENT_DELIVERY_ATTEMPTED ||
           event == DRISK_EVENT_AVAILABLE_FOR_PICKUP || event == DRISK_EVENT_DELIVERED ||
           event == DRISK_EVENT_RETURN_TO_SENDER || event == DRISK_EVENT_LOST;
}

/* sparse-scans: a batching carrier's facility scans carry the time they were uploaded,
 * not the time they happened. A scan is uploaded at the carrier's next upload time (every
 * batch_h hours from batch_at_h UTC), or, if a real-time scan comes first, flushed with
 * it, just before it (as a handheld syncs its queue when it sends a delivery). Scans
 * stay in their physical order: each run of queued scans between two real-time ones
 * gets times that increase strictly (a second apart within one upload, a minute apart
 * when flushed) and lie after the scan they follow and before the one they precede. */
static void batch_scans(struct parcel *p)
{
    const int64_t period = (int64_t)p->c->batch_h * HOUR, at = (int64_t)p->c->batch_at_h * HOUR;
    int i = 0;
    while (i < p->n) {
        if (realtime_event(p->scans[i].event)) {
            i++;
            continue;
        }
        int j = i;
        while (j < p->n && !realtime_event(p->scans[j].event))
            j++;
        int64_t prev_slot = INT64_MIN, tie = 0;
        for (int k = i; k < j; k++) {
            int64_t x = p->scans[k].ts - at;
            int64_t slot = (x >= 0 ? (x + period - 1) / period : -(-x / period)) * period + at;
            tie = slot == prev_slot ? tie + 1 : 0;
            prev_slot = slot;
            int64_t ts = slot + tie;
            if (j < p->n && ts > p->scans[j].ts - (int64_t)(j - k) * 60)
                ts = p->scans[j].ts - (int64_t)(j - k) * 60;
            p->scans[k].ts = ts;
        }
        i = j;
    }
}

static int pick_lane(const struct merchant *m, double u)
{
    for (int i = 0; i < m->n_lanes; i++) {
        if (u < m->lanes[i].share)
            return i;
        u -= m->lanes[i].share;
    }
    return m->n_lanes - 1;
}

/* Simulates shipment i into sh and p (the recorded scans up to "now"). */
static void simulate_shipment(struct sim *s, int64_t i, int64_t created,
                              struct drisk_shipment *sh, struct parcel *p)
{
    struct rng *r = &p->rng;
    struct trip tr;
    const struct merchant *m;
    const struct carrier *c;
    int mi, service;
    rng_seed(r, s->opts->seed, 1, (uint64_t)i);

    memset(&tr, 0, sizeof tr);
    if (s->scenario == SC_FEW_CARRIERS) {
        int o = pick_cum(s->orig_cum, s->n_orig, unit(r));
        int j = pick_cum(&s->lane_cum[o * FC_LANES], FC_LANES, unit(r));
        const struct place *from = &s->orig[o];
        tr.to = &s->dest[s->lane_dest[o * FC_LANES + j]];
        mi = from->merchant;
        c = &s->carrier[0];
        service = SV_STANDARD;
        tr.origin = from->region;
        tr.wh_loc = loc_site(s, o);
        tr.handover_p = from->handover_p;
        tr.lane_slip_p = s->lane_slip[o * FC_LANES + j];
        tr.origin_code = from->code;
    } else {
        double u = unit(r);
        mi = 0;
        while (mi + 1 < N_MERCHANTS && u >= merchants[mi].share) {
            u -= merchants[mi].share;
            mi++;
        }
        const struct merchant *mm = &merchants[mi];
        const struct lane *lane = &mm->lanes[pick_lane(mm, unit(r))];
        c = &s->carrier[lane->carrier];
        service = lane->service;
        int wh = (mm->n_wh > 1 && unit(r) >= mm->wh_share[0]) ? 1 : 0;
        tr.origin = s->wh_region[mi][wh];
        tr.wh_loc = loc_wh(s, mi, wh);
        tr.handover_p = mm->late_handover_p;
        tr.origin_code = s->wh_code[mi][wh];
        double ud = unit(r);
        if (s->scenario == SC_MANY_PLACES) {
            tr.to = &s->dest[pick_cum(s->dest_cum, s->n_dest, ud)];
        } else {
            int dest = 0;
            while (dest + 1 < s->n_regions && ud >= s->region_cum[dest])
                dest++;
            tr.dest = dest;
            tr.ds = ds_fac(s, dest, below(r, s->reg[dest].n_ds));
            tr.dest_code = s->region_code[dest];
        }
    }
    if (tr.to) {
        tr.dest = tr.to->region;
        tr.ds = tr.to->fac;
        tr.dest_code = tr.to->code;
    }
    m = &merchants[mi];

    double uw = unit(r);
    double weight = m->w_min * exp(log(m->w_max / m->w_min) * pow(uw, 1.6));
    weight = floor(weight * 1000 + 0.5) / 1000;
    double uv = unit(r);
    double value = floor(m->v_min * exp(log(m->v_max / m->v_min) * uv * uv)) + 0.99;
    int declared = chance(r, m->declared_p);

    p->c = c;
    p->service = service;
    p->created = created;
    p->n = 0;
    p->stage = 0;
    p->end = 0;
    p->end_ts = INT64_MAX;

    /* The promise: business days by route length (hubs), counted from the order day (the next
     * business day after the cutoff), ending at 20:00 UTC. */
    int bd = c->promise_bd[p->service][s->route_n[tr.origin * s->n_regions + tr.dest] - 1];
    int64_t cd = day_of(created);
    int64_t day0 = is_business(cd) && created - cd * DAY < c->cutoff_hour * HOUR
                       ? cd * DAY
                       : drisk_add_business_days(created, 1);
    p->promised = drisk_add_business_days(day0, bd) + 20 * HOUR;

    simulate_journey(s, p, &tr, weight, value);
    if (c->batch_h > 0)
        batch_scans(p);

    /* Cut at "now". */
    int kept = 0;
    while (kept < p->n && p->scans[kept].ts <= s->now)
        kept++;
    p->n = kept;

    snprintf(sh->merchant, sizeof sh->merchant, "%s", m->name);
    uint64_t mod = 1;
    for (int k = 0; k < c->digits; k++)
        mod *= 10;
    /* i -> i * M + offset (mod 10^digits) is a bijection (M is prime to 10), so tracking
     * numbers are unique yet look random. */
    /* The offset depends on every option that shapes the history, so a run with other
     * options writes other tracking numbers instead of rewriting these shipments' dates
     * under their old scans. */
    uint64_t run = mix64(s->opts->seed ^ 0x7f4a7c15ULL) ^
                   mix64((uint64_t)s->opts->start ^ ((uint64_t)s->opts->days << 40)) ^
                   mix64((uint64_t)s->opts->shipments * 0x9e3779b97f4a7c15ULL);
    if (s->scenario != SC_BASE)
        run ^= mix64(0x5ce7a410ULL + (uint64_t)s->scenario);
    uint64_t offset = run % mod;
    uint64_t num = ((uint64_t)i * 3367900313ULL % mod + offset) % mod;
    snprintf(sh->shipment_id, sizeof sh->shipment_id, "%s%0*llu%s", c->prefix, c->digits,
             (unsigned long long)num, c->suffix);
    snprintf(sh->order_id, sizeof sh->order_id, "%s%08lld", m->order_prefix,
             (long long)(1000000 + s->order_seq[mi]++));
    snprintf(sh->carrier, sizeof sh->carrier, "%s", c->name);
    snprintf(sh->service, sizeof sh->service, "%s", service_names[p->service]);
    snprintf(sh->origin, sizeof sh->origin, "%s", tr.origin_code);
    snprintf(sh->destination, sizeof sh->destination, "%s", tr.dest_code);
    sh->id = 0;
    sh->weight_kg = weight;
    sh->declared_value = declared ? value : NAN;
    sh->created_at = created;
    sh->promised_at = p->promised;
    sh->delivered_at = DRISK_TS_NONE;
    sh->outcome = DRISK_OUTCOME_NONE;
    if (p->end_ts <= s->now) {
        sh->outcome = p->end == END_DELIVERED ? DRISK_OUTCOME_DELIVERED
                      : p->end == END_RETURNED ? DRISK_OUTCOME_RETURNED
                                               : DRISK_OUTCOME_LOST;
        if (p->end == END_DELIVERED)
            sh->delivered_at = p->end_ts;
    } else if (p->end == END_LOST && p->n > 0 &&
               p->scans[p->n - 1].ts + SILENT_LOST_DAYS * DAY <= s->now) {
        sh->outcome = DRISK_OUTCOME_LOST;
    }
}

/* Carrier-style descriptions of each event (and, for exceptions and attempts, reason). */
static const char *describe(int event, int reason)
{
    switch (event) {
    case DRISK_EVENT_LABEL_CREATED: return "Shipping label created";
    case DRISK_EVENT_PICKED_UP: return "Picked up by carrier";
    case DRISK_EVENT_ARRIVED_AT_FACILITY: return "Arrived at facility";
    case DRISK_EVENT_DEPARTED_FACILITY: return "Departed facility";
    case DRISK_EVENT_IN_TRANSIT: return "In transit";
    case DRISK_EVENT_OUT_FOR_DELIVERY: return "Out for delivery";
    case DRISK_EVENT_AVAILABLE_FOR_PICKUP: return "Available for pickup at delivery station";
    case DRISK_EVENT_DELIVERED: return "Delivered";
    case DRISK_EVENT_LOST: return "Parcel declared lost";
    case DRISK_EVENT_DELIVERY_ATTEMPTED:
        if (reason == DRISK_REASON_ADDRESS_ISSUE)
            return "Delivery attempted - address problem";
        if (reason == DRISK_REASON_REFUSED)
            return "Delivery refused by recipient";
        return "Delivery attempted - recipient not available";
    case DRISK_EVENT_RETURN_TO_SENDER:
        return reason == DRISK_REASON_DAMAGED ? "Damaged - returning to sender"
                                              : "Returning to sender";
    case DRISK_EVENT_EXCEPTION:
        switch (reason) {
        case DRISK_REASON_WEATHER_DELAY: return "Delayed by severe weather";
        case DRISK_REASON_DELAYED: return "Processing delayed at facility";
        case DRISK_REASON_MISSORTED: return "Missorted - rerouted";
        case DRISK_REASON_HELD: return "Held at facility";
        case DRISK_REASON_DAMAGED: return "Package damaged - repackaging";
        default: return "Exception";
        }
    default: return "";
    }
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---------------------------------------------------------------- running */

void drisk_sim_options_default(struct drisk_sim_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->shipments = 10000;
    opts->seed = 1;
    opts->start = drisk_days_from_civil(2025, 1, 1) * DAY;
    opts->days = 365;
    opts->export_dir = NULL;
    opts->scenario = "base";
}

const char *drisk_sim_scenario_name(int i)
{
    return i >= 0 && i < N_SCENARIOS ? scenario_names[i] : NULL;
}

int drisk_sim_scenario_find(const char *name)
{
    if (!name)
        return SC_BASE;
    for (int i = 0; i < N_SCENARIOS; i++)
        if (strcmp(name, scenario_names[i]) == 0)
            return i;
    return -1;
}

int64_t drisk_sim_drift_at(const struct drisk_sim_options *opts)
{
    return (day_of(opts->start) + (int64_t)opts->days * DRIFT_PCT / 100) * DAY;
}

static enum drisk_status check_options(const struct drisk_sim_options *opts,
                                       struct drisk_error *err)
{
    if (opts->shipments < 1 || opts->shipments > DRISK_SIM_MAX_SHIPMENTS)
        return drisk_error_set(err, DRISK_EINVAL,
                               "the number of shipments must be between 1 and %lld (got %lld)",
                               DRISK_SIM_MAX_SHIPMENTS, (long long)opts->shipments);
    if (opts->days < 1 || opts->days > DRISK_SIM_MAX_DAYS)
        return drisk_error_set(err, DRISK_EINVAL,
                               "the number of days must be between 1 and %d (got %d)",
                               DRISK_SIM_MAX_DAYS, opts->days);
    if (opts->start < drisk_days_from_civil(1971, 1, 1) * DAY ||
        opts->start > drisk_days_from_civil(9000, 1, 1) * DAY)
        return drisk_error_set(err, DRISK_EINVAL,
                               "the start date must be between 1971-01-01 and 9000-01-01");
    if (drisk_sim_scenario_find(opts->scenario) < 0) {
        char names[256];
        size_t n = 0;
        names[0] = '\0';
        for (int i = 0; i < N_SCENARIOS && n < sizeof names; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                                  scenario_names[i]);
        return drisk_error_set(err, DRISK_EINVAL, "unknown scenario \"%.64s\" (valid: %s)",
                               opts->scenario, names);
    }
    return DRISK_OK;
}

static void sim_free(struct sim *s)
{
    if (!s)
        return;
    free(s->disrupt);
    free(s->events);
    free(s->day_first);
    free(s->reg);
    free(s->region_code);
    free(s->fac);
    free(s->loc);
    free(s->dist_km);
    free(s->route_n);
    free(s->route);
    free(s->region_cum);
    free(s->dest);
    free(s->orig);
    free(s->dest_cum);
    free(s->orig_cum);
    free(s->prefix_slip);
    free(s->lane_dest);
    free(s->lane_cum);
    free(s->lane_slip);
    free(s);
}

static enum drisk_status sim_create(const struct drisk_sim_options *opts, struct sim **out,
                                    struct drisk_error *err)
{
    enum drisk_status rc;
    struct sim *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return drisk_error_set(err, DRISK_ENOMEM, "out of memory starting the simulator");
    s->opts = opts;
    s->scenario = drisk_sim_scenario_find(opts->scenario);
    s->now = day_of(opts->start) * DAY + (int64_t)opts->days * DAY;
    if ((rc = build_network(s, err)) || (rc = build_disruptions(s, err)) ||
        (rc = build_volume(s, err))) {
        sim_free(s);
        return rc;
    }
    *out = s;
    return DRISK_OK;
}

enum drisk_status drisk_sim_disruptions(const struct drisk_sim_options *opts,
                                        struct drisk_sim_disruption *out, size_t cap,
                                        size_t *n, struct drisk_error *err)
{
    struct sim *s = NULL;
    enum drisk_status rc;
    *n = 0;
    if ((rc = check_options(opts, err)) || (rc = sim_create(opts, &s, err)))
        return rc;
    for (size_t i = 0; i < s->n_events && i < cap; i++) {
        const struct disruption *ev = &s->events[i];
        struct drisk_sim_disruption *o = &out[i];
        copy_str(o->location, sizeof o->location,
                 ev->storm ? s->region_code[ev->where] : s->loc[LOC_FAC(ev->where)]);
        o->storm = ev->storm;
        o->start = ev->start_day * DAY;
        o->end = (ev->start_day + ev->days) * DAY;
        o->delay_h = ev->delay_h;
    }
    *n = s->n_events;
    sim_free(s);
    return DRISK_OK;
}

static enum drisk_status open_export(const char *dir, const char *name, FILE **f,
                                     struct drisk_error *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return drisk_error_set(err, DRISK_EINVAL, "export directory path too long: %s", dir);
    *f = fopen(path, "wb");
    if (!*f)
        return drisk_error_set(err, DRISK_EIO, "cannot write %s: %s", path, strerror(errno));
    setvbuf(*f, NULL, _IOFBF, 1 << 20);
    return DRISK_OK;
}

static enum drisk_status close_export(FILE **f, const char *dir, const char *name,
                                      struct drisk_error *err)
{
    int bad = ferror(*f);
    if (fclose(*f) != 0)
        bad = 1;
    *f = NULL;
    if (bad)
        return drisk_error_set(err, DRISK_EIO, "error writing %s/%s (is the disk full?)", dir,
                               name);
    return DRISK_OK;
}



/* The simulated rows on their way to the store, written a batch at a time through the
 * store's bulk calls (PostgreSQL: one COPY per batch rather than a round trip per row). */
#define SIM_BATCH 2048
struct sim_batch {
    struct drisk_shipment sh[SIM_BATCH];
    const struct drisk_shipment *sh_ptr[SIM_BATCH];
    enum drisk_upsert sh_res[SIM_BATCH];
    size_t n_sh;
    struct drisk_scan *scans; /* cap_scans */
    struct drisk_scan_put *puts;
    int *scan_res;
    size_t n_scans, cap_scans;
};

static void sim_batch_free(struct sim_batch *b)
{
    if (!b)
        return;
    free(b->scans);
    free(b->puts);
    free(b->scan_res);
    free(b);
}

static enum drisk_status sim_batch_flush(struct drisk_store *store, struct sim_batch *b,
                                         struct drisk_error *err)
{
    enum drisk_status rc;
    size_t fresh;
    for (size_t i = 0; i < b->n_sh; i++)
        b->sh_ptr[i] = &b->sh[i];
    if ((rc = drisk_store_put_shipments(store, b->sh_ptr, b->n_sh, b->sh_res, err)) ||
        (rc = drisk_store_put_scans(store, b->puts, b->n_scans, b->scan_res, &fresh, err)))
        return rc;
    b->n_sh = b->n_scans = 0;
    return DRISK_OK;
}

/* Adds a shipment and its scans, flushing first when the batch is full. */
static enum drisk_status sim_batch_add(struct drisk_store *store, struct sim_batch *b,
                                       const struct drisk_shipment *sh,
                                       const struct drisk_scan *scans, size_t n,
                                       struct drisk_error *err)
{
    enum drisk_status rc;
    if ((b->n_sh == SIM_BATCH || b->n_scans + n > b->cap_scans) && b->n_sh &&
        (rc = sim_batch_flush(store, b, err)))
        return rc;
    if (b->n_scans + n > b->cap_scans) {
        size_t cap = b->cap_scans ? b->cap_scans : SIM_BATCH * 16;
        while (cap < b->n_scans + n)
            cap *= 2;
        struct drisk_scan *sc = realloc(b->scans, cap * sizeof *sc);
        if (sc)
            b->scans = sc;
        struct drisk_scan_put *pu = realloc(b->puts, cap * sizeof *pu);
        if (pu)
            b->puts = pu;
        int *res = realloc(b->scan_res, cap * sizeof *res);
        if (res)
            b->scan_res = res;
        if (!sc || !pu || !res)
            return drisk_error_set(err, DRISK_ENOMEM, "out of memory simulating");
        b->cap_scans = cap;
    }
    /* the puts point into sh[] and scans[], which grows only while the batch is empty */
    struct drisk_shipment *dst = &b->sh[b->n_sh++];
    *dst = *sh;
    for (size_t k = 0; k < n; k++, b->n_scans++) {
        b->scans[b->n_scans] = scans[k];
        b->puts[b->n_scans] = (struct drisk_scan_put){ dst->merchant, dst->shipment_id,
                                                        &b->scans[b->n_scans] };
    }
    return DRISK_OK;
}

enum drisk_status drisk_sim_run(struct drisk_store *store, const struct drisk_sim_options *opts,
                                struct drisk_sim_summary *summary, struct drisk_error *err)
{
    enum drisk_status rc;
    struct sim *s = NULL;
    struct parcel *p = NULL;
    struct drisk_shipment *sh = NULL;
    struct drisk_scan *scan = NULL; /* MAX_SCANS: the parcel's */
    struct sim_batch *batch = NULL;
    FILE *fsh = NULL, *fsc = NULL;
    int in_txn = 0;
    struct drisk_meter meter;

    memset(summary, 0, sizeof *summary);
    if ((rc = check_options(opts, err)) || (rc = sim_create(opts, &s, err)))
        goto out;
    p = malloc(sizeof *p);
    sh = malloc(sizeof *sh);
    scan = malloc(MAX_SCANS * sizeof *scan);
    batch = store ? calloc(1, sizeof *batch) : NULL;
    if (!p || !sh || !scan || (store && !batch)) {
        rc = drisk_error_set(err, DRISK_ENOMEM, "out of memory starting the simulator");
        goto out;
    }
    if (opts->export_dir) {
        if (mkdir(opts->export_dir, 0777) != 0 && errno != EEXIST) {
            rc = drisk_error_set(err, DRISK_EIO, "cannot create export directory %s: %s",
                                 opts->export_dir, strerror(errno));
            goto out;
        }
        if ((rc = open_export(opts->export_dir, "shipments.csv", &fsh, err)) ||
            (rc = open_export(opts->export_dir, "scans.csv", &fsc, err)))
            goto out;
        fputs(drisk_shipments_csv_header, fsh);
        fputs(drisk_scans_csv_header, fsc);
    }
    if (store) {
        drisk_store_set_cache_bytes(store, (int64_t)256 << 20);
        if ((rc = drisk_store_begin_bulk(store, err)))
            goto out;
        in_txn = 1;
    }
    drisk_meter_start(&meter, "simulate", "shipments", opts->shipments);

    int64_t day0 = day_of(opts->start);
    int64_t i = 0;
    for (int d = 0; d < opts->days; d++) {
        int64_t first = s->day_first[d], n = s->day_first[d + 1] - first;
        for (int64_t j = 0; j < n; j++, i++) {
            struct rng tr;
            rng_seed(&tr, opts->seed, 4, (uint64_t)i);
            int64_t created = creation_time((day0 + d) * DAY, j, n, unit(&tr));
            simulate_shipment(s, i, created, sh, p);

            summary->shipments++;
            summary->scans += p->n;
            switch (sh->outcome) {
            case DRISK_OUTCOME_DELIVERED:
                summary->delivered++;
                summary->on_time += sh->delivered_at <= sh->promised_at;
                break;
            case DRISK_OUTCOME_LOST: summary->lost++; break;
            case DRISK_OUTCOME_RETURNED: summary->returned++; break;
            default: summary->in_flight++; break;
            }

            if (fsh && drisk_write_shipment_csv(fsh, sh) != 0) {
                rc = drisk_error_set(err, DRISK_EIO, "error writing %s/shipments.csv",
                                     opts->export_dir);
                goto out;
            }
            for (int k = 0; k < p->n; k++) {
                const struct sim_scan *ss = &p->scans[k];
                struct drisk_scan *sc = &scan[k];
                sc->ts = ss->ts;
                sc->event = ss->event;
                sc->reason = ss->reason;
                sc->location_id = 0;
                copy_str(sc->location, sizeof sc->location, s->loc[ss->loc]);
                copy_str(sc->description, sizeof sc->description,
                         describe(ss->event, ss->reason));
                if (fsc && drisk_write_scan_csv(fsc, sh, sc) != 0) {
                    rc = drisk_error_set(err, DRISK_EIO, "error writing %s/scans.csv",
                                         opts->export_dir);
                    goto out;
                }
            }
            if (store && (rc = sim_batch_add(store, batch, sh, scan, (size_t)p->n, err)))
                goto out;
            if ((i & 1023) == 0)
                drisk_meter_tick(&meter, i + 1);
        }
    }
    if (fsh && (rc = close_export(&fsh, opts->export_dir, "shipments.csv", err)))
        goto out;
    if (fsc && (rc = close_export(&fsc, opts->export_dir, "scans.csv", err)))
        goto out;
    if (store) {
        if ((rc = sim_batch_flush(store, batch, err)) || (rc = drisk_store_commit(store, err)))
            goto out;
        in_txn = 0;
    }
    drisk_meter_end(&meter, summary->shipments);
out:
    if (in_txn)
        drisk_store_rollback(store);
    if (fsh)
        fclose(fsh);
    if (fsc)
        fclose(fsc);
    free(scan);
    free(sh);
    free(p);
    sim_batch_free(batch);
    sim_free(s);
    return rc;
}
