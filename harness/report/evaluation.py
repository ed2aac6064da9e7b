"""The evaluator's page: which system holds this meeting best, at a glance, from an evaluation's run set alone.

``confbench evaluate`` leaves a run set (``harness.analysis.runset``) and its ``evaluate.json`` (what was asked,
what could not start and why, capacity searches). From those alone this module writes, in one folder:

- ``index.html``: the ranking first (per headline metric, systems best first with the median of their
  repetitions, its bootstrap 95 % interval, and the verdict against the system ranked just above), then the
  same per metric in detail, the systems (versions, runs, statuses; unavailable ones with their reason),
  capacity at the stated CPU budget, the versions of everything, every run (an ``invalid`` run shown as
  such, never ranked), and a link to the comparison page with every chart (``comparison/``);
- ``evaluation.json``: all of the above as data; ``ranking.parquet`` (one row per metric × system) and
  ``runs.parquet`` (one row per run, with its headline figures).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import harness
from harness.analysis.compare import fmt_figure
from harness.analysis.ranking import HEADLINE, Ranking, rank_systems, with_cpu_per_stream
from harness.analysis.runset import RUNSET_FILE, RunRecord, find_runs, group_by_system, read_evaluation, read_run_set
from harness.errors import HarnessError, ReportError
from harness.report.comparison import build_comparison_report, systems_table
from harness.report.html import INDEX
from harness.report.templating import render
from harness.scenario.thresholds import lookup
from harness.store.reader import RunReader

__all__ = ["EVALUATION_JSON", "build_evaluation_report"]

EVALUATION_JSON = "evaluation.json"


def _groups(set_dir: Path) -> list[tuple[str, list[RunRecord]]]:
    return group_by_system(set_dir, [with_cpu_per_stream(run) for run in find_runs(set_dir)])


def _num(value: float | None) -> str:
    return "–" if value is None else fmt_figure(value)


def _reasons(run: RunRecord) -> list[str]:
    try:
        manifest = RunReader(run.run_dir).manifest
    except HarnessError:
        return []
    found = [*(manifest.get("invalid_reasons") or []), *(manifest.get("errors") or [])]
    return [str(reason) for reason in found]


def _overview(rankings: Sequence[Ranking]) -> dict[str, Any]:
    """The page's first table: one row per metric, the systems in rank order across it."""
    width = max((sum(1 for s in r.standings if s.rank is not None) for r in rankings), default=0)
    rows = []
    for ranking in rankings:
        cells: list[dict[str, Any] | None] = []
        for s in ranking.standings:
            if s.rank is None:
                continue
            ci = f"{_num(s.ci.low)}–{_num(s.ci.high)}" if s.ci is not None and s.ci.low != s.ci.high else ""
            cells.append({"system": s.system, "median": _num(s.median), "ci": ci, "verdict": s.verdict or "",
                          "above": s.above or "", "reason": s.reason, "n": len(s.values)})
        cells += [None] * (width - len(cells))
        unranked = [f"{s.system}: {s.note}" for s in ranking.standings if s.rank is None]
        rows.append({"label": ranking.metric.label, "key": ranking.metric.key, "unit": ranking.metric.unit,
                     "better": "lower" if ranking.metric.lower_is_better else "higher", "cells": cells,
                     "unranked": unranked})
    return {"width": width, "rows": rows}


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _versions(groups: Sequence[tuple[str, Sequence[RunRecord]]]) -> list[tuple[str, str]]:
    """Harness, host and package versions (from the first run's manifest) and every system's version."""
    first = next((run for _, runs in groups for run in runs), None)
    facts: list[tuple[str, str]] = []
    if first is not None:
        manifest = RunReader(first.run_dir).manifest
        tool, host = _mapping(manifest.get("harness")), _mapping(manifest.get("host"))
        packages = _mapping(host.get("packages"))
        facts += [("confbench", f"{tool.get('version', '?')} (commit {tool.get('git_commit') or 'unknown'})"),
                  ("Python", str(host.get("python", "?"))), ("Kernel", str(host.get("kernel", "?"))),
                  ("CPU", f"{host.get('cpu_model', '?')}, {host.get('cores', '?')} cores"),
                  ("Packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items())) or "not recorded")]
    for name, runs in groups:
        versions = sorted({run.system_version for run in runs if run.system_version})
        facts.append((f"System {name}", ", ".join(versions) or "not recorded"))
    return facts


def _capacity_rows(plan: Mapping[str, Any], out: Path) -> list[dict[str, str]]:
    """One row per capacity search; each search's own page (steps, charts) is built beside this one."""
    from harness.report.capacity import build_capacity_report

    rows = []
    for entry in plan.get("capacity") or []:
        result = entry.get("result") or {}
        streams = result.get("streams_forwarded") or {}
        page = ""
        run_dir = Path(str(entry.get("run_dir") or ""))
        if entry.get("run_dir") and (run_dir / "capacity.json").is_file():
            try:
                folder = f"capacity-{entry.get('system')}"
                build_capacity_report(run_dir, out / folder)
                page = f"{folder}/{INDEX}"
            except HarnessError:
                page = ""
        rows.append({"page": page,
            "system": str(entry.get("system")), "cpus": f"{entry.get('server_cpus', '?'):g}"
            if isinstance(entry.get("server_cpus"), int | float) else "?",
            "participants": str(result.get("capacity_participants") or "–"),
            "streams": f"{streams.get('video', 0)} video, {streams.get('audio', 0)} audio" if streams else "–",
            "outcome": str(result.get("outcome") or entry.get("status") or "–"),
            "statement": str(result.get("statement") or entry.get("reason") or "; ".join(entry.get("reasons") or [])),
        })
    return rows


def _run_rows(groups: Sequence[tuple[str, Sequence[RunRecord]]],
              repetitions: Mapping[str, int]) -> list[dict[str, Any]]:
    rows = []
    for name, runs in groups:
        for run in runs:
            figures = {m.key: lookup(run.summary or {}, m.key) for m in HEADLINE}
            rows.append({"run_id": run.run_id, "system": name, "repetition": repetitions.get(run.run_id),
                         "status": run.status, "reasons": _reasons(run), "started_utc": run.started_utc,
                         **figures})
    return rows


def build_evaluation_report(set_dir: Path, out_dir: Path, *, seed: int | None = None) -> Path:
    """Write the evaluator's page and its data (module doc) for the run set ``set_dir``; returns the page."""
    set_dir, out = Path(set_dir), Path(out_dir)
    plan = read_evaluation(set_dir)
    groups = _groups(set_dir)
    if not groups:
        raise ReportError(f"{set_dir}: no run to evaluate")
    rankings = rank_systems(groups, seed=seed)
    runset = read_run_set(set_dir) if (set_dir / RUNSET_FILE).is_file() else {}
    repetitions = {str(r.get("run_id")): int(r.get("repetition", 0)) for r in runset.get("runs") or []}
    runs = _run_rows(groups, repetitions)
    unavailable = [e for e in plan.get("unavailable") or [] if isinstance(e, Mapping)]
    scenario = next((run.scenario_name for _, rs in groups for run in rs if run.scenario_name), "unnamed")
    systems = systems_table(groups)
    document = {
        "scenario": scenario, "set": set_dir.name, "repeat": runset.get("repeat"),
        "order": runset.get("order"), "systems": systems, "unavailable": unavailable,
        "errors": plan.get("errors") or [], "rankings": [r.to_dict() for r in rankings],
        "capacity": plan.get("capacity") or [], "capacity_cpus": plan.get("capacity_cpus"),
        "versions": dict(_versions(groups)), "runs": runs,
    }
    comparison = _comparison_page(set_dir, out / "comparison")
    page = render(
        "evaluation.html.j2", shorten=True, scenario=scenario, set_name=set_dir.name,
        repeat=runset.get("repeat") or "?", systems=systems, unavailable=unavailable,
        errors=document["errors"], overview=_overview(rankings), rankings=[_detail(r) for r in rankings],
        capacity=_capacity_rows(plan, out), capacity_cpus=plan.get("capacity_cpus"), versions=_versions(groups),
        runs=[_shown(row) for row in runs], comparison=comparison,
        left_out=sum(1 for row in runs if row["status"] != "completed"),
        version=harness.__version__,
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / EVALUATION_JSON).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        pd.DataFrame(_ranking_rows(rankings)).to_parquet(out / "ranking.parquet", index=False)
        pd.DataFrame([{**row, "reasons": "; ".join(row["reasons"])} for row in runs]).to_parquet(
            out / "runs.parquet", index=False)
        partial = out / f".{INDEX}.partial"
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, out / INDEX)
    except OSError as exc:
        raise ReportError(f"cannot write the evaluation to {out}: {exc.strerror or exc}") from exc
    return out / INDEX


def _shown(row: Mapping[str, Any]) -> dict[str, Any]:
    """A run's row as the page prints it: figures to 3 significant digits, reasons on one line."""
    return {**row, **{m.key: _num(row.get(m.key)) for m in HEADLINE}, "reasons": "; ".join(row["reasons"])}


def _comparison_page(set_dir: Path, out: Path) -> str | None:
    """Every chart over all repetitions: the comparison page of the same set, linked from this one."""
    try:
        build_comparison_report(set_dir, out)
    except ReportError:
        return None
    return f"{out.name}/{INDEX}"


def _detail(ranking: Ranking) -> dict[str, Any]:
    rows = []
    for s in ranking.standings:
        ci = f"[{_num(s.ci.low)}, {_num(s.ci.high)}]" if s.ci is not None and s.ci.low != s.ci.high else ""
        rows.append({"rank": s.rank or "–", "system": s.system, "median": _num(s.median), "ci": ci,
                     "n": len(s.values), "verdict": s.verdict or ("" if s.rank else "not ranked"),
                     "above": s.above or "", "why": s.reason or s.note})
    return {"label": ranking.metric.label, "key": ranking.metric.key, "unit": ranking.metric.unit, "rows": rows}


def _ranking_rows(rankings: Sequence[Ranking]) -> list[dict[str, Any]]:
    return [
        {"metric": r.metric.key, "unit": r.metric.unit, "rank": s.rank, "system": s.system, "n": len(s.values),
         "median": s.median, "ci_low": s.ci.low if s.ci else None, "ci_high": s.ci.high if s.ci else None,
         "above": s.above, "verdict": s.verdict, "reason": s.reason or s.note}
        for r in rankings for s in r.standings
    ]
