/*
 * poller_tally.c -- the polling view's counts (see poller_int.h and
 * docs/POLLING.md).
 *
 * Final states are counted through a cursor on finalized_at. Each poll
 * reads the rows with finalized_at >= lower_bound, where
 *
 *     lower_bound = max(previous lower_bound, previous poll's now() - margin)
 *
 * and counts a row only if its (id, finalized_at) is not in the id window:
 * the ids of the rows read whose finalized_at is still >= lower_bound.
 * A row committed after poll k-1 is therefore counted by poll k if it
 * committed at most 'margin' after its finalized_at (database time), and
 * no row is ever counted twice for the same finalization: the bound never
 * goes back, and every id that a later window can return is remembered.
 *
 * After an outage (trib__tally_outage(): a failed statement, a lost
 * connection) the writers reconnect after the poller, at their own pace,
 * and commit rows finalized before or during the outage: the next applied
 * poll starts a hold, and the lower bound stays where it was until the
 * database time passes that poll's now() + hold + margin. Rows first read
 * during a hold and finalized before it began are counted as outage rows,
 * not as late ones (the outage explains them; they do not widen the
 * margin).
 *
 * Lateness (a new row whose finalized_at is older than the previous poll's
 * now()) is measured; when it reaches half the margin, the margin doubles
 * past it (up to margin_max) and stays there for PEAK_HOLD of database time.
 *
 * Memory: one entry per group, plus the id window (about rate x (margin +
 * interval) entries of 16 bytes); never per job otherwise.
 */
#include "poller_int.h"
#include "trib_mem.h"
#include "trib_wire.h"

#include <limits.h>
#include <string.h>

#define PEAK_HOLD_US (300LL * 1000000LL) /* keep a widened margin 5 min */
#define NSLOT        16                  /* "recent" buckets per group   */
#define ID_EMPTY     INT64_MIN

/* ---------------------------------------------------------------- states */

static const char *const ws_names[TRIB_WS_COUNT] = {
    [TRIB_WS_UNKNOWN] = "unknown",     [TRIB_WS_AVAILABLE] = "available",
    [TRIB_WS_CANCELLED] = "cancelled", [TRIB_WS_COMPLETED] = "completed",
    [TRIB_WS_DISCARDED] = "discarded", [TRIB_WS_PENDING] = "pending",
    [TRIB_WS_RETRYABLE] = "retryable", [TRIB_WS_RUNNING] = "running",
    [TRIB_WS_SCHEDULED] = "scheduled",
};

int trib__ws_final(int ws)
{
    return ws == TRIB_WS_COMPLETED || ws == TRIB_WS_DISCARDED ||
           ws == TRIB_WS_CANCELLED;
}

const char *trib__ws_name(int ws)
{
    return ws > 0 && ws < TRIB_WS_COUNT ? ws_names[ws] : "unknown";
}

int trib__ws_parse(const char *s)
{
    int i;

    for (i = 1; s != NULL && i < TRIB_WS_COUNT; i++) {
        if (strcmp(s, ws_names[i]) == 0) {
            return i;
        }
    }
    return TRIB_WS_UNKNOWN;
}

/* ------------------------------------------------------------ keyed map */

/* An entry: the key (its strings stored after the struct that embeds
 * it) and, for groups, a count. Larger structs embed it first. */
struct ent {
    struct trib__key key;
    uint64_t hash;
    int64_t n;
};

struct kmap {
    struct ent **slot;
    size_t cap, n; /* cap: power of two, or 0 */
};

static uint64_t fnv(uint64_t h, const char *s)
{
    if (s == NULL) {
        return (h ^ 0x01) * 0x100000001b3ULL; /* NULL differs from "" */
    }
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    }
    return (h ^ 0xff) * 0x100000001b3ULL;
}

