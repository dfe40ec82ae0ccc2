/*
 * control_client.c -- blocking nng req client for the coordinator's control
 * address: QUERY/QUERY_REPLY and EVENTS/EVENTS_REPLY (docs/CONTROL.md).
 *
 * nng's req socket dials in the background, so a request to an address
 * nobody listens on simply waits for its send timeout. When that happens
 * nng's dialer counters explain a failed handshake (trib_tls), else
 * control_probe.c probes the address to tell the user why: refused,
 * unknown host, no answer.
 */
#include "control_client.h"
#include "control_probe.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "cli.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_tls.h"

const char trib_ctl_address_help[] =
    "Control address: --control URL, else $TRIBUTARY_CONTROL, else\n"
    "tcp://127.0.0.1:7101: the coordinator's --control address "
    "(tcp://HOST:PORT or\n"
    "ipc:///path). An address that does not answer within 3 s is an "
    "error (exit 1)\n"
    "that says why: connection refused, unknown host, no answer.\n"
    "A tls+tcp://HOST:PORT address needs --tls-ca FILE (or TRIBUTARY_TLS_CA); "
    "see\n"
    "'tributary --help' for --tls-cert, --tls-key, --tls-server-name.\n";

const char trib_ctl_tls_help[] =
    "TLS (a tls+tcp:// control address; docs/TLS.md), on every command "
    "that talks to\n"
    "the coordinator:\n"
    "  --tls-ca FILE           CA(s) that signed the coordinator's "
    "certificate\n"
    "                          (required) [TRIBUTARY_TLS_CA]\n"
    "  --tls-cert FILE         client certificate, when the coordinator "
    "requires one\n"
    "                          [TRIBUTARY_TLS_CERT]\n"
    "  --tls-key FILE          its private key (mode 0600; default: in "
    "--tls-cert)\n"
    "                          [TRIBUTARY_TLS_KEY]\n"
    "  --tls-server-name NAME  name the certificate must carry (default: "
    "the URL's\n"
    "                          host; a DNS name, not an IP address) "
    "[TRIBUTARY_TLS_SERVER_NAME]\n";

const char trib_ctl_exit_help[] =
    "Exit status:\n"
    "  0  success\n"
    "  1  error: the coordinator cannot be reached, did not answer, or "
    "refused the\n"
    "     query (the message says which)\n"
    "  2  usage error (unknown option, bad value)\n";

struct trib_ctl {
    nng_socket sock;
    nng_dialer dialer;
    char *url;
    const char *source;
    msgpack_sbuffer sb;
    struct trib_tls_dial_stats dial_seen; /* counters when dialing began */
    int tls_cert;                         /* presenting a client cert    */
    const char *tls_name;                 /* --tls-server-name or NULL   */
};

/* --tls-* flags (argv strings); NULL: the environment variable. */
static struct trib_tls_opts tls_flags;

static const struct {
    const char *flag, *env;
    size_t off;
} tls_options[] = {
    {"--tls-ca", TRIB_TLS_ENV_CA, offsetof(struct trib_tls_opts, ca_file)},
    {"--tls-cert", TRIB_TLS_ENV_CERT,
     offsetof(struct trib_tls_opts, cert_file)},
    {"--tls-key", TRIB_TLS_ENV_KEY, offsetof(struct trib_tls_opts, key_file)},
    {"--tls-server-name", TRIB_TLS_ENV_SERVER_NAME,
     offsetof(struct trib_tls_opts, server_name)},
};
#define NTLS (sizeof(tls_options) / sizeof(tls_options[0]))

static const char **tls_field(struct trib_tls_opts *o, size_t i)
{
    return (const char **)((char *)o + tls_options[i].off);
}

