"""The comparison page: N systems (or a baseline and a candidate) on one scenario, over all repetitions.

What it shows, from the results alone: each system's version and repetitions, the verdict table of every
comparison (:mod:`harness.analysis.compare`), p50/p95 bars with their bootstrap confidence intervals and server CPU per
participant (:mod:`harness.report.comparison_charts`), then every chart of the single-run report
(:data:`harness.report.charts.CHARTS`: latency CDFs overlaid, join time, loss and jitter, frame rate and
freezes, CPU over time) drawn on each system's repetitions pooled. Pooling puts a system's repetitions back to
back in time (each shifted to start where the previous one ended), so distributions use every sample and
time series show the repetitions one after the other instead of on top of each other.

Like :mod:`harness.report.html`, the page is self-contained (PNG as ``data:`` URIs, no script) and escapes
every string that comes from the results.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import harness
from harness.analysis.compare import Comparison, compare, make_side
from harness.analysis.runset import RUNSET_FILE, RunRecord, find_runs, read_run_set
from harness.errors import CompareError, ReportError
from harness.report.charts import charts_for
from harness.report.comparison_charts import SystemRepetitions, cpu_per_participant, percentile_bars
from harness.report.data import TABLES, RunData, load_run
from harness.report.html import INDEX, RenderedChart, figure_png

__all__ = ["build_comparison_report", "pool_runs", "render_comparison_report"]

# Between two pooled repetitions: a visible gap in time series rather than a line joining them.
_GAP_S = 2.0
# Each repetition's pids are moved into their own range so that a pid reused by the OS in a later
# repetition is not taken for the same process.
_PID_STRIDE = 10_000_000

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1080px; padding: 0 1rem; color: #222; }
h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .3rem .55rem; text-align: left; vertical-align: top; }
thead th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.worse { background: #fbe7e9; color: #b3001b; font-weight: 600; } td.better { background: #eaf6ec; }
td.unknown { color: #777; } .note { background: #fff6e0; border-left: 4px solid #e0a800; padding: .4rem .8rem; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; } footer { margin-top: 3rem; color: #888; font-size: .85rem; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


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
    runs = find_runs(set_dir)
    order: list[str] = []
    if (Path(set_dir) / RUNSET_FILE).is_file():
        planned = read_run_set(set_dir).get("systems")
        order = [str(s).partition("=")[0] for s in planned] if isinstance(planned, list) else []
    for run in runs:
        if run.system not in order:
            order.append(run.system)
    groups = [(name, [run for run in runs if run.system == name]) for name in order]
    groups = [(name, members) for name, members in groups if members]
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
    scenarios = sorted({r.scenario_name or "?" for _, runs in groups for r in runs})
    heading = title or f"{' / '.join(scenarios)}: comparison of {', '.join(label for label, _ in groups)}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(heading)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(heading)}</h1>",
        "<h2>Systems</h2>", _systems_table(groups),
        *(f'<p class="note">{_e(note)}</p>' for note in notes),
        "<h2>Verdicts</h2>", *(_verdict_table(c) for c in comparisons),
    ]
    if not comparisons:
        parts.append("<p>One system only: nothing to compare.</p>")
    parts += [
        "<p>Per-repetition values are each run's figure from its <code>summary.json</code>. A verdict needs "
        "significance (Mann–Whitney U with at least 5 repetitions a side, else non-overlapping bootstrap 95% "
        "intervals of the medians) and at least the minimum effect.</p>",
        "<h2>Charts</h2>",
        '<p class="note">MOS and PSNR are not shown: these results carry no such figures.</p>',
        *(_figure(chart) for chart in charts),
        f"<footer>confbench {_e(harness.__version__)} comparison report, built from the results folders "
        "alone.</footer>", "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _systems_table(groups: Sequence[tuple[str, Sequence[RunRecord]]]) -> str:
    rows = []
    for label, runs in groups:
        versions = sorted({r.system_version for r in runs if r.system_version}) or ["not recorded"]
        statuses: dict[str, int] = {}
        for r in runs:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        status_text = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        ids = "<br>".join(_e(r.run_id) for r in runs)
        rows.append(f"<tr><th>{_e(label)}</th><td>{_e(', '.join(versions))}</td><td>{_e(status_text)}</td>"
                    f"<td><small>{ids}</small></td></tr>")
    return ("<table><thead><tr><th>system</th><th>version</th><th>repetitions</th><th>runs</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    if not np.isfinite(value):
        return "∞"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _verdict_table(comparison: Comparison) -> str:
    base, cand = comparison.baseline, comparison.candidate
    rows = []
    for r in comparison.results:
        ci = f" [{_num(r.ratio_ci.low)}, {_num(r.ratio_ci.high)}]" if r.ratio_ci else ""
        test = f"p={r.p_value:.3g}" if r.p_value is not None else r.method
        rows.append(
            f"<tr><th><code>{_e(r.metric.key)}</code> <small>({_e(r.metric.unit)})</small></th>"
            f'<td class="num">{_num(r.baseline_median)} <small>n={len(r.baseline)}</small></td>'
            f'<td class="num">{_num(r.candidate_median)} <small>n={len(r.candidate)}</small></td>'
            f'<td class="num">{_num(r.ratio)}{_e(ci)}</td><td>{_e(test)}</td>'
            f'<td class="{_e(r.verdict)}" title="{_e(r.reason)}">{_e(r.verdict)}</td></tr>'
        )
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in comparison.notes)
    return (
        f"<h3>{_e(base.system)} (baseline) → {_e(cand.system)} (candidate)</h3>{notes}"
        "<table><thead><tr><th>metric</th><th>baseline median</th><th>candidate median</th>"
        "<th>ratio [95% CI]</th><th>test</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _figure(chart: RenderedChart) -> str:
    encoded = base64.b64encode(chart.png).decode("ascii")
    return (f'<figure id="{_e(chart.name)}"><img src="data:image/png;base64,{encoded}" alt="{_e(chart.caption)}">'
            f"<figcaption>{_e(chart.caption)}</figcaption></figure>")
