/*
 * report_render_test.c -- the stress report renderers (report_render.h)
 * fed the fixtures cli/testdata/report-mixed.json (a realistic mixed run:
 * 3 stages, 2 modes, 3 nodes, failures, a failing threshold, resources,
 * a climb) and report-minimal.json (nulls and empty arrays), plus hostile
 * and malformed variants; and `tributary report` end to end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "report_priv.h"
#include "report_render.h"
#include "trib_buf.h"
#include "trib_err.h"

#define MIXED   TRIB_SOURCE_DIR "/cli/testdata/report-mixed.json"
#define MINIMAL TRIB_SOURCE_DIR "/cli/testdata/report-minimal.json"

static const char *const charts[] = {
    "throughput", "latency",      "cdf_end_to_end", "cdf_pickup",
    "histogram",  "nodes",        "modes",          "agent_cpu",
    "agent_rss",  "agent_outbox", "pg_conns",       "pg_commits",
    "pg_tuples",  "pg_size",      "pg_locks",       NULL};

static json_t *load(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);

    if (j == NULL) {
        fail_msg("%s:%d:%d: %s", path, e.line, e.column, e.text);
    }
    return j;
}

/* d[k1][i], or d[k1][k2][i] */
static json_t *item(json_t *d, const char *k1, const char *k2, size_t i)
{
    json_t *o = json_object_get(d, k1);

    return json_array_get(k2 ? json_object_get(o, k2) : o, i);
}

static void has(const struct trib_buf *b, const char *want)
{
    if (b->data == NULL || strstr(b->data, want) == NULL) {
        fprintf(stderr, "missing \"%s\" in:\n%s\n", want,
                b->data ? b->data : "");
        fail();
    }
}

static void lacks(const struct trib_buf *b, const char *unwanted)
{
    if (b->data != NULL && strstr(b->data, unwanted) != NULL) {
        fprintf(stderr, "unexpected \"%s\" in:\n%s\n", unwanted, b->data);
        fail();
    }
}

/* The text with every run of spaces squeezed to one. */
static void squash(struct trib_buf *out, const struct trib_buf *in)
{
    size_t i;

    trib_buf_reset(out);
    for (i = 0; i < in->len; i++) {
        if (in->data[i] == ' ' && out->len > 0 &&
            out->data[out->len - 1] == ' ') {
            continue;
        }
        trib_buf_putc(out, in->data[i]);
    }
}

/* Widest line in characters (UTF-8 code points). */
static size_t widest(const char *s)
{
    size_t w = 0, max = 0;

    for (; *s; s++) {
        if (*s == '\n') {
            w = 0;
        } else if (((unsigned char)*s & 0xC0) != 0x80 && ++w > max) {
            max = w;
        }
    }
    return max;
}

/*
 * A tiny HTML well-formedness check: every element opened is closed in
 * order (void elements and "/>" excepted; <style> content skipped).
 * Returns NULL when balanced, else a static description.
 */
static const char *unbalanced(const char *h)
{
    static char why[160];
    static const char *const voids[] = {"meta", "br", "img", "input",
                                        "link", "hr", NULL};
    char stack[256][24], name[24];
    int depth = 0, i, closing, selfclose;
    const char *p = h, *e;
    size_t n;

    while ((p = strchr(p, '<')) != NULL) {
        if (strncmp(p, "<!", 2) == 0) {
            p = strchr(p, '>');
            if (p == NULL) {
                return "unterminated <!";
            }
            continue;
        }
        closing = p[1] == '/';
        e = p + 1 + closing;
        n = strspn(e, "abcdefghijklmnopqrstuvwxyz0123456789");
        if (n == 0 || n >= sizeof(name)) {
            snprintf(why, sizeof(why), "stray '<' at offset %ld",
                     (long)(p - h));
            return why;
        }
        memcpy(name, e, n);
        name[n] = '\0';
        e = strchr(e, '>');
        if (e == NULL) {
            return "unterminated tag";
        }
        selfclose = e[-1] == '/';
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0) {
                snprintf(why, sizeof(why), "</%s> closes <%s> at offset %ld",
                         name, depth ? stack[depth - 1] : "(nothing)",
                         (long)(p - h));
                return why;
            }
            depth--;
        } else if (!selfclose) {
            for (i = 0; voids[i] && strcmp(voids[i], name) != 0; i++) {
            }
            if (voids[i] == NULL) {
                if (depth == 256) {
                    return "too deep";
                }
                strcpy(stack[depth++], name);
            }
            if (strcmp(name, "style") == 0) {
                e = strstr(e, "</style>");
                if (e == NULL) {
                    return "unterminated <style>";
                }
                e--;
            }
        }
        p = e + 1;
    }
    if (depth != 0) {
        snprintf(why, sizeof(why), "<%s> never closed", stack[depth - 1]);
        return why;
    }
    return NULL;
}

