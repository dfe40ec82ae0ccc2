/*
 * fuzz_wire_event.c -- libFuzzer: one event map as an agent's outbox or an
 * EVENT_BATCH carries it. The input is checked with trib_mp_check(),
 * unpacked, and decoded with trib_wire_event_decode(); a decoded event
 * re-encodes to a map that decodes to the same fields, and whose
 * re-encoding gives the same bytes.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trib_err.h"
#include "trib_mp.h"
#include "trib_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_wire_event: %s:%d: %s\n", __FILE__,          \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

static int str_eq(struct trib_str a, struct trib_str b)
{
    return (a.p == NULL) == (b.p == NULL) && a.n == b.n &&
           (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static void same(const struct trib_wire_event *a,
                 const struct trib_wire_event *b)
{
    int i;

    CHECK(a->kind == b->kind);
    CHECK(str_eq(a->client_id, b->client_id));
    CHECK(a->job_id == b->job_id);
    CHECK(a->attempt == b->attempt);
    CHECK(a->max_attempts == b->max_attempts);
    CHECK(str_eq(a->queue, b->queue));
    CHECK(str_eq(a->job_kind, b->job_kind));
    CHECK(a->state == b->state);
    CHECK(a->priority == b->priority);
    CHECK(a->ntags == b->ntags);
    for (i = 0; i < a->ntags; i++) {
        CHECK(str_eq(a->tags[i], b->tags[i]));
    }
    CHECK(a->created_at == b->created_at);
    CHECK(a->scheduled_at == b->scheduled_at);
    CHECK(a->attempted_at == b->attempted_at);
    CHECK(a->finalized_at == b->finalized_at);
    CHECK(a->next_scheduled_at == b->next_scheduled_at);
    CHECK(a->queue_wait_us == b->queue_wait_us);
    CHECK(a->run_us == b->run_us);
    CHECK(a->complete_us == b->complete_us);
    CHECK(str_eq(a->error, b->error));
    CHECK(a->at == b->at);
}

/* Unpacks buf (already known to be one object) and decodes the event. */
static int decode(const void *buf, size_t n, msgpack_zone *z,
                  struct trib_wire_event *ev)
{
    msgpack_object o;
    size_t off = 0;

    if (msgpack_unpack(buf, n, &off, z, &o) != MSGPACK_UNPACK_SUCCESS) {
        return TRIB_EPROTO;
    }
    CHECK(off == n);
    return trib_wire_event_decode(&o, ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trib_wire_event e1, e2;
    msgpack_zone z1, z2;
    msgpack_sbuffer s1, s2;
    int rc;

    if (trib_mp_check(data, size, TRIB_MP_MAX_DEPTH) != 0) {
        return 0;
    }
    msgpack_zone_init(&z1, 4096);
    msgpack_zone_init(&z2, 4096);
    msgpack_sbuffer_init(&s1);
    msgpack_sbuffer_init(&s2);
    rc = decode(data, size, &z1, &e1);
    CHECK(rc == 0 || rc == TRIB_EPROTO);
    if (rc == 0) {
        CHECK(e1.kind >= 1 && e1.kind <= 7);
        CHECK(e1.state >= 0 && e1.state < TRIB_WS_COUNT);
        CHECK(e1.ntags >= 0 && e1.ntags <= TRIB_WIRE_MAX_TAGS);
        trib_wire_event_encode(&s1, &e1);
        CHECK(trib_mp_check(s1.data, s1.size, TRIB_MP_MAX_DEPTH) == 0);
        CHECK(decode(s1.data, s1.size, &z2, &e2) == 0);
        same(&e1, &e2);
        trib_wire_event_encode(&s2, &e2);
        CHECK(s1.size == s2.size && memcmp(s1.data, s2.data, s1.size) == 0);
    }
    msgpack_sbuffer_destroy(&s1);
    msgpack_sbuffer_destroy(&s2);
    msgpack_zone_destroy(&z1);
    msgpack_zone_destroy(&z2);
    return 0;
}
