/*
 * stress_plan_sched.c -- the plan as a whole: validation and derived
 * fields (stress_plan_finish), the insertion schedule (stress_stage_due:
 * exact integer arithmetic, so the schedule never goes backwards and a
 * stage's jobs add up to stress_plan_jobs), and the plan as JSON for the
 * report's run.plan (docs/REPORT.md).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h" /* agent: trib_queue_name_valid() */
#include "stress_plan.h"
#include "stress_plan_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"

#define RAMP_MAX_US    (7 * 24 * 3600 * TRIB_US_PER_S) /* arithmetic bound */
#define STAGE_JOBS_CAP 1000000000000000LL              /* 1e15 */

/* ---------------------------------------------------------- schedule */

/* A rate in micro-jobs per second (exact integer arithmetic below). */
static int64_t micro(double r)
{
    if (!(r > 0)) {
        return 0;
    }
    return llround((r < STRESS_RATE_MAX ? r : STRESS_RATE_MAX) * 1e6);
}

double stress_stage_start_rate(const struct stress_plan *p, int i)
{
    const struct stress_stage *prev;

    if (i <= 0 || p->nstages == 0) {
        return p->start_rate;
    }
    prev = &p->stages[(i < p->nstages ? i : p->nstages) - 1];
    return prev->duration_us > 0 ? prev->target : prev->rate;
}

int64_t stress_stage_due(const struct stress_plan *p, int i, int64_t elapsed_us,
                         int *done)
{
    const struct stress_stage *st;
    __int128 num, den, n;

    if (done != NULL) {
        *done = 1;
    }
    if (i < 0 || i >= p->nstages) {
        return 0;
    }
    st = &p->stages[i];
    if (elapsed_us < 0) {
        elapsed_us = 0;
    }
    if (st->duration_us > 0) {
        /* jobs(t) = r0 t + (r1 - r0) t^2 / 2D, the integral of a rate
         * going linearly from r0 to r1 over D; non-decreasing in t for
         * r0, r1 >= 0 (its derivative is the rate). */
        int64_t d =
            st->duration_us < RAMP_MAX_US ? st->duration_us : RAMP_MAX_US;
        int64_t t = elapsed_us < d ? elapsed_us : d;
        int64_t r0 = micro(stress_stage_start_rate(p, i)),
                r1 = micro(st->target);

        if (done != NULL) {
            *done = elapsed_us >= st->duration_us;
        }
        num = (__int128)r0 * t * 2 * d + (__int128)(r1 - r0) * t * t;
        den = (__int128)2 * d * TRIB_US_PER_S * TRIB_US_PER_S;
        n = num / den;
        return n < STAGE_JOBS_CAP ? (int64_t)n : STAGE_JOBS_CAP;
    }
    if (done != NULL) {
        *done = st->count <= 0; /* over when its jobs are in */
    }
    if (st->count <= 0) {
        return 0;
    }
    if (micro(st->rate) == 0) {
        return st->count; /* as fast as insertion goes */
    }
    n = (__int128)micro(st->rate) * elapsed_us /
        (TRIB_US_PER_S * TRIB_US_PER_S);
    return n < st->count ? (int64_t)n : st->count;
}

/* The jobs stage i inserts in full. */
static int64_t stage_jobs(const struct stress_plan *p, int i)
{
    const struct stress_stage *st = &p->stages[i];

    return st->duration_us > 0 ? stress_stage_due(p, i, st->duration_us, NULL)
                               : stress_stage_due(p, i, INT64_MAX, NULL);
}

int64_t stress_plan_jobs(const struct stress_plan *p)
{
    int64_t total = 0;
    int i;

    for (i = 0; i < p->nstages; i++) {
        total += stage_jobs(p, i); /* <= 64 x 1e15: no overflow */
    }
    return total;
}

/* ------------------------------------------------------------ finish */

/* --jobs N [--rate R] -> one count stage; --rate alone sets the rate of
 * a plan file's single count stage. */
