/*
 * trib_wire_test.c -- golden fixtures for every message: the encoder
 * reproduces proto/golden/<name>.hex byte for byte, the decoder reads back
 * every field, every strict prefix of every frame fails cleanly, and a
 * decoded message re-encodes to the same bytes. The versioning rules and
 * hostile input are in trib_wire_rules_test.c.
 *
 * TRIB_GOLDEN_UPDATE=1 rewrites the fixtures and the fuzz seeds from the
 * structs below instead of comparing (PROTOCOL.md, "Golden fixtures").
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

#define BOOT1 0x9f3c2a1b5d6e7f80ULL
#define BOOT2 0x0123456789abcdefULL
#define T0    1767225600000000LL /* 2026-01-01T00:00:00Z in us */

static msgpack_zone zone;
static struct trib_wire_msg msg, msg2; /* ~70 KiB each: not on the stack */

/* ---- helpers ------------------------------------------------------------ */

static void assert_str(struct trib_str got, const char *want)
{
    if (want == NULL) {
        assert_null(got.p);
        assert_int_equal(got.n, 0);
        return;
    }
    assert_non_null(got.p);
    assert_int_equal(got.n, strlen(want));
    assert_memory_equal(got.p, want, got.n);
}

static void assert_str_eq(struct trib_str a, struct trib_str b)
{
    assert_int_equal(a.p == NULL, b.p == NULL);
    assert_int_equal(a.n, b.n);
    if (a.n > 0) {
        assert_memory_equal(a.p, b.p, a.n);
    }
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

static void fill(uint8_t *p, size_t n, uint8_t first)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)(first + i);
    }
}

/* ---- the fixtures: fixed, fully populated -------------------------------- */

static void event_full(struct trib_wire_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = 2; /* job_failed */
    ev->client_id = trib_str_c("node-1-c1");
    ev->job_id = 123456789;
    ev->attempt = 2;
    ev->max_attempts = 25;
    ev->queue = trib_str_c("default");
    ev->job_kind = trib_str_c("email.send");
    ev->state = TRIB_WS_RETRYABLE;
    ev->priority = 1;
    ev->tags[0] = trib_str_c("billing");
    ev->tags[1] = trib_str_c("eu-west");
    ev->ntags = 2;
    ev->created_at = T0;
    ev->scheduled_at = T0 + 1000;
    ev->attempted_at = T0 + 2500;
    ev->finalized_at = T0 + 44500;
    ev->next_scheduled_at = T0 + 16044500;
    ev->queue_wait_us = 1500;
    ev->run_us = 42000;
    ev->complete_us = 800;
    ev->error = trib_str_c("smtp: 421 try again \xe2\x80\x94 "
                           "\xe6\x9c\x8d\xe5\x8a\xa1\xe7\xb9\x81\xe5\xbf\x99");
    ev->at = T0 + 45300;
}

/* queue_paused: only kind, client_id, queue and at */
static void event_paused(struct trib_wire_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = 6;
    ev->client_id = trib_str_c("node-1-c2");
    ev->queue = trib_str_c("reports");
    ev->at = T0 + 60000000;
}

static void assert_event_eq(const struct trib_wire_event *a,
                            const struct trib_wire_event *b)
{
    int i;

    assert_int_equal(a->kind, b->kind);
    assert_str_eq(a->client_id, b->client_id);
    assert_int_equal(a->job_id, b->job_id);
    assert_int_equal(a->attempt, b->attempt);
    assert_int_equal(a->max_attempts, b->max_attempts);
    assert_str_eq(a->queue, b->queue);
    assert_str_eq(a->job_kind, b->job_kind);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->ntags, b->ntags);
    for (i = 0; i < a->ntags; i++) {
        assert_str_eq(a->tags[i], b->tags[i]);
    }
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->scheduled_at, b->scheduled_at);
    assert_int_equal(a->attempted_at, b->attempted_at);
    assert_int_equal(a->finalized_at, b->finalized_at);
    assert_int_equal(a->next_scheduled_at, b->next_scheduled_at);
    assert_int_equal(a->queue_wait_us, b->queue_wait_us);
    assert_int_equal(a->run_us, b->run_us);
    assert_int_equal(a->complete_us, b->complete_us);
    assert_str_eq(a->error, b->error);
    assert_int_equal(a->at, b->at);
}

