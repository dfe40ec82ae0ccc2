/*
 * outbox.c -- the durable event outbox (outbox.h has the contract and the
 * file format; outbox_seg.c encodes and parses segment files).
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
 * fsync: a timer every fsync_ms starts uv_fs_fdatasync on the first dirty
 * segment (then the next, then the directory after a file was created or
 * deleted); one request at a time. A segment's descriptor stays open while
 * its fsync runs, even if the segment was rotated out or deleted meanwhile.
 */
#include "outbox.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define RETRY_MS       1000
#define READ_BLOCK     (256u << 10)
#define SEG_FILE_MAX   (1ull << 31) /* larger files are not ours */
#define RESUME_PERCENT 90

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

    int closing, open_handles;
};

static void update_full(struct trib_outbox *ob);
static void collect(struct trib_outbox *ob, struct ob_boot *b);

/* -------------------------------------------------------------- helpers */

static char *seg_path(const char *dir, uint64_t boot_id, uint64_t first)
{
    size_t n = strlen(dir) + 48;
    char *p = trib_malloc(n);

    snprintf(p, n, "%s/%016" PRIx64 "-%016" PRIx64 ".seg", dir, boot_id, first);
    return p;
}

static struct ob_boot *find_boot(const struct trib_outbox *ob, uint64_t id)
{
    struct ob_boot *b;

    for (b = ob->boots; b != NULL; b = b->next) {
        if (b->pub.boot_id == id) {
            return b;
        }
    }
    return NULL;
}

static void seg_index_push(struct ob_seg *s, uint64_t off)
{
    if (s->nindex == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->index = trib_realloc(s->index, s->cap * sizeof(uint32_t));
    }
    s->index[s->nindex++] = (uint32_t)off;
}

static void close_rd(struct trib_outbox *ob)
{
    if (ob->rd_fd >= 0) {
        close(ob->rd_fd);
    }
    ob->rd_fd = -1;
    ob->rd_seg = NULL;
}

static void seg_free(struct ob_seg *s)
{
    if (s->fd >= 0) {
        close(s->fd);
    }
    trib_free(s->path);
    trib_free(s->index);
    trib_free(s);
}

/* A segment leaves its boot: freed now, or after its running fsync. */
static void seg_retire(struct trib_outbox *ob, struct ob_seg *s)
{
    if (ob->rd_seg == s) {
        close_rd(ob);
    }
    if (s->syncing) {
        s->next = ob->retired;
        ob->retired = s;
        return;
    }
    seg_free(s);
}

/* The first event sequence the current boot still holds. */
static uint64_t cur_first(const struct trib_outbox *ob)
{
    const struct ob_chunk *c;

    if (ob->cur->segs != NULL) {
        return ob->cur->segs->first_seq;
    }
    for (c = ob->chunks; c != NULL; c = c->next) {
        if (c->last_seq >= c->first_seq) {
            return c->first_seq;
        }
    }
    return ob->next_seq;
}

static void chunk_free(struct ob_chunk *c)
{
    free(c->data); /* msgpack_sbuffer memory */
    trib_free(c->offs);
    trib_free(c);
}

/* ---------------------------------------------------------- appending */

msgpack_sbuffer *trib_outbox_record_begin(struct trib_outbox *ob)
{
    static const char zeros[TRIB_OUTBOX_REC_HEADER];

    if (ob->open.size == 0) {
        ob->open_first = ob->next_seq;
        ob->open_n = 0;
    }
    ob->rec_start = ob->open.size;
    msgpack_sbuffer_write(&ob->open, zeros, sizeof(zeros));
    return &ob->open;
}

uint64_t trib_outbox_record_end(struct trib_outbox *ob, int meta)
{
    size_t plen = ob->open.size - ob->rec_start - TRIB_OUTBOX_REC_HEADER;
    uint8_t *rec = (uint8_t *)ob->open.data + ob->rec_start;
    uint64_t seq = 0;

    if (plen == 0 || plen > TRIB_OUTBOX_RECORD_MAX) {
        /* An encoder bug, not data: refuse the record, keep going. */
        TRIB_ERROR("AGT-OUTBOX",
                   "refusing a %zu-byte record (limit %u): not stored", plen,
                   TRIB_OUTBOX_RECORD_MAX);
        ob->open.size = ob->rec_start;
        return 0;
    }
    if (!meta) {
        seq = ob->next_seq++;
        if (ob->open_n == ob->open_cap) {
            ob->open_cap = ob->open_cap ? ob->open_cap * 2 : 64;
            ob->open_offs =
                trib_realloc(ob->open_offs, ob->open_cap * sizeof(uint32_t));
        }
        ob->open_offs[ob->open_n++] = (uint32_t)ob->rec_start;
    }
    trib__seg_record_header(rec, seq, rec + TRIB_OUTBOX_REC_HEADER,
                            (uint32_t)plen);
    return seq;
}

