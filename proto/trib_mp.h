/*
 * trib_mp -- msgpack guard: validate a frame's structure before any
 * allocation.
 *
 * msgpack-c's unpacker allocates count * sizeof(msgpack_object) as soon as
 * it reads an array or map header, before the elements arrive, so a 5-byte
 * frame can ask for gigabytes (TOOLCHAIN.md). trib_mp_check() walks the
 * bytes without allocating and refuses any container whose element count
 * exceeds the bytes left, any truncated value, nesting deeper than
 * max_depth, and trailing bytes. A frame that passes can be unpacked with
 * allocation bounded by ~24x its size.
 *
 * Threading: no shared state.
 */
#ifndef TRIB_MP_H
#define TRIB_MP_H

#include <stddef.h>

#define TRIB_MP_MAX_DEPTH 32

/* Returns 0 when buf holds exactly one well-formed msgpack object, else
 * TRIB_EPROTO (malformed/truncated/trailing) or TRIB_ERANGE (too deep or a
 * count larger than the bytes left). */
int trib_mp_check(const void *buf, size_t len, int max_depth);

#endif /* TRIB_MP_H */
