/*
 * view_impl.h -- the view's internal structures, shared by its files (not
 * for use outside coordinator/view*.c and render.c):
 *
 *   view.c          lifecycle, memory accounting, interned strings, hash
 *                   index, agents, boots, counters
 *   view_apply.c    EVENT_BATCH application: exactly-once positions,
 *                   groups, per-second series, tags, finished totals
 *   view_failures.c error normalisation and failure groups
 *   view_ring.c     the ring of recent events and its cursors
 *   view_save.c     save/load of the whole view (msgpack image)
 *   render.c        the JSON documents of docs/CONTROL.md
 *
 * Everything the view allocates goes through trib__view_alloc/free, which
 * keep v->bytes (histogram chunks are counted by the histograms); memory is
 * proportional to the distinct agents, boots, groups, failure groups and
 * tags, all bounded, never to the number of events.
 *
 * Strings that identify things (agent, client, queue and kind names, tags,
 * failure texts) are interned: one NUL-terminated copy per distinct string,
 * owned by the view and freed with it, so they compare by pointer.
 */
#ifndef TRIB_VIEW_IMPL_H
#define TRIB_VIEW_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "events.h"
#include "hist.h"
#include "view.h"

/* ---- sizes ----------------------------------------------------------- */

#define VIEW_SERIES_SECS  3600 /* per-second finished counts kept        */
#define VIEW_FUTURE_SECS  5    /* 'at' accepted this far past now         */
#define VIEW_MAX_BOOTS    128  /* per agent; the oldest is dropped beyond */
#define VIEW_MAX_PAUSED   64   /* paused queues tracked per client        */
#define VIEW_FAIL_SAMPLES 5    /* sample job ids per failure group        */
#define VIEW_FAIL_QUEUES  8    /* queues (and nodes) per failure group    */
#define VIEW_ERR_NORM_MAX 200  /* normalised error text, bytes            */
#define VIEW_RING_ERR_MAX 256  /* error bytes kept in an event ring slot  */
#define VIEW_RING_TEXT    512  /* string bytes per ring slot              */

enum view_hist {
    VH_QUEUE_WAIT,
    VH_RUN,
    VH_COMPLETE,
    VH_PICKUP,
    VH_END_TO_END,
    VH_COUNT
};

/* ---- hash index: open addressing of (hash, item) --------------------- */

struct vidx {
    uint32_t cap; /* power of two, or 0 */
    uint32_t n;
    uint64_t *hash; /* 0 = empty slot (hashes are never 0) */
    void **item;
};

/* ---- interned strings ------------------------------------------------ */

struct vstr {
    uint32_t len;
    uint64_t hash;
    char s[]; /* NUL-terminated */
};

/* ---- agents ---------------------------------------------------------- */

struct vclient {
    const char *id;   /* interned */
    const char *mode; /* interned; NULL when not in a HELLO */
    const char **queues;
    int nqueues;
    int64_t in_flight;
    int fetch_paused;
    const char *paused[VIEW_MAX_PAUSED]; /* interned */
    int npaused;
};

struct vboot {
    uint64_t id, applied, durable;
};

struct vsample {
    int64_t at, cpu_user_us, cpu_sys_us, rss_bytes, threads;
    int64_t outbox_events, outbox_bytes, db_conns;
    uint64_t boot_id, last_seq;
};

struct vagent {
    const char *id; /* interned */
    uint32_t index; /* position in v->agents */
    char *host, *version;
    int64_t pid;
    uint64_t boot_id;
    int64_t started_at, heartbeat_ms;
    int64_t hello_us, hb_us, disconnected_us, goodbye_us; /* coord clock */
    int connected, stopped, has_sample;
    struct vsample sample;
    struct vclient *clients; /* TRIB_WIRE_MAX_CLIENTS slots */
    int nclients;
    struct vboot *boots; /* VIEW_MAX_BOOTS slots, insertion order */
    int nboots;
    struct vgroup *last; /* the group of the previous event (cache) */
};

/* ---- groups ---------------------------------------------------------- */

