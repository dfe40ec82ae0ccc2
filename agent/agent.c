/*
 * agent.c -- the agent process: boot against the database, run the
 * clients, the elector and maintenance on one libuv loop, and stop
 * cleanly.
 *
 * Boot: connect the control connection, resolve the schema
 * (current_schema() unless configured), check that River's tables exist
 * (else say "run tributary migrate up" and retry every 5 s), measure the
 * database clock, then start everything.
 *
 * Stop (SIGTERM/SIGINT):
 *   1. drain      clients stop fetching; running jobs may finish within
 *                 shutdown_grace; write-backs keep flowing;
 *   2. interrupt  remaining jobs are cancelled: they go back to
 *                 'available' with their attempt restored
 *                 (job_interrupted); a blocking job that ignores this for
 *                 5 s is written back as interrupted anyway;
 *   3. flush      wait for the last write-backs (at most 30 s when the
 *                 database is unreachable: then exit 1 and say how many
 *                 jobs the rescuer will have to recover);
 *   4. resign     leadership;
 *   5. forward    with --coordinator: keep forwarding until the
 *                 coordinator has every event on disk, at most
 *                 forward_drain_timeout, then GOODBYE; what is not
 *                 acknowledged stays in the outbox for the next start;
 *   6. close      connections, exit 0.
 * A second signal skips the rest of the grace period (or of the forward
 * drain).
 */
#include "agent_int.h"
#include "forwarder.h"
#include "trib_auth.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_json.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "trib_tls.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BOOT_RETRY_MS    5000
#define CLOCK_EVERY_MS   60000
#define STRAGGLER_MS     5000
#define FLUSH_TIMEOUT_MS 30000

static void boot_step(struct trib_agent *a);
static void stop_next(struct trib_agent *a);
static void on_stop_timer(uv_timer_t *t);
static void close_all(struct trib_agent *a);

int64_t trib__db_now(const struct trib_agent *a)
{
    return trib_now_us() + a->clock_offset_us;
}

static void agent_pg_opts(struct trib_agent *a, const char *name,
                          struct trib_pg_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->conninfo = a->conf->database_url ? a->conf->database_url : "";
    o->name = name;
    o->app_name = "tributary-agent";
}

/* The fetch runs over and over while a queue is idle, possibly while
 * river_job is empty: after five executions PostgreSQL may switch it to a
 * cached generic plan, and one chosen on an empty, analyzed table joins
 * with sequential scans -- seconds per fetch once jobs arrive
 * (docs/PERFORMANCE.md). Fetch sessions plan every execution (~0.3 ms);
 * other statements only run when there is data and keep cached plans. */
#define CUSTOM_PLANS_SQL "SET plan_cache_mode = force_custom_plan"

int trib__agent_pg(struct trib_agent *a, const char *client_id,
                   const char *name, int custom_plans, struct trib_pg **out)
{
    char app[TRIB_PG_APP_NAME_MAX + 1];
    struct trib_pg_opts o;

    agent_pg_opts(a, name, &o);
    if (client_id != NULL) {
        /* A client's sessions carry its id, so pg_stat_activity tells the
         * clients apart (tributary stress compares notify- and poll-mode
         * clients' database load by it). */
        trib_pg_app_name(app, sizeof(app), "tributary-agent:", client_id);
        o.app_name = app; /* copied by trib_pg_create() */
    }
    if (custom_plans) {
        o.setup_sql = CUSTOM_PLANS_SQL;
    }
    return trib_pg_create(a->loop, &o, out);
}

/* ------------------------------------------------------------ clock */

struct clock_probe {
    struct trib_agent *a;
    int64_t t0;
};

static void on_clock(void *arg, int status, PGresult *res)
{
    struct clock_probe *cp = arg;
    struct trib_agent *a = cp->a;
    int64_t t1 = trib_now_us(), db;

    if (status != TRIB_ECANCELED) {
        a->clock_busy = 0;
    }
    if (status == 0 && PQntuples(res) == 1) {
        db = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        a->clock_offset_us = db - (cp->t0 + t1) / 2;
        if (!a->clock_known || a->clock_offset_us > 50000 ||
            a->clock_offset_us < -50000) {
            TRIB_LOG(a->clock_offset_us > 50000 || a->clock_offset_us < -50000
                         ? TRIB_LOG_WARN
                         : TRIB_LOG_DEBUG,
                     "AGT-CLOCK",
                     "database clock is %+.3f ms from ours (round trip "
                     "%.3f ms); times we write use the database clock",
                     (double)a->clock_offset_us / 1000.0,
                     (double)(t1 - cp->t0) / 1000.0);
        }
        a->clock_known = 1;
    }
    trib_free(cp);
}

