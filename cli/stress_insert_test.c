/*
 * stress_insert_test.c -- the stress inserter against a real PostgreSQL
 * (TRIB_TEST_PG_URL, set by scripts/test.sh; without it the test fails,
 * as the integration tests do). Each run gets its own schema, migrated
 * with `tributary migrate up --schema`, dropped at the end.
 *
 * Checked in river_job: rows per stage (count, ramp, count), tags,
 * metadata run/stage/due_us, scheduled_at = due, River's 5 s rule,
 * round-robin queues, the river_insert notifications, COPY and INSERT
 * giving the same rows; stop, a failing batch, and bad URLs / tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stress_insert.h"
#include "stress_plan.h"
#include "trib_err.h"
#include "trib_time.h"

#define S TRIB_US_PER_S

static const char *url;
static PGconn *db;
static char schema[64], table[96], channel[96];

/* First cell of a one-row query, as text ("" for NULL). */
static const char *q1(const char *fmt, ...)
{
    static char out[8192];
    char sql[2048];
    va_list ap;
    PGresult *r;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK &&
        PQresultStatus(r) != PGRES_COMMAND_OK) {
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    }
    snprintf(out, sizeof(out), "%s",
             PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return out;
}

/* A count query's result. */
static long long cnt(const char *fmt, ...)
{
    char sql[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return atoll(q1("%s", sql));
}

static int setup(void **state)
{
    char *argv[] = {"migrate", "up", "--database-url", NULL, "--schema",
                    schema,    NULL};

    (void)state;
    url = getenv("TRIB_TEST_PG_URL");
    if (url == NULL || url[0] == '\0') {
        fprintf(stderr, "TRIB_TEST_PG_URL is not set: run the tests through "
                        "scripts/test.sh (it starts PostgreSQL)\n");
        return -1;
    }
    db = PQconnectdb(url);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(db));
        return -1;
    }
    snprintf(schema, sizeof(schema), "stress_ins_test_%d", (int)getpid());
    snprintf(table, sizeof(table), "\"%s\".river_job", schema);
    snprintf(channel, sizeof(channel), "%s.river_insert", schema);
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    q1("DROP SCHEMA IF EXISTS %s CASCADE", schema);
    q1("CREATE SCHEMA %s", schema);
    argv[3] = (char *)url;
    if (trib_cli_migrate(6, argv) != 0) {
        return -1;
    }
    q1("LISTEN \"%s\"", channel);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (db != NULL) {
        q1("DROP SCHEMA IF EXISTS %s CASCADE", schema);
        PQfinish(db);
    }
    return 0;
}

/* A finished plan, by hand (the fields are public). */
static void base_plan(struct stress_plan *p, enum stress_method m)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "t");
    snprintf(p->kind, sizeof(p->kind), "test.kind");
    p->args_json = "{\"n\": 1, \"s\": \"a\\\\b \\\"q\\\" \\t\"}";
    p->priority = 3;
    p->max_attempts = 7;
    snprintf(p->queues[0], sizeof(p->queues[0]), "default");
    snprintf(p->queues[1], sizeof(p->queues[1]), "poll");
    p->nqueues = 2;
    snprintf(p->tags[0], sizeof(p->tags[0]), "smoke");
    p->ntags = 1;
    p->method = m;
    p->batch = 100;
    p->streams = 2;
}

static void opts(struct stress_ins_opts *o, const struct stress_plan *p,
                 const char *run, char *tag, size_t taglen)
{
    snprintf(tag, taglen, "tributary-run-%s", run);
    memset(o, 0, sizeof(*o));
    o->plan = p;
    o->conninfo = url;
    o->table = table;
    o->notify_channel = channel;
    o->run_id = run;
    o->run_tag = tag;
}

/* Runs the plan to the end; returns the final progress. */
static void run_plan(const struct stress_plan *p, const char *run,
                     struct stress_ins_progress *pr)
{
    struct stress_ins_opts o;
    struct stress_ins *s;
    char err[512], tag[96];
    int rv;

    opts(&o, p, run, tag, sizeof(tag));
    rv = stress_ins_start(&o, &s, err, sizeof(err));
    if (rv != 0) {
        fail_msg("start: %s", err);
    }
    rv = stress_ins_join(s);
    stress_ins_progress(s, pr);
    stress_ins_free(s);
    if (rv != 0) {
        fail_msg("join: %s", pr->error);
    }
}

