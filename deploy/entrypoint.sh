#!/bin/sh
# deploy/entrypoint.sh -- the Tributary image's entrypoint.
#
# Started as root (the image's default), it prepares what only root can and
# then runs the command as the unprivileged user `tributary`:
#
# 1. The shared secret. Compose (v1) file secrets and Swarm secrets are
#    mounted at /run/secrets/NAME with the host file's owner and mode, which
#    the agent and the coordinator refuse when group or others can read it
#    (and the user `tributary` may not be able to read it at all). When
#    TRIBUTARY_SECRET_FILE names a file, it is copied to
#    /run/tributary/tributary_secret_file, mode 0400, owned by `tributary`,
#    and TRIBUTARY_SECRET_FILE points there; the same for the TLS files
#    (TRIBUTARY_TLS_KEY, _CERT, _CA, _CLIENT_CA; docs/TLS.md). Mount a
#    tmpfs on /run/tributary (docker-compose.yml does) to keep the copies
#    off disk.
# 2. Writable directories. The data directory, the outboxes and the stress
#    reports (/var/lib/tributary/{data,outbox,reports}): a bind mount or a
#    volume created by hand that `tributary` cannot write is given to it
#    (the directory itself, not its contents).
# 3. Privileges are dropped with setpriv (util-linux): real and effective
#    uid and gid `tributary`, its groups only; leaving uid 0 clears every
#    capability, and no_new_privs keeps set-uid programs from restoring any.
#
# Started as another user (`docker run --user`, compose `user:`), it runs
# the command as it is: the secret file must then already be readable by
# that user alone.
set -eu

if [ "$(id -u)" != 0 ]; then
    exec "$@"
fi

# private_copy VAR: when the variable VAR names a file, copy it to
# /run/tributary/<var>, mode 0400, owned by tributary, and point VAR there.
# install(1) creates the copy with its final owner and mode: it is never
# readable by anyone else, not even for a moment.
private_copy() {
    eval "src=\${$1:-}"
    [ -n "$src" ] || return 0
    if [ ! -r "$src" ]; then
        echo "entrypoint: $1=$src: no such file (is the secret mounted?)" >&2
        exit 2
    fi
    dst=/run/tributary/$(echo "$1" | tr 'A-Z' 'a-z')
    mkdir -p /run/tributary
    chown tributary:tributary /run/tributary
    chmod 0700 /run/tributary
    install -o tributary -g tributary -m 0400 "$src" "$dst.new"
    mv -f "$dst.new" "$dst"
    export "$1=$dst"
}
# The shared secret, and TLS files (docs/TLS.md) given as secrets too.
for v in TRIBUTARY_SECRET_FILE TRIBUTARY_TLS_KEY TRIBUTARY_TLS_CERT TRIBUTARY_TLS_CA TRIBUTARY_TLS_CLIENT_CA; do
    private_copy "$v"
done

for d in /var/lib/tributary/data /var/lib/tributary/outbox /var/lib/tributary/reports; do
    if [ -d "$d" ] && ! setpriv --reuid=tributary --regid=tributary --init-groups test -w "$d"; then
        chown tributary:tributary "$d"
    fi
done

exec setpriv --reuid=tributary --regid=tributary --init-groups \
    --inh-caps=-all --no-new-privs -- "$@"
