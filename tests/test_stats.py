"""Tests for harness.analysis.stats: Mann–Whitney U against hand-worked and brute-force values, seeded bootstraps."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from harness.analysis.stats import (
    Interval,
    bootstrap_median_ci,
    bootstrap_ratio_ci,
    mann_whitney_u,
    median,
)


def brute_force_p(x: list[float], y: list[float]) -> float:
    """Two-sided exact p-value by enumerating every split of the pooled values (small samples only)."""
    pooled = x + y
    def u_of(indices: tuple[int, ...]) -> float:
        chosen = [pooled[i] for i in indices]
        rest = [pooled[i] for i in range(len(pooled)) if i not in indices]
        return sum((a > b) + 0.5 * (a == b) for a in chosen for b in rest)
    observed = u_of(tuple(range(len(x))))
    all_u = [u_of(c) for c in itertools.combinations(range(len(pooled)), len(x))]
    lower = sum(u <= observed for u in all_u) / len(all_u)
    upper = sum(u >= observed for u in all_u) / len(all_u)
    return min(1.0, 2 * min(lower, upper))


def test_exact_p_values_known_by_hand() -> None:
    # Complete separation: one arrangement in C(10, 5) = 252 on each side.
    result = mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert result.exact and result.u == 25
    assert result.p_value == pytest.approx(2 / 252)
    # With 3 and 3 even a complete separation is p = 2/20 = 0.1: never significant at 0.05.
    assert mann_whitney_u([4, 5, 6], [1, 2, 3]).p_value == pytest.approx(0.1)


def test_exact_matches_brute_force_enumeration() -> None:
    rng = np.random.default_rng(1)
    for n1, n2 in ((3, 4), (4, 4), (5, 3), (2, 6)):
        for _ in range(5):
            x = list(rng.normal(0, 1, n1))
            y = list(rng.normal(0.8, 1, n2))
            assert mann_whitney_u(x, y).p_value == pytest.approx(brute_force_p(x, y))


def test_ties_use_normal_approximation_and_identical_samples_are_p1() -> None:
    tied = mann_whitney_u([1, 1, 2, 2, 3, 3], [2, 2, 3, 3, 4, 4])
    assert not tied.exact and 0 < tied.p_value < 1
    assert mann_whitney_u([0, 0, 0], [0, 0, 0]).p_value == 1.0
    # Symmetric in its arguments.
    assert mann_whitney_u([2, 2, 3, 3, 4, 4], [1, 1, 2, 2, 3, 3]).p_value == pytest.approx(tied.p_value)


def test_large_samples_approximation_is_close_to_exact() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, 40), rng.normal(0.5, 1, 40)
    exact = mann_whitney_u(x, y)
    assert exact.exact
    approx = mann_whitney_u(np.append(x, x[0]), np.append(y, x[0]))  # one tie forces the approximation
    assert not approx.exact
    assert approx.p_value == pytest.approx(exact.p_value, rel=0.5)


def test_bootstrap_is_reproducible_and_sensible() -> None:
    values = [10.0, 11.0, 9.5, 10.5, 10.2, 9.8]
    first = bootstrap_median_ci(values)
    assert first == bootstrap_median_ci(values)
    assert first.contains(median(values))
    assert first.low >= min(values) and first.high <= max(values)
    assert bootstrap_median_ci([5.0]) == Interval(5.0, 5.0, 0.95)


def test_ratio_ci_covers_the_true_ratio_and_handles_zero() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(100, 3, 8)
    cand = rng.normal(130, 3, 8)
    interval = bootstrap_ratio_ci(base, cand)
    assert interval is not None and interval.contains(1.3) and not interval.contains(1.0)
    assert bootstrap_ratio_ci([0.0, 0.0], [0.0, 0.0]) == Interval(1.0, 1.0, 0.95)
    assert bootstrap_ratio_ci([0.0, 0.0], [1.0, 2.0]) is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])
    with pytest.raises(ValueError):
        bootstrap_median_ci([1.0, math.nan])
    with pytest.raises(ValueError):
        bootstrap_median_ci([1.0], level=1.5)
