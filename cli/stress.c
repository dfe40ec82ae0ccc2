/*
 * stress.c -- `tributary stress`: a load test of a River-style queue
 * across the cluster. Declares the run (a plan file and/or flags:
 * stress_plan.h), gives it an id its jobs carry, inserts them on the
 * plan's schedule (stress_insert.h), follows them through the
 * coordinator's events and river_job itself until every one has finished
 * (stress_run.c), samples resources (stress_res.h), reads the run's rows,
 * and writes the report: DIR/report.json (docs/REPORT.md), DIR/report.html
 * and a terminal summary (report_render.h). The exit code says how it
 * went (docs/STRESS.md): thresholds, timeout, disagreement, Ctrl-C.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control_client.h"
#include "render.h"
#include "report_render.h"
#include "stress_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"

volatile sig_atomic_t stress_signals;

static void on_signal(int sig)
{
    (void)sig;
    stress_signals++;
}

/* Flags handed to stress_plan_flag(): the plan's own vocabulary. */
static const char *const plan_flags[] = {
    "name",       "jobs",    "rate",      "stage",        "start-rate",
    "kind",       "args",    "queue",     "priority",     "max-attempts",
    "tag",        "delay",   "spread",    "mixed",        "notify-queue",
    "poll-queue", "method",  "batch",     "streams",      "timeout",
    "grace",      "monitor", "threshold", "database-url", "schema",
    "control",    "out",
};
#define NPLAN_FLAGS (sizeof(plan_flags) / sizeof(plan_flags[0]))

enum { OPT_PLAN = 1000, OPT_QUIET, OPT_JSON, OPT_NO_COLOR, OPT_HELP };

