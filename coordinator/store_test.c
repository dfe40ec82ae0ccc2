/* store_test.c -- the coordinator's write-ahead log and snapshots on real
 * files (a mkdtemp directory) and a real libuv loop: batches are applied
 * to a view and appended as ingest does, synced by the store's own timer
 * and threadpool work, then read back into fresh views. Covers close and
 * reopen (snapshot), replay after a simulated kill -9 (a copy of the
 * directory while the store runs), torn tails, damaged snapshots, the
 * directory lock, snapshot rotation, agent ids of the full 256 bytes, and
 * "durable" never running ahead of the disk, also while writes fail
 * (RLIMIT_FSIZE makes the kernel refuse them with EFBIG). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "events.h"
#include "store.h"
#include "store_int.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "view.h"

#define T0  (1800000000LL * TRIB_US_PER_S) /* event times (database clock) */
#define NOW (T0 + 30 * TRIB_US_PER_S)      /* documents are rendered here */

/* ----------------------------------------------------------- helpers */

struct fixture {
    char dir[64];
    uv_loop_t loop;
    struct trib_view *view;
    struct trib_store *store;
    msgpack_zone zone;
};

static struct trib_view *mkview(void)
{
    struct trib_view *v;

    assert_int_equal(trib_view_new(NULL, &v), 0);
    return v;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state)
{
    struct fixture *f = trib_calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/trib-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    msgpack_zone_init(&f->zone, 1 << 16);
    *state = f;
    return 0;
}

/* One loop iteration runs the close callbacks (which free a closed store);
 * other stores' timers may still be active, so never UV_RUN_DEFAULT. */
static void run_closes(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    trib_store_close(f->store);
    run_closes(&f->loop);
    trib_view_free(f->view);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    msgpack_zone_destroy(&f->zone);
    rm_dir(f->dir);
    trib_free(f);
    return 0;
}

static int open_store_on(uv_loop_t *loop, const char *dir, int64_t sync_ms,
                         int64_t snapshot_ms, struct trib_view **v,
                         struct trib_store **s)
{
    struct trib_store_opts o;

    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.sync_ms = sync_ms;
    o.snapshot_ms = snapshot_ms;
    *v = mkview();
    return trib_store_open(loop, &o, *v, s);
}

static int open_store(struct fixture *f, const char *dir, int64_t sync_ms,
                      int64_t snapshot_ms, struct trib_view **v,
                      struct trib_store **s)
{
    return open_store_on(&f->loop, dir, sync_ms, snapshot_ms, v, s);
}

/* The fixture's own store in its directory. */
static void open_main(struct fixture *f, int64_t sync_ms, int64_t snapshot_ms)
{
    assert_int_equal(
        open_store(f, f->dir, sync_ms, snapshot_ms, &f->view, &f->store), 0);
}

static void close_main(struct fixture *f)
{
    assert_int_equal(trib_store_close(f->store), 0);
    f->store = NULL;
    run_closes(&f->loop);
}

static struct trib_wire_event mkev(int kind, int state, const char *client,
                                   const char *queue, const char *jkind,
                                   int64_t job_id, int64_t at)
{
    struct trib_wire_event ev;
    int final = state == TRIB_WS_COMPLETED || state == TRIB_WS_DISCARDED ||
                state == TRIB_WS_CANCELLED;

    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.state = state;
    ev.client_id = trib_str_c(client);
    ev.queue = trib_str_c(queue);
    ev.job_kind = trib_str_c(jkind);
    ev.job_id = job_id;
    ev.attempt = 1;
    ev.max_attempts = 25;
    ev.created_at = at - 10000;
    ev.scheduled_at = at - 5000;
    ev.attempted_at = at - 4000;
    ev.finalized_at = final ? at : 0;
    ev.queue_wait_us = 1000 + job_id % 7 * 100;
    ev.run_us = 2000 + job_id % 13 * 1000;
    ev.complete_us = 300;
    if (state == TRIB_WS_DISCARDED || state == TRIB_WS_RETRYABLE) {
        ev.error = trib_str_c("boom: connection reset");
    }
    ev.at = at;
    return ev;
}

