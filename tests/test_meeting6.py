"""Issue 3's room of six on the reference SFU: everyone publishes and receives; every stream holds 30 fps.

A real run (Locust, two media hosts, the SFU process, WebRTC on loopback). On a 2-core machine it fits
because four fifths of the received streams are measured without decoding (probe_fraction = 0.2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store import RunReader

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_six_people_hold_30_fps_on_every_stream(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(ROOT / "scenarios" / "meeting-6.toml"), "--duration", "15",
         "--results", str(tmp_path), "--no-report"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    run = next(p for p in tmp_path.iterdir() if p.is_dir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["participants"]["joined"] == 6
    assert summary["packet_loss_pct"] == 0
    window = summary["window"]
    streams = RunReader(run).table("streams")
    inbound = streams[(streams["direction"] == "in") & (streams["kind"] == "video")
                      & (streams["ts"] >= window["start"]) & (streams["ts"] <= window["end"])]
    per_stream = inbound.groupby(["participant", "peer"])["fps"].mean()
    assert len(per_stream) == 6 * 5  # everyone receives everyone
    assert per_stream.min() >= 28.5, per_stream.sort_values().head()
    assert summary["video_latency_ms"]["samples"] > 0  # the probes decoded stamps
    # Every sender has a designated probe, so every sender has latency figures, whatever the draw.
    frames = RunReader(run).table("frames")
    assert frames["sender"].nunique() == 6
    assert summary["sut_cpu_pct"]["mean"] > 0  # the SFU's own process was watched
