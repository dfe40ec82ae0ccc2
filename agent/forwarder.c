/*
 * forwarder.c -- the agent's side of the coordinator protocol (see
 * forwarder.h for the conversation, outbox.h for what is stored).
 *
 * One request is outstanding at a time on one nng context. The aio
 * callback runs on an nng thread: after a successful send it starts the
 * receive itself; every final result (reply, error, timeout) is queued
 * for the loop thread (uv_async_send, whole queue drained per wake-up;
 * forwarder_conn.c, with the dialer, start and close). Everything here
 * -- the session state, the outbox, the timers -- belongs to the loop
 * thread.
 *
 * Session states: IDLE (no session; HELLO after the backoff timer) ->
 * HELLO (sent) -> AUTH (sent) -> READY (streaming). pump() decides the
 * next request whenever none is outstanding: a due heartbeat, else the
 * next batch, else a position probe (an empty batch: its ACK says how far
 * an old boot is durable), else GOODBYE when draining is over.
 */
#include "forwarder_int.h"
#include "trib_auth.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "trib_tls.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void pump(struct trib_forwarder *fw);

/* ---------------------------------------------------------- sending */

static void send_frame(struct trib_forwarder *fw, enum fw_req kind,
                       int64_t timeout_ms)
{
    nng_msg *m;

    if (nng_msg_alloc(&m, 0) != 0 ||
        nng_msg_append(m, fw->frame.data, fw->frame.size) != 0) {
        abort(); /* out of memory: trib_mem.h policy */
    }
    fw->inflight = kind;
    fw->sending = 1;
    nng_aio_set_msg(fw->aio, m);
    nng_aio_set_timeout(fw->aio, (nng_duration)timeout_ms);
    nng_ctx_send(fw->ctx, fw->aio);
}

void trib__fw_send_hello(struct trib_forwarder *fw)
{
    struct trib_wire_hello *h = TRIB_NEW(struct trib_wire_hello);
    struct trib_outbox_boot boots[TRIB_WIRE_MAX_BOOTS];
    int i, n;

    if (trib_auth_random(fw->nonce_a, sizeof(fw->nonce_a)) != 0) {
        TRIB_ERROR("AGT-FORWARD", "no random bytes for the handshake nonce");
    }
    h->agent_id = trib_str_c(fw->o.agent_id);
    h->boot_id = fw->o.boot_id;
    h->host = trib_str_c(fw->o.host);
    h->version = trib_str_c(fw->o.version);
    h->pid = (int64_t)getpid();
    h->caps[0] = trib_str_c("events.v1");
    h->caps[1] = trib_str_c("heartbeat.v1");
    h->ncaps = 2;
    n = fw->o.nclients < TRIB_WIRE_MAX_CLIENTS ? fw->o.nclients
                                               : TRIB_WIRE_MAX_CLIENTS;
    for (i = 0; i < n; i++) {
        h->clients[i] = fw->o.clients[i];
    }
    h->nclients = n;
    memcpy(h->nonce, fw->nonce_a, sizeof(h->nonce));
    n = trib_outbox_boots(fw->ob, boots, TRIB_WIRE_MAX_BOOTS);
    h->nboots = 0;
    for (i = 0; i < n; i++) {
        if (!boots[i].current) { /* older boots still held */
            h->boots[h->nboots++] = boots[i].boot_id;
        }
    }
    h->started_at = fw->o.started_at;
    h->heartbeat_ms = fw->o.heartbeat_ms;
    msgpack_sbuffer_clear(&fw->frame);
    trib_wire_enc_hello(&fw->frame, h);
    trib_free(h);
    fw->state = FW_HELLO;
    send_frame(fw, REQ_HELLO, fw->o.timeout_ms);
}

/* Fills process figures: CPU from getrusage, RSS and threads from
 * /proc/self/status. */
static void sample_process(struct trib_wire_heartbeat *hb)
{
    struct rusage ru;
    char line[256];
    FILE *f;

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        hb->cpu_user_us =
            (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
        hb->cpu_sys_us =
            (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    }
    f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        long long v;
        if (sscanf(line, "VmRSS: %lld kB", &v) == 1) {
            hb->rss_bytes = v * 1024;
        } else if (sscanf(line, "Threads: %lld", &v) == 1) {
            hb->threads = v;
        }
    }
    fclose(f);
}

