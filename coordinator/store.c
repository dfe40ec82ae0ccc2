/*
 * store.c -- write-ahead log + snapshots of the coordinator's view.
 *
 * Reading order: file formats (encode/parse helpers), start-up (lock,
 * snapshot, replay), the group commit (tick -> work -> after_work), the
 * snapshot, close.
 *
 * One piece of threadpool work is in flight at a time. The loop thread
 * fills 'pending'; a tick swaps it into the work item together with the
 * positions (agent, boot, applied) captured at that instant: everything
 * those positions cover is in the swapped buffer or already on disk, so
 * once the work has fdatasync()ed they are durable.
 *
 * Failures never leave garbage before later records: a failed write or
 * fdatasync cuts the log back to its last synced size (the records stay
 * in memory and are written again). If even that cut fails, the log is
 * "broken": nothing is appended to it any more, and the next work is a
 * snapshot that does not write the old log (the view image covers those
 * records) and continues in a new one.
 */
#include "store.h"
#include "store_int.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SNAP_MAGIC "TRIBSNAP"
/* TRIBWAL1 logs (u8 agent length) are still read; TRIBWAL2 (u16) holds
 * agent ids of TRIB_WIRE_STR_MAX (256) bytes, which a u8 cannot. */
#define WAL_MAGIC1   "TRIBWAL1"
#define WAL_MAGIC    "TRIBWAL2"
#define SNAP_VERSION 1
#define SNAP_HEAD    32 /* magic 8, version 4, crc 4, gen 8, len 8 */
#define WAL_HEAD     TRIB__WAL_HEAD
#define REC_HEAD     8 /* len 4, crc 4                           */
#define REC_MAX      (TRIB_WIRE_FRAME_MAX + 2 + TRIB_WIRE_STR_MAX)

struct position {
    char *agent;
    uint32_t agent_n;
    uint64_t boot, applied;
};

struct work {
    uv_work_t req;
    struct trib_store *s;
    struct trib_buf wal;  /* records to append                */
    struct position *pos; /* positions durable once done      */
    size_t npos, cappos;
    msgpack_sbuffer snap; /* view image (snapshot work only)  */
    int snapshot;
    int skip_wal;     /* the log is broken: only the snapshot */
    uint64_t new_gen; /* snapshot: the log that follows   */
    int new_fd;       /* snapshot: opened by the work     */
    uint64_t wal_off; /* log size before this write       */
    /* What the work achieved (read by after_work): */
    int wal_ok;  /* records written and fdatasync()ed   */
    int renamed; /* snapshot.bin now names the new image */
    int broken;  /* a failed write could not be cut off  */
    int err;     /* errno of the first failure, or 0    */
    int64_t took_us;
};

struct trib_store {
    uv_loop_t *loop;
    struct trib_view *view;
    char *dir;
    int lock_fd, wal_fd;
    uint64_t gen;
    int broken; /* never append to wal_fd again (see the top) */
    int wal_failing, snap_failing;
    struct trib_buf pending;
    struct work *busy; /* work in flight, or NULL */
    uv_timer_t tick;
    int64_t sync_ms, snapshot_ms;
    uint64_t snapshot_wal_bytes;
    uint64_t last_snapshot_ms;
    struct trib_store_stats st;
    struct trib_complain complain, snap_complain;
    void (*on_written)(void *arg);
    void *on_written_arg;
};

/* ---- Formats --------------------------------------------------------------
 */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t crc(const void *p, size_t n)
{
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

static char *path_of(const struct trib_store *s, const char *name)
{
    struct trib_buf b;

    trib_buf_init(&b);
    trib_buf_printf(&b, "%s/%s", s->dir, name);
    return trib_buf_steal(&b);
}

static char *wal_path(const struct trib_store *s, uint64_t gen)
{
    char name[40];

    snprintf(name, sizeof(name), "wal-%016" PRIx64 ".log", gen);
    return path_of(s, name);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int err = 0;

    if (fd < 0) {
        return errno;
    }
    if (fsync(fd) != 0) {
        err = errno;
    }
    close(fd);
    return err;
}

/* fsync()s a file by name. 0 or errno. */
static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int err = 0;

    if (fd < 0) {
        return errno;
    }
    if (fsync(fd) != 0) {
        err = errno;
    }
    close(fd);
    return err;
}

