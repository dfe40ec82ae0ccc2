/*
 * stress_res_pg.c -- PostgreSQL's side of resource monitoring: one
 * statistics query a sample (connections by state and application_name,
 * lock waits, commits and rollbacks, river_job's size and tuples), the CPU
 * of agent clients' backends from /proc when the server runs on this
 * machine, and the per-fetch-mode database load (docs/REPORT.md "mixed").
 */
#include "stress_res.h"
#include "stress_res_int.h"

#include "trib_err.h"
#include "trib_mem.h"
#include "trib_pg.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_APPS  64 /* application names beyond: counted as OTHER_APP */
#define OTHER_APP "(other)"

static const struct {
    const char *key;
    int integral;
} pg_keys[PG_NSER] = {
    {"conns_active", 1},    {"conns_idle", 1},    {"conns_idle_in_tx", 1},
    {"lock_waits", 1},      {"commits_per_s", 0}, {"rollbacks_per_s", 0},
    {"river_job_bytes", 1}, {"live_tuples", 1},   {"dead_tuples", 1},
};

/*
 * One statement, one round trip (~1-2 ms): the sessions of this database
 * but our own, grouped by application_name (pids listed for agent
 * clients), beside the database's transaction counters and river_job's
 * size and tuple counts ($1: river_job, maybe schema-qualified; a missing
 * table gives nulls). pg_stat_database and pg_stat_all_tables are
 * PostgreSQL's cumulative statistics: backends report them at most once a
 * second, so commits_per_s is smoothed over about a second.
 */
static const char sample_sql[] =
    "WITH a AS ("
    " SELECT pid, coalesce(application_name, '') AS app, state,"
    "        wait_event_type"
    "   FROM pg_stat_activity"
    "  WHERE datname = current_database() AND backend_type = 'client backend'"
    "    AND pid <> pg_backend_pid()"
    "), g AS ("
    " SELECT app, count(*) AS n,"
    "        count(*) FILTER (WHERE state = 'active') AS act,"
    "        count(*) FILTER (WHERE wait_event_type = 'Lock') AS lk,"
    "        CASE WHEN app LIKE '" SR_APP_PREFIX "%' "
    "             THEN string_agg(pid::text, ' ') END AS pids"
    "   FROM a GROUP BY app"
    ")"
    "SELECT (SELECT count(*) FILTER (WHERE state = 'active') FROM a),"
    "       (SELECT count(*) FILTER (WHERE state = 'idle') FROM a),"
    "       (SELECT count(*) FILTER (WHERE state LIKE 'idle in transaction%')"
    "          FROM a),"
    "       (SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') FROM a),"
    "       d.xact_commit, d.xact_rollback, pg_total_relation_size(t.oid),"
    "       s.n_live_tup, s.n_dead_tup,"
    "       (SELECT json_agg(json_build_array(app, n, act, lk, pids)"
    "                        ORDER BY app) FROM g)"
    "  FROM pg_stat_database d"
    " CROSS JOIN (SELECT to_regclass($1) AS oid) t"
    "  LEFT JOIN pg_stat_all_tables s ON s.relid = t.oid"
    " WHERE d.datname = current_database()";

enum {
    C_ACTIVE,
    C_IDLE,
    C_IDLE_TX,
    C_LOCKS,
    C_COMMIT,
    C_ROLLBACK,
    C_BYTES,
    C_LIVE,
    C_DEAD,
    C_APPS,
    C_N
};

/* ------------------------------------------------------------ /proc */

