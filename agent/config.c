/*
 * config.c -- the agent's option table and the three sources that fill it
 * (YAML file, environment, flags).
 *
 * Every option is one row of 'opts' below: its YAML key, flag, environment
 * variable, type, destination (offset into the agent or client struct),
 * default, range and help text. Adding an option is adding a row.
 */
#include "config.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "trib_tls.h"
#include "trib_yaml.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum opt_type {
    T_STR,
    T_INT,
    T_DUR,
    T_DUR_NEG,
    T_BOOL,
    T_MODE,
    T_LEVEL,
    T_BYTES, /* int64: 4096, 64KiB, 8MiB, 1GiB (K, M, G, T: powers of 1024) */
};
enum opt_scope { S_AGENT, S_CLIENT };

struct opt {
    const char *key;  /* YAML key ("leader.ttl")         */
    const char *flag; /* "--leader-ttl"                  */
    const char *env;  /* "TRIBUTARY_LEADER_TTL"          */
    enum opt_type type;
    enum opt_scope scope;
    size_t off;
    const char *def;
    int64_t min, max;
    const char *help;
};

#define A(f) S_AGENT, offsetof(struct trib_agent_conf, f)
#define C(f) S_CLIENT, offsetof(struct trib_client_conf, f)
#define US   1LL
#define MS   1000LL
#define SEC  1000000LL
#define DAY  (86400LL * SEC)
#define KIB  1024LL
#define MIB  (1024LL * KIB)
#define GIB  (1024LL * MIB)

