/*
 * completer.c -- one client's batched write-back (River's "completer").
 *
 * Finished jobs wait in a FIFO backlog. One statement is in flight at a
 * time on the completer's own connection; while it runs, the backlog grows,
 * so batches are as large as the load makes them (up to batch_max rows).
 * When idle, a small batch waits at most 'linger' to grow. Every statement
 * updates only rows still 'running' the attempt worked and returns each
 * job's persisted state, from which the events are made (River: events
 * follow the state actually written) -- only for rows that show this
 * write-back's values: a job rescued meanwhile gets no event from us.
 *
 * Backpressure: above backlog_high waiting jobs the client stops fetching;
 * it resumes below half of that.
 *
 * Failures never drop a write-back: the batch goes back to the head of the
 * backlog and is retried (after the reconnect for a lost connection, with a
 * backoff for a rejected statement, halving the batch each time so a single
 * bad row cannot hold the others back).
 */
#include "agent_int.h"
#include "outbox.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 10000

struct trib_completer {
    struct trib_client *client;
    struct trib_pg *pg;
    struct trib_job *head, *tail; /* backlog (FIFO via next/prev) */
    size_t backlog;
    struct trib_job **batch; /* in flight */
    size_t nbatch, batch_cap;
    size_t limit; /* current batch limit (halved on errors) */
    int busy;     /* statement in flight                    */
    int fast;     /* in-flight statement is the fast path   */
    int retry_ms;
    uv_timer_t timer; /* linger or retry                        */
    int closing;
    struct row_state *pending_rows; /* fast path awaiting job_states */
    struct trib_complain complain;
    uint64_t statements, rows;
    uint64_t not_applied; /* jobs whose write-back changed nothing */
};

static void maybe_flush(struct trib_completer *cm);

void trib__completer_stats(const struct trib_completer *cm,
                           uint64_t *statements, uint64_t *rows)
{
    *statements = cm->statements;
    *rows = cm->rows;
}

size_t trib__completer_backlog(const struct trib_completer *cm)
{
    return cm->backlog + cm->nbatch;
}

int trib__completer_idle(const struct trib_completer *cm)
{
    return cm->backlog == 0 && cm->nbatch == 0 && !cm->busy;
}

static void push_back(struct trib_completer *cm, struct trib_job *job)
{
    job->next = NULL;
    job->prev = cm->tail;
    if (cm->tail != NULL) {
        cm->tail->next = job;
    } else {
        cm->head = job;
    }
    cm->tail = job;
    cm->backlog++;
}

static struct trib_job *pop_front(struct trib_completer *cm)
{
    struct trib_job *job = cm->head;

    if (job != NULL) {
        cm->head = job->next;
        if (cm->head != NULL) {
            cm->head->prev = NULL;
        } else {
            cm->tail = NULL;
        }
        job->next = job->prev = NULL;
        cm->backlog--;
    }
    return job;
}

/* Puts the in-flight batch back at the head, in order. */
static void requeue_batch(struct trib_completer *cm)
{
    size_t i = cm->nbatch;

    while (i-- > 0) {
        struct trib_job *job = cm->batch[i];
        job->prev = NULL;
        job->next = cm->head;
        if (cm->head != NULL) {
            cm->head->prev = job;
        } else {
            cm->tail = job;
        }
        cm->head = job;
        cm->backlog++;
    }
    cm->nbatch = 0;
}

void trib__completer_add(struct trib_completer *cm, struct trib_job *job)
{
    struct trib_client *c = cm->client;

    job->wb_mono = trib_mono_us();
    push_back(cm, job);
    if (!c->backpressure && trib__completer_backlog(cm) >=
                                (size_t)c->agent->conf->complete_backlog_high) {
        trib__client_backpressure(c, 1);
    }
    maybe_flush(cm);
}

/* ---------------------------------------------------------- events */

static int event_kind(int persisted, enum job_outcome requested)
{
    switch (persisted) {
    case JS_COMPLETED:
        return TRIB_EV_JOB_COMPLETED;
    case JS_CANCELLED:
        return TRIB_EV_JOB_CANCELLED;
    case JS_DISCARDED:
    case JS_RETRYABLE:
        return TRIB_EV_JOB_FAILED;
    case JS_SCHEDULED:
        return TRIB_EV_JOB_SNOOZED;
    case JS_AVAILABLE:
        switch (requested) {
        case OUT_SNOOZE:
            return TRIB_EV_JOB_SNOOZED;
        case OUT_INTERRUPT:
            return TRIB_EV_JOB_INTERRUPTED;
        default:
            return TRIB_EV_JOB_FAILED;
        }
    default:
        return 0; /* running/pending: changed concurrently, no event */
    }
}

