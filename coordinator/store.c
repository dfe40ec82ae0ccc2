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
 */
#include "store.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define SNAP_MAGIC   "TRIBSNAP"
#define WAL_MAGIC    "TRIBWAL1"
#define SNAP_VERSION 1
#define SNAP_HEAD    32 /* magic 8, version 4, crc 4, gen 8, len 8 */
#define WAL_HEAD     16 /* magic 8, gen 8                         */
#define REC_HEAD     8  /* len 4, crc 4                           */
#define REC_MAX      (TRIB_WIRE_FRAME_MAX + 256)

struct position {
    char *agent;
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
    uint64_t new_gen; /* snapshot: the log that follows   */
    int new_fd;       /* snapshot: opened by the work     */
    uint64_t wal_off; /* log size before this write       */
    int err;          /* errno of a failure, or 0         */
    int64_t took_us;
};

struct trib_store {
    uv_loop_t *loop;
    struct trib_view *view;
    char *dir;
    int lock_fd, wal_fd;
    uint64_t gen;
    struct trib_buf pending;
    struct work *busy; /* work in flight, or NULL */
    uv_timer_t tick;
    int64_t sync_ms, snapshot_ms;
    uint64_t snapshot_wal_bytes;
    uint64_t last_snapshot_ms;
    struct trib_store_stats st;
    struct trib_complain complain;
    void (*on_written)(void *arg);
    void *on_written_arg;
};

/* ---- Formats --------------------------------------------------------------
 */

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
static int replay_record(struct trib_store *s, const uint8_t *p, size_t n,
                         msgpack_zone *zone)
{
    struct trib_wire_msg m;
    struct trib_apply_result r;
    struct trib_str agent;
    int rv;

    if (n < 1 || (size_t)p[0] + 1 > n) {
        return TRIB_EPROTO;
    }
    agent.p = (const char *)p + 1;
    agent.n = p[0];
    msgpack_zone_clear(zone);
    rv = trib_wire_decode(p + 1 + p[0], n - 1 - p[0], zone, &m);
    if (rv != 0 || m.type != TRIB_MSG_EVENT_BATCH) {
        return TRIB_EPROTO;
    }
    rv = trib_view_apply(s->view, agent, &m.u.batch, trib_now_us(), &r);
    if (rv == TRIB_ERANGE) {
        TRIB_WARN("CRD-REPLAY",
                  "log record for %.*s skipped: sequence gap "
                  "(expected %" PRIu64 ")",
                  (int)agent.n, agent.p, r.expected_seq);
        return 0;
    }
    return rv;
}

