/*
 * trib_auth.c -- HMAC-SHA256 handshake proofs and the shared secret's
 * sources (trib_auth.h; PROTOCOL.md, "Authentication").
 *
 * Each MAC is one HMAC() call over the concatenated message, built in a
 * stack buffer. The secret file is read whole (it is at most
 * TRIB_SECRET_MAX bytes); temporary copies are wiped with OPENSSL_cleanse.
 */
#include "trib_auth.h"
#include "trib_err.h"
#include "trib_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define AGENT_LABEL "trib-agent-v1"
#define COORD_LABEL "trib-coord-v1"
#define LABEL_LEN   (sizeof(AGENT_LABEL) - 1) /* both are 13 bytes, no NUL */

int trib_auth_random(void *buf, size_t n)
{
    unsigned char *p = buf;

    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;

        if (RAND_bytes(p, chunk) != 1) {
            return TRIB_EIO;
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

/* HMAC-SHA256(secret, msg). libcrypto failing here means it is broken
 * (SHA-256 is always available): a MAC we could not compute must never
 * compare equal to anything, so stop rather than return zeros. */
static void hmac(const void *secret, size_t secret_len, const uint8_t *msg,
                 size_t n, uint8_t mac[TRIB_WIRE_MAC])
{
    unsigned int len = 0;

    if (secret_len > INT_MAX ||
        HMAC(EVP_sha256(), secret, (int)secret_len, msg, n, mac, &len) ==
            NULL ||
        len != TRIB_WIRE_MAC) {
        fprintf(stderr, "FATAL [auth] AUTH-HMAC: HMAC-SHA256 failed\n");
        abort();
    }
}

/* Length of an agent id as it travels: the wire encoder cuts ids to
 * TRIB_WIRE_STR_MAX bytes at a UTF-8 boundary, and the coordinator
 * verifies over what it received. */
static uint32_t wire_id_len(struct trib_str id)
{
    uint32_t cut = TRIB_WIRE_STR_MAX;

    if (id.n <= TRIB_WIRE_STR_MAX) {
        return id.n;
    }
    while (cut > TRIB_WIRE_STR_MAX - 3 &&
           ((unsigned char)id.p[cut] & 0xc0) == 0x80) {
        cut--;
    }
    if (((unsigned char)id.p[cut] & 0xc0) == 0x80) {
        cut = TRIB_WIRE_STR_MAX;
    }
    return cut;
}

void trib_auth_agent_mac(const void *secret, size_t secret_len,
                         const uint8_t nonce_c[TRIB_WIRE_NONCE],
                         struct trib_str agent_id, uint64_t boot_id,
                         uint8_t mac[TRIB_WIRE_MAC])
{
    uint8_t msg[LABEL_LEN + TRIB_WIRE_NONCE + TRIB_WIRE_STR_MAX + 1 + 8];
    uint32_t idlen = agent_id.p != NULL ? wire_id_len(agent_id) : 0;
    size_t n = 0;
    int i;

    memcpy(msg, AGENT_LABEL, LABEL_LEN);
    n += LABEL_LEN;
    memcpy(msg + n, nonce_c, TRIB_WIRE_NONCE);
    n += TRIB_WIRE_NONCE;
    if (idlen > 0) {
        memcpy(msg + n, agent_id.p, idlen);
        n += idlen;
    }
    msg[n++] = 0x00; /* ends the id: no id/boot ambiguity */
    for (i = 7; i >= 0; i--) {
        msg[n++] = (uint8_t)(boot_id >> (i * 8)); /* big-endian */
    }
    hmac(secret, secret_len, msg, n, mac);
}

void trib_auth_coord_mac(const void *secret, size_t secret_len,
                         const uint8_t nonce_a[TRIB_WIRE_NONCE],
                         const uint8_t nonce_c[TRIB_WIRE_NONCE],
                         uint8_t mac[TRIB_WIRE_MAC])
{
    uint8_t msg[LABEL_LEN + 2 * TRIB_WIRE_NONCE];

    memcpy(msg, COORD_LABEL, LABEL_LEN);
    memcpy(msg + LABEL_LEN, nonce_a, TRIB_WIRE_NONCE);
    memcpy(msg + LABEL_LEN + TRIB_WIRE_NONCE, nonce_c, TRIB_WIRE_NONCE);
    hmac(secret, secret_len, msg, sizeof(msg), mac);
}

int trib_auth_mac_equal(const uint8_t a[TRIB_WIRE_MAC],
                        const uint8_t b[TRIB_WIRE_MAC])
{
    return CRYPTO_memcmp(a, b, TRIB_WIRE_MAC) == 0;
}

/* ---- the secret --------------------------------------------------------- */

static void say(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Reads at most TRIB_SECRET_MAX + 1 bytes of the secret file into buf:
 * *n = bytes read. Refuses anything but a regular file that group and
 * others cannot read. */
static int read_file(const char *path, char *buf, size_t *n, char *errbuf,
                     size_t errlen)
{
    struct stat st;
    int fd, rc = 0;

    *n = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        say(errbuf, errlen, "cannot open secret file %s: %s", path,
            strerror(errno));
        return TRIB_ECONFIG;
    }
    if (fstat(fd, &st) != 0) {
        say(errbuf, errlen, "cannot stat secret file %s: %s", path,
            strerror(errno));
        rc = TRIB_EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        say(errbuf, errlen, "secret file %s is not a regular file", path);
        rc = TRIB_ECONFIG;
        goto out;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH)) {
        say(errbuf, errlen,
            "secret file %s is readable by group or others (mode %04o); "
            "run: chmod 600 %s",
            path, (unsigned)(st.st_mode & 07777), path);
        rc = TRIB_ECONFIG;
        goto out;
    }
    while (*n < TRIB_SECRET_MAX + 1) {
        ssize_t r = read(fd, buf + *n, TRIB_SECRET_MAX + 1 - *n);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            say(errbuf, errlen, "cannot read secret file %s: %s", path,
                strerror(errno));
            rc = TRIB_EIO;
            goto out;
        }
        if (r == 0) {
            break;
        }
        *n += (size_t)r;
    }
out:
    close(fd);
    return rc;
}

int trib_auth_load_secret(const char *path, char **out, size_t *len,
                          char *errbuf, size_t errlen)
{
    char buf[TRIB_SECRET_MAX + 1];
    const char *what = path != NULL ? path : "TRIBUTARY_SECRET";
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    *len = 0;
    if (path != NULL) {
        rc = read_file(path, buf, &n, errbuf, errlen);
        if (rc != 0) {
            goto out;
        }
    } else {
        const char *env = getenv("TRIBUTARY_SECRET");

        if (env == NULL) {
            return 0; /* no secret: authentication off */
        }
        n = strnlen(env, TRIB_SECRET_MAX + 1);
        memcpy(buf, env, n);
    }
    if (n > TRIB_SECRET_MAX) {
        say(errbuf, errlen, "secret in %s is longer than %d bytes", what,
            TRIB_SECRET_MAX);
        rc = TRIB_ECONFIG;
        goto out;
    }
    while (n > 0 && is_space(buf[n - 1])) {
        n--; /* "echo secret > file" adds a newline */
    }
    if (n == 0) {
        say(errbuf, errlen, "secret in %s is empty", what);
        rc = TRIB_ECONFIG;
        goto out;
    }
    *out = trib_malloc(n + 1);
    memcpy(*out, buf, n);
    (*out)[n] = '\0';
    *len = n;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}
