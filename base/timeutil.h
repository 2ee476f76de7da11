/* Time in drisk: UTC seconds since the Unix epoch in an int64_t, everywhere.
 * Parsing RFC 3339 (with Z or an offset) and formatting it back, calendar arithmetic
 * without the C library's time zone state (thread-safe, locale-free), and business days. */
#ifndef DRISK_TIMEUTIL_H
#define DRISK_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define DRISK_TS_BUF 32 /* enough for "YYYY-MM-DDTHH:MM:SSZ" and a terminator */

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int64_t drisk_days_from_civil(int year, int month, int day);

/* The date of a day number (inverse of drisk_days_from_civil). */
void drisk_civil_from_days(int64_t days, int *year, int *month, int *day);

/* Day of week of a UTC timestamp: 0 = Monday ... 6 = Sunday. */
int drisk_weekday(int64_t ts);

/* 1 for a leap year. */
int drisk_is_leap_year(int year);

/* Parses an RFC 3339 timestamp of exactly len bytes: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)".
 * 'T' may be 't' or a space, 'Z' may be 'z'; fractions are truncated to whole seconds;
 * second 60 (a leap second) is accepted and counts as the next minute's first second.
 * Returns 0 and sets *out, or -1 with a short reason in *why (static storage). */
int drisk_ts_parse(const char *s, size_t len, int64_t *out, const char **why);

/* Parses "YYYY-MM-DD" (midnight UTC) or a full RFC 3339 timestamp. Same contract. */
int drisk_date_or_ts_parse(const char *s, int64_t *out, const char **why);

/* Writes ts as "YYYY-MM-DDTHH:MM:SSZ" into buf (DRISK_TS_BUF bytes); returns buf. */
char *drisk_ts_format(int64_t ts, char buf[DRISK_TS_BUF]);

/* 1 if the UTC day of ts is a business day: Monday to Friday, not a fixed holiday
 * (1 January, 25 and 26 December). */
int drisk_is_business_day(int64_t ts);

/* The start (00:00 UTC) of the day that is n business days after the day of ts. */
int64_t drisk_add_business_days(int64_t ts, int n);

#endif
