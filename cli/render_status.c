/*
 * render_status.c -- the status document (docs/CONTROL.md) for humans: the
 * full `tributary status` view, the `watch` screen, a one-line summary,
 * and the "what is missing, and where" report of `wait` at its timeout.
 */
#include "render.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trib_time.h"

#define CELL 48 /* cell buffer size */

static const char *const lat_kinds[] = {"end_to_end", "pickup", "run",
                                        "queue_wait", "complete"};
static const char *const nonfinal[] = {"available", "scheduled", "retryable",
                                       "running", "pending"};
#define NNONFINAL 5

/* latency_ms.<kind>.<q> of a counts-bearing object. */
static void lat(char *buf, const json_t *o, const char *kind, const char *q)
{
    const json_t *l = json_object_get(json_object_get(o, "latency_ms"), kind);

    trib_j_ms(buf, CELL, l, q);
}

static void rate(char *buf, const json_t *o, const char *window)
{
    trib_fmt_rate(buf, CELL,
                  trib_j_num(json_object_get(o, "rate"), window, NULL));
}

/* "12 s ago" for an RFC 3339 time relative to the document's time. */
static void ago(char *buf, size_t n, const json_t *doc, const char *when)
{
    int64_t now, t;
    char d[32];

    if (when == NULL || trib_pgtime_parse(when, &t) != 0 ||
        trib_j_str(doc, "generated_at") == NULL ||
        trib_pgtime_parse(trib_j_str(doc, "generated_at"), &now) != 0) {
        snprintf(buf, n, "%s", when ? when : "-");
        return;
    }
    trib_fmt_ms(d, sizeof(d), (double)(now - t) / 1000.0);
    snprintf(buf, n, "%s ago", d);
}

/* "queue=default kind=noop" from doc.filter, "" when unfiltered. */
static void filter_text(struct trib_buf *b, const json_t *doc)
{
    const json_t *f = json_object_get(doc, "filter");
    static const char *const keys[] = {"queue", "kind", "node", "tag"};
    size_t i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = trib_j_str(f, keys[i]);
        if (v != NULL) {
            trib_buf_printf(b, "%s%s=%s", b->len ? " " : "", keys[i], v);
        }
    }
}

/* "finished 100 (completed 90, discarded 6, cancelled 4) · retryable 9 ·
 * snoozed 2" */
static void counts_line(struct trib_buf *b, const json_t *o)
{
    char f[CELL], c[CELL], d[CELL], x[CELL], r[CELL], s[CELL];

    trib_j_count(f, CELL, o, "finished");
    trib_j_count(c, CELL, o, "completed");
    trib_j_count(d, CELL, o, "discarded");
    trib_j_count(x, CELL, o, "cancelled");
    trib_j_count(r, CELL, o, "retryable");
    trib_j_count(s, CELL, o, "snoozed");
    trib_buf_printf(b,
                    "finished %s (completed %s, discarded %s, cancelled %s) "
                    "· retryable %s · snoozed %s",
                    f, c, d, x, r, s);
}

static void coordinator_line(struct trib_buf *b, const json_t *doc)
{
    const json_t *co = json_object_get(doc, "coordinator");
    char up[CELL], ev[CELL], ba[CELL], du[CELL], in[CELL], ga[CELL], rj[CELL],
        au[CELL];
    const char *dir = trib_j_str(co, "data_dir");

    if (co == NULL) {
        trib_buf_puts(b, "Coordinator: -\n");
        return;
    }
    trib_fmt_ms(up, CELL, trib_j_num(co, "uptime_s", NULL) * 1000.0);
    trib_j_count(ev, CELL, co, "events_applied");
    trib_j_count(ba, CELL, co, "batches");
    trib_j_count(du, CELL, co, "duplicates");
    trib_j_count(in, CELL, co, "invalid");
    trib_j_count(ga, CELL, co, "gaps");
    trib_j_count(rj, CELL, co, "frames_rejected");
    trib_j_count(au, CELL, co, "auth_failures");
    trib_buf_printf(b,
                    "Coordinator %s (v%s): up %s · %s events applied in %s "
                    "batches (%s duplicates, %s invalid, %s gaps)\n",
                    trib_j_str(co, "id") ? trib_j_str(co, "id") : "-",
                    trib_j_str(co, "version") ? trib_j_str(co, "version") : "?",
                    up, ev, ba, du, in, ga);
    trib_buf_printf(b, "  frames rejected %s · auth failures %s · ", rj, au);
    if (json_is_true(json_object_get(co, "persistent"))) {
        trib_buf_printf(b, "persistent (%s)\n", dir ? dir : "-");
    } else {
        trib_buf_puts(b, "memory only (no --data-dir: a restart forgets "
                         "everything)\n");
    }
}

