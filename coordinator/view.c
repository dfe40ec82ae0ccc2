/*
 * view.c -- the view's lifecycle and plumbing (memory accounting, interned
 * strings, hash index), agents (HELLO, heartbeats, liveness) and their
 * boots (the exactly-once positions). Events: view_apply.c.
 */
#include <assert.h>
#include <limits.h>
#include <string.h>

#include "trib_err.h"
#include "trib_mem.h"
#include "view_impl.h"

void trib_view_conf_defaults(struct trib_view_conf *c)
{
    c->heartbeat_ms = 1000;
    c->late_after = 3;
    c->missing_after = 10;
    c->ring_events = 16384;
    c->max_failures = 1000;
    c->max_tags = 10000;
    c->max_groups = 100000;
}

/* ------------------------------------------------------------ memory */

void *trib__view_alloc(struct trib_view *v, size_t n)
{
    v->bytes += n;
    return trib_calloc(1, n);
}

void *trib__view_realloc(struct trib_view *v, void *p, size_t old, size_t n)
{
    v->bytes += n;
    v->bytes -= old;
    p = trib_realloc(p, n);
    if (n > old) {
        memset((char *)p + old, 0, n - old);
    }
    return p;
}

void trib__view_free(struct trib_view *v, void *p, size_t n)
{
    if (p != NULL) {
        v->bytes -= n;
        trib_free(p);
    }
}

void trib__view_push(struct trib_view *v, void ***items, uint32_t *n,
                     uint32_t *cap, void *item)
{
    uint32_t ncap;

    if (*n == *cap) {
        ncap = *cap ? *cap * 2 : 16;
        *items = trib__view_realloc(v, *items, *cap * sizeof(void *),
                                    ncap * sizeof(void *));
        *cap = ncap;
    }
    (*items)[(*n)++] = item;
}

/* -------------------------------------------------------------- hash */

uint64_t trib__view_hash(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ULL), w;

    while (n >= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    w = 0;
    if (n > 0) {
        memcpy(&w, s, n);
    }
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ULL;
    h ^= h >> 32;
    return h ? h : 1; /* 0 marks an empty index slot */
}

void *trib__vidx_find(const struct vidx *x, uint64_t h,
                      int (*eq)(const void *item, const void *key),
                      const void *key)
{
    uint32_t i, mask;

    if (x->cap == 0) {
        return NULL;
    }
    mask = x->cap - 1;
    for (i = (uint32_t)h & mask; x->hash[i] != 0; i = (i + 1) & mask) {
        if (x->hash[i] == h && eq(x->item[i], key)) {
            return x->item[i];
        }
    }
    return NULL;
}

static void vidx_put(struct vidx *x, uint64_t h, void *item)
{
    uint32_t i, mask = x->cap - 1;

    for (i = (uint32_t)h & mask; x->hash[i] != 0; i = (i + 1) & mask) {
    }
    x->hash[i] = h;
    x->item[i] = item;
}

void trib__vidx_add(struct trib_view *v, struct vidx *x, uint64_t h, void *item)
{
    struct vidx old = *x;
    uint32_t i;

    if ((x->n + 1) * 2 > x->cap) { /* keep the load under 1/2 */
        x->cap = old.cap ? old.cap * 2 : 16;
        x->hash = trib__view_alloc(v, x->cap * sizeof(uint64_t));
        x->item = trib__view_alloc(v, x->cap * sizeof(void *));
        for (i = 0; i < old.cap; i++) {
            if (old.hash[i] != 0) {
                vidx_put(x, old.hash[i], old.item[i]);
            }
        }
        trib__view_free(v, old.hash, old.cap * sizeof(uint64_t));
        trib__view_free(v, old.item, old.cap * sizeof(void *));
    }
    vidx_put(x, h, item);
    x->n++;
}

void trib__vidx_fini(struct trib_view *v, struct vidx *x)
{
    trib__view_free(v, x->hash, x->cap * sizeof(uint64_t));
    trib__view_free(v, x->item, x->cap * sizeof(void *));
    memset(x, 0, sizeof(*x));
}

/* ---------------------------------------------------- interned strings */

static int str_eq(const void *item, const void *key)
{
    const struct vstr *s = item;
    const struct trib_str *k = key;

    return s->len == k->n && (k->n == 0 || memcmp(s->s, k->p, k->n) == 0);
}

