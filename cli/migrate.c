/*
 * migrate.c -- `tributary migrate up|status`: River's schema (and any later
 * migration line) through the trib_sql runner, with progress lines, a
 * status table or JSON, and the CLI's exit codes (cli.h).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_migrate.h"

#define PROG "tributary migrate"

enum action { ACT_NONE, ACT_UP, ACT_STATUS };

struct args {
    enum action action;
    const char *url;    /* --database-url, NULL if absent */
    const char *schema; /* --schema, NULL if absent       */
    const char *line;   /* --line, NULL if absent         */
    int64_t target;     /* --target-version, 0 if absent  */
    int json;           /* --json                          */
};

static void help(FILE *out)
{
    const struct trib_migration_line *lines;
    size_t i, n;

    lines = trib_migration_lines(&n);
    fprintf(out,
            "usage: tributary migrate up [--database-url URL] [--schema "
            "NAME]\n"
            "                            [--target-version N] [--line "
            "NAME]\n"
            "       tributary migrate status [--database-url URL] "
            "[--schema NAME] [--json]\n"
            "\n"
            "Creates or upgrades River's schema in PostgreSQL exactly as "
            "River's own\n"
            "migrator (River v0.51.2) does, so River clients and tributary "
            "share it.\n"
            "A database River migrated to any earlier version is upgraded "
            "in place.\n"
            "\n"
            "Actions:\n"
            "  up      apply the missing versions in order, each in its own "
            "transaction\n"
            "          with its river_migration row, under an advisory lock "
            "(concurrent\n"
            "          runs wait for each other); prints one line per "
            "version. Running\n"
            "          it again does nothing. Refuses (exit 3) when the "
            "database is at a\n"
            "          version newer than this build knows.\n"
            "  status  list the versions of each line: applied (when) or "
            "pending.\n"
            "\n"
            "Options:\n"
            "  --database-url URL   the database (see below)\n"
            "  --schema NAME        schema holding River's tables; it must "
            "exist (default:\n"
            "                       the connection's current schema, "
            "usually public)\n"
            "  --target-version N   up: stop after version N (of line main, "
            "or of --line)\n"
            "  --line NAME          up: migrate only this line\n"
            "  --json               status: print JSON instead of a table\n"
            "  -h, --help           show this help\n"
            "\n"
            "Migration lines known to this build:");
    for (i = 0; i < n; i++) {
        fprintf(out, " %s (versions 1..%zu)%s", lines[i].name, lines[i].nsteps,
                i + 1 < n ? "," : "\n");
    }
    fprintf(out, "\n%s\n%s", trib_cli_db_help, trib_cli_exit_help);
    fprintf(out, "  (status also exits 3 when the database is newer)\n");
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'tributary migrate --help')\n");
    return TRIB_EXIT_USAGE;
}

static int parse_target(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1) {
        return TRIB_EINVAL;
    }
    *out = v;
    return 0;
}

/* Returns -1 when parsed, else the exit code to return (help or usage). */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option longopts[] = {
        {"database-url", required_argument, NULL, 'd'},
        {"schema", required_argument, NULL, 's'},
        {"target-version", required_argument, NULL, 't'},
        {"line", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct trib_migration_line *l;
    const char *target_text = NULL;
    int c;

    memset(a, 0, sizeof(*a));
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            a->url = optarg;
            break;
        case 's':
            a->schema = optarg;
            break;
        case 't':
            target_text = optarg;
            break;
        case 'l':
            a->line = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            help(stdout);
            return TRIB_EXIT_OK;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt != 0) {
                return usage_error("unknown option '-%c'", optopt);
            }
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) {
        return usage_error("missing action: up or status");
    }
    if (strcmp(argv[optind], "up") == 0) {
        a->action = ACT_UP;
    } else if (strcmp(argv[optind], "status") == 0) {
        a->action = ACT_STATUS;
    } else {
        return usage_error("unknown action '%s' (want up or status)",
                           argv[optind]);
    }
    if (optind + 1 < argc) {
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    }
    if (a->schema != NULL && trib_migration_schema_valid(a->schema) != 0) {
        return usage_error("invalid --schema '%s' (1-63 bytes, no single "
                           "quote)",
                           a->schema);
    }
    if (a->action == ACT_STATUS && (target_text != NULL || a->line != NULL)) {
        return usage_error("--target-version and --line apply to 'up'");
    }
    if (a->action == ACT_UP && a->json) {
        return usage_error("--json applies to 'status'");
    }
    l = trib_migration_line_find(a->line ? a->line : TRIB_MIGRATION_MAIN);
    if (l == NULL) {
        return usage_error("unknown migration line '%s'", a->line);
    }
    if (target_text != NULL) {
        if (parse_target(target_text, &a->target) != 0 ||
            a->target > (int64_t)l->nsteps) {
            return usage_error("--target-version '%s': line %s has "
                               "versions 1..%zu",
                               target_text, l->name, l->nsteps);
        }
    }
    return -1;
}

