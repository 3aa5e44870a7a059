#!/usr/bin/env python3
"""Fails when a crate of the workspace has a module-level dependency cycle other than parent/child.

Usage: scripts/module-cycles.py [CRATE_SRC_DIR ...]   (default: every host/*/src of the workspace)

Each `.rs` file is a module (`a/mod.rs` and `a.rs` are `a`). An edge A -> B is drawn when A names a path into
B: `use crate::b::…`, `crate::b::…` in an expression, `super::…` and `self::…` resolved against A's place, and
names that A's `use super::{X}` finds in the parent through a `use`/`pub use` of the parent (a re-export points
at the module that defines the name). Every edge is lifted to the children of the two ends' lowest common
ancestor, so at each level of the module tree the siblings must form a DAG (`a::x -> b::y` and `b::z -> a::w`
is the cycle `a <-> b`). Test code (`#[cfg(test)]` modules) is left out, as are edges between a
module and its own ancestors or descendants: a parent that uses its child and a child that uses its parent are
Rust's ordinary shape. What is left must be acyclic; each cycle found is printed with one file:line per edge.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

USE_RE = re.compile(r"\buse\s+([^;]+);", re.S)
PATH_RE = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def strip_comments_and_tests(text: str) -> str:
    """Removes comments, string literals and `#[cfg(test)]` items (a `mod` block or a single item)."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out = []
    i = 0
    while True:
        j = text.find("#[cfg(test)]", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        # Skip the attributed item: up to the end of its first brace block, or its first `;`.
        k = j + len("#[cfg(test)]")
        depth = 0
        while k < len(text):
            c = text[k]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    k += 1
                    break
            elif c == ";" and depth == 0:
                k += 1
                break
            k += 1
        i = k
    return "".join(out)


def module_of(src: Path, file: Path) -> tuple[str, ...]:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand_use(tree: str) -> list[tuple[str, str]]:
    results: list[tuple[str, str]] = []

    def walk(prefix: str, t: str) -> None:
        t = t.strip()
        if not t:
            return
        brace = t.find("{")
        if brace >= 0 and t.endswith("}"):
            head = t[:brace].strip().rstrip(":").strip()
            inner = t[brace + 1 : -1]
            base = "::".join(x for x in (prefix, head) if x)
            depth = 0
            start = 0
            for idx, c in enumerate(inner):
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                elif c == "," and depth == 0:
                    walk(base, inner[start:idx])
                    start = idx + 1
            walk(base, inner[start:])
            return
        alias = None
        m = re.match(r"^(.*?)\s+as\s+([A-Za-z_][A-Za-z0-9_]*)$", t)
        if m:
            t, alias = m.group(1).strip(), m.group(2)
        t = re.sub(r"\s+", "", t)
        full = "::".join(x for x in (prefix, t) if x)
        if full.endswith("::self"):
            full = full[: -len("::self")]
        results.append((full, alias or full.rsplit("::", 1)[-1]))

    walk("", tree)
    return results


class Crate:
    def __init__(self, src: Path):
        self.src = src
        self.files: dict[tuple[str, ...], Path] = {}
        self.text: dict[tuple[str, ...], str] = {}
        for root, _, names in os.walk(src):
            for n in names:
                if n.endswith(".rs"):
                    f = Path(root) / n
                    mod = module_of(src, f)
                    if f.name in ("main.rs",) and f.parent != src:
                        continue
                    self.files[mod] = f
                    self.text[mod] = strip_comments_and_tests(f.read_text())
        # name -> path each module binds with `use` (resolved later).
        self.bindings: dict[tuple[str, ...], dict[str, str]] = {}
        for mod, text in self.text.items():
            names: dict[str, str] = {}
            for m in USE_RE.finditer(text):
                for full, alias in expand_use(m.group(1)):
                    names[alias] = full
            self.bindings[mod] = names

    def resolve(self, mod: tuple[str, ...], path: str, depth: int = 0) -> tuple[str, ...] | None:
        """The deepest existing module that `path`, written in `mod`, leads into."""
        parts = path.split("::")
        here: list[str]
        if parts[0] == "crate":
            here, rest = [], parts[1:]
        elif parts[0] in ("super", "self"):
            here = list(mod)
            rest = parts
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    here = here[:-1]
                rest = rest[1:]
        else:
            return None
        target = tuple(here)
        for p in rest:
            candidate = target + (p,)
            if candidate in self.files:
                target = candidate
                continue
            # A name bound by a `use` in the module we reached: follow it once or twice.
            bound = self.bindings.get(target, {}).get(p)
            if bound and depth < 4:
                first = bound.split("::")[0]
                if first in ("crate", "super", "self"):
                    followed = self.resolve(target, bound, depth + 1)
                    if followed is not None:
                        return followed
                elif (target + (first,)) in self.files:
                    followed = self.resolve(target, "self::" + bound, depth + 1)
                    if followed is not None:
                        return followed
            break
        return target

    def edges(self) -> dict[tuple[tuple[str, ...], tuple[str, ...]], str]:
        found: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
        raw_lines = {mod: f.read_text().splitlines() for mod, f in self.files.items()}
        for mod, text in self.text.items():
            paths: list[str] = []
            for m in USE_RE.finditer(text):
                for full, _ in expand_use(m.group(1)):
                    paths.append(full)
                    # `use child::X` inside mod.rs: a path relative to this module.
                    head = full.split("::")[0]
                    if head not in ("crate", "super", "self") and (mod + (head,)) in self.files:
                        paths.append("self::" + full)
            paths.extend(PATH_RE.findall(text))
            for p in paths:
                target = self.resolve(mod, p)
                if target is None or target == mod:
                    continue
                if is_prefix(target, mod) or is_prefix(mod, target):
                    continue
                key = (mod, target)
                if key not in found:
                    found[key] = f"{self.files[mod]}:{line_of(raw_lines[mod], p)}"
        return found


def is_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return len(a) <= len(b) and b[: len(a)] == a


def line_of(lines: list[str], path: str) -> int:
    last = path.split("::")[-1]
    first = path.split("::")[1] if "::" in path else path
    for i, line in enumerate(lines, 1):
        if first in line and last in line and not line.strip().startswith("//"):
            return i
    for i, line in enumerate(lines, 1):
        if last in line:
            return i
    return 1


def cycles(nodes, edges) -> list[list[tuple[str, ...]]]:
    graph: dict = {n: [] for n in nodes}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index = {}
    low = {}
    stack: list = []
    on = set()
    out = []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def name(mod: tuple[str, ...]) -> str:
    return "::".join(mod) or "crate"


def siblings(edges: dict) -> dict:
    """Each edge lifted to the two children of the modules' lowest common ancestor that contain its ends, so a
    cycle among `a::x -> b::y -> a::z` shows as `a <-> b`: at every level of the tree, siblings form a DAG."""
    lifted: dict = {}
    for (a, b), where in edges.items():
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        key = (a[: n + 1], b[: n + 1])
        lifted.setdefault(key, where)
    return lifted


def check(src: Path) -> bool:
    crate = Crate(src)
    edges = siblings(crate.edges())
    bad = cycles({m for e in edges for m in e}, edges)
    for comp in bad:
        members = set(comp)
        print(f"{src}: module cycle: {', '.join(name(m) for m in comp)}")
        for (a, b), where in sorted(edges.items()):
            if a in members and b in members:
                print(f"  {name(a)} -> {name(b)}  ({where})")
    return not bad


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    dirs = [Path(a) for a in sys.argv[1:]] or sorted(p for p in (root / "host").glob("*/src") if p.is_dir())
    ok = True
    for d in dirs:
        ok &= check(d)
    if ok:
        print(f"module-cycles: {len(dirs)} crates, no module cycle beyond parent/child")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
