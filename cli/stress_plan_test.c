/*
 * stress_plan_test.c -- the stress plan (cli/stress_plan.h): a full plan
 * file, every kind of error with its exact "file:line:col: field: problem"
 * message, flags over a file, and the schedule's arithmetic. Thresholds:
 * stress_threshold_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress_plan.h"
#include "trib_err.h"

#define S (1000000LL) /* us */

static const char full_plan[] =
    "name: mixed-demo\n"
    "jobs:\n"
    "  kind: tributary.sleep\n"
    "  args: {ms: 5, label: \"x\", ok: true, ratio: 0.5, none: null,\n"
    "         list: [1, two]}\n"
    "  priority: 2\n"
    "  max_attempts: 3\n"
    "  tags: [demo, load-test]\n"
    "  delay: 2s\n"
    "  spread: 500ms\n"
    "mixed:\n"
    "  notify_queue: fast\n"
    "  poll_queue: slow\n"
    "insert: {method: insert, batch: 500, streams: 4}\n"
    "start_rate: 10/s\n"
    "stages:\n"
    "  - {name: warm-up, duration: 10s, target: 100}\n"
    "  - name: burst\n"
    "    count: 2000\n"
    "    rate: 500/s\n"
    "  - 5s:0\n"
    "timeout: 2m\n"
    "grace: 1s\n"
    "monitor: polling\n"
    "thresholds:\n"
    "  - p95(end_to_end) < 2s\n"
    "  - failed_rate < 1%\n"
    "database_url: postgres://u:secret@h/db\n"
    "schema: river\n"
    "control: tcp://127.0.0.1:7101\n"
    "out: runs/demo\n";

static int parse(struct stress_plan *p, const char *text, char *err,
                 size_t errlen)
{
    stress_plan_init(p);
    err[0] = '\0';
    return stress_plan_parse(p, text, strlen(text), "plan.yaml", err, errlen);
}

static void test_full_plan(void **state)
{
    struct stress_plan p;
    char err[512];
    json_t *j, *args;

    (void)state;
    assert_int_equal(parse(&p, full_plan, err, sizeof(err)), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_string_equal(p.name, "mixed-demo");
    assert_string_equal(p.file, "plan.yaml");
    assert_string_equal(p.kind, "tributary.sleep");
    args = json_loads(p.args_json, 0, NULL);
    assert_non_null(args);
    assert_int_equal(json_integer_value(json_object_get(args, "ms")), 5);
    assert_string_equal(json_string_value(json_object_get(args, "label")), "x");
    assert_true(json_is_true(json_object_get(args, "ok")));
    assert_true(json_real_value(json_object_get(args, "ratio")) == 0.5);
    assert_true(json_is_null(json_object_get(args, "none")));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(args, "list"), 1)),
        "two");
    json_decref(args);
    assert_int_equal(p.priority, 2);
    assert_int_equal(p.max_attempts, 3);
    assert_int_equal(p.ntags, 2);
    assert_string_equal(p.tags[1], "load-test");
    assert_int_equal(p.delay_us, 2 * S);
    assert_int_equal(p.spread_us, S / 2);
    assert_true(p.mixed);
    assert_int_equal(p.nqueues, 2);
    assert_string_equal(p.queues[0], "fast");
    assert_string_equal(p.queues[1], "slow");
    assert_int_equal(p.method, STRESS_METHOD_INSERT);
    assert_int_equal(p.batch, 500);
    assert_int_equal(p.streams, 4);
    assert_true(p.start_rate == 10);
    assert_int_equal(p.nstages, 3);
    assert_string_equal(p.stages[0].name, "warm-up");
    assert_int_equal(p.stages[0].duration_us, 10 * S);
    assert_true(p.stages[0].target == 100);
    assert_int_equal(p.stages[0].line, 17);
    assert_string_equal(p.stages[1].name, "burst");
    assert_int_equal(p.stages[1].count, 2000);
    assert_true(p.stages[1].rate == 500);
    assert_string_equal(p.stages[2].name, "stage-3");
    assert_int_equal(p.stages[2].duration_us, 5 * S);
    /* 10 s from 10 to 100/s: 550; 2000; 5 s from 500/s to 0: 1250. */
    assert_int_equal(stress_plan_jobs(&p), 550 + 2000 + 1250);
    assert_int_equal(p.timeout_us, 120 * S);
    assert_int_equal(p.grace_us, S);
    assert_int_equal(p.monitor, STRESS_MONITOR_POLLING);
    assert_int_equal(p.nthresholds, 2);
    assert_int_equal(p.thresholds[1].line, 27);
    assert_string_equal(p.database_url, "postgres://u:secret@h/db");
    assert_string_equal(p.schema, "river");
    assert_string_equal(p.control, "tcp://127.0.0.1:7101");
    assert_string_equal(p.out_dir, "runs/demo");

    j = stress_plan_json(&p);
    assert_string_equal(json_string_value(json_object_get(j, "database_url")),
                        "postgres://u:***@h/db");
    assert_true(json_number_value(json_object_get(json_object_get(j, "jobs"),
                                                  "delay_s")) == 2.0);
    assert_int_equal(json_integer_value(json_object_get(j, "total_jobs")),
                     3800);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(j, "stages"), 2), "form")),
        "ramp");
    assert_true(json_number_value(json_object_get(
                    json_array_get(json_object_get(j, "stages"), 2),
                    "start_rate")) == 500);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(j, "thresholds"), 1)),
        "failed_rate < 1%");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(j, "mixed"), "poll_queue")),
                        "slow");
    assert_true(json_number_value(json_object_get(j, "timeout_s")) == 120);
    json_decref(j);
    stress_plan_fini(&p);
}

