/* hist_test.c -- histogram accuracy (<= 1 % against exact quantiles),
 * exact merging, negative values, memory and persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "trib_err.h"
#include "trib_mp.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next_rand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}

/* A value spread over many octaves: 2^U(0..bits) plus noise. */
static int64_t log_uniform(int bits)
{
    int e = (int)(next_rand() % (uint64_t)(bits + 1));
    uint64_t base = 1ULL << e;

    return (int64_t)(base + next_rand() % base) - 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* The exact quantile with hist.h's rank definition: ceil(q * n), >= 1. */
static int64_t exact_quantile(const int64_t *sorted, size_t n, double q)
{
    double r = q * (double)n;
    uint64_t k = (uint64_t)r;

    if (q >= 1) {
        return sorted[n - 1];
    }
    if ((double)k < r) {
        k++;
    }
    if (k < 1) {
        k = 1;
    }
    return sorted[(k > n ? n : k) - 1];
}

static const double qs[] = {0,   0.001, 0.01, 0.1,   0.25,  0.5,    0.75,
                            0.9, 0.95,  0.99, 0.995, 0.999, 0.9999, 1};
#define NQ (sizeof(qs) / sizeof(qs[0]))

static void check_accuracy(const int64_t *vals, size_t n)
{
    struct trib_hist h;
    int64_t *sorted = malloc(n * sizeof(int64_t));
    int64_t got[NQ], want;
    double err, worst = 0;
    size_t i, k;

    trib_hist_init(&h);
    for (i = 0; i < n; i++) {
        trib_hist_record(&h, vals[i]);
    }
    memcpy(sorted, vals, n * sizeof(int64_t));
    qsort(sorted, n, sizeof(int64_t), cmp_i64);
    assert_int_equal(trib_hist_count(&h), n);
    assert_int_equal(trib_hist_min(&h), sorted[0]);
    assert_int_equal(trib_hist_max(&h), sorted[n - 1]);
    trib_hist_quantiles(&h, qs, (int)NQ, got);
    for (k = 0; k < NQ; k++) {
        want = exact_quantile(sorted, n, qs[k]);
        assert_int_equal(got[k], trib_hist_quantile(&h, qs[k]));
        if (want == 0) {
            assert_int_equal(got[k], 0);
            continue;
        }
        err = (double)(got[k] > want ? got[k] - want : want - got[k]) /
              (double)want;
        if (err > worst) {
            worst = err;
        }
        if (err > 0.01) {
            fail_msg("q=%g: got %lld, exact %lld (error %.4f)", qs[k],
                     (long long)got[k], (long long)want, err);
        }
        /* the design bound: half a sub-bucket, 1/256 */
        assert_true(err <= 1.0 / 256 + 1e-12);
    }
    /* values below 128 are exact */
    for (k = 0; k < NQ; k++) {
        want = exact_quantile(sorted, n, qs[k]);
        if (want < 128) {
            assert_int_equal(got[k], want);
        }
    }
    (void)worst;
    free(sorted);
    trib_hist_fini(&h);
}

static void test_accuracy_random(void **state)
{
    size_t n = 200000, i;
    int64_t *vals = malloc(n * sizeof(int64_t));
    int round;

    (void)state;
    for (round = 0; round < 6; round++) {
        for (i = 0; i < n; i++) {
            switch (round) {
            case 0: /* microseconds .. ~17 minutes, log-uniform */
                vals[i] = log_uniform(30);
                break;
            case 1: /* the whole positive int64 range */
                vals[i] = log_uniform(62);
                break;
            case 2: /* uniform 0..10 ms */
                vals[i] = (int64_t)(next_rand() % 10000);
                break;
            case 3: /* a tight cluster near 1 s */
                vals[i] = 1000000 + (int64_t)(next_rand() % 3000);
                break;
            case 4: /* heavy tail: mostly small, rare huge */
                vals[i] = next_rand() % 100 == 0 ? log_uniform(40)
                                                 : (int64_t)(next_rand() % 200);
                break;
            default: /* around octave edges */
                vals[i] = (int64_t)((1ULL << (7 + next_rand() % 50)) +
                                    next_rand() % 3) -
                          1;
                break;
            }
        }
        check_accuracy(vals, n);
    }
    /* small samples too */
    for (round = 0; round < 200; round++) {
        size_t m = 1 + next_rand() % 50;

        for (i = 0; i < m; i++) {
            vals[i] = log_uniform(40);
        }
        check_accuracy(vals, m);
    }
    free(vals);
}

static void test_exact_small(void **state)
{
    struct trib_hist h;
    int64_t v;

    (void)state;
    trib_hist_init(&h);
    assert_int_equal(trib_hist_quantile(&h, 0.5), 0);
    for (v = 0; v < 128; v++) {
        trib_hist_record(&h, v);
    }
    assert_int_equal(trib_hist_quantile(&h, 0.5), 63);
    assert_int_equal(trib_hist_quantile(&h, 0), 0);
    assert_int_equal(trib_hist_quantile(&h, 1), 127);
    for (v = 0; v < 128; v++) {
        assert_int_equal(trib_hist_bucket_value(v), v);
    }
    /* 128..255: width 1, still exact */
    for (v = 128; v < 256; v++) {
        assert_int_equal(trib_hist_bucket_value(v), v);
    }
    assert_int_equal(trib_hist_bucket_value(256), 257); /* [256,258) */
    assert_int_equal(trib_hist_bucket_value(257), 257);
    trib_hist_fini(&h);
}

static void test_extremes_and_negative(void **state)
{
    struct trib_hist h;

    (void)state;
    trib_hist_init(&h);
    trib_hist_record(&h, -5);
    trib_hist_record(&h, INT64_MIN);
    assert_int_equal(trib_hist_count(&h), 2);
    assert_int_equal(h.negative, 2);
    assert_int_equal(trib_hist_min(&h), 0);
    assert_int_equal(trib_hist_quantile(&h, 0.99), 0);
    trib_hist_record(&h, INT64_MAX);
    assert_int_equal(trib_hist_max(&h), INT64_MAX);
    assert_int_equal(trib_hist_quantile(&h, 1), INT64_MAX);
    assert_true(trib_hist_bucket_value(INT64_MAX) > 0);
    assert_int_equal(h.nchunks, 2);
    trib_hist_fini(&h);
}

static void assert_same(const struct trib_hist *a, const struct trib_hist *b)
{
    int o;
    unsigned i;

    assert_int_equal(a->count, b->count);
    assert_int_equal(a->negative, b->negative);
    assert_int_equal(a->min, b->min);
    assert_int_equal(a->max, b->max);
    for (o = 0; o < TRIB_HIST_OCTAVES; o++) {
        assert_int_equal(a->slot[o] == 0, b->slot[o] == 0);
        for (i = 0; i < TRIB_HIST_SUB; i++) {
            assert_int_equal(trib_hist_bucket(a, o, i),
                             trib_hist_bucket(b, o, i));
        }
    }
}

static void test_merge_exact(void **state)
{
    struct trib_hist all, part[4], merged;
    int64_t qa[NQ], qm[NQ], v;
    int i, p;

    (void)state;
    trib_hist_init(&all);
    trib_hist_init(&merged);
    for (p = 0; p < 4; p++) {
        trib_hist_init(&part[p]);
    }
    for (i = 0; i < 300000; i++) {
        p = (int)(next_rand() % 4);
        /* each part its own distribution, so merging really mixes */
        v = p == 0   ? log_uniform(20)
            : p == 1 ? log_uniform(34)
            : p == 2 ? (int64_t)(next_rand() % 5000) - 100
                     : 5000000 + (int64_t)(next_rand() % 1000000);
        trib_hist_record(&all, v);
        trib_hist_record(&part[p], v);
    }
    for (p = 0; p < 4; p++) {
        trib_hist_merge(&merged, &part[p]);
    }
    /* merging part 3 twice doubles its counts, as recording it twice */
    trib_hist_merge(&merged, &part[3]);
    trib_hist_merge(&all, &part[3]);
    assert_same(&all, &merged);
    trib_hist_quantiles(&all, qs, (int)NQ, qa);
    trib_hist_quantiles(&merged, qs, (int)NQ, qm);
    assert_memory_equal(qa, qm, sizeof(qa));
    /* merging an empty histogram changes nothing */
    trib_hist_reset(&part[0]);
    trib_hist_merge(&merged, &part[0]);
    assert_same(&all, &merged);
    for (p = 0; p < 4; p++) {
        trib_hist_fini(&part[p]);
    }
    trib_hist_fini(&all);
    trib_hist_fini(&merged);
}

static void test_memory_bounded(void **state)
{
    struct trib_hist h;
    size_t bytes;
    int i;

    (void)state;
    trib_hist_init(&h);
    for (i = 0; i < 100000; i++) { /* warm-up: touches every octave */
        trib_hist_record(&h, 100 + (int64_t)(next_rand() % 100000));
    }
    bytes = trib_hist_bytes(&h);
    assert_true(bytes <= 11 * TRIB_HIST_SUB * sizeof(uint32_t));
    for (i = 0; i < 1000000; i++) {
        trib_hist_record(&h, 100 + (int64_t)(next_rand() % 100000));
    }
    assert_int_equal(trib_hist_bytes(&h), bytes);
    trib_hist_fini(&h);
}

static void roundtrip(const struct trib_hist *h, struct trib_hist *out)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    size_t off = 0;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    trib_hist_save(h, &pk);
    assert_int_equal(trib_mp_check(sb.data, sb.size, TRIB_MP_MAX_DEPTH), 0);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(trib_hist_load(out, &up.data), 0);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

/* Loads a msgpack image built by hand. */
static int load_packed(struct trib_hist *h, msgpack_sbuffer *sb)
{
    msgpack_unpacked up;
    size_t off = 0;
    int rc;

    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb->data, sb->size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    rc = trib_hist_load(h, &up.data);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_clear(sb);
    return rc;
}

/* [count, neg, min, max, [[oct, first, [counts]]]] with one chunk. */
static void pack_one(msgpack_packer *pk, uint64_t count, int64_t min,
                     int64_t max, int oct, int first, const uint64_t *c, int n)
{
    int i;

    msgpack_pack_array(pk, 5);
    msgpack_pack_uint64(pk, count);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_int64(pk, min);
    msgpack_pack_int64(pk, max);
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, oct);
    msgpack_pack_int(pk, first);
    msgpack_pack_array(pk, (size_t)n);
    for (i = 0; i < n; i++) {
        msgpack_pack_uint64(pk, c[i]);
    }
}

