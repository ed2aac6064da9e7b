"""Capacity search: how many participants a system carries before its service-level objective breaks.

``confbench capacity SCENARIO --system S`` runs the scenario's groups (in their proportions) in steps of
participants: ``start``, ``start + step``, ... (``[capacity]`` in the scenario). Each step waits until
everyone of the step is in the call, lets ``settle_s`` pass (key frames, subscriptions) and measures for
``step_s`` seconds; the step passes when its figures meet every objective of the SLO (by default video
latency p95, packet loss, freezes and failed joins; the same keys and syntax as ``[thresholds]``). The
first failing step does not end the search: it steps back (fewer participants) and measures again, so the
knee is *confirmed* — a level that passed before and after the SLO broke above it. That level is the
capacity, reported in participants and in the video and audio streams the participants received (what an
SFU forwarded). When the load generator's health fails in a step (``harness.analysis.health.health_reasons``: skipped
frames, event-loop lag, datagrams dropped on its own sockets, lost samples), the figures measure the
generator: the search stops and says so instead of reporting a capacity. The search is bounded by
``max_participants`` and ``max_duration_s``.

The decisions are made on the Locust master (``harness.loadgen.shape``) from the run's own results folder:
a step's figures are :func:`harness.analysis.summary.summarize` over the rows of the step's window, so a step is
judged exactly as a run would be, and the report recomputes them from the same data (``capacity.json``
records the windows and the verdicts).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.health import health_reasons
from harness.analysis.summary import received_streams, summarize
from harness.scenario.scenario import CapacitySettings, Scenario
from harness.store.manifest import atomic_write_bytes
from harness.store.reader import RunReader

log = logging.getLogger(__name__)



CAPACITY_FILE = "capacity.json"


EVALUATION_DELAY_S = 3.0
"""After a window ends: time for the last samples to reach the writer and the server probe's flush."""


JOIN_GRACE_S = 30.0


OUTCOMES = ("found", "max_reached", "time_limit", "generator_limited", "below_start", "unstable")


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One step as planned: how many participants, why, and when its users changed and it was measured."""

    index: int
    participants: int
    phase: str
    """``ramp`` (going up) or ``confirm`` (stepping back after the SLO broke)."""
    started: float
    window: tuple[float, float]


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step as measured."""

    plan: StepPlan
    figures: dict[str, Any]
    """The step's summary (``summary.json`` keys) over its window."""
    slo: list[dict[str, Any]]
    health: list[str]
    streams: dict[str, int]
    """Distinct received streams per kind in the window: what the system forwarded."""

    @property
    def verdict(self) -> str:
        """``generator`` (health failed), ``pass`` or ``fail`` (the SLO)."""
        if self.health:
            return "generator"
        return "pass" if all(r["ok"] for r in self.slo) else "fail"

    def to_dict(self) -> dict[str, Any]:
        """As recorded in ``capacity.json``."""
        plan = asdict(self.plan)
        plan["window"] = list(self.plan.window)
        return {**plan, "verdict": self.verdict, "slo": self.slo, "health": self.health,
                "streams": self.streams, "figures": self.figures}


class _WindowReader:
    """A :class:`RunReader` seen through one step: joins since the step began, other rows in its window."""

    def __init__(self, reader: RunReader, started: float, window: tuple[float, float]) -> None:
        self._reader = reader
        self._started = started
        self._window = window
        self.manifest = reader.manifest

    @property
    def warnings(self) -> list[str]:
        return list(self._reader.warnings)

    def table(self, name: str) -> pd.DataFrame:
        rows = self._reader.table(name)
        start = self._started if name == "joins" else self._window[0]
        return rows[(rows["ts"] >= start) & (rows["ts"] <= self._window[1])]


def evaluate_step(run_dir: Path, plan: StepPlan, settings: CapacitySettings) -> StepResult:
    """Judge one step from the results folder: its figures, the SLO, the generator's health, the streams."""
    reader = RunReader(run_dir)
    view = _WindowReader(reader, plan.started, plan.window)
    figures = summarize(view, planned_participants=plan.participants,  # type: ignore[arg-type]
                        thresholds=settings.objectives, status="running")
    slo = figures.pop("thresholds")
    for key in ("schema_version", "run_id", "system", "status", "duration_s", "window", "warnings"):
        figures.pop(key, None)
    streams = received_streams(view.table("streams"))
    health = health_reasons(view)  # type: ignore[arg-type]
    return StepResult(plan, figures, slo, health, streams)


