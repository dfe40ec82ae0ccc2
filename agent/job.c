/*
 * job.c -- working one job: run its kind (on the loop or a worker thread),
 * enforce the timeout, take the outcome, and turn it into River's
 * write-back (state, attempt, errors element, scheduled_at, metadata).
 *
 * Each job owns at most one uv_timer_t, created on first need, that serves
 * both the kind's trib_job_sleep() wake-up and the job_timeout deadline.
 */
#include "agent_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_json.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERROR_MAX      8192 /* bytes of error text kept per attempt */
#define SHORT_DELAY_US (5 * TRIB_US_PER_S) /* River's scheduler interval */

static void arm_timer(struct trib_job *job);

/* ------------------------------------------------------------ timer */

static void on_timer(uv_timer_t *t)
{
    struct trib_job *job = t->data;
    uint64_t now = trib_mono_us();

    if (job->phase != PHASE_RUNNING) {
        return;
    }
    if (job->deadline != 0 && now >= job->deadline &&
        atomic_load(&job->cancel) == TRIB_CANCEL_NONE) {
        job->deadline = 0;
        trib__job_cancel(job, TRIB_CANCEL_TIMEOUT);
        if (job->phase != PHASE_RUNNING) {
            return;
        }
    }
    if (job->wake_fn != NULL && job->wake_at != 0 && now >= job->wake_at) {
        void (*fn)(struct trib_job *) = job->wake_fn;
        job->wake_fn = NULL;
        job->wake_at = 0;
        fn(job);
        if (job->phase != PHASE_RUNNING) {
            return;
        }
    }
    arm_timer(job);
}

static void arm_timer(struct trib_job *job)
{
    uv_loop_t *loop = job->client->agent->loop;
    uint64_t next = 0, now;

    if (job->wake_fn != NULL && job->wake_at != 0) {
        next = job->wake_at;
    }
    if (job->deadline != 0 && (next == 0 || job->deadline < next)) {
        next = job->deadline;
    }
    if (next == 0) {
        if (job->timer_open) {
            uv_timer_stop(&job->timer);
        }
        return;
    }
    if (!job->timer_open) {
        uv_timer_init(loop, &job->timer);
        job->timer.data = job;
        job->timer_open = 1;
    }
    /* libuv times the timer from its cached, coarse loop clock, which can
     * run behind: it may fire early, and on_timer() then re-arms for the
     * rest. A sleep or timeout never ends before its time. */
    now = trib_mono_us();
    uv_timer_start(&job->timer, on_timer,
                   next > now ? (next - now + 999) / 1000 : 0, 0);
}

/* ---------------------------------------------------------- running */

static void work_cb(uv_work_t *w)
{
    struct trib_job *job = w->data;

    job->kind->run(job, job->kind->arg);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct trib_job *job = w->data;

    job->in_thread = 0;
    if (job->abandoned) {
        /* Already written back as interrupted; only memory remains. */
        trib__job_free(job);
        return;
    }
    if (status == UV_ECANCELED && job->outcome == OUT_NONE) {
        job->outcome = OUT_INTERRUPT;
    }
    if (job->outcome == OUT_NONE) {
        job->outcome = OUT_COMPLETE;
    }
    trib__job_finish(job);
}

static void set_error(struct trib_job *job, const char *fmt, va_list ap)
{
    char *msg = trib_malloc(ERROR_MAX);

    vsnprintf(msg, ERROR_MAX, fmt, ap);
    trib_free(job->error);
    job->error = msg;
}

