/*
 * up -- internals of `tributary up` / `tributary down` (cli/up.c): child
 * processes, free ports, finding programs, and a private PostgreSQL
 * (cli/up_proc.c).
 *
 * Every child runs in its own session (setsid), with stdin from /dev/null
 * and stdout+stderr appended to a log file, so a Ctrl-C at the terminal
 * reaches only `tributary up`, which then stops the children in order.
 *
 * Threading: single-threaded.
 */
#ifndef TRIB_CLI_UP_H
#define TRIB_CLI_UP_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define UP_MAX_AGENTS    64
#define UP_STOP_AGENT_MS (30 * 1000) /* agents finish jobs (10 s grace) */
#define UP_STOP_COORD_MS (15 * 1000)

/* One process of the cluster. */
struct up_child {
    char name[32];
    char log[PATH_MAX];
    pid_t pid;
    int gone;
};

/* The cluster: paths, addresses, processes. pg_data is set when it is our
 * own PostgreSQL. */
struct up_cluster {
    char dir[PATH_MAX];
    char logs[PATH_MAX];
    char url[1024];
    char listen[256], control[256];
    char coord_exe[PATH_MAX], agent_exe[PATH_MAX];
    char pg_bindir[PATH_MAX], pg_data[PATH_MAX]; /* set: our own PostgreSQL */
    pid_t pg_pid;
    int pg_gone;
    struct up_child coord;
    struct up_child agents[UP_MAX_AGENTS];
    int nagents;
    const char *prog; /* message prefix: "tributary up" / "tributary down" */
};

/* ---- DIR/up.state and stopping (cli/up_state.c) ---------------------------
 */

/* Writes DIR/up.state (pids and paths), atomically (rename). */
void up_state_write(const struct up_cluster *cl);
void up_state_remove(const char *dir);
/* Reads DIR/up.state into cl; processes whose pid no longer runs a
 * tributary program are marked gone. 0, or -1 when there is none. */
int up_state_read(const char *dir, struct up_cluster *cl);
/*
 * Stops the cluster in order: every agent (SIGTERM, then SIGKILL after
 * UP_STOP_AGENT_MS or as soon as *hurry is set), the coordinator, then our
 * PostgreSQL (pg_ctl -m fast, or immediate when hurried); removes
 * DIR/up.state. own: the processes are our children (reaped and their
 * exit reported) or not (`tributary down`: polled).
 */
void up_stop_all(struct up_cluster *cl, int own, volatile sig_atomic_t *hurry);

/* Extra environment changes for a child: variables to remove. */
struct up_env {
    const char *const *unset; /* NULL-terminated, or NULL */
};

/*
 * Starts argv[0] (a path) with argv in a new session, stdin /dev/null,
 * stdout and stderr appended to log_path. Returns the pid, or -1 with a
 * message in err (fork failed, log not writable). A failed exec shows up
 * as exit status 127 with the reason in the log.
 */
pid_t up_spawn(char *const *argv, const char *log_path,
               const struct up_env *env, char *err, size_t errlen);

/* up_spawn() and wait: the exit status (0..255), or -1 (not started or
 * killed by a signal; err says which). */
int up_run(char *const *argv, const char *log_path, char *err, size_t errlen);

/* Runs argv and captures its stdout (first line, trailing newline
 * stripped) into out. 0 or -1. */
int up_capture(char *const *argv, char *out, size_t n);

/*
 * Waits up to timeout_ms for pid to end. For our own children (own = 1)
 * reaps it and stores its wait status in *status (may be NULL); for other
 * processes (tributary down) polls kill(pid, 0). Returns 1 when it ended,
 * 0 on timeout.
 */
int up_wait_pid(pid_t pid, int own, int timeout_ms, int *status);

/* "exited with status 3" / "was killed by signal 9 (Killed)". */
void up_describe_status(int status, char *buf, size_t n);

/* 1 when pid is alive and its command line mentions 'name' (guards
 * `tributary down` against recycled pids). */
int up_pid_is(pid_t pid, const char *name);

/* A free TCP port on 127.0.0.1 (bind to port 0), or -1. */
int up_free_port(void);
/* 1 when 127.0.0.1:port can be bound now. */
int up_port_free(int port);

/* Finds an executable: beside this program (/proc/self/exe), then in
 * $PATH. Writes its path into out; 0 or -1. */
int up_find_exe(const char *name, char *out, size_t n);

/* Prints the last 'lines' lines of a file, indented, to f. */
void up_log_tail(const char *path, int lines, FILE *f);

/* snprintf for paths (quietly cut at n - 1 bytes; callers keep DIR short
 * enough, see up.c). */
void up_path(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sleeps ms milliseconds (a signal may cut it short). */
void up_sleep_ms(int ms);

/* ---- private PostgreSQL ---------------------------------------------------
 */

/* Finds the server programs (initdb, pg_ctl): 'flag' (--pg-bindir) when
 * given, else `pg_config --bindir`, else the newest
 * /usr/lib/postgresql/N/bin, else $PATH. 0 or -1 (err explains). */
int up_pg_bindir(const char *flag, char *out, size_t n, char *err,
                 size_t errlen);

/*
 * initdb (when DIR/pg/data does not exist yet: user postgres, trust
 * authentication, UTF8), then starts the server on 127.0.0.1 with a free
 * port (retried), no Unix socket, PostgreSQL's default (durable) settings,
 * and creates the database "tributary". Logs go to logdir/initdb.log and
 * logdir/postgres.log. Writes the URL into url. 0 or -1 (err explains).
 */
int up_pg_start(const char *bindir, const char *dir, const char *logdir,
                char *url, size_t urln, char *err, size_t errlen);

/* pg_ctl stop (-m fast; immediate when 'hurry'). 0 or -1. */
int up_pg_stop(const char *bindir, const char *datadir, const char *logdir,
               int hurry);

/* The postmaster's pid from DATADIR/postmaster.pid, or -1. */
pid_t up_pg_pid(const char *datadir);

#endif /* TRIB_CLI_UP_H */
