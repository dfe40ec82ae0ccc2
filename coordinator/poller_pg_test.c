/*
 * poller_pg_test.c -- the poller itself (poller.c on a libuv loop) against
 * a real PostgreSQL (TRIB_TEST_PG_URL, the server scripts/test.sh starts;
 * a fresh database per run): an outage of its connection, with rows that
 * writers commit only after the poller came back (docs/POLLING.md, "After
 * a database outage"). The pure logic is in poller_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "poller.h"
#include "poller_int.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "trib_wire.h"

#define S 1000000LL /* one second in us */

/* --------------------------------------- the poller against PostgreSQL */

static const char *pg_admin_url;
static char pg_dbname[64];
static char pg_conninfo[2048]; /* the test database, for the poller */

/* A session on the test database. */
static PGconn *pg_db(void)
{
    const char *keys[] = {"dbname", "dbname", NULL};
    const char *vals[] = {pg_admin_url, pg_dbname, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);

    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("connect to %s: %s", pg_dbname, PQerrorMessage(c));
    }
    return c;
}

static void pg_ok(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    }
    PQclear(res);
}

/* The first cell of a one-row result, as an integer. */
static int64_t pg_int(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    int64_t v;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    }
    v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* The database clock, us since the epoch. */
static int64_t pg_clock(PGconn *c)
{
    return pg_int(c, "SELECT (extract(epoch FROM clock_timestamp())"
                     " * 1000000)::bigint");
}

/* Appends key='value' (libpq's quoting) to pg_conninfo. */
static void conninfo_add(const char *key, const char *val)
{
    size_t n = strlen(pg_conninfo);
    const char *v;

    n +=
        (size_t)snprintf(pg_conninfo + n, sizeof(pg_conninfo) - n, "%s='", key);
    for (v = val; *v && n + 3 < sizeof(pg_conninfo); v++) {
        if (*v == '\'' || *v == '\\') {
            pg_conninfo[n++] = '\\';
        }
        pg_conninfo[n++] = *v;
    }
    snprintf(pg_conninfo + n, sizeof(pg_conninfo) - n, "' ");
}

/* Only the columns the poller reads (River's own schema is what the Go
 * tests poll: TestCoordinatorPollView). */
#define TABLE_SQL                                                              \
    "CREATE TABLE river_job (id bigserial PRIMARY KEY,"                        \
    " state text NOT NULL, queue text NOT NULL DEFAULT 'q',"                   \
    " kind text NOT NULL DEFAULT 'k', attempt smallint NOT NULL DEFAULT 1,"    \
    " attempted_by text[] DEFAULT '{c1}', errors jsonb[],"                     \
    " finalized_at timestamptz)"

static int pg_setup(void **state)
{
    PQconninfoOption *opts, *o;
    char sql[160], *err = NULL;
    PGconn *admin, *c;

    (void)state;
    pg_admin_url = getenv("TRIB_TEST_PG_URL");
    if (pg_admin_url == NULL || pg_admin_url[0] == '\0') {
        fprintf(stderr, "TRIB_TEST_PG_URL is not set: run the tests through "
                        "scripts/test.sh (it starts PostgreSQL)\n");
        return -1;
    }
    opts = PQconninfoParse(pg_admin_url, &err);
    if (opts == NULL) {
        fprintf(stderr, "TRIB_TEST_PG_URL: %s\n", err ? err : "malformed");
        PQfreemem(err);
        return -1;
    }
    snprintf(pg_dbname, sizeof(pg_dbname), "trib_poller_test_%d",
             (int)getpid());
    pg_conninfo[0] = '\0';
    for (o = opts; o->keyword != NULL; o++) {
        if (o->val != NULL && *o->val && strcmp(o->keyword, "dbname") != 0) {
            conninfo_add(o->keyword, o->val);
        }
    }
    conninfo_add("dbname", pg_dbname);
    PQconninfoFree(opts);

    admin = PQconnectdb(pg_admin_url);
    if (PQstatus(admin) != CONNECTION_OK) {
        fprintf(stderr, "connect: %s", PQerrorMessage(admin));
        PQfinish(admin);
        return -1;
    }
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             pg_dbname);
    pg_ok(admin, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", pg_dbname);
    pg_ok(admin, sql);
    PQfinish(admin);
    c = pg_db();
    pg_ok(c, TABLE_SQL);
    PQfinish(c);
    return 0;
}

static int pg_teardown(void **state)
{
    char sql[160];
    PGconn *admin = PQconnectdb(pg_admin_url);

    (void)state;
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true",
             pg_dbname);
    PQclear(PQexec(admin, sql));
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             pg_dbname);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
    return 0;
}

/* A loop with a poller on it. */
struct run {
    uv_loop_t loop;
    uv_timer_t step; /* wakes the loop every 10 ms */
    struct trib_poller *p;
    int closed;
};

static void on_step(uv_timer_t *t)
{
    (void)t;
}

static void on_poller_closed(void *arg)
{
    *(int *)arg = 1;
}

