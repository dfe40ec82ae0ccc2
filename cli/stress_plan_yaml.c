/*
 * stress_plan_yaml.c -- reads a plan file (docs/STRESS.md) into a
 * stress_plan through common/trib_yaml, with errors of the form
 * "plan.yaml:14:13: stages[1].target: problem".
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "stress_plan.h"
#include "stress_plan_int.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_yaml.h"

#define PLAN_FILE_MAX (1024 * 1024)

/* One parse: the source (for key columns) and the error buffer. */
struct ld {
    struct stress_plan *p;
    const char *name;
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
};

static const char *const top_keys[] = {
    "name",         "jobs",       "mixed",   "insert", "count",   "rate",
    "stages",       "start_rate", "timeout", "grace",  "monitor", "thresholds",
    "database_url", "schema",     "control", "out",    NULL};
static const char *const jobs_keys[] = {
    "kind",         "args", "queue", "queues", "priority",
    "max_attempts", "tags", "delay", "spread", NULL};
static const char *const insert_keys[] = {"method", "batch", "streams", NULL};
static const char *const mixed_keys[] = {"notify_queue", "poll_queue", NULL};
static const char *const stage_keys[] = {"name",  "duration", "target",
                                         "count", "rate",     NULL};

static int fail(struct ld *ld, const struct trib_yaml *at, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct ld *ld, const struct trib_yaml *at, const char *field,
                const char *fmt, ...)
{
    char msg[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%d:%d: %s: %s", ld->name, at->line,
             at->col, field, msg);
    return TRIB_EINVAL;
}

/* Column of key i of 'map': trib_yaml keeps only its line, so look for the
 * key's text on that line (block mappings: at the mapping's column; flow
 * mappings: the first occurrence followed by ':'). */
static int key_col(const struct ld *ld, const struct trib_yaml *map, size_t i)
{
    const char *key = map->keys[i], *s = ld->text, *end = ld->text + ld->len;
    size_t klen = strlen(key);
    int line = 1, col, from;

    while (s < end && line < map->key_lines[i]) {
        line += *s++ == '\n';
    }
    from = map->key_lines[i] == map->line ? map->col : 1;
    for (col = 1; s < end && *s != '\n'; s++) {
        const char *k = s + (*s == '"' || *s == '\'');
        if (col >= from && klen > 0 && (size_t)(end - k) > klen &&
            memcmp(k, key, klen) == 0) {
            const char *a = k + klen + (k != s);
            while (a < end && *a == ' ') {
                a++;
            }
            if (a < end && *a == ':') {
                return col;
            }
        }
        col += ((unsigned char)*s & 0xc0) != 0x80; /* characters, not bytes */
    }
    return map->vals[i]->col;
}

/* Edit distance of short words (suggestions for misspelt keys). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, d[33], prev, tmp;

    if (la > 32 || lb > 32) {
        return 99;
    }
    for (j = 0; j <= lb; j++) {
        d[j] = j;
    }
    for (i = 1; i <= la; i++) {
        prev = d[0];
        d[0] = i;
        for (j = 1; j <= lb; j++) {
            tmp = d[j];
            d[j] =
                a[i - 1] == b[j - 1]
                    ? prev
                    : 1 + (prev < d[j] ? (prev < d[j - 1] ? prev : d[j - 1])
                                       : (d[j] < d[j - 1] ? d[j] : d[j - 1]));
            prev = tmp;
        }
    }
    return d[lb];
}

/* Fails unless every key of 'map' is in 'known'. */
static int only_keys(struct ld *ld, const struct trib_yaml *map,
                     const char *prefix, const char *const *known)
{
    char list[400], field[128], shown[48], hint[80];
    size_t i, k, len;

    for (i = 0; i < map->n; i++) {
        for (k = 0; known[k] != NULL; k++) {
            if (strcmp(map->keys[i], known[k]) == 0) {
                break;
            }
        }
        if (known[k] != NULL) {
            continue;
        }
        list[0] = hint[0] = '\0';
        for (k = 0, len = 0; known[k] != NULL; k++) {
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                    k ? ", " : "", known[k]);
            if (hint[0] == '\0' && distance(map->keys[i], known[k]) <= 2) {
                snprintf(hint, sizeof(hint), "; did you mean '%s'?", known[k]);
            }
        }
        snprintf(field, sizeof(field), "%s%s", prefix,
                 stress__show(map->keys[i], shown, sizeof(shown)));
        snprintf(ld->err, ld->errlen, "%s:%d:%d: %s: unknown key (known: %s)%s",
                 ld->name, map->key_lines[i], key_col(ld, map, i), field, list,
                 hint);
        return TRIB_EINVAL;
    }
    return 0;
}