const char *trib__view_intern(struct trib_view *v, const char *s, size_t n)
{
    struct trib_str key = {s, (uint32_t)n};
    uint64_t h = trib__view_hash(s, n, 0);
    struct vstr *e = trib__vidx_find(&v->strs, h, str_eq, &key);

    if (e == NULL) {
        e = trib__view_alloc(v, sizeof(*e) + n + 1);
        e->len = (uint32_t)n;
        e->hash = h;
        if (n > 0) {
            memcpy(e->s, s, n);
        }
        trib__vidx_add(v, &v->strs, h, e);
    }
    return e->s;
}

static const char *intern_str(struct trib_view *v, struct trib_str s)
{
    return trib__view_intern(v, s.p ? s.p : "", s.p ? s.n : 0);
}

/* --------------------------------------------------------- lifecycle */

int trib_view_new(const struct trib_view_conf *conf, struct trib_view **out)
{
    struct trib_view *v;
    struct trib_view_conf c;

    if (conf == NULL) {
        trib_view_conf_defaults(&c);
    } else {
        c = *conf;
    }
    if (c.heartbeat_ms <= 0 || c.heartbeat_ms > 3600000 || c.late_after <= 0 ||
        c.missing_after < c.late_after || c.missing_after > 100000 ||
        c.max_groups == 0 || c.ring_events > (1u << 24)) {
        return TRIB_EINVAL;
    }
    v = TRIB_NEW(struct trib_view);
    v->bytes = sizeof(*v);
    v->conf = c;
    v->ring_base = 1;
    trib__view_ring_init(v);
    *out = v;
    return 0;
}

void trib__view_agent_free(struct trib_view *v, struct vagent *a)
{
    int i;

    for (i = 0; i < a->nclients; i++) {
        trib__view_free(v, a->clients[i].queues,
                        (size_t)a->clients[i].nqueues * sizeof(char *));
    }
    trib__view_free(v, a->clients,
                    TRIB_WIRE_MAX_CLIENTS * sizeof(struct vclient));
    trib__view_free(v, a->boots, VIEW_MAX_BOOTS * sizeof(struct vboot));
    if (a->host) {
        trib__view_free(v, a->host, strlen(a->host) + 1);
    }
    if (a->version) {
        trib__view_free(v, a->version, strlen(a->version) + 1);
    }
    trib__view_free(v, a, sizeof(*a));
}

void trib_view_free(struct trib_view *v)
{
    uint32_t i;

    if (v == NULL) {
        return;
    }
    for (i = 0; i < v->ngroups; i++) {
        trib__view_group_free(v, v->groups[i]);
    }
    for (i = 0; i < v->nagents; i++) {
        trib__view_agent_free(v, v->agents[i]);
    }
    for (i = 0; i < v->nfails; i++) {
        trib__view_free(v, v->fails[i], sizeof(struct vfail));
    }
    for (i = 0; i < v->ntags; i++) {
        trib__view_free(v, v->tags[i], sizeof(struct vtag));
    }
    for (i = 0; i < v->strs.cap; i++) {
        if (v->strs.hash[i] != 0) {
            struct vstr *s = v->strs.item[i];

            trib__view_free(v, s, sizeof(*s) + s->len + 1);
        }
    }
    trib__view_free(v, v->groups, v->capgroups * sizeof(void *));
    trib__view_free(v, v->agents, v->capagents * sizeof(void *));
    trib__view_free(v, v->fails, v->capfails * sizeof(void *));
    trib__view_free(v, v->tags, v->captags * sizeof(void *));
    trib__vidx_fini(v, &v->strs);
    trib__vidx_fini(v, &v->agent_idx);
    trib__vidx_fini(v, &v->group_idx);
    trib__vidx_fini(v, &v->fail_idx);
    trib__vidx_fini(v, &v->tag_idx);
    trib__vidx_fini(v, &v->clients);
    trib__view_free(v, v->ring,
                    (size_t)v->conf.ring_events * sizeof(struct vslot));
    /* every allocation was given back with its size: the accounting that
     * trib_view_stats() reports is exact (checked in debug builds) */
    assert(v->bytes == sizeof(*v));
    trib_free(v);
}

/* ------------------------------------------------------------ agents */

static int agent_eq(const void *item, const void *key)
{
    return trib__vstr_eq(((const struct vagent *)item)->id,
                         *(const struct trib_str *)key);
}

struct vagent *trib__view_agent(const struct trib_view *v, struct trib_str id)
{
    return trib__vidx_find(&v->agent_idx, trib__view_hash(id.p, id.n, 0),
                           agent_eq, &id);
}

