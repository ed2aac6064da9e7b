"""Recovery from faults: for each outage and server restart of a run, how long each stream took to come back.

Faults are read from the run's ``events`` as they happened (not as planned):

- a group's link outage: ``network_change`` rows whose ``detail.outage`` turns true, then false again
  (``harness.testbed.impairment``); its participants are the ones cut off;
- a server restart: ``server_restart`` (from ``detail.killed_ts`` to the row's time, when the server answered
  again); a server kill: ``server_kill`` (it never ends). Every participant is affected.

A stream (receiver, sender) is *affected* when one of its ends is affected and it carried video in the
:data:`BEFORE_S` seconds before the fault. Its recovery is the first sign of its frames again
(``harness.host.participant``): ``media_resumed`` (frames back after a gap that overlaps the fault) or
``media_started`` (the first frame on a session that replaced a lost one). ``recovery_ms`` counts from the
fault's end: the time the system (and client) needed once the network or server was back. A stream with no
such sign before the next fault or the end of the run has not recovered.

Participants' own reactions come from ``reconnected`` (``took_ms`` from the loss being noticed) and
``reconnect_failed`` (dropped) events (``harness.host.reconnect``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BEFORE_S = 5.0
"""How far before a fault a stream must have carried video to count as affected."""
MAX_STREAM_ROWS = 200
"""Per fault, at most this many per-stream figures are listed in the summary (the aggregates use all)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault as it happened (UNIX seconds); ``end`` is None for a server that stayed down."""

    kind: str  # "outage", "server_restart" or "server_kill"
    start: float
    end: float | None
    group: str | None = None

    @property
    def label(self) -> str:
        """How reports name it."""
        length = f" {self.end - self.start:.1f} s" if self.end is not None else ""
        if self.kind == "outage":
            return f"outage of {self.group}{length}"
        return f"server {self.kind.removeprefix('server_')}" + (f" (down{length})" if self.end is not None else "")


def _detail(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def faults(events: pd.DataFrame) -> list[Fault]:
    """The run's faults, in time order, from its ``events`` table."""
    found: list[Fault] = []
    if events.empty:
        return found
    rows = events.sort_values("ts")
    open_outages: dict[str, float] = {}
    for ts, kind, raw in zip(rows["ts"], rows["kind"], rows["detail"], strict=True):
        detail = _detail(raw)
        if kind == "network_change":
            if not detail.get("at_s"):
                continue  # the shapes the run starts with, recorded when the recorder started (maybe late)
            group = str(detail.get("group"))
            if detail.get("outage") and group not in open_outages:
                open_outages[group] = float(ts)
            elif not detail.get("outage") and group in open_outages:
                found.append(Fault("outage", open_outages.pop(group), float(ts), group))
        elif kind == "server_restart" and detail.get("ok"):
            killed = detail.get("killed_ts")
            start = float(killed) if isinstance(killed, int | float) else float(ts)
            found.append(Fault("server_restart", start, float(ts)))
        elif kind == "server_kill":
            found.append(Fault("server_kill", float(ts), None))
    found.extend(Fault("outage", start, None, group) for group, start in open_outages.items())
    return sorted(found, key=lambda f: f.start)


def _figures(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "max": None}
    return {"p50": round(float(np.percentile(values, 50)), 1), "max": round(max(values), 1)}


def _signs(events: pd.DataFrame) -> pd.DataFrame:
    """``media_resumed`` / ``media_started`` rows as (ts, receiver, sender, gap_ms)."""
    rows = events[events["kind"].isin(("media_resumed", "media_started"))]
    out = []
    for ts, receiver, raw in zip(rows["ts"], rows["participant"], rows["detail"], strict=True):
        detail = _detail(raw)
        gap = detail.get("gap_ms")
        out.append({"ts": float(ts), "receiver": receiver, "sender": detail.get("sender"),
                    "gap_ms": float(gap) if isinstance(gap, int | float) else None})
    return pd.DataFrame(out, columns=["ts", "receiver", "sender", "gap_ms"])


