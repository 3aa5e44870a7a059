#!/usr/bin/env python3
"""Checks that `make run`'s build of gigmcp is already done by `make test`'s build of the workspace.

Run after `cargo build --workspace --tests` (as `make test` does): `cargo build -p gigmcp` (what `make run`
builds) must then find every crate fresh. A crate it compiles again was resolved with other features in the
two builds (a dev-dependency turning on a feature, say), and every crate above it would be rebuilt each time
a user switches between `make run` and `make test`. Exits non-zero naming those crates.
"""

import json
import os
import subprocess
import sys

cargo = os.environ.get("CARGO", "cargo")
out = subprocess.run(
    [cargo, "build", "--locked", "-p", "gigmcp", "--message-format=json"],
    stdout=subprocess.PIPE,
    check=True,
    text=True,
)
rebuilt = []
for line in out.stdout.splitlines():
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        continue
    if message.get("reason") == "compiler-artifact" and not message.get("fresh", True):
        rebuilt.append(message["target"]["name"])
if rebuilt:
    print(
        "one-build: `cargo build -p gigmcp` (make run) rebuilt what the workspace build (make test) had built: "
        + ", ".join(rebuilt)
        + ". Their features differ between the two builds; give them the same (see the tokio line in Cargo.toml).",
        file=sys.stderr,
    )
    sys.exit(1)
print("one-build: make run reuses make test's build")
