"""Calibration through a system: delay and loss injected on the way to the server, on the way from it, or both.

``confbench calibrate --system NAME`` checks the instrument on the path a run on that system measures: a real
server in the middle, with its own retransmissions, key-frame requests and reordering (the issue on truth
through real SFUs). It deploys the system as a run would (a local Janus in its namespace, the reference SFU
as a process), then makes two measuring calls through it (:class:`~harness.orchestrate.measuring_call.MeasuringCall`):

- the **floor call**: sender and receiver in the root namespace, no impairment, in a room of its own, running
  the whole time: the floor of a delay cell is measured over the same seconds, under the same load;
- the **measured call**: sender and receiver each behind an emulated link of its own.

Paths: ``up`` (the sender's link, towards the server), ``down`` (the receiver's link, from the server) and
``both`` (half the delay on each; the loss on each).

- **Delay**: measured = video latency p50 - the floor call's p50 over the same seconds; error = measured -
  injected one-way delay, within ±(2 ms + 2 %).
- **Loss** is measured where the harness measures a link: a participant's received RTP packets count what its
  own downlink lost (before any repair: retransmissions arrive on their own SSRC), and the packets the server
  asked the sender for again tell what its uplink lost (``packets_nacked`` of its video ``out`` rows; the
  server's receiver reports where it asks for none). Receiver reports are not enough: LiveKit's count a
  packet it repaired as received (4.5 % reported for 10 % injected). So ``down`` is the receiver's inbound
  loss, ``up`` the sender's video asked for again, ``both`` both of them, each against the injected loss:
  within ±15 % relative, or three binomial standard deviations of the packets counted.
  The receiver's figure is its video's: a server repairs video lost upstream before it forwards it (NACK), so
  only the downlink's losses reach the receiver's counters, where audio lost upstream is passed on by a
  server that keeps the publisher's sequence numbers (Janus: 15.6 % audio and video at the receiver with 10 %
  on each link), which is the end-to-end loss a person hears, not the downlink's.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from harness.orchestrate.calibration import (
    BUSY_ATTEMPTS,
    LOSS_TOLERANCE,
    MAX_LOSS_CELL_S,
    SETTLE_S,
    START_S,
    TARGET_LOST,
    Calibration,
    CalibrationError,
    Cell,
    _busy,
    _delay_cell,
    _fmt,
    _measure,
    _packet_rate,
    _window,
    format_grid,
    video_label,
)
from harness.orchestrate.measuring_call import MeasuringCall
from harness.probes.machine import MachineLog
from harness.scenario.network import NetworkProfile, Shape
from harness.scenario.scenario import VideoSettings
from harness.systems import IMPAIRED_NETWORK, SERVE_ADDRESS, SystemSpec, create_system

PATHS = ("up", "down", "both")
DELAYS_MS: tuple[float, ...] = (0, 20, 50, 100, 200)
LOSSES_PCT: tuple[float, ...] = (2, 5, 10)
CELL_S = 8.0


def _shapes(path: str, delay: float = 0.0, loss: float = 0.0) -> dict[str, tuple[Shape, Shape]]:
    """(up, down) shapes of the sender's and the receiver's link for one cell on ``path``."""
    half = delay / 2 if path == "both" else delay
    towards = Shape(delay_ms=half, loss_pct=loss)
    sender = (towards, Shape(loss_pct=loss)) if path in ("up", "both") else (Shape(), Shape())
    receiver = (Shape(loss_pct=loss), towards) if path in ("down", "both") else (Shape(), Shape())
    return {"sender": sender, "receiver": receiver}


def _loss_of(rows: pd.DataFrame) -> tuple[float | None, int]:
    """RTP loss (%) of inbound rows, and the packets it counts."""
    if rows.empty:
        return None, 0
    lost = float(rows["packets_lost"].sum())
    total = lost + float(rows["packets"].sum())
    return (100.0 * lost / total if total else None), int(total)


def _reported_loss(rows: pd.DataFrame) -> tuple[float | None, int]:
    """The loss the server reported to the sender (receiver reports), weighted by the packets sent."""
    rows = rows.dropna(subset=["loss_pct"]) if len(rows) else rows
    if rows.empty or rows["packets"].sum() <= 0:
        return None, 0
    weights = rows["packets"].astype(float)
    return float((rows["loss_pct"] * weights).sum() / weights.sum()), int(weights.sum())


def _nacked_loss(rows: pd.DataFrame) -> tuple[float | None, int]:
    """The share (%) of the sender's video packets the server asked for again, and the packets sent."""
    if rows.empty or "packets_nacked" not in rows.columns or rows["packets_nacked"].isna().all():
        return None, 0
    video = rows[rows["kind"] == "video"]
    sent, asked = float(video["packets"].sum()), float(video["packets_nacked"].fillna(0).sum())
    if sent <= 0 or asked <= 0:
        return None, 0  # a server that asks for nothing: its receiver reports are all there is
    return 100.0 * asked / sent, int(sent)


