/*
 * report_compare.c -- two runs side by side (A = baseline, B = candidate):
 * the main latencies, rates, counts, notify vs poll and thresholds with
 * the relative change, as text and as a self-contained HTML page with
 * overlaid charts (throughput and p95 over time, CDFs).
 */
#include "report_priv.h"
#include "report_render.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "render.h"

/* better: -1 lower is better, +1 higher is better, 0 neither. */
struct metric {
    const char *label, *path;
    enum rp_unit unit;
    int better;
};

struct group {
    const char *title;
    const struct metric *m;
    size_t n;
    int mixed_only;
};

static const struct metric lat[] = {
    {"end_to_end avg", "latency_ms.end_to_end.avg", RP_U_MS, -1},
    {"end_to_end p50", "latency_ms.end_to_end.p50", RP_U_MS, -1},
    {"end_to_end p95", "latency_ms.end_to_end.p95", RP_U_MS, -1},
    {"end_to_end p99", "latency_ms.end_to_end.p99", RP_U_MS, -1},
    {"end_to_end max", "latency_ms.end_to_end.max", RP_U_MS, -1},
    {"pickup p50", "latency_ms.pickup.p50", RP_U_MS, -1},
    {"pickup p95", "latency_ms.pickup.p95", RP_U_MS, -1},
    {"pickup p99", "latency_ms.pickup.p99", RP_U_MS, -1},
    {"queue_wait p95", "latency_ms.queue_wait.p95", RP_U_MS, -1},
    {"run p95", "latency_ms.run.p95", RP_U_MS, -1},
    {"complete p95", "latency_ms.complete.p95", RP_U_MS, -1},
};
static const struct metric rates[] = {
    {"duration", "run.duration_s", RP_U_SEC, 0},
    {"throughput", "rates.throughput", RP_U_RATE, 1},
    {"insert rate", "rates.insert_rate", RP_U_RATE, 1},
    {"failed_rate", "rates.failed_rate", RP_U_FRAC, -1},
    {"error_rate", "rates.error_rate", RP_U_FRAC, -1},
    {"retry_rate", "rates.retry_rate", RP_U_FRAC, -1},
};
static const struct metric counts[] = {
    {"planned", "counts.planned", RP_U_COUNT, 0},
    {"inserted", "counts.inserted", RP_U_COUNT, 0},
    {"finished", "counts.finished", RP_U_COUNT, 0},
    {"completed", "counts.completed", RP_U_COUNT, 0},
    {"discarded", "counts.discarded", RP_U_COUNT, -1},
    {"cancelled", "counts.cancelled", RP_U_COUNT, -1},
    {"unfinished", "counts.unfinished", RP_U_COUNT, -1},
    {"failed attempts", "counts.failed_attempts", RP_U_COUNT, -1},
    {"retried", "counts.retried", RP_U_COUNT, -1},
    {"timeouts", "counts.timeouts", RP_U_COUNT, -1},
    {"started early", "counts.started_early", RP_U_COUNT, -1},
};
static const struct metric modes[] = {
    {"notify pickup p50", "mixed.notify.latency_ms.pickup.p50", RP_U_MS, -1},
    {"notify pickup p95", "mixed.notify.latency_ms.pickup.p95", RP_U_MS, -1},
    {"poll pickup p50", "mixed.poll.latency_ms.pickup.p50", RP_U_MS, -1},
    {"poll pickup p95", "mixed.poll.latency_ms.pickup.p95", RP_U_MS, -1},
    {"notify throughput", "mixed.notify.throughput", RP_U_RATE, 1},
    {"poll throughput", "mixed.poll.throughput", RP_U_RATE, 1},
    {"notify db conns", "mixed.notify.db.conns_avg", RP_U_NUM, -1},
    {"poll db conns", "mixed.poll.db.conns_avg", RP_U_NUM, -1},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct group groups[] = {
    {"LATENCY", lat, N(lat), 0},
    {"RATES", rates, N(rates), 0},
    {"JOBS", counts, N(counts), 0},
    {"NOTIFY vs POLL", modes, N(modes), 1},
};

/* +1 B is better, -1 B is worse, 0 same/unknown. */
static int verdict(const struct metric *m, double a, double b)
{
    if (!isfinite(a) || !isfinite(b) || a == b || m->better == 0) {
        return 0;
    }
    return (b < a) == (m->better < 0) ? 1 : -1;
}

static int has_mixed(const json_t *a, const json_t *b)
{
    return json_is_object(rp_get(a, "mixed")) ||
           json_is_object(rp_get(b, "mixed"));
}

/* A threshold of doc by expression (NULL when absent). */
static const json_t *find_threshold(const json_t *doc, const char *expr)
{
    const json_t *th = rp_arr(doc, "thresholds");
    size_t i;

    for (i = 0; expr != NULL && th != NULL && i < json_array_size(th); i++) {
        const char *e = rp_str(json_array_get(th, i), "expr");
        if (e != NULL && strcmp(e, expr) == 0) {
            return json_array_get(th, i);
        }
    }
    return NULL;
}

/* "✓ 41ms" / "✗ 9.60%" / "-" */
static void verdict_cell(char *buf, size_t n, const json_t *t)
{
    char v[32];

    if (t == NULL) {
        snprintf(buf, n, "-");
        return;
    }
    rp_fmt(v, sizeof(v), rp_unit_of(rp_str(t, "unit")), rp_num(t, "actual"));
    snprintf(buf, n, "%s %s",
             json_is_true(json_object_get(t, "pass")) ? "✓" : "✗", v);
}

/* Every threshold expression of a then of b (b's extras), in order. */
static const char *threshold_expr(const json_t *a, const json_t *b, size_t i)
{
    const json_t *ta = rp_arr(a, "thresholds"), *tb = rp_arr(b, "thresholds");
    size_t na = ta ? json_array_size(ta) : 0, k;

    if (i < na) {
        return rp_str(json_array_get(ta, i), "expr");
    }
    i -= na;
    for (k = 0; tb != NULL && k < json_array_size(tb); k++) {
        const char *e = rp_str(json_array_get(tb, k), "expr");
        if (e == NULL || find_threshold(a, e) != NULL) {
            continue;
        }
        if (i-- == 0) {
            return e;
        }
    }
    return NULL;
}

/* ---- text ---------------------------------------------------------------- */

static void run_line(struct trib_buf *o, const char *tag, const json_t *d)
{
    char id[48], name[48], dur[32], oc[24];

    rp_clean(id, sizeof(id), rp_str(d, "run.id"), 40);
    rp_clean(name, sizeof(name), rp_str(d, "run.name"), 40);
    rp_clean(oc, sizeof(oc), rp_str(d, "run.outcome"), 20);
    rp_fmt_secs(dur, sizeof(dur), rp_num(d, "run.duration_s"));
    trib_buf_printf(o, "  %s  %s  %s  (%s after %s)\n", tag, id, name, oc, dur);
}

void report_compare_text(struct trib_buf *out, const json_t *a, const json_t *b,
                         int color)
{
    struct trib_table t;
    char va[48], vb[48], d[64], dd[32];
    size_t g, i;
    const char *e;

    trib_buf_puts(out, "\n");
    run_line(out, "A (baseline): ", a);
    run_line(out, "B (candidate):", b);
    for (g = 0; g < N(groups); g++) {
        if (groups[g].mixed_only && !has_mixed(a, b)) {
            continue;
        }
        trib_buf_printf(out, "\n  %s%s%s\n\n", color ? "\033[1m" : "",
                        groups[g].title, color ? "\033[0m" : "");
        trib_table_init(&t, "lrrl", "", "A", "B", "delta");
        for (i = 0; i < groups[g].n; i++) {
            const struct metric *m = &groups[g].m[i];
            double x = rp_num(a, m->path), y = rp_num(b, m->path);
            int v = verdict(m, x, y);
            rp_fmt(va, sizeof(va), m->unit, x);
            rp_fmt(vb, sizeof(vb), m->unit, y);
            rp_fmt_delta(dd, sizeof(dd), x, y);
            snprintf(d, sizeof(d), "%s%s%s",
                     color && v ? (v > 0 ? "\033[32m" : "\033[31m") : "", dd,
                     color && v ? "\033[0m" : "");
            trib_table_row(&t, m->label, va, vb, d);
        }
        trib_table_render(&t, out, "    ");
        trib_table_fini(&t);
    }
    if (threshold_expr(a, b, 0) != NULL) {
        trib_buf_printf(out, "\n  %sTHRESHOLDS%s\n\n", color ? "\033[1m" : "",
                        color ? "\033[0m" : "");
        trib_table_init(&t, "lll", "", "A", "B");
        for (i = 0; (e = threshold_expr(a, b, i)) != NULL && i < 64; i++) {
            char ex[64];
            rp_clean(ex, sizeof(ex), e, 48);
            verdict_cell(va, sizeof(va), find_threshold(a, e));
            verdict_cell(vb, sizeof(vb), find_threshold(b, e));
            trib_table_row(&t, ex, va, vb);
        }
        trib_table_render(&t, out, "    ");
        trib_table_fini(&t);
    }
}

/* ---- HTML ---------------------------------------------------------------- */

static void overlay(struct trib_buf *o, const json_t *a, const json_t *b,
                    const char *id, const char *title, const char *path,
                    const char *ylabel, enum rp_unit u)
{
    struct rp_chart c;

    rp_chart_init(&c, id, title, "time since start", RP_U_SEC, ylabel, u);
    rp_chart_series(&c, "A", rp_arr(a, "series.t"), rp_arr(a, path), 0, 0);
    rp_chart_series(&c, "B", rp_arr(b, "series.t"), rp_arr(b, path), 1, 0);
    trib_buf_puts(o, "<figure>");
    rp_chart_svg(o, &c);
    trib_buf_puts(o, "</figure>\n");
    rp_chart_fini(&c);
}

static void overlay_cdf(struct trib_buf *o, const json_t *a, const json_t *b,
                        const char *id, const char *title, const char *path)
{
    struct rp_chart c;

    rp_chart_init(&c, id, title, "latency (log scale)", RP_U_MS,
                  "fraction of jobs", RP_U_FRAC);
    c.xlog = 1;
    c.yfrac = 1;
    rp_chart_pairs(&c, "A", rp_arr(a, path), 0, 0);
    rp_chart_pairs(&c, "B", rp_arr(b, path), 1, 0);
    trib_buf_puts(o, "<figure>");
    rp_chart_svg(o, &c);
    trib_buf_puts(o, "</figure>\n");
    rp_chart_fini(&c);
}

static void run_row(struct trib_buf *o, const char *tag, const json_t *d)
{
    char dur[32];

    rp_fmt_secs(dur, sizeof(dur), rp_num(d, "run.duration_s"));
    trib_buf_printf(o, "<tr><th>%s</th>", tag);
    rp_td(o, rp_str(d, "run.id"), 0, NULL);
    rp_td(o, rp_str(d, "run.name"), 0, NULL);
    rp_td(o, rp_str(d, "run.outcome"), 0, NULL);
    rp_td(o, dur, 1, NULL);
    rp_td(o, rp_str(d, "run.started_at"), 0, NULL);
    trib_buf_puts(o, "</tr>\n");
}

void report_compare_html(struct trib_buf *o, const json_t *a, const json_t *b)
{
    static const char *const hr[] = {"",         "run",     "name", "outcome",
                                     "duration", "started", NULL};
    static const char *const hm[] = {"", "A", "B", "delta", NULL};
    static const char *const ht[] = {"threshold", "A", "B", NULL};
    char title[160], ia[48], ib[48], d[32];
    size_t g, i;
    const char *e;

    rp_clean(ia, sizeof(ia), rp_str(a, "run.id"), 40);
    rp_clean(ib, sizeof(ib), rp_str(b, "run.id"), 40);
    snprintf(title, sizeof(title), "Stress runs compared: %s vs %s", ia, ib);
    rp_html_open(o, title);
    trib_buf_puts(o, "<section id=\"runs\"><table>");
    rp_thead(o, hr);
    run_row(o, "A (baseline)", a);
    run_row(o, "B (candidate)", b);
    trib_buf_puts(o, "</table></section>\n<section id=\"charts\"><h2>Charts"
                     "</h2><div class=\"charts\">\n");
    overlay(o, a, b, "cmp_throughput", "Finished jobs per second, A vs B",
            "series.finished", "jobs per second", RP_U_COUNT);
    overlay(o, a, b, "cmp_latency", "End-to-end p95 over time, A vs B",
            "series.end_to_end_ms.p95", "p95 end-to-end", RP_U_MS);
    overlay_cdf(o, a, b, "cmp_cdf_end_to_end", "End-to-end latency CDF, A vs B",
                "cdf.end_to_end");
    overlay_cdf(o, a, b, "cmp_cdf_pickup", "Pickup latency CDF, A vs B",
                "cdf.pickup");
    trib_buf_puts(o, "</div></section>\n");
    for (g = 0; g < N(groups); g++) {
        if (groups[g].mixed_only && !has_mixed(a, b)) {
            continue;
        }
        trib_buf_puts(o, "<section><h2>");
        rp_esc(o, groups[g].title);
        trib_buf_puts(o, "</h2><table>");
        rp_thead(o, hm);
        for (i = 0; i < groups[g].n; i++) {
            const struct metric *m = &groups[g].m[i];
            double x = rp_num(a, m->path), y = rp_num(b, m->path);
            int v = verdict(m, x, y);
            trib_buf_puts(o, "<tr><th>");
            rp_esc(o, m->label);
            trib_buf_puts(o, "</th>");
            rp_td_val(o, m->unit, x);
            rp_td_val(o, m->unit, y);
            rp_fmt_delta(d, sizeof(d), x, y);
            rp_td(o, d, 1, v > 0 ? "ok" : v < 0 ? "bad" : NULL);
            trib_buf_puts(o, "</tr>\n");
        }
        trib_buf_puts(o, "</table></section>\n");
    }
    trib_buf_puts(o, "<section><h2>Thresholds</h2>");
    if (threshold_expr(a, b, 0) == NULL) {
        trib_buf_puts(o, "<p>Neither run set thresholds.</p>");
    } else {
        trib_buf_puts(o, "<table>");
        rp_thead(o, ht);
        for (i = 0; (e = threshold_expr(a, b, i)) != NULL && i < 64; i++) {
            const json_t *ta = find_threshold(a, e), *tb = find_threshold(b, e);
            char va[48], vb[48];
            verdict_cell(va, sizeof(va), ta);
            verdict_cell(vb, sizeof(vb), tb);
            trib_buf_puts(o, "<tr><td><code>");
            rp_esc(o, e);
            trib_buf_puts(o, "</code></td>");
            rp_td(o, va, 0,
                  ta ? (json_is_true(rp_get(ta, "pass")) ? "ok" : "bad")
                     : NULL);
            rp_td(o, vb, 0,
                  tb ? (json_is_true(rp_get(tb, "pass")) ? "ok" : "bad")
                     : NULL);
            trib_buf_puts(o, "</tr>\n");
        }
        trib_buf_puts(o, "</table>");
    }
    trib_buf_puts(o, "</section>\n");
    rp_html_close(o, b);
}
