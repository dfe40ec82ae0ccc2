/*
 * view_save.c -- the view as one versioned msgpack image (store.c writes it
 * to disk as the snapshot), and back.
 *
 * Image: ["tributary.view", VERSION, {key: value}] with integer keys
 *   0 counters  [events_applied, duplicates, invalid, batches, gaps,
 *                groups_overflow_events, failures_other, tags_overflow]
 *   1 agents    [[id, host, version, pid, boot_id, started_at,
 *                 heartbeat_ms, hello_us, hb_us, disconnected_us,
 *                 goodbye_us, stopped, sample|nil, clients, boots]]
 *               sample  [at, cpu_user_us, cpu_sys_us, rss_bytes, threads,
 *                        outbox_events, outbox_bytes, db_conns, boot_id,
 *                        last_seq]
 *               client  [id, mode|nil, [queue], in_flight, fetch_paused,
 *                        [paused queue]]
 *               boot    [boot_id, applied, durable]
 *   2 groups    [[agent index|nil ("(other)"), client, queue, kind,
 *                 [count per event kind], [count per state], retryable,
 *                 [5 histograms (hist.h)], series|nil]]
 *               series  [head, [[second, finished, failed]]] (non-zero)
 *   3 failures  [[kind, error, count, discarded, first_seen, last_seen,
 *                 [job id], [queue], [agent index]]]
 *   4 tags      [[tag, group index, finished, failed]]
 * Arrays may carry extra trailing elements and the map unknown keys (a
 * newer build of the same VERSION adds them; they are skipped). The ring
 * of recent events is not saved.
 *
 * Loading never trusts the image: trib_mp_check() bounds what msgpack-c
 * allocates, then every value is type- and range-checked and every
 * reference (agent, group index) and uniqueness rule verified; anything
 * wrong answers TRIB_EPROTO and leaves the view as it was.
 */
#include <string.h>

#include "trib_err.h"
#include "trib_mem.h"
#include "trib_mp.h"
#include "view_impl.h"

#define IMAGE_MAGIC   "tributary.view"
#define IMAGE_VERSION 1
#define HOST_MAX      1024 /* host and version text in an image */
/* a series' newest second: well inside int64 arithmetic */
#define SERIES_HEAD_MAX (1LL << 40)

enum { K_COUNTERS, K_AGENTS, K_GROUPS, K_FAILURES, K_TAGS };

/* ------------------------------------------------------------- saving */

