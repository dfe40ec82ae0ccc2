/*
 * poller_test.c -- the polling view's pure logic with SQL results fed in as
 * data: the finalized_at cursor (margin, de-duplication, pruning,
 * lateness, the hold after an outage), accumulation, the checks on
 * results, and the explained differences. The SQL itself is checked
 * against a real PostgreSQL (docs/POLLING.md, "How it was checked").
 * The poller itself against PostgreSQL: poller_pg_test.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "poller.h"
#include "poller_int.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "trib_wire.h"

#define S      1000000LL          /* one second in us              */
#define BASE   (1700000000LL * S) /* an arbitrary database time    */
#define T(sec) (BASE + (int64_t)((sec) * (double)S))
#define NCOLS  9
#define MAXROW 32

/* ------------------------------------------------ result table builder */

struct tbl {
    const char *cell[MAXROW * NCOLS];
    char text[MAXROW * NCOLS][512];
    int nrows;
};

static const char *put(struct tbl *t, int col, const char *s)
{
    char *d = t->text[t->nrows * NCOLS + col];

    if (s == NULL) {
        t->cell[t->nrows * NCOLS + col] = NULL;
        return NULL;
    }
    snprintf(d, 512, "%s", s);
    t->cell[t->nrows * NCOLS + col] = d;
    return d;
}

static void header(struct tbl *t, int64_t now)
{
    char buf[32];
    int c;

    for (c = 0; c < NCOLS; c++) {
        put(t, c, NULL);
    }
    snprintf(buf, sizeof(buf), "%lld", (long long)now);
    put(t, 5, buf);
    t->nrows++;
}

static void array_text(char *buf, size_t n, const int64_t *v, int count)
{
    size_t off = 0;
    int i;

    off += (size_t)snprintf(buf + off, n - off, "{");
    for (i = 0; i < count; i++) {
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? "," : "",
                                (long long)v[i]);
    }
    snprintf(buf + off, n - off, "}");
}

/* One result group; ids/fins may be NULL (no rows in the window). */
static void group(struct tbl *t, const char *queue, const char *kind,
                  const char *state, const char *client, int rescued,
                  int64_t bulk, const int64_t *ids, const int64_t *fins,
                  int count)
{
    char buf[512];

    put(t, 0, queue);
    put(t, 1, kind);
    put(t, 2, state);
    put(t, 3, client);
    put(t, 4, rescued ? "t" : "f");
    snprintf(buf, sizeof(buf), "%lld", (long long)bulk);
    put(t, 5, buf);
    put(t, 6, "0");
    if (ids != NULL) {
        array_text(buf, sizeof(buf), ids, count);
        put(t, 7, buf);
        array_text(buf, sizeof(buf), fins, count);
        put(t, 8, buf);
    } else {
        put(t, 7, NULL);
        put(t, 8, NULL);
    }
    t->nrows++;
}

static int feed(struct trib__tally *ty, struct tbl *t, int *late)
{
    char err[256];
    int l = 0, rv;

    rv = trib__poll_read_final_cells(ty, t->cell, t->nrows, NCOLS, &l, err,
                                     sizeof(err));
    if (late != NULL) {
        *late = l;
    }
    return rv;
}

static struct trib__tally *new_tally(int64_t margin_s, int64_t max_s)
{
    struct trib__tally_conf c;

    memset(&c, 0, sizeof(c));
    c.margin_us = margin_s * S;
    c.margin_max_us = max_s * S;
    c.transit_us = 60 * S;
    c.max_groups = 100;
    return trib__tally_create(&c);
}

/* Sum of final counts of one state over all groups. */
struct sum {
    int ws;
    int64_t n;
};

static void sum_cb(void *arg, const struct trib__key *k, int64_t n,
                   int64_t recent)
{
    struct sum *s = arg;

    (void)recent;
    if (k->ws == s->ws) {
        s->n += n;
    }
}

static int64_t total(const struct trib__tally *ty, int ws)
{
    struct sum s = {ws, 0};

    trib__tally_each_final(ty, sum_cb, &s);
    return s.n;
}

static uint64_t tracked(const struct trib__tally *ty)
{
    struct trib__tally_stats s;

    trib__tally_stats(ty, &s);
    return s.tracked_ids;
}

/* ---------------------------------------------------------------- tests */

