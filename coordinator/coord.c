/*
 * coord.c -- tributary-coordinator: options, start-up, shutdown.
 *
 * Reading order: the option table and its help text, parsing (flags over
 * environment over defaults), the "coordinator" object of status, start,
 * stop.
 */
#include "coord.h"
#include "control.h"
#include "ingest.h"
#include "nngsrv.h"
#include "poller.h"
#include "store.h"
#include "trib_auth.h"
#include "trib_err.h"
#include "trib_log.h"
#include "trib_mem.h"
#include "trib_time.h"
#include "trib_tls.h"
#include "view.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct conf {
    const char *listen, *control, *database_url, *schema, *data_dir;
    const char *secret_file, *id, *log_level;
    struct trib_tls_opts tls; /* cert_file, key_file; ca_file: client CAs */
    int64_t poll_us, heartbeat_us, sync_us, snapshot_us;
    int64_t ring;
};

struct coord {
    uv_loop_t loop;
    struct conf conf;
    char id[128];
    int64_t started_at;
    char *secret;
    size_t secret_len;
    nng_tls_config *tls; /* the identity of every tls+tcp:// address */
    struct trib_view *view;
    struct trib_store *store;
    struct trib_poller *poller;
    struct trib_ingest *ingest;
    struct trib_control *control;
    uv_signal_t sig_term, sig_int;
    uv_timer_t stats_timer;
    uint64_t last_applied;
};

static const char usage[] =
    "Usage: tributary-coordinator [options]\n"
    "\n"
    "Merges every agent's job events into one exact cluster-wide view and\n"
    "answers the CLI (tributary status|wait|watch|events|nodes|failures).\n"
    "\n"
    "Options (environment variable in brackets; flags win):\n"
    "  --listen URL          where agents connect [TRIBUTARY_LISTEN]\n"
    "                        (default tcp://127.0.0.1:7100; use\n"
    "                        tcp://0.0.0.0:7100 for agents on other hosts)\n"
    "  --control URL         where the CLI connects [TRIBUTARY_CONTROL]\n"
    "                        (default tcp://127.0.0.1:7101; read-only)\n"
    "  --database-url URL    River's database, for the polling view\n"
    "                        [DATABASE_URL] (none: event view only)\n"
    "  --database-schema S   schema holding river_job (default: search_path)\n"
    "                        [TRIBUTARY_DATABASE_SCHEMA]\n"
    "  --poll-interval D     how often to poll river_job (default 1s; 0 off)\n"
    "  --data-dir DIR        persist the view here (log + snapshots) so a\n"
    "                        restart, even after kill -9, loses nothing\n"
    "                        [TRIBUTARY_DATA_DIR] (none: memory only; agents\n"
    "                        then delete events once they are applied)\n"
    "  --secret-file FILE    shared secret agents must prove (mode 0600)\n"
    "                        [TRIBUTARY_SECRET_FILE]; else $TRIBUTARY_SECRET;\n"
    "                        neither: agents are not authenticated (warned)\n"
    "  --tls-cert FILE       this coordinator's TLS certificate (PEM, with\n"
    "                        its chain) for every tls+tcp:// address in\n"
    "                        --listen/--control [TRIBUTARY_TLS_CERT]\n"
    "  --tls-key FILE        its private key (PEM, unencrypted, mode 0600;\n"
    "                        default: in --tls-cert) [TRIBUTARY_TLS_KEY]\n"
    "  --tls-client-ca FILE  require client certificates signed by these\n"
    "                        CAs (mutual TLS) [TRIBUTARY_TLS_CLIENT_CA]\n"
    "  --id ID               this coordinator's name (default host:pid)\n"
    "  --heartbeat D         agents' heartbeat period, for liveness (1s)\n"
    "  --events-ring N       events kept for `tributary events` (16384)\n"
    "  --sync-interval D     group-commit interval of the log (20ms)\n"
    "  --snapshot-interval D snapshot period (60s)\n"
    "  --log-level L         error|warn|info|debug (info)\n"
    "                        [TRIBUTARY_LOG_LEVEL]\n"
    "  --help, --version\n"
    "\n"
    "Durations: 250ms, 1s, 2m. Stops cleanly on SIGTERM or SIGINT (final\n"
    "snapshot). Exit status: 0 clean stop, 1 runtime failure (e.g. address\n"
    "in use, data directory locked or unreadable), 2 bad options.\n";

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "tributary-coordinator: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nTry 'tributary-coordinator --help'.\n");
    return 2;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : def;
}