static const char *kind_name(enum trib_yaml_kind kind)
{
    return kind == TRIB_YAML_MAP   ? "a mapping"
           : kind == TRIB_YAML_SEQ ? "a list"
                                   : "a single value";
}

static int need(struct ld *ld, const struct trib_yaml *v, const char *field,
                enum trib_yaml_kind kind)
{
    if (v->kind == kind) {
        return 0;
    }
    return fail(ld, v, field, "expected %s, got %s", kind_name(kind),
                kind_name(v->kind));
}

/* A single value through one of the shared setters. */
static int scalar(struct ld *ld, const struct trib_yaml *v, const char *field,
                  int f)
{
    char msg[384];

    if (need(ld, v, field, TRIB_YAML_SCALAR) != 0) {
        return TRIB_EINVAL;
    }
    if (stress__set(ld->p, f, v->str, msg, sizeof(msg)) != 0) {
        return fail(ld, v, field, "%s", msg);
    }
    return 0;
}

/* YAML -> JSON for job args: plain scalars are typed as YAML reads them
 * (null, booleans, integers, decimals), quoted ones are strings. */
static json_t *to_json(const struct trib_yaml *v)
{
    json_t *j;
    const char *s = v->str;
    char *end;
    size_t i;

    if (v->kind == TRIB_YAML_MAP || v->kind == TRIB_YAML_SEQ) {
        j = v->kind == TRIB_YAML_MAP ? json_object() : json_array();
        for (i = 0; i < v->n; i++) {
            json_t *c = to_json(v->vals[i]);
            if (c == NULL) {
                json_decref(j);
                return NULL;
            }
            if ((v->kind == TRIB_YAML_MAP
                     ? json_object_set_new(j, v->keys[i], c)
                     : json_array_append_new(j, c)) != 0) {
                json_decref(j); /* c is gone already */
                return NULL;
            }
        }
        return j;
    }
    if (v->quoted) {
        return json_string(s); /* NULL when not UTF-8 */
    }
    if (s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0) {
        return json_null();
    }
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        return json_boolean(s[0] == 't');
    }
    if (isdigit((unsigned char)s[s[0] == '-']) && strlen(s) < 19) {
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        if (*end == '\0' && errno == 0) {
            return json_integer(ll);
        }
        double d = strtod(s, &end);
        if (*end == '\0' && strchr(s, 'x') == NULL && isfinite(d)) {
            return json_real(d);
        }
    }
    return json_string(s);
}

static int args(struct ld *ld, const struct trib_yaml *v)
{
    char msg[384];
    json_t *j;
    int rv;

    if (v->kind == TRIB_YAML_SCALAR) {
        rv = stress__set_args_text(ld->p, v->str, msg, sizeof(msg));
    } else if (v->kind == TRIB_YAML_MAP && (j = to_json(v)) != NULL) {
        rv = stress__set_args(ld->p, j, msg, sizeof(msg));
        json_decref(j);
    } else {
        snprintf(msg, sizeof(msg), "%s",
                 v->kind == TRIB_YAML_SEQ
                     ? "expected a mapping (or a string of JSON), got a list"
                     : "not valid as JSON (text that is not UTF-8?)");
        rv = TRIB_EINVAL;
    }
    return rv != 0 ? fail(ld, v, "jobs.args", "%s", msg) : 0;
}

/* A list of scalars ("queues", "tags", "thresholds"); a single scalar is
 * taken as a one-item list where 'one' is set. */
