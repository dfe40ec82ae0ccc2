/*
 * watch.c -- `tributary watch`: a live view of the cluster, refreshed every
 * --interval from the coordinator's status document. On a terminal it
 * redraws a screenful (summary, top queues, nodes, failures); otherwise it
 * prints one compact line per interval, for logs. Ctrl-C ends it (exit 0).
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "render.h"
#include "trib_buf.h"
#include "trib_time.h"

#define PROG "tributary watch"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void help(FILE *f)
{
    fprintf(f,
            "usage: tributary watch [--interval D] [--queue Q] [--kind K] "
            "[--node N]\n"
            "                       [--control URL]\n"
            "\n"
            "A live view of the cluster, refreshed every interval: "
            "finished jobs, rates,\n"
            "p95 latencies, database agreement, the busiest queues, "
            "nodes with liveness,\n"
            "and the top failures. On a terminal the screen is redrawn in "
            "place; when\n"
            "stdout is not a terminal, one compact line is printed per "
            "interval instead.\n"
            "Ctrl-C (or SIGTERM) ends it with exit status 0. When the "
            "coordinator stops\n"
            "answering, the view says so and keeps trying.\n"
            "\n"
            "Options:\n"
            "  --interval D   refresh period, 100ms..1h (e.g. 500ms, 2s) "
            "[1s]\n"
            "  --queue Q      only jobs of queue Q\n"
            "  --kind K       only jobs of kind K\n"
            "  --node N       only events from node N\n"
            "  --control URL  the coordinator's control address (see "
            "below)\n"
            "  -h, --help     show this help\n"
            "\n%s\n%s"
            "\nExamples:\n"
            "  tributary watch\n"
            "  tributary watch --interval 5s --queue emails\n"
            "  tributary watch --interval 10s >> cluster.log   # one line "
            "per 10 s\n",
            trib_ctl_address_help, trib_ctl_exit_help);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, PROG ": %s%s%s (see 'tributary watch --help')\n", msg,
            arg ? " " : "", arg ? arg : "");
    return TRIB_EXIT_USAGE;
}

/* Sleeps until 'until' (monotonic us) or a signal. */
static void sleep_until(uint64_t until)
{
    struct timespec ts;
    uint64_t now;

    while (!stop && (now = trib_mono_us()) < until) {
        ts.tv_sec = (time_t)((until - now) / 1000000);
        ts.tv_nsec = (long)((until - now) % 1000000) * 1000;
        if (nanosleep(&ts, NULL) != 0 && errno != EINTR) {
            break;
        }
    }
}

static void screen_size(int *rows, int *cols)
{
    struct winsize ws;

    *rows = 24;
    *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
        ws.ws_col > 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* Home, every line followed by "erase to end of line", then erase below:
 * no flicker of a full clear. */
static void draw(struct trib_buf *out, const char *frame)
{
    const char *p = frame, *eol;

    trib_buf_puts(out, "\033[H");
    while (*p) {
        eol = strchr(p, '\n');
        if (eol == NULL) {
            eol = p + strlen(p);
        }
        trib_buf_append(out, p, (size_t)(eol - p));
        trib_buf_puts(out, "\033[K");
        if (*eol) {
            trib_buf_putc(out, '\n');
        }
        p = *eol ? eol + 1 : eol;
    }
    trib_buf_puts(out, "\033[J");
}

int trib_cli_watch(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, 'i'},
        {"queue", required_argument, NULL, 'q'},
        {"kind", required_argument, NULL, 'k'},
        {"node", required_argument, NULL, 'n'},
        {"control", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct trib_ctl_filter f = {NULL, NULL, NULL, NULL};
    struct trib_ctl_arg args[4];
    struct trib_ctl_err e;
    struct trib_ctl *ctl;
    struct trib_buf out = TRIB_BUF_INIT, frame = TRIB_BUF_INIT;
    struct sigaction sa;
    const char *control = NULL;
    int64_t interval = TRIB_US_PER_S;
    uint64_t next;
    json_t *doc;
    char iv[32];
    int c, nargs, tty, rows, cols, ok_once = 0, rv = TRIB_EXIT_OK;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (trib_duration_parse(optarg, 0, &interval) != 0 ||
                interval < 100 * TRIB_US_PER_MS ||
                interval > 3600 * TRIB_US_PER_S) {
                return usage_error("--interval: expected a duration "
                                   "100ms..1h (e.g. 2s), got",
                                   optarg);
            }
            break;
        case 'q':
        case 'k':
        case 'n':
            if (optarg[0] == '\0') {
                return usage_error("empty value for", c == 'q'   ? "--queue"
                                                      : c == 'k' ? "--kind"
                                                                 : "--node");
            }
            *(c == 'q' ? &f.queue : c == 'k' ? &f.kind : &f.node) = optarg;
            break;
        case 'c':
            control = optarg;
            break;
        case 'h':
            help(stdout);
            return TRIB_EXIT_OK;
        case ':':
            return usage_error("option needs a value:", argv[optind - 1]);
        default:
            return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return usage_error("unexpected argument", argv[optind]);
    }
    nargs = trib_ctl_filter_args(&f, args, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: wake the sleep */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    ctl = trib_ctl_open_cli(PROG, control);
    if (ctl == NULL) {
        return TRIB_EXIT_ERROR;
    }
    tty = isatty(STDOUT_FILENO);
    trib_duration_format(interval, iv, sizeof(iv));
    next = trib_mono_us();
    while (!stop) {
        next += (uint64_t)interval;
        doc = NULL;
        if (trib_ctl_query(ctl, "status", args, nargs, 0, NULL, &doc, &e) !=
            0) {
            if (!ok_once || e.remote) {
                trib_ctl_print_err(PROG, &e);
                rv = TRIB_EXIT_ERROR;
                break;
            }
        }
        if (stop) {
            json_decref(doc);
            break;
        }
        trib_buf_reset(&out);
        trib_buf_reset(&frame);
        if (tty) {
            screen_size(&rows, &cols);
            trib_buf_printf(&frame,
                            "tributary watch · %s · every %s · Ctrl-C to "
                            "quit\n",
                            trib_ctl_url(ctl), iv);
            if (doc != NULL) {
                trib_render_watch(&frame, doc, rows - 2, cols);
            } else {
                trib_buf_printf(&frame, "\n%s\n(retrying every %s)\n", e.text,
                                iv);
            }
            draw(&out, frame.data);
        } else if (doc != NULL) {
            trib_render_status_line(&out, doc);
            trib_buf_putc(&out, '\n');
        } else {
            trib_buf_printf(&out, "%s (retrying)\n", e.text);
        }
        ok_once |= doc != NULL;
        json_decref(doc);
        c = trib_ctl_write_out(PROG, out.data, out.len);
        if (c != 0) {
            rv = c > 0 ? TRIB_EXIT_OK : TRIB_EXIT_ERROR; /* EPIPE: fine */
            break;
        }
        if (trib_mono_us() > next) {
            next = trib_mono_us(); /* a slow answer: do not catch up */
        }
        sleep_until(next);
    }
    if (tty && rv == TRIB_EXIT_OK) {
        fputs("\n", stdout);
    }
    trib_buf_fini(&out);
    trib_buf_fini(&frame);
    trib_ctl_close(ctl);
    return rv;
}
