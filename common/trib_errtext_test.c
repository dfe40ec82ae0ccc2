/* trib_errtext_test.c -- error text normalised for grouping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "trib_errtext.h"

static void check(const char *in, const char *want)
{
    char out[TRIB_ERRTEXT_MAX + 1];
    size_t n = trib_errtext_normalise(in, strlen(in), out);

    assert_int_equal(n, strlen(out));
    if (strcmp(out, want) != 0) {
        fail_msg("normalise(\"%s\") = \"%s\", want \"%s\"", in, out, want);
    }
}

static void test_tokens(void **state)
{
    (void)state;
    check("card 1234 declined", "card N declined");
    check("  order  550e8400-e29b-41d4-a716-446655440000\n\tfailed \n",
          "order X failed");
    check("job deadbeef99 at 0x7ffd5e8c1a2b", "job X at X");
    check("ptr 0x00000000 null", "ptr X null");
    check("v2 timeout after 30s", "vN timeout after Ns");
    check("date 2024-01-15", "date N-N-N");
    check("id 12345678 gone", "id N gone"); /* no hex letter */
    check("word abcdefabcd", "word X");     /* all hex letters */
    check("xdeadbeef99 embedded", "xdeadbeefN embedded");
    check("trace-9f86d081884c7d65-end", "trace-X-end");
    check("short cafe1 stays", "short cafeN stays"); /* < 8 hex digits */
    check("job timed out after 5s", "job timed out after Ns");
    check("", "");
    check("   ", "");
}

static void test_limits(void **state)
{
    char in[1200], out[TRIB_ERRTEXT_MAX + 1];
    size_t n;

    (void)state;
    /* not NUL-terminated: only n bytes are read */
    memcpy(in, "abc 42xyz", 9);
    n = trib_errtext_normalise(in, 6, out);
    assert_int_equal(n, 5);
    assert_string_equal(out, "abc N");
    /* absent text */
    assert_int_equal(trib_errtext_normalise(NULL, 0, out), 0);
    assert_string_equal(out, "");
    /* cut at the limit */
    memset(in, 'q', sizeof(in));
    in[sizeof(in) - 1] = 0;
    in[10] = ' ';
    n = trib_errtext_normalise(in, strlen(in), out);
    assert_int_equal(n, TRIB_ERRTEXT_MAX);
    assert_int_equal(strlen(out), TRIB_ERRTEXT_MAX);
    /* a multi-byte character is not split at the limit */
    memset(in, 'z', TRIB_ERRTEXT_MAX - 1);
    memcpy(in + TRIB_ERRTEXT_MAX - 1, "\xc3\xa9zz", 5);
    n = trib_errtext_normalise(in, strlen(in), out);
    assert_int_equal(n, TRIB_ERRTEXT_MAX - 1);
    /* a truncated sequence at the end of the input is copied byte-wise */
    n = trib_errtext_normalise("ok \xe2\x82", 5, out);
    assert_int_equal(n, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
