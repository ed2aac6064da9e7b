"""End to end: ``confbench run --repeat`` on two real systems, then ``confbench compare`` on the run set.

The candidate is ``slowp2p``, a test-only system: p2p with 30 ms added to every received video frame before
the participant reads it (so glass-to-glass latency grows by 30 ms, as one-way network delay would). It is
registered for the subprocesses only, through a throw-away distribution (``*.dist-info`` with an entry point)
on ``PYTHONPATH``: the installed package list is not touched. (Its wrapper track hides the real track from the
stats poller, so its ``fps`` figure is empty; the comparison shows that metric as ``unknown``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import run_until_valid

pytestmark = pytest.mark.integration

SCENARIO = """
name = "tiny"
# 10 s, not 5: one slow second at start-up would be 20 % of a 5 s run and mark it invalid (run.py's
# health rule allows 10 %) on a busy 2-core machine.
duration_s = 10
spawn_rate = 5
[media.video]
width = 320
height = 180
fps = 15
[[groups]]
name = "talkers"
count = 2
[thresholds]
"video_latency_ms.p95" = "< 5000"
"""

SLOW_SYSTEM = '''
"""p2p with 30 ms added to every received video frame (a confbench test fixture)."""
import asyncio
import dataclasses

from aiortc import MediaStreamTrack

from harness.systems.p2p import P2PSession, P2PSystem

DELAY_S = 0.030


class DelayedTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, inner):
        super().__init__()
        self._inner = inner

    async def recv(self):
        frame = await self._inner.recv()
        await asyncio.sleep(DELAY_S)  # frames come every 66 ms at 15 fps: no queue builds up
        return frame


class DelayingListener:
    def __init__(self, inner):
        self._inner = inner

    def on_connection(self, pc, remote):
        self._inner.on_connection(pc, remote)

    def on_track(self, track, remote, receiver=None):
        # The receiver is withheld: the delay works on decoded frames, so every stream must be decoded.
        self._inner.on_track(DelayedTrack(track) if track.kind == "video" else track, remote)

    def on_event(self, kind, detail):
        self._inner.on_event(kind, detail)


class SlowP2P(P2PSystem):
    name = "slowp2p"
    description = "p2p with 30 ms of added video delay (test only)"

    def session(self, ctx):
        return P2PSession(dataclasses.replace(ctx, listener=DelayingListener(ctx.listener)), self)
'''


def install_slow_system(where: Path) -> dict[str, str]:
    """Make ``slowp2p`` importable and registered for child processes; returns their environment."""
    where.mkdir()
    (where / "slowp2p_test.py").write_text(SLOW_SYSTEM)
    info = where / "slowp2p_test-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slowp2p-test\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[confbench.systems]\nslowp2p = slowp2p_test:SlowP2P\n")
    path = os.pathsep.join(p for p in (str(where), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path)


def confbench(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=300)


def test_repeat_then_compare_finds_the_slower_system(tmp_path: Path) -> None:
    env = install_slow_system(tmp_path / "plugins")
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(textwrap.dedent(SCENARIO))
    results = tmp_path / "results"
    run = confbench("run", str(scenario), "--system", "p2p", "--system", "slowp2p", "--repeat", "3",
                    "--processes", "1", "--results", str(results), "--reports", str(tmp_path / "reports"),
                    "--junit", str(tmp_path / "thresholds.xml"), cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    (set_dir,) = [p for p in results.iterdir() if p.is_dir()]
    document = json.loads((set_dir / "runset.json").read_text())
    assert [r["system"] for r in document["runs"]] == ["p2p", "slowp2p"] * 3
    assert document["status"] == "completed"
    thresholds = ET.parse(tmp_path / "thresholds.xml").getroot()
    assert len(list(thresholds.iter("testcase"))) == 6 and not list(thresholds.iter("failure"))
    (page,) = (tmp_path / "reports").glob("*/index.html")
    assert 'id="percentile_bars"' in page.read_text()

    junit = tmp_path / "compare.xml"
    compared = confbench("compare", "p2p", "slowp2p", "--in", str(set_dir), "--junit", str(junit),
                         cwd=tmp_path, env=env)
    assert compared.returncode == 1, compared.stdout + compared.stderr
    failures = {case.get("name"): case.find("failure") for case in ET.parse(junit).getroot().iter("testcase")}
    assert failures["video_latency_ms.p50"] is not None, compared.stdout
    assert "video_latency_ms.p50" in compared.stdout and "WORSE" in compared.stdout

    same = confbench("compare", "p2p", "p2p", "--in", str(set_dir), cwd=tmp_path, env=env)
    assert same.returncode == 0, same.stdout + same.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="a server CPU budget needs root (cgroups)")
def test_compare_of_a_throttled_server_does_not_call_its_cpu_better(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(textwrap.dedent(SCENARIO))
    runs = {}
    for name, budget in (("free", []), ("throttled", ["--server-cpus", "0.3"])):
        proc, runs[name] = run_until_valid([str(scenario), "--system", "reference", "--processes", "1",
                                            "--no-report", *budget], tmp_path, tmp_path / name)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((runs["throttled"] / "manifest.json").read_text())["server_cpus"] == 0.3
    compared = confbench("compare", str(runs["free"]), str(runs["throttled"]), "--json", cwd=tmp_path,
                         env=dict(os.environ))
    assert compared.returncode == 0, compared.stdout + compared.stderr
    (comparison,) = json.loads(compared.stdout)["comparisons"]
    cpu = next(m for m in comparison["metrics"] if m["metric"] == "sut_cpu_pct.mean")
    assert cpu["verdict"] == "not comparable"
    assert "baseline no budget, candidate 0.3 core(s)" in cpu["reason"]
    assert cpu["baseline_values"] and cpu["candidate_values"]  # measured on both sides, only not compared
    assert {m["verdict"] for m in comparison["metrics"] if m["metric"] != "sut_cpu_pct.mean"} == {"unknown"}