static void hello_fixture(struct trib_wire_hello *h)
{
    memset(h, 0, sizeof(*h));
    h->agent_id = trib_str_c("node-1");
    h->boot_id = BOOT1;
    h->host = trib_str_c("worker-a.example");
    h->version = trib_str_c("0.1.0");
    h->pid = 4242;
    h->caps[0] = trib_str_c("batch");
    h->caps[1] = trib_str_c("durable-ack");
    h->caps[2] = trib_str_c("events-v1");
    h->ncaps = 3;
    h->clients[0].id = trib_str_c("node-1-c1");
    h->clients[0].mode = trib_str_c("notify");
    h->clients[0].queues[0] = trib_str_c("default");
    h->clients[0].queues[1] = trib_str_c("email");
    h->clients[0].nqueues = 2;
    h->clients[1].id = trib_str_c("node-1-c2");
    h->clients[1].mode = trib_str_c("poll");
    h->clients[1].queues[0] = trib_str_c("reports");
    h->clients[1].nqueues = 1;
    h->nclients = 2;
    fill(h->nonce, TRIB_WIRE_NONCE, 0x00);
    h->boots[0] = BOOT2;
    h->boots[1] = 0x2222;
    h->nboots = 2;
    h->started_at = T0 + 123456;
    h->heartbeat_ms = 1000;
}

static void heartbeat_fixture(struct trib_wire_heartbeat *h)
{
    memset(h, 0, sizeof(*h));
    h->boot_id = BOOT1;
    h->at = T0 + 5000000;
    h->cpu_user_us = 1250000;
    h->cpu_sys_us = 320000;
    h->rss_bytes = 52428800;
    h->threads = 18;
    h->outbox_events = 3;
    h->outbox_bytes = 1536;
    h->db_conns = 5;
    h->clients[0].id = trib_str_c("node-1-c1");
    h->clients[0].in_flight = 2;
    h->clients[1].id = trib_str_c("node-1-c2");
    h->clients[1].fetch_paused = 1;
    h->nclients = 2;
    h->last_seq = 1202;
}

static void query_fixture(struct trib_wire_query *q)
{
    memset(q, 0, sizeof(*q));
    q->name = trib_str_c("wait");
    q->args[0].key = trib_str_c("count");
    q->args[0].num = 1000;
    q->args[1].key = trib_str_c("queue");
    q->args[1].str = trib_str_c("default");
    q->args[1].is_str = 1;
    q->args[2].key = trib_str_c("max_failures");
    q->args[2].num = -1;
    q->nargs = 3;
}

/* ---- golden: encode, and check every decoded field ----------------------- */

static void enc_event(msgpack_sbuffer *sb)
{
    struct trib_wire_event ev;

    event_full(&ev);
    trib_wire_event_encode(sb, &ev);
}

static void chk_event(msgpack_sbuffer *sb)
{
    struct trib_wire_event want, got;
    msgpack_object o;
    size_t off = 0;

    msgpack_zone_clear(&zone);
    assert_int_equal(msgpack_unpack(sb->data, sb->size, &off, &zone, &o),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb->size);
    event_full(&want);
    assert_int_equal(trib_wire_event_decode(&o, &got), 0);
    assert_event_eq(&got, &want);
}

static void enc_event_paused(msgpack_sbuffer *sb)
{
    struct trib_wire_event ev;

    event_paused(&ev);
    trib_wire_event_encode(sb, &ev);
}

