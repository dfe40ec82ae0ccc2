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
#   BENCH_MAX_REST (1.0)     a run during which the rest of the machine (not
#                            PostgreSQL, not the inserter) used more CPU
#                            seconds than this is set aside (disturbed.tsv)
#                            and run again after a pause, twice at most
# and those of bench/lib.sh (BENCH_BIN, BENCH_OUT, BENCH_PGDIR).
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

N=${BENCH_JOBS:-200000}
R=${BENCH_REPEAT:-3}
MATRIX=${BENCH_MATRIX:-"copy:1:1000 copy:1:5000 copy:2:1000 copy:2:5000 copy:4:1000 copy:4:5000 insert:1:1000 insert:1:5000 insert:2:1000 insert:2:5000"}
PSQL_STREAMS=${BENCH_PSQL-"1 2"}
MAX_REST=${BENCH_MAX_REST:-1.0}
TICK=$(getconf CLK_TCK)
OUT=${BENCH_OUT:-/tmp/trib-bench-insert-$(date +%Y%m%d-%H%M%S)}
COLS="created_at, scheduled_at, state, metadata, args, kind, max_attempts, priority, queue, tags"
mkdir -p "$OUT"
RES=$OUT/results.tsv

reset() {
    bench_sql "TRUNCATE river_job" >/dev/null
    bench_sql "VACUUM ANALYZE river_job" >/dev/null
    bench_sql "CHECKPOINT" >/dev/null
}

# Busy CPU seconds of the whole machine so far (all but idle and iowait).
machine_busy() {
    awk -v t="$TICK" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t; exit }' /proc/stat
}

# CPU seconds of our PostgreSQL: the postmaster with its reaped children
# (backends that ended) plus the live ones.
pg_cpu() {
    local pm c t
    pm=$(head -1 "$BENCH_PGDIR/data/postmaster.pid")
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pm/stat")
    for c in $(pgrep -P "$pm"); do
        t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$c/stat" 2>/dev/null || echo 0)))
    done
    awk -v x="$t" -v k="$TICK" 'BEGIN { printf "%.2f", x / k }'
}

# measure NAME REP CMD...: runs CMD (which prints jobs/s in the 6th field
# of its last line, as trib-insert-bench does), appends to results.tsv: config,
# rep, jobs/s, client CPU s, PostgreSQL CPU s, rest CPU s, load average.
# A disturbed run is set aside and repeated (twice at most).
measure() {
    local name=$1 rep=$2 try m0 m1 p0 p1 line rate cpu rest
    shift 2
    for try in 1 2 3; do
        reset
        sleep 1
        m0=$(machine_busy)
        p0=$(pg_cpu)
        line=$( { /usr/bin/time -f 'CPU %U %S' "$@" 2>"$OUT/time.txt"; } ) ||
            bench_die "$name: $(cat "$OUT/time.txt")"
        sleep 0.5 # the backends' exit reaches the postmaster's totals
        p1=$(pg_cpu)
        m1=$(machine_busy)
        rate=$(echo "$line" | tail -1 | cut -f6)
        cpu=$(awk '/^CPU/ {printf "%.2f", $2 + $3}' "$OUT/time.txt")
        rest=$(awk -v a="$m0" -v b="$m1" -v p="$p1" -v q="$p0" -v c="$cpu" \
            'BEGIN { r = b - a - (p - q) - c; printf "%.2f", r < 0 ? 0 : r }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$rate" "$cpu" \
            "$(awk -v p="$p1" -v q="$p0" 'BEGIN { printf "%.2f", p - q }')" \
            "$rest" "$(cut -d' ' -f1 /proc/loadavg)" >>"$RES"
        bench_log "$name run $rep: $rate jobs/s (rest of the machine $rest s CPU)"
        if [ "$try" -lt 3 ] && awk -v r="$rest" -v m="$MAX_REST" 'BEGIN { exit !(r > m) }'; then
            bench_log "disturbed (rest $rest s > $MAX_REST): again in 20 s"
            tail -1 "$RES" >>"$OUT/disturbed.tsv"
            sed -i '$d' "$RES"
            sleep 20
            continue
        fi
        return 0
    done
}

# psql_copy STREAMS: the exported rows again with STREAMS parallel
# `psql \copy` (each one transaction); prints a line like the bench's.
psql_copy() {
    local s=$1 t0 t1 i pids=()
    rm -f "$OUT"/part.*
    split -n "l/$s" -d "$OUT/rows.tsv" "$OUT/part."
    t0=$(date +%s.%N)
    for i in "$OUT"/part.*; do
        psql -qX "$BENCH_URL" -c "\\copy river_job ($COLS) FROM '$i'" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || return 1; done
    t1=$(date +%s.%N)
    awk -v n="$N" -v s="$s" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "psql\t%s\t-\t%d\t%.3f\t%.0f\n", s, n, b - a, n / (b - a) }'
}