static int
list(struct ld *ld, const struct trib_yaml *v, const char *field, int one,
     int (*add)(struct ld *, const struct trib_yaml *, char *, size_t))
{
    char f[96], msg[384];
    size_t i;

    if (one && v->kind == TRIB_YAML_SCALAR) {
        return add(ld, v, msg, sizeof(msg)) != 0 ? fail(ld, v, field, "%s", msg)
                                                 : 0;
    }
    if (need(ld, v, field, TRIB_YAML_SEQ) != 0) {
        return TRIB_EINVAL;
    }
    for (i = 0; i < v->n; i++) {
        snprintf(f, sizeof(f), "%s[%zu]", field, i);
        if (need(ld, v->vals[i], f, TRIB_YAML_SCALAR) != 0) {
            return TRIB_EINVAL;
        }
        if (add(ld, v->vals[i], msg, sizeof(msg)) != 0) {
            return fail(ld, v->vals[i], f, "%s", msg);
        }
    }
    return 0;
}

static int add_queue(struct ld *ld, const struct trib_yaml *v, char *m,
                     size_t n)
{
    return stress__add_queue(ld->p, v->str, m, n);
}
static int add_tag(struct ld *ld, const struct trib_yaml *v, char *m, size_t n)
{
    return stress__add_tag(ld->p, v->str, m, n);
}
static int add_threshold(struct ld *ld, const struct trib_yaml *v, char *m,
                         size_t n)
{
    return stress__add_threshold(ld->p, v->str, v->line, m, n);
}

static int jobs(struct ld *ld, const struct trib_yaml *m)
{
    const struct trib_yaml *q = trib_yaml_get(m, "queue"),
                           *qs = trib_yaml_get(m, "queues");
    char field[64];
    size_t i;
    int rv = 0, f;

    if (need(ld, m, "jobs", TRIB_YAML_MAP) != 0 ||
        only_keys(ld, m, "jobs.", jobs_keys) != 0) {
        return TRIB_EINVAL;
    }
    if (q != NULL && qs != NULL) {
        return fail(ld, qs, "jobs.queues",
                    "give 'queue' or 'queues', not both");
    }
    for (i = 0; i < m->n && rv == 0; i++) {
        const struct trib_yaml *v = m->vals[i];
        snprintf(field, sizeof(field), "jobs.%s", m->keys[i]);
        if (strcmp(m->keys[i], "args") == 0) {
            rv = args(ld, v);
        } else if (v == q || v == qs) {
            ld->p->nqueues = 0;
            rv = list(ld, v, field, 1, add_queue);
        } else if (strcmp(m->keys[i], "tags") == 0) {
            ld->p->ntags = 0;
            rv = list(ld, v, field, 1, add_tag);
        } else if ((f = stress__field_by_key("jobs", m->keys[i])) >= 0) {
            rv = scalar(ld, v, field, f);
        }
    }
    return rv;
}

/* A mapping whose keys are all shared settings of 'section'. */
static int settings(struct ld *ld, const struct trib_yaml *m,
                    const char *section, const char *const *known)
{
    char field[64], prefix[32];
    size_t i;

    snprintf(prefix, sizeof(prefix), "%s.", section);
    if (need(ld, m, section, TRIB_YAML_MAP) != 0 ||
        only_keys(ld, m, prefix, known) != 0) {
        return TRIB_EINVAL;
    }
    for (i = 0; i < m->n; i++) {
        snprintf(field, sizeof(field), "%s%s", prefix, m->keys[i]);
        if (scalar(ld, m->vals[i], field,
                   stress__field_by_key(section, m->keys[i])) != 0) {
            return TRIB_EINVAL;
        }
    }
    return 0;
}

static int mixed(struct ld *ld, const struct trib_yaml *v)
{
    if (v->kind == TRIB_YAML_MAP) {
        ld->p->mixed = 1;
        return settings(ld, v, "mixed", mixed_keys);
    }
    if (v->kind == TRIB_YAML_SCALAR &&
        (strcmp(v->str, "true") == 0 || strcmp(v->str, "false") == 0)) {
        ld->p->mixed = v->str[0] == 't';
        return 0;
    }
    return fail(ld, v, "mixed",
                "expected true, false or a mapping {notify_queue, poll_queue}");
}

static int stage(struct ld *ld, const struct trib_yaml *m, size_t idx,
                 struct stress_stage *st)
{
    const struct trib_yaml *nm = trib_yaml_get(m, "name"),
                           *du = trib_yaml_get(m, "duration"),
                           *ta = trib_yaml_get(m, "target"),
                           *co = trib_yaml_get(m, "count"),
                           *ra = trib_yaml_get(m, "rate");
    char field[64], f[80], msg[384];

