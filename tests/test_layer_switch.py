"""layer_switch_ms from synthetic tables: a drop at 10 s, a restoration at 20 s."""

from __future__ import annotations

import json

import pandas as pd

from harness.analysis.layer_switch import layer_switches, switch_summary

T0 = 1_000.0


def _change(at_s: float, rate: float | None) -> dict[str, object]:
    down = {"delay_ms": 15.0, **({"rate_kbps": rate} if rate else {})}
    return {"ts": T0 + at_s, "kind": "network_change", "participant": None,
            "detail": json.dumps({"at_s": at_s, "group": "mobile", "down": down, "up": {}})}


def _frames(widths: list[tuple[float, float, int]]) -> pd.DataFrame:
    """(from_s, to_s, width) runs of frames at 30 fps from office to mobile."""
    rows = []
    for start, end, width in widths:
        t = start
        while t < end:
            rows.append({"ts": T0 + t, "receiver": "mobile-0", "sender": "office-1", "width": width,
                         "gap_ms": 33.3})
            t += 1 / 30
    return pd.DataFrame(rows)


def _tables(frames: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    events = pd.DataFrame([_change(0, None), _change(10, 300), _change(20, None)])
    joins = pd.DataFrame([{"participant": "mobile-0", "group": "mobile"},
                          {"participant": "office-1", "group": "office"}])
    streams = pd.DataFrame([{"ts": T0 + s, "participant": "mobile-0", "peer": "office-1", "direction": "in",
                             "kind": "video", "fps": 30.0 if s != 14 else 12.0, "freezes": int(s == 14)}
                            for s in range(1, 30)])
    return events, joins, streams


def test_switch_times_down_and_back_up() -> None:
    frames = _frames([(1, 11.5, 480), (11.5, 23, 240), (23, 30, 480)])
    events, joins, streams = _tables(frames)
    rows = layer_switches(frames, events, joins, streams)
    down, up = rows
    assert down["change"] == "restricted" and up["change"] == "restored"
    assert abs(down["switch_ms"] - 1500) < 40 and down["width_before"] == 480 and down["width_after"] == 240
    assert abs(up["switch_ms"] - 3000) < 40 and up["width_after"] == 480
    assert down["fps_min"] == 12.0 and down["freezes"] == 1 and abs(down["fps"] - 30) < 1
    assert 30 < down["longest_gap_ms"] < 40
    summary = switch_summary(rows)
    assert summary is not None and summary["down"] == [down["switch_ms"]] and summary["up"] == [up["switch_ms"]]


def test_one_encoding_never_switches_and_its_freeze_shows() -> None:
    frames = _frames([(1, 11, 480), (19, 30, 480)])  # nothing arrives from 11 s to 19 s
    rows = layer_switches(frames, *_tables(frames))
    assert [r["switch_ms"] for r in rows] == [None, 0.0]
    assert abs(rows[0]["longest_gap_ms"] - 8000) < 40 and abs(rows[0]["fps"] - 6) < 0.5


def test_no_timeline_no_figure() -> None:
    frames = _frames([(1, 5, 480)])
    events, joins, streams = _tables(frames)
    assert switch_summary(layer_switches(frames, events.iloc[:1], joins, streams)) is None
