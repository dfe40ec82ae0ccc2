#!/usr/bin/env bash
# bench/insert.sh -- how fast `tributary stress` puts jobs into River's
# river_job (issue 4: >= 100,000 jobs/s with COPY on the reference machine).
# Each configuration inserts BENCH_JOBS jobs "as fast as insertion goes"
# with trib-insert-bench (the stress inserter, cli/stress_insert.c: one
# count stage, every job with the run's tag and metadata), into an emptied,
# vacuumed, checkpointed river_job. For comparison the same rows, exported,
# go in again with parallel `psql \copy` streams (the issue's reference
# figure). Prints a table; never gates.
#
#   bench/insert.sh
#
# Environment:
#   BENCH_JOBS     (200000)  jobs per run
#   BENCH_REPEAT   (3)       runs per configuration (interleaved; the table
#                            shows the best and the median)
#   BENCH_MATRIX   ("copy:1:1000 copy:1:5000 copy:2:1000 copy:2:5000
#                    copy:4:1000 copy:4:5000 insert:1:1000 insert:1:5000
#                    insert:2:1000 insert:2:5000")  method:streams:batch
#   BENCH_PSQL     ("1 2")   psql \copy stream counts ("" to skip)
# and those of bench/lib.sh (BENCH_BIN, BENCH_OUT, BENCH_PGDIR).
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

N=${BENCH_JOBS:-200000}
R=${BENCH_REPEAT:-3}
MATRIX=${BENCH_MATRIX:-"copy:1:1000 copy:1:5000 copy:2:1000 copy:2:5000 copy:4:1000 copy:4:5000 insert:1:1000 insert:1:5000 insert:2:1000 insert:2:5000"}
PSQL_STREAMS=${BENCH_PSQL-"1 2"}
OUT=${BENCH_OUT:-/tmp/trib-bench-insert-$(date +%Y%m%d-%H%M%S)}
COLS="created_at, scheduled_at, state, metadata, args, kind, max_attempts, priority, queue, tags"
mkdir -p "$OUT"
RES=$OUT/results.tsv
: >"$RES"

bench_need_bins tributary trib-insert-bench
trap bench_cleanup EXIT
bench_pg_start
bench_describe | tee "$OUT/machine.txt"

reset() {
    bench_sql "TRUNCATE river_job" >/dev/null
    bench_sql "VACUUM ANALYZE river_job" >/dev/null
    bench_sql "CHECKPOINT" >/dev/null
}

# one_run METHOD STREAMS BATCH REP: a line of results.tsv
# (config, rep, jobs, seconds, jobs/s, client CPU seconds)
one_run() {
    local m=$1 s=$2 b=$3 rep=$4 line cpu
    reset
    line=$( { /usr/bin/time -f 'CPU %U %S' "$BENCH_BIN/trib-insert-bench" \
        --database-url "$BENCH_URL" --jobs "$N" --streams "$s" --method "$m" \
        --batch "$b" 2>"$OUT/time.txt"; } ) ||
        bench_die "trib-insert-bench $m $s $b: $(cat "$OUT/time.txt")"
    cpu=$(awk '/^CPU/ {printf "%.2f", $2 + $3}' "$OUT/time.txt")
    # line: method streams batch jobs seconds jobs/s
    echo "$line" | awk -v c="$m:$s:$b" -v r="$rep" -v cpu="$cpu" \
        'BEGIN {OFS="\t"} {print c, r, $4, $5, $6, cpu}' >>"$RES"
    bench_log "$m streams=$s batch=$b run $rep: $(echo "$line" | cut -f6) jobs/s"
}

# psql_run STREAMS REP: the exported rows again, with STREAMS parallel
# `psql \copy` (each one transaction).
psql_run() {
    local s=$1 rep=$2 t0 t1 i pids=()
    reset
    rm -f "$OUT"/part.*
    split -n "l/$s" -d "$OUT/rows.tsv" "$OUT/part."
    t0=$(date +%s.%N)
    for i in "$OUT"/part.*; do
        psql -qX "$BENCH_URL" -c "\\copy river_job ($COLS) FROM '$i'" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || bench_die "psql \\copy failed"; done
    t1=$(date +%s.%N)
    awk -v c="psql:$s:-" -v r="$rep" -v n="$N" -v a="$t0" -v b="$t1" \
        'BEGIN {OFS="\t"; print c, r, n, sprintf("%.3f", b - a), sprintf("%.0f", n / (b - a)), "-"}' >>"$RES"
    bench_log "psql \\copy x$s run $rep: $(tail -1 "$RES" | cut -f5) jobs/s"
}

for rep in $(seq 1 "$R"); do
    for cfg in $MATRIX; do
        IFS=: read -r m s b <<<"$cfg"
        one_run "$m" "$s" "$b" "$rep"
        if [ "$rep" = 1 ] && [ "$cfg" = "copy:1:5000" ] && [ -n "$PSQL_STREAMS" ]; then
            psql -qX "$BENCH_URL" -c "\\copy (SELECT $COLS FROM river_job) TO '$OUT/rows.tsv'"
        fi
    done
    for s in $PSQL_STREAMS; do
        [ -f "$OUT/rows.tsv" ] || break
        psql_run "$s" "$rep"
    done
done

{
    echo
    echo "$N jobs per run, $R runs per configuration; jobs/s from the first"
    echo "transaction to the last commit (connections already open)"
    echo
    printf '%-8s %7s %6s %10s %10s %10s %s\n' method streams batch best median worst "client CPU s/100k jobs"
    for cfg in $MATRIX $(for s in $PSQL_STREAMS; do echo "psql:$s:-"; done); do
        awk -F'\t' -v c="$cfg" '$1 == c' "$RES" | sort -t$'\t' -k5,5n |
            awk -F'\t' -v c="$cfg" -v n="$N" '
            { v[NR] = $5; if ($6 != "-") { cpu += $6; k++ } }
            END {
                if (NR == 0) exit
                split(c, f, ":")
                name = f[1] == "psql" ? "psql" : f[1]
                printf "%-8s %7s %6s %10d %10d %10d %s\n", name, f[2], f[3],
                    v[NR], v[int((NR + 1) / 2)], v[1],
                    k ? sprintf("%.2f", cpu / k * 100000 / n) : "-"
            }'
    done
} | tee "$OUT/table.txt"
echo "raw results: $OUT"
