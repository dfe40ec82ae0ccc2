/*
 * render.c -- the view's JSON documents (docs/CONTROL.md: status, nodes,
 * failures).
 *
 * Filters select groups first; every total (node, client, queue, kind,
 * mode, totals) is then built by adding counts and merging histograms
 * bucket by bucket -- quantiles are computed once, from the merged
 * histogram, never averaged. Rates are finished jobs per second over the
 * last 1, 10 and 60 complete seconds of the per-second series.
 *
 * Output is deterministic for a given view and now_us (sorted lists), so
 * documents can be compared (view_test: save -> load -> same documents).
 */
#include <stdlib.h>
#include <string.h>

#include "trib_mem.h"
#include "trib_time.h"
#include "view_impl.h"

#define TOP_FAILURES     10 /* failures inside status */
#define DEFAULT_FAIL_LIM 50
#define DEFAULT_SERIES_S 60
#define UNKNOWN_MODE     "unknown"

static const char *const ev_names[TRIB_EV_KINDS] = {
    NULL,          "job_completed",   "job_failed",   "job_cancelled",
    "job_snoozed", "job_interrupted", "queue_paused", "queue_resumed",
};

static const char *const hist_names[VH_COUNT] = {
    "queue_wait", "run", "complete", "pickup", "end_to_end",
};

/* ------------------------------------------------------------ values */

/* Bytes of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len, k;
    unsigned char lo = 0x80, hi = 0xbf;

    if (s[0] < 0x80) {
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        lo = s[0] == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
        hi = s[0] == 0xed ? 0x9f : 0xbf; /* no surrogates */
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        lo = s[0] == 0xf0 ? 0x90 : 0x80;
        hi = s[0] == 0xf4 ? 0x8f : 0xbf; /* <= U+10FFFF */
    } else {
        return 0;
    }
    if (len > n || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (k = 2; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }
    }
    return len;
}

/* A JSON string of s[0..n); invalid UTF-8 bytes become U+FFFD (wire
 * strings are not checked, and jansson refuses invalid UTF-8). */
static json_t *jstrn(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char *buf, *o;
    size_t i, len;
    json_t *j;

    for (i = 0; i < n; i += len) {
        if ((len = utf8_seq(u + i, n - i)) == 0) {
            break;
        }
    }
    if (i == n) {
        return json_stringn(s, n);
    }
    buf = trib_malloc(n * 3 + 1);
    o = buf;
    for (i = 0; i < n; i += len) {
        len = utf8_seq(u + i, n - i);
        if (len == 0) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            len = 1;
        } else {
            memcpy(o, s + i, len);
            o += len;
        }
    }
    j = json_stringn(buf, (size_t)(o - buf));
    trib_free(buf);
    return j;
}

/* An interned string (NULL -> null). */
static json_t *jv(const char *s)
{
    return s != NULL ? jstrn(s, trib__vstr_len(s)) : json_null();
}

static json_t *jc(const char *s) /* a C string (NULL -> null) */
{
    return s != NULL ? jstrn(s, strlen(s)) : json_null();
}

/* Years 0001..9999: what RFC 3339 can write (a loaded image is checked
 * but not for plausible times). */
#define TIME_MIN (-62135596800LL * TRIB_US_PER_S)
#define TIME_MAX (253402300799LL * TRIB_US_PER_S)

static json_t *jtime(int64_t us) /* 0 and out-of-range -> null */
{
    char buf[48];

    if (us == 0 || us < TIME_MIN || us > TIME_MAX) {
        return json_null();
    }
    trib_time_rfc3339(us, buf, sizeof(buf), 3);
    return json_string(buf);
}

static json_t *jms(int64_t us)
{
    return json_real((double)us / 1000.0);
}

static double round3(double x)
{
    return (double)(int64_t)(x * 1000.0 + (x >= 0 ? 0.5 : -0.5)) / 1000.0;
}

static json_t *filter_json(const struct trib_view_filter *f)
{
    return json_pack("{s:o, s:o, s:o}", "queue", jc(f ? f->queue : NULL),
                     "kind", jc(f ? f->kind : NULL), "node",
                     jc(f ? f->node : NULL));
}

