/*
 * trib_auth_test.c -- the HMAC-SHA256 primitive (RFC 4231 vectors), the two
 * MAC constructions of PROTOCOL.md (known answers computed independently
 * with Python's hmac module, and each input changing the MAC), and the
 * secret's sources.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "trib_auth.h"
#include "trib_err.h"
#include "trib_mem.h"

#define SECRET "correct horse battery staple"
#define BOOT   0x9f3c2a1b5d6e7f80ULL

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    size_t i;

    assert_int_equal(strlen(hex), 2 * n);
    for (i = 0; i < n; i++) {
        unsigned v;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void fill(uint8_t *p, size_t n, uint8_t first)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)(first + i);
    }
}

/* RFC 4231 test cases 1, 2 and 6: libcrypto's HMAC-SHA256 is the real one. */
static void test_rfc4231(void **state)
{
    static const struct {
        const char *key_hex, *data, *mac_hex;
    } tc[] = {
        {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"4a656665", "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
        uint8_t key[131], want[32], got[32];
        size_t klen;
        unsigned int len = 0;

        if (tc[i].key_hex != NULL) {
            klen = strlen(tc[i].key_hex) / 2;
            unhex(tc[i].key_hex, key, klen);
        } else {
            klen = 131; /* case 6: 131 bytes of 0xaa */
            memset(key, 0xaa, klen);
        }
        unhex(tc[i].mac_hex, want, sizeof(want));
        assert_non_null(HMAC(EVP_sha256(), key, (int)klen,
                             (const uint8_t *)tc[i].data, strlen(tc[i].data),
                             got, &len));
        assert_int_equal(len, 32);
        assert_memory_equal(got, want, 32);
    }
}

/* The agent's proof: HMAC(secret, "trib-agent-v1" | nonce_c | agent_id |
 * 0x00 | boot_id BE). */
static void test_agent_mac(void **state)
{
    uint8_t nonce_c[TRIB_WIRE_NONCE], mac[32], want[32], other[32];
    uint8_t msg[128];
    unsigned int len;
    size_t n = 0;
    int i;

    (void)state;
    fill(nonce_c, sizeof(nonce_c), 0x00);
    trib_auth_agent_mac(SECRET, strlen(SECRET), nonce_c, trib_str_c("node-1"),
                        BOOT, mac);
    unhex("f577d34339d1594cfc9eb94b7a1fe7c7286ad397b143a608634908885607e91e",
          want, sizeof(want));
    assert_memory_equal(mac, want, 32);

    /* the same message built here, independently */
    memcpy(msg, "trib-agent-v1", 13);
    n = 13;
    memcpy(msg + n, nonce_c, 32);
    n += 32;
    memcpy(msg + n, "node-1", 6);
    n += 6;
    msg[n++] = 0;
    for (i = 7; i >= 0; i--) {
        msg[n++] = (uint8_t)(BOOT >> (8 * i));
    }
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), msg, n, want, &len);
    assert_memory_equal(mac, want, 32);

    /* every input counts */
    trib_auth_agent_mac(SECRET, strlen(SECRET) - 1, nonce_c,
                        trib_str_c("node-1"), BOOT, other);
    assert_false(trib_auth_mac_equal(mac, other));
    trib_auth_agent_mac(SECRET, strlen(SECRET), nonce_c, trib_str_c("node-2"),
                        BOOT, other);
    assert_false(trib_auth_mac_equal(mac, other));
    trib_auth_agent_mac(SECRET, strlen(SECRET), nonce_c, trib_str_c("node-1"),
                        BOOT + 1, other);
    assert_false(trib_auth_mac_equal(mac, other));
    nonce_c[31] ^= 1;
    trib_auth_agent_mac(SECRET, strlen(SECRET), nonce_c, trib_str_c("node-1"),
                        BOOT, other);
    assert_false(trib_auth_mac_equal(mac, other));
    nonce_c[31] ^= 1;
    trib_auth_agent_mac(SECRET, strlen(SECRET), nonce_c, trib_str_c("node-1"),
                        BOOT, other);
    assert_true(trib_auth_mac_equal(mac, other));
}

/* The coordinator's proof: HMAC(secret, "trib-coord-v1" | nonce_a |
 * nonce_c); it cannot be replayed as an agent proof. */
static void test_coord_mac(void **state)
{
    uint8_t nonce_a[32], nonce_c[32], mac[32], want[32], other[32];

    (void)state;
    fill(nonce_a, sizeof(nonce_a), 0x20);
    fill(nonce_c, sizeof(nonce_c), 0x00);
    trib_auth_coord_mac(SECRET, strlen(SECRET), nonce_a, nonce_c, mac);
    unhex("90a6891ca77fd8144cb88c16e639f7b2a714f6c4f3477f1e0354a7ef733f70ab",
          want, sizeof(want));
    assert_memory_equal(mac, want, 32);
    /* swapping the nonces gives another MAC */
    trib_auth_coord_mac(SECRET, strlen(SECRET), nonce_c, nonce_a, other);
    assert_false(trib_auth_mac_equal(mac, other));
    trib_auth_coord_mac("x", 1, nonce_a, nonce_c, other);
    assert_false(trib_auth_mac_equal(mac, other));
}

