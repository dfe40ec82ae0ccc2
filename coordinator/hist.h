/*
 * hist -- a mergeable, log-bucketed latency histogram of int64 values
 * (microseconds), HDR-style with integer bucketing.
 *
 * Buckets: values 0..127 are counted exactly; above, every power of two
 * [2^e, 2^(e+1)) (e = 7..62) is split into 128 equal sub-buckets of width
 * 2^(e-7). A quantile is reported as its bucket's midpoint, so the relative
 * error is at most 2^(e-8) / 2^e = 1/256 (< 0.4 %); the result is also
 * clamped to [min, max], which are exact. Negative values (clock skew) are
 * recorded as 0 and counted in 'negative'.
 *
 * Storage is chunked per octave (octave 0 = the exact values, octave o >= 1
 * = the power of two 2^(o+6)): a chunk of 128 counters is allocated the
 * first time a value lands in it, so memory follows the range of values
 * seen, never their number. The chunks live in one block ('data', in
 * allocation order; slot[o] = 1 + the chunk's position), which keeps the
 * struct small and recording to two cache lines. Counters are 32-bit; the
 * rare bucket that passes 2^32 keeps the excess in a small carry list, so
 * counts stay exact.
 *
 * Merging adds counts bucket by bucket: the merged histogram is identical
 * to one that recorded every value itself (quantiles of quantiles are never
 * taken; DESIGN-NOTES 7).
 *
 * Ownership: a trib_hist owns its block (trib_hist_fini frees it).
 * Threading: one owner at a time; no shared state.
 */
#ifndef TRIB_HIST_H
#define TRIB_HIST_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define TRIB_HIST_SUB     128 /* sub-buckets per octave (and exact values) */
#define TRIB_HIST_OCTAVES 57  /* octave 0 (exact) + 2^7 .. 2^62           */

struct trib_hist_carry {
    uint32_t pos;   /* octave * TRIB_HIST_SUB + sub-bucket */
    uint64_t extra; /* added to the bucket's 32-bit counter */
};

/* Field order: what trib_hist_record() touches comes first (one cache
 * line for values below 2^37). */
struct trib_hist {
    uint32_t *data;                  /* nchunks * TRIB_HIST_SUB counters */
    uint64_t count;                  /* values (negative ones included) */
    int64_t min, max;                /* exact; 0 when count == 0         */
    uint8_t slot[TRIB_HIST_OCTAVES]; /* 0 = no chunk, else 1 + position */
    uint8_t nchunks;
    uint16_t ncarry;
    uint64_t negative; /* values < 0, recorded as 0 */
    struct trib_hist_carry *carry;
};

void trib_hist_init(struct trib_hist *h);
void trib_hist_fini(struct trib_hist *h);  /* frees; h reusable (empty) */
void trib_hist_reset(struct trib_hist *h); /* = fini: empty, no chunks */

/* Bytes held by h's chunks and carries (the struct itself not included). */
size_t trib_hist_bytes(const struct trib_hist *h);

/* Out-of-line parts of trib_hist_record(). */
uint32_t *trib__hist_chunk(struct trib_hist *h, int octave);
void trib__hist_carry(struct trib_hist *h, int octave, unsigned idx,
                      uint64_t extra);

/* Records one value. Inline: this is on the 1M events/s path. */
static inline void trib_hist_record(struct trib_hist *h, int64_t v)
{
    int o, e;
    uint32_t *c;
    unsigned idx;

    if (v < 0) {
        h->negative++;
        v = 0;
    }
    if (v < TRIB_HIST_SUB) {
        o = 0;
        idx = (unsigned)v;
    } else {
        e = 63 - __builtin_clzll((unsigned long long)v); /* 7..62 */
        o = e - 6;
        idx = (unsigned)((uint64_t)v >> (e - 7)) - TRIB_HIST_SUB;
    }
    if (h->slot[o] != 0) {
        c = h->data + (size_t)(h->slot[o] - 1) * TRIB_HIST_SUB;
    } else {
        c = trib__hist_chunk(h, o);
    }
    if (__builtin_expect(++c[idx] == 0, 0)) {
        trib__hist_carry(h, o, idx, 1ULL << 32); /* the counter wrapped */
    }
    if (h->count == 0 || v < h->min) {
        h->min = v;
    }
    if (h->count == 0 || v > h->max) {
        h->max = v;
    }
    h->count++;
}

/* Adds every count of src to dst (exact). */
void trib_hist_merge(struct trib_hist *dst, const struct trib_hist *src);

static inline uint64_t trib_hist_count(const struct trib_hist *h)
{
    return h->count;
}
static inline int64_t trib_hist_min(const struct trib_hist *h)
{
    return h->min;
}
static inline int64_t trib_hist_max(const struct trib_hist *h)
{
    return h->max;
}

/* Count of bucket idx of octave o (0 when the chunk is absent). */
uint64_t trib_hist_bucket(const struct trib_hist *h, int o, unsigned idx);

/*
 * The q-quantile (0 <= q <= 1): the value of rank ceil(q * count) (at least
 * 1) in sorted order, as its bucket's representative, clamped to
 * [min, max] (so ranks 1 and count give min and max exactly). 0 when
 * count == 0.
 */
int64_t trib_hist_quantile(const struct trib_hist *h, double q);
/* Several quantiles in one pass; qs ascending. */
void trib_hist_quantiles(const struct trib_hist *h, const double *qs, int n,
                         int64_t *out);

/* The representative value of v's bucket (what a quantile reports). */
int64_t trib_hist_bucket_value(int64_t v);

/*
 * Persistence: one msgpack array
 *   [count, negative, min, max, [[octave, first, [counts...]], ...]]
 * (per allocated chunk: its non-zero span, full 64-bit counts).
 * trib_hist_load() takes an unpacked object (the caller ran trib_mp_check
 * on the bytes); 0 or TRIB_EPROTO when the object is malformed or
 * inconsistent (counts that do not add up, octave or span out of range,
 * min/max outside the outermost buckets). h is emptied first, and left
 * empty on error.
 */
void trib_hist_save(const struct trib_hist *h, msgpack_packer *pk);
int trib_hist_load(struct trib_hist *h, const msgpack_object *o);

#endif /* TRIB_HIST_H */
