"""Count and print the import cycles among the modules of src/ganarena.

Every `import` / `from ... import` is an edge, at module level and inside functions alike (a
function-level import still ties the two modules together). A cycle is a strongly connected
component of more than one module (or a module importing itself); each is printed with one
concrete cycle through it. Exit status 1 when there is any. Usage: python scripts/import_cycles.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "ganarena"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that `name` (a dotted import target) is or lies inside."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def edges(known: dict[str, Path]) -> dict[str, set[str]]:
    """module -> modules of the package it imports (anywhere in its body)."""
    graph: dict[str, set[str]] = {m: set() for m in known}
    for mod, path in known.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                # `from a import b` imports a.b when that is a module, else a name of a
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                           for a in node.names]  # fmt: skip
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                # a module named in a string (import_module("ganarena.x"), a lazy-export table);
                # the bare package name is a logger's name, not an import
                targets = [node.value] if node.value in known and "." in node.value else []
            for t in targets:
                dep = _resolve(t, known)
                # a submodule importing its own package's __init__ for a name is an edge too,
                # but a module never depends on itself through that
                if dep is not None and dep != mod:
                    graph[mod].add(dep)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def is_package_init_edge(a: str, b: str) -> bool:
    return a.startswith(b + ".")


def example_cycle(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One cycle through the component's first module (breadth-first, shortest)."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def main() -> int:
    graph = edges(modules())
    found = cycles(graph)
    for comp in found:
        print(f"cycle among {len(comp)} modules: {', '.join(comp)}")
        print("  e.g. " + " -> ".join(example_cycle(graph, comp)))
    print(f"{len(found)} import cycle(s) in src/{PACKAGE}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
