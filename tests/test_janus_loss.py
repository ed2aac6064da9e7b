"""Native receivers under loss through a real SFU (Debian's Janus, root): the regression test of the issue on
truth through real SFUs.

Before the receive path was fixed (``harness/rtc/jitter.py``), a 3-person Janus room with 3 % loss each way on
its links measured video latency p50 ~7,400 ms and fps p50 0 (one unrepaired packet held every later frame,
and a backlog of one frame per packet never drained), and no retransmission from Janus ever reached a
receiver (aiortc routed RTX packets of a multistream connection nowhere): 20 % of frames lost behind a
20 ms link with 3 % loss on the way down, where Chromium loses almost none.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.store.reader import RunReader
from tests.conftest import janus_skip_reason
from tests.helpers import run_until_valid

pytestmark = pytest.mark.integration

ROOM = """
name = "{name}"
duration_s = 15
spawn_rate = 3
[media.video]
width = 320
height = 180
fps = 30
codec = "VP8"
bitrate_kbps = 300
"""

LOSSY_ROOM = ROOM + """
[[groups]]
name = "everyone"
count = 3
[groups.network]
loss_pct = 3
"""

LOSSY_DOWNLINK = ROOM + """
[[groups]]
name = "near"
count = 2
[[groups]]
name = "far"
count = 1
[groups.network]
delay_ms = 20
down = { loss_pct = 3 }
"""


def _summary(tmp_path: Path, scenario: str) -> tuple[dict, Path]:
    reason = janus_skip_reason()
    if reason:
        pytest.skip(reason)
    (tmp_path / "s.toml").write_text(scenario)
    proc, run = run_until_valid(["s.toml", "--system", "janus", "--no-report"], tmp_path, tmp_path / "results",
                                timeout_s=240)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1: a threshold or a loaded machine; judged below
    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert summary["status"] == "completed", (summary["status"], manifest.get("invalid_reasons"),
                                              summary.get("warnings"))
    return summary, run


def test_a_lossy_janus_room_keeps_its_frames_flowing(tmp_path: Path) -> None:
    summary, _ = _summary(tmp_path, LOSSY_ROOM.replace("{name}", "lossy-janus"))
    assert summary["packet_loss_pct"] > 2  # the loss was there (each packet crosses two lossy legs)
    assert summary["video_latency_ms"]["p50"] < 100, summary["video_latency_ms"]
    # 30 fps on a quiet machine; 23 seen once with the machine busy. Before the fix: 0.
    assert summary["fps"]["p50"] >= 20, summary["fps"]


def test_janus_retransmissions_reach_native_receivers(tmp_path: Path) -> None:
    summary, run = _summary(tmp_path, LOSSY_DOWNLINK.replace("{name}", "lossy-downlink"))
    assert summary["packet_loss_pct"] > 0.5
    frames = RunReader(run).table("frames")
    far = frames[frames["receiver"].str.startswith("far")]
    assert len(far) > 100, len(far)
    per_stream = far.groupby("sender")["frame_no"].agg(["min", "max", "nunique"])
    expected = float((per_stream["max"] - per_stream["min"] + 1).sum())
    lost_pct = 100.0 * (expected - float(per_stream["nunique"].sum())) / expected
    # Repaired by RTX, the far receiver barely loses frames (measured 1.6 % on a quiet machine, 8.2 % once under
    # load; 34 % when no retransmission was routed), and frames behind a repaired gap wait one repair, not a
    # standing backlog (20 ms link delay).
    assert lost_pct < 15, lost_pct
    assert far["latency_ms"].median() < 100, far["latency_ms"].describe()
