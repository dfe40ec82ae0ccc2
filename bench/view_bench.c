/*
 * view_bench -- throughput of the coordinator's event path: EVENT_BATCH
 * frames from 100 agents decoded with trib_wire_decode() and applied with
 * trib_view_apply(), on one core. Prints events/s (decode + apply, and
 * decode alone) and the view's memory. Not a test.
 *
 *   view_bench [events (10000000)] [agents (100)] [batch (1000)]
 *
 * The events are varied: 2 clients x 4 queues x 8 kinds per agent, 2 %
 * failures with numbered error texts, some tags, latencies over many
 * octaves. Frames are assembled per batch from pre-encoded event maps (as
 * an agent sends them from its outbox), so encoding is not measured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "trib_time.h"
#include "trib_wire.h"
#include "view.h"

#define VARIANTS 8 /* distinct batch bodies */

static uint64_t rnd = 0x2545F4914F6CDD1DULL;

static uint64_t next_rand(void)
{
    rnd ^= rnd >> 12;
    rnd ^= rnd << 25;
    rnd ^= rnd >> 27;
    return rnd * 0x2545F4914F6CDD1DULL;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One batch body: n event maps, concatenated. */
static void encode_body(msgpack_sbuffer *sb, int n, int64_t t0)
{
    static const char *clients[] = {"c1", "c2"};
    static const char *queues[] = {"default", "bulk", "mail", "media"};
    static const char *kinds[] = {"noop",   "email", "charge", "resize",
                                  "export", "sync",  "notify", "index"};
    struct trib_wire_event ev;
    char err[64];
    int i;

    for (i = 0; i < n; i++) {
        uint64_t r = next_rand();
        int fail = r % 50 == 0;

        memset(&ev, 0, sizeof(ev));
        ev.kind = fail ? TRIB_EV_JOB_FAILED : TRIB_EV_JOB_COMPLETED;
        ev.state = fail ? (r % 3 ? TRIB_WS_RETRYABLE : TRIB_WS_DISCARDED)
                        : TRIB_WS_COMPLETED;
        ev.client_id = trib_str_c(clients[(r >> 8) % 2]);
        ev.queue = trib_str_c(queues[(r >> 12) % 4]);
        ev.job_kind = trib_str_c(kinds[(r >> 16) % 8]);
        ev.job_id = (int64_t)(next_rand() >> 20);
        ev.attempt = 1;
        ev.max_attempts = 25;
        ev.priority = 1;
        ev.at = t0 - (int64_t)(next_rand() % 1000000);
        ev.created_at = ev.at - 20000 - (int64_t)(next_rand() % 100000);
        ev.scheduled_at = ev.created_at;
        ev.attempted_at = ev.scheduled_at + (int64_t)(next_rand() % 5000);
        ev.finalized_at = fail && ev.state == TRIB_WS_RETRYABLE ? 0 : ev.at;
        ev.queue_wait_us = (int64_t)(next_rand() % (1ULL << (r % 24)));
        ev.run_us = (int64_t)(next_rand() % (1ULL << ((r >> 24) % 28)));
        ev.complete_us = 200 + (int64_t)(next_rand() % 2000);
        if (fail) {
            snprintf(err, sizeof(err), "upstream 503 after %d ms (req %08llx)",
                     (int)(next_rand() % 30000),
                     (unsigned long long)(next_rand() | 0xa0000000ULL));
            ev.error = trib_str_c(err);
        }
        if (r % 10 == 0) {
            ev.ntags = 1;
            ev.tags[0] = trib_str_c(r % 20 ? "nightly" : "vip");
        }
        trib_wire_event_encode(sb, &ev);
    }
}

int main(int argc, char **argv)
{
    long long total = argc > 1 ? atoll(argv[1]) : 10000000;
    int agents = argc > 2 ? atoi(argv[2]) : 100;
    int batch = argc > 3 ? atoi(argv[3]) : 1000;
    int64_t t0 = trib_now_us();
    msgpack_sbuffer body[VARIANTS], frame;
    uint64_t *seq;
    char(*ids)[32];
    struct trib_view *v;
    struct trib_view_stats st;
    struct trib_wire_msg m;
    struct trib_apply_result r;
    msgpack_zone zone;
    long long b, nbatches, applied = 0;
    double t_start, t_all, t_dec;
    int i, k;

    if (total <= 0 || agents <= 0 || batch <= 0 ||
        batch > TRIB_WIRE_BATCH_MAX) {
        fprintf(stderr, "usage: view_bench [events] [agents] [batch<=%d]\n",
                TRIB_WIRE_BATCH_MAX);
        return 2;
    }
    nbatches = total / batch;
    seq = calloc((size_t)agents, sizeof(*seq));
    ids = calloc((size_t)agents, sizeof(*ids));
    for (i = 0; i < agents; i++) {
        snprintf(ids[i], sizeof(ids[i]), "node-%03d", i);
        seq[i] = 1;
    }
    for (k = 0; k < VARIANTS; k++) {
        msgpack_sbuffer_init(&body[k]);
        encode_body(&body[k], batch, t0);
    }
    msgpack_sbuffer_init(&frame);
    msgpack_zone_init(&zone, 8 << 20); /* one chunk holds a batch */
    if (trib_view_new(NULL, &v) != 0) {
        return 1;
    }

    /* decode + apply */
    t_start = mono_s();
    for (b = 0; b < nbatches; b++) {
        i = (int)(b % agents);
        k = (int)(b % VARIANTS);
        msgpack_sbuffer_clear(&frame);
        trib_wire_enc_batch_head(&frame, 1, seq[i], (uint32_t)batch);
        msgpack_sbuffer_write(&frame, body[k].data, body[k].size);
        msgpack_zone_clear(&zone);
        if (trib_wire_decode(frame.data, frame.size, &zone, &m) != 0 ||
            trib_view_apply(v, trib_str_c(ids[i]), &m.u.batch, t0 + b * 1000,
                            &r) != 0) {
            fprintf(stderr, "view_bench: batch %lld refused\n", b);
            return 1;
        }
        applied += r.applied;
        seq[i] += (uint64_t)batch;
    }
    t_all = mono_s() - t_start;

    /* decode alone, for the split */
    t_start = mono_s();
    for (b = 0; b < nbatches / 4; b++) {
        k = (int)(b % VARIANTS);
        msgpack_sbuffer_clear(&frame);
        trib_wire_enc_batch_head(&frame, 1, 1, (uint32_t)batch);
        msgpack_sbuffer_write(&frame, body[k].data, body[k].size);
        msgpack_zone_clear(&zone);
        if (trib_wire_decode(frame.data, frame.size, &zone, &m) != 0) {
            return 1;
        }
        for (i = 0; i < batch; i++) {
            struct trib_wire_event ev;

            trib_wire_event_decode(&m.u.batch.events->via.array.ptr[i], &ev);
        }
    }
    t_dec = (mono_s() - t_start) * 4;

    trib_view_stats(v, &st);
    printf("view_bench: %lld events, %d agents, %d events/batch\n", applied,
           agents, batch);
    printf("  decode + apply: %.2f s, %.0f events/s\n", t_all,
           (double)applied / t_all);
    printf("  decode alone:   %.2f s, %.0f events/s (estimate from 1/4)\n",
           t_dec, (double)applied / t_dec);
    printf("  apply alone:    %.0f events/s (difference)\n",
           (double)applied / (t_all - t_dec));
    printf("  view: %llu groups, %llu failure groups, %llu bytes (%.1f MiB)\n",
           (unsigned long long)st.groups, (unsigned long long)st.failure_groups,
           (unsigned long long)st.bytes, (double)st.bytes / (1 << 20));

    trib_view_free(v);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&frame);
    for (k = 0; k < VARIANTS; k++) {
        msgpack_sbuffer_destroy(&body[k]);
    }
    free(seq);
    free(ids);
    return 0;
}
