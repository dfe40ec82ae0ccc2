/*
 * up.c -- `tributary up`: a whole cluster on this machine, without Docker:
 * a private PostgreSQL (unless a database is given), River's schema, a
 * coordinator and N agents, each agent with a notify-mode and a poll-mode
 * client. It stays in the foreground supervising them (or --detach), and
 * stops them in order: agents, coordinator, PostgreSQL. `tributary down`
 * stops a detached cluster from the pids recorded in DIR/up.state.
 *
 * Layout of DIR (default ./tributary-up):
 *   env                 TRIBUTARY_CONTROL and DATABASE_URL, for `. DIR/env`
 *   secret              the agents' shared secret (mode 0600)
 *   up.state            pids and paths for `tributary down`
 *   agent-I.yaml        each agent's clients
 *   pg/data             the private PostgreSQL cluster
 *   coordinator/        the coordinator's --data-dir
 *   outbox-I/           each agent's --outbox-dir
 *   logs/NAME.log       every child's stdout and stderr
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h" /* agent: trib_queue_name_valid() */
#include "control_client.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "up.h"

#define PROG     "tributary up"
#define READY_MS (20 * 1000) /* coordinator answers, agents report */

struct opts {
    const char *dir;
    const char *url;
    const char *listen;
    const char *control;
    const char *pg_bindir;
    const char *notify_queues;
    const char *poll_queues;
    int agents;
    int workers;
    int detach;
};

static volatile sig_atomic_t stop_requested, hurry;

static void on_signal(int sig)
{
    (void)sig;
    if (stop_requested) {
        hurry = 1;
    }
    stop_requested = 1;
}

static void help(FILE *f)
{
    fprintf(f,
            "usage: tributary up [--dir DIR] [--agents N] [--database-url "
            "URL] [--detach]\n"
            "                    [--listen URL] [--control URL] [--workers "
            "N]\n"
            "                    [--notify-queues Q1,Q2] [--poll-queues "
            "Q1,Q2] [--pg-bindir DIR]\n"
            "       tributary down [--dir DIR]\n"
            "\n"
            "Runs a whole Tributary cluster on this machine, without "
            "Docker:\n"
            "  1. a private PostgreSQL in DIR/pg when neither --database-url "
            "nor\n"
            "     DATABASE_URL is given (initdb as the current user, trust "
            "authentication,\n"
            "     127.0.0.1 only, a free port, PostgreSQL's default durable "
            "settings;\n"
            "     PostgreSQL refuses to run as root: run as another user or "
            "give a database);\n"
            "  2. River's schema (tributary migrate up);\n"
            "  3. tributary-coordinator (agents connect to --listen, the CLI "
            "to --control;\n"
            "     state in DIR/coordinator, polling the database);\n"
            "  4. N tributary-agent processes node-1..node-N, each with two "
            "clients:\n"
            "     node-I-notify (notify mode) on the --notify-queues and "
            "node-I-poll (poll\n"
            "     mode, 1 s poll interval) on the --poll-queues, each queue "
            "with --workers\n"
            "     workers; outboxes in DIR/outbox-I; a shared secret in "
            "DIR/secret (0600).\n"
            "Then it writes DIR/env (TRIBUTARY_CONTROL, DATABASE_URL) and "
            "supervises: a\n"
            "child that dies is reported (logs in DIR/logs). Ctrl-C or "
            "SIGTERM stops the\n"
            "agents (letting running jobs finish), then the coordinator, "
            "then PostgreSQL.\n"
            "A second Ctrl-C hurries (SIGKILL, immediate PostgreSQL stop). "
            "DIR keeps the\n"
            "data: running `up` again resumes with it; delete DIR to start "
            "afresh.\n"
            "\n"
            "Options:\n"
            "  --dir DIR             working directory [./tributary-up]\n"
            "  --agents N            agents (nodes), 1..%d [3]\n"
            "  --database-url URL    use this database (else "
            "$DATABASE_URL, else a private one)\n"
            "  --detach              start, print how to use it, and exit; "
            "stop later with\n"
            "                        'tributary down --dir DIR'\n"
            "  --listen URL          the coordinator's agent address "
            "[tcp://127.0.0.1:7100,\n"
            "                        or a free port when taken]\n"
            "  --control URL         the coordinator's control address "
            "[tcp://127.0.0.1:7101,\n"
            "                        or a free port when taken]\n"
            "  --workers N           workers per queue per client, 1..10000 "
            "[50]\n"
            "  --notify-queues LIST  queues of the notify clients "
            "[default]\n"
            "  --poll-queues LIST    queues of the poll clients [poll]\n"
            "  --pg-bindir DIR       where initdb and pg_ctl are [pg_config "
            "--bindir, else the\n"
            "                        newest /usr/lib/postgresql/N/bin, else "
            "$PATH]\n"
            "  -h, --help            show this help\n"
            "\n"
            "tributary-coordinator and tributary-agent are looked up beside "
            "this program,\n"
            "then in $PATH.\n"
            "\n%s"
            "\nExamples:\n"
            "  tributary up                        # foreground; Ctrl-C "
            "stops it\n"
            "  tributary up --detach --dir /tmp/c1 && . /tmp/c1/env\n"
            "  tributary insert --count 10000 && tributary wait --count "
            "10000\n"
            "  tributary insert --count 1000 --queue poll   # work for the "
            "poll clients\n"
            "  tributary down --dir /tmp/c1\n",
            UP_MAX_AGENTS, trib_cli_exit_help);
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
    fprintf(stderr, " (see 'tributary up --help')\n");
    return TRIB_EXIT_USAGE;
}