static uint64_t key_hash(const struct trib__key *k)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    h = fnv(h, k->queue);
    h = fnv(h, k->kind);
    h = fnv(h, k->client);
    h = (h ^ (uint64_t)(k->ws * 2 + (k->rescued != 0))) * 0x100000001b3ULL;
    return h;
}

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

static int key_eq(const struct trib__key *a, const struct trib__key *b)
{
    return a->ws == b->ws && (a->rescued != 0) == (b->rescued != 0) &&
           str_eq(a->queue, b->queue) && str_eq(a->kind, b->kind) &&
           str_eq(a->client, b->client);
}

static struct ent *kmap_find(const struct kmap *m, const struct trib__key *k,
                             uint64_t h)
{
    size_t i;

    if (m->cap == 0) {
        return NULL;
    }
    for (i = h & (m->cap - 1); m->slot[i] != NULL; i = (i + 1) & (m->cap - 1)) {
        if (m->slot[i]->hash == h && key_eq(&m->slot[i]->key, k)) {
            return m->slot[i];
        }
    }
    return NULL;
}

static void kmap_insert(struct kmap *m, struct ent *e)
{
    size_t i = e->hash & (m->cap - 1);

    while (m->slot[i] != NULL) {
        i = (i + 1) & (m->cap - 1);
    }
    m->slot[i] = e;
    m->n++;
}

static void kmap_grow(struct kmap *m)
{
    struct ent **old = m->slot;
    size_t oldcap = m->cap, i;

    m->cap = oldcap ? oldcap * 2 : 64;
    m->slot = trib_calloc(m->cap, sizeof(*m->slot));
    m->n = 0;
    for (i = 0; i < oldcap; i++) {
        if (old[i] != NULL) {
            kmap_insert(m, old[i]);
        }
    }
    trib_free(old);
}

static char *put_str(char **p, const char *s)
{
    size_t n;
    char *d = *p;

    if (s == NULL) {
        return NULL;
    }
    n = strlen(s) + 1;
    memcpy(d, s, n);
    *p += n;
    return d;
}

/* Finds the key's entry or creates a zeroed one of 'size' bytes. */
static struct ent *kmap_put(struct kmap *m, const struct trib__key *k,
                            size_t size, int *created)
{
    uint64_t h = key_hash(k);
    struct ent *e = kmap_find(m, k, h);
    size_t extra;
    char *p;

    *created = 0;
    if (e != NULL) {
        return e;
    }
    if ((m->n + 1) * 2 > m->cap) {
        kmap_grow(m);
    }
    extra = (k->queue ? strlen(k->queue) + 1 : 0) +
            (k->kind ? strlen(k->kind) + 1 : 0) +
            (k->client ? strlen(k->client) + 1 : 0);
    e = trib_calloc(1, size + extra);
    p = (char *)e + size;
    e->key.queue = put_str(&p, k->queue);
    e->key.kind = put_str(&p, k->kind);
    e->key.client = put_str(&p, k->client);
    e->key.ws = k->ws;
    e->key.rescued = k->rescued != 0;
    e->hash = h;
    kmap_insert(m, e);
    *created = 1;
    return e;
}

static void kmap_clear(struct kmap *m)
{
    size_t i;

    for (i = 0; i < m->cap; i++) {
        trib_free(m->slot[i]);
        m->slot[i] = NULL;
    }
    m->n = 0;
}

static void kmap_fini(struct kmap *m)
{
    kmap_clear(m);
    trib_free(m->slot);
    m->slot = NULL;
    m->cap = 0;
}

/* ------------------------------------------------------------- ctab */

struct cent {
    struct ent e;
    int64_t v[TRIB__CTAB_NV];
};

struct trib__ctab {
    struct kmap m;
};

struct trib__ctab *trib__ctab_create(void)
{
    return TRIB_NEW(struct trib__ctab);
}

void trib__ctab_destroy(struct trib__ctab *t)
{
    if (t != NULL) {
        kmap_fini(&t->m);
        trib_free(t);
    }
}