static int exit_for(int rc)
{
    if (rc == 0) {
        return TRIB_EXIT_OK;
    }
    return rc == TRIB_EVERSION ? TRIB_EXIT_NEWER : TRIB_EXIT_ERROR;
}

/* ---- up ---------------------------------------------------------------- */

static void on_event(void *arg, enum trib_migrate_event ev,
                     const struct trib_migration *m, int64_t elapsed_us)
{
    const struct args *a = arg;

    switch (ev) {
    case TRIB_MIGRATE_WAITING:
        fprintf(stderr,
                "waiting for another 'tributary migrate' of schema "
                "%s to finish...\n",
                a->schema ? a->schema : "(the current schema)");
        break;
    case TRIB_MIGRATE_APPLYING:
        printf("applying %s %d %s... ", m->line, m->version, m->name);
        fflush(stdout);
        break;
    case TRIB_MIGRATE_APPLIED:
        printf("ok (%" PRId64 " ms)\n", elapsed_us / 1000);
        fflush(stdout);
        break;
    case TRIB_MIGRATE_FAILED:
        printf("FAILED\n");
        fflush(stdout);
        break;
    }
}

/* "main: up to date (version 8 of 8)" lines after a successful run. */
static int print_outcome(PGconn *conn, const struct args *a, size_t napplied)
{
    const struct trib_migration_line *lines;
    struct trib_migrate_status st;
    char err[1024];
    int64_t cur;
    size_t i, n;
    int rc;

    rc = trib_migrate_status_read(conn, a->schema, &st, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return rc;
    }
    if (napplied == 0) {
        printf("nothing to apply; schema \"%s\" is up to date\n", st.schema);
    } else {
        printf("applied %zu version%s to schema \"%s\"\n", napplied,
               napplied == 1 ? "" : "s", st.schema);
    }
    lines = trib_migration_lines(&n);
    for (i = 0; i < n; i++) {
        if (a->line != NULL && strcmp(a->line, lines[i].name) != 0) {
            continue;
        }
        cur = trib_migrate_status_current(&st, lines[i].name);
        if (cur == (int64_t)lines[i].nsteps) {
            printf("%s: up to date (version %" PRId64 " of %zu)\n",
                   lines[i].name, cur, lines[i].nsteps);
        } else {
            printf("%s: at version %" PRId64 " of %zu%s\n", lines[i].name, cur,
                   lines[i].nsteps, a->target ? " (target reached)" : "");
        }
    }
    trib_migrate_status_fini(&st);
    return 0;
}

static int run_up(PGconn *conn, struct args *a)
{
    struct trib_migrate_opts o = {0};
    char err[2048];
    size_t napplied = 0;
    int rc;

    o.schema = a->schema;
    o.line = a->line;
    o.target_version = a->target;
    o.on_event = on_event;
    o.arg = a;
    rc = trib_migrate_up(conn, &o, &napplied, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        if (napplied > 0) {
            fprintf(stderr,
                    PROG ": %zu version%s applied before the failure "
                         "stay%s committed\n",
                    napplied, napplied == 1 ? "" : "s",
                    napplied == 1 ? "s" : "");
        }
        return exit_for(rc);
    }
    return exit_for(print_outcome(conn, a, napplied));
}

/* ---- status ------------------------------------------------------------ */

/* Every row to show: known versions (applied or not) plus recorded rows
 * this build cannot name, in line then version order. */
struct entry {
    const char *line;
    int64_t version;
    const char *name;       /* NULL: unknown to this build */
    const char *applied_at; /* NULL: pending                */
};

