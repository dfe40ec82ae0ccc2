/*
 * trib_tls -- TLS for the agent->coordinator and CLI->coordinator links:
 * nng's tls+tcp:// transport (mbedTLS inside libnng), with the PEM files
 * checked by us first so that a mistake is a clear message at start-up
 * instead of a handshake that fails later without a word (docs/TLS.md).
 *
 * What is checked (OpenSSL's libcrypto parses; nng's mbedTLS then gets
 * the re-encoded PEM): every file is a readable regular file of at most
 * 1 MiB; certificates parse, are not expired and not yet valid; the
 * private key parses, is not encrypted, matches the certificate, and is
 * not readable by group or others (the shared secret's rule: refused);
 * a server certificate carries at least one DNS name (mbedTLS 2.x does
 * not match IP-address SANs).
 *
 * Also here: reading nng's per-dialer counters to say why a dialer is not
 * connected (a failed TLS handshake is otherwise retried in silence).
 *
 * Ownership: trib_tls_config_create() returns an nng_tls_config the
 * caller releases with nng_tls_config_free() (a listener or dialer it was
 * attached to keeps its own reference). Options are borrowed.
 * Threading: no shared state; call from any thread.
 */
#ifndef TRIB_TLS_H
#define TRIB_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

/* Environment variables of the TLS options (same in every program). */
#define TRIB_TLS_ENV_CA          "TRIBUTARY_TLS_CA"
#define TRIB_TLS_ENV_CERT        "TRIBUTARY_TLS_CERT"
#define TRIB_TLS_ENV_KEY         "TRIBUTARY_TLS_KEY"
#define TRIB_TLS_ENV_SERVER_NAME "TRIBUTARY_TLS_SERVER_NAME"
#define TRIB_TLS_ENV_CLIENT_CA   "TRIBUTARY_TLS_CLIENT_CA"

enum trib_tls_role { TRIB_TLS_CLIENT, TRIB_TLS_SERVER };

struct trib_tls_opts {
    /* client: the CA(s) the server's certificate must chain to (required);
     * server: the CA(s) client certificates must chain to -- when set,
     * every client must present one (mutual TLS). */
    const char *ca_file;
    const char *cert_file;   /* our certificate (+ chain), PEM; server:
                                required; client: for mutual TLS         */
    const char *key_file;    /* its private key, PEM; NULL: in cert_file  */
    const char *server_name; /* client: the name the server's
                                certificate must carry; NULL: the URL's
                                host                                   */
};

/* 1 when url uses nng's TLS transport (tls+tcp://, tls+tcp4://,
 * tls+tcp6://), else 0. */
int trib_tls_url(const char *url);

/* 1 when any file option is set (ca_file, cert_file, key_file). */
int trib_tls_opts_set(const struct trib_tls_opts *o);

/* The host of a URL "scheme://host:port" ("[::1]" -> "::1"). 0, or
 * TRIB_EINVAL when there is none or it does not fit in n. */
int trib_tls_url_host(const char *url, char *host, size_t n);

/*
 * Loads and checks the files for 'role' and builds an nng TLS config:
 * server: own certificate + key (required), client CAs (optional, then
 * client certificates are required); client: CAs (required), optional
 * certificate + key, the server name (o->server_name, else url's host;
 * url may be NULL for the server). 0, or TRIB_ECONFIG with a one-line
 * reason in err ("TLS key file /x: readable by group or others ...").
 * Log lines: a warning when a client verifies an IP address (mbedTLS
 * only matches DNS names; the handshake will fail).
 */
int trib_tls_config_create(enum trib_tls_role role,
                           const struct trib_tls_opts *o, const char *url,
                           nng_tls_config **out, char *err, size_t errlen);

/* Connection attempts of a dialer by outcome (nng's statistics). */
struct trib_tls_dial_stats {
    int known;        /* 0: nng keeps no statistics here */
    uint64_t connect; /* connections established        */
    uint64_t refused; /* connection refused             */
    uint64_t auth;    /* TLS: certificate not accepted  */
    uint64_t closed;  /* peer closed during the handshake, protocol
                         errors, other errors (nng counts an
                         unresolvable host name here too)  */
    uint64_t timeout; /* no answer                      */
};
void trib_tls_dial_stats(nng_dialer d, struct trib_tls_dial_stats *st);

/*
 * A TLS listener's connections whose handshake it refused so far (a
 * missing or untrusted client certificate: nng's "auth"; a failed SP
 * negotiation: "proto"). Not counted, because nng counts them together
 * with every established connection that ends: clients that hung up
 * during the handshake (they do not trust our certificate, or speak
 * plain TCP) -- only the client can report those.
 */
uint64_t trib_tls_listener_refused(nng_listener l);

/*
 * Why a dialer to url made no connection between two readings 'before'
 * and 'now' of its statistics: writes a sentence into why (no trailing
 * period) and returns 1, or returns 0 when the counters say nothing (no
 * attempt failed in a way they record). 'server_name' is the name the
 * client verifies (NULL: the URL's host); 'have_cert' whether it
 * presents a client certificate; 'opened' whether a TCP connection to
 * the address is known to open (a probe of the caller's): nng counts a
 * host name that does not resolve like a connection closed during the
 * handshake, so without that knowledge the sentence names both.
 */
int trib_tls_dial_explain(const struct trib_tls_dial_stats *before,
                          const struct trib_tls_dial_stats *now,
                          const char *url, const char *server_name,
                          int have_cert, int opened, char *why, size_t n);

#endif /* TRIB_TLS_H */
