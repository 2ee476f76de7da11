/* Risk level, alert decisions and expected-cost recommendations (engine/policy.h;
 * the formulas are in docs/POLICY.md). */
#include "engine/policy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/timeutil.h"
#include "engine/vocab.h"

#define DAY 86400.0

static const struct drisk_claim_window builtin_windows[] = {
    /* USPS insured mail: loss claims 15 to 60 days after the mailing date */
    { "usps", DRISK_ANCHOR_CREATED, 15, 60 },
    /* UPS: within 9 months of the scheduled delivery */
    { "ups", DRISK_ANCHOR_PROMISED, 0, 270 },
    /* FedEx: within 9 months of tender */
    { "fedex", DRISK_ANCHOR_CREATED, 0, 270 },
    /* DHL Express: within 30 days of acceptance */
    { "dhl", DRISK_ANCHOR_CREATED, 0, 30 },
};

void drisk_settings_default(struct drisk_settings *s)
{
    memset(s, 0, sizeof *s);
    s->late_alert = 0.5;
    s->late_critical = 0.8;
    s->lost_alert = 0.5;
    s->lost_critical = 0.8;
    s->stall_hours = 72;
    s->late_medium = 0.3;
    s->lost_medium = 0.15;
    s->default_value = 50;
    s->goods_cost_ratio = 0.6;
    s->reship_cost = 8;
    s->notify_cost = 0.05;
    s->lost_customer_cost = 40;
    s->churn_if_lost = 0.5;
    s->churn_if_late = 0.1;
    s->notify_effect = 0.5;
    s->refund_ratio = 1.0;
    s->claim_cost = 5;
    s->claim_success = 0.9;
    s->claim_prior_n = 10;
    s->n_windows = sizeof builtin_windows / sizeof builtin_windows[0];
    memcpy(s->windows, builtin_windows, sizeof builtin_windows);
    s->default_window = (struct drisk_claim_window){ "", DRISK_ANCHOR_PROMISED, 2, 60 };
}

const struct drisk_claim_window *drisk_settings_window(const struct drisk_settings *s,
                                                       const char *carrier)
{
    for (size_t i = 0; i < s->n_windows; i++)
        if (strcasecmp(s->windows[i].carrier, carrier) == 0)
            return &s->windows[i];
    return &s->default_window;
}

const char *drisk_risk_level_name(int level)
{
    static const char *const names[] = { "low", "medium", "high" };
    return level >= 0 && level <= 2 ? names[level] : "low";
}

static double p0(double p)
{
    return isnan(p) ? 0 : p;
}

int drisk_risk_level(const struct drisk_settings *s, double p_late, double p_lost)
{
    p_late = p0(p_late);
    p_lost = p0(p_lost);
    if (p_late >= s->late_critical || p_lost >= s->lost_alert)
        return DRISK_RISK_HIGH;
    if (p_late >= s->late_medium || p_lost >= s->lost_medium)
        return DRISK_RISK_MEDIUM;
    return DRISK_RISK_LOW;
}

const char *drisk_alert_type_name(int type)
{
    static const char *const names[] = { "delay_risk", "likely_lost", "carrier_exception",
                                         "stalled" };
    return type >= 0 && type < DRISK_ALERT_COUNT ? names[type] : "";
}

const char *drisk_severity_name(int severity)
{
    static const char *const names[] = { "none", "warning", "critical" };
    return severity >= 0 && severity <= 2 ? names[severity] : "none";
}

int drisk_severity_parse(const char *s)
{
    for (int k = 1; k <= 2; k++)
        if (strcmp(s, drisk_severity_name(k)) == 0)
            return k;
    return DRISK_SEVERITY_NONE;
}

