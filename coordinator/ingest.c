/*
 * ingest.c -- handshake, exactly-once apply and acknowledgements for the
 * agents' event streams.
 *
 * Reading order: sessions (one per nng pipe), replies, the handshake
 * (HELLO -> CHALLENGE, AUTH -> WELCOME), the stream (EVENT_BATCH,
 * HEARTBEAT, GOODBYE -> ACK), the request dispatcher, start/close.
 */
#include "ingest.h"
#include "nngsrv.h"
#include "trib_auth.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <inttypes.h>
#include <string.h>

enum { S_CHALLENGED, S_READY };

/* Batches held back while the store's unwritten backlog is above this:
 * memory stays bounded when agents send faster than the disk writes; the
 * agents simply wait for their ACK (one batch in flight each). */
#define BACKLOG_MAX (16u << 20)

struct deferred {
    struct trib_nngreq *req;
    uint32_t pipe;
    uint8_t *frame;
    size_t len;
    struct deferred *next;
};

struct session {
    uint32_t pipe;
    int state;
    char *agent_id;
    uint64_t boot_id;
    uint8_t nonce_a[TRIB_WIRE_NONCE];
    uint8_t nonce_c[TRIB_WIRE_NONCE];
    uint8_t *hello; /* the HELLO frame, kept until AUTH */
    size_t hello_len;
    struct session *next;
};

struct trib_ingest {
    uv_loop_t *loop;
    struct trib_nngsrv *srv;
    struct trib_view *view;
    struct trib_store *store;
    char *coordinator_id;
    char *secret;
    size_t secret_len;
    int64_t heartbeat_ms;
    void (*on_applied)(void *arg);
    void *arg;
    struct session *sessions;
    struct deferred *def_head, *def_tail;
    msgpack_zone zone;
    msgpack_sbuffer sb;
    struct trib_ingest_stats st;
    struct trib_complain bad_frame, bad_auth, no_session, gap;
};

/* ---- Sessions
 * ---------------------------------------------------------------- */

static struct session *find(struct trib_ingest *in, uint32_t pipe)
{
    struct session *s;

    for (s = in->sessions; s != NULL; s = s->next) {
        if (s->pipe == pipe) {
            return s;
        }
    }
    return NULL;
}

static void drop(struct trib_ingest *in, struct session *gone)
{
    struct session **pp;

    for (pp = &in->sessions; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == gone) {
            *pp = gone->next;
            break;
        }
    }
    if (gone->state == S_READY && in->st.sessions > 0) {
        in->st.sessions--;
    }
    trib_free(gone->agent_id);
    trib_free(gone->hello);
    trib_free(gone);
}

static void on_pipe_gone(void *arg, uint32_t pipe)
{
    struct trib_ingest *in = arg;
    struct session *s = find(in, pipe);

    if (s == NULL) {
        return;
    }
    if (s->state == S_READY) {
        TRIB_INFO("CRD-AGENT", "agent %s disconnected", s->agent_id);
        trib_view_disconnected(in->view, trib_str_c(s->agent_id),
                               trib_now_us());
    }
    drop(in, s);
}

/* ---- Replies
 * ------------------------------------------------------------------- */

static void send_sb(struct trib_ingest *in, struct trib_nngreq *req)
{
    trib_nngsrv_reply(req, in->sb.data, in->sb.size);
    msgpack_sbuffer_clear(&in->sb);
}

static void reply_error(struct trib_ingest *in, struct trib_nngreq *req,
                        int code, const char *text, uint64_t expected)
{
    struct trib_wire_error e;

    memset(&e, 0, sizeof(e));
    e.code = code;
    e.message = trib_str_c(text);
    e.expected_seq = expected;
    msgpack_sbuffer_clear(&in->sb);
    trib_wire_enc_error(&in->sb, &e);
    send_sb(in, req);
}