/* Every error names file, line, column and field; exact messages. */
static const struct bad {
    const char *text, *err;
} bads[] = {
    {"count: 10\ncolour: red\n",
     "plan.yaml:2:1: colour: unknown key (known: name, jobs, mixed, insert, "
     "count, rate, stages, start_rate, timeout, grace, monitor, thresholds, "
     "database_url, schema, control, out)"},
    {"cuont: 10\n",
     "plan.yaml:1:1: cuont: unknown key (known: name, jobs, mixed, insert, "
     "count, rate, stages, start_rate, timeout, grace, monitor, thresholds, "
     "database_url, schema, control, out); did you mean 'count'?"},
    {"jobs:\n  kind: x\n  prio: 2\n",
     "plan.yaml:3:3: jobs.prio: unknown key (known: kind, args, queue, queues, "
     "priority, max_attempts, tags, delay, spread)"},
    {"insert: {method: copy, bacth: 5}\n",
     "plan.yaml:1:24: insert.bacth: unknown key (known: method, batch, "
     "streams); did you mean 'batch'?"},
    {"stages:\n  - duration: 10s\n    target: 100\n  - name: peak\n"
     "    duration: 20s\n    target: fast\n",
     "plan.yaml:6:13: stages[1].target: expected a rate >= 0 (e.g. 500 or "
     "500/s), got 'fast'"},
    {"stages:\n  - {duration: 10s, target: 1, speed: 3}\n",
     "plan.yaml:2:32: stages[0].speed: unknown key (known: name, duration, "
     "target, count, rate)"},
    {"stages:\n  - {duration: 10s, count: 5}\n",
     "plan.yaml:2:28: stages[0]: give duration + target (a ramp) or count [+ "
     "rate] (a count stage), not both"},
    {"stages:\n  - {duration: 10s}\n",
     "plan.yaml:2:5: stages[0]: a ramp needs 'target' (its end rate)"},
    {"stages:\n  - {name: x}\n",
     "plan.yaml:2:5: stages[0]: expected duration + target (a ramp) or count "
     "[+ rate] (a count stage)"},
    {"stages:\n  - {duration: 10, target: 5}\n",
     "plan.yaml:2:16: stages[0].duration: expected a duration > 0 and <= 24h "
     "(e.g. 500ms, 30s, 2m), got '10'"},
    {"stages:\n  - {count: 10, rate: 5, name: \"7\"}\n",
     "plan.yaml:2:32: stages[0].name: expected a stage name that is not a "
     "number (thresholds pick stages by name or by index), got '7'"},
    {"stages:\n  - 10x:5\n",
     "plan.yaml:2:5: stages[0]: ramp duration: expected a duration > 0 and <= "
     "24h (e.g. 500ms, 30s, 2m), got '10x'"},
    {"stages: []\n", "plan.yaml:1:9: stages: expected at least one stage"},
    {"count: 10\nstages: [5]\n",
     "plan.yaml:2:9: stages: give 'count' (+ 'rate') or 'stages', not both"},
    {"rate: 5\n",
     "plan.yaml:1:7: rate: 'rate' goes with 'count' (with 'stages', each "
     "stage has its own rate)"},
    {"count: -3\n",
     "plan.yaml:1:8: count: expected an integer 1..100000000, got '-3'"},
    {"jobs: [a, b]\n", "plan.yaml:1:7: jobs: expected a mapping, got a list"},
    {"jobs:\n  priority: 9\n",
     "plan.yaml:2:13: jobs.priority: expected an integer 1..4, got '9'"},
    {"jobs:\n  max_attempts: {a: 1}\n",
     "plan.yaml:2:17: jobs.max_attempts: expected a single value, got a "
     "mapping"},
    {"jobs:\n  queues: [default, Bad]\n",
     "plan.yaml:2:21: jobs.queues[1]: expected a queue name: 1-64 lowercase "
     "letters and digits separated by single _ - or |, got 'Bad'"},
    {"jobs:\n  queues: [a, a]\n",
     "plan.yaml:2:15: jobs.queues[1]: queue 'a' is listed twice"},
    {"jobs:\n  queue: a\n  queues: [b]\n",
     "plan.yaml:3:11: jobs.queues: give 'queue' or 'queues', not both"},
    {"jobs:\n  tags: [ok, \"no spaces\"]\n",
     "plan.yaml:2:14: jobs.tags[1]: expected a tag of 1..64 letters, digits, "
     "_ or -, got 'no spaces'"},
    {"jobs:\n  tags: tributary-run-1\n",
     "plan.yaml:2:9: jobs.tags: tag 'tributary-run-1' is reserved: "
     "'tributary-run-<id>' marks the run's jobs"},
    {"jobs:\n  args: '[1, 2]'\n",
     "plan.yaml:2:9: jobs.args: expected a JSON object such as {\"ms\": 5}, "
     "got '[1, 2]'"},
    {"jobs:\n  args: [1, 2]\n",
     "plan.yaml:2:9: jobs.args: expected a mapping (or a string of JSON), got "
     "a list"},
    {"jobs:\n  delay: soon\n",
     "plan.yaml:2:10: jobs.delay: expected a duration <= 24h (e.g. 500ms, "
     "30s, 2m), got 'soon'"},
    {"jobs:\n  kind: \"\"\n",
     "plan.yaml:2:9: jobs.kind: expected 1..127 characters, got ''"},
    {"mixed: yes\n",
     "plan.yaml:1:8: mixed: expected true, false or a mapping {notify_queue, "
     "poll_queue}"},
    {"mixed: {notify_queue: a, pol_queue: b}\n",
     "plan.yaml:1:26: mixed.pol_queue: unknown key (known: notify_queue, "
     "poll_queue); did you mean 'poll_queue'?"},
    {"insert:\n  method: bulk\n",
     "plan.yaml:2:11: insert.method: expected copy or insert, got 'bulk'"},
    {"insert:\n  streams: 17\n",
     "plan.yaml:2:12: insert.streams: expected an integer 1..16, got '17'"},
    {"insert:\n  batch: 0\n",
     "plan.yaml:2:10: insert.batch: expected an integer 1..100000, got '0'"},
    {"monitor: coordinator\n",
     "plan.yaml:1:10: monitor: expected both, events or polling, got "
     "'coordinator'"},
    {"timeout: 0s\n",
     "plan.yaml:1:10: timeout: expected a duration > 0 and <= 168h (e.g. "
     "500ms, 30s, 2m), got '0s'"},
    {"start_rate: lots\n",
     "plan.yaml:1:13: start_rate: expected a rate >= 0 (e.g. 500 or 500/s), "
     "got 'lots'"},
    {"thresholds:\n  - p95(end_to_end) < 2s\n  - p95(latency) < 2s\n",
     "plan.yaml:3:5: thresholds[1]: unknown metric 'latency' (known: "
     "end_to_end, queue_wait, pickup, run, complete, failed_rate, "
     "discarded_rate, cancelled_rate, error_rate, retry_rate, throughput, "
     "insert_rate, finished, completed, discarded, cancelled, unfinished, "
     "retried, failed_attempts, started_early)"},
    {"thresholds: p95(run) < 1s\n",
     "plan.yaml:1:13: thresholds: expected a list, got a single value"},
    {"- a\n- b\n",
     "plan.yaml:1:1: plan: expected a mapping of plan keys (name, jobs, "
     "stages, ...)"},
    {"name: [x\n", "plan.yaml:2:1: did not find expected ',' or ']'"},
    {"count: 5\ncount: 6\n", NULL}, /* duplicate: trib_yaml's message */
};

