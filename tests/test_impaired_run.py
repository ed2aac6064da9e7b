"""A run with an impaired group, end to end: ``confbench run`` as a user starts it (root; skipped otherwise).

Participants of the impaired group run in their own namespace behind the user-space wire; the other group's
stay in the root namespace. What the network did is in the results (the ``network`` table, the timeline's
``network_change`` events, the manifest's backend), and it shows in what the participants measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.charts import network_changes
from harness.report.data import load_run
from harness.store.reader import RunReader

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="the emulated network needs root (namespaces, TUN)")]

SCENARIO = """
name = "impaired"
duration_s = 10
spawn_rate = 5
[media.video]
width = 320
height = 180
fps = 15
bitrate_kbps = 300
[[groups]]
name = "far"
count = 1
[groups.network]
delay_ms = 60
[[groups.network.timeline]]
at_s = 9
down = { loss_pct = 30 }
[[groups]]
name = "near"
count = 1
"""


def test_an_impaired_group_is_measured_through_its_link(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "s.toml", "--system", "p2p", "--processes",
                           "1", "--results", "results", "--reports", "reports"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode in (0, 1), done.stderr  # 1: a loaded machine may make the run invalid
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    reader = RunReader(run)
    manifest = reader.manifest
    assert manifest["status"] in ("completed", "invalid"), manifest
    assert manifest["network"]["backend"] == "wire"
    assert set(manifest["network"]["groups"]) == {"far"}
    frames = reader.table("frames")
    inward = frames[frames["sender"].str.startswith("far") & frames["receiver"].str.startswith("near")]
    outward = frames[frames["sender"].str.startswith("near") & frames["receiver"].str.startswith("far")]
    # 60 ms each way on the far group's link: nothing can arrive sooner, however loaded the machine.
    assert len(inward) > 20 and inward["latency_ms"].min() >= 60
    assert len(outward) > 20 and outward["latency_ms"].min() >= 60
    network = reader.table("network")
    far_down = network[(network["group"] == "far") & (network["direction"] == "down")]
    assert far_down["packets"].sum() > 100 and far_down["lost"].sum() > 0  # the timeline's loss
    changes = [json.loads(d) for d in reader.table("events").query("kind == 'network_change'")["detail"]]
    assert [c["at_s"] for c in changes] == [0, 9]
    assert reader.table("probes").query("role == 'wire'")["cpu_pct"].notna().all()
    # The report marks the change where it happened: 9 s after the run's start.
    (marked,) = network_changes(load_run(run))
    assert marked[0] == pytest.approx(9.0, abs=0.05) and "30% loss" in marked[1]
    page = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert "bitrate_over_time.png" in page
    assert "Network emulation" in page and "far: custom; wire" in page
    streams = reader.table("streams")
    inbound_audio = streams[(streams["direction"] == "in") & (streams["kind"] == "audio")]
    assert inbound_audio["mos"].between(1, 4.5).any()
    assert streams["psnr_db"].between(15, 100).any()
    assert not subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(
        manifest["network"]["groups"]["far"]["namespace"])


JANUS_SCENARIO = """
name = "impaired-janus"
duration_s = 8
spawn_rate = 5
[media.video]
width = 320
height = 180
fps = 15
bitrate_kbps = 300
[[groups]]
name = "far"
count = 1
network = { delay_ms = 50 }
[[groups]]
name = "near"
count = 1
"""


def test_an_impaired_group_reaches_a_server_in_its_own_namespace(tmp_path: Path) -> None:
    """Janus runs in a namespace of its own (the Janus testbed), joined to the impaired network as well."""
    if shutil.which("janus") is None:
        pytest.skip("Debian's janus package is not installed (apt-get install janus)")
    (tmp_path / "s.toml").write_text(JANUS_SCENARIO)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "s.toml", "--system", "janus", "--processes",
                           "1", "--results", "results", "--no-report"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode in (0, 1), done.stderr
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    reader = RunReader(run)
    assert reader.manifest["status"] in ("completed", "invalid"), reader.manifest
    frames = reader.table("frames")
    for sender, receiver in (("far", "near"), ("near", "far")):
        path = frames[frames["sender"].str.startswith(sender) & frames["receiver"].str.startswith(receiver)]
        # Through the SFU, every frame of this pair crosses the far group's link once: at least 50 ms.
        assert len(path) > 20 and path["latency_ms"].min() >= 50, (sender, receiver, len(path))
