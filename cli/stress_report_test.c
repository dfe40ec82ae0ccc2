/*
 * stress_report_test.c -- the stress run's records and report document
 * (cli/stress_report.h, docs/REPORT.md) from synthetic events and rows:
 * counts, exact quantiles, breakdowns, stage attribution, failure groups,
 * series, CDF, monitors, mixed, climb; repeated and reordered input.
 * More in stress_report_scale_test.c (one executable).
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

#include "events.h"
#include "stress_rec_int.h"
#include "stress_report.h"
#include "stress_report_test.h"

/* ------------------------------------------------------------ helpers */

/* "a.b.2.c": object keys and array indexes. */
json_t *jp(const json_t *o, const char *path)
{
    char buf[256], *tok, *save = NULL;
    const json_t *cur = o;

    snprintf(buf, sizeof(buf), "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save)) {
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
                                 : json_object_get(cur, tok);
    }
    if (cur == NULL) {
        fail_msg("no %s in the document", path);
    }
    return (json_t *)cur;
}

int64_t ji(const json_t *o, const char *path)
{
    const json_t *v = jp(o, path);

    if (!json_is_integer(v)) {
        fail_msg("%s is not an integer", path);
    }
    return json_integer_value(v);
}

double jr(const json_t *o, const char *path)
{
    const json_t *v = jp(o, path);

    if (!json_is_number(v)) {
        fail_msg("%s is not a number", path);
    }
    return json_number_value(v);
}

void near(double got, double want, const char *what)
{
    if (fabs(got - want) > 1e-9 * (1 + fabs(want))) {
        fail_msg("%s = %.6f, want %.6f", what, got, want);
    }
}

/* The breakdown entry of dimension dim with key. */
json_t *entry(const json_t *doc, const char *dim, const char *key)
{
    const json_t *arr = jp(doc, "breakdowns"), *e;
    size_t i;

    arr = json_object_get(arr, dim);
    json_array_foreach(arr, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "key")), key) == 0) {
            return (json_t *)e;
        }
    }
    fail_msg("no %s entry '%s'", dim, key);
    return NULL;
}

int64_t sum(const json_t *arr)
{
    const json_t *v;
    int64_t n = 0;
    size_t i;

    json_array_foreach(arr, i, v)
    {
        n += json_integer_value(v);
    }
    return n;
}

struct trib_wire_event ev(int kind, int64_t id, int attempt, const char *client,
                          const char *queue, int state, int64_t due,
                          int64_t att, int64_t fin, const char *err, int64_t at)
{
    struct trib_wire_event e;

    memset(&e, 0, sizeof(e));
    e.kind = kind;
    e.client_id = trib_str_c(client);
    e.job_id = id;
    e.attempt = attempt;
    e.max_attempts = 2;
    e.queue = trib_str_c(queue);
    e.job_kind = trib_str_c(KIND);
    e.state = state;
    e.created_at = T0 + 100 * MS;
    e.scheduled_at = due;
    e.attempted_at = att;
    e.finalized_at = fin;
    e.queue_wait_us = att - due;
    e.run_us = at - att - 100;
    e.complete_us = 100;
    e.error = trib_str_c(err);
    e.at = at;
    return e;
}

void feed(struct stress_rec *r, const char *node, struct trib_wire_event e)
{
    stress_rec_event(r, node, strlen(node), &e);
}

void row(struct stress_rec *r, int64_t id, const char *state, const char *queue,
         int attempt, int64_t sched, int64_t att, int64_t fin, int64_t due,
         int stage, const char *client, int nerrors, const char *last_error)
{
    struct stress_db_row w;

    memset(&w, 0, sizeof(w));
    w.id = id;
    w.state = state;
    w.queue = queue;
    w.kind = KIND;
    w.attempt = attempt;
    w.max_attempts = 2;
    w.created_at = T0 + 100 * MS;
    w.scheduled_at = sched;
    w.attempted_at = att;
    w.finalized_at = fin;
    w.due_us = due;
    w.stage = stage;
    w.last_client = client;
    w.nerrors = nerrors;
    w.last_error = last_error;
    stress_rec_db_row(r, &w);
}

