/*
 * stress_res_test.c -- resource monitoring against a real PostgreSQL (the
 * server scripts/test.sh starts: TRIB_TEST_PG_URL; a fresh database with
 * River's schema per run) without a coordinator (ctl = NULL): the `nodes`
 * documents are fed in through stress_res_int.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stress_res.h"
#include "stress_res_int.h"
#include "trib_err.h"
#include "trib_migrate.h"
#include "trib_pg.h"
#include "trib_time.h"

#define S TRIB_US_PER_S

static const char *admin_url;
static char dbname[64];

/* A session on the test database named 'app' (NULL: libpq's default). */
static PGconn *db_open(const char *app)
{
    const char *keys[] = {"dbname", "dbname", "application_name", NULL};
    const char *vals[] = {admin_url, dbname, app, NULL};
    PGconn *c;

    if (app == NULL) {
        keys[2] = NULL;
    }
    c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("connect to %s: %s", dbname, PQerrorMessage(c));
    }
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    }
    PQclear(res);
}

static int setup(void **state)
{
    struct trib_migrate_opts opts = {0};
    char sql[128], err[256];
    PGconn *admin, *c;

    (void)state;
    admin_url = getenv("TRIB_TEST_PG_URL");
    if (admin_url == NULL || admin_url[0] == '\0') {
        fprintf(stderr, "TRIB_TEST_PG_URL is not set: run the tests through "
                        "scripts/test.sh (it starts PostgreSQL)\n");
        return -1;
    }
    snprintf(dbname, sizeof(dbname), "trib_res_test_%d", (int)getpid());
    admin = PQconnectdb(admin_url);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(admin));
        PQfinish(admin);
        return -1;
    }
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", dbname);
    exec_ok(admin, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    exec_ok(admin, sql);
    PQfinish(admin);
    c = db_open(NULL);
    if (trib_migrate_up(c, &opts, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        PQfinish(c);
        return -1;
    }
    PQfinish(c);
    return 0;
}

static int teardown(void **state)
{
    char sql[128];
    PGconn *admin = PQconnectdb(admin_url);

    (void)state;
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             dbname);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
    return 0;
}

static const json_t *get(const json_t *o, const char *path)
{
    char key[64];
    const char *dot;

    while ((dot = strchr(path, '.')) != NULL) {
        snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
        o = json_object_get(o, key);
        path = dot + 1;
    }
    o = json_object_get(o, path);
    if (o == NULL) {
        fail_msg("no key %s", path);
    }
    return o;
}

/* The application_name an agent's client sends. */
static void test_app_name(void **state)
{
    char out[64], small[8], id[80];
    size_t n;

    (void)state;
    n = trib_pg_app_name(out, sizeof(out), "tributary-agent:", "c1");
    assert_int_equal(n, 18);
    assert_string_equal(out, "tributary-agent:c1");
    assert_int_equal(
        trib_pg_app_name(out, sizeof(out), "tributary-agent", NULL), 15);
    /* 16 + 47 = 63 bytes: kept whole; one more byte is cut */
    memset(id, 'x', 47);
    id[47] = '\0';
    assert_int_equal(trib_pg_app_name(out, sizeof(out), "tributary-agent:", id),
                     63);
    strcpy(id + 47, "y");
    assert_int_equal(trib_pg_app_name(out, sizeof(out), "tributary-agent:", id),
                     63);
    assert_int_equal(out[62], 'x');
    /* "é" (2 bytes) at bytes 62-63: cut before it, not inside */
    memset(id, 'x', 46);
    strcpy(id + 46, "\xc3\xa9"
                    "z");
    assert_int_equal(trib_pg_app_name(out, sizeof(out), "tributary-agent:", id),
                     62);
    assert_int_equal(out[61], 'x');
    /* a 4-byte character straddling the cut, and a small buffer */
    memset(id, 'x', 45);
    strcpy(id + 45, "\xf0\x9f\x98\x80");
    assert_int_equal(trib_pg_app_name(out, sizeof(out), "tributary-agent:", id),
                     61);
    assert_int_equal(
        trib_pg_app_name(small, sizeof(small), "ab\xc3\xa9", "cdef"), 7);
    assert_string_equal(small, "ab\xc3\xa9"
                               "cde");
    assert_int_equal(trib_pg_app_name(small, 4, "ab\xc3\xa9", "cd"), 2);
    assert_string_equal(small, "ab");
}

