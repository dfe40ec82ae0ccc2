/*
 * stress_analyze_series.c -- a stress report's per-second series and the
 * climb (docs/REPORT.md series, climb). Second i covers [t0 + i s,
 * t0 + (i + 1) s), t0 = run.started_at.
 */
#include <stdlib.h>
#include <string.h>

#include "stress_analyze_int.h"
#include "trib_mem.h"

#define CLIMB_SECS    3     /* backlog growing this many seconds in a row  */
#define CLIMB_JOBS    10    /* ... by at least this many jobs              */
#define CLIMB_FACTOR  3     /* p95 over this many times the first stage's  */
#define CLIMB_MIN_US  50000 /* ... and over 50 ms                          */
#define CLIMB_MIN_FIN 20    /* ... in seconds with >= 20 jobs finishing,   */
                            /* CLIMB_SECS of them in a row                 */

static int64_t stage_end(const struct an *a, int k, int64_t dflt)
{
    const struct stress_run_info *in = a->info;

    if (in->stage_ended_us != NULL && in->stage_ended_us[k] != 0) {
        return in->stage_ended_us[k];
    }
    return in->insert_ended_us ? in->insert_ended_us : dflt;
}

static int nstages(const struct an *a)
{
    const struct stress_run_info *in = a->info;

    if (in->stage_started_us == NULL || a->plan == NULL) {
        return 0;
    }
    return in->nstages < a->nstages ? in->nstages : a->nstages;
}

/* The stage inserting during second s (the latest to start), or -1. */
static int stage_at(const struct an *a, uint32_t s)
{
    int64_t w0 = a->t0 + (int64_t)s * 1000000, w1 = w0 + 1000000;
    int k, best = -1;

    for (k = 0; k < nstages(a); k++) {
        int64_t st = a->info->stage_started_us[k];
        if (st != 0 && st < w1 && stage_end(a, k, INT64_MAX) > w0) {
            best = k;
        }
    }
    return best;
}

/* Jobs the schedule put in second s, over every stage inserting then. */
static int64_t target_at(const struct an *a, uint32_t s)
{
    int64_t w0 = a->t0 + (int64_t)s * 1000000, w1 = w0 + 1000000, sum = 0;
    int k;

    for (k = 0; k < nstages(a); k++) {
        int64_t st = a->info->stage_started_us[k], en, lo, hi;
        if (st == 0 || st >= w1 || (en = stage_end(a, k, w1)) <= w0) {
            continue;
        }
        lo = w0 <= st ? 0 : stress_stage_due(a->plan, k, w0 - st, NULL);
        hi = stress_stage_due(a->plan, k, (w1 < en ? w1 : en) - st, NULL);
        sum += hi > lo ? hi - lo : 0;
    }
    return sum;
}

static json_t *ints(const int64_t *v, uint32_t n)
{
    json_t *arr = json_array();
    uint32_t i;

    for (i = 0; i < n; i++) {
        json_array_append_new(arr, json_integer(v[i]));
    }
    return arr;
}

