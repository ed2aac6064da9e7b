"""Issue 3's room of six on the reference SFU: everyone publishes and receives; every stream holds 30 fps.

A real run (Locust, two media hosts, the SFU process, WebRTC on loopback) of ``scenarios/meeting-6.toml`` with
a smaller picture (160x90 at 150 kbit/s instead of 320x180): the claim under test is the room (6 x 5 streams
forwarded, all at 30 fps, every sender measured), and on a shared 2-core CI machine the full-size room can
leave the generator itself without headroom. Its full-size figures are in docs/figures.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_until_valid

from harness.store.reader import RunReader

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent

def _smaller_room(tmp_path: Path) -> Path:
    text = (ROOT / "scenarios" / "meeting-6.toml").read_text()
    for old, new in (("width = 320", "width = 160"), ("height = 180", "height = 90"),
                     ("bitrate_kbps = 300", "bitrate_kbps = 150")):
        assert old in text, f"scenarios/meeting-6.toml no longer has {old!r}"
        text = text.replace(old, new)
    path = tmp_path / "meeting-6-small.toml"
    path.write_text(text)
    return path


def test_six_people_hold_30_fps_on_every_stream(tmp_path: Path) -> None:
    scenario = _smaller_room(tmp_path)
    # A run the harness declares invalid because the machine fell behind measured the machine, not the room:
    # run_until_valid measures it again once the machine is quiet.
    proc, run = run_until_valid([str(scenario), "--duration", "15", "--no-report"], ROOT, tmp_path / "results")
    summary = json.loads((run / "summary.json").read_text())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
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
