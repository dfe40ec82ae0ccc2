/*
 * stress_threshold.c -- threshold expressions ("p95(end_to_end) < 2s",
 * "failed_rate < 1%", "p99(pickup){mode=poll} <= 500ms") and their
 * verdicts against a report document (docs/REPORT.md, docs/STRESS.md).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress_plan.h"
#include "stress_plan_int.h"
#include "trib_err.h"
#include "trib_time.h"

enum mclass { M_LATENCY, M_RATIO, M_RATE, M_COUNT };

static const struct metric {
    const char *name;
    enum mclass cls;
    const char *section; /* the report's object that holds it */
} metrics[] = {
    {"end_to_end", M_LATENCY, "latency_ms"},
    {"queue_wait", M_LATENCY, "latency_ms"},
    {"pickup", M_LATENCY, "latency_ms"},
    {"run", M_LATENCY, "latency_ms"},
    {"complete", M_LATENCY, "latency_ms"},
    {"failed_rate", M_RATIO, "rates"},
    {"discarded_rate", M_RATIO, "rates"},
    {"cancelled_rate", M_RATIO, "rates"},
    {"error_rate", M_RATIO, "rates"},
    {"retry_rate", M_RATIO, "rates"},
    {"throughput", M_RATE, "rates"},
    {"insert_rate", M_RATE, "rates"},
    {"finished", M_COUNT, "counts"},
    {"completed", M_COUNT, "counts"},
    {"discarded", M_COUNT, "counts"},
    {"cancelled", M_COUNT, "counts"},
    {"unfinished", M_COUNT, "counts"},
    {"retried", M_COUNT, "counts"},
    {"failed_attempts", M_COUNT, "counts"},
    {"started_early", M_COUNT, "counts"},
};
#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

static const char *const stats[] = {"min", "avg", "med", "p50", "p90",
                                    "p95", "p99", "max", NULL};
static const char *const scopes[] = {"node", "client", "queue",
                                     "mode", "stage",  NULL};
static const char *const units[] = {"ms", "ratio", "jobs/s", "count"};
static const char *const ops[] = {"<", "<=", ">", ">="};

static const struct metric *find_metric(const char *name)
{
    size_t i;

    for (i = 0; i < NMETRICS; i++) {
        if (strcmp(metrics[i].name, name) == 0) {
            return &metrics[i];
        }
    }
    return NULL;
}

static void skip_space(const char **s)
{
    while (isspace((unsigned char)**s)) {
        (*s)++;
    }
}

/* A word of [a-z0-9_] at *s into w (n bytes); its length (0: none). */
static size_t word(const char **s, char *w, size_t n)
{
    size_t k = 0;

    while (isalnum((unsigned char)(*s)[k]) || (*s)[k] == '_') {
        k++;
    }
    snprintf(w, n, "%.*s", (int)k, *s);
    *s += k;
    return k;
}

/* The limit in the metric's unit. */
static int limit(const struct metric *m, const char *v, double *out, char *err,
                 size_t errlen)
{
    size_t k = strspn(v, "0123456789."), i;
    char shown[48];
    int64_t us;

    stress__show(v, shown, sizeof(shown));
    if (k == 0 || strchr(v, '.') != strrchr(v, '.') || v[0] == '.') {
        k = 0; /* not a plain decimal: every branch below rejects it */
    }
    switch (m->cls) {
    case M_LATENCY:
        if (k > 0 && v[k] == '\0') {
            *out = strtod(v, NULL); /* bare: milliseconds */
            return 0;
        }
        if (k > 0 && trib_duration_parse(v, 0, &us) == 0) {
            *out = (double)us / TRIB_US_PER_MS;
            return 0;
        }
        return stress__errf(
            err, errlen,
            "%s: expected a duration (e.g. 250ms, 2s, 500us; a bare "
            "number is ms), got '%s'",
            m->name, shown);
    case M_RATIO:
        if (k > 0 && strcmp(v + k, "%") == 0 && strtod(v, NULL) <= 100) {
            *out = strtod(v, NULL) / 100;
            return 0;
        }
        if (k > 0 && v[k] == '\0' && strtod(v, NULL) <= 1) {
            *out = strtod(v, NULL);
            return 0;
        }
        return stress__errf(
            err, errlen,
            "%s: expected a percentage 0..100%% or a fraction 0..1 "
            "(e.g. 1%% or 0.01), got '%s'",
            m->name, shown);
    case M_RATE:
        if (k > 0 && (v[k] == '\0' || strcmp(v + k, "/s") == 0)) {
            *out = strtod(v, NULL);
            return 0;
        }
        return stress__errf(
            err, errlen,
            "%s: expected a rate in jobs/s (e.g. 500/s or 500), got "
            "'%s'",
            m->name, shown);
    case M_COUNT:
        for (i = 0; v[i] != '\0' && isdigit((unsigned char)v[i]); i++) {
        }
        if (i > 0 && i < 16 && v[i] == '\0') {
            *out = strtod(v, NULL);
            return 0;
        }
        return stress__errf(
            err, errlen,
            "%s: expected a whole number of jobs (e.g. 0), got '%s'", m->name,
            shown);
    }
    return TRIB_EINVAL;
}

