/*
 * stress_report_scale_test.c -- more of cli_stress_report_test (main in
 * stress_report_test.c): exact quantiles over 1000 jobs, the climb, a
 * report of nothing, nonsense input, and a build over 1,000,000 jobs
 * (timed and measured, printed; no timing assertion).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "stress_rec_int.h"
#include "stress_report_test.h"
#include "trib_time.h"

void test_quantiles(void **state)
{
    struct stress_run_info in;
    struct stress_rec *r = stress_rec_new();
    json_t *doc, *pt, *prev = NULL;
    int64_t i, v, n = 0;
    size_t k;

    (void)state;
    for (i = 0; i < 1000; i++) {
        v = (i * 7919) % 1000 + 1;
        row(r, 100 + i, "completed", "q", 1, T0 + i * MS, T0 + i * MS + 1,
            T0 + i * MS + v * MS, T0 + i * MS, -1, "c", 0, NULL);
    }
    memset(&in, 0, sizeof(in));
    in.started_us = T0;
    in.ended_us = T0 + 5 * S;
    in.inserted = 1000;
    doc = stress_report_build(r, &in);
    near(jr(doc, "latency_ms.end_to_end.min"), 1, "min");
    near(jr(doc, "latency_ms.end_to_end.p50"), 500, "p50");
    near(jr(doc, "latency_ms.end_to_end.p90"), 900, "p90");
    near(jr(doc, "latency_ms.end_to_end.p95"), 950, "p95");
    near(jr(doc, "latency_ms.end_to_end.p99"), 990, "p99");
    near(jr(doc, "latency_ms.end_to_end.max"), 1000, "max");
    near(jr(doc, "latency_ms.end_to_end.avg"), 500.5, "avg");
    near(jr(doc, "latency_ms.pickup.max"), 0.001, "pickup");
    json_array_foreach(jp(doc, "latency_ms.end_to_end.histogram"), k, pt)
    {
        n += ji(pt, "count");
    }
    assert_int_equal(n, 1000);
    assert_true(json_array_size(jp(doc, "cdf.end_to_end")) <= 200);
    json_array_foreach(jp(doc, "cdf.end_to_end"), k, pt)
    {
        if (prev != NULL) {
            assert_true(jr(pt, "0") > jr(prev, "0"));
            assert_true(jr(pt, "1") > jr(prev, "1"));
        }
        /* each point is a true quantile: value = fraction x 1000 */
        assert_true(fabs(jr(pt, "0") - jr(pt, "1") * 1000) < 1e-6);
        prev = pt;
    }
    near(jr(prev, "0"), 1000, "cdf max");
    /* attempted by a client the map does not know: "(unknown)" mode */
    assert_int_equal(ji(entry(doc, "mode", "(unknown)"), "jobs"), 1000);
    json_decref(doc);
    stress_rec_free(r);
}

/* Two stages, ten jobs a second; the second stage's jobs finish late
 * (overload) or on time plus one job a second that never finishes. */
/* Two stages of 10 s. mode 0: steady (a backlog growing 1, 2, 3, 4);
 * 1: the second stage's jobs all finish at 30 s (backlog climb); 2: 40
 * jobs a second, end-to-end 5 ms, then 400 ms from second 12 on (latency
 * climb); 3: 2 jobs a second, every third second one of them 1 s late
 * (too few jobs to call it a climb). */
static json_t *climb_doc(int mode, struct stress_plan *p)
{
    static int64_t start[2] = {T0, T0 + 10 * S};
    static int64_t end[2] = {T0 + 10 * S, T0 + 20 * S};
    struct stress_run_info in;
    struct stress_rec *r = stress_rec_new();
    json_t *doc;
    int64_t id = 1, s, k, due, per = mode == 2 ? 40 : mode == 3 ? 2 : 10;

    stress_plan_init(p);
    p->nstages = 2;
    snprintf(p->stages[0].name, STRESS_NAME_MAX, "steady");
    snprintf(p->stages[1].name, STRESS_NAME_MAX, "overload");
    p->stages[0].count = p->stages[1].count = 10 * per;
    p->stages[0].rate = p->stages[1].rate = (double)per;
    for (s = 0; s < 20; s++) {
        for (k = 0; k < per; k++) {
            int64_t e2e = 5 * MS;
            due = T0 + s * S + k * (S / per);
            if (mode == 2 && s >= 12) {
                e2e = 400 * MS;
            }
            if (mode == 3 && k == 0 && s % 3 == 2) {
                e2e = S;
            }
            if (s >= 10 && mode == 1) {
                row(r, id++, "completed", "q", 1, due, T0 + 30 * S,
                    T0 + 30 * S + k, due, 1, "c", 0, NULL);
            } else {
                row(r, id++, "completed", "q", 1, due, due + MS, due + e2e, due,
                    s >= 10, "c", 0, NULL);
            }
        }
        if (s >= 10 && s < 14 && mode == 0) {
            row(r, id++, "available", "q", 0, T0 + s * S, 0, 0, T0 + s * S, 1,
                NULL, 0, NULL);
        }
    }
    memset(&in, 0, sizeof(in));
    in.plan = p;
    in.started_us = T0;
    in.ended_us = T0 + 31 * S;
    in.nstages = 2;
    in.stage_started_us = start;
    in.stage_ended_us = end;
    doc = stress_report_build(r, &in);
    stress_rec_free(r);
    return doc;
}

