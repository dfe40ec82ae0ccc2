/* trib_buf_test.c -- buffer growth and text encoders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "trib_buf.h"

static void test_grow(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;
    int i;

    (void)state;
    for (i = 0; i < 1000; i++) {
        trib_buf_printf(&b, "%d,", i);
    }
    assert_int_equal(strlen(b.data), b.len);
    assert_memory_equal(b.data, "0,1,2,", 6);
    trib_buf_reset(&b);
    trib_buf_put_i64(&b, -9223372036854775807LL - 1);
    assert_string_equal(b.data, "-9223372036854775808");
    trib_buf_fini(&b);
}

static void test_json_time_ms(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_buf_json_ms(&b, -500);
    trib_buf_putc(&b, ' ');
    trib_buf_json_ms(&b, -1234567);
    trib_buf_putc(&b, ' ');
    trib_buf_json_ms(&b, 1204);
    trib_buf_putc(&b, ' ');
    trib_buf_json_time(&b, 0);
    trib_buf_putc(&b, ' ');
    trib_buf_json_time(&b, 1795792384238008LL);
    assert_string_equal(b.data, "-0.500 -1234.567 1.204 null "
                                "\"2026-11-27T15:13:04.238008Z\"");
    trib_buf_fini(&b);
}

static void test_json_str(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_buf_json_str(&b, "a\"b\\c\n\x01", 7);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    trib_buf_reset(&b);
    trib_buf_json_str(&b, "x\0y", 3);
    assert_string_equal(b.data, "\"x\\ufffdy\"");
    trib_buf_reset(&b);
    trib_buf_json_str(&b, "h\xc3\xa9", 3); /* valid UTF-8 kept */
    assert_string_equal(b.data, "\"h\xc3\xa9\"");
    trib_buf_reset(&b);
    trib_buf_json_str(&b, "x\xff\xc3", 3); /* invalid replaced */
    assert_string_equal(b.data, "\"x\xef\xbf\xbd\xef\xbf\xbd\"");
    trib_buf_fini(&b);
}

static void test_copy_field(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_buf_copy_field(&b, "a\\b\tc\nd\re{\"x\"}");
    assert_string_equal(b.data, "a\\\\b\\tc\\nd\\re{\"x\"}");
    trib_buf_fini(&b);
}

static void test_pgarray(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_buf_putc(&b, '{');
    trib_buf_pgarray_elem(&b, "{\"a\":\"b\\\\\"}", 11);
    trib_buf_putc(&b, '}');
    assert_string_equal(b.data, "{\"{\\\"a\\\":\\\"b\\\\\\\\\\\"}\"}");
    trib_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow),         cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_json_time_ms), cmocka_unit_test(test_copy_field),
        cmocka_unit_test(test_pgarray),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