static int load_flags(struct stress_plan *p, char *err, size_t errlen)
{
    struct stress_stage st;

    if (p->flag_jobs > 0 && p->flag_stages > 0) {
        return stress__errf(
            err, errlen,
            "--jobs: cannot be combined with --stage (a count stage "
            "is --stage 2000 or --stage 2000@500/s)");
    }
    if (p->flag_jobs > 0) {
        memset(&st, 0, sizeof(st));
        st.count = p->flag_jobs;
        st.rate = p->flag_rate > 0 ? p->flag_rate : 0;
        p->stages[0] = st;
        p->nstages = 1;
        return 0;
    }
    if (p->flag_rate >= 0) {
        if (p->nstages != 1 || p->stages[0].count <= 0 || p->flag_stages > 0) {
            return stress__errf(
                err, errlen,
                "--rate: goes with --jobs N (a stage carries its own "
                "rate: --stage 2000@500/s or --stage 30s:500)");
        }
        p->stages[0].rate = p->flag_rate;
    }
    return 0;
}

static int check_stages(struct stress_plan *p, char *err, size_t errlen)
{
    const char *file =
        p->file != NULL && p->flag_stages == 0 && p->flag_jobs == 0 ? p->file
                                                                    : NULL;
    char msg[256];
    int64_t total;
    int i, j;

    if (p->nstages == 0) {
        return stress__errf(
            err, errlen,
            "no load given: use --jobs N or --stage, or 'count' or "
            "'stages' in the plan file");
    }
    for (i = 0; i < p->nstages; i++) {
        struct stress_stage *st = &p->stages[i];
        int ramp = st->duration_us > 0, count = st->count > 0;

        if (st->name[0] == '\0') {
            snprintf(st->name, sizeof(st->name), "stage-%d", i + 1);
        } else if (stress__stage_name(st->name, msg, sizeof(msg)) != 0) {
            return stress__errf(err, errlen, "stages[%d].name: %s", i, msg);
        }
        if (ramp == count || st->duration_us < 0 || st->count < 0 ||
            st->count > STRESS_MAX_JOBS || st->duration_us > RAMP_MAX_US ||
            !(st->target >= 0 && st->target <= STRESS_RATE_MAX) ||
            !(st->rate >= 0 && st->rate <= STRESS_RATE_MAX)) {
            return stress__errf(
                err, errlen,
                "stages[%d]: expected a ramp (duration > 0, target "
                "0..%g) or a count stage (count 1..%lld, rate 0..%g)",
                i, STRESS_RATE_MAX, STRESS_MAX_JOBS, STRESS_RATE_MAX);
        }
        for (j = 0; j < i; j++) {
            if (strcmp(p->stages[j].name, st->name) == 0) {
                return stress__errf(
                    err, errlen,
                    "stages[%d]: the name '%s' is also stages[%d]'s", i,
                    st->name, j);
            }
        }
    }
    if (!(p->start_rate >= 0 && p->start_rate <= STRESS_RATE_MAX)) {
        return stress__errf(err, errlen, "start_rate: expected 0..%g jobs/s",
                            STRESS_RATE_MAX);
    }
    total = stress_plan_jobs(p);
    if (total < 1 || total > STRESS_MAX_JOBS) {
        return stress__errf(err, errlen,
                            "%s%sstages: the plan inserts %lld jobs; expected "
                            "1..%lld%s",
                            file ? file : "", file ? ": " : "",
                            (long long)total, STRESS_MAX_JOBS,
                            total < 1
                                ? " (every ramp's rate is 0 or too short for "
                                  "one job)"
                                : "");
    }
    return 0;
}