/* "{key=value}" at *s. */
static int scope(const char **s, struct stress_threshold *t, char *err,
                 size_t errlen)
{
    const char *p = *s + 1, *end;
    char key[32], shown[48];
    size_t vlen, i;
    json_t *js;

    skip_space(&p);
    word(&p, key, sizeof(key));
    skip_space(&p);
    if (!stress__in(scopes, key)) {
        return stress__errf(
            err, errlen,
            "unknown scope '%s' (known: node, client, queue, mode, "
            "stage), as in {mode=poll}",
            stress__show(key, shown, sizeof(shown)));
    }
    if (*p != '=') {
        return stress__errf(err, errlen,
                            "expected '=' after '{%s', as in {%s=VALUE}", key,
                            key);
    }
    p++;
    skip_space(&p);
    p += *p == '"';
    end = strchr(p, '}');
    if (end == NULL) {
        return stress__errf(err, errlen, "expected '}' to close the scope");
    }
    vlen = (size_t)(end - p);
    while (vlen > 0 && (isspace((unsigned char)p[vlen - 1]) ||
                        (p[vlen - 1] == '"' && p[-1] == '"'))) {
        vlen--;
    }
    if (vlen == 0 || vlen >= sizeof(t->scope_val)) {
        return stress__errf(err, errlen,
                            "the scope's value must be 1..%d characters",
                            STRESS_QUEUE_MAX - 1);
    }
    snprintf(t->scope_key, sizeof(t->scope_key), "%.15s", key);
    snprintf(t->scope_val, sizeof(t->scope_val), "%.*s", (int)vlen, p);
    js = json_string(t->scope_val); /* NULL: not UTF-8 */
    json_decref(js);
    for (i = 0; i < vlen && js != NULL; i++) {
        js = iscntrl((unsigned char)p[i]) ? NULL : js;
    }
    if (js == NULL) {
        return stress__errf(
            err, errlen,
            "the scope's value must be UTF-8 text without control "
            "characters");
    }
    *s = end + 1;
    return 0;
}

