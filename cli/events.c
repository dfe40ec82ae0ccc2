/*
 * events.c -- `tributary events`: the cluster-wide event subscription River
 * lacks. NDJSON on stdout, one line per event from every client of every
 * agent (the agent's event JSON plus "node" and "cursor"), long-polling the
 * coordinator's EVENTS ring.
 *
 * A reader that falls behind the ring is told exactly how much it lost:
 * whenever a reply reports missed > 0, the line {"missed": N, "after": C}
 * goes to stdout (in sequence with the events) and a warning to stderr.
 *
 * Output is flushed once per batch; a closed pipe (EPIPE) or Ctrl-C ends
 * the command with status 0.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control_client.h"
#include "render.h"
#include "trib_buf.h"

#define PROG      "tributary events"
#define HOLD_MS   1000 /* long-poll hold per request   */
#define BATCH_MAX 1000 /* events asked for per request */

/* Set by SIGINT/SIGTERM. While we block in a long poll nothing is
 * buffered (output is flushed per batch), so the handler may end the
 * process at once instead of waiting out the hold. */
static volatile sig_atomic_t stop;
static volatile sig_atomic_t idle;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
    if (idle) {
        _exit(TRIB_EXIT_OK);
    }
}

static void help(FILE *f)
{
    fprintf(f,
            "usage: tributary events [--kind K1,K2,...] [--from-start] "
            "[--max N]\n"
            "                        [--follow | --no-follow] [--control "
            "URL]\n"
            "\n"
            "Prints every job and queue event from every client of every "
            "agent, as the\n"
            "coordinator applies them: one JSON object per line (NDJSON) "
            "with the fields\n"
            "of the agent's --events-out lines (event, client_id, job_id, "
            "attempt,\n"
            "max_attempts, queue, kind, state, priority, tags, created_at, "
            "scheduled_at,\n"
            "attempted_at, finalized_at, next_scheduled_at, queue_wait_ms, "
            "run_ms,\n"
            "complete_ms, error, at) plus \"node\" (the agent) and "
            "\"cursor\" (the\n"
            "coordinator's sequence number of the event).\n"
            "\n"
            "Nothing is lost silently: the coordinator keeps the latest "
            "events in a ring\n"
            "(tributary-coordinator --events-ring); when this reader falls "
            "behind it, the\n"
            "line {\"missed\": N, \"after\": CURSOR} says how many events "
            "after CURSOR it\n"
            "missed (also warned on stderr).\n"
            "\n"
            "Options:\n"
            "  --kind LIST    only these kinds, comma-separated: "
            "job_completed, job_failed,\n"
            "                 job_cancelled, job_snoozed, job_interrupted, "
            "queue_paused,\n"
            "                 queue_resumed [all]\n"
            "  --from-start   begin with the oldest event still in the "
            "ring (default: only\n"
            "                 events applied from now on)\n"
            "  --max N        stop after N events (1..10^15)\n"
            "  --follow       keep waiting for new events (the default)\n"
            "  --no-follow    print what is there now and exit\n"
            "  --control URL  the coordinator's control address (see "
            "below)\n"
            "  -h, --help     show this help\n"
            "\n"
            "Output is flushed after each batch; when the reader closes the "
            "pipe or on\n"
            "Ctrl-C the command ends with status 0.\n"
            "\n%s\n%s"
            "\nExamples:\n"
            "  tributary events\n"
            "  tributary events --kind job_failed | jq -r .error\n"
            "  tributary events --from-start --no-follow > events.ndjson\n",
            trib_ctl_address_help, trib_ctl_exit_help);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, PROG ": %s%s%s (see 'tributary events --help')\n", msg,
            arg ? " " : "", arg ? arg : "");
    return TRIB_EXIT_USAGE;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL); /* a signal may cut it short: fine */
}

