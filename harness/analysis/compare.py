"""Comparisons: a baseline's runs against a candidate's runs → one verdict per headline metric.

The unit of evidence is the *repetition*: for every completed run the metric's value is read from its
``summary.json`` (e.g. ``video_latency_ms.p95`` is that run's p95 over all its frames), so a side with K
repetitions gives K values. Per metric:

- the effect is the ratio of medians, ``median(candidate values) / median(baseline values)``, with a seeded
  percentile-bootstrap 95 % confidence interval (:func:`harness.analysis.stats.bootstrap_ratio_ci`);
- significance: with at least :data:`MWU_MIN_REPETITIONS` repetitions on each side, a two-sided
  Mann–Whitney U test at :data:`ALPHA`; with fewer (but at least :data:`MIN_REPETITIONS`), the bootstrap
  95 % intervals of the two medians must not overlap; with fewer on a side the verdict is ``unknown``;
- the verdict is ``worse`` or ``better`` only when the difference is significant *and* at least the minimum
  effect: ``|candidate − baseline| ≥ max(min_effect × |baseline|, metric.min_abs)`` (min_effect 10 % unless the
  scenario's ``[min_effect]`` table says otherwise; ``min_abs`` keeps figures near zero, such as 0 % vs
  0.01 % loss, from counting as infinite ratios); otherwise ``same``.

Only ``completed`` runs count: a failed, aborted or ``invalid`` run (a saturated load generator) measured
something else than the system. Both sides must come from the same resolved scenario (equal
``scenario_sha256``); anything else is refused with a :class:`CompareError`.

Server CPU is a figure of the budget as much as of the server: a server held to 0.5 cores
(``--server-cpus``, manifest ``server_cpus``) cannot spend more than 50 %, so against an unlimited run it
would always look ``better``. When the sides' runs were held to different budgets (or a side mixes budgets),
the metrics that depend on it (:attr:`Metric.budgeted`) get the verdict ``not comparable`` with the budgets
as the reason, and the comparison says so in a note; every other metric is compared as usual.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.analysis.runset import RunRecord, find_runs
from harness.analysis.stats import (
    Interval,
    bootstrap_median_ci,
    bootstrap_ratio_ci,
    mann_whitney_u,
)
from harness.errors import CompareError, UsageError
from harness.scenario.thresholds import lookup

__all__ = [
    "ALPHA",
    "DEFAULT_MIN_EFFECT",
    "METRICS",
    "MIN_REPETITIONS",
    "MWU_MIN_REPETITIONS",
    "NOT_COMPARABLE",
    "VERDICTS",
    "Comparison",
    "Metric",
    "MetricResult",
    "Side",
    "budget_mismatch",
    "compare",
    "compare_metric",
    "compare_paths",
    "make_side",
    "resolve_sides",
]

ALPHA = 0.05
"""Significance level of the Mann–Whitney U test."""

MWU_MIN_REPETITIONS = 5
"""Repetitions per side from which the rank test is used: with 5 and 5 the smallest two-sided p-value is
2/252 ≈ 0.008; with 3 and 3 it is 0.1, so no difference could ever be significant at 0.05."""

MIN_REPETITIONS = 3
"""Below this many repetitions on a side the verdict is ``unknown``. With 2 and 2, two noisy sides fall apart
completely (non-overlapping ranges) by chance one time in three; with 3 and 3, one time in ten, and the
minimum effect must hold as well."""

DEFAULT_MIN_EFFECT = 0.10
"""The smallest relative change that can be a verdict, unless the scenario's ``[min_effect]`` sets another."""

NOT_COMPARABLE = "not comparable"
"""The verdict of a server-CPU metric when the sides' servers had different CPU budgets."""

VERDICTS: tuple[str, ...] = ("better", "worse", "same", "unknown", NOT_COMPARABLE)