int stress_threshold_parse(const char *expr, struct stress_threshold *t,
                           char *err, size_t errlen)
{
    const struct metric *m;
    const char *s;
    char w[40], lhs[160], shown[48];
    size_t len;

    memset(t, 0, sizeof(*t));
    while (isspace((unsigned char)*expr)) {
        expr++;
    }
    len = strlen(expr);
    while (len > 0 && isspace((unsigned char)expr[len - 1])) {
        len--;
    }
    if (len == 0) {
        return stress__errf(err, errlen,
                            "empty threshold (e.g. 'p95(end_to_end) < 2s')");
    }
    if (len >= sizeof(t->expr)) {
        return stress__errf(err, errlen,
                            "a threshold is at most %zu characters",
                            sizeof(t->expr) - 1);
    }
    snprintf(t->expr, sizeof(t->expr), "%.*s", (int)len, expr);
    s = t->expr;
    word(&s, w, sizeof(w));
    skip_space(&s);
    if (*s == '(') { /* STAT(METRIC) */
        if (!stress__in(stats, w)) {
            return stress__errf(
                err, errlen,
                "unknown statistic '%s' (known: min, avg, med, p50, "
                "p90, p95, p99, max)",
                stress__show(w, shown, sizeof(shown)));
        }
        snprintf(t->stat, sizeof(t->stat), "%.7s",
                 strcmp(w, "med") == 0 ? "p50" : w);
        s++;
        skip_space(&s);
        word(&s, w, sizeof(w));
        skip_space(&s);
    }
    if ((m = find_metric(w)) == NULL) {
        return stress__errf(
            err, errlen,
            "unknown metric '%s' (known: end_to_end, queue_wait, "
            "pickup, run, complete, failed_rate, discarded_rate, "
            "cancelled_rate, error_rate, retry_rate, throughput, "
            "insert_rate, finished, completed, discarded, cancelled, "
            "unfinished, retried, failed_attempts, started_early)",
            stress__show(w, shown, sizeof(shown)));
    }
    snprintf(t->metric, sizeof(t->metric), "%s", m->name);
    if (t->stat[0] != '\0') {
        if (*s != ')') {
            return stress__errf(err, errlen, "expected ')' after '%s(%s'",
                                t->stat, m->name);
        }
        s++;
        skip_space(&s);
    }
    if (m->cls == M_LATENCY && t->stat[0] == '\0') {
        return stress__errf(err, errlen,
                            "'%s' is a latency: give a statistic, e.g. p95(%s)",
                            m->name, m->name);
    }
    if (m->cls != M_LATENCY && t->stat[0] != '\0') {
        return stress__errf(
            err, errlen,
            "'%s' is not a latency: write it without a statistic, "
            "e.g. '%s > 0'",
            m->name, m->name);
    }
    if (*s == '{') {
        if (m->cls != M_LATENCY) {
            return stress__errf(err, errlen,
                                "a scope {...} applies to latencies only");
        }
        if (scope(&s, t, err, errlen) != 0) {
            return TRIB_EINVAL;
        }
        skip_space(&s);
    }
    len = (size_t)(s - t->expr);
    while (len > 0 && isspace((unsigned char)t->expr[len - 1])) {
        len--;
    }
    snprintf(lhs, sizeof(lhs), "%.*s", (int)len, t->expr);
    if (s[0] == '<' || s[0] == '>') {
        t->op = s[0] == '<' ? (s[1] == '=' ? STRESS_OP_LE : STRESS_OP_LT)
                            : (s[1] == '=' ? STRESS_OP_GE : STRESS_OP_GT);
        s += 1 + (s[1] == '=');
    } else {
        return stress__errf(err, errlen,
                            "expected <, <=, > or >= after '%s', got '%s'", lhs,
                            stress__show(s, shown, sizeof(shown)));
    }
    skip_space(&s);
    if (*s == '\0') {
        return stress__errf(err, errlen, "expected a value after '%s'",
                            ops[t->op]);
    }
    t->unit = units[m->cls];
    return limit(m, s, &t->limit, err, errlen);
}

/* ------------------------------------------------------------ verdict */

static const json_t *path2(const json_t *o, const char *a, const char *b)
{
    return json_object_get(json_object_get(o, a), b);
}

/* The object holding latency_ms for the threshold's scope, or NULL. */
static const json_t *scoped(const struct stress_threshold *t,
                            const json_t *report)
{
    const json_t *arr = path2(report, "breakdowns", t->scope_key), *e;
    const char *want = t->scope_val, *name = NULL;
    char *end;
    long idx = strtol(want, &end, 10);
    int is_index = *want != '\0' && *end == '\0' && idx >= 0;
    size_t i;

    if (strcmp(t->scope_key, "stage") == 0 && is_index) {
        json_array_foreach(json_object_get(report, "stages"), i, e)
        {
            if (json_integer_value(json_object_get(e, "index")) == idx) {
                name = json_string_value(json_object_get(e, "name"));
            }
        }
    }
    json_array_foreach(arr, i, e)
    {
        const char *key = json_string_value(json_object_get(e, "key"));
        if (key != NULL && (strcmp(key, want) == 0 ||
                            (name != NULL && strcmp(key, name) == 0))) {
            return e;
        }
    }
    if (strcmp(t->scope_key, "stage") == 0) { /* the stages array itself */
        json_array_foreach(json_object_get(report, "stages"), i, e)
        {
            const char *n = json_string_value(json_object_get(e, "name"));
            if ((n != NULL && strcmp(n, want) == 0) ||
                (is_index &&
                 json_integer_value(json_object_get(e, "index")) == idx)) {
                return e;
            }
        }
    }
    return NULL;
}

