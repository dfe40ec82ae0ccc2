/*
 * stress_rec.c -- the records of a stress run: one compact record per job,
 * fed by the coordinator's events and the final read of river_job, in any
 * order and more than once (stress_report.h; layout in stress_rec_int.h).
 *
 * Repeated input never counts twice:
 *   - events are kept per (job, attempt, kind), the greatest 'at' winning;
 *     snoozed and interrupted events are kept per (job, attempt, kind, at)
 *     because River restores the attempt on those, so one attempt number
 *     may be snoozed several times (a duplicate has the same 'at');
 *   - a row replaces the row-derived fields of the record.
 * Rows are the truth for state, attempt and times; events fill node,
 * client, statistics, snoozes, and stand in for rows not (yet) read.
 */
#include <string.h>

#include "events.h"
#include "stress_rec_int.h"
#include "trib_errtext.h"
#include "trib_mem.h"

/* ------------------------------------------------------------ hashing */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_u64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return (uint32_t)(x ^ (x >> 31));
}

/* ------------------------------------------------------------ strings */

static uint32_t str_find(const struct strtab *t, const char *s, size_t n,
                         uint32_t h, uint32_t *slot)
{
    uint32_t m = t->nslots - 1, i = h & m, id;

    for (; (id = t->slots[i]) != 0; i = (i + 1) & m) {
        const char *c = t->buf + t->off[id - 1];
        if (strncmp(c, s, n) == 0 && c[n] == 0) {
            break;
        }
    }
    *slot = i;
    return id;
}

static void str_rehash(struct strtab *t, uint32_t nslots)
{
    uint32_t i, slot;

    trib_free(t->slots);
    t->nslots = nslots;
    t->slots = trib_calloc(nslots, sizeof(*t->slots));
    for (i = 0; i < t->n; i++) {
        const char *c = t->buf + t->off[i];
        (void)str_find(t, c, strlen(c), hash_bytes(c, strlen(c)), &slot);
        t->slots[slot] = i + 1;
    }
}

/* Length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len, i;
    uint32_t cp;

    if (s[0] < 0x80) {
        return 1;
    }
    len = s[0] < 0xc2   ? 0
          : s[0] < 0xe0 ? 2
          : s[0] < 0xf0 ? 3
          : s[0] < 0xf5 ? 4
                        : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    cp = s[0] & (0x7fu >> len);
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

static uint32_t str_intern(struct strtab *t, const char *s, size_t n);

/* s with every byte that is not valid UTF-8 replaced by U+FFFD, interned:
 * the report is JSON, whose strings must be UTF-8. */
