/*
 * trib_wire_rules_test.c -- the wire format's rules beyond the golden
 * fixtures (trib_wire_test.c): versioning (unknown keys, nil values, extra
 * envelope elements, newer versions, unknown types), limits (frame size,
 * amplification, strings and arrays over their limits), typing (wrong
 * types, signed and unsigned integers), the event map's own rules and the
 * encoders' UTF-8-safe truncation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trib_err.h"
#include "trib_wire.h"

static msgpack_zone zone;
static struct trib_wire_msg msg; /* ~70 KiB: not on the stack */

/* ---- helpers ------------------------------------------------------------ */

static void assert_str(struct trib_str got, const char *want)
{
    assert_non_null(got.p);
    assert_int_equal(got.n, strlen(want));
    assert_memory_equal(got.p, want, got.n);
}

static int dec(const msgpack_sbuffer *sb, struct trib_wire_msg *m)
{
    msgpack_zone_clear(&zone);
    return trib_wire_decode(sb->data, sb->size, &zone, m);
}

static int dec_bytes(const void *p, size_t n, struct trib_wire_msg *m)
{
    msgpack_zone_clear(&zone);
    return trib_wire_decode(p, n, &zone, m);
}

/* A hand-built frame: [version, type, map(nkeys)] then the caller's keys. */
static void frame(msgpack_packer *pk, msgpack_sbuffer *sb, uint32_t version,
                  uint32_t type, uint32_t nkeys)
{
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint32(pk, version);
    msgpack_pack_uint32(pk, type);
    msgpack_pack_map(pk, nkeys);
}

static void pstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* ---- versioning --------------------------------------------------------- */

static void test_unknown_keys(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint8_t nonce[TRIB_WIRE_NONCE] = {0};
    struct trib_wire_event ev;

    (void)state;
    msgpack_sbuffer_init(&sb);
    frame(&pk, &sb, 1, TRIB_MSG_HELLO, 7);
    msgpack_pack_uint8(&pk, 99); /* a future key holding a map */
    msgpack_pack_map(&pk, 1);
    pstr(&pk, "x");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_nil(&pk);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_uint8(&pk, 0);
    pstr(&pk, "node-9");
    pstr(&pk, "name"); /* a str key: not ours, skipped */
    pstr(&pk, "x");
    msgpack_pack_int(&pk, -3); /* a negative key: skipped */
    msgpack_pack_true(&pk);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint64(&pk, 77);
    msgpack_pack_uint8(&pk, 7);
    msgpack_pack_bin(&pk, sizeof(nonce));
    msgpack_pack_bin_body(&pk, nonce, sizeof(nonce));
    msgpack_pack_uint16(&pk, 1000); /* a large future key */
    msgpack_pack_uint8(&pk, 1);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_str(msg.u.hello.agent_id, "node-9");
    assert_int_equal(msg.u.hello.boot_id, 77);
    assert_int_equal(msg.u.hello.nclients, 0);
    assert_null(msg.u.hello.host.p); /* absent: default */

    /* in an event map, and a nil value reads as absent */
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 50);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_uint8(&pk, 18);
    msgpack_pack_nil(&pk);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_int64(&pk, 5);
    {
        msgpack_object o;
        size_t off = 0;

        msgpack_zone_clear(&zone);
        assert_int_equal(msgpack_unpack(sb.data, sb.size, &off, &zone, &o),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(trib_wire_event_decode(&o, &ev), 0);
    }
    assert_int_equal(ev.kind, 1);
    assert_int_equal(ev.job_id, 5);
    assert_null(ev.error.p);
    msgpack_sbuffer_destroy(&sb);
}

