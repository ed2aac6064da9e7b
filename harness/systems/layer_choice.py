"""A subscriber's automatic choice of simulcast layer, for SFUs that leave it to the client (Janus VideoRoom).

Janus forwards the layer a subscriber asked for (``substream``) and never steps down on its own when the
subscriber's link degrades: its web clients do that from what they receive. :class:`LayerChoice` is such a
client's rule, fed ten times a second with the subscription's received and lost packets and the queue
standing on its path (:class:`StandingQueue`). The link is *congested* when

- a queue of at least ``queue_ms`` stands on it: the link filling up, seen before its queue overflows
  (browsers' delay-based estimators react to the same growth), or
- at least ``loss_pct`` of the packets of the last ``window_s`` were lost. The threshold is a congestion level
  (browsers' loss-based estimators also treat loss under about 10 % as noise): a link with random loss, e.g.
  Wi-Fi, does not make a subscriber step down.

Congestion makes the subscriber **fall to the lowest layer** (at most once per ``settle_s``, the time a switch
takes to show, unless it was a probe or a return, undone at once); ``settle_s`` without congestion then
**returns** it to the layer below the one that congested. ``hold_s`` without congestion, counted from the last
fall or probe, **probes** one layer up; a probe that meets congestion doubles the hold (up to ``max_hold_s``),
so a link that stays narrow is probed more rarely, and a probe that lasts ``settle_s`` resets it, so a widened
link is climbed a layer every ``hold_s``.

Why the lowest layer, and not the next one down: on Janus a layer switch costs a key frame, and behind a
congested link it arrives at a full queue. Janus switches at the first key frame of the layer asked for and
keeps forwarding the old layer until then; the queue it filled (200 ms in ``scenarios/rate-drop-simulcast.toml``)
drains only at the link's rate less what the new layer sends, and a key frame that meets it loses packets whose
repairs queue behind it too. The probe is the worst case: the top layer's key frame (about nine average frames,
as libvpx caps a real-time key frame: 16 KB at 480x270 400 kbit/s) alone overflows such a queue. Stepping one
layer down, the middle layer's key frame (5 KB) met that full queue and the picture froze 0.77-1.19 s until a
repair or a fresh key frame got through (three runs, 2026-12-07 11:00 UTC); the lowest layer's key frame is
one or two packets, and with it the queue drains nearly twice as fast (a 300 kbit/s link carrying 110 kbit/s
of the lowest layer and audio, against 190 with the middle one). The layer below the congested one then comes
back on an empty link. A browser's receiver repairs and asks for key frames the same way: the rule
only chooses what it asks Janus for.

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
    why: str = field(init=False, default="")
    """Why the layer last changed (for the run's events)."""
    _hold: float = field(init=False)
    _changed_at: float = field(init=False, default=float("-inf"))
    _held_from: float = field(init=False, default=float("-inf"))
    _congested_at: float = field(init=False, default=float("-inf"))
    _probing: bool = field(init=False, default=False)
    _returning: bool = field(init=False, default=False)
    _return_to: int | None = field(init=False, default=None)  # the layer below the one that congested
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
        loss_pct = 100 * lost / (packets + lost) if packets + lost else 0.0
        congested = queued or loss_pct >= self.loss_pct
        since_change = now - self._changed_at
        if congested:
            self._congested_at = now
            # After a step down, loss goes on until the SFU has switched and the link's queue drained: wait
            # for that before stepping again.
            if self.current > 0 and (self._probing or self._returning or since_change >= self.settle_s):
                # Fall to the lowest layer, and come back to the one below the layer that congested once the
                # link is calm (see the module's docstring). A probe that meets congestion is undone at once
                # (it is what froze) and doubles the hold: the link is still narrow.
                failed = " (probe failed)" if self._probing else " (return failed)" if self._returning else ""
                if self._probing:
                    self._hold = min(self._hold * 2, self.max_hold_s)
                self._probing = self._returning = False
                self._return_to = self.current - 1 if self.current > 1 else None
                self.why = (f"queue {queue_ms:.0f} ms" if queued else
                            f"loss {loss_pct:.0f} % of {packets + lost} packets") + failed
                return self._move(now, -self.current)
            return None
        if self._probing and since_change >= self.settle_s:
            self._probing = False  # the probe held: the next one (and the next fall) start from the short hold
            self._hold = self.hold_s
        if self._returning and since_change >= self.settle_s:
            self._returning = False  # back where it was: the doubled hold still stands before the next probe
        settled = min(now - self._congested_at, since_change)  # calm since the last congestion or change
        if self._return_to is not None and settled >= self.settle_s:
            self._returning = True
            self.why = f"calm for {settled:.1f} s: back up to the layer below the one that congested"
            step, self._return_to = self._return_to - self.current, None
            return self._move(now, step, holds=False)
        # The hold counts from the last fall or probe, not from a return.
        calm = min(now - self._congested_at, now - self._held_from)
        if self.current < len(self.layers) - 1 and not self._returning and calm >= self._hold:
            self._probing = True
            self.why = f"probe after {calm:.1f} s calm"
            return self._move(now, +1)
        return None

    def _move(self, now: float, step: int, holds: bool = True) -> str:
        self.current += step
        self._changed_at = now
        if holds:
            self._held_from = now
        return self.layer


@dataclass
class StandingQueue:
    """The queue standing on a subscriber's path, in ms, from the transit minima of its streams
    (``harness.media.tap.TransitMinima``, one minimum per stream and tick).

    A stream's transit has an unknown constant in it (the sender's clock): its least value over the last
    ``base_window_s`` is taken as the empty path, and the least transit of the last ``interval_s`` above it is
    queue, CoDel's reading of a queue (a minimum over an interval rises only when every packet waited; an
    interval longer than a key frame's own queueing, 133 ms for 5 KB at 300 kbit/s, keeps a key frame from
    reading as a standing queue when ticks are short). A jump of ``jump_ms`` or more
    between ticks is a new time base, not a queue (the SFU switched the stream to another layer, or its
    sender restarted): that stream's history starts again. The answer is the largest queue of any stream.
    """

    base_window_s: float = 10.0
    interval_s: float = 0.25
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
            recent = min(t for at, t in history if at > now - self.interval_s)
            queue = max(queue, recent - min(t for _, t in history))
        return queue

    def reset(self) -> None:
        """Forget every stream's empty path (after a layer switch, whose time base may differ)."""
        self._history.clear()