static int parse_duration(const char *flag, const char *v, int64_t *out)
{
    if (trib_duration_parse(v, 0, out) != 0) {
        return bad("%s: '%s' is not a duration (e.g. 500ms, 1s, 2m)", flag, v);
    }
    return 0;
}

/* 0 to run, -1 to exit 0 (help/version), else an exit code. */
static int parse(struct conf *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"control", required_argument, NULL, 'c'},
        {"database-url", required_argument, NULL, 'd'},
        {"database-schema", required_argument, NULL, 'S'},
        {"poll-interval", required_argument, NULL, 'p'},
        {"data-dir", required_argument, NULL, 'D'},
        {"secret-file", required_argument, NULL, 's'},
        {"id", required_argument, NULL, 'i'},
        {"heartbeat", required_argument, NULL, 'H'},
        {"events-ring", required_argument, NULL, 'r'},
        {"sync-interval", required_argument, NULL, 'y'},
        {"snapshot-interval", required_argument, NULL, 'n'},
        {"log-level", required_argument, NULL, 'L'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"tls-client-ca", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *poll = "1s", *hb = "1s", *sync = "20ms", *snap = "60s";
    const char *ring = "16384";
    char *end;
    int o, rv;

    c->listen = env_or("TRIBUTARY_LISTEN", "tcp://127.0.0.1:7100");
    c->control = env_or("TRIBUTARY_CONTROL", "tcp://127.0.0.1:7101");
    c->database_url = env_or("DATABASE_URL", NULL);
    c->schema = env_or("TRIBUTARY_DATABASE_SCHEMA", NULL);
    c->data_dir = env_or("TRIBUTARY_DATA_DIR", NULL);
    c->secret_file = env_or("TRIBUTARY_SECRET_FILE", NULL);
    c->log_level = env_or("TRIBUTARY_LOG_LEVEL", "info");
    c->tls.cert_file = env_or(TRIB_TLS_ENV_CERT, NULL);
    c->tls.key_file = env_or(TRIB_TLS_ENV_KEY, NULL);
    c->tls.ca_file = env_or(TRIB_TLS_ENV_CLIENT_CA, NULL);
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'l':
            c->listen = optarg;
            break;
        case 'c':
            c->control = optarg;
            break;
        case 'd':
            c->database_url = optarg;
            break;
        case 'S':
            c->schema = optarg;
            break;
        case 'p':
            poll = optarg;
            break;
        case 'D':
            c->data_dir = optarg;
            break;
        case 's':
            c->secret_file = optarg;
            break;
        case 'i':
            c->id = optarg;
            break;
        case 'H':
            hb = optarg;
            break;
        case 'r':
            ring = optarg;
            break;
        case 'y':
            sync = optarg;
            break;
        case 'n':
            snap = optarg;
            break;
        case 'L':
            c->log_level = optarg;
            break;
        case 'C':
            c->tls.cert_file = optarg;
            break;
        case 'K':
            c->tls.key_file = optarg;
            break;
        case 'A':
            c->tls.ca_file = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return -1;
        case 'V':
            printf("tributary-coordinator %s (protocol %d)\n", TRIB_VERSION,
                   TRIB_WIRE_VERSION);
            return -1;
        case ':':
            return bad("option %s needs a value%s", argv[optind - 1], "");
        default:
            return bad("unknown option %s%s", argv[optind - 1], "");
        }
    }
    if (optind < argc) {
        return bad("unexpected argument '%s'%s", argv[optind], "");
    }
    if ((rv = parse_duration("--poll-interval", poll, &c->poll_us)) != 0 ||
        (rv = parse_duration("--heartbeat", hb, &c->heartbeat_us)) != 0 ||
        (rv = parse_duration("--sync-interval", sync, &c->sync_us)) != 0 ||
        (rv = parse_duration("--snapshot-interval", snap, &c->snapshot_us)) !=
            0) {
        return rv;
    }
    if (c->heartbeat_us < 100000) {
        return bad("--heartbeat: %s is too short (at least 100ms)%s", hb, "");
    }
    c->ring = strtoll(ring, &end, 10);
    if (*ring == '\0' || *end != '\0' || c->ring < 16 || c->ring > 1 << 22) {
        return bad("--events-ring: '%s' is not a number in 16..4194304%s", ring,
                   "");
    }
    if (trib_log_level_parse(c->log_level) < 0) {
        return bad("--log-level: '%s' is not error, warn, info or debug%s",
                   c->log_level, "");
    }
    if (c->data_dir != NULL && c->data_dir[0] == '\0') {
        return bad("--data-dir is empty%s%s", "", "");
    }
    if (trib_tls_opts_set(&c->tls) && !trib_tls_url(c->listen) &&
        !trib_tls_url(c->control)) {
        return bad("TLS files are given (--tls-cert, --tls-key, "
                   "--tls-client-ca or their TRIBUTARY_TLS_* variables) but "
                   "neither --listen (%s) nor --control (%s) is a tls+tcp:// "
                   "address",
                   c->listen, c->control);
    }
    if ((trib_tls_url(c->listen) || trib_tls_url(c->control)) &&
        c->tls.cert_file == NULL) {
        return bad("%s is a TLS address: give this coordinator's certificate "
                   "and key (--tls-cert FILE --tls-key FILE)%s",
                   trib_tls_url(c->listen) ? c->listen : c->control, "");
    }
    return 0;
}