/* Creates wal-<gen>.log with its header (and syncs it). fd or -errno. */
static int wal_create(const struct trib_store *s, uint64_t gen)
{
    char *p = wal_path(s, gen);
    uint8_t head[WAL_HEAD];
    int fd, err;

    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    trib_free(p);
    if (fd < 0) {
        return -errno;
    }
    memcpy(head, WAL_MAGIC, 8);
    put_u64(head + 8, gen);
    if ((err = write_all(fd, head, sizeof(head))) != 0 ||
        (fdatasync(fd) != 0 && (err = errno) != 0) ||
        (err = fsync_dir(s->dir)) != 0) {
        close(fd);
        return -err;
    }
    return fd;
}

/* ---- Start-up ---------------------------------------------------------------
 */

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct trib_buf b;
    char chunk[65536];
    size_t n;

    if (f == NULL) {
        return errno == ENOENT ? TRIB_ENOENT : TRIB_EIO;
    }
    trib_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        trib_buf_append(&b, chunk, n);
    }
    if (ferror(f)) {
        fclose(f);
        trib_buf_fini(&b);
        return TRIB_EIO;
    }
    fclose(f);
    *len = b.len;
    *out = (uint8_t *)trib_buf_steal(&b);
    return 0;
}

static int load_snapshot(struct trib_store *s, uint64_t *gen)
{
    char *p = path_of(s, "snapshot.bin");
    uint8_t *data = NULL;
    size_t len = 0;
    uint64_t body;
    int rv;

    *gen = 0;
    rv = read_file(p, &data, &len);
    if (rv == TRIB_ENOENT) {
        rv = 0;
        goto out;
    }
    if (rv != 0) {
        TRIB_ERROR("CRD-SNAP", "cannot read %s", p);
        goto out;
    }
    rv = TRIB_EPROTO;
    if (len < SNAP_HEAD || memcmp(data, SNAP_MAGIC, 8) != 0) {
        TRIB_ERROR("CRD-SNAP", "%s is not a Tributary snapshot", p);
        goto out;
    }
    if (get_u32(data + 8) > SNAP_VERSION) {
        TRIB_ERROR("CRD-SNAP",
                   "%s was written by a newer coordinator "
                   "(format %u)",
                   p, get_u32(data + 8));
        rv = TRIB_EVERSION;
        goto out;
    }
    body = get_u64(data + 24);
    if (body != len - SNAP_HEAD ||
        crc(data + SNAP_HEAD, (size_t)body) != get_u32(data + 12)) {
        TRIB_ERROR("CRD-SNAP",
                   "%s is damaged (length or checksum); move "
                   "the data directory away to start empty",
                   p);
        goto out;
    }
    *gen = get_u64(data + 16);
    rv = trib_view_load(s->view, data + SNAP_HEAD, (size_t)body);
    if (rv != 0) {
        TRIB_ERROR("CRD-SNAP", "%s: cannot load the view image: %s", p,
                   trib_strerror(rv));
    }
out:
    trib_free(data);
    trib_free(p);
    return rv;
}

/* Applies one log record's payload. 0 or TRIB_EPROTO. */
static int replay_record(struct trib_view *v, const uint8_t *p, size_t n,
                         size_t alen_bytes, msgpack_zone *zone)
{
    struct trib_wire_msg m;
    struct trib_apply_result r;
    struct trib_str agent;
    size_t alen;
    int rv;

    if (n < alen_bytes) {
        return TRIB_EPROTO;
    }
    alen = alen_bytes == 1 ? p[0] : (size_t)p[0] | (size_t)p[1] << 8;
    if (alen == 0 || alen > TRIB_WIRE_STR_MAX || alen_bytes + alen > n) {
        return TRIB_EPROTO;
    }
    agent.p = (const char *)p + alen_bytes;
    agent.n = (uint32_t)alen;
    msgpack_zone_clear(zone);
    rv = trib_wire_decode(p + alen_bytes + alen, n - alen_bytes - alen, zone,
                          &m);
    if (rv != 0 || m.type != TRIB_MSG_EVENT_BATCH) {
        return TRIB_EPROTO;
    }
    rv = trib_view_apply(v, agent, &m.u.batch, trib_now_us(), &r);
    if (rv == TRIB_ERANGE) {
        TRIB_WARN("CRD-REPLAY",
                  "log record for %.*s skipped: sequence gap "
                  "(expected %" PRIu64 ")",
                  (int)agent.n, agent.p, r.expected_seq);
        return 0;
    }
    return rv;
}

