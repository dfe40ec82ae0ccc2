/*
 * report_html.c -- the HTML report: one self-contained page (inline CSS,
 * inline SVG, no script, nothing from the network) with summary cards,
 * thresholds, charts (report_charts.c), stages, breakdowns, failures,
 * monitors and the run's details. Every string from the document is
 * HTML-escaped, so hostile job error texts stay inert.
 */
#include "report_priv.h"
#include "report_render.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trib_mem.h"
#include "trib_time.h"

#define MAX_ROWS 500 /* per breakdown / failure table */

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,"
    "sans-serif;margin:0;background:#f4f5f7;color:#1d2330}"
    "main{max-width:1400px;margin:0 auto;padding:18px 22px 40px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;"
    "border-bottom:1px solid #d5d8de;padding-bottom:4px}"
    "h3{font-size:14px;margin:16px 0 6px}"
    ".sub{color:#5b6270;margin:0 0 14px}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(170px,1fr));gap:10px}"
    ".card{background:#fff;border:1px solid #d5d8de;border-radius:6px;"
    "padding:10px 12px}.card .k{font-size:12px;color:#5b6270}"
    ".card .v{font-size:20px;font-weight:600;margin-top:2px}"
    ".card .d{font-size:12px;color:#5b6270}"
    ".ok{color:#1a7f37}.bad{color:#c62828}.warn{color:#9a6700}"
    "table{border-collapse:collapse;background:#fff;margin:4px 0 10px;"
    "font-size:13px}th,td{border:1px solid #d5d8de;padding:3px 8px;"
    "text-align:left;vertical-align:top;white-space:nowrap}"
    "th{background:#eceef2;"
    "font-weight:600}td.n{text-align:right;font-variant-numeric:"
    "tabular-nums}td.e{max-width:520px;white-space:normal;"
    "overflow-wrap:anywhere}code{font-size:12px;overflow-wrap:anywhere}"
    ".scroll{overflow-x:auto}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,"
    "minmax(560px,1fr));gap:12px}"
    ".charts.wide{grid-template-columns:1fr}"
    ".charts.wide svg.chart{max-width:1240px;margin:0 auto}"
    "figure{margin:0;background:#fff;border:1px solid #d5d8de;"
    "border-radius:6px;padding:4px}"
    "svg.chart{display:block;width:100%;height:auto;"
    "font-family:system-ui,sans-serif}"
    ".chart text{stroke:none;font-size:11px;fill:#3d4452}"
    ".chart .ct{font-size:14px;font-weight:600;fill:#1d2330}"
    ".chart .pt{font-size:12px;font-weight:600}"
    ".chart .tk{font-size:10.5px;fill:#5b6270}"
    ".chart .al{fill:#5b6270}"
    ".chart .nodata{font-size:16px;fill:#9aa0aa}"
    ".chart .climb text{fill:#d62728;font-weight:600}"
    ".chart .stage text{fill:#6b7280;font-size:10px}"
    "footer{margin-top:30px;color:#5b6270;font-size:12px}";

void rp_html_open(struct trib_buf *b, const char *title)
{
    trib_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                     "<meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width, "
                     "initial-scale=1\"><title>");
    rp_esc(b, title);
    trib_buf_printf(b, "</title><style>%s</style></head>\n<body><main>\n<h1>",
                    css);
    rp_esc(b, title);
    trib_buf_puts(b, "</h1>\n");
}

void rp_html_close(struct trib_buf *b, const json_t *doc)
{
    trib_buf_puts(b, "<footer>Rendered by tributary");
    if (rp_str(doc, "tool_version") != NULL) {
        trib_buf_puts(b, " ");
        rp_esc(b, rp_str(doc, "tool_version"));
    }
    trib_buf_puts(b, " from a <code>tributary.stress.report/1</code> document");
    if (rp_str(doc, "generated_at") != NULL) {
        trib_buf_puts(b, " generated at ");
        rp_esc(b, rp_str(doc, "generated_at"));
    }
    trib_buf_puts(b, ". Self-contained: no script, nothing loaded from the "
                     "network.</footer>\n</main></body></html>\n");
}

