"""A browser participant and a native one in the same room of the reference SFU, for real.

Headless Chromium joins through the SFU's web client, aiortc through WHIP/WHEP; each reads the other's
stamps and pulses, both report streams. Then the browser is killed mid-call: a participant failure in
``events``, not an exception. Kept short: a browser costs about a core on the CI machine.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from helpers import ListSink

from harness.browser import chromium
from harness.browser.engines import Engines
from harness.browser.participant import BrowserParticipant
from harness.host.participant import ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import Scenario, parse_scenario
from harness.systems import SERVE_ADDRESS
from harness.systems.reference import ReferenceSystem

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which(chromium.DEFAULT_CHROMIUM) is None, reason="Chromium not installed"),
]


@pytest.fixture(scope="module")
def sfu(browser_testbed: Any) -> Iterator[str]:
    """The reference SFU on the root end of the browsers' namespace link (tests/conftest.py)."""
    global TESTBED
    TESTBED = browser_testbed
    system = ReferenceSystem(options={SERVE_ADDRESS: browser_testbed.address})
    deployment = system.deploy()
    try:
        assert deployment.url
        yield deployment.url
    finally:
        system.undeploy()


TESTBED: Any = None
"""The module's ``browser_testbed``: where servers listen and natives pin, and the Chromium to start."""


def scenario() -> Scenario:
    return parse_scenario({"name": "t", "join_timeout_s": 30, "browser": {"chromium": TESTBED.chromium},
                           "groups": [{"name": "n", "count": 1}, {"name": "b", "count": 1, "engine": "browser"}],
                           "media": {"video": {"width": 320, "height": 180, "bitrate_kbps": 300}}})


def browser_routes(sink: ListSink) -> list[str]:
    """The local addresses of the browsers' selected candidate pairs (``ice_route`` events)."""
    return [e["detail"].split(" -> ")[0] for e in sink.rows["events"] if e["kind"] == "ice_route"]


