/*
 * trib_migrate_status.c -- reading river_migration in either of its
 * layouts (or its absence), the "newer than known" check, and the small
 * libpq helpers the runner shares (trib_migrate_int.h).
 */
#include "trib_migrate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_migrate_int.h"
#include "trib_pg.h"

void trib__migrate_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Server text without libpq's trailing newline(s). */
static void put_trimmed(struct trib_buf *b, const char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) {
        n--;
    }
    trib_buf_append(b, s, n);
}

int trib__migrate_fail(PGconn *conn, const PGresult *res, const char *what,
                       char *err, size_t errlen)
{
    struct trib_buf b = TRIB_BUF_INIT;
    const char *detail;
    int rc;

    if (res == NULL || PQstatus(conn) != CONNECTION_OK) {
        trib_buf_printf(&b, "%s: connection to the database lost: ", what);
        put_trimmed(&b, PQerrorMessage(conn));
        rc = TRIB_EDBCONN;
    } else {
        rc = trib_err_from_pg(res);
        if (rc == 0) {
            rc = TRIB_EDB; /* an unexpected status, e.g. COPY_IN */
        }
        trib_buf_printf(&b, "%s: ", what);
        put_trimmed(&b, trib_pg_errmsg(res));
        detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        if (detail != NULL) {
            trib_buf_puts(&b, " (");
            put_trimmed(&b, detail);
            trib_buf_puts(&b, ")");
        }
        if (trib_pg_sqlstate(res)[0] != '\0') {
            trib_buf_printf(&b, " [SQLSTATE %s]", trib_pg_sqlstate(res));
        }
    }
    trib__migrate_seterr(err, errlen, "%s", b.data);
    trib_buf_fini(&b);
    return rc;
}

int trib__migrate_exec(PGconn *conn, const char *sql, int nparams,
                       const char *const *params, PGresult **out,
                       const char *what, char *err, size_t errlen)
{
    PGresult *res;
    int rc;

    if (out != NULL) {
        *out = NULL;
    }
    if (nparams == 0) {
        res = PQexec(conn, sql); /* simple protocol: several statements ok */
    } else {
        res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    }
    switch (res ? PQresultStatus(res) : PGRES_FATAL_ERROR) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
        if (out != NULL) {
            *out = res;
        } else {
            PQclear(res);
        }
        return 0;
    default:
        rc = trib__migrate_fail(conn, res, what, err, errlen);
        PQclear(res);
        return rc;
    }
}

/* The schema to inspect: the given one if it exists, else current_schema().
 * Stores a heap copy in st->schema. */
static int resolve_schema(PGconn *conn, const char *schema,
                          struct trib_migrate_status *st, char *err,
                          size_t errlen)
{
    PGresult *res = NULL;
    int rc;

    if (schema != NULL && schema[0] != '\0') {
        rc = trib__migrate_exec(
            conn, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1,
            &schema, &res, "looking up the schema", err, errlen);
        if (rc != 0) {
            return rc;
        }
        if (PQntuples(res) != 1) {
            trib__migrate_seterr(err, errlen,
                                 "schema \"%s\" does not exist (River and "
                                 "tributary do not create it: run CREATE "
                                 "SCHEMA first)",
                                 schema);
            rc = TRIB_ESCHEMA;
            goto out;
        }
        st->schema = trib_strdup(schema);
        goto out;
    }
    rc = trib__migrate_exec(conn, "SELECT current_schema()", 0, NULL, &res,
                            "looking up the current schema", err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        trib__migrate_seterr(err, errlen,
                             "no current schema: no schema on the "
                             "search_path exists; pass --schema");
        rc = TRIB_ESCHEMA;
        goto out;
    }
    st->schema = trib_strdup(PQgetvalue(res, 0, 0));
out:
    PQclear(res);
    return rc;
}