static void balanced(const struct trib_buf *b)
{
    const char *why = unbalanced(b->data);

    if (why != NULL) {
        fail_msg("HTML not balanced: %s", why);
    }
}

/* The <svg> of data-chart NAME (a pointer into b, up to its </svg>). */
static const char *chart(const struct trib_buf *b, const char *name,
                         size_t *len)
{
    char key[64];
    const char *s, *e;

    snprintf(key, sizeof(key), "data-chart=\"%s\"", name);
    s = strstr(b->data, key);
    if (s == NULL) {
        fail_msg("no chart %s", name);
    }
    e = strstr(s, "</svg>");
    assert_non_null(e);
    *len = (size_t)(e - s);
    return s;
}

/* Whether needle occurs in [c, c+len). */
static int within(const char *c, size_t len, const char *needle)
{
    const char *x = strstr(c, needle);

    return x != NULL && x + strlen(needle) <= c + len;
}

/* Largest number of points of a polyline in [s, s+len), and the smallest
 * y of a polyline stroked 'color' (NULL: any). */
static size_t max_points(const char *s, size_t len, const char *color,
                         double *miny)
{
    const char *end = s + len, *p = s;
    size_t most = 0;

    *miny = 1e9;
    while ((p = strstr(p, "<polyline")) != NULL && p < end) {
        const char *pts = strstr(p, "points=\""), *q;
        size_t k = 0;
        int match = color == NULL ||
                    (strstr(p, color) != NULL && strstr(p, color) < pts);
        assert_non_null(pts);
        for (q = pts + 8; *q != '"'; q++) {
            if (*q == ',') {
                double y = strtod(q + 1, NULL);
                k++;
                if (match && y < *miny) {
                    *miny = y;
                }
            }
        }
        most = k > most ? k : most;
        p = q;
    }
    return most;
}

/* ---- units --------------------------------------------------------------- */

#define FMT(fn, want, ...)                                                     \
    do {                                                                       \
        fn(buf, sizeof(buf), __VA_ARGS__);                                     \
        assert_string_equal(buf, want);                                        \
    } while (0)

static void test_units(void **state)
{
    static const struct {
        double ms;
        const char *want;
    } durs[] = {
        {0, "0s"},          {0.0042, "4.2us"},  {0.412, "412us"},
        {4.25, "4.25ms"},   {4.5, "4.5ms"},     {30.0, "30ms"},
        {80.2, "80.2ms"},   {140.9, "141ms"},   {1250, "1.25s"},
        {2000, "2s"},       {12500, "12.5s"},   {125000, "2m05s"},
        {3720000, "1h02m"}, {-20.1, "-20.1ms"}, {1e300, "1e+297s"},
    };
    struct trib_buf b = TRIB_BUF_INIT;
    char buf[64];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        FMT(rp_fmt_dur, durs[i].want, durs[i].ms);
    }
    FMT(rp_fmt_dur, "-", NAN);
    FMT(rp_fmt_pct, "9.60%", 0.096);
    FMT(rp_fmt_pct, "-", NAN);
    FMT(rp_fmt_bytes, "4.50 MiB", 4.5 * 1048576);
    FMT(rp_fmt_count, "1,234,567", 1234567);
    FMT(rp_fmt_delta, "+50%", 200, 300);
    FMT(rp_fmt_delta, "-3.0%", 100, 97);
    FMT(rp_fmt_delta, "-", 0, 5);
    FMT(rp_fmt_delta, "0%", 0, 0);
    rp_esc(&b, "a<b>&\"'\033z");
    assert_string_equal(b.data, "a&lt;b&gt;&amp;&quot;&#39;z");
    FMT(rp_clean, "x?[2Jy", "x\033[2Jy", 40);
    trib_buf_fini(&b);
}

