/*
 * forwarder_conn.c -- the forwarder's connection (forwarder_int.h): nng's
 * aio and pipe callbacks hand their results to the loop thread through a
 * mutex-guarded queue and a uv_async (on_async drains it); the dialer
 * (TLS for a tls+tcp:// URL); start, statistics and close.
 */
#include "forwarder_int.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <inttypes.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------ nng -> loop */

static void post(struct trib_forwarder *fw, enum post_kind kind, int rv,
                 nng_msg *msg)
{
    struct post *p = TRIB_NEW(struct post);

    p->kind = kind;
    p->rv = rv;
    p->msg = msg;
    pthread_mutex_lock(&fw->mu);
    if (fw->closed) {
        pthread_mutex_unlock(&fw->mu);
        if (msg != NULL) {
            nng_msg_free(msg);
        }
        trib_free(p);
        return;
    }
    if (fw->tail != NULL) {
        fw->tail->next = p;
    } else {
        fw->head = p;
    }
    fw->tail = p;
    uv_async_send(&fw->async); /* under mu: the handle is still open */
    pthread_mutex_unlock(&fw->mu);
}

/* nng thread. */
static void aio_cb(void *arg)
{
    struct trib_forwarder *fw = arg;
    int rv = nng_aio_result(fw->aio);

    if (fw->sending) {
        if (rv == 0) {
            fw->sending = 0;
            nng_ctx_recv(fw->ctx, fw->aio);
            return;
        }
        if (nng_aio_get_msg(fw->aio) != NULL) {
            nng_msg_free(nng_aio_get_msg(fw->aio)); /* still ours */
            nng_aio_set_msg(fw->aio, NULL);
        }
        post(fw, POST_REPLY, rv, NULL);
        return;
    }
    if (rv == 0) {
        nng_msg *m = nng_aio_get_msg(fw->aio);
        nng_aio_set_msg(fw->aio, NULL);
        post(fw, POST_REPLY, 0, m);
        return;
    }
    post(fw, POST_REPLY, rv, NULL);
}

/* nng thread. */
static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    post(arg, ev == NNG_PIPE_EV_ADD_POST ? POST_PIPE_ADD : POST_PIPE_REM, 0,
         NULL);
}

/* ------------------------------------------------------ loop side */

static void on_async(uv_async_t *h)
{
    struct trib_forwarder *fw = h->data;
    struct post *p, *next;

    pthread_mutex_lock(&fw->mu);
    p = fw->head;
    fw->head = fw->tail = NULL;
    pthread_mutex_unlock(&fw->mu);
    for (; p != NULL; p = next) {
        next = p->next;
        if (fw->closing) {
            if (p->msg != NULL) {
                nng_msg_free(p->msg);
            }
        } else if (p->kind == POST_REPLY) {
            trib__fw_on_reply(fw, p->rv, p->msg);
        } else if (p->kind == POST_PIPE_ADD) {
            fw->pipes++;
            TRIB_DEBUG("AGT-FORWARD", "connected to %s", fw->o.url);
            if (fw->state == FW_IDLE && fw->inflight == REQ_NONE) {
                uv_timer_stop(&fw->backoff_timer);
                trib__fw_send_hello(fw); /* no need to wait out the backoff */
            }
        } else {
            fw->pipes -= fw->pipes > 0;
            if (fw->state != FW_IDLE) {
                trib_complain(&fw->conn_complain, TRIB_LOG_WARN, "AGT-FORWARD",
                              "connection to the coordinator at %s lost; "
                              "reconnecting (events wait in the outbox)",
                              fw->o.url);
                trib__fw_session_end(fw);
            }
        }
        trib_free(p);
    }
}

/* ---------------------------------------------------------- lifecycle */