static void measure_clock(struct trib_agent *a)
{
    struct clock_probe *cp;

    if (a->clock_busy) {
        return; /* one probe at a time (it may wait out an outage) */
    }
    cp = TRIB_NEW(struct clock_probe);
    a->clock_busy = 1;

    cp->a = a;
    cp->t0 = trib_now_us();
    if (trib_pg_query(a->ctl, &a->sql.clock, 0, NULL, on_clock, cp) != 0) {
        a->clock_busy = 0;
        trib_free(cp);
    }
}

static void on_clock_timer(uv_timer_t *t)
{
    measure_clock(t->data);
    trib__intents_resolve(t->data); /* if the first try failed */
}

/* ------------------------------------------------------------ stats */

/* One line per client and queue: what an operator needs to see that work
 * flows (and the test suite to see how the fetch cooldown batches). */
static void on_stats_timer(uv_timer_t *t)
{
    struct trib_agent *a = t->data;
    size_t i, q;

    for (i = 0; i < a->nclients; i++) {
        struct trib_client *c = a->clients[i];
        uint64_t stmts, rows;

        trib__completer_stats(c->completer, &stmts, &rows);
        for (q = 0; q < c->nproducers; q++) {
            struct trib_producer *p = c->producers[q];
            TRIB_INFO(
                "AGT-STATS",
                "client %s queue %s: running %d/%d, fetches %llu "
                "(jobs %llu), cooldown %.1f ms%s; client write-backs "
                "%llu (rows %llu), backlog %zu",
                c->id, p->queue, p->active, p->max_workers,
                (unsigned long long)p->fetches, (unsigned long long)p->fetched,
                (double)p->cooldown_us / 1000.0, p->paused ? ", paused" : "",
                (unsigned long long)stmts, (unsigned long long)rows,
                trib__completer_backlog(c->completer));
        }
    }
    if (a->outbox != NULL) {
        struct trib_outbox_stats ob;
        struct trib_forwarder_stats fw;

        trib_outbox_stats(a->outbox, &ob);
        trib_forwarder_stats(a->fwd, &fw);
        TRIB_INFO("AGT-STATS",
                  "outbox: %" PRIu64 " event(s) not yet durable (%" PRIu64
                  " bytes, %d boot(s))%s; coordinator %s, %" PRIu64
                  " event(s) forwarded in %" PRIu64 " batch(es)",
                  ob.events, ob.bytes, ob.nboots,
                  ob.full ? ", FULL: fetching paused" : "",
                  fw.connected ? "connected" : "not connected", fw.events,
                  fw.batches);
    }
}

/* --------------------------------------------------------- listener */

static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct trib_agent *a = arg;
    json_t *j = NULL;
    const char *queue = NULL, *action = NULL;
    int64_t job_id = 0;
    char err[128];
    size_t i;

    if (a->state != AGENT_RUNNING) {
        return;
    }
    if (strcmp(channel, a->sql.ch_leader) == 0) {
        trib__leader_on_notify(a->leader, payload);
        return;
    }
    if (trib_json_parse(payload, strlen(payload), &j, err, sizeof(err)) != 0) {
        TRIB_DEBUG("AGT-NOTIFY", "ignoring malformed notification on %s: %s",
                   channel, err);
        return;
    }
    trib_json_str(j, "queue", 0, &queue, err, sizeof(err));
    if (strcmp(channel, a->sql.ch_insert) == 0) {
        if (queue != NULL) {
            for (i = 0; i < a->nclients; i++) {
                trib__client_on_insert(a->clients[i], queue);
            }
        }
    } else if (strcmp(channel, a->sql.ch_control) == 0) {
        trib_json_str(j, "action", 0, &action, err, sizeof(err));
        trib_json_int(j, "job_id", 0, 0, INT64_MAX, &job_id, err, sizeof(err));
        for (i = 0; i < a->nclients; i++) {
            trib__client_on_control(a->clients[i], action, queue, job_id);
        }
    }
    json_decref(j);
}

