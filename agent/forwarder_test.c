/* forwarder_test.c -- the forwarder against a minimal coordinator: an nng
 * rep peer in a thread of this test that speaks the protocol with
 * trib_wire/trib_auth (a protocol peer, not a database mock). Covered:
 * handshake, batches and acks, rewind on a gap, reconnect and replay,
 * earlier boots first, a wrong secret either way, draining on stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forwarder.h"
#include "trib_auth.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"

#define MAXEV 20000
#define NBOOT 4

/* ------------------------------------------------------ the peer */

struct peer_boot {
    uint64_t boot_id;
    uint64_t applied, durable;
};

struct peer {
    pthread_t th;
    pthread_mutex_t mu;
    char url[64];
    int stop, running;
    nng_socket sock;

    /* behaviour (set by the test, under mu) */
    char secret[32];  /* "" = none: auth not required, mac zeros */
    int lazy_durable; /* durable only moves on heartbeats */
    int no_durable;   /* durable never moves                */
    int accept_any;   /* an impostor: accepts any agent mac */
    int refuse;       /* refuse this many batches (EINVAL)  */

    /* state */
    struct peer_boot boots[NBOOT];
    int nboots;
    int authed;
    uint8_t nonce_a[TRIB_WIRE_NONCE], nonce_c[TRIB_WIRE_NONCE];
    char agent_id[64];
    uint64_t hello_boot;

    /* what it saw */
    int hellos, auths_ok, auths_bad, batches, heartbeats, goodbyes, errors;
    int hello_clients, hello_boots;
    int64_t hb_rss, hb_threads, hb_outbox_events;
    uint64_t ev_boot[MAXEV], ev_seq[MAXEV];
    int64_t ev_job[MAXEV];
    int nev;
};

static struct peer_boot *pboot(struct peer *p, uint64_t id)
{
    int i;

    for (i = 0; i < p->nboots; i++) {
        if (p->boots[i].boot_id == id) {
            return &p->boots[i];
        }
    }
    assert_true(p->nboots < NBOOT);
    p->boots[p->nboots].boot_id = id;
    p->boots[p->nboots].applied = p->boots[p->nboots].durable = 0;
    return &p->boots[p->nboots++];
}

static void reply_error(msgpack_sbuffer *sb, int code, const char *text,
                        uint64_t expected)
{
    struct trib_wire_error e;

    e.code = code;
    e.message = trib_str_c(text);
    e.expected_seq = expected;
    trib_wire_enc_error(sb, &e);
}

