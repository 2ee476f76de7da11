/* RFC 3339 parsing/formatting and calendar arithmetic on int64 UTC seconds.
 * Civil-date conversions follow Howard Hinnant's days_from_civil algorithm, which is
 * exact over the whole proleptic Gregorian calendar and needs no tables or locale. */
#include "base/timeutil.h"

#include <string.h>

int64_t drisk_days_from_civil(int year, int month, int day)
{
    int64_t y = (int64_t)year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = (month + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void drisk_civil_from_days(int64_t days, int *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(y + (m <= 2));
    *month = (int)m;
    *day = (int)d;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int drisk_weekday(int64_t ts)
{
    int64_t days = floor_div(ts, 86400);
    /* 1970-01-01 was a Thursday (3 when Monday is 0). */
    int64_t w = (days + 3) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

int drisk_is_leap_year(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return month == 2 && drisk_is_leap_year(year) ? 29 : dim[month - 1];
}

/* Reads exactly n digits at s[*i]; -1 if any is not a digit or the input ends. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    return v;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

int drisk_ts_parse(const char *s, size_t len, int64_t *out, const char **why)
{
    size_t i = 0;
    int year, month, day, hour, min, sec;
    if ((year = digits(s, len, &i, 4)) < 0 || expect(s, len, &i, '-') ||
        (month = digits(s, len, &i, 2)) < 0 || expect(s, len, &i, '-') ||
        (day = digits(s, len, &i, 2)) < 0) {
        *why = "expected an RFC 3339 timestamp such as 2025-03-14T09:26:53Z";
        return -1;
    }
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) {
        *why = "missing the time of day and offset (e.g. T09:26:53Z)";
        return -1;
    }
    i++;
    if ((hour = digits(s, len, &i, 2)) < 0 || expect(s, len, &i, ':') ||
        (min = digits(s, len, &i, 2)) < 0 || expect(s, len, &i, ':') ||
        (sec = digits(s, len, &i, 2)) < 0) {
        *why = "bad time of day: expected HH:MM:SS";
        return -1;
    }
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start) {
            *why = "a '.' must be followed by fractional-second digits";
            return -1;
        }
    }
    int offset_min = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        int oh, om;
        if ((oh = digits(s, len, &i, 2)) < 0 || expect(s, len, &i, ':') ||
            (om = digits(s, len, &i, 2)) < 0 || oh > 23 || om > 59) {
            *why = "bad UTC offset: expected +HH:MM or -HH:MM";
            return -1;
        }
        offset_min = sign * (oh * 60 + om);
    } else {
        *why = "missing UTC offset: end the timestamp with Z or +HH:MM";
        return -1;
    }
    if (i != len) {
        *why = "unexpected characters after the timestamp";
        return -1;
    }
    if (month < 1 || month > 12) {
        *why = "month out of range 01-12";
        return -1;
    }
    if (day < 1 || day > days_in_month(year, month)) {
        *why = month == 2 && day == 29 ? "29 February in a year that is not a leap year"
                                       : "day out of range for the month";
        return -1;
    }
    if (hour > 23 || min > 59 || sec > 60) {
        *why = "time of day out of range";
        return -1;
    }
    int64_t t = drisk_days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec -
                (int64_t)offset_min * 60;
    /* the offset may carry a year 0000 or 9999 local time outside what UTC text can say
     * (found by tests/fuzz/fuzz_ts.c) */
    if (t < drisk_days_from_civil(0, 1, 1) * 86400 || t >= drisk_days_from_civil(10000, 1, 1) * 86400) {
        *why = "the instant falls outside the years 0000 to 9999 in UTC";
        return -1;
    }
    *out = t;
    return 0;
}

int drisk_date_or_ts_parse(const char *s, int64_t *out, const char **why)
{
    size_t len = strlen(s);
    if (len == 10) {
        char buf[32];
        memcpy(buf, s, 10);
        memcpy(buf + 10, "T00:00:00Z", 11);
        return drisk_ts_parse(buf, 20, out, why);
    }
    return drisk_ts_parse(s, len, out, why);
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

char *drisk_ts_format(int64_t ts, char buf[DRISK_TS_BUF])
{
    int64_t days = floor_div(ts, 86400);
    int64_t rem = ts - days * 86400;
    int y, m, d;
    drisk_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        memcpy(buf, "0000-00-00T00:00:00Z", 21);
        return buf;
    }
    put2(buf, y / 100);
    put2(buf + 2, y % 100);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '-';
    put2(buf + 8, d);
    buf[10] = 'T';
    put2(buf + 11, (int)(rem / 3600));
    buf[13] = ':';
    put2(buf + 14, (int)(rem % 3600 / 60));
    buf[16] = ':';
    put2(buf + 17, (int)(rem % 60));
    buf[19] = 'Z';
    buf[20] = '\0';
    return buf;
}

int drisk_is_business_day(int64_t ts)
{
    if (drisk_weekday(ts) >= 5)
        return 0;
    int y, m, d;
    drisk_civil_from_days(floor_div(ts, 86400), &y, &m, &d);
    if ((m == 1 && d == 1) || (m == 12 && (d == 25 || d == 26)))
        return 0;
    return 1;
}

int64_t drisk_add_business_days(int64_t ts, int n)
{
    int64_t day = floor_div(ts, 86400) * 86400;
    while (n > 0) {
        day += 86400;
        if (drisk_is_business_day(day))
            n--;
    }
    return day;
}
