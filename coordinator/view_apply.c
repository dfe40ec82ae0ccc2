/*
 * view_apply.c -- EVENT_BATCH application, exactly once.
 *
 * Per (agent, boot) the view keeps the highest sequence applied. A batch
 * [first_seq, first_seq + n) is applied from applied + 1 on: events at or
 * below the position are duplicates (a resend after a lost ACK, or a
 * replay after an agent restart), a batch that starts past applied + 1 is
 * a gap and is refused whole (the agent resends from expected_seq). An
 * event that fails to decode is skipped and counted, but its sequence is
 * consumed: resending the same bytes would fail the same way.
 *
 * Each applied job event lands in its group (node, client, queue, kind):
 * counts per event kind and per state after, five latency histograms, the
 * per-second series of finished jobs (placed by the event's own time, the
 * database clock, when it is within the last hour), the tag counts and,
 * for failures, the failure groups. Queue events (paused/resumed) only
 * update their client. Every applied event also enters the ring.
 */
#include <stdlib.h>
#include <string.h>

#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "view_impl.h"

#define OTHER "(other)"

static int is_final(int ws)
{
    return ws == TRIB_WS_COMPLETED || ws == TRIB_WS_DISCARDED ||
           ws == TRIB_WS_CANCELLED;
}

uint64_t trib__view_finished(const struct vgroup *g)
{
    return g->st[TRIB_WS_COMPLETED] + g->st[TRIB_WS_DISCARDED] +
           g->st[TRIB_WS_CANCELLED];
}

uint64_t trib__view_failed(const struct vgroup *g)
{
    return g->st[TRIB_WS_DISCARDED] + g->st[TRIB_WS_CANCELLED];
}

/* ------------------------------------------------------------ groups */

struct gkey {
    const struct vagent *a;
    struct trib_str client, queue, kind;
};

static uint64_t vstr_hash(const char *s)
{
    return ((const struct vstr *)(const void *)(s - offsetof(struct vstr, s)))
        ->hash;
}

static uint64_t key_hash(const struct gkey *k)
{
    uint64_t h = k->a ? vstr_hash(k->a->id) : 1;

    h = trib__view_hash(k->client.p, k->client.n, h);
    h = trib__view_hash(k->queue.p, k->queue.n, h);
    return trib__view_hash(k->kind.p, k->kind.n, h);
}

static struct trib_str vs(const char *interned)
{
    struct trib_str s = {interned, trib__vstr_len(interned)};

    return s;
}

static int group_eq(const void *item, const void *key)
{
    const struct vgroup *g = item;
    const struct gkey *k = key;

    return g->agent == k->a && trib__vstr_eq(g->client, k->client) &&
           trib__vstr_eq(g->queue, k->queue) && trib__vstr_eq(g->kind, k->kind);
}

struct vgroup *trib__view_group_find(const struct trib_view *v,
                                     const struct vagent *a, const char *client,
                                     const char *queue, const char *kind)
{
    struct gkey k = {a, vs(client), vs(queue), vs(kind)};

    return trib__vidx_find(&v->group_idx, key_hash(&k), group_eq, &k);
}

struct vgroup *trib__view_group_new(struct trib_view *v, struct vagent *a,
                                    const char *client, const char *queue,
                                    const char *kind)
{
    struct vgroup *g = trib__view_alloc(v, sizeof(*g));
    int k;

    g->agent = a;
    g->client = client;
    g->queue = queue;
    g->kind = kind;
    for (k = 0; k < VH_COUNT; k++) {
        trib_hist_init(&g->h[k]);
    }
    g->index = v->ngroups;
    trib__view_push(v, (void ***)&v->groups, &v->ngroups, &v->capgroups, g);
    if (a != NULL) {
        struct gkey key = {a, vs(client), vs(queue), vs(kind)};

        trib__vidx_add(v, &v->group_idx, key_hash(&key), g);
        trib__view_client_seen(v, client);
    } else {
        v->overflow = g;
    }
    return g;
}

void trib__view_group_free(struct trib_view *v, struct vgroup *g)
{
    int k;

    for (k = 0; k < VH_COUNT; k++) {
        trib_hist_fini(&g->h[k]);
    }
    if (g->series != NULL) {
        trib__view_free(v, g->series->fail,
                        VIEW_SERIES_SECS * sizeof(uint32_t));
        trib__view_free(v, g->series, sizeof(*g->series));
    }
    trib__view_free(v, g, sizeof(*g));
}

static struct vgroup *overflow_group(struct trib_view *v)
{
    const char *o;

