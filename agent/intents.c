/*
 * intents.c -- closes the crash window between a write-back's commit and
 * its events reaching the outbox (shared DESIGN-NOTES 1).
 *
 * River emits an event only after the write-back committed. An agent
 * killed after the commit and before its events are in the outbox would
 * lose them while river_job says the jobs finished. So, with an outbox:
 *
 *   1. before a write-back statement is sent, an INTENT meta record per
 *      batch goes to the outbox (and is written): for each job its id, the
 *      attempt worked, the outcome and what the row will look like
 *      (state, attempt, finalized_at or scheduled_at, to the microsecond).
 *      Until the confirm, the outbox keeps the files it went to (a pin:
 *      one per client, whose completer has one statement in flight), even
 *      when their events are acknowledged as durable;
 *   2. after the commit, a CONFIRM meta record listing (id, attempt) of
 *      every job of the batch goes out in the same write as the events;
 *   3. on start, the intents of older boots without a confirm are looked
 *      up in river_job. A write-back only changes a row still 'running'
 *      the attempt worked, and writes the exact values the intent holds:
 *      a row that shows them got our write-back, so its event is emitted
 *      now (under the current boot); a row still running that attempt did
 *      not. A CONFIRM appended to the older boot's files then settles the
 *      intents for good, and the boot's files may go.
 *
 * Meta payloads (msgpack, never sent to the coordinator):
 *   INTENT  [1, client_id, [id, worked, outcome, state, attempt,
 *                          expect_us, scheduled_at, start_db, run_us], ...]
 *   CONFIRM [2, [id, worked, id, worked, ...]]
 * They are read back from disk: decoding checks the structure with
 * trib_mp_check() first and every field's type (fuzz_outbox runs it).
 *
 * Threading: loop thread.
 */
#include "agent_int.h"
#include "outbox.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_mp.h"
#include "trib_time.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define META_INTENT  1
#define META_CONFIRM 2
#define PER_RECORD   500 /* jobs per record: ~60 KB at most */
#define NBUCKETS     4096

struct intent {
    struct intent *next; /* bucket chain */
    uint64_t boot;
    int64_t id;
    int worked, outcome, state, attempt;
    int64_t expect_us;    /* finalized_at or scheduled_at written     */
    int64_t scheduled_at; /* when the attempt was due (as fetched)    */
    int64_t start_db, run_us;
    char client[TRIB_CLIENT_ID_MAX + 1];
};

/* A client's write-back in flight: its intent's files are pinned. */
struct pin {
    const struct trib_client *client;
    uint64_t pin;
};

struct trib_intents {
    struct intent *buckets[NBUCKETS];
    size_t n;
    int busy; /* a resolution query is out */
    /* this boot's write-backs in flight (one per client at most) */
    struct pin *pins;
    size_t npins, pins_cap;
};

/* --------------------------------------------------------- writing */

static int finalizes(int state)
{
    return state == JS_COMPLETED || state == JS_CANCELLED ||
           state == JS_DISCARDED;
}

/* The attempt the row will have after the write-back. */
static int attempt_after(const struct trib_job *job)
{
    if ((job->outcome == OUT_SNOOZE || job->outcome == OUT_INTERRUPT) &&
        job->attempt > 0) {
        return job->attempt - 1;
    }
    return job->attempt;
}

/* The client's write-back in flight is pinned at 'pin' (0: none, the
 * previous one released). A retried batch repeats its intents, so only
 * the newest need stay: the outbox keeps every file from it on. */
static void set_pin(struct trib_agent *a, const struct trib_client *c,
                    uint64_t pin)
{
    struct trib_intents *in = a->intents;
    size_t i;

    for (i = 0; i < in->npins && in->pins[i].client != c; i++) {
    }
    if (i < in->npins) {
        trib_outbox_unpin(a->outbox, in->pins[i].pin);
        if (pin == 0) {
            in->pins[i] = in->pins[--in->npins];
            return;
        }
    } else if (pin == 0) {
        return;
    } else {
        if (in->npins == in->pins_cap) {
            in->pins_cap = in->pins_cap ? in->pins_cap * 2 : 8;
            in->pins = trib_realloc(in->pins, in->pins_cap * sizeof(*in->pins));
        }
        i = in->npins++;
        in->pins[i].client = c;
    }
    in->pins[i].pin = pin;
}

