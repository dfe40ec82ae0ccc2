/* view_test.c -- the coordinator's view: exactly-once application, group
 * counts, windows and rates, failure groups, tags, the event ring,
 * liveness, save/load and bounded memory. Batches go through the real
 * wire codec (encode, then trib_wire_decode). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "hist.h"
#include "trib_err.h"
#include "trib_time.h"
#include "view.h"
#include "view_impl.h"

#define T0 (1800000000LL * TRIB_US_PER_S) /* 2027-01-15, a second start */
#define S  TRIB_US_PER_S

/* ----------------------------------------------------------- helpers */

static struct trib_wire_event mkev(int kind, int state, const char *client,
                                   const char *queue, const char *jkind,
                                   int64_t job_id, int64_t at)
{
    struct trib_wire_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.state = state;
    ev.client_id = trib_str_c(client);
    ev.queue = trib_str_c(queue);
    ev.job_kind = trib_str_c(jkind);
    ev.job_id = job_id;
    ev.attempt = 1;
    ev.max_attempts = 25;
    ev.created_at = at - 10000;
    ev.scheduled_at = at - 5000;
    ev.attempted_at = at - 4000;
    ev.finalized_at = (state == TRIB_WS_COMPLETED ||
                       state == TRIB_WS_DISCARDED || state == TRIB_WS_CANCELLED)
                          ? at
                          : 0;
    ev.queue_wait_us = 1000;
    ev.run_us = 2000;
    ev.complete_us = 300;
    ev.at = at;
    return ev;
}

static struct trib_wire_event done(int64_t job_id, int64_t at)
{
    return mkev(TRIB_EV_JOB_COMPLETED, TRIB_WS_COMPLETED, "n1-c1", "default",
                "noop", job_id, at);
}

/* Encodes an EVENT_BATCH (events whose bit is set in bad are replaced by
 * an undecodable map), decodes it with the wire codec and applies it. */