int trib__store_replay_buf(struct trib_view *v, const uint8_t *data, size_t len,
                           uint64_t gen, msgpack_zone *zone, const char *name,
                           struct trib__wal_replay *out)
{
    size_t off, alen_bytes;

    memset(out, 0, sizeof(*out));
    if (len < WAL_HEAD) {
        out->headless = 1; /* created, header never written: no records */
        return 0;
    }
    if (memcmp(data, WAL_MAGIC, 8) == 0) {
        alen_bytes = 2;
    } else if (memcmp(data, WAL_MAGIC1, 8) == 0) {
        alen_bytes = 1;
    } else {
        return TRIB_EPROTO;
    }
    if (get_u64(data + 8) != gen) {
        return TRIB_EPROTO;
    }
    off = out->good = WAL_HEAD;
    while (len - off >= REC_HEAD) {
        uint32_t n = get_u32(data + off);

        if (n == 0 || n > REC_MAX || n > len - off - REC_HEAD ||
            crc(data + off + REC_HEAD, n) != get_u32(data + off + 4)) {
            break;
        }
        if (replay_record(v, data + off + REC_HEAD, n, alen_bytes, zone) != 0) {
            TRIB_WARN("CRD-REPLAY",
                      "%s: undecodable record at byte %zu "
                      "skipped",
                      name, off);
            out->skipped++;
        } else {
            out->replayed++;
        }
        off += REC_HEAD + n;
        out->good = off;
    }
    return 0;
}

/* Replays one log file; cuts a torn tail; syncs the file (what a killed
 * coordinator wrote may still be only in the page cache, and everything
 * replayed is about to be called durable). 0 or TRIB_EIO/TRIB_EPROTO. */
