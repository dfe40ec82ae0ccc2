/*
 * maint.c -- leader-only maintenance, as River's leader runs it:
 *
 *   scheduler      every 5 s: due retryable/scheduled jobs -> available
 *                  (unique-key conflicts discarded), then river_insert
 *                  notifications for queues with jobs due now;
 *   rescuer        every 30 s: jobs running longer than
 *                  rescue_stuck_jobs_after -> retryable or discarded
 *                  ("Stuck job rescued by JobRescuer"), cancelled when a
 *                  cancel was requested, discarded when no worker exists;
 *   cleaner        every 30 s: finalized jobs past their retention deleted;
 *   queue cleaner  hourly: river_queue rows idle past queue_retention;
 *   reindexer      daily at 00:00 UTC: REINDEX INDEX CONCURRENTLY.
 *
 * Services start (after 0-1 s) when this agent becomes leader and stop when
 * it is not. They share one connection and run one statement at a time.
 */
#include "agent_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <stdlib.h>
#include <string.h>

#define BATCH          10000
#define RESCUE_BATCH   1000
#define SCHEDULE_AHEAD (5 * TRIB_US_PER_S)
#define NOTIFY_HORIZON (5 * TRIB_US_PER_MS)

enum svc_id {
    SVC_SCHEDULER,
    SVC_RESCUER,
    SVC_CLEANER,
    SVC_QUEUES,
    SVC_REINDEX,
    NSVC
};

struct svc {
    struct trib_maint *m;
    enum svc_id id;
    const char *name;
    uv_timer_t timer;
    int running;
    int64_t cursor; /* rescuer: last id seen */
};

struct trib_maint {
    struct trib_agent *agent;
    struct trib_pg *pg;
    int leader;
    int closing;
    int open_handles;
    int reindex_next; /* index into the reindex list */
    struct svc svc[NSVC];
    uint64_t scheduled, rescued, deleted, queues_deleted;
};

static void run_svc(uv_timer_t *t);
static int open_connection(struct trib_maint *m);

static const char *const reindex_list[] = {
    "river_job_args_index",
    "river_job_kind",
    "river_job_metadata_index",
    "river_job_pkey",
    "river_job_prioritized_fetching_index",
    "river_job_state_and_finalized_at_index",
    "river_job_unique_idx",
};
#define NREINDEX (sizeof(reindex_list) / sizeof(reindex_list[0]))

static uint64_t svc_interval_ms(const struct svc *s)
{
    const struct trib_agent_conf *c = s->m->agent->conf;

    switch (s->id) {
    case SVC_SCHEDULER:
        return (uint64_t)(c->scheduler_interval_us / 1000);
    case SVC_RESCUER:
        return (uint64_t)(c->rescuer_interval_us / 1000);
    case SVC_CLEANER:
        return (uint64_t)(c->cleaner_interval_us / 1000);
    case SVC_QUEUES:
        return (uint64_t)(c->queue_cleaner_interval_us / 1000);
    case SVC_REINDEX: {
        /* until the next 00:00 UTC */
        int64_t now = trib_now_us() / 1000;
        int64_t day = 86400000LL;
        return (uint64_t)(day - now % day);
    }
    default:
        return 60000;
    }
}

static void svc_done(struct svc *s, uint64_t next_ms)
{
    s->running = 0;
    if (s->m->leader && !s->m->closing) {
        uv_timer_start(&s->timer, run_svc, next_ms, 0);
    }
}

static void time_text(char *buf, size_t n, int64_t us)
{
    trib_time_rfc3339(us, buf, n, 6);
}

/* ------------------------------------------------------- scheduler */

