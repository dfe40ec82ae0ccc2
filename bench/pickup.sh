#!/usr/bin/env bash
# bench/pickup.sh -- pickup latency (insert COMMIT -> job claimed) at fixed
# insert rates, Tributary's agent in notify and poll mode beside River's Go
# client, on one durable PostgreSQL; plus the PostgreSQL CPU spent per 1,000
# jobs. Prints a table; never gates anything.
#
#   bench/pickup.sh
#
# Environment: BENCH_RATES ("100 1000 2000 5000" jobs/s), BENCH_DURATION (15s
# per run), BENCH_WORKERS (rows of the matrix, see worker_cmd; default all
# but the *-custom ones), BENCH_PREFILL (10000: completed jobs left in
# river_job before each run, like a table with River's 24 h retention; 0 =
# an empty, freshly vacuumed table), and those of bench/lib.sh.
# See bench/README.md for the definitions.
source "$(dirname "$0")/lib.sh"
trap bench_cleanup EXIT

RATES=${BENCH_RATES:-"100 1000 2000 5000"}
DUR=${BENCH_DURATION:-15s}
WORKERS=${BENCH_WORKERS:-"trib-notify trib-notify-cd5ms trib-poll1s trib-poll100ms river-notify river-poll1s"}
PREFILL=${BENCH_PREFILL:-10000}
OUT=${BENCH_OUT:-/tmp/trib-bench-pickup-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RES=$OUT/results.tsv
: >"$RES"

bench_need_bins tributary tributary-agent riverworker pickupbench benchtool

bench_log "starting a durable PostgreSQL in $BENCH_PGDIR"
# track_commit_timestamp: the server's commit time of every insert, for the
# second (database-clock-only) latency figure.
bench_pg_start track_commit_timestamp=on
{
    echo "pickup latency, $(date -u +%Y-%m-%dT%H:%M:%SZ), $DUR per run, rates: $RATES jobs/s, $PREFILL completed jobs in river_job at the start of each run"
    bench_describe
} | tee "$OUT/machine.txt"

# worker_cmd NAME: sets CMD to the command line of one matrix row. The
# *-custom rows give the agent's connections plan_cache_mode =
# force_custom_plan (libpq options), see docs/PERFORMANCE.md.
worker_cmd() {
    local agent=("$BENCH_BIN/tributary-agent" --database-url "$BENCH_URL" --log-level warn --queue default:2000)
    local custom=("$BENCH_BIN/tributary-agent" --database-url "$BENCH_URL&options=-c%20plan_cache_mode%3Dforce_custom_plan" --log-level warn --queue default:2000)
    local river=("$BENCH_BIN/riverworker" --database-url "$BENCH_URL" --queue default:2000 --status-interval 10s)
    case "$1" in
    trib-notify) CMD=("${agent[@]}") ;;
    trib-notify-cd5ms) CMD=("${agent[@]}" --fetch-cooldown 5ms) ;;
    trib-notify-custom) CMD=("${custom[@]}") ;;
    trib-poll100ms-custom) CMD=("${custom[@]}" --mode poll --poll-interval 100ms) ;;
    trib-poll1s) CMD=("${agent[@]}" --mode poll --poll-interval 1s) ;;
    trib-poll100ms) CMD=("${agent[@]}" --mode poll --poll-interval 100ms) ;;
    river-notify) CMD=("${river[@]}") ;;
    river-poll1s) CMD=("${river[@]}" --poll-only) ;;
    *) bench_die "unknown worker $1" ;;
    esac
}
worker_desc() {
    case "$1" in
    trib-notify) echo "tributary|notify (LISTEN), fetch cooldown 1ms (default)" ;;
    trib-notify-cd5ms) echo "tributary|notify, --fetch-cooldown 5ms" ;;
    trib-notify-custom) echo "tributary|notify, force_custom_plan" ;;
    trib-poll100ms-custom) echo "tributary|poll 100ms, force_custom_plan" ;;
    trib-poll1s) echo "tributary|poll, --poll-interval 1s" ;;
    trib-poll100ms) echo "tributary|poll, --poll-interval 100ms" ;;
    river-notify) echo "River Go client|notify, FetchCooldown 100ms (default)" ;;
    river-poll1s) echo "River Go client|PollOnly, FetchPollInterval 1s" ;;
    esac
}
worker_app() { # application_name of the worker's connections
    case "$1" in
    trib-*) echo tributary-agent ;;
    river-*) echo riverworker ;;
    esac
}

