/*
 * trib_wire_event.c -- the event map: the unit an agent stores in its outbox,
 * an EVENT_BATCH concatenates and an EVENTS_REPLY carries to the CLI.
 *
 * This is the ingest hot path (target: 1,000,000 events/s through one
 * coordinator), so both directions are written for speed: the encoder packs
 * integers and strings straight into the buffer (no printf, no strlen), and
 * the decoder makes one pass over the map with a switch on the key, without
 * allocating. Keys whose value is the default (0, absent string, no tags)
 * are omitted by the encoder: decoding gives the same struct back, and a
 * queue_paused event costs a handful of bytes.
 */
#include "trib_wire.h"
#include "trib_wire_codec.h"

/* Event map keys (trib_wire.h; wire-visible, never renumber). */
enum {
    EK_KIND = 0,
    EK_CLIENT_ID = 1,
    EK_JOB_ID = 2,
    EK_ATTEMPT = 3,
    EK_MAX_ATTEMPTS = 4,
    EK_QUEUE = 5,
    EK_JOB_KIND = 6,
    EK_STATE = 7,
    EK_PRIORITY = 8,
    EK_TAGS = 9,
    EK_CREATED_AT = 10,
    EK_SCHEDULED_AT = 11,
    EK_ATTEMPTED_AT = 12,
    EK_FINALIZED_AT = 13,
    EK_NEXT_SCHEDULED_AT = 14,
    EK_QUEUE_WAIT_US = 15,
    EK_RUN_US = 16,
    EK_COMPLETE_US = 17,
    EK_ERROR = 18,
    EK_AT = 19,
};

/* enum trib_event_kind (agent/events.h): job_completed .. queue_resumed. */
#define KIND_MIN 1
#define KIND_MAX 7

static const char *const state_names[TRIB_WS_COUNT] = {
    "unknown", "available", "cancelled", "completed", "discarded",
    "pending", "retryable", "running",   "scheduled",
};

const char *trib_wire_state_name(int ws)
{
    if (ws < 0 || ws >= TRIB_WS_COUNT) {
        return state_names[TRIB_WS_UNKNOWN];
    }
    return state_names[ws];
}

int trib_wire_state_parse(const char *s)
{
    int i;

    if (s == NULL) {
        return TRIB_WS_UNKNOWN;
    }
    for (i = 1; i < TRIB_WS_COUNT; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            return i;
        }
    }
    return TRIB_WS_UNKNOWN;
}

struct trib_str trib_str_c(const char *s)
{
    struct trib_str r = {s, s != NULL ? (uint32_t)strlen(s) : 0};

    return r;
}

/* ---- encoding ----------------------------------------------------------- */

static inline void put_i64(msgpack_packer *pk, int key, int64_t v)
{
    if (v != 0) {
        msgpack_pack_uint8(pk, (uint8_t)key);
        msgpack_pack_int64(pk, v);
    }
}

static inline void put_str(msgpack_packer *pk, int key, struct trib_str s,
                           uint32_t max)
{
    if (s.p != NULL) {
        msgpack_pack_uint8(pk, (uint8_t)key);
        trib__pack_str(pk, s, max);
    }
}

