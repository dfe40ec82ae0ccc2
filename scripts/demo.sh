#!/usr/bin/env bash
# demo.sh -- the README's main command: set up, build, and run a small
# mixed-strategy load on a local cluster, then report.
#
#   scripts/demo.sh [--jobs N] [--keep]
#
# What it does:
#   1. installs missing packages and builds (build/);
#   2. starts a private, throwaway PostgreSQL 15 on 127.0.0.1 (durable
#      defaults: fsync and synchronous_commit on; as an unprivileged user)
#      and creates River's schema;
#   3. `tributary up --detach`: a coordinator and three agents ("nodes"),
#      each with a notify-mode client on queue "notify_q" and a poll-mode
#      client on queue "poll_q", forwarding every event to the coordinator;
#   4. inserts N jobs per queue with `tributary insert`: sleeps of 5-25 ms
#      scheduled 0-3 s after insertion, plus ~5 % jobs that fail;
#   5. `tributary wait` returns the moment the coordinator has seen every job
#      finish; then `tributary status` (counts, rates, latency per queue and
#      per mode -- notify vs poll --, the database view beside the event
#      view) and `tributary failures`;
#   6. stops everything (`tributary down`; --keep leaves the cluster running
#      and prints how to use it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

JOBS=2000
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --jobs) JOBS=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$JOBS" in ''|*[!0-9]*) echo "demo.sh: --jobs needs a number" >&2; exit 2 ;; esac

export PATH="/usr/local/go/bin:$PATH"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "setup and build"
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target tributary tributary-agent tributary-coordinator -- \
    --no-print-directory >/dev/null
BIN="$ROOT/build/bin"

RUN="$ROOT/.tmp/demo"
PGDIR="$RUN/pg"
CLUSTER="$RUN/cluster"
mkdir -p "$RUN"
cleanup() {
    if [ $KEEP = 0 ]; then
        "$BIN/tributary" down --dir "$CLUSTER" >/dev/null 2>&1 || true
        scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

say "private PostgreSQL (durable defaults: fsync=on, synchronous_commit=on)"
"$BIN/tributary" down --dir "$CLUSTER" >/dev/null 2>&1 || true
scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true
rm -rf "$CLUSTER"
URL=$(scripts/pg.sh start "$PGDIR" --durable)
echo "$URL"

say "local cluster: coordinator + 3 agents x (notify client on notify_q, poll client on poll_q)"
"$BIN/tributary" up --detach --dir "$CLUSTER" --database-url "$URL" \
    --agents 3 --notify-queues notify_q --poll-queues poll_q
# shellcheck disable=SC1091
. "$CLUSTER/env"
export TRIBUTARY_CONTROL DATABASE_URL

say "inserting $JOBS jobs per queue (sleeps 5-25 ms, delayed 0-3 s; ~5% failing)"
FAILS=$((JOBS / 20))
OK=$((JOBS - FAILS))
for q in notify_q poll_q; do
    for ms in 5 15 25; do
        "$BIN/tributary" insert --database-url "$URL" --queue "$q" --quiet \
            --count $((OK / 3)) --kind tributary.sleep --args "{\"ms\": $ms}" \
            --spread 3s --batch 500
    done
    "$BIN/tributary" insert --database-url "$URL" --queue "$q" --quiet \
        --count $((OK - 3 * (OK / 3))) --kind tributary.noop --spread 3s
    "$BIN/tributary" insert --database-url "$URL" --queue "$q" --quiet \
        --count "$FAILS" --kind tributary.fail --max-attempts 1 \
        --args '{"message": "payment gateway timeout"}' --spread 3s
done
TOTAL=$((2 * JOBS))
echo "inserted $TOTAL jobs"

say "waiting for every job to finish (tributary wait: cluster-wide, from the events)"
"$BIN/tributary" wait --count "$TOTAL" --timeout 5m

say "tributary status"
sleep 1.5 # one more database poll, so both views are current
"$BIN/tributary" status

say "tributary failures"
"$BIN/tributary" failures

if [ $KEEP = 1 ]; then
    echo
    echo "The cluster keeps running: . $CLUSTER/env; tributary watch"
    echo "Stop it: $BIN/tributary down --dir $CLUSTER; scripts/pg.sh stop $PGDIR"
fi