    snprintf(field, sizeof(field), "stages[%zu]", idx);
    if (m->kind == TRIB_YAML_SCALAR) { /* "30s:500", "warm-up=2000@100" */
        return stress__stage_spec(m->str, st, msg, sizeof(msg)) != 0
                   ? fail(ld, m, field, "%s", msg)
                   : 0;
    }
    memset(st, 0, sizeof(*st));
    if (need(ld, m, field, TRIB_YAML_MAP) != 0) {
        return TRIB_EINVAL;
    }
    snprintf(f, sizeof(f), "%s.", field);
    if (only_keys(ld, m, f, stage_keys) != 0) {
        return TRIB_EINVAL;
    }
    if (du != NULL && co != NULL) {
        return fail(ld, co, field,
                    "give duration + target (a ramp) or count [+ rate] (a "
                    "count stage), not both");
    }
    if (du == NULL && co == NULL) {
        return fail(ld, m, field,
                    "expected duration + target (a ramp) or count [+ rate] (a "
                    "count stage)");
    }
    if (du != NULL && ta == NULL) {
        return fail(ld, m, field, "a ramp needs 'target' (its end rate)");
    }
    if (co != NULL && ta != NULL) {
        return fail(ld, ta, f,
                    "target: a count stage has 'rate', not "
                    "'target'");
    }
    if (du != NULL && ra != NULL) {
        return fail(ld, ra, field,
                    "a ramp has no 'rate': it goes from the previous stage's "
                    "rate to 'target'");
    }
    {
        const struct trib_yaml *parts[] = {nm, du, ta, co, ra};
        const char *keys[] = {"name", "duration", "target", "count", "rate"};
        size_t k;
        for (k = 0; k < 5; k++) {
            snprintf(f, sizeof(f), "%s.%s", field, keys[k]);
            if (parts[k] != NULL &&
                need(ld, parts[k], f, TRIB_YAML_SCALAR) != 0) {
                return TRIB_EINVAL;
            }
        }
    }
    if (nm != NULL) {
        if (stress__stage_name(nm->str, msg, sizeof(msg)) != 0) {
            snprintf(f, sizeof(f), "%s.name", field);
            return fail(ld, nm, f, "%s", msg);
        }
        snprintf(st->name, sizeof(st->name), "%s", nm->str);
    }
    if (du != NULL) {
        if (stress__duration(du->str, 1, STRESS_DELAY_MAX, &st->duration_us,
                             msg, sizeof(msg)) != 0) {
            snprintf(f, sizeof(f), "%s.duration", field);
            return fail(ld, du, f, "%s", msg);
        }
        if (stress__rate(ta->str, &st->target, msg, sizeof(msg)) != 0) {
            snprintf(f, sizeof(f), "%s.target", field);
            return fail(ld, ta, f, "%s", msg);
        }
    } else {
        if (stress__count(co->str, &st->count, msg, sizeof(msg)) != 0) {
            snprintf(f, sizeof(f), "%s.count", field);
            return fail(ld, co, f, "%s", msg);
        }
        if (ra != NULL && stress__rate(ra->str, &st->rate, msg, sizeof(msg))) {
            snprintf(f, sizeof(f), "%s.rate", field);
            return fail(ld, ra, f, "%s", msg);
        }
    }
    return 0;
}

static int stages(struct ld *ld, const struct trib_yaml *v)
{
    struct stress_stage st;
    char msg[128];
    size_t i;

    if (need(ld, v, "stages", TRIB_YAML_SEQ) != 0) {
        return TRIB_EINVAL;
    }
    if (v->n == 0) {
        return fail(ld, v, "stages", "expected at least one stage");
    }
    ld->p->nstages = 0;
    for (i = 0; i < v->n; i++) {
        if (stage(ld, v->vals[i], i, &st) != 0) {
            return TRIB_EINVAL;
        }
        st.line = v->vals[i]->line;
        if (stress__add_stage(ld->p, &st, msg, sizeof(msg)) != 0) {
            return fail(ld, v->vals[i], "stages", "%s", msg);
        }
    }
    return 0;
}

