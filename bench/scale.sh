#!/usr/bin/env bash
# bench/scale.sh -- Tributary at scale on one machine (issue 5): a durable
# private PostgreSQL, one coordinator (--data-dir, --database-url, shared
# secret) and N agents with K clients each (half notify on queue "default",
# half poll on queue "poll"), then `tributary stress --mixed` inserts the
# jobs and follows them to the end. Meanwhile the coordinator's CPU, RSS,
# threads and data directory, the agents' CPU and RSS, the coordinator's
# applied events and PostgreSQL's connections are sampled from /proc and
# the control socket. Ends with the nothing-lost comparison (the
# coordinator's per-(queue, kind, state) counts against river_job) and a
# summary block to paste. Exits 1 on a MISMATCH (or a failed run).
#
#   bench/scale.sh [--agents N] [--clients-per-agent N] [--jobs N]
#                  [--workers N] [--kind KIND] [--timeout S] [--pgss] [--keep]
#
# Environment: those of bench/lib.sh (BENCH_BIN, BENCH_OUT, BENCH_PGDIR).
# Every loop is bounded in count and time; every process started here is
# stopped on exit or interrupt (agents, then the coordinator, then
# PostgreSQL) unless --keep.
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

usage() {
    cat <<'EOF'
usage: bench/scale.sh [options]

  --agents N             tributary-agent processes, 1..64 [16]
  --clients-per-agent N  clients per agent, 1..16 [4]: ceil(N/2) notify-mode on
                         queue "default", floor(N/2) poll-mode (1 s) on "poll"
  --jobs N               jobs inserted by `tributary stress`, 1..10000000 [200000]
  --workers N            workers per client, 1..10000 [50]
  --kind KIND            job kind [tributary.noop]
  --timeout SECONDS      stress run timeout, 10..86400 [1800]
  --pgss                 load pg_stat_statements and save the top statements
                         by total time in OUT/pgss.txt (diagnosis; costs a little)
  --keep                 leave the cluster running at the end (prints how to
                         stop it)
  -h, --help

Environment: BENCH_BIN (binaries: tributary, tributary-agent,
tributary-coordinator) [build-bench/bin], BENCH_OUT (results)
[/tmp/trib-bench-scale-<time>], BENCH_PGDIR (the private PostgreSQL).
EOF
}

AGENTS=16 CPA=4 JOBS=200000 WORKERS=50 KIND=tributary.noop TIMEOUT=1800 KEEP=0 PGSS=0

# int_arg NAME VALUE MIN MAX: a whole number in range, else exit 2.
int_arg() {
    if ! [[ $2 =~ ^[0-9]+$ ]] || [ ${#2} -gt 9 ] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
        echo "bench/scale.sh: $1: expected a whole number $3..$4, got '$2'" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case $1 in
    --agents | --clients-per-agent | --jobs | --workers | --kind | --timeout)
        [ $# -ge 2 ] || { echo "bench/scale.sh: $1 needs a value" >&2; exit 2; }
        case $1 in
        --agents) int_arg "$1" "$2" 1 64; AGENTS=$2 ;;
        --clients-per-agent) int_arg "$1" "$2" 1 16; CPA=$2 ;;
        --jobs) int_arg "$1" "$2" 1 10000000; JOBS=$2 ;;
        --workers) int_arg "$1" "$2" 1 10000; WORKERS=$2 ;;
        --timeout) int_arg "$1" "$2" 10 86400; TIMEOUT=$2 ;;
        --kind)
            [[ $2 =~ ^[A-Za-z0-9_.:-]{1,127}$ ]] ||
                { echo "bench/scale.sh: --kind: expected 1..127 of A-Z a-z 0-9 _ . : -, got '$2'" >&2; exit 2; }
            KIND=$2
            ;;
        esac
        shift 2
        ;;
    --keep) KEEP=1; shift ;;
    --pgss) PGSS=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/scale.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# Our own settings only: none of the agents' or the CLI's variables.
