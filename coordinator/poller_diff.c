/*
 * poller_diff.c -- the database's numbers beside the events', with the
 * differences explained (docs/POLLING.md, "Differences").
 *
 * Per (queue, kind, final state), with D the database's cumulative count
 * split by who finalized the rows, E the events applied now and Es the
 * events applied when the poll behind D was sent:
 *
 *   D - E =   unknown      rows finalized by clients the coordinator never
 *                          saw (e.g. River's Go clients): they send no
 *                          events
 *           + not_worked   rows finalized without ever being worked
 *                          (attempted_by empty: cancelled before running)
 *           + rescued      rows finalized by a rescuer: no event exists
 *           + (known - Es) rows by Tributary clients whose events had not
 *                          been applied when the database was read:
 *                            in transit, up to the rows finalized within
 *                            'transit' of the poll; the rest unexplained
 *                            (more in the database); if negative,
 *                            unexplained (more in the events)
 *           - (E - Es)     events applied after the database was read
 *                          (events_without_rows)
 *
 * Every term is computed, so the reasons always add up to the rows'
 * differences. Without an event note for the poll (no view yet), Es is
 * taken as min(E, known): events beyond the rows count as newer than the
 * poll.
 */
#include "poller_int.h"
#include "trib_buf.h"
#include "trib_mem.h"
#include "trib_wire.h"

#include <stdlib.h>
#include <string.h>

#define TOP_CLIENTS 10 /* unknown clients listed by name */

enum { V_DB, V_UNKNOWN, V_NOTWORKED, V_RESCUED, V_KNOWN, V_RECENT, V_EVENTS };

json_t *trib__json_ms(int64_t us)
{
    return json_real((double)us / 1000.0);
}

struct diff {
    const struct trib__diff_in *in;
    const struct trib__ctab *snap;
    struct trib__ctab *acc;     /* (queue, kind, ws) -> V_* values */
    struct trib__ctab *clients; /* unknown client -> rows          */
    int64_t states[TRIB_WS_COUNT];
    int64_t transit, stale, unknown, not_worked, rescued, more_db, more_ev;
    struct row *rows;
    size_t nrows, caprows;
};

struct row {
    const char *queue, *kind;
    int ws;
    int64_t db, ev;
};

static int match(const struct trib__diff_in *in, const char *queue,
                 const char *kind)
{
    return (in->queue == NULL || strcmp(in->queue, queue) == 0) &&
           (in->kind == NULL || strcmp(in->kind, kind) == 0);
}

static void on_group(void *arg, const struct trib__key *k, int64_t n,
                     int64_t recent)
{
    struct diff *d = arg;
    struct trib__key a = {k->queue, k->kind, NULL, k->ws, 0};
    struct trib__key c = {NULL, NULL, k->client, 0, 0};

    if (!match(d->in, k->queue, k->kind)) {
        return;
    }
    trib__ctab_addv(d->acc, &a, V_DB, n);
    if (k->rescued) {
        trib__ctab_addv(d->acc, &a, V_RESCUED, n);
    } else if (k->client == NULL) {
        trib__ctab_addv(d->acc, &a, V_NOTWORKED, n);
    } else if (d->in->known == NULL ||
               !d->in->known(d->in->known_arg, k->client)) {
        trib__ctab_addv(d->acc, &a, V_UNKNOWN, n);
        trib__ctab_add(d->clients, &c, n);
    } else {
        trib__ctab_addv(d->acc, &a, V_KNOWN, n);
        trib__ctab_addv(d->acc, &a, V_RECENT, recent);
    }
}

static void on_event(void *arg, const struct trib__key *k, int64_t n)
{
    struct diff *d = arg;
    struct trib__key a = {k->queue, k->kind, NULL, k->ws, 0};

    if (trib__ws_final(k->ws) && match(d->in, k->queue, k->kind)) {
        trib__ctab_addv(d->acc, &a, V_EVENTS, n);
    }
}

