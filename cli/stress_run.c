/*
 * stress_run.c -- the middle of `tributary stress`: while the inserter's
 * threads put jobs in, follow them to the end through both monitors,
 *   - events: the coordinator's cluster-wide EVENTS stream, read from the
 *     moment before the first insert and filtered to the run's tag (every
 *     job event, with node, client and River's statistics), plus the
 *     coordinator's own per-tag finished count (the `wait` query);
 *   - polling: river_job itself, the run's rows counted by state;
 * print a progress line, and stop on completion, timeout, Ctrl-C or an
 * inserter error. Then read every row of the run for the analysis.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_client.h"
#include "render.h"
#include "stress_int.h"
#include "trib_buf.h"
#include "trib_time.h"

#define EVENTS_MAX      5000                 /* per EVENTS request     */
#define EVENTS_HOLD_MS  100                  /* long-poll while idle   */
#define JOB_EVENT_KINDS 0x3eu                /* kinds 1..5: job events */
#define SETTLE_US       (10 * TRIB_US_PER_S) /* monitors to agree      */
#define PROGRESS_EVERY  (5 * TRIB_US_PER_S)  /* plain lines (no tty)   */
#define READ_CHUNK      20000                /* rows per final read    */

static int has_tag(const struct trib_wire_event *ev, const char *tag,
                   size_t taglen)
{
    int i;

    for (i = 0; i < ev->ntags; i++) {
        if (ev->tags[i].n == taglen &&
            memcmp(ev->tags[i].p, tag, taglen) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Reads what the coordinator applied since the cursor. Returns the number
 * of events read (0 when idle), -1 on error (printed once). */
static int read_events(struct stress_ctx *ctx, struct trib_ctl_batch *b,
                       int64_t hold_ms)
{
    static int warned;
    struct trib_ctl_err e;
    size_t taglen = strlen(ctx->run_tag);
    uint32_t i;

    if (ctx->ctl == NULL) {
        return 0;
    }
    if (trib_ctl_events(ctx->ctl, ctx->cursor, EVENTS_MAX, JOB_EVENT_KINDS,
                        hold_ms, b, &e) != 0) {
        if (!warned) {
            trib_ctl_print_err(STRESS_PROG, &e);
            warned = 1;
        }
        return -1;
    }
    warned = 0;
    if (b->missed > 0) {
        ctx->events_missed += (int64_t)b->missed;
    }
    for (i = 0; i < b->n; i++) {
        const struct trib_ctl_item *it = &b->items[i];
        if (has_tag(&it->ev, ctx->run_tag, taglen)) {
            stress_rec_event(ctx->rec, it->node.p, it->node.n, &it->ev);
            ctx->events_seen++;
        }
    }
    ctx->cursor = b->next;
    return (int)b->n;
}

int stress_poll_db(struct stress_ctx *ctx)
{
    const char *params[2];
    char minid[32];
    struct trib_buf sql = TRIB_BUF_INIT;
    PGresult *r;
    int64_t t0 = trib_now_us(), total = 0, fin = 0;
    int i, rv = -1;

    snprintf(minid, sizeof(minid), "%" PRId64, ctx->min_id);
    params[0] = minid;
    params[1] = ctx->meta_filter;
    trib_buf_printf(&sql,
                    "SELECT state::text, count(*) FROM %s WHERE id > $1 "
                    "AND metadata @> $2::jsonb GROUP BY state",
                    ctx->table);
    r = PQexecParams(ctx->db, sql.data, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(ctx->error, sizeof(ctx->error), "polling river_job: %s",
                 PQerrorMessage(ctx->db));
        goto out;
    }
    memset(ctx->db_states, 0, sizeof(ctx->db_states));
    for (i = 0; i < PQntuples(r); i++) {
        int ws = trib_wire_state_parse(PQgetvalue(r, i, 0));
        int64_t n = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        ctx->db_states[ws] += n;
        total += n;
        if (ws == TRIB_WS_COMPLETED || ws == TRIB_WS_DISCARDED ||
            ws == TRIB_WS_CANCELLED) {
            fin += n;
        }
    }
    ctx->db_total = total;
    ctx->db_finished = fin;
    ctx->db_polled_us = trib_now_us();
    ctx->poll_cost_us = ctx->db_polled_us - t0;
    rv = 0;
out:
    PQclear(r);
    trib_buf_fini(&sql);
    return rv;
}

/* The coordinator's own count of the run's finished jobs (per tag). */
static void poll_coord(struct stress_ctx *ctx)
{
    struct trib_ctl_arg args[3];
    struct trib_ctl_err e;
    json_t *doc = NULL;

    if (ctx->ctl == NULL) {
        return;
    }
    args[0].key = "count";
    args[0].str = NULL;
    args[0].num = ctx->prog.inserted > 0 ? ctx->prog.inserted : 1;
    args[1].key = "tag";
    args[1].str = ctx->run_tag;
    args[1].num = 0;
    args[2].key = "wait_ms";
    args[2].str = NULL;
    args[2].num = 0;
    if (trib_ctl_query(ctx->ctl, "wait", args, 3, 0, NULL, &doc, &e) == 0) {
        ctx->coord_finished =
            json_integer_value(json_object_get(doc, "finished"));
        ctx->coord_failed = json_integer_value(json_object_get(doc, "failed"));
    }
    json_decref(doc);
}

/* Tells the analysis which node and mode each client belongs to. */
static void map_clients(struct stress_ctx *ctx)
{
    const json_t *doc = stress_res_nodes(ctx->res);
    const json_t *node, *cl;
    size_t i, j;

    json_array_foreach(json_object_get(doc, "nodes"), i, node)
    {
        const char *nn = json_string_value(json_object_get(node, "node"));
        json_array_foreach(json_object_get(node, "clients"), j, cl)
        {
            const char *id = json_string_value(json_object_get(cl, "id"));
            const char *mode = json_string_value(json_object_get(cl, "mode"));
            if (nn != NULL && id != NULL && mode != NULL) {
                stress_rec_client(ctx->rec, id, nn, mode);
            }
        }
    }
}

/* What the events say is finished: this reader's own tally of the run's
 * events, or the coordinator's per-tag count when that is ahead (it is
 * exact even when this reader fell behind the ring and missed events). */
static int64_t events_finished(const struct stress_ctx *ctx)
{
    int64_t c, d, x;

    stress_rec_event_tally(ctx->rec, &c, &d, &x);
    return c + d + x > ctx->coord_finished ? c + d + x : ctx->coord_finished;
}

/* Finished by the monitor(s) the plan trusts. */
static int all_finished(const struct stress_ctx *ctx)
{
    int64_t n = ctx->prog.inserted;
    int ev = events_finished(ctx) >= n, db = ctx->db_finished >= n;

    if (!ctx->prog.done || n == 0) {
        return 0;
    }
    switch (ctx->plan.monitor) {
    case STRESS_MONITOR_EVENTS:
        return ev;
    case STRESS_MONITOR_POLLING:
        return db;
    default:
        return ev && db;
    }
}

/* Seconds the schedule still needs from stage 'cur' on (count stages as
 * fast as possible count as 0), plus the longest delay; -1 unknown. */
static double schedule_left(const struct stress_ctx *ctx, int64_t now)
{
    const struct stress_plan *pl = &ctx->plan;
    const struct stress_ins_progress *p = &ctx->prog;
    double left = 0;
    int i;

    for (i = p->stage; i < pl->nstages; i++) {
        const struct stress_stage *st = &pl->stages[i];
        double secs = st->duration_us > 0 ? (double)st->duration_us / 1e6
                      : st->rate > 0      ? (double)st->count / st->rate
                                          : 0;
        if (i == p->stage && p->stages[i].started_us > 0) {
            secs -= (double)(now - p->stages[i].started_us) / 1e6;
        }
        left += secs > 0 ? secs : 0;
    }
    return left + (double)(pl->delay_us + pl->spread_us) / 1e6;
}

static void progress(struct stress_ctx *ctx, int64_t now, int final)
{
    static int64_t last_plain, hist_t[8], hist_n[8];
    static unsigned nhist;
    const struct stress_ins_progress *p = &ctx->prog;
    char a[32], b[32], c[32], d[32], e[32], f[32], stage[96], eta[32];
    int64_t evfin = events_finished(ctx);
    int64_t fin = ctx->plan.monitor == STRESS_MONITOR_EVENTS ? evfin
                  : ctx->plan.monitor == STRESS_MONITOR_POLLING
                      ? ctx->db_finished
                      : (evfin < ctx->db_finished ? evfin : ctx->db_finished);
    int64_t failed =
        ctx->db_states[TRIB_WS_DISCARDED] + ctx->db_states[TRIB_WS_CANCELLED];
    double el = (double)(now - ctx->started_us) / 1e6, rate = 0, left = -1;
    unsigned oldest;

    /* Finishing rate over the last few seconds. */
    hist_t[nhist % 8] = now;
    hist_n[nhist % 8] = fin;
    nhist++;
    oldest = nhist > 6 ? (nhist - 6) % 8 : 0;
    if (now > hist_t[oldest]) {
        rate = (double)(fin - hist_n[oldest]) * 1e6 /
               (double)(now - hist_t[oldest]);
    }
    if (ctx->quiet) {
        return;
    }
    if (!ctx->tty && !final && now - last_plain < PROGRESS_EVERY) {
        return;
    }
    last_plain = now;
    if (p->stage < ctx->plan.nstages && !p->done) {
        snprintf(stage, sizeof(stage), "stage %d/%d %s %.0f/s", p->stage + 1,
                 ctx->plan.nstages, ctx->plan.stages[p->stage].name,
                 p->rate_now);
        left = schedule_left(ctx, now);
    } else {
        snprintf(stage, sizeof(stage), "all inserted");
        if (rate > 0) {
            left = (double)(p->inserted - fin) / rate;
        }
    }
    if (final) {
        snprintf(eta, sizeof(eta), "%s", "");
    } else if (left >= 0) {
        snprintf(eta, sizeof(eta), " | ETA %.0fs", left);
    } else {
        snprintf(eta, sizeof(eta), " | ETA ?");
    }
    trib_fmt_count(a, sizeof(a), p->inserted);
    trib_fmt_count(b, sizeof(b), stress_plan_jobs(&ctx->plan));
    trib_fmt_count(c, sizeof(c), fin);
    trib_fmt_count(d, sizeof(d), failed);
    fprintf(stderr,
            "%s%5.0fs  %s | inserted %s/%s%s | finished %s (%.0f/s) "
            "failed %s%s",
            ctx->tty ? "\r\033[K" : "", el, stage, a, b,
            p->due > p->inserted + (int64_t)ctx->plan.batch * ctx->plan.streams
                ? " (behind)"
                : "",
            c, rate > 0 ? rate : 0, d, eta);
    if (ctx->plan.monitor == STRESS_MONITOR_BOTH && ctx->ctl != NULL) {
        trib_fmt_count(e, sizeof(e), evfin);
        trib_fmt_count(f, sizeof(f), ctx->db_finished);
        fprintf(stderr, " [events %s, db %s]", e, f);
    }
    fputs(ctx->tty && !final ? "" : "\n", stderr);
    fflush(stderr);
}

void stress_run(struct stress_ctx *ctx)
{
    struct trib_ctl_batch b;
    int64_t now, next_sec, next_poll, stop_at = 0, settle_at = 0;
    int stopped = 0, sigs_seen = 0;

    trib_ctl_batch_init(&b);
    ctx->outcome = "finished";
    next_sec = next_poll = ctx->started_us;
    for (;;) {
        int n = read_events(ctx, &b, ctx->prog.done ? EVENTS_HOLD_MS : 20);
        if (ctx->ctl == NULL || n < 0) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        now = trib_now_us();
        stress_ins_progress(ctx->ins, &ctx->prog);
        if (ctx->prog.failed && !stopped) {
            snprintf(ctx->error, sizeof(ctx->error), "inserting: %s",
                     ctx->prog.error);
            ctx->outcome = "error";
            stress_ins_stop(ctx->ins);
            stopped = 1;
            break;
        }
        if (ctx->prog.done && ctx->insert_ended_us == 0) {
            ctx->insert_ended_us = now;
        }
        if (stress_signals > sigs_seen) {
            sigs_seen = stress_signals;
            if (sigs_seen >= 2) {
                ctx->outcome = "interrupted";
                break;
            }
            stress_ins_stop(ctx->ins);
            stopped = 1;
            ctx->outcome = "interrupted";
            stop_at = now + ctx->plan.grace_us;
            if (!ctx->quiet) {
                fprintf(stderr,
                        "%s" STRESS_PROG ": interrupted: no more inserts; "
                        "following the jobs in for %.0f s (Ctrl-C again "
                        "to stop now)\n",
                        ctx->tty ? "\n" : "", (double)ctx->plan.grace_us / 1e6);
            }
        }
        if (!stopped && now - ctx->started_us >= ctx->plan.timeout_us) {
            stress_ins_stop(ctx->ins);
            stopped = 1;
            ctx->outcome = "timeout";
            break;
        }
        if (now >= next_poll) {
            /* Once every job is in and due, river_job decides the end
             * (unless only events are trusted): look four times a second.
             * A poll that costs much is spaced out (5x its cost). */
            int64_t gap = TRIB_US_PER_S;
            if (ctx->prog.done && ctx->plan.monitor != STRESS_MONITOR_EVENTS &&
                now >= ctx->insert_ended_us + ctx->plan.delay_us +
                           ctx->plan.spread_us) {
                gap = TRIB_US_PER_S / 4;
            }
            if (ctx->poll_cost_us * 5 > gap) {
                gap = ctx->poll_cost_us * 5;
            }
            next_poll = now + gap;
            if (stress_poll_db(ctx) != 0 && !ctx->quiet) {
                fprintf(stderr, "%s" STRESS_PROG ": %s\n", ctx->tty ? "\n" : "",
                        ctx->error);
            }
        }
        if (now >= next_sec) {
            next_sec = now + TRIB_US_PER_S;
            poll_coord(ctx);
            if (ctx->res != NULL) {
                stress_res_sample(ctx->res);
                map_clients(ctx);
            }
            progress(ctx, now, 0);
        }
        if (stop_at != 0 && now >= stop_at) {
            break;
        }
        /* The events say every job is in: confirm with the database
         * now rather than at the next second. */
        if (ctx->prog.done && ctx->plan.monitor == STRESS_MONITOR_BOTH &&
            events_finished(ctx) >= ctx->prog.inserted &&
            ctx->db_finished < ctx->prog.inserted &&
            now - ctx->db_polled_us >= 100 * 1000) {
            stress_poll_db(ctx);
        }
        if (all_finished(ctx)) {
            break;
        }
        if (ctx->prog.done && ctx->prog.inserted == 0) {
            break; /* stopped before anything went in */
        }
    }
    stress_ins_stop(ctx->ins);
    stress_ins_join(ctx->ins);
    stress_ins_progress(ctx->ins, &ctx->prog);
    if (ctx->insert_ended_us == 0) {
        ctx->insert_ended_us = trib_now_us();
    }
    /* Settle: the other monitor may be a moment behind (events in
     * transit; a poll older than the last event). Not after Ctrl-C: the
     * grace period was the wait asked for. */
    settle_at = trib_now_us() + SETTLE_US;
    while (ctx->ctl != NULL && strcmp(ctx->outcome, "interrupted") != 0 &&
           trib_now_us() < settle_at) {
        if (read_events(ctx, &b, EVENTS_HOLD_MS) < 0) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        stress_poll_db(ctx);
        poll_coord(ctx);
        if (events_finished(ctx) == ctx->db_finished) {
            break;
        }
    }
    stress_poll_db(ctx);
    poll_coord(ctx);
    if (ctx->res != NULL) {
        stress_res_sample(ctx->res);
        map_clients(ctx);
    }
    ctx->ended_us = trib_now_us();
    progress(ctx, ctx->ended_us, 1);
    trib_ctl_batch_fini(&b);
}

/* Microseconds since the epoch from a text column holding an integer. */
static int64_t col_i64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col)
               ? 0
               : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static const char *col_str(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int stress_read_rows(struct stress_ctx *ctx)
{
    struct trib_buf sql = TRIB_BUF_INIT;
    const char *params[3];
    char after[32], limit[32];
    int64_t last = ctx->min_id;
    int rv = -1;

#define US(col) "(extract(epoch from " col ") * 1000000)::bigint"
    trib_buf_printf(
        &sql,
        "SELECT id, state::text, queue, kind, attempt, "
        "max_attempts, " US("created_at") ", " US("scheduled_at") ", " US(
            "attempted_at") ", " US("finalized_at") ", "
                                                    "(metadata->'"
                                                    "tributary'->>'"
                                                    "due_us')::"
                                                    "bigint, "
                                                    "(metadata->'"
                                                    "tributary'->>'"
                                                    "stage')::int, "
                                                    "attempted_by["
                                                    "cardinality("
                                                    "attempted_by)]"
                                                    ", "
                                                    "coalesce("
                                                    "cardinality("
                                                    "errors), 0), "
                                                    "errors["
                                                    "cardinality("
                                                    "errors)]->>'"
                                                    "error' "
                                                    "FROM %s WHERE "
                                                    "id > $1 AND "
                                                    "metadata @> "
                                                    "$2::jsonb "
                                                    "ORDER BY id "
                                                    "LIMIT $3",
        ctx->table);
#undef US
    snprintf(limit, sizeof(limit), "%d", READ_CHUNK);
    for (;;) {
        PGresult *r;
        int i, n;

        snprintf(after, sizeof(after), "%" PRId64, last);
        params[0] = after;
        params[1] = ctx->meta_filter;
        params[2] = limit;
        r = PQexecParams(ctx->db, sql.data, 3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(ctx->error, sizeof(ctx->error),
                     "reading the run's jobs: %s", PQerrorMessage(ctx->db));
            PQclear(r);
            goto out;
        }
        n = PQntuples(r);
        for (i = 0; i < n; i++) {
            struct stress_db_row row;
            row.id = col_i64(r, i, 0);
            row.state = PQgetvalue(r, i, 1);
            row.queue = PQgetvalue(r, i, 2);
            row.kind = PQgetvalue(r, i, 3);
            row.attempt = (int)col_i64(r, i, 4);
            row.max_attempts = (int)col_i64(r, i, 5);
            row.created_at = col_i64(r, i, 6);
            row.scheduled_at = col_i64(r, i, 7);
            row.attempted_at = col_i64(r, i, 8);
            row.finalized_at = col_i64(r, i, 9);
            row.due_us = col_i64(r, i, 10);
            /* Without a spread the inserter leaves due_us out: the due
             * time is created_at + delay exactly (one clock reading). */
            if (row.due_us == 0 && ctx->plan.spread_us == 0 &&
                row.created_at != 0) {
                row.due_us = row.created_at + ctx->plan.delay_us;
            }
            row.stage = PQgetisnull(r, i, 11) ? -1 : (int)col_i64(r, i, 11);
            row.last_client = col_str(r, i, 12);
            row.nerrors = (int)col_i64(r, i, 13);
            row.last_error = col_str(r, i, 14);
            stress_rec_db_row(ctx->rec, &row);
            last = row.id;
        }
        PQclear(r);
        if (n < READ_CHUNK) {
            break;
        }
    }
    rv = 0;
out:
    trib_buf_fini(&sql);
    return rv;
}
