/*
 * trib_pg.c -- libpq on libuv: connect, set up, run a FIFO of statements,
 * reconnect. See trib_pg.h for the contract.
 *
 * State machine:
 *
 *   IDLE --start--> CONNECTING --ok--> SETUP --ok--> READY
 *                      |  ^              |             |
 *                 fail |  | timer        | fail        | lost
 *                      v  |              v             v
 *                    BACKOFF <-----------+-------------+
 *
 *   any state --close--> CLOSING --(handles closed)--> freed
 *
 * One uv_poll_t watches PQsocket(). libpq may switch sockets during connect,
 * so the socket is re-read after every PQconnectPoll() step and the poll
 * handle replaced when it changes. Handles are freed in their close
 * callbacks; the struct itself is freed once no handle remains open.
 */
#include "trib_pg.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"

#include <stdlib.h>
#include <string.h>

enum pg_state {
    ST_IDLE,
    ST_CONNECTING,
    ST_SETUP,
    ST_READY,
    ST_BACKOFF,
    ST_CLOSING
};

#define MAX_PREPARED 32

struct req {
    struct req *next;
    const struct trib_pg_stmt *stmt;
    int nparams;
    char **params; /* points into the same allocation */
    trib_pg_cb cb;
    void *arg;
    int internal; /* set-up statement (no user callback) */
};

struct poll_box {
    uv_poll_t h;
    struct trib_pg *pg;
};

struct trib_pg {
    uv_loop_t *loop;
    enum pg_state state;
    char *conninfo;
    char *name;
    char *app_name;
    char *setup_sql;
    char **listen;
    size_t nlisten;
    void (*on_notify)(void *, const char *, const char *);
    void (*on_state)(void *, int);
    void *arg;
    int backoff_min, backoff_max, backoff_cur, connect_timeout;

    PGconn *conn;
    int fd;
    struct poll_box *poll; /* NULL when no socket is watched */
    int poll_events;
    uv_timer_t timer; /* connect deadline / reconnect backoff */
    int open_handles;

    struct req *head, *tail; /* head is in flight when 'busy' */
    size_t nqueued;
    int busy;
    int preparing;  /* in-flight step is the PREPARE of head's stmt */
    PGresult *keep; /* result to deliver for the in-flight request */

    const char *prepared[MAX_PREPARED];
    int nprepared;

    struct trib_complain complain;
    void (*close_done)(void *);
    void *close_arg;
};

static void start_connect(struct trib_pg *pg);
static void lose(struct trib_pg *pg, const char *why);
static void kick(struct trib_pg *pg);
static void set_poll(struct trib_pg *pg, int events);

/* ---------------------------------------------------------------- helpers */

static void maybe_free(struct trib_pg *pg)
{
    size_t i;

    if (pg->state != ST_CLOSING || pg->open_handles > 0) {
        return;
    }
    for (i = 0; i < pg->nlisten; i++) {
        trib_free(pg->listen[i]);
    }
    trib_free(pg->listen);
    trib_free(pg->conninfo);
    trib_free(pg->name);
    trib_free(pg->app_name);
    trib_free(pg->setup_sql);
    if (pg->close_done != NULL) {
        pg->close_done(pg->close_arg);
    }
    trib_free(pg);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct trib_pg *pg = h->data;

    if ((void *)h != (void *)&pg->timer) {
        trib_free(h); /* a poll_box */
    }
    pg->open_handles--;
    maybe_free(pg);
}

static void drop_poll(struct trib_pg *pg)
{
    if (pg->poll == NULL) {
        return;
    }
    uv_poll_stop(&pg->poll->h);
    uv_close((uv_handle_t *)&pg->poll->h, on_handle_closed);
    pg->poll = NULL;
    pg->poll_events = 0;
    pg->fd = -1;
}

static void req_free(struct req *r)
{
    trib_free(r);
}

