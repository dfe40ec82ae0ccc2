/*
 * stress_threshold_test.c -- threshold expressions (cli/stress_plan.h):
 * what parses and to what, every parse error's exact message, and the
 * verdicts (pass, fail, no data) against a small report document built
 * here, including the "thresholds" array stress_thresholds_apply writes
 * (docs/REPORT.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "stress_plan.h"
#include "trib_err.h"

static void test_threshold_parse(void **state)
{
    static const struct {
        const char *expr, *metric, *stat, *key, *val, *unit;
        enum stress_op op;
        double limit;
    } good[] = {
        {"p95(end_to_end) < 2s", "end_to_end", "p95", "", "", "ms",
         STRESS_OP_LT, 2000},
        {"  med( pickup )>=250  ", "pickup", "p50", "", "", "ms", STRESS_OP_GE,
         250},
        {"max(run) <= 500us", "run", "max", "", "", "ms", STRESS_OP_LE, 0.5},
        {"p99(pickup){mode=poll} <= 1.5s", "pickup", "p99", "mode", "poll",
         "ms", STRESS_OP_LE, 1500},
        {"avg(complete) {stage = \"warm-up\"} < 1m", "complete", "avg", "stage",
         "warm-up", "ms", STRESS_OP_LT, 60000},
        {"failed_rate < 1%", "failed_rate", "", "", "", "ratio", STRESS_OP_LT,
         0.01},
        {"retry_rate<=0.25", "retry_rate", "", "", "", "ratio", STRESS_OP_LE,
         0.25},
        {"throughput > 500/s", "throughput", "", "", "", "jobs/s", STRESS_OP_GT,
         500},
        {"started_early <= 0", "started_early", "", "", "", "count",
         STRESS_OP_LE, 0},
    };
    static const struct {
        const char *expr, *err;
    } bad[] = {
        {"", "empty threshold (e.g. 'p95(end_to_end) < 2s')"},
        {"p96(run) < 1s", "unknown statistic 'p96' (known: min, avg, med, "
                          "p50, p90, p95, p99, max)"},
        {"p95(run < 1s", "expected ')' after 'p95(run'"},
        {"end_to_end < 2s",
         "'end_to_end' is a latency: give a statistic, e.g. p95(end_to_end)"},
        {"p95(failed_rate) < 1%", "'failed_rate' is not a latency: write it "
                                  "without a statistic, e.g. 'failed_rate > "
                                  "0'"},
        {"failed_rate{mode=poll} < 1%",
         "a scope {...} applies to latencies only"},
        {"p95(run){host=a} < 1s", "unknown scope 'host' (known: node, client, "
                                  "queue, mode, stage), as in {mode=poll}"},
        {"p95(run){node a} < 1s",
         "expected '=' after '{node', as in {node=VALUE}"},
        {"p95(run){node=a < 1s", "expected '}' to close the scope"},
        {"p95(run) 1s", "expected <, <=, > or >= after 'p95(run)', got '1s'"},
        {"p95(run) <", "expected a value after '<'"},
        {"p95(run) < fast", "run: expected a duration (e.g. 250ms, 2s, 500us; "
                            "a bare number is ms), got 'fast'"},
        {"failed_rate < 5", "failed_rate: expected a percentage 0..100% or a "
                            "fraction 0..1 (e.g. 1% or 0.01), got '5'"},
        {"throughput > 5/m", "throughput: expected a rate in jobs/s (e.g. "
                             "500/s or 500), got '5/m'"},
        {"finished >= 1.5",
         "finished: expected a whole number of jobs (e.g. 0), got '1.5'"},
        {"p95(run) < 1s extra", "run: expected a duration (e.g. 250ms, 2s, "
                                "500us; a bare number is ms), got '1s extra'"},
    };
    struct stress_threshold t;
    char err[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (stress_threshold_parse(good[i].expr, &t, err, sizeof(err)) != 0) {
            print_error("good %zu: %s\n", i, err);
            fail();
        }
        assert_string_equal(t.metric, good[i].metric);
        assert_string_equal(t.stat, good[i].stat);
        assert_string_equal(t.scope_key, good[i].key);
        assert_string_equal(t.scope_val, good[i].val);
        assert_string_equal(t.unit, good[i].unit);
        assert_int_equal(t.op, good[i].op);
        assert_true(fabs(t.limit - good[i].limit) < 1e-9);
    }
    assert_int_equal(
        stress_threshold_parse("  p95(run) < 1s \n", &t, err, sizeof(err)), 0);
    assert_string_equal(t.expr, "p95(run) < 1s");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            stress_threshold_parse(bad[i].expr, &t, err, sizeof(err)),
            TRIB_EINVAL);
        if (strcmp(err, bad[i].err) != 0) {
            print_error("bad %zu:\n  got:  %s\n  want: %s\n", i, err,
                        bad[i].err);
            fail();
        }
    }
}

/* A report with just what the thresholds read (docs/REPORT.md). */
static json_t *small_report(void)
{
    json_t *r = json_pack(
        "{s:{s:i, s:i, s:n}, s:{s:f, s:n}, s:{s:{s:f, s:f, s:f}},"
        " s:[{s:i, s:s, s:{s:{s:f}}}],"
        " s:{s:[{s:s, s:{s:{s:f}}}, {s:s, s:{s:{s:f}}}], s:[]}}",
        "counts", "finished", 5000, "started_early", 0, "cancelled", "rates",
        "failed_rate", 0.096, "throughput", "latency_ms", "end_to_end", "p50",
        12.3, "p95", 41.0, "max", 140.9, "stages", "index", 0, "name",
        "warm-up", "latency_ms", "end_to_end", "p95", 900.0, "breakdowns",
        "mode", "key", "notify", "latency_ms", "pickup", "p99", 12.0, "key",
        "poll", "latency_ms", "pickup", "p99", 800.0, "node");
    assert_non_null(r);
    return r;
}

