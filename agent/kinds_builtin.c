/*
 * kinds_builtin.c -- the kind registry and the built-in job kinds for load
 * tests:
 *
 *   tributary.noop    {}                       completes at once
 *   tributary.sleep   {"ms": N}                waits N ms (a timer: no
 *                                              thread is held)
 *   tributary.fail    {"probability": p,       fails with probability p
 *                      "message": "..."}       (default 1) and the message
 *   tributary.cpu     {"ms": N}                burns N ms of CPU on a worker
 *                                              thread
 *   tributary.snooze  {"ms": N, "times": T}    snoozes N ms, T times, then
 *                                              completes
 *   tributary.sink    {"rows": N}              writes N rows into the
 *                                              configured sink table
 *
 * Bad arguments fail the attempt with a message naming the field; other
 * keys in args are ignored (as River's JSON decoding does).
 */
#include "agent_int.h"
#include "trib_err.h"
#include "trib_json.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

/* ------------------------------------------------------------ registry */

int trib_kinds_add(struct trib_kinds *k, const struct trib_kind *kind)
{
    size_t len;

    if (kind == NULL || kind->name == NULL) {
        return TRIB_EINVAL;
    }
    len = strlen(kind->name);
    if (len == 0 || len > 127 ||
        (kind->mode == TRIB_KIND_BLOCKING && kind->run == NULL) ||
        (kind->mode == TRIB_KIND_ASYNC && kind->start == NULL)) {
        return TRIB_EINVAL;
    }
    if (trib__kinds_find(k, kind->name) != NULL) {
        return TRIB_EEXIST;
    }
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->v = trib_realloc(k->v, k->cap * sizeof(*k->v));
    }
    k->v[k->n++] = kind;
    return 0;
}

const struct trib_kind *trib__kinds_find(const struct trib_kinds *k,
                                         const char *name)
{
    size_t i;

    for (i = 0; i < k->n; i++) {
        if (strcmp(k->v[i]->name, name) == 0) {
            return k->v[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ helpers */

static int bad_args(struct trib_job *job, const char *err)
{
    trib_job_error(job, "%s: invalid args: %s", trib_job_kind(job), err);
    return -1;
}

static int arg_int(struct trib_job *job, const char *key, int required,
                   int64_t min, int64_t max, int64_t *v)
{
    char err[256];

    if (trib_json_int(trib_job_args(job), key, required, min, max, v, err,
                      sizeof(err)) != 0) {
        return bad_args(job, err);
    }
    return 0;
}

/* Error text for a job that had to stop. */
static void stopped(struct trib_job *job)
{
    char d[32];

    switch (trib_job_cancel_reason(job)) {
    case TRIB_CANCEL_TIMEOUT:
        trib_duration_format(job->client->conf->job_timeout_us, d, sizeof(d));
        trib_job_error(job, "job timed out after %s", d);
        break;
    case TRIB_CANCEL_REMOTE:
        trib_job_error(job, "job cancelled remotely");
        break;
    default:
        trib_job_error(job, "job interrupted by shutdown");
        break;
    }
}

/* ---------------------------------------------------------------- noop */

static void noop_start(struct trib_job *job, void *arg)
{
    trib_job_complete(job);
}

/* --------------------------------------------------------------- sleep */

static void sleep_wake(struct trib_job *job)
{
    trib_job_complete(job);
}

static void sleep_start(struct trib_job *job, void *arg)
{
    int64_t ms = 0;

    if (arg_int(job, "ms", 1, 0, DAY_MS, &ms) != 0) {
        return;
    }
    trib_job_sleep(job, ms * 1000, sleep_wake);
}

static void sleep_cancel(struct trib_job *job, void *arg)
{
    stopped(job);
}

/* ---------------------------------------------------------------- fail */

static void fail_start(struct trib_job *job, void *arg)
{
    const char *msg = "tributary.fail: simulated failure";
    double p = 1.0;
    char err[256];
    json_t *args = trib_job_args(job);

    if (trib_json_num(args, "probability", 0, 0.0, 1.0, &p, err, sizeof(err)) !=
            0 ||
        trib_json_str(args, "message", 0, &msg, err, sizeof(err)) != 0) {
        bad_args(job, err);
        return;
    }
    if (p >= 1.0 || (double)rand() / ((double)RAND_MAX + 1.0) < p) {
        trib_job_error(job, "%s", msg);
    } else {
        trib_job_complete(job);
    }
}

/* ----------------------------------------------------------------- cpu */

static void cpu_run(struct trib_job *job, void *arg)
{
    int64_t ms = 0;
    uint64_t until;
    volatile uint64_t x = 0;

    if (arg_int(job, "ms", 1, 0, DAY_MS, &ms) != 0) {
        return;
    }
    until = trib_mono_us() + (uint64_t)ms * 1000;
    while (trib_mono_us() < until) {
        uint64_t i;
        for (i = 0; i < 20000; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        }
        if (trib_job_cancelled(job)) {
            stopped(job);
            return;
        }
    }
}

/* -------------------------------------------------------------- snooze */

static void snooze_start(struct trib_job *job, void *arg)
{
    int64_t ms = 1000, times = 1;

    if (arg_int(job, "ms", 0, 0, DAY_MS, &ms) != 0 ||
        arg_int(job, "times", 0, 0, 100000, &times) != 0) {
        return;
    }
    if (trib_job_snoozes(job) < times) {
        trib_job_snooze(job, ms * 1000);
    } else {
        trib_job_complete(job);
    }
}

/* ---------------------------------------------------------------- sink */

static void sink_done(struct trib_job *job, int status, const char *msg)
{
    if (status == 0) {
        trib_job_complete(job);
    } else {
        trib_job_error(job, "tributary.sink: write failed: %s",
                       msg ? msg : trib_strerror(status));
    }
}

static void sink_start(struct trib_job *job, void *arg)
{
    int64_t rows = 1;
    int rv;

    if (arg_int(job, "rows", 0, 1, 1000000, &rows) != 0) {
        return;
    }
    rv = trib__sink_write(job->client->agent->sink, job, rows, sink_done);
    if (rv == TRIB_ENOTSUP) {
        trib_job_error(job, "tributary.sink: no sink configured (set "
                            "sink.database_url or --sink-url)");
    } else if (rv != 0) {
        trib_job_error(job, "tributary.sink: %s", trib_strerror(rv));
    }
}

/* ------------------------------------------------------------ register */

static const struct trib_kind builtin[] = {
    {.name = "tributary.noop", .mode = TRIB_KIND_ASYNC, .start = noop_start},
    {.name = "tributary.sleep",
     .mode = TRIB_KIND_ASYNC,
     .start = sleep_start,
     .cancel = sleep_cancel},
    {.name = "tributary.fail", .mode = TRIB_KIND_ASYNC, .start = fail_start},
    {.name = "tributary.cpu", .mode = TRIB_KIND_BLOCKING, .run = cpu_run},
    {.name = "tributary.snooze",
     .mode = TRIB_KIND_ASYNC,
     .start = snooze_start},
    {.name = "tributary.sink", .mode = TRIB_KIND_ASYNC, .start = sink_start},
};

int trib__kinds_builtin(struct trib_kinds *k)
{
    size_t i;
    int rv;

    for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        rv = trib_kinds_add(k, &builtin[i]);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}
