"""Tests for harness.analysis.summary: every figure of summary.json on a synthetic run with known numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harness.analysis.summary import format_table, summarize
from harness.scenario.thresholds import KNOWN_KEYS, parse_threshold
from harness.store.manifest import SCHEMA_VERSION, write_manifest, write_summary
from harness.store.reader import RunReader
from harness.store.writer import RunWriter


def join(participant: str, attempt: int, ok: bool, join_ms: float | None = None) -> dict[str, Any]:
    return {
        "ts": 1.0,
        "participant": participant,
        "group": "g",
        "host": "h",
        "attempt": attempt,
        "ok": ok,
        "join_ms": join_ms,
        "error": None if ok else "timeout",
    }


def frame(receiver: str, sender: str, stream_id: int, frame_no: int, latency_ms: float) -> dict[str, Any]:
    return {
        "ts": 2.0,
        "receiver": receiver,
        "sender": sender,
        "stream_id": stream_id,
        "frame_no": frame_no,
        "capture_ts": 1.9,
        "latency_ms": latency_ms,
        "width": 640,
        "height": 360,
    }


def stream(direction: str, kind: str, **figures: Any) -> dict[str, Any]:
    row = {
        "ts": 3.0,
        "participant": "a",
        "peer": "b",
        "direction": direction,
        "kind": kind,
        "ssrc": 1,
        "packets": 100,
        "packets_lost": 0,
        "freezes": 0,
        "freeze_ms": 0.0,
        "frames_unreadable": 0,
    }
    row.update(figures)
    return row


def probe(ts: float, role: str, pid: int, cpu_pct: float, rss_mb: float = 50.0) -> dict[str, Any]:
    return {
        "ts": ts,
        "host": "h",
        "role": role,
        "pid": pid,
        "name": role,
        "cpu_pct": cpu_pct,
        "rss_mb": rss_mb,
    }


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run whose every figure is worked out by hand in test_summary_figures."""
    run_dir = tmp_path / "run"
    write_manifest(
        run_dir,
        {
            "run_id": "20261128T214501Z-p2p-ab12",
            "status": "completed",
            "started_utc": "2026-11-28T21:45:01.000Z",
            "ended_utc": "2026-11-28T21:47:01.500Z",
            "system": {"name": "p2p", "url": None, "version": "1"},
        },
    )
    with RunWriter(run_dir) as writer:
        writer.append(
            "joins",
            [
                join("p1", 1, True, 100.0),
                join("p2", 1, False, 5000.0),  # a failed attempt's time is not a join time
                join("p2", 2, True, 300.0),
                join("p3", 1, False),
                join("p4", 1, False),
                join("p4", 2, False),
                join("p5", 1, True, 200.0),
            ],
        )
        # 91 frames with latencies 10, 11, ..., 100. Receiver a sees frames 0..86 of stream 1 (none
        # missing); receiver b sees 10, 11, 13, 16 of it (3 of 7 missing).
        numbers = [("a", n) for n in range(87)] + [("b", n) for n in (10, 11, 13, 16)]
        writer.append("frames", [frame(r, "s", 1, n, 10.0 + i) for i, (r, n) in enumerate(numbers)])
        writer.append(
            "audio",
            [{"ts": 1.0, "receiver": "a", "sender": "b", "latency_ms": float(v)} for v in range(1, 201)],
        )
        writer.append(
            "streams",
            [
                stream("in", "video", packets_lost=0, fps=30.0, bitrate_kbps=500.0, freezes=0, jitter_ms=1.0,
                       width=640, height=360, psnr_db=40.0),
                stream("in", "video", packets_lost=5, fps=30.0, bitrate_kbps=600.0, freezes=1, jitter_ms=2.0,
                       width=640, height=360, psnr_db=None),
                stream("in", "video", packets_lost=0, fps=29.0, bitrate_kbps=700.0, freezes=0, jitter_ms=3.0,
                       width=320, height=180, psnr_db=30.0),
                stream("in", "video", packets_lost=0, fps=31.0, bitrate_kbps=800.0, freezes=1, jitter_ms=4.0),
                stream("in", "audio", packets=50, jitter_ms=5.0, bitrate_kbps=32.0, mos=4.2),
                stream("in", "audio", packets=50, jitter_ms=None, mos=3.8),
                # Outbound rows: their loss, freezes and bitrate do not count; their RTT does.
                stream("out", "video", packets_lost=7, rtt_ms=10.0, bitrate_kbps=900.0, freezes=3, psnr_db=99.0),
                stream("out", "video", rtt_ms=20.0),
                stream("out", "audio", rtt_ms=None, jitter_ms=99.0),
            ],
        )
        writer.append(
            "probes",
            [
                probe(100.1, "sut", 1, 50.0),
                probe(100.6, "sut", 2, 30.0),
                probe(101.2, "sut", 1, 40.0),
                probe(101.3, "sut", 2, 20.0),
                probe(100.5, "locust", 10, 10.0, 100.0),
                probe(100.9, "media_host", 11, 90.0, 300.0),
                probe(101.5, "locust", 10, 20.0, 110.0),
                probe(101.7, "media_host", 11, 70.0, 310.0),
                probe(100.5, "controller", 12, 500.0, 1000.0),  # the controller makes no load
                {**probe(100.0, "machine", 0, 150.0, 2000.0), "steal_pct": 30.0},  # the whole machine
                {**probe(101.0, "machine", 0, 110.0, 2000.0), "steal_pct": 10.0},
            ],
        )
    return run_dir