static void chk_event_paused(msgpack_sbuffer *sb)
{
    struct trib_wire_event want, got;
    msgpack_object o;
    size_t off = 0;

    msgpack_zone_clear(&zone);
    assert_int_equal(msgpack_unpack(sb->data, sb->size, &off, &zone, &o),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(o.via.map.size, 4); /* defaults are omitted */
    event_paused(&want);
    assert_int_equal(trib_wire_event_decode(&o, &got), 0);
    assert_event_eq(&got, &want);
}

static void enc_hello(msgpack_sbuffer *sb)
{
    static struct trib_wire_hello h;

    hello_fixture(&h);
    trib_wire_enc_hello(sb, &h);
}

static void chk_hello(msgpack_sbuffer *sb)
{
    static struct trib_wire_hello w;
    const struct trib_wire_hello *h = &msg.u.hello;
    int i, j;

    hello_fixture(&w);
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.version, TRIB_WIRE_VERSION);
    assert_int_equal(msg.type, TRIB_MSG_HELLO);
    assert_str_eq(h->agent_id, w.agent_id);
    assert_true(h->boot_id == w.boot_id);
    assert_str_eq(h->host, w.host);
    assert_str_eq(h->version, w.version);
    assert_int_equal(h->pid, w.pid);
    assert_int_equal(h->ncaps, w.ncaps);
    for (i = 0; i < w.ncaps; i++) {
        assert_str_eq(h->caps[i], w.caps[i]);
    }
    assert_int_equal(h->nclients, w.nclients);
    for (i = 0; i < w.nclients; i++) {
        assert_str_eq(h->clients[i].id, w.clients[i].id);
        assert_str_eq(h->clients[i].mode, w.clients[i].mode);
        assert_int_equal(h->clients[i].nqueues, w.clients[i].nqueues);
        for (j = 0; j < w.clients[i].nqueues; j++) {
            assert_str_eq(h->clients[i].queues[j], w.clients[i].queues[j]);
        }
    }
    assert_memory_equal(h->nonce, w.nonce, TRIB_WIRE_NONCE);
    assert_int_equal(h->nboots, w.nboots);
    for (i = 0; i < w.nboots; i++) {
        assert_true(h->boots[i] == w.boots[i]);
    }
    assert_int_equal(h->started_at, w.started_at);
    assert_int_equal(h->heartbeat_ms, w.heartbeat_ms);
}

static void enc_challenge(msgpack_sbuffer *sb)
{
    struct trib_wire_challenge c = {.auth_required = 1};

    fill(c.nonce, TRIB_WIRE_NONCE, 0xa0);
    c.coordinator_id = trib_str_c("coord-1");
    trib_wire_enc_challenge(sb, &c);
}

static void chk_challenge(msgpack_sbuffer *sb)
{
    uint8_t nonce[TRIB_WIRE_NONCE];

    fill(nonce, sizeof(nonce), 0xa0);
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_CHALLENGE);
    assert_memory_equal(msg.u.challenge.nonce, nonce, sizeof(nonce));
    assert_str(msg.u.challenge.coordinator_id, "coord-1");
    assert_int_equal(msg.u.challenge.auth_required, 1);
}

static void enc_auth(msgpack_sbuffer *sb)
{
    struct trib_wire_auth a;

    fill(a.mac, TRIB_WIRE_MAC, 0x40);
    trib_wire_enc_auth(sb, &a);
}

static void chk_auth(msgpack_sbuffer *sb)
{
    uint8_t mac[TRIB_WIRE_MAC];

    fill(mac, sizeof(mac), 0x40);
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_AUTH);
    assert_memory_equal(msg.u.auth.mac, mac, sizeof(mac));
}

static void enc_welcome(msgpack_sbuffer *sb)
{
    struct trib_wire_welcome w;

    memset(&w, 0, sizeof(w));
    fill(w.mac, TRIB_WIRE_MAC, 0x60);
    w.boots[0] = (struct trib_wire_boot_pos){BOOT1, 1200, 1100};
    w.boots[1] =
        (struct trib_wire_boot_pos){BOOT2, 5000000000ULL, 4999999999ULL};
    w.nboots = 2;
    w.heartbeat_ms = 1000;
    trib_wire_enc_welcome(sb, &w);
}