/* The i-th event of a stream: mostly completions, some failures, some
 * cancellations, over two queues and kinds. */
static struct trib_wire_event nth(const char *client, int64_t i)
{
    int64_t at = T0 + i * 1000;

    switch (i % 10) {
    case 3:
        return mkev(TRIB_EV_JOB_FAILED, TRIB_WS_RETRYABLE, client, "mail",
                    "send", i, at);
    case 6:
        return mkev(TRIB_EV_JOB_FAILED, TRIB_WS_DISCARDED, client, "mail",
                    "send", i, at);
    case 8:
        return mkev(TRIB_EV_JOB_CANCELLED, TRIB_WS_CANCELLED, client, "default",
                    "noop", i, at);
    default:
        return mkev(TRIB_EV_JOB_COMPLETED, TRIB_WS_COMPLETED, client,
                    i % 2 ? "default" : "mail", i % 2 ? "noop" : "send", i, at);
    }
}

/* Encodes an EVENT_BATCH of events first..first+n-1 of 'client' (the
 * event with sequence 'bad', if any, is replaced by an undecodable map). */
static void mkbatch(msgpack_sbuffer *sb, uint64_t boot, uint64_t first,
                    uint32_t n, const char *client, uint64_t bad)
{
    msgpack_packer pk;
    struct trib_wire_event ev;
    uint32_t i;

    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    trib_wire_enc_batch_head(sb, boot, first, n);
    for (i = 0; i < n; i++) {
        if (first + i == bad) {
            msgpack_pack_map(&pk, 1);
            msgpack_pack_int(&pk, 0);
            msgpack_pack_str_with_body(&pk, "x", 1);
            continue;
        }
        ev = nth(client, (int64_t)(first + i));
        trib_wire_event_encode(sb, &ev);
    }
}

/* What ingest does with a batch: apply it, and append it to the store
 * (when given) if it applied anything. Returns trib_view_apply's code. */