unset TRIBUTARY_QUEUES TRIBUTARY_MODE TRIBUTARY_NODE_ID TRIBUTARY_SCHEMA \
    TRIBUTARY_SECRET TRIBUTARY_CONTROL TRIBUTARY_COORDINATOR DATABASE_URL
export LC_ALL=C
NOTIFY_CLIENTS=$(((CPA + 1) / 2))
POLL_CLIENTS=$((CPA / 2))
OUT=${BENCH_OUT:-/tmp/trib-bench-scale-$(date +%Y%m%d-%H%M%S)}
TICK=$(getconf CLK_TCK)
mkdir -p "$OUT"
command -v jq >/dev/null || bench_die "jq is needed (apt-get install jq)"
bench_need_bins tributary tributary-agent tributary-coordinator
TRIB=$BENCH_BIN/tributary

COORD_PID="" AGENT_PIDS=() SAMPLER_PID="" SAMPLER2_PID="" WAIT_PID="" STRESS_PID="" CONTROL="" LISTEN=""
COORD_DIR=$OUT/coordinator
SECRET=$OUT/secret

log() { bench_log "$*"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; } # calc FORMAT EXPR
now() { echo "$EPOCHREALTIME"; }

# wait_gone PID SECONDS: 0 once PID no longer runs, 1 after SECONDS.
wait_gone() {
    local i
    for i in $(seq 1 $(($2 * 10))); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# Stops what we started: the samplers, stress (SIGTERM: it follows the
# jobs in flight for its 5 s grace and writes its report; SIGKILL after
# 20 s), every agent (SIGTERM: they
# finish running jobs and drain their outbox; SIGKILL after 45 s), the
# coordinator (SIGTERM: final snapshot; SIGKILL after 20 s), PostgreSQL.
scale_cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
    [ -n "$SAMPLER2_PID" ] && kill "$SAMPLER2_PID" 2>/dev/null
    [ -n "$WAIT_PID" ] && kill "$WAIT_PID" 2>/dev/null
    if [ -n "$STRESS_PID" ]; then
        kill -TERM "$STRESS_PID" 2>/dev/null
        wait_gone "$STRESS_PID" 20 || { log "tributary stress still runs after 20 s: SIGKILL"; kill -KILL "$STRESS_PID" 2>/dev/null; }
    fi
    if [ "$KEEP" = 1 ] && [ -n "$COORD_PID" ]; then
        {
            echo
            echo "--keep: the cluster runs on. Use it with:"
            echo "  export TRIBUTARY_CONTROL=$CONTROL DATABASE_URL='$BENCH_URL'"
            echo "Stop it with:"
            echo "  kill ${AGENT_PIDS[*]}; sleep 15; kill $COORD_PID; $BENCH_ROOT/scripts/pg.sh stop $BENCH_PGDIR"
        } >&2
        exit "$rc"
    fi
    for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${AGENT_PIDS[@]}"; do
        wait_gone "$p" 45 || { log "agent $p still runs after 45 s: SIGKILL"; kill -KILL "$p" 2>/dev/null; }
    done
    if [ -n "$COORD_PID" ]; then
        kill -TERM "$COORD_PID" 2>/dev/null
        wait_gone "$COORD_PID" 20 || { log "coordinator still runs after 20 s: SIGKILL"; kill -KILL "$COORD_PID" 2>/dev/null; }
    fi
    wait 2>/dev/null
    bench_cleanup
    exit "$rc"
}
trap scale_cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# free_port [EXCEPT]: a TCP port below the ephemeral range that no socket uses.
free_port() {
    local p lo i
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
    for i in $(seq 1 200); do
        p=$((10000 + RANDOM % (lo - 10000)))
        [ "$p" != "${1:-}" ] && [ -z "$(ss -Htan "sport = :$p")" ] && { echo "$p"; return 0; }
    done
    bench_die "no free TCP port found"
}

status_json() { "$TRIB" status --json --control "$CONTROL" 2>/dev/null; }