/* Handles one request (under mu); the reply goes into sb. */
static void peer_handle(struct peer *p, const struct trib_wire_msg *m,
                        msgpack_sbuffer *sb)
{
    struct trib_wire_ack ack;
    size_t i;

    switch (m->type) {
    case TRIB_MSG_HELLO: {
        struct trib_wire_challenge c;
        p->hellos++;
        p->authed = 0;
        memcpy(p->nonce_a, m->u.hello.nonce, TRIB_WIRE_NONCE);
        snprintf(p->agent_id, sizeof(p->agent_id), "%.*s",
                 (int)m->u.hello.agent_id.n, m->u.hello.agent_id.p);
        p->hello_boot = m->u.hello.boot_id;
        p->hello_clients = m->u.hello.nclients;
        p->hello_boots = m->u.hello.nboots;
        trib_auth_random(p->nonce_c, TRIB_WIRE_NONCE);
        memcpy(c.nonce, p->nonce_c, TRIB_WIRE_NONCE);
        c.coordinator_id = trib_str_c("test-coord");
        c.auth_required = p->secret[0] != '\0';
        trib_wire_enc_challenge(sb, &c);
        return;
    }
    case TRIB_MSG_AUTH: {
        struct trib_wire_welcome *w = TRIB_NEW(struct trib_wire_welcome);
        uint8_t mac[TRIB_WIRE_MAC];
        int k;
        if (p->secret[0] != '\0') {
            trib_auth_agent_mac(p->secret, strlen(p->secret), p->nonce_c,
                                trib_str_c(p->agent_id), p->hello_boot, mac);
            if (!p->accept_any && !trib_auth_mac_equal(mac, m->u.auth.mac)) {
                p->auths_bad++;
                reply_error(sb, TRIB_EAUTH, "wrong shared secret", 0);
                trib_free(w);
                return;
            }
            trib_auth_coord_mac(p->secret, strlen(p->secret), p->nonce_a,
                                p->nonce_c, w->mac);
        }
        p->auths_ok++;
        p->authed = 1;
        for (k = 0; k < p->nboots; k++) {
            w->boots[k].boot_id = p->boots[k].boot_id;
            w->boots[k].applied = p->boots[k].applied;
            w->boots[k].durable = p->boots[k].durable;
        }
        w->nboots = p->nboots;
        trib_wire_enc_welcome(sb, w);
        trib_free(w);
        return;
    }
    default:
        break;
    }
    if (!p->authed) {
        p->errors++;
        reply_error(sb, TRIB_EAUTH, "say HELLO first", 0);
        return;
    }
    switch (m->type) {
    case TRIB_MSG_EVENT_BATCH: {
        const struct trib_wire_batch *b = &m->u.batch;
        struct peer_boot *pb = pboot(p, b->boot_id);
        if (p->refuse > 0 && b->events->via.array.size > 0) {
            p->refuse--;
            p->errors++;
            reply_error(sb, TRIB_EINVAL, "not now", 0);
            return;
        }
        if (b->first_seq > pb->applied + 1) {
            p->errors++;
            reply_error(sb, TRIB_ERANGE, "gap", pb->applied + 1);
            return;
        }
        p->batches++;
        for (i = 0; i < b->events->via.array.size; i++) {
            struct trib_wire_event ev;
            uint64_t seq = b->first_seq + i;
            assert_int_equal(
                trib_wire_event_decode(&b->events->via.array.ptr[i], &ev), 0);
            if (seq <= pb->applied) {
                continue; /* a duplicate: deduped */
            }
            assert_true(p->nev < MAXEV);
            p->ev_boot[p->nev] = b->boot_id;
            p->ev_seq[p->nev] = seq;
            p->ev_job[p->nev] = ev.job_id;
            p->nev++;
            pb->applied = seq;
        }
        if (!p->lazy_durable && !p->no_durable) {
            pb->durable = pb->applied;
        }
        ack.boot_id = b->boot_id;
        ack.applied = pb->applied;
        ack.durable = pb->durable;
        trib_wire_enc_ack(sb, &ack);
        return;
    }
    case TRIB_MSG_HEARTBEAT: {
        struct peer_boot *pb = pboot(p, m->u.heartbeat.boot_id);
        p->heartbeats++;
        p->hb_rss = m->u.heartbeat.rss_bytes;
        p->hb_threads = m->u.heartbeat.threads;
        p->hb_outbox_events = m->u.heartbeat.outbox_events;
        if (!p->no_durable) {
            pb->durable = pb->applied; /* "fsynced" */
        }
        ack.boot_id = pb->boot_id;
        ack.applied = pb->applied;
        ack.durable = pb->durable;
        trib_wire_enc_ack(sb, &ack);
        return;
    }
    case TRIB_MSG_GOODBYE:
        p->goodbyes++;
        memset(&ack, 0, sizeof(ack));
        ack.boot_id = m->u.goodbye.boot_id;
        trib_wire_enc_ack(sb, &ack);
        return;
    default:
        reply_error(sb, TRIB_ENOTSUP, "unexpected", 0);
    }
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    msgpack_zone zone;
    msgpack_sbuffer sb;

    msgpack_zone_init(&zone, 1 << 16);
    msgpack_sbuffer_init(&sb);
    for (;;) {
        struct trib_wire_msg *m = TRIB_NEW(struct trib_wire_msg);
        nng_msg *req, *rep;
        int rv, stop;

        pthread_mutex_lock(&p->mu);
        stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) {
            trib_free(m);
            break;
        }
        rv = nng_recvmsg(p->sock, &req, 0);
        if (rv != 0) {
            trib_free(m);
            if (rv == NNG_ETIMEDOUT) {
                continue;
            }
            break; /* closed */
        }
        msgpack_sbuffer_clear(&sb);
        rv = trib_wire_decode(nng_msg_body(req), nng_msg_len(req), &zone, m);
        pthread_mutex_lock(&p->mu);
        if (rv != 0) {
            p->errors++;
            reply_error(&sb, rv, "malformed", 0);
        } else {
            peer_handle(p, m, &sb);
        }
        pthread_mutex_unlock(&p->mu);
        nng_msg_free(req);
        msgpack_zone_clear(&zone);
        trib_free(m);
        nng_msg_alloc(&rep, 0);
        nng_msg_append(rep, sb.data, sb.size);
        if (nng_sendmsg(p->sock, rep, 0) != 0) {
            nng_msg_free(rep);
        }
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&zone);
    return NULL;
}

