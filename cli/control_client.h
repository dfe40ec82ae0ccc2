/*
 * control_client -- the CLI's side of the coordinator's control interface
 * (docs/CONTROL.md): a blocking nng req client that sends QUERY and EVENTS
 * frames (proto/trib_wire.h) and hands back parsed replies.
 *
 * Connecting never hangs: the socket dials in the background
 * (NNG_FLAG_NONBLOCK, reconnecting every 100 ms..1 s) and each request
 * waits at most TRIB_CTL_CONNECT_MS for a connection. When none comes, a
 * direct probe of the address (TCP connect / socket file) explains why:
 * "cannot reach the coordinator at URL: connection refused -- is
 * tributary-coordinator running? set --control or TRIBUTARY_CONTROL".
 * A tls+tcp:// address uses TLS (common/trib_tls.h, docs/TLS.md): the CA
 * that signed the coordinator's certificate is required (--tls-ca or
 * TRIBUTARY_TLS_CA), a client certificate optional; a failed handshake
 * is explained from nng's dialer counters ("TLS handshake with URL failed
 * (certificate not trusted?) ...") instead of a bare timeout.
 * A reply is awaited for the request's hold time (wait_ms) plus
 * TRIB_CTL_REPLY_MARGIN_MS. Replies are capped at TRIB_WIRE_FRAME_MAX
 * bytes (NNG_OPT_RECVMAXSZ).
 *
 * Ownership: trib_ctl_open() returns a handle closed by trib_ctl_close().
 * trib_ctl_query() hands the caller a heap copy of the document text
 * (trib_free) and a new json_t reference (json_decref). A trib_ctl_batch
 * owns the reply frame its items borrow from; trib_ctl_batch_fini()
 * releases it, and each trib_ctl_events() call replaces the previous
 * contents.
 * Threading: one thread per handle (the CLI is single-threaded).
 */
#ifndef TRIB_CONTROL_CLIENT_H
#define TRIB_CONTROL_CLIENT_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "trib_wire.h"

#define TRIB_CTL_DEFAULT_URL     "tcp://127.0.0.1:7101"
#define TRIB_CTL_ENV             "TRIBUTARY_CONTROL"
#define TRIB_CTL_CONNECT_MS      3000  /* wait for a connection per request */
#define TRIB_CTL_REPLY_MARGIN_MS 10000 /* beyond the request's hold time   */

/* Help text: how the control address is chosen (ends with a newline). */
extern const char trib_ctl_address_help[];
/* Help text: the TLS options (ends with a newline). */
extern const char trib_ctl_tls_help[];
/* Help text: exit codes of the query subcommands (status, nodes, failures,
 * watch, events; not wait). Ends with a newline. */
extern const char trib_ctl_exit_help[];

/*
 * Picks the control address: 'flag' (--control) when given, else
 * $TRIBUTARY_CONTROL when set and non-empty, else TRIB_CTL_DEFAULT_URL.
 * *source gets a static label for messages ("--control",
 * "TRIBUTARY_CONTROL", "the default"). Returns a borrowed pointer.
 */
const char *trib_ctl_address(const char *flag, const char **source);

/*
 * The TLS options of every command that talks to the coordinator:
 * removes --tls-ca, --tls-cert, --tls-key and --tls-server-name (each
 * "--flag VALUE" or "--flag=VALUE", anywhere before a "--") from argv,
 * remembers them for trib_ctl_open(), and returns the new argc; -1 when
 * one lacks its value (printed with prog). The strings stay in argv.
 * Unset flags fall back to TRIBUTARY_TLS_CA, TRIBUTARY_TLS_CERT,
 * TRIBUTARY_TLS_KEY, TRIBUTARY_TLS_SERVER_NAME.
 */
int trib_ctl_take_tls_flags(int argc, char **argv, const char *prog);

/* What went wrong with a request. */
struct trib_ctl_err {
    int code;   /* trib_err (or the coordinator's code when remote) */
    int remote; /* 1: the coordinator answered with an error        */
    char text[768];
};

struct trib_ctl;

/*
 * Opens a req socket and starts dialing url in the background. Fails only
 * when the URL cannot be used (TRIB_EINVAL: malformed, TRIB_ENOTSUP:
 * unknown scheme), the TLS options do not fit it (TRIB_ECONFIG: a
 * tls+tcp:// URL without a CA, TLS options with another scheme, unusable
 * PEM files) or nng cannot open a socket; e->text says which. 'source'
 * (from trib_ctl_address) is quoted in messages; may be NULL.
 */
