/*
 * stress_insert_rows.c -- the inserter's rows and transactions: the text
 * prebuilt at start, COPY data and the INSERT method's array parameters
 * built per batch, and the batch transactions with their river_insert
 * notifications (stress_insert_int.h).
 *
 * Speed: everything that does not change from row to row is prebuilt
 * (per queue: the COPY row tail and the notify call; per stage: the
 * metadata prefix); timestamps and integers are written without stdio,
 * the date part of a timestamp cached per day; created_at is formatted
 * once per batch.
 */
#include "stress_insert_int.h"

#include "trib_err.h"
#include "trib_time.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------- fast text encoders */

static const char pairs[] =
    "00010203040506070809101112131415161718192021222324"
    "25262728293031323334353637383940414243444546474849"
    "50515253545556575859606162636465666768697071727374"
    "75767778798081828384858687888990919293949596979899";

static char *put2(char *p, unsigned v)
{
    memcpy(p, pairs + 2 * v, 2);
    return p + 2;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}

/* RFC 3339 UTC with microseconds (TS_LEN bytes); us > 0. */
static char *put_ts(struct stress_stream *st, char *p, int64_t us)
{
    int64_t sec = us / TRIB_US_PER_S, day = sec / 86400;
    unsigned sod = (unsigned)(sec - day * 86400);
    unsigned frac = (unsigned)(us - sec * TRIB_US_PER_S);

    if (day != st->day) {
        char full[40];
        trib_time_rfc3339(day * 86400 * TRIB_US_PER_S, full, sizeof(full), 0);
        memcpy(st->date, full, 11);
        st->day = day;
    }
    memcpy(p, st->date, 11);
    p = put2(p + 11, sod / 3600);
    *p++ = ':';
    p = put2(p, sod / 60 % 60);
    *p++ = ':';
    p = put2(p, sod % 60);
    *p++ = '.';
    p = put2(p, frac / 10000);
    p = put2(p, frac / 100 % 100);
    p = put2(p, frac % 100);
    *p++ = 'Z';
    return p;
}

/* s escaped for the inside of a double-quoted array element. */
static void arr_esc(struct trib_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            trib_buf_putc(b, '\\');
        }
        trib_buf_putc(b, *s);
    }
}

static uint64_t rnd(struct stress_stream *st)
{
    st->rng ^= st->rng >> 12;
    st->rng ^= st->rng << 25;
    st->rng ^= st->rng >> 27;
    return st->rng * 0x2545F4914F6CDD1DULL;
}

static int64_t row_delay(struct stress_stream *st, const struct stress_plan *p)
{
    if (p->spread_us <= 0) {
        return p->delay_us;
    }
    return p->delay_us + (int64_t)(rnd(st) % (uint64_t)(p->spread_us + 1));
}

/* ------------------------------------------------------------- errors */

void trib__ins_one_line(char *s, size_t cap)
{
    char in[1024];
    const char *r = in;
    size_t w = 0;

    snprintf(in, sizeof(in), "%s", s);
    while (*r && w + 1 < cap) {
        if (*r == '\n' || *r == '\r') {
            while (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
                r++;
            }
            if (*r && w > 0 && w + 3 < cap) {
                s[w++] = ';';
                s[w++] = ' ';
            }
            continue;
        }
        s[w++] = *r == '\t' ? ' ' : *r;
        r++;
    }
    s[w] = '\0';
}

/* Keeps the first error; every stream stops. */
void trib__ins_fail(struct stress_stream *st, const char *what,
                    const char *pqmsg)
{
    struct stress_ins *s = st->s;

    pthread_mutex_lock(&s->err_mu);
    if (!atomic_load(&s->failed)) {
        snprintf(s->error, sizeof(s->error), "stream %d: %s: %s", st->k + 1,
                 what, pqmsg && *pqmsg ? pqmsg : "unknown error");
        trib__ins_one_line(s->error, sizeof(s->error));
        atomic_store(&s->failed, 1);
    }
    pthread_mutex_unlock(&s->err_mu);
    atomic_store(&s->stop, 1);
}

const char *trib__ins_resmsg(const PGresult *r, char *buf, size_t n)
{
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *d = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);

    if (m == NULL) {
        snprintf(buf, n, "%s", PQresultErrorMessage(r));
    } else if (d != NULL) {
        snprintf(buf, n, "%s (%s)", m, d);
    } else {
        snprintf(buf, n, "%s", m);
    }
    return buf;
}

static void res_fail(struct stress_stream *st, const char *what,
                     const PGresult *r)
{
    char msg[512];

    trib__ins_fail(st, what, trib__ins_resmsg(r, msg, sizeof(msg)));
}