/* Line order: known lines in table order ('main' first), then unknown
 * lines by name. */
static size_t line_rank(const char *line)
{
    const struct trib_migration_line *lines;
    size_t i, n;

    lines = trib_migration_lines(&n);
    for (i = 0; i < n; i++) {
        if (strcmp(lines[i].name, line) == 0) {
            return i;
        }
    }
    return n;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    size_t ra = line_rank(a->line), rb = line_rank(b->line);
    int c;

    if (ra != rb) {
        return ra < rb ? -1 : 1;
    }
    c = strcmp(a->line, b->line);
    if (c != 0) {
        return c;
    }
    return a->version < b->version ? -1 : a->version > b->version;
}

static size_t collect(const struct trib_migrate_status *st, struct entry **out)
{
    const struct trib_migration_line *lines, *l;
    struct entry *e;
    size_t i, j, n, k = 0, cap;

    lines = trib_migration_lines(&n);
    cap = st->nrows + 1;
    for (i = 0; i < n; i++) {
        cap += lines[i].nsteps;
    }
    e = trib_calloc(cap, sizeof(*e));
    for (i = 0; i < n; i++) {
        for (j = 0; j < lines[i].nsteps; j++) {
            e[k].line = lines[i].name;
            e[k].version = (int64_t)j + 1;
            e[k].name = lines[i].steps[j].name;
            k++;
        }
    }
    for (i = 0; i < st->nrows; i++) {
        const struct trib_migrate_row *r = &st->rows[i];

        l = trib_migration_line_find(r->line);
        if (l != NULL && r->version >= 1 && r->version <= (int64_t)l->nsteps) {
            for (j = 0; j < k; j++) {
                if (e[j].line == l->name && e[j].version == r->version) {
                    e[j].applied_at = r->applied_at;
                }
            }
            continue;
        }
        e[k].line = r->line;
        e[k].version = r->version;
        e[k].applied_at = r->applied_at;
        k++;
    }
    qsort(e, k, sizeof(*e), entry_cmp);
    *out = e;
    return k;
}

static void print_table(const struct trib_migrate_status *st,
                        const struct entry *e, size_t n)
{
    size_t i;

    printf("schema \"%s\": river_migration %s\n", st->schema,
           !st->has_table ? "absent (no River migration applied yet)"
           : st->legacy   ? "present (layout before River version 5)"
                          : "present");
    printf("%-10s %7s  %-26s %s\n", "LINE", "VERSION", "NAME", "APPLIED AT");
    for (i = 0; i < n; i++) {
        printf("%-10s %7" PRId64 "  %-26s %s\n", e[i].line, e[i].version,
               e[i].name ? e[i].name : "(unknown to this build)",
               e[i].applied_at ? e[i].applied_at : "pending");
    }
}

/* Entries e[i..] of the line starting at i: returns how many, and how
 * many of them are pending in *todo. */
static size_t line_span(const struct entry *e, size_t n, size_t i, size_t *todo)
{
    size_t j;

    *todo = 0;
    for (j = i; j < n && strcmp(e[j].line, e[i].line) == 0; j++) {
        *todo += e[j].applied_at == NULL;
    }
    return j - i;
}

/* One summary line per migration line (known, or found in the database). */
static void print_summary(const struct trib_migrate_status *st,
                          const struct entry *e, size_t n)
{
    const struct trib_migration_line *l;
    size_t i, todo;
    int64_t cur;

    for (i = 0; i < n; i += line_span(e, n, i, &todo)) {
        l = trib_migration_line_find(e[i].line);
        cur = trib_migrate_status_current(st, e[i].line);
        line_span(e, n, i, &todo);
        if (l == NULL) {
            printf("%s: at version %" PRId64 " (line not managed by this "
                   "tributary build)\n",
                   e[i].line, cur);
        } else if (cur > (int64_t)l->nsteps) {
            printf("%s: at version %" PRId64 ", NEWER than this tributary "
                   "build knows (%zu)\n",
                   l->name, cur, l->nsteps);
        } else if (cur == 0) {
            printf("%s: no version applied yet, %zu pending (run "
                   "'tributary migrate up')\n",
                   l->name, todo);
        } else if (todo == 0) {
            printf("%s: up to date (version %" PRId64 " of %zu)\n", l->name,
                   cur, l->nsteps);
        } else {
            printf("%s: at version %" PRId64 " of %zu, %zu pending (run "
                   "'tributary migrate up')\n",
                   l->name, cur, l->nsteps, todo);
        }
    }
}

