#!/usr/bin/env python3
"""Fails when a crate of host/ depends on a crate of its own layer or above (docs/DESIGN.md, "The crates of
`host/`"). Reads `cargo metadata --no-deps`, so it checks what Cargo builds, dev-dependencies included (a unit
test is part of its crate)."""

import json
import subprocess
import sys

LAYERS = {
    "gigmcp-hostpattern": 0,
    "gigmcp-metrics": 0,
    "gigmcp-types": 1,
    "gigmcp-catalog": 2,
    "gigmcp-toolpack": 3,
    "gigmcp-default-plugins": 0,
    "gigmcp-dashboard": 0,
    "gigmcp-store": 2,
    "gigmcp-sandbox": 2,
    "gigmcp-plugin-runtime": 2,
    "gigmcp-plugins": 3,
    "gigmcp-audit": 3,
    "gigmcp-vault": 3,
    "gigmcp-mcp": 4,
    "gigmcp-egress": 4,
    "gigmcp-ops": 5,
    "gigmcp-oauth": 5,
    "gigmcp-control": 6,
    "gigmcp": 7,
}
# Test support and the benchmark sit outside the layers: they may use any crate, and no crate may use them.
OUTSIDE = {"gigmcp-testkit", "gigmcp-bench"}


def main() -> int:
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    ok = True
    names = {p["name"] for p in meta["packages"]}
    for name in sorted(names - set(LAYERS) - OUTSIDE):
        print(f"crate-layers: {name} has no layer; add it to scripts/crate-layers.py and docs/DESIGN.md")
        ok = False
    for package in meta["packages"]:
        name = package["name"]
        if name not in LAYERS:
            continue
        for dep in package["dependencies"]:
            target = dep["name"]
            if target in OUTSIDE and dep.get("kind") != "dev":
                print(f"crate-layers: {name} depends on {target}, which is for tests and benchmarks only")
                ok = False
            if target in LAYERS and LAYERS[target] >= LAYERS[name] and not (name == "gigmcp" and dep.get("kind") == "dev"):
                print(
                    f"crate-layers: {name} (layer {LAYERS[name]}) depends on {target} (layer {LAYERS[target]}): "
                    "a crate may depend only on lower layers"
                )
                ok = False
    if ok:
        print(f"crate-layers: {len(LAYERS)} crates, every dependency points to a lower layer")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
