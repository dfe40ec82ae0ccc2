/*
 * insert.c -- `tributary insert`: batch-insert River jobs, as a River
 * client would, with COPY (the fastest path into river_job).
 *
 * Each batch is one transaction: COPY the rows, then, when any of them is
 * 'available', one pg_notify('<schema>.river_insert', '{"queue": ...}') so
 * notify-mode workers look at once (River's inserters do the same). A job
 * delayed by at most 5 s is inserted 'available' with a future scheduled_at
 * (as River itself does for short retries and snoozes: workers fetch it
 * when due); a longer delay makes it 'scheduled', and the leader's
 * scheduler moves it to 'available' up to 5 s before it is due.
 * created_at and scheduled_at come from this machine's clock, as with
 * River's Go inserter.
 */
#include "cli.h"
#include "trib_buf.h"
#include "trib_json.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHORT_DELAY_US (5 * TRIB_US_PER_S)

struct opts {
    const char *url;
    const char *schema;
    long long count;
    const char *kind;
    const char *args;
    const char *queue;
    const char *tags;
    const char *metadata;
    int priority;
    int max_attempts;
    int64_t delay_us;
    int64_t spread_us;
    long batch;
    int notify;
    int quiet;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tributary insert --count N [--kind KIND] [--args JSON] "
            "[--queue Q]\n"
            "                        [--delay D] [--spread D] [--priority "
            "1-4] [--max-attempts N]\n"
            "                        [--tags a,b] [--metadata JSON] "
            "[--batch N] [--no-notify]\n"
            "                        [--database-url URL] [--schema NAME] "
            "[--quiet]\n"
            "\n"
            "Inserts N River jobs with COPY, in transactions of --batch "
            "rows, each followed\n"
            "by a river_insert notification when its jobs are available "
            "now.\n"
            "\n"
            "  --count N          jobs to insert (1..100000000; required)\n"
            "  --kind KIND        job kind [tributary.noop]\n"
            "  --args JSON        job args, a JSON object [{}]\n"
            "  --queue Q          queue [default]\n"
            "  --delay D          schedule each job D after insertion "
            "(e.g. 5s) [0]\n"
            "  --spread D         add a uniform random 0..D to each "
            "job's delay [0]\n"
            "  --priority P       1 (highest) .. 4 [1]\n"
            "  --max-attempts N   attempts before a failing job is "
            "discarded [25]\n"
            "  --tags a,b         tags (letters, digits, _ and -)\n"
            "  --metadata JSON    metadata, a JSON object [{}]\n"
            "  --batch N          rows per transaction (1..100000) [5000]\n"
            "  --no-notify        send no river_insert notification (poll "
            "workers only)\n"
            "  --schema NAME      schema holding River's tables [current "
            "schema]\n"
            "  --quiet            no progress output\n"
            "\n%s\n%s",
            trib_cli_db_help, trib_cli_exit_help);
}

static int bad(const char *fmt, const char *v)
{
    fprintf(stderr, "tributary insert: ");
    fprintf(stderr, fmt, v);
    fprintf(stderr, " (see --help)\n");
    return TRIB_EXIT_USAGE;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"database-url", required_argument, NULL, 'u'},
        {"schema", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},
        {"kind", required_argument, NULL, 'k'},
        {"args", required_argument, NULL, 'a'},
        {"queue", required_argument, NULL, 'q'},
        {"delay", required_argument, NULL, 'd'},
        {"spread", required_argument, NULL, 'S'},
        {"priority", required_argument, NULL, 'p'},
        {"max-attempts", required_argument, NULL, 'm'},
        {"tags", required_argument, NULL, 't'},
        {"metadata", required_argument, NULL, 'M'},
        {"batch", required_argument, NULL, 'b'},
        {"no-notify", no_argument, NULL, 'N'},
        {"quiet", no_argument, NULL, 'Q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int c;

    memset(o, 0, sizeof(*o));
    o->kind = "tributary.noop";
    o->args = "{}";
    o->queue = "default";
    o->metadata = "{}";
    o->priority = 1;
    o->max_attempts = 25;
    o->batch = 5000;
    o->notify = 1;
    o->count = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->url = optarg;
            break;
        case 's':
            o->schema = optarg;
            break;
        case 'n':
            o->count = strtoll(optarg, &end, 10);
            if (*end || o->count < 1 || o->count > 100000000) {
                return bad("--count: expected 1..100000000, got '%s'", optarg);
            }
            break;
        case 'k':
            o->kind = optarg;
            break;
        case 'a':
            o->args = optarg;
            break;
        case 'q':
            o->queue = optarg;
            break;
        case 'd':
        case 'S':
            if (trib_duration_parse(optarg, 0,
                                    c == 'd' ? &o->delay_us : &o->spread_us)) {
                return bad("invalid duration '%s' (e.g. 500ms, 5s, 2m)",
                           optarg);
            }
            break;
        case 'p':
            o->priority = (int)strtol(optarg, &end, 10);
            if (*end || o->priority < 1 || o->priority > 4) {
                return bad("--priority: expected 1..4, got '%s'", optarg);
            }
            break;
        case 'm':
            o->max_attempts = (int)strtol(optarg, &end, 10);
            if (*end || o->max_attempts < 1 || o->max_attempts > 32767) {
                return bad("--max-attempts: expected 1..32767, got '%s'",
                           optarg);
            }
            break;
        case 't':
            o->tags = optarg;
            break;
        case 'M':
            o->metadata = optarg;
            break;
        case 'b':
            o->batch = strtol(optarg, &end, 10);
            if (*end || o->batch < 1 || o->batch > 100000) {
                return bad("--batch: expected 1..100000, got '%s'", optarg);
            }
            break;
        case 'N':
            o->notify = 0;
            break;
        case 'Q':
            o->quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return bad("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return bad("unexpected argument '%s'", argv[optind]);
    }
    if (o->count < 0) {
        return bad("%s", "--count N is required");
    }
    return 0;
}

