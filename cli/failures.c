/*
 * failures.c -- `tributary failures`: the coordinator's failure groups
 * (docs/CONTROL.md) as a table, or as JSON exactly as sent.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_client.h"
#include "render.h"

static void failures_help(FILE *f)
{
    fprintf(f,
            "usage: tributary failures [--queue Q] [--kind K] [--node N] "
            "[--limit N] [--json]\n"
            "                          [--control URL]\n"
            "\n"
            "Lists failed attempts grouped by (job kind, normalised error "
            "text): digit runs\n"
            "become N, hexadecimal/UUID-like tokens X. Each group shows "
            "how many attempts\n"
            "failed, how many of those jobs were discarded, its queues, "
            "when it was first\n"
            "and last seen, and a few sample job ids; most frequent "
            "first.\n"
            "\n"
            "Options:\n"
            "  --queue Q      only failures in queue Q\n"
            "  --kind K       only failures of job kind K\n"
            "  --node N       only failures reported by node N\n"
            "  --limit N      at most N groups (1..100000; the coordinator's "
            "default: 50)\n"
            "  --json         print the failures document exactly as the "
            "coordinator returns it\n"
            "                 (schema tributary.failures/1, "
            "docs/CONTROL.md)\n"
            "  --control URL  the coordinator's control address (see "
            "below)\n"
            "  -h, --help     show this help\n"
            "\n%s\n%s"
            "\nExamples:\n"
            "  tributary failures\n"
            "  tributary failures --kind charge --limit 5\n",
            trib_ctl_address_help, trib_ctl_exit_help);
}

static int usage_error(const char *prog, const char *msg, const char *arg)
{
    fprintf(stderr, "%s: %s%s%s (see '%s --help')\n", prog, msg, arg ? " " : "",
            arg ? arg : "", prog);
    return TRIB_EXIT_USAGE;
}

int trib_cli_failures(int argc, char **argv)
{
    static const char prog[] = "tributary failures";
    static const struct option longopts[] = {
        {"queue", required_argument, NULL, 'q'},
        {"kind", required_argument, NULL, 'k'},
        {"node", required_argument, NULL, 'n'},
        {"limit", required_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"control", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct trib_ctl_filter f = {NULL, NULL, NULL, NULL};
    struct trib_ctl_arg args[5];
    const char *control = NULL;
    long long limit = -1;
    char *end;
    int c, json = 0, nargs;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
        case 'k':
        case 'n':
            if (optarg[0] == '\0') {
                return usage_error(prog, "empty value for",
                                   c == 'q'   ? "--queue"
                                   : c == 'k' ? "--kind"
                                              : "--node");
            }
            *(c == 'q' ? &f.queue : c == 'k' ? &f.kind : &f.node) = optarg;
            break;
        case 'l':
            errno = 0;
            limit = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || limit < 1 ||
                limit > 100000) {
                return usage_error(prog, "--limit: expected 1..100000, got",
                                   optarg);
            }
            break;
        case 'j':
            json = 1;
            break;
        case 'c':
            control = optarg;
            break;
        case 'h':
            failures_help(stdout);
            return TRIB_EXIT_OK;
        case ':':
            return usage_error(prog, "option needs a value:", argv[optind - 1]);
        default:
            return usage_error(prog, "unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return usage_error(prog, "unexpected argument", argv[optind]);
    }
    nargs = trib_ctl_filter_args(&f, args, 0);
    if (limit > 0) {
        args[nargs].key = "limit";
        args[nargs].str = NULL;
        args[nargs].num = limit;
        nargs++;
    }
    return trib_ctl_print_query(prog, control, "failures", args, nargs, json,
                                trib_render_failures);
}
