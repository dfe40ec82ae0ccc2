/*
 * trib_tls.c -- PEM files checked with libcrypto, handed to nng's TLS
 * (mbedTLS) re-encoded; dialer statistics turned into a reason.
 *
 * Reading order: URL helpers, reading a file, certificates, the private
 * key, the nng config, the dialer's counters.
 */
#include "trib_tls.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define FILE_MAX (1 << 20) /* a CA bundle (ca-certificates.crt) is ~200 KiB */

static int say(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int say(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return TRIB_ECONFIG;
}

/* ---- URLs ---------------------------------------------------------------- */

int trib_tls_url(const char *url)
{
    return url != NULL && (strncmp(url, "tls+tcp://", 10) == 0 ||
                           strncmp(url, "tls+tcp4://", 11) == 0 ||
                           strncmp(url, "tls+tcp6://", 11) == 0);
}

int trib_tls_opts_set(const struct trib_tls_opts *o)
{
    return o != NULL &&
           (o->ca_file != NULL || o->cert_file != NULL || o->key_file != NULL);
}

int trib_tls_url_host(const char *url, char *host, size_t n)
{
    const char *h = url != NULL ? strstr(url, "://") : NULL;
    const char *end;
    size_t len;

    if (h == NULL) {
        return TRIB_EINVAL;
    }
    h += 3;
    if (*h == '[') {
        h++;
        end = strchr(h, ']');
    } else {
        end = strrchr(h, ':');
    }
    if (end == NULL) {
        end = h + strlen(h);
    }
    len = (size_t)(end - h);
    if (len == 0 || len >= n) {
        return TRIB_EINVAL;
    }
    memcpy(host, h, len);
    host[len] = '\0';
    return 0;
}

static int is_ip(const char *host)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

/* ---- files --------------------------------------------------------------- */

/* Reads a whole PEM file (NUL-terminated) into *out; 'what' names it in
 * messages ("TLS key file"). A private file must not be readable by
 * group or others. */
static int read_pem(const char *path, const char *what, int private_file,
                    char **out, size_t *len, char *err, size_t n)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc = 0;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return say(err, n, "cannot open %s %s: %s", what, path,
                   strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = say(err, n, "%s %s is not a regular file", what, path);
        goto out;
    }
    if (private_file && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
        rc = say(err, n,
                 "%s %s holds a private key and is readable by group or "
                 "others (mode %04o); run: chmod 600 %s",
                 what, path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size > FILE_MAX) {
        rc = say(err, n, "%s %s is larger than 1 MiB: not a PEM file?", what,
                 path);
        goto out;
    }
    buf = trib_malloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            rc = say(err, n, "cannot read %s %s: %s", what, path,
                     strerror(errno));
            goto out;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, (size_t)st.st_size + 1);
        trib_free(buf);
    }
    close(fd);
    return rc;
}

static void free_secret(char *p, size_t len)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, len);
        trib_free(p);
    }
}

/* ---- certificates -------------------------------------------------------- */

struct chain {
    X509 **certs; /* heap, grown by parse_certs */
    int n, cap;
};

static void chain_free(struct chain *c)
{
    int i;

    for (i = 0; i < c->n; i++) {
        X509_free(c->certs[i]);
    }
    trib_free(c->certs);
    c->certs = NULL;
    c->n = c->cap = 0;
}

static void subject(X509 *x, char *buf, size_t n)
{
    X509_NAME_oneline(X509_get_subject_name(x), buf, (int)n);
}

static void asn1_time(const ASN1_TIME *t, char *buf, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    long len;

    buf[0] = '\0';
    if (b == NULL) {
        return;
    }
    if (ASN1_TIME_print(b, t) == 1) {
        len = BIO_get_mem_data(b, &p);
        snprintf(buf, n, "%.*s", (int)len, p);
    }
    BIO_free(b);
}

/* Every certificate of a PEM text (other blocks, e.g. a key, are
 * skipped). Our own chain: each must be within its validity period. A CA
 * bundle (e.g. the system's, which holds expired roots): at least one. */
