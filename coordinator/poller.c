/*
 * poller.c -- the polling view on the coordinator's loop: a timer, one
 * trib_pg connection, and the glue between their results, the tally
 * (poller_tally.c) and the status document (poller_diff.c).
 *
 * A poll is one or two statements queued back to back on the poller's
 * connection:
 *   1. final states: the baseline the first time, then the window from the
 *      cursor's lower bound (poller_sql.c);
 *   2. non-final states, when due: every interval, or less often when the
 *      count is slow (at most ~10 % of the connection's time: the period
 *      is max(interval, 10 x its last duration)).
 * Just before sending, the event view's per-(queue, kind, state) counts
 * are noted, so that the differences can tell events newer than the poll
 * from events whose rows are missing.
 *
 * A tick that finds the previous poll unanswered is skipped and counted:
 * polls never pile up behind a slow database or an outage (trib_pg keeps
 * the queued statement and runs it after reconnecting).
 *
 * Outages: a failed statement or a lost connection is told to the tally
 * (trib__tally_outage()), which then holds the finalized_at bound for
 * outage_hold_ms plus the margin after the first poll that succeeds
 * again: the agents reconnect after the poller (their backoff reaches
 * 5 s plus jitter) and only then commit the write-backs of jobs finished
 * before or during the outage. The first poll holds too: the coordinator
 * may start during an outage it cannot see (trib_pg reports the loss of a
 * session that was up, not a database that is not up yet). Durations
 * (polls.last_duration_ms, and the non-final statement's cost that sets
 * its period) are measured from the session's start at the earliest,
 * never across a reconnect.
 */
#include "poller.h"
#include "poller_int.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_pg.h"
#include "trib_time.h"
#include "view.h"

#include <stdio.h>
#include <string.h>

#define STATES_SHARE 10 /* non-final counts: period >= 10 x duration */

/* Session settings: custom plans (a generic plan chosen on an empty table
 * would scan it; docs/PERFORMANCE.md), enough work_mem for the baseline to
 * aggregate in a hash table rather than sort the whole table to disk (its
 * groups are few; measured in docs/POLLING.md), a bound on any statement,
 * and no writes from this connection. */
#define SETUP_SQL                                                              \
    "SET plan_cache_mode = force_custom_plan;"                                 \
    " SET work_mem = '64MB';"                                                  \
    " SET statement_timeout = '5min';"                                         \
    " SET default_transaction_read_only = on"

struct trib_poller {
    uv_loop_t *loop;
    struct trib_poller_conf conf; /* strings point to the copies below */
    char *conninfo, *schema;
    const struct trib_view *view;

    struct trib_pg *pg;
    uv_timer_t timer;
    struct trib__tally *tally;
    struct trib__poll_sql sql;
    struct trib_pg_stmt st_baseline, st_window, st_states;

    int started, closing, pending_close;
    int busy;      /* statements of the current poll not answered yet */
    int connected; /* the session is up (trib_pg on_state)            */

    int64_t sent_us;           /* current poll's final statement sent   */
    int64_t states_sent_us;    /* current poll's non-final statement    */
    int64_t final_answered_us; /* when the final statement answered     */
    int64_t connected_us;      /* when the current session came up      */
    int64_t polled_at_us;      /* sent_us of the poll behind the counts */
    int64_t states_polled_at_us;
    int64_t last_duration_us, states_duration_us;
    int64_t states_every_us, states_next_us;

    char *error; /* NULL when the last statement succeeded */
    uint64_t polls, failed, skipped;
    uint64_t overflow_told;
    int unfinalized_told;
    struct trib_complain complain, late_complain;

    void (*done)(void *arg);
    void *done_arg;
};

/* ------------------------------------------------------------ helpers */

static void set_error(struct trib_poller *p, const char *msg)
{
    trib_free(p->error);
    p->error = msg != NULL ? trib_strdup(msg) : NULL;
}

static void on_view_final(void *arg, const char *queue, const char *kind,
                          int ws, int64_t n)
{
    trib__tally_snap_add(arg, queue, kind, ws, n);
}