int trib_ctl_take_tls_flags(int argc, char **argv, const char *prog)
{
    int r, w = 0, rest = 0;
    size_t i, l;

    for (r = 0; r < argc; r++) {
        const char *a = argv[r];

        if (!rest && strcmp(a, "--") == 0) {
            rest = 1;
        }
        for (i = 0; !rest && i < NTLS; i++) {
            l = strlen(tls_options[i].flag);
            if (strncmp(a, tls_options[i].flag, l) != 0 ||
                (a[l] != '\0' && a[l] != '=')) {
                continue;
            }
            if (a[l] == '=') {
                *tls_field(&tls_flags, i) = a + l + 1;
            } else if (r + 1 < argc) {
                *tls_field(&tls_flags, i) = argv[++r];
            } else {
                *tls_field(&tls_flags, i) = NULL;
            }
            if (*tls_field(&tls_flags, i) == NULL ||
                **tls_field(&tls_flags, i) == '\0') {
                /* "--tls-ca=" or "--tls-ca $UNSET" */
                fprintf(stderr, "%s: option %s needs a value\n", prog,
                        tls_options[i].flag);
                return -1;
            }
            break;
        }
        if (rest || i == NTLS) {
            argv[w++] = argv[r];
        }
    }
    argv[w] = NULL;
    return w;
}

/* The effective TLS options: flags over the environment. */
static void tls_effective(struct trib_tls_opts *o, const char **src)
{
    size_t i;

    for (i = 0; i < NTLS; i++) {
        const char *v = *tls_field(&tls_flags, i);

        src[i] = tls_options[i].flag;
        if (v == NULL) {
            v = getenv(tls_options[i].env);
            v = v != NULL && v[0] != '\0' ? v : NULL;
            src[i] = tls_options[i].env;
        }
        *tls_field(o, i) = v;
    }
}

const char *trib_ctl_address(const char *flag, const char **source)
{
    const char *env;

    if (flag != NULL) {
        *source = "--control";
        return flag;
    }
    env = getenv(TRIB_CTL_ENV);
    if (env != NULL && env[0] != '\0') {
        *source = TRIB_CTL_ENV;
        return env;
    }
    *source = "the default";
    return TRIB_CTL_DEFAULT_URL;
}

static int fail(struct trib_ctl_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct trib_ctl_err *e, int code, const char *fmt, ...)
{
    va_list ap;

    e->code = code;
    e->remote = 0;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
    return code;
}

/* TLS for a tls+tcp:// URL; --tls-* flags with another URL are an error.
 * The TRIBUTARY_TLS_* variables are not: a plain address ignores them
 * (the CLI in a coordinator's environment, e.g. its container's health
 * check on a tcp:// control address, sees the coordinator's
 * TRIBUTARY_TLS_CERT and _KEY). 0, or the code (e filled). */
static int tls_setup(struct trib_ctl *c, struct trib_ctl_err *e)
{
    struct trib_tls_opts o;
    const char *src[NTLS];
    nng_tls_config *cfg;
    char err[512];
    size_t i;
    int rv;

    tls_effective(&o, src);
    if (!trib_tls_url(c->url)) {
        for (i = 0; i < NTLS; i++) {
            if (*tls_field(&tls_flags, i) != NULL) {
                return fail(e, TRIB_ECONFIG,
                            "%s is given but the control address %s%s%s%s "
                            "is not a TLS address (tls+tcp://HOST:PORT)",
                            src[i], c->url, c->source ? " (from " : "",
                            c->source ? c->source : "", c->source ? ")" : "");
            }
        }
        return 0;
    }
    if (o.ca_file == NULL) {
        return fail(e, TRIB_ECONFIG,
                    "the control address %s is a TLS address: give the CA "
                    "that signed the coordinator's certificate (--tls-ca "
                    "FILE or TRIBUTARY_TLS_CA)",
                    c->url);
    }
    if (trib_tls_config_create(TRIB_TLS_CLIENT, &o, c->url, &cfg, err,
                               sizeof(err)) != 0) {
        return fail(e, TRIB_ECONFIG, "%s", err);
    }
    rv = nng_dialer_set_ptr(c->dialer, NNG_OPT_TLS_CONFIG, cfg);
    nng_tls_config_free(cfg); /* the dialer keeps its own reference */
    if (rv != 0) {
        return fail(e, trib_err_from_nng(rv), "cannot set up TLS for %s: %s",
                    c->url, nng_strerror(rv));
    }
    c->tls_cert = o.cert_file != NULL;
    c->tls_name = o.server_name;
    return 0;
}

