"""Run sets: K repetitions of one scenario on one or more systems, kept together in one folder.

A single run says little about a system: the same call on the same machine varies from run to run (scheduling,
caches, the kernel's timers). ``confbench run --repeat K`` therefore runs the scenario K times per system into
``results/<set-id>/`` (one ordinary run folder per repetition inside it) and records the plan and what came of
it in ``runset.json``. Several systems are interleaved (A B A B …) so that a drift of the machine during the
set hits every system alike instead of landing on whichever ran last.

This module also reads runs back for comparisons and history: :func:`find_runs` turns a run folder, a run set
folder or a whole results folder into :class:`RunRecord` s (manifest and summary facts, no tables).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import StoreError, UsageError
from harness.store.manifest import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    atomic_write_bytes,
    claim_folder,
    new_run_id,
    utc_iso,
)
from harness.store.reader import RunReader

__all__ = [
    "EVALUATE_FILE",
    "RUNSET_FILE",
    "RunRecord",
    "close_run_set",
    "find_runs",
    "group_by_system",
    "interleave",
    "open_run_set",
    "read_evaluation",
    "read_run",
    "read_run_set",
    "record_run",
]

RUNSET_FILE = "runset.json"
"""The file that makes a folder a run set: plan, order and outcome of its repetitions."""

EVALUATE_FILE = "evaluate.json"
"""Written by ``confbench evaluate`` into its run set: the systems asked for, those unavailable and why, errors,
capacity searches."""

# A results tree is shallow (results/<set>/<run>); the bound only stops a walk into an unrelated deep tree.
_MAX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as comparisons and history see it: facts from its manifest and its summary, no tables."""

    run_dir: Path
    run_id: str
    system: str
    status: str
    scenario_name: str | None = None
    scenario_sha256: str | None = None
    started_utc: str | None = None
    system_version: str | None = None
    summary: Mapping[str, Any] | None = None
    scenario: Mapping[str, Any] = field(default_factory=dict)
    server_cpus: float | None = None
    """The CPU budget (cores) the run's server was held to (manifest ``server_cpus``); None: no budget."""

    def __post_init__(self) -> None:
        if not self.run_id:
            raise ValueError(f"{self.run_dir}: a run needs a run id")
        if not self.system:
            raise ValueError(f"{self.run_dir}: a run needs a system name")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def read_run(run_dir: Path) -> RunRecord:
    """Read the manifest and summary of ``run_dir``; raises :class:`StoreError` naming the file at fault."""
    reader = RunReader(run_dir)
    manifest = reader.manifest
    system = manifest.get("system")
    system_map: Mapping[str, Any] = system if isinstance(system, Mapping) else {}
    name = _text(system_map.get("name")) or _text(system) or "unknown"
    scenario = manifest.get("scenario")
    scenario_map: Mapping[str, Any] = scenario if isinstance(scenario, Mapping) else {}
    version = system_map.get("version")
    cpus = manifest.get("server_cpus")
    return RunRecord(
        run_dir=Path(run_dir),
        run_id=_text(manifest.get("run_id")) or Path(run_dir).name,
        system=name,
        status=_text(manifest.get("status")) or "unknown",
        scenario_name=_text(scenario_map.get("name")),
        scenario_sha256=_text(manifest.get("scenario_sha256")),
        started_utc=_text(manifest.get("started_utc")),
        system_version=str(version) if version is not None else None,
        summary=reader.summary(),
        scenario=scenario_map,
        server_cpus=float(cpus) if isinstance(cpus, int | float) and not isinstance(cpus, bool) else None,
    )


def _run_dirs(folder: Path, depth: int) -> Iterator[Path]:
    if (folder / MANIFEST_FILE).is_file():
        yield folder
        return  # a run folder holds tables, never other runs
    if depth >= _MAX_DEPTH:
        return
    try:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        yield from _run_dirs(child, depth + 1)