/* count + rate: a simple run, one count stage. */
static int simple(struct ld *ld, const struct trib_yaml *co,
                  const struct trib_yaml *ra)
{
    struct stress_stage st;
    char msg[384];

    memset(&st, 0, sizeof(st));
    if (need(ld, co, "count", TRIB_YAML_SCALAR) != 0) {
        return TRIB_EINVAL;
    }
    if (stress__count(co->str, &st.count, msg, sizeof(msg)) != 0) {
        return fail(ld, co, "count", "%s", msg);
    }
    if (ra != NULL) {
        if (need(ld, ra, "rate", TRIB_YAML_SCALAR) != 0) {
            return TRIB_EINVAL;
        }
        if (stress__rate(ra->str, &st.rate, msg, sizeof(msg)) != 0) {
            return fail(ld, ra, "rate", "%s", msg);
        }
    }
    st.line = co->line;
    ld->p->nstages = 0;
    return stress__add_stage(ld->p, &st, msg, sizeof(msg));
}

static int plan(struct ld *ld, const struct trib_yaml *root)
{
    const struct trib_yaml *co = trib_yaml_get(root, "count"),
                           *ra = trib_yaml_get(root, "rate"),
                           *sg = trib_yaml_get(root, "stages");
    size_t i;
    int rv = 0, f;

    if (root->kind != TRIB_YAML_MAP) {
        return fail(
            ld, root, "plan",
            "expected a mapping of plan keys (name, jobs, stages, ...)");
    }
    if (only_keys(ld, root, "", top_keys) != 0) {
        return TRIB_EINVAL;
    }
    if (co != NULL && sg != NULL) {
        return fail(ld, sg, "stages",
                    "give 'count' (+ 'rate') or 'stages', not both");
    }
    if (ra != NULL && co == NULL) {
        return fail(ld, ra, "rate",
                    "'rate' goes with 'count' (with 'stages', each stage has "
                    "its own rate)");
    }
    for (i = 0; i < root->n && rv == 0; i++) {
        const char *k = root->keys[i];
        const struct trib_yaml *v = root->vals[i];
        if (strcmp(k, "jobs") == 0) {
            rv = jobs(ld, v);
        } else if (strcmp(k, "mixed") == 0) {
            rv = mixed(ld, v);
        } else if (strcmp(k, "insert") == 0) {
            rv = settings(ld, v, "insert", insert_keys);
        } else if (v == co) {
            rv = simple(ld, co, ra);
        } else if (v == sg) {
            rv = stages(ld, v);
        } else if (strcmp(k, "thresholds") == 0) {
            ld->p->nthresholds = 0;
            rv = list(ld, v, "thresholds", 0, add_threshold);
        } else if ((f = stress__field_by_key("", k)) >= 0) {
            rv = scalar(ld, v, k, f);
        }
    }
    return rv;
}

int stress_plan_parse(struct stress_plan *p, const char *text, size_t len,
                      const char *name, char *err, size_t errlen)
{
    struct ld ld = {p, name, text, len, err, errlen};
    struct trib_yaml *root = NULL;
    char inner[384];
    int rv;

    if (trib_yaml_parse(text, len, &root, inner, sizeof(inner)) != 0) {
        snprintf(err, errlen, "%s:%s", name, inner);
        return TRIB_EINVAL;
    }
    trib_free(p->file);
    p->file = trib_strdup(name);
    rv = plan(&ld, root);
    trib_yaml_free(root);
    return rv;
}

int stress_plan_load(struct stress_plan *p, const char *path, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text;
    size_t len;
    int rv;

    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open the plan: %s", path,
                 strerror(errno));
        return TRIB_EIO;
    }
    text = trib_malloc(PLAN_FILE_MAX + 1);
    len = fread(text, 1, PLAN_FILE_MAX + 1, f);
    if (ferror(f) || len > PLAN_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path,
                 ferror(f) ? "cannot read the plan"
                           : "the plan is larger than 1 MiB");
        rv = ferror(f) ? TRIB_EIO : TRIB_EINVAL;
    } else {
        rv = stress_plan_parse(p, text, len, path, err, errlen);
    }
    fclose(f);
    trib_free(text);
    return rv;
}
