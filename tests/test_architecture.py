"""The shape of the package, checked: no import cycle, no function over 80 lines, no probing of
a datamodule or task outside its own package (they offer protocols: ganarena.data.protocol,
ganarena.tasks.base), and built-in metric names written once (metrics/registry.py)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from ganarena.metrics import registry

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "ganarena"
MAX_LINES = 80


def parsed() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text()) for p in sorted(SRC.rglob("*.py"))}


def test_no_import_cycle_inside_the_package():
    spec = importlib.util.spec_from_file_location(
        "import_cycles", ROOT / "scripts" / "import_cycles.py"
    )
    cycles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cycles)
    graph = cycles.edges(cycles.modules())
    assert "ganarena.metrics.backbones" in graph and graph["ganarena.train"]  # the graph is real
    assert cycles.cycles(graph) == []


def test_no_function_is_longer_than_80_lines():
    long = [
        f"{p.relative_to(SRC)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for p, tree in parsed().items()
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and n.end_lineno - n.lineno + 1 > MAX_LINES
    ]
    assert long == []


PROBED = {"datamodule", "dm", "task", "pl_module", "data"}


def _probed_name(node: ast.expr) -> str | None:
    """The last name of `x`, `a.x` or `a.b.x` (what getattr/hasattr is asked about)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def test_datamodules_and_tasks_are_not_probed_outside_their_packages():
    found = []
    for p, tree in parsed().items():
        own = p.parent.name in ("data", "tasks")
        for n in ast.walk(tree):
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name)
                and n.func.id in ("getattr", "hasattr")
                and n.args
                and _probed_name(n.args[0]) in PROBED
                and not own
            ):
                found.append(f"{p.relative_to(SRC)}:{n.lineno} {ast.unparse(n)}")
    assert found == []


# "precision" is also trainer.precision, a hyperparameter column (records.py)
NOT_METRICS = {("records.py", "precision")}


def test_built_in_metric_names_are_written_once():
    names = set(registry.BUILTIN)
    assert {"fid", "is", "kid", "modes_covered"} <= names
    elsewhere = [
        f"{p.relative_to(SRC)}:{n.lineno} {n.value!r}"
        for p, tree in parsed().items()
        if p.name != "registry.py"
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and n.value in names and (p.name, n.value) not in NOT_METRICS
    ]
    assert elsewhere == []