static void on_view_final_now(void *arg, const char *queue, const char *kind,
                              int ws, int64_t n)
{
    struct trib__key k = {queue, kind, NULL, ws, 0};

    trib__ctab_add(arg, &k, n);
}

static int view_known(void *arg, const char *client)
{
    return trib_view_client_known(arg, client);
}

/* A failed statement: remember and complain (rate-limited). */
static void poll_failed(struct trib_poller *p, const char *what, int status,
                        PGresult *res)
{
    char msg[600];

    if (status == TRIB_EDBCONN) {
        snprintf(msg, sizeof(msg), "%s: database connection lost", what);
    } else if (trib_err_from_pg(res) == TRIB_ESCHEMA) {
        snprintf(msg, sizeof(msg),
                 "%s: %s (run `tributary migrate up`, or check the schema)",
                 what, trib_pg_errmsg(res));
    } else {
        snprintf(msg, sizeof(msg), "%s: %s", what, trib_pg_errmsg(res));
    }
    set_error(p, msg);
    p->failed++;
    trib__tally_outage(p->tally);
    trib_complain(&p->complain, TRIB_LOG_WARN, "CRD-POLL", "%s", msg);
}

/* When a statement answered now started to run, at the earliest: it may
 * have waited in trib_pg's queue through a reconnect. */
static int64_t run_start(const struct trib_poller *p, int64_t sent_us)
{
    return p->connected_us > sent_us ? p->connected_us : sent_us;
}

static void read_failed(struct trib_poller *p, const char *what,
                        const char *why)
{
    char msg[600];

    snprintf(msg, sizeof(msg), "%s: unexpected result: %s", what, why);
    set_error(p, msg);
    p->failed++;
    trib_complain(&p->complain, TRIB_LOG_ERROR, "CRD-POLL", "%s", msg);
}

/* One-time notes about what the counts could not hold. */
static void tell_once(struct trib_poller *p)
{
    struct trib__tally_stats s;

    trib__tally_stats(p->tally, &s);
    if (s.overflowed > 0 && p->overflow_told == 0) {
        TRIB_WARN("CRD-POLLGROUPS",
                  "more than %u (queue, kind, state, client) groups in "
                  "river_job: further ones are counted as \"(other)\"",
                  p->conf.max_groups);
        p->overflow_told = s.overflowed;
    }
    if (s.unfinalized > 0 && !p->unfinalized_told) {
        TRIB_WARN("CRD-POLLNULL",
                  "%lld river_job rows are in a final state with "
                  "finalized_at NULL (River's CHECK forbids this since "
                  "migration 4): they are not counted",
                  (long long)s.unfinalized);
        p->unfinalized_told = 1;
    }
}

/* ------------------------------------------------------------ results */

static void on_final(void *arg, int status, PGresult *res)
{
    struct trib_poller *p = arg;
    struct trib__tally_stats s;
    int64_t now;
    char err[256];
    int late = 0, first;

    p->busy--;
    if (status == TRIB_ECANCELED) {
        return; /* closing */
    }
    now = trib_now_us();
    p->final_answered_us = now;
    if (status != 0) {
        poll_failed(p, "polling river_job (final states)", status, res);
        return;
    }
    first = !trib__tally_counting(p->tally);
    if (trib__poll_read_final(p->tally, res, &late, err, sizeof(err)) != 0) {
        read_failed(p, "polling river_job (final states)", err);
        return;
    }
    p->polls++;
    p->polled_at_us = p->sent_us;
    p->last_duration_us = now - run_start(p, p->sent_us);
    set_error(p, NULL);
    trib_complain_release(&p->complain, "CRD-POLL", "polling river_job again");
    trib__tally_stats(p->tally, &s);
    if (first) {
        TRIB_INFO("CRD-POLL",
                  "polling river_job every %lld ms: the first poll counted "
                  "%llu final rows in %.3f s",
                  (long long)p->conf.interval_ms,
                  (unsigned long long)s.rows_counted,
                  (double)p->last_duration_us / 1e6);
    }
    if (late) {
        trib_complain(&p->late_complain, TRIB_LOG_WARN, "CRD-POLLLATE",
                      "river_job rows committed up to %.3f s after their "
                      "finalized_at: the poller now re-reads %.3f s of "
                      "finalized_at (at most %.3f s; later rows would be "
                      "missed)",
                      (double)s.max_lateness_us / 1e6,
                      (double)s.margin_us / 1e6,
                      (double)p->conf.margin_max_ms / 1e3);
    }
    tell_once(p);
}

