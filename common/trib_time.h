/*
 * trib_time -- clocks, durations and timestamp text.
 *
 * Times are int64 microseconds: "wall" times since the Unix epoch (UTC),
 * monotonic times since an arbitrary origin. Durations are microseconds.
 *
 * Threading: all functions are thread-safe.
 */
#ifndef TRIB_TIME_H
#define TRIB_TIME_H

#include <stddef.h>
#include <stdint.h>

#define TRIB_US_PER_MS 1000LL
#define TRIB_US_PER_S  1000000LL

int64_t trib_now_us(void);   /* CLOCK_REALTIME, us since epoch */
uint64_t trib_mono_us(void); /* CLOCK_MONOTONIC, us            */

/*
 * Parse a duration: a decimal number followed by a unit (us, ms, s, m, h),
 * e.g. "250ms", "1.5s", "2m"; a bare "0" is accepted. Negative values are
 * refused unless allow_negative (then only "-1"-style values, any unit).
 * Returns 0 or TRIB_EINVAL / TRIB_ERANGE.
 */
int trib_duration_parse(const char *s, int allow_negative, int64_t *out_us);

/* "1.5s", "250ms", "2m0s"-free short form. Writes at most n bytes. */
void trib_duration_format(int64_t us, char *buf, size_t n);

/*
 * Parse PostgreSQL's timestamptz text output (ISO DateStyle), e.g.
 * "2026-11-27 10:12:27.123456+00" or "...+05:30"; also accepts a 'T'
 * separator and a trailing 'Z' (RFC 3339). Returns 0 or TRIB_EINVAL.
 */
int trib_pgtime_parse(const char *s, int64_t *out_us);

/* RFC 3339 UTC text with 'digits' fractional digits (0, 3, 6), e.g.
 * "2026-11-27T10:12:27.123456Z". n >= 32 is always enough. */
void trib_time_rfc3339(int64_t us, char *buf, size_t n, int digits);

/* Days since 1970-01-01 for a proleptic Gregorian date. */
int64_t trib_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif /* TRIB_TIME_H */