/* ------------------------------------------------------- aggregation */

/* Counts of one or more groups; hists only when latency is rendered. */
struct agg {
    uint64_t ev[TRIB_EV_KINDS], st[TRIB_WS_COUNT], retryable;
    uint64_t w1, w10, w60; /* finished in the last 1/10/60 s */
    struct trib_hist h[VH_COUNT];
};

static void agg_init(struct agg *a)
{
    int k;

    memset(a, 0, sizeof(*a));
    for (k = 0; k < VH_COUNT; k++) {
        trib_hist_init(&a->h[k]);
    }
}

static void agg_fini(struct agg *a)
{
    int k;

    for (k = 0; k < VH_COUNT; k++) {
        trib_hist_fini(&a->h[k]);
    }
}

static void agg_add(struct agg *a, const struct vgroup *g, int64_t now_s,
                    int hists)
{
    int k;

    for (k = 0; k < TRIB_EV_KINDS; k++) {
        a->ev[k] += g->ev[k];
    }
    for (k = 0; k < TRIB_WS_COUNT; k++) {
        a->st[k] += g->st[k];
    }
    a->retryable += g->retryable;
    trib__view_series_sum(g->series, now_s - 1, now_s - 1, &a->w1, NULL);
    trib__view_series_sum(g->series, now_s - 10, now_s - 1, &a->w10, NULL);
    trib__view_series_sum(g->series, now_s - 60, now_s - 1, &a->w60, NULL);
    for (k = 0; hists && k < VH_COUNT; k++) {
        trib_hist_merge(&a->h[k], &g->h[k]);
    }
}

/* The <counts> fields of CONTROL.md, set on obj. */
static void counts_json(json_t *obj, const struct agg *a)
{
    json_t *evs = json_object();
    int k;

    json_object_set_new(obj, "finished",
                        json_integer((json_int_t)(a->st[TRIB_WS_COMPLETED] +
                                                  a->st[TRIB_WS_DISCARDED] +
                                                  a->st[TRIB_WS_CANCELLED])));
    json_object_set_new(obj, "completed",
                        json_integer((json_int_t)a->st[TRIB_WS_COMPLETED]));
    json_object_set_new(obj, "discarded",
                        json_integer((json_int_t)a->st[TRIB_WS_DISCARDED]));
    json_object_set_new(obj, "cancelled",
                        json_integer((json_int_t)a->st[TRIB_WS_CANCELLED]));
    for (k = TRIB_EV_JOB_COMPLETED; k <= TRIB_EV_JOB_INTERRUPTED; k++) {
        json_object_set_new(evs, ev_names[k],
                            json_integer((json_int_t)a->ev[k]));
    }
    json_object_set_new(obj, "events", evs);
    json_object_set_new(obj, "retryable",
                        json_integer((json_int_t)a->retryable));
    json_object_set_new(obj, "snoozed",
                        json_integer((json_int_t)a->ev[TRIB_EV_JOB_SNOOZED]));
    json_object_set_new(obj, "rate",
                        json_pack("{s:f, s:f, s:f}", "1s",
                                  round3((double)a->w1), "10s",
                                  round3((double)a->w10 / 10.0), "1m",
                                  round3((double)a->w60 / 60.0)));
}

static json_t *latency_one(const struct trib_hist *h)
{
    static const double qs[] = {0.5, 0.9, 0.95, 0.99, 0.999};
    static const char *const names[] = {"p50", "p90", "p95", "p99", "p999"};
    int64_t q[5];
    json_t *o = json_object();
    int k;

    json_object_set_new(o, "count",
                        json_integer((json_int_t)trib_hist_count(h)));
    trib_hist_quantiles(h, qs, 5, q);
    for (k = 0; k < 5; k++) {
        json_object_set_new(o, names[k], h->count ? jms(q[k]) : json_null());
    }
    json_object_set_new(o, "max",
                        h->count ? jms(trib_hist_max(h)) : json_null());
    json_object_set_new(o, "negative", json_integer((json_int_t)h->negative));
    return o;
}

static json_t *latency_json(const struct trib_hist *h)
{
    json_t *o = json_object();
    int k;

    for (k = 0; k < VH_COUNT; k++) {
        json_object_set_new(o, hist_names[k], latency_one(&h[k]));
    }
    return o;
}

