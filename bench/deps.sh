#!/usr/bin/env bash
# Installs what `make bench` needs besides the test dependencies: mitmproxy (bench/requirements.txt, pinned)
# in .bench-deps/venv. Idempotent: a stamp holds the requirements' hash.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.bench-deps/venv"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum <"$ROOT/bench/requirements.txt" | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/mitmdump" ]]; then
    exit 0
fi
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install --quiet -r "$ROOT/bench/requirements.txt"
"$VENV/bin/mitmdump" --version >/dev/null
printf '%s' "$want" >"$STAMP"
