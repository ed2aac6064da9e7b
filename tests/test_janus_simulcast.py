"""Simulcast through a real Janus VideoRoom (Debian's Janus, root): aiortc publishers send three layers by RID
(``harness.media.simulcast``), Janus accepts them, and subscribers get the layer they ask for."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import janus_skip_reason
from helpers import ListSink, run_until_valid
from simulcast_people import person, widths

from harness.rtc.ice import pin_host_addresses
from harness.store.reader import RunReader
from harness.systems.janus import JanusSession, JanusSystem
from harness.testbed.janus import LocalJanus

pytestmark = pytest.mark.integration

def test_janus_forwards_the_layer_each_subscriber_asks_for(local_janus: LocalJanus) -> None:
    async def meeting() -> tuple[ListSink, float]:
        pin_host_addresses([local_janus.host_address])
        system = JanusSystem(local_janus.ws_url)
        sink = ListSink()
        pub = person("pub", 0, system, sink, simulcast=("q", "h", "f"), subscribe=False)
        small = person("small", 1, system, sink, publish=(), prefer_layer="q")
        big = person("big", 2, system, sink, publish=())
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
    small_before = widths(sink, "small", 0, switched)
    small_after = widths(sink, "small", switched + 1.5)
    big = widths(sink, "big", 0)
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


UPLINK = """
name = "{name}"
duration_s = 25
spawn_rate = 2
[media.video]
width = 480
height = 270
fps = 30
codec = "VP8"
bitrate_kbps = 400
[[groups]]
name = "sender"
count = 1
subscribe = false
simulcast = ["q", "h", "f"]
adapt = {adapt}
[groups.network]
up = {{ rate_kbps = 300, queue_ms = 200 }}
[[groups]]
name = "viewer"
count = 1
publish = []
"""


def _uplink_run(tmp_path: Path, adapt: bool) -> tuple[dict[str, Any], RunReader]:
    reason = janus_skip_reason()
    if reason:
        pytest.skip(reason)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "s.toml").write_text(UPLINK.format(name=f"uplink-{adapt}", adapt=str(adapt).lower()))
    proc, run = run_until_valid(["s.toml", "--system", "janus", "--no-report"], tmp_path, tmp_path / "results",
                                timeout_s=240)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert summary["status"] == "completed", (summary["status"], manifest.get("invalid_reasons"),
                                              summary.get("warnings"))
    return summary, RunReader(run)


def _late_frames(reader: RunReader) -> Any:
    frames = reader.table("frames")
    return frames[frames["ts"] > frames["ts"].min() + 6]


def test_a_publisher_behind_a_narrow_uplink_drops_its_top_layer(tmp_path: Path) -> None:
    """q+h+f need about 600 kbit/s; the uplink carries 300. Adapting, the publisher stops sending f, Janus falls
    back to a lower layer for its viewer by itself, and more frames reach the viewer than when the publisher
    keeps every layer at its fixed rate (f then overflows the link, taking the lower layers' packets with it)."""
    summary, reader = _uplink_run(tmp_path / "adapt", adapt=True)
    fixed, fixed_reader = _uplink_run(tmp_path / "fixed", adapt=False)
    streams = reader.table("streams")
    out = streams[(streams["direction"] == "out") & (streams["kind"] == "video")]
    late = out[out["ts"] > out["ts"].min() + 6]
    top = late[late["layer"] == "f"]["bitrate_kbps"]
    low = late[late["layer"] == "q"]["bitrate_kbps"]
    assert len(top) > 5 and top.median() < 20, top.describe()  # f stopped (but for a rare probe)
    assert low.median() > 30, low.describe()
    seen = _late_frames(reader)
    assert (seen["width"] < 480).mean() > 0.8, seen["width"].value_counts()  # Janus moved the viewer down
    fixed_out = fixed_reader.table("streams")
    fixed_top = fixed_out[(fixed_out["direction"] == "out") & (fixed_out["layer"] == "f")]["bitrate_kbps"]
    assert fixed_top.median() > 200, fixed_top.describe()  # every layer kept at its fixed rate
    fixed_seen = _late_frames(fixed_reader)
    print("frames after 6 s: adapting", len(seen), "fixed", len(fixed_seen), "fps p50:", summary["fps"]["p50"],
          fixed["fps"]["p50"], "freezes/min:", summary["freezes_per_min"], fixed["freezes_per_min"])
    assert len(seen) > 1.3 * len(fixed_seen), (len(seen), len(fixed_seen))
