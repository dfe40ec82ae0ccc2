/*
 * stress_insert -- the inserting half of a stress run: 'streams' threads,
 * each with its own libpq connection, put the plan's jobs into river_job
 * following the plan's schedule (stress_stage_due), by COPY or by
 * multi-row INSERT, each batch one transaction followed by a river_insert
 * notification per queue with jobs available now (as River's inserters).
 *
 * Every job carries the run: tag "tributary-run-<run id>" (plus the plan's
 * tags) and metadata {"tributary": {"run": "<run id>", "stage": <index>,
 * "due_us": <scheduled_at at insertion, us since epoch>}} so concurrent
 * runs and old jobs never mix and the original due time survives retries
 * (River overwrites scheduled_at). due_us is left out when the plan has no
 * spread: the due time is then created_at + delay exactly, and unique
 * values are costly in river_job's GIN index on metadata. created_at is this
 * machine's clock at the batch, scheduled_at = created_at + delay (+ spread);
 * River's 5 s rule decides 'available' vs 'scheduled' (cli/insert.c).
 *
 * Pacing: stream k of n inserts the jobs whose index i satisfies
 * i % n == k; each stream compares the schedule with what it has put in
 * and sleeps (at most 5 ms at a time) when ahead. Behind schedule it
 * inserts full batches back to back (insertion is then the bottleneck,
 * which the progress shows as "behind").
 *
 * Ownership: stress_ins_start() returns a handle; stress_ins_join() waits
 * for the threads, stress_ins_free() releases it (after join). The plan
 * is borrowed and must outlive the handle.
 * Threading: start/stop/progress/join/free from one (the main) thread;
 * the inserting threads only touch their own stream and atomics.
 */
#ifndef TRIB_STRESS_INSERT_H
#define TRIB_STRESS_INSERT_H

#include <stddef.h>
#include <stdint.h>

#include "stress_plan.h"

struct stress_ins;

struct stress_ins_opts {
    const struct stress_plan *plan; /* finished */
    const char *conninfo;           /* libpq connection string */
    const char *table;              /* quoted "schema".river_job */
    const char *notify_channel;     /* "<schema>.river_insert" (River's
                                       channel name for that schema) */
    const char *run_id;
    const char *run_tag; /* "tributary-run-<run id>" */
};

struct stress_ins_stage {
    int64_t planned;  /* stress_stage_due at the end; ramp: integral */
    int64_t inserted; /* committed */
    int64_t
        started_us;   /* wall clock (trib_now_us) when it began, 0 = not yet */
    int64_t ended_us; /* when its last job committed / time ran out, 0 */
};

struct stress_ins_progress {
    int64_t inserted; /* committed rows, all stages */
    int64_t due;      /* what the schedule asks for by now */
    int stage;        /* current stage index (nstages when all done) */
    double rate_now;  /* the schedule's current target rate (jobs/s) */
    int done;         /* every stream finished (or stopped) */
    int failed;       /* a stream hit an error: 'error' says which */
    char error[512];
    struct stress_ins_stage stages[STRESS_MAX_STAGES];
};

/* Connects every stream (so a bad URL fails here, with err) and starts the
 * threads; the schedule's time 0 is now. 0 or a trib_err with err. */
int stress_ins_start(const struct stress_ins_opts *o, struct stress_ins **out,
                     char *err, size_t errlen);

/* Asks the streams to stop after their current batch (Ctrl-C, timeout). */
void stress_ins_stop(struct stress_ins *s);

/* A consistent-enough snapshot (atomics) for the progress line. */
void stress_ins_progress(struct stress_ins *s, struct stress_ins_progress *p);

/* Waits for every stream. 0 when all finished cleanly, else TRIB_EIO
 * (progress().error says what). */
int stress_ins_join(struct stress_ins *s);

void stress_ins_free(struct stress_ins *s); /* NULL ok; after join */

#endif /* TRIB_STRESS_INSERT_H */