static void on_listener_state(void *arg, int connected)
{
    struct trib_agent *a = arg;
    size_t i;

    /* After a reconnect, notifications sent meanwhile are lost: fetch. */
    if (connected && a->state == AGENT_RUNNING) {
        for (i = 0; i < a->nclients; i++) {
            trib__client_on_insert(a->clients[i], NULL);
        }
    }
}

/* ------------------------------------------------------------- boot */

static int start_runtime(struct trib_agent *a)
{
    struct trib_pg_opts o;
    const char *channels[4];
    size_t i;
    int rv, any_notify = 0;

    a->clients = trib_calloc(a->conf->nclients, sizeof(*a->clients));
    for (i = 0; i < a->conf->nclients; i++) {
        rv = trib__client_create(a, &a->conf->clients[i], &a->clients[i]);
        if (rv != 0) {
            return rv;
        }
        a->nclients++;
        if (a->conf->clients[i].mode == TRIB_MODE_NOTIFY) {
            any_notify = 1;
        }
    }
    if (any_notify) {
        agent_pg_opts(a, "listener", &o);
        channels[0] = a->sql.ch_insert;
        channels[1] = a->sql.ch_control;
        channels[2] = a->conf->leader_enabled ? a->sql.ch_leader : NULL;
        channels[3] = NULL;
        o.listen = channels;
        o.on_notify = on_notify;
        o.on_state = on_listener_state;
        o.arg = a;
        rv = trib_pg_create(a->loop, &o, &a->listener);
        if (rv != 0) {
            return rv;
        }
        trib_pg_start(a->listener);
    }
    rv = trib__sink_create(a, &a->sink);
    if (rv != 0) {
        return rv;
    }
    rv = trib__maint_create(a, &a->maint);
    if (rv != 0) {
        return rv;
    }
    rv = trib__leader_create(a, &a->leader);
    if (rv != 0) {
        return rv;
    }
    a->state = AGENT_RUNNING;
    trib__intents_resolve(a); /* before new write-backs */
    for (i = 0; i < a->nclients; i++) {
        trib__client_start(a->clients[i]);
    }
    trib__leader_start(a->leader);
    uv_timer_start(&a->clock_timer, on_clock_timer, CLOCK_EVERY_MS,
                   CLOCK_EVERY_MS);
    if (a->conf->stats_interval_us > 0) {
        uint64_t ms = (uint64_t)(a->conf->stats_interval_us / 1000);
        uv_timer_start(&a->stats_timer, on_stats_timer, ms ? ms : 1,
                       ms ? ms : 1);
    }
    return 0;
}

static void on_boot_timer(uv_timer_t *t)
{
    boot_step(t->data);
}

static void boot_retry(struct trib_agent *a)
{
    uv_timer_start(&a->boot_timer, on_boot_timer, BOOT_RETRY_MS, 0);
}

static void on_tables(void *arg, int status, PGresult *res)
{
    struct trib_agent *a = arg;
    int rv;

    if (status == TRIB_ECANCELED || a->state != AGENT_BOOT) {
        return;
    }
    if (status != 0) {
        if (status != TRIB_EDBCONN) {
            trib_complain(&a->boot_complain, TRIB_LOG_ERROR, "AGT-BOOT",
                          "cannot inspect the database: %s",
                          trib_pg_errmsg(res));
        }
        boot_retry(a);
        return;
    }
    if (PQgetvalue(res, 0, 0)[0] != 't') {
        trib_complain(&a->boot_complain, TRIB_LOG_ERROR, "AGT-SCHEMA",
                      "no River schema in \"%s\" (table river_job is "
                      "missing): run `tributary migrate up` (retrying every "
                      "%d s)",
                      a->sql.schema, BOOT_RETRY_MS / 1000);
        boot_retry(a);
        return;
    }
    trib_complain_release(&a->boot_complain, "AGT-SCHEMA",
                          "River schema found in \"%s\"", a->sql.schema);
    measure_clock(a);
    rv = start_runtime(a);
    if (rv != 0) {
        TRIB_ERROR("AGT-BOOT", "cannot start: %s", trib_strerror(rv));
        a->exit_code = 1;
        close_all(a);
    }
}