void trib__writeback_expect(const struct trib_job *job,
                            struct trib_wb_expect *e)
{
    e->worked = job->attempt;
    e->state = job->outcome == OUT_COMPLETE ? JS_COMPLETED : job->target_state;
    e->attempt = attempt_after(job);
    e->expect_us = finalizes(e->state) ? job->finalized_db : job->next_run_db;
}

/* A write-back only changes a row still running the attempt worked and
 * writes exactly these values (to the microsecond), so a row showing them
 * got it. */
int trib__writeback_applied(const struct trib_wb_expect *e, int state,
                            int attempt, int64_t finalized_at,
                            int64_t scheduled_at)
{
    int retrying = e->state == JS_AVAILABLE || e->state == JS_RETRYABLE ||
                   e->state == JS_SCHEDULED;

    if (state == e->state && attempt == e->attempt) {
        return finalizes(state) ? finalized_at == e->expect_us
                                : scheduled_at == e->expect_us;
    }
    /* a retry turned into a cancellation (cancel_attempted_at was set):
     * the attempt is kept, finalized_at is the commit's now() */
    return retrying && state == JS_CANCELLED && attempt == e->worked &&
           finalized_at != 0;
}

void trib__intents_write(struct trib_agent *a, struct trib_client *c,
                         struct trib_job *const *jobs, size_t n)
{
    size_t i, k;
    uint64_t pin;

    if (a->outbox == NULL || n == 0) {
        return;
    }
    if (a->intents == NULL) {
        a->intents = trib__intents_new();
    }
    /* Until the confirm, the files these records go to must stay even if
     * their events become durable (else a kill -9 before the confirm
     * could find no intent for a write-back that committed). */
    pin = trib_outbox_pin(a->outbox);
    set_pin(a, c, pin);
    for (i = 0; i < n; i += PER_RECORD) {
        size_t m = n - i < PER_RECORD ? n - i : PER_RECORD;
        msgpack_packer pk;

        msgpack_packer_init(&pk, trib_outbox_record_begin(a->outbox),
                            msgpack_sbuffer_write);
        msgpack_pack_array(&pk, (uint32_t)(2 + m));
        msgpack_pack_uint8(&pk, META_INTENT);
        msgpack_pack_str_with_body(&pk, c->id, strlen(c->id));
        for (k = i; k < i + m; k++) {
            const struct trib_job *j = jobs[k];
            struct trib_wb_expect e;
            trib__writeback_expect(j, &e);
            msgpack_pack_array(&pk, 9);
            msgpack_pack_int64(&pk, j->id);
            msgpack_pack_int(&pk, e.worked);
            msgpack_pack_int(&pk, (int)j->outcome);
            msgpack_pack_int(&pk, e.state);
            msgpack_pack_int(&pk, e.attempt);
            msgpack_pack_int64(&pk, e.expect_us);
            msgpack_pack_int64(&pk, j->scheduled_at);
            msgpack_pack_int64(&pk, j->start_db);
            msgpack_pack_int64(&pk, (int64_t)(j->end_mono - j->start_mono));
        }
        trib_outbox_record_end(a->outbox, 1);
    }
    /* On disk (page cache) before the statement leaves: one write. A
     * failed write keeps it in memory like any record (logged). */
    trib_outbox_flush(a->outbox);
}

static void pack_confirm(msgpack_sbuffer *sb, const int64_t *pairs, size_t n)
{
    msgpack_packer pk;
    size_t i;

    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, META_CONFIRM);
    msgpack_pack_array(&pk, (uint32_t)(2 * n));
    for (i = 0; i < 2 * n; i++) {
        msgpack_pack_int64(&pk, pairs[i]);
    }
}

