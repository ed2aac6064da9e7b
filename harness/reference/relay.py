"""Forwarding without decoding: the core of the reference SFU (prototype; signalling comes with issue 3).

aiortc has no packet forwarding API. What it does have: a receiver that reassembles complete encoded frames
(depacketized, not decoded) and hands them to its decoder thread through a queue, and senders that accept
encoded packets and packetize them with their own SSRC, sequence numbers and payload type. So a relay taps
the receiver's decoder queue before the receiver starts (when the ``track`` event fires), fans the encoded
frames out, and lets each subscriber's sender re-packetize them: nothing is decoded or re-encoded; what must
differ per subscriber (SSRC, sequence numbers, payload type, RTCP sender reports, NACK answers from the
sender's own history) is done per subscriber by aiortc; a subscriber's PLI/FIR becomes a PLI to the
publisher (via the shared encoder's key-frame hook in ``harness.media.encoder``).

The receiver's decoder queue is taken over by ``harness.media.tap``; the private attributes touched here
(the receiver's remote SSRCs and PLI method) are used in this module only. The process hosting relays
should call ``harness.rtc.jitter.install(relay=True)`` before it creates receiving connections, so that frames
are handed on as soon as they are complete.
"""

from __future__ import annotations

import asyncio
import logging
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCRtpReceiver
from aiortc.codecs import get_capabilities  # noqa: F401 - aiortc's codec registry must be importable
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from harness.media.encoder import install_keyframe_forwarding
from harness.media.fanout import FanOut, FanOutTrack
from harness.media.packetize import PacketizedFrame, Packetizer
from harness.media.packetize import install as install_packetized_senders
from harness.media.tap import tap as frame_tap

log = logging.getLogger(__name__)

# Deep enough for a burst of a few frames; a subscriber that lags further loses frames and asks for a key frame.
RELAY_QUEUE = 30


class EncodedRelay:
    """Fans out the encoded frames of one received track to any number of senders."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str) -> None:
        install_keyframe_forwarding()
        install_packetized_senders()
        self.receiver = receiver
        self.kind = kind
        # Each frame is cut into RTP payloads once, whatever the number of subscribers.
        self.fanout: FanOut[PacketizedFrame] = FanOut(kind, maxsize=RELAY_QUEUE, copy=None)
        self._packetizer: Packetizer | None = None
        self.forwarded = 0
        """Encoded frames received and handed to the subscribers."""
        self._dropped_seen = 0
        frame_tap(receiver, self._forward)

    @classmethod
    def tap(cls, receiver: RTCRtpReceiver, kind: str) -> EncodedRelay:
        """Tap ``receiver``; must be called before it starts receiving (in the ``track`` event)."""
        return cls(receiver, kind)

    def track(self) -> FanOutTrack[Any]:
        """A new track of encoded packets for one subscriber's sender; asks the publisher for a key frame."""
        track = self.fanout.track()
        track.packetized = True  # type: ignore[attr-defined]
        track.request_keyframe = self.request_keyframe  # type: ignore[attr-defined]
        self.request_keyframe()
        return track

    def request_keyframe(self) -> None:
        """Send a PLI to the publisher (a subscriber asked for a key frame, or one just subscribed)."""
        if self.kind != "video":
            return
        streams = getattr(self.receiver, "_RTCRtpReceiver__remote_streams", {})
        for ssrc in list(streams):
            asyncio.ensure_future(self.receiver._send_rtcp_pli(ssrc))

    def _forward(self, codec: RTCRtpCodecParameters, frame: Any) -> None:
        packet = av.Packet(frame.data)
        # The receiver already mapped the publisher's RTP timestamps to start at zero.
        packet.pts = frame.timestamp
        packet.time_base = Fraction(1, codec.clockRate)
        if self._packetizer is None or self._packetizer.mime_type != codec.mimeType:
            self._packetizer = Packetizer(codec.mimeType)
        self.forwarded += 1
        self.fanout.push(self._packetizer.pack(packet))
        if self.fanout.dropped != self._dropped_seen:
            self._dropped_seen = self.fanout.dropped
            self.request_keyframe()

    def close(self) -> None:
        """End every subscriber track."""
        self.fanout.close()
