"""The ``janus`` adapter against a real Janus (Debian's package) in a network namespace, over real WebRTC.

Skipped, with the reason, only where the package or root is missing; CI installs the package and runs as root.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import janus_skip_reason
from helpers import ROOT, ListSink, confbench, only_run, run_until_valid

from harness.errors import SystemError_, TestbedError
from harness.host.participant import Participant, ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import VideoSettings
from harness.store.reader import RunReader
from harness.systems.janus import JanusSystem, room_id, server_info
from harness.systems.janus_api import API_SECRET_ENV, JanusRefused
from harness.testbed.janus import LocalJanus

pytestmark = pytest.mark.integration


def _person(name: str, index: int, system: JanusSystem, sink: ListSink, room: str) -> Participant:
    spec = ParticipantSpec(name=name, group="g", index=index, room=room,
                           video=VideoSettings(width=320, height=180, fps=15))
    return Participant(spec, system, sink)


def _frames_from(sink: ListSink, receiver: str, sender: str, after: float = 0.0) -> int:
    return sum(1 for f in sink.rows["frames"]
               if f["receiver"] == receiver and f["sender"] == sender and f["ts"] > after)


def _events(sink: ListSink, participant: str) -> list[tuple[str, str]]:
    return [(e["kind"], e["detail"]) for e in sink.rows["events"] if e["participant"] == participant]


def test_server_info_over_websocket_and_long_poll(local_janus: LocalJanus) -> None:
    for url in (local_janus.ws_url, local_janus.http_url):
        info = asyncio.run(server_info(url))
        assert info["server"] == "janus" and str(info["version"]).startswith("1.")
        assert "janus.plugin.videoroom" in info["plugins"]


def test_room_names_map_to_stable_janus_ids() -> None:
    assert room_id("1234") == 1234
    assert room_id("standup") == room_id("standup") != room_id("retro")
    assert 0 < room_id("standup") < 2**31


def test_late_publisher_and_early_leaver_are_followed(local_janus: LocalJanus) -> None:
    """One multistream subscription per participant, updated as publishers come and go."""

    async def meeting() -> tuple[ListSink, float]:
        pin_host_addresses([local_janus.host_address])
        system = JanusSystem(local_janus.ws_url)
        sink = ListSink()
        first = [_person(f"p{i}", i, system, sink, "late-and-early") for i in range(2)]
        late = _person("p2", 2, system, sink, "late-and-early")
        try:
            for p in first:
                assert (await p.join())["ok"]
            await asyncio.sleep(2)
            assert (await late.join())["ok"]
            await asyncio.sleep(3)
            await first[1].leave()
            left_at = time.time()
            await asyncio.sleep(3)
        finally:
            await asyncio.gather(*(p.leave() for p in [*first, late]))
            await system.close()
            pin_host_addresses(None)
        return sink, left_at

    sink, left_at = asyncio.run(meeting())
    assert all(j["ok"] for j in sink.rows["joins"]) and len(sink.rows["joins"]) == 3
    # The late publisher is seen by those already in the room, and sees them.
    assert _frames_from(sink, "p0", "p2") > 15
    assert _frames_from(sink, "p2", "p0") > 15
    # After p1 left, p0's subscription was renegotiated and still carries p2.
    assert _frames_from(sink, "p0", "p2", after=left_at + 1.0) > 10
    assert _frames_from(sink, "p0", "p1", after=left_at + 1.0) == 0
    p0 = _events(sink, "p0")
    assert ("subscribed", "p1") in p0 and ("subscribed", "p2") in p0
    assert ("peer_left", "p1") in p0 and ("unsubscribed", "p1") in p0
    assert not [e for e in p0 if e[0] in ("renegotiation_failed", "server_lost")]
    # Stamps carry the sender's stream id (2 * index for video), so each stream is who Janus said it is.
    assert all(f["stream_id"] == 2 * int(f["sender"][1:]) for f in sink.rows["frames"])
    # One peer connection carries every feed, yet each stream's row names its publisher.
    peers = {s["peer"] for s in sink.rows["streams"] if s["participant"] == "p0" and s["direction"] == "in"}
    assert {"p1", "p2"} <= peers


def test_long_poll_transport_carries_a_call(local_janus: LocalJanus) -> None:
    async def call() -> ListSink:
        pin_host_addresses([local_janus.host_address])
        system = JanusSystem(local_janus.http_url)
        sink = ListSink()
        people = [_person(f"h{i}", i, system, sink, "long-poll") for i in range(2)]
        try:
            for p in people:
                assert (await p.join())["ok"]
            await asyncio.sleep(3)
        finally:
            await asyncio.gather(*(p.leave() for p in people))
            await system.close()
            pin_host_addresses(None)
        return sink

    sink = asyncio.run(call())
    assert _frames_from(sink, "h0", "h1") > 15 and _frames_from(sink, "h1", "h0") > 15


def test_api_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = janus_skip_reason()
    if reason:
        pytest.skip(reason)
    with LocalJanus.start(api_secret="not-in-results") as janus:
        monkeypatch.delenv(API_SECRET_ENV, raising=False)
        with pytest.raises(JanusRefused, match="Janus refused a session: .*secret") as refused:
            asyncio.run(server_info(janus.ws_url))
        assert "\n" not in str(refused.value)
        monkeypatch.setenv(API_SECRET_ENV, "not-in-results")
        assert asyncio.run(server_info(janus.ws_url))["server"] == "janus"


def test_unreachable_janus_is_one_line() -> None:
    with pytest.raises(SystemError_, match="cannot reach Janus at ws://127.0.0.1:9"):
        asyncio.run(server_info("ws://127.0.0.1:9"))
    with pytest.raises(SystemError_, match="not a Janus URL"):
        asyncio.run(server_info("ftp://127.0.0.1:9"))


SCENARIO = """
name = "janus-small"
duration_s = {duration}
spawn_rate = 5
systems = ["janus"]
[media.video]
width = 320
height = 180
fps = 15
[[groups]]
name = "talkers"
count = 2
[[groups]]
name = "late"
count = 1
join_delay_s = 3
[[groups]]
name = "early"
count = 1
stay_s = 5
"""


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_run_with_late_and_early_publishers_on_local_janus(tmp_path: Path) -> None:
    """A whole run: churn is followed (events, frames), not failed; Janus is probed; nothing is left behind."""
    reason = janus_skip_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path / "janus.toml"
    path.write_text(SCENARIO.format(duration=6))
    done, run_dir = run_until_valid([str(path), "--no-report", "--processes", "1"], ROOT, tmp_path / "results",
                                    timeout_s=240)
    assert done.returncode == 0, done.stdout + done.stderr
    run = RunReader(run_dir)
    manifest = run.manifest
    assert manifest["status"] == "completed"
    assert manifest["system"]["name"] == "janus"
    assert "janus.plugin.videoroom" in manifest["system"]["info"]["plugins"]
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["participants"]["joined"] == 4 and summary["participants"]["failed"] == 0
    assert summary["sut_cpu_pct"]["mean"] > 0
    events = run.table("events")
    late, early = "late-", "early-"
    seen = {(k, d.split("-")[0] + "-") for k, d in zip(events["kind"], events["detail"], strict=True)}
    assert {("subscribed", late), ("subscribed", early), ("peer_left", early), ("unsubscribed", early)} <= seen
    frames = run.table("frames")
    assert frames[frames["sender"].str.startswith(late)]["receiver"].str.startswith("talkers").any()
    assert frames[frames["sender"].str.startswith(early)]["receiver"].str.startswith("talkers").any()
    probes = run.table("probes")
    assert (probes["role"] == "sut").any() and "janus" in set(probes[probes["role"] == "sut"]["name"])
    assert run.table("frames")["latency_ms"].median() > 0
    assert f"cb{run.manifest['pid']}n" not in _namespaces()


def test_killing_janus_fails_the_run_keeps_data_and_leaves_nothing(tmp_path: Path) -> None:
    reason = janus_skip_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path / "janus.toml"
    path.write_text(SCENARIO.format(duration=60))
    results = tmp_path / "results"
    proc = confbench("run", str(path), "--results", str(results), "--no-report", "--processes", "1", cwd=ROOT)
    try:
        janus = _wait_for_frames_then_find_janus(proc, results)
        os.kill(janus.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out + err
    assert "exited during the run" in out + err, out + err
    run = RunReader(only_run(results))
    assert run.manifest["status"] == "failed"
    assert any("janus server" in e and "exited during the run" in e for e in run.manifest["errors"])
    assert len(run.table("frames")) > 0  # what was measured before stays
    assert f"cb{proc.pid}n" not in _namespaces()
    assert not psutil.pid_exists(janus.pid) or psutil.Process(janus.pid).status() == psutil.STATUS_ZOMBIE


def _wait_for_frames_then_find_janus(proc: subprocess.Popen[str], results: Path) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        runs = [p for p in results.iterdir() if p.is_dir()] if results.exists() else []
        progress = runs[0] / "progress.json" if runs else None
        if progress is not None and progress.exists():
            try:
                frames = json.loads(progress.read_text()).get("frames", 0)
            except ValueError:
                frames = 0
            if frames > 50:
                children = psutil.Process(proc.pid).children(recursive=True)
                return next(c for c in children if c.name() == "janus")
        time.sleep(0.5)
    raise AssertionError("the run never measured frames")


def test_without_root_the_testbed_says_how_to_use_a_running_janus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TestbedError, match=r"needs root.*--system janus=ws://HOST:8188"):
        LocalJanus.start()
