/*
 * stress_analyze_int.h -- the analysis of a stress run's records, shared
 * by stress_analyze.c (per-job facts, groups, counts, the document),
 * stress_analyze_lat.c (exact latency summaries, histograms, breakdown
 * latencies, per-second quantiles, CDFs), stress_analyze_series.c (the
 * per-second series and the climb) and stress_analyze_fail.c (failure
 * groups). docs/REPORT.md defines every number.
 *
 * Ownership: struct an and everything it points to belong to
 * stress_report_build(), which frees them; json_t members are owned
 * references until moved into the document.
 * Threading: one thread.
 */
#ifndef TRIB_STRESS_ANALYZE_INT_H
#define TRIB_STRESS_ANALYZE_INT_H

#include <jansson.h>
#include <stdint.h>

#include "stress_rec_int.h"

/* Breakdown dimensions. node/client/mode: a job counts for the node that
 * finished it (its last attempt), an attempt's statistics for the node
 * that ran it; queue/stage: the job's. */
enum { D_NODE, D_CLIENT, D_MODE, D_QUEUE, D_STAGE, D_COUNT };

/* Latency metrics, in the document's order. */
enum { M_E2E, M_QWAIT, M_PICKUP, M_RUN, M_COMPLETE, M_COUNT };

#define AN_SERIES_MAX 100000 /* seconds (~28 h); later times clamp */
#define AN_NONE       UINT32_MAX

struct an_grp {
    const char *key;
    uint32_t sid;  /* the key's string id (stage entries: 0) */
    int index;     /* stage entries: the stage's index, else -1 */
    uint32_t node; /* client entries: the client's node (string id) */
    uint32_t mode; /* the clients' mode (string id), 0 none */
    int mixed;     /* clients of more than one mode */
    int64_t jobs, finished, completed, discarded, cancelled;
    int64_t first_due, last_final; /* throughput window */
    json_t *lat;                   /* latency_ms: five summaries */
};

struct an_dim {
    uint32_t n, cap;
    struct an_grp *g;
    uint32_t *job; /* per job: group */
    uint32_t *who; /* node/client/mode: per (node, client) pair: group */
    uint32_t *map; /* string id -> group (AN_NONE), while building */
};

struct an {
    const struct stress_rec *r;
    const struct stress_run_info *info;
    const struct stress_plan *plan; /* may be NULL */
    int nstages;                    /* the plan's */
    uint32_t n;                     /* jobs */
    uint8_t *state;                 /* per job: its state (rec_state) */
    int16_t *attempt;               /* per job: attempts (row, else events) */
    struct an_dim dim[D_COUNT];

    /* whole run */
    int64_t first_due, last_final;
    int64_t stage0_last_final; /* when the first stage's last job finished */

    /* per second since t0 */
    int64_t t0;
    uint32_t nsec;
    int64_t *sec_err;   /* failed attempts (stress_analyze_fail.c) */
    int64_t *sec_p95;   /* end-to-end p95 us, -1 none (lat.c) */
    json_t *ser_e2e;    /* {"p50": [...], "p95", "p99", "max"} (lat.c) */
    json_t *ser_pickup; /* {"p50", "p95", "p99"} (lat.c) */

    /* results */
    json_t *latency; /* latency_ms (with histograms) */
    json_t *cdf;
    int64_t failed_attempts, timeouts; /* stress_analyze_fail.c */
};

/* The second of t since t0, clamped to 0..nsec-1. */
static inline uint32_t an_sec(const struct an *a, int64_t t)
{
    int64_t s = (t - a->t0) / 1000000;

    if (t < a->t0 || s < 0) {
        return 0;
    }
    return s >= (int64_t)a->nsec ? a->nsec - 1 : (uint32_t)s;
}

/* A duration in us as JSON milliseconds (three decimals). */
static inline json_t *an_ms(int64_t us)
{
    return json_real((double)us / 1000.0);
}

/* RFC 3339 text of a wall time, or null for 0. */
json_t *stress__an_time(int64_t us);

/* The (node, client, mode) string ids of who pair w. */
void stress__an_who(const struct an *a, uint32_t w, uint32_t *node,
                    uint32_t *client, uint32_t *mode);

/* stress_analyze_lat.c: every latency number of the document. */
void stress__an_latency(struct an *a);
/* A summary of n sorted values (us); hist adds the histogram. */
json_t *stress__an_summary(const int64_t *v, size_t n, int hist);

/* stress_analyze_series.c */
json_t *stress__an_series(struct an *a);
json_t *stress__an_climb(const struct an *a, const json_t *series);

/* stress_analyze_fail.c: the failures array; fills sec_err,
 * failed_attempts and timeouts. */
json_t *stress__an_failures(struct an *a);

#endif /* TRIB_STRESS_ANALYZE_INT_H */
