/* Event, reason and outcome codes and the foreign-vocabulary mapping. Names are matched
 * after normalization (lowercase, separators dropped) against one table, so a new alias
 * is one line here and one row in docs/VOCABULARY.md. */
#include "engine/vocab.h"

#include <string.h>

static const char *const event_names[DRISK_EVENT_COUNT + 1] = {
    "", "label_created", "picked_up", "arrived_at_facility", "departed_facility",
    "in_transit", "out_for_delivery", "delivery_attempted", "available_for_pickup",
    "delivered", "exception", "return_to_sender", "lost",
};

static const char *const reason_names[DRISK_REASON_COUNT] = {
    "", "weather_delay", "address_issue", "damaged", "delayed", "customs", "held",
    "refused", "missorted", "recipient_unavailable", "other",
};

static const char *const outcome_names[4] = { "", "delivered", "lost", "returned" };

const char *drisk_event_name(int event)
{
    return event >= 0 && event <= DRISK_EVENT_COUNT ? event_names[event] : NULL;
}

const char *drisk_reason_name(int reason)
{
    return reason >= 0 && reason < DRISK_REASON_COUNT ? reason_names[reason] : NULL;
}

const char *drisk_outcome_name(int outcome)
{
    return outcome >= 0 && outcome <= 3 ? outcome_names[outcome] : NULL;
}

/* Aliases in normalized form (lowercase, no '_', '-' or ' '). Our own codes normalize
 * to themselves minus underscores and are listed first. */
static const struct alias {
    const char *norm;
    enum drisk_event event;
} event_aliases[] = {
    /* drisk */
    { "labelcreated", DRISK_EVENT_LABEL_CREATED },
    { "pickedup", DRISK_EVENT_PICKED_UP },
    { "arrivedatfacility", DRISK_EVENT_ARRIVED_AT_FACILITY },
    { "departedfacility", DRISK_EVENT_DEPARTED_FACILITY },
    { "intransit", DRISK_EVENT_IN_TRANSIT },
    { "outfordelivery", DRISK_EVENT_OUT_FOR_DELIVERY },
    { "deliveryattempted", DRISK_EVENT_DELIVERY_ATTEMPTED },
    { "availableforpickup", DRISK_EVENT_AVAILABLE_FOR_PICKUP },
    { "delivered", DRISK_EVENT_DELIVERED },
    { "exception", DRISK_EVENT_EXCEPTION },
    { "returntosender", DRISK_EVENT_RETURN_TO_SENDER },
    { "lost", DRISK_EVENT_LOST },
    /* AfterShip tags (InTransit, OutForDelivery, Delivered, AvailableForPickup and
     * Exception normalize to our codes above). */
    { "inforeceived", DRISK_EVENT_LABEL_CREATED },
    { "pending", DRISK_EVENT_LABEL_CREATED },
    { "attemptfail", DRISK_EVENT_DELIVERY_ATTEMPTED },
    { "expired", DRISK_EVENT_LOST },
    /* EasyPost statuses (in_transit, out_for_delivery, delivered, available_for_pickup,
     * return_to_sender as ours). */
    { "pretransit", DRISK_EVENT_LABEL_CREATED },
    { "failure", DRISK_EVENT_EXCEPTION },
    { "cancelled", DRISK_EVENT_EXCEPTION },
    /* Shippo statuses (DELIVERED and FAILURE as above). */
    { "transit", DRISK_EVENT_IN_TRANSIT },
    { "returned", DRISK_EVENT_RETURN_TO_SENDER },
    /* Finer codes the aggregator webhooks carry beside the status (api/inbound.c reads
     * them first): EasyPost status_detail, Shippo substatus.code, AfterShip subtags whose
     * meaning differs from their tag. Those that name a reason, not an event (weather_delay,
     * delayed, ...), are left to drisk_reason_parse. */
    { "receivedatoriginfacility", DRISK_EVENT_PICKED_UP },
    { "departedoriginfacility", DRISK_EVENT_DEPARTED_FACILITY },
    { "arrivedatdestinationfacility", DRISK_EVENT_ARRIVED_AT_FACILITY },
    { "receivedatdestinationfacility", DRISK_EVENT_ARRIVED_AT_FACILITY },
    { "informationreceived", DRISK_EVENT_LABEL_CREATED },
    { "packageaccepted", DRISK_EVENT_PICKED_UP },
    { "packagearrived", DRISK_EVENT_ARRIVED_AT_FACILITY },
    { "packagedeparted", DRISK_EVENT_DEPARTED_FACILITY },
    { "packageprocessing", DRISK_EVENT_IN_TRANSIT },
    { "packageprocessed", DRISK_EVENT_IN_TRANSIT },
    { "pickupavailable", DRISK_EVENT_AVAILABLE_FOR_PICKUP },
    { "noticeleft", DRISK_EVENT_DELIVERY_ATTEMPTED },
    { "packagelost", DRISK_EVENT_LOST },
    { "packageundeliverable", DRISK_EVENT_EXCEPTION },
    { "packagedisposed", DRISK_EVENT_EXCEPTION },
    { "packagedamaged", DRISK_EVENT_EXCEPTION },
    { "exception010", DRISK_EVENT_RETURN_TO_SENDER }, /* AfterShip: returning to sender */
    { "exception011", DRISK_EVENT_RETURN_TO_SENDER }, /* returned to sender */
    { "exception013", DRISK_EVENT_LOST },             /* shipment lost */
};

/* Lowercases s without separators into out (cap bytes); returns the length, or -1 if
 * it does not fit or holds a byte that no vocabulary uses. */
static int normalize(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '_' || c == '-' || c == ' ')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return -1;
        if (n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

int drisk_event_parse(const char *s, size_t len)
{
    char norm[48];
    if (normalize(s, len, norm, sizeof norm) <= 0)
        return 0;
    for (size_t i = 0; i < sizeof event_aliases / sizeof event_aliases[0]; i++)
        if (strcmp(norm, event_aliases[i].norm) == 0)
            return (int)event_aliases[i].event;
    /* AfterShip subtag "Tag_NNN": retry with the tag alone. */
    const char *us = memchr(s, '_', len);
    if (us && us > s) {
        size_t tail = len - (size_t)(us - s) - 1;
        int all_digits = tail > 0;
        for (size_t i = 0; i < tail; i++)
            if (us[1 + i] < '0' || us[1 + i] > '9')
                all_digits = 0;
        if (all_digits)
            return drisk_event_parse(s, (size_t)(us - s));
    }
    return 0;
}

static int parse_from(const char *const *names, int count, const char *s, size_t len)
{
    char norm[48], cand[48];
    if (normalize(s, len, norm, sizeof norm) < 0)
        return -1;
    for (int i = 0; i < count; i++) {
        normalize(names[i], strlen(names[i]), cand, sizeof cand);
        if (strcmp(norm, cand) == 0)
            return i;
    }
    return -1;
}

int drisk_reason_parse(const char *s, size_t len)
{
    return parse_from(reason_names, DRISK_REASON_COUNT, s, len);
}

int drisk_outcome_parse(const char *s, size_t len)
{
    return parse_from(outcome_names, 4, s, len);
}