void rp_td(struct trib_buf *b, const char *s, int num, const char *cls)
{
    trib_buf_puts(b, "<td");
    if (num || cls != NULL) {
        trib_buf_printf(b, " class=\"%s%s%s\"", num ? "n" : "",
                        num && cls ? " " : "", cls ? cls : "");
    }
    trib_buf_puts(b, ">");
    rp_esc(b, s);
    trib_buf_puts(b, "</td>");
}

void rp_td_val(struct trib_buf *b, enum rp_unit u, double v)
{
    char s[48];

    rp_fmt(s, sizeof(s), u, v);
    rp_td(b, s, 1, NULL);
}

void rp_thead(struct trib_buf *b, const char *const *heads)
{
    trib_buf_puts(b, "<tr>");
    for (; *heads != NULL; heads++) {
        trib_buf_puts(b, "<th>");
        rp_esc(b, *heads);
        trib_buf_puts(b, "</th>");
    }
    trib_buf_puts(b, "</tr>\n");
}

/* ---- summary ------------------------------------------------------------- */

static void card(struct trib_buf *b, const char *k, const char *v,
                 const char *cls, const char *detail)
{
    trib_buf_puts(b, "<div class=\"card\"><div class=\"k\">");
    rp_esc(b, k);
    trib_buf_printf(b, "</div><div class=\"v%s%s\">", cls ? " " : "",
                    cls ? cls : "");
    rp_esc(b, v);
    trib_buf_puts(b, "</div>");
    if (detail != NULL) {
        trib_buf_puts(b, "<div class=\"d\">");
        rp_esc(b, detail);
        trib_buf_puts(b, "</div>");
    }
    trib_buf_puts(b, "</div>\n");
}

