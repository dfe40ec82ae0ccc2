#!/usr/bin/env bash
# bench/burndown.sh -- no-op burn-down throughput, side by side on one
# durable PostgreSQL: Tributary's agent (several configurations), River's Go
# client (riverbench = `river bench --num-total-jobs N`), and the "physical
# ceiling" (pgbench with River's own fetch statement, 1,000 jobs per
# transaction). Prints a table; never gates anything.
#
#   bench/burndown.sh
#
# Environment: BENCH_JOBS (200000), BENCH_REPEAT (1: runs per configuration,
# the table shows the best), BENCH_CEILING_CLIENTS ("1 2 4"),
# BENCH_CEILING_BATCH (1000 jobs per pgbench transaction), BENCH_SKIP
# (space-separated: agent river ceiling), and those of bench/lib.sh
# (BENCH_BIN, BENCH_OUT, BENCH_PGSS=1 for pg_stat_statements per run).
# See bench/README.md for what is measured and how.
source "$(dirname "$0")/lib.sh"
trap bench_cleanup EXIT

N=${BENCH_JOBS:-200000}
R=${BENCH_REPEAT:-1}
CEIL_CLIENTS=${BENCH_CEILING_CLIENTS:-"1 2 4"}
CEIL_BATCH=${BENCH_CEILING_BATCH:-1000}
SKIP=" ${BENCH_SKIP:-} "
OUT=${BENCH_OUT:-/tmp/trib-bench-burndown-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RES=$OUT/results.tsv
: >"$RES"

bench_need_bins tributary tributary-agent riverbench benchtool
[ -x "$PGBIN/pgbench" ] || bench_die "pgbench not found in $PGBIN"

bench_log "starting a durable PostgreSQL in $BENCH_PGDIR"
bench_pg_start
{
    echo "burn-down of $N no-op jobs, $(date -u +%Y-%m-%dT%H:%M:%SZ), $R run(s) per configuration"
    bench_describe
} | tee "$OUT/machine.txt"

# result METHOD CONFIG RUN JOBS_PER_S ELAPSED_S CLIENT_CPU_S PG_CPU_S OTHER_CPU_S NOTE
result() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"
    printf '  -> %s / %s / run %s: %s jobs/s (%s s; client CPU %s s, PostgreSQL CPU %s s, rest of the machine %s s) %s\n' "$@" >&2
}

# other DIFF.json CLIENT_CPU_S: machine busy CPU not spent by PostgreSQL or
# the client (this script's helpers, other users of the machine).
other() {
    awk -v m="$(bench_get "$1" machine_busy_s)" -v p="$(bench_get "$1" pg_cpu_s)" -v c="$2" \
        'BEGIN { printf "%.2f", m - p - c }'
}

check_completed() { # LABEL
    local done
    done=$(bench_sql "SELECT count(*) FROM river_job WHERE state = 'completed'")
    [ "$done" = "$N" ] || bench_log "WARNING: $1: $done of $N jobs completed"
}

# ---------------------------------------------------------------- agent
# run_agent LABEL AGENT-ARGS...: from the agent's start (wall clock before
# exec) to the N-th job event read from its --events-out (each event is
# published after the write-back that finalized the job committed).
run_agent() {
    local label=$1 r tag fifo start ap el cpu pg span
    shift
    for r in $(seq 1 "$R"); do
        tag=agent-$(echo "$label" | tr -c 'a-zA-Z0-9\n' '_')-$r
        bench_log "agent: $label (run $r)"
        bench_reset "$N" tributary.noop
        fifo=$OUT/$tag.fifo
        rm -f "$fifo"
        mkfifo "$fifo"
        bench_cpu_snap "$OUT/$tag.cpu0.json"
        start=$(date +%s%N)
        "$BENCH_BIN/tributary-agent" --database-url "$BENCH_URL" \
            --log-level warn --events-out "$fifo" "$@" 2>>"$OUT/$tag.log" &
        ap=$!
        BENCH_PIDS+=("$ap")
        if ! "$BENCH_BIN/benchtool" wait-events --n "$N" --start-ns "$start" \
            --timeout 600s <"$fifo" >"$OUT/$tag.json"; then
            bench_log "agent run failed; see $OUT/$tag.log"
            kill "$ap" 2>/dev/null || true
            wait "$ap" 2>/dev/null || true
            continue
        fi
        bench_cpu_snap "$OUT/$tag.cpu1.json" agent="$ap"
        kill -TERM "$ap"
        wait "$ap" || true
        rm -f "$fifo"
        "$BENCH_BIN/benchtool" cpu-diff --jobs "$N" "$OUT/$tag.cpu0.json" \
            "$OUT/$tag.cpu1.json" >"$OUT/$tag.cpu.json"
        bench_pgss_top "$OUT/$tag.pgss.txt"
        check_completed "$label"
        el=$(bench_get "$OUT/$tag.json" elapsed_s)
        cpu=$(bench_get "$OUT/$tag.cpu.json" extra:agent)
        pg=$(bench_get "$OUT/$tag.cpu.json" pg_cpu_s)
        span=$(bench_sql "SELECT round(extract(epoch FROM max(finalized_at) - min(attempted_at))::numeric, 3) FROM river_job")
        result tributary "$label" "$r" "$(awk -v n="$N" -v e="$el" 'BEGIN{printf "%.0f", n/e}')" \
            "$el" "$cpu" "$pg" "$(other "$OUT/$tag.cpu.json" "$cpu")" \
            "first attempted_at..last finalized_at ${span}s"
    done
}