def find_runs(folder: Path | str) -> list[RunRecord]:
    """Every run in ``folder``: the folder itself when it is a run, else the runs below it (run sets too).

    Raises :class:`UsageError` when the folder does not exist or holds no run. A run whose manifest or
    summary cannot be read raises :class:`StoreError`: a comparison must not silently drop a repetition.
    """
    path = Path(folder)
    if not path.is_dir():
        raise UsageError(f"{path}: no such run or run set folder")
    runs = [read_run(run_dir) for run_dir in _run_dirs(path, 0)]
    if not runs:
        raise UsageError(f"{path}: holds no run (no {MANIFEST_FILE} in it or below it)")
    return runs


def interleave(systems: Sequence[str], repeat: int) -> list[tuple[int, str]]:
    """The order of a run set: ``(repetition, system)`` pairs, systems interleaved (A B A B …).

    Repetitions are numbered from 1.
    """
    if repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {repeat}")
    if not systems:
        raise ValueError("a run set needs at least one system")
    return [(rep, system) for rep in range(1, repeat + 1) for system in systems]


def _write(path: Path, document: Mapping[str, Any]) -> None:
    # The store's discipline (temporary file, fsync, rename): a killed set leaves a whole runset.json.
    try:
        data = (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
    except ValueError as exc:
        raise StoreError(f"cannot write {path}: {exc}") from None
    atomic_write_bytes(path, data)


def read_run_set(set_dir: Path | str) -> dict[str, Any]:
    """The content of ``<set_dir>/runset.json``; :class:`StoreError` when missing, corrupt or too new."""
    path = Path(set_dir) / RUNSET_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path} is missing or not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise StoreError(f"{path} is not a JSON object")
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
        raise StoreError(f"{path} has schema_version {version!r}; this harness reads up to {SCHEMA_VERSION}")
    return document


def open_run_set(
    results_root: Path | str, scenario_name: str, scenario_sha256: str, systems: Sequence[str], repeat: int
) -> Path:
    """Create ``<results_root>/<set-id>/`` with a ``runset.json`` holding the plan; returns the folder."""
    order = interleave(systems, repeat)
    set_dir = claim_folder(Path(results_root), lambda attempt: new_run_id("set"))
    set_id = set_dir.name
    _write(
        set_dir / RUNSET_FILE,
        {
            "schema_version": SCHEMA_VERSION,
            "set_id": set_id,
            "status": "running",
            "started_utc": utc_iso(),
            "ended_utc": None,
            "scenario": {"name": scenario_name, "sha256": scenario_sha256},
            "systems": list(systems),
            "repeat": repeat,
            "order": [{"repetition": rep, "system": system} for rep, system in order],
            "runs": [],
        },
    )
    return set_dir


def record_run(set_dir: Path | str, run_dir: Path, system: str, repetition: int, status: str) -> None:
    """Add one finished repetition to ``runset.json`` (in the order the runs happened)."""
    document = read_run_set(set_dir)
    document["runs"].append(
        {"run_id": Path(run_dir).name, "system": system, "repetition": repetition, "status": status}
    )
    _write(Path(set_dir) / RUNSET_FILE, document)


def close_run_set(set_dir: Path | str, status: str) -> None:
    """Mark the set finished: ``completed`` when every planned repetition ran, else ``aborted``/``failed``."""
    document = read_run_set(set_dir)
    document["status"] = status
    document["ended_utc"] = utc_iso()
    _write(Path(set_dir) / RUNSET_FILE, document)


def group_by_system(set_dir: Path | str, runs: Sequence[RunRecord]) -> list[tuple[str, list[RunRecord]]]:
    """``runs`` by system: the set's planned systems first, in ``runset.json`` order, then any other."""
    order: list[str] = []
    if (Path(set_dir) / RUNSET_FILE).is_file():
        planned = read_run_set(set_dir).get("systems")
        order = [str(s).partition("=")[0] for s in planned] if isinstance(planned, list) else []
    for run in runs:
        if run.system not in order:
            order.append(run.system)
    groups = [(name, [run for run in runs if run.system == name]) for name in order]
    return [(name, members) for name, members in groups if members]


def read_evaluation(set_dir: Path | str) -> dict[str, Any]:
    """``evaluate.json`` of a set (empty when ``confbench evaluate`` did not make the set, or it is unreadable)."""
    try:
        document = json.loads((Path(set_dir) / EVALUATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}
