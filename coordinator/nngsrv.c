/*
 * nngsrv.c -- nng rep contexts bridged to a libuv loop.
 *
 * Each context cycles RECV -> (handler) -> SEND -> RECV. Its aio callback
 * runs on an nng thread and only moves the context onto the ready list;
 * the loop thread does everything else.
 */
#include "nngsrv.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_tls.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { CTX_RECV, CTX_HANDLER, CTX_SEND, CTX_DEAD };

#define TLS_CHECK_MS 5000 /* how often failed handshakes are counted */

#define WAKE_BATCH 64

struct trib_nngreq {
    struct trib_nngsrv *srv;
    nng_ctx ctx;
    nng_aio *aio;
    int state;
    struct trib_nngreq *next_ready; /* guarded by srv->mu */
    int queued;                     /* guarded by srv->mu */
};

struct pipe_note {
    uint32_t pipe;
    struct pipe_note *next;
};

struct trib_nngsrv {
    uv_loop_t *loop;
    nng_socket sock;
    nng_listener listener;
    char *url;
    const char *name;
    trib_nngsrv_req_fn on_request;
    trib_nngsrv_pipe_fn on_pipe_gone;
    void *arg;
    struct trib_nngreq *reqs;
    int nreqs;
    int closing;
    uv_async_t wake;
    uv_timer_t tls_timer; /* TLS URLs: failed handshakes, logged */
    int open_handles;     /* wake (+ tls_timer): freed at zero   */
    uint64_t tls_failed;  /* the listener's counters last time   */
    struct trib_complain tls_complain;

    pthread_mutex_t mu;
    struct trib_nngreq *ready_head, *ready_tail;
    struct pipe_note *gone; /* pipes closed since the last drain */
};

static void arm_recv(struct trib_nngreq *r)
{
    r->state = CTX_RECV;
    nng_ctx_recv(r->ctx, r->aio);
}

/* nng thread. */
static void aio_done(void *arg)
{
    struct trib_nngreq *r = arg;
    struct trib_nngsrv *s = r->srv;

    pthread_mutex_lock(&s->mu);
    if (!r->queued) {
        r->queued = 1;
        r->next_ready = NULL;
        if (s->ready_tail != NULL) {
            s->ready_tail->next_ready = r;
        } else {
            s->ready_head = r;
        }
        s->ready_tail = r;
    }
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);
}

/* nng thread. */
static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct trib_nngsrv *s = arg;
    struct pipe_note *n;

    if (ev != NNG_PIPE_EV_REM_POST) {
        return;
    }
    n = TRIB_NEW(struct pipe_note);
    n->pipe = nng_pipe_id(p);
    pthread_mutex_lock(&s->mu);
    n->next = s->gone;
    s->gone = n;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);
}

static void complete(struct trib_nngsrv *s, struct trib_nngreq *r)
{
    int rv = nng_aio_result(r->aio);
    nng_msg *msg;

    if (r->state == CTX_SEND) {
        if (rv != 0) {
            /* The peer went away before the reply left: drop it. */
            nng_msg_free(nng_aio_get_msg(r->aio));
        }
        if (!s->closing) {
            arm_recv(r);
        }
        return;
    }
    if (r->state != CTX_RECV) {
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || s->closing) {
            r->state = CTX_DEAD;
            return;
        }
        /* Timeouts and transient errors: keep serving. */
        arm_recv(r);
        return;
    }
    msg = nng_aio_get_msg(r->aio);
    r->state = CTX_HANDLER;
    s->on_request(s->arg, r, nng_pipe_id(nng_msg_get_pipe(msg)),
                  nng_msg_body(msg), nng_msg_len(msg));
    nng_msg_free(msg);
}

static void on_wake(uv_async_t *h)
{
    struct trib_nngsrv *s = h->data;
    struct trib_nngreq *r;
    struct pipe_note *gone, *n;
    int served;

    /* At most WAKE_BATCH requests per wake-up, then wake again: with many
     * busy peers the queue never empties, and timers (the store's group
     * commit, liveness) must still get their turn on the loop. */
    for (served = 0;; served++) {
        if (served == WAKE_BATCH) {
            uv_async_send(&s->wake);
            break;
        }
        pthread_mutex_lock(&s->mu);
        r = s->ready_head;
        if (r != NULL) {
            s->ready_head = r->next_ready;
            if (s->ready_head == NULL) {
                s->ready_tail = NULL;
            }
            r->queued = 0;
        }
        pthread_mutex_unlock(&s->mu);
        if (r == NULL) {
            break;
        }
        complete(s, r);
    }
    pthread_mutex_lock(&s->mu);
    gone = s->gone;
    s->gone = NULL;
    pthread_mutex_unlock(&s->mu);
    while (gone != NULL) {
        n = gone;
        gone = n->next;
        if (s->on_pipe_gone != NULL && !s->closing) {
            s->on_pipe_gone(s->arg, n->pipe);
        }
        trib_free(n);
    }
}

void trib_nngsrv_reply(struct trib_nngreq *r, const void *data, size_t len)
{
    nng_msg *msg;

    if (r->state != CTX_HANDLER) {
        return;
    }
    if (r->srv->closing) {
        r->state = CTX_DEAD;
        return;
    }
    if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, data, len) != 0) {
        /* trib_mem's policy: out of memory is fatal. */
        TRIB_ERROR("CRD-OOM", "%s: out of memory for a reply", r->srv->name);
        abort();
    }
    r->state = CTX_SEND;
    nng_aio_set_msg(r->aio, msg);
    nng_ctx_send(r->ctx, r->aio);
}

