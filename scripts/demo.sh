#!/usr/bin/env bash
# demo.sh -- the README's main command: set up, build, and run a small
# mixed-strategy load on a local cluster, then report.
#
#   scripts/demo.sh [--plan FILE] [--jobs N] [--keep]
#
# What it does:
#   1. installs missing packages and builds (build/);
#   2. starts a private, throwaway PostgreSQL 15 on 127.0.0.1 (durable
#      defaults: fsync and synchronous_commit on; as an unprivileged user)
#      and creates River's schema;
#   3. `tributary up --detach`: a coordinator and three agents ("nodes"),
#      each with a notify-mode client on queue "notify_q" and a poll-mode
#      client on queue "poll_q", forwarding every event to the coordinator;
#   4. `tributary stress --plan docs/plans/mixed-demo.yaml`: a mixed-strategy
#      load test -- equal load on notify_q and poll_q, jobs due 2-4 s after
#      insertion, ~5 % of attempts failing (retried once), the arrival rate
#      ramped through four stages (~20,000 jobs) -- followed to the last job
#      through the coordinator's events and river_job; it prints the summary
#      and writes .tmp/demo/report/report.html (--jobs N: N jobs at 1000/s
#      instead of the stages);
#   5. stops everything (`tributary down`; --keep leaves the cluster running
#      and prints how to use it). Exit code: tributary stress's.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

JOBS=""
KEEP=0
PLAN=docs/plans/mixed-demo.yaml
while [ $# -gt 0 ]; do
    case "$1" in
    --jobs) JOBS=$2; shift ;;
    --plan) PLAN=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case "$JOBS" in *[!0-9]*) echo "demo.sh: --jobs needs a number" >&2; exit 2 ;; esac

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

say "stress run: $PLAN${JOBS:+ (--jobs $JOBS)}"
# Mixed strategy: equal load on notify_q (notify clients) and poll_q (poll
# clients), jobs due 2-4 s after insertion, ~5 % failing attempts retried
# once, four stages ramping the arrival rate; thresholds decide the exit
# code. Ends with the summary and the path of the HTML report.
EXTRA=()
if [ -n "$JOBS" ]; then
    EXTRA=(--jobs "$JOBS" --rate 1000)
fi
set +e
"$BIN/tributary" stress --plan "$PLAN" --out "$RUN/report" "${EXTRA[@]}"
CODE=$?
set -e
echo
echo "HTML report: $RUN/report/report.html"

if [ $KEEP = 1 ]; then
    echo
    echo "The cluster keeps running: . $CLUSTER/env; tributary watch"
    echo "Stop it: $BIN/tributary down --dir $CLUSTER; scripts/pg.sh stop $PGDIR"
fi
exit "$CODE"