/* Sends sql (one or more statements) and reads every result; 0 when all
 * succeeded, else the first error is reported. */
static int run(struct stress_stream *st, const char *sql, const char *what)
{
    PGresult *r;
    int rv = 0;

    if (!PQsendQuery(st->c, sql)) {
        trib__ins_fail(st, what, PQerrorMessage(st->c));
        return -1;
    }
    while ((r = PQgetResult(st->c)) != NULL) {
        ExecStatusType t = PQresultStatus(r);
        if (rv == 0 && t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
            res_fail(st, what, r);
            rv = -1;
        }
        PQclear(r);
    }
    return rv;
}

/* ------------------------------------------------------------ batches */

/* Which queue gets job i of a stage (round-robin over the plan's). */
static int queue_of(const struct stress_plan *p, int64_t i)
{
    return (int)(i % p->nqueues);
}

/* COPY rows for jobs first, first + n, ... (step = streams). */
static void build_copy(struct stress_stream *st, int stage, int64_t first,
                       int n, int64_t now)
{
    struct stress_ins *s = st->s;
    const struct stress_plan *p = s->plan;
    const struct trib_buf *meta = &s->meta[stage];
    char created[TS_LEN];
    int r;

    put_ts(st, created, now);
    trib_buf_reset(&st->rows);
    trib_buf_reserve(&st->rows, (size_t)n * s->row_max);
    for (r = 0; r < n; r++) {
        int64_t d = row_delay(st, p), due = now + d;
        int q = queue_of(p, first + (int64_t)r * s->n);
        char *o = st->rows.data + st->rows.len;

        memcpy(o, created, TS_LEN);
        o[TS_LEN] = '\t';
        o = put_ts(st, o + TS_LEN + 1, due);
        if (d > SHORT_DELAY_US) {
            memcpy(o, "\tscheduled\t", 11);
        } else {
            memcpy(o, "\tavailable\t", 11);
            st->avail[q] = 1;
        }
        o += 11;
        memcpy(o, meta->data, meta->len);
        o += meta->len;
        if (p->spread_us > 0) {
            o = put_u64(o, (uint64_t)due);
        }
        memcpy(o, s->tail[q].data, s->tail[q].len);
        o += s->tail[q].len;
        st->rows.len = (size_t)(o - st->rows.data);
    }
}

static void col_put(struct trib_buf *b, const void *v, size_t n)
{
    if (b->len > 1) {
        b->data[b->len++] = ',';
    }
    memcpy(b->data + b->len, v, n);
    b->len += n;
}

/* The INSERT method's ten array literals (River's column order). */
static void build_insert(struct stress_stream *st, int stage, int64_t first,
                         int n, int64_t now)
{
    struct stress_ins *s = st->s;
    const struct stress_plan *p = s->plan;
    const struct trib_buf *meta = &s->ameta[stage];
    char created[TS_LEN], ts[TS_LEN];
    size_t per[NCOLS] = {s->args_e.len,
                         TS_LEN,
                         s->kind_e.len,
                         strlen(s->max_e),
                         meta->len + 24,
                         strlen(s->prio_e),
                         0,
                         TS_LEN,
                         9,
                         s->tags_e.len};
    int c, r;

    for (c = 0; c < STRESS_MAX_QUEUES && c < p->nqueues; c++) {
        per[6] = s->qelem[c].len > per[6] ? s->qelem[c].len : per[6];
    }
    for (c = 0; c < NCOLS; c++) {
        trib_buf_reset(&st->col[c]);
        trib_buf_reserve(&st->col[c], (size_t)n * (per[c] + 1) + 2);
        st->col[c].data[0] = '{';
        st->col[c].len = 1;
    }
    put_ts(st, created, now);
    for (r = 0; r < n; r++) {
        int64_t d = row_delay(st, p), due = now + d;
        int q = queue_of(p, first + (int64_t)r * s->n);
        char *e;

        col_put(&st->col[0], s->args_e.data, s->args_e.len);
        col_put(&st->col[1], created, TS_LEN);
        col_put(&st->col[2], s->kind_e.data, s->kind_e.len);
        col_put(&st->col[3], s->max_e, strlen(s->max_e));
        col_put(&st->col[4], meta->data, meta->len);
        e = st->col[4].data + st->col[4].len;
        if (p->spread_us > 0) {
            e = put_u64(e, (uint64_t)due);
        }
        memcpy(e, "}}\"", 3);
        st->col[4].len = (size_t)(e + 3 - st->col[4].data);
        col_put(&st->col[5], s->prio_e, strlen(s->prio_e));
        col_put(&st->col[6], s->qelem[q].data, s->qelem[q].len);
        put_ts(st, ts, due);
        col_put(&st->col[7], ts, TS_LEN);
        if (d > SHORT_DELAY_US) {
            col_put(&st->col[8], "scheduled", 9);
        } else {
            col_put(&st->col[8], "available", 9);
            st->avail[q] = 1;
        }
        col_put(&st->col[9], s->tags_e.data, s->tags_e.len);
    }
    for (c = 0; c < NCOLS; c++) {
        st->col[c].data[st->col[c].len++] = '}';
        st->col[c].data[st->col[c].len] = '\0';
    }
}