static int ingest(struct trib_view *v, struct trib_store *s, msgpack_zone *zone,
                  const char *agent, uint64_t boot, uint64_t first, uint32_t n,
                  uint64_t bad)
{
    msgpack_sbuffer sb;
    struct trib_wire_msg m;
    struct trib_apply_result r;
    char client[300];
    int rv;

    snprintf(client, sizeof(client), "%.200s-c1", agent);
    mkbatch(&sb, boot, first, n, client, bad);
    msgpack_zone_clear(zone);
    assert_int_equal(trib_wire_decode(sb.data, sb.size, zone, &m), 0);
    rv = trib_view_apply(v, trib_str_c(agent), &m.u.batch, trib_now_us(), &r);
    if (rv == 0 && s != NULL && (r.applied > 0 || r.invalid > 0)) {
        trib_store_append(s, trib_str_c(agent), sb.data, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

static struct trib_wire_boot_pos pos_of(const struct trib_view *v,
                                        const char *agent, uint64_t boot)
{
    struct trib_wire_boot_pos p;

    memset(&p, 0, sizeof(p));
    trib_view_boot_pos(v, trib_str_c(agent), boot, &p);
    return p;
}

/* Runs the loop until agent/boot is durable up to seq in v (fails after
 * 5 s). */
static void run_until_durable_in(struct fixture *f, const struct trib_view *v,
                                 const char *agent, uint64_t boot, uint64_t seq)
{
    uint64_t deadline = trib_mono_us() + 5 * TRIB_US_PER_S;

    while (pos_of(v, agent, boot).durable < seq) {
        assert_true(trib_mono_us() < deadline);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void run_until_durable(struct fixture *f, const char *agent,
                              uint64_t boot, uint64_t seq)
{
    run_until_durable_in(f, f->view, agent, boot, seq);
}

/* Runs the loop until the store has no work in flight; the loop is not
 * run again before the caller wants, so the files stay as they are. */
static void quiesce(struct fixture *f, struct trib_store *s)
{
    struct trib_store_stats st;

    for (;;) {
        trib_store_stats(s, &st);
        if (!st.busy) {
            return;
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

/* Runs the loop for ms milliseconds. */
static void run_for(struct fixture *f, int64_t ms)
{
    uint64_t until = trib_mono_us() + (uint64_t)ms * 1000;

    while (trib_mono_us() < until) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* The status document as sorted text; view_bytes (allocator accounting)
 * is the one field that depends on how the view was built. */
static char *status_text(const struct trib_view *v)
{
    json_t *doc = trib_view_status_json(v, NULL, NOW);
    char *text;

    assert_non_null(doc);
    json_object_del(json_object_get(doc, "coordinator"), "view_bytes");
    text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(doc);
    assert_non_null(text);
    return text;
}

static void assert_same_status(const struct trib_view *a,
                               const struct trib_view *b)
{
    char *ta = status_text(a), *tb = status_text(b);

    if (strcmp(ta, tb) != 0) {
        size_t i = 0;

        while (ta[i] == tb[i]) {
            i++;
        }
        i = i > 80 ? i - 80 : 0;
        fprintf(stderr, "documents differ:\n  %.160s\n  %.160s\n", ta + i,
                tb + i);
    }
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
}

static void assert_finished(const struct trib_view *v, int64_t want)
{
    int64_t fin = 0, failed = 0;

    trib_view_finished(v, NULL, &fin, &failed);
    assert_int_equal(fin, want);
}

/* Events among 1..n that finish a job (nth(): all but i % 10 == 3). */
static int64_t finished_upto(int64_t n)
{
    int64_t i, k = 0;

    for (i = 1; i <= n; i++) {
        k += i % 10 != 3;
    }
    return k;
}

static size_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    size_t n;

    assert_non_null(in);
    assert_non_null(out);
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* Copies the store's files (not LOCK): the directory as a kill -9 at
 * this instant would leave it. The store must be idle (quiesce()): a copy
 * made while its work runs is not a state a crash could leave. */
static void copy_dir(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *e;
    char a[512], b[512];

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "wal-", 4) == 0 ||
            strcmp(e->d_name, "snapshot.bin") == 0) {
            snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
            snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
            copy_file(a, b);
        }
    }
    closedir(d);
}

/* Names of the logs in dir, sorted; returns how many (up to max). */
static int list_logs(const char *dir, char names[][64], int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0, i, j;
    char t[64];

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "wal-", 4) == 0 && n < max) {
            snprintf(names[n++], 64, "%.63s", e->d_name);
        }
    }
    closedir(d);
    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            memcpy(t, names[j], 64);
            memcpy(names[j], names[j - 1], 64);
            memcpy(names[j - 1], t, 64);
        }
    }
    return n;
}

static void mk_sibling(const struct fixture *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s-copy", f->dir);
    rm_dir(out);
    assert_int_equal(mkdir(out, 0700), 0);
}

/* What a kill -9 right now would leave: everything the live view calls
 * durable for agent/boot must come back from a copy of the directory. */
static void assert_recoverable(struct fixture *f, const char *agent,
                               uint64_t boot)
{
    char copy[128];
    struct trib_view *v2;
    struct trib_store *s2;
    uv_loop_t loop; /* the fixture's store does not run meanwhile */

    mk_sibling(f, copy, sizeof(copy));
    quiesce(f, f->store);
    copy_dir(f->dir, copy);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(open_store_on(&loop, copy, 5, 60000, &v2, &s2), 0);
    assert_true(pos_of(v2, agent, boot).applied >=
                pos_of(f->view, agent, boot).durable);
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&loop);
    assert_int_equal(uv_loop_close(&loop), 0);
    trib_view_free(v2);
    rm_dir(copy);
}

/* One batch of n events, each in its own group (queue "q<i>"): a view
 * whose image is about twice the size of its log. */