/* ---------------------------------------------------------- grouping */

static const char *node_of(const struct vgroup *g)
{
    return g->agent != NULL ? g->agent->id : g->client; /* "(other)" */
}

static const struct vclient *client_of(const struct vgroup *g)
{
    int i;

    if (g->agent == NULL) {
        return NULL;
    }
    for (i = 0; i < g->agent->nclients; i++) {
        if (g->agent->clients[i].id == g->client) {
            return &g->agent->clients[i];
        }
    }
    return NULL;
}

static const char *mode_of(const struct vgroup *g)
{
    const struct vclient *c = client_of(g);

    return c != NULL && c->mode != NULL && c->mode[0] != 0 ? c->mode
                                                           : UNKNOWN_MODE;
}

/* The groups matching f, sorted by (node, client, queue, kind). */
static int cmp_group(const void *x, const void *y)
{
    const struct vgroup *a = *(struct vgroup *const *)x;
    const struct vgroup *b = *(struct vgroup *const *)y;
    int c;

    if ((c = strcmp(node_of(a), node_of(b))) != 0 ||
        (c = strcmp(a->client, b->client)) != 0 ||
        (c = strcmp(a->queue, b->queue)) != 0) {
        return c;
    }
    return strcmp(a->kind, b->kind);
}

static struct vgroup **matching(const struct trib_view *v,
                                const struct trib_view_filter *f, uint32_t *n)
{
    struct vgroup **gs = trib_malloc((v->ngroups + 1) * sizeof(*gs));
    uint32_t i;

    *n = 0;
    for (i = 0; i < v->ngroups; i++) {
        if (trib__view_group_match(v->groups[i], f)) {
            gs[(*n)++] = v->groups[i];
        }
    }
    qsort(gs, *n, sizeof(*gs), cmp_group);
    return gs;
}

struct keyed {
    const char *key;
    const struct vgroup *g;
};

static int cmp_keyed(const void *x, const void *y)
{
    const struct keyed *a = x, *b = y;
    int c = strcmp(a->key, b->key);

    return c != 0 ? c : cmp_group(&a->g, &b->g);
}

/* [{name: key, <counts>, "latency_ms": {...}}] per distinct key. */
static json_t *dimension(struct vgroup **gs, uint32_t n, const char *name,
                         const char *(*key)(const struct vgroup *g),
                         int64_t now_s)
{
    struct keyed *ks = trib_malloc((n + 1) * sizeof(*ks));
    json_t *out = json_array(), *o;
    struct agg a;
    uint32_t i, j;

    for (i = 0; i < n; i++) {
        ks[i].key = key(gs[i]);
        ks[i].g = gs[i];
    }
    qsort(ks, n, sizeof(*ks), cmp_keyed);
    for (i = 0; i < n; i = j) {
        agg_init(&a);
        for (j = i; j < n && strcmp(ks[j].key, ks[i].key) == 0; j++) {
            agg_add(&a, ks[j].g, now_s, 1);
        }
        o = json_object();
        json_object_set_new(o, name, jc(ks[i].key));
        counts_json(o, &a);
        json_object_set_new(o, "latency_ms", latency_json(a.h));
        json_array_append_new(out, o);
        agg_fini(&a);
    }
    trib_free(ks);
    return out;
}

static const char *queue_key(const struct vgroup *g)
{
    return g->queue;
}

static const char *kind_key(const struct vgroup *g)
{
    return g->kind;
}

/* ------------------------------------------------------------- nodes */

static int cmp_agent(const void *x, const void *y)
{
    return strcmp((*(struct vagent *const *)x)->id,
                  (*(struct vagent *const *)y)->id);
}

static json_t *strs_json(const char *const *s, int n)
{
    json_t *a = json_array();
    int i;

    for (i = 0; i < n; i++) {
        json_array_append_new(a, jv(s[i]));
    }
    return a;
}

