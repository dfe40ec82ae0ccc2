/*
 * poller_int.h -- the polling view's pure logic (no I/O), shared by
 * poller.c and poller_test.c:
 *
 *   poller_tally.c  the counts: group tables, the finalized_at cursor with
 *                   its id window (de-duplication), cumulative totals,
 *                   lateness and the adaptive margin;
 *   poller_sql.c    the statements' text and reading their results into a
 *                   tally;
 *   poller_diff.c   database vs events: rows, explained differences, and
 *                   the "database" JSON object's body.
 *
 * Times are int64 microseconds; "db" times come from the database clock.
 * Ownership: a tally owns copies of every string fed to it.
 * Threading: one owner (the poller's loop thread).
 */
#ifndef TRIB_POLLER_INT_H
#define TRIB_POLLER_INT_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "trib_buf.h"

/* ------------------------------------------------------------------ keys */

/* What a count is about. client: the last element of attempted_by (the
 * worker that finalized the job), NULL when the job was never worked;
 * rescued: finalized by a rescuer (its last error is the rescue's). For
 * non-final counts and events, client is NULL and rescued 0. */
struct trib__key {
    const char *queue;
    const char *kind;
    const char *client;
    int ws; /* enum trib_wire_state */
    int rescued;
};

/* Longest client id kept (longer ones are cut: attempted_by is free
 * text). Queue and kind are at most 127 characters by River's CHECKs. */
#define TRIB__CLIENT_MAX 200

int trib__ws_final(int ws); /* 1 for completed, discarded, cancelled */
/* "completed" etc. (our own table: no dependency on proto's code). */
const char *trib__ws_name(int ws);
int trib__ws_parse(const char *s); /* TRIB_WS_UNKNOWN when unknown */

/* ------------------------------------------------------ counting tables */

/* A table of counts keyed by trib__key (events, non-final states, the
 * differences' working sums): TRIB__CTAB_NV values per key, value 0 being
 * "the" count. */
#define TRIB__CTAB_NV 8
struct trib__ctab;
struct trib__ctab *trib__ctab_create(void);
void trib__ctab_destroy(struct trib__ctab *t); /* NULL ok */
void trib__ctab_clear(struct trib__ctab *t);
/* Adds n to value i (0 for _add) of the key (creating it). */
void trib__ctab_add(struct trib__ctab *t, const struct trib__key *k, int64_t n);
void trib__ctab_addv(struct trib__ctab *t, const struct trib__key *k, int i,
                     int64_t n);
/* Value 0 (or i) of the key, 0 when absent. */
int64_t trib__ctab_get(const struct trib__ctab *t, const struct trib__key *k);
int64_t trib__ctab_getv(const struct trib__ctab *t, const struct trib__key *k,
                        int i);
size_t trib__ctab_size(const struct trib__ctab *t);
void trib__ctab_each(const struct trib__ctab *t,
                     void (*fn)(void *arg, const struct trib__key *k,
                                int64_t n),
                     void *arg);
void trib__ctab_eachv(const struct trib__ctab *t,
                      void (*fn)(void *arg, const struct trib__key *k,
                                 const int64_t *v),
                      void *arg);

/* ----------------------------------------------------------------- tally */

struct trib__tally_conf {
    int64_t margin_us;     /* base re-read window                   */
    int64_t margin_max_us; /* adaptive widening cap                 */
    int64_t transit_us;    /* "recent" for events in transit        */
    uint32_t max_groups;   /* final groups before the overflow group */
    int64_t hold_us;       /* after an outage: how long (plus the margin)
                              the lower bound is held, for writers that
                              reconnect later than the poller          */
};

struct trib__tally;
struct trib__group; /* one (queue, kind, final state, client, rescued) */

struct trib__tally *trib__tally_create(const struct trib__tally_conf *c);
void trib__tally_destroy(struct trib__tally *t); /* NULL ok */

/* 1 once a baseline (the first full count) has been applied. */
int trib__tally_counting(const struct trib__tally *t);
/* The next window: rows with finalized_at >= this (db clock). Only
 * meaningful once counting. Never decreases. */
int64_t trib__tally_lower_bound(const struct trib__tally *t);
/* The margin in use now (us). */
int64_t trib__tally_margin(const struct trib__tally *t);

/*
 * Applying a final-state poll made at db time db_now:
 *   begin, then per result group: trib__tally_group(), then
 *   trib__tally_bulk() (baseline rows older than the window, counted
 *   without ids) and/or trib__tally_row() per row in the window; then end.
 * A row is counted when its (id, finalized_at) was not seen before: ids
 * stay remembered while their finalized_at >= the lower bound. end()
 * advances the cursor, prunes the ids and adapts the margin; it returns 1
 * when this poll saw rows later than half the margin (the margin widened
 * or is at its cap: worth a warning), else 0.
 */
void trib__tally_final_begin(struct trib__tally *t, int64_t db_now_us);
struct trib__group *trib__tally_group(struct trib__tally *t,
                                      const struct trib__key *k);
void trib__tally_bulk(struct trib__tally *t, struct trib__group *g, int64_t n);
void trib__tally_row(struct trib__tally *t, struct trib__group *g, int64_t id,
                     int64_t fin_us);
/* Final-state rows whose finalized_at is NULL (impossible under River's
 * CHECK since migration 4; counted at the baseline only). */
