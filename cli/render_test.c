/*
 * render_test.c -- the CLI's human renderers, fed the documents of
 * docs/CONTROL.md as fixtures, and the event JSON of `tributary events`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "render.h"
#include "report_priv.h"
#include "trib_err.h"

/* ---- fixtures (docs/CONTROL.md) ----------------------------------------- */

#define LAT(c, p50, p95, p99, mx)                                              \
    "{\"count\": " #c ", \"p50\": " #p50 ", \"p90\": 20.0, \"p95\": " #p95     \
    ", \"p99\": " #p99 ", \"p999\": 80.0, \"max\": " #mx "}"
#define LAT_QW  LAT(1200, 1.5, 3.25, 4.0, 9.0)
#define LAT_RUN LAT(1200, 10.0, 20.0, 30.0, 50.0)
#define LAT_CO  LAT(1200, 0.5, 0.9, 1.0, 2.0)
#define LAT_PK  LAT(1200, 2.0, 2.9, 3.5, 7.0)
#define LAT_E2E LAT(1200, 12.345, 25.1, 40.2, 95.3)
#define LATS                                                                   \
    "{\"queue_wait\": " LAT_QW ", \"run\": " LAT_RUN ", \"complete\": " LAT_CO \
    ", \"pickup\": " LAT_PK ", \"end_to_end\": " LAT_E2E "}"
#define COUNTS                                                                 \
    "\"finished\": 100, \"completed\": 90, \"discarded\": 6, \"cancelled\": "  \
    "4, \"events\": {\"job_completed\": 90, \"job_failed\": 15, "              \
    "\"job_cancelled\": 4, \"job_snoozed\": 2, \"job_interrupted\": 0}, "      \
    "\"retryable\": 9, \"snoozed\": 2, \"rate\": {\"1s\": 12.0, \"10s\": "     \
    "11.5, \"1m\": 10.2}"
#define NODE                                                                   \
    "{\"node\": \"n1\", \"host\": \"h\", \"version\": \"0.1.0\", \"pid\": "    \
    "123, \"boot_id\": \"9f\", \"liveness\": \"alive\", \"last_heartbeat\": "  \
    "\"2026-11-27T12:59:59.750Z\", \"last_heartbeat_age_ms\": 250.0, "         \
    "\"connected\": true, \"started_at\": \"2026-11-27T12:58:00.000Z\", "      \
    "\"sample\": {\"cpu_user_s\": 1.2, \"cpu_sys_s\": 0.3, \"rss_bytes\": "    \
    "1234, \"threads\": 18, \"outbox_events\": 0, \"outbox_bytes\": 0, "       \
    "\"db_conns\": 5}, \"clients\": [{\"id\": \"n1-c1\", \"mode\": "           \
    "\"notify\", \"queues\": [\"default\"], \"in_flight\": 2, "                \
    "\"fetch_paused\": false, " COUNTS "}, {\"id\": \"n1-c2\", \"mode\": "     \
    "\"poll\", \"queues\": [\"poll\", \"bulk\"], \"in_flight\": 1, "           \
    "\"fetch_paused\": true, " COUNTS "}], " COUNTS "}"
#define NODE2                                                                  \
    "{\"node\": \"n2\", \"liveness\": \"missing\", "                           \
    "\"last_heartbeat_age_ms\": 25000.0, \"clients\": []}"
#define FAILURE                                                                \
    "{\"kind\": \"charge\", \"error\": \"card N declined\", \"count\": "       \
    "1234, \"discarded\": 3, \"first_seen\": \"2026-11-27T12:55:00.000Z\", "   \
    "\"last_seen\": \"2026-11-27T12:59:48.000Z\", \"sample_job_ids\": [17, "   \
    "42, 99], \"queues\": [\"default\"]}"
