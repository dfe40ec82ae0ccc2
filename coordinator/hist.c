/*
 * hist.c -- log-bucketed latency histogram (see hist.h for the bucketing,
 * its error bound and the storage layout).
 */
#include "hist.h"

#include <string.h>

#include "trib_err.h"
#include "trib_mem.h"

#define CHUNK_BYTES (TRIB_HIST_SUB * sizeof(uint32_t))

void trib_hist_init(struct trib_hist *h)
{
    memset(h, 0, sizeof(*h));
}

void trib_hist_fini(struct trib_hist *h)
{
    trib_free(h->data);
    trib_free(h->carry);
    memset(h, 0, sizeof(*h));
}

void trib_hist_reset(struct trib_hist *h)
{
    trib_hist_fini(h);
}

size_t trib_hist_bytes(const struct trib_hist *h)
{
    return (size_t)h->nchunks * CHUNK_BYTES +
           (size_t)h->ncarry * sizeof(struct trib_hist_carry);
}

uint32_t *trib__hist_chunk(struct trib_hist *h, int octave)
{
    if (h->slot[octave] == 0) {
        h->data = trib_realloc(h->data, (h->nchunks + 1) * CHUNK_BYTES);
        memset(h->data + (size_t)h->nchunks * TRIB_HIST_SUB, 0, CHUNK_BYTES);
        h->slot[octave] = ++h->nchunks;
    }
    return h->data + (size_t)(h->slot[octave] - 1) * TRIB_HIST_SUB;
}

/* The carry of bucket pos, or NULL. */
static struct trib_hist_carry *carry_of(const struct trib_hist *h, uint32_t pos)
{
    uint16_t i;

    for (i = 0; i < h->ncarry; i++) {
        if (h->carry[i].pos == pos) {
            return &h->carry[i];
        }
    }
    return NULL;
}

void trib__hist_carry(struct trib_hist *h, int octave, unsigned idx,
                      uint64_t extra)
{
    uint32_t pos = (uint32_t)octave * TRIB_HIST_SUB + idx;
    struct trib_hist_carry *c = carry_of(h, pos);

    if (c == NULL) {
        h->carry = trib_realloc(h->carry, (h->ncarry + 1u) * sizeof(*c));
        c = &h->carry[h->ncarry++];
        c->pos = pos;
        c->extra = 0;
    }
    c->extra += extra;
}

uint64_t trib_hist_bucket(const struct trib_hist *h, int o, unsigned idx)
{
    const struct trib_hist_carry *c;
    uint64_t n;

    if (h->slot[o] == 0) {
        return 0;
    }
    n = h->data[(size_t)(h->slot[o] - 1) * TRIB_HIST_SUB + idx];
    if (h->ncarry > 0 &&
        (c = carry_of(h, (uint32_t)o * TRIB_HIST_SUB + idx)) != NULL) {
        n += c->extra;
    }
    return n;
}

/* Adds n to bucket (o, idx), carrying past 32 bits. */
static void bucket_add(struct trib_hist *h, int o, unsigned idx, uint64_t n)
{
    uint32_t *c = trib__hist_chunk(h, o);
    uint64_t low = (uint64_t)c[idx] + (n & 0xffffffffULL);

    c[idx] = (uint32_t)low;
    n = (n >> 32) + (low >> 32);
    if (n != 0) {
        trib__hist_carry(h, o, idx, n << 32);
    }
}

/* ---------------------------------------------------------- buckets */

/* Bucket (octave, idx) of a value >= 0. */
static void bucket_of(int64_t v, int *o, unsigned *idx)
{
    int e;

    if (v < TRIB_HIST_SUB) {
        *o = 0;
        *idx = (unsigned)v;
        return;
    }
    e = 63 - __builtin_clzll((unsigned long long)v);
    *o = e - 6;
    *idx = (unsigned)((uint64_t)v >> (e - 7)) - TRIB_HIST_SUB;
}

/* Midpoint of a bucket: exact for octave 0 and for 2^7 (width 1). */
static int64_t bucket_mid(int o, unsigned idx)
{
    int shift;
    uint64_t lower;

    if (o == 0) {
        return (int64_t)idx;
    }
    shift = o - 1; /* e - 7 */
    lower = (uint64_t)(TRIB_HIST_SUB + idx) << shift;
    if (shift == 0) {
        return (int64_t)lower;
    }
    return (int64_t)(lower + (1ULL << (shift - 1)));
}