static void send_heartbeat(struct trib_forwarder *fw)
{
    struct trib_wire_heartbeat *hb = &fw->hb;
    struct trib_outbox_stats st;
    struct trib_outbox_boot boots[TRIB_WIRE_MAX_BOOTS];
    int n;

    memset(hb, 0, sizeof(*hb));
    hb->boot_id = fw->o.boot_id;
    hb->at = trib_now_us();
    sample_process(hb);
    trib_outbox_stats(fw->ob, &st);
    hb->outbox_events = (int64_t)st.events;
    hb->outbox_bytes = (int64_t)st.bytes;
    n = trib_outbox_boots(fw->ob, boots, TRIB_WIRE_MAX_BOOTS);
    hb->last_seq = n > 0 ? boots[n - 1].last_seq : 0; /* current: last */
    if (fw->o.sample != NULL) {
        fw->o.sample(fw->o.arg, hb);
    }
    msgpack_sbuffer_clear(&fw->frame);
    trib_wire_enc_heartbeat(&fw->frame, hb);
    send_frame(fw, REQ_HEARTBEAT, fw->o.timeout_ms);
}

/* An EVENT_BATCH of boot b from 'first' (n = 0: a position probe). */
static int send_batch(struct trib_forwarder *fw,
                      const struct trib_outbox_boot *b, int probe)
{
    uint64_t first = b->applied + 1;
    size_t n = 0;
    int rv;

    msgpack_sbuffer_clear(&fw->payload);
    if (!probe) {
        rv = trib_outbox_read(fw->ob, b->boot_id, first, TRIB_WIRE_BATCH_MAX,
                              TRIB_WIRE_BATCH_BYTES, &fw->payload, &n);
        if (rv != 0 || n == 0) {
            return rv != 0 ? rv : TRIB_ENOENT;
        }
    }
    msgpack_sbuffer_clear(&fw->frame);
    trib_wire_enc_batch_head(&fw->frame, b->boot_id, first, (uint32_t)n);
    msgpack_sbuffer_write(&fw->frame, fw->payload.data, fw->payload.size);
    fw->batch_boot = b->boot_id;
    fw->batch_first = first;
    fw->batch_n = n;
    send_frame(fw, REQ_BATCH, fw->o.timeout_ms);
    return 0;
}

static void send_goodbye(struct trib_forwarder *fw)
{
    struct trib_wire_goodbye g;

    g.boot_id = fw->o.boot_id;
    g.reason = trib_str_c("agent stopping");
    msgpack_sbuffer_clear(&fw->frame);
    trib_wire_enc_goodbye(&fw->frame, &g);
    send_frame(fw, REQ_GOODBYE, GOODBYE_MS);
}

/* ----------------------------------------------------------- draining */

static void finish_drain(struct trib_forwarder *fw)
{
    void (*done)(void *) = fw->drain_done;

    if (!fw->draining) {
        return;
    }
    fw->draining = 0;
    fw->drain_over = 1;
    fw->drain_done = NULL;
    uv_timer_stop(&fw->drain_timer);
    uv_timer_stop(&fw->probe_timer);
    if (done != NULL) {
        done(fw->drain_arg);
    }
}

static int all_durable(struct trib_forwarder *fw)
{
    struct trib_outbox_stats st;

    trib_outbox_stats(fw->ob, &st);
    return st.events == 0;
}

/* -------------------------------------------------------------- pump */

