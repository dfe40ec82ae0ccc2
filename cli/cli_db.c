/*
 * cli_db.c -- choosing and opening the database connection for CLI
 * subcommands (blocking libpq: the CLI has no event loop).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char trib_cli_exit_help[] =
    "Exit status:\n"
    "  0  success (also when there was nothing to do)\n"
    "  1  runtime or database error (bad URL, cannot connect, statement "
    "failed)\n"
    "  2  usage error (unknown command or option, bad value)\n"
    "  3  the database schema is newer than this tributary build knows\n";

const char trib_cli_db_help[] =
    "Database: --database-url URL (a postgres:// URL or a \"key=value\" "
    "conninfo),\n"
    "else $DATABASE_URL, else libpq's environment variables (PGHOST, "
    "PGPORT,\n"
    "PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, ...) and defaults.\n";

const char *trib_cli_conninfo(const char *flag, const char **source)
{
    const char *env;

    if (flag != NULL) {
        *source = "--database-url";
        return flag;
    }
    env = getenv("DATABASE_URL");
    if (env != NULL && env[0] != '\0') {
        *source = "DATABASE_URL";
        return env;
    }
    *source = "PG* environment variables";
    return "";
}

/* Drops NOTICE chatter (e.g. "... already exists, skipping"); keeps
 * WARNINGs visible. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    if (strncmp(msg, "WARNING", 7) == 0) {
        fprintf(stderr, "postgres: %s", msg);
    }
}

/* libpq's multi-line error text, indented under our first line. */
static void print_pq_error(const char *msg)
{
    const char *p = msg, *eol;

    while (*p) {
        eol = strchr(p, '\n');
        if (eol == NULL) {
            eol = p + strlen(p);
        }
        if (eol > p) {
            fprintf(stderr, "  %.*s\n", (int)(eol - p), p);
        }
        p = *eol ? eol + 1 : eol;
    }
}

static const char *or_default(const char *s, const char *dflt)
{
    return s != NULL && s[0] != '\0' ? s : dflt;
}

PGconn *trib_cli_connect(const char *prog, const char *conninfo,
                         const char *source)
{
    const char *keys[4];
    const char *vals[4];
    PQconninfoOption *opts;
    char *perr = NULL;
    PGconn *conn;
    int n = 0;

    if (conninfo[0] != '\0') {
        opts = PQconninfoParse(conninfo, &perr);
        if (opts == NULL) {
            fprintf(stderr, "%s: invalid database URL (from %s): %s", prog,
                    source, perr ? perr : "out of memory\n");
            PQfreemem(perr);
            return NULL;
        }
        PQconninfoFree(opts);
    }

    /* Earlier entries are overridden by what the URL itself sets. */
    if (getenv("PGCONNECT_TIMEOUT") == NULL) {
        keys[n] = "connect_timeout";
        vals[n++] = "10";
    }
    keys[n] = "fallback_application_name";
    vals[n++] = "tributary";
    keys[n] = "dbname";
    vals[n++] = conninfo;
    keys[n] = NULL;
    vals[n] = NULL;

    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL) {
        fprintf(stderr, "%s: cannot connect: out of memory\n", prog);
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr,
                "%s: cannot connect to PostgreSQL (host %s, port %s, "
                "database %s, user %s; settings from %s):\n",
                prog, or_default(PQhost(conn), "(default)"),
                or_default(PQport(conn), "(default)"),
                or_default(PQdb(conn), "(default)"),
                or_default(PQuser(conn), "(default)"), source);
        print_pq_error(PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, on_notice, NULL);
    return conn;
}