#define DATABASE                                                               \
    "{\"polled_at\": \"2026-11-27T12:59:59.600Z\", \"age_ms\": 400.0, "        \
    "\"interval_ms\": 1000, \"error\": null, \"states\": {\"available\": 0, "  \
    "\"running\": 3, \"scheduled\": 10, \"retryable\": 2, \"pending\": 0, "    \
    "\"completed\": 980, \"discarded\": 4, \"cancelled\": 1}, \"rows\": ["     \
    "{\"queue\": \"default\", \"kind\": \"noop\", \"state\": \"completed\", "  \
    "\"database\": 980, \"events\": 978, \"difference\": 2}, {\"queue\": "     \
    "\"default\", \"kind\": \"noop\", \"state\": \"discarded\", "              \
    "\"database\": 4, \"events\": 4, \"difference\": 0}, {\"queue\": "         \
    "\"default\", \"kind\": \"noop\", \"state\": \"scheduled\", "              \
    "\"database\": 10, \"events\": 0, \"difference\": 10}, {\"queue\": "       \
    "\"poll\", \"kind\": \"noop\", \"state\": \"retryable\", \"database\": "   \
    "2, \"events\": 0, \"difference\": 2}, {\"queue\": \"other\", \"kind\": "  \
    "\"noop\", \"state\": \"running\", \"database\": 3, \"events\": 0, "       \
    "\"difference\": 3}], \"differences\": [{\"reason\": "                     \
    "\"events_in_transit\", \"count\": 2, \"detail\": \"finalized in the "     \
    "database, event not yet applied\"}, {\"reason\": \"unknown_clients\", "   \
    "\"count\": 50, \"detail\": \"finalized by clients that are not "          \
    "Tributary agents: riverworker-1\"}], \"warnings\": [\"polls take "        \
    "longer than the interval\"]}"
#define STATUS(filter, db)                                                     \
    "{\"schema\": \"tributary.status/1\", \"generated_at\": "                  \
    "\"2026-11-27T13:00:00.000Z\", \"filter\": " filter ", \"coordinator\": "  \
    "{\"id\": \"c-1f2e\", \"version\": \"0.1.0\", \"started_at\": "            \
    "\"2026-11-27T12:59:47.500Z\", \"uptime_s\": 12.5, \"persistent\": "       \
    "true, \"data_dir\": \"/var/lib/tributary\", \"events_applied\": 1000, "   \
    "\"duplicates\": 0, \"invalid\": 0, \"batches\": 20, \"gaps\": 0, "        \
    "\"frames_rejected\": 0, \"auth_failures\": 0, \"groups\": 8, "            \
    "\"failure_groups\": 2}, \"totals\": {" COUNTS ", \"in_flight\": 3, "      \
    "\"latency_ms\": " LATS "}, \"nodes\": [" NODE ", " NODE2 "], "            \
    "\"queues\": [{\"queue\": \"default\", " COUNTS ", \"latency_ms\": " LATS  \
    "}], \"kinds\": [{\"kind\": \"noop\", " COUNTS ", \"latency_ms\": " LATS   \
    "}], \"modes\": [{\"mode\": \"notify\", " COUNTS ", \"latency_ms\": " LATS \
    "}], \"groups\": [], \"failures\": [" FAILURE "], \"database\": " db "}"
#define NOFILTER "{\"queue\": null, \"kind\": null, \"node\": null}"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);

    if (j == NULL) {
        fail_msg("fixture: %s (line %d col %d)", e.text, e.line, e.column);
    }
    return j;
}

static void assert_has(const struct trib_buf *b, const char *want)
{
    if (b->data == NULL || strstr(b->data, want) == NULL) {
        /* fprintf: cmocka's own message buffer is too small for a page */
        fprintf(stderr, "missing \"%s\" in:\n%s\n", want,
                b->data ? b->data : "");
        fail();
    }
}

static void assert_lacks(const struct trib_buf *b, const char *unwanted)
{
    if (b->data != NULL && strstr(b->data, unwanted) != NULL) {
        fprintf(stderr, "unexpected \"%s\" in:\n%s\n", unwanted, b->data);
        fail();
    }
}

/* ---- formatting -----------------------------------------------------------
 */