static struct req *req_new(const struct trib_pg_stmt *stmt, int nparams,
                           const char *const *params)
{
    size_t total = sizeof(struct req) + (size_t)nparams * sizeof(char *);
    struct req *r;
    char *p;
    int i;

    for (i = 0; i < nparams; i++) {
        if (params[i] != NULL) {
            total += strlen(params[i]) + 1;
        }
    }
    r = trib_calloc(1, total);
    r->stmt = stmt;
    r->nparams = nparams;
    r->params = (char **)(r + 1);
    p = (char *)(r->params + nparams);
    for (i = 0; i < nparams; i++) {
        if (params[i] == NULL) {
            r->params[i] = NULL;
        } else {
            size_t n = strlen(params[i]) + 1;
            memcpy(p, params[i], n);
            r->params[i] = p;
            p += n;
        }
    }
    return r;
}

static void enqueue(struct trib_pg *pg, struct req *r, int front)
{
    if (front) {
        r->next = pg->head;
        pg->head = r;
        if (pg->tail == NULL) {
            pg->tail = r;
        }
    } else {
        r->next = NULL;
        if (pg->tail != NULL) {
            pg->tail->next = r;
        } else {
            pg->head = r;
        }
        pg->tail = r;
    }
    pg->nqueued++;
}

static struct req *dequeue(struct trib_pg *pg)
{
    struct req *r = pg->head;

    if (r != NULL) {
        pg->head = r->next;
        if (pg->head == NULL) {
            pg->tail = NULL;
        }
        pg->nqueued--;
    }
    return r;
}

