/*
 * trib_wire.c -- writing frames: the envelope [version, type, body] and the
 * body of every message (the event map is in trib_wire_event.c, reading in
 * trib_wire_decode.c). PROTOCOL.md is the normative description; the key
 * numbers below are wire-visible and never renumbered.
 *
 * Encoders write every key of a message in key order (an absent string as
 * nil), so a message always has the same shape and the golden fixtures
 * pin it down byte for byte.
 */
#include "trib_wire.h"
#include "trib_wire_codec.h"

const char *trib_wire_type_name(uint32_t type)
{
    switch (type) {
    case TRIB_MSG_HELLO:
        return "HELLO";
    case TRIB_MSG_CHALLENGE:
        return "CHALLENGE";
    case TRIB_MSG_AUTH:
        return "AUTH";
    case TRIB_MSG_WELCOME:
        return "WELCOME";
    case TRIB_MSG_EVENT_BATCH:
        return "EVENT_BATCH";
    case TRIB_MSG_ACK:
        return "ACK";
    case TRIB_MSG_HEARTBEAT:
        return "HEARTBEAT";
    case TRIB_MSG_ERROR:
        return "ERROR";
    case TRIB_MSG_GOODBYE:
        return "GOODBYE";
    case TRIB_MSG_QUERY:
        return "QUERY";
    case TRIB_MSG_QUERY_REPLY:
        return "QUERY_REPLY";
    case TRIB_MSG_EVENTS:
        return "EVENTS";
    case TRIB_MSG_EVENTS_REPLY:
        return "EVENTS_REPLY";
    default:
        return "unknown";
    }
}

const struct trib_wire_arg *trib_wire_query_arg(const struct trib_wire_query *q,
                                                const char *key)
{
    size_t n = strlen(key);
    int i;

    for (i = 0; i < q->nargs && i < TRIB_WIRE_MAX_ARGS; i++) {
        const struct trib_wire_arg *a = &q->args[i];

        if (a->key.n == n && memcmp(a->key.p, key, n) == 0) {
            return a;
        }
    }
    return NULL;
}

/* ---- encoding ----------------------------------------------------------- */

/* [TRIB_WIRE_VERSION, type, map of nkeys ...] */
static void head(msgpack_packer *pk, msgpack_sbuffer *sb, uint32_t type,
                 uint32_t nkeys)
{
    trib__wire_packer(pk, sb);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint32(pk, TRIB_WIRE_VERSION);
    msgpack_pack_uint32(pk, type);
    msgpack_pack_map(pk, nkeys);
}

static void key(msgpack_packer *pk, unsigned k)
{
    msgpack_pack_uint8(pk, (uint8_t)k);
}