static void test_fmt_count(void **state)
{
    char b[32];

    (void)state;
    trib_fmt_count(b, sizeof(b), 0);
    assert_string_equal(b, "0");
    trib_fmt_count(b, sizeof(b), 999);
    assert_string_equal(b, "999");
    trib_fmt_count(b, sizeof(b), 1000);
    assert_string_equal(b, "1,000");
    trib_fmt_count(b, sizeof(b), 1234567);
    assert_string_equal(b, "1,234,567");
    trib_fmt_count(b, sizeof(b), -1234);
    assert_string_equal(b, "-1,234");
    trib_fmt_count(b, sizeof(b), INT64_MIN);
    assert_string_equal(b, "-9,223,372,036,854,775,808");
}

static void test_fmt_ms(void **state)
{
    static const struct {
        double ms;
        const char *want;
    } cases[] = {
        {0, "0.000 ms"},     {0.412, "0.412 ms"}, {1.25, "1.25 ms"},
        {12.345, "12.3 ms"}, {250, "250 ms"},     {999.4, "999 ms"},
        {999.6, "1.00 s"},   {1250, "1.25 s"},    {12500, "12.5 s"},
        {125000, "2m05s"},   {3720000, "1h02m"},  {-2.5, "-2.50 ms"},
        {59990, "1m00s"},    {1e300, "1e+297 s"}, {-1e300, "-1e+297 s"},
    };
    char b[32];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trib_fmt_ms(b, sizeof(b), cases[i].ms);
        assert_string_equal(b, cases[i].want);
    }
    trib_fmt_ms(b, sizeof(b), NAN);
    assert_string_equal(b, "-");
}

static void test_fmt_rate(void **state)
{
    char b[32];

    (void)state;
    trib_fmt_rate(b, sizeof(b), 0);
    assert_string_equal(b, "0/s");
    trib_fmt_rate(b, sizeof(b), 0.5);
    assert_string_equal(b, "0.50/s");
    trib_fmt_rate(b, sizeof(b), 12.04);
    assert_string_equal(b, "12.0/s");
    trib_fmt_rate(b, sizeof(b), 1234.4);
    assert_string_equal(b, "1,234/s");
    trib_fmt_rate(b, sizeof(b), NAN);
    assert_string_equal(b, "-");
}

static void test_table(void **state)
{
    struct trib_table t;
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_table_init(&t, "lrl", "name", "count", "note");
    trib_table_row(&t, "a", "1", "x");
    trib_table_row(&t, "längere", "1,000", NULL);
    trib_table_render(&t, &b, "  ");
    /* Widths count characters, not bytes; no trailing blanks. */
    assert_string_equal(b.data, "  name     count  note\n"
                                "  a            1  x\n"
                                "  längere  1,000  -\n");
    trib_table_fini(&t);
    trib_buf_fini(&b);
}

static void test_cut(void **state)
{
    char b[64];

    (void)state;
    trib_fmt_cut(b, sizeof(b), "short", 10);
    assert_string_equal(b, "short");
    trib_fmt_cut(b, sizeof(b), "a rather long error text", 10);
    assert_string_equal(b, "a rathe...");
    trib_fmt_cut(b, sizeof(b), "ééééééééééé", 6);
    assert_string_equal(b, "ééé...");
    trib_fmt_cut(b, sizeof(b), NULL, 6);
    assert_string_equal(b, "-");
}

/* A buffer smaller than the text keeps whole UTF-8 characters, also in the
 * HTML report's chart names (legends, marks, bar categories), which are
 * copied into fixed buffers: cut a character short, they were no longer
 * UTF-8. */
static void test_cut_utf8(void **state)
{
    const char *names[4];
    char small[8], tiny[4], euros[128] = "a";
    struct rp_panel p;
    struct rp_chart c;
    json_t *j;
    int i;

    (void)state;
    trib_fmt_cut(small, sizeof(small), "aa\xc3\xa9\xc3\xa9\xc3\xa9", 40);
    assert_string_equal(small, "aa\xc3\xa9\xc3\xa9");
    trib_fmt_cut(tiny, sizeof(tiny), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 3);
    assert_string_equal(tiny, "\xc3\xa9");
    for (i = 0; i < 30; i++) {
        strcat(euros, "\xe2\x82\xac"); /* 91 bytes, 31 characters */
    }
    rp_panel_init(&p, "panel", RP_U_COUNT);
    assert_int_equal(rp_panel_cat(&p, euros), 0);
    assert_int_equal(rp_panel_ser(&p, euros), 0);
    rp_chart_init(&c, "x", "chart", NULL, RP_U_SEC, NULL, RP_U_NUM);
    rp_chart_series(&c, euros, NULL, NULL, 0, 0);
    rp_chart_mark(&c, 1, euros, 0);
    names[0] = p.cat[0];
    names[1] = p.ser[0];
    names[2] = c.lines[0].name;
    names[3] = c.marks[0].label;
    for (i = 0; i < 4; i++) {
        j = json_string(names[i]); /* NULL when not UTF-8 */
        assert_non_null(j);
        assert_true(strlen(names[i]) >= 37);
        json_decref(j);
    }
    rp_chart_fini(&c);
}