void trib__ctab_clear(struct trib__ctab *t)
{
    kmap_clear(&t->m);
}

void trib__ctab_addv(struct trib__ctab *t, const struct trib__key *k, int i,
                     int64_t n)
{
    int created;
    struct cent *c = (struct cent *)kmap_put(&t->m, k, sizeof(*c), &created);

    c->v[i] += n;
}

void trib__ctab_add(struct trib__ctab *t, const struct trib__key *k, int64_t n)
{
    trib__ctab_addv(t, k, 0, n);
}

int64_t trib__ctab_getv(const struct trib__ctab *t, const struct trib__key *k,
                        int i)
{
    const struct cent *c =
        (const struct cent *)kmap_find(&t->m, k, key_hash(k));

    return c != NULL ? c->v[i] : 0;
}

int64_t trib__ctab_get(const struct trib__ctab *t, const struct trib__key *k)
{
    return trib__ctab_getv(t, k, 0);
}

size_t trib__ctab_size(const struct trib__ctab *t)
{
    return t->m.n;
}

void trib__ctab_eachv(const struct trib__ctab *t,
                      void (*fn)(void *arg, const struct trib__key *k,
                                 const int64_t *v),
                      void *arg)
{
    size_t i;

    for (i = 0; i < t->m.cap; i++) {
        if (t->m.slot[i] != NULL) {
            fn(arg, &t->m.slot[i]->key, ((struct cent *)t->m.slot[i])->v);
        }
    }
}

struct each_one {
    void (*fn)(void *arg, const struct trib__key *k, int64_t n);
    void *arg;
};

static void each_one_cb(void *arg, const struct trib__key *k, const int64_t *v)
{
    struct each_one *eo = arg;

    eo->fn(eo->arg, k, v[0]);
}

void trib__ctab_each(const struct trib__ctab *t,
                     void (*fn)(void *arg, const struct trib__key *k,
                                int64_t n),
                     void *arg)
{
    struct each_one eo = {fn, arg};

    trib__ctab_eachv(t, each_one_cb, &eo);
}

/* ------------------------------------------------------------ id window */

struct ide {
    int64_t id;  /* ID_EMPTY: free slot */
    int64_t fin; /* finalized_at counted for this id */
};

struct idset {
    struct ide *e;
    size_t cap, n; /* cap: power of two */
};