# CPU seconds of our PostgreSQL: the postmaster with its reaped children
# (backends that ended) plus the live ones; one awk over /proc.
pg_cpu() {
    local pm files=() c
    pm=$(head -1 "$BENCH_PGDIR/data/postmaster.pid")
    for c in $(pgrep -P "$pm"); do files+=("/proc/$c/stat"); done
    awk -v t="$TICK" -v pm="/proc/$pm/stat" '
        { sub(/^.*\) /, ""); s += $12 + $13; if (FILENAME == pm) s += $14 + $15 }
        END { printf "%.2f", s / t }' "/proc/$pm/stat" "${files[@]}" 2>/dev/null
}

# Busy CPU seconds of the whole machine so far (all CPUs; not idle, iowait).
machine_busy() {
    awk -v t="$TICK" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t; exit }' /proc/stat
}

# One line: coordinator ticks, RSS kB, threads; agents' ticks, RSS kB, and
# how many of them run (from /proc/PID/stat and /status).
proc_sample() {
    local files=() p
    for p in "$COORD_PID" "${AGENT_PIDS[@]}"; do
        [ -r "/proc/$p/stat" ] && files+=("/proc/$p/stat" "/proc/$p/status")
    done
    [ ${#files[@]} -gt 0 ] || { echo "0 0 0 0 0 0"; return; }
    awk -v c="$COORD_PID" '
        FNR == 1 { split(FILENAME, a, "/"); pid = a[3]; kind = a[4] }
        kind == "stat" { sub(/^.*\) /, ""); t = $12 + $13
                         if (pid == c) ct = t; else { at += t; n++ } }
        kind == "status" && $1 == "VmRSS:" { if (pid == c) cr = $2; else ar += $2 }
        kind == "status" && $1 == "Threads:" && pid == c { th = $2 }
        END { printf "%d %d %d %d %d %d\n", ct, cr, th, at, ar, n }' "${files[@]}" 2>/dev/null ||
        echo "0 0 0 0 0 0"
}

# CHILD_CPU = CPU seconds of this shell's reaped children (the `times`
# builtin). Not in $(...) or a pipe: a subshell would count its own.
children_cpu() {
    times >"$OUT/times.txt"
    CHILD_CPU=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } }
                     END { printf "%.2f", s }' "$OUT/times.txt")
}

dir_bytes() { du -sb "$1" 2>/dev/null | cut -f1; }

# pace NEXT_VAR: sleeps until the next whole second after the previous
# call's (a slow round shortens the pause, never below 0).
pace() {
    local -n nx=$1
    local left
    nx=$((nx + 1000000))
    left=$((nx - ${EPOCHREALTIME/./}))
    if [ "$left" -gt 0 ]; then
        sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"
    else
        nx=${EPOCHREALTIME/./}
    fi
}

# The samplers (background processes), each at most MAX rounds or until
# OUT/sampler.stop exists. sample_proc: every second one line of
# samples.tsv from /proc (no query, so a busy coordinator or database does
# not slow it). sample_ctl: every 2 s one line of control.tsv from the
# coordinator's status document and pg_stat_activity.
sample_proc() {
    local max=$1 i=0 l next=${EPOCHREALTIME/./}
    while [ "$i" -lt "$max" ] && [ ! -e "$OUT/sampler.stop" ]; do
        read -r l _ </proc/loadavg
        printf '%s %s %s %s\n' "$EPOCHREALTIME" "$(proc_sample)" "$(dir_bytes "$COORD_DIR")" \
            "$l" >>"$OUT/samples.tsv"
        i=$((i + 1))
        pace next
    done
}
# samples.tsv: 1 time, 2 coordinator ticks, 3 its RSS kB, 4 its threads,
# 5 agents' ticks, 6 agents' RSS kB, 7 agents running, 8 coordinator
# data-dir bytes, 9 1-min load average.
sample_ctl() {
    local max=$1 i=0 s ev fin conns next=${EPOCHREALTIME/./}
    while [ "$i" -lt "$max" ] && [ ! -e "$OUT/sampler.stop" ]; do
        ev=- fin=-
        s=$(status_json | jq -r '"\(.coordinator.events_applied) \(.totals.finished)"' 2>/dev/null) || s=""
        [[ $s =~ ^[0-9]+\ [0-9]+$ ]] && read -r ev fin <<<"$s"
        conns=$(bench_sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>/dev/null) || conns=-
        printf '%s %s %s %s\n' "$EPOCHREALTIME" "$ev" "$fin" "$conns" >>"$OUT/control.tsv"
        i=$((i + 1))
        pace next
        pace next
    done
}
# control.tsv: 1 time, 2 events_applied, 3 finished, 4 PostgreSQL client
# connections ("-": no answer).