struct row_state {
    int state;
    int attempt;
    int64_t finalized_at, scheduled_at;
    int found;
};

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Publishes the batch's events and frees the jobs. rows[i] is the
 * persisted state of batch[i]. An event goes out only for a row that shows
 * this write-back's own values (trib__writeback_applied): a row rescued
 * and perhaps worked again by another client, cancelled or deleted while
 * the write-back waited did not take it, and River reports nothing for it
 * here (the rescue is maintenance; the next attempt's worker reports its
 * own outcome). A retried write-back whose first try committed finds its
 * values and reports them once. */
static void publish_batch(struct trib_completer *cm, struct row_state *rows)
{
    struct trib_agent *a = cm->client->agent;
    struct trib_event *evs = trib_calloc(cm->nbatch, sizeof(*evs));
    uint64_t now = trib_mono_us();
    int64_t at = trib__db_now(a);
    size_t i, n = 0, skipped = 0;

    for (i = 0; i < cm->nbatch; i++) {
        struct trib_job *job = cm->batch[i];
        struct trib_event *ev = &evs[n];
        struct trib_wb_expect want;
        int kind;

        trib__writeback_expect(job, &want);
        if (!rows[i].found || !trib__writeback_applied(
                                  &want, rows[i].state, rows[i].attempt,
                                  rows[i].finalized_at, rows[i].scheduled_at)) {
            skipped++;
            continue;
        }
        kind = event_kind(rows[i].state, job->outcome);
        if (kind == 0) {
            skipped++;
            continue;
        }
        ev->kind = kind;
        ev->client_id = cm->client->id;
        ev->job_id = job->id;
        ev->attempt = rows[i].attempt;
        ev->max_attempts = job->max_attempts;
        ev->queue = job->prod->queue;
        ev->job_kind = job->kind_name;
        ev->state = trib__state_name(rows[i].state);
        ev->priority = job->priority;
        ev->tags = job->tags;
        ev->created_at = job->created_at;
        ev->scheduled_at = job->scheduled_at;
        ev->attempted_at = job->attempted_at;
        ev->finalized_at = rows[i].finalized_at;
        ev->next_scheduled_at = rows[i].scheduled_at;
        ev->queue_wait_us = job->start_db - job->scheduled_at;
        ev->run_us = (int64_t)(job->end_mono - job->start_mono);
        ev->complete_us = (int64_t)(now - job->wb_mono);
        ev->error = job->outcome == OUT_INTERRUPT ? NULL : job->error;
        ev->at = at;
        n++;
    }
    if (skipped > 0) {
        cm->not_applied += skipped;
        TRIB_INFO("AGT-WRITEBACK",
                  "client %s: %zu of %zu write-backs did not apply: rows no "
                  "longer running the attempt worked (rescued, cancelled or "
                  "deleted meanwhile); no event for them (%" PRIu64 " so far)",
                  cm->client->id, skipped, cm->nbatch, cm->not_applied);
    }
    /* With an outbox: the batch's confirm goes into the same write as its
     * events (intents.c). */
    trib__intents_confirm(a, cm->batch, cm->nbatch);
    if (n > 0) {
        trib_event_publish(&a->bus, evs, n);
    }
    if (a->outbox != NULL) {
        trib_outbox_flush(a->outbox); /* the confirm, if no event did */
    }
    trib_free(evs);
    for (i = 0; i < cm->nbatch; i++) {
        trib__job_free(cm->batch[i]);
    }
    cm->nbatch = 0;
}

/* ------------------------------------------------------- statements */

static void batch_done(struct trib_completer *cm)
{
    struct trib_client *c = cm->client;

    cm->busy = 0;
    cm->retry_ms = 0;
    cm->limit = (size_t)c->agent->conf->complete_batch_max;
    if (cm->complain.active) {
        trib_complain_release(&cm->complain, "AGT-WRITEBACK",
                              "client %s: write-back recovered", c->id);
    }
    if (c->backpressure &&
        trib__completer_backlog(cm) <
            (size_t)c->agent->conf->complete_backlog_high / 2) {
        trib__client_backpressure(c, 0);
    }
    maybe_flush(cm);
    if (c->stopping) {
        trib__agent_check_stopped(c->agent);
    }
}