static void test_plan_errors(void **state)
{
    struct stress_plan p;
    char err[640];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        int rv = parse(&p, bads[i].text, err, sizeof(err));
        if (rv != TRIB_EINVAL ||
            (bads[i].err != NULL && strcmp(err, bads[i].err) != 0)) {
            print_error("case %zu: rv %d\n  got:  %s\n  want: %s\n", i, rv, err,
                        bads[i].err ? bads[i].err : "(any)");
            fail();
        }
        assert_true(strncmp(err, "plan.yaml:", 10) == 0);
        stress_plan_fini(&p);
    }
}

/* Plans that parse but are not whole: finish() says why. */
static void test_finish_errors(void **state)
{
    static const struct bad cases[] = {
        {"name: x\n", "no load given: use --jobs N or --stage, or 'count' or "
                      "'stages' in the plan file"},
        {"stages: ['10s:0', '5s:0']\n",
         "plan.yaml: stages: the plan inserts 0 jobs; expected 1..100000000 "
         "(every ramp's rate is 0 or too short for one job)"},
        {"stages: ['24h:10000000', '24h:10000000']\n",
         "plan.yaml: stages: the plan inserts 1296000000000 jobs; expected "
         "1..100000000"},
        {"stages: ['a=5', 'a=6']\n",
         "stages[1]: the name 'a' is also stages[0]'s"},
        {"stages: ['stage-2=5', '6']\n",
         "stages[1]: the name 'stage-2' is also stages[0]'s"},
        {"count: 5\nmixed: {notify_queue: q, poll_queue: q}\n",
         "mixed: notify_queue and poll_queue are both 'q'; they must differ"},
        {"count: 5\nmixed: true\njobs: {queue: other}\n",
         "mixed: sets the queues itself (notify_queue, poll_queue): drop "
         "queue/queues (--queue)"},
        {"count: 5\njobs: {delay: 9m, spread: 1m}\n",
         "timeout: 10m is not longer than delay + spread (10m): no job could "
         "finish in time"},
    };
    struct stress_plan p;
    char err[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(&p, cases[i].text, err, sizeof(err)), 0);
        assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), TRIB_EINVAL);
        if (strcmp(err, cases[i].err) != 0) {
            print_error("case %zu:\n  got:  %s\n  want: %s\n", i, err,
                        cases[i].err);
            fail();
        }
        stress_plan_fini(&p);
    }
}

