/*
 * wait.c -- `tributary wait --count N`: returns the moment N jobs have
 * finished cluster-wide (completed, discarded or cancelled), according to
 * the coordinator's exact event view.
 *
 * The loop sends `wait` queries with wait_ms (at most 1 s, less near the
 * deadline): the coordinator holds each one and answers the moment the
 * condition holds, so we return within milliseconds of the last job. At
 * the deadline we ask for a `status` with the same filters and say what
 * is missing, and where.
 *
 * Exit codes (issue 3's contract, distinct from the other subcommands):
 * 0 done, 1 error, 2 timeout, 3 failure threshold exceeded, 64 bad flags.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "render.h"
#include "trib_buf.h"
#include "trib_mem.h"
#include "trib_time.h"

#define PROG        "tributary wait"
#define HOLD_MAX_MS 1000
#define PLAIN_EVERY (10 * TRIB_US_PER_S) /* progress lines when not a tty */
#define NSAMPLES    16

struct opts {
    long long count;
    struct trib_ctl_filter f;
    int64_t timeout_us;
    long long max_failures; /* -1: no limit */
    const char *control;
    int json, quiet;
};

static void help(FILE *f)
{
    fprintf(f,
            "usage: tributary wait --count N [--queue Q] [--kind K] "
            "[--node N] [--tag T]\n"
            "                      [--timeout D] [--max-failures F] "
            "[--json] [--quiet]\n"
            "                      [--control URL]\n"
            "\n"
            "Waits until N jobs have finished cluster-wide (completed, "
            "discarded or\n"
            "cancelled: a final state), as counted by the coordinator from "
            "every agent's\n"
            "events, and returns the moment they have. Jobs finished before "
            "the command\n"
            "started count too: N is a total since the coordinator began "
            "counting.\n"
            "\n"
            "At the timeout it says what is missing and where: finished / "
            "required, the\n"
            "event counts per queue, the jobs the database still holds as "
            "available,\n"
            "scheduled, retryable, running or pending per queue, and the "
            "nodes that are\n"
            "late or missing.\n"
            "\n"
            "Options:\n"
            "  --count N          jobs to wait for (1..10^15; required)\n"
            "  --queue Q          count only jobs of queue Q\n"
            "  --kind K           count only jobs of kind K\n"
            "  --node N           count only jobs finished on node N\n"
            "  --tag T            count only jobs tagged T\n"
            "  --timeout D        give up after D (e.g. 90s, 10m, 1.5h; "
            "units us, ms, s, m, h)\n"
            "                     [10m]\n"
            "  --max-failures F   fail fast once more than F jobs failed "
            "(discarded or\n"
            "                     cancelled) [no limit]\n"
            "  --json             print the coordinator's final wait "
            "document (schema\n"
            "                     tributary.wait/1) exactly as returned\n"
            "  --quiet            no progress lines and no success line "
            "(reports on timeout\n"
            "                     and failure still go to stderr)\n"
            "  --control URL      the coordinator's control address (see "
            "below)\n"
            "  -h, --help         show this help\n"
            "\n"
            "Progress goes to stderr: one updating line on a terminal "
            "(finished/required,\n"
            "rate, ETA), else a plain line every 10 s.\n"
            "\n%s"
            "\nExit status (wait has its own):\n"
            "  0   done: N jobs finished\n"
            "  1   error: the coordinator cannot be reached, stopped "
            "answering, or refused\n"
            "      the query\n"
            "  2   timeout: fewer than N jobs finished within --timeout "
            "(the report says\n"
            "      what is missing and where)\n"
            "  3   failure threshold exceeded: more than --max-failures "
            "jobs failed\n"
            "  64  usage error (unknown option, bad or missing value)\n"
            "\nExamples:\n"
            "  tributary insert --count 10000 && tributary wait --count "
            "10000 --timeout 2m\n"
            "  tributary wait --count 500 --queue emails --max-failures 0 "
            "--json\n"
            "  TRIBUTARY_CONTROL=tcp://10.0.0.5:7101 tributary wait "
            "--count 1000 --quiet\n",
            trib_ctl_address_help);
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
    fprintf(stderr, " (see 'tributary wait --help')\n");
    return TRIB_EXIT_WAIT_USAGE;
}

