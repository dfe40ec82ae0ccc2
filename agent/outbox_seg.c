/*
 * outbox_seg.c -- the outbox's segment file format: header and record
 * encoding, and the parser that decides which bytes of a file are valid
 * (outbox.h draws the layout).
 *
 * The parser trusts nothing: every length is checked against the bytes
 * left and the record limit before it is used, every record's checksum is
 * verified, and event sequences must follow each other. When it meets an
 * invalid record it looks for a valid one further on ("resync"): none
 * means a torn tail (a write cut short by a crash), one means corruption
 * in the middle of the file. fuzz_outbox runs it on arbitrary bytes.
 */
#include "outbox.h"
#include "trib_mem.h"

#include <string.h>
#include <zlib.h>

static const uint8_t magic[8] = {'T', 'R', 'I', 'B', 'O', 'B', 'X', '1'};

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* zlib's crc32 takes a uInt length: feed large buffers in pieces. */
static uint32_t crc(uint32_t c, const uint8_t *p, size_t n)
{
    uLong v = c;

    while (n > 0) {
        uInt part = n > (1u << 30) ? (1u << 30) : (uInt)n;
        v = crc32(v, p, part);
        p += part;
        n -= part;
    }
    return (uint32_t)v;
}

void trib__seg_header(uint8_t *out, uint64_t boot_id, int64_t started_at,
                      uint64_t first_seq)
{
    memcpy(out, magic, 8);
    put_u64(out + 8, boot_id);
    put_u64(out + 16, (uint64_t)started_at);
    put_u64(out + 24, first_seq);
    put_u32(out + 32, crc(0, out, 32));
    put_u32(out + 36, 0);
}

void trib__seg_record_header(uint8_t *out, uint64_t seq, const void *payload,
                             uint32_t len)
{
    uint8_t s[8];
    uint32_t c;

    put_u64(s, seq);
    c = crc(0, s, 8);
    c = crc(c, payload, len);
    put_u32(out, len);
    put_u32(out + 4, c);
    memcpy(out + 8, s, 8);
}

/* A valid record at 'pos'? Sets *seq and *plen. 'next' is the event
 * sequence expected; 'any_later' accepts any later one (resync). */
static int record_at(const uint8_t *buf, size_t len, size_t pos, uint64_t next,
                     int any_later, uint64_t *seq, uint32_t *plen)
{
    uint32_t n;
    uint64_t s;

    if (len - pos < TRIB_OUTBOX_REC_HEADER) {
        return 0;
    }
    n = get_u32(buf + pos);
    if (n == 0 || n > TRIB_OUTBOX_RECORD_MAX ||
        n > len - pos - TRIB_OUTBOX_REC_HEADER) {
        return 0;
    }
    s = get_u64(buf + pos + 8);
    if (s != 0 && s != next && !(any_later && s > next)) {
        return 0;
    }
    if (crc(0, buf + pos + 8, 8 + (size_t)n) != get_u32(buf + pos + 4)) {
        return 0;
    }
    *seq = s;
    *plen = n;
    return 1;
}

static void index_push(struct trib__seg_info *info, size_t *cap, size_t pos)
{
    if (info->nindex == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        info->index = trib_realloc(info->index, *cap * sizeof(uint32_t));
    }
    info->index[info->nindex++] = (uint32_t)pos;
}

void trib__seg_parse(
    const uint8_t *buf, size_t len, struct trib__seg_info *info,
    void (*on_meta)(void *arg, const void *payload, size_t len), void *arg)
{
    size_t pos, cap = 0, p;
    uint64_t next, seq;
    uint32_t plen;

    memset(info, 0, sizeof(*info));
    info->status = TRIB_SEG_BAD_HEADER;
    if (len > UINT32_MAX) {
        len = UINT32_MAX; /* offsets are 32-bit; the loader refuses more */
    }
    if (len < TRIB_OUTBOX_HEADER || memcmp(buf, magic, 8) != 0 ||
        crc(0, buf, 32) != get_u32(buf + 32) || get_u64(buf + 24) == 0 ||
        get_u64(buf + 24) == UINT64_MAX) {
        return;
    }
    info->boot_id = get_u64(buf + 8);
    info->started_at = (int64_t)get_u64(buf + 16);
    info->first_seq = get_u64(buf + 24);
    info->last_seq = info->first_seq - 1;
    next = info->first_seq;
    pos = TRIB_OUTBOX_HEADER;
    while (pos < len && record_at(buf, len, pos, next, 0, &seq, &plen)) {
        if (seq == 0) {
            info->nmeta++;
            if (on_meta != NULL) {
                on_meta(arg, buf + pos + TRIB_OUTBOX_REC_HEADER, plen);
            }
        } else {
            if ((seq - info->first_seq) % TRIB__SEG_INDEX_EVERY == 0) {
                index_push(info, &cap, pos);
            }
            info->nevents++;
            info->last_seq = seq;
            next = seq + 1;
        }
        pos += TRIB_OUTBOX_REC_HEADER + plen;
    }
    info->valid_len = pos;
    if (pos == len) {
        info->status = TRIB_SEG_OK;
        return;
    }
    /* Something invalid at 'pos': is there any valid record after it? */
    for (p = pos + 1; p + TRIB_OUTBOX_REC_HEADER < len; p++) {
        if (record_at(buf, len, p, next, 1, &seq, &plen)) {
            info->status = TRIB_SEG_CORRUPT;
            info->resync_at = p;
            return;
        }
    }
    info->status = TRIB_SEG_TORN;
}