static int parse_certs(const char *text, size_t len, const char *what,
                       const char *path, int bundle, struct chain *c, char *err,
                       size_t n)
{
    BIO *b = BIO_new_mem_buf(text, (int)len);
    char name[256], when[64];
    X509 *x;
    int i, valid = 0, invalid = 0;

    if (b == NULL) {
        return say(err, n, "out of memory reading %s", path);
    }
    ERR_clear_error();
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 4;
            c->certs = trib_realloc(c->certs, (size_t)c->cap * sizeof(X509 *));
        }
        c->certs[c->n++] = x;
    }
    BIO_free(b);
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE &&
        ERR_peek_last_error() != 0) {
        char e[160];
        ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
        ERR_clear_error();
        chain_free(c);
        return say(err, n, "%s %s: a certificate in it does not parse (%s)",
                   what, path, e);
    }
    ERR_clear_error();
    if (c->n == 0) {
        return say(err, n,
                   "%s %s: no PEM certificate in it (expected "
                   "-----BEGIN CERTIFICATE-----)",
                   what, path);
    }
    for (i = 0; i < c->n; i++) {
        x = c->certs[i];
        if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
            if (invalid++ == 0) {
                subject(x, name, sizeof(name));
                asn1_time(X509_get0_notAfter(x), when, sizeof(when));
                say(err, n, "%s %s: certificate %s expired on %s", what, path,
                    name, when);
            }
        } else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
            if (invalid++ == 0) {
                subject(x, name, sizeof(name));
                asn1_time(X509_get0_notBefore(x), when, sizeof(when));
                say(err, n,
                    "%s %s: certificate %s is not valid before %s (clock "
                    "wrong?)",
                    what, path, name, when);
            }
        } else {
            valid++;
        }
    }
    if (valid == 0 || (invalid > 0 && !bundle)) {
        chain_free(c);
        return TRIB_ECONFIG; /* err says which */
    }
    return 0;
}

/* A server certificate must name a host as mbedTLS clients compare:
 * DNS names of the subjectAltName, or without one the common name. */
static int check_dns_name(X509 *x, const char *path, char *err, size_t n)
{
    GENERAL_NAMES *names =
        X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int i, dns = 0, ip = 0;

    if (names == NULL) {
        return 0; /* no SAN: the CN is compared */
    }
    for (i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

        dns += g->type == GEN_DNS;
        ip += g->type == GEN_IPADD;
    }
    GENERAL_NAMES_free(names);
    if (dns == 0) {
        return say(err, n,
                   "TLS certificate file %s: its subjectAltName has %s but no "
                   "DNS name; nng's TLS (mbedTLS) matches DNS names only, so "
                   "no client could verify it: issue it for a host name "
                   "(e.g. DNS:coordinator.example or DNS:localhost)",
                   path, ip > 0 ? "IP addresses" : "entries");
    }
    return 0;
}

/* ---- the private key ----------------------------------------------------- */

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int parse_key(const char *text, size_t len, const char *path, X509 *leaf,
                     EVP_PKEY **out, char *err, size_t n)
{
    BIO *b = BIO_new_mem_buf(text, (int)len);
    EVP_PKEY *k;

    *out = NULL;
    if (b == NULL) {
        return say(err, n, "out of memory reading %s", path);
    }
    k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    ERR_clear_error();
    if (k == NULL) {
        if (strstr(text, "ENCRYPTED") != NULL) {
            return say(err, n,
                       "TLS key file %s: the private key is encrypted "
                       "(passphrases are not supported); decrypt it to a "
                       "file only the service can read: openssl pkey -in "
                       "%s -out KEY.pem",
                       path, path);
        }
        if (strstr(text, "PRIVATE KEY-----") == NULL) {
            return say(err, n,
                       "TLS key file %s: no PEM private key in it (expected "
                       "-----BEGIN PRIVATE KEY-----)",
                       path);
        }
        return say(err, n, "TLS key file %s: the private key does not parse",
                   path);
    }
    if (X509_check_private_key(leaf, k) != 1) {
        char name[256];

        ERR_clear_error();
        subject(leaf, name, sizeof(name));
        EVP_PKEY_free(k);
        return say(err, n,
                   "TLS key file %s: the private key does not match the "
                   "certificate %s",
                   path, name);
    }
    *out = k;
    return 0;
}

/* ---- re-encoding for mbedTLS --------------------------------------------- */