static void test_open_args(void **state)
{
    struct stress_res *r = NULL;
    json_t *doc;

    (void)state;
    assert_int_equal(stress_res_open(NULL, NULL, 0, &r), TRIB_EINVAL);
    assert_null(r);
    stress_res_free(NULL);
    assert_int_equal(stress_res_open(NULL, NULL, trib_now_us(), &r), 0);
    stress_res_sample(r); /* nothing to sample: a no-op */
    doc = stress_res_json(r);
    assert_int_equal(json_array_size(get(doc, "t")), 0);
    assert_int_equal(json_array_size(get(doc, "agents")), 0);
    assert_true(json_is_null(get(doc, "postgres")));
    assert_int_equal(json_array_size(get(doc, "errors")), 0);
    assert_null(stress_res_modes_json(r));
    assert_null(stress_res_nodes(r));
    json_decref(doc);
    stress_res_free(r);
}

static void assert_len(const json_t *o, const char *key, size_t n)
{
    const json_t *a = get(o, key);

    if (!json_is_array(a) || json_array_size(a) != n) {
        fail_msg("%s: expected an array of %zu, got %zu", key, n,
                 json_array_size(a));
    }
}

/* Two samples a second apart, without agents: every series as long as
 * "t", nulls where no sample fell, commits per second once there are two
 * samples. */
static void test_pg_series(void **state)
{
    static const char *const pg_series[] = {
        "conns_active",     "conns_idle",
        "conns_idle_in_tx", "lock_waits",
        "commits_per_s",    "rollbacks_per_s",
        "river_job_bytes",  "live_tuples",
        "dead_tuples",      NULL};
    PGconn *db = db_open("tributary"), *other = db_open("res-test-other");
    int64_t t0 = trib_now_us() - 3 * S / 2; /* now: second 1 */
    struct stress_res *r;
    const json_t *pg, *apps, *a;
    json_t *doc;
    size_t n, i;
    int seen_other = 0, k;

    (void)state;
    assert_int_equal(stress_res_open(db, NULL, t0, &r), 0);
    stress_res_sample(r);
    for (k = 0; k < 20; k++) {
        exec_ok(other, "SELECT 1");
    }
    usleep(1100 * 1000);
    stress_res_sample(r);
    doc = stress_res_json(r);
    n = json_array_size(get(doc, "t"));
    assert_in_range(n, 3, 4);
    assert_int_equal(json_integer_value(json_array_get(get(doc, "t"), 2)), 2);
    pg = get(doc, "postgres");
    for (k = 0; pg_series[k]; k++) {
        assert_len(pg, pg_series[k], n);
        assert_true(json_is_null(json_array_get(get(pg, pg_series[k]), 0)));
    }
    /* the first sample (second 1) has no rate yet; the last one has */
    assert_true(json_is_null(json_array_get(get(pg, "commits_per_s"), 1)));
    assert_true(
        json_is_number(json_array_get(get(pg, "commits_per_s"), n - 1)));
    assert_true(
        json_real_value(json_array_get(get(pg, "commits_per_s"), n - 1)) >= 0);
    assert_true(
        json_is_number(json_array_get(get(pg, "rollbacks_per_s"), n - 1)));
    assert_true(json_integer_value(
                    json_array_get(get(pg, "river_job_bytes"), n - 1)) > 0);
    assert_true(json_is_integer(json_array_get(get(pg, "live_tuples"), n - 1)));
    assert_true(
        json_integer_value(json_array_get(get(pg, "conns_idle"), n - 1)) >= 1);
    apps = get(pg, "apps");
    json_array_foreach(apps, i, a)
    {
        assert_len(a, "conns", n);
        assert_len(a, "active", n);
        assert_len(a, "lock_waits", n);
        if (strcmp(json_string_value(get(a, "application_name")),
                   "res-test-other") == 0) {
            seen_other = 1;
            assert_int_equal(
                json_integer_value(json_array_get(get(a, "conns"), n - 1)), 1);
        }
        /* the sampler's own session is not counted */
        assert_string_not_equal(json_string_value(get(a, "application_name")),
                                "tributary");
    }
    assert_true(seen_other);
    assert_int_equal(json_array_size(get(doc, "agents")), 0);
    assert_int_equal(json_array_size(get(doc, "errors")), 0);
    assert_null(stress_res_modes_json(r)); /* no client seen */
    json_decref(doc);
    stress_res_free(r);
    PQfinish(other);
    PQfinish(db);
}