static void summary(struct trib_buf *b, const json_t *doc)
{
    const json_t *th = rp_arr(doc, "thresholds");
    const char *outcome = rp_str(doc, "run.outcome");
    const json_t *agree = rp_get(doc, "monitors.agree");
    char v[64], d[200], x[48], t[32];
    size_t i, n = th ? json_array_size(th) : 0, passed = 0;

    trib_buf_puts(b, "<p class=\"sub\">run <b>");
    rp_esc(b, rp_str(doc, "run.id"));
    trib_buf_puts(b, "</b> &middot; tag <code>");
    rp_esc(b, rp_str(doc, "run.tag"));
    trib_buf_puts(b, "</code> &middot; started ");
    rp_esc(b, rp_str(doc, "run.started_at"));
    trib_buf_puts(b, "</p>\n");
    if (rp_str(doc, "run.error") != NULL) {
        trib_buf_puts(b, "<p class=\"bad\"><b>Error:</b> ");
        rp_esc(b, rp_str(doc, "run.error"));
        trib_buf_puts(b, "</p>\n");
    }
    trib_buf_puts(b, "<section id=\"summary\"><div class=\"cards\">\n");
    rp_fmt_secs(t, sizeof(t), rp_num(doc, "run.duration_s"));
    snprintf(x, sizeof(x), "after %s", t);
    card(b, "Outcome", outcome ? outcome : "-",
         outcome && strcmp(outcome, "finished") == 0 ? "ok" : "bad", x);
    rp_fmt_count(v, sizeof(v), rp_num(doc, "counts.finished"));
    rp_fmt_count(x, sizeof(x), rp_num(doc, "counts.planned"));
    snprintf(d, sizeof(d), "of %s planned", x);
    card(b, "Finished", v, NULL, d);
    rp_fmt_rate(v, sizeof(v), rp_num(doc, "rates.throughput"));
    rp_fmt_rate(x, sizeof(x), rp_num(doc, "rates.insert_rate"));
    snprintf(d, sizeof(d), "inserted at %s", x);
    card(b, "Throughput", v, NULL, d);
    rp_fmt_pct(v, sizeof(v), rp_num(doc, "rates.failed_rate"));
    rp_fmt_count(x, sizeof(x), rp_num(doc, "counts.discarded"));
    snprintf(d, sizeof(d), "%s discarded", x);
    card(b, "Failed rate", v, NULL, d);
    rp_fmt_dur(v, sizeof(v), rp_num(doc, "latency_ms.end_to_end.p95"));
    rp_fmt_dur(x, sizeof(x), rp_num(doc, "latency_ms.end_to_end.p50"));
    snprintf(d, sizeof(d), "p50 %s", x);
    card(b, "p95 end-to-end", v, NULL, d);
    rp_fmt_dur(v, sizeof(v), rp_num(doc, "latency_ms.pickup.p95"));
    rp_fmt_dur(x, sizeof(x), rp_num(doc, "latency_ms.pickup.p50"));
    snprintf(d, sizeof(d), "p50 %s", x);
    card(b, "p95 pickup", v, NULL, d);
    for (i = 0; i < n; i++) {
        passed += json_is_true(rp_get(json_array_get(th, i), "pass"));
    }
    snprintf(v, sizeof(v), "%zu / %zu", passed, n);
    card(b, "Thresholds passed", n ? v : "none", passed == n ? "ok" : "bad",
         NULL);
    card(b, "Monitors",
         json_is_true(agree)    ? "agree"
         : json_is_false(agree) ? "disagree"
                                : "-",
         json_is_true(agree) ? "ok" : "bad", rp_str(doc, "run.monitor"));
    rp_clean(d, sizeof(d), rp_str(doc, "climb.detail"), 120);
    card(b, "Climb", json_is_object(rp_get(doc, "climb")) ? "yes" : "none",
         json_is_object(rp_get(doc, "climb")) ? "warn" : "ok",
         json_is_object(rp_get(doc, "climb")) ? d : NULL);
    trib_buf_puts(b, "</div></section>\n");
}

static void thresholds(struct trib_buf *b, const json_t *doc)
{
    static const char *const h[] = {"",    "threshold", "actual", "limit",
                                    "why", "line",      NULL};
    const json_t *th = rp_arr(doc, "thresholds");
    size_t i, n = th ? json_array_size(th) : 0;

    trib_buf_puts(b, "<section id=\"thresholds\"><h2>Thresholds</h2>\n");
    if (n == 0) {
        trib_buf_puts(b, "<p>No thresholds were set.</p></section>\n");
        return;
    }
    trib_buf_puts(b, "<table>");
    rp_thead(b, h);
    for (i = 0; i < n; i++) {
        const json_t *t = json_array_get(th, i);
        int pass = json_is_true(json_object_get(t, "pass"));
        enum rp_unit u = rp_unit_of(rp_str(t, "unit"));
        trib_buf_puts(b, "<tr>");
        rp_td(b, pass ? "✓ pass" : "✗ fail", 0, pass ? "ok" : "bad");
        trib_buf_puts(b, "<td><code>");
        rp_esc(b, rp_str(t, "expr"));
        trib_buf_puts(b, "</code></td>");
        rp_td_val(b, u, rp_num(t, "actual"));
        rp_td_val(b, u, rp_num(t, "limit"));
        rp_td(b, rp_str(t, "why") ? rp_str(t, "why") : "", 0, "e");
        rp_td_val(b, RP_U_COUNT, rp_num(t, "line"));
        trib_buf_puts(b, "</tr>\n");
    }
    trib_buf_puts(b, "</table></section>\n");
}

/* ---- tables -------------------------------------------------------------- */