int64_t trib_hist_bucket_value(int64_t v)
{
    int o;
    unsigned idx;

    if (v < 0) {
        v = 0;
    }
    bucket_of(v, &o, &idx);
    return bucket_mid(o, idx);
}

/* ------------------------------------------------------------ merge */

void trib_hist_merge(struct trib_hist *dst, const struct trib_hist *src)
{
    const uint32_t *s;
    uint32_t *d;
    uint64_t sum;
    uint16_t k;
    int o, i;

    if (src->count == 0) {
        return;
    }
    for (o = 0; o < TRIB_HIST_OCTAVES; o++) {
        if (src->slot[o] == 0) {
            continue;
        }
        s = src->data + (size_t)(src->slot[o] - 1) * TRIB_HIST_SUB;
        d = trib__hist_chunk(dst, o);
        for (i = 0; i < TRIB_HIST_SUB; i++) {
            sum = (uint64_t)d[i] + s[i];
            d[i] = (uint32_t)sum;
            if (sum >> 32) {
                trib__hist_carry(dst, o, (unsigned)i, 1ULL << 32);
            }
        }
    }
    for (k = 0; k < src->ncarry; k++) {
        trib__hist_carry(dst, (int)(src->carry[k].pos / TRIB_HIST_SUB),
                         src->carry[k].pos % TRIB_HIST_SUB,
                         src->carry[k].extra);
    }
    if (dst->count == 0 || src->min < dst->min) {
        dst->min = src->min;
    }
    if (dst->count == 0 || src->max > dst->max) {
        dst->max = src->max;
    }
    dst->count += src->count;
    dst->negative += src->negative;
}

/* -------------------------------------------------------- quantiles */

static uint64_t rank_of(const struct trib_hist *h, double q)
{
    double r;
    uint64_t k;

    if (!(q > 0)) { /* also NaN */
        return 1;
    }
    if (q >= 1) {
        return h->count;
    }
    r = q * (double)h->count; /* < count */
    k = (uint64_t)r;
    if ((double)k < r) {
        k++; /* ceil without libm */
    }
    if (k < 1) {
        k = 1;
    }
    return k > h->count ? h->count : k;
}

static int64_t clamp(const struct trib_hist *h, int64_t v)
{
    if (v < h->min) {
        return h->min;
    }
    if (v > h->max) {
        return h->max;
    }
    return v;
}

void trib_hist_quantiles(const struct trib_hist *h, const double *qs, int n,
                         int64_t *out)
{
    uint64_t cum = 0, rank, c = 0;
    int o = 0, k = 0, have = 0;
    unsigned i = 0;

    if (h->count == 0) {
        for (k = 0; k < n; k++) {
            out[k] = 0;
        }
        return;
    }
    for (k = 0; k < n; k++) {
        rank = rank_of(h, qs[k]);
        if (rank == 1 || rank == h->count) { /* the extremes are exact */
            out[k] = rank == 1 ? h->min : h->max;
            continue;
        }
        /* advance (o, i) until the cumulative count reaches rank: the
         * bucket that reaches it holds the ranked value */
        while (o < TRIB_HIST_OCTAVES) {
            if (h->slot[o] == 0) {
                o++;
                i = 0;
                continue;
            }
            if (!have) {
                c = trib_hist_bucket(h, o, i);
                have = 1;
            }
            if (c > 0 && cum + c >= rank) {
                break;
            }
            cum += c;
            have = 0;
            if (++i == TRIB_HIST_SUB) {
                i = 0;
                o++;
            }
        }
        out[k] = o < TRIB_HIST_OCTAVES ? clamp(h, bucket_mid(o, i)) : h->max;
    }
}

int64_t trib_hist_quantile(const struct trib_hist *h, double q)
{
    int64_t v;

    trib_hist_quantiles(h, &q, 1, &v);
    return v;
}

/* ------------------------------------------------------ persistence */

void trib_hist_save(const struct trib_hist *h, msgpack_packer *pk)
{
    int o, first, last, i;

    msgpack_pack_array(pk, 5);
    msgpack_pack_uint64(pk, h->count);
    msgpack_pack_uint64(pk, h->negative);
    msgpack_pack_int64(pk, h->min);
    msgpack_pack_int64(pk, h->max);
    msgpack_pack_array(pk, h->nchunks);
    for (o = 0; o < TRIB_HIST_OCTAVES; o++) {
        if (h->slot[o] == 0) {
            continue;
        }
        first = 0;
        while (first < TRIB_HIST_SUB &&
               trib_hist_bucket(h, o, (unsigned)first) == 0) {
            first++;
        }
        last = TRIB_HIST_SUB - 1;
        while (last >= first && trib_hist_bucket(h, o, (unsigned)last) == 0) {
            last--;
        }
        msgpack_pack_array(pk, 3);
        msgpack_pack_int(pk, o);
        msgpack_pack_int(pk, first);
        msgpack_pack_array(pk, (size_t)(last - first + 1));
        for (i = first; i <= last; i++) {
            msgpack_pack_uint64(pk, trib_hist_bucket(h, o, (unsigned)i));
        }
    }
}

