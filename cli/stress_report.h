/*
 * stress_report -- what a stress run learned, job by job, and the report
 * document built from it (docs/REPORT.md, schema "tributary.stress.report/1").
 *
 * Records: one per job of the run, keyed by job id, fed from two sources
 * that may arrive in any order and more than once:
 *   - the coordinator's event stream (stress_rec_event), already filtered
 *     to the run's tag: gives node, client, River's statistics (queue wait,
 *     run, complete) per attempt, snoozes, errors as they happen;
 *   - the final read of river_job (stress_rec_db_row): the truth for
 *     state, attempt, times, the original due time (metadata due_us) and
 *     the stage (metadata stage); attempted_by's last entry names the
 *     client when no event was seen.
 * Repeated input never counts twice (events: per (job, attempt, kind) and
 * the greatest 'at' wins -- snoozed/interrupted events per (job, attempt,
 * kind, at), as River restores the attempt on those; rows replace the
 * row-derived fields).
 *
 * Definitions (per job; times are database clock, us):
 *   due        = metadata due_us (else the first event's scheduled_at, else
 *                the row's scheduled_at when attempt <= 1)
 *   end_to_end = finalized_at - due        (final jobs only)
 *   pickup     = first attempted_at - due  (first attempt: the earliest
 *                attempted_at of the job's events and, for attempt 1
 *                jobs, of the row -- a snoozed job's row shows its last run)
 *   queue_wait = River's QueueWaitDuration of each attempt (events)
 *   run        = River's RunDuration of each attempt (events)
 *   complete   = River's CompleteDuration of each attempt (events)
 * Quantiles are exact (sorted values, rank ceil(q * n)).
 *
 * Ownership: stress_rec_new() returns a store freed by stress_rec_free();
 * strings passed in are copied (interned). stress_report_build() returns a
 * new json_t reference.
 * Threading: one thread.
 */
#ifndef TRIB_STRESS_REPORT_H
#define TRIB_STRESS_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "stress_plan.h"
#include "trib_wire.h"

struct stress_rec;

struct stress_rec *stress_rec_new(void);
void stress_rec_free(struct stress_rec *r); /* NULL ok */

/* One event from the coordinator (node = the agent that sent it). Events
 * of kinds 6/7 (queue paused/resumed) are ignored. */
void stress_rec_event(struct stress_rec *r, const char *node, size_t nodelen,
                      const struct trib_wire_event *ev);

/* One river_job row of the run (strings NUL-terminated, borrowed). */
struct stress_db_row {
    int64_t id;
    const char *state; /* "completed", ... */
    const char *queue;
    const char *kind;
    int attempt;
    int max_attempts;
    int64_t created_at, scheduled_at, attempted_at, finalized_at; /* 0=NULL */
    int64_t due_us;          /* metadata tributary.due_us (0 = absent) */
    int stage;               /* metadata tributary.stage (-1 = absent) */
    const char *last_client; /* attempted_by's last element or NULL */
    int nerrors;             /* length of errors[] */
    const char *last_error;  /* errors[-1].error or NULL */
};
void stress_rec_db_row(struct stress_rec *r, const struct stress_db_row *row);

/* What the agents said about their clients (from the `nodes` query):
 * lets rows without events find their node and mode. */
void stress_rec_client(struct stress_rec *r, const char *client,
                       const char *node, const char *mode);

/* Jobs known / in a final state (completed, discarded, cancelled) by
 * either source, for progress lines. */
int64_t stress_rec_jobs(const struct stress_rec *r);
int64_t stress_rec_finished(const struct stress_rec *r);
/* The same by events alone (the events monitor's tally by state). */
void stress_rec_event_tally(const struct stress_rec *r, int64_t *completed,
                            int64_t *discarded, int64_t *cancelled);

/* Everything about the run that is not in the records. */
struct stress_run_info {
    const struct stress_plan *plan;
    const char *run_id;
    const char *run_tag;
    const char *database; /* "host:port/dbname" (never a password) */
    const char *control;  /* URL or NULL when not used */
    int64_t started_us;   /* run start (schedule time 0), wall clock */
    int64_t insert_ended_us;
    int64_t ended_us;
    const char *outcome; /* "finished" "timeout" "interrupted" "error" */
    const char *error;   /* or NULL */
    int exit_code;
    /* Insertion per stage (stress_ins_progress().stages). */
    int nstages;
    const int64_t *stage_planned, *stage_inserted;
    const int64_t *stage_started_us, *stage_ended_us;
    int64_t inserted;
    /* Monitors: the polling view's last counts of the run's rows by state
     * (index: enum trib_wire_state), its time, and the events seen/missed
     * by this process's subscription. */
    int64_t db_states[TRIB_WS_COUNT];
    int64_t db_polled_us;
    int64_t events_seen, events_missed;
    /* Coordinator's own count for the run tag (wait query), -1 unknown. */
    int64_t coord_finished, coord_failed;
    /* resources object (stress_res_json) and the per-mode database load
     * (stress_res_modes_json), borrowed; either may be NULL. */
    json_t *resources;
    json_t *modes_db;
};

/* Builds the report document (without "thresholds": see
 * stress_thresholds_apply). */
json_t *stress_report_build(const struct stress_rec *r,
                            const struct stress_run_info *info);

#endif /* TRIB_STRESS_REPORT_H */
