/*
 * up_state.c -- what `tributary up` records in DIR/up.state, and stopping
 * a cluster in order (agents, coordinator, PostgreSQL): used by `up` when
 * it ends and by `tributary down` for a detached cluster.
 */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trib_mem.h"
#include "up.h"

/* DIR/up.state: what `tributary down` needs. Rewritten after each start. */
void up_state_write(const struct up_cluster *cl)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    FILE *f;
    int i;

    up_path(path, sizeof(path), "%s/up.state", cl->dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        return;
    }
    fprintf(f, "# tributary up: processes of this cluster (for tributary "
               "down)\n");
    if (cl->pg_data[0] != '\0') {
        fprintf(f, "pg_bindir %s\npg_data %s\n", cl->pg_bindir, cl->pg_data);
    }
    if (cl->coord.pid > 0) {
        fprintf(f, "coordinator %d\n", (int)cl->coord.pid);
    }
    for (i = 0; i < cl->nagents; i++) {
        fprintf(f, "agent %d %s\n", (int)cl->agents[i].pid, cl->agents[i].name);
    }
    if (fclose(f) == 0) {
        rename(tmp, path);
    }
}

void up_state_remove(const char *dir)
{
    char path[PATH_MAX];

    up_path(path, sizeof(path), "%s/up.state", dir);
    unlink(path);
}

/*
 * Reads DIR/up.state into cl (paths and pids only). Processes whose pid
 * no longer runs a tributary program are marked gone. 0, or -1 when there
 * is no state file.
 */
int up_state_read(const char *dir, struct up_cluster *cl)
{
    char path[PATH_MAX], line[PATH_MAX + 64], *val, *nl;
    FILE *f;

    up_path(path, sizeof(path), "%s/up.state", dir);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        val = strchr(line, ' ');
        if (line[0] == '#' || val == NULL) {
            continue;
        }
        *val++ = '\0';
        if (strcmp(line, "pg_bindir") == 0) {
            snprintf(cl->pg_bindir, sizeof(cl->pg_bindir), "%s", val);
        } else if (strcmp(line, "pg_data") == 0) {
            snprintf(cl->pg_data, sizeof(cl->pg_data), "%s", val);
        } else if (strcmp(line, "coordinator") == 0) {
            cl->coord.pid = (pid_t)atoi(val);
            snprintf(cl->coord.name, sizeof(cl->coord.name), "coordinator");
            cl->coord.gone = !up_pid_is(cl->coord.pid, "tributary-");
        } else if (strcmp(line, "agent") == 0 && cl->nagents < UP_MAX_AGENTS) {
            struct up_child *c = &cl->agents[cl->nagents++];
            char *name = strchr(val, ' ');
            c->pid = (pid_t)atoi(val);
            snprintf(c->name, sizeof(c->name), "%s", name ? name + 1 : "agent");
            c->gone = !up_pid_is(c->pid, "tributary-");
        }
    }
    fclose(f);
    if (cl->pg_data[0] != '\0') {
        cl->pg_pid = up_pg_pid(cl->pg_data);
        cl->pg_gone = cl->pg_pid <= 0 || kill(cl->pg_pid, 0) != 0;
    }
    return 0;
}

/* ---- stopping ----------------------------------------------------------- */

static void stop_child(const struct up_cluster *cl, struct up_child *c, int own,
                       int timeout_ms, volatile sig_atomic_t *hurry)
{
    char why[96];
    int st = 0;

    if (c->pid <= 0 || c->gone) {
        return;
    }
    kill(c->pid, SIGTERM);
    while (!up_wait_pid(c->pid, own, 200, &st)) {
        timeout_ms -= 200;
        if (timeout_ms <= 0 || *hurry) {
            fprintf(stderr,
                    "%s: %s (pid %d) did not stop%s; killing it "
                    "(SIGKILL)\n",
                    cl->prog, c->name, (int)c->pid,
                    *hurry ? " yet" : " in time");
            kill(c->pid, SIGKILL);
            up_wait_pid(c->pid, own, 5000, &st);
            break;
        }
    }
    c->gone = 1;
    if (own && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) &&
        !(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM)) {
        up_describe_status(st, why, sizeof(why));
        fprintf(stderr, "%s: %s %s; see %s\n", cl->prog, c->name, why, c->log);
    }
}