static void on_schedule(void *arg, int status, PGresult *res)
{
    struct svc *s = arg;
    struct trib_maint *m = s->m;
    struct trib_agent *a = m->agent;
    int64_t horizon = trib__db_now(a) + NOTIFY_HORIZON;
    const char **queues;
    size_t nq = 0, i;
    int r, n;

    if (status == TRIB_ECANCELED) {
        svc_done(s, 0); /* dropped or closing: the service stops */
        return;
    }
    if (status != 0) {
        if (status != TRIB_EDBCONN) {
            TRIB_WARN("AGT-SCHEDULER", "scheduler failed: %s",
                      trib_pg_errmsg(res));
        }
        svc_done(s, svc_interval_ms(s));
        return;
    }
    n = PQntuples(res);
    m->scheduled += (uint64_t)n;
    queues = trib_malloc((size_t)(n > 0 ? n : 1) * sizeof(*queues));
    for (r = 0; r < n; r++) {
        int64_t at = 0;
        const char *q = PQgetvalue(res, r, 0);
        if (PQgetvalue(res, r, 2)[0] == 't') {
            continue; /* discarded as a unique conflict */
        }
        trib_pgtime_parse(PQgetvalue(res, r, 1), &at);
        if (at > horizon) {
            continue; /* due later: the poll timers will see it */
        }
        for (i = 0; i < nq; i++) {
            if (strcmp(queues[i], q) == 0) {
                break;
            }
        }
        if (i == nq) {
            queues[nq++] = q;
        }
    }
    if (nq > 0) {
        trib__maint_notify_queues(m, queues, nq);
    }
    trib_free(queues);
    /* a full batch: more are due right now */
    svc_done(s, n >= BATCH ? 0 : svc_interval_ms(s));
}

static void run_scheduler(struct svc *s)
{
    struct trib_agent *a = s->m->agent;
    char horizon[40], limit[16];
    const char *params[2] = {horizon, limit};

    time_text(horizon, sizeof(horizon), trib__db_now(a) + SCHEDULE_AHEAD);
    snprintf(limit, sizeof(limit), "%d", BATCH);
    trib_pg_query(s->m->pg, &a->sql.schedule, 2, params, on_schedule, s);
}

void trib__maint_notify_queues(struct trib_maint *m, const char **queues,
                               size_t n)
{
    struct trib_agent *a = m->agent;
    struct trib_buf arr = TRIB_BUF_INIT, payload = TRIB_BUF_INIT;
    const char *params[2];
    size_t i;

    trib_buf_putc(&arr, '{');
    for (i = 0; i < n; i++) {
        trib_buf_reset(&payload);
        trib_buf_puts(&payload, "{\"queue\": ");
        trib_buf_json_str(&payload, queues[i], strlen(queues[i]));
        trib_buf_putc(&payload, '}');
        if (i > 0) {
            trib_buf_putc(&arr, ',');
        }
        trib_buf_pgarray_elem(&arr, payload.data, payload.len);
    }
    trib_buf_putc(&arr, '}');
    params[0] = a->sql.ch_insert;
    params[1] = arr.data;
    trib_pg_query(m->pg, &a->sql.notify_many, 2, params, NULL, NULL);
    trib_buf_fini(&arr);
    trib_buf_fini(&payload);
}

/* --------------------------------------------------------- rescuer */

static int64_t rescue_after_us(const struct trib_agent *a, int *never)
{
    int64_t after = a->conf->rescue_after_us, max_timeout = 0;
    size_t i;

    *never = 1;
    for (i = 0; i < a->conf->nclients; i++) {
        int64_t t = a->conf->clients[i].job_timeout_us;
        if (t >= 0) {
            *never = 0;
        }
        if (t > max_timeout) {
            max_timeout = t;
        }
    }
    /* River: a job timeout longer than the rescue window extends it. */
    if (max_timeout > after) {
        after = max_timeout + 3600 * TRIB_US_PER_S;
    }
    return after;
}

static void on_rescue_select(void *arg, int status, PGresult *res);

static void rescue_page(struct svc *s)
{
    struct trib_agent *a = s->m->agent;
    char after[24], horizon[40], limit[16];
    const char *params[3] = {after, horizon, limit};
    int never;
    int64_t window = rescue_after_us(a, &never);

    if (never) {
        svc_done(s, svc_interval_ms(s)); /* no job timeout: never rescued */
        return;
    }
    snprintf(after, sizeof(after), "%lld", (long long)s->cursor);
    time_text(horizon, sizeof(horizon), trib__db_now(a) - window);
    snprintf(limit, sizeof(limit), "%d", RESCUE_BATCH);
    trib_pg_query(s->m->pg, &a->sql.rescue_select, 3, params, on_rescue_select,
                  s);
}