/* Replays one log file; cuts a torn tail. 0 or TRIB_EIO/TRIB_EPROTO. */
static int replay_wal(struct trib_store *s, uint64_t gen, msgpack_zone *zone)
{
    char *p = wal_path(s, gen);
    uint8_t *data = NULL;
    size_t len = 0, off, good;
    int rv;

    rv = read_file(p, &data, &len);
    if (rv != 0) {
        TRIB_ERROR("CRD-REPLAY", "cannot read %s", p);
        goto out;
    }
    if (len < WAL_HEAD || memcmp(data, WAL_MAGIC, 8) != 0 ||
        get_u64(data + 8) != gen) {
        TRIB_ERROR("CRD-REPLAY", "%s has no valid header", p);
        rv = TRIB_EPROTO;
        goto out;
    }
    off = good = WAL_HEAD;
    while (off + REC_HEAD <= len) {
        uint32_t n = get_u32(data + off);

        if (n == 0 || n > REC_MAX || off + REC_HEAD + n > len ||
            crc(data + off + REC_HEAD, n) != get_u32(data + off + 4)) {
            break;
        }
        if (replay_record(s, data + off + REC_HEAD, n, zone) != 0) {
            TRIB_WARN("CRD-REPLAY",
                      "%s: undecodable record at byte %zu "
                      "skipped",
                      p, off);
        } else {
            s->st.replayed++;
        }
        off += REC_HEAD + n;
        good = off;
    }
    if (good < len) {
        TRIB_WARN("CRD-REPLAY",
                  "%s: cut a torn tail of %zu bytes at byte "
                  "%zu (a crash during a write; those batches were never "
                  "acknowledged as durable)",
                  p, len - good, good);
        if (truncate(p, (off_t)good) != 0) {
            rv = TRIB_EIO;
            goto out;
        }
    }
    s->st.wal_bytes = good;
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

/* Log generations in the directory, sorted. */
static size_t list_wals(const struct trib_store *s, uint64_t **out)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    uint64_t *g = NULL;
    size_t n = 0, cap = 0;

    while (d != NULL && (e = readdir(d)) != NULL) {
        unsigned long long v;
        char tail[8];

        if (sscanf(e->d_name, "wal-%16llx.%4s", &v, tail) == 2 &&
            strcmp(tail, "log") == 0) {
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

static int recover(struct trib_store *s)
{
    uint64_t snap_gen, *gens = NULL;
    size_t n, i;
    msgpack_zone zone;
    int rv;

    if ((rv = load_snapshot(s, &snap_gen)) != 0) {
        return rv;
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

/* Threadpool: the only code that touches the files while running. */
static void do_work(uv_work_t *req)
{
    struct work *w = req->data;
    struct trib_store *s = w->s;
    uint64_t t0 = trib_mono_us();
    char *tmp = NULL, *fin = NULL;
    uint8_t head[SNAP_HEAD];
    int fd = -1, err = 0;

    if (w->wal.len > 0 &&
        (err = write_all(s->wal_fd, w->wal.data, w->wal.len)) != 0) {
        /* Never leave half a record before records written later. */
        if (ftruncate(s->wal_fd, (off_t)w->wal_off) != 0) {
            TRIB_ERROR("CRD-WAL", "cannot cut a partial write: %s",
                       strerror(errno));
        }
        goto out;
    }
    if (fdatasync(s->wal_fd) != 0) {
        err = errno;
        goto out;
    }
    if (!w->snapshot) {
        goto out;
    }
    tmp = path_of(s, "snapshot.tmp");
    fin = path_of(s, "snapshot.bin");
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
    /* The new log exists before the snapshot that points to it. */
    w->new_fd = wal_create(s, w->new_gen);
    if (w->new_fd < 0) {
        err = -w->new_fd;
        goto out;
    }
    if (rename(tmp, fin) != 0) {
        err = errno;
        goto out;
    }
    err = fsync_dir(s->dir);
out:
    if (fd >= 0) {
        close(fd);
    }
    trib_free(tmp);
    trib_free(fin);
    w->err = err;
    w->took_us = (int64_t)(trib_mono_us() - t0);
}

static void after_work_inner(uv_work_t *req, int status);
static void on_tick(uv_timer_t *t);

static void after_work(uv_work_t *req, int status)
{
    struct trib_store *s = ((struct work *)req->data)->s;

    after_work_inner(req, status);
    /* A big backlog goes to disk at once, not at the next tick. */
    if (s->busy == NULL && s->pending.len >= (1u << 20) && !s->st.failing) {
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
    size_t i;

    s->busy = NULL;
    if (w->err != 0 || status != 0) {
        s->st.failing = 1;
        trib_complain(&s->complain, TRIB_LOG_ERROR, "CRD-WAL",
                      "writing the log in %s failed: %s; agents keep their "
                      "events until it works again",
                      s->dir, strerror(w->err ? w->err : EIO));
        /* Keep the records: put them back before what accumulated since
         * (records written twice replay harmlessly: dedupe). */
        trib_buf_append(&w->wal, s->pending.data, s->pending.len);
        trib_buf_reset(&s->pending);
        trib_buf_append(&s->pending, w->wal.data, w->wal.len);
        if (w->new_fd >= 0) {
            close(w->new_fd);
        }
        work_free(w);
        return;
    }
    s->st.failing = 0;
    trib_complain_release(&s->complain, "CRD-WAL",
                          "writing the log works "
                          "again");
    s->st.syncs++;
    s->st.last_sync_us = w->took_us;
    s->st.wal_bytes += w->wal.len;
    for (i = 0; i < w->npos; i++) {
        trib_view_set_durable(s->view, trib_str_c(w->pos[i].agent),
                              w->pos[i].boot, w->pos[i].applied);
    }
    if (w->snapshot) {
        char *old = wal_path(s, s->gen);

        close(s->wal_fd);
        unlink(old);
        trib_free(old);
        s->wal_fd = w->new_fd;
        s->gen = w->new_gen;
        s->st.wal_bytes = WAL_HEAD;
        s->st.snapshots++;
        TRIB_DEBUG("CRD-SNAP", "snapshot written (%zu bytes)", w->snap.size);
    }
    work_free(w);
}

/* Starts one piece of work: a plain group commit, or a snapshot. */
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
    if (snapshot) {
        w->snapshot = 1;
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
    if (snapshot_due(s) && (dirty || s->st.wal_bytes > WAL_HEAD)) {
        start_work(s, 1);
    } else if (dirty) {
        start_work(s, 0);
    }
}

void trib_store_append(struct trib_store *s, struct trib_str agent_id,
                       const void *frame, size_t len)
{
    uint8_t head[REC_HEAD] = {0};
    uint8_t alen = (uint8_t)(agent_id.n > 255 ? 255 : agent_id.n);
    uint32_t c;
    size_t start;

    /* Reserve the header, then checksum the payload in place. */
    start = s->pending.len;
    trib_buf_append(&s->pending, head, sizeof(head));
    trib_buf_append(&s->pending, &alen, 1);
    trib_buf_append(&s->pending, agent_id.p, alen);
    trib_buf_append(&s->pending, frame, len);
    c = crc(s->pending.data + start + REC_HEAD,
            s->pending.len - start - REC_HEAD);
    put_u32((uint8_t *)s->pending.data + start,
            (uint32_t)(s->pending.len - start - REC_HEAD));
    put_u32((uint8_t *)s->pending.data + start + 4, c);
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

    if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
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

void trib_store_on_written(struct trib_store *s, void (*fn)(void *arg),
                           void *arg)
{
    s->on_written = fn;
    s->on_written_arg = arg;
}

void trib_store_stats(const struct trib_store *s, struct trib_store_stats *st)
{
    *st = s->st;
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
