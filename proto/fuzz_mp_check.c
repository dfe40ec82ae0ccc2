/* fuzz_mp_check.c -- libFuzzer: the guard never crashes, and whatever it
 * accepts msgpack-c unpacks as exactly one object. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>

#include "trib_mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_unpacked up;
    size_t off = 0;

    if (trib_mp_check(data, size, TRIB_MP_MAX_DEPTH) != 0) {
        return 0;
    }
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)data, size, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != size) {
        abort(); /* the guard and msgpack-c disagree */
    }
    msgpack_unpacked_destroy(&up);
    return 0;
}
