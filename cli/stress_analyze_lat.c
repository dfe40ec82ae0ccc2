/*
 * stress_analyze_lat.c -- every latency number of a stress report
 * (docs/REPORT.md latency_ms, breakdowns, stages, series, cdf): exact
 * quantiles from sorted values.
 *
 * Each metric's values are sorted once (a radix sort of the microsecond
 * values: two 16-bit passes for anything under 71 minutes); each breakdown
 * dimension then scatters the sorted values by group in order, so every
 * group's slice comes out sorted without sorting again. 1,000,000 jobs:
 * five metrics x (one sort + six scatters).
 */
#include <stdlib.h>
#include <string.h>

#include "stress_analyze_int.h"
#include "trib_mem.h"

static const char *const METRIC_NAMES[M_COUNT] = {"end_to_end", "queue_wait",
                                                  "pickup", "run", "complete"};

#define SIGN    (1ULL << 63)
#define CDF_MAX 200
#define HB      25 /* histogram bounds: 0.1 ms .. 10,000,000 ms */

/* ------------------------------------------------------------ summary */

static int64_t rank(const int64_t *v, size_t n, int permille)
{
    size_t r = ((size_t)permille * n + 999) / 1000; /* ceil(q * n) */

    return v[(r < 1 ? 1 : r) - 1];
}