int stress_res__proc_ticks(int pid, uint64_t *ticks, int postgres_only)
{
    char path[64], buf[1024];
    const char *open_paren, *p;
    unsigned long long ut, st;
    ssize_t n;
    int fd, field;

    if (pid <= 0) {
        return TRIB_ENOENT;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return TRIB_ENOENT;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return TRIB_ENOENT;
    }
    buf[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses,
     * so fields count from the last ')'; utime and stime are fields 14
     * and 15 (proc(5)). */
    open_paren = strchr(buf, '(');
    p = strrchr(buf, ')');
    if (open_paren == NULL || p == NULL || p < open_paren) {
        return TRIB_EPROTO;
    }
    if (postgres_only && (p - open_paren - 1 != 8 ||
                          memcmp(open_paren + 1, "postgres", 8) != 0)) {
        return TRIB_ENOENT;
    }
    for (field = 3; field <= 14; field++) { /* to the space before 14 */
        p = strchr(p + 1, ' ');
        if (p == NULL) {
            return TRIB_EPROTO;
        }
    }
    if (sscanf(p, " %llu %llu", &ut, &st) != 2) {
        return TRIB_EPROTO;
    }
    *ticks = (uint64_t)(ut + st);
    return 0;
}

/* 1 when the server's backends are processes of this machine: the host
 * is a Unix socket or a loopback address, and /proc/<our backend>/stat
 * names a postgres process. */
static int local_backends(struct stress_res *r)
{
    const char *host = PQhost(r->db);
    PGresult *res;
    uint64_t ticks;
    int ok = 0;

    if (host != NULL && host[0] != '\0' && host[0] != '/' &&
        strcmp(host, "localhost") != 0 && strncmp(host, "127.", 4) != 0 &&
        strcmp(host, "::1") != 0) {
        return 0;
    }
    res = PQexec(r->db, "SELECT pg_backend_pid()");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        ok =
            stress_res__proc_ticks(atoi(PQgetvalue(res, 0, 0)), &ticks, 1) == 0;
    }
    PQclear(res);
    return ok;
}

void stress_res__pg_open(struct stress_res *r)
{
    r->clk_tck = sysconf(_SC_CLK_TCK);
    r->cpu_ok = r->clk_tck > 0 && local_backends(r);
}

/* CPU seconds a backend used since the previous sample. A backend first
 * seen after the first sample started after it: all its CPU counts. */
static double pid_cpu(struct stress_res *r, int pid)
{
    uint64_t ticks, prev;
    size_t i;

    if (stress_res__proc_ticks(pid, &ticks, 0) != 0) {
        return 0;
    }
    for (i = 0; i < r->npids; i++) {
        if (r->pids[i].pid == pid) {
            break;
        }
    }
    if (i == r->npids) {
        r->pids = stress_res__grow(r->pids, &r->cpids, r->npids + 1,
                                   sizeof(*r->pids));
        r->npids++;
        r->pids[i].pid = pid;
        prev = r->have_pg ? 0 : ticks;
    } else {
        prev = r->pids[i].ticks <= ticks ? r->pids[i].ticks : 0; /* reused */
    }
    r->pids[i].ticks = ticks;
    r->pids[i].gen = r->gen;
    return (double)(ticks - prev) / (double)r->clk_tck;
}

static void prune_pids(struct stress_res *r)
{
    size_t i, k = 0;

    for (i = 0; i < r->npids; i++) {
        if (r->pids[i].gen == r->gen) {
            r->pids[k++] = r->pids[i];
        }
    }
    r->npids = k;
}

/* ------------------------------------------------------------ apps */

static struct sr_app *app_get(struct stress_res *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->napps; i++) {
        if (strcmp(r->apps[i].name, name) == 0) {
            return &r->apps[i];
        }
    }
    if (r->napps >= MAX_APPS - 1 && strcmp(name, OTHER_APP) != 0) {
        return app_get(r, OTHER_APP);
    }
    r->apps =
        stress_res__grow(r->apps, &r->capps, r->napps + 1, sizeof(*r->apps));
    r->apps[r->napps].name = trib_strdup(name);
    return &r->apps[r->napps++];
}

static struct sr_client *client_get(struct stress_res *r, const char *shown)
{
    size_t i;

