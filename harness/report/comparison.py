"""The comparison page: N systems (or a baseline and a candidate) on one scenario, over all repetitions.

What it shows, from the results alone: each system's version and repetitions, the verdict table of every
comparison (:mod:`harness.analysis.compare`), p50/p95 bars with their bootstrap confidence intervals and server CPU per
participant (:mod:`harness.report.comparison_charts`), then every chart of the single-run report
(:data:`harness.report.charts.CHARTS`: latency CDFs overlaid, join time, loss and jitter, frame rate and
freezes, CPU over time) drawn on each system's repetitions pooled. Pooling puts a system's repetitions back to
back in time (each shifted to start where the previous one ended), so distributions use every sample and
time series show the repetitions one after the other instead of on top of each other.

Like :mod:`harness.report.html`, the page is self-contained (PNG as ``data:`` URIs, no script) and escapes
every string that comes from the results; its markup is the Jinja2 template `templates/comparison.html.j2`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

import harness
from harness.analysis.compare import Comparison, compare, make_side
from harness.analysis.runset import RunRecord, find_runs, group_by_system
from harness.errors import CompareError, ReportError
from harness.report.charts import charts_for
from harness.report.comparison_charts import SystemRepetitions, cpu_per_participant, percentile_bars
from harness.report.data import TABLES, RunData, load_run
from harness.report.html import INDEX, RenderedChart, figure_png
from harness.report.templating import render
from harness.scenario.thresholds import lookup

__all__ = ["build_comparison_report", "pool_runs", "render_comparison_report", "systems_table"]

# Between two pooled repetitions: a visible gap in time series rather than a line joining them.
_GAP_S = 2.0
# Each repetition's pids are moved into their own range so that a pid reused by the OS in a later
# repetition is not taken for the same process.
_PID_STRIDE = 10_000_000



def _shift(frame: pd.DataFrame, delta: float, pid_offset: int) -> pd.DataFrame:
    if frame.empty:
        return frame
    frame = frame.copy()
    for column in ("ts", "capture_ts"):
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce") + delta
    if "pid" in frame.columns and pid_offset:
        frame["pid"] = frame["pid"] + pid_offset
    return frame


def pool_runs(label: str, runs: Sequence[RunData]) -> RunData:
    """One :class:`RunData` holding the rows of every run in ``runs``, the runs placed back to back in time.

    The first run keeps its times; each later one is shifted to start ``_GAP_S`` after the previous one
    ended (``ended_utc``, or its last sample). Its manifest is the first run's, so its start is the origin.
    """
    if not runs:
        raise ReportError(f"{label}: nothing to pool")
    first = runs[0]
    origin = first.time_origin() or 0.0
    cursor = origin
    pooled: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLES}
    warnings: list[str] = []
    for index, run in enumerate(runs):
        start = run.time_origin()
        if start is None:
            continue
        delta = cursor - start
        end = start
        for name in TABLES:
            frame = run.table(name)
            if not frame.empty and "ts" in frame.columns:
                latest = pd.to_numeric(frame["ts"], errors="coerce").max()
                if pd.notna(latest):
                    end = max(end, float(latest))
            pooled[name].append(_shift(frame, delta, index * _PID_STRIDE))
        cursor += (end - start) + _GAP_S
        warnings.extend(run.warnings)
    tables = {
        name: pd.concat([f for f in frames if not f.empty], ignore_index=True)
        for name, frames in pooled.items() if any(not f.empty for f in frames)
    }
    return RunData(label=label, run_dir=first.run_dir, manifest=first.manifest, summary=None, tables=tables,
                   warnings=tuple(warnings))


def _labelled(groups: Sequence[tuple[str, Sequence[RunRecord]]]) -> list[tuple[str, list[RunRecord]]]:
    # Two groups of the same system (a nightly's baseline and candidate) need telling apart in legends.
    labels = [label for label, _ in groups]
    result = []
    for index, (label, runs) in enumerate(groups):
        unique = label if labels.count(label) == 1 else f"{label} ({'baseline' if index == 0 else f'#{index}'})"
        result.append((unique, list(runs)))
    return result


def build_comparison_report(set_dir: Path, out_dir: Path) -> Path:
    """The comparison page of a run set: every system, the first one as the baseline of the verdicts."""
    groups = group_by_system(set_dir, find_runs(set_dir))
    sides = [make_side(name, name, members) for name, members in groups]
    comparisons = []
    notes = []
    for side in sides[1:]:
        try:
            comparisons.append(compare(sides[0], side))
        except CompareError as exc:
            # The page still shows the runs; it says why there is no verdict instead of failing the run.
            notes.append(f"no verdicts for {side.system}: {exc}")
    return _render(groups, comparisons, out_dir, title=None, notes=notes)


def render_comparison_report(comparisons: Sequence[Comparison], out_dir: Path) -> Path:
    """The comparison page of ``confbench compare``: the baseline and every candidate compared with it."""
    if not comparisons:
        raise ReportError("nothing was compared")
    groups: list[tuple[str, Sequence[RunRecord]]] = [(comparisons[0].baseline.system, comparisons[0].baseline.runs)]
    groups += [(c.candidate.system, c.candidate.runs) for c in comparisons]
    return _render(groups, comparisons, out_dir, title=None)


def _render(
    groups: Sequence[tuple[str, Sequence[RunRecord]]], comparisons: Sequence[Comparison], out_dir: Path,
    title: str | None, notes: Sequence[str] = (),
) -> Path:
    labelled = _labelled(groups)
    # Charts show every run with a summary (an invalid run is still worth seeing, as in the single-run
    # report); the systems table gives each status, and the verdicts use completed runs only.
    completed = [(label, [r for r in runs if r.summary is not None]) for label, runs in labelled]
    if not any(runs for _, runs in completed):
        raise ReportError("no run with a summary to draw")
    incomplete = sum(1 for _, runs in labelled for r in runs if r.status != "completed")
    if incomplete:
        notes = [*notes, f"{incomplete} run(s) did not complete: their charts are drawn, but they count in "
                         "no verdict (see the statuses above)."]
    systems = [SystemRepetitions(label, tuple(r.summary or {} for r in runs)) for label, runs in completed]
    pooled = [pool_runs(label, [load_run(r.run_dir) for r in runs]) for label, runs in completed if runs]
    charts: list[RenderedChart] = [
        _rendered("percentile_bars", "p50 and p95 per system with bootstrap 95% confidence intervals "
                  "(median over repetitions)", percentile_bars(systems)),
        _rendered("cpu_per_participant", "Mean CPU per joined participant: server under test and load generator",
                  cpu_per_participant(systems)),
    ]
    for name, func in charts_for(pooled):
        caption = (func.__doc__ or name).strip().splitlines()[0].replace("``", "")
        charts.append(_rendered(name, caption + " (all repetitions, back to back)", func(pooled)))
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for chart in charts:
            (out / f"{chart.name}.png").write_bytes(chart.png)
        partial = out / f".{INDEX}.partial"
        partial.write_text(_page(labelled, comparisons, charts, title, notes), encoding="utf-8")
        os.replace(partial, out / INDEX)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc.strerror or exc}") from exc
    return out / INDEX


def _rendered(name: str, caption: str, fig: Figure) -> RenderedChart:
    return RenderedChart(name=name, caption=caption, png=figure_png(fig))


def _page(
    groups: Sequence[tuple[str, Sequence[RunRecord]]], comparisons: Sequence[Comparison],
    charts: Sequence[RenderedChart], title: str | None, notes: Sequence[str] = (),
) -> str:
    """The page's HTML (``templates/comparison.html.j2``)."""
    scenarios = sorted({r.scenario_name or "?" for _, runs in groups for r in runs})
    heading = title or f"{' / '.join(scenarios)}: comparison of {', '.join(label for label, _ in groups)}"
    return render(
        "comparison.html.j2", heading=heading, systems=systems_table(groups), notes=list(notes),
        comparisons=[_verdicts(c) for c in comparisons], quality_missing=_quality_missing(groups),
        charts=[{"name": c.name, "caption": c.caption, "png": Markup(base64.b64encode(c.png).decode("ascii"))}
                for c in charts],
        version=harness.__version__,
    )