static void lat_cells(struct trib_buf *b, const json_t *lat)
{
    rp_td_val(b, RP_U_MS, rp_num(lat, "end_to_end.p50"));
    rp_td_val(b, RP_U_MS, rp_num(lat, "end_to_end.p95"));
    rp_td_val(b, RP_U_MS, rp_num(lat, "end_to_end.p99"));
    rp_td_val(b, RP_U_MS, rp_num(lat, "pickup.p50"));
    rp_td_val(b, RP_U_MS, rp_num(lat, "pickup.p95"));
    rp_td_val(b, RP_U_MS, rp_num(lat, "run.p95"));
}

/* A cell with the time of 'when' relative to the run's start ("+10s"). */
static void at(struct trib_buf *b, const char *start, const char *when)
{
    int64_t t0, t1;
    char s[40];

    if (start == NULL || when == NULL || trib_pgtime_parse(start, &t0) != 0 ||
        trib_pgtime_parse(when, &t1) != 0) {
        rp_td(b, when, 0, NULL);
        return;
    }
    s[0] = '+';
    rp_fmt_secs(s + 1, sizeof(s) - 1, (double)(t1 - t0) / 1e6);
    rp_td(b, s, 1, NULL);
}

static void stages(struct trib_buf *b, const json_t *doc)
{
    static const char *const h[] = {
        "#",          "stage",    "form",        "shape",    "started",
        "planned",    "inserted", "insert rate", "finished", "discarded",
        "throughput", "e2e p50",  "e2e p95",     "e2e p99",  "pickup p50",
        "pickup p95", "run p95",  NULL};
    const json_t *st = rp_arr(doc, "stages");
    size_t i, n = st ? json_array_size(st) : 0;
    char shape[96], a[32], c[32];

    trib_buf_puts(b, "<section id=\"stages\"><h2>Stages</h2>\n");
    if (n == 0) {
        trib_buf_puts(b, "<p>No stages.</p></section>\n");
        return;
    }
    trib_buf_puts(b, "<div class=\"scroll\"><table>");
    rp_thead(b, h);
    for (i = 0; i < n; i++) {
        const json_t *s = json_array_get(st, i);
        const char *form = rp_str(s, "form");
        if (form != NULL && strcmp(form, "ramp") == 0) {
            rp_fmt_secs(a, sizeof(a), rp_num(s, "duration_s"));
            rp_fmt_rate(c, sizeof(c), rp_num(s, "target"));
            snprintf(shape, sizeof(shape), "%s to %s", a, c);
        } else {
            rp_fmt_count(a, sizeof(a), rp_num(s, "count"));
            rp_fmt_rate(c, sizeof(c), rp_num(s, "rate"));
            snprintf(shape, sizeof(shape), "%s jobs at %s", a,
                     rp_num(s, "rate") > 0 ? c : "full speed");
        }
        trib_buf_puts(b, "<tr>");
        rp_td_val(b, RP_U_COUNT, rp_num(s, "index"));
        rp_td(b, rp_str(s, "name"), 0, NULL);
        rp_td(b, form, 0, NULL);
        rp_td(b, shape, 0, NULL);
        at(b, rp_str(doc, "run.started_at"), rp_str(s, "started_at"));
        rp_td_val(b, RP_U_COUNT, rp_num(s, "planned"));
        rp_td_val(b, RP_U_COUNT, rp_num(s, "inserted"));
        rp_td_val(b, RP_U_RATE, rp_num(s, "insert_rate"));
        rp_td_val(b, RP_U_COUNT, rp_num(s, "finished"));
        rp_td_val(b, RP_U_COUNT, rp_num(s, "discarded"));
        rp_td_val(b, RP_U_RATE, rp_num(s, "throughput"));
        lat_cells(b, json_object_get(s, "latency_ms"));
        trib_buf_puts(b, "</tr>\n");
    }
    trib_buf_puts(b, "</table></div></section>\n");
}

