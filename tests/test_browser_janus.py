"""A browser on Janus's VideoRoom demo page and a native participant in the same room, against a real Janus.

The browser comes first, so the demo's room must be created by the platform's prepare hook; the native
participant joins the same numeric room through the janus adapter. Each reads the other's stamps.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_browser_participant import Sink

from harness.browser import chromium
from harness.browser.engines import Engines
from harness.ice import pin_host_addresses
from harness.participant import ParticipantSpec
from harness.scenario import parse_scenario
from harness.systems.janus import JanusSystem

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which(chromium.DEFAULT_CHROMIUM) is None, reason="Chromium not installed"),
    pytest.mark.skipif(not Path("/usr/share/janus/demos/videoroomtest.html").exists(),
                       reason="Janus's demo pages not installed (apt-get install janus-demos libjs-janus-gateway)"),
]


def test_browser_on_the_demo_page_and_native_participant_meet(local_janus: Any) -> None:
    sink = Sink()
    sc = parse_scenario({"name": "t", "join_timeout_s": 30, "room": "browser-janus",
                         "groups": [{"name": "n", "count": 1}, {"name": "b", "count": 1, "engine": "browser"}],
                         "media": {"video": {"width": 320, "height": 180, "bitrate_kbps": 300}}})

    async def meeting() -> dict[str, dict[str, Any]]:
        pin_host_addresses([local_janus.host_address])
        system = JanusSystem(url=local_janus.ws_url)
        people: dict[str, Any] = {}
        engines = Engines(sc, system, sink, lambda sid: next(
            (n for n, p in people.items() if p.spec.video_stream_id == sid), None))
        specs = {name: ParticipantSpec(name=name, group=name[0], index=index, room=sc.room, video=sc.video,
                                       join_timeout_s=30) for name, index in (("b-1", 1), ("n-0", 0), ("n-2", 2))}
        rows = {}
        try:
            for name, engine in (("b-1", "browser"), ("n-0", "native"), ("n-2", "native")):
                people[name] = await engines.create(specs[name], engine)
                rows[name] = await people[name].join()
            await asyncio.sleep(8)
            for p in people.values():
                await p.leave()
        finally:
            await system.close()
            await engines.close()
        return rows

    rows = asyncio.run(meeting())
    assert all(row["ok"] for row in rows.values()), {name: row.get("error") for name, row in rows.items()}
    frames = sink.rows["frames"]
    # Stream ids 2 (b-1), 0 (n-0), 4 (n-2); the native side knows the browser by its demo display name "b1".
    assert sum(1 for f in frames if f["receiver"] == "n-0" and f["stream_id"] == 2 and f["sender"] == "b1") > 60
    # The demo gives each feed a connection of its own, all with the same track ids: both feeds still count.
    for sid, name in ((0, "n-0"), (4, "n-2")):
        assert sum(1 for f in frames if f["receiver"] == "b-1" and f["stream_id"] == sid and f["sender"] == name) > 30
    inbound = {s["peer"] for s in sink.rows["streams"] if s["participant"] == "b-1" and s["direction"] == "in"}
    assert inbound == {"n-0", "n-2"}, inbound
    assert any(a["receiver"] == "b-1" and a["sender"] == "n-0" for a in sink.rows["audio"])
    assert any(a["receiver"] == "n-0" and a["sender"] == "b1" for a in sink.rows["audio"])
    out = [s for s in sink.rows["streams"] if s["participant"] == "b-1" and s["direction"] == "out"]
    assert any(s.get("rtt_ms") is not None for s in out)
