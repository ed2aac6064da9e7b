"""Pass/fail thresholds over summary figures, in the spirit of k6's ``thresholds``.

A scenario lists conditions such as ``"video_latency_ms.p95" = "< 150"``; after a run each one is evaluated
against ``summary.json`` and the result is stored next to the figures. The keys a threshold may address are
the summary's keys (:data:`KNOWN_KEYS`), which this module names so that both the summary and the scenario
loader agree on them without importing each other.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DISTRIBUTION_FIGURES",
    "DISTRIBUTION_METRICS",
    "KNOWN_KEYS",
    "NUMBER_METRICS",
    "OPS",
    "Threshold",
    "evaluate",
    "lookup",
    "parse_threshold",
]

DISTRIBUTION_METRICS: tuple[str, ...] = (
    "join_ms",
    "video_latency_ms",
    "audio_latency_ms",
    "rtt_ms",
    "jitter_ms",
    "fps",
    "bitrate_kbps",
    "audio_mos",
    "video_psnr_db",
)
"""Summary keys whose value is a distribution ``{"p50", "p95", "p99", "mean", "samples"}``."""

DISTRIBUTION_FIGURES: tuple[str, ...] = ("p50", "p95", "p99", "mean", "samples")
"""The figures of a distribution, addressed as ``<metric>.<figure>``."""

NUMBER_METRICS: tuple[str, ...] = (
    "packet_loss_pct",
    "frame_loss_pct",
    "freezes_per_min",
    "loadgen_rss_mb_max",
    "duration_s",
)
"""Summary keys whose value is a plain number (or null)."""

_GROUPED_KEYS: tuple[str, ...] = (
    "participants.joined",
    "participants.failed",
    "participants.dropped",
    "sut_cpu_pct.mean",
    "sut_cpu_pct.max",
    "loadgen_cpu_pct.mean",
    "loadgen_cpu_pct.max",
    "machine_cpu_pct.mean",
    "machine_cpu_pct.max",
    "machine_steal_pct.mean",
    "machine_steal_pct.max",
    "machine_other_cpu_pct.mean",
    "machine_other_cpu_pct.max",
    "outages.recovery_ms_max",
    "outages.reconnect_ms_max",
    "outages.unrecovered",
    "outages.dropped",
)

KNOWN_KEYS: frozenset[str] = frozenset(
    [f"{metric}.{figure}" for metric in DISTRIBUTION_METRICS for figure in DISTRIBUTION_FIGURES]
    + list(NUMBER_METRICS)
    + list(_GROUPED_KEYS)
)
"""Every summary key a threshold may address, dotted for nested values (``video_latency_ms.p95``)."""

OPS: Mapping[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
"""The comparison operators a condition may use."""

# Two-character operators first so that "<=" is not read as "<" followed by "=150".
_CONDITION_RE = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True, slots=True)
class Threshold:
    """One condition on one summary figure: passes when ``<value of key> <op> <bound>`` holds."""

    key: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.key not in KNOWN_KEYS:
            raise ValueError(_unknown_key_message(self.key))
        if self.op not in OPS:
            raise ValueError(f"threshold operator {self.op!r} is not one of {' '.join(OPS)}")
        if isinstance(self.bound, bool) or not isinstance(self.bound, (int, float)):
            raise ValueError(f"threshold bound must be a number, got {self.bound!r}")
        if not math.isfinite(self.bound):
            raise ValueError(f"threshold bound must be finite, got {self.bound!r}")
        # Normalise 150 to 150.0 so equal thresholds compare and hash equal.
        object.__setattr__(self, "bound", float(self.bound))

    @property
    def expr(self) -> str:
        """The threshold as one readable expression, e.g. ``video_latency_ms.p95 < 150``."""
        return f"{self.key} {self.op} {_format_bound(self.bound)}"

    def check(self, value: float) -> bool:
        """Whether ``value`` satisfies this threshold."""
        return bool(OPS[self.op](value, self.bound))


def _format_bound(bound: float) -> str:
    # "150" rather than "150.0": the expression should read like what the user wrote.
    if bound.is_integer() and abs(bound) < 1e15:
        return str(int(bound))
    return repr(bound)


def _unknown_key_message(key: str) -> str:
    hint = ""
    if key in DISTRIBUTION_METRICS:
        hint = f" (a distribution: use {key}.p50, .p95, .p99, .mean or .samples)"
    return f"unknown threshold key {key!r}{hint}; known keys: {', '.join(sorted(KNOWN_KEYS))}"


def parse_threshold(key: str, condition: str) -> Threshold:
    """Parse a condition such as ``"< 150"`` on summary key ``key`` into a :class:`Threshold`.

    Raises ``ValueError`` with a message saying what is wrong (unknown key, no operator, bad number); the
    scenario loader adds the file and field.
    """
    if not isinstance(key, str):
        raise ValueError(f"threshold key must be a string, got {key!r}")
    key = key.strip()
    if key not in KNOWN_KEYS:
        raise ValueError(_unknown_key_message(key))
    if not isinstance(condition, str):
        raise ValueError(f"threshold condition for {key!r} must be a string like '< 150', got {condition!r}")
    match = _CONDITION_RE.match(condition)
    if match is None:
        raise ValueError(
            f"threshold condition {condition!r} for {key!r} must be an operator ({' '.join(OPS)}) "
            "followed by a number, e.g. '< 150'"
        )
    op, number = match.groups()
    try:
        bound = float(number)
    except ValueError:
        raise ValueError(
            f"threshold condition {condition!r} for {key!r}: {number!r} is not a number"
        ) from None
    if not math.isfinite(bound):
        raise ValueError(f"threshold condition {condition!r} for {key!r}: the bound must be finite")
    return Threshold(key, op, bound)


def lookup(summary: Mapping[str, Any], key: str) -> float | None:
    """The number at dotted ``key`` in ``summary``, or None when absent, null, NaN or not a number."""
    value: Any = summary
    for part in key.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def evaluate(thresholds: Sequence[Threshold], summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Evaluate each threshold against ``summary``: a list of ``{"expr", "value", "ok"}`` in order.

    A figure that is missing or null (no samples) fails its threshold with ``value`` None: a run that did
    not measure something has not shown that it meets the bound.
    """
    results: list[dict[str, Any]] = []
    for threshold in thresholds:
        value = lookup(summary, threshold.key)
        ok = value is not None and threshold.check(value)
        results.append({"expr": threshold.expr, "value": value, "ok": ok})
    return results