THRESHOLDS = [
    parse_threshold("video_latency_ms.p95", "< 150"),
    parse_threshold("packet_loss_pct", "< 0.5"),
    parse_threshold("participants.failed", "== 0"),
    parse_threshold("audio_latency_ms.p99", "< 199"),
    parse_threshold("video_latency_ms.p99", "< 1000"),
]


def test_summary_figures(run: Path) -> None:
    summary = summarize(RunReader(run), planned_participants=6, thresholds=THRESHOLDS)
    engines = summary.pop("engines")
    assert set(engines) == {"native"} and engines["native"]["participants"] == 3
    assert isinstance(summary.pop("video_latency_by_path_ms"), dict)
    assert summary == {
        "schema_version": SCHEMA_VERSION,
        "run_id": "20261128T214501Z-p2p-ab12",
        "system": "p2p",
        "status": "completed",
        "duration_s": 120.5,
        "window": None,
        # ok joins 100, 200, 300: p95 at rank 0.95 * 2 = 1.9 -> 200 + 0.9 * 100
        "join_ms": {"p50": 200.0, "p95": 290.0, "p99": None, "mean": 200.0, "samples": 3},
        # 10..100: p95 at rank 0.95 * 90 = 85.5 -> 95.5; fewer than 100 samples -> no p99
        "video_latency_ms": {"p50": 55.0, "p95": 95.5, "p99": None, "mean": 55.0, "samples": 91},
        # 1..200: p50 = 1 + 0.5 * 199, p95 = 1 + 0.95 * 199, p99 = 1 + 0.99 * 199
        "audio_latency_ms": {"p50": 100.5, "p95": 190.05, "p99": 198.01, "mean": 100.5, "samples": 200},
        "rtt_ms": {"p50": 15.0, "p95": 19.5, "p99": None, "mean": 15.0, "samples": 2},
        # inbound, all kinds: 1, 2, 3, 4, 5 -> p95 at rank 3.8 -> 4.8
        "jitter_ms": {"p50": 3.0, "p95": 4.8, "p99": None, "mean": 3.0, "samples": 5},
        # 29, 30, 30, 31 -> p95 at rank 2.85 -> 30.85
        "fps": {"p50": 30.0, "p95": 30.85, "p99": None, "mean": 30.0, "samples": 4},
        "bitrate_kbps": {"p50": 650.0, "p95": 785.0, "p99": None, "mean": 650.0, "samples": 4},
        # inbound audio rows only; 3.8, 4.2 -> p95 at rank 0.95 -> 4.18
        "audio_mos": {"p50": 4.0, "p95": 4.18, "p99": None, "mean": 4.0, "samples": 2},
        # inbound video rows with a sampled frame (the outbound row's value does not count)
        "video_psnr_db": {"p50": 35.0, "p95": 39.5, "p99": None, "mean": 35.0, "samples": 2},
        # 5 lost of 400 + 100 received inbound + 5 lost: 100 * 5 / 505
        "packet_loss_pct": 0.99,
        # expected 87 + 7 = 94, received 91: 100 * 3 / 94 = 3.1914...
        "frame_loss_pct": 3.191,
        # 2 freezes in 4 inbound video stream-seconds
        "freezes_per_min": 30.0,
        # the size most inbound video stream-seconds were decoded at
        "video_resolution": "640x360",
        "participants": {"planned": 6, "joined": 3, "failed": 2, "dropped": 0},
        # per second: 100 -> 50 + 30, 101 -> 40 + 20
        # Per process, samples go to the nearest second and one missed second is bridged (per_process_seconds):
        # sut: second 100 = 50 (pid 2 not yet alive), 101 = 40 + mean(30, 20) = 65.
        "sut_cpu_pct": {"mean": 57.5, "max": 65.0},
        # per second: 100 -> 10 + 90, 101 -> 20 + 70 (controller excluded)
        # load: 100 = 10, 101 = 10 (bridged) + 90, 102 = 20 + 70; the controller is not load.
        "loadgen_cpu_pct": {"mean": 66.667, "max": 100.0},
        # machine: its own row each second, busy and stolen.
        "machine_cpu_pct": {"mean": 130.0, "max": 150.0},
        "machine_steal_pct": {"mean": 20.0, "max": 30.0},
        # machine less the run's processes on its host: 100 -> 150 - (50 + 10 + 90 + 500) < 0,
        # 101 -> 110 - (40 + 25 + 10 + 90 + bridged controller 500) < 0: nothing beside the run.
        "machine_other_cpu_pct": {"mean": 0.0, "max": 0.0},
        "loadgen_rss_mb_max": 420.0,
        # Probes of an older schema: no health columns, so nothing to say about them.
        "loadgen_health": {"frames_skipped_pct": None, "loop_lag_over_100ms_pct": None, "loop_lag_max_ms": None,
                           "udp_drops": None, "udp_rcvbuf_errors": None, "samples_dropped": None},
        "wire_health": None,  # no impaired network
        "outages": {"faults": [], "recovery_ms_max": None, "reconnect_ms_max": None, "unrecovered": None,
                    "dropped": None},  # no fault in this run
        "layer_switch_ms": None,  # no network timeline
        "thresholds": [
            {"expr": "video_latency_ms.p95 < 150", "value": 95.5, "ok": True},
            {"expr": "packet_loss_pct < 0.5", "value": 0.99, "ok": False},
            {"expr": "participants.failed == 0", "value": 2, "ok": False},
            {"expr": "audio_latency_ms.p99 < 199", "value": 198.01, "ok": True},
            {"expr": "video_latency_ms.p99 < 1000", "value": None, "ok": False},
        ],
        "warnings": [],
    }
    write_summary(run, summary)  # JSON-clean
    assert RunReader(run).summary() == summary


