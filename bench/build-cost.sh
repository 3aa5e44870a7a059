#!/usr/bin/env bash
# The build cost of the crate layout: how long `cargo test --workspace --no-run` takes after a one-line change
# in the MCP session code (a log message in host/mcp/src/session/mod.rs), three times, on a warm target
# directory. Prints a Markdown section for BENCHMARKS.md beside the baseline measured on the one-crate layout
# (bench/build-cost-baseline.md). The file is restored on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
file=host/mcp/src/session/mod.rs
line=$(grep -n 'logging/setLevel failed' "$file" | head -1 | cut -d: -f1)
[[ -n "$line" ]] || { echo "bench/build-cost.sh: the log line to change is gone from $file" >&2; exit 2; }
backup=$(mktemp)
cp -p "$file" "$backup"
trap 'cp -p "$backup" "$file"; rm -f "$backup"' EXIT
cargo test --locked --workspace --no-run >/dev/null 2>&1
runs=()
for i in 1 2 3; do
    sed -i "${line}s|logging/setLevel failed[^:]*:|logging/setLevel failed (build-cost $i):|" "$file"
    start=$(date +%s%N)
    cargo test --locked --workspace --no-run >/dev/null 2>&1
    end=$(date +%s%N)
    runs+=("$(( (end - start) / 10000000 ))")
done
sorted=($(printf '%s\n' "${runs[@]}" | sort -n))
fmt() { printf '%d.%02d' "$(( $1 / 100 ))" "$(( $1 % 100 ))"; }
echo
cat bench/build-cost-baseline.md
echo
echo "Re-measured by \`make bench\` ($(date -u '+%Y-%m-%d %H:%M UTC'), \`bench/build-cost.sh\`): the one-line change in"
echo "\`host/mcp/src/session/mod.rs\`, then \`cargo test --workspace --no-run\`, three times: $(fmt "${runs[0]}") s,"
echo "$(fmt "${runs[1]}") s, $(fmt "${runs[2]}") s (median **$(fmt "${sorted[1]}") s**; the one-crate layout's median was 14.03 s, so"
echo "$(( sorted[1] * 100 / 1403 )) % of it; target ≤ 40 %)."
