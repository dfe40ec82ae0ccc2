/*
 * agent_int.h -- the agent runtime's shared structures (library-private).
 *
 * Object tree (all owned by the one libuv loop thread):
 *
 *   trib_agent
 *    |- ctl (trib_pg)       bootstrap, clock, leader election
 *    |- maint (trib_pg)     leader-only maintenance (maint.c)
 *    |- listener (trib_pg)  LISTEN for notify-mode clients (none if all poll)
 *    |- leader              river_leader election (leader.c)
 *    |- sink                tributary.sink's external database (sink.c)
 *    |- bus                 per-client job events (events.c)
 *    |- outbox, fwd         with --coordinator: every event into the
 *    |                      durable outbox, forwarded (outbox.c,
 *    |                      forwarder.c)
 *    '- clients[]           one River client each (client.c)
 *         |- fetch_pg       fetches, queue upserts, settings/cancel polls
 *         |- completer      batched write-back on its own connection
 *         '- producers[]    one per queue: slots, fetch triggers (producer.c)
 *              '- running jobs (job.c executes them)
 *
 * A job's life: producer fetch -> trib__job_start() -> kind runs ->
 * outcome -> trib__completer_add() -> write-back -> event -> freed.
 */
#ifndef TRIB_AGENT_INT_H
#define TRIB_AGENT_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "events.h"
#include "trib_kind.h"
#include "trib_log.h"
#include "trib_pg.h"

struct trib_agent;
struct trib_client;
struct trib_producer;
struct trib_completer;
struct trib_leader;
struct trib_maint;
struct trib_sink;
struct trib_outbox;
struct trib_forwarder;
struct trib_wire_client;

/* ------------------------------------------------------------------ SQL */

/* Statement texts for one schema (sql.c). */
struct trib_sql {
    char *schema;     /* resolved schema name                     */
    char *ch_insert;  /* "<schema>.river_insert"                  */
    char *ch_control; /* "<schema>.river_control"                 */
    char *ch_leader;  /* "<schema>.river_leadership"              */
    struct trib_pg_stmt fetch, fetch_known, complete_fast, complete, job_states,
        queue_upsert, queue_get, cancel_requested, leader_delete, leader_elect,
        leader_reelect, leader_resign, schedule, notify_many, rescue_select,
        rescue_update, clean, queue_clean, clock;
    char *texts[32];
    int ntexts;
};

int trib__sql_init(struct trib_sql *sql, const char *schema);
void trib__sql_fini(struct trib_sql *sql);

/* ------------------------------------------------------------------ jobs */

enum job_outcome {
    OUT_NONE = 0,
    OUT_COMPLETE,
    OUT_ERROR,
    OUT_SNOOZE,
    OUT_CANCEL,
    OUT_INTERRUPT,
};

enum job_phase {
    PHASE_RUNNING = 0, /* kind is working                        */
    PHASE_DONE,        /* outcome known; write-back pending       */
};

struct trib_job {
    struct trib_job *prev, *next; /* producer's running list / completer */
    struct trib_producer *prod;
    struct trib_client *client;
    const struct trib_kind *kind; /* NULL: unknown kind                 */

    /* The row as fetched (times in us, database clock). */
    int64_t id;
    int attempt, max_attempts, priority, nerrors;
    int64_t attempted_at, created_at, scheduled_at;
    char *kind_name, *args, *metadata, *tags; /* one allocation (strs) */
    json_t *args_json;

    /* Execution. */
    enum job_phase phase;
    atomic_int cancel; /* enum trib_cancel_reason              */
    int abandoned;     /* written back as interrupted while a thread
                          still runs it: its result is dropped     */
    int in_thread;     /* BLOCKING run() in progress               */
    uint64_t start_mono, end_mono, wb_mono; /* us                 */
    int64_t start_db;                       /* start, db clock     */
    uv_timer_t timer; /* sleep wake-up and timeout deadline      */
    int timer_open;
    uint64_t wake_at, deadline; /* trib_mono_us(); 0 = none         */
    void (*wake_fn)(struct trib_job *);
    uv_work_t work;
    void *user_data;

