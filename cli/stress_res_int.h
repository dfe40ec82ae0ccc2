/*
 * stress_res_int -- what stress_res.c (series, agents, the resources
 * document) and stress_res_pg.c (PostgreSQL's statistics, backend CPU,
 * per-mode database load) share, and the seams of their unit test (a
 * `nodes` document can be fed in without a coordinator).
 *
 * Series are arrays of doubles indexed by the second since t0, NAN where
 * nothing was sampled (null in JSON).
 *
 * Ownership: struct stress_res owns every pointer in it except db and ctl
 * (borrowed). stress_res__feed_nodes() takes the reference to doc.
 * Threading: one thread, as stress_res.h.
 */
#ifndef TRIB_STRESS_RES_INT_H
#define TRIB_STRESS_RES_INT_H

#include <stddef.h>
#include <stdint.h>

#include "stress_res.h"

#define SR_MAX_ERRORS  5
#define SR_MAX_CLIENTS 1024
#define SR_APP_PREFIX  "tributary-agent:"

struct sr_ser {
    double *v; /* NAN: not sampled */
    size_t n, cap;
};

enum {
    PG_ACTIVE,
    PG_IDLE,
    PG_IDLE_TX,
    PG_LOCKS,
    PG_COMMITS,
    PG_ROLLBACKS,
    PG_BYTES,
    PG_LIVE,
    PG_DEAD,
    PG_NSER
};

enum {
    AG_CPU,
    AG_RSS,
    AG_THREADS,
    AG_CONNS,
    AG_OB_EVENTS,
    AG_OB_BYTES,
    AG_IN_FLIGHT,
    AG_NSER
};

struct sr_agent {
    char *node, *host;
    char *boot;         /* boot id of the previous sample          */
    double prev_cpu_s;  /* user + system CPU at prev_hb_us          */
    int64_t prev_hb_us; /* last_heartbeat of the previous sample    */
    int have_prev;
    double pct; /* CPU % over the last heartbeat interval   */
    struct sr_ser s[AG_NSER];
};

/* Connections of one application_name. */
struct sr_app {
    char *name;
    struct sr_ser conns, active, locks;
};

/* Connections of one agent client: application_name SR_APP_PREFIX + id
 * as PostgreSQL shows it. */
struct sr_client {
    char *shown;
    struct sr_ser conns, active;
    double cpu_s; /* its backends' CPU seconds between samples */
};

struct sr_mode {
    char *id, *mode; /* client id -> fetch mode (nodes document) */
};

struct sr_pid {
    int pid;
    unsigned gen;
    uint64_t ticks;
};

struct stress_res {
    PGconn *db;           /* NULL: no PostgreSQL sampling */
    struct trib_ctl *ctl; /* NULL: no agents              */
    int64_t t0_us;
    char *table; /* to_regclass() argument: river_job, maybe qualified */
    size_t nsec; /* seconds covered: last sampled second + 1 */
    json_t *nodes;

    struct sr_agent *agents;
    size_t nagents, cagents;
    struct sr_mode *modes;
    size_t nmodes, cmodes;

    struct sr_ser pg[PG_NSER];
    int64_t prev_commit, prev_rollback, prev_pg_us;
    int have_pg;
    struct sr_app *apps;
    size_t napps, capps;
    struct sr_client *clients;
    size_t nclients, cclients;

    int cpu_ok; /* backends are local: /proc/<pid>/stat is theirs */
    long clk_tck;
    struct sr_pid *pids;
    size_t npids, cpids;
    unsigned gen;

    char *errors[SR_MAX_ERRORS];
    size_t nerrors;
};

/* ---- stress_res.c */
double *stress_res__at(struct sr_ser *s, size_t i); /* grows, NAN-filled */
double stress_res__get(const struct sr_ser *s, size_t i);
void stress_res__ser_fini(struct sr_ser *s);
json_t *stress_res__ser_json(const struct sr_ser *s, size_t nsec, int integral);
/* NaN, infinities and integral values beyond int64 -> null; never NULL. */
json_t *stress_res__num(double v, int integral);
/* A JSON string; bytes that are not UTF-8 become '?'. */
json_t *stress_res__str(const char *s);
/* Makes room for 'need' elements of 'elem' bytes (new ones zeroed). */
void *stress_res__grow(void *p, size_t *cap, size_t need, size_t elem);
/* Remembers the first SR_MAX_ERRORS distinct messages. */
void stress_res__err(struct stress_res *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The second now_us falls in (nsec grows), -1 when too late. */
long stress_res__second(struct stress_res *r, int64_t now_us);

/* ---- stress_res_pg.c */
/* Decides whether backend CPU can be read (sets cpu_ok). */
void stress_res__pg_open(struct stress_res *r);
void stress_res__pg_free(struct stress_res *r);
/* The "postgres" object of the resources document. */
json_t *stress_res__pg_json(const struct stress_res *r);
/* utime + stime of a process (clock ticks); postgres_only: also require
 * its command name to be "postgres". 0 or TRIB_ENOENT / TRIB_EPROTO. */
int stress_res__proc_ticks(int pid, uint64_t *ticks, int postgres_only);

/* ---- seams for the unit test */
/* Records the agents of a `nodes` document (docs/CONTROL.md) as sampled at
 * now_us (wall clock), as stress_res_sample() does with the coordinator's
 * reply. */
void stress_res__feed_nodes(struct stress_res *r, int64_t now_us, json_t *doc);
/* Samples PostgreSQL only, at now_us (wall clock). */
void stress_res__sample_pg(struct stress_res *r, int64_t now_us);
/* 1 when backend CPU is read from /proc (the server runs on this machine). */
int stress_res__backend_cpu(const struct stress_res *r);

#endif /* TRIB_STRESS_RES_INT_H */