json_t *stress__an_series(struct an *a)
{
    uint32_t n = a->nsec, i;
    int64_t *v = trib_calloc((size_t)n * 6, sizeof(*v));
    int64_t *ins = v, *due = v + n, *fin = v + 2 * n, *failed = v + 3 * n;
    int64_t *back = v + 4 * n, *tmp = v + 5 * n;
    json_t *o = json_object();

    for (i = 0; i < a->n; i++) {
        const struct jrec *j = rec_at(a->r, i);
        int st = a->state[i];
        int fin_ok = rec_state_final(st) && j->final_at != 0;

        if (j->created) {
            ins[an_sec(a, j->created)]++;
        }
        if (j->due) {
            due[an_sec(a, j->due)]++;
            back[an_sec(a, j->due)]++;
            if (fin_ok) { /* never before it was due, for the backlog */
                back[an_sec(a, j->final_at > j->due ? j->final_at : j->due)]--;
            }
        }
        if (fin_ok) {
            fin[an_sec(a, j->final_at)]++;
            failed[an_sec(a, j->final_at)] +=
                st == TRIB_WS_DISCARDED || st == TRIB_WS_CANCELLED;
        }
    }
    for (i = 1; i < n; i++) {
        back[i] += back[i - 1];
    }
    json_object_set_new(o, "interval_s", json_integer(1));
    for (i = 0; i < n; i++) {
        tmp[i] = i;
    }
    json_object_set_new(o, "t", ints(tmp, n));
    for (i = 0; i < n; i++) {
        tmp[i] = stage_at(a, i);
    }
    json_object_set_new(o, "stage", ints(tmp, n));
    for (i = 0; i < n; i++) {
        tmp[i] = target_at(a, i);
    }
    json_object_set_new(o, "target_rate", ints(tmp, n));
    json_object_set_new(o, "inserted", ints(ins, n));
    json_object_set_new(o, "due", ints(due, n));
    json_object_set_new(o, "finished", ints(fin, n));
    json_object_set_new(o, "failed", ints(failed, n));
    json_object_set_new(o, "errors", ints(a->sec_err, n));
    json_object_set_new(o, "backlog", ints(back, n));
    json_object_set(o, "end_to_end_ms", a->ser_e2e);
    json_object_set(o, "pickup_ms", a->ser_pickup);
    trib_free(v);
    return o;
}

/* ---------------------------------------------------------------- climb */

static int cmp_i64(const void *x, const void *y)
{
    int64_t p = *(const int64_t *)x, q = *(const int64_t *)y;

    return (p > q) - (p < q);
}

/* The stage most of the jobs due (by_final = 0) or finishing (1) in
 * second s belong to; else the stage inserting then; -1 none. */
static int stage_of(const struct an *a, uint32_t s, int by_final)
{
    int64_t cnt[STRESS_MAX_STAGES] = {0};
    int k, best = -1;
    uint32_t i;

    for (i = 0; i < a->n; i++) {
        const struct jrec *j = rec_at(a->r, i);
        int64_t t = by_final ? j->final_at : j->due;
        if (t != 0 && j->stage >= 0 && j->stage < a->nstages &&
            j->stage < STRESS_MAX_STAGES && an_sec(a, t) == s &&
            (!by_final || rec_state_final(a->state[i]))) {
            cnt[j->stage]++;
        }
    }
    for (k = 0; k < a->nstages && k < STRESS_MAX_STAGES; k++) {
        if (cnt[k] > 0 && (best < 0 || cnt[k] > cnt[best])) {
            best = k;
        }
    }
    return best >= 0 ? best : stage_at(a, s);
}

/* The first second of a run of at least CLIMB_SECS seconds in which the
 * backlog grew every second, by at least CLIMB_JOBS jobs in all and by
 * more than the jobs that became due in the run's last second (so a
 * backlog that only follows a rising arrival rate is no climb); -1 none.
 * from: the backlog before the run; to: at its end. */
static int64_t backlog_climb(const json_t *series, int64_t *from, int64_t *to)
{
    const json_t *b = json_object_get(series, "backlog");
    const json_t *due = json_object_get(series, "due");
    size_t n = json_array_size(b), i = 0, e, k;

#define B(x) json_integer_value(json_array_get(b, (x)))
    while (i + CLIMB_SECS < n) {
        for (k = 1; k <= CLIMB_SECS && B(i + k) > B(i + k - 1); k++) {
        }
        if (k <= CLIMB_SECS) {
            i++;
            continue;
        }
        for (e = i + CLIMB_SECS; e + 1 < n && B(e + 1) > B(e); e++) {
        }
        if (B(e) - B(i) >= CLIMB_JOBS &&
            B(e) - B(i) > json_integer_value(json_array_get(due, e))) {
            *from = B(i);
            *to = B(e);
            return (int64_t)i + 1; /* the first second it grew in */
        }
        i = e;
    }
#undef B
    return -1;
}