static void test_arrays(void **state)
{
    int64_t v[4];

    (void)state;
    assert_int_equal(trib__parse_i64_array("{1,-2,30}", v, 4), 3);
    assert_true(v[0] == 1 && v[1] == -2 && v[2] == 30);
    assert_int_equal(trib__parse_i64_array("{}", v, 4), 0);
    assert_int_equal(trib__count_i64_array("{9223372036854775807}"), 1);
    assert_int_equal(trib__count_i64_array("{9223372036854775808}"), -1);
    assert_int_equal(trib__count_i64_array("{1,,2}"), -1);
    assert_int_equal(trib__count_i64_array("{1,2"), -1);
    assert_int_equal(trib__count_i64_array("1,2}"), -1);
    assert_int_equal(trib__count_i64_array("{a}"), -1);
    assert_int_equal(trib__count_i64_array("{1} "), -1);
    assert_int_equal(trib__count_i64_array("{ 1}"), -1);
    assert_int_equal(trib__count_i64_array(NULL), -1);
    assert_int_equal(trib__parse_i64_array("{1,2,3,4,5}", v, 4), -1);
}

/* Baseline, then windows overlapping it: nothing twice, nothing missed. */
static void test_cursor_dedupe(void **state)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct tbl t;
    int64_t ids1[] = {1, 2}, fins1[] = {T(99.5), T(99.9)};
    int64_t ids2[] = {1, 2, 3}, fins2[] = {T(99.5), T(99.9), T(100.5)};
    int late;

    (void)state;
    assert_false(trib__tally_counting(ty));
    /* Baseline at 100 s: 10 old rows in bulk, 2 in the margin window. */
    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    group(&t, "q", "k", "completed", "c1", 0, 10, ids1, fins1, 2);
    assert_int_equal(feed(ty, &t, &late), 0);
    assert_true(trib__tally_counting(ty));
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 12);
    assert_true(trib__tally_lower_bound(ty) == T(98));
    assert_int_equal(tracked(ty), 2);

    /* Window at 101 s re-reads 1 and 2 and brings 3. */
    memset(&t, 0, sizeof(t));
    header(&t, T(101));
    group(&t, "q", "k", "completed", "c1", 0, 0, ids2, fins2, 3);
    assert_int_equal(feed(ty, &t, &late), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 13);
    assert_true(trib__tally_lower_bound(ty) == T(99));
    assert_int_equal(late, 0);

    /* The same window again (e.g. nothing new): unchanged. */
    memset(&t, 0, sizeof(t));
    header(&t, T(101.2));
    group(&t, "q", "k", "completed", "c1", 0, 0, ids2, fins2, 3);
    assert_int_equal(feed(ty, &t, NULL), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 13);
    trib__tally_destroy(ty);
}

/* A row committed late (finalized_at before the previous poll) is still
 * counted within the margin, and measured. */
static void test_late_rows(void **state)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct trib__tally_stats s;
    struct tbl t;
    int64_t id4[] = {4}, fin4[] = {T(99.2)};
    int64_t id5[] = {5}, fin5[] = {T(100.0)};
    int late;

    (void)state;
    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    assert_int_equal(feed(ty, &t, NULL), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 0);

    /* Poll at 101 s: row 4 finalized at 99.2 s (0.8 s before the previous
     * poll's now): counted, late by 0.8 s, under half the margin. */
    memset(&t, 0, sizeof(t));
    header(&t, T(101));
    group(&t, "q", "k", "discarded", "c1", 0, 0, id4, fin4, 1);
    assert_int_equal(feed(ty, &t, &late), 0);
    assert_int_equal(total(ty, TRIB_WS_DISCARDED), 1);
    assert_int_equal(late, 0);
    trib__tally_stats(ty, &s);
    assert_int_equal(s.late_rows, 1);
    assert_true(s.max_lateness_us == 800000);
    assert_true(trib__tally_margin(ty) == 2 * S);

    /* Poll at 102.5 s: row 5 finalized at 100.0 (1.0 s before 101): half
     * the margin reached -> warn, and the margin doubles past it. */
    memset(&t, 0, sizeof(t));
    header(&t, T(102.5));
    group(&t, "q", "k", "discarded", "c1", 0, 0, id5, fin5, 1);
    assert_int_equal(feed(ty, &t, &late), 0);
    assert_int_equal(late, 0); /* exactly half: not more than half */
    memset(&t, 0, sizeof(t));
    header(&t, T(103));
    {
        int64_t id6[] = {6}, fin6[] = {T(101.4)}; /* 1.1 s late */

        group(&t, "q", "k", "discarded", "c1", 0, 0, id6, fin6, 1);
    }
    assert_int_equal(feed(ty, &t, &late), 0);
    assert_int_equal(late, 1);
    assert_true(trib__tally_margin(ty) == 2200000); /* 2 x 1.1 s */
    assert_int_equal(total(ty, TRIB_WS_DISCARDED), 3);
    assert_true(trib__tally_lower_bound(ty) == T(100.8)); /* 103 - 2.2 */
    trib__tally_destroy(ty);
}