/* The TLS identity, when an address is tls+tcp://. 0 or an exit code. */
static int tls_open(struct coord *co)
{
    char err[512];

    if (!trib_tls_url(co->conf.listen) && !trib_tls_url(co->conf.control)) {
        return 0;
    }
    if (trib_tls_config_create(TRIB_TLS_SERVER, &co->conf.tls, NULL, &co->tls,
                               err, sizeof(err)) != 0) {
        fprintf(stderr, "tributary-coordinator: %s\n", err);
        return 2;
    }
    if (!trib_tls_url(co->conf.listen)) {
        TRIB_WARN("CRD-TLS",
                  "agents connect to %s without TLS (only --control is "
                  "tls+tcp://): their events cross the network in clear",
                  co->conf.listen);
    }
    return 0;
}

/* ---- The "coordinator" object of status
 * --------------------------------------- */

static void describe(void *arg, json_t *o)
{
    struct coord *co = arg;
    struct trib_ingest_stats is;
    char ts[40];

    trib_ingest_stats(co->ingest, &is);
    trib_time_rfc3339(co->started_at, ts, sizeof(ts), 3);
    json_object_set_new(o, "id", json_string(co->id));
    json_object_set_new(o, "version", json_string(TRIB_VERSION));
    json_object_set_new(o, "started_at", json_string(ts));
    json_object_set_new(
        o, "uptime_s",
        json_real((double)(trib_now_us() - co->started_at) / 1e6));
    json_object_set_new(o, "persistent", json_boolean(co->store != NULL));
    json_object_set_new(o, "data_dir",
                        co->conf.data_dir != NULL
                            ? json_string(co->conf.data_dir)
                            : json_null());
    json_object_set_new(o, "authentication", json_boolean(co->secret != NULL));
    json_object_set_new(
        o, "tls",
        json_pack("{s:b,s:b,s:b}", "listen", trib_tls_url(co->conf.listen),
                  "control", trib_tls_url(co->conf.control),
                  "client_certificates",
                  co->tls != NULL && co->conf.tls.ca_file != NULL));
    json_object_set_new(o, "frames", json_integer((json_int_t)is.frames));
    json_object_set_new(o, "frames_rejected",
                        json_integer((json_int_t)is.frames_rejected));
    json_object_set_new(o, "auth_failures",
                        json_integer((json_int_t)is.auth_failures));
    json_object_set_new(o, "unauthenticated",
                        json_integer((json_int_t)is.unauthenticated));
    json_object_set_new(o, "agent_connections",
                        json_integer((json_int_t)is.sessions));
    if (co->store != NULL) {
        struct trib_store_stats ss;

        trib_store_stats(co->store, &ss);
        json_object_set_new(
            o, "store",
            json_pack("{s:I,s:I,s:I,s:f,s:I,s:b}", "wal_bytes",
                      (json_int_t)ss.wal_bytes, "syncs", (json_int_t)ss.syncs,
                      "snapshots", (json_int_t)ss.snapshots, "last_sync_ms",
                      (double)ss.last_sync_us / 1000.0, "replayed_batches",
                      (json_int_t)ss.replayed, "failing", ss.failing));
    }
}