/* Notifications received so far on the channel, per queue payload. */
static void count_notifies(int *def, int *poll)
{
    PGnotify *n;

    *def = *poll = 0;
    q1("SELECT 1"); /* anything queued arrives with this */
    PQconsumeInput(db);
    while ((n = PQnotifies(db)) != NULL) {
        assert_string_equal(n->relname, channel);
        if (strcmp(n->extra, "{\"queue\": \"default\"}") == 0) {
            (*def)++;
        } else if (strcmp(n->extra, "{\"queue\": \"poll\"}") == 0) {
            (*poll)++;
        } else {
            fail_msg("unexpected payload %s", n->extra);
        }
        PQfreemem(n);
    }
}

#define RUN_WHERE "FROM %s WHERE metadata->'tributary'->>'run' = '%s'"
#define STAGE_IS  " AND (metadata->'tributary'->>'stage')::int = %d"

/* Three stages: 300 jobs at 1000/s, a 1 s ramp to 500/s, 200 jobs as
 * fast as possible; delays 3..7 s so both states appear. */
static void stages(enum stress_method m, const char *run)
{
    struct stress_plan p;
    struct stress_ins_progress pr;
    char tag[96];
    int i, def, poll;
    int64_t total = 0;

    base_plan(&p, m);
    p.delay_us = 3 * S;
    p.spread_us = 4 * S;
    p.stages[0].count = 300;
    p.stages[0].rate = 1000;
    p.stages[1].duration_us = 1 * S;
    p.stages[1].target = 500;
    p.stages[2].count = 200;
    p.nstages = 3;
    count_notifies(&def, &poll); /* drain */
    run_plan(&p, run, &pr);
    snprintf(tag, sizeof(tag), "tributary-run-%s", run);

    assert_int_equal(pr.done, 1);
    assert_int_equal(pr.failed, 0);
    assert_int_equal(pr.stage, 3);
    assert_int_equal(pr.stages[0].planned, 300);
    assert_int_equal(pr.stages[1].planned,
                     stress_stage_due(&p, 1, p.stages[1].duration_us, NULL));
    assert_true(pr.stages[1].planned >= 700 && pr.stages[1].planned <= 750);
    assert_int_equal(pr.stages[2].planned, 200);
    for (i = 0; i < 3; i++) {
        const struct stress_ins_stage *g = &pr.stages[i];
        assert_int_equal(g->inserted, g->planned);
        assert_true(g->started_us > 0 && g->ended_us >= g->started_us);
        if (i > 0) {
            assert_true(g->started_us >= pr.stages[i - 1].ended_us);
        }
        /* per stage: rows, queues in turn, created while it ran */
        assert_int_equal(
            cnt("SELECT count(*) " RUN_WHERE STAGE_IS, table, run, i),
            g->planned);
        assert_int_equal(cnt("SELECT count(*) " RUN_WHERE STAGE_IS
                             " AND queue = 'default'",
                             table, run, i),
                         (g->planned + 1) / 2);
        assert_int_equal(cnt("SELECT count(*) " RUN_WHERE STAGE_IS
                             " AND queue = 'poll'",
                             table, run, i),
                         g->planned / 2);
        assert_int_equal(
            cnt("SELECT count(*) " RUN_WHERE STAGE_IS
                " AND (extract(epoch FROM created_at) * 1000000)::bigint "
                "NOT BETWEEN %lld AND %lld",
                table, run, i, (long long)g->started_us,
                (long long)g->ended_us),
            0);
        total += g->planned;
    }
    /* the schedule: 300 at 1000/s take >= 0.299 s, the ramp its 1 s */
    assert_true(pr.stages[0].ended_us - pr.stages[0].started_us >= 299000);
    assert_true(pr.stages[1].ended_us - pr.stages[1].started_us >= 1 * S);
    assert_int_equal(pr.inserted, total);
    assert_int_equal(pr.due, total);

    /* every row: tags, the job's fields, due_us = scheduled_at, delay
     * within 3..7 s, River's 5 s rule */
    assert_int_equal(cnt("SELECT count(*) FROM %s WHERE tags = "
                         "ARRAY['smoke', '%s']::varchar[]",
                         table, tag),
                     total);
    assert_int_equal(
        cnt("SELECT count(*) " RUN_WHERE
            " AND kind = 'test.kind' AND priority = 3 AND max_attempts = 7 "
            "AND args = '{\"n\": 1, \"s\": \"a\\\\b \\\"q\\\" \\t\"}'::jsonb "
            "AND attempt = 0 AND finalized_at IS NULL",
            table, run),
        total);
    assert_int_equal(cnt("SELECT count(*) " RUN_WHERE
                         " AND (metadata->'tributary'->>'due_us')::bigint = "
                         "(extract(epoch FROM scheduled_at) * 1000000)::bigint",
                         table, run),
                     total);
    assert_int_equal(
        cnt("SELECT count(*) " RUN_WHERE
            " AND scheduled_at - created_at BETWEEN interval '3 s' AND "
            "interval '7 s' AND state::text = CASE WHEN scheduled_at - "
            "created_at > interval '5 s' THEN 'scheduled' ELSE 'available' "
            "END",
            table, run),
        total);
    assert_true(cnt("SELECT count(*) " RUN_WHERE " AND state = 'available'",
                    table, run) > 0);
    assert_true(cnt("SELECT count(*) " RUN_WHERE " AND state = 'scheduled'",
                    table, run) > 0);
    count_notifies(&def, &poll);
    assert_true(def > 0 && poll > 0);
}