/* The margin doubles past the lateness seen, up to its cap; the bound
 * never goes back: not when the margin grows, not when the database clock
 * steps back. */
static void test_margin_cap_and_clock(void **state)
{
    struct trib__tally *ty = new_tally(2, 5);
    struct tbl t;
    int64_t id7[] = {7}, fin7[] = {T(108.2)}; /* 1.8 s before 110 */
    int64_t id8[] = {8}, fin8[] = {T(108.1)}; /* 2.9 s before 111 */
    int late;

    (void)state;
    memset(&t, 0, sizeof(t));
    header(&t, T(110));
    assert_int_equal(feed(ty, &t, NULL), 0);
    assert_true(trib__tally_lower_bound(ty) == T(108));

    memset(&t, 0, sizeof(t));
    header(&t, T(111));
    group(&t, "q", "k", "completed", "c1", 0, 0, id7, fin7, 1);
    assert_int_equal(feed(ty, &t, &late), 0);
    assert_int_equal(late, 1);
    assert_true(trib__tally_margin(ty) == 3600000);
    assert_true(trib__tally_lower_bound(ty) == T(108)); /* not 107.4 */

    memset(&t, 0, sizeof(t));
    header(&t, T(112));
    group(&t, "q", "k", "completed", "c1", 0, 0, id8, fin8, 1);
    assert_int_equal(feed(ty, &t, &late), 0);
    assert_int_equal(late, 1);
    assert_true(trib__tally_margin(ty) == 5 * S); /* capped, not 5.8 s */
    assert_true(trib__tally_lower_bound(ty) == T(108));

    memset(&t, 0, sizeof(t));
    header(&t, T(50)); /* clock stepped back */
    assert_int_equal(feed(ty, &t, NULL), 0);
    assert_true(trib__tally_lower_bound(ty) == T(108));
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 2);
    trib__tally_destroy(ty);
}

/* Ids leave the window once the cursor passes them; a job finalized again
 * (retried by hand) counts again, as its events do. */
static void test_prune_and_refinalize(void **state)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct tbl t;
    int64_t ids[] = {1, 2, 3}, fins[] = {T(99), T(99.5), T(100)};
    int64_t again[] = {2}, again_fin[] = {T(100.6)};

    (void)state;
    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    group(&t, "q", "k", "completed", "c1", 0, 0, ids, fins, 3);
    assert_int_equal(feed(ty, &t, NULL), 0);
    assert_int_equal(tracked(ty), 3);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 3);

    memset(&t, 0, sizeof(t));
    header(&t, T(101));
    group(&t, "q", "k", "completed", "c1", 0, 0, again, again_fin, 1);
    assert_int_equal(feed(ty, &t, NULL), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 4);
    /* bound 99: id 1 (99) kept, 2 moved to 100.6, 3 kept */
    assert_int_equal(tracked(ty), 3);

    memset(&t, 0, sizeof(t));
    header(&t, T(102.2)); /* bound 100.2: only id 2 (100.6) stays */
    assert_int_equal(feed(ty, &t, NULL), 0);
    assert_int_equal(tracked(ty), 1);

    memset(&t, 0, sizeof(t));
    header(&t, T(110));
    assert_int_equal(feed(ty, &t, NULL), 0);
    assert_int_equal(tracked(ty), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 4); /* cumulative */
    trib__tally_destroy(ty);
}

/* One window poll at db time 'now' returning rows ids[i] finalized at
 * fins[i] (all completed by c1). Returns trib__tally_final_end()'s late. */
static int window(struct trib__tally *ty, int64_t now, const int64_t *ids,
                  const int64_t *fins, int count)
{
    struct tbl t;
    int late = -1;

    memset(&t, 0, sizeof(t));
    header(&t, now);
    if (count > 0) {
        group(&t, "q", "k", "completed", "c1", 0, 0, ids, fins, count);
    }
    assert_int_equal(feed(ty, &t, &late), 0);
    return late;
}

/* After an outage the bound is held from the first poll that succeeds
 * again (R) until a poll at R + hold + margin: rows the writers commit
 * after their own reconnect, finalized before or during the outage, are
 * counted once (re-read by every held window), as outage rows rather
 * than late ones (the margin stays); then the cursor moves on. Another
 * outage during a hold restarts it. */