void trib__intents_confirm(struct trib_agent *a, struct trib_job *const *jobs,
                           size_t n)
{
    int64_t *pairs;
    size_t i, m, k;

    if (a->outbox == NULL || n == 0) {
        return;
    }
    if (a->intents != NULL) {
        /* released; files go at the next ACK, after this confirm and
         * the batch's events are written */
        set_pin(a, jobs[0]->client, 0);
    }
    pairs = trib_malloc(2 * PER_RECORD * sizeof(*pairs));
    for (i = 0; i < n; i += PER_RECORD) {
        m = n - i < PER_RECORD ? n - i : PER_RECORD;
        for (k = 0; k < m; k++) {
            pairs[2 * k] = jobs[i + k]->id;
            pairs[2 * k + 1] = jobs[i + k]->attempt;
        }
        pack_confirm(trib_outbox_record_begin(a->outbox), pairs, m);
        trib_outbox_record_end(a->outbox, 1);
    }
    trib_free(pairs);
    /* written with the events the caller publishes next */
}

/* --------------------------------------------------------- reading */

static unsigned bucket(uint64_t boot, int64_t id, int worked)
{
    uint64_t h = boot ^ ((uint64_t)id * 0x9E3779B97F4A7C15ull) ^
                 ((uint64_t)(unsigned)worked << 32);

    return (unsigned)((h ^ (h >> 29)) % NBUCKETS);
}

static struct intent **find(struct trib_intents *in, uint64_t boot, int64_t id,
                            int worked)
{
    struct intent **pp = &in->buckets[bucket(boot, id, worked)];

    for (; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->boot == boot && (*pp)->id == id && (*pp)->worked == worked) {
            break;
        }
    }
    return pp;
}

static int get_int(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return TRIB_EPROTO;
}

/* Applies one decoded meta record to the set (in may be NULL: only
 * validate). 0 or TRIB_EPROTO. */
static int apply(struct trib_intents *in, uint64_t boot,
                 const msgpack_object *o)
{
    const msgpack_object *v = o->via.array.ptr;
    int64_t type, f[9];
    uint32_t i, k;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2 ||
        get_int(&v[0], &type) != 0) {
        return TRIB_EPROTO;
    }
    if (type == META_CONFIRM) {
        const msgpack_object *p = &v[1];
        if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size % 2 != 0) {
            return TRIB_EPROTO;
        }
        for (i = 0; i < p->via.array.size; i += 2) {
            struct intent **pp, *it;
            if (get_int(&p->via.array.ptr[i], &f[0]) != 0 ||
                get_int(&p->via.array.ptr[i + 1], &f[1]) != 0 ||
                f[1] < INT32_MIN || f[1] > INT32_MAX) {
                return TRIB_EPROTO;
            }
            if (in != NULL && *(pp = find(in, boot, f[0], (int)f[1]))) {
                it = *pp;
                *pp = it->next;
                trib_free(it);
                in->n--;
            }
        }
        return 0;
    }
    if (type != META_INTENT || v[1].type != MSGPACK_OBJECT_STR ||
        v[1].via.str.size == 0 || v[1].via.str.size > TRIB_CLIENT_ID_MAX) {
        return TRIB_EPROTO;
    }
    for (i = 2; i < o->via.array.size; i++) {
        const msgpack_object *j = &v[i];
        struct intent **pp, *it;

        if (j->type != MSGPACK_OBJECT_ARRAY || j->via.array.size < 9) {
            return TRIB_EPROTO;
        }
        for (k = 0; k < 9; k++) {
            if (get_int(&j->via.array.ptr[k], &f[k]) != 0) {
                return TRIB_EPROTO;
            }
        }
        if (f[1] < 0 || f[1] > INT32_MAX || f[2] < OUT_COMPLETE ||
            f[2] > OUT_INTERRUPT || f[3] < JS_AVAILABLE || f[3] >= JS_UNKNOWN ||
            f[4] < 0 || f[4] > INT32_MAX) {
            return TRIB_EPROTO;
        }
        if (in == NULL) {
            continue;
        }
        pp = find(in, boot, f[0], (int)f[1]);
        if (*pp == NULL) { /* a retried batch repeats its intents */
            *pp = TRIB_NEW(struct intent);
            in->n++;
        }
        it = *pp;
        it->boot = boot;
        it->id = f[0];
        it->worked = (int)f[1];
        it->outcome = (int)f[2];
        it->state = (int)f[3];
        it->attempt = (int)f[4];
        it->expect_us = f[5];
        it->scheduled_at = f[6];
        it->start_db = f[7];
        it->run_us = f[8];
        memcpy(it->client, v[1].via.str.ptr, v[1].via.str.size);
        it->client[v[1].via.str.size] = '\0';
    }
    return 0;
}