write_agent_conf() { # I FILE
    local i=$1 k
    {
        echo "# written by bench/scale.sh: scale-$i's clients"
        echo "clients:"
        for k in $(seq 1 "$NOTIFY_CLIENTS"); do
            printf '  - id: scale-%d-notify-%d\n    mode: notify\n    queues: ["default:%d"]\n' "$i" "$k" "$WORKERS"
        done
        for k in $(seq 1 "$POLL_CLIENTS"); do
            printf '  - id: scale-%d-poll-%d\n    mode: poll\n    poll_interval: 1s\n    queues: ["poll:%d"]\n' "$i" "$k" "$WORKERS"
        done
    } >"$2"
}

# ------------------------------------------------------------------ start
{
    echo "scale benchmark: $AGENTS agents x $CPA clients ($NOTIFY_CLIENTS notify on 'default', $POLL_CLIENTS poll on 'poll'), $JOBS jobs of $KIND, $WORKERS workers per client, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "tributary: commit $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), binaries from $BENCH_BIN"
} | tee "$OUT/machine.txt"

# Connections: each client holds a few (fetch, write-back, LISTEN), each
# agent one more for leadership and maintenance; measured below. Raise
# max_connections above pg.sh's 300 when the estimate needs it.
need_conns=$((AGENTS * (CPA * 3 + 2) + 30))
pg_set=()
[ "$need_conns" -gt 300 ] && pg_set+=("max_connections=$need_conns")
# lib.sh's BENCH_PGSS sets pg_stat_statements.track before the library is
# loaded, which PostgreSQL refuses: --pgss loads it alone.
BENCH_PGSS=0
[ "$PGSS" = 1 ] && pg_set+=(shared_preload_libraries=pg_stat_statements track_io_timing=on)
log "starting a durable PostgreSQL in $BENCH_PGDIR ${pg_set[*]}"
bench_pg_start "${pg_set[@]}"
if [ "$PGSS" = 1 ]; then
    bench_sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    BENCH_PGSS=1 # bench_pgss_top and bench_describe report it
fi
bench_describe | tee -a "$OUT/machine.txt"
echo "max_connections = $(bench_sql 'SHOW max_connections')" | tee -a "$OUT/machine.txt"

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET"
chmod 0600 "$SECRET"
lp=$(free_port)
LISTEN=tcp://127.0.0.1:$lp
CONTROL=tcp://127.0.0.1:$(free_port "$lp")
"$BENCH_BIN/tributary-coordinator" --listen "$LISTEN" --control "$CONTROL" \
    --data-dir "$COORD_DIR" --database-url "$BENCH_URL" --secret-file "$SECRET" \
    --log-level warn 2>"$OUT/coordinator.log" &
COORD_PID=$!
for i in $(seq 1 100); do
    status_json >/dev/null && break
    kill -0 "$COORD_PID" 2>/dev/null || bench_die "the coordinator exited: $(tail -3 "$OUT/coordinator.log")"
    [ "$i" = 100 ] && bench_die "the coordinator does not answer on $CONTROL after 10 s"
    sleep 0.1
done
log "coordinator pid $COORD_PID (agents: $LISTEN, control: $CONTROL)"

for i in $(seq 1 "$AGENTS"); do
    write_agent_conf "$i" "$OUT/agent-$i.yaml"
    "$BENCH_BIN/tributary-agent" --config "$OUT/agent-$i.yaml" \
        --database-url "$BENCH_URL" --node-id "scale-$i" --coordinator "$LISTEN" \
        --outbox-dir "$OUT/outbox-$i" --secret-file "$SECRET" --log-level warn \
        2>"$OUT/agent-$i.log" &
    AGENT_PIDS+=($!)