static void test_stages_copy(void **state)
{
    (void)state;
    stages(STRESS_METHOD_COPY, "stages-copy");
}

static void test_stages_insert(void **state)
{
    (void)state;
    stages(STRESS_METHOD_INSERT, "stages-insert");
}

/* COPY and INSERT rows, normalised: everything but ids and times. */
static const char *normalised(const char *run, char *out, size_t n)
{
    snprintf(
        out, n, "%s",
        q1("SELECT string_agg(x::text, E'\\n' ORDER BY x::text) FROM ("
           "SELECT to_jsonb(j) - '{id,created_at,scheduled_at,metadata,tags}'"
           "::text[] || jsonb_build_object("
           "'tags', array_replace(tags, 'tributary-run-%s', 'RUN'), "
           "'meta', metadata #- '{tributary,due_us}' #- '{tributary,run}', "
           "'run_ok', metadata->'tributary'->>'run' = '%s', "
           "'due_ok', CASE WHEN metadata->'tributary' ? 'due_us' THEN "
           "(metadata->'tributary'->>'due_us')::bigint = "
           "(extract(epoch FROM scheduled_at) * 1000000)::bigint "
           "ELSE scheduled_at = created_at END, "
           "'has_due', metadata->'tributary' ? 'due_us', "
           "'delay', (scheduled_at - created_at)::text) AS x "
           "FROM %s j WHERE tags @> ARRAY['tributary-run-%s']::varchar[]) q",
           run, run, table, run));
    return out;
}

static void test_same_rows(void **state)
{
    static char a[8192], b[8192];
    struct stress_plan p;
    struct stress_ins_progress pr;
    int def, poll;

    (void)state;
    base_plan(&p, STRESS_METHOD_COPY);
    p.batch = 7;
    p.stages[0].count = 60;
    p.nstages = 1;
    count_notifies(&def, &poll);
    run_plan(&p, "same-copy", &pr);
    /* 30 jobs per stream in batches of 7: 5 transactions each, one queue
     * each (stream 0 has the even jobs: default) */
    count_notifies(&def, &poll);
    assert_int_equal(def, 5);
    assert_int_equal(poll, 5);
    p.method = STRESS_METHOD_INSERT;
    run_plan(&p, "same-insert", &pr);
    count_notifies(&def, &poll);
    assert_int_equal(def, 5);
    assert_int_equal(poll, 5);

    normalised("same-copy", a, sizeof(a));
    normalised("same-insert", b, sizeof(b));
    assert_non_null(strstr(a, "\"due_ok\": true"));
    /* no spread: due_us left out (due = created_at + delay) */
    assert_null(strstr(a, "\"has_due\": true"));
    assert_null(strstr(a, "\"due_ok\": false"));
    assert_null(strstr(a, "\"run_ok\": false"));
    assert_non_null(strstr(a, "\"state\": \"available\""));
    assert_non_null(strstr(a, "\"delay\": \"00:00:00\""));
    assert_string_equal(a, b);
    assert_int_equal(cnt("SELECT count(*) FROM %s WHERE tags @> "
                         "ARRAY['tributary-run-same-insert']::varchar[]",
                         table),
                     60);
}

/* Stopped mid-stage: the streams end after their batch, the counts in
 * the progress match the table. */