/* ---- Lifecycle
 * ---------------------------------------------------------------------- */

static void on_applied(void *arg)
{
    struct coord *co = arg;

    trib_control_kick(co->control);
}

static void on_stats(uv_timer_t *t)
{
    struct coord *co = t->data;
    struct trib_view_stats vs;

    trib_view_stats(co->view, &vs);
    if (vs.events_applied != co->last_applied) {
        TRIB_INFO("CRD-STATS",
                  "%" PRIu64 " events applied (+%" PRIu64
                  " in the last minute), %" PRIu64 " duplicates, %" PRIu64
                  " groups",
                  vs.events_applied, vs.events_applied - co->last_applied,
                  vs.duplicates, vs.groups);
        co->last_applied = vs.events_applied;
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct coord *co = h->data;

    TRIB_INFO("CRD-SIGNAL", "received %s: stopping", strsignal(signum));
    uv_stop(&co->loop);
}

static int start(struct coord *co)
{
    struct trib_view_conf vc;
    struct trib_ingest_opts io;
    struct trib_control_opts cs;
    char err[256];
    int rv;

    rv = trib_auth_load_secret(co->conf.secret_file, &co->secret,
                               &co->secret_len, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "tributary-coordinator: %s\n", err);
        return 2;
    }
    if ((rv = tls_open(co)) != 0) {
        return rv;
    }
    if (co->secret == NULL) {
        TRIB_WARN("CRD-NOSECRET",
                  "no shared secret (TRIBUTARY_SECRET or "
                  "--secret-file): any agent that can reach %s is accepted",
                  co->conf.listen);
    }
    trib_view_conf_defaults(&vc);
    vc.heartbeat_ms = co->conf.heartbeat_us / 1000;
    vc.ring_events = (uint32_t)co->conf.ring;
    if ((rv = trib_view_new(&vc, &co->view)) != 0) {
        return 1;
    }
    if (co->conf.data_dir != NULL) {
        struct trib_store_opts so;

        memset(&so, 0, sizeof(so));
        so.dir = co->conf.data_dir;
        so.sync_ms = co->conf.sync_us / 1000;
        so.snapshot_ms = co->conf.snapshot_us / 1000;
        if (trib_store_open(&co->loop, &so, co->view, &co->store) != 0) {
            return 1;
        }
    } else {
        TRIB_WARN("CRD-MEMONLY", "no --data-dir: the view lives in memory "
                                 "only; a restart starts from zero");
    }
    if (co->conf.database_url != NULL && co->conf.poll_us > 0) {
        struct trib_poller_conf pc;

        trib_poller_conf_defaults(&pc);
        pc.conninfo = co->conf.database_url;
        pc.schema = co->conf.schema;
        pc.interval_ms = co->conf.poll_us / 1000;
        pc.view = co->view;
        if (trib_poller_create(&co->loop, &pc, &co->poller) != 0) {
            return 1;
        }
        trib_poller_start(co->poller);
    }
    memset(&io, 0, sizeof(io));
    io.url = co->conf.listen;
    io.coordinator_id = co->id;
    io.secret = co->secret;
    io.secret_len = co->secret_len;
    io.heartbeat_ms = co->conf.heartbeat_us / 1000;
    io.on_applied = on_applied;
    io.tls = co->tls;
    io.arg = co;
    if (trib_ingest_start(&co->loop, &io, co->view, co->store, &co->ingest) !=
        0) {
        return 1;
    }
    memset(&cs, 0, sizeof(cs));
    cs.url = co->conf.control;
    cs.describe = describe;
    cs.tls = co->tls;
    cs.arg = co;
    if (trib_control_start(&co->loop, &cs, co->view, co->poller,
                           &co->control) != 0) {
        return 1;
    }
    TRIB_INFO("CRD-START",
              "coordinator %s %s: agents on %s, control on %s%s, "
              "%s, database view %s",
              co->id, TRIB_VERSION, co->conf.listen, co->conf.control,
              co->tls == NULL                ? ""
              : co->conf.tls.ca_file != NULL ? " (TLS, client certificates "
                                               "required)"
                                             : " (TLS)",
              co->store != NULL ? "persistent" : "memory only",
              co->poller != NULL ? "on" : "off");
    return 0;
}

