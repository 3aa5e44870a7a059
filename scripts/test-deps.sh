#!/usr/bin/env bash
# Install everything Gig'MCP's integration tests need besides the Rust toolchain:
#
#   * Debian packages: bubblewrap, iproute2, iptables, nftables, e2fsprogs (the sandbox's tools), chromium (the
#     dashboard's browser tests), golang-go and python3-yaml (the catalog's hashes checked against Go's
#     encoding/json, reading the fixtures with a YAML 1.1 reader as the Go registry does; a static MCP server
#     built for the OCI tests), docker-registry (an OCI registry on loopback for static-binary entries)
#   * npm packages pinned in tests/deps/package.json + package-lock.json, installed
#     with `npm ci` into tests/deps/node_modules (the reference MCP servers, the
#     conformance suite, supergateway, and a Node 22 binary)
#   * a Python venv at .test-deps/venv with tests/deps/requirements.txt (the official
#     MCP Python SDK used by tests/clients/*.py, and mcp-server-time)
#
# Idempotent and quick when nothing changed: each step leaves a stamp holding the
# sha256 of its manifest(s); a changed manifest (or a deleted install) reinstalls.
# Non-interactive; meant to run as root (CI, a fresh Debian machine).
#
# Environment:
#   PYTHON           interpreter for the venv (default: python3.11, else python3; needs >= 3.10)
#   TEST_DEPS_FORCE  set to 1 to reinstall the npm and Python deps regardless of stamps
#
# On success it prints the paths it set up as KEY=VALUE lines on stdout (also written
# to .test-deps/paths.env, which a shell can `source`). The npm bins start with
# `#!/usr/bin/env node`; the conformance suite needs Node 22, so run them with
# GIGMCP_TEST_NODE_BIN_DIR first on PATH (or as `$GIGMCP_TEST_NODE $GIGMCP_TEST_CONFORMANCE`).

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS_DIR="$REPO_ROOT/tests/deps"
STATE_DIR="$REPO_ROOT/.test-deps"
VENV_DIR="$STATE_DIR/venv"
NODE_MODULES="$DEPS_DIR/node_modules"
NPM_STAMP="$NODE_MODULES/.gigmcp-deps.sha256"
VENV_STAMP="$VENV_DIR/.gigmcp-deps.sha256"
FORCE="${TEST_DEPS_FORCE:-0}"

log() { printf '[test-deps] %s\n' "$*" >&2; }
die() { printf '[test-deps] ERROR: %s\n' "$*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
export npm_config_yes=true npm_config_update_notifier=false
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

mkdir -p "$STATE_DIR"
# One installer at a time (parallel test jobs may all call this script).
exec 9>"$STATE_DIR/.lock"
flock 9

# sha256 over the contents of the given files (order matters) plus any extra strings.
manifest_hash() {
    {
        for f in "$@"; do
            if [[ -f "$f" ]]; then
                printf 'file %s\n' "$(basename "$f")"
                sha256sum <"$f"
            else
                printf 'value %s\n' "$f"
            fi
        done
    } | sha256sum | cut -d' ' -f1
}

stamp_ok() { # stamp-file expected-hash
    [[ "$FORCE" != 1 && -f "$1" && "$(cat "$1")" == "$2" ]]
}

# ---------------------------------------------------------------- apt packages
have_cmd() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]; }

missing=()
for cmd in bwrap ip iptables nft nsenter ps kill curl mkfs.ext4 losetup; do
    have_cmd "$cmd" || missing+=("$cmd")