/* The PEM text a BIO holds, NUL-terminated, on the heap. */
static char *bio_text(BIO *b, size_t *len)
{
    char *p, *s;
    long l = BIO_get_mem_data(b, &p);

    s = trib_malloc((size_t)l + 1);
    memcpy(s, p, (size_t)l);
    s[l] = '\0';
    *len = (size_t)l;
    return s;
}

static char *chain_pem(const struct chain *c, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s;
    int i;

    if (b == NULL) {
        return NULL;
    }
    for (i = 0; i < c->n; i++) {
        PEM_write_bio_X509(b, c->certs[i]);
    }
    s = bio_text(b, len);
    BIO_free(b);
    return s;
}

static char *key_pem(EVP_PKEY *k, size_t *len)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *s = NULL;

    if (b == NULL) {
        return NULL;
    }
    if (PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1) {
        s = bio_text(b, len);
    }
    BIO_free(b);
    return s;
}

/* ---- the nng config ------------------------------------------------------ */

/* Certificate (+ chain) and key -> own_cert. */
static int own_cert(nng_tls_config *cfg, const struct trib_tls_opts *o,
                    int server, char *err, size_t n)
{
    const char *key_path = o->key_file != NULL ? o->key_file : o->cert_file;
    char *ctext = NULL, *ktext = NULL, *cpem = NULL, *kpem = NULL;
    size_t clen = 0, klen = 0, cplen = 0, kplen = 0;
    struct chain c = {.certs = NULL};
    EVP_PKEY *k = NULL;
    int rc, rv;

    rc = read_pem(o->cert_file, "TLS certificate file", o->key_file == NULL,
                  &ctext, &clen, err, n);
    if (rc != 0) {
        goto out;
    }
    if ((rc = parse_certs(ctext, clen, "TLS certificate file", o->cert_file, 0,
                          &c, err, n)) != 0) {
        goto out;
    }
    if (server && (rc = check_dns_name(c.certs[0], o->cert_file, err, n))) {
        goto out;
    }
    if (o->key_file != NULL) {
        rc = read_pem(o->key_file, "TLS key file", 1, &ktext, &klen, err, n);
        if (rc != 0) {
            goto out;
        }
    }
    rc = parse_key(ktext != NULL ? ktext : ctext, ktext != NULL ? klen : clen,
                   key_path, c.certs[0], &k, err, n);
    if (rc != 0) {
        goto out;
    }
    cpem = chain_pem(&c, &cplen);
    kpem = key_pem(k, &kplen);
    if (cpem == NULL || kpem == NULL) {
        rc = say(err, n, "out of memory encoding %s", o->cert_file);
        goto out;
    }
    rv = nng_tls_config_own_cert(cfg, cpem, kpem, NULL);
    if (rv != 0) {
        rc = say(err, n,
                 "TLS certificate file %s: nng's TLS (mbedTLS) cannot use "
                 "this certificate and key: %s (RSA and ECDSA P-256/P-384 "
                 "keys work; Ed25519 does not)",
                 o->cert_file, nng_strerror(rv));
    }
out:
    chain_free(&c);
    EVP_PKEY_free(k);
    free_secret(ktext, klen);
    free_secret(ctext, clen);
    free_secret(kpem, kplen);
    trib_free(cpem);
    return rc;
}

static int ca_chain(nng_tls_config *cfg, const char *path, char *err, size_t n)
{
    char *text = NULL, *pem = NULL;
    size_t len = 0, plen = 0;
    struct chain c = {.certs = NULL};
    int rc, rv;

    rc = read_pem(path, "TLS CA file", 0, &text, &len, err, n);
    if (rc != 0) {
        return rc;
    }
    rc = parse_certs(text, len, "TLS CA file", path, 1, &c, err, n);
    if (rc != 0) {
        goto out;
    }
    pem = chain_pem(&c, &plen);
    if (pem == NULL) {
        rc = say(err, n, "out of memory encoding %s", path);
        goto out;
    }
    rv = nng_tls_config_ca_chain(cfg, pem, NULL);
    if (rv != 0) {
        rc = say(err, n, "TLS CA file %s: nng's TLS cannot use it: %s", path,
                 nng_strerror(rv));
    }
out:
    chain_free(&c);
    trib_free(text);
    trib_free(pem);
    return rc;
}