    for (i = 0; i < r->nclients; i++) {
        if (strcmp(r->clients[i].shown, shown) == 0) {
            return &r->clients[i];
        }
    }
    if (r->nclients >= SR_MAX_CLIENTS) {
        return NULL;
    }
    r->clients = stress_res__grow(r->clients, &r->cclients, r->nclients + 1,
                                  sizeof(*r->clients));
    r->clients[r->nclients].shown = trib_strdup(shown);
    return &r->clients[r->nclients++];
}

static void add(struct sr_ser *s, size_t sec, double x)
{
    double *p = stress_res__at(s, sec);

    *p = isnan(*p) ? x : *p + x;
}

static double ival(const json_t *row, size_t i)
{
    const json_t *v = json_array_get(row, i);

    return json_is_number(v) ? json_number_value(v) : 0;
}

/* One application_name group: [app, n, active, lock waits, pids|null]. */
static void app_row(struct stress_res *r, size_t sec, const json_t *row)
{
    const char *name = json_string_value(json_array_get(row, 0));
    const char *pids = json_string_value(json_array_get(row, 4));
    struct sr_app *a;
    struct sr_client *c = NULL;
    char *end;
    long pid;

    if (name == NULL) {
        return;
    }
    a = app_get(r, name);
    add(&a->conns, sec, ival(row, 1));
    add(&a->active, sec, ival(row, 2));
    add(&a->locks, sec, ival(row, 3));
    if (strncmp(name, SR_APP_PREFIX, strlen(SR_APP_PREFIX)) != 0 ||
        (c = client_get(r, name)) == NULL) {
        return;
    }
    add(&c->conns, sec, ival(row, 1));
    add(&c->active, sec, ival(row, 2));
    while (r->cpu_ok && pids != NULL && *pids != '\0') {
        pid = strtol(pids, &end, 10);
        if (end == pids) {
            break;
        }
        c->cpu_s += pid_cpu(r, (int)pid);
        pids = end;
    }
}

static double cell(const PGresult *res, int col)
{
    return PQgetisnull(res, 0, col) ? NAN
                                    : strtod(PQgetvalue(res, 0, col), NULL);
}

/* Counter growth per second since the previous sample; NAN without one or
 * when the counter went back (statistics reset). */
static double rate(double now, int64_t prev, double dt_s)
{
    if (isnan(now) || dt_s <= 0 || now < (double)prev) {
        return NAN;
    }
    return (now - (double)prev) / dt_s;
}

static void record(struct stress_res *r, size_t sec, int64_t now_us,
                   const PGresult *res)
{
    static const int direct[][2] = {
        {PG_ACTIVE, C_ACTIVE}, {PG_IDLE, C_IDLE},   {PG_IDLE_TX, C_IDLE_TX},
        {PG_LOCKS, C_LOCKS},   {PG_BYTES, C_BYTES}, {PG_LIVE, C_LIVE},
        {PG_DEAD, C_DEAD},
    };
    double commit = cell(res, C_COMMIT), rollback = cell(res, C_ROLLBACK);
    double dt = r->have_pg ? (double)(now_us - r->prev_pg_us) / 1e6 : 0;
    json_error_t jerr;
    json_t *apps = NULL, *row;
    size_t i;

    for (i = 0; i < sizeof(direct) / sizeof(direct[0]); i++) {
        *stress_res__at(&r->pg[direct[i][0]], sec) = cell(res, direct[i][1]);
    }
    *stress_res__at(&r->pg[PG_COMMITS], sec) = rate(commit, r->prev_commit, dt);
    *stress_res__at(&r->pg[PG_ROLLBACKS], sec) =
        rate(rollback, r->prev_rollback, dt);
    /* Every name seen before has 0 connections now unless listed. */
    for (i = 0; i < r->napps; i++) {
        *stress_res__at(&r->apps[i].conns, sec) = 0;
        *stress_res__at(&r->apps[i].active, sec) = 0;
        *stress_res__at(&r->apps[i].locks, sec) = 0;
    }
    for (i = 0; i < r->nclients; i++) {
        *stress_res__at(&r->clients[i].conns, sec) = 0;
        *stress_res__at(&r->clients[i].active, sec) = 0;
    }
    if (!PQgetisnull(res, 0, C_APPS)) {
        apps = json_loads(PQgetvalue(res, 0, C_APPS), 0, &jerr);
        if (apps == NULL) {
            stress_res__err(r, "postgres: sessions by name: %s", jerr.text);
        }
    }
    r->gen++;
    json_array_foreach(apps, i, row)
    {
        app_row(r, sec, row);
    }
    json_decref(apps);
    prune_pids(r);
    if (!isnan(commit) && !isnan(rollback)) {
        r->prev_commit = (int64_t)commit;
        r->prev_rollback = (int64_t)rollback;
        r->prev_pg_us = now_us;
        r->have_pg = 1;
    }
}