done
# Ready when every agent reports alive to the coordinator (at most 90 s).
alive=0
for i in $(seq 1 180); do
    alive=$("$TRIB" nodes --json --control "$CONTROL" 2>/dev/null |
        jq '[.nodes[] | select(.liveness == "alive")] | length' 2>/dev/null) || alive=0
    [ "${alive:-0}" -ge "$AGENTS" ] && break
    for p in "${AGENT_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || bench_die "agent pid $p exited: $(tail -3 "$OUT"/agent-*.log | tail -5)"
    done
    [ "$i" = 180 ] && bench_die "only $alive of $AGENTS agents alive after 90 s (logs: $OUT/agent-*.log)"
    sleep 0.5
done
sleep 3 # let every client open its connections and reach its first fetch
idle_conns=$(bench_sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
agent_conns=$(bench_sql "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'tributary-agent%'")
log "$AGENTS agents alive; PostgreSQL client connections: $idle_conns ($agent_conns of the agents)"

# ---------------------------------------------------------------- the run
ev0=$(status_json | jq -r '.coordinator.events_applied')
dir0=$(dir_bytes "$COORD_DIR")
la0=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$OUT/samples.tsv"
: >"$OUT/control.tsv"
sample_proc $((TIMEOUT + 300)) &
SAMPLER_PID=$!
sample_ctl $((TIMEOUT / 2 + 150)) &
SAMPLER2_PID=$!
pg0=$(pg_cpu)
read -r c_ticks0 c_rss0 c_thr0 a_ticks0 a_rss0 _ <<<"$(proc_sample)"
m0=$(machine_busy)

if [ "$POLL_CLIENTS" -gt 0 ]; then
    qargs=(--mixed)
else
    qargs=(--queue default)
fi
log "tributary stress: $JOBS jobs (log: $OUT/stress.log)"
t0=$(now)
# The moment the coordinator has counted every job: `tributary wait`
# returns (its own --timeout bounds it).
("$TRIB" wait --count "$JOBS" --timeout "${TIMEOUT}s" --quiet --control "$CONTROL" \
    >"$OUT/wait.log" 2>&1 && now >"$OUT/coord_all") &
WAIT_PID=$!
children_cpu
s_cpu0=$CHILD_CPU
set +e
"$TRIB" stress --jobs "$JOBS" "${qargs[@]}" --kind "$KIND" --timeout "${TIMEOUT}s" \
    --out "$OUT/stress" --control "$CONTROL" --database-url "$BENCH_URL" --no-color \
    >"$OUT/stress.txt" 2>"$OUT/stress.log" &
STRESS_PID=$!
wait "$STRESS_PID"
stress_rc=$?
set -e
t1=$(now)
m1=$(machine_busy)
STRESS_PID=""
# stress's CPU: the children reaped while waiting for it (only stress; the
# samplers and the cluster run on).
children_cpu
s_cpu=$(calc %.2f "$CHILD_CPU - $s_cpu0")
read -r c_ticks1 c_rss1 c_thr1 a_ticks1 a_rss1 a_n1 <<<"$(proc_sample)"
pg1=$(pg_cpu)
la1=$(cut -d' ' -f1-3 /proc/loadavg)
touch "$OUT/sampler.stop"
wait "$SAMPLER_PID" "$SAMPLER2_PID" 2>/dev/null || true
SAMPLER_PID="" SAMPLER2_PID=""
# stress ends once the coordinator has every job, so wait is done or
# about to be (at most 30 s more).
wait_gone "$WAIT_PID" 30 || log "tributary wait still runs (see $OUT/wait.log)"
kill "$WAIT_PID" 2>/dev/null || true
wait "$WAIT_PID" 2>/dev/null || true
WAIT_PID=""
coord_s=-
[ -s "$OUT/coord_all" ] && coord_s=$(calc %.2f "$(cat "$OUT/coord_all") - $t0")
if [ "$PGSS" = 1 ]; then
    bench_pgss_top "$OUT/pgss.txt"
    bench_sql "SELECT round(sum(total_exec_time)::numeric / 1000, 1) || ' s in ' || sum(calls) || ' statements' FROM pg_stat_statements" >>"$OUT/pgss.txt"
fi
cat "$OUT/stress.txt"
[ "$stress_rc" = 0 ] || log "tributary stress exited with $stress_rc (see $OUT/stress.log)"
[ "$a_n1" = "$AGENTS" ] || log "WARNING: only $a_n1 of $AGENTS agents still run"
kill -0 "$COORD_PID" 2>/dev/null || bench_die "the coordinator died during the run: $(tail -3 "$OUT/coordinator.log")"

# ---------------------------------------------------------- nothing lost
# The coordinator's finished counts per (queue, kind, state) against
# river_job's, once the coordinator has counted every job (at most 60 s);
# then the events it applied against those the table implies (one per
# completed or cancelled job, one per recorded error except the rescuer's,
# one per snooze).
db_final() {
    bench_sql "SELECT queue || ' ' || kind || ' ' || state || ' ' || count(*) FROM river_job
               WHERE state IN ('completed', 'discarded', 'cancelled') GROUP BY queue, kind, state
               ORDER BY 1" | sort
}
coord_final() { # STATUS-JSON
    jq -r '[.groups[] as $g | ("completed", "discarded", "cancelled") as $s
            | select(($g[$s] // 0) > 0) | {k: "\($g.queue) \($g.kind) \($s)", n: $g[$s]}]
           | group_by(.k) | .[] | "\(.[0].k) \(map(.n) | add)"' <<<"$1" | sort
}
for i in $(seq 1 60); do
    st=$(status_json) || st='{}'
    db_final >"$OUT/final.db"
    coord_final "$st" >"$OUT/final.coord" 2>/dev/null || : >"$OUT/final.coord"
    if [ "$(jq -r '.totals.finished // 0' <<<"$st")" -ge "$JOBS" ] && cmp -s "$OUT/final.db" "$OUT/final.coord"; then
        break
    fi
    sleep 1
done
printf '%s\n' "$st" >"$OUT/status.json"
ev1=$(jq -r '.coordinator.events_applied' <<<"$st")
dups=$(jq -r '.coordinator.duplicates' <<<"$st")
dir1=$(dir_bytes "$COORD_DIR")
implied=$(bench_sql "SELECT count(*) FILTER (WHERE state IN ('completed', 'cancelled'))
    + coalesce(sum((SELECT count(*) FROM unnest(errors) AS e
        WHERE e->>'error' NOT LIKE 'Stuck job rescued by JobRescuer%')), 0)
    + coalesce(sum(coalesce((metadata->>'snoozes')::int, 0)), 0) FROM river_job")
unfinished=$(bench_sql "SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'discarded', 'cancelled')")
total_db=$(bench_sql "SELECT count(*) FROM river_job")
span=$(bench_sql "SELECT round(extract(epoch FROM max(finalized_at) - min(created_at))::numeric, 3) FROM river_job")
[ -n "$span" ] || span=0
final_conns=$(bench_sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")

lost_ok=1
{
    echo
    echo "nothing lost: the coordinator's finished counts vs river_job, per (queue, kind, state)"
    printf '  %-10s %-24s %-10s %10s %12s  %s\n' queue kind state river_job coordinator check
    join -a1 -a2 -e 0 -o 0,1.2,2.2 \
        <(awk '{ print $1 "#" $2 "#" $3, $4 }' "$OUT/final.db" | sort) \
        <(awk '{ print $1 "#" $2 "#" $3, $4 }' "$OUT/final.coord" | sort) |
        awk '{ split($1, k, "#"); printf "  %-10s %-24s %-10s %10d %12d  %s\n", k[1], k[2], k[3], $2, $3, ($2 == $3 ? "OK" : "MISMATCH") }'
} | tee "$OUT/nothing-lost.txt"
grep -q MISMATCH "$OUT/nothing-lost.txt" && lost_ok=0
[ -s "$OUT/final.db" ] || lost_ok=0
check() { # LABEL A B
    local r=OK
    [ "$2" = "$3" ] || { r=MISMATCH; lost_ok=0; }
    printf '  %-58s %12s %12s  %s\n' "$1" "$2" "$3" "$r" | tee -a "$OUT/nothing-lost.txt"
}
check "jobs inserted (stress) / rows in river_job" "$JOBS" "$total_db"
check "unfinished rows in river_job / expected" "$unfinished" 0
check "coordinator totals.finished / rows in river_job" "$(jq -r '.totals.finished' <<<"$st")" "$total_db"
check "events applied (coordinator) / implied by river_job" "$ev1" "$implied"

# ---------------------------------------------------------------- figures
wall=$(calc %.2f "$t1 - $t0")
spand=$(calc %.3f "($span > 0 ? $span : 0.001)") # a divisor
c_cpu=$(calc %.2f "($c_ticks1 - $c_ticks0) / $TICK")
a_cpu=$(calc %.2f "($a_ticks1 - $a_ticks0) / $TICK")
pg_s=$(calc %.2f "$pg1 - $pg0")
rest=$(calc %.2f "($m1 - $m0) - $c_cpu - $a_cpu - $pg_s - $s_cpu")
rep=$OUT/stress/report.json
rj() { jq -r "($1) as \$v | if \$v == null then \"-\" else \$v end" "$rep" 2>/dev/null || echo -; }
# Per-second figures from the samples taken during the run.
stats=$(awk -v t="$TICK" '
    function med(a, n,   i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { n++; r[n] = $3; if ($3 > rp) rp = $3; if ($4 > thr) thr = $4; if ($6 > ar) ar = $6
      if ($8 > dp) dp = $8; if ($9 > lm) lm = $9
      if (n > 1 && $1 > pt + 0.5) { p = 100 * ($2 - pc) / t / ($1 - pt); if (p > cp) cp = p }
      pt = $1; pc = $2 }
    END { printf "%.1f %.1f %d %.1f %.1f %d %.2f\n", rp / 1024, med(r, n) / 1024, thr, cp, ar / 1024, dp, lm }' "$OUT/samples.tsv")
read -r rss_peak rss_med thr_max cpu_peak a_rss_peak dir_peak load_max <<<"$stats"
read -r ev_peak conns_max <<<"$(awk '
    $2 != "-" { if (et != "" && $1 > et + 0.5) { e = ($2 - ev) / ($1 - et); if (e > ep) ep = e }; et = $1; ev = $2 }
    $4 != "-" && $4 > cm { cm = $4 }
    END { printf "%.0f %d\n", ep, cm }' "$OUT/control.tsv")"
hwm=$(awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024 }' "/proc/$COORD_PID/status")
# Connections per application during the run, from the report's samples.
conns_rep=$(jq -r '[.resources.postgres as $p | range(0; $p.conns_active | length)
    | ($p.conns_active[.] // 0) + ($p.conns_idle[.] // 0) + ($p.conns_idle_in_tx[.] // 0)] | max // "-"' "$rep" 2>/dev/null || echo -)
events=$((ev1 - ev0))

{
    echo
    echo "==== scale summary (paste) ===="
    echo "when:            $(date -u +%Y-%m-%dT%H:%M:%SZ), tree at commit $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); binaries $BENCH_BIN built $(date -u -r "$BENCH_BIN/tributary-agent" +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine:         $(nproc) vCPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "load average:    start $la0 | end $la1 | highest 1-min during the run $load_max"
    echo "cluster:         $AGENTS agents x $CPA clients ($NOTIFY_CLIENTS notify on 'default'$([ "$POLL_CLIENTS" -gt 0 ] && echo " + $POLL_CLIENTS poll (1 s) on 'poll'")), $WORKERS workers each; coordinator --data-dir + --database-url (poll 1 s), authenticated"
    echo "PostgreSQL:      15, durable (fsync, synchronous_commit, full_page_writes on), shared_buffers $(bench_sql 'SHOW shared_buffers'), max_wal_size $(bench_sql 'SHOW max_wal_size'), max_connections $(bench_sql 'SHOW max_connections'), same machine"
    echo "jobs:            $JOBS x $KIND via tributary stress$([ "$POLL_CLIENTS" -gt 0 ] && echo ' --mixed') (COPY, 2 streams); exit $stress_rc, outcome $(rj .run.outcome)"
    echo "wall time:       $wall s (stress start -> report written); first insert -> last finalized $span s"
    echo "insertion:       $(rj '.rates.insert_rate | floor') jobs/s"
    echo "worked:          $(rj '.rates.throughput | floor') jobs/s by finalized_at (stress: first due -> last finalized_at, the agents' job-end time); $([ "$coord_s" = - ] && echo "coordinator never counted all" || echo "$(calc %.0f "$JOBS / $coord_s") jobs/s until the coordinator had counted all $JOBS ($coord_s s after stress started: write-backs committed and forwarded)")"
    echo "latency p50/p95: end-to-end $(rj '.latency_ms.end_to_end.p50 | floor') / $(rj '.latency_ms.end_to_end.p95 | floor') ms (backlog: jobs wait their turn); write-back (complete) p50/p95/max $(rj '.latency_ms.complete.p50 | floor') / $(rj '.latency_ms.complete.p95 | floor') / $(rj '.latency_ms.complete.max | floor') ms"
    echo "stress reader:   $(rj .monitors.events.events_seen) events seen, $(rj .monitors.events.events_missed) missed (events the reader fell behind on in the coordinator's ring; comparison basis $(rj .monitors.events.basis)), monitors agree: $(rj .monitors.agree)"
    echo "coordinator CPU: $c_cpu s = $(calc %.1f "100 * $c_cpu / $wall") % of one core over the wall time, $(calc %.1f "100 * $c_cpu / $spand") % over first insert -> last finalized; highest 1-s sample $cpu_peak %; $(calc %.2f "$c_cpu * 1e6 / ($events > 0 ? $events : 1)") s per 1,000,000 events"
    echo "coordinator RSS: start $(calc %.1f "$c_rss0 / 1024") MiB, peak $rss_peak MiB (VmHWM $hwm), median $rss_med MiB, end $(calc %.1f "$c_rss1 / 1024") MiB; threads $c_thr0 -> max $thr_max"
    echo "coordinator dir: $(calc %.1f "$dir0 / 1048576") -> $(calc %.1f "$dir1 / 1048576") MiB (peak $(calc %.1f "$dir_peak / 1048576") MiB)"
    echo "events applied:  $events = $(calc %.0f "$events / $spand")/s over first insert -> last finalized ($(calc %.0f "$events / $wall")/s over the wall time; highest 2-s rate $ev_peak/s); duplicates $dups"
    echo "agents:          CPU $a_cpu s total ($(calc %.1f "100 * $a_cpu / $wall") % of one core, $(calc %.2f "$a_cpu / $AGENTS") s each); RSS $(calc %.1f "$a_rss0 / 1024") MiB total at start, peak $a_rss_peak MiB, end $(calc %.1f "$a_rss1 / 1024") MiB"
    echo "PostgreSQL CPU:  $pg_s s; client connections: $idle_conns idle cluster ($agent_conns agents'), max $conns_max sampled ($conns_rep in stress's samples), $final_conns at the end"
    echo "other CPU:       stress CLI $s_cpu s; rest of the machine $rest s (busy CPU seconds of both vCPUs from stress start to end minus all of the above: others' load and this script's sampling)"
    echo "nothing lost:    $([ $lost_ok = 1 ] && echo OK || echo MISMATCH)"
    echo "raw results:     $OUT"
    echo "==============================="
} | tee "$OUT/summary.txt"

[ "$lost_ok" = 1 ] || exit 1
[ "$stress_rc" = 0 ] || exit 1
exit 0
