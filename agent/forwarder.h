/*
 * forwarder -- sends the agent's events from its outbox to the coordinator
 * over nng req/rep, at least once and in order (proto/trib_wire.h has the
 * messages, proto/trib_auth.h the handshake).
 *
 * Conversation (one request outstanding at a time):
 *
 *   HELLO {agent, boot, host, clients, nonce_a, boots held, ...}
 *     -> CHALLENGE {nonce_c, auth_required}
 *   AUTH {mac_a}
 *     -> WELCOME {mac_c, positions of this agent's boots}   | ERROR
 *   EVENT_BATCH {boot, first_seq, events}  -> ACK {applied, durable}
 *                                          | ERROR {expected_seq}: rewind
 *   HEARTBEAT {resource sample}            -> ACK (the current boot)
 *   GOODBYE                                -> ACK (clean stop)
 *
 * Streaming: older boots' tails first, then the current boot; each batch
 * holds every event available (up to TRIB_WIRE_BATCH_MAX events and
 * TRIB_WIRE_BATCH_BYTES bytes) and goes out the moment the previous reply
 * arrives. ACK moves the outbox's 'applied' (stop resending) and
 * 'durable' (delete). A request timeout, a lost connection or an ERROR
 * ends the session: HELLO again after a backoff (100 ms doubling to 5 s),
 * and the WELCOME's positions say where to resume.
 *
 * With a secret, the coordinator must prove it knows it (WELCOME's mac);
 * one that cannot is refused and logged, as is an agent the coordinator
 * refuses (rate-limited). Events wait in the outbox meanwhile.
 *
 * The nng side: a req0 socket whose dialer starts with NNG_FLAG_NONBLOCK
 * (nng reconnects by itself, 100 ms .. 5 s); a tls+tcp:// URL gets a TLS
 * client config first (common/trib_tls.h). nng retries a failed TLS
 * handshake in silence, so when HELLO times out without a connection the
 * dialer's counters say why (certificate not trusted, client certificate
 * required, connection refused), logged rate-limited; one context and one aio
 * whose callback (an nng thread) queues the result under a mutex and wakes the
 * loop with uv_async_send; the loop drains the whole queue. Pipe
 * add/remove notifications take the same path.
 *
 * Threading: every function is for the loop thread.
 * Ownership: the forwarder borrows the outbox and everything the options
 * point to (they must outlive it) and copies nothing else.
 */
#ifndef TRIB_AGENT_FORWARDER_H
#define TRIB_AGENT_FORWARDER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "events.h"
#include "outbox.h"
#include "trib_wire.h"

struct trib_forwarder;
struct trib_tls_opts;

struct trib_forwarder_opts {
    uv_loop_t *loop;
    struct trib_outbox *outbox;
    const char *url;      /* the coordinator's nng URL                 */
    const char *agent_id; /* node id                                   */
    uint64_t boot_id;     /* the outbox's current boot                 */
    int64_t started_at;   /* us since epoch                            */
    const char *host, *version;
    const void *secret; /* NULL: none                                   */
    size_t secret_len;
    /* TLS for a tls+tcp:// URL (CA required); read by
     * trib_forwarder_start() only. NULL: no files (the dial then fails
     * with the reason: a tls+tcp:// URL needs a CA). */
    const struct trib_tls_opts *tls;
    const struct trib_wire_client *clients; /* for HELLO               */
    int nclients;
    int64_t heartbeat_ms;
    int64_t timeout_ms; /* per request; 0: 5000                        */
    /* Fills a heartbeat's db_conns and clients (the forwarder fills the
     * rest). May be NULL. */
    void (*sample)(void *arg, struct trib_wire_heartbeat *hb);
    void *arg;
};

struct trib_forwarder_stats {
    int connected;          /* a session is established                */
    uint64_t sessions;      /* WELCOMEs received                       */
    uint64_t batches;       /* EVENT_BATCHes acknowledged              */
    uint64_t events;        /* events in them                          */
    uint64_t rewinds;       /* ERROR expected_seq honoured             */
    uint64_t auth_failures; /* refused by, or refusing, the coordinator */
    uint64_t heartbeats;
};

/* Creates the socket and starts dialling (non-blocking) and the
 * handshake. 0 or a trib_err (a malformed URL: TRIB_EINVAL; unusable TLS
 * files: TRIB_ECONFIG; logged). */
int trib_forwarder_start(const struct trib_forwarder_opts *opts,
                         struct trib_forwarder **out);

/*
 * The event-bus subscriber (a trib_event_fn; 'fw' is the forwarder):
 * encodes each event into the outbox, writes the batch with one write,
 * and sends at once if the connection is idle. Events are never dropped:
 * if the write fails they wait in memory (outbox.h).
 */
void trib_forwarder_on_events(void *fw, const struct trib_event *evs, size_t n);

/*
 * Clean stop, after the last events were published: keeps forwarding
 * until every event held is durable on the coordinator or timeout_ms
 * passes, sends GOODBYE (when connected), then calls done(arg). Events
 * not acknowledged stay in the outbox for the next start.
 */
void trib_forwarder_drain(struct trib_forwarder *fw, uint64_t timeout_ms,
                          void (*done)(void *arg), void *arg);

void trib_forwarder_stats(const struct trib_forwarder *fw,
                          struct trib_forwarder_stats *st);

/* Stops the aio, closes the socket and the handles; freed once they are
 * closed (the loop must run). NULL ok. Does not close the outbox. */
void trib_forwarder_close(struct trib_forwarder *fw);

/* PostgreSQL array text ("{a,\"b c\"}") -> up to max tags, unescaped into
 * scratch (cap bytes); returns the count. Library-private (tests). */
int trib__forwarder_tags(const char *text, char *scratch, size_t cap,
                         struct trib_str *tags, int max);

#endif /* TRIB_AGENT_FORWARDER_H */