static void peer_start(struct peer *p)
{
    assert_int_equal(nng_rep0_open(&p->sock), 0);
    assert_int_equal(nng_socket_set_ms(p->sock, NNG_OPT_RECVTIMEO, 50), 0);
    assert_int_equal(
        nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ, TRIB_WIRE_FRAME_MAX),
        0);
    assert_int_equal(nng_listen(p->sock, p->url, NULL, 0), 0);
    p->stop = 0;
    p->running = 1;
    assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

/* Stops the peer; forget = lose what was applied but not durable (a
 * coordinator kill -9). */
static void peer_stop(struct peer *p, int forget)
{
    int i;

    if (!p->running) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    nng_close(p->sock);
    p->running = 0;
    p->authed = 0;
    if (forget) {
        for (i = 0; i < p->nboots; i++) {
            p->boots[i].applied = p->boots[i].durable;
        }
    }
}

/* ---------------------------------------------------------- fixture */

struct fx {
    uv_loop_t loop;
    uv_timer_t tick;
    char dir[64];
    struct peer peer;
    struct trib_outbox *ob;
    struct trib_forwarder *fw;
    struct trib_wire_client clients[1];
    struct trib_str queues[1];
    int drained;
    int64_t next_job;
};

static int setup(void **state)
{
    static int n;
    struct fx *f = TRIB_NEW(struct fx);

    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->tick);
    snprintf(f->dir, sizeof(f->dir), "/tmp/trib_fwd_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    pthread_mutex_init(&f->peer.mu, NULL);
    snprintf(f->peer.url, sizeof(f->peer.url), "inproc://fwd-test-%d-%d",
             (int)getpid(), n++);
    f->queues[0] = trib_str_c("default");
    f->clients[0].id = trib_str_c("c1");
    f->clients[0].mode = trib_str_c("notify");
    f->clients[0].queues[0] = f->queues[0];
    f->clients[0].nqueues = 1;
    f->next_job = 1;
    *state = f;
    return 0;
}

static void close_all(struct fx *f)
{
    trib_forwarder_close(f->fw);
    f->fw = NULL;
    trib_outbox_close(f->ob);
    f->ob = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    close_all(f);
    peer_stop(&f->peer, 0);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    pthread_mutex_destroy(&f->peer.mu);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    trib_free(f);
    return 0;
}

static void open_outbox(struct fx *f, uint64_t boot)
{
    struct trib_outbox_opts o;

    memset(&o, 0, sizeof(o));
    o.dir = f->dir;
    o.boot_id = boot;
    o.started_at = (int64_t)boot;
    o.segment_bytes = 64 << 10;
    o.max_bytes = 64 << 20;
    o.fsync_ms = 20;
    o.cache_bytes = 32 << 10; /* small: older events come from the files */
    assert_int_equal(trib_outbox_open(&f->loop, &o, &f->ob), 0);
}

static void start_fw(struct fx *f, uint64_t boot, const char *secret)
{
    struct trib_forwarder_opts o;

    open_outbox(f, boot);
    memset(&o, 0, sizeof(o));
    o.loop = &f->loop;
    o.outbox = f->ob;
    o.url = f->peer.url;
    o.agent_id = "node-1";
    o.boot_id = boot;
    o.started_at = trib_now_us();
    o.host = "host-1";
    o.version = "test";
    o.secret = secret;
    o.secret_len = secret ? strlen(secret) : 0;
    o.clients = f->clients;
    o.nclients = 1;
    o.heartbeat_ms = 100;
    o.timeout_ms = 1000;
    assert_int_equal(trib_forwarder_start(&o, &f->fw), 0);
}

