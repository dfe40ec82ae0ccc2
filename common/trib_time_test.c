/* trib_time_test.c -- durations and timestamp text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "trib_err.h"
#include "trib_time.h"

static void test_duration_parse(void **state)
{
    int64_t us = 0;

    (void)state;
    assert_int_equal(trib_duration_parse("250ms", 0, &us), 0);
    assert_int_equal(us, 250000);
    assert_int_equal(trib_duration_parse("1.5s", 0, &us), 0);
    assert_int_equal(us, 1500000);
    assert_int_equal(trib_duration_parse("2m", 0, &us), 0);
    assert_int_equal(us, 120000000);
    assert_int_equal(trib_duration_parse("1h", 0, &us), 0);
    assert_int_equal(us, 3600000000LL);
    assert_int_equal(trib_duration_parse("7us", 0, &us), 0);
    assert_int_equal(us, 7);
    assert_int_equal(trib_duration_parse("0", 0, &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(trib_duration_parse("-1", 1, &us), 0);
    assert_int_equal(us, -1);
    assert_int_equal(trib_duration_parse("-1", 0, &us), TRIB_EINVAL);
    assert_int_equal(trib_duration_parse("10", 0, &us), TRIB_EINVAL);
    assert_int_equal(trib_duration_parse("s", 0, &us), TRIB_EINVAL);
    assert_int_equal(trib_duration_parse("", 0, &us), TRIB_EINVAL);
    assert_int_equal(trib_duration_parse("5 s", 0, &us), TRIB_EINVAL);
    assert_int_equal(trib_duration_parse("1d", 0, &us), TRIB_EINVAL);
    assert_int_equal(trib_duration_parse("99999999999999h", 0, &us),
                     TRIB_ERANGE);
}

static void test_duration_format(void **state)
{
    char b[32];

    (void)state;
    trib_duration_format(1500000, b, sizeof(b));
    assert_string_equal(b, "1.5s");
    trib_duration_format(250000, b, sizeof(b));
    assert_string_equal(b, "250ms");
    trib_duration_format(120000000, b, sizeof(b));
    assert_string_equal(b, "2m");
    trib_duration_format(0, b, sizeof(b));
    assert_string_equal(b, "0s");
}

static void test_pgtime(void **state)
{
    int64_t us;
    char b[40];

    (void)state;
    assert_int_equal(trib_pgtime_parse("1970-01-01 00:00:00+00", &us), 0);
    assert_int_equal(us, 0);
    assert_int_equal(trib_pgtime_parse("2026-11-27 10:12:27.123456+00", &us),
                     0);
    trib_time_rfc3339(us, b, sizeof(b), 6);
    assert_string_equal(b, "2026-11-27T10:12:27.123456Z");
    assert_int_equal(trib_pgtime_parse("2026-11-27 12:12:27.5+02", &us), 0);
    trib_time_rfc3339(us, b, sizeof(b), 3);
    assert_string_equal(b, "2026-11-27T10:12:27.500Z");
    assert_int_equal(trib_pgtime_parse("2026-11-27T04:42:27-05:30", &us), 0);
    trib_time_rfc3339(us, b, sizeof(b), 0);
    assert_string_equal(b, "2026-11-27T10:12:27Z");
    assert_int_equal(trib_pgtime_parse("2026-11-27T10:12:27Z", &us), 0);
    assert_int_equal(trib_pgtime_parse("2026-13-27 10:12:27+00", &us),
                     TRIB_EINVAL);
    assert_int_equal(trib_pgtime_parse("2026-11-27 10:12:27", &us),
                     TRIB_EINVAL);
    assert_int_equal(trib_pgtime_parse("garbage", &us), TRIB_EINVAL);
    assert_int_equal(trib_pgtime_parse("2026-11-27 10:12:27+00x", &us),
                     TRIB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_parse),
        cmocka_unit_test(test_duration_format),
        cmocka_unit_test(test_pgtime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
