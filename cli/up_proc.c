/*
 * up_proc.c -- processes, ports and a private PostgreSQL for
 * `tributary up` (see up.h).
 */
#include "up.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "trib_time.h"

void up_path(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

void up_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* In the child after fork: never returns. */
static void exec_child(char *const *argv, int logfd, const struct up_env *env)
{
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    size_t i;

    setsid();
    if (nul >= 0) {
        dup2(nul, STDIN_FILENO);
    }
    if (logfd >= 0) {
        dup2(logfd, STDOUT_FILENO);
        dup2(logfd, STDERR_FILENO);
    }
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    for (i = 0; env != NULL && env->unset != NULL && env->unset[i]; i++) {
        unsetenv(env->unset[i]);
    }
    execv(argv[0], argv);
    dprintf(STDERR_FILENO, "tributary up: cannot run %s: %s\n", argv[0],
            strerror(errno));
    _exit(127);
}

pid_t up_spawn(char *const *argv, const char *log_path,
               const struct up_env *env, char *err, size_t errlen)
{
    int logfd = -1;
    pid_t pid;

    if (log_path != NULL) {
        logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (logfd < 0) {
            snprintf(err, errlen, "cannot open log %s: %s", log_path,
                     strerror(errno));
            return -1;
        }
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        if (logfd >= 0) {
            close(logfd);
        }
        return -1;
    }
    if (pid == 0) {
        exec_child(argv, logfd, env);
    }
    if (logfd >= 0) {
        close(logfd);
    }
    return pid;
}

int up_run(char *const *argv, const char *log_path, char *err, size_t errlen)
{
    pid_t pid = up_spawn(argv, log_path, NULL, err, errlen);
    int st;

    if (pid < 0) {
        return -1;
    }
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            snprintf(err, errlen, "waitpid: %s", strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(st)) {
        return WEXITSTATUS(st);
    }
    up_describe_status(st, err, errlen);
    return -1;
}

int up_capture(char *const *argv, char *out, size_t n)
{
    int fds[2], st;
    pid_t pid;
    ssize_t r;
    size_t len = 0;

    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);
        dup2(fds[1], STDOUT_FILENO);
        if (nul >= 0) {
            dup2(nul, STDERR_FILENO);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    while (len + 1 < n && (r = read(fds[0], out + len, n - 1 - len)) != 0) {
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        len += (size_t)r;
    }
    close(fds[0]);
    out[len] = '\0';
    out[strcspn(out, "\n")] = '\0';
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && out[0] ? 0 : -1;
}

int up_wait_pid(pid_t pid, int own, int timeout_ms, int *status)
{
    uint64_t until = trib_mono_us() + (uint64_t)timeout_ms * 1000;
    int st;

    do {
        if (own) {
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid || (r < 0 && errno == ECHILD)) {
                if (status != NULL) {
                    *status = r == pid ? st : 0;
                }
                return 1;
            }
        } else if (kill(pid, 0) != 0 && errno == ESRCH) {
            return 1;
        }
        up_sleep_ms(50);
    } while (trib_mono_us() < until);
    return 0;
}

void up_describe_status(int status, char *buf, size_t n)
{
    if (WIFEXITED(status)) {
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else {
        snprintf(buf, n, "ended (wait status %d)", status);
    }
}

int up_pid_is(pid_t pid, const char *name)
{
    char path[64], cmd[4096];
    ssize_t r, i;
    int fd;

    if (pid <= 0 || kill(pid, 0) != 0) {
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 1; /* no /proc: trust the recorded pid */
    }
    r = read(fd, cmd, sizeof(cmd) - 1);
    close(fd);
    if (r <= 0) {
        return 0;
    }
    for (i = 0; i < r; i++) {
        if (cmd[i] == '\0') {
            cmd[i] = ' ';
        }
    }
    cmd[r] = '\0';
    return strstr(cmd, name) != NULL;
}

static int bind_port(int port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd, rv = -1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        rv = ntohs(a.sin_port);
    }
    close(fd);
    return rv;
}

