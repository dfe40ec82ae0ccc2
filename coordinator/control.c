/*
 * control.c -- QUERY and EVENTS for the CLI, with parked long polls.
 *
 * Reading order: replies, argument helpers, the queries (status, nodes,
 * failures, wait), EVENTS, parking (the re-check timer), dispatch,
 * start/close.
 */
#include "control.h"
#include "nngsrv.h"
#include "poller.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <string.h>

#define PARK_MAX_MS 30000
#define RECHECK_MS  5
#define EVENTS_MAX  2000

enum { P_WAIT, P_EVENTS };

struct parked {
    struct trib_nngreq *req;
    int what;
    uint64_t deadline_ms; /* loop clock */
    /* wait */
    char *queue, *kind, *node, *tag;
    int64_t count, max_failures;
    /* events */
    struct trib_wire_events_req ev;
    struct parked *next;
};

struct trib_control {
    uv_loop_t *loop;
    struct trib_nngsrv *srv;
    struct trib_view *view;
    struct trib_poller *poller;
    void (*describe)(void *arg, json_t *coordinator);
    void *arg;
    struct parked *parked;
    int kicked;
    uv_timer_t recheck;
    msgpack_zone zone;
    msgpack_sbuffer sb, items;
    struct trib_complain bad;
};

/* ---- Replies
 * -------------------------------------------------------------------- */

static void reply_json(struct trib_control *c, struct trib_nngreq *req,
                       int code, json_t *doc)
{
    struct trib_wire_query_reply r;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));

    if (text != NULL && strlen(text) > TRIB_WIRE_FRAME_MAX - 1024) {
        free(text);
        text = strdup("{\"error\":\"document larger than a frame: narrow it "
                      "with --queue, --kind or --node\"}");
        code = TRIB_ERANGE;
    }
    r.code = code;
    r.json = trib_str_c(text != NULL ? text : "{}");
    msgpack_sbuffer_clear(&c->sb);
    trib_wire_enc_query_reply(&c->sb, &r);
    trib_nngsrv_reply(req, c->sb.data, c->sb.size);
    free(text);
    json_decref(doc);
}

static void reply_fail(struct trib_control *c, struct trib_nngreq *req,
                       int code, const char *text)
{
    reply_json(c, req, code, json_pack("{s:s}", "error", text));
}

/* ---- Arguments
 * ------------------------------------------------------------------ */

/* A string argument as a heap C string, or NULL. */
static char *arg_str(const struct trib_wire_query *q, const char *key)
{
    const struct trib_wire_arg *a = trib_wire_query_arg(q, key);

    if (a == NULL || !a->is_str || a->str.n == 0) {
        return NULL;
    }
    return trib_strndup(a->str.p, a->str.n);
}

/* An integer argument; 0 when present and an integer, else 'def'. A string
 * where an integer belongs is TRIB_EINVAL. */
static int arg_int(const struct trib_wire_query *q, const char *key,
                   int64_t def, int64_t *out)
{
    const struct trib_wire_arg *a = trib_wire_query_arg(q, key);

    *out = def;
    if (a == NULL) {
        return 0;
    }
    if (a->is_str) {
        return TRIB_EINVAL;
    }
    *out = a->num;
    return 0;
}

static json_t *filter_json(const char *queue, const char *kind,
                           const char *node, const char *tag)
{
    return json_pack("{s:s?,s:s?,s:s?,s:s?}", "queue", queue, "kind", kind,
                     "node", node, "tag", tag);
}

/* ---- Queries
 * --------------------------------------------------------------------- */