/* ------------------------------------------------------------ fixture */

/* Due times of the eight jobs (see feed_events / feed_rows). */
static const int64_t DUE[9] = {0,          T0 + 500 * MS,  T0 + 2 * S,
                               T0 + 3 * S, T0 + 6500 * MS, T0 + 6600 * MS,
                               T0 + 7 * S, T0 + 4 * S,     T0 + 6700 * MS};

/* 1 completes (its event twice); 2 fails on n2 then completes on n1;
 * 3 fails twice on n2 (discarded); 4 has no event (timed out, discarded);
 * 5 is snoozed twice (one snooze event repeated) then completes;
 * 6 is never attempted; 7 has events only; 8 starts early on n1 and is
 * cancelled with an error. */
static void feed_events(struct stress_rec *r)
{
    const int64_t *d = DUE;
    int n;

    for (n = 0; n < 2; n++) {
        feed(r, "n1",
             ev(TRIB_EV_JOB_COMPLETED, 1, 1, "n1-c1", "default",
                TRIB_WS_COMPLETED, d[1], d[1] + 10 * MS, d[1] + 20 * MS, NULL,
                d[1] + 20 * MS));
    }
    feed(r, "n2",
         ev(TRIB_EV_JOB_FAILED, 2, 1, "n2-c1", "default", TRIB_WS_RETRYABLE,
            d[2], d[2] + 5 * MS, 0, "card 1234 declined", d[2] + 15 * MS));
    feed(r, "n1",
         ev(TRIB_EV_JOB_COMPLETED, 2, 2, "n1-c1", "default", TRIB_WS_COMPLETED,
            d[2] + S, d[2] + 1005 * MS, d[2] + 1040 * MS, NULL,
            d[2] + 1040 * MS));
    feed(r, "n2",
         ev(TRIB_EV_JOB_FAILED, 3, 1, "n2-c1", "poll", TRIB_WS_RETRYABLE, d[3],
            d[3] + 10 * MS, 0, "card 5678 declined", d[3] + 20 * MS));
    feed(r, "n2",
         ev(TRIB_EV_JOB_FAILED, 3, 2, "n2-c1", "poll", TRIB_WS_DISCARDED,
            d[3] + 2 * S, d[3] + 2010 * MS, d[3] + 2030 * MS,
            "card 5678 declined", d[3] + 2030 * MS));
    for (n = 0; n < 2; n++) {
        feed(r, "n1",
             ev(TRIB_EV_JOB_SNOOZED, 5, 0, "n1-c1", "default",
                TRIB_WS_SCHEDULED, d[5], d[5] + 5 * MS, 0, NULL,
                d[5] + 10 * MS));
    }
    feed(r, "n1",
         ev(TRIB_EV_JOB_SNOOZED, 5, 0, "n1-c1", "default", TRIB_WS_SCHEDULED,
            d[5] + S, d[5] + 1005 * MS, 0, NULL, d[5] + 1010 * MS));
    feed(r, "n1",
         ev(TRIB_EV_JOB_COMPLETED, 5, 1, "n1-c1", "default", TRIB_WS_COMPLETED,
            d[5] + 2 * S, d[5] + 2005 * MS, d[5] + 2010 * MS, NULL,
            d[5] + 2010 * MS));
    feed(r, "n1",
         ev(TRIB_EV_JOB_COMPLETED, 7, 1, "n1-c1", "default", TRIB_WS_COMPLETED,
            d[7], d[7] + 10 * MS, d[7] + 60 * MS, NULL, d[7] + 60 * MS));
    feed(r, "n1",
         ev(TRIB_EV_JOB_CANCELLED, 8, 1, "n1-c1", "poll", TRIB_WS_CANCELLED,
            d[8], d[8] - 100 * MS, d[8] + 100 * MS, "cancelled by user 42",
            d[8] + 100 * MS));
}