static int sb_write(void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sb = data;
    size_t n;

    if (sb->alloc - sb->size < len) {
        n = sb->alloc ? sb->alloc * 2 : 8192;
        while (n - sb->size < len) {
            n *= 2;
        }
        sb->data = trib_realloc(sb->data, n); /* aborts on OOM */
        sb->alloc = n;
    }
    memcpy(sb->data + sb->size, buf, len);
    sb->size += len;
    return 0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n;

    if (s == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    n = strlen(s);
    msgpack_pack_str_with_body(pk, s, n);
}

/* Interned strings may hold a NUL: pack their full length. */
static void pack_vstr(msgpack_packer *pk, const char *s)
{
    if (s == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_str_with_body(pk, s, trib__vstr_len(s));
}

static void save_agent(msgpack_packer *pk, const struct vagent *a)
{
    const struct vsample *s = &a->sample;
    const struct vclient *c;
    int i, q;

    msgpack_pack_array(pk, 15);
    pack_vstr(pk, a->id);
    pack_str(pk, a->host);
    pack_str(pk, a->version);
    msgpack_pack_int64(pk, a->pid);
    msgpack_pack_uint64(pk, a->boot_id);
    msgpack_pack_int64(pk, a->started_at);
    msgpack_pack_int64(pk, a->heartbeat_ms);
    msgpack_pack_int64(pk, a->hello_us);
    msgpack_pack_int64(pk, a->hb_us);
    msgpack_pack_int64(pk, a->disconnected_us);
    msgpack_pack_int64(pk, a->goodbye_us);
    msgpack_pack_int(pk, a->stopped);
    if (a->has_sample) {
        msgpack_pack_array(pk, 10);
        msgpack_pack_int64(pk, s->at);
        msgpack_pack_int64(pk, s->cpu_user_us);
        msgpack_pack_int64(pk, s->cpu_sys_us);
        msgpack_pack_int64(pk, s->rss_bytes);
        msgpack_pack_int64(pk, s->threads);
        msgpack_pack_int64(pk, s->outbox_events);
        msgpack_pack_int64(pk, s->outbox_bytes);
        msgpack_pack_int64(pk, s->db_conns);
        msgpack_pack_uint64(pk, s->boot_id);
        msgpack_pack_uint64(pk, s->last_seq);
    } else {
        msgpack_pack_nil(pk);
    }
    msgpack_pack_array(pk, (size_t)a->nclients);
    for (i = 0; i < a->nclients; i++) {
        c = &a->clients[i];
        msgpack_pack_array(pk, 6);
        pack_vstr(pk, c->id);
        pack_vstr(pk, c->mode);
        msgpack_pack_array(pk, (size_t)c->nqueues);
        for (q = 0; q < c->nqueues; q++) {
            pack_vstr(pk, c->queues[q]);
        }
        msgpack_pack_int64(pk, c->in_flight);
        msgpack_pack_int(pk, c->fetch_paused);
        msgpack_pack_array(pk, (size_t)c->npaused);
        for (q = 0; q < c->npaused; q++) {
            pack_vstr(pk, c->paused[q]);
        }
    }
    msgpack_pack_array(pk, (size_t)a->nboots);
    for (i = 0; i < a->nboots; i++) {
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, a->boots[i].id);
        msgpack_pack_uint64(pk, a->boots[i].applied);
        msgpack_pack_uint64(pk, a->boots[i].durable);
    }
}

static void save_series(msgpack_packer *pk, const struct vseries *s)
{
    int64_t t;
    size_t n = 0;

    if (s == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    for (t = s->head - VIEW_SERIES_SECS + 1; t <= s->head; t++) {
        uint64_t fin = 0;

        trib__view_series_sum(s, t, t, &fin, NULL);
        n += fin != 0;
    }
    msgpack_pack_array(pk, 2);
    msgpack_pack_int64(pk, s->head);
    msgpack_pack_array(pk, n);
    for (t = s->head - VIEW_SERIES_SECS + 1; t <= s->head; t++) {
        uint64_t fin = 0, fail = 0;

        trib__view_series_sum(s, t, t, &fin, &fail);
        if (fin != 0) {
            msgpack_pack_array(pk, 3);
            msgpack_pack_int64(pk, t);
            msgpack_pack_uint64(pk, fin);
            msgpack_pack_uint64(pk, fail);
        }
    }
}

static void save_group(msgpack_packer *pk, const struct vgroup *g)
{
    int k;

    msgpack_pack_array(pk, 9);
    if (g->agent != NULL) {
        msgpack_pack_uint32(pk, g->agent->index);
    } else {
        msgpack_pack_nil(pk);
    }
    pack_vstr(pk, g->client);
    pack_vstr(pk, g->queue);
    pack_vstr(pk, g->kind);
    msgpack_pack_array(pk, TRIB_EV_KINDS);
    for (k = 0; k < TRIB_EV_KINDS; k++) {
        msgpack_pack_uint64(pk, g->ev[k]);
    }
    msgpack_pack_array(pk, TRIB_WS_COUNT);
    for (k = 0; k < TRIB_WS_COUNT; k++) {
        msgpack_pack_uint64(pk, g->st[k]);
    }
    msgpack_pack_uint64(pk, g->retryable);
    msgpack_pack_array(pk, VH_COUNT);
    for (k = 0; k < VH_COUNT; k++) {
        trib_hist_save(&g->h[k], pk);
    }
    save_series(pk, g->series);
}

static void save_failure(msgpack_packer *pk, const struct vfail *f)
{
    int i;

    msgpack_pack_array(pk, 9);
    pack_vstr(pk, f->kind);
    pack_vstr(pk, f->error);
    msgpack_pack_uint64(pk, f->count);
    msgpack_pack_uint64(pk, f->discarded);
    msgpack_pack_int64(pk, f->first_seen);
    msgpack_pack_int64(pk, f->last_seen);
    msgpack_pack_array(pk, (size_t)f->nsamples);
    for (i = 0; i < f->nsamples; i++) {
        msgpack_pack_int64(pk, f->samples[i]);
    }
    msgpack_pack_array(pk, (size_t)f->nqueues);
    for (i = 0; i < f->nqueues; i++) {
        pack_vstr(pk, f->queues[i]);
    }
    msgpack_pack_array(pk, (size_t)f->nnodes);
    for (i = 0; i < f->nnodes; i++) {
        msgpack_pack_uint32(pk, f->nodes[i]->index);
    }
}

int trib_view_save(const struct trib_view *v, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    uint32_t i;

    msgpack_packer_init(&pk, sb, sb_write);
    msgpack_pack_array(&pk, 3);
    pack_str(&pk, IMAGE_MAGIC);
    msgpack_pack_uint32(&pk, IMAGE_VERSION);
    msgpack_pack_map(&pk, 5);

    msgpack_pack_int(&pk, K_COUNTERS);
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint64(&pk, v->events_applied);
    msgpack_pack_uint64(&pk, v->duplicates);
    msgpack_pack_uint64(&pk, v->invalid);
    msgpack_pack_uint64(&pk, v->batches);
    msgpack_pack_uint64(&pk, v->gaps);
    msgpack_pack_uint64(&pk, v->groups_overflow_events);
    msgpack_pack_uint64(&pk, v->fail_other);
    msgpack_pack_uint64(&pk, v->tag_overflow);

    msgpack_pack_int(&pk, K_AGENTS);
    msgpack_pack_array(&pk, v->nagents);
    for (i = 0; i < v->nagents; i++) {
        save_agent(&pk, v->agents[i]);
    }
    msgpack_pack_int(&pk, K_GROUPS);
    msgpack_pack_array(&pk, v->ngroups);
    for (i = 0; i < v->ngroups; i++) {
        save_group(&pk, v->groups[i]);
    }
    msgpack_pack_int(&pk, K_FAILURES);
    msgpack_pack_array(&pk, v->nfails);
    for (i = 0; i < v->nfails; i++) {
        save_failure(&pk, v->fails[i]);
    }
    msgpack_pack_int(&pk, K_TAGS);
    msgpack_pack_array(&pk, v->ntags);
    for (i = 0; i < v->ntags; i++) {
        msgpack_pack_array(&pk, 4);
        pack_vstr(&pk, v->tags[i]->tag);
        msgpack_pack_uint32(&pk, v->tags[i]->group->index);
        msgpack_pack_uint64(&pk, v->tags[i]->finished);
        msgpack_pack_uint64(&pk, v->tags[i]->failed);
    }
    return 0;
}

/* ------------------------------------------------------------ loading */

/* A reader with a sticky error: after the first bad value every read
 * returns a harmless default, and the caller checks rd->err once. */
struct rd {
    struct trib_view *v; /* the view being built */
    int err;
};

static const msgpack_object nil_obj = {MSGPACK_OBJECT_NIL, {0}};

static const msgpack_object *at(struct rd *r, const msgpack_object *a,
                                uint32_t i)
{
    if (a->type != MSGPACK_OBJECT_ARRAY || i >= a->via.array.size) {
        r->err = TRIB_EPROTO;
        return &nil_obj;
    }
    return &a->via.array.ptr[i];
}

/* The array's size (0 and an error when o is not an array of <= max). */
static uint32_t arr(struct rd *r, const msgpack_object *o, uint32_t max)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > max) {
        r->err = TRIB_EPROTO;
        return 0;
    }
    return o->via.array.size;
}