    /* Outcome. */
    enum job_outcome outcome;
    char *error; /* heap, bounded                         */
    int64_t snooze_us;
    int64_t finalized_db; /* finish time, db clock                 */
    int64_t next_run_db;  /* retry/snooze/interrupt scheduled_at    */
    int target_state;     /* enum trib_job_state wanted              */
    int snoozes;          /* new metadata.snoozes (OUT_SNOOZE)       */
};

void trib__job_start(struct trib_job *job);
/* Record the outcome (loop thread): computes the write-back and hands the
 * job to its client's completer. */
void trib__job_finish(struct trib_job *job);
/* Ask a running job to stop (loop thread). */
void trib__job_cancel(struct trib_job *job, enum trib_cancel_reason why);
/* River's default retry policy: (nerrors + 1)^4 seconds, +-10 % jitter. */
int64_t trib__retry_delay_us(int nerrors);
/* Free a job after its event went out (closes its timer if needed). */
void trib__job_free(struct trib_job *job);

/* -------------------------------------------------------------- kinds */

struct trib_kinds {
    const struct trib_kind **v;
    size_t n, cap;
};

const struct trib_kind *trib__kinds_find(const struct trib_kinds *k,
                                         const char *name);
int trib__kinds_builtin(struct trib_kinds *k); /* kinds_builtin.c */

/* ------------------------------------------------------------ producer */

struct trib_producer {
    struct trib_client *client;
    char *queue;
    int max_workers;
    int active;                /* slots in use                       */
    struct trib_job *run_head; /* running jobs (doubly linked)       */
    int paused;
    int ready; /* queue row upserted                 */
    int stopping;
    int fetching;              /* fetch statement in flight          */
    int want_fetch;            /* trigger seen during cooldown/fetch */
    int fetch_when_slots;      /* full batch or no slots: refetch    */
    uint64_t last_fetch_mono;  /* us                                 */
    uint64_t cooldown_us;      /* current (adaptive) fetch cooldown  */
    uint64_t next_report_mono; /* next river_queue upsert            */
    uv_timer_t poll_timer;     /* jittered FetchPollInterval         */
    uv_timer_t cooldown_timer; /* trailing edge of the debounce      */
    uv_timer_t upkeep_timer;   /* settings + cancel polls, upsert    */
    uv_timer_t due_timer;      /* next not-yet-due job becomes due   */
    int open_handles;
    /* counters */
    uint64_t fetches, fetched;
};

int trib__producer_create(struct trib_client *c, const char *queue,
                          int max_workers, struct trib_producer **out);
void trib__producer_start(struct trib_producer *p);
void trib__producer_trigger(struct trib_producer *p);
void trib__producer_job_done(struct trib_producer *p, struct trib_job *job);
void trib__producer_set_paused(struct trib_producer *p, int paused);
void trib__producer_cancel_job(struct trib_producer *p, int64_t job_id);
void trib__producer_stop(struct trib_producer *p);
void trib__producer_close(struct trib_producer *p); /* frees when closed */

/* ----------------------------------------------------------- completer */

struct trib_completer;
int trib__completer_create(struct trib_client *c, struct trib_completer **out);
void trib__completer_start(struct trib_completer *cm);
void trib__completer_add(struct trib_completer *cm, struct trib_job *job);
size_t trib__completer_backlog(const struct trib_completer *cm);
/* Write-back statements and rows so far. */
void trib__completer_stats(const struct trib_completer *cm,
                           uint64_t *statements, uint64_t *rows);
int trib__completer_idle(const struct trib_completer *cm);
void trib__completer_close(struct trib_completer *cm);

/* -------------------------------------------------------------- client */