int up_free_port(void)
{
    return bind_port(0);
}

int up_port_free(int port)
{
    return bind_port(port) == port;
}

static int is_exe(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           access(path, X_OK) == 0;
}

int up_find_exe(const char *name, char *out, size_t n)
{
    char self[PATH_MAX], *slash;
    const char *path = getenv("PATH"), *p, *end;
    ssize_t r;

    r = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (r > 0) {
        self[r] = '\0';
        slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            up_path(out, n, "%s/%s", self, name);
            if (is_exe(out)) {
                return 0;
            }
        }
    }
    for (p = path; p != NULL && *p; p = *end ? end + 1 : end) {
        end = strchr(p, ':');
        if (end == NULL) {
            end = p + strlen(p);
        }
        snprintf(out, n, "%.*s/%s", (int)(end - p), p, name);
        if (end > p && is_exe(out)) {
            return 0;
        }
    }
    return -1;
}

void up_log_tail(const char *path, int lines, FILE *f)
{
    char buf[8192], *p;
    FILE *in = fopen(path, "r");
    long size, from;
    size_t r;
    int seen = 0;

    if (in == NULL) {
        return;
    }
    fseek(in, 0, SEEK_END);
    size = ftell(in);
    from = size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0;
    fseek(in, from, SEEK_SET);
    r = fread(buf, 1, sizeof(buf) - 1, in);
    fclose(in);
    buf[r] = '\0';
    while (r > 0 && buf[r - 1] == '\n') {
        buf[--r] = '\0';
    }
    for (p = buf + r; p > buf; p--) {
        if (p[-1] == '\n' && ++seen == lines) {
            break;
        }
    }
    while (*p) {
        char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        fprintf(f, "    | %.*s\n", (int)len, p);
        p += len + (eol != NULL);
    }
}

/* ---- private PostgreSQL ---------------------------------------------------
 */

static int has_server(const char *dir)
{
    char p[PATH_MAX];

    up_path(p, sizeof(p), "%s/initdb", dir);
    if (!is_exe(p)) {
        return 0;
    }
    up_path(p, sizeof(p), "%s/pg_ctl", dir);
    return is_exe(p);
}