static void nodes_section(struct trib_buf *b, const json_t *doc)
{
    const json_t *nodes = json_object_get(doc, "nodes"), *n, *cl, *q;
    struct trib_table t;
    struct trib_buf qs = TRIB_BUF_INIT;
    size_t i, j, k, alive = 0;
    char hb[CELL], inf[CELL], fin[CELL];

    for (i = 0; i < json_array_size(nodes); i++) {
        const char *l = trib_j_str(json_array_get(nodes, i), "liveness");
        alive += l != NULL && strcmp(l, "alive") == 0;
    }
    trib_buf_printf(b, "\nNodes (%zu, %zu alive)\n", json_array_size(nodes),
                    alive);
    if (json_array_size(nodes) == 0) {
        trib_buf_puts(b, "  no agent has connected yet\n");
        return;
    }
    trib_table_init(&t, "llllllrlr", "node", "liveness", "heartbeat", "client",
                    "mode", "queues", "in flight", "fetch", "finished");
    for (i = 0; i < json_array_size(nodes); i++) {
        n = json_array_get(nodes, i);
        cl = json_object_get(n, "clients");
        trib_j_ms(hb, CELL, n, "last_heartbeat_age_ms");
        if (strcmp(hb, "-") != 0) {
            strcat(hb, " ago");
        }
        if (json_array_size(cl) == 0) {
            trib_j_count(fin, CELL, n, "finished");
            trib_table_row(&t, trib_j_str(n, "node"), trib_j_str(n, "liveness"),
                           hb, "(no clients)", "", "", "", "", fin);
        }
        for (j = 0; j < json_array_size(cl); j++) {
            const json_t *c = json_array_get(cl, j);
            trib_buf_reset(&qs);
            json_array_foreach(json_object_get(c, "queues"), k, q)
            {
                trib_buf_printf(&qs, "%s%s", k ? "," : "",
                                json_string_value(q) ? json_string_value(q)
                                                     : "?");
            }
            trib_j_count(inf, CELL, c, "in_flight");
            trib_j_count(fin, CELL, c, "finished");
            trib_table_row(&t, j == 0 ? trib_j_str(n, "node") : "",
                           j == 0 ? trib_j_str(n, "liveness") : "",
                           j == 0 ? hb : "", trib_j_str(c, "id"),
                           trib_j_str(c, "mode"), qs.len ? qs.data : "-", inf,
                           json_is_true(json_object_get(c, "fetch_paused"))
                               ? "PAUSED (outbox full)"
                               : "ok",
                           fin);
        }
    }
    trib_table_render(&t, b, "  ");
    trib_table_fini(&t);
    trib_buf_fini(&qs);
}

