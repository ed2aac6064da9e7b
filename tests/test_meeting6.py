"""Issue 3's room of six on the reference SFU: everyone publishes and receives; every stream holds 30 fps.

A real run (Locust, two media hosts, the SFU process, WebRTC on loopback) of ``scenarios/meeting-6.toml`` with
a smaller picture (160x90 at 150 kbit/s instead of 320x180): the claim under test is the room (6 x 5 streams
forwarded, all at 30 fps, every sender measured), and on a shared 2-core CI machine the full-size room can
leave the generator itself without headroom. Its full-size figures are in docs/figures.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.store.reader import RunReader

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent

# A run the harness declares invalid because the generator saturated measured the machine, not the room: it
# is run once more. A second such verdict fails the test (the room does not fit this machine).
ATTEMPTS = 2


def _smaller_room(tmp_path: Path) -> Path:
    text = (ROOT / "scenarios" / "meeting-6.toml").read_text()
    for old, new in (("width = 320", "width = 160"), ("height = 180", "height = 90"),
                     ("bitrate_kbps = 300", "bitrate_kbps = 150")):
        assert old in text, f"scenarios/meeting-6.toml no longer has {old!r}"
        text = text.replace(old, new)
    path = tmp_path / "meeting-6-small.toml"
    path.write_text(text)
    return path


def _run(scenario: Path, results: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--duration", "15",
         "--results", str(results), "--no-report"], capture_output=True, text=True, timeout=300)
    runs = [p for p in results.iterdir() if p.is_dir()] if results.exists() else []
    assert len(runs) == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc, runs[0]


def test_six_people_hold_30_fps_on_every_stream(tmp_path: Path) -> None:
    scenario = _smaller_room(tmp_path)
    for attempt in range(1, ATTEMPTS + 1):
        proc, run = _run(scenario, tmp_path / f"attempt-{attempt}")
        summary = json.loads((run / "summary.json").read_text())
        reasons = json.loads((run / "manifest.json").read_text()).get("invalid_reasons") or []
        generator_only = bool(reasons) and all("load generator saturated" in r for r in reasons)
        saturated = summary["status"] == "invalid" and generator_only
        if not saturated:
            break
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