static void stop(struct coord *co)
{
    trib_ingest_close(co->ingest);
    trib_control_close(co->control);
    if (co->poller != NULL) {
        trib_poller_close(co->poller, NULL, NULL);
    }
    if (trib_store_close(co->store) != 0) {
        TRIB_ERROR("CRD-STOP", "the final snapshot failed: the log is kept "
                               "and replays at the next start");
    }
    trib_view_free(co->view);
    if (co->tls != NULL) {
        nng_tls_config_free(co->tls);
    }
    if (co->secret != NULL) {
        memset(co->secret, 0, co->secret_len);
        trib_free(co->secret);
    }
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

int trib_coordinator_main(int argc, char **argv)
{
    struct coord co;
    char host[64];
    int rv;

    memset(&co, 0, sizeof(co));
    rv = parse(&co.conf, argc, argv);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    signal(SIGPIPE, SIG_IGN);
    trib_log_init("coordinator", trib_log_level_parse(co.conf.log_level));
    if (co.conf.id != NULL) {
        snprintf(co.id, sizeof(co.id), "%s", co.conf.id);
    } else {
        if (gethostname(host, sizeof(host)) != 0) {
            strcpy(host, "localhost");
        }
        host[sizeof(host) - 1] = '\0';
        snprintf(co.id, sizeof(co.id), "%s:%d", host, (int)getpid());
    }
    co.started_at = trib_now_us();
    uv_loop_init(&co.loop);
    uv_signal_init(&co.loop, &co.sig_term);
    uv_signal_init(&co.loop, &co.sig_int);
    co.sig_term.data = co.sig_int.data = &co;
    uv_signal_start(&co.sig_term, on_signal, SIGTERM);
    uv_signal_start(&co.sig_int, on_signal, SIGINT);
    uv_timer_init(&co.loop, &co.stats_timer);
    co.stats_timer.data = &co;
    uv_timer_start(&co.stats_timer, on_stats, 60000, 60000);

    rv = start(&co);
    if (rv == 0) {
        uv_run(&co.loop, UV_RUN_DEFAULT);
        TRIB_INFO("CRD-STOP", "stopping");
    }
    stop(&co);
    uv_close((uv_handle_t *)&co.sig_term, NULL);
    uv_close((uv_handle_t *)&co.sig_int, NULL);
    uv_close((uv_handle_t *)&co.stats_timer, NULL);
    uv_walk(&co.loop, close_walk, NULL);
    uv_run(&co.loop, UV_RUN_DEFAULT);
    uv_loop_close(&co.loop);
    if (rv == 0) {
        TRIB_INFO("CRD-STOP", "stopped");
    }
    return rv;
}