/* The report's percentages of absurd values print "-", never "inf%", and
 * absurd stage indexes mark nothing (a saved report may hold any number). */
static void test_report_pct_finite(void **state)
{
    struct rp_chart c;
    json_t *doc;
    char b[64];

    (void)state;
    rp_fmt_pct(b, sizeof(b), 1e307);
    assert_string_equal(b, "-");
    rp_fmt_delta(b, sizeof(b), 1e-300, 1e300);
    assert_string_equal(b, "-");
    rp_fmt_delta(b, sizeof(b), -1e308, 1e308);
    assert_string_equal(b, "-");
    rp_fmt_delta(b, sizeof(b), 100, 97);
    assert_string_equal(b, "-3.0%");
    /* a stage index beyond any long marks nothing (the cast was undefined) */
    doc = json_loads("{\"series\": {\"stage\": [0, 1e300], \"t\": [0, 1]}}", 0,
                     NULL);
    rp_chart_init(&c, "x", "chart", NULL, RP_U_SEC, NULL, RP_U_NUM);
    rp_chart_stage_marks(&c, doc);
    assert_int_equal(c.nmarks, 1);
    assert_string_equal(c.marks[0].label, "stage-1");
    rp_chart_fini(&c);
    json_decref(doc);
}

/* ---- status ---------------------------------------------------------------
 */

static void test_status_full(void **state)
{
    json_t *doc = load(STATUS(NOFILTER, DATABASE));
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_render_status(&b, doc);
    assert_has(&b, "Coordinator c-1f2e (v0.1.0): up 12.5 s · 1,000 events "
                   "applied in 20 batches (0 duplicates, 0 invalid, 0 gaps)\n");
    assert_has(&b, "persistent (/var/lib/tributary)\n");
    assert_has(&b, "as of 2026-11-27T13:00:00.000Z\n");
    assert_lacks(&b, "filter:");
    /* nodes with their clients */
    assert_has(&b, "Nodes (2, 1 alive)\n");
    assert_has(&b, "  n1    alive     250 ms ago  n1-c1         notify  "
                   "default            2  ok                         100\n");
    assert_has(&b, "                              n1-c2         poll    "
                   "poll,bulk          1  PAUSED (outbox full)       100\n");
    assert_has(&b, "  n2    missing   25.0 s ago  (no clients)");
    /* totals */
    assert_has(&b, "finished 100 (completed 90, discarded 6, cancelled 4) · "
                   "retryable 9 · snoozed 2 · in flight 3\n");
    assert_has(&b, "events: job_completed 90, job_failed 15, job_cancelled "
                   "4, job_snoozed 2, job_interrupted 0\n");
    assert_has(&b, "rate: 12.0/s (1s), 11.5/s (10s), 10.2/s (1m)\n");
    assert_has(&b, "  latency     count       p50       p95      p99      max\n"
                   "  end_to_end  1,200   12.3 ms   25.1 ms  40.2 ms  95.3 ms\n"
                   "  pickup      1,200   2.00 ms   2.90 ms  3.50 ms  7.00 ms\n"
                   "  run         1,200   10.0 ms   20.0 ms  30.0 ms  50.0 ms\n"
                   "  queue_wait  1,200   1.50 ms   3.25 ms  4.00 ms  9.00 ms\n"
                   "  complete    1,200  0.500 ms  0.900 ms  1.00 ms  2.00 "
                   "ms\n");
    /* per queue and per mode */
    assert_has(&b, "Queues\n  queue    finished  completed  discarded  "
                   "cancelled  retryable  rate 10s  pickup p95  run p95  e2e "
                   "p95\n  default       100         90          6          4 "
                   "         9    11.5/s     2.90 ms  20.0 ms  25.1 ms\n");
    assert_has(&b, "Modes\n  mode    finished");
    assert_has(&b, "  notify       100");
    /* failures */
    assert_has(&b, "Top failures\n  count  discarded  kind    last seen   "
                   "error\n  1,234          3  charge  12.0 s ago  card N "
                   "declined\n");
    /* database vs events */
    assert_has(&b, "Database view\n  polled 400 ms ago, every 1.00 s\n"
                   "  warning: polls take longer than the interval\n");
    assert_has(&b, "  available  scheduled  retryable  running  pending  "
                   "completed  discarded  cancelled\n"
                   "          0         10          2        3        0    "
                   "    980          4          1\n");
    assert_has(&b, "  4 of 5 (queue, kind, state) counts differ (database - "
                   "events):\n"
                   "    queue    kind  state      database  events  "
                   "difference\n"
                   "    default  noop  completed       980     978          "
                   "+2\n"
                   "    default  noop  scheduled        10       0         "
                   "+10\n");
    assert_lacks(&b, "discarded         4       4");
    assert_has(&b, "    events_in_transit      2  finalized in the "
                   "database, event not yet applied\n");
    assert_has(&b, "    unknown_clients       50  finalized by clients that "
                   "are not Tributary agents: riverworker-1\n");
    trib_buf_fini(&b);
    json_decref(doc);
}