/* ---- report_check -------------------------------------------------------- */

static void test_check(void **state)
{
    static const char *const bad[] = {
        "[]",
        "{\"run\": {}}",
        "{\"schema\": \"tributary.status/1\"}",
        "{\"schema\": \"tributary.stress.report/x\"}",
        "{\"schema\": \"tributary.stress.report/1.5\"}",
        "{\"schema\": 1}",
        NULL};
    char err[256];
    json_t *d;
    int i;

    (void)state;
    d = load(MIXED);
    assert_int_equal(report_check(d, err, sizeof(err)), 0);
    json_decref(d);
    d = load(MINIMAL);
    assert_int_equal(report_check(d, err, sizeof(err)), 0);
    json_decref(d);
    for (i = 0; bad[i] != NULL; i++) {
        d = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(d);
        err[0] = '\0';
        assert_int_equal(report_check(d, err, sizeof(err)), TRIB_EINVAL);
        assert_non_null(strstr(err, "report")); /* says what it wanted */
        json_decref(d);
    }
    d = json_pack("{s:s}", "schema", "tributary.stress.report/2");
    assert_int_equal(report_check(d, err, sizeof(err)), TRIB_ENOTSUP);
    assert_non_null(strstr(err, "major version 1"));
    json_decref(d);
}

/* ---- text ---------------------------------------------------------------- */

static void test_text_mixed(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT, s = TRIB_BUF_INIT;
    json_t *d = load(MIXED), *e2e;

    (void)state;
    /* the brief's example values, to pin the k6-style line */
    e2e = json_pack("{s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "count", 5500, "min",
                    1.2, "avg", 20.1, "p50", 12.3, "p90", 30.0, "p95", 41.0,
                    "p99", 80.2, "max", 140.9);
    json_object_set_new(json_object_get(d, "latency_ms"), "end_to_end", e2e);
    report_text(&b, d, 0);
    squash(&s, &b);
    has(&s, "run: 20261127-160000-3fa2 mixed-demo");
    has(&s, "outcome: finished after 44.5s, exit code 3");
    has(&s, "plan: 3 stages, 5,500 jobs of tributary.fail, delay 2s, mixed "
            "notify/poll, monitor both");
    has(&s, "insert: copy, batches of 1,000, 2 streams");
    has(&s, "2. peak: ramp 20s to 300/s");
    has(&s, "3. drain: 1,000 jobs at 200/s");
    has(&s, "THRESHOLDS");
    has(&s, "✓ p95(end_to_end) < 2s actual=");
    has(&s, "✗ failed_rate < 5% actual=10.0%");
    has(&s, "end_to_end.: avg=20.1ms min=1.2ms med=12.3ms p(90)=30ms "
            "p(95)=41ms p(99)=80.2ms max=141ms\n");
    has(&s, "pickup.....: avg=");
    has(&s, "queue_wait.: avg=");
    has(&s, "finished.....: 5,500 throughput 137/s");
    has(&s, "inserted.....: 5,500 insert rate 157/s");
    has(&s, "discarded....: 520 9.45%");
    has(&s, "failed_rate..: 10.0%");
    has(&s, "attempts.....: 6,100 1,150 failed (error_rate 18.9%)");
    has(&s, "started_early: 0");
    has(&s, "stage planned inserted insert rate throughput p95 e2e");
    has(&s, "peak 4,000 4,000 200/s");
    has(&s, "notify (default) poll (poll)");
    has(&s, "pickup p50 2.3ms 395ms");
    has(&s, "backend cpu 1.2s -");
    has(&s, "1,010 560 480 tributary.fail tributary.fail: simulated failure "
            "1203 1188 1050");
    has(&s, "monitors.....: agree database 5,500 finished, events 5,500 "
            "(0 missed)");
    has(&s, "climb........: 24s in stage peak (backlog)\n backlog grew from "
            "12 to 245 jobs during stage 'peak'\n");
    has(&s, "agents.......: max CPU 65.1% (node-3), max RSS 45.5 MiB");
    has(&s, "postgres.....: max conns 7 active / 20 idle");
    lacks(&b, "\033");
    if (widest(b.data) > 100) {
        fprintf(stderr, "%s", b.data);
        fail_msg("a line is %zu columns wide", widest(b.data));
    }
    trib_buf_reset(&b);
    report_text(&b, d, 1);
    has(&b, "\033[32m✓\033[0m");
    has(&b, "\033[31m✗\033[0m");
    trib_buf_fini(&b);
    trib_buf_fini(&s);
    json_decref(d);
}