struct vagent *trib__view_agent_get(struct trib_view *v, struct trib_str id)
{
    struct vagent *a = trib__view_agent(v, id);

    if (a != NULL) {
        return a;
    }
    a = trib__view_alloc(v, sizeof(*a));
    a->id = intern_str(v, id);
    a->index = v->nagents;
    a->clients =
        trib__view_alloc(v, TRIB_WIRE_MAX_CLIENTS * sizeof(struct vclient));
    a->boots = trib__view_alloc(v, VIEW_MAX_BOOTS * sizeof(struct vboot));
    trib__view_push(v, (void ***)&v->agents, &v->nagents, &v->capagents, a);
    trib__vidx_add(v, &v->agent_idx, trib__view_hash(id.p, id.n, 0), a);
    return a;
}

static int client_eq(const void *item, const void *key)
{
    return item == key; /* interned */
}

void trib__view_client_seen(struct trib_view *v, const char *id)
{
    uint64_t h = trib__view_hash(id, trib__vstr_len(id), 0);

    if (trib__vidx_find(&v->clients, h, client_eq, id) == NULL) {
        trib__vidx_add(v, &v->clients, h, (void *)id);
    }
}

struct vclient *trib__view_client(struct trib_view *v, struct vagent *a,
                                  struct trib_str id, int create)
{
    struct vclient *c;
    int i;

    for (i = 0; i < a->nclients; i++) {
        if (trib__vstr_eq(a->clients[i].id, id)) {
            return &a->clients[i];
        }
    }
    if (!create || a->nclients == TRIB_WIRE_MAX_CLIENTS) {
        return NULL;
    }
    c = &a->clients[a->nclients++];
    memset(c, 0, sizeof(*c));
    c->id = intern_str(v, id);
    trib__view_client_seen(v, c->id);
    return c;
}

static void replace_str(struct trib_view *v, char **dst, struct trib_str s)
{
    uint32_t i;

    if (*dst != NULL) {
        trib__view_free(v, *dst, strlen(*dst) + 1);
    }
    *dst = trib__view_alloc(v, (size_t)s.n + 1);
    for (i = 0; i < s.n; i++) { /* a C string: no NUL inside */
        (*dst)[i] = s.p[i] != 0 ? s.p[i] : '?';
    }
}

void trib_view_hello(struct trib_view *v, const struct trib_wire_hello *h,
                     int64_t now_us)
{
    struct vagent *a = trib__view_agent_get(v, h->agent_id);
    struct vclient old[TRIB_WIRE_MAX_CLIENTS], *c;
    int nold = a->nclients, i, j, q;

    replace_str(v, &a->host, h->host);
    replace_str(v, &a->version, h->version);
    a->pid = h->pid;
    a->boot_id = h->boot_id;
    a->started_at = h->started_at;
    a->heartbeat_ms = h->heartbeat_ms;
    a->hello_us = now_us;
    a->connected = 1;
    a->stopped = 0;
    trib__view_boot_get(v, a, h->boot_id);

    /* The client list is the HELLO's; a client seen before keeps its
     * paused queues and in-flight sample. */
    memcpy(old, a->clients, sizeof(old[0]) * (size_t)nold);
    a->nclients = 0;
    for (i = 0; i < h->nclients && i < TRIB_WIRE_MAX_CLIENTS; i++) {
        c = &a->clients[a->nclients++];
        memset(c, 0, sizeof(*c));
        c->id = intern_str(v, h->clients[i].id);
        trib__view_client_seen(v, c->id);
        c->mode = intern_str(v, h->clients[i].mode);
        c->nqueues = h->clients[i].nqueues;
        if (c->nqueues > TRIB_WIRE_MAX_QUEUES) {
            c->nqueues = TRIB_WIRE_MAX_QUEUES;
        }
        c->queues =
            trib__view_alloc(v, (size_t)c->nqueues * sizeof(const char *));
        for (q = 0; q < c->nqueues; q++) {
            c->queues[q] = intern_str(v, h->clients[i].queues[q]);
        }
        for (j = 0; j < nold; j++) {
            if (old[j].id == c->id) {
                c->in_flight = old[j].in_flight;
                c->fetch_paused = old[j].fetch_paused;
                memcpy(c->paused, old[j].paused, sizeof(c->paused));
                c->npaused = old[j].npaused;
            }
        }
    }
    for (j = 0; j < nold; j++) {
        trib__view_free(v, old[j].queues,
                        (size_t)old[j].nqueues * sizeof(char *));
    }
}

