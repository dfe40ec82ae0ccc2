/* outbox_test.c -- the durable outbox on a real file system: write, reopen,
 * replay; torn tails; corrupt records; deletion after durable acks; the
 * full state; write failures (RLIMIT_FSIZE makes the kernel refuse writes
 * past a size with EFBIG, as a full disk refuses them with ENOSPC). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_int.h"
#include "outbox.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"

struct fx {
    uv_loop_t loop;
    char dir[64];
    int full_calls[2]; /* on_full(0), on_full(1) */
    int full;
    int nmeta;
    char meta[8][32];
    struct trib_outbox *ob; /* open, closed by teardown after a failure */
};

static void on_full(void *arg, int full)
{
    struct fx *f = arg;

    f->full = full;
    f->full_calls[full ? 1 : 0]++;
}

static void on_meta(void *arg, uint64_t boot, const void *p, size_t n)
{
    struct fx *f = arg;

    (void)boot;
    if (f->nmeta < 8) {
        snprintf(f->meta[f->nmeta], sizeof(f->meta[0]), "%.*s", (int)n,
                 (const char *)p);
    }
    f->nmeta++;
}

static int setup(void **state)
{
    struct fx *f = TRIB_NEW(struct fx);

    uv_loop_init(&f->loop);
    snprintf(f->dir, sizeof(f->dir), "/tmp/trib_outbox_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    struct rlimit lim;
    char cmd[128];

    /* a failed write-failure test must not leave its file size limit */
    if (getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_FSIZE, &lim);
    }
    signal(SIGXFSZ, SIG_DFL);

    if (f->ob != NULL) {
        trib_outbox_close(f->ob);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    trib_free(f);
    return 0;
}

static struct trib_outbox *open_ob(struct fx *f, uint64_t boot,
                                   uint64_t seg_bytes, uint64_t max_bytes,
                                   size_t cache)
{
    struct trib_outbox_opts o;
    struct trib_outbox *ob = NULL;

    memset(&o, 0, sizeof(o));
    o.dir = f->dir;
    o.boot_id = boot;
    o.started_at = (int64_t)boot * 1000; /* replay order follows boots */
    o.segment_bytes = seg_bytes;
    o.max_bytes = max_bytes;
    o.fsync_ms = 5;
    o.cache_bytes = cache;
    o.on_full = on_full;
    o.on_meta = on_meta;
    o.arg = f;
    assert_int_equal(trib_outbox_open(&f->loop, &o, &ob), 0);
    f->ob = ob;
    return ob;
}

static void close_ob(struct fx *f, struct trib_outbox *ob)
{
    f->ob = NULL;
    trib_outbox_close(ob);
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* The payload of event 'seq': a msgpack str "ev-<seq>" padded to ~100 B. */
static void put_event(struct trib_outbox *ob, uint64_t want_seq)
{
    char s[128];
    msgpack_packer pk;
    msgpack_sbuffer *sb = trib_outbox_record_begin(ob);
    int n = snprintf(s, sizeof(s), "ev-%llu-%080d",
                     (unsigned long long)want_seq, 0);

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, s, (size_t)n);
    assert_int_equal(trib_outbox_record_end(ob, 0), want_seq);
}

static void put_meta(struct trib_outbox *ob, const char *text)
{
    msgpack_sbuffer *sb = trib_outbox_record_begin(ob);

    msgpack_sbuffer_write(sb, text, strlen(text));
    assert_int_equal(trib_outbox_record_end(ob, 1), 0);
}

/* Reads events [from, to] of a boot back and checks every payload. */
static void check_events(struct trib_outbox *ob, uint64_t boot, uint64_t from,
                         uint64_t to, size_t per_read)
{
    uint64_t seq = from;

    while (seq <= to) {
        msgpack_sbuffer sb;
        msgpack_unpacked up;
        size_t n = 0, off = 0, i;

        msgpack_sbuffer_init(&sb);
        assert_int_equal(
            trib_outbox_read(ob, boot, seq, per_read, 1 << 20, &sb, &n), 0);
        assert_true(n > 0);
        msgpack_unpacked_init(&up);
        for (i = 0; i < n; i++) {
            char want[128];
            int wl = snprintf(want, sizeof(want), "ev-%llu-%080d",
                              (unsigned long long)(seq + i), 0);
            assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
                             MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(up.data.type, MSGPACK_OBJECT_STR);
            assert_int_equal(up.data.via.str.size, wl);
            assert_memory_equal(up.data.via.str.ptr, want, (size_t)wl);
        }
        assert_int_equal(off, sb.size); /* nothing else in the batch */
        msgpack_unpacked_destroy(&up);
        msgpack_sbuffer_destroy(&sb);
        seq += n;
    }
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), s = strlen(suffix);
        if (l > s && strcmp(e->d_name + l - s, suffix) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Path of the n-th (sorted) segment file. */
static void nth_segment(const char *dir, int nth, char *out, size_t n)
{
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort), i, seen = 0;

    out[0] = '\0';
    for (i = 0; i < k; i++) {
        size_t l = strlen(list[i]->d_name);
        if (l > 4 && strcmp(list[i]->d_name + l - 4, ".seg") == 0) {
            if (seen++ == nth) {
                snprintf(out, n, "%s/%s", dir, list[i]->d_name);
            }
        }
        free(list[i]);
    }
    free(list);
    assert_true(out[0] != '\0');
}

static off_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* -------------------------------------------------------------- tests */

static void test_write_reopen_replay(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 4096, 1 << 20, 0);
    struct trib_outbox_boot boots[4];
    struct trib_outbox_stats st;
    uint64_t seq = 1;
    int b, i;

    /* 20 bus batches of 1..10 events, a meta record in some */
    for (b = 0; b < 20; b++) {
        for (i = 0; i <= b % 10; i++) {
            put_event(ob, seq++);
        }
        if (b % 7 == 0) {
            put_meta(ob, b == 0 ? "intent-a" : "intent-b");
        }
        assert_int_equal(trib_outbox_flush(ob), 0);
    }
    seq--;
    assert_true(count_files(f->dir, ".seg") >= 3); /* rotated at 4 KiB */
    check_events(ob, 1, 1, seq, 7); /* cache 0: every read is a pread */
    check_events(ob, 1, 33, seq, 1000);
    trib_outbox_stats(ob, &st);
    assert_int_equal(st.events, seq);
    assert_int_equal(st.nboots, 1);
    close_ob(f, ob);

    /* a new boot: the old one is replayed from disk */
    ob = open_ob(f, 2, 4096, 1 << 20, 1 << 20);
    assert_int_equal(f->nmeta, 3);
    assert_string_equal(f->meta[0], "intent-a");
    assert_int_equal(trib_outbox_boots(ob, boots, 4), 2);
    assert_int_equal(boots[0].boot_id, 1);
    assert_int_equal(boots[0].first_seq, 1);
    assert_int_equal(boots[0].last_seq, seq);
    assert_int_equal(boots[0].applied, 0);
    assert_false(boots[0].current);
    assert_int_equal(boots[1].boot_id, 2);
    assert_true(boots[1].current);
    check_events(ob, 1, 1, seq, 5);
    check_events(ob, 1, 40, seq, 3);
    /* the new boot starts at 1 and reads from memory */
    put_event(ob, 1);
    put_event(ob, 2);
    assert_int_equal(trib_outbox_flush(ob), 0);
    check_events(ob, 2, 1, 2, 10);
    /* an unknown boot, and below what is held */
    {
        msgpack_sbuffer sb;
        size_t n;
        msgpack_sbuffer_init(&sb);
        assert_int_equal(trib_outbox_read(ob, 99, 1, 10, 1000, &sb, &n),
                         TRIB_ENOENT);
        assert_int_equal(trib_outbox_read(ob, 2, 3, 10, 1000, &sb, &n), 0);
        assert_int_equal(n, 0);
        msgpack_sbuffer_destroy(&sb);
    }
    /* durable: the old boot disappears with its files */
    assert_int_equal(trib_outbox_ack(ob, 1, seq, seq), 0);
    assert_int_equal(trib_outbox_boots(ob, boots, 4), 1);
    assert_int_equal(boots[0].boot_id, 2);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    close_ob(f, ob);
}

