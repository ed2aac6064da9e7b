"""Calibration: how exact the instrument is, measured on the ``p2p`` path (no server) against known networks.

``confbench calibrate`` measures, with the same media hosts a run uses (:mod:`harness.orchestrate.measuring_call`):

1. **the floor**: a sender and a receiver on loopback, no network emulation and no server: the latency
   the instrument itself adds (capture, encode, packetize, depacketize, decode);
2. **the grid**: the sender behind an emulated link (``harness.testbed.impairment``) whose uplink gets, one
   cell after the other, one-way delays, random losses, a jitter and a rate limit, in one continuous call.

For a delay cell (sender → receiver only), measured = video latency p50 − floor p50 and error = measured −
injected, within ±(2 ms + 2 %) to pass. The floor of a delay cell is measured *at the same time*, by a second
call on loopback that runs alongside the grid's: on a shared machine the load, and with it the floor, moves
by milliseconds within minutes, and only a floor measured under the same load tells the instrument's error
from the machine's. A cell during which either call's media hosts fell behind, or the machine's hypervisor
withheld a tenth of a core or more (steal: the host's other tenants), is measured again (up to
:data:`BUSY_ATTEMPTS` times) and marked BUSY if it never got a quiet moment. For a loss cell (both ways),
measured = RTP packet loss at both participants, error relative to the injected loss, within ±15 % to pass;
loss cells last until about :data:`TARGET_LOST` losses are expected, so that chance alone (binomial) stays well
inside that limit, and the loss the wire actually applied is shown next to it. Jitter and the rate limit
have no pass mark: the table shows the RTP jitter and the received bitrate they produce.

Every run records a floor in its manifest (``instrument_floor``): the last one measured on this machine
with the same video settings and harness commit (kept in :func:`cache_path`), else a quick floor check
(:data:`QUICK_FLOOR_S` of the floor call) made before the run starts.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.health import STEAL_NOTE_PCT
from harness.errors import HarnessError
from harness.orchestrate.measuring_call import MeasuringCall
from harness.probes.environment import git_commit
from harness.probes.machine import MachineLog
from harness.scenario.network import NetworkProfile, Shape
from harness.scenario.scenario import VideoSettings

DELAYS_MS: tuple[float, ...] = (0, 20, 50, 100, 200, 300)
LOSSES_PCT: tuple[float, ...] = (2, 5, 10)
JITTER_CELL = (50.0, 20.0)
"""(delay, jitter) ms of the jitter cell."""
RATE_CELL_KBPS = 300.0
"""The rate-limit cell: below what the sender sends (video at the scenario's bitrate, plus audio)."""
DELAY_TOLERANCE = (2.0, 0.02)
"""A delay passes within ±(2 ms + 2 % of the injected delay)."""
LOSS_TOLERANCE = 0.15
"""A loss passes within ±15 % of the injected loss (relative)."""
TARGET_LOST = 400
"""Expected losses per loss cell: binomial chance then moves the measured loss by about 5 % (one sigma)."""
MAX_LOSS_CELL_S = 120.0
SETTLE_S = 2.0
"""After a change of the link: packets in flight drain, and the receiver's 1 s statistics catch up."""
START_S = 4.0
CELL_S = 6.0
FLOOR_S = 10.0
QUICK_FLOOR_S = 4.0
CACHE_ENV = "CONFBENCH_CALIBRATION"
FLOOR_CHECK_ENV = "CONFBENCH_FLOOR_CHECK"
MAX_FLOOR_AGE_S = 7 * 24 * 3600
FLOOR_TIMEOUT_S = 180.0


class CalibrationError(HarnessError):
    """Calibration could not be done (e.g. the impaired network needs root)."""


@dataclass(frozen=True, slots=True)
class Floor:
    """The instrument's own latency on loopback (no network, no server) for some video settings."""

    video: str
    video_p50_ms: float | None
    video_p95_ms: float | None
    audio_p50_ms: float | None
    frames: int
    measured_utc: str
    source: str
    """``calibration`` (``confbench calibrate``) or ``quick check`` (before a run)."""

    def to_manifest(self) -> dict[str, Any]:
        """What a manifest records as ``instrument_floor``."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Cell:
    """One point of the grid: what was injected, what the instrument measured, and the verdict."""

    kind: str
    injected: float
    unit: str
    measured: float | None
    error: float | None = None
    limit: float | None = None
    ok: bool | None = None
    note: str = ""
    samples: int = 0


@dataclass(frozen=True, slots=True)
class Calibration:
    """A whole calibration: the floor and the grid."""

    video: str
    backend: str
    floor: Floor
    cells: tuple[Cell, ...] = ()
    wire_zero_ms: float | None = None
    """Video latency through the emulated link with nothing injected, minus the floor: the link's own cost."""
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every cell with a pass mark passed."""
        return all(c.ok is not False for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``--json``)."""
        return {"video": self.video, "backend": self.backend, "floor": asdict(self.floor),
                "wire_zero_ms": self.wire_zero_ms,
                "cells": [asdict(c) for c in self.cells], "ok": self.ok, "machine": self.machine}


def video_label(video: VideoSettings) -> str:
    """``640x360@30 VP8 500 kbit/s``: the settings a floor belongs to."""
    return f"{video.width}x{video.height}@{video.fps} {video.codec} {video.bitrate_kbps} kbit/s"


def _p(values: pd.Series, q: float) -> float | None:
    data = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=float)
    return float(np.percentile(data, q)) if data.size else None


