"""The ``livekit`` adapter and testbed against a real LiveKit server (built from its Go module), over real WebRTC.

Skipped, with the testbed's one-line reason, where root, ``ip``, a Go toolchain or the module is missing;
CI builds the server (``.ci/run``) and runs as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import livekit_skip_reason
from helpers import ROOT, ListSink, confbench, run_until_valid

from harness.errors import SystemError_, TestbedError
from harness.host.participant import Participant, ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import VideoSettings
from harness.store.reader import RunReader
from harness.systems.livekit import API_KEY_ENV, API_SECRET_ENV, LiveKitSystem, server_info
from harness.testbed.livekit import LIVEKIT_SERVER, LocalLiveKit

pytestmark = pytest.mark.integration


def _person(name: str, index: int, system: LiveKitSystem, sink: ListSink, room: str) -> Participant:
    spec = ParticipantSpec(name=name, group="g", index=index, room=room,
                           video=VideoSettings(width=320, height=180, fps=15))
    return Participant(spec, system, sink)


def _frames_from(sink: ListSink, receiver: str, sender: str, after: float = 0.0) -> int:
    return sum(1 for f in sink.rows["frames"]
               if f["receiver"] == receiver and f["sender"] == sender and f["ts"] > after)


@pytest.fixture
def keys(local_livekit: LocalLiveKit, monkeypatch: pytest.MonkeyPatch) -> LocalLiveKit:
    """The local server's generated keys in the environment, where the adapter reads them."""
    monkeypatch.setenv(API_KEY_ENV, local_livekit.api_key)
    monkeypatch.setenv(API_SECRET_ENV, local_livekit.api_secret)
    return local_livekit


def test_server_info_gives_the_pinned_version(keys: LocalLiveKit) -> None:
    info = asyncio.run(server_info(keys.ws_url))
    assert info["server"] == "livekit"
    assert info["version"] == LIVEKIT_SERVER.version.lstrip("v")


def test_late_publisher_and_early_leaver_are_followed(keys: LocalLiveKit) -> None:
    """The server's subscriber offers follow the room: a later publisher is received, a leaver is dropped."""

    async def meeting() -> tuple[ListSink, float]:
        pin_host_addresses([keys.host_address])
        system = LiveKitSystem(keys.ws_url)
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
    assert _frames_from(sink, "p0", "p2") > 15 and _frames_from(sink, "p2", "p0") > 15
    assert _frames_from(sink, "p0", "p2", after=left_at + 1.0) > 10
    assert _frames_from(sink, "p0", "p1", after=left_at + 1.0) == 0
    p0 = [(e["kind"], e["detail"]) for e in sink.rows["events"] if e["participant"] == "p0"]
    assert ("subscribed", "p1") in p0 and ("subscribed", "p2") in p0 and ("peer_joined", "p2") in p0
    assert ("peer_left", "p1") in p0 and ("unsubscribed", "p1") in p0
    assert not [e for e in p0 if e[0] in ("renegotiation_failed", "server_lost")]
    # Stamps carry the sender's stream id (2 * index for video): each track is who LiveKit said it is.
    assert all(f["stream_id"] == 2 * int(f["sender"][1:]) for f in sink.rows["frames"])


def test_missing_or_wrong_credentials_are_one_line(keys: LocalLiveKit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_SECRET_ENV, "wrong-" + keys.api_secret)
    with pytest.raises(SystemError_, match="refused the access token") as refused:
        asyncio.run(server_info(keys.ws_url))
    assert "\n" not in str(refused.value) and keys.api_secret not in str(refused.value)
    monkeypatch.delenv(API_SECRET_ENV)
    with pytest.raises(SystemError_, match=f"{API_KEY_ENV} and {API_SECRET_ENV}"):
        asyncio.run(server_info(keys.ws_url))


def test_unreachable_livekit_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "k")
    monkeypatch.setenv(API_SECRET_ENV, "s" * 32)
    with pytest.raises(SystemError_, match="cannot reach LiveKit at ws://127.0.0.1:9"):
        asyncio.run(server_info("ws://127.0.0.1:9"))


def test_without_root_the_testbed_says_how_to_use_a_running_livekit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TestbedError, match=r"needs root.*--system livekit=ws://HOST:7880"):
        LocalLiveKit.start()


