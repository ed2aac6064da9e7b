"""Paced sending, as a real client's pacer does: a frame's packets leave spread over time, not in one burst.

A browser does not write an encoded frame's packets to the socket as fast as it can: libwebrtc's pacer
(``modules/pacing``) sends them at a *pacing rate*, 2.5 times its *bandwidth estimate* (not its encoder's
bitrate), with bounded bursts (it may run ahead by 40 ms of that rate, never by more than 63 kB) and a queue
that must drain within 2 s (beyond that it sends faster). Audio is not held back by the budget. The estimate
of a browser whose link is not its bottleneck is far above what it sends (:func:`pacing_rate_bps`), so on
such a link a key frame usually leaves in one burst and a delta frame always does. The harness's native
senders (``harness.media.packetize``) used to send every packet of a frame at once; a receiver that adapts
its playout to what it sees (Chromium's jitter buffer) then saw a sender no browser is. This module is that
pacer, with the same constants:

- :class:`PacedQueue`: one sender's packets waiting, with its own rate and *media debt* (bytes sent ahead
  of the rate). A packet leaves while the debt is within the burst allowance; the debt drains at the rate.
- :class:`Pacer`: all the queues of one event loop served by **one** timer, armed for the earliest queue
  that is due, so a media host with hundreds of senders has one timer handle, not one task or timer per
  packet. A push to a queue that may send sends at once, on the caller's stack (no task switch).

Per-sender queues stand for libwebrtc's per-connection pacer: a native participant's connection carries
one video stream, so the two are the same here. ``harness.media.departures`` measures what came out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["BURST_S", "MAX_BURST_BYTES", "MAX_QUEUE_S", "PACING_FACTOR", "START_PROBE_BPS", "PacedQueue", "Pacer",
           "pacer", "pacing_rate_bps"]

log = logging.getLogger(__name__)

PACING_FACTOR = 2.5
"""Pacing rate over the sender's bandwidth estimate (libwebrtc's ``kDefaultPaceMultiplier``)."""
START_PROBE_BPS = 900_000
"""The bandwidth estimate a browser's sender reaches on a link that carries more than it sends: GCC starts at
300 kbit/s and probes at once at 3 and 6 times that; on an open link the estimate becomes what the probes
carried. Measured (``availableOutgoingBitrate``): Chromium publishing 160x90 video at 150 kbit/s through
Janus on loopback held 0.87 and 1.63 Mbit/s for the whole call; this is the first probe's level, the lower."""
BURST_S = 0.040
"""How far ahead of the pacing rate a queue may send at once (libwebrtc's default burst interval)."""
MAX_BURST_BYTES = 63_000
"""The cap on a burst, whatever the rate (libwebrtc's ``kMaxBurstSize``)."""
MAX_QUEUE_S = 2.0
"""A queue is drained within this long: beyond it the queue sends faster than the pacing rate
(libwebrtc's ``kMaxExpectedQueueLength``)."""
MIN_SLEEP_S = 0.001
"""The timer is never armed closer than this: packets due within it leave together."""
PACKET_OVERHEAD_BYTES = 40
"""What a packet weighs beyond its RTP payload (RTP header with extensions, SRTP tag), for the budget."""

def pacing_rate_bps(target_bps: float) -> float:
    """The pacing rate of a browser sending ``target_bps`` on a link that is not its bottleneck.

    libwebrtc paces at :data:`PACING_FACTOR` times its bandwidth estimate. A sender limited by its encoder's
    bitrate, not the network, keeps the estimate its start-up probes gave (:data:`START_PROBE_BPS`) and raises
    it while the link takes more, up to 1.5 times what it sends plus 10 kbit/s (GCC's cap on a sender that is
    application-limited). Pacing at 2.5 times the encoder's bitrate instead, as this module once did, spread a
    160x90 key frame over 75-240 ms where Chromium sent its own in under a millisecond, and Chromium's video
    jitter estimator, which models delay against frame size, then held native senders' video 40-50 ms where
    it held browsers' 12 ms (docs/browser.md).

    A link narrower than the estimate is not modelled: a browser's estimate would fall to it, so a native
    sender behind one bursts more than a browser would, and the link's own queue spreads the packets.
    """
    return PACING_FACTOR * max(START_PROBE_BPS, 1.5 * target_bps + 10_000)


T = TypeVar("T")


class _Timer(Protocol):
    def cancel(self) -> Any: ...


Schedule = Callable[[float, Callable[[], None]], _Timer]
"""``schedule(delay_s, callback)``: call ``callback`` once after ``delay_s`` (``loop.call_later``)."""