static int is_prepared(const struct trib_pg *pg, const char *name)
{
    int i;

    for (i = 0; i < pg->nprepared; i++) {
        if (strcmp(pg->prepared[i], name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- completion */

/* The in-flight request is finished: deliver and move on. */
static void finish_head(struct trib_pg *pg, int status, PGresult *res)
{
    struct req *r = dequeue(pg);

    pg->busy = 0;
    pg->preparing = 0;
    if (r != NULL && r->cb != NULL) {
        r->cb(r->arg, status, res);
    }
    if (res != NULL) {
        PQclear(res);
    }
    req_free(r);
}

static void setup_done(void *arg, int status, PGresult *res)
{
    struct trib_pg *pg = arg;

    if (status != 0) {
        if (status == TRIB_EDB) {
            trib_complain(&pg->complain, TRIB_LOG_ERROR, "PG-SETUP",
                          "%s: session set-up failed: %s", pg->name,
                          trib_pg_errmsg(res));
        }
        /* a lost connection is handled (and logged) by lose() */
        return;
    }
    pg->state = ST_READY;
    pg->backoff_cur = pg->backoff_min;
    if (pg->complain.active) {
        trib_complain_release(&pg->complain, "PG-CONN",
                              "%s: connected again (server %d)", pg->name,
                              PQserverVersion(pg->conn));
    } else {
        TRIB_DEBUG("PG-CONN", "%s: connected (server %d)", pg->name,
                   PQserverVersion(pg->conn));
    }
    if (pg->on_state != NULL) {
        pg->on_state(pg->arg, 1);
    }
}

/* Reads every available result of the in-flight request. */
static void drain_results(struct trib_pg *pg)
{
    PGresult *res;

    while (pg->busy && !PQisBusy(pg->conn)) {
        res = PQgetResult(pg->conn);
        if (res == NULL) {
            /* end of this request's results */
            PGresult *keep = pg->keep;
            int status = 0;

            pg->keep = NULL;
            if (keep != NULL) {
                ExecStatusType st = PQresultStatus(keep);
                if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK &&
                    st != PGRES_EMPTY_QUERY) {
                    status = TRIB_EDB;
                }
            }
            if (pg->preparing) {
                if (status == 0) {
                    struct req *r = pg->head;
                    if (pg->nprepared < MAX_PREPARED) {
                        pg->prepared[pg->nprepared++] = r->stmt->name;
                    }
                    PQclear(keep);
                    pg->busy = 0;
                    pg->preparing = 0;
                    kick(pg);
                    return;
                }
            }
            finish_head(pg, status, keep);
            if (pg->state == ST_CLOSING || pg->conn == NULL) {
                return;
            }
            kick(pg);
            continue;
        }
        /* Keep the first error, else the last result. */
        if (pg->keep != NULL) {
            ExecStatusType kst = PQresultStatus(pg->keep);
            if (kst == PGRES_FATAL_ERROR || kst == PGRES_NONFATAL_ERROR) {
                PQclear(res);
                continue;
            }
            PQclear(pg->keep);
        }
        pg->keep = res;
    }
}

static void deliver_notifies(struct trib_pg *pg)
{
    PGnotify *n;

    while (pg->conn != NULL && (n = PQnotifies(pg->conn)) != NULL) {
        if (pg->on_notify != NULL) {
            pg->on_notify(pg->arg, n->relname, n->extra ? n->extra : "");
        }
        PQfreemem(n);
    }
}

/* --------------------------------------------------------------- sending */

static void flush_out(struct trib_pg *pg)
{
    int rv = PQflush(pg->conn);

    if (rv < 0) {
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    set_poll(pg, UV_READABLE | (rv == 1 ? UV_WRITABLE : 0));
}

/* Sends the head request if idle and ready. */
static void kick(struct trib_pg *pg)
{
    struct req *r;
    int ok;

    if (pg->busy || pg->head == NULL || pg->conn == NULL) {
        return;
    }
    r = pg->head;
    if (pg->state != ST_READY && !(pg->state == ST_SETUP && r->internal)) {
        return;
    }
    if (r->stmt->name != NULL && !is_prepared(pg, r->stmt->name)) {
        ok = PQsendPrepare(pg->conn, r->stmt->name, r->stmt->sql,
                           r->stmt->nparams, NULL);
        pg->preparing = 1;
    } else if (r->stmt->name != NULL) {
        ok = PQsendQueryPrepared(pg->conn, r->stmt->name, r->nparams,
                                 (const char *const *)r->params, NULL, NULL, 0);
    } else if (r->nparams == 0) {
        ok = PQsendQuery(pg->conn, r->stmt->sql);
    } else {
        ok = PQsendQueryParams(pg->conn, r->stmt->sql, r->nparams, NULL,
                               (const char *const *)r->params, NULL, NULL, 0);
    }
    if (!ok) {
        pg->preparing = 0;
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->busy = 1;
    flush_out(pg);
}

/* ------------------------------------------------------------ connection */

static void on_poll(uv_poll_t *h, int status, int events);

static void set_poll(struct trib_pg *pg, int events)
{
    int fd = PQsocket(pg->conn);

    if (fd < 0) {
        return;
    }
    if (pg->poll != NULL && pg->fd != fd) {
        drop_poll(pg); /* libpq switched sockets */
    }
    if (pg->poll == NULL) {
        struct poll_box *pb = trib_calloc(1, sizeof(*pb));
        pb->pg = pg;
        if (uv_poll_init(pg->loop, &pb->h, fd) != 0) {
            trib_free(pb);
            return;
        }
        pb->h.data = pg;
        pg->open_handles++;
        pg->poll = pb;
        pg->fd = fd;
        pg->poll_events = 0;
    }
    if (events != pg->poll_events) {
        uv_poll_start(&pg->poll->h, events, on_poll);
        pg->poll_events = events;
    }
}

static void on_timer(uv_timer_t *t)
{
    struct trib_pg *pg = t->data;

    if (pg->state == ST_BACKOFF) {
        start_connect(pg);
    } else if (pg->state == ST_CONNECTING) {
        lose(pg, "connect timeout");
    }
}

static void schedule_reconnect(struct trib_pg *pg)
{
    int delay = pg->backoff_cur;
    int jitter = delay / 5;

    if (jitter > 0) {
        delay += rand() % jitter;
    }
    pg->backoff_cur = pg->backoff_cur * 2 > pg->backoff_max
                          ? pg->backoff_max
                          : pg->backoff_cur * 2;
    pg->state = ST_BACKOFF;
    uv_timer_start(&pg->timer, on_timer, (uint64_t)delay, 0);
}

/* The session is gone (or never came up): fail the in-flight request, keep
 * the rest queued, and schedule a reconnect. */
static void lose(struct trib_pg *pg, const char *why)
{
    int was_ready = pg->state == ST_READY;
    int inflight;
    char msg[512];
    size_t n;

    snprintf(msg, sizeof(msg), "%s", why ? why : "unknown error");
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        msg[--n] = '\0';
    }
    trib_complain(&pg->complain, TRIB_LOG_WARN, "PG-CONN",
                  "%s: database connection %s: %s", pg->name,
                  was_ready ? "lost" : "failed", msg);
    uv_timer_stop(&pg->timer);
    drop_poll(pg);
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    pg->nprepared = 0;
    if (pg->keep != NULL) {
        PQclear(pg->keep);
        pg->keep = NULL;
    }
    pg->preparing = 0;
    schedule_reconnect(pg);
    /* A set-up request is dropped; a user request in flight fails (it may
     * or may not have committed); the rest stay queued for the next
     * session. */
    inflight = pg->busy;
    pg->busy = 0;
    while (pg->head != NULL && pg->head->internal) {
        struct req *r = dequeue(pg);
        req_free(r);
        inflight = 0;
    }
    if (inflight && pg->head != NULL) {
        pg->busy = 1;
        finish_head(pg, TRIB_EDBCONN, NULL);
        if (pg->state == ST_CLOSING) {
            return;
        }
    }
    if (was_ready && pg->on_state != NULL) {
        pg->on_state(pg->arg, 0);
    }
}

static void begin_setup(struct trib_pg *pg)
{
    struct trib_buf sql = TRIB_BUF_INIT;
    struct req *r;
    size_t i;

    if (PQsetnonblocking(pg->conn, 1) != 0) {
        lose(pg, "cannot set non-blocking mode");
        return;
    }
    pg->state = ST_SETUP;
    trib_buf_puts(&sql, "SET TimeZone = 'UTC'; SET application_name = ");
    {
        char *lit =
            PQescapeLiteral(pg->conn, pg->app_name, strlen(pg->app_name));
        trib_buf_puts(&sql, lit ? lit : "'tributary'");
        PQfreemem(lit);
    }
    trib_buf_puts(&sql, ";");
    if (pg->setup_sql != NULL) {
        trib_buf_printf(&sql, " %s;", pg->setup_sql);
    }
    for (i = 0; i < pg->nlisten; i++) {
        trib_buf_puts(&sql, " LISTEN ");
        trib_pg_quote_ident(&sql, pg->listen[i]);
        trib_buf_puts(&sql, ";");
    }
    /* The statement text lives in the request's own allocation. */
    {
        size_t slen = sql.len + 1;
        struct trib_pg_stmt *st;
        char *text;

        r = trib_calloc(1, sizeof(*r) + sizeof(*st) + slen);
        st = (struct trib_pg_stmt *)(r + 1);
        text = (char *)(st + 1);
        memcpy(text, sql.data, slen);
        st->name = NULL;
        st->sql = text;
        st->nparams = 0;
        r->stmt = st;
        r->params = NULL;
        r->cb = setup_done;
        r->arg = pg;
        r->internal = 1;
    }
    trib_buf_fini(&sql);
    enqueue(pg, r, 1);
    kick(pg);
}

static void connect_step(struct trib_pg *pg)
{
    PostgresPollingStatusType st = PQconnectPoll(pg->conn);

    switch (st) {
    case PGRES_POLLING_READING:
        set_poll(pg, UV_READABLE);
        break;
    case PGRES_POLLING_WRITING:
        set_poll(pg, UV_WRITABLE);
        break;
    case PGRES_POLLING_OK:
        uv_timer_stop(&pg->timer);
        set_poll(pg, UV_READABLE);
        begin_setup(pg);
        break;
    default:
        lose(pg, PQerrorMessage(pg->conn));
        break;
    }
}

static void start_connect(struct trib_pg *pg)
{
    /* Defaults first: the caller's conninfo (expanded from dbname) wins. */
    const char *keys[] = {"connect_timeout",  "keepalives",
                          "keepalives_idle",  "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout",
                          "dbname",           NULL};
    char timeout_s[16];
    const char *vals[8];

    snprintf(timeout_s, sizeof(timeout_s), "%d",
             (pg->connect_timeout + 999) / 1000);
    vals[0] = timeout_s;
    vals[1] = "1";
    vals[2] = "5";
    vals[3] = "2";
    vals[4] = "3";
    vals[5] = "15000";
    vals[6] = pg->conninfo;
    vals[7] = NULL;
    pg->state = ST_CONNECTING;
    pg->conn = PQconnectStartParams(keys, vals, 1);
    if (pg->conn == NULL) {
        lose(pg, "out of memory");
        return;
    }
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        lose(pg, PQerrorMessage(pg->conn));
        return;
    }
    uv_timer_start(&pg->timer, on_timer, (uint64_t)pg->connect_timeout, 0);
    connect_step(pg);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct trib_pg *pg = h->data;

    if (pg->poll == NULL || &pg->poll->h != h || pg->conn == NULL) {
        return; /* stale handle being closed */
    }
    if (status < 0) {
        lose(pg, uv_strerror(status));
        return;
    }
    if (pg->state == ST_CONNECTING) {
        connect_step(pg);
        return;
    }
    if (events & UV_WRITABLE) {
        flush_out(pg);
        if (pg->conn == NULL) {
            return;
        }
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(pg->conn)) {
            lose(pg, PQerrorMessage(pg->conn));
            return;
        }
        drain_results(pg);
        if (pg->conn == NULL || pg->state == ST_CLOSING) {
            return;
        }
        deliver_notifies(pg);
        if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_BAD) {
            lose(pg, PQerrorMessage(pg->conn));
        }
    }
}

/* ------------------------------------------------------------------ API */

int trib_pg_create(uv_loop_t *loop, const struct trib_pg_opts *o,
                   struct trib_pg **out)
{
    struct trib_pg *pg;
    size_t i;

    if (o->conninfo == NULL) {
        return TRIB_EINVAL;
    }
    pg = TRIB_NEW(struct trib_pg);
    pg->loop = loop;
    pg->fd = -1;
    pg->conninfo = trib_strdup(o->conninfo);
    pg->name = trib_strdup(o->name ? o->name : "pg");
    pg->app_name = trib_strdup(o->app_name ? o->app_name : "tributary");
    pg->setup_sql = trib_strdup(o->setup_sql);
    if (o->listen != NULL) {
        while (o->listen[pg->nlisten] != NULL) {
            pg->nlisten++;
        }
        pg->listen = trib_calloc(pg->nlisten + 1, sizeof(char *));
        for (i = 0; i < pg->nlisten; i++) {
            pg->listen[i] = trib_strdup(o->listen[i]);
        }
    }
    pg->on_notify = o->on_notify;
    pg->on_state = o->on_state;
    pg->arg = o->arg;
    pg->backoff_min = o->reconnect_min_ms > 0 ? o->reconnect_min_ms : 100;
    pg->backoff_max = o->reconnect_max_ms > 0 ? o->reconnect_max_ms : 5000;
    pg->backoff_cur = pg->backoff_min;
    pg->connect_timeout =
        o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
    uv_timer_init(loop, &pg->timer);
    pg->timer.data = pg;
    pg->open_handles = 1;
    *out = pg;
    return 0;
}

void trib_pg_start(struct trib_pg *pg)
{
    if (pg->state == ST_IDLE) {
        start_connect(pg);
    }
}

int trib_pg_query(struct trib_pg *pg, const struct trib_pg_stmt *stmt,
                  int nparams, const char *const *params, trib_pg_cb cb,
                  void *arg)
{
    struct req *r;

    if (pg->state == ST_CLOSING) {
        return TRIB_EBUSY;
    }
    r = req_new(stmt, nparams, params);
    r->cb = cb;
    r->arg = arg;
    enqueue(pg, r, 0);
    kick(pg);
    return 0;
}

int trib_pg_exec(struct trib_pg *pg, const char *sql, trib_pg_cb cb, void *arg)
{
    struct trib_pg_stmt *st;
    struct req *r;
    size_t slen = strlen(sql) + 1;

    if (pg->state == ST_CLOSING) {
        return TRIB_EBUSY;
    }
    /* Keep the text inside the request so the caller's string may die. */
    r = trib_calloc(1, sizeof(*r) + sizeof(*st) + slen);
    st = (struct trib_pg_stmt *)(r + 1);
    memcpy((char *)(st + 1), sql, slen);
    st->sql = (char *)(st + 1);
    r->stmt = st;
    r->cb = cb;
    r->arg = arg;
    enqueue(pg, r, 0);
    kick(pg);
    return 0;
}

void trib_pg_close(struct trib_pg *pg, void (*done)(void *), void *arg)
{
    struct req *r;

    if (pg->state == ST_CLOSING) {
        return;
    }
    pg->state = ST_CLOSING;
    pg->close_done = done;
    pg->close_arg = arg;
    uv_timer_stop(&pg->timer);
    drop_poll(pg);
    if (pg->keep != NULL) {
        PQclear(pg->keep);
        pg->keep = NULL;
    }
    if (pg->conn != NULL) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    while ((r = dequeue(pg)) != NULL) {
        if (r->cb != NULL && !r->internal) {
            r->cb(r->arg, TRIB_ECANCELED, NULL);
        }
        req_free(r);
    }
    uv_close((uv_handle_t *)&pg->timer, on_handle_closed);
}

size_t trib_pg_drop_queued(struct trib_pg *pg)
{
    struct req *keep_head = NULL, *keep_tail = NULL, *drop = NULL, *r, *next;
    size_t kept = 0, dropped = 0;
    int first = 1;

    /* Split the queue: keep the request in flight and set-up requests. */
    for (r = pg->head; r != NULL; r = next) {
        next = r->next;
        r->next = NULL;
        if ((first && pg->busy) || r->internal) {
            if (keep_tail != NULL) {
                keep_tail->next = r;
            } else {
                keep_head = r;
            }
            keep_tail = r;
            kept++;
        } else {
            r->next = drop;
            drop = r;
            dropped++;
        }
        first = 0;
    }
    pg->head = keep_head;
    pg->tail = keep_tail;
    pg->nqueued = kept;
    /* Callbacks last: they may queue new requests. */
    for (r = drop; r != NULL; r = next) {
        next = r->next;
        if (r->cb != NULL) {
            r->cb(r->arg, TRIB_ECANCELED, NULL);
        }
        req_free(r);
    }
    return dropped;
}

const char *trib_pg_errmsg(const PGresult *res)
{
    const char *m;

    if (res == NULL) {
        return "connection lost";
    }
    m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (m == NULL) {
        m = PQresultErrorMessage(res);
    }
    return m && *m ? m : "unknown database error";
}

const char *trib_pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return s ? s : "";
}