int trib_wire_event_encode(msgpack_sbuffer *sb,
                           const struct trib_wire_event *ev)
{
    msgpack_packer pk;
    int ntags = trib__count(ev->ntags, TRIB_WIRE_MAX_TAGS);
    uint32_t nkeys;
    int i;

    nkeys = (ev->kind != 0) + (ev->client_id.p != NULL) + (ev->job_id != 0) +
            (ev->attempt != 0) + (ev->max_attempts != 0) +
            (ev->queue.p != NULL) + (ev->job_kind.p != NULL) +
            (ev->state != 0) + (ev->priority != 0) + (ntags > 0) +
            (ev->created_at != 0) + (ev->scheduled_at != 0) +
            (ev->attempted_at != 0) + (ev->finalized_at != 0) +
            (ev->next_scheduled_at != 0) + (ev->queue_wait_us != 0) +
            (ev->run_us != 0) + (ev->complete_us != 0) + (ev->error.p != NULL) +
            (ev->at != 0);
    trib__wire_packer(&pk, sb);
    msgpack_pack_map(&pk, nkeys);
    put_i64(&pk, EK_KIND, ev->kind);
    put_str(&pk, EK_CLIENT_ID, ev->client_id, TRIB_WIRE_STR_MAX);
    put_i64(&pk, EK_JOB_ID, ev->job_id);
    put_i64(&pk, EK_ATTEMPT, ev->attempt);
    put_i64(&pk, EK_MAX_ATTEMPTS, ev->max_attempts);
    put_str(&pk, EK_QUEUE, ev->queue, TRIB_WIRE_STR_MAX);
    put_str(&pk, EK_JOB_KIND, ev->job_kind, TRIB_WIRE_STR_MAX);
    put_i64(&pk, EK_STATE, ev->state);
    put_i64(&pk, EK_PRIORITY, ev->priority);
    if (ntags > 0) {
        msgpack_pack_uint8(&pk, EK_TAGS);
        msgpack_pack_array(&pk, (size_t)ntags);
        for (i = 0; i < ntags; i++) {
            struct trib_str t = ev->tags[i];

            if (t.p == NULL) {
                t.p = ""; /* tags are str, never nil */
                t.n = 0;
            }
            trib__pack_str(&pk, t, TRIB_WIRE_STR_MAX);
        }
    }
    put_i64(&pk, EK_CREATED_AT, ev->created_at);
    put_i64(&pk, EK_SCHEDULED_AT, ev->scheduled_at);
    put_i64(&pk, EK_ATTEMPTED_AT, ev->attempted_at);
    put_i64(&pk, EK_FINALIZED_AT, ev->finalized_at);
    put_i64(&pk, EK_NEXT_SCHEDULED_AT, ev->next_scheduled_at);
    put_i64(&pk, EK_QUEUE_WAIT_US, ev->queue_wait_us);
    put_i64(&pk, EK_RUN_US, ev->run_us);
    put_i64(&pk, EK_COMPLETE_US, ev->complete_us);
    put_str(&pk, EK_ERROR, ev->error, TRIB_WIRE_ERROR_MAX);
    put_i64(&pk, EK_AT, ev->at);
    return 0;
}

/* ---- decoding ----------------------------------------------------------- */

static int get_tags(const msgpack_object *o, struct trib_wire_event *ev)
{
    uint32_t i;

    if (o->type != MSGPACK_OBJECT_ARRAY) {
        return TRIB_EPROTO;
    }
    ev->ntags = 0;
    for (i = 0; i < o->via.array.size; i++) {
        struct trib_str t;

        if (trib__get_str(&o->via.array.ptr[i], TRIB_WIRE_STR_MAX, &t) != 0) {
            return TRIB_EPROTO;
        }
        if (ev->ntags < TRIB_WIRE_MAX_TAGS) { /* keep the first 16 */
            ev->tags[ev->ntags++] = t;
        }
    }
    return 0;
}

/* A state number: a newer sender's state (>= TRIB_WS_COUNT) reads as
 * TRIB_WS_UNKNOWN rather than failing the event. */
static int get_state(const msgpack_object *o, int *state)
{
    uint64_t v;

    if (trib__get_u64(o, &v) != 0) {
        return TRIB_EPROTO;
    }
    *state = v < TRIB_WS_COUNT ? (int)v : TRIB_WS_UNKNOWN;
    return 0;
}