void test_climb(void **state)
{
    struct stress_plan p;
    json_t *doc;

    (void)state;
    doc = climb_doc(1, &p);
    assert_string_equal(json_string_value(jp(doc, "climb.metric")), "backlog");
    assert_int_equal(ji(doc, "climb.at_s"), 10);
    assert_int_equal(ji(doc, "climb.stage"), 1);
    assert_string_equal(json_string_value(jp(doc, "climb.stage_name")),
                        "overload");
    near(jr(doc, "climb.from"), 0, "from");
    near(jr(doc, "climb.to"), 100, "to");
    assert_int_equal(ji(doc, "series.backlog.19"), 100);
    json_decref(doc);
    stress_plan_fini(&p);
    /* a backlog growing 1, 2, 3, 4 and steady latency: no climb */
    doc = climb_doc(0, &p);
    assert_int_equal(ji(doc, "series.backlog.13"), 4);
    assert_true(json_is_null(jp(doc, "climb")));
    json_decref(doc);
    stress_plan_fini(&p);
    /* end-to-end p95 from 5 ms to 400 ms at second 12, 40 jobs a second */
    doc = climb_doc(2, &p);
    assert_string_equal(json_string_value(jp(doc, "climb.metric")),
                        "end_to_end_p95");
    assert_int_equal(ji(doc, "climb.at_s"), 12);
    assert_int_equal(ji(doc, "climb.stage"), 1);
    near(jr(doc, "climb.to"), 400, "to");
    json_decref(doc);
    stress_plan_fini(&p);
    /* one late job among three finishing in second 3: its p95 is 1 s, but
     * too few jobs (and not 3 s in a row) to call that a climb */
    doc = climb_doc(3, &p);
    near(jr(doc, "series.end_to_end_ms.p95.3"), 1000, "p95 at 3 s");
    assert_true(json_is_null(jp(doc, "climb")));
    json_decref(doc);
    stress_plan_fini(&p);
}

/* Nothing recorded: a valid document of zeros and nulls. */
void test_empty(void **state)
{
    struct stress_plan p;
    struct stress_run_info in;
    json_t *doc;

    (void)state;
    plan3(&p);
    memset(&in, 0, sizeof(in));
    in.plan = &p;
    in.outcome = "error";
    in.error = "database unavailable";
    doc = stress_report_build(NULL, &in);
    assert_int_equal(ji(doc, "counts.finished"), 0);
    assert_true(json_is_null(jp(doc, "latency_ms.end_to_end.p50")));
    assert_int_equal(json_array_size(jp(doc, "latency_ms.run.histogram")), 0);
    assert_true(json_is_null(jp(doc, "rates.throughput")));
    assert_true(json_is_null(jp(doc, "rates.failed_rate")));
    assert_int_equal(json_array_size(jp(doc, "stages")), 3);
    assert_true(json_is_null(jp(doc, "stages.0.started_at")));
    assert_true(json_is_null(jp(doc, "monitors.events")));
    assert_true(json_is_null(jp(doc, "monitors.polling")));
    assert_true(json_is_true(jp(doc, "monitors.agree")));
    assert_true(json_is_null(jp(doc, "climb")));
    assert_int_equal(json_array_size(jp(doc, "failures")), 0);
    assert_string_equal(json_string_value(jp(doc, "run.error")),
                        "database unavailable");
    json_decref(doc);
    assert_null(stress_report_build(NULL, NULL));
    stress_plan_fini(&p);
}