static void chk_welcome(msgpack_sbuffer *sb)
{
    const struct trib_wire_welcome *w = &msg.u.welcome;
    uint8_t mac[TRIB_WIRE_MAC];

    fill(mac, sizeof(mac), 0x60);
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_WELCOME);
    assert_memory_equal(w->mac, mac, sizeof(mac));
    assert_int_equal(w->nboots, 2);
    assert_true(w->boots[0].boot_id == BOOT1);
    assert_int_equal(w->boots[0].applied, 1200);
    assert_int_equal(w->boots[0].durable, 1100);
    assert_true(w->boots[1].boot_id == BOOT2);
    assert_true(w->boots[1].applied == 5000000000ULL);
    assert_true(w->boots[1].durable == 4999999999ULL);
    assert_int_equal(w->heartbeat_ms, 1000);
}

static void enc_event_batch(msgpack_sbuffer *sb)
{
    trib_wire_enc_batch_head(sb, BOOT1, 1201, 2);
    enc_event(sb);
    enc_event_paused(sb);
}

static void chk_event_batch(msgpack_sbuffer *sb)
{
    struct trib_wire_event want, got;
    const msgpack_object *evs;

    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_EVENT_BATCH);
    assert_true(msg.u.batch.boot_id == BOOT1);
    assert_int_equal(msg.u.batch.first_seq, 1201);
    evs = msg.u.batch.events;
    assert_int_equal(evs->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(evs->via.array.size, 2);
    event_full(&want);
    assert_int_equal(trib_wire_event_decode(&evs->via.array.ptr[0], &got), 0);
    assert_event_eq(&got, &want);
    event_paused(&want);
    assert_int_equal(trib_wire_event_decode(&evs->via.array.ptr[1], &got), 0);
    assert_event_eq(&got, &want);
}

static void enc_ack(msgpack_sbuffer *sb)
{
    struct trib_wire_ack a = {BOOT1, 1202, 1100};

    trib_wire_enc_ack(sb, &a);
}

static void chk_ack(msgpack_sbuffer *sb)
{
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_ACK);
    assert_true(msg.u.ack.boot_id == BOOT1);
    assert_int_equal(msg.u.ack.applied, 1202);
    assert_int_equal(msg.u.ack.durable, 1100);
}

static void enc_heartbeat(msgpack_sbuffer *sb)
{
    static struct trib_wire_heartbeat h;

    heartbeat_fixture(&h);
    trib_wire_enc_heartbeat(sb, &h);
}

static void chk_heartbeat(msgpack_sbuffer *sb)
{
    static struct trib_wire_heartbeat w;
    const struct trib_wire_heartbeat *h = &msg.u.heartbeat;
    int i;

    heartbeat_fixture(&w);
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_HEARTBEAT);
    assert_true(h->boot_id == w.boot_id);
    assert_int_equal(h->at, w.at);
    assert_int_equal(h->cpu_user_us, w.cpu_user_us);
    assert_int_equal(h->cpu_sys_us, w.cpu_sys_us);
    assert_int_equal(h->rss_bytes, w.rss_bytes);
    assert_int_equal(h->threads, w.threads);
    assert_int_equal(h->outbox_events, w.outbox_events);
    assert_int_equal(h->outbox_bytes, w.outbox_bytes);
    assert_int_equal(h->db_conns, w.db_conns);
    assert_int_equal(h->nclients, w.nclients);
    for (i = 0; i < w.nclients; i++) {
        assert_str_eq(h->clients[i].id, w.clients[i].id);
        assert_int_equal(h->clients[i].in_flight, w.clients[i].in_flight);
        assert_int_equal(h->clients[i].fetch_paused, w.clients[i].fetch_paused);
    }
    assert_int_equal(h->last_seq, w.last_seq);
}