static void on_retry(uv_timer_t *t)
{
    maybe_flush(t->data);
}

/* The statement failed: requeue and retry. */
static void batch_failed(struct trib_completer *cm, int status,
                         const PGresult *res)
{
    cm->busy = 0;
    if (status == TRIB_ECANCELED) {
        return;
    }
    if (status != TRIB_EDBCONN) {
        trib_complain(&cm->complain, TRIB_LOG_ERROR, "AGT-WRITEBACK",
                      "client %s: write-back of %zu jobs failed (will retry): "
                      "%s",
                      cm->client->id, cm->nbatch, trib_pg_errmsg(res));
        if (cm->limit > 1) {
            cm->limit = cm->nbatch / 2 > 0 ? cm->nbatch / 2 : 1;
        }
    }
    requeue_batch(cm);
    /* A lost connection: the retry waits in trib_pg's queue for the
     * reconnect. A rejected statement: back off. */
    cm->retry_ms = status == TRIB_EDBCONN            ? 0
                   : cm->retry_ms == 0               ? RETRY_MIN_MS
                   : cm->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
                                                     : cm->retry_ms * 2;
    if (cm->retry_ms > 0) {
        uv_timer_start(&cm->timer, on_retry, (uint64_t)cm->retry_ms, 0);
    } else {
        maybe_flush(cm);
    }
}

static void read_row(const PGresult *res, int r, struct row_state *rs)
{
    rs->state = trib__state_parse(PQgetvalue(res, r, 1));
    rs->attempt = atoi(PQgetvalue(res, r, 2));
    rs->finalized_at = 0;
    rs->scheduled_at = 0;
    if (!PQgetisnull(res, r, 3)) {
        trib_pgtime_parse(PQgetvalue(res, r, 3), &rs->finalized_at);
    }
    if (!PQgetisnull(res, r, 4)) {
        trib_pgtime_parse(PQgetvalue(res, r, 4), &rs->scheduled_at);
    }
    rs->found = 1;
}

/* Matches result rows (id first) to the batch by id. */
static void match_rows(struct trib_completer *cm, const PGresult *res,
                       struct row_state *rows)
{
    int64_t *ids = trib_malloc(cm->nbatch * 2 * sizeof(int64_t));
    int n = PQntuples(res), r;
    size_t i;

    /* sorted (id, index) pairs for a binary search */
    for (i = 0; i < cm->nbatch; i++) {
        ids[2 * i] = cm->batch[i]->id;
        ids[2 * i + 1] = (int64_t)i;
    }
    qsort(ids, cm->nbatch, 2 * sizeof(int64_t), cmp_i64);
    for (r = 0; r < n; r++) {
        int64_t id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        size_t lo = 0, hi = cm->nbatch;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (ids[2 * mid] < id) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo < cm->nbatch && ids[2 * lo] == id) {
            read_row(res, r, &rows[ids[2 * lo + 1]]);
        }
    }
    trib_free(ids);
}

static void on_states(void *arg, int status, PGresult *res);

static void on_complete(void *arg, int status, PGresult *res)
{
    struct trib_completer *cm = arg;
    struct row_state *rows;
    size_t i, missing = 0;

    if (status != 0) {
        batch_failed(cm, status, res);
        return;
    }
    cm->statements++;
    cm->rows += cm->nbatch;
    rows = trib_calloc(cm->nbatch, sizeof(*rows));
    if (cm->fast) {
        /* RETURNING id of the rows completed; others changed meanwhile. */
        int n = PQntuples(res), r;
        int64_t *done = trib_malloc((size_t)(n > 0 ? n : 1) * sizeof(*done));
        for (r = 0; r < n; r++) {
            done[r] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        }
        qsort(done, (size_t)n, sizeof(*done), cmp_i64);
        for (i = 0; i < cm->nbatch; i++) {
            struct trib_job *job = cm->batch[i];
            if (n > 0 && bsearch(&job->id, done, (size_t)n, sizeof(*done),
                                 cmp_i64) != NULL) {
                rows[i].found = 1;
                rows[i].state = JS_COMPLETED;
                rows[i].attempt = job->attempt;
                rows[i].finalized_at = job->finalized_db;
                rows[i].scheduled_at = job->scheduled_at;
            } else {
                missing++;
            }
        }
        trib_free(done);
        if (missing > 0) {
            /* Ask for the persisted state of the rows not updated. */
            struct trib_buf ids = TRIB_BUF_INIT;
            const char *params[1];
            int first = 1;
            trib_buf_putc(&ids, '{');
            for (i = 0; i < cm->nbatch; i++) {
                if (!rows[i].found) {
                    if (!first) {
                        trib_buf_putc(&ids, ',');
                    }
                    first = 0;
                    trib_buf_put_i64(&ids, cm->batch[i]->id);
                }
            }
            trib_buf_putc(&ids, '}');
            params[0] = ids.data;
            cm->pending_rows = rows; /* kept across the second query */
            trib_pg_query(cm->pg, &cm->client->agent->sql.job_states, 1, params,
                          on_states, cm);
            trib_buf_fini(&ids);
            return;
        }
    } else {
        match_rows(cm, res, rows);
    }
    publish_batch(cm, rows);
    trib_free(rows);
    batch_done(cm);
}