static void bin(msgpack_packer *pk, const uint8_t *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

static void bool_(msgpack_packer *pk, int v)
{
    if (v) {
        msgpack_pack_true(pk);
    } else {
        msgpack_pack_false(pk);
    }
}

static void str_array(msgpack_packer *pk, const struct trib_str *s, int n,
                      int cap)
{
    int i;

    n = trib__count(n, cap);
    msgpack_pack_array(pk, (size_t)n);
    for (i = 0; i < n; i++) {
        struct trib_str t = s[i];

        if (t.p == NULL) {
            t.p = ""; /* array elements are str, never nil */
        }
        trib__pack_str(pk, t, TRIB_WIRE_STR_MAX);
    }
}

int trib_wire_enc_hello(msgpack_sbuffer *sb, const struct trib_wire_hello *m)
{
    msgpack_packer pk;
    int i, n;

    head(&pk, sb, TRIB_MSG_HELLO, 11);
    key(&pk, 0);
    trib__pack_str(&pk, m->agent_id, TRIB_WIRE_STR_MAX);
    key(&pk, 1);
    msgpack_pack_uint64(&pk, m->boot_id);
    key(&pk, 2);
    trib__pack_str(&pk, m->host, TRIB_WIRE_STR_MAX);
    key(&pk, 3);
    trib__pack_str(&pk, m->version, TRIB_WIRE_STR_MAX);
    key(&pk, 4);
    msgpack_pack_int64(&pk, m->pid);
    key(&pk, 5);
    str_array(&pk, m->caps, m->ncaps, TRIB_WIRE_MAX_CAPS);
    key(&pk, 6);
    n = trib__count(m->nclients, TRIB_WIRE_MAX_CLIENTS);
    msgpack_pack_array(&pk, (size_t)n);
    for (i = 0; i < n; i++) {
        const struct trib_wire_client *c = &m->clients[i];

        msgpack_pack_map(&pk, 3);
        key(&pk, 0);
        trib__pack_str(&pk, c->id, TRIB_WIRE_STR_MAX);
        key(&pk, 1);
        trib__pack_str(&pk, c->mode, TRIB_WIRE_STR_MAX);
        key(&pk, 2);
        str_array(&pk, c->queues, c->nqueues, TRIB_WIRE_MAX_QUEUES);
    }
    key(&pk, 7);
    bin(&pk, m->nonce, TRIB_WIRE_NONCE);
    key(&pk, 8);
    n = trib__count(m->nboots, TRIB_WIRE_MAX_BOOTS);
    msgpack_pack_array(&pk, (size_t)n);
    for (i = 0; i < n; i++) {
        msgpack_pack_uint64(&pk, m->boots[i]);
    }
    key(&pk, 9);
    msgpack_pack_int64(&pk, m->started_at);
    key(&pk, 10);
    msgpack_pack_int64(&pk, m->heartbeat_ms);
    return 0;
}

int trib_wire_enc_challenge(msgpack_sbuffer *sb,
                            const struct trib_wire_challenge *m)
{
    msgpack_packer pk;

    head(&pk, sb, TRIB_MSG_CHALLENGE, 3);
    key(&pk, 0);
    bin(&pk, m->nonce, TRIB_WIRE_NONCE);
    key(&pk, 1);
    trib__pack_str(&pk, m->coordinator_id, TRIB_WIRE_STR_MAX);
    key(&pk, 2);
    bool_(&pk, m->auth_required);
    return 0;
}

int trib_wire_enc_auth(msgpack_sbuffer *sb, const struct trib_wire_auth *m)
{
    msgpack_packer pk;

    head(&pk, sb, TRIB_MSG_AUTH, 1);
    key(&pk, 0);
    bin(&pk, m->mac, TRIB_WIRE_MAC);
    return 0;
}

int trib_wire_enc_welcome(msgpack_sbuffer *sb,
                          const struct trib_wire_welcome *m)
{
    msgpack_packer pk;
    int i, n = trib__count(m->nboots, TRIB_WIRE_MAX_BOOTS);

    head(&pk, sb, TRIB_MSG_WELCOME, 3);
    key(&pk, 0);
    bin(&pk, m->mac, TRIB_WIRE_MAC);
    key(&pk, 1);
    msgpack_pack_array(&pk, (size_t)n);
    for (i = 0; i < n; i++) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint64(&pk, m->boots[i].boot_id);
        msgpack_pack_uint64(&pk, m->boots[i].applied);
        msgpack_pack_uint64(&pk, m->boots[i].durable);
    }
    key(&pk, 2);
    msgpack_pack_int64(&pk, m->heartbeat_ms);
    return 0;
}

int trib_wire_enc_batch_head(msgpack_sbuffer *sb, uint64_t boot_id,
                             uint64_t first_seq, uint32_t n)
{
    msgpack_packer pk;

    head(&pk, sb, TRIB_MSG_EVENT_BATCH, 3);
    key(&pk, 0);
    msgpack_pack_uint64(&pk, boot_id);
    key(&pk, 1);
    msgpack_pack_uint64(&pk, first_seq);
    key(&pk, 2);
    msgpack_pack_array(&pk, n); /* the caller appends n event maps */
    return 0;
}

int trib_wire_enc_ack(msgpack_sbuffer *sb, const struct trib_wire_ack *m)
{
    msgpack_packer pk;

    head(&pk, sb, TRIB_MSG_ACK, 3);
    key(&pk, 0);
    msgpack_pack_uint64(&pk, m->boot_id);
    key(&pk, 1);
    msgpack_pack_uint64(&pk, m->applied);
    key(&pk, 2);
    msgpack_pack_uint64(&pk, m->durable);
    return 0;
}

int trib_wire_enc_heartbeat(msgpack_sbuffer *sb,
                            const struct trib_wire_heartbeat *m)
{
    msgpack_packer pk;
    int i, n = trib__count(m->nclients, TRIB_WIRE_MAX_CLIENTS);

    head(&pk, sb, TRIB_MSG_HEARTBEAT, 11);
    key(&pk, 0);
    msgpack_pack_uint64(&pk, m->boot_id);
    key(&pk, 1);
    msgpack_pack_int64(&pk, m->at);
    key(&pk, 2);
    msgpack_pack_int64(&pk, m->cpu_user_us);
    key(&pk, 3);
    msgpack_pack_int64(&pk, m->cpu_sys_us);
    key(&pk, 4);
    msgpack_pack_int64(&pk, m->rss_bytes);
    key(&pk, 5);
    msgpack_pack_int64(&pk, m->threads);
    key(&pk, 6);
    msgpack_pack_int64(&pk, m->outbox_events);
    key(&pk, 7);
    msgpack_pack_int64(&pk, m->outbox_bytes);
    key(&pk, 8);
    msgpack_pack_int64(&pk, m->db_conns);
    key(&pk, 9);
    msgpack_pack_array(&pk, (size_t)n);
    for (i = 0; i < n; i++) {
        const struct trib_wire_client_sample *c = &m->clients[i];

        msgpack_pack_map(&pk, 3);
        key(&pk, 0);
        trib__pack_str(&pk, c->id, TRIB_WIRE_STR_MAX);
        key(&pk, 1);
        msgpack_pack_int64(&pk, c->in_flight);
        key(&pk, 2);
        bool_(&pk, c->fetch_paused);
    }
    key(&pk, 10);
    msgpack_pack_uint64(&pk, m->last_seq);
    return 0;
}