/* "SELECT pg_notify(..), ..; COMMIT" for the queues with jobs available
 * now, or "COMMIT". */
static const char *finish_sql(struct stress_stream *st)
{
    struct stress_ins *s = st->s;
    int q, any = 0;

    trib_buf_reset(&st->sql);
    for (q = 0; q < s->plan->nqueues; q++) {
        if (st->avail[q]) {
            trib_buf_puts(&st->sql, any ? ", " : "SELECT ");
            trib_buf_append(&st->sql, s->notify[q].data, s->notify[q].len);
            any = 1;
            st->avail[q] = 0;
        }
    }
    trib_buf_puts(&st->sql, any ? "; COMMIT" : "COMMIT");
    return st->sql.data;
}

int trib__ins_copy_batch(struct stress_stream *st, int stage, int64_t first,
                         int n)
{
    PGresult *r;
    int ok;

    build_copy(st, stage, first, n, trib_now_us());
    if (!PQsendQuery(st->c, st->s->copy_sql)) {
        trib__ins_fail(st, "COPY", PQerrorMessage(st->c));
        return -1;
    }
    /* BEGIN's result, then COPY IN */
    while ((r = PQgetResult(st->c)) != NULL) {
        ExecStatusType t = PQresultStatus(r);
        if (t != PGRES_COPY_IN && t != PGRES_COMMAND_OK) {
            res_fail(st, "COPY", r);
        }
        PQclear(r);
        if (t == PGRES_COPY_IN) {
            break;
        }
        if (t != PGRES_COMMAND_OK) {
            while ((r = PQgetResult(st->c)) != NULL) {
                PQclear(r);
            }
            return -1;
        }
    }
    if (r == NULL) {
        trib__ins_fail(st, "COPY", PQerrorMessage(st->c));
        return -1;
    }
    if (PQputCopyData(st->c, st->rows.data, (int)st->rows.len) != 1 ||
        PQputCopyEnd(st->c, NULL) != 1) {
        trib__ins_fail(st, "COPY", PQerrorMessage(st->c));
        return -1;
    }
    ok = 1;
    while ((r = PQgetResult(st->c)) != NULL) {
        if (ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
            res_fail(st, "COPY", r);
            ok = 0;
        }
        PQclear(r);
    }
    if (!ok) {
        return -1;
    }
    return run(st, finish_sql(st), "COMMIT");
}

int trib__ins_insert_batch(struct stress_stream *st, int stage, int64_t first,
                           int n)
{
    const char *vals[NCOLS];
    PGresult *r;
    int c, ok;

    build_insert(st, stage, first, n, trib_now_us());
    for (c = 0; c < NCOLS; c++) {
        vals[c] = st->col[c].data;
    }
    if (run(st, "BEGIN", "BEGIN") != 0) {
        return -1;
    }
    r = PQexecPrepared(st->c, "stress_insert", NCOLS, vals, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        res_fail(st, "INSERT", r);
    }
    PQclear(r);
    if (!ok) {
        return -1;
    }
    return run(st, finish_sql(st), "COMMIT");
}

/* Appends an SQL string literal (needs a connection for the escaping). */
static void put_lit(struct trib_buf *b, PGconn *c, const char *s)
{
    char *l = PQescapeLiteral(c, s, strlen(s));

    trib_buf_puts(b, l ? l : "''");
    PQfreemem(l);
}

