#!/usr/bin/env bash
# pg.sh -- a private, throwaway PostgreSQL 15 server for tests, demos and
# benchmarks.
#
#   scripts/pg.sh start DIR [--durable] [--port N] [--listen ADDR]
#                                                    start; prints the URL
#   scripts/pg.sh stop DIR                           stop (immediate) + rm DIR
#   scripts/pg.sh url DIR                            print the URL again
#
# The server listens on 127.0.0.1 only (or on the one IP address given with
# --listen, e.g. a network namespace's address), on a free port (picked and
# retried), and on a Unix socket in DIR, with trust authentication for user
# "postgres" (with --listen: also from the address's own subnets) and a
# database "tributary".
# Postgres refuses to run as root: when we are root the cluster belongs to the
# unprivileged system user "tributary-pg" (created on first use).
#
# Settings: by default the server runs with fsync, synchronous_commit and
# full_page_writes OFF (fast, for tests only: a crash of the machine loses the
# data). --durable keeps PostgreSQL's durable defaults (benchmarks and the
# demo use it, and say so).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGUSER_OS=tributary-pg

die() { echo "pg.sh: $*" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PGUSER_OS" -- "$@"
    else
        "$@"
    fi
}

ensure_user() {
    [ "$(id -u)" = 0 ] || return 0
    id "$PGUSER_OS" >/dev/null 2>&1 ||
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
}

free_port() {
    LISTEN_ADDR=$1 python3 - <<'EOF' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import os, socket
addr = os.environ["LISTEN_ADDR"]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.bind((addr, 0))
print(s.getsockname()[1])
EOF
}

cmd_start() {
    local dir="" durable=0 port="" listen=127.0.0.1
    while [ $# -gt 0 ]; do
        case "$1" in
        --durable) durable=1 ;;
        --port) port=$2; shift ;;
        --listen) listen=${2:-}; shift ;;
        -*) die "unknown option $1" ;;
        *) dir=$1 ;;
        esac
        shift
    done
    [ -n "$dir" ] || die "usage: pg.sh start DIR [--durable] [--port N] [--listen ADDR]"
    [[ "$listen" =~ ^[0-9A-Fa-f.:]+$ ]] || die "--listen wants one IP address, got '$listen'"
    [ -x "$PGBIN/initdb" ] || die "PostgreSQL 15 not found in $PGBIN (run scripts/setup.sh)"
    ensure_user
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$dir"
    # A cluster directory must not be world-readable; its parent must be
    # traversable by the owner.
    chmod 0755 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8 -N >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    # Clients on the listen address's own networks (samenet) are trusted as
    # well: with --listen other hosts (namespaces) are meant to connect.
    if [ "$listen" != 127.0.0.1 ] &&
        ! grep -q '^host all all samenet trust' "$dir/data/pg_hba.conf"; then
        echo 'host all all samenet trust' | as_owner tee -a "$dir/data/pg_hba.conf" >/dev/null
    fi
    local opts="-c listen_addresses=$listen -k $dir -c max_connections=300"
    opts="$opts -c shared_buffers=256MB -c max_wal_size=2GB"
    if [ $durable = 0 ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    local tries=0 fixed=$port p
    while :; do
        p=${fixed:-$(free_port "$listen")}
        if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
            -t 30 -o "$opts -p $p" start >/dev/null 2>&1; then
            port=$p
            break
        fi
        tries=$((tries + 1))
        if [ -n "$fixed" ] || [ $tries -ge 5 ]; then
            tail -20 "$dir/server.log" >&2 || true
            die "could not start PostgreSQL"
        fi
    done
    "$PGBIN/pg_isready" -q -h "$listen" -p "$port" -U postgres -t 30 ||
        die "server did not become ready"
    "$PGBIN/psql" -q -h "$listen" -p "$port" -U postgres -d postgres \
        -c "CREATE DATABASE tributary" >/dev/null 2>&1 || true
    echo "$port" >"$dir/port"
    echo "$durable" >"$dir/durable"
    local host=$listen
    if [[ "$host" == *:* ]]; then host="[$host]"; fi
    echo "postgres://postgres@$host:$port/tributary?sslmode=disable" >"$dir/url"
    cat "$dir/url"
}

cmd_stop() {
    local dir=${1:-}
    [ -n "$dir" ] || die "usage: pg.sh stop DIR"
    [ -d "$dir/data" ] || return 0
    as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

cmd_url() {
    cat "${1:?usage: pg.sh url DIR}/url"
}

case "${1:-}" in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
url) shift; cmd_url "$@" ;;
*) die "usage: pg.sh start|stop|url DIR" ;;
esac