void trib_view_heartbeat(struct trib_view *v, struct trib_str agent_id,
                         const struct trib_wire_heartbeat *hb, int64_t now_us)
{
    struct vagent *a = trib__view_agent_get(v, agent_id);
    struct vsample *s = &a->sample;
    struct vclient *c;
    int i;

    a->hb_us = now_us;
    a->has_sample = 1;
    s->at = hb->at;
    s->cpu_user_us = hb->cpu_user_us;
    s->cpu_sys_us = hb->cpu_sys_us;
    s->rss_bytes = hb->rss_bytes;
    s->threads = hb->threads;
    s->outbox_events = hb->outbox_events;
    s->outbox_bytes = hb->outbox_bytes;
    s->db_conns = hb->db_conns;
    s->boot_id = hb->boot_id;
    s->last_seq = hb->last_seq;
    for (i = 0; i < hb->nclients && i < TRIB_WIRE_MAX_CLIENTS; i++) {
        c = trib__view_client(v, a, hb->clients[i].id, 1);
        if (c != NULL) {
            c->in_flight = hb->clients[i].in_flight;
            c->fetch_paused = hb->clients[i].fetch_paused;
        }
    }
}

void trib_view_goodbye(struct trib_view *v, struct trib_str agent_id,
                       int64_t now_us)
{
    struct vagent *a = trib__view_agent_get(v, agent_id);
    int i;

    a->stopped = 1;
    a->connected = 0;
    a->goodbye_us = now_us;
    for (i = 0; i < a->nclients; i++) {
        a->clients[i].in_flight = 0; /* a clean stop leaves nothing running */
    }
}

void trib_view_disconnected(struct trib_view *v, struct trib_str agent_id,
                            int64_t now_us)
{
    struct vagent *a = trib__view_agent(v, agent_id);

    if (a != NULL) {
        a->connected = 0;
        a->disconnected_us = now_us;
    }
}

const char *trib__view_liveness(const struct trib_view *v,
                                const struct vagent *a, int64_t now_us,
                                int64_t *age_us)
{
    /* the agent's own period when it gave a plausible one (<= 1 h) */
    int64_t period = (a->heartbeat_ms > 0 && a->heartbeat_ms <= 3600000
                          ? a->heartbeat_ms
                          : v->conf.heartbeat_ms) *
                     1000;
    int64_t last = a->hb_us > a->hello_us ? a->hb_us : a->hello_us;

    if (__builtin_sub_overflow(now_us, last, age_us)) {
        *age_us = INT64_MAX; /* times from a corrupt image */
    }
    if (a->stopped) {
        return "stopped";
    }
    if (last == 0 || *age_us > period * v->conf.missing_after) {
        return "missing";
    }
    if (*age_us > period * v->conf.late_after) {
        return "late";
    }
    return "alive";
}

