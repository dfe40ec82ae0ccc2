/*
 * report_text.c -- the terminal summary of a stress report, in the manner
 * of k6's end-of-test summary: the run, threshold verdicts, one aligned
 * line per latency metric, counts and rates, stages, notify vs poll, top
 * failures, monitors, the climb and resource peaks. Fits 100 columns;
 * colour only when asked; anything missing prints as "-".
 */
#include "report_priv.h"
#include "report_render.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "render.h"

#define C_BOLD  "\033[1m"
#define C_DIM   "\033[2m"
#define C_RED   "\033[31m"
#define C_GREEN "\033[32m"
#define C_YEL   "\033[33m"
#define C_CYAN  "\033[36m"
#define C_OFF   "\033[0m"

#define LABELW 13 /* "name......: " */

struct out {
    struct trib_buf *b;
    int color;
};

static void col(struct out *o, const char *code, const char *s)
{
    if (o->color) {
        trib_buf_puts(o->b, code);
    }
    trib_buf_puts(o->b, s);
    if (o->color) {
        trib_buf_puts(o->b, C_OFF);
    }
}

static void head(struct out *o, const char *title)
{
    trib_buf_puts(o->b, "\n  ");
    col(o, C_BOLD, title);
    trib_buf_puts(o->b, "\n\n");
}

/* "    name.........: " (dots dimmed) up to w characters */
static void label_w(struct out *o, const char *name, size_t w)
{
    char dots[64];
    size_t n = strlen(name), k;

    trib_buf_puts(o->b, "    ");
    trib_buf_puts(o->b, name);
    for (k = 0; n + k < w && k < sizeof(dots) - 1; k++) {
        dots[k] = '.';
    }
    dots[k] = '\0';
    col(o, C_DIM, dots);
    trib_buf_puts(o->b, ": ");
}

static void label(struct out *o, const char *name)
{
    label_w(o, name, LABELW);
}

/* A key=value cell padded to w characters. */
static void cell(struct out *o, const char *key, const char *val, size_t w)
{
    size_t n = strlen(key) + 1 + strlen(val);

    trib_buf_puts(o->b, key);
    trib_buf_putc(o->b, '=');
    col(o, C_CYAN, val);
    while (n++ < w) {
        trib_buf_putc(o->b, ' ');
    }
}

/* ---- header -------------------------------------------------------------- */

static void stage_shape(const json_t *s, char *buf, size_t n)
{
    char a[32], c[32];
    const char *form = rp_str(s, "form");

    if (form != NULL && strcmp(form, "ramp") == 0) {
        rp_fmt_secs(a, sizeof(a), rp_num(s, "duration_s"));
        rp_fmt_rate(c, sizeof(c), rp_num(s, "target"));
        snprintf(buf, n, "ramp %s to %s", a, c);
    } else {
        double rate = rp_num(s, "rate");
        rp_fmt_count(a, sizeof(a), rp_num(s, "count"));
        rp_fmt_rate(c, sizeof(c), rate);
        snprintf(buf, n, "%s jobs %s%s", a, rate > 0 ? "at " : "",
                 rate > 0 ? c : "at full speed");
    }
}

