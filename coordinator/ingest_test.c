/* ingest_test.c -- the coordinator's sockets end to end in one process:
 * ingest (handshake, exactly-once apply, ACK applied/durable, gaps,
 * duplicates, invalid events, bad agent ids) and control (EVENTS long polls,
 * a cursor from a restarted coordinator, close with a parked request), over
 * real nng req/rep on loopback. The server runs on this thread's libuv
 * loop; a client thread speaks synchronous nng req and only records what
 * it got (cmocka asserts run on the main thread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "events.h"
#include "ingest.h"
#include "store.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "view.h"

#define T0 (1800000000LL * TRIB_US_PER_S)

/* ------------------------------------------------------------ client */

/* One answer as the client saw it. */
struct answer {
    int rv;   /* nng result of send + recv (0 = got a reply) */
    int type; /* TRIB_MSG_* of the reply                      */
    int code; /* ERROR code                                   */
    uint64_t expected_seq, applied, durable, next, missed;
    uint32_t nevents;
    int64_t took_ms;
};

struct client {
    char url[64];
    void (*script)(struct client *c);
    struct answer ans[32];
    int n;
    int64_t arg; /* script parameter */
    atomic_int done;
};

static void ask(struct client *c, nng_socket s, const msgpack_sbuffer *req)
{
    struct answer *a = &c->ans[c->n++];
    msgpack_zone zone;
    struct trib_wire_msg m;
    uint64_t t0 = trib_mono_us();
    void *buf = NULL;
    size_t len = 0;

    memset(a, 0, sizeof(*a));
    a->rv = nng_send(s, req->data, req->size, 0);
    if (a->rv == 0) {
        a->rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
    }
    a->took_ms = (int64_t)(trib_mono_us() - t0) / 1000;
    if (a->rv != 0) {
        return;
    }
    msgpack_zone_init(&zone, 4096);
    if (trib_wire_decode(buf, len, &zone, &m) == 0) {
        a->type = (int)m.type;
        if (m.type == TRIB_MSG_ERROR) {
            a->code = m.u.error.code;
            a->expected_seq = m.u.error.expected_seq;
        } else if (m.type == TRIB_MSG_ACK) {
            a->applied = m.u.ack.applied;
            a->durable = m.u.ack.durable;
        } else if (m.type == TRIB_MSG_EVENTS_REPLY) {
            a->next = m.u.events_reply.next;
            a->missed = m.u.events_reply.missed;
            a->nevents = m.u.events_reply.events->via.array.size;
        }
    }
    msgpack_zone_destroy(&zone);
    nng_free(buf, len);
}

static nng_socket dial(const struct client *c)
{
    nng_socket s;

    nng_req0_open(&s);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
    nng_dial(s, c->url, NULL, 0);
    return s;
}

static void *client_main(void *arg)
{
    struct client *c = arg;

    c->script(c);
    atomic_store(&c->done, 1);
    return NULL;
}

static void on_poll(uv_timer_t *t)
{
    struct client *c = t->data;

    if (atomic_load(&c->done)) {
        uv_stop(t->loop);
    }
}