def _floor_from(call: MeasuringCall, start: float, end: float, source: str) -> Floor:
    frames = call.table("frames", start, end)
    audio = call.table("audio", start, end)
    return Floor(video=video_label(call.video),
                 video_p50_ms=_p(frames["latency_ms"], 50) if len(frames) else None,
                 video_p95_ms=_p(frames["latency_ms"], 95) if len(frames) else None,
                 audio_p50_ms=_p(audio["latency_ms"], 50) if len(audio) else None,
                 frames=len(frames), measured_utc=datetime.now(UTC).isoformat(timespec="seconds"), source=source)


async def _window(seconds: float) -> tuple[float, float]:
    start = time.time()
    await asyncio.sleep(seconds)
    return start, time.time()


async def _measure(call: MeasuringCall, seconds: float, source: str, machine: MachineLog | None = None) -> Floor:
    """A floor from a running loopback call, measured again (up to :data:`BUSY_ATTEMPTS` times in all) while
    the call's own media hosts fell behind: such a floor would describe the machine's load, not the instrument."""
    for _ in range(BUSY_ATTEMPTS):
        start, end = await _window(seconds)
        if not _busy(call, start, end, machine):
            break
    return _floor_from(call, start, end, source)


async def measure_floor(video: VideoSettings, seconds: float = FLOOR_S, source: str = "calibration") -> Floor:
    """The floor: sender and receiver media hosts on loopback, no emulated network, no server."""
    async with MeasuringCall(video) as call:
        await asyncio.sleep(START_S)
        return await _measure(call, seconds, source)


class _WireRows:
    """Collects the emulated network's per-second rows in a thread, to show what it actually applied."""

    def __init__(self, network: Any) -> None:
        self.rows: list[dict[str, Any]] = []
        self._network = network
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="calibration-wire")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            tables = self._network.poll(0.5)
            if tables:
                self.rows.extend(tables.get("network", []))

    def applied_loss(self, group: str, start: float, end: float) -> float | None:
        rows = [r for r in self.rows if r["group"] == group and start <= r["ts"] < end]
        carried = sum(r["packets"] for r in rows)
        lost = sum(r["lost"] for r in rows)
        return 100.0 * lost / (carried + lost) if carried + lost else None

    def carried_kbps(self, group: str, start: float, end: float) -> float | None:
        rows = [r for r in self.rows if r["group"] == group and r["direction"] == "up" and start <= r["ts"] < end]
        return sum(r["bytes"] for r in rows) * 8 / 1000 / len(rows) if rows else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _loss(streams: pd.DataFrame) -> tuple[float | None, int]:
    inbound = streams[streams["direction"] == "in"] if len(streams) else streams
    if inbound.empty:
        return None, 0
    lost = float(inbound["packets_lost"].sum())
    total = float(inbound["packets"].sum()) + lost
    return (100.0 * lost / total if total else None), int(total)


def delay_limit(injected_ms: float) -> float:
    """The pass mark of a delay cell (ms either side)."""
    return DELAY_TOLERANCE[0] + DELAY_TOLERANCE[1] * injected_ms