static int get_u64(const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return TRIB_EPROTO;
    }
    *out = o->via.u64;
    return 0;
}

static int get_i64(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    return TRIB_EPROTO;
}

/* The first (dir = 1) or last (dir = -1) non-empty bucket, or -1. */
static int edge_bucket(const struct trib_hist *h, int dir, int *oo,
                       unsigned *oi)
{
    int o, i;

    for (o = dir > 0 ? 0 : TRIB_HIST_OCTAVES - 1;
         o >= 0 && o < TRIB_HIST_OCTAVES; o += dir) {
        if (h->slot[o] == 0) {
            continue;
        }
        for (i = dir > 0 ? 0 : TRIB_HIST_SUB - 1; i >= 0 && i < TRIB_HIST_SUB;
             i += dir) {
            if (trib_hist_bucket(h, o, (unsigned)i) != 0) {
                *oo = o;
                *oi = (unsigned)i;
                return 0;
            }
        }
    }
    return -1;
}

static int load_chunks(struct trib_hist *h, const msgpack_object *arr,
                       uint64_t *sum)
{
    const msgpack_object *c, *cs;
    uint64_t oct, first, n, v;
    uint32_t k, i;

    if (arr->type != MSGPACK_OBJECT_ARRAY) {
        return TRIB_EPROTO;
    }
    for (k = 0; k < arr->via.array.size; k++) {
        c = &arr->via.array.ptr[k];
        if (c->type != MSGPACK_OBJECT_ARRAY || c->via.array.size < 3 ||
            get_u64(&c->via.array.ptr[0], &oct) != 0 ||
            get_u64(&c->via.array.ptr[1], &first) != 0 ||
            oct >= TRIB_HIST_OCTAVES || first > TRIB_HIST_SUB ||
            h->slot[oct] != 0) {
            return TRIB_EPROTO;
        }
        cs = &c->via.array.ptr[2];
        if (cs->type != MSGPACK_OBJECT_ARRAY) {
            return TRIB_EPROTO;
        }
        n = cs->via.array.size;
        if (first + n > TRIB_HIST_SUB) {
            return TRIB_EPROTO;
        }
        trib__hist_chunk(h, (int)oct);
        for (i = 0; i < n; i++) {
            if (get_u64(&cs->via.array.ptr[i], &v) != 0 ||
                __builtin_add_overflow(*sum, v, sum)) {
                return TRIB_EPROTO;
            }
            bucket_add(h, (int)oct, (unsigned)(first + i), v);
        }
    }
    return 0;
}

int trib_hist_load(struct trib_hist *h, const msgpack_object *o)
{
    const msgpack_object *a;
    uint64_t count, negative, sum = 0;
    int64_t min, max;
    int lo_o, hi_o, mo;
    unsigned lo_i, hi_i, mi;

    trib_hist_reset(h);
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 5) {
        return TRIB_EPROTO;
    }
    a = o->via.array.ptr;
    if (get_u64(&a[0], &count) != 0 || get_u64(&a[1], &negative) != 0 ||
        get_i64(&a[2], &min) != 0 || get_i64(&a[3], &max) != 0 ||
        negative > count || load_chunks(h, &a[4], &sum) != 0 || sum != count) {
        goto bad;
    }
    if (count > 0) {
        /* min and max must lie in the outermost non-empty buckets, so
         * quantiles clamp to values that were really recorded */
        if (min < 0 || min > max || edge_bucket(h, 1, &lo_o, &lo_i) != 0 ||
            edge_bucket(h, -1, &hi_o, &hi_i) != 0) {
            goto bad;
        }
        bucket_of(min, &mo, &mi);
        if (mo != lo_o || mi != lo_i) {
            goto bad;
        }
        bucket_of(max, &mo, &mi);
        if (mo != hi_o || mi != hi_i) {
            goto bad;
        }
    } else if (min != 0 || max != 0) {
        goto bad;
    }
    h->count = count;
    h->negative = negative;
    h->min = min;
    h->max = max;
    return 0;

bad:
    trib_hist_reset(h);
    return TRIB_EPROTO;
}
