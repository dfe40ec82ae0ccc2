/*
 * stress_res -- resource monitoring during a stress run, one sample a
 * second: every agent's heartbeat sample from the coordinator's `nodes`
 * query (CPU, RSS, threads, DB connections, outbox depth, in-flight jobs)
 * and PostgreSQL's own statistics (connections by state, commits and
 * rollbacks per second, river_job's size, live and dead tuples, sessions
 * waiting on locks, and per application_name connections so the
 * mixed-strategy preset can compare the database load of notify-mode and
 * poll-mode clients: agents name their connections
 * "tributary-agent:<client id>").
 *
 * Ownership: stress_res_open() returns a handle freed by stress_res_free().
 * The PGconn and trib_ctl given are borrowed (either may be NULL: that
 * part is then not sampled) and must outlive the handle. JSON results are
 * new references.
 * Threading: one thread (the stress run's main loop).
 */
#ifndef TRIB_STRESS_RES_H
#define TRIB_STRESS_RES_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

struct trib_ctl;
struct stress_res;

/* t0_us: the run's start (wall clock); samples are placed in second
 * floor((now - t0) / 1 s). */
int stress_res_open(PGconn *db, struct trib_ctl *ctl, int64_t t0_us,
                    struct stress_res **out);
void stress_res_free(struct stress_res *r); /* NULL ok */

/* River's schema (copied; NULL or "": river_job as the connection's
 * search_path finds it, the default). Call before the first sample. */
void stress_res_schema(struct stress_res *r, const char *schema);

/* Takes one sample (call about once a second; a second call within the
 * same second replaces that second's sample). Never fails: a query that
 * fails leaves nulls in that second and is remembered for the report. */
void stress_res_sample(struct stress_res *r);

/* The last `nodes` document (borrowed, NULL before the first sample or
 * without a coordinator): the stress run maps clients to nodes and modes
 * from it. */
const json_t *stress_res_nodes(const struct stress_res *r);

/* The report's "resources" object (docs/REPORT.md). */
json_t *stress_res_json(const struct stress_res *r);

/* Per fetch mode ("notify", "poll"): the database load of that mode's
 * clients, from the samples: {"notify": {"clients": N, "conns_avg": x,
 * "conns_max": n, "active_avg": x, "backend_cpu_s": x|null}, "poll": ...}
 * (docs/REPORT.md "mixed"). NULL when no client was seen. */
json_t *stress_res_modes_json(const struct stress_res *r);

#endif /* TRIB_STRESS_RES_H */
