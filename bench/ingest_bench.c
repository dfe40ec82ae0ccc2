/*
 * ingest_bench.c -- coordinator ingest rate from K synthetic agents.
 *
 * Usage: trib-ingest-bench URL AGENTS EVENTS_PER_AGENT [BATCH] [COORD_PID]
 *        (secret from $TRIBUTARY_SECRET, as the coordinator's)
 *
 * Each agent is a thread with its own nng req socket: handshake (HELLO,
 * AUTH), then EVENT_BATCHes of BATCH (default 1000) realistic events,
 * back-to-back, one outstanding at a time, exactly like an agent
 * forwarding a backlog. Events are pre-encoded, so the figure is the
 * coordinator's (decode + exactly-once apply + log + ACK), not ours.
 * Prints events/s over the whole run and, with COORD_PID, the
 * coordinator's RSS at the end. A benchmark, not a test: nothing asserts.
 */
#include "trib_auth.h"
#include "trib_err.h"
#include "trib_time.h"
#include "trib_wire.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agent {
    pthread_t th;
    int idx;
    const char *url;
    uint64_t events, batch;
    uint64_t sent, acked_durable;
    int failed;
};

static const char *secret;

static int rpc(nng_socket s, msgpack_sbuffer *sb, msgpack_zone *z,
               struct trib_wire_msg *m, void **rep, size_t *rlen)
{
    int rv;

    if (*rep != NULL) {
        nng_free(*rep, *rlen);
        *rep = NULL;
    }
    if ((rv = nng_send(s, sb->data, sb->size, 0)) != 0 ||
        (rv = nng_recv(s, rep, rlen, NNG_FLAG_ALLOC)) != 0) {
        fprintf(stderr, "nng: %s\n", nng_strerror(rv));
        return -1;
    }
    msgpack_zone_clear(z);
    return trib_wire_decode(*rep, *rlen, z, m);
}

static void *run(void *arg)
{
    struct agent *a = arg;
    char id[32], client[32], err[64];
    struct trib_wire_hello h;
    struct trib_wire_auth au;
    struct trib_wire_event ev;
    struct trib_wire_msg m;
    msgpack_sbuffer sb, events;
    msgpack_zone z;
    nng_socket s;
    void *rep = NULL;
    size_t rlen = 0;
    uint64_t boot, seq = 1, i;
    int64_t now = trib_now_us();

    snprintf(id, sizeof(id), "bench-%d", a->idx);
    snprintf(client, sizeof(client), "bench-%d-c", a->idx);
    trib_auth_random(&boot, sizeof(boot));
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&events);
    msgpack_zone_init(&z, 1 << 16);
    if (nng_req0_open(&s) != 0 || nng_dial(s, a->url, NULL, 0) != 0) {
        a->failed = 1;
        return NULL;
    }
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, 0);
    memset(&h, 0, sizeof(h));
    h.agent_id = trib_str_c(id);
    h.boot_id = boot;
    h.host = trib_str_c("bench");
    h.version = trib_str_c("bench");
    h.nclients = 1;
    h.clients[0].id = trib_str_c(client);
    h.clients[0].mode = trib_str_c("notify");
    h.clients[0].nqueues = 1;
    h.clients[0].queues[0] = trib_str_c("bench");
    trib_wire_enc_hello(&sb, &h);
    if (rpc(s, &sb, &z, &m, &rep, &rlen) != 0 || m.type != TRIB_MSG_CHALLENGE) {
        a->failed = 1;
        goto out;
    }
    memset(&au, 0, sizeof(au));
    if (secret != NULL) {
        trib_auth_agent_mac(secret, strlen(secret), m.u.challenge.nonce,
                            trib_str_c(id), boot, au.mac);
    }
    msgpack_sbuffer_clear(&sb);
    trib_wire_enc_auth(&sb, &au);
    if (rpc(s, &sb, &z, &m, &rep, &rlen) != 0 || m.type != TRIB_MSG_WELCOME) {
        a->failed = 1;
        goto out;
    }
    /* One pre-encoded batch body, re-sent with new sequence numbers. */
    memset(&ev, 0, sizeof(ev));
    ev.kind = 1;
    ev.client_id = trib_str_c(client);
    ev.queue = trib_str_c("bench");
    ev.job_kind = trib_str_c("tributary.noop");
    ev.state = TRIB_WS_COMPLETED;
    ev.attempt = 1;
    ev.max_attempts = 25;
    ev.created_at = now - 40000;
    ev.scheduled_at = now - 30000;
    ev.attempted_at = now - 29000;
    ev.finalized_at = now;
    ev.at = now;
    ev.queue_wait_us = 1000;
    ev.run_us = 120;
    ev.complete_us = 900;
    for (i = 0; i < a->batch; i++) {
        ev.job_id = (int64_t)(a->idx * 100000000LL + (int64_t)i);
        trib_wire_event_encode(&events, &ev);
    }
    while (a->sent < a->events) {
        msgpack_sbuffer_clear(&sb);
        trib_wire_enc_batch_head(&sb, boot, seq, (uint32_t)a->batch);
        msgpack_sbuffer_write(&sb, events.data, events.size);
        if (rpc(s, &sb, &z, &m, &rep, &rlen) != 0 || m.type != TRIB_MSG_ACK) {
            snprintf(err, sizeof(err), "type %u", m.type);
            fprintf(stderr, "agent %d: batch at %" PRIu64 " refused (%s)\n",
                    a->idx, seq, err);
            a->failed = 1;
            goto out;
        }
        a->acked_durable = m.u.ack.durable;
        seq += a->batch;
        a->sent += a->batch; /* whole batches: EVENTS rounds up */
    }
out:
    if (rep != NULL) {
        nng_free(rep, rlen);
    }
    nng_close(s);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&events);
    msgpack_zone_destroy(&z);
    return NULL;
}

static long rss_kib(const char *pid)
{
    char path[64], line[256];
    long v = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%s/status", pid);
    if ((f = fopen(path, "r")) == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld", &v) == 1) {
            break;
        }
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    struct agent *agents;
    uint64_t total = 0;
    int k, i, failed = 0;
    uint64_t t0, us;

    if (argc < 4) {
        fprintf(stderr, "usage: trib-ingest-bench URL AGENTS EVENTS_PER_AGENT "
                        "[BATCH] [COORD_PID]\n");
        return 2;
    }
    secret = getenv("TRIBUTARY_SECRET");
    k = atoi(argv[2]);
    agents = calloc((size_t)k, sizeof(*agents));
    t0 = trib_mono_us();
    for (i = 0; i < k; i++) {
        agents[i].idx = i;
        agents[i].url = argv[1];
        agents[i].events = strtoull(argv[3], NULL, 10);
        agents[i].batch = argc > 4 ? strtoull(argv[4], NULL, 10) : 1000;
        pthread_create(&agents[i].th, NULL, run, &agents[i]);
    }
    for (i = 0; i < k; i++) {
        pthread_join(agents[i].th, NULL);
        total += agents[i].sent;
        failed += agents[i].failed;
    }
    us = trib_mono_us() - t0;
    printf("ingest: %d agents x %s events (batch %s): %" PRIu64
           " events in %.2f s = %.0f events/s%s\n",
           k, argv[3], argc > 4 ? argv[4] : "1000", total, (double)us / 1e6,
           (double)total * 1e6 / (double)us,
           failed ? " (SOME AGENTS FAILED)" : "");
    if (argc > 5) {
        printf("coordinator RSS: %.1f MiB\n", (double)rss_kib(argv[5]) / 1024);
    }
    free(agents);
    return failed ? 1 : 0;
}