static void test_outage_hold(void **state)
{
    struct trib__tally_conf c;
    struct trib__tally *ty;
    struct trib__tally_stats s;
    int64_t ids[] = {1, 2, 3, 4, 5, 6};
    int64_t fins[] = {T(100.5), T(101.5), T(102), T(103), T(104), T(117.5)};

    (void)state;
    memset(&c, 0, sizeof(c));
    c.margin_us = 2 * S;
    c.margin_max_us = 30 * S;
    c.transit_us = 60 * S;
    c.max_groups = 100;
    c.hold_us = 5 * S;
    ty = trib__tally_create(&c);

    assert_int_equal(window(ty, T(100), NULL, NULL, 0), 0); /* baseline */
    assert_int_equal(window(ty, T(101), ids, fins, 1), 0);
    assert_true(trib__tally_lower_bound(ty) == T(99));

    /* The database goes away after 102 s; the poller is back at 110 s,
     * before the writers: row 2 (committed before the outage) is read. */
    trib__tally_outage(ty);
    assert_int_equal(window(ty, T(110), ids, fins, 2), 0);
    trib__tally_stats(ty, &s);
    assert_true(s.hold_until_us == T(117));            /* 110 + 5 + 2 */
    assert_true(trib__tally_lower_bound(ty) == T(99)); /* not 108 */
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 2);

    /* The writers commit rows 3 and 4 (finalized at 102 and 103 s,
     * 8 s late) after the poller's reconnect: counted, not late. */
    assert_int_equal(window(ty, T(112), ids, fins, 4), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 4);
    trib__tally_stats(ty, &s);
    assert_int_equal(s.outage_rows, 2);
    assert_int_equal(s.late_rows, 0);
    assert_true(trib__tally_margin(ty) == 2 * S);
    assert_true(trib__tally_lower_bound(ty) == T(99));
    assert_int_equal(window(ty, T(116.9), ids, fins, 4), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 4); /* re-read once more */
    assert_true(trib__tally_lower_bound(ty) == T(99));

    /* Row 5 committed just before the poll at 117 s: still read from the
     * held bound; that poll ends the hold, the cursor moves on and the
     * ids it passed are forgotten. */
    assert_int_equal(window(ty, T(117), ids, fins, 5), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 5);
    trib__tally_stats(ty, &s);
    assert_true(s.hold_until_us == 0);
    assert_int_equal(s.outage_rows, 3);
    assert_true(trib__tally_lower_bound(ty) == T(115));
    assert_int_equal(tracked(ty), 0);

    /* Normal again: row 6 counted as usual. */
    assert_int_equal(window(ty, T(118), ids + 5, fins + 5, 1), 0);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 6);
    trib__tally_stats(ty, &s);
    assert_int_equal(s.outage_rows, 3);
    assert_true(trib__tally_lower_bound(ty) == T(116));

    /* An outage, a hold from 120 s (until 127); another outage during it:
     * the hold restarts at 125 s (until 132). */
    trib__tally_outage(ty);
    assert_int_equal(window(ty, T(120), ids + 5, fins + 5, 1), 0);
    trib__tally_stats(ty, &s);
    assert_true(s.hold_until_us == T(127));
    trib__tally_outage(ty);
    assert_int_equal(window(ty, T(125), ids + 5, fins + 5, 1), 0);
    trib__tally_stats(ty, &s);
    assert_true(s.hold_until_us == T(132));
    assert_int_equal(window(ty, T(131), NULL, NULL, 0), 0);
    assert_true(trib__tally_lower_bound(ty) == T(116));
    assert_int_equal(window(ty, T(132), NULL, NULL, 0), 0);
    assert_true(trib__tally_lower_bound(ty) == T(130));
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 6);
    trib__tally_destroy(ty);
}

/* Many ids: the window grows and shrinks; counts exact. */
static void test_many_ids(void **state)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct trib__key k = {"q", "k", "c1", TRIB_WS_COMPLETED, 0};
    struct trib__group *g;
    int64_t i, poll;

    (void)state;
    trib__tally_final_begin(ty, T(0));
    trib__tally_final_end(ty);
    /* 20 polls, 1 s apart, 5000 rows per second, each row read in three
     * consecutive polls (margin 2 s + interval). */
    for (poll = 1; poll <= 20; poll++) {
        trib__tally_final_begin(ty, T(poll));
        g = trib__tally_group(ty, &k);
        for (i = (poll - 3) * 5000; i < poll * 5000; i++) {
            if (i < 0) {
                continue;
            }
            trib__tally_row(ty, g, i + 1, T(0) + i * (S / 5000));
        }
        trib__tally_final_end(ty);
        assert_true(tracked(ty) <= 3 * 5000 + 1);
    }
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 20 * 5000);
    trib__tally_destroy(ty);
}

