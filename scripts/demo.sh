#!/usr/bin/env bash
# demo.sh -- the README's main command: set up, build, and run a small
# mixed-strategy load on this machine, then report.
#
#   scripts/demo.sh [--jobs N] [--keep]
#
# What it does:
#   1. installs missing packages and builds (build/);
#   2. starts a private, throwaway PostgreSQL 15 on 127.0.0.1 (durable
#      defaults: fsync and synchronous_commit on) and creates River's schema
#      with `tributary migrate up`;
#   3. starts two agents ("nodes"), each with two River-compatible clients:
#      one notify-mode client on queue "notify_q" and one poll-mode client on
#      queue "poll_q";
#   4. inserts N jobs per queue with `tributary insert`: sleeps of 5-25 ms
#      scheduled 0-3 s after insertion, plus ~5 % jobs that fail;
#   5. waits until every job is finalized, then reports from river_job and
#      from the agents' event streams: counts, pickup and end-to-end latency
#      per queue (notify vs poll), failures;
#   6. stops everything (--keep leaves PostgreSQL running and prints its URL).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

JOBS=2000
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --jobs) JOBS=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
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
cmake --build build -j "$(nproc)" --target tributary tributary-agent -- \
    --no-print-directory >/dev/null
BIN="$ROOT/build/bin"

RUN="$ROOT/.tmp/demo"
PGDIR="$RUN/pg"
mkdir -p "$RUN"
rm -f "$RUN"/*.ndjson "$RUN"/*.log
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ $KEEP = 0 ]; then scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

say "private PostgreSQL (durable defaults: fsync=on, synchronous_commit=on)"
scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true
URL=$(scripts/pg.sh start "$PGDIR" --durable)
echo "$URL"
"$BIN/tributary" migrate up --database-url "$URL"

say "two agents x two clients (notify on notify_q, poll on poll_q)"
for n in 1 2; do
    cat >"$RUN/agent$n.yaml" <<EOF
node_id: node$n
clients:
  - id: node${n}_notify
    mode: notify
    queues: ["notify_q:50"]
  - id: node${n}_poll
    mode: poll
    poll_interval: 1s
    queues: ["poll_q:50"]
EOF
    "$BIN/tributary-agent" --database-url "$URL" --config "$RUN/agent$n.yaml" \
        --events-out "$RUN/agent$n.ndjson" --log-level warn \
        2>"$RUN/agent$n.log" &
    PIDS+=($!)
    echo "agent $n: pid $! (config $RUN/agent$n.yaml)"
done
sleep 1

say "inserting $JOBS jobs per queue (sleeps 5-25 ms, delayed 0-3 s; ~5% failing)"
FAILS=$((JOBS / 20))
OK=$((JOBS - FAILS))
T0=$(date +%s)
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

say "waiting for every job to finish"
deadline=$(($(date +%s) + 300))
while :; do
    done_n=$(psql -Atq "$URL" -c "SELECT count(*) FROM river_job
        WHERE state IN ('completed','discarded','cancelled')")
    printf '\r  finished %d / %d' "$done_n" "$TOTAL"
    [ "$done_n" -ge "$TOTAL" ] && break
    if [ "$(date +%s)" -gt $deadline ]; then
        echo; echo "demo: timed out waiting for jobs" >&2; exit 1
    fi
    sleep 0.5
done
echo
ELAPSED=$(($(date +%s) - T0))

say "report ($TOTAL jobs, ${ELAPSED}s wall time)"
psql -q "$URL" -P footer=off <<'EOF'
\echo 'Outcome per queue (river_job):'
SELECT queue, count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'discarded') AS failed,
       count(*) FILTER (WHERE state NOT IN ('completed','discarded')) AS other
FROM river_job GROUP BY queue ORDER BY queue;
\echo 'Latency per queue, ms (pickup = attempted_at - scheduled_at; end-to-end = finalized_at - scheduled_at):'
SELECT queue,
  round(percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM attempted_at - scheduled_at))::numeric * 1000, 1) AS pickup_p50,
  round(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM attempted_at - scheduled_at))::numeric * 1000, 1) AS pickup_p95,
  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM attempted_at - scheduled_at))::numeric * 1000, 1) AS pickup_p99,
  round(percentile_cont(0.50) WITHIN GROUP (ORDER BY extract(epoch FROM finalized_at - scheduled_at))::numeric * 1000, 1) AS e2e_p50,
  round(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finalized_at - scheduled_at))::numeric * 1000, 1) AS e2e_p95
FROM river_job GROUP BY queue ORDER BY queue;
\echo 'Failure modes:'
SELECT kind, errors[1] ->> 'error' AS error, count(*)
FROM river_job WHERE state = 'discarded' GROUP BY 1, 2 ORDER BY 3 DESC;
\echo 'Jobs per client (last attempted_by):'
SELECT attempted_by[array_length(attempted_by, 1)] AS client, count(*)
FROM river_job GROUP BY 1 ORDER BY 1;
EOF
echo "Events written by the agents (one NDJSON line per job outcome):"
for n in 1 2; do
    printf '  %s: %s events (%s)\n' "$RUN/agent$n.ndjson" \
        "$(wc -l <"$RUN/agent$n.ndjson")" \
        "$(grep -o '"event":"[a-z_]*"' "$RUN/agent$n.ndjson" | sort | uniq -c |
            awk '{printf "%s%s %s", sep, $1, $2; sep=", "}' | tr -d '"' | sed 's/event://g')"
done
if [ $KEEP = 1 ]; then
    echo "PostgreSQL left running: $URL (stop: scripts/pg.sh stop $PGDIR)"
fi
