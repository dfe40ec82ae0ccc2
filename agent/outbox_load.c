/*
 * outbox_load.c -- opening an outbox directory: older boots' segment files
 * are read, checked record by record (outbox_seg.c), repaired where a
 * crash cut a write short, quarantined where something else changed them,
 * and handed to outbox.c for replay (outbox.h has the rules).
 */
#include "outbox_int.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_FILE_MAX (1ull << 31) /* larger files are not ours */

int trib__ob_mkdirs(const char *dir)
{
    char *p = trib_strdup(dir), *s;
    int rv = 0;

    for (s = p + 1; *s != '\0'; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                rv = -1;
            }
            *s = '/';
        }
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        rv = -1;
    }
    trib_free(p);
    return rv;
}

struct seg_name {
    uint64_t boot_id, first;
    char *path;
};

static int cmp_names(const void *a, const void *b)
{
    const struct seg_name *x = a, *y = b;

    if (x->boot_id != y->boot_id) {
        return x->boot_id < y->boot_id ? -1 : 1;
    }
    return x->first < y->first ? -1 : x->first > y->first;
}

/* "<16 hex>-<16 hex>.seg" */
static int parse_name(const char *name, uint64_t *boot, uint64_t *first)
{
    char *end;
    size_t i;

    if (strlen(name) != 37 || name[16] != '-' || strcmp(name + 33, ".seg")) {
        return 0;
    }
    for (i = 0; i < 33; i++) {
        if (i != 16 && !((name[i] >= '0' && name[i] <= '9') ||
                         (name[i] >= 'a' && name[i] <= 'f'))) {
            return 0;
        }
    }
    *boot = strtoull(name, &end, 16);
    *first = strtoull(name + 17, &end, 16);
    return *first != 0;
}

/* Moves bytes [from, end) of 'path' to a new quarantine file and cuts
 * them from 'path' (from == 0: the whole file moves). */
static void quarantine(const char *path, uint64_t from, const uint8_t *buf,
                       size_t len)
{
    char q[4096];
    int i, fd;

    for (i = 0; i < 1000; i++) {
        snprintf(q, sizeof(q), i ? "%s.corrupt.%d" : "%s.corrupt", path, i);
        if (access(q, F_OK) != 0) {
            break;
        }
    }
    if (from == 0) {
        if (rename(path, q) != 0) {
            TRIB_ERROR("AGT-OUTBOX", "cannot rename %s to %s: %s", path, q,
                       strerror(errno));
        }
        return;
    }
    fd = open(q, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf + from, len - from) != (ssize_t)(len - from)) {
        TRIB_ERROR("AGT-OUTBOX", "cannot write %s: %s", q, strerror(errno));
    }
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    if (truncate(path, (off_t)from) != 0) {
        TRIB_ERROR("AGT-OUTBOX", "cannot truncate %s: %s", path,
                   strerror(errno));
    }
}