def test_the_wire_says_how_well_it_kept_its_times() -> None:
    import pandas as pd

    from harness.analysis.summary import _wire_health

    probes = pd.DataFrame({"ts": [1.0, 2.0, 3.0, 4.0], "role": ["wire", "wire", "wire", "sut"],
                           "loop_lag_ms": [0.4, 9.2, 1.0, None], "packets_held": [100, 150, 150, None],
                           "packets_late": [0, 2, 0, None]})
    assert _wire_health(probes) == {"packets_held": 400, "late_pct": 0.5, "late_ms_max": 9.2}
    older = probes.drop(columns=["packets_held", "packets_late"])  # recorded before the wire counted them
    assert _wire_health(older) == {"packets_held": None, "late_pct": None, "late_ms_max": 9.2}
    assert _wire_health(probes[probes["role"] == "sut"]) is None


def test_every_threshold_key_is_in_the_summary(run: Path) -> None:
    summary = summarize(RunReader(run), planned_participants=6)
    for key in KNOWN_KEYS:
        node: Any = summary
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, key
            node = node[part]


def test_status_override(run: Path) -> None:
    reader = RunReader(run)
    assert summarize(reader, planned_participants=6, status="invalid")["status"] == "invalid"


def test_empty_run_gives_nulls_not_nan(tmp_path: Path) -> None:
    write_manifest(
        tmp_path,
        {
            "run_id": "r",
            "status": "aborted",
            "started_utc": "2026-11-28T21:45:01Z",
            "ended_utc": None,
            "system": {"name": "janus"},
        },
    )
    summary = summarize(
        RunReader(tmp_path), planned_participants=4, thresholds=[parse_threshold("packet_loss_pct", "< 1")]
    )
    json.dumps(summary, allow_nan=False)
    for metric in (
        "join_ms",
        "video_latency_ms",
        "audio_latency_ms",
        "rtt_ms",
        "jitter_ms",
        "fps",
        "bitrate_kbps",
    ):
        assert summary[metric] == {"p50": None, "p95": None, "p99": None, "mean": None, "samples": 0}
    for key in (
        "packet_loss_pct",
        "frame_loss_pct",
        "freezes_per_min",
        "sut_cpu_pct",
        "loadgen_cpu_pct",
        "machine_cpu_pct",
        "machine_steal_pct",
        "machine_other_cpu_pct",
        "loadgen_rss_mb_max",
        "duration_s",
    ):
        assert summary[key] is None, key
    assert summary["participants"] == {"planned": 4, "joined": 0, "failed": 0, "dropped": 0}
    assert summary["system"] == "janus"
    assert summary["status"] == "aborted"
    assert summary["thresholds"] == [{"expr": "packet_loss_pct < 1", "value": None, "ok": False}]
    assert "packet_loss_pct" in format_table(summary)