/* Runs the loop for about ms. */
static void spin(struct run *r, int64_t ms)
{
    int64_t until = trib_now_us() + ms * 1000;

    while (trib_now_us() < until) {
        uv_run(&r->loop, UV_RUN_ONCE);
    }
}

static struct trib_poller_stats stats_of(const struct run *r)
{
    struct trib_poller_stats s;

    trib_poller_stats(r->p, &s);
    return s;
}

static struct trib_poller_counts counts_of(const struct run *r)
{
    struct trib_poller_counts c;

    trib_poller_counts(r->p, NULL, NULL, &c);
    return c;
}

/* Runs the loop until cond holds (checked every step), at most 30 s. */
#define RUN_UNTIL(r, what, cond)                                               \
    do {                                                                       \
        int64_t until_ = trib_now_us() + 30 * S;                               \
        while (!(cond)) {                                                      \
            if (trib_now_us() > until_) {                                      \
                fail_msg("no %s within 30 s", what);                           \
            }                                                                  \
            uv_run(&(r)->loop, UV_RUN_ONCE);                                   \
        }                                                                      \
    } while (0)

#define INTERVAL_MS 250
#define HOLD_MS     3000
#define MARGIN_MS   500
#define OUTAGE_MS   2000
#define LATE_ROWS   7

static int64_t completed(PGconn *w)
{
    return pg_int(w, "SELECT count(*) FROM river_job"
                     " WHERE state = 'completed'");
}

/*
 * One run of the outage (see test_pg_outage). Returns 1, or 0 when the
 * run did not set up what it checks: the non-final statement was not
 * queued behind the failed one (it is due every poll while it takes under
 * a tenth of the interval), or this process was held up so long that the
 * late rows committed after the hold ended. The caller runs it again.
 */
