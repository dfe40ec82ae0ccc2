/* config_test.c -- the agent's flags, environment and YAML file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "trib_err.h"

static int load(struct trib_agent_conf **c, char *err, size_t n, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    char *a;

    argv[argc++] = "tributary-agent";
    va_start(ap, n);
    while ((a = va_arg(ap, char *)) != NULL) {
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    return trib_agent_conf_load(argc, argv, c, err, n);
}

static const char *write_file(const char *text)
{
    static char path[64];
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/trib_conf_test_%d.yaml", getpid());
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_flags(void **state)
{
    struct trib_agent_conf *c;
    char err[512];

    (void)state;
    assert_int_equal(load(&c, err, sizeof(err), "--database-url",
                          "postgres://x/y", "--queue", "default:50", "--queue",
                          "bulk:3", "--mode", "poll", "--poll-interval",
                          "250ms", NULL),
                     0);
    assert_string_equal(c->database_url, "postgres://x/y");
    assert_int_equal(c->nclients, 1);
    assert_int_equal(c->clients[0].nqueues, 2);
    assert_string_equal(c->clients[0].queues[1].name, "bulk");
    assert_int_equal(c->clients[0].queues[1].max_workers, 3);
    assert_int_equal(c->clients[0].mode, TRIB_MODE_POLL);
    assert_int_equal(c->clients[0].poll_interval_us, 250000);
    assert_int_equal(c->clients[0].job_timeout_us, 60000000);
    assert_non_null(c->clients[0].id);
    trib_agent_conf_free(c);
}

static void test_flag_errors(void **state)
{
    struct trib_agent_conf *c;
    char err[512];

    (void)state;
    assert_int_equal(load(&c, err, sizeof(err), NULL), TRIB_ECONFIG);
    assert_non_null(strstr(err, "--queue"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "Bad Name:3", NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "invalid"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:0", NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "1..10000"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:10001", NULL),
                     TRIB_ECONFIG);
    assert_int_equal(
        load(&c, err, sizeof(err), "--queue", "q:5", "--mode", "push", NULL),
        TRIB_ECONFIG);
    assert_non_null(strstr(err, "notify or poll"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5",
                          "--poll-interval", "soon", NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "invalid duration"));
    assert_int_equal(
        load(&c, err, sizeof(err), "--queue", "q:5", "--bogus", NULL),
        TRIB_ECONFIG);
    assert_non_null(strstr(err, "unknown option"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5",
                          "--job-timeout", "-1", NULL),
                     0);
    assert_int_equal(c->clients[0].job_timeout_us, -1);
    trib_agent_conf_free(c);
}

static void test_file(void **state)
{
    struct trib_agent_conf *c;
    char err[512];
    const char *path = write_file(
        "database_url: postgres://db/x\n"
        "leader:\n"
        "  ttl: 20s\n"
        "clients:\n"
        "  - id: a\n"
        "    mode: notify\n"
        "    queues: [\"default:10\", {name: bulk, max_workers: 2}]\n"
        "  - id: b\n"
        "    mode: poll\n"
        "    poll_interval: 2s\n"
        "    queues: [\"default:5\"]\n");

    (void)state;
    assert_int_equal(load(&c, err, sizeof(err), "--config", path,
                          "--job-timeout", "30s", NULL),
                     0);
    assert_int_equal(c->nclients, 2);
    assert_string_equal(c->clients[0].id, "a");
    assert_int_equal(c->clients[0].nqueues, 2);
    assert_int_equal(c->clients[0].queues[1].max_workers, 2);
    assert_int_equal(c->clients[1].mode, TRIB_MODE_POLL);
    assert_int_equal(c->clients[1].poll_interval_us, 2000000);
    /* flags apply to every client */
    assert_int_equal(c->clients[0].job_timeout_us, 30000000);
    assert_int_equal(c->clients[1].job_timeout_us, 30000000);
    assert_int_equal(c->leader_ttl_us, 20000000);
    trib_agent_conf_free(c);
    unlink(path);
}

static void test_file_errors(void **state)
{
    struct trib_agent_conf *c;
    char err[512];
    const char *path;

    (void)state;
    path = write_file("clients:\n"
                      "  - id: a\n"
                      "    queues: [\"default:0\"]\n");
    assert_int_equal(load(&c, err, sizeof(err), "--config", path, NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, ":3:"));
    assert_non_null(strstr(err, "max_workers"));
    path = write_file("clients:\n"
                      "  - id: a\n"
                      "    queues: [\"q:1\"]\n"
                      "    colour: blue\n");
    assert_int_equal(load(&c, err, sizeof(err), "--config", path, NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "clients[0].colour"));
    path = write_file("mode: poll\n");
    assert_int_equal(load(&c, err, sizeof(err), "--config", path, NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "client setting"));
    path = write_file("clients: [\n");
    assert_int_equal(load(&c, err, sizeof(err), "--config", path, NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, path));
    path = write_file("clients:\n"
                      "  - {id: a, queues: [\"q:1\"]}\n"
                      "  - {id: a, queues: [\"q:1\"]}\n");
    assert_int_equal(load(&c, err, sizeof(err), "--config", path, NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "used twice"));
    assert_int_equal(
        load(&c, err, sizeof(err), "--config", "/nonexistent", NULL),
        TRIB_ECONFIG);
    unlink(path);
}