static void ingest_groups(struct fixture *f, const char *agent, uint64_t boot,
                          uint32_t n)
{
    msgpack_sbuffer sb;
    struct trib_wire_msg m;
    struct trib_apply_result r;
    struct trib_wire_event ev;
    char q[32];
    uint32_t i;

    msgpack_sbuffer_init(&sb);
    trib_wire_enc_batch_head(&sb, boot, 1, n);
    for (i = 0; i < n; i++) {
        snprintf(q, sizeof(q), "q%u", i);
        ev = mkev(TRIB_EV_JOB_COMPLETED, TRIB_WS_COMPLETED, "c1", q, "k", i,
                  T0 + i);
        trib_wire_event_encode(&sb, &ev);
    }
    msgpack_zone_clear(&f->zone);
    assert_int_equal(trib_wire_decode(sb.data, sb.size, &f->zone, &m), 0);
    assert_int_equal(trib_view_apply(f->view, trib_str_c(agent), &m.u.batch,
                                     trib_now_us(), &r),
                     0);
    trib_store_append(f->store, trib_str_c(agent), sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static size_t current_log_size(const struct fixture *f)
{
    char names[16][64], path[256];
    int n = list_logs(f->dir, names, 16);

    assert_true(n > 0);
    snprintf(path, sizeof(path), "%s/%s", f->dir, names[n - 1]);
    return file_size(path);
}

/* ------------------------------------------------------------- tests */

/* Batches from two agents and three boots (with a resend, an invalid
 * event and a gap), synced, closed (final snapshot), reopened: the same
 * document and the same positions, all durable. */
static void test_close_and_reopen(void **state)
{
    struct fixture *f = *state;
    struct trib_view *v2;
    struct trib_store *s2;
    struct trib_wire_boot_pos p;

    open_main(f, 5, 60000);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 7, 1, 40, 0), 0);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 7, 41, 30, 55),
                     0);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 7, 60, 20, 0),
                     0); /* half a resend */
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 7, 99, 5, 0),
                     TRIB_ERANGE); /* a gap: nothing applied */
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 8, 1, 25, 0), 0);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n2", 1, 1, 33, 0), 0);
    run_until_durable(f, "n1", 7, 79);
    run_until_durable(f, "n1", 8, 25);
    run_until_durable(f, "n2", 1, 33);
    close_main(f);

    assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2), 0);
    assert_same_status(f->view, v2);
    p = pos_of(v2, "n1", 7);
    assert_int_equal(p.applied, 79);
    assert_int_equal(p.durable, 79);
    p = pos_of(v2, "n1", 8);
    assert_int_equal(p.applied, 25);
    assert_int_equal(p.durable, 25);
    p = pos_of(v2, "n2", 1);
    assert_int_equal(p.applied, 33);
    assert_int_equal(p.durable, 33);
    /* A resend after the restart is a duplicate, the next batch applies. */
    assert_int_equal(ingest(v2, s2, &f->zone, "n2", 1, 30, 10, 0), 0);
    assert_int_equal(pos_of(v2, "n2", 1).applied, 39);
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);
}

/* A kill -9 after a sync: the directory (logs, no final snapshot) replays
 * into the same view, and the replayed logs are ready for more. */
static void test_replay_after_kill(void **state)
{
    struct fixture *f = *state;
    char copy[128];
    struct trib_view *v2;
    struct trib_store *s2;
    struct trib_store_stats st;
    int i;

    open_main(f, 5, 60000);
    for (i = 0; i < 20; i++) {
        assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 3,
                                (uint64_t)i * 10 + 1, 10, 0),
                         0);
    }
    assert_int_equal(pos_of(f->view, "n1", 3).durable, 0);
    run_until_durable(f, "n1", 3, 200);

    mk_sibling(f, copy, sizeof(copy));
    quiesce(f, f->store);
    copy_dir(f->dir, copy);
    assert_int_equal(open_store(f, copy, 5, 60000, &v2, &s2), 0);
    trib_store_stats(s2, &st);
    assert_int_equal(st.replayed, 20);
    assert_same_status(f->view, v2);
    assert_int_equal(pos_of(v2, "n1", 3).durable, 200);
    assert_finished(v2, finished_upto(200));
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);
    rm_dir(copy);
}