static void check_tables(struct trib_agent *a)
{
    static const struct trib_pg_stmt stmt = {
        NULL, "SELECT to_regclass($1::text) IS NOT NULL", 1};
    char name[160];
    const char *params[1] = {name};
    struct trib_buf b = TRIB_BUF_INIT;

    trib_pg_quote_ident(&b, a->sql.schema);
    snprintf(name, sizeof(name), "%s.river_job", b.data);
    trib_buf_fini(&b);
    trib_pg_query(a->ctl, &stmt, 1, params, on_tables, a);
}

static void on_schema(void *arg, int status, PGresult *res)
{
    struct trib_agent *a = arg;

    if (status == TRIB_ECANCELED || a->state != AGENT_BOOT) {
        return;
    }
    if (status != 0 || PQgetisnull(res, 0, 0)) {
        trib_complain(&a->boot_complain, TRIB_LOG_ERROR, "AGT-SCHEMA",
                      "cannot determine the current schema: %s (set "
                      "--schema)",
                      status ? trib_pg_errmsg(res) : "search_path is empty");
        boot_retry(a);
        return;
    }
    trib__sql_init(&a->sql, PQgetvalue(res, 0, 0));
    a->sql_ready = 1;
    check_tables(a);
}

static void boot_step(struct trib_agent *a)
{
    if (a->state != AGENT_BOOT) {
        return;
    }
    if (a->sql_ready) {
        check_tables(a);
    } else if (a->conf->schema != NULL) {
        trib__sql_init(&a->sql, a->conf->schema);
        a->sql_ready = 1;
        check_tables(a);
    } else {
        trib_pg_exec(a->ctl, "SELECT current_schema()", on_schema, a);
    }
}

/* ------------------------------------------------------- forwarding */

static void trigger_all(struct trib_agent *a)
{
    size_t i, q;

    for (i = 0; i < a->nclients; i++) {
        for (q = 0; q < a->clients[i]->nproducers; q++) {
            trib__producer_trigger(a->clients[i]->producers[q]);
        }
    }
}

/* The outbox crossed its bound (or writes fail), or drained below 90 %. */
static void on_outbox_full(void *arg, int full)
{
    struct trib_agent *a = arg;
    struct trib_outbox_stats st;

    a->outbox_full = full;
    trib_outbox_stats(a->outbox, &st);
    if (full) {
        TRIB_WARN(
            "AGT-BACKPRESSURE",
            "outbox %s is full (%" PRIu64 " of %" PRId64 " bytes, %" PRIu64
            " event(s) not acknowledged%s): no client fetches new "
            "jobs until the coordinator acknowledges events; running "
            "jobs go on",
            a->conf->outbox_dir, st.bytes, a->conf->outbox_max_bytes, st.events,
            st.write_failed
                ? ", writes failing (disk full or failing: see AGT-OUTBOX)"
                : "");
    } else {
        TRIB_INFO("AGT-BACKPRESSURE",
                  "outbox below 90%% (%" PRIu64 " bytes): fetching resumed",
                  st.bytes);
        trigger_all(a);
    }
}

/* The agent's part of a heartbeat: its connections and clients. */
static void heartbeat_sample(void *arg, struct trib_wire_heartbeat *hb)
{
    struct trib_agent *a = arg;
    size_t i;
    int n = 0;

    hb->db_conns = 1 + (a->listener != NULL) + (a->maint != NULL) +
                   (int64_t)a->nclients * 2 +
                   (a->sink != NULL ? a->conf->sink_connections : 0);
    for (i = 0; i < a->nclients && n < TRIB_WIRE_MAX_CLIENTS; i++) {
        struct trib_client *c = a->clients[i];
        hb->clients[n].id = trib_str_c(c->id);
        /* fetched and not yet written back (still 'running' in the db) */
        hb->clients[n].in_flight =
            (int64_t)(trib__client_running(c) +
                      trib__completer_backlog(c->completer));
        hb->clients[n].fetch_paused = a->outbox_full;
        n++;
    }
    hb->nclients = n;
}

/* With --coordinator: the outbox (older boots are loaded for replay), the
 * forwarder, and the bus subscription. 0 or a trib_err (logged). */
