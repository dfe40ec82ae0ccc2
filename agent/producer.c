/*
 * producer.c -- one queue of one client: worker slots, fetch triggers and
 * the fetch itself, pause/resume, remote cancel, river_queue upkeep.
 *
 * Fetch triggers (River): start, an insert notification for this queue, the
 * jittered poll timer, a freed slot after a full batch, resume. They are
 * debounced by a cooldown with a leading edge: the first trigger fetches at
 * once, later ones within the cooldown collapse into one trailing fetch. At
 * most one fetch is in flight; a fetch asks for exactly the free slots.
 *
 * The cooldown adapts: it is fetch_cooldown after an idle spell (the first
 * job is picked up at once), doubles up to fetch_cooldown_max while fetches
 * keep coming back with one or two jobs (a steady trickle of notifications:
 * batch them) and halves when fetches find many.
 *
 * Upkeep (every 2 s in poll mode, every 60 s with LISTEN): re-read the
 * queue's paused_at, ask which running jobs have cancel_attempted_at, and
 * every 10 min refresh the river_queue row (the leader deletes rows idle for
 * a day).
 */
#include "agent_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <stdlib.h>
#include <string.h>

#define UPKEEP_POLL_MS   2000
#define UPKEEP_NOTIFY_MS 60000
#define REPORT_US        (600LL * TRIB_US_PER_S)
#define CANCEL_CHUNK     1000
#define RETRY_START_MS   1000
#define IDLE_RESET_US    (50 * TRIB_US_PER_MS)

static void do_fetch(struct trib_producer *p);
static void start_upsert(struct trib_producer *p);
static void on_upsert_retry(uv_timer_t *t);

static int free_slots(const struct trib_producer *p)
{
    return p->max_workers - p->active;
}

/* ---------------------------------------------------------- timers */

static uint64_t poll_delay_ms(const struct trib_producer *p)
{
    int64_t iv = p->client->conf->poll_interval_us;
    int64_t range = iv / 10 > 10000 ? iv / 10 : 10000;
    int64_t d = iv + (int64_t)(((double)rand() / ((double)RAND_MAX + 1.0)) *
                               (double)range);

    return (uint64_t)(d / 1000);
}

static void on_poll(uv_timer_t *t)
{
    struct trib_producer *p = t->data;

    trib__producer_trigger(p);
    if (!p->stopping) {
        uv_timer_start(&p->poll_timer, on_poll, poll_delay_ms(p), 0);
    }
}

static void on_cooldown(uv_timer_t *t)
{
    struct trib_producer *p = t->data;

    if (p->want_fetch) {
        trib__producer_trigger(p);
    }
}

/* ----------------------------------------------------------- fetch */

void trib__producer_trigger(struct trib_producer *p)
{
    struct trib_client *c = p->client;
    uint64_t now, since, cooldown;

    if (!p->ready || p->stopping || c->stopping || p->paused) {
        return;
    }
    /* Backpressure: a long write-back backlog, or an outbox that is full
     * of events the coordinator has not acknowledged (running jobs go on;
     * their events still go into the outbox). */
    if (c->backpressure || c->agent->outbox_full || p->fetching) {
        p->want_fetch = 1;
        return;
    }
    if (free_slots(p) <= 0) {
        p->fetch_when_slots = 1;
        return;
    }
    now = trib_mono_us();
    since = now - p->last_fetch_mono;
    if (since > IDLE_RESET_US) {
        p->cooldown_us = (uint64_t)c->conf->fetch_cooldown_us; /* idle */
    }
    cooldown = p->cooldown_us;
    if (p->last_fetch_mono != 0 && since < cooldown) {
        p->want_fetch = 1;
        if (!uv_is_active((uv_handle_t *)&p->cooldown_timer)) {
            uv_timer_start(&p->cooldown_timer, on_cooldown,
                           (cooldown - since + 999) / 1000, 0);
        }
        return;
    }
    do_fetch(p);
}

/* ----------------------------------------------------- due timer */

/* Jobs that are 'available' with a future scheduled_at (short retries and
 * snoozes, delayed inserts, the scheduler's early moves) are due at a known
 * time. A fetch that did not fill its slots also reports when the next one
 * becomes due (within one poll interval): fetch exactly then instead of
 * waiting for the poll. */
static void on_due(uv_timer_t *t)
{
    trib__producer_trigger(t->data);
}