/* A torn tail (the last record cut short) is cut off and logged; every
 * record before it replays; the next start continues in a new log. */
static void test_torn_tail(void **state)
{
    struct fixture *f = *state;
    char copy[128], path[256], names[8][64];
    struct trib_view *v2, *ref = mkview();
    struct trib_store *s2;
    size_t before;
    int n, i;

    open_main(f, 5, 60000);
    for (i = 0; i < 5; i++) {
        assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 3,
                                (uint64_t)i * 10 + 1, 10, 0),
                         0);
        if (i < 4) { /* the reference view has all but the last batch */
            assert_int_equal(ingest(ref, NULL, &f->zone, "n1", 3,
                                    (uint64_t)i * 10 + 1, 10, 0),
                             0);
        }
    }
    run_until_durable(f, "n1", 3, 50);
    mk_sibling(f, copy, sizeof(copy));
    quiesce(f, f->store);
    copy_dir(f->dir, copy);
    n = list_logs(copy, names, 8);
    assert_int_equal(n, 1);
    snprintf(path, sizeof(path), "%s/%s", copy, names[0]);
    before = file_size(path);
    assert_int_equal(truncate(path, (off_t)(before - 3)), 0);

    assert_int_equal(open_store(f, copy, 5, 60000, &v2, &s2), 0);
    trib_view_all_durable(ref); /* all it has is in the log */
    assert_same_status(ref, v2);
    assert_int_equal(pos_of(v2, "n1", 3).applied, 40);
    assert_int_equal(pos_of(v2, "n1", 3).durable, 40);
    assert_true(file_size(path) < before - 3); /* cut at the record start */
    n = list_logs(copy, names, 8);
    assert_int_equal(n, 2); /* the cut log is never appended to */
    /* The agent resends the lost batch: applied once. */
    assert_int_equal(ingest(v2, s2, &f->zone, "n1", 3, 41, 10, 0), 0);
    run_until_durable_in(f, v2, "n1", 3, 50);
    assert_same_status(f->view, v2);
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);
    trib_view_free(ref);
    rm_dir(copy);
}

/* Damaged snapshots refuse to open, with a code and no crash; the lock
 * is released by the failed open; the intact file opens again. */
static void test_corrupt_snapshot(void **state)
{
    struct fixture *f = *state;
    char path[256];
    uint8_t *orig, *bad;
    size_t len;
    FILE *fp;
    struct trib_view *v2;
    struct trib_store *s2 = NULL;
    struct {
        size_t at;  /* byte to change (or the new length, for cut)  */
        int cut;    /* truncate instead of flipping a byte          */
        int expect; /* trib_store_open's answer                    */
    } cases[] = {
        {40, 0, TRIB_EPROTO},  /* a byte of the image: checksum */
        {0, 0, TRIB_EPROTO},   /* magic                         */
        {12, 0, TRIB_EPROTO},  /* the checksum itself           */
        {24, 0, TRIB_EPROTO},  /* the length                    */
        {8, 0, TRIB_EVERSION}, /* a newer format version        */
        {20, 1, TRIB_EPROTO},  /* shorter than its header       */
        {100, 1, TRIB_EPROTO}, /* image cut short               */
    };
    size_t i;

    open_main(f, 5, 60000);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 3, 1, 50, 0), 0);
    close_main(f);
    snprintf(path, sizeof(path), "%s/snapshot.bin", f->dir);
    len = file_size(path);
    assert_true(len > 100);
    orig = trib_malloc(len);
    bad = trib_malloc(len);
    fp = fopen(path, "rb");
    assert_int_equal(fread(orig, 1, len, fp), len);
    fclose(fp);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = cases[i].cut ? cases[i].at : len;

        memcpy(bad, orig, len);
        if (!cases[i].cut) {
            bad[cases[i].at] ^= 0x5a;
        }
        fp = fopen(path, "wb");
        assert_int_equal(fwrite(bad, 1, n, fp), n);
        fclose(fp);
        assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2),
                         cases[i].expect);
        trib_view_free(v2);
    }
    /* Header and checksum right, the image is not a view. */
    memcpy(bad, orig, 32);
    memcpy(bad + 32, "\x93\x01\x02\x03", 4);
    bad[12] = (uint8_t)(crc32(0L, bad + 32, 4));
    bad[13] = (uint8_t)(crc32(0L, bad + 32, 4) >> 8);
    bad[14] = (uint8_t)(crc32(0L, bad + 32, 4) >> 16);
    bad[15] = (uint8_t)(crc32(0L, bad + 32, 4) >> 24);
    memset(bad + 24, 0, 8);
    bad[24] = 4;
    fp = fopen(path, "wb");
    assert_int_equal(fwrite(bad, 1, 36, fp), 36);
    fclose(fp);
    assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2), TRIB_EPROTO);
    trib_view_free(v2);

    fp = fopen(path, "wb");
    assert_int_equal(fwrite(orig, 1, len, fp), len);
    fclose(fp);
    assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2), 0);
    assert_same_status(f->view, v2);
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);
    trib_free(orig);
    trib_free(bad);
}

