/*
 * trib_migrate_up.c -- applying missing migration steps, one transaction
 * per step under a transaction-level advisory lock (see trib_migrate.h).
 */
#include "trib_migrate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_migrate_int.h"
#include "trib_pg.h"
#include "trib_time.h"

/* The lines one run walks through, and the target version of each. */
struct plan_scope {
    const struct trib_migration_line *lines; /* contiguous, in order */
    size_t nlines;
    int64_t target; /* 0 = latest; only with a single line */
};

static void emit(const struct trib_migrate_opts *o, enum trib_migrate_event ev,
                 const struct trib_migration *m, int64_t elapsed_us)
{
    if (o->on_event != NULL) {
        o->on_event(o->arg, ev, m, elapsed_us);
    }
}

static int make_scope(const struct trib_migrate_opts *o, struct plan_scope *sc,
                      char *err, size_t errlen)
{
    const struct trib_migration_line *l;

    memset(sc, 0, sizeof(*sc));
    sc->target = o->target_version;
    if (o->line != NULL || o->target_version != 0) {
        l = trib_migration_line_find(o->line ? o->line : TRIB_MIGRATION_MAIN);
        if (l == NULL) {
            trib__migrate_seterr(err, errlen, "unknown migration line '%s'",
                                 o->line ? o->line : TRIB_MIGRATION_MAIN);
            return TRIB_EINVAL;
        }
        if (o->target_version < 0 || o->target_version > (int64_t)l->nsteps) {
            trib__migrate_seterr(err, errlen,
                                 "target version %" PRId64 " out of range: "
                                 "line '%s' has versions 1..%zu",
                                 o->target_version, l->name, l->nsteps);
            return TRIB_EINVAL;
        }
        sc->lines = l;
        sc->nlines = 1;
        return 0;
    }
    sc->lines = trib_migration_lines(&sc->nlines);
    return 0;
}

/* Versions of one line recorded in st, into out (room for st->nrows). */
static size_t applied_of(const struct trib_migrate_status *st, const char *line,
                         int64_t *out)
{
    size_t i, n = 0;

    for (i = 0; i < st->nrows; i++) {
        if (strcmp(st->rows[i].line, line) == 0) {
            out[n++] = st->rows[i].version;
        }
    }
    return n;
}

/* The first missing step in scope; *m is NULL when up to date. */
static int next_step(const struct plan_scope *sc,
                     const struct trib_migrate_status *st,
                     const struct trib_migration **m, char *err, size_t errlen)
{
    int64_t *applied;
    int64_t next = 0;
    size_t i, n;
    int rc = 0;

    *m = NULL;
    applied = trib_calloc(st->nrows + 1, sizeof(*applied));
    for (i = 0; i < sc->nlines; i++) {
        n = applied_of(st, sc->lines[i].name, applied);
        rc = trib_migration_plan(&sc->lines[i], applied, n, sc->target, &next);
        if (rc != 0) {
            /* EVERSION is caught earlier by trib_migrate_status_check() */
            trib__migrate_seterr(err, errlen, "cannot plan line '%s': %s",
                                 sc->lines[i].name, trib_strerror(rc));
            break;
        }
        if (next != 0) {
            *m = trib_migration_get(&sc->lines[i], next);
            break;
        }
    }
    trib_free(applied);
    return rc;
}

