/* fuzz_outbox.c -- libFuzzer: one segment file's bytes.
 *
 * 1. The parser never crashes and its verdict is consistent: the valid
 *    prefix re-parses as a clean file with the same events, the index
 *    points inside it.
 *    Meta records decode as write-back intents or are refused cleanly.
 * 2. The outbox's loader, given the bytes as a file of an earlier boot,
 *    never crashes, keeps only valid events (which read back), and leaves
 *    the directory in a state a second open accepts without complaint.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "outbox.h"
#include "trib_log.h"
#include "trib_mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static void on_meta(void *arg, const void *payload, size_t len)
{
    trib__intents_decode(arg, 1, payload, len);
}

static void check_parse(const uint8_t *data, size_t size)
{
    struct trib__seg_info a, b;
    struct trib_intents *in = trib__intents_new();
    size_t i;

    trib__seg_parse(data, size, &a, on_meta, in);
    trib__intents_free(in);
    if (a.status == TRIB_SEG_BAD_HEADER) {
        if (a.valid_len != 0 || a.nevents != 0 || a.index != NULL) {
            abort();
        }
        return;
    }
    if (a.valid_len < TRIB_OUTBOX_HEADER || a.valid_len > size ||
        (a.status == TRIB_SEG_OK) != (a.valid_len == size)) {
        abort();
    }
    if (a.status == TRIB_SEG_CORRUPT &&
        (a.resync_at <= a.valid_len || a.resync_at >= size)) {
        abort();
    }
    if (a.nindex !=
            (a.nevents + TRIB__SEG_INDEX_EVERY - 1) / TRIB__SEG_INDEX_EVERY ||
        a.last_seq != a.first_seq + a.nevents - 1) {
        abort();
    }
    for (i = 0; i < a.nindex; i++) {
        if (a.index[i] < TRIB_OUTBOX_HEADER || a.index[i] >= a.valid_len) {
            abort();
        }
    }
    trib__seg_parse(data, (size_t)a.valid_len, &b, NULL, NULL);
    if (b.status != TRIB_SEG_OK || b.nevents != a.nevents ||
        b.nmeta != a.nmeta || b.last_seq != a.last_seq) {
        abort();
    }
    trib_free(a.index);
    trib_free(b.index);
}

static void clean_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
}

static struct trib_outbox *open_ob(uv_loop_t *loop, uint64_t boot)
{
    struct trib_outbox_opts o;
    struct trib_outbox *ob = NULL;

    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.boot_id = boot;
    o.segment_bytes = 1 << 20;
    o.max_bytes = 1 << 24;
    o.fsync_ms = 1000;
    if (trib_outbox_open(loop, &o, &ob) != 0) {
        abort();
    }
    return ob;
}

static void check_load(const uint8_t *data, size_t size)
{
    uv_loop_t loop;
    struct trib_outbox *ob;
    struct trib_outbox_boot boots[4];
    struct trib__seg_info info;
    uint64_t boot = 1, first = 1;
    char path[512];
    int fd, n, keep, named = 0;

    if (size >= 32) { /* name the file after its header, if it has one */
        boot = le64(data + 8);
        first = le64(data + 24);
        named = 1;
    }
    if (boot == 2 || boot == 3 || first == 0) {
        boot = 1;
        first = 1;
        named = 0;
    }
    snprintf(path, sizeof(path), "%s/%016llx-%016llx.seg", dir,
             (unsigned long long)boot, (unsigned long long)first);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        abort();
    }
    close(fd);
    trib__seg_parse(data, size, &info, NULL, NULL);
    trib_free(info.index);
    if (!named) {
        info.status = TRIB_SEG_BAD_HEADER; /* the loader must refuse it */
    }

    uv_loop_init(&loop);
    ob = open_ob(&loop, 2);
    /* kept: a valid header and events or meta records (intents) */
    keep = info.status != TRIB_SEG_BAD_HEADER &&
           (info.nevents > 0 || info.nmeta > 0);
    n = trib_outbox_boots(ob, boots, 4);
    if (n != 1 + keep) {
        abort();
    }
    if (keep) {
        msgpack_sbuffer sb;
        uint64_t seq = boots[0].first_seq;
        size_t got;

        if (boots[0].boot_id != boot ||
            boots[0].last_seq !=
                (info.nevents > 0 ? info.last_seq : boots[0].first_seq - 1)) {
            abort();
        }
        msgpack_sbuffer_init(&sb);
        while (seq <= boots[0].last_seq) {
            msgpack_sbuffer_clear(&sb);
            if (trib_outbox_read(ob, boots[0].boot_id, seq, 7, 1 << 20, &sb,
                                 &got) != 0 ||
                got == 0) {
                abort(); /* a kept event must read back */
            }
            seq += got;
        }
        msgpack_sbuffer_destroy(&sb);
    }
    trib_outbox_close(ob);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* what the first open left behind opens cleanly */
    ob = open_ob(&loop, 3);
    if (trib_outbox_boots(ob, boots, 4) != n) {
        abort();
    }
    trib_outbox_close(ob);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    clean_dir();
}

static void remove_dir(void)
{
    clean_dir();
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/trib_fuzz_outbox_XXXXXX");
        if (mkdtemp(dir) == NULL) {
            abort();
        }
        atexit(remove_dir);
        trib_log_level = -1; /* corrupt files are logged: keep quiet */
    }
    check_parse(data, size);
    check_load(data, size);
    return 0;
}
