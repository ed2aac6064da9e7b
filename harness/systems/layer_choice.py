"""A subscriber's automatic choice of simulcast layer, for SFUs that leave it to the client (Janus VideoRoom).

Janus forwards the layer a subscriber asked for (``substream``) and never steps down on its own when the
subscriber's link degrades: its web clients do that from what they receive. :class:`LayerChoice` is such a
client's rule, fed a few times a second with the subscription's received and lost packets and the queue
standing on its path (:class:`StandingQueue`):

- a standing queue of at least ``queue_ms`` steps one layer down, as loss does: it is the link filling up,
  seen before its queue overflows (browsers' delay-based estimators react to the same growth);
- loss of at least ``loss_pct`` over the last ``window_s`` steps one layer down (at most once per
  ``settle_s``, the time a switch takes to show: the SFU waits for a key frame of the new layer, and the
  link's queue must drain). The
  threshold is a congestion level (browsers' loss-based estimators also treat loss under about 10 % as
  noise): a link with random loss, e.g. Wi-Fi, does not make a subscriber step down;
- ``hold_s`` without loss or queue steps one layer up (a probe); a probe that meets either within ``settle_s`` steps
  back down at once and doubles the hold (up to ``max_hold_s``), so a link that stays narrow is probed more
  rarely; a probe that lasts ``settle_s`` without either resets the hold, so a widened link is climbed layer by
  layer every ``hold_s``.

A probe that fails freezes the picture on Janus for about a second whatever the rule does: the probe starts
with the top layer's key frame (about nine average frames, as libvpx caps a real-time key frame), which alone
overflows a narrow link's queue; the key frame of the layer returned to then meets that full queue and is
repaired or asked for again. A browser's receiver NACKs and asks the same way, so the rule does not hide it.

It is pure (time is passed in), so its tests need no network.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["AUTO", "LayerChoice", "StandingQueue"]

AUTO = "auto"
"""The ``prefer_layer`` that lets the client choose (:class:`LayerChoice`)."""
MIN_PACKETS = 10
"""A tick with fewer packets says nothing about loss."""


@dataclass
class LayerChoice:
    """Which layer to ask for, given what arrives; starts at the top layer (what Janus sends by default)."""

    layers: tuple[str, ...] = ("q", "h", "f")
    loss_pct: float = 10.0
    window_s: float = 1.0
    settle_s: float = 2.0
    hold_s: float = 4.0
    max_hold_s: float = 8.0
    queue_ms: float = 50.0
    current: int = field(init=False)
    _hold: float = field(init=False)
    _changed_at: float = field(init=False, default=float("-inf"))
    _congested_at: float = field(init=False, default=float("-inf"))
    _probing: bool = field(init=False, default=False)
    _ticks: deque[tuple[float, int, int]] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("layers must not be empty")
        self.current = len(self.layers) - 1
        self._hold = self.hold_s

    @property
    def layer(self) -> str:
        """The layer asked for now."""
        return self.layers[self.current]

    def observe(self, now: float, packets: int, lost: int, queue_ms: float = 0.0) -> str | None:
        """Take one tick's counts (packets received and lost since the previous tick) and the queue standing
        on the path (:class:`StandingQueue`); the layer to ask for when it changes, else None."""
        self._ticks.append((now, packets, lost))
        while self._ticks and self._ticks[0][0] <= now - self.window_s:
            self._ticks.popleft()
        packets = sum(t[1] for t in self._ticks if t[0] > self._changed_at)
        lost = sum(t[2] for t in self._ticks if t[0] > self._changed_at)
        queued = queue_ms >= self.queue_ms
        if packets + lost < MIN_PACKETS and not queued:
            return None
        congested = queued or 100 * lost / (packets + lost) >= self.loss_pct
        since_change = now - self._changed_at
        if congested:
            self._congested_at = now
            # After a step down, loss goes on until the SFU has switched and the link's queue drained: wait
            # for that before stepping again. A probe that meets loss is undone at once: it is what froze.
            if self.current > 0 and (self._probing or since_change >= self.settle_s):
                if self._probing:  # the link is still narrow: wait longer before the next probe
                    self._hold = min(self._hold * 2, self.max_hold_s)
                self._probing = False
                return self._move(now, -1)
            return None
        if self._probing and since_change >= self.settle_s:
            self._probing = False  # the probe held: the next one (and the next fall) start from the short hold
            self._hold = self.hold_s
        calm = min(now - self._congested_at, since_change)
        if self.current < len(self.layers) - 1 and calm >= self._hold:
            self._probing = True
            return self._move(now, +1)
        return None

    def _move(self, now: float, step: int) -> str:
        self.current += step
        self._changed_at = now
        return self.layer


@dataclass
class StandingQueue:
    """The queue standing on a subscriber's path, in ms, from the transit minima of its streams
    (``harness.media.tap.TransitMinima``, one minimum per stream and tick).

    A stream's transit has an unknown constant in it (the sender's clock): its least value over the last
    ``base_window_s`` is taken as the empty path, and a tick's minimum above it is queue, CoDel's reading of a
    queue (a minimum over an interval rises only when every packet waited). A jump of ``jump_ms`` or more
    between ticks is a new time base, not a queue (the SFU switched the stream to another layer, or its
    sender restarted): that stream's history starts again. The answer is the largest queue of any stream.
    """

    base_window_s: float = 10.0
    jump_ms: float = 1000.0
    _history: dict[int, deque[tuple[float, float]]] = field(init=False, default_factory=dict)

    def observe(self, now: float, minima: Mapping[int, float]) -> float:
        """Take one tick's minima (ssrc -> ms); the queue now (0 when nothing says otherwise)."""
        queue = 0.0
        for ssrc, transit in minima.items():
            history = self._history.setdefault(ssrc, deque())
            if history and abs(transit - history[-1][1]) >= self.jump_ms:
                history.clear()
            history.append((now, transit))
            while history[0][0] <= now - self.base_window_s:
                history.popleft()
            queue = max(queue, transit - min(t for _, t in history))
        return queue

    def reset(self) -> None:
        """Forget every stream's empty path (after a layer switch, whose time base may differ)."""
        self._history.clear()
