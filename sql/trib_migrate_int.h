/*
 * trib_migrate_int.h -- helpers shared by trib_migrate_status.c and
 * trib_migrate_up.c (library-private, trib__ prefix).
 *
 * Threading: as trib_migrate.h (one caller per connection).
 */
#ifndef TRIB_MIGRATE_INT_H
#define TRIB_MIGRATE_INT_H

#include <libpq-fe.h>
#include <stddef.h>

/* printf into err (errlen bytes, NUL-terminated, truncated); no-op when err
 * is NULL or errlen is 0. */
void trib__migrate_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Converts a failed result (or a NULL one: connection trouble) into a trib
 * error code and a message "<what>: <server message>". Does not clear res.
 */
int trib__migrate_fail(PGconn *conn, const PGresult *res, const char *what,
                       char *err, size_t errlen);

/*
 * Runs sql with nparams text parameters; returns 0 and stores the result
 * in *out (caller PQclear()s it; out may be NULL to discard it), or an
 * error as trib__migrate_fail() with 'what'. PGRES_EMPTY_QUERY counts as
 * success (a step may be comments only).
 */
int trib__migrate_exec(PGconn *conn, const char *sql, int nparams,
                       const char *const *params, PGresult **out,
                       const char *what, char *err, size_t errlen);

#endif /* TRIB_MIGRATE_INT_H */