/* Opens a new active segment for the current boot at 'first'. */
static int seg_create(struct trib_outbox *ob, uint64_t first,
                      struct ob_seg **out)
{
    struct ob_seg *s;
    uint8_t hdr[TRIB_OUTBOX_HEADER];
    char *path = seg_path(ob->dir, ob->cur->pub.boot_id, first);
    int fd, err;
    ssize_t n;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno;
        goto fail;
    }
    trib__seg_header(hdr, ob->cur->pub.boot_id, ob->cur->pub.started_at, first);
    n = pwrite(fd, hdr, sizeof(hdr), 0);
    if (n != (ssize_t)sizeof(hdr)) {
        err = n < 0 ? errno : ENOSPC;
        close(fd);
        unlink(path);
        goto fail;
    }
    s = TRIB_NEW(struct ob_seg);
    s->path = path;
    s->first_seq = first;
    s->last_seq = first - 1;
    s->size = TRIB_OUTBOX_HEADER;
    s->fd = fd;
    s->active = 1;
    s->dirty = 1;
    if (ob->cur->tail != NULL) {
        ob->cur->tail->next = s;
    } else {
        ob->cur->segs = s;
    }
    ob->cur->tail = s;
    ob->disk_bytes += TRIB_OUTBOX_HEADER;
    ob->dir_dirty = 1;
    *out = s;
    return 0;

fail:
    trib_complain(&ob->write_complain, TRIB_LOG_ERROR, "AGT-OUTBOX",
                  "cannot create outbox segment %s: %s", path, strerror(err));
    trib_free(path);
    errno = err;
    return TRIB_EIO;
}