static void test_save_load(void **state)
{
    struct trib_hist h, back, empty;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    const uint64_t two[] = {1, 1};
    int i;

    (void)state;
    trib_hist_init(&h);
    trib_hist_init(&back);
    trib_hist_init(&empty);
    roundtrip(&empty, &back);
    assert_same(&empty, &back);
    for (i = 0; i < 50000; i++) {
        trib_hist_record(&h, log_uniform(40) - 10);
    }
    roundtrip(&h, &back);
    assert_same(&h, &back);

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* valid: values 5 and 6 */
    pack_one(&pk, 2, 5, 6, 0, 5, two, 2);
    assert_int_equal(load_packed(&back, &sb), 0);
    assert_int_equal(trib_hist_quantile(&back, 1), 6);
    /* counts do not add up */
    pack_one(&pk, 3, 5, 6, 0, 5, two, 2);
    assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    assert_int_equal(back.count, 0);
    assert_int_equal(back.nchunks, 0);
    /* min outside the first non-empty bucket */
    pack_one(&pk, 2, 4, 6, 0, 5, two, 2);
    assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    /* max outside the last non-empty bucket */
    pack_one(&pk, 2, 5, 9, 0, 5, two, 2);
    assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    /* octave out of range, span past the chunk */
    pack_one(&pk, 2, 5, 6, TRIB_HIST_OCTAVES, 5, two, 2);
    assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    pack_one(&pk, 2, 127, 128, 0, 127, two, 2);
    assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    /* counts overflowing uint64 */
    {
        const uint64_t big[] = {UINT64_MAX, 2};

        pack_one(&pk, 1, 5, 6, 0, 5, big, 2);
        assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    }
    /* wrong shapes */
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    msgpack_pack_str_with_body(&pk, "x", 1);
    assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    /* duplicate octave */
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint64(&pk, 2);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_int64(&pk, 5);
    msgpack_pack_int64(&pk, 5);
    msgpack_pack_array(&pk, 2);
    for (i = 0; i < 2; i++) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_int(&pk, 0);
        msgpack_pack_int(&pk, 5);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_uint64(&pk, 1);
    }
    assert_int_equal(load_packed(&back, &sb), TRIB_EPROTO);
    msgpack_sbuffer_destroy(&sb);
    trib_hist_fini(&h);
    trib_hist_fini(&back);
    trib_hist_fini(&empty);
}

