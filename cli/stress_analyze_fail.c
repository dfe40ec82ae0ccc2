/*
 * stress_analyze_fail.c -- a stress report's failure groups
 * (docs/REPORT.md failures): errors grouped by (job kind, normalised text)
 * exactly as the coordinator groups them (trib_errtext.h).
 *
 * Every kept error event (job_failed, or any job event with an error
 * text) counts one attempt in its group. A job's errors that no event
 * showed (its row's errors[] is longer than the error events seen: events
 * missed, or none subscribed) count in the group of the row's last error,
 * so without events the groups still add up to the database's errors.
 * A job's discard or cancel counts in the group of its last error.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "stress_analyze_int.h"
#include "trib_mem.h"

#define SAMPLES 5
#define FQUEUES 16 /* queues and nodes listed per group */

struct fgrp {
    uint32_t id; /* pair id in r->grp */
    int timeout; /* the text says timeout / deadline exceeded */
    int64_t attempts, jobs, discarded, retried, cancelled, timeouts;
    uint32_t last_job; /* job index + 1 that last touched the group */
    int64_t sample_id[SAMPLES], sample_at[SAMPLES];
    int nsamples;
    uint32_t queues[FQUEUES], nodes[FQUEUES];
    int nqueues, nnodes;
};

static int says_timeout(const char *s)
{
    static const char *const words[] = {"timeout", "timed out",
                                        "deadline exceeded"};
    char low[256];
    size_t i;

    for (i = 0; s[i] && i + 1 < sizeof(low); i++) {
        low[i] = (char)tolower((unsigned char)s[i]);
    }
    low[i] = 0;
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strstr(low, words[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

static void add_id(uint32_t *set, int *n, uint32_t id)
{
    int i;

    for (i = 0; i < *n && set[i] != id; i++) {
    }
    if (i == *n && *n < FQUEUES) {
        set[(*n)++] = id;
    }
}

/* Keeps the SAMPLES most recent distinct jobs, most recent first. */
static void sample(struct fgrp *g, int64_t id, int64_t at)
{
    int i, k;

    for (i = 0; i < g->nsamples; i++) {
        if (g->sample_id[i] == id) {
            if (at <= g->sample_at[i]) {
                return;
            }
            memmove(&g->sample_id[i], &g->sample_id[i + 1],
                    (size_t)(g->nsamples - i - 1) * sizeof(int64_t));
            memmove(&g->sample_at[i], &g->sample_at[i + 1],
                    (size_t)(g->nsamples - i - 1) * sizeof(int64_t));
            g->nsamples--;
            break;
        }
    }
    for (k = 0; k < g->nsamples && g->sample_at[k] >= at; k++) {
    }
    if (k >= SAMPLES) {
        return;
    }
    if (g->nsamples < SAMPLES) {
        g->nsamples++;
    }
    memmove(&g->sample_id[k + 1], &g->sample_id[k],
            (size_t)(g->nsamples - k - 1) * sizeof(int64_t));
    memmove(&g->sample_at[k + 1], &g->sample_at[k],
            (size_t)(g->nsamples - k - 1) * sizeof(int64_t));
    g->sample_id[k] = id;
    g->sample_at[k] = at;
}

/* Counts n errors of job i (record j) at time 'at' on node in group g. */
static void count(struct an *a, struct fgrp *g, uint32_t i,
                  const struct jrec *j, int64_t n, int64_t at, uint32_t node)
{
    g->attempts += n;
    g->timeouts += g->timeout ? n : 0;
    if (g->last_job != i + 1) {
        g->last_job = i + 1;
        g->jobs++;
        g->retried += a->attempt[i] > 1;
    }
    sample(g, j->id, at);
    if (j->queue != 0) {
        add_id(g->queues, &g->nqueues, j->queue);
    }
    if (node != a->r->s_none && node != a->r->s_unknown) {
        add_id(g->nodes, &g->nnodes, node);
    }
    a->sec_err[an_sec(a, at)] += n;
}

static const struct an *sort_an; /* qsort has no context argument */

static int cmp_str_id(const void *x, const void *y)
{
    return strcmp(rec_str(sort_an->r, *(const uint32_t *)x),
                  rec_str(sort_an->r, *(const uint32_t *)y));
}

static int cmp_fgrp(const void *x, const void *y)
{
    const struct fgrp *p = x, *q = y;
    const struct stress_rec *r = sort_an->r;
    int c;

    if (p->attempts != q->attempts) {
        return p->attempts > q->attempts ? -1 : 1;
    }
    c = strcmp(rec_str(r, r->grp.items[p->id][0]),
               rec_str(r, r->grp.items[q->id][0]));
    return c ? c
             : strcmp(rec_str(r, r->grp.items[p->id][1]),
                      rec_str(r, r->grp.items[q->id][1]));
}

static json_t *names(const struct an *a, uint32_t *ids, int n)
{
    json_t *arr = json_array();
    int i;

    qsort(ids, (size_t)n, sizeof(*ids), cmp_str_id);
    for (i = 0; i < n; i++) {
        json_array_append_new(arr, json_string(rec_str(a->r, ids[i])));
    }
    return arr;
}

static json_t *group_json(const struct an *a, struct fgrp *g)
{
    const struct stress_rec *r = a->r;
    json_t *o = json_object(), *s = json_array();
    int i;

    json_object_set_new(o, "kind",
                        json_string(rec_str(r, r->grp.items[g->id][0])));
    json_object_set_new(o, "error",
                        json_string(rec_str(r, r->grp.items[g->id][1])));
    json_object_set_new(o, "attempts", json_integer(g->attempts));
    json_object_set_new(o, "jobs", json_integer(g->jobs));
    json_object_set_new(o, "discarded", json_integer(g->discarded));
    json_object_set_new(o, "retried", json_integer(g->retried));
    json_object_set_new(o, "cancelled", json_integer(g->cancelled));
    json_object_set_new(o, "timeouts", json_integer(g->timeouts));
    for (i = 0; i < g->nsamples; i++) {
        json_array_append_new(s, json_integer(g->sample_id[i]));
    }
    json_object_set_new(o, "sample_job_ids", s);
    json_object_set_new(o, "queues", names(a, g->queues, g->nqueues));
    json_object_set_new(o, "nodes", names(a, g->nodes, g->nnodes));
    return o;
}

json_t *stress__an_failures(struct an *a)
{
    const struct stress_rec *r = a->r;
    struct fgrp *g = trib_calloc((size_t)r->grp.n + 1, sizeof(*g));
    json_t *arr = json_array();
    uint32_t i, k, gi;

    for (gi = 0; gi < r->grp.n; gi++) {
        g[gi].id = gi;
        g[gi].timeout = says_timeout(rec_str(r, r->grp.items[gi][1]));
    }
    for (i = 0; i < a->n; i++) {
        const struct jrec *j = rec_at(r, i);
        const struct jev *last = NULL;
        int64_t nev = 0, nrow = (j->flags & JREC_ROW) ? j->nerrors : 0;
        uint32_t fg = 0;
        int st = a->state[i];

        for (k = j->ev_head; k != 0; k = ev_at(r, k - 1)->next) {
            const struct jev *e = ev_at(r, k - 1);
            uint32_t nd, cl, md;
            if (e->err == 0) {
                continue;
            }
            stress__an_who(a, e->who, &nd, &cl, &md);
            count(a, &g[e->err - 1], i, j, 1, e->at, nd);
            nev++;
            if (last == NULL || e->at > last->at) {
                last = e;
            }
        }
        if (nrow > nev && j->row_err != 0) {
            int64_t at = j->final_at    ? j->final_at
                         : j->first_att ? j->first_att
                                        : j->created;
            /* on the node of the job's last attempt */
            count(a, &g[j->row_err - 1], i, j, nrow - nev, at,
                  a->dim[D_NODE].g[a->dim[D_NODE].job[i]].sid);
        }
        a->failed_attempts += nrow > nev ? nrow : nev;
        fg = (j->flags & JREC_ROW) && j->row_err ? j->row_err
             : last                              ? last->err
                                                 : 0;
        if (fg != 0) {
            g[fg - 1].discarded += st == TRIB_WS_DISCARDED;
            g[fg - 1].cancelled += st == TRIB_WS_CANCELLED;
        }
    }
    sort_an = a;
    for (gi = 0; gi < r->grp.n; gi++) {
        a->timeouts += g[gi].timeouts;
    }
    qsort(g, r->grp.n, sizeof(*g), cmp_fgrp);
    for (gi = 0; gi < r->grp.n; gi++) {
        if (g[gi].attempts > 0 || g[gi].discarded > 0 || g[gi].cancelled > 0) {
            json_array_append_new(arr, group_json(a, &g[gi]));
        }
    }
    trib_free(g);
    return arr;
}
