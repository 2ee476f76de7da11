/* The history replay: the store's shipments and scans merged into one time-ordered pass
 * through a heap, feeding the network statistics (engine/network.h) event by event, and,
 * for training, building each snapshot (CONTRACT §4) exactly when its moment comes, so
 * nothing after as_of can reach its features. Memory holds only the shipments still in
 * flight at the replay's current moment. The server starts from drisk_network_replay's
 * state; training/snapshot.h builds datasets on drisk_snapshots_run. */
#ifndef DRISK_REPLAY_H
#define DRISK_REPLAY_H

#include <stdint.h>

#include "data/store.h"
#include "engine/features.h"
#include "engine/network.h"
#include "base/error.h"

struct drisk_snapshot {
    const struct drisk_shipment *sh;
    int64_t as_of;
    int late;     /* 1 late, 0 on time; -1 unlabeled or not a late snapshot (as_of >= promise) */
    int lost;     /* 1 lost, 0 not; -1 unlabeled or past promised_at + 21 days */
    double eta_h; /* hours from as_of to delivered_at; NAN when not delivered */
    const double *x; /* schema->n_features values */
};

/* Called for each snapshot in as_of order; everything it points to is borrowed for the
 * call. A non-zero return stops the replay (DRISK_EINVAL, the callback's err kept). */
typedef int (*drisk_snapshot_fn)(const struct drisk_snapshot *snap, void *ctx,
                                 struct drisk_error *err);

struct drisk_snapshot_options {
    int64_t emit_from, emit_to; /* snapshots of shipments created in [emit_from, emit_to) */
    int64_t history_from;       /* shipments created from here on feed the network */
    int64_t now;                /* no event or snapshot after this moment (DRISK_TS_NONE:
                                 * the last created_at in the store) */
    int labeled_only;           /* skip shipments whose outcome is unknown */
};

/* Replays the store's history per opts and calls fn for each snapshot. */
enum drisk_status drisk_snapshots_run(struct drisk_store *store,
                                      const struct drisk_feature_schema *schema,
                                      const struct drisk_snapshot_options *opts,
                                      drisk_snapshot_fn fn, void *ctx, struct drisk_error *err);

/* Feeds net (empty, caller-owned) every event of the store's history up to now: scans,
 * deliveries, and the moments shipments became known late or on time, in time order, as
 * drisk_snapshots_run does before each snapshot. The server starts from this state and
 * feeds live events after it. */
enum drisk_status drisk_network_replay(struct drisk_store *store, int64_t now,
                                       struct drisk_network *net, struct drisk_error *err);

#define DRISK_LOST_WINDOW_S (21 * 86400) /* lost snapshots: up to promised_at + 21 days */

/* ---- checkpoints: a start that does not grow with the history ----
 * A checkpoint is the replayed state as of a moment C (engine/network.h's bytes, in the
 * store). Starting from it replays only what can follow C: the events after C of the
 * shipments still alive at C. The result is the state a whole replay would give, bit for
 * bit, as long as every scan up to C was in the store when the checkpoint was written:
 * hence C trails the writing by DRISK_CHECKPOINT_GRACE_S, and a scan that arrives later
 * than that after its own time reaches the statistics only at the next checkpoint built
 * from scratch (drisk checkpoint --rebuild). */
#define DRISK_CHECKPOINT_GRACE_S (2 * 86400)

/* The network state as of now for a starting server: the newest usable checkpoint and
 * the history after it, else (none, or one another build wrote: logged) the whole
 * history. *out: release with drisk_network_free; *checkpoint_as_of: the checkpoint's
 * moment, DRISK_TS_NONE when none was used. */
enum drisk_status drisk_network_start(struct drisk_store *store, int64_t now,
                                      struct drisk_network **out, int64_t *checkpoint_as_of,
                                      struct drisk_error *err);

struct drisk_checkpoint_result {
    int64_t as_of; /* the state's moment: now - DRISK_CHECKPOINT_GRACE_S */
    int64_t from;  /* the checkpoint it was built from, DRISK_TS_NONE: the whole history */
    size_t bytes;
};

/* Writes a checkpoint of the state as of now - DRISK_CHECKPOINT_GRACE_S into the store,
 * built from the newest checkpoint and what followed it (with rebuild, or when there is
 * none, from the whole history); the store keeps the newest two. */
enum drisk_status drisk_network_checkpoint(struct drisk_store *store, int64_t now, int rebuild,
                                           struct drisk_checkpoint_result *res,
                                           struct drisk_error *err);

#endif
