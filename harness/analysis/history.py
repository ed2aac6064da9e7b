"""History: one metric of one scenario and system over time, with its confidence band and change points.

``confbench history RESULTS_DIR`` reads every run below the folder (lone runs and run sets alike). A *point*
is a run set (its completed repetitions) or a lone run; its value is the median of the per-repetition values
(each run's figure from ``summary.json``), its band the seeded bootstrap 95 % interval of that median (none for
a single run). Change points are found in the series of point values by E-divisive means
(:mod:`harness.analysis.changepoint`), so a nightly job shows the night a metric moved, not just that it did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from harness.analysis.changepoint import ChangePoint, e_divisive
from harness.analysis.runset import RUNSET_FILE, RunRecord
from harness.analysis.stats import bootstrap_median_ci
from harness.errors import UsageError
from harness.scenario.thresholds import KNOWN_KEYS, lookup
from harness.store.manifest import parse_utc

__all__ = ["DEFAULT_METRICS", "History", "HistoryPoint", "format_history", "history"]

DEFAULT_METRICS: tuple[str, ...] = ("video_latency_ms.p50", "video_latency_ms.p95")
"""What ``confbench history`` draws without ``--metric``."""


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One night (a run set or a lone run) of the history."""

    label: str
    when: float
    """UNIX seconds: the start of the point's first run."""
    values: tuple[float, ...]
    median: float
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError(f"{self.label}: a history point needs at least one value")
        if (self.low is None) != (self.high is None):
            raise ValueError(f"{self.label}: a band needs both ends")


@dataclass(frozen=True, slots=True)
class History:
    """The points of one metric of one scenario on one system, in time order, and the change points."""

    scenario: str
    system: str
    metric: str
    points: tuple[HistoryPoint, ...]
    changes: tuple[ChangePoint, ...]

    def __post_init__(self) -> None:
        if self.metric not in KNOWN_KEYS:
            raise ValueError(f"unknown metric {self.metric!r}")


def _group_key(run: RunRecord) -> str:
    # Runs of one run set form one point; a lone run is a point by itself.
    parent = run.run_dir.parent
    return str(parent) if (parent / RUNSET_FILE).is_file() else str(run.run_dir)


def _select(runs: Sequence[RunRecord], scenario: str | None, system: str | None) -> tuple[str, str, list[RunRecord]]:
    chosen = [r for r in runs if r.status == "completed" and r.summary is not None
              and (scenario is None or r.scenario_name == scenario) and (system is None or r.system == system)]
    pairs = sorted({(r.scenario_name or "?", r.system) for r in chosen})
    if not pairs:
        raise UsageError("no completed run matches" + (f" scenario {scenario!r}" if scenario else "")
                         + (f" system {system!r}" if system else ""))
    if len(pairs) > 1:
        listed = ", ".join(f"{sc}/{sy}" for sc, sy in pairs)
        raise UsageError(f"runs of several scenarios/systems ({listed}); choose with --scenario and --system")
    (scenario_name, system_name), = pairs
    return scenario_name, system_name, chosen


def history(
    runs: Sequence[RunRecord], metric: str, *, scenario: str | None = None, system: str | None = None,
    min_size: int = 3,
) -> History:
    """The history of ``metric`` over ``runs`` (see the module doc); :class:`UsageError` when ambiguous."""
    if metric not in KNOWN_KEYS:
        raise UsageError(f"unknown metric {metric!r}; use a summary key such as video_latency_ms.p95")
    scenario_name, system_name, chosen = _select(runs, scenario, system)
    groups: dict[str, list[RunRecord]] = {}
    for run in chosen:
        groups.setdefault(_group_key(run), []).append(run)
    points = []
    for key, members in groups.items():
        values = [float(v) for v in (lookup(r.summary or {}, metric) for r in members)
                  if v is not None and math.isfinite(v)]
        starts = [t for t in (parse_utc(r.started_utc) for r in members) if t is not None]
        if not values or not starts:
            continue
        low = high = None
        if len(values) > 1:
            interval = bootstrap_median_ci(values)
            low, high = interval.low, interval.high
        points.append(HistoryPoint(label=Path(key).name, when=min(starts), values=tuple(values),
                                   median=float(np.median(values)), low=low, high=high))
    points.sort(key=lambda p: p.when)
    changes = e_divisive([p.median for p in points], min_size=min_size) if len(points) >= 2 * min_size else []
    return History(scenario=scenario_name, system=system_name, metric=metric, points=tuple(points),
                   changes=tuple(changes))


def format_history(item: History) -> str:
    """Terminal text: one line per point, then the change points."""
    lines = [f"{item.metric} of {item.scenario} on {item.system}: {len(item.points)} points"]
    for index, point in enumerate(item.points):
        band = f" [{point.low:.3g}, {point.high:.3g}]" if point.low is not None and point.high is not None else ""
        mark = " <- change" if any(c.index == index for c in item.changes) else ""
        stamp = datetime.fromtimestamp(point.when, tz=UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(f"  {stamp}  {point.median:.3g}{band}  (n={len(point.values)}, {point.label}){mark}")
    if not item.changes:
        lines.append("  no change point")
    for change in item.changes:
        stamp = datetime.fromtimestamp(item.points[change.index].when, tz=UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(f"  change at {stamp}: {change.before:.3g} -> {change.after:.3g} (p={change.p_value:.3g})")
    return "\n".join(lines)