int trib_ctl_open(const char *url, const char *source, struct trib_ctl **out,
                  struct trib_ctl_err *e)
{
    struct trib_ctl *c = TRIB_NEW(struct trib_ctl);
    int rv;

    *out = NULL;
    c->url = trib_strdup(url);
    c->source = source;
    msgpack_sbuffer_init(&c->sb);
    rv = nng_req0_open(&c->sock);
    if (rv != 0) {
        fail(e, trib_err_from_nng(rv), "cannot open an nng socket: %s",
             nng_strerror(rv));
        goto fail_sb;
    }
    /* Replies are bounded; requests are never resent by nng on a timer
     * (a held `wait` may take long): a dropped connection re-sends the
     * request on the next one anyway. */
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, TRIB_WIRE_FRAME_MAX);
    nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 100);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
    rv = nng_dialer_create(&c->dialer, c->sock, url);
    if (rv != 0) {
        fail(e, trib_err_from_nng(rv),
             "invalid control address '%s'%s%s%s: %s (expected "
             "tcp://HOST:PORT or ipc:///path)",
             url, source ? " (from " : "", source ? source : "",
             source ? ")" : "", nng_strerror(rv));
        goto fail_sock;
    }
    if ((rv = tls_setup(c, e)) != 0) {
        goto fail_sock;
    }
    trib_tls_dial_stats(c->dialer, &c->dial_seen);
    rv = nng_dialer_start(c->dialer, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        fail(e, trib_err_from_nng(rv), "cannot dial '%s': %s", url,
             nng_strerror(rv));
        goto fail_sock;
    }
    *out = c;
    return 0;

fail_sock:
    nng_close(c->sock);
fail_sb:
    msgpack_sbuffer_destroy(&c->sb);
    trib_free(c->url);
    trib_free(c);
    return e->code;
}

void trib_ctl_close(struct trib_ctl *c)
{
    if (c == NULL) {
        return;
    }
    nng_close(c->sock);
    msgpack_sbuffer_destroy(&c->sb);
    trib_free(c->url);
    trib_free(c);
}

const char *trib_ctl_url(const struct trib_ctl *c)
{
    return c->url;
}

static int unreachable(const struct trib_ctl *c, struct trib_ctl_err *e)
{
    struct trib_tls_dial_stats now;
    char why[600], probe[400];
    int code, opened;

    /* Our own probe first: nng counts a host name that does not resolve
     * like a connection closed during the handshake. */
    code = trib_ctl_probe(c->url, &opened, probe, sizeof(probe));
    /* A connection opens: nng's counters know when the handshake failed
     * (TLS, or a plain client at a TLS address). */
    trib_tls_dial_stats(c->dialer, &now);
    if (opened &&
        (now.auth > c->dial_seen.auth || now.closed > c->dial_seen.closed) &&
        trib_tls_dial_explain(&c->dial_seen, &now, c->url, c->tls_name,
                              c->tls_cert, 1, why, sizeof(why))) {
        return fail(e, trib_tls_url(c->url) ? TRIB_EAUTH : TRIB_EPROTO,
                    "%s (control address from %s)", why,
                    c->source ? c->source : "the caller");
    }
    return fail(e, code,
                "cannot reach the coordinator at %s%s%s%s: %s — is "
                "tributary-coordinator running? set --control or "
                "TRIBUTARY_CONTROL",
                c->url, c->source ? " (from " : "", c->source ? c->source : "",
                c->source ? ")" : "", probe);
}

/* ---- requests ----------------------------------------------------------- */