class PacedQueue(Generic[T]):
    """One sender's packets waiting for the pacer; ``send(item)`` puts one on the wire and must not raise."""

    def __init__(self, pacer: Pacer, rate_bps: float, send: Callable[[T], None]) -> None:
        if rate_bps <= 0:
            raise ValueError(f"rate_bps must be positive, got {rate_bps}")
        self.rate_bps = rate_bps
        """The pacing rate (bits per second), e.g. :data:`PACING_FACTOR` times the target bitrate."""
        self.send = send
        self.sent = 0
        """Packets sent so far."""
        self._pacer = pacer
        self._items: deque[tuple[T, int, float]] = deque()  # (packet, bytes, when queued)
        self._bytes = 0
        self._debt = 0.0
        self._updated: float | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting."""
        return self._bytes

    def push(self, item: T, size: int) -> None:
        """Queue one packet of ``size`` bytes; it is sent now if the budget allows, else by the pacer's timer."""
        if self.closed:
            return
        self._items.append((item, size, self._pacer._clock()))
        self._bytes += size
        self._pacer._pushed(self)

    def close(self) -> None:
        """Drop what is waiting and send nothing more."""
        self.closed = True
        self._items.clear()
        self._bytes = 0

    def _drain(self, now: float) -> float | None:
        """Send what the budget allows at ``now``; the time the next packet is due, None when empty."""
        rate = self.rate_bps / 8
        items = self._items
        if items:
            # What is queued must be gone MAX_QUEUE_S after the oldest packet came: faster when it would not.
            left = max(MAX_QUEUE_S - (now - items[0][2]), MIN_SLEEP_S)
            rate = max(rate, self._bytes / left)
        # The timer serves a little early (MIN_SLEEP_S), so a later push may come with an earlier ``now``.
        if self._updated is not None and now > self._updated:
            self._debt = max(0.0, self._debt - rate * (now - self._updated))
        if self._updated is None or now > self._updated:
            self._updated = now
        burst = min(rate * BURST_S, MAX_BURST_BYTES)
        while items and self._debt <= burst:
            item, size, _ = items.popleft()
            self._bytes -= size
            self._debt += size
            self.sent += 1
            self.send(item)
        if not items:
            return None
        return now + (self._debt - burst) / rate


class Pacer:
    """The queues of one event loop and the one timer that serves them.

    ``clock`` (seconds, monotonic) and ``schedule`` are the event loop's by default; tests pass fakes.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, schedule: Schedule | None = None) -> None:
        self._clock = clock
        self._schedule = schedule
        self._active: dict[PacedQueue[Any], None] = {}  # insertion-ordered: queues are served in turn
        self._timer: _Timer | None = None
        self._due: float | None = None
        self.wakeups = 0
        """Timer wake-ups so far (a cost figure: one per due time, not one per packet)."""

    def queue(self, rate_bps: float, send: Callable[[T], None]) -> PacedQueue[T]:
        """A new queue paced at ``rate_bps``."""
        return PacedQueue(self, rate_bps, send)

    @property
    def waiting(self) -> int:
        """Queues holding packets."""
        return len(self._active)

    def _pushed(self, queue: PacedQueue[Any]) -> None:
        if queue in self._active:
            return  # already waiting for the timer: the budget is spent, the packet goes in turn
        now = self._clock()
        due = self._serve(queue, now)
        if due is not None:
            self._active[queue] = None
            self._arm(due, now)

    def _serve(self, queue: PacedQueue[Any], now: float) -> float | None:
        if queue.closed:
            return None
        try:
            return queue._drain(now)
        except Exception:  # a sender's bug must not stop the timer that serves every other sender
            log.exception("a paced queue failed; it is closed")
            queue.close()
            return None

    def _arm(self, due: float, now: float) -> None:
        if self._due is not None and self._due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._due = due
        delay = max(due - now, MIN_SLEEP_S)
        schedule = self._schedule or asyncio.get_running_loop().call_later
        self._timer = schedule(delay, self._wake)

    def _wake(self) -> None:
        self._timer, self._due = None, None
        self.wakeups += 1
        # Packets due within the timer's granularity leave now rather than after one more wake-up.
        now = self._clock()
        soon = now + MIN_SLEEP_S
        earliest: float | None = None
        for queue in list(self._active):
            due = self._serve(queue, soon)
            if due is None:
                del self._active[queue]
            elif earliest is None or due < earliest:
                earliest = due
        if earliest is not None:
            self._arm(earliest, now)


_pacers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pacer] = weakref.WeakKeyDictionary()


def pacer() -> Pacer:
    """The running event loop's pacer (one per loop: one per media host)."""
    loop = asyncio.get_running_loop()
    found = _pacers.get(loop)
    if found is None:
        found = _pacers[loop] = Pacer(schedule=loop.call_later)
    return found
