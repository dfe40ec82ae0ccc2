/*
 * flags_test.c -- flag validation of the coordinator subcommands and of
 * `tributary up`: each bad value gets a clear message and the documented
 * exit code (64 for `wait`, 2 for the others), --help exits 0, and an
 * address nobody listens on fails fast with the reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

/* Output of one run: exit code, stdout and stderr. */
struct run {
    int rc;
    char out[16384];
    char err[4096];
};

static void slurp(int fd, char *buf, size_t n)
{
    ssize_t r;
    size_t len = 0;

    lseek(fd, 0, SEEK_SET);
    while (len + 1 < n && (r = read(fd, buf + len, n - 1 - len)) > 0) {
        len += (size_t)r;
    }
    buf[len] = '\0';
}

/* Runs cmd(argv) with stdout and stderr captured in temporary files. */
static void run(int (*cmd)(int, char **), struct run *r, ...)
{
    char *argv[32];
    char tout[] = "/tmp/cli_flags_outXXXXXX",
         terr[] = "/tmp/cli_flags_errXXXXXX";
    int fo = mkstemp(tout), fe = mkstemp(terr);
    int so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO);
    int argc = 0;
    va_list ap;

    assert_true(fo >= 0 && fe >= 0 && so >= 0 && se >= 0);
    va_start(ap, r);
    while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL) {
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    dup2(fo, STDOUT_FILENO);
    dup2(fe, STDERR_FILENO);
    r->rc = cmd(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, STDOUT_FILENO);
    dup2(se, STDERR_FILENO);
    close(so);
    close(se);
    slurp(fo, r->out, sizeof(r->out));
    slurp(fe, r->err, sizeof(r->err));
    close(fo);
    close(fe);
    unlink(tout);
    unlink(terr);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) {
        fail_msg("missing \"%s\" in:\n%s", needle, hay);
    }
}

static struct run r; /* large: not on the stack */

/* ---- wait: exit 64 for bad flags ----------------------------------------- */

static void test_wait_bad_count(void **state)
{
    static const char *const bad[] = {"0",   "-5", "abc",
                                      "12x", "",   "99999999999999999999"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run(trib_cli_wait, &r, "wait", "--count", bad[i], NULL);
        assert_int_equal(r.rc, TRIB_EXIT_WAIT_USAGE);
        assert_int_equal(r.rc, 64);
        assert_contains(r.err, "tributary wait: --count: expected a whole "
                               "number 1..10^15, got '");
        assert_contains(r.err, "(see 'tributary wait --help')");
    }
}

static void test_wait_missing_count(void **state)
{
    (void)state;
    run(trib_cli_wait, &r, "wait", "--queue", "default", NULL);
    assert_int_equal(r.rc, 64);
    assert_contains(r.err, "tributary wait: --count N is required");
}

static void test_wait_bad_timeout(void **state)
{
    static const char *const bad[] = {"soon", "10", "-5s", "5 s", "1y", ""};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run(trib_cli_wait, &r, "wait", "--count", "10", "--timeout", bad[i],
            NULL);
        assert_int_equal(r.rc, 64);
        assert_contains(r.err, "tributary wait: --timeout: invalid duration '");
        assert_contains(r.err, "500ms, 90s, 10m, 2h");
    }
}

static void test_wait_other_bad_flags(void **state)
{
    (void)state;
    run(trib_cli_wait, &r, "wait", "--count", "10", "--max-failures", "-1",
        NULL);
    assert_int_equal(r.rc, 64);
    assert_contains(r.err, "--max-failures: expected a whole number >= 0, "
                           "got '-1'");
    run(trib_cli_wait, &r, "wait", "--count", "10", "--frobnicate", NULL);
    assert_int_equal(r.rc, 64);
    assert_contains(r.err, "unknown option '--frobnicate'");
    run(trib_cli_wait, &r, "wait", "--count", NULL);
    assert_int_equal(r.rc, 64);
    assert_contains(r.err, "option '--count' needs a value");
    run(trib_cli_wait, &r, "wait", "--count", "10", "extra", NULL);
    assert_int_equal(r.rc, 64);
    assert_contains(r.err, "unexpected argument 'extra'");
    run(trib_cli_wait, &r, "wait", "--count", "10", "--queue", "", NULL);
    assert_int_equal(r.rc, 64);
    assert_contains(r.err, "empty value for --queue");
}

