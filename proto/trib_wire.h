/*
 * trib_wire -- the versioned msgpack wire format between agents, the
 * coordinator and the CLI (proto/PROTOCOL.md is the normative text).
 *
 * Frame: one nng message = one msgpack array [version, type, body, ...]:
 *   version  uint  TRIB_WIRE_VERSION of the sender (only grows)
 *   type     uint  enum trib_wire_type (numbers only grow)
 *   body     map   integer keys (listed per message below); a decoder
 *                  skips keys it does not know, and extra array elements
 *                  after the body; absent keys take the documented default
 * A frame is at most TRIB_WIRE_FRAME_MAX bytes. Decoders run trib_mp_check()
 * before msgpack-c unpacks anything, so allocation is bounded by ~24x the
 * frame (TOOLCHAIN.md, msgpack amplification).
 *
 * Strings on the wire are msgpack str; decoded strings are borrowed
 * (pointer + length, NOT NUL-terminated): they point into the frame bytes
 * (msgpack-c references str/bin data), and arrays/maps live in the caller's
 * msgpack_zone, so both the frame and the zone must outlive their use.
 *
 * Conversations (nng req/rep; the requester is the agent or the CLI):
 *   agent:  HELLO -> CHALLENGE;  AUTH -> WELCOME | ERROR
 *           EVENT_BATCH -> ACK | ERROR;  HEARTBEAT -> ACK;  GOODBYE -> ACK
 *   CLI:    QUERY -> QUERY_REPLY;  EVENTS -> EVENTS_REPLY
 * Any request may be answered with ERROR (code is a trib_err value).
 *
 * Ownership: encoders append to a caller-owned msgpack_sbuffer (growing it
 * aborts on OOM, the trib_mem.h policy); decoders fill caller-owned structs
 * whose strings borrow from the frame and whose objects live in the zone.
 * Threading: no shared state.
 */
#ifndef TRIB_WIRE_H
#define TRIB_WIRE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define TRIB_WIRE_VERSION     1
#define TRIB_WIRE_FRAME_MAX   (4u << 20) /* NNG_OPT_RECVMAXSZ on every socket */
#define TRIB_WIRE_BATCH_MAX   4096       /* events per EVENT_BATCH           */
#define TRIB_WIRE_BATCH_BYTES (1u << 20) /* encoded events per batch       */
#define TRIB_WIRE_ERROR_MAX   1024 /* error text bytes (encoder truncates) */
#define TRIB_WIRE_STR_MAX     256  /* ids, names, queues, kinds, tags      */
#define TRIB_WIRE_MAX_TAGS    16   /* decoder keeps the first 16           */
#define TRIB_WIRE_MAX_CAPS    16   /* capabilities per HELLO               */
#define TRIB_WIRE_MAX_CLIENTS 64   /* per HELLO / HEARTBEAT                */
#define TRIB_WIRE_MAX_QUEUES  64   /* per client in HELLO                  */
#define TRIB_WIRE_MAX_BOOTS   64   /* per HELLO / WELCOME                  */
#define TRIB_WIRE_NONCE       32   /* bytes                                */
#define TRIB_WIRE_MAC         32   /* HMAC-SHA256                          */

enum trib_wire_type {
    TRIB_MSG_HELLO = 1,
    TRIB_MSG_CHALLENGE = 2,
    TRIB_MSG_AUTH = 3,
    TRIB_MSG_WELCOME = 4,
    TRIB_MSG_EVENT_BATCH = 5,
    TRIB_MSG_ACK = 6,
    TRIB_MSG_HEARTBEAT = 7,
    TRIB_MSG_ERROR = 8,
    TRIB_MSG_GOODBYE = 9,
    TRIB_MSG_QUERY = 20,
    TRIB_MSG_QUERY_REPLY = 21,
    TRIB_MSG_EVENTS = 22,
    TRIB_MSG_EVENTS_REPLY = 23,
};

/* Job states on the wire (river_job_state), stable numbers. */
enum trib_wire_state {
    TRIB_WS_UNKNOWN = 0,
    TRIB_WS_AVAILABLE = 1,
    TRIB_WS_CANCELLED = 2,
    TRIB_WS_COMPLETED = 3,
    TRIB_WS_DISCARDED = 4,
    TRIB_WS_PENDING = 5,
    TRIB_WS_RETRYABLE = 6,
    TRIB_WS_RUNNING = 7,
    TRIB_WS_SCHEDULED = 8,
};
#define TRIB_WS_COUNT 9
const char *trib_wire_state_name(int ws); /* "completed"; "unknown"     */
int trib_wire_state_parse(const char *s); /* TRIB_WS_UNKNOWN if unknown */

