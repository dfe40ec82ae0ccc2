/*
 * wire_bench.c -- throughput of the event hot path of the wire format
 * (proto/trib_wire.h): encoding event maps as an agent does, and decoding
 * EVENT_BATCH frames as the coordinator's ingest does (size cap, structure
 * check, unpack, one trib_wire_event_decode per event).
 *
 *   build/bin/wire_bench [seconds per measurement (default 1)] [batch size]
 *
 * Prints figures; gates nothing (bench/README.md). The events are realistic:
 * a node's client ids, queue and kind names, database-clock timestamps, two
 * tags on every fifth event and an error text on every twentieth.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trib_mp.h"
#include "trib_time.h"
#include "trib_wire.h"

#define NEVENTS 4096

static struct trib_wire_event events[NEVENTS];

static void make_events(void)
{
    static const char *kinds[] = {"email.send", "report.build", "noop",
                                  "billing.charge"};
    static const char *queues[] = {"default", "email", "reports"};
    static const char *clients[] = {"node-1-c1", "node-1-c2"};
    const int64_t t0 = 1767225600000000LL;
    int i;

    for (i = 0; i < NEVENTS; i++) {
        struct trib_wire_event *ev = &events[i];
        int64_t created = t0 + (int64_t)i * 997;

        memset(ev, 0, sizeof(*ev));
        ev->kind = i % 20 == 0 ? 2 : 1; /* failed / completed */
        ev->client_id = trib_str_c(clients[i % 2]);
        ev->job_id = 1000000 + i;
        ev->attempt = i % 20 == 0 ? 2 : 1;
        ev->max_attempts = 25;
        ev->queue = trib_str_c(queues[i % 3]);
        ev->job_kind = trib_str_c(kinds[i % 4]);
        ev->state = i % 20 == 0 ? TRIB_WS_RETRYABLE : TRIB_WS_COMPLETED;
        ev->priority = 1;
        if (i % 5 == 0) {
            ev->tags[0] = trib_str_c("billing");
            ev->tags[1] = trib_str_c("eu-west");
            ev->ntags = 2;
        }
        ev->created_at = created;
        ev->scheduled_at = created;
        ev->attempted_at = created + 1800 + i % 300;
        ev->finalized_at = ev->attempted_at + 4200 + i % 1000;
        ev->queue_wait_us = 1800 + i % 300;
        ev->run_us = 4200 + i % 1000;
        ev->complete_us = 650 + i % 200;
        if (i % 20 == 0) {
            ev->next_scheduled_at = ev->finalized_at + 16000000;
            ev->error = trib_str_c("smtp: 421 4.7.0 try again later, "
                                   "connection rate limit exceeded");
        }
        ev->at = ev->finalized_at + ev->complete_us;
    }
}

static double now_s(void)
{
    return (double)trib_mono_us() / 1e6;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    int batch = argc > 2 ? atoi(argv[2]) : 1000;
    msgpack_sbuffer sb;
    msgpack_zone zone;
    static struct trib_wire_msg msg;
    struct trib_wire_event ev;
    uint64_t n, sink = 0;
    double t, el;
    int i, z;

    if (batch < 1 || batch > TRIB_WIRE_BATCH_MAX) {
        fprintf(stderr, "wire_bench: batch size 1..%d\n", TRIB_WIRE_BATCH_MAX);
        return 2;
    }
    make_events();
    msgpack_sbuffer_init(&sb);

    /* encode: one event map at a time into a reused buffer */
    n = 0;
    t = now_s();
    do {
        for (i = 0; i < NEVENTS; i++) {
            sb.size = 0;
            trib_wire_event_encode(&sb, &events[i]);
            sink += sb.size;
        }
        n += NEVENTS;
    } while ((el = now_s() - t) < secs);
    printf("encode  %10.0f events/s  (trib_wire_event_encode)\n", n / el);

    /* one batch frame of 'batch' events */
    sb.size = 0;
    trib_wire_enc_batch_head(&sb, 0x9f3c2a1b5d6e7f80ULL, 1, (uint32_t)batch);
    for (i = 0; i < batch; i++) {
        trib_wire_event_encode(&sb, &events[i % NEVENTS]);
    }
    printf("frame   %10d events, %zu bytes (%.1f bytes/event)\n", batch,
           sb.size, (double)sb.size / batch);

    /* decode: frame -> message -> every event, with msgpack-c's default
     * zone chunk (8 KiB) and with a chunk that holds a whole batch (the
     * zone keeps its first chunk across msgpack_zone_clear()) */
    for (z = 0; z < 2; z++) {
        size_t chunk = z == 0 ? MSGPACK_ZONE_CHUNK_SIZE : 1u << 20;

        msgpack_zone_init(&zone, chunk);
        n = 0;
        t = now_s();
        do {
            const msgpack_object *evs;

            msgpack_zone_clear(&zone);
            if (trib_wire_decode(sb.data, sb.size, &zone, &msg) != 0) {
                fprintf(stderr, "wire_bench: decode failed\n");
                return 1;
            }
            evs = msg.u.batch.events;
            for (i = 0; i < (int)evs->via.array.size; i++) {
                if (trib_wire_event_decode(&evs->via.array.ptr[i], &ev)) {
                    fprintf(stderr, "wire_bench: event decode failed\n");
                    return 1;
                }
                sink += (uint64_t)ev.job_id;
            }
            n += (uint64_t)batch;
        } while ((el = now_s() - t) < secs);
        printf("decode  %10.0f events/s  (trib_wire_decode + "
               "trib_wire_event_decode, batches of %d, zone chunk %zu KiB)\n",
               n / el, batch, chunk / 1024);
        if (z == 0) {
            msgpack_zone_destroy(&zone);
        }
    }

    /* the structure check and the unpack alone */
    n = 0;
    t = now_s();
    do {
        sink += (uint64_t)trib_mp_check(sb.data, sb.size, TRIB_MP_MAX_DEPTH);
        n += (uint64_t)batch;
    } while ((el = now_s() - t) < secs);
    printf("check   %10.0f events/s  (trib_mp_check alone)\n", n / el);

    /* the event decoder alone, on an already unpacked batch */
    {
        const msgpack_object *evs = msg.u.batch.events;

        n = 0;
        t = now_s();
        do {
            for (i = 0; i < (int)evs->via.array.size; i++) {
                trib_wire_event_decode(&evs->via.array.ptr[i], &ev);
                sink += (uint64_t)ev.at;
            }
            n += (uint64_t)batch;
        } while ((el = now_s() - t) < secs);
        printf("decode  %10.0f events/s  (trib_wire_event_decode alone)\n",
               n / el);
    }
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return sink == 42 ? 3 : 0; /* keep the work observable */
}