static json_t *sample_json(const struct vagent *a)
{
    const struct vsample *s = &a->sample;

    if (!a->has_sample) {
        return json_null();
    }
    return json_pack(
        "{s:f, s:f, s:I, s:I, s:I, s:I, s:I}", "cpu_user_s",
        (double)s->cpu_user_us / 1e6, "cpu_sys_s", (double)s->cpu_sys_us / 1e6,
        "rss_bytes", (json_int_t)s->rss_bytes, "threads",
        (json_int_t)s->threads, "outbox_events", (json_int_t)s->outbox_events,
        "outbox_bytes", (json_int_t)s->outbox_bytes, "db_conns",
        (json_int_t)s->db_conns);
}

/* One node object; counts over gs (the matching groups, any node). */
static json_t *node_json(const struct trib_view *v, const struct vagent *a,
                         struct vgroup **gs, uint32_t n, int64_t now_us)
{
    json_t *o = json_object(), *clients = json_array(), *c, *boots;
    int64_t now_s = now_us / TRIB_US_PER_S, age;
    const char *live = trib__view_liveness(v, a, now_us, &age);
    const struct vclient *cl;
    struct agg all, one;
    char boot[24];
    uint32_t i;
    int k;

    json_object_set_new(o, "node", jv(a->id));
    json_object_set_new(o, "host", jc(a->host));
    json_object_set_new(o, "version", jc(a->version));
    json_object_set_new(o, "pid", json_integer((json_int_t)a->pid));
    snprintf(boot, sizeof(boot), "%016llx", (unsigned long long)a->boot_id);
    json_object_set_new(o, "boot_id", json_string(boot));
    json_object_set_new(o, "liveness", json_string(live));
    json_object_set_new(o, "last_heartbeat", jtime(a->hb_us));
    json_object_set_new(o, "last_heartbeat_age_ms",
                        a->hb_us || a->hello_us ? json_real((double)age / 1e3)
                                                : json_null());
    json_object_set_new(o, "connected", json_boolean(a->connected));
    json_object_set_new(o, "started_at", jtime(a->started_at));
    json_object_set_new(o, "heartbeat_ms",
                        json_integer(a->heartbeat_ms > 0
                                         ? a->heartbeat_ms
                                         : v->conf.heartbeat_ms));
    json_object_set_new(o, "sample", sample_json(a));
    for (k = 0; k < a->nclients; k++) {
        cl = &a->clients[k];
        agg_init(&one);
        for (i = 0; i < n; i++) {
            if (gs[i]->agent == a && gs[i]->client == cl->id) {
                agg_add(&one, gs[i], now_s, 0);
            }
        }
        c = json_object();
        json_object_set_new(c, "id", jv(cl->id));
        json_object_set_new(c, "mode", jv(cl->mode));
        json_object_set_new(c, "queues", strs_json(cl->queues, cl->nqueues));
        json_object_set_new(c, "in_flight",
                            json_integer((json_int_t)cl->in_flight));
        json_object_set_new(c, "fetch_paused", json_boolean(cl->fetch_paused));
        json_object_set_new(c, "paused_queues",
                            strs_json(cl->paused, cl->npaused));
        counts_json(c, &one);
        json_array_append_new(clients, c);
        agg_fini(&one);
    }
    json_object_set_new(o, "clients", clients);
    agg_init(&all);
    for (i = 0; i < n; i++) {
        if (gs[i]->agent == a) {
            agg_add(&all, gs[i], now_s, 0);
        }
    }
    counts_json(o, &all);
    agg_fini(&all);
    boots = json_array();
    for (k = 0; k < a->nboots; k++) {
        snprintf(boot, sizeof(boot), "%016llx",
                 (unsigned long long)a->boots[k].id);
        json_array_append_new(
            boots, json_pack("{s:s, s:I, s:I}", "boot_id", boot, "applied",
                             (json_int_t)a->boots[k].applied, "durable",
                             (json_int_t)a->boots[k].durable));
    }
    json_object_set_new(o, "boots", boots);
    return o;
}

