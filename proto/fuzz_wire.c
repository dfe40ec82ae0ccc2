/*
 * fuzz_wire.c -- libFuzzer: trib_wire_decode() on arbitrary bytes.
 *
 * Never a crash, never a code outside the documented ones. When a frame
 * decodes, so does every event of an EVENT_BATCH and every item of an
 * EVENTS_REPLY (or they fail cleanly), and the message survives a round
 * trip: re-encoding what was decoded gives a frame that decodes to the same
 * key fields, and re-encoding that again gives the same bytes (the encoders
 * write every field, so equal bytes mean equal structs).
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trib_err.h"
#include "trib_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct trib_wire_msg m1, m2, m3;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_wire: %s:%d: %s\n", __FILE__, __LINE__,      \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

static int str_eq(struct trib_str a, struct trib_str b)
{
    return (a.p == NULL) == (b.p == NULL) && a.n == b.n &&
           (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Decodes every event of a batch (or item of an EVENTS_REPLY) and
 * re-encodes them after the head in sb; 0 when one does not decode (the
 * coordinator counts such an event invalid, the frame stays valid). */
static int enc_events(msgpack_sbuffer *sb, const struct trib_wire_msg *m)
{
    const msgpack_object *arr = m->type == TRIB_MSG_EVENT_BATCH
                                    ? m->u.batch.events
                                    : m->u.events_reply.events;
    struct trib_wire_event ev;
    struct trib_str node;
    uint64_t seq;
    uint32_t i;
    int ok = 1;

    for (i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];

        if (m->type == TRIB_MSG_EVENT_BATCH) {
            if (trib_wire_event_decode(o, &ev) != 0) {
                ok = 0;
                continue;
            }
            trib_wire_event_encode(sb, &ev);
        } else {
            if (trib_wire_events_item(o, &seq, &node, &ev) != 0) {
                ok = 0;
                continue;
            }
            CHECK(node.n <= TRIB_WIRE_STR_MAX);
            trib_wire_enc_events_item(sb, seq, node, &ev);
        }
        CHECK(ev.kind >= 1 && ev.kind <= 7);
        CHECK(ev.state >= 0 && ev.state < TRIB_WS_COUNT);
        CHECK(ev.ntags >= 0 && ev.ntags <= TRIB_WIRE_MAX_TAGS);
        CHECK(ev.error.n <= TRIB_WIRE_ERROR_MAX);
    }
    return ok;
}

/* Appends the frame for *m to sb. 0 when there is nothing to compare. */
static int encode(msgpack_sbuffer *sb, const struct trib_wire_msg *m)
{
    switch (m->type) {
    case TRIB_MSG_HELLO:
        return trib_wire_enc_hello(sb, &m->u.hello) == 0;
    case TRIB_MSG_CHALLENGE:
        return trib_wire_enc_challenge(sb, &m->u.challenge) == 0;
    case TRIB_MSG_AUTH:
        return trib_wire_enc_auth(sb, &m->u.auth) == 0;
    case TRIB_MSG_WELCOME:
        return trib_wire_enc_welcome(sb, &m->u.welcome) == 0;
    case TRIB_MSG_EVENT_BATCH:
        trib_wire_enc_batch_head(sb, m->u.batch.boot_id, m->u.batch.first_seq,
                                 m->u.batch.events->via.array.size);
        return enc_events(sb, m);
    case TRIB_MSG_ACK:
        return trib_wire_enc_ack(sb, &m->u.ack) == 0;
    case TRIB_MSG_HEARTBEAT:
        return trib_wire_enc_heartbeat(sb, &m->u.heartbeat) == 0;
    case TRIB_MSG_ERROR:
        return trib_wire_enc_error(sb, &m->u.error) == 0;
    case TRIB_MSG_GOODBYE:
        return trib_wire_enc_goodbye(sb, &m->u.goodbye) == 0;
    case TRIB_MSG_QUERY:
        return trib_wire_enc_query(sb, &m->u.query) == 0;
    case TRIB_MSG_QUERY_REPLY:
        return trib_wire_enc_query_reply(sb, &m->u.query_reply) == 0;
    case TRIB_MSG_EVENTS:
        return trib_wire_enc_events_req(sb, &m->u.events_req) == 0;
    case TRIB_MSG_EVENTS_REPLY:
        trib_wire_enc_events_reply_head(
            sb, m->u.events_reply.next, m->u.events_reply.missed,
            m->u.events_reply.events->via.array.size);
        return enc_events(sb, m);
    default:
        CHECK(0 && "decoded an unknown type");
        return 0;
    }
}