static void reply_ack(struct trib_ingest *in, struct trib_nngreq *req,
                      struct trib_str agent, uint64_t boot)
{
    struct trib_wire_boot_pos pos;
    struct trib_wire_ack ack;

    memset(&pos, 0, sizeof(pos));
    trib_view_boot_pos(in->view, agent, boot, &pos);
    ack.boot_id = boot;
    ack.applied = pos.applied;
    ack.durable = pos.durable;
    msgpack_sbuffer_clear(&in->sb);
    trib_wire_enc_ack(&in->sb, &ack);
    send_sb(in, req);
}

/* ---- Handshake
 * ------------------------------------------------------------------- */

static void on_hello(struct trib_ingest *in, struct trib_nngreq *req,
                     uint32_t pipe, const struct trib_wire_hello *h,
                     const void *frame, size_t len)
{
    struct trib_wire_challenge c;
    struct session *s;

    if (h->agent_id.n == 0) {
        reply_error(in, req, TRIB_EPROTO, "HELLO without an agent id", 0);
        return;
    }
    /* The session keeps the id as a C string (and the view, the log and
     * the logs use it so): an embedded NUL would make the batches count
     * under a shorter id than the HELLO. */
    if (memchr(h->agent_id.p, '\0', h->agent_id.n) != NULL) {
        in->st.frames_rejected++;
        reply_error(in, req, TRIB_EPROTO, "agent id contains a NUL byte", 0);
        return;
    }
    if ((s = find(in, pipe)) != NULL) {
        drop(in, s); /* a new handshake on the same connection */
    }
    s = TRIB_NEW(struct session);
    s->pipe = pipe;
    s->state = S_CHALLENGED;
    s->agent_id = trib_strndup(h->agent_id.p, h->agent_id.n);
    s->boot_id = h->boot_id;
    memcpy(s->nonce_a, h->nonce, TRIB_WIRE_NONCE);
    s->hello = trib_malloc(len);
    memcpy(s->hello, frame, len);
    s->hello_len = len;
    if (trib_auth_random(s->nonce_c, TRIB_WIRE_NONCE) != 0) {
        trib_free(s->agent_id);
        trib_free(s->hello);
        trib_free(s);
        reply_error(in, req, TRIB_EIO, "no randomness for a challenge", 0);
        return;
    }
    s->next = in->sessions;
    in->sessions = s;

    memset(&c, 0, sizeof(c));
    memcpy(c.nonce, s->nonce_c, TRIB_WIRE_NONCE);
    c.coordinator_id = trib_str_c(in->coordinator_id);
    c.auth_required = in->secret != NULL;
    msgpack_sbuffer_clear(&in->sb);
    trib_wire_enc_challenge(&in->sb, &c);
    send_sb(in, req);
}

static void warn_duplicate(struct trib_ingest *in, const struct session *me)
{
    const struct session *s;

    for (s = in->sessions; s != NULL; s = s->next) {
        if (s != me && s->state == S_READY &&
            strcmp(s->agent_id, me->agent_id) == 0 &&
            s->boot_id != me->boot_id) {
            TRIB_WARN("CRD-DUPID",
                      "two running agents use the node id %s "
                      "(boots %016" PRIx64 " and %016" PRIx64 "): give each "
                      "agent its own --node-id",
                      me->agent_id, s->boot_id, me->boot_id);
            return;
        }
    }
}