/* A malformed result changes nothing. */
static void test_bad_results(void **state)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct tbl t;
    int64_t ids[] = {1, 2}, fins[] = {T(99), T(99.5)};
    char err[256];
    int late;

    (void)state;
    memset(&t, 0, sizeof(t));
    group(&t, "q", "k", "completed", "c1", 0, 5, NULL, NULL, 0);
    assert_int_equal(feed(ty, &t, NULL), TRIB_EPROTO); /* no header */
    header(&t, T(100));
    header(&t, T(100));
    assert_int_equal(feed(ty, &t, NULL), TRIB_EPROTO); /* two headers */

    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    group(&t, "q", "k", "completed", "c1", 0, 5, NULL, NULL, 0);
    group(&t, "q", "k", "running", "c1", 0, 5, NULL, NULL, 0);
    assert_int_equal(feed(ty, &t, NULL), TRIB_EPROTO); /* not final */

    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    group(&t, "q", "k", "completed", "c1", 0, 5, ids, fins, 2);
    t.cell[1 * NCOLS + 8] = "{1}"; /* fewer finalized_at than ids */
    assert_int_equal(feed(ty, &t, NULL), TRIB_EPROTO);

    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    group(&t, "q", "k", "completed", "c1", 0, 5, NULL, NULL, 0);
    t.cell[1 * NCOLS + 4] = "yes";
    assert_int_equal(feed(ty, &t, NULL), TRIB_EPROTO);

    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    assert_int_equal(
        trib__poll_read_final_cells(ty, t.cell, 1, 8, &late, err, sizeof(err)),
        TRIB_EPROTO);

    assert_false(trib__tally_counting(ty));
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 0);
    trib__tally_destroy(ty);
}

/* Groups beyond max_groups are counted under "(other)"; impossible rows
 * (final, finalized_at NULL) are reported, not counted. */
static void test_overflow(void **state)
{
    struct trib__tally_conf c = {2 * S, 30 * S, 60 * S, 2, 0};
    struct trib__tally *ty = trib__tally_create(&c);
    struct trib__tally_stats s;
    struct tbl t;

    (void)state;
    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    group(&t, "q", "a", "completed", "c1", 0, 1, NULL, NULL, 0);
    group(&t, "q", "b", "completed", "c1", 0, 2, NULL, NULL, 0);
    group(&t, "q", "c", "completed", "c1", 0, 3, NULL, NULL, 0);
    group(&t, "q", "d", "completed", "c1", 0, 4, NULL, NULL, 0);
    t.cell[4 * NCOLS + 6] = "7"; /* unfinalized */
    assert_int_equal(feed(ty, &t, NULL), 0);
    trib__tally_stats(ty, &s);
    assert_int_equal(s.groups, 3);
    assert_int_equal(s.overflowed, 7);
    assert_int_equal(s.unfinalized, 7);
    assert_int_equal(total(ty, TRIB_WS_COMPLETED), 10);
    trib__tally_destroy(ty);
}

/* ----------------------------------------------------------- differences */

static int known_c(void *arg, const char *client)
{
    (void)arg;
    return strncmp(client, "trib-", 5) == 0;
}

static json_t *reason(json_t *db, const char *name, const char *more_in)
{
    json_t *d = json_object_get(db, "differences"), *e;
    size_t i;

    json_array_foreach(d, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "more_in"));

        if (strcmp(json_string_value(json_object_get(e, "reason")), name) ==
                0 &&
            (more_in == NULL || (m != NULL && strcmp(m, more_in) == 0))) {
            return e;
        }
    }
    return NULL;
}

static int64_t reason_n(json_t *db, const char *name, const char *more_in)
{
    json_t *e = reason(db, name, more_in);

    return e ? json_integer_value(json_object_get(e, "count")) : 0;
}

static json_t *row_of(json_t *db, const char *queue, const char *kind,
                      const char *st)
{
    json_t *rows = json_object_get(db, "rows"), *r;
    size_t i;

    json_array_foreach(rows, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "queue")), queue) ==
                0 &&
            strcmp(json_string_value(json_object_get(r, "kind")), kind) == 0 &&
            strcmp(json_string_value(json_object_get(r, "state")), st) == 0) {
            return r;
        }
    }
    return NULL;
}

