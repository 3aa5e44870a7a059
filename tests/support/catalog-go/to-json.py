"""Reads a registry directory with PyYAML (a YAML 1.1 reader, as the Go registry's) and writes the input
of main.go: {"generated": ..., "manifests": [...], "toolspecs": [...]}."""

import json
import pathlib
import sys

import yaml

root = pathlib.Path(sys.argv[1]) / "manifests"
out = {"generated": sys.argv[2], "manifests": [], "toolspecs": []}
for path in sorted(root.glob("*/*.yaml")):
    kind = "toolspecs" if path.name.endswith(".toolspec.yaml") else "manifests"
    out[kind].append(yaml.safe_load(path.read_text()))
json.dump(out, sys.stdout)