static void test_byte_budget(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 1 << 20, 1 << 20, 1 << 20);
    msgpack_sbuffer sb;
    size_t n;
    uint64_t s;

    for (s = 1; s <= 50; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    msgpack_sbuffer_init(&sb);
    /* payloads of events 1..9 are 87 bytes: a 300-byte budget holds 3 */
    assert_int_equal(trib_outbox_read(ob, 1, 1, 100, 300, &sb, &n), 0);
    assert_int_equal(n, 3);
    /* the first event always fits */
    msgpack_sbuffer_clear(&sb);
    assert_int_equal(trib_outbox_read(ob, 1, 10, 100, 1, &sb, &n), 0);
    assert_int_equal(n, 1);
    msgpack_sbuffer_clear(&sb);
    assert_int_equal(trib_outbox_read(ob, 1, 45, 100, 1 << 20, &sb, &n), 0);
    assert_int_equal(n, 6);
    msgpack_sbuffer_destroy(&sb);
    close_ob(f, ob);
}

static void test_torn_tail(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 1 << 20, 1 << 20, 1 << 20);
    struct trib_outbox_boot boots[4];
    char path[512];
    uint8_t rec[40];
    off_t good;
    FILE *fp;
    uint64_t s;

    for (s = 1; s <= 10; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    close_ob(f, ob);
    nth_segment(f->dir, 0, path, sizeof(path));
    good = file_size(path);
    /* a record cut short by a crash: header and part of the payload */
    trib__seg_record_header(rec, 11, "xxxxxxxxxxxxxxxxxxxxxxxx", 24);
    memcpy(rec + 16, "xxxxxxxxxxxx", 12);
    fp = fopen(path, "ab");
    fwrite(rec, 1, 28, fp);
    fclose(fp);
    ob = open_ob(f, 2, 1 << 20, 1 << 20, 1 << 20);
    assert_int_equal(trib_outbox_boots(ob, boots, 4), 2);
    assert_int_equal(boots[0].last_seq, 10);
    assert_int_equal(file_size(path), good); /* the tail was cut */
    check_events(ob, 1, 1, 10, 4);
    close_ob(f, ob);

    /* a tail of zeros (the file grew, the data never reached the disk) */
    fp = fopen(path, "ab");
    memset(rec, 0, sizeof(rec));
    fwrite(rec, 1, sizeof(rec), fp);
    fclose(fp);
    ob = open_ob(f, 3, 1 << 20, 1 << 20, 1 << 20);
    assert_int_equal(trib_outbox_boots(ob, boots, 4), 2); /* 2 wrote none */
    assert_int_equal(boots[0].last_seq, 10);
    assert_int_equal(file_size(path), good);
    assert_int_equal(count_files(f->dir, ".corrupt"), 0);
    close_ob(f, ob);
}