int trib_tls_config_create(enum trib_tls_role role,
                           const struct trib_tls_opts *o, const char *url,
                           nng_tls_config **out, char *err, size_t errlen)
{
    int server = role == TRIB_TLS_SERVER;
    nng_tls_config *cfg = NULL;
    char host[256];
    const char *name;
    int rc, rv;

    *out = NULL;
    if (server && o->cert_file == NULL) {
        return say(err, errlen,
                   "a TLS address needs the coordinator's certificate and "
                   "key (--tls-cert and --tls-key)");
    }
    if (!server && o->ca_file == NULL) {
        return say(err, errlen,
                   "%s is a TLS address: give the CA that signed the "
                   "coordinator's certificate (--tls-ca FILE)",
                   url != NULL ? url : "the coordinator");
    }
    if (o->key_file != NULL && o->cert_file == NULL) {
        return say(err, errlen,
                   "a TLS key (--tls-key) without its certificate "
                   "(--tls-cert)");
    }
    rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER
                                           : NNG_TLS_MODE_CLIENT);
    if (rv != 0) {
        return say(err, errlen, "cannot set up TLS: %s (libnng without TLS?)",
                   nng_strerror(rv));
    }
    if (o->cert_file != NULL &&
        (rc = own_cert(cfg, o, server, err, errlen)) != 0) {
        goto fail;
    }
    if (o->ca_file != NULL &&
        (rc = ca_chain(cfg, o->ca_file, err, errlen)) != 0) {
        goto fail;
    }
    if (server) {
        rv = nng_tls_config_auth_mode(cfg, o->ca_file != NULL
                                               ? NNG_TLS_AUTH_MODE_REQUIRED
                                               : NNG_TLS_AUTH_MODE_NONE);
    } else {
        name = o->server_name;
        if (name == NULL) {
            if (trib_tls_url_host(url, host, sizeof(host)) != 0) {
                rc = say(err, errlen,
                         "%s: no host name to verify the coordinator's "
                         "certificate against (--tls-server-name NAME)",
                         url != NULL ? url : "(no URL)");
                goto fail;
            }
            name = host;
        }
        if (is_ip(name)) {
            TRIB_WARN("TLS-NAME",
                      "%s: verifying the coordinator's certificate against "
                      "the IP address %s, but nng's TLS (mbedTLS) matches "
                      "DNS names only: use a host name in the URL or "
                      "--tls-server-name NAME",
                      url != NULL ? url : "", name);
        }
        rv = nng_tls_config_server_name(cfg, name);
        if (rv == 0) {
            rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
        }
    }
    if (rv != 0) {
        rc = say(err, errlen, "cannot set up TLS: %s", nng_strerror(rv));
        goto fail;
    }
    *out = cfg;
    return 0;

fail:
    nng_tls_config_free(cfg);
    return rc;
}

/* ---- why a dialer does not connect ----------------------------------------
 */

static uint64_t stat_value(nng_stat *parent, const char *name)
{
    nng_stat *s = nng_stat_find(parent, name);

    return s != NULL ? nng_stat_value(s) : 0;
}

/* The statistics scope 'kind' ("dialer", "listener") whose "id" child is
 * id. Not nng_stat_find_dialer/_listener: in libnng 1.5 they return the
 * first scope of the kind whatever the id, so a process with two
 * listeners (the coordinator) read the first one's counters for both. */
static nng_stat *find_scope(nng_stat *st, const char *kind, int id)
{
    nng_stat *c, *found;

    if (st == NULL || nng_stat_type(st) != NNG_STAT_SCOPE) {
        return NULL;
    }
    if (strcmp(nng_stat_name(st), kind) == 0 &&
        (c = nng_stat_find(st, "id")) != NULL &&
        nng_stat_value(c) == (uint64_t)id) {
        return st;
    }
    for (c = nng_stat_child(st); c != NULL; c = nng_stat_next(c)) {
        if ((found = find_scope(c, kind, id)) != NULL) {
            return found;
        }
    }
    return NULL;
}