/* Publishes n job events as one bus batch. */
static void publish(struct fx *f, int n)
{
    struct trib_event *evs = trib_calloc((size_t)n, sizeof(*evs));
    int i;

    for (i = 0; i < n; i++) {
        evs[i].kind = TRIB_EV_JOB_COMPLETED;
        evs[i].client_id = "c1";
        evs[i].job_id = f->next_job++;
        evs[i].attempt = 1;
        evs[i].max_attempts = 25;
        evs[i].queue = "default";
        evs[i].job_kind = "tributary.noop";
        evs[i].state = "completed";
        evs[i].tags = "{a,\"b c\"}";
        evs[i].created_at = evs[i].finalized_at = evs[i].at = trib_now_us();
    }
    trib_forwarder_on_events(f->fw, evs, (size_t)n);
    trib_free(evs);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

typedef int (*pred_fn)(struct fx *f);

/* Runs the loop until pred holds (1) or ms pass (0). */
static int run_until(struct fx *f, pred_fn pred, int ms)
{
    uint64_t end = trib_mono_us() + (uint64_t)ms * 1000;

    uv_timer_start(&f->tick, on_tick, 5, 5);
    while (!pred(f) && trib_mono_us() < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f->tick);
    return pred(f);
}

static int peer_events(struct fx *f)
{
    int n;

    pthread_mutex_lock(&f->peer.mu);
    n = f->peer.nev;
    pthread_mutex_unlock(&f->peer.mu);
    return n;
}

static int want_events;

static int got_all(struct fx *f)
{
    return peer_events(f) >= want_events;
}

static int all_durable(struct fx *f)
{
    struct trib_outbox_stats st;

    trib_outbox_stats(f->ob, &st);
    return st.events == 0 && got_all(f);
}

/* Everything received, and the outbox down to want_left events (the
 * received ones are deleted once acknowledged durable, a moment later). */
static int want_left;
static int acked_down_to(struct fx *f)
{
    struct trib_outbox_stats st;

    trib_outbox_stats(f->ob, &st);
    return st.events == (uint64_t)want_left && got_all(f);
}

static int connected(struct fx *f)
{
    struct trib_forwarder_stats st;

    trib_forwarder_stats(f->fw, &st);
    return st.connected;
}

static int drained(struct fx *f)
{
    return f->drained;
}

static int never(struct fx *f)
{
    (void)f;
    return 0;
}

static void sleep_ms(struct fx *f, int ms)
{
    run_until(f, never, ms);
}

static void on_drained(void *arg)
{
    ((struct fx *)arg)->drained = 1;
}

/* Every event of a boot arrived once, in sequence order, with its job. */
static void check_boot(struct fx *f, uint64_t boot, uint64_t n,
                       int64_t first_job)
{
    uint64_t want = 1;
    int i;

    pthread_mutex_lock(&f->peer.mu);
    for (i = 0; i < f->peer.nev; i++) {
        if (f->peer.ev_boot[i] != boot) {
            continue;
        }
        assert_int_equal(f->peer.ev_seq[i], want);
        assert_int_equal(f->peer.ev_job[i], first_job + (int64_t)want - 1);
        want++;
    }
    pthread_mutex_unlock(&f->peer.mu);
    assert_int_equal(want - 1, n);
}

/* -------------------------------------------------------------- tests */

static void test_stream(void **state)
{
    struct fx *f = *state;
    struct trib_forwarder_stats st;
    int i;

    snprintf(f->peer.secret, sizeof(f->peer.secret), "s3cret");
    peer_start(&f->peer);
    start_fw(f, 0x1111, "s3cret");
    assert_true(run_until(f, connected, 3000));
    pthread_mutex_lock(&f->peer.mu);
    assert_string_equal(f->peer.agent_id, "node-1");
    assert_int_equal(f->peer.hello_boot, 0x1111);
    assert_int_equal(f->peer.hello_clients, 1);
    assert_int_equal(f->peer.hello_boots, 0); /* no older boots */
    assert_int_equal(f->peer.auths_ok, 1);
    pthread_mutex_unlock(&f->peer.mu);
    for (i = 0; i < 20; i++) {
        publish(f, 250);
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    want_events = 5000;
    assert_true(run_until(f, all_durable, 5000));
    check_boot(f, 0x1111, 5000, 1);
    trib_forwarder_stats(f->fw, &st);
    assert_int_equal(st.events, 5000);
    assert_true(st.batches < 5000); /* batched */
    assert_int_equal(st.rewinds, 0);
    /* heartbeats flow, with real figures */
    sleep_ms(f, 300);
    pthread_mutex_lock(&f->peer.mu);
    assert_true(f->peer.heartbeats >= 2);
    assert_true(f->peer.hb_rss > 0);
    assert_true(f->peer.hb_threads >= 1);
    pthread_mutex_unlock(&f->peer.mu);
}

static void test_rewind_on_gap(void **state)
{
    struct fx *f = *state;
    struct trib_forwarder_stats st;

    f->peer.no_durable = 1;
    peer_start(&f->peer);
    start_fw(f, 0x2222, NULL);
    assert_true(run_until(f, connected, 3000));
    publish(f, 100);
    want_events = 100;
    assert_true(run_until(f, got_all, 3000));
    /* the coordinator "loses" 51..100 without telling: the next batch
     * (101..) leaves a gap; it answers ERROR expected_seq = 51 */
    pthread_mutex_lock(&f->peer.mu);
    f->peer.boots[0].applied = 50;
    f->peer.nev = 50;
    pthread_mutex_unlock(&f->peer.mu);
    publish(f, 20);
    want_events = 120;
    assert_true(run_until(f, got_all, 3000));
    check_boot(f, 0x2222, 120, 1);
    trib_forwarder_stats(f->fw, &st);
    assert_true(st.rewinds >= 1);
    assert_int_equal(st.sessions, 1); /* no reconnect needed */
    pthread_mutex_lock(&f->peer.mu);
    f->peer.no_durable = 0;
    pthread_mutex_unlock(&f->peer.mu);
    assert_true(run_until(f, all_durable, 3000));
}

static void test_refused_batch(void **state)
{
    struct fx *f = *state;
    struct trib_forwarder_stats st;

    /* an ERROR other than EAUTH keeps the session: retried after a pause */
    f->peer.refuse = 2;
    peer_start(&f->peer);
    start_fw(f, 0x2323, NULL);
    assert_true(run_until(f, connected, 3000));
    publish(f, 10);
    want_events = 10;
    assert_true(run_until(f, all_durable, 3000));
    check_boot(f, 0x2323, 10, 1);
    trib_forwarder_stats(f->fw, &st);
    assert_int_equal(st.sessions, 1);
    pthread_mutex_lock(&f->peer.mu);
    assert_int_equal(f->peer.errors, 2);
    assert_int_equal(f->peer.hellos, 1);
    pthread_mutex_unlock(&f->peer.mu);
}

static void test_reconnect_replay(void **state)
{
    struct fx *f = *state;
    struct trib_forwarder_stats st;
    uint64_t durable;
    int i;

    f->peer.lazy_durable = 1; /* durable only after heartbeats */
    peer_start(&f->peer);
    start_fw(f, 0x3333, NULL);
    assert_true(run_until(f, connected, 3000));
    publish(f, 300);
    want_events = 300;
    assert_true(run_until(f, got_all, 3000));
    /* the coordinator dies (kill -9): what was not durable is forgotten */
    publish(f, 200);
    peer_stop(&f->peer, 1);
    publish(f, 500); /* events keep going into the outbox meanwhile */
    sleep_ms(f, 300);
    pthread_mutex_lock(&f->peer.mu);
    f->peer.nev = 0; /* count what the new incarnation applies */
    durable = f->peer.boots[0].durable;
    pthread_mutex_unlock(&f->peer.mu);
    assert_true(durable < 500);
    peer_start(&f->peer);
    want_events = 1000 - (int)durable;
    assert_true(run_until(f, all_durable, 8000));
    trib_forwarder_stats(f->fw, &st);
    assert_true(st.sessions >= 2);
    /* every event after what was durable arrived again, in order */
    pthread_mutex_lock(&f->peer.mu);
    for (i = 0; i < f->peer.nev; i++) {
        assert_int_equal(f->peer.ev_seq[i], durable + 1 + (uint64_t)i);
    }
    assert_int_equal(f->peer.boots[0].applied, 1000);
    pthread_mutex_unlock(&f->peer.mu);
}

static void test_older_boots_first(void **state)
{
    struct fx *f = *state;

    /* boot A0 ran while nobody listened, and stopped */
    start_fw(f, 0xA0, NULL);
    publish(f, 700);
    close_all(f);
    /* boot B starts with a coordinator: A's events go first */
    peer_start(&f->peer);
    start_fw(f, 0xB0, NULL);
    publish(f, 300);
    want_events = 1000;
    assert_true(run_until(f, all_durable, 5000));
    check_boot(f, 0xA0, 700, 1);
    check_boot(f, 0xB0, 300, 701);
    pthread_mutex_lock(&f->peer.mu);
    assert_int_equal(f->peer.ev_boot[0], 0xA0);
    assert_int_equal(f->peer.ev_boot[999], 0xB0);
    pthread_mutex_unlock(&f->peer.mu);
    /* boot A is gone from the outbox once durable */
    {
        struct trib_outbox_boot b[4];
        assert_int_equal(trib_outbox_boots(f->ob, b, 4), 1);
        assert_int_equal(b[0].boot_id, 0xB0);
    }
}

static void test_unreadable_boot_skipped(void **state)
{
    struct fx *f = *state;
    struct trib_outbox_stats st;
    char path[256];
    int fd;

    /* boot C0 stopped with 50 events; D0 loads them while nobody listens */
    start_fw(f, 0xC0, NULL);
    publish(f, 50);
    close_all(f);
    start_fw(f, 0xD0, NULL);
    publish(f, 20);
    /* C0's file changes on disk after it was loaded (a disk error) */
    snprintf(path, sizeof(path), "%s/00000000000000c0-0000000000000001.seg",
             f->dir);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "XXXX", 4, 100), 4);
    close(fd);
    /* C0 cannot be sent; D0's events flow all the same */
    peer_start(&f->peer);
    want_events = 20;
    want_left = 50; /* D0's 20 acknowledged and deleted, C0's 50 kept */
    assert_true(run_until(f, acked_down_to, 5000));
    check_boot(f, 0xD0, 20, 51);
    check_boot(f, 0xC0, 0, 1);
    trib_outbox_stats(f->ob, &st);
    assert_int_equal(st.events, 50); /* kept: never dropped */
}