static void test_helpers(void **state)
{
    char id[200];

    (void)state;
    assert_true(trib_queue_name_valid("default"));
    assert_true(trib_queue_name_valid("a_b-c|d9"));
    assert_false(trib_queue_name_valid("_a"));
    assert_false(trib_queue_name_valid("a__b"));
    assert_false(trib_queue_name_valid("a-"));
    assert_false(trib_queue_name_valid("A"));
    assert_false(trib_queue_name_valid(""));
    trib_default_client_id(id, sizeof(id));
    assert_non_null(strchr(id, 'T'));
    assert_null(strchr(id, '.'));
}

static void test_forwarding(void **state)
{
    struct trib_agent_conf *c;
    char err[512];
    const char *path;

    (void)state;
    /* off by default; the outbox directory follows the node id */
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5", "--node-id",
                          "web/1", NULL),
                     0);
    assert_null(c->coordinator);
    assert_string_equal(c->outbox_dir, "./tributary-outbox-web_1");
    assert_int_equal(c->outbox_max_bytes, 256LL << 20);
    assert_int_equal(c->outbox_segment_bytes, 8LL << 20);
    assert_int_equal(c->outbox_fsync_us, 100000);
    assert_int_equal(c->heartbeat_us, 1000000);
    assert_int_equal(c->forward_drain_timeout_us, 5000000);
    trib_agent_conf_free(c);
    /* flags */
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5",
                          "--coordinator", "tcp://127.0.0.1:7800",
                          "--outbox-dir", "/var/lib/ob", "--outbox-max-bytes",
                          "1GiB", "--outbox-segment-bytes", "64K",
                          "--secret-file", "/etc/s", NULL),
                     0);
    assert_string_equal(c->coordinator, "tcp://127.0.0.1:7800");
    assert_string_equal(c->outbox_dir, "/var/lib/ob");
    assert_string_equal(c->secret_file, "/etc/s");
    assert_int_equal(c->outbox_max_bytes, 1LL << 30);
    assert_int_equal(c->outbox_segment_bytes, 65536);
    trib_agent_conf_free(c);
    /* the environment */
    setenv("TRIBUTARY_COORDINATOR", "ipc:///tmp/coord.sock", 1);
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5", NULL), 0);
    assert_string_equal(c->coordinator, "ipc:///tmp/coord.sock");
    trib_agent_conf_free(c);
    unsetenv("TRIBUTARY_COORDINATOR");
    /* the file */
    path = write_file("coordinator: tcp://coord:7800\n"
                      "outbox:\n"
                      "  dir: /data/outbox\n"
                      "  max_bytes: 64MiB\n"
                      "  fsync_interval: 50ms\n"
                      "forward:\n"
                      "  heartbeat_interval: 500ms\n"
                      "  drain_timeout: 0\n"
                      "clients:\n"
                      "  - {id: a, queues: [\"q:1\"]}\n");
    assert_int_equal(load(&c, err, sizeof(err), "--config", path, NULL), 0);
    assert_string_equal(c->outbox_dir, "/data/outbox");
    assert_int_equal(c->outbox_max_bytes, 64LL << 20);
    assert_int_equal(c->outbox_fsync_us, 50000);
    assert_int_equal(c->heartbeat_us, 500000);
    assert_int_equal(c->forward_drain_timeout_us, 0);
    trib_agent_conf_free(c);
    unlink(path);
    /* errors */
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5",
                          "--coordinator", "coord:7800", NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "nng URL"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5",
                          "--outbox-max-bytes", "lots", NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "invalid size"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5",
                          "--outbox-max-bytes", "100", NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "1MiB..1TiB"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5",
                          "--outbox-max-bytes", "8MiB", NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(load(&c, err, sizeof(err), "--queue", "q:5",
                          "--heartbeat-interval", "10ms", NULL),
                     TRIB_ECONFIG);
    assert_non_null(strstr(err, "out of range"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags),   cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_file),    cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_helpers), cmocka_unit_test(test_forwarding),
    };
    unsetenv("DATABASE_URL");
    unsetenv("TRIBUTARY_QUEUES");
    unsetenv("TRIBUTARY_COORDINATOR");
    unsetenv("TRIBUTARY_OUTBOX_DIR");
    unsetenv("TRIBUTARY_SECRET_FILE");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