/* The fields the protocol's logic hangs on survive the round trip. */
static void same_keys(const struct trib_wire_msg *a,
                      const struct trib_wire_msg *b)
{
    CHECK(a->type == b->type);
    switch (a->type) {
    case TRIB_MSG_HELLO:
        CHECK(str_eq(a->u.hello.agent_id, b->u.hello.agent_id));
        CHECK(a->u.hello.boot_id == b->u.hello.boot_id);
        CHECK(memcmp(a->u.hello.nonce, b->u.hello.nonce, TRIB_WIRE_NONCE) == 0);
        CHECK(a->u.hello.nclients == b->u.hello.nclients);
        CHECK(a->u.hello.nboots == b->u.hello.nboots);
        break;
    case TRIB_MSG_CHALLENGE:
        CHECK(memcmp(a->u.challenge.nonce, b->u.challenge.nonce,
                     TRIB_WIRE_NONCE) == 0);
        CHECK(a->u.challenge.auth_required == b->u.challenge.auth_required);
        break;
    case TRIB_MSG_AUTH:
        CHECK(memcmp(a->u.auth.mac, b->u.auth.mac, TRIB_WIRE_MAC) == 0);
        break;
    case TRIB_MSG_WELCOME:
        CHECK(a->u.welcome.nboots == b->u.welcome.nboots);
        CHECK(a->u.welcome.nboots == 0 ||
              memcmp(a->u.welcome.boots, b->u.welcome.boots,
                     sizeof(a->u.welcome.boots[0]) *
                         (size_t)a->u.welcome.nboots) == 0);
        break;
    case TRIB_MSG_EVENT_BATCH:
        CHECK(a->u.batch.boot_id == b->u.batch.boot_id);
        CHECK(a->u.batch.first_seq == b->u.batch.first_seq);
        CHECK(a->u.batch.events->via.array.size ==
              b->u.batch.events->via.array.size);
        break;
    case TRIB_MSG_ACK:
        CHECK(memcmp(&a->u.ack, &b->u.ack, sizeof(a->u.ack)) == 0);
        break;
    case TRIB_MSG_HEARTBEAT:
        CHECK(a->u.heartbeat.boot_id == b->u.heartbeat.boot_id);
        CHECK(a->u.heartbeat.last_seq == b->u.heartbeat.last_seq);
        CHECK(a->u.heartbeat.nclients == b->u.heartbeat.nclients);
        break;
    case TRIB_MSG_ERROR:
        CHECK(a->u.error.code == b->u.error.code);
        CHECK(a->u.error.expected_seq == b->u.error.expected_seq);
        CHECK(str_eq(a->u.error.message, b->u.error.message));
        break;
    case TRIB_MSG_GOODBYE:
        CHECK(a->u.goodbye.boot_id == b->u.goodbye.boot_id);
        break;
    case TRIB_MSG_QUERY:
        CHECK(str_eq(a->u.query.name, b->u.query.name));
        CHECK(a->u.query.nargs == b->u.query.nargs);
        break;
    case TRIB_MSG_QUERY_REPLY:
        CHECK(a->u.query_reply.code == b->u.query_reply.code);
        CHECK(str_eq(a->u.query_reply.json, b->u.query_reply.json));
        break;
    case TRIB_MSG_EVENTS:
        CHECK(memcmp(&a->u.events_req, &b->u.events_req,
                     sizeof(a->u.events_req)) == 0);
        break;
    case TRIB_MSG_EVENTS_REPLY:
        CHECK(a->u.events_reply.next == b->u.events_reply.next);
        CHECK(a->u.events_reply.missed == b->u.events_reply.missed);
        CHECK(a->u.events_reply.events->via.array.size ==
              b->u.events_reply.events->via.array.size);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_zone z1, z2, z3;
    msgpack_sbuffer s1, s2;
    int rc;

    msgpack_zone_init(&z1, 4096);
    msgpack_zone_init(&z2, 4096);
    msgpack_zone_init(&z3, 4096);
    msgpack_sbuffer_init(&s1);
    msgpack_sbuffer_init(&s2);
    rc = trib_wire_decode(data, size, &z1, &m1);
    CHECK(rc == 0 || rc == TRIB_EPROTO || rc == TRIB_ERANGE ||
          rc == TRIB_ENOTSUP);
    if (rc == TRIB_ENOTSUP) {
        CHECK(strcmp(trib_wire_type_name(m1.type), "unknown") == 0);
    }
    if (rc != 0 || !encode(&s1, &m1)) {
        goto out;
    }
    /* decode(encode(m1)) has m1's key fields ... */
    CHECK(trib_wire_decode(s1.data, s1.size, &z2, &m2) == 0);
    CHECK(m2.version == TRIB_WIRE_VERSION);
    same_keys(&m1, &m2);
    /* ... and encodes to the same bytes again */
    CHECK(encode(&s2, &m2));
    CHECK(s1.size == s2.size && memcmp(s1.data, s2.data, s1.size) == 0);
    CHECK(trib_wire_decode(s2.data, s2.size, &z3, &m3) == 0);
    same_keys(&m2, &m3);
out:
    msgpack_sbuffer_destroy(&s1);
    msgpack_sbuffer_destroy(&s2);
    msgpack_zone_destroy(&z1);
    msgpack_zone_destroy(&z2);
    msgpack_zone_destroy(&z3);
    return 0;
}
