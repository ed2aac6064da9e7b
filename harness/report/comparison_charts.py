"""Charts of the comparison page that are drawn from repetitions' summaries rather than from tables.

Each takes, per system, the ``summary.json`` of its completed repetitions, and shows the median over the
repetitions with its seeded bootstrap 95 % confidence interval (:mod:`harness.analysis.stats`), the same figures the
verdicts are built from. Colours follow :func:`harness.report.charts.color` in system order, as in every
other chart of the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from harness.analysis.stats import bootstrap_median_ci
from harness.report.charts import color, format_number
from harness.scenario.thresholds import lookup

__all__ = ["SystemRepetitions", "cpu_per_participant", "percentile_bars", "repetition_values"]


@dataclass(frozen=True, slots=True)
class SystemRepetitions:
    """One system on the comparison page: its label and the summaries of its completed repetitions."""

    label: str
    summaries: tuple[Mapping[str, Any], ...]

    def __post_init__(self) -> None:
        if not self.label:
            raise ValueError("a system needs a label")


def repetition_values(system: SystemRepetitions, key: str) -> list[float]:
    """The finite values of dotted summary ``key`` over the system's repetitions."""
    values = (lookup(summary, key) for summary in system.summaries)
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def _centre_and_error(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(median, distance down to the CI's low end, distance up to its high end), or None without values."""
    if not values:
        return None
    centre = float(np.median(values))
    interval = bootstrap_median_ci(values)
    return centre, max(0.0, centre - interval.low), max(0.0, interval.high - centre)


def _bars(ax: Axes, systems: Sequence[SystemRepetitions], keys: Sequence[tuple[str, str]], unit: str) -> bool:
    """Grouped bars: one group per system, one bar per key; returns whether anything was drawn."""
    width = 0.8 / len(keys)
    drawn = False
    for index, system in enumerate(systems):
        for slot, (key, _name) in enumerate(keys):
            figures = _centre_and_error(repetition_values(system, key))
            x = index + (slot - (len(keys) - 1) / 2) * width
            if figures is None:
                ax.text(x, 0, "no data", rotation=90, ha="center", va="bottom", fontsize=8, color="0.45")
                continue
            centre, down, up = figures
            ax.bar(x, centre, width=width * 0.92, color=color(index), alpha=1.0 if slot == 0 else 0.55,
                   hatch=None if slot == 0 else "//", edgecolor="white")
            ax.errorbar(x, centre, yerr=[[down], [up]], color="black", capsize=4, linewidth=1.2)
            ax.annotate(f"{format_number(centre)}", (x, centre + up), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=8)
            drawn = True
    ax.set_xticks(range(len(systems)), [s.label for s in systems])
    ax.set_xlabel("system")
    ax.set_ylabel(unit)
    ax.grid(True, axis="y", alpha=0.3)
    ax.margins(y=0.15)
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.45")
    return drawn


_PERCENTILE_PANELS: tuple[tuple[str, str, str], ...] = (
    ("video_latency_ms", "Video latency", "latency (ms)"),
    ("audio_latency_ms", "Audio latency", "latency (ms)"),
    ("join_ms", "Join time", "join time (ms)"),
)


def percentile_bars(systems: Sequence[SystemRepetitions]) -> Figure:
    """p50 and p95 per system (median over repetitions, whiskers: bootstrap 95 % CI) for latency and join."""
    if not systems:
        raise ValueError("a chart needs at least one system")
    fig = Figure(figsize=(10.0, 5.5), layout="constrained")
    axes = fig.subplots(1, len(_PERCENTILE_PANELS), squeeze=False)[0]
    for ax, (metric, title, unit) in zip(axes, _PERCENTILE_PANELS, strict=True):
        _bars(ax, systems, ((f"{metric}.p50", "p50"), (f"{metric}.p95", "p95")), unit)
        ax.set_title(title)
    counts = sorted({len(s.summaries) for s in systems})
    reps = "/".join(str(c) for c in counts)
    fig.suptitle(f"p50 (solid) and p95 (hatched) per system\n(bar: median over {reps} repetitions; "
                 "whisker: bootstrap 95% CI of that median)")
    fig.legend([Patch(color=color(i)) for i in range(len(systems))], [s.label for s in systems],
               loc="outside lower center", ncols=min(len(systems), 4), frameon=False)
    return fig


def _per_participant(system: SystemRepetitions, key: str) -> list[float]:
    values = []
    for summary in system.summaries:
        cpu = lookup(summary, key)
        joined = lookup(summary, "participants.joined")
        if cpu is not None and joined:
            values.append(float(cpu) / float(joined))
    return values


def cpu_per_participant(systems: Sequence[SystemRepetitions]) -> Figure:
    """Mean CPU per joined participant: the server under test and the load generator, per system."""
    if not systems:
        raise ValueError("a chart needs at least one system")
    fig = Figure(figsize=(10.0, 5.0), layout="constrained")
    sut_ax, load_ax = fig.subplots(1, 2)
    panels = ((sut_ax, "sut_cpu_pct.mean", "Server under test"), (load_ax, "loadgen_cpu_pct.mean", "Load generator"))
    for ax, key, title in panels:
        drawn = False
        for index, system in enumerate(systems):
            figures = _centre_and_error(_per_participant(system, key))
            if figures is None:
                note = "not watched" if key.startswith("sut") else "no data"
                ax.text(index, 0, note, rotation=90, ha="center", va="bottom", fontsize=9, color="0.45")
                continue
            centre, down, up = figures
            ax.bar(index, centre, width=0.6, color=color(index))
            ax.errorbar(index, centre, yerr=[[down], [up]], color="black", capsize=4, linewidth=1.2)
            ax.annotate(format_number(centre), (index, centre + up), textcoords="offset points", xytext=(0, 3),
                        ha="center", fontsize=8)
            drawn = True
        ax.set_xticks(range(len(systems)), [s.label for s in systems])
        ax.set_xlim(-0.6, len(systems) - 0.4)
        ax.set_title(f"{title}: mean CPU per joined participant")
        ax.set_xlabel("system")
        ax.set_ylabel("CPU per participant (% of one core)")
        ax.grid(True, axis="y", alpha=0.3)
        ax.margins(y=0.15)
        if not drawn:
            ax.set_ylim(0, 1)
    fig.suptitle("CPU per participant (bar: median over repetitions; whisker: bootstrap 95% CI)")
    fig.legend([Patch(color=color(i)) for i in range(len(systems))], [s.label for s in systems],
               loc="outside lower center", ncols=min(len(systems), 4), frameon=False)
    return fig