static void on_states(void *arg, int status, PGresult *res)
{
    struct trib_completer *cm = arg;
    struct row_state *rows = cm->pending_rows;

    cm->pending_rows = NULL;
    if (status != 0) {
        /* The fast update committed; only the read failed. Retrying the
         * whole batch is safe: rows already completed are no longer
         * running, and show this write-back's values, so the retry
         * reports them (once). */
        trib_free(rows);
        batch_failed(cm, status, res);
        return;
    }
    match_rows(cm, res, rows);
    publish_batch(cm, rows);
    trib_free(rows);
    batch_done(cm);
}

static void put_time_elem(struct trib_buf *b, int64_t us)
{
    char ts[40];

    trib_time_rfc3339(us, ts, sizeof(ts), 6);
    trib_buf_puts(b, ts);
}

static void flush(struct trib_completer *cm)
{
    struct trib_agent *a = cm->client->agent;
    struct trib_buf p[8];
    const char *params[8];
    size_t i, k, n;
    int all_complete = 1;

    n = cm->backlog < cm->limit ? cm->backlog : cm->limit;
    if (n > cm->batch_cap) {
        cm->batch = trib_realloc(cm->batch, n * sizeof(*cm->batch));
        cm->batch_cap = n;
    }
    for (i = 0; i < n; i++) {
        cm->batch[i] = pop_front(cm);
        if (cm->batch[i]->outcome != OUT_COMPLETE) {
            all_complete = 0;
        }
    }
    cm->nbatch = n;
    for (k = 0; k < 8; k++) {
        trib_buf_init(&p[k]);
        trib_buf_putc(&p[k], '{');
    }
    for (i = 0; i < n; i++) {
        struct trib_job *job = cm->batch[i];
        const char *sep = i > 0 ? "," : "";

        trib_buf_puts(&p[0], sep);
        trib_buf_put_i64(&p[0], job->id);
        /* the attempt we worked: the write-back applies only to it */
        trib_buf_printf(&p[7], "%s%d", sep, job->attempt);
        if (all_complete) {
            trib_buf_puts(&p[1], sep);
            put_time_elem(&p[1], job->finalized_db);
            continue;
        }
        /* state */
        trib_buf_printf(&p[1], "%s%s", sep,
                        trib__state_name(job->target_state));
        /* attempt: restored for snooze and interrupt */
        if (job->outcome == OUT_SNOOZE || job->outcome == OUT_INTERRUPT) {
            trib_buf_printf(&p[2], "%s%d", sep,
                            job->attempt > 0 ? job->attempt - 1 : 0);
        } else {
            trib_buf_printf(&p[2], "%sNULL", sep);
        }
        /* errors element */
        trib_buf_puts(&p[3], sep);
        if (job->outcome == OUT_ERROR || job->outcome == OUT_CANCEL) {
            struct trib_buf el = TRIB_BUF_INIT;
            trib_buf_puts(&el, "{\"at\":\"");
            put_time_elem(&el, job->start_db);
            trib_buf_printf(&el, "\",\"attempt\":%d,\"error\":", job->attempt);
            trib_buf_json_str(&el, job->error, strlen(job->error));
            trib_buf_puts(&el, ",\"trace\":\"\"}");
            trib_buf_pgarray_elem(&p[3], el.data, el.len);
            trib_buf_fini(&el);
        } else {
            trib_buf_puts(&p[3], "NULL");
        }
        /* finalized_at */
        trib_buf_puts(&p[4], sep);
        if (job->target_state == JS_COMPLETED ||
            job->target_state == JS_CANCELLED ||
            job->target_state == JS_DISCARDED) {
            put_time_elem(&p[4], job->finalized_db);
        } else {
            trib_buf_puts(&p[4], "NULL");
        }
        /* scheduled_at */
        trib_buf_puts(&p[5], sep);
        if (job->target_state == JS_AVAILABLE ||
            job->target_state == JS_RETRYABLE ||
            job->target_state == JS_SCHEDULED) {
            put_time_elem(&p[5], job->next_run_db);
        } else {
            trib_buf_puts(&p[5], "NULL");
        }
        /* metadata merge */
        trib_buf_puts(&p[6], sep);
        if (job->outcome == OUT_SNOOZE) {
            char m[48];
            snprintf(m, sizeof(m), "{\"snoozes\":%d}", job->snoozes);
            trib_buf_pgarray_elem(&p[6], m, strlen(m));
        } else {
            trib_buf_puts(&p[6], "NULL");
        }
    }
    for (k = 0; k < 8; k++) {
        trib_buf_putc(&p[k], '}');
        params[k] = p[k].data;
    }
    if (all_complete) {
        params[2] = params[7]; /* fast path: (ids, finalized_at, worked) */
    }
    /* With an outbox: what this statement will write is on disk first, so
     * an agent killed after the commit can still emit the events
     * (intents.c). */
    trib__intents_write(a, cm->client, cm->batch, n);
    cm->busy = 1;
    cm->fast = all_complete;
    if (all_complete) {
        trib_pg_query(cm->pg, &a->sql.complete_fast, 3, params, on_complete,
                      cm);
    } else {
        trib_pg_query(cm->pg, &a->sql.complete, 8, params, on_complete, cm);
    }
    for (k = 0; k < 8; k++) {
        trib_buf_fini(&p[k]);
    }
}