int trib__intents_decode(struct trib_intents *in, uint64_t boot,
                         const void *payload, size_t len)
{
    msgpack_zone zone;
    msgpack_object o;
    size_t off = 0;
    int rv;

    if (trib_mp_check(payload, len, 4) != 0) {
        return TRIB_EPROTO;
    }
    msgpack_zone_init(&zone, 2048);
    if (msgpack_unpack(payload, len, &off, &zone, &o) !=
        MSGPACK_UNPACK_SUCCESS) {
        rv = TRIB_EPROTO;
    } else {
        rv = apply(in, boot, &o);
    }
    msgpack_zone_destroy(&zone);
    return rv;
}

struct trib_intents *trib__intents_new(void)
{
    return TRIB_NEW(struct trib_intents);
}

void trib__intents_on_meta(void *arg, uint64_t boot, const void *payload,
                           size_t len)
{
    struct trib_agent *a = arg;

    if (a->intents == NULL) {
        a->intents = trib__intents_new();
    }
    if (trib__intents_decode(a->intents, boot, payload, len) != 0) {
        TRIB_WARN("AGT-INTENT",
                  "boot %016" PRIx64 ": a %zu-byte meta record in the outbox "
                  "is not a write-back intent: ignored",
                  boot, len);
    }
}

void trib__intents_free(struct trib_intents *in)
{
    size_t b;

    if (in == NULL) {
        return;
    }
    for (b = 0; b < NBUCKETS; b++) {
        while (in->buckets[b] != NULL) {
            struct intent *it = in->buckets[b];
            in->buckets[b] = it->next;
            trib_free(it);
        }
    }
    trib_free(in->pins);
    trib_free(in);
}

/* ------------------------------------------------------- resolving */

size_t trib__intents_count(const struct trib_intents *in)
{
    return in != NULL ? in->n : 0;
}

/* The older boots with unresolved intents keep their files until then. */
void trib__intents_hold(struct trib_agent *a)
{
    size_t b;

    if (a->intents == NULL || a->intents->n == 0) {
        return;
    }
    for (b = 0; b < NBUCKETS; b++) {
        struct intent *it;
        for (it = a->intents->buckets[b]; it != NULL; it = it->next) {
            trib_outbox_hold(a->outbox, it->boot, 1); /* idempotent */
        }
    }
    TRIB_INFO("AGT-INTENT",
              "%zu write-back(s) of earlier boots were in flight when they "
              "stopped: checking river_job once the database is reachable",
              a->intents->n);
}

/* Did our write-back produce this row? (see the top of the file) */
static int applied(const struct intent *it, const PGresult *res, int r)
{
    struct trib_wb_expect e = {it->worked, it->state, it->attempt,
                               it->expect_us};
    int64_t fin = 0, sched = 0;

    if (!PQgetisnull(res, r, 3)) {
        trib_pgtime_parse(PQgetvalue(res, r, 3), &fin);
    }
    if (!PQgetisnull(res, r, 4)) {
        trib_pgtime_parse(PQgetvalue(res, r, 4), &sched);
    }
    return trib__writeback_applied(&e, trib__state_parse(PQgetvalue(res, r, 1)),
                                   atoi(PQgetvalue(res, r, 2)), fin, sched);
}

