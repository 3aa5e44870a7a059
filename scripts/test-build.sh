#!/usr/bin/env bash
# `make test`'s build. What the tests need installed (scripts/test-deps.sh: Debian packages, the pinned npm and
# Python peers) and the dashboard's build (scripts/web.sh --check) are made while the workspace compiles: the
# first waits mostly on downloads, the second on the CPU, so on a fresh machine they overlap instead of adding up.
#
# The first `cargo build` may embed no dashboard, or a partial one (host/dashboard/build.rs reads web/dist while
# Vite writes it); Cargo watches web/dist, so the second build, run once the dashboard is built, embeds the
# finished one (only the dashboard crate and the crates above it are rebuilt, and nothing when it was complete).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO="${CARGO:-cargo}"
cd "$ROOT"

log="$(mktemp /tmp/gigmcp-test-build.XXXXXX)"
trap 'rm -f "$log"' EXIT
{ scripts/test-deps.sh >/dev/null && scripts/web.sh --check; } >"$log" 2>&1 &
prepare=$!

built=0
"$CARGO" build --locked --workspace --tests || built=$?
prepared=0
wait "$prepare" || prepared=$?
sed 's/^/[test-deps, web] /' "$log" >&2
if ((prepared)); then
    printf '[test-build] ERROR: installing the test dependencies or building the dashboard failed (above)\n' >&2
    exit "$prepared"
fi
((built == 0)) || exit "$built"
"$CARGO" build --locked --workspace --tests