static void on_states(void *arg, int status, PGresult *res)
{
    struct trib_poller *p = arg;
    int64_t now, start;
    char err[256];

    p->busy--;
    if (status == TRIB_ECANCELED) {
        return;
    }
    now = trib_now_us();
    if (status != 0) {
        poll_failed(p, "polling river_job (non-final states)", status, res);
        return;
    }
    if (trib__poll_read_states(p->tally, res, err, sizeof(err)) != 0) {
        read_failed(p, "polling river_job (non-final states)", err);
        return;
    }
    /* Its own duration: from when the statement ahead of it answered, or
     * the session came up (never across a reconnect: a statement queued
     * through an outage would otherwise count the outage as its cost and
     * space the non-final counts ten times the outage apart). */
    start = run_start(p, p->states_sent_us);
    if (p->final_answered_us > start) {
        start = p->final_answered_us;
    }
    p->states_duration_us = now - start;
    p->states_polled_at_us = p->states_sent_us;
    p->states_every_us = p->conf.interval_ms * 1000;
    if (p->states_duration_us * STATES_SHARE > p->states_every_us) {
        p->states_every_us = p->states_duration_us * STATES_SHARE;
    }
    p->states_next_us = p->states_sent_us + p->states_every_us;
}

/* ------------------------------------------------------------- polling */