static int forward_open(struct trib_agent *a)
{
    struct trib_agent_conf *cf = a->conf;
    struct trib_outbox_opts oo;
    struct trib_forwarder_opts fo;
    struct trib_tls_opts tls; /* strings borrowed from cf; read by the dial */
    char err[256];
    uint64_t boot = 0;
    size_t i, q;
    int rv;

    rv = trib_auth_load_secret(cf->secret_file, &a->secret, &a->secret_len, err,
                               sizeof(err));
    if (rv != 0) {
        TRIB_ERROR("AGT-AUTH", "%s", err);
        return rv;
    }
    while (boot == 0) {
        if (trib_auth_random(&boot, sizeof(boot)) != 0) {
            TRIB_ERROR("AGT-FORWARD", "no random bytes for the boot id");
            return TRIB_EIO;
        }
    }
    memset(&oo, 0, sizeof(oo));
    oo.dir = cf->outbox_dir;
    oo.boot_id = boot;
    oo.started_at = trib_now_us();
    oo.segment_bytes = (uint64_t)cf->outbox_segment_bytes;
    oo.max_bytes = (uint64_t)cf->outbox_max_bytes;
    oo.fsync_ms = (uint64_t)(cf->outbox_fsync_us / 1000);
    oo.fsync_ms = oo.fsync_ms ? oo.fsync_ms : 1;
    oo.cache_bytes = 4u << 20;
    oo.on_full = on_outbox_full;
    oo.on_meta = trib__intents_on_meta;
    oo.arg = a;
    rv = trib_outbox_open(a->loop, &oo, &a->outbox);
    if (rv != 0) {
        return rv;
    }
    trib__intents_hold(a);
    a->hello_clients = trib_calloc(cf->nclients, sizeof(*a->hello_clients));
    for (i = 0; i < cf->nclients; i++) {
        struct trib_wire_client *w = &a->hello_clients[i];
        w->id = trib_str_c(cf->clients[i].id);
        w->mode = trib_str_c(cf->clients[i].mode == TRIB_MODE_POLL ? "poll"
                                                                   : "notify");
        for (q = 0; q < cf->clients[i].nqueues && q < TRIB_WIRE_MAX_QUEUES;
             q++) {
            w->queues[q] = trib_str_c(cf->clients[i].queues[q].name);
        }
        w->nqueues = (int)q;
    }
    gethostname(a->host, sizeof(a->host) - 1);
    memset(&fo, 0, sizeof(fo));
    fo.loop = a->loop;
    fo.outbox = a->outbox;
    fo.url = cf->coordinator;
    fo.agent_id = cf->node_id;
    fo.boot_id = boot;
    fo.started_at = oo.started_at;
    fo.host = a->host; /* borrowed by the forwarder: lives in the agent */
    fo.version = TRIB_VERSION;
    fo.secret = a->secret;
    fo.secret_len = a->secret_len;
    fo.clients = a->hello_clients;
    fo.nclients = (int)cf->nclients;
    fo.heartbeat_ms = cf->heartbeat_us / 1000;
    fo.sample = heartbeat_sample;
    fo.arg = a;
    trib_agent_conf_tls(cf, &tls);
    fo.tls = &tls;
    rv = trib_forwarder_start(&fo, &a->fwd);
    if (rv != 0) {
        return rv;
    }
    return trib_event_subscribe(&a->bus, trib_forwarder_on_events, a->fwd);
}

/* ------------------------------------------------------------- stop */

static int all_idle(const struct trib_agent *a)
{
    size_t i;

    for (i = 0; i < a->nclients; i++) {
        if (!trib__client_idle(a->clients[i])) {
            return 0;
        }
    }
    return 1;
}

static size_t running_jobs(const struct trib_agent *a)
{
    size_t i, n = 0;

    for (i = 0; i < a->nclients; i++) {
        n += trib__client_running(a->clients[i]);
    }
    return n;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct trib_agent *a = h->data;

    a->open_handles--;
}