static uint64_t u64(struct rd *r, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        r->err = TRIB_EPROTO;
        return 0;
    }
    return o->via.u64;
}

static int64_t i64(struct rd *r, const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        return o->via.i64;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)INT64_MAX) {
        return (int64_t)o->via.u64;
    }
    r->err = TRIB_EPROTO;
    return 0;
}

/* An interned string (nil_ok: nil reads as NULL). */
static const char *str(struct rd *r, const msgpack_object *o, uint32_t max,
                       int nil_ok)
{
    if (nil_ok && o->type == MSGPACK_OBJECT_NIL) {
        return NULL;
    }
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max) {
        r->err = TRIB_EPROTO;
        return NULL;
    }
    return trib__view_intern(r->v, o->via.str.ptr, o->via.str.size);
}

static struct trib_str raw(const char *interned)
{
    struct trib_str s = {interned ? interned : "",
                         interned ? trib__vstr_len(interned) : 0};

    return s;
}

static void load_client(struct rd *r, struct vagent *a, const msgpack_object *o)
{
    struct vclient *c;
    const char *id = str(r, at(r, o, 0), TRIB_WIRE_STR_MAX, 0);
    uint32_t nq, np, i;

    if (r->err != 0 || trib__view_client(r->v, a, raw(id), 0) != NULL) {
        r->err = TRIB_EPROTO; /* duplicate client */
        return;
    }
    c = trib__view_client(r->v, a, raw(id), 1);
    c->mode = str(r, at(r, o, 1), TRIB_WIRE_STR_MAX, 1);
    nq = arr(r, at(r, o, 2), TRIB_WIRE_MAX_QUEUES);
    c->queues = trib__view_alloc(r->v, (size_t)nq * sizeof(const char *));
    c->nqueues = (int)nq;
    for (i = 0; i < nq; i++) {
        c->queues[i] = str(r, at(r, at(r, o, 2), i), TRIB_WIRE_STR_MAX, 0);
    }
    c->in_flight = i64(r, at(r, o, 3));
    c->fetch_paused = u64(r, at(r, o, 4)) != 0;
    np = arr(r, at(r, o, 5), VIEW_MAX_PAUSED);
    for (i = 0; i < np; i++) {
        c->paused[c->npaused++] =
            str(r, at(r, at(r, o, 5), i), TRIB_WIRE_STR_MAX, 0);
    }
}

