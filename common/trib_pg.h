/*
 * trib_pg -- one PostgreSQL connection driven by a libuv loop, never
 * blocking it.
 *
 * A trib_pg connects in the background (PQconnectStartParams + a uv_poll on
 * PQsocket()), runs a set-up step (TimeZone UTC, application_name, LISTEN on
 * the configured channels), then executes queued statements one at a time in
 * FIFO order. When the connection is lost it reconnects with a jittered,
 * doubling backoff; failures are logged through a rate-limited complaint and
 * the recovery once.
 *
 * Statements: a trib_pg_stmt with a name is prepared once per session
 * (lazily, on first use after each connect) and then executed by name; an
 * unnamed one is sent as text each time (with no parameters it may hold
 * several statements).
 *
 * Delivery: every accepted query gets exactly one callback, never from
 * inside trib_pg_query() itself:
 *   status 0            res is the last result (TUPLES_OK / COMMAND_OK)
 *   status TRIB_EDB     res is the error result (message, SQLSTATE)
 *   status TRIB_EDBCONN the connection was lost while the query was in
 *                       flight: it may or may not have committed; res NULL
 *   status TRIB_ECANCELED  trib_pg_close() was called; res NULL
 * 'res' is borrowed: it is cleared when the callback returns.
 * Queries queued but not yet sent when the connection drops stay queued and
 * run after the reconnect.
 *
 * Threading: loop thread only.
 * Ownership: the trib_pg copies everything in its options and parameters.
 */
#ifndef TRIB_PG_H
#define TRIB_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct trib_pg; /* opaque */

struct trib_pg_stmt {
    const char *name; /* NULL: unnamed (sent as text each time) */
    const char *sql;
    int nparams;
};

typedef void (*trib_pg_cb)(void *arg, int status, PGresult *res);

struct trib_pg_opts {
    const char *conninfo;      /* URL or "key=value ..." (required)      */
    const char *name;          /* label for logs, e.g. "c1/fetch"        */
    const char *app_name;      /* application_name (default tributary)   */
    const char *const *listen; /* NULL-terminated channel names, or NULL */
    const char *setup_sql;     /* more set-up statements ("SET ..."), or
                                  NULL; run after every (re)connect      */
    /* A notification arrived (channel and payload borrowed). */
    void (*on_notify)(void *arg, const char *channel, const char *payload);
    /* connected=1: set-up done, queries run; connected=0: connection lost
     * (it reconnects by itself). */
    void (*on_state)(void *arg, int connected);
    void *arg;
    int reconnect_min_ms;   /* default 100   */
    int reconnect_max_ms;   /* default 5000  */
    int connect_timeout_ms; /* default 10000 */
};

/* Creates the connection object (does not connect yet). 0 or TRIB_EINVAL. */
int trib_pg_create(uv_loop_t *loop, const struct trib_pg_opts *opts,
                   struct trib_pg **out);

/* Starts connecting (and keeps reconnecting until closed). */
void trib_pg_start(struct trib_pg *pg);

/*
 * Queues a statement. params: nparams text values (NULL entries are SQL
 * NULL), copied. Returns 0 (the callback will run exactly once), or
 * TRIB_EBUSY when the connection is closing (the callback will not run).
 */
int trib_pg_query(struct trib_pg *pg, const struct trib_pg_stmt *stmt,
                  int nparams, const char *const *params, trib_pg_cb cb,
                  void *arg);

/* Convenience: unnamed statement without parameters. */
int trib_pg_exec(struct trib_pg *pg, const char *sql, trib_pg_cb cb, void *arg);

/*
 * Closes: pending queries get TRIB_ECANCELED, the session ends, handles are
 * closed, then 'done' runs (may be NULL) and the object is freed. The
 * pointer must not be used after this call.
 */
void trib_pg_close(struct trib_pg *pg, void (*done)(void *arg), void *arg);

/*
 * Drops every query not yet sent (the one in flight, if any, completes):
 * their callbacks run now with TRIB_ECANCELED. For work that must not run
 * late, e.g. a leader's maintenance after its term ended. Returns how many
 * were dropped.
 */
size_t trib_pg_drop_queued(struct trib_pg *pg);

/* Error text of a failed result (never NULL) and its SQLSTATE ("" if none). */
const char *trib_pg_errmsg(const PGresult *res);
const char *trib_pg_sqlstate(const PGresult *res);

/* libpq's connection-status/result status -> trib_err (the one adapter). */
int trib_err_from_pg(const PGresult *res);

/*
 * application_name: PostgreSQL keeps at most TRIB_PG_APP_NAME_MAX bytes
 * (NAMEDATALEN - 1). trib_pg_app_name() writes prefix + suffix into out
 * (n >= 1 bytes, NUL-terminated), cut to at most TRIB_PG_APP_NAME_MAX and
 * n - 1 bytes at a UTF-8 character boundary (never inside a multi-byte
 * sequence), so PostgreSQL receives a name it keeps whole. Returns the
 * length written. suffix may be NULL.
 */
#define TRIB_PG_APP_NAME_MAX 63
size_t trib_pg_app_name(char *out, size_t n, const char *prefix,
                        const char *suffix);

/* Appends a double-quoted SQL identifier (for schema and channel names). */
struct trib_buf;
void trib_pg_quote_ident(struct trib_buf *b, const char *ident);

#endif /* TRIB_PG_H */
