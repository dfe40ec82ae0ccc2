/*
 * stress_insert_int -- what the inserter's two files share: the handle,
 * its streams, and the batch functions (stress_insert_rows.c). Private to
 * cli/stress_insert*.c.
 *
 * Ownership: a stress_ins owns its streams, their connections and every
 * buffer; stress_ins_free() releases them.
 * Threading: the prebuilt text is written by stress_ins_start before the
 * threads exist and only read afterwards; a stress_stream belongs to its
 * thread; counters shared with the main thread are atomics; 'error' is
 * guarded by err_mu.
 */
#ifndef TRIB_STRESS_INSERT_INT_H
#define TRIB_STRESS_INSERT_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stress_insert.h"
#include "trib_buf.h"

#define SHORT_DELAY_US (5 * TRIB_US_PER_S) /* River's 5 s rule */
#define MAX_SLEEP_US   5000
#define TS_LEN         27 /* "2026-11-27T10:12:27.123456Z" */
#define NCOLS          10 /* the INSERT method's array parameters */

/* A barrier whose last arrival runs a function before releasing the
 * others, and whose size can shrink (a thread that never started). */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, waiting;
    unsigned gen;
};

struct stress_stream {
    struct stress_ins *s;
    int k;
    PGconn *c;
    pthread_t th;
    int started;
    uint64_t rng;
    int64_t day;                /* cached date: days since epoch ... */
    char date[11];              /* ... as "YYYY-MM-DDT" */
    struct trib_buf rows;       /* COPY data */
    struct trib_buf col[NCOLS]; /* INSERT: one array literal per column */
    struct trib_buf sql;        /* notify + COMMIT */
    int avail[STRESS_MAX_QUEUES];
};

struct stress_ins {
    const struct stress_plan *plan;
    int n; /* streams */
    struct stress_stream *st;
    /* prebuilt text */
    char *copy_sql; /* "BEGIN; COPY ... FROM STDIN" */
    char *ins_sql;  /* the INSERT ... SELECT unnest(...) */
    struct trib_buf tail[STRESS_MAX_QUEUES];   /* COPY: args..tags\n */
    struct trib_buf qelem[STRESS_MAX_QUEUES];  /* INSERT: queue element */
    struct trib_buf notify[STRESS_MAX_QUEUES]; /* pg_notify(ch, pl) */
    struct trib_buf meta[STRESS_MAX_STAGES];   /* COPY: metadata prefix */
    struct trib_buf ameta[STRESS_MAX_STAGES];  /* INSERT: the same, quoted */
    struct trib_buf args_e, kind_e, tags_e;    /* INSERT: constant elements */
    char max_e[8], prio_e[8];
    size_t row_max;
    /* schedule and progress */
    struct gate gate;
    atomic_int stop, failed, go, cur, nexited;
    int64_t planned[STRESS_MAX_STAGES];
    _Atomic int64_t inserted[STRESS_MAX_STAGES];
    _Atomic int64_t started_us[STRESS_MAX_STAGES];
    _Atomic int64_t ended_us[STRESS_MAX_STAGES];
    _Atomic uint64_t t0[STRESS_MAX_STAGES]; /* monotonic stage start */
    _Atomic uint64_t t1[STRESS_MAX_STAGES]; /* monotonic stage end, 0 */
    pthread_mutex_t err_mu;
    char error[512];
    int joined;
};

/* Every text that does not change from row to row (stream 0 must be
 * connected: it escapes the literals). 0 or TRIB_EINVAL with err. */
int trib__ins_prebuild(struct stress_ins *s, const struct stress_ins_opts *o,
                       char *err, size_t errlen);

/* One transaction of n jobs of stage 'stage', the stage's job indices
 * first, first + streams, ...; 0, or -1 after trib__ins_fail(). */
int trib__ins_copy_batch(struct stress_stream *st, int stage, int64_t first,
                         int n);
int trib__ins_insert_batch(struct stress_stream *st, int stage, int64_t first,
                           int n);

/* Keeps the first error ("stream K: what: message") and stops every
 * stream. */
void trib__ins_fail(struct stress_stream *st, const char *what,
                    const char *pqmsg);

/* A failed result's message: "primary (detail)", one line. */
const char *trib__ins_resmsg(const PGresult *r, char *buf, size_t n);

/* libpq's multi-line message as one line, in place ("a\nb\n" -> "a; b"). */
void trib__ins_one_line(char *s, size_t cap);

#endif /* TRIB_STRESS_INSERT_INT_H */
