/* fuzz_wal.c -- libFuzzer: the write-ahead log's replay parser
 * (trib__store_replay_buf) on arbitrary file bytes never crashes or leaks;
 * what it accepts renders; the torn-tail cut is stable (replaying only the
 * good prefix into a fresh view reaches the same end and the same view).
 *
 * The generation the file name would carry is taken from the header bytes
 * (so inputs can pass the header check), or 0 for short inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "trib_log.h"
#include "view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct trib_view *mkview(void)
{
    struct trib_view_conf conf;
    struct trib_view *v;

    trib_view_conf_defaults(&conf);
    conf.ring_events = 16;
    if (trib_view_new(&conf, &v) != 0) {
        abort();
    }
    return v;
}

static char *status(const struct trib_view *v)
{
    json_t *doc = trib_view_status_json(v, NULL, 1800000000000000LL);
    char *text;

    json_object_del(json_object_get(doc, "coordinator"), "view_bytes");
    text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(doc);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trib__wal_replay r, again;
    struct trib_view *v = mkview(), *v2;
    msgpack_zone zone;
    uint64_t gen = 0;
    char *a, *b;
    size_t i;

    trib_log_level = TRIB_LOG_ERROR; /* skipped records are logged as WARN */
    if (size >= TRIB__WAL_HEAD) {
        for (i = 0; i < 8; i++) {
            gen |= (uint64_t)data[8 + i] << (8 * i);
        }
    }
    msgpack_zone_init(&zone, 1 << 14);
    if (trib__store_replay_buf(v, data, size, gen, &zone, "fuzz", &r) == 0) {
        if (r.good > size || (r.headless && r.good != 0)) {
            abort();
        }
        if (!r.headless) {
            v2 = mkview();
            if (trib__store_replay_buf(v2, data, r.good, gen, &zone, "fuzz",
                                       &again) != 0 ||
                again.good != r.good || again.replayed != r.replayed) {
                abort(); /* cutting the tail must not change the prefix */
            }
            a = status(v);
            b = status(v2);
            if (a == NULL || b == NULL || strcmp(a, b) != 0) {
                abort();
            }
            free(a);
            free(b);
            trib_view_free(v2);
        }
    }
    msgpack_zone_destroy(&zone);
    trib_view_free(v);
    return 0;
}