static void feed_rows(struct stress_rec *r)
{
    const int64_t *d = DUE;

    row(r, 1, "completed", "default", 1, d[1], d[1] + 10 * MS, d[1] + 20 * MS,
        d[1], 0, "n1-c1", 0, NULL);
    row(r, 2, "completed", "default", 2, d[2] + S, d[2] + 1005 * MS,
        d[2] + 1040 * MS, d[2], 1, "n1-c1", 1, "card 1234 declined");
    row(r, 3, "discarded", "poll", 2, d[3] + 2 * S, d[3] + 2010 * MS,
        d[3] + 2030 * MS, d[3], 1, "n2-c1", 2, "card 5678 declined");
    row(r, 4, "discarded", "poll", 1, d[4], d[4] + 50 * MS, d[4] + 5050 * MS,
        d[4], 2, "n2-c1", 1, "job timed out after 5s");
    row(r, 5, "completed", "default", 1, d[5] + 2 * S, d[5] + 2005 * MS,
        d[5] + 2010 * MS, d[5], 2, "n1-c1", 0, NULL);
    row(r, 6, "available", "default", 0, d[6], 0, 0, d[6], 2, NULL, 0, NULL);
    row(r, 8, "cancelled", "poll", 1, d[8], d[8] - 100 * MS, d[8] + 100 * MS,
        d[8], 2, "n1-c1", 1, "cancelled by user 42");
}

void plan3(struct stress_plan *p)
{
    stress_plan_init(p);
    snprintf(p->name, sizeof(p->name), "test");
    p->nstages = 3;
    snprintf(p->stages[0].name, STRESS_NAME_MAX, "warm");
    p->stages[0].count = 10;
    p->stages[0].rate = 10;
    snprintf(p->stages[1].name, STRESS_NAME_MAX, "ramp");
    p->stages[1].duration_us = 5 * S;
    p->stages[1].target = 20;
    snprintf(p->stages[2].name, STRESS_NAME_MAX, "peak");
    p->stages[2].count = 20;
    p->mixed = 1;
    snprintf(p->notify_queue, sizeof(p->notify_queue), "default");
    snprintf(p->poll_queue, sizeof(p->poll_queue), "poll");
    p->nqueues = 2;
    snprintf(p->queues[0], STRESS_QUEUE_MAX, "default");
    snprintf(p->queues[1], STRESS_QUEUE_MAX, "poll");
}

static int64_t st_start[3] = {T0, T0 + S, T0 + 6 * S};
static int64_t st_end[3] = {T0 + S, T0 + 6 * S, T0 + 6200 * MS};
static int64_t st_planned[3] = {10, 75, 20};
static int64_t st_inserted[3] = {1, 2, 4};

static void info3(struct stress_run_info *in, const struct stress_plan *p,
                  json_t *modes)
{
    memset(in, 0, sizeof(*in));
    in->plan = p;
    in->run_id = "20270115-080000-abcd";
    in->run_tag = "tributary-run-20270115-080000-abcd";
    in->database = "127.0.0.1:5432/t";
    in->control = "tcp://127.0.0.1:7101";
    in->started_us = T0;
    in->insert_ended_us = T0 + 6200 * MS;
    in->ended_us = T0 + 12500 * MS;
    in->outcome = "finished";
    in->nstages = 3;
    in->stage_planned = st_planned;
    in->stage_inserted = st_inserted;
    in->stage_started_us = st_start;
    in->stage_ended_us = st_end;
    in->inserted = 8;
    in->db_states[TRIB_WS_COMPLETED] = 4;
    in->db_states[TRIB_WS_DISCARDED] = 2;
    in->db_states[TRIB_WS_CANCELLED] = 1;
    in->db_states[TRIB_WS_AVAILABLE] = 1;
    in->db_polled_us = T0 + 12 * S;
    in->events_seen = 13;
    in->coord_finished = 7;
    in->modes_db = modes;
}

static struct stress_rec *fixture(int rows_first)
{
    struct stress_rec *r = stress_rec_new();