static void test_wrong_secret(void **state)
{
    struct fx *f = *state;
    struct trib_forwarder_stats st;

    snprintf(f->peer.secret, sizeof(f->peer.secret), "right");
    peer_start(&f->peer);
    start_fw(f, 0x4444, "wrong");
    publish(f, 50);
    sleep_ms(f, 800);
    trib_forwarder_stats(f->fw, &st);
    assert_false(st.connected);
    assert_true(st.auth_failures >= 2); /* retried with backoff */
    assert_int_equal(peer_events(f), 0);
    pthread_mutex_lock(&f->peer.mu);
    assert_true(f->peer.auths_bad >= 2);
    assert_int_equal(f->peer.batches, 0);
    /* the operator fixes the coordinator's secret */
    snprintf(f->peer.secret, sizeof(f->peer.secret), "wrong");
    pthread_mutex_unlock(&f->peer.mu);
    want_events = 50;
    assert_true(run_until(f, all_durable, 8000));
    check_boot(f, 0x4444, 50, 1);
}

static void test_coordinator_without_secret(void **state)
{
    struct fx *f = *state;
    struct trib_forwarder_stats st;

    /* the peer requires no secret: an agent with one refuses it at once */
    peer_start(&f->peer);
    start_fw(f, 0x5555, "s3cret");
    publish(f, 10);
    sleep_ms(f, 600);
    trib_forwarder_stats(f->fw, &st);
    assert_false(st.connected);
    assert_true(st.auth_failures >= 1);
    pthread_mutex_lock(&f->peer.mu);
    assert_true(f->peer.hellos >= 1);
    assert_int_equal(f->peer.auths_ok + f->peer.auths_bad, 0);
    assert_int_equal(f->peer.batches, 0); /* nothing sent to it */
    pthread_mutex_unlock(&f->peer.mu);
}

