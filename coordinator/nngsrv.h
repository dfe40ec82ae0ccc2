/*
 * nngsrv -- an nng rep (request/reply) server driven from a libuv loop.
 *
 * nng completes its asynchronous operations on its own threads; this module
 * hands every completion to the loop thread (an aio callback queues the
 * context under a mutex and wakes the loop with uv_async_send, which
 * coalesces: the loop drains the whole queue; TOOLCHAIN.md). Requests are
 * served by a fixed pool of rep contexts, so up to 'contexts' requests are
 * in progress at once; each request is answered exactly once, possibly
 * later (long polls): the handler receives a request token and calls
 * trib_nngsrv_reply() now or later.
 *
 * Connections: nng reconnects dialers by itself; the server learns about a
 * peer's connection (nng "pipe") closing through the on_pipe_gone callback,
 * also on the loop thread.
 *
 * TLS: a tls+tcp:// URL listens with the TLS identity in the options
 * (the coordinator has one certificate for all its addresses;
 * common/trib_tls.h builds it).
 *
 * Ownership: the server copies the URL; request bytes passed to the
 * handler are borrowed for the callback only; reply bytes are copied.
 * Threading: every callback runs on the loop thread; the API is loop-thread
 * only.
 */
#ifndef TRIB_NNGSRV_H
#define TRIB_NNGSRV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct trib_nngsrv;
struct trib_nngreq; /* one request awaiting its reply */
struct nng_tls_config;

/* A request: 'pipe' identifies the peer's connection (stable while it
 * lives, never 0). */
typedef void (*trib_nngsrv_req_fn)(void *arg, struct trib_nngreq *req,
                                   uint32_t pipe, const void *data, size_t len);
typedef void (*trib_nngsrv_pipe_fn)(void *arg, uint32_t pipe);

struct trib_nngsrv_opts {
    const char *url;  /* e.g. "tcp://127.0.0.1:7100"                 */
    const char *name; /* for logs: "ingest", "control"              */
    int contexts;     /* concurrent requests (e.g. 64)              */
    size_t max_frame; /* NNG_OPT_RECVMAXSZ                           */
    trib_nngsrv_req_fn on_request;
    trib_nngsrv_pipe_fn on_pipe_gone; /* may be NULL */
    /* For a tls+tcp:// URL (NULL: none; such a URL then fails to start).
     * The listener takes its own reference; the caller keeps (and frees)
     * its own. */
    struct nng_tls_config *tls;
    void *arg;
};

/* Opens the socket and listens. 0, or a trib_err with the reason logged
 * (address in use, bad URL, a tls+tcp:// URL without TLS identity). */
int trib_nngsrv_start(uv_loop_t *loop, const struct trib_nngsrv_opts *o,
                      struct trib_nngsrv **out);

/* Answers a request (copies data). The token is invalid afterwards. */
void trib_nngsrv_reply(struct trib_nngreq *req, const void *data, size_t len);

/* The port actually bound (for URLs with port 0), or 0. */
int trib_nngsrv_port(const struct trib_nngsrv *s);

/* Closes the socket; pending request tokens become invalid (their
 * holders must drop them before calling this). Blocks briefly while nng's
 * threads finish; then frees. NULL ok. */
void trib_nngsrv_close(struct trib_nngsrv *s);

#endif /* TRIB_NNGSRV_H */