    stress_rec_client(r, "n1-c1", "n1", "notify");
    stress_rec_client(r, "n2-c1", "n2", "poll");
    if (rows_first) {
        feed_rows(r);
        feed_events(r);
        feed_events(r); /* everything again: nothing counts twice */
        feed_rows(r);
    } else {
        feed_events(r);
        feed_rows(r);
    }
    return r;
}

static json_t *build3(struct stress_rec *r, struct stress_plan *p,
                      struct stress_run_info *in)
{
    json_t *doc = stress_report_build(r, in);
    char *text;

    assert_non_null(doc);
    text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text); /* serialisable */
    free(text);
    (void)p;
    return doc;
}

/* -------------------------------------------------------------- tests */

static void test_records(void **state)
{
    struct stress_rec *r = fixture(0);
    int64_t c, d, x;

    (void)state;
    assert_int_equal(stress_rec_jobs(r), 8);
    assert_int_equal(stress_rec_finished(r), 7); /* job 7 by its event */
    stress_rec_event_tally(r, &c, &d, &x);
    assert_int_equal(c, 4); /* 1 2 5 7 */
    assert_int_equal(d, 1); /* 3 (4 had no event) */
    assert_int_equal(x, 1); /* 8 */
    /* job 1's repeated event and job 5's repeated snooze: kept once */
    assert_int_equal(r->nevs, 10);
    stress_rec_free(r);
    stress_rec_free(NULL);
}

static void test_counts(void **state)
{
    struct stress_plan p;
    struct stress_run_info in;
    struct stress_rec *r = fixture(0);
    json_t *doc;

    (void)state;
    plan3(&p);
    info3(&in, &p, NULL);
    doc = build3(r, &p, &in);
    assert_string_equal(json_string_value(jp(doc, "schema")),
                        "tributary.stress.report/1");
    assert_int_equal(ji(doc, "counts.planned"), 105);
    assert_int_equal(ji(doc, "counts.inserted"), 8);
    assert_int_equal(ji(doc, "counts.finished"), 7);
    assert_int_equal(ji(doc, "counts.completed"), 4);
    assert_int_equal(ji(doc, "counts.discarded"), 2);
    assert_int_equal(ji(doc, "counts.cancelled"), 1);
    assert_int_equal(ji(doc, "counts.unfinished"), 1);
    assert_int_equal(ji(doc, "counts.unfinished_by_state.available"), 1);
    assert_int_equal(ji(doc, "counts.attempts"), 9);
    assert_int_equal(ji(doc, "counts.failed_attempts"), 5);
    assert_int_equal(ji(doc, "counts.retried"), 2);
    assert_int_equal(ji(doc, "counts.snoozed"), 1);
    assert_int_equal(ji(doc, "counts.timeouts"), 1);
    assert_int_equal(ji(doc, "counts.started_early"), 1); /* job 8 */
    near(jr(doc, "rates.failed_rate"), 3.0 / 7, "failed_rate");
    near(jr(doc, "rates.error_rate"), 5.0 / 9, "error_rate");
    near(jr(doc, "rates.retry_rate"), 2.0 / 7, "retry_rate");
    /* 7 jobs from the first due (0.5 s) to the last finish (11.55 s) */
    near(jr(doc, "rates.throughput"), 7 / 11.05, "throughput");
    near(jr(doc, "rates.insert_rate"), 8 / 6.2, "insert_rate");
    assert_true(json_is_array(jp(doc, "thresholds")));
    assert_true(json_is_true(jp(doc, "thresholds_passed")));
    assert_string_equal(json_string_value(jp(doc, "run.started_at")),
                        "2027-01-15T08:00:00.000000Z");
    near(jr(doc, "run.duration_s"), 12.5, "duration_s");
    json_decref(doc);
    stress_rec_free(r);
    stress_plan_fini(&p);
}