static void poll_now(struct trib_poller *p)
{
    int64_t now = trib_now_us();
    char param[64];
    const char *params[1] = {param};

    if (p->view != NULL) {
        trib__tally_snap_begin(p->tally);
        trib_view_each_final(p->view, on_view_final, p->tally);
    }
    p->sent_us = now;
    if (trib__tally_counting(p->tally)) {
        trib_time_rfc3339(trib__tally_lower_bound(p->tally), param,
                          sizeof(param), 6);
        if (trib_pg_query(p->pg, &p->st_window, 1, params, on_final, p) != 0) {
            return;
        }
    } else {
        snprintf(param, sizeof(param), "%lld",
                 (long long)trib__tally_margin(p->tally));
        if (trib_pg_query(p->pg, &p->st_baseline, 1, params, on_final, p) !=
            0) {
            return;
        }
    }
    p->busy++;
    /* Due within half an interval: ticks come every interval give or take
     * the timer's rounding to milliseconds, and a period of one interval
     * must not skip every other tick. */
    if (now + p->conf.interval_ms * 500 >= p->states_next_us &&
        trib_pg_query(p->pg, &p->st_states, 0, NULL, on_states, p) == 0) {
        p->states_sent_us = now;
        p->busy++;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct trib_poller *p = t->data;

    if (p->busy > 0) {
        p->skipped++;
        TRIB_DEBUG("CRD-POLLSKIP",
                   "river_job poll still running: tick skipped (%llu so far)",
                   (unsigned long long)p->skipped);
        return;
    }
    poll_now(p);
}

static void on_pg_state(void *arg, int connected)
{
    struct trib_poller *p = arg;

    p->connected = connected;
    if (connected) {
        p->connected_us = trib_now_us();
    } else {
        set_error(p, "database connection lost (reconnecting)");
        trib__tally_outage(p->tally);
    }
}

/* ------------------------------------------------------------ lifecycle */

void trib_poller_conf_defaults(struct trib_poller_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->interval_ms = 1000;
    c->margin_ms = 2000;
    c->margin_max_ms = 30000;
    c->transit_ms = 60000;
    c->max_groups = 10000;
    c->outage_hold_ms = 10000;
}

int trib_poller_create(uv_loop_t *loop, const struct trib_poller_conf *conf,
                       struct trib_poller **out)
{
    struct trib_poller *p;
    struct trib_pg_opts o;
    struct trib__tally_conf tc;
    int rv;

    if (conf->conninfo == NULL || conf->interval_ms < 0 ||
        conf->margin_ms < 0 || conf->margin_max_ms < conf->margin_ms ||
        conf->transit_ms < 0 || conf->outage_hold_ms < 0) {
        return TRIB_EINVAL;
    }
    p = TRIB_NEW(struct trib_poller);
    p->loop = loop;
    p->conf = *conf;
    p->conninfo = trib_strdup(conf->conninfo);
    p->schema = conf->schema != NULL && *conf->schema
                    ? trib_strdup(conf->schema)
                    : NULL;
    p->conf.conninfo = p->conninfo;
    p->conf.schema = p->schema;
    p->conf.max_groups = conf->max_groups > 0 ? conf->max_groups : 10000;
    p->view = conf->view;

    memset(&o, 0, sizeof(o));
    o.conninfo = p->conninfo;
    o.name = "poller";
    o.app_name = "tributary-coordinator";
    o.setup_sql = SETUP_SQL;
    o.on_state = on_pg_state;
    o.arg = p;
    if ((rv = trib_pg_create(loop, &o, &p->pg)) != 0) {
        goto fail;
    }
    tc.margin_us = conf->margin_ms * 1000;
    tc.margin_max_us = conf->margin_max_ms * 1000;
    tc.transit_us = conf->transit_ms * 1000;
    tc.max_groups = p->conf.max_groups;
    tc.hold_us = conf->outage_hold_ms * 1000;
    p->tally = trib__tally_create(&tc);
    trib__tally_outage(p->tally); /* the first poll holds (above) */
    trib__poll_sql_init(&p->sql, p->schema);
    p->st_baseline.name = "trib_poll_baseline";
    p->st_baseline.sql = p->sql.baseline;
    p->st_baseline.nparams = 1;
    p->st_window.name = "trib_poll_window";
    p->st_window.sql = p->sql.window;
    p->st_window.nparams = 1;
    p->st_states.name = "trib_poll_states";
    p->st_states.sql = p->sql.states;
    p->st_states.nparams = 0;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->states_every_us = conf->interval_ms * 1000;
    *out = p;
    return 0;

fail:
    trib_free(p->conninfo);
    trib_free(p->schema);
    trib_free(p);
    return rv;
}

int trib_poller_new(uv_loop_t *loop, const char *conninfo, const char *schema,
                    int64_t interval_ms, struct trib_poller **out)
{
    struct trib_poller_conf c;

    trib_poller_conf_defaults(&c);
    c.conninfo = conninfo;
    c.schema = schema;
    c.interval_ms = interval_ms;
    return trib_poller_create(loop, &c, out);
}

void trib_poller_start(struct trib_poller *p)
{
    if (p->started || p->closing || p->conf.interval_ms == 0) {
        return;
    }
    p->started = 1;
    trib_pg_start(p->pg);
    uv_timer_start(&p->timer, on_tick, 0, (uint64_t)p->conf.interval_ms);
}

static void close_step(struct trib_poller *p)
{
    void (*done)(void *) = p->done;
    void *arg = p->done_arg;

    if (--p->pending_close > 0) {
        return;
    }
    trib__tally_destroy(p->tally);
    trib__poll_sql_fini(&p->sql);
    trib_free(p->conninfo);
    trib_free(p->schema);
    trib_free(p->error);
    trib_free(p);
    if (done != NULL) {
        done(arg);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    close_step(h->data);
}

static void on_pg_closed(void *arg)
{
    close_step(arg);
}

void trib_poller_close(struct trib_poller *p, void (*done)(void *arg),
                       void *arg)
{
    if (p == NULL || p->closing) {
        return;
    }
    p->closing = 1;
    p->done = done;
    p->done_arg = arg;
    p->pending_close = 2;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    /* Runs on_final/on_states with TRIB_ECANCELED for queued statements;
     * on_pg_closed comes later, from the loop. */
    trib_pg_close(p->pg, on_pg_closed, p);
}

/* ------------------------------------------------------------ reading */

static json_t *time_or_null(int64_t us, int have)
{
    char buf[40];

    if (!have) {
        return json_null();
    }
    trib_time_rfc3339(us, buf, sizeof(buf), 3);
    return json_string(buf);
}

static const char *idle_error(const struct trib_poller *p)
{
    if (p->error != NULL) {
        return p->error;
    }
    if (p->conf.interval_ms == 0) {
        return "polling off (poll interval 0)";
    }
    if (!p->started) {
        return "not polled yet (not started)";
    }
    if (!p->connected) {
        return "not polled yet (connecting to the database)";
    }
    return "not polled yet";
}

static void render_health(const struct trib_poller *p, int64_t now_us,
                          json_t *db)
{
    struct trib__tally_stats s;
    json_t *cur = json_object(), *polls = json_object(), *warn;

    trib__tally_stats(p->tally, &s);
    json_object_set_new(db, "db_time", time_or_null(s.db_now_us, 1));
    json_object_set_new(db, "states_age_ms",
                        trib__tally_has_states(p->tally)
                            ? trib__json_ms(now_us - p->states_polled_at_us)
                            : json_null());

    json_object_set_new(cur, "counting_since", time_or_null(s.since_db_us, 1));
    json_object_set_new(cur, "finalized_from",
                        time_or_null(s.lower_bound_us, 1));
    json_object_set_new(cur, "margin_ms", trib__json_ms(s.margin_us));
    json_object_set_new(cur, "tracked_ids",
                        json_integer((json_int_t)s.tracked_ids));
    json_object_set_new(cur, "rows_read",
                        json_integer((json_int_t)s.rows_read));
    json_object_set_new(cur, "late_rows",
                        json_integer((json_int_t)s.late_rows));
    json_object_set_new(cur, "max_lateness_ms",
                        trib__json_ms(s.max_lateness_us));
    json_object_set_new(cur, "hold_until",
                        time_or_null(s.hold_until_us, s.hold_until_us != 0));
    json_object_set_new(cur, "outage_rows",
                        json_integer((json_int_t)s.outage_rows));
    json_object_set_new(db, "cursor", cur);

    json_object_set_new(polls, "ok", json_integer((json_int_t)p->polls));
    json_object_set_new(polls, "failed", json_integer((json_int_t)p->failed));
    json_object_set_new(polls, "skipped", json_integer((json_int_t)p->skipped));
    json_object_set_new(polls, "last_duration_ms",
                        trib__json_ms(p->last_duration_us));
    json_object_set_new(polls, "states_every_ms",
                        trib__json_ms(p->states_every_us));
    json_object_set_new(db, "polls", polls);

    warn = json_array();
    if (s.overflowed > 0) {
        json_array_append_new(
            warn, json_string("too many (queue, kind, state, client) groups: "
                              "some rows are counted under \"(other)\""));
    }
    if (s.unfinalized > 0) {
        json_array_append_new(
            warn, json_string("final-state rows with finalized_at NULL exist "
                              "and are not counted"));
    }
    json_object_set_new(db, "warnings", warn);
}

void trib_poller_render(struct trib_poller *p, const struct trib_view *view,
                        int64_t now_us, json_t *status_doc)
{
    json_t *db = json_object(), *filter;
    struct trib__diff_in in;
    struct trib__ctab *events = NULL;
    int polled = trib__tally_counting(p->tally);

    if (p->view == NULL) {
        p->view = view; /* noted at the next polls (poller.h) */
    }
    memset(&in, 0, sizeof(in));
    filter = json_object_get(status_doc, "filter");
    in.queue = json_string_value(json_object_get(filter, "queue"));
    in.kind = json_string_value(json_object_get(filter, "kind"));

    json_object_set_new(db, "polled_at", time_or_null(p->polled_at_us, polled));
    json_object_set_new(db, "age_ms",
                        polled ? trib__json_ms(now_us - p->polled_at_us)
                               : json_null());
    json_object_set_new(db, "interval_ms", json_integer(p->conf.interval_ms));
    if (polled) {
        json_object_set_new(db, "error",
                            p->error ? json_string(p->error) : json_null());
        events = trib__ctab_create();
        if (view != NULL) {
            trib_view_each_final(view, on_view_final_now, events);
        }
        in.events = events;
        in.known = view != NULL ? view_known : NULL;
        in.known_arg = (void *)view;
        in.age_us = now_us - p->polled_at_us;
        trib__diff_json(p->tally, &in, db);
        render_health(p, now_us, db);
        trib__ctab_destroy(events);
    } else {
        json_object_set_new(db, "error", json_string(idle_error(p)));
        json_object_set_new(db, "states", json_null());
        json_object_set_new(db, "rows", json_array());
        json_object_set_new(db, "differences", json_array());
    }
    if (json_is_string(json_object_get(filter, "node"))) {
        json_object_set_new(db, "node_filter_ignored", json_true());
    }
    json_object_set_new(status_doc, "database", db);
}

struct counts_walk {
    const char *queue, *kind;
    struct trib_poller_counts *out;
};

static int walk_match(const struct counts_walk *w, const struct trib__key *k)
{
    return (w->queue == NULL || strcmp(w->queue, k->queue) == 0) &&
           (w->kind == NULL || strcmp(w->kind, k->kind) == 0);
}

static void counts_final(void *arg, const struct trib__key *k, int64_t n,
                         int64_t recent)
{
    struct counts_walk *w = arg;

    if (walk_match(w, k)) {
        w->out->states[k->ws] += n;
    }
}

static void counts_state(void *arg, const struct trib__key *k, int64_t n)
{
    struct counts_walk *w = arg;

    if (walk_match(w, k) && k->ws > 0 && k->ws < TRIB_WS_COUNT) {
        w->out->states[k->ws] += n;
    }
}

int trib_poller_counts(const struct trib_poller *p, const char *queue,
                       const char *kind, struct trib_poller_counts *out)
{
    struct counts_walk w = {queue, kind, out};
    struct trib__tally_stats s;

    memset(out, 0, sizeof(*out));
    out->error = p->error;
    if (!trib__tally_counting(p->tally)) {
        return 0;
    }
    trib__tally_stats(p->tally, &s);
    out->polled = 1;
    out->polled_at_us = p->polled_at_us;
    out->db_time_us = s.db_now_us;
    out->states_polled_at_us = p->states_polled_at_us;
    trib__tally_each_final(p->tally, counts_final, &w);
    trib__tally_each_state(p->tally, counts_state, &w);
    out->failed =
        out->states[TRIB_WS_DISCARDED] + out->states[TRIB_WS_CANCELLED];
    out->finished = out->states[TRIB_WS_COMPLETED] + out->failed;
    return 0;
}

struct each_walk {
    void (*fn)(void *arg, const char *queue, const char *kind,
               const char *client, int ws, int rescued, int64_t n);
    void *arg;
};

static void each_final(void *arg, const struct trib__key *k, int64_t n,
                       int64_t recent)
{
    struct each_walk *w = arg;

    w->fn(w->arg, k->queue, k->kind, k->client, k->ws, k->rescued, n);
}

static void each_state(void *arg, const struct trib__key *k, int64_t n)
{
    struct each_walk *w = arg;

    w->fn(w->arg, k->queue, k->kind, NULL, k->ws, 0, n);
}

void trib_poller_each(const struct trib_poller *p,
                      void (*fn)(void *arg, const char *queue, const char *kind,
                                 const char *client, int ws, int rescued,
                                 int64_t n),
                      void *arg)
{
    struct each_walk w = {fn, arg};

    if (!trib__tally_counting(p->tally)) {
        return;
    }
    trib__tally_each_final(p->tally, each_final, &w);
    trib__tally_each_state(p->tally, each_state, &w);
}

void trib_poller_stats(const struct trib_poller *p, struct trib_poller_stats *s)
{
    struct trib__tally_stats ts;

    trib__tally_stats(p->tally, &ts);
    memset(s, 0, sizeof(*s));
    s->polls = p->polls;
    s->failed = p->failed;
    s->skipped = p->skipped;
    s->rows_read = ts.rows_read;
    s->late_rows = ts.late_rows;
    s->max_lateness_us = ts.max_lateness_us;
    s->margin_us = ts.margin_us;
    s->tracked_ids = ts.tracked_ids;
    s->groups = ts.groups;
    s->last_duration_us = p->last_duration_us;
    s->states_every_us = p->states_every_us;
    s->hold_until_us = ts.hold_until_us;
    s->outage_rows = ts.outage_rows;
}