/* Checks values River would refuse. */
static int validate(const struct opts *o)
{
    json_t *j;
    char err[256];
    const char *p;

    if (strlen(o->kind) == 0 || strlen(o->kind) > 127) {
        return bad("--kind: must be 1..127 characters, got '%s'", o->kind);
    }
    if (strlen(o->queue) == 0 || strlen(o->queue) > 64) {
        return bad("--queue: must be 1..64 characters, got '%s'", o->queue);
    }
    for (p = o->queue; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '|')) {
            return bad("--queue: '%s' is invalid: lowercase letters, digits "
                       "and single _ - | separators",
                       o->queue);
        }
    }
    if (trib_json_parse(o->args, strlen(o->args), &j, err, sizeof(err)) != 0 ||
        !json_is_object(j)) {
        if (j == NULL) {
            return bad("--args: %s", err);
        }
        json_decref(j);
        return bad("--args: expected a JSON object, got '%s'", o->args);
    }
    json_decref(j);
    j = NULL;
    if (trib_json_parse(o->metadata, strlen(o->metadata), &j, err,
                        sizeof(err)) != 0 ||
        !json_is_object(j)) {
        if (j == NULL) {
            return bad("--metadata: %s", err);
        }
        json_decref(j);
        return bad("--metadata: expected a JSON object, got '%s'", o->metadata);
    }
    json_decref(j);
    if (o->tags != NULL) {
        for (p = o->tags; *p; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
                  *p == ',')) {
                return bad("--tags: '%s': letters, digits, _ and - separated "
                           "by commas",
                           o->tags);
            }
        }
    }
    return 0;
}

static int exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
             PQresultStatus(r) == PGRES_TUPLES_OK;

    if (!ok) {
        fprintf(stderr, "tributary insert: %s", PQerrorMessage(c));
    }
    PQclear(r);
    return ok;
}

static int insert_batch(PGconn *c, const struct opts *o, const char *table,
                        const char *notify_sql, const char *row_tail, long n)
{
    struct trib_buf rows = TRIB_BUF_INIT;
    int64_t now = trib_now_us();
    int any_now = 0;
    PGresult *r;
    char ts[40], copy[256];
    long i;

    for (i = 0; i < n; i++) {
        int64_t delay = o->delay_us;
        if (o->spread_us > 0) {
            delay += (int64_t)((double)rand() / ((double)RAND_MAX + 1.0) *
                               (double)o->spread_us);
        }
        trib_time_rfc3339(now, ts, sizeof(ts), 6);
        trib_buf_puts(&rows, ts);
        trib_buf_putc(&rows, '\t');
        trib_time_rfc3339(now + delay, ts, sizeof(ts), 6);
        trib_buf_puts(&rows, ts);
        /* River's rule for short delays (retries, snoozes, the
         * scheduler's look-ahead): up to 5 s ahead a job is 'available'
         * with a future scheduled_at; further out it is 'scheduled'. */
        if (delay > SHORT_DELAY_US) {
            trib_buf_puts(&rows, "\tscheduled\t");
        } else {
            trib_buf_puts(&rows, "\tavailable\t");
            any_now = 1;
        }
        trib_buf_puts(&rows, row_tail);
    }
    if (!exec_ok(c, "BEGIN")) {
        goto fail;
    }
    snprintf(copy, sizeof(copy),
             "COPY %s (created_at, scheduled_at, state, args, kind, "
             "max_attempts, metadata, priority, queue, tags) FROM STDIN",
             table);
    r = PQexec(c, copy);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        fprintf(stderr, "tributary insert: %s", PQerrorMessage(c));
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    if (PQputCopyData(c, rows.data, (int)rows.len) != 1 ||
        PQputCopyEnd(c, NULL) != 1) {
        fprintf(stderr, "tributary insert: %s", PQerrorMessage(c));
        goto fail;
    }
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "tributary insert: %s", PQerrorMessage(c));
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL) {
        PQclear(r);
    }
    if (any_now && o->notify && !exec_ok(c, notify_sql)) {
        goto fail;
    }
    if (!exec_ok(c, "COMMIT")) {
        goto fail;
    }
    trib_buf_fini(&rows);
    return 0;