void drisk_alerts_decide(const struct drisk_settings *s, const struct drisk_shipment *sh,
                         const struct drisk_scan_event *scans, size_t n, double p_late,
                         double p_lost, int64_t now, struct drisk_alert_want want[DRISK_ALERT_COUNT])
{
    char ts[DRISK_TS_BUF];
    memset(want, 0, DRISK_ALERT_COUNT * sizeof *want);

    struct drisk_alert_want *w = &want[DRISK_ALERT_DELAY_RISK];
    if (now > sh->promised_at) {
        w->severity = DRISK_SEVERITY_CRITICAL;
        snprintf(w->message, sizeof w->message, "not delivered by the promise (%s), %.0f h ago",
                 drisk_ts_format(sh->promised_at, ts), (double)(now - sh->promised_at) / 3600.0);
    } else if (!isnan(p_late) && p_late >= s->late_alert) {
        w->severity = p_late >= s->late_critical ? DRISK_SEVERITY_CRITICAL : DRISK_SEVERITY_WARNING;
        snprintf(w->message, sizeof w->message, "%.0f%% likely to miss the promise (%s)",
                 100 * p_late, drisk_ts_format(sh->promised_at, ts));
    }

    w = &want[DRISK_ALERT_LIKELY_LOST];
    if (!isnan(p_lost) && p_lost >= s->lost_alert) {
        w->severity = p_lost >= s->lost_critical ? DRISK_SEVERITY_CRITICAL : DRISK_SEVERITY_WARNING;
        snprintf(w->message, sizeof w->message, "%.0f%% likely lost", 100 * p_lost);
    }

    int exceptions = 0, last_exc = -1;
    for (size_t k = 0; k < n; k++)
        if (scans[k].event == DRISK_EVENT_EXCEPTION || scans[k].event == DRISK_EVENT_RETURN_TO_SENDER) {
            exceptions++;
            last_exc = (int)k;
        }
    w = &want[DRISK_ALERT_CARRIER_EXCEPTION];
    if (exceptions) {
        const struct drisk_scan_event *e = &scans[last_exc];
        w->severity = exceptions >= 2 || e->event == DRISK_EVENT_RETURN_TO_SENDER
                          ? DRISK_SEVERITY_CRITICAL : DRISK_SEVERITY_WARNING;
        const char *why = e->reason ? drisk_reason_name(e->reason) : "";
        snprintf(w->message, sizeof w->message, "%s%s%s at %s (%d exception%s)",
                 drisk_event_name(e->event), why[0] ? ": " : "", why, drisk_ts_format(e->ts, ts),
                 exceptions, exceptions == 1 ? "" : "s");
    }

    int64_t last = n ? scans[n - 1].ts : sh->created_at;
    double idle_h = (double)(now - last) / 3600.0;
    w = &want[DRISK_ALERT_STALLED];
    if (s->stall_hours > 0 && idle_h >= s->stall_hours) {
        w->severity = idle_h >= 2 * s->stall_hours ? DRISK_SEVERITY_CRITICAL : DRISK_SEVERITY_WARNING;
        snprintf(w->message, sizeof w->message, "no scan for %.0f h (since %s)", idle_h,
                 drisk_ts_format(last, ts));
    }
}

int drisk_alert_transition(int type, int open_severity, int wanted_severity, int outcome_known)
{
    if (outcome_known)
        return 2;
    if (wanted_severity > open_severity)
        return 1;
    if (type == DRISK_ALERT_STALLED && wanted_severity == DRISK_SEVERITY_NONE)
        return 2;
    return 0;
}

const char *drisk_action_name(int action)
{
    static const char *const names[] = { "wait", "notify_customer", "reship_now", "refund",
                                         "file_carrier_claim" };
    return action >= 0 && action < DRISK_ACTION_COUNT ? names[action] : "";
}