/* Every text that does not change from row to row. */
int trib__ins_prebuild(struct stress_ins *s, const struct stress_ins_opts *o,
                       char *err, size_t errlen)
{
    const struct stress_plan *p = s->plan;
    struct trib_buf t = TRIB_BUF_INIT, tags = TRIB_BUF_INIT;
    size_t tl = strlen(o->table), most = 0;
    int i;

    /* river_job_state lives next to river_job */
    if (tl >= 9 && strcmp(o->table + tl - 9, "river_job") == 0) {
        trib_buf_printf(&t, "%s_state", o->table);
    } else if (tl >= 10 && strcmp(o->table + tl - 10, "river_job\"") == 0) {
        trib_buf_printf(&t, "%.*s_state\"", (int)tl - 1, o->table);
    } else {
        snprintf(err, errlen, "table '%s': expected [schema.]river_job",
                 o->table);
        return TRIB_EINVAL;
    }
    trib_buf_printf(&tags,
                    "BEGIN; COPY %s (created_at, scheduled_at, state, "
                    "metadata, args, kind, max_attempts, priority, queue, "
                    "tags) FROM STDIN",
                    o->table);
    s->copy_sql = trib_buf_steal(&tags);
    trib_buf_printf(
        &tags,
        "INSERT INTO %s (args, created_at, kind, max_attempts, metadata, "
        "priority, queue, scheduled_at, state, tags) SELECT "
        "unnest($1::jsonb[]), unnest($2::timestamptz[]), unnest($3::text[]), "
        "unnest($4::smallint[]), unnest($5::jsonb[]), "
        "unnest($6::smallint[]), unnest($7::text[]), "
        "unnest($8::timestamptz[]), unnest($9::text[])::%s, "
        "string_to_array(unnest($10::text[]), ',')",
        o->table, t.data);
    s->ins_sql = trib_buf_steal(&tags);

    /* tags: the plan's and the run's; River's INSERT form joins them with
     * commas (tags cannot hold one) */
    trib_buf_reset(&t);
    trib_buf_putc(&tags, '{');
    for (i = 0; i <= p->ntags; i++) {
        const char *tag = i < p->ntags ? p->tags[i] : o->run_tag;
        trib_buf_pgarray_elem(&tags, tag, strlen(tag));
        trib_buf_putc(&tags, i < p->ntags ? ',' : '}');
        trib_buf_puts(&t, tag);
        if (i < p->ntags) {
            trib_buf_putc(&t, ',');
        }
    }
    trib_buf_pgarray_elem(&s->tags_e, t.data, strlen(t.data));
    trib_buf_pgarray_elem(&s->args_e, p->args_json, strlen(p->args_json));
    trib_buf_pgarray_elem(&s->kind_e, p->kind, strlen(p->kind));
    snprintf(s->max_e, sizeof(s->max_e), "%d", p->max_attempts);
    snprintf(s->prio_e, sizeof(s->prio_e), "%d", p->priority);

    for (i = 0; i < p->nqueues; i++) {
        struct trib_buf *b = &s->tail[i];
        trib_buf_puts(b, "}}\t");
        trib_buf_copy_field(b, p->args_json);
        trib_buf_putc(b, '\t');
        trib_buf_copy_field(b, p->kind);
        trib_buf_printf(b, "\t%d\t%d\t", p->max_attempts, p->priority);
        trib_buf_copy_field(b, p->queues[i]);
        trib_buf_putc(b, '\t');
        trib_buf_copy_field(b, tags.data);
        trib_buf_putc(b, '\n');
        most = b->len > most ? b->len : most;
        trib_buf_pgarray_elem(&s->qelem[i], p->queues[i], strlen(p->queues[i]));
        /* the same channel and payload as `tributary insert` */
        trib_buf_reset(&t);
        trib_buf_puts(&t, "{\"queue\": ");
        trib_buf_json_str(&t, p->queues[i], strlen(p->queues[i]));
        trib_buf_putc(&t, '}');
        trib_buf_puts(&s->notify[i], "pg_notify(");
        put_lit(&s->notify[i], s->st[0].c, o->notify_channel);
        trib_buf_puts(&s->notify[i], ", ");
        put_lit(&s->notify[i], s->st[0].c, t.data);
        trib_buf_putc(&s->notify[i], ')');
    }
    s->row_max = most;
    most = 0;
    for (i = 0; i < p->nstages; i++) {
        trib_buf_reset(&t);
        trib_buf_puts(&t, "{\"tributary\": {\"run\": ");
        trib_buf_json_str(&t, o->run_id, strlen(o->run_id));
        /* due_us only when it is not created_at + delay (a spread):
         * unique values cost river_job's GIN index on metadata (~14 %
         * of insertion speed, and every later non-HOT update). */
        trib_buf_printf(&t, ", \"stage\": %d%s", i,
                        p->spread_us > 0 ? ", \"due_us\": " : "");
        trib_buf_copy_field(&s->meta[i], t.data);
        trib_buf_putc(&s->ameta[i], '"');
        arr_esc(&s->ameta[i], t.data);
        most = s->meta[i].len > most ? s->meta[i].len : most;
    }
    s->row_max += most + 2 * TS_LEN + 16 + 24;
    trib_buf_fini(&t);
    trib_buf_fini(&tags);
    return 0;
}