static int event_kind(int persisted, int outcome)
{
    switch (persisted) {
    case JS_COMPLETED:
        return TRIB_EV_JOB_COMPLETED;
    case JS_CANCELLED:
        return TRIB_EV_JOB_CANCELLED;
    case JS_DISCARDED:
    case JS_RETRYABLE:
        return TRIB_EV_JOB_FAILED;
    case JS_SCHEDULED:
        return TRIB_EV_JOB_SNOOZED;
    default: /* available */
        return outcome == OUT_SNOOZE      ? TRIB_EV_JOB_SNOOZED
               : outcome == OUT_INTERRUPT ? TRIB_EV_JOB_INTERRUPTED
                                          : TRIB_EV_JOB_FAILED;
    }
}

/* The event River would have emitted, from the row as persisted. */
static void make_event(struct trib_agent *a, const struct intent *it,
                       const PGresult *res, int r, struct trib_event *ev)
{
    int state = trib__state_parse(PQgetvalue(res, r, 1));

    memset(ev, 0, sizeof(*ev));
    ev->kind = event_kind(state, it->outcome);
    ev->client_id = it->client;
    ev->job_id = it->id;
    ev->attempt = atoi(PQgetvalue(res, r, 2));
    ev->max_attempts = atoi(PQgetvalue(res, r, 11));
    ev->queue = PQgetvalue(res, r, 5);
    ev->job_kind = PQgetvalue(res, r, 6);
    ev->state = trib__state_name(state);
    ev->priority = atoi(PQgetvalue(res, r, 7));
    ev->tags = PQgetvalue(res, r, 8);
    trib_pgtime_parse(PQgetvalue(res, r, 9), &ev->created_at);
    ev->scheduled_at = it->scheduled_at;
    if (!PQgetisnull(res, r, 10)) {
        trib_pgtime_parse(PQgetvalue(res, r, 10), &ev->attempted_at);
    }
    if (!PQgetisnull(res, r, 3)) {
        trib_pgtime_parse(PQgetvalue(res, r, 3), &ev->finalized_at);
    }
    if (!PQgetisnull(res, r, 4)) {
        trib_pgtime_parse(PQgetvalue(res, r, 4), &ev->next_scheduled_at);
    }
    ev->queue_wait_us = it->start_db - it->scheduled_at;
    ev->run_us = it->run_us;
    ev->complete_us = 0; /* unknown: the agent died during it */
    if (it->outcome == OUT_ERROR || it->outcome == OUT_CANCEL ||
        state == JS_CANCELLED) {
        ev->error = PQgetisnull(res, r, 12) ? NULL : PQgetvalue(res, r, 12);
    }
    ev->at = ev->finalized_at ? ev->finalized_at : trib__db_now(a);
}