static void header(struct out *o, const json_t *doc)
{
    const json_t *run = json_object_get(doc, "run");
    const json_t *plan = json_object_get(run, "plan");
    const json_t *stages = rp_arr(doc, "stages");
    const char *outcome = rp_str(run, "outcome"), *name = rp_str(run, "name");
    const char *err = rp_str(run, "error"), *kind = rp_str(plan, "jobs.kind");
    const char *method = rp_str(plan, "insert.method");
    char a[64], c[128], line[512];
    size_t i, ns = stages ? json_array_size(stages) : 0;
    double delay = rp_num(plan, "jobs.delay_s"), exit_code;

    trib_buf_puts(o->b, "\n");
    rp_clean(a, sizeof(a), rp_str(run, "id"), 40);
    rp_clean(c, sizeof(c), name, 40);
    trib_buf_printf(o->b, "        run: ");
    col(o, C_BOLD, a);
    trib_buf_printf(o->b, "%s%s\n", name ? "  " : "", name ? c : "");
    rp_fmt_secs(a, sizeof(a), rp_num(run, "duration_s"));
    trib_buf_puts(o->b, "    outcome: ");
    col(o,
        outcome == NULL                    ? C_YEL
        : strcmp(outcome, "finished") == 0 ? C_GREEN
                                           : C_RED,
        outcome ? outcome : "-");
    trib_buf_printf(o->b, " after %s", a);
    exit_code = rp_num(run, "exit_code");
    if (isfinite(exit_code)) {
        trib_buf_printf(o->b, ", exit code %.0f", exit_code);
    }
    trib_buf_puts(o->b, "\n");
    if (err != NULL) {
        rp_clean(line, sizeof(line), err, 86);
        trib_buf_puts(o->b, "      error: ");
        col(o, C_RED, line);
        trib_buf_puts(o->b, "\n");
    }
    rp_fmt_count(a, sizeof(a), rp_num(doc, "counts.planned"));
    trib_buf_printf(o->b, "       plan: %zu stage%s, %s jobs", ns,
                    ns == 1 ? "" : "s", a);
    if (kind != NULL) {
        rp_clean(c, sizeof(c), kind, 40);
        trib_buf_printf(o->b, " of %s", c);
    }
    if (isfinite(delay)) {
        rp_fmt_secs(a, sizeof(a), delay);
        trib_buf_printf(o->b, ", delay %s", a);
    }
    if (json_is_object(rp_get(doc, "mixed"))) {
        trib_buf_puts(o->b, ", mixed notify/poll");
    }
    rp_clean(a, sizeof(a), rp_str(run, "monitor"), 20);
    trib_buf_printf(o->b, ", monitor %s\n", a);
    if (method != NULL) {
        rp_clean(a, sizeof(a), method, 20);
        rp_fmt_count(c, sizeof(c), rp_num(plan, "insert.batch"));
        trib_buf_printf(o->b, "     insert: %s, batches of %s", a, c);
        rp_fmt_count(c, sizeof(c), rp_num(plan, "insert.streams"));
        trib_buf_printf(o->b, ", %s stream%s\n", c,
                        rp_num(plan, "insert.streams") == 1 ? "" : "s");
    }
    for (i = 0; i < ns && i < 8; i++) {
        const json_t *s = json_array_get(stages, i);
        rp_clean(a, sizeof(a), rp_str(s, "name"), 24);
        stage_shape(s, c, sizeof(c));
        trib_buf_printf(o->b, "             %zu. %s: %s\n", i + 1, a, c);
    }
    if (ns > 8) {
        trib_buf_printf(o->b, "             ... %zu more\n", ns - 8);
    }
}

/* ---- thresholds ---------------------------------------------------------- */

static void thresholds(struct out *o, const json_t *doc)
{
    const json_t *th = rp_arr(doc, "thresholds");
    size_t i, n = th ? json_array_size(th) : 0, w = 0;
    char e[96], a[32], why[96];

    if (n == 0) {
        return;
    }
    head(o, "THRESHOLDS");
    for (i = 0; i < n; i++) {
        rp_clean(e, sizeof(e), rp_str(json_array_get(th, i), "expr"), 48);
        w = strlen(e) > w ? strlen(e) : w;
    }
    for (i = 0; i < n; i++) {
        const json_t *t = json_array_get(th, i);
        int pass = json_is_true(json_object_get(t, "pass"));
        size_t k;

        rp_clean(e, sizeof(e), rp_str(t, "expr"), 48);
        rp_fmt(a, sizeof(a), rp_unit_of(rp_str(t, "unit")),
               rp_num(t, "actual"));
        trib_buf_puts(o->b, "    ");
        col(o, pass ? C_GREEN : C_RED, pass ? "✓" : "✗");
        trib_buf_printf(o->b, " %s", e);
        for (k = strlen(e); k < w + 2; k++) {
            trib_buf_putc(o->b, ' ');
        }
        trib_buf_puts(o->b, "actual=");
        col(o, C_CYAN, a);
        if (rp_str(t, "why") != NULL) {
            rp_clean(why, sizeof(why), rp_str(t, "why"), 40);
            trib_buf_printf(o->b, "  (%s)", why);
        }
        trib_buf_puts(o->b, "\n");
    }
}

/* ---- metrics ------------------------------------------------------------- */