static void load_agent(struct rd *r, const msgpack_object *o)
{
    const char *id = str(r, at(r, o, 0), TRIB_WIRE_STR_MAX, 0);
    const msgpack_object *s, *cs, *bs, *h;
    struct vagent *a;
    struct vsample *sm;
    uint32_t n, i, j;

    if (r->err != 0 || trib__view_agent(r->v, raw(id)) != NULL) {
        r->err = TRIB_EPROTO; /* duplicate agent */
        return;
    }
    a = trib__view_agent_get(r->v, raw(id));
    h = at(r, o, 1);
    if (h->type == MSGPACK_OBJECT_STR && h->via.str.size <= HOST_MAX &&
        memchr(h->via.str.ptr, 0, h->via.str.size) == NULL) {
        a->host = trib__view_alloc(r->v, h->via.str.size + 1);
        memcpy(a->host, h->via.str.ptr, h->via.str.size);
    } else if (h->type != MSGPACK_OBJECT_NIL) {
        r->err = TRIB_EPROTO;
    }
    h = at(r, o, 2);
    if (h->type == MSGPACK_OBJECT_STR && h->via.str.size <= HOST_MAX &&
        memchr(h->via.str.ptr, 0, h->via.str.size) == NULL) {
        a->version = trib__view_alloc(r->v, h->via.str.size + 1);
        memcpy(a->version, h->via.str.ptr, h->via.str.size);
    } else if (h->type != MSGPACK_OBJECT_NIL) {
        r->err = TRIB_EPROTO;
    }
    a->pid = i64(r, at(r, o, 3));
    a->boot_id = u64(r, at(r, o, 4));
    a->started_at = i64(r, at(r, o, 5));
    a->heartbeat_ms = i64(r, at(r, o, 6));
    a->hello_us = i64(r, at(r, o, 7));
    a->hb_us = i64(r, at(r, o, 8));
    a->disconnected_us = i64(r, at(r, o, 9));
    a->goodbye_us = i64(r, at(r, o, 10));
    a->stopped = u64(r, at(r, o, 11)) != 0;
    s = at(r, o, 12);
    if (s->type != MSGPACK_OBJECT_NIL) {
        sm = &a->sample;
        a->has_sample = 1;
        sm->at = i64(r, at(r, s, 0));
        sm->cpu_user_us = i64(r, at(r, s, 1));
        sm->cpu_sys_us = i64(r, at(r, s, 2));
        sm->rss_bytes = i64(r, at(r, s, 3));
        sm->threads = i64(r, at(r, s, 4));
        sm->outbox_events = i64(r, at(r, s, 5));
        sm->outbox_bytes = i64(r, at(r, s, 6));
        sm->db_conns = i64(r, at(r, s, 7));
        sm->boot_id = u64(r, at(r, s, 8));
        sm->last_seq = u64(r, at(r, s, 9));
    }
    cs = at(r, o, 13);
    n = arr(r, cs, TRIB_WIRE_MAX_CLIENTS);
    for (i = 0; i < n && r->err == 0; i++) {
        load_client(r, a, at(r, cs, i));
    }
    bs = at(r, o, 14);
    n = arr(r, bs, VIEW_MAX_BOOTS);
    for (i = 0; i < n && r->err == 0; i++) {
        struct vboot *b = &a->boots[a->nboots++];

        b->id = u64(r, at(r, at(r, bs, i), 0));
        b->applied = u64(r, at(r, at(r, bs, i), 1));
        b->durable = u64(r, at(r, at(r, bs, i), 2));
        for (j = 0; j < i; j++) {
            if (a->boots[j].id == b->id) {
                r->err = TRIB_EPROTO; /* duplicate boot */
            }
        }
        if (b->durable > b->applied) {
            r->err = TRIB_EPROTO;
        }
    }
}