fail:
    trib_buf_fini(&rows);
    PQclear(PQexec(c, "ROLLBACK"));
    return -1;
}

int trib_cli_insert(int argc, char **argv)
{
    struct opts o;
    const char *source, *conninfo;
    struct trib_buf table = TRIB_BUF_INIT, notify = TRIB_BUF_INIT;
    struct trib_buf tail = TRIB_BUF_INIT, payload = TRIB_BUF_INIT;
    PGconn *c;
    PGresult *r;
    char *schema;
    long long done = 0;
    uint64_t t0, last = 0;
    int rv, tty = isatty(STDERR_FILENO);
    double secs;

    rv = parse_opts(argc, argv, &o);
    if (rv != 0) {
        return rv < 0 ? TRIB_EXIT_OK : rv;
    }
    rv = validate(&o);
    if (rv != 0) {
        return rv;
    }
    conninfo = trib_cli_conninfo(o.url, &source);
    c = trib_cli_connect("tributary insert", conninfo, source);
    if (c == NULL) {
        return TRIB_EXIT_ERROR;
    }
    r = PQexec(c, o.schema ? "SELECT 1" : "SELECT current_schema()");
    schema = trib_strdup(o.schema ? o.schema
                         : PQresultStatus(r) == PGRES_TUPLES_OK &&
                                 !PQgetisnull(r, 0, 0)
                             ? PQgetvalue(r, 0, 0)
                             : "public");
    PQclear(r);
    {
        char *id = PQescapeIdentifier(c, schema, strlen(schema));
        trib_buf_printf(&table, "%s.river_job", id);
        PQfreemem(id);
    }
    /* One row's constant part: args, kind, max_attempts, metadata,
     * priority, queue, tags. */
    trib_buf_copy_field(&tail, o.args);
    trib_buf_putc(&tail, '\t');
    trib_buf_copy_field(&tail, o.kind);
    trib_buf_printf(&tail, "\t%d\t", o.max_attempts);
    trib_buf_copy_field(&tail, o.metadata);
    trib_buf_printf(&tail, "\t%d\t", o.priority);
    trib_buf_copy_field(&tail, o.queue);
    trib_buf_printf(&tail, "\t{%s}\n", o.tags ? o.tags : "");
    {
        char *ch, *pl;
        trib_buf_printf(&payload, "%s.river_insert", schema);
        ch = PQescapeLiteral(c, payload.data, payload.len);
        trib_buf_reset(&payload);
        trib_buf_puts(&payload, "{\"queue\": ");
        trib_buf_json_str(&payload, o.queue, strlen(o.queue));
        trib_buf_putc(&payload, '}');
        pl = PQescapeLiteral(c, payload.data, payload.len);
        trib_buf_printf(&notify, "SELECT pg_notify(%s, %s)", ch, pl);
        PQfreemem(ch);
        PQfreemem(pl);
    }
    srand((unsigned)trib_now_us());
    t0 = trib_mono_us();
    rv = TRIB_EXIT_OK;
    while (done < o.count) {
        long n = o.count - done < o.batch ? (long)(o.count - done) : o.batch;
        if (insert_batch(c, &o, table.data, notify.data, tail.data, n) != 0) {
            fprintf(stderr,
                    "tributary insert: stopped after %lld of %lld "
                    "jobs\n",
                    done, o.count);
            rv = TRIB_EXIT_ERROR;
            break;
        }
        done += n;
        if (!o.quiet && tty && trib_mono_us() - last > 200000) {
            last = trib_mono_us();
            fprintf(stderr, "\rinserted %lld / %lld", done, o.count);
        }
    }
    secs = (double)(trib_mono_us() - t0) / 1e6;
    if (!o.quiet) {
        fprintf(stderr, "%s", tty ? "\r" : "");
        printf("inserted %lld %s job(s) into %s queue %s in %.2f s (%.0f "
               "jobs/s)\n",
               done, o.kind, table.data, o.queue, secs,
               secs > 0 ? (double)done / secs : 0.0);
    }
    PQfinish(c);
    trib_free(schema);
    trib_buf_fini(&table);
    trib_buf_fini(&notify);
    trib_buf_fini(&tail);
    trib_buf_fini(&payload);
    return rv;
}