static void test_latency(void **state)
{
    struct stress_plan p;
    struct stress_run_info in;
    struct stress_rec *r = fixture(0);
    json_t *doc, *h, *b;
    int64_t n = 0;
    size_t i;

    (void)state;
    plan3(&p);
    info3(&in, &p, NULL);
    doc = build3(r, &p, &in);
    /* end to end (ms): 20 60 100 1040 2010 2030 5050 */
    assert_int_equal(ji(doc, "latency_ms.end_to_end.count"), 7);
    near(jr(doc, "latency_ms.end_to_end.min"), 20, "min");
    near(jr(doc, "latency_ms.end_to_end.p50"), 1040, "p50");
    near(jr(doc, "latency_ms.end_to_end.p90"), 5050, "p90");
    near(jr(doc, "latency_ms.end_to_end.max"), 5050, "max");
    near(jr(doc, "latency_ms.end_to_end.avg"), 1472.857, "avg");
    /* pickup (ms): -100 5 5 10 10 10 50; job 5's from its first run */
    assert_int_equal(ji(doc, "latency_ms.pickup.count"), 7);
    near(jr(doc, "latency_ms.pickup.min"), -100, "pickup min");
    near(jr(doc, "latency_ms.pickup.p50"), 10, "pickup p50");
    near(jr(doc, "latency_ms.pickup.max"), 50, "pickup max");
    /* per attempt: ten kept events */
    assert_int_equal(ji(doc, "latency_ms.run.count"), 10);
    assert_int_equal(ji(doc, "latency_ms.queue_wait.count"), 10);
    near(jr(doc, "latency_ms.complete.p99"), 0.1, "complete");
    /* histogram: 1-2-5 buckets, both empty ends left out */
    h = jp(doc, "latency_ms.end_to_end.histogram");
    near(jr(h, "0.le"), 20, "first bucket");
    near(jr(h, "8.le"), 10000, "last bucket");
    assert_int_equal(json_array_size(h), 9);
    json_array_foreach(h, i, b)
    {
        n += ji(b, "count");
    }
    assert_int_equal(n, 7);
    assert_int_equal(ji(h, "2.count"), 2); /* 60, 100 <= 100 ms */
    /* no histogram in breakdowns */
    assert_null(json_object_get(
        jp(entry(doc, "node", "n1"), "latency_ms.end_to_end"), "histogram"));
    json_decref(doc);
    stress_rec_free(r);
    stress_plan_fini(&p);
}

