/*
 * trib_migrate -- reads and applies the embedded migrations (River's schema,
 * line 'main', plus any later line) on a PostgreSQL connection.
 *
 * Blocking libpq: meant for the CLI (`tributary migrate`), never for a
 * libuv loop. The caller opens and closes the connection; these functions
 * leave it idle (no transaction open) when they return, whatever the
 * outcome, unless the connection itself broke.
 *
 * How `up` applies a step, for every missing version in order: BEGIN; take
 * a transaction-level advisory lock (trib_migration_lock_key(schema)); read
 * river_migration again (another run may have applied the step meanwhile);
 * refuse if any known line is newer than this build; run the step's SQL;
 * insert its river_migration row; COMMIT. One transaction per step, as
 * River does: version 4 adds an enum label (allowed in a transaction since
 * PostgreSQL 12 as long as the label is not used before commit) and
 * version 6 uses it, so they must not share a transaction.
 *
 * Errors: every function returns 0 or a negative trib_err code and, on
 * failure, writes a one-line human message into err (errlen bytes, always
 * NUL-terminated, may be truncated; err may be NULL when errlen is 0):
 *   TRIB_EVERSION  a known line is at a version newer than this build
 *                  knows (for 'main': "database schema is at River migration
 *                  version 9, newer than this tributary build knows (8);
 *                  upgrade tributary"). Nothing was applied in that run.
 *   TRIB_ESCHEMA   the schema does not exist, there is no current schema,
 *                  river_migration has an unexpected layout, or a line other
 *                  than 'main' needs 'main' at version 5 first.
 *   TRIB_EINVAL    bad options (schema name, unknown line, target version).
 *   TRIB_EDB       the database refused a statement (message included).
 *   TRIB_EDBCONN   the connection is bad or was lost.
 *
 * Threading: one caller per connection.
 */
#ifndef TRIB_MIGRATE_H
#define TRIB_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "trib_migrations.h"

/* One row of river_migration. */
struct trib_migrate_row {
    char *line;       /* "main" (always 'main' in the pre-v5 layout)  */
    int64_t version;  /* as recorded                                   */
    char *applied_at; /* created_at, RFC 3339 UTC: 2026-11-27T10:22:46Z */
};

/* What river_migration says about a schema. Owns all its memory: release
 * with trib_migrate_status_fini(). Zero-initialise before reading. */
struct trib_migrate_status {
    char *schema;  /* inspected schema (current_schema() if none given) */
    int has_table; /* river_migration exists                           */
    int legacy;    /* pre-version-5 layout (id, created_at, version)   */
    struct trib_migrate_row *rows; /* 'main' first, then by line;
                                    * by version within a line         */
    size_t nrows;
};

/*
 * Reads river_migration of 'schema' (NULL: the connection's current
 * schema). A database without river_migration is not an error: has_table
 * is 0 and there are no rows. Works inside or outside a transaction.
 * On success *st owns its memory; on failure *st is left empty.
 */
int trib_migrate_status_read(PGconn *conn, const char *schema,
                             struct trib_migrate_status *st, char *err,
                             size_t errlen);

/* Frees what *st owns and zeroes it; safe on a zeroed or failed status. */
void trib_migrate_status_fini(struct trib_migrate_status *st);

/* Highest version recorded for 'line', 0 when none. */
int64_t trib_migrate_status_current(const struct trib_migrate_status *st,
                                    const char *line);

/* 1 when (line, version) is recorded. */
int trib_migrate_status_has(const struct trib_migrate_status *st,
                            const char *line, int64_t version);

/*
 * TRIB_EVERSION (with the message described above) when any line this
 * build knows is recorded at a version beyond its latest step; else 0.
 * Lines this build does not know (e.g. River Pro's) are ignored.
 */
int trib_migrate_status_check(const struct trib_migrate_status *st, char *err,
                              size_t errlen);

/* Progress events of trib_migrate_up(). */
enum trib_migrate_event {
    TRIB_MIGRATE_WAITING = 1, /* another run holds the lock; waiting    */
    TRIB_MIGRATE_APPLYING,    /* step m starts                          */
    TRIB_MIGRATE_APPLIED,     /* step m committed after elapsed_us      */
    TRIB_MIGRATE_FAILED,      /* step m failed (the error follows)      */
};

struct trib_migrate_opts {
    const char *schema;     /* NULL or "": current schema               */
    const char *line;       /* NULL: every line, 'main' first           */
    int64_t target_version; /* 0: latest. Non-zero: only that line (or
                             * 'main' when line is NULL) is migrated, up
                             * to and including this version            */
    /* Optional progress callback, called synchronously; m is NULL for
     * TRIB_MIGRATE_WAITING. Borrowed pointers, valid during the call. */
    void (*on_event)(void *arg, enum trib_migrate_event ev,
                     const struct trib_migration *m, int64_t elapsed_us);
    void *arg;
};

/*
 * Applies every missing step (see the top of this file). *napplied (may be
 * NULL) gets the number of steps committed by this call, also on failure
 * (steps committed before a failing one stay committed). Running it again
 * on an up-to-date database applies nothing and returns 0.
 */
int trib_migrate_up(PGconn *conn, const struct trib_migrate_opts *opts,
                    size_t *napplied, char *err, size_t errlen);

#endif /* TRIB_MIGRATE_H */