static void test_mac_equal_and_random(void **state)
{
    uint8_t a[32], b[32], zero[32] = {0};

    (void)state;
    fill(a, sizeof(a), 7);
    memcpy(b, a, sizeof(b));
    assert_true(trib_auth_mac_equal(a, b));
    b[0] ^= 0x80;
    assert_false(trib_auth_mac_equal(a, b));
    b[0] ^= 0x80;
    b[31] ^= 1;
    assert_false(trib_auth_mac_equal(a, b));

    assert_int_equal(trib_auth_random(a, sizeof(a)), 0);
    assert_int_equal(trib_auth_random(b, sizeof(b)), 0);
    assert_memory_not_equal(a, b, 32);
    assert_memory_not_equal(a, zero, 32);
    assert_int_equal(trib_auth_random(a, 0), 0);
}

/* ---- the secret ---------------------------------------------------------- */

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/trib-auth-test-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int remove_dir(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_secret(const char *name, const void *p, size_t n,
                                mode_t mode)
{
    static char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static void test_secret_file(void **state)
{
    static char big[TRIB_SECRET_MAX + 2];
    char err[256], *s = NULL;
    const char *path;
    size_t len = 99;

    (void)state;
    unsetenv("TRIBUTARY_SECRET");
    path = write_secret("ok", "s3cr\0et \t\r\n\n", 12, 0600);
    assert_int_equal(trib_auth_load_secret(path, &s, &len, err, sizeof(err)),
                     0);
    assert_int_equal(len, 7); /* trailing whitespace gone, NUL kept */
    assert_memory_equal(s, "s3cr\0et", 7);
    assert_int_equal(s[7], '\0');
    trib_free(s);

    /* readable by group or others: refused, and the message says why */
    path = write_secret("open", "x", 1, 0640);
    assert_int_equal(trib_auth_load_secret(path, &s, &len, err, sizeof(err)),
                     TRIB_ECONFIG);
    assert_null(s);
    assert_non_null(strstr(err, "readable by group or others"));
    assert_non_null(strstr(err, "chmod 600"));
    path = write_secret("open", "x", 1, 0604);
    assert_int_equal(trib_auth_load_secret(path, &s, &len, err, sizeof(err)),
                     TRIB_ECONFIG);

    path = write_secret("empty", " \n\t", 3, 0600);
    assert_int_equal(trib_auth_load_secret(path, &s, &len, err, sizeof(err)),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "empty"));

    memset(big, 'k', sizeof(big));
    path = write_secret("max", big, TRIB_SECRET_MAX, 0400);
    assert_int_equal(trib_auth_load_secret(path, &s, &len, err, sizeof(err)),
                     0);
    assert_int_equal(len, TRIB_SECRET_MAX);
    trib_free(s);
    path = write_secret("big", big, TRIB_SECRET_MAX + 1, 0600);
    assert_int_equal(trib_auth_load_secret(path, &s, &len, err, sizeof(err)),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "longer than"));

    assert_int_equal(
        trib_auth_load_secret("/nonexistent/secret", &s, &len, err, 256),
        TRIB_ECONFIG);
    assert_non_null(strstr(err, "/nonexistent/secret"));
    assert_int_equal(trib_auth_load_secret(dir, &s, &len, err, sizeof(err)),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "not a regular file"));

    /* a file wins over the environment */
    setenv("TRIBUTARY_SECRET", "from-env", 1);
    path = write_secret("ok2", "from-file\n", 10, 0600);
    assert_int_equal(trib_auth_load_secret(path, &s, &len, err, sizeof(err)),
                     0);
    assert_int_equal(len, 9);
    assert_memory_equal(s, "from-file", 9);
    trib_free(s);
    unsetenv("TRIBUTARY_SECRET");
}

static void test_secret_env(void **state)
{
    char err[256], *s = (char *)1;
    size_t len = 99;

    (void)state;
    unsetenv("TRIBUTARY_SECRET");
    assert_int_equal(trib_auth_load_secret(NULL, &s, &len, err, sizeof(err)),
                     0);
    assert_null(s); /* no secret: authentication off */
    assert_int_equal(len, 0);

    setenv("TRIBUTARY_SECRET", "hunter2\n", 1);
    assert_int_equal(trib_auth_load_secret(NULL, &s, &len, err, sizeof(err)),
                     0);
    assert_int_equal(len, 7);
    assert_string_equal(s, "hunter2");
    trib_free(s);

    setenv("TRIBUTARY_SECRET", "", 1);
    assert_int_equal(trib_auth_load_secret(NULL, &s, &len, err, sizeof(err)),
                     TRIB_ECONFIG);
    assert_null(s);
    assert_non_null(strstr(err, "TRIBUTARY_SECRET"));
    unsetenv("TRIBUTARY_SECRET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_agent_mac),
        cmocka_unit_test(test_coord_mac),
        cmocka_unit_test(test_mac_equal_and_random),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_secret_env),
    };

    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
