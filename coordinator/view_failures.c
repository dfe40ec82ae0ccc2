/*
 * view_failures.c -- failure groups: failures grouped by (job kind,
 * normalised error text), so "card 1234 declined" and "card 5678
 * declined" are one line of `tributary failures`.
 *
 * Normalisation (docs/CONTROL.md, failures): hexadecimal/UUID-like tokens
 * (8 or more hex digits, at least one of them a letter, '-' allowed
 * between them, optional 0x prefix, delimited by non-alphanumerics) become
 * "X"; remaining digit runs become "N"; whitespace runs become one space
 * (leading and trailing whitespace dropped); the result is cut to
 * VIEW_ERR_NORM_MAX bytes without splitting a UTF-8 sequence.
 *
 * The table is bounded by conf.max_failures: failures of a new group once
 * it is full are only counted ("other").
 */
#include <stdlib.h>
#include <string.h>

#include "trib_errtext.h"
#include "trib_mem.h"
#include "view_impl.h"

/* ------------------------------------------------------- normalising */

/* The normaliser lives in common/ (trib_errtext.c), shared with the CLI's
 * stress report; the coordinator keeps its name for it. */
_Static_assert(VIEW_ERR_NORM_MAX == TRIB_ERRTEXT_MAX,
               "the view stores trib_errtext_normalise's output");

size_t trib__view_err_normalise(const char *err, size_t n, char *out)
{
    return trib_errtext_normalise(err, n, out);
}

/* ------------------------------------------------------------ groups */

struct fkey {
    struct trib_str kind, error;
};

static int fail_eq(const void *item, const void *key)
{
    const struct vfail *f = item;
    const struct fkey *k = key;

    return trib__vstr_eq(f->kind, k->kind) && trib__vstr_eq(f->error, k->error);
}

static uint64_t fail_hash(struct trib_str kind, struct trib_str error)
{
    return trib__view_hash(error.p, error.n,
                           trib__view_hash(kind.p, kind.n, 7));
}

struct vfail *trib__view_fail_new(struct trib_view *v, const char *kind,
                                  const char *error)
{
    struct vfail *f = trib__view_alloc(v, sizeof(*f));
    struct trib_str k = {kind, trib__vstr_len(kind)};
    struct trib_str e = {error, trib__vstr_len(error)};

    f->kind = kind;
    f->error = error;
    trib__view_push(v, (void ***)&v->fails, &v->nfails, &v->capfails, f);
    trib__vidx_add(v, &v->fail_idx, fail_hash(k, e), f);
    return f;
}

void trib__view_failure(struct trib_view *v, struct vagent *a,
                        const struct trib_wire_event *ev, int64_t when)
{
    char norm[VIEW_ERR_NORM_MAX + 1];
    struct fkey k;
    struct vfail *f;
    int i;

    k.kind.p = ev->job_kind.p ? ev->job_kind.p : "";
    k.kind.n = ev->job_kind.n;
    k.error.p = norm;
    k.error.n =
        (uint32_t)trib__view_err_normalise(ev->error.p, ev->error.n, norm);
    f = trib__vidx_find(&v->fail_idx, fail_hash(k.kind, k.error), fail_eq, &k);
    if (f == NULL) {
        if (v->nfails >= v->conf.max_failures) {
            v->fail_other++;
            return;
        }
        f = trib__view_fail_new(v, trib__view_intern(v, k.kind.p, k.kind.n),
                                trib__view_intern(v, norm, k.error.n));
        f->first_seen = when;
        f->last_seen = when;
    }
    f->count++;
    if (ev->state == TRIB_WS_DISCARDED) {
        f->discarded++;
    }
    if (when < f->first_seen) {
        f->first_seen = when;
    }
    if (when > f->last_seen) {
        f->last_seen = when;
    }
    for (i = 0; i < f->nsamples && f->samples[i] != ev->job_id; i++) {
    }
    if (i == f->nsamples) { /* most recent first */
        if (f->nsamples < VIEW_FAIL_SAMPLES) {
            f->nsamples++;
        }
        memmove(&f->samples[1], &f->samples[0],
                sizeof(f->samples[0]) * (size_t)(f->nsamples - 1));
        f->samples[0] = ev->job_id;
    }
    for (i = 0; i < f->nqueues && !trib__vstr_eq(f->queues[i], ev->queue);
         i++) {
    }
    if (i == f->nqueues && f->nqueues < VIEW_FAIL_QUEUES) {
        f->queues[f->nqueues++] =
            trib__view_intern(v, ev->queue.p ? ev->queue.p : "", ev->queue.n);
    }
    for (i = 0; i < f->nnodes && f->nodes[i] != a; i++) {
    }
    if (i == f->nnodes && f->nnodes < VIEW_FAIL_QUEUES) {
        f->nodes[f->nnodes++] = a;
    }
}

static int fail_match(const struct vfail *f, const struct trib_view_filter *fl)
{
    int i, hit;

    if (fl == NULL) {
        return 1;
    }
    if (fl->kind != NULL && strcmp(fl->kind, f->kind) != 0) {
        return 0;
    }
    if (fl->queue != NULL) {
        for (i = 0, hit = 0; i < f->nqueues && !hit; i++) {
            hit = strcmp(fl->queue, f->queues[i]) == 0;
        }
        if (!hit) {
            return 0;
        }
    }
    if (fl->node != NULL) {
        for (i = 0, hit = 0; i < f->nnodes && !hit; i++) {
            hit = strcmp(fl->node, f->nodes[i]->id) == 0;
        }
        if (!hit) {
            return 0;
        }
    }
    return 1;
}

static int cmp_fail(const void *x, const void *y)
{
    const struct vfail *a = *(struct vfail *const *)x;
    const struct vfail *b = *(struct vfail *const *)y;
    int c;

    if (a->count != b->count) {
        return a->count > b->count ? -1 : 1;
    }
    if (a->last_seen != b->last_seen) {
        return a->last_seen > b->last_seen ? -1 : 1;
    }
    c = strcmp(a->kind, b->kind);
    return c != 0 ? c : strcmp(a->error, b->error);
}

struct vfail **trib__view_fails_sorted(const struct trib_view *v,
                                       const struct trib_view_filter *f,
                                       uint32_t *n)
{
    struct vfail **out = trib_malloc((v->nfails + 1) * sizeof(*out));
    uint32_t i;

    *n = 0;
    for (i = 0; i < v->nfails; i++) {
        if (fail_match(v->fails[i], f)) {
            out[(*n)++] = v->fails[i];
        }
    }
    qsort(out, *n, sizeof(*out), cmp_fail);
    return out;
}