static void close_all(struct trib_agent *a)
{
    size_t i;

    if (a->state == AGENT_CLOSING) {
        return;
    }
    a->state = AGENT_CLOSING;
    uv_timer_stop(&a->stop_timer);
    for (i = 0; i < a->nclients; i++) {
        trib__client_close(a->clients[i]);
    }
    a->nclients = 0;
    trib__leader_close(a->leader);
    a->leader = NULL;
    trib__maint_close(a->maint);
    a->maint = NULL;
    trib__sink_close(a->sink);
    a->sink = NULL;
    trib_forwarder_close(a->fwd); /* no event can come after the clients */
    a->fwd = NULL;
    trib_outbox_close(a->outbox);
    a->outbox = NULL;
    if (a->listener != NULL) {
        trib_pg_close(a->listener, NULL, NULL);
        a->listener = NULL;
    }
    trib_pg_close(a->ctl, NULL, NULL);
    a->ctl = NULL;
    uv_close((uv_handle_t *)&a->boot_timer, on_handle_closed);
    uv_close((uv_handle_t *)&a->clock_timer, on_handle_closed);
    uv_close((uv_handle_t *)&a->stats_timer, on_handle_closed);
    uv_close((uv_handle_t *)&a->stop_timer, on_handle_closed);
    uv_close((uv_handle_t *)&a->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&a->sig_int, on_handle_closed);
}

static void on_resigned(void *arg)
{
    struct trib_agent *a = arg;

    /* Close from a fresh loop iteration, never deep inside a callback. */
    a->stop_phase = 5;
    uv_timer_start(&a->stop_timer, (uv_timer_cb)on_stop_timer, 0, 0);
}

static void on_drained(void *arg)
{
    struct trib_agent *a = arg;

    if (a->stop_phase == 6) {
        a->stop_phase = 7;
        uv_timer_start(&a->stop_timer, (uv_timer_cb)on_stop_timer, 0, 0);
    }
}

/* After the write-backs: the coordinator should get the last events. */
static void forward_drain(struct trib_agent *a)
{
    struct trib_outbox_stats st;

    if (a->fwd == NULL) {
        close_all(a);
        return;
    }
    a->stop_phase = 6;
    trib_outbox_stats(a->outbox, &st);
    if (st.events > 0) {
        TRIB_INFO("AGT-STOP",
                  "forwarding the last %" PRIu64
                  " event(s) to the coordinator (at most %.1f s)",
                  st.events, (double)a->conf->forward_drain_timeout_us / 1e6);
    }
    trib_forwarder_drain(a->fwd,
                         (uint64_t)(a->conf->forward_drain_timeout_us / 1000),
                         on_drained, a);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct trib_agent *a = t->data;
    size_t i;

    if (a->stop_phase == 5) {
        forward_drain(a);
    } else if (a->stop_phase == 7) {
        close_all(a);
    } else if (a->stop_phase == 1) {
        a->stop_phase = 2;
        TRIB_INFO("AGT-STOP",
                  "grace period over: interrupting %zu running "
                  "job(s)",
                  running_jobs(a));
        for (i = 0; i < a->nclients; i++) {
            trib__client_cancel_all(a->clients[i], TRIB_CANCEL_SHUTDOWN);
        }
        uv_timer_start(&a->stop_timer, on_stop_timer, STRAGGLER_MS, 0);
        stop_next(a);
    } else if (a->stop_phase == 2) {
        for (i = 0; i < a->nclients; i++) {
            trib__client_interrupt_stragglers(a->clients[i]);
        }
        a->stop_phase = 3;
        uv_timer_start(&a->stop_timer, on_stop_timer, FLUSH_TIMEOUT_MS, 0);
        stop_next(a);
    } else if (a->stop_phase == 3) {
        size_t left = 0;
        for (i = 0; i < a->nclients; i++) {
            left += trib__completer_backlog(a->clients[i]->completer);
        }
        TRIB_ERROR("AGT-STOP",
                   "could not write back %zu job outcome(s) "
                   "before exiting (database unreachable); those jobs stay "
                   "'running' until the leader's rescuer recovers them",
                   left);
        a->exit_code = 1;
        a->stop_phase = 4;
        trib__leader_stop(a->leader, on_resigned, a);
    }
}

/* Advances the stop sequence when the current phase's work is done. */
static void stop_next(struct trib_agent *a)
{
    if (a->state != AGENT_STOPPING || a->stop_phase >= 4) {
        return;
    }
    if (running_jobs(a) == 0 && a->stop_phase < 3) {
        a->stop_phase = 3;
        uv_timer_start(&a->stop_timer, on_stop_timer, FLUSH_TIMEOUT_MS, 0);
    }
    if (a->stop_phase == 3 && all_idle(a)) {
        a->stop_phase = 4;
        uv_timer_stop(&a->stop_timer);
        TRIB_INFO("AGT-STOP", "all jobs written back; stopping");
        if (a->leader != NULL) {
            trib__leader_stop(a->leader, on_resigned, a);
        } else {
            forward_drain(a);
        }
    }
}