/* A borrowed string: NOT NUL-terminated. {NULL,0} = absent/nil. */
struct trib_str {
    const char *p;
    uint32_t n;
};
struct trib_str trib_str_c(const char *s); /* from a C string (NULL ok) */

/*
 * One job or queue event (agent/events.h's trib_event on the wire). Event
 * map keys: 0 kind, 1 client_id, 2 job_id, 3 attempt, 4 max_attempts,
 * 5 queue, 6 job_kind, 7 state (trib_wire_state), 8 priority, 9 tags
 * (array of str), 10 created_at, 11 scheduled_at, 12 attempted_at,
 * 13 finalized_at, 14 next_scheduled_at, 15 queue_wait_us, 16 run_us,
 * 17 complete_us, 18 error (str or nil), 19 at.
 * Times are int64 microseconds since the Unix epoch, database clock,
 * 0 = NULL; durations are int64 microseconds.
 */
struct trib_wire_event {
    int kind; /* enum trib_event_kind (agent/events.h): 1..7 */
    struct trib_str client_id;
    int64_t job_id;
    int32_t attempt;
    int32_t max_attempts;
    struct trib_str queue;
    struct trib_str job_kind;
    int state; /* enum trib_wire_state */
    int32_t priority;
    struct trib_str tags[TRIB_WIRE_MAX_TAGS];
    int ntags;
    int64_t created_at, scheduled_at, attempted_at, finalized_at,
        next_scheduled_at;
    int64_t queue_wait_us, run_us, complete_us;
    struct trib_str error;
    int64_t at;
};

/* Appends one event map (no envelope) to sb: the unit an agent stores in
 * its outbox and an EVENT_BATCH concatenates. Error text is truncated to
 * TRIB_WIRE_ERROR_MAX bytes (at a UTF-8 boundary), other strings to
 * TRIB_WIRE_STR_MAX. Keys holding their default (0, absent string, no
 * tags) are left out. Returns 0. */
int trib_wire_event_encode(msgpack_sbuffer *sb,
                           const struct trib_wire_event *ev);
/* Decodes one event map. 0, or TRIB_EPROTO (not a map, wrong value types,
 * kind absent or out of 1..7, string longer than its limit). A state this
 * version does not know reads as TRIB_WS_UNKNOWN. */
int trib_wire_event_decode(const msgpack_object *o, struct trib_wire_event *ev);

/* ---- Agent -> coordinator ---------------------------------------------- */

struct trib_wire_client {
    struct trib_str id;
    struct trib_str mode; /* "notify" | "poll" */
    struct trib_str queues[TRIB_WIRE_MAX_QUEUES];
    int nqueues;
};

/* HELLO keys: 0 agent_id, 1 boot_id (uint64), 2 host, 3 version, 4 pid,
 * 5 capabilities (array of str), 6 clients (array of maps: 0 id, 1 mode,
 * 2 queues), 7 nonce (bin, the agent's challenge for mutual auth),
 * 8 boots (array of uint64: boot ids with events still in the outbox),
 * 9 started_at (us), 10 heartbeat_ms. */
struct trib_wire_hello {
    struct trib_str agent_id;
    uint64_t boot_id;
    struct trib_str host;
    struct trib_str version;
    int64_t pid;
    struct trib_str caps[TRIB_WIRE_MAX_CAPS];
    int ncaps;
    struct trib_wire_client clients[TRIB_WIRE_MAX_CLIENTS];
    int nclients;
    uint8_t nonce[TRIB_WIRE_NONCE];
    uint64_t boots[TRIB_WIRE_MAX_BOOTS];
    int nboots;
    int64_t started_at;
    int64_t heartbeat_ms;
};

/* CHALLENGE keys: 0 nonce (bin 32), 1 coordinator_id (str),
 * 2 auth_required (bool). */
struct trib_wire_challenge {
    uint8_t nonce[TRIB_WIRE_NONCE];
    struct trib_str coordinator_id;
    int auth_required;
};

/* AUTH keys: 0 mac (bin 32) = trib_auth_agent_mac(). */
struct trib_wire_auth {
    uint8_t mac[TRIB_WIRE_MAC];
};