int trib_err_from_pg(const PGresult *res)
{
    const char *state;

    if (res == NULL) {
        return TRIB_EDBCONN;
    }
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
        return 0;
    default:
        break;
    }
    state = trib_pg_sqlstate(res);
    /* Class 08: connection exception; 57P01..03: admin shutdown etc. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
        return TRIB_EDBCONN;
    }
    /* 42P01 undefined_table, 42704 undefined_object: schema missing. */
    if (strcmp(state, "42P01") == 0 || strcmp(state, "42704") == 0) {
        return TRIB_ESCHEMA;
    }
    return TRIB_EDB;
}

size_t trib_pg_app_name(char *out, size_t n, const char *prefix,
                        const char *suffix)
{
    size_t lp = strlen(prefix), ls = suffix ? strlen(suffix) : 0;
    size_t len = lp + ls, max = TRIB_PG_APP_NAME_MAX;

    if (n == 0) {
        return 0;
    }
    if (max > n - 1) {
        max = n - 1;
    }
    if (len > max) {
        len = max;
        /* back up over continuation bytes (10xxxxxx) to a character start */
        while (len > 0 &&
               ((unsigned char)(len < lp ? prefix[len] : suffix[len - lp]) &
                0xC0) == 0x80) {
            len--;
        }
    }
    if (len <= lp) {
        memcpy(out, prefix, len);
    } else {
        memcpy(out, prefix, lp);
        memcpy(out + lp, suffix, len - lp);
    }
    out[len] = '\0';
    return len;
}

void trib_pg_quote_ident(struct trib_buf *b, const char *ident)
{
    const char *p;

    trib_buf_putc(b, '"');
    for (p = ident; *p; p++) {
        if (*p == '"') {
            trib_buf_putc(b, '"');
        }
        trib_buf_putc(b, *p);
    }
    trib_buf_putc(b, '"');
}