static void q_status(struct trib_control *c, struct trib_nngreq *req,
                     const struct trib_wire_query *q)
{
    struct trib_view_filter f;
    char *queue = arg_str(q, "queue"), *kind = arg_str(q, "kind"),
         *node = arg_str(q, "node");
    int64_t now = trib_now_us(), series;
    json_t *doc, *coord;

    memset(&f, 0, sizeof(f));
    f.queue = queue;
    f.kind = kind;
    f.node = node;
    if (arg_int(q, "series_s", 60, &series) != 0 || series < 0 ||
        series > 3600) {
        reply_fail(c, req, TRIB_EINVAL, "series_s must be 0..3600");
        goto out;
    }
    f.series_s = (int)series;
    doc = trib_view_status_json(c->view, &f, now);
    coord = json_object_get(doc, "coordinator");
    if (coord != NULL && c->describe != NULL) {
        c->describe(c->arg, coord);
    }
    if (c->poller != NULL) {
        trib_poller_render(c->poller, c->view, now, doc);
    }
    reply_json(c, req, 0, doc);
out:
    trib_free(queue);
    trib_free(kind);
    trib_free(node);
}

static void q_failures(struct trib_control *c, struct trib_nngreq *req,
                       const struct trib_wire_query *q)
{
    struct trib_view_filter f;
    char *queue = arg_str(q, "queue"), *kind = arg_str(q, "kind"),
         *node = arg_str(q, "node");
    int64_t limit;
    json_t *doc;

    memset(&f, 0, sizeof(f));
    f.queue = queue;
    f.kind = kind;
    f.node = node;
    if (arg_int(q, "limit", 50, &limit) != 0 || limit < 1) {
        reply_fail(c, req, TRIB_EINVAL, "limit must be a positive integer");
        goto out;
    }
    f.limit = (int)(limit > 100000 ? 100000 : limit);
    doc = trib_view_failures_json(c->view, &f);
    reply_json(c, req, 0, doc);
out:
    trib_free(queue);
    trib_free(kind);
    trib_free(node);
}

/* Evaluates a wait; answers and returns 1 when done (or 'force'). */
static int wait_check(struct trib_control *c, struct parked *p, int force)
{
    struct trib_view_filter f;
    int64_t finished = 0, failed = 0;
    int done, exceeded;

    memset(&f, 0, sizeof(f));
    f.queue = p->queue;
    f.kind = p->kind;
    f.node = p->node;
    f.tag = p->tag;
    trib_view_finished(c->view, &f, &finished, &failed);
    done = finished >= p->count;
    exceeded = p->max_failures >= 0 && failed > p->max_failures;
    if (!done && !exceeded && !force) {
        return 0;
    }
    reply_json(c, p->req, 0,
               json_pack("{s:s,s:b,s:I,s:I,s:I,s:b,s:o}", "schema",
                         "tributary.wait/1", "done", done, "count",
                         (json_int_t)p->count, "finished", (json_int_t)finished,
                         "failed", (json_int_t)failed, "failures_exceeded",
                         exceeded, "filter",
                         filter_json(p->queue, p->kind, p->node, p->tag)));
    return 1;
}

static void parked_free(struct parked *p)
{
    trib_free(p->queue);
    trib_free(p->kind);
    trib_free(p->node);
    trib_free(p->tag);
    trib_free(p);
}

static void on_recheck(uv_timer_t *t);

static void park(struct trib_control *c, struct parked *p, int64_t wait_ms)
{
    if (wait_ms > PARK_MAX_MS) {
        wait_ms = PARK_MAX_MS;
    }
    p->deadline_ms = uv_now(c->loop) + (uint64_t)wait_ms;
    p->next = c->parked;
    c->parked = p;
    if (!uv_is_active((uv_handle_t *)&c->recheck)) {
        uv_timer_start(&c->recheck, on_recheck, RECHECK_MS, RECHECK_MS);
    }
}