struct trib_wire_boot_pos {
    uint64_t boot_id;
    uint64_t applied; /* highest sequence applied (0 = none) */
    uint64_t durable; /* highest sequence on the coordinator's disk */
};

/* WELCOME keys: 0 mac (bin 32) = trib_auth_coord_mac() (zeros when auth
 * is off), 1 boots (array of [boot_id, applied, durable]) for every boot
 * of this agent the coordinator remembers, 2 heartbeat_ms. */
struct trib_wire_welcome {
    uint8_t mac[TRIB_WIRE_MAC];
    struct trib_wire_boot_pos boots[TRIB_WIRE_MAX_BOOTS];
    int nboots;
    int64_t heartbeat_ms;
};

/* EVENT_BATCH keys: 0 boot_id, 1 first_seq (>= 1), 2 events (array of
 * event maps; sequences first_seq .. first_seq + n - 1). The decoder does
 * not decode the events: iterate events->via.array with
 * trib_wire_event_decode(). */
struct trib_wire_batch {
    uint64_t boot_id;
    uint64_t first_seq;
    const msgpack_object *events; /* MSGPACK_OBJECT_ARRAY, n <= BATCH_MAX */
};

/* ACK keys: 0 boot_id, 1 applied, 2 durable. */
struct trib_wire_ack {
    uint64_t boot_id;
    uint64_t applied;
    uint64_t durable;
};

struct trib_wire_client_sample {
    struct trib_str id;
    int64_t in_flight;
    int fetch_paused; /* backpressure: outbox full */
};

/* HEARTBEAT keys: 0 boot_id, 1 at (us, agent clock), 2 cpu_user_us,
 * 3 cpu_sys_us, 4 rss_bytes, 5 threads, 6 outbox_events, 7 outbox_bytes,
 * 8 db_conns, 9 clients (array of maps: 0 id, 1 in_flight,
 * 2 fetch_paused), 10 last_seq (highest sequence written this boot). */
struct trib_wire_heartbeat {
    uint64_t boot_id;
    int64_t at;
    int64_t cpu_user_us, cpu_sys_us;
    int64_t rss_bytes;
    int64_t threads;
    int64_t outbox_events, outbox_bytes;
    int64_t db_conns;
    struct trib_wire_client_sample clients[TRIB_WIRE_MAX_CLIENTS];
    int nclients;
    uint64_t last_seq;
};

/* ERROR keys: 0 code (int, trib_err), 1 message (str), 2 expected_seq
 * (uint, set for a sequence gap: resend from there). */
struct trib_wire_error {
    int code;
    struct trib_str message;
    uint64_t expected_seq;
};

/* GOODBYE keys: 0 boot_id, 1 reason (str). The agent is stopping cleanly. */
struct trib_wire_goodbye {
    uint64_t boot_id;
    struct trib_str reason;
};

/* ---- CLI -> coordinator -------------------------------------------------- */

#define TRIB_WIRE_MAX_ARGS 16
struct trib_wire_arg {
    struct trib_str key;
    struct trib_str str; /* set when the value is a string   */
    int64_t num;         /* set when the value is an integer */
    int is_str;
};

/* QUERY keys: 0 name (str: "status", "nodes", "failures", "wait", ...),
 * 1 args (map str -> str|int). See docs/CONTROL.md for names and args. */
struct trib_wire_query {
    struct trib_str name;
    struct trib_wire_arg args[TRIB_WIRE_MAX_ARGS];
    int nargs;
};
/* Returns the arg named key or NULL. */
const struct trib_wire_arg *trib_wire_query_arg(const struct trib_wire_query *q,
                                                const char *key);

/* QUERY_REPLY keys: 0 code (int, 0 = ok), 1 json (str: the document). */
struct trib_wire_query_reply {
    int code;
    struct trib_str json;
};

/* EVENTS keys: 0 after (uint: cursor; UINT64_MAX = "from now"), 1 max
 * (uint), 2 kinds (uint bitmask, bit k = event kind k; 0 = all),
 * 3 wait_ms (long-poll when nothing is new). */
struct trib_wire_events_req {
    uint64_t after;
    uint32_t max;
    uint32_t kinds;
    int64_t wait_ms;
};

/* EVENTS_REPLY keys: 0 next (cursor to send next), 1 missed (events that
 * left the coordinator's ring before this reader read them), 2 events
 * (array of [seq, node (str), event map]). Decode items with
 * trib_wire_events_item(). */
