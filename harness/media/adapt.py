"""A simulcast publisher's reaction to its uplink: drop the top layers on loss, bring them back when it clears.

Browsers stop sending their largest encodings when their bandwidth estimate falls below what those need, and
resume them when it recovers. aiortc estimates nothing for what it sends, so a simulcast publisher here
reacts to what the SFU reports about each layer it receives: the fraction lost in its RTCP receiver reports
(and, when the SFU sends one, a REMB estimate below what the active layers need). :class:`UplinkAdaptation`
is the rule, pure (time passed in):

- a report of at least ``loss_pct`` lost on an active layer, or a REMB below the active layers' bitrate,
  drops the top active layer (at most once per ``settle_s``: a receiver report covers the second or so
  before it, when the dropped layer's packets still filled the link's queue; the lowest layer always stays);
- ``hold_s`` without such a report brings the next layer back (a probe); a probe that meets loss within
  ``settle_s`` is dropped again at once and doubles the hold (up to ``max_hold_s``); one that lasts resets it.

A probe is costly on a link that is still narrow: the returning layer's key frame overflows the link's queue
and the lower layers lose packets with it (a freeze of about 2 s was seen through Janus behind a 300 kbit/s
uplink), hence the long holds. Browsers probe with padding against their bandwidth estimate instead.

The SFU sees a layer stop and moves its subscribers to the next one down by itself (Janus: when a substream
stops arriving for a moment). ``adapt = false`` in a group keeps every layer on, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["UplinkAdaptation"]


@dataclass
class UplinkAdaptation:
    """How many layers (lowest first) to send, from the SFU's reports about them."""

    bitrates_bps: Sequence[int]
    """Each layer's target bitrate, lowest first."""
    loss_pct: float = 10.0
    settle_s: float = 3.0
    hold_s: float = 10.0
    max_hold_s: float = 40.0
    active: int = field(init=False)
    _hold: float = field(init=False)
    _changed_at: float = field(init=False, default=float("-inf"))
    _trouble_at: float = field(init=False, default=float("-inf"))
    _probing: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if not self.bitrates_bps:
            raise ValueError("bitrates_bps must not be empty")
        self.active = len(self.bitrates_bps)
        self._hold = self.hold_s

    def report(self, now: float, layer: int, fraction_lost: int) -> int | None:
        """A receiver report about ``layer`` (0 = lowest) with RFC 3550's 8-bit ``fraction_lost``; the new
        number of active layers when it changes, else None. Reports on inactive layers are ignored."""
        if layer >= self.active:
            return None
        if 100 * fraction_lost / 256 >= self.loss_pct:
            return self._trouble(now)
        return self._calm(now)

    def remb(self, now: float, bitrate_bps: int) -> int | None:
        """A REMB estimate of the uplink; the new number of active layers when it changes, else None."""
        if bitrate_bps < sum(self.bitrates_bps[:self.active]):
            return self._trouble(now)
        return self._calm(now)

    def _trouble(self, now: float) -> int | None:
        self._trouble_at = now
        if self.active > 1 and (self._probing or now - self._changed_at >= self.settle_s):
            if self._probing:
                self._hold = min(self._hold * 2, self.max_hold_s)
            self._probing = False
            return self._move(now, -1)
        return None

    def _calm(self, now: float) -> int | None:
        since_change = now - self._changed_at
        if self._probing and since_change >= self.settle_s:
            self._probing = False
            self._hold = self.hold_s
        if self.active < len(self.bitrates_bps) and now - self._trouble_at >= self._hold and since_change >= self._hold:
            self._probing = True
            return self._move(now, +1)
        return None

    def _move(self, now: float, step: int) -> int:
        self.active += step
        self._changed_at = now
        return self.active
