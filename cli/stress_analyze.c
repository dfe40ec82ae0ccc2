/*
 * stress_analyze.c -- the report document of a stress run (docs/REPORT.md)
 * from its records: per-job facts and breakdown groups, counts, rates,
 * stages, breakdowns, monitors, resources and the mixed-strategy
 * comparison; latency, series and failures come from the other
 * stress_analyze_*.c files (stress_analyze_int.h).
 */
#include <stdlib.h>
#include <string.h>

#include "stress_analyze_int.h"
#include "trib_mem.h"
#include "trib_time.h"

#define SCHEMA "tributary.stress.report/1"

static const char *const DIM_NAMES[D_COUNT] = {"node", "client", "mode",
                                               "queue", "stage"};

json_t *stress__an_time(int64_t us)
{
    char b[40];

    if (us == 0) {
        return json_null();
    }
    trib_time_rfc3339(us, b, sizeof(b), 6);
    return json_string(b);
}

static json_t *ratio(double num, double den)
{
    return den > 0 ? json_real(num / den) : json_null();
}

/* Jobs per second over [from, to] (us), null when empty. */
static json_t *per_s(int64_t n, int64_t from, int64_t to)
{
    if (n <= 0 || from == 0 || to <= from) {
        return json_null();
    }
    return json_real((double)n * 1e6 / (double)(to - from));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* ------------------------------------------------------------- groups */

static uint32_t grp_new(struct an *a, int d, const char *key)
{
    struct an_dim *dm = &a->dim[d];
    struct an_grp *g;

    if (dm->n == dm->cap) {
        dm->cap = dm->cap ? dm->cap * 2 : 16;
        dm->g = trib_realloc(dm->g, dm->cap * sizeof(*dm->g));
    }
    g = &dm->g[dm->n];
    memset(g, 0, sizeof(*g));
    g->key = key;
    g->index = -1;
    g->lat = json_object();
    return dm->n++;
}

/* The group of string id s in dimension d. */
static uint32_t grp_of(struct an *a, int d, uint32_t s)
{
    uint32_t *m = &a->dim[d].map[s];

    if (*m == AN_NONE) {
        *m = grp_new(a, d, rec_str(a->r, s));
        a->dim[d].g[*m].sid = s;
    }
    return *m;
}

static void grp_mode(const struct an *a, struct an_grp *g, uint32_t mode)
{
    if (mode == a->r->s_none || mode == a->r->s_unknown || mode == 0) {
        return;
    }
    if (g->mode == 0) {
        g->mode = mode;
    } else if (g->mode != mode) {
        g->mixed = 1;
    }
}

void stress__an_who(const struct an *a, uint32_t w, uint32_t *node,
                    uint32_t *client, uint32_t *mode)
{
    const struct stress_rec *r = a->r;
    uint32_t c = r->who.items[w][1], nd = r->who.items[w][0];

    c = c ? c : r->s_unknown;
    nd = nd ? nd : r->str.cnode[c] ? r->str.cnode[c] : r->s_unknown;
    *node = nd;
    *client = c;
    *mode = r->str.cmode[c] ? r->str.cmode[c] : r->s_unknown;
}

/* Who finished job j: its latest event's client, unless the row names
 * another last client; "(none)" when never attempted. */
static void job_who(const struct an *a, const struct jrec *j, int attempt,
                    uint32_t ids[3])
{
    const struct stress_rec *r = a->r;
    const struct jev *last = NULL;
    uint32_t k, c;

    for (k = j->ev_head; k != 0; k = ev_at(r, k - 1)->next) {
        const struct jev *e = ev_at(r, k - 1);
        if (last == NULL || e->at > last->at ||
            (e->at == last->at && e->attempt > last->attempt)) {
            last = e;
        }
    }
    c = j->row_client;
    if ((j->flags & JREC_ROW) && c != 0 &&
        !(last && r->who.items[last->who][1] == c)) {
        ids[0] = r->str.cnode[c] ? r->str.cnode[c] : r->s_unknown;
        ids[1] = c;
        ids[2] = r->str.cmode[c] ? r->str.cmode[c] : r->s_unknown;
    } else if (last != NULL) {
        stress__an_who(a, last->who, &ids[0], &ids[1], &ids[2]);
    } else {
        ids[0] = ids[1] = ids[2] = attempt > 0 ? r->s_unknown : r->s_none;
    }
}

static int job_attempts(const struct stress_rec *r, const struct jrec *j)
{
    int n = 0;
    uint32_t k;

    if (j->flags & JREC_ROW) {
        return j->attempt;
    }
    for (k = j->ev_head; k != 0; k = ev_at(r, k - 1)->next) {
        if (ev_at(r, k - 1)->attempt > n) {
            n = ev_at(r, k - 1)->attempt;
        }
    }
    return n;
}

static void grp_count(struct an_grp *g, const struct jrec *j, int st)
{
    g->jobs++;
    if (j->due != 0 && (g->first_due == 0 || j->due < g->first_due)) {
        g->first_due = j->due;
    }
    if (!rec_state_final(st)) {
        return;
    }
    g->finished++;
    g->completed += st == TRIB_WS_COMPLETED;
    g->discarded += st == TRIB_WS_DISCARDED;
    g->cancelled += st == TRIB_WS_CANCELLED;
    if (j->final_at > g->last_final) {
        g->last_final = j->final_at;
    }
}

/* Per-job facts, groups and the series' length. */
static void prepare(struct an *a)
{
    const struct stress_rec *r = a->r;
    const struct stress_run_info *in = a->info;
    uint32_t i, w, ids[3], stage_none = AN_NONE;
    int64_t tmax = in->ended_us;
    int d;

    a->n = r->nrecs;
    a->nstages = a->plan ? a->plan->nstages : 0;
    a->state = trib_malloc((size_t)a->n + 1);
    a->attempt = trib_malloc(((size_t)a->n + 1) * sizeof(*a->attempt));
    for (d = 0; d < D_COUNT; d++) {
        a->dim[d].job = trib_malloc(((size_t)a->n + 1) * sizeof(uint32_t));
        a->dim[d].map = trib_malloc(r->str.n * sizeof(uint32_t));
        memset(a->dim[d].map, 0xff, r->str.n * sizeof(uint32_t));
    }
    for (d = 0; d < a->nstages; d++) {
        grp_new(a, D_STAGE, a->plan->stages[d].name);
        a->dim[D_STAGE].g[d].index = d;
    }
    /* attempt-level attribution: each (node, client) pair's groups */
    for (d = D_NODE; d <= D_MODE; d++) {
        a->dim[d].who = trib_malloc(((size_t)r->who.n + 1) * sizeof(uint32_t));
    }
    for (w = 0; w < r->who.n; w++) {
        stress__an_who(a, w, &ids[0], &ids[1], &ids[2]);
        for (d = D_NODE; d <= D_MODE; d++) {
            a->dim[d].who[w] = grp_of(a, d, ids[d]);
        }
        a->dim[D_CLIENT].g[a->dim[D_CLIENT].who[w]].node = ids[0];
        grp_mode(a, &a->dim[D_CLIENT].g[a->dim[D_CLIENT].who[w]], ids[2]);
    }
    for (i = 0; i < a->n; i++) {
        const struct jrec *j = rec_at(r, i);
        int st = rec_state(j), att = job_attempts(r, j);
        uint32_t g[D_COUNT];

        a->state[i] = (uint8_t)st;
        a->attempt[i] = (int16_t)att;
        job_who(a, j, att, ids);
        g[D_NODE] = grp_of(a, D_NODE, ids[0]);
        g[D_CLIENT] = grp_of(a, D_CLIENT, ids[1]);
        g[D_MODE] = grp_of(a, D_MODE, ids[2]);
        g[D_QUEUE] = grp_of(a, D_QUEUE, j->queue ? j->queue : r->s_unknown);
        if (j->stage >= 0 && j->stage < a->nstages) {
            g[D_STAGE] = (uint32_t)j->stage;
        } else {
            if (stage_none == AN_NONE) {
                stage_none = grp_new(a, D_STAGE, "(none)");
            }
            g[D_STAGE] = stage_none;
        }
        for (d = 0; d < D_COUNT; d++) {
            struct an_grp *gr = &a->dim[d].g[g[d]];
            a->dim[d].job[i] = g[d];
            grp_count(gr, j, st);
            if (d == D_CLIENT) {
                gr->node = ids[0];
            }
            if (d != D_MODE) {
                grp_mode(a, gr, ids[2]);
            }
        }
        if (j->due != 0 && (a->first_due == 0 || j->due < a->first_due)) {
            a->first_due = j->due;
        }
        if (rec_state_final(st) && j->final_at > a->last_final) {
            a->last_final = j->final_at;
        }
        if (j->stage == 0 && rec_state_final(st) &&
            j->final_at > a->stage0_last_final) {
            a->stage0_last_final = j->final_at;
        }
        tmax = j->created > tmax ? j->created : tmax;
        tmax = j->due > tmax ? j->due : tmax;
        tmax = j->final_at > tmax ? j->final_at : tmax;
    }
    /* without a start time, the first due time is second 0 */
    a->t0 = in->started_us ? in->started_us : a->first_due;
    a->nsec = 1;
    if (a->t0 != 0 && tmax > a->t0) {
        int64_t s = (tmax - a->t0) / 1000000 + 1;
        a->nsec = (uint32_t)(s > AN_SERIES_MAX ? AN_SERIES_MAX : s);
    }
    a->sec_err = trib_calloc(a->nsec, sizeof(*a->sec_err));
    a->sec_p95 = trib_malloc(a->nsec * sizeof(*a->sec_p95));
}

/* ---------------------------------------------------------- breakdowns */

static int special(const struct an *a, const char *key)
{
    return key == rec_str(a->r, a->r->s_none) ||
           key == rec_str(a->r, a->r->s_unknown);
}

static json_t *grp_mode_json(const struct an *a, int d, const struct an_grp *g)
{
    if (d == D_MODE) {
        return special(a, g->key) ? json_null() : json_string(g->key);
    }
    if (g->mixed) {
        return json_string("mixed");
    }
    return g->mode ? json_string(rec_str(a->r, g->mode)) : json_null();
}

/* A group's final-state counts, throughput and latencies (breakdown
 * entries and stages alike). */
static void grp_results(json_t *o, const struct an_grp *g)
{
    json_object_set_new(o, "finished", json_integer(g->finished));
    json_object_set_new(o, "completed", json_integer(g->completed));
    json_object_set_new(o, "discarded", json_integer(g->discarded));
    json_object_set_new(o, "cancelled", json_integer(g->cancelled));
    json_object_set_new(o, "throughput",
                        per_s(g->finished, g->first_due, g->last_final));
    json_object_set(o, "latency_ms", g->lat);
}

static json_t *entry_json(const struct an *a, int d, const struct an_grp *g)
{
    json_t *o = json_object();
    const char *node = NULL;

    if (d == D_NODE && !special(a, g->key)) {
        node = g->key;
    } else if (d == D_CLIENT && g->node != 0 && g->node != a->r->s_none &&
               g->node != a->r->s_unknown) {
        node = rec_str(a->r, g->node);
    }
    json_object_set_new(o, "key", json_string(g->key));
    if (d == D_STAGE) {
        json_object_set_new(
            o, "index", g->index >= 0 ? json_integer(g->index) : json_null());
    }
    json_object_set_new(o, "node", str_or_null(node));
    json_object_set_new(o, "mode", grp_mode_json(a, d, g));
    json_object_set_new(o, "jobs", json_integer(g->jobs));
    grp_results(o, g);
    return o;
}

static const struct an *sort_an; /* qsort has no context argument */
static int sort_dim;

/* Entries by key, "(none)" and "(unknown)" last; stages by index. */
static int grp_rank(const struct an_grp *g)
{
    return sort_dim == D_STAGE ? g->index < 0 : special(sort_an, g->key);
}

static int cmp_grp(const void *x, const void *y)
{
    const struct an_grp *g = sort_an->dim[sort_dim].g;
    const struct an_grp *p = &g[*(const uint32_t *)x];
    const struct an_grp *q = &g[*(const uint32_t *)y];

    if (grp_rank(p) != grp_rank(q)) {
        return grp_rank(p) - grp_rank(q);
    }
    if (sort_dim == D_STAGE && p->index != q->index) {
        return p->index - q->index;
    }
    return strcmp(p->key, q->key);
}

static json_t *breakdowns(const struct an *a)
{
    json_t *o = json_object();
    uint32_t *order, i;
    int d;

    sort_an = a;
    for (d = 0; d < D_COUNT; d++) {
        json_t *arr = json_array();
        order = trib_malloc(((size_t)a->dim[d].n + 1) * sizeof(*order));
        for (i = 0; i < a->dim[d].n; i++) {
            order[i] = i;
        }
        sort_dim = d;
        qsort(order, a->dim[d].n, sizeof(*order), cmp_grp);
        for (i = 0; i < a->dim[d].n; i++) {
            json_array_append_new(arr,
                                  entry_json(a, d, &a->dim[d].g[order[i]]));
        }
        trib_free(order);
        json_object_set_new(o, DIM_NAMES[d], arr);
    }
    return o;
}

/* ------------------------------------------------------ counts, rates */

struct tally {
    int64_t states[TRIB_WS_COUNT];
    int64_t finished, attempts, retried, snoozed, started_early;
};

static void tally(const struct an *a, struct tally *t)
{
    uint32_t i;

    memset(t, 0, sizeof(*t));
    for (i = 0; i < a->n; i++) {
        const struct jrec *j = rec_at(a->r, i);
        t->states[a->state[i] < TRIB_WS_COUNT ? a->state[i] : 0]++;
        t->attempts += a->attempt[i];
        t->retried += a->attempt[i] > 1;
        t->snoozed += j->snoozes > 0;
        t->started_early +=
            j->first_att != 0 && j->due != 0 && j->first_att < j->due;
    }
    t->finished = t->states[TRIB_WS_COMPLETED] + t->states[TRIB_WS_DISCARDED] +
                  t->states[TRIB_WS_CANCELLED];
}

static int64_t planned(const struct an *a)
{
    const struct stress_run_info *in = a->info;
    int64_t n = 0;
    int i;

    if (in->nstages > 0 && in->stage_planned != NULL) {
        for (i = 0; i < in->nstages; i++) {
            n += in->stage_planned[i];
        }
        return n;
    }
    return a->plan ? stress_plan_jobs(a->plan) : 0;
}

static json_t *counts_json(const struct an *a, const struct tally *t)
{
    static const int unfin[] = {TRIB_WS_AVAILABLE, TRIB_WS_SCHEDULED,
                                TRIB_WS_RUNNING, TRIB_WS_RETRYABLE,
                                TRIB_WS_PENDING};
    json_t *o = json_object(), *u = json_object();
    int64_t left = a->info->inserted - t->finished;
    size_t i;

    json_object_set_new(o, "planned", json_integer(planned(a)));
    json_object_set_new(o, "inserted", json_integer(a->info->inserted));
    json_object_set_new(o, "finished", json_integer(t->finished));
    json_object_set_new(o, "completed",
                        json_integer(t->states[TRIB_WS_COMPLETED]));
    json_object_set_new(o, "discarded",
                        json_integer(t->states[TRIB_WS_DISCARDED]));
    json_object_set_new(o, "cancelled",
                        json_integer(t->states[TRIB_WS_CANCELLED]));
    json_object_set_new(o, "unfinished", json_integer(left > 0 ? left : 0));
    for (i = 0; i < sizeof(unfin) / sizeof(unfin[0]); i++) {
        json_object_set_new(u, trib_wire_state_name(unfin[i]),
                            json_integer(t->states[unfin[i]]));
    }
    json_object_set_new(o, "unfinished_by_state", u);
    json_object_set_new(o, "attempts", json_integer(t->attempts));
    json_object_set_new(o, "failed_attempts", json_integer(a->failed_attempts));
    json_object_set_new(o, "retried", json_integer(t->retried));
    json_object_set_new(o, "snoozed", json_integer(t->snoozed));
    json_object_set_new(o, "timeouts", json_integer(a->timeouts));
    json_object_set_new(o, "started_early", json_integer(t->started_early));
    return o;
}

static json_t *rates_json(const struct an *a, const struct tally *t)
{
    const struct stress_run_info *in = a->info;
    json_t *o = json_object();
    double fin = (double)t->finished;

    json_object_set_new(o, "throughput",
                        per_s(t->finished, a->first_due, a->last_final));
    json_object_set_new(
        o, "insert_rate",
        per_s(in->inserted, in->started_us, in->insert_ended_us));
    json_object_set_new(o, "failed_rate",
                        ratio((double)(t->states[TRIB_WS_DISCARDED] +
                                       t->states[TRIB_WS_CANCELLED]),
                              fin));
    json_object_set_new(o, "discarded_rate",
                        ratio((double)t->states[TRIB_WS_DISCARDED], fin));
    json_object_set_new(o, "cancelled_rate",
                        ratio((double)t->states[TRIB_WS_CANCELLED], fin));
    json_object_set_new(o, "error_rate",
                        ratio((double)a->failed_attempts, (double)t->attempts));
    json_object_set_new(o, "retry_rate", ratio((double)t->retried, fin));
    return o;
}

/* -------------------------------------------------------------- stages */

static int64_t info_at(const int64_t *v, int i, int n)
{
    return v != NULL && i < n ? v[i] : 0;
}

static json_t *stages_json(const struct an *a)
{
    const struct stress_run_info *in = a->info;
    json_t *arr = json_array();
    int i;

    for (i = 0; i < a->nstages; i++) {
        const struct stress_stage *st = &a->plan->stages[i];
        const struct an_grp *g = &a->dim[D_STAGE].g[i];
        int ramp = st->duration_us > 0;
        int64_t s0 = info_at(in->stage_started_us, i, in->nstages);
        int64_t s1 = info_at(in->stage_ended_us, i, in->nstages);
        int64_t ins = info_at(in->stage_inserted, i, in->nstages);
        json_t *o = json_object();

        json_object_set_new(o, "index", json_integer(i));
        json_object_set_new(o, "name", json_string(st->name));
        json_object_set_new(o, "form", json_string(ramp ? "ramp" : "count"));
        json_object_set_new(o, "duration_s",
                            ramp ? json_real((double)st->duration_us / 1e6)
                                 : json_null());
        json_object_set_new(o, "target",
                            ramp ? json_real(st->target) : json_null());
        json_object_set_new(o, "count",
                            ramp ? json_null() : json_integer(st->count));
        json_object_set_new(o, "rate",
                            ramp || st->rate <= 0 ? json_null()
                                                  : json_real(st->rate));
        json_object_set_new(o, "start_rate",
                            json_real(stress_stage_start_rate(a->plan, i)));
        json_object_set_new(o, "started_at", stress__an_time(s0));
        json_object_set_new(o, "ended_at", stress__an_time(s1));
        json_object_set_new(o, "planned",
                            in->stage_planned && i < in->nstages
                                ? json_integer(in->stage_planned[i])
                                : json_null());
        json_object_set_new(o, "inserted",
                            in->stage_inserted && i < in->nstages
                                ? json_integer(ins)
                                : json_null());
        json_object_set_new(o, "insert_rate", per_s(ins, s0, s1));
        grp_results(o, g);
        json_array_append_new(arr, o);
    }
    return arr;
}

/* ------------------------------------------------------------ monitors */

static json_t *final_counts(int64_t c, int64_t d, int64_t x)
{
    json_t *o = json_object();

    json_object_set_new(o, "finished", json_integer(c + d + x));
    json_object_set_new(o, "completed", json_integer(c));
    json_object_set_new(o, "discarded", json_integer(d));
    json_object_set_new(o, "cancelled", json_integer(x));
    return o;
}

static json_t *monitors_json(const struct an *a)
{
    const struct stress_run_info *in = a->info;
    static const char *const what[] = {"finished", "completed", "discarded",
                                       "cancelled"};
    json_t *o = json_object(), *ev = json_null(), *db = json_null();
    json_t *dis = json_array();
    int64_t c, d, x;
    size_t i;

    stress_rec_event_tally(a->r, &c, &d, &x);
    if (in->control != NULL || in->events_seen > 0) {
        ev = final_counts(c, d, x);
        json_object_set_new(ev, "events_seen", json_integer(in->events_seen));
        json_object_set_new(ev, "events_missed",
                            json_integer(in->events_missed));
        json_object_set_new(ev, "coordinator_finished",
                            in->coord_finished >= 0
                                ? json_integer(in->coord_finished)
                                : json_null());
    }
    if (in->db_polled_us != 0) {
        json_t *s = json_object();
        db = final_counts(in->db_states[TRIB_WS_COMPLETED],
                          in->db_states[TRIB_WS_DISCARDED],
                          in->db_states[TRIB_WS_CANCELLED]);
        for (i = 1; i < TRIB_WS_COUNT; i++) {
            json_object_set_new(s, trib_wire_state_name((int)i),
                                json_integer(in->db_states[i]));
        }
        json_object_set_new(db, "states", s);
        json_object_set_new(db, "polled_at", stress__an_time(in->db_polled_us));
    }
    if (json_is_object(ev) && json_is_object(db) && in->events_missed > 0 &&
        in->coord_finished >= 0) {
        /* This reader fell behind the coordinator's ring: its own tally
         * is short by what it missed, so the events side is the
         * coordinator's exact per-tag count of finished jobs. */
        json_int_t p = json_integer_value(json_object_get(db, "finished"));
        json_object_set_new(ev, "basis", json_string("coordinator_count"));
        if (in->coord_finished != p) {
            json_t *w = json_object();
            json_object_set_new(w, "what", json_string("finished"));
            json_object_set_new(w, "events", json_integer(in->coord_finished));
            json_object_set_new(w, "database", json_integer(p));
            json_array_append_new(dis, w);
        }
    } else if (json_is_object(ev) && json_is_object(db)) {
        json_object_set_new(ev, "basis", json_string("event_stream"));
        for (i = 0; i < sizeof(what) / sizeof(what[0]); i++) {
            json_int_t e = json_integer_value(json_object_get(ev, what[i]));
            json_int_t p = json_integer_value(json_object_get(db, what[i]));
            if (e != p) {
                json_t *w = json_object();
                json_object_set_new(w, "what", json_string(what[i]));
                json_object_set_new(w, "events", json_integer(e));
                json_object_set_new(w, "database", json_integer(p));
                json_array_append_new(dis, w);
            }
        }
    }
    json_object_set_new(o, "events", ev);
    json_object_set_new(o, "polling", db);
    json_object_set_new(o, "agree", json_boolean(json_array_size(dis) == 0));
    json_object_set_new(o, "disagreements", dis);
    return o;
}

/* --------------------------------------------------------------- mixed */

static json_t *mixed_side(const struct an *a, const char *mode,
                          const char *queue)
{
    const struct stress_rec *r = a->r;
    const struct an_dim *q = &a->dim[D_QUEUE];
    const struct an_grp *g = NULL;
    json_t *o = json_object(), *lat = json_object(), *db = NULL;
    int64_t clients = 0;
    uint32_t i;

    for (i = 0; i < q->n && g == NULL; i++) {
        g = strcmp(q->g[i].key, queue) == 0 ? &q->g[i] : NULL;
    }
    for (i = 0; i < r->str.n; i++) {
        clients += r->str.cmode[i] != 0 &&
                   strcmp(rec_str(r, r->str.cmode[i]), mode) == 0;
    }
    json_object_set_new(o, "queue", json_string(queue));
    json_object_set_new(o, "clients", json_integer(clients));
    json_object_set_new(o, "jobs", json_integer(g ? g->jobs : 0));
    json_object_set_new(o, "finished", json_integer(g ? g->finished : 0));
    json_object_set_new(o, "throughput",
                        g ? per_s(g->finished, g->first_due, g->last_final)
                          : json_null());
    if (g != NULL) {
        json_object_set(lat, "pickup", json_object_get(g->lat, "pickup"));
        json_object_set(lat, "end_to_end",
                        json_object_get(g->lat, "end_to_end"));
    } else {
        json_object_set_new(lat, "pickup", stress__an_summary(NULL, 0, 0));
        json_object_set_new(lat, "end_to_end", stress__an_summary(NULL, 0, 0));
    }
    json_object_set_new(o, "latency_ms", lat);
    if (a->info->modes_db != NULL) {
        db = json_object_get(a->info->modes_db, mode);
    }
    json_object_set_new(o, "db", db ? json_incref(db) : json_null());
    return o;
}

static json_t *mixed_json(const struct an *a)
{
    json_t *o;

    if (a->plan == NULL || !a->plan->mixed) {
        return json_null();
    }
    o = json_object();
    json_object_set_new(o, "notify",
                        mixed_side(a, "notify", a->plan->notify_queue));
    json_object_set_new(o, "poll", mixed_side(a, "poll", a->plan->poll_queue));
    return o;
}

/* ----------------------------------------------------------------- run */

static const char *monitor_name(const struct stress_plan *p)
{
    if (p == NULL) {
        return "both";
    }
    switch (p->monitor) {
    case STRESS_MONITOR_EVENTS:
        return "events";
    case STRESS_MONITOR_POLLING:
        return "polling";
    default:
        return "both";
    }
}

static json_t *run_json(const struct an *a)
{
    const struct stress_run_info *in = a->info;
    json_t *o = json_object();

    json_object_set_new(o, "id", str_or_null(in->run_id));
    json_object_set_new(o, "name", str_or_null(a->plan ? a->plan->name : NULL));
    json_object_set_new(o, "tag", str_or_null(in->run_tag));
    json_object_set_new(o, "plan_file",
                        str_or_null(a->plan ? a->plan->file : NULL));
    json_object_set_new(o, "plan",
                        a->plan ? stress_plan_json(a->plan) : json_null());
    json_object_set_new(o, "database", str_or_null(in->database));
    json_object_set_new(o, "control", str_or_null(in->control));
    json_object_set_new(o, "monitor", json_string(monitor_name(a->plan)));
    json_object_set_new(o, "started_at", stress__an_time(in->started_us));
    json_object_set_new(o, "insert_ended_at",
                        stress__an_time(in->insert_ended_us));
    json_object_set_new(o, "ended_at", stress__an_time(in->ended_us));
    json_object_set_new(
        o, "duration_s",
        in->started_us && in->ended_us >= in->started_us
            ? json_real((double)(in->ended_us - in->started_us) / 1e6)
            : json_null());
    json_object_set_new(o, "outcome",
                        json_string(in->outcome ? in->outcome : "finished"));
    json_object_set_new(o, "error", str_or_null(in->error));
    json_object_set_new(o, "exit_code", json_integer(in->exit_code));
    return o;
}

/* --------------------------------------------------------------- build */

static void an_free(struct an *a)
{
    uint32_t i;
    int d;

    for (d = 0; d < D_COUNT; d++) {
        for (i = 0; i < a->dim[d].n; i++) {
            json_decref(a->dim[d].g[i].lat);
        }
        trib_free(a->dim[d].g);
        trib_free(a->dim[d].job);
        trib_free(a->dim[d].who);
        trib_free(a->dim[d].map);
    }
    trib_free(a->state);
    trib_free(a->attempt);
    trib_free(a->sec_err);
    trib_free(a->sec_p95);
    json_decref(a->ser_e2e);
    json_decref(a->ser_pickup);
    json_decref(a->latency);
    json_decref(a->cdf);
}

json_t *stress_report_build(const struct stress_rec *r,
                            const struct stress_run_info *info)
{
    struct stress_rec *tmp = NULL;
    struct an a;
    struct tally t;
    json_t *doc, *failures, *series;

    if (info == NULL) {
        return NULL;
    }
    if (r == NULL) {
        r = tmp = stress_rec_new(); /* a report of nothing */
    }
    memset(&a, 0, sizeof(a));
    a.r = r;
    a.info = info;
    a.plan = info->plan;
    prepare(&a);
    stress__an_latency(&a);
    failures = stress__an_failures(&a);
    series = stress__an_series(&a);
    tally(&a, &t);

    doc = json_object();
    json_object_set_new(doc, "schema", json_string(SCHEMA));
    json_object_set_new(doc, "generated_at", stress__an_time(trib_now_us()));
    json_object_set_new(doc, "tool_version", json_string(TRIB_VERSION));
    json_object_set_new(doc, "run", run_json(&a));
    json_object_set_new(doc, "counts", counts_json(&a, &t));
    json_object_set_new(doc, "rates", rates_json(&a, &t));
    json_object_set(doc, "latency_ms", a.latency);
    json_object_set_new(doc, "stages", stages_json(&a));
    json_object_set_new(doc, "breakdowns", breakdowns(&a));
    json_object_set(doc, "series", series);
    json_object_set(doc, "cdf", a.cdf);
    json_object_set_new(doc, "failures", failures);
    json_object_set_new(doc, "thresholds", json_array());
    json_object_set_new(doc, "thresholds_passed", json_true());
    json_object_set_new(doc, "monitors", monitors_json(&a));
    json_object_set_new(doc, "resources",
                        info->resources ? json_incref(info->resources)
                                        : json_null());
    json_object_set_new(doc, "mixed", mixed_json(&a));
    json_object_set_new(doc, "climb", stress__an_climb(&a, series));
    json_decref(series);
    an_free(&a);
    stress_rec_free(tmp);
    return doc;
}
