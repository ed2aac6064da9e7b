"""What one direction of a link does to each packet: loss, rate limit with a bounded queue, delay and jitter.

Pure logic with no I/O, standard library only (the wire process runs it; unit tests drive it with made-up
clocks). :meth:`Shaper.admit` is called once per packet, in arrival order, and answers either ``None``
(dropped) or the time the packet leaves the link. The wire then holds the packet until that time.

The rate limit is a token bucket whose tokens are bits: it fills at ``rate_kbps`` up to :data:`BURST_S` of
traffic (at least :data:`MIN_BURST_BYTES`), a packet leaves when the bucket holds its size, and packets leave
in arrival order (a FIFO queue). A packet that would wait longer than ``queue_ms`` in that queue is dropped
instead (tail drop, as a router with a full buffer does): ``queue_ms`` is the queue's size in time, i.e.
``rate × queue_ms`` bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.scenario.network import Shape

BURST_S = 0.005
"""Traffic the bucket lets through at once after an idle spell, in seconds at the rate (5 ms)."""
MIN_BURST_BYTES = 3000
"""The bucket holds at least two full-size packets, else a large packet could never leave at once."""


@dataclass(slots=True)
class Counters:
    """What a shaper did since the counters were last taken."""

    packets: int = 0
    """Packets admitted (that will leave the link)."""
    bytes: int = 0
    lost: int = 0
    """Packets dropped by the loss models (random or bursty)."""
    queue_drops: int = 0
    """Packets dropped because the rate limiter's queue was full."""
    max_queue_ms: float = 0.0
    """Longest wait in the rate limiter's queue among admitted packets."""


class Shaper:
    """One direction of one link: admits packets and says when each leaves (see the module docstring)."""

    def __init__(self, shape: Shape, rng: random.Random | None = None) -> None:
        self.shape = shape
        self._rng = rng or random.Random(0)
        self._bad = False  # Gilbert–Elliott state
        self._depart = 0.0  # when the previous packet left the rate limiter
        self._tokens = 0.0  # bits in the bucket at that moment
        self.counters = Counters()

    def set_shape(self, shape: Shape) -> None:
        """Change what the link does from now on; packets already admitted keep their times.

        The queue and the loss state carry over, as on a real link whose conditions change.
        """
        self.shape = shape

    def take_counters(self) -> Counters:
        """The counters since the last call, and start new ones."""
        counters, self.counters = self.counters, Counters()
        return counters

    def admit(self, now: float, size: int) -> float | None:
        """Admit a packet of ``size`` bytes arriving at ``now`` (seconds): its departure time, or None."""
        shape = self.shape
        if self._lost(shape):
            self.counters.lost += 1
            return None
        t = now
        if shape.rate_kbps is not None:
            leave = self._queue(shape, now, size)
            if leave is None:
                self.counters.queue_drops += 1
                return None
            t = leave
        if shape.delay_ms:
            delay = shape.delay_ms
            if shape.jitter_ms:
                delay += self._rng.uniform(-shape.jitter_ms, shape.jitter_ms)
            t += delay / 1000.0
        self.counters.packets += 1
        self.counters.bytes += size
        return t

    def _lost(self, shape: Shape) -> bool:
        rng = self._rng
        lost = False
        burst = shape.burst
        if burst is not None:
            # The state moves first, then the packet meets the state's loss (netem's gemodel order).
            if self._bad:
                self._bad = rng.random() * 100 >= burst.r_pct
            else:
                self._bad = rng.random() * 100 < burst.p_pct
            loss = burst.loss_bad_pct if self._bad else burst.loss_good_pct
            lost = loss > 0 and rng.random() * 100 < loss
        if shape.loss_pct and rng.random() * 100 < shape.loss_pct:
            lost = True
        return lost

    def _queue(self, shape: Shape, now: float, size: int) -> float | None:
        assert shape.rate_kbps is not None
        rate = shape.rate_kbps * 1000.0  # bit/s
        bucket = max(MIN_BURST_BYTES * 8.0, rate * BURST_S)
        bits = size * 8.0
        start = max(now, self._depart)  # FIFO: not before the packet ahead of it has left
        tokens = min(bucket, self._tokens + (start - self._depart) * rate)
        leave = start if tokens >= bits else start + (bits - tokens) / rate
        wait = leave - now
        if wait * 1000.0 > shape.queue_ms:
            return None
        self._tokens = max(tokens - bits, 0.0) if leave == start else 0.0
        self._depart = leave
        self.counters.max_queue_ms = max(self.counters.max_queue_ms, wait * 1000.0)
        return leave