static void test_text_minimal(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT, s = TRIB_BUF_INIT;
    json_t *d = load(MINIMAL);

    (void)state;
    report_text(&b, d, 0);
    squash(&s, &b);
    has(&s, "run: 20261127-170000-0b1c\n");
    has(&s, "outcome: error after 2.5s, exit code 1");
    has(&s, "error: database: connection refused");
    has(&s, "end_to_end.: avg=- min=- med=- p(90)=- p(95)=- p(99)=- "
            "max=-\n");
    has(&s, "failed_rate..: -");
    has(&s, "climb........: none");
    has(&s, "resources....: - not measured");
    lacks(&s, "THRESHOLDS");
    lacks(&s, "STAGES");
    lacks(&s, "NOTIFY vs POLL");
    lacks(&s, "FAILURES");
    lacks(&b, "nan");
    trib_buf_fini(&b);
    trib_buf_fini(&s);
    json_decref(d);
}

/* An error text with terminal control sequences prints inert. */
static void test_text_hostile(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *d = load(MIXED);

    (void)state;
    json_object_set_new(item(d, "failures", NULL, 0), "error",
                        json_string("boom\033[2J\033]0;owned\007"));
    json_object_set_new(json_object_get(d, "run"), "name",
                        json_string("x\033[31mred"));
    report_text(&b, d, 0);
    lacks(&b, "\033");
    lacks(&b, "\007");
    has(&b, "boom?[2J?]0;owned?");
    trib_buf_fini(&b);
    json_decref(d);
}

/* ---- HTML ---------------------------------------------------------------- */

static void test_html_mixed(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *d = load(MIXED);
    const char *c;
    size_t len, i;
    double miny;

    (void)state;
    report_html(&b, d);
    assert_memory_equal(b.data, "<!DOCTYPE html>", 15);
    balanced(&b);
    for (i = 0; charts[i] != NULL; i++) {
        c = chart(&b, charts[i], &len);
        assert_true(within(c, len, "<title>"));
        assert_false(within(c, len, "no data"));
    }
    for (i = 0; charts[i] != NULL; i++) {
        if (strcmp(charts[i], "histogram") == 0 ||
            strcmp(charts[i], "nodes") == 0 ||
            strcmp(charts[i], "modes") == 0) {
            c = chart(&b, charts[i], &len);
            assert_true(within(c, len, "<rect x="));
            continue;
        }
        c = chart(&b, charts[i], &len);
        if (max_points(c, len, NULL, &miny) < 10) {
            fail_msg("chart %s has no line", charts[i]);
        }
    }
    /* stage markers and the climb on time charts, a legend, tick labels */
    c = chart(&b, "throughput", &len);
    assert_true(within(c, len, ">warm-up</text>"));
    assert_true(within(c, len, ">drain</text>"));
    assert_true(within(c, len, "class=\"climb\""));
    assert_true(within(c, len, "class=\"legend\""));
    assert_true(within(c, len, ">10s</text>"));
    has(&b, "<code>p95(end_to_end) &lt; 2s</code>");
    has(&b, "✗ fail");
    has(&b, "tributary.fail: simulated failure");
    has(&b, "node-1-notify");
    has(&b, "<td class=\"n\">+10s</td>"); /* the peak stage's start */
    has(&b, "backlog grew from 12 to 245 jobs during stage &#39;peak&#39;");
    lacks(&b, "http://");
    lacks(&b, "https://");
    lacks(&b, "<script");
    lacks(&b, "nan");
    trib_buf_fini(&b);
    json_decref(d);
}