def loss_cell(path: str, where: str, injected: float, measured: float | None, samples: int, note: str) -> Cell:
    """A loss cell: within ±15 % relative or three binomial sigmas of ``samples`` packets."""
    error = (measured - injected) / injected if measured is not None else None
    sigma = math.sqrt(injected / 100 * (1 - injected / 100) / samples) * 100 if samples else math.inf
    limit = max(LOSS_TOLERANCE, 3 * sigma / injected)
    return Cell("loss", injected, "%", measured, error, limit, ok=error is not None and abs(error) <= limit,
                note=f"{path}: {where}; {note}", samples=samples)


async def calibrate_system(spec: SystemSpec, video: VideoSettings, *, delays: Sequence[float] = DELAYS_MS,
                           losses: Sequence[float] = LOSSES_PCT, paths: Sequence[str] = PATHS,
                           cell_s: float = CELL_S, floor_s: float = CELL_S, target_lost: int = TARGET_LOST,
                           progress: Callable[[str], None] | None = None) -> Calibration:
    """The delay and loss grid through ``spec`` on each path (needs root; see the module docstring)."""
    from harness.testbed.impairment import create_network

    say = progress or (lambda text: None)
    network = await asyncio.to_thread(create_network, {"sender": NetworkProfile(), "receiver": NetworkProfile()})
    cells: list[Cell] = []
    system = None
    machine = MachineLog()
    machine.start()
    try:
        system = create_system(spec, {SERVE_ADDRESS: network.root_address, IMPAIRED_NETWORK: network})
        deployment = await asyncio.to_thread(system.deploy)
        target = (spec.name, deployment.url)
        root = list(deployment.host_addresses) or [network.root_address]
        ports = network.ports
        floor_call = MeasuringCall(video, system=target, room="calibration-floor",
                                   sender_addresses=root, receiver_addresses=root)
        call = MeasuringCall(video, system=target, room="calibration-grid",
                             sender_prefix=["ip", "netns", "exec", ports["sender"].namespace],
                             sender_addresses=[ports["sender"].address],
                             receiver_prefix=["ip", "netns", "exec", ports["receiver"].namespace],
                             receiver_addresses=[ports["receiver"].address])
        async with floor_call, call:
            say(f"floor through {spec.name}: {video_label(video)}, {floor_s:g} s")
            await asyncio.sleep(START_S)
            floor = await _measure(floor_call, floor_s, f"calibration through {spec.name}", machine)
            if floor.video_p50_ms is None:
                raise CalibrationError(f"the floor call through {spec.name} received no video frame")

            async def cell(shapes: dict[str, tuple[Shape, Shape]], seconds: float, settle: float
                           ) -> tuple[float, float]:
                for group, (up, down) in shapes.items():
                    await asyncio.to_thread(network.set_shapes, group, up, down)
                await asyncio.sleep(SETTLE_S + settle)
                return await _window(seconds)

            for path in paths:
                for delay in delays:
                    for attempt in range(1, BUSY_ATTEMPTS + 1):
                        again = " (again: the machine was busy)" if attempt > 1 else ""
                        say(f"{path}: delay {delay:g} ms{again}")
                        start, end = await cell(_shapes(path, delay=delay), cell_s, delay / 1000)
                        busy = _busy(call, start, end, machine) or _busy(floor_call, start, end)
                        if not busy:
                            break
                    delay_cell = _delay_cell(delay, call.table("frames", start, end),
                                             floor_call.table("frames", start, end), busy)
                    cells.append(Cell(delay_cell.kind, delay_cell.injected, delay_cell.unit, delay_cell.measured,
                                      delay_cell.error, delay_cell.limit, delay_cell.ok,
                                      f"{path}: {delay_cell.note}", delay_cell.samples))
            packet_rate = _packet_rate(call)
            for path in paths:
                for loss in losses:
                    seconds = min(MAX_LOSS_CELL_S, max(cell_s, target_lost / (packet_rate * loss / 100)))
                    say(f"{path}: loss {loss:g} % for {seconds:.0f} s")
                    start, end = await cell(_shapes(path, loss=loss), seconds, 0.0)
                    streams = call.table("streams", start, end, receiver=None)
                    if path in ("down", "both"):
                        inbound = streams[(streams["participant"] == "receiver") & (streams["direction"] == "in")
                                          & (streams["kind"] == "video")]
                        measured, total = _loss_of(inbound)
                        cells.append(loss_cell(path, "receiver's video RTP loss", loss, measured, total,
                                               "its downlink, before repairs"))
                    if path in ("up", "both"):
                        out = streams[(streams["participant"] == "sender") & (streams["direction"] == "out")]
                        measured, total = _nacked_loss(out)
                        where, note = f"sender's video {spec.name} asked for again", "its uplink, NACKs"
                        if measured is None:
                            measured, total = _reported_loss(out)
                            where, note = f"loss {spec.name} reported to the sender", "its uplink, receiver reports"
                        cells.append(loss_cell(path, where, loss, measured, total, note))
    finally:
        machine.stop()
        if system is not None:
            await asyncio.to_thread(system.undeploy)
        await asyncio.to_thread(network.close)
    return Calibration(video=video_label(video), backend=network.backend, floor=floor, cells=tuple(cells),
                       machine={"cores": os.cpu_count(), "load_avg": list(os.getloadavg()), "system": spec.name,
                                "system_version": deployment.info.get("version") if deployment.info else None})


