/*
 * outbox -- the agent's bounded, durable, on-disk queue of encoded events
 * waiting for the coordinator's "durable" acknowledgement.
 *
 * Directory layout (one directory per agent, locked with flock on LOCK):
 *
 *   <dir>/LOCK
 *   <dir>/<boot id, 16 hex>-<first seq, 16 hex>.seg    segment files
 *   <dir>/<...>.seg.corrupt                             quarantined bytes
 *
 * Each process start is a "boot" with a random 64-bit id; its events carry
 * sequence numbers 1, 2, 3, ... (the coordinator dedupes by agent, boot and
 * sequence). A boot's events live in one or more segment files, rotated at
 * segment_bytes. A segment file is a 40-byte header followed by records,
 * all integers little-endian:
 *
 *   header   0  "TRIBOBX1"       magic and format version
 *            8  u64 boot_id
 *           16  i64 started_at   boot start, us since epoch (replay order)
 *           24  u64 first_seq    first event sequence of this file
 *           32  u32 crc32        zlib crc32 of bytes 0..31
 *           36  u32 0            reserved
 *   record   0  u32 length       payload bytes (1..TRIB_OUTBOX_RECORD_MAX)
 *            4  u32 crc32        zlib crc32 of bytes 8..16+length
 *            8  u64 seq          event sequence; 0 = a meta record (not
 *                                an event, never sent; see below)
 *           16  payload          one event map (trib_wire_event_encode)
 *
 * Event sequences within a boot are contiguous across its files. Meta
 * records (seq 0) carry agent-private data (write-back intents) that must
 * be on disk before the write-back; they are handed to on_meta when an
 * older boot is loaded.
 *
 * Durability: records are written with one pwrite() per flush (all events
 * of one bus batch), so a kill -9 after the flush loses nothing (the page
 * cache has them); an fsync runs every fsync_ms on libuv's threadpool
 * (power loss loses at most that window; a failed fsync is logged,
 * rate-limited, and retried the next period). A failed write (ENOSPC,
 * EIO, EFBIG) keeps the records in memory (readable, forwarded), marks
 * the outbox full, logs (rate-limited) and retries every second; records
 * are never dropped while the process runs (a kill -9 meanwhile loses
 * what is only in memory). On a full disk the acknowledged segments are
 * deleted as durable ACKs arrive -- the active one included -- so the
 * retry finds room once the coordinator has the events.
 *
 * Acknowledgements: per boot, 'applied' (the coordinator has the events:
 * stop resending) and 'durable' (on the coordinator's disk: delete). Whole
 * segment files whose events are all <= durable are deleted; an older
 * boot whose events are all durable disappears.
 *
 * Start: trib_outbox_open() scans the directory, verifies every checksum,
 * cuts a torn tail of a boot's newest segment (logged with what was cut),
 * quarantines corrupt records in the middle of a boot (the boot's events
 * from the corruption on are moved to .corrupt files, logged; the valid
 * prefix is kept) and keeps older boots' unacknowledged events for replay.
 *
 * Reading for sending: recent records stay in memory (up to cache_bytes,
 * plus everything not yet written); older ones are read back with pread().
 *
 * Full: at or above max_bytes (bytes on disk + bytes not yet written), or
 * while writes fail, the outbox is full; on_full(arg, 1) is called. It is
 * released below 90 % of max_bytes with writes working: on_full(arg, 0).
 *
 * Threading: loop thread only (fsync runs on the threadpool internally).
 * Ownership: the outbox owns its files, buffers and handles; data handed
 * to callbacks is borrowed for the call.
 */
#ifndef TRIB_AGENT_OUTBOX_H
#define TRIB_AGENT_OUTBOX_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define TRIB_OUTBOX_HEADER     40
#define TRIB_OUTBOX_REC_HEADER 16
#define TRIB_OUTBOX_RECORD_MAX (1u << 20) /* payload bytes per record */

struct trib_outbox;

