"""The history page: one trend chart per metric, with its confidence band and change points.

``confbench history RESULTS_DIR --out DIR`` writes it; the series and the change points come from
:mod:`harness.analysis.history`, this module only draws them (markup: ``templates/history.html.j2``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from harness.analysis.history import History, format_history, history
from harness.analysis.runset import find_runs
from harness.report.html import figure_png
from harness.report.templating import render

__all__ = ["build_history", "history_chart"]


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
        (out / f"{name}.png").write_bytes(figure_png(history_chart(item)))
        figures.append({"name": name, "metric": item.metric, "text": format_history(item)})
    page = render("history.html.j2", title=f"History of {items[0].scenario} on {items[0].system}", figures=figures)
    partial = out / ".index.html.partial"
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, out / "index.html")
    return out / "index.html", items
