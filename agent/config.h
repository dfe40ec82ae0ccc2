/*
 * config -- tributary-agent's configuration: one declarative option table
 * drives the YAML file (--config), the environment (TRIBUTARY_*,
 * DATABASE_URL), the command-line flags, --help and --print-config.
 *
 * Precedence: flag > environment > file > default. Client-scope options
 * given as flags or environment apply to every client.
 *
 * Ownership: trib_agent_conf_load() returns a heap object owned by the
 * caller; free with trib_agent_conf_free(). All strings inside are owned.
 * Threading: call from the main thread before the loop starts.
 */
#ifndef TRIB_AGENT_CONFIG_H
#define TRIB_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum trib_fetch_mode {
    TRIB_MODE_NOTIFY = 0, /* LISTEN river_insert/river_control + poll */
    TRIB_MODE_POLL = 1,   /* poll only; no LISTEN at all              */
};

#define TRIB_MAX_WORKERS_MAX 10000
#define TRIB_CLIENT_ID_MAX   100
#define TRIB_QUEUE_NAME_MAX  64

struct trib_queue_conf {
    char *name;
    int max_workers;
};

struct trib_client_conf {
    char *id;
    int mode;                      /* enum trib_fetch_mode                   */
    int64_t poll_interval_us;      /* FetchPollInterval                      */
    int64_t fetch_cooldown_us;     /* after idle, and the minimum      */
    int64_t fetch_cooldown_max_us; /* adaptive upper bound             */
    int64_t job_timeout_us;        /* -1: none                               */
    int fetch_only_known_kinds;
    struct trib_queue_conf *queues;
    size_t nqueues;
};

struct trib_agent_conf {
    char *config_path;
    char *database_url; /* NULL: libpq's PG* environment             */
    char *schema;       /* NULL: the connection's current_schema()   */
    char *node_id;      /* node name for logs and the coordinator    */
    char *events_out;   /* NULL, "-" or a path                       */
    int threads;        /* worker threads for BLOCKING kinds         */
    int log_level;
    int64_t shutdown_grace_us;
    int64_t stats_interval_us; /* AGT-STATS lines; 0: none         */

    int leader_enabled;
    int64_t elect_interval_us;
    int64_t leader_ttl_us;

    int64_t scheduler_interval_us;
    int64_t rescuer_interval_us;
    int64_t rescue_after_us;
    int64_t cleaner_interval_us;
    int64_t completed_retention_us; /* -1: keep forever */
    int64_t cancelled_retention_us;
    int64_t discarded_retention_us;
    int64_t queue_cleaner_interval_us;
    int64_t queue_retention_us;
    int reindexer;

    char *sink_url;
    char *sink_table;
    int sink_connections;

    int complete_batch_max;     /* rows per write-back statement     */
    int64_t complete_linger_us; /* max wait to grow a small batch    */
    int complete_backlog_high;  /* stop fetching above this          */

    /* forwarding to the coordinator (forwarder.c, outbox.c) */
    char *coordinator;        /* nng URL; NULL: no forwarding, no outbox */
    char *secret_file;        /* NULL: TRIBUTARY_SECRET, or no secret    */
    char *outbox_dir;         /* default ./tributary-outbox-<node_id>    */
    int64_t outbox_max_bytes; /* full (fetching paused) at this size     */
    int64_t outbox_segment_bytes;
    int64_t outbox_fsync_us;
    int64_t heartbeat_us;
    int64_t forward_drain_timeout_us; /* on stop: wait for durable acks */

    /* TLS to a tls+tcp:// coordinator (docs/TLS.md); NULL: unset */
    char *tls_ca_file;     /* CA(s) the coordinator's certificate needs  */
    char *tls_cert_file;   /* client certificate (mutual TLS)            */
    char *tls_key_file;    /* its key; NULL: in tls_cert_file            */
    char *tls_server_name; /* name to verify; NULL: the URL's host       */

    struct trib_client_conf *clients;
    size_t nclients;
};

/*
 * Builds the configuration from argv, the environment and the optional
 * file. Returns 0 (run), 1 (--help/--version/--print-config handled:
 * exit 0), or TRIB_ECONFIG with a precise message in err (exit 2).
 */
int trib_agent_conf_load(int argc, char **argv, struct trib_agent_conf **out,
                         char *err, size_t errlen);
void trib_agent_conf_free(struct trib_agent_conf *c); /* NULL ok */

/* The TLS fields above as trib_tls options (borrowing the strings). */
struct trib_tls_opts;
void trib_agent_conf_tls(const struct trib_agent_conf *c,
                         struct trib_tls_opts *o);

/* Writes the effective configuration as YAML. */
void trib_agent_conf_dump(const struct trib_agent_conf *c, FILE *f);

/* River's queue-name rule: 1..64 chars of [a-z0-9] with single _ - or |
 * separators. Returns 1 when valid. */
int trib_queue_name_valid(const char *name);

/* River's default client id: "<host>_<UTC time>" (dots in host become
 * underscores, host cut to 60 bytes; time 2006_01_02T15_04_05_000000). */
void trib_default_client_id(char *buf, size_t n);

#endif /* TRIB_AGENT_CONFIG_H */
