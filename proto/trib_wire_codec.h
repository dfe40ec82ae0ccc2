/*
 * trib_wire_codec.h -- library-private helpers of the wire codec, shared by
 * trib_wire.c (frames and messages) and trib_wire_event.c (the event map,
 * the hot path). Not for use outside proto/.
 *
 * Writing: a msgpack_packer whose write callback appends to the caller's
 * msgpack_sbuffer and aborts on OOM (the project's policy, trib_mem.h), so
 * encoders cannot fail half-way. Strings are cut at a UTF-8 boundary to
 * their limit; an absent string ({NULL,0}) is packed as nil.
 *
 * Reading: typed readers of one msgpack_object. Each returns 0 or
 * TRIB_EPROTO (wrong msgpack type, integer out of the field's range, string
 * over its limit). Callers treat a nil value like an absent key before
 * calling them (PROTOCOL.md, "Versioning").
 *
 * Threading: no shared state.
 */
#ifndef TRIB_WIRE_CODEC_H
#define TRIB_WIRE_CODEC_H

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "trib_err.h"
#include "trib_mem.h"
#include "trib_wire.h"

/* msgpack_packer write callback: like msgpack_sbuffer_write, but grows the
 * buffer with trib_realloc (aborts on OOM; realloc-compatible, so
 * msgpack_sbuffer_destroy frees it). */
static inline int trib__wire_write(void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sb = data;

    if (len == 0) {
        return 0;
    }
    if (sb->alloc - sb->size < len) {
        size_t n = sb->alloc ? sb->alloc * 2 : MSGPACK_SBUFFER_INIT_SIZE;

        while (n < sb->size + len) {
            n *= 2;
        }
        sb->data = trib_realloc(sb->data, n);
        sb->alloc = n;
    }
    memcpy(sb->data + sb->size, buf, len);
    sb->size += len;
    return 0;
}

static inline void trib__wire_packer(msgpack_packer *pk, msgpack_sbuffer *sb)
{
    msgpack_packer_init(pk, sb, trib__wire_write);
}

/* Length of s[0..n) cut to at most max bytes without splitting a UTF-8
 * sequence: when byte 'max' is a continuation byte, back up (at most 3
 * bytes, the longest tail of a sequence) to the start of its sequence. */
static inline uint32_t trib__utf8_cut(const char *s, uint32_t n, uint32_t max)
{
    uint32_t cut = max;

    if (n <= max) {
        return n;
    }
    while (cut > 0 && max - cut < 3 && ((unsigned char)s[cut] & 0xc0) == 0x80) {
        cut--;
    }
    if (((unsigned char)s[cut] & 0xc0) == 0x80) {
        cut = max; /* not UTF-8 anyway: cut at the byte limit */
    }
    return cut;
}

/* A string cut to max, or nil when absent. */
static inline void trib__pack_str(msgpack_packer *pk, struct trib_str s,
                                  uint32_t max)
{
    uint32_t n;

    if (s.p == NULL) {
        msgpack_pack_nil(pk);
        return;
    }
    n = trib__utf8_cut(s.p, s.n, max);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s.p, n);
}

static inline int trib__count(int n, int cap)
{
    return n < 0 ? 0 : n > cap ? cap : n;
}

/* ---- readers ------------------------------------------------------------ */

static inline int trib__get_u64(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return TRIB_EPROTO; /* negative, float, str, ... */
    }
    *v = o->via.u64;
    return 0;
}

static inline int trib__get_u32(const msgpack_object *o, uint32_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX) {
        return TRIB_EPROTO;
    }
    *v = (uint32_t)o->via.u64;
    return 0;
}

static inline int trib__get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return TRIB_EPROTO;
}

/* A signed integer within [min, max]. */
static inline int trib__get_range(const msgpack_object *o, int64_t min,
                                  int64_t max, int64_t *v)
{
    if (trib__get_i64(o, v) != 0 || *v < min || *v > max) {
        return TRIB_EPROTO;
    }
    return 0;
}

static inline int trib__get_i32(const msgpack_object *o, int32_t *v)
{
    int64_t x;

    if (trib__get_range(o, INT32_MIN, INT32_MAX, &x) != 0) {
        return TRIB_EPROTO;
    }
    *v = (int32_t)x;
    return 0;
}

static inline int trib__get_bool(const msgpack_object *o, int *v)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        return TRIB_EPROTO;
    }
    *v = o->via.boolean ? 1 : 0;
    return 0;
}

/* A str of at most max bytes; borrowed (points into the frame). */
static inline int trib__get_str(const msgpack_object *o, uint32_t max,
                                struct trib_str *s)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max) {
        return TRIB_EPROTO;
    }
    s->p = o->via.str.ptr != NULL ? o->via.str.ptr : "";
    s->n = o->via.str.size;
    return 0;
}

/* A bin of exactly n bytes, copied out. */
static inline int trib__get_bin(const msgpack_object *o, uint8_t *out,
                                uint32_t n)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n) {
        return TRIB_EPROTO;
    }
    memcpy(out, o->via.bin.ptr, n);
    return 0;
}

/* The integer key of a body-map entry, or -1 for a key that is not a
 * non-negative integer (skipped like any unknown key). Nil values also
 * read as -1: a nil value means "absent". */
static inline int64_t trib__key(const msgpack_object_kv *kv)
{
    if (kv->key.type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        kv->key.via.u64 > INT32_MAX || kv->val.type == MSGPACK_OBJECT_NIL) {
        return -1;
    }
    return (int64_t)kv->key.via.u64;
}

#endif /* TRIB_WIRE_CODEC_H */