static json_t *nodes_array(const struct trib_view *v,
                           const struct trib_view_filter *f, struct vgroup **gs,
                           uint32_t n, int64_t now_us)
{
    struct vagent **as = trib_malloc((v->nagents + 1) * sizeof(*as));
    json_t *out = json_array();
    uint32_t i, na = 0;

    for (i = 0; i < v->nagents; i++) {
        if (f == NULL || f->node == NULL ||
            strcmp(f->node, v->agents[i]->id) == 0) {
            as[na++] = v->agents[i];
        }
    }
    qsort(as, na, sizeof(*as), cmp_agent);
    for (i = 0; i < na; i++) {
        json_array_append_new(out, node_json(v, as[i], gs, n, now_us));
    }
    trib_free(as);
    return out;
}

json_t *trib_view_nodes_json(const struct trib_view *v, int64_t now_us)
{
    uint32_t n;
    struct vgroup **gs = matching(v, NULL, &n);
    json_t *doc = json_pack("{s:s, s:o, s:o}", "schema", "tributary.nodes/1",
                            "generated_at", jtime(now_us), "nodes",
                            nodes_array(v, NULL, gs, n, now_us));

    trib_free(gs);
    return doc;
}

/* ---------------------------------------------------------- failures */

static json_t *failure_json(const struct vfail *f)
{
    json_t *o = json_object(), *ids = json_array(), *nodes = json_array();
    int i;

    json_object_set_new(o, "kind", jv(f->kind));
    json_object_set_new(o, "error", jv(f->error));
    json_object_set_new(o, "count", json_integer((json_int_t)f->count));
    json_object_set_new(o, "discarded", json_integer((json_int_t)f->discarded));
    json_object_set_new(o, "first_seen", jtime(f->first_seen));
    json_object_set_new(o, "last_seen", jtime(f->last_seen));
    for (i = 0; i < f->nsamples; i++) {
        json_array_append_new(ids, json_integer(f->samples[i]));
    }
    json_object_set_new(o, "sample_job_ids", ids);
    json_object_set_new(o, "queues", strs_json(f->queues, f->nqueues));
    for (i = 0; i < f->nnodes; i++) {
        json_array_append_new(nodes, jv(f->nodes[i]->id));
    }
    json_object_set_new(o, "nodes", nodes);
    return o;
}

static json_t *failures_array(const struct trib_view *v,
                              const struct trib_view_filter *f, uint32_t limit,
                              uint32_t *total)
{
    struct vfail **fs = trib__view_fails_sorted(v, f, total);
    json_t *out = json_array();
    uint32_t i;

    for (i = 0; i < *total && i < limit; i++) {
        json_array_append_new(out, failure_json(fs[i]));
    }
    trib_free(fs);
    return out;
}

json_t *trib_view_failures_json(const struct trib_view *v,
                                const struct trib_view_filter *f)
{
    uint32_t limit = f && f->limit > 0 ? (uint32_t)f->limit : DEFAULT_FAIL_LIM;
    uint32_t total;
    json_t *arr = failures_array(v, f, limit, &total);

    return json_pack("{s:s, s:o, s:o, s:o, s:I, s:I}", "schema",
                     "tributary.failures/1", "generated_at",
                     jtime(trib_now_us()), "filter", filter_json(f), "failures",
                     arr, "other", (json_int_t)v->fail_other, "groups",
                     (json_int_t)total);
}

/* ------------------------------------------------------------ status */

static json_t *coordinator_json(const struct trib_view *v)
{
    struct trib_view_stats s;

    trib_view_stats(v, &s);
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "events_applied", (json_int_t)s.events_applied, "duplicates",
        (json_int_t)s.duplicates, "invalid", (json_int_t)s.invalid, "batches",
        (json_int_t)s.batches, "gaps", (json_int_t)s.gaps, "groups",
        (json_int_t)s.groups, "failure_groups", (json_int_t)s.failure_groups,
        "failures_other", (json_int_t)s.failures_other, "tags_overflow",
        (json_int_t)s.tags_overflow, "groups_overflow",
        (json_int_t)s.groups_overflow, "view_bytes", (json_int_t)s.bytes);
}

/* In-flight jobs of the agents (and clients) the filter selects: from
 * heartbeats, so per client; a queue filter keeps the clients that serve
 * the queue, a kind filter does not apply. */