int stress_threshold_eval(const struct stress_threshold *t,
                          const json_t *report, double *actual,
                          const char **why)
{
    const struct metric *m = find_metric(t->metric);
    const json_t *base = report, *v;
    double a;
    int pass;

    *actual = NAN;
    *why = NULL;
    if (m == NULL || !json_is_object(report)) {
        *why = "no data: not a report document";
        return -1;
    }
    if (t->scope_key[0] != '\0' && (base = scoped(t, report)) == NULL) {
        *why = "no data: no entry of the report matches the scope";
        return -1;
    }
    v = path2(base, m->section, m->name);
    if (m->cls == M_LATENCY) {
        v = json_object_get(v, t->stat);
    }
    if (!json_is_number(v)) {
        *why = "no data: the report has no value for this metric";
        return -1;
    }
    a = json_number_value(v);
    *actual = a;
    switch (t->op) {
    case STRESS_OP_LT:
        pass = a < t->limit;
        break;
    case STRESS_OP_LE:
        pass = a <= t->limit;
        break;
    case STRESS_OP_GT:
        pass = a > t->limit;
        break;
    default:
        pass = a >= t->limit;
        break;
    }
    if (!pass) {
        *why = t->op == STRESS_OP_LT || t->op == STRESS_OP_LE
                   ? "the measured value is above the limit"
                   : "the measured value is below the limit";
    }
    return pass;
}

/* A value in the threshold's unit, for 'why'. */
static void show_value(const struct stress_threshold *t, double v, char *buf,
                       size_t n)
{
    if (strcmp(t->unit, "ms") == 0) {
        snprintf(buf, n, "%.3f ms", v);
    } else if (strcmp(t->unit, "ratio") == 0) {
        snprintf(buf, n, "%.2f%%", v * 100);
    } else if (strcmp(t->unit, "jobs/s") == 0) {
        snprintf(buf, n, "%.1f/s", v);
    } else {
        snprintf(buf, n, "%.0f", v);
    }
}

int stress_thresholds_apply(const struct stress_plan *p, json_t *report)
{
    json_t *arr = json_array();
    char why[160], a[48], l[48];
    int i, all = 1;

    for (i = 0; i < p->nthresholds; i++) {
        const struct stress_threshold *t = &p->thresholds[i];
        const char *w;
        double actual;
        int rv = stress_threshold_eval(t, report, &actual, &w);

        if (rv == 0) {
            show_value(t, actual, a, sizeof(a));
            show_value(t, t->limit, l, sizeof(l));
            snprintf(why, sizeof(why), "measured %s, not %s %s", a, ops[t->op],
                     l);
            w = why;
        }
        all &= rv == 1;
        json_array_append_new(
            arr,
            json_pack(
                "{s:s, s:s, s:o, s:o, s:s, s:f, s:s, s:o, s:b, s:o, "
                "s:o}",
                "expr", t->expr, "metric", t->metric, "stat",
                t->stat[0] ? json_string(t->stat) : json_null(), "scope",
                t->scope_key[0] ? json_pack("{s:s}", t->scope_key, t->scope_val)
                                : json_null(),
                "op", ops[t->op], "limit", t->limit, "unit", t->unit, "actual",
                rv >= 0 ? json_real(actual) : json_null(), "pass", rv == 1,
                "why", w != NULL ? json_string(w) : json_null(), "line",
                t->line > 0 ? json_integer(t->line) : json_null()));
    }
    json_object_set_new(report, "thresholds", arr);
    json_object_set_new(report, "thresholds_passed", json_boolean(all));
    return all;
}