static void test_wait_help(void **state)
{
    (void)state;
    run(trib_cli_wait, &r, "wait", "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "usage: tributary wait --count N");
    assert_contains(r.out, "  0   done: N jobs finished\n");
    assert_contains(r.out, "  2   timeout:");
    assert_contains(r.out, "  3   failure threshold exceeded");
    assert_contains(r.out, "  64  usage error");
    assert_contains(r.out, "TRIBUTARY_CONTROL");
    assert_contains(r.out, "[10m]");
}

/* ---- the others: exit 2 -------------------------------------------------- */

static void test_status_flags(void **state)
{
    (void)state;
    run(trib_cli_status, &r, "status", "--bogus", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "tributary status: unknown option --bogus");
    run(trib_cli_status, &r, "status", "--queue", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "option needs a value: --queue");
    run(trib_cli_status, &r, "status", "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "usage: tributary status");
    assert_contains(r.out, "Exit status:");
}

static void test_failures_flags(void **state)
{
    (void)state;
    run(trib_cli_failures, &r, "failures", "--limit", "0", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "--limit: expected 1..100000, got 0");
    run(trib_cli_failures, &r, "failures", "--limit", "ten", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    run(trib_cli_nodes, &r, "nodes", "--queue", "x", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "tributary nodes: unknown option --queue");
}

static void test_events_flags(void **state)
{
    (void)state;
    run(trib_cli_events, &r, "events", "--kind", "job_completed,job_exploded",
        NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "--kind: unknown event kind");
    assert_contains(r.err, ": job_exploded (see");
    run(trib_cli_events, &r, "events", "--max", "0", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "--max: expected 1..10^15, got 0");
    run(trib_cli_events, &r, "events", "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "{\"missed\": N, \"after\": CURSOR}");
}

static void test_watch_flags(void **state)
{
    (void)state;
    run(trib_cli_watch, &r, "watch", "--interval", "10ms", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "--interval: expected a duration 100ms..1h");
    run(trib_cli_watch, &r, "watch", "--interval", "often", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
}

static void test_up_flags(void **state)
{
    (void)state;
    run(trib_cli_up, &r, "up", "--agents", "0", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "--agents: expected 1..64, got '0'");
    run(trib_cli_up, &r, "up", "--workers", "x", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    run(trib_cli_up, &r, "up", "--poll-queues", "Bad Queue", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    assert_contains(r.err, "--poll-queues: 'Bad Queue' is not a");
    run(trib_cli_up, &r, "up", "--notify-queues", "a,,b", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_USAGE);
    run(trib_cli_up, &r, "up", "--help", NULL);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "tributary down [--dir DIR]");
    run(trib_cli_down, &r, "down", "--dir", "/nonexistent/tributary-up", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_ERROR);
    assert_contains(r.err, "no cluster recorded in /nonexistent/tributary-up");
}

/* ---- the control address ------------------------------------------------- */

/* A loopback port nobody listens on (bound, then closed). */
static int dead_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void test_unreachable(void **state)
{
    char url[64];

    (void)state;
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", dead_port());
    run(trib_cli_wait, &r, "wait", "--count", "1", "--control", url, NULL);
    assert_int_equal(r.rc, TRIB_EXIT_ERROR);
    assert_contains(r.err, "tributary wait: cannot reach the coordinator at ");
    assert_contains(r.err, url);
    assert_contains(r.err, "(from --control): connection refused — is "
                           "tributary-coordinator running? set --control or "
                           "TRIBUTARY_CONTROL");

    /* From the environment, and said so. */
    setenv("TRIBUTARY_CONTROL", url, 1);
    run(trib_cli_status, &r, "status", NULL);
    unsetenv("TRIBUTARY_CONTROL");
    assert_int_equal(r.rc, TRIB_EXIT_ERROR);
    assert_contains(r.err, "(from TRIBUTARY_CONTROL): connection refused");

    run(trib_cli_nodes, &r, "nodes", "--control", "bogus://x", NULL);
    assert_int_equal(r.rc, TRIB_EXIT_ERROR);
    assert_contains(r.err, "invalid control address 'bogus://x' (from "
                           "--control)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_bad_count),
        cmocka_unit_test(test_wait_missing_count),
        cmocka_unit_test(test_wait_bad_timeout),
        cmocka_unit_test(test_wait_other_bad_flags),
        cmocka_unit_test(test_wait_help),
        cmocka_unit_test(test_status_flags),
        cmocka_unit_test(test_failures_flags),
        cmocka_unit_test(test_events_flags),
        cmocka_unit_test(test_watch_flags),
        cmocka_unit_test(test_up_flags),
        cmocka_unit_test(test_unreachable),
    };

    unsetenv("TRIBUTARY_CONTROL");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