static void test_corrupt_record(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 2048, 1 << 20, 1 << 20);
    struct trib_outbox_boot boots[4];
    char path[512];
    uint64_t s;
    int fd, nseg;
    uint8_t byte;

    for (s = 1; s <= 60; s++) {
        put_event(ob, s);
        if (s % 5 == 0) {
            assert_int_equal(trib_outbox_flush(ob), 0);
        }
    }
    close_ob(f, ob);
    nseg = count_files(f->dir, ".seg");
    assert_true(nseg >= 3);
    /* flip one payload byte of the 3rd record of the second segment */
    nth_segment(f->dir, 1, path, sizeof(path));
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    {
        /* records of events 10..99 are 16 + 88 bytes */
        off_t at = TRIB_OUTBOX_HEADER + 2 * (16 + 88) + 16 + 20;
        assert_int_equal(pread(fd, &byte, 1, at), 1);
        byte ^= 0x40;
        assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    }
    close(fd);
    ob = open_ob(f, 2, 2048, 1 << 20, 1 << 20);
    assert_int_equal(trib_outbox_boots(ob, boots, 4), 2);
    /* the first segment and two events of the second are kept */
    assert_true(boots[0].last_seq > 5 && boots[0].last_seq < 60);
    check_events(ob, 1, 1, boots[0].last_seq, 100);
    /* the rest is quarantined, not deleted */
    assert_int_equal(count_files(f->dir, ".seg"), 2 + 0);
    assert_int_equal(count_files(f->dir, ".corrupt"), nseg - 1);
    close_ob(f, ob);
}

static void test_bad_header(void **state)
{
    struct fx *f = *state;
    char path[512];
    FILE *fp;
    struct trib_outbox *ob;
    struct trib_outbox_boot boots[4];

    /* garbage under a segment name, and an empty newest file */
    snprintf(path, sizeof(path), "%s/%016x-%016x.seg", f->dir, 7, 1);
    fp = fopen(path, "wb");
    fputs("this is not a segment file at all, but long enough to have a "
          "header",
          fp);
    fclose(fp);
    snprintf(path, sizeof(path), "%s/%016x-%016x.seg", f->dir, 8, 1);
    fp = fopen(path, "wb");
    fclose(fp);
    snprintf(path, sizeof(path), "%s/notes.txt", f->dir);
    fp = fopen(path, "wb");
    fclose(fp);
    ob = open_ob(f, 2, 2048, 1 << 20, 1 << 20);
    assert_int_equal(trib_outbox_boots(ob, boots, 4), 1);
    assert_int_equal(count_files(f->dir, ".seg"), 0);
    assert_int_equal(count_files(f->dir, ".corrupt"), 1);
    assert_int_equal(count_files(f->dir, ".txt"), 1); /* not ours */
    close_ob(f, ob);
}

static void test_delete_after_durable(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 2048, 1 << 20, 0);
    struct trib_outbox_boot boots[2];
    uint64_t s;
    int before;

    for (s = 1; s <= 100; s++) {
        put_event(ob, s);
        assert_int_equal(trib_outbox_flush(ob), 0);
    }
    before = count_files(f->dir, ".seg");
    assert_true(before >= 5);
    /* applied only: nothing deleted */
    assert_int_equal(trib_outbox_ack(ob, 1, 100, 0), 0);
    assert_int_equal(count_files(f->dir, ".seg"), before);
    /* durable 30: whole segments at or below 30 go, no more */
    assert_int_equal(trib_outbox_ack(ob, 1, 100, 30), 0);
    assert_true(count_files(f->dir, ".seg") < before);
    assert_int_equal(trib_outbox_boots(ob, boots, 2), 1);
    assert_true(boots[0].first_seq <= 31 && boots[0].first_seq > 1);
    check_events(ob, 1, 31, 100, 13);
    /* acks never go backwards; set_position rewinds 'applied' only */
    assert_int_equal(trib_outbox_ack(ob, 1, 50, 10), 0);
    trib_outbox_boots(ob, boots, 2);
    assert_int_equal(boots[0].applied, 100);
    assert_int_equal(boots[0].durable, 30);
    assert_int_equal(trib_outbox_set_position(ob, 1, 40, 10), 0);
    trib_outbox_boots(ob, boots, 2);
    assert_int_equal(boots[0].applied, 40);
    assert_int_equal(boots[0].durable, 30);
    /* everything durable: the active segment stays (it is appended to) */
    assert_int_equal(trib_outbox_ack(ob, 1, 100, 100), 0);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    /* positions past the last event are clamped */
    assert_int_equal(trib_outbox_ack(ob, 1, 500, 500), 0);
    trib_outbox_boots(ob, boots, 2);
    assert_int_equal(boots[0].durable, 100);
    close_ob(f, ob);
    /* a clean close after everything was durable leaves nothing */
    assert_int_equal(count_files(f->dir, ".seg"), 0);
}