for w in $WORKERS; do
    for rate in $RATES; do
        tag=$w-$rate
        bench_log "$w at $rate jobs/s"
        # Same start for every run: PREFILL completed jobs, vacuumed,
        # analyzed, checkpointed.
        bench_reset "$PREFILL" tributary.noop
        if [ "$PREFILL" -gt 0 ]; then
            bench_sql "UPDATE river_job SET state = 'completed', attempt = 1,
                attempted_at = now(), finalized_at = now()" >/dev/null
            bench_sql "VACUUM ANALYZE river_job" >/dev/null
            bench_sql "CHECKPOINT" >/dev/null
        fi
        worker_cmd "$w"
        "${CMD[@]}" >"$OUT/$tag.worker.out" 2>"$OUT/$tag.worker.log" &
        wp=$!
        BENCH_PIDS+=("$wp")
        # Ready once its producer has upserted the queue row; then settle.
        for _ in $(seq 1 100); do
            [ "$(bench_sql "SELECT count(*) FROM river_queue WHERE name = 'default'")" = 1 ] && break
            sleep 0.1
        done
        sleep 1
        bench_cpu_snap "$OUT/$tag.cpu0.json" worker="$wp"
        # The second snapshot is taken by pickupbench itself (--snap-cmd)
        # while its connections are open, so their CPU is named.
        if ! "$BENCH_BIN/benchtool" cputime --out "$OUT/$tag.time.json" -- \
            "$BENCH_BIN/pickupbench" --database-url "$BENCH_URL" --rate "$rate" \
            --duration "$DUR" --json --label "$tag" \
            --snap-cmd "'$BENCH_BIN/benchtool' cpu-snap --pg-data '$BENCH_PGDIR/data' --database-url '$BENCH_URL' --pid worker=$wp >'$OUT/$tag.cpu1.json'" \
            >"$OUT/$tag.json" 2>"$OUT/$tag.err"; then
            bench_log "pickupbench failed: $(tail -2 "$OUT/$tag.err")"
        fi
        [ -s "$OUT/$tag.cpu1.json" ] || bench_cpu_snap "$OUT/$tag.cpu1.json" worker="$wp"
        kill -TERM "$wp"
        wait "$wp" || true
        jobs=$(bench_get "$OUT/$tag.json" jobs)
        "$BENCH_BIN/benchtool" cpu-diff --jobs "${jobs:-0}" "$OUT/$tag.cpu0.json" \
            "$OUT/$tag.cpu1.json" >"$OUT/$tag.cpu.json"
        bench_pgss_top "$OUT/$tag.pgss.txt"
        head -2 "$OUT/$tag.json" | grep '^pickupbench' >&2 || true
        j=$OUT/$tag.json c=$OUT/$tag.cpu.json
        k() { awk -v s="$1" -v n="$jobs" 'BEGIN{ if (n > 0) printf "%.0f", s * 1e6 / n; else print "?" }'; }
        # rest = the machine's busy CPU not spent by PostgreSQL, the worker
        # or the inserter process (others' load). /proc/stat is sampled per
        # tick, process times are exact: for these mostly idle runs with
        # many sub-tick wake-ups it is rough (it can even go negative).
        rest=$(awk -v m="$(bench_get "$c" machine_busy_s)" -v p="$(bench_get "$c" pg_cpu_s)" \
            -v w="$(bench_get "$c" extra:worker)" -v i="$(bench_get "$OUT/$tag.time.json" cpu_s)" \
            'BEGIN { printf "%.1f", m - p - w - i }')
        printf '%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$(worker_desc "$w")" "$w" "$rate" "$(bench_get "$j" achieved_rate)" \
            "$(bench_get "$j" p50_ms)" "$(bench_get "$j" p95_ms)" "$(bench_get "$j" p99_ms)" \
            "$(bench_get "$j" max_ms)" "$(bench_get "$j" srv_p95_ms)" \
            "$(k "$(bench_get "$c" pg_cpu_s)")" "$(k "$(bench_get "$c" "pg:$(worker_app "$w")")")" \
            "$(k "$(bench_get "$c" pg:pickupbench)")" "$(k "$(bench_get "$c" extra:worker)")" \
            "$jobs" "$(k "$(bench_get "$OUT/$tag.time.json" cpu_s)")" "$rest" >>"$RES"
    done
done

echo
echo "Pickup latency = attempted_at (DB now() of the claiming fetch) - wall clock right after the inserter's COMMIT returned;"
echo "same machine, same clock (CLOCK_REALTIME). 'srv p95' uses the server's commit timestamp instead (DB clock only)."
echo "CPU columns: milliseconds of CPU per 1,000 jobs: all PostgreSQL processes; of them the worker's backends and the"
echo "inserter's backends; the worker process itself; the inserter process (pickupbench). results.tsv's last column"
echo "is the CPU the rest of the machine used (tick-sampled /proc/stat: rough for these mostly idle runs)."
awk -F'\t' '
    BEGIN { printf "%-15s | %-40s | %6s | %6s | %7s | %7s | %7s | %8s | %8s | %6s | %6s | %6s | %6s | %6s\n", "worker", "mode", "rate", "actual", "p50 ms", "p95 ms", "p99 ms", "max ms", "srv p95", "PG", "PG wkr", "PG ins", "worker", "insrtr" }
    { split($1, d, "|")
      printf "%-15s | %-40s | %6d | %6.0f | %7.2f | %7.2f | %7.2f | %8.2f | %8.2f | %6s | %6s | %6s | %6s | %6s\n", d[1], d[2], $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $15 }' "$RES" | tee "$OUT/table.txt"
echo
awk -F'\t' '
    $2 == "trib-notify" && $3 == 1000 { printf "target notify-mode p95 <= 5 ms at 1,000 jobs/s: p95 %.2f ms -> %s\n", $6, ($6 <= 5 ? "MET" : "NOT MET") }
    $2 == "trib-poll1s" { poll(1000) }
    $2 == "trib-poll100ms" || $2 == "trib-poll100ms-custom" { poll(100) }
    # Within the interval: p99 <= interval + 10 % jitter, and max <= that
    # + 10 ms (the claiming fetch itself and the inserter reading COMMIT).
    function poll(iv) {
      printf "target poll mode within its interval (%s, %d ms + 10%% jitter): %d jobs/s: p99 %.0f ms, max %.0f ms -> %s\n", $2, iv, $3, $7, $8, ($7 <= 1.1 * iv && $8 <= 1.1 * iv + 10 ? "MET" : "NOT MET") }' "$RES" | tee -a "$OUT/table.txt"
echo "raw results: $OUT"
