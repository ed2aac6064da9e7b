"""What simulcast costs a publisher: CPU per source frame of encoding (and scaling) every layer, against one
encoding of the full size, in one run.

Prints, at 480x270 (rate-drop.toml) and 640x360 (the default camera): ms of CPU per source frame for one
VP8 encoding (``SharedVideoEncoder``) and for the three layers q/h/f (``SimulcastEncoder``: two scaled
copies plus the full size), the ratio, and the ms per frame of the RTP side (packetizing once, then building
and serializing every layer's packets with MID and RID, ``harness.media.packetize.LayerSender``). CPU time
(process_time), so a noisy neighbour inflates it less than wall time.

Run: .venv/bin/python benchmarks/simulcast_costs.py
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap

from harness.media.encoder import SharedVideoEncoder
from harness.media.packetize import LayerSender, Packetizer
from harness.media.simulcast import SimulcastEncoder
from harness.media.video import VideoSource

FRAMES = 150


def _encode_ms(encoders: list[Any], source: VideoSource) -> tuple[float, list[list[Any]]]:
    packets: list[list[Any]] = [[] for _ in encoders]
    frames = [source.make_frame(n) for n in range(FRAMES)]
    t0 = time.process_time()
    for n, frame in enumerate(frames):
        for i, encoder in enumerate(encoders):
            packet = encoder._encode(frame, n == 0)
            if packet is not None:
                packets[i].append(packet)
    return (time.process_time() - t0) / FRAMES * 1000, packets


def _fake_sender() -> Any:
    """What LayerSender reads of an aiortc sender, without a connection (no RTCP registration: top layer)."""
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")]))
    return SimpleNamespace(_RTCRtpSender__rtp_history={}, _RTCRtpSender__rtp_header_extensions_map=extensions,
                           _RTCRtpSender__mid="1")


def main() -> None:
    for width, height, kbps in ((480, 270, 400), (640, 360, 600)):
        source = VideoSource(1, width=width, height=height, fps=30)
        single, _ = _encode_ms([SharedVideoEncoder(source, bitrate_bps=kbps * 1000)], source)
        simulcast = SimulcastEncoder(source, ["q", "h", "f"], bitrate_bps=kbps * 1000)
        layered, packets = _encode_ms(list(simulcast.encoders.values()), source)
        t0 = time.process_time()
        for rid, layer_packets in zip(simulcast.encoders, packets, strict=True):
            packetizer = Packetizer("video/VP8")
            sender = LayerSender(_fake_sender(), 96, rid, 4, None, ssrc=1234)
            for packet in layer_packets:
                frame = packetizer.pack(packet)
                for i, payload in enumerate(frame.payloads):
                    sender.serialize(sender.packet(payload, int(i == len(frame.payloads) - 1), frame.timestamp, 0))
        rtp = (time.process_time() - t0) / FRAMES * 1000
        print(f"{width}x{height} @ {kbps} kbit/s: one encoding {single:.2f} ms/frame, q+h+f {layered:.2f} ms/frame "
              f"(x{layered / single:.2f}); RTP of the three layers {rtp:.3f} ms/frame")


if __name__ == "__main__":
    main()
