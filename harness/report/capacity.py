"""The page of a capacity search: the capacity (or why there is none), the steps, and two curves.

A pure function of the run folder: each step's figures are recomputed from the tables over the windows that
``capacity.json`` records (:func:`harness.analysis.capacity_steps.evaluate_step`, as the search judged them), and the
server's CPU comes from the ``sut`` probes in the same windows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from harness.analysis.capacity_steps import StepPlan, StepResult, evaluate_step, read_capacity
from harness.errors import ReportError
from harness.report.charts import color, format_number
from harness.report.html import figure_png
from harness.report.templating import render
from harness.scenario.scenario import CapacitySettings, scenario_from_dict
from harness.store.reader import RunReader

INDEX = "index.html"
QUALITY = (("video_latency_ms", "p95", "video latency p95 (ms)"), ("packet_loss_pct", None, "packet loss (%)"),
           ("freezes_per_min", None, "freezes per stream-minute"), ("fps", "p50", "received fps p50"))


def _value(figures: dict[str, Any], key: str, figure: str | None) -> float | None:
    value = figures.get(key)
    if figure is not None:
        value = value.get(figure) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def recompute(run_dir: Path) -> tuple[dict[str, Any], CapacitySettings, list[StepResult]]:
    """``capacity.json``, the settings, and every step judged again from the tables."""
    document = read_capacity(run_dir)
    if document is None:
        raise ReportError(f"{run_dir}: not a capacity search (no readable capacity.json)")
    manifest = RunReader(run_dir).manifest
    scenario = scenario_from_dict(manifest.get("scenario") or {})
    settings = scenario.capacity or CapacitySettings()
    steps = []
    for raw in document.get("steps", []):
        plan = StepPlan(int(raw["index"]), int(raw["participants"]), str(raw["phase"]), float(raw["started"]),
                        (float(raw["window"][0]), float(raw["window"][1])))
        steps.append(evaluate_step(run_dir, plan, settings))
    return document, settings, steps


def quality_chart(steps: Sequence[StepResult], settings: CapacitySettings) -> Figure:
    """Quality vs participants: what the participants got at each step (dashed: the SLO's bound)."""
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    bounds = {t.key: t.bound for t in settings.objectives}
    for ax, (key, figure, label) in zip(axes, QUALITY, strict=True):
        points = [(s.plan.participants, _value(s.figures, key, figure), s.verdict) for s in steps]
        xs = [p for p, v, _ in points if v is not None]
        ys = [v for _, v, _ in points if v is not None]
        ax.plot(xs, ys, color=color(0), linewidth=1, alpha=.6)
        for verdict, marker, c in (("pass", "o", "#17702d"), ("fail", "X", "#b3001b"), ("generator", "s", "#9a5b00")):
            sel = [(p, v) for p, v, d in points if v is not None and d == verdict]
            if sel:
                ax.scatter([p for p, _ in sel], [v for _, v in sel], marker=marker, color=c, label=verdict, zorder=3)
        bound = bounds.get(f"{key}.{figure}" if figure else key)
        if bound is not None:
            ax.axhline(bound, color="#b3001b", linestyle="--", linewidth=1)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("participants")
        ax.grid(alpha=.3)
    axes[0].legend(fontsize=8)
    return fig


def cpu_chart(steps: Sequence[StepResult], server_cpus: float | None = None) -> Figure:
    """Server CPU vs participants (100 % = one core), with the load generator's for comparison, and the
    server's budget (``server_cpus``, ``harness.testbed.cpulimit``) when it had one."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    if server_cpus:
        ax.axhline(server_cpus * 100, color=color(0), linestyle="--", linewidth=1,
                   label=f"server's CPU budget ({server_cpus:g} core)")
    for key, label, c in (("sut_cpu_pct", "server (system under test)", color(0)),
                          ("loadgen_cpu_pct", "load generator", color(1))):
        pts: list[tuple[int, float, float]] = []
        for s in steps:
            mean, peak = _value(s.figures, key, "mean"), _value(s.figures, key, "max")
            if mean is not None:
                pts.append((s.plan.participants, mean, peak if peak is not None else mean))
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=c, label=f"{label}, mean")
        ax.scatter([p[0] for p in pts], [p[2] for p in pts], marker="^", color=c, alpha=.5, label=f"{label}, max")
    ax.set_xlabel("participants")
    ax.set_ylabel("CPU (% of one core)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=.3)
    ax.legend(fontsize=8)
    return fig


def _cell(value: float | None, unit: str = "") -> str:
    return "–" if value is None else format_number(value) + unit


def render_page(run_dir: Path, document: dict[str, Any], settings: CapacitySettings,
                steps: Sequence[StepResult]) -> str:
    """The HTML of the page (``templates/capacity.html.j2``; charts as ``quality.png`` and ``cpu.png`` beside it)."""
    manifest = RunReader(run_dir).manifest
    result = document.get("result") or {}
    rows = []
    for s in steps:
        f = s.figures
        failed = [r["expr"] for r in s.slo if not r["ok"]]
        verdict = {"pass": "pass", "fail": "SLO broke: " + ", ".join(failed),
                   "generator": "generator saturated: " + "; ".join(s.health)}[s.verdict]
        rows.append({
            "index": s.plan.index, "participants": s.plan.participants, "phase": s.plan.phase,
            "css": "pass" if s.verdict == "pass" else "fail", "verdict": verdict,
            "cells": [_cell(_value(f, "video_latency_ms", "p95")), _cell(_value(f, "packet_loss_pct", None)),
                      _cell(_value(f, "freezes_per_min", None)), _cell(_value(f, "fps", "p50")),
                      _cell(_value(f.get("participants") or {}, "failed", None)),
                      f"{s.streams.get('video', 0)} / {s.streams.get('audio', 0)}",
                      _cell(_value(f, "sut_cpu_pct", "mean"), " %"), _cell(_value(f, "loadgen_cpu_pct", "mean"), " %")],
        })
    return render(
        "capacity.html.j2", shorten=True,
        scenario=(manifest.get("scenario") or {}).get("name", "?"),
        system=(manifest.get("system") or {}).get("name", "?"),
        run_id=manifest.get("run_id", run_dir.name), status=manifest.get("status"),
        server_cpus=manifest.get("server_cpus"),
        css="invalid" if result.get("outcome") == "generator_limited" else "headline",
        statement=result.get("statement") or "the search did not finish",
        slo=[t.expr for t in settings.objectives], start=document.get("start"), step=document.get("step"),
        step_s=f"{settings.step_s:g}", settle_s=f"{settings.settle_s:g}", max_participants=settings.max_participants,
        max_duration_s=f"{settings.max_duration_s:g}", step_backs=settings.step_backs, steps=rows,
    )


def build_capacity_report(run_dir: Path, out_dir: Path) -> Path:
    """Write the capacity page of ``run_dir`` into ``out_dir``; returns the page's path."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    document, settings, steps = recompute(run_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "quality.png").write_bytes(figure_png(quality_chart(steps, settings)))
        budget = RunReader(run_dir).manifest.get("server_cpus")
        (out_dir / "cpu.png").write_bytes(figure_png(cpu_chart(steps, budget if isinstance(budget, float | int)
                                                                else None)))
        partial = out_dir / f".{INDEX}.partial"
        partial.write_text(render_page(run_dir, document, settings, steps), encoding="utf-8")
        os.replace(partial, out_dir / INDEX)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from exc
    return out_dir / INDEX
