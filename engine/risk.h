/* Scoring one shipment as of a moment: the feature function, the active late / lost /
 * eta models, and human-readable reasons built from the largest feature contributions
 * ("no scan for 52 h at R05-HUB, 3.1x this facility's normal dwell"). Used by the server
 * for every scan, sweep and /v1/score; reentrant (models and network are only read). */
#ifndef DRISK_RISK_H
#define DRISK_RISK_H

#include <stddef.h>
#include <stdint.h>

#include "engine/features.h"
#include "engine/network.h"
#include "engine/policy.h"
#include "models/model.h"

/* The models scoring uses, indexed by enum drisk_target. A NULL model is skipped (its
 * outputs are NAN). Each model carries the feature schema it was trained with. */
struct drisk_scorer {
    const struct drisk_model *model[DRISK_TARGET_COUNT];
    const struct drisk_feature_schema *schema[DRISK_TARGET_COUNT];
    int64_t id[DRISK_TARGET_COUNT];
    /* optional: each feature's reason family (drisk_risk_families), else found by name */
    const signed char *families[DRISK_TARGET_COUNT];
    /* optional: each target's shadow (challenger), scored beside the model and reported in
     * drisk_risk.shadow but never acted on; features are built once when it reads the
     * same schema */
    const struct drisk_model *shadow[DRISK_TARGET_COUNT];
    const struct drisk_feature_schema *shadow_schema[DRISK_TARGET_COUNT];
    int64_t shadow_id[DRISK_TARGET_COUNT];
};

/* Fills families_out (schema->n_features entries) with each feature's reason family, so
 * scoring need not name features; 0, or -1 when out of memory. */
int drisk_risk_families(const struct drisk_feature_schema *schema, signed char *families_out);

#define DRISK_RISK_MAX_REASONS 4

struct drisk_risk {
    int64_t as_of;
    double p_late, p_lost;       /* NAN without a model */
    double eta_p50_h, eta_p90_h; /* hours from as_of; NAN without a model */
    double shadow[DRISK_TARGET_COUNT]; /* the shadows' probability (eta: P50 h); NAN: none */
    double shadow_eta_p90_h;
    unsigned unseen;             /* bit c: category c (enum drisk_category) had no outcome
                                  * history in the view the features read (0 without a model) */
    int level;                   /* enum drisk_risk_level */
    size_t n_reasons;
    char reasons[DRISK_RISK_MAX_REASONS][192];
};

/* Scores sh as of as_of from its scans (time order; those after as_of are ignored) and
 * the network (which must not be written meanwhile). location_code names the facility of
 * the last located scan ("" if none) for the reasons. A shipment whose outcome is known
 * gets it as its risk (delivered: p_lost 0, p_late by the promise, level low; lost:
 * p_lost 1, level high, since its claim is still to be made). */
enum drisk_status drisk_risk_score(const struct drisk_scorer *sc, const struct drisk_network *net,
                                   const struct drisk_settings *settings,
                                   const struct drisk_shipment *sh,
                                   const struct drisk_scan_event *scans, size_t n, int64_t as_of,
                                   const char *location_code, struct drisk_risk *out,
                                   struct drisk_error *err);

#endif