void stress_res__sample_pg(struct stress_res *r, int64_t now_us)
{
    const char *params[1] = {r->table};
    PGresult *res;
    long sec;

    res = PQexecParams(r->db, sample_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        stress_res__err(r, "postgres: %s", PQerrorMessage(r->db));
        goto done;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != C_N) {
        stress_res__err(r, "postgres: the statistics query returned %d rows",
                        PQntuples(res));
        goto done;
    }
    sec = stress_res__second(r, now_us);
    if (sec >= 0) {
        record(r, (size_t)sec, now_us, res);
    }
done:
    PQclear(res);
}

void stress_res__pg_free(struct stress_res *r)
{
    size_t i;
    int k;

    for (k = 0; k < PG_NSER; k++) {
        stress_res__ser_fini(&r->pg[k]);
    }
    for (i = 0; i < r->napps; i++) {
        trib_free(r->apps[i].name);
        stress_res__ser_fini(&r->apps[i].conns);
        stress_res__ser_fini(&r->apps[i].active);
        stress_res__ser_fini(&r->apps[i].locks);
    }
    trib_free(r->apps);
    for (i = 0; i < r->nclients; i++) {
        trib_free(r->clients[i].shown);
        stress_res__ser_fini(&r->clients[i].conns);
        stress_res__ser_fini(&r->clients[i].active);
    }
    trib_free(r->clients);
    trib_free(r->pids);
}

json_t *stress_res__pg_json(const struct stress_res *r)
{
    json_t *o = json_object(), *apps = json_array(), *a;
    const struct sr_app *ap;
    size_t i;
    int k;

    for (k = 0; k < PG_NSER; k++) {
        json_object_set_new(
            o, pg_keys[k].key,
            stress_res__ser_json(&r->pg[k], r->nsec, pg_keys[k].integral));
    }
    for (i = 0; i < r->napps; i++) {
        ap = &r->apps[i];
        a = json_object();
        json_object_set_new(a, "application_name", stress_res__str(ap->name));
        json_object_set_new(a, "conns",
                            stress_res__ser_json(&ap->conns, r->nsec, 1));
        json_object_set_new(a, "active",
                            stress_res__ser_json(&ap->active, r->nsec, 1));
        json_object_set_new(a, "lock_waits",
                            stress_res__ser_json(&ap->locks, r->nsec, 1));
        json_array_append_new(apps, a);
    }
    json_object_set_new(o, "apps", apps);
    return o;
}

/* ------------------------------------------------------------ modes */

/* 1 when PostgreSQL shows the application_name client 'id' sent as
 * 'shown': the agent cuts SR_APP_PREFIX + id to 63 bytes at a UTF-8
 * boundary (trib_pg_app_name); the server then replaces every byte
 * outside printable ASCII, by '?' up to PostgreSQL 15, by "\xNN" (and cuts
 * to 63 bytes again) from 16 on. */
