/*
 * stress_plan -- what a stress run does, declared: the plan (a YAML file,
 * docs/STRESS.md) and the equivalent flags of `tributary stress`, parsed
 * into one struct, validated, and turned into an insertion schedule.
 * Also the threshold expressions ("p95(end_to_end) < 2s") and their
 * evaluation against a finished report document (docs/REPORT.md).
 *
 * Order of use: stress_plan_init() (defaults), stress_plan_load() (a plan
 * file, optional), stress_plan_flag() for every flag given (flags override
 * the file), stress_plan_finish() (validates, fills derived fields).
 * Errors are written into err as one line without a trailing newline:
 * "plan.yaml:12:5: stages[1].target: expected a rate >= 0 (e.g. 500),
 * got 'fast'" for files, "--stage: ..." for flags.
 *
 * Ownership: a stress_plan owns its heap strings (args_json, file,
 * database_url, ...); stress_plan_fini() frees them. json results are new
 * references (json_decref).
 * Threading: a finished plan is read-only and may be read from any thread.
 */
#ifndef TRIB_STRESS_PLAN_H
#define TRIB_STRESS_PLAN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define STRESS_MAX_STAGES     64
#define STRESS_MAX_QUEUES     16
#define STRESS_MAX_TAGS       8
#define STRESS_MAX_THRESHOLDS 32
#define STRESS_NAME_MAX       64  /* names: plan, stage (incl. NUL)        */
#define STRESS_QUEUE_MAX      65  /* River: queue names <= 64 chars         */
#define STRESS_KIND_MAX       128 /* River: kinds <= 127 chars              */
#define STRESS_MAX_JOBS       100000000LL

enum stress_method {
    STRESS_METHOD_COPY = 0,   /* COPY + one river_insert notify per batch   */
    STRESS_METHOD_INSERT = 1, /* multi-row INSERT ... SELECT unnest(...) +
                                 pg_notify per queue, as River's Go client */
};

enum stress_monitor {
    STRESS_MONITOR_BOTH = 0,    /* default: both, cross-checked            */
    STRESS_MONITOR_EVENTS = 1,  /* the coordinator's view                  */
    STRESS_MONITOR_POLLING = 2, /* river_job itself                         */
};

/*
 * One stage. Two forms:
 *   ramp  (duration_us > 0, count == 0): the arrival rate moves linearly
 *         from the previous stage's end rate (the plan's start_rate for the
 *         first stage) to 'target' jobs/s over 'duration_us' (k6's
 *         ramping-arrival-rate); the stage ends when its duration is over.
 *   count (count > 0, duration_us == 0): 'count' jobs at 'rate' jobs/s
 *         (0 = as fast as insertion goes); the stage ends when all are in.
 *         Its end rate (for a following ramp) is 'rate'.
 */
struct stress_stage {
    char name[STRESS_NAME_MAX]; /* "stage-1".. when not given              */
    int64_t duration_us;
    double target;
    int64_t count;
    double rate;
    int line; /* plan file line (0: from flags) */
};

enum stress_op { STRESS_OP_LT, STRESS_OP_LE, STRESS_OP_GT, STRESS_OP_GE };

/*
 * A threshold: "STAT(METRIC)[{key=value}] OP VALUE" or "METRIC OP VALUE".
 *   STAT   min avg med p50 p90 p95 p99 max
 *   METRIC latencies: end_to_end queue_wait pickup run complete
 *            (values: durations "250ms" "2s" "1m" "500us"; bare = ms)
 *          rates: failed_rate discarded_rate cancelled_rate error_rate
 *            retry_rate (values "1%" or a fraction "0.01")
 *          throughput insert_rate (values "500/s" or "500")
 *          counts: finished completed discarded cancelled unfinished
 *            retried failed_attempts started_early (integers)
 *   {key=value}: only with a latency; key node|client|queue|mode|stage,
 *            picks that entry of the report's breakdowns (docs/REPORT.md)
 *   OP     < <= > >=
 * 'limit' is normalised: ms for latencies, a fraction for rates, jobs/s,
 * or a count.
 */
struct stress_threshold {
    char expr[160]; /* as written, trimmed */
    char stat[8];   /* "" for rates, throughput and counts */
    char metric[32];
    char scope_key[16]; /* "" = overall */
    char scope_val[STRESS_QUEUE_MAX];
    enum stress_op op;
    double limit;
    const char *unit; /* static: "ms", "ratio", "jobs/s", "count" */
    int line;         /* plan file line (0: from flags) */
};

struct stress_plan {
    char name[STRESS_NAME_MAX]; /* [stress] */
    char *file;                 /* plan file path or NULL */

    /* The jobs. */
    char kind[STRESS_KIND_MAX]; /* [tributary.noop] */
    char *args_json;            /* a JSON object as text [{}] */
    int priority;               /* 1..4 [1] */
    int max_attempts;           /* 1..32767 [25] */
    char queues[STRESS_MAX_QUEUES][STRESS_QUEUE_MAX]; /* round-robin */
    int nqueues; /* [1: "default"], set by finish() when none given */
    char tags[STRESS_MAX_TAGS][STRESS_QUEUE_MAX]; /* extra tags */
    int ntags;
    int64_t delay_us;  /* scheduled_at = insertion time + delay [0] */
    int64_t spread_us; /* + uniform random 0..spread [0] */