struct vseries {
    int64_t head;   /* newest second held                           */
    uint32_t *fail; /* VIEW_SERIES_SECS; NULL until the first failure */
    uint32_t fin[VIEW_SERIES_SECS];
};

struct vgroup {
    struct vagent *agent;              /* the node */
    const char *client, *queue, *kind; /* interned */
    uint32_t index;                    /* position in v->groups */
    uint64_t ev[TRIB_EV_KINDS];        /* events per kind           */
    uint64_t st[TRIB_WS_COUNT];        /* events per state after    */
    uint64_t retryable;                /* job_failed, not final     */
    struct trib_hist h[VH_COUNT];
    struct vseries *series; /* NULL until the first finished event */
};

/* ---- failure groups and tags ---------------------------------------- */

struct vfail {
    const char *kind, *error; /* interned */
    uint64_t count, discarded;
    int64_t first_seen, last_seen;
    int64_t samples[VIEW_FAIL_SAMPLES]; /* most recent first */
    int nsamples;
    const char *queues[VIEW_FAIL_QUEUES];
    int nqueues;
    struct vagent *nodes[VIEW_FAIL_QUEUES];
    int nnodes;
};

struct vtag {
    const char *tag; /* interned */
    struct vgroup *group;
    uint64_t finished, failed;
};

/* ---- event ring ------------------------------------------------------ */

enum ring_str { RS_CLIENT, RS_QUEUE, RS_KIND, RS_ERROR, RS_TAG0 };
#define RS_COUNT (RS_TAG0 + TRIB_WIRE_MAX_TAGS)

struct vslot {
    uint64_t cursor; /* 0 = empty */
    struct vagent *agent;
    int8_t kind, state;
    uint8_t ntags, has_error;
    int32_t attempt, max_attempts, priority;
    int64_t job_id;
    int64_t created_at, scheduled_at, attempted_at, finalized_at,
        next_scheduled_at;
    int64_t queue_wait_us, run_us, complete_us, at;
    uint32_t present; /* bit i: string i was not nil */
    uint16_t off[RS_COUNT], len[RS_COUNT];
    char text[VIEW_RING_TEXT];
};

/* ---- the view -------------------------------------------------------- */

struct trib_view {
    struct trib_view_conf conf;
    size_t bytes; /* allocated by the view, histogram chunks excluded */

    struct vidx strs; /* struct vstr */

    struct vagent **agents; /* by index */
    uint32_t nagents, capagents;
    struct vidx agent_idx;

    struct vgroup **groups;
    uint32_t ngroups, capgroups;
    struct vidx group_idx;
    struct vgroup *overflow; /* "(other)": events once max_groups is
                                reached (also in groups[], agent NULL) */

    struct vfail **fails;
    uint32_t nfails, capfails;
    struct vidx fail_idx;
    uint64_t fail_other;

    struct vtag **tags;
    uint32_t ntags, captags;
    struct vidx tag_idx;
    uint64_t tag_overflow;

    struct vidx clients; /* interned client ids seen (HELLO or events) */

    struct vslot *ring; /* conf.ring_events slots */
    uint64_t ring_base; /* first cursor the ring can hold (after a load) */

    uint64_t events_applied; /* = last cursor */
    uint64_t duplicates, invalid, batches, gaps, groups_overflow_events;
};

/* ---- view.c ---------------------------------------------------------- */

void *trib__view_alloc(struct trib_view *v, size_t n); /* zeroed */
void *trib__view_realloc(struct trib_view *v, void *p, size_t old, size_t n);
void trib__view_free(struct trib_view *v, void *p, size_t n);

uint64_t trib__view_hash(const void *p, size_t n, uint64_t seed);
/* Interned copy of s[0..n) (created on first use). */
const char *trib__view_intern(struct trib_view *v, const char *s, size_t n);
/* Length of an interned string. */
static inline uint32_t trib__vstr_len(const char *s)
{
    return ((const struct vstr *)(const void *)(s - offsetof(struct vstr, s)))
        ->len;
}
static inline int trib__vstr_eq(const char *interned, struct trib_str s)
{
    uint32_t n = trib__vstr_len(interned);

    return n == s.n && (n == 0 || memcmp(interned, s.p, n) == 0);
}

