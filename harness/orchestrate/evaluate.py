"""``confbench evaluate``: one scenario on every system available here, interleaved repetitions, one page.

The controller's side of an evaluation:

1. the systems asked for (``--systems all``: :data:`LOCAL_SYSTEMS` and the ones known to be unavailable,
   :data:`UNAVAILABLE`) are each started once and stopped (:func:`check_starts`): one that cannot start is
   listed with its one-line reason and left out, so a missing root or toolchain costs seconds, not a run set;
2. the others run ``--repeat K`` repetitions each into one run set (``harness.analysis.runset``), interleaved
   round-robin (A B C D A B C D …) so a drift of the machine hits every system alike; a repetition that
   cannot run is noted and the set goes on;
3. with ``--capacity CORES``, one capacity search per system (``harness.orchestrate.capacity``) with its
   server held to that CPU budget, into ``<set-id>-capacity/`` beside the set;
4. ``evaluate.json`` in the set folder records what was asked, what was unavailable and why, the errors and
   the capacity searches, so that the page (``harness.report.evaluation``) is built from the results alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis import runset
from harness.analysis.runset import EVALUATE_FILE
from harness.errors import HarnessError, UsageError
from harness.orchestrate.capacity import run_capacity
from harness.orchestrate.progress import capacity_progress, progress_printer
from harness.orchestrate.run import RunAborted, execute
from harness.scenario.scenario import Scenario, load_scenario
from harness.store.manifest import SCHEMA_VERSION, atomic_write_bytes, stamped_folder, utc_iso
from harness.systems import SystemSpec, available_systems, create_system
from harness.testbed.cpulimit import server_cpus

__all__ = [
    "LOCAL_SYSTEMS",
    "UNAVAILABLE",
    "Evaluation",
    "check_starts",
    "evaluate_command",
    "format_ranking",
    "run_evaluation",
    "select_systems",
]

log = logging.getLogger(__name__)

LOCAL_SYSTEMS: tuple[str, ...] = ("p2p", "reference", "janus", "livekit", "janus-whip")
"""The systems confbench can start on this machine by itself (``--systems all``)."""

UNAVAILABLE: dict[str, str] = {
    "galene": "Galène cannot be built here: its Go module github.com/jech/galene is refused by the module proxy "
              "(403 Forbidden for every version tried, and latest) and Debian does not package it",
}
"""Systems an evaluation names but cannot run, with the one-line reason (listed on the page, never run)."""

Say = Callable[[str], None]


def select_systems(text: str) -> list[SystemSpec]:
    """``--systems``: ``all`` or ``a,b,…`` (``NAME`` or ``NAME=URL``); :class:`UsageError` for bad input."""
    if text.strip() == "all":
        return [SystemSpec(name) for name in (*LOCAL_SYSTEMS, *UNAVAILABLE)]
    items = [item.strip() for item in text.split(",")]
    if not items or any(not item for item in items):
        raise UsageError(f"--systems {text!r}: expected all or a comma-separated list such as p2p,reference")
    specs = [SystemSpec.parse(item) for item in items]
    known = set(available_systems()) | set(UNAVAILABLE)
    for spec in specs:
        if spec.name not in known:
            raise UsageError(f"--systems: unknown system {spec.name!r}; known systems: {', '.join(sorted(known))}")
    names = [spec.name for spec in specs]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise UsageError(f"--systems names {', '.join(doubled)} more than once")
    return specs


def check_starts(spec: SystemSpec) -> str | None:
    """Start ``spec``'s system once and stop it: None when it starts, else why not, in one line."""
    if spec.name in UNAVAILABLE and spec.url is None:
        return UNAVAILABLE[spec.name]
    try:
        system = create_system(spec)
    except HarnessError as exc:  # e.g. a system that needs a URL and got none
        return str(exc)
    try:
        system.deploy()
    except HarnessError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to list, not a traceback
        log.debug("%s did not start", spec, exc_info=True)
        return f"{type(exc).__name__}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            system.undeploy()
    return None


@dataclass(slots=True)
class Evaluation:
    """What an evaluation did: its run set, the systems left out and why, errors and capacity searches."""

    set_dir: Path
    ran: list[str]
    unavailable: dict[str, str]
    errors: list[str] = field(default_factory=list)
    capacity: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)

    def to_dict(self, asked: Sequence[str], repeat: int, budget: float | None) -> dict[str, Any]:
        """``evaluate.json``."""
        return {
            "schema_version": SCHEMA_VERSION, "asked": list(asked), "ran": self.ran, "repeat": repeat,
            "unavailable": [{"system": name, "reason": reason} for name, reason in self.unavailable.items()],
            "errors": self.errors, "capacity_cpus": budget, "capacity": self.capacity, "written_utc": utc_iso(),
        }


def _write(set_dir: Path, document: dict[str, Any]) -> None:
    atomic_write_bytes(set_dir / EVALUATE_FILE, (json.dumps(document, indent=2) + "\n").encode())