struct trib_outbox_opts {
    const char *dir;        /* created (mode 0700) if missing           */
    uint64_t boot_id;       /* this process's boot (non-zero)            */
    int64_t started_at;     /* us since epoch                            */
    uint64_t segment_bytes; /* rotate a segment at this size             */
    uint64_t max_bytes;     /* full at this size                         */
    uint64_t fsync_ms;      /* fsync period (>= 1)                       */
    size_t cache_bytes;     /* written records kept in memory            */
    /* Backpressure transitions (may be NULL). */
    void (*on_full)(void *arg, int full);
    /* A meta record of an older boot, found while opening (may be NULL). */
    void (*on_meta)(void *arg, uint64_t boot_id, const void *payload,
                    size_t len);
    void *arg;
};

/* One boot held by the outbox. */
struct trib_outbox_boot {
    uint64_t boot_id;
    int64_t started_at;
    uint64_t first_seq; /* lowest event sequence still held             */
    uint64_t last_seq;  /* highest event sequence (0: none yet)         */
    uint64_t applied;   /* coordinator has up to here (send applied+1)  */
    uint64_t durable;   /* coordinator's disk has up to here            */
    int current;        /* this process's boot                          */
};

struct trib_outbox_stats {
    uint64_t events;    /* events not yet durable, all boots           */
    uint64_t bytes;     /* segment bytes on disk + bytes not written   */
    uint64_t unwritten; /* events waiting for a successful write      */
    int full;
    int write_failed; /* the last write failed (ENOSPC, EIO, EFBIG)  */
    int nboots;
};

/*
 * Opens (creating) the directory, takes its lock and loads older boots.
 * 0; TRIB_EBUSY (another process holds the directory); TRIB_EIO (cannot
 * create or read it; logged). Corrupt files never fail the open.
 */
int trib_outbox_open(uv_loop_t *loop, const struct trib_outbox_opts *opts,
                     struct trib_outbox **out);

/*
 * Appending: for each record, trib_outbox_record_begin() returns the
 * buffer to append exactly one payload to (e.g. with
 * trib_wire_event_encode()), then trib_outbox_record_end() seals it:
 * meta = 0 gives it the next event sequence (returned), meta = 1 makes it
 * a meta record (returns 0). trib_outbox_flush() writes every sealed
 * record with one pwrite(); until then nothing is visible to readers.
 * flush returns 0, or the write's error (the records are kept in memory
 * and retried; the outbox is full meanwhile).
 */
msgpack_sbuffer *trib_outbox_record_begin(struct trib_outbox *ob);
uint64_t trib_outbox_record_end(struct trib_outbox *ob, int meta);
int trib_outbox_flush(struct trib_outbox *ob);

/*
 * Appends to 'out' the payloads (concatenated event maps) of consecutive
 * events of boot 'boot_id' from 'seq' on: at most max_n events and, past
 * the first, at most max_bytes payload bytes. *n gets the count (0 when
 * seq is past the last event). 0; TRIB_ENOENT (unknown boot, or seq below
 * what is held); TRIB_EIO (read error or a record changed on disk:
 * logged).
 */
int trib_outbox_read(struct trib_outbox *ob, uint64_t boot_id, uint64_t seq,
                     size_t max_n, size_t max_bytes, msgpack_sbuffer *out,
                     size_t *n);

/*
 * The coordinator's positions for a boot. trib_outbox_ack() only moves
 * forward (an ACK); trib_outbox_set_position() sets 'applied' exactly (a
 * WELCOME after a coordinator restart, or a rewind to expected_seq - 1)
 * while 'durable' still only grows. Both delete what became durable and
 * may release the full state. Values past the boot's last event are
 * clamped. Unknown boots: TRIB_ENOENT.
 */
int trib_outbox_ack(struct trib_outbox *ob, uint64_t boot_id, uint64_t applied,
                    uint64_t durable);
int trib_outbox_set_position(struct trib_outbox *ob, uint64_t boot_id,
                             uint64_t applied, uint64_t durable);