/* Sends c->sb and receives the reply frame into *reply (caller frees). */
static int request(struct trib_ctl *c, int64_t hold_ms, nng_msg **reply,
                   struct trib_ctl_err *e)
{
    int64_t recv_ms;
    int rv;

    nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, TRIB_CTL_CONNECT_MS);
    rv = nng_send(c->sock, c->sb.data, c->sb.size, 0);
    if (rv == NNG_ETIMEDOUT) {
        return unreachable(c, e);
    }
    if (rv != 0) {
        return fail(e, trib_err_from_nng(rv),
                    "sending to the coordinator at %s failed: %s", c->url,
                    nng_strerror(rv));
    }
    recv_ms = (hold_ms > 0 ? hold_ms : 0) + TRIB_CTL_REPLY_MARGIN_MS;
    nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, (nng_duration)recv_ms);
    rv = nng_recvmsg(c->sock, reply, 0);
    if (rv == NNG_ETIMEDOUT) {
        return fail(e, TRIB_ETIMEDOUT,
                    "the coordinator at %s did not answer within %.1f s",
                    c->url, (double)recv_ms / 1000.0);
    }
    if (rv != 0) {
        return fail(e, trib_err_from_nng(rv),
                    "no reply from the coordinator at %s: %s", c->url,
                    nng_strerror(rv));
    }
    return 0;
}

/* Decodes a reply frame; turns an ERROR frame or an unexpected type into
 * an error. */
static int decode_reply(const struct trib_ctl *c, nng_msg *msg,
                        msgpack_zone *zone, uint32_t want,
                        struct trib_wire_msg *out, struct trib_ctl_err *e)
{
    int rv;

    rv = trib_wire_decode(nng_msg_body(msg), nng_msg_len(msg), zone, out);
    if (rv != 0) {
        return fail(e, TRIB_EPROTO,
                    "malformed reply from %s (%zu bytes): %s (is this a "
                    "tributary-coordinator control address?)",
                    c->url, nng_msg_len(msg), trib_strerror(rv));
    }
    if (out->type == TRIB_MSG_ERROR) {
        fail(e, out->u.error.code < 0 ? out->u.error.code : TRIB_EPROTO,
             "the coordinator at %s answered with an error: %.*s (%s)%s",
             c->url, (int)out->u.error.message.n,
             out->u.error.message.p ? out->u.error.message.p : "",
             trib_errname(out->u.error.code),
             out->u.error.code == TRIB_ENOTSUP
                 ? "; is this its --control address (not --listen)?"
                 : "");
        e->remote = 1;
        return e->code;
    }
    if (out->type != want) {
        return fail(e, TRIB_EPROTO,
                    "unexpected reply %s from %s (wanted %s; is this the "
                    "coordinator's --control address?)",
                    trib_wire_type_name(out->type), c->url,
                    trib_wire_type_name(want));
    }
    return 0;
}

/* The coordinator refused the query: its {"error": "..."} text. */
static int remote_error(const struct trib_ctl *c, const char *name, int code,
                        struct trib_str js, struct trib_ctl_err *e)
{
    json_t *doc = js.p ? json_loadb(js.p, js.n, 0, NULL) : NULL;
    const char *msg = NULL;

    if (doc != NULL) {
        msg = json_string_value(json_object_get(doc, "error"));
    }
    fail(e, code < 0 ? code : TRIB_EPROTO,
         "the coordinator refused the '%s' query: %s (%s)", name,
         msg ? msg : "no reason given", trib_errname(code));
    e->remote = 1;
    json_decref(doc);
    (void)c;
    return e->code;
}