static void fail_now(struct trib_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail_now(struct trib_job *job, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_error(job, fmt, ap);
    va_end(ap);
    job->outcome = OUT_ERROR;
    trib__job_finish(job);
}

void trib__job_start(struct trib_job *job)
{
    struct trib_agent *a = job->client->agent;
    int64_t timeout = job->client->conf->job_timeout_us;

    job->phase = PHASE_RUNNING;
    job->start_mono = trib_mono_us();
    job->start_db = trib__db_now(a);
    /* Our estimate of the database clock is only as good as the round trip
     * it was measured over; never let a job start before the database says
     * it was fetched (attempted_at). */
    if (job->start_db < job->attempted_at) {
        job->start_db = job->attempted_at;
    }
    if (job->kind == NULL) {
        /* River's text, so mixed fleets read the same error. */
        fail_now(job,
                 "job kind is not registered in the client's Workers "
                 "bundle: %s",
                 job->kind_name);
        return;
    }
    if (strstr(job->metadata, "cancel_attempted_at") != NULL) {
        /* Cancelled while the fetch was in flight: never start it. */
        atomic_store(&job->cancel, TRIB_CANCEL_REMOTE);
        job->outcome = OUT_CANCEL;
        trib__job_finish(job);
        return;
    }
    if (timeout > 0) {
        job->deadline = job->start_mono + (uint64_t)timeout;
    }
    if (job->kind->mode == TRIB_KIND_BLOCKING) {
        job->in_thread = 1;
        job->work.data = job;
        if (uv_queue_work(a->loop, &job->work, work_cb, after_work_cb) != 0) {
            job->in_thread = 0;
            fail_now(job, "cannot queue job on a worker thread");
            return;
        }
        arm_timer(job);
        return;
    }
    job->kind->start(job, job->kind->arg);
    if (job->phase == PHASE_RUNNING) {
        arm_timer(job);
    }
}

void trib__job_cancel(struct trib_job *job, enum trib_cancel_reason why)
{
    int expected = TRIB_CANCEL_NONE;

    if (job->phase != PHASE_RUNNING) {
        return;
    }
    if (!atomic_compare_exchange_strong(&job->cancel, &expected, (int)why)) {
        return; /* first reason wins */
    }
    if (job->kind == NULL || job->kind->mode == TRIB_KIND_BLOCKING) {
        return; /* the thread sees trib_job_cancelled() */
    }
    if (job->kind->cancel != NULL) {
        job->kind->cancel(job, job->kind->arg);
    } else if (job->wake_fn != NULL) {
        /* Only sleeping: end it for the kind. */
        job->wake_fn = NULL;
        job->wake_at = 0;
        trib_job_error(job, "job stopped while waiting");
    }
}

/* ---------------------------------------------------------- outcome */

int64_t trib__retry_delay_us(int nerrors)
{
    /* River's default policy: (errors+1)^4 seconds, +-10% jitter. */
    double n = (double)nerrors + 1.0;
    double secs = n * n * n * n;
    double jitter = ((double)rand() / RAND_MAX) * 0.2 - 0.1;

    if (secs > 1e9) {
        secs = 1e9; /* ~31 years: far enough, and no overflow */
    } else {
        secs += secs * jitter;
    }
    return (int64_t)(secs * TRIB_US_PER_S);
}

int trib_job_snoozes(const struct trib_job *job)
{
    json_t *m;
    json_t *v;
    int n = 0;
    char err[64];

    if (strstr(job->metadata, "\"snoozes\"") == NULL) {
        return 0;
    }
    if (trib_json_parse(job->metadata, strlen(job->metadata), &m, err,
                        sizeof(err)) != 0) {
        return 0;
    }
    v = json_object_get(m, "snoozes");
    if (json_is_integer(v)) {
        n = (int)json_integer_value(v);
    } else if (json_is_real(v)) {
        n = (int)json_real_value(v);
    }
    json_decref(m);
    return n < 0 ? 0 : n;
}

void trib__job_finish(struct trib_job *job)
{
    struct trib_agent *a = job->client->agent;
    struct trib_producer *prod = job->prod;
    int why = atomic_load(&job->cancel);
    int64_t now_db;

    if (job->phase != PHASE_RUNNING) {
        return;
    }
    job->phase = PHASE_DONE;
    job->end_mono = trib_mono_us();
    job->wake_fn = NULL;
    job->wake_at = 0;
    job->deadline = 0;
    if (job->timer_open) {
        uv_timer_stop(&job->timer);
    }
    now_db = trib__db_now(a);
    /* ...nor end before start + the time it really ran. */
    if (now_db < job->start_db + (int64_t)(job->end_mono - job->start_mono)) {
        now_db = job->start_db + (int64_t)(job->end_mono - job->start_mono);
    }
    job->finalized_db = now_db;

    /* Cancellation rewrites failures (River): remote -> cancelled,
     * shutdown -> interrupted. A job that completed anyway completed. */
    if (why == TRIB_CANCEL_REMOTE && job->outcome != OUT_COMPLETE) {
        job->outcome = OUT_CANCEL;
        trib_free(job->error);
        job->error = trib_strdup("JobCancelError: job cancelled remotely");
    } else if (why == TRIB_CANCEL_SHUTDOWN && job->outcome != OUT_COMPLETE) {
        job->outcome = OUT_INTERRUPT;
    }

    switch (job->outcome) {
    case OUT_COMPLETE:
        job->target_state = JS_COMPLETED;
        break;
    case OUT_CANCEL:
        job->target_state = JS_CANCELLED;
        if (job->error == NULL) {
            job->error = trib_strdup("JobCancelError: cancelled");
        }
        break;
    case OUT_SNOOZE:
        job->next_run_db = now_db + job->snooze_us;
        job->target_state =
            job->snooze_us <= SHORT_DELAY_US ? JS_AVAILABLE : JS_SCHEDULED;
        job->snoozes = trib_job_snoozes(job) + 1;
        break;
    case OUT_INTERRUPT:
        job->target_state = JS_AVAILABLE;
        job->next_run_db = now_db;
        break;
    case OUT_ERROR:
    default:
        job->outcome = OUT_ERROR;
        if (job->error == NULL) {
            job->error = trib_strdup("job failed");
        }
        if (job->attempt >= job->max_attempts) {
            job->target_state = JS_DISCARDED;
        } else {
            int64_t d = trib__retry_delay_us(job->nerrors);
            job->next_run_db = now_db + d;
            job->target_state =
                d <= SHORT_DELAY_US ? JS_AVAILABLE : JS_RETRYABLE;
        }
        break;
    }
    trib__producer_job_done(prod, job);
    trib__completer_add(job->client->completer, job);
    /* Only now, with the write-back queued, may a stopping agent see its
     * last job gone and finish (it waits for the completer to drain). */
    if (prod->stopping && prod->active == 0) {
        trib__agent_check_stopped(a);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    trib_free(h->data);
}

void trib__job_free(struct trib_job *job)
{
    if (job == NULL) {
        return;
    }
    if (job->in_thread) {
        /* A worker thread still runs it: free when it returns. */
        job->abandoned = 1;
        return;
    }
    if (job->args_json != NULL) {
        json_decref(job->args_json);
    }
    trib_free(job->error);
    if (job->timer_open) {
        job->timer.data = job;
        uv_close((uv_handle_t *)&job->timer, on_timer_closed);
        return;
    }
    trib_free(job);
}

/* ------------------------------------------------------- public API */

int64_t trib_job_id(const struct trib_job *job)
{
    return job->id;
}

const char *trib_job_kind(const struct trib_job *job)
{
    return job->kind_name;
}

const char *trib_job_queue(const struct trib_job *job)
{
    return job->prod->queue;
}

int trib_job_attempt(const struct trib_job *job)
{
    return job->attempt;
}

int trib_job_max_attempts(const struct trib_job *job)
{
    return job->max_attempts;
}

const char *trib_job_args_text(const struct trib_job *job)
{
    return job->args;
}

json_t *trib_job_args(const struct trib_job *job)
{
    struct trib_job *j = (struct trib_job *)job;
    char err[128];

    if (j->args_json == NULL) {
        /* args is jsonb, so it parses; fall back to null regardless. */
        if (trib_json_parse(j->args, strlen(j->args), &j->args_json, err,
                            sizeof(err)) != 0) {
            j->args_json = json_null();
        }
    }
    return j->args_json;
}

const char *trib_job_metadata_text(const struct trib_job *job)
{
    return job->metadata;
}

const char *trib_job_client_id(const struct trib_job *job)
{
    return job->client->id;
}

int trib_job_cancelled(const struct trib_job *job)
{
    return atomic_load(&((struct trib_job *)job)->cancel) != TRIB_CANCEL_NONE;
}

enum trib_cancel_reason trib_job_cancel_reason(const struct trib_job *job)
{
    return (enum trib_cancel_reason)atomic_load(
        &((struct trib_job *)job)->cancel);
}

static int outcome_open(struct trib_job *job)
{
    return job->phase == PHASE_RUNNING && job->outcome == OUT_NONE;
}

static void outcome_done(struct trib_job *job)
{
    if (!job->in_thread) {
        trib__job_finish(job);
    }
}

void trib_job_complete(struct trib_job *job)
{
    if (!outcome_open(job)) {
        return;
    }
    job->outcome = OUT_COMPLETE;
    outcome_done(job);
}

void trib_job_error(struct trib_job *job, const char *fmt, ...)
{
    va_list ap;

    if (!outcome_open(job)) {
        return;
    }
    va_start(ap, fmt);
    set_error(job, fmt, ap);
    va_end(ap);
    job->outcome = OUT_ERROR;
    outcome_done(job);
}

void trib_job_snooze(struct trib_job *job, int64_t delay_us)
{
    if (!outcome_open(job)) {
        return;
    }
    job->outcome = OUT_SNOOZE;
    job->snooze_us = delay_us < 0 ? 0 : delay_us;
    outcome_done(job);
}

void trib_job_cancel(struct trib_job *job, const char *fmt, ...)
{
    struct trib_buf b = TRIB_BUF_INIT;
    char msg[ERROR_MAX];
    va_list ap;

    if (!outcome_open(job)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    trib_buf_printf(&b, "JobCancelError: %s", msg);
    trib_free(job->error);
    job->error = trib_buf_steal(&b);
    job->outcome = OUT_CANCEL;
    outcome_done(job);
}

uv_loop_t *trib_job_loop(struct trib_job *job)
{
    return job->client->agent->loop;
}

void trib_job_sleep(struct trib_job *job, int64_t delay_us,
                    void (*fn)(struct trib_job *job))
{
    if (job->phase != PHASE_RUNNING || job->in_thread) {
        return;
    }
    job->wake_fn = fn;
    job->wake_at = trib_mono_us() + (uint64_t)(delay_us > 0 ? delay_us : 0);
    if (job->wake_at == 0) {
        job->wake_at = 1;
    }
    arm_timer(job);
}

void trib_job_set_data(struct trib_job *job, void *data)
{
    job->user_data = data;
}

void *trib_job_data(const struct trib_job *job)
{
    return job->user_data;
}