void *trib__vidx_find(const struct vidx *x, uint64_t h,
                      int (*eq)(const void *item, const void *key),
                      const void *key);
void trib__vidx_add(struct trib_view *v, struct vidx *x, uint64_t h,
                    void *item);
void trib__vidx_fini(struct trib_view *v, struct vidx *x);

/* Appends to a growable pointer array (items, n, cap). */
void trib__view_push(struct trib_view *v, void ***items, uint32_t *n,
                     uint32_t *cap, void *item);

struct vagent *trib__view_agent(const struct trib_view *v, struct trib_str id);
struct vagent *trib__view_agent_get(struct trib_view *v, struct trib_str id);
struct vclient *trib__view_client(struct trib_view *v, struct vagent *a,
                                  struct trib_str id, int create);
void trib__view_client_seen(struct trib_view *v, const char *id);
struct vboot *trib__view_boot_get(struct trib_view *v, struct vagent *a,
                                  uint64_t boot_id);
void trib__view_agent_free(struct trib_view *v, struct vagent *a);
/* Liveness name at now_us: "alive", "late", "missing", "stopped". */
const char *trib__view_liveness(const struct trib_view *v,
                                const struct vagent *a, int64_t now_us,
                                int64_t *age_us);

/* ---- view_apply.c ---------------------------------------------------- */

struct vgroup *trib__view_group_new(struct trib_view *v, struct vagent *a,
                                    const char *client, const char *queue,
                                    const char *kind);
void trib__view_group_free(struct trib_view *v, struct vgroup *g);
/* The group of agent a with these interned names, or NULL. */
struct vgroup *trib__view_group_find(const struct trib_view *v,
                                     const struct vagent *a, const char *client,
                                     const char *queue, const char *kind);
struct vtag *trib__view_tag_new(struct trib_view *v, const char *tag,
                                struct vgroup *g);
/* Finished (completed/discarded/cancelled) and failed counts of g. */
uint64_t trib__view_finished(const struct vgroup *g);
uint64_t trib__view_failed(const struct vgroup *g);
/* Finished (and failed) events in seconds [from, to] of g's series. */
void trib__view_series_sum(const struct vseries *s, int64_t from, int64_t to,
                           uint64_t *fin, uint64_t *fail);
/* Counts fin finished (fail of them failed) jobs at second sec, creating
 * g's series on first use. */
void trib__view_series_add(struct trib_view *v, struct vgroup *g, int64_t sec,
                           uint32_t fin, uint32_t fail);
int trib__view_group_match(const struct vgroup *g,
                           const struct trib_view_filter *f);

/* ---- view_failures.c ------------------------------------------------- */

/* Normalises err into out (>= VIEW_ERR_NORM_MAX + 1 bytes); returns the
 * length. */
size_t trib__view_err_normalise(const char *err, size_t n, char *out);
/* Counts ev (a failure: job_failed, or any job event with an error) in
 * its failure group; 'when' = the event's time. */
void trib__view_failure(struct trib_view *v, struct vagent *a,
                        const struct trib_wire_event *ev, int64_t when);
struct vfail *trib__view_fail_new(struct trib_view *v, const char *kind,
                                  const char *error);
/* Failure groups matching f, sorted by count (descending); *n set. A
 * transient array: the caller frees it with trib_free. */
struct vfail **trib__view_fails_sorted(const struct trib_view *v,
                                       const struct trib_view_filter *f,
                                       uint32_t *n);

/* ---- view_ring.c ----------------------------------------------------- */

int trib__view_ring_init(struct trib_view *v);
void trib__view_ring_put(struct trib_view *v, uint64_t cursor, struct vagent *a,
                         const struct trib_wire_event *ev);

#endif /* TRIB_VIEW_IMPL_H */
