/* The feature vector of a snapshot (CONTRACT §4): a shipment, its scans up to as_of, and
 * the network statistics as of as_of. This one function serves training, evaluation,
 * batch scoring and the server, so they cannot disagree.
 *
 * The schema (version, categorical vocabularies learned from training data, feature names
 * and order) is hashed; the hash is stored with every model, and a model built for
 * another schema is refused when loaded. */
#ifndef DRISK_FEATURES_H
#define DRISK_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/network.h"
#include "engine/shipment.h"
#include "base/error.h"

#define DRISK_FEATURE_VERSION 4
#define DRISK_VOCAB_MAX 48      /* carriers and services with their own column; the rest
                                 * share "other" (places have no vocabulary: their outcome
                                 * histories, engine/network.h, cover every one) */
#define DRISK_FEATURE_NAME_MAX 96

struct drisk_vocab {
    int n;
    char name[DRISK_VOCAB_MAX][DRISK_NAME_MAX];
};

struct drisk_feature_schema {
    int version;
    struct drisk_vocab carriers, services;
    size_t n_features;
    char hash[17]; /* 16 hex digits of a 64-bit FNV-1a over the version and feature names */
};

/* Counting categories over training shipments to choose the vocabularies. */
struct drisk_schema_builder;

/* NULL when out of memory. */
struct drisk_schema_builder *drisk_schema_builder_create(void);
void drisk_schema_builder_add(struct drisk_schema_builder *b, const struct drisk_shipment *sh);
/* Keeps the categories seen at least min_count times (at most DRISK_VOCAB_MAX of the most
 * frequent, ties by name), fills *schema and computes its size and hash. */
void drisk_schema_builder_finish(const struct drisk_schema_builder *b, int64_t min_count,
                                 struct drisk_feature_schema *schema);
void drisk_schema_builder_free(struct drisk_schema_builder *b);

/* Serializes the schema as one line of text (stored with models); returns the length
 * written, or -1 if cap is too small. */
int drisk_feature_schema_write(const struct drisk_feature_schema *s, char *buf, size_t cap);
/* Parses what drisk_feature_schema_write wrote; DRISK_EINVAL with a message if it is not
 * a schema of this version. */
enum drisk_status drisk_feature_schema_read(const char *text, struct drisk_feature_schema *s,
                                            struct drisk_error *err);

/* All feature names in order into names (schema->n_features rows, caller-owned);
 * 0, or -1 when out of memory. */
int drisk_feature_names(const struct drisk_feature_schema *s,
                        char (*names)[DRISK_FEATURE_NAME_MAX]);

/* The position of the feature called name, or -1. */
int drisk_feature_index(const struct drisk_feature_schema *s, const char *name);

/* The name of feature i ("carrier=apex", "h_since_last_scan_log", ...) into buf; builds
 * every name, so use drisk_feature_names for more than one. */
void drisk_feature_name(const struct drisk_feature_schema *s, size_t i,
                        char buf[DRISK_FEATURE_NAME_MAX]);

/* What the feature function read of a snapshot before turning it into numbers: the
 * shipment's progress and the network view at its current facility. Scoring words its
 * reasons from it (engine/risk.c) instead of walking the scans a second time. */
struct drisk_progress {
    int64_t last_ts;    /* the last scan's time, or created_at */
    int last_event;     /* 0 without scans */
    int64_t arrived_at; /* arrival at the current facility while still there, else
                         * DRISK_TS_NONE */
    int exceptions, attempts, facilities, out_for_delivery;
    int last_reason;    /* of the last exception, 0 if none */
    struct drisk_network_view view;
};

/* Builds the features of shipment sh as of as_of into out (schema->n_features doubles,
 * all finite). scans are the shipment's scans with ts <= as_of, in time order (the
 * caller cuts the list: nothing after as_of is ever read); net must hold exactly the
 * events up to as_of. progress, when not NULL, receives what was read. Reentrant; reads
 * only its arguments. */
void drisk_features_build(const struct drisk_feature_schema *schema,
                          const struct drisk_network *net, const struct drisk_shipment *sh,
                          const struct drisk_scan_event *scans, size_t n_scans, int64_t as_of,
                          double *out, struct drisk_progress *progress);

#endif