static void test_impostor(void **state)
{
    struct fx *f = *state;
    struct trib_forwarder_stats st;

    /* asks for a secret, accepts anything, but cannot prove the secret */
    snprintf(f->peer.secret, sizeof(f->peer.secret), "guess");
    f->peer.accept_any = 1;
    peer_start(&f->peer);
    start_fw(f, 0x5556, "s3cret");
    publish(f, 10);
    sleep_ms(f, 600);
    trib_forwarder_stats(f->fw, &st);
    assert_false(st.connected);
    assert_true(st.auth_failures >= 1);
    pthread_mutex_lock(&f->peer.mu);
    assert_true(f->peer.auths_ok >= 1);   /* it welcomed us... */
    assert_int_equal(f->peer.batches, 0); /* ...and got nothing */
    assert_int_equal(f->peer.heartbeats, 0);
    pthread_mutex_unlock(&f->peer.mu);
}

static void test_secret_required(void **state)
{
    struct fx *f = *state;
    struct trib_forwarder_stats st;

    snprintf(f->peer.secret, sizeof(f->peer.secret), "s3cret");
    peer_start(&f->peer);
    start_fw(f, 0x6666, NULL);
    sleep_ms(f, 400);
    trib_forwarder_stats(f->fw, &st);
    assert_false(st.connected);
    assert_true(st.auth_failures >= 1);
    pthread_mutex_lock(&f->peer.mu);
    assert_int_equal(f->peer.auths_ok + f->peer.auths_bad, 0);
    pthread_mutex_unlock(&f->peer.mu);
}