if [[ $SKIP != *" agent "* ]]; then
    cat >"$OUT/two-clients.yaml" <<'EOF'
clients:
  - id: bench-c1
    queues: ["default:2000"]
  - id: bench-c2
    queues: ["default:2000"]
EOF
    run_agent "1 client, default:2000 (defaults)" --queue default:2000
    run_agent "1 client, default:2000, --complete-batch 2000" --queue default:2000 --complete-batch 2000
    run_agent "1 client, default:2000, --complete-batch 1000" --queue default:2000 --complete-batch 1000
    run_agent "1 client, default:5000" --queue default:5000
    run_agent "2 clients (--config), each default:2000" --config "$OUT/two-clients.yaml"
fi

# ---------------------------------------------------------------- River
# riverbench reports jobs/s itself: jobs / (last event - Client.Start).
run_river() { # LABEL SKIP_INSERT(0|1)
    local label=$1 skip=$2 r tag el jps cpu pg args
    for r in $(seq 1 "$R"); do
        tag=river-$skip-$r
        bench_log "River: $label (run $r)"
        if [ "$skip" = 1 ]; then
            bench_reset "$N" benchmark '{"num":1}'
            args=(--skip-insert)
        else
            bench_sql "TRUNCATE river_job, river_leader, river_queue" >/dev/null
            bench_sql "CHECKPOINT" >/dev/null
            args=(--truncate)
        fi
        bench_cpu_snap "$OUT/$tag.cpu0.json"
        if ! "$BENCH_BIN/benchtool" cputime --out "$OUT/$tag.time.json" -- \
            "$BENCH_BIN/riverbench" --database-url "$BENCH_URL" \
            --num-total-jobs "$N" --json --timeout 10m "${args[@]}" \
            >"$OUT/$tag.out" 2>>"$OUT/$tag.log"; then
            bench_log "riverbench failed; see $OUT/$tag.log"
            continue
        fi
        bench_cpu_snap "$OUT/$tag.cpu1.json"
        "$BENCH_BIN/benchtool" cpu-diff --jobs "$N" "$OUT/$tag.cpu0.json" \
            "$OUT/$tag.cpu1.json" >"$OUT/$tag.cpu.json"
        bench_pgss_top "$OUT/$tag.pgss.txt"
        grep '^bench: total' "$OUT/$tag.out" >&2 || true
        check_completed "$label"
        el=$(bench_get "$OUT/$tag.out" elapsed_seconds)
        jps=$(bench_get "$OUT/$tag.out" jobs_per_sec)
        cpu=$(bench_get "$OUT/$tag.time.json" cpu_s)
        pg=$(bench_get "$OUT/$tag.cpu.json" pg_cpu_s)
        local note=""
        [ "$skip" = 0 ] && note="CPU figures include riverbench's own insert of the $N jobs"
        result river "$label" "$r" "$(printf '%.0f' "$jps")" "$el" "$cpu" "$pg" \
            "$(other "$OUT/$tag.cpu.json" "$cpu")" "$note"
    done
}

if [[ $SKIP != *" river "* ]]; then
    run_river "riverbench --num-total-jobs $N (inserts its own jobs, as river bench)" 0
    run_river "riverbench --skip-insert, same pre-inserted state as the agent" 1
fi