static int outage_run(PGconn *admin, PGconn *w)
{
    struct run r;
    struct trib_poller_conf conf;
    struct trib_poller_stats st;
    struct trib_poller_counts pc;
    char sql[512];
    int64_t t_fin, t_kill, t_allow, t_seen, t_after, states_at, held_from;
    uint64_t polls;
    int ok = 1, queued = 1, tries;

    pg_ok(w, "TRUNCATE river_job");
    memset(&r, 0, sizeof(r));
    assert_int_equal(uv_loop_init(&r.loop), 0);
    uv_timer_init(&r.loop, &r.step);
    uv_timer_start(&r.step, on_step, 10, 10);
    trib_poller_conf_defaults(&conf);
    conf.conninfo = pg_conninfo;
    conf.interval_ms = INTERVAL_MS;
    conf.margin_ms = MARGIN_MS;
    conf.margin_max_ms = 5000;
    conf.outage_hold_ms = HOLD_MS;
    assert_int_equal(trib_poller_create(&r.loop, &conf, &r.p), 0);
    trib_poller_start(r.p);

    /* Five rows finalized and committed at once; the first poll's hold
     * (the coordinator may start during an outage) ends. */
    pg_ok(w, "INSERT INTO river_job (state, finalized_at)"
             " SELECT 'completed', now() FROM generate_series(1, 5)");
    RUN_UNTIL(&r, "first hold ended",
              counts_of(&r).states[TRIB_WS_COMPLETED] == 5 &&
                  stats_of(&r).hold_until_us == 0 && stats_of(&r).polls > 2);

    /* The outage: the poller's statement is made to wait (a lock), its
     * session is terminated and no session can start for OUTAGE_MS; the
     * non-final statement queued behind the failed one waits through it.
     * A writer (still connected: an agent that finished a job) notes the
     * time its job finished. */
    /* The final-state statement must be the one waiting, with the
     * non-final one queued behind it: the lock is taken just after a
     * non-final answer whose cost keeps it due every poll, before the
     * next tick. */
    for (tries = 0;; tries++) {
        int64_t waiting;

        assert_true(tries < 20);
        states_at = counts_of(&r).states_polled_at_us;
        RUN_UNTIL(&r, "a non-final count",
                  counts_of(&r).states_polled_at_us != states_at &&
                      stats_of(&r).states_every_us <= INTERVAL_MS * 1000);
        pg_ok(w, "BEGIN");
        pg_ok(w, "LOCK TABLE river_job IN ACCESS EXCLUSIVE MODE");
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FILTER (WHERE query LIKE"
                 "  '%%finalized_at >= $1%%') * 10 + count(*)"
                 " FROM pg_stat_activity WHERE datname = '%s'"
                 " AND application_name = 'tributary-coordinator'"
                 " AND wait_event_type = 'Lock'",
                 pg_dbname);
        RUN_UNTIL(&r, "poll waiting for the lock",
                  (waiting = pg_int(admin, sql)) > 0);
        if (waiting == 11) {
            break;
        }
        pg_ok(w, "ROLLBACK");
    }
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS false",
             pg_dbname);
    pg_ok(admin, sql);
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE datname = '%s'"
             " AND application_name = 'tributary-coordinator'",
             pg_dbname);
    assert_int_equal(pg_int(admin, sql), 1);
    t_kill = trib_now_us();
    pg_ok(w, "ROLLBACK");
    t_fin = pg_clock(w);
    states_at = counts_of(&r).states_polled_at_us;
    spin(&r, OUTAGE_MS);
    st = stats_of(&r);
    assert_true(st.failed > 0);
    assert_non_null(counts_of(&r).error);

    /* Back. The first statements answered are the ones queued during the
     * outage; the non-final one's cost is measured from the new session
     * (before: from the failure, ten times the outage as its period). */
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true",
             pg_dbname);
    t_allow = trib_now_us();
    pg_ok(admin, sql);
    polls = st.polls;
    RUN_UNTIL(&r, "non-final counts after the outage",
              counts_of(&r).states_polled_at_us != states_at);
    t_seen = trib_now_us();
    st = stats_of(&r);
    if (counts_of(&r).states_polled_at_us >= t_kill) {
        queued = 0; /* sent after the failure: not this run's case */
        print_message("note: the non-final statement was not queued "
                      "through the outage: the outage runs again\n");
    }
    assert_true(st.states_every_us <= INTERVAL_MS * 1000 ||
                st.states_every_us <= 10 * (t_seen - t_allow));

    /* The first final-state poll after the outage holds the bound. */
    RUN_UNTIL(&r, "a poll after the outage", stats_of(&r).polls > polls);
    st = stats_of(&r);
    pc = counts_of(&r);
    assert_true(st.hold_until_us != 0);
    /* That poll's now() (the hold's start) is at least OUTAGE_MS after
     * t_fin: without the hold the bound would be past t_fin. */
    held_from = st.hold_until_us - (HOLD_MS + MARGIN_MS) * 1000LL;
    assert_true(t_fin < held_from - MARGIN_MS * 1000LL);
    assert_int_equal(pc.states[TRIB_WS_COMPLETED], 5);

    /* The writer reconnects later than the poller and commits the rows
     * it finished during the outage: 2 s and more after their
     * finalized_at, four times the margin. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO river_job (state, finalized_at)"
             " SELECT 'completed', to_timestamp(%lld / 1e6)"
             " FROM generate_series(1, %d)",
             (long long)t_fin, LATE_ROWS);
    pg_ok(w, sql);
    t_after = pg_clock(w);
    if (t_after >= st.hold_until_us) {
        ok = 0; /* held up past the hold: run again */
        print_message("note: held up %.3f s: the outage runs again\n",
                      (double)(t_after - held_from) / 1e6);
    }

    /* Held windows re-read the rows: each counted once. Then the hold
     * ends and the cursor moves on. */
    RUN_UNTIL(&r, "the hold's end", stats_of(&r).hold_until_us == 0);
    polls = stats_of(&r).polls;
    RUN_UNTIL(&r, "two more polls", stats_of(&r).polls >= polls + 2);
    pc = counts_of(&r);
    st = stats_of(&r);
    if (ok) {
        assert_null(pc.error);
        assert_int_equal(pc.states[TRIB_WS_COMPLETED], completed(w));
        assert_int_equal(pc.states[TRIB_WS_COMPLETED], 5 + LATE_ROWS);
        assert_int_equal(st.outage_rows, LATE_ROWS);

        /* Committed after the hold: the bound has passed t_fin, the row
         * is not read (docs/POLLING.md, "What can be missed"). */
        snprintf(sql, sizeof(sql),
                 "INSERT INTO river_job (state, finalized_at)"
                 " VALUES ('completed', to_timestamp(%lld / 1e6))",
                 (long long)t_fin);
        pg_ok(w, sql);
        polls = st.polls;
        RUN_UNTIL(&r, "three more polls", stats_of(&r).polls >= polls + 3);
        assert_int_equal(counts_of(&r).states[TRIB_WS_COMPLETED],
                         completed(w) - 1);
    }

    uv_timer_stop(&r.step);
    uv_close((uv_handle_t *)&r.step, NULL);
    trib_poller_close(r.p, on_poller_closed, &r.closed);
    RUN_UNTIL(&r, "poller closed", r.closed);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r.loop), 0);
    return ok && queued;
}

/*
 * A database outage for everyone: the poller comes back first and polls
 * again at once; a writer commits the rows it finished during the outage
 * only later (agents reconnect with a backoff of up to 5 s). The hold
 * keeps the bound until HOLD_MS + margin after the poller's first poll:
 * the rows are counted, once, as outage rows. The non-final statement
 * that waited through the outage is not charged for it.
 */
static void test_pg_outage(void **state)
{
    PGconn *admin = PQconnectdb(pg_admin_url), *w = pg_db();
    int i;

    (void)state;
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    for (i = 0; i < 5 && !outage_run(admin, w); i++) {
    }
    if (i == 5) {
        fail_msg("the outage did not go as intended in 5 runs out of 5");
    }
    PQfinish(w);
    PQfinish(admin);
}

int main(void)
{
    const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test(test_pg_outage),
    };

    return cmocka_run_group_tests_name("poller against PostgreSQL", pg_tests,
                                       pg_setup, pg_teardown);
}