static int parse_count(const char *s, long long min, long long max,
                       long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns -1 when parsed (run), else the exit code. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"count", required_argument, NULL, 'n'},
        {"queue", required_argument, NULL, 'q'},
        {"kind", required_argument, NULL, 'k'},
        {"node", required_argument, NULL, 'N'},
        {"tag", required_argument, NULL, 't'},
        {"timeout", required_argument, NULL, 'T'},
        {"max-failures", required_argument, NULL, 'F'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'Q'},
        {"control", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->count = -1;
    o->max_failures = -1;
    o->timeout_us = 10 * 60 * TRIB_US_PER_S;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_count(optarg, 1, 1000000000000000LL, &o->count) != 0) {
                return usage_error("--count: expected a whole number "
                                   "1..10^15, got '%s'",
                                   optarg);
            }
            break;
        case 'q':
        case 'k':
        case 'N':
        case 't':
            if (optarg[0] == '\0') {
                return usage_error("empty value for --%s", c == 'q'   ? "queue"
                                                           : c == 'k' ? "kind"
                                                           : c == 'N' ? "node"
                                                                      : "tag");
            }
            *(c == 'q'   ? &o->f.queue
              : c == 'k' ? &o->f.kind
              : c == 'N' ? &o->f.node
                         : &o->f.tag) = optarg;
            break;
        case 'T':
            if (trib_duration_parse(optarg, 0, &o->timeout_us) != 0) {
                return usage_error("--timeout: invalid duration '%s' (a "
                                   "number and a unit: 500ms, 90s, 10m, 2h)",
                                   optarg);
            }
            break;
        case 'F':
            if (parse_count(optarg, 0, 1000000000000000LL, &o->max_failures) !=
                0) {
                return usage_error("--max-failures: expected a whole number "
                                   ">= 0, got '%s'",
                                   optarg);
            }
            break;
        case 'j':
            o->json = 1;
            break;
        case 'Q':
            o->quiet = 1;
            break;
        case 'c':
            o->control = optarg;
            break;
        case 'h':
            help(stdout);
            return TRIB_EXIT_OK;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return usage_error("unexpected argument '%s'", argv[optind]);
    }
    if (o->count < 0) {
        return usage_error("--count N is required");
    }
    return -1;
}

/* ---- progress ----------------------------------------------------------- */

struct progress {
    int tty, quiet, shown;
    uint64_t last_plain;
    uint64_t t[NSAMPLES];
    int64_t f[NSAMPLES];
    int n, head;
};

/* Jobs per second over the last ~10 s of samples (NaN before two). */
static double progress_rate(struct progress *p, uint64_t now, int64_t fin)
{
    int oldest, i;

    p->t[p->head] = now;
    p->f[p->head] = fin;
    p->head = (p->head + 1) % NSAMPLES;
    if (p->n < NSAMPLES) {
        p->n++;
    }
    oldest = (p->head - p->n + NSAMPLES) % NSAMPLES;
    /* the oldest sample at most ~10 s old */
    for (i = 0; i < p->n - 1; i++) {
        int k = (oldest + i) % NSAMPLES;
        if (now - p->t[k] <= 10 * TRIB_US_PER_S) {
            oldest = k;
            break;
        }
    }
    if (p->n < 2 || now <= p->t[oldest]) {
        return -1;
    }
    return (double)(fin - p->f[oldest]) * 1e6 / (double)(now - p->t[oldest]);
}

static void progress(struct progress *p, const struct opts *o,
                     const json_t *doc, uint64_t now, uint64_t deadline)
{
    int64_t fin = trib_j_int(doc, "finished", NULL);
    int64_t failed = trib_j_int(doc, "failed", NULL);
    double r = progress_rate(p, now, fin);
    char fs[48], cs[48], rs[48], eta[48], fl[48], left[48];

    if (o->quiet || (!p->tty && now - p->last_plain < PLAIN_EVERY)) {
        return;
    }
    p->last_plain = now;
    trib_fmt_count(fs, sizeof(fs), fin);
    trib_fmt_count(cs, sizeof(cs), o->count);
    trib_fmt_count(fl, sizeof(fl), failed);
    if (r > 0) {
        trib_fmt_rate(rs, sizeof(rs), r);
        trib_fmt_ms(eta, sizeof(eta), (double)(o->count - fin) / r * 1000.0);
    } else {
        snprintf(rs, sizeof(rs), "-/s");
        snprintf(eta, sizeof(eta), "-");
    }
    trib_fmt_ms(left, sizeof(left),
                deadline > now ? (double)(deadline - now) / 1000.0 : 0);
    fprintf(stderr,
            "%swaiting: %s / %s finished (%.1f%%) · %s · ETA %s · %s "
            "failed · timeout in %s%s",
            p->tty ? "\r\033[K" : "", fs, cs,
            o->count ? 100.0 * (double)fin / (double)o->count : 100.0, rs, eta,
            fl, left, p->tty ? "" : "\n");
    fflush(stderr);
    p->shown = 1;
}