static void test_envelope(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

    (void)state;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    /* extra envelope elements are ignored */
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, TRIB_MSG_ACK);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 9);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 8);
    pstr(&pk, "extra");
    msgpack_pack_map(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 2);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_int_equal(msg.u.ack.boot_id, 9);
    assert_int_equal(msg.u.ack.applied, 8);
    assert_int_equal(msg.u.ack.durable, 0);

    /* a newer version is read */
    frame(&pk, &sb, 7, TRIB_MSG_ACK, 1);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 3);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_int_equal(msg.version, 7);
    assert_int_equal(msg.u.ack.boot_id, 3);

    /* an unknown type: ENOTSUP with version and type set */
    frame(&pk, &sb, 2, 99, 1);
    msgpack_pack_uint8(&pk, 0);
    pstr(&pk, "whatever");
    assert_int_equal(dec(&sb, &msg), TRIB_ENOTSUP);
    assert_int_equal(msg.version, 2);
    assert_int_equal(msg.type, 99);
    frame(&pk, &sb, 1, UINT32_MAX, 0);
    assert_int_equal(dec(&sb, &msg), TRIB_ENOTSUP);
    assert_int_equal(msg.type, UINT32_MAX);

    /* malformed envelopes */
    frame(&pk, &sb, 0, TRIB_MSG_ACK, 0); /* version 0 never existed */
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint64(&pk, 1ULL << 33); /* type beyond uint32 */
    msgpack_pack_map(&pk, 0);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, TRIB_MSG_ACK);
    msgpack_pack_array(&pk, 0); /* body not a map */
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 2); /* no body */
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, TRIB_MSG_ACK);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 0); /* not an array */
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 3);
    pstr(&pk, "1");
    msgpack_pack_uint8(&pk, TRIB_MSG_ACK);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    /* two objects in one frame */
    frame(&pk, &sb, 1, TRIB_MSG_ACK, 1);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_nil(&pk);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    assert_int_equal(dec_bytes(NULL, 0, &msg), TRIB_EPROTO);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- limits -------------------------------------------------------------- */

static void test_frame_size(void **state)
{
    size_t big = TRIB_WIRE_FRAME_MAX + 1;
    char *buf = calloc(1, big);
    struct trib_wire_query_reply r = {0, {NULL, 0}};
    msgpack_sbuffer sb;

    (void)state;
    assert_non_null(buf);
    assert_int_equal(dec_bytes(buf, big, &msg), TRIB_ERANGE);
    /* the largest document a QUERY_REPLY carries still decodes */
    memset(buf, 'x', big);
    r.json.p = buf;
    r.json.n = TRIB_WIRE_FRAME_MAX - 64;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(trib_wire_enc_query_reply(&sb, &r), 0);
    assert_true(sb.size <= TRIB_WIRE_FRAME_MAX);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_int_equal(msg.u.query_reply.json.n, TRIB_WIRE_FRAME_MAX - 64);
    /* one that cannot fit is refused, nothing written */
    msgpack_sbuffer_clear(&sb);
    r.json.n = TRIB_WIRE_FRAME_MAX;
    assert_int_equal(trib_wire_enc_query_reply(&sb, &r), TRIB_ERANGE);
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
    free(buf);
}

/* A 5-byte frame declaring 2^32-1 elements: refused before msgpack-c can
 * allocate (the zone is untouched). */
static void test_amplification(void **state)
{
    const uint8_t arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t map[] = {0x93, 0x01, 0x05, 0xdf, 0xff, 0xff, 0xff, 0xff};
    size_t free_before;

    (void)state;
    msgpack_zone_clear(&zone);
    free_before = zone.chunk_list.free;
    assert_int_equal(trib_wire_decode(arr, sizeof(arr), &zone, &msg),
                     TRIB_ERANGE);
    assert_int_equal(trib_wire_decode(map, sizeof(map), &zone, &msg),
                     TRIB_ERANGE);
    assert_int_equal(zone.chunk_list.free, free_before);
}