static void test_status_empty(void **state)
{
    json_t *doc = load("{\"totals\": {\"finished\": 0}, \"nodes\": [], "
                       "\"queues\": [], \"modes\": [], \"failures\": [], "
                       "\"database\": null}");
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_render_status(&b, doc);
    assert_has(&b, "Nodes (0, 0 alive)\n  no agent has connected yet\n");
    assert_has(&b, "Queues\n  (none yet)\n\nModes\n  (none yet)\n");
    assert_has(&b, "Top failures\n  no failures\n");
    trib_buf_fini(&b);
    json_decref(doc);
}

static void test_status_no_database(void **state)
{
    json_t *doc = load(STATUS(
        "{\"queue\": \"default\", \"kind\": null, \"node\": \"n1\"}", "null"));
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_render_status(&b, doc);
    assert_has(&b, "as of 2026-11-27T13:00:00.000Z · filter: queue=default "
                   "node=n1\n");
    assert_has(&b, "Database view\n  no database view (coordinator started "
                   "without --database-url)\n");
    trib_buf_fini(&b);
    json_decref(doc);
}

/* Fields are only ever added, but a renderer must survive any shape. */
static void test_status_sparse(void **state)
{
    static const char *const docs[] = {
        "{}",
        "{\"coordinator\": {}, \"totals\": {}, \"nodes\": [{}], "
        "\"queues\": [{}], \"failures\": [{}], \"database\": {}}",
        "{\"coordinator\": 1, \"totals\": [], \"nodes\": {}, "
        "\"database\": {\"rows\": [{\"difference\": \"x\"}], "
        "\"differences\": [1]}}",
    };
    struct trib_buf b = TRIB_BUF_INIT;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *doc = load(docs[i]);
        trib_buf_reset(&b);
        trib_render_status(&b, doc);
        assert_has(&b, "Totals");
        trib_buf_reset(&b);
        trib_render_watch(&b, doc, 40, 100);
        trib_buf_reset(&b);
        trib_render_status_line(&b, doc);
        trib_buf_reset(&b);
        trib_render_nodes(&b, doc);
        trib_buf_reset(&b);
        trib_render_failures(&b, doc);
        trib_buf_reset(&b);
        trib_render_wait_missing(&b, doc, doc);
        json_decref(doc);
    }
    trib_buf_fini(&b);
}