static int replay_wal(struct trib_store *s, uint64_t gen, msgpack_zone *zone)
{
    char *p = wal_path(s, gen);
    uint8_t *data = NULL;
    size_t len = 0;
    struct trib__wal_replay r;
    int rv, err;

    rv = read_file(p, &data, &len);
    if (rv != 0) {
        TRIB_ERROR("CRD-REPLAY", "cannot read %s", p);
        goto out;
    }
    rv = trib__store_replay_buf(s->view, data, len, gen, zone, p, &r);
    if (rv != 0) {
        TRIB_ERROR("CRD-REPLAY", "%s has no valid header", p);
        goto out;
    }
    if (r.headless) {
        /* A crash while the log was being created: it holds nothing. */
        TRIB_WARN("CRD-REPLAY", "%s: %zu bytes, no header: ignored", p, len);
        goto out;
    }
    s->st.replayed += r.replayed;
    if (r.good < len) {
        TRIB_WARN("CRD-REPLAY",
                  "%s: cut a torn tail of %zu bytes at byte "
                  "%zu (a crash during a write; those batches were never "
                  "acknowledged as durable)",
                  p, len - r.good, r.good);
        if (truncate(p, (off_t)r.good) != 0) {
            TRIB_ERROR("CRD-REPLAY", "cannot cut %s: %s", p, strerror(errno));
            rv = TRIB_EIO;
            goto out;
        }
    }
    if ((err = fsync_path(p)) != 0) {
        TRIB_ERROR("CRD-REPLAY", "cannot sync %s: %s", p, strerror(err));
        rv = TRIB_EIO;
        goto out;
    }
    s->st.wal_bytes = r.good;
out:
    trib_free(data);
    trib_free(p);
    return rv;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Log generations in the directory, sorted. Any thread. */
static size_t list_wals(const struct trib_store *s, uint64_t **out)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    uint64_t *g = NULL;
    size_t n = 0, cap = 0;

    while (d != NULL && (e = readdir(d)) != NULL) {
        unsigned long long v;
        char tail[8], canon[40];

        /* Only the names wal_path() writes: a stray "wal-1.log" would
         * otherwise be read as a file it is not. */
        if (sscanf(e->d_name, "wal-%16llx.%4s", &v, tail) == 2 &&
            strcmp(tail, "log") == 0 &&
            snprintf(canon, sizeof(canon), "wal-%016llx.log", v) > 0 &&
            strcmp(canon, e->d_name) == 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                g = trib_realloc(g, cap * sizeof(*g));
            }
            g[n++] = v;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (n > 1) {
        qsort(g, n, sizeof(*g), cmp_u64);
    }
    *out = g;
    return n;
}

/* Deletes every log older than 'gen' (covered by a synced snapshot). */
static void delete_wals_before(const struct trib_store *s, uint64_t gen)
{
    uint64_t *gens = NULL;
    size_t n = list_wals(s, &gens), i;

    for (i = 0; i < n && gens[i] < gen; i++) {
        char *p = wal_path(s, gens[i]);

        unlink(p);
        trib_free(p);
    }
    trib_free(gens);
}

static int recover(struct trib_store *s)
{
    uint64_t snap_gen, *gens = NULL;
    size_t n, i;
    msgpack_zone zone;
    int rv, err;

    if ((rv = load_snapshot(s, &snap_gen)) != 0) {
        return rv;
    }
    /* A coordinator killed after renaming a snapshot but before syncing the
     * directory: make that rename durable before deleting the logs it
     * covers (else a power cut could bring back the old snapshot without
     * them). */
    if ((err = fsync_dir(s->dir)) != 0) {
        TRIB_ERROR("CRD-DATADIR", "cannot sync %s: %s", s->dir, strerror(err));
        return TRIB_EIO;
    }
    msgpack_zone_init(&zone, 65536);
    n = list_wals(s, &gens);
    s->gen = snap_gen;
    for (i = 0; i < n && rv == 0; i++) {
        if (gens[i] < snap_gen) {
            char *p = wal_path(s, gens[i]);

            unlink(p); /* covered by the snapshot */
            trib_free(p);
            continue;
        }
        rv = replay_wal(s, gens[i], &zone);
        s->gen = gens[i];
    }
    msgpack_zone_destroy(&zone);
    trib_free(gens);
    if (rv != 0) {
        return rv;
    }
    trib_view_all_durable(s->view);
    /* Continue in a fresh log: never append after a cut tail. */
    s->gen++;
    s->wal_fd = wal_create(s, s->gen);
    if (s->wal_fd < 0) {
        TRIB_ERROR("CRD-WAL", "cannot create a log in %s: %s", s->dir,
                   strerror(-s->wal_fd));
        return TRIB_EIO;
    }
    s->st.wal_bytes = WAL_HEAD;
    return 0;
}

/* ---- Group commit and snapshots --------------------------------------------
 */

static void capture(void *arg, struct trib_str agent, uint64_t boot,
                    uint64_t applied)
{
    struct work *w = arg;

    if (w->npos == w->cappos) {
        w->cappos = w->cappos ? w->cappos * 2 : 16;
        w->pos = trib_realloc(w->pos, w->cappos * sizeof(*w->pos));
    }
    w->pos[w->npos].agent = trib_strndup(agent.p, agent.n);
    w->pos[w->npos].agent_n = agent.n;
    w->pos[w->npos].boot = boot;
    w->pos[w->npos].applied = applied;
    w->npos++;
}

static void work_free(struct work *w)
{
    size_t i;

    for (i = 0; i < w->npos; i++) {
        trib_free(w->pos[i].agent);
    }
    trib_free(w->pos);
    trib_buf_fini(&w->wal);
    msgpack_sbuffer_destroy(&w->snap);
    trib_free(w);
}

/* Cuts the log back to what was synced before this work (so a retry never
 * appends after half a record or after pages whose write-back failed);
 * if that fails, the log is broken. */
static void cut_back(struct work *w)
{
    if (ftruncate(w->s->wal_fd, (off_t)w->wal_off) != 0) {
        TRIB_ERROR("CRD-WAL",
                   "cannot cut a failed write: %s; continuing in a "
                   "new log after a snapshot",
                   strerror(errno));
        w->broken = 1;
    }
}

/* The snapshot: image to snapshot.tmp (fsync), the next log created (it
 * exists before the snapshot that points to it), rename, directory fsync,
 * then the logs it covers are deleted. Threadpool. 0 or errno. */
static int write_snapshot(struct work *w)
{
    struct trib_store *s = w->s;
    char *tmp = path_of(s, "snapshot.tmp"), *fin = path_of(s, "snapshot.bin");
    uint8_t head[SNAP_HEAD];
    int fd, err = 0;

    memcpy(head, SNAP_MAGIC, 8);
    put_u32(head + 8, SNAP_VERSION);
    put_u32(head + 12, crc(w->snap.data, w->snap.size));
    put_u64(head + 16, w->new_gen);
    put_u64(head + 24, w->snap.size);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = errno;
        goto out;
    }
    if ((err = write_all(fd, head, sizeof(head))) != 0 ||
        (err = write_all(fd, w->snap.data, w->snap.size)) != 0) {
        goto out;
    }
    if (fsync(fd) != 0) {
        err = errno;
        goto out;
    }
    w->new_fd = wal_create(s, w->new_gen);
    if (w->new_fd < 0) {
        err = -w->new_fd;
        goto out;
    }
    if (rename(tmp, fin) != 0) {
        err = errno;
        goto out;
    }
    /* From here on, records must go to the new log: a restart that finds
     * this snapshot deletes the older logs. */
    w->renamed = 1;
    if ((err = fsync_dir(s->dir)) != 0) {
        goto out; /* keep the old logs: the rename may not be on disk */
    }
    delete_wals_before(s, w->new_gen);
out:
    if (fd >= 0) {
        close(fd);
    }
    trib_free(tmp);
    trib_free(fin);
    return err;
}