static int64_t ival(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Reasons in the direction "more in the database" minus the others must
 * equal the sum of the rows' differences. */
static void assert_adds_up(json_t *db)
{
    json_t *d = json_object_get(db, "differences"), *e;
    json_t *rows = json_object_get(db, "rows"), *r;
    int64_t sum_rows = 0, sum_reasons = 0;
    size_t i;

    json_array_foreach(rows, i, r)
    {
        sum_rows += ival(r, "difference");
        assert_int_equal(ival(r, "difference"),
                         ival(r, "database") - ival(r, "events"));
    }
    json_array_foreach(d, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "reason"));
        const char *m = json_string_value(json_object_get(e, "more_in"));
        int neg = strcmp(name, "events_without_rows") == 0 ||
                  (m != NULL && strcmp(m, "events") == 0);

        sum_reasons += neg ? -ival(e, "count") : ival(e, "count");
    }
    assert_int_equal(sum_rows, sum_reasons);
}

/* Builds: baseline at 100 s, then one window at 101 s. */
static struct trib__tally *diff_fixture(void)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct tbl t;
    int64_t recent_ids[10], recent_fins[10];
    int i;

    for (i = 0; i < 10; i++) {
        recent_ids[i] = 100 + i;
        recent_fins[i] = T(100.1) + i;
    }
    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    /* old rows: 20 by a Tributary client, 50 by a Go client, 3 never
     * worked, 2 rescued */
    group(&t, "default", "noop", "completed", "trib-n1-c1", 0, 20, NULL, NULL,
          0);
    group(&t, "default", "noop", "completed", "riverworker-1", 0, 50, NULL,
          NULL, 0);
    group(&t, "default", "noop", "cancelled", NULL, 0, 3, NULL, NULL, 0);
    group(&t, "default", "noop", "discarded", "trib-n1-c1", 1, 2, NULL, NULL,
          0);
    group(&t, "mail", "send", "completed", "trib-n2-c1", 0, 5, NULL, NULL, 0);
    assert_int_equal(feed(ty, &t, NULL), 0);

    /* window: 10 recent rows by a Tributary client */
    trib__tally_snap_begin(ty);
    trib__tally_snap_add(ty, "default", "noop", TRIB_WS_COMPLETED, 26);
    trib__tally_snap_add(ty, "mail", "send", TRIB_WS_COMPLETED, 5);
    memset(&t, 0, sizeof(t));
    header(&t, T(101));
    group(&t, "default", "noop", "completed", "trib-n1-c1", 0, 0, recent_ids,
          recent_fins, 10);
    assert_int_equal(feed(ty, &t, NULL), 0);
    return ty;
}

static json_t *render(struct trib__tally *ty, struct trib__ctab *ev,
                      const char *queue)
{
    struct trib__diff_in in;
    json_t *db = json_object();

    memset(&in, 0, sizeof(in));
    in.queue = queue;
    in.events = ev;
    in.known = known_c;
    in.age_us = 400000;
    trib__diff_json(ty, &in, db);
    return db;
}

static void ev_add(struct trib__ctab *ev, const char *q, const char *k, int ws,
                   int64_t n)
{
    struct trib__key key = {q, k, NULL, ws, 0};

    trib__ctab_add(ev, &key, n);
}

/* DB: default/noop completed = 20 + 10 (Tributary) + 50 (Go);
 * events at the poll 26, now 28: 4 in transit, 2 newer than the poll. */