static void on_state(void *arg, const struct trib__key *k, int64_t n)
{
    struct diff *d = arg;

    if (match(d->in, k->queue, k->kind) && k->ws > 0 && k->ws < TRIB_WS_COUNT) {
        d->states[k->ws] += n;
    }
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Splits one (queue, kind, state)'s difference into the reasons. */
static void on_acc(void *arg, const struct trib__key *k, const int64_t *v)
{
    struct diff *d = arg;
    int64_t es, r, transit;

    if (v[V_DB] == 0 && v[V_EVENTS] == 0) {
        return;
    }
    if (d->snap != NULL) {
        es = min64(trib__ctab_get(d->snap, k), v[V_EVENTS]);
    } else {
        es = min64(v[V_EVENTS], v[V_KNOWN]);
    }
    d->states[k->ws] += v[V_DB];
    d->unknown += v[V_UNKNOWN];
    d->not_worked += v[V_NOTWORKED];
    d->rescued += v[V_RESCUED];
    d->stale += v[V_EVENTS] - es;
    r = v[V_KNOWN] - es;
    if (r >= 0) {
        transit = min64(r, v[V_RECENT]);
        d->transit += transit;
        d->more_db += r - transit;
    } else {
        d->more_ev += -r;
    }
    if (d->nrows == d->caprows) {
        d->caprows = d->caprows ? d->caprows * 2 : 16;
        d->rows = trib_realloc(d->rows, d->caprows * sizeof(*d->rows));
    }
    d->rows[d->nrows].queue = k->queue;
    d->rows[d->nrows].kind = k->kind;
    d->rows[d->nrows].ws = k->ws;
    d->rows[d->nrows].db = v[V_DB];
    d->rows[d->nrows].ev = v[V_EVENTS];
    d->nrows++;
}

static int row_cmp(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = strcmp(x->queue, y->queue);

    if (c == 0) {
        c = strcmp(x->kind, y->kind);
    }
    if (c == 0) {
        c = strcmp(trib__ws_name(x->ws), trib__ws_name(y->ws));
    }
    return c;
}

/* ------------------------------------------------------ unknown clients */

struct client_n {
    const char *client;
    int64_t n;
};

struct client_list {
    struct client_n *v;
    size_t n;
};

static void on_client(void *arg, const struct trib__key *k, int64_t n)
{
    struct client_list *cl = arg;

    cl->v[cl->n].client = k->client;
    cl->v[cl->n].n = n;
    cl->n++;
}

static int client_cmp(const void *a, const void *b)
{
    const struct client_n *x = a, *y = b;

    if (x->n != y->n) {
        return x->n > y->n ? -1 : 1;
    }
    return strcmp(x->client, y->client);
}

static void add_reason(json_t *arr, const char *reason, int64_t n,
                       const char *detail)
{
    json_t *o;

    if (n <= 0) {
        return;
    }
    o = json_object();
    json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "count", json_integer(n));
    json_object_set_new(o, "detail", json_string(detail));
    json_array_append_new(arr, o);
}

static void add_unknown(struct diff *d, json_t *arr)
{
    struct client_list cl;
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *o, *list;
    size_t i, shown;

    if (d->unknown <= 0) {
        return;
    }
    cl.v = trib_calloc(trib__ctab_size(d->clients) + 1, sizeof(*cl.v));
    cl.n = 0;
    trib__ctab_each(d->clients, on_client, &cl);
    qsort(cl.v, cl.n, sizeof(*cl.v), client_cmp);
    shown = cl.n < TOP_CLIENTS ? cl.n : TOP_CLIENTS;

    trib_buf_puts(&b, "finalized by clients that are not Tributary agents: ");
    list = json_array();
    for (i = 0; i < shown; i++) {
        json_t *c = json_object();

        trib_buf_printf(&b, "%s%s (%lld)", i ? ", " : "", cl.v[i].client,
                        (long long)cl.v[i].n);
        json_object_set_new(c, "client", json_string(cl.v[i].client));
        json_object_set_new(c, "count", json_integer(cl.v[i].n));
        json_array_append_new(list, c);
    }
    if (cl.n > shown) {
        trib_buf_printf(&b, " and %zu more", cl.n - shown);
    }
    add_reason(arr, "unknown_clients", d->unknown, b.data);
    o = json_array_get(arr, json_array_size(arr) - 1);
    json_object_set_new(o, "clients", list);
    json_object_set_new(o, "more_clients",
                        json_integer((json_int_t)(cl.n - shown)));
    trib_buf_fini(&b);
    trib_free(cl.v);
}