static void on_rescue_update(void *arg, int status, PGresult *res)
{
    struct svc *s = arg;

    if (status == TRIB_ECANCELED) {
        svc_done(s, 0); /* dropped or closing: the service stops */
        return;
    }
    if (status != 0 && status != TRIB_EDBCONN) {
        TRIB_WARN("AGT-RESCUER", "rescue failed: %s", trib_pg_errmsg(res));
    }
    rescue_page(s);
}

static void on_rescue_select(void *arg, int status, PGresult *res)
{
    struct svc *s = arg;
    struct trib_agent *a = s->m->agent;
    struct trib_buf p[5];
    const char *params[6];
    char now_text[40], horizon[40];
    int64_t now = trib__db_now(a);
    int n, r, k, never, count = 0;

    if (status == TRIB_ECANCELED) {
        svc_done(s, 0); /* dropped or closing: the service stops */
        return;
    }
    if (status != 0) {
        if (status != TRIB_EDBCONN) {
            TRIB_WARN("AGT-RESCUER", "rescuer failed: %s", trib_pg_errmsg(res));
        }
        s->cursor = 0;
        svc_done(s, svc_interval_ms(s));
        return;
    }
    n = PQntuples(res);
    if (n == 0) {
        s->cursor = 0;
        svc_done(s, svc_interval_ms(s));
        return;
    }
    for (k = 0; k < 5; k++) {
        trib_buf_init(&p[k]);
        trib_buf_putc(&p[k], '{');
    }
    time_text(now_text, sizeof(now_text), now);
    for (r = 0; r < n; r++) {
        int64_t id = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        const char *kind = PQgetvalue(res, r, 1);
        int attempt = atoi(PQgetvalue(res, r, 2));
        int max_attempts = atoi(PQgetvalue(res, r, 3));
        int nerrors = atoi(PQgetvalue(res, r, 4));
        int cancel = PQgetvalue(res, r, 5)[0] == 't';
        const char *state;
        char sched[40] = "NULL", fin[40] = "NULL", el[256];

        s->cursor = id;
        if (cancel) {
            state = "cancelled";
            snprintf(fin, sizeof(fin), "%s", now_text);
        } else if (trib__kinds_find(a->kinds, kind) == NULL) {
            TRIB_WARN("AGT-RESCUER",
                      "job %lld of unknown kind %s is stuck; "
                      "discarding it",
                      (long long)id, kind);
            state = "discarded";
            snprintf(fin, sizeof(fin), "%s", now_text);
        } else if (attempt < max_attempts) {
            /* River: the client's retry policy, always 'retryable' */
            state = "retryable";
            time_text(sched, sizeof(sched),
                      now + trib__retry_delay_us(nerrors));
        } else {
            state = "discarded";
            snprintf(fin, sizeof(fin), "%s", now_text);
        }
        snprintf(el, sizeof(el),
                 "{\"at\":\"%s\",\"attempt\":%d,\"error\":\"Stuck job rescued "
                 "by JobRescuer\",\"trace\":\"\"}",
                 now_text, attempt);
        if (count++ > 0) {
            for (k = 0; k < 5; k++) {
                trib_buf_putc(&p[k], ',');
            }
        }
        trib_buf_put_i64(&p[0], id);
        trib_buf_pgarray_elem(&p[1], el, strlen(el));
        trib_buf_puts(&p[2], fin);
        /* scheduled_at is NOT NULL: keep the job's own when not retried */
        if (strcmp(sched, "NULL") == 0) {
            trib_buf_puts(&p[3], now_text);
        } else {
            trib_buf_puts(&p[3], sched);
        }
        trib_buf_puts(&p[4], state);
    }
    for (k = 0; k < 5; k++) {
        trib_buf_putc(&p[k], '}');
        params[k] = p[k].data;
    }
    time_text(horizon, sizeof(horizon), now - rescue_after_us(a, &never));
    params[5] = horizon;
    s->m->rescued += (uint64_t)count;
    TRIB_INFO("AGT-RESCUER", "rescuing %d stuck job(s)", count);
    trib_pg_query(s->m->pg, &a->sql.rescue_update, 6, params, on_rescue_update,
                  s);
    for (k = 0; k < 5; k++) {
        trib_buf_fini(&p[k]);
    }
}