void drisk_recommend(const struct drisk_settings *s, const struct drisk_shipment *sh,
                     double p_late, double p_lost, int64_t now, struct drisk_recommendation *r)
{
    memset(r, 0, sizeof *r);
    double pl = p0(p_lost), pd = p0(p_late) - pl; /* lost; late but arriving */
    if (pl < 0)
        pl = 0;
    if (pl > 1)
        pl = 1;
    if (pd < 0)
        pd = 0;
    if (pd > 1 - pl)
        pd = 1 - pl;
    double v = !isnan(sh->declared_value) && sh->declared_value > 0 ? sh->declared_value
                                                                    : s->default_value;
    double replace = s->goods_cost_ratio * v + s->reship_cost; /* goods and postage again */
    double c = s->lost_customer_cost, told = s->notify_effect;
    r->value = v;

    /* wait: a loss is found out late (replace then, customer likely gone); a late parcel
     * arrives unannounced */
    r->cost[DRISK_ACTION_WAIT] = pl * (replace + s->churn_if_lost * c) + pd * s->churn_if_late * c;
    /* notify: the same events, the customer told early */
    r->cost[DRISK_ACTION_NOTIFY] = s->notify_cost + pl * (replace + s->churn_if_lost * told * c) +
                                   pd * s->churn_if_late * told * c;
    /* reship now: always pay for the replacement; the customer is told and served */
    double handled = (pl + pd) * s->churn_if_late * told * c;
    r->cost[DRISK_ACTION_RESHIP] = s->notify_cost + replace + handled;
    /* refund: the money back instead of goods */
    r->cost[DRISK_ACTION_REFUND] = s->notify_cost + s->refund_ratio * v + handled;
    /* claim: reship, and file a loss claim that pays when the parcel is in fact lost */
    double paid, settled;
    double success = drisk_claim_success(s, sh->carrier, &paid, &settled);
    r->cost[DRISK_ACTION_CLAIM] = r->cost[DRISK_ACTION_RESHIP] + s->claim_cost -
                                  pl * success * v;

    const struct drisk_claim_window *w = drisk_settings_window(s, sh->carrier);
    int64_t anchor = w->anchor == DRISK_ANCHOR_CREATED ? sh->created_at : sh->promised_at;
    r->claim_opens = anchor + (int64_t)(w->open_days * DAY);
    r->claim_closes = anchor + (int64_t)(w->close_days * DAY);
    for (int a = 0; a < DRISK_ACTION_COUNT; a++)
        r->available[a] = 1;
    r->available[DRISK_ACTION_CLAIM] = now >= r->claim_opens && now <= r->claim_closes;

    int best = DRISK_ACTION_WAIT, second = -1;
    for (int a = 1; a < DRISK_ACTION_COUNT; a++)
        if (r->available[a] && r->cost[a] < r->cost[best])
            best = a;
    for (int a = 0; a < DRISK_ACTION_COUNT; a++)
        if (a != best && r->available[a] && (second < 0 || r->cost[a] < r->cost[second]))
            second = a;
    r->action = best;

    char t1[DRISK_TS_BUF], t2[DRISK_TS_BUF];
    const char *carrier = sh->carrier;
    switch (best) {
    case DRISK_ACTION_CLAIM:
        r->deadline = r->claim_closes;
        break;
    case DRISK_ACTION_NOTIFY:
        r->deadline = sh->promised_at > now ? sh->promised_at : now + 86400;
        break;
    case DRISK_ACTION_RESHIP:
    case DRISK_ACTION_REFUND:
        r->deadline = now + 86400;
        break;
    default: /* wait: look again when the claim window opens or the promise passes */
        r->deadline = sh->promised_at > now ? sh->promised_at
                      : r->claim_opens > now ? r->claim_opens : now + 86400;
        break;
    }
    int n = snprintf(r->why, sizeof r->why,
                     "p_lost %.2f, p_late %.2f, value %.2f: %s costs %.2f expected", pl,
                     p0(p_late), v, drisk_action_name(best), r->cost[best]);
    if (second >= 0 && n > 0 && (size_t)n < sizeof r->why)
        n += snprintf(r->why + n, sizeof r->why - (size_t)n, " against %.2f for %s",
                      r->cost[second], drisk_action_name(second));
    if (n > 0 && (size_t)n < sizeof r->why) {
        if (best == DRISK_ACTION_CLAIM)
            snprintf(r->why + n, sizeof r->why - (size_t)n,
                     "; a claim recovers %.2f x %.2f x %.2f (%s paid %.0f of your %.0f settled "
                     "claims); %s accepts loss claims until %s",
                     pl, success, v, carrier, paid, settled, carrier,
                     drisk_ts_format(r->claim_closes, t1));
        else if (now < r->claim_opens)
            snprintf(r->why + n, sizeof r->why - (size_t)n,
                     "; %s accepts loss claims from %s to %s", carrier,
                     drisk_ts_format(r->claim_opens, t1), drisk_ts_format(r->claim_closes, t2));
        else if (now > r->claim_closes)
            snprintf(r->why + n, sizeof r->why - (size_t)n,
                     "; %s's loss-claim window closed on %s", carrier,
                     drisk_ts_format(r->claim_closes, t1));
    }
}

double drisk_claim_success(const struct drisk_settings *s, const char *carrier, double *paid,
                           double *settled)
{
    double p = 0, d = 0;
    for (size_t i = 0; i < s->n_claims; i++)
        if (strcasecmp(s->claims[i].carrier, carrier) == 0) {
            p = s->claims[i].paid;
            d = s->claims[i].denied;
            break;
        }
    if (paid)
        *paid = p;
    if (settled)
        *settled = p + d;
    double n = s->claim_prior_n > 0 ? s->claim_prior_n : 0;
    return n + p + d > 0 ? (n * s->claim_success + p) / (n + p + d) : s->claim_success;
}