struct trib_client {
    struct trib_agent *agent;
    const struct trib_client_conf *conf;
    const char *id;
    struct trib_pg *fetch_pg;
    struct trib_completer *completer;
    struct trib_producer **producers;
    size_t nproducers;
    char *known_kinds; /* array text of the kinds we run, for
                          fetch_only_known_kinds; else NULL      */
    int backpressure;  /* completer backlog above the high mark */
    int stopping;
};

int trib__client_create(struct trib_agent *a, const struct trib_client_conf *cf,
                        struct trib_client **out);
void trib__client_start(struct trib_client *c);
void trib__client_on_insert(struct trib_client *c, const char *queue);
void trib__client_on_control(struct trib_client *c, const char *action,
                             const char *queue, int64_t job_id);
void trib__client_backpressure(struct trib_client *c, int on);
size_t trib__client_running(const struct trib_client *c);
void trib__client_stop(struct trib_client *c);
void trib__client_cancel_all(struct trib_client *c, enum trib_cancel_reason r);
int trib__client_idle(const struct trib_client *c);
/* Blocking jobs still in their threads after the stop deadline: written
 * back as interrupted; their late results are dropped. */
void trib__client_interrupt_stragglers(struct trib_client *c);
void trib__client_close(struct trib_client *c);

/* -------------------------------------------------------------- leader */

int trib__leader_create(struct trib_agent *a, struct trib_leader **out);
void trib__leader_start(struct trib_leader *l);
void trib__leader_on_notify(struct trib_leader *l, const char *payload);
int trib__leader_is_leader(const struct trib_leader *l);
/* Resigns if leader, then calls done (also when not leader). */
void trib__leader_stop(struct trib_leader *l, void (*done)(void *), void *arg);
void trib__leader_close(struct trib_leader *l);

/* --------------------------------------------------------- maintenance */

int trib__maint_create(struct trib_agent *a, struct trib_maint **out);
void trib__maint_set_leader(struct trib_maint *m, int leader);
void trib__maint_close(struct trib_maint *m);
/* scheduler's notifications: queues with jobs now available */
void trib__maint_notify_queues(struct trib_maint *m, const char **queues,
                               size_t n);

/* ---------------------------------------------------------------- sink */

int trib__sink_create(struct trib_agent *a, struct trib_sink **out);
/* Inserts 'rows' rows for job 'job' into the sink table; cb(job, status,
 * errmsg) on the loop thread. */
int trib__sink_write(struct trib_sink *s, struct trib_job *job, int64_t rows,
                     void (*cb)(struct trib_job *, int, const char *));
void trib__sink_close(struct trib_sink *s);

/* ------------------------------------------------------------- intents */

/* What a job's write-back writes into its row when it applies (the row
 * still 'running' the attempt worked): the state, the attempt, and
 * finalized_at (completed/cancelled/discarded) or scheduled_at. */
struct trib_wb_expect {
    int worked;        /* the attempt this agent worked       */
    int state;         /* enum trib_job_state written          */
    int attempt;       /* attempt written                      */
    int64_t expect_us; /* finalized_at or scheduled_at written */
};
void trib__writeback_expect(const struct trib_job *job,
                            struct trib_wb_expect *e);
/* Does a row persisted as (state, attempt, finalized_at, scheduled_at;
 * times 0 = NULL) show that write-back? A row rescued, worked again,
 * cancelled or deleted meanwhile does not: the write-back did not apply
 * and the job's outcome is someone else's to report. */
int trib__writeback_applied(const struct trib_wb_expect *e, int state,
                            int attempt, int64_t finalized_at,
                            int64_t scheduled_at);

/* Write-back intents in the outbox (intents.c; no-ops without one).
 * write: before the statement is sent (flushes); confirm: after the
 * commit, before the batch's events are published (written with them). */
struct trib_intents;
void trib__intents_write(struct trib_agent *a, struct trib_client *c,
                         struct trib_job *const *jobs, size_t n);
void trib__intents_confirm(struct trib_agent *a, struct trib_job *const *jobs,
                           size_t n);
