/* libFuzzer harness: the importers' readers and validators on one input, read as CSV and
 * as JSON Lines (first byte even: shipments, odd: scans), each record through
 * drisk_record_shipment / drisk_record_scan as drisk import does. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "data/csv.h"
#include "data/import.h"
#include "data/jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One record's fields by the header's (or the object's) names. */
static void validate(int kind, int n, const char *const *name, const size_t *name_len,
                     const char *const *val, const size_t *len)
{
    struct drisk_record r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < n; i++) {
        int f = drisk_record_field(kind, name[i], name_len[i]);
        if (f >= 0) {
            r.v[f] = val[i];
            r.len[f] = len[i];
        }
    }
    char msg[400], merchant[DRISK_ID_MAX], id[DRISK_ID_MAX];
    if (kind == 0) {
        struct drisk_shipment sh;
        drisk_record_shipment(&r, &sh, msg, sizeof msg);
    } else {
        struct drisk_scan sc;
        drisk_record_scan(&r, merchant, id, &sc, msg, sizeof msg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int kind = data[0] & 1;
    struct drisk_error err;
    /* CSV: the first record names the columns */
    FILE *f = fmemopen((void *)(data + 1), size - 1, "r");
    if (f) {
        struct drisk_csv *csv = drisk_csv_create(f);
        struct drisk_csv_record rec;
        static char head[DRISK_CSV_MAX_FIELDS][64];
        size_t head_len[DRISK_CSV_MAX_FIELDS];
        const char *head_p[DRISK_CSV_MAX_FIELDS];
        int n_head = -1, rc;
        while (csv && (rc = drisk_csv_next(csv, &rec, &err)) != 0) {
            if (rc < 0)
                continue;
            if (n_head < 0) {
                n_head = rec.n_fields;
                for (int i = 0; i < n_head; i++) {
                    head_len[i] = rec.len[i] < 63 ? rec.len[i] : 63;
                    memcpy(head[i], rec.field[i], head_len[i]);
                    head_p[i] = head[i];
                }
                continue;
            }
            validate(kind, rec.n_fields < n_head ? rec.n_fields : n_head, head_p, head_len,
                     rec.field, rec.len);
        }
        drisk_csv_free(csv);
        fclose(f);
    }
    /* JSON Lines */
    if ((f = fmemopen((void *)(data + 1), size - 1, "r")) != NULL) {
        struct drisk_jsonl *j = drisk_jsonl_create(f);
        struct drisk_jsonl_record rec;
        int rc;
        while (j && (rc = drisk_jsonl_next(j, &rec, &err)) != 0) {
            if (rc < 0)
                continue;
            size_t key_len[DRISK_JSONL_MAX_PAIRS];
            const char *val[DRISK_JSONL_MAX_PAIRS];
            for (int i = 0; i < rec.n; i++) {
                key_len[i] = strlen(rec.key[i]);
                val[i] = rec.is_null[i] ? NULL : rec.val[i];
            }
            validate(kind, rec.n, rec.key, key_len, val, rec.len);
        }
        drisk_jsonl_free(j);
        fclose(f);
    }
    return 0;
}