/* Sets has_table and legacy from the catalog. */
static int inspect_table(PGconn *conn, struct trib_migrate_status *st,
                         char *err, size_t errlen)
{
    static const char sql[] =
        "SELECT c.relkind, EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a"
        "   WHERE a.attrelid = c.oid AND a.attname = 'line'"
        "     AND a.attnum > 0 AND NOT a.attisdropped)"
        " FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = 'river_migration'";
    const char *params[1] = {st->schema};
    PGresult *res;
    const char *kind;
    int rc;

    rc = trib__migrate_exec(conn, sql, 1, params, &res,
                            "looking for river_migration", err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (PQntuples(res) == 0) {
        goto out; /* no table: nothing applied yet */
    }
    kind = PQgetvalue(res, 0, 0);
    if (strcmp(kind, "r") != 0 && strcmp(kind, "p") != 0) {
        trib__migrate_seterr(err, errlen,
                             "\"%s\".river_migration exists but is not a "
                             "table (relkind '%s')",
                             st->schema, kind);
        rc = TRIB_ESCHEMA;
        goto out;
    }
    st->has_table = 1;
    st->legacy = strcmp(PQgetvalue(res, 0, 1), "t") != 0;
out:
    PQclear(res);
    return rc;
}

static int read_rows(PGconn *conn, struct trib_migrate_status *st, char *err,
                     size_t errlen)
{
    struct trib_buf sql = TRIB_BUF_INIT;
    PGresult *res = NULL;
    size_t i, n;
    int rc;

    trib_buf_printf(&sql,
                    "SELECT %s, version, to_char(created_at AT TIME "
                    "ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM ",
                    st->legacy ? "'main'" : "line");
    trib_pg_quote_ident(&sql, st->schema);
    trib_buf_puts(&sql, st->legacy ? ".river_migration ORDER BY version"
                                   : ".river_migration ORDER BY line <> "
                                     "'main', line, version");
    rc = trib__migrate_exec(conn, sql.data, 0, NULL, &res,
                            "reading river_migration", err, errlen);
    trib_buf_fini(&sql);
    if (rc != 0) {
        return rc;
    }
    n = (size_t)PQntuples(res);
    st->rows = trib_calloc(n ? n : 1, sizeof(*st->rows));
    for (i = 0; i < n; i++) {
        st->rows[i].line = trib_strdup(PQgetvalue(res, (int)i, 0));
        st->rows[i].version = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
        st->rows[i].applied_at = trib_strdup(PQgetvalue(res, (int)i, 2));
        st->nrows++;
    }
    PQclear(res);
    return 0;
}

int trib_migrate_status_read(PGconn *conn, const char *schema,
                             struct trib_migrate_status *st, char *err,
                             size_t errlen)
{
    int rc;

    memset(st, 0, sizeof(*st));
    if (schema != NULL && schema[0] != '\0' &&
        trib_migration_schema_valid(schema) != 0) {
        trib__migrate_seterr(err, errlen,
                             "invalid schema name \"%s\" (1-%d bytes, no "
                             "single quote)",
                             schema, TRIB_MIGRATION_SCHEMA_MAX);
        return TRIB_EINVAL;
    }
    rc = resolve_schema(conn, schema, st, err, errlen);
    if (rc != 0) {
        goto fail;
    }
    rc = inspect_table(conn, st, err, errlen);
    if (rc != 0 || !st->has_table) {
        goto done;
    }
    rc = read_rows(conn, st, err, errlen);
done:
    if (rc == 0) {
        return 0;
    }
fail:
    trib_migrate_status_fini(st);
    return rc;
}

void trib_migrate_status_fini(struct trib_migrate_status *st)
{
    size_t i;

    for (i = 0; i < st->nrows; i++) {
        trib_free(st->rows[i].line);
        trib_free(st->rows[i].applied_at);
    }
    trib_free(st->rows);
    trib_free(st->schema);
    memset(st, 0, sizeof(*st));
}

int64_t trib_migrate_status_current(const struct trib_migrate_status *st,
                                    const char *line)
{
    int64_t max = 0;
    size_t i;

    for (i = 0; i < st->nrows; i++) {
        if (strcmp(st->rows[i].line, line) == 0 && st->rows[i].version > max) {
            max = st->rows[i].version;
        }
    }
    return max;
}

int trib_migrate_status_has(const struct trib_migrate_status *st,
                            const char *line, int64_t version)
{
    size_t i;

    for (i = 0; i < st->nrows; i++) {
        if (st->rows[i].version == version &&
            strcmp(st->rows[i].line, line) == 0) {
            return 1;
        }
    }
    return 0;
}

int trib_migrate_status_check(const struct trib_migrate_status *st, char *err,
                              size_t errlen)
{
    const struct trib_migration_line *lines;
    int64_t cur;
    size_t i, n;

    lines = trib_migration_lines(&n);
    for (i = 0; i < n; i++) {
        cur = trib_migrate_status_current(st, lines[i].name);
        if (cur <= (int64_t)lines[i].nsteps) {
            continue;
        }
        if (strcmp(lines[i].name, TRIB_MIGRATION_MAIN) == 0) {
            trib__migrate_seterr(
                err, errlen,
                "database schema is at River migration version %lld, newer "
                "than this tributary build knows (%zu); upgrade tributary",
                (long long)cur, lines[i].nsteps);
        } else {
            trib__migrate_seterr(
                err, errlen,
                "database schema is at migration version %lld of line '%s', "
                "newer than this tributary build knows (%zu); upgrade "
                "tributary",
                (long long)cur, lines[i].name, lines[i].nsteps);
        }
        return TRIB_EVERSION;
    }
    return 0;
}