static void help(FILE *f)
{
    fprintf(
        f,
        "usage: tributary stress [--plan FILE] [--jobs N [--rate R] | "
        "--stage S ...]\n"
        "                        [--kind K] [--args JSON] [--delay D] "
        "[--spread D] [--mixed]\n"
        "                        [--threshold EXPR ...] [--out DIR] "
        "[--database-url URL]\n"
        "                        [--control URL] [options]\n"
        "\n"
        "Load-tests the cluster: inserts River jobs on a schedule "
        "(delayed, in stages,\n"
        "ramping), follows every one of them to its end through the "
        "coordinator's\n"
        "events and river_job itself, and reports: DIR/report.json, "
        "DIR/report.html\n"
        "(self-contained, charts) and a summary here. The agents and "
        "the coordinator\n"
        "must be running (e.g. 'tributary up'); the run's jobs carry its "
        "id (tag\n"
        "tributary-run-ID, metadata tributary.run), so other jobs never "
        "mix in.\n"
        "\n"
        "What to run (flags override the plan file; docs/STRESS.md):\n"
        "  --plan FILE          a YAML plan (stages, jobs, thresholds, ...)\n"
        "  --name NAME          the run's name [stress]\n"
        "  --jobs N             N jobs (one stage) ...\n"
        "  --rate R             ... at R jobs/s [as fast as inserts go]\n"
        "  --stage S            a stage (repeat): 30s:500 ramps the "
        "arrival rate to\n"
        "                       500/s over 30 s (k6 ramping-arrival-rate); "
        "2000@500 is\n"
        "                       2000 jobs at 500/s; 2000 as fast as "
        "possible; name=S names it\n"
        "  --start-rate R       rate the first ramp starts from [0]\n"
        "  --kind K             job kind [tributary.noop]\n"
        "  --args JSON          job args (a JSON object) [{}]\n"
        "  --queue Q[,Q...]     queues, jobs spread round-robin [default]\n"
        "  --priority P         1..4 [1]     --max-attempts N   [25]\n"
        "  --tag T[,T...]       extra tags\n"
        "  --delay D            schedule each job D after insertion "
        "(5s, 500ms) [0]\n"
        "  --spread D           plus a uniform random 0..D [0]\n"
        "  --mixed              the mixed-strategy preset: equal load on "
        "a notify-served\n"
        "                       and a poll-served queue, compared in the "
        "report\n"
        "  --notify-queue Q     its notify queue [default]  "
        "--poll-queue Q  [poll]\n"
        "  --method M           copy | insert (multi-row INSERT + "
        "river_insert) [copy]\n"
        "  --batch N            rows per transaction (an upper bound: at a\n"
        "                       paced rate a batch holds what is due) [5000]\n"
        "  --streams N          parallel insert connections [2]\n"
        "  --timeout D          the whole run [10m]\n"
        "  --grace D            after Ctrl-C, follow inserted jobs this "
        "long [5s]\n"
        "  --monitor M          both | events | polling: what decides "
        "that jobs are\n"
        "                       done [both: cross-checked, "
        "disagreements reported]\n"
        "  --threshold EXPR     pass/fail (repeat): 'p95(end_to_end) < "
        "2s',\n"
        "                       'failed_rate < 1%%', 'throughput > 500/s', "
        "'p99(pickup){mode=poll} < 2s'\n"
        "Where:\n"
        "  --out DIR            report directory [./stress-RUNID]\n"
        "  --database-url URL   --schema NAME   --control URL\n"
        "Output:\n"
        "  --quiet              no progress line and no summary\n"
        "  --json               print report.json on stdout instead of "
        "the summary\n"
        "  --no-color           no colours in the summary\n"
        "\n"
        "Exit codes: 0 every job finished and every threshold passed; 1 "
        "error; 2 usage\n"
        "error or bad plan; 3 a threshold failed; 4 timeout (jobs "
        "unfinished); 5 the\n"
        "monitors disagree (events vs river_job); 130 interrupted "
        "(Ctrl-C).\n"
        "\n%s\n%s"
        "\nExamples:\n"
        "  tributary stress --jobs 10000 --delay 5s --out /tmp/run1\n"
        "  tributary stress --mixed --stage 10s:200 --stage 20s:1000 "
        "--stage 10s:0 \\\n"
        "      --kind tributary.fail --args '{\"probability\": 0.05}' "
        "--max-attempts 2 \\\n"
        "      --threshold 'p95(end_to_end) < 2s'\n"
        "  tributary stress --plan plan.yaml\n"
        "  tributary report ./stress-20261127-160000-3fa2\n",
        trib_cli_db_help, trib_ctl_address_help);
}

static int usage_error(const char *msg)
{
    fprintf(stderr, STRESS_PROG ": %s (see 'tributary stress --help')\n", msg);
    return STRESS_EXIT_USAGE;
}

struct pending {
    const char *flag, *value;
};

