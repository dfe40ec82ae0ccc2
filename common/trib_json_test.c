/* trib_json_test.c -- strict accessors with clear messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "trib_err.h"
#include "trib_json.h"

static void test_accessors(void **state)
{
    const char *text = "{\"ms\": 5, \"p\": 0.5, \"s\": \"x\", \"f\": 1.5}";
    const char *known[] = {"ms", "p", "s", "f", NULL};
    const char *few[] = {"ms", NULL};
    json_t *o;
    char err[200];
    int64_t i = -1;
    double d = 0;
    const char *s = NULL;

    (void)state;
    assert_int_equal(trib_json_parse(text, strlen(text), &o, err, sizeof(err)),
                     0);
    assert_int_equal(trib_json_int(o, "ms", 1, 0, 10, &i, err, sizeof(err)), 0);
    assert_int_equal(i, 5);
    assert_int_equal(trib_json_int(o, "ms", 1, 6, 10, &i, err, sizeof(err)),
                     TRIB_EARGS);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(trib_json_int(o, "f", 1, 0, 10, &i, err, sizeof(err)),
                     TRIB_EARGS);
    assert_int_equal(trib_json_int(o, "s", 1, 0, 10, &i, err, sizeof(err)),
                     TRIB_EARGS);
    assert_non_null(strstr(err, "got string"));
    i = 42;
    assert_int_equal(trib_json_int(o, "absent", 0, 0, 10, &i, err, sizeof(err)),
                     0);
    assert_int_equal(i, 42);
    assert_int_equal(trib_json_int(o, "absent", 1, 0, 10, &i, err, sizeof(err)),
                     TRIB_EARGS);
    assert_int_equal(trib_json_num(o, "p", 1, 0, 1, &d, err, sizeof(err)), 0);
    assert_true(d == 0.5);
    assert_int_equal(trib_json_str(o, "s", 1, &s, err, sizeof(err)), 0);
    assert_string_equal(s, "x");
    assert_int_equal(trib_json_only_keys(o, known, err, sizeof(err)), 0);
    assert_int_equal(trib_json_only_keys(o, few, err, sizeof(err)), TRIB_EARGS);
    json_decref(o);
    assert_int_equal(trib_json_parse("{bad", 4, &o, err, sizeof(err)),
                     TRIB_EINVAL);
    assert_int_equal(
        trib_json_parse("{\"a\":1,\"a\":2}", 13, &o, err, sizeof(err)),
        TRIB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accessors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