/* Settles the intents of one boot: a CONFIRM in its own files. */
static void settle(struct trib_agent *a, uint64_t boot, const int64_t *pairs,
                   size_t n)
{
    msgpack_sbuffer sb;
    size_t i;

    msgpack_sbuffer_init(&sb);
    for (i = 0; i < n; i += PER_RECORD) {
        msgpack_sbuffer_clear(&sb);
        pack_confirm(&sb, pairs + 2 * i,
                     n - i < PER_RECORD ? n - i : PER_RECORD);
        trib_outbox_append_meta(a->outbox, boot, sb.data, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
}

static int cmp_rows(const void *x, const void *y)
{
    const int64_t *a = x, *b = y;

    return a[0] < b[0] ? -1 : a[0] > b[0];
}

static void on_rows(void *arg, int status, PGresult *res)
{
    struct trib_agent *a = arg;
    struct trib_intents *in = a->intents;
    struct trib_event *evs;
    int64_t *pairs, *rows;
    size_t b, n = 0, nev = 0, nrows;
    uint64_t boot;
    int r;

    if (status == TRIB_ECANCELED) {
        return;
    }
    in->busy = 0;
    if (status != 0) {
        TRIB_WARN("AGT-INTENT",
                  "cannot check %zu write-back intent(s) in river_job: %s "
                  "(trying again in a minute)",
                  in->n, trib_pg_errmsg(res));
        return;
    }
    /* (id, row) sorted by id */
    nrows = (size_t)PQntuples(res);
    rows = trib_malloc((nrows + 1) * 2 * sizeof(*rows));
    for (r = 0; r < (int)nrows; r++) {
        rows[2 * r] = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        rows[2 * r + 1] = r;
    }
    qsort(rows, nrows, 2 * sizeof(*rows), cmp_rows);
    evs = trib_calloc(in->n, sizeof(*evs));
    pairs = trib_malloc(2 * in->n * sizeof(*pairs));
    for (b = 0; b < NBUCKETS; b++) {
        struct intent *it;
        for (it = in->buckets[b]; it != NULL; it = it->next) {
            int64_t key[2] = {it->id, 0};
            const int64_t *hit =
                bsearch(key, rows, nrows, 2 * sizeof(*rows), cmp_rows);
            if (hit != NULL && applied(it, res, (int)hit[1])) {
                make_event(a, it, res, (int)hit[1], &evs[nev++]);
            }
        }
    }
    TRIB_INFO("AGT-INTENT",
              "%zu in-flight write-back(s) of earlier boots: %zu had "
              "committed (their events are emitted now), %zu had not (or "
              "the row is gone)",
              in->n, nev, in->n - nev);
    if (nev > 0) {
        trib_event_publish(&a->bus, evs, nev); /* into the outbox first */
    }
    trib_free(evs); /* its strings point into res and the intents */
    trib_free(rows);
    /* then settle each boot's intents and let its files go */
    while (in->n > 0) {
        boot = 0;
        n = 0;
        for (b = 0; b < NBUCKETS; b++) {
            struct intent **pp = &in->buckets[b];
            while (*pp != NULL) {
                struct intent *it = *pp;
                if (n == 0 || it->boot == boot) {
                    boot = it->boot;
                    pairs[2 * n] = it->id;
                    pairs[2 * n + 1] = it->worked;
                    n++;
                    *pp = it->next;
                    trib_free(it);
                    in->n--;
                } else {
                    pp = &it->next;
                }
            }
        }
        settle(a, boot, pairs, n);
        trib_outbox_hold(a->outbox, boot, 0);
    }
    trib_free(pairs);
}

void trib__intents_resolve(struct trib_agent *a)
{
    struct trib_intents *in = a->intents;
    struct trib_buf sql = TRIB_BUF_INIT;
    size_t b;
    int first = 1;

    if (in == NULL || in->n == 0 || in->busy || a->outbox == NULL ||
        !a->sql_ready) {
        return;
    }
    trib_buf_puts(&sql, "SELECT id, state::text, attempt, finalized_at, "
                        "scheduled_at, queue, kind, priority, tags::text, "
                        "created_at, attempted_at, max_attempts, "
                        "errors[array_length(errors, 1)]->>'error' FROM ");
    trib_pg_quote_ident(&sql, a->sql.schema);
    trib_buf_puts(&sql, ".river_job WHERE id = ANY('{");
    for (b = 0; b < NBUCKETS; b++) {
        struct intent *it;
        for (it = in->buckets[b]; it != NULL; it = it->next) {
            if (!first) {
                trib_buf_putc(&sql, ',');
            }
            first = 0;
            trib_buf_put_i64(&sql, it->id); /* integers only */
        }
    }
    trib_buf_puts(&sql, "}'::bigint[])");
    if (trib_pg_exec(a->ctl, sql.data, on_rows, a) == 0) {
        in->busy = 1;
    }
    trib_buf_fini(&sql);
}