/* Parses argv: the plan file first, then every plan flag in order. */
static int parse_args(struct stress_ctx *ctx, int argc, char **argv,
                      int *json_out)
{
    struct option longopts[NPLAN_FLAGS + 6];
    struct pending *pend;
    const char *plan_file = NULL;
    char err[512];
    size_t i;
    int c, idx, npend = 0, rv = 0;

    memset(longopts, 0, sizeof(longopts));
    for (i = 0; i < NPLAN_FLAGS; i++) {
        longopts[i].name = plan_flags[i];
        longopts[i].has_arg = strcmp(plan_flags[i], "mixed") == 0
                                  ? no_argument
                                  : required_argument;
        longopts[i].val = (int)i;
    }
    longopts[i++] = (struct option){"plan", required_argument, NULL, OPT_PLAN};
    longopts[i++] = (struct option){"quiet", no_argument, NULL, OPT_QUIET};
    longopts[i++] = (struct option){"json", no_argument, NULL, OPT_JSON};
    longopts[i++] =
        (struct option){"no-color", no_argument, NULL, OPT_NO_COLOR};
    longopts[i++] = (struct option){"help", no_argument, NULL, OPT_HELP};

    pend = trib_calloc((size_t)argc + 1, sizeof(*pend));
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
        if (c >= 0 && c < (int)NPLAN_FLAGS) {
            pend[npend].flag = plan_flags[c];
            pend[npend].value = optarg;
            npend++;
            continue;
        }
        switch (c) {
        case OPT_PLAN:
            plan_file = optarg;
            break;
        case OPT_QUIET:
            ctx->quiet = 1;
            break;
        case OPT_JSON:
            *json_out = 1;
            break;
        case OPT_NO_COLOR:
            ctx->color = 0;
            break;
        case 'h':
        case OPT_HELP:
            help(stdout);
            rv = -1;
            goto out;
        case ':':
            snprintf(err, sizeof(err), "option %s needs a value",
                     argv[optind - 1]);
            rv = usage_error(err);
            goto out;
        default:
            snprintf(err, sizeof(err), "unknown option '%s'", argv[optind - 1]);
            rv = usage_error(err);
            goto out;
        }
    }
    if (optind < argc) {
        snprintf(err, sizeof(err), "unexpected argument '%s'", argv[optind]);
        rv = usage_error(err);
        goto out;
    }
    err[0] = '\0';
    if (plan_file != NULL &&
        stress_plan_load(&ctx->plan, plan_file, err, sizeof(err)) != 0) {
        fprintf(stderr, STRESS_PROG ": %s\n", err);
        rv = STRESS_EXIT_USAGE;
        goto out;
    }
    for (c = 0; c < npend; c++) {
        if (stress_plan_flag(&ctx->plan, pend[c].flag, pend[c].value, err,
                             sizeof(err)) != 0) {
            rv = usage_error(err);
            goto out;
        }
    }
    if (stress_plan_finish(&ctx->plan, err, sizeof(err)) != 0) {
        fprintf(stderr, STRESS_PROG ": %s\n", err);
        rv = STRESS_EXIT_USAGE;
    }
out:
    trib_free(pend);
    return rv;
}

static void make_run_id(struct stress_ctx *ctx)
{
    char ts[40];
    unsigned r;
    FILE *f = fopen("/dev/urandom", "rb");

    if (f == NULL || fread(&r, sizeof(r), 1, f) != 1) {
        r = (unsigned)(trib_now_us() ^ (int64_t)getpid());
    }
    if (f != NULL) {
        fclose(f);
    }
    trib_time_rfc3339(trib_now_us(), ts, sizeof(ts), 0);
    /* 2026-11-27T16:00:00Z -> 20261127-160000 */
    snprintf(ctx->run_id, sizeof(ctx->run_id), "%.4s%.2s%.2s-%.2s%.2s%.2s-%04x",
             ts, ts + 5, ts + 8, ts + 11, ts + 14, ts + 17, r & 0xffffu);
    snprintf(ctx->run_tag, sizeof(ctx->run_tag), "tributary-run-%s",
             ctx->run_id);
    snprintf(ctx->meta_filter, sizeof(ctx->meta_filter),
             "{\"tributary\": {\"run\": \"%s\"}}", ctx->run_id);
}

/* Opens the database, finds River's table, and notes where jobs start. */
static int open_db(struct stress_ctx *ctx)
{
    struct trib_buf b = TRIB_BUF_INIT;
    const char *source;
    PGresult *r;
    char *id;
    int rv = -1;

    ctx->conninfo = trib_cli_conninfo(ctx->plan.database_url, &source);
    ctx->db = trib_cli_connect(STRESS_PROG, ctx->conninfo, source);
    if (ctx->db == NULL) {
        return -1;
    }
    snprintf(ctx->database, sizeof(ctx->database), "%s:%s/%s", PQhost(ctx->db),
             PQport(ctx->db), PQdb(ctx->db));
    r = PQexec(ctx->db, "SELECT current_schema()");
    ctx->schema = trib_strdup(ctx->plan.schema ? ctx->plan.schema
                              : PQresultStatus(r) == PGRES_TUPLES_OK &&
                                      !PQgetisnull(r, 0, 0)
                                  ? PQgetvalue(r, 0, 0)
                                  : "public");
    PQclear(r);
    id = PQescapeIdentifier(ctx->db, ctx->schema, strlen(ctx->schema));
    trib_buf_printf(&b, "%s.river_job", id ? id : "public");
    PQfreemem(id);
    ctx->table = trib_strdup(b.data);
    trib_buf_reset(&b);
    trib_buf_printf(&b, "%s.river_insert", ctx->schema);
    ctx->channel = trib_strdup(b.data);
    trib_buf_reset(&b);
    trib_buf_printf(&b, "SELECT coalesce(max(id), 0) FROM %s", ctx->table);
    r = PQexec(ctx->db, b.data);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr,
                STRESS_PROG
                ": cannot read %s: %s"
                "  (is River's schema there? run 'tributary migrate up'"
                "%s%s)\n",
                ctx->table, PQerrorMessage(ctx->db),
                ctx->plan.schema ? " --schema " : "",
                ctx->plan.schema ? ctx->plan.schema : "");
        PQclear(r);
        goto out;
    }
    ctx->min_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    rv = 0;