static int apply_mask(struct trib_view *v, const char *agent, uint64_t boot,
                      uint64_t first, const struct trib_wire_event *evs, int n,
                      uint64_t bad, int64_t now, struct trib_apply_result *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone zone;
    struct trib_wire_msg m;
    int i, rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    trib_wire_enc_batch_head(&sb, boot, first, (uint32_t)n);
    for (i = 0; i < n; i++) {
        if (i < 64 && (bad >> i) & 1) {
            msgpack_pack_map(&pk, 1); /* kind of the wrong type */
            msgpack_pack_int(&pk, 0);
            msgpack_pack_str_with_body(&pk, "x", 1);
        } else {
            trib_wire_event_encode(&sb, &evs[i]);
        }
    }
    msgpack_zone_init(&zone, 8192);
    assert_int_equal(trib_wire_decode(sb.data, sb.size, &zone, &m), 0);
    assert_int_equal(m.type, TRIB_MSG_EVENT_BATCH);
    rc = trib_view_apply(v, trib_str_c(agent), &m.u.batch, now, r);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static int apply(struct trib_view *v, const char *agent, uint64_t boot,
                 uint64_t first, const struct trib_wire_event *evs, int n,
                 int64_t now, struct trib_apply_result *r)
{
    return apply_mask(v, agent, boot, first, evs, n, 0, now, r);
}

/* One event as its own batch, at the boot's next sequence. */
static void apply1(struct trib_view *v, const char *agent,
                   const struct trib_wire_event *ev, int64_t now)
{
    struct trib_wire_boot_pos pos = {0, 0, 0};
    struct trib_apply_result r;

    trib_view_boot_pos(v, trib_str_c(agent), 1, &pos);
    assert_int_equal(apply(v, agent, 1, pos.applied + 1, ev, 1, now, &r), 0);
    assert_int_equal(r.applied, 1);
}

static struct trib_view *mkview(void)
{
    struct trib_view *v;

    assert_int_equal(trib_view_new(NULL, &v), 0);
    return v;
}

static void hello(struct trib_view *v, const char *agent, uint64_t boot,
                  int64_t hb_ms, int64_t now)
{
    struct trib_wire_hello h;
    char cid[64];

    memset(&h, 0, sizeof(h));
    h.agent_id = trib_str_c(agent);
    h.boot_id = boot;
    h.host = trib_str_c("host-a");
    h.version = trib_str_c("0.1.0");
    h.pid = 4242;
    h.started_at = now - 5 * S;
    h.heartbeat_ms = hb_ms;
    h.nclients = 1;
    snprintf(cid, sizeof(cid), "%s-c1", agent);
    h.clients[0].id = trib_str_c(cid);
    h.clients[0].mode = trib_str_c("notify");
    h.clients[0].nqueues = 2;
    h.clients[0].queues[0] = trib_str_c("default");
    h.clients[0].queues[1] = trib_str_c("other");
    trib_view_hello(v, &h, now);
}

/* A JSON value by path: "totals.events.job_failed", "groups.1.kind". */
static json_t *jpath(json_t *j, const char *path)
{
    char buf[256], *tok, *save = NULL;

    snprintf(buf, sizeof(buf), "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok && j;
         tok = strtok_r(NULL, ".", &save)) {
        if (json_is_array(j)) {
            j = json_array_get(j, (size_t)atoi(tok));
        } else {
            j = json_object_get(j, tok);
        }
    }
    if (j == NULL) {
        fail_msg("no JSON value at %s", path);
    }
    return j;
}

static long long jint(json_t *j, const char *path)
{
    json_t *x = jpath(j, path);

    if (!json_is_integer(x)) {
        fail_msg("%s is not an integer", path);
    }
    return json_integer_value(x);
}

static double jnum(json_t *j, const char *path)
{
    return json_number_value(jpath(j, path));
}

static int near(double got, double want)
{
    double d = got > want ? got - want : want - got;

    return d <= want * 0.01;
}

static const char *jtext(json_t *j, const char *path)
{
    json_t *x = jpath(j, path);

    if (!json_is_string(x)) {
        fail_msg("%s is not a string", path);
    }
    return json_string_value(x);
}

/* ------------------------------------------------------ exactly once */

static void test_exactly_once(void **state)
{
    struct trib_view *v = mkview();
    struct trib_wire_event evs[8];
    struct trib_apply_result r;
    struct trib_wire_boot_pos pos[4];
    struct trib_view_stats st;
    int64_t fin, failed;
    int i;

    (void)state;
    for (i = 0; i < 8; i++) {
        evs[i] = done(100 + i, T0);
    }
    /* 1..3 */
    assert_int_equal(apply(v, "n1", 7, 1, evs, 3, T0, &r), 0);
    assert_int_equal(r.applied, 3);
    assert_int_equal(r.duplicates, 0);
    assert_int_equal(r.applied_seq, 3);
    /* the same batch again: all duplicates */
    assert_int_equal(apply(v, "n1", 7, 1, evs, 3, T0, &r), 0);
    assert_int_equal(r.applied, 0);
    assert_int_equal(r.duplicates, 3);
    assert_int_equal(r.applied_seq, 3);
    /* 2..5 overlaps: 2 and 3 skipped, 4 and 5 applied; seq 4 is a
     * discard so the applied events are the right ones */
    evs[2] = mkev(TRIB_EV_JOB_FAILED, TRIB_WS_DISCARDED, "n1-c1", "default",
                  "noop", 104, T0);
    assert_int_equal(apply(v, "n1", 7, 2, evs, 4, T0, &r), 0);
    assert_int_equal(r.duplicates, 2);
    assert_int_equal(r.applied, 2);
    assert_int_equal(r.applied_seq, 5);
    trib_view_finished(v, NULL, &fin, &failed);
    assert_int_equal(fin, 5);
    assert_int_equal(failed, 1);
    /* a gap: 8.. while 6 is expected; nothing applied */
    assert_int_equal(apply(v, "n1", 7, 8, evs, 2, T0, &r), TRIB_ERANGE);
    assert_int_equal(r.expected_seq, 6);
    assert_int_equal(r.applied, 0);
    trib_view_finished(v, NULL, &fin, &failed);
    assert_int_equal(fin, 5);
    /* 6..8 with 7 undecodable: skipped and counted, its seq consumed */
    assert_int_equal(apply_mask(v, "n1", 7, 6, evs, 3, 2, T0, &r), 0);
    assert_int_equal(r.applied, 2);
    assert_int_equal(r.invalid, 1);
    assert_int_equal(r.applied_seq, 8);
    assert_int_equal(apply(v, "n1", 7, 9, evs, 1, T0, &r), 0);
    assert_int_equal(r.applied_seq, 9);
    trib_view_finished(v, NULL, &fin, &failed);
    assert_int_equal(fin, 8);
    /* an empty batch changes nothing */
    assert_int_equal(apply(v, "n1", 7, 10, evs, 0, T0, &r), 0);
    assert_int_equal(r.applied_seq, 9);
    /* a second boot of the same agent has its own positions */
    assert_int_equal(apply(v, "n1", 8, 1, evs, 2, T0, &r), 0);
    assert_int_equal(r.applied_seq, 2);
    /* a new boot must start at 1 */
    assert_int_equal(apply(v, "n1", 9, 5, evs, 1, T0, &r), TRIB_ERANGE);
    assert_int_equal(r.expected_seq, 1);

    trib_view_stats(v, &st);
    assert_int_equal(st.events_applied, 10);
    assert_int_equal(st.duplicates, 5);
    assert_int_equal(st.invalid, 1);
    assert_int_equal(st.gaps, 2);
    assert_int_equal(trib_view_cursor(v), 11);

    /* positions and durability */
    assert_int_equal(trib_view_boots(v, trib_str_c("n1"), pos, 4), 3);
    assert_int_equal(pos[0].boot_id, 7);
    assert_int_equal(pos[0].applied, 9);
    assert_int_equal(pos[0].durable, 0);
    trib_view_set_durable(v, trib_str_c("n1"), 7, 20); /* capped */
    assert_int_equal(trib_view_boot_pos(v, trib_str_c("n1"), 7, pos), 0);
    assert_int_equal(pos[0].durable, 9);
    assert_int_equal(trib_view_boot_pos(v, trib_str_c("n1"), 77, pos),
                     TRIB_ENOENT);
    assert_int_equal(trib_view_boot_pos(v, trib_str_c("zz"), 7, pos),
                     TRIB_ENOENT);
    {
        uint64_t keep = 8;

        trib_view_forget_boots(v, trib_str_c("n1"), 9, &keep, 1);
        assert_int_equal(trib_view_boots(v, trib_str_c("n1"), pos, 4), 2);
        assert_int_equal(pos[0].boot_id, 8);
        assert_int_equal(pos[1].boot_id, 9);
        /* the forgotten boot starts over */
        assert_int_equal(trib_view_boot_pos(v, trib_str_c("n1"), 7, pos),
                         TRIB_ENOENT);
    }
    trib_view_all_durable(v);
    assert_int_equal(trib_view_boot_pos(v, trib_str_c("n1"), 8, pos), 0);
    assert_int_equal(pos[0].durable, 2);
    trib_view_free(v);
}

static void count_undurable(void *arg, struct trib_str agent, uint64_t boot,
                            uint64_t applied)
{
    int *n = arg;

    assert_int_equal(agent.n, 2);
    assert_memory_equal(agent.p, "n2", 2);
    assert_int_equal(boot, 3);
    assert_int_equal(applied, 2);
    (*n)++;
}

static void test_protocol_errors(void **state)
{
    struct trib_view *v = mkview();
    struct trib_wire_event evs[2] = {done(1, T0), done(2, T0)};
    struct trib_apply_result r;
    struct trib_wire_batch b;
    msgpack_object nil;
    int n = 0;

    (void)state;
    memset(&nil, 0, sizeof(nil));
    nil.type = MSGPACK_OBJECT_NIL;
    b.boot_id = 1;
    b.first_seq = 1;
    b.events = &nil;
    assert_int_equal(trib_view_apply(v, trib_str_c("n"), &b, T0, &r),
                     TRIB_EPROTO);
    b.events = NULL;
    assert_int_equal(trib_view_apply(v, trib_str_c("n"), &b, T0, &r),
                     TRIB_EPROTO);
    assert_int_equal(apply(v, "n2", 3, 1, evs, 2, T0, &r), 0);
    trib_view_each_undurable(v, count_undurable, &n);
    assert_int_equal(n, 1);
    trib_view_set_durable(v, trib_str_c("n2"), 3, 2);
    n = 0;
    trib_view_each_undurable(v, count_undurable, &n);
    assert_int_equal(n, 0);
    trib_view_free(v);
}

/* ------------------------------------------------------ group counts */

struct finals {
    int64_t completed, discarded, cancelled;
    int calls;
};

static void on_final(void *arg, const char *queue, const char *kind, int ws,
                     int64_t n)
{
    struct finals *f = arg;

    f->calls++;
    if (strcmp(queue, "default") != 0 || strcmp(kind, "noop") != 0) {
        return;
    }
    if (ws == TRIB_WS_COMPLETED) {
        f->completed += n;
    } else if (ws == TRIB_WS_DISCARDED) {
        f->discarded += n;
    } else if (ws == TRIB_WS_CANCELLED) {
        f->cancelled += n;
    }
}

static void test_group_counts(void **state)
{
    struct trib_view *v = mkview();
    struct trib_wire_event e;
    struct trib_view_filter f = {0};
    struct finals fin = {0};
    int64_t nf, nfail;
    json_t *doc;

    (void)state;
    hello(v, "n1", 1, 1000, T0);
    hello(v, "n2", 1, 1000, T0);
    /* n1: 3 completed, 1 retryable failure, 1 discarded, 1 cancelled,
     * 1 snoozed, 1 interrupted (back to available) in default/noop */
    for (int i = 0; i < 3; i++) {
        e = done(i, T0);
        apply1(v, "n1", &e, T0);
    }
    e = mkev(TRIB_EV_JOB_FAILED, TRIB_WS_RETRYABLE, "n1-c1", "default", "noop",
             10, T0);
    e.error = trib_str_c("boom 1");
    apply1(v, "n1", &e, T0);
    e = mkev(TRIB_EV_JOB_FAILED, TRIB_WS_DISCARDED, "n1-c1", "default", "noop",
             11, T0);
    e.error = trib_str_c("boom 2");
    apply1(v, "n1", &e, T0);
    e = mkev(TRIB_EV_JOB_CANCELLED, TRIB_WS_CANCELLED, "n1-c1", "default",
             "noop", 12, T0);
    apply1(v, "n1", &e, T0);
    e = mkev(TRIB_EV_JOB_SNOOZED, TRIB_WS_SCHEDULED, "n1-c1", "default", "noop",
             13, T0);
    apply1(v, "n1", &e, T0);
    e = mkev(TRIB_EV_JOB_INTERRUPTED, TRIB_WS_AVAILABLE, "n1-c1", "default",
             "noop", 14, T0);
    e.scheduled_at = 0; /* no pickup sample */
    apply1(v, "n1", &e, T0);
    /* n2: 2 completed in other/email */
    for (int i = 0; i < 2; i++) {
        e = mkev(TRIB_EV_JOB_COMPLETED, TRIB_WS_COMPLETED, "n2-c1", "other",
                 "email", 20 + i, T0);
        e.run_us = 9000;
        apply1(v, "n2", &e, T0);
    }
    /* queue events: no group, only the client's paused queues */
    e = mkev(TRIB_EV_QUEUE_PAUSED, TRIB_WS_UNKNOWN, "n1-c1", "default", NULL, 0,
             T0);
    apply1(v, "n1", &e, T0);

    doc = trib_view_status_json(v, NULL, T0 + S);
    assert_string_equal(jtext(doc, "schema"), "tributary.status/1");
    assert_true(json_is_null(jpath(doc, "database")));
    assert_int_equal(jint(doc, "coordinator.events_applied"), 11);
    assert_int_equal(jint(doc, "coordinator.groups"), 2);
    assert_int_equal(jint(doc, "totals.finished"), 7);
    assert_int_equal(jint(doc, "totals.completed"), 5);
    assert_int_equal(jint(doc, "totals.discarded"), 1);
    assert_int_equal(jint(doc, "totals.cancelled"), 1);
    assert_int_equal(jint(doc, "totals.retryable"), 1);
    assert_int_equal(jint(doc, "totals.snoozed"), 1);
    assert_int_equal(jint(doc, "totals.events.job_failed"), 2);
    assert_int_equal(jint(doc, "totals.events.job_interrupted"), 1);
    /* every job event has queue_wait/run/complete; pickup needs both
     * times; end_to_end only finishing events */
    assert_int_equal(jint(doc, "totals.latency_ms.run.count"), 10);
    assert_int_equal(jint(doc, "totals.latency_ms.pickup.count"), 9);
    assert_int_equal(jint(doc, "totals.latency_ms.end_to_end.count"), 7);
    assert_true(jnum(doc, "totals.latency_ms.pickup.p50") == 1.0);
    assert_true(jnum(doc, "totals.latency_ms.end_to_end.max") == 10.0);
    /* merged histograms: 8 runs of 2 ms and 2 of 9 ms (a quantile is its
     * bucket's midpoint: within 1 %; max is exact) */
    assert_true(near(jnum(doc, "totals.latency_ms.run.p50"), 2.0));
    assert_true(near(jnum(doc, "totals.latency_ms.run.p90"), 9.0));
    assert_true(jnum(doc, "totals.latency_ms.run.max") == 9.0);
    assert_int_equal(json_array_size(jpath(doc, "groups")), 2);
    assert_string_equal(jtext(doc, "groups.0.node"), "n1");
    assert_string_equal(jtext(doc, "groups.0.mode"), "notify");
    assert_string_equal(jtext(doc, "groups.1.kind"), "email");
    assert_int_equal(jint(doc, "groups.1.finished"), 2);
    assert_int_equal(json_array_size(jpath(doc, "queues")), 2);
    assert_string_equal(jtext(doc, "queues.0.queue"), "default");
    assert_int_equal(jint(doc, "queues.0.finished"), 5);
    assert_string_equal(jtext(doc, "kinds.0.kind"), "email");
    assert_string_equal(jtext(doc, "modes.0.mode"), "notify");
    assert_int_equal(jint(doc, "modes.0.finished"), 7);
    assert_int_equal(jint(doc, "nodes.0.finished"), 5);
    assert_int_equal(jint(doc, "nodes.0.clients.0.finished"), 5);
    assert_string_equal(jtext(doc, "nodes.0.clients.0.paused_queues.0"),
                        "default");
    /* "boom 1" and "boom 2": one failure group */
    assert_int_equal(json_array_size(jpath(doc, "failures")), 1);
    assert_int_equal(jint(doc, "failures.0.count"), 2);
    assert_int_equal(jint(doc, "failures.0.discarded"), 1);
    json_decref(doc);

    /* filters restrict groups before anything is summed */
    f.queue = "other";
    doc = trib_view_status_json(v, &f, T0 + S);
    assert_int_equal(jint(doc, "totals.finished"), 2);
    assert_true(jnum(doc, "totals.latency_ms.run.p50") == 9.0); /* min */
    assert_string_equal(jtext(doc, "filter.queue"), "other");
    assert_true(json_is_null(jpath(doc, "filter.kind")));
    assert_int_equal(json_array_size(jpath(doc, "failures")), 0);
    json_decref(doc);
    f.queue = NULL;
    f.node = "n1";
    doc = trib_view_status_json(v, &f, T0 + S);
    assert_int_equal(jint(doc, "totals.finished"), 5);
    assert_int_equal(json_array_size(jpath(doc, "nodes")), 1);
    json_decref(doc);
    f.node = NULL;
    f.kind = "email";
    trib_view_finished(v, &f, &nf, &nfail);
    assert_int_equal(nf, 2);
    assert_int_equal(nfail, 0);
    f.kind = "noop";
    trib_view_finished(v, &f, &nf, &nfail);
    assert_int_equal(nf, 5);
    assert_int_equal(nfail, 2);

    /* resumed: the pause goes away */
    e = mkev(TRIB_EV_QUEUE_RESUMED, TRIB_WS_UNKNOWN, "n1-c1", "default", NULL,
             0, T0);
    apply1(v, "n1", &e, T0);
    doc = trib_view_nodes_json(v, T0 + S);
    assert_int_equal(json_array_size(jpath(doc, "nodes.0.clients.0.paused_"
                                                "queues")),
                     0);
    json_decref(doc);

    trib_view_each_final(v, on_final, &fin);
    assert_int_equal(fin.calls, 6); /* 2 (queue, kind) pairs x 3 states */
    assert_int_equal(fin.completed, 3);
    assert_int_equal(fin.discarded, 1);
    assert_int_equal(fin.cancelled, 1);
    assert_true(trib_view_client_known(v, "n1-c1"));
    assert_true(trib_view_client_known(v, "n2-c1"));
    assert_false(trib_view_client_known(v, "riverworker-1"));
    trib_view_free(v);
}

static void test_groups_bound(void **state)
{
    struct trib_view_conf c;
    struct trib_view *v;
    struct trib_view_stats st;
    struct trib_wire_event e;
    json_t *doc;
    int i;

    (void)state;
    trib_view_conf_defaults(&c);
    c.max_groups = 2;
    assert_int_equal(trib_view_new(&c, &v), 0);
    for (i = 0; i < 5; i++) {
        char kind[8];

        snprintf(kind, sizeof(kind), "k%d", i);
        e = mkev(TRIB_EV_JOB_COMPLETED, TRIB_WS_COMPLETED, "c", "q", kind, i,
                 T0);
        apply1(v, "n1", &e, T0);
    }
    trib_view_stats(v, &st);
    assert_int_equal(st.groups, 3); /* two groups and "(other)" */
    assert_int_equal(st.groups_overflow, 3);
    doc = trib_view_status_json(v, NULL, T0);
    assert_int_equal(jint(doc, "totals.finished"), 5);
    assert_string_equal(jtext(doc, "groups.0.node"), "(other)");
    assert_int_equal(jint(doc, "groups.0.finished"), 3);
    json_decref(doc);
    trib_view_free(v);
}

/* --------------------------------------------------- windows, rates */

static void test_windows(void **state)
{
    struct trib_view *v = mkview();
    struct trib_view_filter f = {0};
    struct trib_wire_event e;
    int64_t now = T0 + 100 * S + S / 2; /* mid-second T0+100 */
    json_t *doc, *fin;
    int i, job = 0;

    (void)state;
    /* last complete second (T0+99): 5 finished, 2 of them discarded */
    for (i = 0; i < 5; i++) {
        e = done(job++, T0 + 99 * S + i * 1000);
        if (i < 2) {
            e = mkev(TRIB_EV_JOB_FAILED, TRIB_WS_DISCARDED, "n1-c1", "default",
                     "noop", job++, T0 + 99 * S);
        }
        apply1(v, "n1", &e, now);
    }
    /* T0+90..T0+98: 2 per second */
    for (i = 90; i <= 98; i++) {
        e = done(job++, T0 + i * S);
        apply1(v, "n1", &e, now);
        e = done(job++, T0 + i * S + S - 1);
        apply1(v, "n1", &e, now);
    }
    /* T0+40..T0+89: 1 per second */
    for (i = 40; i <= 89; i++) {
        e = done(job++, T0 + i * S);
        apply1(v, "n1", &e, now);
    }
    /* counted now (current second, not complete): no 'at', one from too
     * far ahead, one from more than an hour ago; one 4 s ahead counts at
     * its own second */
    e = done(job++, 0);
    apply1(v, "n1", &e, now);
    e = done(job++, now + 6 * S);
    apply1(v, "n1", &e, now);
    e = done(job++, now - 3601 * S);
    apply1(v, "n1", &e, now);
    e = done(job++, now + 4 * S);
    apply1(v, "n1", &e, now);

    doc = trib_view_status_json(v, NULL, now);
    assert_int_equal(jint(doc, "totals.finished"), 5 + 18 + 50 + 4);
    assert_true(jnum(doc, "totals.rate.1s") == 5.0);
    assert_true(jnum(doc, "totals.rate.10s") == (5.0 + 18.0) / 10.0);
    assert_true(jnum(doc, "totals.rate.1m") ==
                (double)(int64_t)((5.0 + 18 + 50) / 60 * 1000 + 0.5) / 1000);
    /* the series: 60 complete seconds ending at T0+99 */
    assert_int_equal(jint(doc, "series.seconds"), 60);
    assert_string_equal(jtext(doc, "series.start"), "2027-01-15T08:00:40.000Z");
    fin = jpath(doc, "series.finished_per_s");
    assert_int_equal(json_array_size(fin), 60);
    assert_int_equal(jint(fin, "59"), 5);
    assert_int_equal(jint(fin, "58"), 2);
    assert_int_equal(jint(fin, "0"), 1);
    assert_int_equal(jint(doc, "series.failed_per_s.59"), 2);
    assert_int_equal(jint(doc, "series.failed_per_s.58"), 0);
    json_decref(doc);

    /* the current second becomes complete: 3 counted at T0+100 */
    doc = trib_view_status_json(v, NULL, now + S);
    assert_true(jnum(doc, "totals.rate.1s") == 3.0);
    json_decref(doc);
    /* series_s selects the length, capped at an hour */
    f.series_s = 5000;
    doc = trib_view_status_json(v, &f, now);
    assert_int_equal(json_array_size(jpath(doc, "series.finished_per_s")),
                     3600);
    json_decref(doc);

    /* two hours later the old seconds are gone, the totals are not */
    now += 7200 * S;
    e = done(job++, now - S);
    apply1(v, "n1", &e, now);
    doc = trib_view_status_json(v, NULL, now);
    assert_true(jnum(doc, "totals.rate.1s") == 1.0);
    assert_true(jnum(doc, "totals.rate.1m") ==
                (double)(int64_t)(1000.0 / 60 + 0.5) / 1000);
    assert_int_equal(jint(doc, "totals.finished"), 5 + 18 + 50 + 4 + 1);
    json_decref(doc);
    trib_view_free(v);
}

/* ---------------------------------------------------------- failures */

static void check_norm(const char *in, const char *want)
{
    char out[VIEW_ERR_NORM_MAX + 1];
    size_t n = trib__view_err_normalise(in, strlen(in), out);

    assert_int_equal(n, strlen(out));
    if (strcmp(out, want) != 0) {
        fail_msg("normalise(\"%s\") = \"%s\", want \"%s\"", in, out, want);
    }
}

static void test_normalise(void **state)
{
    char long_in[1200], out[VIEW_ERR_NORM_MAX + 1];
    size_t n;

    (void)state;
    check_norm("card 1234 declined", "card N declined");
    check_norm("  order  550e8400-e29b-41d4-a716-446655440000\n\tfailed \n",
               "order X failed");
    check_norm("job deadbeef99 at 0x7ffd5e8c1a2b", "job X at X");
    check_norm("ptr 0x00000000 null", "ptr X null");
    check_norm("v2 timeout after 30s", "vN timeout after Ns");
    check_norm("date 2024-01-15", "date N-N-N");
    check_norm("id 12345678 gone", "id N gone"); /* no hex letter */
    check_norm("word abcdefabcd", "word X");     /* all hex letters */
    check_norm("xdeadbeef99 embedded", "xdeadbeefN embedded");
    check_norm("trace-9f86d081884c7d65-end", "trace-X-end");
    check_norm("", "");
    check_norm("   ", "");
    memset(long_in, 'q', sizeof(long_in)); /* not hex */
    long_in[sizeof(long_in) - 1] = 0;
    long_in[10] = ' ';
    n = trib__view_err_normalise(long_in, strlen(long_in), out);
    assert_int_equal(n, VIEW_ERR_NORM_MAX);
    /* a multi-byte character is not split at the limit */
    memset(long_in, 'z', VIEW_ERR_NORM_MAX - 1);
    memcpy(long_in + VIEW_ERR_NORM_MAX - 1, "\xc3\xa9zz", 5);
    n = trib__view_err_normalise(long_in, strlen(long_in), out);
    assert_int_equal(n, VIEW_ERR_NORM_MAX - 1);
}

static void test_failures(void **state)
{
    struct trib_view_conf c;
    struct trib_view *v;
    struct trib_view_filter f = {0};
    struct trib_wire_event e;
    char err[64], q[16];
    json_t *doc;
    int i;

    (void)state;
    trib_view_conf_defaults(&c);
    c.max_failures = 3;
    assert_int_equal(trib_view_new(&c, &v), 0);
    /* 12 failures of one group: varying card numbers, 10 queues, 3 of
     * them discarded */
    for (i = 0; i < 12; i++) {
        snprintf(err, sizeof(err), "card %d declined", 1000 + i * 7);
        snprintf(q, sizeof(q), "q%d", i % 10);
        e = mkev(TRIB_EV_JOB_FAILED,
                 i < 3 ? TRIB_WS_DISCARDED : TRIB_WS_RETRYABLE, "n1-c1", q,
                 "charge", 100 + i, T0 + i * S);
        e.error = trib_str_c(err);
        apply1(v, "n1", &e, T0 + 20 * S);
    }
    /* a cancellation with an error text counts too */
    e = mkev(TRIB_EV_JOB_CANCELLED, TRIB_WS_CANCELLED, "n1-c1", "q0", "mail",
             500, T0);
    e.error = trib_str_c("cancelled by user 17");
    apply1(v, "n1", &e, T0);
    /* a third group, then two more that find the table full */
    for (i = 0; i < 3; i++) {
        snprintf(err, sizeof(err), "error kind %c", 'a' + i);
        e = mkev(TRIB_EV_JOB_FAILED, TRIB_WS_RETRYABLE, "n1-c1", "q0", "other",
                 600 + i, T0);
        e.error = trib_str_c(err);
        apply1(v, "n1", &e, T0);
    }
    doc = trib_view_failures_json(v, NULL);
    assert_string_equal(jtext(doc, "schema"), "tributary.failures/1");
    assert_int_equal(json_array_size(jpath(doc, "failures")), 3);
    assert_int_equal(jint(doc, "other"), 2);
    assert_string_equal(jtext(doc, "failures.0.kind"), "charge");
    assert_string_equal(jtext(doc, "failures.0.error"), "card N declined");
    assert_int_equal(jint(doc, "failures.0.count"), 12);
    assert_int_equal(jint(doc, "failures.0.discarded"), 3);
    assert_string_equal(jtext(doc, "failures.0.first_seen"),
                        "2027-01-15T08:00:00.000Z");
    assert_string_equal(jtext(doc, "failures.0.last_seen"),
                        "2027-01-15T08:00:11.000Z");
    /* the 5 most recent job ids, newest first */
    assert_int_equal(json_array_size(jpath(doc, "failures.0.sample_job_ids")),
                     5);
    assert_int_equal(jint(doc, "failures.0.sample_job_ids.0"), 111);
    assert_int_equal(jint(doc, "failures.0.sample_job_ids.4"), 107);
    assert_int_equal(json_array_size(jpath(doc, "failures.0.queues")), 8);
    assert_string_equal(jtext(doc, "failures.0.nodes.0"), "n1");
    assert_string_equal(jtext(doc, "failures.1.error"), "cancelled by user N");
    json_decref(doc);

    /* filters: by kind, by a queue seen, and the limit */
    f.kind = "mail";
    doc = trib_view_failures_json(v, &f);
    assert_int_equal(json_array_size(jpath(doc, "failures")), 1);
    json_decref(doc);
    f.kind = NULL;
    f.queue = "q7";
    doc = trib_view_failures_json(v, &f);
    assert_int_equal(json_array_size(jpath(doc, "failures")), 1);
    assert_string_equal(jtext(doc, "failures.0.kind"), "charge");
    json_decref(doc);
    f.queue = NULL;
    f.limit = 1;
    doc = trib_view_failures_json(v, &f);
    assert_int_equal(json_array_size(jpath(doc, "failures")), 1);
    assert_int_equal(jint(doc, "groups"), 3);
    json_decref(doc);
    trib_view_free(v);
}

/* -------------------------------------------------------------- tags */

static void test_tags(void **state)
{
    struct trib_view_conf c;
    struct trib_view *v;
    struct trib_view_filter f = {0};
    struct trib_view_stats st;
    struct trib_wire_event e;
    int64_t fin, failed;

    (void)state;
    trib_view_conf_defaults(&c);
    c.max_tags = 3;
    assert_int_equal(trib_view_new(&c, &v), 0);
    e = done(1, T0);
    e.ntags = 2;
    e.tags[0] = trib_str_c("batch-7");
    e.tags[1] = trib_str_c("vip");
    apply1(v, "n1", &e, T0);
    e = mkev(TRIB_EV_JOB_FAILED, TRIB_WS_DISCARDED, "n1-c1", "default", "noop",
             2, T0);
    e.ntags = 2;
    e.tags[0] = trib_str_c("batch-7");
    e.tags[1] = trib_str_c("batch-7"); /* listed twice: counted once */
    apply1(v, "n1", &e, T0);
    e = mkev(TRIB_EV_JOB_SNOOZED, TRIB_WS_SCHEDULED, "n1-c1", "default", "noop",
             3, T0); /* not finished: not counted */
    e.ntags = 1;
    e.tags[0] = trib_str_c("batch-7");
    apply1(v, "n1", &e, T0);
    e = mkev(TRIB_EV_JOB_COMPLETED, TRIB_WS_COMPLETED, "n1-c1", "bulk", "noop",
             4, T0);
    e.ntags = 1;
    e.tags[0] = trib_str_c("batch-7");
    apply1(v, "n1", &e, T0);

    f.tag = "batch-7";
    trib_view_finished(v, &f, &fin, &failed);
    assert_int_equal(fin, 3);
    assert_int_equal(failed, 1);
    f.queue = "bulk";
    trib_view_finished(v, &f, &fin, &failed);
    assert_int_equal(fin, 1);
    assert_int_equal(failed, 0);
    f.queue = NULL;
    f.tag = "vip";
    trib_view_finished(v, &f, &fin, &failed);
    assert_int_equal(fin, 1);
    f.tag = "nope";
    trib_view_finished(v, &f, &fin, &failed);
    assert_int_equal(fin, 0);

    /* the table holds 3 (tag, group) entries: a 4th overflows */
    e = done(5, T0);
    e.ntags = 1;
    e.tags[0] = trib_str_c("late");
    apply1(v, "n1", &e, T0);
    trib_view_stats(v, &st);
    assert_int_equal(st.tags_overflow, 1);
    f.tag = "late";
    trib_view_finished(v, &f, &fin, &failed);
    assert_int_equal(fin, 0);
    trib_view_free(v);
}

/* -------------------------------------------------------------- ring */

struct item {
    uint64_t seq;
    char node[16];
    int64_t job_id;
    int kind;
    size_t error_len;
    int ntags;
};

static int read_ring(const struct trib_view *v, uint64_t after, uint32_t max,
                     uint32_t kinds, uint64_t *next, uint64_t *missed,
                     struct item *out)
{
    msgpack_sbuffer sb;
    msgpack_unpacked up;
    struct trib_wire_event ev;
    struct trib_str node;
    size_t off = 0;
    uint32_t n, i;

    msgpack_sbuffer_init(&sb);
    n = trib_view_ring_read(v, after, max, kinds, &sb, next, missed);
    msgpack_unpacked_init(&up);
    for (i = 0; i < n; i++) {
        assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(
            trib_wire_events_item(&up.data, &out[i].seq, &node, &ev), 0);
        snprintf(out[i].node, sizeof(out[i].node), "%.*s", (int)node.n, node.p);
        out[i].job_id = ev.job_id;
        out[i].kind = ev.kind;
        out[i].error_len = ev.error.n;
        out[i].ntags = ev.ntags;
    }
    assert_int_equal(off, sb.size); /* exactly n items */
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return (int)n;
}

static void test_ring(void **state)
{
    struct trib_view_conf c;
    struct trib_view *v;
    struct trib_wire_event e;
    struct item it[16];
    uint64_t next, missed;
    char longerr[600];
    int i;

    (void)state;
    trib_view_conf_defaults(&c);
    c.ring_events = 8;
    assert_int_equal(trib_view_new(&c, &v), 0);
    assert_int_equal(trib_view_cursor(v), 1);
    assert_int_equal(read_ring(v, 0, 10, 0, &next, &missed, it), 0);
    assert_int_equal(next, 0);
    for (i = 1; i <= 5; i++) {
        e = done(i, T0);
        apply1(v, "n1", &e, T0);
    }
    assert_int_equal(read_ring(v, 0, 10, 0, &next, &missed, it), 5);
    assert_int_equal(next, 5);
    assert_int_equal(missed, 0);
    assert_int_equal(it[0].seq, 1);
    assert_int_equal(it[4].seq, 5);
    assert_int_equal(it[4].job_id, 5);
    assert_string_equal(it[0].node, "n1");
    /* "from now" */
    assert_int_equal(read_ring(v, UINT64_MAX, 10, 0, &next, &missed, it), 0);
    assert_int_equal(next, 5);
    /* nothing new */
    assert_int_equal(read_ring(v, 5, 10, 0, &next, &missed, it), 0);
    assert_int_equal(next, 5);
    /* 10 more (cursors 6..15): a reader at 5 missed 6 and 7 */
    memset(longerr, 'e', sizeof(longerr));
    for (i = 6; i <= 15; i++) {
        e = done(i, T0);
        if (i % 3 == 0) {
            e = mkev(TRIB_EV_JOB_FAILED, TRIB_WS_RETRYABLE, "n2-c1", "default",
                     "noop", i, T0);
            e.error.p = longerr;
            e.error.n = sizeof(longerr);
            e.ntags = 2;
            e.tags[0] = trib_str_c("t1");
            e.tags[1] = trib_str_c("t2");
        }
        apply1(v, i % 3 == 0 ? "n2" : "n1", &e, T0);
    }
    assert_int_equal(read_ring(v, 5, 100, 0, &next, &missed, it), 8);
    assert_int_equal(missed, 2);
    assert_int_equal(it[0].seq, 8);
    assert_int_equal(next, 15);
    /* max */
    assert_int_equal(read_ring(v, 9, 3, 0, &next, &missed, it), 3);
    assert_int_equal(missed, 0);
    assert_int_equal(next, 12);
    /* kinds: only job_failed (cursors 9, 12, 15), from the failing agent;
     * the error is cut to 256 bytes, tags kept */
    assert_int_equal(
        read_ring(v, 8, 100, 1u << TRIB_EV_JOB_FAILED, &next, &missed, it), 3);
    assert_int_equal(it[0].seq, 9);
    assert_int_equal(it[1].seq, 12);
    assert_string_equal(it[2].node, "n2");
    assert_int_equal(it[0].kind, TRIB_EV_JOB_FAILED);
    assert_int_equal(it[0].error_len, VIEW_RING_ERR_MAX);
    assert_int_equal(it[0].ntags, 2);
    assert_int_equal(next, 15);
    /* a filter that matches nothing still advances next */
    assert_int_equal(
        read_ring(v, 8, 100, 1u << TRIB_EV_QUEUE_PAUSED, &next, &missed, it),
        0);
    assert_int_equal(next, 15);
    /* a cursor from the future restarts at ours */
    assert_int_equal(read_ring(v, 99, 100, 0, &next, &missed, it), 0);
    assert_int_equal(next, 15);
    trib_view_free(v);
}

/* ---------------------------------------------------------- liveness */

static const char *liveness(struct trib_view *v, int64_t now, int node)
{
    static char buf[16];
    json_t *doc = trib_view_nodes_json(v, now);
    char path[32];

    snprintf(path, sizeof(path), "nodes.%d.liveness", node);
    snprintf(buf, sizeof(buf), "%s", jtext(doc, path));
    json_decref(doc);
    return buf;
}

static void test_liveness(void **state)
{
    struct trib_view *v = mkview();
    struct trib_wire_heartbeat hb;
    json_t *doc;

    (void)state;
    memset(&hb, 0, sizeof(hb));
    hb.boot_id = 1;
    hb.rss_bytes = 1234;
    hb.cpu_user_us = 1500000;
    hb.nclients = 1;
    hb.clients[0].id = trib_str_c("n1-c1");
    hb.clients[0].in_flight = 2;
    hello(v, "n1", 1, 0, T0); /* no period in HELLO: conf (1 s) */
    hello(v, "n2", 1, 500, T0);
    assert_string_equal(liveness(v, T0 + S, 0), "alive");
    assert_string_equal(liveness(v, T0 + 3 * S, 0), "alive");
    assert_string_equal(liveness(v, T0 + 3 * S + 1, 0), "late");
    assert_string_equal(liveness(v, T0 + 10 * S, 0), "late");
    assert_string_equal(liveness(v, T0 + 10 * S + 1, 0), "missing");
    /* n2's period is 500 ms */
    assert_string_equal(liveness(v, T0 + 1600 * 1000, 1), "late");
    assert_string_equal(liveness(v, T0 + 5100 * 1000, 1), "missing");
    trib_view_heartbeat(v, trib_str_c("n1"), &hb, T0 + 11 * S);
    assert_string_equal(liveness(v, T0 + 11 * S + 200000, 0), "alive");
    doc = trib_view_nodes_json(v, T0 + 11 * S + 250000);
    assert_true(jnum(doc, "nodes.0.last_heartbeat_age_ms") == 250.0);
    assert_int_equal(jint(doc, "nodes.0.sample.rss_bytes"), 1234);
    assert_true(jnum(doc, "nodes.0.sample.cpu_user_s") == 1.5);
    assert_int_equal(jint(doc, "nodes.0.clients.0.in_flight"), 2);
    assert_true(json_is_true(jpath(doc, "nodes.0.connected")));
    assert_string_equal(jtext(doc, "nodes.0.boot_id"), "0000000000000001");
    assert_true(json_is_null(jpath(doc, "nodes.1.sample")));
    json_decref(doc);
    doc = trib_view_status_json(v, NULL, T0 + 11 * S);
    assert_int_equal(jint(doc, "totals.in_flight"), 2);
    json_decref(doc);
    /* a dropped connection: liveness still follows heartbeats */
    trib_view_disconnected(v, trib_str_c("n1"), T0 + 12 * S);
    doc = trib_view_nodes_json(v, T0 + 12 * S);
    assert_true(json_is_false(jpath(doc, "nodes.0.connected")));
    assert_string_equal(jtext(doc, "nodes.0.liveness"), "alive");
    json_decref(doc);
    trib_view_goodbye(v, trib_str_c("n1"), T0 + 12 * S);
    assert_string_equal(liveness(v, T0 + 12 * S, 0), "stopped");
    assert_string_equal(liveness(v, T0 + 500 * S, 0), "stopped");
    hello(v, "n1", 2, 1000, T0 + 600 * S);
    assert_string_equal(liveness(v, T0 + 600 * S, 0), "alive");
    trib_view_free(v);
}

/* --------------------------------------------------------- save/load */

static void disconnect_all(struct trib_view *v, int64_t now)
{
    trib_view_disconnected(v, trib_str_c("n1"), now);
    trib_view_disconnected(v, trib_str_c("n2"), now);
    trib_view_disconnected(v, trib_str_c("n3"), now);
}

static struct trib_view *busy_view(int64_t now)
{
    struct trib_view *v = mkview();
    struct trib_wire_heartbeat hb;
    struct trib_wire_event e;
    static const char *nodes[] = {"n1", "n2", "n3"};
    static const char *kinds[] = {"noop", "email", "charge"};
    static const char *queues[] = {"default", "other"};
    char err[64];
    int i;

    hello(v, "n1", 11, 1000, now - 50 * S);
    hello(v, "n2", 22, 500, now - 50 * S);
    memset(&hb, 0, sizeof(hb));
    hb.boot_id = 11;
    hb.threads = 18;
    trib_view_heartbeat(v, trib_str_c("n1"), &hb, now - S);
    for (i = 0; i < 3000; i++) {
        const char *n = nodes[i % 3];
        char client[16];
        int st = i % 17 == 0   ? TRIB_WS_DISCARDED
                 : i % 23 == 0 ? TRIB_WS_CANCELLED
                 : i % 5 == 0  ? TRIB_WS_RETRYABLE
                               : TRIB_WS_COMPLETED;
        int kind = st == TRIB_WS_COMPLETED   ? TRIB_EV_JOB_COMPLETED
                   : st == TRIB_WS_CANCELLED ? TRIB_EV_JOB_CANCELLED
                                             : TRIB_EV_JOB_FAILED;

        snprintf(client, sizeof(client), "%s-c1", n);
        e = mkev(kind, st, client, queues[i % 2], kinds[i % 3], i,
                 now - (i % 3000) * (S / 10));
        e.run_us = 100 + (i * 7919) % 5000000;
        e.queue_wait_us = (i * 104729) % 300000 - 1000; /* some negative */
        if (kind == TRIB_EV_JOB_FAILED) {
            snprintf(err, sizeof(err), "error %d at step %c", i, 'a' + i % 4);
            e.error = trib_str_c(err);
        }
        if (i % 4 == 0) {
            e.ntags = 1;
            e.tags[0] = trib_str_c(i % 8 == 0 ? "even" : "odd");
        }
        apply1(v, n, &e, now);
    }
    e = mkev(TRIB_EV_QUEUE_PAUSED, TRIB_WS_UNKNOWN, "n2-c1", "other", NULL, 0,
             now);
    apply1(v, "n2", &e, now);
    trib_view_goodbye(v, trib_str_c("n2"), now - 2 * S);
    return v;
}

static void assert_json_same(json_t *a, json_t *b, const char *what)
{
    char *x, *y;

    json_object_del(a, "generated_at");
    json_object_del(b, "generated_at");
    if (!json_equal(a, b)) {
        x = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT);
        y = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
        fail_msg("%s differs:\n%.2000s\n%.2000s", what, x, y);
    }
    json_decref(a);
    json_decref(b);
}

