#!/usr/bin/env bash
# Builds the dashboard (web/) into web/dist, which the next `cargo build` embeds in the gateway.
#
#   scripts/web.sh            build when Node >= 20.19 is there; otherwise say so and leave the gateway to
#                             serve its "dashboard not built" page (make run)
#   scripts/web.sh --check    the tests' build: Node is required, and the message catalogs' parity, the
#                             TypeScript types and the generated API types are checked too (make test)
#
# Quick when nothing changed: `npm ci` runs when package-lock.json changed, the build when a source did (stamps
# in web/node_modules). Node: the system's when it is 20.19 or newer, else the Node 22 the tests install
# (tests/deps/node_modules/.bin/node).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEB="$ROOT/web"
CHECK=0
[[ "${1:-}" == "--check" ]] && CHECK=1

log() { printf '[web] %s\n' "$*" >&2; }
skip() {
    if ((CHECK)); then
        printf '[web] ERROR: %s\n' "$*" >&2
        exit 1
    fi
    log "$*; the gateway will serve a page saying how to build the dashboard"
    exit 0
}

node_ok() { # node binary
    "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' 2>/dev/null
}

if command -v node >/dev/null 2>&1 && node_ok node; then
    :
elif [[ -x "$ROOT/tests/deps/node_modules/.bin/node" ]] && node_ok "$ROOT/tests/deps/node_modules/.bin/node"; then
    export PATH="$ROOT/tests/deps/node_modules/.bin:$PATH"
else
    skip "no Node.js 20.19 or newer to build the dashboard with"
fi
command -v npm >/dev/null 2>&1 || skip "no npm to install the dashboard's packages with"

cd "$WEB"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f node_modules/.gigmcp-lock.sha256 || "$(cat node_modules/.gigmcp-lock.sha256)" != "$lock_hash" ]]; then
    log "npm ci (node $(node --version))"
    npm ci --ignore-scripts --no-audit --no-fund >&2
    printf '%s' "$lock_hash" >node_modules/.gigmcp-lock.sha256
fi

if ((CHECK)); then
    npm run --silent check:i18n >&2
    # The committed types must be what openapi-typescript makes of the committed document (which a Rust test
    # compares with the API's own).
    committed="$(mktemp --suffix .d.ts)"
    trap 'cp "$committed" src/api/schema.d.ts; rm -f "$committed"' EXIT
    cp src/api/schema.d.ts "$committed"
    npm run --silent gen:api >/dev/null
    if ! cmp -s "$committed" src/api/schema.d.ts; then
        printf '[web] ERROR: web/src/api/schema.d.ts is not generated from web/src/api/openapi.json: run `make web-api` and commit both\n' >&2
        exit 1
    fi
fi

sources_hash="$(
    find index.html package.json package-lock.json vite.config.ts tsconfig*.json src $([[ -d public ]] && echo public) -type f |
        LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
)"
if [[ -f dist/index.html && -f node_modules/.gigmcp-dist.sha256 && "$(cat node_modules/.gigmcp-dist.sha256)" == "$sources_hash" ]]; then
    log "dashboard up to date (web/dist)"
    exit 0
fi
log "building the dashboard into web/dist"
npm run --silent build >&2
printf '%s' "$sources_hash" >node_modules/.gigmcp-dist.sha256