def run_evaluation(scenario: Scenario, specs: Sequence[SystemSpec], repeat: int, results: Path, *,
                   processes: int | None = None, capacity_cpus: float | None = None,
                   say: Say = lambda text: None) -> Evaluation:
    """Steps 1–4 of the module doc; returns what was done. :class:`UsageError` when no system can start."""
    if repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {repeat}")
    if capacity_cpus is not None and not 0.01 <= capacity_cpus <= 1024:
        raise UsageError(f"--capacity must be a CPU budget in cores such as 0.5, got {capacity_cpus:g}")
    unavailable: dict[str, str] = {}
    ready: list[SystemSpec] = []
    for spec in specs:
        say(f"checking that {spec} starts")
        reason = check_starts(spec)
        if reason is None:
            ready.append(spec)
        else:
            unavailable[spec.name] = reason
            say(f"{spec.name} is not available: {reason}")
    if not ready:
        raise UsageError("no system could start: " + "; ".join(f"{k}: {v}" for k, v in unavailable.items()))
    by_text = {str(spec): spec for spec in ready}
    set_dir = runset.open_run_set(results, scenario.name, scenario.sha256(), list(by_text), repeat)
    done = Evaluation(set_dir, [spec.name for spec in ready], unavailable)
    asked = [str(spec) for spec in specs]

    def save() -> None:
        _write(set_dir, done.to_dict(asked, repeat, capacity_cpus))

    save()
    order = runset.interleave(list(by_text), repeat)
    say(f"run set {set_dir}: {len(order)} runs ({repeat} per system, round-robin: {', '.join(by_text)})")
    try:
        for index, (repetition, text) in enumerate(order, start=1):
            spec = by_text[text]
            say(f"[{index}/{len(order)}] {spec} repetition {repetition}: {scenario.participants} participants, "
                f"{scenario.duration_s:g} s")
            try:
                outcome = execute(scenario, spec, set_dir, progress=progress_printer(f"{spec} #{repetition}"),
                                  processes=processes)
            except RunAborted:
                raise
            except HarnessError as exc:
                done.errors.append(f"{spec} repetition {repetition}: {exc}")
                say(f"\n{spec} repetition {repetition} did not run: {exc}")
                save()
                continue
            runset.record_run(set_dir, outcome.run_dir, spec.name, repetition, outcome.status)
            reasons = f" ({'; '.join(outcome.reasons)})" if outcome.reasons else ""
            say(f"\n{spec} repetition {repetition}: {outcome.status}{reasons}")
            done.statuses.append(outcome.status)
        runset.close_run_set(set_dir, "completed")
    except BaseException:
        runset.close_run_set(set_dir, "aborted")
        save()
        raise
    if capacity_cpus is not None:
        for spec in ready:
            done.capacity.append(_capacity(scenario, spec, set_dir, capacity_cpus, processes, say))
            save()
    save()
    return done


def _capacity(scenario: Scenario, spec: SystemSpec, set_dir: Path, cpus: float, processes: int | None,
              say: Say) -> dict[str, Any]:
    """One capacity search of ``spec`` at ``cpus`` cores, as recorded in ``evaluate.json``."""
    entry: dict[str, Any] = {"system": spec.name, "server_cpus": cpus}
    if spec.name == "p2p":
        return {**entry, "status": "not run",
                "reason": "p2p has no server to hold to a CPU budget (its limit is the load generator's)"}
    say(f"capacity search of {spec} with its server held to {cpus:g} core(s)")
    try:
        with server_cpus(cpus):
            outcome = run_capacity(scenario, spec, set_dir.with_name(set_dir.name + "-capacity"),
                                   processes=processes, progress=capacity_progress(str(spec)))
    except RunAborted:
        raise
    except HarnessError as exc:
        say(f"\ncapacity search of {spec} did not run: {exc}")
        return {**entry, "status": "not run", "reason": str(exc)}
    result = outcome.summary.get("capacity") or {}
    say(f"\n{spec}: {result.get('statement') or outcome.status}")
    return {**entry, "status": outcome.status, "run_dir": str(outcome.run_dir), "reasons": list(outcome.reasons),
            "result": result}


def _say(text: str) -> None:
    print(f"confbench: {text.lstrip()}" if not text.startswith("\n") else f"\nconfbench: {text.lstrip()}",
          file=sys.stderr, flush=True)


def evaluate_command(args: argparse.Namespace, build_page: Callable[[Path, Path], Path]) -> int:
    """``confbench evaluate`` from its parsed arguments: check the input, run, build the page (``build_page``:
    the report layer's builder, handed in so that this layer does not import it), print where things are."""
    if args.processes is not None and args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration must be positive, got {args.duration:g}")
    specs = select_systems(args.systems)
    scenario = load_scenario(args.scenario).with_overrides(duration_s=args.duration)
    done = run_evaluation(scenario, specs, args.repeat, args.results, processes=args.processes,
                          capacity_cpus=args.capacity, say=_say)
    _say("building the page")
    page = build_page(done.set_dir, stamped_folder(args.reports, f"evaluate-{scenario.name}"))
    document = json.loads((page.parent / "evaluation.json").read_text(encoding="utf-8"))
    print(format_ranking(document))
    print(f"\npage: {page}\nrun set: {done.set_dir}")
    ok = bool(done.statuses) and all(status == "completed" for status in done.statuses) and not done.errors
    return 0 if ok else 1


def format_ranking(document: Mapping[str, Any]) -> str:
    """The ranking of ``evaluation.json`` as plain text: one line per metric, systems best first."""
    lines = []
    for ranking in document.get("rankings") or []:
        cells = []
        for s in ranking.get("standings") or []:
            if s.get("rank") is None:
                continue
            median = s.get("median")
            text = f"{s['system']} {median:.3g}" if isinstance(median, int | float) else str(s["system"])
            if s.get("above"):
                text += f" ({s.get('verdict')} vs {s['above']})"
            cells.append(f"{s['rank']}. {text}")
        label = f"{ranking.get('label')} ({ranking.get('unit')})"
        lines.append(f"{label:<48} " + ("  ".join(cells) or "nothing ranked"))
    for entry in document.get("capacity") or []:
        result = entry.get("result") or {}
        found = result.get("statement") or entry.get("reason") or entry.get("status")
        lines.append(f"capacity of {entry.get('system')} at {entry.get('server_cpus')} core(s): {found}")
    for entry in document.get("unavailable") or []:
        lines.append(f"not available: {entry.get('system')}: {entry.get('reason')}")
    return "\n".join(lines)
