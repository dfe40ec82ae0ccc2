/*
 * outbox_int.h -- the outbox's structures, shared by outbox.c (appending,
 * reading, acknowledgements, fsync, closing) and outbox_load.c (opening a
 * directory). Library-private: use outbox.h.
 *
 * In memory:
 *
 *   trib_outbox
 *    |- boots          older boots (replay order), then the current one
 *    |    '- segs      its segment files, oldest first; the current
 *    |                 boot's last one is 'active' (appended to)
 *    |- open           records being built (record_begin/_end)
 *    '- chunks         sealed records of the current boot, one chunk per
 *                      flush, oldest first: written ones (a cache for
 *                      reading, up to cache_bytes) then unwritten ones
 *                      (kept until a write succeeds, never dropped)
 *
 * Threading: loop thread only.
 */
#ifndef TRIB_AGENT_OUTBOX_INT_H
#define TRIB_AGENT_OUTBOX_INT_H

#include "outbox.h"
#include "trib_log.h"

struct ob_seg {
    struct ob_seg *next;
    char *path;
    uint64_t first_seq, last_seq; /* events; last = first - 1: none */
    uint64_t size;                /* bytes written and valid          */
    int fd;                       /* write descriptor, or -1          */
    int active;                   /* appended to (current boot)       */
    int dirty;                    /* written since its fsync started  */
    int syncing;                  /* an fsync runs on fd              */
    uint32_t *index;              /* see trib__seg_info               */
    size_t nindex, cap;
};

struct ob_boot {
    struct ob_boot *next;
    struct trib_outbox_boot pub;
    struct ob_seg *segs, *tail;
    int held; /* trib_outbox_hold(): keep every file */
};

struct ob_chunk {
    struct ob_chunk *next;
    uint64_t first_seq, last_seq; /* events; last = first - 1: none */
    char *data;                   /* records with headers (malloc)  */
    size_t len;
    uint32_t *offs; /* offs[i]: record of event first_seq + i      */
    int written;
};

struct trib_outbox {
    uv_loop_t *loop;
    struct trib_outbox_opts o;
    char *dir;
    int lock_fd, dir_fd;
    int dir_dirty;
    struct ob_boot *boots; /* replay order; 'cur' is the last */
    struct ob_boot *cur;
    uint64_t next_seq; /* next event sequence of the current boot */

    /* records being built */
    msgpack_sbuffer open;
    size_t rec_start;
    uint32_t *open_offs;
    size_t open_n, open_cap;
    uint64_t open_first;

    /* sealed records of the current boot */
    struct ob_chunk *chunks, *chunks_tail, *unwritten;
    size_t cached_bytes;      /* written chunks still in memory */
    uint64_t unwritten_bytes; /* chunks not yet written         */
    uint64_t unwritten_events;
    struct ob_chunk *mc_chunk; /* read cursor in memory          */

    uint64_t disk_bytes;
    int full, write_failed;
    struct trib_complain write_complain;
    struct trib_complain sync_complain; /* fsync failures (rate-limited) */

    /* fsync */
    uv_timer_t sync_timer, retry_timer;
    uv_fs_t fsync_req;
    struct ob_seg *syncing_seg; /* NULL: the directory (when busy)  */
    int fsync_busy;
    struct ob_seg *retired; /* deleted while their fsync ran        */

    /* read cursor in the files */
    int rd_fd;
    const struct ob_seg *rd_seg;
    uint64_t rd_seq, rd_off;
    uint8_t *rd_buf;
    size_t rd_cap;

    /* trib_outbox_pin(): sequences from which the current boot's files
     * are kept (small: one per write-back in flight). An unpinned one
     * stays, 'released', until what was appended after it is written or
     * every event is durable (drop_released()). */
    struct ob_pin {
        uint64_t seq;
        int released;
    } * pins;
    size_t npins, pins_cap;

    int closing, open_handles;
};

/* "<dir>/<boot>-<first>.seg" (heap, trib_free). */
char *trib__ob_seg_path(const char *dir, uint64_t boot_id, uint64_t first);
/* Closes its descriptor and frees it. */
void trib__ob_seg_free(struct ob_seg *s);
/* mkdir -p (mode 0700): 0 or -1 (errno). */
int trib__ob_mkdirs(const char *dir);
/* Loads the older boots found in ob->dir into ob->boots, in replay order:
 * 0, or -1 when the directory cannot be read (errno). */
int trib__ob_scan(struct trib_outbox *ob);

#endif /* TRIB_AGENT_OUTBOX_INT_H */
