"""RTP payloads made once per encoded frame, shared by every sender of that frame.

aiortc's ``RTCRtpSender`` packetizes each encoded frame it sends with its own packetizer (``Encoder.pack``:
the VP8 payload descriptor, H.264 FU-A/STAP-A, Opus as is). A shared encoder (``harness.media.encoder``)
or a relay (``harness.reference.relay``) hands the same frame to many senders, and each of them splitting it
again was about an eighth of a publishing media host's time. The payloads do not depend on the sender: the
RTP header (SSRC, sequence number, payload type, timestamp offset, header extensions) is where senders
differ, and aiortc still writes that per sender. So :class:`Packetizer` packetizes each frame once with
one aiortc packetizer per stream (one VP8 picture-id sequence per stream, as a single sender would make)
and the fan-out carries :class:`PacketizedFrame` s.

The one patch: ``RTCRtpSender._next_encoded_frame`` is wrapped so that a sender whose track is marked
``packetized`` takes the payloads as they are; every other track goes through aiortc's own code. Remove
it when aiortc lets a track hand over ready RTP payloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import RTCEncodedFrame, RTCRtpSender
from av.packet import Packet

__all__ = ["PacketizedFrame", "Packetizer", "install"]

_CLOCK_RATES = {"video/vp8": 90000, "video/h264": 90000, "audio/opus": 48000}


@dataclass(frozen=True, slots=True)
class PacketizedFrame:
    """One encoded frame as RTP payloads, and its RTP timestamp relative to the stream's start."""

    payloads: tuple[bytes, ...]
    timestamp: int
    keyframe: bool = False

    @property
    def size(self) -> int:
        """Payload bytes of the frame."""
        return sum(len(p) for p in self.payloads)


class Packetizer:
    """Packetizes the frames of one stream with aiortc's packetizer for ``mime_type`` (e.g. ``video/VP8``)."""

    def __init__(self, mime_type: str) -> None:
        clock_rate = _CLOCK_RATES.get(mime_type.lower())
        if clock_rate is None:
            raise ValueError(f"cannot packetize {mime_type!r} (known: {', '.join(sorted(_CLOCK_RATES))})")
        self.mime_type = mime_type
        self._packer: Any = get_encoder(RTCRtpCodecParameters(mimeType=mime_type, clockRate=clock_rate))

    def pack(self, packet: Packet, keyframe: bool = False) -> PacketizedFrame:
        """The payloads of one encoded frame (``packet`` carries ``pts`` and ``time_base``)."""
        payloads, timestamp = self._packer.pack(packet)
        return PacketizedFrame(tuple(payloads), int(timestamp), keyframe)


_installed = False


def install() -> None:
    """Let aiortc's senders take :class:`PacketizedFrame` s from tracks marked ``packetized`` (idempotent)."""
    global _installed
    if _installed:
        return
    original = RTCRtpSender._next_encoded_frame

    async def next_encoded_frame(self: RTCRtpSender, codec: RTCRtpCodecParameters) -> RTCEncodedFrame | None:
        track = self.track
        if not getattr(track, "packetized", False):
            return await original(self, codec)
        frame: Any = await track.recv()  # a PacketizedFrame: the track says so
        # A disabled sender still drains its track (as aiortc's own code does), so nothing piles up.
        if not self._enabled or not frame.payloads:
            return None
        return RTCEncodedFrame(list(frame.payloads), frame.timestamp, None)  # type: ignore[arg-type]

    RTCRtpSender._next_encoded_frame = next_encoded_frame  # type: ignore[method-assign]
    _installed = True