/* Nonsense in, a document out: no crash, nothing counted from it. */
void test_garbage(void **state)
{
    struct stress_run_info in;
    struct stress_rec *r = stress_rec_new();
    struct trib_wire_event e;
    struct stress_db_row w;
    json_t *doc;
    int k;

    (void)state;
    for (k = -1; k <= 9; k++) { /* unknown and queue kinds are ignored */
        memset(&e, 0, sizeof(e));
        e.kind = k;
        e.job_id = k == 6 || k == 7 ? 5 : k == 1 ? -3 : 0;
        stress_rec_event(r, NULL, 0, &e);
    }
    assert_int_equal(stress_rec_jobs(r), 0);
    memset(&e, 0, sizeof(e)); /* nothing but an id */
    e.kind = TRIB_EV_JOB_FAILED;
    e.job_id = 9;
    e.state = 99;
    e.attempt = -40000;
    e.error = trib_str_c("\xff\xfe not utf-8 \x01");
    stress_rec_event(r, "", 0, &e);
    memset(&w, 0, sizeof(w)); /* a row of NULLs */
    w.id = 10;
    w.stage = 1000;
    w.nerrors = -4;
    stress_rec_db_row(r, &w);
    w.id = 11;
    w.state = "no-such-state";
    w.due_us = T0 + 200LL * 86400 * S; /* 200 days on: series capped */
    w.attempt = 40000;
    stress_rec_db_row(r, &w);
    stress_rec_db_row(NULL, &w);
    stress_rec_client(r, NULL, "n", "poll");
    stress_rec_client(r, "c", NULL, NULL);
    assert_int_equal(stress_rec_jobs(r), 3);
    memset(&in, 0, sizeof(in));
    in.started_us = T0;
    doc = stress_report_build(r, &in);
    assert_non_null(doc);
    assert_int_equal(ji(doc, "counts.finished"), 0);
    assert_int_equal(ji(doc, "counts.failed_attempts"), 1);
    /* invalid UTF-8 became U+FFFD: the text is still a JSON string */
    assert_string_equal(json_string_value(jp(doc, "failures.0.error")),
                        "\xef\xbf\xbd\xef\xbf\xbd not utf-N \x01");
    assert_int_equal(json_array_size(jp(doc, "series.t")), 100000);
    assert_int_equal(ji(doc, "series.due.99999"), 1);
    json_decref(doc);
    stress_rec_free(r);
}

static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The bytes the store holds (chunks, index, names, pairs). */
static double store_bytes(const struct stress_rec *r)
{
    size_t rc = (r->nrecs + REC_CHUNK - 1) / REC_CHUNK;
    size_t ec = (r->nevs + REC_CHUNK - 1) / REC_CHUNK;

    return (double)(rc * REC_CHUNK * sizeof(struct jrec) +
                    ec * REC_CHUNK * sizeof(struct jev) +
                    (size_t)r->nslots * 4 + r->str.cap +
                    (size_t)r->str.capn * 12 + (size_t)r->str.nslots * 4 +
                    ((size_t)r->who.cap + r->grp.cap) * 8 +
                    ((size_t)r->who.nslots + r->grp.nslots) * 4);
}

/* 1,000,000 jobs (one event and one row each, a tenth failing once
 * first): the document is built; time and memory are printed. */
void test_million(void **state)
{
    const int64_t N = 1000000;
    struct stress_run_info in;
    struct stress_rec *r;
    struct trib_wire_event e;
    char client[16];
    json_t *doc;
    double bytes;
    uint64_t t0, t1, t2;
    double c0, c1, c2;
    int64_t i, due;

    (void)state;
    t0 = trib_mono_us();
    c0 = cpu_s();
    r = stress_rec_new();
    for (i = 0; i < 6; i++) {
        snprintf(client, sizeof(client), "n%d-c1", (int)i);
        stress_rec_client(r, client, client + 0, i % 2 ? "poll" : "notify");
    }
    for (i = 1; i <= N; i++) {
        due = T0 + i * 60; /* 60 s of arrivals */
        snprintf(client, sizeof(client), "n%d-c1", (int)(i % 6));
        if (i % 10 == 0) {
            e = ev(TRIB_EV_JOB_FAILED, i, 1, client, "default",
                   TRIB_WS_RETRYABLE, due, due + MS, 0, "card 99 declined",
                   due + 2 * MS);
            feed(r, "n0", e);
        }
        e = ev(TRIB_EV_JOB_COMPLETED, i, 1 + (i % 10 == 0), client, "default",
               TRIB_WS_COMPLETED, due, due + 3 * MS + i % 997,
               due + 5 * MS + i % 1009, NULL, due + 5 * MS + i % 1009);
        feed(r, client, e);
        row(r, i, "completed", "default", 1 + (i % 10 == 0), due,
            due + 3 * MS + i % 997, due + 5 * MS + i % 1009, due,
            (int)(i * 3 / (N + 1)), client, i % 10 == 0,
            i % 10 == 0 ? "card 99 declined" : NULL);
    }
    t1 = trib_mono_us();
    c1 = cpu_s();
    bytes = store_bytes(r);
    memset(&in, 0, sizeof(in));
    in.started_us = T0;
    in.ended_us = T0 + 70 * S;
    in.inserted = N;
    doc = stress_report_build(r, &in);
    t2 = trib_mono_us();
    c2 = cpu_s();
    print_message("1,000,000 jobs (1,100,000 events): records %.2f s (CPU "
                  "%.2f s; the store holds %.0f bytes/job), report built in "
                  "%.2f s (CPU %.2f s)\n",
                  (double)(t1 - t0) / 1e6, c1 - c0, bytes / (double)N,
                  (double)(t2 - t1) / 1e6, c2 - c1);
    assert_int_equal(ji(doc, "counts.finished"), N);
    assert_int_equal(ji(doc, "counts.failed_attempts"), N / 10);
    assert_int_equal(ji(doc, "failures.0.attempts"), N / 10);
    assert_int_equal(ji(doc, "latency_ms.run.count"), N + N / 10);
    assert_int_equal(sum(jp(doc, "series.finished")), N);
    json_decref(doc);
    stress_rec_free(r);
}