static void test_status_line(void **state)
{
    json_t *doc = load(STATUS(NOFILTER, DATABASE));
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_render_status_line(&b, doc);
    assert_string_equal(b.data,
                        "2026-11-27T13:00:00.000Z finished 100 (12.0/s 1s, "
                        "11.5/s 10s) · in flight 3 · discarded 6 · cancelled "
                        "4 · retryable 9 · p95 e2e 25.1 ms pickup 2.90 ms · "
                        "nodes 1/2 alive");
    trib_buf_fini(&b);
    json_decref(doc);
}

static size_t chars(const char *s, size_t n)
{
    size_t i, c = 0;

    for (i = 0; i < n; i++) {
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    }
    return c;
}

static void test_watch_clipped(void **state)
{
    json_t *doc = load(STATUS(NOFILTER, DATABASE));
    struct trib_buf b = TRIB_BUF_INIT;
    const char *p, *eol;
    int lines = 0;

    (void)state;
    trib_render_watch(&b, doc, 12, 60);
    for (p = b.data; *p; p = eol + 1) {
        eol = strchr(p, '\n');
        assert_non_null(eol);
        assert_true(chars(p, (size_t)(eol - p)) <= 60);
        lines++;
    }
    assert_int_equal(lines, 12);
    assert_has(&b, "database: events_in_transit 2, unknown_clients 50\n");
    trib_buf_reset(&b);
    trib_render_watch(&b, doc, 200, 200);
    assert_has(&b, "Nodes (1/2 alive)\n");
    assert_has(&b, "  n1    alive     250 ms           2          3       100  "
                   "PAUSED\n"
                   "  n2    missing   25.0 s           0          0         -  "
                   "-\n");
    assert_has(&b, "Top failures\n");
    trib_buf_fini(&b);
    json_decref(doc);
}

/* ---- wait at its timeout ---------------------------------------------------
 */

static void test_wait_missing(void **state)
{
    json_t *w = load("{\"schema\": \"tributary.wait/1\", \"done\": false, "
                     "\"count\": 1000, \"finished\": 950, \"failed\": 4, "
                     "\"failures_exceeded\": false, \"filter\": {}}");
    json_t *st = load(STATUS(NOFILTER, DATABASE));
    json_t *stq = load(STATUS(
        "{\"queue\": \"poll\", \"kind\": null, \"node\": null}", "null"));
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_render_wait_missing(&b, w, st);
    assert_has(&b, "  finished 950 of 1,000 (50 missing; 4 failed: "
                   "discarded or cancelled)\n");
    assert_has(&b, "  event view per queue:\n    queue    finished");
    assert_has(&b, "  in flight on the agents: 3\n");
    assert_has(&b, "  jobs not final yet in the database:\n"
                   "    queue    available  scheduled  retryable  running  "
                   "pending\n"
                   "    default          0         10          0        0  "
                   "      0\n"
                   "    poll             0          0          2        0  "
                   "      0\n"
                   "    other            0          0          0        3  "
                   "      0\n");
    assert_has(&b, "  database vs events: events_in_transit 2 (finalized in "
                   "the database, event not yet applied)\n");
    assert_has(&b, "  node n2 is missing (last heartbeat 25.0 s ago)\n");

    /* No database view: said so; no per-queue guess. */
    trib_buf_reset(&b);
    trib_render_wait_missing(&b, w, stq);
    assert_has(&b, "no database view (coordinator started without "
                   "--database-url)");
    /* No status at all: the counts only. */
    trib_buf_reset(&b);
    trib_render_wait_missing(&b, w, NULL);
    assert_string_equal(b.data, "  finished 950 of 1,000 (50 missing; 4 "
                                "failed: discarded or cancelled)\n");
    trib_buf_fini(&b);
    json_decref(w);
    json_decref(st);
    json_decref(stq);
}

static void test_wait_missing_filtered(void **state)
{
    json_t *w = load("{\"done\": false, \"count\": 10, \"finished\": 8, "
                     "\"failed\": 0}");
    json_t *st = load(STATUS(
        "{\"queue\": \"poll\", \"kind\": null, \"node\": null}", DATABASE));
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_render_wait_missing(&b, w, st);
    /* Rows of other queues are left out even if the coordinator sent them. */
    assert_has(&b, "    poll           0          0          2        0        "
                   "0\n");
    assert_lacks(&b, "    default          0         10");
    trib_buf_fini(&b);
    json_decref(w);
    json_decref(st);
}

