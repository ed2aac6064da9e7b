"""The headline figures of a run (``summary.json``), computed from its tables alone.

:func:`summarize` is a pure function of what :class:`~harness.store.reader.RunReader` returns, so a summary can be
rebuilt at any time from the results folder (DESIGN.md §5.7); the definitions of every figure are in
``docs/results.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.health import MACHINE_ROLE, other_work, wire_lateness
from harness.analysis.layer_switch import layer_switches, switch_summary
from harness.analysis.outages import recovery
from harness.analysis.seconds import per_second_total
from harness.scenario.thresholds import DISTRIBUTION_METRICS, Threshold, evaluate
from harness.store.manifest import SCHEMA_VERSION, parse_utc
from harness.store.reader import RunReader

__all__ = ["DECIMALS", "LOADGEN_ROLES", "P99_MIN_SAMPLES", "format_table", "received_streams", "summarize"]

P99_MIN_SAMPLES = 100
"""Below this many samples a p99 is mostly the maximum, so it is reported as null."""

LOADGEN_ROLES: tuple[str, ...] = ("locust", "media_host", "browser")
"""``probes.role`` values counted as the load generator (the controller is not: it does not make load)."""

ENGINE_ROLES: dict[str, tuple[str, ...]] = {"native": ("media_host",), "browser": ("browser",)}
"""Whose CPU and memory a participant of each engine costs (``engines.*.cpu_pct_per_participant``)."""

DECIMALS = 3
"""Decimal places every float in the summary is rounded to."""


def _round(value: Any) -> float | None:
    # The single exit for floats: NaN and infinities become None because they are not JSON.
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return round(number, DECIMALS)


def _distribution(values: pd.Series) -> dict[str, Any]:
    samples = values.to_numpy(dtype=float, na_value=np.nan)
    samples = samples[np.isfinite(samples)]
    count = int(samples.size)
    if count == 0:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "samples": 0}
    p50, p95, p99 = np.percentile(samples, [50, 95, 99], method="linear")
    return {
        "p50": _round(p50),
        "p95": _round(p95),
        "p99": _round(p99) if count >= P99_MIN_SAMPLES else None,
        "mean": _round(samples.mean()),
        "samples": count,
    }


def _mean_max(per_second: pd.Series | None) -> dict[str, float | None] | None:
    if per_second is None:
        return None
    return {"mean": _round(per_second.mean()), "max": _round(per_second.max())}


def _packet_loss_pct(inbound: pd.DataFrame) -> float | None:
    lost = float(inbound["packets_lost"].sum())
    total = float(inbound["packets"].sum()) + lost
    if total <= 0:
        return None
    return _round(100.0 * lost / total)


def _frame_loss_pct(frames: pd.DataFrame) -> float | None:
    if frames.empty:
        return None
    # Sender is part of the key so that two senders numbering their streams alike are not merged.
    per_stream = frames.groupby(["receiver", "sender", "stream_id"])["frame_no"].agg(
        ["min", "max", "nunique"]
    )
    expected = int((per_stream["max"] - per_stream["min"] + 1).sum())
    received = int(per_stream["nunique"].sum())
    return _round(100.0 * (expected - received) / expected)


def _freezes_per_min(inbound_video: pd.DataFrame) -> float | None:
    stream_seconds = len(inbound_video)
    if stream_seconds == 0:
        return None
    return _round(float(inbound_video["freezes"].sum()) / (stream_seconds / 60.0))


def _resolution(inbound_video: pd.DataFrame) -> str | None:
    """The decoded size most stream-seconds had, as ``WxH`` (null when no frame was decoded)."""
    sizes = inbound_video.dropna(subset=["width", "height"])
    if sizes.empty:
        return None
    counts = sizes.groupby(["width", "height"]).size()
    width, height = counts.idxmax()
    return f"{int(width)}x{int(height)}"


def participant_engines(joins: pd.DataFrame) -> dict[str, str]:
    """Engine of every participant in ``joins`` (``native`` where the column is missing or null)."""
    if joins.empty:
        return {}
    engines = joins["engine"] if "engine" in joins.columns else pd.Series(None, index=joins.index)
    return {str(p): (str(e) if isinstance(e, str) and e else "native")
            for p, e in zip(joins["participant"], engines, strict=True)}


def stream_owners(joins: pd.DataFrame) -> dict[int, str]:
    """Video stream id (as stamped) → the participant that published it, from ``joins.stream_id``.

    A participant's screen share (``docs/results.md``) is stamped with the next, odd id: it maps to the
    participant too.
    """
    if joins.empty or "stream_id" not in joins.columns:
        return {}
    owners = {int(sid): str(p) for p, sid in zip(joins["participant"], joins["stream_id"], strict=True)
              if pd.notna(sid)}
    return {**{sid + 1: p for sid, p in owners.items() if sid % 2 == 0}, **owners}


def _by_engine(joins: pd.DataFrame, frames: pd.DataFrame, streams: pd.DataFrame, audio: pd.DataFrame,
               probes: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any]]:
    """Figures per engine of the measuring participant, and video latency per sender>receiver engine pair."""
    engine_of = participant_engines(joins)
    ok = joins[joins["ok"] == True]  # noqa: E712 - a pandas mask
    joined = {str(p) for p in ok["participant"]}
    engines: dict[str, Any] = {}
    for engine in sorted({engine_of[p] for p in joined}):
        mine = {p for p in joined if engine_of[p] == engine}
        inbound = streams[(streams["direction"] == "in") & streams["participant"].isin(mine)]
        outbound = streams[(streams["direction"] == "out") & streams["participant"].isin(mine)]
        cpu = per_second_total(probes, ENGINE_ROLES.get(engine, ()), "cpu_pct")
        rss = per_second_total(probes, ENGINE_ROLES.get(engine, ()), "rss_mb")
        engines[engine] = {
            "participants": len(mine),
            "video_latency_ms": _distribution(frames.loc[frames["receiver"].isin(mine), "latency_ms"]),
            "audio_latency_ms": _distribution(audio.loc[audio["receiver"].isin(mine), "latency_ms"]),
            "rtt_ms": _distribution(outbound["rtt_ms"]),
            "jitter_ms": _distribution(inbound["jitter_ms"]),
            "fps": _distribution(inbound.loc[inbound["kind"] == "video", "fps"]),
            "packet_loss_pct": _packet_loss_pct(inbound),
            "cpu_pct_per_participant": _round(cpu.mean() / len(mine)) if cpu is not None else None,
            "rss_mb_per_participant": _round(rss.mean() / len(mine)) if rss is not None else None,
        }
    paths: dict[str, Any] = {}
    if not frames.empty:
        # The stamp's stream id says who sent a frame whatever name the receiving side knew it by (a web
        # app's display name, or stream-<id>); runs without joins.stream_id fall back to the name.
        owner = stream_owners(joins)
        senders = pd.Series([engine_of.get(owner.get(int(sid), str(name)), "unknown")
                             for sid, name in zip(frames["stream_id"], frames["sender"], strict=True)],
                            index=frames.index)
        receivers = frames["receiver"].map(lambda name: engine_of.get(str(name), "unknown"))
        for (sender, receiver), group in frames.groupby([senders, receivers]):
            paths[f"{sender}>{receiver}"] = _distribution(group["latency_ms"])
    return engines, dict(sorted(paths.items()))


def _duration_s(manifest: Mapping[str, Any]) -> float | None:
    started, ended = manifest.get("started_utc"), manifest.get("ended_utc")
    if not isinstance(started, str) or not isinstance(ended, str):
        return None
    try:
        return _round((datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds())
    except (TypeError, ValueError):
        # Naive vs aware or an unparseable stamp: no duration rather than a wrong one.
        return None


def _loadgen_health(probes: pd.DataFrame) -> dict[str, Any] | None:
    """What the media hosts' health probes say (the run's ``invalid`` rules read the same columns)."""
    hosts = probes[probes["role"] == "media_host"]
    if hosts.empty:
        return None
    produced = float(hosts["frames_produced"].fillna(0).sum())
    skipped = float(hosts["frames_skipped"].fillna(0).sum())
    lag = hosts["loop_lag_ms"].dropna()

    def total(column: str) -> int | None:
        values = hosts[column].dropna()
        return int(values.sum()) if not values.empty else None

    return {
        "frames_skipped_pct": _round(100 * skipped / (produced + skipped)) if produced + skipped else None,
        "loop_lag_over_100ms_pct": _round(100 * float((lag > 100).mean())) if not lag.empty else None,
        "loop_lag_max_ms": _round(float(lag.max())) if not lag.empty else None,
        "udp_drops": total("udp_drops"),
        "udp_rcvbuf_errors": total("udp_rcvbuf_errors"),
        "samples_dropped": total("samples_dropped"),
    }


def _wire_health(probes: pd.DataFrame) -> dict[str, Any] | None:
    """How well the network wire kept its packets' times (:func:`~harness.analysis.health.wire_lateness`, which
    the run's ``invalid`` rule reads too)."""
    lateness = wire_lateness(probes[probes["role"] == "wire"])
    if lateness is None:
        return None
    share = lateness.late_share
    return {
        "packets_held": lateness.held,
        "late_pct": _round(100 * share) if share is not None else None,
        "late_ms_max": _round(lateness.latest_ms),
    }