static void test_html_minimal(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *d = load(MINIMAL);
    const char *c;
    size_t len, i;

    (void)state;
    report_html(&b, d);
    balanced(&b);
    for (i = 0; charts[i] != NULL; i++) {
        c = chart(&b, charts[i], &len);
        if (!within(c, len, "no data")) {
            fail_msg("chart %s: no placeholder", charts[i]);
        }
    }
    has(&b, "<b>Error:</b> database: connection refused");
    has(&b, "No thresholds were set.");
    has(&b, "No failed attempts.");
    has(&b, "Resources were not measured");
    lacks(&b, "<polyline");
    lacks(&b, "nan");
    lacks(&b, "http://");
    trib_buf_fini(&b);
    json_decref(d);
}

static void test_html_escaping(void **state)
{
    static const char evil[] = "</svg><script>alert(1)</script>&\"'";
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *d = load(MIXED);

    (void)state;
    json_object_set_new(item(d, "failures", NULL, 0), "error",
                        json_string(evil));
    json_object_set_new(json_object_get(d, "run"), "name",
                        json_string("<b onmouseover=alert(1)>run</b>"));
    json_object_set_new(item(d, "breakdowns", "node", 0), "key",
                        json_string("<img src=x onerror=y>"));
    json_object_set_new(item(d, "resources", "agents", 0), "node",
                        json_string("</text><script>z</script>"));
    report_html(&b, d);
    balanced(&b);
    lacks(&b, "<script");
    lacks(&b, "<img");
    lacks(&b, "<b onmouseover");
    has(&b, "&lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;"
            "&#39;");
    has(&b, "&lt;img src=x onerror=y&gt;");
    trib_buf_fini(&b);
    json_decref(d);
}

/* 5,000 seconds: each line is cut to <= 600 points, spikes kept. */
static void test_html_downsample(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *d = load(MIXED), *series, *t, *f, *st;
    const char *c;
    size_t len, i;
    double miny;

    (void)state;
    series = json_object_get(d, "series");
    t = json_array();
    f = json_array();
    st = json_array();
    for (i = 0; i < 5000; i++) {
        json_array_append_new(t, json_integer((json_int_t)i));
        json_array_append_new(f, i == 2501     ? json_integer(1000000)
                                 : i % 97 == 0 ? json_null()
                                               : json_integer(100 + i % 7));
        json_array_append_new(st, json_integer(i < 2000 ? 0 : 1));
    }
    json_object_set_new(series, "t", t);
    json_object_set_new(series, "finished", f);
    json_object_set_new(series, "stage", st);
    report_html(&b, d);
    balanced(&b);
    c = chart(&b, "throughput", &len);
    assert_true(max_points(c, len, NULL, &miny) <= 600);
    /* finished/s is drawn in palette colour 2; the spike reaches the top */
    max_points(c, len, "#2ca02c", &miny);
    assert_true(miny < 80.0);
    assert_true(within(c, len, ">1M</text>"));
    trib_buf_fini(&b);
    json_decref(d);
}

/* Every field of the wrong type: renders something, never crashes. */
static void test_malformed(void **state)
{
    static const char doc[] =
        "{\"schema\": \"tributary.stress.report/1\", \"run\": [], \"counts\": "
        "\"x\", \"rates\": 5, \"latency_ms\": {\"end_to_end\": 5, \"pickup\": "
        "{\"histogram\": [1, {\"le\": \"x\"}]}}, \"stages\": [1, {\"name\": "
        "5, \"form\": \"ramp\"}], \"breakdowns\": {\"node\": [null, {\"key\": "
        "3}], \"mode\": 7}, \"series\": {\"t\": \"a\", \"finished\": [1, "
        "\"x\", null, {}], \"stage\": [0, 99, -1, \"q\"]}, \"cdf\": "
        "{\"end_to_end\": [[1], \"x\", [null, 2], [0, 0.5], [-3, 1]], "
        "\"pickup_by_mode\": []}, \"failures\": {\"a\": 1}, \"thresholds\": "
        "[null, {\"expr\": 5, \"unit\": 3}], \"monitors\": [], \"resources\": "
        "{\"agents\": [1, {\"cpu_pct\": \"x\", \"node\": []}], \"postgres\": "
        "5}, \"mixed\": {\"notify\": 1}, \"climb\": {\"at_s\": \"x\"}}";
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *d = json_loads(doc, 0, NULL), *ok = load(MIXED);
    char err[128];

    (void)state;
    assert_non_null(d);
    assert_int_equal(report_check(d, err, sizeof(err)), 0);
    report_text(&b, d, 1);
    assert_true(b.len > 100);
    trib_buf_reset(&b);
    report_html(&b, d);
    balanced(&b);
    trib_buf_reset(&b);
    report_compare_text(&b, d, ok, 0);
    report_compare_text(&b, ok, d, 0);
    trib_buf_reset(&b);
    report_compare_html(&b, d, ok);
    balanced(&b);
    trib_buf_fini(&b);
    json_decref(d);
    json_decref(ok);
}

