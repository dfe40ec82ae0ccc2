/*
 * stress_res.c -- resource monitoring during a stress run (stress_res.h):
 * the per-second series, the agents from the coordinator's `nodes`
 * document, and the "resources" object (docs/REPORT.md). PostgreSQL's side
 * is stress_res_pg.c.
 */
#include "stress_res.h"
#include "stress_res_int.h"

#include "control_client.h"
#include "trib_buf.h"
#include "trib_err.h"
#include "trib_mem.h"
#include "trib_pg.h"
#include "trib_time.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_SECONDS (7 * 86400) /* a sample later than this is dropped */
#define MAX_AGENTS  256

static const struct {
    const char *key;
    int integral;
} ag_keys[AG_NSER] = {
    {"cpu_pct", 0},   {"rss_mib", 0},       {"threads", 1},
    {"db_conns", 1},  {"outbox_events", 1}, {"outbox_bytes", 1},
    {"in_flight", 1},
};

/* ------------------------------------------------------------ series */

double *stress_res__at(struct sr_ser *s, size_t i)
{
    size_t cap = s->cap ? s->cap : 64;

    if (i >= s->cap) {
        while (cap <= i) {
            cap *= 2;
        }
        s->v = trib_realloc(s->v, cap * sizeof(*s->v));
        s->cap = cap;
    }
    while (s->n <= i) {
        s->v[s->n++] = NAN;
    }
    return &s->v[i];
}

double stress_res__get(const struct sr_ser *s, size_t i)
{
    return i < s->n ? s->v[i] : NAN;
}

void stress_res__ser_fini(struct sr_ser *s)
{
    trib_free(s->v);
    memset(s, 0, sizeof(*s));
}

json_t *stress_res__num(double v, int integral)
{
    double r;

    if (isnan(v) || isinf(v)) {
        return json_null();
    }
    if (integral) {
        /* beyond int64 llround is undefined: no count is that large */
        return fabs(v) < 9.2e18 ? json_integer((json_int_t)llround(v))
                                : json_null();
    }
    r = round(v * 1000.0) / 1000.0;        /* inf for |v| > 1.8e305 */
    return json_real(isfinite(r) ? r : v); /* never NULL: jansson refuses
                                              NaN and infinities */
}

json_t *stress_res__ser_json(const struct sr_ser *s, size_t nsec, int integral)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; i < nsec; i++) {
        json_array_append_new(a,
                              stress_res__num(stress_res__get(s, i), integral));
    }
    return a;
}

json_t *stress_res__str(const char *s)
{
    json_t *v = json_string(s);
    char *copy, *p;

    if (v != NULL) {
        return v;
    }
    /* not UTF-8 (a server message in another encoding): keep ASCII */
    copy = trib_strdup(s);
    for (p = copy; *p; p++) {
        if ((unsigned char)*p >= 0x80) {
            *p = '?';
        }
    }
    v = json_string(copy);
    trib_free(copy);
    return v;
}

void *stress_res__grow(void *p, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap ? *cap : 8;

    if (need <= *cap) {
        return p;
    }
    while (c < need) {
        c *= 2;
    }
    p = trib_realloc(p, c * elem);
    memset((char *)p + *cap * elem, 0, (c - *cap) * elem);
    *cap = c;
    return p;
}

void stress_res__err(struct stress_res *r, const char *fmt, ...)
{
    char text[512], *nl;
    va_list ap;
    size_t i;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    /* one line: libpq's messages end with a newline, some span several */
    while ((nl = strchr(text, '\n')) != NULL) {
        if (nl[1] == '\0') {
            *nl = '\0';
        } else {
            *nl = ' ';
        }
    }
    for (i = 0; i < r->nerrors; i++) {
        if (strcmp(r->errors[i], text) == 0) {
            return;
        }
    }
    if (r->nerrors < SR_MAX_ERRORS) {
        r->errors[r->nerrors++] = trib_strdup(text);
    }
}

long stress_res__second(struct stress_res *r, int64_t now_us)
{
    int64_t s = now_us > r->t0_us ? (now_us - r->t0_us) / TRIB_US_PER_S : 0;

    if (s >= MAX_SECONDS) {
        stress_res__err(r, "sample at second %lld dropped (series end at %d s)",
                        (long long)s, MAX_SECONDS);
        return -1;
    }
    if ((size_t)s + 1 > r->nsec) {
        r->nsec = (size_t)s + 1;
    }
    return (long)s;
}

/* ------------------------------------------------------------ agents */

static struct sr_agent *agent_get(struct stress_res *r, const char *node)
{
    size_t i;

