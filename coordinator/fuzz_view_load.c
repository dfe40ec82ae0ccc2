/* fuzz_view_load.c -- libFuzzer: trib_view_load() on arbitrary bytes never
 * crashes or leaks; whatever it accepts renders and saves, and the saved
 * image loads again. */
#include <stdint.h>
#include <stdlib.h>

#include "view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct trib_view *v, *again;
    struct trib_view_conf conf;
    msgpack_sbuffer sb;
    json_t *doc;

    trib_view_conf_defaults(&conf);
    conf.ring_events = 16; /* the ring is not in images: keep it small */
    if (trib_view_new(&conf, &v) != 0) {
        abort();
    }
    if (trib_view_load(v, data, size) == 0) {
        doc = trib_view_status_json(v, NULL, 1800000000000000LL);
        json_decref(doc);
        doc = trib_view_nodes_json(v, 1800000000000000LL);
        json_decref(doc);
        doc = trib_view_failures_json(v, NULL);
        json_decref(doc);
        msgpack_sbuffer_init(&sb);
        trib_view_save(v, &sb);
        if (trib_view_new(&conf, &again) != 0 ||
            trib_view_load(again, sb.data, sb.size) != 0) {
            abort(); /* an accepted image must survive a round trip */
        }
        trib_view_free(again);
        msgpack_sbuffer_destroy(&sb);
    }
    trib_view_free(v);
    return 0;
}