done
# The escape-suite probe runs on the system's Python inside the jail (only /usr is visible there).
[[ -x /usr/bin/python3 ]] || missing+=("/usr/bin/python3")
# PyPI servers are installed into a venv of the system Python (Debian splits ensurepip into python3-venv).
[[ -x /usr/bin/python3 ]] && ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null && missing+=("python3-venv")
# The dashboard's browser tests drive Debian's chromium (Playwright cannot download browsers here).
[[ -x /usr/bin/chromium ]] || missing+=("chromium")
# The catalog's reference hashes: Go's encoding/json over YAML read by PyYAML (host/catalog/tests/fixtures.rs).
have_cmd go || missing+=("golang-go")
# Static-binary catalog entries are pulled from an OCI registry of the tests' own.
[[ -x /usr/bin/docker-registry ]] || missing+=("docker-registry")
[[ -x /usr/bin/python3 ]] && ! /usr/bin/python3 -c 'import yaml' 2>/dev/null && missing+=("python3-yaml")
if ((${#missing[@]})); then
    log "missing commands: ${missing[*]}; installing Debian packages"
    if [[ "$(id -u)" != 0 ]]; then
        die "need root to apt-get install bubblewrap iproute2 iptables nftables util-linux e2fsprogs mount procps python3 python3-venv python3-yaml curl chromium golang-go docker-registry"
    fi
    # Installer chatter goes to stderr: stdout carries only the KEY=VALUE summary.
    apt-get update >&2
    apt-get install -y bubblewrap iproute2 iptables nftables util-linux e2fsprogs mount procps python3 python3-venv \
        python3-yaml curl ca-certificates chromium golang-go docker-registry >&2
    for cmd in bwrap ip iptables nft nsenter ps kill curl mkfs.ext4 losetup; do
        have_cmd "$cmd" || die "'$cmd' still missing after apt-get install"
    done
else
    log "apt: bwrap ip iptables nft nsenter python3 chromium go present"
fi

# ---------------------------------------------------------------- npm packages
command -v npm >/dev/null 2>&1 || die "npm not found (Node.js >= 20 with npm is required)"

check_node22() {
    local v
    v="$("$NODE_MODULES/.bin/node" --version 2>/dev/null)" || return 1
    [[ "$v" == v22.* ]] || return 1
    printf '%s' "$v"
}

if [[ ! -f "$DEPS_DIR/package-lock.json" ]]; then
    log "npm: no package-lock.json; generating it from package.json"
    (cd "$DEPS_DIR" && npm install --package-lock-only --no-audit --no-fund) >&2
fi

npm_hash="$(manifest_hash "$DEPS_DIR/package.json" "$DEPS_DIR/package-lock.json")"
if stamp_ok "$NPM_STAMP" "$npm_hash" && check_node22 >/dev/null; then
    log "npm: up to date ($NODE_MODULES)"
else
    log "npm: installing with npm ci into $NODE_MODULES"
    (cd "$DEPS_DIR" && npm ci --no-audit --no-fund) >&2
    node_version="$(check_node22)" ||
        die "tests/deps/node_modules/.bin/node does not run or is not Node 22 (the 'node' package's install script must run)"
    log "npm: Node binary $node_version"
    printf '%s' "$npm_hash" >"$NPM_STAMP"
fi

# ---------------------------------------------------------------- Python venv
if [[ -z "${PYTHON:-}" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "Python interpreter '$PYTHON' not found"
py_version="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    die "Python >= 3.10 required (found $py_version from '$PYTHON')"

venv_hash="$(manifest_hash "$DEPS_DIR/requirements.txt" "python-$py_version")"
if stamp_ok "$VENV_STAMP" "$venv_hash" && "$VENV_DIR/bin/python" -c 'import mcp' >/dev/null 2>&1; then
    log "python: up to date ($VENV_DIR)"
else
    log "python: creating $VENV_DIR (Python $py_version) and installing tests/deps/requirements.txt"
    rm -rf "$VENV_DIR"
    "$PYTHON" -m venv "$VENV_DIR" >&2
    "$VENV_DIR/bin/python" -m pip install --quiet -r "$DEPS_DIR/requirements.txt" >&2
    "$VENV_DIR/bin/python" -c 'import mcp, mcp_server_time, schemathesis' || die "venv check failed: cannot import mcp"
    printf '%s' "$venv_hash" >"$VENV_STAMP"
fi

# ---------------------------------------------------------------- summary
paths="GIGMCP_TEST_NODE_MODULES=$NODE_MODULES
GIGMCP_TEST_NODE=$NODE_MODULES/.bin/node
GIGMCP_TEST_NODE_BIN_DIR=$NODE_MODULES/.bin
GIGMCP_TEST_SERVER_EVERYTHING=$NODE_MODULES/@modelcontextprotocol/server-everything/dist/index.js
GIGMCP_TEST_SUPERGATEWAY=$NODE_MODULES/.bin/supergateway
GIGMCP_TEST_CONFORMANCE=$NODE_MODULES/.bin/conformance
GIGMCP_TEST_VENV=$VENV_DIR
GIGMCP_TEST_PYTHON=$VENV_DIR/bin/python
GIGMCP_TEST_MCP_SERVER_TIME=$VENV_DIR/bin/mcp-server-time
GIGMCP_TEST_SCHEMATHESIS=$VENV_DIR/bin/schemathesis
GIGMCP_TEST_OIDC_PROVIDER=$NODE_MODULES/oidc-provider
GIGMCP_TEST_CLIENTS=$REPO_ROOT/tests/clients
GIGMCP_TEST_BWRAP=$(command -v bwrap || echo /usr/bin/bwrap)"
printf '%s\n' "$paths" >"$STATE_DIR/paths.env.tmp" && mv "$STATE_DIR/paths.env.tmp" "$STATE_DIR/paths.env"
printf '%s\n' "$paths"
log "done"