/* The dialer, with TLS for a tls+tcp:// URL; started non-blocking. */
static int dial(struct trib_forwarder *fw)
{
    const struct trib_tls_opts *t = fw->o.tls;
    struct trib_tls_opts conf_tls;
    nng_tls_config *cfg = NULL;
    char err[512];
    int rv;

    rv = nng_dialer_create(&fw->dialer, fw->sock, fw->o.url);
    if (rv != 0) {
        TRIB_ERROR("AGT-FORWARD", "cannot dial the coordinator at %s: %s",
                   fw->o.url, nng_strerror(rv));
        return trib_err_from_nng(rv);
    }
    if (trib_tls_url(fw->o.url)) {
        if (t == NULL) {
            memset(&conf_tls, 0, sizeof(conf_tls));
            t = &conf_tls;
        }
        rv = trib_tls_config_create(TRIB_TLS_CLIENT, t, fw->o.url, &cfg, err,
                                    sizeof(err));
        if (rv != 0) {
            TRIB_ERROR("AGT-FORWARD", "%s", err);
            return rv;
        }
        fw->tls_cert = t->cert_file != NULL;
        snprintf(fw->tls_name, sizeof(fw->tls_name), "%s",
                 t->server_name != NULL ? t->server_name : "");
        rv = nng_dialer_set_ptr(fw->dialer, NNG_OPT_TLS_CONFIG, cfg);
        nng_tls_config_free(cfg); /* the dialer holds its own reference */
        if (rv != 0) {
            TRIB_ERROR("AGT-FORWARD", "cannot set up TLS for %s: %s", fw->o.url,
                       nng_strerror(rv));
            return trib_err_from_nng(rv);
        }
    }
    trib_tls_dial_stats(fw->dialer, &fw->dial_seen);
    rv = nng_dialer_start(fw->dialer, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        TRIB_ERROR("AGT-FORWARD", "cannot dial the coordinator at %s: %s",
                   fw->o.url, nng_strerror(rv));
        return trib_err_from_nng(rv);
    }
    return 0;
}

int trib_forwarder_start(const struct trib_forwarder_opts *opts,
                         struct trib_forwarder **out)
{
    struct trib_forwarder *fw = TRIB_NEW(struct trib_forwarder);
    uv_loop_t *loop = opts->loop;
    int rv;

    fw->o = *opts;
    fw->ob = opts->outbox;
    if (fw->o.timeout_ms <= 0) {
        fw->o.timeout_ms = TIMEOUT_MS;
    }
    fw->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_init(&fw->mu, NULL);
    msgpack_sbuffer_init(&fw->frame);
    msgpack_sbuffer_init(&fw->payload);
    msgpack_zone_init(&fw->zone, 1 << 16);
    if ((rv = nng_req0_open(&fw->sock)) != 0) {
        goto fail;
    }
    /* Our own timeout and session replace req's resend (a resent request
     * would reach a new connection that has not said HELLO). */
    if ((rv = nng_socket_set_ms(fw->sock, NNG_OPT_REQ_RESENDTIME,
                                NNG_DURATION_INFINITE)) != 0 ||
        (rv = nng_socket_set_size(fw->sock, NNG_OPT_RECVMAXSZ,
                                  TRIB_WIRE_FRAME_MAX)) != 0 ||
        (rv = nng_socket_set_ms(fw->sock, NNG_OPT_RECONNMINT,
                                BACKOFF_MIN_MS)) != 0 ||
        (rv = nng_socket_set_ms(fw->sock, NNG_OPT_RECONNMAXT,
                                BACKOFF_MAX_MS)) != 0 ||
        (rv = nng_ctx_open(&fw->ctx, fw->sock)) != 0 ||
        (rv = nng_aio_alloc(&fw->aio, aio_cb, fw)) != 0 ||
        (rv = nng_pipe_notify(fw->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, fw)) !=
            0 ||
        (rv = nng_pipe_notify(fw->sock, NNG_PIPE_EV_REM_POST, pipe_cb, fw)) !=
            0) {
        goto fail_sock;
    }
    uv_async_init(loop, &fw->async, on_async);
    fw->async.data = fw;
    uv_timer_init(loop, &fw->backoff_timer);
    uv_timer_init(loop, &fw->hb_timer);
    uv_timer_init(loop, &fw->drain_timer);
    uv_timer_init(loop, &fw->probe_timer);
    fw->backoff_timer.data = fw->hb_timer.data = fw;
    fw->drain_timer.data = fw->probe_timer.data = fw;
    fw->open_handles = 5;
    rv = dial(fw);
    fw->o.tls = NULL; /* borrowed for the dial only (forwarder.h) */
    if (rv != 0) {
        trib_forwarder_close(fw);
        return rv;
    }
    uv_timer_start(&fw->hb_timer, trib__fw_on_hb_timer,
                   (uint64_t)fw->o.heartbeat_ms, (uint64_t)fw->o.heartbeat_ms);
    TRIB_INFO("AGT-FORWARD",
              "forwarding events to the coordinator at %s (boot %016" PRIx64
              "%s%s)",
              opts->url, opts->boot_id,
              opts->secret ? ", shared secret set" : ", no shared secret",
              !trib_tls_url(opts->url) ? ""
              : fw->tls_cert           ? ", TLS with a client certificate"
                                       : ", TLS");
    trib__fw_send_hello(fw); /* waits in nng for the connection */
    *out = fw;
    return 0;

fail_sock:
    if (fw->aio != NULL) {
        nng_aio_free(fw->aio);
    }
    nng_close(fw->sock);
fail:
    TRIB_ERROR("AGT-FORWARD", "cannot open the coordinator socket: %s",
               nng_strerror(rv));
    msgpack_zone_destroy(&fw->zone);
    msgpack_sbuffer_destroy(&fw->frame);
    msgpack_sbuffer_destroy(&fw->payload);
    pthread_mutex_destroy(&fw->mu);
    trib_free(fw);
    return trib_err_from_nng(rv);
}

