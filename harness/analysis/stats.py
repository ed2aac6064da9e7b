"""The statistics behind comparisons: a seeded bootstrap and the Mann–Whitney U test, in numpy alone.

Comparisons work on *per-repetition values* (one number per run, e.g. a run's p95 video latency), so the
samples here are small (a handful to a few dozen). That decides the methods: a percentile bootstrap for
confidence intervals, which assumes no distribution, and a rank test (Mann–Whitney U) for significance, with
the exact null distribution when there are no ties and the normal approximation with tie correction when
there are. The bootstrap is seeded so that the same results always give the same intervals and verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "Interval",
    "MannWhitney",
    "bootstrap_median_ci",
    "bootstrap_ratio_ci",
    "mann_whitney_u",
    "median",
]

DEFAULT_RESAMPLES = 4000
"""Bootstrap resamples: enough that the 2.5 % and 97.5 % percentiles move by well under 1 % between seeds."""

DEFAULT_SEED = 20261128
"""Seed of every bootstrap unless the caller gives one: results are reproducible byte for byte."""

# Exact U distributions are counted with a table of size n1 * n2 per step; past this the normal
# approximation is within a rounding error of the exact p-value anyway.
_EXACT_MAX = 50

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval ``[low, high]`` at ``level`` (e.g. 0.95)."""

    low: float
    high: float
    level: float

    def __post_init__(self) -> None:
        if not 0 < self.level < 1:
            raise ValueError(f"confidence level must be between 0 and 1, got {self.level}")
        if math.isnan(self.low) or math.isnan(self.high) or self.low > self.high:
            raise ValueError(f"interval bounds must be ordered numbers, got [{self.low}, {self.high}]")

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share at least one point."""
        return self.low <= other.high and other.low <= self.high

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (bounds included)."""
        return self.low <= value <= self.high


@dataclass(frozen=True, slots=True)
class MannWhitney:
    """Result of a two-sided Mann–Whitney U test of ``x`` against ``y``.

    ``u`` is the statistic of ``x`` (the number of pairs in which ``x`` is larger, ties counting one half);
    ``exact`` says whether the p-value comes from the exact null distribution or the normal approximation.
    """

    u: float
    p_value: float
    exact: bool

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_value <= 1.0:
            raise ValueError(f"p-value must be in [0, 1], got {self.p_value}")


def _clean(values: Sequence[float] | FloatArray, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite numbers (leave out missing values first)")
    return array


def median(values: Sequence[float] | FloatArray) -> float:
    """The median of ``values`` (at least one finite number)."""
    array = _clean(values, "values")
    if array.size == 0:
        raise ValueError("the median of no values is undefined")
    return float(np.median(array))


def _resampled_medians(array: FloatArray, resamples: int, rng: np.random.Generator) -> FloatArray:
    # One matrix of indices, one median per row: a loop-free bootstrap.
    indices = rng.integers(0, array.size, size=(resamples, array.size))
    return np.asarray(np.median(array[indices], axis=1), dtype=np.float64)


def _percentile_interval(estimates: FloatArray, level: float) -> Interval:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail])
    return Interval(float(low), float(high), level)


def _check_level(level: float, resamples: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")
    if resamples < 100:
        raise ValueError(f"a bootstrap needs at least 100 resamples, got {resamples}")


def bootstrap_median_ci(
    values: Sequence[float] | FloatArray,
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Percentile bootstrap confidence interval of the median of ``values``.

    With one value the interval is that value (nothing is known about its spread); callers decide whether
    that is enough.
    """
    _check_level(level, resamples)
    array = _clean(values, "values")
    if array.size == 0:
        raise ValueError("a confidence interval needs at least one value")
    if array.size == 1:
        return Interval(float(array[0]), float(array[0]), level)
    rng = np.random.default_rng(seed)
    return _percentile_interval(_resampled_medians(array, resamples, rng), level)


def bootstrap_ratio_ci(
    baseline: Sequence[float] | FloatArray,
    candidate: Sequence[float] | FloatArray,
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval | None:
    """Percentile bootstrap CI of ``median(candidate) / median(baseline)``, each group resampled on its own.

    Returns None when the ratio is undefined in some resample (a baseline median of zero) and the candidate
    is not zero there too: a ratio to nothing has no interval. 0 / 0 counts as 1 (no change).
    """
    _check_level(level, resamples)
    base = _clean(baseline, "baseline")
    cand = _clean(candidate, "candidate")
    if base.size == 0 or cand.size == 0:
        raise ValueError("a ratio needs at least one value on each side")
    rng = np.random.default_rng(seed)
    base_medians = _resampled_medians(base, resamples, rng)
    cand_medians = _resampled_medians(cand, resamples, rng)
    zero = base_medians == 0
    if np.any(zero & (cand_medians != 0)):
        return None
    ratios = np.ones_like(base_medians)
    np.divide(cand_medians, base_medians, out=ratios, where=~zero)
    return _percentile_interval(ratios, level)


def _average_ranks(values: FloatArray) -> FloatArray:
    """Ranks 1..n with tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < values.size:
        end = start
        while end + 1 < values.size and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def _exact_u_distribution(n1: int, n2: int) -> FloatArray:
    """Probability of each U = 0 … n1·n2 under the null hypothesis, for samples without ties.

    Counts arrangements with the recurrence c(m, n, u) = c(m - 1, n, u - n) + c(m, n - 1, u): the largest
    of the m + n values belongs either to the first sample (adding n to U) or to the second.
    """
    # table[m][n] is an array over u; built up one (m, n) at a time in floats (counts reach C(100, 50)).
    table: list[list[FloatArray]] = [[np.zeros(1) for _ in range(n2 + 1)] for _ in range(n1 + 1)]
    for m in range(n1 + 1):
        for n in range(n2 + 1):
            counts = np.zeros(m * n + 1, dtype=np.float64)
            if m == 0 or n == 0:
                counts[0] = 1.0
            else:
                from_first = table[m - 1][n]
                counts[n : n + from_first.size] += from_first
                from_second = table[m][n - 1]
                counts[: from_second.size] += from_second
            table[m][n] = counts
    counts = table[n1][n2]
    return counts / counts.sum()


def mann_whitney_u(x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> MannWhitney:
    """Two-sided Mann–Whitney U test: do ``x`` and ``y`` come from the same distribution?

    Exact p-value when neither sample is larger than 50 and there are no ties; otherwise the normal
    approximation with tie correction and continuity correction. Identical samples (every value tied) give
    p = 1.
    """
    a = _clean(x, "x")
    b = _clean(y, "y")
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann–Whitney U needs at least one value in each sample")
    combined = np.concatenate([a, b])
    ranks = _average_ranks(combined)
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    _, tie_counts = np.unique(combined, return_counts=True)
    ties = bool(np.any(tie_counts > 1))
    if not ties and max(n1, n2) <= _EXACT_MAX:
        dist = _exact_u_distribution(n1, n2)
        k = int(round(u))
        lower = float(dist[: k + 1].sum())
        upper = float(dist[k:].sum())
        return MannWhitney(u=u, p_value=min(1.0, 2.0 * min(lower, upper)), exact=True)
    n = n1 + n2
    mean = n1 * n2 / 2.0
    tie_term = float(np.sum(tie_counts.astype(np.float64) ** 3 - tie_counts)) / (n * (n - 1))
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:
        return MannWhitney(u=u, p_value=1.0, exact=False)
    z = max(0.0, abs(u - mean) - 0.5) / math.sqrt(variance)
    return MannWhitney(u=u, p_value=min(1.0, math.erfc(z / math.sqrt(2.0))), exact=False)
