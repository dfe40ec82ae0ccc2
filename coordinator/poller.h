/*
 * poller -- the polling view: the coordinator reads River's river_job table
 * cheaply at a fixed interval and shows the database's numbers beside the
 * event view, with every difference explained (docs/POLLING.md has the
 * SQL, the guarantees and the document; docs/CONTROL.md the "database"
 * object inside the status document).
 *
 * What it counts:
 *   - non-final states (available, pending, scheduled, retryable, running):
 *     the rows in the table now, per (queue, kind, state);
 *   - final states (completed, discarded, cancelled): cumulative
 *     finalizations since the first poll (which counts every final row
 *     present then), per (queue, kind, state, worker client), read through
 *     a finalized_at cursor. Rows deleted later (River's cleaner) stay
 *     counted.
 *
 * The poller never blocks the loop: every statement goes through trib_pg
 * (one connection of its own, reconnecting by itself). A poll still running
 * when the next tick fires is skipped and counted.
 *
 * Threading: everything on the loop thread the poller was created on.
 * Ownership: the poller copies conninfo and schema. Views (conf.view and
 * render's argument) are borrowed and must outlive the poller or the call.
 */
#ifndef TRIB_POLLER_H
#define TRIB_POLLER_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "trib_wire.h" /* enum trib_wire_state, TRIB_WS_COUNT */

struct trib_poller; /* opaque */
struct trib_view;

struct trib_poller_conf {
    const char *conninfo;   /* URL or "key=value ..." (required)            */
    const char *schema;     /* River's schema; NULL or "" = search_path     */
    int64_t interval_ms;    /* 1000; 0 = off (never connects nor polls)      */
    int64_t margin_ms;      /* 2000: finalized_at window re-read each poll   */
    int64_t margin_max_ms;  /* 30000: the window widens up to this when
                               rows commit late (see docs/POLLING.md)     */
    int64_t transit_ms;     /* 60000: rows finalized by Tributary clients
                               this recently may have events in transit  */
    uint32_t max_groups;    /* 10000 (queue, kind, state, client) groups  */
    int64_t outage_hold_ms; /* 10000: after a failed poll or a lost
                               connection, the finalized_at bound is held
                               for this (plus the margin) from the first
                               poll that succeeds again, so that rows the
                               writers commit after their own reconnect
                               are still read (docs/POLLING.md)        */
    /* Optional: the event view whose counts are noted as each poll starts,
     * so that events newer than the poll are told apart from events whose
     * rows the database view lacks. When NULL, the view of the first
     * trib_poller_render() call is used from then on. */
    const struct trib_view *view;
};

void trib_poller_conf_defaults(struct trib_poller_conf *c);

/* Creates a poller (nothing runs until trib_poller_start()). Returns 0, or
 * TRIB_EINVAL (no conninfo, negative durations, margin > margin_max). */
int trib_poller_create(uv_loop_t *loop, const struct trib_poller_conf *conf,
                       struct trib_poller **out);

/* Shorthand for trib_poller_create() with the defaults and these values
 * (interval_ms 0 = off). */
int trib_poller_new(uv_loop_t *loop, const char *conninfo, const char *schema,
                    int64_t interval_ms, struct trib_poller **out);

/* Connects and polls now, then every interval. No-op when interval is 0. */
void trib_poller_start(struct trib_poller *p);

/*
 * Stops and closes, libuv-style: statements in flight are cancelled, the
 * connection and the timer are closed, then done(arg) runs (from the loop,
 * never from inside this call; done may be NULL) and the poller is freed.
 * The pointer must not be used after this call. NULL: no-op (done is not
 * called).
 */
void trib_poller_close(struct trib_poller *p, void (*done)(void *arg),
                       void *arg);

/*
 * Sets status_doc["database"] (docs/CONTROL.md, docs/POLLING.md). view:
 * the event view to compare with (its trib_view_each_final() and
 * trib_view_client_known()); now_us: the coordinator's wall clock
 * (trib_now_us()), for age_ms. status_doc["filter"]["queue"/"kind"], when
 * strings, restrict states, rows and differences (the node filter does
 * not apply to database numbers: "node_filter_ignored": true).
 *
 * Before the first poll completed: {"polled_at": null, "age_ms": null,
 * "interval_ms": N, "error": "not polled yet..." (or the last error, or
 * "polling off"), "states": null, "rows": [], "differences": []}.
 */
void trib_poller_render(struct trib_poller *p, const struct trib_view *view,
                        int64_t now_us, json_t *status_doc);

/* Numbers for other code (the CLI's `wait` explanation, stress reports). */
struct trib_poller_counts {
    int polled;                  /* 0 until the first poll completed: then only
                                    'error' below is meaningful               */
    int64_t polled_at_us;        /* coordinator clock: when the final-state poll
                                    behind these numbers was sent (an upper bound
                                    on their age)                           */
    int64_t db_time_us;          /* that poll's now() (database clock)        */
    int64_t states_polled_at_us; /* same for the non-final counts      */
    /* Indexed by enum trib_wire_state. Non-final states: rows now. Final
     * states: cumulative finalizations (see above). */
    int64_t states[TRIB_WS_COUNT];
    int64_t finished;  /* completed + discarded + cancelled */
    int64_t failed;    /* discarded + cancelled             */
    const char *error; /* last error, NULL when the last poll succeeded;
                          valid until the next poll completes          */
};

/* Fills *out for jobs of queue and kind (NULL = any). Returns 0. */
int trib_poller_counts(const struct trib_poller *p, const char *queue,
                       const char *kind, struct trib_poller_counts *out);

/*
 * Calls fn once per counted group: final states per (queue, kind, state,
 * client) with cumulative finalizations (client NULL: never worked;
 * rescued 1: finalized by a rescuer), then non-final states per (queue,
 * kind, state) with client NULL and the current row count. Strings are
 * borrowed for the call. Nothing is called before the first poll.
 */
void trib_poller_each(const struct trib_poller *p,
                      void (*fn)(void *arg, const char *queue, const char *kind,
                                 const char *client, int ws, int rescued,
                                 int64_t n),
                      void *arg);

/* The poller's own health. */
struct trib_poller_stats {
    uint64_t polls;           /* final-state polls completed            */
    uint64_t failed;          /* statements that failed                 */
    uint64_t skipped;         /* ticks skipped: a poll was still running */
    uint64_t rows_read;       /* final rows read in windows (re-reads
                                 included)                               */
    uint64_t late_rows;       /* rows first seen with finalized_at before
                                 the previous poll's database time      */
    int64_t max_lateness_us;  /* the largest such gap seen               */
    int64_t margin_us;        /* the window now in use                   */
    uint64_t tracked_ids;     /* ids remembered for de-duplication       */
    uint64_t groups;          /* final-state groups                      */
    int64_t last_duration_us; /* last final-state poll, send to result  */
    int64_t states_every_us;  /* current non-final counting period     */
    int64_t hold_until_us;    /* db time the bound is held until after an
                                 outage; 0: not holding                  */
    uint64_t outage_rows;     /* rows first read during such a hold,
                                 finalized before it began               */
};
void trib_poller_stats(const struct trib_poller *p,
                       struct trib_poller_stats *s);

#endif /* TRIB_POLLER_H */
