#!/usr/bin/env bash
# Appends the plugin-hook benchmark (`cargo bench -p gigmcp --bench plugin_hooks`, its output in $1) to
# BENCHMARKS.md ($2) as a section of its own: bench/run.sh writes the file anew, so this runs after it.
set -euo pipefail
output="$1"
file="$2"
{
    echo
    echo "## Plugin hooks"
    echo
    echo "Written by \`make bench\` ($(date -u '+%Y-%m-%d %H:%M UTC')) from \`cargo bench -p gigmcp --bench plugin_hooks\`"
    echo "(host/gigmcp/benches/plugin_hooks.rs): the default plugins called through the plugin host in a release build, one"
    echo "thread, against a native Rust implementation of the same policies in the same run. Each call is timed"
    echo "alone; warm-up excluded. *warm*: an egress decision on a pooled instance; *fresh*: the same for a tenant"
    echo "never seen (instantiate, init, call); *all hooks of one tool call*: mcp-filter request, egress decision,"
    echo "credential injection and mcp-filter response, as a tool call that makes one outbound request meets them."
    echo "Targets (issue #4): warm ≤ 3 µs p50, fresh ≤ 100 µs, all hooks of a request ≤ 20 µs p50."
    echo
    echo '```'
    cat "$output"
    echo '```'
} >>"$file"
