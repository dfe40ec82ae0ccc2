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

#include "trib_mem.h"
#include "view_impl.h"

/* ------------------------------------------------------- normalising */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex_letter(unsigned char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_word(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_';
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/*
 * Length of a hex/UUID-like token starting at s[i] (a word start), or 0:
 * hex digits and '-' (optionally after "0x"), cut at the last point that
 * ends a word -- the run's end, or a '-' inside it (so "trace-9f86...-end"
 * keeps "-end") -- where it has 8+ hex digits, one of them a letter.
 */
static size_t hex_token(const unsigned char *s, size_t i, size_t n)
{
    size_t j = i, digits = 0, letters = 0, best = 0;

    if (j + 1 < n && s[j] == '0' && (s[j + 1] == 'x' || s[j + 1] == 'X')) {
        j += 2;
        letters = 1; /* 0x... is hex however its digits look */
    }
    if (j >= n || !(is_digit(s[j]) || is_hex_letter(s[j]))) {
        return 0;
    }
    for (;; j++) {
        if (j == n || s[j] == '-' || !(is_digit(s[j]) || is_hex_letter(s[j]))) {
            /* a candidate end: a '-', or the end of the run when what
             * follows is not part of a word */
            if ((j == n || s[j] == '-' || !is_word(s[j])) && s[j - 1] != '-' &&
                digits >= 8 && letters > 0) {
                best = j;
            }
            if (j == n || s[j] != '-') {
                break;
            }
        } else {
            digits++;
            letters += is_hex_letter(s[j]);
        }
    }
    return best > i ? best - i : 0;
}

/* Bytes in the UTF-8 sequence led by c (1 for ASCII and stray bytes). */
static size_t utf8_len(unsigned char c)
{
    if (c >= 0xf0 && c < 0xf8) {
        return 4;
    }
    if (c >= 0xe0) {
        return c < 0xf0 ? 3 : 1;
    }
    if (c >= 0xc0) {
        return 2;
    }
    return 1;
}

size_t trib__view_err_normalise(const char *err, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)err;
    size_t i = 0, o = 0, t, k;
    int space = 0;

    while (i < n) {
        if (is_space(s[i])) {
            while (i < n && is_space(s[i])) {
                i++;
            }
            space = o > 0; /* written only before something that follows */
            continue;
        }
        if (space) {
            if (o + 1 > VIEW_ERR_NORM_MAX) {
                break;
            }
            out[o++] = ' ';
            space = 0;
        }
        if (o + 1 > VIEW_ERR_NORM_MAX) {
            break;
        }
        if ((i == 0 || !is_word(s[i - 1])) && (t = hex_token(s, i, n)) > 0) {
            out[o++] = 'X';
            i += t;
            continue;
        }
        if (is_digit(s[i])) {
            while (i < n && is_digit(s[i])) {
                i++;
            }
            out[o++] = 'N';
            continue;
        }
        t = utf8_len(s[i]);
        if (t > n - i) {
            t = 1;
        }
        if (o + t > VIEW_ERR_NORM_MAX) {
            break; /* do not split a multi-byte character */
        }
        for (k = 0; k < t; k++) {
            out[o++] = (char)s[i++];
        }
    }
    out[o] = 0;
    return o;
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