static void on_auth(struct trib_ingest *in, struct trib_nngreq *req,
                    uint32_t pipe, const struct trib_wire_auth *a)
{
    struct session *s = find(in, pipe);
    struct trib_wire_welcome w;
    struct trib_wire_msg m;
    uint8_t want[TRIB_WIRE_MAC];
    struct trib_str agent;

    if (s == NULL || s->state != S_CHALLENGED) {
        in->st.unauthenticated++;
        reply_error(in, req, TRIB_EAUTH, "AUTH without HELLO", 0);
        return;
    }
    agent = trib_str_c(s->agent_id);
    if (in->secret != NULL) {
        trib_auth_agent_mac(in->secret, in->secret_len, s->nonce_c, agent,
                            s->boot_id, want);
        if (!trib_auth_mac_equal(want, a->mac)) {
            in->st.auth_failures++;
            trib_complain(&in->bad_auth, TRIB_LOG_WARN, "CRD-AUTH",
                          "agent %s failed authentication: wrong or missing "
                          "shared secret (rejected; %" PRIu64 " so far)",
                          s->agent_id, in->st.auth_failures);
            drop(in, s);
            reply_error(in, req, TRIB_EAUTH,
                        "authentication failed: wrong or missing shared "
                        "secret",
                        0);
            return;
        }
    }
    /* The HELLO was checked when it arrived; decode it again for the view
     * (the zone holds this AUTH frame's objects, which we no longer need). */
    msgpack_zone_clear(&in->zone);
    if (trib_wire_decode(s->hello, s->hello_len, &in->zone, &m) != 0) {
        drop(in, s);
        reply_error(in, req, TRIB_EPROTO, "HELLO unreadable", 0);
        return;
    }
    trib_view_hello(in->view, &m.u.hello, trib_now_us());
    trib_view_forget_boots(in->view, agent, s->boot_id, m.u.hello.boots,
                           m.u.hello.nboots);
    memset(&w, 0, sizeof(w));
    if (in->secret != NULL) {
        trib_auth_coord_mac(in->secret, in->secret_len, s->nonce_a, s->nonce_c,
                            w.mac);
    }
    w.nboots = trib_view_boots(in->view, agent, w.boots, TRIB_WIRE_MAX_BOOTS);
    w.heartbeat_ms = in->heartbeat_ms;
    s->state = S_READY;
    in->st.sessions++;
    trib_free(s->hello);
    s->hello = NULL;
    TRIB_INFO("CRD-AGENT",
              "agent %s connected (boot %016" PRIx64 ", %d "
              "client(s), %d boot(s) to resume)",
              s->agent_id, s->boot_id, m.u.hello.nclients, w.nboots);
    warn_duplicate(in, s);
    msgpack_sbuffer_clear(&in->sb);
    trib_wire_enc_welcome(&in->sb, &w);
    send_sb(in, req);
}

/* ---- Stream
 * ------------------------------------------------------------------- */

static void on_batch(struct trib_ingest *in, struct trib_nngreq *req,
                     struct session *s, const struct trib_wire_batch *b,
                     const void *frame, size_t len)
{
    struct trib_apply_result r;
    struct trib_str agent = trib_str_c(s->agent_id);
    int rv;

    memset(&r, 0, sizeof(r));
    rv = trib_view_apply(in->view, agent, b, trib_now_us(), &r);
    if (rv == TRIB_ERANGE) {
        trib_complain(&in->gap, TRIB_LOG_WARN, "CRD-GAP",
                      "agent %s boot %016" PRIx64 ": batch starts at %" PRIu64
                      ", expected %" PRIu64 " (asked to resend)",
                      s->agent_id, b->boot_id, b->first_seq, r.expected_seq);
        reply_error(in, req, TRIB_ERANGE,
                    "sequence gap: resend from "
                    "expected_seq",
                    r.expected_seq);
        return;
    }
    if (rv != 0) {
        in->st.frames_rejected++;
        reply_error(in, req, rv, "EVENT_BATCH rejected", 0);
        return;
    }
    if (r.applied > 0 || r.invalid > 0) {
        if (in->store != NULL) {
            trib_store_append(in->store, agent, frame, len);
        } else {
            trib_view_set_durable(in->view, agent, b->boot_id, r.applied_seq);
        }
        if (in->on_applied != NULL) {
            in->on_applied(in->arg);
        }
    }
    reply_ack(in, req, agent, b->boot_id);
}

/* ---- Held-back batches (store backlog)
 * --------------------------------------- */