int up_pg_bindir(const char *flag, char *out, size_t n, char *err,
                 size_t errlen)
{
    char *pgc[] = {"pg_config", "--bindir", NULL};
    char best[PATH_MAX] = "", cand[PATH_MAX];
    long bestv = -1;
    struct dirent *de;
    DIR *d;

    if (flag != NULL) {
        if (has_server(flag)) {
            snprintf(out, n, "%s", flag);
            return 0;
        }
        snprintf(err, errlen, "--pg-bindir %s: no initdb and pg_ctl there",
                 flag);
        return -1;
    }
    if (up_capture(pgc, out, n) == 0 && has_server(out)) {
        return 0;
    }
    d = opendir("/usr/lib/postgresql");
    while (d != NULL && (de = readdir(d)) != NULL) {
        long v = strtol(de->d_name, NULL, 10);
        snprintf(cand, sizeof(cand), "/usr/lib/postgresql/%s/bin", de->d_name);
        if (v > bestv && has_server(cand)) {
            bestv = v;
            snprintf(best, sizeof(best), "%s", cand);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (best[0] != '\0') {
        snprintf(out, n, "%s", best);
        return 0;
    }
    if (up_find_exe("initdb", cand, sizeof(cand)) == 0) {
        *strrchr(cand, '/') = '\0';
        if (has_server(cand)) {
            snprintf(out, n, "%s", cand);
            return 0;
        }
    }
    snprintf(err, errlen,
             "cannot find PostgreSQL's server programs (initdb, pg_ctl): "
             "install PostgreSQL (Debian: apt-get install postgresql-15), "
             "pass --pg-bindir DIR, or use an existing database with "
             "--database-url URL or DATABASE_URL");
    return -1;
}

/* CREATE DATABASE tributary, unless it exists. */
static int create_db(int port, char *err, size_t errlen)
{
    char conninfo[128];
    PGconn *c;
    PGresult *r;
    int ok;

    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d user=postgres dbname=postgres "
             "connect_timeout=10",
             port);
    c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to the new server: %s",
                 PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    r = PQexec(c, "CREATE DATABASE tributary");
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        ok = state != NULL && strcmp(state, "42P04") == 0; /* exists */
        if (!ok) {
            snprintf(err, errlen, "CREATE DATABASE tributary: %s",
                     PQerrorMessage(c));
        }
    }
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

int up_pg_start(const char *bindir, const char *dir, const char *logdir,
                char *url, size_t urln, char *err, size_t errlen)
{
    char initdb[PATH_MAX], pgctl[PATH_MAX], data[PATH_MAX], vers[PATH_MAX];
    char log[PATH_MAX], initlog[PATH_MAX], opts[256], why[256];
    struct stat st;
    int tries, port = -1, rc;

    up_path(initdb, sizeof(initdb), "%s/initdb", bindir);
    up_path(pgctl, sizeof(pgctl), "%s/pg_ctl", bindir);
    up_path(data, sizeof(data), "%s/pg/data", dir);
    up_path(vers, sizeof(vers), "%s/PG_VERSION", data);
    up_path(log, sizeof(log), "%s/postgres.log", logdir);
    up_path(initlog, sizeof(initlog), "%s/initdb.log", logdir);
    up_path(opts, sizeof(opts), "%s/pg", dir);
    if (mkdir(opts, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", opts, strerror(errno));
        return -1;
    }
    if (stat(vers, &st) != 0) {
        char *argv[] = {initdb,         "-D", data,   "-U",         "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C", NULL};
        rc = up_run(argv, initlog, why, sizeof(why));
        if (rc != 0) {
            snprintf(err, errlen, "initdb failed (%s); see %s",
                     rc < 0 ? why : "non-zero exit", initlog);
            return -1;
        }
    }
    for (tries = 0; tries < 5; tries++) {
        char *argv[] = {pgctl, "-D", data, "-l", log,     "-w",
                        "-t",  "60", "-o", opts, "start", NULL};
        port = up_free_port();
        if (port < 0) {
            snprintf(err, errlen, "no free TCP port on 127.0.0.1");
            return -1;
        }
        /* pg_ctl hands -o to a shell: no quoting needed for these. */
        snprintf(opts, sizeof(opts),
                 "-c listen_addresses=127.0.0.1 -p %d "
                 "-c unix_socket_directories=''",
                 port);
        rc = up_run(argv, log, why, sizeof(why));
        if (rc == 0) {
            break;
        }
        port = -1;
    }
    if (port < 0) {
        snprintf(err, errlen, "could not start PostgreSQL (5 tries); see %s",
                 log);
        return -1;
    }
    if (create_db(port, err, errlen) != 0) {
        return -1;
    }
    snprintf(url, urln,
             "postgres://postgres@127.0.0.1:%d/tributary?sslmode=disable",
             port);
    return 0;
}

int up_pg_stop(const char *bindir, const char *datadir, const char *logdir,
               int hurry)
{
    char pgctl[PATH_MAX], log[PATH_MAX], why[256];
    char *argv[] = {
        pgctl, "-D", (char *)datadir, "-m", hurry ? "immediate" : "fast", "-w",
        "-t",  "60", "stop",          NULL};

    up_path(pgctl, sizeof(pgctl), "%s/pg_ctl", bindir);
    up_path(log, sizeof(log), "%s/postgres.log", logdir);
    return up_run(argv, log, why, sizeof(why)) == 0 ? 0 : -1;
}

pid_t up_pg_pid(const char *datadir)
{
    char path[PATH_MAX], line[32];
    FILE *f;
    long pid = -1;

    up_path(path, sizeof(path), "%s/postmaster.pid", datadir);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    if (fgets(line, sizeof(line), f) != NULL) {
        pid = strtol(line, NULL, 10);
    }
    fclose(f);
    return pid > 0 ? (pid_t)pid : -1;
}