/* A second coordinator on the same directory is refused while the first
 * holds it, and accepted after it closed. */
static void test_locked(void **state)
{
    struct fixture *f = *state;
    struct trib_view *v2;
    struct trib_store *s2 = NULL;

    open_main(f, 5, 60000);
    assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2), TRIB_EBUSY);
    trib_view_free(v2);
    close_main(f);
    assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2), 0);
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);
}

/* Snapshots every 30 ms: each deletes every log it covers (also the one
 * left by the previous run), so one log remains; the directory still
 * reopens into the same view. */
static void test_rotation(void **state)
{
    struct fixture *f = *state;
    char names[16][64];
    struct trib_store_stats st;
    struct trib_view *v2;
    struct trib_store *s2;
    uint64_t seq = 1;
    int i;

    open_main(f, 5, 60000);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 3, seq, 10, 0),
                     0);
    seq += 10;
    close_main(f); /* snapshot + an empty next log */
    trib_view_free(f->view);

    open_main(f, 5, 30); /* replays that log, starts another */
    assert_int_equal(list_logs(f->dir, names, 16), 2);
    for (i = 0; i < 10; i++) {
        assert_int_equal(
            ingest(f->view, f->store, &f->zone, "n1", 3, seq, 10, 0), 0);
        seq += 10;
        run_for(f, 15);
    }
    run_until_durable(f, "n1", 3, seq - 1);
    do {
        run_for(f, 10);
        trib_store_stats(f->store, &st);
    } while (st.snapshots < 3);
    /* Nothing new: the last snapshot leaves one (empty) log. */
    for (i = 0; i < 200 && list_logs(f->dir, names, 16) != 1; i++) {
        run_for(f, 10);
    }
    quiesce(f, f->store);
    assert_int_equal(list_logs(f->dir, names, 16), 1);
    close_main(f);
    assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2), 0);
    assert_same_status(f->view, v2);
    assert_finished(v2, finished_upto((int64_t)seq - 1));
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);
}

/* Durable never runs ahead of the log: right after an append nothing new
 * is durable; whenever durable moves, the log file already holds the
 * records (parsed with the replay code into a fresh view). */