static void load_series(struct rd *r, struct vgroup *g, const msgpack_object *o)
{
    const msgpack_object *e;
    int64_t head, sec;
    uint64_t fin, fail;
    uint32_t n, i;

    if (o->type == MSGPACK_OBJECT_NIL) {
        return;
    }
    head = i64(r, at(r, o, 0));
    if (head < -SERIES_HEAD_MAX || head > SERIES_HEAD_MAX) {
        r->err = TRIB_EPROTO;
    }
    n = arr(r, at(r, o, 1), VIEW_SERIES_SECS);
    if (r->err != 0) {
        return;
    }
    trib__view_series_add(r->v, g, head, 0, 0); /* sets head */
    for (i = 0; i < n && r->err == 0; i++) {
        e = at(r, at(r, o, 1), i);
        sec = i64(r, at(r, e, 0));
        fin = u64(r, at(r, e, 1));
        fail = u64(r, at(r, e, 2));
        if (sec > head || sec <= head - VIEW_SERIES_SECS || fin > UINT32_MAX ||
            fail > fin) {
            r->err = TRIB_EPROTO;
            return;
        }
        trib__view_series_add(r->v, g, sec, (uint32_t)fin, (uint32_t)fail);
    }
}

static void load_group(struct rd *r, const msgpack_object *o)
{
    const msgpack_object *ai = at(r, o, 0), *hs;
    struct vagent *a = NULL;
    const char *client, *queue, *kind;
    struct vgroup *g;
    uint64_t idx;
    int k;

    if (ai->type != MSGPACK_OBJECT_NIL) {
        idx = u64(r, ai);
        if (idx >= r->v->nagents) {
            r->err = TRIB_EPROTO;
            return;
        }
        a = r->v->agents[idx];
    } else if (r->v->overflow != NULL) {
        r->err = TRIB_EPROTO; /* two "(other)" groups */
        return;
    }
    client = str(r, at(r, o, 1), TRIB_WIRE_STR_MAX, 0);
    queue = str(r, at(r, o, 2), TRIB_WIRE_STR_MAX, 0);
    kind = str(r, at(r, o, 3), TRIB_WIRE_STR_MAX, 0);
    if (r->err != 0) {
        return;
    }
    if (a != NULL &&
        trib__view_group_find(r->v, a, client, queue, kind) != NULL) {
        r->err = TRIB_EPROTO; /* duplicate group */
        return;
    }
    g = trib__view_group_new(r->v, a, client, queue, kind);
    if (arr(r, at(r, o, 4), UINT32_MAX) < TRIB_EV_KINDS ||
        arr(r, at(r, o, 5), UINT32_MAX) < TRIB_WS_COUNT) {
        r->err = TRIB_EPROTO;
        return;
    }
    for (k = 0; k < TRIB_EV_KINDS; k++) {
        g->ev[k] = u64(r, at(r, at(r, o, 4), (uint32_t)k));
    }
    for (k = 0; k < TRIB_WS_COUNT; k++) {
        g->st[k] = u64(r, at(r, at(r, o, 5), (uint32_t)k));
    }
    g->retryable = u64(r, at(r, o, 6));
    hs = at(r, o, 7);
    if (arr(r, hs, UINT32_MAX) < VH_COUNT) {
        r->err = TRIB_EPROTO;
        return;
    }
    for (k = 0; k < VH_COUNT && r->err == 0; k++) {
        if (trib_hist_load(&g->h[k], at(r, hs, (uint32_t)k)) != 0) {
            r->err = TRIB_EPROTO;
        }
    }
    load_series(r, g, at(r, o, 8));
}