int trib_ctl_open(const char *url, const char *source, struct trib_ctl **out,
                  struct trib_ctl_err *e);
void trib_ctl_close(struct trib_ctl *c); /* NULL ok */
const char *trib_ctl_url(const struct trib_ctl *c);

/* One QUERY argument: a string when str != NULL, else the integer num. */
struct trib_ctl_arg {
    const char *key;
    const char *str;
    int64_t num;
};

/*
 * Sends QUERY {name, args} and waits for the reply. hold_ms: how long the
 * coordinator may hold the request (the `wait` query's wait_ms; 0
 * otherwise). On 0: *text (may be NULL if not wanted) gets the document
 * exactly as the coordinator sent it, NUL-terminated, and *doc (may be
 * NULL) the parsed JSON object. Errors: TRIB_ETIMEDOUT /
 * TRIB_ECONNREFUSED / ... (not reachable, no reply in time; e->text
 * explains), TRIB_EPROTO (a reply that is not a QUERY_REPLY with a JSON
 * object), or the coordinator's own negative code with e->remote = 1 and
 * its "error" text.
 */
int trib_ctl_query(struct trib_ctl *c, const char *name,
                   const struct trib_ctl_arg *args, int nargs, int64_t hold_ms,
                   char **text, json_t **doc, struct trib_ctl_err *e);

/* One event of an EVENTS_REPLY; strings borrow from the batch. */
struct trib_ctl_item {
    uint64_t cursor;
    struct trib_str node;
    struct trib_wire_event ev;
};

struct trib_ctl_batch {
    uint64_t next;   /* cursor to ask after next time                */
    uint64_t missed; /* events that left the ring before we read them */
    uint32_t n;
    struct trib_ctl_item *items;
    /* private */
    uint32_t cap;
    void *frame; /* nng_msg * */
    msgpack_zone zone;
};
void trib_ctl_batch_init(struct trib_ctl_batch *b);
void trib_ctl_batch_fini(struct trib_ctl_batch *b);

/*
 * Sends EVENTS {after, max, kinds, wait_ms} and decodes the reply into b
 * (replacing what it held). after = UINT64_MAX asks "from now"; kinds is a
 * bitmask (bit k = event kind k; 0 = all). Errors as trib_ctl_query();
 * an item that fails to decode makes the whole reply TRIB_EPROTO.
 */
int trib_ctl_events(struct trib_ctl *c, uint64_t after, uint32_t max,
                    uint32_t kinds, int64_t wait_ms, struct trib_ctl_batch *b,
                    struct trib_ctl_err *e);

/* ---- for subcommands ----------------------------------------------------- */

/* The filters of status, failures, watch and wait (NULL = any). */
struct trib_ctl_filter {
    const char *queue;
    const char *kind;
    const char *node;
    const char *tag; /* wait only */
};
/* Appends the filters that are set to args[n..] (room for 4 more);
 * returns the new count. */
int trib_ctl_filter_args(const struct trib_ctl_filter *f,
                         struct trib_ctl_arg *args, int n);

/* Prints "prog: <e->text>" on stderr. */
void trib_ctl_print_err(const char *prog, const struct trib_ctl_err *e);

/*
 * Opens the address trib_ctl_address(flag) picks. On failure prints the
 * reason prefixed with prog and returns NULL (exit with TRIB_EXIT_ERROR).
 */
struct trib_ctl *trib_ctl_open_cli(const char *prog, const char *flag);

/*
 * Writes n bytes to stdout and flushes. 0; 1 when the reader closed the
 * pipe (EPIPE: SIGPIPE must be ignored); -1 on another write error
 * (printed on stderr with prog).
 */
int trib_ctl_write_out(const char *prog, const char *data, size_t n);

/*
 * The whole of a one-query subcommand: opens the control address (flag or
 * environment), sends 'name' with args, and prints the document to stdout:
 * as sent when json, else through render(). Errors go to stderr prefixed
 * with prog. Returns TRIB_EXIT_OK or TRIB_EXIT_ERROR (cli.h).
 */
struct trib_buf;
int trib_ctl_print_query(const char *prog, const char *control,
                         const char *name, const struct trib_ctl_arg *args,
                         int nargs, int json,
                         void (*render)(struct trib_buf *, const json_t *));

#endif /* TRIB_CONTROL_CLIENT_H */
