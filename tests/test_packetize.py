"""Packetizing once per stream: the payloads equal aiortc's own, and senders use them as they are."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from harness.media.encoder import SharedVideoEncoder
from harness.media.packetize import PacketizedFrame, Packetizer
from harness.media.tap import tap
from harness.media.video import VideoSource
from harness.rtc import ntpclock, remb


def packet(data: bytes, pts: int) -> av.Packet:
    p = av.Packet(data)
    p.pts = pts
    p.time_base = Fraction(1, 90000)
    return p


def test_vp8_payloads_match_aiortc_and_keep_one_picture_id_sequence() -> None:
    data = bytes(range(256)) * 20  # 5120 bytes: several packets
    ours = Packetizer("video/VP8")
    theirs = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000))
    theirs.picture_id = ours._packer.picture_id  # aiortc starts each packetizer at a random picture id
    for n in range(3):
        frame = ours.pack(packet(data, 3000 * n))
        payloads, timestamp = theirs.pack(packet(data, 3000 * n))
        assert frame.payloads == tuple(payloads) and frame.timestamp == timestamp == 3000 * n
        assert frame.size == sum(len(p) for p in payloads) and len(frame.payloads) >= 4


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot packetize"):
        Packetizer("video/AV1")


def test_packetized_frames_reach_a_receiver_unchanged() -> None:
    """A real sender takes the shared payloads: the receiver reassembles frames of exactly those bytes."""

    async def run() -> tuple[list[bytes], list[PacketizedFrame]]:
        from harness.rtc.ice import pin_host_addresses

        pin_host_addresses(["127.0.0.1"])
        ntpclock.install()
        remb.install()
        source = VideoSource(3, width=160, height=96, fps=30)
        encoder = SharedVideoEncoder(source, bitrate_bps=200_000)
        sent: list[PacketizedFrame] = []
        probe = encoder.track()  # a consumer of our own, to see what the senders were given
        a, b = RTCPeerConnection(), RTCPeerConnection()
        a.addTransceiver(encoder.track(), direction="sendonly")
        got: list[bytes] = []

        @b.on("track")
        def on_track(track: object) -> None:
            receiver = b.getTransceivers()[0].receiver
            tap(receiver, lambda codec, frame: got.append(frame.data))

        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        try:
            for _ in range(40):
                sent.append(await asyncio.wait_for(probe.recv(), 5))
        finally:
            await a.close()
            await b.close()
            await encoder.stop()
            await source.stop()
            pin_host_addresses(None)
        return got, sent

    got, sent = asyncio.run(run())
    assert len(got) >= 10
    # What the receiver reassembled is the encoded frame, i.e. the payloads without their VP8 descriptors.
    from aiortc.codecs.vpx import vp8_depayload

    whole = {b"".join(vp8_depayload(p) for p in f.payloads) for f in sent}
    assert sum(frame in whole for frame in got) >= len(got) - 2  # the first may predate the probe


def test_the_lean_header_is_the_one_aiortc_would_write() -> None:
    """Header template vs aiortc's RtpPacket.serialize, with mid and abs-send-time negotiated."""
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    from harness.media.packetize import _HeaderTemplate

    class Sender:  # the two attributes of RTCRtpSender the template reads
        _RTCRtpSender__mid = "1"
        _RTCRtpSender__rtp_header_extensions_map = HeaderExtensionsMap()

    Sender._RTCRtpSender__rtp_header_extensions_map.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")]))
    template = _HeaderTemplate(Sender(), 97)
    for marker, seq, ts, ssrc, ast in ((0, 1, 2, 3, 4), (1, 65535, 2**32 - 1, 12345678, 0xFFFFFF)):
        packet = RtpPacket(payload_type=97, marker=marker, sequence_number=seq, timestamp=ts, ssrc=ssrc,
                           payload=b"payload")
        packet.extensions.mid = "1"
        packet.extensions.abs_send_time = ast
        expected = packet.serialize(Sender._RTCRtpSender__rtp_header_extensions_map)
        assert template.header(marker, seq, ts, ssrc, ast) + b"payload" == expected
        assert RtpPacket.parse(expected).extensions  # and aiortc reads it back