@dataclass(frozen=True, slots=True)
class Metric:
    """A headline figure compared between runs: a dotted summary key and which way is better."""

    key: str
    label: str
    unit: str
    lower_is_better: bool = True
    min_abs: float = 0.0
    """An absolute change smaller than this is never a verdict (guards figures that sit near zero)."""
    budgeted: bool = False
    """True for a figure bounded by the server's CPU budget (server CPU): not comparable across budgets."""

    def __post_init__(self) -> None:
        if not self.key or not self.label:
            raise ValueError("a metric needs a key and a label")
        if not (self.min_abs >= 0 and math.isfinite(self.min_abs)):
            raise ValueError(f"{self.key}: min_abs must be a finite number >= 0, got {self.min_abs}")


METRICS: tuple[Metric, ...] = (
    Metric("video_latency_ms.p50", "Video latency p50", "ms", min_abs=2.0),
    Metric("video_latency_ms.p95", "Video latency p95", "ms", min_abs=2.0),
    Metric("audio_latency_ms.p50", "Audio latency p50", "ms", min_abs=2.0),
    Metric("audio_latency_ms.p95", "Audio latency p95", "ms", min_abs=2.0),
    Metric("join_ms.p50", "Join time p50", "ms", min_abs=5.0),
    Metric("join_ms.p95", "Join time p95", "ms", min_abs=5.0),
    Metric("rtt_ms.p50", "Round-trip time p50", "ms", min_abs=1.0),
    Metric("jitter_ms.p95", "Jitter p95", "ms", min_abs=1.0),
    Metric("fps.p50", "Frame rate p50", "fps", lower_is_better=False, min_abs=0.5),
    Metric("audio_mos.p50", "Audio MOS p50", "MOS", lower_is_better=False, min_abs=0.05),
    Metric("video_psnr_db.p50", "Video PSNR p50", "dB", lower_is_better=False, min_abs=0.5),
    Metric("packet_loss_pct", "Packet loss", "%", min_abs=0.1),
    Metric("frame_loss_pct", "Frame loss", "%", min_abs=0.1),
    Metric("freezes_per_min", "Freezes", "per stream-minute", min_abs=0.1),
    Metric("sut_cpu_pct.mean", "Server CPU mean", "% of one core", min_abs=1.0, budgeted=True),
    Metric("participants.failed", "Participants failed", "participants", min_abs=1.0),
)
"""The metrics every comparison reports, in table order. Bitrate is left out on purpose: the scenario fixes
it (no congestion control), so a change there is a change of settings, not a better or worse system."""


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: the completed runs of one system, and what was left out and why."""

    label: str
    system: str
    runs: tuple[RunRecord, ...]
    excluded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.label or not self.system:
            raise ValueError("a side needs a label and a system")

    def values(self, key: str) -> tuple[float, ...]:
        """The per-repetition values of summary key ``key`` (runs without the figure are left out)."""
        found = (lookup(run.summary or {}, key) for run in self.runs)
        return tuple(float(v) for v in found if v is not None and math.isfinite(v))

    @property
    def budgets(self) -> tuple[float | None, ...]:
        """The distinct server CPU budgets its runs were held to (cores; None: no budget), sorted."""
        return tuple(sorted({run.server_cpus for run in self.runs}, key=lambda c: (c is not None, c or 0.0)))

    @property
    def versions(self) -> tuple[str, ...]:
        """The distinct system versions its runs recorded."""
        seen: list[str] = []
        for run in self.runs:
            if run.system_version and run.system_version not in seen:
                seen.append(run.system_version)
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class MetricResult:
    """The comparison of one metric between a baseline and a candidate side."""

    metric: Metric
    baseline: tuple[float, ...]
    candidate: tuple[float, ...]
    verdict: str
    reason: str
    min_effect: float
    method: str = "none"
    """``mann-whitney``, ``ci-overlap`` or ``none`` (not enough data)."""
    baseline_median: float | None = None
    candidate_median: float | None = None
    ratio: float | None = None
    ratio_ci: Interval | None = None
    baseline_ci: Interval | None = None
    candidate_ci: Interval | None = None
    p_value: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {VERDICTS}")
        if self.method not in ("mann-whitney", "ci-overlap", "none"):
            raise ValueError(f"unknown method {self.method!r}")

    def describe(self) -> str:
        """One line with values, effect, significance and the threshold: the JUnit failure message."""
        unit = self.metric.unit
        if self.baseline_median is None or self.candidate_median is None:
            return f"{self.metric.key} {self.verdict}: {self.reason}"
        ratio = _fmt_ratio(self.ratio)
        ci = f", 95% CI {_fmt_ratio(self.ratio_ci.low)}–{_fmt_ratio(self.ratio_ci.high)}" if self.ratio_ci else ""
        if self.method == "mann-whitney":
            test = f"Mann-Whitney U p={self.p_value:.3g} (alpha {ALPHA:g})"
        elif self.method == "ci-overlap":
            test = "95% CIs of the medians " + ("overlap" if self.reason.startswith("not significant") else
                                                  "do not overlap")
        else:
            test = "no test"
        return (
            f"{self.metric.key} {self.verdict}: candidate median {fmt_figure(self.candidate_median)} {unit} "
            f"(n={len(self.candidate)}) vs baseline {fmt_figure(self.baseline_median)} {unit} "
            f"(n={len(self.baseline)}), "
            f"ratio {ratio}{ci}; {test}; minimum effect {self.min_effect:.0%} "
            f"(and {fmt_figure(self.metric.min_abs)} {unit}); {self.reason}"
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every metric compared between the baseline and the candidate of one system pair on one scenario."""

    scenario: str
    baseline: Side
    candidate: Side
    results: tuple[MetricResult, ...]
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.scenario:
            raise ValueError("a comparison needs a scenario name")

    @property
    def worse(self) -> tuple[MetricResult, ...]:
        """The metrics on which the candidate is worse."""
        return tuple(r for r in self.results if r.verdict == "worse")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (``--json``)."""
        return {
            "scenario": self.scenario,
            "baseline": _side_dict(self.baseline),
            "candidate": _side_dict(self.candidate),
            "notes": list(self.notes),
            "metrics": [_result_dict(r) for r in self.results],
        }


def _side_dict(side: Side) -> dict[str, Any]:
    return {
        "label": side.label,
        "system": side.system,
        "versions": list(side.versions),
        "runs": [str(run.run_dir) for run in side.runs],
        "excluded": list(side.excluded),
    }


def _interval(interval: Interval | None) -> list[float] | None:
    return None if interval is None else [_json_float(interval.low), _json_float(interval.high)]


def _json_float(value: float | None) -> Any:
    # JSON has no infinity: a ratio to a zero baseline is written as the string "inf".
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return round(value, 6)


def _result_dict(result: MetricResult) -> dict[str, Any]:
    return {
        "metric": result.metric.key,
        "unit": result.metric.unit,
        "lower_is_better": result.metric.lower_is_better,
        "verdict": result.verdict,
        "reason": result.reason,
        "method": result.method,
        "baseline_values": list(result.baseline),
        "candidate_values": list(result.candidate),
        "baseline_median": _json_float(result.baseline_median),
        "candidate_median": _json_float(result.candidate_median),
        "baseline_ci": _interval(result.baseline_ci),
        "candidate_ci": _interval(result.candidate_ci),
        "ratio": _json_float(result.ratio),
        "ratio_ci": _interval(result.ratio_ci),
        "p_value": _json_float(result.p_value),
        "min_effect": result.min_effect,
        "min_abs": result.metric.min_abs,
    }


def fmt_figure(value: float | None) -> str:
    """A figure as the comparison's outputs print it: 3 significant digits, '-' for none, 'inf'."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _fmt_ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.3f}"