# -------------------------------------------------------------- ceiling
if [[ $SKIP != *" ceiling "* ]]; then
    batches=$(((N + CEIL_BATCH - 1) / CEIL_BATCH))
    sed "s/LIMIT 1000::integer/LIMIT $CEIL_BATCH::integer/" \
        "$BENCH_ROOT/bench/ceiling.sql" >"$OUT/ceiling.sql"
    for c in $CEIL_CLIENTS; do
        for r in $(seq 1 "$R"); do
            tag=ceiling-c$c-$r
            bench_log "ceiling: pgbench -c $c (run $r)"
            bench_reset "$N" tributary.noop
            t=$(((batches + c - 1) / c))
            bench_cpu_snap "$OUT/$tag.cpu0.json"
            "$BENCH_BIN/benchtool" cputime --out "$OUT/$tag.time.json" -- \
                "$PGBIN/pgbench" -n -f "$OUT/ceiling.sql" -c "$c" -t "$t" \
                "$BENCH_URL" >"$OUT/$tag.out" 2>&1 || { bench_log "pgbench failed: $(tail -3 "$OUT/$tag.out")"; continue; }
            bench_cpu_snap "$OUT/$tag.cpu1.json"
            "$BENCH_BIN/benchtool" cpu-diff --jobs "$N" "$OUT/$tag.cpu0.json" \
                "$OUT/$tag.cpu1.json" >"$OUT/$tag.cpu.json"
            bench_pgss_top "$OUT/$tag.pgss.txt"
            check_completed "pgbench -c $c"
            tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/$tag.out")
            txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\)\/.*/\1/p' "$OUT/$tag.out")
            done_n=$(bench_sql "SELECT count(*) FROM river_job WHERE state = 'completed'")
            # jobs/s = completed jobs / (transactions / tps); = batch x tps
            # when every transaction found a full batch.
            el=$(awk -v x="$txns" -v t="$tps" 'BEGIN{printf "%.3f", x/t}')
            cpu=$(bench_get "$OUT/$tag.time.json" cpu_s)
            result ceiling "pgbench -c $c, $CEIL_BATCH jobs/transaction" "$r" \
                "$(awk -v n="$done_n" -v e="$el" 'BEGIN{printf "%.0f", n/e}')" "$el" \
                "$cpu" "$(bench_get "$OUT/$tag.cpu.json" pg_cpu_s)" \
                "$(other "$OUT/$tag.cpu.json" "$cpu")" "tps $tps"
        done
    done
fi

# ---------------------------------------------------------------- table
# Best run per (method, configuration); ratios against River's riverbench
# --num-total-jobs (as river bench runs) and the best ceiling run.
echo
echo "Burn-down of $N no-op jobs (best of $R run(s) each, median in brackets; jobs/s = $N / time to the last job finalized)"
awk -F'\t' '
    function median(k,   m, i, j, t, a) {
      m = cnt[k]; for (i = 1; i <= m; i++) a[i] = vals[k, i] + 0
      for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
    { key = $1 "\t" $2
      vals[key, ++cnt[key]] = $4
      if (!(key in best) || $4 + 0 > best[key] + 0) { best[key] = $4; el[key] = $5; cc[key] = $6; pg[key] = $7; ot[key] = $8 }
      if (!(key in order)) { order[key] = ++n; keys[n] = key }
      if ($1 == "river" && $2 ~ /inserts its own/ && $4 + 0 > river + 0) river = $4
      if ($1 == "ceiling" && $4 + 0 > ceil + 0) ceil = $4 }
    END {
      printf "%-10s | %-72s | %8s | %9s | %8s | %10s | %8s | %8s | %8s | %8s\n", "method", "configuration", "jobs/s", "(median)", "x River", "of ceiling", "time s", "cli CPU", "PG CPU", "rest CPU"
      for (i = 1; i <= n; i++) {
        k = keys[i]; split(k, p, "\t")
        printf "%-10s | %-72s | %8d | %9s | %8s | %10s | %8.2f | %8s | %8s | %8s\n", p[1], p[2], best[k], "(" int(median(k)) ")", (river > 0 ? sprintf("%.2fx", best[k] / river) : "-"), (ceil > 0 ? sprintf("%.0f%%", 100 * best[k] / ceil) : "-"), el[k], cc[k], pg[k], ot[k]
      }
    }' "$RES" | tee "$OUT/table.txt"
echo
awk -F'\t' '
    $1 == "tributary" { if ($4 + 0 > t + 0) { t = $4; tc = $2 } if ($2 ~ /defaults/ && $4 + 0 > d + 0) d = $4 }
    $1 == "river" && $2 ~ /inserts its own/ { if ($4 + 0 > r + 0) r = $4 }
    $1 == "river" && $2 ~ /same pre-inserted/ { if ($4 + 0 > rs + 0) rs = $4 }
    $1 == "ceiling" { if ($4 + 0 > c + 0) c = $4 }
    END {
      if (t == 0) exit
      if (r > 0) printf "target tributary >= 1.5x River: best %.2fx (%s), default %.2fx -> %s\n", t / r, tc, d / r, (t / r >= 1.5 ? "MET" : "NOT MET")
      if (rs > 0) printf "  (against River on the same pre-inserted state: best %.2fx, default %.2fx)\n", t / rs, d / rs
      if (c > 0) printf "target tributary >= 85%% of the ceiling: best %.0f%%, default %.0f%% -> %s\n", 100 * t / c, 100 * d / c, (t / c >= 0.85 ? "MET" : "NOT MET")
    }' "$RES" | tee -a "$OUT/table.txt"
echo "CPU columns (seconds, best run): cli = the client process; PG = all PostgreSQL processes; rest = the rest of"
echo "the machine's busy CPU meanwhile (benchmark helpers and anything else running on it; large = a disturbed run)."
echo "raw results: $OUT (results.tsv: method, configuration, run, jobs/s, seconds, client CPU s, PostgreSQL CPU s, rest CPU s, note)"
