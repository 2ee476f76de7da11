/* libFuzzer harness: an HTTP request body as the server takes it, through the same
 * calls: api_body_parse, then each object of "scans" (api_scan_from), "shipments" and
 * "shipment" (api_shipment_from, both as stored and as /v1/score's inline parcel), and
 * the settings parser; and the body as each aggregator's tracking webhook (inbound_read,
 * its scans and shipment through the same validation), and its signature checks with a
 * header made of the input's first bytes. */
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include <string.h>

#include "api/inbound.h"
#include "api/json.h"
#include "api/service.h"
#include "engine/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        api_json_init();
        ready = 1;
    }
    cJSON *body = NULL;
    struct api_error e;
    api_json_arena_begin();
    if (api_body_parse((const char *)data, size, &body, &e) == 0) {
        const cJSON *scans = cJSON_GetObjectItem(body, "scans");
        int i = 0;
        for (const cJSON *o = scans ? scans->child : NULL; o; o = o->next, i++) {
            struct svc_scan_in in;
            struct api_where at = { "scans", i };
            api_scan_from(o, "m1", i % 2 ? "S-1" : NULL, at, &in, &e);
        }
        const cJSON *ships = cJSON_GetObjectItem(body, "shipments");
        i = 0;
        for (const cJSON *o = ships ? ships->child : NULL; o; o = o->next, i++) {
            struct drisk_shipment sh;
            struct api_where at = { "shipments", i };
            api_shipment_from(o, "m1", 0, 1735689600, at, &sh, &e);
        }
        struct drisk_shipment sh;
        struct api_where at = { "shipment", -1 };
        api_shipment_from(body, "m1", 1, 1735689600, at, &sh, &e);
        struct drisk_settings s;
        drisk_settings_default(&s);
        api_settings_apply(body, &s, &e);
        for (int p = 0; p < INBOUND_COUNT; p++) {
            struct inbound_update u;
            if (inbound_read(p, body, &u, &e))
                continue;
            i = 0;
            for (const cJSON *o = u.scans->child; o; o = o->next, i++) {
                struct svc_scan_in in;
                struct api_where w = { "scans", i };
                api_scan_from(o, "m1", "T-1", w, &in, &e);
            }
            api_shipment_from(u.shipment, "m1", 1, 1735689600, at, &sh, &e);
            inbound_update_free(&u);
        }
        cJSON_Delete(body);
    }
    char header[128];
    size_t hn = size < sizeof header - 1 ? size : sizeof header - 1;
    memcpy(header, data, hn);
    header[hn] = '\0';
    /* the header parsing is what varies; hashing a long body under coverage tracing would
     * only slow the fuzzer down (SHA-256 has its own test vectors) */
    for (int p = 0; p < INBOUND_COUNT; p++)
        inbound_verify(p, "fuzz-secret", header, p == INBOUND_SHIPPO ? header : NULL,
                       (const char *)data, hn, 1735689600, &e);
    api_json_arena_end();
    return 0;
}