static void test_drain(void **state)
{
    struct fx *f = *state;

    f->peer.lazy_durable = 1;
    peer_start(&f->peer);
    start_fw(f, 0x7777, NULL);
    assert_true(run_until(f, connected, 3000));
    publish(f, 400);
    trib_forwarder_drain(f->fw, 5000, on_drained, f);
    want_events = 400;
    assert_true(run_until(f, drained, 5000));
    assert_true(all_durable(f)); /* probes fetched the durable acks */
    pthread_mutex_lock(&f->peer.mu);
    assert_int_equal(f->peer.goodbyes, 1);
    pthread_mutex_unlock(&f->peer.mu);
}

static void test_drain_timeout(void **state)
{
    struct fx *f = *state;
    struct trib_outbox_stats st;
    uint64_t t0;

    /* nobody listens: the drain gives up after its timeout */
    start_fw(f, 0x8888, NULL);
    publish(f, 30);
    t0 = trib_mono_us();
    trib_forwarder_drain(f->fw, 300, on_drained, f);
    assert_true(run_until(f, drained, 3000));
    assert_true(trib_mono_us() - t0 >= 290000);
    trib_outbox_stats(f->ob, &st);
    assert_int_equal(st.events, 30); /* kept for the next start */
}

static void test_tags(void **state)
{
    struct trib_str t[TRIB_WIRE_MAX_TAGS];
    char scratch[256];
    int n;

    (void)state;
    n = trib__forwarder_tags("{a,\"b c\",\"q\\\"x\"}", scratch, sizeof(scratch),
                             t, TRIB_WIRE_MAX_TAGS);
    assert_int_equal(n, 3);
    assert_int_equal(t[0].n, 1);
    assert_memory_equal(t[0].p, "a", 1);
    assert_int_equal(t[1].n, 3);
    assert_memory_equal(t[1].p, "b c", 3);
    assert_int_equal(t[2].n, 3);
    assert_memory_equal(t[2].p, "q\"x", 3);
    assert_int_equal(trib__forwarder_tags("{}", scratch, sizeof(scratch), t,
                                          TRIB_WIRE_MAX_TAGS),
                     0);
    assert_int_equal(trib__forwarder_tags(NULL, scratch, sizeof(scratch), t, 4),
                     0);
    assert_int_equal(
        trib__forwarder_tags("{a,b,c,d,e}", scratch, sizeof(scratch), t, 2), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewind_on_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_boots_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_boot_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinator_without_secret, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_impostor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_timeout, setup, teardown),
        cmocka_unit_test(test_tags),
    };

    trib_log_init("test", TRIB_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