/* Agents first (they flush their outboxes to the coordinator), then the
 * coordinator, then PostgreSQL. */
void up_stop_all(struct up_cluster *cl, int own, volatile sig_atomic_t *hurry)
{
    int i;

    if (cl->nagents > 0) {
        printf("stopping %d agent(s)...\n", cl->nagents);
        fflush(stdout);
        for (i = 0; i < cl->nagents; i++) {
            if (cl->agents[i].pid > 0 && !cl->agents[i].gone) {
                kill(cl->agents[i].pid, SIGTERM);
            }
        }
        for (i = 0; i < cl->nagents; i++) {
            stop_child(cl, &cl->agents[i], own, UP_STOP_AGENT_MS, hurry);
        }
    }
    if (cl->coord.pid > 0 && !cl->coord.gone) {
        printf("stopping the coordinator...\n");
        fflush(stdout);
        stop_child(cl, &cl->coord, own, UP_STOP_COORD_MS, hurry);
    }
    if (cl->pg_data[0] != '\0' && !cl->pg_gone) {
        printf("stopping PostgreSQL...\n");
        fflush(stdout);
        if (up_pg_stop(cl->pg_bindir, cl->pg_data, cl->logs, *hurry) != 0) {
            fprintf(stderr, "%s: pg_ctl stop failed; see %s/postgres.log\n",
                    cl->prog, cl->logs);
        }
    }
    up_state_remove(cl->dir);
}

/* ---- down --------------------------------------------------------------- */

int trib_cli_down(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static volatile sig_atomic_t no_hurry;
    struct up_cluster *cl;
    const char *dir = "tributary-up";
    int c, i, any = 0;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'h':
            printf("usage: tributary down [--dir DIR]\n"
                   "\n"
                   "Stops the cluster 'tributary up' started from DIR "
                   "[./tributary-up] (with\n"
                   "--detach, or whose 'up' process was killed), using the "
                   "pids in DIR/up.state:\n"
                   "agents first (SIGTERM; SIGKILL after %d s), then the "
                   "coordinator, then the\n"
                   "private PostgreSQL (pg_ctl stop -m fast). A pid that no "
                   "longer runs a\n"
                   "tributary program is skipped. DIR keeps its data.\n"
                   "\n%s",
                   UP_STOP_AGENT_MS / 1000, trib_cli_exit_help);
            return TRIB_EXIT_OK;
        case ':':
            fprintf(stderr,
                    "tributary down: option '%s' needs a value (see "
                    "'tributary down --help')\n",
                    argv[optind - 1]);
            return TRIB_EXIT_USAGE;
        default:
            fprintf(stderr,
                    "tributary down: unknown option '%s' (see "
                    "'tributary down --help')\n",
                    argv[optind - 1]);
            return TRIB_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tributary down: unexpected argument '%s'\n",
                argv[optind]);
        return TRIB_EXIT_USAGE;
    }
    cl = TRIB_NEW(struct up_cluster);
    cl->prog = "tributary down";
    if (realpath(dir, cl->dir) == NULL || up_state_read(cl->dir, cl) != 0) {
        fprintf(stderr,
                "tributary down: no cluster recorded in %s (no %s/up.state)\n",
                dir, dir);
        trib_free(cl);
        return TRIB_EXIT_ERROR;
    }
    up_path(cl->logs, sizeof(cl->logs), "%s/logs", cl->dir);
    any = !cl->coord.gone || (cl->pg_data[0] && !cl->pg_gone);
    for (i = 0; i < cl->nagents; i++) {
        any |= !cl->agents[i].gone;
    }
    if (!any) {
        printf("nothing running from %s\n", cl->dir);
        up_state_remove(cl->dir);
        trib_free(cl);
        return TRIB_EXIT_OK;
    }
    signal(SIGPIPE, SIG_IGN);
    up_stop_all(cl, 0, &no_hurry);
    printf("stopped the cluster in %s\n", cl->dir);
    trib_free(cl);
    return TRIB_EXIT_OK;
}
