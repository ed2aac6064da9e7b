"""Simulcast through a real LiveKit server (built from its Go module, root): an aiortc publisher announces three
layers (``AddTrackRequest.layers``) and sends them by RID (``harness.media.simulcast``), LiveKit accepts them,
and each subscriber gets the layer its track settings allow (``prefer_layer``, ``UpdateTrackSettings``)."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers import ListSink
from livekit.protocol import models
from simulcast_people import person, widths

from harness.rtc.ice import pin_host_addresses
from harness.systems.livekit import API_KEY_ENV, API_SECRET_ENV, LiveKitSession, LiveKitSystem
from harness.testbed.livekit import LocalLiveKit

pytestmark = pytest.mark.integration

def test_livekit_forwards_the_layer_each_subscriber_asks_for(local_livekit: LocalLiveKit,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, local_livekit.api_key)
    monkeypatch.setenv(API_SECRET_ENV, local_livekit.api_secret)

    async def meeting() -> tuple[ListSink, float]:
        pin_host_addresses([local_livekit.host_address])
        system = LiveKitSystem(local_livekit.ws_url)
        sink = ListSink()
        pub = person("pub", 0, system, sink, simulcast=("q", "h", "f"), subscribe=False)
        small = person("small", 1, system, sink, publish=(), prefer_layer="q")
        big = person("big", 2, system, sink, publish=())
        try:
            assert (await pub.join())["ok"]
            assert (await small.join())["ok"] and (await big.join())["ok"]
            await asyncio.sleep(5)
            session = small._session
            assert isinstance(session, LiveKitSession)
            await session.choose_layer("h", list(session.remote_video()))
            switched = time.time()
            await asyncio.sleep(4)
        finally:
            await asyncio.gather(*(p.leave() for p in (pub, small, big)))
            await system.close()
            pin_host_addresses(None)
        return sink, switched

    sink, switched = asyncio.run(meeting())
    small_before = widths(sink, "small", 0, switched)
    small_after = widths(sink, "small", switched + 1.5)
    big = widths(sink, "big", 0)
    # Every layer carries readable stamps, and each subscriber decodes the size of the layer it may have.
    assert len(small_before) > 20 and set(small_before[-10:]) == {160}, small_before[-10:]
    assert len(small_after) > 15 and set(small_after) == {320}, small_after
    assert len(big) > 40 and set(big[-20:]) == {640}, big[-20:]
    layers_in = [r["layer"] for r in sink.rows["streams"] if r["participant"] == "small" and r["kind"] == "video"
                 and r["direction"] == "in" and r.get("layer")]
    assert "q" in layers_in[:3] and layers_in[-1] == "h", layers_in
    sent = {r["layer"] for r in sink.rows["streams"]
            if r["participant"] == "pub" and r["direction"] == "out" and r["kind"] == "video"}
    assert sent == {"q", "h", "f"}


def test_a_simulcast_track_announces_its_layers_as_livekits_sdk_does() -> None:
    from harness.media.simulcast import SimulcastEncoder
    from harness.media.video import VideoSource
    from harness.systems.livekit_tracks import add_track_request

    encoder = SimulcastEncoder(VideoSource(stream_id=0, width=480, height=270), ("q", "h", "f"), bitrate_bps=400_000)
    request = add_track_request(encoder.track(), "VP8")
    sizes = [(layer.rid, layer.quality, layer.width, layer.height, layer.bitrate) for layer in request.layers]
    assert sizes == [("q", models.LOW, 120, 66, 60_000), ("h", models.MEDIUM, 240, 134, 140_000),
                     ("f", models.HIGH, 480, 270, 400_000)]
    assert (request.width, request.height) == (480, 270)
    assert [c.codec for c in request.simulcast_codecs] == ["vp8"]
    assert list(request.simulcast_codecs[0].layers) == list(request.layers)