static void test_durable_follows_log(void **state)
{
    struct fixture *f = *state;
    char path[256], names[4][64];
    uint64_t last = 0, deadline;
    int i;

    open_main(f, 20, 60000);
    assert_int_equal(list_logs(f->dir, names, 4), 1);
    snprintf(path, sizeof(path), "%s/%s", f->dir, names[0]);
    for (i = 0; i < 30; i++) {
        uint64_t d0 = pos_of(f->view, "n1", 5).durable;

        assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 5,
                                (uint64_t)i * 7 + 1, 7, 0),
                         0);
        /* Appended, the loop not run: not durable. */
        assert_int_equal(pos_of(f->view, "n1", 5).durable, d0);
        assert_int_equal(pos_of(f->view, "n1", 5).applied, (uint64_t)i * 7 + 7);
        deadline = trib_mono_us() + 5 * TRIB_US_PER_S;
        while (pos_of(f->view, "n1", 5).durable == d0 && i % 3 == 2) {
            assert_true(trib_mono_us() < deadline);
            uv_run(&f->loop, UV_RUN_ONCE);
        }
        if (pos_of(f->view, "n1", 5).durable != last) {
            struct trib__wal_replay r;
            struct trib_view *disk = mkview();
            FILE *fp = fopen(path, "rb");
            size_t len = file_size(path);
            uint8_t *data = trib_malloc(len + 1);

            assert_int_equal(fread(data, 1, len, fp), len);
            fclose(fp);
            assert_int_equal(
                trib__store_replay_buf(disk, data, len, 1, &f->zone, path, &r),
                0);
            assert_int_equal(r.good, len);
            last = pos_of(f->view, "n1", 5).durable;
            assert_true(pos_of(disk, "n1", 5).applied >= last);
            trib_free(data);
            trib_view_free(disk);
        }
    }
    assert_int_equal(last, 210);
}

/* Writes fail (the file size limit; SIGXFSZ ignored so write() returns
 * EFBIG): nothing becomes durable, the store says it is failing, and the
 * log is cut back to its synced size; once writes work again everything
 * becomes durable and replays exactly once. */
static void test_write_failure(void **state)
{
    struct fixture *f = *state;
    char path[256], names[4][64], copy[128];
    struct rlimit old, lim;
    struct trib_store_stats st;
    struct trib_view *v2;
    struct trib_store *s2;
    size_t synced;
    void (*prev)(int);

    open_main(f, 5, 60000);
    assert_int_equal(list_logs(f->dir, names, 4), 1);
    snprintf(path, sizeof(path), "%s/%s", f->dir, names[0]);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 3, 1, 20, 0), 0);
    run_until_durable(f, "n1", 3, 20);
    synced = file_size(path);

    prev = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = synced + 100; /* the next record gets written in part */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 3, 21, 20, 0),
                     0);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 3, 41, 20, 0),
                     0);
    run_for(f, 100); /* many ticks, every write failing */
    quiesce(f, f->store);
    trib_store_stats(f->store, &st);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(st.failing, 1);
    assert_int_equal(pos_of(f->view, "n1", 3).durable, 20);
    assert_int_equal(pos_of(f->view, "n1", 3).applied, 60);
    assert_int_equal(file_size(path), synced); /* the partial write cut */
    assert_true(trib_store_backlog(f->store) > 0);

    run_until_durable(f, "n1", 3, 60);
    signal(SIGXFSZ, prev);
    trib_store_stats(f->store, &st);
    assert_int_equal(st.failing, 0);
    assert_int_equal(trib_store_backlog(f->store), 0);

    /* The log alone (kill -9 now) replays to the same view. */
    mk_sibling(f, copy, sizeof(copy));
    quiesce(f, f->store);
    copy_dir(f->dir, copy);
    assert_int_equal(open_store(f, copy, 5, 60000, &v2, &s2), 0);
    assert_same_status(f->view, v2);
    assert_finished(v2, finished_upto(60));
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);
    rm_dir(copy);
}

/* Snapshots fail (the image is larger than the file size limit) while
 * the log still works, until the log fills up too: the records a failed
 * snapshot wrote to the log count (durable, and accounted for, so the cut
 * after a later failed write never reaches into synced records); at every
 * point a kill -9 would recover everything called durable. */