static void enc_error(msgpack_sbuffer *sb)
{
    struct trib_wire_error e = {TRIB_ERANGE, {NULL, 0}, 1201};

    e.message = trib_str_c("sequence gap: expected 1201, got 1250");
    trib_wire_enc_error(sb, &e);
}

static void chk_error(msgpack_sbuffer *sb)
{
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_ERROR);
    assert_int_equal(msg.u.error.code, TRIB_ERANGE);
    assert_str(msg.u.error.message, "sequence gap: expected 1201, got 1250");
    assert_int_equal(msg.u.error.expected_seq, 1201);
}

static void enc_goodbye(msgpack_sbuffer *sb)
{
    struct trib_wire_goodbye g = {BOOT1, {NULL, 0}};

    g.reason = trib_str_c("SIGTERM");
    trib_wire_enc_goodbye(sb, &g);
}

static void chk_goodbye(msgpack_sbuffer *sb)
{
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_GOODBYE);
    assert_true(msg.u.goodbye.boot_id == BOOT1);
    assert_str(msg.u.goodbye.reason, "SIGTERM");
}

static void enc_query(msgpack_sbuffer *sb)
{
    struct trib_wire_query q;

    query_fixture(&q);
    trib_wire_enc_query(sb, &q);
}

static void chk_query(msgpack_sbuffer *sb)
{
    const struct trib_wire_query *q = &msg.u.query;
    const struct trib_wire_arg *a;

    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_QUERY);
    assert_str(q->name, "wait");
    assert_int_equal(q->nargs, 3);
    a = trib_wire_query_arg(q, "count");
    assert_non_null(a);
    assert_int_equal(a->is_str, 0);
    assert_int_equal(a->num, 1000);
    a = trib_wire_query_arg(q, "queue");
    assert_non_null(a);
    assert_int_equal(a->is_str, 1);
    assert_str(a->str, "default");
    a = trib_wire_query_arg(q, "max_failures");
    assert_non_null(a);
    assert_int_equal(a->is_str, 0);
    assert_int_equal(a->num, -1);
    assert_null(trib_wire_query_arg(q, "max"));
    assert_null(trib_wire_query_arg(q, "counts"));
}

#define REPLY_JSON                                                             \
    "{\"schema\":\"tributary.wait/1\",\"done\":true,\"count\":1000}"

static void enc_query_reply(msgpack_sbuffer *sb)
{
    struct trib_wire_query_reply r = {0, {NULL, 0}};

    r.json = trib_str_c(REPLY_JSON);
    assert_int_equal(trib_wire_enc_query_reply(sb, &r), 0);
}

static void chk_query_reply(msgpack_sbuffer *sb)
{
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_QUERY_REPLY);
    assert_int_equal(msg.u.query_reply.code, 0);
    assert_str(msg.u.query_reply.json, REPLY_JSON);
}

static void enc_events(msgpack_sbuffer *sb)
{
    struct trib_wire_events_req r = {41, 500, (1u << 2) | (1u << 1), 2000};

    trib_wire_enc_events_req(sb, &r);
}

static void chk_events(msgpack_sbuffer *sb)
{
    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_EVENTS);
    assert_int_equal(msg.u.events_req.after, 41);
    assert_int_equal(msg.u.events_req.max, 500);
    assert_int_equal(msg.u.events_req.kinds, 6);
    assert_int_equal(msg.u.events_req.wait_ms, 2000);
}

static void enc_events_reply(msgpack_sbuffer *sb)
{
    struct trib_wire_event ev;

    trib_wire_enc_events_reply_head(sb, 44, 3, 2);
    event_full(&ev);
    trib_wire_enc_events_item(sb, 42, trib_str_c("node-1"), &ev);
    event_paused(&ev);
    trib_wire_enc_events_item(sb, 43, trib_str_c("node-2"), &ev);
}