void trib__tally_unfinalized(struct trib__tally *t, int64_t n);
int trib__tally_final_end(struct trib__tally *t);

/* The poller could not read (a statement failed, the connection was
 * lost): writers may commit rows finalized before or during the outage
 * only after they reconnect, later than the poller. The next applied poll
 * (db time R) starts a hold: the lower bound does not advance until a poll
 * at db time >= R + hold + margin (that poll still reads from it), so
 * rows committed before then are counted whatever their finalized_at
 * (>= the bound). Rows first read during the hold with finalized_at < R
 * are counted as outage rows, not as late ones. Another outage during the
 * hold restarts it. */
void trib__tally_outage(struct trib__tally *t);

/* Event counts noted when a poll is sent (see trib_poller_conf.view):
 * snap_begin() clears the pending note, snap_add() fills it; the next
 * final_end() makes it the note that goes with the counts. */
void trib__tally_snap_begin(struct trib__tally *t);
void trib__tally_snap_add(struct trib__tally *t, const char *queue,
                          const char *kind, int ws, int64_t n);

/* Non-final counts: begin, add per (queue, kind, state), end (replaces the
 * previous snapshot at once). */
void trib__tally_states_begin(struct trib__tally *t);
void trib__tally_states_add(struct trib__tally *t, const char *queue,
                            const char *kind, int ws, int64_t n);
void trib__tally_states_end(struct trib__tally *t);
int trib__tally_has_states(const struct trib__tally *t);

struct trib__tally_stats {
    int64_t db_now_us;      /* last final poll's database time         */
    int64_t since_db_us;    /* the baseline poll's database time       */
    int64_t lower_bound_us; /* next window start                       */
    int64_t margin_us;
    uint64_t rows_read, rows_counted, late_rows, tracked_ids, groups;
    uint64_t overflowed; /* rows counted in the overflow group      */
    int64_t unfinalized; /* see trib__tally_unfinalized()           */
    int64_t max_lateness_us;
    int64_t hold_until_us; /* db time the bound is held until; 0: none */
    uint64_t outage_rows;  /* see trib__tally_outage()                 */
};
void trib__tally_stats(const struct trib__tally *t,
                       struct trib__tally_stats *s);

/* Iteration (strings borrowed for the call). recent: finalizations with
 * finalized_at within transit of the last poll's database time. */
void trib__tally_each_final(const struct trib__tally *t,
                            void (*fn)(void *arg, const struct trib__key *k,
                                       int64_t n, int64_t recent),
                            void *arg);
void trib__tally_each_state(const struct trib__tally *t,
                            void (*fn)(void *arg, const struct trib__key *k,
                                       int64_t n),
                            void *arg);
/* The event note that goes with the current counts, or NULL when the
 * poll behind them was made without one. */
const struct trib__ctab *trib__tally_snap(const struct trib__tally *t);

/* ------------------------------------------------------------------ SQL */

/* The two statements' text for a schema (NULL or "": unqualified). */
struct trib__poll_sql {
    char *baseline; /* $1: margin in us                         */
    char *window;   /* $1: lower bound, us since the epoch      */
    char *states;   /* no parameters                            */
};
void trib__poll_sql_init(struct trib__poll_sql *s, const char *schema);
void trib__poll_sql_fini(struct trib__poll_sql *s);

/*
 * Reads a baseline or window result into t (begin ... end included).
 * Checks the whole result before counting anything: on TRIB_EPROTO the
 * tally is unchanged and err says why. Returns 0 (then *late as
 * trib__tally_final_end() returns) or TRIB_EPROTO.
 */
int trib__poll_read_final(struct trib__tally *t, const PGresult *res, int *late,
                          char *err, size_t errlen);
/* Reads a non-final result (begin ... end included). 0 or TRIB_EPROTO. */
int trib__poll_read_states(struct trib__tally *t, const PGresult *res,
                           char *err, size_t errlen);

/* The same checks on plain text cells, for tests: cells[row][col] (NULL =
 * SQL NULL), ncols columns as documented in poller_sql.c. */
int trib__poll_read_final_cells(struct trib__tally *t, const char *const *cells,
                                int nrows, int ncols, int *late, char *err,
                                size_t errlen);

/* Parses PostgreSQL's text form of a bigint[] ("{1,2,3}") into out
 * (at most max). Returns the count, or -1 when malformed or too long. */
int trib__parse_i64_array(const char *s, int64_t *out, int max);
/* Counts the elements of such an array text (-1 when malformed). */
int trib__count_i64_array(const char *s);

/* ------------------------------------------------------------ differences */

struct trib__diff_in {
    const char *queue; /* filter: NULL = any */
    const char *kind;
    const struct trib__ctab *events; /* events now (client NULL, rescued 0) */
    int (*known)(void *arg, const char *client); /* a Tributary client? */
    void *known_arg;
    int64_t age_us; /* how old the database numbers are (for details) */
};

/*
 * Builds the body of the "database" object: "states", "rows",
 * "differences" (docs/POLLING.md), into obj. The tally must be counting.
 */
void trib__diff_json(const struct trib__tally *t,
                     const struct trib__diff_in *in, json_t *obj);

/* Three-decimal milliseconds as a JSON real. */
json_t *trib__json_ms(int64_t us);

#endif /* TRIB_POLLER_INT_H */