static void latencies(struct out *o, const json_t *doc)
{
    static const char *const names[] = {"end_to_end", "pickup", "queue_wait",
                                        "run", "complete"};
    static const char *const keys[] = {"avg", "min", "p50", "p90",
                                       "p95", "p99", "max"};
    static const char *const shown[] = {"avg",   "min",   "med", "p(90)",
                                        "p(95)", "p(99)", "max"};
    char v[5][7][24], path[64];
    size_t w[7] = {0}, i, k;

    for (i = 0; i < 5; i++) {
        for (k = 0; k < 7; k++) {
            snprintf(path, sizeof(path), "latency_ms.%s.%s", names[i], keys[k]);
            rp_fmt_dur(v[i][k], sizeof(v[i][k]), rp_num(doc, path));
            if (strlen(shown[k]) + 1 + strlen(v[i][k]) > w[k]) {
                w[k] = strlen(shown[k]) + 1 + strlen(v[i][k]);
            }
        }
    }
    head(o, "LATENCY");
    for (i = 0; i < 5; i++) {
        label_w(o, names[i], 11); /* "end_to_end." */
        for (k = 0; k < 7; k++) {
            cell(o, shown[k], v[i][k], k < 6 ? w[k] + 1 : 0);
        }
        trib_buf_puts(o->b, "\n");
    }
}

/* "    name.....: VALUE  extra" */
static void kv(struct out *o, const char *name, const char *val,
               const char *extra)
{
    size_t n = strlen(val);

    label(o, name);
    if (val[0] == '\0') {
        trib_buf_printf(o->b, "%s\n", extra ? extra : "-");
        return;
    }
    col(o, C_CYAN, val);
    if (extra != NULL && extra[0]) {
        while (n++ < 10) {
            trib_buf_putc(o->b, ' ');
        }
        trib_buf_printf(o->b, " %s", extra);
    }
    trib_buf_puts(o->b, "\n");
}

static void counts(struct out *o, const json_t *doc)
{
    const json_t *c = json_object_get(doc, "counts");
    const json_t *r = json_object_get(doc, "rates");
    char v[32], x[32], y[32], e[160];
    double fin = rp_num(c, "finished");

    head(o, "JOBS");
    rp_fmt_count(v, sizeof(v), rp_num(c, "planned"));
    kv(o, "planned", v, NULL);
    rp_fmt_count(v, sizeof(v), rp_num(c, "inserted"));
    rp_fmt_rate(x, sizeof(x), rp_num(r, "insert_rate"));
    snprintf(e, sizeof(e), "insert rate %s", x);
    kv(o, "inserted", v, e);
    rp_fmt_count(v, sizeof(v), fin);
    rp_fmt_rate(x, sizeof(x), rp_num(r, "throughput"));
    snprintf(e, sizeof(e), "throughput %s", x);
    kv(o, "finished", v, e);
    rp_fmt_count(v, sizeof(v), rp_num(c, "completed"));
    rp_fmt_pct(x, sizeof(x), fin > 0 ? rp_num(c, "completed") / fin : NAN);
    kv(o, "completed", v, x);
    rp_fmt_count(v, sizeof(v), rp_num(c, "discarded"));
    rp_fmt_pct(x, sizeof(x), rp_num(r, "discarded_rate"));
    kv(o, "discarded", v, x);
    rp_fmt_count(v, sizeof(v), rp_num(c, "cancelled"));
    rp_fmt_pct(x, sizeof(x), rp_num(r, "cancelled_rate"));
    kv(o, "cancelled", v, x);
    rp_fmt_count(v, sizeof(v), rp_num(c, "unfinished"));
    kv(o, "unfinished", v, NULL);
    rp_fmt_pct(v, sizeof(v), rp_num(r, "failed_rate"));
    kv(o, "failed_rate", v, "(discarded + cancelled) / finished");
    rp_fmt_count(v, sizeof(v), rp_num(c, "attempts"));
    rp_fmt_count(x, sizeof(x), rp_num(c, "failed_attempts"));
    rp_fmt_pct(y, sizeof(y), rp_num(r, "error_rate"));
    snprintf(e, sizeof(e), "%s failed (error_rate %s)", x, y);
    kv(o, "attempts", v, e);
    rp_fmt_count(v, sizeof(v), rp_num(c, "retried"));
    rp_fmt_pct(x, sizeof(x), rp_num(r, "retry_rate"));
    snprintf(e, sizeof(e), "retry_rate %s", x);
    kv(o, "retried", v, e);
    rp_fmt_count(v, sizeof(v), rp_num(c, "snoozed"));
    kv(o, "snoozed", v, NULL);
    rp_fmt_count(v, sizeof(v), rp_num(c, "timeouts"));
    kv(o, "timeouts", v, "failed attempts that timed out");
    rp_fmt_count(v, sizeof(v), rp_num(c, "started_early"));
    kv(o, "started_early", v, "(must be 0)");
}