/* Absurd magnitudes and negative times: printable, balanced, no NaN. */
static void test_extreme(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *d = load(MIXED), *s, *e2e;

    (void)state;
    s = json_object_get(d, "series");
    json_object_set_new(s, "t", json_pack("[f,i,i,i]", -5.0, 1, 2, 3));
    json_object_set_new(s, "finished",
                        json_pack("[f,f,i,f]", 1e308, -1e308, 0, 1e-300));
    e2e = json_object_get(json_object_get(d, "latency_ms"), "end_to_end");
    json_object_set_new(e2e, "p95", json_real(1e300));
    json_object_set_new(e2e, "min", json_real(-1e300));
    json_object_set_new(json_object_get(d, "run"), "duration_s",
                        json_real(1e300));
    json_object_set_new(json_object_get(d, "cdf"), "end_to_end",
                        json_pack("[[f,f],[f,f]]", 1e-300, 0.5, 1e300, 1.0));
    report_text(&b, d, 0);
    lacks(&b, "nan");
    lacks(&b, "inf");
    trib_buf_reset(&b);
    report_html(&b, d);
    balanced(&b);
    lacks(&b, "nan");
    lacks(&b, "inf\"");
    trib_buf_fini(&b);
    json_decref(d);
}

/* ---- compare ------------------------------------------------------------- */

static void test_compare(void **state)
{
    struct trib_buf b = TRIB_BUF_INIT, s = TRIB_BUF_INIT;
    json_t *a = load(MIXED), *c = load(MIXED), *lat;
    const char *x;
    size_t len;
    double miny;

    (void)state;
    json_object_set_new(json_object_get(c, "run"), "id",
                        json_string("20261128-090000-beef"));
    lat = json_object_get(json_object_get(c, "latency_ms"), "end_to_end");
    json_object_set_new(
        lat, "p95",
        json_real(2 * json_real_value(json_object_get(lat, "p95"))));
    json_object_set_new(json_object_get(c, "rates"), "throughput",
                        json_real(68.4));
    json_object_set_new(item(c, "thresholds", NULL, 1), "pass", json_true());
    report_compare_text(&b, a, c, 0);
    squash(&s, &b);
    has(&s, "A (baseline): 20261127-160000-3fa2 mixed-demo");
    has(&s, "B (candidate): 20261128-090000-beef mixed-demo");
    has(&s, "end_to_end p95 194ms 388ms +100%");
    has(&s, "throughput 137/s 68.4/s -50%");
    has(&s, "finished 5,500 5,500 0%");
    has(&s, "NOTIFY vs POLL");
    has(&s, "failed_rate < 5% ✗ 10.0% ✓ 10.0%");
    lacks(&b, "\033");
    trib_buf_reset(&b);
    report_compare_text(&b, a, c, 1);
    has(&b, "\033[31m+100%\033[0m"); /* worse latency in red */
    trib_buf_reset(&b);
    report_compare_html(&b, a, c);
    balanced(&b);
    has(&b, "20261127-160000-3fa2");
    has(&b, "20261128-090000-beef");
    has(&b, "+100%");
    x = chart(&b, "cmp_throughput", &len);
    assert_true(max_points(x, len, NULL, &miny) > 10);
    x = chart(&b, "cmp_latency", &len);
    assert_true(max_points(x, len, NULL, &miny) > 10);
    chart(&b, "cmp_cdf_end_to_end", &len);
    chart(&b, "cmp_cdf_pickup", &len);
    lacks(&b, "http://");
    lacks(&b, "https://");
    trib_buf_fini(&b);
    trib_buf_fini(&s);
    json_decref(a);
    json_decref(c);
}

