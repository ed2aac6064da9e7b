"""Calibration through a system (``confbench calibrate --system``).

Unit: which link gets what on each path, the loss pass mark, the summary a run's manifest records.
Integration (root): the quick grid through the reference SFU and through Debian's Janus, every cell within
its limit, and the result remembered for the manifests of later runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.orchestrate.calibration import Calibration, Cell, Floor
from harness.orchestrate.system_calibration import _nacked_loss, _shapes, last_calibration, loss_cell, summary
from harness.scenario.network import Shape
from tests.conftest import janus_skip_reason, livekit_skip_reason

HYPERVISOR = "BUSY: the hypervisor withheld"


def test_each_path_shapes_its_own_links() -> None:
    up = _shapes("up", delay=40)
    assert up["sender"][0] == Shape(delay_ms=40) and up["receiver"] == (Shape(), Shape())
    down = _shapes("down", delay=40)
    assert down["receiver"][1] == Shape(delay_ms=40) and down["sender"] == (Shape(), Shape())
    both = _shapes("both", delay=40, loss=5)
    assert both["sender"][0] == Shape(delay_ms=20, loss_pct=5) and both["receiver"][1] == Shape(delay_ms=20, loss_pct=5)
    assert both["sender"][1] == Shape(loss_pct=5) and both["receiver"][0] == Shape(loss_pct=5)


def test_a_loss_cell_passes_within_15_percent_or_three_sigmas() -> None:
    assert loss_cell("down", "x", 10, 11.0, 100_000, "").ok  # +10 %
    assert not loss_cell("down", "x", 10, 12.0, 100_000, "").ok  # +20 %, many samples
    assert loss_cell("down", "x", 10, 12.0, 400, "").ok  # +20 %, but within 3 sigmas of 400 packets
    assert not loss_cell("down", "x", 10, None, 0, "").ok


def test_uplink_loss_is_the_sender_video_asked_for_again() -> None:
    import pandas as pd
    rows = pd.DataFrame({"kind": ["video", "video", "audio"], "packets": [500, 500, 250],
                         "packets_nacked": [40, 60, 0]})
    assert _nacked_loss(rows) == (10.0, 1000)
    # A server that asks for nothing (or results from before the column): the receiver reports decide.
    assert _nacked_loss(rows.assign(packets_nacked=0)) == (None, 0)
    assert _nacked_loss(rows.drop(columns="packets_nacked")) == (None, 0)


def test_the_summary_keeps_the_largest_error_per_path_and_kind() -> None:
    floor = Floor("v", 5.0, 9.0, 90.0, 100, "2026-12-05T00:00:00+00:00", "calibration")
    cells = (Cell("delay", 0, "ms", 0.4, 0.4, 2.0, True, "up: a"), Cell("delay", 50, "ms", 51.5, 1.5, 3.0, True,
                                                                        "up: b"),
             Cell("loss", 10, "%", 9.0, -0.1, 0.15, True, "down: c"))
    got = summary(Calibration("v", "wire", floor, cells, machine={"system": "janus"}))
    assert got["system"] == "janus" and got["ok"] is True
    assert got["worst"]["up delay"]["error"] == 1.5 and got["worst"]["down loss"]["error"] == -0.1


def _calibrate(system: str, tmp_path: Path) -> dict:
    cache = tmp_path / "calibration.json"
    env = {**os.environ, "CONFBENCH_CALIBRATION": str(cache)}
    done = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", "--system", system, "--quick",
                           "--json"], capture_output=True, text=True, timeout=400, env=env)
    result = json.loads(done.stdout)
    failed = [c for c in result["cells"] if not c["ok"]]
    # As run_until_valid: a cell still busy after its last measurement *because the hypervisor withheld the
    # cores* (its note says so) tells about the host's other tenants, not the code. Other failures fail.
    if done.returncode != 0 and failed and all(HYPERVISOR in c["note"] for c in failed):
        pytest.skip(f"calibration through {system}: cells busy while the machine was shared: "
                    + "; ".join(c["note"] for c in failed))
    assert done.returncode == 0, json.dumps(failed, indent=1)
    assert {c["note"].split(":")[0] for c in result["cells"]} == {"up", "down", "both"}
    os.environ["CONFBENCH_CALIBRATION"], saved = str(cache), os.environ.get("CONFBENCH_CALIBRATION")
    try:
        remembered = last_calibration(system)
    finally:
        if saved is not None:
            os.environ["CONFBENCH_CALIBRATION"] = saved
    assert remembered is not None and remembered["ok"] is True
    return result


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="the emulated network needs root (namespaces, TUN)")
def test_calibration_through_the_reference_sfu(tmp_path: Path) -> None:
    _calibrate("reference", tmp_path)


@pytest.mark.integration
def test_calibration_through_janus(tmp_path: Path) -> None:
    reason = janus_skip_reason()
    if reason:
        pytest.skip(reason)
    _calibrate("janus", tmp_path)


@pytest.mark.integration
def test_calibration_through_livekit(tmp_path: Path) -> None:
    reason = livekit_skip_reason()
    if reason:
        pytest.skip(reason)
    _calibrate("livekit", tmp_path)
