/*
 * trib_tls_test.c -- the TLS file checks and a real handshake over nng's
 * tls+tcp:// on loopback. Certificates are made here with libcrypto
 * (a CA, a server certificate for DNS:localhost, a client certificate, an
 * unrelated CA, and bad variants), in a fresh temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "trib_err.h"
#include "trib_tls.h"

static char dir[] = "/tmp/trib_tls_test.XXXXXX";

struct ident {
    EVP_PKEY *key;
    X509 *cert;
};

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

/* A certificate for cn, signed by ca (NULL: self-signed CA), valid from
 * 'from' to 'to' seconds relative to now; san: subjectAltName or NULL. */
static struct ident make(const char *cn, const struct ident *ca,
                         const char *san, long from, long to)
{
    struct ident id;
    X509_NAME *name;
    static long serial = 1;

    id.key = EVP_EC_gen("P-256");
    assert_non_null(id.key);
    id.cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(id.cert), serial++);
    X509_set_version(id.cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(id.cert), from);
    X509_gmtime_adj(X509_getm_notAfter(id.cert), to);
    X509_set_pubkey(id.cert, id.key);
    name = X509_get_subject_name(id.cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(id.cert,
                         ca != NULL ? X509_get_subject_name(ca->cert) : name);
    if (ca == NULL) {
        add_ext(id.cert, id.cert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(id.cert, id.cert, NID_key_usage,
                "critical,keyCertSign,cRLSign");
    }
    if (san != NULL) {
        add_ext(id.cert, ca != NULL ? ca->cert : id.cert, NID_subject_alt_name,
                san);
    }
    assert_true(
        X509_sign(id.cert, ca != NULL ? ca->key : id.key, EVP_sha256()) > 0);
    return id;
}

static void ident_free(struct ident *id)
{
    X509_free(id->cert);
    EVP_PKEY_free(id->key);
}

static const char *path(const char *name)
{
    static char buf[8][256];
    static int i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

static void write_cert(const char *name, X509 *x)
{
    FILE *f = fopen(path(name), "w");

    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k, const char *pass,
                      mode_t mode)
{
    FILE *f = fopen(path(name), "w");

    assert_non_null(f);
    if (pass != NULL) {
        PEM_write_PrivateKey(f, k, EVP_aes_128_cbc(),
                             (const unsigned char *)pass, (int)strlen(pass),
                             NULL, NULL);
    } else {
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    }
    fclose(f);
    chmod(path(name), mode);
}

static void write_text(const char *name, const char *text)
{
    FILE *f = fopen(path(name), "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    struct ident ca, ca2, srv, cli, old, ips;

    (void)state;
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    ca = make("test ca", NULL, NULL, -60, 86400);
    ca2 = make("other ca", NULL, NULL, -60, 86400);
    srv = make("localhost", &ca, "DNS:localhost", -60, 86400);
    cli = make("agent-1", &ca, NULL, -60, 86400);
    old = make("localhost", &ca, "DNS:localhost", -7200, -3600);
    ips = make("127.0.0.1", &ca, "IP:127.0.0.1", -60, 86400);
    write_cert("ca.pem", ca.cert);
    write_cert("ca2.pem", ca2.cert);
    write_cert("srv.pem", srv.cert);
    write_key("srv.key", srv.key, NULL, 0600);
    write_key("srv-open.key", srv.key, NULL, 0644);
    write_key("srv-enc.key", srv.key, "pw", 0600);
    write_key("other.key", cli.key, NULL, 0600);
    write_cert("cli.pem", cli.cert);
    write_key("cli.key", cli.key, NULL, 0600);
    write_cert("old.pem", old.cert);
    write_key("old.key", old.key, NULL, 0600);
    write_cert("ips.pem", ips.cert);
    write_cert("bundle.pem", old.cert); /* an expired entry first */
    {
        FILE *f = fopen(path("bundle.pem"), "a");
        assert_non_null(f);
        PEM_write_X509(f, ca.cert);
        fclose(f);
    }
    write_key("ips.key", ips.key, NULL, 0600);
    write_cert("both.pem", srv.cert); /* certificate + key in one file */
    {
        FILE *f = fopen(path("both.pem"), "a");
        assert_non_null(f);
        PEM_write_PrivateKey(f, srv.key, NULL, NULL, 0, NULL, NULL);
        fclose(f);
        chmod(path("both.pem"), 0600);
    }
    write_cert("private-cert.pem", srv.cert);
    chmod(path("private-cert.pem"), 0600);
    write_text("garbage.pem", "this is not a certificate\n");
    write_text("garbage.key", "this is not a key\n");
    chmod(path("garbage.key"), 0600);
    write_text("garbage-pem.pem", "-----BEGIN CERTIFICATE-----\nAAAA!!\n"
                                  "-----END CERTIFICATE-----\n");
    ident_free(&ca);
    ident_free(&ca2);
    ident_free(&srv);
    ident_free(&cli);
    ident_free(&old);
    ident_free(&ips);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Builds a config; returns the code and leaves the message in err. */
static int build(enum trib_tls_role role, const char *ca, const char *cert,
                 const char *key, const char *url, char *err, size_t n)
{
    struct trib_tls_opts o;
    nng_tls_config *cfg = NULL;
    int rv;

    memset(&o, 0, sizeof(o));
    o.ca_file = ca ? path(ca) : NULL;
    o.cert_file = cert ? path(cert) : NULL;
    o.key_file = key ? path(key) : NULL;
    err[0] = '\0';
    rv = trib_tls_config_create(role, &o, url, &cfg, err, n);
    if (rv == 0) {
        assert_non_null(cfg);
        nng_tls_config_free(cfg);
    } else {
        assert_null(cfg);
    }
    return rv;
}

static void expect_err(enum trib_tls_role role, const char *ca,
                       const char *cert, const char *key, const char *want)
{
    char err[512];

    assert_int_equal(
        build(role, ca, cert, key, "tls+tcp://localhost:1", err, sizeof(err)),
        TRIB_ECONFIG);
    if (strstr(err, want) == NULL) {
        fail_msg("error '%s' does not mention '%s'", err, want);
    }
}

static void test_urls(void **state)
{
    char host[64];

    (void)state;
    assert_true(trib_tls_url("tls+tcp://localhost:7100"));
    assert_true(trib_tls_url("tls+tcp6://[::1]:7100"));
    assert_false(trib_tls_url("tcp://localhost:7100"));
    assert_false(trib_tls_url(NULL));
    assert_int_equal(
        trib_tls_url_host("tls+tcp://coord.example:7100", host, sizeof(host)),
        0);
    assert_string_equal(host, "coord.example");
    assert_int_equal(
        trib_tls_url_host("tls+tcp6://[::1]:7100", host, sizeof(host)), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(trib_tls_url_host("tls+tcp://:7100", host, sizeof(host)),
                     TRIB_EINVAL);
    assert_int_equal(trib_tls_url_host("nothing", host, sizeof(host)),
                     TRIB_EINVAL);
}

static void test_good(void **state)
{
    char err[512];

    (void)state;
    assert_int_equal(build(TRIB_TLS_SERVER, NULL, "srv.pem", "srv.key", NULL,
                           err, sizeof(err)),
                     0);
    assert_int_equal(build(TRIB_TLS_SERVER, "ca.pem", "srv.pem", "srv.key",
                           NULL, err, sizeof(err)),
                     0);
    assert_int_equal(
        build(TRIB_TLS_SERVER, NULL, "both.pem", NULL, NULL, err, sizeof(err)),
        0);
    assert_int_equal(build(TRIB_TLS_CLIENT, "ca.pem", NULL, NULL,
                           "tls+tcp://localhost:1", err, sizeof(err)),
                     0);
    /* a CA bundle with expired entries (as the system's) is fine */
    assert_int_equal(build(TRIB_TLS_CLIENT, "bundle.pem", NULL, NULL,
                           "tls+tcp://localhost:1", err, sizeof(err)),
                     0);
    assert_int_equal(build(TRIB_TLS_CLIENT, "ca.pem", "cli.pem", "cli.key",
                           "tls+tcp://localhost:1", err, sizeof(err)),
                     0);
}

static void test_bad_files(void **state)
{
    (void)state;
    expect_err(TRIB_TLS_SERVER, NULL, NULL, NULL, "--tls-cert");
    expect_err(TRIB_TLS_CLIENT, NULL, NULL, NULL, "--tls-ca");
    expect_err(TRIB_TLS_CLIENT, "ca.pem", NULL, "cli.key", "without");
    expect_err(TRIB_TLS_SERVER, NULL, "missing.pem", "srv.key", "No such file");
    expect_err(TRIB_TLS_SERVER, NULL, "garbage.pem", "srv.key",
               "no PEM certificate");
    expect_err(TRIB_TLS_SERVER, NULL, "garbage-pem.pem", "srv.key",
               "does not parse");
    expect_err(TRIB_TLS_CLIENT, "garbage.pem", NULL, NULL,
               "no PEM certificate");
    expect_err(TRIB_TLS_SERVER, NULL, "srv.pem", "garbage.key",
               "no PEM private key");
    expect_err(TRIB_TLS_SERVER, NULL, "srv.pem", "other.key", "does not match");
    expect_err(TRIB_TLS_SERVER, NULL, "srv.pem", "srv-open.key", "chmod 600");
    expect_err(TRIB_TLS_SERVER, NULL, "srv.pem", "srv-enc.key", "encrypted");
    expect_err(TRIB_TLS_SERVER, NULL, "old.pem", "old.key", "expired");
    expect_err(TRIB_TLS_CLIENT, "old.pem", NULL, NULL, "expired");
    expect_err(TRIB_TLS_SERVER, NULL, "ips.pem", "ips.key", "DNS name");
    /* the key in the certificate file: that file must be private */
    chmod(path("srv.pem"), 0644);
    expect_err(TRIB_TLS_SERVER, NULL, "srv.pem", NULL, "chmod 600");
    expect_err(TRIB_TLS_SERVER, NULL, "private-cert.pem", NULL,
               "no PEM private key");
}

static int dial(const char *ca, const char *cert, const char *key,
                const char *url, struct trib_tls_dial_stats *before,
                struct trib_tls_dial_stats *after)
{
    struct trib_tls_opts o;
    nng_tls_config *cfg;
    nng_socket s;
    nng_dialer d;
    char err[512];
    int rv;

    memset(&o, 0, sizeof(o));
    o.ca_file = ca != NULL ? path(ca) : NULL;
    o.cert_file = cert != NULL ? path(cert) : NULL;
    o.key_file = key != NULL ? path(key) : NULL;
    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(nng_dialer_create(&d, s, url), 0);
    if (trib_tls_url(url)) {
        assert_int_equal(trib_tls_config_create(TRIB_TLS_CLIENT, &o, url, &cfg,
                                                err, sizeof(err)),
                         0);
        assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
        nng_tls_config_free(cfg);
    }
    trib_tls_dial_stats(d, before);
    rv = nng_dialer_start(d, 0); /* blocking: the first attempt's result */
    trib_tls_dial_stats(d, after);
    nng_close(s);
    return rv;
}

/* A real handshake: the right CA connects; a wrong CA, a missing client
 * certificate and a plain tcp:// client fail, and the counters say why. */
static void test_handshake(void **state)
{
    struct trib_tls_opts so;
    struct trib_tls_dial_stats b, a;
    nng_tls_config *cfg;
    nng_socket rep;
    nng_listener l;
    char err[512], url[64], plain[64], why[512];
    int port = 0;

    (void)state;
    memset(&so, 0, sizeof(so));
    so.cert_file = path("srv.pem");
    so.key_file = path("srv.key");
    so.ca_file = path("ca.pem"); /* mutual TLS */
    assert_int_equal(trib_tls_config_create(TRIB_TLS_SERVER, &so, NULL, &cfg,
                                            err, sizeof(err)),
                     0);
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_listener_create(&l, rep, "tls+tcp://127.0.0.1:0"), 0);
    assert_int_equal(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg), 0);
    nng_tls_config_free(cfg);
    assert_int_equal(nng_listener_start(l, 0), 0);
    assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    snprintf(url, sizeof(url), "tls+tcp://localhost:%d", port);
    snprintf(plain, sizeof(plain), "tcp://localhost:%d", port);

    assert_int_equal(dial("ca.pem", "cli.pem", "cli.key", url, &b, &a), 0);

    assert_int_not_equal(dial("ca2.pem", "cli.pem", "cli.key", url, &b, &a), 0);
    if (a.known) {
        assert_int_equal(
            trib_tls_dial_explain(&b, &a, url, NULL, 1, 1, why, sizeof(why)),
            1);
        assert_non_null(strstr(why, "certificate not trusted"));
    }
    assert_int_not_equal(dial("ca.pem", NULL, NULL, url, &b, &a), 0);
    if (a.known) {
        assert_int_equal(
            trib_tls_dial_explain(&b, &a, url, NULL, 0, 1, why, sizeof(why)),
            1);
        assert_non_null(strstr(why, "client certificate"));
        assert_null(strstr(why, "resolve"));
    }
    assert_int_not_equal(dial(NULL, NULL, NULL, plain, &b, &a), 0);
    if (a.known) {
        assert_int_equal(
            trib_tls_dial_explain(&b, &a, plain, NULL, 0, 1, why, sizeof(why)),
            1);
        assert_non_null(strstr(why, "tls+tcp://"));
    }
    /* a host name that does not resolve: nng counts it like a closed
     * connection; without a probe the sentence names both */
    assert_int_not_equal(
        dial(NULL, NULL, NULL, "tcp://no-such-host.invalid:7", &b, &a), 0);
    if (a.known) {
        assert_int_equal(trib_tls_dial_explain(&b, &a,
                                               "tcp://no-such-host.invalid:7",
                                               NULL, 0, 0, why, sizeof(why)),
                         1);
        assert_non_null(strstr(why, "does not resolve"));
    }
    nng_close(rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_handshake),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
