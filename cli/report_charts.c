/*
 * report_charts.c -- the charts of one run's HTML report, built from the
 * document's series, cdf, histogram, breakdowns, mixed and resources
 * (docs/REPORT.md). Each chart is always present (data-chart names are
 * stable: the screenshot check and the tests look for them); a chart
 * without data shows "no data" inside its frame.
 */
#include "report_priv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_AGENTS 10 /* lines per resource chart */

static void fig(struct trib_buf *b, struct rp_chart *c)
{
    trib_buf_puts(b, "<figure>");
    rp_chart_svg(b, c);
    trib_buf_puts(b, "</figure>\n");
    rp_chart_fini(c);
}

static void throughput(struct trib_buf *b, const json_t *doc)
{
    const json_t *s = rp_get(doc, "series");
    const json_t *t = rp_arr(s, "t");
    struct rp_chart c;

    rp_chart_init(&c, "throughput", "Throughput over time", "time since start",
                  RP_U_SEC, "jobs per second / backlog", RP_U_COUNT);
    rp_chart_series(&c, "target rate", t, rp_arr(s, "target_rate"), 9, 1);
    rp_chart_series(&c, "inserted/s", t, rp_arr(s, "inserted"), 0, 0);
    rp_chart_series(&c, "finished/s", t, rp_arr(s, "finished"), 2, 0);
    rp_chart_series(&c, "failed/s", t, rp_arr(s, "failed"), 3, 0);
    rp_chart_series(&c, "backlog (jobs)", t, rp_arr(s, "backlog"), 1, 1);
    rp_chart_stage_marks(&c, doc);
    fig(b, &c);
}

static void latency(struct trib_buf *b, const json_t *doc)
{
    const json_t *s = rp_get(doc, "series");
    const json_t *t = rp_arr(s, "t");
    struct rp_chart c;

    rp_chart_init(&c, "latency", "Latency percentiles over time",
                  "time since start", RP_U_SEC, "end-to-end of jobs finishing",
                  RP_U_MS);
    rp_chart_series(&c, "e2e p50", t, rp_arr(s, "end_to_end_ms.p50"), 2, 0);
    rp_chart_series(&c, "e2e p95", t, rp_arr(s, "end_to_end_ms.p95"), 1, 0);
    rp_chart_series(&c, "e2e p99", t, rp_arr(s, "end_to_end_ms.p99"), 3, 0);
    rp_chart_series(&c, "pickup p95", t, rp_arr(s, "pickup_ms.p95"), 4, 1);
    rp_chart_stage_marks(&c, doc);
    fig(b, &c);
}

static void cdf(struct trib_buf *b, const json_t *doc, const char *id,
                const char *title, const char *metric)
{
    char path[64], name[64];
    const json_t *bymode;
    const char *k;
    json_t *v;
    struct rp_chart c;
    int color = 1;

    rp_chart_init(&c, id, title, "latency (log scale)", RP_U_MS,
                  "fraction of jobs", RP_U_FRAC);
    c.xlog = 1;
    c.yfrac = 1;
    snprintf(path, sizeof(path), "cdf.%s", metric);
    rp_chart_pairs(&c, "all jobs", rp_arr(doc, path), 0, 0);
    snprintf(path, sizeof(path), "cdf.%s_by_mode", metric);
    bymode = rp_get(doc, path);
    if (json_is_object(bymode)) {
        json_object_foreach((json_t *)bymode, k, v)
        {
            snprintf(name, sizeof(name), "%s", k);
            rp_chart_pairs(&c, name, v, color++, 1);
        }
    }
    fig(b, &c);
}

static void histogram(struct trib_buf *b, const json_t *doc)
{
    const json_t *h = rp_arr(doc, "latency_ms.end_to_end.histogram");
    struct rp_panel p;
    char lab[40], d[32];
    size_t i;
    int k;

    rp_panel_init(&p, "jobs per end-to-end latency bucket (upper bound)",
                  RP_U_COUNT);
    rp_panel_ser(&p, "jobs");
    for (i = 0; h != NULL && i < json_array_size(h); i++) {
        const json_t *e = json_array_get(h, i);
        double le = rp_num(e, "le");
        if (isfinite(le)) {
            rp_fmt_dur(d, sizeof(d), le);
            snprintf(lab, sizeof(lab), "≤%s", d);
        } else {
            snprintf(lab, sizeof(lab), "more");
        }
        k = rp_panel_cat(&p, lab);
        if (k >= 0) {
            p.v[0][k] = rp_num(e, "count");
        }
    }
    trib_buf_puts(b, "<figure>");
    rp_bars_svg(b, "histogram", "End-to-end latency histogram", &p, 1);
    trib_buf_puts(b, "</figure>\n");
}