/* Threadpool: the only code that touches the files while running. */
static void do_work(uv_work_t *req)
{
    struct work *w = req->data;
    struct trib_store *s = w->s;
    uint64_t t0 = trib_mono_us();
    int err = 0;

    if (!w->skip_wal) {
        if (w->wal.len > 0 &&
            (err = write_all(s->wal_fd, w->wal.data, w->wal.len)) != 0) {
            cut_back(w);
            goto out;
        }
        if (fdatasync(s->wal_fd) != 0) {
            err = errno;
            cut_back(w);
            goto out;
        }
        w->wal_ok = 1;
    }
    if (w->snapshot) {
        err = write_snapshot(w);
    }
out:
    w->err = err;
    w->took_us = (int64_t)(trib_mono_us() - t0);
}

/* Logs failures and recoveries, log and snapshots apart (a snapshot may
 * fail while the log works), and sets st.failing. */
static void report(struct trib_store *s, const struct work *w, int covered)
{
    int wal_failed = !w->skip_wal && !w->wal_ok;

    if (wal_failed) {
        s->wal_failing = 1;
        trib_complain(&s->complain, TRIB_LOG_ERROR, "CRD-WAL",
                      "writing the log in %s failed: %s; agents keep their "
                      "events until it works again",
                      s->dir, strerror(w->err));
    } else if (covered) {
        s->wal_failing = 0;
        trib_complain_release(&s->complain, "CRD-WAL",
                              "writing the log works again");
    }
    if (w->snapshot && !wal_failed) {
        if (w->err != 0) {
            s->snap_failing = 1;
            trib_complain(&s->snap_complain, TRIB_LOG_ERROR, "CRD-SNAP",
                          "writing a snapshot in %s failed: %s; the log "
                          "keeps growing until it works (nothing "
                          "acknowledged is lost)",
                          s->dir, strerror(w->err));
        } else {
            s->snap_failing = 0;
            trib_complain_release(&s->snap_complain, "CRD-SNAP",
                                  "writing snapshots works again");
        }
    }
    s->st.failing = s->wal_failing || s->snap_failing;
}

static void after_work_inner(uv_work_t *req, int status);
static void on_tick(uv_timer_t *t);

static void after_work(uv_work_t *req, int status)
{
    struct trib_store *s = ((struct work *)req->data)->s;

    after_work_inner(req, status);
    /* A big backlog goes to disk at once, not at the next tick. */
    if (s->busy == NULL && s->pending.len >= (1u << 20) && !s->wal_failing) {
        on_tick(&s->tick);
    }
    if (s->on_written != NULL) {
        s->on_written(s->on_written_arg);
    }
}