static void on_linger(uv_timer_t *t)
{
    struct trib_completer *cm = t->data;

    if (!cm->busy && cm->backlog > 0 && !cm->closing) {
        flush(cm);
    }
}

static void maybe_flush(struct trib_completer *cm)
{
    struct trib_agent *a = cm->client->agent;
    uint64_t waited_us, linger_us = (uint64_t)a->conf->complete_linger_us;

    if (cm->busy || cm->backlog == 0 || cm->closing ||
        uv_is_active((uv_handle_t *)&cm->timer)) {
        return;
    }
    waited_us = trib_mono_us() - cm->head->wb_mono;
    if (cm->backlog >= cm->limit || cm->backlog >= 100 ||
        waited_us >= linger_us || cm->client->stopping) {
        flush(cm);
        return;
    }
    uv_timer_start(&cm->timer, on_linger, (linger_us - waited_us + 999) / 1000,
                   0);
}

/* -------------------------------------------------------- lifecycle */

int trib__completer_create(struct trib_client *c, struct trib_completer **out)
{
    struct trib_completer *cm = TRIB_NEW(struct trib_completer);
    struct trib_agent *a = c->agent;
    char name[160];
    int rv;

    snprintf(name, sizeof(name), "%s/complete", c->id);
    rv = trib__agent_pg(a, c->id, name, 0, &cm->pg);
    if (rv != 0) {
        trib_free(cm);
        return rv;
    }
    cm->client = c;
    cm->limit = (size_t)a->conf->complete_batch_max;
    uv_timer_init(a->loop, &cm->timer);
    cm->timer.data = cm;
    *out = cm;
    return 0;
}

void trib__completer_start(struct trib_completer *cm)
{
    trib_pg_start(cm->pg);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct trib_completer *cm = h->data;

    trib_free(cm->batch);
    trib_free(cm);
}

void trib__completer_close(struct trib_completer *cm)
{
    struct trib_job *job;
    size_t i;

    cm->closing = 1;
    uv_timer_stop(&cm->timer);
    trib_pg_close(cm->pg, NULL, NULL);
    /* Anything still here could not be written (shutdown with the database
     * unreachable): it stays 'running' in river_job until the rescuer. */
    for (i = 0; i < cm->nbatch; i++) {
        trib__job_free(cm->batch[i]);
    }
    cm->nbatch = 0;
    trib_free(cm->pending_rows);
    cm->pending_rows = NULL;
    while ((job = pop_front(cm)) != NULL) {
        trib__job_free(job);
    }
    uv_close((uv_handle_t *)&cm->timer, on_timer_closed);
}