/* Sends the next request if none is outstanding. */
static void pump(struct trib_forwarder *fw)
{
    struct trib_outbox_boot boots[TRIB_WIRE_MAX_BOOTS];
    int i, n;

    if (fw->inflight != REQ_NONE || fw->closing) {
        return;
    }
    if (fw->draining && (fw->drain_over || all_durable(fw))) {
        fw->drain_over = 1;
        if (fw->state == FW_READY) {
            send_goodbye(fw);
        } else {
            finish_drain(fw);
        }
        return;
    }
    if (fw->state != FW_READY) {
        return;
    }
    if (fw->hb_due) {
        fw->hb_due = 0;
        send_heartbeat(fw);
        return;
    }
    if (fw->holding) {
        return;
    }
    n = trib_outbox_boots(fw->ob, boots, TRIB_WIRE_MAX_BOOTS);
    for (i = 0; i < n; i++) {
        if (boots[i].applied < boots[i].last_seq &&
            !(boots[i].boot_id == fw->bad_boot &&
              uv_now(fw->o.loop) < fw->bad_until)) {
            if (send_batch(fw, &boots[i], 0) == 0) {
                return;
            }
            /* Unreadable (logged by the outbox): the other boots go on;
             * this one is tried again later. */
            fw->bad_boot = boots[i].boot_id;
            fw->bad_until = uv_now(fw->o.loop) + BACKOFF_MAX_MS;
        }
    }
    if (fw->probe_due) {
        fw->probe_due = 0;
        for (i = 0; i < n; i++) {
            if (boots[i].durable < boots[i].last_seq) {
                send_batch(fw, &boots[i], 1);
                return;
            }
        }
    }
}

/* ----------------------------------------------------------- session */

static void on_backoff(uv_timer_t *t)
{
    struct trib_forwarder *fw = t->data;

    if (fw->holding) {
        fw->holding = 0;
        pump(fw);
    } else if (fw->state == FW_IDLE && fw->inflight == REQ_NONE &&
               !fw->closing) {
        trib__fw_send_hello(fw);
    }
}

/* The session stays, but no batch goes out before the backoff passed
 * (the coordinator refused one for a reason that may pass). */
static void hold(struct trib_forwarder *fw)
{
    fw->holding = 1;
    uv_timer_start(&fw->backoff_timer, on_backoff, fw->backoff_ms, 0);
    fw->backoff_ms = fw->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                         : fw->backoff_ms * 2;
}

/* Ends the session; HELLO again after the backoff. */
void trib__fw_session_end(struct trib_forwarder *fw)
{
    if (fw->state == FW_READY) {
        fw->st.connected = 0;
    }
    fw->state = FW_IDLE;
    fw->holding = 0;
    if (fw->inflight != REQ_NONE) {
        fw->restart = 1;
        nng_aio_cancel(fw->aio); /* its completion comes back here */
        return;
    }
    if (fw->draining && fw->drain_over) {
        finish_drain(fw);
        return;
    }
    if (!fw->closing) {
        uv_timer_start(&fw->backoff_timer, on_backoff, fw->backoff_ms, 0);
        fw->backoff_ms = fw->backoff_ms * 2 > BACKOFF_MAX_MS
                             ? BACKOFF_MAX_MS
                             : fw->backoff_ms * 2;
    }
}

static void on_challenge(struct trib_forwarder *fw,
                         const struct trib_wire_msg *m)
{
    struct trib_wire_auth a;
    size_t n;

    if (m->type == TRIB_MSG_ERROR) {
        fw->st.auth_failures++;
        trib_complain(&fw->auth_complain, TRIB_LOG_ERROR, "AGT-AUTH",
                      "coordinator at %s refused HELLO: %.*s (%s); retrying",
                      fw->o.url, (int)m->u.error.message.n,
                      m->u.error.message.p ? m->u.error.message.p : "",
                      trib_errname(m->u.error.code));
        trib__fw_session_end(fw);
        return;
    }
    memcpy(fw->nonce_c, m->u.challenge.nonce, TRIB_WIRE_NONCE);
    n = m->u.challenge.coordinator_id.n;
    n = n > TRIB_WIRE_STR_MAX ? TRIB_WIRE_STR_MAX : n;
    if (n > 0) {
        memcpy(fw->coord_id, m->u.challenge.coordinator_id.p, n);
    }
    fw->coord_id[n] = '\0';
    if (fw->o.secret != NULL && !m->u.challenge.auth_required) {
        /* PROTOCOL.md: an impostor could collect events by claiming not
         * to need a secret. */
        fw->st.auth_failures++;
        trib_complain(&fw->auth_complain, TRIB_LOG_ERROR, "AGT-AUTH",
                      "coordinator %s at %s does not ask for the shared "
                      "secret this agent has: refusing it (events wait in "
                      "the outbox)",
                      fw->coord_id, fw->o.url);
        trib__fw_session_end(fw);
        return;
    }
    if (fw->o.secret == NULL && m->u.challenge.auth_required) {
        fw->st.auth_failures++;
        trib_complain(&fw->auth_complain, TRIB_LOG_ERROR, "AGT-AUTH",
                      "coordinator %s at %s requires a shared secret: set "
                      "TRIBUTARY_SECRET or --secret-file (events wait in "
                      "the outbox)",
                      fw->coord_id, fw->o.url);
        trib__fw_session_end(fw);
        return;
    }
    memset(&a, 0, sizeof(a));
    if (fw->o.secret != NULL) {
        trib_auth_agent_mac(fw->o.secret, fw->o.secret_len, fw->nonce_c,
                            trib_str_c(fw->o.agent_id), fw->o.boot_id, a.mac);
    }
    msgpack_sbuffer_clear(&fw->frame);
    trib_wire_enc_auth(&fw->frame, &a);
    fw->state = FW_AUTH;
    send_frame(fw, REQ_AUTH, fw->o.timeout_ms);
}

