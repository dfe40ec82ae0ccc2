/* trib_migrations_test.c -- the embedded migration table and the pure logic
 * around it (rendering, planning, names). No database needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "trib_buf.h"
#include "trib_err.h"
#include "trib_migrations.h"

/* River v0.51.2's line 'main', in order (our file names). */
static const char *const river_main[] = {
    "create_river_migration",  "initial_schema",
    "river_job_tags_non_null", "pending_and_more",
    "migration_unique_client", "bulk_unique",
    "notification_outbox",     "job_id_autoincrement",
};
#define RIVER_MAIN_LATEST (sizeof(river_main) / sizeof(river_main[0]))

static void test_table_complete_and_ordered(void **state)
{
    const struct trib_migration_line *lines, *l;
    char file[128];
    size_t i, j, n;

    (void)state;
    lines = trib_migration_lines(&n);
    assert_true(n >= 1);
    assert_string_equal(lines[0].name, TRIB_MIGRATION_MAIN);
    l = trib_migration_line_find("main");
    assert_ptr_equal(l, &lines[0]);
    assert_int_equal(l->nsteps, RIVER_MAIN_LATEST);
    for (i = 0; i < n; i++) {
        assert_true(lines[i].nsteps >= 1);
        for (j = 0; j < lines[i].nsteps; j++) {
            const struct trib_migration *m = &lines[i].steps[j];

            assert_string_equal(m->line, lines[i].name);
            assert_int_equal(m->version, (int)j + 1);
            assert_true(m->name[0] != '\0');
            assert_true(strlen(m->sql) > 0);
            snprintf(file, sizeof(file), "sql/%s/%03d_%s.up.sql", m->line,
                     m->version, m->name);
            assert_string_equal(m->file, file);
            assert_ptr_equal(trib_migration_get(&lines[i], m->version), m);
        }
    }
    for (i = 0; i < RIVER_MAIN_LATEST; i++) {
        assert_string_equal(l->steps[i].name, river_main[i]);
    }
    assert_null(trib_migration_get(l, 0));
    assert_null(trib_migration_get(l, (int64_t)RIVER_MAIN_LATEST + 1));
    assert_null(trib_migration_line_find("tributary-nope"));
    assert_null(trib_migration_line_find(NULL));
}

/* Every reference to a River object outside comments carries {{schema}},
 * so --schema places (and finds) everything in the named schema. */
static void test_every_reference_is_templated(void **state)
{
    static const char *const unqualified[] = {
        "TABLE river_",          "TYPE river_",       " ON river_",
        "FROM river_",           "INTO river_",       "FUNCTION river_",
        "REFERENCES river_",     "DROP INDEX river_", "to_regclass('river_",
        "state river_job_state", "AND river_",
    };
    const struct trib_migration_line *l = trib_migration_line_find("main");
    const char *line, *eol;
    char buf[512];
    size_t i, k, len;

    (void)state;
    for (i = 0; i < l->nsteps; i++) {
        for (line = l->steps[i].sql; *line; line = *eol ? eol + 1 : eol) {
            eol = strchr(line, '\n');
            if (eol == NULL) {
                eol = line + strlen(line);
            }
            len = (size_t)(eol - line);
            if (len >= sizeof(buf)) {
                len = sizeof(buf) - 1;
            }
            memcpy(buf, line, len);
            buf[len] = '\0';
            if (strstr(buf, "--") == buf + strspn(buf, " ")) {
                continue; /* a comment line */
            }
            for (k = 0; k < sizeof(unqualified) / sizeof(unqualified[0]); k++) {
                if (strstr(buf, unqualified[k]) != NULL) {
                    fail_msg("%s: unqualified reference '%s' in: %s",
                             l->steps[i].file, unqualified[k], buf);
                }
            }
        }
    }
}