    if (v->overflow == NULL) {
        o = trib__view_intern(v, OTHER, strlen(OTHER));
        trib__view_group_new(v, NULL, o, o, o);
    }
    return v->overflow;
}

static struct vgroup *group_for(struct trib_view *v, struct vagent *a,
                                const struct trib_wire_event *ev)
{
    struct vgroup *g = a->last;
    struct gkey k;
    uint64_t h;

    /* consecutive events of an agent mostly share their group */
    if (g != NULL && trib__vstr_eq(g->kind, ev->job_kind) &&
        trib__vstr_eq(g->queue, ev->queue) &&
        trib__vstr_eq(g->client, ev->client_id)) {
        return g;
    }
    k.a = a;
    k.client = ev->client_id;
    k.queue = ev->queue;
    k.kind = ev->job_kind;
    h = key_hash(&k);
    g = trib__vidx_find(&v->group_idx, h, group_eq, &k);
    if (g == NULL) {
        if (v->ngroups - (v->overflow != NULL) >= v->conf.max_groups) {
            v->groups_overflow_events++;
            return overflow_group(v);
        }
        g = trib__view_group_new(v, a,
                                 trib__view_intern(v, k.client.p, k.client.n),
                                 trib__view_intern(v, k.queue.p, k.queue.n),
                                 trib__view_intern(v, k.kind.p, k.kind.n));
    }
    a->last = g;
    return g;
}