int trib_ctl_query(struct trib_ctl *c, const char *name,
                   const struct trib_ctl_arg *args, int nargs, int64_t hold_ms,
                   char **text, json_t **doc, struct trib_ctl_err *e)
{
    struct trib_wire_query q;
    struct trib_wire_msg m;
    msgpack_zone zone;
    nng_msg *reply = NULL;
    json_error_t jerr;
    json_t *parsed;
    int i, rv;

    if (text != NULL) {
        *text = NULL;
    }
    if (doc != NULL) {
        *doc = NULL;
    }
    if (nargs > TRIB_WIRE_MAX_ARGS) {
        return fail(e, TRIB_EINVAL, "too many query arguments (%d)", nargs);
    }
    memset(&q, 0, sizeof(q));
    q.name = trib_str_c(name);
    for (i = 0; i < nargs; i++) {
        q.args[i].key = trib_str_c(args[i].key);
        q.args[i].is_str = args[i].str != NULL;
        q.args[i].str = trib_str_c(args[i].str);
        q.args[i].num = args[i].num;
    }
    q.nargs = nargs;
    msgpack_sbuffer_clear(&c->sb);
    trib_wire_enc_query(&c->sb, &q);
    rv = request(c, hold_ms, &reply, e);
    if (rv != 0) {
        return rv;
    }
    if (!msgpack_zone_init(&zone, 4096)) {
        nng_msg_free(reply);
        return fail(e, TRIB_ENOMEM, "out of memory");
    }
    rv = decode_reply(c, reply, &zone, TRIB_MSG_QUERY_REPLY, &m, e);
    if (rv != 0) {
        goto out;
    }
    if (m.u.query_reply.code != 0) {
        rv = remote_error(c, name, m.u.query_reply.code, m.u.query_reply.json,
                          e);
        goto out;
    }
    parsed = json_loadb(m.u.query_reply.json.p ? m.u.query_reply.json.p : "",
                        m.u.query_reply.json.n, 0, &jerr);
    if (parsed == NULL || !json_is_object(parsed)) {
        json_decref(parsed);
        rv = fail(e, TRIB_EPROTO,
                  "the coordinator's '%s' document is not a JSON object%s%s",
                  name, parsed == NULL ? ": " : "",
                  parsed == NULL ? jerr.text : "");
        goto out;
    }
    if (text != NULL) {
        *text = trib_strndup(m.u.query_reply.json.p, m.u.query_reply.json.n);
    }
    if (doc != NULL) {
        *doc = parsed;
    } else {
        json_decref(parsed);
    }
    rv = 0;
out:
    msgpack_zone_destroy(&zone);
    nng_msg_free(reply);
    return rv;
}

/* ---- events ------------------------------------------------------------- */

void trib_ctl_batch_init(struct trib_ctl_batch *b)
{
    memset(b, 0, sizeof(*b));
    msgpack_zone_init(&b->zone, 16384);
}

static void batch_clear(struct trib_ctl_batch *b)
{
    b->n = 0;
    b->next = 0;
    b->missed = 0;
    if (b->frame != NULL) {
        nng_msg_free(b->frame);
        b->frame = NULL;
    }
    msgpack_zone_clear(&b->zone);
}

void trib_ctl_batch_fini(struct trib_ctl_batch *b)
{
    batch_clear(b);
    trib_free(b->items);
    msgpack_zone_destroy(&b->zone);
    memset(b, 0, sizeof(*b));
}

int trib_ctl_events(struct trib_ctl *c, uint64_t after, uint32_t max,
                    uint32_t kinds, int64_t wait_ms, struct trib_ctl_batch *b,
                    struct trib_ctl_err *e)
{
    struct trib_wire_events_req req;
    struct trib_wire_msg m;
    const msgpack_object *arr;
    nng_msg *reply = NULL;
    uint32_t i, n;
    int rv;

