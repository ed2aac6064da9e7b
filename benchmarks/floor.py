"""The instrument's floor: glass-to-glass latency of a 2-party p2p call on loopback, no server, no network.

For each resolution, measured twice in one run: with aiortc's jitter buffer (a video frame completes when the
next frame's first packet arrives) and with marker-bit completion (``harness/rtc/jitter.py``), so the printed
difference is what that change removes. Participants run in this process, as in one media host.

Run: .venv/bin/python benchmarks/floor.py [SECONDS]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from typing import Any

from harness.host.participant import Participant, ParticipantSpec
from harness.rtc import jitter
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import VideoSettings
from harness.systems.p2p import P2PSystem

_install = jitter.install


def _keep_aiortcs(relay: bool = False) -> None:
    """Stands in for ``jitter.install`` while aiortc's own buffer is measured (participants call it)."""


class _Sink:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.fps: list[float] = []

    def emit(self, table: str, row: dict[str, Any]) -> None:
        if table == "frames":
            self.latencies.append(row["latency_ms"])
        elif table == "streams" and row["direction"] == "in" and row["kind"] == "video" and row.get("fps"):
            self.fps.append(row["fps"])


async def _call(width: int, height: int, seconds: float, bitrate_kbps: int) -> _Sink:
    sink = _Sink()
    system = P2PSystem()
    video = VideoSettings(width=width, height=height, fps=30, bitrate_kbps=bitrate_kbps)
    people = [Participant(ParticipantSpec(name=f"p{i}", group="g", index=i, room="floor", video=video),
                          system, sink) for i in range(2)]
    try:
        for p in people:
            await p.join()
        await asyncio.sleep(1.0)  # let the encoders settle before measuring
        sink.latencies.clear()
        await asyncio.sleep(seconds)
    finally:
        await asyncio.gather(*(p.leave() for p in people))
    return sink


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    pin_host_addresses(["127.0.0.1"])
    print(f"floor: 2 participants, p2p, VP8 at 30 fps, {seconds:g} s per cell")
    print(f"{'size':>10} {'frame completion':>18} {'p50 ms':>8} {'p95 ms':>8} {'fps':>6} {'frames':>7}")
    for width, height, kbps in ((640, 360, 500), (1280, 720, 1500)):
        p50s = {}
        for mode in ("next packet", "marker bit"):
            # A participant installs the marker-bit buffer when it is created: for aiortc's own buffer, that
            # install must do nothing during the cell.
            jitter.uninstall()
            jitter.install = _install if mode == "marker bit" else _keep_aiortcs  # type: ignore[assignment]
            sink = asyncio.run(_call(width, height, seconds, kbps))
            lat = sorted(sink.latencies)
            p50, p95 = statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]
            p50s[mode] = p50
            print(f"{width}x{height:<5} {mode:>18} {p50:8.1f} {p95:8.1f} {statistics.mean(sink.fps):6.1f} "
                  f"{len(lat):7d}")
        print(f"{'':>10} {'difference':>18} {p50s['next packet'] - p50s['marker bit']:8.1f}")
    jitter.install = _install  # type: ignore[assignment]
    jitter.install()


if __name__ == "__main__":
    main()