static void add_unexplained(json_t *arr, int64_t n, const char *more_in,
                            const char *detail)
{
    json_t *o;

    if (n <= 0) {
        return;
    }
    add_reason(arr, "unexplained", n, detail);
    o = json_array_get(arr, json_array_size(arr) - 1);
    json_object_set_new(o, "more_in", json_string(more_in));
}

void trib__diff_json(const struct trib__tally *t,
                     const struct trib__diff_in *in, json_t *obj)
{
    struct diff d;
    json_t *states, *rows, *diffs;
    struct trib_buf b = TRIB_BUF_INIT;
    size_t i;
    int ws;

    memset(&d, 0, sizeof(d));
    d.in = in;
    d.snap = trib__tally_snap(t);
    d.acc = trib__ctab_create();
    d.clients = trib__ctab_create();
    trib__tally_each_final(t, on_group, &d);
    if (in->events != NULL) {
        trib__ctab_each(in->events, on_event, &d);
    }
    trib__ctab_eachv(d.acc, on_acc, &d);
    trib__tally_each_state(t, on_state, &d);

    states = json_object();
    for (ws = 1; ws < TRIB_WS_COUNT; ws++) {
        json_object_set_new(states, trib__ws_name(ws),
                            trib__ws_final(ws) || trib__tally_has_states(t)
                                ? json_integer(d.states[ws])
                                : json_null());
    }
    json_object_set_new(obj, "states", states);

    if (d.nrows > 0) {
        qsort(d.rows, d.nrows, sizeof(*d.rows), row_cmp);
    }
    rows = json_array();
    for (i = 0; i < d.nrows; i++) {
        json_t *r = json_object();

        json_object_set_new(r, "queue", json_string(d.rows[i].queue));
        json_object_set_new(r, "kind", json_string(d.rows[i].kind));
        json_object_set_new(r, "state",
                            json_string(trib__ws_name(d.rows[i].ws)));
        json_object_set_new(r, "database", json_integer(d.rows[i].db));
        json_object_set_new(r, "events", json_integer(d.rows[i].ev));
        json_object_set_new(r, "difference",
                            json_integer(d.rows[i].db - d.rows[i].ev));
        json_array_append_new(rows, r);
    }
    json_object_set_new(obj, "rows", rows);

    diffs = json_array();
    add_reason(diffs, "events_in_transit", d.transit,
               "finalized in the database by Tributary clients, event not "
               "yet applied");
    trib_buf_printf(&b,
                    "events applied after the database was read (the "
                    "database numbers are %.3f s old)",
                    (double)in->age_us / 1e6);
    add_reason(diffs, "events_without_rows", d.stale, b.data);
    add_unknown(&d, diffs);
    add_reason(diffs, "not_worked", d.not_worked,
               "finalized without ever being worked (e.g. cancelled before "
               "running): no event exists");
    add_reason(diffs, "rescued", d.rescued,
               "finalized by the rescuer (stuck running jobs): no event "
               "exists");
    add_unexplained(diffs, d.more_db, "database",
                    "rows finalized by Tributary clients, not recently, "
                    "without an event: changed by hand (e.g. cancelled while "
                    "waiting for a retry), or events lost");
    add_unexplained(diffs, d.more_ev, "events",
                    "events whose rows the database view never counted: rows "
                    "deleted before the first poll (e.g. by River's "
                    "cleaner), committed later than the margin after their "
                    "finalized_at, or changed by hand");
    json_object_set_new(obj, "differences", diffs);

    trib_buf_fini(&b);
    trib_free(d.rows);
    trib__ctab_destroy(d.acc);
    trib__ctab_destroy(d.clients);
}