    batch_clear(b);
    memset(&req, 0, sizeof(req));
    req.after = after;
    req.max = max;
    req.kinds = kinds;
    req.wait_ms = wait_ms;
    msgpack_sbuffer_clear(&c->sb);
    trib_wire_enc_events_req(&c->sb, &req);
    rv = request(c, wait_ms, &reply, e);
    if (rv != 0) {
        return rv;
    }
    b->frame = reply;
    rv = decode_reply(c, reply, &b->zone, TRIB_MSG_EVENTS_REPLY, &m, e);
    if (rv != 0) {
        batch_clear(b);
        return rv;
    }
    arr = m.u.events_reply.events;
    n = arr != NULL && arr->type == MSGPACK_OBJECT_ARRAY ? arr->via.array.size
                                                         : 0;
    if (n > b->cap) {
        trib_free(b->items);
        b->items = trib_calloc(n, sizeof(*b->items));
        b->cap = n;
    }
    for (i = 0; i < n; i++) {
        struct trib_ctl_item *it = &b->items[i];
        rv = trib_wire_events_item(&arr->via.array.ptr[i], &it->cursor,
                                   &it->node, &it->ev);
        if (rv != 0) {
            batch_clear(b);
            return fail(e, TRIB_EPROTO,
                        "malformed event %u of %u in the reply from %s: %s",
                        i + 1, n, c->url, trib_strerror(rv));
        }
    }
    b->n = n;
    b->next = m.u.events_reply.next;
    b->missed = m.u.events_reply.missed;
    return 0;
}

/* ---- for subcommands ----------------------------------------------------- */

int trib_ctl_filter_args(const struct trib_ctl_filter *f,
                         struct trib_ctl_arg *args, int n)
{
    const char *const keys[] = {"queue", "kind", "node", "tag"};
    const char *const vals[] = {f->queue, f->kind, f->node, f->tag};
    int i;

    for (i = 0; i < 4; i++) {
        if (vals[i] != NULL) {
            args[n].key = keys[i];
            args[n].str = vals[i];
            args[n].num = 0;
            n++;
        }
    }
    return n;
}

void trib_ctl_print_err(const char *prog, const struct trib_ctl_err *e)
{
    fprintf(stderr, "%s: %s\n", prog, e->text);
}

struct trib_ctl *trib_ctl_open_cli(const char *prog, const char *flag)
{
    struct trib_ctl_err e;
    struct trib_ctl *c;
    const char *source, *url = trib_ctl_address(flag, &source);

    if (trib_ctl_open(url, source, &c, &e) != 0) {
        trib_ctl_print_err(prog, &e);
        return NULL;
    }
    return c;
}

int trib_ctl_write_out(const char *prog, const char *data, size_t n)
{
    int err;

    if ((n > 0 && fwrite(data, 1, n, stdout) != n) || fflush(stdout) != 0) {
        err = errno;
        clearerr(stdout);
        if (err == EPIPE) {
            return 1;
        }
        fprintf(stderr, "%s: writing to stdout failed: %s\n", prog,
                strerror(err));
        return -1;
    }
    return 0;
}

int trib_ctl_print_query(const char *prog, const char *control,
                         const char *name, const struct trib_ctl_arg *args,
                         int nargs, int json,
                         void (*render)(struct trib_buf *, const json_t *))
{
    struct trib_ctl_err e;
    struct trib_ctl *ctl;
    struct trib_buf out = TRIB_BUF_INIT;
    char *text = NULL;
    json_t *doc = NULL;
    int rv = TRIB_EXIT_ERROR;

    /* `tributary status | head` must not die of SIGPIPE mid-write. */
    signal(SIGPIPE, SIG_IGN);
    ctl = trib_ctl_open_cli(prog, control);
    if (ctl == NULL) {
        return TRIB_EXIT_ERROR;
    }
    if (trib_ctl_query(ctl, name, args, nargs, 0, &text, &doc, &e) != 0) {
        trib_ctl_print_err(prog, &e);
        goto out;
    }
    if (json) {
        trib_buf_puts(&out, text);
        if (out.len == 0 || out.data[out.len - 1] != '\n') {
            trib_buf_putc(&out, '\n');
        }
    } else {
        render(&out, doc);
    }
    if (trib_ctl_write_out(prog, out.data, out.len) >= 0) {
        rv = TRIB_EXIT_OK; /* also when the reader closed the pipe */
    }
out:
    trib_buf_fini(&out);
    trib_free(text);
    json_decref(doc);
    trib_ctl_close(ctl);
    return rv;
}