static int check_jobs(struct stress_plan *p, char *err, size_t errlen)
{
    size_t klen = strnlen(p->kind, sizeof(p->kind)), alen;
    json_t *args;
    char d[32], t[32];
    int ok;

    if (klen == 0 || klen >= sizeof(p->kind)) {
        return stress__errf(err, errlen, "kind: expected 1..%d characters",
                            STRESS_KIND_MAX - 1);
    }
    args = p->args_json != NULL ? json_loads(p->args_json, 0, NULL) : NULL;
    ok = json_is_object(args);
    json_decref(args);
    if (!ok) {
        return stress__errf(err, errlen, "args: expected a JSON object");
    }
    if (p->priority < 1 || p->priority > 4) {
        return stress__errf(err, errlen, "priority: expected 1..4, got %d",
                            p->priority);
    }
    if (p->max_attempts < 1 || p->max_attempts > 32767) {
        return stress__errf(err, errlen,
                            "max_attempts: expected 1..32767, got %d",
                            p->max_attempts);
    }
    if (p->batch < 1 || p->batch > 100000 || p->streams < 1 ||
        p->streams > 16) {
        return stress__errf(
            err, errlen,
            "insert: expected batch 1..100000 and streams 1..16, got "
            "%d and %d",
            p->batch, p->streams);
    }
    alen = strlen(p->args_json);
    if ((double)alen * p->batch > STRESS_BATCH_ARGS_MAX) {
        return stress__errf(
            err, errlen,
            "insert.batch: %d jobs with %zu bytes of args each is over %d MiB "
            "of args a batch; use a batch of at most %zu",
            p->batch, alen, STRESS_BATCH_ARGS_MAX >> 20,
            (size_t)STRESS_BATCH_ARGS_MAX / alen);
    }
    if (p->timeout_us <= 0 || p->grace_us < 0 || p->delay_us < 0 ||
        p->spread_us < 0) {
        return stress__errf(
            err, errlen, "timeout: expected > 0 (grace, delay, spread >= 0)");
    }
    if (p->delay_us + p->spread_us >= p->timeout_us) {
        trib_duration_format(p->delay_us + p->spread_us, d, sizeof(d));
        trib_duration_format(p->timeout_us, t, sizeof(t));
        return stress__errf(
            err, errlen,
            "timeout: %s is not longer than delay + spread (%s): no "
            "job could finish in time",
            t, d);
    }
    return 0;
}

static int check_queues(struct stress_plan *p, char *err, size_t errlen)
{
    int i;

    if (p->mixed) {
        /* finish() may run twice: the preset's own queues are fine. */
        if (p->nqueues > 0 &&
            !(p->nqueues == 2 && strcmp(p->queues[0], p->notify_queue) == 0 &&
              strcmp(p->queues[1], p->poll_queue) == 0)) {
            return stress__errf(err, errlen,
                                "mixed: sets the queues itself (notify_queue, "
                                "poll_queue): drop queue/queues (--queue)");
        }
        if (!trib_queue_name_valid(p->notify_queue) ||
            !trib_queue_name_valid(p->poll_queue)) {
            return stress__errf(err, errlen, "mixed: invalid queue name");
        }
        if (strcmp(p->notify_queue, p->poll_queue) == 0) {
            return stress__errf(
                err, errlen,
                "mixed: notify_queue and poll_queue are both '%s'; "
                "they must differ",
                p->poll_queue);
        }
        snprintf(p->queues[0], STRESS_QUEUE_MAX, "%s", p->notify_queue);
        snprintf(p->queues[1], STRESS_QUEUE_MAX, "%s", p->poll_queue);
        p->nqueues = 2;
        return 0;
    }
    if (p->nqueues == 0) {
        snprintf(p->queues[0], STRESS_QUEUE_MAX, "default");
        p->nqueues = 1;
    }
    for (i = 0; i < p->nqueues; i++) {
        if (!trib_queue_name_valid(p->queues[i])) {
            return stress__errf(err, errlen, "queues[%d]: invalid queue name",
                                i);
        }
    }
    return 0;
}

int stress_plan_finish(struct stress_plan *p, char *err, size_t errlen)
{
    int rv;

    if ((rv = load_flags(p, err, errlen)) != 0 ||
        (rv = check_stages(p, err, errlen)) != 0 ||
        (rv = check_jobs(p, err, errlen)) != 0 ||
        (rv = check_queues(p, err, errlen)) != 0) {
        return rv;
    }
    return 0;
}

/* -------------------------------------------------------------- JSON */

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

/* The database URL without its password (URI "user:pw@" or "password="),
 * built in a growing buffer: "password=***" is longer than an empty
 * "password=". */
