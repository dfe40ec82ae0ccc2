/*
 * render_nodes.c -- the nodes and failures documents (docs/CONTROL.md) as
 * tables for `tributary nodes` and `tributary failures`.
 */
#include "render.h"

#include <stdio.h>
#include <string.h>

#include "trib_time.h"

#define CELL 64

/* "12 s ago" relative to the document's generated_at, else the raw text. */
static void ago(char *buf, const json_t *doc, const char *when)
{
    int64_t now, t;
    char d[32];
    const char *gen = trib_j_str(doc, "generated_at");

    if (when == NULL || gen == NULL || trib_pgtime_parse(when, &t) != 0 ||
        trib_pgtime_parse(gen, &now) != 0) {
        snprintf(buf, CELL, "%s", when ? when : "-");
        return;
    }
    trib_fmt_ms(d, sizeof(d), (double)(now - t) / 1000.0);
    snprintf(buf, CELL, "%s ago", d);
}

/* 1234567 bytes -> "1.2 MiB". */
static void bytes(char *buf, const json_t *o, const char *key)
{
    int ok;
    double v = (double)trib_j_int(o, key, &ok);

    if (!ok) {
        snprintf(buf, CELL, "-");
    } else if (v < 1024) {
        snprintf(buf, CELL, "%.0f B", v);
    } else if (v < 1024 * 1024) {
        snprintf(buf, CELL, "%.1f KiB", v / 1024);
    } else if (v < 1024.0 * 1024 * 1024) {
        snprintf(buf, CELL, "%.1f MiB", v / (1024 * 1024));
    } else {
        snprintf(buf, CELL, "%.2f GiB", v / (1024.0 * 1024 * 1024));
    }
}

static void str_list(struct trib_buf *b, const json_t *arr)
{
    const json_t *v;
    size_t i;

    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v)) {
            trib_buf_printf(b, "%s%s", i ? "," : "", json_string_value(v));
        } else if (json_is_integer(v)) {
            trib_buf_printf(b, "%s%lld", i ? "," : "",
                            (long long)json_integer_value(v));
        }
    }
    if (b->len == 0) {
        trib_buf_putc(b, '-');
    }
}