out:
    trib_buf_fini(&b);
    return rv;
}

/* Connects to the coordinator; required unless --monitor polling. */
static int open_control(struct stress_ctx *ctx)
{
    struct trib_ctl_batch b;
    struct trib_ctl_err e;
    const char *source;
    const char *url = trib_ctl_address(ctx->plan.control, &source);
    int rv;

    ctx->control_url = trib_strdup(url);
    if (trib_ctl_open(url, source, &ctx->ctl, &e) != 0) {
        trib_ctl_print_err(STRESS_PROG, &e);
        return -1;
    }
    /* "From now": the cursor every event of the run comes after. */
    trib_ctl_batch_init(&b);
    rv = trib_ctl_events(ctx->ctl, UINT64_MAX, 1, 0, 0, &b, &e);
    ctx->cursor = b.next;
    trib_ctl_batch_fini(&b);
    if (rv == 0) {
        return 0;
    }
    trib_ctl_close(ctx->ctl);
    ctx->ctl = NULL;
    if (ctx->plan.monitor == STRESS_MONITOR_POLLING) {
        if (!ctx->quiet) {
            fprintf(stderr,
                    STRESS_PROG ": no coordinator at %s (%s): following "
                                "river_job only\n",
                    url, e.text);
        }
        return 0;
    }
    trib_ctl_print_err(STRESS_PROG, &e);
    fprintf(stderr,
            STRESS_PROG ": the events monitor needs the "
                        "coordinator; start the cluster ('tributary up') or "
                        "use --monitor polling\n");
    return -1;
}

static int write_file(const char *dir, const char *name,
                      const struct trib_buf *b)
{
    char path[4096], tmp[4200];
    FILE *f;
    int ok;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
        sizeof(path)) {
        fprintf(stderr, STRESS_PROG ": %s/%s: path too long\n", dir, name);
        return -1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    f = fopen(tmp, "wb");
    if (f == NULL) {
        fprintf(stderr, STRESS_PROG ": cannot write %s: %s\n", tmp,
                strerror(errno));
        return -1;
    }
    ok = fwrite(b->data, 1, b->len, f) == b->len;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, STRESS_PROG ": cannot write %s: %s\n", path,
                strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int make_dir(const char *dir)
{
    char buf[4096];
    char *p;

    if ((size_t)snprintf(buf, sizeof(buf), "%s", dir) >= sizeof(buf) - 32) {
        fprintf(stderr, STRESS_PROG ": --out %s: path too long\n", dir);
        return -1;
    }
    for (p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                goto fail;
            }
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, STRESS_PROG ": cannot create %s: %s\n", buf,
            strerror(errno));
    return -1;
}

static int exit_code(const struct stress_ctx *ctx, int passed)
{
    if (strcmp(ctx->outcome, "error") == 0) {
        return STRESS_EXIT_ERROR;
    }
    if (strcmp(ctx->outcome, "interrupted") == 0) {
        return STRESS_EXIT_INTERRUPTED;
    }
    if (strcmp(ctx->outcome, "timeout") == 0) {
        return STRESS_EXIT_TIMEOUT;
    }
    if (ctx->disagree) {
        return STRESS_EXIT_DISAGREE;
    }
    return passed ? STRESS_EXIT_OK : STRESS_EXIT_THRESHOLDS;
}

