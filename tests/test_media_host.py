"""The media host process and its pipe protocol (no Locust): replies, bad input, and ending with its parent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.scenario.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def start() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "harness.host.media_host"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def send(proc: subprocess.Popen[bytes], msg: dict[str, Any] | bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(msg if isinstance(msg, bytes) else json.dumps(msg).encode() + b"\n")
    proc.stdin.flush()


def reply(proc: subprocess.Popen[bytes], rid: int) -> dict[str, Any]:
    assert proc.stdout is not None
    for line in proc.stdout:
        msg = json.loads(line)  # stdout carries the protocol only: every line is JSON
        if msg.get("type") == "reply" and msg.get("id") == rid:
            return dict(msg)
    raise AssertionError("media host closed its output without replying")


def test_commands_bad_input_and_end_of_input() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "default.toml")
    proc = start()
    try:
        send(proc, {"op": "configure", "id": 1, "scenario": scenario.to_dict(),
                    "system": {"name": "p2p", "url": None}, "host_addresses": ["127.0.0.1"]})
        assert reply(proc, 1)["ok"]
        send(proc, b"this is not json\n")
        send(proc, {"op": "dance", "id": 2})
        bad = reply(proc, 2)
        assert not bad["ok"] and "unknown op" in bad["error"]
        send(proc, {"op": "configure", "id": 3, "scenario": scenario.to_dict(),
                    "system": {"name": "nosuch", "url": None}})
        assert "unknown system" in reply(proc, 3)["error"]
        assert proc.stdin is not None
        proc.stdin.close()  # what the Locust process's death looks like from here
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr is not None
    assert b"not JSON" in proc.stderr.read()


def test_a_designation_that_arrives_before_its_receiver_is_kept() -> None:
    """The master designates a receiver as soon as a newcomer is admitted, which can be while that receiver is
    still being created; the designation must not be lost (a sender would then have no latency figures)."""
    import asyncio
    import io

    from harness.host.media_host import MediaHost, _Outbox

    scenario = load_scenario(ROOT / "scenarios" / "meeting-6.toml")
    scenario_dict = scenario.to_dict()

    async def scenario_run() -> tuple[bool, bool]:
        host = MediaHost(_Outbox(io.BytesIO()))
        await host.handle({"op": "configure", "scenario": scenario_dict, "system": {"name": "p2p", "url": None},
                           "host_addresses": ["127.0.0.1"]})
        await host.handle({"op": "probe", "participant": "everyone-0", "sender": "everyone-7"})
        try:
            row = await host.handle({"op": "join", "participant": "everyone-0", "group": "everyone", "index": 0,
                                     "probes": []})
            assert row["ok"], row
            participant = host.participants["everyone-0"]
            # A web app's display name for the same sender (letters and digits only) is the same sender.
            assert participant.is_probe("everyone7")
            return participant.is_probe("everyone-7"), participant.is_probe("everyone-9")
        finally:
            await host.stop_all()

    designated, other = asyncio.run(asyncio.wait_for(scenario_run(), 60))
    assert designated
    assert not other  # both pairs draw above 0.1: only the designation makes everyone-7 decoded
