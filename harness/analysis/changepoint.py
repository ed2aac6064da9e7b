"""Change points in a series of measurements: E-divisive means (Matteson & James, 2014), in numpy.

The method, as this module implements it:

1. For a segment ``Z[a:b]`` and every split ``τ`` leaving at least ``min_size`` points on each side, with
   ``X = Z[a:τ]`` (m points) and ``Y = Z[τ:b]`` (k points), the energy statistic with exponent α = 1 is

       Ê(X, Y) = 2/(m k) Σ|Xi − Yj| − 1/C(m,2) Σ_{i<l}|Xi − Xl| − 1/C(k,2) Σ_{j<l}|Yj − Yl|

   and the split's score is ``Q̂ = m k / (m + k) · Ê``. Ê is zero when both sides come from one distribution
   and grows with any difference between them (mean, spread or shape), without assuming a distribution.
2. Bisection: the split with the largest Q̂ over all current segments is the candidate change point.
3. Significance by permutation: the points are shuffled *within* each current segment ``permutations``
   times (seeded), the largest Q̂ is recomputed each time, and the candidate is accepted when
   ``p = (#{shuffled Q̂ ≥ observed} + 1) / (permutations + 1)`` is at most ``significance``. Then the segment
   is split and step 2 repeats; the first candidate that is not significant ends the search.

One simplification against the paper: the paper also searches the segment's end κ (comparing ``Z[a:τ]`` with
``Z[τ:κ]``); here κ is the end of the segment. Over a bisection this finds the same change points in the
series nightly benchmarks produce (steps between stable levels), at O(n) per segment instead of O(n²).

Distances over a segment come from prefix sums of the distance matrix, so every split of a segment is scored
in one vectorised pass.

Why ours and not a library (both were run on the same series: the test suite's steps, noise and nightly
histories, plus a one-night outlier and a growing spread; ``tests/test_analysis_reference.py`` holds ours):

- MongoDB's ``signal-processing-algorithms`` (the same E-divisive means, built for CI performance tests) found
  exactly our change points on all 13 series, about 2.5 times faster. But it pins NumPy below 2, Python to
  3.11, setuptools and gevent (which Locust also pins) and pulls structlog and PyYAML; it shuffles with NumPy's
  global random state, so its answer is reproducible only by seeding the whole process; and it returns bare
  indices, without the p-value and score that ``confbench history`` prints.
- ``ruptures`` has no E-divisive means or significance test: its penalised searches (PELT, binary
  segmentation) need a penalty chosen per series. With an RBF cost and a penalty of 3 it matched all 13
  series, with least squares 10 or 11 of 13 (it split the outlier night out, and a growing spread into three);
  a penalty tuned on our tests is not a significance level a reader can rely on.

The 50-odd lines here are cheaper than either dependency and keep the method the docs describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ChangePoint", "e_divisive"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A change before point ``index``: ``values[index]`` is the first of the new level.

    ``before`` and ``after`` are the means of the segments on either side (in the final segmentation),
    ``p_value`` the permutation test's p-value when the point was accepted, ``q`` its energy score.
    """

    index: int
    p_value: float
    q: float
    before: float
    after: float

    def __post_init__(self) -> None:
        if self.index < 1:
            raise ValueError(f"a change point needs points before it, got index {self.index}")
        if not 0 < self.p_value <= 1:
            raise ValueError(f"p_value must be in (0, 1], got {self.p_value}")

    @property
    def relative_change(self) -> float | None:
        """``after / before − 1``, or None when the level before was zero."""
        return None if self.before == 0 else self.after / self.before - 1.0


def _best_split(segment: FloatArray, min_size: int) -> tuple[float, int] | None:
    """(largest Q̂, its split offset within the segment), or None when the segment is too short to split."""
    n = segment.size
    if n < 2 * min_size:
        return None
    distances = np.abs(segment[:, None] - segment[None, :])
    prefix = np.zeros((n + 1, n + 1))
    prefix[1:, 1:] = distances.cumsum(axis=0).cumsum(axis=1)
    tau = np.arange(min_size, n - min_size + 1)
    m = tau.astype(np.float64)
    k = (n - tau).astype(np.float64)
    # Sums over blocks of the distance matrix; a block on the diagonal counts each pair twice.
    between = prefix[tau, n] - prefix[tau, tau]
    within_x = prefix[tau, tau] / 2.0
    within_y = (prefix[n, n] - prefix[tau, n] - prefix[n, tau] + prefix[tau, tau]) / 2.0
    energy = 2.0 * between / (m * k) - within_x / (m * (m - 1) / 2.0) - within_y / (k * (k - 1) / 2.0)
    q = m * k / (m + k) * energy
    best = int(np.argmax(q))
    return float(q[best]), int(tau[best])


def _strongest(values: FloatArray, bounds: Sequence[tuple[int, int]], min_size: int) -> tuple[float, int, int]:
    """Over all segments: (largest Q̂, segment number, absolute split index); Q̂ is −inf when none splits."""
    best = (-np.inf, -1, -1)
    for number, (start, end) in enumerate(bounds):
        found = _best_split(values[start:end], min_size)
        if found is not None and found[0] > best[0]:
            best = (found[0], number, start + found[1])
    return best


def e_divisive(
    values: Sequence[float] | FloatArray,
    *,
    min_size: int = 3,
    significance: float = 0.05,
    permutations: int = 199,
    seed: int = 0,
) -> list[ChangePoint]:
    """The change points of ``values`` (a series in time order), in index order (see the module doc).

    ``min_size`` is the fewest points a level may have; with fewer than ``2 × min_size`` points nothing can be
    found. The permutation test is seeded, so the same series always gives the same answer.
    """
    if min_size < 2:
        raise ValueError(f"min_size must be at least 2 (a level needs a spread), got {min_size}")
    if not 0 < significance < 1:
        raise ValueError(f"significance must be between 0 and 1, got {significance}")
    if permutations < 19:
        raise ValueError(f"at least 19 permutations are needed for p <= 0.05, got {permutations}")
    series = np.asarray(values, dtype=np.float64)
    if series.ndim != 1 or not np.all(np.isfinite(series)):
        raise ValueError("values must be a flat series of finite numbers")
    rng = np.random.default_rng(seed)
    bounds: list[tuple[int, int]] = [(0, series.size)]
    accepted: list[tuple[int, float, float]] = []
    while True:
        observed, segment, split = _strongest(series, bounds, min_size)
        if segment < 0:
            break
        exceed = 0
        for _ in range(permutations):
            shuffled = series.copy()
            for start, end in bounds:
                shuffled[start:end] = rng.permutation(series[start:end])
            if _strongest(shuffled, bounds, min_size)[0] >= observed:
                exceed += 1
        p_value = (exceed + 1) / (permutations + 1)
        if p_value > significance:
            break
        accepted.append((split, p_value, observed))
        start, end = bounds.pop(segment)
        bounds[segment:segment] = [(start, split), (split, end)]
    edges = sorted([0, series.size, *(index for index, _, _ in accepted)])
    means = {edges[i]: float(series[edges[i]:edges[i + 1]].mean()) for i in range(len(edges) - 1)}
    result = []
    for index, p_value, q in sorted(accepted):
        previous = max(edge for edge in edges if edge < index)
        result.append(ChangePoint(index=index, p_value=p_value, q=q, before=means[previous], after=means[index]))
    return result