static void print_json(const struct trib_migrate_status *st,
                       const struct entry *e, size_t n, int newer)
{
    const struct trib_migration_line *l;
    struct trib_buf b = TRIB_BUF_INIT;
    size_t i, todo;
    int first = 1;

    trib_buf_puts(&b, "{\"schema\":");
    trib_buf_json_str(&b, st->schema, strlen(st->schema));
    trib_buf_printf(&b, ",\"river_migration\":\"%s\",\"layout\":%s",
                    st->has_table ? "present" : "absent",
                    !st->has_table ? "null"
                    : st->legacy   ? "\"legacy\""
                                   : "\"lines\"");
    trib_buf_printf(&b, ",\"newer_than_known\":%s,\"lines\":[",
                    newer ? "true" : "false");
    for (i = 0; i < n; i += line_span(e, n, i, &todo)) {
        l = trib_migration_line_find(e[i].line);
        line_span(e, n, i, &todo);
        trib_buf_puts(&b, first ? "{\"line\":" : ",{\"line\":");
        first = 0;
        trib_buf_json_str(&b, e[i].line, strlen(e[i].line));
        trib_buf_printf(&b, ",\"known\":%s", l ? "true" : "false");
        if (l != NULL) {
            trib_buf_printf(&b, ",\"latest\":%zu", l->nsteps);
        }
        trib_buf_printf(&b, ",\"current\":%" PRId64 ",\"pending\":%zu}",
                        trib_migrate_status_current(st, e[i].line), todo);
    }
    trib_buf_puts(&b, "],\"versions\":[");
    for (i = 0; i < n; i++) {
        trib_buf_puts(&b, i ? ",{\"line\":" : "{\"line\":");
        trib_buf_json_str(&b, e[i].line, strlen(e[i].line));
        trib_buf_printf(&b, ",\"version\":%" PRId64 ",\"name\":", e[i].version);
        if (e[i].name != NULL) {
            trib_buf_json_str(&b, e[i].name, strlen(e[i].name));
        } else {
            trib_buf_puts(&b, "null");
        }
        trib_buf_printf(&b, ",\"applied\":%s,\"applied_at\":",
                        e[i].applied_at ? "true" : "false");
        if (e[i].applied_at != NULL) {
            trib_buf_json_str(&b, e[i].applied_at, strlen(e[i].applied_at));
        } else {
            trib_buf_puts(&b, "null");
        }
        trib_buf_putc(&b, '}');
    }
    trib_buf_puts(&b, "]}\n");
    fputs(b.data, stdout);
    trib_buf_fini(&b);
}

static int run_status(PGconn *conn, const struct args *a)
{
    struct trib_migrate_status st;
    struct entry *e = NULL;
    char err[2048];
    size_t n;
    int rc, newer;

    rc = trib_migrate_status_read(conn, a->schema, &st, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return exit_for(rc);
    }
    newer = trib_migrate_status_check(&st, err, sizeof(err));
    n = collect(&st, &e);
    if (a->json) {
        print_json(&st, e, n, newer != 0);
    } else {
        print_table(&st, e, n);
        print_summary(&st, e, n);
    }
    if (newer != 0) {
        fprintf(stderr, PROG ": %s\n", err);
    }
    trib_free(e);
    trib_migrate_status_fini(&st);
    return exit_for(newer);
}

/* ---- entry point ------------------------------------------------------- */

int trib_cli_migrate(int argc, char **argv)
{
    struct args a;
    const char *conninfo, *source;
    PGconn *conn;
    int rc;

    rc = parse_args(argc, argv, &a);
    if (rc >= 0) {
        return rc;
    }
    conninfo = trib_cli_conninfo(a.url, &source);
    conn = trib_cli_connect(PROG, conninfo, source);
    if (conn == NULL) {
        return TRIB_EXIT_ERROR;
    }
    rc = a.action == ACT_UP ? run_up(conn, &a) : run_status(conn, &a);
    PQfinish(conn);
    return rc;
}