/* A failing query leaves nulls and is remembered once; a schema without
 * river_job gives null sizes. */
static void test_pg_errors(void **state)
{
    PGconn *db = db_open("tributary");
    int64_t t0 = trib_now_us();
    struct stress_res *r;
    const json_t *pg, *errs;
    json_t *doc;

    (void)state;
    assert_int_equal(stress_res_open(db, NULL, t0, &r), 0);
    stress_res_schema(r, "no such schema");
    stress_res_sample(r);
    PQclear(PQexec(db, "BEGIN"));
    PQclear(PQexec(db, "SELECT 1/0"));
    stress_res__sample_pg(r, t0 + 2 * S);
    stress_res__sample_pg(r, t0 + 3 * S);
    PQclear(PQexec(db, "ROLLBACK"));
    doc = stress_res_json(r);
    pg = get(doc, "postgres");
    assert_len(pg, "conns_active", 1);
    assert_true(json_is_integer(json_array_get(get(pg, "conns_active"), 0)));
    assert_true(json_is_null(json_array_get(get(pg, "river_job_bytes"), 0)));
    assert_true(json_is_null(json_array_get(get(pg, "live_tuples"), 0)));
    errs = get(doc, "errors");
    assert_int_equal(json_array_size(errs), 1); /* the same error once */
    assert_non_null(
        strstr(json_string_value(json_array_get(errs, 0)), "aborted"));
    json_decref(doc);
    stress_res_free(r);
    PQfinish(db);
}

#define NODE_DOC(hb, boot, live, user, in1)                                    \
    "{\"schema\": \"tributary.nodes/1\", \"nodes\": [{\"node\": \"n1\", "      \
    "\"host\": \"h1\", \"boot_id\": \"" boot "\", \"liveness\": \"" live       \
    "\", \"last_heartbeat\": \"" hb "\", \"sample\": {\"cpu_user_s\": " user   \
    ", \"cpu_sys_s\": 0.5, \"rss_bytes\": 104857600, \"threads\": 9, "         \
    "\"outbox_events\": 3, \"outbox_bytes\": 300, \"db_conns\": 5}, "          \
    "\"clients\": [{\"id\": \"c-notify\", \"mode\": \"notify\", "              \
    "\"in_flight\": " in1 "}, {\"id\": \"" LONG_ID "\", \"mode\": \"poll\", "  \
    "\"in_flight\": 3}]}, {\"node\": \"n2\", \"host\": \"h2\", \"boot_id\": "  \
    "\"2\", \"liveness\": \"stopped\", \"last_heartbeat\": null, \"sample\": " \
    "null, \"clients\": []}]}"
/* 16 + 54 bytes: cut by the agent, and 'ï' shown as '?' by PostgreSQL */
#define LONG_ID                                                                \
    "cl\xc3\xaf"                                                               \
    "ent-poll-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxyz"

static json_t *doc_of(const char *text)
{
    json_error_t e;
    json_t *d = json_loads(text, 0, &e);

    if (d == NULL) {
        fail_msg("fixture: %s", e.text);
    }
    return d;
}