static void test_save_load(void **state)
{
    int64_t now = T0 + 400 * S;
    struct trib_view *v = busy_view(now), *w;
    struct trib_view_filter f = {0};
    struct trib_view_stats s1, s2;
    msgpack_sbuffer sb, sb2;
    struct trib_wire_boot_pos p1[4], p2[4];
    struct item it[4];
    uint64_t next, missed;

    (void)state;
    disconnect_all(v, now); /* a loaded view has no connections */
    msgpack_sbuffer_init(&sb);
    assert_int_equal(trib_view_save(v, &sb), 0);
    w = mkview();
    assert_int_equal(trib_view_load(w, sb.data, sb.size), 0);

    assert_json_same(trib_view_status_json(v, NULL, now),
                     trib_view_status_json(w, NULL, now), "status");
    f.queue = "other";
    f.series_s = 600;
    assert_json_same(trib_view_status_json(v, &f, now + 3 * S),
                     trib_view_status_json(w, &f, now + 3 * S),
                     "status (filtered)");
    assert_json_same(trib_view_nodes_json(v, now), trib_view_nodes_json(w, now),
                     "nodes");
    assert_json_same(trib_view_failures_json(v, NULL),
                     trib_view_failures_json(w, NULL), "failures");
    trib_view_stats(v, &s1);
    trib_view_stats(w, &s2);
    s1.bytes = s2.bytes = 0; /* capacities may differ */
    assert_memory_equal(&s1, &s2, sizeof(s1));
    assert_int_equal(trib_view_cursor(v), trib_view_cursor(w));
    assert_int_equal(trib_view_boots(v, trib_str_c("n1"), p1, 4),
                     trib_view_boots(w, trib_str_c("n1"), p2, 4));
    assert_memory_equal(p1, p2, sizeof(p1[0]));
    f.queue = NULL;
    f.tag = "even";
    {
        int64_t a, b, c, d;

        trib_view_finished(v, &f, &a, &b);
        trib_view_finished(w, &f, &c, &d);
        assert_true(a > 0);
        assert_int_equal(a, c);
        assert_int_equal(b, d);
    }
    /* the image of the loaded view is the same image */
    msgpack_sbuffer_init(&sb2);
    assert_int_equal(trib_view_save(w, &sb2), 0);
    assert_int_equal(sb.size, sb2.size);
    assert_memory_equal(sb.data, sb2.data, sb.size);
    msgpack_sbuffer_destroy(&sb2);
    /* the ring is not saved: readers are told what they missed */
    assert_int_equal(read_ring(w, 0, 4, 0, &next, &missed, it), 0);
    assert_int_equal(missed, trib_view_cursor(w) - 1);
    assert_int_equal(next, trib_view_cursor(w) - 1);
    /* and it goes on applying where it stopped */
    {
        struct trib_wire_event e = done(99999, now);
        struct trib_apply_result r;

        assert_int_equal(apply(w, "n1", 1, 1000, &e, 1, now, &r), 0);
        assert_int_equal(r.applied, 0);
        assert_int_equal(r.duplicates, 1);
        assert_int_equal(apply(w, "n1", 1, 1001, &e, 1, now, &r), 0);
        assert_int_equal(r.applied, 1);
        assert_int_equal(read_ring(w, 0, 4, 0, &next, &missed, it), 1);
        assert_int_equal(it[0].seq, trib_view_cursor(w) - 1);
    }
    /* loading into a view that has contents replaces them */
    assert_int_equal(trib_view_load(w, sb.data, sb.size), 0);
    assert_json_same(trib_view_status_json(v, NULL, now),
                     trib_view_status_json(w, NULL, now), "status (reload)");
    trib_view_free(w);
    msgpack_sbuffer_destroy(&sb);
    trib_view_free(v);
}