void trib__agent_check_stopped(struct trib_agent *a)
{
    stop_next(a);
}

static void begin_stop(struct trib_agent *a)
{
    size_t i;

    if (a->state == AGENT_BOOT) {
        a->stop_phase = 5;
        uv_timer_start(&a->stop_timer, on_stop_timer, 0, 0);
        return;
    }
    if (a->state != AGENT_RUNNING) {
        return;
    }
    a->state = AGENT_STOPPING;
    a->stop_phase = 1;
    TRIB_INFO("AGT-STOP", "stopping: %zu job(s) running, grace %.1f s",
              running_jobs(a), (double)a->conf->shutdown_grace_us / 1e6);
    for (i = 0; i < a->nclients; i++) {
        trib__client_stop(a->clients[i]);
    }
    uv_timer_stop(&a->clock_timer);
    if (a->conf->stats_interval_us > 0) {
        on_stats_timer(&a->stats_timer); /* a last line, then no more */
    }
    uv_timer_stop(&a->stats_timer);
    uv_timer_start(&a->stop_timer, on_stop_timer,
                   (uint64_t)(a->conf->shutdown_grace_us / 1000), 0);
    stop_next(a);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct trib_agent *a = h->data;

    a->signals++;
    if (a->signals == 1) {
        TRIB_INFO("AGT-SIGNAL", "received %s", strsignal(signum));
        begin_stop(a);
    } else if (a->state == AGENT_STOPPING && a->stop_phase == 1) {
        TRIB_INFO("AGT-SIGNAL", "second %s: interrupting running jobs now",
                  strsignal(signum));
        uv_timer_start(&a->stop_timer, on_stop_timer, 0, 0);
    } else if (a->stop_phase == 6) {
        TRIB_INFO("AGT-SIGNAL",
                  "second %s: not waiting for the coordinator; the events "
                  "stay in the outbox",
                  strsignal(signum));
        on_drained(a);
    }
}

/* ------------------------------------------------------------- main */

static void on_ctl_state(void *arg, int connected)
{
    struct trib_agent *a = arg;

    if (connected && a->state == AGENT_BOOT &&
        !uv_is_active((uv_handle_t *)&a->boot_timer)) {
        boot_step(a);
    }
}

static int run(struct trib_agent_conf *conf, struct trib_kinds *kinds)
{
    struct trib_agent a;
    struct trib_pg_opts o;
    uv_loop_t loop;
    int rv;

    memset(&a, 0, sizeof(a));
    uv_loop_init(&loop);
    a.loop = &loop;
    a.conf = conf;
    a.kinds = kinds;
    if (conf->events_out != NULL) {
        rv = trib_ndjson_open(conf->events_out, &a.ndjson);
        if (rv != 0) {
            uv_loop_close(&loop);
            return 1;
        }
        trib_event_subscribe(&a.bus, trib_ndjson_write, a.ndjson);
    }
    if (conf->coordinator != NULL) {
        rv = forward_open(&a);
        if (rv != 0) {
            TRIB_ERROR("AGT-START", "cannot forward events to %s: %s",
                       conf->coordinator, trib_strerror(rv));
            trib_forwarder_close(a.fwd);
            trib_outbox_close(a.outbox);
            uv_run(&loop, UV_RUN_DEFAULT);
            uv_loop_close(&loop);
            trib_ndjson_close(a.ndjson);
            trib_free(a.secret);
            trib_free(a.hello_clients);
            trib__intents_free(a.intents);
            return rv == TRIB_ECONFIG || rv == TRIB_EINVAL ? 2 : 1;
        }
    }
    agent_pg_opts(&a, "control", &o);
    o.on_state = on_ctl_state;
    o.arg = &a;
    trib_pg_create(&loop, &o, &a.ctl);
    uv_timer_init(&loop, &a.boot_timer);
    uv_timer_init(&loop, &a.clock_timer);
    uv_timer_init(&loop, &a.stats_timer);
    a.stats_timer.data = &a;
    uv_timer_init(&loop, &a.stop_timer);
    a.boot_timer.data = a.clock_timer.data = a.stop_timer.data = &a;
    uv_signal_init(&loop, &a.sig_term);
    uv_signal_init(&loop, &a.sig_int);
    a.sig_term.data = a.sig_int.data = &a;
    uv_signal_start(&a.sig_term, on_signal, SIGTERM);
    uv_signal_start(&a.sig_int, on_signal, SIGINT);
    a.open_handles = 6;
    TRIB_INFO("AGT-START", "tributary-agent %s on node %s: %zu client(s)",
              TRIB_VERSION, conf->node_id, conf->nclients);
    trib_pg_start(a.ctl);

    uv_run(&loop, UV_RUN_DEFAULT);

    if (a.sql_ready) {
        trib__sql_fini(&a.sql);
    }
    trib_free(a.clients);
    trib_ndjson_close(a.ndjson);
    if (a.secret != NULL) {
        memset(a.secret, 0, a.secret_len);
        trib_free(a.secret);
    }
    trib_free(a.hello_clients);
    trib__intents_free(a.intents);
    rv = uv_loop_close(&loop);
    if (rv != 0) {
        /* A worker thread still runs an abandoned job: exit anyway. */
        TRIB_DEBUG("AGT-STOP", "loop close: %s", uv_strerror(rv));
    }
    TRIB_INFO("AGT-STOP", "stopped (events published: %llu)",
              (unsigned long long)a.bus.published);
    return a.exit_code;
}