/* A pin keeps every file that may hold records appended after it (an
 * unconfirmed write-back intent), however durable its events, until
 * unpinned; the next acknowledgement then deletes them. */
static void test_pin(void **state)
{
    struct fx *f = *state;
    /* ~1.2 KB segments: a rotation every ~10 events */
    struct trib_outbox *ob = open_ob(f, 1, 1200, 1 << 20, 1 << 20);
    struct trib_outbox_boot boots[2];
    uint64_t s, pin;
    int n;

    for (s = 1; s <= 30; s++) {
        put_event(ob, s);
        assert_int_equal(trib_outbox_flush(ob), 0);
    }
    pin = trib_outbox_pin(ob);
    assert_int_equal(pin, 31);
    put_meta(ob, "intent");
    assert_int_equal(trib_outbox_flush(ob), 0);
    for (s = 31; s <= 60; s++) {
        put_event(ob, s);
        assert_int_equal(trib_outbox_flush(ob), 0);
    }
    n = count_files(f->dir, ".seg");
    assert_true(n >= 5);
    /* all durable: only the files before the pin's go */
    assert_int_equal(trib_outbox_ack(ob, 1, 60, 60), 0);
    assert_true(count_files(f->dir, ".seg") < n);
    assert_true(count_files(f->dir, ".seg") >= 3);
    assert_int_equal(trib_outbox_boots(ob, boots, 2), 1);
    assert_true(boots[0].first_seq > 1 && boots[0].first_seq <= 31);
    /* unpinned: the next acknowledgement deletes them (the active one
     * stays: not full) */
    trib_outbox_unpin(ob, pin);
    n = count_files(f->dir, ".seg");
    assert_int_equal(trib_outbox_ack(ob, 1, 60, 60), 0);
    assert_true(count_files(f->dir, ".seg") < n);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    /* pinned at a close: the intent is there at the next start, though
     * every event is durable */
    pin = trib_outbox_pin(ob);
    put_meta(ob, "intent2");
    assert_int_equal(trib_outbox_flush(ob), 0);
    put_event(ob, 61);
    assert_int_equal(trib_outbox_flush(ob), 0);
    assert_int_equal(trib_outbox_ack(ob, 1, 61, 61), 0);
    close_ob(f, ob);
    f->nmeta = 0;
    ob = open_ob(f, 2, 1200, 1 << 20, 1 << 20);
    assert_int_equal(f->nmeta, 1);
    assert_string_equal(f->meta[0], "intent2");
    close_ob(f, ob);
}

static void test_full(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 2048, 8192, 1 << 20);
    struct trib_outbox_stats st;
    uint64_t s = 0;

    while (!trib_outbox_full(ob)) {
        put_event(ob, ++s);
        assert_int_equal(trib_outbox_flush(ob), 0);
        assert_true(s < 200);
    }
    assert_int_equal(f->full_calls[1], 1);
    trib_outbox_stats(ob, &st);
    assert_true(st.bytes >= 8192);
    assert_int_equal(st.events, s);
    /* more events still go in (running jobs finish): never dropped */
    put_event(ob, ++s);
    assert_int_equal(trib_outbox_flush(ob), 0);
    /* a little acknowledged: still above 90 % */
    assert_int_equal(trib_outbox_ack(ob, 1, 5, 5), 0);
    assert_true(trib_outbox_full(ob));
    /* most of it durable: released */
    assert_int_equal(trib_outbox_ack(ob, 1, s - 3, s - 3), 0);
    assert_false(trib_outbox_full(ob));
    assert_int_equal(f->full_calls[0], 1);
    check_events(ob, 1, s - 2, s, 100);
    close_ob(f, ob);
    /* full already at the open (earlier boots' events): said at once */
    f->full_calls[1] = 0;
    ob = open_ob(f, 2, 2048, 256, 1 << 20);
    assert_true(trib_outbox_full(ob));
    assert_int_equal(f->full_calls[1], 1);
    close_ob(f, ob);
}