static int flag(struct stress_plan *p, const char *f, const char *v, char *err)
{
    err[0] = '\0';
    return stress_plan_flag(p, f, v, err, 512);
}

static void test_flags_override_file(void **state)
{
    struct stress_plan p;
    char err[512];

    (void)state;
    assert_int_equal(parse(&p,
                           "jobs: {kind: a, queues: [q1, q2], tags: [t1]}\n"
                           "stages: [10s:100, 20s:100]\n"
                           "thresholds: ['p95(run) < 1s']\n"
                           "timeout: 1m\n",
                           err, sizeof(err)),
                     0);
    assert_int_equal(flag(&p, "kind", "b", err), 0);
    assert_int_equal(flag(&p, "queue", "x,y", err), 0); /* replaces */
    assert_int_equal(flag(&p, "queue", "z", err), 0);   /* appends */
    assert_int_equal(flag(&p, "tag", "t2", err), 0);
    assert_int_equal(flag(&p, "stage", "warm=5s:50", err), 0);
    assert_int_equal(flag(&p, "stage", "1000@250/s", err), 0);
    assert_int_equal(flag(&p, "stage", "500", err), 0);
    assert_int_equal(flag(&p, "threshold", "failed_rate <= 0.5%", err), 0);
    assert_int_equal(flag(&p, "timeout", "90s", err), 0);
    assert_int_equal(flag(&p, "args", "{\"ms\": 1}", err), 0);
    assert_int_equal(flag(&p, "method", "insert", err), 0);
    assert_int_equal(flag(&p, "monitor", "events", err), 0);
    assert_int_equal(flag(&p, "database-url", "host=h password=pw x=1", err),
                     0);
    assert_int_equal(flag(&p, "verbose", NULL, err), TRIB_ENOENT);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_string_equal(p.kind, "b");
    assert_int_equal(p.nqueues, 3);
    assert_string_equal(p.queues[0], "x");
    assert_string_equal(p.queues[2], "z");
    assert_int_equal(p.ntags, 1);
    assert_string_equal(p.tags[0], "t2");
    assert_int_equal(p.nstages, 3);
    assert_string_equal(p.stages[0].name, "warm");
    assert_int_equal(p.stages[0].line, 0);
    assert_int_equal(p.stages[1].count, 1000);
    assert_true(p.stages[1].rate == 250);
    assert_string_equal(p.stages[2].name, "stage-3");
    assert_true(p.stages[2].rate == 0);
    assert_int_equal(stress_plan_jobs(&p), 125 + 1000 + 500);
    assert_int_equal(p.nthresholds, 1);
    assert_true(fabs(p.thresholds[0].limit - 0.005) < 1e-12);
    assert_int_equal(p.timeout_us, 90 * S);
    assert_string_equal(p.args_json, "{\"ms\":1}");
    assert_int_equal(p.method, STRESS_METHOD_INSERT);
    assert_int_equal(p.monitor, STRESS_MONITOR_EVENTS);
    {
        json_t *j = stress_plan_json(&p);
        assert_string_equal(
            json_string_value(json_object_get(j, "database_url")),
            "host=h password=*** x=1");
        json_decref(j);
    }
    stress_plan_fini(&p);

    /* --jobs replaces the file's stages; --rate goes with it. */
    assert_int_equal(parse(&p, "stages: [10s:100]\n", err, sizeof(err)), 0);
    assert_int_equal(flag(&p, "rate", "50/s", err), 0);
    assert_int_equal(flag(&p, "jobs", "4000", err), 0);
    assert_int_equal(flag(&p, "mixed", NULL, err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_int_equal(p.nstages, 1);
    assert_int_equal(p.stages[0].count, 4000);
    assert_true(p.stages[0].rate == 50);
    assert_int_equal(p.nqueues, 2);
    assert_string_equal(p.queues[0], "default");
    assert_string_equal(p.queues[1], "poll");
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0); /* again */
    stress_plan_fini(&p);

    /* --rate alone: the file's single count stage. */
    assert_int_equal(parse(&p, "count: 300\n", err, sizeof(err)), 0);
    assert_int_equal(flag(&p, "rate", "30", err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_true(p.stages[0].rate == 30);
    assert_int_equal(p.nqueues, 1);
    assert_string_equal(p.queues[0], "default");
    stress_plan_fini(&p);
}

/* run.plan.database_url never shows a password, however the URL is
 * written; an URL of many empty passwords grows when redacted (it once
 * overflowed a fixed buffer). */
static void test_plan_json_redacts(void **state)
{
    static const struct {
        const char *url, *want;
    } cases[] = {
        {"postgres://u:secret@h/db", "postgres://u:***@h/db"},
        {"postgres://u@h:5432/db", "postgres://u@h:5432/db"},
        {"host=h password='a b\\' c' x=1", "host=h password=*** x=1"},
        {"postgres://h/db?sslmode=disable&password=pw&x=1",
         "postgres://h/db?sslmode=disable&password=***&x=1"},
    };
    char err[512], many[4096], want[6000];
    struct stress_plan p;
    json_t *j;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stress_plan_init(&p);
        assert_int_equal(flag(&p, "database-url", cases[i].url, err), 0);
        j = stress_plan_json(&p);
        assert_string_equal(
            json_string_value(json_object_get(j, "database_url")),
            cases[i].want);
        json_decref(j);
        stress_plan_fini(&p);
    }
    many[0] = want[0] = '\0';
    for (i = 0; i < 409; i++) { /* 4,090 bytes, the flag's limit is 4,096 */
        strcat(many, "password=&");
        strcat(want, "password=***&");
    }
    stress_plan_init(&p);
    assert_int_equal(flag(&p, "database-url", many, err), 0);
    j = stress_plan_json(&p);
    assert_string_equal(json_string_value(json_object_get(j, "database_url")),
                        want);
    json_decref(j);
    stress_plan_fini(&p);
}

/* Large args bound the batch: a batch's text is built in memory (it once
 * passed and then could not be allocated, or overflowed libpq's int). */
static void test_batch_args(void **state)
{
    static char args[20009];
    char err[512], b[16];
    struct stress_plan p;
    size_t most;

    (void)state;
    memset(args, 'x', sizeof(args) - 1);
    memcpy(args, "{\"a\":\"", 6);
    memcpy(args + sizeof(args) - 3, "\"}", 3); /* 20,008 bytes compact */
    most = (64u << 20) / 20008;
    stress_plan_init(&p);
    assert_int_equal(flag(&p, "args", args, err), 0);
    assert_int_equal(flag(&p, "jobs", "10", err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), TRIB_EINVAL);
    assert_non_null(strstr(err, "insert.batch: 5000 jobs with 20008 bytes"));
    snprintf(b, sizeof(b), "%zu", most + 1);
    assert_int_equal(flag(&p, "batch", b, err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), TRIB_EINVAL);
    snprintf(b, sizeof(b), "%zu", most);
    assert_non_null(strstr(err, b));
    assert_int_equal(flag(&p, "batch", b, err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    stress_plan_fini(&p);
}

static void test_flag_errors(void **state)
{
    static const struct {
        const char *flag, *value, *err;
    } cases[] = {
        {"jobs", "x", "--jobs: expected an integer 1..100000000, got 'x'"},
        {"jobs", "0", "--jobs: expected an integer 1..100000000, got '0'"},
        {"jobs", "100000001",
         "--jobs: expected an integer 1..100000000, got '100000001'"},
        {"jobs", NULL, "--jobs: expects a value"},
        {"rate", "-5",
         "--rate: expected a rate >= 0 (e.g. 500 or 500/s), "
         "got '-5'"},
        {"rate", "20000000",
         "--rate: expected a rate of at most 10000000/s, "
         "got '20000000'"},
        {"stage", "fast",
         "--stage: expected DURATION:TARGET (30s:500), COUNT@RATE "
         "(2000@500/s) or COUNT (2000), optionally after NAME=, got 'fast'"},
        {"stage", "30s:quick",
         "--stage: ramp target: expected a rate >= 0 (e.g. 500 or 500/s), "
         "got 'quick'"},
        {"stage", "2000@",
         "--stage: rate: expected a rate >= 0 (e.g. 500 or 500/s), got ''"},
        {"stage", "warm up=5",
         "--stage: name: expected a stage name of 1..63 letters, digits, _ - "
         "or ., got 'warm up'"},
        {"queue", "a,,b",
         "--queue: expected a queue name: 1-64 lowercase letters and digits "
         "separated by single _ - or |, got ''"},
        {"tag", "a;b",
         "--tag: expected a tag of 1..64 letters, digits, _ or "
         "-, got 'a;b'"},
        {"threshold", "p95(end_to_end) = 2s",
         "--threshold: expected <, <=, > or >= after 'p95(end_to_end)', got "
         "'= 2s'"},
        {"args", "{\"a\":",
         "--args: expected a JSON object: unexpected token "
         "near end of file (column 5)"},
        {"priority", "0", "--priority: expected an integer 1..4, got '0'"},
        {"max-attempts", "40000",
         "--max-attempts: expected an integer 1..32767, got '40000'"},
        {"grace", "2h",
         "--grace: expected a duration <= 1h (e.g. 500ms, "
         "30s, 2m), got '2h'"},
        {"mixed", "maybe",
         "--mixed: expected no value (a switch), true or false, got 'maybe'"},
        {"poll-queue", "Poll",
         "--poll-queue: expected a queue name: 1-64 lowercase letters and "
         "digits separated by single _ - or |, got 'Poll'"},
        {"name", "a\nb",
         "--name: expected UTF-8 text without control "
         "characters, got 'a?b'"},
    };
    struct stress_plan p;
    char err[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        stress_plan_init(&p);
        assert_int_equal(flag(&p, cases[i].flag, cases[i].value, err),
                         TRIB_EINVAL);
        if (strcmp(err, cases[i].err) != 0) {
            print_error("case %zu:\n  got:  %s\n  want: %s\n", i, err,
                        cases[i].err);
            fail();
        }
        stress_plan_fini(&p);
    }
}

static void test_jobs_stage_conflicts(void **state)
{
    struct stress_plan p;
    char err[512];

    (void)state;
    stress_plan_init(&p);
    assert_int_equal(flag(&p, "stage", "10s:5", err), 0);
    assert_int_equal(flag(&p, "jobs", "100", err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), TRIB_EINVAL);
    assert_string_equal(err, "--jobs: cannot be combined with --stage (a "
                             "count stage is --stage 2000 or --stage "
                             "2000@500/s)");
    stress_plan_fini(&p);

    stress_plan_init(&p);
    assert_int_equal(flag(&p, "stage", "10s:5", err), 0);
    assert_int_equal(flag(&p, "rate", "5", err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), TRIB_EINVAL);
    assert_string_equal(err, "--rate: goes with --jobs N (a stage carries its "
                             "own rate: --stage 2000@500/s or --stage "
                             "30s:500)");
    stress_plan_fini(&p);

    stress_plan_init(&p); /* --jobs and --queue with --mixed */
    assert_int_equal(flag(&p, "jobs", "10", err), 0);
    assert_int_equal(flag(&p, "queue", "a", err), 0);
    assert_int_equal(flag(&p, "mixed", NULL, err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), TRIB_EINVAL);
    assert_true(strncmp(err, "mixed: sets the queues itself", 29) == 0);
    stress_plan_fini(&p);

    stress_plan_init(&p); /* defaults */
    assert_int_equal(flag(&p, "jobs", "10", err), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_string_equal(p.name, "stress");
    assert_string_equal(p.kind, "tributary.noop");
    assert_string_equal(p.args_json, "{}");
    assert_int_equal(p.priority, 1);
    assert_int_equal(p.max_attempts, 25);
    assert_string_equal(p.queues[0], "default");
    assert_int_equal(p.batch, 5000);
    assert_int_equal(p.streams, 2);
    assert_int_equal(p.timeout_us, 600 * S);
    assert_int_equal(p.grace_us, 5 * S);
    assert_int_equal(p.monitor, STRESS_MONITOR_BOTH);
    assert_int_equal(p.method, STRESS_METHOD_COPY);
    assert_int_equal(stress_stage_due(&p, 0, 0, NULL), 10); /* asap */
    stress_plan_fini(&p);
}

/* The rate integral, by hand: ramp 10 s from 100/s to 300/s, then 4 s
 * down to 0, with start_rate 100. */
static void test_due_ramps(void **state)
{
    struct stress_plan p;
    char err[512];
    int64_t prev = 0, t, n;
    int done;

    (void)state;
    assert_int_equal(parse(&p,
                           "start_rate: 100\nstages: [10s:300, 4s:0, "
                           "30s:0.1]\n",
                           err, sizeof(err)),
                     0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_true(stress_stage_start_rate(&p, 0) == 100);
    assert_true(stress_stage_start_rate(&p, 1) == 300);
    assert_true(stress_stage_start_rate(&p, 2) == 0);
    assert_int_equal(stress_stage_due(&p, 0, 0, &done), 0);
    assert_int_equal(done, 0);
    /* n(t) = 100 t + 10 t^2 */
    assert_int_equal(stress_stage_due(&p, 0, 1 * S, NULL), 110);
    assert_int_equal(stress_stage_due(&p, 0, 5 * S, NULL), 750);
    assert_int_equal(stress_stage_due(&p, 0, 5 * S + 4000, NULL), 750);
    assert_int_equal(stress_stage_due(&p, 0, 5 * S + 5000, NULL), 751);
    assert_int_equal(stress_stage_due(&p, 0, 10 * S, &done), 2000);
    assert_int_equal(done, 1);
    assert_int_equal(stress_stage_due(&p, 0, 99 * S, NULL), 2000);
    assert_int_equal(stress_stage_due(&p, 0, -5, NULL), 0);
    /* down: n(t) = 300 t - 37.5 t^2 */
    assert_int_equal(stress_stage_due(&p, 1, 2 * S, &done), 450);
    assert_int_equal(done, 0);
    assert_int_equal(stress_stage_due(&p, 1, 4 * S, &done), 600);
    assert_int_equal(done, 1);
    /* 0 -> 0.1/s over 30 s: 1.5 jobs; 0.1 is not exact in binary. */
    assert_int_equal(stress_stage_due(&p, 2, 30 * S, NULL), 1);
    assert_int_equal(stress_plan_jobs(&p), 2000 + 600 + 1);
    for (t = 0; t <= 10 * S; t += 997) { /* never decreases */
        n = stress_stage_due(&p, 0, t, NULL);
        assert_true(n >= prev);
        prev = n;
    }
    for (prev = 0, t = 0; t <= 4 * S; t += 991) {
        n = stress_stage_due(&p, 1, t, NULL);
        assert_true(n >= prev);
        prev = n;
    }
    assert_int_equal(stress_stage_due(&p, 3, S, &done), 0);
    assert_int_equal(done, 1);
    stress_plan_fini(&p);

    /* 0.1/s for 30 s is exactly 3 jobs (exact arithmetic, no 2.999). */
    assert_int_equal(parse(&p,
                           "stages: [{count: 5, rate: 1}, 30s:0.1, "
                           "{duration: 30s, target: 0.1}]\n",
                           err, sizeof(err)),
                     0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_int_equal(stress_stage_due(&p, 1, 30 * S, NULL), 16); /* 1->0.1 */
    assert_int_equal(stress_stage_due(&p, 2, 30 * S, NULL), 3);
    stress_plan_fini(&p);
}

static void test_due_counts(void **state)
{
    struct stress_plan p;
    char err[512];
    int done;

    (void)state;
    assert_int_equal(
        parse(&p, "stages: ['1000@100/s', '50', '7@0.5']\n", err, sizeof(err)),
        0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_int_equal(stress_stage_due(&p, 0, 0, &done), 0);
    assert_int_equal(done, 0);
    assert_int_equal(stress_stage_due(&p, 0, 9999, NULL), 0);
    assert_int_equal(stress_stage_due(&p, 0, 10000, NULL), 1);
    assert_int_equal(stress_stage_due(&p, 0, 2500000, NULL), 250);
    assert_int_equal(stress_stage_due(&p, 0, 100 * S, &done), 1000);
    assert_int_equal(done, 0); /* the inserter decides */
    assert_int_equal(stress_stage_due(&p, 0, INT64_MAX, NULL), 1000);
    assert_int_equal(stress_stage_due(&p, 1, 0, NULL), 50);
    assert_int_equal(stress_stage_due(&p, 2, 13 * S, NULL), 6);
    assert_int_equal(stress_stage_due(&p, 2, 14 * S, NULL), 7);
    assert_true(stress_stage_start_rate(&p, 1) == 100);
    assert_int_equal(stress_plan_jobs(&p), 1057);
    stress_plan_fini(&p);
}

/* docs/STRESS.md's complete example is a valid plan, and says what it
 * says: its first ```yaml block. */
static void test_doc_example(void **state)
{
    FILE *f = fopen(TRIB_SOURCE_DIR "/docs/STRESS.md", "r");
    char line[512], err[512], *text = calloc(1, 65536);
    struct stress_plan p;
    int in = 0;
    size_t len = 0;

    (void)state;
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (in && strncmp(line, "```", 3) == 0) {
            break;
        }
        if (in && len + strlen(line) < 65536) {
            memcpy(text + len, line, strlen(line) + 1);
            len += strlen(line);
        }
        in |= strncmp(line, "```yaml", 7) == 0;
    }
    fclose(f);
    assert_true(len > 500);
    assert_int_equal(parse(&p, text, err, sizeof(err)), 0);
    assert_int_equal(stress_plan_finish(&p, err, sizeof(err)), 0);
    assert_string_equal(p.name, "mixed-demo");
    assert_int_equal(p.nstages, 4);
    assert_string_equal(p.stages[3].name, "cool-down");
    /* 1000 + 4000 + 3000 + 5 s from 400/s to 0 (1000) */
    assert_int_equal(stress_plan_jobs(&p), 9000);
    assert_int_equal(p.nthresholds, 5);
    assert_int_equal(p.thresholds[1].line, 35);
    assert_string_equal(p.queues[1], "poll");
    stress_plan_fini(&p);
    free(text);
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/stress_plan_testXXXXXX", err[512];
    struct stress_plan p;
    int fd = mkstemp(path);
    FILE *f;

    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs("count: 10\njobs:\n  kind: 5x\n  priority: high\n", f);
    fclose(f);
    stress_plan_init(&p);
    assert_int_equal(stress_plan_load(&p, path, err, sizeof(err)), TRIB_EINVAL);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_string_equal(err + strlen(path),
                        ":4:13: jobs.priority: expected an integer 1..4, got "
                        "'high'");
    stress_plan_fini(&p);
    unlink(path);

    stress_plan_init(&p);
    assert_int_equal(stress_plan_load(&p, path, err, sizeof(err)), TRIB_EIO);
    assert_true(strstr(err, "cannot open the plan") != NULL);
    stress_plan_fini(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_plan),
        cmocka_unit_test(test_plan_errors),
        cmocka_unit_test(test_finish_errors),
        cmocka_unit_test(test_flags_override_file),
        cmocka_unit_test(test_plan_json_redacts),
        cmocka_unit_test(test_batch_args),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_jobs_stage_conflicts),
        cmocka_unit_test(test_due_ramps),
        cmocka_unit_test(test_due_counts),
        cmocka_unit_test(test_doc_example),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
