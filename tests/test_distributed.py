"""Participants on several Locust workers: one result set, samples from every worker, clocks recorded.

Real runs on loopback: ``confbench master`` with two ``confbench worker`` processes (they download the run's
locustfile from the master, no scenario file of their own), and ``confbench run --processes 2``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.probes.clocksync import clock_sync_state, combine
from harness.store.reader import RunReader

pytestmark = pytest.mark.integration

SCENARIO = """
name = "two-workers"
duration_s = 6
spawn_rate = 4
[media.video]
width = 320
height = 180
fps = 15
bitrate_kbps = 300
[[groups]]
name = "everyone"
count = 4
probe_fraction = 0.5
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_two_workers(run: Path) -> None:
    reader = RunReader(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["participants"]["joined"] == 4 and summary["video_latency_ms"]["samples"] > 0
    probes = reader.table("probes")
    hosts = probes[probes["role"] == "media_host"]
    assert hosts["pid"].nunique() == 2  # samples from both workers' media hosts reached the one writer
    started = reader.table("events")
    assert (started["kind"] == "media_host_started").sum() == 2
    workers = reader.manifest["workers"]
    assert len(workers) == 2 and len({w["pid"] for w in workers}) == 2
    assert all(w["clock_sync"]["state"] in ("synchronized", "unsynchronized", "unknown") for w in workers)
    assert reader.manifest["clock_sync"]["state"] == "single-host"  # one machine: one clock
    # Every sender is decoded somewhere, whichever worker hosts it (the master's roster designates probes).
    assert reader.table("frames")["sender"].nunique() == 4


def test_master_and_two_workers_over_loopback(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    port = free_port()
    cli = [sys.executable, "-m", "harness.cli"]
    master = subprocess.Popen([*cli, "master", str(tmp_path / "s.toml"), "--system", "reference", "--workers", "2",
                               "--port", str(port), "--wait", "60", "--results", str(tmp_path / "r"), "--no-report"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = [subprocess.Popen([*cli, "worker", "--master", f"127.0.0.1:{port}"], cwd=tmp_path.parent,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        out, err = master.communicate(timeout=300)
        for worker in workers:
            assert worker.wait(timeout=60) == 0  # the master tells its workers to quit at the end
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert master.returncode == 0, out[-3000:] + err[-3000:]
    runs = [p for p in (tmp_path / "r").iterdir() if p.is_dir()]
    assert len(runs) == 1
    assert (runs[0] / "locustfile.py").read_text().count("define(globals()") == 1  # what the workers ran
    check_two_workers(runs[0])


def test_two_local_processes(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(tmp_path / "s.toml"), "--system",
                           "reference", "--processes", "2", "--results", str(tmp_path / "r"), "--no-report"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check_two_workers(next(p for p in (tmp_path / "r").iterdir() if p.is_dir()))


def test_clocks_of_several_hosts_must_agree() -> None:
    synced = {"state": "synchronized", "detail": ""}
    assert combine([{"host": "a", "clock_sync": synced}, {"host": "a", "clock_sync": {"state": "unknown"}}]) \
        == (None, [])  # one host, one clock
    state, reasons = combine([{"host": "a", "clock_sync": synced}, {"host": "b", "clock_sync": synced}])
    assert state is not None and state["state"] == "synchronized" and reasons == []
    state, reasons = combine([{"host": "a", "clock_sync": synced},
                              {"host": "b", "clock_sync": {"state": "unsynchronized"}}])
    assert state is not None and state["state"] == "unsynchronized"
    assert len(reasons) == 1 and "b" in reasons[0] and "different clocks" in reasons[0]
    assert clock_sync_state()["state"] in ("synchronized", "unsynchronized", "unknown")