/* ---- `tributary report` -------------------------------------------------- */

/* Runs `tributary report ARGS...` (NULL-terminated) with stdout muted. */
static int run_cli(const char *arg, ...)
{
    const char *argv[16] = {"report"};
    int argc = 1, saved, null, rc;
    va_list ap;

    va_start(ap, arg);
    for (; arg != NULL && argc < 15; arg = va_arg(ap, const char *)) {
        argv[argc++] = arg;
    }
    va_end(ap);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    rc = trib_cli_report(argc, (char **)argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(null);
    return rc;
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A written HTML file is whole, and no temporary file is left over. */
static void whole_html(const char *dir, const char *path)
{
    char cmd[512], tail[16] = "";
    FILE *f = fopen(path, "r");

    assert_non_null(f);
    fseek(f, -8, SEEK_END);
    assert_int_equal(fread(tail, 1, 8, f), 8);
    fclose(f);
    assert_string_equal(tail, "</html>\n");
    snprintf(cmd, sizeof(cmd), "ls %s | grep -q tmp", dir);
    assert_int_not_equal(system(cmd), 0);
}

static void test_cli(void **state)
{
    char dir[] = "/tmp/trib-report-test-XXXXXX", p[256], q[256], h[256];
    json_t *d = load(MIXED);

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(p, sizeof(p), "%s/report.json", dir);
    snprintf(q, sizeof(q), "%s/other.html", dir);
    snprintf(h, sizeof(h), "%s/report.html", dir);
    assert_int_equal(json_dump_file(d, p, 0), 0);
    assert_int_equal(run_cli(dir, "--no-color", NULL), TRIB_EXIT_OK);
    whole_html(dir, h);
    assert_int_equal(run_cli(p, "--json", "--html", q, NULL), TRIB_EXIT_OK);
    whole_html(dir, q);
    assert_int_equal(run_cli("--compare", dir, p, "--html", q, NULL),
                     TRIB_EXIT_OK);
    whole_html(dir, q);
    /* I/O errors: 1 */
    assert_int_equal(run_cli(dir, "--html", "/nonexistent-dir/x.html", NULL),
                     TRIB_EXIT_ERROR);
    assert_int_equal(run_cli("/nonexistent-dir", NULL), TRIB_EXIT_ERROR);
    /* usage: 2 */
    assert_int_equal(run_cli("--compare", dir, NULL), TRIB_EXIT_USAGE);
    assert_int_equal(run_cli(NULL), TRIB_EXIT_USAGE);
    assert_int_equal(run_cli(dir, "--bogus", NULL), TRIB_EXIT_USAGE);
    assert_int_equal(run_cli(dir, dir, NULL), TRIB_EXIT_USAGE);
    assert_int_equal(run_cli(dir, "--html", q, "--no-html", NULL),
                     TRIB_EXIT_USAGE);
    /* not a readable report: 2 */
    put_file(p, "{\"schema\": \"tributary.stress.report/1\",\n \"run\": }");
    assert_int_equal(run_cli(dir, "--no-html", NULL), TRIB_EXIT_USAGE);
    put_file(p, "{\"schema\": \"tributary.stress.report/9\"}");
    assert_int_equal(run_cli(dir, "--no-html", NULL), TRIB_EXIT_USAGE);
    unlink(p);
    unlink(q);
    unlink(h);
    rmdir(dir);
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_text_mixed),
        cmocka_unit_test(test_text_minimal),
        cmocka_unit_test(test_text_hostile),
        cmocka_unit_test(test_html_mixed),
        cmocka_unit_test(test_html_minimal),
        cmocka_unit_test(test_html_escaping),
        cmocka_unit_test(test_html_downsample),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_extreme),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_cli),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
