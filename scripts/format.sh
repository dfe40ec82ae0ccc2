#!/usr/bin/env bash
# format.sh -- clang-format for every C source, gofmt for the Go harness.
#   scripts/format.sh           reformat in place
#   scripts/format.sh --check   list files that differ; exit 1 if any
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null ||
    find common proto agent coordinator cli sql tests bench -name '*.[ch]')
if [ "${1:-}" = "--check" ]; then
    bad=0
    for f in "${files[@]}"; do
        [ -f "$f" ] || continue
        if ! clang-format --style=file "$f" | cmp -s - "$f"; then
            echo "format: $f differs from clang-format (run scripts/format.sh)"
            bad=1
        fi
    done
    # Go test harness: gofmt
    GOFMT=$(command -v gofmt || echo /usr/local/go/bin/gofmt)
    if [ -x "$GOFMT" ]; then
        for f in $("$GOFMT" -l tests/go); do
            echo "format: $f differs from gofmt (run scripts/format.sh)"
            bad=1
        done
    fi
    [ $bad = 0 ] && echo "format: ${#files[@]} C files and the Go harness clean"
    exit $bad
fi
clang-format -i --style=file "${files[@]}"
GOFMT=$(command -v gofmt || echo /usr/local/go/bin/gofmt)
[ -x "$GOFMT" ] && "$GOFMT" -w tests/go
