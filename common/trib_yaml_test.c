/* trib_yaml_test.c -- YAML tree with positions and clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "trib_err.h"
#include "trib_yaml.h"

static void test_tree(void **state)
{
    const char *doc = "a: 1\n"
                      "list:\n"
                      "  - x\n"
                      "  - {k: 'v'}\n";
    struct trib_yaml *root;
    const struct trib_yaml *n;
    char err[200];

    (void)state;
    assert_int_equal(trib_yaml_parse(doc, strlen(doc), &root, err, sizeof(err)),
                     0);
    assert_int_equal(root->kind, TRIB_YAML_MAP);
    n = trib_yaml_get(root, "a");
    assert_non_null(n);
    assert_string_equal(n->str, "1");
    assert_int_equal(n->line, 1);
    n = trib_yaml_get(root, "list");
    assert_int_equal(n->kind, TRIB_YAML_SEQ);
    assert_int_equal(n->n, 2);
    assert_int_equal(n->vals[1]->line, 4);
    assert_string_equal(trib_yaml_get(n->vals[1], "k")->str, "v");
    assert_true(trib_yaml_get(n->vals[1], "k")->quoted);
    assert_null(trib_yaml_get(root, "missing"));
    trib_yaml_free(root);
}

static void test_errors(void **state)
{
    struct trib_yaml *root;
    char err[200];

    (void)state;
    assert_int_equal(
        trib_yaml_parse("a: 1\na: 2\n", 10, &root, err, sizeof(err)),
        TRIB_EINVAL);
    assert_non_null(strstr(err, "2:1: duplicate key 'a'"));
    assert_int_equal(trib_yaml_parse("a: [1, 2\n", 9, &root, err, sizeof(err)),
                     TRIB_EINVAL);
    assert_int_equal(
        trib_yaml_parse("a: &x 1\nb: *x\n", 14, &root, err, sizeof(err)),
        TRIB_EINVAL);
    assert_non_null(strstr(err, "anchors"));
    assert_int_equal(trib_yaml_parse("", 0, &root, err, sizeof(err)), 0);
    assert_int_equal(root->kind, TRIB_YAML_MAP);
    assert_int_equal(root->n, 0);
    trib_yaml_free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