/* Builds, writes and prints the report; returns the exit code. */
static int finish(struct stress_ctx *ctx, int json_out)
{
    struct stress_run_info info;
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *doc, *resources, *modes;
    int64_t planned[STRESS_MAX_STAGES], inserted[STRESS_MAX_STAGES];
    int64_t started[STRESS_MAX_STAGES], ended[STRESS_MAX_STAGES];
    int i, passed, code, wrote = 0;

    if (stress_read_rows(ctx) != 0) {
        fprintf(stderr, STRESS_PROG ": %s\n", ctx->error);
        ctx->outcome = "error";
    }
    memset(&info, 0, sizeof(info));
    for (i = 0; i < ctx->plan.nstages; i++) {
        planned[i] = ctx->prog.stages[i].planned;
        inserted[i] = ctx->prog.stages[i].inserted;
        started[i] = ctx->prog.stages[i].started_us;
        ended[i] = ctx->prog.stages[i].ended_us;
    }
    resources = stress_res_json(ctx->res);
    modes = stress_res_modes_json(ctx->res);
    info.plan = &ctx->plan;
    info.run_id = ctx->run_id;
    info.run_tag = ctx->run_tag;
    info.database = ctx->database;
    info.control = ctx->ctl ? ctx->control_url : NULL;
    info.started_us = ctx->started_us;
    info.insert_ended_us = ctx->insert_ended_us;
    info.ended_us = ctx->ended_us;
    info.outcome = ctx->outcome;
    info.error = ctx->error[0] ? ctx->error : NULL;
    info.nstages = ctx->plan.nstages;
    info.stage_planned = planned;
    info.stage_inserted = inserted;
    info.stage_started_us = started;
    info.stage_ended_us = ended;
    info.inserted = ctx->prog.inserted;
    memcpy(info.db_states, ctx->db_states, sizeof(info.db_states));
    info.db_polled_us = ctx->db_polled_us;
    info.events_seen = ctx->events_seen;
    info.events_missed = ctx->events_missed;
    info.coord_finished = ctx->ctl ? ctx->coord_finished : -1;
    info.coord_failed = ctx->ctl ? ctx->coord_failed : -1;
    info.resources = resources;
    info.modes_db = modes;
    /* The exit code depends on the thresholds, which are evaluated on the
     * document: build, evaluate, then record the code in it. */
    info.exit_code = 0;
    doc = stress_report_build(ctx->rec, &info);
    passed = stress_thresholds_apply(&ctx->plan, doc);
    /* Exit 5 follows the report's own comparison (finished, completed,
     * discarded and cancelled by events vs river_job). */
    if (ctx->ctl != NULL) {
        ctx->disagree = json_is_false(
            json_object_get(json_object_get(doc, "monitors"), "agree"));
    }
    code = exit_code(ctx, passed);
    json_object_set_new(json_object_get(doc, "run"), "exit_code",
                        json_integer(code));

    {
        char *text = json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
        if (text != NULL) {
            trib_buf_puts(&b, text);
            trib_buf_putc(&b, '\n');
            free(text);
        }
    }
    if (write_file(ctx->out_dir, "report.json", &b) == 0) {
        wrote = 1;
    }
    if (json_out) {
        fwrite(b.data, 1, b.len, stdout);
    }
    trib_buf_reset(&b);
    report_html(&b, doc);
    if (write_file(ctx->out_dir, "report.html", &b) != 0) {
        wrote = 0;
    }
    if (!ctx->quiet && !json_out) {
        trib_buf_reset(&b);
        report_text(&b, doc, ctx->color);
        fwrite(b.data, 1, b.len, stdout);
    }
    if (!ctx->quiet && wrote) {
        printf("\nreport: %s/report.html  (data: %s/report.json; "
               "'tributary report %s' renders it again)\n",
               ctx->out_dir, ctx->out_dir, ctx->out_dir);
    }
    fflush(stdout);
    if (!wrote) {
        code = STRESS_EXIT_ERROR; /* the report is the run's product */
    }
    json_decref(doc);
    json_decref(resources);
    json_decref(modes);
    trib_buf_fini(&b);
    return code;
}