static void q_wait(struct trib_control *c, struct trib_nngreq *req,
                   const struct trib_wire_query *q)
{
    struct parked *p = TRIB_NEW(struct parked);
    int64_t wait_ms;

    p->req = req;
    p->what = P_WAIT;
    p->queue = arg_str(q, "queue");
    p->kind = arg_str(q, "kind");
    p->node = arg_str(q, "node");
    p->tag = arg_str(q, "tag");
    if (trib_wire_query_arg(q, "count") == NULL ||
        arg_int(q, "count", 0, &p->count) != 0 || p->count < 0 ||
        arg_int(q, "max_failures", -1, &p->max_failures) != 0 ||
        arg_int(q, "wait_ms", 0, &wait_ms) != 0 || wait_ms < 0) {
        reply_fail(c, req, TRIB_EINVAL,
                   "wait needs count (integer >= 0); max_failures and "
                   "wait_ms are integers");
        parked_free(p);
        return;
    }
    if (wait_check(c, p, wait_ms == 0)) {
        parked_free(p);
        return;
    }
    park(c, p, wait_ms);
}

/* ---- EVENTS
 * ---------------------------------------------------------------------- */

/* Answers an EVENTS request when it has events (or 'force'); 1 if answered. */
static int events_check(struct trib_control *c, struct trib_nngreq *req,
                        const struct trib_wire_events_req *ev, int force)
{
    uint64_t next = 0, missed = 0;
    uint32_t n,
        max = ev->max == 0 || ev->max > EVENTS_MAX ? EVENTS_MAX : ev->max;
    /* A cursor beyond ours (a coordinator that restarted without its
     * state) is answered at once with next = our last cursor: parked, the
     * events applied meanwhile (cursors <= 'after') would be skipped
     * without a word when it is finally answered. */
    int future =
        ev->after != UINT64_MAX && ev->after >= trib_view_cursor(c->view);

    msgpack_sbuffer_clear(&c->items);
    n = trib_view_ring_read(c->view, ev->after, max, ev->kinds, &c->items,
                            &next, &missed);
    if (n == 0 && missed == 0 && !force && ev->after != UINT64_MAX && !future) {
        return 0;
    }
    msgpack_sbuffer_clear(&c->sb);
    trib_wire_enc_events_reply_head(&c->sb, next, missed, n);
    msgpack_sbuffer_write(&c->sb, c->items.data, c->items.size);
    trib_nngsrv_reply(req, c->sb.data, c->sb.size);
    return 1;
}

static void on_events(struct trib_control *c, struct trib_nngreq *req,
                      const struct trib_wire_events_req *ev)
{
    struct parked *p;

    if (events_check(c, req, ev, ev->wait_ms <= 0)) {
        return;
    }
    p = TRIB_NEW(struct parked);
    p->req = req;
    p->what = P_EVENTS;
    p->ev = *ev;
    park(c, p, ev->wait_ms);
}

/* ---- Parking
 * ------------------------------------------------------------------------ */

static void on_recheck(uv_timer_t *t)
{
    struct trib_control *c = t->data;
    struct parked **pp = &c->parked, *p;
    uint64_t now = uv_now(c->loop);
    int kicked = c->kicked;

    c->kicked = 0;
    while ((p = *pp) != NULL) {
        int force = now >= p->deadline_ms, answered = 0;

        if (force || kicked) {
            answered = p->what == P_WAIT
                           ? wait_check(c, p, force)
                           : events_check(c, p->req, &p->ev, force);
        }
        if (answered) {
            *pp = p->next;
            parked_free(p);
        } else {
            pp = &p->next;
        }
    }
    if (c->parked == NULL) {
        uv_timer_stop(&c->recheck);
    }
}

void trib_control_kick(struct trib_control *c)
{
    if (c != NULL) {
        c->kicked = 1;
    }
}

/* ---- Dispatch
 * ------------------------------------------------------------------------ */

static int name_is(struct trib_str s, const char *name)
{
    return s.n == strlen(name) && memcmp(s.p, name, s.n) == 0;
}

