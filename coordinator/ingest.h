/*
 * ingest -- the agents' side of the coordinator: one nng rep socket on
 * --listen, the handshake (HELLO / CHALLENGE / AUTH / WELCOME with the
 * shared secret, proto/trib_auth.h), and the event stream: every
 * EVENT_BATCH is applied to the view exactly once (view.h), appended to
 * the store's log (when persistent), and answered with ACK {applied,
 * durable}.
 *
 * Sessions are per nng pipe (one agent connection): a frame from a pipe
 * that has not completed the handshake gets ERROR EAUTH; a malformed,
 * oversized or unknown frame gets ERROR and is counted; the connection
 * stays up either way.
 *
 * Ownership: borrows the view and the store (may be NULL: memory only,
 * "durable" = applied); copies the secret.
 * Threading: loop thread only.
 */
#ifndef TRIB_INGEST_H
#define TRIB_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"
#include "view.h"

struct nng_tls_config;

struct trib_ingest;

struct trib_ingest_opts {
    const char *url;
    const char *coordinator_id;
    const char *secret; /* NULL: authentication off (logged at start) */
    size_t secret_len;
    int64_t heartbeat_ms;
    int contexts; /* concurrent requests (256): one per agent is enough */
    struct nng_tls_config *tls; /* for a tls+tcp:// URL; borrowed */
    /* Called after every applied batch (the control side wakes waiters). */
    void (*on_applied)(void *arg);
    void *arg;
};

struct trib_ingest_stats {
    uint64_t frames;          /* frames received                       */
    uint64_t frames_rejected; /* malformed, oversized, unknown type    */
    uint64_t auth_failures;   /* wrong or missing secret               */
    uint64_t unauthenticated; /* frames before a completed handshake   */
    uint64_t sessions;        /* connections currently authenticated   */
};

int trib_ingest_start(uv_loop_t *loop, const struct trib_ingest_opts *o,
                      struct trib_view *v, struct trib_store *store,
                      struct trib_ingest **out);
int trib_ingest_port(const struct trib_ingest *in);
void trib_ingest_stats(const struct trib_ingest *in,
                       struct trib_ingest_stats *st);
void trib_ingest_close(struct trib_ingest *in); /* NULL ok */

#endif /* TRIB_INGEST_H */
