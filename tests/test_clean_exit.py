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