static void test_load_corrupt(void **state)
{
    int64_t now = T0 + 400 * S;
    struct trib_view *v = busy_view(now), *w;
    msgpack_sbuffer sb;
    json_t *before;
    char *copy;
    size_t i, step;
    int rc, accepted = 0;
    uint64_t seed = 12345;

    (void)state;
    msgpack_sbuffer_init(&sb);
    trib_view_save(v, &sb);
    w = mkview();
    assert_int_equal(trib_view_load(w, sb.data, sb.size), 0);
    before = trib_view_status_json(w, NULL, now);
    /* every truncation is refused and leaves the view as it was */
    step = sb.size / 400 + 1;
    for (i = 0; i < sb.size; i += step) {
        assert_int_equal(trib_view_load(w, sb.data, i), TRIB_EPROTO);
    }
    assert_json_same(before, trib_view_status_json(w, NULL, now),
                     "status after refused loads");
    /* a newer image version */
    copy = malloc(sb.size);
    memcpy(copy, sb.data, sb.size);
    /* [magic(15 bytes: fixstr 14), version]: version is byte 16 */
    assert_int_equal((unsigned char)copy[16], 1);
    copy[16] = 2;
    assert_int_equal(trib_view_load(w, copy, sb.size), TRIB_EVERSION);
    copy[16] = 1;
    copy[2] = 'X'; /* magic */
    assert_int_equal(trib_view_load(w, copy, sb.size), TRIB_EPROTO);
    /* random corruption: never a crash (the sanitizers watch) */
    for (i = 0; i < 3000; i++) {
        size_t k, nflip = 1 + i % 4;

        memcpy(copy, sb.data, sb.size);
        for (k = 0; k < nflip; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            copy[(seed >> 33) % sb.size] ^= (char)(1 + (seed >> 20) % 255);
        }
        rc = trib_view_load(w, copy, sb.size);
        assert_true(rc == 0 || rc == TRIB_EPROTO || rc == TRIB_EVERSION);
        if (rc == 0) {
            json_decref(trib_view_status_json(w, NULL, now));
            json_decref(trib_view_nodes_json(w, now));
            accepted++;
        }
    }
    (void)accepted;
    assert_int_equal(trib_view_load(w, "\xc1", 1), TRIB_EPROTO);
    assert_int_equal(trib_view_load(w, NULL, 0), TRIB_EPROTO);
    free(copy);
    trib_view_free(w);
    msgpack_sbuffer_destroy(&sb);
    trib_view_free(v);
}