/* BEGIN, then the advisory lock (reporting a wait once). */
static int begin_locked(PGconn *conn, const struct trib_migrate_opts *o,
                        const char *schema, char *err, size_t errlen)
{
    char key[32];
    const char *params[1] = {key};
    PGresult *res;
    int got, rc;

    snprintf(key, sizeof(key), "%" PRId64, trib_migration_lock_key(schema));
    rc = trib__migrate_exec(conn, "BEGIN", 0, NULL, NULL,
                            "starting a transaction", err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = trib__migrate_exec(conn, "SELECT pg_try_advisory_xact_lock($1)", 1,
                            params, &res, "taking the migration lock", err,
                            errlen);
    if (rc != 0) {
        return rc;
    }
    got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (got) {
        return 0;
    }
    emit(o, TRIB_MIGRATE_WAITING, NULL, 0);
    return trib__migrate_exec(conn, "SELECT pg_advisory_xact_lock($1)", 1,
                              params, NULL, "waiting for the migration lock",
                              err, errlen);
}

static void rollback(PGconn *conn)
{
    PGresult *res;

    if (PQstatus(conn) == CONNECTION_OK &&
        PQtransactionStatus(conn) != PQTRANS_IDLE) {
        res = PQexec(conn, "ROLLBACK");
        PQclear(res);
    }
}

/* Runs step m and records it, inside the open transaction. */
static int apply_step(PGconn *conn, const struct trib_migrate_opts *o,
                      const struct trib_migrate_status *st,
                      const struct trib_migration *m, char *err, size_t errlen)
{
    struct trib_buf sql = TRIB_BUF_INIT;
    struct trib_buf what = TRIB_BUF_INIT;
    char version[24];
    const char *params[2] = {m->line, version};
    int main_line = strcmp(m->line, TRIB_MIGRATION_MAIN) == 0;
    int nparams = 2;
    int rc;

    trib_buf_printf(&what, "%s %d %s (%s)", m->line, m->version, m->name,
                    m->file);
    if (!main_line && (!st->has_table || st->legacy)) {
        trib__migrate_seterr(err, errlen,
                             "%s: line '%s' needs line main at version %d or "
                             "later first",
                             what.data, m->line,
                             TRIB_MIGRATION_LINE_COLUMN_VERSION);
        rc = TRIB_ESCHEMA;
        goto out;
    }
    rc = trib_migration_render(&sql, m->sql, o->schema);
    if (rc != 0) {
        trib__migrate_seterr(err, errlen, "%s: unknown {{...}} placeholder",
                             what.data);
        goto out;
    }
    rc = trib__migrate_exec(conn, sql.data, 0, NULL, NULL, what.data, err,
                            errlen);
    if (rc != 0) {
        goto out;
    }

    /* River's rule: rows of main versions below 5 go into the pre-v5
     * layout (no line column); from version 5 on, the step itself has
     * rebuilt the table keyed by (line, version). */
    snprintf(version, sizeof(version), "%d", m->version);
    trib_buf_reset(&sql);
    trib_buf_puts(&sql, "INSERT INTO ");
    trib_pg_quote_ident(&sql, st->schema);
    if (main_line && m->version < TRIB_MIGRATION_LINE_COLUMN_VERSION) {
        trib_buf_puts(&sql, ".river_migration (version) VALUES ($1::bigint)");
        params[0] = version;
        nparams = 1;
    } else {
        trib_buf_puts(&sql, ".river_migration (line, version) "
                            "VALUES ($1, $2::bigint)");
    }
    rc = trib__migrate_exec(conn, sql.data, nparams, params, NULL,
                            "recording the version in river_migration", err,
                            errlen);
out:
    trib_buf_fini(&what);
    trib_buf_fini(&sql);
    return rc;
}

int trib_migrate_up(PGconn *conn, const struct trib_migrate_opts *opts,
                    size_t *napplied, char *err, size_t errlen)
{
    struct trib_migrate_status st = {0};
    const struct trib_migration *m = NULL;
    struct plan_scope sc;
    size_t applied = 0;
    char *schema = NULL;
    uint64_t t0;
    int rc;

    rc = make_scope(opts, &sc, err, errlen);
    if (rc != 0) {
        goto out;
    }
    /* Resolve the schema once (and check that it exists) for the lock key
     * and the river_migration row inserts. */
    rc = trib_migrate_status_read(conn, opts->schema, &st, err, errlen);
    if (rc != 0) {
        goto out;
    }
    schema = st.schema;
    st.schema = NULL;
    trib_migrate_status_fini(&st);

    for (;;) {
        rc = begin_locked(conn, opts, schema, err, errlen);
        if (rc != 0) {
            goto end_tx;
        }
        /* Under the lock: what is applied now is what counts (another run
         * may have applied steps while we waited). */
        rc = trib_migrate_status_read(conn, schema, &st, err, errlen);
        if (rc != 0) {
            goto end_tx;
        }
        rc = trib_migrate_status_check(&st, err, errlen);
        if (rc == 0) {
            rc = next_step(&sc, &st, &m, err, errlen);
        }
        if (rc != 0 || m == NULL) {
            goto end_tx; /* refused, or up to date: nothing to commit */
        }

        emit(opts, TRIB_MIGRATE_APPLYING, m, 0);
        t0 = trib_mono_us();
        rc = apply_step(conn, opts, &st, m, err, errlen);
        if (rc == 0) {
            rc = trib__migrate_exec(conn, "COMMIT", 0, NULL, NULL, "committing",
                                    err, errlen);
        }
        if (rc != 0) {
            emit(opts, TRIB_MIGRATE_FAILED, m, 0);
            goto end_tx;
        }
        applied++;
        emit(opts, TRIB_MIGRATE_APPLIED, m, (int64_t)(trib_mono_us() - t0));
        trib_migrate_status_fini(&st);
    }

end_tx: /* the open transaction (if any) wrote nothing that must stay */
    rollback(conn);
    trib_migrate_status_fini(&st);
    trib_free(schema);
out:
    if (napplied != NULL) {
        *napplied = applied;
    }
    return rc;
}