def recovery(events: pd.DataFrame, streams: pd.DataFrame, joins: pd.DataFrame,
             run_start: float | None = None, run_end: float | None = None) -> dict[str, Any]:
    """The ``outages`` part of a run's summary: ``faults`` (empty, and every figure null, without faults).

    ``run_start`` (UNIX seconds) makes the faults' ``at_s``; ``run_end`` bounds the search for recoveries.
    """
    found = faults(events)
    if not found:
        return {"faults": [], "recovery_ms_max": None, "reconnect_ms_max": None, "unrecovered": None,
                "dropped": None}
    groups = dict(zip(joins["participant"], joins["group"], strict=True)) if not joins.empty else {}
    signs = _signs(events)
    video = streams[(streams["direction"] == "in") & (streams["kind"] == "video") & (streams["packets"] > 0)]
    reactions = events[events["kind"].isin(("reconnected", "reconnect_failed"))]
    end_of_run = run_end if run_end is not None else math.inf
    listed: list[dict[str, Any]] = []
    all_recovery: list[float] = []
    all_reconnect: list[float] = []
    dropped_total: set[str] = set()
    unrecovered_total = 0
    for i, fault in enumerate(found):
        horizon = found[i + 1].start if i + 1 < len(found) else end_of_run
        end = fault.end if fault.end is not None else fault.start

        def cut(name: Any, fault: Fault = fault) -> bool:
            return fault.kind != "outage" or groups.get(name) == fault.group

        # A streams row covers the second before its time: one stamped within a second of the start counts.
        before = video[(video["ts"] >= fault.start - BEFORE_S) & (video["ts"] <= fault.start + 1.0)]
        pairs = sorted({(r, s) for r, s in zip(before["participant"], before["peer"], strict=True)
                        if cut(r) or cut(s)})
        per_stream = []
        recovered: list[float] = []
        for receiver, sender in pairs:
            mine = signs[(signs["receiver"] == receiver) & (signs["sender"] == sender)
                         & (signs["ts"] > fault.start) & (signs["ts"] <= horizon)]
            # A gap that began after the fault ended is a later freeze, not this fault's.
            mine = mine[mine["gap_ms"].isna() | (mine["ts"] - mine["gap_ms"].fillna(0) / 1000 <= end + 1.0)]
            ms = None
            if not mine.empty and fault.end is not None:
                ms = round(max(float(mine["ts"].min()) - fault.end, 0.0) * 1000, 1)
                recovered.append(ms)
            per_stream.append({"receiver": receiver, "sender": sender, "recovery_ms": ms})
        window = reactions[(reactions["ts"] > fault.start) & (reactions["ts"] <= horizon)]
        reconnect_ms = [float(_detail(d).get("took_ms", math.nan)) for d in
                        window.loc[window["kind"] == "reconnected", "detail"]]
        reconnect_ms = [v for v in reconnect_ms if math.isfinite(v)]
        dropped = sorted(set(window.loc[window["kind"] == "reconnect_failed", "participant"].dropna()))
        unrecovered = sum(1 for row in per_stream if row["recovery_ms"] is None)
        listed.append({
            "kind": fault.kind, "label": fault.label, "group": fault.group,
            "at_s": round(fault.start - run_start, 2) if run_start is not None else None,
            "length_s": round(fault.end - fault.start, 2) if fault.end is not None else None,
            "streams": len(pairs), "recovered": len(recovered), "unrecovered": unrecovered,
            "recovery_ms": _figures(recovered),
            "reconnected": len(reconnect_ms), "reconnect_ms": _figures(reconnect_ms),
            "dropped": dropped,
            "per_stream": per_stream[:MAX_STREAM_ROWS],
        })
        all_recovery += recovered
        all_reconnect += reconnect_ms
        dropped_total.update(dropped)
        unrecovered_total += unrecovered
    return {
        "faults": listed,
        "recovery_ms_max": _figures(all_recovery)["max"],
        "reconnect_ms_max": _figures(all_reconnect)["max"],
        "unrecovered": unrecovered_total,
        "dropped": len(dropped_total),
    }
