/*
 * forwarder_int.h -- what forwarder.c (the session: requests, replies,
 * draining, events into the outbox) and forwarder_conn.c (nng's threads
 * handing results to the loop, the dialer, start and close) share.
 * Library-private.
 *
 * Threading: as forwarder.c says -- the aio and pipe callbacks run on nng
 * threads and touch only what struct trib_forwarder marks so; everything
 * else belongs to the loop thread.
 */
#ifndef TRIB_FORWARDER_INT_H
#define TRIB_FORWARDER_INT_H

#include "forwarder.h"
#include "trib_log.h"
#include "trib_tls.h"

#include <nng/nng.h>
#include <pthread.h>

#define TIMEOUT_MS     5000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define PROBE_MS       50 /* while draining: how often to ask for acks */
#define GOODBYE_MS     1000

enum fw_state { FW_IDLE, FW_HELLO, FW_AUTH, FW_READY, FW_DONE };
enum fw_req {
    REQ_NONE,
    REQ_HELLO,
    REQ_AUTH,
    REQ_BATCH,
    REQ_HEARTBEAT,
    REQ_GOODBYE
};
enum post_kind { POST_REPLY, POST_PIPE_ADD, POST_PIPE_REM };

/* A result handed from an nng thread to the loop. */
struct post {
    struct post *next;
    enum post_kind kind;
    int rv;       /* nng error of the request (POST_REPLY) */
    nng_msg *msg; /* the reply (rv == 0)                   */
};

struct trib_forwarder {
    struct trib_forwarder_opts o;
    struct trib_outbox *ob;

    /* nng (the aio callback touches only sending/ctx/aio and the queue) */
    nng_socket sock;
    nng_dialer dialer;
    nng_ctx ctx;
    nng_aio *aio;
    int sending; /* aio phase: 1 send, 0 receive */
    pthread_mutex_t mu;
    struct post *head, *tail; /* under mu */
    int closed;               /* under mu: no more posts */
    uv_async_t async;

    /* session (loop thread) */
    enum fw_state state;
    enum fw_req inflight;
    uint64_t batch_boot, batch_first, batch_n;
    int restart; /* end the session once the request returns */
    int holding; /* a refused batch: wait for the backoff timer */
    uint64_t bad_boot, bad_until; /* unreadable in the outbox: skipped
                                     until then (uv_now, ms) */
    int hb_due, probe_due;
    uint8_t nonce_a[TRIB_WIRE_NONCE], nonce_c[TRIB_WIRE_NONCE];
    char coord_id[TRIB_WIRE_STR_MAX + 1];
    uint64_t backoff_ms;
    uv_timer_t backoff_timer, hb_timer, drain_timer, probe_timer;
    int open_handles, closing;
    int pipes;                            /* connections up (loop thread) */
    struct trib_tls_dial_stats dial_seen; /* counters at the last check  */
    int tls_cert;                         /* presenting a client cert     */
    char tls_name[256];                   /* verified name; "" URL host   */
    struct trib_complain conn_complain, auth_complain, proto_complain;

    /* draining */
    int draining, drain_over;
    void (*drain_done)(void *);
    void *drain_arg;

    /* buffers */
    msgpack_sbuffer frame, payload;
    msgpack_zone zone;
    struct trib_wire_heartbeat hb;
    struct trib_forwarder_stats st;
};

/* forwarder.c, loop thread */
void trib__fw_on_reply(struct trib_forwarder *fw, int rv, nng_msg *msg);
void trib__fw_send_hello(struct trib_forwarder *fw);
void trib__fw_session_end(struct trib_forwarder *fw);
void trib__fw_on_hb_timer(uv_timer_t *t);

#endif /* TRIB_FORWARDER_INT_H */
