/* What drisk does with a risk: the risk level, which alerts a shipment should have open,
 * and the claim recommendation chosen by expected cost under the merchant's settings and
 * the carriers' claim windows. Pure functions of their arguments (no I/O), shared by the
 * server and tests; docs/POLICY.md explains every formula and default. */
#ifndef DRISK_POLICY_H
#define DRISK_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/shipment.h"

/* A carrier's loss-claim window: claims may be filed from open_days to close_days after
 * the anchor (the label's creation = mailing / tender / acceptance, or the promised =
 * scheduled delivery date). */
enum drisk_claim_anchor { DRISK_ANCHOR_CREATED = 0, DRISK_ANCHOR_PROMISED };

struct drisk_claim_window {
    char carrier[DRISK_NAME_MAX]; /* lowercase */
    enum drisk_claim_anchor anchor;
    double open_days, close_days;
};

#define DRISK_MAX_CLAIM_WINDOWS 16

/* Loss claims the merchant reported settled with a carrier (POST
 * /v1/recommendations/{id}/outcome: claim_paid or claim_denied). */
struct drisk_claim_record {
    char carrier[DRISK_NAME_MAX]; /* lowercase */
    double paid, denied;
};
#define DRISK_MAX_CLAIM_RECORDS 32

/* A merchant's thresholds and costs. Money is in the unit of declared_value. */
struct drisk_settings {
    /* alerts: delay_risk when p_late >= late_alert (critical from late_critical),
     * likely_lost when p_lost >= lost_alert (critical from lost_critical), stalled after
     * stall_hours without a scan (critical after twice that) */
    double late_alert, late_critical, lost_alert, lost_critical, stall_hours;
    /* risk_level: high when p_late >= late_critical or p_lost >= lost_alert, medium when
     * p_late >= late_medium or p_lost >= lost_medium */
    double late_medium, lost_medium;
    /* costs */
    double default_value;       /* declared value assumed when a shipment has none */
    double goods_cost_ratio;    /* cost of the goods / declared value */
    double reship_cost;         /* shipping a replacement */
    double notify_cost;         /* one proactive message */
    double lost_customer_cost;  /* what losing a customer costs */
    double churn_if_lost;       /* chance a customer leaves when a parcel is lost unhandled */
    double churn_if_late;       /* ... when it is late without a word */
    double notify_effect;       /* multiplier on those chances when told early (0..1) */
    double refund_ratio;        /* refund / declared value */
    double claim_cost;          /* effort of filing a claim */
    double claim_success;       /* chance a filed loss claim for a lost parcel pays: the prior
                                 * of every carrier's rate */
    double claim_prior_n;       /* the prior's weight, in claims (drisk_claim_success) */
    size_t n_windows;
    struct drisk_claim_window windows[DRISK_MAX_CLAIM_WINDOWS];
    struct drisk_claim_window default_window; /* carriers not listed */
    /* not settings but the merchant's record, filled from the store by the server */
    size_t n_claims;
    struct drisk_claim_record claims[DRISK_MAX_CLAIM_RECORDS];
};

/* The defaults, with the built-in claim windows (usps, ups, fedex, dhl). */
void drisk_settings_default(struct drisk_settings *s);
/* The window of carrier (case-insensitive), or the default window. */
const struct drisk_claim_window *drisk_settings_window(const struct drisk_settings *s,
                                                       const char *carrier);

/* The chance a loss claim with carrier pays: claim_success as a Beta prior worth
 * claim_prior_n claims, updated by the merchant's settled claims with that carrier,
 *   (claim_prior_n x claim_success + paid) / (claim_prior_n + paid + denied).
 * *paid and *settled (may be NULL) receive the record behind it. */
double drisk_claim_success(const struct drisk_settings *s, const char *carrier, double *paid,
                           double *settled);

enum drisk_risk_level { DRISK_RISK_LOW = 0, DRISK_RISK_MEDIUM, DRISK_RISK_HIGH };
/* "low", "medium", "high" */
const char *drisk_risk_level_name(int level);
/* NAN probabilities count as 0. */
int drisk_risk_level(const struct drisk_settings *s, double p_late, double p_lost);

enum drisk_alert_type {
    DRISK_ALERT_DELAY_RISK = 0,
    DRISK_ALERT_LIKELY_LOST,
    DRISK_ALERT_CARRIER_EXCEPTION,
    DRISK_ALERT_STALLED,
    DRISK_ALERT_COUNT
};
enum drisk_severity { DRISK_SEVERITY_NONE = 0, DRISK_SEVERITY_WARNING, DRISK_SEVERITY_CRITICAL };

const char *drisk_alert_type_name(int type);
const char *drisk_severity_name(int severity);
/* The severity named s, or DRISK_SEVERITY_NONE. */
int drisk_severity_parse(const char *s);

struct drisk_alert_want {
    int severity; /* enum drisk_severity; NONE: the condition does not hold */
    char message[256];
};

/* The alerts an in-flight shipment calls for at now, from its scans (time order, ts <=
 * now) and probabilities (NAN: no model). */
void drisk_alerts_decide(const struct drisk_settings *s, const struct drisk_shipment *sh,
                         const struct drisk_scan_event *scans, size_t n, double p_late,
                         double p_lost, int64_t now, struct drisk_alert_want want[DRISK_ALERT_COUNT]);

/* How an open alert changes given what is wanted now: 0 keep, 1 escalate (wanted severity
 * above the open one), 2 clear. Alerts do not repeat and do not step down: a condition
 * that eases leaves the alert open, except a stall, which ends with the next scan.
 * Every alert clears when the shipment is delivered or returned: pass outcome_known.
 * (A parcel the carrier declares lost keeps its alerts until its claim is settled.) */
int drisk_alert_transition(int type, int open_severity, int wanted_severity, int outcome_known);

enum drisk_action {
    DRISK_ACTION_WAIT = 0,
    DRISK_ACTION_NOTIFY,
    DRISK_ACTION_RESHIP,
    DRISK_ACTION_REFUND,
    DRISK_ACTION_CLAIM,
    DRISK_ACTION_COUNT
};
/* "wait", "notify_customer", "reship_now", "refund", "file_carrier_claim" */
const char *drisk_action_name(int action);

struct drisk_recommendation {
    int action;
    int64_t deadline;                    /* act by then */
    double cost[DRISK_ACTION_COUNT];     /* expected cost of each option */
    int available[DRISK_ACTION_COUNT];   /* 0: not possible now (a claim outside its window) */
    int64_t claim_opens, claim_closes;   /* the carrier's window for this shipment */
    double value;                        /* declared value used */
    char why[512];
};

/* Chooses the cheapest available action for shipment sh at now. */
void drisk_recommend(const struct drisk_settings *s, const struct drisk_shipment *sh,
                     double p_late, double p_lost, int64_t now, struct drisk_recommendation *r);

#endif
