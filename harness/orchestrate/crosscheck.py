"""``confbench crosscheck``: one real Chromium receiver beside the native receivers of a room.

Two runs on the same system, one after the other:

1. a **quiet room** (the scenario's media and duration, two native participants and the browser, no
   impairment) that measures the browser's floor: what Chromium adds to a native receiver's latency with no
   network in the way. As long as the judged room, because Chromium's playout delay moves in steps of about
   one frame (lip sync with its audio) during the first tens of seconds;
2. the **judged room**: the scenario itself, with one more group, ``crosscheck-browser``: one browser that
   receives everyone, behind the same network profile as the scenario's first impaired group (so it sees the
   same kind of link as the native receivers it is compared with). It publishes too, because web clients
   (Janus's demo page) join only once their own camera is on; only native senders are judged.

The browser's group comes first, so that it starts first: Chromium takes seconds to join where a native
participant takes a fraction of one.

A room that ends ``invalid`` (the load generator saturated: a Chromium starting beside the media hosts on a
small machine can do that for a second, and the host's other tenants can take a virtual machine's cores for
longer) is measured again, once the machine is quiet (:func:`harness.probes.machine.settle`), up to
:data:`INVALID_ROOM_ATTEMPTS` runs in all; the invalid runs stay on disk, marked so in their manifests. Any
other end, or an invalid last attempt, stops the cross-check.

Then ``harness.analysis.crosscheck`` compares, per native sender, what both kinds measured, and the verdict is
written beside the judged run's tables as ``crosscheck.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from harness.analysis.crosscheck import Bounds, Floor, SenderCheck, check_room, render_floor, to_json
from harness.errors import HarnessError
from harness.orchestrate.run import RunOutcome, execute, measure_until_valid
from harness.probes.machine import settle
from harness.scenario.scenario import Group, Scenario
from harness.store.reader import RunReader
from harness.systems import SystemSpec

BROWSER_GROUP = "crosscheck-browser"
CROSSCHECK_FILE = "crosscheck.json"
TABLES = ("joins", "frames", "streams")
INVALID_ROOM_ATTEMPTS = 3
"""Runs of a room that may end ``invalid`` before the cross-check gives up (saturation is often a moment's)."""


class CrosscheckError(HarnessError):
    """The cross-check could not be made (a room did not complete, or nothing to compare)."""


def rooms(scenario: Scenario) -> tuple[Scenario, Scenario]:
    """The quiet room and the judged room for ``scenario``."""
    if any(g.engine == "browser" for g in scenario.groups):
        raise CrosscheckError(f"{scenario.source}: the cross-check adds its own browser receiver; give it a "
                              "scenario of native participants")
    if sum(g.count for g in scenario.groups if "video" in g.publish) < 1:
        raise CrosscheckError(f"{scenario.source}: no group publishes video: there is nothing to compare")
    network = next((g.network for g in scenario.groups if g.network is not None), None)
    browser = Group(name=BROWSER_GROUP, count=1, engine="browser", network=network)
    judged = dataclasses.replace(scenario, name=f"{scenario.name}-crosscheck", groups=(browser, *scenario.groups),
                                 thresholds=())
    quiet = dataclasses.replace(
        scenario, name=f"{scenario.name}-crosscheck-floor", thresholds=(),
        groups=(dataclasses.replace(browser, network=None), Group(name="native", count=2)))
    return quiet, judged


def _tables(outcome: RunOutcome) -> dict[str, pd.DataFrame]:
    reader = RunReader(outcome.run_dir)
    return {name: reader.table(name) for name in TABLES}


def _completed(outcome: RunOutcome, what: str) -> None:
    if outcome.status != "completed":
        raise CrosscheckError(f"the {what} ended {outcome.status} ({outcome.why}): {outcome.run_dir}")


def _run_room(scenario: Scenario, room: Scenario, what: str, spec: SystemSpec, results: Path,
              processes: int | None, announce: Callable[[str], None],
              wait: Callable[[], str] = settle) -> RunOutcome:
    """One room, run again while it ends ``invalid`` (after ``wait``, default: waiting for a quiet machine,
    which returns a line on how that went); raises :class:`CrosscheckError` if it did not complete."""
    def started(run_dir: Path) -> None:
        announce(f"crosscheck {what} of {scenario.name!r} on {spec} into {run_dir}")

    outcome = measure_until_valid(lambda: execute(room, spec, results, processes=processes, announce=started),
                                  INVALID_ROOM_ATTEMPTS - 1, what, lambda line: announce(f"crosscheck {line}"), wait)
    _completed(outcome, what)
    return outcome


def crosscheck(scenario: Scenario, spec: SystemSpec, results: Path, bounds: Bounds | None = None,
               processes: int | None = None,
               announce: Callable[[str], None] | None = None) -> tuple[list[SenderCheck], Floor, Path]:
    """Run both rooms on ``spec``; the per-sender checks, the browser's quiet-room floor and the judged run.
    ``announce`` is given a line as each room starts (and when one is measured again)."""
    bounds = bounds or Bounds()
    quiet, judged = rooms(scenario)
    say = announce or (lambda line: None)
    outcomes = [_run_room(scenario, room, what, spec, results, processes, say)
                for what, room in (("quiet room", quiet), ("judged room", judged))]
    quiet_run, judged_run = outcomes
    floor = render_floor(_tables(quiet_run), quiet_run.summary.get("window"))
    if floor is None:
        raise CrosscheckError(f"the quiet room measured no latency at both kinds of receiver: {quiet_run.run_dir}")
    checks = check_room(_tables(judged_run), floor, bounds, judged_run.summary.get("window"))
    if not checks:
        raise CrosscheckError(f"no sender was received by both kinds of receiver: {judged_run.run_dir}")
    (judged_run.run_dir / CROSSCHECK_FILE).write_text(
        json.dumps({**to_json(checks, floor, bounds), "floor_run": quiet_run.run_dir.name,
                    "system": spec.name}, indent=2) + "\n")
    return checks, floor, judged_run.run_dir


def crosscheck_command(scenario_path: Path, system: str | None, *, duration: float | None, results: Path,
                       bound_ms: float, processes: int | None) -> tuple[str, bool]:
    """``confbench crosscheck``: the printed verdict, and whether native and browser receivers agree."""
    import sys

    from harness.analysis.crosscheck import format_checks
    from harness.errors import UsageError
    from harness.scenario.scenario import load_scenario
    from harness.systems import create_system

    scenario = load_scenario(scenario_path).with_overrides(duration_s=duration)
    spec = SystemSpec.parse(system or scenario.systems[0])
    create_system(spec)  # an unknown name fails now, in one line
    try:
        bounds = Bounds(latency_ms=bound_ms)
    except ValueError as exc:
        raise UsageError(f"--bound-ms: {exc}") from exc

    def announce(line: str) -> None:
        print(f"confbench: {line}", file=sys.stderr)

    checks, floor, run_dir = crosscheck(scenario, spec, results, bounds, processes, announce)
    ok = all(c.ok for c in checks)
    verdict = "native and browser receivers agree" if ok else "native and browser receivers DISAGREE"
    return f"== crosscheck {scenario.name} on {spec}: {run_dir}\n{format_checks(checks, floor)}\n{verdict}", ok