/* PQconninfoParse() accepts any port text; libpq rejects a bad one only
 * when connecting, which the agent would retry forever. */
static int check_ports(const PQconninfoOption *opts, char *err, size_t n)
{
    const PQconninfoOption *o;

    for (o = opts; o->keyword != NULL; o++) {
        const char *p = o->val;

        if (strcmp(o->keyword, "port") != 0 || p == NULL) {
            continue;
        }
        while (*p != '\0') { /* comma-separated, one per host */
            size_t len = strcspn(p, ",");
            char *end;
            long v = strtol(p, &end, 10);

            if (len > 0 && (end != p + len || v < 1 || v > 65535)) {
                snprintf(err, n, "port \"%.*s\" is not a number 1..65535",
                         (int)len, p);
                return TRIB_ECONFIG;
            }
            p += len;
            if (*p == ',') {
                p++;
            }
        }
    }
    return 0;
}

int trib_agent_main(int argc, char **argv, trib_register_fn register_kinds)
{
    struct trib_agent_conf *conf = NULL;
    struct trib_kinds kinds;
    char err[1024], threads[16];
    int rv;

    memset(&kinds, 0, sizeof(kinds));
    trib_log_init("agent", TRIB_LOG_INFO);
    rv = trib_agent_conf_load(argc, argv, &conf, err, sizeof(err));
    if (rv == 1) {
        return 0;
    }
    if (rv != 0) {
        fprintf(stderr, "tributary-agent: %s\n", err);
        return 2;
    }
    trib_log_init("agent", conf->log_level);
    if (conf->database_url != NULL) {
        char *perr = NULL;
        PQconninfoOption *opts = PQconninfoParse(conf->database_url, &perr);
        if (opts == NULL) {
            fprintf(stderr, "tributary-agent: invalid --database-url: %s",
                    perr ? perr : "out of memory\n");
            PQfreemem(perr);
            trib_agent_conf_free(conf);
            return 2;
        }
        rv = check_ports(opts, err, sizeof(err));
        PQconninfoFree(opts);
        if (rv != 0) {
            fprintf(stderr, "tributary-agent: invalid --database-url: %s\n",
                    err);
            trib_agent_conf_free(conf);
            return 2;
        }
    }
    rv = trib__kinds_builtin(&kinds);
    if (rv == 0 && register_kinds != NULL) {
        rv = register_kinds(&kinds);
    }
    if (rv != 0) {
        fprintf(stderr, "tributary-agent: registering job kinds failed: %s\n",
                trib_strerror(rv));
        trib_free(kinds.v);
        trib_agent_conf_free(conf);
        return 2;
    }
    snprintf(threads, sizeof(threads), "%d", conf->threads);
    setenv("UV_THREADPOOL_SIZE", threads, 1);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)(trib_now_us() ^ (int64_t)uv_os_getpid()));
    rv = run(conf, &kinds);
    trib_free(kinds.v);
    trib_agent_conf_free(conf);
    return rv;
}
