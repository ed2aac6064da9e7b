"""Whether a resource figure sampled once a minute levelled off, or keeps growing: a leak check for long runs.

A process that leaks grows for as long as it runs; one that does not grows while it warms up (imports, caches,
buffers, allocator arenas) and then stays level. So a long series is judged by its slope over the last half
(least squares, per minute) against a tolerance, and the slope over the first minutes is reported beside it
for scale. A short series (a few minutes in CI) has no meaningful halves: its growth from the first minute to
the last must stay under a bound instead.

Series are per-minute *medians* (``benchmarks/churn.py`` samples several times a minute). Under churn a process
holds more sockets and tasks while a newcomer joins and fewer while a leaver is not yet replaced; the median
shrugs off both, while a leak raises it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_MINUTES_FOR_SLOPE = 6
"""Fewer minutes than this are judged by their growth against a bound, not by the slope of their last half."""


@dataclass(frozen=True, slots=True)
class Growth:
    """The verdict on one series."""

    first: float
    last: float
    early_slope: float
    """Per minute, over the first minutes (up to 5, at most half the series)."""
    late_slope: float
    """Per minute, over the last half (0 for a series judged by its bound)."""
    levelled: bool
    rule: str
    """What was checked, in words, e.g. ``late slope 0.1/min <= 0.5/min``."""


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against their index (0 for fewer than two values)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def judge(values: Sequence[float], tolerance_per_min: float, bound: float) -> Growth:
    """Judge a per-minute series: levelled when its last half's slope is within ``tolerance_per_min`` (series of
    :data:`MIN_MINUTES_FOR_SLOPE` minutes or more), or when it grew by at most ``bound`` from the first minute to
    the last (shorter series)."""
    if not values:
        raise ValueError("no values to judge")
    early = slope(values[: max(2, min(5, len(values) // 2))])
    if len(values) >= MIN_MINUTES_FOR_SLOPE:
        late = slope(values[len(values) // 2:])
        return Growth(values[0], values[-1], early, late, late <= tolerance_per_min,
                      f"late slope {late:+.2f}/min <= {tolerance_per_min:g}/min")
    grown = values[-1] - values[0]
    return Growth(values[0], values[-1], early, 0.0, grown <= bound, f"growth {grown:+.1f} <= {bound:g}")