static void totals_section(struct trib_buf *b, const json_t *doc)
{
    const json_t *to = json_object_get(doc, "totals");
    const json_t *ev = json_object_get(to, "events");
    struct trib_table t;
    char r1[CELL], r10[CELL], r60[CELL], inf[CELL], cnt[CELL], p50[CELL],
        p95[CELL], p99[CELL], mx[CELL];
    const char *key;
    const json_t *v;
    size_t i;
    int first = 1;

    trib_buf_puts(b, "\nTotals\n  ");
    counts_line(b, to);
    trib_j_count(inf, CELL, to, "in_flight");
    trib_buf_printf(b, " · in flight %s\n  events:", inf);
    json_object_foreach((json_t *)ev, key, v)
    {
        trib_fmt_count(cnt, CELL, trib_j_int(ev, key, NULL));
        trib_buf_printf(b, "%s %s %s", first ? "" : ",", key, cnt);
        first = 0;
    }
    rate(r1, to, "1s");
    rate(r10, to, "10s");
    rate(r60, to, "1m");
    trib_buf_printf(b, "%s\n  rate: %s (1s), %s (10s), %s (1m)\n\n",
                    first ? " -" : "", r1, r10, r60);
    trib_table_init(&t, "lrrrrr", "latency", "count", "p50", "p95", "p99",
                    "max");
    for (i = 0; i < sizeof(lat_kinds) / sizeof(lat_kinds[0]); i++) {
        const json_t *l =
            json_object_get(json_object_get(to, "latency_ms"), lat_kinds[i]);
        trib_j_count(cnt, CELL, l, "count");
        trib_j_ms(p50, CELL, l, "p50");
        trib_j_ms(p95, CELL, l, "p95");
        trib_j_ms(p99, CELL, l, "p99");
        trib_j_ms(mx, CELL, l, "max");
        trib_table_row(&t, lat_kinds[i], cnt, p50, p95, p99, mx);
    }
    trib_table_render(&t, b, "  ");
    trib_table_fini(&t);
}

/* Per-queue / per-kind / per-mode table: 'field' names the row key. At
 * most 'limit' rows (0 = all). */
static void counts_table(struct trib_buf *b, const json_t *rows,
                         const char *field, size_t limit, const char *indent)
{
    struct trib_table t;
    char f[CELL], c[CELL], d[CELL], x[CELL], r[CELL], rt[CELL], pk[CELL],
        rn[CELL], e2e[CELL];
    size_t i;

    trib_table_init(&t, "lrrrrrrrrr", field, "finished", "completed",
                    "discarded", "cancelled", "retryable", "rate 10s",
                    "pickup p95", "run p95", "e2e p95");
    for (i = 0; i < json_array_size(rows) && (limit == 0 || i < limit); i++) {
        const json_t *o = json_array_get(rows, i);
        trib_j_count(f, CELL, o, "finished");
        trib_j_count(c, CELL, o, "completed");
        trib_j_count(d, CELL, o, "discarded");
        trib_j_count(x, CELL, o, "cancelled");
        trib_j_count(r, CELL, o, "retryable");
        rate(rt, o, "10s");
        lat(pk, o, "pickup", "p95");
        lat(rn, o, "run", "p95");
        lat(e2e, o, "end_to_end", "p95");
        trib_table_row(&t, trib_j_str(o, field), f, c, d, x, r, rt, pk, rn,
                       e2e);
    }
    if (t.nrows == 0) {
        trib_buf_printf(b, "%s(none yet)\n", indent);
    } else {
        trib_table_render(&t, b, indent);
    }
    trib_table_fini(&t);
    if (limit != 0 && json_array_size(rows) > limit) {
        trib_buf_printf(b, "%s(%zu more)\n", indent,
                        json_array_size(rows) - limit);
    }
}

static void failures_section(struct trib_buf *b, const json_t *doc,
                             size_t limit, size_t errw)
{
    const json_t *fl = json_object_get(doc, "failures");
    struct trib_table t;
    char cnt[CELL], dis[CELL], last[CELL], err[256];
    size_t i;

    if (json_array_size(fl) == 0) {
        trib_buf_puts(b, "  no failures\n");
        return;
    }
    trib_table_init(&t, "rrlll", "count", "discarded", "kind", "last seen",
                    "error");
    for (i = 0; i < json_array_size(fl) && i < limit; i++) {
        const json_t *f = json_array_get(fl, i);
        trib_j_count(cnt, CELL, f, "count");
        trib_j_count(dis, CELL, f, "discarded");
        ago(last, CELL, doc, trib_j_str(f, "last_seen"));
        trib_fmt_cut(err, sizeof(err), trib_j_str(f, "error"), errw);
        trib_table_row(&t, cnt, dis, trib_j_str(f, "kind"), last, err);
    }
    trib_table_render(&t, b, "  ");
    trib_table_fini(&t);
}