static void progress_end(struct progress *p)
{
    if (p->tty && p->shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
}

/* ---- outcomes ------------------------------------------------------------ */

static void print_json(const char *text)
{
    size_t n = strlen(text);

    trib_ctl_write_out(PROG, text, n);
    if (n == 0 || text[n - 1] != '\n') {
        trib_ctl_write_out(PROG, "\n", 1);
    }
}

static void filter_desc(struct trib_buf *b, const struct trib_ctl_filter *f)
{
    const char *const keys[] = {"queue", "kind", "node", "tag"};
    const char *const vals[] = {f->queue, f->kind, f->node, f->tag};
    int i, n = 0;

    for (i = 0; i < 4; i++) {
        if (vals[i] != NULL) {
            trib_buf_printf(b, "%s%s=%s", n++ ? " " : " [", keys[i], vals[i]);
        }
    }
    if (n > 0) {
        trib_buf_putc(b, ']');
    }
}

static void report_timeout(struct trib_ctl *ctl, const struct opts *o,
                           const json_t *wdoc)
{
    struct trib_ctl_filter sf = o->f;
    struct trib_ctl_arg args[4];
    struct trib_ctl_err e;
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *st = NULL;
    char d[48];
    int nargs;

    sf.tag = NULL; /* status has no tag filter */
    nargs = trib_ctl_filter_args(&sf, args, 0);
    trib_duration_format(o->timeout_us, d, sizeof(d));
    trib_buf_printf(&b, PROG ": timed out after %s", d);
    filter_desc(&b, &o->f);
    trib_buf_puts(&b, "\n");
    if (trib_ctl_query(ctl, "status", args, nargs, 0, NULL, &st, &e) != 0) {
        trib_render_wait_missing(&b, wdoc, NULL);
        trib_buf_printf(&b, "  (no status for the details: %s)\n", e.text);
    } else {
        if (o->f.tag != NULL) {
            trib_buf_printf(&b,
                            "  (the details below count all jobs, not "
                            "only those tagged %s)\n",
                            o->f.tag);
        }
        trib_render_wait_missing(&b, wdoc, st);
    }
    fputs(b.data, stderr);
    json_decref(st);
    trib_buf_fini(&b);
}

static void report_failures(struct trib_ctl *ctl, const struct opts *o,
                            const json_t *wdoc)
{
    struct trib_ctl_filter sf = o->f;
    struct trib_ctl_arg args[5];
    struct trib_ctl_err e;
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *fl = NULL;
    char failed[48], fin[48], cnt[48], mx[48];
    int nargs;

    trib_j_count(failed, sizeof(failed), wdoc, "failed");
    trib_j_count(fin, sizeof(fin), wdoc, "finished");
    trib_fmt_count(cnt, sizeof(cnt), o->count);
    trib_fmt_count(mx, sizeof(mx), o->max_failures);
    trib_buf_printf(&b,
                    PROG
                    ": failure threshold exceeded: %s jobs failed "
                    "(discarded or cancelled) > --max-failures %s; %s of %s "
                    "finished",
                    failed, mx, fin, cnt);
    filter_desc(&b, &o->f);
    trib_buf_puts(&b, "\n");
    sf.tag = NULL;
    nargs = trib_ctl_filter_args(&sf, args, 0);
    args[nargs].key = "limit";
    args[nargs].str = NULL;
    args[nargs].num = 5;
    nargs++;
    if (trib_ctl_query(ctl, "failures", args, nargs, 0, NULL, &fl, &e) == 0) {
        trib_buf_printf(&b, "top failures%s:\n",
                        o->f.tag ? " (of all jobs, not only those tagged)"
                                 : "");
        trib_render_failures(&b, fl);
    }
    fputs(b.data, stderr);
    json_decref(fl);
    trib_buf_fini(&b);
}

/* ---- the loop ------------------------------------------------------------ */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int trib_cli_wait(int argc, char **argv)
{
    struct opts o;
    struct trib_ctl_arg args[8];
    struct trib_ctl_err e;
    struct trib_ctl *ctl;
    struct progress p;
    char *text = NULL;
    json_t *doc = NULL;
    uint64_t start, deadline, now, sent;
    int nargs, rv, ok_once = 0, warned = 0;

    rv = parse_opts(argc, argv, &o);
    if (rv >= 0) {
        return rv;
    }
    signal(SIGPIPE, SIG_IGN);
    ctl = trib_ctl_open_cli(PROG, o.control);
    if (ctl == NULL) {
        return TRIB_EXIT_ERROR;
    }
    memset(&p, 0, sizeof(p));
    p.tty = isatty(STDERR_FILENO);
    p.quiet = o.quiet;
    nargs = trib_ctl_filter_args(&o.f, args, 0);
    args[nargs].key = "count";
    args[nargs].str = NULL;
    args[nargs].num = o.count;
    nargs++;
    if (o.max_failures >= 0) {
        args[nargs].key = "max_failures";
        args[nargs].str = NULL;
        args[nargs].num = o.max_failures;
        nargs++;
    }
    args[nargs].key = "wait_ms";
    args[nargs].str = NULL;
    nargs++;
    start = trib_mono_us();
    deadline = start + (uint64_t)o.timeout_us;
    p.last_plain = start;
    for (;;) {
        int64_t left_ms;

        now = trib_mono_us();
        left_ms = now < deadline ? (int64_t)((deadline - now) / 1000) : 0;
        args[nargs - 1].num = left_ms < HOLD_MAX_MS ? left_ms : HOLD_MAX_MS;
        sent = now;
        trib_free(text);
        text = NULL;
        json_decref(doc);
        doc = NULL;
        if (trib_ctl_query(ctl, "wait", args, nargs, args[nargs - 1].num, &text,
                           &doc, &e) != 0) {
            /* Unreachable at the start, or a refused query: say so now.
             * A coordinator that goes away mid-wait (a restart) gets
             * until the deadline to come back. */
            if (!ok_once || e.remote || trib_mono_us() >= deadline) {
                progress_end(&p);
                trib_ctl_print_err(PROG, &e);
                rv = TRIB_EXIT_ERROR;
                break;
            }
            if (!warned) {
                progress_end(&p);
                fprintf(stderr, PROG ": %s; retrying until the timeout\n",
                        e.text);
                warned = 1;
            }
            sleep_ms(200);
            continue;
        }
        if (warned) {
            fprintf(stderr, PROG ": the coordinator answers again\n");
            warned = 0;
        }
        ok_once = 1;
        now = trib_mono_us();
        /* Over the threshold wins over done: the batch finished, but
         * with more failures than the caller accepts. */
        if (json_is_true(json_object_get(doc, "failures_exceeded"))) {
            progress_end(&p);
            if (o.json) {
                print_json(text);
            }
            report_failures(ctl, &o, doc);
            rv = TRIB_EXIT_WAIT_FAILURES;
            break;
        }
        if (json_is_true(json_object_get(doc, "done"))) {
            progress_end(&p);
            if (o.json) {
                print_json(text);
            } else if (!o.quiet) {
                char fin[48], cnt[48], fl[48], took[48];
                trib_j_count(fin, sizeof(fin), doc, "finished");
                trib_fmt_count(cnt, sizeof(cnt), o.count);
                trib_j_count(fl, sizeof(fl), doc, "failed");
                trib_fmt_ms(took, sizeof(took), (double)(now - start) / 1000.0);
                printf("done: %s jobs finished (needed %s; %s failed) "
                       "after %s\n",
                       fin, cnt, fl, took);
            }
            rv = TRIB_EXIT_OK;
            break;
        }
        if (now >= deadline) {
            progress_end(&p);
            if (o.json) {
                print_json(text);
            }
            report_timeout(ctl, &o, doc);
            rv = TRIB_EXIT_WAIT_TIMEOUT;
            break;
        }
        progress(&p, &o, doc, now, deadline);
        /* A coordinator that answers at once instead of holding the
         * request must not make us spin. */
        if (now - sent < 50 * TRIB_US_PER_MS) {
            sleep_ms(50);
        }
    }
    fflush(stdout);
    trib_free(text);
    json_decref(doc);
    trib_ctl_close(ctl);
    return rv;
}