static void test_stop(void **state)
{
    struct stress_plan p;
    struct stress_ins_opts o;
    struct stress_ins *s;
    struct stress_ins_progress pr;
    char err[512], tag[96];
    uint64_t t, el;

    (void)state;
    base_plan(&p, STRESS_METHOD_COPY);
    p.stages[0].count = 1000000;
    p.stages[0].rate = 5000;
    p.stages[1].count = 10;
    p.nstages = 2;
    opts(&o, &p, "stopped", tag, sizeof(tag));
    t = trib_mono_us();
    assert_int_equal(stress_ins_start(&o, &s, err, sizeof(err)), 0);
    usleep(300000);
    stress_ins_progress(s, &pr);
    el = trib_mono_us() - t;
    assert_int_equal(pr.done, 0);
    assert_int_equal(pr.stage, 0);
    assert_true(pr.rate_now == 5000.0);
    assert_true(pr.due >= 1499 && (double)pr.due <= 5000.0 * (double)el / 1e6);
    stress_ins_stop(s);
    assert_int_equal(stress_ins_join(s), 0);
    stress_ins_progress(s, &pr);
    assert_int_equal(pr.done, 1);
    assert_int_equal(pr.failed, 0);
    assert_int_equal(pr.stage, 0);
    /* never ahead of the schedule, which stopped with the stage */
    assert_true(pr.inserted > 0 && pr.inserted <= pr.due);
    assert_true(pr.due < 1000000);
    assert_int_equal(pr.stages[0].inserted, pr.inserted);
    assert_true(pr.stages[0].ended_us > pr.stages[0].started_us);
    assert_int_equal(pr.stages[1].started_us, 0);
    assert_int_equal(pr.stages[1].inserted, 0);
    assert_int_equal(cnt("SELECT count(*) " RUN_WHERE, table, "stopped"),
                     pr.inserted);
    stress_ins_free(s);
}

/* The database refuses a batch: the first error is kept, every stream
 * stops, join says so. */
static void test_batch_fails(void **state)
{
    struct stress_plan p;
    struct stress_ins_progress pr;
    struct stress_ins_opts o;
    struct stress_ins *s;
    char err[512], tag[96];
    int m;

    (void)state;
    for (m = 0; m < 2; m++) {
        base_plan(&p, m ? STRESS_METHOD_INSERT : STRESS_METHOD_COPY);
        p.args_json = "{not json";
        p.stages[0].count = 1000;
        p.nstages = 1;
        opts(&o, &p, "fails", tag, sizeof(tag));
        assert_int_equal(stress_ins_start(&o, &s, err, sizeof(err)), 0);
        assert_int_equal(stress_ins_join(s), TRIB_EIO);
        stress_ins_progress(s, &pr);
        assert_int_equal(pr.failed, 1);
        assert_int_equal(pr.done, 1);
        assert_int_equal(pr.inserted, 0);
        assert_non_null(strstr(pr.error, "stream "));
        assert_non_null(strstr(pr.error, "json"));
        assert_null(strchr(pr.error, '\n'));
        stress_ins_free(s);
    }
    assert_int_equal(cnt("SELECT count(*) " RUN_WHERE, table, "fails"), 0);
}

/* Bad URLs, a missing table, an unfinished plan: clear errors at start. */
static void test_bad_start(void **state)
{
    struct stress_plan p;
    struct stress_ins_opts o;
    struct stress_ins *s = (struct stress_ins *)&p;
    char err[512], tag[96];

    (void)state;
    base_plan(&p, STRESS_METHOD_COPY);
    p.stages[0].count = 10;
    p.nstages = 1;
    opts(&o, &p, "bad", tag, sizeof(tag));

    o.conninfo = "postgresql://127.0.0.1:1/nothing?connect_timeout=5";
    assert_int_equal(stress_ins_start(&o, &s, err, sizeof(err)), TRIB_EDBCONN);
    assert_null(s);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL (host 127.0.0.1, "
                                "port 1, database nothing"));
    assert_null(strchr(err, '\n'));

    o.conninfo = "postgres://[::1";
    assert_int_equal(stress_ins_start(&o, &s, err, sizeof(err)), TRIB_EDBCONN);
    assert_non_null(strstr(err, "invalid database URL"));

    o.conninfo = url;
    o.table = "\"no_such_schema\".river_job";
    assert_int_equal(stress_ins_start(&o, &s, err, sizeof(err)), TRIB_ESCHEMA);
    assert_non_null(strstr(err, "does not exist"));
    p.method = STRESS_METHOD_INSERT;
    assert_int_equal(stress_ins_start(&o, &s, err, sizeof(err)), TRIB_ESCHEMA);
    assert_non_null(strstr(err, "does not exist"));

    o.table = "jobs";
    assert_int_equal(stress_ins_start(&o, &s, err, sizeof(err)), TRIB_EINVAL);
    assert_non_null(strstr(err, "river_job"));

    o.table = table;
    p.streams = 0;
    assert_int_equal(stress_ins_start(&o, &s, err, sizeof(err)), TRIB_EINVAL);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_start),
        cmocka_unit_test(test_stages_copy),
        cmocka_unit_test(test_stages_insert),
        cmocka_unit_test(test_same_rows),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_batch_fails),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
