/* Writing shipments and scans in the interchange CSV format (CONTRACT §2): fixed column
 * order, RFC 4180 quoting where a field needs it, timestamps as RFC 3339 UTC ("...Z"),
 * money with 2 decimals and kilograms with 3. The output
 * is byte-for-byte deterministic for the same rows. */
#ifndef DRISK_EXPORT_H
#define DRISK_EXPORT_H

#include <stdio.h>

#include "data/store.h"

/* Header lines, with the trailing newline. */
extern const char drisk_shipments_csv_header[];
extern const char drisk_scans_csv_header[];

/* Append one row to f. Return 0, or -1 if the stream reports an error (check ferror
 * and fclose as well when done). */
int drisk_write_shipment_csv(FILE *f, const struct drisk_shipment *sh);
int drisk_write_scan_csv(FILE *f, const struct drisk_shipment *sh, const struct drisk_scan *sc);

/* Writes s as one CSV field, quoted only when it holds a comma, quote, CR or LF. */
void drisk_csv_put_field(FILE *f, const char *s);

#endif