/* A comma-separated list of valid queue names, no empty element. */
static int queues_valid(const char *list)
{
    char name[128];
    const char *p = list, *end;
    size_t len;

    do {
        end = strchr(p, ',');
        len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= sizeof(name)) {
            return 0;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (!trib_queue_name_valid(name)) {
            return 0;
        }
        p = end + 1;
    } while (end != NULL);
    return 1;
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Returns -1 when parsed (run), else the exit code. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"agents", required_argument, NULL, 'a'},
        {"database-url", required_argument, NULL, 'u'},
        {"detach", no_argument, NULL, 'D'},
        {"listen", required_argument, NULL, 'l'},
        {"control", required_argument, NULL, 'c'},
        {"workers", required_argument, NULL, 'w'},
        {"notify-queues", required_argument, NULL, 'n'},
        {"poll-queues", required_argument, NULL, 'p'},
        {"pg-bindir", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->dir = "tributary-up";
    o->agents = 3;
    o->workers = 50;
    o->notify_queues = "default";
    o->poll_queues = "poll";
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->dir = optarg;
            break;
        case 'a':
            if (parse_int(optarg, 1, UP_MAX_AGENTS, &o->agents) != 0) {
                return usage_error("--agents: expected 1..%d, got '%s'",
                                   UP_MAX_AGENTS, optarg);
            }
            break;
        case 'u':
            o->url = optarg;
            break;
        case 'D':
            o->detach = 1;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'c':
            o->control = optarg;
            break;
        case 'w':
            if (parse_int(optarg, 1, 10000, &o->workers) != 0) {
                return usage_error("--workers: expected 1..10000, got '%s'",
                                   optarg);
            }
            break;
        case 'n':
        case 'p':
            if (!queues_valid(optarg)) {
                return usage_error(
                    "%s: '%s' is not a comma-separated list "
                    "of queue names (lowercase letters, "
                    "digits, single _ - | separators)",
                    c == 'n' ? "--notify-queues" : "--poll-queues", optarg);
            }
            *(c == 'n' ? &o->notify_queues : &o->poll_queues) = optarg;
            break;
        case 'b':
            o->pg_bindir = optarg;
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
    if (o->dir[0] == '\0') {
        return usage_error("--dir: empty");
    }
    return -1;
}

/* ---- files ----------------------------------------------------------------
 */

static int mkdirs(const char *path)
{
    char buf[PATH_MAX], *p;

    snprintf(buf, sizeof(buf), "%s", path);
    for (p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* DIR/secret: 32 random bytes as hex, mode 0600; kept when present. */
static int write_secret(const char *path)
{
    unsigned char raw[32];
    char hex[80];
    struct stat st;
    int fd, i;
    ssize_t w;

    if (stat(path, &st) == 0) {
        return chmod(path, 0600);
    }
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        return -1;
    }
    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    }
    hex[64] = '\n';
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    w = write(fd, hex, 65);
    fchmod(fd, 0600);
    close(fd);
    return w == 65 ? 0 : -1;
}

