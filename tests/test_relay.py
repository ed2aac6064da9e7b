"""The reference SFU's forwarding core: encoded frames relayed to several subscribers, never decoded.

Real WebRTC on loopback: a publisher (stamped video, shared encoder), a relay with one receiving and three
sending peer connections, three subscribers reading the stamps back.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from harness.media.encoder import SharedVideoEncoder
from harness.media.video import VideoSource, read_frame
from harness.reference.relay import EncodedRelay
from harness.rtc import jitter
from harness.rtc.ice import pin_host_addresses

pytestmark = pytest.mark.integration


async def connect(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def relay_meeting(subscribers: int, seconds: float) -> tuple[list[list[float]], EncodedRelay, int]:
    jitter.install(relay=True)  # before the relay's receiving connection exists
    source = VideoSource(7, width=320, height=180, fps=30)
    encoder = SharedVideoEncoder(source, bitrate_bps=400_000)
    publisher, relay_in = RTCPeerConnection(), RTCPeerConnection()
    publisher.addTrack(encoder.track())
    relays: list[EncodedRelay] = []

    @relay_in.on("track")
    def on_publisher_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in relay_in.getTransceivers() if t.receiver.track is track)
        relays.append(EncodedRelay.tap(receiver, track.kind))

    await connect(publisher, relay_in)
    assert relays, "the relay got no track"
    relay = relays[0]
    latencies: list[list[float]] = [[] for _ in range(subscribers)]
    pcs = []
    readers = []
    for i in range(subscribers):
        out, sub = RTCPeerConnection(), RTCPeerConnection()
        out.addTrack(relay.track())
        pcs += [out, sub]

        def on_track(track: MediaStreamTrack, i: int = i) -> None:
            async def read() -> None:
                while True:
                    try:
                        frame = await track.recv()
                    except MediaStreamError:
                        return
                    stamp = read_frame(frame)  # type: ignore[arg-type]
                    if stamp is not None:
                        now = time.time()
                        latencies[i].append((now - stamp.capture_time(now)) * 1000)

            readers.append(asyncio.ensure_future(read()))

        sub.on("track", on_track)
        await connect(out, sub)
    await asyncio.sleep(seconds)
    decoded_at_relay = relay_in.getReceivers()[0].track._queue.qsize()  # type: ignore[union-attr]
    for task in readers:
        task.cancel()
    relay.close()
    await encoder.stop()
    await source.stop()
    for pc in [publisher, relay_in, *pcs]:
        await pc.close()
    return latencies, relay, decoded_at_relay


def test_relay_forwards_encoded_frames_to_every_subscriber() -> None:
    pin_host_addresses(["127.0.0.1"])
    try:
        latencies, relay, decoded_at_relay = asyncio.run(relay_meeting(3, 4.0))
    finally:
        pin_host_addresses(None)
    assert relay.forwarded > 30 * 2.5
    # Nothing was decoded at the relay: its own receiving track never got a frame.
    assert decoded_at_relay == 0
    for per_subscriber in latencies:
        assert len(per_subscriber) > 30 * 2.5  # ~30 fps reached every subscriber
        assert statistics.median(per_subscriber) < 300