static const struct opt opts[] = {
    {"database_url", "--database-url", "DATABASE_URL", T_STR, A(database_url),
     NULL, 0, 0, "PostgreSQL URL or conninfo (default: libpq PG* variables)"},
    {"schema", "--schema", "TRIBUTARY_SCHEMA", T_STR, A(schema), NULL, 0, 0,
     "schema holding River's tables (default: current_schema())"},
    {"node_id", "--node-id", "TRIBUTARY_NODE_ID", T_STR, A(node_id), NULL, 0, 0,
     "this node's name (default: host name)"},
    {"events_out", "--events-out", "TRIBUTARY_EVENTS_OUT", T_STR, A(events_out),
     NULL, 0, 0, "write every job event as NDJSON to FILE, or - for stdout"},
    {"threads", "--threads", "TRIBUTARY_THREADS", T_INT, A(threads), "4", 1,
     256, "worker threads for blocking job kinds (tributary.cpu, yours)"},
    {"log_level", "--log-level", "TRIBUTARY_LOG_LEVEL", T_LEVEL, A(log_level),
     "info", 0, 3, "error, warn, info or debug"},
    {"stats_interval", "--stats-interval", "TRIBUTARY_STATS_INTERVAL", T_DUR,
     A(stats_interval_us), "1m", 0, DAY,
     "log one AGT-STATS line per queue this often (0: never)"},
    {"shutdown_grace", "--shutdown-grace", "TRIBUTARY_SHUTDOWN_GRACE", T_DUR,
     A(shutdown_grace_us), "10s", 0, DAY,
     "on SIGTERM/SIGINT, let running jobs finish this long, then interrupt"},
    /* clients (flags and environment apply to every client) */
    {"mode", "--mode", "TRIBUTARY_MODE", T_MODE, C(mode), "notify", 0, 1,
     "fetch mode: notify (LISTEN + poll fallback) or poll (no LISTEN)"},
    {"poll_interval", "--poll-interval", "TRIBUTARY_POLL_INTERVAL", T_DUR,
     C(poll_interval_us), "1s", 1 * MS, DAY,
     "fetch poll interval (+0-10% jitter, at least 10ms of range)"},
    {"fetch_cooldown", "--fetch-cooldown", "TRIBUTARY_FETCH_COOLDOWN", T_DUR,
     C(fetch_cooldown_us), "1ms", 1 * MS, DAY,
     "minimum time between fetch starts per queue (River: 100ms)"},
    {"fetch_cooldown_max", "--fetch-cooldown-max", NULL, T_DUR,
     C(fetch_cooldown_max_us), "3ms", 1 * MS, DAY,
     "under a steady trickle of jobs the cooldown grows up to this, "
     "batching fetches (= fetch_cooldown: fixed)"},
    {"job_timeout", "--job-timeout", "TRIBUTARY_JOB_TIMEOUT", T_DUR_NEG,
     C(job_timeout_us), "1m", 0, 30 * DAY, "job timeout; -1 for none"},
    {"fetch_only_known_kinds", "--fetch-only-known-kinds", NULL, T_BOOL,
     C(fetch_only_known_kinds), "false", 0, 1,
     "fetch only jobs of kinds this agent can run"},
    /* leadership */
    {"leader.enabled", "--leader-election", "TRIBUTARY_LEADER_ELECTION", T_BOOL,
     A(leader_enabled), "true", 0, 1,
     "take part in river_leader election and maintenance"},
    {"leader.elect_interval", "--leader-elect-interval", NULL, T_DUR,
     A(elect_interval_us), "5s", 100 * MS, DAY,
     "election attempt/renew interval (River: 5s)"},
    {"leader.ttl", "--leader-ttl", NULL, T_DUR, A(leader_ttl_us), "15s",
     1 * SEC, DAY, "leadership lifetime without renewal (River: 15s)"},
    /* maintenance (leader only) */
    {"maintenance.scheduler_interval", "--scheduler-interval", NULL, T_DUR,
     A(scheduler_interval_us), "5s", 100 * MS, DAY,
     "move due scheduled/retryable jobs to available"},
    {"maintenance.rescuer_interval", "--rescuer-interval", NULL, T_DUR,
     A(rescuer_interval_us), "30s", 100 * MS, DAY, "stuck-job rescuer"},
    {"maintenance.rescue_stuck_jobs_after", "--rescue-stuck-jobs-after", NULL,
     T_DUR, A(rescue_after_us), "1h", 1 * SEC, 365 * DAY,
     "a job running longer than this is rescued"},
    {"maintenance.cleaner_interval", "--cleaner-interval", NULL, T_DUR,
     A(cleaner_interval_us), "30s", 100 * MS, DAY,
     "deletes finalized jobs past retention"},
    {"maintenance.completed_retention", "--completed-retention", NULL,
     T_DUR_NEG, A(completed_retention_us), "24h", 0, 3650 * DAY,
     "keep completed jobs this long (-1: forever)"},
    {"maintenance.cancelled_retention", "--cancelled-retention", NULL,
     T_DUR_NEG, A(cancelled_retention_us), "24h", 0, 3650 * DAY,
     "keep cancelled jobs this long (-1: forever)"},
    {"maintenance.discarded_retention", "--discarded-retention", NULL,
     T_DUR_NEG, A(discarded_retention_us), "168h", 0, 3650 * DAY,
     "keep discarded jobs this long (-1: forever)"},
    {"maintenance.queue_cleaner_interval", "--queue-cleaner-interval", NULL,
     T_DUR, A(queue_cleaner_interval_us), "1h", 100 * MS, 30 * DAY,
     "deletes river_queue rows not updated within queue_retention"},
    {"maintenance.queue_retention", "--queue-retention", NULL, T_DUR,
     A(queue_retention_us), "24h", 1 * SEC, 3650 * DAY,
     "river_queue rows idle longer than this are deleted"},
    {"maintenance.reindexer", "--reindexer", NULL, T_BOOL, A(reindexer), "true",
     0, 1, "REINDEX river_job's indexes daily at 00:00 UTC"},
    /* tributary.sink */
    {"sink.database_url", "--sink-url", "TRIBUTARY_SINK_URL", T_STR,
     A(sink_url), NULL, 0, 0,
     "external database for tributary.sink (default: none)"},
    {"sink.table", "--sink-table", "TRIBUTARY_SINK_TABLE", T_STR, A(sink_table),
     "tributary_sink", 0, 0,
     "table tributary.sink writes rows into (created if missing)"},
    {"sink.connections", "--sink-connections", NULL, T_INT, A(sink_connections),
     "2", 1, 64, "connections to the sink database"},
    /* write-back */
    {"completer.batch_max", "--complete-batch", NULL, T_INT,
     A(complete_batch_max), "5000", 1, 5000,
     "rows per write-back statement (as River)"},
    {"completer.linger", "--complete-linger", NULL, T_DUR,
     A(complete_linger_us), "2ms", 0, 1 * SEC,
     "how long a small write-back batch may wait to grow"},
    {"completer.backlog_high", "--complete-backlog", NULL, T_INT,
     A(complete_backlog_high), "10000", 100, 1000000,
     "stop fetching while this many write-backs wait (resume at half)"},
    /* forwarding to the coordinator */
    {"coordinator", "--coordinator", "TRIBUTARY_COORDINATOR", T_STR,
     A(coordinator), NULL, 0, 0,
     "forward every event to the coordinator at this nng URL (e.g. "
     "tcp://coord:7800); default: no forwarding, no outbox"},
    {"secret_file", "--secret-file", "TRIBUTARY_SECRET_FILE", T_STR,
     A(secret_file), NULL, 0, 0,
     "file holding the shared secret (mode 0600); default: the "
     "TRIBUTARY_SECRET variable, else no authentication"},
    {"outbox.dir", "--outbox-dir", "TRIBUTARY_OUTBOX_DIR", T_STR, A(outbox_dir),
     NULL, 0, 0,
     "directory of the durable event outbox (one per agent; default "
     "./tributary-outbox-<node_id>)"},
    {"outbox.max_bytes", "--outbox-max-bytes", NULL, T_BYTES,
     A(outbox_max_bytes), "256MiB", 1 * MIB, 1024 * GIB,
     "at this size the outbox is full: fetching pauses until the "
     "coordinator's acks bring it below 90%"},
    {"outbox.segment_bytes", "--outbox-segment-bytes", NULL, T_BYTES,
     A(outbox_segment_bytes), "8MiB", 64 * KIB, 1 * GIB,
     "outbox segment file size (files are deleted whole once acknowledged)"},
    {"outbox.fsync_interval", "--outbox-fsync-interval", NULL, T_DUR,
     A(outbox_fsync_us), "100ms", 1 * MS, 10 * SEC,
     "fsync the outbox this often (a power loss loses at most this "
     "window; a process crash loses nothing)"},
    {"forward.heartbeat_interval", "--heartbeat-interval", NULL, T_DUR,
     A(heartbeat_us), "1s", 100 * MS, 60 * SEC,
     "send a resource sample to the coordinator this often"},
    {"forward.drain_timeout", "--forward-drain-timeout", NULL, T_DUR,
     A(forward_drain_timeout_us), "5s", 0, 600 * SEC,
     "on stop, keep forwarding until the coordinator has every event on "
     "disk, at most this long"},
    /* TLS to a tls+tcp:// coordinator (docs/TLS.md) */
    {"tls.ca_file", "--tls-ca", TRIB_TLS_ENV_CA, T_STR, A(tls_ca_file), NULL, 0,
     0,
     "CA certificate(s) (PEM) the coordinator's certificate must chain to; "
     "required with a tls+tcp:// coordinator"},
    {"tls.cert_file", "--tls-cert", TRIB_TLS_ENV_CERT, T_STR, A(tls_cert_file),
     NULL, 0, 0,
     "this agent's client certificate (PEM), for a coordinator that "
     "requires one (--tls-client-ca)"},
    {"tls.key_file", "--tls-key", TRIB_TLS_ENV_KEY, T_STR, A(tls_key_file),
     NULL, 0, 0,
     "its private key (PEM, unencrypted, mode 0600); default: in "
     "tls.cert_file"},
    {"tls.server_name", "--tls-server-name", TRIB_TLS_ENV_SERVER_NAME, T_STR,
     A(tls_server_name), NULL, 0, 0,
     "the DNS name the coordinator's certificate must carry (default: the "
     "host of the coordinator URL)"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* ------------------------------------------------------------ helpers */

static int errf(char *err, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return TRIB_ECONFIG;
}

int trib_queue_name_valid(const char *s)
{
    size_t n = strlen(s), i;
    int prev_sep = 1;

    if (n == 0 || n > TRIB_QUEUE_NAME_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        int alnum =
            (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
        int sep = s[i] == '_' || s[i] == '-' || s[i] == '|';

        if (!alnum && !sep) {
            return 0;
        }
        if (sep && prev_sep) {
            return 0; /* leading or doubled separator */
        }
        prev_sep = sep;
    }
    return !prev_sep;
}

void trib_default_client_id(char *buf, size_t n)
{
    char host[256] = "";
    char ts[64];
    struct timespec now;
    struct tm tm;
    size_t i;

    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
        snprintf(host, sizeof(host), "unknown_host");
    }
    for (i = 0; host[i]; i++) {
        if (host[i] == '.') {
            host[i] = '_';
        }
    }
    host[60] = '\0';
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y_%m_%dT%H_%M_%S", &tm);
    snprintf(buf, n, "%s_%s_%06ld", host, ts, now.tv_nsec / 1000);
}

/* "4096", "64K", "64KiB", "8MB", "1GiB": K, M, G, T are powers of 1024
 * (with or without "i" and "B"). */
static int parse_bytes(const char *s, int64_t *out)
{
    static const char *units = "KMGT";
    const char *u;
    char *end;
    unsigned long long v;
    int shift = 0;

    if (*s < '0' || *s > '9') {
        return TRIB_EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0) {
        return TRIB_ERANGE;
    }
    if (*end != '\0' && (u = strchr(units, *end)) != NULL && *u != '\0') {
        shift = 10 * (int)(u - units + 1);
        end++;
        if (*end == 'i') {
            end++;
        }
        if (*end == 'B') {
            end++;
        }
    } else if (*end == 'B') {
        end++;
    }
    if (*end != '\0') {
        return TRIB_EINVAL;
    }
    if (v > (unsigned long long)INT64_MAX >> shift) {
        return TRIB_ERANGE;
    }
    *out = (int64_t)(v << shift);
    return 0;
}

static void format_bytes(int64_t b, char *buf, size_t n)
{
    static const char *units[] = {"", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;

    while (u < 4 && b != 0 && b % 1024 == 0) {
        b /= 1024;
        u++;
    }
    snprintf(buf, n, "%lld%s", (long long)b, units[u]);
}

/* Parses 'val' for option o into dst. */
static int set_value(const struct opt *o, void *base, const char *val,
                     const char *where, char *err, size_t errlen)
{
    char *dst = (char *)base + o->off;
    int64_t d;
    long long v;
    char *end;

    switch (o->type) {
    case T_STR:
        trib_free(*(char **)dst);
        *(char **)dst = trib_strdup(val);
        return 0;
    case T_INT:
        v = strtoll(val, &end, 10);
        if (*val == '\0' || *end != '\0') {
            return errf(err, errlen, "%s: %s: expected an integer, got '%s'",
                        where, o->key, val);
        }
        if (v < o->min || v > o->max) {
            return errf(err, errlen, "%s: %s: %lld is out of range %lld..%lld",
                        where, o->key, v, (long long)o->min, (long long)o->max);
        }
        *(int *)dst = (int)v;
        return 0;
    case T_DUR:
    case T_DUR_NEG: {
        int rv = trib_duration_parse(val, o->type == T_DUR_NEG, &d);
        if (rv != 0) {
            return errf(err, errlen,
                        "%s: %s: invalid duration '%s' (examples: 250ms, "
                        "1.5s, 2m, 1h%s)",
                        where, o->key, val,
                        o->type == T_DUR_NEG ? ", -1 for none" : "");
        }
        if (d < 0) {
            d = -1;
        } else if (d < o->min || d > o->max) {
            char lo[32], hi[32];
            trib_duration_format(o->min, lo, sizeof(lo));
            trib_duration_format(o->max, hi, sizeof(hi));
            return errf(err, errlen, "%s: %s: %s is out of range %s..%s", where,
                        o->key, val, lo, hi);
        }
        *(int64_t *)dst = d;
        return 0;
    }
    case T_BOOL:
        if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0 ||
            strcmp(val, "yes") == 0 || strcmp(val, "on") == 0) {
            *(int *)dst = 1;
        } else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0 ||
                   strcmp(val, "no") == 0 || strcmp(val, "off") == 0) {
            *(int *)dst = 0;
        } else {
            return errf(err, errlen, "%s: %s: expected true or false, got '%s'",
                        where, o->key, val);
        }
        return 0;
    case T_MODE:
        if (strcmp(val, "notify") == 0) {
            *(int *)dst = TRIB_MODE_NOTIFY;
        } else if (strcmp(val, "poll") == 0) {
            *(int *)dst = TRIB_MODE_POLL;
        } else {
            return errf(err, errlen,
                        "%s: %s: expected notify or poll, got '%s'", where,
                        o->key, val);
        }
        return 0;
    case T_BYTES: {
        int64_t b;
        if (parse_bytes(val, &b) != 0) {
            return errf(err, errlen,
                        "%s: %s: invalid size '%s' (examples: 65536, 64KiB, "
                        "8MiB, 1GiB)",
                        where, o->key, val);
        }
        if (b < o->min || b > o->max) {
            char lo[32], hi[32];
            format_bytes(o->min, lo, sizeof(lo));
            format_bytes(o->max, hi, sizeof(hi));
            return errf(err, errlen, "%s: %s: %s is out of range %s..%s", where,
                        o->key, val, lo, hi);
        }
        *(int64_t *)dst = b;
        return 0;
    }
    case T_LEVEL: {
        int l = trib_log_level_parse(val);
        if (l < 0) {
            return errf(err, errlen,
                        "%s: %s: expected error, warn, info or debug, got '%s'",
                        where, o->key, val);
        }
        *(int *)dst = l;
        return 0;
    }
    }
    return TRIB_EINVAL;
}

static void format_value(const struct opt *o, const void *base, char *buf,
                         size_t n)
{
    const char *src = (const char *)base + o->off;

    switch (o->type) {
    case T_STR: {
        const char *s = *(char *const *)src;
        snprintf(buf, n, "%s", s ? s : "");
        break;
    }
    case T_INT:
        snprintf(buf, n, "%d", *(const int *)src);
        break;
    case T_DUR:
    case T_DUR_NEG:
        if (*(const int64_t *)src < 0) {
            snprintf(buf, n, "-1");
        } else {
            trib_duration_format(*(const int64_t *)src, buf, n);
        }
        break;
    case T_BOOL:
        snprintf(buf, n, "%s", *(const int *)src ? "true" : "false");
        break;
    case T_MODE:
        snprintf(buf, n, "%s", *(const int *)src ? "poll" : "notify");
        break;
    case T_BYTES:
        format_bytes(*(const int64_t *)src, buf, n);
        break;
    case T_LEVEL: {
        static const char *names[] = {"error", "warn", "info", "debug"};
        snprintf(buf, n, "%s", names[*(const int *)src & 3]);
        break;
    }
    }
}

/* ----------------------------------------------------------- queues */

static int add_queue(struct trib_client_conf *c, const char *name,
                     long long workers, const char *where, char *err,
                     size_t errlen)
{
    size_t i;

    if (!trib_queue_name_valid(name)) {
        return errf(err, errlen,
                    "%s: queue name '%s' is invalid: expected 1-64 lowercase "
                    "letters and digits separated by single _ - or |",
                    where, name);
    }
    if (workers < 1 || workers > TRIB_MAX_WORKERS_MAX) {
        return errf(err, errlen,
                    "%s: queue '%s': max_workers %lld is out of range 1..%d",
                    where, name, workers, TRIB_MAX_WORKERS_MAX);
    }
    for (i = 0; i < c->nqueues; i++) {
        if (strcmp(c->queues[i].name, name) == 0) {
            return errf(err, errlen, "%s: queue '%s' is listed twice", where,
                        name);
        }
    }
    c->queues = trib_realloc(c->queues, (c->nqueues + 1) * sizeof(*c->queues));
    c->queues[c->nqueues].name = trib_strdup(name);
    c->queues[c->nqueues].max_workers = (int)workers;
    c->nqueues++;
    return 0;
}

/* "NAME:MAX_WORKERS" (or "NAME", 100 workers). */
static int add_queue_spec(struct trib_client_conf *c, const char *spec,
                          const char *where, char *err, size_t errlen)
{
    const char *colon = strrchr(spec, ':');
    char name[TRIB_QUEUE_NAME_MAX + 2];
    long long workers = 100;
    char *end;
    size_t nlen;

    nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (nlen == 0 || nlen > TRIB_QUEUE_NAME_MAX) {
        return errf(err, errlen,
                    "%s: queue '%s': expected NAME:MAX_WORKERS, e.g. "
                    "default:100",
                    where, spec);
    }
    memcpy(name, spec, nlen);
    name[nlen] = '\0';
    if (colon != NULL) {
        workers = strtoll(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0') {
            return errf(err, errlen,
                        "%s: queue '%s': MAX_WORKERS must be an integer "
                        "1..%d",
                        where, spec, TRIB_MAX_WORKERS_MAX);
        }
    }
    return add_queue(c, name, workers, where, err, errlen);
}

/* ------------------------------------------------------------- YAML */

static const struct opt *find_key(const char *key, enum opt_scope scope)
{
    size_t i;

    for (i = 0; i < NOPTS; i++) {
        if (opts[i].scope == scope && strcmp(opts[i].key, key) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

static int yaml_scalar(const struct trib_yaml *n, const char *path,
                       const char *field, char *err, size_t errlen)
{
    if (n->kind != TRIB_YAML_SCALAR) {
        return errf(err, errlen, "%s:%d:%d: %s: expected a single value", path,
                    n->line, n->col, field);
    }
    return 0;
}

static int load_client(const char *path, const struct trib_yaml *n, size_t idx,
                       struct trib_client_conf *c, char *err, size_t errlen)
{
    char field[96], where[256];
    size_t i, q;
    int rv;

    if (n->kind != TRIB_YAML_MAP) {
        return errf(err, errlen, "%s:%d:%d: clients[%zu]: expected a mapping",
                    path, n->line, n->col, idx);
    }
    for (i = 0; i < n->n; i++) {
        const char *key = n->keys[i];
        const struct trib_yaml *v = n->vals[i];
        const struct opt *o;

        snprintf(field, sizeof(field), "clients[%zu].%s", idx, key);
        snprintf(where, sizeof(where), "%s:%d:%d", path, v->line, v->col);
        if (strcmp(key, "id") == 0) {
            if ((rv = yaml_scalar(v, path, field, err, errlen)) != 0) {
                return rv;
            }
            if (v->str[0] == '\0' || strlen(v->str) > TRIB_CLIENT_ID_MAX) {
                return errf(err, errlen, "%s: %s: must be 1..%d characters",
                            where, field, TRIB_CLIENT_ID_MAX);
            }
            trib_free(c->id);
            c->id = trib_strdup(v->str);
        } else if (strcmp(key, "queues") == 0) {
            if (v->kind != TRIB_YAML_SEQ) {
                return errf(err, errlen,
                            "%s: %s: expected a list of NAME:MAX_WORKERS or "
                            "{name, max_workers}",
                            where, field);
            }
            for (q = 0; q < v->n; q++) {
                const struct trib_yaml *e = v->vals[q];
                snprintf(where, sizeof(where), "%s:%d:%d: %s[%zu]", path,
                         e->line, e->col, field, q);
                if (e->kind == TRIB_YAML_SCALAR) {
                    rv = add_queue_spec(c, e->str, where, err, errlen);
                } else if (e->kind == TRIB_YAML_MAP) {
                    const struct trib_yaml *nm = trib_yaml_get(e, "name");
                    const struct trib_yaml *mw =
                        trib_yaml_get(e, "max_workers");
                    long long w = 100;
                    char *end;
                    size_t k;
                    for (k = 0; k < e->n; k++) {
                        if (strcmp(e->keys[k], "name") != 0 &&
                            strcmp(e->keys[k], "max_workers") != 0) {
                            return errf(err, errlen, "%s: unknown key '%s'",
                                        where, e->keys[k]);
                        }
                    }
                    if (nm == NULL || nm->kind != TRIB_YAML_SCALAR) {
                        return errf(err, errlen, "%s: 'name' is required",
                                    where);
                    }
                    if (mw != NULL) {
                        if (mw->kind != TRIB_YAML_SCALAR) {
                            return errf(err, errlen,
                                        "%s: max_workers: expected an integer",
                                        where);
                        }
                        w = strtoll(mw->str, &end, 10);
                        if (*mw->str == '\0' || *end != '\0') {
                            return errf(err, errlen,
                                        "%s: max_workers: expected an integer "
                                        "1..%d, got '%s'",
                                        where, TRIB_MAX_WORKERS_MAX, mw->str);
                        }
                    }
                    rv = add_queue(c, nm->str, w, where, err, errlen);
                } else {
                    rv = errf(err, errlen, "%s: expected NAME:MAX_WORKERS",
                              where);
                }
                if (rv != 0) {
                    return rv;
                }
            }
        } else if ((o = find_key(key, S_CLIENT)) != NULL) {
            if ((rv = yaml_scalar(v, path, field, err, errlen)) != 0) {
                return rv;
            }
            rv = set_value(o, c, v->str, where, err, errlen);
            if (rv != 0) {
                return rv;
            }
        } else {
            return errf(
                err, errlen,
                "%s:%d: %s: unknown key (client keys: id, queues, "
                "mode, poll_interval, fetch_cooldown, fetch_cooldown_max, "
                "job_timeout, "
                "fetch_only_known_kinds)",
                path, n->key_lines[i], field);
        }
    }
    return 0;
}

/* Walks a mapping; 'prefix' is the dotted path so far. */
static int load_map(const char *path, const struct trib_yaml *map,
                    const char *prefix, struct trib_agent_conf *a,
                    const struct trib_client_conf *defaults, char *err,
                    size_t errlen)
{
    char key[128], where[256];
    size_t i, k;
    int rv;

    for (i = 0; i < map->n; i++) {
        const struct trib_yaml *v = map->vals[i];
        const struct opt *o;

        snprintf(key, sizeof(key), "%s%s", prefix, map->keys[i]);
        snprintf(where, sizeof(where), "%s:%d:%d", path, v->line, v->col);
        if (prefix[0] == '\0' && strcmp(key, "clients") == 0) {
            if (v->kind != TRIB_YAML_SEQ || v->n == 0) {
                return errf(err, errlen,
                            "%s: clients: expected a non-empty list", where);
            }
            a->clients = trib_calloc(v->n, sizeof(*a->clients));
            a->nclients = v->n;
            for (k = 0; k < v->n; k++) {
                a->clients[k] = *defaults;
                a->clients[k].id = NULL;
                a->clients[k].queues = NULL;
                a->clients[k].nqueues = 0;
                rv = load_client(path, v->vals[k], k, &a->clients[k], err,
                                 errlen);
                if (rv != 0) {
                    return rv;
                }
            }
            continue;
        }
        if (v->kind == TRIB_YAML_MAP &&
            (strcmp(key, "leader") == 0 || strcmp(key, "maintenance") == 0 ||
             strcmp(key, "sink") == 0 || strcmp(key, "completer") == 0 ||
             strcmp(key, "outbox") == 0 || strcmp(key, "forward") == 0 ||
             strcmp(key, "tls") == 0)) {
            char sub[160];
            snprintf(sub, sizeof(sub), "%s.", key);
            rv = load_map(path, v, sub, a, defaults, err, errlen);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        o = find_key(key, S_AGENT);
        if (o == NULL) {
            if (find_key(key, S_CLIENT) != NULL) {
                return errf(err, errlen,
                            "%s:%d: %s: a client setting: put it under an "
                            "entry of 'clients'",
                            path, map->key_lines[i], key);
            }
            return errf(err, errlen, "%s:%d: %s: unknown key", path,
                        map->key_lines[i], key);
        }
        if (v->kind != TRIB_YAML_SCALAR) {
            return errf(err, errlen, "%s: %s: expected a single value", where,
                        key);
        }
        rv = set_value(o, a, v->str, where, err, errlen);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* ----------------------------------------------------------- usage */

static void usage(FILE *f)
{
    size_t i;

    fprintf(f,
            "Usage: tributary-agent [OPTIONS]\n"
            "\n"
            "Runs River-compatible worker clients against a River database "
            "and reports\n"
            "every job outcome as an event.\n"
            "\n"
            "Simplest form (one client, no file):\n"
            "  tributary-agent --database-url URL --queue default:100 "
            "[--queue NAME:N ...]\n"
            "                  [--mode notify|poll] [--poll-interval 1s] "
            "[--events-out -]\n"
            "Several clients: --config FILE (YAML; see docs/AGENT.md).\n"
            "\n"
            "  --config FILE          YAML configuration file\n"
            "  --queue NAME:N         work queue NAME with N workers "
            "(1..%d; repeatable;\n"
            "                         env TRIBUTARY_QUEUES=\"a:10,b:5\")\n"
            "  --id ID                client id (default: "
            "<host>_<UTC start time>)\n"
            "  --print-config         print the effective configuration and "
            "exit\n"
            "  --help, --version\n",
            TRIB_MAX_WORKERS_MAX);
    fprintf(f, "\nOptions (flag, then YAML key; client options apply to every "
               "client):\n");
    for (i = 0; i < NOPTS; i++) {
        char flag[64], text[512];
        const char *w;
        int col;

        snprintf(flag, sizeof(flag), "%s %s", opts[i].flag,
                 opts[i].type == T_BOOL    ? "BOOL"
                 : opts[i].type == T_INT   ? "N"
                 : opts[i].type == T_STR   ? "STR"
                 : opts[i].type == T_MODE  ? "MODE"
                 : opts[i].type == T_LEVEL ? "LEVEL"
                 : opts[i].type == T_BYTES ? "SIZE"
                                           : "DUR");
        snprintf(text, sizeof(text), "%s.%s%s%s%s%s%s File: %s%s.",
                 opts[i].help, opts[i].def ? " Default " : "",
                 opts[i].def ? opts[i].def : "", opts[i].def ? "." : "",
                 opts[i].env ? " Env " : "", opts[i].env ? opts[i].env : "",
                 opts[i].env ? "." : "",
                 opts[i].scope == S_CLIENT ? "clients[]." : "", opts[i].key);
        fprintf(f, "  %-30s", flag);
        col = 32;
        if (strlen(flag) > 29) {
            fprintf(f, "\n%32s", "");
        }
        /* word-wrap the text into columns 33..79 */
        for (w = text; *w;) {
            const char *e = w;
            int len;
            while (*e && *e != ' ') {
                e++;
            }
            len = (int)(e - w);
            if (col + 1 + len > 79 && col > 32) {
                fprintf(f, "\n%32s", "");
                col = 32;
            }
            fprintf(f, " %.*s", len, w);
            col += 1 + len;
            w = *e ? e + 1 : e;
        }
        fputc('\n', f);
    }
    fprintf(f,
            "\nDurations: 250ms, 1.5s, 2m, 1h. Precedence: flag > environment "
            "> file > default.\n"
            "Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad "
            "configuration.\n");
}

/* ------------------------------------------------------------- load */

void trib_agent_conf_free(struct trib_agent_conf *c)
{
    size_t i, q, k;

    if (c == NULL) {
        return;
    }
    for (k = 0; k < NOPTS; k++) {
        if (opts[k].type == T_STR && opts[k].scope == S_AGENT) {
            trib_free(*(char **)((char *)c + opts[k].off));
        }
    }
    for (i = 0; i < c->nclients; i++) {
        for (q = 0; q < c->clients[i].nqueues; q++) {
            trib_free(c->clients[i].queues[q].name);
        }
        trib_free(c->clients[i].queues);
        trib_free(c->clients[i].id);
    }
    trib_free(c->clients);
    trib_free(c->config_path);
    trib_free(c);
}

static const struct opt *find_flag(const char *flag)
{
    size_t i;

    for (i = 0; i < NOPTS; i++) {
        if (strcmp(opts[i].flag, flag) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

struct flag_val {
    const struct opt *o;
    const char *val;
};

void trib_agent_conf_tls(const struct trib_agent_conf *c,
                         struct trib_tls_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ca_file = c->tls_ca_file;
    o->cert_file = c->tls_cert_file;
    o->key_file = c->tls_key_file;
    o->server_name = c->tls_server_name;
}

/* TLS settings go with a tls+tcp:// coordinator and only with one; the
 * files are loaded once here so that a mistake stops the start (exit 2)
 * instead of failing every handshake later. */
static int check_tls(struct trib_agent_conf *a, char *err, size_t errlen)
{
    char **fields[] = {&a->tls_ca_file, &a->tls_cert_file, &a->tls_key_file,
                       &a->tls_server_name};
    struct trib_tls_opts o;
    nng_tls_config *cfg;
    size_t i;
    int rv;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (*fields[i] != NULL && (*fields[i])[0] == '\0') {
            trib_free(*fields[i]); /* empty = unset */
            *fields[i] = NULL;
        }
    }
    trib_agent_conf_tls(a, &o);
    if (!trib_tls_url(a->coordinator)) {
        if (trib_tls_opts_set(&o) || o.server_name != NULL) {
            return errf(err, errlen,
                        "tls: TLS settings (tls.*, --tls-*, TRIBUTARY_TLS_*) "
                        "are given but the coordinator URL %s%s%s is not "
                        "tls+tcp://HOST:PORT",
                        a->coordinator ? "'" : "",
                        a->coordinator ? a->coordinator : "(none)",
                        a->coordinator ? "'" : "");
        }
        return 0;
    }
    if (o.ca_file == NULL) {
        return errf(err, errlen,
                    "coordinator: %s is a TLS address: give the CA that "
                    "signed the coordinator's certificate (tls.ca_file, "
                    "--tls-ca or TRIBUTARY_TLS_CA)",
                    a->coordinator);
    }
    rv = trib_tls_config_create(TRIB_TLS_CLIENT, &o, a->coordinator, &cfg, err,
                                errlen);
    if (rv != 0) {
        return rv;
    }
    nng_tls_config_free(cfg);
    return 0;
}

/* The coordinator URL must name a transport nng has; the outbox needs room
 * for two segments; the directory defaults from the node id. */
static int check_forwarding(struct trib_agent_conf *a, char *err, size_t errlen)
{
    static const char *schemes[] = {"tcp://",     "tcp4://",     "tcp6://",
                                    "ipc://",     "abstract://", "inproc://",
                                    "tls+tcp://", "ws://",       "wss://"};
    size_t i;
    int ok = 0;

    if (a->coordinator != NULL && a->coordinator[0] == '\0') {
        trib_free(a->coordinator); /* empty = unset (e.g. an env default) */
        a->coordinator = NULL;
    }
    if (a->coordinator != NULL) {
        for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
            size_t l = strlen(schemes[i]);
            if (strncmp(a->coordinator, schemes[i], l) == 0 &&
                a->coordinator[l] != '\0') {
                ok = 1;
            }
        }
        if (!ok) {
            return errf(err, errlen,
                        "coordinator: '%s' is not an nng URL (expected e.g. "
                        "tcp://host:7800 or ipc:///path)",
                        a->coordinator);
        }
    }
    if (a->outbox_max_bytes < 2 * a->outbox_segment_bytes) {
        return errf(err, errlen,
                    "outbox.max_bytes must be at least twice "
                    "outbox.segment_bytes");
    }
    if (a->outbox_dir == NULL) {
        char dir[300];
        size_t k;
        snprintf(dir, sizeof(dir), "./tributary-outbox-%s", a->node_id);
        for (k = 2; dir[k] != '\0'; k++) {
            if (dir[k] == '/') {
                dir[k] = '_';
            }
        }
        a->outbox_dir = trib_strdup(dir);
    } else if (a->outbox_dir[0] == '\0') {
        return errf(err, errlen, "outbox.dir: must not be empty");
    }
    return 0;
}

int trib_agent_conf_load(int argc, char **argv, struct trib_agent_conf **out,
                         char *err, size_t errlen)
{
    struct trib_agent_conf *a = TRIB_NEW(struct trib_agent_conf);
    struct trib_client_conf defaults;
    struct trib_client_conf flagq; /* --queue / TRIBUTARY_QUEUES / --id */
    struct flag_val *fv = trib_calloc((size_t)argc + 1, sizeof(*fv));
    size_t nfv = 0, i, k;
    int print_config = 0, rv = 0;
    char *idflag = NULL;
    const char *qenv;

    memset(&defaults, 0, sizeof(defaults));
    memset(&flagq, 0, sizeof(flagq));
    /* 1. defaults */
    for (k = 0; k < NOPTS; k++) {
        if (opts[k].def != NULL) {
            void *base =
                opts[k].scope == S_AGENT ? (void *)a : (void *)&defaults;
            rv = set_value(&opts[k], base, opts[k].def, "default", err, errlen);
            if (rv != 0) {
                goto done;
            }
        }
    }
    /* 2. flags (parsed now, applied after file and environment) */
    for (i = 1; i < (size_t)argc; i++) {
        char *arg = argv[i], *eq, name[64];
        const char *val = NULL;
        const struct opt *o;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            rv = 1;
            goto done;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("tributary-agent %s\n", TRIB_VERSION);
            rv = 1;
            goto done;
        }
        if (strcmp(arg, "--print-config") == 0) {
            print_config = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            rv =
                errf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            goto done;
        }
        eq = strchr(arg, '=');
        snprintf(name, sizeof(name), "%.*s",
                 (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
        if (eq != NULL) {
            val = eq + 1;
        }
        o = find_flag(name);
        if (o == NULL && strcmp(name, "--config") != 0 &&
            strcmp(name, "--queue") != 0 && strcmp(name, "--id") != 0) {
            rv = errf(err, errlen, "unknown option '%s' (see --help)", name);
            goto done;
        }
        if (val == NULL) {
            if (o != NULL && o->type == T_BOOL &&
                (i + 1 >= (size_t)argc || strncmp(argv[i + 1], "--", 2) == 0)) {
                val = "true";
            } else if (i + 1 < (size_t)argc) {
                val = argv[++i];
            } else {
                rv = errf(err, errlen, "option '%s' needs a value", name);
                goto done;
            }
        }
        if (strcmp(name, "--config") == 0) {
            trib_free(a->config_path);
            a->config_path = trib_strdup(val);
        } else if (strcmp(name, "--queue") == 0) {
            rv = add_queue_spec(&flagq, val, "--queue", err, errlen);
            if (rv != 0) {
                goto done;
            }
        } else if (strcmp(name, "--id") == 0) {
            if (val[0] == '\0' || strlen(val) > TRIB_CLIENT_ID_MAX) {
                rv = errf(err, errlen, "--id: must be 1..%d characters",
                          TRIB_CLIENT_ID_MAX);
                goto done;
            }
            idflag = (char *)val;
        } else {
            fv[nfv].o = o;
            fv[nfv].val = val;
            nfv++;
        }
    }
    /* 3. file */
    if (a->config_path != NULL) {
        struct trib_yaml *root;
        char yerr[512];

        rv = trib_yaml_load(a->config_path, &root, yerr, sizeof(yerr));
        if (rv != 0) {
            rv = errf(err, errlen, "%s", yerr);
            goto done;
        }
        if (root->kind != TRIB_YAML_MAP) {
            trib_yaml_free(root);
            rv = errf(err, errlen, "%s: expected a mapping at the top level",
                      a->config_path);
            goto done;
        }
        rv = load_map(a->config_path, root, "", a, &defaults, err, errlen);
        trib_yaml_free(root);
        if (rv != 0) {
            goto done;
        }
    }
    /* 4. environment, then 5. flags: both override file values, and
     *    client-scope ones apply to every client and to the defaults. */
    for (k = 0; k < NOPTS + nfv; k++) {
        const struct opt *o = k < NOPTS ? &opts[k] : fv[k - NOPTS].o;
        const char *val =
            k < NOPTS ? (o->env ? getenv(o->env) : NULL) : fv[k - NOPTS].val;
        char where[64];

        if (val == NULL) {
            continue;
        }
        snprintf(where, sizeof(where), "%s", k < NOPTS ? o->env : o->flag);
        if (o->scope == S_AGENT) {
            rv = set_value(o, a, val, where, err, errlen);
        } else {
            rv = set_value(o, &defaults, val, where, err, errlen);
            for (i = 0; rv == 0 && i < a->nclients; i++) {
                rv = set_value(o, &a->clients[i], val, where, err, errlen);
            }
        }
        if (rv != 0) {
            goto done;
        }
    }
    qenv = getenv("TRIBUTARY_QUEUES");
    if (flagq.nqueues == 0 && qenv != NULL && *qenv != '\0') {
        char *copy = trib_strdup(qenv), *save = NULL, *tok;
        for (tok = strtok_r(copy, ",", &save); tok != NULL && rv == 0;
             tok = strtok_r(NULL, ",", &save)) {
            rv = add_queue_spec(&flagq, tok, "TRIBUTARY_QUEUES", err, errlen);
        }
        trib_free(copy);
        if (rv != 0) {
            goto done;
        }
    }
    /* 6. the single flag-defined client */
    if (flagq.nqueues > 0 || idflag != NULL) {
        if (a->nclients > 0) {
            rv = errf(err, errlen,
                      "--queue/--id/TRIBUTARY_QUEUES define a single client; "
                      "%s already lists clients: use one or the other",
                      a->config_path);
            goto done;
        }
        if (flagq.nqueues == 0) {
            rv = errf(err, errlen, "--id given without any --queue NAME:N");
            goto done;
        }
        a->clients = trib_calloc(1, sizeof(*a->clients));
        a->nclients = 1;
        a->clients[0] = defaults;
        a->clients[0].queues = flagq.queues;
        a->clients[0].nqueues = flagq.nqueues;
        a->clients[0].id = idflag ? trib_strdup(idflag) : NULL;
        flagq.queues = NULL;
        flagq.nqueues = 0;
    }
    if (a->nclients == 0) {
        rv = errf(err, errlen,
                  "no queues to work: give --queue NAME:MAX_WORKERS (e.g. "
                  "--queue default:100) or clients in --config");
        goto done;
    }
    /* 7. cross-field checks and defaults */
    for (i = 0; i < a->nclients; i++) {
        struct trib_client_conf *c = &a->clients[i];
        if (c->nqueues == 0) {
            rv = errf(err, errlen, "clients[%zu]: no queues", i);
            goto done;
        }
        if (c->fetch_cooldown_max_us < c->fetch_cooldown_us) {
            c->fetch_cooldown_max_us = c->fetch_cooldown_us;
        }
        if (c->poll_interval_us < c->fetch_cooldown_us) {
            rv = errf(err, errlen,
                      "client %zu: poll_interval must be >= fetch_cooldown", i);
            goto done;
        }
        if (c->id == NULL) {
            char id[160];
            trib_default_client_id(id, sizeof(id));
            if (a->nclients > 1) {
                size_t l = strlen(id);
                snprintf(id + l, sizeof(id) - l, "_%zu", i + 1);
            }
            c->id = trib_strdup(id);
        }
        for (k = 0; k < i; k++) {
            if (strcmp(a->clients[k].id, c->id) == 0) {
                rv = errf(err, errlen, "client id '%s' is used twice", c->id);
                goto done;
            }
        }
    }
    if (a->leader_ttl_us <= a->elect_interval_us) {
        rv = errf(err, errlen,
                  "leader.ttl must be longer than "
                  "leader.elect_interval");
        goto done;
    }
    if (a->schema != NULL) {
        const char *p = a->schema;
        int ok = (isalpha((unsigned char)*p) || *p == '_') && strlen(p) <= 46;
        for (; ok && *p; p++) {
            ok = isalnum((unsigned char)*p) || *p == '_';
        }
        if (!ok) {
            rv = errf(err, errlen,
                      "schema '%s' is invalid: letters, digits and _, not "
                      "starting with a digit, at most 46 characters",
                      a->schema);
            goto done;
        }
    }
    if (a->node_id == NULL) {
        char host[256] = "unknown_host";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        a->node_id = trib_strdup(host);
    }
    rv = check_forwarding(a, err, errlen);
    if (rv == 0) {
        rv = check_tls(a, err, errlen);
    }
    if (rv != 0) {
        goto done;
    }
    if (print_config) {
        trib_agent_conf_dump(a, stdout);
        rv = 1;
    }

done:
    for (i = 0; i < flagq.nqueues; i++) {
        trib_free(flagq.queues[i].name);
    }
    trib_free(flagq.queues);
    trib_free(fv);
    if (rv != 0) {
        trib_agent_conf_free(a);
        a = NULL;
    }
    *out = a;
    return rv;
}

void trib_agent_conf_dump(const struct trib_agent_conf *a, FILE *f)
{
    char val[256], last_group[64] = "";
    size_t i, k, q;

    fprintf(f, "# effective tributary-agent configuration\n");
    for (k = 0; k < NOPTS; k++) {
        const char *dot;
        if (opts[k].scope != S_AGENT) {
            continue;
        }
        format_value(&opts[k], a, val, sizeof(val));
        if (strcmp(opts[k].key, "database_url") == 0 && val[0] != '\0') {
            snprintf(val, sizeof(val), "<set>"); /* may hold a password */
        }
        dot = strchr(opts[k].key, '.');
        if (dot != NULL) {
            char group[64];
            snprintf(group, sizeof(group), "%.*s", (int)(dot - opts[k].key),
                     opts[k].key);
            if (strcmp(group, last_group) != 0) {
                fprintf(f, "%s:\n", group);
                snprintf(last_group, sizeof(last_group), "%s", group);
            }
            fprintf(f, "  %s: \"%s\"\n", dot + 1, val);
        } else {
            fprintf(f, "%s: \"%s\"\n", opts[k].key, val);
        }
    }
    fprintf(f, "clients:\n");
    for (i = 0; i < a->nclients; i++) {
        fprintf(f, "  - id: \"%s\"\n", a->clients[i].id);
        for (k = 0; k < NOPTS; k++) {
            if (opts[k].scope != S_CLIENT) {
                continue;
            }
            format_value(&opts[k], &a->clients[i], val, sizeof(val));
            fprintf(f, "    %s: \"%s\"\n", opts[k].key, val);
        }
        fprintf(f, "    queues:\n");
        for (q = 0; q < a->clients[i].nqueues; q++) {
            fprintf(f, "      - {name: \"%s\", max_workers: %d}\n",
                    a->clients[i].queues[q].name,
                    a->clients[i].queues[q].max_workers);
        }
    }
}
