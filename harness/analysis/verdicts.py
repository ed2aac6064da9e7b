"""How comparisons are shown: the terminal table, Markdown, JUnit cases and JSON.

Pure functions of :class:`harness.analysis.compare.Comparison` objects; the statistics live in
:mod:`harness.analysis.compare`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from harness.analysis.compare import Comparison, MetricResult, fmt_figure
from harness.analysis.junit import Case

__all__ = ["format_markdown", "format_table", "junit_cases", "to_json"]

_MARK = {"worse": "WORSE", "better": "better", "same": "same", "unknown": "unknown",
         "not comparable": "not comparable"}


def _ratio(result: MetricResult) -> str:
    if result.ratio is None:
        return "-"
    text = "inf" if math.isinf(result.ratio) else f"{result.ratio:.3f}"
    if result.ratio_ci is not None:
        text += f" [{result.ratio_ci.low:.3f}, {result.ratio_ci.high:.3f}]"
    return text


def _test(result: MetricResult) -> str:
    if result.method == "mann-whitney" and result.p_value is not None:
        return f"U p={result.p_value:.3g}"
    if result.method == "ci-overlap":
        return "CI overlap" if result.verdict == "same" and result.reason.startswith("not significant") \
            else "CIs apart"
    return "-"


def _header(comparison: Comparison) -> str:
    base, cand = comparison.baseline, comparison.candidate
    versions = (
        f"  versions {', '.join(base.versions) or '?'} -> {', '.join(cand.versions) or '?'}"
        if base.versions or cand.versions else ""
    )
    return (
        f"scenario {comparison.scenario}: baseline {base.system} ({len(base.runs)} runs, {base.label}) vs "
        f"candidate {cand.system} ({len(cand.runs)} runs, {cand.label}){versions}"
    )


def format_table(comparisons: Sequence[Comparison]) -> str:
    """The plain-text verdict table of every comparison (ASCII only, no trailing newline)."""
    lines: list[str] = []
    for comparison in comparisons:
        if lines:
            lines.append("")
        lines.append(_header(comparison))
        rows = [("metric", "baseline", "candidate", "ratio [95% CI]", "test", "verdict")]
        for r in comparison.results:
            rows.append((
                r.metric.key, f"{fmt_figure(r.baseline_median)} (n={len(r.baseline)})",
                f"{fmt_figure(r.candidate_median)} (n={len(r.candidate)})", _ratio(r), _test(r), _MARK[r.verdict],
            ))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        lines.extend(f"note: {note}" for note in comparison.notes)
        worse = comparison.worse
        lines.append(
            f"{len(worse)} worse: {', '.join(r.metric.key for r in worse)}" if worse else "no metric is worse"
        )
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(comparisons: Sequence[Comparison]) -> str:
    """The verdicts as Markdown (a section per system pair), e.g. for a CI job summary or a PR comment."""
    out = ["# confbench comparison", ""]
    for comparison in comparisons:
        out.append(f"## {_md(comparison.scenario)}: {_md(comparison.baseline.system)} → "
                   f"{_md(comparison.candidate.system)}")
        out.append("")
        out.append(_md(_header(comparison)))
        out.append("")
        out.append("| metric | baseline median | candidate median | ratio [95% CI] | test | verdict |")
        out.append("|---|---:|---:|---|---|---|")
        for r in comparison.results:
            verdict = f"**{r.verdict}**" if r.verdict == "worse" else r.verdict
            out.append(
                f"| `{r.metric.key}` ({_md(r.metric.unit)}) | {fmt_figure(r.baseline_median)} (n={len(r.baseline)}) "
                f"| {fmt_figure(r.candidate_median)} (n={len(r.candidate)}) | {_ratio(r)} | {_test(r)} | {verdict} |"
            )
        out.append("")
        out.extend(f"- {_md(note)}" for note in comparison.notes)
        if comparison.notes:
            out.append("")
    out.append("Verdicts need significance (Mann–Whitney U with ≥5 repetitions a side, else non-overlapping "
               "bootstrap 95% CIs) and the minimum effect; see docs/comparisons.md.")
    return "\n".join(out) + "\n"


def junit_cases(comparisons: Sequence[Comparison]) -> list[Case]:
    """One case per system × scenario × metric: ``worse`` fails, ``unknown`` and ``not comparable`` are
    skipped, the rest pass."""
    cases = []
    for comparison in comparisons:
        scenario = comparison.scenario.replace(".", "_")
        system = comparison.candidate.system.replace(".", "_")
        for r in comparison.results:
            text = r.describe()
            cases.append(Case(
                classname=f"confbench.{scenario}.{system}",
                name=r.metric.key,
                failure=text if r.verdict == "worse" else None,
                skipped=text if r.verdict in ("unknown", "not comparable") else None,
                details=text,
            ))
    return cases


def to_json(comparisons: Sequence[Comparison]) -> str:
    """Every comparison as JSON text (``--json``)."""
    worse = [f"{c.candidate.system}:{r.metric.key}" for c in comparisons for r in c.worse]
    document = {"comparisons": [c.to_dict() for c in comparisons], "worse": worse}
    return json.dumps(document, indent=2, allow_nan=False) + "\n"
