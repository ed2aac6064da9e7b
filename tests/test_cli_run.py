"""``confbench`` end to end: real Locust, real media hosts, real WebRTC on loopback, results on disk.

These start the command line tool as a user would (a subprocess), so they also prove that an interrupted
run leaves its data readable: SIGKILL leaves whole Parquet parts and a manifest saying ``running``, SIGINT
leaves ``aborted``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import ROOT, confbench, run_until_valid

from harness.store.reader import RunReader

pytestmark = pytest.mark.integration

SMALL = """
name = "small"
duration_s = {duration}
spawn_rate = 5
[media.video]
width = 320
height = 180
fps = 15
[[groups]]
name = "talkers"
count = 2
[[groups]]
name = "viewer"
count = 1
publish = []
[thresholds]
"video_latency_ms.p95" = "< 5000"
"participants.failed" = "== 0"
"""


def scenario(tmp_path: Path, duration: int) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL.format(duration=duration))
    return path


def test_run_measures_and_reports(tmp_path: Path) -> None:
    done, run = run_until_valid([str(scenario(tmp_path, 8)), "--reports", str(tmp_path / "reports")], tmp_path,
                                tmp_path / "results", timeout_s=240)
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, out + err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["scenario"]["name"] == "small" and manifest["ended_utc"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["participants"] == {"planned": 3, "joined": 3, "failed": 0, "dropped": 0}
    # 2 talkers, each seen by 2 receivers (the other talker and the viewer), 15 fps, ~8 s.
    assert summary["video_latency_ms"]["samples"] > 4 * 15 * 4
    assert 0 < summary["video_latency_ms"]["p50"] < 1000
    assert summary["packet_loss_pct"] < 1
    assert summary["loadgen_cpu_pct"]["mean"] > 0
    assert summary["sut_cpu_pct"] is None  # p2p has no server to watch
    # The whole machine was watched too: at least the generator's own work shows in it.
    assert summary["machine_cpu_pct"]["max"] > 0 and summary["machine_steal_pct"]["max"] >= 0
    assert all(t["ok"] for t in summary["thresholds"])
    reader = RunReader(run)
    frames = reader.table("frames")
    assert set(frames["receiver"].str.split("-").str[0]) == {"talkers", "viewer"}
    assert set(frames["sender"].str.split("-").str[0]) == {"talkers"}
    # Locust's own statistics carry join time and latency as requests.
    stats = pd.read_csv(run / "locust_stats.csv")
    assert {"JOIN", "VIDEO"} <= set(stats["Type"])
    reports = list((tmp_path / "reports").glob("*/index.html"))
    assert len(reports) == 1 and "small" in reports[0].read_text()
    assert "video_latency_ms" in out and str(run) in out


def wait_for_frames(run_root: Path, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [p for p in run_root.glob("*") if p.is_dir()] if run_root.exists() else []
        if runs and list((runs[0] / "frames").glob("part-*.parquet")):
            return runs[0]
        time.sleep(0.5)
    raise AssertionError("no frames were written in time")


def test_sigkill_leaves_readable_parts_and_running_manifest(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = confbench("run", str(scenario(tmp_path, 60)), "--results", str(results), "--no-report", cwd=tmp_path)
    try:
        run = wait_for_frames(results, 120)
        time.sleep(2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Locust and its media hosts notice that the controller died and stop (PR_SET_PDEATHSIG): no orphan
    # load generator keeps running.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _processes_of(run):
        time.sleep(0.5)
    assert not _processes_of(run), "load generator processes outlived the killed controller"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "running"
    reader = RunReader(run)
    assert len(reader.table("frames")) > 0
    assert not reader.warnings
    for part in (run / "frames").glob("*.parquet"):
        pd.read_parquet(part)  # every part on disk is whole


def _processes_of(run: Path) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if str(run) in " ".join(proc.info["cmdline"] or []):
                found.append(proc.info["pid"])
        except psutil.Error:
            continue
    return found


def test_sigint_marks_aborted_and_keeps_data(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = confbench("run", str(scenario(tmp_path, 60)), "--results", str(results), "--no-report", cwd=tmp_path)
    try:
        run = wait_for_frames(results, 120)
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "aborted"
    assert "interrupted" in " ".join(manifest["errors"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "aborted" and summary["video_latency_ms"]["samples"] > 0


def test_usage_and_scenario_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[groups]]\nname = "a"\ncount = -1\n')
    for args, words in (
        (["run", str(bad)], "groups[0]"),
        (["run", str(tmp_path / "missing.toml")], "cannot read"),
        (["run", "--system", "nosuch"], "unknown system"),
        (["run", "--participants", "0"], "at least 1"),
        (["frobnicate"], "invalid choice"),
        (["report", str(tmp_path)], "not a run folder"),
    ):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_systems_lists_the_built_in_systems() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "systems"], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and {"p2p", "reference", "whip", "janus"} <= set(names)