async def calibrate(video: VideoSettings, *, delays: Sequence[float] = DELAYS_MS,
                    losses: Sequence[float] = LOSSES_PCT, cell_s: float = CELL_S, floor_s: float = FLOOR_S,
                    extras: bool = True, target_lost: int = TARGET_LOST,
                    progress: Callable[[str], None] | None = None) -> Calibration:
    """Measure the floor, then the grid through an emulated link (needs root; see the module docstring)."""
    from harness.testbed.impairment import create_network

    say = progress or (lambda text: None)
    network = await asyncio.to_thread(create_network, {"sender": NetworkProfile()})
    wire = _WireRows(network)
    machine = MachineLog()
    machine.start()
    cells: list[Cell] = []
    try:
        port = network.ports["sender"]
        call = MeasuringCall(video, broker_host=network.root_address,
                             sender_prefix=["ip", "netns", "exec", port.namespace],
                             sender_addresses=[port.address], receiver_addresses=[network.root_address])
        floor_call = MeasuringCall(video)
        await floor_call.__aenter__()
        try:
            say(f"floor: {video_label(video)} on loopback, {floor_s:g} s")
            await asyncio.sleep(START_S)
            floor = await _measure(floor_call, floor_s, "calibration", machine)
            if floor.video_p50_ms is None:
                raise CalibrationError("the floor call received no video frame: the instrument does not work here")
            async with call:
                async def cell(up: Shape, seconds: float, down: Shape | None = None
                               ) -> tuple[pd.DataFrame, pd.DataFrame, float, float]:
                    await asyncio.to_thread(network.set_shapes, "sender", up, down or Shape())
                    await asyncio.sleep(SETTLE_S + up.delay_ms / 1000)
                    start, end = await _window(seconds)
                    both = down is not None  # a shape on both ways is measured by both participants
                    return (call.table("frames", start, end), call.table("streams", start, end,
                                                                         None if both else "receiver"), start, end)

                # The first seconds of a call are not its steady state (first key frames, the receiver
                # building its PSNR reference textures): as for the floor, they are left out.
                await asyncio.sleep(START_S)
                for delay in delays:
                    for attempt in range(1, BUSY_ATTEMPTS + 1):
                        say(f"delay {delay:g} ms" + (" (again: the machine was busy)" if attempt > 1 else ""))
                        frames, _, start, end = await cell(Shape(delay_ms=delay), cell_s)
                        busy = _busy(call, start, end, machine) or _busy(floor_call, start, end)
                        if not busy:
                            break
                    cells.append(_delay_cell(delay, frames, floor_call.table("frames", start, end), busy))
                # The floor call is needed no more: the other cells have no floor, and it would load the machine.
                await floor_call.__aexit__()
                packet_rate = _packet_rate(call)
                for loss in losses:
                    seconds = min(MAX_LOSS_CELL_S, max(cell_s, target_lost / (packet_rate * loss / 100)))
                    say(f"loss {loss:g} % for {seconds:.0f} s")
                    _, streams, start, end = await cell(Shape(loss_pct=loss), seconds, Shape(loss_pct=loss))
                    measured, total = _loss(streams)
                    error = (measured - loss) / loss if measured is not None else None
                    applied = wire.applied_loss("sender", start, end)
                    cells.append(Cell("loss", loss, "%", measured, error, LOSS_TOLERANCE,
                                      ok=error is not None and abs(error) <= LOSS_TOLERANCE, samples=total,
                                      note=f"RTP loss, both ways; the wire dropped {applied:.2f} %"
                                      if applied is not None else "RTP loss, both ways"))
                if extras:
                    delay, jitter = JITTER_CELL
                    say(f"jitter {delay:g} ± {jitter:g} ms")
                    frames, streams, _, _ = await cell(Shape(delay_ms=delay, jitter_ms=jitter), cell_s)
                    inbound = streams[streams["direction"] == "in"] if len(streams) else streams
                    video_jitter = _p(inbound[inbound["kind"] == "video"]["jitter_ms"], 50) if len(inbound) else None
                    p95 = _p(frames["latency_ms"], 95) if len(frames) else None
                    cells.append(Cell("jitter", jitter, "ms", video_jitter, samples=len(inbound),
                                      note=f"RTP jitter (video, p50) with {delay:g} ± {jitter:g} ms; uniform "
                                      f"jitter gives about 2/3 of it when packets keep their order; video latency "
                                      f"p95 {_fmt(p95)} ms"))
                    say(f"rate {RATE_CELL_KBPS:g} kbit/s")
                    frames, streams, start, end = await cell(Shape(rate_kbps=RATE_CELL_KBPS, queue_ms=200), cell_s)
                    received = _received_kbps(streams)
                    rate_loss, total = _loss(streams)
                    latency = _p(frames["latency_ms"], 50) if len(frames) else None
                    cells.append(Cell("rate", RATE_CELL_KBPS, "kbit/s", received, samples=total,
                                      note=f"RTP payload received, audio + video (the link carried "
                                      f"{_fmt(wire.carried_kbps('sender', start, end))} kbit/s with headers); "
                                      f"{video.bitrate_kbps} kbit/s of video sent: loss {_fmt(rate_loss)} %, "
                                      f"video latency p50 {_fmt(latency)} ms"))
        finally:
            await floor_call.__aexit__()
    finally:
        machine.stop()
        wire.stop()
        await asyncio.to_thread(network.close)
    zero = next((c.measured for c in cells if c.kind == "delay" and c.injected == 0), None)
    return Calibration(video=video_label(video), backend=network.backend, floor=floor, cells=tuple(cells),
                       wire_zero_ms=zero, machine={"cores": os.cpu_count(), "load_avg": list(os.getloadavg())})