def test_wrong_api_secret_of_a_running_livekit_gives_one_line_and_exit_1(keys: LocalLiveKit, tmp_path: Path) -> None:
    env = dict(os.environ, **{API_SECRET_ENV: "not-the-secret-" + "x" * 24})
    (tmp_path / "s.toml").write_text(SCENARIO.format(duration=5))
    proc = confbench("run", str(tmp_path / "s.toml"), "--system", f"livekit={keys.ws_url}", "--results",
                     str(tmp_path / "results"), "--no-report", cwd=ROOT, env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and "refused the access token" in lines[-1], err
    assert "Traceback" not in err


SCENARIO = """
name = "livekit-small"
duration_s = {duration}
spawn_rate = 5
systems = ["livekit"]
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


def test_meeting_of_4_with_late_joiner_and_early_leaver_on_local_livekit(tmp_path: Path) -> None:
    """A whole run: churn is followed, the server is probed, its version recorded, its secret nowhere."""
    reason = livekit_skip_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path / "livekit.toml"
    path.write_text(SCENARIO.format(duration=6))
    secrets: list[str] = []
    done, run_dir = run_until_valid([str(path), "--no-report", "--processes", "1"], ROOT, tmp_path / "results",
                                    watch=lambda proc: secrets.append(_generated_secret(proc)))
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, out + err
    run = RunReader(run_dir)
    # The generated secret (one per attempt) reached the server and the run's processes through their
    # environment only.
    for secret in secrets:
        # -e: a generated secret may begin with "-", which grep would take for options (it did, once in CI).
        leaks = subprocess.run(["grep", "-rlF", "-e", secret, str(tmp_path / "results")], capture_output=True,
                               text=True)
        assert leaks.returncode == 1 and not leaks.stdout, leaks.stdout
    assert secrets and secrets[-1] not in out + err
    manifest = run.manifest
    assert manifest["status"] == "completed"
    assert manifest["system"]["name"] == "livekit"
    assert manifest["system"]["version"] == LIVEKIT_SERVER.version.lstrip("v")
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["participants"]["joined"] == 4 and summary["participants"]["failed"] == 0
    assert summary["sut_cpu_pct"]["mean"] > 0
    events = run.table("events")
    seen = {(k, d.split("-")[0] + "-") for k, d in zip(events["kind"], events["detail"], strict=True)}
    assert {("subscribed", "late-"), ("subscribed", "early-"), ("peer_left", "early-"),
            ("unsubscribed", "early-")} <= seen
    frames = run.table("frames")
    assert frames[frames["sender"].str.startswith("late-")]["receiver"].str.startswith("talkers").any()
    assert frames[frames["sender"].str.startswith("early-")]["receiver"].str.startswith("talkers").any()
    assert frames["latency_ms"].median() > 0
    probes = run.table("probes")
    assert "livekit-server" in set(probes[probes["role"] == "sut"]["name"])
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"cb{run.manifest['pid']}n" not in namespaces  # the controller's pid names its namespaces


def _generated_secret(proc: subprocess.Popen[str]) -> str:
    """The API secret the testbed generated for this run, read from its LiveKit server's environment."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.name() == "livekit-server":
                    return str(child.environ()["LIVEKIT_KEYS"].split(":", 1)[1].strip())
        time.sleep(0.2)
    raise AssertionError("the run started no livekit-server")


def test_without_go_the_local_livekit_is_unavailable_in_one_line(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("the local LiveKit testbed needs root (network namespaces)")
    (tmp_path / "s.toml").write_text(SCENARIO.format(duration=5))
    env = dict(os.environ, CONFBENCH_GO_CACHE=str(tmp_path / "go"), CONFBENCH_GO=str(tmp_path / "no-go"))
    proc = confbench("run", str(tmp_path / "s.toml"), "--results", str(tmp_path / "results"), "--no-report",
                     cwd=ROOT, env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert err.strip().splitlines() == [f"confbench: LiveKit is unavailable: CONFBENCH_GO={tmp_path / 'no-go'} is not "
                                        "an executable Go toolchain; point the harness at a running LiveKit "
                                        "instead: --system livekit=ws://HOST:7880 (with CONFBENCH_LIVEKIT_API_KEY "
                                        "and CONFBENCH_LIVEKIT_API_SECRET)"], err


IMPAIRED = """
name = "livekit-impaired"
systems = ["livekit"]
duration_s = 5
spawn_rate = 4
room = "livekit-impaired"
[media.video]
width = 160
height = 90
fps = 15
[[groups]]
name = "near"
count = 2
[[groups]]
name = "far"
count = 1
[groups.network]
delay_ms = 20
"""


def test_a_participant_behind_the_wire_receives_through_livekit(tmp_path: Path) -> None:
    """The far participant's subscriber connection is offered again while its first handshake runs: its
    receivers must start all the same (``LiveKitSession._answer_offers``)."""
    reason = livekit_skip_reason()
    if reason:
        pytest.skip(reason)
    (tmp_path / "s.toml").write_text(IMPAIRED)
    proc, run = run_until_valid([str(tmp_path / "s.toml"), "--no-report", "--processes", "1"], ROOT,
                                tmp_path / "results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((run / "manifest.json").read_text())["system"]["name"] == "livekit"
    streams = RunReader(run).table("streams")
    far_in = streams[streams["participant"].str.startswith("far-") & (streams["direction"] == "in")
                     & (streams["kind"] == "video")]
    assert len(set(far_in["peer"])) == 2 and all(p.startswith("near-") for p in far_in["peer"]), far_in
    assert far_in.groupby("peer")["fps"].median().min() > 12
