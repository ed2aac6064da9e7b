"""``janus-whip``: publishing over WHIP through a third-party WHIP server (Debian's simple-whip-server) into a
real Janus, receiving through Janus, over real WebRTC in network namespaces. No mocks.

Skipped, with the testbed's one-line reason, only where root, Janus, or the server's install (apt-get download,
npm) is missing; CI installs it (``python -m harness.testbed.simple_whip``) and runs as root.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from helpers import ROOT, ListSink, confbench, only_run, run_until_valid

from harness.errors import SystemError_, TestbedError
from harness.host.participant import Participant, ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import VideoSettings
from harness.store.reader import RunReader
from harness.systems.base import Deployment
from harness.systems.janus_whip import JanusWhipSystem, split_url
from harness.testbed import simple_whip


def _skip_reason() -> str | None:
    return simple_whip.unavailable_reason()


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[JanusWhipSystem, Deployment]]:
    """Janus and simple-whip-server started as a run starts them (the system's own deploy)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    system = JanusWhipSystem()
    deployment = system.deploy()
    try:
        yield system, deployment
    finally:
        system.undeploy()


def _endpoints(system: JanusWhipSystem) -> list[dict[str, Any]]:
    base, _ = split_url(str(system.url))
    with urllib.request.urlopen(f"{base}/endpoints", timeout=5) as answer:
        return list(json.loads(answer.read()))


def _frames(sink: ListSink, receiver: str, sender: str, after: float = 0.0) -> list[float]:
    return [f["ts"] for f in sink.rows["frames"]
            if f["receiver"] == receiver and f["sender"] == sender and f["ts"] > after]


@pytest.mark.integration
def test_three_publish_over_whip_and_receive_everyone_through_janus(
        deployed: tuple[JanusWhipSystem, Deployment]) -> None:
    """Two publish, a third joins late; each has its own simple-whip-server endpoint, all receive all."""
    system, deployment = deployed
    assert deployment.info["server"] == "simple-whip-server"
    assert deployment.info["version"] == simple_whip.VERSION
    assert deployment.info["janus"]["server"] == "janus"
    assert len(deployment.server_pids) == 2  # Janus and simple-whip-server, both probed
    seen: dict[str, Any] = {}

    async def meeting() -> ListSink:
        pin_host_addresses(list(deployment.host_addresses))
        sink = ListSink()
        people = [Participant(ParticipantSpec(name=f"w{i}", group="g", index=i, room="whip-room",
                                              video=VideoSettings(width=320, height=180, fps=15)), system, sink)
                  for i in range(3)]
        try:
            for p in people[:2]:
                assert (await p.join())["ok"]
            await asyncio.sleep(2)
            assert (await people[2].join())["ok"]
            seen["late_at"] = time.time()
            await asyncio.sleep(4)
            seen["during"] = await asyncio.to_thread(_endpoints, system)
        finally:
            await asyncio.gather(*(p.leave() for p in people))
            await system.close()
            pin_host_addresses(None)
        seen["after"] = await asyncio.to_thread(_endpoints, system)
        return sink

    sink = asyncio.run(meeting())
    assert all(j["ok"] for j in sink.rows["joins"]) and len(sink.rows["joins"]) == 3
    # Every participant published through an endpoint of simple-whip-server, labelled with its name ...
    assert sorted(e["label"].split("~")[0] for e in seen["during"] if e["enabled"]) == ["w0", "w1", "w2"]
    # ... and destroyed it when it left.
    assert seen["after"] == []
    # Everyone receives everyone else (through Janus), never themselves, at a sensible frame rate.
    window = 3.0
    for receiver in ("w0", "w1", "w2"):
        assert not _frames(sink, receiver, receiver)
        for sender in {"w0", "w1", "w2"} - {receiver}:
            recent = [t for t in _frames(sink, receiver, sender, after=seen["late_at"] + 1.0)]
            assert len(recent) >= 8 * window, (receiver, sender, len(recent))  # 15 fps sent
    # Stamps carry the publisher's stream id (2 * index for video): each stream is who Janus said it is.
    assert all(f["stream_id"] == 2 * int(f["sender"][1:]) for f in sink.rows["frames"])
    kinds = {e["kind"] for e in sink.rows["events"]}
    assert not kinds & {"renegotiation_failed", "server_lost", "subscribe_failed"}, kinds


@pytest.mark.integration
def test_same_names_in_two_rooms_both_publish(deployed: tuple[JanusWhipSystem, Deployment]) -> None:
    """simple-whip-server hangs up an earlier publisher of the same label: labels must be unique per server
    (calibration runs two calls whose participants are both called sender and receiver, in two rooms)."""
    system, deployment = deployed

    async def two_calls() -> tuple[ListSink, ListSink]:
        pin_host_addresses(list(deployment.host_addresses))
        sinks = (ListSink(), ListSink())
        people = [Participant(ParticipantSpec(name=name, group="g", index=i, room=room,
                                              video=VideoSettings(width=320, height=180, fps=15)), system, sink)
                  for room, sink in zip(("room-a", "room-b"), sinks, strict=True)
                  for i, name in enumerate(("sender", "receiver"))]
        try:
            for p in people:
                assert (await p.join())["ok"]
            await asyncio.sleep(3)
        finally:
            await asyncio.gather(*(p.leave() for p in people))
            await system.close()
            pin_host_addresses(None)
        return sinks

    started = time.time()
    for sink in asyncio.run(two_calls()):
        assert len(_frames(sink, "receiver", "sender", after=started + 2.0)) > 10
        assert len(_frames(sink, "sender", "receiver", after=started + 2.0)) > 10


SCENARIO = """
name = "janus-whip-small"
duration_s = 8
spawn_rate = 5
systems = ["janus-whip"]
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
[groups.network]
delay_ms = 20
"""


@pytest.mark.integration
def test_run_on_janus_whip_records_the_server_and_probes_both(tmp_path: Path) -> None:
    """A whole ``confbench run``: completed, all joined (one late, behind a 20 ms link), all receive all, both
    servers probed, nothing left."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path / "janus-whip.toml"
    path.write_text(SCENARIO)
    done, run_dir = run_until_valid([str(path), "--no-report", "--processes", "1"], ROOT, tmp_path / "results",
                                    timeout_s=240)
    assert done.returncode == 0, done.stdout + done.stderr
    run = RunReader(run_dir)
    system = run.manifest["system"]
    assert run.manifest["status"] == "completed"
    assert system["name"] == "janus-whip"
    assert system["info"]["server"] == "simple-whip-server" and system["info"]["version"] == simple_whip.VERSION
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["participants"]["joined"] == 3 and summary["participants"]["failed"] == 0
    assert summary["fps"]["p50"] >= 12, summary["fps"]
    frames = run.table("frames")
    pairs = set(zip(frames["receiver"], frames["sender"], strict=True))
    names = {"talkers-0", "talkers-1", "late-2"}
    assert pairs == {(r, s) for r in names for s in names if r != s}
    latency = frames.groupby(["receiver", "sender"])["latency_ms"].median()
    assert latency["talkers-0", "talkers-1"] < 20 <= latency["talkers-0", "late-2"], latency
    assert 20 <= latency["late-2", "talkers-1"] < 60, latency  # the late one's link delays what it receives
    probes = run.table("probes")
    assert {"janus", "node"} <= set(probes[probes["role"] == "sut"]["name"])
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"cb{run.manifest['pid']}n" not in namespaces


@pytest.mark.integration
def test_killing_simple_whip_server_fails_the_run_and_leaves_nothing(tmp_path: Path) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path / "janus-whip.toml"
    path.write_text(SCENARIO.replace("duration_s = 8", "duration_s = 60"))
    results = tmp_path / "results"
    proc = confbench("run", str(path), "--results", str(results), "--no-report", "--processes", "1", cwd=ROOT)
    try:
        node = _wait_for_frames_then_find(proc, results, "node")
        janus = next(c for c in psutil.Process(proc.pid).children(recursive=True) if c.name() == "janus")
        node.kill()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out + err
    run = RunReader(only_run(results))
    assert run.manifest["status"] == "failed"
    assert any(f"(pid {node.pid}) exited during the run" in e for e in run.manifest["errors"]), run.manifest
    assert len(run.table("frames")) > 0
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"cb{proc.pid}n" not in namespaces
    assert not psutil.pid_exists(janus.pid) or janus.status() == psutil.STATUS_ZOMBIE  # Janus was stopped too


def _wait_for_frames_then_find(proc: subprocess.Popen[str], results: Path, name: str) -> psutil.Process:
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
                return next(c for c in psutil.Process(proc.pid).children(recursive=True) if c.name() == name)
        time.sleep(0.5)
    raise AssertionError("the run never measured frames")


def test_urls_name_the_whip_base_and_the_janus_behind_it() -> None:
    assert split_url("http://10.0.0.5:7080/whip/") == ("http://10.0.0.5:7080/whip", "ws://10.0.0.5:8188")
    assert split_url("http://h:7080/whip?janus=ws://j:9000") == ("http://h:7080/whip", "ws://j:9000")
    with pytest.raises(SystemError_, match="not an http"):
        split_url("ws://h:8188")


def test_without_npm_the_server_is_unavailable_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(simple_whip, "_failure", [])
    real = simple_whip.shutil.which
    monkeypatch.setattr(simple_whip.shutil, "which", lambda name: None if name == "npm" else real(name))
    with pytest.raises(TestbedError, match=r"^simple-whip-server needs 'npm'") as refused:
        simple_whip.ensure_installed()
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "confbench").exists() or not simple_whip.installed()
