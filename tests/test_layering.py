"""The house's layers (DESIGN.md §2): imports go down, never up, never in a circle.

The test reads every module of ``harness/`` with :mod:`ast` (no import is executed) and collects every
``import`` of a harness module, wherever it is written: at module level, inside a function (a lazy import is
still a dependency) or under ``if TYPE_CHECKING``. It then fails on

- a circle between modules (each circle is named, module by module);
- an import from one layer into a layer it may not use (:data:`MAY_IMPORT`, written down here);
- a module that belongs to no layer (a new package must be placed in :data:`LAYERS` first);
- anything but entry points and packages at the root of ``harness/``, a package without a docstring, or a
  module past :data:`MAX_LINES` (DESIGN.md §5.1: one concept per module, split past ~600 lines).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "harness"

LAYERS: dict[str, tuple[str, ...]] = {
    # Entry points compose the layers: the CLI, the pytest plugin, and the locustfile Locust loads by path.
    "entry": ("harness.cli", "harness.pytest_plugin", "harness.loadgen.locustfile"),
    # Pages built from results alone (DESIGN.md §5.7).
    "report": ("harness.report",),
    # A run from start to finish: deploy, Locust, probes, results folder, capacity search, calibration.
    "orchestrate": ("harness.orchestrate",),
    # Locust's side: User classes, load shape, hooks, the sample path (the only package importing Locust).
    "loadgen": ("harness.loadgen",),
    # The media host process and the participants it hosts (native and browser).
    "host": ("harness.host", "harness.browser"),
    # Conferencing systems: adapters, the reference SFU, local testbeds (namespaces, impairment, servers).
    "systems": ("harness.systems", "harness.reference", "harness.testbed"),
    # What runs media or measures processes: synthetic media, the aiortc/aioice bends, probes.
    "runtime": ("harness.media", "harness.rtc", "harness.probes"),
    # Pure functions of results: figures, health, statistics, verdicts, history, capacity steps.
    "analysis": ("harness.analysis",),
    # The results folder: manifest, tables, writer, reader.
    "store": ("harness.store",),
    # The language of a test: scenarios, network profiles, thresholds.
    "scenario": ("harness.scenario",),
    # Errors and the package root (its version).
    "base": ("harness.errors", "harness"),
}

_BELOW_ANALYSIS = {"analysis", "store", "scenario", "base"}
MAY_IMPORT: dict[str, set[str]] = {
    "entry": set(LAYERS),
    "report": {"report", *_BELOW_ANALYSIS},
    "orchestrate": {"orchestrate", "loadgen", "host", "systems", "runtime", *_BELOW_ANALYSIS},
    # Never the media host: it is a process of its own (`python -m`), talked to over a pipe.
    "loadgen": {"loadgen", "systems", "runtime", *_BELOW_ANALYSIS},
    "host": {"host", "systems", "runtime", *_BELOW_ANALYSIS},
    "systems": {"systems", "runtime", *_BELOW_ANALYSIS},
    "runtime": {"runtime", *_BELOW_ANALYSIS},
    # Analysis imports nothing that runs media: it reads the store's data.
    "analysis": _BELOW_ANALYSIS,
    "store": {"store", "base"},
    "scenario": {"scenario", "base"},
    "base": set(),
}
"""Which layers each layer may import (itself included: within a layer only circles are forbidden)."""

MAX_LINES = 600

ROOT_MODULES = {"__init__", "cli", "errors", "pytest_plugin"}
"""The root of ``harness/`` holds entry points, errors and packages only."""


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The harness module that an imported dotted name lives in (a module, or a name inside one)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> Iterator[tuple[str, int]]:
    """(imported harness module, line) for every import in ``module``, at any depth of its code."""
    path, is_package = MODULES[module]
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "harness" or alias.name.startswith("harness."):
                    owner = _owner(alias.name)
                    if owner:
                        yield owner, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if source != "harness" and not source.startswith("harness."):
                continue
            for alias in node.names:
                # `from harness.rtc import netio` imports a module; `from harness.errors import X` a name.
                owner = _owner(f"{source}.{alias.name}") if f"{source}.{alias.name}" in MODULES else _owner(source)
                if owner:
                    yield owner, node.lineno


GRAPH: dict[str, dict[str, int]] = {}
for _name in MODULES:
    GRAPH[_name] = {}
    for _target, _line in _imports(_name):
        if _target != _name:
            GRAPH[_name].setdefault(_target, _line)


def layer_of(module: str) -> str | None:
    """The layer of ``module``: the longest prefix in :data:`LAYERS` that names it or a package above it."""
    best, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    return best


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_walk_sees_lazy_and_relative_imports() -> None:
    # The walk itself: a function-level import counts, and the known edges are there.
    assert "harness.analysis.summary" in GRAPH["harness.orchestrate.lifecycle"]
    assert "harness.report.history" in GRAPH["harness.cli"]  # imported inside cmd_history
    assert "harness.rtc.netio" in GRAPH["harness.host.media_host"]  # `from harness.rtc import netio`
    assert circles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]


def test_no_import_circle() -> None:
    found = circles(GRAPH)
    assert not found, "import circles:\n" + "\n".join(" → ".join([*c, c[0]]) for c in found)


def test_every_module_has_a_layer() -> None:
    homeless = [m for m in MODULES if layer_of(m) is None]
    assert not homeless, f"modules in no layer (add their package to LAYERS): {homeless}"


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for module, targets in sorted(GRAPH.items()):
        here = layer_of(module)
        assert here is not None
        for target, line in sorted(targets.items()):
            there = layer_of(target)
            if there is not None and there not in MAY_IMPORT[here]:
                wrong.append(f"{MODULES[module][0].relative_to(PACKAGE.parent)}:{line}: {module} ({here}) imports "
                             f"{target} ({there})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_root_holds_entry_points_and_packages() -> None:
    loose = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ROOT_MODULES)
    assert not loose, f"modules at the root of harness/ (move them into a layer's package): {loose}"


@pytest.mark.parametrize("package", sorted(m for m, (_, is_pkg) in MODULES.items() if is_pkg))
def test_package_says_what_it_holds(package: str) -> None:
    tree = ast.parse(MODULES[package][0].read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{package}/__init__.py needs a docstring: what it holds, what it may import"


def test_no_module_is_too_long() -> None:
    lengths = {m: len(path.read_text(encoding="utf-8").splitlines()) for m, (path, _) in MODULES.items()}
    long = {m: n for m, n in lengths.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"