int trib__view_group_match(const struct vgroup *g,
                           const struct trib_view_filter *f)
{
    if (f == NULL) {
        return 1;
    }
    if (f->queue != NULL && strcmp(f->queue, g->queue) != 0) {
        return 0;
    }
    if (f->kind != NULL && strcmp(f->kind, g->kind) != 0) {
        return 0;
    }
    if (f->node != NULL &&
        strcmp(f->node, g->agent != NULL ? g->agent->id : OTHER) != 0) {
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ series */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static size_t slot_of(int64_t sec)
{
    int64_t m = sec % VIEW_SERIES_SECS;

    return (size_t)(m < 0 ? m + VIEW_SERIES_SECS : m);
}

void trib__view_series_add(struct trib_view *v, struct vgroup *g, int64_t sec,
                           uint32_t fin, uint32_t fail)
{
    struct vseries *s = g->series;
    int64_t t;
    size_t i;

    if (s == NULL) {
        s = g->series = trib__view_alloc(v, sizeof(*s));
        s->head = sec;
    }
    if (fail > 0 && s->fail == NULL) {
        s->fail = trib__view_alloc(v, VIEW_SERIES_SECS * sizeof(uint32_t));
    }
    if (sec > s->head) {
        if (sec - s->head >= VIEW_SERIES_SECS) {
            memset(s->fin, 0, sizeof(s->fin));
            if (s->fail != NULL) {
                memset(s->fail, 0, VIEW_SERIES_SECS * sizeof(uint32_t));
            }
        } else {
            for (t = s->head + 1; t <= sec; t++) {
                s->fin[slot_of(t)] = 0;
                if (s->fail != NULL) {
                    s->fail[slot_of(t)] = 0;
                }
            }
        }
        s->head = sec;
    } else if (sec <= s->head - VIEW_SERIES_SECS) {
        sec = s->head - VIEW_SERIES_SECS + 1; /* the oldest second held */
    }
    i = slot_of(sec);
    s->fin[i] += fin;
    if (fail > 0) {
        s->fail[i] += fail;
    }
}

void trib__view_series_sum(const struct vseries *s, int64_t from, int64_t to,
                           uint64_t *fin, uint64_t *fail)
{
    int64_t t;

    if (s == NULL) {
        return;
    }
    if (from <= s->head - VIEW_SERIES_SECS) {
        from = s->head - VIEW_SERIES_SECS + 1;
    }
    if (to > s->head) {
        to = s->head;
    }
    for (t = from; t <= to; t++) {
        *fin += s->fin[slot_of(t)];
        if (fail != NULL && s->fail != NULL) {
            *fail += s->fail[slot_of(t)];
        }
    }
}

/* The second an event counts in: its own time when plausible, else now. */
static int64_t event_second(int64_t at, int64_t now_us)
{
    if (at != 0 && at >= now_us - VIEW_SERIES_SECS * TRIB_US_PER_S &&
        at <= now_us + VIEW_FUTURE_SECS * TRIB_US_PER_S) {
        return floor_div(at, TRIB_US_PER_S);
    }
    return floor_div(now_us, TRIB_US_PER_S);
}

/* -------------------------------------------------------------- tags */

struct tkey {
    struct trib_str tag;
    const struct vgroup *g;
};

static int tag_eq(const void *item, const void *key)
{
    const struct vtag *t = item;
    const struct tkey *k = key;

    return t->group == k->g && trib__vstr_eq(t->tag, k->tag);
}

static uint64_t tag_hash(struct trib_str tag, const struct vgroup *g)
{
    return trib__view_hash(tag.p, tag.n,
                           ((uint64_t)g->index + 1) * 0x9E3779B97F4A7C15ULL);
}

struct vtag *trib__view_tag_new(struct trib_view *v, const char *tag,
                                struct vgroup *g)
{
    struct vtag *t = trib__view_alloc(v, sizeof(*t));

    t->tag = tag;
    t->group = g;
    trib__view_push(v, (void ***)&v->tags, &v->ntags, &v->captags, t);
    trib__vidx_add(v, &v->tag_idx, tag_hash(vs(tag), g), t);
    return t;
}

static void count_tags(struct trib_view *v, struct vgroup *g,
                       const struct trib_wire_event *ev, int failed)
{
    struct tkey k;
    struct vtag *t;
    int i, j, dup;

    k.g = g;
    for (i = 0; i < ev->ntags; i++) {
        k.tag = ev->tags[i];
        for (j = 0, dup = 0; j < i && !dup; j++) {
            dup = ev->tags[j].n == k.tag.n &&
                  memcmp(ev->tags[j].p, k.tag.p, k.tag.n) == 0;
        }
        if (dup) {
            continue; /* a tag listed twice counts once */
        }
        t = trib__vidx_find(&v->tag_idx, tag_hash(k.tag, g), tag_eq, &k);
        if (t == NULL) {
            if (v->ntags >= v->conf.max_tags) {
                v->tag_overflow++;
                continue;
            }
            t = trib__view_tag_new(
                v, trib__view_intern(v, k.tag.p ? k.tag.p : "", k.tag.n), g);
        }
        t->finished++;
        t->failed += (uint64_t)failed;
    }
}

/* ------------------------------------------------------------ events */

static void queue_event(struct trib_view *v, struct vagent *a,
                        const struct trib_wire_event *ev)
{
    struct vclient *c = trib__view_client(v, a, ev->client_id, 1);
    int i;

    if (c == NULL) {
        return;
    }
    for (i = 0; i < c->npaused; i++) {
        if (trib__vstr_eq(c->paused[i], ev->queue)) {
            break;
        }
    }
    if (ev->kind == TRIB_EV_QUEUE_PAUSED) {
        if (i == c->npaused && c->npaused < VIEW_MAX_PAUSED) {
            c->paused[c->npaused++] = trib__view_intern(
                v, ev->queue.p ? ev->queue.p : "", ev->queue.n);
        }
    } else if (i < c->npaused) {
        c->paused[i] = c->paused[--c->npaused];
    }
}

static void apply_event(struct trib_view *v, struct vagent *a,
                        const struct trib_wire_event *ev, int64_t now_us)
{
    uint64_t cursor = ++v->events_applied;
    struct vgroup *g;
    int final, failed;

    if (ev->kind == TRIB_EV_QUEUE_PAUSED || ev->kind == TRIB_EV_QUEUE_RESUMED) {
        queue_event(v, a, ev);
        trib__view_ring_put(v, cursor, a, ev);
        return;
    }
    g = group_for(v, a, ev);
    g->ev[ev->kind]++;
    g->st[ev->state]++;
    final = is_final(ev->state);
    if (ev->kind == TRIB_EV_JOB_FAILED && !final) {
        g->retryable++;
    }
    trib_hist_record(&g->h[VH_QUEUE_WAIT], ev->queue_wait_us);
    trib_hist_record(&g->h[VH_RUN], ev->run_us);
    trib_hist_record(&g->h[VH_COMPLETE], ev->complete_us);
    if (ev->scheduled_at != 0 && ev->attempted_at != 0) {
        trib_hist_record(&g->h[VH_PICKUP], ev->attempted_at - ev->scheduled_at);
    }
    if (final) {
        failed = ev->state != TRIB_WS_COMPLETED;
        if (ev->created_at != 0 && ev->finalized_at != 0) {
            trib_hist_record(&g->h[VH_END_TO_END],
                             ev->finalized_at - ev->created_at);
        }
        trib__view_series_add(v, g, event_second(ev->at, now_us), 1,
                              (uint32_t)failed);
        if (ev->ntags > 0) {
            count_tags(v, g, ev, failed);
        }
    }
    if (ev->kind == TRIB_EV_JOB_FAILED || ev->error.n > 0) {
        trib__view_failure(v, a, ev, ev->at != 0 ? ev->at : now_us);
    }
    trib__view_ring_put(v, cursor, a, ev);
}

int trib_view_apply(struct trib_view *v, struct trib_str agent_id,
                    const struct trib_wire_batch *b, int64_t now_us,
                    struct trib_apply_result *r)
{
    const msgpack_object *evs = b->events;
    struct trib_wire_event ev;
    struct vagent *a;
    struct vboot *boot;
    uint64_t n, skip = 0, i;

    memset(r, 0, sizeof(*r));
    if (evs == NULL || evs->type != MSGPACK_OBJECT_ARRAY || b->first_seq == 0) {
        return TRIB_EPROTO;
    }
    n = evs->via.array.size;
    if (b->first_seq > UINT64_MAX - n) {
        return TRIB_EPROTO;
    }
    a = trib__view_agent_get(v, agent_id);
    boot = trib__view_boot_get(v, a, b->boot_id);
    r->applied_seq = boot->applied;
    if (b->first_seq > boot->applied + 1) {
        v->gaps++;
        r->expected_seq = boot->applied + 1;
        return TRIB_ERANGE;
    }
    if (boot->applied >= b->first_seq) {
        skip = boot->applied - b->first_seq + 1;
        if (skip > n) {
            skip = n;
        }
    }
    for (i = skip; i < n; i++) {
        if (trib_wire_event_decode(&evs->via.array.ptr[i], &ev) != 0 ||
            ev.kind < 1 || ev.kind >= TRIB_EV_KINDS || ev.state < 0 ||
            ev.state >= TRIB_WS_COUNT) {
            r->invalid++;
            continue;
        }
        apply_event(v, a, &ev, now_us);
        r->applied++;
    }
    if (n > skip) {
        boot->applied = b->first_seq + n - 1;
    }
    r->duplicates = (uint32_t)skip;
    r->applied_seq = boot->applied;
    v->duplicates += skip;
    v->invalid += r->invalid;
    v->batches++;
    return 0;
}

/* ----------------------------------------------------------- queries */

void trib_view_finished(const struct trib_view *v,
                        const struct trib_view_filter *f, int64_t *finished,
                        int64_t *failed)
{
    uint64_t fin = 0, fail = 0;
    uint32_t i;

    if (f != NULL && f->tag != NULL) {
        for (i = 0; i < v->ntags; i++) {
            if (strcmp(v->tags[i]->tag, f->tag) == 0 &&
                trib__view_group_match(v->tags[i]->group, f)) {
                fin += v->tags[i]->finished;
                fail += v->tags[i]->failed;
            }
        }
    } else {
        for (i = 0; i < v->ngroups; i++) {
            if (trib__view_group_match(v->groups[i], f)) {
                fin += trib__view_finished(v->groups[i]);
                fail += trib__view_failed(v->groups[i]);
            }
        }
    }
    *finished = (int64_t)fin;
    *failed = (int64_t)fail;
}

static int cmp_queue_kind(const void *x, const void *y)
{
    const struct vgroup *a = *(struct vgroup *const *)x;
    const struct vgroup *b = *(struct vgroup *const *)y;
    int c = strcmp(a->queue, b->queue);

    return c != 0 ? c : strcmp(a->kind, b->kind);
}

void trib_view_each_final(const struct trib_view *v,
                          void (*fn)(void *arg, const char *queue,
                                     const char *kind, int ws, int64_t n),
                          void *arg)
{
    static const int finals[] = {TRIB_WS_COMPLETED, TRIB_WS_DISCARDED,
                                 TRIB_WS_CANCELLED};
    struct vgroup **gs;
    uint64_t sum[3];
    uint32_t i, j;
    int k;

    if (v->ngroups == 0) {
        return;
    }
    gs = trib_malloc(v->ngroups * sizeof(*gs));
    memcpy(gs, v->groups, v->ngroups * sizeof(*gs));
    qsort(gs, v->ngroups, sizeof(*gs), cmp_queue_kind);
    for (i = 0; i < v->ngroups; i = j) {
        memset(sum, 0, sizeof(sum));
        /* interned: equal names are the same pointer */
        for (j = i; j < v->ngroups && gs[j]->queue == gs[i]->queue &&
                    gs[j]->kind == gs[i]->kind;
             j++) {
            for (k = 0; k < 3; k++) {
                sum[k] += gs[j]->st[finals[k]];
            }
        }
        for (k = 0; k < 3; k++) {
            fn(arg, gs[i]->queue, gs[i]->kind, finals[k], (int64_t)sum[k]);
        }
    }
    trib_free(gs);
}