static void nodes(struct trib_buf *b, const json_t *doc)
{
    const json_t *n = rp_arr(doc, "breakdowns.node");
    struct rp_panel p[2];
    size_t i;
    int k;

    rp_panel_init(&p[0], "jobs finished", RP_U_COUNT);
    rp_panel_ser(&p[0], "completed");
    rp_panel_ser(&p[0], "discarded");
    rp_panel_init(&p[1], "end-to-end latency", RP_U_MS);
    rp_panel_ser(&p[1], "p50");
    rp_panel_ser(&p[1], "p95");
    for (i = 0; n != NULL && i < json_array_size(n); i++) {
        const json_t *e = json_array_get(n, i);
        k = rp_panel_cat(&p[0], rp_str(e, "key"));
        rp_panel_cat(&p[1], rp_str(e, "key"));
        if (k < 0) {
            break;
        }
        p[0].v[0][k] = rp_num(e, "completed");
        p[0].v[1][k] = rp_num(e, "discarded");
        p[1].v[0][k] = rp_num(e, "latency_ms.end_to_end.p50");
        p[1].v[1][k] = rp_num(e, "latency_ms.end_to_end.p95");
    }
    trib_buf_puts(b, "<figure>");
    rp_bars_svg(b, "nodes", "Per node", p, 2);
    trib_buf_puts(b, "</figure>\n");
}

/* The mixed preset's notify vs poll, else the mode breakdown. */
static void modes(struct trib_buf *b, const json_t *doc)
{
    static const char *const mname[] = {"notify", "poll"};
    static const char *const q[] = {"p50", "p95", "p99"};
    const json_t *mx = rp_get(doc, "mixed");
    const json_t *bm = rp_arr(doc, "breakdowns.mode");
    struct rp_panel p[4];
    char path[64];
    int np = 4, i, s, k;

    rp_panel_init(&p[0], "pickup latency", RP_U_MS);
    rp_panel_init(&p[1], "throughput", RP_U_RATE);
    rp_panel_init(&p[2], "database connections", RP_U_NUM);
    rp_panel_init(&p[3], "backend CPU", RP_U_SEC);
    for (i = 0; i < 3; i++) {
        rp_panel_cat(&p[0], q[i]);
    }
    rp_panel_cat(&p[1], "finished jobs/s");
    rp_panel_cat(&p[2], "avg");
    rp_panel_cat(&p[2], "max");
    rp_panel_cat(&p[2], "active avg");
    rp_panel_cat(&p[3], "seconds");
    if (json_is_object(mx)) {
        for (s = 0; s < 2; s++) {
            const json_t *m = json_object_get(mx, mname[s]);
            for (k = 0; k < 4; k++) {
                rp_panel_ser(&p[k], mname[s]);
            }
            for (i = 0; i < 3; i++) {
                snprintf(path, sizeof(path), "latency_ms.pickup.%s", q[i]);
                p[0].v[s][i] = rp_num(m, path);
            }
            p[1].v[s][0] = rp_num(m, "throughput");
            p[2].v[s][0] = rp_num(m, "db.conns_avg");
            p[2].v[s][1] = rp_num(m, "db.conns_max");
            p[2].v[s][2] = rp_num(m, "db.active_avg");
            p[3].v[s][0] = rp_num(m, "db.backend_cpu_s");
        }
    } else {
        np = 2;
        for (s = 0; bm != NULL && s < (int)json_array_size(bm); s++) {
            const json_t *m = json_array_get(bm, (size_t)s);
            const char *key = rp_str(m, "key");
            if (key != NULL && strcmp(key, "(none)") == 0) {
                continue;
            }
            k = rp_panel_ser(&p[0], key);
            rp_panel_ser(&p[1], key);
            if (k < 0) {
                break;
            }
            for (i = 0; i < 3; i++) {
                snprintf(path, sizeof(path), "latency_ms.pickup.%s", q[i]);
                p[0].v[k][i] = rp_num(m, path);
            }
            p[1].v[k][0] = rp_num(m, "throughput");
        }
    }
    trib_buf_puts(b, "<figure>");
    rp_bars_svg(b, "modes",
                json_is_object(mx) ? "Notify vs poll (mixed preset)"
                                   : "Per fetch mode",
                p, np);
    trib_buf_puts(b, "</figure>\n");
}

/* One line per agent of agents[].key. */
static void agents(struct trib_buf *b, const json_t *doc, const char *id,
                   const char *title, const char *key, const char *ylabel,
                   enum rp_unit u)
{
    const json_t *t = rp_arr(doc, "resources.t");
    const json_t *ag = rp_arr(doc, "resources.agents");
    struct rp_chart c;
    char name[64];
    size_t i;

    rp_chart_init(&c, id, title, "time since start", RP_U_SEC, ylabel, u);
    for (i = 0; ag != NULL && i < json_array_size(ag) && i < MAX_AGENTS; i++) {
        const json_t *a = json_array_get(ag, i);
        rp_clean(name, sizeof(name), rp_str(a, "node"), 30);
        rp_chart_series(&c, name, t, rp_arr(a, key), (int)i, 0);
    }
    rp_chart_stage_marks(&c, doc);
    fig(b, &c);
}