/* Each frame below breaks one typing rule; all are TRIB_EPROTO. */
static void test_wrong_types(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint8_t b33[33] = {0};
    int i;

    (void)state;
    msgpack_sbuffer_init(&sb);
    for (i = 0; i < 5; i++) { /* ACK boot_id: a uint */
        frame(&pk, &sb, 1, TRIB_MSG_ACK, 1);
        msgpack_pack_uint8(&pk, 0);
        switch (i) {
        case 0:
            pstr(&pk, "9"); /* str for uint */
            break;
        case 1:
            msgpack_pack_int(&pk, -1); /* negative for uint */
            break;
        case 2:
            msgpack_pack_double(&pk, 1.0);
            break;
        case 3:
            msgpack_pack_true(&pk);
            break;
        case 4:
            msgpack_pack_array(&pk, 0);
            break;
        }
        assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    }
    frame(&pk, &sb, 1, TRIB_MSG_ACK, 0); /* boot_id is required */
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_AUTH, 1); /* mac as str */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_str_with_body(&pk, b33, 32);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_AUTH, 1); /* mac of 33 bytes */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_bin_with_body(&pk, b33, 33);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_CHALLENGE, 1); /* nonce of 31 bytes */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_bin_with_body(&pk, b33, 31);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_CHALLENGE, 2); /* auth_required as int */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_bin_with_body(&pk, b33, 32);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_ERROR, 1); /* code beyond int32 */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_int64(&pk, -(1LL << 40));
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_ERROR, 1); /* a negative code is fine */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_int(&pk, TRIB_EAUTH);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_int_equal(msg.u.error.code, TRIB_EAUTH);
    frame(&pk, &sb, 1, TRIB_MSG_EVENTS, 1); /* max beyond uint32 */
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint64(&pk, 1ULL << 32);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_HEARTBEAT, 2); /* fetch_paused as int */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 9);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_uint8(&pk, 0);
    pstr(&pk, "c");
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_QUERY, 2); /* an arg valued bool */
    msgpack_pack_uint8(&pk, 0);
    pstr(&pk, "status");
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 1);
    pstr(&pk, "queue");
    msgpack_pack_true(&pk);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_QUERY, 2); /* an arg keyed by an int */
    msgpack_pack_uint8(&pk, 0);
    pstr(&pk, "status");
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_EVENT_BATCH, 3); /* first_seq 0 */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_EVENT_BATCH, 3); /* sequences overflow */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_EVENT_BATCH, 3); /* events not an array */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    frame(&pk, &sb, 1, TRIB_MSG_EVENT_BATCH, 3); /* BATCH_MAX + 1 events */
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_array(&pk, TRIB_WIRE_BATCH_MAX + 1);
    for (i = 0; i < TRIB_WIRE_BATCH_MAX + 1; i++) {
        msgpack_pack_map(&pk, 0);
    }
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    msgpack_sbuffer_destroy(&sb);
}

/* One event map with a single key/value, decoded. */
static int event_kv(unsigned key, void (*val)(msgpack_packer *pk, int arg),
                    int arg, struct trib_wire_event *ev)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_object o;
    size_t off = 0;
    int rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, key == 0 ? 1 : 2);
    if (key != 0) {
        msgpack_pack_uint8(&pk, 0); /* kind: job_completed */
        msgpack_pack_uint8(&pk, 1);
    }
    msgpack_pack_uint8(&pk, (uint8_t)key);
    val(&pk, arg);
    msgpack_zone_clear(&zone);
    assert_int_equal(msgpack_unpack(sb.data, sb.size, &off, &zone, &o),
                     MSGPACK_UNPACK_SUCCESS);
    rc = trib_wire_event_decode(&o, ev);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void v_int(msgpack_packer *pk, int v)
{
    msgpack_pack_int(pk, v);
}

static void v_i64(msgpack_packer *pk, int shift)
{
    msgpack_pack_int64(pk, (int64_t)1 << shift);
}

static void v_neg64(msgpack_packer *pk, int shift)
{
    msgpack_pack_int64(pk, -((int64_t)1 << shift));
}

static void v_str(msgpack_packer *pk, int len)
{
    static char s[2048];

    memset(s, 'a', sizeof(s));
    msgpack_pack_str_with_body(pk, s, (size_t)len);
}

static void v_float(msgpack_packer *pk, int v)
{
    msgpack_pack_double(pk, v);
}

static void v_tags(msgpack_packer *pk, int n)
{
    int i;

    msgpack_pack_array(pk, (size_t)n);
    for (i = 0; i < n; i++) {
        msgpack_pack_str_with_body(pk, "t", 1);
    }
}

static void v_tag_int(msgpack_packer *pk, int n)
{
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, n);
}

static void v_int8(msgpack_packer *pk, int v)
{
    msgpack_pack_fix_int8(pk, (int8_t)v); /* 0xd0 form, even if >= 0 */
}