static int read_whole(const char *path, uint8_t **buf, size_t *len)
{
    struct stat st;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    if ((uint64_t)st.st_size > SEG_FILE_MAX) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    *len = (size_t)st.st_size;
    *buf = trib_malloc(*len ? *len : 1);
    while (got < *len) {
        ssize_t r = read(fd, *buf + got, *len - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

struct meta_ctx {
    struct trib_outbox *ob;
    uint64_t boot_id;
};

static void meta_cb(void *arg, const void *payload, size_t len)
{
    struct meta_ctx *m = arg;

    if (m->ob->o.on_meta != NULL) {
        m->ob->o.on_meta(m->ob->o.arg, m->boot_id, payload, len);
    }
}

/* Loads one older boot's files (sorted by first sequence). */
static void load_boot(struct trib_outbox *ob, struct seg_name *f, size_t nf)
{
    struct ob_boot *b = TRIB_NEW(struct ob_boot);
    struct meta_ctx mc = {ob, f[0].boot_id};
    uint64_t expect = 0;
    int broken = 0;
    size_t i;

    b->pub.boot_id = f[0].boot_id;
    for (i = 0; i < nf; i++) {
        struct trib__seg_info info;
        struct ob_seg *s;
        uint8_t *buf = NULL;
        size_t len = 0;

        if (broken) {
            TRIB_ERROR("AGT-OUTBOX",
                       "%s: follows a corrupt or missing part of boot "
                       "%016" PRIx64 ": quarantined (not forwarded)",
                       f[i].path, b->pub.boot_id);
            quarantine(f[i].path, 0, NULL, 0);
            continue;
        }
        if (read_whole(f[i].path, &buf, &len) != 0) {
            TRIB_ERROR("AGT-OUTBOX", "cannot read %s: %s: quarantined",
                       f[i].path, strerror(errno));
            quarantine(f[i].path, 0, NULL, 0);
            broken = 1;
            continue;
        }
        trib__seg_parse(buf, len, &info, meta_cb, &mc);
        if (info.status != TRIB_SEG_BAD_HEADER &&
            (info.boot_id != f[i].boot_id || info.first_seq != f[i].first)) {
            info.status = TRIB_SEG_BAD_HEADER; /* renamed or copied */
        }
        if (info.status == TRIB_SEG_BAD_HEADER) {
            if (len < TRIB_OUTBOX_HEADER && i == nf - 1) {
                /* created, header never fully written: nothing in it */
                TRIB_WARN("AGT-OUTBOX", "%s: empty segment (%zu bytes) removed",
                          f[i].path, len);
                unlink(f[i].path);
            } else {
                TRIB_ERROR("AGT-OUTBOX",
                           "%s: invalid segment header: quarantined (not "
                           "forwarded)",
                           f[i].path);
                quarantine(f[i].path, 0, NULL, 0);
                broken = 1;
            }
            trib_free(info.index);
            trib_free(buf);
            continue;
        }
        if (expect != 0 && info.nevents > 0 && info.first_seq != expect) {
            TRIB_ERROR("AGT-OUTBOX",
                       "boot %016" PRIx64 ": events %" PRIu64 "..%" PRIu64
                       " are missing before %s",
                       b->pub.boot_id, expect, info.first_seq - 1, f[i].path);
            trib_free(info.index);
            trib_free(buf);
            broken = 1;
            i--; /* quarantine this file too */
            continue;
        }
        if (info.status == TRIB_SEG_TORN) {
            TRIB_WARN("AGT-OUTBOX",
                      "%s: cut a torn tail of %zu byte(s) at offset %" PRIu64
                      " (an interrupted write; last good event %" PRIu64 ")",
                      f[i].path, len - (size_t)info.valid_len, info.valid_len,
                      info.last_seq);
            if (truncate(f[i].path, (off_t)info.valid_len) != 0) {
                TRIB_ERROR("AGT-OUTBOX", "cannot truncate %s: %s", f[i].path,
                           strerror(errno));
            }
        } else if (info.status == TRIB_SEG_CORRUPT) {
            TRIB_ERROR("AGT-OUTBOX",
                       "%s: corrupt record at offset %" PRIu64
                       " (after event %" PRIu64 "): this boot's events from "
                       "there on are quarantined in %s.corrupt and later "
                       "files, and will not be forwarded",
                       f[i].path, info.valid_len, info.last_seq, f[i].path);
            quarantine(f[i].path, info.valid_len, buf, len);
            broken = 1;
        }
        trib_free(buf);
        if (info.nevents == 0 && info.nmeta == 0) {
            unlink(f[i].path); /* nothing in it */
            trib_free(info.index);
            continue;
        }
        /* A segment of meta records only stays until its boot is
         * resolved and released (trib_outbox_hold). */
        s = TRIB_NEW(struct ob_seg);
        s->path = f[i].path;
        f[i].path = NULL;
        s->first_seq = info.first_seq;
        s->last_seq = info.last_seq;
        s->size = info.valid_len;
        s->fd = -1;
        s->index = info.index;
        s->nindex = s->cap = info.nindex;
        if (b->tail != NULL) {
            b->tail->next = s;
        } else {
            b->segs = s;
            b->pub.started_at = info.started_at;
        }
        b->tail = s;
        ob->disk_bytes += s->size;
        if (info.nevents > 0) {
            expect = info.last_seq + 1;
        }
    }
    if (b->segs == NULL) {
        trib_free(b);
        return;
    }
    b->pub.first_seq = b->segs->first_seq;
    b->pub.last_seq = b->tail->last_seq;
    if (b->pub.last_seq < b->pub.first_seq - 1) {
        b->pub.last_seq = b->pub.first_seq - 1; /* meta records only */
    }
    b->pub.applied = b->pub.durable = b->pub.first_seq - 1;
    b->next = ob->boots;
    ob->boots = b;
}

static int cmp_boots(const void *a, const void *b)
{
    const struct ob_boot *x = *(struct ob_boot *const *)a;
    const struct ob_boot *y = *(struct ob_boot *const *)b;

    if (x->pub.started_at != y->pub.started_at) {
        return x->pub.started_at < y->pub.started_at ? -1 : 1;
    }
    return x->pub.boot_id < y->pub.boot_id ? -1 : 1;
}

/* Reads the directory; older boots end up in ob->boots, sorted. */
int trib__ob_scan(struct trib_outbox *ob)
{
    DIR *d = opendir(ob->dir);
    struct dirent *e;
    struct seg_name *names = NULL;
    struct ob_boot **v, *b;
    size_t n = 0, cap = 0, i, j, nb = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        uint64_t boot, first;
        if (!parse_name(e->d_name, &boot, &first) ||
            boot == ob->cur->pub.boot_id) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = trib_realloc(names, cap * sizeof(*names));
        }
        names[n].boot_id = boot;
        names[n].first = first;
        names[n].path = trib__ob_seg_path(ob->dir, boot, first);
        n++;
    }
    closedir(d);
    if (n > 0) {
        qsort(names, n, sizeof(*names), cmp_names);
    }
    for (i = 0; i < n; i = j) {
        for (j = i; j < n && names[j].boot_id == names[i].boot_id; j++) {
        }
        load_boot(ob, names + i, j - i);
    }
    for (i = 0; i < n; i++) {
        trib_free(names[i].path);
    }
    trib_free(names);
    /* replay order: by start time */
    for (b = ob->boots; b != NULL; b = b->next) {
        nb++;
    }
    if (nb > 1) {
        v = trib_malloc(nb * sizeof(*v));
        for (i = 0, b = ob->boots; b != NULL; b = b->next) {
            v[i++] = b;
        }
        qsort(v, nb, sizeof(*v), cmp_boots);
        for (i = 0; i + 1 < nb; i++) {
            v[i]->next = v[i + 1];
        }
        v[nb - 1]->next = NULL;
        ob->boots = v[0];
        trib_free(v);
    }
    return 0;
}