static void test_full_when_all_durable(void **state)
{
    struct fx *f = *state;
    /* max below one segment: only rotating the acknowledged active
     * segment out can make room */
    struct trib_outbox *ob = open_ob(f, 1, 1 << 20, 4096, 1 << 20);
    uint64_t s;

    for (s = 1; s <= 50; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    assert_true(trib_outbox_full(ob));
    assert_int_equal(trib_outbox_ack(ob, 1, 50, 50), 0);
    assert_false(trib_outbox_full(ob));
    assert_int_equal(count_files(f->dir, ".seg"), 0);
    put_event(ob, 51);
    assert_int_equal(trib_outbox_flush(ob), 0);
    check_events(ob, 1, 51, 51, 10);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    close_ob(f, ob);
}

static void on_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void run_for(struct fx *f, uint64_t ms)
{
    uv_timer_t t;

    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, on_stop, ms, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void test_write_failure(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 1 << 20, 1 << 20, 1 << 20);
    struct trib_outbox_stats st;
    struct trib_outbox_boot boots[2];
    struct rlimit old, lim;
    char path[512];
    off_t size;
    uint64_t s;

    for (s = 1; s <= 10; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    nth_segment(f->dir, 0, path, sizeof(path));
    size = file_size(path);
    /* the kernel refuses to grow any file past 'size' + 50 bytes */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 50;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (s = 11; s <= 20; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), TRIB_EIO);
    assert_true(trib_outbox_full(ob));
    assert_int_equal(f->full_calls[1], 1);
    assert_int_equal(file_size(path), size); /* the partial write undone */
    /* later batches wait behind it, in order, and stay readable */
    put_event(ob, 21);
    assert_int_equal(trib_outbox_flush(ob), TRIB_EIO);
    trib_outbox_stats(ob, &st);
    assert_int_equal(st.unwritten, 11);
    check_events(ob, 1, 1, 21, 8);
    /* still failing at the first retry */
    run_for(f, 1100);
    assert_true(trib_outbox_full(ob));
    /* space again: the retry writes everything, in order */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    run_for(f, 1100);
    assert_false(trib_outbox_full(ob));
    assert_int_equal(f->full_calls[0], 1);
    trib_outbox_stats(ob, &st);
    assert_int_equal(st.unwritten, 0);
    close_ob(f, ob);
    signal(SIGXFSZ, SIG_DFL);
    ob = open_ob(f, 2, 1 << 20, 1 << 20, 1 << 20);
    assert_int_equal(trib_outbox_boots(ob, boots, 2), 2);
    assert_int_equal(boots[0].last_seq, 21);
    check_events(ob, 1, 1, 21, 6);
    close_ob(f, ob);
}

/* A full disk that only our own files fill, all in the segment still being
 * appended to (outbox.segment_bytes larger than the file system): once its
 * events are durable it must go even though a write is pending, or no
 * write could ever succeed again. */
static void test_write_failure_active_durable(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 1 << 20, 1 << 20, 1 << 20);
    struct trib_outbox_stats st;
    struct trib_outbox_boot boots[2];
    struct rlimit old, lim;
    char path[512];
    uint64_t s;

    for (s = 1; s <= 20; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    nth_segment(f->dir, 0, path, sizeof(path));
    /* no file may grow past what this one has now + 50 bytes */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)file_size(path) + 50;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (s = 21; s <= 25; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), TRIB_EIO);
    assert_true(trib_outbox_full(ob));
    run_for(f, 1100);
    assert_true(trib_outbox_full(ob)); /* still no room */
    /* the written events become durable: their (active) segment goes */
    assert_int_equal(trib_outbox_ack(ob, 1, 20, 20), 0);
    assert_int_equal(count_files(f->dir, ".seg"), 0);
    /* the retry writes the pending events to a new segment */
    run_for(f, 1100);
    assert_false(trib_outbox_full(ob));
    assert_int_equal(f->full_calls[0], 1);
    trib_outbox_stats(ob, &st);
    assert_int_equal(st.unwritten, 0);
    assert_int_equal(st.events, 5);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    check_events(ob, 1, 21, 25, 2);
    put_event(ob, 26);
    assert_int_equal(trib_outbox_flush(ob), 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    close_ob(f, ob);
    /* what was pending is on disk for the next start, in order */
    ob = open_ob(f, 2, 1 << 20, 1 << 20, 1 << 20);
    assert_int_equal(trib_outbox_boots(ob, boots, 2), 2);
    assert_int_equal(boots[0].first_seq, 21);
    assert_int_equal(boots[0].last_seq, 26);
    check_events(ob, 1, 21, 26, 4);
    close_ob(f, ob);
}

/* An intent (pinned), then writes fail: the unpin comes with a confirm
 * and events that stay in memory. Returns the pin's file limit in *old. */
static struct trib_outbox *pin_then_fail(struct fx *f, struct rlimit *old)
{
    struct trib_outbox *ob = open_ob(f, 1, 1 << 20, 1 << 20, 1 << 20);
    struct rlimit lim;
    char path[512];
    uint64_t s, pin;

