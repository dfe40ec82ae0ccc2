#!/usr/bin/env bash
# bench/coordinator.sh -- the coordinator's figures (issue 3): ingest rate
# from K synthetic agents, job-finalized -> visible latency at a fixed job
# rate, agent burn-down throughput with forwarding on vs off, and the
# coordinator's memory after 10,000,000 events. Prints tables; never gates.
#
#   bench/coordinator.sh [ingest] [lag] [forward] [rss]     (default: all four)
#
# Environment (see bench/README.md for what is measured and how):
#   BENCH_INGEST_AGENTS  ("4 100")  K for the ingest runs
#   BENCH_INGEST_EVENTS  (4000000)  events per ingest run (split over K)
#   BENCH_INGEST_MODES   ("memory disk") coordinator without / with --data-dir
#   BENCH_BATCH          (1000)     events per EVENT_BATCH (ingest, rss)
#   BENCH_REPEAT         (3)        runs per configuration (ingest, forward)
#   BENCH_LAG_RATE       (5000)     jobs/s inserted (lag)
#   BENCH_LAG_DURATION   (20s)      insert phase (lag)
#   BENCH_LAG_AGENTS     (2)        agents working the jobs (lag)
#   BENCH_LAG_REPEAT     (1)        runs (lag)
#   BENCH_LAG_INSERTER   (eventlag) eventlag (a transaction of rate/100 jobs
#                                   every 10 ms) or pickupbench (one job per
#                                   transaction)
#   BENCH_JOBS           (200000)   jobs per burn-down (forward)
#   BENCH_FORWARD        ("off on") forward configurations, alternating; also
#                                   on-memcoord (coordinator without
#                                   --data-dir), on-nofsync (agent
#                                   --outbox-fsync-interval 10s): diagnosis
#   BENCH_RSS_AGENTS     (100)      agents (rss)
#   BENCH_RSS_EVENTS     (100000)   events per agent (rss)
#   BENCH_RSS_MODES      ("disk memory")
#   BENCH_MAX_REST       (1.0)      a run during which the rest of the machine
#                                   (not PostgreSQL, not ours) used more CPU
#                                   seconds than this is set aside
#                                   (disturbed.tsv) and run again, twice at
#                                   most (ingest, lag, forward)
# and those of bench/lib.sh (BENCH_BIN, BENCH_OUT, BENCH_PGDIR).
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

WHAT=${*:-ingest lag forward rss}
INGEST_AGENTS=${BENCH_INGEST_AGENTS:-"4 100"}
INGEST_EVENTS=${BENCH_INGEST_EVENTS:-4000000}
INGEST_MODES=${BENCH_INGEST_MODES:-"memory disk"}
BATCH=${BENCH_BATCH:-1000}
R=${BENCH_REPEAT:-3}
LAG_RATE=${BENCH_LAG_RATE:-5000}
LAG_DUR=${BENCH_LAG_DURATION:-20s}
LAG_AGENTS=${BENCH_LAG_AGENTS:-2}
LAG_R=${BENCH_LAG_REPEAT:-1}
LAG_INSERTER=${BENCH_LAG_INSERTER:-eventlag}
N=${BENCH_JOBS:-200000}
FWD_CONFIGS=${BENCH_FORWARD:-"off on"}
RSS_AGENTS=${BENCH_RSS_AGENTS:-100}
RSS_EVENTS=${BENCH_RSS_EVENTS:-100000}
RSS_MODES=${BENCH_RSS_MODES:-"disk memory"}
MAX_REST=${BENCH_MAX_REST:-1.0}
OUT=${BENCH_OUT:-/tmp/trib-bench-coordinator-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RES=$OUT/results.tsv
: >"$RES"
: >"$OUT/disturbed.tsv"
TICK=$(getconf CLK_TCK)
# Authentication on, as in production: the coordinator, the agents and the
# synthetic agents share this secret.
TRIBUTARY_SECRET=$(head -c 24 /dev/urandom | base64)
export TRIBUTARY_SECRET

for w in $WHAT; do
    case $w in
    ingest | lag | forward | rss) ;;
    *) bench_die "unknown part '$w' (ingest, lag, forward, rss)" ;;
    esac