/* ---- nodes and failures -----------------------------------------------------
 */

static void test_nodes(void **state)
{
    json_t *doc = load("{\"schema\": \"tributary.nodes/1\", \"generated_at\": "
                       "\"2026-11-27T13:00:00.000Z\", \"nodes\": [" NODE "]}");
    json_t *empty = load("{\"nodes\": []}");
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_render_nodes(&b, doc);
    assert_has(&b, "node  host  version  pid  liveness  heartbeat   connected  "
                   "started      cpu s      rss  threads   outbox  db conns  "
                   "finished\n"
                   "n1    h     0.1.0    123  alive     250 ms ago  yes        "
                   "2m00s ago  1.2+0.3  1.2 KiB       18  0 (0 B)         5  "
                   "     100\n");
    assert_has(&b, "Clients\n  node  client  mode / queues   in flight  fetch "
                   "                finished  completed  discarded  "
                   "cancelled\n"
                   "  n1    n1-c1   notify default          2  ok            "
                   "             100         90          6          4\n"
                   "        n1-c2   poll poll,bulk          1  PAUSED (outbox "
                   "full)       100         90          6          4\n");
    trib_buf_reset(&b);
    trib_render_nodes(&b, empty);
    assert_string_equal(b.data,
                        "no agent has connected to the coordinator yet\n");
    trib_buf_fini(&b);
    json_decref(doc);
    json_decref(empty);
}

static void test_failures(void **state)
{
    json_t *doc = load("{\"schema\": \"tributary.failures/1\", "
                       "\"generated_at\": \"2026-11-27T13:00:00.000Z\", "
                       "\"failures\": [" FAILURE "], \"other\": 7}");
    json_t *none = load("{\"failures\": [], \"other\": 0}");
    struct trib_buf b = TRIB_BUF_INIT;

    (void)state;
    trib_render_failures(&b, doc);
    assert_has(&b, "count  discarded  kind    queues   first seen  last seen "
                   "  sample jobs  error\n"
                   "1,234          3  charge  default  5m00s ago   12.0 s ago "
                   " 17,42,99     card N declined\n");
    assert_has(&b, "7 more failure(s) arrived after the group table was full");
    trib_buf_reset(&b);
    trib_render_failures(&b, none);
    assert_string_equal(b.data, "no failures\n");
    trib_buf_fini(&b);
    json_decref(doc);
    json_decref(none);
}

/* ---- events
 * ------------------------------------------------------------------ */