/*
 * Older boots' meta records (write-back intents) may need resolving after
 * the open: trib_outbox_hold() keeps a boot's files, even acknowledged
 * ones, until released (hold = 0; what is durable is deleted then).
 * trib_outbox_append_meta() appends a meta record to an older boot's
 * newest segment and fsyncs it (or, for the current boot, writes it like
 * any record). 0; TRIB_ENOENT (boot not held); TRIB_EIO (logged).
 */
int trib_outbox_hold(struct trib_outbox *ob, uint64_t boot_id, int hold);
int trib_outbox_append_meta(struct trib_outbox *ob, uint64_t boot_id,
                            const void *payload, size_t len);

/*
 * Records that must outlive the events written with them (a write-back
 * intent until its confirm): trib_outbox_pin() returns a pin, and until
 * trib_outbox_unpin() releases it no file of the current boot that may
 * hold records appended from then on is deleted, even when its events are
 * all durable (or the outbox is full, or closing). Pins are few (one per
 * write-back in flight). An unpin takes effect once the records appended
 * after it (the confirm) are written -- or, on a failing disk, once every
 * event appended is durable at the coordinator (the intent then has
 * nothing left to recover); the next acknowledgement after that deletes
 * what became deletable.
 */
uint64_t trib_outbox_pin(struct trib_outbox *ob);
void trib_outbox_unpin(struct trib_outbox *ob, uint64_t pin);

/* The boots held, in replay order (older boots by start time, the current
 * boot last). Returns how many were written to out (at most max). */
int trib_outbox_boots(const struct trib_outbox *ob,
                      struct trib_outbox_boot *out, int max);
void trib_outbox_stats(const struct trib_outbox *ob,
                       struct trib_outbox_stats *st);
int trib_outbox_full(const struct trib_outbox *ob);
uint64_t trib_outbox_boot_id(const struct trib_outbox *ob);

/*
 * Closes: one last write attempt for unwritten records, a synchronous
 * fsync, a log line saying how many events stay for the next start.
 * Handles close asynchronously; the object is freed when they have
 * (the loop must run). NULL ok.
 */
void trib_outbox_close(struct trib_outbox *ob);

/* ---- segment file format (library-private; fuzz_outbox, tests) ------- */

enum trib__seg_status {
    TRIB_SEG_OK = 0,     /* every byte is a valid record              */
    TRIB_SEG_BAD_HEADER, /* short file, bad magic or header checksum  */
    TRIB_SEG_TORN,       /* invalid bytes from 'valid_len' to the end,
                            no valid record after them                */
    TRIB_SEG_CORRUPT,    /* invalid bytes at 'valid_len', followed by
                            at least one valid record at 'resync_at'  */
};

struct trib__seg_info {
    int status;
    uint64_t boot_id;
    int64_t started_at;
    uint64_t first_seq; /* from the header                            */
    uint64_t last_seq;  /* last event of the valid prefix (first - 1:
                           none)                                      */
    uint64_t valid_len; /* bytes of header + valid records            */
    uint64_t resync_at; /* TRIB_SEG_CORRUPT: next valid record        */
    uint64_t nevents, nmeta;
    /* Offsets of events first_seq + k * TRIB__SEG_INDEX_EVERY. Heap
     * (trib_free), may be NULL when nindex == 0. */
    uint32_t *index;
    size_t nindex;
};

#define TRIB__SEG_INDEX_EVERY 32

/* Parses one segment file's bytes. 'on_meta' (may be NULL) gets each meta
 * record of the valid prefix. Never fails: the result says what is valid.
 * Free info->index with trib_free(). */
void trib__seg_parse(
    const uint8_t *buf, size_t len, struct trib__seg_info *info,
    void (*on_meta)(void *arg, const void *payload, size_t len), void *arg);

/* Writes a segment header (TRIB_OUTBOX_HEADER bytes) into out. */
void trib__seg_header(uint8_t *out, uint64_t boot_id, int64_t started_at,
                      uint64_t first_seq);
/* Writes a record header for 'payload' into out (TRIB_OUTBOX_REC_HEADER
 * bytes). */
void trib__seg_record_header(uint8_t *out, uint64_t seq, const void *payload,
                             uint32_t len);

#endif /* TRIB_AGENT_OUTBOX_H */
