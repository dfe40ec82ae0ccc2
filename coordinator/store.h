/*
 * store -- the coordinator's durable state: a write-ahead log of every
 * applied EVENT_BATCH plus periodic snapshots of the view, in --data-dir.
 *
 * Why: agents delete events from their outboxes once the coordinator
 * acknowledges them as durable (DESIGN-NOTES 3). So "durable" must mean
 * "on this machine's disk": the store appends each applied batch to a
 * buffer, and every sync interval writes and fdatasync()s it on libuv's
 * threadpool; only when that finished does it mark the positions it
 * captured at the swap as durable in the view. A snapshot (the whole view,
 * trib_view_save) is written every snapshot interval or when the log grows
 * past a bound; the log segments it covers are then deleted.
 *
 * Files in the data dir:
 *   LOCK                     flock()ed while a coordinator uses the dir
 *   snapshot.bin             header (magic "TRIBSNAP", version, the WAL
 *                            generation that follows it, length, crc32) +
 *                            the view image
 *   wal-<gen, 16 hex>.log    header (magic "TRIBWAL2", gen) + records
 *                            [u32 len][u32 crc32][u16 agent_len][agent id]
 *                            [EVENT_BATCH frame], little-endian
 *                            (store_int.h; "TRIBWAL1" logs, with a u8
 *                            agent_len, are still read)
 * Start-up: load snapshot.bin (if any), replay every log with gen >= the
 * snapshot's through trib_view_apply (dedupe makes overlap harmless), cut a
 * torn tail at the first bad record (logged), sync the replayed logs, then
 * mark everything durable.
 *
 * Ownership: the store borrows the view (which must outlive it).
 * Threading: loop thread, except the file writes in threadpool work.
 */
#ifndef TRIB_STORE_H
#define TRIB_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "trib_wire.h"
#include "view.h"

struct trib_store;

struct trib_store_opts {
    const char *dir;
    int64_t sync_ms;             /* group-commit interval (default 20)      */
    int64_t snapshot_ms;         /* snapshot at least this often (60000)    */
    uint64_t snapshot_wal_bytes; /* ... or when the log passes (256 MiB) */
};

/* Opens (creating) and locks the directory, loads the snapshot and replays
 * the log into 'v' (which must be empty). 0, or TRIB_EBUSY (another
 * coordinator holds the lock), TRIB_EIO, TRIB_EPROTO / TRIB_EVERSION (an
 * unreadable snapshot: refuse to start rather than lose counts); the reason
 * is logged. */
int trib_store_open(uv_loop_t *loop, const struct trib_store_opts *o,
                    struct trib_view *v, struct trib_store **out);

/* Records one applied batch (the frame as received). */
void trib_store_append(struct trib_store *s, struct trib_str agent_id,
                       const void *frame, size_t len);

/* Bytes appended and not yet on disk (buffered + being written): ingest
 * holds new batches back while this is above its bound, so memory stays
 * bounded when agents send faster than the disk writes. */
size_t trib_store_backlog(const struct trib_store *s);
/* Bytes appended and not yet handed to a write (the part of the backlog
 * that grows while a write is in flight): ingest's bound. */
size_t trib_store_unwritten(const struct trib_store *s);
/* fn(arg) runs on the loop thread after every write finished. */
void trib_store_on_written(struct trib_store *s, void (*fn)(void *arg),
                           void *arg);

struct trib_store_stats {
    uint64_t wal_bytes;   /* current log size                       */
    uint64_t syncs;       /* completed group commits                */
    uint64_t snapshots;   /* snapshots written                      */
    int64_t last_sync_us; /* duration of the last write + fdatasync */
    uint64_t replayed;    /* batches replayed at start-up           */
    int failing;          /* the last log write or sync failed, or the
                             last snapshot did                      */
    int busy;             /* a write or snapshot is in flight       */
};
void trib_store_stats(const struct trib_store *s, struct trib_store_stats *st);

/* Final flush: waits for work in flight, writes a snapshot, closes the log,
 * unlocks. Blocks the calling (loop) thread; 0 or TRIB_EIO. Frees the
 * store. NULL ok. */
int trib_store_close(struct trib_store *s);

#endif /* TRIB_STORE_H */
