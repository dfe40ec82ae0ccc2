/*
 * trib_kind.h -- register your own job kinds with tributary-agent.
 *
 * A job kind is what River calls a worker: the code that runs for jobs whose
 * `kind` column matches its name. tributary-agent ships with the built-in
 * kinds tributary.noop, .sleep, .fail, .cpu, .snooze and .sink; a program
 * can add more and still get everything else (fetching, retries, write-back,
 * events, leadership, maintenance) by calling trib_agent_main() with a
 * registration function:
 *
 *     #include <tributary/trib_kind.h>
 *
 *     static void resize_run(struct trib_job *job, void *arg)
 *     {
 *         json_t *args = trib_job_args(job);      // parsed, borrowed
 *         ...do blocking work, checking trib_job_cancelled(job)...
 *         if (failed) {
 *             trib_job_error(job, "resize failed: %s", why);
 *         }                                         // else: completed
 *     }
 *
 *     static int register_kinds(struct trib_kinds *kinds)
 *     {
 *         static const struct trib_kind resize = {
 *             .name = "image.resize", .mode = TRIB_KIND_BLOCKING,
 *             .run = resize_run,
 *         };
 *         return trib_kinds_add(kinds, &resize);
 *     }
 *
 *     int main(int argc, char **argv)
 *     {
 *         return trib_agent_main(argc, argv, register_kinds);
 *     }
 *
 * Two execution modes:
 *
 *  - TRIB_KIND_BLOCKING: run() is called on one of the agent's worker
 *    threads (--threads, default 4). It may block. It reports its outcome
 *    with one of the trib_job_* outcome calls below before returning;
 *    returning without one means "completed". It should return soon after
 *    trib_job_cancelled() becomes true (timeout, remote cancel, shutdown).
 *
 *  - TRIB_KIND_ASYNC: start() is called on the agent's event-loop thread and
 *    must not block. The job stays running until an outcome call is made
 *    (from the loop thread; possibly inside start() itself). Use
 *    trib_job_sleep() for delays and trib_job_loop() for other libuv work.
 *    cancel(), if set, is called on the loop thread when the job must stop
 *    (timeout, remote cancel, shutdown): finish the job promptly.
 *    Thousands of ASYNC jobs can run at once without a thread each.
 *
 * Outcomes (River's semantics):
 *   completed            no call (BLOCKING) or trib_job_complete()
 *   error -> retry       trib_job_error(): retried with n^4 s backoff, or
 *                        discarded once attempt >= max_attempts
 *   snooze               trib_job_snooze(): run again after a delay; the
 *                        attempt is not consumed
 *   cancel               trib_job_cancel(): finalised as cancelled, never
 *                        retried
 * Bad arguments: report them with trib_job_error() (a clear message naming
 * the field); the agent never crashes on them.
 *
 * Ownership: struct trib_job is owned by the agent; it is valid from
 * start()/run() until the outcome call (ASYNC) or until run() returns
 * (BLOCKING). Strings returned by accessors are borrowed for that span.
 * struct trib_kind passed to trib_kinds_add() must outlive the agent
 * (static storage is typical); its name is matched exactly.
 */
#ifndef TRIB_KIND_H
#define TRIB_KIND_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

struct trib_job;   /* a job being worked (opaque) */
struct trib_kinds; /* the registry handed to your registration function */

enum trib_kind_mode {
    TRIB_KIND_BLOCKING = 0,
    TRIB_KIND_ASYNC = 1,
};

struct trib_kind {
    const char *name; /* River job kind, 1..127 bytes */
    enum trib_kind_mode mode;
    /* BLOCKING: runs on a worker thread. */
    void (*run)(struct trib_job *job, void *arg);
    /* ASYNC: runs on the loop thread; an outcome call ends the job. */
    void (*start)(struct trib_job *job, void *arg);
    /* ASYNC, optional: the job must stop (see trib_job_cancel_reason). */
    void (*cancel)(struct trib_job *job, void *arg);
    void *arg; /* passed to the callbacks */
};

/* Adds a kind. Returns 0, TRIB_EEXIST (name taken) or TRIB_EINVAL. */
int trib_kinds_add(struct trib_kinds *kinds, const struct trib_kind *kind);

/* Registration callback type for trib_agent_main(). Return 0 or an error. */
typedef int (*trib_register_fn)(struct trib_kinds *kinds);

/* Runs tributary-agent (flags, config, signals) with extra kinds. Returns
 * the process exit code. */
int trib_agent_main(int argc, char **argv, trib_register_fn register_kinds);

/* ---- accessors (any thread, while the job is yours) ---- */
int64_t trib_job_id(const struct trib_job *job);
const char *trib_job_kind(const struct trib_job *job);
const char *trib_job_queue(const struct trib_job *job);
int trib_job_attempt(const struct trib_job *job); /* 1 on first run */
int trib_job_max_attempts(const struct trib_job *job);
const char *trib_job_args_text(const struct trib_job *job); /* raw JSON */
/* Args parsed as JSON (borrowed; never NULL: a job whose args are not valid
 * JSON fails before your code runs). */
json_t *trib_job_args(const struct trib_job *job);
const char *trib_job_metadata_text(const struct trib_job *job);
const char *trib_job_client_id(const struct trib_job *job);
/* Times this job was snoozed so far (River's metadata "snoozes"). */
int trib_job_snoozes(const struct trib_job *job);

/* Non-zero once the job must stop; see trib_job_cancel_reason(). */
int trib_job_cancelled(const struct trib_job *job);

enum trib_cancel_reason {
    TRIB_CANCEL_NONE = 0,
    TRIB_CANCEL_TIMEOUT = 1,  /* job_timeout elapsed                   */
    TRIB_CANCEL_REMOTE = 2,   /* cancelled through river_control       */
    TRIB_CANCEL_SHUTDOWN = 3, /* agent stopping after its grace period */
};
enum trib_cancel_reason trib_job_cancel_reason(const struct trib_job *job);

/* ---- outcomes (ASYNC: loop thread only, ends the job) ---- */
void trib_job_complete(struct trib_job *job);
void trib_job_error(struct trib_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void trib_job_snooze(struct trib_job *job, int64_t delay_us);
void trib_job_cancel(struct trib_job *job, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- ASYNC helpers (loop thread) ---- */
uv_loop_t *trib_job_loop(struct trib_job *job);
/* Calls fn(job) after delay_us, unless the job is cancelled first (then
 * your cancel() runs instead and the wake-up is dropped). One pending sleep
 * per job. */
void trib_job_sleep(struct trib_job *job, int64_t delay_us,
                    void (*fn)(struct trib_job *job));
/* A pointer for your own per-job state. */
void trib_job_set_data(struct trib_job *job, void *data);
void *trib_job_data(const struct trib_job *job);

#endif /* TRIB_KIND_H */
