/*
 * trib_auth -- the shared-secret handshake between agent and coordinator,
 * and the secret's sources. No secret ever crosses the wire: each side
 * proves it knows the secret with HMAC-SHA256 over the other side's fresh
 * random nonce (PROTOCOL.md, "Authentication").
 *
 *   agent  -> HELLO {agent_id, boot_id, nonce_a, ...}
 *   coord  -> CHALLENGE {nonce_c}
 *   agent  -> AUTH {mac_a = HMAC(secret, "trib-agent-v1" | nonce_c |
 *                              agent_id | 0x00 | boot_id (8 bytes BE))}
 *   coord  -> WELCOME {mac_c = HMAC(secret, "trib-coord-v1" | nonce_a |
 *                                nonce_c)} or ERROR (EACCES-like: wrong
 *                                or missing secret; logged)
 *
 * Uses OpenSSL's libcrypto (HMAC, RAND_bytes): a well-kept implementation
 * beats writing SHA-256 ourselves.
 *
 * Threading: no shared state.
 */
#ifndef TRIB_AUTH_H
#define TRIB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "trib_wire.h"

#define TRIB_SECRET_MAX 4096

/* Fills buf with n cryptographically random bytes. 0 or TRIB_EIO. */
int trib_auth_random(void *buf, size_t n);

void trib_auth_agent_mac(const void *secret, size_t secret_len,
                         const uint8_t nonce_c[TRIB_WIRE_NONCE],
                         struct trib_str agent_id, uint64_t boot_id,
                         uint8_t mac[TRIB_WIRE_MAC]);
void trib_auth_coord_mac(const void *secret, size_t secret_len,
                         const uint8_t nonce_a[TRIB_WIRE_NONCE],
                         const uint8_t nonce_c[TRIB_WIRE_NONCE],
                         uint8_t mac[TRIB_WIRE_MAC]);

/* Constant-time comparison of two MACs: 1 when equal. */
int trib_auth_mac_equal(const uint8_t a[TRIB_WIRE_MAC],
                        const uint8_t b[TRIB_WIRE_MAC]);

/*
 * Loads the shared secret: from the file 'path' when non-NULL (the file
 * must not be readable by group or others, else TRIB_ECONFIG with a message
 * saying so), else from the environment variable TRIBUTARY_SECRET. Trailing
 * newline/whitespace is stripped from either; longer than TRIB_SECRET_MAX
 * is TRIB_ECONFIG. *out gets a malloc'ed buffer
 * (caller frees with trib_free) and *len its length; *out = NULL and
 * return 0 when neither is set. An empty secret is TRIB_ECONFIG.
 * 'errbuf' gets a one-line reason on failure.
 */
int trib_auth_load_secret(const char *path, char **out, size_t *len,
                          char *errbuf, size_t errlen);

#endif /* TRIB_AUTH_H */