void trib_forwarder_stats(const struct trib_forwarder *fw,
                          struct trib_forwarder_stats *st)
{
    *st = fw->st;
}

static void on_closed(uv_handle_t *h)
{
    struct trib_forwarder *fw = h->data;

    if (--fw->open_handles > 0) {
        return;
    }
    msgpack_zone_destroy(&fw->zone);
    msgpack_sbuffer_destroy(&fw->frame);
    msgpack_sbuffer_destroy(&fw->payload);
    pthread_mutex_destroy(&fw->mu);
    trib_free(fw);
}

void trib_forwarder_close(struct trib_forwarder *fw)
{
    struct post *p, *next;

    if (fw == NULL || fw->closing) {
        return;
    }
    fw->closing = 1;
    if (fw->st.batches > 0 || fw->st.sessions > 0) {
        TRIB_INFO("AGT-FORWARD",
                  "forwarded %" PRIu64 " event(s) in %" PRIu64
                  " batch(es), %" PRIu64 " session(s)",
                  fw->st.events, fw->st.batches, fw->st.sessions);
    }
    /* No more posts; wait out a running callback; close nng (its pipe
     * callbacks find 'closed' set); drop what was queued. */
    pthread_mutex_lock(&fw->mu);
    fw->closed = 1;
    pthread_mutex_unlock(&fw->mu);
    nng_aio_stop(fw->aio);
    nng_ctx_close(fw->ctx);
    nng_close(fw->sock);
    nng_aio_free(fw->aio);
    for (p = fw->head; p != NULL; p = next) {
        next = p->next;
        if (p->msg != NULL) {
            nng_msg_free(p->msg);
        }
        trib_free(p);
    }
    fw->head = fw->tail = NULL;
    uv_close((uv_handle_t *)&fw->async, on_closed);
    uv_close((uv_handle_t *)&fw->backoff_timer, on_closed);
    uv_close((uv_handle_t *)&fw->hb_timer, on_closed);
    uv_close((uv_handle_t *)&fw->drain_timer, on_closed);
    uv_close((uv_handle_t *)&fw->probe_timer, on_closed);
}
