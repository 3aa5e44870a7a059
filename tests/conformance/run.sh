#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in tests/deps), server mode,
# every active scenario, run twice:
#
#   1. directly against tests/conformance/fixture_server.mjs (a streamable-HTTP MCP server with everything
#      the scenarios ask for);
#   2. through Gig'MCP: the fixture added with `server add fixture --url ... --prefix ''` to profile `conf`,
#      a real `gigmcp serve`, and tests/conformance/auth_forwarder.mjs in front of the profile endpoint
#      adding the profile's bearer token (the suite's client sends no Authorization header).
#
# Exits 0 only if every scenario that passed directly also passed through the gateway; prints both lists and
# `conformance: N passed directly, M of them through the gateway`.
#
# Needs the test dependencies (scripts/test-deps.sh) and a built gigmcp.
#
# Environment:
#   GIGMCP_BIN              the gateway binary (default: target/debug/gigmcp)
#   CONFORMANCE_SCENARIOS   space-separated scenarios to run instead of the whole active suite
#   CONFORMANCE_WORK_DIR    where logs and results go (default: a new temporary directory, removed on
#                           success and kept, with its path printed, on failure)
#   CONFORMANCE_KEEP=1      keep the work directory even on success
#   CONFORMANCE_SCENARIO_TIMEOUT  seconds one scenario may take (default 90)
#
# Every process it starts is stopped on exit; every step has a time limit.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO_ROOT/tests/conformance"
NODE_BIN_DIR="$REPO_ROOT/tests/deps/node_modules/.bin"
GIGMCP_BIN="${GIGMCP_BIN:-$REPO_ROOT/target/debug/gigmcp}"

# seconds for one scenario run (the SDK's request timeout is 60 s)
SCENARIO_TIMEOUT="${CONFORMANCE_SCENARIO_TIMEOUT:-90}"
SUITE_TIMEOUT=300        # seconds for the whole suite against the fixture
GATEWAY_BUDGET=900       # seconds for all scenarios through the gateway together
START_TIMEOUT=30         # seconds for a server to start listening
CLI_TIMEOUT=60           # seconds for one gigmcp CLI command

log() { printf '[conformance] %s\n' "$*" >&2; }
die() { printf '[conformance] ERROR: %s\n' "$*" >&2; exit 2; }

# ------------------------------------------------------------------------------------------ prerequisites
[[ -x "$NODE_BIN_DIR/node" && -x "$NODE_BIN_DIR/conformance" ]] ||
    die "tests/deps/node_modules is missing the Node binary or the conformance suite: run scripts/test-deps.sh"
[[ -x "$GIGMCP_BIN" ]] || die "gigmcp binary not found at $GIGMCP_BIN (cargo build, or set GIGMCP_BIN)"
# The suite's bin starts with `#!/usr/bin/env node` and needs Node 22: put the pinned one first.
export PATH="$NODE_BIN_DIR:$PATH"
NODE="$NODE_BIN_DIR/node"
node_version="$("$NODE" --version)"
[[ "$node_version" == v22.* ]] || die "tests/deps Node is $node_version, expected v22"

if [[ -n "${CONFORMANCE_WORK_DIR:-}" ]]; then
    WORK="$CONFORMANCE_WORK_DIR"
    mkdir -p "$WORK"
    KEEP_WORK=1
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/gigmcp-conformance.XXXXXX")"
    KEEP_WORK="${CONFORMANCE_KEEP:-0}"
fi
mkdir -p "$WORK/direct-results" "$WORK/gateway-results" "$WORK/gateway-runs"

# ------------------------------------------------------------------------------------------ processes
PIDS=()
SUCCESS=0

# Is PID still a child of this script? (A pid that ended may since name someone else's process.)
# shellcheck disable=SC2317 # called from the EXIT trap
our_child() { [[ "$(ps -o ppid= -p "$1" 2>/dev/null | tr -d ' ')" == "$$" ]]; }

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${PIDS[@]}"; do
        if our_child "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for pid in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            our_child "$pid" || break
            sleep 0.2
        done
        if our_child "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        wait "$pid" 2>/dev/null || true
    done
    if [[ "$SUCCESS" == 1 && "$KEEP_WORK" != 1 ]]; then
        rm -rf "$WORK"
    else
        log "logs and results kept in $WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# bounded SECS OUT ERR COMMAND...: runs COMMAND with a time limit, in the background, and waits for it, so
# a signal to this script is handled at once (bash runs traps only between foreground commands). OUT is a
# file for its stdout (`-`: this script's); ERR a file its stderr is appended to (`-`: this script's;
# `&1`: with its stdout). The redirections are the command's own: were they on the call, the cleanup
# trap, which may run inside it, would inherit them. Returns the command's status (124 on timeout).
bounded() {
    local secs="$1" out="$2" err="$3"
    shift 3
    (
        if [[ "$out" != - ]]; then exec >"$out"; fi
        if [[ "$err" == '&1' ]]; then exec 2>&1; elif [[ "$err" != - ]]; then exec 2>>"$err"; fi
        exec timeout --kill-after=5 "$secs" "$@"
    ) &
    local pid=$!
    PIDS+=("$pid")
    local status=0
    wait "$pid" || status=$?
    PIDS=("${PIDS[@]:0:${#PIDS[@]}-1}") # it has ended: never signal that pid again
    return "$status"
}

