#!/usr/bin/env bash
# base-image.sh -- build a Debian 12 (bookworm) base image locally, for
# machines where no image can be pulled (no registry access): debootstrap
# (minbase) into a temporary folder, then `docker import`. Use it with
#
#   deploy/base-image.sh                       # -> tributary-base:bookworm
#   docker build -f deploy/Dockerfile --build-arg BASE=tributary-base:bookworm .
#
#   deploy/base-image.sh [--name IMAGE] [--mirror URL] [--force]
#
# A no-op when the image exists (unless --force). Needs root (debootstrap)
# and the debootstrap package (installed when missing). ~1 min with a
# close Debian mirror.
set -euo pipefail

NAME=tributary-base:bookworm
MIRROR=http://deb.debian.org/debian
FORCE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --name) NAME=$2; shift ;;
    --mirror) MIRROR=$2; shift ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "base-image.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ $FORCE = 0 ] && docker image inspect "$NAME" >/dev/null 2>&1; then
    echo "base-image.sh: $NAME exists (--force rebuilds it)"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "base-image.sh: debootstrap needs root (run with sudo)" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
ROOTFS=$(mktemp -d /tmp/tributary-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
echo "base-image.sh: debootstrap bookworm from $MIRROR..."
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
    tail -20 "$ROOTFS.log" >&2
    exit 1
}
rm -f "$ROOTFS.log"
# The same apt sources a debian:12 image has.
echo "deb $MIRROR bookworm main" >"$ROOTFS/etc/apt/sources.list"
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | docker import - "$NAME" >/dev/null
echo "base-image.sh: built $NAME"