static void test_breakdowns(void **state)
{
    struct stress_plan p;
    struct stress_run_info in;
    struct stress_rec *r = fixture(0);
    json_t *doc, *e;

    (void)state;
    plan3(&p);
    info3(&in, &p, NULL);
    doc = build3(r, &p, &in);
    /* a job counts for the node that finished it */
    e = entry(doc, "node", "n1");
    assert_int_equal(ji(e, "jobs"), 5); /* 1 2 5 7 8 */
    assert_int_equal(ji(e, "completed"), 4);
    assert_int_equal(ji(e, "cancelled"), 1);
    assert_string_equal(json_string_value(jp(e, "mode")), "notify");
    /* ... an attempt for the node that ran it (2's first, 3's two) */
    assert_int_equal(ji(e, "latency_ms.run.count"), 7);
    e = entry(doc, "node", "n2");
    assert_int_equal(ji(e, "jobs"), 2); /* 3, and 4 through its row */
    assert_int_equal(ji(e, "discarded"), 2);
    assert_int_equal(ji(e, "latency_ms.run.count"), 3);
    e = entry(doc, "node", "(none)");
    assert_int_equal(ji(e, "jobs"), 1);
    assert_true(json_is_null(jp(e, "node")));
    e = entry(doc, "client", "n2-c1");
    assert_string_equal(json_string_value(jp(e, "node")), "n2");
    assert_string_equal(json_string_value(jp(e, "mode")), "poll");
    assert_int_equal(ji(entry(doc, "mode", "notify"), "jobs"), 5);
    assert_int_equal(ji(entry(doc, "mode", "poll"), "jobs"), 2);
    assert_int_equal(ji(entry(doc, "mode", "(none)"), "jobs"), 1);
    e = entry(doc, "queue", "default");
    assert_int_equal(ji(e, "jobs"), 5);
    assert_string_equal(json_string_value(jp(e, "mode")), "notify");
    e = entry(doc, "queue", "poll");
    assert_int_equal(ji(e, "jobs"), 3);
    assert_string_equal(json_string_value(jp(e, "mode")), "mixed");
    /* "(none)"/"(unknown)" entries come last */
    assert_string_equal(json_string_value(jp(doc, "breakdowns.node.2.key")),
                        "(none)");
    /* stages: a job belongs to the stage it was inserted in */
    assert_int_equal(ji(entry(doc, "stage", "warm"), "jobs"), 1);
    assert_int_equal(ji(entry(doc, "stage", "ramp"), "jobs"), 2);
    assert_int_equal(ji(entry(doc, "stage", "peak"), "jobs"), 4);
    assert_int_equal(ji(entry(doc, "stage", "(none)"), "jobs"), 1);
    assert_int_equal(ji(doc, "stages.2.finished"), 3);
    assert_int_equal(ji(doc, "stages.2.discarded"), 1);
    assert_int_equal(ji(doc, "stages.2.latency_ms.end_to_end.count"), 3);
    assert_int_equal(ji(doc, "stages.1.index"), 1);
    assert_string_equal(json_string_value(jp(doc, "stages.1.form")), "ramp");
    assert_true(json_is_null(jp(doc, "stages.1.count")));
    assert_string_equal(json_string_value(jp(doc, "stages.2.form")), "count");
    assert_true(json_is_null(jp(doc, "stages.2.rate"))); /* as fast as can */
    assert_int_equal(ji(doc, "stages.0.inserted"), 1);
    json_decref(doc);
    stress_rec_free(r);
    stress_plan_fini(&p);
}

static void test_failures(void **state)
{
    struct stress_plan p;
    struct stress_run_info in;
    struct stress_rec *r = fixture(0);
    json_t *doc, *f;

    (void)state;
    plan3(&p);
    info3(&in, &p, NULL);
    doc = build3(r, &p, &in);
    f = jp(doc, "failures");
    assert_int_equal(json_array_size(f), 3);
    assert_string_equal(json_string_value(jp(f, "0.error")), "card N declined");
    assert_string_equal(json_string_value(jp(f, "0.kind")), KIND);
    assert_int_equal(ji(f, "0.attempts"), 3);
    assert_int_equal(ji(f, "0.jobs"), 2);
    assert_int_equal(ji(f, "0.discarded"), 1);
    assert_int_equal(ji(f, "0.retried"), 2);
    assert_int_equal(ji(f, "0.sample_job_ids.0"), 3); /* most recent first */
    assert_int_equal(ji(f, "0.sample_job_ids.1"), 2);
    assert_int_equal(json_array_size(jp(f, "0.queues")), 2);
    assert_string_equal(json_string_value(jp(f, "0.nodes.0")), "n2");
    /* same attempts: by kind, then text */
    assert_string_equal(json_string_value(jp(f, "1.error")),
                        "cancelled by user N");
    assert_int_equal(ji(f, "1.cancelled"), 1);
    assert_string_equal(json_string_value(jp(f, "1.nodes.0")), "n1");
    /* from the row alone (no event): node through the client map */
    assert_string_equal(json_string_value(jp(f, "2.error")),
                        "job timed out after Ns");
    assert_int_equal(ji(f, "2.attempts"), 1);
    assert_int_equal(ji(f, "2.timeouts"), 1);
    assert_int_equal(ji(f, "2.discarded"), 1);
    assert_string_equal(json_string_value(jp(f, "2.nodes.0")), "n2");
    assert_int_equal(ji(f, "2.sample_job_ids.0"), 4);
    assert_int_equal(ji(f, "0.attempts") + ji(f, "1.attempts") +
                         ji(f, "2.attempts"),
                     ji(doc, "counts.failed_attempts"));
    json_decref(doc);
    stress_rec_free(r);
    stress_plan_fini(&p);
}