static void test_diff_transit_unknown_stale(void **state)
{
    struct trib__tally *ty = diff_fixture();
    struct trib__ctab *ev = trib__ctab_create();
    json_t *db, *r, *u;

    (void)state;
    ev_add(ev, "default", "noop", TRIB_WS_COMPLETED, 28);
    ev_add(ev, "mail", "send", TRIB_WS_COMPLETED, 5);
    db = render(ty, ev, NULL);

    r = row_of(db, "default", "noop", "completed");
    assert_non_null(r);
    assert_int_equal(ival(r, "database"), 80);
    assert_int_equal(ival(r, "events"), 28);
    assert_int_equal(ival(r, "difference"), 52);
    r = row_of(db, "mail", "send", "completed");
    assert_int_equal(ival(r, "difference"), 0);

    assert_int_equal(reason_n(db, "events_in_transit", NULL), 4);
    assert_int_equal(reason_n(db, "events_without_rows", NULL), 2);
    assert_int_equal(reason_n(db, "unknown_clients", NULL), 50);
    assert_int_equal(reason_n(db, "not_worked", NULL), 3);
    assert_int_equal(reason_n(db, "rescued", NULL), 2);
    assert_null(reason(db, "unexplained", NULL));
    u = reason(db, "unknown_clients", NULL);
    assert_non_null(strstr(json_string_value(json_object_get(u, "detail")),
                           "riverworker-1 (50)"));
    assert_int_equal(json_array_size(json_object_get(u, "clients")), 1);

    /* states: final ones cumulative; non-final unknown until polled */
    assert_int_equal(ival(json_object_get(db, "states"), "completed"), 85);
    assert_int_equal(ival(json_object_get(db, "states"), "cancelled"), 3);
    assert_int_equal(ival(json_object_get(db, "states"), "discarded"), 2);
    assert_true(json_is_null(
        json_object_get(json_object_get(db, "states"), "available")));
    assert_adds_up(db);
    json_decref(db);
    trib__ctab_destroy(ev);
    trib__tally_destroy(ty);
}

/* Tributary rows older than the transit window without events are not "in
 * transit": unexplained, more in the database. Events beyond the rows at
 * the poll: unexplained, more in the events. */
static void test_diff_unexplained(void **state)
{
    struct trib__tally *ty = diff_fixture();
    struct trib__ctab *ev = trib__ctab_create();
    json_t *db;

    (void)state;
    /* default/noop: known rows 30 (10 recent); events 12 at the poll
     * snapshot would have been 26 -- use a fresh note of 12 instead. */
    trib__tally_snap_begin(ty);
    trib__tally_snap_add(ty, "default", "noop", TRIB_WS_COMPLETED, 12);
    trib__tally_snap_add(ty, "mail", "send", TRIB_WS_COMPLETED, 9);
    {
        struct tbl t;

        memset(&t, 0, sizeof(t));
        header(&t, T(101.5));
        assert_int_equal(feed(ty, &t, NULL), 0);
    }
    ev_add(ev, "default", "noop", TRIB_WS_COMPLETED, 12);
    ev_add(ev, "mail", "send", TRIB_WS_COMPLETED, 9);
    db = render(ty, ev, NULL);
    /* default/noop: r = 30 - 12 = 18: 10 in transit, 8 unexplained */
    assert_int_equal(reason_n(db, "events_in_transit", NULL), 10);
    assert_int_equal(reason_n(db, "unexplained", "database"), 8);
    /* mail/send: rows 5, events 9 already at the poll: 4 unexplained */
    assert_int_equal(reason_n(db, "unexplained", "events"), 4);
    assert_int_equal(reason_n(db, "events_without_rows", NULL), 0);
    assert_adds_up(db);
    json_decref(db);

    /* A queue filter keeps only that queue's rows and reasons. */
    db = render(ty, ev, "mail");
    assert_int_equal(json_array_size(json_object_get(db, "rows")), 1);
    assert_int_equal(reason_n(db, "unexplained", "events"), 4);
    assert_int_equal(reason_n(db, "unknown_clients", NULL), 0);
    assert_int_equal(ival(json_object_get(db, "states"), "completed"), 5);
    assert_adds_up(db);
    json_decref(db);
    trib__ctab_destroy(ev);
    trib__tally_destroy(ty);
}

/* Without an event note (no view when the poll was sent), events beyond
 * the Tributary rows count as newer than the poll; events for a key the
 * database has no row for still get a row. */
static void test_diff_without_note(void **state)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct trib__ctab *ev = trib__ctab_create();
    struct tbl t;
    json_t *db, *r;

    (void)state;
    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    group(&t, "q", "k", "completed", "trib-a", 0, 7, NULL, NULL, 0);
    assert_int_equal(feed(ty, &t, NULL), 0);
    ev_add(ev, "q", "k", TRIB_WS_COMPLETED, 9);
    ev_add(ev, "q", "other", TRIB_WS_DISCARDED, 1);
    db = render(ty, ev, NULL);
    assert_int_equal(reason_n(db, "events_without_rows", NULL), 3);
    r = row_of(db, "q", "other", "discarded");
    assert_non_null(r);
    assert_int_equal(ival(r, "difference"), -1);
    assert_adds_up(db);
    json_decref(db);
    trib__ctab_destroy(ev);
    trib__tally_destroy(ty);
}

