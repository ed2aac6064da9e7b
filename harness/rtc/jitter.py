"""Video frames complete on their RTP marker bit: the one place where the harness changes aiortc's jitter buffer.

aiortc's jitter buffer declares a video frame complete only when the first packet of the *next* frame
arrives (a change of RTP timestamp). Every received frame therefore waits one frame interval (33 ms at
30 fps) before it is decoded: a constant that real receivers do not add (they complete a frame on the
marker bit, RFC 3550 / RFC 7741), which would sit inside every latency figure, and once more at every
relay that forwards frames (``harness.reference.relay``).

:class:`MarkerJitterBuffer` completes a frame as soon as the packet carrying the marker bit is in and every
packet from the frame's first one is present; the timestamp rule stays as the fallback for a lost marker
packet. Audio buffers are unchanged (they prefetch on purpose). :func:`install` makes aiortc's receivers use
it for video; remove this module when aiortc completes frames on the marker bit itself.
"""

from __future__ import annotations

from typing import Any

import aiortc.rtcrtpreceiver as _receiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame

_original = _receiver.JitterBuffer


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's jitter buffer, with video frames completed on the RTP marker bit."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if not self._is_video or self._origin is None:
            return super()._remove_frame(sequence_number)
        packets: list[Any] = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None  # a gap: wait for the packet (or its retransmission)
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # The marker packet of the previous frame was lost: complete it by timestamp, as aiortc does.
                return self._take(packets, timestamp, count)
            packets.append(packet)
            if packet.marker:
                return self._take(packets, timestamp, count + 1)
        return None

    def _take(self, packets: list[Any], timestamp: int, count: int) -> JitterFrame:
        frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
        self.remove(count)
        return frame


class ForwardingAudioBuffer(JitterBuffer):
    """For relays: every audio packet is a whole Opus frame, handed on at once.

    aiortc's audio buffer prefetches four frames (80 ms) and holds each until the next arrives: playout
    buffering, which belongs to the receiving participant, not to a server in the middle.
    """

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


def _factory(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
    cls = MarkerJitterBuffer if is_video else _original
    return cls(capacity=capacity, prefetch=prefetch, is_video=is_video)


def _relay_factory(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
    if is_video:
        return MarkerJitterBuffer(capacity=capacity, prefetch=prefetch, is_video=True)
    return ForwardingAudioBuffer(capacity=capacity)


def install(relay: bool = False) -> None:
    """Make aiortc's receivers created from now on complete video frames on the marker bit (idempotent).

    ``relay=True`` is for processes whose receivers only forward (the reference SFU): audio is then not
    buffered either.
    """
    _receiver.JitterBuffer = _relay_factory if relay else _factory  # type: ignore[assignment,misc]


def uninstall() -> None:
    """Back to aiortc's own buffer (benchmarks comparing both)."""
    _receiver.JitterBuffer = _original  # type: ignore[misc]