def _delay_cell(delay: float, frames: pd.DataFrame, floor_frames: pd.DataFrame, busy: str) -> Cell:
    """A delay cell: the video latency p50 minus the floor's p50 over the same seconds, against the delay."""
    p50 = _p(frames["latency_ms"], 50) if len(frames) else None
    base = _p(floor_frames["latency_ms"], 50) if len(floor_frames) else None
    measured = p50 - base if p50 is not None and base is not None else None
    error = measured - delay if measured is not None else None
    limit = delay_limit(delay)
    return Cell("delay", delay, "ms", measured, error, limit, ok=error is not None and abs(error) <= limit,
                note=f"video latency p50 − floor p50 measured meanwhile ({_fmt(base)} ms){busy}",
                samples=len(frames))


BUSY_LAG_MS = 50.0
"""A cell during which a media host's loop woke up later than this (or a source skipped a frame) is busy."""
BUSY_ATTEMPTS = 3
"""A busy floor or delay cell is measured again, up to this many times in all."""


def _busy(call: MeasuringCall, start: float, end: float, machine: MachineLog | None = None) -> str:
    """A note when the call's own media hosts were late during a cell, or the machine's hypervisor withheld
    :data:`~harness.analysis.health.STEAL_NOTE_PCT` of a core or more meanwhile (the machine was busy), else ""."""
    steal = machine.steal_pct(start, end) if machine is not None else None
    if steal is not None and steal >= STEAL_NOTE_PCT:
        return f"; BUSY: the hypervisor withheld {steal:.0f}% of a core"
    probes = call.table("probes", start, end, receiver=None)
    if probes.empty:
        return ""
    lag = float(probes["loop_lag_ms"].max())
    skipped = int(probes["frames_skipped"].fillna(0).sum())
    if lag <= BUSY_LAG_MS and not skipped:
        return ""
    return f"; BUSY: media host loop {lag:.0f} ms late, {skipped} frames skipped"


def _fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.1f}"


def _packet_rate(call: MeasuringCall) -> float:
    """Packets a second both participants got over the last few seconds (all streams)."""
    now = time.time()
    streams = call.table("streams", now - 5, now, receiver=None)
    inbound = streams[streams["direction"] == "in"] if len(streams) else streams
    return max(float(inbound["packets"].sum()) / 5.0, 1.0) if len(inbound) else 100.0


def _received_kbps(streams: pd.DataFrame) -> float | None:
    """Mean payload bitrate received, audio and video together."""
    inbound = streams[streams["direction"] == "in"] if len(streams) else streams
    if inbound.empty:
        return None
    per_kind = inbound.groupby("kind")["bitrate_kbps"].mean()
    return float(per_kind.sum()) if per_kind.notna().any() else None