/* ---------------------------------------------------------- cleaner */

static void on_clean(void *arg, int status, PGresult *res)
{
    struct svc *s = arg;
    long deleted;

    if (status == TRIB_ECANCELED) {
        svc_done(s, 0); /* dropped or closing: the service stops */
        return;
    }
    if (status != 0) {
        if (status != TRIB_EDBCONN) {
            TRIB_WARN("AGT-CLEANER", "cleaner failed: %s", trib_pg_errmsg(res));
        }
        svc_done(s, svc_interval_ms(s));
        return;
    }
    deleted = atol(PQcmdTuples(res));
    s->m->deleted += (uint64_t)deleted;
    svc_done(s, deleted >= BATCH ? 50 : svc_interval_ms(s));
}

static void run_cleaner(struct svc *s)
{
    const struct trib_agent *a = s->m->agent;
    const struct trib_agent_conf *c = a->conf;
    char h[3][40], limit[16];
    const char *params[4];
    int64_t now = trib__db_now(a);
    int64_t ret[3] = {c->cancelled_retention_us, c->completed_retention_us,
                      c->discarded_retention_us};
    int k;

    for (k = 0; k < 3; k++) {
        if (ret[k] < 0) {
            params[k] = NULL; /* keep forever */
        } else {
            time_text(h[k], sizeof(h[k]), now - ret[k]);
            params[k] = h[k];
        }
    }
    snprintf(limit, sizeof(limit), "%d", BATCH);
    params[3] = limit;
    trib_pg_query(s->m->pg, &a->sql.clean, 4, params, on_clean, s);
}

/* ---------------------------------------------------- queue cleaner */

static void on_queue_clean(void *arg, int status, PGresult *res)
{
    struct svc *s = arg;

    if (status == TRIB_ECANCELED) {
        svc_done(s, 0); /* dropped or closing: the service stops */
        return;
    }
    if (status == 0) {
        s->m->queues_deleted += (uint64_t)atol(PQcmdTuples(res));
    } else if (status != TRIB_EDBCONN) {
        TRIB_WARN("AGT-QCLEANER", "queue cleaner failed: %s",
                  trib_pg_errmsg(res));
    }
    svc_done(s, svc_interval_ms(s));
}

static void run_queue_cleaner(struct svc *s)
{
    const struct trib_agent *a = s->m->agent;
    char secs[32];
    const char *params[1] = {secs};

    snprintf(secs, sizeof(secs), "%.6f",
             (double)a->conf->queue_retention_us / TRIB_US_PER_S);
    trib_pg_query(s->m->pg, &a->sql.queue_clean, 1, params, on_queue_clean, s);
}

/* -------------------------------------------------------- reindexer */

static void reindex_next(struct svc *s);

static const struct trib_pg_stmt artifacts_stmt = {
    NULL,
    "SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n"
    " ON n.oid = c.relnamespace WHERE n.nspname = $1::text"
    " AND (c.relname LIKE $2::text || '\\_ccnew%'"
    "  OR c.relname LIKE $2::text || '\\_ccold%')",
    2,
};

static void on_reindex(void *arg, int status, PGresult *res)
{
    struct svc *s = arg;

    if (status == TRIB_ECANCELED) {
        svc_done(s, 0); /* dropped or closing: the service stops */
        return;
    }
    if (status != 0 && status != TRIB_EDBCONN) {
        TRIB_WARN("AGT-REINDEX", "reindex of %s failed: %s",
                  reindex_list[s->m->reindex_next - 1], trib_pg_errmsg(res));
    }
    reindex_next(s);
}

static void on_artifacts(void *arg, int status, PGresult *res)
{
    struct svc *s = arg;
    struct trib_maint *m = s->m;
    const char *idx = reindex_list[m->reindex_next - 1];
    struct trib_buf sql = TRIB_BUF_INIT;

    if (status == TRIB_ECANCELED) {
        svc_done(s, 0); /* dropped or closing: the service stops */
        return;
    }
    if (status != 0 || atol(PQgetvalue(res, 0, 0)) > 0) {
        /* River skips an index a previous concurrent build left
         * half-done; so do we. */
        if (status == 0) {
            TRIB_WARN("AGT-REINDEX",
                      "skipping %s: artifacts of an earlier "
                      "concurrent reindex exist",
                      idx);
        }
        reindex_next(s);
        return;
    }
    trib_buf_puts(&sql, "REINDEX INDEX CONCURRENTLY ");
    trib_pg_quote_ident(&sql, m->agent->sql.schema);
    trib_buf_putc(&sql, '.');
    trib_pg_quote_ident(&sql, idx);
    trib_pg_exec(m->pg, sql.data, on_reindex, s);
    trib_buf_fini(&sql);
}