struct trib_wire_events_reply {
    uint64_t next;
    uint64_t missed;
    const msgpack_object *events;
};
int trib_wire_events_item(const msgpack_object *o, uint64_t *seq,
                          struct trib_str *node, struct trib_wire_event *ev);

/* ---- Frames -------------------------------------------------------------- */

/* A decoded frame. Which member is valid follows 'type'. */
struct trib_wire_msg {
    uint32_t version;
    uint32_t type;
    union {
        struct trib_wire_hello hello;
        struct trib_wire_challenge challenge;
        struct trib_wire_auth auth;
        struct trib_wire_welcome welcome;
        struct trib_wire_batch batch;
        struct trib_wire_ack ack;
        struct trib_wire_heartbeat heartbeat;
        struct trib_wire_error error;
        struct trib_wire_goodbye goodbye;
        struct trib_wire_query query;
        struct trib_wire_query_reply query_reply;
        struct trib_wire_events_req events_req;
        struct trib_wire_events_reply events_reply;
    } u;
};

/*
 * Decodes one frame: size cap, trib_mp_check(), msgpack unpack into zone,
 * envelope, body. Returns 0; TRIB_ERANGE (frame larger than
 * TRIB_WIRE_FRAME_MAX or too deep/count too large); TRIB_EPROTO (malformed,
 * truncated, wrong types, missing required keys); TRIB_ENOTSUP (an unknown
 * message type: out->version and out->type are set so the receiver can
 * answer ERROR and keep the connection); TRIB_ENOMEM (the zone could not
 * grow). The frame and the zone must outlive the use of *out
 * (msgpack_zone_clear() between frames). Speed: the zone keeps its first
 * chunk across msgpack_zone_clear(), so a receiver that creates it with a
 * chunk holding a whole batch's objects (msgpack_zone_init(&z, 1 << 20))
 * decodes without malloc: twice the throughput (bench/wire_bench.c).
 */
int trib_wire_decode(const void *frame, size_t len, msgpack_zone *zone,
                     struct trib_wire_msg *out);

/* Encoders: append one whole frame to sb (cleared by the caller). 0, or
 * TRIB_ERANGE from trib_wire_enc_query_reply() when the document cannot fit
 * a frame (nothing appended). Strings are cut at a UTF-8 boundary to their
 * limit; counts are clamped to the struct's capacity. */
int trib_wire_enc_hello(msgpack_sbuffer *sb, const struct trib_wire_hello *m);
int trib_wire_enc_challenge(msgpack_sbuffer *sb,
                            const struct trib_wire_challenge *m);
int trib_wire_enc_auth(msgpack_sbuffer *sb, const struct trib_wire_auth *m);
int trib_wire_enc_welcome(msgpack_sbuffer *sb,
                          const struct trib_wire_welcome *m);
int trib_wire_enc_ack(msgpack_sbuffer *sb, const struct trib_wire_ack *m);
int trib_wire_enc_heartbeat(msgpack_sbuffer *sb,
                            const struct trib_wire_heartbeat *m);
int trib_wire_enc_error(msgpack_sbuffer *sb, const struct trib_wire_error *m);
int trib_wire_enc_goodbye(msgpack_sbuffer *sb,
                          const struct trib_wire_goodbye *m);
int trib_wire_enc_query(msgpack_sbuffer *sb, const struct trib_wire_query *m);
int trib_wire_enc_query_reply(msgpack_sbuffer *sb,
                              const struct trib_wire_query_reply *m);
int trib_wire_enc_events_req(msgpack_sbuffer *sb,
                             const struct trib_wire_events_req *m);

/*
 * EVENT_BATCH in two steps, so an agent can send events straight from its
 * outbox: trib_wire_enc_batch_head() writes the envelope and an array
 * header of n events; the caller then appends exactly n event maps (from
 * trib_wire_event_encode(), possibly stored earlier).
 */
int trib_wire_enc_batch_head(msgpack_sbuffer *sb, uint64_t boot_id,
                             uint64_t first_seq, uint32_t n);
/* EVENTS_REPLY likewise: head, then n items appended with
 * trib_wire_enc_events_item(). */
int trib_wire_enc_events_reply_head(msgpack_sbuffer *sb, uint64_t next,
                                    uint64_t missed, uint32_t n);
int trib_wire_enc_events_item(msgpack_sbuffer *sb, uint64_t seq,
                              struct trib_str node,
                              const struct trib_wire_event *ev);

const char *trib_wire_type_name(uint32_t type); /* "HELLO"; "unknown" */

#endif /* TRIB_WIRE_H */
