/*
 * stress_insert.c -- the inserting half of a stress run (stress_insert.h).
 *
 * Threads: one per stream, each with its own blocking libpq connection
 * (opened by stress_ins_start on the caller's thread). Stages run in order;
 * all streams pass a barrier between two stages, and the last one to
 * arrive closes the stage that ended and opens the next one, so every
 * stream starts a stage from the same clock reading.
 *
 * Rows: everything that does not change from row to row is prebuilt at
 * start (per queue: the COPY row tail and the notify call; per stage: the
 * metadata prefix), timestamps and integers are written without stdio,
 * and the date part of a timestamp is cached per day. Only created_at is
 * the batch's clock; scheduled_at = created_at + delay + random spread.
 */
#include "stress_insert_int.h"

#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ----------------------------------------------------------- the gate */

static void gate_init(struct gate *g, int n)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->n = n;
    g->waiting = 0;
    g->gen = 0;
}

static void gate_fini(struct gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* Called with g->mu held. */
static void gate_open(struct gate *g, void (*fn)(void *, int), void *arg, int i)
{
    if (fn != NULL) {
        fn(arg, i);
    }
    g->waiting = 0;
    g->gen++;
    pthread_cond_broadcast(&g->cv);
}

static void gate_wait(struct gate *g, void (*fn)(void *, int), void *arg, int i)
{
    unsigned gen;

    pthread_mutex_lock(&g->mu);
    gen = g->gen;
    if (++g->waiting >= g->n) {
        gate_open(g, fn, arg, i);
    } else {
        while (gen == g->gen) {
            pthread_cond_wait(&g->cv, &g->mu);
        }
    }
    pthread_mutex_unlock(&g->mu);
}

/* ---------------------------------------------------------- schedule */

/* Stream k's share of the first d jobs of a stage (indices i % n == k). */
static int64_t share(int64_t d, int k, int n)
{
    return d / n + (k < d % n ? 1 : 0);
}

static void sleep_us(int64_t us)
{
    struct timespec ts;

    if (us <= 0) {
        return;
    }
    ts.tv_sec = (time_t)(us / TRIB_US_PER_S);
    ts.tv_nsec = (long)(us % TRIB_US_PER_S) * 1000;
    nanosleep(&ts, NULL);
}

/* Runs one stage for one stream. */
static void run_stage(struct stress_stream *st, int i)
{
    struct stress_ins *s = st->s;
    const struct stress_plan *p = s->plan;
    const struct stress_stage *sg = &p->stages[i];
    int64_t mine = 0,
            total = sg->count > 0 ? share(sg->count, st->k, s->n) : -1;
    uint64_t t0 = atomic_load(&s->t0[i]);

    while (!atomic_load(&s->stop)) {
        int64_t elapsed = (int64_t)(trib_mono_us() - t0), want, nb;
        int tdone = 0, rv;

        if (total >= 0 && mine >= total) {
            break;
        }
        want = share(stress_stage_due(p, i, elapsed, &tdone), st->k, s->n);
        if (total >= 0 && want > total) {
            want = total;
        }
        if (want > mine) {
            nb = want - mine < p->batch ? want - mine : p->batch;
            rv =
                p->method == STRESS_METHOD_INSERT
                    ? trib__ins_insert_batch(st, i, st->k + mine * s->n,
                                             (int)nb)
                    : trib__ins_copy_batch(st, i, st->k + mine * s->n, (int)nb);
            if (rv != 0) {
                break;
            }
            mine += nb;
            atomic_fetch_add(&s->inserted[i], nb);
            if (!tdone) {
                continue;
            }
        }
        if (tdone) {
            /* Ramp over: at most this one last batch toward the share. */
            break;
        }
        sleep_us(sg->duration_us > 0 && sg->duration_us - elapsed < MAX_SLEEP_US
                     ? sg->duration_us - elapsed
                     : MAX_SLEEP_US);
    }
}

/* The last stream to finish stage i-1 closes it and opens stage i (or
 * ends the run): called inside the gate, so everyone sees the same. */
static void next_stage(void *arg, int i)
{
    struct stress_ins *s = arg;
    int64_t now = trib_now_us();
    uint64_t mono = trib_mono_us();

    if (i > 0) {
        atomic_store(&s->ended_us[i - 1], now);
        atomic_store(&s->t1[i - 1], mono);
    }
    if (i >= s->plan->nstages || atomic_load(&s->stop)) {
        if (i >= s->plan->nstages) {
            atomic_store(&s->cur, s->plan->nstages);
        }
        atomic_store(&s->go, 0);
        return;
    }
    if (i > 0) { /* stage 0 began in stress_ins_start */
        atomic_store(&s->started_us[i], now);
        atomic_store(&s->t0[i], mono);
    }
    atomic_store(&s->cur, i);
    atomic_store(&s->go, 1);
}

static void *stream_main(void *arg)
{
    struct stress_stream *st = arg;
    struct stress_ins *s = st->s;
    int i;

    for (i = 0;; i++) {
        gate_wait(&s->gate, next_stage, s, i);
        if (!atomic_load(&s->go)) {
            break;
        }
        run_stage(st, i);
    }
    atomic_fetch_add(&s->nexited, 1);
    return NULL;
}

/* -------------------------------------------------------------- start */

static PGconn *connect_one(const char *conninfo, char *err, size_t errlen)
{
    const char *keys[4], *vals[4];
    PQconninfoOption *opts;
    char *perr = NULL;
    PGconn *c;
    int n = 0;

    if (conninfo[0] != '\0') {
        opts = PQconninfoParse(conninfo, &perr);
        if (opts == NULL) {
            snprintf(err, errlen, "invalid database URL: %s",
                     perr ? perr : "out of memory");
            PQfreemem(perr);
            return NULL;
        }
        PQconninfoFree(opts);
    }
    /* The URL may set its own timeout; application_name is ours. */
    if (getenv("PGCONNECT_TIMEOUT") == NULL) {
        keys[n] = "connect_timeout";
        vals[n++] = "10";
    }
    keys[n] = "dbname";
    vals[n++] = conninfo;
    keys[n] = "application_name";
    vals[n++] = "tributary-stress";
    keys[n] = NULL;
    vals[n] = NULL;
    c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen,
                 "cannot connect to PostgreSQL (host %s, port %s, database "
                 "%s, user %s): %s",
                 c && PQhost(c) && *PQhost(c) ? PQhost(c) : "(default)",
                 c && PQport(c) && *PQport(c) ? PQport(c) : "(default)",
                 c && PQdb(c) && *PQdb(c) ? PQdb(c) : "(default)",
                 c && PQuser(c) && *PQuser(c) ? PQuser(c) : "(default)",
                 c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return NULL;
    }
    return c;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static int check_opts(const struct stress_ins_opts *o, char *err, size_t errlen)
{
    const struct stress_plan *p = o->plan;

    if (p == NULL || o->conninfo == NULL || o->table == NULL ||
        o->notify_channel == NULL || o->run_id == NULL || o->run_tag == NULL) {
        snprintf(err, errlen, "stress_ins_start: missing option");
        return TRIB_EINVAL;
    }
    if (p->nstages < 1 || p->nstages > STRESS_MAX_STAGES || p->streams < 1 ||
        p->streams > 16 || p->batch < 1 || p->batch > 100000 ||
        p->nqueues < 1 || p->nqueues > STRESS_MAX_QUEUES ||
        p->ntags > STRESS_MAX_TAGS || p->args_json == NULL) {
        snprintf(err, errlen,
                 "plan not finished: stages %d, streams %d, batch %d, "
                 "queues %d",
                 p->nstages, p->streams, p->batch, p->nqueues);
        return TRIB_EINVAL;
    }
    return 0;
}

/* Checks the table (COPY) or prepares the INSERT (which checks the
 * table and the state type) on one connection. */
static int check_table(struct stress_ins *s, PGconn *c,
                       const struct stress_ins_opts *o, char *err,
                       size_t errlen)
{
    struct trib_buf q = TRIB_BUF_INIT;
    char msg[400];
    PGresult *r;
    int rv = 0;

    if (s->plan->method == STRESS_METHOD_INSERT) {
        r = PQprepare(c, "stress_insert", s->ins_sql, NCOLS, NULL);
    } else {
        trib_buf_printf(&q, "SELECT 1 FROM %s LIMIT 0", o->table);
        r = PQexec(c, q.data);
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK &&
        PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s: %s (is River's schema migrated?)", o->table,
                 trib__ins_resmsg(r, msg, sizeof(msg)));
        rv = TRIB_ESCHEMA;
    }
    PQclear(r);
    trib_buf_fini(&q);
    return rv;
}

int stress_ins_start(const struct stress_ins_opts *o, struct stress_ins **out,
                     char *err, size_t errlen)
{
    struct stress_ins *s;
    int rv, k, i;

    *out = NULL;
    rv = check_opts(o, err, errlen);
    if (rv != 0) {
        return rv;
    }
    s = TRIB_NEW(struct stress_ins);
    s->plan = o->plan;
    s->n = o->plan->streams;
    s->st = trib_calloc((size_t)s->n, sizeof(*s->st));
    pthread_mutex_init(&s->err_mu, NULL);
    gate_init(&s->gate, s->n);
    for (k = 0; k < s->n; k++) {
        s->st[k].s = s;
        s->st[k].k = k;
        s->st[k].day = -1;
        s->st[k].rng = (uint64_t)trib_now_us() * 0x9E3779B97F4A7C15ULL +
                       (uint64_t)(k + 1) * 0xBF58476D1CE4E5B9ULL;
    }
    for (k = 0; rv == 0 && k < s->n; k++) {
        s->st[k].c = connect_one(o->conninfo, err, errlen);
        if (s->st[k].c == NULL) {
            rv = TRIB_EDBCONN;
        } else {
            PQsetNoticeProcessor(s->st[k].c, quiet, NULL);
        }
    }
    if (rv == 0) { /* stream 0's connection escapes the literals */
        rv = trib__ins_prebuild(s, o, err, errlen);
    }
    for (k = 0; rv == 0 && k < s->n; k++) {
        rv = check_table(s, s->st[k].c, o, err, errlen);
    }
    if (rv != 0) {
        trib__ins_one_line(err, errlen);
        stress_ins_free(s);
        return rv;
    }
    for (i = 0; i < s->plan->nstages; i++) {
        const struct stress_stage *sg = &s->plan->stages[i];
        s->planned[i] =
            sg->count > 0 ? sg->count
                          : stress_stage_due(s->plan, i, sg->duration_us, NULL);
    }
    atomic_store(&s->started_us[0], trib_now_us()); /* time 0 */
    atomic_store(&s->t0[0], trib_mono_us());
    for (k = 0; k < s->n; k++) {
        if (pthread_create(&s->st[k].th, NULL, stream_main, &s->st[k]) != 0) {
            snprintf(err, errlen, "cannot start inserting thread %d", k + 1);
            atomic_store(&s->stop, 1);
            pthread_mutex_lock(&s->gate.mu);
            s->gate.n = k; /* the others must not wait for it */
            if (k > 0 && s->gate.waiting >= k) {
                gate_open(&s->gate, next_stage, s, 0);
            }
            pthread_mutex_unlock(&s->gate.mu);
            stress_ins_free(s);
            return TRIB_ENOMEM;
        }
        s->st[k].started = 1;
    }
    *out = s;
    return 0;
}

/* ----------------------------------------------------- the main thread */

void stress_ins_stop(struct stress_ins *s)
{
    if (s != NULL) {
        atomic_store(&s->stop, 1);
    }
}

void stress_ins_progress(struct stress_ins *s, struct stress_ins_progress *p)
{
    const struct stress_plan *pl = s->plan;
    int i, cur = atomic_load(&s->cur);

    memset(p, 0, sizeof(*p));
    p->stage = cur;
    for (i = 0; i < pl->nstages; i++) {
        struct stress_ins_stage *g = &p->stages[i];
        g->planned = s->planned[i];
        g->inserted = atomic_load(&s->inserted[i]);
        g->started_us = atomic_load(&s->started_us[i]);
        g->ended_us = atomic_load(&s->ended_us[i]);
        p->inserted += g->inserted;
        if (i < cur) {
            p->due += s->planned[i];
        }
    }
    p->done = atomic_load(&s->nexited) >= s->n;
    if (cur < pl->nstages) {
        const struct stress_stage *sg = &pl->stages[cur];
        uint64_t t1 = atomic_load(&s->t1[cur]);
        int64_t el =
            (int64_t)((t1 ? t1 : trib_mono_us()) - atomic_load(&s->t0[cur]));
        p->due += stress_stage_due(pl, cur, el, NULL);
        if (p->done) {
            p->rate_now = 0;
        } else if (sg->duration_us > 0) {
            double r0 = stress_stage_start_rate(pl, cur);
            double f = (double)el / (double)sg->duration_us;
            p->rate_now = r0 + (sg->target - r0) * (f < 1 ? f : 1);
        } else {
            p->rate_now = sg->rate;
        }
    }
    p->failed = atomic_load(&s->failed);
    if (p->failed) {
        pthread_mutex_lock(&s->err_mu);
        snprintf(p->error, sizeof(p->error), "%s", s->error);
        pthread_mutex_unlock(&s->err_mu);
    }
}

int stress_ins_join(struct stress_ins *s)
{
    int k;

    if (!s->joined) {
        for (k = 0; k < s->n; k++) {
            if (s->st[k].started) {
                pthread_join(s->st[k].th, NULL);
            }
        }
        s->joined = 1;
    }
    return atomic_load(&s->failed) ? TRIB_EIO : 0;
}

void stress_ins_free(struct stress_ins *s)
{
    int k, c;

    if (s == NULL) {
        return;
    }
    atomic_store(&s->stop, 1);
    stress_ins_join(s);
    for (k = 0; k < s->n; k++) {
        PQfinish(s->st[k].c);
        trib_buf_fini(&s->st[k].rows);
        trib_buf_fini(&s->st[k].sql);
        for (c = 0; c < NCOLS; c++) {
            trib_buf_fini(&s->st[k].col[c]);
        }
    }
    for (k = 0; k < STRESS_MAX_QUEUES; k++) {
        trib_buf_fini(&s->tail[k]);
        trib_buf_fini(&s->qelem[k]);
        trib_buf_fini(&s->notify[k]);
    }
    for (k = 0; k < STRESS_MAX_STAGES; k++) {
        trib_buf_fini(&s->meta[k]);
        trib_buf_fini(&s->ameta[k]);
    }
    trib_buf_fini(&s->args_e);
    trib_buf_fini(&s->kind_e);
    trib_buf_fini(&s->tags_e);
    trib_free(s->copy_sql);
    trib_free(s->ins_sql);
    gate_fini(&s->gate);
    pthread_mutex_destroy(&s->err_mu);
    trib_free(s->st);
    trib_free(s);
}
