/*
 * nodes.c -- `tributary nodes`: the coordinator's nodes document
 * (docs/CONTROL.md) as tables, or as JSON exactly as sent.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "control_client.h"
#include "render.h"

static void nodes_help(FILE *f)
{
    fprintf(f,
            "usage: tributary nodes [--json] [--control URL]\n"
            "\n"
            "Lists every agent (node) the coordinator knows: host, "
            "version, pid, liveness\n"
            "(alive = heartbeat within 3 periods, late = 3-10 missed, "
            "missing = more,\n"
            "stopped = said goodbye), the age of its last heartbeat, its "
            "resource sample\n"
            "(CPU seconds user+sys, RSS, threads, outbox depth, database "
            "connections),\n"
            "and its clients: mode, queues, in-flight jobs, whether "
            "fetching is paused\n"
            "(outbox full), and their finished-job counts.\n"
            "\n"
            "Options:\n"
            "  --json         print the nodes document exactly as the "
            "coordinator returns it\n"
            "                 (schema tributary.nodes/1, docs/CONTROL.md)\n"
            "  --control URL  the coordinator's control address (see "
            "below)\n"
            "  -h, --help     show this help\n"
            "\n%s\n%s"
            "\nExamples:\n"
            "  tributary nodes\n"
            "  tributary nodes --json | jq -r '.nodes[] | "
            "select(.liveness != \"alive\") | .node'\n",
            trib_ctl_address_help, trib_ctl_exit_help);
}

static int usage_error(const char *prog, const char *msg, const char *arg)
{
    fprintf(stderr, "%s: %s%s%s (see '%s --help')\n", prog, msg, arg ? " " : "",
            arg ? arg : "", prog);
    return TRIB_EXIT_USAGE;
}

int trib_cli_nodes(int argc, char **argv)
{
    static const char prog[] = "tributary nodes";
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"control", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *control = NULL;
    int c, json = 0;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'c':
            control = optarg;
            break;
        case 'h':
            nodes_help(stdout);
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
    return trib_ctl_print_query(prog, control, "nodes", NULL, 0, json,
                                trib_render_nodes);
}
