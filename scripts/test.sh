#!/usr/bin/env bash
# test.sh -- set everything up and run every test. This is the README's test
# command and what CI runs (.ci/run).
#
#   scripts/test.sh            full run: format check, normal build + ctest,
#                              AddressSanitizer/UBSan build + ctest, fuzzers
#   scripts/test.sh --quick    normal build + ctest only
#   scripts/test.sh -R REGEX   only the ctest tests matching REGEX
#
# It installs missing packages (scripts/setup.sh), starts its own throwaway
# PostgreSQL 15 on 127.0.0.1 (scripts/pg.sh; as an unprivileged user when
# run as root) and stops it on exit. Exit status: 0 when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=0
REGEX=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    -R) REGEX=(-R "$2"); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

export PATH="/usr/local/go/bin:$PATH"
JOBS=$(nproc 2>/dev/null || echo 2)
T0=$(date +%s)
step() { printf '\n=== %s (%ds)\n' "$*" $(($(date +%s) - T0)); }

step "setup"
scripts/setup.sh

step "format check"
scripts/format.sh --check

PGDIR="$ROOT/.tmp/pg-test-$$"
cleanup() { scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "PostgreSQL"
TRIB_TEST_PG_URL=$(scripts/pg.sh start "$PGDIR")
export TRIB_TEST_PG_URL
echo "test server: $TRIB_TEST_PG_URL"

failed=()
CTEST_EXTRA=()
run_suite() { # name builddir cmake-args... (ctest also gets CTEST_EXTRA)
    local name=$1 dir=$2
    shift 2
    step "$name: build"
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS" -- --no-print-directory 2>&1 |
        grep -Ev '^\[|^Consolidate|^Built target|^Scanning' || true
    if [ "${PIPESTATUS[0]}" != 0 ]; then
        failed+=("$name build")
        return
    fi
    step "$name: ctest"
    if ! (cd "$dir" && ctest --output-on-failure --timeout 900 \
        --output-junit junit.xml "${REGEX[@]}" "${CTEST_EXTRA[@]}"); then
        failed+=("$name tests")
    fi
}

run_suite "normal" build -DCMAKE_BUILD_TYPE=RelWithDebInfo

if [ $QUICK = 0 ]; then
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp"
    # Tests labelled docker build and run container images (the product
    # built inside them is not sanitized): once, in the normal suite.
    CTEST_EXTRA=(-LE docker)
    run_suite "sanitizers" build-asan -DCMAKE_BUILD_TYPE=Debug -DTRIB_SANITIZE=ON
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
    CTEST_EXTRA=()

    step "fuzzers (libFuzzer, 15 s each)"
    if cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DTRIB_FUZZ=ON \
        -DTRIB_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null; then
        mapfile -t fuzzers < <(cmake --build build-fuzz --target help |
            sed -n 's/^\.\.\. \(fuzz_[a-z0-9_]*\).*/\1/p')
        for f in "${fuzzers[@]}"; do
            cmake --build build-fuzz -j "$JOBS" --target "$f" >/dev/null ||
                { failed+=("fuzz $f build"); continue; }
            corpus="$ROOT/.tmp/corpus/$f"
            mkdir -p "$corpus"
            seeds=()
            [ -d "tests/fuzz/$f" ] && seeds=("tests/fuzz/$f")
            if build-fuzz/bin/"$f" -max_total_time=15 -rss_limit_mb=2048 \
                "$corpus" "${seeds[@]}" >"$ROOT/.tmp/$f.log" 2>&1; then
                echo "fuzz: $f: $(grep -Eo 'Done [0-9]+ runs' "$ROOT/.tmp/$f.log" || echo ok)"
            else
                tail -30 "$ROOT/.tmp/$f.log"
                failed+=("fuzz $f")
            fi
        done
    else
        failed+=("fuzz configure")
    fi
fi

step "summary"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all tests passed in $(($(date +%s) - T0)) s"