def test_browser_and_native_measure_each_other_and_a_dead_browser_is_a_participant_failure(sfu: str) -> None:
    sink = ListSink()

    async def meeting() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        pin_host_addresses([TESTBED.address])
        sc = scenario()
        system = ReferenceSystem(url=sfu)
        people: dict[str, Any] = {}

        def owner(sid: int) -> str | None:
            return next((n for n, p in people.items() if p.spec.video_stream_id == sid), None)

        engines = Engines(sc, system, sink, owner)
        native_spec = ParticipantSpec(name="n-0", group="n", index=0, room="t1", video=sc.video, join_timeout_s=30)
        browser_spec = ParticipantSpec(name="b-1", group="b", index=1, room="t1", video=sc.video, join_timeout_s=30)
        try:
            people["n-0"] = await engines.create(native_spec, "native")
            native_row = await people["n-0"].join()
            people["b-1"] = browser = await engines.create(browser_spec, "browser")
            assert isinstance(browser, BrowserParticipant)
            browser_row = await browser.join()
            await asyncio.sleep(8)
            probe = browser.probe_row("h")
            # What closing the window looks like from here: the browser's processes go away.
            root = chromium.browser_root(browser._profile) if browser._profile else None
            assert root is not None
            for proc in chromium.process_tree(root):
                proc.kill()
            psutil.wait_procs([root], timeout=10)
            for _ in range(50):
                if browser.failed:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)  # the native participant carries on
            for p in people.values():
                await p.leave()
        finally:
            await system.close()
            await engines.close()
        return native_row, browser_row, probe

    native_row, browser_row, probe = asyncio.run(meeting())
    assert native_row["ok"] and browser_row["ok"], (native_row, browser_row)
    assert browser_row["engine"] == "browser" and browser_row["join_ms"] > 0
    frames = sink.rows["frames"]
    to_native = [f for f in frames if f["receiver"] == "n-0" and f["sender"] == "b-1"]
    to_browser = [f for f in frames if f["receiver"] == "b-1" and f["sender"] == "n-0"]
    assert len(to_native) > 60 and len(to_browser) > 60
    assert {f["stream_id"] for f in to_native} == {2} and {f["stream_id"] for f in to_browser} == {0}
    latencies = sorted(f["latency_ms"] for f in to_browser)
    assert 0 < latencies[0] and latencies[len(latencies) // 2] < 1000, latencies[:5] + latencies[-5:]
    audio = sink.rows["audio"]
    assert any(a["receiver"] == "b-1" and a["sender"] == "n-0" for a in audio)
    assert any(a["receiver"] == "n-0" and a["sender"] == "b-1" for a in audio)
    streams = [s for s in sink.rows["streams"] if s["participant"] == "b-1"]
    video_in = [s for s in streams if s["direction"] == "in" and s["kind"] == "video" and s["peer"] == "n-0"]
    assert video_in and any((s.get("fps") or 0) > 10 for s in video_in)
    assert any(s.get("jitter_buffer_ms") is not None for s in video_in)
    video_out = [s for s in streams if s["direction"] == "out" and s["kind"] == "video"]
    assert any(s.get("rtt_ms") is not None for s in video_out)
    assert any(s.get("quality_limitation") is not None for s in video_out)
    assert probe is not None and probe["role"] == "browser" and probe["rss_mb"] > 0
    # The page's own timer: how late its main thread ran (it fires every 50 ms, so it is never early).
    assert probe["loop_lag_ms"] is not None and 0 <= probe["loop_lag_ms"] < 5000, probe
    events = sink.rows["events"]
    assert any(e["kind"] == "browser_started" and e["participant"] == "b-1" for e in events)
    failed = [e for e in events if e["kind"] == "participant_failed"]
    assert [e["participant"] for e in failed] == ["b-1"]
    joins = sink.rows["joins"]
    assert sorted(j["participant"] for j in joins) == ["b-1", "n-0"]  # one row each, written once
    # The browser's media used its namespace's link, not the machine's own address.
    assert browser_routes(sink) and set(browser_routes(sink)) == {TESTBED.browser_address}


def test_without_chromium_a_browser_participant_fails_in_one_line(sfu: str) -> None:
    sc = parse_scenario({"name": "t", "groups": [{"name": "b", "count": 1, "engine": "browser"}],
                         "browser": {"chromium": "/nonexistent/chromium"}})
    from harness.browser.engines import preflight
    from harness.errors import BrowserError

    with pytest.raises(BrowserError, match="apt-get install chromium"):
        preflight(sc, ReferenceSystem(url=sfu))

    async def create() -> None:
        await Engines(sc, ReferenceSystem(url=sfu), ListSink(), lambda sid: None).create(
            ParticipantSpec(name="b-0", group="b", index=0, room="x"), "browser")

    with pytest.raises(BrowserError, match="was not found"):
        asyncio.run(create())


def test_leaving_while_joining_writes_one_failed_join_row(sfu: str) -> None:
    """The run ends while a browser is still joining: one joins row saying so, and nothing left running."""
    from harness.browser.participant import BrowserRuntime, BrowserTarget
    from harness.browser.platform import parse_platform

    sink = ListSink()
    platform = parse_platform({"name": "slow", "url": "{base}/app/?room=slow", "join": [{"wait": "#never"}]})

    async def run() -> None:
        runtime = BrowserRuntime(TESTBED.chromium)
        spec = ParticipantSpec(name="b-0", group="b", index=0, room="slow", join_timeout_s=60)
        person = BrowserParticipant(spec, BrowserTarget(platform, sfu), runtime, sink, lambda sid: None)
        joining = asyncio.ensure_future(person.join())
        for _ in range(100):
            if person._page is not None:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        await person.leave()
        row = await asyncio.wait_for(joining, timeout=30)
        assert not row["ok"]
        await runtime.close()

    asyncio.run(run())
    joins = sink.rows["joins"]
    assert len(joins) == 1 and joins[0]["error"] == "left before the join finished", joins


def test_a_platform_file_of_ones_own_on_the_web_system(sfu: str, tmp_path: Any) -> None:
    """A new platform is one file: ``web=URL`` plus ``[browser] platform = "<path>"`` (no code)."""
    from harness.systems.web import WebSystem

    platform_file = tmp_path / "myconf.toml"
    platform_file.write_text('name = "myconf"\nurl = "{base}/app/?room={room}"\n'
                             '[[join]]\nfill = "#name"\nvalue = "{participant}"\n'
                             '[[join]]\nclick = "#join"\n[[join]]\nwait = "#state[data-state=\'in-call\']"\n')
    sc = parse_scenario({"name": "t", "join_timeout_s": 30, "groups": [{"name": "b", "count": 1, "engine": "browser"}],
                         "browser": {"platform": str(platform_file), "chromium": TESTBED.chromium},
                         "media": {"video": {"width": 320, "height": 180, "bitrate_kbps": 300}}})
    sink = ListSink()

    async def meeting() -> tuple[dict[str, Any], dict[str, Any]]:
        pin_host_addresses([TESTBED.address])
        engines = Engines(sc, WebSystem(url=sfu), sink, lambda sid: {0: "n-0"}.get(sid))
        native_system = ReferenceSystem(url=sfu)
        native = await Engines(sc, native_system, sink, lambda sid: None).create(
            ParticipantSpec(name="n-0", group="n", index=0, room="own", video=sc.video), "native")
        browser = await engines.create(
            ParticipantSpec(name="b-1", group="b", index=1, room="own", video=sc.video, join_timeout_s=30), "browser")
        try:
            rows = await native.join(), await browser.join()
            await asyncio.sleep(4)
            await browser.leave()
            await native.leave()
        finally:
            await native_system.close()
            await engines.close()
        return rows

    native_row, browser_row = asyncio.run(meeting())
    assert native_row["ok"] and browser_row["ok"], browser_row.get("error")
    frames = sink.rows["frames"]
    assert any(f["receiver"] == "b-1" and f["sender"] == "n-0" for f in frames)
    assert any(f["receiver"] == "n-0" and f["sender"] == "b-1" for f in frames)