@dataclass
class CapacitySearch:
    """The search's state machine; :meth:`tick` is called about once a second (Locust's shape tick)."""

    settings: CapacitySettings
    planned: int
    """The scenario's participants: the default first step and step size."""
    spawn_rate: float
    join_timeout_s: float
    evaluate: Callable[[StepPlan], StepResult]
    clock: Callable[[], float] = time.time
    on_change: Callable[[CapacitySearch], None] = lambda search: None
    steps: list[StepResult] = field(default_factory=list)
    result: dict[str, Any] | None = None
    _target: int = 0
    _phase: str = "ramp"
    _state: str = "idle"
    _started: float = 0.0
    _ready_by: float = 0.0
    _window: tuple[float, float] = (0.0, 0.0)
    _joins_expected: int = 0
    _began: float | None = None
    _backs: int = 0

    @property
    def start(self) -> int:
        return self.settings.start or max(1, self.planned)

    @property
    def step(self) -> int:
        return self.settings.step or self.start

    @property
    def status(self) -> dict[str, Any]:
        """For the progress line: the step being run and what happened so far."""
        return {"step": len(self.steps) + (self.result is None), "participants": self._target,
                "phase": self._phase, "state": self._state if self.result is None else "done",
                "passed": max((s.plan.participants for s in self.steps if s.verdict == "pass"), default=None),
                "outcome": self.result["outcome"] if self.result else None}

    def tick(self, users: int, joins_done: int) -> tuple[int, float] | None:
        """The number of participants wanted now (with the spawn rate), or None when the search is over."""
        now = self.clock()
        if self.result is not None:
            return None
        if self._began is None:
            self._began = now
            self._begin(self.start, "ramp", now)
        if now - self._began > self.settings.max_duration_s:
            self._finish("time_limit", now)
            return None
        if self._state == "ramping":
            arrived = users == self._target and joins_done >= self._joins_expected
            if arrived or now >= self._ready_by:
                self._window = (now + self.settings.settle_s, now + self.settings.settle_s + self.settings.step_s)
                self._state = "measuring"
                self.on_change(self)
        elif self._state == "measuring" and now >= self._window[1] + EVALUATION_DELAY_S:
            plan = StepPlan(len(self.steps) + 1, self._target, self._phase, self._started, self._window)
            try:
                outcome = self.evaluate(plan)
            except Exception:
                log.exception("evaluating capacity step %d failed", plan.index)
                self._finish("unstable", now, note="a step could not be evaluated (see the Locust log)")
                return None
            self.steps.append(outcome)
            self._decide(outcome, now)
            self.on_change(self)
            if self.result is not None:
                return None
        return self._target, self.spawn_rate

    # -- decisions ------------------------------------------------------------------------------------------
    def _begin(self, target: int, phase: str, now: float) -> None:
        change = abs(target - self._target)
        if target > self._target:
            self._joins_expected += change  # each new participant's join must have finished
        self._target, self._phase, self._state, self._started = target, phase, "ramping", now
        # Locust starts (or stops) users at the spawn rate; a join that hangs is bounded by its timeout.
        self._ready_by = now + change / self.spawn_rate + self.join_timeout_s + JOIN_GRACE_S
        self.on_change(self)

    def _step_seconds(self) -> float:
        return self.step / self.spawn_rate + self.settings.settle_s + self.settings.step_s + EVALUATION_DELAY_S

    def _decide(self, outcome: StepResult, now: float) -> None:
        level = outcome.plan.participants
        if outcome.verdict == "generator":
            self._finish("generator_limited", now, at=level)
            return
        if self._phase == "ramp":
            if outcome.verdict == "pass":
                nxt = level + self.step
                if nxt > self.settings.max_participants:
                    self._finish("max_reached", now, at=level)
                elif self._began is not None and now + self._step_seconds() - self._began > \
                        self.settings.max_duration_s:
                    self._finish("time_limit", now)
                else:
                    self._begin(nxt, "ramp", now)
                return
            last = self._last_pass(below=level)
            if last is None:
                self._finish("below_start", now, at=level)
            elif self.settings.step_backs == 0:
                self._finish("found", now, at=last, note="not confirmed (step_backs = 0)")
            else:
                self._backs = 1
                self._begin(last, "confirm", now)
            return
        # confirming the knee
        if outcome.verdict == "pass":
            self._finish("found", now, at=level)
            return
        lower = self._last_pass(below=level)
        if lower is None or self._backs >= self.settings.step_backs:
            self._finish("unstable", now, at=level)
        else:
            self._backs += 1
            self._begin(lower, "confirm", now)

    def _last_pass(self, below: int) -> int | None:
        levels = [s.plan.participants for s in self.steps if s.verdict == "pass" and s.plan.participants < below]
        return max(levels) if levels else None

    def _finish(self, outcome: str, now: float, at: int | None = None, note: str = "") -> None:
        capacity: int | None = None
        streams = None
        passes = [s for s in self.steps if s.verdict == "pass"]
        if outcome in ("found", "max_reached") and at is not None:
            capacity = at
        elif outcome == "time_limit" and passes:
            capacity = max(s.plan.participants for s in passes)
        if capacity is not None:
            at_level = [s for s in passes if s.plan.participants == capacity]
            streams = at_level[-1].streams if at_level else None
        failed = [s for s in self.steps if s.verdict != "pass"]
        self.result = {
            "outcome": outcome, "capacity_participants": capacity, "streams_forwarded": streams,
            "limit_step": failed[-1].to_dict()["index"] if failed else None,
            "statement": _statement(outcome, capacity, streams, at, failed[-1] if failed else None, note),
            "duration_s": round(now - (self._began or now), 1),
        }
        self._state = "done"


