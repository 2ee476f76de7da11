/* The shipment vocabulary: scan events, exception reasons and outcomes (CONTRACT §2),
 * and the mapping from the status vocabularies merchants' exports already use
 * (AfterShip tags, EasyPost and Shippo statuses) to ours. docs/VOCABULARY.md is the
 * user-facing table; tests/test_engine.c checks every row of it. */
#ifndef DRISK_VOCAB_H
#define DRISK_VOCAB_H

#include <stddef.h>

/* Stored as these integers: never renumber, only append. */
enum drisk_event {
    DRISK_EVENT_LABEL_CREATED = 1,
    DRISK_EVENT_PICKED_UP,
    DRISK_EVENT_ARRIVED_AT_FACILITY,
    DRISK_EVENT_DEPARTED_FACILITY,
    DRISK_EVENT_IN_TRANSIT,
    DRISK_EVENT_OUT_FOR_DELIVERY,
    DRISK_EVENT_DELIVERY_ATTEMPTED,
    DRISK_EVENT_AVAILABLE_FOR_PICKUP,
    DRISK_EVENT_DELIVERED,
    DRISK_EVENT_EXCEPTION,
    DRISK_EVENT_RETURN_TO_SENDER,
    DRISK_EVENT_LOST
};
#define DRISK_EVENT_COUNT 12

enum drisk_reason {
    DRISK_REASON_NONE = 0,
    DRISK_REASON_WEATHER_DELAY,
    DRISK_REASON_ADDRESS_ISSUE,
    DRISK_REASON_DAMAGED,
    DRISK_REASON_DELAYED,
    DRISK_REASON_CUSTOMS,
    DRISK_REASON_HELD,
    DRISK_REASON_REFUSED,
    DRISK_REASON_MISSORTED,
    DRISK_REASON_RECIPIENT_UNAVAILABLE,
    DRISK_REASON_OTHER
};
#define DRISK_REASON_COUNT 11

enum drisk_outcome {
    DRISK_OUTCOME_NONE = 0, /* in flight: unlabeled */
    DRISK_OUTCOME_DELIVERED,
    DRISK_OUTCOME_LOST,
    DRISK_OUTCOME_RETURNED
};

/* Our snake_case code of an event/reason/outcome; "" for NONE, NULL if out of range. */
const char *drisk_event_name(int event);
const char *drisk_reason_name(int reason);
const char *drisk_outcome_name(int outcome);

/* Maps a status of len bytes to our event code, accepting our codes and the AfterShip,
 * EasyPost and Shippo vocabularies, case-insensitively and ignoring '_', '-' and ' '
 * (so "OutForDelivery", "out_for_delivery" and "OUT_FOR_DELIVERY" agree). AfterShip
 * subtags ("InTransit_002") map as their tag. Returns the event, or 0 if unknown. */
int drisk_event_parse(const char *s, size_t len);

/* Maps a reason (our codes, same normalization) to its code; DRISK_REASON_NONE for an
 * empty string, -1 if unknown. */
int drisk_reason_parse(const char *s, size_t len);

/* Maps an outcome ("", delivered, lost, returned; case-insensitive); -1 if unknown. */
int drisk_outcome_parse(const char *s, size_t len);

#endif