int trib_nngsrv_port(const struct trib_nngsrv *s)
{
    int port = 0;

    if (nng_listener_get_int(s->listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0) {
        return 0;
    }
    return port;
}

static void on_tls_timer(uv_timer_t *t)
{
    struct trib_nngsrv *s = t->data;
    uint64_t n = trib_tls_listener_refused(s->listener);

    if (n > s->tls_failed) {
        trib_complain(&s->tls_complain, TRIB_LOG_WARN, "CRD-TLS",
                      "%s: %" PRIu64 " connection(s) to %s failed the TLS "
                      "handshake in the last %d s (clients without a "
                      "certificate this coordinator trusts)",
                      s->name, n - s->tls_failed, s->url, TLS_CHECK_MS / 1000);
    }
    s->tls_failed = n;
}

int trib_nngsrv_start(uv_loop_t *loop, const struct trib_nngsrv_opts *o,
                      struct trib_nngsrv **out)
{
    struct trib_nngsrv *s = TRIB_NEW(struct trib_nngsrv);
    int rv, i, err;

    s->loop = loop;
    s->url = trib_strdup(o->url);
    s->name = o->name;
    s->on_request = o->on_request;
    s->on_pipe_gone = o->on_pipe_gone;
    s->arg = o->arg;
    pthread_mutex_init(&s->mu, NULL);
    uv_async_init(loop, &s->wake, on_wake);
    s->wake.data = s;
    s->open_handles = 1;

    if ((rv = nng_rep0_open(&s->sock)) != 0) {
        goto fail;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, o->max_frame);
    nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_event, s);
    if ((rv = nng_listener_create(&s->listener, s->sock, s->url)) != 0) {
        goto fail;
    }
    nng_listener_set_size(s->listener, NNG_OPT_RECVMAXSZ, o->max_frame);
    if (trib_tls_url(s->url)) {
        if (o->tls == NULL) {
            rv = NNG_EINVAL; /* coord.c checks first: not reached */
            goto fail;
        }
        rv = nng_listener_set_ptr(s->listener, NNG_OPT_TLS_CONFIG, o->tls);
        if (rv != 0) {
            goto fail;
        }
    }
    if ((rv = nng_listener_start(s->listener, 0)) != 0) {
        goto fail;
    }
    if (trib_tls_url(s->url)) {
        uv_timer_init(loop, &s->tls_timer);
        s->tls_timer.data = s;
        s->open_handles++;
        s->tls_failed = trib_tls_listener_refused(s->listener);
        uv_timer_start(&s->tls_timer, on_tls_timer, TLS_CHECK_MS, TLS_CHECK_MS);
    }
    s->nreqs = o->contexts > 0 ? o->contexts : 16;
    s->reqs = trib_calloc((size_t)s->nreqs, sizeof(*s->reqs));
    for (i = 0; i < s->nreqs; i++) {
        struct trib_nngreq *r = &s->reqs[i];

        r->srv = s;
        if ((rv = nng_ctx_open(&r->ctx, s->sock)) != 0 ||
            (rv = nng_aio_alloc(&r->aio, aio_done, r)) != 0) {
            s->nreqs = i; /* contexts before i are set up */
            goto fail;
        }
        arm_recv(r);
    }
    *out = s;
    return 0;

fail:
    err = trib_err_from_nng(rv);
    TRIB_ERROR("CRD-LISTEN", "%s: cannot listen on %s: %s", o->name, o->url,
               nng_strerror(rv));
    trib_nngsrv_close(s);
    return err;
}

static void free_after_close(uv_handle_t *h)
{
    struct trib_nngsrv *s = h->data;

    if (--s->open_handles == 0) {
        trib_free(s);
    }
}

void trib_nngsrv_close(struct trib_nngsrv *s)
{
    int i;

    if (s == NULL) {
        return;
    }
    s->closing = 1;
    for (i = 0; i < s->nreqs; i++) {
        nng_aio_stop(s->reqs[i].aio);
    }
    nng_close(s->sock);
    for (i = 0; i < s->nreqs; i++) {
        struct trib_nngreq *r = &s->reqs[i];

        /* A reply cancelled in flight still belongs to its aio; so does a
         * request received but not yet handed to the loop (its completion
         * was still on the ready list). */
        if ((r->state == CTX_SEND && nng_aio_result(r->aio) != 0) ||
            (r->state == CTX_RECV && nng_aio_result(r->aio) == 0)) {
            nng_msg_free(nng_aio_get_msg(r->aio));
        }
        nng_aio_free(r->aio);
    }
    while (s->gone != NULL) {
        struct pipe_note *n = s->gone;

        s->gone = n->next;
        trib_free(n);
    }
    trib_free(s->reqs);
    trib_free(s->url);
    pthread_mutex_destroy(&s->mu);
    if (s->open_handles > 1) {
        uv_close((uv_handle_t *)&s->tls_timer, free_after_close);
    }
    uv_close((uv_handle_t *)&s->wake, free_after_close);
}