static void test_event_rules(void **state)
{
    struct trib_wire_event ev;

    (void)state;
    /* kind: required, 1..7 */
    assert_int_equal(event_kv(0, v_int, 7, &ev), 0);
    assert_int_equal(ev.kind, 7);
    assert_int_equal(event_kv(0, v_int, 0, &ev), TRIB_EPROTO);
    assert_int_equal(event_kv(0, v_int, 8, &ev), TRIB_EPROTO);
    assert_int_equal(event_kv(0, v_str, 1, &ev), TRIB_EPROTO);
    assert_int_equal(event_kv(2, v_int, 3, &ev), 0); /* with kind 1 */
    /* signed fields take negative values, in any integer encoding */
    assert_int_equal(event_kv(8, v_int, -5, &ev), 0);
    assert_int_equal(ev.priority, -5);
    assert_int_equal(event_kv(8, v_int8, 4, &ev), 0);
    assert_int_equal(ev.priority, 4);
    assert_int_equal(event_kv(2, v_neg64, 40, &ev), 0);
    assert_int_equal(ev.job_id, -(1LL << 40));
    assert_int_equal(event_kv(10, v_i64, 62, &ev), 0);
    assert_int_equal(ev.created_at, 1LL << 62);
    /* int32 fields reject what does not fit */
    assert_int_equal(event_kv(3, v_i64, 31, &ev), TRIB_EPROTO);
    assert_int_equal(event_kv(4, v_neg64, 32, &ev), TRIB_EPROTO);
    assert_int_equal(event_kv(2, v_float, 1, &ev), TRIB_EPROTO);
    assert_int_equal(event_kv(1, v_int, 1, &ev), TRIB_EPROTO);
    /* a state from a newer sender reads as unknown; negative is wrong */
    assert_int_equal(event_kv(7, v_int, 3, &ev), 0);
    assert_int_equal(ev.state, TRIB_WS_COMPLETED);
    assert_int_equal(event_kv(7, v_int, 42, &ev), 0);
    assert_int_equal(ev.state, TRIB_WS_UNKNOWN);
    assert_int_equal(event_kv(7, v_int, -1, &ev), TRIB_EPROTO);
    /* string limits */
    assert_int_equal(event_kv(1, v_str, TRIB_WIRE_STR_MAX, &ev), 0);
    assert_int_equal(ev.client_id.n, TRIB_WIRE_STR_MAX);
    assert_int_equal(event_kv(1, v_str, TRIB_WIRE_STR_MAX + 1, &ev),
                     TRIB_EPROTO);
    assert_int_equal(event_kv(6, v_str, TRIB_WIRE_STR_MAX + 1, &ev),
                     TRIB_EPROTO);
    assert_int_equal(event_kv(18, v_str, TRIB_WIRE_ERROR_MAX, &ev), 0);
    assert_int_equal(ev.error.n, TRIB_WIRE_ERROR_MAX);
    assert_int_equal(event_kv(18, v_str, TRIB_WIRE_ERROR_MAX + 1, &ev),
                     TRIB_EPROTO);
    assert_int_equal(event_kv(18, v_str, 0, &ev), 0);
    assert_non_null(ev.error.p); /* empty, not absent */
    assert_int_equal(ev.error.n, 0);
    /* tags: the first 16 are kept; each must be a short str */
    assert_int_equal(event_kv(9, v_tags, 40, &ev), 0);
    assert_int_equal(ev.ntags, TRIB_WIRE_MAX_TAGS);
    assert_str(ev.tags[15], "t");
    assert_int_equal(event_kv(9, v_tag_int, 1, &ev), TRIB_EPROTO);
    assert_int_equal(event_kv(9, v_int, 1, &ev), TRIB_EPROTO);
    /* not a map */
    {
        msgpack_object o = {.type = MSGPACK_OBJECT_ARRAY};

        assert_int_equal(trib_wire_event_decode(&o, &ev), TRIB_EPROTO);
    }
}

