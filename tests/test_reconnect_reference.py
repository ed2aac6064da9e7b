"""When a participant starts again, on the reference SFU over real WebRTC on loopback.

The case CI once met after a server restart: a participant whose publication the server no longer knows, but
which still receives from others (it subscribed to those who had joined the new server). Nobody receives it,
so it must start again, although media keeps arriving.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from helpers import ListSink

from harness.host.participant import Participant, ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import VideoSettings
from harness.systems.reference import ReferenceSystem

pytestmark = pytest.mark.integration

RECONNECT_AFTER_S = 2.0


class Sink(ListSink):
    """Rows per table, and how many video packets a participant received."""

    def received(self, participant: str, since: float) -> int:
        """Video packets ``participant`` received after ``since``."""
        return sum(r["packets"] for r in self.rows["streams"] if r["participant"] == participant
                   and r["direction"] == "in" and r["kind"] == "video" and r["ts"] > since)


async def _until(check: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.2)
    return bool(check())


async def _orphaned_publisher(url: str) -> Sink:
    pin_host_addresses(["127.0.0.1"])
    system = ReferenceSystem(url=url)
    sink = Sink()
    people = [Participant(ParticipantSpec(name=name, group="g", index=i, room="r", reconnect_after_s=RECONNECT_AFTER_S,
                                          video=VideoSettings(width=160, height=90, fps=10)), system, sink)
              for i, name in enumerate(("a", "b"))]
    try:
        for p in people:
            assert (await p.join())["ok"]
        a = people[0]
        assert await _until(lambda: sink.received("a", 0) > 0 and sink.received("b", 0) > 0, 15), sink.rows["events"]
        # The server forgets a's publication (as a restarted server would); a is not told, and b still sends to it.
        session = a._session
        assert session is not None
        resource, _ = session._resources[""]  # type: ignore[attr-defined]
        async with system.http().delete(resource) as answer:
            assert answer.status in (200, 204), answer.status
        forgotten = time.time()
        assert await _until(lambda: sink.events("a", "reconnected"), RECONNECT_AFTER_S + 15), sink.rows["events"]
        # a kept receiving b while nobody received it: the media it received did not hide that it was lost.
        (lost,) = sink.events("a", "connection_lost")
        assert sink.received("a", forgotten) > 0 and 0 < lost["ts"] - forgotten < RECONNECT_AFTER_S + 3
        assert "receiver report" in lost["detail"]["reason"]
        # And once back, b receives a again.
        back = time.time()
        assert await _until(lambda: sink.received("b", back + 1) > 0, 15), sink.rows["events"]
        assert not sink.events("b", "connection_lost")
    finally:
        await asyncio.gather(*(p.leave() for p in people))
        await system.close()
        pin_host_addresses(None)
    return sink


def test_a_publisher_the_server_forgot_starts_again_though_it_still_receives() -> None:
    system = ReferenceSystem()
    deployment = system.deploy()
    try:
        assert deployment.url
        asyncio.run(_orphaned_publisher(deployment.url))
    finally:
        system.undeploy()