/* Database rows whose difference is not 0, and the explained reasons. */
static void database_section(struct trib_buf *b, const json_t *doc)
{
    const json_t *db = json_object_get(doc, "database");
    const json_t *st, *rows, *diffs;
    struct trib_table t;
    char age[CELL], every[CELL], v[8][CELL], dbn[CELL], evn[CELL], dif[CELL];
    size_t i, nd = 0;
    static const char *const states[] = {"available", "scheduled", "retryable",
                                         "running",   "pending",   "completed",
                                         "discarded", "cancelled"};

    trib_buf_puts(b, "\nDatabase view\n");
    if (db == NULL || json_is_null(db)) {
        trib_buf_puts(b, "  no database view (coordinator started without "
                         "--database-url)\n");
        return;
    }
    trib_j_ms(age, CELL, db, "age_ms");
    trib_j_ms(every, CELL, db, "interval_ms");
    trib_buf_printf(b, "  polled %s ago, every %s\n", age, every);
    if (trib_j_str(db, "error") != NULL) {
        trib_buf_printf(b, "  last poll failed: %s\n", trib_j_str(db, "error"));
    }
    for (i = 0; i < json_array_size(json_object_get(db, "warnings")); i++) {
        const char *w = json_string_value(
            json_array_get(json_object_get(db, "warnings"), i));
        if (w != NULL) {
            trib_buf_printf(b, "  warning: %s\n", w);
        }
    }
    st = json_object_get(db, "states");
    if (json_is_object(st)) {
        trib_table_init(&t, "rrrrrrrr", states[0], states[1], states[2],
                        states[3], states[4], states[5], states[6], states[7]);
        for (i = 0; i < 8; i++) {
            trib_j_count(v[i], CELL, st, states[i]);
        }
        trib_table_row(&t, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
        trib_table_render(&t, b, "  ");
        trib_table_fini(&t);
    }
    rows = json_object_get(db, "rows");
    trib_table_init(&t, "lllrrr", "queue", "kind", "state", "database",
                    "events", "difference");
    for (i = 0; i < json_array_size(rows); i++) {
        const json_t *r = json_array_get(rows, i);
        int64_t d = trib_j_int(r, "difference", NULL);
        if (d == 0) {
            continue;
        }
        trib_j_count(dbn, CELL, r, "database");
        trib_j_count(evn, CELL, r, "events");
        trib_fmt_count(dif, CELL, d);
        if (d > 0) {
            memmove(dif + 1, dif, strlen(dif) + 1);
            dif[0] = '+';
        }
        trib_table_row(&t, trib_j_str(r, "queue"), trib_j_str(r, "kind"),
                       trib_j_str(r, "state"), dbn, evn, dif);
        nd++;
    }
    if (nd == 0) {
        trib_buf_printf(b,
                        "  event view and database agree on all %zu (queue, "
                        "kind, state) counts\n",
                        json_array_size(rows));
    } else {
        trib_buf_printf(b,
                        "  %zu of %zu (queue, kind, state) counts differ "
                        "(database - events):\n",
                        nd, json_array_size(rows));
        trib_table_render(&t, b, "    ");
    }
    trib_table_fini(&t);
    diffs = json_object_get(db, "differences");
    if (json_array_size(diffs) > 0) {
        trib_buf_puts(b, "  explained:\n");
        trib_table_init(&t, "lrl", "reason", "count", "detail");
        for (i = 0; i < json_array_size(diffs); i++) {
            const json_t *d = json_array_get(diffs, i);
            trib_j_count(dif, CELL, d, "count");
            trib_table_row(&t, trib_j_str(d, "reason"), dif,
                           trib_j_str(d, "detail"));
        }
        trib_table_render(&t, b, "    ");
        trib_table_fini(&t);
    }
}

void trib_render_status(struct trib_buf *b, const json_t *doc)
{
    struct trib_buf f = TRIB_BUF_INIT;

    coordinator_line(b, doc);
    filter_text(&f, doc);
    trib_buf_printf(
        b, "  as of %s%s%s\n",
        trib_j_str(doc, "generated_at") ? trib_j_str(doc, "generated_at") : "-",
        f.len ? " · filter: " : "", f.len ? f.data : "");
    trib_buf_fini(&f);
    nodes_section(b, doc);
    totals_section(b, doc);
    trib_buf_puts(b, "\nQueues\n");
    counts_table(b, json_object_get(doc, "queues"), "queue", 0, "  ");
    trib_buf_puts(b, "\nModes\n");
    counts_table(b, json_object_get(doc, "modes"), "mode", 0, "  ");
    trib_buf_puts(b, "\nTop failures\n");
    failures_section(b, doc, 10, 70);
    database_section(b, doc);
}

/* ---- one line and the watch screen --------------------------------------- */

static void liveness_counts(const json_t *doc, size_t *alive, size_t *total)
{
    const json_t *nodes = json_object_get(doc, "nodes");
    size_t i;

    *total = json_array_size(nodes);
    *alive = 0;
    for (i = 0; i < *total; i++) {
        const char *l = trib_j_str(json_array_get(nodes, i), "liveness");
        *alive += l != NULL && strcmp(l, "alive") == 0;
    }
}

void trib_render_status_line(struct trib_buf *b, const json_t *doc)
{
    const json_t *to = json_object_get(doc, "totals");
    char f[CELL], r1[CELL], r10[CELL], inf[CELL], d[CELL], x[CELL], r[CELL],
        e2e[CELL], pk[CELL];
    size_t alive, total;

    trib_j_count(f, CELL, to, "finished");
    rate(r1, to, "1s");
    rate(r10, to, "10s");
    trib_j_count(inf, CELL, to, "in_flight");
    trib_j_count(d, CELL, to, "discarded");
    trib_j_count(x, CELL, to, "cancelled");
    trib_j_count(r, CELL, to, "retryable");
    lat(e2e, to, "end_to_end", "p95");
    lat(pk, to, "pickup", "p95");
    liveness_counts(doc, &alive, &total);
    trib_buf_printf(
        b,
        "%s finished %s (%s 1s, %s 10s) · in flight %s · "
        "discarded %s · cancelled %s · retryable %s · p95 e2e "
        "%s pickup %s · nodes %zu/%zu alive",
        trib_j_str(doc, "generated_at") ? trib_j_str(doc, "generated_at") : "-",
        f, r1, r10, inf, d, x, r, e2e, pk, alive, total);
}

static void watch_nodes(struct trib_buf *b, const json_t *doc)
{
    const json_t *nodes = json_object_get(doc, "nodes");
    struct trib_table t;
    char hb[CELL], ncl[CELL], inf[CELL], fin[CELL];
    size_t i, j;

    trib_table_init(&t, "lllrrrl", "node", "liveness", "heartbeat", "clients",
                    "in flight", "finished", "fetch");
    for (i = 0; i < json_array_size(nodes); i++) {
        const json_t *n = json_array_get(nodes, i);
        const json_t *cl = json_object_get(n, "clients");
        int64_t in_flight = 0;
        int paused = 0;
        for (j = 0; j < json_array_size(cl); j++) {
            in_flight += trib_j_int(json_array_get(cl, j), "in_flight", NULL);
            paused |= json_is_true(
                json_object_get(json_array_get(cl, j), "fetch_paused"));
        }
        trib_j_ms(hb, CELL, n, "last_heartbeat_age_ms");
        trib_fmt_count(ncl, CELL, (int64_t)json_array_size(cl));
        trib_fmt_count(inf, CELL, in_flight);
        trib_j_count(fin, CELL, n, "finished");
        trib_table_row(&t, trib_j_str(n, "node"), trib_j_str(n, "liveness"), hb,
                       ncl, inf, fin,
                       paused                     ? "PAUSED"
                       : json_array_size(cl) == 0 ? "-"
                                                  : "ok");
    }
    trib_table_render(&t, b, "  ");
    trib_table_fini(&t);
}

/* Appends src to b line by line, each cut to cols characters, at most rows
 * lines. */
static void clip(struct trib_buf *b, const char *src, int rows, int cols)
{
    char line[1024];
    const char *p = src, *eol;
    int n = 0;

    while (*p && n < rows) {
        eol = strchr(p, '\n');
        if (eol == NULL) {
            eol = p + strlen(p);
        }
        snprintf(line, sizeof(line), "%.*s", (int)(eol - p), p);
        if (cols > 4) {
            char cut[1100];
            trib_fmt_cut(cut, sizeof(cut), line, (size_t)cols);
            trib_buf_puts(b, cut);
        } else {
            trib_buf_puts(b, line);
        }
        trib_buf_putc(b, '\n');
        n++;
        p = *eol ? eol + 1 : eol;
    }
}

void trib_render_watch(struct trib_buf *b, const json_t *doc, int rows,
                       int cols)
{
    struct trib_buf s = TRIB_BUF_INIT;
    const json_t *to = json_object_get(doc, "totals");
    const json_t *db = json_object_get(doc, "database");
    char r1[CELL], r10[CELL], r60[CELL], inf[CELL], e2e[CELL], pk[CELL],
        rn[CELL];
    size_t alive, total;

    coordinator_line(&s, doc);
    trib_buf_puts(&s, "\n");
    counts_line(&s, to);
    trib_j_count(inf, CELL, to, "in_flight");
    rate(r1, to, "1s");
    rate(r10, to, "10s");
    rate(r60, to, "1m");
    lat(e2e, to, "end_to_end", "p95");
    lat(pk, to, "pickup", "p95");
    lat(rn, to, "run", "p95");
    trib_buf_printf(&s,
                    " · in flight %s\nrate %s (1s) %s (10s) %s (1m) · p95: "
                    "e2e %s, pickup %s, run %s\n",
                    inf, r1, r10, r60, e2e, pk, rn);
    if (db == NULL || json_is_null(db)) {
        trib_buf_puts(&s, "database: no database view (coordinator started "
                          "without --database-url)\n");
    } else {
        const json_t *diffs = json_object_get(db, "differences");
        size_t i;
        trib_buf_puts(&s, "database:");
        if (trib_j_str(db, "error") != NULL) {
            trib_buf_printf(&s, " poll failed: %s", trib_j_str(db, "error"));
        } else if (json_array_size(diffs) == 0) {
            trib_buf_puts(&s, " agrees with the event view");
        }
        for (i = 0; i < json_array_size(diffs); i++) {
            const json_t *d = json_array_get(diffs, i);
            trib_fmt_count(inf, CELL, trib_j_int(d, "count", NULL));
            trib_buf_printf(
                &s, "%s %s %s", i ? "," : "",
                trib_j_str(d, "reason") ? trib_j_str(d, "reason") : "?", inf);
        }
        trib_buf_putc(&s, '\n');
    }
    trib_buf_puts(&s, "\nQueues\n");
    counts_table(&s, json_object_get(doc, "queues"), "queue", 8, "  ");
    liveness_counts(doc, &alive, &total);
    trib_buf_printf(&s, "\nNodes (%zu/%zu alive)\n", alive, total);
    watch_nodes(&s, doc);
    trib_buf_puts(&s, "\nTop failures\n");
    failures_section(&s, doc, 5, cols > 60 ? (size_t)cols - 40 : 20);
    clip(b, s.data, rows, cols);
    trib_buf_fini(&s);
}

/* ---- wait: what is missing, and where ------------------------------------ */

/* Non-final database jobs per queue, from database.rows (filtered by the
 * status filter's queue/kind in case the coordinator did not). */
static void pending_in_database(struct trib_buf *b, const json_t *status)
{
    const json_t *db = json_object_get(status, "database");
    const json_t *rows = json_object_get(db, "rows");
    const json_t *f = json_object_get(status, "filter");
    const char *fq = trib_j_str(f, "queue"), *fk = trib_j_str(f, "kind");
    struct trib_table t;
    const char *queues[64];
    int64_t n[64][NNONFINAL];
    char v[NNONFINAL][CELL];
    size_t nq = 0, i, k;
    int s;

    if (db == NULL || json_is_null(db)) {
        trib_buf_puts(b, "  no database view (coordinator started without "
                         "--database-url): cannot say which jobs are still "
                         "waiting in river_job\n");
        return;
    }
    memset(n, 0, sizeof(n));
    for (i = 0; i < json_array_size(rows); i++) {
        const json_t *r = json_array_get(rows, i);
        const char *q = trib_j_str(r, "queue"), *st = trib_j_str(r, "state");
        const char *kd = trib_j_str(r, "kind");
        if (q == NULL || st == NULL || (fq && strcmp(fq, q) != 0) ||
            (fk && kd && strcmp(fk, kd) != 0)) {
            continue;
        }
        for (s = 0; s < NNONFINAL && strcmp(st, nonfinal[s]) != 0; s++) {
        }
        if (s == NNONFINAL) {
            continue;
        }
        for (k = 0; k < nq && strcmp(queues[k], q) != 0; k++) {
        }
        if (k == nq) {
            if (nq == 64) {
                continue;
            }
            queues[nq++] = q;
        }
        n[k][s] += trib_j_int(r, "database", NULL);
    }
    if (nq == 0) {
        const json_t *st = json_object_get(db, "states");
        trib_buf_puts(b, "  database (all queues):");
        for (s = 0; s < NNONFINAL; s++) {
            trib_j_count(v[s], CELL, st, nonfinal[s]);
            trib_buf_printf(b, "%s %s %s", s ? "," : "", nonfinal[s], v[s]);
        }
        trib_buf_putc(b, '\n');
        return;
    }
    trib_buf_puts(b, "  jobs not final yet in the database:\n");
    trib_table_init(&t, "lrrrrr", "queue", nonfinal[0], nonfinal[1],
                    nonfinal[2], nonfinal[3], nonfinal[4]);
    for (k = 0; k < nq; k++) {
        for (s = 0; s < NNONFINAL; s++) {
            trib_fmt_count(v[s], CELL, n[k][s]);
        }
        trib_table_row(&t, queues[k], v[0], v[1], v[2], v[3], v[4]);
    }
    trib_table_render(&t, b, "    ");
    trib_table_fini(&t);
}

void trib_render_wait_missing(struct trib_buf *b, const json_t *wait,
                              const json_t *status)
{
    const json_t *nodes, *diffs;
    char cnt[CELL], fin[CELL], miss[CELL], failed[CELL], hb[CELL];
    size_t i, bad = 0;

    trib_j_count(cnt, CELL, wait, "count");
    trib_j_count(fin, CELL, wait, "finished");
    trib_j_count(failed, CELL, wait, "failed");
    trib_fmt_count(miss, CELL,
                   trib_j_int(wait, "count", NULL) -
                       trib_j_int(wait, "finished", NULL));
    trib_buf_printf(b,
                    "  finished %s of %s (%s missing; %s failed: discarded or "
                    "cancelled)\n",
                    fin, cnt, miss, failed);
    if (status == NULL) {
        return;
    }
    trib_buf_puts(b, "  event view per queue:\n");
    counts_table(b, json_object_get(status, "queues"), "queue", 0, "    ");
    trib_j_count(cnt, CELL, json_object_get(status, "totals"), "in_flight");
    trib_buf_printf(b, "  in flight on the agents: %s\n", cnt);
    pending_in_database(b, status);
    diffs = json_object_get(json_object_get(status, "database"), "differences");
    for (i = 0; i < json_array_size(diffs); i++) {
        const json_t *d = json_array_get(diffs, i);
        trib_j_count(cnt, CELL, d, "count");
        trib_buf_printf(b, "  database vs events: %s %s (%s)\n",
                        trib_j_str(d, "reason") ? trib_j_str(d, "reason") : "?",
                        cnt,
                        trib_j_str(d, "detail") ? trib_j_str(d, "detail") : "");
    }
    nodes = json_object_get(status, "nodes");
    for (i = 0; i < json_array_size(nodes); i++) {
        const json_t *n = json_array_get(nodes, i);
        const char *l = trib_j_str(n, "liveness");
        if (l != NULL && strcmp(l, "alive") == 0) {
            continue;
        }
        trib_j_ms(hb, CELL, n, "last_heartbeat_age_ms");
        trib_buf_printf(b, "  node %s is %s (last heartbeat %s ago)\n",
                        trib_j_str(n, "node") ? trib_j_str(n, "node") : "?",
                        l ? l : "?", hb);
        bad++;
    }
    if (json_array_size(nodes) == 0) {
        trib_buf_puts(b, "  no agent has connected to the coordinator\n");
    } else if (bad == 0) {
        trib_buf_printf(b, "  all %zu nodes alive\n", json_array_size(nodes));
    }
}
