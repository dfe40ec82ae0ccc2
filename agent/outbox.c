/*
 * outbox.c -- the durable event outbox (outbox.h has the contract and the
 * file format; outbox_seg.c encodes and parses segment files).
 *
 * The structures are drawn in outbox_int.h; outbox_load.c opens a
 * directory.
 *
 * fsync: a timer every fsync_ms starts uv_fs_fdatasync on the first dirty
 * segment (then the next, then the directory after a file was created or
 * deleted); one request at a time. A segment's descriptor stays open while
 * its fsync runs, even if the segment was rotated out or deleted meanwhile.
 */
#include "outbox_int.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"

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
#define RESUME_PERCENT 90

static void update_full(struct trib_outbox *ob);
static void collect(struct trib_outbox *ob, struct ob_boot *b);

/* -------------------------------------------------------------- helpers */

char *trib__ob_seg_path(const char *dir, uint64_t boot_id, uint64_t first)
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

void trib__ob_seg_free(struct ob_seg *s)
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
    trib__ob_seg_free(s);
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
    char *path = trib__ob_seg_path(ob->dir, ob->cur->pub.boot_id, first);
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
                          " event(s) (%" PRIu64 " bytes) kept in memory, "
                          "fetching paused, retrying every %d s (room is "
                          "made as the coordinator confirms events durable)",
                          c->len, s->path, strerror(err), ob->unwritten_events,
                          ob->unwritten_bytes, RETRY_MS / 1000);
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
static void drop_released(struct trib_outbox *ob);

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
    }
    if (rv == 0 && ob->open.size == 0) {
        drop_released(ob); /* what followed their unpin is written */
    }
    if (rv == 0 && ob->write_failed) {
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

/* The lowest pin (UINT64_MAX: none). */
static uint64_t min_pin(const struct trib_outbox *ob)
{
    uint64_t m = UINT64_MAX;
    size_t i;

    for (i = 0; i < ob->npins; i++) {
        if (ob->pins[i].seq < m) {
            m = ob->pins[i].seq;
        }
    }
    return m;
}

/* Forgets the released pins: called when what was appended after their
 * unpin (the confirm) is written, or when every event appended is durable
 * at the coordinator (the write-back's events included: the intent has
 * nothing left to recover; on a full disk this is what lets the file that
 * holds it go, so that the confirm can be written). */
static void drop_released(struct trib_outbox *ob)
{
    size_t i = 0;

    while (i < ob->npins) {
        if (ob->pins[i].released) {
            ob->pins[i] = ob->pins[--ob->npins];
        } else {
            i++;
        }
    }
}

/* Deletes the boot's segments whose events are all durable. */
static void collect(struct trib_outbox *ob, struct ob_boot *b)
{
    uint64_t pin = b == ob->cur ? min_pin(ob) : UINT64_MAX;
    struct ob_seg *s;

    if (b->held) {
        return;
    }
    if (b == ob->cur && ob->open.size == 0 &&
        b->pub.durable + 1 >= ob->next_seq) {
        drop_released(ob);
        pin = min_pin(ob);
    }
    while ((s = b->segs) != NULL && s->last_seq <= b->pub.durable) {
        /* Records appended when the next event was 'pin' follow event
         * pin - 1: a file whose events reach pin - 1 may hold them. */
        if (s->last_seq + 1 >= pin) {
            break;
        }
        if (s->active) {
            /* Still appended to: only when the outbox is full (or
             * closing) and it holds events, make room by rotating. Also
             * while writes fail (a full disk): with segment_bytes larger
             * than the free space this file may be all there is to free;
             * the pending records then start a new segment. */
            if (!(ob->full || ob->closing) || s->last_seq < s->first_seq) {
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

uint64_t trib_outbox_pin(struct trib_outbox *ob)
{
    if (ob->npins == ob->pins_cap) {
        ob->pins_cap = ob->pins_cap ? ob->pins_cap * 2 : 8;
        ob->pins = trib_realloc(ob->pins, ob->pins_cap * sizeof(*ob->pins));
    }
    ob->pins[ob->npins].seq = ob->next_seq;
    ob->pins[ob->npins++].released = 0;
    return ob->next_seq;
}

void trib_outbox_unpin(struct trib_outbox *ob, uint64_t pin)
{
    size_t i;

    for (i = 0; i < ob->npins; i++) {
        if (ob->pins[i].seq == pin && !ob->pins[i].released) {
            ob->pins[i].released = 1;
            break;
        }
    }
    /* Still kept: what the caller appends next (the confirm) must be
     * written first -- on a failing disk that may take a while, and an
     * acknowledgement meanwhile must not delete the intent. */
}

int trib_outbox_hold(struct trib_outbox *ob, uint64_t boot_id, int hold)
{
    struct ob_boot *b = find_boot(ob, boot_id);

    if (b == NULL) {
        return TRIB_ENOENT;
    }
    b->held = hold;
    if (!hold) {
        collect(ob, b); /* may free b */
        update_full(ob);
    }
    return 0;
}

int trib_outbox_append_meta(struct trib_outbox *ob, uint64_t boot_id,
                            const void *payload, size_t len)
{
    struct ob_boot *b = find_boot(ob, boot_id);
    struct ob_seg *s;
    uint8_t *rec;
    int fd, rv = 0;

    if (b == NULL || (b != ob->cur && b->tail == NULL)) {
        return TRIB_ENOENT;
    }
    if (len == 0 || len > TRIB_OUTBOX_RECORD_MAX) {
        return TRIB_EINVAL;
    }
    if (b == ob->cur) {
        msgpack_sbuffer_write(trib_outbox_record_begin(ob), payload, len);
        trib_outbox_record_end(ob, 1);
        return trib_outbox_flush(ob);
    }
    s = b->tail;
    rec = trib_malloc(TRIB_OUTBOX_REC_HEADER + len);
    trib__seg_record_header(rec, 0, payload, (uint32_t)len);
    memcpy(rec + TRIB_OUTBOX_REC_HEADER, payload, len);
    fd = open(s->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 ||
        pwrite(fd, rec, TRIB_OUTBOX_REC_HEADER + len, (off_t)s->size) !=
            (ssize_t)(TRIB_OUTBOX_REC_HEADER + len) ||
        fdatasync(fd) != 0) {
        TRIB_ERROR("AGT-OUTBOX", "cannot append to %s: %s", s->path,
                   strerror(errno));
        if (fd >= 0 && ftruncate(fd, (off_t)s->size) != 0) {
            TRIB_DEBUG("AGT-OUTBOX", "ftruncate %s failed", s->path);
        }
        rv = TRIB_EIO;
    } else {
        s->size += TRIB_OUTBOX_REC_HEADER + len;
        ob->disk_bytes += TRIB_OUTBOX_REC_HEADER + len;
    }
    if (fd >= 0) {
        close(fd);
    }
    trib_free(rec);
    return rv;
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
    st->write_failed = ob->write_failed;
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
        trib__ob_seg_free(s);
    }
    trib_free(ob->pins);
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
                trib__ob_seg_free(s);
                s = NULL;
                break;
            }
        }
    }
    if (rv < 0) {
        /* Retried every fsync_ms: rate-limited, or a failing disk floods
         * the log. The records stay readable and are forwarded; only a
         * power loss before the coordinator has them could lose them. */
        trib_complain(&ob->sync_complain, TRIB_LOG_ERROR, "AGT-OUTBOX",
                      "fsync of %s failed: %s; retrying every %" PRIu64
                      " ms (events are still forwarded; until it works a "
                      "power loss can lose what is not acknowledged)",
                      s != NULL ? s->path : ob->dir, uv_strerror(rv),
                      ob->o.fsync_ms);
        if (s != NULL) {
            s->dirty = 1;
        } else {
            ob->dir_dirty = 1;
        }
    } else {
        if (ob->sync_complain.active) {
            trib_complain_release(&ob->sync_complain, "AGT-OUTBOX",
                                  "outbox fsync works again");
        }
        if (s != NULL && !s->active && !s->dirty && s->fd >= 0) {
            close(s->fd);
            s->fd = -1;
        }
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
    if (trib__ob_mkdirs(ob->dir) != 0 ||
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
    if (trib__ob_scan(ob) != 0) {
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
    *out = ob; /* before on_full: the callback may look at it */
    update_full(ob);
    return 0;

fail:
    while (ob->boots != NULL && ob->boots != ob->cur) {
        struct ob_boot *b = ob->boots;
        ob->boots = b->next;
        while (b->segs != NULL) {
            struct ob_seg *s = b->segs;
            b->segs = s->next;
            trib__ob_seg_free(s);
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
                trib__ob_seg_free(s);
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