def compare_metric(
    metric: Metric,
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    min_effect: float = DEFAULT_MIN_EFFECT,
    seed: int | None = None,
) -> MetricResult:
    """Compare the per-repetition ``baseline`` and ``candidate`` values of ``metric`` (see the module doc)."""
    if not (0 <= min_effect < 10 and math.isfinite(min_effect)):
        raise ValueError(f"min_effect must be a fraction such as 0.1, got {min_effect}")
    base, cand = tuple(float(v) for v in baseline), tuple(float(v) for v in candidate)
    boot: dict[str, Any] = {} if seed is None else {"seed": seed}
    if len(base) < MIN_REPETITIONS or len(cand) < MIN_REPETITIONS:
        return MetricResult(
            metric, base, cand, "unknown",
            f"needs at least {MIN_REPETITIONS} repetitions with this figure on each side "
            f"(baseline {len(base)}, candidate {len(cand)})",
            min_effect,
        )
    base_med = _median(base)
    cand_med = _median(cand)
    if base_med == 0:
        ratio = 1.0 if cand_med == 0 else math.inf
    else:
        ratio = cand_med / base_med
    ratio_ci = bootstrap_ratio_ci(base, cand, **boot)
    base_ci = bootstrap_median_ci(base, **boot)
    cand_ci = bootstrap_median_ci(cand, **boot)
    p_value: float | None = None
    if min(len(base), len(cand)) >= MWU_MIN_REPETITIONS:
        method = "mann-whitney"
        p_value = mann_whitney_u(cand, base).p_value
        significant = p_value < ALPHA
        why_not = f"not significant (p={p_value:.3g} >= {ALPHA:g})"
    else:
        method = "ci-overlap"
        significant = not base_ci.overlaps(cand_ci)
        why_not = "not significant (the medians' 95% CIs overlap)"
    needed = max(min_effect * abs(base_med), metric.min_abs)
    change = cand_med - base_med
    same = MetricResult(
        metric, base, cand, "same", why_not, min_effect, method=method, baseline_median=base_med,
        candidate_median=cand_med, ratio=ratio, ratio_ci=ratio_ci, baseline_ci=base_ci, candidate_ci=cand_ci,
        p_value=p_value,
    )
    if not significant:
        return same
    if abs(change) < needed:
        reason = f"significant but smaller than the minimum effect ({fmt_figure(abs(change))} < {fmt_figure(needed)})"
        return replace(same, reason=reason)
    higher = change > 0
    verdict = "worse" if higher == metric.lower_is_better else "better"
    direction = "higher" if higher else "lower"
    reason = (f"significant and {direction} by {fmt_figure(abs(change))} {metric.unit} "
              f"(at least {fmt_figure(needed)} needed)")
    return replace(same, verdict=verdict, reason=reason)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2.0


