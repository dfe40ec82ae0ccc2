#!/bin/sh
# deploy/healthcheck.sh -- installed as /usr/local/bin/tributary-healthcheck;
# the containers' health checks (docker-compose.yml), through the CLI:
#
#   tributary-healthcheck coordinator   the control address answers `status`
#                                       (TRIBUTARY_HEALTH_CONTROL, default
#                                       tcp://127.0.0.1:7101)
#   tributary-healthcheck agent         the coordinator (TRIBUTARY_CONTROL)
#                                       lists this node (TRIBUTARY_NODE_ID,
#                                       else the host name) as alive: the
#                                       agent runs, heartbeats and forwards
#
# Exit 0 healthy, 1 not (with the reason on stderr), 2 usage.
set -u

case "${1:-}" in
coordinator)
    out=$(tributary status --json --control "${TRIBUTARY_HEALTH_CONTROL:-tcp://127.0.0.1:7101}" 2>&1 >/dev/null) || {
        echo "coordinator: $out" >&2
        exit 1
    }
    ;;
agent)
    node=${TRIBUTARY_NODE_ID:-$(hostname)}
    doc=$(tributary nodes --json) || exit 1
    # The document is compact JSON, keys in the coordinator's order: "node"
    # comes first in a node's object and "liveness" a few strings later.
    re=$(printf '%s' "$node" | sed 's/[].[^$*\\/]/\\&/g')
    if ! printf '%s' "$doc" | grep -q "\"node\":\"$re\",[^{}]*\"liveness\":\"alive\""; then
        echo "agent: node $node is not alive in the coordinator's view" >&2
        exit 1
    fi
    ;;
*)
    echo "usage: tributary-healthcheck coordinator|agent" >&2
    exit 2
    ;;
esac