def test_nan_samples_and_no_packets_are_ignored(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"status": "completed"})
    with RunWriter(tmp_path) as writer:
        writer.append(
            "streams",
            [
                stream("in", "video", packets=0, fps=math.nan, bitrate_kbps=100.0),
                stream("in", "video", packets=0, fps=20.0, bitrate_kbps=math.inf),
            ],
        )
    summary = summarize(RunReader(tmp_path), planned_participants=1)
    json.dumps(summary, allow_nan=False)
    assert summary["fps"]["samples"] == 1
    assert summary["bitrate_kbps"]["samples"] == 1
    assert summary["packet_loss_pct"] is None  # no packets at all: loss is unknown, not 0
    assert summary["freezes_per_min"] == 0.0


def test_frame_loss_is_per_sender_stream_and_receiver(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"status": "completed"})
    with RunWriter(tmp_path) as writer:
        # Two senders both number their stream 1, at different frame numbers: nothing is missing.
        writer.append(
            "frames",
            [frame("r", "s1", 1, n, 50.0) for n in range(0, 5)]
            + [frame("r", "s2", 1, n, 50.0) for n in range(100, 105)]
            + [frame("r", "s1", 1, 2, 50.0)],
        )  # a duplicate is received once
    summary = summarize(RunReader(tmp_path), planned_participants=2)
    assert summary["frame_loss_pct"] == 0.0


def test_skipped_parts_are_reported(run: Path) -> None:
    (run / "frames" / "part-main-000001.parquet").write_bytes(b"garbage")
    summary = summarize(RunReader(run), planned_participants=6)
    assert summary["video_latency_ms"]["samples"] == 91
    assert len(summary["warnings"]) == 1 and "part-main-000001.parquet" in summary["warnings"][0]
    assert "1 warning(s)" in format_table(summary)


def test_planned_participants_is_checked(run: Path) -> None:
    with pytest.raises(ValueError, match="planned_participants"):
        summarize(RunReader(run), planned_participants=-1)
    with pytest.raises(TypeError, match="planned_participants"):
        summarize(RunReader(run), planned_participants=2.0)  # type: ignore[arg-type]


def test_format_table(run: Path) -> None:
    text = format_table(summarize(RunReader(run), planned_participants=6, thresholds=THRESHOLDS))
    lines = text.splitlines()
    assert lines[0] == "run 20261128T214501Z-p2p-ab12  system p2p  status completed  duration 120.5 s"
    assert lines[1].split() == ["metric", "p50", "p95", "p99", "samples"]
    assert lines[3].split() == ["video_latency_ms", "55", "95.5", "-", "91"]
    assert lines[4].split() == ["audio_latency_ms", "100.5", "190.05", "198.01", "200"]
    assert "packet_loss_pct" in text and "0.99" in text
    assert "participants           3/6 joined, 2 failed" in text
    assert "sut_cpu_pct            mean 57.5, max 65" in text
    assert "machine_other_cpu_pct  mean 0, max 0" in text  # the longest key sets the column
    assert "  ok   video_latency_ms.p95 < 150  (value 95.5)" in lines
    assert "  FAIL packet_loss_pct < 0.5  (value 0.99)" in lines
    assert text.isascii()