/* ---- tables -------------------------------------------------------------- */

static void stages(struct out *o, const json_t *doc)
{
    const json_t *st = rp_arr(doc, "stages");
    struct trib_table t;
    char nm[32], pl[24], in[24], ir[24], tp[24], e2e[24], pk[24];
    size_t i;

    if (st == NULL || json_array_size(st) == 0) {
        return;
    }
    head(o, "STAGES");
    trib_table_init(&t, "lrrrrrr", "stage", "planned", "inserted",
                    "insert rate", "throughput", "p95 e2e", "p95 pickup");
    for (i = 0; i < json_array_size(st); i++) {
        const json_t *s = json_array_get(st, i);
        rp_clean(nm, sizeof(nm), rp_str(s, "name"), 20);
        rp_fmt_count(pl, sizeof(pl), rp_num(s, "planned"));
        rp_fmt_count(in, sizeof(in), rp_num(s, "inserted"));
        rp_fmt_rate(ir, sizeof(ir), rp_num(s, "insert_rate"));
        rp_fmt_rate(tp, sizeof(tp), rp_num(s, "throughput"));
        rp_fmt_dur(e2e, sizeof(e2e), rp_num(s, "latency_ms.end_to_end.p95"));
        rp_fmt_dur(pk, sizeof(pk), rp_num(s, "latency_ms.pickup.p95"));
        trib_table_row(&t, nm, pl, in, ir, tp, e2e, pk);
    }
    trib_table_render(&t, o->b, "    ");
    trib_table_fini(&t);
}

static void mode_row(struct trib_table *t, const json_t *mx, const char *name,
                     const char *path, enum rp_unit u)
{
    char a[32], b[32];

    rp_fmt(a, sizeof(a), u, rp_num(json_object_get(mx, "notify"), path));
    rp_fmt(b, sizeof(b), u, rp_num(json_object_get(mx, "poll"), path));
    trib_table_row(t, name, a, b);
}

static void modes(struct out *o, const json_t *doc)
{
    const json_t *mx = rp_get(doc, "mixed");
    struct trib_table t;
    char hn[80], hp[80], q[64];

    if (!json_is_object(mx)) {
        return;
    }
    head(o, "NOTIFY vs POLL");
    rp_clean(q, sizeof(q), rp_str(mx, "notify.queue"), 30);
    snprintf(hn, sizeof(hn), "notify (%s)", q);
    rp_clean(q, sizeof(q), rp_str(mx, "poll.queue"), 30);
    snprintf(hp, sizeof(hp), "poll (%s)", q);
    trib_table_init(&t, "lrr", "", hn, hp);
    mode_row(&t, mx, "clients", "clients", RP_U_COUNT);
    mode_row(&t, mx, "jobs", "jobs", RP_U_COUNT);
    mode_row(&t, mx, "finished", "finished", RP_U_COUNT);
    mode_row(&t, mx, "throughput", "throughput", RP_U_RATE);
    mode_row(&t, mx, "pickup p50", "latency_ms.pickup.p50", RP_U_MS);
    mode_row(&t, mx, "pickup p95", "latency_ms.pickup.p95", RP_U_MS);
    mode_row(&t, mx, "pickup p99", "latency_ms.pickup.p99", RP_U_MS);
    mode_row(&t, mx, "end_to_end p95", "latency_ms.end_to_end.p95", RP_U_MS);
    mode_row(&t, mx, "db conns avg", "db.conns_avg", RP_U_NUM);
    mode_row(&t, mx, "db conns max", "db.conns_max", RP_U_COUNT);
    mode_row(&t, mx, "db active avg", "db.active_avg", RP_U_NUM);
    mode_row(&t, mx, "backend cpu", "db.backend_cpu_s", RP_U_SEC);
    trib_table_render(&t, o->b, "    ");
    trib_table_fini(&t);
}