    for (s = 1; s <= 10; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    pin = trib_outbox_pin(ob);
    put_meta(ob, "intent");
    assert_int_equal(trib_outbox_flush(ob), 0);
    for (s = 11; s <= 20; s++) { /* other clients' events */
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    nth_segment(f->dir, 0, path, sizeof(path));
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, old), 0);
    lim = *old;
    lim.rlim_cur = (rlim_t)file_size(path) + 50;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    /* the write-back committed: unpin, confirm, its events -- unwritten */
    trib_outbox_unpin(ob, pin);
    put_meta(ob, "confirm");
    for (s = 21; s <= 25; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), TRIB_EIO);
    assert_true(trib_outbox_full(ob));
    return ob;
}

/* While the confirm is not written, an acknowledgement of the events
 * before it must not delete the intent: a kill -9 (here: a close that
 * cannot write) would lose the write-back's events, which are neither on
 * disk nor at the coordinator. */
static void test_pin_confirm_unwritten(void **state)
{
    struct fx *f = *state;
    struct rlimit old;
    struct trib_outbox *ob = pin_then_fail(f, &old);

    assert_int_equal(trib_outbox_ack(ob, 1, 20, 20), 0);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    close_ob(f, ob); /* the confirm and events 21-25 are lost */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    f->nmeta = 0;
    ob = open_ob(f, 2, 1 << 20, 1 << 20, 1 << 20);
    assert_int_equal(f->nmeta, 1);
    assert_string_equal(f->meta[0], "intent");
    close_ob(f, ob);
}

/* ... but once every event is durable at the coordinator (the
 * write-back's too) the intent has nothing to recover: its file goes, so
 * that on a full disk the confirm finds room. When the confirm is
 * written, the next acknowledgement deletes as usual. */
static void test_pin_released(void **state)
{
    struct fx *f = *state;
    struct rlimit old;
    struct trib_outbox *ob = pin_then_fail(f, &old);
    struct trib_outbox_stats st;
    uint64_t s;

    assert_int_equal(trib_outbox_ack(ob, 1, 25, 25), 0);
    assert_int_equal(count_files(f->dir, ".seg"), 0);
    run_for(f, 1100); /* the retry writes to a new segment */
    trib_outbox_stats(ob, &st);
    assert_int_equal(st.unwritten, 0);
    assert_false(trib_outbox_full(ob));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    /* a pin released by a written confirm: gone at the next ack */
    assert_int_equal(trib_outbox_pin(ob), 26);
    put_meta(ob, "intent2");
    assert_int_equal(trib_outbox_flush(ob), 0);
    for (s = 26; s <= 30; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    trib_outbox_unpin(ob, 26);
    put_meta(ob, "confirm2");
    assert_int_equal(trib_outbox_flush(ob), 0);
    put_event(ob, 31);
    assert_int_equal(trib_outbox_flush(ob), 0);
    assert_int_equal(trib_outbox_ack(ob, 1, 31, 31), 0);
    close_ob(f, ob); /* closing: the acknowledged active segment goes */
    assert_int_equal(count_files(f->dir, ".seg"), 0);
    f->nmeta = 0;
    ob = open_ob(f, 2, 1 << 20, 1 << 20, 1 << 20);
    assert_int_equal(f->nmeta, 0);
    close_ob(f, ob);
}

static void test_lock(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 1 << 20, 1 << 20, 0), *ob2 = NULL;
    struct trib_outbox_opts o;

    memset(&o, 0, sizeof(o));
    o.dir = f->dir;
    o.boot_id = 2;
    o.segment_bytes = o.max_bytes = 1 << 20;
    o.fsync_ms = 10;
    assert_int_equal(trib_outbox_open(&f->loop, &o, &ob2), TRIB_EBUSY);
    assert_null(ob2);
    close_ob(f, ob);
}

static void test_fsync_runs(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 600, 1 << 20, 0);
    uint64_t s;

    /* rotations while fsyncs are running, then a close mid-flight */
    for (s = 1; s <= 40; s++) {
        put_event(ob, s);
        assert_int_equal(trib_outbox_flush(ob), 0);
        if (s % 4 == 0) {
            run_for(f, 6);
        }
        if (s % 10 == 0) {
            assert_int_equal(trib_outbox_ack(ob, 1, s - 2, s - 2), 0);
        }
    }
    check_events(ob, 1, 39, 40, 10);
    close_ob(f, ob);
}

/* Write-back intents ride in meta records: those confirmed in the same
 * boot are settled, the others come back when the boot is loaded. */
/* The descriptor number this process has open on 'path' (-1: none). */
static int fd_of(const char *path)
{
    char link[64], target[512];
    int fd;

    for (fd = 3; fd < 1024; fd++) {
        ssize_t n;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, path) == 0) {
                return fd;
            }
        }
    }
    return -1;
}

/* Lines of 'file' containing 'needle'. */
static int count_lines(const char *file, const char *needle)
{
    char line[2048];
    FILE *fp = fopen(file, "r");
    int n = 0;

    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strstr(line, needle) != NULL) {
            n++;
        }
    }
    fclose(fp);
    return n;
}