/* Runs the loop while the client thread runs its script. */
static void run_client(uv_loop_t *loop, struct client *c)
{
    pthread_t th;
    uv_timer_t poll;

    uv_timer_init(loop, &poll);
    poll.data = c;
    uv_timer_start(&poll, on_poll, 2, 2);
    assert_int_equal(pthread_create(&th, NULL, client_main, c), 0);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* ------------------------------------------------------------ frames */

static void enc_hello(msgpack_sbuffer *sb, const char *id, size_t idlen,
                      uint64_t boot)
{
    struct trib_wire_hello h;

    memset(&h, 0, sizeof(h));
    h.agent_id.p = id;
    h.agent_id.n = (uint32_t)idlen;
    h.boot_id = boot;
    h.host = trib_str_c("h");
    h.version = trib_str_c("test");
    h.heartbeat_ms = 1000;
    msgpack_sbuffer_clear(sb);
    trib_wire_enc_hello(sb, &h);
}

static void enc_auth(msgpack_sbuffer *sb)
{
    struct trib_wire_auth a;

    memset(&a, 0, sizeof(a)); /* no secret: the MAC is not checked */
    msgpack_sbuffer_clear(sb);
    trib_wire_enc_auth(sb, &a);
}

/* Events first..first+n-1 (the one with sequence 'bad' undecodable). */
static void enc_batch(msgpack_sbuffer *sb, uint64_t boot, uint64_t first,
                      uint32_t n, uint64_t bad)
{
    msgpack_packer pk;
    struct trib_wire_event ev;
    uint32_t i;

    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    trib_wire_enc_batch_head(sb, boot, first, n);
    for (i = 0; i < n; i++) {
        if (first + i == bad) {
            msgpack_pack_map(&pk, 1);
            msgpack_pack_int(&pk, 0);
            msgpack_pack_str_with_body(&pk, "x", 1);
            continue;
        }
        memset(&ev, 0, sizeof(ev));
        ev.kind = TRIB_EV_JOB_COMPLETED;
        ev.state = TRIB_WS_COMPLETED;
        ev.client_id = trib_str_c("a1-c1");
        ev.queue = trib_str_c("default");
        ev.job_kind = trib_str_c("noop");
        ev.job_id = (int64_t)(first + i);
        ev.at = ev.finalized_at = T0 + (int64_t)(first + i);
        trib_wire_event_encode(sb, &ev);
    }
}

static void enc_heartbeat(msgpack_sbuffer *sb, uint64_t boot)
{
    struct trib_wire_heartbeat hb;

    memset(&hb, 0, sizeof(hb));
    hb.boot_id = boot;
    msgpack_sbuffer_clear(sb);
    trib_wire_enc_heartbeat(sb, &hb);
}

static void enc_events(msgpack_sbuffer *sb, uint64_t after, int64_t wait_ms)
{
    struct trib_wire_events_req r;

    memset(&r, 0, sizeof(r));
    r.after = after;
    r.max = 100;
    r.wait_ms = wait_ms;
    msgpack_sbuffer_clear(sb);
    trib_wire_enc_events_req(sb, &r);
}

/* ------------------------------------------------------------ ingest */

static void script_exactly_once(struct client *c)
{
    msgpack_sbuffer sb;
    nng_socket s = dial(c), anon = dial(c);

    msgpack_sbuffer_init(&sb);
    enc_batch(&sb, 5, 1, 3, 0); /* [0] before any handshake */
    ask(c, anon, &sb);
    enc_hello(&sb, "a\0b", 3, 9); /* [1] a NUL in the id */
    ask(c, anon, &sb);
    enc_hello(&sb, "a1", 2, 5); /* [2] CHALLENGE */
    ask(c, s, &sb);
    enc_auth(&sb); /* [3] WELCOME */
    ask(c, s, &sb);
    enc_batch(&sb, 5, 1, 10, 0); /* [4] ACK 10 */
    ask(c, s, &sb);
    ask(c, s, &sb);              /* [5] the same again: ACK 10 */
    enc_batch(&sb, 5, 15, 6, 0); /* [6] a gap: ERANGE, expected 11 */
    ask(c, s, &sb);
    enc_batch(&sb, 5, 8, 8, 12); /* [7] 8..15, 3 dup, 12 invalid: ACK 15 */
    ask(c, s, &sb);
    enc_batch(&sb, 6, 1, 2, 0); /* [8] an older boot of the same agent */
    ask(c, s, &sb);
    enc_heartbeat(&sb, 5); /* [9] ACK 15 */
    ask(c, s, &sb);
    msgpack_sbuffer_destroy(&sb);
    nng_close(s);
    nng_close(anon);
}

static void test_ingest_exactly_once(void **state)
{
    uv_loop_t loop;
    struct trib_view *v;
    struct trib_ingest *in;
    struct trib_ingest_opts o;
    struct trib_ingest_stats is;
    struct trib_view_stats vs;
    struct client *c = trib_calloc(1, sizeof(*c));

    (void)state;
    uv_loop_init(&loop);
    assert_int_equal(trib_view_new(NULL, &v), 0);
    memset(&o, 0, sizeof(o));
    o.url = "tcp://127.0.0.1:0";
    o.coordinator_id = "test";
    o.heartbeat_ms = 1000;
    assert_int_equal(trib_ingest_start(&loop, &o, v, NULL, &in), 0);
    snprintf(c->url, sizeof(c->url), "tcp://127.0.0.1:%d",
             trib_ingest_port(in));
    c->script = script_exactly_once;
    run_client(&loop, c);

    assert_int_equal(c->n, 10);
    assert_int_equal(c->ans[0].type, TRIB_MSG_ERROR);
    assert_int_equal(c->ans[0].code, TRIB_EAUTH);
    assert_int_equal(c->ans[1].type, TRIB_MSG_ERROR);
    assert_int_equal(c->ans[1].code, TRIB_EPROTO);
    assert_int_equal(c->ans[2].type, TRIB_MSG_CHALLENGE);
    assert_int_equal(c->ans[3].type, TRIB_MSG_WELCOME);
    assert_int_equal(c->ans[4].type, TRIB_MSG_ACK);
    assert_int_equal(c->ans[4].applied, 10);
    assert_int_equal(c->ans[4].durable, 10); /* memory only */
    assert_int_equal(c->ans[5].type, TRIB_MSG_ACK);
    assert_int_equal(c->ans[5].applied, 10);
    assert_int_equal(c->ans[6].type, TRIB_MSG_ERROR);
    assert_int_equal(c->ans[6].code, TRIB_ERANGE);
    assert_int_equal(c->ans[6].expected_seq, 11);
    assert_int_equal(c->ans[7].type, TRIB_MSG_ACK);
    assert_int_equal(c->ans[7].applied, 15);
    assert_int_equal(c->ans[8].type, TRIB_MSG_ACK);
    assert_int_equal(c->ans[8].applied, 2);
    assert_int_equal(c->ans[9].type, TRIB_MSG_ACK);
    assert_int_equal(c->ans[9].applied, 15);
    assert_int_equal(c->ans[9].durable, 15);

    trib_view_stats(v, &vs);
    assert_int_equal(vs.events_applied, 10 + 4 + 2);
    assert_int_equal(vs.duplicates, 10 + 3);
    assert_int_equal(vs.invalid, 1);
    assert_int_equal(vs.gaps, 1);
    trib_ingest_stats(in, &is);
    assert_int_equal(is.unauthenticated, 1);

    trib_ingest_close(in);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    trib_view_free(v);
    trib_free(c);
}

static void script_durable(struct client *c)
{
    msgpack_sbuffer sb;
    nng_socket s = dial(c);
    int i;

    msgpack_sbuffer_init(&sb);
    enc_hello(&sb, "a1", 2, 5);
    ask(c, s, &sb);
    enc_auth(&sb);
    ask(c, s, &sb);
    enc_batch(&sb, 5, 1, 10, 0); /* [2] applied 10, not yet durable */
    ask(c, s, &sb);
    enc_heartbeat(&sb, 5); /* [3] until durable */
    for (i = 0; i < 200; i++) {
        ask(c, s, &sb);
        if (c->ans[3].durable == 10 || c->ans[3].rv != 0) {
            break;
        }
        c->n--;
        usleep(5000);
    }
    msgpack_sbuffer_destroy(&sb);
    nng_close(s);
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(dir);
}

/* With a store: the first ACK says applied but not durable (the record is
 * only in memory); a later ACK says durable once the log is synced. */
static void test_ingest_durable(void **state)
{
    uv_loop_t loop;
    struct trib_view *v;
    struct trib_store *st;
    struct trib_store_opts so;
    struct trib_ingest *in;
    struct trib_ingest_opts o;
    struct client *c = trib_calloc(1, sizeof(*c));
    char dir[64] = "/tmp/trib-ingest-XXXXXX";

    (void)state;
    assert_non_null(mkdtemp(dir));
    uv_loop_init(&loop);
    assert_int_equal(trib_view_new(NULL, &v), 0);
    memset(&so, 0, sizeof(so));
    so.dir = dir;
    so.sync_ms = 5;
    assert_int_equal(trib_store_open(&loop, &so, v, &st), 0);
    memset(&o, 0, sizeof(o));
    o.url = "tcp://127.0.0.1:0";
    o.coordinator_id = "test";
    assert_int_equal(trib_ingest_start(&loop, &o, v, st, &in), 0);
    snprintf(c->url, sizeof(c->url), "tcp://127.0.0.1:%d",
             trib_ingest_port(in));
    c->script = script_durable;
    run_client(&loop, c);

    assert_int_equal(c->n, 4);
    assert_int_equal(c->ans[2].type, TRIB_MSG_ACK);
    assert_int_equal(c->ans[2].applied, 10);
    assert_int_equal(c->ans[2].durable, 0);
    assert_int_equal(c->ans[3].type, TRIB_MSG_ACK);
    assert_int_equal(c->ans[3].durable, 10);

    trib_ingest_close(in);
    assert_int_equal(trib_store_close(st), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    trib_view_free(v);
    trib_free(c);
    rm_dir(dir);
}

/* ----------------------------------------------------------- control */

static struct trib_view *view_with_events(int n)
{
    struct trib_view *v;
    msgpack_sbuffer sb;
    msgpack_zone zone;
    struct trib_wire_msg m;
    struct trib_apply_result r;

    assert_int_equal(trib_view_new(NULL, &v), 0);
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&zone, 8192);
    enc_batch(&sb, 1, 1, (uint32_t)n, 0);
    assert_int_equal(trib_wire_decode(sb.data, sb.size, &zone, &m), 0);
    assert_int_equal(trib_view_apply(v, trib_str_c("a1"), &m.u.batch, T0, &r),
                     0);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return v;
}

static void script_events(struct client *c)
{
    msgpack_sbuffer sb;
    nng_socket s = dial(c);

    msgpack_sbuffer_init(&sb);
    enc_events(&sb, 0, 0); /* [0] everything */
    ask(c, s, &sb);
    enc_events(&sb, 1000000, 3000); /* [1] a cursor from the future */
    ask(c, s, &sb);
    enc_events(&sb, (uint64_t)c->arg, 200); /* [2] up to date: parked */
    ask(c, s, &sb);
    msgpack_sbuffer_destroy(&sb);
    nng_close(s);
}

static void test_control_events(void **state)
{
    uv_loop_t loop;
    struct trib_view *v = view_with_events(7);
    struct trib_control *ctl;
    struct trib_control_opts o;
    struct client *c = trib_calloc(1, sizeof(*c));

    (void)state;
    uv_loop_init(&loop);
    memset(&o, 0, sizeof(o));
    o.url = "tcp://127.0.0.1:0";
    assert_int_equal(trib_control_start(&loop, &o, v, NULL, &ctl), 0);
    snprintf(c->url, sizeof(c->url), "tcp://127.0.0.1:%d",
             trib_control_port(ctl));
    c->script = script_events;
    c->arg = 7;
    run_client(&loop, c);

    assert_int_equal(c->n, 3);
    assert_int_equal(c->ans[0].type, TRIB_MSG_EVENTS_REPLY);
    assert_int_equal(c->ans[0].nevents, 7);
    assert_int_equal(c->ans[0].next, 7);
    assert_int_equal(c->ans[1].type, TRIB_MSG_EVENTS_REPLY);
    assert_int_equal(c->ans[1].nevents, 0);
    assert_int_equal(c->ans[1].next, 7);
    assert_true(c->ans[1].took_ms < 1000); /* not parked until wait_ms */
    assert_int_equal(c->ans[2].type, TRIB_MSG_EVENTS_REPLY);
    assert_int_equal(c->ans[2].nevents, 0);
    assert_int_equal(c->ans[2].next, 7);
    assert_true(c->ans[2].took_ms >= 150); /* parked until its deadline */

    trib_control_close(ctl);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    trib_view_free(v);
    trib_free(c);
}

static void script_parked(struct client *c)
{
    msgpack_sbuffer sb;
    nng_socket s = dial(c);

    msgpack_sbuffer_init(&sb);
    enc_events(&sb, (uint64_t)c->arg, 10000);
    ask(c, s, &sb);
    msgpack_sbuffer_destroy(&sb);
    nng_close(s);
}

struct closer {
    struct trib_control *ctl;
    uv_timer_t t;
};

static void on_close_now(uv_timer_t *t)
{
    struct closer *k = t->data;

    trib_control_close(k->ctl);
    k->ctl = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

/* Closing control while a long poll is parked: the request is answered
 * (or cancelled with the socket), nothing leaks, nothing is touched after
 * the close. */
static void test_control_close_parked(void **state)
{
    uv_loop_t loop;
    struct trib_view *v = view_with_events(3);
    struct trib_control_opts o;
    struct closer k;
    struct client *c = trib_calloc(1, sizeof(*c));

    (void)state;
    uv_loop_init(&loop);
    memset(&o, 0, sizeof(o));
    o.url = "tcp://127.0.0.1:0";
    assert_int_equal(trib_control_start(&loop, &o, v, NULL, &k.ctl), 0);
    snprintf(c->url, sizeof(c->url), "tcp://127.0.0.1:%d",
             trib_control_port(k.ctl));
    uv_timer_init(&loop, &k.t);
    k.t.data = &k;
    uv_timer_start(&k.t, on_close_now, 200, 0);
    c->script = script_parked;
    c->arg = 3;
    run_client(&loop, c);

    assert_null(k.ctl);
    assert_int_equal(c->n, 1);
    assert_true(c->ans[0].took_ms < 9000); /* not left hanging */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    trib_view_free(v);
    trib_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_exactly_once),
        cmocka_unit_test(test_ingest_durable),
        cmocka_unit_test(test_control_events),
        cmocka_unit_test(test_control_close_parked),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
