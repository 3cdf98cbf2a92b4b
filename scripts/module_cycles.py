#!/usr/bin/env python3
"""Fails when the modules inside a Rust crate, or the modules of the Python package, import each other in a cycle.

A module's edges are the sibling modules it names: `crate::name` paths in Rust (`super::name` from a nested
module's file), `from .name` / `from ..name` imports in Python. Test modules (`#[cfg(test)]` blocks, `tests/`)
are not part of the graph. Usage: scripts/module_cycles.py [ROOT]; prints each cycle and exits 1 if any.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RUST_PATH = re.compile(r"\bcrate::(\{[^}]*\}|[a-z_][a-z0-9_]*)")
PYTHON_IMPORT = re.compile(r"^\s*from\s+(\.+)([a-zA-Z_][\w.]*)?\s+import\s+(.+)$", re.MULTILINE)


def strip_rust_tests_and_comments(text: str) -> str:
    """Drops line comments and `#[cfg(test)] mod ... { ... }` blocks (brace-matched)."""
    text = re.sub(r"//[^\n]*", "", text)
    out, index = [], 0
    for match in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if match.start() < index:
            continue
        out.append(text[index : match.start()])
        depth, position = 1, match.end()
        while depth and position < len(text):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            position += 1
        index = position
    out.append(text[index:])
    return "".join(out)


def rust_module_of(src: Path, file: Path) -> str:
    """The top-level module a file belongs to: `transport/link.rs` and `transport.rs` are both `transport`."""
    relative = file.relative_to(src)
    return relative.parts[0].removesuffix(".rs")


def rust_graph(src: Path) -> dict[str, set[str]]:
    modules = {path.name.removesuffix(".rs") for path in src.iterdir() if path.suffix == ".rs" or path.is_dir()}
    modules -= {"lib", "main"}
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for file in src.rglob("*.rs"):
        module = rust_module_of(src, file)
        if module in {"lib", "main"}:
            continue
        for match in RUST_PATH.finditer(strip_rust_tests_and_comments(file.read_text())):
            names = match.group(1).strip("{}")
            for name in re.split(r"\s*,\s*", names):
                target = name.split("::")[0].strip()
                if target in modules and target != module:
                    graph[module].add(target)
    return graph


def python_graph(package: Path) -> dict[str, set[str]]:
    """Edges between the package's modules (a subpackage's modules count as themselves)."""
    modules = {
        ".".join(path.relative_to(package).with_suffix("").parts)
        for path in package.rglob("*.py")
        if path.name != "__init__.py"
    }
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module in modules:
        file = package / (module.replace(".", "/") + ".py")
        text = re.sub(r"^if TYPE_CHECKING:\n(?:[ \t]+[^\n]*\n)+", "", file.read_text(), flags=re.MULTILINE)
        base = module.split(".")[:-1]
        for dots, name, imported in PYTHON_IMPORT.findall(text):
            parent = base[: len(base) - (len(dots) - 1)] if len(dots) > 1 else base
            stem = parent + (name.split(".") if name else [])
            candidates = [".".join(stem)]
            if not name:
                candidates = [".".join(stem + [item.strip(" ()").split(" as ")[0]]) for item in imported.split(",")]
            for target in candidates:
                if target in modules and target != module:
                    graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    graphs = {f"crate {src.parent.name}": rust_graph(src) for src in sorted(root.glob("crates/*/src"))}
    graphs["package skytale_sdk"] = python_graph(root / "python" / "skytale_sdk")
    failed = False
    for owner, graph in graphs.items():
        for component in cycles(graph):
            failed = True
            edges = ", ".join(f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component)
            print(f"module cycle in {owner}: {' <-> '.join(component)} ({edges})")
    if not failed:
        print(f"no module cycles in {len(graphs)} crates and packages")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