done
bench_need_bins tributary tributary-coordinator tributary-agent \
    trib-ingest-bench eventlag benchtool

COORD_PID="" COORD_LISTEN="" COORD_CONTROL="" COORD_DIR=""
LAST_REST=0

# Stops what we started, the coordinator first (SIGTERM: a clean stop).
coord_cleanup() {
    if [ -n "$COORD_PID" ]; then
        kill "$COORD_PID" 2>/dev/null || true
    fi
    bench_cleanup
}
trap coord_cleanup EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }

# Busy CPU seconds of the whole machine so far (/proc/stat, all CPUs, all
# but idle and iowait).
machine_busy() {
    awk -v t="$TICK" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t; exit }' /proc/stat
}

# CPU seconds (utime + stime, all threads) of a live process.
proc_cpu() {
    awk -v t="$TICK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"
}
# proc_mib PID FIELD: VmRSS, VmHWM, RssAnon, ... in MiB.
proc_mib() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

calc() { awk "BEGIN { printf \"$1\", $2 }"; } # calc FORMAT EXPR

# free_port [EXCEPT]: a TCP port below the ephemeral range that no socket
# uses (and not EXCEPT: the listen and control ports of one start).
free_port() {
    local p lo
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
    while :; do
        p=$((10000 + RANDOM % (lo - 10000)))
        [ "$p" != "${1:-}" ] && [ -z "$(ss -Htan "sport = :$p")" ] && break
    done
    echo "$p"
}

# coord_start TAG memory|disk [ARGS...]: a fresh coordinator (new data dir),
# authenticated, log at warn; waits until its control socket answers.
coord_start() {
    local tag=$1 mode=$2 i lp
    shift 2
    lp=$(free_port)
    COORD_LISTEN=tcp://127.0.0.1:$lp
    COORD_CONTROL=tcp://127.0.0.1:$(free_port "$lp")
    COORD_DIR=$OUT/$tag.coord
    rm -rf "$COORD_DIR"
    local a=(--listen "$COORD_LISTEN" --control "$COORD_CONTROL" --log-level warn)
    [ "$mode" = disk ] && a+=(--data-dir "$COORD_DIR")
    "$BENCH_BIN/tributary-coordinator" "${a[@]}" "$@" 2>"$OUT/$tag.coord.log" &
    COORD_PID=$!
    for i in $(seq 1 100); do
        "$BENCH_BIN/tributary" status --json --control "$COORD_CONTROL" \
            >/dev/null 2>&1 && return 0
        kill -0 "$COORD_PID" 2>/dev/null || break
        sleep 0.1
    done
    bench_die "coordinator did not start (attempt $i); see $OUT/$tag.coord.log"
}

coord_stop() {
    [ -n "$COORD_PID" ] || return 0
    kill -TERM "$COORD_PID" 2>/dev/null || true
    wait "$COORD_PID" || bench_log "coordinator exited with $? (see its log)"
    COORD_PID=""
}

# status_num KEY: a number from the coordinator's status document (first
# occurrence of "KEY": in the JSON).
status_num() {
    "$BENCH_BIN/tributary" status --json --control "$COORD_CONTROL" 2>/dev/null |
        grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$' || true
}

result() { # FIGURE FIELDS... (tab-separated into results.tsv)
    local IFS=$'\t'
    echo "$*" >>"$RES"
}

# calm FN ARGS...: runs FN, which appends one line to results.tsv and sets
# LAST_REST (CPU seconds the rest of the machine used during the run). A
# disturbed run (LAST_REST > BENCH_MAX_REST) moves to disturbed.tsv and
# runs again after a pause, at most twice; the third is kept whatever it
# measured (its rest column shows it).
calm() {
    local try
    for try in 1 2 3; do
        LAST_REST=0
        "$@"
        if [ "$try" -lt 3 ] && awk -v r="$LAST_REST" -v m="$MAX_REST" 'BEGIN { exit !(r > m) }'; then
            bench_log "disturbed: the rest of the machine used $LAST_REST s of CPU during the run (> $MAX_REST): again in 20 s"
            tail -1 "$RES" >>"$OUT/disturbed.tsv"
            sed -i '$d' "$RES"
            sleep 20
            continue
        fi
        return 0
    done
}

