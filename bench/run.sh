#!/usr/bin/env bash
# Runs the benchmark behind `make bench` and writes BENCHMARKS.md at the repository's root: tools/call latency
# and throughput (Gig'MCP, its floors, supergateway), then the sandbox's cold start against bare bubblewrap and
# its memory per idle sandbox. The sandbox part runs a second gateway, so it needs what `gigmcp serve` needs
# (root or CAP_NET_ADMIN, cgroups, bubblewrap, nft).
#
# Expects release builds of gigmcp and gigmcp-bench (`cargo build --release -p gigmcp -p gigmcp-bench`)
# and the test dependencies (`scripts/test-deps.sh`: supergateway and Node 22 in tests/deps/node_modules).
# Extra arguments go to `gigmcp-bench run` (`bench/run.sh --help` lists them), e.g.
#   bench/run.sh --levels 1,64 --targets floor2,gigmcp --out /tmp/b.md
#   bench/run.sh --parts sandbox --cold-starts 20 --out /tmp/b.md
#
# Exits non-zero if a reply failed its check, a sandbox start failed, or a target could not be set up; a
# missed speed target is only reported (in BENCHMARKS.md and on stdout).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH="$TARGET_DIR/release/gigmcp-bench"
GIGMCP="$TARGET_DIR/release/gigmcp"
NODE_BIN="$ROOT/tests/deps/node_modules/.bin"

for f in "$BENCH" "$GIGMCP"; do
    [[ -x "$f" ]] || { echo "bench/run.sh: $f missing: cargo build --release -p gigmcp -p gigmcp-bench" >&2; exit 2; }
done
[[ -x "$NODE_BIN/supergateway" ]] || { echo "bench/run.sh: supergateway missing: scripts/test-deps.sh" >&2; exit 2; }

# supergateway's bin starts with `#!/usr/bin/env node` and wants the pinned Node 22.
export PATH="$NODE_BIN:$PATH"

if [[ "${1:-}" == "--help" ]]; then
    exec "$BENCH" run --help
fi
exec "$BENCH" run \
    --gigmcp "$GIGMCP" \
    --supergateway "$NODE_BIN/supergateway" \
    "$@"
