/*
 * cli -- the `tributary` command-line tool: subcommands and the helpers
 * they share (exit codes, database connection).
 *
 * Adding a subcommand: write `int trib_cli_<name>(int argc, char **argv)`
 * in cli/<name>.c (argv[0] is the subcommand's name; return one of the
 * exit codes below; handle --help), declare it here, add the file to
 * cli/CMakeLists.txt and add one line to the command table in cli/main.c.
 *
 * Threading: single-threaded process; nothing here is thread-safe.
 */
#ifndef TRIB_CLI_H
#define TRIB_CLI_H

#include <libpq-fe.h>

/* Exit codes, the same for every subcommand (listed in `--help`), except
 * `tributary wait`, whose contract (issue 3) gives 2 and 3 other meanings
 * and moves its usage errors to 64 (EX_USAGE). */
enum trib_cli_exit {
    TRIB_EXIT_OK = 0,    /* success (including "nothing to do")          */
    TRIB_EXIT_ERROR = 1, /* runtime, database or coordinator error       */
    TRIB_EXIT_USAGE = 2, /* unknown command or option, bad value         */
    TRIB_EXIT_NEWER = 3, /* database schema newer than this build knows  */
    /* `tributary wait` only: */
    TRIB_EXIT_WAIT_TIMEOUT = 2,  /* the timeout passed before N finished */
    TRIB_EXIT_WAIT_FAILURES = 3, /* more failures than --max-failures     */
    TRIB_EXIT_WAIT_USAGE = 64,   /* bad flags (EX_USAGE)                  */
};

/* Text for the exit-code section of help screens (ends with a newline). */
extern const char trib_cli_exit_help[];

/* Text describing how the database is chosen (ends with a newline). */
extern const char trib_cli_db_help[];

/* Subcommands. */
int trib_cli_migrate(int argc, char **argv);
int trib_cli_insert(int argc, char **argv);
/* Coordinator queries (docs/CONTROL.md, docs/CLI.md). */
int trib_cli_status(int argc, char **argv);
int trib_cli_wait(int argc, char **argv);
int trib_cli_watch(int argc, char **argv);
int trib_cli_events(int argc, char **argv);
int trib_cli_nodes(int argc, char **argv);
int trib_cli_failures(int argc, char **argv);
/* A local cluster: PostgreSQL, coordinator, agents (cli/up.c). */
int trib_cli_up(int argc, char **argv);
int trib_cli_down(int argc, char **argv);
/* Stress runs and their reports (cli/stress.c, cli/report.c). */
int trib_cli_stress(int argc, char **argv);
int trib_cli_report(int argc, char **argv);

/*
 * Picks the connection string: 'flag' (--database-url) when given, else
 * $DATABASE_URL, else "" (libpq then reads PGHOST, PGPORT, PGDATABASE,
 * PGUSER, PGPASSWORD, ... and its defaults). *source gets a static label
 * for messages ("--database-url", "DATABASE_URL", "PG* environment").
 * Returns a borrowed pointer (argv or environment), never NULL.
 */
const char *trib_cli_conninfo(const char *flag, const char **source);

/*
 * Opens a blocking libpq connection. On failure prints to stderr a message
 * prefixed with 'prog' that says what was wrong (an unparsable URL, or
 * where it tried: host, port, database, user, and libpq's reason) and
 * returns NULL. A connect_timeout of 10 s applies unless the URL or
 * PGCONNECT_TIMEOUT sets one. Server NOTICEs are dropped, WARNINGs are
 * printed to stderr.
 * Ownership: the caller closes the connection with PQfinish().
 */
PGconn *trib_cli_connect(const char *prog, const char *conninfo,
                         const char *source);

#endif /* TRIB_CLI_H */