def min_effects(scenario: Mapping[str, Any]) -> dict[str, float]:
    """The scenario's per-metric minimum effects (``[min_effect]`` in its TOML), as recorded in the manifest."""
    table = scenario.get("min_effect")
    if not isinstance(table, Mapping):
        return {}
    return {
        str(k): float(v) for k, v in table.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def compare(
    baseline: Side,
    candidate: Side,
    *,
    metrics: Sequence[Metric] = METRICS,
    min_effect: Mapping[str, float] | None = None,
    default_min_effect: float = DEFAULT_MIN_EFFECT,
    seed: int | None = None,
) -> Comparison:
    """Compare every metric of ``candidate`` with ``baseline`` (same scenario required).

    ``min_effect`` overrides the minimum effect per metric key; by default it comes from the scenario the runs
    recorded. Raises :class:`CompareError` when the two sides ran different scenarios.
    """
    scenario = _common_scenario(baseline, candidate)
    effects = dict(min_effects(baseline.runs[0].scenario)) if baseline.runs else {}
    effects.update(min_effect or {})
    mismatch = budget_mismatch(baseline, candidate)
    results = tuple(
        _not_comparable(result, mismatch) if mismatch and metric.budgeted else result
        for metric in metrics
        for result in [compare_metric(
            metric, baseline.values(metric.key), candidate.values(metric.key),
            min_effect=effects.get(metric.key, default_min_effect), seed=seed,
        )]
    )
    notes = [f"baseline: {text}" for text in baseline.excluded]
    notes += [f"candidate: {text}" for text in candidate.excluded]
    if mismatch:
        notes.append(f"server CPU not compared: {mismatch}")
    return Comparison(scenario=scenario, baseline=baseline, candidate=candidate, results=results,
                      notes=tuple(notes))


def _budget_text(budgets: Sequence[float | None]) -> str:
    return " and ".join("no budget" if cpus is None else f"{cpus:g} core(s)" for cpus in budgets)


def budget_mismatch(baseline: Side, candidate: Side) -> str | None:
    """Why the sides' server CPU cannot be compared (their servers' CPU budgets differ), or None."""
    base, cand = baseline.budgets, candidate.budgets
    if base == cand and len(base) <= 1:
        return None
    if not baseline.runs or not candidate.runs:
        return None  # nothing to compare anyway: the verdicts are unknown
    return (f"the servers had different CPU budgets (baseline {_budget_text(base)}, candidate "
            f"{_budget_text(cand)}; --server-cpus)")


def _not_comparable(result: MetricResult, why: str) -> MetricResult:
    # The figures stay (they are what was measured); only the verdict is withheld.
    return replace(result, verdict=NOT_COMPARABLE, reason=why)


def _common_scenario(baseline: Side, candidate: Side) -> str:
    runs = [*baseline.runs, *candidate.runs]
    if not runs:
        raise CompareError("neither side has a completed run to compare")
    digests = {run.scenario_sha256 or f"name:{run.scenario_name}" for run in runs}
    if len(digests) > 1:
        names = sorted({f"{run.scenario_name or '?'} ({(run.scenario_sha256 or '?')[:12]})" for run in runs})
        raise CompareError(
            f"cannot compare runs of different scenarios: {', '.join(names)}; compare runs of one scenario "
            "(same file and overrides)"
        )
    return runs[0].scenario_name or "unnamed"


def make_side(label: str, system: str, runs: Sequence[RunRecord]) -> Side:
    """A side of ``runs``: the completed ones with a summary count, the others are listed as left out."""
    completed = tuple(run for run in runs if run.status == "completed" and run.summary is not None)
    excluded = tuple(
        f"{run.run_id} left out (status {run.status}{'' if run.summary is not None else ', no summary'})"
        for run in runs if not (run.status == "completed" and run.summary is not None)
    )
    return Side(label=label, system=system, runs=completed, excluded=excluded)


def _by_system(runs: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.system, []).append(run)
    return groups


def _resolve(argument: str, within: Path | None) -> tuple[str, list[RunRecord]]:
    path = Path(argument)
    if path.exists():
        return str(path), find_runs(path)
    if within is None:
        raise UsageError(
            f"{argument}: no such run or run set folder (to name a system of a comparison run, add --in DIR)"
        )
    runs = [run for run in find_runs(within) if run.system == argument]
    if not runs:
        known = ", ".join(sorted({run.system for run in find_runs(within)}))
        raise UsageError(f"{within} has no runs of system {argument!r}; it has: {known}")
    return f"{argument} in {within}", runs


def resolve_sides(baseline: str, candidate: str, within: Path | None = None) -> list[tuple[Side, Side]]:
    """Turn the command line's BASELINE and CANDIDATE into pairs of sides, one pair per system compared.

    Each argument is a run folder, a run set folder (or any folder of runs), or, with ``within``, a system
    name within that comparison run. When each side holds one system, that pair is compared whatever the
    names; when a side holds several, systems are paired by name (a nightly set of A and B against last
    night's A and B).
    """
    base_label, base_runs = _resolve(baseline, within)
    cand_label, cand_runs = _resolve(candidate, within)
    base_groups, cand_groups = _by_system(base_runs), _by_system(cand_runs)
    if len(base_groups) == 1 and len(cand_groups) == 1:
        (base_system, base_list), = base_groups.items()
        (cand_system, cand_list), = cand_groups.items()
        return [(make_side(base_label, base_system, base_list), make_side(cand_label, cand_system, cand_list))]
    common = [name for name in cand_groups if name in base_groups]
    if not common:
        raise UsageError(
            f"no system to pair: baseline has {', '.join(sorted(base_groups))}; candidate has "
            f"{', '.join(sorted(cand_groups))} (name one system each, e.g. with --in DIR)"
        )
    return [
        (make_side(base_label, name, base_groups[name]), make_side(cand_label, name, cand_groups[name]))
        for name in common
    ]


def compare_paths(
    baseline: str, candidate: str, *, within: Path | None = None, seed: int | None = None
) -> list[Comparison]:
    """:func:`resolve_sides` then :func:`compare` for every pair."""
    return [compare(base, cand, seed=seed) for base, cand in resolve_sides(baseline, candidate, within)]