def calibrate_named(system: str, video: VideoSettings, *, quick: bool = False,
                    progress: Callable[[str], None] | None = None) -> Calibration:
    """``confbench calibrate --system NAME``: check the name, run the grid (``quick``: a smoke test), remember."""
    from harness.errors import UsageError

    spec = SystemSpec.parse(system)
    if spec.url:
        raise UsageError("calibrate --system takes a system confbench starts itself (no URL): the emulated links "
                         "must reach the server")
    create_system(spec)  # an unknown name fails now, in one line
    grid: dict[str, Any] = {}
    if quick:
        # Loss cells of ~150 expected losses (15 s at 10 %): a receiver-report figure moves more than a binomial
        # count of the same packets (its intervals do not line up with the cell), and 40 proved too few.
        grid = {"delays": (0, 50), "losses": (10,), "cell_s": 4.0, "floor_s": 4.0, "target_lost": 150}
    result = asyncio.run(calibrate_system(spec, video, progress=progress, **grid))
    remember(result)
    return result


def format_system_calibration(cal: Calibration) -> str:
    """The table ``confbench calibrate --system`` prints."""
    f = cal.floor
    system = cal.machine.get("system", "?")
    lines = [f"calibration through {system}: {cal.video}; sender and receiver each behind an emulated link "
             f"({cal.backend})",
             f"floor through {system} (no impairment, measured alongside): video p50 {_fmt(f.video_p50_ms)} ms, "
             f"p95 {_fmt(f.video_p95_ms)} ms; audio p50 {_fmt(f.audio_p50_ms)} ms ({f.frames} frames)"]
    return "\n".join([*lines, *format_grid(cal)])


def summary(cal: Calibration) -> dict[str, Any]:
    """Per path and kind, the largest error: what a report shows of a system's calibration."""
    worst: dict[str, Any] = {}
    for c in cal.cells:
        path = c.note.split(":", 1)[0]
        key = f"{path} {c.kind}"
        if c.error is not None and (key not in worst or abs(c.error) > abs(worst[key]["error"])):
            worst[key] = {"error": c.error, "unit": "ms" if c.kind == "delay" else "relative", "ok": c.ok}
    return {"system": cal.machine.get("system"), "video": cal.video, "ok": cal.ok, "worst": worst}


def remember(cal: Calibration) -> None:
    """Keep the calibration of this system on this machine (the cache of :func:`calibration.cache_path`), for
    the manifests of later runs on it; best effort."""
    import time

    from harness.orchestrate.calibration import _read_cache, write_cache

    data = _read_cache()
    data.setdefault("systems", {})[str(cal.machine.get("system"))] = {
        **summary(cal), "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_cache(data)


def last_calibration(system: str) -> dict[str, Any] | None:
    """The last calibration through ``system`` on this machine (:func:`summary`'s form), or None."""
    from harness.orchestrate.calibration import _read_cache

    entry = _read_cache().get("systems", {}).get(system)
    return entry if isinstance(entry, dict) else None