static void failures(struct out *o, const json_t *doc)
{
    const json_t *f = rp_arr(doc, "failures");
    struct trib_table t;
    char at[24], jb[24], di[24], kind[40], err[64], ids[64];
    size_t i, k, n = f ? json_array_size(f) : 0;

    if (n == 0) {
        return;
    }
    head(o, "FAILURES");
    trib_table_init(&t, "rrrlll", "attempts", "jobs", "discarded", "kind",
                    "error", "sample ids");
    for (i = 0; i < n && i < 5; i++) {
        const json_t *g = json_array_get(f, i);
        const json_t *s = json_object_get(g, "sample_job_ids");
        size_t len = 0;
        rp_fmt_count(at, sizeof(at), rp_num(g, "attempts"));
        rp_fmt_count(jb, sizeof(jb), rp_num(g, "jobs"));
        rp_fmt_count(di, sizeof(di), rp_num(g, "discarded"));
        rp_clean(kind, sizeof(kind), rp_str(g, "kind"), 20);
        rp_clean(err, sizeof(err), rp_str(g, "error"), 34);
        ids[0] = '\0';
        for (k = 0; json_is_array(s) && k < json_array_size(s) && k < 3; k++) {
            const json_t *id = json_array_get(s, k);
            if (json_is_integer(id) && len + 24 < sizeof(ids)) {
                len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%lld",
                                        k ? " " : "",
                                        (long long)json_integer_value(id));
            }
        }
        trib_table_row(&t, at, jb, di, kind, err, ids[0] ? ids : "-");
    }
    trib_table_render(&t, o->b, "    ");
    trib_table_fini(&t);
    if (n > 5) {
        trib_buf_printf(o->b, "    ... %zu more groups (see the HTML report)\n",
                        n - 5);
    }
}

/* ---- monitors, climb, resources ------------------------------------------ */

static void monitors(struct out *o, const json_t *doc)
{
    const json_t *m = rp_get(doc, "monitors");
    const json_t *d = rp_arr(m, "disagreements");
    char a[32], b[32], c[32], w[40];
    size_t i;

    rp_fmt_count(a, sizeof(a), rp_num(m, "polling.finished"));
    rp_fmt_count(b, sizeof(b), rp_num(m, "events.finished"));
    rp_fmt_count(c, sizeof(c), rp_num(m, "events.events_missed"));
    label(o, "monitors");
    if (json_is_true(json_object_get(m, "agree"))) {
        col(o, C_GREEN, "agree");
    } else if (json_is_false(json_object_get(m, "agree"))) {
        col(o, C_RED, "DISAGREE");
    } else {
        trib_buf_puts(o->b, "-");
    }
    trib_buf_printf(o->b, "  database %s finished, events %s (%s missed)\n", a,
                    b, c);
    for (i = 0; d != NULL && i < json_array_size(d) && i < 6; i++) {
        const json_t *x = json_array_get(d, i);
        rp_clean(w, sizeof(w), rp_str(x, "what"), 30);
        rp_fmt_count(a, sizeof(a), rp_num(x, "events"));
        rp_fmt_count(b, sizeof(b), rp_num(x, "database"));
        trib_buf_printf(o->b, "%*s%s: events %s, database %s\n", LABELW + 6, "",
                        w, a, b);
    }
}

/* Appends s word-wrapped to lines of at most 'width' columns, each
 * starting with 'indent' spaces. */
static void wrap(struct out *o, const char *s, size_t indent, size_t width)
{
    size_t col = 0, n;

    while (*s) {
        while (*s == ' ') {
            s++;
        }
        n = strcspn(s, " ");
        if (n == 0) {
            break;
        }
        if (col == 0) {
            trib_buf_printf(o->b, "%*s", (int)indent, "");
            col = indent;
        } else if (col + 1 + n > width) {
            trib_buf_printf(o->b, "\n%*s", (int)indent, "");
            col = indent;
        } else {
            trib_buf_putc(o->b, ' ');
            col++;
        }
        trib_buf_append(o->b, s, n);
        col += n;
        s += n;
    }
    if (col > 0) {
        trib_buf_putc(o->b, '\n');
    }
}

