#!/usr/bin/env bash
# setup.sh -- install what building, testing and the demo need on a fresh
# Debian 12 machine (idempotent: a no-op when everything is present).
#
#   scripts/setup.sh            install missing Debian packages
#
# Needs root (or sudo) only when something is missing. Go (for the test
# harnesses that run River's own Go client beside our agent) is expected at
# /usr/local/go or on PATH; the Go modules come from the Go module proxy.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config
    libnng-dev libmsgpack-dev libuv1-dev libpq-dev libjansson-dev libyaml-dev libssl-dev zlib1g-dev
    libcmocka-dev
    postgresql-15 postgresql-client-15
    clang clang-format libclang-rt-14-dev
    python3 util-linux procps iproute2
    # headless screenshots of the HTML stress report (tests/go/harness/chromium.go)
    chromium fonts-dejavu-core
    # deploy/base-image.sh (the compose test's base image; Docker itself is
    # the machine's: docker.io or docker-ce, and docker-compose)
    debootstrap
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    # The postgresql package must not create and start its own cluster on
    # :5432; our scripts start private throwaway servers (scripts/pg.sh).
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" |
        $SUDO tee /etc/postgresql-common/createcluster.d/tributary.conf >/dev/null
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null || true
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "setup: all packages present"
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
    echo "setup: Go is required for the test harnesses (River's Go client)" >&2
    echo "       install Go >= 1.26 at /usr/local/go or on PATH" >&2
    exit 1
fi