def _started(manifest: Mapping[str, Any]) -> float | None:
    """Where the run's timelines count from: the load's start, else (older runs) the run's."""
    return parse_utc(manifest.get("load_started_utc")) or parse_utc(manifest.get("started_utc"))


def _system_name(manifest: Mapping[str, Any]) -> str | None:
    system = manifest.get("system")
    if isinstance(system, Mapping):
        name = system.get("name")
        return name if isinstance(name, str) else None
    return system if isinstance(system, str) else None


def summarize(
    reader: RunReader,
    *,
    planned_participants: int,
    thresholds: Sequence[Threshold] = (),
    status: str | None = None,
    window: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Compute every figure of ``summary.json`` from the run's tables and evaluate ``thresholds``.

    ``planned_participants`` comes from the scenario; ``status`` defaults to the manifest's. The result
    holds only JSON values (None for anything that could not be measured, never NaN) and can be passed to
    :func:`harness.store.manifest.write_summary` as is.

    ``window`` (UNIX seconds, start and end): the media figures (frames, streams, audio, probes) come from
    rows inside it only — the steady part of a run, without the bursts of joining and leaving (see
    :func:`harness.analysis.health.steady_window`). Joins always count over the whole run. When the window holds no
    frame (a run aborted early), every row counts, and ``window`` in the summary says so (null).
    """
    if isinstance(planned_participants, bool) or not isinstance(planned_participants, int):
        raise TypeError(f"planned_participants must be an int, got {planned_participants!r}")
    if planned_participants < 0:
        raise ValueError(f"planned_participants must be >= 0, got {planned_participants}")
    manifest = reader.manifest
    joins = reader.table("joins")
    frames = reader.table("frames")
    streams = reader.table("streams")
    audio = reader.table("audio")
    probes = reader.table("probes")
    used_window = None
    if window is not None:
        start, end = window

        def inside(table: pd.DataFrame) -> pd.DataFrame:
            return table[(table["ts"] >= start) & (table["ts"] <= end)]

        if not inside(frames).empty:
            frames, streams, audio, probes = (inside(t) for t in (frames, streams, audio, probes))
            used_window = {"start": _round(start), "end": _round(end)}

    inbound = streams[streams["direction"] == "in"]
    inbound_video = inbound[inbound["kind"] == "video"]
    outbound = streams[streams["direction"] == "out"]
    ok_joins = joins[joins["ok"]]
    joined = set(ok_joins["participant"])

    samples: dict[str, pd.Series] = {
        "join_ms": ok_joins["join_ms"],
        "video_latency_ms": frames["latency_ms"],
        "audio_latency_ms": audio["latency_ms"],
        "rtt_ms": outbound["rtt_ms"],
        "jitter_ms": inbound["jitter_ms"],
        "fps": inbound_video["fps"],
        "bitrate_kbps": inbound_video["bitrate_kbps"],
        "audio_mos": inbound[inbound["kind"] == "audio"]["mos"],
        "video_psnr_db": inbound_video["psnr_db"],
    }
    assert samples.keys() == set(DISTRIBUTION_METRICS), "summary and thresholds disagree on the metrics"

    loadgen_rss = per_second_total(probes, LOADGEN_ROLES, "rss_mb")
    engines, paths = _by_engine(joins, frames, streams, audio, probes)
    events = reader.table("events")
    # Gone from the call: a browser that closed or crashed, a participant that could not come back after a fault.
    dropped = events.loc[events["kind"].isin(("participant_failed", "reconnect_failed")), "participant"].dropna()
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": manifest.get("run_id"),
        "system": _system_name(manifest),
        "status": status if status is not None else manifest.get("status"),
        "duration_s": _duration_s(manifest),
        "window": used_window,
    }
    for metric in DISTRIBUTION_METRICS:
        summary[metric] = _distribution(samples[metric])
    summary.update(
        {
            "packet_loss_pct": _packet_loss_pct(inbound),
            "frame_loss_pct": _frame_loss_pct(frames),
            "freezes_per_min": _freezes_per_min(inbound_video),
            "video_resolution": _resolution(inbound_video),
            "participants": {
                "planned": planned_participants,
                "joined": len(joined),
                # Every joins row is an attempt, so anyone in the table who never got in has failed.
                "failed": len(set(joins["participant"]) - joined),
                # In the call, then gone: a browser that closed or crashed (participant_failed events).
                "dropped": len(set(dropped) & joined),
            },
            "sut_cpu_pct": _mean_max(per_second_total(probes, ("sut",), "cpu_pct")),
            "loadgen_cpu_pct": _mean_max(per_second_total(probes, LOADGEN_ROLES, "cpu_pct")),
            # The controller's machine: every process on it, and what its hypervisor withheld (steal).
            "machine_cpu_pct": _mean_max(per_second_total(probes, (MACHINE_ROLE,), "cpu_pct")),
            "machine_steal_pct": _mean_max(per_second_total(probes, (MACHINE_ROLE,), "steal_pct")),
            "machine_other_cpu_pct": _mean_max(other_work(probes)),
            "loadgen_rss_mb_max": _round(loadgen_rss.max()) if loadgen_rss is not None else None,
            "engines": engines,
            "video_latency_by_path_ms": paths,
            "loadgen_health": _loadgen_health(probes),
            "wire_health": _wire_health(probes),
            # Over the whole run: faults fall anywhere, also outside the steady window.
            "outages": recovery(events, reader.table("streams"), joins, _started(manifest)),
            # Over the whole run, not the window: a network timeline's changes may fall anywhere in it.
            "layer_switch_ms": switch_summary(layer_switches(reader.table("frames"), events, joins,
                                                             reader.table("streams"))),
        }
    )
    summary["thresholds"] = evaluate(thresholds, summary)
    # Read last: by now every table has been read, so every skipped part is listed.
    summary["warnings"] = list(reader.warnings)
    return summary


def received_streams(streams: pd.DataFrame) -> dict[str, int]:
    """Distinct streams the participants received, per kind (``video``, ``audio``): what a server forwarded.

    ``streams`` is the ``streams`` table (or a window of it); a stream counts once it carried a packet.
    """
    inbound = streams[(streams["direction"] == "in") & (streams["packets"] > 0)]
    return {kind: int(len(inbound[inbound["kind"] == kind][["participant", "peer", "ssrc"]].drop_duplicates()))
            for kind in ("video", "audio")}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.{DECIMALS}f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return str(value)


_CPU_KEYS = ("sut_cpu_pct", "loadgen_cpu_pct", "machine_cpu_pct", "machine_steal_pct", "machine_other_cpu_pct")


def format_table(summary: Mapping[str, Any]) -> str:
    """A compact plain-text table of a summary for the terminal (ASCII only, no trailing newline)."""
    lines = [
        f"run {_fmt(summary.get('run_id'))}  system {_fmt(summary.get('system'))}  "
        f"status {_fmt(summary.get('status'))}  duration {_fmt(summary.get('duration_s'))} s"
    ]
    width = max(len(name) for name in (*DISTRIBUTION_METRICS, "loadgen_rss_mb_max", *_CPU_KEYS))
    lines.append(f"{'metric':<{width}}  {'p50':>10}  {'p95':>10}  {'p99':>10}  {'samples':>8}")
    for metric in DISTRIBUTION_METRICS:
        dist = summary.get(metric)
        if not isinstance(dist, Mapping):
            dist = {}
        lines.append(
            f"{metric:<{width}}  {_fmt(dist.get('p50')):>10}  {_fmt(dist.get('p95')):>10}  "
            f"{_fmt(dist.get('p99')):>10}  {_fmt(dist.get('samples')):>8}"
        )
    lines.append(f"{'metric':<{width}}  {'value':>10}")
    for key in ("packet_loss_pct", "frame_loss_pct", "freezes_per_min", "video_resolution", "loadgen_rss_mb_max"):
        lines.append(f"{key:<{width}}  {_fmt(summary.get(key)):>10}")
    participants = summary.get("participants")
    if isinstance(participants, Mapping):
        joined, planned = _fmt(participants.get("joined")), _fmt(participants.get("planned"))
        failed = _fmt(participants.get("failed"))
        lines.append(f"{'participants':<{width}}  {joined}/{planned} joined, {failed} failed")
    for key in _CPU_KEYS:
        figures = summary.get(key)
        if isinstance(figures, Mapping):
            text = f"mean {_fmt(figures.get('mean'))}, max {_fmt(figures.get('max'))}"
        else:
            text = "-"
        lines.append(f"{key:<{width}}  {text}")
    outages = summary.get("outages")
    if isinstance(outages, Mapping) and outages.get("faults"):
        lines.append("outages (recovery from the fault's end: p50 / max ms; reconnected; dropped)")
        for fault in outages.get("faults") or []:
            rec, rc = fault.get("recovery_ms") or {}, fault.get("reconnect_ms") or {}
            lines.append(f"  at {_fmt(fault.get('at_s'))} s {fault.get('label')}: streams {fault.get('recovered')}/"
                         f"{fault.get('streams')} back in {_fmt(rec.get('p50'))} / {_fmt(rec.get('max'))}; "
                         f"reconnected {fault.get('reconnected')} (p50 {_fmt(rc.get('p50'))} ms); "
                         f"dropped {len(fault.get('dropped') or [])}")
    results = summary.get("thresholds") or []
    if results:
        lines.append("thresholds")
        for result in results:
            mark = "ok  " if result.get("ok") else "FAIL"
            lines.append(f"  {mark} {result.get('expr')}  (value {_fmt(result.get('value'))})")
    warnings = summary.get("warnings") or []
    if warnings:
        lines.append(f"{len(warnings)} warning(s) while reading the results:")
        lines.extend(f"  {warning}" for warning in warnings)
    return "\n".join(lines)
