"""What a participant counts per received video track and per SSRC between two stats polls."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

FREEZE_WINDOW = 30
"""The WebRTC stats definition of a freeze averages the last 30 inter-frame gaps."""


class VideoCounters:
    """Per received video track: what the stats poll adds to its ``streams`` row."""

    def __init__(self) -> None:
        self.frames = 0
        self.unreadable = 0
        self.freezes = 0
        self.freeze_ms = 0.0
        self.gaps: deque[float] = deque(maxlen=FREEZE_WINDOW)
        self.last_arrival: float | None = None
        self.taken_at: float | None = None
        self.psnr_db: float | None = None  # of the frame sampled in this interval
        self.psnr_at = 0.0
        self.size: tuple[int, int] | None = None  # of the latest decoded frame

    def arrived(self, now: float) -> float | None:
        """Count a frame that arrived at ``now``; returns the gap since the previous one (ms), if any.

        A freeze is the WebRTC stats definition: a gap > max(3 x mean, mean + 150 ms) over the last gaps.
        """
        gap_ms = None
        if self.last_arrival is not None:
            gap_ms = (now - self.last_arrival) * 1000
            if len(self.gaps) >= 2:
                mean = sum(self.gaps) / len(self.gaps)
                if gap_ms > max(3 * mean, mean + 150):
                    self.freezes += 1
                    self.freeze_ms += gap_ms
            self.gaps.append(gap_ms)
        self.last_arrival = now
        self.frames += 1
        return gap_ms

    def take(self, now: float) -> dict[str, Any]:
        """The ``streams`` columns since the last take (fps, freezes, unreadable frames, sampled PSNR,
        resolution), and start counting anew.

        The rate uses this counter's own interval: on a busy loop one connection's poll can come late,
        and the poll cycle's interval would then inflate its frame rate.
        """
        elapsed = now - self.taken_at if self.taken_at is not None else None
        fps = self.frames / elapsed if elapsed and elapsed > 0.05 else None
        out = {"fps": fps, "frames_unreadable": self.unreadable, "freezes": self.freezes,
               "freeze_ms": self.freeze_ms, "psnr_db": self.psnr_db,
               "width": self.size[0] if self.size else None, "height": self.size[1] if self.size else None}
        self.frames = self.unreadable = self.freezes = 0
        self.freeze_ms = 0.0
        self.psnr_db = None
        self.taken_at = now
        return out


@dataclass
class SsrcState:
    """Per sent or received SSRC: the cumulative counts of the previous poll, to turn them into intervals."""

    packets: int = 0
    lost: int = 0
    bytes_sent: int = 0
    polled_at: float | None = None
    received: int = 0  # payload bytes counted at the receiver (harness.media.tap.count_received)
    nacked: int = 0  # distinct packets the far end asked for again (harness.media.tap.count_nacked)
    unrepaired: int = 0  # packets lost after retransmission (lean receive path)