static void defer(struct trib_ingest *in, struct trib_nngreq *req,
                  uint32_t pipe, const void *frame, size_t len)
{
    struct deferred *d = TRIB_NEW(struct deferred);

    d->req = req;
    d->pipe = pipe;
    d->frame = trib_malloc(len);
    memcpy(d->frame, frame, len);
    d->len = len;
    if (in->def_tail != NULL) {
        in->def_tail->next = d;
    } else {
        in->def_head = d;
    }
    in->def_tail = d;
}

/* After each store write: apply held-back batches while the backlog is
 * below the bound, in arrival order. */
static void on_store_written(void *arg)
{
    struct trib_ingest *in = arg;
    struct trib_wire_msg m;
    struct deferred *d;
    struct session *s;

    while ((d = in->def_head) != NULL &&
           trib_store_unwritten(in->store) <= BACKLOG_MAX) {
        in->def_head = d->next;
        if (in->def_head == NULL) {
            in->def_tail = NULL;
        }
        s = find(in, d->pipe);
        msgpack_zone_clear(&in->zone);
        if (s == NULL || s->state != S_READY) {
            /* The agent reconnected meanwhile: it will resend. */
            reply_error(in, d->req, TRIB_EAUTH,
                        "not authenticated: send HELLO first", 0);
        } else if (trib_wire_decode(d->frame, d->len, &in->zone, &m) == 0) {
            on_batch(in, d->req, s, &m.u.batch, d->frame, d->len);
        } else {
            /* It decoded when it arrived; still, every request is answered
             * (an unanswered one would hold its context forever). */
            reply_error(in, d->req, TRIB_ENOMEM, "EVENT_BATCH not decoded", 0);
        }
        trib_free(d->frame);
        trib_free(d);
    }
}

/* ---- Dispatch
 * ----------------------------------------------------------------- */

static void on_request(void *arg, struct trib_nngreq *req, uint32_t pipe,
                       const void *data, size_t len)
{
    struct trib_ingest *in = arg;
    struct trib_wire_msg m;
    struct session *s;
    int rv;

    in->st.frames++;
    msgpack_zone_clear(&in->zone);
    rv = trib_wire_decode(data, len, &in->zone, &m);
    if (rv != 0) {
        in->st.frames_rejected++;
        trib_complain(&in->bad_frame, TRIB_LOG_WARN, "CRD-FRAME",
                      "rejected a %zu-byte frame: %s (%" PRIu64 " rejected "
                      "so far)",
                      len, trib_strerror(rv), in->st.frames_rejected);
        reply_error(
            in, req, rv,
            rv == TRIB_ENOTSUP ? "unknown message type" : "malformed frame", 0);
        return;
    }
    switch (m.type) {
    case TRIB_MSG_HELLO:
        on_hello(in, req, pipe, &m.u.hello, data, len);
        return;
    case TRIB_MSG_AUTH:
        on_auth(in, req, pipe, &m.u.auth);
        return;
    case TRIB_MSG_EVENT_BATCH:
    case TRIB_MSG_HEARTBEAT:
    case TRIB_MSG_GOODBYE:
        break;
    default:
        in->st.frames_rejected++;
        reply_error(in, req, TRIB_ENOTSUP,
                    "message type not served on the agent address", 0);
        return;
    }
    s = find(in, pipe);
    if (s == NULL || s->state != S_READY) {
        in->st.unauthenticated++;
        trib_complain(&in->no_session, TRIB_LOG_WARN, "CRD-NOAUTH",
                      "%s before a completed handshake: rejected",
                      trib_wire_type_name(m.type));
        reply_error(in, req, TRIB_EAUTH, "not authenticated: send HELLO first",
                    0);
        return;
    }
    switch (m.type) {
    case TRIB_MSG_EVENT_BATCH:
        if (in->def_head != NULL ||
            (in->store != NULL &&
             trib_store_unwritten(in->store) > BACKLOG_MAX)) {
            defer(in, req, pipe, data, len);
            break;
        }
        on_batch(in, req, s, &m.u.batch, data, len);
        break;
    case TRIB_MSG_HEARTBEAT:
        trib_view_heartbeat(in->view, trib_str_c(s->agent_id), &m.u.heartbeat,
                            trib_now_us());
        reply_ack(in, req, trib_str_c(s->agent_id), m.u.heartbeat.boot_id);
        break;
    default: /* GOODBYE */
        TRIB_INFO("CRD-AGENT", "agent %s is stopping: %.*s", s->agent_id,
                  (int)m.u.goodbye.reason.n, m.u.goodbye.reason.p);
        trib_view_goodbye(in->view, trib_str_c(s->agent_id), trib_now_us());
        reply_ack(in, req, trib_str_c(s->agent_id), m.u.goodbye.boot_id);
        break;
    }
}