/* Single-quoted for a POSIX shell. */
static void shq(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') {
            fputs("'\\''", f);
        } else {
            fputc(*s, f);
        }
    }
    fputc('\'', f);
}

static int write_env(const struct up_cluster *cl)
{
    char path[PATH_MAX];
    FILE *f;

    up_path(path, sizeof(path), "%s/env", cl->dir);
    f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f,
            "# written by 'tributary up' for the cluster in %s\n"
            "# use: . %s/env; tributary status\n",
            cl->dir, cl->dir);
    fputs("export TRIBUTARY_CONTROL=", f);
    shq(f, cl->control);
    fputs("\nexport DATABASE_URL=", f);
    shq(f, cl->url);
    fputs("\n", f);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- starting -------------------------------------------------------------
 */

static int start_child(struct up_cluster *cl, struct up_child *c, char **argv,
                       const struct up_env *env)
{
    char err[256];

    up_path(c->log, sizeof(c->log), "%s/%s.log", cl->logs, c->name);
    c->pid = up_spawn(argv, c->log, env, err, sizeof(err));
    if (c->pid < 0) {
        fprintf(stderr, PROG ": cannot start %s: %s\n", c->name, err);
        return -1;
    }
    up_state_write(cl);
    return 0;
}

/* 1 while the child runs; else reports how it ended and returns 0. */
static int still_running(struct up_child *c)
{
    char why[96];
    int st;

    if (c->gone || waitpid(c->pid, &st, WNOHANG) != c->pid) {
        return !c->gone;
    }
    c->gone = 1;
    up_describe_status(st, why, sizeof(why));
    fprintf(stderr, PROG ": %s (pid %d) %s; the end of %s:\n", c->name,
            (int)c->pid, why, c->log);
    up_log_tail(c->log, 8, stderr);
    return 0;
}

static int pick_url(const char *flag, int dflt_port, char *out, size_t n)
{
    int port = dflt_port;

    if (flag != NULL) {
        snprintf(out, n, "%s", flag);
        return 0;
    }
    if (!up_port_free(port)) {
        port = up_free_port();
        if (port < 0) {
            return -1;
        }
    }
    snprintf(out, n, "tcp://127.0.0.1:%d", port);
    return 0;
}

/* Waits until the coordinator answers a status query. */
static int coordinator_ready(struct up_cluster *cl)
{
    struct trib_ctl_err e;
    struct trib_ctl *ctl;
    uint64_t until = trib_mono_us() + READY_MS * 1000ULL;
    int rc = -1;

    if (trib_ctl_open(cl->control, "--control", &ctl, &e) != 0) {
        fprintf(stderr, PROG ": %s\n", e.text);
        return -1;
    }
    while (!stop_requested && trib_mono_us() < until) {
        if (!still_running(&cl->coord)) {
            break;
        }
        if (trib_ctl_query(ctl, "status", NULL, 0, 0, NULL, NULL, &e) == 0) {
            rc = 0;
            break;
        }
        up_sleep_ms(200);
    }
    if (rc != 0 && !cl->coord.gone && !stop_requested) {
        fprintf(stderr,
                PROG ": the coordinator does not answer on %s after %d s: "
                     "%s\n  the end of %s:\n",
                cl->control, READY_MS / 1000, e.text, cl->coord.log);
        up_log_tail(cl->coord.log, 8, stderr);
    }
    trib_ctl_close(ctl);
    return rc;
}

/* Waits (up to READY_MS) until every agent shows up alive in `nodes`;
 * only warns: the cluster may still be usable. */
static void agents_ready(struct up_cluster *cl)
{
    struct trib_ctl_err e;
    struct trib_ctl *ctl;
    uint64_t until = trib_mono_us() + READY_MS * 1000ULL;
    json_t *doc = NULL;
    size_t alive = 0, i;

    if (trib_ctl_open(cl->control, "--control", &ctl, &e) != 0) {
        return;
    }
    while (!stop_requested && trib_mono_us() < until) {
        json_decref(doc);
        doc = NULL;
        if (trib_ctl_query(ctl, "nodes", NULL, 0, 0, NULL, &doc, &e) == 0) {
            const json_t *nodes = json_object_get(doc, "nodes");
            alive = 0;
            for (i = 0; i < json_array_size(nodes); i++) {
                const char *l = json_string_value(
                    json_object_get(json_array_get(nodes, i), "liveness"));
                alive += l != NULL && strcmp(l, "alive") == 0;
            }
            if (alive >= (size_t)cl->nagents) {
                break;
            }
        }
        for (i = 0; i < (size_t)cl->nagents; i++) {
            still_running(&cl->agents[i]);
        }
        up_sleep_ms(250);
    }
    json_decref(doc);
    trib_ctl_close(ctl);
    if (alive < (size_t)cl->nagents && !stop_requested) {
        fprintf(stderr,
                PROG ": warning: only %zu of %d agents report to the "
                     "coordinator after %d s; see %s/agent-*.log\n",
                alive, cl->nagents, READY_MS / 1000, cl->logs);
    }
}