    /* The mixed-strategy preset: equal load on two queues, one served by
     * notify-mode clients, one by poll-mode clients (finish() then sets
     * queues = {notify_queue, poll_queue}). */
    int mixed;
    char notify_queue[STRESS_QUEUE_MAX]; /* [default] (tributary up's) */
    char poll_queue[STRESS_QUEUE_MAX];   /* [poll]    (tributary up's) */

    /* Insertion. */
    enum stress_method method; /* [copy] */
    int batch;                 /* rows per transaction, 1..100000 [5000] */
    int streams;               /* parallel connections, 1..16 [2] */

    /* Load shape. finish() turns --jobs/--rate into one count stage. */
    struct stress_stage stages[STRESS_MAX_STAGES];
    int nstages;
    double start_rate; /* rate at the start of the first ramp [0] */

    int64_t timeout_us; /* whole run, insertion + finishing [10m] */
    int64_t grace_us;   /* after Ctrl-C: wait this long [5s] */
    enum stress_monitor monitor;

    struct stress_threshold thresholds[STRESS_MAX_THRESHOLDS];
    int nthresholds;

    /* Where (flags > plan file > environment, resolved by the caller). */
    char *database_url;
    char *schema;
    char *control;
    char *out_dir;

    /* private (flag bookkeeping) */
    int64_t flag_jobs;
    double flag_rate;
    int flag_stages;
    unsigned flag_seen; /* list flags given (STRESS_SEEN_* bits) */
};

void stress_plan_init(struct stress_plan *p);
void stress_plan_fini(struct stress_plan *p);

/* Reads a YAML plan file into p (on top of the defaults). 0, or
 * TRIB_EINVAL / TRIB_EIO with err = "path:line:col: field: problem". */
int stress_plan_load(struct stress_plan *p, const char *path, char *err,
                     size_t errlen);
/* The same from text; 'name' stands for the path in messages. */
int stress_plan_parse(struct stress_plan *p, const char *text, size_t len,
                      const char *name, char *err, size_t errlen);

/*
 * Applies one `tributary stress` flag (long name without "--", e.g.
 * "jobs", "stage", "threshold"; value NULL for switches such as "mixed").
 * Repeatable flags (stage, threshold, queue, tag) append; the first
 * --stage replaces the plan file's stages, the first --threshold its
 * thresholds, --queue/--tag the file's lists. Call it after
 * stress_plan_load(). 0, TRIB_EINVAL (err: "--jobs: expected an integer
 * 1..100000000, got 'x'") or TRIB_ENOENT (not a plan flag: the caller
 * handles it; err untouched).
 * Flags: name jobs rate stage ([NAME=]DURATION:TARGET, COUNT@RATE or
 * COUNT, docs/STRESS.md) start-rate kind args queue priority max-attempts tag
 * delay spread mixed notify-queue poll-queue method batch streams timeout
 * grace monitor threshold database-url schema control out.
 */
int stress_plan_flag(struct stress_plan *p, const char *flag, const char *value,
                     char *err, size_t errlen);

/* Validates the whole plan and fills derived fields (default stage from
 * --jobs, mixed queues, stage names). 0 or TRIB_EINVAL with err. */
int stress_plan_finish(struct stress_plan *p, char *err, size_t errlen);

/* Jobs the plan inserts when nothing stops it early (ramp stages: the
 * integral of their rate rounded down, = stress_stage_due at the end). */
int64_t stress_plan_jobs(const struct stress_plan *p);

/* The rate (jobs/s) stage i starts from: start_rate for the first stage,
 * else the previous stage's end rate (target of a ramp, rate of a count). */
double stress_stage_start_rate(const struct stress_plan *p, int i);

/*
 * The schedule: how many of stage i's jobs should have been inserted
 * 'elapsed_us' after the stage began (ramp: floor of the integral of the
 * rate; count at a rate: min(count, rate * t); count as fast as possible:
 * count). Never decreases with elapsed_us. *done (may be NULL) is set when
 * the stage is over by time alone (ramp: elapsed >= duration); a count
 * stage is over when all its jobs are in, which the inserter knows.
 */
int64_t stress_stage_due(const struct stress_plan *p, int i, int64_t elapsed_us,
                         int *done);

/* The plan as a JSON object for the report's run.plan (every field,
 * durations in seconds, thresholds as written). */
json_t *stress_plan_json(const struct stress_plan *p);

/* Parses one threshold expression. 0 or TRIB_EINVAL with err naming the
 * part that is wrong ("unknown metric 'latency' (known: end_to_end, ...)").
 */
int stress_threshold_parse(const char *expr, struct stress_threshold *t,
                           char *err, size_t errlen);

/*
 * Evaluates t against a report document (docs/REPORT.md). Returns 1 pass,
 * 0 fail, -1 no data (the metric is null or the scope is absent: counts as
 * a failure; *why says so). *actual gets the measured value in the
 * threshold's unit (NAN when no data).
 */
int stress_threshold_eval(const struct stress_threshold *t,
                          const json_t *report, double *actual,
                          const char **why);

/* Evaluates every threshold of p against report and stores the
 * "thresholds" array and "thresholds_passed" in it (docs/REPORT.md).
 * Returns 1 when all passed (or there are none), else 0. */
int stress_thresholds_apply(const struct stress_plan *p, json_t *report);

#endif /* TRIB_STRESS_PLAN_H */