_QUALITY = (("audio_mos.p50", "Audio MOS"), ("video_psnr_db.p50", "video PSNR"))


def _quality_missing(groups: Sequence[tuple[str, Sequence[RunRecord]]]) -> str:
    """Which quality scores no run carries ("" when every one is there): said once below the verdicts, whose
    rows for them then read unknown, instead of a note that contradicts a table listing them."""
    missing = [label for key, label in _QUALITY
               if not any(lookup(r.summary or {}, key) is not None for _, runs in groups for r in runs)]
    return " and ".join(missing)


def systems_table(groups: Sequence[tuple[str, Sequence[RunRecord]]]) -> list[dict[str, Any]]:
    """One row per system: its versions, how many runs ended how, the run ids."""
    rows = []
    for label, runs in groups:
        versions = sorted({r.system_version for r in runs if r.system_version}) or ["not recorded"]
        statuses: dict[str, int] = {}
        for r in runs:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        status_text = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        rows.append({"label": label, "versions": ", ".join(versions), "statuses": status_text,
                     "run_ids": [r.run_id for r in runs]})
    return rows


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if not np.isfinite(value):
        return "∞"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _verdicts(comparison: Comparison) -> dict[str, Any]:
    rows = []
    for r in comparison.results:
        rows.append({
            "key": r.metric.key, "unit": r.metric.unit, "baseline": _num(r.baseline_median),
            "baseline_n": len(r.baseline), "candidate": _num(r.candidate_median), "candidate_n": len(r.candidate),
            "ratio": _num(r.ratio), "ci": f" [{_num(r.ratio_ci.low)}, {_num(r.ratio_ci.high)}]" if r.ratio_ci else "",
            "test": f"p={r.p_value:.3g}" if r.p_value is not None else r.method,
            "verdict": r.verdict, "reason": r.reason,
        })
    return {"baseline": comparison.baseline.system, "candidate": comparison.candidate.system,
            "notes": list(comparison.notes), "rows": rows}
