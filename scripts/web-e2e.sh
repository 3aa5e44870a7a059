#!/usr/bin/env bash
# The dashboard's browser tests: starts a real gateway (target/debug/gigmcp serve --dev, built with the
# dashboard embedded) on a free loopback port with a temporary data directory, runs Playwright against it with
# Debian's chromium, stops the gateway. Screenshots of every page, light and dark, land in
# target/dashboard-screenshots/.
#
# Needs: scripts/test-deps.sh (chromium, the Python MCP client), scripts/web.sh --check (web/dist and
# web/node_modules), then `cargo build -p gigmcp`.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/target/debug/gigmcp"
log() { printf '[web-e2e] %s\n' "$*" >&2; }

[[ -x "$BIN" ]] || { log "ERROR: $BIN is missing: cargo build -p gigmcp"; exit 1; }
[[ -x /usr/bin/chromium ]] || { log "ERROR: /usr/bin/chromium is missing: scripts/test-deps.sh installs it"; exit 1; }
# shellcheck disable=SC1091
source "$ROOT/.test-deps/paths.env"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' 2>/dev/null ||
    export PATH="$ROOT/tests/deps/node_modules/.bin:$PATH"

# The plugin journeys upload a default plugin's component and one of the wrong world (tests build them too).
for package in tool-filter rogue-import; do
    [[ -f "$ROOT/target/plugins/wasm32-wasip2/release/${package//-/_}.wasm" ]] && continue
    log "building the $package component"
    cargo build --release --locked --quiet --target wasm32-wasip2 -p "$package" \
        --manifest-path "$ROOT/plugins/Cargo.toml" --target-dir "$ROOT/target/plugins"
done

DATA="$(mktemp -d /tmp/gigmcp-e2e.XXXXXX)"
chmod 700 "$DATA"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export GIG_E2E_URL="http://127.0.0.1:$PORT" GIG_E2E_DATA_DIR="$DATA" GIGMCP_BIN="$BIN"
export GIGMCP_TEST_PYTHON GIGMCP_TEST_CLIENTS

# The signed demo catalog `make run` serves, for the catalog's journeys.
CATALOG="$(cd "$ROOT" && scripts/demo-catalog.sh "$DATA" "$BIN")"
# shellcheck disable=SC2086
env $CATALOG GIG_DATA_DIR="$DATA" GIG_LISTEN="127.0.0.1:$PORT" RUST_LOG="${RUST_LOG:-warn}" "$BIN" serve --dev >"$DATA/gateway.log" 2>&1 &
GATEWAY=$!
stop() {
    kill -TERM "$GATEWAY" 2>/dev/null && wait "$GATEWAY" 2>/dev/null
    rm -rf "$DATA"
}
trap stop EXIT

for _ in $(seq 1 240); do
    curl -sf "$GIG_E2E_URL/api/health" >/dev/null && break
    kill -0 "$GATEWAY" 2>/dev/null || { cat "$DATA/gateway.log" >&2; log "ERROR: the gateway exited"; exit 1; }
    sleep 0.25
done
curl -sf "$GIG_E2E_URL/api/health" >/dev/null || { cat "$DATA/gateway.log" >&2; log "ERROR: no answer from the gateway"; exit 1; }
log "gateway at $GIG_E2E_URL"

cd "$ROOT/web"
status=0
npx --no-install playwright test "$@" || status=$?
if ((status)); then
    log "the gateway's log:"
    tail -n 60 "$DATA/gateway.log" >&2
fi
exit "$status"