static void test_render(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    assert_int_equal(
        trib_migration_render(&b, "A {{schema}}t, {{schema}}u", NULL), 0);
    assert_string_equal(b.data, "A t, u");
    trib_buf_reset(&b);
    assert_int_equal(trib_migration_render(&b, "A {{schema}}t", ""), 0);
    assert_string_equal(b.data, "A t");
    trib_buf_reset(&b);
    assert_int_equal(trib_migration_render(&b, "{{schema}}t", "my\"s"), 0);
    assert_string_equal(b.data, "\"my\"\"s\".t");
    trib_buf_reset(&b);
    assert_int_equal(trib_migration_render(&b, "x {{other}} y", "s"),
                     TRIB_EINVAL);
    trib_buf_reset(&b);
    /* Every embedded step renders. */
    {
        const struct trib_migration_line *l = trib_migration_line_find("main");
        size_t i;

        for (i = 0; i < l->nsteps; i++) {
            trib_buf_reset(&b);
            assert_int_equal(
                trib_migration_render(&b, l->steps[i].sql, "myschema"), 0);
            assert_null(strstr(b.data, "{{"));
        }
    }
    trib_buf_fini(&b);
}

static void test_schema_valid(void **state)
{
    char longname[70];

    (void)state;
    assert_int_equal(trib_migration_schema_valid("public"), 0);
    assert_int_equal(trib_migration_schema_valid("My \"odd\" schema"), 0);
    assert_int_equal(trib_migration_schema_valid(""), TRIB_EINVAL);
    assert_int_equal(trib_migration_schema_valid(NULL), TRIB_EINVAL);
    assert_int_equal(trib_migration_schema_valid("a'b"), TRIB_EINVAL);
    memset(longname, 'x', sizeof(longname));
    longname[TRIB_MIGRATION_SCHEMA_MAX] = '\0';
    assert_int_equal(trib_migration_schema_valid(longname), 0);
    longname[TRIB_MIGRATION_SCHEMA_MAX] = 'x';
    longname[TRIB_MIGRATION_SCHEMA_MAX + 1] = '\0';
    assert_int_equal(trib_migration_schema_valid(longname), TRIB_EINVAL);
}

static void test_plan(void **state)
{
    const struct trib_migration_line *l = trib_migration_line_find("main");
    const int64_t all[] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int64_t to6[] = {6, 5, 4, 3, 2, 1}; /* any order */
    const int64_t gap[] = {1, 2, 4, 5, 6, 7, 8};
    const int64_t newer[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t next = -1;

    (void)state;
    assert_int_equal(trib_migration_plan(l, NULL, 0, 0, &next), 0);
    assert_int_equal(next, 1);
    assert_int_equal(trib_migration_plan(l, all, 8, 0, &next), 0);
    assert_int_equal(next, 0);
    assert_int_equal(trib_migration_plan(l, to6, 6, 0, &next), 0);
    assert_int_equal(next, 7);
    assert_int_equal(trib_migration_plan(l, all, 4, 6, &next), 0);
    assert_int_equal(next, 5);
    assert_int_equal(trib_migration_plan(l, all, 3, 6, &next), 0);
    assert_int_equal(next, 4);
    assert_int_equal(trib_migration_plan(l, to6, 6, 4, &next), 0);
    assert_int_equal(next, 0); /* target already applied */
    /* No target: River fills gaps; explicit applied target: nothing. */
    assert_int_equal(trib_migration_plan(l, gap, 7, 0, &next), 0);
    assert_int_equal(next, 3);
    assert_int_equal(trib_migration_plan(l, gap, 7, 8, &next), 0);
    assert_int_equal(next, 0);
    assert_int_equal(trib_migration_plan(l, newer, 9, 0, &next), TRIB_EVERSION);
    assert_int_equal(next, 0);
    assert_int_equal(trib_migration_plan(l, all, 8, 9, &next), TRIB_EINVAL);
    assert_int_equal(trib_migration_plan(l, all, 8, -1, &next), TRIB_EINVAL);
}

static void test_lock_key(void **state)
{
    (void)state;
    assert_true(trib_migration_lock_key("public") ==
                trib_migration_lock_key("public"));
    assert_true(trib_migration_lock_key("public") !=
                trib_migration_lock_key("myschema"));
    assert_true(trib_migration_lock_key(NULL) == trib_migration_lock_key(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_complete_and_ordered),
        cmocka_unit_test(test_every_reference_is_templated),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_schema_valid),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_lock_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