# Waits until FILE has a line `listening on http://ADDRESS` and prints ADDRESS (host:port, any path kept).
wait_listening() {
    local file="$1" pid="$2" what="$3" deadline=$((SECONDS + START_TIMEOUT)) address
    while ((SECONDS < deadline)); do
        address="$(sed -n 's#.*listening on http://\([^ ]*\).*#\1#p' "$file" 2>/dev/null | head -n1)"
        if [[ -n "$address" ]]; then
            printf '%s' "$address"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { log "$what exited before listening:"; cat "$file" >&2; return 1; }
        sleep 0.1
    done
    log "$what did not start listening within ${START_TIMEOUT}s:"
    cat "$file" >&2
    return 1
}

start_time=$SECONDS

# ------------------------------------------------------------------------------------------ the fixture
# Every server listens on port 0 and reports the port it got: no port is guessed, none can be taken.
"$NODE" "$HERE/fixture_server.mjs" 0 >"$WORK/fixture.out" 2>"$WORK/fixture.err" &
FIXTURE_PID=$!
PIDS+=("$FIXTURE_PID")
FIXTURE_URL="http://$(wait_listening "$WORK/fixture.out" "$FIXTURE_PID" fixture)" || die "fixture did not start"
log "fixture at $FIXTURE_URL"

# ------------------------------------------------------------------------------------------ 1. directly
if [[ -n "${CONFORMANCE_SCENARIOS:-}" ]]; then
    read -r -a SCENARIOS <<<"$CONFORMANCE_SCENARIOS"
else
    SCENARIOS=()
fi