static void after_work_inner(uv_work_t *req, int status)
{
    struct work *w = req->data;
    struct trib_store *s = w->s;
    int covered;
    size_t i;

    s->busy = NULL;
    if (status != 0 && w->err == 0) {
        w->err = EIO; /* the work did not run */
    }
    if (w->broken) {
        s->broken = 1;
    }
    /* The captured positions are durable when their records are synced in
     * the log, or (broken log) when the whole snapshot succeeded. */
    covered = w->skip_wal ? w->snapshot && w->err == 0 : w->wal_ok;
    if (covered) {
        for (i = 0; i < w->npos; i++) {
            struct trib_str id = {w->pos[i].agent, w->pos[i].agent_n};

            trib_view_set_durable(s->view, id, w->pos[i].boot,
                                  w->pos[i].applied);
        }
        s->st.syncs++;
        s->st.last_sync_us = w->took_us;
        if (!w->skip_wal) {
            s->st.wal_bytes += w->wal.len;
        }
    } else {
        /* Keep the records: put them back before what accumulated since.
         * They are written again (a copy already on disk replays
         * harmlessly: dedupe). */
        trib_buf_append(&w->wal, s->pending.data, s->pending.len);
        trib_buf_reset(&s->pending);
        trib_buf_append(&s->pending, w->wal.data, w->wal.len);
    }
    if (w->renamed) {
        close(s->wal_fd);
        s->wal_fd = w->new_fd;
        s->gen = w->new_gen;
        s->st.wal_bytes = WAL_HEAD;
        s->broken = 0;
        if (w->err == 0) {
            s->st.snapshots++;
            TRIB_DEBUG("CRD-SNAP", "snapshot written (%zu bytes)",
                       w->snap.size);
        }
    } else if (w->new_fd >= 0) {
        close(w->new_fd);
    }
    report(s, w, covered);
    work_free(w);
}

/* Starts one piece of work: a plain group commit, or a snapshot (always a
 * snapshot when the log is broken). */
static void start_work(struct trib_store *s, int snapshot)
{
    struct work *w = TRIB_NEW(struct work);

    w->s = s;
    w->req.data = w;
    w->new_fd = -1;
    w->wal_off = s->st.wal_bytes;
    msgpack_sbuffer_init(&w->snap);
    trib_buf_init(&w->wal);
    trib_view_each_undurable(s->view, capture, w);
    /* Swap: the positions above are covered by these records. */
    w->wal = s->pending;
    trib_buf_init(&s->pending);
    if (snapshot || s->broken) {
        w->snapshot = 1;
        w->skip_wal = s->broken;
        w->new_gen = s->gen + 1;
        trib_view_save(s->view, &w->snap);
        s->last_snapshot_ms = uv_now(s->loop);
    }
    s->busy = w;
    if (uv_queue_work(s->loop, &w->req, do_work, after_work) != 0) {
        s->busy = NULL;
        trib_buf_append(&w->wal, s->pending.data, s->pending.len);
        s->pending = w->wal;
        trib_buf_init(&w->wal);
        work_free(w);
    }
}

static int snapshot_due(const struct trib_store *s)
{
    return uv_now(s->loop) - s->last_snapshot_ms >= (uint64_t)s->snapshot_ms ||
           s->st.wal_bytes >= s->snapshot_wal_bytes;
}

static void on_tick(uv_timer_t *t)
{
    struct trib_store *s = t->data;
    int dirty = s->pending.len > 0;

    if (s->busy != NULL) {
        return;
    }
    if (s->broken ||
        (snapshot_due(s) && (dirty || s->st.wal_bytes > WAL_HEAD))) {
        start_work(s, 1);
    } else if (dirty) {
        start_work(s, 0);
    }
}

void trib_store_append(struct trib_store *s, struct trib_str agent_id,
                       const void *frame, size_t len)
{
    uint8_t head[REC_HEAD + 2] = {0};
    uint16_t alen =
        (uint16_t)(agent_id.n > TRIB_WIRE_STR_MAX ? TRIB_WIRE_STR_MAX
                                                  : agent_id.n);
    uint32_t c;
    size_t start;

    /* Reserve the header, then checksum the payload in place. */
    start = s->pending.len;
    put_u16(head + REC_HEAD, alen);
    trib_buf_append(&s->pending, head, sizeof(head));
    trib_buf_append(&s->pending, agent_id.p, alen);
    trib_buf_append(&s->pending, frame, len);
    c = crc(s->pending.data + start + REC_HEAD,
            s->pending.len - start - REC_HEAD);
    put_u32((uint8_t *)s->pending.data + start,
            (uint32_t)(s->pending.len - start - REC_HEAD));
    put_u32((uint8_t *)s->pending.data + start + 4, c);
    /* Under load, write as soon as a megabyte is waiting rather than at
     * the next tick: the disk works in parallel with ingest. */
    if (s->busy == NULL && s->pending.len >= (1u << 20) && !s->wal_failing) {
        on_tick(&s->tick);
    }
}

