"""A receive-side bandwidth estimate that rises on a sender's probes, as a browser's does.

aiortc's ``RemoteBitrateEstimator`` ports WebRTC's inter-arrival filter, overuse detector and AIMD rate
control, but not the part of WebRTC's abs-send-time estimator that measures probe clusters: a burst the
sender spaces at a higher rate (padding) that arrives at that rate proves the link carries it, and the
estimate jumps there at once. Without it the estimate can only creep up to 1.5 times what arrives
(``AimdRateControl._clamp_bitrate``), so an SFU that probes with padding before forwarding a higher layer
(LiveKit) never sees its probe succeed, and a subscriber stepped down once stays down.

:class:`ProbingEstimator` is aiortc's estimator plus that measurement, in a simple form: over the packets of
the last :data:`WINDOW_MS` of arrival, the rate at which they were sent (abs-send-time) and the rate at which
they arrived. When both are above the current estimate and the link kept up (arrival rate at least
:data:`KEPT_UP` of the send rate: a queue that builds up means the link is the limit, not the probe), the
estimate moves up to the lower of the two and is reported at once, and again every :data:`REPORT_MS` for
:data:`CONFIRM_MS` (browsers report a changing estimate every 200 ms or so). Decreases stay aiortc's
(overuse detection). Only the receivers given it by :func:`harness.rtc.remb.estimate` run it.
"""

from __future__ import annotations

from collections import deque

from aiortc.rate import RemoteBitrateEstimator

__all__ = ["ProbingEstimator"]

WINDOW_MS = 200
"""The arrival window a burst's rates are measured over (LiveKit's shortest probe lasts 200 ms)."""
MIN_PACKETS = 10
"""Fewer packets in the window say nothing about a rate."""
MIN_SPAN_MS = 100
"""Both spans (sending, arrival) must be at least this long: a single frame's burst is no probe."""
KEPT_UP = 0.9
"""Arrival rate over send rate at or above which the link carried the burst."""
RISE = 1.1
"""A measured rate must exceed the estimate by this factor to move it."""
REPORT_MS = 100
"""Shortest time between two reports."""
CONFIRM_MS = 500
"""How long after a rise the estimate is reported every :data:`REPORT_MS` (a probing SFU wants several reports
within its probe: LiveKit three, ``pkg/sfu/bwe/remotebwe/channel_observer.go``); otherwise aiortc's pace."""
_WRAP = 1 << 24  # abs-send-time is 24 bits of 6.18 fixed-point seconds
_UNIT_MS = 1000 / (1 << 18)


class ProbingEstimator(RemoteBitrateEstimator):
    """aiortc's receive-side estimator that also rises to a burst's rate when the link carried it."""

    def __init__(self) -> None:
        super().__init__()
        self._window: deque[tuple[float, int, int]] = deque()  # (send ms, arrival ms, bytes)
        self._send_ms = 0.0
        self._last_abs: int | None = None
        self._reported_ms = -REPORT_MS
        self._risen_ms = float("-inf")

    def add(self, arrival_time_ms: int, abs_send_time: int, payload_size: int,
            ssrc: int) -> tuple[int, list[int]] | None:
        """Feed one packet; the estimate to report (bits per second, SSRCs), or None."""
        result = super().add(arrival_time_ms=arrival_time_ms, abs_send_time=abs_send_time,
                             payload_size=payload_size, ssrc=ssrc)
        if self._last_abs is not None:
            step = (abs_send_time - self._last_abs) % _WRAP
            if step < _WRAP // 2:  # forwards (a reordered packet is placed back, not counted twice as a wrap)
                self._send_ms += step * _UNIT_MS
            else:
                self._send_ms -= (_WRAP - step) * _UNIT_MS
        self._last_abs = abs_send_time
        window = self._window
        window.append((self._send_ms, arrival_time_ms, payload_size))
        while window and window[0][1] < arrival_time_ms - WINDOW_MS:
            window.popleft()
        if arrival_time_ms - self._reported_ms < REPORT_MS:
            return result
        rate = self._burst_rate()
        current = self.rate_control.current_bitrate
        if rate is not None and rate > RISE * current:
            self.rate_control.set_estimate(rate, arrival_time_ms)
            self._risen_ms = arrival_time_ms
        elif result is None and arrival_time_ms - self._risen_ms > CONFIRM_MS:
            return None
        # A rise, and the estimate again for a while after it: the sender judges a probe by several reports.
        self.last_update_ms = self._reported_ms = arrival_time_ms
        return self.rate_control.current_bitrate, list(self.ssrcs)

    def _burst_rate(self) -> int | None:
        """The rate the window's packets were sent and arrived at, when the link carried it (else None)."""
        window = self._window
        if len(window) < MIN_PACKETS:
            return None
        sends = [p[0] for p in window]
        send_span = max(sends) - min(sends)
        arrival_span = window[-1][1] - window[0][1]
        if send_span < MIN_SPAN_MS or arrival_span < MIN_SPAN_MS:
            return None
        bits = 8 * sum(p[2] for p in list(window)[1:])  # the first packet opens the span
        send_bps = bits * 1000 / send_span
        arrival_bps = bits * 1000 / arrival_span
        if arrival_bps < KEPT_UP * send_bps:
            return None
        return int(min(send_bps, arrival_bps))
