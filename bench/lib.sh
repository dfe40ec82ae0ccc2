# bench/lib.sh -- shared by the benchmark scripts in bench/ (sourced).
#
# Environment:
#   BENCH_BIN    directory with tributary, tributary-agent, riverbench,
#                riverworker, pickupbench, benchtool [build-bench/bin]
#   BENCH_PGDIR  where the private PostgreSQL lives [/tmp/trib-bench-pg-$$]
#   BENCH_OUT    where raw results go [/tmp/trib-bench-<script>-<time>]
#   BENCH_PGSS   1: also load pg_stat_statements (diagnosis; costs a little)
#
# Every server and process started here is stopped by bench_cleanup (trap).

set -euo pipefail

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_BIN=${BENCH_BIN:-$BENCH_ROOT/build-bench/bin}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
BENCH_PGDIR=${BENCH_PGDIR:-/tmp/trib-bench-pg-$$}
BENCH_PIDS=()
BENCH_URL=""

bench_die() { echo "bench: $*" >&2; exit 1; }
bench_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

bench_need_bins() {
    local b
    for b in "$@"; do
        [ -x "$BENCH_BIN/$b" ] || bench_die "$BENCH_BIN/$b missing: build first (cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo && make -C build-bench -j2), or set BENCH_BIN"
    done
}

bench_cleanup() {
    local p
    for p in "${BENCH_PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${BENCH_PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    if [ -d "$BENCH_PGDIR/data" ]; then
        "$BENCH_ROOT/scripts/pg.sh" stop "$BENCH_PGDIR" || true
    fi
}

bench_as_pg_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u tributary-pg -- "$@"
    else
        "$@"
    fi
}

# bench_pg_start [SETTING=VALUE ...]: a durable private server (fsync and
# synchronous_commit on: PostgreSQL's defaults), with extra settings applied
# through ALTER SYSTEM and a restart. Sets BENCH_URL.
bench_pg_start() {
    BENCH_URL=$("$BENCH_ROOT/scripts/pg.sh" start "$BENCH_PGDIR" --durable)
    local kv restart=0
    if [ "${BENCH_PGSS:-0}" = 1 ]; then
        set -- "$@" shared_preload_libraries=pg_stat_statements track_io_timing=on
    fi
    for kv in "$@"; do
        psql -qX "$BENCH_URL" -c "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'" >/dev/null
        restart=1
    done
    if [ $restart = 1 ]; then
        bench_as_pg_owner "$PGBIN/pg_ctl" -D "$BENCH_PGDIR/data" \
            -l "$BENCH_PGDIR/server.log" -w -t 60 restart >/dev/null
    fi
    if [ "${BENCH_PGSS:-0}" = 1 ]; then
        psql -qX "$BENCH_URL" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    fi
    "$BENCH_BIN/tributary" migrate up --database-url "$BENCH_URL" >/dev/null
}

bench_sql() { psql -qXtA "$BENCH_URL" -c "$1"; }

# The machine and the server, printed once per run.
bench_describe() {
    local cpu cores mem deb pgv
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    cores=$(nproc)
    mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
    deb=$(cat /etc/debian_version 2>/dev/null || echo '?')
    pgv=$(bench_sql "SHOW server_version")
    echo "machine: $cpu, $cores cores, $mem RAM, Debian $deb, kernel $(uname -r)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "PostgreSQL $pgv on the same machine (unix time; same clock as the clients)"
    echo "PostgreSQL settings not at their defaults:"
    psql -qXtA -F ' = ' "$BENCH_URL" -c "SELECT name, current_setting(name)
        FROM pg_settings WHERE source NOT IN ('default', 'override')
          AND name NOT IN ('application_name', 'client_encoding', 'DateStyle',
                           'default_text_search_config', 'lc_messages',
                           'lc_monetary', 'lc_numeric', 'lc_time', 'TimeZone',
                           'log_timezone', 'unix_socket_directories', 'port')
        ORDER BY name" | sed 's/^/  /'
    echo "  (fsync, synchronous_commit, full_page_writes, wal_sync_method at defaults: $(bench_sql "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','wal_sync_method')"))"
}

# bench_reset N KIND [ARGS]: empty River's tables, insert N available jobs of
# KIND with COPY (no notification), VACUUM ANALYZE and CHECKPOINT, so every
# run starts from the same state.
bench_reset() {
    local n=$1 kind=$2 args=${3:-'{}'}
    bench_sql "TRUNCATE river_job, river_leader, river_queue" >/dev/null
    if [ "$n" -gt 0 ]; then
        "$BENCH_BIN/tributary" insert --database-url "$BENCH_URL" --quiet \
            --count "$n" --kind "$kind" --args "$args" --batch 5000 --no-notify
    fi
    bench_sql "VACUUM ANALYZE river_job" >/dev/null
    bench_sql "CHECKPOINT" >/dev/null
    if [ "${BENCH_PGSS:-0}" = 1 ]; then
        bench_sql "SELECT pg_stat_statements_reset()" >/dev/null
    fi
}

bench_cpu_snap() { # OUTFILE [LABEL=PID ...]
    local out=$1 a=()
    shift
    local x
    for x in "$@"; do a+=(--pid "$x"); done
    "$BENCH_BIN/benchtool" cpu-snap --pg-data "$BENCH_PGDIR/data" \
        --database-url "$BENCH_URL" "${a[@]}" >"$out"
}

# bench_get FILE KEY: a value from a one-line JSON result (see benchtool get:
# KEY, pg:GROUP for a cpu-diff group's CPU seconds, extra:LABEL).
bench_get() { "$BENCH_BIN/benchtool" get "$1" "$2"; }

bench_pgss_top() { # FILE: top statements by total time, if pg_stat_statements is on
    [ "${BENCH_PGSS:-0}" = 1 ] || return 0
    psql -qX "$BENCH_URL" -c "SELECT calls, rows, round(total_exec_time::numeric, 1) AS total_ms,
        round(mean_exec_time::numeric, 3) AS mean_ms, wal_records, wal_fpi,
        left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
        FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12" >"$1" 2>&1 || true
}
