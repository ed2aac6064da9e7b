"""Locust run directly on the harness's locustfile (what a user does for the web UI or --processes)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store.reader import RunReader

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "harness" / "loadgen" / "locustfile.py"
SCENARIO = """
name = "direct"
duration_s = 6
[media.video]
width = 320
height = 180
fps = 15
[[groups]]
name = "g"
count = 2
"""


def locust(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "s.toml").write_text(SCENARIO)
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "2", "-r", "2", "-t", "8s",
         "--confbench-scenario", "s.toml", "--only-summary", *extra],
        cwd=tmp_path, capture_output=True, text=True, timeout=180)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_run(tmp_path: Path) -> None:
    runs = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert len(runs) == 1
    reader = RunReader(runs[0])
    assert reader.manifest["status"] == "completed"
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["participants"]["joined"] == 2
    assert summary["video_latency_ms"]["samples"] > 2 * 15 * 3
    assert set(reader.table("probes")["role"]) >= {"locust", "media_host"}


def test_plain_locust_writes_a_run(tmp_path: Path) -> None:
    proc = locust(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "results of this Locust run go to" in proc.stdout + proc.stderr
    check_run(tmp_path)


def test_locust_processes_with_a_broker(tmp_path: Path) -> None:
    broker = subprocess.Popen([sys.executable, "-m", "harness.cli", "broker"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert broker.stdout is not None
        line = broker.stdout.readline()
        system = line.split("--confbench-system ")[1].strip()
        assert system.startswith("p2p=tcp://127.0.0.1:")
        port = str(free_port())
        proc = locust(tmp_path, "--processes", "2", "--confbench-system", system, "--master-bind-host",
                      "127.0.0.1", "--master-bind-port", port, "--master-host", "127.0.0.1", "--master-port", port)
        assert proc.returncode == 0, proc.stderr[-3000:]
        check_run(tmp_path)
        # Two workers, one participant each: they met through the broker, so each saw the other.
        frames = RunReader(next(p for p in (tmp_path / "results").iterdir() if p.is_dir())).table("frames")
        assert frames["receiver"].nunique() == 2
    finally:
        broker.terminate()
        broker.wait(timeout=10)
        time.sleep(0.1)
