"""Rankings: several systems on one scenario, ordered per headline metric, with verdicts between neighbours.

``confbench evaluate`` asks "which of these systems holds my meeting best?". For each headline metric
(:data:`HEADLINE`) every system's per-repetition values (the same values :mod:`harness.analysis.compare`
uses: each completed run's figure from its ``summary.json``) give a median with its bootstrap 95 % interval;
systems are ordered by that median, best first, and each system is compared with the one ranked just above it
by :func:`harness.analysis.compare.compare_metric` (same significance rules, same minimum effects). So a
ranking reads "reference 12 ms, janus 14 ms (same as reference), livekit 30 ms (worse than janus)".

Only completed runs count: a system whose every run was ``invalid``, ``failed`` or ``aborted`` is listed as
not ranked, with its runs' statuses. A system without the figure at all (p2p has no server, so no server CPU)
is listed as not measured.

Server CPU per forwarded stream is derived here, per run: the server's mean CPU (``sut_cpu_pct.mean``, % of one
core) divided by the media streams the participants received during the run (what the server forwarded),
counted from the run's ``streams`` table. It depends on the server's CPU budget (``--server-cpus``): two
neighbours whose servers had different budgets get the verdict ``not comparable`` on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from harness.analysis.compare import (
    METRICS,
    NOT_COMPARABLE,
    Metric,
    Side,
    budget_mismatch,
    compare_metric,
    make_side,
    min_effects,
)
from harness.analysis.runset import RunRecord
from harness.analysis.stats import Interval, bootstrap_median_ci, median
from harness.analysis.summary import received_streams
from harness.errors import StoreError
from harness.scenario.thresholds import lookup
from harness.store.reader import RunReader

__all__ = [
    "CPU_PER_STREAM",
    "HEADLINE",
    "Ranking",
    "Standing",
    "rank_metric",
    "rank_systems",
    "with_cpu_per_stream",
]

CPU_PER_STREAM = "sut_cpu_pct_per_stream"
"""The derived per-run figure: server CPU (% of one core) per forwarded stream."""

_BY_KEY = {metric.key: metric for metric in METRICS}
HEADLINE: tuple[Metric, ...] = (
    _BY_KEY["video_latency_ms.p50"],
    _BY_KEY["video_latency_ms.p95"],
    _BY_KEY["freezes_per_min"],
    _BY_KEY["packet_loss_pct"],
    _BY_KEY["join_ms.p50"],
    Metric(CPU_PER_STREAM, "Server CPU per forwarded stream", "% of one core", min_abs=0.05, budgeted=True),
)
"""The metrics an evaluation ranks, in page order."""


@dataclass(frozen=True, slots=True)
class Standing:
    """One system's place in the ranking of one metric."""

    system: str
    rank: int | None
    """1 for the best; None when the system is not ranked on this metric (see ``note``)."""
    values: tuple[float, ...] = ()
    median: float | None = None
    ci: Interval | None = None
    above: str | None = None
    """The system ranked just above (None for the first and for unranked systems)."""
    verdict: str | None = None
    """This system against ``above``: ``same``, ``worse`` (``better`` cannot happen: it ranks lower),
    ``unknown`` (fewer than 3 repetitions a side) or ``not comparable`` (server CPU under different budgets)."""
    reason: str = ""
    note: str = ""
    """Why the system is not ranked."""

    def __post_init__(self) -> None:
        if not self.system:
            raise ValueError("a standing needs a system")
        if self.rank is not None and self.rank < 1:
            raise ValueError(f"rank must be at least 1, got {self.rank}")


@dataclass(frozen=True, slots=True)
class Ranking:
    """Every system's standing on one metric, ranked ones first (best first), then the unranked."""

    metric: Metric
    standings: tuple[Standing, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (``evaluation.json``)."""
        return {
            "metric": self.metric.key, "label": self.metric.label, "unit": self.metric.unit,
            "lower_is_better": self.metric.lower_is_better,
            "standings": [
                {"system": s.system, "rank": s.rank, "values": list(s.values), "median": _json(s.median),
                 "ci": None if s.ci is None else [_json(s.ci.low), _json(s.ci.high)],
                 "above": s.above, "verdict": s.verdict, "reason": s.reason, "note": s.note}
                for s in self.standings
            ],
        }


def _json(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def rank_metric(metric: Metric, sides: Sequence[Side], *, min_effect: float = 0.10,
                seed: int | None = None) -> Ranking:
    """Rank ``sides`` (one per system) on ``metric``; ties in the median keep the order of ``sides``."""
    measured: list[tuple[float, int, Side, tuple[float, ...]]] = []
    by_system = {side.system: side for side in sides}
    unranked: list[Standing] = []
    for index, side in enumerate(sides):
        values = side.values(metric.key)
        if not side.runs:
            unranked.append(Standing(side.system, None, note=_no_completed_run(side)))
        elif not values:
            unranked.append(Standing(side.system, None, note="not measured: its runs carry no such figure"))
        else:
            measured.append((median(values), index, side, values))
    # Best first: ascending when lower is better, descending otherwise; the input order breaks ties.
    measured.sort(key=lambda item: (item[0] if metric.lower_is_better else -item[0], item[1]))
    boot: dict[str, Any] = {} if seed is None else {"seed": seed}
    ranked: list[Standing] = []
    for position, (mid, _, side, values) in enumerate(measured, start=1):
        standing = Standing(side.system, position, values, mid, bootstrap_median_ci(values, **boot))
        if ranked:
            above = ranked[-1]
            result = compare_metric(metric, above.values, values, min_effect=min_effect, seed=seed)
            verdict, reason = result.verdict, result.reason
            mismatch = budget_mismatch(by_system[above.system], side) if metric.budgeted else None
            if mismatch:
                verdict, reason = NOT_COMPARABLE, mismatch
            standing = replace(standing, above=above.system, verdict=verdict, reason=reason)
        ranked.append(standing)
    return Ranking(metric, (*ranked, *unranked))


def _no_completed_run(side: Side) -> str:
    if not side.excluded:
        return "no run"
    return "no completed run: " + "; ".join(side.excluded)


def rank_systems(groups: Sequence[tuple[str, Sequence[RunRecord]]], *, metrics: Sequence[Metric] = HEADLINE,
                 seed: int | None = None) -> list[Ranking]:
    """One :class:`Ranking` per metric of the systems in ``groups`` (``(system, its runs)``, in plan order).

    Minimum effects come from the scenario's ``[min_effect]`` table as in ``confbench compare``.
    """
    sides = [make_side(system, system, runs) for system, runs in groups]
    scenario: Mapping[str, Any] = next((run.scenario for _, runs in groups for run in runs), {})
    effects = min_effects(scenario)
    return [rank_metric(metric, sides, min_effect=effects.get(metric.key, 0.10), seed=seed) for metric in metrics]


def with_cpu_per_stream(run: RunRecord) -> RunRecord:
    """``run`` with :data:`CPU_PER_STREAM` added to its summary (null without a server or a received stream)."""
    if run.summary is None:
        return run
    cpu = lookup(run.summary, "sut_cpu_pct.mean")
    per_stream: float | None = None
    if cpu is not None:
        try:
            counts = received_streams(RunReader(run.run_dir).table("streams"))
        except StoreError:
            counts = {}
        streams = sum(counts.values())
        per_stream = round(float(cpu) / streams, 4) if streams else None
    return replace(run, summary={**run.summary, CPU_PER_STREAM: per_stream})