# A one-line note under a table: runs set aside as disturbed.
disturbed_note() { # FIGURE
    local n
    n=$(awk -F'\t' -v f="$1" '$1 == f' "$OUT/disturbed.tsv" | wc -l)
    [ "$n" = 0 ] || echo "($n disturbed run(s) set aside and repeated: $OUT/disturbed.tsv)"
}

describe_machine() {
    local cpu mem dirty=""
    cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
    mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
    git -C "$BENCH_ROOT" status --porcelain -- agent coordinator proto common cli 2>/dev/null |
        grep -q . && dirty=" + uncommitted changes in the source tree"
    echo "machine: $cpu, $(nproc) cores, $mem RAM, Debian $(cat /etc/debian_version 2>/dev/null || echo '?'), kernel $(uname -r)"
    echo "tributary: commit $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$dirty, binaries from $BENCH_BIN"
    echo "load average at start: $(load)"
}

{
    echo "coordinator benchmarks ($WHAT), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    describe_machine
} | tee "$OUT/machine.txt"

PG_UP=0
need_pg() {
    [ $PG_UP = 1 ] && return
    bench_log "starting a durable PostgreSQL in $BENCH_PGDIR"
    bench_pg_start
    bench_describe | grep -v '^machine\|^load' | tee -a "$OUT/machine.txt"
    PG_UP=1
}

# ------------------------------------------------------------- ingest
# trib-ingest-bench: K threads, each its own nng req socket, handshake,
# then pre-encoded EVENT_BATCHes back-to-back (one outstanding per agent).
# The client shares the 2 cores with the coordinator.
ingest_once() { # MODE K RUN
    local mode=$1 k=$2 r=$3 per tag c0 c1 m0 m1 cl la
    per=$((INGEST_EVENTS / k))
    tag=ingest-$mode-k$k-$r
    bench_log "ingest: $mode, $k agents x $per events (run $r)"
    coord_start "$tag" "$mode"
    la=$(load)
    m0=$(machine_busy)
    c0=$(proc_cpu "$COORD_PID")
    if ! "$BENCH_BIN/benchtool" cputime --out "$OUT/$tag.time.json" -- \
        "$BENCH_BIN/trib-ingest-bench" "$COORD_LISTEN" "$k" "$per" "$BATCH" \
        "$COORD_PID" >"$OUT/$tag.out" 2>&1; then
        bench_log "trib-ingest-bench failed: $(tail -2 "$OUT/$tag.out")"
        coord_stop
        return 0
    fi
    c1=$(proc_cpu "$COORD_PID")
    m1=$(machine_busy)
    cl=$(bench_get "$OUT/$tag.time.json" cpu_s)
    result ingest "$mode" "$k" "$r" \
        "$(sed -n 's/.* = \([0-9]*\) events\/s.*/\1/p' "$OUT/$tag.out")" \
        "$(calc %.2f "($c1 - $c0) * 1e6 / $((per * k))")" "$cl" \
        "$(proc_mib "$COORD_PID" VmRSS)" "$(proc_mib "$COORD_PID" VmHWM)" "$la" \
        "$(calc %.2f "($m1 - $m0) - ($c1 - $c0) - $cl")"
    coord_stop
    grep '^ingest' "$OUT/$tag.out" >&2
    LAST_REST=$(tail -1 "$RES" | cut -f11)
}