static double num_at(const json_t *a, size_t i)
{
    const json_t *v = json_array_get(a, i);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Agents from `nodes` documents: CPU from the heartbeats' CPU totals,
 * a stopped agent gives nulls, a new boot starts over. */
static void test_agents(void **state)
{
    int64_t t0 = trib_now_us();
    struct stress_res *r;
    const json_t *ag, *n1 = NULL, *n2 = NULL, *m;
    json_t *doc, *modes;
    size_t i;

    (void)state;
    assert_int_equal(stress_res_open(NULL, NULL, t0, &r), 0);
    stress_res__feed_nodes(
        r, t0 + 1 * S,
        doc_of(NODE_DOC("2026-11-27T12:00:00.000Z", "1", "alive", "1.0", "2")));
    stress_res__feed_nodes(
        r, t0 + 2 * S + S / 2, /* heartbeat 0.5 s later, 0.25 s more CPU */
        doc_of(
            NODE_DOC("2026-11-27T12:00:00.500Z", "1", "alive", "1.25", "4")));
    stress_res__feed_nodes(
        r, t0 + 3 * S, /* no new heartbeat: the last rate holds */
        doc_of(
            NODE_DOC("2026-11-27T12:00:00.500Z", "1", "alive", "1.25", "4")));
    stress_res__feed_nodes(
        r, t0 + 4 * S, /* restarted: CPU totals start over */
        doc_of(NODE_DOC("2026-11-27T12:00:05.000Z", "2", "alive", "0.1", "0")));
    stress_res__feed_nodes(
        r, t0 + 5 * S,
        doc_of(NODE_DOC("2026-11-27T12:00:06.000Z", "2", "late", "0.2", "0")));
    stress_res__feed_nodes(r, t0 + 6 * S, doc_of("{\"nodes\": 1}"));
    assert_non_null(stress_res_nodes(r));
    doc = stress_res_json(r);
    assert_len(doc, "t", 6);
    ag = get(doc, "agents");
    assert_int_equal(json_array_size(ag), 2);
    for (i = 0; i < 2; i++) {
        m = json_array_get(ag, i);
        if (strcmp(json_string_value(get(m, "node")), "n1") == 0) {
            n1 = m;
        } else {
            n2 = m;
        }
    }
    assert_non_null(n1);
    assert_non_null(n2);
    assert_string_equal(json_string_value(get(n1, "host")), "h1");
    assert_len(n1, "cpu_pct", 6);
    assert_true(isnan(num_at(get(n1, "cpu_pct"), 0))); /* not sampled */
    assert_true(isnan(num_at(get(n1, "cpu_pct"), 1))); /* first heartbeat */
    assert_float_equal(num_at(get(n1, "cpu_pct"), 2), 50.0, 1e-9);
    assert_float_equal(num_at(get(n1, "cpu_pct"), 3), 50.0, 1e-9);
    assert_true(isnan(num_at(get(n1, "cpu_pct"), 4))); /* new boot */
    assert_true(isnan(num_at(get(n1, "cpu_pct"), 5))); /* late */
    assert_float_equal(num_at(get(n1, "rss_mib"), 1), 100.0, 1e-9);
    assert_float_equal(num_at(get(n1, "threads"), 1), 9, 0);
    assert_float_equal(num_at(get(n1, "db_conns"), 2), 5, 0);
    assert_float_equal(num_at(get(n1, "outbox_events"), 2), 3, 0);
    assert_float_equal(num_at(get(n1, "outbox_bytes"), 2), 300, 0);
    assert_float_equal(num_at(get(n1, "in_flight"), 1), 5, 0);
    assert_float_equal(num_at(get(n1, "in_flight"), 2), 7, 0);
    assert_true(isnan(num_at(get(n1, "rss_mib"), 5)));
    for (i = 0; i < 6; i++) {
        assert_true(isnan(num_at(get(n2, "rss_mib"), i)));
    }
    assert_int_equal(json_array_size(get(doc, "errors")), 1);
    assert_true(json_is_null(get(doc, "postgres")));
    /* modes known, no database: counts, but no load figures */
    modes = stress_res_modes_json(r);
    assert_non_null(modes);
    assert_int_equal(json_integer_value(get(modes, "notify.clients")), 1);
    assert_int_equal(json_integer_value(get(modes, "poll.clients")), 1);
    assert_true(json_is_null(get(modes, "poll.conns_avg")));
    assert_true(json_is_null(get(modes, "poll.backend_cpu_s")));
    json_decref(modes);
    json_decref(doc);
    stress_res_free(r);
}

/* More application names than the report keeps: 63 by name, the rest
 * counted together under "(other)" (the cap once held only until
 * "(other)" itself was added). */
static void test_many_apps(void **state)
{
    PGconn *db = db_open("tributary"), *c[70];
    int64_t t0 = trib_now_us();
    struct stress_res *r;
    const json_t *apps, *a, *other = NULL;
    char app[32];
    json_t *doc;
    size_t i, n;

    (void)state;
    for (i = 0; i < 70; i++) {
        snprintf(app, sizeof(app), "many-%02zu", i);
        c[i] = db_open(app);
    }
    assert_int_equal(stress_res_open(db, NULL, t0, &r), 0);
    stress_res_sample(r);
    doc = stress_res_json(r);
    n = json_array_size(get(doc, "t"));
    apps = get(get(doc, "postgres"), "apps");
    assert_true(json_array_size(apps) <= 64);
    json_array_foreach(apps, i, a)
    {
        if (strcmp(json_string_value(get(a, "application_name")), "(other)") ==
            0) {
            other = a;
        }
    }
    assert_non_null(other);
    assert_true(
        json_integer_value(json_array_get(get(other, "conns"), n - 1)) >= 7);
    json_decref(doc);
    stress_res_free(r);
    for (i = 0; i < 70; i++) {
        PQfinish(c[i]);
    }
    PQfinish(db);
}

#define HUGE_DOC(hb, user)                                                     \
    "{\"nodes\": [{\"node\": \"n1\", \"boot_id\": \"1\", \"liveness\": "       \
    "\"alive\", \"last_heartbeat\": \"" hb                                     \
    "\", \"sample\": {\"cpu_user_s\": " user                                   \
    ", \"cpu_sys_s\": 0, \"rss_bytes\": 1048576, \"threads\": 1e300}, "        \
    "\"clients\": []}]}"

/* Absurd figures from a heartbeat still give one JSON value a second: a
 * CPU rate too large to round to 3 decimals stays a number, a count beyond
 * int64 is null (neither may vanish from its series). */
static void test_huge_values(void **state)
{
    int64_t t0 = trib_now_us();
    struct stress_res *r;
    const json_t *n1, *cpu, *threads;
    json_t *doc;

    (void)state;
    assert_int_equal(stress_res_open(NULL, NULL, t0, &r), 0);
    stress_res__feed_nodes(r, t0 + 1 * S,
                           doc_of(HUGE_DOC("2026-11-27T12:00:00.000Z", "1")));
    stress_res__feed_nodes(
        r, t0 + 2 * S, doc_of(HUGE_DOC("2026-11-27T12:00:00.500Z", "1e304")));
    doc = stress_res_json(r);
    assert_len(doc, "t", 3);
    n1 = json_array_get(get(doc, "agents"), 0);
    cpu = get(n1, "cpu_pct");
    threads = get(n1, "threads");
    assert_int_equal(json_array_size(cpu), 3);
    assert_int_equal(json_array_size(threads), 3);
    assert_true(num_at(cpu, 2) > 1e305);
    assert_true(json_is_null(json_array_get(threads, 1)));
    assert_true(json_is_null(json_array_get(threads, 2)));
    json_decref(doc);
    stress_res_free(r);
}

/* Per fetch mode: the connections of each mode's clients (found by their
 * application_name, also when it was cut and cleaned) and their backends'
 * CPU between samples. */
static void test_modes(void **state)
{
    char app[64];
    PGconn *db = db_open("tributary"), *n1, *n2, *p1;
    int64_t t0 = trib_now_us();
    struct stress_res *r;
    json_t *modes;
    double cpu_n, cpu_p;

    (void)state;
    n1 = db_open("tributary-agent:c-notify");
    n2 = db_open("tributary-agent:c-notify");
    trib_pg_app_name(app, sizeof(app), "tributary-agent:", LONG_ID);
    p1 = db_open(app);
    assert_int_equal(stress_res_open(db, NULL, t0, &r), 0);
    assert_true(stress_res__backend_cpu(r)); /* the test server is local */
    stress_res__feed_nodes(
        r, t0,
        doc_of(NODE_DOC("2026-11-27T12:00:00.000Z", "1", "alive", "1.0", "0")));
    stress_res__sample_pg(r, t0);
    exec_ok(n1, "SELECT sum(i) FROM generate_series(1, 3000000) i");
    exec_ok(p1, "SELECT 1");
    stress_res__sample_pg(r, t0 + S);
    PQfinish(n2);
    usleep(200 * 1000); /* the backend exits */
    stress_res__sample_pg(r, t0 + 2 * S);
    modes = stress_res_modes_json(r);
    assert_non_null(modes);
    assert_int_equal(json_integer_value(get(modes, "notify.clients")), 1);
    assert_int_equal(json_integer_value(get(modes, "notify.conns_max")), 2);
    /* seconds 0, 1, 2: 2, 2, then 1 */
    assert_float_equal(json_number_value(get(modes, "notify.conns_avg")),
                       5.0 / 3.0, 1e-3);
    assert_int_equal(json_integer_value(get(modes, "poll.clients")), 1);
    assert_int_equal(json_integer_value(get(modes, "poll.conns_max")), 1);
    assert_float_equal(json_number_value(get(modes, "poll.conns_avg")), 1.0,
                       1e-9);
    assert_float_equal(json_number_value(get(modes, "poll.active_avg")), 0.0,
                       1e-9);
    cpu_n = json_number_value(get(modes, "notify.backend_cpu_s"));
    cpu_p = json_number_value(get(modes, "poll.backend_cpu_s"));
    print_message("backend CPU: notify %.3f s, poll %.3f s\n", cpu_n, cpu_p);
    assert_true(cpu_n >= 0.05);
    assert_true(cpu_p < cpu_n / 2);
    json_decref(modes);
    stress_res_free(r);
    PQfinish(n1);
    PQfinish(p1);
    PQfinish(db);
}

/* A sample stays cheap: the median of 21 (after the session's first,
 * which fills its catalog caches) well under 20 ms, even on a busy
 * machine. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void test_sample_cost(void **state)
{
    PGconn *db = db_open("tributary");
    struct stress_res *r;
    uint64_t t[21];
    int i;

    (void)state;
    assert_int_equal(stress_res_open(db, NULL, trib_now_us(), &r), 0);
    stress_res_sample(r);
    for (i = 0; i < 21; i++) {
        t[i] = trib_mono_us();
        stress_res_sample(r);
        t[i] = trib_mono_us() - t[i];
    }
    qsort(t, 21, sizeof(t[0]), cmp_u64);
    /* Printed for docs/PERFORMANCE.md, never asserted (a timing). */
    print_message("sample cost of 21: median %.3f ms, worst %.3f ms\n",
                  (double)t[10] / 1e3, (double)t[20] / 1e3);
    stress_res_free(r);
    PQfinish(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_name),    cmocka_unit_test(test_open_args),
        cmocka_unit_test(test_pg_series),   cmocka_unit_test(test_pg_errors),
        cmocka_unit_test(test_agents),      cmocka_unit_test(test_modes),
        cmocka_unit_test(test_sample_cost), cmocka_unit_test(test_huge_values),
        cmocka_unit_test(test_many_apps),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