static void on_welcome(struct trib_forwarder *fw, const struct trib_wire_msg *m)
{
    const struct trib_wire_welcome *w = &m->u.welcome;
    struct trib_outbox_boot boots[TRIB_WIRE_MAX_BOOTS];
    struct trib_outbox_stats st;
    uint8_t mac[TRIB_WIRE_MAC];
    int i, k, n;

    if (m->type == TRIB_MSG_ERROR) {
        fw->st.auth_failures++;
        trib_complain(&fw->auth_complain, TRIB_LOG_ERROR, "AGT-AUTH",
                      "coordinator %s at %s refused this agent: %.*s (%s): "
                      "check that both use the same shared secret; events "
                      "wait in the outbox",
                      fw->coord_id, fw->o.url, (int)m->u.error.message.n,
                      m->u.error.message.p ? m->u.error.message.p : "",
                      trib_errname(m->u.error.code));
        trib__fw_session_end(fw);
        return;
    }
    if (fw->o.secret != NULL) {
        trib_auth_coord_mac(fw->o.secret, fw->o.secret_len, fw->nonce_a,
                            fw->nonce_c, mac);
        if (!trib_auth_mac_equal(mac, w->mac)) {
            fw->st.auth_failures++;
            trib_complain(&fw->auth_complain, TRIB_LOG_ERROR, "AGT-AUTH",
                          "coordinator %s at %s could not prove it knows the "
                          "shared secret: refusing it (events wait in the "
                          "outbox)",
                          fw->coord_id, fw->o.url);
            trib__fw_session_end(fw);
            return;
        }
    }
    /* Resume where the coordinator is: boots it does not know are sent
     * from the first event held. */
    n = trib_outbox_boots(fw->ob, boots, TRIB_WIRE_MAX_BOOTS);
    for (i = 0; i < n; i++) {
        uint64_t applied = 0, durable = 0;
        for (k = 0; k < w->nboots; k++) {
            if (w->boots[k].boot_id == boots[i].boot_id) {
                applied = w->boots[k].applied;
                durable = w->boots[k].durable;
            }
        }
        trib_outbox_set_position(fw->ob, boots[i].boot_id, applied, durable);
    }
    if (w->heartbeat_ms >= 100 && w->heartbeat_ms <= 60000 &&
        w->heartbeat_ms != fw->o.heartbeat_ms) {
        fw->o.heartbeat_ms = w->heartbeat_ms; /* the coordinator's pace */
        uv_timer_start(&fw->hb_timer, trib__fw_on_hb_timer,
                       (uint64_t)fw->o.heartbeat_ms,
                       (uint64_t)fw->o.heartbeat_ms);
    }
    fw->state = FW_READY;
    fw->holding = 0;
    fw->backoff_ms = BACKOFF_MIN_MS;
    fw->st.connected = 1;
    fw->st.sessions++;
    fw->hb_due = 1; /* tell it how we are right away */
    trib_outbox_stats(fw->ob, &st);
    trib_complain_release(&fw->auth_complain, "AGT-AUTH",
                          "coordinator %s accepted this agent", fw->coord_id);
    trib_complain_release(&fw->conn_complain, "AGT-FORWARD",
                          "coordinator %s at %s reachable again", fw->coord_id,
                          fw->o.url);
    TRIB_INFO("AGT-FORWARD",
              "connected to coordinator %s at %s%s: %" PRIu64
              " event(s) of %d boot(s) not yet durable",
              fw->coord_id, fw->o.url,
              fw->o.secret != NULL ? " (authenticated)" : "", st.events,
              st.nboots);
}