static void breakdown(struct trib_buf *b, const json_t *doc, const char *dim,
                      const char *title)
{
    static const char *const h[] = {
        "key",        "node",       "mode",      "jobs",
        "finished",   "completed",  "discarded", "cancelled",
        "throughput", "e2e p50",    "e2e p95",   "e2e p99",
        "pickup p50", "pickup p95", "run p95",   NULL};
    char path[48];
    const json_t *arr;
    size_t i, n;

    snprintf(path, sizeof(path), "breakdowns.%s", dim);
    arr = rp_arr(doc, path);
    n = arr ? json_array_size(arr) : 0;
    trib_buf_printf(b, "<h3>%s</h3>\n", title);
    if (n == 0) {
        trib_buf_puts(b, "<p>No data.</p>\n");
        return;
    }
    trib_buf_puts(b, "<div class=\"scroll\"><table>");
    rp_thead(b, h);
    for (i = 0; i < n && i < MAX_ROWS; i++) {
        const json_t *e = json_array_get(arr, i);
        trib_buf_puts(b, "<tr>");
        rp_td(b, rp_str(e, "key"), 0, NULL);
        rp_td(b, rp_str(e, "node"), 0, NULL);
        rp_td(b, rp_str(e, "mode"), 0, NULL);
        rp_td_val(b, RP_U_COUNT, rp_num(e, "jobs"));
        rp_td_val(b, RP_U_COUNT, rp_num(e, "finished"));
        rp_td_val(b, RP_U_COUNT, rp_num(e, "completed"));
        rp_td_val(b, RP_U_COUNT, rp_num(e, "discarded"));
        rp_td_val(b, RP_U_COUNT, rp_num(e, "cancelled"));
        rp_td_val(b, RP_U_RATE, rp_num(e, "throughput"));
        lat_cells(b, json_object_get(e, "latency_ms"));
        trib_buf_puts(b, "</tr>\n");
    }
    trib_buf_puts(b, "</table></div>\n");
    if (n > MAX_ROWS) {
        trib_buf_printf(b,
                        "<p>%zu more rows not shown (see report.json).</p>\n",
                        n - MAX_ROWS);
    }
}

/* Array of strings / numbers as "a, b, c" (escaped). */
static void td_list(struct trib_buf *b, const json_t *arr)
{
    size_t i;

    trib_buf_puts(b, "<td class=\"e\">");
    for (i = 0; json_is_array(arr) && i < json_array_size(arr) && i < 50; i++) {
        const json_t *v = json_array_get(arr, i);
        if (i > 0) {
            trib_buf_puts(b, ", ");
        }
        if (json_is_string(v)) {
            rp_esc(b, json_string_value(v));
        } else if (json_is_integer(v)) {
            trib_buf_printf(b, "%lld", (long long)json_integer_value(v));
        } else {
            trib_buf_puts(b, "-");
        }
    }
    trib_buf_puts(b, "</td>");
}

static void failures(struct trib_buf *b, const json_t *doc)
{
    static const char *const h[] = {"kind",      "error",          "attempts",
                                    "jobs",      "discarded",      "retried",
                                    "cancelled", "timeouts",       "queues",
                                    "nodes",     "sample job ids", NULL};
    const json_t *f = rp_arr(doc, "failures");
    size_t i, n = f ? json_array_size(f) : 0;

    trib_buf_puts(b, "<section id=\"failures\"><h2>Failures</h2>\n");
    if (n == 0) {
        trib_buf_puts(b, "<p>No failed attempts.</p></section>\n");
        return;
    }
    trib_buf_puts(b, "<div class=\"scroll\"><table>");
    rp_thead(b, h);
    for (i = 0; i < n && i < MAX_ROWS; i++) {
        const json_t *g = json_array_get(f, i);
        trib_buf_puts(b, "<tr>");
        rp_td(b, rp_str(g, "kind"), 0, NULL);
        trib_buf_puts(b, "<td class=\"e\"><code>");
        rp_esc(b, rp_str(g, "error"));
        trib_buf_puts(b, "</code></td>");
        rp_td_val(b, RP_U_COUNT, rp_num(g, "attempts"));
        rp_td_val(b, RP_U_COUNT, rp_num(g, "jobs"));
        rp_td_val(b, RP_U_COUNT, rp_num(g, "discarded"));
        rp_td_val(b, RP_U_COUNT, rp_num(g, "retried"));
        rp_td_val(b, RP_U_COUNT, rp_num(g, "cancelled"));
        rp_td_val(b, RP_U_COUNT, rp_num(g, "timeouts"));
        td_list(b, json_object_get(g, "queues"));
        td_list(b, json_object_get(g, "nodes"));
        td_list(b, json_object_get(g, "sample_job_ids"));
        trib_buf_puts(b, "</tr>\n");
    }
    trib_buf_puts(b, "</table></div></section>\n");
}