static json_t *redacted(const char *url)
{
    struct trib_buf b = TRIB_BUF_INIT;
    const char *s = url, *at, *scheme, *colon;
    json_t *j;

    if (url == NULL) {
        return json_null();
    }
    scheme = strstr(url, "://");
    at = scheme != NULL ? strchr(scheme + 3, '@') : NULL;
    colon = scheme != NULL ? strchr(scheme + 3, ':') : NULL;
    trib_buf_puts(&b, "");
    while (*s != '\0') {
        if (at != NULL && colon != NULL && colon < at && s == colon + 1) {
            trib_buf_puts(&b, "***");
            s = at;
        } else if (strncmp(s, "password=", 9) == 0) {
            trib_buf_puts(&b, "password=***");
            s += 9;
            if (*s == '\'') {
                for (s++; *s != '\0' && *s != '\''; s += 1 + (*s == '\\')) {
                    if (*s == '\\' && s[1] == '\0') {
                        break;
                    }
                }
                s += *s == '\'';
            }
            while (*s != '\0' && *s != ' ' && *s != '&') {
                s++;
            }
        } else {
            trib_buf_putc(&b, *s++);
        }
    }
    j = json_string(b.data);
    trib_buf_fini(&b);
    return j;
}

static json_t *stage_json(const struct stress_plan *p, int i)
{
    const struct stress_stage *st = &p->stages[i];
    int ramp = st->duration_us > 0;

    return json_pack(
        "{s:i, s:s, s:s, s:o, s:o, s:o, s:o, s:f, s:I, s:o}", "index", i,
        "name", st->name, "form", ramp ? "ramp" : "count", "duration_s",
        ramp ? json_real((double)st->duration_us / TRIB_US_PER_S) : json_null(),
        "target", ramp ? json_real(st->target) : json_null(), "count",
        ramp ? json_null() : json_integer(st->count), "rate",
        ramp ? json_null() : json_real(st->rate), "start_rate",
        stress_stage_start_rate(p, i), "planned", (json_int_t)stage_jobs(p, i),
        "line", st->line > 0 ? json_integer(st->line) : json_null());
}

json_t *stress_plan_json(const struct stress_plan *p)
{
    static const char *const monitors[] = {"both", "events", "polling"};
    json_t *j, *jobs, *arr, *args;
    int i;

    args = p->args_json != NULL ? json_loads(p->args_json, 0, NULL) : NULL;
    jobs =
        json_pack("{s:s, s:o, s:[], s:i, s:i, s:[], s:f, s:f}", "kind", p->kind,
                  "args", args != NULL ? args : json_object(), "queues",
                  "priority", p->priority, "max_attempts", p->max_attempts,
                  "tags", "delay_s", (double)p->delay_us / TRIB_US_PER_S,
                  "spread_s", (double)p->spread_us / TRIB_US_PER_S);
    for (i = 0; i < p->nqueues; i++) {
        json_array_append_new(json_object_get(jobs, "queues"),
                              json_string(p->queues[i]));
    }
    for (i = 0; i < p->ntags; i++) {
        json_array_append_new(json_object_get(jobs, "tags"),
                              json_string(p->tags[i]));
    }
    j = json_pack(
        "{s:s, s:o, s:o, s:o, s:{s:s, s:i, s:i}, s:f, s:[], s:I, s:f, s:f, "
        "s:s, s:[], s:o, s:o, s:o, s:o}",
        "name", p->name, "file", str_or_null(p->file), "jobs", jobs, "mixed",
        p->mixed ? json_pack("{s:s, s:s}", "notify_queue", p->notify_queue,
                             "poll_queue", p->poll_queue)
                 : json_null(),
        "insert", "method",
        p->method == STRESS_METHOD_INSERT ? "insert" : "copy", "batch",
        p->batch, "streams", p->streams, "start_rate", p->start_rate, "stages",
        "total_jobs", (json_int_t)stress_plan_jobs(p), "timeout_s",
        (double)p->timeout_us / TRIB_US_PER_S, "grace_s",
        (double)p->grace_us / TRIB_US_PER_S, "monitor",
        monitors[(unsigned)p->monitor < 3 ? p->monitor : 0], "thresholds",
        "database_url", redacted(p->database_url), "schema",
        str_or_null(p->schema), "control", str_or_null(p->control), "out",
        str_or_null(p->out_dir));
    if (j == NULL) {
        return json_object(); /* not UTF-8 somewhere: should not happen */
    }
    arr = json_object_get(j, "stages");
    for (i = 0; i < p->nstages; i++) {
        json_array_append_new(arr, stage_json(p, i));
    }
    arr = json_object_get(j, "thresholds");
    for (i = 0; i < p->nthresholds; i++) {
        json_array_append_new(arr, json_string(p->thresholds[i].expr));
    }
    return j;
}