static void test_event_json(void **state)
{
    struct trib_wire_event ev;
    struct trib_buf b = TRIB_BUF_INIT;
    json_t *parsed;

    (void)state;
    memset(&ev, 0, sizeof(ev));
    ev.kind = TRIB_EV_JOB_FAILED;
    ev.client_id = trib_str_c("n1-c1");
    ev.job_id = 42;
    ev.attempt = 2;
    ev.max_attempts = 25;
    ev.queue = trib_str_c("default");
    ev.job_kind = trib_str_c("charge");
    ev.state = TRIB_WS_RETRYABLE;
    ev.priority = 1;
    ev.tags[0] = trib_str_c("a");
    ev.tags[1] = trib_str_c("b c");
    ev.ntags = 2;
    ev.created_at = 1767225600000000LL; /* 2026-01-01T00:00:00Z */
    ev.scheduled_at = 1767225600500000LL;
    ev.attempted_at = 1767225600501234LL;
    ev.finalized_at = 0;
    ev.next_scheduled_at = 1767225602000000LL;
    ev.queue_wait_us = 1234;
    ev.run_us = 5000;
    ev.complete_us = -500;
    ev.error = trib_str_c("card \"4\" declined");
    ev.at = 1767225600600000LL;
    trib_render_event_json(&b, 17, trib_str_c("n1"), &ev);
    assert_string_equal(
        b.data,
        "{\"event\":\"job_failed\",\"node\":\"n1\",\"cursor\":17,"
        "\"client_id\":\"n1-c1\",\"job_id\":42,\"attempt\":2,"
        "\"max_attempts\":25,\"queue\":\"default\",\"kind\":\"charge\","
        "\"state\":\"retryable\",\"priority\":1,\"tags\":\"{a,\\\"b c\\\"}\","
        "\"created_at\":\"2026-01-01T00:00:00.000000Z\","
        "\"scheduled_at\":\"2026-01-01T00:00:00.500000Z\","
        "\"attempted_at\":\"2026-01-01T00:00:00.501234Z\","
        "\"finalized_at\":null,"
        "\"next_scheduled_at\":\"2026-01-01T00:00:02.000000Z\","
        "\"queue_wait_ms\":1.234,\"run_ms\":5.000,\"complete_ms\":-0.500,"
        "\"error\":\"card \\\"4\\\" declined\","
        "\"at\":\"2026-01-01T00:00:00.600000Z\"}");
    parsed = json_loads(b.data, 0, NULL);
    assert_non_null(parsed);
    json_decref(parsed);

    /* A queue event carries only client, queue and time, like the agent's. */
    memset(&ev, 0, sizeof(ev));
    ev.kind = TRIB_EV_QUEUE_PAUSED;
    ev.client_id = trib_str_c("n2-c1");
    ev.queue = trib_str_c("emails");
    ev.at = 1767225600000000LL;
    trib_buf_reset(&b);
    trib_render_event_json(&b, UINT64_MAX, trib_str_c(NULL), &ev);
    assert_string_equal(b.data, "{\"event\":\"queue_paused\",\"node\":null,"
                                "\"cursor\":18446744073709551615,\"client_id\":"
                                "\"n2-c1\",\"queue\":\"emails\","
                                "\"at\":\"2026-01-01T00:00:00.000000Z\"}");

    /* No tags, no error, unknown state. */
    memset(&ev, 0, sizeof(ev));
    ev.kind = TRIB_EV_JOB_COMPLETED;
    trib_buf_reset(&b);
    trib_render_event_json(&b, 1, trib_str_c("n"), &ev);
    assert_has(&b, "\"state\":null,\"priority\":0,\"tags\":\"{}\"");
    assert_has(&b, "\"error\":null,\"at\":null}");

    trib_buf_reset(&b);
    trib_render_missed_json(&b, 120, 4000);
    assert_string_equal(b.data, "{\"missed\":120,\"after\":4000}");
    trib_buf_fini(&b);
}

static void test_kinds_parse(void **state)
{
    uint32_t mask = 0;
    char bad[32];

    (void)state;
    assert_int_equal(trib_event_kinds_parse("job_completed,job_failed", &mask,
                                            bad, sizeof(bad)),
                     0);
    assert_int_equal(mask, (1u << TRIB_EV_JOB_COMPLETED) |
                               (1u << TRIB_EV_JOB_FAILED));
    assert_int_equal(
        trib_event_kinds_parse("queue_resumed", &mask, bad, sizeof(bad)), 0);
    assert_int_equal(mask, 1u << TRIB_EV_QUEUE_RESUMED);
    assert_int_equal(
        trib_event_kinds_parse("job_completed,nope", &mask, bad, sizeof(bad)),
        TRIB_EINVAL);
    assert_string_equal(bad, "nope");
    assert_int_equal(trib_event_kinds_parse("", &mask, bad, sizeof(bad)),
                     TRIB_EINVAL);
    assert_int_equal(
        trib_event_kinds_parse("job_failed,", &mask, bad, sizeof(bad)),
        TRIB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmt_count),
        cmocka_unit_test(test_fmt_ms),
        cmocka_unit_test(test_fmt_rate),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_cut),
        cmocka_unit_test(test_cut_utf8),
        cmocka_unit_test(test_report_pct_finite),
        cmocka_unit_test(test_status_full),
        cmocka_unit_test(test_status_empty),
        cmocka_unit_test(test_status_no_database),
        cmocka_unit_test(test_status_sparse),
        cmocka_unit_test(test_status_line),
        cmocka_unit_test(test_watch_clipped),
        cmocka_unit_test(test_wait_missing),
        cmocka_unit_test(test_wait_missing_filtered),
        cmocka_unit_test(test_nodes),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_kinds_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