/* A failing fsync (here: the segment's descriptor replaced by a pipe, on
 * which fdatasync fails with EINVAL) is retried every fsync_ms: logged
 * once, not 200 times a second, and its recovery is logged. Appending
 * and reading go on meanwhile. */
static void test_fsync_failure(void **state)
{
    struct fx *f = *state;
    struct trib_outbox *ob = open_ob(f, 1, 1 << 20, 1 << 20, 1 << 20);
    char path[512], log[96];
    int fd, pipefd[2], saved_err, logfd, real;
    uint64_t s;

    for (s = 1; s <= 5; s++) {
        put_event(ob, s);
    }
    assert_int_equal(trib_outbox_flush(ob), 0);
    run_for(f, 20); /* the first fsync works */
    nth_segment(f->dir, 0, path, sizeof(path));
    fd = fd_of(path);
    assert_true(fd >= 0);
    assert_int_equal(pipe(pipefd), 0);
    /* the log (stderr) into a file for the next second */
    snprintf(log, sizeof(log), "%s.log", f->dir);
    logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(logfd >= 0);
    saved_err = dup(2);
    assert_true(dup2(logfd, 2) == 2);
    /* fsync fails from now on: every 5 ms for a second */
    assert_true(dup2(pipefd[0], fd) == fd);
    put_event(ob, 6); /* dirty again (written before the swap: page cache) */
    real = open(path, O_WRONLY | O_CLOEXEC);
    assert_true(real >= 0);
    assert_int_equal(close(fd), 0); /* written through the real file ... */
    assert_true(dup2(real, fd) == fd);
    assert_int_equal(trib_outbox_flush(ob), 0);
    assert_true(dup2(pipefd[0], fd) == fd); /* ... synced through a pipe */
    run_for(f, 1000);
    assert_false(trib_outbox_full(ob));
    check_events(ob, 1, 1, 6, 4);
    /* fsync works again */
    assert_true(dup2(real, fd) == fd);
    run_for(f, 50);
    assert_true(dup2(saved_err, 2) == 2);
    close(saved_err);
    close(logfd);
    close(real);
    close(pipefd[0]);
    close(pipefd[1]);
    assert_true(count_lines(log, "fsync of") >= 1);
    assert_true(count_lines(log, "fsync of") <= 2);
    assert_int_equal(count_lines(log, "outbox fsync works again"), 1);
    unlink(log);
    close_ob(f, ob);
}

