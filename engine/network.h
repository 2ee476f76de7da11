/* Network statistics as of a moment: facility congestion (how long parcels are dwelling
 * now against the facility's normal dwell), exception rates at facilities over the last
 * 24 h, trailing 28-day late rates per carrier and per lane, and the outcome history of
 * every place, lane, service and merchant (time-ordered target statistics, below). The
 * state is updated
 * incrementally, one event at a time and in time order, by whoever replays history (the
 * snapshot builder) or receives live scans (the server); it never looks back into the
 * store, and it only knows what was fed to it: fed only events up to as_of, it cannot
 * leak the future into features.
 *
 * Threads: a struct drisk_network is not synchronized; one writer at a time, and no
 * reader while it is written. */
#ifndef DRISK_NETWORK_H
#define DRISK_NETWORK_H

#include <stdint.h>

#include "engine/shipment.h"
#include "base/error.h"

struct drisk_network;

/* A new, empty state. NULL when out of memory. Release with drisk_network_free. */
struct drisk_network *drisk_network_create(void);
void drisk_network_free(struct drisk_network *net);

/* ---- checkpoints: the state as bytes, so a process can start from it instead of
 * replaying the whole history ----
 * The bytes are this build's memory layout (a magic, a format version and the sizes of
 * the records guard it) followed by an FNV-1a checksum: a checkpoint is read back by the
 * same drisk on the same kind of machine, never exchanged. */

/* Writes net into a new buffer: *out (release with free) of *len bytes. DRISK_ENOMEM
 * when it cannot be allocated. */
enum drisk_status drisk_network_save(const struct drisk_network *net, unsigned char **out,
                                     size_t *len);

/* A new state from bytes drisk_network_save wrote (*out: release with
 * drisk_network_free). Anything else (another layout, truncated, altered) is
 * DRISK_EINVAL, saying what. */
enum drisk_status drisk_network_load(const unsigned char *buf, size_t len,
                                     struct drisk_network **out, struct drisk_error *err);

/* Feeds a scan of shipment sh at time sc->ts (non-decreasing across calls; an event older
 * than the 24 h window is counted in the long-run figures only). prev is the shipment's
 * previous scan or NULL: a departed_facility right after an arrived_at_facility at the
 * same place completes one dwell there. Locations are sc->location_id (dense small
 * integers from the store; 0 = none). Returns DRISK_ENOMEM if the state cannot grow. */
enum drisk_status drisk_network_on_scan(struct drisk_network *net, const struct drisk_shipment *sh,
                                        const struct drisk_scan_event *prev,
                                        const struct drisk_scan_event *sc);

/* Feeds the moment ts at which shipment sh became known to be late (1) or on time (0):
 * its delivery before the promise, or the promise passing undelivered. scans (n, time
 * order, may be NULL when n is 0) are the shipment's scans: those up to ts name the
 * facilities whose history the outcome joins; later ones are ignored. */
enum drisk_status drisk_network_on_outcome(struct drisk_network *net, const struct drisk_shipment *sh,
                                           const struct drisk_scan_event *scans, size_t n,
                                           int late, int64_t ts);

/* Feeds the delivery of sh (at sh->delivered_at): its lane's typical transit time and the
 * delay against the promise for each of its categories (scans as for on_outcome). */
enum drisk_status drisk_network_on_delivered(struct drisk_network *net,
                                             const struct drisk_shipment *sh,
                                             const struct drisk_scan_event *scans, size_t n);

/* Time-ordered target statistics (CatBoost's ordered statistics, ordered by time): each
 * category accumulates the outcomes of the shipments in it at the moment each became
 * known, so a view at t holds only outcomes known before t. Sums decay with a half-life
 * of DRISK_CATEGORY_HALF_LIFE_D days, and a second, recent memory with
 * DRISK_CATEGORY_RECENT_HALF_LIFE_D days shows a place that degrades within days; a
 * rate is smoothed toward its parent's with DRISK_CATEGORY_PRIOR pseudo-counts, so a
 * rare or unseen category falls back along lane -> destination -> postal prefix ->
 * overall. No vocabulary and no cap: every category has its own entry, in hash maps that
 * grow with the history (about 130 bytes each). */
enum drisk_category {
    DRISK_CAT_ORIGIN = 0,
    DRISK_CAT_DEST_PREFIX,   /* the destination's first 3 characters, for codes of 4 or more
                              * (postal codes); otherwise absent (the overall figures) */
    DRISK_CAT_DESTINATION,
    DRISK_CAT_LANE,          /* origin -> destination, any carrier */
    DRISK_CAT_CARRIER_SERVICE,
    DRISK_CAT_MERCHANT,
    DRISK_CAT_FACILITY,      /* the current facility (the last located scan) */
    DRISK_CAT_PREV_FACILITY, /* the facility before it */
    DRISK_CAT_COUNT
};
#define DRISK_CATEGORY_HALF_LIFE_D 60.0
#define DRISK_CATEGORY_RECENT_HALF_LIFE_D 7.0 /* the recent memory: a week's change */
#define DRISK_CATEGORY_PRIOR 10.0
#define DRISK_DEST_PREFIX_LEN 3

/* "origin", "dest_prefix", ... ; NULL out of range. */
const char *drisk_category_name(int cat);

struct drisk_category_view {
    double n;         /* decayed count of the category's known outcomes (0: never seen) */
    double late_rate; /* late share, smoothed toward the parent's */
    double delay_d;   /* mean days delivered after the promise (negative: early), smoothed */
    double recent_late_rate, recent_delay_d; /* the same over the recent memory, smoothed
                                              * toward the category's long-memory figures */
    double open_share; /* of its parcels picked up lately (weighted by the recent memory's
                        * decay since pickup), the share not delivered yet, smoothed toward
                        * the parent's: rises at once when the network slows down, before
                        * any outcome is known (facilities: not kept, the parent's) */
};

/* What features read, as of now (the time of the last event fed, or later). */
struct drisk_network_view {
    double facility_dwell_h;        /* facility's normal dwell: mean hours of its completed
                                     * dwells, decayed with a 28-day half-life; NAN if unknown */
    double facility_recent_dwell_h; /* mean dwell of parcels that left it in the last 24 h, NAN if none */
    double facility_exception_rate; /* exceptions / scans at the facility in the last 24 h (0 if none) */
    double facility_scans_24h;      /* scans at the facility in the last 24 h */
    double carrier_late_rate;       /* trailing 28 days, smoothed toward the overall rate */
    double lane_late_rate;          /* carrier + origin + destination, smoothed toward the carrier */
    double lane_transit_h;          /* the lane's typical created->delivered hours (NAN if unknown) */
    double lane_transit_n;          /* the deliveries behind it */
    double service_transit_h;       /* the carrier x service's, over all its lanes (NAN if unknown) */
    double service_transit_n;
    double overall_late_rate;       /* trailing 28 days, all carriers (prior 0.1 when empty) */
    double overall_open_share;      /* the open share of all parcels (prior 0.5 when empty) */
    struct drisk_category_view cat[DRISK_CAT_COUNT];
    unsigned unseen; /* bit c: category c has no known outcome yet, so cat[c] holds its
                      * parent's figures */
};

/* Fills v for shipment sh located at location_id, after prev_location_id (0 when there
 * is none), as of now (>= the last event fed). */
void drisk_network_view(const struct drisk_network *net, const struct drisk_shipment *sh,
                        int64_t location_id, int64_t prev_location_id, int64_t now,
                        struct drisk_network_view *v);

#endif