static int64_t in_flight(const struct trib_view *v,
                         const struct trib_view_filter *f)
{
    const struct vclient *c;
    int64_t sum = 0;
    uint32_t i;
    int k, q, serves;

    for (i = 0; i < v->nagents; i++) {
        if (f && f->node && strcmp(f->node, v->agents[i]->id) != 0) {
            continue;
        }
        for (k = 0; k < v->agents[i]->nclients; k++) {
            c = &v->agents[i]->clients[k];
            serves = f == NULL || f->queue == NULL;
            for (q = 0; q < c->nqueues && !serves; q++) {
                serves = strcmp(c->queues[q], f->queue) == 0;
            }
            if (serves) {
                sum += c->in_flight;
            }
        }
    }
    return sum;
}

static json_t *series_json(struct vgroup **gs, uint32_t n, int64_t now_s,
                           int secs)
{
    json_t *fin = json_array(), *fail = json_array();
    int64_t t, from = now_s - secs;
    uint64_t a, b;
    uint32_t i;

    for (t = from; t < now_s; t++) {
        a = b = 0;
        for (i = 0; i < n; i++) {
            trib__view_series_sum(gs[i]->series, t, t, &a, &b);
        }
        json_array_append_new(fin, json_integer((json_int_t)a));
        json_array_append_new(fail, json_integer((json_int_t)b));
    }
    return json_pack("{s:o, s:i, s:o, s:o}", "start",
                     jtime(from * TRIB_US_PER_S), "seconds", secs,
                     "finished_per_s", fin, "failed_per_s", fail);
}

json_t *trib_view_status_json(const struct trib_view *v,
                              const struct trib_view_filter *f, int64_t now_us)
{
    int64_t now_s = now_us / TRIB_US_PER_S;
    json_t *doc, *totals, *groups, *o;
    struct vgroup **gs;
    struct agg all;
    uint32_t n, i, nf;
    int secs = f && f->series_s > 0 ? f->series_s : DEFAULT_SERIES_S;

    if (secs > VIEW_SERIES_SECS) {
        secs = VIEW_SERIES_SECS;
    }
    gs = matching(v, f, &n);
    agg_init(&all);
    for (i = 0; i < n; i++) {
        agg_add(&all, gs[i], now_s, 1);
    }
    totals = json_object();
    counts_json(totals, &all);
    json_object_set_new(totals, "in_flight", json_integer(in_flight(v, f)));
    json_object_set_new(totals, "latency_ms", latency_json(all.h));
    agg_fini(&all);

    groups = json_array();
    for (i = 0; i < n; i++) {
        o = json_object();
        json_object_set_new(o, "node", jv(node_of(gs[i])));
        json_object_set_new(o, "client", jv(gs[i]->client));
        json_object_set_new(o, "mode", jc(mode_of(gs[i])));
        json_object_set_new(o, "queue", jv(gs[i]->queue));
        json_object_set_new(o, "kind", jv(gs[i]->kind));
        agg_init(&all);
        agg_add(&all, gs[i], now_s, 0);
        counts_json(o, &all);
        agg_fini(&all);
        json_object_set_new(o, "latency_ms", latency_json(gs[i]->h));
        json_array_append_new(groups, o);
    }

    doc = json_object();
    json_object_set_new(doc, "schema", json_string("tributary.status/1"));
    json_object_set_new(doc, "generated_at", jtime(now_us));
    json_object_set_new(doc, "filter", filter_json(f));
    json_object_set_new(doc, "coordinator", coordinator_json(v));
    json_object_set_new(doc, "totals", totals);
    json_object_set_new(doc, "series", series_json(gs, n, now_s, secs));
    json_object_set_new(doc, "nodes", nodes_array(v, f, gs, n, now_us));
    json_object_set_new(doc, "queues",
                        dimension(gs, n, "queue", queue_key, now_s));
    json_object_set_new(doc, "kinds",
                        dimension(gs, n, "kind", kind_key, now_s));
    json_object_set_new(doc, "modes", dimension(gs, n, "mode", mode_of, now_s));
    json_object_set_new(doc, "groups", groups);
    json_object_set_new(doc, "failures",
                        failures_array(v, f, TOP_FAILURES, &nf));
    json_object_set_new(doc, "database", json_null());
    trib_free(gs);
    return doc;
}
