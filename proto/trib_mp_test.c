/* trib_mp_test.c -- the allocation guard accepts exactly one object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <msgpack.h>
#include <string.h>

#include "trib_err.h"
#include "trib_mp.h"

static void test_valid(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;

    (void)state;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint16(&pk, 1);
    msgpack_pack_uint64(&pk, 1ULL << 40);
    msgpack_pack_str_with_body(&pk, "hello", 5);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "a", 1);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_str_with_body(&pk, "b", 1);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(trib_mp_check(sb.data, sb.size, 32), 0);
    /* every strict prefix is truncated */
    for (size_t i = 0; i < sb.size; i++) {
        assert_int_not_equal(trib_mp_check(sb.data, i, 32), 0);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_hostile(void **state)
{
    /* array32 announcing 2^32-1 elements in a 5-byte frame */
    const uint8_t amp[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t map_amp[] = {0xdf, 0x10, 0x00, 0x00, 0x00, 0x01, 0x02};
    const uint8_t trailing[] = {0x01, 0x02};
    const uint8_t bad[] = {0xc1};
    uint8_t deep[40];

    (void)state;
    assert_int_equal(trib_mp_check(amp, sizeof(amp), 32), TRIB_ERANGE);
    assert_int_equal(trib_mp_check(map_amp, sizeof(map_amp), 32), TRIB_ERANGE);
    assert_int_equal(trib_mp_check(trailing, sizeof(trailing), 32),
                     TRIB_EPROTO);
    assert_int_equal(trib_mp_check(bad, sizeof(bad), 32), TRIB_EPROTO);
    assert_int_equal(trib_mp_check(NULL, 0, 32), TRIB_EPROTO);
    /* 32 open containers, then an empty one: msgpack-c refuses it
     * (found by fuzz_mp_check) */
    memset(deep, 0x91, 32);
    deep[32] = 0x90;
    assert_int_equal(trib_mp_check(deep, 33, 32), TRIB_ERANGE);
    deep[32] = 0x01;
    assert_int_equal(trib_mp_check(deep, 33, 32), 0);
    memset(deep, 0x91, sizeof(deep)); /* 40 nested 1-arrays */
    deep[39] = 0x01;
    assert_int_equal(trib_mp_check(deep, sizeof(deep), 32), TRIB_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