static int shows_as(const char *shown, const char *id)
{
    char sent[TRIB_PG_APP_NAME_MAX + 1], q[sizeof(sent)];
    char x[4 * TRIB_PG_APP_NAME_MAX + 1];
    size_t i, n = trib_pg_app_name(sent, sizeof(sent), SR_APP_PREFIX, id);
    size_t k = 0;
    unsigned char c;

    for (i = 0; i < n; i++) {
        c = (unsigned char)sent[i];
        q[i] = c < 32 || c > 126 ? '?' : (char)c;
        if (c < 32 || c > 126) {
            k += (size_t)snprintf(x + k, 5, "\\x%02x", c);
        } else {
            x[k++] = (char)c;
        }
    }
    q[n] = '\0';
    x[k < TRIB_PG_APP_NAME_MAX ? k : TRIB_PG_APP_NAME_MAX] = '\0';
    return strcmp(shown, q) == 0 || strcmp(shown, x) == 0;
}

/* The fetch mode of the client behind an application_name; NULL when no
 * known client or clients of different modes show that name. */
static const char *mode_of(const struct stress_res *r, const char *shown)
{
    const char *mode = NULL;
    size_t i;

    for (i = 0; i < r->nmodes; i++) {
        if (!shows_as(shown, r->modes[i].id)) {
            continue;
        }
        if (mode != NULL && strcmp(mode, r->modes[i].mode) != 0) {
            return NULL;
        }
        mode = r->modes[i].mode;
    }
    return mode;
}

static json_t *mode_json(const struct stress_res *r, const char *mode,
                         const char **cmode)
{
    double conns, active, sum_c = 0, sum_a = 0, max_c = 0, cpu = 0, v;
    size_t i, s, nclients = 0, nsamples = 0;

    for (i = 0; i < r->nmodes; i++) {
        nclients += strcmp(r->modes[i].mode, mode) == 0;
    }
    for (s = 0; s < r->nsec; s++) {
        if (isnan(stress_res__get(&r->pg[PG_ACTIVE], s))) {
            continue; /* no PostgreSQL sample that second */
        }
        conns = active = 0;
        for (i = 0; i < r->nclients; i++) {
            if (cmode[i] != NULL && strcmp(cmode[i], mode) == 0) {
                v = stress_res__get(&r->clients[i].conns, s);
                conns += isnan(v) ? 0 : v;
                v = stress_res__get(&r->clients[i].active, s);
                active += isnan(v) ? 0 : v;
            }
        }
        nsamples++;
        sum_c += conns;
        sum_a += active;
        max_c = conns > max_c ? conns : max_c;
    }
    for (i = 0; i < r->nclients; i++) {
        if (cmode[i] != NULL && strcmp(cmode[i], mode) == 0) {
            cpu += r->clients[i].cpu_s;
        }
    }
    return json_pack(
        "{s:I, s:o, s:o, s:o, s:o}", "clients", (json_int_t)nclients,
        "conns_avg", stress_res__num(nsamples ? sum_c / nsamples : NAN, 0),
        "conns_max", stress_res__num(nsamples ? max_c : NAN, 1), "active_avg",
        stress_res__num(nsamples ? sum_a / nsamples : NAN, 0), "backend_cpu_s",
        stress_res__num(r->cpu_ok ? cpu : NAN, 0));
}

json_t *stress_res_modes_json(const struct stress_res *r)
{
    const char **cmode;
    json_t *doc;
    size_t i, k;

    if (r->nmodes == 0) {
        return NULL;
    }
    cmode = trib_calloc(r->nclients + 1, sizeof(*cmode));
    for (i = 0; i < r->nclients; i++) {
        cmode[i] = mode_of(r, r->clients[i].shown);
    }
    doc = json_object();
    for (i = 0; i < r->nmodes; i++) {
        for (k = 0; k < i; k++) {
            if (strcmp(r->modes[k].mode, r->modes[i].mode) == 0) {
                break;
            }
        }
        if (k == i) { /* first client of this mode */
            json_object_set_new(doc, r->modes[i].mode,
                                mode_json(r, r->modes[i].mode, cmode));
        }
    }
    trib_free(cmode);
    return doc;
}

int stress_res__backend_cpu(const struct stress_res *r)
{
    return r->cpu_ok;
}