/* ACK or ERROR for an EVENT_BATCH (or a probe). */
static void on_batch_reply(struct trib_forwarder *fw,
                           const struct trib_wire_msg *m)
{
    struct trib_outbox_boot boots[TRIB_WIRE_MAX_BOOTS];
    int i, n;

    if (m->type == TRIB_MSG_ACK) {
        if (m->u.ack.boot_id != fw->batch_boot) {
            trib_complain(&fw->proto_complain, TRIB_LOG_WARN, "AGT-FORWARD",
                          "coordinator %s acknowledged boot %016" PRIx64
                          " for a batch of boot %016" PRIx64 ": ignored",
                          fw->coord_id, m->u.ack.boot_id, fw->batch_boot);
            return;
        }
        trib_outbox_ack(fw->ob, fw->batch_boot, m->u.ack.applied,
                        m->u.ack.durable);
        if (fw->batch_n > 0) {
            fw->st.batches++;
            fw->st.events += fw->batch_n;
        }
        return;
    }
    if (m->u.error.expected_seq == 0) {
        trib_complain(&fw->proto_complain, TRIB_LOG_ERROR, "AGT-FORWARD",
                      "coordinator %s refused a batch of boot %016" PRIx64
                      " (events %" PRIu64 "..): %.*s (%s); %s",
                      fw->coord_id, fw->batch_boot, fw->batch_first,
                      (int)m->u.error.message.n,
                      m->u.error.message.p ? m->u.error.message.p : "",
                      trib_errname(m->u.error.code),
                      m->u.error.code == TRIB_EAUTH ? "reconnecting"
                                                    : "retrying later");
        if (m->u.error.code == TRIB_EAUTH) {
            trib__fw_session_end(fw); /* the session is gone: HELLO again */
        } else {
            hold(fw); /* the session stays up (PROTOCOL.md) */
        }
        return;
    }
    /* A gap (or a coordinator that lost what it had applied): rewind. */
    n = trib_outbox_boots(fw->ob, boots, TRIB_WIRE_MAX_BOOTS);
    for (i = 0; i < n && boots[i].boot_id != fw->batch_boot; i++) {
    }
    if (i == n || m->u.error.expected_seq < boots[i].first_seq ||
        m->u.error.expected_seq <= boots[i].durable ||
        m->u.error.expected_seq > boots[i].last_seq + 1) {
        trib_complain(
            &fw->proto_complain, TRIB_LOG_ERROR, "AGT-FORWARD",
            "coordinator %s expects event %" PRIu64 " of boot %016" PRIx64
            " but the outbox holds %" PRIu64 "..%" PRIu64
            ", durable up to %" PRIu64 " as it said before; reconnecting",
            fw->coord_id, m->u.error.expected_seq, fw->batch_boot,
            i < n ? boots[i].first_seq : 0, i < n ? boots[i].last_seq : 0,
            i < n ? boots[i].durable : 0);
        trib__fw_session_end(fw);
        return;
    }
    TRIB_DEBUG("AGT-FORWARD",
               "coordinator %s expects event %" PRIu64 " of boot %016" PRIx64
               ": resending from there",
               fw->coord_id, m->u.error.expected_seq, fw->batch_boot);
    fw->st.rewinds++;
    trib_outbox_set_position(fw->ob, fw->batch_boot,
                             m->u.error.expected_seq - 1, 0);
}

/* A request failed: says why, from the dialer's counters when there is
 * no connection (a TLS handshake that fails is otherwise silent). */