static void chk_events_reply(msgpack_sbuffer *sb)
{
    struct trib_wire_event want, got;
    const msgpack_object *items;
    struct trib_str node;
    uint64_t seq;

    assert_int_equal(dec(sb, &msg), 0);
    assert_int_equal(msg.type, TRIB_MSG_EVENTS_REPLY);
    assert_int_equal(msg.u.events_reply.next, 44);
    assert_int_equal(msg.u.events_reply.missed, 3);
    items = msg.u.events_reply.events;
    assert_int_equal(items->via.array.size, 2);
    assert_int_equal(
        trib_wire_events_item(&items->via.array.ptr[0], &seq, &node, &got), 0);
    event_full(&want);
    assert_int_equal(seq, 42);
    assert_str(node, "node-1");
    assert_event_eq(&got, &want);
    assert_int_equal(
        trib_wire_events_item(&items->via.array.ptr[1], &seq, &node, &got), 0);
    event_paused(&want);
    assert_int_equal(seq, 43);
    assert_str(node, "node-2");
    assert_event_eq(&got, &want);
}

static const struct golden {
    const char *name;
    int is_frame; /* 0: a bare event map (seed of fuzz_wire_event) */
    void (*enc)(msgpack_sbuffer *sb);
    void (*chk)(msgpack_sbuffer *sb);
} goldens[] = {
    {"hello", 1, enc_hello, chk_hello},
    {"challenge", 1, enc_challenge, chk_challenge},
    {"auth", 1, enc_auth, chk_auth},
    {"welcome", 1, enc_welcome, chk_welcome},
    {"event_batch", 1, enc_event_batch, chk_event_batch},
    {"ack", 1, enc_ack, chk_ack},
    {"heartbeat", 1, enc_heartbeat, chk_heartbeat},
    {"error", 1, enc_error, chk_error},
    {"goodbye", 1, enc_goodbye, chk_goodbye},
    {"query", 1, enc_query, chk_query},
    {"query_reply", 1, enc_query_reply, chk_query_reply},
    {"events", 1, enc_events, chk_events},
    {"events_reply", 1, enc_events_reply, chk_events_reply},
    {"event", 0, enc_event, chk_event},
    {"event_queue_paused", 0, enc_event_paused, chk_event_paused},
};
#define NGOLDEN (sizeof(goldens) / sizeof(goldens[0]))

/* ---- fixture files ------------------------------------------------------- */

static void path_of(char *buf, size_t n, const char *dir, const char *name,
                    const char *ext)
{
    snprintf(buf, n, "%s/%s/%s%s", TRIB_SOURCE_DIR, dir, name, ext);
}

/* Reads a .hex fixture: '#' lines are comments, whitespace is ignored.
 * Returns a malloc'ed buffer (n bytes) or NULL when the file is missing. */
