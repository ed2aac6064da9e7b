"""Faults in a real run, as a user starts it (``confbench run``; root for the emulated link): a participant's
link goes down, then the server is killed and started again, and the summary and report say how each system
came back. Reference SFU, Janus (from Debian) and LiveKit (built from its Go module); skipped where absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import livekit_skip_reason

from harness.store.reader import RunReader

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="the emulated network needs root (namespaces, TUN)")]

# The short form of scenarios/outage.toml: a 3 s outage at 10 s, a restart at 20 s (times from the load's start:
# the participants are in the call a few seconds after it); participants that hear nothing for 5 s start again
# (longer than the outage plus a report interval: the outage recovers by itself).
SCENARIO = """
name = "outage-short"
duration_s = 40
spawn_rate = 3
join_timeout_s = 15
reconnect_after_s = 5
[media.video]
width = 320
height = 180
fps = 15
bitrate_kbps = 200
[[groups]]
name = "roaming"
count = 1
[[groups.network.timeline]]
at_s = 10
outage_s = 3
[[groups]]
name = "office"
count = 2
[[timeline]]
at_s = 20
server = "restart"
"""


def _story(run: Path) -> list[str]:
    """The run's events but media ones, one line each, seconds from the first."""
    events = RunReader(run).table("events").sort_values("ts")
    start = float(events["ts"].min())
    return [f"{ts - start:6.2f} {who} {kind} {detail}"
            for ts, who, kind, detail in zip(events["ts"], events["participant"], events["kind"], events["detail"],
                                             strict=True)
            if kind not in ("media_started", "media_resumed")]


@pytest.mark.parametrize("system", ["reference", "janus", "livekit"])
def test_recovery_from_an_outage_and_a_server_restart(tmp_path: Path, system: str) -> None:
    if system == "janus" and shutil.which("janus") is None:
        pytest.skip("Janus is not installed (apt-get install janus)")
    if system == "livekit" and (reason := livekit_skip_reason()):
        pytest.skip(reason)
    (tmp_path / "s.toml").write_text(SCENARIO)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "s.toml", "--system", system,
                           "--processes", "1", "--results", "results", "--reports", "reports"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: a loaded machine may make the run invalid
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] in ("completed", "invalid"), RunReader(run).manifest.get("errors")
    outage, restart = summary["outages"]["faults"]

    # The link outage: the streams to and from the cut participant (2 received by it, 2 sent by it) come
    # back by themselves, well within the reconnection delay.
    assert (outage["kind"], outage["group"], outage["length_s"]) == ("outage", "roaming", pytest.approx(3, abs=0.2))
    assert outage["streams"] == 4 and outage["recovered"] == 4, outage
    assert 0 <= outage["recovery_ms"]["max"] < 5000, outage

    # The restart: every participant noticed, joined again, and every stream came back.
    assert restart["kind"] == "server_restart" and restart["length_s"] > 0
    story = _story(run)  # what each participant did, for the message of a failure
    assert restart["reconnected"] == 3 and restart["dropped"] == [], (restart, story)
    assert restart["streams"] == 6 and restart["recovered"] == 6, (restart, story)
    # Noticed after reconnect_after_s of silence at the latest, then joined again within the join timeout.
    assert restart["recovery_ms"]["max"] < (5 + 15 + 3) * 1000, restart
    assert summary["participants"]["dropped"] == 0

    events = RunReader(run).table("events")
    assert {"server_restart", "connection_lost", "reconnected", "media_resumed", "media_started"} <= set(events["kind"])
    (report,) = (tmp_path / "reports").glob("*/index.html")
    page = report.read_text()
    assert "<h2>Outages</h2>" in page and "outage of roaming" in page and "server restart" in page
    assert "Traceback" not in done.stderr
