"""Synthetic runs for comparison, run set, history and report tests: written with RunWriter, summarised for real.

Each run has joins, frames, audio, streams and probes rows drawn from a seeded generator around the figures
the caller gives, so its summary.json is computed by :func:`harness.analysis.summary.summarize` like a real run's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis.summary import summarize
from harness.scenario.scenario import parse_scenario
from harness.store.manifest import new_run_id, utc_iso, write_manifest, write_summary
from harness.store.reader import RunReader
from harness.store.writer import RunWriter

SCENARIO: dict[str, Any] = {
    "name": "synthetic",
    "duration_s": 10,
    "groups": [{"name": "talkers", "count": 2}],
    "thresholds": {"video_latency_ms.p95": "< 100"},
}


def write_run(
    root: Path,
    system: str,
    *,
    seed: int,
    latency_ms: float = 50.0,
    noise: float = 0.03,
    start: datetime | None = None,
    status: str = "completed",
    scenario: dict[str, Any] | None = None,
    version: str = "1.0",
    sut_cpu: float | None = 40.0,
    server_cpus: float | None = None,
) -> Path:
    """Write one completed run of ``system`` whose video latency is about ``latency_ms`` (±``noise``)."""
    rng = np.random.default_rng(seed)
    resolved = parse_scenario(scenario or SCENARIO)
    when = start or datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    t0 = when.timestamp()
    run_id = new_run_id(system, when)
    run_dir = root / run_id
    # Run-to-run variation (the thing repetitions measure) on top of sample-to-sample variation.
    shift = 1.0 + rng.normal(0.0, noise)
    write_manifest(run_dir, {
        "run_id": run_id, "status": status, "started_utc": utc_iso(when),
        "ended_utc": utc_iso(when + timedelta(seconds=10)), "scenario": resolved.to_dict(),
        "scenario_sha256": resolved.sha256(), "system": {"name": system, "url": None, "version": version},
        **({} if server_cpus is None else {"server_cpus": server_cpus}),
    })
    with RunWriter(run_dir) as writer:
        writer.append("joins", [
            {"ts": t0 + 0.1 * i, "participant": f"p{i}", "group": "talkers", "host": "h", "attempt": 1,
             "ok": True, "join_ms": float(300 * shift + rng.normal(0, 10))} for i in range(2)
        ])
        frames = []
        for i in range(300):
            lat = float(latency_ms * shift + rng.gamma(4.0, 2.0))
            frames.append({"ts": t0 + 1 + i / 30, "receiver": "p0", "sender": "p1", "stream_id": 1, "frame_no": i,
                           "capture_ts": t0 + 1 + i / 30 - lat / 1000, "latency_ms": lat, "width": 320,
                           "height": 180})
        writer.append("frames", frames)
        writer.append("audio", [
            {"ts": t0 + 1 + i, "receiver": "p0", "sender": "p1",
             "latency_ms": float((latency_ms + 20) * shift + rng.normal(0, 2))} for i in range(9)
        ])
        streams = []
        for second in range(1, 10):
            for direction in ("in", "out"):
                streams.append({
                    "ts": t0 + second, "participant": "p0", "peer": "p1", "direction": direction, "kind": "video",
                    "ssrc": 1, "packets": 100, "packets_lost": 0, "jitter_ms": float(2 + rng.normal(0, 0.1)),
                    "rtt_ms": float(1 + rng.normal(0, 0.05)) if direction == "out" else None,
                    "bitrate_kbps": 300.0, "fps": 30.0 if direction == "in" else None, "freezes": 0,
                    "freeze_ms": 0.0, "frames_unreadable": 0,
                })
        writer.append("streams", streams)
        probes = []
        for second in range(10):
            probes.append({"ts": t0 + second, "host": "h", "role": "media_host", "pid": 100, "name": "mh",
                           "cpu_pct": float(30 + rng.normal(0, 1)), "rss_mb": 80.0})
            if sut_cpu is not None:
                probes.append({"ts": t0 + second, "host": "h", "role": "sut", "pid": 200, "name": "server",
                               "cpu_pct": float(sut_cpu * shift + rng.normal(0, 1)), "rss_mb": 50.0})
        writer.append("probes", probes)
    summary = summarize(RunReader(run_dir), planned_participants=resolved.participants,
                        thresholds=resolved.thresholds, status=status)
    write_summary(run_dir, summary)
    return run_dir


def write_set(root: Path, systems: dict[str, float], repeat: int, *, seed: int, **kwargs: Any) -> Path:
    """A run set folder with ``repeat`` interleaved runs per system (name → latency in ms)."""
    from harness.analysis.runset import close_run_set, open_run_set, record_run

    resolved = parse_scenario(kwargs.get("scenario") or SCENARIO)
    set_dir = open_run_set(root, resolved.name, resolved.sha256(), list(systems), repeat)
    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    n = 0
    for rep in range(1, repeat + 1):
        for system, latency in systems.items():
            run = write_run(set_dir, system, seed=seed * 1000 + n, latency_ms=latency,
                            start=start + timedelta(minutes=n), **kwargs)
            record_run(set_dir, run, system, rep, "completed")
            n += 1
    close_run_set(set_dir, "completed")
    return set_dir
