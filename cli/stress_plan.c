/*
 * stress_plan.c -- the plan's defaults, its value parsers and setters
 * (shared by the plan file and the flags), and the flags of `tributary
 * stress` (docs/STRESS.md). The file is read in stress_plan_yaml.c;
 * finish(), the schedule and the JSON form live in stress_plan_sched.c.
 */
#include "stress_plan.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h" /* agent: trib_queue_name_valid() */
#include "stress_plan_int.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_time.h"

#define H (3600 * TRIB_US_PER_S)

void stress_plan_init(struct stress_plan *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "stress");
    snprintf(p->kind, sizeof(p->kind), "tributary.noop");
    p->args_json = trib_strdup("{}");
    p->priority = 1;
    p->max_attempts = 25;
    /* nqueues stays 0 until finish(): then "default", unless --mixed. An
     * explicit queue list and --mixed exclude each other. */
    snprintf(p->notify_queue, sizeof(p->notify_queue), "default");
    snprintf(p->poll_queue, sizeof(p->poll_queue), "poll");
    p->method = STRESS_METHOD_COPY;
    p->batch = 5000;
    p->streams = 2;
    p->timeout_us = 10 * 60 * TRIB_US_PER_S;
    p->grace_us = 5 * TRIB_US_PER_S;
    p->monitor = STRESS_MONITOR_BOTH;
    p->flag_rate = -1; /* not given */
}

void stress_plan_fini(struct stress_plan *p)
{
    trib_free(p->file);
    trib_free(p->args_json);
    trib_free(p->database_url);
    trib_free(p->schema);
    trib_free(p->control);
    trib_free(p->out_dir);
    memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------ values */

const char *stress__show(const char *s, char *buf, size_t n)
{
    size_t i, len = strlen(s);

    for (i = 0; i + 1 < n && i < len; i++) {
        buf[i] = iscntrl((unsigned char)s[i]) ? '?' : s[i];
    }
    buf[i] = '\0';
    if (i < len && n > 4) {
        memcpy(buf + n - 4, "...", 4);
    }
    return buf;
}

int stress__errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return TRIB_EINVAL;
}