/* The active segment stops being appended to. */
static void seg_deactivate(struct ob_seg *s)
{
    s->active = 0;
    if (!s->dirty && !s->syncing && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* pwrite() of a whole chunk at the end of the active segment. */
static int write_chunk(struct trib_outbox *ob, struct ob_chunk *c)
{
    struct ob_seg *s = ob->cur->tail;
    size_t done = 0, i;
    int rv;

    if (s != NULL && s->active && s->size >= ob->o.segment_bytes &&
        s->last_seq >= s->first_seq) {
        seg_deactivate(s); /* rotate (never a segment without events) */
    }
    if (s == NULL || !s->active) {
        rv = seg_create(ob, c->first_seq, &s);
        if (rv != 0) {
            return rv;
        }
    }
    while (done < c->len) {
        ssize_t n = pwrite(s->fd, c->data + done, c->len - done,
                           (off_t)(s->size + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int err = n < 0 ? errno : ENOSPC;
            /* Drop the partial record now (best effort); the retry
             * writes at the same offset anyway. */
            if (ftruncate(s->fd, (off_t)s->size) != 0) {
                TRIB_DEBUG("AGT-OUTBOX", "ftruncate %s: %s", s->path,
                           strerror(errno));
            }
            trib_complain(&ob->write_complain, TRIB_LOG_ERROR, "AGT-OUTBOX",
                          "cannot write %zu bytes to %s: %s; %" PRIu64
                          " event(s) kept in memory, fetching paused, "
                          "retrying every %d s",
                          c->len, s->path, strerror(err), ob->unwritten_events,
                          RETRY_MS / 1000);
            errno = err;
            return TRIB_EIO;
        }
        done += (size_t)n;
    }
    for (i = 0; c->first_seq + i <= c->last_seq; i++) {
        if ((c->first_seq + i - s->first_seq) % TRIB__SEG_INDEX_EVERY == 0) {
            seg_index_push(s, s->size + c->offs[i]);
        }
    }
    if (c->last_seq >= c->first_seq) {
        s->last_seq = c->last_seq;
    }
    s->size += c->len;
    s->dirty = 1;
    ob->disk_bytes += c->len;
    c->written = 1;
    return 0;
}

static void evict(struct trib_outbox *ob)
{
    while (ob->chunks != NULL && ob->chunks->written &&
           ob->cached_bytes > ob->o.cache_bytes) {
        struct ob_chunk *c = ob->chunks;
        ob->chunks = c->next;
        if (ob->chunks == NULL) {
            ob->chunks_tail = NULL;
        }
        if (ob->mc_chunk == c) {
            ob->mc_chunk = NULL;
        }
        ob->cached_bytes -= c->len;
        chunk_free(c);
    }
}

static void on_retry(uv_timer_t *t);

/* Writes every unwritten chunk, in order, until one fails. */
static int write_pending(struct trib_outbox *ob)
{
    int rv = 0;

    while (ob->unwritten != NULL) {
        struct ob_chunk *c = ob->unwritten;
        rv = write_chunk(ob, c);
        if (rv != 0) {
            break;
        }
        ob->unwritten = c->next;
        ob->unwritten_bytes -= c->len;
        ob->unwritten_events -= c->last_seq + 1 - c->first_seq;
        ob->cached_bytes += c->len;
    }
    if (rv != 0) {
        ob->write_failed = 1;
        if (!ob->closing && !uv_is_active((uv_handle_t *)&ob->retry_timer)) {
            uv_timer_start(&ob->retry_timer, on_retry, RETRY_MS, 0);
        }
    } else if (ob->write_failed) {
        ob->write_failed = 0;
        trib_complain_release(&ob->write_complain, "AGT-OUTBOX",
                              "outbox writes work again");
    }
    evict(ob);
    update_full(ob);
    return rv;
}

static void on_retry(uv_timer_t *t)
{
    write_pending(t->data);
}

int trib_outbox_flush(struct trib_outbox *ob)
{
    struct ob_chunk *c;

    if (ob->open.size == 0) {
        return ob->write_failed ? TRIB_EIO : 0;
    }
    c = TRIB_NEW(struct ob_chunk);
    c->first_seq = ob->open_first;
    c->last_seq = ob->open_first + ob->open_n - 1;
    c->len = ob->open.size;
    c->data = msgpack_sbuffer_release(&ob->open);
    c->offs = ob->open_offs;
    ob->open_offs = NULL;
    ob->open_n = ob->open_cap = 0;
    if (ob->chunks_tail != NULL) {
        ob->chunks_tail->next = c;
    } else {
        ob->chunks = c;
    }
    ob->chunks_tail = c;
    if (c->last_seq >= c->first_seq) {
        ob->cur->pub.last_seq = c->last_seq; /* now readable */
    }
    ob->unwritten_bytes += c->len;
    ob->unwritten_events += c->last_seq + 1 - c->first_seq;
    if (ob->unwritten == NULL) {
        ob->unwritten = c;
    } else {
        return TRIB_EIO; /* earlier chunks wait for the retry: keep order */
    }
    return write_pending(ob);
}

/* ------------------------------------------------------------ reading */

static int append_payload(msgpack_sbuffer *out, const uint8_t *rec)
{
    uint32_t len = (uint32_t)rec[0] | (uint32_t)rec[1] << 8 |
                   (uint32_t)rec[2] << 16 | (uint32_t)rec[3] << 24;

    msgpack_sbuffer_write(out, (const char *)rec + TRIB_OUTBOX_REC_HEADER, len);
    return (int)len;
}

static uint32_t rec_len(const uint8_t *rec)
{
    return (uint32_t)rec[0] | (uint32_t)rec[1] << 8 | (uint32_t)rec[2] << 16 |
           (uint32_t)rec[3] << 24;
}

/* Reads events from memory; 'seq' is in a chunk. */
static void read_mem(struct trib_outbox *ob, uint64_t *seq, size_t max_n,
                     size_t max_bytes, msgpack_sbuffer *out, size_t *n,
                     size_t *bytes)
{
    struct ob_chunk *c = ob->mc_chunk;

    if (c == NULL || *seq < c->first_seq || *seq > c->last_seq) {
        for (c = ob->chunks; c != NULL; c = c->next) {
            if (*seq >= c->first_seq && *seq <= c->last_seq) {
                break;
            }
        }
    }
    for (; c != NULL && *n < max_n; c = c->next) {
        while (*seq <= c->last_seq && *n < max_n) {
            const uint8_t *rec =
                (const uint8_t *)c->data + c->offs[*seq - c->first_seq];
            uint32_t len = rec_len(rec);
            if (*n > 0 && *bytes + len > max_bytes) {
                ob->mc_chunk = c;
                return;
            }
            append_payload(out, rec);
            *bytes += len;
            (*n)++;
            (*seq)++;
        }
        ob->mc_chunk = c;
    }
}

/* Makes [off, off + need) of the read descriptor's file available in
 * rd_buf, reading at least a block. Returns the bytes available (less at
 * the end of the valid data). */
static size_t rd_fill(struct trib_outbox *ob, const struct ob_seg *s,
                      uint64_t off, size_t need, int *err)
{
    size_t want = need > READ_BLOCK ? need : READ_BLOCK;
    size_t got = 0;

    if (off + want > s->size) {
        want = (size_t)(s->size - off);
    }
    if (want > ob->rd_cap) {
        ob->rd_buf = trib_realloc(ob->rd_buf, want);
        ob->rd_cap = want;
    }
    while (got < want) {
        ssize_t r =
            pread(ob->rd_fd, ob->rd_buf + got, want - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            *err = r < 0 ? errno : EIO;
            return 0;
        }
        got += (size_t)r;
    }
    return got;
}

static int corrupt(const struct ob_seg *s, uint64_t off, const char *why)
{
    TRIB_ERROR("AGT-OUTBOX",
               "%s: record at offset %" PRIu64 " %s; the events from there "
               "cannot be sent (the file was changed after it was written)",
               s->path, off, why);
    return TRIB_EIO;
}

/* Reads events of segment s from *seq on. */
static int read_file(struct trib_outbox *ob, const struct ob_seg *s,
                     uint64_t *seq, size_t max_n, size_t max_bytes,
                     msgpack_sbuffer *out, size_t *n, size_t *bytes)
{
    uint64_t off, at;
    size_t k, avail = 0, pos = 0;
    int err = 0;

    if (ob->rd_seg != s) {
        close_rd(ob);
        ob->rd_fd = open(s->path, O_RDONLY | O_CLOEXEC);
        if (ob->rd_fd < 0) {
            TRIB_ERROR("AGT-OUTBOX", "cannot open %s: %s", s->path,
                       strerror(errno));
            return TRIB_EIO;
        }
        ob->rd_seg = s;
        ob->rd_seq = 0;
    }
    if (ob->rd_seq == *seq) {
        off = ob->rd_off;
        at = *seq;
    } else {
        k = (size_t)((*seq - s->first_seq) / TRIB__SEG_INDEX_EVERY);
        if (k >= s->nindex) {
            return corrupt(s, 0, "is missing from the index");
        }
        off = s->index[k];
        at = s->first_seq + (uint64_t)k * TRIB__SEG_INDEX_EVERY;
    }
    while (*n < max_n && at <= s->last_seq && off < s->size) {
        const uint8_t *rec;
        uint32_t len;
        uint64_t rseq;

        if (avail - pos < TRIB_OUTBOX_REC_HEADER) {
            avail = rd_fill(ob, s, off, TRIB_OUTBOX_REC_HEADER, &err);
            pos = 0;
            if (avail < TRIB_OUTBOX_REC_HEADER) {
                break;
            }
        }
        len = rec_len(ob->rd_buf + pos);
        if (len == 0 || len > TRIB_OUTBOX_RECORD_MAX) {
            return corrupt(s, off, "has an invalid length");
        }
        if (avail - pos < TRIB_OUTBOX_REC_HEADER + (size_t)len) {
            avail = rd_fill(ob, s, off, TRIB_OUTBOX_REC_HEADER + len, &err);
            pos = 0;
            if (avail < TRIB_OUTBOX_REC_HEADER + (size_t)len) {
                if (err == 0) {
                    return corrupt(s, off, "is cut short");
                }
                break;
            }
        }
        rec = ob->rd_buf + pos;
        rseq = (uint64_t)rec_len(rec + 8) | (uint64_t)rec_len(rec + 12) << 32;
        if ((uint32_t)crc32(0, rec + 8, 8 + len) != rec_len(rec + 4)) {
            return corrupt(s, off, "fails its checksum");
        }
        if (rseq != 0 && rseq != at) {
            return corrupt(s, off, "has an unexpected sequence");
        }
        if (rseq != 0 && at >= *seq) {
            if (*n > 0 && *bytes + len > max_bytes) {
                break;
            }
            append_payload(out, rec);
            *bytes += len;
            (*n)++;
            (*seq)++;
        }
        if (rseq != 0) {
            at++;
        }
        off += TRIB_OUTBOX_REC_HEADER + len;
        pos += TRIB_OUTBOX_REC_HEADER + len;
    }
    if (err != 0) {
        TRIB_ERROR("AGT-OUTBOX", "cannot read %s: %s", s->path, strerror(err));
        close_rd(ob);
        return TRIB_EIO;
    }
    ob->rd_seq = at;
    ob->rd_off = off;
    return 0;
}

int trib_outbox_read(struct trib_outbox *ob, uint64_t boot_id, uint64_t seq,
                     size_t max_n, size_t max_bytes, msgpack_sbuffer *out,
                     size_t *n)
{
    struct ob_boot *b = find_boot(ob, boot_id);
    size_t bytes = 0;
    int rv;

    *n = 0;
    if (b == NULL || seq == 0) {
        return TRIB_ENOENT;
    }
    if (seq < b->pub.first_seq) {
        return TRIB_ENOENT;
    }
    while (*n < max_n && seq <= b->pub.last_seq) {
        size_t before = *n;
        const struct ob_seg *s;

        if (b == ob->cur && ob->chunks != NULL &&
            seq >= ob->chunks->first_seq) {
            read_mem(ob, &seq, max_n, max_bytes, out, n, &bytes);
        } else {
            for (s = b->segs; s != NULL; s = s->next) {
                if (seq >= s->first_seq && seq <= s->last_seq) {
                    break;
                }
            }
            if (s == NULL) {
                TRIB_ERROR("AGT-OUTBOX",
                           "event %" PRIu64 " of boot %016" PRIx64
                           " is in no segment",
                           seq, boot_id);
                return TRIB_EIO;
            }
            rv = read_file(ob, s, &seq, max_n, max_bytes, out, n, &bytes);
            if (rv != 0) {
                return rv;
            }
        }
        if (*n == before) {
            break; /* the byte budget is spent */
        }
    }
    return 0;
}

/* --------------------------------------------------- acknowledgements */

static void update_full(struct trib_outbox *ob)
{
    uint64_t bytes = ob->disk_bytes + ob->unwritten_bytes;

    if (!ob->full && (ob->write_failed || bytes >= ob->o.max_bytes)) {
        if (!ob->write_failed) {
            /* Full of undelivered events? An active segment already
             * acknowledged is the one thing we can free now. */
            ob->full = 1;
            collect(ob, ob->cur);
            ob->full = 0;
            if (ob->disk_bytes + ob->unwritten_bytes < ob->o.max_bytes) {
                return;
            }
        }
        ob->full = 1;
        if (ob->o.on_full != NULL) {
            ob->o.on_full(ob->o.arg, 1);
        }
    } else if (ob->full && !ob->write_failed &&
               bytes < ob->o.max_bytes / 100 * RESUME_PERCENT) {
        ob->full = 0;
        if (ob->o.on_full != NULL) {
            ob->o.on_full(ob->o.arg, 0);
        }
    }
}

static void boot_remove(struct trib_outbox *ob, struct ob_boot *b)
{
    struct ob_boot **pp;

    for (pp = &ob->boots; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    }
    trib_free(b);
}

/* Deletes the boot's segments whose events are all durable. */
static void collect(struct trib_outbox *ob, struct ob_boot *b)
{
    struct ob_seg *s;

    while ((s = b->segs) != NULL && s->last_seq <= b->pub.durable) {
        if (s->active) {
            /* Still appended to: only when the outbox is full (or
             * closing) and it holds events, make room by rotating. */
            if (!(ob->full || ob->closing) || s->last_seq < s->first_seq ||
                ob->unwritten != NULL) {
                break;
            }
            seg_deactivate(s);
        }
        if (unlink(s->path) != 0 && errno != ENOENT) {
            TRIB_WARN("AGT-OUTBOX", "cannot delete %s: %s", s->path,
                      strerror(errno));
        }
        ob->disk_bytes -= s->size;
        ob->dir_dirty = 1;
        b->segs = s->next;
        if (b->segs == NULL) {
            b->tail = NULL;
        }
        seg_retire(ob, s);
    }
    if (b == ob->cur) {
        b->pub.first_seq = cur_first(ob);
    } else if (b->segs == NULL) {
        TRIB_INFO("AGT-OUTBOX",
                  "boot %016" PRIx64 ": all %" PRIu64
                  " event(s) delivered and durable",
                  b->pub.boot_id, b->pub.last_seq);
        boot_remove(ob, b);
    } else {
        b->pub.first_seq = b->segs->first_seq;
    }
}

static int set_pos(struct trib_outbox *ob, uint64_t boot_id, uint64_t applied,
                   uint64_t durable, int exact)
{
    struct ob_boot *b = find_boot(ob, boot_id);

    if (b == NULL) {
        return TRIB_ENOENT;
    }
    if (durable > b->pub.last_seq) {
        durable = b->pub.last_seq;
    }
    if (applied > b->pub.last_seq) {
        applied = b->pub.last_seq;
    }
    if (durable > b->pub.durable) {
        b->pub.durable = durable;
    }
    if (exact || applied > b->pub.applied) {
        b->pub.applied = applied;
    }
    if (b->pub.applied < b->pub.durable) {
        b->pub.applied = b->pub.durable;
    }
    if (b->pub.applied + 1 < b->pub.first_seq) {
        b->pub.applied = b->pub.first_seq - 1;
    }
    collect(ob, b);
    update_full(ob);
    return 0;
}

int trib_outbox_ack(struct trib_outbox *ob, uint64_t boot_id, uint64_t applied,
                    uint64_t durable)
{
    return set_pos(ob, boot_id, applied, durable, 0);
}

int trib_outbox_set_position(struct trib_outbox *ob, uint64_t boot_id,
                             uint64_t applied, uint64_t durable)
{
    return set_pos(ob, boot_id, applied, durable, 1);
}

int trib_outbox_boots(const struct trib_outbox *ob,
                      struct trib_outbox_boot *out, int max)
{
    const struct ob_boot *b;
    int n = 0;

    for (b = ob->boots; b != NULL && n < max; b = b->next) {
        out[n++] = b->pub;
    }
    return n;
}

void trib_outbox_stats(const struct trib_outbox *ob,
                       struct trib_outbox_stats *st)
{
    const struct ob_boot *b;

    memset(st, 0, sizeof(*st));
    for (b = ob->boots; b != NULL; b = b->next) {
        st->events += b->pub.last_seq - b->pub.durable;
        st->nboots++;
    }
    st->bytes = ob->disk_bytes + ob->unwritten_bytes;
    st->unwritten = ob->unwritten_events;
    st->full = ob->full;
}

int trib_outbox_full(const struct trib_outbox *ob)
{
    return ob->full;
}

uint64_t trib_outbox_boot_id(const struct trib_outbox *ob)
{
    return ob->cur->pub.boot_id;
}

/* -------------------------------------------------------------- fsync */

/* The last step of closing, once no handle or request is left. */
static void ob_free(struct trib_outbox *ob)
{
    while (ob->retired != NULL) {
        struct ob_seg *s = ob->retired;
        ob->retired = s->next;
        seg_free(s);
    }
    trib_free(ob->dir);
    trib_free(ob);
}

static void sync_next(struct trib_outbox *ob);

static void on_fsync(uv_fs_t *req)
{
    struct trib_outbox *ob = req->data;
    struct ob_seg *s = ob->syncing_seg, **pp;
    int rv = (int)req->result;

    uv_fs_req_cleanup(req);
    ob->fsync_busy = 0;
    if (s != NULL) {
        s->syncing = 0;
        for (pp = &ob->retired; *pp != NULL; pp = &(*pp)->next) {
            if (*pp == s) { /* deleted meanwhile */
                *pp = s->next;
                seg_free(s);
                s = NULL;
                break;
            }
        }
    }
    if (rv < 0) {
        TRIB_ERROR("AGT-OUTBOX", "fsync of %s failed: %s",
                   s != NULL ? s->path : ob->dir, uv_strerror(rv));
        if (s != NULL) {
            s->dirty = 1;
        } else {
            ob->dir_dirty = 1;
        }
    } else if (s != NULL && !s->active && !s->dirty && s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (ob->closing) {
        if (--ob->open_handles == 0) {
            ob_free(ob);
        }
        return;
    }
    if (rv >= 0) {
        sync_next(ob);
    }
}

static void sync_next(struct trib_outbox *ob)
{
    struct ob_seg *s;

    if (ob->fsync_busy || ob->closing) {
        return;
    }
    for (s = ob->cur->segs; s != NULL; s = s->next) {
        if (s->dirty && s->fd >= 0) {
            break;
        }
    }
    ob->fsync_req.data = ob;
    if (s != NULL) {
        s->dirty = 0;
        s->syncing = 1;
        ob->syncing_seg = s;
        ob->fsync_busy = 1;
        uv_fs_fdatasync(ob->loop, &ob->fsync_req, s->fd, on_fsync);
    } else if (ob->dir_dirty) {
        ob->dir_dirty = 0;
        ob->syncing_seg = NULL;
        ob->fsync_busy = 1;
        uv_fs_fsync(ob->loop, &ob->fsync_req, ob->dir_fd, on_fsync);
    }
}

static void on_sync_timer(uv_timer_t *t)
{
    sync_next(t->data);
}

/* ------------------------------------------------------------ opening */

static int mkdirs(const char *dir)
{
    char *p = trib_strdup(dir), *s;
    int rv = 0;

    for (s = p + 1; *s != '\0'; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                rv = -1;
            }
            *s = '/';
        }
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        rv = -1;
    }
    trib_free(p);
    return rv;
}

struct seg_name {
    uint64_t boot_id, first;
    char *path;
};

static int cmp_names(const void *a, const void *b)
{
    const struct seg_name *x = a, *y = b;

    if (x->boot_id != y->boot_id) {
        return x->boot_id < y->boot_id ? -1 : 1;
    }
    return x->first < y->first ? -1 : x->first > y->first;
}

/* "<16 hex>-<16 hex>.seg" */
static int parse_name(const char *name, uint64_t *boot, uint64_t *first)
{
    char *end;
    size_t i;

    if (strlen(name) != 37 || name[16] != '-' || strcmp(name + 33, ".seg")) {
        return 0;
    }
    for (i = 0; i < 33; i++) {
        if (i != 16 && !((name[i] >= '0' && name[i] <= '9') ||
                         (name[i] >= 'a' && name[i] <= 'f'))) {
            return 0;
        }
    }
    *boot = strtoull(name, &end, 16);
    *first = strtoull(name + 17, &end, 16);
    return *first != 0;
}

/* Moves bytes [from, end) of 'path' to a new quarantine file and cuts
 * them from 'path' (from == 0: the whole file moves). */
static void quarantine(const char *path, uint64_t from, const uint8_t *buf,
                       size_t len)
{
    char q[4096];
    int i, fd;

    for (i = 0; i < 1000; i++) {
        snprintf(q, sizeof(q), i ? "%s.corrupt.%d" : "%s.corrupt", path, i);
        if (access(q, F_OK) != 0) {
            break;
        }
    }
    if (from == 0) {
        if (rename(path, q) != 0) {
            TRIB_ERROR("AGT-OUTBOX", "cannot rename %s to %s: %s", path, q,
                       strerror(errno));
        }
        return;
    }
    fd = open(q, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf + from, len - from) != (ssize_t)(len - from)) {
        TRIB_ERROR("AGT-OUTBOX", "cannot write %s: %s", q, strerror(errno));
    }
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (truncate(path, (off_t)from) != 0) {
        TRIB_ERROR("AGT-OUTBOX", "cannot truncate %s: %s", path,
                   strerror(errno));
    }
}

static int read_whole(const char *path, uint8_t **buf, size_t *len)
{
    struct stat st;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if ((uint64_t)st.st_size > SEG_FILE_MAX) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    *len = (size_t)st.st_size;
    *buf = trib_malloc(*len ? *len : 1);
    while (got < *len) {
        ssize_t r = read(fd, *buf + got, *len - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

struct meta_ctx {
    struct trib_outbox *ob;
    uint64_t boot_id;
};

static void meta_cb(void *arg, const void *payload, size_t len)
{
    struct meta_ctx *m = arg;

    if (m->ob->o.on_meta != NULL) {
        m->ob->o.on_meta(m->ob->o.arg, m->boot_id, payload, len);
    }
}

/* Loads one older boot's files (sorted by first sequence). */
static void load_boot(struct trib_outbox *ob, struct seg_name *f, size_t nf)
{
    struct ob_boot *b = TRIB_NEW(struct ob_boot);
    struct meta_ctx mc = {ob, f[0].boot_id};
    uint64_t expect = 0;
    int broken = 0;
    size_t i;

    b->pub.boot_id = f[0].boot_id;
    for (i = 0; i < nf; i++) {
        struct trib__seg_info info;
        struct ob_seg *s;
        uint8_t *buf = NULL;
        size_t len = 0;

        if (broken) {
            TRIB_ERROR("AGT-OUTBOX",
                       "%s: follows a corrupt or missing part of boot "
                       "%016" PRIx64 ": quarantined (not forwarded)",
                       f[i].path, b->pub.boot_id);
            quarantine(f[i].path, 0, NULL, 0);
            continue;
        }
        if (read_whole(f[i].path, &buf, &len) != 0) {
            TRIB_ERROR("AGT-OUTBOX", "cannot read %s: %s: quarantined",
                       f[i].path, strerror(errno));
            quarantine(f[i].path, 0, NULL, 0);
            broken = 1;
            continue;
        }
        trib__seg_parse(buf, len, &info, meta_cb, &mc);
        if (info.status != TRIB_SEG_BAD_HEADER &&
            (info.boot_id != f[i].boot_id || info.first_seq != f[i].first)) {
            info.status = TRIB_SEG_BAD_HEADER; /* renamed or copied */
        }
        if (info.status == TRIB_SEG_BAD_HEADER) {
            if (len < TRIB_OUTBOX_HEADER && i == nf - 1) {
                /* created, header never fully written: nothing in it */
                TRIB_WARN("AGT-OUTBOX", "%s: empty segment (%zu bytes) removed",
                          f[i].path, len);
                unlink(f[i].path);
            } else {
                TRIB_ERROR("AGT-OUTBOX",
                           "%s: invalid segment header: quarantined (not "
                           "forwarded)",
                           f[i].path);
                quarantine(f[i].path, 0, NULL, 0);
                broken = 1;
            }
            trib_free(info.index);
            trib_free(buf);
            continue;
        }
        if (expect != 0 && info.nevents > 0 && info.first_seq != expect) {
            TRIB_ERROR("AGT-OUTBOX",
                       "boot %016" PRIx64 ": events %" PRIu64 "..%" PRIu64
                       " are missing before %s",
                       b->pub.boot_id, expect, info.first_seq - 1, f[i].path);
            trib_free(info.index);
            trib_free(buf);
            broken = 1;
            i--; /* quarantine this file too */
            continue;
        }
        if (info.status == TRIB_SEG_TORN) {
            TRIB_WARN("AGT-OUTBOX",
                      "%s: cut a torn tail of %zu byte(s) at offset %" PRIu64
                      " (an interrupted write; last good event %" PRIu64 ")",
                      f[i].path, len - (size_t)info.valid_len, info.valid_len,
                      info.last_seq);
            if (truncate(f[i].path, (off_t)info.valid_len) != 0) {
                TRIB_ERROR("AGT-OUTBOX", "cannot truncate %s: %s", f[i].path,
                           strerror(errno));
            }
        } else if (info.status == TRIB_SEG_CORRUPT) {
            TRIB_ERROR("AGT-OUTBOX",
                       "%s: corrupt record at offset %" PRIu64
                       " (after event %" PRIu64 "): this boot's events from "
                       "there on are quarantined in %s.corrupt and later "
                       "files, and will not be forwarded",
                       f[i].path, info.valid_len, info.last_seq, f[i].path);
            quarantine(f[i].path, info.valid_len, buf, len);
            broken = 1;
        }
        trib_free(buf);
        if (info.nevents == 0) {
            unlink(f[i].path); /* nothing to forward; metas were read */
            trib_free(info.index);
            continue;
        }
        s = TRIB_NEW(struct ob_seg);
        s->path = f[i].path;
        f[i].path = NULL;
        s->first_seq = info.first_seq;
        s->last_seq = info.last_seq;
        s->size = info.valid_len;
        s->fd = -1;
        s->index = info.index;
        s->nindex = s->cap = info.nindex;
        if (b->tail != NULL) {
            b->tail->next = s;
        } else {
            b->segs = s;
            b->pub.started_at = info.started_at;
        }
        b->tail = s;
        ob->disk_bytes += s->size;
        expect = info.last_seq + 1;
    }
    if (b->segs == NULL) {
        trib_free(b);
        return;
    }
    b->pub.first_seq = b->segs->first_seq;
    b->pub.last_seq = b->tail->last_seq;
    b->pub.applied = b->pub.durable = b->pub.first_seq - 1;
    b->next = ob->boots;
    ob->boots = b;
}

static int cmp_boots(const void *a, const void *b)
{
    const struct ob_boot *x = *(struct ob_boot *const *)a;
    const struct ob_boot *y = *(struct ob_boot *const *)b;

    if (x->pub.started_at != y->pub.started_at) {
        return x->pub.started_at < y->pub.started_at ? -1 : 1;
    }
    return x->pub.boot_id < y->pub.boot_id ? -1 : 1;
}

/* Reads the directory; older boots end up in ob->boots, sorted. */
static int scan(struct trib_outbox *ob)
{
    DIR *d = opendir(ob->dir);
    struct dirent *e;
    struct seg_name *names = NULL;
    struct ob_boot **v, *b;
    size_t n = 0, cap = 0, i, j, nb = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        uint64_t boot, first;
        if (!parse_name(e->d_name, &boot, &first) ||
            boot == ob->cur->pub.boot_id) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = trib_realloc(names, cap * sizeof(*names));
        }
        names[n].boot_id = boot;
        names[n].first = first;
        names[n].path = seg_path(ob->dir, boot, first);
        n++;
    }
    closedir(d);
    if (n > 0) {
        qsort(names, n, sizeof(*names), cmp_names);
    }
    for (i = 0; i < n; i = j) {
        for (j = i; j < n && names[j].boot_id == names[i].boot_id; j++) {
        }
        load_boot(ob, names + i, j - i);
    }
    for (i = 0; i < n; i++) {
        trib_free(names[i].path);
    }
    trib_free(names);
    /* replay order: by start time */
    for (b = ob->boots; b != NULL; b = b->next) {
        nb++;
    }
    if (nb > 1) {
        v = trib_malloc(nb * sizeof(*v));
        for (i = 0, b = ob->boots; b != NULL; b = b->next) {
            v[i++] = b;
        }
        qsort(v, nb, sizeof(*v), cmp_boots);
        for (i = 0; i + 1 < nb; i++) {
            v[i]->next = v[i + 1];
        }
        v[nb - 1]->next = NULL;
        ob->boots = v[0];
        trib_free(v);
    }
    return 0;
}

int trib_outbox_open(uv_loop_t *loop, const struct trib_outbox_opts *opts,
                     struct trib_outbox **out)
{
    struct trib_outbox *ob = TRIB_NEW(struct trib_outbox);
    struct trib_outbox_stats st;
    struct ob_boot **pp;
    char *lock_path;
    size_t n;
    int rv = TRIB_EIO;

    ob->loop = loop;
    ob->o = *opts;
    ob->dir = trib_strdup(opts->dir);
    ob->o.dir = ob->dir;
    ob->lock_fd = ob->dir_fd = ob->rd_fd = -1;
    ob->next_seq = 1;
    msgpack_sbuffer_init(&ob->open);
    ob->cur = TRIB_NEW(struct ob_boot);
    ob->cur->pub.boot_id = opts->boot_id;
    ob->cur->pub.started_at = opts->started_at;
    ob->cur->pub.first_seq = 1;
    ob->cur->pub.current = 1;
    if (mkdirs(ob->dir) != 0 ||
        (ob->dir_fd = open(ob->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        TRIB_ERROR("AGT-OUTBOX", "cannot create the outbox directory %s: %s",
                   ob->dir, strerror(errno));
        goto fail;
    }
    n = strlen(ob->dir) + 8;
    lock_path = trib_malloc(n);
    snprintf(lock_path, n, "%s/LOCK", ob->dir);
    ob->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    trib_free(lock_path);
    if (ob->lock_fd < 0) {
        TRIB_ERROR("AGT-OUTBOX", "cannot create %s/LOCK: %s", ob->dir,
                   strerror(errno));
        goto fail;
    }
    if (flock(ob->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        TRIB_ERROR("AGT-OUTBOX",
                   "the outbox directory %s is in use by another agent "
                   "(each agent needs its own --outbox-dir)",
                   ob->dir);
        rv = TRIB_EBUSY;
        goto fail;
    }
    if (scan(ob) != 0) {
        TRIB_ERROR("AGT-OUTBOX", "cannot read the outbox directory %s: %s",
                   ob->dir, strerror(errno));
        goto fail;
    }
    for (pp = &ob->boots; *pp != NULL; pp = &(*pp)->next) {
    }
    *pp = ob->cur;
    uv_timer_init(loop, &ob->sync_timer);
    uv_timer_init(loop, &ob->retry_timer);
    ob->sync_timer.data = ob->retry_timer.data = ob;
    ob->open_handles = 2;
    uv_timer_start(&ob->sync_timer, on_sync_timer, opts->fsync_ms,
                   opts->fsync_ms);
    trib_outbox_stats(ob, &st);
    if (st.nboots > 1) {
        TRIB_INFO("AGT-OUTBOX",
                  "%s: %d earlier boot(s) hold %" PRIu64 " event(s) (%" PRIu64
                  " bytes) to forward",
                  ob->dir, st.nboots - 1, st.events, st.bytes);
    }
    update_full(ob);
    *out = ob;
    return 0;

fail:
    while (ob->boots != NULL && ob->boots != ob->cur) {
        struct ob_boot *b = ob->boots;
        ob->boots = b->next;
        while (b->segs != NULL) {
            struct ob_seg *s = b->segs;
            b->segs = s->next;
            seg_free(s);
        }
        trib_free(b);
    }
    if (ob->lock_fd >= 0) {
        close(ob->lock_fd);
    }
    if (ob->dir_fd >= 0) {
        close(ob->dir_fd);
    }
    msgpack_sbuffer_destroy(&ob->open);
    trib_free(ob->cur);
    trib_free(ob->dir);
    trib_free(ob);
    return rv;
}

/* ------------------------------------------------------------ closing */

static void on_closed(uv_handle_t *h)
{
    struct trib_outbox *ob = h->data;

    if (--ob->open_handles == 0) {
        ob_free(ob);
    }
}

void trib_outbox_close(struct trib_outbox *ob)
{
    struct trib_outbox_stats st;
    struct ob_boot *b;
    struct ob_chunk *c;

    if (ob == NULL || ob->closing) {
        return;
    }
    ob->closing = 1;
    ob->o.on_full = NULL;
    uv_timer_stop(&ob->sync_timer);
    uv_timer_stop(&ob->retry_timer);
    if (ob->unwritten != NULL) {
        write_pending(ob);
    }
    collect(ob, ob->cur); /* an acknowledged active segment goes too */
    trib_outbox_stats(ob, &st);
    if (st.unwritten > 0) {
        TRIB_ERROR("AGT-OUTBOX",
                   "%" PRIu64 " event(s) could not be written to %s "
                   "before exiting and are lost",
                   st.unwritten, ob->dir);
    }
    if (st.events > st.unwritten) {
        TRIB_INFO("AGT-OUTBOX",
                  "%" PRIu64 " event(s) of %d boot(s) not acknowledged as "
                  "durable stay in %s for the next start",
                  st.events - st.unwritten, st.nboots, ob->dir);
    }
    close_rd(ob);
    while ((b = ob->boots) != NULL) {
        ob->boots = b->next;
        while (b->segs != NULL) {
            struct ob_seg *s = b->segs;
            b->segs = s->next;
            if (s->fd >= 0 && s->dirty && !s->syncing &&
                fdatasync(s->fd) != 0) {
                TRIB_ERROR("AGT-OUTBOX", "fsync of %s failed: %s", s->path,
                           strerror(errno));
            }
            if (s->syncing) {
                s->next = ob->retired; /* on_fsync frees it */
                ob->retired = s;
            } else {
                seg_free(s);
            }
        }
        trib_free(b);
    }
    fsync(ob->dir_fd);
    close(ob->dir_fd);
    close(ob->lock_fd); /* releases the flock */
    while ((c = ob->chunks) != NULL) {
        ob->chunks = c->next;
        chunk_free(c);
    }
    msgpack_sbuffer_destroy(&ob->open);
    trib_free(ob->open_offs);
    trib_free(ob->rd_buf);
    ob->rd_buf = NULL;
    if (ob->fsync_busy) {
        ob->open_handles++; /* on_fsync releases it */
    }
    uv_close((uv_handle_t *)&ob->sync_timer, on_closed);
    uv_close((uv_handle_t *)&ob->retry_timer, on_closed);
}
