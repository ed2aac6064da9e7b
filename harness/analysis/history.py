"""History: one metric of one scenario and system over time, with its confidence band and change points.

``confbench history RESULTS_DIR`` reads every run below the folder (lone runs and run sets alike). A *point*
is a run set (its completed repetitions) or a lone run; its value is the median of the per-repetition values
(each run's figure from ``summary.json``), its band the seeded bootstrap 95 % interval of that median (none for
a single run). Change points are found in the series of point values by E-divisive means
(:mod:`harness.analysis.changepoint`), so a nightly job shows the night a metric moved, not just that it did.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from harness.analysis.changepoint import ChangePoint, e_divisive
from harness.analysis.runset import RUNSET_FILE, RunRecord, find_runs
from harness.analysis.stats import bootstrap_median_ci
from harness.errors import UsageError
from harness.report.data import parse_utc
from harness.report.html import figure_png
from harness.scenario.thresholds import KNOWN_KEYS, lookup

__all__ = ["DEFAULT_METRICS", "History", "HistoryPoint", "build_history", "format_history", "history", "history_chart"]

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


def _dates(seconds: Sequence[float]) -> list[float]:
    # Matplotlib's date numbers: typed floats that its date locators and formatters understand.
    return [float(date2num(datetime.fromtimestamp(s, tz=UTC))) for s in seconds]


def history_chart(item: History) -> Figure:
    """The trend: point medians, their 95 % band, and a dashed line at every change point."""
    fig = Figure(figsize=(10.0, 5.0), layout="constrained")
    ax = fig.subplots()
    if item.points:
        when = _dates([p.when for p in item.points])
        medians = [p.median for p in item.points]
        lows = [p.low if p.low is not None else p.median for p in item.points]
        highs = [p.high if p.high is not None else p.median for p in item.points]
        ax.fill_between(when, lows, highs, color="tab:blue", alpha=0.2, linewidth=0, label="95% CI of the median")
        ax.plot(when, medians, marker="o", color="tab:blue", label="median over repetitions")
        for change in item.changes:
            at = when[change.index]
            ax.axvline(at, color="tab:red", linestyle="--", linewidth=1.2)
            moved = change.relative_change
            text = f"{change.before:.3g} → {change.after:.3g}" + (f" ({moved:+.0%})" if moved is not None else "")
            ax.annotate(text, (at, 1.0), xycoords=("data", "axes fraction"), xytext=(4, -14),
                        textcoords="offset points", color="tab:red", fontsize=9)
        if item.changes:
            ax.plot([], [], color="tab:red", linestyle="--", label="change point (E-divisive means)")
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        fig.legend(loc="outside lower center", ncols=3, frameon=False)
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.45")
    ax.set_title(f"{item.metric} of {item.scenario} on {item.system} over time")
    ax.set_xlabel("run start (UTC)")
    ax.set_ylabel(item.metric)
    ax.grid(True, alpha=0.3)
    return fig


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


def build_history(
    results_dir: Path, metrics: Sequence[str], out_dir: Path, *, scenario: str | None = None,
    system: str | None = None,
) -> tuple[Path, list[History]]:
    """Write ``out_dir/index.html`` with one trend chart per metric (PNG beside it); returns it and the data."""
    runs = find_runs(results_dir)
    items = [history(runs, metric, scenario=scenario, system=system) for metric in metrics]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for item in items:
        name = item.metric.replace(".", "_")
        png = figure_png(history_chart(item))
        (out / f"{name}.png").write_bytes(png)
        text = html.escape(format_history(item))
        figures.append(f'<figure id="{html.escape(name)}"><img src="{html.escape(name)}.png" '
                       f'alt="{html.escape(item.metric)} over time"><figcaption><pre>{text}</pre></figcaption>'
                       "</figure>")
    title = html.escape(f"History of {items[0].scenario} on {items[0].system}")
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title></head><body><h1>{title}</h1>"
            "<p>Each point is a run set (median of its repetitions, band: bootstrap 95% CI) or a lone run; "
            "dashed lines mark change points found by E-divisive means.</p>" + "".join(figures) + "</body></html>\n")
    partial = out / ".index.html.partial"
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, out / "index.html")
    return out / "index.html", items