/* Overlong strings and arrays over the struct's capacity in messages. */
static void test_message_limits(void **state)
{
    static const struct {
        unsigned key, n;
        int ok;
    } cases[] = {
        {0, TRIB_WIRE_STR_MAX, 1},      {0, TRIB_WIRE_STR_MAX + 1, 0},
        {5, TRIB_WIRE_MAX_CAPS, 1},     {5, TRIB_WIRE_MAX_CAPS + 1, 0},
        {6, TRIB_WIRE_MAX_CLIENTS, 1},  {6, TRIB_WIRE_MAX_CLIENTS + 1, 0},
        {8, TRIB_WIRE_MAX_BOOTS, 1},    {8, TRIB_WIRE_MAX_BOOTS + 1, 0},
        {100, TRIB_WIRE_MAX_QUEUES, 1}, {100, TRIB_WIRE_MAX_QUEUES + 1, 0},
    };
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint8_t nonce[TRIB_WIRE_NONCE] = {0};
    char s[TRIB_WIRE_ERROR_MAX + 1];
    size_t c;
    unsigned i;

    (void)state;
    memset(s, 'b', sizeof(s));
    msgpack_sbuffer_init(&sb);
    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        unsigned key = cases[c].key, n = cases[c].n;

        frame(&pk, &sb, 1, TRIB_MSG_HELLO, 4);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_uint8(&pk, 7);
        msgpack_pack_bin_with_body(&pk, nonce, sizeof(nonce));
        msgpack_pack_uint8(&pk, 0);
        msgpack_pack_str_with_body(&pk, s, key == 0 ? n : 1);
        msgpack_pack_uint8(&pk, key == 100 ? 6 : (uint8_t)key);
        if (key == 0) {
            msgpack_pack_nil(&pk); /* key 0 again: nil is absent */
        } else if (key == 8) {
            msgpack_pack_array(&pk, n);
            for (i = 0; i < n; i++) {
                msgpack_pack_uint64(&pk, i);
            }
        } else if (key == 5) {
            msgpack_pack_array(&pk, n);
            for (i = 0; i < n; i++) {
                msgpack_pack_str_with_body(&pk, s, 3);
            }
        } else {
            unsigned nc = key == 6 ? n : 1, nq = key == 100 ? n : 1, j;

            msgpack_pack_array(&pk, nc);
            for (i = 0; i < nc; i++) {
                msgpack_pack_map(&pk, 2);
                msgpack_pack_uint8(&pk, 0);
                msgpack_pack_str_with_body(&pk, s, 4);
                msgpack_pack_uint8(&pk, 2);
                msgpack_pack_array(&pk, nq);
                for (j = 0; j < nq; j++) {
                    msgpack_pack_str_with_body(&pk, s, 2);
                }
            }
        }
        assert_int_equal(dec(&sb, &msg), cases[c].ok ? 0 : TRIB_EPROTO);
    }
    /* ERROR text up to TRIB_WIRE_ERROR_MAX */
    frame(&pk, &sb, 1, TRIB_MSG_ERROR, 2);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_int(&pk, -5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, s, TRIB_WIRE_ERROR_MAX + 1);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    /* a client without an id */
    frame(&pk, &sb, 1, TRIB_MSG_HELLO, 4);
    msgpack_pack_uint8(&pk, 0);
    pstr(&pk, "a");
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 7);
    msgpack_pack_bin_with_body(&pk, nonce, sizeof(nonce));
    msgpack_pack_uint8(&pk, 6);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(dec(&sb, &msg), TRIB_EPROTO);
    /* QUERY: 16 args, not 17 */
    for (c = 16; c <= 17; c++) {
        frame(&pk, &sb, 1, TRIB_MSG_QUERY, 2);
        msgpack_pack_uint8(&pk, 0);
        pstr(&pk, "status");
        msgpack_pack_uint8(&pk, 1);
        msgpack_pack_map(&pk, c);
        for (i = 0; i < c; i++) {
            char k[8];

            snprintf(k, sizeof(k), "k%u", i);
            pstr(&pk, k);
            msgpack_pack_int(&pk, (int)i);
        }
        assert_int_equal(dec(&sb, &msg), c == 16 ? 0 : TRIB_EPROTO);
    }
    assert_int_equal(msg.u.query.nargs, 16);
    assert_int_equal(trib_wire_query_arg(&msg.u.query, "k15")->num, 15);
    msgpack_sbuffer_destroy(&sb);
}

