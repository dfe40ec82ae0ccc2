#!/usr/bin/env bash
# format.sh -- clang-format for C sources, gofmt for the Go harness.
#   scripts/format.sh [FILE...]           reformat in place (default: every
#                                         tracked C file and tests/go)
#   scripts/format.sh --check [FILE...]   list files that differ; exit 1 if any
#   scripts/format.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
case "${1:-}" in
-h | --help) sed -n '2,6p' "$0"; exit 0 ;;
--check) check=1; shift ;;
-*) echo "format.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
GOFMT=$(command -v gofmt || echo /usr/local/go/bin/gofmt)
cfiles=() gofiles=()
if [ $# -gt 0 ]; then
    for f in "$@"; do
        case "$f" in
        *.c | *.h) cfiles+=("$f") ;;
        *.go) gofiles+=("$f") ;;
        *) echo "format.sh: $f: not a C or Go file" >&2; exit 2 ;;
        esac
    done
else
    mapfile -t cfiles < <(git ls-files '*.c' '*.h' 2>/dev/null ||
        find common proto agent coordinator cli sql tests bench -name '*.[ch]')
    gofiles=(tests/go)
fi
if [ $check = 1 ]; then
    bad=0
    for f in "${cfiles[@]}"; do
        [ -f "$f" ] || continue
        if ! clang-format --style=file "$f" | cmp -s - "$f"; then
            echo "format: $f differs from clang-format (run scripts/format.sh $f)"
            bad=1
        fi
    done
    if [ -x "$GOFMT" ] && [ ${#gofiles[@]} -gt 0 ]; then
        for f in $("$GOFMT" -l "${gofiles[@]}"); do
            echo "format: $f differs from gofmt (run scripts/format.sh $f)"
            bad=1
        done
    fi
    [ $bad = 0 ] && echo "format: ${#cfiles[@]} C files and the Go harness clean"
    exit $bad
fi
[ ${#cfiles[@]} -gt 0 ] && clang-format -i --style=file "${cfiles[@]}"
if [ -x "$GOFMT" ] && [ ${#gofiles[@]} -gt 0 ]; then
    "$GOFMT" -w "${gofiles[@]}"
fi