static uint8_t *read_hex(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    uint8_t *out;
    size_t cap = 4096;
    int c, nib = -1, comment = 0;

    *n = 0;
    if (f == NULL) {
        return NULL;
    }
    out = malloc(cap);
    assert_non_null(out);
    while ((c = fgetc(f)) != EOF) {
        int v;

        if (comment || c == '#') {
            comment = c != '\n';
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else {
            fail_msg("%s: unexpected character '%c'", path, c);
            continue;
        }
        if (nib < 0) {
            nib = v;
            continue;
        }
        if (*n == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        out[(*n)++] = (uint8_t)(nib << 4 | v);
        nib = -1;
    }
    fclose(f);
    assert_int_equal(nib, -1); /* an odd number of hex digits */
    return out;
}

static void write_file(const char *path, const void *p, size_t n,
                       const char *head)
{
    FILE *f = fopen(path, "w");
    const uint8_t *b = p;
    size_t i;

    if (f == NULL) {
        fail_msg("cannot write %s", path);
        return;
    }
    if (head != NULL) {
        fputs(head, f);
        for (i = 0; i < n; i++) {
            fprintf(f, "%02x%c", b[i],
                    (i % 16 == 15 || i + 1 == n) ? '\n' : ' ');
        }
    } else {
        fwrite(p, 1, n, f);
    }
    assert_int_equal(fclose(f), 0);
}

static void test_golden(void **state)
{
    const char *update = getenv("TRIB_GOLDEN_UPDATE");
    msgpack_sbuffer sb;
    char path[1024], head[256];
    size_t i, n;

    (void)state;
    msgpack_sbuffer_init(&sb);
    for (i = 0; i < NGOLDEN; i++) {
        const struct golden *g = &goldens[i];
        uint8_t *want;

        msgpack_sbuffer_clear(&sb);
        g->enc(&sb);
        path_of(path, sizeof(path), "proto/golden", g->name, ".hex");
        if (update != NULL && strcmp(update, "1") == 0) {
            snprintf(head, sizeof(head),
                     "# %s (%zu bytes), TRIB_WIRE_VERSION %d.\n"
                     "# Generated by proto/trib_wire_test.c: "
                     "TRIB_GOLDEN_UPDATE=1 proto_wire_test\n",
                     g->name, sb.size, TRIB_WIRE_VERSION);
            write_file(path, sb.data, sb.size, head);
            path_of(path, sizeof(path),
                    g->is_frame ? "tests/fuzz/fuzz_wire"
                                : "tests/fuzz/fuzz_wire_event",
                    g->name, "");
            write_file(path, sb.data, sb.size, NULL);
            path_of(path, sizeof(path), "proto/golden", g->name, ".hex");
        }
        want = read_hex(path, &n);
        if (want == NULL) {
            fail_msg("missing fixture %s (TRIB_GOLDEN_UPDATE=1 writes it)",
                     path);
        }
        if (n != sb.size || memcmp(want, sb.data, n) != 0) {
            fail_msg("%s: the encoder no longer produces the fixture (%zu "
                     "bytes, fixture %zu): a wire change must be compatible "
                     "(PROTOCOL.md)",
                     g->name, sb.size, n);
        }
        /* decode the fixture bytes themselves */
        msgpack_sbuffer_clear(&sb);
        msgpack_sbuffer_write(&sb, (const char *)want, n);
        g->chk(&sb);
        free(want);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* Every strict prefix of every golden frame fails cleanly. */
static void test_truncated(void **state)
{
    msgpack_sbuffer sb;
    size_t i, n;

    (void)state;
    msgpack_sbuffer_init(&sb);
    for (i = 0; i < NGOLDEN; i++) {
        if (!goldens[i].is_frame) {
            continue;
        }
        msgpack_sbuffer_clear(&sb);
        goldens[i].enc(&sb);
        for (n = 0; n < sb.size; n++) {
            int rc = dec_bytes(sb.data, n, &msg);

            assert_true(rc == TRIB_EPROTO || rc == TRIB_ERANGE);
        }
        assert_int_equal(dec(&sb, &msg), 0);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* A decoded message re-encodes to the same bytes. */
static void test_reencode(void **state)
{
    msgpack_sbuffer a, b;

    (void)state;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    enc_hello(&a);
    assert_int_equal(dec(&a, &msg2), 0);
    trib_wire_enc_hello(&b, &msg2.u.hello);
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.data, b.data, a.size);
    msgpack_sbuffer_clear(&a);
    msgpack_sbuffer_clear(&b);
    enc_heartbeat(&a);
    assert_int_equal(dec(&a, &msg2), 0);
    trib_wire_enc_heartbeat(&b, &msg2.u.heartbeat);
    assert_int_equal(a.size, b.size);
    assert_memory_equal(a.data, b.data, a.size);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_reencode),
    };
    int rc;

    msgpack_zone_init(&zone, 8192);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    msgpack_zone_destroy(&zone);
    return rc;
}