int trib_view_client_known(const struct trib_view *v, const char *client_id)
{
    struct trib_str key = trib_str_c(client_id);
    uint64_t h = trib__view_hash(key.p, key.n, 0);
    uint32_t i, mask;

    /* the index holds interned pointers: compare their text */
    if (v->clients.cap == 0 || client_id == NULL) {
        return 0;
    }
    mask = v->clients.cap - 1;
    for (i = (uint32_t)h & mask; v->clients.hash[i] != 0; i = (i + 1) & mask) {
        if (v->clients.hash[i] == h && trib__vstr_eq(v->clients.item[i], key)) {
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- boots */

struct vboot *trib__view_boot_get(struct trib_view *v, struct vagent *a,
                                  uint64_t boot_id)
{
    struct vboot *b;
    int i;

    for (i = 0; i < a->nboots; i++) {
        if (a->boots[i].id == boot_id) {
            return &a->boots[i];
        }
    }
    if (a->nboots == VIEW_MAX_BOOTS) {
        /* An agent keeps at most TRIB_WIRE_MAX_BOOTS boots with events;
         * past twice that, the oldest boot that is not the current one is
         * forgotten (its events are long gone from the agent). */
        i = a->boots[0].id == a->boot_id ? 1 : 0;
        memmove(&a->boots[i], &a->boots[i + 1],
                sizeof(a->boots[0]) * (size_t)(a->nboots - i - 1));
        a->nboots--;
    }
    b = &a->boots[a->nboots++];
    b->id = boot_id;
    b->applied = 0;
    b->durable = 0;
    return b;
}

static const struct vboot *boot_find(const struct vagent *a, uint64_t boot_id)
{
    int i;

    for (i = 0; i < a->nboots; i++) {
        if (a->boots[i].id == boot_id) {
            return &a->boots[i];
        }
    }
    return NULL;
}

int trib_view_boots(const struct trib_view *v, struct trib_str agent_id,
                    struct trib_wire_boot_pos *out, int max)
{
    const struct vagent *a = trib__view_agent(v, agent_id);
    int i, n = 0;

    if (a == NULL) {
        return 0;
    }
    for (i = 0; i < a->nboots && n < max; i++) {
        out[n].boot_id = a->boots[i].id;
        out[n].applied = a->boots[i].applied;
        out[n].durable = a->boots[i].durable;
        n++;
    }
    return n;
}

void trib_view_forget_boots(struct trib_view *v, struct trib_str agent_id,
                            uint64_t current, const uint64_t *keep, int nkeep)
{
    struct vagent *a = trib__view_agent(v, agent_id);
    int i, j, n = 0, kept;

    if (a == NULL) {
        return;
    }
    for (i = 0; i < a->nboots; i++) {
        kept = a->boots[i].id == current;
        for (j = 0; j < nkeep && !kept; j++) {
            kept = a->boots[i].id == keep[j];
        }
        if (kept) {
            a->boots[n++] = a->boots[i];
        }
    }
    a->nboots = n;
}

void trib_view_set_durable(struct trib_view *v, struct trib_str agent_id,
                           uint64_t boot_id, uint64_t seq)
{
    struct vagent *a = trib__view_agent(v, agent_id);
    struct vboot *b;
    int i;

    if (a == NULL) {
        return;
    }
    for (i = 0; i < a->nboots; i++) {
        b = &a->boots[i];
        if (b->id == boot_id) {
            if (seq > b->applied) {
                seq = b->applied; /* never durable beyond applied */
            }
            if (seq > b->durable) {
                b->durable = seq;
            }
        }
    }
}

void trib_view_all_durable(struct trib_view *v)
{
    uint32_t i;
    int j;

    for (i = 0; i < v->nagents; i++) {
        for (j = 0; j < v->agents[i]->nboots; j++) {
            v->agents[i]->boots[j].durable = v->agents[i]->boots[j].applied;
        }
    }
}

int trib_view_boot_pos(const struct trib_view *v, struct trib_str agent_id,
                       uint64_t boot_id, struct trib_wire_boot_pos *out)
{
    const struct vagent *a = trib__view_agent(v, agent_id);
    const struct vboot *b = a ? boot_find(a, boot_id) : NULL;

    if (b == NULL) {
        return TRIB_ENOENT;
    }
    out->boot_id = b->id;
    out->applied = b->applied;
    out->durable = b->durable;
    return 0;
}

void trib_view_each_undurable(const struct trib_view *v,
                              void (*fn)(void *arg, struct trib_str agent_id,
                                         uint64_t boot_id, uint64_t applied),
                              void *arg)
{
    const struct vagent *a;
    struct trib_str id;
    uint32_t i;
    int j;

    for (i = 0; i < v->nagents; i++) {
        a = v->agents[i];
        id.p = a->id;
        id.n = trib__vstr_len(a->id);
        for (j = 0; j < a->nboots; j++) {
            if (a->boots[j].applied > a->boots[j].durable) {
                fn(arg, id, a->boots[j].id, a->boots[j].applied);
            }
        }
    }
}

/* ------------------------------------------------------------ counters */

void trib_view_stats(const struct trib_view *v, struct trib_view_stats *s)
{
    uint32_t i;
    int k;
    size_t bytes = v->bytes;

    memset(s, 0, sizeof(*s));
    s->events_applied = v->events_applied;
    s->duplicates = v->duplicates;
    s->invalid = v->invalid;
    s->batches = v->batches;
    s->gaps = v->gaps;
    s->groups = v->ngroups;
    s->failure_groups = v->nfails;
    s->failures_other = v->fail_other;
    s->tags_overflow = v->tag_overflow;
    s->groups_overflow = v->groups_overflow_events;
    for (i = 0; i < v->ngroups; i++) {
        for (k = 0; k < VH_COUNT; k++) {
            bytes += trib_hist_bytes(&v->groups[i]->h[k]);
        }
    }
    s->bytes = bytes;
}