static void no_answer(struct trib_forwarder *fw, enum fw_req req, int rv)
{
    struct trib_tls_dial_stats now;
    char why[600];

    if (fw->pipes == 0) {
        trib_tls_dial_stats(fw->dialer, &now);
        if (trib_tls_dial_explain(&fw->dial_seen, &now, fw->o.url,
                                  fw->tls_name[0] ? fw->tls_name : NULL,
                                  fw->tls_cert, 0, why, sizeof(why))) {
            fw->dial_seen = now;
            trib_complain(&fw->conn_complain, TRIB_LOG_WARN, "AGT-FORWARD",
                          "cannot connect to the coordinator: %s; retrying "
                          "(events wait in the outbox)",
                          why);
            return;
        }
        fw->dial_seen = now;
    }
    trib_complain(&fw->conn_complain, TRIB_LOG_WARN, "AGT-FORWARD",
                  "no answer from the coordinator at %s%s: %s; retrying "
                  "(events wait in the outbox)",
                  fw->o.url,
                  req == REQ_HELLO && fw->pipes == 0 ? " (no connection)" : "",
                  nng_strerror(rv));
}

void trib__fw_on_reply(struct trib_forwarder *fw, int rv, nng_msg *msg)
{
    enum fw_req req = fw->inflight;
    struct trib_wire_msg m;
    int drv;

    fw->inflight = REQ_NONE;
    if (fw->restart) {
        /* the session was ended while this request was out */
        fw->restart = 0;
        if (msg != NULL) {
            nng_msg_free(msg);
        }
        trib__fw_session_end(fw);
        return;
    }
    if (rv != 0) {
        if (req == REQ_GOODBYE) {
            finish_drain(fw);
            return;
        }
        if (rv == NNG_ECANCELED && fw->drain_over && fw->state == FW_READY) {
            pump(fw); /* cancelled by the drain timeout: GOODBYE now */
            return;
        }
        no_answer(fw, req, rv);
        trib__fw_session_end(fw);
        return;
    }
    drv = trib_wire_decode(nng_msg_body(msg), nng_msg_len(msg), &fw->zone, &m);
    if (drv == 0 &&
        !(m.type == TRIB_MSG_ERROR ||
          (req == REQ_HELLO && m.type == TRIB_MSG_CHALLENGE) ||
          (req == REQ_AUTH && m.type == TRIB_MSG_WELCOME) ||
          (req != REQ_HELLO && req != REQ_AUTH && m.type == TRIB_MSG_ACK))) {
        drv = TRIB_EPROTO;
    }
    if (drv != 0) {
        trib_complain(&fw->proto_complain, TRIB_LOG_ERROR, "AGT-FORWARD",
                      "unexpected reply from the coordinator at %s (%s): "
                      "reconnecting",
                      fw->o.url, trib_strerror(drv));
        if (req == REQ_GOODBYE) {
            finish_drain(fw);
        } else {
            trib__fw_session_end(fw);
        }
    } else {
        switch (req) {
        case REQ_HELLO:
            on_challenge(fw, &m);
            break;
        case REQ_AUTH:
            on_welcome(fw, &m);
            break;
        case REQ_BATCH:
            on_batch_reply(fw, &m);
            break;
        case REQ_HEARTBEAT:
            if (m.type == TRIB_MSG_ACK) {
                fw->st.heartbeats++;
                trib_outbox_ack(fw->ob, m.u.ack.boot_id, m.u.ack.applied,
                                m.u.ack.durable);
            } else if (m.u.error.code == TRIB_EAUTH) {
                trib__fw_session_end(fw);
            }
            break;
        case REQ_GOODBYE:
            TRIB_INFO("AGT-FORWARD", "said goodbye to coordinator %s",
                      fw->coord_id);
            fw->state = FW_DONE;
            fw->st.connected = 0;
            finish_drain(fw);
            break;
        default:
            break;
        }
    }
    nng_msg_free(msg);
    msgpack_zone_clear(&fw->zone);
    pump(fw);
}

/* ------------------------------------------------------------- events */

int trib__forwarder_tags(const char *s, char *scratch, size_t cap,
                         struct trib_str *tags, int max)
{
    size_t w = 0;
    int n = 0;