uint64_t trib_tls_listener_refused(nng_listener l)
{
    nng_stat *all = NULL, *ls;
    uint64_t n = 0;

    if (nng_stats_get(&all) != 0) {
        return 0;
    }
    ls = find_scope(all, "listener", nng_listener_id(l));
    if (ls != NULL) {
        n = stat_value(ls, "auth") + stat_value(ls, "proto");
    }
    nng_stats_free(all);
    return n;
}

void trib_tls_dial_stats(nng_dialer d, struct trib_tls_dial_stats *st)
{
    nng_stat *all = NULL, *ds;

    memset(st, 0, sizeof(*st));
    if (nng_stats_get(&all) != 0) {
        return;
    }
    ds = find_scope(all, "dialer", nng_dialer_id(d));
    if (ds != NULL) {
        st->known = 1;
        st->connect = stat_value(ds, "connect");
        st->refused = stat_value(ds, "refused");
        st->auth = stat_value(ds, "auth");
        st->closed = stat_value(ds, "disconnect") + stat_value(ds, "proto") +
                     stat_value(ds, "other") + stat_value(ds, "reject");
        st->timeout = stat_value(ds, "timeout");
    }
    nng_stats_free(all);
}

int trib_tls_dial_explain(const struct trib_tls_dial_stats *b,
                          const struct trib_tls_dial_stats *a, const char *url,
                          const char *server_name, int have_cert, int opened,
                          char *why, size_t n)
{
    char host[256] = "";
    const char *name = server_name;
    int tls = trib_tls_url(url);
    /* nng's "other" errors include a name that does not resolve */
    const char *or_dns = opened ? ""
                                : " (or its host name does not resolve: "
                                  "check the address)";

    if (!a->known || !b->known || a->connect > b->connect) {
        return 0;
    }
    if (name == NULL && trib_tls_url_host(url, host, sizeof(host)) == 0) {
        name = host;
    }
    if (a->auth > b->auth && tls && have_cert) {
        /* The counters cannot tell which side refused the other's. */
        snprintf(why, n,
                 "TLS handshake with %s failed (certificate not trusted?): "
                 "either the coordinator's certificate is not signed by a "
                 "CA in --tls-ca or does not carry the name '%s'%s, or the "
                 "coordinator did not accept this client's certificate "
                 "(not signed by a CA its --tls-client-ca trusts?)",
                 url, name != NULL ? name : "",
                 name != NULL && is_ip(name)
                     ? " (mbedTLS matches DNS names only: use a host name "
                       "or --tls-server-name)"
                     : "");
        return 1;
    }
    if (a->auth > b->auth && tls) {
        snprintf(why, n,
                 "TLS handshake with %s failed (certificate not trusted?): "
                 "the coordinator's certificate is not signed by a CA in "
                 "--tls-ca, or does not carry the name '%s'%s (or the "
                 "address does not speak TLS)",
                 url, name != NULL ? name : "",
                 name != NULL && is_ip(name)
                     ? " -- mbedTLS matches DNS names only: use a host name "
                       "or --tls-server-name"
                     : "");
        return 1;
    }
    if (a->closed > b->closed || a->auth > b->auth) {
        if (tls && !have_cert) {
            snprintf(why, n,
                     "TLS handshake with %s failed: the coordinator closed "
                     "the connection; it probably requires a client "
                     "certificate (--tls-cert and --tls-key, signed by a CA "
                     "its --tls-client-ca trusts), or it is not a TLS "
                     "address%s",
                     url, or_dns);
        } else if (tls) {
            snprintf(why, n,
                     "TLS handshake with %s failed: the coordinator closed "
                     "the connection; it did not accept this client's "
                     "certificate (not signed by a CA its --tls-client-ca "
                     "trusts?), or it is not a TLS address%s",
                     url, or_dns);
        } else {
            snprintf(why, n,
                     "%s accepted the connection but closed it during the "
                     "handshake: is it a TLS address (then use tls+tcp:// "
                     "and --tls-ca)?%s",
                     url, or_dns);
        }
        return 1;
    }
    if (a->refused > b->refused) {
        snprintf(why, n, "connection to %s refused", url);
        return 1;
    }
    if (a->timeout > b->timeout) {
        snprintf(why, n, "no answer from %s", url);
        return 1;
    }
    return 0;
}
