#!/usr/bin/env bash
# The demo catalog of `make run`: the fixture registry (tests/catalog/registry) built into an index signed by a
# key of the data directory's own, generated now (so always newer than the one the gateway accepted before).
# Prints the settings that point the gateway at it: GIG_REGISTRY_INDEX_URL=… GIG_REGISTRY_PUBKEY=…
# Usage: scripts/demo-catalog.sh <data dir> <gigmcp binary>
set -euo pipefail
data_dir=$1
gigmcp=$2
dir="$data_dir/demo-catalog"
mkdir -p "$dir"
key="$dir/signing.key"
[[ -f "$key" ]] || "$gigmcp" catalog keygen --out "$key" >/dev/null 2>&1
"$gigmcp" catalog build tests/catalog/registry --key-file "$key" --out "$dir" >/dev/null
echo "GIG_REGISTRY_INDEX_URL=file://$(cd "$dir" && pwd)/index.json GIG_REGISTRY_PUBKEY=$(cut -c65-128 "$key")"