def format_calibration(cal: Calibration) -> str:
    """The table ``confbench calibrate`` prints."""
    f = cal.floor
    lines = [f"calibration: p2p, {cal.video}; sender behind an emulated link ({cal.backend}), receiver in the "
             "root namespace",
             f"floor (loopback, no network, no server): video p50 {_fmt(f.video_p50_ms)} ms, p95 "
             f"{_fmt(f.video_p95_ms)} ms; audio p50 {_fmt(f.audio_p50_ms)} ms ({f.frames} frames)"]
    if cal.wire_zero_ms is not None:
        lines.append(f"the emulated link with nothing injected adds {cal.wire_zero_ms:+.2f} ms")
    return "\n".join([*lines, *format_grid(cal)])


def format_grid(cal: Calibration) -> list[str]:
    """The grid as table lines (injected / measured / error / limit / ok / note), then the verdict."""
    lines = [f"{'what':<7} {'injected':>12} {'measured':>12} {'error':>10} {'limit':>10} {'ok':>4}  note"]
    for c in cal.cells:
        if c.kind == "loss":
            error = f"{100 * c.error:+.1f} %" if c.error is not None else "–"
            limit = f"±{100 * c.limit:.0f} %" if c.limit is not None else ""
        else:
            error = f"{c.error:+.2f} {c.unit}" if c.error is not None else ""
            limit = f"±{c.limit:.1f} {c.unit}" if c.limit is not None else ""
        measured = f"{c.measured:.2f} {c.unit}" if c.measured is not None else "–"
        ok = "" if c.ok is None else "yes" if c.ok else "NO"
        lines.append(f"{c.kind:<7} {f'{c.injected:g} {c.unit}':>12} {measured:>12} {error:>10} {limit:>10} "
                     f"{ok:>4}  {c.note}")
    return [*lines, "all cells within their limits" if cal.ok else "SOME CELLS ARE OUTSIDE THEIR LIMITS"]


# --- the floor every run records ---------------------------------------------------------------------------


def cache_path() -> Path:
    """Where the last calibration and floor checks of this machine are kept."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "confbench" / "calibration.json"


def _cache_key(video: VideoSettings) -> str:
    return f"{video_label(video)} | {git_commit() or 'no commit'}"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def remember(floor: Floor, video: VideoSettings, calibration: Calibration | None = None) -> None:
    """Keep ``floor`` (and the whole calibration) for later runs; best effort."""
    data = _read_cache()
    data.setdefault("floors", {})[_cache_key(video)] = dict(asdict(floor), at=time.time())
    if calibration is not None:
        data["last_calibration"] = calibration.to_dict()
    write_cache(data)


def write_cache(data: dict[str, Any]) -> None:
    """Replace the cache file with ``data`` (atomically); best effort: a cache that cannot be written is skipped."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, path)
    except OSError:
        pass


def instrument_floor(video: VideoSettings) -> dict[str, Any] | None:
    """The floor to record in a run's manifest: a remembered one, else a quick check now (None when off).

    ``CONFBENCH_FLOOR_CHECK=0`` turns the quick check off (the manifest then says the floor was not
    measured). A failed check is recorded as such and never fails the run.
    """
    entry = _read_cache().get("floors", {}).get(_cache_key(video))
    if isinstance(entry, dict) and time.time() - float(entry.get("at", 0)) < MAX_FLOOR_AGE_S:
        return {k: v for k, v in entry.items() if k != "at"}
    if os.environ.get(FLOOR_CHECK_ENV, "1") == "0":
        return None
    argv = [sys.executable, "-m", "harness.orchestrate.calibration", "--floor", json.dumps(asdict(video))]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=FLOOR_TIMEOUT_S)
        floor = Floor(**json.loads(done.stdout))
    except (subprocess.TimeoutExpired, ValueError, TypeError) as exc:
        return {"source": "quick check", "video": video_label(video), "error": f"the floor check failed: {exc}"}
    remember(floor, video)
    return floor.to_manifest()


def main() -> None:
    """``python -m harness.orchestrate.calibration --floor '{video settings}'``: a quick floor check (JSON)."""
    if len(sys.argv) != 3 or sys.argv[1] != "--floor":
        raise SystemExit("usage: python -m harness.orchestrate.calibration --floor '{\"width\": 640, ...}'")
    video = VideoSettings(**json.loads(sys.argv[2]))
    floor = asyncio.run(measure_floor(video, QUICK_FLOOR_S, source="quick check"))
    print(json.dumps(asdict(floor)))


if __name__ == "__main__":
    main()