static void load_failure(struct rd *r, const msgpack_object *o)
{
    const char *kind = str(r, at(r, o, 0), TRIB_WIRE_STR_MAX, 0);
    const char *error = str(r, at(r, o, 1), VIEW_ERR_NORM_MAX, 0);
    struct vfail *f;
    uint32_t n, i;
    uint64_t idx;
    uint32_t k;

    if (r->err != 0) {
        return;
    }
    for (k = 0; k < r->v->nfails; k++) {
        if (r->v->fails[k]->kind == kind && r->v->fails[k]->error == error) {
            r->err = TRIB_EPROTO; /* duplicate (interned: same pointers) */
            return;
        }
    }
    f = trib__view_fail_new(r->v, kind, error);
    f->count = u64(r, at(r, o, 2));
    f->discarded = u64(r, at(r, o, 3));
    f->first_seen = i64(r, at(r, o, 4));
    f->last_seen = i64(r, at(r, o, 5));
    if (f->discarded > f->count) {
        r->err = TRIB_EPROTO;
    }
    n = arr(r, at(r, o, 6), VIEW_FAIL_SAMPLES);
    for (i = 0; i < n; i++) {
        f->samples[f->nsamples++] = i64(r, at(r, at(r, o, 6), i));
    }
    n = arr(r, at(r, o, 7), VIEW_FAIL_QUEUES);
    for (i = 0; i < n; i++) {
        f->queues[f->nqueues++] =
            str(r, at(r, at(r, o, 7), i), TRIB_WIRE_STR_MAX, 0);
        if (f->queues[f->nqueues - 1] == NULL) {
            f->nqueues--;
        }
    }
    n = arr(r, at(r, o, 8), VIEW_FAIL_QUEUES);
    for (i = 0; i < n && r->err == 0; i++) {
        idx = u64(r, at(r, at(r, o, 8), i));
        if (idx >= r->v->nagents) {
            r->err = TRIB_EPROTO;
            return;
        }
        f->nodes[f->nnodes++] = r->v->agents[idx];
    }
}

static void load_tag(struct rd *r, const msgpack_object *o)
{
    const char *tag = str(r, at(r, o, 0), TRIB_WIRE_STR_MAX, 0);
    uint64_t gi = u64(r, at(r, o, 1));
    struct vtag *t;
    uint32_t k;

    if (r->err != 0 || gi >= r->v->ngroups) {
        r->err = TRIB_EPROTO;
        return;
    }
    for (k = 0; k < r->v->ntags; k++) {
        if (r->v->tags[k]->tag == tag &&
            r->v->tags[k]->group == r->v->groups[gi]) {
            r->err = TRIB_EPROTO; /* duplicate */
            return;
        }
    }
    t = trib__view_tag_new(r->v, tag, r->v->groups[gi]);
    t->finished = u64(r, at(r, o, 2));
    t->failed = u64(r, at(r, o, 3));
    if (t->failed > t->finished) {
        r->err = TRIB_EPROTO;
    }
}