static void monitors(struct trib_buf *b, const json_t *doc)
{
    static const char *const h[] = {"", "events (coordinator)",
                                    "polling (river_job)", NULL};
    static const char *const rows[] = {"finished", "completed", "discarded",
                                       "cancelled"};
    const json_t *m = rp_get(doc, "monitors");
    const json_t *d = rp_arr(m, "disagreements");
    const json_t *states = rp_get(m, "polling.states");
    const char *k;
    json_t *v;
    char path[48];
    size_t i;

    trib_buf_puts(b, "<section id=\"monitors\"><h2>Monitors</h2>\n<p>");
    if (json_is_true(json_object_get(m, "agree"))) {
        trib_buf_puts(b, "<b class=\"ok\">The events and the database agree"
                         "</b> on the final-state counts.");
    } else if (json_is_false(json_object_get(m, "agree"))) {
        trib_buf_puts(b, "<b class=\"bad\">The events and the database "
                         "disagree.</b>");
    } else {
        trib_buf_puts(b, "Agreement unknown.");
    }
    trib_buf_puts(b, "</p><table>");
    rp_thead(b, h);
    for (i = 0; i < 4; i++) {
        trib_buf_printf(b, "<tr><th>%s</th>", rows[i]);
        snprintf(path, sizeof(path), "events.%s", rows[i]);
        rp_td_val(b, RP_U_COUNT, rp_num(m, path));
        snprintf(path, sizeof(path), "polling.%s", rows[i]);
        rp_td_val(b, RP_U_COUNT, rp_num(m, path));
        trib_buf_puts(b, "</tr>\n");
    }
    trib_buf_puts(b, "<tr><th>events seen / missed</th>");
    rp_td_val(b, RP_U_COUNT, rp_num(m, "events.events_seen"));
    rp_td_val(b, RP_U_COUNT, rp_num(m, "events.events_missed"));
    trib_buf_puts(b, "</tr>\n<tr><th>coordinator's count / polled at</th>");
    rp_td_val(b, RP_U_COUNT, rp_num(m, "events.coordinator_finished"));
    rp_td(b, rp_str(m, "polling.polled_at"), 0, NULL);
    trib_buf_puts(b, "</tr></table>\n");
    if (d != NULL && json_array_size(d) > 0) {
        static const char *const hd[] = {"what", "events", "database", NULL};
        trib_buf_puts(b, "<h3>Disagreements</h3><table>");
        rp_thead(b, hd);
        for (i = 0; i < json_array_size(d) && i < MAX_ROWS; i++) {
            const json_t *x = json_array_get(d, i);
            trib_buf_puts(b, "<tr>");
            rp_td(b, rp_str(x, "what"), 0, NULL);
            rp_td_val(b, RP_U_COUNT, rp_num(x, "events"));
            rp_td_val(b, RP_U_COUNT, rp_num(x, "database"));
            trib_buf_puts(b, "</tr>\n");
        }
        trib_buf_puts(b, "</table>\n");
    }
    if (json_is_object(states)) {
        trib_buf_puts(b, "<h3>Unfinished states in river_job</h3><table><tr>");
        json_object_foreach((json_t *)states, k, v)
        {
            trib_buf_puts(b, "<th>");
            rp_esc(b, k);
            trib_buf_puts(b, "</th>");
        }
        trib_buf_puts(b, "</tr><tr>");
        json_object_foreach((json_t *)states, k, v)
        {
            rp_td_val(b, RP_U_COUNT,
                      json_is_number(v) ? json_number_value(v) : NAN);
        }
        trib_buf_puts(b, "</tr></table>\n");
    }
    trib_buf_puts(b, "</section>\n");
}