/* Counters are 32-bit: a bucket past 2^32 carries, exactly. */
static void test_carry(void **state)
{
    struct trib_hist h, m, back;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    size_t off = 0;
    int i;

    (void)state;
    trib_hist_init(&h);
    trib_hist_init(&m);
    trib_hist_init(&back);
    trib_hist_record(&h, 5);
    trib_hist_record(&h, 1000);
    /* pretend 2^32 - 2 more values of 5 were recorded */
    h.data[(h.slot[0] - 1) * TRIB_HIST_SUB + 5] = UINT32_MAX;
    h.count += UINT32_MAX - 1;
    for (i = 0; i < 3; i++) {
        trib_hist_record(&h, 5);
    }
    assert_int_equal(h.ncarry, 1);
    assert_int_equal(trib_hist_bucket(&h, 0, 5), (1ULL << 32) + 2);
    assert_int_equal(trib_hist_quantile(&h, 0.5), 5);
    assert_int_equal(trib_hist_quantile(&h, 1), 1000);
    /* merged twice: twice the counts, carried */
    trib_hist_merge(&m, &h);
    trib_hist_merge(&m, &h);
    assert_int_equal(trib_hist_bucket(&m, 0, 5), (1ULL << 33) + 4);
    assert_int_equal(m.count, 2 * h.count);
    /* saved with full counts, loaded back the same */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    trib_hist_save(&m, &pk);
    msgpack_unpacked_init(&up);
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(trib_hist_load(&back, &up.data), 0);
    assert_same(&m, &back);
    assert_true(trib_hist_bytes(&back) > 0);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    trib_hist_fini(&h);
    trib_hist_fini(&m);
    trib_hist_fini(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_small),
        cmocka_unit_test(test_accuracy_random),
        cmocka_unit_test(test_extremes_and_negative),
        cmocka_unit_test(test_merge_exact),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_carry),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