/* Calls fn for each element of the array under key, if present. */
static void each(struct rd *r, const msgpack_object *body, int key,
                 void (*fn)(struct rd *r, const msgpack_object *o))
{
    const msgpack_object_kv *kv = body->via.map.ptr;
    uint32_t i, j;

    for (i = 0; i < body->via.map.size; i++) {
        if (kv[i].key.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
            kv[i].key.via.u64 == (uint64_t)key) {
            for (j = 0; j < arr(r, &kv[i].val, UINT32_MAX) && r->err == 0;
                 j++) {
                fn(r, &kv[i].val.via.array.ptr[j]);
            }
        }
    }
}

static void load_counters(struct rd *r, const msgpack_object *o)
{
    struct trib_view *v = r->v;

    v->events_applied = u64(r, at(r, o, 0));
    v->duplicates = u64(r, at(r, o, 1));
    v->invalid = u64(r, at(r, o, 2));
    v->batches = u64(r, at(r, o, 3));
    v->gaps = u64(r, at(r, o, 4));
    v->groups_overflow_events = u64(r, at(r, o, 5));
    v->fail_other = u64(r, at(r, o, 6));
    v->tag_overflow = u64(r, at(r, o, 7));
    if (v->events_applied == UINT64_MAX) {
        r->err = TRIB_EPROTO; /* the next cursor must exist */
    }
}

static int load_body(struct trib_view *t, const msgpack_object *top)
{
    struct rd r = {t, 0};
    const msgpack_object *body, *magic, *ver;
    const msgpack_object_kv *kv;
    uint32_t i;

    if (top->type != MSGPACK_OBJECT_ARRAY || top->via.array.size < 3) {
        return TRIB_EPROTO;
    }
    magic = &top->via.array.ptr[0];
    ver = &top->via.array.ptr[1];
    body = &top->via.array.ptr[2];
    if (magic->type != MSGPACK_OBJECT_STR ||
        magic->via.str.size != strlen(IMAGE_MAGIC) ||
        memcmp(magic->via.str.ptr, IMAGE_MAGIC, strlen(IMAGE_MAGIC)) != 0 ||
        ver->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        body->type != MSGPACK_OBJECT_MAP) {
        return TRIB_EPROTO;
    }
    if (ver->via.u64 > IMAGE_VERSION) {
        return TRIB_EVERSION;
    }
    if (ver->via.u64 < 1) {
        return TRIB_EPROTO;
    }
    kv = body->via.map.ptr;
    for (i = 0; i < body->via.map.size; i++) {
        if (kv[i].key.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
            kv[i].key.via.u64 == K_COUNTERS) {
            load_counters(&r, &kv[i].val);
        }
    }
    /* order matters: groups refer to agents, tags to groups */
    each(&r, body, K_AGENTS, load_agent);
    each(&r, body, K_GROUPS, load_group);
    each(&r, body, K_FAILURES, load_failure);
    each(&r, body, K_TAGS, load_tag);
    t->ring_base = t->events_applied + 1;
    return r.err;
}

int trib_view_load(struct trib_view *v, const void *buf, size_t len)
{
    msgpack_unpacked up;
    struct trib_view *t = NULL, tmp;
    size_t off = 0;
    int rc;

    rc = trib_mp_check(buf, len, TRIB_MP_MAX_DEPTH);
    if (rc != 0) {
        return TRIB_EPROTO;
    }
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        msgpack_unpacked_destroy(&up);
        return TRIB_EPROTO;
    }
    rc = trib_view_new(&v->conf, &t);
    if (rc == 0) {
        rc = load_body(t, &up.data);
    }
    msgpack_unpacked_destroy(&up);
    if (rc != 0) {
        trib_view_free(t); /* NULL ok */
        return rc;
    }
    /* the new contents in v, the old ones in t, then free t */
    tmp = *v;
    *v = *t;
    *t = tmp;
    trib_view_free(t);
    return 0;
}