static void test_threshold_eval(void **state)
{
    static const struct {
        const char *expr;
        int verdict;
        double actual;
    } cases[] = {
        {"p95(end_to_end) < 2s", 1, 41.0},
        {"p95(end_to_end) < 40", 0, 41.0},
        {"med(end_to_end) >= 12.3", 1, 12.3},
        {"max(end_to_end) > 1s", 0, 140.9},
        {"p99(end_to_end) < 1s", -1, NAN}, /* key absent */
        {"failed_rate < 10%", 1, 0.096},
        {"failed_rate <= 0.05", 0, 0.096},
        {"throughput > 500/s", -1, NAN}, /* null */
        {"started_early <= 0", 1, 0},
        {"finished >= 5001", 0, 5000},
        {"cancelled < 1", -1, NAN},
        {"p99(pickup){mode=notify} < 100ms", 1, 12.0},
        {"p99(pickup){mode=poll} < 100ms", 0, 800.0},
        {"p99(pickup){mode=mixed} < 100ms", -1, NAN},
        {"p95(end_to_end){stage=warm-up} < 1s", 1, 900.0},
        {"p95(end_to_end){stage=0} < 500ms", 0, 900.0},
        {"p95(end_to_end){stage=1} < 1s", -1, NAN},
        {"p95(end_to_end){node=node-1} < 1s", -1, NAN},
    };
    struct stress_threshold t;
    json_t *r = small_report();
    const char *why;
    double actual;
    char err[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            stress_threshold_parse(cases[i].expr, &t, err, sizeof(err)), 0);
        int v = stress_threshold_eval(&t, r, &actual, &why);
        if (v != cases[i].verdict ||
            (isnan(cases[i].actual) ? !isnan(actual)
                                    : actual != cases[i].actual) ||
            (v == 1) != (why == NULL)) {
            print_error("case %zu (%s): verdict %d actual %g why %s\n", i,
                        cases[i].expr, v, actual, why ? why : "-");
            fail();
        }
        if (v == -1) {
            assert_true(strncmp(why, "no data", 7) == 0);
        }
    }
    json_decref(r);
}

static void test_thresholds_apply(void **state)
{
    struct stress_plan p;
    json_t *r = small_report(), *a, *e;
    const char *text;
    char err[512];

    (void)state;
    assert_int_equal(
        stress_thresholds_apply(&(struct stress_plan){.nthresholds = 0}, r), 1);
    assert_true(json_is_true(json_object_get(r, "thresholds_passed")));
    assert_int_equal(json_array_size(json_object_get(r, "thresholds")), 0);

    stress_plan_init(&p);
    text = "count: 5\nthresholds:\n"
           "  - p95(end_to_end) < 2s\n"
           "  - p99(pickup){mode=poll} < 100ms\n"
           "  - throughput > 500/s\n";
    assert_int_equal(
        stress_plan_parse(&p, text, strlen(text), "p.yaml", err, sizeof(err)),
        0);
    assert_int_equal(stress_thresholds_apply(&p, r), 0);
    assert_true(json_is_false(json_object_get(r, "thresholds_passed")));
    a = json_object_get(r, "thresholds");
    assert_int_equal(json_array_size(a), 3);

    e = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(e, "expr")),
                        "p95(end_to_end) < 2s");
    assert_string_equal(json_string_value(json_object_get(e, "metric")),
                        "end_to_end");
    assert_string_equal(json_string_value(json_object_get(e, "stat")), "p95");
    assert_true(json_is_null(json_object_get(e, "scope")));
    assert_string_equal(json_string_value(json_object_get(e, "op")), "<");
    assert_true(json_real_value(json_object_get(e, "limit")) == 2000.0);
    assert_string_equal(json_string_value(json_object_get(e, "unit")), "ms");
    assert_true(json_real_value(json_object_get(e, "actual")) == 41.0);
    assert_true(json_is_true(json_object_get(e, "pass")));
    assert_true(json_is_null(json_object_get(e, "why")));
    assert_int_equal(json_integer_value(json_object_get(e, "line")), 3);

    e = json_array_get(a, 1);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e, "scope"), "mode")),
        "poll");
    assert_true(json_is_false(json_object_get(e, "pass")));
    assert_string_equal(json_string_value(json_object_get(e, "why")),
                        "measured 800.000 ms, not < 100.000 ms");

    e = json_array_get(a, 2);
    assert_true(json_is_null(json_object_get(e, "stat")));
    assert_true(json_is_null(json_object_get(e, "actual")));
    assert_true(json_is_false(json_object_get(e, "pass")));
    assert_string_equal(json_string_value(json_object_get(e, "unit")),
                        "jobs/s");
    assert_string_equal(json_string_value(json_object_get(e, "why")),
                        "no data: the report has no value for this metric");
    stress_plan_fini(&p);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_parse),
        cmocka_unit_test(test_threshold_eval),
        cmocka_unit_test(test_thresholds_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