/* Outbox on_meta callback (arg: the agent): collects older boots' intents
 * without a confirm. */
void trib__intents_on_meta(void *arg, uint64_t boot, const void *payload,
                           size_t len);
/* Keeps the files of boots with unresolved intents (after the outbox
 * opened); looks them up in river_job and emits the events of those that
 * committed (once the database is there; again if it fails). */
void trib__intents_hold(struct trib_agent *a);
void trib__intents_resolve(struct trib_agent *a);
/* Decodes one meta record into 'in' (NULL: validate only): 0 or
 * TRIB_EPROTO. For tests and fuzz_outbox. */
struct trib_intents *trib__intents_new(void);
int trib__intents_decode(struct trib_intents *in, uint64_t boot,
                         const void *payload, size_t len);
size_t trib__intents_count(const struct trib_intents *in);
void trib__intents_free(struct trib_intents *in); /* NULL ok */

/* --------------------------------------------------------------- agent */

enum agent_state {
    AGENT_BOOT = 0, /* waiting for the database and its schema */
    AGENT_RUNNING,
    AGENT_STOPPING, /* no new fetches; draining                */
    AGENT_CLOSING,  /* handles closing                         */
};

struct trib_agent {
    uv_loop_t *loop;
    struct trib_agent_conf *conf;
    struct trib_kinds *kinds;
    struct trib_sql sql;
    int sql_ready;
    enum agent_state state;
    int exit_code;

    struct trib_pg *ctl;
    struct trib_pg *listener;
    struct trib_client **clients;
    size_t nclients;
    struct trib_leader *leader;
    struct trib_maint *maint;
    struct trib_sink *sink;
    struct trib_event_bus bus;
    struct trib_ndjson *ndjson;

    /* forwarding (NULL without --coordinator) */
    struct trib_outbox *outbox;
    struct trib_forwarder *fwd;
    int outbox_full; /* backpressure: no client fetches */
    char *secret;    /* shared secret, or NULL          */
    size_t secret_len;
    struct trib_wire_client *hello_clients;
    struct trib_intents *intents; /* older boots' unresolved intents */

    char host[256];          /* for HELLO (the forwarder borrows it) */
    int64_t clock_offset_us; /* database clock - local clock */
    int clock_known;
    int clock_busy; /* a clock probe is queued or in flight */
    uv_timer_t boot_timer, clock_timer, stop_timer, stats_timer;
    uv_signal_t sig_term, sig_int;
    int stop_phase; /* 0 none, 1 draining, 2 interrupting, 3 flushing,
                       4 resigning, 5 forwarder next, 6 forwarding the
                       last events, 7 closing */
    int signals;
    int open_handles;
    struct trib_complain boot_complain;
};

/* Database clock now (us), from the local clock and the measured offset. */
int64_t trib__db_now(const struct trib_agent *a);
/* A connection to the agent's database (created, not started), labelled
 * 'name' in logs; custom_plans: plan every execution (fetch sessions).
 * client_id: the client the session works for (its application_name is
 * then "tributary-agent:<client id>", cut to 63 bytes at a UTF-8
 * boundary), NULL for the agent's own sessions ("tributary-agent").
 * 0 or a trib_err. */
int trib__agent_pg(struct trib_agent *a, const char *client_id,
                   const char *name, int custom_plans, struct trib_pg **out);
/* Called by clients when they might have become idle (shutdown). */
void trib__agent_check_stopped(struct trib_agent *a);

/* Job states, in enum order of river_job_state. */
enum trib_job_state {
    JS_AVAILABLE = 0,
    JS_CANCELLED,
    JS_COMPLETED,
    JS_DISCARDED,
    JS_PENDING,
    JS_RETRYABLE,
    JS_RUNNING,
    JS_SCHEDULED,
    JS_UNKNOWN,
};
const char *trib__state_name(int state);
int trib__state_parse(const char *s);

#endif /* TRIB_AGENT_INT_H */