int trib_wire_event_decode(const msgpack_object *o, struct trib_wire_event *ev)
{
    const msgpack_object_kv *kv, *end;
    int64_t kind = 0;
    int rc = 0;

    memset(ev, 0, sizeof(*ev));
    if (o->type != MSGPACK_OBJECT_MAP) {
        return TRIB_EPROTO;
    }
    kv = o->via.map.ptr;
    end = kv + o->via.map.size;
    for (; kv < end && rc == 0; kv++) {
        const msgpack_object *v = &kv->val;

        switch (trib__key(kv)) {
        case EK_KIND:
            rc = trib__get_range(v, KIND_MIN, KIND_MAX, &kind);
            break;
        case EK_CLIENT_ID:
            rc = trib__get_str(v, TRIB_WIRE_STR_MAX, &ev->client_id);
            break;
        case EK_JOB_ID:
            rc = trib__get_i64(v, &ev->job_id);
            break;
        case EK_ATTEMPT:
            rc = trib__get_i32(v, &ev->attempt);
            break;
        case EK_MAX_ATTEMPTS:
            rc = trib__get_i32(v, &ev->max_attempts);
            break;
        case EK_QUEUE:
            rc = trib__get_str(v, TRIB_WIRE_STR_MAX, &ev->queue);
            break;
        case EK_JOB_KIND:
            rc = trib__get_str(v, TRIB_WIRE_STR_MAX, &ev->job_kind);
            break;
        case EK_STATE:
            rc = get_state(v, &ev->state);
            break;
        case EK_PRIORITY:
            rc = trib__get_i32(v, &ev->priority);
            break;
        case EK_TAGS:
            rc = get_tags(v, ev);
            break;
        case EK_CREATED_AT:
            rc = trib__get_i64(v, &ev->created_at);
            break;
        case EK_SCHEDULED_AT:
            rc = trib__get_i64(v, &ev->scheduled_at);
            break;
        case EK_ATTEMPTED_AT:
            rc = trib__get_i64(v, &ev->attempted_at);
            break;
        case EK_FINALIZED_AT:
            rc = trib__get_i64(v, &ev->finalized_at);
            break;
        case EK_NEXT_SCHEDULED_AT:
            rc = trib__get_i64(v, &ev->next_scheduled_at);
            break;
        case EK_QUEUE_WAIT_US:
            rc = trib__get_i64(v, &ev->queue_wait_us);
            break;
        case EK_RUN_US:
            rc = trib__get_i64(v, &ev->run_us);
            break;
        case EK_COMPLETE_US:
            rc = trib__get_i64(v, &ev->complete_us);
            break;
        case EK_ERROR:
            rc = trib__get_str(v, TRIB_WIRE_ERROR_MAX, &ev->error);
            break;
        case EK_AT:
            rc = trib__get_i64(v, &ev->at);
            break;
        default:
            break; /* unknown key (a newer sender's): skipped */
        }
    }
    if (rc != 0 || kind == 0) {
        return TRIB_EPROTO; /* a wrong type, or no kind at all */
    }
    ev->kind = (int)kind;
    return 0;
}

/* ---- EVENTS_REPLY items: [seq, node, event map] ------------------------- */

int trib_wire_enc_events_item(msgpack_sbuffer *sb, uint64_t seq,
                              struct trib_str node,
                              const struct trib_wire_event *ev)
{
    msgpack_packer pk;

    trib__wire_packer(&pk, sb);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, seq);
    trib__pack_str(&pk, node, TRIB_WIRE_STR_MAX);
    return trib_wire_event_encode(sb, ev);
}

int trib_wire_events_item(const msgpack_object *o, uint64_t *seq,
                          struct trib_str *node, struct trib_wire_event *ev)
{
    const msgpack_object *a;

    node->p = NULL;
    node->n = 0;
    *seq = 0;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3) {
        memset(ev, 0, sizeof(*ev));
        return TRIB_EPROTO;
    }
    a = o->via.array.ptr; /* extra elements after the event: ignored */
    if (trib__get_u64(&a[0], seq) != 0 ||
        (a[1].type != MSGPACK_OBJECT_NIL &&
         trib__get_str(&a[1], TRIB_WIRE_STR_MAX, node) != 0)) {
        memset(ev, 0, sizeof(*ev));
        return TRIB_EPROTO;
    }
    return trib_wire_event_decode(&a[2], ev);
}