static void test_series(void **state)
{
    struct stress_plan p;
    struct stress_run_info in;
    struct stress_rec *r = fixture(0);
    json_t *doc, *s, *pt, *prev = NULL;
    int64_t want = 0;
    size_t i, n;
    int k;

    (void)state;
    plan3(&p);
    info3(&in, &p, NULL);
    doc = build3(r, &p, &in);
    s = jp(doc, "series");
    n = json_array_size(jp(s, "t"));
    assert_int_equal(n, 13); /* through 12.5 s */
    assert_int_equal(sum(jp(s, "finished")), 7);
    assert_int_equal(sum(jp(s, "failed")), 3);
    assert_int_equal(sum(jp(s, "errors")), 5);
    assert_int_equal(sum(jp(s, "due")), 8);
    assert_int_equal(sum(jp(s, "inserted")), 8);
    assert_int_equal(ji(s, "finished.0"), 1); /* job 1 at 0.52 s */
    assert_int_equal(ji(s, "backlog.0"), 0);
    assert_int_equal(ji(s, "backlog.2"), 1);  /* job 2: due 2 s, done 3.04 */
    assert_int_equal(ji(s, "backlog.12"), 1); /* job 6, never attempted */
    assert_int_equal(ji(s, "stage.0"), 0);
    assert_int_equal(ji(s, "stage.3"), 1);
    assert_int_equal(ji(s, "stage.6"), 2);
    assert_int_equal(ji(s, "stage.9"), -1);
    assert_true(json_is_null(jp(s, "end_to_end_ms.p50.1")));
    near(jr(s, "end_to_end_ms.p95.3"), 1040, "p95 at 3 s");
    near(jr(s, "pickup_ms.p50.0"), 10, "pickup at 0 s");
    /* the schedule: every stage's jobs over its window */
    for (k = 0; k < 3; k++) {
        want += stress_stage_due(&p, k, st_end[k] - st_start[k], NULL);
    }
    assert_int_equal(sum(jp(s, "target_rate")), want);
    /* cdf: monotone, ends at the max with fraction 1 */
    json_array_foreach(jp(doc, "cdf.end_to_end"), i, pt)
    {
        if (prev != NULL) {
            assert_true(jr(pt, "0") >= jr(prev, "0"));
            assert_true(jr(pt, "1") > jr(prev, "1"));
        }
        prev = pt;
    }
    near(jr(prev, "0"), 5050, "cdf max");
    near(jr(prev, "1"), 1, "cdf top");
    assert_int_equal(json_array_size(jp(doc, "cdf.pickup_by_mode.notify")), 5);
    /* job 2 (stage 'ramp') took 1040 ms, alone in its second: no climb
     * (test_climb has the real ones) */
    assert_true(json_is_null(jp(doc, "climb")));
    json_decref(doc);
    stress_rec_free(r);
    stress_plan_fini(&p);
}