int stress__in(const char *const *list, const char *s)
{
    size_t i;

    for (i = 0; list[i] != NULL; i++) {
        if (strcmp(list[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

static int bad(char *msg, size_t n, const char *what, const char *s)
{
    char shown[48];

    snprintf(msg, n, "expected %s, got '%s'", what,
             stress__show(s, shown, sizeof(shown)));
    return TRIB_EINVAL;
}

/* Length of a decimal number "12", "12.5", ".5" at s (0: none). */
static size_t decimal(const char *s)
{
    size_t i = 0, digits = 0;

    while (isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (s[i] == '.') {
        i++;
        while (isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    return digits > 0 && i < 32 ? i : 0;
}

int stress__rate(const char *s, double *out, char *msg, size_t n)
{
    size_t k = decimal(s);
    double v;

    if (k == 0 || (s[k] != '\0' && strcmp(s + k, "/s") != 0)) {
        return bad(msg, n, "a rate >= 0 (e.g. 500 or 500/s)", s);
    }
    v = strtod(s, NULL);
    if (!(v <= STRESS_RATE_MAX)) {
        return bad(msg, n, "a rate of at most 10000000/s", s);
    }
    *out = v;
    return 0;
}

/* Digits with optional single '_' separators ("100_000"). */
static int integer(const char *s, int64_t min, int64_t max, int64_t *out,
                   char *msg, size_t n)
{
    char what[64];
    int64_t v = 0;
    size_t i;

    snprintf(what, sizeof(what), "an integer %lld..%lld", (long long)min,
             (long long)max);
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] == '_' && i > 0 && isdigit((unsigned char)s[i + 1])) {
            continue;
        }
        if (!isdigit((unsigned char)s[i]) || v > max) {
            return bad(msg, n, what, s);
        }
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0 || v < min || v > max) {
        return bad(msg, n, what, s);
    }
    *out = v;
    return 0;
}

int stress__count(const char *s, int64_t *out, char *msg, size_t n)
{
    return integer(s, 1, STRESS_MAX_JOBS, out, msg, n);
}

int stress__duration(const char *s, int64_t min, int64_t max, int64_t *out,
                     char *msg, size_t n)
{
    char what[80], b[32];
    int64_t us;

    trib_duration_format(max, b, sizeof(b));
    snprintf(what, sizeof(what), "a duration %s%s (e.g. 500ms, 30s, 2m)",
             min > 0 ? "> 0 and <= " : "<= ", b);
    if (trib_duration_parse(s, 0, &us) != 0 || us < min || us > max) {
        return bad(msg, n, what, s);
    }
    *out = us;
    return 0;
}

/* Valid UTF-8 (it goes into JSON) without control characters. */
static int printable(const char *s)
{
    json_t *j;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (iscntrl((unsigned char)s[i])) {
            return 0;
        }
    }
    j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* 1..max-1 bytes, printable. */
static int text(const char *s, char *dst, size_t max, char *msg, size_t n)
{
    char what[64];
    size_t len = strlen(s);

    snprintf(what, sizeof(what), "1..%zu characters", max - 1);
    if (!printable(s)) {
        return bad(msg, n, "UTF-8 text without control characters", s);
    }
    if (len == 0 || len >= max) {
        return bad(msg, n, what, s);
    }
    memcpy(dst, s, len + 1);
    return 0;
}

static int heap_text(const char *s, char **dst, char *msg, size_t n)
{
    size_t i = strlen(s);

    if (!printable(s)) {
        return bad(msg, n, "UTF-8 text without control characters", s);
    }
    if (i == 0 || i > 4096) {
        return bad(msg, n, "1..4096 characters", s);
    }
    trib_free(*dst);
    *dst = trib_strdup(s);
    return 0;
}

static int queue_name(const char *q, char *msg, size_t n)
{
    if (!trib_queue_name_valid(q)) {
        return bad(msg, n,
                   "a queue name: 1-64 lowercase letters and digits separated "
                   "by single _ - or |",
                   q);
    }
    return 0;
}

int stress__stage_name(const char *s, char *msg, size_t n)
{
    size_t i, digits = 0, len = strlen(s);

    for (i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' &&
            s[i] != '.') {
            break;
        }
        digits += isdigit((unsigned char)s[i]) != 0;
    }
    if (len == 0 || len >= STRESS_NAME_MAX || i < len) {
        return bad(msg, n, "a stage name of 1..63 letters, digits, _ - or .",
                   s);
    }
    if (digits == len) {
        return bad(msg, n,
                   "a stage name that is not a number (thresholds pick stages "
                   "by name or by index)",
                   s);
    }
    return 0;
}

int stress__set_args(struct stress_plan *p, const json_t *obj, char *msg,
                     size_t n)
{
    char *s;

    if (!json_is_object(obj)) {
        snprintf(msg, n, "expected a JSON object");
        return TRIB_EINVAL;
    }
    s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL || strlen(s) > STRESS_ARGS_MAX) {
        snprintf(msg, n, "the args are larger than %d bytes of JSON",
                 STRESS_ARGS_MAX);
        free(s);
        return TRIB_EINVAL;
    }
    trib_free(p->args_json);
    p->args_json = trib_strdup(s);
    free(s); /* jansson's allocator */
    return 0;
}

int stress__set_args_text(struct stress_plan *p, const char *s, char *msg,
                          size_t n)
{
    json_error_t je;
    json_t *v;
    int rv;

    v = json_loads(s, JSON_REJECT_DUPLICATES, &je);
    if (v == NULL) {
        snprintf(msg, n, "expected a JSON object: %s (column %d)", je.text,
                 je.column);
        return TRIB_EINVAL;
    }
    rv = json_is_object(v)
             ? stress__set_args(p, v, msg, n)
             : bad(msg, n, "a JSON object such as {\"ms\": 5}", s);
    json_decref(v);
    return rv;
}

int stress__add_queue(struct stress_plan *p, const char *q, char *msg, size_t n)
{
    int i;

    if (queue_name(q, msg, n) != 0) {
        return TRIB_EINVAL;
    }
    for (i = 0; i < p->nqueues; i++) {
        if (strcmp(p->queues[i], q) == 0) {
            snprintf(msg, n, "queue '%s' is listed twice", q);
            return TRIB_EINVAL;
        }
    }
    if (p->nqueues == STRESS_MAX_QUEUES) {
        snprintf(msg, n, "at most %d queues", STRESS_MAX_QUEUES);
        return TRIB_EINVAL;
    }
    snprintf(p->queues[p->nqueues++], STRESS_QUEUE_MAX, "%s", q);
    return 0;
}

int stress__add_tag(struct stress_plan *p, const char *tag, char *msg, size_t n)
{
    size_t i, len = strlen(tag);
    int k;

    for (i = 0; i < len; i++) {
        if (!isalnum((unsigned char)tag[i]) && tag[i] != '_' && tag[i] != '-') {
            break;
        }
    }
    if (len == 0 || len >= STRESS_QUEUE_MAX || i < len) {
        return bad(msg, n, "a tag of 1..64 letters, digits, _ or -", tag);
    }
    if (strncmp(tag, "tributary-run-", 14) == 0) {
        snprintf(msg, n,
                 "tag '%s' is reserved: 'tributary-run-<id>' marks the run's "
                 "jobs",
                 tag);
        return TRIB_EINVAL;
    }
    for (k = 0; k < p->ntags; k++) {
        if (strcmp(p->tags[k], tag) == 0) {
            snprintf(msg, n, "tag '%s' is listed twice", tag);
            return TRIB_EINVAL;
        }
    }
    if (p->ntags == STRESS_MAX_TAGS) {
        snprintf(msg, n, "at most %d tags", STRESS_MAX_TAGS);
        return TRIB_EINVAL;
    }
    snprintf(p->tags[p->ntags++], STRESS_QUEUE_MAX, "%s", tag);
    return 0;
}

int stress__add_stage(struct stress_plan *p, const struct stress_stage *st,
                      char *msg, size_t n)
{
    if (p->nstages == STRESS_MAX_STAGES) {
        snprintf(msg, n, "at most %d stages", STRESS_MAX_STAGES);
        return TRIB_EINVAL;
    }
    p->stages[p->nstages++] = *st;
    return 0;
}

int stress__add_threshold(struct stress_plan *p, const char *expr, int line,
                          char *msg, size_t n)
{
    struct stress_threshold t;

    if (p->nthresholds == STRESS_MAX_THRESHOLDS) {
        snprintf(msg, n, "at most %d thresholds", STRESS_MAX_THRESHOLDS);
        return TRIB_EINVAL;
    }
    if (stress_threshold_parse(expr, &t, msg, n) != 0) {
        return TRIB_EINVAL;
    }
    t.line = line;
    p->thresholds[p->nthresholds++] = t;
    return 0;
}

int stress__stage_spec(const char *spec, struct stress_stage *st, char *msg,
                       size_t n)
{
    char buf[128], sub[200];
    char *body = buf, *sep;

    memset(st, 0, sizeof(*st));
    if (strlen(spec) >= sizeof(buf)) {
        return bad(msg, n, "a stage of at most 127 characters", spec);
    }
    snprintf(buf, sizeof(buf), "%s", spec);
    if ((sep = strchr(buf, '=')) != NULL) {
        *sep = '\0';
        if (stress__stage_name(buf, sub, sizeof(sub)) != 0) {
            snprintf(msg, n, "name: %s", sub);
            return TRIB_EINVAL;
        }
        snprintf(st->name, sizeof(st->name), "%.63s", buf);
        body = sep + 1;
    }
    if ((sep = strchr(body, ':')) != NULL) { /* ramp DURATION:TARGET */
        *sep = '\0';
        if (stress__duration(body, 1, 24 * H, &st->duration_us, sub,
                             sizeof(sub)) != 0) {
            snprintf(msg, n, "ramp duration: %s", sub);
            return TRIB_EINVAL;
        }
        if (stress__rate(sep + 1, &st->target, sub, sizeof(sub)) != 0) {
            snprintf(msg, n, "ramp target: %s", sub);
            return TRIB_EINVAL;
        }
        return 0;
    }
    if ((sep = strchr(body, '@')) != NULL) { /* COUNT@RATE */
        *sep = '\0';
        if (stress__rate(sep + 1, &st->rate, sub, sizeof(sub)) != 0) {
            snprintf(msg, n, "rate: %s", sub);
            return TRIB_EINVAL;
        }
    }
    if (stress__count(body, &st->count, sub, sizeof(sub)) != 0) {
        return bad(msg, n,
                   "DURATION:TARGET (30s:500), COUNT@RATE (2000@500/s) or "
                   "COUNT (2000), optionally after NAME=",
                   spec);
    }
    return 0;
}

/* ------------------------------------------------------------ fields */

static const struct field {
    const char *flag;    /* without "--" */
    const char *section; /* plan file: "" top level, or the mapping */
    const char *key;
} fields[SF_COUNT_] = {
    [SF_NAME] = {"name", "", "name"},
    [SF_KIND] = {"kind", "jobs", "kind"},
    [SF_ARGS] = {"args", "jobs", "args"},
    [SF_PRIORITY] = {"priority", "jobs", "priority"},
    [SF_MAX_ATTEMPTS] = {"max-attempts", "jobs", "max_attempts"},
    [SF_DELAY] = {"delay", "jobs", "delay"},
    [SF_SPREAD] = {"spread", "jobs", "spread"},
    [SF_NOTIFY_QUEUE] = {"notify-queue", "mixed", "notify_queue"},
    [SF_POLL_QUEUE] = {"poll-queue", "mixed", "poll_queue"},
    [SF_METHOD] = {"method", "insert", "method"},
    [SF_BATCH] = {"batch", "insert", "batch"},
    [SF_STREAMS] = {"streams", "insert", "streams"},
    [SF_START_RATE] = {"start-rate", "", "start_rate"},
    [SF_TIMEOUT] = {"timeout", "", "timeout"},
    [SF_GRACE] = {"grace", "", "grace"},
    [SF_MONITOR] = {"monitor", "", "monitor"},
    [SF_DATABASE_URL] = {"database-url", "", "database_url"},
    [SF_SCHEMA] = {"schema", "", "schema"},
    [SF_CONTROL] = {"control", "", "control"},
    [SF_OUT] = {"out", "", "out"},
};

int stress__field_by_key(const char *section, const char *key)
{
    int i;

    for (i = 0; i < SF_COUNT_; i++) {
        if (strcmp(fields[i].section, section) == 0 &&
            strcmp(fields[i].key, key) == 0) {
            return i;
        }
    }
    return -1;
}

int stress__set(struct stress_plan *p, int f, const char *v, char *msg,
                size_t n)
{
    int64_t i;
    int rv = 0;

    switch (f) {
    case SF_NAME:
        return text(v, p->name, sizeof(p->name), msg, n);
    case SF_KIND:
        return text(v, p->kind, sizeof(p->kind), msg, n);
    case SF_ARGS:
        return stress__set_args_text(p, v, msg, n);
    case SF_PRIORITY:
        rv = integer(v, 1, 4, &i, msg, n);
        p->priority = rv == 0 ? (int)i : p->priority;
        return rv;
    case SF_MAX_ATTEMPTS:
        rv = integer(v, 1, 32767, &i, msg, n);
        p->max_attempts = rv == 0 ? (int)i : p->max_attempts;
        return rv;
    case SF_DELAY:
        return stress__duration(v, 0, 24 * H, &p->delay_us, msg, n);
    case SF_SPREAD:
        return stress__duration(v, 0, 24 * H, &p->spread_us, msg, n);
    case SF_NOTIFY_QUEUE:
    case SF_POLL_QUEUE:
        if (queue_name(v, msg, n) != 0) {
            return TRIB_EINVAL;
        }
        snprintf(f == SF_POLL_QUEUE ? p->poll_queue : p->notify_queue,
                 STRESS_QUEUE_MAX, "%s", v);
        return 0;
    case SF_METHOD:
        if (strcmp(v, "copy") != 0 && strcmp(v, "insert") != 0) {
            return bad(msg, n, "copy or insert", v);
        }
        p->method = v[0] == 'c' ? STRESS_METHOD_COPY : STRESS_METHOD_INSERT;
        return 0;
    case SF_BATCH:
        rv = integer(v, 1, 100000, &i, msg, n);
        p->batch = rv == 0 ? (int)i : p->batch;
        return rv;
    case SF_STREAMS:
        rv = integer(v, 1, 16, &i, msg, n);
        p->streams = rv == 0 ? (int)i : p->streams;
        return rv;
    case SF_START_RATE:
        return stress__rate(v, &p->start_rate, msg, n);
    case SF_TIMEOUT:
        return stress__duration(v, 1, 168 * H, &p->timeout_us, msg, n);
    case SF_GRACE:
        return stress__duration(v, 0, H, &p->grace_us, msg, n);
    case SF_MONITOR:
        if (strcmp(v, "both") == 0) {
            p->monitor = STRESS_MONITOR_BOTH;
        } else if (strcmp(v, "events") == 0) {
            p->monitor = STRESS_MONITOR_EVENTS;
        } else if (strcmp(v, "polling") == 0) {
            p->monitor = STRESS_MONITOR_POLLING;
        } else {
            return bad(msg, n, "both, events or polling", v);
        }
        return 0;
    case SF_DATABASE_URL:
        return heap_text(v, &p->database_url, msg, n);
    case SF_SCHEMA:
        if (strlen(v) > 63) {
            return bad(msg, n, "a schema name of 1..63 characters", v);
        }
        return heap_text(v, &p->schema, msg, n);
    case SF_CONTROL:
        return heap_text(v, &p->control, msg, n);
    case SF_OUT:
        return heap_text(v, &p->out_dir, msg, n);
    }
    snprintf(msg, n, "unknown setting");
    return TRIB_EINVAL;
}

/* ------------------------------------------------------------- flags */

/* Applies f to every comma-separated item of v. */
static int each_item(struct stress_plan *p, const char *v,
                     int (*f)(struct stress_plan *, const char *, char *,
                              size_t),
                     char *msg, size_t n)
{
    char item[STRESS_QUEUE_MAX + 1];
    const char *s = v, *e;

    do {
        e = strchr(s, ',');
        size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
        if (len >= sizeof(item)) {
            len = sizeof(item) - 1; /* too long: rejected by f */
        }
        memcpy(item, s, len);
        item[len] = '\0';
        if (f(p, item, msg, n) != 0) {
            return TRIB_EINVAL;
        }
        s = e + 1;
    } while (e != NULL);
    return 0;
}

/* The flags that are not a single field. */
static const char *const list_flags[] = {"jobs",  "rate", "stage", "threshold",
                                         "queue", "tag",  NULL};

/* A list flag's first use replaces what the plan file gave. */
static int first(struct stress_plan *p, unsigned bit)
{
    int was = (p->flag_seen & bit) == 0;

    p->flag_seen |= bit;
    return was;
}

static int flag_value(struct stress_plan *p, const char *flag, const char *v,
                      char *msg, size_t n)
{
    struct stress_stage st;
    int64_t jobs;
    int i;

    if (strcmp(flag, "mixed") == 0) {
        if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            p->mixed = 1;
        } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            p->mixed = 0;
        } else {
            return bad(msg, n, "no value (a switch), true or false", v);
        }
        return 0;
    }
    for (i = 0; i < SF_COUNT_ && strcmp(fields[i].flag, flag) != 0; i++) {
    }
    if (i == SF_COUNT_ && !stress__in(list_flags, flag)) {
        return TRIB_ENOENT;
    }
    if (v == NULL) {
        snprintf(msg, n, "expects a value");
        return TRIB_EINVAL;
    }
    if (i < SF_COUNT_) {
        return stress__set(p, i, v, msg, n);
    }
    if (strcmp(flag, "jobs") == 0) {
        if (stress__count(v, &jobs, msg, n) != 0) {
            return TRIB_EINVAL;
        }
        p->flag_jobs = jobs;
        return 0;
    }
    if (strcmp(flag, "rate") == 0) {
        return stress__rate(v, &p->flag_rate, msg, n);
    }
    if (strcmp(flag, "stage") == 0) {
        if (stress__stage_spec(v, &st, msg, n) != 0) {
            return TRIB_EINVAL;
        }
        if (first(p, STRESS_SEEN_STAGES)) {
            p->nstages = 0;
        }
        p->flag_stages++;
        return stress__add_stage(p, &st, msg, n);
    }
    if (strcmp(flag, "threshold") == 0) {
        if (first(p, STRESS_SEEN_THRESHOLDS)) {
            p->nthresholds = 0;
        }
        return stress__add_threshold(p, v, 0, msg, n);
    }
    if (strcmp(flag, "queue") == 0) {
        if (first(p, STRESS_SEEN_QUEUES)) {
            p->nqueues = 0;
        }
        return each_item(p, v, stress__add_queue, msg, n);
    }
    if (first(p, STRESS_SEEN_TAGS)) { /* "tag" */
        p->ntags = 0;
    }
    return each_item(p, v, stress__add_tag, msg, n);
}

int stress_plan_flag(struct stress_plan *p, const char *flag, const char *value,
                     char *err, size_t errlen)
{
    char msg[384];
    int rv;

    msg[0] = '\0';
    rv = flag_value(p, flag, value, msg, sizeof(msg));
    if (rv == TRIB_ENOENT) {
        return rv;
    }
    if (rv != 0) {
        snprintf(err, errlen, "--%s: %s", flag, msg);
        return TRIB_EINVAL;
    }
    return 0;
}
