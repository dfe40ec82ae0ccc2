/*
 * sink.c -- the external data source tributary.sink writes into: a separate
 * PostgreSQL database (sink.database_url) and table (sink.table), reached
 * through a few connections used round-robin. The table is created if
 * missing. A job's rows go in with one INSERT ... SELECT over
 * generate_series, so a large batch is one statement and one commit: the
 * "batch write to an external system" load-test case.
 */
#include "agent_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"

#include <string.h>

struct sink_req {
    struct sink_req *next; /* waiting for the table */
    struct trib_job *job;
    int64_t rows;
    void (*cb)(struct trib_job *, int, const char *);
};

struct trib_sink {
    struct trib_agent *agent;
    struct trib_pg **pg;
    int npg;
    int next;
    struct trib_pg_stmt insert;
    char *insert_sql;
    /* Writes wait until CREATE TABLE IF NOT EXISTS has run: it goes over
     * pg[0] only, and an insert on another connection could get there
     * first ("relation does not exist"). */
    int created;
    struct sink_req *wait_head, *wait_tail;
};

static void send_req(struct trib_sink *s, struct sink_req *r);

static void on_created(void *arg, int status, PGresult *res)
{
    struct trib_sink *s = arg;
    struct sink_req *r;

    if (status == TRIB_ECANCELED) {
        return;
    }
    if (status != 0) {
        /* The writes go ahead and fail with the database's reason. */
        TRIB_ERROR("AGT-SINK", "cannot create the sink table: %s",
                   trib_pg_errmsg(res));
    }
    s->created = 1;
    while ((r = s->wait_head) != NULL) {
        s->wait_head = r->next;
        send_req(s, r);
    }
    s->wait_tail = NULL;
}

int trib__sink_create(struct trib_agent *a, struct trib_sink **out)
{
    struct trib_sink *s;
    struct trib_buf sql = TRIB_BUF_INIT, tbl = TRIB_BUF_INIT;
    struct trib_pg_opts o;
    const char *dot;
    int i, rv;

    *out = NULL;
    if (a->conf->sink_url == NULL) {
        return 0;
    }
    s = TRIB_NEW(struct trib_sink);
    s->agent = a;
    /* "schema.table" or "table" */
    dot = strchr(a->conf->sink_table, '.');
    if (dot != NULL) {
        char *schema = trib_strndup(a->conf->sink_table,
                                    (size_t)(dot - a->conf->sink_table));
        trib_pg_quote_ident(&tbl, schema);
        trib_buf_putc(&tbl, '.');
        trib_pg_quote_ident(&tbl, dot + 1);
        trib_free(schema);
    } else {
        trib_pg_quote_ident(&tbl, a->conf->sink_table);
    }
    trib_buf_printf(&sql,
                    "INSERT INTO %s (job_id, row_no, payload)"
                    " SELECT $1::bigint, g, md5($1::text || ':' || g::text)"
                    " FROM generate_series(1, $2::integer) AS g",
                    tbl.data);
    s->insert_sql = trib_buf_steal(&sql);
    s->insert.name = "trib_sink_insert";
    s->insert.sql = s->insert_sql;
    s->insert.nparams = 2;
    s->npg = a->conf->sink_connections;
    s->pg = trib_calloc((size_t)s->npg, sizeof(*s->pg));
    memset(&o, 0, sizeof(o));
    o.conninfo = a->conf->sink_url;
    o.name = "sink";
    o.app_name = "tributary-agent-sink";
    for (i = 0; i < s->npg; i++) {
        rv = trib_pg_create(a->loop, &o, &s->pg[i]);
        if (rv != 0) {
            trib_buf_fini(&tbl);
            trib__sink_close(s);
            return rv;
        }
        trib_pg_start(s->pg[i]);
    }
    trib_buf_printf(&sql,
                    "CREATE TABLE IF NOT EXISTS %s ("
                    " id bigserial PRIMARY KEY, job_id bigint NOT NULL,"
                    " row_no integer NOT NULL, payload text NOT NULL,"
                    " created_at timestamptz NOT NULL DEFAULT now())",
                    tbl.data);
    trib_pg_exec(s->pg[0], sql.data, on_created, s);
    trib_buf_fini(&sql);
    trib_buf_fini(&tbl);
    *out = s;
    return 0;
}

static void on_insert(void *arg, int status, PGresult *res)
{
    struct sink_req *r = arg;

    if (status != TRIB_ECANCELED) {
        r->cb(r->job, status, status == 0 ? NULL : trib_pg_errmsg(res));
    }
    trib_free(r);
}

static void send_req(struct trib_sink *s, struct sink_req *r)
{
    char id[24], n[24];
    const char *params[2] = {id, n};
    int rv;

    snprintf(id, sizeof(id), "%lld", (long long)r->job->id);
    snprintf(n, sizeof(n), "%lld", (long long)r->rows);
    rv = trib_pg_query(s->pg[s->next], &s->insert, 2, params, on_insert, r);
    s->next = (s->next + 1) % s->npg;
    if (rv != 0) {
        r->cb(r->job, rv, "sink connection closing");
        trib_free(r);
    }
}

int trib__sink_write(struct trib_sink *s, struct trib_job *job, int64_t rows,
                     void (*cb)(struct trib_job *, int, const char *))
{
    struct sink_req *r;

    if (s == NULL) {
        return TRIB_ENOTSUP;
    }
    r = TRIB_NEW(struct sink_req);
    r->job = job;
    r->rows = rows;
    r->cb = cb;
    if (s->created) {
        send_req(s, r);
    } else if (s->wait_tail != NULL) {
        s->wait_tail->next = r;
        s->wait_tail = r;
    } else {
        s->wait_head = s->wait_tail = r;
    }
    return 0;
}

void trib__sink_close(struct trib_sink *s)
{
    int i;

    if (s == NULL) {
        return;
    }
    for (i = 0; i < s->npg; i++) {
        if (s->pg[i] != NULL) {
            trib_pg_close(s->pg[i], NULL, NULL);
        }
    }
    /* Writes still waiting for the table: their jobs are being freed. */
    while (s->wait_head != NULL) {
        struct sink_req *r = s->wait_head;
        s->wait_head = r->next;
        trib_free(r);
    }
    trib_free(s->pg);
    trib_free(s->insert_sql);
    trib_free(s);
}
