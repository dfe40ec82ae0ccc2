/*
 * stress_int -- what cli/stress.c (the command: flags, set-up, outputs,
 * exit code) and cli/stress_run.c (the monitor loop and the final read of
 * river_job) share. Private to the `tributary stress` command.
 *
 * Ownership: struct stress_ctx is owned by trib_cli_stress(); every
 * pointer in it is owned by the context (closed in stress.c) unless
 * marked borrowed.
 * Threading: the main thread only (the inserter's threads live behind
 * stress_insert.h).
 */
#ifndef TRIB_STRESS_INT_H
#define TRIB_STRESS_INT_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdint.h>

#include "stress_insert.h"
#include "stress_plan.h"
#include "stress_report.h"
#include "stress_res.h"
#include "trib_wire.h"

#define STRESS_PROG "tributary stress"

/* Exit codes of `tributary stress` (docs/STRESS.md). */
enum stress_exit {
    STRESS_EXIT_OK = 0,
    STRESS_EXIT_ERROR = 1,
    STRESS_EXIT_USAGE = 2,
    STRESS_EXIT_THRESHOLDS = 3,
    STRESS_EXIT_TIMEOUT = 4,
    STRESS_EXIT_DISAGREE = 5,
    STRESS_EXIT_INTERRUPTED = 130,
};

/* Set by the SIGINT/SIGTERM handler: how many signals arrived. */
extern volatile sig_atomic_t stress_signals;

struct trib_ctl;

struct stress_ctx {
    struct stress_plan plan;
    int quiet, color, tty;

    /* Identity. */
    char run_id[32];
    char run_tag[64];
    char meta_filter[128]; /* {"tributary": {"run": "<id>"}} */
    char *out_dir;

    /* Connections. */
    PGconn *db;           /* polling, resources, final read */
    const char *conninfo; /* borrowed (argv / environment) */
    char *schema;
    char *table;          /* "schema".river_job, quoted */
    char *channel;        /* schema.river_insert */
    char database[256];   /* host:port/dbname for the report */
    struct trib_ctl *ctl; /* NULL: no coordinator (--monitor polling) */
    char *control_url;

    /* Parts. */
    struct stress_ins *ins;
    struct stress_rec *rec;
    struct stress_res *res;

    /* Monitor state. */
    int64_t min_id; /* every job of the run has a greater id */
    int64_t started_us, insert_ended_us, ended_us;
    uint64_t cursor;
    int64_t events_seen, events_missed;
    int64_t db_states[TRIB_WS_COUNT];
    int64_t db_finished, db_total, db_polled_us;
    int64_t poll_cost_us;
    int64_t coord_finished, coord_failed;
    struct stress_ins_progress prog;
    const char *outcome;
    char error[640];
    int disagree; /* set from the report's monitors.agree (stress.c) */
};

/* Runs the loop: inserting, following, stopping (stress_run.c). Fills
 * ctx->outcome ("finished", "timeout", "interrupted", "error"). */
void stress_run(struct stress_ctx *ctx);

/* Reads every row of the run into ctx->rec (stress_run.c). 0 or -1 with
 * ctx->error set. */
int stress_read_rows(struct stress_ctx *ctx);

/* One database poll of the run's rows by state; 0 or -1 (error printed). */
int stress_poll_db(struct stress_ctx *ctx);

#endif /* TRIB_STRESS_INT_H */