    if (s == NULL || *s != '{') {
        return 0;
    }
    s++;
    while (*s != '\0' && *s != '}' && n < max) {
        size_t start = w;
        if (*s == '"') {
            for (s++; *s != '\0' && *s != '"'; s++) {
                if (*s == '\\' && s[1] != '\0') {
                    s++;
                }
                if (w < cap) {
                    scratch[w++] = *s;
                }
            }
            if (*s == '"') {
                s++;
            }
        } else {
            for (; *s != '\0' && *s != ',' && *s != '}'; s++) {
                if (w < cap) {
                    scratch[w++] = *s;
                }
            }
        }
        tags[n].p = scratch + start;
        tags[n].n = (uint32_t)(w - start);
        n++;
        if (*s == ',') {
            s++;
        }
    }
    return n;
}

void trib_forwarder_on_events(void *arg, const struct trib_event *evs, size_t n)
{
    struct trib_forwarder *fw = arg;
    struct trib_wire_event w;
    char scratch[TRIB_WIRE_MAX_TAGS * TRIB_WIRE_STR_MAX];
    size_t i;

    for (i = 0; i < n; i++) {
        const struct trib_event *e = &evs[i];

        memset(&w, 0, sizeof(w));
        w.kind = e->kind;
        w.client_id = trib_str_c(e->client_id);
        w.job_id = e->job_id;
        w.attempt = e->attempt;
        w.max_attempts = e->max_attempts;
        w.queue = trib_str_c(e->queue);
        w.job_kind = trib_str_c(e->job_kind);
        w.state = e->state ? trib_wire_state_parse(e->state) : 0;
        w.priority = e->priority;
        w.ntags = trib__forwarder_tags(e->tags, scratch, sizeof(scratch),
                                       w.tags, TRIB_WIRE_MAX_TAGS);
        w.created_at = e->created_at;
        w.scheduled_at = e->scheduled_at;
        w.attempted_at = e->attempted_at;
        w.finalized_at = e->finalized_at;
        w.next_scheduled_at = e->next_scheduled_at;
        w.queue_wait_us = e->queue_wait_us;
        w.run_us = e->run_us;
        w.complete_us = e->complete_us;
        w.error = trib_str_c(e->error);
        w.at = e->at;
        trib_wire_event_encode(trib_outbox_record_begin(fw->ob), &w);
        trib_outbox_record_end(fw->ob, 0);
    }
    trib_outbox_flush(fw->ob); /* one write; failures keep them (logged) */
    pump(fw);
}

/* ------------------------------------------------------------- timers */

void trib__fw_on_hb_timer(uv_timer_t *t)
{
    struct trib_forwarder *fw = t->data;

    fw->hb_due = 1;
    fw->probe_due = 1;
    pump(fw);
}

static void on_probe_timer(uv_timer_t *t)
{
    struct trib_forwarder *fw = t->data;

    fw->probe_due = 1;
    pump(fw);
}

static void on_drain_timer(uv_timer_t *t)
{
    struct trib_forwarder *fw = t->data;
    struct trib_outbox_stats st;

    trib_outbox_stats(fw->ob, &st);
    TRIB_WARN("AGT-FORWARD",
              "%" PRIu64 " event(s) not acknowledged as durable by the "
              "coordinator within the drain timeout; they stay in the outbox "
              "for the next start",
              st.events);
    fw->drain_over = 1;
    if (fw->inflight == REQ_NONE) {
        pump(fw);
    } else if (fw->inflight != REQ_GOODBYE) {
        fw->restart = 0;
        nng_aio_cancel(fw->aio); /* pump() sends GOODBYE after it */
    }
}

void trib_forwarder_drain(struct trib_forwarder *fw, uint64_t timeout_ms,
                          void (*done)(void *arg), void *arg)
{
    fw->draining = 1;
    fw->drain_done = done;
    fw->drain_arg = arg;
    uv_timer_start(&fw->drain_timer, on_drain_timer, timeout_ms, 0);
    uv_timer_start(&fw->probe_timer, on_probe_timer, PROBE_MS, PROBE_MS);
    pump(fw);
}
