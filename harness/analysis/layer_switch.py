"""How receivers lived through their network's changes: the time to a lower (and back to the top) simulcast
layer, and the frame rate and freezes while their downlink was narrow.

A network timeline (``[[groups.network.timeline]]``) writes a ``network_change`` event at every change. For
each receiver of the changed group and each sender it decoded, from the ``frames`` table (one row per
decoded, stamped frame, with its size):

- at a change that limits the group's downlink rate (``down.rate_kbps``, "restricted"): ``switch_ms`` is the
  time from the change to the first frame smaller than the last one before it (null: none came before the
  next change or the end);
- at a change that lifts it ("restored"): the time to the first frame as large as the largest this receiver
  got from this sender in the run (0 when it never left it);
- over a restricted period (until the next change or the end of the frames): frames per second decoded, the
  lowest per-second ``fps`` of its ``streams`` rows, the freezes counted there, and the longest time without
  a frame (from the change to the first frame, between frames, from the last frame to the period's end).

A receiver of one encoding never switches: its restricted rows have no ``switch_ms``, and its freezes show.
Pure functions of the tables, like the rest of the summary.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

__all__ = ["layer_switches", "switch_summary"]


def _changes(events: pd.DataFrame) -> list[tuple[float, str, bool, float]]:
    """(ts, group, restricted, at_s) of each timeline change (the shapes a run starts with are not one)."""
    out: list[tuple[float, str, bool, float]] = []
    if events.empty or "kind" not in events.columns:
        return out
    for ts, detail in zip(events.loc[events["kind"] == "network_change", "ts"],
                          events.loc[events["kind"] == "network_change", "detail"], strict=True):
        try:
            change = json.loads(detail)
        except (TypeError, ValueError):
            continue
        if not isinstance(change, dict) or not change.get("at_s"):
            continue
        down = change.get("down") or {}
        restricted = isinstance(down, dict) and down.get("rate_kbps") is not None
        out.append((float(ts), str(change.get("group")), restricted, float(change["at_s"])))
    return sorted(out)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, 3) if math.isfinite(value) else None


def layer_switches(frames: pd.DataFrame, events: pd.DataFrame, joins: pd.DataFrame,
                   streams: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per (timeline change, receiver of the changed group, sender it decoded); see the module."""
    changes = _changes(events)
    if not changes or frames.empty or joins.empty:
        return []
    groups = joins.drop_duplicates("participant").set_index("participant")["group"]
    video_in = streams[(streams["direction"] == "in") & (streams["kind"] == "video")] if not streams.empty else streams
    rows = []
    for i, (ts, group, restricted, at_s) in enumerate(changes):
        later = [c[0] for c in changes[i + 1:] if c[1] == group]
        until = later[0] if later else math.inf
        receivers = [p for p, g in groups.items() if g == group]
        for (receiver, sender), got in frames[frames["receiver"].isin(receivers)].groupby(["receiver", "sender"]):
            got = got.sort_values("ts")
            before = got[got["ts"] < ts]
            if before.empty:
                continue
            width_before = int(before["width"].iloc[-1])
            after = got[(got["ts"] >= ts) & (got["ts"] < until)]
            if restricted:
                switched = after[after["width"] < width_before]
            else:
                top = int(got["width"].max())
                switched = after[after["width"] >= top] if width_before < top else after.iloc[:0]
            row: dict[str, Any] = {
                "group": group, "receiver": receiver, "sender": sender, "at_s": at_s,
                "change": "restricted" if restricted else "restored", "width_before": width_before,
                "switch_ms": (_num((switched["ts"].iloc[0] - ts) * 1000) if not switched.empty
                              else (0.0 if not restricted and width_before >= int(got["width"].max()) else None)),
                "width_after": int(switched["width"].iloc[0]) if not switched.empty else None,
            }
            if restricted:
                end = until if math.isfinite(until) else float(got["ts"].max())
                seconds = max(end - ts, 1e-3)
                # The longest time without a frame: from the change to the first frame, between frames, and
                # from the last one to the end of the period.
                edges = [ts, *after["ts"].tolist(), end]
                mine = video_in[(video_in["participant"] == receiver) & (video_in["peer"] == sender)
                                & (video_in["ts"] > ts) & (video_in["ts"] <= end)] if not video_in.empty else video_in
                row.update({
                    "fps": _num(len(after) / seconds),
                    "fps_min": _num(mine["fps"].min()) if not mine.empty and mine["fps"].notna().any() else None,
                    "freezes": int(mine["freezes"].sum()) if not mine.empty else 0,
                    "longest_gap_ms": _num(max(b - a for a, b in zip(edges, edges[1:], strict=False)) * 1000),
                })
            rows.append(row)
    return rows


def switch_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The summary's ``layer_switch_ms``: switch times down (restricted) and up (restored), and every row;
    None when the run's network never changed."""
    if not rows:
        return None
    return {
        "down": [r["switch_ms"] for r in rows if r["change"] == "restricted"],
        "up": [r["switch_ms"] for r in rows if r["change"] == "restored"],
        "changes": rows,
    }