run_ingest() {
    local mode k r
    for mode in $INGEST_MODES; do
        for k in $INGEST_AGENTS; do
            for r in $(seq 1 "$R"); do
                calm ingest_once "$mode" "$k" "$r"
            done
        done
    done
    echo
    echo "Coordinator ingest: trib-ingest-bench, $INGEST_EVENTS events per run split over K agents, batches of $BATCH,"
    echo "authenticated; median of $R run(s) (best in brackets). coord CPU = the coordinator's CPU seconds per 1,000,000"
    echo "events; client CPU = the benchmark client's CPU seconds (same 2 cores); RSS/HWM at the end of the run (HWM:"
    echo "highest of the runs); max rest = most busy CPU seconds the rest of the machine used during one run (others' load)."
    awk -F'\t' '$1 == "ingest"' "$RES" | sort -t$'\t' -k2,2r -k3,3n -s | awk -F'\t' '
        function med(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        { k = $2 "\t" $3; if (!(k in n)) keys[++nk] = k
          n[k]++; e[k, n[k]] = $5; c[k, n[k]] = $6; cl[k, n[k]] = $7; rss[k] = $8; if ($9 > hwm[k]) hwm[k] = $9
          if ($5 > best[k]) best[k] = $5; split($10, l, " "); la[k] = la[k] (la[k] == "" ? "" : " ") l[1]
          if (!(k in rest) || $11 > rest[k]) rest[k] = $11 }
        END {
          printf "%-23s | %6s | %9s | %11s | %13s | %10s | %7s | %7s | %8s | %s\n", "coordinator", "agents", "events/s", "(best)", "coord CPU s/M", "client CPU", "RSS MiB", "HWM MiB", "max rest", "1-min load average at each run"
          for (i = 1; i <= nk; i++) { k = keys[i]; split(k, p, "\t"); m = n[k]
            for (j = 1; j <= m; j++) { x[j] = e[k, j]; y[j] = c[k, j]; z[j] = cl[k, j] }
            printf "%-23s | %6d | %9.0f | %11s | %13.2f | %10.2f | %7s | %7s | %8.2f | %s\n", (p[1] == "disk" ? "persistent (--data-dir)" : "memory only"), p[2], med(x, m), "(" best[k] ")", med(y, m), med(z, m), rss[k], hwm[k], rest[k], la[k]
            if (med(x, m) < 1000000) miss = miss " " p[1] "/" p[2] }
          printf "target >= 1,000,000 events/s on 2 cores (client on the same cores): %s\n", (miss == "" ? "MET" : "NOT MET for" miss) }' |
        tee "$OUT/ingest.txt"
    disturbed_note ingest | tee -a "$OUT/ingest.txt"
}

# ---------------------------------------------------------------- lag
# Job finalized -> visible in `tributary events`: a durable coordinator
# with the polling view, LAG_AGENTS notify agents forwarding, a paced
# inserter, and a reader stamping each NDJSON line on arrival.
lag_once() { # RUN
    local r=$1 tag i ap aps=() evp rdp fifo ins la snaps=() x ins_cmd j c acpu=0
    tag=lag-$r
    bench_log "lag: $LAG_AGENTS agents, $LAG_RATE jobs/s for $LAG_DUR (run $r)"
    bench_reset 0 tributary.noop
    coord_start "$tag" disk --database-url "$BENCH_URL"
    snaps=(coord="$COORD_PID")
    for i in $(seq 1 "$LAG_AGENTS"); do
        rm -rf "$OUT/$tag.outbox-$i"
        "$BENCH_BIN/tributary-agent" --database-url "$BENCH_URL" --log-level warn \
            --node-id "bench-$i" --queue default:2000 --coordinator "$COORD_LISTEN" \
            --outbox-dir "$OUT/$tag.outbox-$i" 2>"$OUT/$tag.agent-$i.log" &
        ap=$!
        BENCH_PIDS+=("$ap")
        aps+=("$ap")
        snaps+=("agent$i=$ap")
    done
    # Ready when every agent is in the coordinator's view.
    for i in $(seq 1 100); do
        x=$("$BENCH_BIN/tributary" nodes --json --control "$COORD_CONTROL" 2>/dev/null |
            grep -o '"bench-[0-9]*"' | sort -u | wc -l) || true
        [ "$x" -ge "$LAG_AGENTS" ] && break
        sleep 0.1
    done
    [ "$x" -ge "$LAG_AGENTS" ] || bench_log "WARNING: only $x of $LAG_AGENTS agents seen by the coordinator"
    fifo=$OUT/$tag.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    "$BENCH_BIN/eventlag" read --idle 5s --max-wait 10m --json --label "$tag" \
        --raw "$OUT/$tag.raw.tsv" <"$fifo" >"$OUT/$tag.json" 2>"$OUT/$tag.err" &
    rdp=$!
    BENCH_PIDS+=("$rdp")
    "$BENCH_BIN/tributary" events --kind job_completed --control "$COORD_CONTROL" \
        >"$fifo" 2>"$OUT/$tag.events.log" &
    evp=$!
    BENCH_PIDS+=("$evp")
    sleep 2
    la=$(load)
    bench_cpu_snap "$OUT/$tag.cpu0.json" "${snaps[@]}" events="$evp"
    if [ "$LAG_INSERTER" = pickupbench ]; then
        ins_cmd=("$BENCH_BIN/pickupbench" --database-url "$BENCH_URL" --rate "$LAG_RATE"
            --duration "$LAG_DUR" --kind tributary.noop --json)
    else
        ins_cmd=("$BENCH_BIN/eventlag" insert --database-url "$BENCH_URL" --rate "$LAG_RATE"
            --duration "$LAG_DUR" --json)
    fi
    if ! "$BENCH_BIN/benchtool" cputime --out "$OUT/$tag.instime.json" -- \
        "${ins_cmd[@]}" >"$OUT/$tag.insert.out" 2>"$OUT/$tag.insert.err"; then
        bench_log "inserter failed: $(tail -2 "$OUT/$tag.insert.err")"
    fi
    # pickupbench prints a human line before its JSON line.
    grep '^{' "$OUT/$tag.insert.out" | tail -1 >"$OUT/$tag.insert.json" || true
    cat "$OUT/$tag.insert.err" >&2
    # The reader stops 5 s after the last event; the coordinator's events
    # cursor says when it has applied every job (the CPU snapshot then).
    ins=$(bench_get "$OUT/$tag.insert.json" jobs)
    for i in $(seq 1 300); do
        [ "$(status_num job_completed)" -ge "${ins:-0}" ] 2>/dev/null && break
        sleep 0.1
    done
    bench_cpu_snap "$OUT/$tag.cpu1.json" "${snaps[@]}" events="$evp"
    wait "$rdp" || bench_log "eventlag read failed: $(tail -2 "$OUT/$tag.err")"
    cat "$OUT/$tag.err" >&2
    "$BENCH_BIN/benchtool" cpu-diff --jobs "${ins:-0}" "$OUT/$tag.cpu0.json" \
        "$OUT/$tag.cpu1.json" >"$OUT/$tag.cpu.json"
    local done_db coord_n
    done_db=$(bench_sql "SELECT count(*) FROM river_job WHERE state = 'completed'")
    coord_n=$(status_num job_completed)
    kill "$evp" 2>/dev/null || true
    wait "$evp" 2>/dev/null || true
    for ap in "${aps[@]}"; do kill -TERM "$ap"; done
    for ap in "${aps[@]}"; do wait "$ap" || bench_log "agent exited with $?"; done
    coord_stop
    j=$OUT/$tag.json c=$OUT/$tag.cpu.json
    for i in $(seq 1 "$LAG_AGENTS"); do
        acpu=$(calc %.2f "$acpu + $(bench_get "$c" "extra:agent$i")")
    done
    # rest: not PostgreSQL, the coordinator, the agents, the CLI, the
    # inserter or (roughly: its whole life) the reader.
    LAST_REST=$(calc %.2f "$(bench_get "$c" machine_busy_s) - $(bench_get "$c" pg_cpu_s) - $(bench_get "$c" extra:coord) - $acpu - $(bench_get "$c" extra:events) - $(bench_get "$OUT/$tag.instime.json" cpu_s) - $(bench_get "$j" cpu_s)")
    result lag "$r" "$(bench_get "$OUT/$tag.insert.json" achieved_rate)" "$ins" \
        "$(bench_get "$j" events)" "$done_db" "$(bench_get "$j" missed)" \
        "$(bench_get "$j" p50_ms)" "$(bench_get "$j" p90_ms)" "$(bench_get "$j" p99_ms)" \
        "$(bench_get "$j" p999_ms)" "$(bench_get "$j" max_ms)" \
        "$(bench_get "$j" writeback_p50_ms)" "$(bench_get "$j" writeback_p99_ms)" \
        "$(bench_get "$j" forward_p50_ms)" "$(bench_get "$j" forward_p99_ms)" \
        "$(bench_get "$j" forward_max_ms)" "$(bench_get "$c" extra:coord)" "$acpu" \
        "$(bench_get "$c" pg_cpu_s)" "$(bench_get "$c" extra:events)" "$la" "${coord_n:-?}" \
        "$LAST_REST"
}

run_lag() {
    local r
    need_pg
    for r in $(seq 1 "$LAG_R"); do
        calm lag_once "$r"
    done
    echo
    echo "Job finalized -> visible in 'tributary events --kind job_completed' (arrival of the NDJSON line - the job's"
    echo "finalized_at; same machine, same clock). $LAG_AGENTS notify agents (--queue default:2000) forwarding to a coordinator"
    if [ "$LAG_INSERTER" = pickupbench ]; then
        echo "with --data-dir and --database-url; pickupbench: $LAG_RATE jobs/s for $LAG_DUR (one job per transaction, each"
        echo "with its notification)."
    else
        echo "with --data-dir and --database-url; eventlag insert: $LAG_RATE jobs/s for $LAG_DUR (one transaction + notification"
        echo "per 10 ms tick)."
    fi
    echo "wb = write-back = event 'at' - finalized_at (agent: batching + statement + commit); fwd = arrival - 'at' (outbox,"
    echo "forwarder, coordinator, CLI long poll). CPU seconds from the first insert until the coordinator had every job:"
    echo "coordinator, both agents, PostgreSQL, the rest of the machine."
    awk -F'\t' '$1 == "lag"' "$RES" | awk -F'\t' -v rate="$LAG_RATE" '
        BEGIN { printf "%3s | %6s | %6s | %6s | %5s | %7s | %7s | %7s | %7s | %7s | %11s | %16s | %5s | %5s | %5s | %5s | %s\n", "run", "rate", "jobs", "seen", "missd", "p50 ms", "p90 ms", "p99 ms", "p99.9", "max ms", "wb p50/p99", "fwd p50/p99/max", "coord", "agnts", "PG", "rest", "load average" }
        { printf "%3d | %6.0f | %6d | %6d | %5d | %7.1f | %7.1f | %7.1f | %7.1f | %7.1f | %5.1f/%5.1f | %4.1f/%4.1f/%6.1f | %5.1f | %5.1f | %5.1f | %5.1f | %s\n", $2, $3, $4, $5, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $24, $22
          if ($5 != $4 || $6 != $4 || $23 != $4) printf "    WARNING: run %d: %d jobs inserted, %d events read, %d completed in river_job, %s counted by the coordinator\n", $2, $4, $5, $6, $23
          printf "target p99 <= 100 ms at %d jobs/s: run %d p99 %.1f ms -> %s\n", rate, $2, $10, ($10 <= 100 && $3 >= 0.95 * rate && $5 == $4 && $7 == 0 ? "MET" : "NOT MET") }' |
        tee "$OUT/lag.txt"
    disturbed_note lag | tee -a "$OUT/lag.txt"
}

# ------------------------------------------------------------ forward
# bench/burndown.sh's default agent row (one client, --queue default:2000),
# without and with --coordinator/--outbox-dir, alternating.
forward_once() { # CONFIG RUN
    local cfg=$1 r=$2 tag fifo start ap el cpu pg ccpu="" cel="" snaps=() la args=() wp done_n
    tag=forward-$cfg-$r
    bench_log "forward $cfg: burn-down of $N jobs (run $r)"
    bench_reset "$N" tributary.noop
    if [ "$cfg" != off ]; then
        case $cfg in
        on | on-nofsync) coord_start "$tag" disk ;;
        on-memcoord) coord_start "$tag" memory ;;
        *) bench_die "unknown forward configuration $cfg (off on on-memcoord on-nofsync)" ;;
        esac
        rm -rf "$OUT/$tag.outbox"
        args=(--coordinator "$COORD_LISTEN" --outbox-dir "$OUT/$tag.outbox")
        [ "$cfg" = on-nofsync ] && args+=(--outbox-fsync-interval 10s)
        snaps=(coord="$COORD_PID")
    fi
    fifo=$OUT/$tag.fifo
    rm -f "$fifo" "$OUT/$tag.coord_end"
    mkfifo "$fifo"
    la=$(load)
    bench_cpu_snap "$OUT/$tag.cpu0.json" "${snaps[@]}"
    start=$(date +%s%N)
    "$BENCH_BIN/tributary-agent" --database-url "$BENCH_URL" --log-level warn \
        --queue default:2000 --events-out "$fifo" "${args[@]}" 2>"$OUT/$tag.log" &
    ap=$!
    BENCH_PIDS+=("$ap")
    if [ "$cfg" != off ]; then
        # The moment the coordinator has counted all N (wait returns).
        ("$BENCH_BIN/tributary" wait --count "$N" --timeout 600s --quiet \
            --control "$COORD_CONTROL" && date +%s%N >"$OUT/$tag.coord_end") &
        wp=$!
        BENCH_PIDS+=("$wp")
    fi
    if ! "$BENCH_BIN/benchtool" wait-events --n "$N" --start-ns "$start" \
        --timeout 600s <"$fifo" >"$OUT/$tag.json"; then
        bench_log "agent run failed; see $OUT/$tag.log"
        kill "$ap" 2>/dev/null || true
        coord_stop
        return 0
    fi
    bench_cpu_snap "$OUT/$tag.cpu1.json" agent="$ap" "${snaps[@]}"
    if [ "$cfg" != off ]; then
        wait "$wp" || true
        [ -s "$OUT/$tag.coord_end" ] &&
            cel=$(calc %.3f "($(cat "$OUT/$tag.coord_end") - $start) / 1e9")
    fi
    kill -TERM "$ap"
    wait "$ap" || bench_log "agent exited with $?"
    coord_stop
    "$BENCH_BIN/benchtool" cpu-diff --jobs "$N" "$OUT/$tag.cpu0.json" \
        "$OUT/$tag.cpu1.json" >"$OUT/$tag.cpu.json"
    el=$(bench_get "$OUT/$tag.json" elapsed_s)
    cpu=$(bench_get "$OUT/$tag.cpu.json" extra:agent)
    pg=$(bench_get "$OUT/$tag.cpu.json" pg_cpu_s)
    [ "$cfg" != off ] && ccpu=$(bench_get "$OUT/$tag.cpu.json" extra:coord)
    done_n=$(bench_sql "SELECT count(*) FROM river_job WHERE state = 'completed'")
    [ "$done_n" = "$N" ] || bench_log "WARNING: $done_n of $N jobs completed"
    LAST_REST=$(calc %.2f "$(bench_get "$OUT/$tag.cpu.json" machine_busy_s) - $pg - $cpu - ${ccpu:-0}")
    result forward "$cfg" "$r" "$(calc %.0f "$N / $el")" "$el" "$cpu" "$pg" \
        "${ccpu:--}" "${cel:--}" "$LAST_REST" "$la"
    bench_log "  -> $(tail -1 "$RES")"
}