/* ---- Open / close
 * ------------------------------------------------------------- */

int trib_store_open(uv_loop_t *loop, const struct trib_store_opts *o,
                    struct trib_view *v, struct trib_store **out)
{
    struct trib_store *s = TRIB_NEW(struct trib_store);
    char *lock = NULL;
    int rv;

    s->loop = loop;
    s->view = v;
    s->dir = trib_strdup(o->dir);
    s->lock_fd = s->wal_fd = -1;
    s->sync_ms = o->sync_ms > 0 ? o->sync_ms : 20;
    s->snapshot_ms = o->snapshot_ms > 0 ? o->snapshot_ms : 60000;
    s->snapshot_wal_bytes =
        o->snapshot_wal_bytes > 0 ? o->snapshot_wal_bytes : 256u << 20;
    trib_buf_init(&s->pending);

    if (mkdir(s->dir, 0700) == 0) {
        /* A new directory: its entry in the parent must be on disk too. */
        char *parent = trib_strdup(s->dir);
        int err = fsync_dir(dirname(parent));

        if (err != 0) {
            TRIB_WARN("CRD-DATADIR", "cannot sync the parent of %s: %s", s->dir,
                      strerror(err));
        }
        trib_free(parent);
    } else if (errno != EEXIST) {
        TRIB_ERROR("CRD-DATADIR", "cannot create data directory %s: %s", s->dir,
                   strerror(errno));
        rv = TRIB_EIO;
        goto fail;
    }
    lock = path_of(s, "LOCK");
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        TRIB_ERROR("CRD-DATADIR", "cannot open %s: %s", lock, strerror(errno));
        rv = TRIB_EIO;
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        TRIB_ERROR("CRD-DATADIR",
                   "data directory %s is in use by another "
                   "coordinator",
                   s->dir);
        rv = TRIB_EBUSY;
        goto fail;
    }
    if ((rv = recover(s)) != 0) {
        goto fail;
    }
    s->last_snapshot_ms = uv_now(loop);
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, on_tick, (uint64_t)s->sync_ms,
                   (uint64_t)s->sync_ms);
    trib_free(lock);
    *out = s;
    return 0;
fail:
    trib_free(lock);
    if (s->wal_fd >= 0) {
        close(s->wal_fd);
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
    trib_buf_fini(&s->pending);
    trib_free(s->dir);
    trib_free(s);
    return rv;
}

size_t trib_store_backlog(const struct trib_store *s)
{
    return s->pending.len + (s->busy != NULL ? s->busy->wal.len : 0);
}

size_t trib_store_unwritten(const struct trib_store *s)
{
    return s->pending.len;
}

void trib_store_on_written(struct trib_store *s, void (*fn)(void *arg),
                           void *arg)
{
    s->on_written = fn;
    s->on_written_arg = arg;
}

void trib_store_stats(const struct trib_store *s, struct trib_store_stats *st)
{
    *st = s->st;
    st->busy = s->busy != NULL;
}

static void free_store(uv_handle_t *h)
{
    trib_free(h->data);
}

int trib_store_close(struct trib_store *s)
{
    int failing;

    if (s == NULL) {
        return 0;
    }
    uv_timer_stop(&s->tick);
    /* Finish what is in flight, then a final snapshot. */
    while (s->busy != NULL) {
        uv_run(s->loop, UV_RUN_ONCE);
    }
    start_work(s, 1);
    while (s->busy != NULL) {
        uv_run(s->loop, UV_RUN_ONCE);
    }
    failing = s->st.failing;
    close(s->wal_fd);
    close(s->lock_fd); /* releases the flock */
    trib_buf_fini(&s->pending);
    trib_free(s->dir);
    s->tick.data = s;
    uv_close((uv_handle_t *)&s->tick, free_store);
    return failing ? TRIB_EIO : 0;
}