static uint32_t str_intern_fixed(struct strtab *t, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char *fix = trib_malloc(3 * n + 1);
    size_t i = 0, o = 0, k;
    uint32_t id;

    while (i < n) {
        if ((k = utf8_seq(u + i, n - i)) == 0) {
            memcpy(fix + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(fix + o, s + i, k);
        o += k;
        i += k;
    }
    id = str_intern(t, fix, o);
    trib_free(fix);
    return id;
}

/* The id of s (n bytes; cut at a NUL), interned on first use. */
static uint32_t str_intern(struct strtab *t, const char *s, size_t n)
{
    uint32_t slot, id, h;
    size_t i, k;

    if (s != NULL && memchr(s, 0, n) != NULL) {
        n = strlen(s); /* no NUL inside a name */
    }
    if (s == NULL || n == 0) {
        return 0;
    }
    for (i = 0; i < n; i += k) {
        if ((k = utf8_seq((const unsigned char *)s + i, n - i)) == 0) {
            return str_intern_fixed(t, s, n);
        }
    }
    h = hash_bytes(s, n);
    if ((id = str_find(t, s, n, h, &slot)) != 0) {
        return id - 1;
    }
    if (t->n == t->capn) {
        t->capn *= 2;
        t->off = trib_realloc(t->off, t->capn * sizeof(*t->off));
        t->cnode = trib_realloc(t->cnode, t->capn * sizeof(*t->cnode));
        t->cmode = trib_realloc(t->cmode, t->capn * sizeof(*t->cmode));
    }
    while (t->len + n + 1 > t->cap) {
        t->cap *= 2;
        t->buf = trib_realloc(t->buf, t->cap);
    }
    id = t->n++;
    t->off[id] = (uint32_t)t->len;
    t->cnode[id] = t->cmode[id] = 0;
    memcpy(t->buf + t->len, s, n);
    t->buf[t->len + n] = 0;
    t->len += n + 1;
    t->slots[slot] = id + 1;
    if (t->n * 2 > t->nslots) {
        str_rehash(t, t->nslots * 2);
    }
    return id;
}

static void str_init(struct strtab *t)
{
    t->cap = 4096;
    t->buf = trib_malloc(t->cap);
    t->capn = 64;
    t->off = trib_malloc(t->capn * sizeof(*t->off));
    t->cnode = trib_malloc(t->capn * sizeof(*t->cnode));
    t->cmode = trib_malloc(t->capn * sizeof(*t->cmode));
    t->nslots = 128;
    t->slots = trib_calloc(t->nslots, sizeof(*t->slots));
    /* id 0: the empty string, never in the hash */
    t->buf[0] = 0;
    t->len = 1;
    t->off[0] = 0;
    t->cnode[0] = t->cmode[0] = 0;
    t->n = 1;
}

static void str_fini(struct strtab *t)
{
    trib_free(t->buf);
    trib_free(t->off);
    trib_free(t->cnode);
    trib_free(t->cmode);
    trib_free(t->slots);
}

/* -------------------------------------------------------------- pairs */

static uint32_t pair_find(const struct pairtab *p, uint32_t a, uint32_t b,
                          uint32_t *slot)
{
    uint32_t m = p->nslots - 1, id;
    uint32_t i = hash_u64(((uint64_t)a << 32) | b) & m;

    for (; (id = p->slots[i]) != 0; i = (i + 1) & m) {
        if (p->items[id - 1][0] == a && p->items[id - 1][1] == b) {
            break;
        }
    }
    *slot = i;
    return id;
}

static uint32_t pair_get(struct pairtab *p, uint32_t a, uint32_t b)
{
    uint32_t slot, id, i;

    if ((id = pair_find(p, a, b, &slot)) != 0) {
        return id - 1;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->items = trib_realloc(p->items, p->cap * sizeof(*p->items));
    }
    id = p->n++;
    p->items[id][0] = a;
    p->items[id][1] = b;
    p->slots[slot] = id + 1;
    if (p->n * 2 > p->nslots) {
        trib_free(p->slots);
        p->nslots *= 2;
        p->slots = trib_calloc(p->nslots, sizeof(*p->slots));
        for (i = 0; i < p->n; i++) {
            (void)pair_find(p, p->items[i][0], p->items[i][1], &slot);
            p->slots[slot] = i + 1;
        }
    }
    return id;
}

/* ---------------------------------------------------------------- jobs */

static void jobs_rehash(struct stress_rec *r, uint32_t nslots)
{
    uint32_t i, m = nslots - 1, s;

    trib_free(r->slots);
    r->nslots = nslots;
    r->slots = trib_calloc(nslots, sizeof(*r->slots));
    for (i = 0; i < r->nrecs; i++) {
        for (s = hash_u64((uint64_t)rec_at(r, i)->id) & m; r->slots[s] != 0;
             s = (s + 1) & m) {
        }
        r->slots[s] = i + 1;
    }
}

/* The record of job id, created (zeroed, stage -1) on first use. */
static struct jrec *job_get(struct stress_rec *r, int64_t id)
{
    uint32_t m = r->nslots - 1, s = hash_u64((uint64_t)id) & m, k;
    struct jrec *j;

    for (; (k = r->slots[s]) != 0; s = (s + 1) & m) {
        if ((j = rec_at(r, k - 1))->id == id) {
            return j;
        }
    }
    if ((r->nrecs & (REC_CHUNK - 1)) == 0) {
        uint32_t c = r->nrecs >> REC_CHUNK_BITS;
        if (c == r->nchunks) {
            r->nchunks = r->nchunks ? r->nchunks * 2 : 4;
            r->recs = trib_realloc(r->recs, r->nchunks * sizeof(*r->recs));
        }
        r->recs[c] = trib_malloc(REC_CHUNK * sizeof(struct jrec));
    }
    j = rec_at(r, r->nrecs);
    memset(j, 0, sizeof(*j));
    j->id = id;
    j->stage = -1;
    r->slots[s] = ++r->nrecs;
    if ((uint64_t)r->nrecs * 2 > r->nslots) {
        jobs_rehash(r, r->nslots * 2);
    }
    return j;
}

static uint32_t ev_new(struct stress_rec *r)
{
    if ((r->nevs & (REC_CHUNK - 1)) == 0) {
        uint32_t c = r->nevs >> REC_CHUNK_BITS;
        if (c == r->nevchunks) {
            r->nevchunks = r->nevchunks ? r->nevchunks * 2 : 4;
            r->evs = trib_realloc(r->evs, r->nevchunks * sizeof(*r->evs));
        }
        r->evs[c] = trib_malloc(REC_CHUNK * sizeof(struct jev));
    }
    return r->nevs++;
}

/* ---------------------------------------------------------- the store */

struct stress_rec *stress_rec_new(void)
{
    struct stress_rec *r = TRIB_NEW(struct stress_rec);

    str_init(&r->str);
    r->who.nslots = r->grp.nslots = 64;
    r->who.slots = trib_calloc(64, sizeof(uint32_t));
    r->grp.slots = trib_calloc(64, sizeof(uint32_t));
    r->nslots = 1024;
    r->slots = trib_calloc(r->nslots, sizeof(*r->slots));
    r->s_none = str_intern(&r->str, "(none)", 6);
    r->s_unknown = str_intern(&r->str, "(unknown)", 9);
    return r;
}

void stress_rec_free(struct stress_rec *r)
{
    uint32_t i;

    if (r == NULL) {
        return;
    }
    for (i = 0; i < (r->nrecs + REC_CHUNK - 1) >> REC_CHUNK_BITS; i++) {
        trib_free(r->recs[i]);
    }
    for (i = 0; i < (r->nevs + REC_CHUNK - 1) >> REC_CHUNK_BITS; i++) {
        trib_free(r->evs[i]);
    }
    trib_free(r->recs);
    trib_free(r->evs);
    trib_free(r->slots);
    str_fini(&r->str);
    trib_free(r->who.items);
    trib_free(r->who.slots);
    trib_free(r->grp.items);
    trib_free(r->grp.slots);
    trib_free(r);
}

static int job_final(const struct jrec *j)
{
    return ((j->flags & JREC_ROW) && rec_state_final(j->row_state)) ||
           rec_state_final(j->ev_state);
}

/* Error group + 1 of (kind, text), or 0 when there is no text. */
static uint32_t err_group(struct stress_rec *r, uint32_t kind, const char *s,
                          size_t n)
{
    char norm[TRIB_ERRTEXT_MAX + 1];
    size_t k;

    if (s == NULL || n == 0) {
        return 0;
    }
    k = trib_errtext_normalise(s, n, norm);
    return pair_get(&r->grp, kind, str_intern(&r->str, norm, k)) + 1;
}

/* Finds the kept event ev replaces, or 0. */
static uint32_t ev_match(const struct stress_rec *r, const struct jrec *j,
                         const struct trib_wire_event *ev)
{
    uint32_t k;
    int keyed_at =
        ev->kind == TRIB_EV_JOB_SNOOZED || ev->kind == TRIB_EV_JOB_INTERRUPTED;

    for (k = j->ev_head; k != 0; k = ev_at(r, k - 1)->next) {
        const struct jev *e = ev_at(r, k - 1);
        if (e->kind == ev->kind && e->attempt == ev->attempt &&
            (!keyed_at || e->at == ev->at)) {
            return k;
        }
    }
    return 0;
}

/* The job's latest event (greatest at, then attempt), or NULL. */
static const struct jev *ev_latest(const struct stress_rec *r,
                                   const struct jrec *j)
{
    const struct jev *best = NULL;
    uint32_t k;

    for (k = j->ev_head; k != 0; k = ev_at(r, k - 1)->next) {
        const struct jev *e = ev_at(r, k - 1);
        if (best == NULL || e->at > best->at ||
            (e->at == best->at && e->attempt > best->attempt)) {
            best = e;
        }
    }
    return best;
}

static int16_t clamp16(int64_t v)
{
    return (int16_t)(v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : v);
}

void stress_rec_event(struct stress_rec *r, const char *node, size_t nodelen,
                      const struct trib_wire_event *ev)
{
    struct jrec *j;
    struct jev *e;
    const struct jev *last;
    uint32_t k, kind;
    int was_final, st;

    if (r == NULL || ev == NULL || ev->kind < TRIB_EV_JOB_COMPLETED ||
        ev->kind > TRIB_EV_JOB_INTERRUPTED || ev->job_id <= 0) {
        return;
    }
    j = job_get(r, ev->job_id);
    was_final = job_final(j);
    if ((k = ev_match(r, j, ev)) != 0) {
        if (ev->at <= ev_at(r, k - 1)->at) {
            return; /* a repeat (or older): already counted */
        }
    } else {
        k = ev_new(r) + 1;
        ev_at(r, k - 1)->next = j->ev_head;
        j->ev_head = k;
        if (ev->kind == TRIB_EV_JOB_SNOOZED && j->snoozes < UINT16_MAX) {
            j->snoozes++;
        }
    }
    kind = j->kind;
    if (!(j->flags & JREC_ROW) || kind == 0) {
        kind = ev->job_kind.n
                   ? str_intern(&r->str, ev->job_kind.p, ev->job_kind.n)
                   : kind;
    }
    e = ev_at(r, k - 1);
    e->at = ev->at;
    e->qw = ev->queue_wait_us;
    e->run = ev->run_us;
    e->cmp = ev->complete_us;
    e->who = pair_get(&r->who, str_intern(&r->str, node, node ? nodelen : 0),
                      str_intern(&r->str, ev->client_id.p, ev->client_id.n));
    e->err = err_group(r, kind, ev->error.p, ev->error.n);
    e->attempt = clamp16(ev->attempt);
    e->kind = (uint8_t)ev->kind;
    e->state = (uint8_t)(ev->state >= 0 && ev->state < TRIB_WS_COUNT
                             ? ev->state
                             : TRIB_WS_UNKNOWN);

    /* The first run's start (and the due time it was fetched for). */
    if (ev->attempted_at > 0 &&
        (j->first_att == 0 || ev->attempted_at <= j->first_att)) {
        j->first_att = ev->attempted_at;
        if (j->due_src <= DUE_EVENT && ev->scheduled_at > 0) {
            j->due = ev->scheduled_at;
            j->due_src = DUE_EVENT;
        }
    }
    last = ev_latest(r, j);
    st = last->state;
    r->ev_states[j->ev_state]--;
    r->ev_states[st]++;
    j->ev_state = (uint8_t)st;
    if (!(j->flags & JREC_ROW)) { /* stand in for the row */
        j->kind = kind;
        if (ev->queue.n) {
            j->queue = str_intern(&r->str, ev->queue.p, ev->queue.n);
        }
        if (j->created == 0) {
            j->created = ev->created_at;
        }
        if (last == e && rec_state_final(st) && ev->finalized_at > 0) {
            j->final_at = ev->finalized_at;
        }
    }
    r->finished += job_final(j) - was_final;
}

void stress_rec_db_row(struct stress_rec *r, const struct stress_db_row *row)
{
    struct jrec *j;
    int was_final, st;

    if (r == NULL || row == NULL || row->id <= 0) {
        return;
    }
    j = job_get(r, row->id);
    was_final = job_final(j);
    st = row->state ? trib_wire_state_parse(row->state) : TRIB_WS_UNKNOWN;
    j->flags |= JREC_ROW;
    j->row_state = (uint8_t)st;
    j->queue =
        row->queue ? str_intern(&r->str, row->queue, strlen(row->queue)) : 0;
    j->kind = row->kind ? str_intern(&r->str, row->kind, strlen(row->kind)) : 0;
    j->attempt = clamp16(row->attempt);
    j->nerrors = clamp16(row->nerrors < 0 ? 0 : row->nerrors);
    j->created = row->created_at;
    j->final_at = row->finalized_at;
    j->stage = clamp16(row->stage < -1 ? -1 : row->stage);
    j->row_client = row->last_client ? str_intern(&r->str, row->last_client,
                                                  strlen(row->last_client))
                                     : 0;
    j->row_err = row->last_error ? err_group(r, j->kind, row->last_error,
                                             strlen(row->last_error))
                                 : 0;
    if (row->due_us > 0) {
        j->due = row->due_us;
        j->due_src = DUE_META;
    } else if (j->due_src <= DUE_ROW && row->attempt <= 1 &&
               row->scheduled_at > 0) {
        j->due = row->scheduled_at;
        j->due_src = DUE_ROW;
    }
    if (row->attempt <= 1 && row->attempted_at > 0 &&
        (j->first_att == 0 || row->attempted_at < j->first_att)) {
        j->first_att = row->attempted_at;
    }
    r->finished += job_final(j) - was_final;
}

void stress_rec_client(struct stress_rec *r, const char *client,
                       const char *node, const char *mode)
{
    uint32_t c, id;

    if (r == NULL || client == NULL || client[0] == 0) {
        return;
    }
    c = str_intern(&r->str, client, strlen(client));
    /* Intern first, then index: interning may move cnode/cmode, and in
     * "cnode[c] = str_intern(...)" the address may be taken before. */
    if (node != NULL && node[0] != 0) {
        id = str_intern(&r->str, node, strlen(node));
        r->str.cnode[c] = id;
    }
    if (mode != NULL && mode[0] != 0) {
        id = str_intern(&r->str, mode, strlen(mode));
        r->str.cmode[c] = id;
    }
}

int64_t stress_rec_jobs(const struct stress_rec *r)
{
    return r ? r->nrecs : 0;
}

int64_t stress_rec_finished(const struct stress_rec *r)
{
    return r ? r->finished : 0;
}

void stress_rec_event_tally(const struct stress_rec *r, int64_t *completed,
                            int64_t *discarded, int64_t *cancelled)
{
    *completed = r ? r->ev_states[TRIB_WS_COMPLETED] : 0;
    *discarded = r ? r->ev_states[TRIB_WS_DISCARDED] : 0;
    *cancelled = r ? r->ev_states[TRIB_WS_CANCELLED] : 0;
}