/* Lines from resources.postgres; names and keys NULL-terminated. */
static void pg(struct trib_buf *b, const json_t *doc, const char *id,
               const char *title, const char *ylabel, enum rp_unit u,
               const char *const *keys, const char *const *names)
{
    const json_t *t = rp_arr(doc, "resources.t");
    const json_t *p = rp_get(doc, "resources.postgres");
    struct rp_chart c;
    int i;

    rp_chart_init(&c, id, title, "time since start", RP_U_SEC, ylabel, u);
    for (i = 0; keys[i] != NULL; i++) {
        rp_chart_series(&c, names[i], t, rp_arr(p, keys[i]), i, 0);
    }
    rp_chart_stage_marks(&c, doc);
    fig(b, &c);
}

static void resources(struct trib_buf *b, const json_t *doc)
{
    static const char *const ck[] = {"conns_active", "conns_idle",
                                     "conns_idle_in_tx", NULL};
    static const char *const cn[] = {"active", "idle", "idle in transaction",
                                     NULL};
    static const char *const mk[] = {"commits_per_s", "rollbacks_per_s", NULL};
    static const char *const mn[] = {"commits/s", "rollbacks/s", NULL};
    static const char *const dk[] = {"dead_tuples", NULL};
    static const char *const dn[] = {"dead tuples", NULL};
    static const char *const sk[] = {"river_job_bytes", NULL};
    static const char *const sn[] = {"river_job size", NULL};
    static const char *const lk[] = {"lock_waits", NULL};
    static const char *const ln[] = {"sessions waiting on a lock", NULL};

    trib_buf_puts(b, "<h3>Agents</h3>\n<div class=\"charts\">\n");
    agents(b, doc, "agent_cpu", "Agent CPU (100% = one core)", "cpu_pct", "CPU",
           RP_U_PCT);
    agents(b, doc, "agent_rss", "Agent memory (RSS)", "rss_mib", "RSS",
           RP_U_MIB);
    agents(b, doc, "agent_outbox", "Agent outbox depth", "outbox_events",
           "events waiting", RP_U_COUNT);
    trib_buf_puts(b, "</div>\n<h3>PostgreSQL</h3>\n<div class=\"charts\">\n");
    pg(b, doc, "pg_conns", "Connections by state", "connections", RP_U_COUNT,
       ck, cn);
    pg(b, doc, "pg_commits", "Commits per second", "per second", RP_U_RATE, mk,
       mn);
    pg(b, doc, "pg_tuples", "river_job dead tuples", "tuples", RP_U_COUNT, dk,
       dn);
    pg(b, doc, "pg_size", "river_job size", "bytes", RP_U_BYTES, sk, sn);
    pg(b, doc, "pg_locks", "Lock waits", "sessions", RP_U_COUNT, lk, ln);
    trib_buf_puts(b, "</div>\n");
}

void rp_html_charts(struct trib_buf *b, const json_t *doc)
{
    const json_t *climb = rp_get(doc, "climb");

    trib_buf_puts(b, "<section id=\"charts\"><h2>Over time</h2>\n");
    if (json_is_object(climb)) {
        char s[32];
        rp_fmt_secs(s, sizeof(s), rp_num(climb, "at_s"));
        trib_buf_puts(b, "<p class=\"warn\"><b>Climb</b> at ");
        rp_esc(b, s);
        trib_buf_puts(b, ": ");
        rp_esc(b, rp_str(climb, "detail"));
        trib_buf_puts(b, " (red marker).</p>\n");
    }
    trib_buf_puts(b, "<div class=\"charts\">\n");
    throughput(b, doc);
    latency(b, doc);
    trib_buf_puts(b,
                  "</div>\n<h2>Distributions</h2>\n<div class=\"charts\">\n");
    cdf(b, doc, "cdf_end_to_end", "End-to-end latency CDF", "end_to_end");
    cdf(b, doc, "cdf_pickup", "Pickup latency CDF", "pickup");
    histogram(b, doc);
    nodes(b, doc);
    /* four panels (the mixed preset) take the page's whole width */
    trib_buf_printf(b,
                    "</div>\n<h2>Fetch modes</h2>\n<div class=\"charts%s\">\n",
                    json_is_object(rp_get(doc, "mixed")) ? " wide" : "");
    modes(b, doc);
    trib_buf_puts(b, "</div>\n<h2>Resources</h2>\n");
    if (!json_is_object(rp_get(doc, "resources"))) {
        trib_buf_puts(b, "<p>Resources were not measured in this run.</p>\n");
    }
    resources(b, doc);
    trib_buf_puts(b, "</section>\n");
}