int trib_wire_enc_error(msgpack_sbuffer *sb, const struct trib_wire_error *m)
{
    msgpack_packer pk;

    head(&pk, sb, TRIB_MSG_ERROR, 3);
    key(&pk, 0);
    msgpack_pack_int(&pk, m->code);
    key(&pk, 1);
    trib__pack_str(&pk, m->message, TRIB_WIRE_ERROR_MAX);
    key(&pk, 2);
    msgpack_pack_uint64(&pk, m->expected_seq);
    return 0;
}

int trib_wire_enc_goodbye(msgpack_sbuffer *sb,
                          const struct trib_wire_goodbye *m)
{
    msgpack_packer pk;

    head(&pk, sb, TRIB_MSG_GOODBYE, 2);
    key(&pk, 0);
    msgpack_pack_uint64(&pk, m->boot_id);
    key(&pk, 1);
    trib__pack_str(&pk, m->reason, TRIB_WIRE_ERROR_MAX);
    return 0;
}

int trib_wire_enc_query(msgpack_sbuffer *sb, const struct trib_wire_query *m)
{
    msgpack_packer pk;
    int i, n = trib__count(m->nargs, TRIB_WIRE_MAX_ARGS);

    head(&pk, sb, TRIB_MSG_QUERY, 2);
    key(&pk, 0);
    trib__pack_str(&pk, m->name, TRIB_WIRE_STR_MAX);
    key(&pk, 1);
    msgpack_pack_map(&pk, (size_t)n);
    for (i = 0; i < n; i++) {
        const struct trib_wire_arg *a = &m->args[i];
        struct trib_str k = a->key;

        if (k.p == NULL) {
            k.p = ""; /* map keys are str, never nil */
        }
        trib__pack_str(&pk, k, TRIB_WIRE_STR_MAX);
        if (a->is_str) {
            trib__pack_str(&pk, a->str, TRIB_WIRE_STR_MAX);
        } else {
            msgpack_pack_int64(&pk, a->num);
        }
    }
    return 0;
}

int trib_wire_enc_query_reply(msgpack_sbuffer *sb,
                              const struct trib_wire_query_reply *m)
{
    msgpack_packer pk;

    /* The document is never cut: one that cannot fit a frame is refused,
     * and the caller answers with an error instead. */
    if (m->json.n > TRIB_WIRE_FRAME_MAX - 64) {
        return TRIB_ERANGE;
    }
    head(&pk, sb, TRIB_MSG_QUERY_REPLY, 2);
    key(&pk, 0);
    msgpack_pack_int(&pk, m->code);
    key(&pk, 1);
    trib__pack_str(&pk, m->json, TRIB_WIRE_FRAME_MAX);
    return 0;
}

int trib_wire_enc_events_req(msgpack_sbuffer *sb,
                             const struct trib_wire_events_req *m)
{
    msgpack_packer pk;

    head(&pk, sb, TRIB_MSG_EVENTS, 4);
    key(&pk, 0);
    msgpack_pack_uint64(&pk, m->after);
    key(&pk, 1);
    msgpack_pack_uint32(&pk, m->max);
    key(&pk, 2);
    msgpack_pack_uint32(&pk, m->kinds);
    key(&pk, 3);
    msgpack_pack_int64(&pk, m->wait_ms);
    return 0;
}

int trib_wire_enc_events_reply_head(msgpack_sbuffer *sb, uint64_t next,
                                    uint64_t missed, uint32_t n)
{
    msgpack_packer pk;

    head(&pk, sb, TRIB_MSG_EVENTS_REPLY, 3);
    key(&pk, 0);
    msgpack_pack_uint64(&pk, next);
    key(&pk, 1);
    msgpack_pack_uint64(&pk, missed);
    key(&pk, 2);
    msgpack_pack_array(&pk, n); /* the caller appends n items */
    return 0;
}
