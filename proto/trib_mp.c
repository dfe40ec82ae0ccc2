/*
 * trib_mp.c -- allocation-free msgpack structure walk.
 *
 * Format reference: https://github.com/msgpack/msgpack/blob/master/spec.md
 * Each value starts with a type byte; containers announce their element
 * count up front. We keep, per open container, how many values are still
 * owed; a container may not announce more values than there are bytes left
 * (every value is at least one byte).
 */
#include "trib_mp.h"
#include "trib_err.h"

#include <stdint.h>

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

int trib_mp_check(const void *buf, size_t len, int max_depth)
{
    const uint8_t *p = buf;
    size_t off = 0;
    uint64_t owed[TRIB_MP_MAX_DEPTH + 1];
    int depth = 0;

    if (max_depth > TRIB_MP_MAX_DEPTH || max_depth < 1) {
        max_depth = TRIB_MP_MAX_DEPTH;
    }
    owed[0] = 1; /* the root value */
    while (depth >= 0) {
        uint8_t t;
        uint64_t skip = 0, count = 0;
        int hdr = 1, container = 0;

        if (owed[depth] == 0) {
            depth--;
            continue;
        }
        if (off >= len) {
            return TRIB_EPROTO; /* truncated */
        }
        owed[depth]--;
        t = p[off];
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            skip = 0; /* fixint, nil, bool */
        } else if (t >= 0x80 && t <= 0x8f) {
            count = (uint64_t)(t & 0x0f) * 2;
            container = 1;
        } else if (t >= 0x90 && t <= 0x9f) {
            count = t & 0x0f;
            container = 1;
        } else if (t >= 0xa0 && t <= 0xbf) {
            skip = t & 0x1f;
        } else {
            int lb = 0; /* length bytes */
            switch (t) {
            case 0xc4:
            case 0xd9:
                lb = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                lb = 2;
                break;
            case 0xc6:
            case 0xdb:
                lb = 4;
                break;
            case 0xc7:
                lb = 1;
                skip = 1;
                break; /* ext8 (+type) */
            case 0xc8:
                lb = 2;
                skip = 1;
                break;
            case 0xc9:
                lb = 4;
                skip = 1;
                break;
            case 0xca:
                skip = 4;
                break; /* float32 */
            case 0xcb:
                skip = 8;
                break; /* float64 */
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4:
                skip = 2;
                break; /* fixext 1..16 */
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
                hdr = 3;
                container = 1;
                break; /* array16 */
            case 0xdd:
                hdr = 5;
                container = 1;
                break; /* array32 */
            case 0xde:
                hdr = 3;
                container = 2;
                break; /* map16 */
            case 0xdf:
                hdr = 5;
                container = 2;
                break; /* map32 */
            default:
                return TRIB_EPROTO; /* 0xc1: never used */
            }
            if (lb > 0) {
                if (len - off < (size_t)(1 + lb)) {
                    return TRIB_EPROTO;
                }
                skip += be(p + off + 1, lb);
                hdr = 1 + lb;
            }
            if (container) {
                if (len - off < (size_t)hdr) {
                    return TRIB_EPROTO;
                }
                count = be(p + off + 1, hdr - 1);
                if (container == 2) {
                    count *= 2;
                }
            }
        }
        if (len - off < (size_t)hdr || len - off - (size_t)hdr < skip) {
            return TRIB_EPROTO; /* truncated */
        }
        off += (size_t)hdr + (size_t)skip;
        /* msgpack-c refuses a container, even an empty one, that would be
         * the (max+1)th open container: check before the count. */
        if (container && depth + 1 > max_depth) {
            return TRIB_ERANGE;
        }
        if (container && count > 0) {
            if (count > len - off) {
                return TRIB_ERANGE; /* announces more values than bytes */
            }
            owed[++depth] = count;
        }
    }
    return off == len ? 0 : TRIB_EPROTO; /* exactly one object */
}
