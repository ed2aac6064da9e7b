"""A short real run (p2p, real WebRTC on loopback): ``out`` rows carry the burstiness columns, and a paced
publisher's packets leave spread out where an unpaced one's leave in bursts."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import confbench, only_run

from harness.store.reader import RunReader

pytestmark = pytest.mark.integration

# Frames far larger than a burst: 400 kbit/s at 1 fps is about 50 kB a frame (the synthetic picture at this
# size takes every bit it is given); the pacing rate is 2.5 x a browser's start-up estimate, 2.25 Mbit/s, so a
# burst is 11 kB (40 ms of it) and the rest of a paced frame leaves a packet about every 4 ms, an unpaced one
# all at once.
ROOM = """
name = "pacing"
duration_s = 15
spawn_rate = 5
systems = ["p2p"]
[media.video]
width = 640
height = 360
fps = 1
bitrate_kbps = 400
[[groups]]
name = "paced"
count = 1
subscribe = false
[[groups]]
name = "bursty"
count = 1
pacing = false
subscribe = false
[[groups]]
name = "viewer"
count = 1
publish = []
probe_fraction = 0.0
"""

FLOOR_MS = 1.0
"""Between a burst's gaps (tens of microseconds: one synchronous loop of sends) and a paced packet's (about
4 ms here); a late timer on a busy machine lengthens paced gaps (packets due within a millisecond of each other
leave together, so a few become bursts, not most)."""

PACED_PACKETS = 20
"""Packets in a second whose frame was more than two bursts (a burst is 11 kB, about 10 packets)."""


def test_out_rows_show_paced_and_bursty_senders(tmp_path: Path) -> None:
    room = tmp_path / "pacing.toml"
    room.write_text(ROOM)
    proc = confbench("run", str(room), "--results", str(tmp_path / "results"), "--no-report",
                     "--processes", "1", cwd=tmp_path)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode in (0, 1), out + err
    streams = RunReader(only_run(tmp_path / "results")).table("streams")
    sent = streams[(streams["direction"] == "out") & (streams["packets"] > 1)]
    columns = ["send_gap_p50_ms", "send_gap_p95_ms", "send_gap_max_ms", "send_burst_pct", "send_jitter_ms"]
    for kind in ("video", "audio"):
        rows = sent[sent["kind"] == kind]
        assert len(rows) >= 4, streams
        assert rows[columns].notna().all().all(), rows[columns]
    # Seconds whose frame had several packets (a single packet has no gap within its frame to show); for the
    # paced sender, frames of more than two bursts (key frames and the encoder's first frames: later ones fit
    # in a burst, as they would leave a browser).
    video = sent[(sent["kind"] == "video") & (sent["packets"] >= 3)]
    paced = video[video["participant"].str.startswith("paced") & (video["packets"] >= PACED_PACKETS)]
    bursty = video[video["participant"].str.startswith("bursty")]
    assert len(paced) >= 3 and len(bursty) >= 3
    assert paced["send_gap_p50_ms"].median() > FLOOR_MS, paced[columns]
    assert bursty["send_gap_p50_ms"].median() < FLOOR_MS, bursty[columns]
    # Most of an unpaced frame's packets follow the previous one within a millisecond; few of a paced one's.
    assert bursty["send_burst_pct"].median() > paced["send_burst_pct"].median() + 30
