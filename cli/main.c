/*
 * main.c -- the `tributary` command-line tool: picks a subcommand from the
 * table below and hands it the rest of the arguments. Everything else lives
 * in the static libraries (trib_cli, trib_sql, trib_common).
 *
 * Adding a subcommand is one line in 'commands' (see cli/cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "control_client.h"

struct command {
    const char *name;
    const char *summary; /* one line for `tributary --help` */
    int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"migrate", "create or upgrade River's schema in PostgreSQL",
     trib_cli_migrate},
    {"insert", "batch-insert River jobs (COPY + river_insert notify)",
     trib_cli_insert},
    {"status", "the cluster: nodes, counts, rates, latencies, DB view",
     trib_cli_status},
    {"wait", "wait until N jobs have finished cluster-wide (or time out)",
     trib_cli_wait},
    {"watch", "a live, refreshing view of the cluster", trib_cli_watch},
    {"events", "NDJSON of every event from every client (cluster-wide)",
     trib_cli_events},
    {"nodes", "agents with liveness, resources and clients", trib_cli_nodes},
    {"failures", "failed attempts grouped by kind and error text",
     trib_cli_failures},
    {"up", "run a local cluster: PostgreSQL, coordinator, N agents",
     trib_cli_up},
    {"down", "stop a cluster started with 'tributary up --detach'",
     trib_cli_down},
    {"stress", "a load test: insert delayed jobs, follow them, report",
     trib_cli_stress},
    {"report", "render a saved stress run again, or compare two runs",
     trib_cli_report},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    size_t i;

    fprintf(out, "usage: tributary <command> [options]\n"
                 "       tributary <command> --help\n"
                 "       tributary help <command>\n"
                 "       tributary --version\n"
                 "\n"
                 "Tributary: a River-compatible job-queue toolkit "
                 "(River v0.51.2 schema).\n"
                 "\n"
                 "Commands:\n");
    for (i = 0; i < NCOMMANDS; i++) {
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\n%s\n%s\n%s\n%s", trib_cli_db_help, trib_ctl_address_help,
            trib_ctl_tls_help, trib_cli_exit_help);
    fprintf(out, "  'tributary wait' has its own: 0 done, 1 error, 2 timeout, "
                 "3 failure threshold\n  exceeded, 64 usage error.\n"
                 "\nDocumentation: docs/CLI.md, docs/AGENT.md, "
                 "docs/CONTROL.md.\n");
}

static const struct command *find(const char *name)
{
    size_t i;

    for (i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static int unknown(const char *name)
{
    fprintf(stderr,
            "tributary: unknown command '%s' (see 'tributary --help')\n", name);
    return TRIB_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    static char help_flag[] = "--help";
    const struct command *cmd;
    char *help_argv[3];

    if (argc < 2) {
        usage(stderr);
        return TRIB_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        (strcmp(argv[1], "help") == 0 && argc == 2)) {
        usage(stdout);
        return TRIB_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("tributary %s (River schema v0.51.2, libpq %d)\n", TRIB_VERSION,
               PQlibVersion());
        return TRIB_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        cmd = find(argv[2]);
        if (cmd == NULL) {
            return unknown(argv[2]);
        }
        help_argv[0] = argv[2];
        help_argv[1] = help_flag;
        help_argv[2] = NULL;
        return cmd->run(2, help_argv);
    }
    if (argv[1][0] == '-') {
        fprintf(stderr,
                "tributary: unknown option '%s' (see 'tributary --help')\n",
                argv[1]);
        return TRIB_EXIT_USAGE;
    }
    cmd = find(argv[1]);
    if (cmd == NULL) {
        return unknown(argv[1]);
    }
    /* --tls-* belong to the control connection of every subcommand
     * (control_client.h); the subcommands never see them. */
    argc = trib_ctl_take_tls_flags(argc, argv, "tributary");
    if (argc < 0) {
        return TRIB_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
