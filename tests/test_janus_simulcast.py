"""Simulcast through a real Janus VideoRoom (Debian's Janus, root): aiortc publishers send three layers by RID
(``harness.media.simulcast``), Janus accepts them, and subscribers get the layer they ask for."""

from __future__ import annotations

import asyncio
import time

import pytest
from test_participant import ListSink

from harness.host.participant import Participant, ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import VideoSettings
from harness.systems.janus import JanusSession, JanusSystem
from harness.testbed.janus import LocalJanus

pytestmark = pytest.mark.integration

VIDEO = VideoSettings(width=640, height=360, fps=15, bitrate_kbps=600)


def _person(name: str, index: int, system: JanusSystem, sink: ListSink, **kw: object) -> Participant:
    spec = ParticipantSpec(name=name, group=name, index=index, room="simulcast", video=VIDEO, **kw)  # type: ignore[arg-type]
    return Participant(spec, system, sink)


def _widths(sink: ListSink, receiver: str, after: float, before: float = float("inf")) -> list[int]:
    return [f["width"] for f in sink.rows["frames"]
            if f["receiver"] == receiver and f["sender"] == "pub" and after < f["ts"] < before]


def test_janus_forwards_the_layer_each_subscriber_asks_for(local_janus: LocalJanus) -> None:
    async def meeting() -> tuple[ListSink, float]:
        pin_host_addresses([local_janus.host_address])
        system = JanusSystem(local_janus.ws_url)
        sink = ListSink()
        pub = _person("pub", 0, system, sink, simulcast=("q", "h", "f"), subscribe=False)
        small = _person("small", 1, system, sink, publish=(), prefer_layer="q")
        big = _person("big", 2, system, sink, publish=())
        try:
            assert (await pub.join())["ok"]
            assert (await small.join())["ok"] and (await big.join())["ok"]
            await asyncio.sleep(4)
            session = small._session
            assert isinstance(session, JanusSession)
            await session.choose_layer("h")
            switched = time.time()
            await asyncio.sleep(4)
        finally:
            await asyncio.gather(*(p.leave() for p in (pub, small, big)))
            await system.close()
            pin_host_addresses(None)
        return sink, switched

    sink, switched = asyncio.run(meeting())
    small_before = _widths(sink, "small", 0, switched)
    small_after = _widths(sink, "small", switched + 1.5)
    big = _widths(sink, "big", 0)
    # Every layer carries readable stamps, and each subscriber decodes the size of the layer it asked for.
    assert len(small_before) > 20 and set(small_before[-10:]) == {160}
    assert len(small_after) > 20 and set(small_after) == {320}
    assert len(big) > 40 and set(big[-20:]) == {640}
    # The streams table says which layer arrived, and what each layer cost to send.
    layers_in = [r["layer"] for r in sink.rows["streams"] if r["participant"] == "small" and r["kind"] == "video"
                 and r["direction"] == "in" and r.get("layer")]
    assert layers_in[:2] == ["q", "q"] and layers_in[-1] == "h"
    sent: dict[str, list[float]] = {}
    for r in sink.rows["streams"]:
        if r["participant"] == "pub" and r["direction"] == "out" and r["kind"] == "video":
            sent.setdefault(r["layer"], []).append(r["bitrate_kbps"])
    assert set(sent) == {"q", "h", "f"}
    rate = {rid: max(v) for rid, v in sent.items()}
    assert 0 < rate["q"] < rate["h"] < rate["f"]
