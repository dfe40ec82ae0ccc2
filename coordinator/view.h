/*
 * view -- the coordinator's cluster-wide state: everything it knows from
 * the agents' event streams, applied exactly once.
 *
 * Contents (memory never grows with the number of jobs):
 *   - per agent: HELLO facts (host, version, pid, clients with mode and
 *     queues), last heartbeat sample, liveness (alive/late/missing/
 *     stopped), and per boot the highest sequence applied and made durable
 *     (the dedupe positions, DESIGN-NOTES 2);
 *   - per group (node, client, queue, job kind): counts per event kind and
 *     per final state, in-flight estimate (from heartbeats), throughput
 *     windows (1 s / 10 s / 1 min) and a per-second series of the last hour,
 *     five latency histograms (hist.h): queue_wait, run, complete, pickup
 *     (attempted_at - scheduled_at), end_to_end (finalized_at - created_at);
 *     bounded by max_groups (events of further groups count in one group
 *     whose node, client, queue and kind are "(other)");
 *   - failure groups: (job kind, normalised error text) -> count, first and
 *     last seen, up to 5 sample job ids; bounded (overflow -> one "other"
 *     group);
 *   - finished-job counts per tag (bounded), for `wait --tag`;
 *   - a ring of the last N applied events for `tributary events`, with a
 *     global cursor (every applied event gets the next cursor number).
 *
 * "Finished" = an event whose state is final: completed, discarded,
 * cancelled (job_completed, job_failed->discarded, job_cancelled).
 *
 * Ownership: the view owns everything it stores (strings are copied).
 * Threading: one libuv loop thread owns the view; no locking.
 */
#ifndef TRIB_VIEW_H
#define TRIB_VIEW_H

#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>

#include "trib_wire.h"

struct trib_view;

struct trib_view_conf {
    int64_t heartbeat_ms;  /* expected agent heartbeat period (1000)   */
    int late_after;        /* heartbeats missed -> late (3)            */
    int missing_after;     /* heartbeats missed -> missing (10)        */
    uint32_t ring_events;  /* events kept for `events` readers (16384) */
    uint32_t max_failures; /* failure groups before "other" (1000)     */
    uint32_t max_tags;     /* distinct tags counted (10000)            */
    uint32_t max_groups;   /* (node,client,queue,kind) groups (100000) */
};
void trib_view_conf_defaults(struct trib_view_conf *c);

int trib_view_new(const struct trib_view_conf *conf, struct trib_view **out);
void trib_view_free(struct trib_view *v); /* NULL ok */

/* ---- Agents -------------------------------------------------------------- */

/* Records an authenticated HELLO (creates or refreshes the agent). */
void trib_view_hello(struct trib_view *v, const struct trib_wire_hello *h,
                     int64_t now_us);
void trib_view_heartbeat(struct trib_view *v, struct trib_str agent_id,
                         const struct trib_wire_heartbeat *hb, int64_t now_us);
void trib_view_goodbye(struct trib_view *v, struct trib_str agent_id,
                       int64_t now_us); /* liveness "stopped" */
/* The agent's connection dropped (liveness keeps counting from its last
 * heartbeat; this only records the time). */
void trib_view_disconnected(struct trib_view *v, struct trib_str agent_id,
                            int64_t now_us);

/* Every boot of agent_id the view remembers (up to max): for WELCOME. */
int trib_view_boots(const struct trib_view *v, struct trib_str agent_id,
                    struct trib_wire_boot_pos *out, int max);
/* Forgets boots of agent_id other than 'current' and those in keep[]
 * (the agent no longer holds their events). */
void trib_view_forget_boots(struct trib_view *v, struct trib_str agent_id,
                            uint64_t current, const uint64_t *keep, int nkeep);

/* ---- Events -------------------------------------------------------------- */

struct trib_apply_result {
    uint32_t applied;      /* events applied now                          */
    uint32_t duplicates;   /* events at or below the applied position     */
    uint32_t invalid;      /* events that failed to decode (skipped, but
                              their sequence numbers count as applied)    */
    uint64_t applied_seq;  /* position after the batch                  */
    uint64_t expected_seq; /* set with TRIB_ERANGE: the first missing seq */
};

/*
 * Applies an EVENT_BATCH from agent_id exactly once: events with sequence
 * <= the boot's applied position are duplicates; a batch starting beyond
 * applied + 1 is a gap: nothing is applied, returns TRIB_ERANGE with
 * r->expected_seq. A boot not seen before starts at applied = 0. Returns 0
 * or TRIB_ERANGE (gap) or TRIB_EPROTO (events is not an array). now_us:
 * coordinator clock, for windows and series.
 */