static size_t id_slot(int64_t id, size_t cap)
{
    return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

static void idset_alloc(struct idset *s, size_t cap)
{
    size_t i;

    s->e = trib_malloc(cap * sizeof(*s->e));
    for (i = 0; i < cap; i++) {
        s->e[i].id = ID_EMPTY;
    }
    s->cap = cap;
    s->n = 0;
}

static struct ide *idset_find(const struct idset *s, int64_t id)
{
    size_t i;

    for (i = id_slot(id, s->cap); s->e[i].id != ID_EMPTY;
         i = (i + 1) & (s->cap - 1)) {
        if (s->e[i].id == id) {
            return &s->e[i];
        }
    }
    return NULL;
}

static void idset_insert(struct idset *s, int64_t id, int64_t fin)
{
    size_t i = id_slot(id, s->cap);

    while (s->e[i].id != ID_EMPTY) {
        i = (i + 1) & (s->cap - 1);
    }
    s->e[i].id = id;
    s->e[i].fin = fin;
    s->n++;
}

/* Rebuilds the set keeping only ids with fin >= min_fin, at a capacity of
 * at least twice what is kept (and at least 'need' free). */
static void idset_rebuild(struct idset *s, int64_t min_fin, size_t need)
{
    struct ide *old = s->e;
    size_t oldcap = s->cap, keep = 0, cap = 1024, i;

    for (i = 0; i < oldcap; i++) {
        if (old[i].id != ID_EMPTY && old[i].fin >= min_fin) {
            keep++;
        }
    }
    while (cap < (keep + need) * 2) {
        cap *= 2;
    }
    idset_alloc(s, cap);
    for (i = 0; i < oldcap; i++) {
        if (old[i].id != ID_EMPTY && old[i].fin >= min_fin) {
            idset_insert(s, old[i].id, old[i].fin);
        }
    }
    trib_free(old);
}

/* ---------------------------------------------------------------- tally */

struct trib__group {
    struct ent e;          /* e.n: cumulative finalizations */
    int overflow;          /* the catch-all group past max_groups */
    int64_t slot_b[NSLOT]; /* bucket number (finalized_at / width) */
    int64_t slot_n[NSLOT];
};

struct trib__tally {
    struct trib__tally_conf conf;
    struct kmap groups;
    struct idset ids;
    struct trib__ctab *states, *states_next;
    struct trib__ctab *snap, *snap_next;
    int has_states, has_snap, has_snap_next;

    int counting;        /* baseline applied                        */
    int outage;          /* an outage since the last applied poll   */
    int64_t hold_from;   /* now() of the first poll after it        */
    int64_t hold_until;  /* the bound is held until this db time; 0:
                            no hold                                 */
    int64_t poll_now;    /* now() of the poll being applied         */
    int64_t db_now;      /* now() of the last applied poll          */
    int64_t since;       /* now() of the baseline                   */
    int64_t lower;       /* next window's lower bound               */
    int64_t margin;      /* margin in use                           */
    int64_t width;       /* "recent" bucket width                   */
    int64_t poll_late;   /* largest lateness in the poll applied    */
    int64_t peak_late;   /* held lateness peak                      */
    int64_t peak_at;     /* db time of that peak                    */
    int64_t unfinalized; /* final rows with NULL finalized_at       */
    uint64_t rows_read, rows_counted, late_rows, overflowed, outage_rows;
    int64_t max_late;
};

struct trib__tally *trib__tally_create(const struct trib__tally_conf *c)
{
    struct trib__tally *t = TRIB_NEW(struct trib__tally);

    t->conf = *c;
    if (t->conf.margin_max_us < t->conf.margin_us) {
        t->conf.margin_max_us = t->conf.margin_us;
    }
    if (t->conf.max_groups == 0) {
        t->conf.max_groups = 1;
    }
    t->margin = c->margin_us;
    t->width = c->transit_us / NSLOT > 0 ? c->transit_us / NSLOT : 1;
    idset_alloc(&t->ids, 1024);
    t->states = trib__ctab_create();
    t->states_next = trib__ctab_create();
    t->snap = trib__ctab_create();
    t->snap_next = trib__ctab_create();
    return t;
}

void trib__tally_destroy(struct trib__tally *t)
{
    if (t == NULL) {
        return;
    }
    kmap_fini(&t->groups);
    trib_free(t->ids.e);
    trib__ctab_destroy(t->states);
    trib__ctab_destroy(t->states_next);
    trib__ctab_destroy(t->snap);
    trib__ctab_destroy(t->snap_next);
    trib_free(t);
}

int trib__tally_counting(const struct trib__tally *t)
{
    return t->counting;
}

int64_t trib__tally_lower_bound(const struct trib__tally *t)
{
    return t->lower;
}

int64_t trib__tally_margin(const struct trib__tally *t)
{
    return t->margin;
}

void trib__tally_final_begin(struct trib__tally *t, int64_t db_now_us)
{
    t->poll_now = db_now_us;
    t->poll_late = 0;
}

struct trib__group *trib__tally_group(struct trib__tally *t,
                                      const struct trib__key *k)
{
    static const struct trib__key other_base = {"(other)", "(other)", "(other)",
                                                0, 0};
    struct trib__key other;
    struct trib__group *g;
    int created, i;

    g = (struct trib__group *)kmap_find(&t->groups, k, key_hash(k));
    if (g != NULL) {
        return g;
    }
    if (t->groups.n >= t->conf.max_groups) {
        other = other_base;
        other.ws = k->ws;
        k = &other;
    }
    g = (struct trib__group *)kmap_put(&t->groups, k, sizeof(*g), &created);
    if (created) {
        g->overflow = k == &other;
        for (i = 0; i < NSLOT; i++) {
            g->slot_b[i] = INT64_MIN;
        }
    }
    return g;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void count_recent(struct trib__tally *t, struct trib__group *g,
                         int64_t fin)
{
    int64_t b = floor_div(fin, t->width);
    int i = (int)(((b % NSLOT) + NSLOT) % NSLOT);

    if (g->slot_b[i] == b) {
        g->slot_n[i]++;
    } else if (g->slot_b[i] < b) {
        g->slot_b[i] = b;
        g->slot_n[i] = 1;
    } /* else: older than the ring holds, so not recent anyway */
}

static int64_t recent_of(const struct trib__tally *t,
                         const struct trib__group *g)
{
    int64_t lo = floor_div(t->db_now - t->conf.transit_us, t->width), n = 0;
    int i;

    for (i = 0; i < NSLOT; i++) {
        if (g->slot_b[i] > lo) {
            n += g->slot_n[i];
        }
    }
    return n;
}

void trib__tally_bulk(struct trib__tally *t, struct trib__group *g, int64_t n)
{
    g->e.n += n;
    t->rows_counted += (uint64_t)n;
    if (g->overflow) {
        t->overflowed += (uint64_t)n;
    }
}

void trib__tally_row(struct trib__tally *t, struct trib__group *g, int64_t id,
                     int64_t fin_us)
{
    struct ide *seen;

    t->rows_read++;
    seen = idset_find(&t->ids, id);
    if (seen != NULL && seen->fin == fin_us) {
        return; /* counted by an earlier poll */
    }
    /* New, or finalized again (e.g. retried by hand): one more
     * finalization, as the events count it. */
    if (seen != NULL) {
        seen->fin = fin_us;
    } else {
        if ((t->ids.n + 1) * 2 > t->ids.cap) {
            idset_rebuild(&t->ids, INT64_MIN, t->ids.n + 1);
        }
        idset_insert(&t->ids, id, fin_us);
    }
    g->e.n++;
    t->rows_counted++;
    if (g->overflow) {
        t->overflowed++;
    }
    count_recent(t, g, fin_us);
    if (t->hold_until != 0 && fin_us < t->hold_from) {
        t->outage_rows++; /* committed late because of the outage */
    } else if (t->counting && fin_us < t->db_now) {
        int64_t late = t->db_now - fin_us;

        t->late_rows++;
        if (late > t->poll_late) {
            t->poll_late = late;
        }
        if (late > t->max_late) {
            t->max_late = late;
        }
    }
}

void trib__tally_unfinalized(struct trib__tally *t, int64_t n)
{
    t->unfinalized += n;
}

void trib__tally_outage(struct trib__tally *t)
{
    t->outage = 1;
}

int trib__tally_final_end(struct trib__tally *t)
{
    int warn = 0;
    int64_t want;
    struct trib__ctab *tmp;

    if (!t->counting) {
        t->counting = 1;
        t->since = t->poll_now;
        t->lower = t->poll_now - t->margin; /* the baseline's cut */
    }
    t->db_now = t->poll_now;

    /* Adapt the margin to the lateness seen (held for PEAK_HOLD). */
    if (t->poll_late > 0 && (t->poll_late >= t->peak_late ||
                             t->db_now - t->peak_at > PEAK_HOLD_US)) {
        t->peak_late = t->poll_late;
        t->peak_at = t->db_now;
    } else if (t->db_now - t->peak_at > PEAK_HOLD_US) {
        t->peak_late = 0;
    }
    if (t->poll_late * 2 > t->margin) {
        warn = 1;
    }
    want = t->peak_late * 2 > t->conf.margin_us ? t->peak_late * 2
                                                : t->conf.margin_us;
    t->margin = want < t->conf.margin_max_us ? want : t->conf.margin_max_us;

    /* The first poll after an outage starts (or restarts) a hold. */
    if (t->outage) {
        t->outage = 0;
        t->hold_from = t->db_now;
        t->hold_until = t->db_now + t->conf.hold_us + t->margin;
    }
    if (t->hold_until != 0 && t->db_now >= t->hold_until) {
        t->hold_until = 0;
        t->hold_from = 0;
    }

    /* Advance the cursor (never backwards, not during a hold), forget ids
     * it passed. */
    if (t->hold_until == 0 && t->db_now - t->margin > t->lower) {
        t->lower = t->db_now - t->margin;
    }
    idset_rebuild(&t->ids, t->lower, 0);

    if (t->has_snap_next) {
        tmp = t->snap;
        t->snap = t->snap_next;
        t->snap_next = tmp;
        t->has_snap = 1;
    } else {
        t->has_snap = 0;
    }
    trib__ctab_clear(t->snap_next);
    t->has_snap_next = 0;
    return warn;
}

void trib__tally_snap_begin(struct trib__tally *t)
{
    trib__ctab_clear(t->snap_next);
    t->has_snap_next = 1;
}

void trib__tally_snap_add(struct trib__tally *t, const char *queue,
                          const char *kind, int ws, int64_t n)
{
    struct trib__key k = {queue, kind, NULL, ws, 0};

    trib__ctab_add(t->snap_next, &k, n);
}

const struct trib__ctab *trib__tally_snap(const struct trib__tally *t)
{
    return t->has_snap ? t->snap : NULL;
}

void trib__tally_states_begin(struct trib__tally *t)
{
    trib__ctab_clear(t->states_next);
}

void trib__tally_states_add(struct trib__tally *t, const char *queue,
                            const char *kind, int ws, int64_t n)
{
    struct trib__key k = {queue, kind, NULL, ws, 0};

    trib__ctab_add(t->states_next, &k, n);
}

void trib__tally_states_end(struct trib__tally *t)
{
    struct trib__ctab *tmp = t->states;

    t->states = t->states_next;
    t->states_next = tmp;
    trib__ctab_clear(t->states_next);
    t->has_states = 1;
}

int trib__tally_has_states(const struct trib__tally *t)
{
    return t->has_states;
}

void trib__tally_stats(const struct trib__tally *t, struct trib__tally_stats *s)
{
    memset(s, 0, sizeof(*s));
    s->db_now_us = t->db_now;
    s->since_db_us = t->since;
    s->lower_bound_us = t->lower;
    s->margin_us = t->margin;
    s->rows_read = t->rows_read;
    s->rows_counted = t->rows_counted;
    s->late_rows = t->late_rows;
    s->tracked_ids = t->ids.n;
    s->groups = t->groups.n;
    s->overflowed = t->overflowed;
    s->unfinalized = t->unfinalized;
    s->max_lateness_us = t->max_late;
    s->hold_until_us = t->hold_until;
    s->outage_rows = t->outage_rows;
}

void trib__tally_each_final(const struct trib__tally *t,
                            void (*fn)(void *arg, const struct trib__key *k,
                                       int64_t n, int64_t recent),
                            void *arg)
{
    size_t i;

    for (i = 0; i < t->groups.cap; i++) {
        const struct trib__group *g =
            (const struct trib__group *)t->groups.slot[i];
        if (g != NULL) {
            fn(arg, &g->e.key, g->e.n, recent_of(t, g));
        }
    }
}

void trib__tally_each_state(const struct trib__tally *t,
                            void (*fn)(void *arg, const struct trib__key *k,
                                       int64_t n),
                            void *arg)
{
    if (t->has_states) {
        trib__ctab_each(t->states, fn, arg);
    }
}
