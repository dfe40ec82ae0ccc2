/*
 * wirepoke.c -- a test tool that sends hostile frames to a coordinator's
 * agent address and prints what came back, one JSON line per case:
 *
 *   {"case":"garbage","reply":"ERROR","code":-71}
 *
 * Usage: trib-wirepoke URL CASE...   (secret from $TRIBUTARY_SECRET)
 * Cases: garbage, truncated, amplify, oversized (4 MiB + 1 byte: rejected
 * by the decoder), unknown_type, batch_no_auth, wrong_secret, good_auth
 * (completes a real handshake with the right secret, then replays the
 * same batch twice: the second is a duplicate), after (a plain HELLO, to
 * show the connection still works).
 *
 * Every case reuses one req socket (one connection), so "the service goes
 * on" is visible: each later case still gets an answer.
 * Test-only: not installed.
 */
#include "trib_auth.h"
#include "trib_err.h"
#include "trib_wire.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nng_socket sock;

/* Sends bytes, prints the reply's type and code. Returns the decoded type
 * (0 on no reply) and fills *m when m != NULL. */
static uint32_t roundtrip(const char *name, const void *buf, size_t len,
                          msgpack_zone *z, struct trib_wire_msg *m)
{
    struct trib_wire_msg local;
    void *rep = NULL;
    size_t rlen = 0;
    int rv;

    if (m == NULL) {
        m = &local;
    }
    if ((rv = nng_send(sock, (void *)buf, len, 0)) != 0 ||
        (rv = nng_recv(sock, &rep, &rlen, NNG_FLAG_ALLOC)) != 0) {
        printf("{\"case\":\"%s\",\"reply\":null,\"nng\":\"%s\"}\n", name,
               nng_strerror(rv));
        return 0;
    }
    msgpack_zone_clear(z);
    rv = trib_wire_decode(rep, rlen, z, m);
    if (rv != 0) {
        printf("{\"case\":\"%s\",\"reply\":\"undecodable\"}\n", name);
        nng_free(rep, rlen);
        return 0;
    }
    printf("{\"case\":\"%s\",\"reply\":\"%s\",\"code\":%d}\n", name,
           trib_wire_type_name(m->type),
           m->type == TRIB_MSG_ERROR ? m->u.error.code : 0);
    fflush(stdout);
    nng_free(rep, rlen);
    return m->type;
}

static void hello(msgpack_sbuffer *sb, uint64_t boot)
{
    struct trib_wire_hello h;

    memset(&h, 0, sizeof(h));
    h.agent_id = trib_str_c("wirepoke");
    h.boot_id = boot;
    h.host = trib_str_c("localhost");
    h.version = trib_str_c("test");
    h.heartbeat_ms = 1000;
    msgpack_sbuffer_clear(sb);
    trib_wire_enc_hello(sb, &h);
}

static void batch(msgpack_sbuffer *sb, uint64_t boot)
{
    struct trib_wire_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.kind = 1;
    ev.client_id = trib_str_c("wirepoke-c");
    ev.job_id = 1;
    ev.attempt = 1;
    ev.max_attempts = 25;
    ev.queue = trib_str_c("wirepoke");
    ev.job_kind = trib_str_c("wirepoke.kind");
    ev.state = TRIB_WS_COMPLETED;
    msgpack_sbuffer_clear(sb);
    trib_wire_enc_batch_head(sb, boot, 1, 1);
    trib_wire_event_encode(sb, &ev);
}

/* HELLO + AUTH with 'secret'; returns the reply type to AUTH. */
static uint32_t handshake(const char *name, const char *secret,
                          msgpack_sbuffer *sb, msgpack_zone *z, uint64_t boot)
{
    struct trib_wire_msg m;
    struct trib_wire_auth a;
    uint8_t nonce[TRIB_WIRE_NONCE];

    hello(sb, boot);
    if (roundtrip("hello", sb->data, sb->size, z, &m) != TRIB_MSG_CHALLENGE) {
        return 0;
    }
    memcpy(nonce, m.u.challenge.nonce, sizeof(nonce));
    memset(&a, 0, sizeof(a));
    if (secret != NULL) {
        trib_auth_agent_mac(secret, strlen(secret), nonce,
                            trib_str_c("wirepoke"), boot, a.mac);
    }
    msgpack_sbuffer_clear(sb);
    trib_wire_enc_auth(sb, &a);
    return roundtrip(name, sb->data, sb->size, z, NULL);
}

int main(int argc, char **argv)
{
    const char *secret = getenv("TRIBUTARY_SECRET");
    msgpack_sbuffer sb;
    msgpack_zone z;
    int i, rv;

    if (argc < 3) {
        fprintf(stderr, "usage: trib-wirepoke URL CASE...\n");
        return 2;
    }
    if ((rv = nng_req0_open(&sock)) != 0 ||
        (rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 5000)) != 0 ||
        (rv = nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, 0)) != 0 ||
        (rv = nng_dial(sock, argv[1], NULL, 0)) != 0) {
        fprintf(stderr, "trib-wirepoke: %s: %s\n", argv[1], nng_strerror(rv));
        return 1;
    }
    msgpack_sbuffer_init(&sb);
    msgpack_zone_init(&z, 4096);
    for (i = 2; i < argc; i++) {
        const char *c = argv[i];

        if (strcmp(c, "garbage") == 0) {
            static const uint8_t g[] = {0xc1, 0xff, 0x00, 0x13, 0x37};

            roundtrip(c, g, sizeof(g), &z, NULL);
        } else if (strcmp(c, "truncated") == 0) {
            hello(&sb, 7);
            roundtrip(c, sb.data, sb.size / 2, &z, NULL);
        } else if (strcmp(c, "amplify") == 0) {
            /* array32 header claiming 2^32-1 elements, nothing after it */
            static const uint8_t a[] = {0xdd, 0xff, 0xff, 0xff, 0xff};

            roundtrip(c, a, sizeof(a), &z, NULL);
        } else if (strcmp(c, "oversized") == 0) {
            size_t n = (size_t)TRIB_WIRE_FRAME_MAX + 1;
            uint8_t *big = calloc(1, n);

            big[0] = 0x93; /* looks like an envelope, then zeros */
            roundtrip(c, big, n, &z, NULL);
            free(big);
        } else if (strcmp(c, "unknown_type") == 0) {
            static const uint8_t u[] = {0x93, 0x01, 0x7f, 0x80};

            roundtrip(c, u, sizeof(u), &z, NULL);
        } else if (strcmp(c, "batch_no_auth") == 0) {
            batch(&sb, 99);
            roundtrip(c, sb.data, sb.size, &z, NULL);
        } else if (strcmp(c, "wrong_secret") == 0) {
            handshake(c, "not-the-secret", &sb, &z, 5);
        } else if (strcmp(c, "good_auth") == 0) {
            if (handshake(c, secret, &sb, &z, 6) == TRIB_MSG_WELCOME) {
                batch(&sb, 6);
                roundtrip("batch", sb.data, sb.size, &z, NULL);
                roundtrip("replayed_batch", sb.data, sb.size, &z, NULL);
            }
        } else if (strcmp(c, "after") == 0) {
            hello(&sb, 8);
            roundtrip(c, sb.data, sb.size, &z, NULL);
        } else {
            fprintf(stderr, "trib-wirepoke: unknown case %s\n", c);
            return 2;
        }
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_zone_destroy(&z);
    nng_close(sock);
    return 0;
}