run_forward() {
    local r cfg
    need_pg
    for r in $(seq 1 "$R"); do
        for cfg in $FWD_CONFIGS; do
            calm forward_once "$cfg" "$r"
        done
    done
    echo
    echo "Agent burn-down of $N pre-inserted no-op jobs (one client, --queue default:2000, otherwise defaults), forwarding"
    echo "off vs on (--coordinator to a durable --data-dir coordinator, --outbox-dir); $R run(s) each, alternating."
    echo "jobs/s = $N / (agent exec -> N-th event on --events-out); coord vis = seconds until 'tributary wait --count $N'"
    echo "returned. CPU seconds over the run: agent, PostgreSQL, coordinator, rest of the machine."
    awk -F'\t' '$1 == "forward"' "$RES" | awk -F'\t' '
        function med(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        BEGIN { printf "%-11s | %3s | %7s | %7s | %9s | %6s | %6s | %6s | %6s | %s\n", "forwarding", "run", "jobs/s", "time s", "coord vis", "agent", "PG", "coord", "rest", "load average" }
        { printf "%-11s | %3d | %7d | %7.2f | %9s | %6.2f | %6.2f | %6s | %6.2f | %s\n", $2, $3, $4, $5, $9, $6, $7, $8, $10, $11
          if (!($2 in n)) cf[++ncf] = $2
          v[$2, ++n[$2]] = $4 }
        END { for (k = 1; k <= ncf; k++) { c = cf[k]; delete a
                for (i = 1; i <= n[c]; i++) a[i] = v[c, i]; m[c] = med(a, n[c]) }
              off = m["off"]
              for (k = 1; k <= ncf; k++) { c = cf[k]
                if (c != "off" && off > 0) printf "median jobs/s: off %d, %s %d = %.1f%%%s\n", off, c, m[c], 100 * m[c] / off, (c == "on" ? " -> target >= 95%: " (m[c] / off >= 0.95 ? "MET" : "NOT MET") : "") } }' |
        tee "$OUT/forward.txt"
    disturbed_note forward | tee -a "$OUT/forward.txt"
}

# ---------------------------------------------------------------- rss
rss_once() { # MODE
    local mode=$1 tag c0 c1 la total wal=- rss hwm anon
    total=$((RSS_AGENTS * RSS_EVENTS))
    tag=rss-$mode
    bench_log "rss: $mode, $RSS_AGENTS agents x $RSS_EVENTS events"
    coord_start "$tag" "$mode"
    la=$(load)
    c0=$(proc_cpu "$COORD_PID")
    "$BENCH_BIN/trib-ingest-bench" "$COORD_LISTEN" "$RSS_AGENTS" "$RSS_EVENTS" "$BATCH" \
        "$COORD_PID" >"$OUT/$tag.out" 2>&1 || bench_log "trib-ingest-bench failed: $(tail -2 "$OUT/$tag.out")"
    c1=$(proc_cpu "$COORD_PID")
    cat "$OUT/$tag.out" >&2
    rss=$(proc_mib "$COORD_PID" VmRSS)
    hwm=$(proc_mib "$COORD_PID" VmHWM)
    anon=$(proc_mib "$COORD_PID" RssAnon)
    sleep 5
    [ "$mode" = disk ] && wal=$(du -sm "$COORD_DIR" | cut -f1)
    result rss "$mode" "$RSS_AGENTS" "$RSS_EVENTS" \
        "$(sed -n 's/.* = \([0-9]*\) events\/s.*/\1/p' "$OUT/$tag.out")" \
        "$rss" "$hwm" "$anon" "$(proc_mib "$COORD_PID" VmRSS)" \
        "$(calc %.2f "($c1 - $c0) * 1e6 / $total")" "$wal" \
        "$(status_num events_applied)" "$la"
    coord_stop
}

run_rss() {
    local mode
    for mode in $RSS_MODES; do
        rss_once "$mode"
    done
    echo
    echo "Coordinator memory after $RSS_AGENTS agents x $RSS_EVENTS events ($((RSS_AGENTS * RSS_EVENTS))) from trib-ingest-bench, batches of"
    echo "$BATCH: VmRSS at the end, VmHWM (peak), RssAnon, VmRSS 5 s later; CPU = the coordinator's CPU seconds per"
    echo "1,000,000 events; dir = size of its --data-dir 5 s after the last event (log + snapshot)."
    awk -F'\t' '$1 == "rss"' "$RES" | awk -F'\t' '
        BEGIN { printf "%-24s | %10s | %10s | %9s | %9s | %9s | %9s | %9s | %9s | %8s | %s\n", "coordinator", "events", "applied", "events/s", "RSS MiB", "HWM MiB", "anon MiB", "RSS +5 s", "CPU s/M", "dir MiB", "load average" }
        { printf "%-24s | %10d | %10s | %9d | %9.1f | %9.1f | %9.1f | %9.1f | %9.2f | %8s | %s\n", ($2 == "disk" ? "persistent (--data-dir)" : "memory only"), $3 * $4, $12, $5, $6, $7, $8, $9, $10, $11, $13
          printf "target RSS <= 100 MiB after %d events (%s): RSS %.1f MiB, peak %.1f MiB -> %s\n", $3 * $4, $2, $6, $7, ($6 <= 100 ? "MET" : "NOT MET") (($6 <= 100 && $7 > 100) ? " (peak above)" : "") }' |
        tee "$OUT/rss.txt"
}

for w in $WHAT; do
    case $w in
    ingest) run_ingest ;;
    lag) run_lag ;;
    forward) run_forward ;;
    rss) run_rss ;;
    esac
done
echo
echo "load average at the end: $(load)"
echo "raw results: $OUT"