int trib_cli_stress(int argc, char **argv)
{
    struct stress_ctx *ctx = TRIB_NEW(struct stress_ctx);
    struct stress_ins_opts io;
    struct sigaction sa;
    char err[512];
    int rv, json_out = 0;

    stress_plan_init(&ctx->plan);
    ctx->tty = isatty(STDERR_FILENO);
    ctx->color = isatty(STDOUT_FILENO) &&
                 (getenv("NO_COLOR") == NULL || *getenv("NO_COLOR") == '\0');
    rv = parse_args(ctx, argc, argv, &json_out);
    if (rv != 0) {
        rv = rv < 0 ? TRIB_EXIT_OK : rv;
        goto out;
    }
    rv = STRESS_EXIT_ERROR;
    make_run_id(ctx);
    if (ctx->plan.out_dir != NULL) {
        ctx->out_dir = trib_strdup(ctx->plan.out_dir);
    } else {
        char d[64];
        snprintf(d, sizeof(d), "stress-%s", ctx->run_id);
        ctx->out_dir = trib_strdup(d);
    }
    /* The directory last: a run refused for its database or coordinator
     * leaves nothing behind. */
    if (open_db(ctx) != 0 || open_control(ctx) != 0 ||
        make_dir(ctx->out_dir) != 0) {
        goto out;
    }
    ctx->rec = stress_rec_new();
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    memset(&io, 0, sizeof(io));
    io.plan = &ctx->plan;
    io.conninfo = ctx->conninfo;
    io.table = ctx->table;
    io.notify_channel = ctx->channel;
    io.run_id = ctx->run_id;
    io.run_tag = ctx->run_tag;
    if (!ctx->quiet) {
        char n[32];
        trib_fmt_count(n, sizeof(n), stress_plan_jobs(&ctx->plan));
        fprintf(stderr,
                STRESS_PROG ": run %s: %s jobs of %s in %d stage%s, "
                            "report in %s/\n",
                ctx->run_id, n, ctx->plan.kind, ctx->plan.nstages,
                ctx->plan.nstages == 1 ? "" : "s", ctx->out_dir);
    }
    ctx->started_us = trib_now_us();
    if (stress_res_open(ctx->db, ctx->ctl, ctx->started_us, &ctx->res) == 0) {
        stress_res_schema(ctx->res, ctx->schema);
    }
    if (stress_ins_start(&io, &ctx->ins, err, sizeof(err)) != 0) {
        fprintf(stderr, STRESS_PROG ": %s\n", err);
        rmdir(ctx->out_dir); /* nothing was written: leave nothing behind */
        goto out;
    }
    stress_run(ctx);
    if (ctx->prog.stages[0].started_us != 0) {
        ctx->started_us = ctx->prog.stages[0].started_us;
    }
    if (ctx->error[0] != '\0' && strcmp(ctx->outcome, "error") == 0) {
        fprintf(stderr, STRESS_PROG ": %s\n", ctx->error);
    }
    rv = finish(ctx, json_out);
out:
    stress_ins_free(ctx->ins);
    stress_res_free(ctx->res);
    stress_rec_free(ctx->rec);
    trib_ctl_close(ctx->ctl);
    if (ctx->db != NULL) {
        PQfinish(ctx->db);
    }
    stress_plan_fini(&ctx->plan);
    trib_free(ctx->out_dir);
    trib_free(ctx->schema);
    trib_free(ctx->table);
    trib_free(ctx->channel);
    trib_free(ctx->control_url);
    trib_free(ctx);
    return rv;
}