/* A key/value table of an object; nested values as compact JSON. */
static void kv_table(struct trib_buf *b, const json_t *o)
{
    const char *k;
    json_t *v;

    trib_buf_puts(b, "<table>");
    json_object_foreach((json_t *)o, k, v)
    {
        trib_buf_puts(b, "<tr><th>");
        rp_esc(b, k);
        trib_buf_puts(b, "</th><td class=\"e\">");
        if (json_is_string(v)) {
            rp_esc(b, json_string_value(v));
        } else if (json_is_object(v) && strcmp(k, "plan") == 0) {
            trib_buf_puts(b, "(below)");
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            trib_buf_puts(b, "<code>");
            if (s != NULL && strlen(s) > 4000) {
                s[4000] = '\0';
            }
            rp_esc(b, s ? s : "-");
            trib_buf_puts(b, "</code>");
            free(s); /* jansson's allocator */
        }
        trib_buf_puts(b, "</td></tr>\n");
    }
    trib_buf_puts(b, "</table>\n");
}

static void details(struct trib_buf *b, const json_t *doc)
{
    const json_t *run = rp_get(doc, "run");
    const json_t *errs = rp_arr(doc, "resources.errors");
    size_t i;

    trib_buf_puts(b, "<section id=\"details\"><h2>Run and plan</h2>\n");
    if (json_is_object(run)) {
        kv_table(b, run);
    }
    if (json_is_object(rp_get(run, "plan"))) {
        trib_buf_puts(b, "<h3>Plan</h3>\n");
        kv_table(b, rp_get(run, "plan"));
    }
    if (errs != NULL && json_array_size(errs) > 0) {
        trib_buf_puts(b, "<h3>Resource sampling errors</h3><ul>");
        for (i = 0; i < json_array_size(errs) && i < 50; i++) {
            trib_buf_puts(b, "<li><code>");
            rp_esc(b, json_string_value(json_array_get(errs, i)));
            trib_buf_puts(b, "</code></li>");
        }
        trib_buf_puts(b, "</ul>\n");
    }
    trib_buf_puts(b, "</section>\n");
}

void report_html(struct trib_buf *b, const json_t *doc)
{
    char title[160], id[64], name[80];

    rp_clean(id, sizeof(id), rp_str(doc, "run.id"), 40);
    rp_clean(name, sizeof(name), rp_str(doc, "run.name"), 60);
    snprintf(title, sizeof(title), "Stress run %s%s%s", id,
             rp_str(doc, "run.name") ? " - " : "",
             rp_str(doc, "run.name") ? name : "");
    rp_html_open(b, title);
    summary(b, doc);
    thresholds(b, doc);
    rp_html_charts(b, doc);
    stages(b, doc);
    trib_buf_puts(b, "<section id=\"breakdowns\"><h2>Breakdowns</h2>\n");
    breakdown(b, doc, "node", "By node (the node that finished the job)");
    breakdown(b, doc, "client", "By client");
    breakdown(b, doc, "queue", "By queue");
    breakdown(b, doc, "mode", "By fetch mode");
    trib_buf_puts(b, "</section>\n");
    failures(b, doc);
    monitors(b, doc);
    details(b, doc);
    rp_html_close(b, doc);
}