# internal: one timed psql \copy run (measure runs it as a process)
if [ "${1:-}" = --psql-copy ]; then
    BENCH_URL=$2
    psql_copy "$3"
    exit
fi

bench_need_bins tributary trib-insert-bench
trap bench_cleanup EXIT
bench_pg_start
bench_describe | tee "$OUT/machine.txt"
: >"$RES"
: >"$OUT/disturbed.tsv"
for rep in $(seq 1 "$R"); do
    for cfg in $MATRIX; do
        IFS=: read -r m s b <<<"$cfg"
        measure "$cfg" "$rep" "$BENCH_BIN/trib-insert-bench" \
            --database-url "$BENCH_URL" --jobs "$N" --streams "$s" \
            --method "$m" --batch "$b"
        if [ ! -f "$OUT/rows.tsv" ] && [ "$m" = copy ]; then
            psql -qX "$BENCH_URL" -c "\\copy (SELECT $COLS FROM river_job) TO '$OUT/rows.tsv'"
        fi
    done
    for s in $PSQL_STREAMS; do
        measure "psql:$s:-" "$rep" env BENCH_OUT="$OUT" BENCH_JOBS="$N" \
            "$0" --psql-copy "$BENCH_URL" "$s"
    done
done

{
    echo
    echo "$N jobs per run, $R runs per configuration (interleaved); jobs/s from the"
    echo "first transaction to the last commit (connections already open; psql: the"
    echo "processes' wall time). CPU: seconds per 100,000 jobs, median of the runs;"
    echo "rest: the most CPU seconds the rest of the machine used during one run."
    echo
    printf '%-7s %7s %6s %9s %9s %9s %10s %9s %6s  %s\n' method streams batch best median worst "client CPU" "PG CPU" rest "load average at each run"
    for cfg in $MATRIX $(for s in $PSQL_STREAMS; do echo "psql:$s:-"; done); do
        awk -F'\t' -v c="$cfg" -v n="$N" '
            $1 == c { k++; v[k] = $3; cc[k] = $4; pc[k] = $5; la = la " " $7
                      if ($6 > rest) rest = $6 }
            function med(a, m,   i, j, t) {
                for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
                    if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                return a[int((m + 1) / 2)]
            }
            END {
                if (k == 0) exit
                split(c, f, ":")
                best = 0; worst = -1
                for (i = 1; i <= k; i++) {
                    if (v[i] > best) best = v[i]
                    if (worst < 0 || v[i] < worst) worst = v[i]
                }
                printf "%-7s %7s %6s %9d %9d %9d %10s %9.2f %6.2f %s\n", f[1], f[2], f[3],
                    best, med(v, k), worst,
                    f[1] == "psql" ? "-" : sprintf("%.2f", med(cc, k) * 100000 / n),
                    med(pc, k) * 100000 / n, rest, la
            }' "$RES"
    done
    n=$(wc -l <"$OUT/disturbed.tsv")
    [ "$n" = 0 ] || echo "($n disturbed run(s) set aside and repeated: $OUT/disturbed.tsv)"
} | tee "$OUT/table.txt"
echo "raw results: $OUT"