declare -A DIRECT=() VIA=()
if ((${#SCENARIOS[@]})); then
    log "running ${#SCENARIOS[@]} chosen scenarios directly against the fixture"
    # A chosen subset: one run per scenario, its exit status is its verdict.
    for s in "${SCENARIOS[@]}"; do
        if bounded "$SCENARIO_TIMEOUT" "$WORK/direct-$s.txt" '&1' \
            conformance server --url "$FIXTURE_URL" --scenario "$s" -o "$WORK/direct-results"; then
            DIRECT[$s]=pass
        else
            DIRECT[$s]=fail
        fi
    done
else
    log "running the active suite directly against the fixture"
    status=0
    bounded "$SUITE_TIMEOUT" "$WORK/direct.txt" '&1' \
        conformance server --url "$FIXTURE_URL" -o "$WORK/direct-results" || status=$?
    ((status != 124)) || die "the suite against the fixture did not finish within ${SUITE_TIMEOUT}s (see $WORK/direct.txt)"
    # The suite names each scenario as it starts it and ends with a summary line per scenario:
    # `✓ <name>: N passed, M failed` or `✗ <name>: ...`.
    mapfile -t SCENARIOS < <(sed -n 's/^=== Running scenario: \(.*\) ===$/\1/p' "$WORK/direct.txt")
    ((${#SCENARIOS[@]})) || die "the suite ran no scenario against the fixture (see $WORK/direct.txt)"
    for s in "${SCENARIOS[@]}"; do
        if grep -q "^✓ $s: [0-9]* passed, 0 failed$" "$WORK/direct.txt"; then
            DIRECT[$s]=pass
        else
            DIRECT[$s]=fail
        fi
    done
fi

# ------------------------------------------------------------------------------------------ 2. the gateway
export GIG_DATA_DIR="$WORK/gig-data"
mkdir -p "$GIG_DATA_DIR"
# Sandbox settings of this run's own, unless given: a gateway sets up host-wide network state for its
# sandboxes (interfaces, addresses, firewall tables, uids), and other gateways (parallel tests) may be
# running. The CLI and `serve` both get them. The fixture is an HTTP upstream and needs no sandbox; a
# gateway that does not know these variables ignores them.
b36() { local v=$1 d=0123456789abcdefghijklmnopqrstuvwxyz s=; for _ in 1 2 3; do s+=${d:v%36:1}; v=$((v / 36)); done; printf '%s' "$s"; }
export GIG_INSTANCE="${GIG_INSTANCE:-c$(b36 $(($$ % 46656)))}"
export GIG_SANDBOX_CIDR="${GIG_SANDBOX_CIDR:-10.$((200 + $$ % 50)).$(($$ / 50 % 256)).0/24}"
export GIG_SANDBOX_UID_BASE="${GIG_SANDBOX_UID_BASE:-$((20000000 + $$ % 1000 * 1000))}"
export GIG_MAX_SANDBOXES="${GIG_MAX_SANDBOXES:-8}"
# gig OUT ARGS...: the CLI against this run's database; its stdout to OUT (`-`: captured by the caller),
# its stderr to cli.log.
gig() {
    local out="$1"
    shift
    printf '$ gigmcp %s\n' "$*" >>"$WORK/cli.log"
    bounded "$CLI_TIMEOUT" "$out" "$WORK/cli.log" "$GIGMCP_BIN" "$@"
}

profile_out="$(gig - profile create conf)" || die "gigmcp profile create failed (see $WORK/cli.log)"
TOKEN="$(grep -o 'gig_[A-Za-z0-9_-]*' <<<"$profile_out" | head -n1 || true)"
[[ -n "$TOKEN" ]] || die "no token in the output of 'gigmcp profile create conf'"
gig "$WORK/cli.out" server add fixture --url "$FIXTURE_URL" --prefix '' ||
    die "gigmcp server add failed (see $WORK/cli.log)"
gig "$WORK/cli.out" profile add-server conf fixture || die "gigmcp profile add-server failed (see $WORK/cli.log)"

MASTER_KEY="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
GIG_MASTER_KEY="$MASTER_KEY" GIG_LISTEN=127.0.0.1:0 GIG_LOG="${GIG_LOG:-info,gigmcp=debug}" \
    "$GIGMCP_BIN" serve >"$WORK/gateway.out" 2>"$WORK/gateway.log" &
GATEWAY_PID=$!
PIDS+=("$GATEWAY_PID")
GATEWAY_ADDR="$(wait_listening "$WORK/gateway.log" "$GATEWAY_PID" "gigmcp serve")" || die "gigmcp serve did not start"
ENDPOINT="http://$GATEWAY_ADDR/mcp/p/conf"
log "gateway endpoint $ENDPOINT"

FORWARDER_TOKEN="$TOKEN" "$NODE" "$HERE/auth_forwarder.mjs" --port 0 --target "$ENDPOINT" \
    --log "$WORK/forwarder-exchange.log" >"$WORK/forwarder.out" 2>"$WORK/forwarder.err" &
FORWARDER_PID=$!
PIDS+=("$FORWARDER_PID")
FORWARDER_URL="http://$(wait_listening "$WORK/forwarder.out" "$FORWARDER_PID" forwarder)/mcp" ||
    die "the forwarder did not start"
log "forwarder at $FORWARDER_URL (adds the profile token, forwards to $ENDPOINT)"

# One run per scenario, so a scenario the gateway hangs on costs only its own time limit.
log "running ${#SCENARIOS[@]} scenarios through the gateway"
gateway_start=$SECONDS
for s in "${SCENARIOS[@]}"; do
    if ((SECONDS - gateway_start > GATEWAY_BUDGET)); then
        VIA[$s]="not run (the ${GATEWAY_BUDGET}s budget was spent)"
        continue
    fi
    printf '%s %s\n' "$(date -u +%FT%T.%3NZ)" "=== scenario $s" >>"$WORK/forwarder-exchange.log"
    status=0
    bounded "$SCENARIO_TIMEOUT" "$WORK/gateway-runs/$s.txt" '&1' \
        conformance server --url "$FORWARDER_URL" --scenario "$s" -o "$WORK/gateway-results" || status=$?
    case "$status" in
        0) VIA[$s]=pass ;;
        124 | 137) VIA[$s]="timed out after ${SCENARIO_TIMEOUT}s" ;;
        *) VIA[$s]=fail ;;
    esac
done

# ------------------------------------------------------------------------------------------ report
direct_pass=()
direct_fail=()
via_pass=()
regressions=()
for s in "${SCENARIOS[@]}"; do
    if [[ "${DIRECT[$s]}" == pass ]]; then
        direct_pass+=("$s")
        if [[ "${VIA[$s]}" == pass ]]; then via_pass+=("$s"); else regressions+=("$s"); fi
    else
        direct_fail+=("$s")
    fi
done

echo
echo "Passed directly against the fixture (${#direct_pass[@]} of ${#SCENARIOS[@]}):"
for s in "${direct_pass[@]}"; do echo "  $s"; done
if ((${#direct_fail[@]})); then
    echo "Failed directly (not compared; the fixture lacks something they need):"
    for s in "${direct_fail[@]}"; do echo "  $s"; done
fi
echo "Through the gateway:"
for s in "${SCENARIOS[@]}"; do printf '  %-32s %s\n' "$s" "${VIA[$s]}"; done
if ((${#regressions[@]})); then
    echo
    echo "Passed directly but not through the gateway:"
    for s in "${regressions[@]}"; do
        echo "--- $s: ${VIA[$s]}"
        # The suite's own account of the failed checks.
        sed -n '/^=== Failed Checks ===/,$p' "$WORK/gateway-runs/$s.txt" | grep -E '^\s+(- |Error:)' | head -n 20 || true
        grep -E '^(Failed|Server test error|Error)' "$WORK/gateway-runs/$s.txt" | head -n 5 || true
    done
fi
echo
echo "conformance: ${#direct_pass[@]} passed directly, ${#via_pass[@]} of them through the gateway ($((SECONDS - start_time))s)"

if ((${#direct_pass[@]} == 0)); then
    log "no scenario passed directly: the fixture or the suite is broken"
    exit 1
fi
if ((${#regressions[@]})); then
    log "gateway log: $WORK/gateway.log; HTTP exchange through the forwarder: $WORK/forwarder-exchange.log"
    exit 1
fi
SUCCESS=1
exit 0