/* The encoder cuts strings at a UTF-8 boundary within the limit. */
static void test_truncation(void **state)
{
    static char text[4096];
    struct trib_wire_error e = {TRIB_EIO, {NULL, 0}, 0};
    struct trib_wire_event ev, got;
    msgpack_sbuffer sb;
    msgpack_object o;
    size_t off;

    (void)state;
    msgpack_sbuffer_init(&sb);
    /* "é" (c3 a9) straddling byte 1024: cut before it */
    memset(text, 'a', sizeof(text));
    memcpy(text + TRIB_WIRE_ERROR_MAX - 1, "\xc3\xa9", 2);
    e.message.p = text;
    e.message.n = 2000;
    trib_wire_enc_error(&sb, &e);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_int_equal(msg.u.error.message.n, TRIB_WIRE_ERROR_MAX - 1);
    /* a 4-byte sequence (f0 9f 98 80) starting 2 bytes before the end */
    memset(text, 'a', sizeof(text));
    memcpy(text + TRIB_WIRE_ERROR_MAX - 2, "\xf0\x9f\x98\x80", 4);
    msgpack_sbuffer_clear(&sb);
    trib_wire_enc_error(&sb, &e);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_int_equal(msg.u.error.message.n, TRIB_WIRE_ERROR_MAX - 2);
    /* a sequence ending exactly at the limit is kept whole */
    memset(text, 'a', sizeof(text));
    memcpy(text + TRIB_WIRE_ERROR_MAX - 4, "\xf0\x9f\x98\x80", 4);
    msgpack_sbuffer_clear(&sb);
    trib_wire_enc_error(&sb, &e);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_int_equal(msg.u.error.message.n, TRIB_WIRE_ERROR_MAX);
    /* not UTF-8 at all: cut at the byte limit */
    memset(text, 0x80, sizeof(text));
    msgpack_sbuffer_clear(&sb);
    trib_wire_enc_error(&sb, &e);
    assert_int_equal(dec(&sb, &msg), 0);
    assert_int_equal(msg.u.error.message.n, TRIB_WIRE_ERROR_MAX);

    /* event: error to ERROR_MAX, ids to STR_MAX, tags beyond 16 dropped */
    memset(text, 'a', sizeof(text));
    memcpy(text + TRIB_WIRE_ERROR_MAX - 1, "\xc3\xa9", 2);
    memset(&ev, 0, sizeof(ev));
    ev.kind = 2;
    ev.error.p = text;
    ev.error.n = 3000;
    ev.client_id.p = text;
    ev.client_id.n = 1000;
    ev.ntags = 99;
    msgpack_sbuffer_clear(&sb);
    trib_wire_event_encode(&sb, &ev);
    off = 0;
    msgpack_zone_clear(&zone);
    assert_int_equal(msgpack_unpack(sb.data, sb.size, &off, &zone, &o),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(trib_wire_event_decode(&o, &got), 0);
    assert_int_equal(got.error.n, TRIB_WIRE_ERROR_MAX - 1);
    assert_int_equal(got.client_id.n, TRIB_WIRE_STR_MAX);
    assert_int_equal(got.ntags, TRIB_WIRE_MAX_TAGS);
    assert_int_equal(got.tags[0].n, 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_items_and_names(void **state)
{
    struct trib_wire_event ev;
    struct trib_str node;
    msgpack_object o = {.type = MSGPACK_OBJECT_MAP};
    msgpack_object items[3];
    uint64_t seq;

    (void)state;
    assert_int_equal(trib_wire_events_item(&o, &seq, &node, &ev), TRIB_EPROTO);
    memset(items, 0, sizeof(items));
    items[0].type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
    items[0].via.i64 = -1;
    items[1].type = MSGPACK_OBJECT_NIL;
    items[2].type = MSGPACK_OBJECT_MAP;
    o.type = MSGPACK_OBJECT_ARRAY;
    o.via.array.size = 3;
    o.via.array.ptr = items;
    assert_int_equal(trib_wire_events_item(&o, &seq, &node, &ev),
                     TRIB_EPROTO); /* negative seq */
    items[0].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    items[0].via.u64 = 5;
    assert_int_equal(trib_wire_events_item(&o, &seq, &node, &ev),
                     TRIB_EPROTO); /* event without kind */
    o.via.array.size = 2;
    assert_int_equal(trib_wire_events_item(&o, &seq, &node, &ev), TRIB_EPROTO);

    assert_string_equal(trib_wire_state_name(TRIB_WS_COMPLETED), "completed");
    assert_string_equal(trib_wire_state_name(TRIB_WS_SCHEDULED), "scheduled");
    assert_string_equal(trib_wire_state_name(99), "unknown");
    assert_string_equal(trib_wire_state_name(-1), "unknown");
    assert_int_equal(trib_wire_state_parse("retryable"), TRIB_WS_RETRYABLE);
    assert_int_equal(trib_wire_state_parse("available"), TRIB_WS_AVAILABLE);
    assert_int_equal(trib_wire_state_parse("nope"), TRIB_WS_UNKNOWN);
    assert_int_equal(trib_wire_state_parse(NULL), TRIB_WS_UNKNOWN);
    assert_string_equal(trib_wire_type_name(TRIB_MSG_EVENT_BATCH),
                        "EVENT_BATCH");
    assert_string_equal(trib_wire_type_name(TRIB_MSG_EVENTS_REPLY),
                        "EVENTS_REPLY");
    assert_string_equal(trib_wire_type_name(10), "unknown");
    node = trib_str_c(NULL);
    assert_null(node.p);
    assert_int_equal(node.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_frame_size),
        cmocka_unit_test(test_amplification),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_event_rules),
        cmocka_unit_test(test_message_limits),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_items_and_names),
    };
    int rc;

    msgpack_zone_init(&zone, 8192);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    msgpack_zone_destroy(&zone);
    return rc;
}