static void test_intents(void **state)
{
    struct fx *f = *state;
    struct trib_agent a;
    struct trib_client c;
    struct trib_job jobs[700], *ptrs[700];
    struct trib_outbox_opts o;
    struct trib_outbox_boot boots[4];
    int i;

    memset(&a, 0, sizeof(a));
    memset(&c, 0, sizeof(c));
    c.id = "client-1";
    memset(jobs, 0, sizeof(jobs));
    for (i = 0; i < 700; i++) {
        jobs[i].id = 1000 + i;
        jobs[i].attempt = 1 + i % 3;
        jobs[i].outcome = i % 2 ? OUT_COMPLETE : OUT_SNOOZE;
        jobs[i].target_state = i % 2 ? JS_COMPLETED : JS_SCHEDULED;
        jobs[i].finalized_db = 1700000000000000 + i;
        jobs[i].next_run_db = 1700000001000000 + i;
        ptrs[i] = &jobs[i];
    }
    a.outbox = open_ob(f, 1, 1 << 20, 1 << 20, 1 << 20);
    /* batch 1 (600 jobs: two records) committed; batch 2 in flight */
    trib__intents_write(&a, &c, ptrs, 600);
    put_event(a.outbox, 1);
    trib__intents_confirm(&a, ptrs, 600);
    assert_int_equal(trib_outbox_flush(a.outbox), 0);
    trib__intents_write(&a, &c, ptrs + 600, 100);
    /* a failed statement is retried: the same intents again */
    trib__intents_write(&a, &c, ptrs + 600, 100);
    close_ob(f, a.outbox);

    /* the next boot collects the 100 unconfirmed ones */
    memset(&o, 0, sizeof(o));
    o.dir = f->dir;
    o.boot_id = 2;
    o.segment_bytes = o.max_bytes = 1 << 20;
    o.fsync_ms = 5;
    o.on_meta = trib__intents_on_meta;
    o.arg = &a;
    assert_int_equal(trib_outbox_open(&f->loop, &o, &a.outbox), 0);
    f->ob = a.outbox;
    assert_int_equal(trib__intents_count(a.intents), 100);
    /* held: even durable, boot 1's files stay until resolved */
    trib__intents_hold(&a);
    assert_int_equal(trib_outbox_ack(a.outbox, 1, 1, 1), 0);
    assert_int_equal(trib_outbox_boots(a.outbox, boots, 4), 2);
    assert_int_equal(count_files(f->dir, ".seg"), 1);
    /* settling: a confirm appended to boot 1's files, then released */
    {
        int64_t pairs[200];
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint8(&pk, 2);
        msgpack_pack_array(&pk, 200);
        for (i = 0; i < 100; i++) {
            pairs[2 * i] = jobs[600 + i].id;
            pairs[2 * i + 1] = jobs[600 + i].attempt;
            msgpack_pack_int64(&pk, pairs[2 * i]);
            msgpack_pack_int64(&pk, pairs[2 * i + 1]);
        }
        assert_int_equal(trib_outbox_append_meta(a.outbox, 1, sb.data, sb.size),
                         0);
        msgpack_sbuffer_destroy(&sb);
    }
    close_ob(f, a.outbox); /* still held: the files stay */
    trib__intents_free(a.intents);
    a.intents = NULL;
    assert_int_equal(trib_outbox_open(&f->loop, &o, &a.outbox), 0);
    f->ob = a.outbox;
    assert_int_equal(trib__intents_count(a.intents), 0); /* settled */
    assert_int_equal(trib_outbox_ack(a.outbox, 1, 1, 1), 0);
    assert_int_equal(trib_outbox_boots(a.outbox, boots, 4), 1);
    close_ob(f, a.outbox);
    trib__intents_free(a.intents);
    /* malformed meta records are refused, never trusted */
    {
        static const uint8_t bad1[] = {0x92, 0x01, 0x05}; /* no client */
        static const uint8_t bad2[] = {0x92, 0x02, 0x93, 1, 2, 3}; /* odd */
        static const uint8_t bad3[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
        assert_int_equal(trib__intents_decode(NULL, 1, bad1, sizeof(bad1)),
                         TRIB_EPROTO);
        assert_int_equal(trib__intents_decode(NULL, 1, bad2, sizeof(bad2)),
                         TRIB_EPROTO);
        assert_int_equal(trib__intents_decode(NULL, 1, bad3, sizeof(bad3)),
                         TRIB_EPROTO);
    }
}

/* --------------------------------------------------------- the parser */

static void test_parse(void **state)
{
    uint8_t buf[1024];
    struct trib__seg_info info;
    size_t len = TRIB_OUTBOX_HEADER, i;
    const char *p = "payload!";

    (void)state;
    trib__seg_header(buf, 42, 1234, 7);
    for (i = 0; i < 5; i++) {
        uint64_t seq = i == 2 ? 0 : 7 + i - (i > 2);
        trib__seg_record_header(buf + len, seq, p, 8);
        memcpy(buf + len + 16, p, 8);
        len += 24;
    }
    trib__seg_parse(buf, len, &info, NULL, NULL);
    assert_int_equal(info.status, TRIB_SEG_OK);
    assert_int_equal(info.boot_id, 42);
    assert_int_equal(info.started_at, 1234);
    assert_int_equal(info.first_seq, 7);
    assert_int_equal(info.last_seq, 10);
    assert_int_equal(info.nevents, 4);
    assert_int_equal(info.nmeta, 1);
    assert_int_equal(info.nindex, 1);
    assert_int_equal(info.valid_len, len);
    trib_free(info.index);
    /* torn: the last record cut */
    trib__seg_parse(buf, len - 3, &info, NULL, NULL);
    assert_int_equal(info.status, TRIB_SEG_TORN);
    assert_int_equal(info.valid_len, len - 24);
    assert_int_equal(info.last_seq, 9);
    trib_free(info.index);
    /* corrupt: a bad checksum in the 2nd record, good ones after it */
    buf[TRIB_OUTBOX_HEADER + 24 + 20] ^= 1;
    trib__seg_parse(buf, len, &info, NULL, NULL);
    assert_int_equal(info.status, TRIB_SEG_CORRUPT);
    assert_int_equal(info.valid_len, TRIB_OUTBOX_HEADER + 24);
    assert_int_equal(info.resync_at, TRIB_OUTBOX_HEADER + 48);
    trib_free(info.index);
    buf[TRIB_OUTBOX_HEADER + 24 + 20] ^= 1;
    /* a sequence that skips is not accepted */
    trib__seg_record_header(buf + TRIB_OUTBOX_HEADER + 24, 9, p, 8);
    trib__seg_parse(buf, len, &info, NULL, NULL);
    assert_int_equal(info.status, TRIB_SEG_CORRUPT);
    assert_int_equal(info.last_seq, 7);
    trib_free(info.index);
    /* headers */
    trib__seg_parse(buf, 39, &info, NULL, NULL);
    assert_int_equal(info.status, TRIB_SEG_BAD_HEADER);
    buf[9] ^= 1;
    trib__seg_parse(buf, len, &info, NULL, NULL);
    assert_int_equal(info.status, TRIB_SEG_BAD_HEADER);
    assert_null(info.index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_reopen_replay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_byte_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_after_durable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_confirm_unwritten, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pin_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_when_all_durable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_active_durable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intents, setup, teardown),
        cmocka_unit_test(test_parse),
    };

    trib_log_init("test", TRIB_LOG_INFO);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