static void reindex_next(struct svc *s)
{
    struct trib_maint *m = s->m;
    const char *params[2];

    if (m->reindex_next >= (int)NREINDEX || !m->leader) {
        m->reindex_next = 0;
        svc_done(s, svc_interval_ms(s));
        return;
    }
    params[0] = m->agent->sql.schema;
    params[1] = reindex_list[m->reindex_next++];
    trib_pg_query(m->pg, &artifacts_stmt, 2, params, on_artifacts, s);
}

/* -------------------------------------------------------- framework */

static void run_svc(uv_timer_t *t)
{
    struct svc *s = t->data;

    if (!s->m->leader || s->running || s->m->closing) {
        return;
    }
    s->running = 1;
    switch (s->id) {
    case SVC_SCHEDULER:
        run_scheduler(s);
        break;
    case SVC_RESCUER:
        s->cursor = 0;
        rescue_page(s);
        break;
    case SVC_CLEANER:
        run_cleaner(s);
        break;
    case SVC_QUEUES:
        run_queue_cleaner(s);
        break;
    case SVC_REINDEX:
        s->m->reindex_next = 0;
        reindex_next(s);
        break;
    default:
        s->running = 0;
    }
}

int trib__maint_create(struct trib_agent *a, struct trib_maint **out)
{
    static const char *names[NSVC] = {"scheduler", "rescuer", "cleaner",
                                      "queue cleaner", "reindexer"};
    struct trib_maint *m = TRIB_NEW(struct trib_maint);
    int i, rv;

    m->agent = a;
    rv = open_connection(m);
    if (rv != 0) {
        trib_free(m);
        return rv;
    }
    for (i = 0; i < NSVC; i++) {
        m->svc[i].m = m;
        m->svc[i].id = (enum svc_id)i;
        m->svc[i].name = names[i];
        uv_timer_init(a->loop, &m->svc[i].timer);
        m->svc[i].timer.data = &m->svc[i];
        m->open_handles++;
    }
    *out = m;
    return 0;
}

static int open_connection(struct trib_maint *m)
{
    int rv = trib__agent_pg(m->agent, NULL, "maintenance", 0, &m->pg);

    if (rv == 0) {
        trib_pg_start(m->pg);
    }
    return rv;
}

void trib__maint_set_leader(struct trib_maint *m, int leader)
{
    int i;

    if (m == NULL || m->leader == leader) {
        return;
    }
    m->leader = leader;
    if (!leader) {
        /* Statements already queued (e.g. behind a partition) must not
         * run once we are no longer leader. (One in flight completes; its
         * service then stops.) */
        trib_pg_drop_queued(m->pg);
    }
    for (i = 0; i < NSVC; i++) {
        struct svc *s = &m->svc[i];
        if (!leader) {
            uv_timer_stop(&s->timer);
            continue;
        }
        if (i == SVC_REINDEX) {
            if (m->agent->conf->reindexer) {
                uv_timer_start(&s->timer, run_svc, svc_interval_ms(s), 0);
            }
            continue;
        }
        /* River: each service starts after 0-1 s, then runs at once. */
        uv_timer_start(&s->timer, run_svc, (uint64_t)(rand() % 1000), 0);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct svc *s = h->data;
    struct trib_maint *m = s->m;

    if (--m->open_handles == 0) {
        trib_free(m);
    }
}

void trib__maint_close(struct trib_maint *m)
{
    int i;

    if (m == NULL) {
        return;
    }
    m->closing = 1;
    m->leader = 0;
    trib_pg_close(m->pg, NULL, NULL);
    for (i = 0; i < NSVC; i++) {
        uv_close((uv_handle_t *)&m->svc[i].timer, on_closed);
    }
}