/* The first of CLIMB_SECS seconds in a row whose end-to-end p95 each
 * exceeded CLIMB_FACTOR x the median of the first stage's seconds (those
 * up to its last job's finish) and CLIMB_MIN_US, each with at least
 * CLIMB_MIN_FIN jobs finishing (one retried job in a quiet second is no
 * climb); -1 none. */
static int64_t latency_climb(const struct an *a, const json_t *series,
                             int64_t *base, int64_t *p95)
{
    const json_t *fin = json_object_get(series, "finished");
    uint32_t s, last = a->nsec - 1, n = 0, run = 0;
    int64_t *v;

#define FIN(x) json_integer_value(json_array_get(fin, (x)))
    if (a->nstages > 0) {
        if (a->stage0_last_final == 0) {
            return -1;
        }
        last = an_sec(a, a->stage0_last_final);
    }
    v = trib_malloc(((size_t)last + 1) * sizeof(*v));
    for (s = 0; s <= last; s++) {
        if (a->sec_p95[s] >= 0) {
            v[n++] = a->sec_p95[s];
        }
    }
    if (n == 0) {
        trib_free(v);
        return -1;
    }
    qsort(v, n, sizeof(*v), cmp_i64);
    *base = v[(n + 1) / 2 - 1];
    trib_free(v);
    for (s = 0; s < a->nsec; s++) {
        if (a->sec_p95[s] > CLIMB_FACTOR * *base &&
            a->sec_p95[s] > CLIMB_MIN_US && FIN(s) >= CLIMB_MIN_FIN) {
            if (++run == CLIMB_SECS) {
                *p95 = a->sec_p95[s - CLIMB_SECS + 1];
                return s - CLIMB_SECS + 1;
            }
        } else {
            run = 0;
        }
    }
#undef FIN
    return -1;
}

json_t *stress__an_climb(const struct an *a, const json_t *series)
{
    int64_t bf = 0, bt = 0, lb = 0, lp = 0, at;
    int64_t b_at = backlog_climb(series, &bf, &bt);
    int64_t l_at = latency_climb(a, series, &lb, &lp);
    int use_b = b_at >= 0 && (l_at < 0 || b_at <= l_at), stage;
    const char *name = NULL;
    char detail[256], where[STRESS_NAME_MAX + 32] = "";
    json_t *o;

    if (b_at < 0 && l_at < 0) {
        return json_null();
    }
    at = use_b ? b_at : l_at;
    stage = stage_of(a, (uint32_t)at, !use_b);
    if (stage >= 0) {
        name = a->plan->stages[stage].name;
        snprintf(where, sizeof(where), " during stage '%s'", name);
    }
    if (use_b) {
        snprintf(detail, sizeof(detail),
                 "backlog grew from %lld to %lld jobs from second %lld%s",
                 (long long)bf, (long long)bt, (long long)at, where);
    } else {
        snprintf(detail, sizeof(detail),
                 "p95 end-to-end reached %.3f ms at second %lld, over %dx the "
                 "first stage's %.3f ms%s",
                 (double)lp / 1000.0, (long long)at, CLIMB_FACTOR,
                 (double)lb / 1000.0, where);
    }
    o = json_object();
    json_object_set_new(o, "stage",
                        stage >= 0 ? json_integer(stage) : json_null());
    json_object_set_new(o, "stage_name",
                        name ? json_string(name) : json_null());
    json_object_set_new(o, "at_s", json_integer(at));
    json_object_set_new(o, "metric",
                        json_string(use_b ? "backlog" : "end_to_end_p95"));
    json_object_set_new(o, "from", use_b ? json_real((double)bf) : an_ms(lb));
    json_object_set_new(o, "to", use_b ? json_real((double)bt) : an_ms(lp));
    json_object_set_new(o, "detail", json_string(detail));
    return o;
}