void trib_render_nodes(struct trib_buf *b, const json_t *doc)
{
    const json_t *nodes = json_object_get(doc, "nodes");
    struct trib_table t;
    struct trib_buf qs = TRIB_BUF_INIT;
    char hb[CELL], pid[CELL], cpu[CELL], rss[CELL], thr[CELL], ob[CELL],
        obb[CELL], dbc[CELL], fin[CELL], up[CELL];
    char inf[CELL], com[CELL], dis[CELL], can[CELL], obx[2 * CELL + 8];
    size_t i, j;

    if (json_array_size(nodes) == 0) {
        trib_buf_puts(b, "no agent has connected to the coordinator yet\n");
        return;
    }
    trib_table_init(&t, "lllrllllrrrrrr", "node", "host", "version", "pid",
                    "liveness", "heartbeat", "connected", "started", "cpu s",
                    "rss", "threads", "outbox", "db conns", "finished");
    for (i = 0; i < json_array_size(nodes); i++) {
        const json_t *n = json_array_get(nodes, i);
        const json_t *s = json_object_get(n, "sample");
        double u = trib_j_num(s, "cpu_user_s", NULL);
        double sy = trib_j_num(s, "cpu_sys_s", NULL);

        trib_j_ms(hb, CELL, n, "last_heartbeat_age_ms");
        if (strcmp(hb, "-") != 0) {
            strcat(hb, " ago");
        }
        if (json_is_integer(json_object_get(n, "pid"))) {
            snprintf(pid, CELL, "%lld",
                     (long long)json_integer_value(json_object_get(n, "pid")));
        } else {
            snprintf(pid, CELL, "-");
        }
        if (u == u && sy == sy) { /* not NaN */
            snprintf(cpu, CELL, "%.1f+%.1f", u, sy);
        } else {
            snprintf(cpu, CELL, "-");
        }
        bytes(rss, s, "rss_bytes");
        trib_j_count(thr, CELL, s, "threads");
        trib_j_count(ob, CELL, s, "outbox_events");
        bytes(obb, s, "outbox_bytes");
        if (strcmp(ob, "-") != 0) {
            snprintf(obx, sizeof(obx), "%s (%s)", ob, obb);
        } else {
            snprintf(obx, sizeof(obx), "-");
        }
        trib_j_count(dbc, CELL, s, "db_conns");
        trib_j_count(fin, CELL, n, "finished");
        ago(up, doc, trib_j_str(n, "started_at"));
        trib_table_row(
            &t, trib_j_str(n, "node"), trib_j_str(n, "host"),
            trib_j_str(n, "version"), pid, trib_j_str(n, "liveness"), hb,
            json_is_boolean(json_object_get(n, "connected"))
                ? (json_is_true(json_object_get(n, "connected")) ? "yes" : "no")
                : "-",
            up, cpu, rss, thr, obx, dbc, fin);
    }
    trib_table_render(&t, b, "");
    trib_table_fini(&t);

    trib_buf_puts(b, "\nClients\n");
    trib_table_init(&t, "lllrlrrrr", "node", "client", "mode / queues",
                    "in flight", "fetch", "finished", "completed", "discarded",
                    "cancelled");
    for (i = 0; i < json_array_size(nodes); i++) {
        const json_t *n = json_array_get(nodes, i);
        const json_t *cl = json_object_get(n, "clients");
        for (j = 0; j < json_array_size(cl); j++) {
            const json_t *c = json_array_get(cl, j);
            trib_buf_reset(&qs);
            trib_buf_printf(&qs, "%s ",
                            trib_j_str(c, "mode") ? trib_j_str(c, "mode")
                                                  : "?");
            str_list(&qs, json_object_get(c, "queues"));
            trib_j_count(inf, CELL, c, "in_flight");
            trib_j_count(fin, CELL, c, "finished");
            trib_j_count(com, CELL, c, "completed");
            trib_j_count(dis, CELL, c, "discarded");
            trib_j_count(can, CELL, c, "cancelled");
            trib_table_row(&t, j == 0 ? trib_j_str(n, "node") : "",
                           trib_j_str(c, "id"), qs.data, inf,
                           json_is_true(json_object_get(c, "fetch_paused"))
                               ? "PAUSED (outbox full)"
                               : "ok",
                           fin, com, dis, can);
        }
    }
    if (t.nrows == 0) {
        trib_buf_puts(b, "  no clients reported\n");
    } else {
        trib_table_render(&t, b, "  ");
    }
    trib_table_fini(&t);
    trib_buf_fini(&qs);
    trib_buf_puts(b, "\nliveness: alive = heartbeat within 3 periods, late = "
                     "3-10 missed, missing = more,\nstopped = said goodbye\n");
}

void trib_render_failures(struct trib_buf *b, const json_t *doc)
{
    const json_t *fl = json_object_get(doc, "failures");
    struct trib_table t;
    struct trib_buf qs = TRIB_BUF_INIT, ids = TRIB_BUF_INIT;
    char cnt[CELL], dis[CELL], first[CELL], last[CELL], err[256];
    int64_t other;
    size_t i;

    if (json_array_size(fl) == 0) {
        trib_buf_puts(b, "no failures\n");
    } else {
        trib_table_init(&t, "rrllllll", "count", "discarded", "kind", "queues",
                        "first seen", "last seen", "sample jobs", "error");
        for (i = 0; i < json_array_size(fl); i++) {
            const json_t *f = json_array_get(fl, i);
            trib_j_count(cnt, CELL, f, "count");
            trib_j_count(dis, CELL, f, "discarded");
            ago(first, doc, trib_j_str(f, "first_seen"));
            ago(last, doc, trib_j_str(f, "last_seen"));
            trib_buf_reset(&qs);
            str_list(&qs, json_object_get(f, "queues"));
            trib_buf_reset(&ids);
            str_list(&ids, json_object_get(f, "sample_job_ids"));
            trib_fmt_cut(err, sizeof(err), trib_j_str(f, "error"), 100);
            trib_table_row(&t, cnt, dis, trib_j_str(f, "kind"), qs.data, first,
                           last, ids.data, err);
        }
        trib_table_render(&t, b, "");
        trib_table_fini(&t);
        trib_buf_puts(b, "\nerrors are grouped by (kind, normalised text): "
                         "digit runs -> N, hex/UUID-like -> X\n");
    }
    other = trib_j_int(doc, "other", NULL);
    if (other > 0) {
        trib_fmt_count(cnt, CELL, other);
        trib_buf_printf(b,
                        "%s more failure(s) arrived after the group table "
                        "was full (counted as \"other\")\n",
                        cnt);
    }
    trib_buf_fini(&qs);
    trib_buf_fini(&ids);
}
