/*
 * status.c -- `tributary status`: the coordinator's status document
 * (docs/CONTROL.md) as a human view, or as JSON exactly as sent.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "control_client.h"
#include "render.h"

#define PROG "tributary status"

static void help(FILE *f)
{
    fprintf(f,
            "usage: tributary status [--queue Q] [--kind K] [--node N] "
            "[--json] [--control URL]\n"
            "\n"
            "Shows what the whole cluster has done, from the coordinator's "
            "exact event view:\n"
            "  - the coordinator (uptime, events applied, persistence);\n"
            "  - nodes with their liveness and clients (mode, queues, "
            "in-flight jobs,\n"
            "    whether fetching is paused because the outbox is full);\n"
            "  - totals: finished = completed + discarded + cancelled, "
            "rates over 1 s /\n"
            "    10 s / 1 min, p50/p95/p99 of end-to-end, pickup, run "
            "(and queue wait,\n"
            "    complete) latencies;\n"
            "  - per-queue and per-mode (notify / poll) tables, the top "
            "failures;\n"
            "  - the database's view (river_job, polled by the "
            "coordinator) beside the\n"
            "    event view, with the differences explained.\n"
            "\n"
            "Options:\n"
            "  --queue Q      only jobs of queue Q\n"
            "  --kind K       only jobs of kind K\n"
            "  --node N       only events from node (agent) N\n"
            "  --json         print the status document exactly as the "
            "coordinator returns it\n"
            "                 (schema tributary.status/1, "
            "docs/CONTROL.md)\n"
            "  --control URL  the coordinator's control address (see "
            "below)\n"
            "  -h, --help     show this help\n"
            "\n"
            "Durations print with their unit (ms, s), counts with "
            "thousands separators.\n"
            "\n%s\n%s"
            "\nExamples:\n"
            "  tributary status\n"
            "  tributary status --queue default --json | jq .totals\n"
            "  TRIBUTARY_CONTROL=tcp://10.0.0.5:7101 tributary status "
            "--node node-2\n",
            trib_ctl_address_help, trib_ctl_exit_help);
}

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, PROG ": %s%s%s (see 'tributary status --help')\n", msg,
            arg ? " " : "", arg ? arg : "");
    return TRIB_EXIT_USAGE;
}

int trib_cli_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"queue", required_argument, NULL, 'q'},
        {"kind", required_argument, NULL, 'k'},
        {"node", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"control", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct trib_ctl_filter f = {NULL, NULL, NULL, NULL};
    struct trib_ctl_arg args[4];
    const char *control = NULL;
    int c, nargs, json = 0;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
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
        case 'j':
            json = 1;
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
    return trib_ctl_print_query(PROG, control, "status", args, nargs, json,
                                trib_render_status);
}