static void climb(struct out *o, const json_t *doc)
{
    const json_t *c = rp_get(doc, "climb");
    char d[400], s[32], st[48], m[32];

    label(o, "climb");
    if (!json_is_object(c)) {
        trib_buf_puts(o->b, "none (latency and backlog stayed flat)\n");
        return;
    }
    rp_fmt_secs(s, sizeof(s), rp_num(c, "at_s"));
    col(o, C_YEL, s);
    rp_clean(st, sizeof(st), rp_str(c, "stage_name"), 30);
    rp_clean(m, sizeof(m), rp_str(c, "metric"), 20);
    trib_buf_printf(o->b, "  in stage %s (%s)\n", st, m);
    rp_clean(d, sizeof(d), rp_str(c, "detail"), 300);
    wrap(o, d, LABELW + 6, 100);
}

/* Largest value of an array (NaN when none), and its index. */
static double amax(const json_t *arr, size_t *at)
{
    double m = NAN;
    size_t i;

    for (i = 0; json_is_array(arr) && i < json_array_size(arr); i++) {
        const json_t *v = json_array_get(arr, i);
        if (json_is_number(v) && !(json_number_value(v) <= m)) {
            m = json_number_value(v);
            if (at != NULL) {
                *at = i;
            }
        }
    }
    return m;
}

static void resources(struct out *o, const json_t *doc)
{
    const json_t *res = rp_get(doc, "resources");
    const json_t *ag = rp_arr(res, "agents");
    const json_t *pg = rp_get(res, "postgres");
    double cpu = NAN, rss = NAN, ob = NAN, v;
    const char *cpu_node = NULL;
    char a[32], b[32], c[32], d[32], e[32], l[256];
    size_t i;

    if (!json_is_object(res)) {
        kv(o, "resources", "-", "not measured");
        return;
    }
    for (i = 0; ag != NULL && i < json_array_size(ag); i++) {
        const json_t *x = json_array_get(ag, i);
        v = amax(json_object_get(x, "cpu_pct"), NULL);
        if (v > cpu || (isnan(cpu) && isfinite(v))) {
            cpu = v;
            cpu_node = rp_str(x, "node");
        }
        v = amax(json_object_get(x, "rss_mib"), NULL);
        rss = isnan(rss) || v > rss ? v : rss;
        v = amax(json_object_get(x, "outbox_events"), NULL);
        ob = isnan(ob) || v > ob ? v : ob;
    }
    rp_fmt(a, sizeof(a), RP_U_PCT, cpu);
    rp_clean(e, sizeof(e), cpu_node, 20);
    rp_fmt(b, sizeof(b), RP_U_MIB, rss);
    rp_fmt_count(c, sizeof(c), ob);
    snprintf(l, sizeof(l), "max CPU %s (%s), max RSS %s, max outbox %s events",
             a, e, b, c);
    kv(o, "agents", ag ? "" : "-", l);
    {
        size_t at = 0;
        double act = amax(json_object_get(pg, "conns_active"), &at);
        double idle = amax(json_object_get(pg, "conns_idle"), NULL);
        rp_fmt_count(a, sizeof(a), act);
        rp_fmt_count(b, sizeof(b), idle);
        rp_fmt_rate(c, sizeof(c),
                    amax(json_object_get(pg, "commits_per_s"), NULL));
        rp_fmt_count(d, sizeof(d),
                     amax(json_object_get(pg, "lock_waits"), NULL));
        rp_fmt_bytes(e, sizeof(e),
                     amax(json_object_get(pg, "river_job_bytes"), NULL));
        snprintf(l, sizeof(l),
                 "max conns %s active / %s idle, commits %s, lock waits %s, "
                 "river_job %s",
                 a, b, c, d, e);
        kv(o, "postgres", json_is_object(pg) ? "" : "-", l);
    }
    ag = rp_arr(res, "errors");
    if (ag != NULL && json_array_size(ag) > 0) {
        rp_clean(l, sizeof(l), json_string_value(json_array_get(ag, 0)), 70);
        kv(o, "sampling", "", l);
    }
}

void report_text(struct trib_buf *b, const json_t *doc, int color)
{
    struct out o = {b, color};

    header(&o, doc);
    thresholds(&o, doc);
    latencies(&o, doc);
    counts(&o, doc);
    stages(&o, doc);
    modes(&o, doc);
    failures(&o, doc);
    head(&o, "RUN HEALTH");
    monitors(&o, doc);
    climb(&o, doc);
    resources(&o, doc);
}