int trib_view_apply(struct trib_view *v, struct trib_str agent_id,
                    const struct trib_wire_batch *b, int64_t now_us,
                    struct trib_apply_result *r);

/* Durability (set by the store after its log is on disk). */
void trib_view_set_durable(struct trib_view *v, struct trib_str agent_id,
                           uint64_t boot_id, uint64_t seq);
/* Marks every boot's applied position durable (memory-only mode and after
 * loading a snapshot). */
void trib_view_all_durable(struct trib_view *v);
int trib_view_boot_pos(const struct trib_view *v, struct trib_str agent_id,
                       uint64_t boot_id, struct trib_wire_boot_pos *out);
/* Calls fn for every boot whose applied > durable (the store's sync set). */
void trib_view_each_undurable(const struct trib_view *v,
                              void (*fn)(void *arg, struct trib_str agent_id,
                                         uint64_t boot_id, uint64_t applied),
                              void *arg);

/* ---- Event ring (for `tributary events`) --------------------------------- */

/* Cursor of the next event to be applied (= total events applied + 1). */
uint64_t trib_view_cursor(const struct trib_view *v);
/*
 * Appends to sb, with trib_wire_enc_events_item(), up to max events with
 * cursor > after whose kind is in the kinds bitmask (0 = all). *missed
 * gets how many events after 'after' already left the ring; *next the
 * cursor to pass next time; returns the number appended. Encodes into a
 * scratch first: the caller writes the EVENTS_REPLY head with the count.
 */
uint32_t trib_view_ring_read(const struct trib_view *v, uint64_t after,
                             uint32_t max, uint32_t kinds, msgpack_sbuffer *sb,
                             uint64_t *next, uint64_t *missed);

/* ---- Queries (JSON documents, docs/CONTROL.md) ------------------------- */

struct trib_view_filter {
    const char *queue; /* NULL = any */
    const char *kind;
    const char *node;
    const char *tag; /* only for finished counts */
    int series_s;    /* status: seconds of "series" (0 = 60; max 3600) */
    int limit;       /* failures: groups listed (0 = 50)                */
};

/* Finished jobs and failures (discarded + cancelled) matching f. */
void trib_view_finished(const struct trib_view *v,
                        const struct trib_view_filter *f, int64_t *finished,
                        int64_t *failed);

/* Documents; the caller owns the returned json_t (json_decref). */
json_t *trib_view_status_json(const struct trib_view *v,
                              const struct trib_view_filter *f, int64_t now_us);
json_t *trib_view_nodes_json(const struct trib_view *v, int64_t now_us);
json_t *trib_view_failures_json(const struct trib_view *v,
                                const struct trib_view_filter *f);
/* Event-view totals for the polling view's comparison: calls fn once per
 * (queue, kind, final state) with the number of finishing events applied
 * (completed / discarded / cancelled), summed over nodes and clients. */
void trib_view_each_final(const struct trib_view *v,
                          void (*fn)(void *arg, const char *queue,
                                     const char *kind, int ws, int64_t n),
                          void *arg);
/* 1 when client_id belongs to an agent the coordinator has seen. */
int trib_view_client_known(const struct trib_view *v, const char *client_id);

/* ---- Persistence (store.c writes these to disk) ------------------------ */

/* Serialises the whole view (msgpack, versioned) to sb. */
int trib_view_save(const struct trib_view *v, msgpack_sbuffer *sb);
/* Replaces the contents of an empty view from a saved image. 0,
 * TRIB_EPROTO (corrupt) or TRIB_EVERSION (image from a newer build). */
int trib_view_load(struct trib_view *v, const void *buf, size_t len);

/* Counters for the coordinator's own health (status "coordinator"). */
struct trib_view_stats {
    uint64_t events_applied, duplicates, invalid, batches, gaps;
    uint64_t groups, failure_groups;
    uint64_t failures_other;  /* failures after the group table was full */
    uint64_t tags_overflow;   /* (finished event, tag) pairs not counted  */
    uint64_t groups_overflow; /* events counted in the "(other)" group    */
    uint64_t bytes;           /* memory held by the view                  */
};
void trib_view_stats(const struct trib_view *v, struct trib_view_stats *s);

#endif /* TRIB_VIEW_H */
