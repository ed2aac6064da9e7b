"""How a sender's packets left: inter-departure times per stream, the burstiness figures of ``out`` rows.

A run should show whether its senders behaved like real clients (``harness.media.pacer``) or sent in bursts
(unpaced, or an event loop that lagged and then sent what had piled up). Each packetized sender
(``harness.media.packetize``) notes the moment every packet leaves; once a second the participant's stats
poll takes the interval's figures: the gaps between consecutive packets of the stream (the first gap spans
the previous interval's last packet), their p50, p95 and maximum in ms, and the share of packets sent within
:data:`BURST_GAP_S` of the previous one.

With the packets' RTP timestamps, it also keeps ``send_jitter_ms``: RFC 3550's interarrival jitter computed
on departures instead of arrivals, i.e. the jitter a receiver would measure behind a perfect network. It is
what the sender itself adds: zero when each packet leaves as long after the previous as its RTP time says
(a frame's packets share a timestamp, so pacing adds a little, as in a browser), large when packets leave
late against their timestamps (a lagging event loop, or RTP times that are not the capture times). A
receiver that adapts its playout (Chromium's jitter buffers) grows by about that much.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["BURST_GAP_S", "Departures", "departures_of"]

BURST_GAP_S = 0.001
"""A packet sent within this of its stream's previous one counts as part of a burst."""


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on a sorted list."""
    at = (len(ordered) - 1) * q
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


class Departures:
    """The departure times of one sender's packets since the last :meth:`take`.

    ``clock_rate`` is the stream's RTP clock rate (Hz); without it (or without timestamps given to
    :meth:`note`) there is no ``send_jitter_ms``.
    """

    def __init__(self, clock_rate: int | None = None) -> None:
        self._times: list[float] = []
        self._last: float | None = None
        self._clock_rate = clock_rate
        self._previous: tuple[float, int] | None = None  # (departure, RTP timestamp) of the last packet
        self._jitter: float | None = None  # seconds, RFC 3550's running estimate (kept across intervals)

    def note(self, now: float | None = None, timestamp: int | None = None) -> None:
        """A packet left at ``now`` (monotonic seconds; default: now) with RTP ``timestamp`` (optional)."""
        now = time.monotonic() if now is None else now
        self._times.append(now)
        if timestamp is None or not self._clock_rate:
            return
        if self._previous is not None:
            sent, stamped = self._previous
            ticks = (timestamp - stamped) & 0xFFFFFFFF
            if ticks >= 0x80000000:
                ticks -= 0x100000000  # an older timestamp (32-bit wrap-around)
            d = abs((now - sent) - ticks / self._clock_rate)
            self._jitter = d if self._jitter is None else self._jitter + (d - self._jitter) / 16
        self._previous = (now, timestamp)

    def take(self) -> dict[str, Any]:
        """The interval's columns (``send_gap_p50_ms`` …); None each when fewer than two packets are known."""
        times, self._times = self._times, []
        if self._last is not None:
            times.insert(0, self._last)
        if times:
            self._last = times[-1]
        gaps = sorted(max(b - a, 0.0) for a, b in zip(times, times[1:], strict=False))
        jitter = 1000 * self._jitter if self._jitter is not None and len(times) > 1 else None
        if not gaps:
            return {"send_gap_p50_ms": None, "send_gap_p95_ms": None, "send_gap_max_ms": None,
                    "send_burst_pct": None, "send_jitter_ms": None}
        return {"send_gap_p50_ms": 1000 * _quantile(gaps, 0.5), "send_gap_p95_ms": 1000 * _quantile(gaps, 0.95),
                "send_gap_max_ms": 1000 * gaps[-1],
                "send_burst_pct": 100 * sum(1 for g in gaps if g < BURST_GAP_S) / len(gaps),
                "send_jitter_ms": jitter}


def departures_of(sender: Any) -> Departures | None:
    """The departure log of an aiortc ``RTCRtpSender`` (None: not a packetized sender, nothing is noted)."""
    return getattr(sender, "_confbench_departures", None)