static json_t *histogram(const int64_t *v, size_t n)
{
    int64_t bound[HB], b = 100;
    size_t cnt[HB + 1] = {0}, i, k = 0, lo, hi;
    json_t *arr = json_array();

    for (i = 0; i < HB; i++) { /* 1-2-5 steps, us */
        bound[i] = b * (i % 3 == 1 ? 2 : i % 3 == 2 ? 5 : 1);
        if (i % 3 == 2) {
            b *= 10;
        }
    }
    for (i = 0; i < n; i++) { /* v is sorted */
        while (k < HB && v[i] > bound[k]) {
            k++;
        }
        cnt[k]++;
    }
    for (lo = 0; lo <= HB && cnt[lo] == 0; lo++) {
    }
    for (hi = HB + 1; hi > lo && cnt[hi - 1] == 0; hi--) {
    }
    for (i = lo; i < hi; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "le", i < HB ? an_ms(bound[i]) : json_null());
        json_object_set_new(o, "count", json_integer((json_int_t)cnt[i]));
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *stress__an_summary(const int64_t *v, size_t n, int hist)
{
    static const char *const q[] = {"p50", "p90", "p95", "p99"};
    static const int pm[] = {500, 900, 950, 990};
    json_t *o = json_object();
    double sum = 0;
    size_t i;

    json_object_set_new(o, "count", json_integer((json_int_t)n));
    for (i = 0; i < n; i++) {
        sum += (double)v[i];
    }
    json_object_set_new(o, "min", n ? an_ms(v[0]) : json_null());
    json_object_set_new(
        o, "avg",
        n ? an_ms((int64_t)(sum / (double)n + (sum >= 0 ? 0.5 : -0.5)))
          : json_null());
    for (i = 0; i < 4; i++) {
        json_object_set_new(o, q[i],
                            n ? an_ms(rank(v, n, pm[i])) : json_null());
    }
    json_object_set_new(o, "max", n ? an_ms(v[n - 1]) : json_null());
    if (hist) {
        json_object_set_new(o, "histogram", histogram(v, n));
    }
    return o;
}

/* ---------------------------------------------------------------- cdf */

static json_t *cdf_points(const int64_t *v, size_t n)
{
    json_t *arr = json_array();
    size_t j, r, prev = 0, steps = n <= CDF_MAX ? n : CDF_MAX - 1;

    for (j = 1; j <= steps && n > 0; j++) {
        r = n <= CDF_MAX ? j : (j * n + steps - 1) / steps;
        if (r == prev) {
            continue;
        }
        json_array_append_new(
            arr, json_pack("[of]", an_ms(v[r - 1]), (double)r / (double)n));
        prev = r;
    }
    return arr;
}

/* ---------------------------------------------------------- the items */

/* One metric's values. The buffers are allocated once, for the largest
 * metric, and reused: the radix sort's second buffers become the
 * scatter's output and group ids once the sort is done. */
struct items {
    size_t n, cap;
    uint64_t *key;  /* value ^ SIGN; sorted; then the values (int64) */
    uint64_t *key2; /* sort buffer; then values by group (out)     */
    uint32_t *perm; /* sorted position -> item                     */
    uint32_t *tmp;  /* sort buffer; then group of each sorted value */
    uint32_t *grp[D_COUNT + 1]; /* item -> group; [D_COUNT]: second */
    size_t *cnt;                /* 65536 counters                   */
};

static void items_init(struct items *it, size_t cap)
{
    int d;

    memset(it, 0, sizeof(*it));
    it->cap = cap + 1;
    it->key = trib_malloc(it->cap * sizeof(*it->key));
    it->key2 = trib_malloc(it->cap * sizeof(*it->key2));
    it->perm = trib_malloc(it->cap * sizeof(*it->perm));
    it->tmp = trib_malloc(it->cap * sizeof(*it->tmp));
    for (d = 0; d <= D_COUNT; d++) {
        it->grp[d] = trib_malloc(it->cap * sizeof(uint32_t));
    }
    it->cnt = trib_malloc(65536 * sizeof(*it->cnt));
}

static void items_fini(struct items *it)
{
    int d;

    trib_free(it->key);
    trib_free(it->key2);
    trib_free(it->perm);
    trib_free(it->tmp);
    for (d = 0; d <= D_COUNT; d++) {
        trib_free(it->grp[d]);
    }
    trib_free(it->cnt);
}

#define VAL(it) ((int64_t *)(it)->key)  /* sorted values, after rsort */
#define OUT(it) ((int64_t *)(it)->key2) /* values by group, scatter() */

/* Sorts the keys with their items (LSD radix, 16-bit digits; a digit all
 * keys share costs one counting pass), then turns keys into values. */
static void rsort(struct items *it)
{
    uint64_t *ka = it->key, *kb = it->key2, *tk;
    uint32_t *pa = it->perm, *pb = it->tmp, *tp;
    size_t *cnt = it->cnt, i, s, c, n = it->n;
    int shift;

    for (shift = 0; shift < 64 && n > 0; shift += 16) {
        memset(cnt, 0, 65536 * sizeof(*cnt));
        for (i = 0; i < n; i++) {
            cnt[(ka[i] >> shift) & 0xffff]++;
        }
        if (cnt[(ka[0] >> shift) & 0xffff] == n) {
            continue;
        }
        for (i = 0, s = 0; i < 65536; i++) {
            c = cnt[i];
            cnt[i] = s;
            s += c;
        }
        for (i = 0; i < n; i++) {
            size_t at = cnt[(ka[i] >> shift) & 0xffff]++;
            kb[at] = ka[i];
            pb[at] = pa[i];
        }
        tk = ka, ka = kb, kb = tk;
        tp = pa, pa = pb, pb = tp;
    }
    if (ka != it->key) {
        memcpy(it->key, ka, n * sizeof(*ka));
        memcpy(it->perm, pa, n * sizeof(*pa));
    }
    for (i = 0; i < n; i++) {
        VAL(it)[i] = (int64_t)(it->key[i] ^ SIGN);
    }
}

/* Adds one value with its groups (node/client/mode of the attempt's
 * client for event values, else of the job; queue/stage of the job). */
static void push(struct items *it, const struct an *a, int64_t v, uint32_t job,
                 const struct jev *e, uint32_t sec)
{
    size_t n = it->n++;
    int d;

    it->key[n] = (uint64_t)v ^ SIGN;
    it->perm[n] = (uint32_t)n;
    for (d = 0; d < D_COUNT; d++) {
        it->grp[d][n] = e != NULL && d <= D_MODE ? a->dim[d].who[e->who]
                                                 : a->dim[d].job[job];
    }
    it->grp[D_COUNT][n] = sec;
}

static void collect(const struct an *a, int m, struct items *it)
{
    const struct stress_rec *r = a->r;
    uint32_t i, k;

    it->n = 0;
    for (i = 0; i < a->n; i++) {
        const struct jrec *j = rec_at(r, i);
        if (m == M_E2E) {
            if (rec_state_final(a->state[i]) && j->final_at && j->due) {
                push(it, a, j->final_at - j->due, i, NULL,
                     an_sec(a, j->final_at));
            }
            continue;
        }
        if (m == M_PICKUP) {
            if (j->first_att && j->due) {
                push(it, a, j->first_att - j->due, i, NULL,
                     an_sec(a, j->first_att));
            }
            continue;
        }
        for (k = j->ev_head; k != 0; k = ev_at(r, k - 1)->next) {
            const struct jev *e = ev_at(r, k - 1);
            push(it, a,
                 m == M_QWAIT ? e->qw
                 : m == M_RUN ? e->run
                              : e->cmp,
                 i, e, 0);
        }
    }
    rsort(it);
}

/* Scatters the sorted values by group (grp[g] of each item) into OUT;
 * start[g] .. start[g + 1] is group g's slice, sorted. start has ng + 1
 * entries. */
static void scatter(struct items *it, int g, uint32_t ng, size_t *start)
{
    const uint32_t *gi = it->grp[g];
    uint32_t *gid = it->tmp;
    size_t i, s, c;

    memset(start, 0, (ng + 1) * sizeof(*start));
    for (i = 0; i < it->n; i++) {
        gid[i] = gi[it->perm[i]];
        start[gid[i]]++;
    }
    for (i = 0, s = 0; i <= ng; i++) {
        c = start[i];
        start[i] = s;
        s += c;
    }
    for (i = 0; i < it->n; i++) {
        OUT(it)[start[gid[i]]++] = VAL(it)[i];
    }
    for (i = ng; i > 0; i--) {
        start[i] = start[i - 1];
    }
    start[0] = 0;
}

static void dims(struct an *a, int m, struct items *it)
{
    size_t *start;
    uint32_t g;
    int d;

    for (d = 0; d < D_COUNT; d++) {
        struct an_dim *dm = &a->dim[d];
        start = trib_malloc((dm->n + 1) * sizeof(*start));
        scatter(it, d, dm->n, start);
        for (g = 0; g < dm->n; g++) {
            json_object_set_new(dm->g[g].lat, METRIC_NAMES[m],
                                stress__an_summary(OUT(it) + start[g],
                                                   start[g + 1] - start[g], 0));
        }
        if (d == D_MODE && (m == M_E2E || m == M_PICKUP)) {
            json_t *by = json_object();
            for (g = 0; g < dm->n; g++) {
                const char *key = dm->g[g].key;
                if (key == rec_str(a->r, a->r->s_none) ||
                    key == rec_str(a->r, a->r->s_unknown)) {
                    continue;
                }
                json_object_set_new(
                    by, key,
                    cdf_points(OUT(it) + start[g], start[g + 1] - start[g]));
            }
            json_object_set_new(
                a->cdf, m == M_E2E ? "end_to_end_by_mode" : "pickup_by_mode",
                by);
        }
        trib_free(start);
    }
}

/* Per-second quantiles of the jobs finishing (e2e) or first picked up
 * (pickup) in that second. */
static void per_second(struct an *a, int m, struct items *it)
{
    static const char *const q[] = {"p50", "p95", "p99", "max"};
    static const int pm[] = {500, 950, 990, 1000};
    json_t *o = json_object(), *arr[4];
    size_t *start = trib_malloc((a->nsec + 1) * sizeof(*start));
    int k, nq = m == M_E2E ? 4 : 3;
    uint32_t s;

    scatter(it, D_COUNT, a->nsec, start);
    for (k = 0; k < nq; k++) {
        arr[k] = json_array();
    }
    for (s = 0; s < a->nsec; s++) {
        size_t n = start[s + 1] - start[s];
        const int64_t *v = OUT(it) + start[s];
        for (k = 0; k < nq; k++) {
            json_array_append_new(arr[k],
                                  n ? an_ms(rank(v, n, pm[k])) : json_null());
        }
        if (m == M_E2E) {
            a->sec_p95[s] = n ? rank(v, n, 950) : -1;
        }
    }
    for (k = 0; k < nq; k++) {
        json_object_set_new(o, q[k], arr[k]);
    }
    if (m == M_E2E) {
        a->ser_e2e = o;
    } else {
        a->ser_pickup = o;
    }
    trib_free(start);
}

void stress__an_latency(struct an *a)
{
    struct items it;
    int m;

    a->latency = json_object();
    a->cdf = json_object();
    items_init(&it, a->n > a->r->nevs ? a->n : a->r->nevs);
    for (m = 0; m < M_COUNT; m++) {
        collect(a, m, &it);
        json_object_set_new(a->latency, METRIC_NAMES[m],
                            stress__an_summary(VAL(&it), it.n, 1));
        if (m == M_E2E || m == M_PICKUP) {
            json_object_set_new(a->cdf, METRIC_NAMES[m],
                                cdf_points(VAL(&it), it.n));
            per_second(a, m, &it);
        }
        dims(a, m, &it);
    }
    items_fini(&it);
}