static void test_snapshot_failure(void **state)
{
    struct fixture *f = *state;
    struct rlimit old, lim;
    struct trib_store_stats st;
    msgpack_sbuffer img;
    uint64_t seq = 1, snaps;
    size_t limit;
    void (*prev)(int);
    int i, full = -1;

    open_main(f, 2, 100);
    ingest_groups(f, "n0", 1, 1000);
    run_until_durable(f, "n0", 1, 1000);
    do { /* a snapshot of that view: the log is short again */
        run_for(f, 5);
        trib_store_stats(f->store, &st);
    } while (st.snapshots == 0);
    msgpack_sbuffer_init(&img);
    trib_view_save(f->view, &img);
    limit = img.size * 3 / 4;
    msgpack_sbuffer_destroy(&img);
    assert_true(current_log_size(f) + 32768 < limit);

    prev = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = limit;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (i = 0; i < 5000 && (full < 0 || i < full + 100); i++) {
        assert_int_equal(
            ingest(f->view, f->store, &f->zone, "n1", 2, seq, 10, 0), 0);
        seq += 10;
        run_for(f, 1);
        if (full < 0 &&
            current_log_size(f) + trib_store_backlog(f->store) > limit) {
            full = i; /* from here on the log's writes fail too */
        }
        if (i % 40 == 39) {
            assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
            assert_recoverable(f, "n1", 2);
            assert_recoverable(f, "n0", 1);
            assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        }
    }
    trib_store_stats(f->store, &st);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_true(full >= 0);
    assert_int_equal(st.failing, 1);
    assert_true(pos_of(f->view, "n1", 2).durable > 0);
    assert_true(pos_of(f->view, "n1", 2).durable < seq - 1);
    assert_recoverable(f, "n1", 2);
    snaps = st.snapshots;

    /* Writes work again: everything durable, a snapshot succeeds. */
    run_until_durable(f, "n1", 2, seq - 1);
    for (i = 0; i < 500 && st.snapshots == snaps; i++) {
        run_for(f, 5);
        trib_store_stats(f->store, &st);
    }
    signal(SIGXFSZ, prev);
    assert_true(st.snapshots > snaps);
    assert_int_equal(st.failing, 0);
    assert_recoverable(f, "n1", 2);
    assert_recoverable(f, "n0", 1);
}

/* Agent ids of the protocol's full 256 bytes survive the log. */
static void test_long_agent_id(void **state)
{
    struct fixture *f = *state;
    char id[257], copy[128];
    struct trib_view *v2;
    struct trib_store *s2;

    memset(id, 'a', 256);
    id[256] = '\0';
    open_main(f, 5, 60000);
    assert_int_equal(ingest(f->view, f->store, &f->zone, id, 9, 1, 12, 0), 0);
    run_until_durable(f, id, 9, 12);
    mk_sibling(f, copy, sizeof(copy));
    quiesce(f, f->store);
    copy_dir(f->dir, copy);
    assert_int_equal(open_store(f, copy, 5, 60000, &v2, &s2), 0);
    assert_int_equal(pos_of(v2, id, 9).applied, 12);
    assert_same_status(f->view, v2);
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);
    rm_dir(copy);
}

/* A log created but never given its header (a crash inside the create)
 * holds nothing and is skipped; a log with a wrong header refuses. */
static void test_log_headers(void **state)
{
    struct fixture *f = *state;
    char path[256];
    struct trib_view *v2;
    struct trib_store *s2;
    FILE *fp;

    open_main(f, 5, 60000);
    assert_int_equal(ingest(f->view, f->store, &f->zone, "n1", 3, 1, 10, 0), 0);
    run_until_durable(f, "n1", 3, 10);
    close_main(f);
    snprintf(path, sizeof(path), "%s/wal-00000000000000f0.log", f->dir);
    fp = fopen(path, "wb");
    fwrite("TRIBW", 1, 5, fp);
    fclose(fp);
    assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2), 0);
    assert_same_status(f->view, v2);
    assert_int_equal(trib_store_close(s2), 0);
    run_closes(&f->loop);
    trib_view_free(v2);

    snprintf(path, sizeof(path), "%s/wal-00000000000000f8.log", f->dir);
    fp = fopen(path, "wb");
    fwrite("TRIBWAL2\x01\0\0\0\0\0\0\0", 1, 16, fp); /* gen 1, not f8 */
    fclose(fp);
    assert_int_equal(open_store(f, f->dir, 5, 60000, &v2, &s2), TRIB_EPROTO);
    trib_view_free(v2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_close_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_after_kill, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_durable_follows_log, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_agent_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_headers, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
