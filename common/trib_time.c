/*
 * trib_time.c -- clocks, duration parsing, timestamp parsing/formatting.
 */
#include "trib_time.h"
#include "trib_err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t trib_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * TRIB_US_PER_S + ts.tv_nsec / 1000;
}

uint64_t trib_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TRIB_US_PER_S + (uint64_t)ts.tv_nsec / 1000;
}

int trib_duration_parse(const char *s, int allow_negative, int64_t *out_us)
{
    const char *p = s;
    int neg = 0;
    uint64_t whole = 0;
    uint64_t frac = 0, frac_div = 1;
    int digits = 0;
    int64_t unit;
    double v;

    if (s == NULL || *s == '\0') {
        return TRIB_EINVAL;
    }
    if (*p == '-') {
        if (!allow_negative) {
            return TRIB_EINVAL;
        }
        neg = 1;
        p++;
    }
    while (*p >= '0' && *p <= '9') {
        whole = whole * 10 + (uint64_t)(*p - '0');
        if (whole > 1000000000000ULL) {
            return TRIB_ERANGE;
        }
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (frac_div < 1000000000ULL) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                frac_div *= 10;
            }
            p++;
            digits++;
        }
    }
    if (digits == 0) {
        return TRIB_EINVAL;
    }
    if (strcmp(p, "us") == 0) {
        unit = 1;
    } else if (strcmp(p, "ms") == 0) {
        unit = TRIB_US_PER_MS;
    } else if (strcmp(p, "s") == 0) {
        unit = TRIB_US_PER_S;
    } else if (strcmp(p, "m") == 0) {
        unit = 60 * TRIB_US_PER_S;
    } else if (strcmp(p, "h") == 0) {
        unit = 3600 * TRIB_US_PER_S;
    } else if (*p == '\0' && whole == 0 && frac == 0) {
        unit = 1; /* bare zero */
    } else if (*p == '\0' && neg && whole == 1 && frac == 0) {
        unit = 1; /* bare -1: "none" */
    } else {
        return TRIB_EINVAL;
    }
    v = ((double)whole + (double)frac / (double)frac_div) * (double)unit;
    if (v > 9.2e18) {
        return TRIB_ERANGE;
    }
    *out_us = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

void trib_duration_format(int64_t us, char *buf, size_t n)
{
    int64_t a = us < 0 ? -us : us;
    const char *sign = us < 0 ? "-" : "";

    if (a == 0) {
        snprintf(buf, n, "0s");
    } else if (a % (3600 * TRIB_US_PER_S) == 0) {
        snprintf(buf, n, "%s%lldh", sign,
                 (long long)(a / (3600 * TRIB_US_PER_S)));
    } else if (a % (60 * TRIB_US_PER_S) == 0) {
        snprintf(buf, n, "%s%lldm", sign,
                 (long long)(a / (60 * TRIB_US_PER_S)));
    } else if (a >= TRIB_US_PER_S) {
        snprintf(buf, n, "%s%gs", sign, (double)a / TRIB_US_PER_S);
    } else if (a >= TRIB_US_PER_MS) {
        snprintf(buf, n, "%s%gms", sign, (double)a / TRIB_US_PER_MS);
    } else {
        snprintf(buf, n, "%s%lldus", sign, (long long)a);
    }
}

int64_t trib_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm (public domain description). */
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int num(const char **p, int ndig, int *out)
{
    int v = 0, i;

    for (i = 0; i < ndig; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') {
            return -1;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += ndig;
    *out = v;
    return 0;
}

int trib_pgtime_parse(const char *s, int64_t *out_us)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 1;
    int64_t frac = 0, scale = 100000, days, total;

    if (s == NULL || num(&p, 4, &y) || *p++ != '-' || num(&p, 2, &mo) ||
        *p++ != '-' || num(&p, 2, &d) || (*p != ' ' && *p != 'T')) {
        return TRIB_EINVAL;
    }
    p++;
    if (num(&p, 2, &h) || *p++ != ':' || num(&p, 2, &mi) || *p++ != ':' ||
        num(&p, 2, &sec)) {
        return TRIB_EINVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || sec > 60) {
        return TRIB_EINVAL;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            frac += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (num(&p, 2, &oh)) {
            return TRIB_EINVAL;
        }
        if (*p == ':') {
            p++;
            if (num(&p, 2, &om)) {
                return TRIB_EINVAL;
            }
            if (*p == ':') { /* seconds offset: historic zones */
                int os;
                p++;
                if (num(&p, 2, &os)) {
                    return TRIB_EINVAL;
                }
            }
        }
    } else {
        return TRIB_EINVAL;
    }
    if (*p != '\0') {
        return TRIB_EINVAL;
    }
    days = trib_days_from_civil(y, (unsigned)mo, (unsigned)d);
    total = ((days * 24 + h) * 60 + mi) * 60 + sec;
    total -= sign * (oh * 3600 + om * 60);
    *out_us = total * TRIB_US_PER_S + frac;
    return 0;
}

void trib_time_rfc3339(int64_t us, char *buf, size_t n, int digits)
{
    time_t secs =
        (time_t)(us >= 0 ? us / TRIB_US_PER_S
                         : -((-us + TRIB_US_PER_S - 1) / TRIB_US_PER_S));
    int64_t rem = us - (int64_t)secs * TRIB_US_PER_S;
    struct tm tm;
    char base[32];

    gmtime_r(&secs, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    if (digits == 6) {
        snprintf(buf, n, "%s.%06lldZ", base, (long long)rem);
    } else if (digits == 3) {
        snprintf(buf, n, "%s.%03lldZ", base, (long long)(rem / 1000));
    } else {
        snprintf(buf, n, "%sZ", base);
    }
}
