/* Interchange CSV writer shared by the simulator's --export and any later exporter. */
#include "data/export.h"

#include <math.h>
#include <string.h>

#include "base/timeutil.h"
#include "engine/vocab.h"

const char drisk_shipments_csv_header[] =
    "shipment_id,merchant_id,order_id,carrier,service,origin,destination,weight_kg,"
    "declared_value,created_at,promised_at,delivered_at,outcome\n";
const char drisk_scans_csv_header[] =
    "shipment_id,merchant_id,ts,event,location,reason,description\n";

void drisk_csv_put_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int drisk_write_shipment_csv(FILE *f, const struct drisk_shipment *sh)
{
    char t1[DRISK_TS_BUF], t2[DRISK_TS_BUF], t3[DRISK_TS_BUF];
    const char *text[] = { sh->shipment_id, sh->merchant, sh->order_id, sh->carrier,
                           sh->service, sh->origin, sh->destination };
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        drisk_csv_put_field(f, text[i]);
        fputc(',', f);
    }
    if (!isnan(sh->weight_kg))
        fprintf(f, "%.3f", sh->weight_kg);
    fputc(',', f);
    if (!isnan(sh->declared_value))
        fprintf(f, "%.2f", sh->declared_value);
    fprintf(f, ",%s,%s,%s,%s\n", drisk_ts_format(sh->created_at, t1),
            drisk_ts_format(sh->promised_at, t2),
            sh->delivered_at == DRISK_TS_NONE ? "" : drisk_ts_format(sh->delivered_at, t3),
            drisk_outcome_name(sh->outcome) ? drisk_outcome_name(sh->outcome) : "");
    return ferror(f) ? -1 : 0;
}

int drisk_write_scan_csv(FILE *f, const struct drisk_shipment *sh, const struct drisk_scan *sc)
{
    char t[DRISK_TS_BUF];
    const char *ev = drisk_event_name(sc->event), *rs = drisk_reason_name(sc->reason);
    drisk_csv_put_field(f, sh->shipment_id);
    fputc(',', f);
    drisk_csv_put_field(f, sh->merchant);
    fprintf(f, ",%s,%s,", drisk_ts_format(sc->ts, t), ev ? ev : "");
    drisk_csv_put_field(f, sc->location);
    fprintf(f, ",%s,", rs ? rs : "");
    drisk_csv_put_field(f, sc->description);
    fputc('\n', f);
    return ferror(f) ? -1 : 0;
}
