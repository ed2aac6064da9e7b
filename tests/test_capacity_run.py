"""A real capacity search on the reference SFU: Locust's shape ramps, the steps are judged from the results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCENARIO = """
name = "capacity-small"
spawn_rate = 4
[media.video]
width = 320
height = 180
fps = 15
bitrate_kbps = 300
[[groups]]
name = "everyone"
count = 2
publish = ["video"]
probe_fraction = 0.5
[capacity]
step_s = 4
settle_s = 2
max_participants = 4
max_duration_s = 180
"""


def test_capacity_search_on_the_reference_sfu(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "capacity", str(tmp_path / "s.toml"), "--system", "reference",
         "--results", str(tmp_path / "r"), "--reports", str(tmp_path / "rep")],
        capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "capacity: at least 4 participants (12 video and 0 audio streams received)" in proc.stdout
    run = next((tmp_path / "r").iterdir())
    capacity = json.loads((run / "capacity.json").read_text())
    assert [(s["participants"], s["verdict"]) for s in capacity["steps"]] == [(2, "pass"), (4, "pass")]
    assert capacity["result"]["outcome"] == "max_reached"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["capacity"]["capacity_participants"] == 4
    # Each step was judged on its own window: 2 participants exchange 2 streams, 4 exchange 12.
    assert [s["streams"]["video"] for s in capacity["steps"]] == [2, 12]
    assert all(s["figures"]["sut_cpu_pct"]["mean"] > 0 for s in capacity["steps"])  # the SFU was watched
    page = next((tmp_path / "rep").iterdir())
    html = (page / "index.html").read_text()
    assert "at least 4 participants" in html and (page / "quality.png").stat().st_size > 10_000
    assert (page / "cpu.png").stat().st_size > 5_000


def test_capacity_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "capacity", str(tmp_path / "s.toml"), "--system",
                           "reference", "--step-s", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "step_s" in proc.stderr