static void test_monitors_mixed(void **state)
{
    struct stress_plan p;
    struct stress_run_info in;
    struct stress_rec *r = fixture(0);
    json_t *doc, *modes = json_pack("{s{si}s{si}}", "notify", "clients", 1,
                                    "poll", "clients", 1);

    (void)state;
    plan3(&p);
    info3(&in, &p, modes);
    doc = build3(r, &p, &in);
    assert_false(json_is_true(jp(doc, "monitors.agree")));
    assert_int_equal(json_array_size(jp(doc, "monitors.disagreements")), 2);
    assert_string_equal(
        json_string_value(jp(doc, "monitors.disagreements.0.what")),
        "finished");
    assert_int_equal(ji(doc, "monitors.disagreements.1.events"), 1);
    assert_int_equal(ji(doc, "monitors.disagreements.1.database"), 2);
    assert_int_equal(ji(doc, "monitors.events.coordinator_finished"), 7);
    assert_int_equal(ji(doc, "monitors.polling.states.available"), 1);
    assert_int_equal(ji(doc, "mixed.notify.jobs"), 5);
    assert_int_equal(ji(doc, "mixed.notify.finished"), 4);
    assert_int_equal(ji(doc, "mixed.notify.clients"), 1);
    assert_int_equal(ji(doc, "mixed.poll.jobs"), 3);
    assert_int_equal(ji(doc, "mixed.poll.latency_ms.pickup.count"), 3);
    assert_int_equal(ji(doc, "mixed.poll.db.clients"), 1);
    assert_true(json_is_null(jp(doc, "resources")));
    json_decref(doc);
    /* the database agrees once job 4's discard reached the events */
    feed(r, "n2",
         ev(TRIB_EV_JOB_FAILED, 4, 1, "n2-c1", "poll", TRIB_WS_DISCARDED,
            DUE[4], DUE[4] + 50 * MS, DUE[4] + 5050 * MS,
            "job timed out after 5s", DUE[4] + 5050 * MS));
    in.resources = json_pack("{si}", "interval_s", 1);
    doc = build3(r, &p, &in);
    assert_true(json_is_true(jp(doc, "monitors.agree")));
    assert_int_equal(json_array_size(jp(doc, "monitors.disagreements")), 0);
    assert_int_equal(ji(doc, "resources.interval_s"), 1);
    assert_int_equal(ji(doc, "counts.failed_attempts"), 5); /* not 6 */
    json_decref(doc);
    json_decref(in.resources);
    json_decref(modes);
    stress_rec_free(r);
    stress_plan_fini(&p);
}

/* Rows first, then every event twice, then the rows again: the same
 * document as events then rows. */
static void test_order(void **state)
{
    static const char *const keys[] = {"counts",     "latency_ms", "stages",
                                       "breakdowns", "series",     "cdf",
                                       "failures",   "monitors",   "climb"};
    struct stress_plan p;
    struct stress_run_info in;
    struct stress_rec *a = fixture(0), *b = fixture(1);
    json_t *da, *db;
    size_t i;

    (void)state;
    plan3(&p);
    info3(&in, &p, NULL);
    da = build3(a, &p, &in);
    db = build3(b, &p, &in);
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!json_equal(jp(da, keys[i]), jp(db, keys[i]))) {
            char *x = json_dumps(jp(da, keys[i]), JSON_COMPACT);
            char *y = json_dumps(jp(db, keys[i]), JSON_COMPACT);
            print_error("%s differs:\n%s\n%s\n", keys[i], x, y);
            free(x);
            free(y);
            fail();
        }
    }
    json_decref(da);
    json_decref(db);
    stress_rec_free(a);
    stress_rec_free(b);
    stress_plan_fini(&p);
}

/* 1000 jobs, end to end 1..1000 ms in shuffled order: exact ranks. */
/* The id of string s in r's table (0 when absent). */
static uint32_t str_id(const struct stress_rec *r, const char *s)
{
    uint32_t i;

    for (i = 1; i < r->str.n; i++) {
        if (strcmp(rec_str(r, i), s) == 0) {
            return i;
        }
    }
    return 0;
}

/* A client's node and mode are kept whichever interning grows the string
 * table: the node's or the mode's may move the client map while it is
 * written (the write once went to the old array). */
static void test_client_map_growth(void **state)
{
    struct stress_rec *r;
    char name[32];
    uint32_t c;
    int k, i;

    (void)state;
    for (k = 55; k < 70; k++) { /* the table grows at 64 strings */
        r = stress_rec_new();
        for (i = 0; i < k; i++) {
            snprintf(name, sizeof(name), "other-%d", i);
            stress_rec_client(r, name, NULL, NULL);
        }
        stress_rec_client(r, "the-client", "the-node", "poll");
        c = str_id(r, "the-client");
        assert_true(c != 0);
        assert_int_equal(r->str.cnode[c], str_id(r, "the-node"));
        assert_int_equal(r->str.cmode[c], str_id(r, "poll"));
        stress_rec_free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_breakdowns),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_series),
        cmocka_unit_test(test_monitors_mixed),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_client_map_growth),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_climb),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_million),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
