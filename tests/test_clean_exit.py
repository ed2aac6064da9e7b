"""Commands end quietly: no "Task was destroyed but it is pending", no "Event loop is closed", no unclosed event
loop, no decoder warnings for frames that came before a receiver's first key frame (docs/reliability.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

NOISE = ("Task was destroyed but it is pending", "Event loop is closed", "unclosed event loop", "Traceback",
         "failed to decode")

BROKER_LEFT_WITH_A_LINK = """
import asyncio
from harness.systems.p2p import P2PSystem

system = P2PSystem()
deployment = system.deploy()

async def join():
    channel = await P2PSystem(deployment.url).connect()
    await channel.send({"op": "join", "room": "r", "participant": "a"})
    await channel.recv()
    await channel.close()  # the client hangs up; the broker's side of the link may still be open

asyncio.run(join())
async def linger():
    reader, writer = await asyncio.open_connection(*deployment.url[len("tcp://"):].split(":"))
    writer.write(b'{"op": "join", "room": "r", "participant": "b"}\\n')
    await reader.readline()
    system.undeploy()  # while this link is open, as a media host that has not hung up yet
    writer.close()

asyncio.run(linger())
print("ok")
"""


def test_the_p2p_broker_stops_quietly_with_links_open(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-W", "default::ResourceWarning", "-c", BROKER_LEFT_WITH_A_LINK],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    assert not [n for n in NOISE if n in proc.stderr], proc.stderr


@pytest.mark.integration
def test_calibrate_quick_exits_quietly(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("calibrate's emulated link needs root (network namespaces)")
    env = {**os.environ, "CONFBENCH_CALIBRATION": str(tmp_path / "calibration.json")}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stderr  # 1: a cell outside its limit on a busy machine
    assert not [n for n in NOISE if n in proc.stderr], proc.stderr


MEETING = """
name = "quiet"
duration_s = 8
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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_run_exits_quietly_and_its_media_hosts_log_no_decoder_warnings(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(MEETING)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", "s.toml", "--system", "reference",
                           "--processes", "1", "--results", "r", "--no-report"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode in (0, 1), proc.stderr  # 1: invalid on a busy machine; what matters is the log
    assert "4/4 joined" in proc.stdout, proc.stdout[-2000:]
    assert not [n for n in NOISE if n in proc.stdout + proc.stderr], proc.stderr[-3000:]
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "r").glob("*/media_host-*.log"))
    assert not [n for n in NOISE if n in logs], logs[-3000:]


@pytest.mark.integration
def test_a_worker_exits_quietly_and_logs_no_decoder_warnings(tmp_path: Path) -> None:
    # A worker's media host logs to the worker's stderr (there is no run folder on a worker's side).
    (tmp_path / "s.toml").write_text(MEETING)
    port = _free_port()
    cli = [sys.executable, "-m", "harness.cli"]
    master = subprocess.Popen([*cli, "master", "s.toml", "--system", "reference", "--workers", "1", "--port",
                               str(port), "--wait", "120", "--results", "r", "--no-report"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = subprocess.Popen([*cli, "worker", "--master", f"127.0.0.1:{port}"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, _ = master.communicate(timeout=240)
        _, worker_err = worker.communicate(timeout=60)
    finally:
        for proc in (master, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert "4/4 joined" in out, out[-2000:]
    assert not [n for n in NOISE if n in worker_err], worker_err[-3000:]