static void arm_due(struct trib_producer *p, long long ms)
{
    uint64_t at = uv_now(p->client->agent->loop) + (uint64_t)(ms > 0 ? ms : 0);

    if (p->stopping) {
        return;
    }
    if (uv_is_active((uv_handle_t *)&p->due_timer) &&
        uv_timer_get_due_in(&p->due_timer) + uv_now(p->client->agent->loop) <=
            at) {
        return; /* an earlier wake-up is already set */
    }
    uv_timer_start(&p->due_timer, on_due, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static struct trib_job *job_from_row(struct trib_producer *p,
                                     const PGresult *res, int row)
{
    struct trib_agent *a = p->client->agent;
    const char *kind = PQgetvalue(res, row, 8);
    const char *args = PQgetvalue(res, row, 9);
    const char *meta = PQgetvalue(res, row, 10);
    const char *tags = PQgetvalue(res, row, 11);
    size_t lk = strlen(kind) + 1, la = strlen(args) + 1;
    size_t lm = strlen(meta) + 1, lt = strlen(tags) + 1;
    struct trib_job *job = trib_calloc(1, sizeof(*job) + lk + la + lm + lt);
    char *s = (char *)(job + 1);

    job->prod = p;
    job->client = p->client;
    job->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    job->attempt = atoi(PQgetvalue(res, row, 1));
    job->max_attempts = atoi(PQgetvalue(res, row, 2));
    job->priority = atoi(PQgetvalue(res, row, 3));
    trib_pgtime_parse(PQgetvalue(res, row, 4), &job->attempted_at);
    trib_pgtime_parse(PQgetvalue(res, row, 5), &job->created_at);
    trib_pgtime_parse(PQgetvalue(res, row, 6), &job->scheduled_at);
    job->nerrors = atoi(PQgetvalue(res, row, 7));
    job->kind_name = memcpy(s, kind, lk);
    job->args = memcpy(s + lk, args, la);
    job->metadata = memcpy(s + lk + la, meta, lm);
    job->tags = memcpy(s + lk + la + lm, tags, lt);
    job->kind = trib__kinds_find(a->kinds, kind);
    atomic_init(&job->cancel, TRIB_CANCEL_NONE);
    return job;
}

static void on_fetch(void *arg, int status, PGresult *res)
{
    struct trib_producer *p = arg;
    struct trib_job **jobs;
    int n, i, limit = p->fetching;

    if (status == TRIB_ECANCELED) {
        return; /* closing */
    }
    if (status != 0) {
        /* Logged by trib_pg for connection loss; the next trigger
         * retries (River only logs fetch errors). */
        if (status == TRIB_EDB || status == TRIB_ESCHEMA) {
            TRIB_WARN("AGT-FETCH", "client %s queue %s: fetch failed: %s",
                      p->client->id, p->queue, trib_pg_errmsg(res));
        }
        p->fetching = 0;
        p->want_fetch = 1;
        return;
    }
    n = PQntuples(res);
    if (n > 0 && PQgetisnull(res, n - 1, 0)) {
        /* the last row is the "next due" report (see sql.c FETCH) */
        n--;
        if (!PQgetisnull(res, n, 12)) {
            arm_due(p, strtoll(PQgetvalue(res, n, 12), NULL, 10));
        }
    }
    p->fetches++;
    p->fetched += (uint64_t)n;
    /* adapt the cooldown (see the top of this file) */
    if (n <= 2 && n < limit) {
        uint64_t max = (uint64_t)p->client->conf->fetch_cooldown_max_us;
        p->cooldown_us = p->cooldown_us * 2 > max ? max : p->cooldown_us * 2;
    } else if (n >= 8) {
        uint64_t min = (uint64_t)p->client->conf->fetch_cooldown_us;
        p->cooldown_us = p->cooldown_us / 2 < min ? min : p->cooldown_us / 2;
    }
    if (n >= limit) {
        p->fetch_when_slots = 1; /* full batch: more are probably waiting */
    }
    /* Build every job first, then start them: a job that finishes at once
     * must not trigger a fetch while this batch is still being started
     * (p->fetching stays set until the end). */
    jobs = trib_malloc((size_t)(n > 0 ? n : 1) * sizeof(*jobs));
    for (i = 0; i < n; i++) {
        jobs[i] = job_from_row(p, res, i);
        jobs[i]->next = p->run_head;
        if (p->run_head != NULL) {
            p->run_head->prev = jobs[i];
        }
        p->run_head = jobs[i];
        p->active++;
    }
    for (i = 0; i < n; i++) {
        trib__job_start(jobs[i]);
    }
    trib_free(jobs);
    p->fetching = 0;
    if (p->want_fetch ||
        (p->fetch_when_slots && free_slots(p) >= p->max_workers / 10 + 1)) {
        p->fetch_when_slots = 0;
        trib__producer_trigger(p);
    }
}

static void do_fetch(struct trib_producer *p)
{
    struct trib_client *c = p->client;
    struct trib_agent *a = c->agent;
    char limit[16], horizon[32];
    const char *params[5];
    const struct trib_pg_stmt *st = &a->sql.fetch;
    int n = free_slots(p);

    snprintf(limit, sizeof(limit), "%d", n);
    params[0] = p->queue;
    params[1] = limit;
    params[2] = c->id;
    snprintf(horizon, sizeof(horizon), "%.6f",
             (double)c->conf->poll_interval_us / TRIB_US_PER_S);
    params[3] = horizon;
    params[4] = c->known_kinds;
    if (c->known_kinds != NULL) {
        st = &a->sql.fetch_known;
    }
    p->fetching = n; /* non-zero while in flight; remembers the limit */
    p->want_fetch = 0;
    p->last_fetch_mono = trib_mono_us();
    trib_pg_query(c->fetch_pg, st, st->nparams, params, on_fetch, p);
}

void trib__producer_job_done(struct trib_producer *p, struct trib_job *job)
{
    if (job->prev != NULL) {
        job->prev->next = job->next;
    } else {
        p->run_head = job->next;
    }
    if (job->next != NULL) {
        job->next->prev = job->prev;
    }
    job->prev = job->next = NULL;
    p->active--;
    if (p->fetch_when_slots && !p->fetching &&
        free_slots(p) >= p->max_workers / 10 + 1) {
        p->fetch_when_slots = 0;
        trib__producer_trigger(p);
    }
    /* No shutdown check here: the job is not in the completer yet, so the
     * agent would look idle. trib__job_finish() checks after handing the
     * job over. */
}

/* ------------------------------------------------- pause and cancel */

void trib__producer_set_paused(struct trib_producer *p, int paused)
{
    if (p->paused == paused) {
        return;
    }
    p->paused = paused;
    TRIB_INFO("AGT-PAUSE", "client %s queue %s %s", p->client->id, p->queue,
              paused ? "paused" : "resumed");
    {
        /* River's queue_paused / queue_resumed, per producer */
        struct trib_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = paused ? TRIB_EV_QUEUE_PAUSED : TRIB_EV_QUEUE_RESUMED;
        ev.client_id = p->client->id;
        ev.queue = p->queue;
        ev.at = trib__db_now(p->client->agent);
        trib_event_publish(&p->client->agent->bus, &ev, 1);
    }
    if (!paused) {
        trib__producer_trigger(p);
    }
}

void trib__producer_cancel_job(struct trib_producer *p, int64_t job_id)
{
    struct trib_job *j;

    for (j = p->run_head; j != NULL; j = j->next) {
        if (j->id == job_id) {
            TRIB_INFO("AGT-CANCEL", "client %s: job %lld cancelled remotely",
                      p->client->id, (long long)job_id);
            trib__job_cancel(j, TRIB_CANCEL_REMOTE);
            return;
        }
    }
}

/* ----------------------------------------------------------- upkeep */

static void upkeep_step(struct trib_producer *p, int step);

static void on_upsert(void *arg, int status, PGresult *res)
{
    struct trib_producer *p = arg;

    if (status == TRIB_ECANCELED) {
        return;
    }
    if (status != 0 || PQntuples(res) != 1) {
        if (status != TRIB_EDBCONN) {
            TRIB_WARN("AGT-QUEUE",
                      "client %s queue %s: river_queue upsert "
                      "failed: %s",
                      p->client->id, p->queue, trib_pg_errmsg(res));
        }
        if (!p->ready && !p->stopping) {
            /* Not started yet: try again shortly. */
            uv_timer_start(&p->upkeep_timer, on_upsert_retry, RETRY_START_MS,
                           0);
        }
        return;
    }
    p->next_report_mono = trib_mono_us() + REPORT_US;
    if (!p->ready) {
        p->ready = 1;
        p->paused = PQgetvalue(res, 0, 0)[0] == 't';
        TRIB_DEBUG("AGT-QUEUE", "client %s queue %s ready%s", p->client->id,
                   p->queue, p->paused ? " (paused)" : "");
        uv_timer_start(&p->poll_timer, on_poll, poll_delay_ms(p), 0);
        upkeep_step(p, -1); /* arms the periodic upkeep */
        trib__producer_trigger(p);
    }
}

static void start_upsert(struct trib_producer *p)
{
    const char *params[1] = {p->queue};
    struct trib_agent *a = p->client->agent;

    if (p->stopping) {
        return;
    }
    trib_pg_query(p->client->fetch_pg, &a->sql.queue_upsert, 1, params,
                  on_upsert, p);
}

static void on_upsert_retry(uv_timer_t *t)
{
    start_upsert(t->data);
}

static void on_queue_get(void *arg, int status, PGresult *res)
{
    struct trib_producer *p = arg;

    if (status == TRIB_ECANCELED) {
        return;
    }
    if (status == 0 && PQntuples(res) == 1) {
        trib__producer_set_paused(p, PQgetvalue(res, 0, 0)[0] == 't');
    }
    upkeep_step(p, 1);
}

static void on_cancel_requested(void *arg, int status, PGresult *res)
{
    struct trib_producer *p = arg;
    int i;

    if (status == TRIB_ECANCELED) {
        return;
    }
    if (status == 0) {
        for (i = 0; i < PQntuples(res); i++) {
            trib__producer_cancel_job(p,
                                      strtoll(PQgetvalue(res, i, 0), NULL, 10));
        }
    }
    upkeep_step(p, 2);
}

static void on_upkeep_timer(uv_timer_t *t)
{
    upkeep_step(t->data, 0);
}

/* Upkeep as a small sequence: 0 settings, 1 cancels, 2 report, 3 re-arm.
 * step -1 only re-arms. */
static void upkeep_step(struct trib_producer *p, int step)
{
    struct trib_client *c = p->client;
    struct trib_agent *a = c->agent;

    if (p->stopping) {
        return;
    }
    if (step == 0) {
        const char *params[1] = {p->queue};
        trib_pg_query(c->fetch_pg, &a->sql.queue_get, 1, params, on_queue_get,
                      p);
        return;
    }
    if (step == 1 && p->run_head != NULL) {
        struct trib_buf ids = TRIB_BUF_INIT;
        struct trib_job *j;
        int n = 0;
        const char *params[1];

        trib_buf_putc(&ids, '{');
        for (j = p->run_head; j != NULL && n < CANCEL_CHUNK; j = j->next) {
            if (j->phase != PHASE_RUNNING) {
                continue;
            }
            if (n++ > 0) {
                trib_buf_putc(&ids, ',');
            }
            trib_buf_put_i64(&ids, j->id);
        }
        trib_buf_putc(&ids, '}');
        params[0] = ids.data;
        trib_pg_query(c->fetch_pg, &a->sql.cancel_requested, 1, params,
                      on_cancel_requested, p);
        trib_buf_fini(&ids);
        return;
    }
    if (step <= 2 && trib_mono_us() >= p->next_report_mono) {
        const char *params[1] = {p->queue};
        trib_pg_query(c->fetch_pg, &a->sql.queue_upsert, 1, params, on_upsert,
                      p);
    }
    uv_timer_start(
        &p->upkeep_timer, on_upkeep_timer,
        c->conf->mode == TRIB_MODE_POLL ? UPKEEP_POLL_MS : UPKEEP_NOTIFY_MS, 0);
}

/* -------------------------------------------------------- lifecycle */

int trib__producer_create(struct trib_client *c, const char *queue,
                          int max_workers, struct trib_producer **out)
{
    struct trib_producer *p = TRIB_NEW(struct trib_producer);
    uv_loop_t *loop = c->agent->loop;

    p->client = c;
    p->queue = trib_strdup(queue);
    p->max_workers = max_workers;
    p->cooldown_us = (uint64_t)c->conf->fetch_cooldown_us;
    uv_timer_init(loop, &p->poll_timer);
    uv_timer_init(loop, &p->cooldown_timer);
    uv_timer_init(loop, &p->upkeep_timer);
    uv_timer_init(loop, &p->due_timer);
    p->poll_timer.data = p->cooldown_timer.data = p->upkeep_timer.data = p;
    p->due_timer.data = p;
    p->open_handles = 4;
    *out = p;
    return 0;
}

void trib__producer_start(struct trib_producer *p)
{
    start_upsert(p);
}

void trib__producer_stop(struct trib_producer *p)
{
    p->stopping = 1;
    uv_timer_stop(&p->poll_timer);
    uv_timer_stop(&p->cooldown_timer);
    uv_timer_stop(&p->upkeep_timer);
    uv_timer_stop(&p->due_timer);
}

static void on_closed(uv_handle_t *h)
{
    struct trib_producer *p = h->data;

    if (--p->open_handles == 0) {
        trib_free(p->queue);
        trib_free(p);
    }
}

void trib__producer_close(struct trib_producer *p)
{
    trib__producer_stop(p);
    uv_close((uv_handle_t *)&p->poll_timer, on_closed);
    uv_close((uv_handle_t *)&p->cooldown_timer, on_closed);
    uv_close((uv_handle_t *)&p->upkeep_timer, on_closed);
    uv_close((uv_handle_t *)&p->due_timer, on_closed);
}