int trib_cli_events(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"kind", required_argument, NULL, 'k'},
        {"from-start", no_argument, NULL, 's'},
        {"max", required_argument, NULL, 'm'},
        {"follow", no_argument, NULL, 'f'},
        {"no-follow", no_argument, NULL, 'F'},
        {"control", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct trib_ctl_batch b;
    struct trib_ctl_err e;
    struct trib_ctl *ctl;
    struct trib_buf out = TRIB_BUF_INIT;
    struct sigaction sa;
    const char *control = NULL;
    uint64_t after = UINT64_MAX, prev;
    uint32_t kinds = 0, i, ask;
    long long max = -1, printed = 0;
    int c, follow = 1, ok_once = 0, warned = 0, rv = TRIB_EXIT_OK;
    char *end, bad[64];

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (trib_event_kinds_parse(optarg, &kinds, bad, sizeof(bad)) != 0) {
                return usage_error("--kind: unknown event kind (want "
                                   "job_completed, job_failed, "
                                   "job_cancelled, job_snoozed, "
                                   "job_interrupted, queue_paused, "
                                   "queue_resumed):",
                                   bad);
            }
            break;
        case 's':
            after = 0;
            break;
        case 'm':
            errno = 0;
            max = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || max < 1 ||
                max > 1000000000000000LL) {
                return usage_error("--max: expected 1..10^15, got", optarg);
            }
            break;
        case 'f':
            follow = 1;
            break;
        case 'F':
            follow = 0;
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
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ctl = trib_ctl_open_cli(PROG, control);
    if (ctl == NULL) {
        return TRIB_EXIT_ERROR;
    }
    trib_ctl_batch_init(&b);
    while (!stop) {
        ask = BATCH_MAX;
        if (max > 0 && max - printed < BATCH_MAX) {
            ask = (uint32_t)(max - printed);
        }
        idle = 1;
        if (stop) {
            break;
        }
        c = trib_ctl_events(ctl, after, ask, kinds, follow ? HOLD_MS : 0, &b,
                            &e);
        idle = 0;
        if (c != 0) {
            /* A coordinator that goes away mid-stream (a restart) is
             * waited for; unreachable at the start, or a refusal, ends. */
            if (!ok_once || e.remote || !follow) {
                trib_ctl_print_err(PROG, &e);
                rv = TRIB_EXIT_ERROR;
                break;
            }
            if (!warned) {
                fprintf(stderr, PROG ": %s; retrying\n", e.text);
                warned = 1;
            }
            idle = 1;
            sleep_ms(500);
            idle = 0;
            continue;
        }
        if (warned) {
            fprintf(stderr, PROG ": the coordinator answers again\n");
            warned = 0;
        }
        ok_once = 1;
        trib_buf_reset(&out);
        if (b.missed > 0) {
            trib_render_missed_json(&out, b.missed, after);
            trib_buf_putc(&out, '\n');
            fprintf(stderr,
                    PROG ": warning: missed %llu event(s) after cursor %llu: "
                         "they left the coordinator's ring before this reader "
                         "got them\n",
                    (unsigned long long)b.missed, (unsigned long long)after);
        }
        for (i = 0; i < b.n && (max < 0 || printed < max); i++) {
            trib_render_event_json(&out, b.items[i].cursor, b.items[i].node,
                                   &b.items[i].ev);
            trib_buf_putc(&out, '\n');
            printed++;
        }
        c = trib_ctl_write_out(PROG, out.data, out.len);
        if (c != 0) {
            /* EPIPE: the reader is gone, not an error. */
            rv = c > 0 ? TRIB_EXIT_OK : TRIB_EXIT_ERROR;
            break;
        }
        prev = after;
        after = b.next;
        if (max > 0 && printed >= max) {
            break;
        }
        /* --no-follow: done when a reply brings nothing and the cursor
         * stands still (a --kind filter may skip a whole window). */
        if (!follow && b.n == 0 && (b.next == prev || prev == UINT64_MAX)) {
            break;
        }
    }
    trib_ctl_batch_fini(&b);
    trib_buf_fini(&out);
    trib_ctl_close(ctl);
    return rv;
}