def test_window_keeps_media_rows_inside_and_joins_all(tmp_path: Path) -> None:
    run_dir = tmp_path / "w"
    write_manifest(run_dir, {"run_id": "w", "status": "completed", "system": {"name": "p2p"}})
    with RunWriter(run_dir) as writer:
        writer.append("joins", [{"ts": 0.0, "participant": "a", "group": "g", "host": "h", "attempt": 1,
                                 "ok": True, "join_ms": 100.0}])
        # A join burst (1000 ms) before the window, steady frames (10-19 ms) inside, a leave burst after.
        rows = [dict(frame("a", "b", 0, 0, 1000.0), ts=1.0)]
        rows += [dict(frame("a", "b", 0, n, 10.0 + n), ts=5.0 + n / 10) for n in range(1, 11)]
        rows += [dict(frame("a", "b", 0, 99, 2000.0), ts=30.0)]
        writer.append("frames", rows)
    reader = RunReader(run_dir)
    steady = summarize(reader, planned_participants=1, window=(4.0, 20.0))
    assert steady["window"] == {"start": 4.0, "end": 20.0}
    assert steady["video_latency_ms"]["samples"] == 10 and steady["video_latency_ms"]["p50"] == 15.5
    assert steady["frame_loss_pct"] == 0  # frames 1..10 complete inside the window
    assert steady["participants"]["joined"] == 1
    whole = summarize(reader, planned_participants=1)
    assert whole["window"] is None and whole["video_latency_ms"]["samples"] == 12
    # A window with no frame in it (a run aborted early) falls back to every row, and says so.
    empty = summarize(reader, planned_participants=1, window=(100.0, 200.0))
    assert empty["window"] is None and empty["video_latency_ms"]["samples"] == 12


def test_figures_per_engine_and_path(tmp_path: Path) -> None:
    """Browser and native participants side by side: who measured what, and what each one costs."""
    run_dir = tmp_path / "mixed"
    write_manifest(run_dir, {"run_id": "r", "status": "completed", "system": {"name": "reference"}})
    with RunWriter(run_dir) as writer:
        writer.append("joins", [
            dict(join("n1", 1, True, 100.0), engine=None), dict(join("n2", 1, True, 100.0)),
            dict(join("b1", 1, True, 900.0), engine="browser"), dict(join("b2", 1, False), engine="browser"),
        ])
        frame = {"frame_no": 1, "capture_ts": 0.0, "gap_ms": None, "width": 320, "height": 180, "stream_id": 0}
        writer.append("frames", [
            dict(frame, ts=1.0, receiver="n1", sender="b1", latency_ms=30.0),
            dict(frame, ts=1.0, receiver="n1", sender="n2", latency_ms=10.0),
            dict(frame, ts=1.0, receiver="b1", sender="n1", latency_ms=50.0),
            dict(frame, ts=1.0, receiver="b1", sender="stream-9", latency_ms=70.0),
        ])
        writer.append("events", [{"ts": 2.0, "kind": "participant_failed", "participant": "b1",
                                  "detail": "the browser closed"}])
        writer.append("probes", [probe(10.0, "media_host", 1, 40.0, 100.0), probe(10.0, "browser", 2, 90.0, 400.0),
                                 probe(10.0, "browser", 3, 10.0, 100.0)])
    summary = summarize(RunReader(run_dir), planned_participants=4)
    engines = summary["engines"]
    assert engines["native"]["participants"] == 2 and engines["browser"]["participants"] == 1
    assert engines["native"]["video_latency_ms"]["p50"] == 20.0
    assert engines["browser"]["video_latency_ms"]["samples"] == 2
    assert engines["native"]["cpu_pct_per_participant"] == 20.0  # one media host's 40 % over 2 natives
    assert engines["browser"]["cpu_pct_per_participant"] == 100.0  # browser + driver, 1 browser joined
    assert engines["browser"]["rss_mb_per_participant"] == 500.0
    paths = summary["video_latency_by_path_ms"]
    assert paths["browser>native"]["p50"] == 30.0 and paths["native>native"]["p50"] == 10.0
    assert paths["native>browser"]["p50"] == 50.0 and paths["unknown>browser"]["p50"] == 70.0
    assert summary["participants"] == {"planned": 4, "joined": 3, "failed": 1, "dropped": 1}
    assert summary["loadgen_cpu_pct"]["mean"] == 140.0  # browsers are load generator too