/* Many unknown clients: the ten largest by name, the rest counted. */
static void test_diff_many_clients(void **state)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct tbl t;
    char name[32];
    json_t *db, *u;
    int i;

    (void)state;
    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    for (i = 0; i < 14; i++) {
        snprintf(name, sizeof(name), "go-%02d", i);
        group(&t, "q", "k", "completed", name, 0, i + 1, NULL, NULL, 0);
    }
    assert_int_equal(feed(ty, &t, NULL), 0);
    db = render(ty, NULL, NULL);
    u = reason(db, "unknown_clients", NULL);
    assert_int_equal(ival(u, "count"), 14 * 15 / 2);
    assert_int_equal(json_array_size(json_object_get(u, "clients")), 10);
    assert_int_equal(ival(u, "more_clients"), 4);
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(json_object_get(u, "clients"), 0), "client")),
        "go-13");
    assert_non_null(
        strstr(json_string_value(json_object_get(u, "detail")), "and 4 more"));
    json_decref(db);
    trib__tally_destroy(ty);
}

/* Non-final counts replace each other; filters apply. */
static void test_states(void **state)
{
    struct trib__tally *ty = new_tally(2, 30);
    struct tbl t;
    json_t *db, *st;

    (void)state;
    memset(&t, 0, sizeof(t));
    header(&t, T(100));
    assert_int_equal(feed(ty, &t, NULL), 0);
    trib__tally_states_begin(ty);
    trib__tally_states_add(ty, "q", "k", TRIB_WS_AVAILABLE, 5);
    trib__tally_states_add(ty, "q2", "k", TRIB_WS_AVAILABLE, 7);
    trib__tally_states_add(ty, "q", "k", TRIB_WS_RUNNING, 2);
    trib__tally_states_end(ty);
    trib__tally_states_begin(ty);
    trib__tally_states_add(ty, "q", "k", TRIB_WS_AVAILABLE, 1);
    trib__tally_states_add(ty, "q2", "k", TRIB_WS_SCHEDULED, 4);
    trib__tally_states_end(ty);
    db = render(ty, NULL, NULL);
    st = json_object_get(db, "states");
    assert_int_equal(ival(st, "available"), 1);
    assert_int_equal(ival(st, "running"), 0);
    assert_int_equal(ival(st, "scheduled"), 4);
    assert_int_equal(ival(st, "completed"), 0);
    assert_int_equal(json_object_size(st), 8);
    json_decref(db);
    db = render(ty, NULL, "q2");
    st = json_object_get(db, "states");
    assert_int_equal(ival(st, "available"), 0);
    assert_int_equal(ival(st, "scheduled"), 4);
    json_decref(db);
    trib__tally_destroy(ty);
}

static void test_ws_names(void **state)
{
    int ws;

    (void)state;
    for (ws = 1; ws < TRIB_WS_COUNT; ws++) {
        assert_int_equal(trib__ws_parse(trib__ws_name(ws)), ws);
    }
    assert_int_equal(trib__ws_parse("bogus"), TRIB_WS_UNKNOWN);
    assert_int_equal(trib__ws_parse(NULL), TRIB_WS_UNKNOWN);
    assert_true(trib__ws_final(TRIB_WS_CANCELLED));
    assert_false(trib__ws_final(TRIB_WS_RETRYABLE));
}

static void test_sql_schema(void **state)
{
    struct trib__poll_sql s;

    (void)state;
    trib__poll_sql_init(&s, "my \"odd\" schema");
    assert_non_null(
        strstr(s.window, "FROM \"my \"\"odd\"\" schema\".river_job"));
    assert_non_null(strstr(s.states, "\"my \"\"odd\"\" schema\".river_job"));
    assert_null(strstr(s.baseline, "{S}"));
    trib__poll_sql_fini(&s);
    trib__poll_sql_init(&s, NULL);
    assert_non_null(strstr(s.window, "FROM river_job"));
    trib__poll_sql_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_cursor_dedupe),
        cmocka_unit_test(test_late_rows),
        cmocka_unit_test(test_margin_cap_and_clock),
        cmocka_unit_test(test_prune_and_refinalize),
        cmocka_unit_test(test_outage_hold),
        cmocka_unit_test(test_many_ids),
        cmocka_unit_test(test_bad_results),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_diff_transit_unknown_stale),
        cmocka_unit_test(test_diff_unexplained),
        cmocka_unit_test(test_diff_without_note),
        cmocka_unit_test(test_diff_many_clients),
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_ws_names),
        cmocka_unit_test(test_sql_schema),
    };

    return cmocka_run_group_tests_name("poller", tests, NULL, NULL);
}