static int write_agent_conf(const struct opts *o, const char *path, int i)
{
    char buf[1024], *tok, *save = NULL;
    FILE *f = fopen(path, "w");
    int k;

    if (f == NULL) {
        return -1;
    }
    fprintf(f, "# written by 'tributary up': node-%d's clients\nclients:\n", i);
    for (k = 0; k < 2; k++) {
        fprintf(f, "  - id: node-%d-%s\n    mode: %s\n%s    queues:\n", i,
                k == 0 ? "notify" : "poll", k == 0 ? "notify" : "poll",
                k == 0 ? "" : "    poll_interval: 1s\n");
        snprintf(buf, sizeof(buf), "%s",
                 k == 0 ? o->notify_queues : o->poll_queues);
        for (tok = strtok_r(buf, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save)) {
            fprintf(f, "      - \"%s:%d\"\n", tok, o->workers);
        }
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int start_agents(struct up_cluster *cl, const struct opts *o)
{
    static const char *const unset[] = {"TRIBUTARY_MODE",    "TRIBUTARY_QUEUES",
                                        "TRIBUTARY_NODE_ID", "TRIBUTARY_SCHEMA",
                                        "TRIBUTARY_SECRET",  NULL};
    const struct up_env env = {unset};
    char conf[PATH_MAX], outbox[PATH_MAX], secret[PATH_MAX], node[32];
    int i;

    up_path(secret, sizeof(secret), "%s/secret", cl->dir);
    for (i = 1; i <= o->agents; i++) {
        struct up_child *c = &cl->agents[cl->nagents];
        char *argv[] = {cl->agent_exe, "--config",
                        conf,          "--database-url",
                        cl->url,       "--node-id",
                        node,          "--coordinator",
                        cl->listen,    "--outbox-dir",
                        outbox,        "--secret-file",
                        secret,        NULL};
        snprintf(node, sizeof(node), "node-%d", i);
        up_path(conf, sizeof(conf), "%s/agent-%d.yaml", cl->dir, i);
        up_path(outbox, sizeof(outbox), "%s/outbox-%d", cl->dir, i);
        if (write_agent_conf(o, conf, i) != 0) {
            fprintf(stderr, PROG ": cannot write %s: %s\n", conf,
                    strerror(errno));
            return -1;
        }
        snprintf(c->name, sizeof(c->name), "agent-%d", i);
        cl->nagents++;
        if (start_child(cl, c, argv, &env) != 0) {
            cl->nagents--;
            return -1;
        }
    }
    return 0;
}

static int start_all(struct up_cluster *cl, const struct opts *o)
{
    char err[512], secret[PATH_MAX], data[PATH_MAX], ws[PATH_MAX + 8];
    char self[PATH_MAX];
    const char *env_url = getenv("DATABASE_URL");
    int rc;

    if (o->url != NULL || (env_url != NULL && env_url[0] != '\0')) {
        snprintf(cl->url, sizeof(cl->url), "%s", o->url ? o->url : env_url);
    } else {
        if (up_pg_bindir(o->pg_bindir, cl->pg_bindir, sizeof(cl->pg_bindir),
                         err, sizeof(err)) != 0) {
            fprintf(stderr, PROG ": %s\n", err);
            return -1;
        }
        printf("starting PostgreSQL (%s) in %s/pg...\n", cl->pg_bindir,
               cl->dir);
        fflush(stdout);
        up_path(cl->pg_data, sizeof(cl->pg_data), "%s/pg/data", cl->dir);
        if (up_pg_start(cl->pg_bindir, cl->dir, cl->logs, cl->url,
                        sizeof(cl->url), err, sizeof(err)) != 0) {
            fprintf(stderr, PROG ": %s\n", err);
            up_path(ws, sizeof(ws), "%s/%s", cl->logs,
                    strstr(err, "initdb") ? "initdb.log" : "postgres.log");
            up_log_tail(ws, 8, stderr);
            cl->pg_gone = up_pg_pid(cl->pg_data) < 0;
            return -1;
        }
        cl->pg_pid = up_pg_pid(cl->pg_data);
        up_state_write(cl);
    }
    if (up_find_exe("tributary", self, sizeof(self)) != 0 ||
        up_find_exe("tributary-coordinator", cl->coord_exe,
                    sizeof(cl->coord_exe)) != 0 ||
        up_find_exe("tributary-agent", cl->agent_exe, sizeof(cl->agent_exe)) !=
            0) {
        fprintf(stderr, PROG ": cannot find tributary, "
                             "tributary-coordinator and tributary-agent "
                             "beside this program or in $PATH\n");
        return -1;
    }
    {
        char *argv[] = {self, "migrate", "up", "--database-url", cl->url, NULL};
        up_path(ws, sizeof(ws), "%s/migrate.log", cl->logs);
        printf("creating River's schema (tributary migrate up)...\n");
        fflush(stdout);
        rc = up_run(argv, ws, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr,
                    PROG ": tributary migrate up failed (%s); the end "
                         "of %s:\n",
                    rc < 0 ? err : "see the log", ws);
            up_log_tail(ws, 8, stderr);
            return -1;
        }
    }
    up_path(secret, sizeof(secret), "%s/secret", cl->dir);
    if (write_secret(secret) != 0) {
        fprintf(stderr, PROG ": cannot write the shared secret %s: %s\n",
                secret, strerror(errno));
        return -1;
    }
    if (pick_url(o->listen, 7100, cl->listen, sizeof(cl->listen)) != 0 ||
        pick_url(o->control, 7101, cl->control, sizeof(cl->control)) != 0) {
        fprintf(stderr, PROG ": no free TCP port on 127.0.0.1\n");
        return -1;
    }
    if (strcmp(cl->listen, cl->control) == 0) {
        fprintf(stderr, PROG ": --listen and --control must differ\n");
        return -1;
    }
    up_path(data, sizeof(data), "%s/coordinator", cl->dir);
    {
        char *argv[] = {cl->coord_exe,   "--listen",   cl->listen,
                        "--control",     cl->control,  "--database-url",
                        cl->url,         "--data-dir", data,
                        "--secret-file", secret,       NULL};
        printf("starting the coordinator (agents: %s, control: %s)...\n",
               cl->listen, cl->control);
        fflush(stdout);
        snprintf(cl->coord.name, sizeof(cl->coord.name), "coordinator");
        if (start_child(cl, &cl->coord, argv, NULL) != 0 ||
            coordinator_ready(cl) != 0) {
            return -1;
        }
    }
    printf("starting %d agent(s)...\n", o->agents);
    fflush(stdout);
    if (start_agents(cl, o) != 0) {
        return -1;
    }
    agents_ready(cl);
    if (write_env(cl) != 0) {
        fprintf(stderr, PROG ": cannot write %s/env: %s\n", cl->dir,
                strerror(errno));
        return -1;
    }
    return 0;
}

static void print_usage_banner(const struct up_cluster *cl,
                               const struct opts *o)
{
    int i;

    printf("\ncluster running from %s\n", cl->dir);
    printf("  database     %s%s\n", cl->url,
           cl->pg_data[0] ? " (private PostgreSQL, default durable "
                            "settings)"
                          : "");
    printf("  coordinator  pid %d · agents connect to %s · control %s\n",
           (int)cl->coord.pid, cl->listen, cl->control);
    for (i = 0; i < cl->nagents; i++) {
        printf("  %-12s pid %d · node-%d-notify (notify: %s), node-%d-poll "
               "(poll: %s)\n",
               cl->agents[i].name, (int)cl->agents[i].pid, i + 1,
               o->notify_queues, i + 1, o->poll_queues);
    }
    printf("  logs         %s/*.log\n\n", cl->logs);
    printf("Use it (from another shell):\n"
           "  . %s/env\n"
           "  tributary insert --count 10000 && tributary wait --count "
           "10000\n"
           "  tributary status; tributary watch; tributary events\n",
           cl->dir);
    if (o->detach) {
        printf("Stop it: tributary down --dir %s\n", cl->dir);
    } else {
        printf("Ctrl-C stops everything (agents, coordinator, "
               "PostgreSQL).\n");
    }
    fflush(stdout);
}

/* Foreground: report children that die until asked to stop. */
static void supervise(struct up_cluster *cl)
{
    int i;

    while (!stop_requested) {
        up_sleep_ms(250);
        still_running(&cl->coord);
        for (i = 0; i < cl->nagents; i++) {
            still_running(&cl->agents[i]);
        }
        if (cl->pg_data[0] && !cl->pg_gone &&
            (cl->pg_pid <= 0 || kill(cl->pg_pid, 0) != 0)) {
            cl->pg_gone = 1;
            fprintf(stderr,
                    PROG ": PostgreSQL (pid %d) is gone; the end of "
                         "%s/postgres.log:\n",
                    (int)cl->pg_pid, cl->logs);
            {
                char p[PATH_MAX + 16];
                up_path(p, sizeof(p), "%s/postgres.log", cl->logs);
                up_log_tail(p, 8, stderr);
            }
        }
    }
}

/* A cluster already recorded in DIR and still running: its pid, else 0. */
static int already_running(const char *dir)
{
    struct up_cluster *cl = TRIB_NEW(struct up_cluster);
    int i, pid = 0;

    if (up_state_read(dir, cl) == 0) {
        if (!cl->coord.gone && cl->coord.pid > 0) {
            pid = cl->coord.pid;
        }
        for (i = 0; i < cl->nagents && pid == 0; i++) {
            if (!cl->agents[i].gone) {
                pid = cl->agents[i].pid;
            }
        }
    }
    trib_free(cl);
    return pid;
}

int trib_cli_up(int argc, char **argv)
{
    struct up_cluster *cl;
    struct opts o;
    struct sigaction sa;
    int rv, pid;

    rv = parse_opts(argc, argv, &o);
    if (rv >= 0) {
        return rv;
    }
    if (o.url == NULL &&
        (getenv("DATABASE_URL") == NULL || getenv("DATABASE_URL")[0] == '\0') &&
        geteuid() == 0) {
        fprintf(stderr,
                PROG ": PostgreSQL refuses to run as root: run 'tributary up' "
                     "as an unprivileged user, or give an existing database "
                     "with --database-url URL (or DATABASE_URL)\n");
        return TRIB_EXIT_ERROR;
    }
    cl = TRIB_NEW(struct up_cluster);
    cl->prog = PROG;
    if (mkdirs(o.dir) != 0 || realpath(o.dir, cl->dir) == NULL) {
        fprintf(stderr, PROG ": cannot create %s: %s\n", o.dir,
                strerror(errno));
        trib_free(cl);
        return TRIB_EXIT_ERROR;
    }
    if (strlen(cl->dir) > 1024) { /* every path below must fit PATH_MAX */
        fprintf(stderr, PROG ": --dir: path too long (%zu bytes)\n",
                strlen(cl->dir));
        trib_free(cl);
        return TRIB_EXIT_ERROR;
    }
    pid = already_running(cl->dir);
    if (pid > 0) {
        fprintf(stderr,
                PROG ": a cluster is already running from %s (pid %d); stop "
                     "it with 'tributary down --dir %s'\n",
                cl->dir, pid, cl->dir);
        trib_free(cl);
        return TRIB_EXIT_ERROR;
    }
    up_path(cl->logs, sizeof(cl->logs), "%s/logs", cl->dir);
    if (mkdirs(cl->logs) != 0) {
        fprintf(stderr, PROG ": cannot create %s: %s\n", cl->logs,
                strerror(errno));
        trib_free(cl);
        return TRIB_EXIT_ERROR;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (start_all(cl, &o) != 0 || stop_requested) {
        if (stop_requested) {
            fprintf(stderr, PROG ": interrupted\n");
        }
        up_stop_all(cl, 1, &hurry);
        trib_free(cl);
        return TRIB_EXIT_ERROR;
    }
    print_usage_banner(cl, &o);
    if (o.detach) {
        trib_free(cl);
        return TRIB_EXIT_OK;
    }
    supervise(cl);
    printf("\n");
    up_stop_all(cl, 1, &hurry);
    printf("stopped\n");
    trib_free(cl);
    return TRIB_EXIT_OK;
}