    for (i = 0; i < r->nagents; i++) {
        if (strcmp(r->agents[i].node, node) == 0) {
            return &r->agents[i];
        }
    }
    if (r->nagents >= MAX_AGENTS) {
        stress_res__err(r, "nodes: more than %d agents: '%s' not sampled",
                        MAX_AGENTS, node);
        return NULL;
    }
    r->agents = stress_res__grow(r->agents, &r->cagents, r->nagents + 1,
                                 sizeof(*r->agents));
    r->agents[r->nagents].node = trib_strdup(node);
    r->agents[r->nagents].pct = NAN;
    return &r->agents[r->nagents++];
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static double jnum(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void set_mode(struct stress_res *r, const char *id, const char *mode)
{
    struct sr_mode *m;
    size_t i;

    for (i = 0; i < r->nmodes; i++) {
        m = &r->modes[i];
        if (strcmp(m->id, id) == 0) {
            if (strcmp(m->mode, mode) != 0) {
                trib_free(m->mode);
                m->mode = trib_strdup(mode);
            }
            return;
        }
    }
    if (r->nmodes >= SR_MAX_CLIENTS) {
        return;
    }
    r->modes = stress_res__grow(r->modes, &r->cmodes, r->nmodes + 1,
                                sizeof(*r->modes));
    r->modes[r->nmodes].id = trib_strdup(id);
    r->modes[r->nmodes].mode = trib_strdup(mode);
    r->nmodes++;
}

/* CPU % from the growth of user + system CPU between two heartbeats (the
 * figures are the agent's, taken when it sent the heartbeat; the interval
 * is the coordinator's receive times). Until the next heartbeat the last
 * rate holds; a new boot starts over. */
static double agent_cpu(struct sr_agent *a, const json_t *node,
                        const json_t *sample)
{
    const char *boot = jstr(node, "boot_id");
    const char *hb = jstr(node, "last_heartbeat");
    double cpu = jnum(sample, "cpu_user_s") + jnum(sample, "cpu_sys_s");
    int64_t hb_us = 0;

    if (boot == NULL || a->boot == NULL || strcmp(boot, a->boot) != 0) {
        trib_free(a->boot);
        a->boot = trib_strdup(boot);
        a->have_prev = 0;
        a->pct = NAN;
    }
    if (hb == NULL || trib_pgtime_parse(hb, &hb_us) != 0 || isnan(cpu)) {
        return NAN;
    }
    if (a->have_prev && hb_us > a->prev_hb_us) {
        a->pct = (cpu - a->prev_cpu_s) * 100.0 /
                 ((double)(hb_us - a->prev_hb_us) / 1e6);
        if (a->pct < 0) {
            a->pct = NAN;
        }
    }
    if (!a->have_prev || hb_us > a->prev_hb_us) {
        a->prev_cpu_s = cpu;
        a->prev_hb_us = hb_us;
        a->have_prev = 1;
    }
    return a->pct;
}

static void agent_sample(struct stress_res *r, size_t sec, const json_t *node)
{
    const json_t *sample = json_object_get(node, "sample");
    const json_t *clients = json_object_get(node, "clients"), *c;
    const char *id = jstr(node, "node"), *live = jstr(node, "liveness");
    const char *host = jstr(node, "host"), *cid, *mode;
    struct sr_agent *a;
    double in_flight = 0, x;
    size_t i;

    if (id == NULL) {
        stress_res__err(r, "nodes: a node without a \"node\" id");
        return;
    }
    json_array_foreach(clients, i, c)
    {
        cid = jstr(c, "id");
        mode = jstr(c, "mode");
        if (cid != NULL && mode != NULL) {
            set_mode(r, cid, mode);
        }
        x = jnum(c, "in_flight");
        in_flight += isnan(x) ? 0 : x;
    }
    a = agent_get(r, id);
    if (a == NULL) {
        return;
    }
    if (host != NULL && (a->host == NULL || strcmp(a->host, host) != 0)) {
        trib_free(a->host);
        a->host = trib_strdup(host);
    }
    /* Only a live agent's figures are current: a late, missing or stopped
     * one still shows its last heartbeat's. */
    if (!json_is_object(sample) || live == NULL || strcmp(live, "alive") != 0) {
        return;
    }
    *stress_res__at(&a->s[AG_CPU], sec) = agent_cpu(a, node, sample);
    *stress_res__at(&a->s[AG_RSS], sec) =
        jnum(sample, "rss_bytes") / (1024.0 * 1024.0);
    *stress_res__at(&a->s[AG_THREADS], sec) = jnum(sample, "threads");
    *stress_res__at(&a->s[AG_CONNS], sec) = jnum(sample, "db_conns");
    *stress_res__at(&a->s[AG_OB_EVENTS], sec) = jnum(sample, "outbox_events");
    *stress_res__at(&a->s[AG_OB_BYTES], sec) = jnum(sample, "outbox_bytes");
    *stress_res__at(&a->s[AG_IN_FLIGHT], sec) = in_flight;
}

void stress_res__feed_nodes(struct stress_res *r, int64_t now_us, json_t *doc)
{
    const json_t *nodes = json_object_get(doc, "nodes"), *n;
    long sec;
    size_t i;

    if (!json_is_array(nodes)) {
        stress_res__err(r, "nodes: the reply has no \"nodes\" array");
        json_decref(doc);
        return;
    }
    sec = stress_res__second(r, now_us);
    if (sec >= 0) {
        json_array_foreach(nodes, i, n)
        {
            agent_sample(r, (size_t)sec, n);
        }
    }
    json_decref(r->nodes);
    r->nodes = doc;
}

static void sample_nodes(struct stress_res *r)
{
    struct trib_ctl_err e;
    json_t *doc = NULL;
    int rv;

    rv = trib_ctl_query(r->ctl, "nodes", NULL, 0, 0, NULL, &doc, &e);
    if (rv != 0) {
        stress_res__err(r, "nodes: %s", e.text);
        return;
    }
    stress_res__feed_nodes(r, trib_now_us(), doc);
}

/* ------------------------------------------------------------ public */

int stress_res_open(PGconn *db, struct trib_ctl *ctl, int64_t t0_us,
                    struct stress_res **out)
{
    struct stress_res *r;

    *out = NULL;
    if (t0_us <= 0) {
        return TRIB_EINVAL;
    }
    r = TRIB_NEW(struct stress_res);
    r->db = db;
    r->ctl = ctl;
    r->t0_us = t0_us;
    r->table = trib_strdup("river_job");
    if (db != NULL) {
        stress_res__pg_open(r);
    }
    *out = r;
    return 0;
}

void stress_res_schema(struct stress_res *r, const char *schema)
{
    struct trib_buf b = TRIB_BUF_INIT;

    if (schema != NULL && schema[0] != '\0') {
        trib_pg_quote_ident(&b, schema);
        trib_buf_putc(&b, '.');
    }
    trib_buf_puts(&b, "river_job");
    trib_free(r->table);
    r->table = trib_buf_steal(&b);
}

void stress_res_free(struct stress_res *r)
{
    size_t i;
    int k;

    if (r == NULL) {
        return;
    }
    for (i = 0; i < r->nagents; i++) {
        trib_free(r->agents[i].node);
        trib_free(r->agents[i].host);
        trib_free(r->agents[i].boot);
        for (k = 0; k < AG_NSER; k++) {
            stress_res__ser_fini(&r->agents[i].s[k]);
        }
    }
    trib_free(r->agents);
    for (i = 0; i < r->nmodes; i++) {
        trib_free(r->modes[i].id);
        trib_free(r->modes[i].mode);
    }
    trib_free(r->modes);
    stress_res__pg_free(r);
    for (i = 0; i < r->nerrors; i++) {
        trib_free(r->errors[i]);
    }
    json_decref(r->nodes);
    trib_free(r->table);
    trib_free(r);
}

void stress_res_sample(struct stress_res *r)
{
    if (r->ctl != NULL) {
        sample_nodes(r);
    }
    if (r->db != NULL) {
        stress_res__sample_pg(r, trib_now_us());
    }
}

const json_t *stress_res_nodes(const struct stress_res *r)
{
    return r->nodes;
}

json_t *stress_res_json(const struct stress_res *r)
{
    json_t *doc = json_object(), *t = json_array(), *agents = json_array();
    json_t *errors = json_array(), *o;
    const struct sr_agent *a;
    size_t i;
    int k;

    for (i = 0; i < r->nsec; i++) {
        json_array_append_new(t, json_integer((json_int_t)i));
    }
    for (i = 0; i < r->nagents; i++) {
        a = &r->agents[i];
        o = json_object();
        json_object_set_new(o, "node", json_string(a->node));
        json_object_set_new(o, "host",
                            a->host ? json_string(a->host) : json_null());
        for (k = 0; k < AG_NSER; k++) {
            json_object_set_new(
                o, ag_keys[k].key,
                stress_res__ser_json(&a->s[k], r->nsec, ag_keys[k].integral));
        }
        json_array_append_new(agents, o);
    }
    for (i = 0; i < r->nerrors; i++) {
        json_array_append_new(errors, stress_res__str(r->errors[i]));
    }
    json_object_set_new(doc, "interval_s", json_integer(1));
    json_object_set_new(doc, "t", t);
    json_object_set_new(doc, "agents", agents);
    json_object_set_new(doc, "postgres",
                        r->db ? stress_res__pg_json(r) : json_null());
    json_object_set_new(doc, "errors", errors);
    return doc;
}