/* ---- Start / close
 * --------------------------------------------------------------- */

int trib_ingest_start(uv_loop_t *loop, const struct trib_ingest_opts *o,
                      struct trib_view *v, struct trib_store *store,
                      struct trib_ingest **out)
{
    struct trib_ingest *in = TRIB_NEW(struct trib_ingest);
    struct trib_nngsrv_opts so;
    int rv;

    in->loop = loop;
    in->view = v;
    in->store = store;
    in->coordinator_id = trib_strdup(o->coordinator_id);
    if (o->secret != NULL) {
        in->secret = trib_malloc(o->secret_len);
        memcpy(in->secret, o->secret, o->secret_len);
        in->secret_len = o->secret_len;
    }
    in->heartbeat_ms = o->heartbeat_ms;
    in->on_applied = o->on_applied;
    in->arg = o->arg;
    msgpack_zone_init(&in->zone, 1 << 22); /* a whole batch without malloc */
    msgpack_sbuffer_init(&in->sb);

    memset(&so, 0, sizeof(so));
    so.url = o->url;
    so.name = "ingest";
    so.contexts = o->contexts > 0 ? o->contexts : 256;
    /* Twice the frame cap: frames up to that size arrive and are rejected
     * (and counted) by the decoder with the connection kept; beyond it nng
     * drops the connection without reading the frame (the memory bound). */
    so.max_frame = 2 * (size_t)TRIB_WIRE_FRAME_MAX;
    so.on_request = on_request;
    so.on_pipe_gone = on_pipe_gone;
    so.tls = o->tls;
    so.arg = in;
    if ((rv = trib_nngsrv_start(loop, &so, &in->srv)) != 0) {
        in->srv = NULL;
        trib_ingest_close(in);
        return rv;
    }
    if (store != NULL) {
        trib_store_on_written(store, on_store_written, in);
    }
    *out = in;
    return 0;
}

int trib_ingest_port(const struct trib_ingest *in)
{
    return trib_nngsrv_port(in->srv);
}

void trib_ingest_stats(const struct trib_ingest *in,
                       struct trib_ingest_stats *st)
{
    *st = in->st;
}

void trib_ingest_close(struct trib_ingest *in)
{
    if (in == NULL) {
        return;
    }
    if (in->store != NULL) {
        trib_store_on_written(in->store, NULL, NULL);
    }
    trib_nngsrv_close(in->srv);
    while (in->def_head != NULL) {
        struct deferred *d = in->def_head;

        in->def_head = d->next;
        trib_free(d->frame);
        trib_free(d);
    }
    while (in->sessions != NULL) {
        drop(in, in->sessions);
    }
    msgpack_zone_destroy(&in->zone);
    msgpack_sbuffer_destroy(&in->sb);
    if (in->secret != NULL) {
        memset(in->secret, 0, in->secret_len);
    }
    trib_free(in->secret);
    trib_free(in->coordinator_id);
    trib_free(in);
}