/* ------------------------------------------------------------ memory */

static void test_memory_flat(void **state)
{
    static const char *nodes[] = {"n1", "n2", "n3", "n4"};
    static const char *queues[] = {"default", "bulk", "mail"};
    static const char *kinds[] = {"noop", "email", "charge", "resize"};
    struct trib_wire_event evs[1000];
    struct trib_apply_result r;
    struct trib_view_stats st;
    struct trib_view *v = mkview();
    uint64_t seq[4] = {1, 1, 1, 1}, rnd = 42;
    size_t warm = 0;
    char errs[1000][48];
    int64_t now = T0;
    int b, i, n;

    (void)state;
    for (b = 0; b < 1000; b++) { /* 1,000 batches of 1,000 events */
        n = b % 4;
        for (i = 0; i < 1000; i++) {
            int64_t job = (int64_t)b * 1000 + i;
            int e2;

            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            e2 = (int)((rnd >> 33) % 40);
            evs[i] =
                mkev(e2 == 0   ? TRIB_EV_JOB_FAILED
                     : e2 == 1 ? TRIB_EV_JOB_SNOOZED
                               : TRIB_EV_JOB_COMPLETED,
                     e2 == 0   ? (i % 2 ? TRIB_WS_DISCARDED : TRIB_WS_RETRYABLE)
                     : e2 == 1 ? TRIB_WS_SCHEDULED
                               : TRIB_WS_COMPLETED,
                     i % 2 ? "c1" : "c2", queues[i % 3], kinds[e2 % 4], job,
                     now - (int64_t)(rnd % 1000) * 1000);
            /* latencies over many octaves (log-uniform, so every octave
             * is touched during warm-up), a new job id every time */
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            evs[i].run_us =
                (int64_t)((rnd >> 20) % (1ULL << ((rnd >> 33) % 31)));
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            evs[i].queue_wait_us =
                (int64_t)((rnd >> 20) % (1ULL << ((rnd >> 33) % 23))) - 50;
            if (e2 == 0) {
                snprintf(errs[i], sizeof(errs[i]),
                         "timeout after %lld ms on %llx",
                         (long long)(rnd % 100000),
                         (unsigned long long)(rnd | 0xa0000000ULL));
                evs[i].error = trib_str_c(errs[i]);
            }
            evs[i].ntags = 1;
            evs[i].tags[0] = trib_str_c(i % 2 ? "red" : "blue");
        }
        assert_int_equal(apply(v, nodes[n], 1, seq[n], evs, 1000, now, &r), 0);
        assert_int_equal(r.applied, 1000);
        seq[n] += 1000;
        now += S / 10; /* 100 s of traffic: the series wraps nothing */
        if (b == 99) {
            trib_view_stats(v, &st);
            warm = st.bytes;
        }
    }
    trib_view_stats(v, &st);
    assert_int_equal(st.events_applied, 1000000);
    assert_true(st.groups <= 4 * 2 * 3 * 4);
    assert_true(st.failure_groups <= 4);
    /* the same bytes after 900,000 more events (hist octaves all touched
     * in warm-up by construction: run_us spans 2^0..2^30) */
    if (st.bytes != warm) {
        fail_msg("view grew from %zu to %llu bytes", warm,
                 (unsigned long long)st.bytes);
    }
    trib_view_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exactly_once),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_group_counts),
        cmocka_unit_test(test_groups_bound),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_ring),
        cmocka_unit_test(test_liveness),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_load_corrupt),
        cmocka_unit_test(test_memory_flat),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