static void on_request(void *arg, struct trib_nngreq *req, uint32_t pipe,
                       const void *data, size_t len)
{
    struct trib_control *c = arg;
    struct trib_wire_msg m;
    const struct trib_wire_query *q;
    int rv;

    (void)pipe;
    msgpack_zone_clear(&c->zone);
    rv = trib_wire_decode(data, len, &c->zone, &m);
    if (rv != 0 || (m.type != TRIB_MSG_QUERY && m.type != TRIB_MSG_EVENTS)) {
        struct trib_wire_error e;

        trib_complain(&c->bad, TRIB_LOG_WARN, "CRD-CTLFRAME",
                      "control: rejected a %zu-byte frame: %s", len,
                      rv != 0 ? trib_strerror(rv) : "not a CLI request");
        memset(&e, 0, sizeof(e));
        e.code = rv != 0 ? rv : TRIB_ENOTSUP;
        e.message = trib_str_c(rv != 0 ? "malformed frame"
                                       : "not served on the control address");
        msgpack_sbuffer_clear(&c->sb);
        trib_wire_enc_error(&c->sb, &e);
        trib_nngsrv_reply(req, c->sb.data, c->sb.size);
        return;
    }
    if (m.type == TRIB_MSG_EVENTS) {
        on_events(c, req, &m.u.events_req);
        return;
    }
    q = &m.u.query;
    if (name_is(q->name, "status")) {
        q_status(c, req, q);
    } else if (name_is(q->name, "nodes")) {
        reply_json(c, req, 0, trib_view_nodes_json(c->view, trib_now_us()));
    } else if (name_is(q->name, "failures")) {
        q_failures(c, req, q);
    } else if (name_is(q->name, "wait")) {
        q_wait(c, req, q);
    } else {
        reply_fail(c, req, TRIB_ENOTSUP,
                   "unknown query (status, nodes, failures, wait)");
    }
}

/* ---- Start / close
 * --------------------------------------------------------------------- */

int trib_control_start(uv_loop_t *loop, const struct trib_control_opts *o,
                       struct trib_view *v, struct trib_poller *poller,
                       struct trib_control **out)
{
    struct trib_control *c = TRIB_NEW(struct trib_control);
    struct trib_nngsrv_opts so;
    int rv;

    c->loop = loop;
    c->view = v;
    c->poller = poller;
    c->describe = o->describe;
    c->arg = o->arg;
    msgpack_zone_init(&c->zone, 1 << 14);
    msgpack_sbuffer_init(&c->sb);
    msgpack_sbuffer_init(&c->items);
    uv_timer_init(loop, &c->recheck);
    c->recheck.data = c;

    memset(&so, 0, sizeof(so));
    so.url = o->url;
    so.name = "control";
    so.contexts = o->contexts > 0 ? o->contexts : 64;
    so.max_frame = 1 << 16; /* CLI requests are small */
    so.on_request = on_request;
    so.tls = o->tls;
    so.arg = c;
    if ((rv = trib_nngsrv_start(loop, &so, &c->srv)) != 0) {
        c->srv = NULL;
        trib_control_close(c);
        return rv;
    }
    *out = c;
    return 0;
}

int trib_control_port(const struct trib_control *c)
{
    return trib_nngsrv_port(c->srv);
}

static void free_control(uv_handle_t *h)
{
    trib_free(h->data);
}

void trib_control_close(struct trib_control *c)
{
    struct parked *p;

    if (c == NULL) {
        return;
    }
    /* Answer the parked requests with what holds now. */
    while ((p = c->parked) != NULL) {
        c->parked = p->next;
        if (c->srv != NULL) {
            if (p->what == P_WAIT) {
                wait_check(c, p, 1);
            } else {
                events_check(c, p->req, &p->ev, 1);
            }
        }
        parked_free(p);
    }
    trib_nngsrv_close(c->srv);
    msgpack_zone_destroy(&c->zone);
    msgpack_sbuffer_destroy(&c->sb);
    msgpack_sbuffer_destroy(&c->items);
    uv_close((uv_handle_t *)&c->recheck, free_control);
}