def _statement(outcome: str, capacity: int | None, streams: dict[str, int] | None, at: int | None,
               failed: StepResult | None, note: str) -> str:
    forwarded = ""
    if streams:
        forwarded = f" ({streams.get('video', 0)} video and {streams.get('audio', 0)} audio streams received)"
    broke = ""
    if failed is not None and failed.verdict == "fail":
        if not any((failed.streams or {}).values()):
            # A server that collapsed may drop its sessions for good: stepping back then finds silence, not a
            # recovered system, and "latency was None" would hide that.
            broke = ("; no media reached any participant in that step: the system stopped forwarding and did "
                     "not recover")
        else:
            broke = "; " + ", ".join(f"{r['expr']} was {r['value']}" for r in failed.slo if not r["ok"])
    if outcome == "found":
        return (f"capacity: {capacity} participants{forwarded}; the SLO broke at "
                f"{failed.plan.participants if failed else '?'}{broke}" + (f" ({note})" if note else ""))
    if outcome == "max_reached":
        return f"capacity: at least {capacity} participants{forwarded}: every step up to max_participants held"
    if outcome == "time_limit":
        lower = f"at least {capacity} participants{forwarded}" if capacity else "no step passed"
        return f"no capacity: the search reached max_duration_s ({lower})"
    if outcome == "generator_limited":
        reasons = "; ".join(failed.health) if failed else ""
        return (f"no capacity: the load generator, not the system, was the limit at {at} participants "
                f"({reasons}); add cores or workers")
    if outcome == "below_start":
        return f"no capacity: the SLO broke at the first step ({at} participants){broke}"
    return (f"no capacity: the SLO broke again at {at} participants after stepping back{broke}"
            + (f" ({note})" if note else ""))


def write_capacity(run_dir: Path, search: CapacitySearch) -> None:
    """Record the search so far in ``capacity.json`` (atomically): settings, steps, result."""
    document = {
        "settings": search.settings.to_dict(), "start": search.start, "step": search.step,
        "steps": [s.to_dict() for s in search.steps], "result": search.result, "status": search.status,
    }
    atomic_write_bytes(Path(run_dir) / CAPACITY_FILE, json.dumps(document, indent=2, default=_json).encode())


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return float(value)


def read_capacity(run_dir: Path) -> dict[str, Any] | None:
    """``capacity.json`` of a run, or None when the run was not a capacity search (or it is unreadable)."""
    try:
        return dict(json.loads((Path(run_dir) / CAPACITY_FILE).read_text()))
    except (OSError, ValueError):
        return None


def settings_of(scenario: Scenario) -> CapacitySettings:
    """The scenario's ``[capacity]``, or the defaults."""
    return scenario.capacity or CapacitySettings()
