"""The page's raw measurements become the same rows as native ones (units, intervals, names)."""

from __future__ import annotations

from typing import Any

from harness.browser.stats import PageRows


def batch(now: float, packets: int, lost: int, bytes_: int, frames: list[dict[str, Any]], stamp_ms: float,
          jb: float, jb_count: int, jb_min: float = 0.0, jb_target: float = 0.0) -> dict[str, Any]:
    inbound = {"type": "inbound-rtp", "kind": "video", "ssrc": 11, "packetsReceived": packets,
               "packetsLost": lost, "bytesReceived": bytes_, "jitter": 0.004, "timestamp": stamp_ms,
               "trackIdentifier": "t1", "sid": 6, "framesPerSecond": 30, "framesDropped": 1,
               "jitterBufferDelay": jb, "jitterBufferEmittedCount": jb_count,
               "jitterBufferMinimumDelay": jb_min, "jitterBufferTargetDelay": jb_target}
    outbound = {"type": "outbound-rtp", "id": "o1", "kind": "video", "ssrc": 22, "packetsSent": packets,
                "bytesSent": bytes_, "timestamp": stamp_ms, "qualityLimitationReason": "cpu"}
    remote = {"type": "remote-inbound-rtp", "localId": "o1", "roundTripTime": 0.012, "fractionLost": 0.25,
              "jitter": 0.002}
    return {"now": now, "source": {"produced": 30, "skipped": 1}, "frames": frames,
            "audio": [{"track": "a1", "ts": now, "latency_ms": 40.0}], "events": [],
            "stats": [{"pc": "pc1", "label": None, "remote_sids": [6], "inbound": [inbound, dict(
                inbound, kind="audio", ssrc=12, trackIdentifier="a1", sid=6)], "others": [outbound, remote]}]}


def test_intervals_units_and_names() -> None:
    rows: list[tuple[str, dict[str, Any]]] = []
    page = PageRows("me", lambda t, r: rows.append((t, r)), lambda sid: {6: "alice"}.get(sid))
    page.take(batch(100.0, 100, 0, 10_000, [], 1000.0, 1.0, 50, 0.5, 0.8))
    rows.clear()
    frames = [{"track": "t1", "ts": 100.0 + i / 30, "sid": 6, "no": i, "cap": 99.95 + i / 30, "w": 320, "h": 180}
              for i in range(30)]
    frames.append({"track": "t1", "ts": 101.0, "sid": None, "w": 320, "h": 180})
    page.take(batch(101.0, 190, 10, 60_000, frames, 2000.0, 3.0, 80, 2.0, 2.6))
    by_table: dict[str, list[dict[str, Any]]] = {}
    for table, row in rows:
        by_table.setdefault(table, []).append(row)
    assert len(by_table["frames"]) == 30
    f = by_table["frames"][0]
    assert f["sender"] == "alice" and f["receiver"] == "me" and abs(f["latency_ms"] - 50.0) < 1e-6
    assert by_table["audio"][0]["sender"] == "alice"
    video_in, audio_in, video_out = by_table["streams"]
    assert video_in["peer"] == "alice" and video_in["packets"] == 90 and video_in["packets_lost"] == 10
    assert video_in["loss_pct"] == 10.0 and video_in["jitter_ms"] == 4.0
    assert abs(video_in["bitrate_kbps"] - 400.0) < 1e-9  # 50 kB in 1 s
    assert video_in["frames_unreadable"] == 1 and video_in["fps"] is not None
    assert abs(video_in["jitter_buffer_ms"] - 2.0 / 30 * 1000) < 1e-9
    # What the arrivals alone asked for, and with lip sync on top: per emitted frame of the same interval.
    assert abs(video_in["jitter_buffer_min_ms"] - 1.5 / 30 * 1000) < 1e-9
    assert abs(video_in["jitter_buffer_target_ms"] - 1.8 / 30 * 1000) < 1e-9
    assert audio_in["kind"] == "audio" and "fps" not in audio_in
    assert video_out["direction"] == "out" and video_out["peer"] == "alice"  # one remote stream: p2p-like
    assert video_out["rtt_ms"] == 12.0 and video_out["loss_pct"] == 25.0 and video_out["quality_limitation"] == "cpu"
    assert (page.produced, page.skipped) == (30, 1)


def test_unknown_senders_are_named_by_the_page_or_by_stream() -> None:
    page = PageRows("me", lambda t, r: None, lambda sid: None)
    page.take({"now": 1.0, "stats": [{"pc": "pc2", "label": "bob", "inbound": [], "others": []}]})
    assert page.name_of(8, "pc2") == "bob"
    assert page.name_of(8) == "stream-8"
    assert page.name_of(None) == "unknown"


def test_a_pulse_heard_before_its_track_is_described_waits_for_its_name() -> None:
    # The page reports a pulse at once and a new connection's stats a second later: the pulse must not be "unknown".
    rows: list[tuple[str, dict[str, Any]]] = []
    page = PageRows("me", lambda t, r: rows.append((t, r)), lambda sid: {6: "alice"}.get(sid))
    page.take({"now": 1.0, "audio": [{"track": "a1", "ts": 1.0, "latency_ms": 40.0}], "stats": []})
    assert not [r for t, r in rows if t == "audio"]
    page.take(batch(2.0, 100, 0, 10_000, [], 1000.0, 1.0, 50))
    senders = [r["sender"] for t, r in rows if t == "audio"]
    assert senders == ["alice", "alice"]  # the early pulse, then the one of this batch
    page.take({"now": 3.0, "audio": [{"track": "zz", "ts": 3.0, "latency_ms": 40.0}], "stats": []})
    page.flush()  # leaving: what still waits is written, named as well as it can be
    assert [r["sender"] for t, r in rows if t == "audio"][-1] == "unknown"


def test_a_pulse_through_an_sfu_waits_for_the_stamp_on_its_stream_s_video() -> None:
    # One connection with no sender's label (an SFU's): the audio track is described at once, but its sender is
    # known only once the video of the same stream has a stamp read. A pulse heard before that must wait.
    rows: list[tuple[str, dict[str, Any]]] = []
    page = PageRows("me", lambda t, r: rows.append((t, r)), lambda sid: {6: "alice"}.get(sid))
    unread = batch(1.0, 100, 0, 10_000, [], 1000.0, 1.0, 50)
    for entry in unread["stats"][0]["inbound"]:
        entry["sid"] = None
    page.take(unread)
    assert not [r for t, r in rows if t == "audio"]
    page.take(batch(2.0, 100, 0, 10_000, [], 1000.0, 1.0, 50))
    assert [r["sender"] for t, r in rows if t == "audio"] == ["alice", "alice"]


def test_the_page_lag_is_the_worst_since_it_was_last_taken() -> None:
    page = PageRows("me", lambda t, r: None, lambda sid: None)
    assert page.take_lag_ms() is None  # no batch yet
    page.take({"now": 1.0, "lag_ms": 12.5})
    page.take({"now": 2.0, "lag_ms": 40.0})
    page.take({"now": 3.0, "lag_ms": 7.0})
    page.take({"now": 4.0})  # a page from before the lag probe
    assert page.take_lag_ms() == 40.0
    assert page.take_lag_ms() is None
    page.take({"now": 5.0, "lag_ms": float("nan")})
    assert page.take_lag_ms() is None
