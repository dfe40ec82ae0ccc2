/*
 * store_int -- the store's log-record parser, exposed for its fuzzer
 * (fuzz_wal.c) and tests. Private to coordinator/: not part of store.h.
 *
 * A log file (wal-<gen>.log) is a 16-byte header (magic "TRIBWAL2" or the
 * older "TRIBWAL1", then gen as u64 little-endian) followed by records
 *   [u32 len][u32 crc32 of the payload][payload: len bytes]
 * whose payload is [u16 agent_len][agent id][EVENT_BATCH frame] ("TRIBWAL2";
 * "TRIBWAL1" has a u8 agent_len).
 *
 * Threading: none of its own; the view's rules apply (one thread).
 */
#ifndef TRIB_STORE_INT_H
#define TRIB_STORE_INT_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "view.h"

#define TRIB__WAL_HEAD 16 /* magic 8, gen 8 */

struct trib__wal_replay {
    size_t good;       /* bytes up to the end of the last whole record:
                          everything after it is a torn tail            */
    uint64_t replayed; /* records applied to the view                   */
    uint64_t skipped;  /* whole records (checksum fine) that failed to
                          decode: logged and skipped                    */
    int headless;      /* the file is shorter than its header (a crash
                          while it was created): no records, good = 0   */
};

/*
 * Walks the records of one log file's bytes, applying each to 'v' through
 * trib_view_apply() (duplicates and gaps as in ingest: a gap is logged and
 * skipped). Stops at the first record whose length or checksum is wrong or
 * that runs past the end (the torn tail, not an error). 'gen' is the
 * generation the file name says (the header must agree); 'name' is for
 * logs; 'zone' is scratch (cleared per record). Returns 0, or TRIB_EPROTO
 * when a full header is present but is not a log header of 'gen' (nothing
 * applied).
 */
int trib__store_replay_buf(struct trib_view *v, const uint8_t *data, size_t len,
                           uint64_t gen, msgpack_zone *zone, const char *name,
                           struct trib__wal_replay *out);

#endif /* TRIB_STORE_INT_H */
