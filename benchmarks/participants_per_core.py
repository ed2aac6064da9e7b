"""How many synthetic participants one core carries: publishers, receivers with and without decoding, a meeting.

Everything runs through the harness's own media host (``python -m harness.host.media_host``, the process a Locust
worker starts), so the figures are those of a real run: participants, shared encoders, taps, stats polling,
sample batching. The *measured* media host is pinned to one core (``os.sched_setaffinity``); its
counterpart (the other side of every stream) is pinned to the other cores, and so is this script:

- ``publishers``: N publishers (video, shared encoders: ``publishers_per_encoder`` = 25) on the measured core,
  each sending to one receive-only participant on the counterpart (p2p, no decoding there).
- ``receivers``: receive-only participants on the measured core that decode nothing (``probe_fraction`` 0),
  each receiving the 5 publishers of the counterpart: N streams.
- ``decoding``: the same, every stream decoded and its stamps read (``probe_fraction`` 1).
- ``meeting``: N participants on the measured core in one room of the reference SFU (its own process on the
  counterpart cores); everyone publishes and receives everyone (N x (N - 1) streams), a tenth of them decoded.

Video only: 480x270 VP8 at 30 fps and 400 kbit/s (the default scenario's camera), about 60 packets a second
a stream. A step *holds* when, over the measuring window, every stream the step should carry was received
at >= 29 fps on average, no RTP packet was lost, the measured host's sources skipped no frame, the host's
sockets dropped no datagram (UDP receive-buffer errors) and its event loop lagged > 100 ms in at most 10 % of
the seconds (the harness's own health rule). Steps grow until one fails; each mode reports its largest step
that held. When the counterpart's cores are busier than 90 % in a failing step, the failure is the
counterpart's (this machine has too few cores to load the measured one further), and the figure is marked
as a lower bound. CPU is the media host's process (all threads; 100 % = one core).

Run: .venv/bin/python benchmarks/participants_per_core.py [--seconds S] [--mode MODE]... [--quick] [--steps N,N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.scenario.scenario import parse_scenario
from harness.systems.p2p import BrokerServer

VIDEO = {"width": 480, "height": 270, "fps": 30, "codec": "VP8", "bitrate_kbps": 400}
FPS_FLOOR = 29.0
MAX_LAG_MS, MAX_LAGGING_SHARE = 100.0, 0.10
COUNTERPART_BUSY_PCT = 90.0
PUBLISHERS_PER_ENCODER = 25
SOURCES = 5  # counterpart publishers feeding the receivers
VERBOSE = False

STEPS = {
    "publishers": (50, 100, 200, 300, 400, 450, 500),
    # Undecoded streams take the lean receive path (harness/rtc/lean_receiver.py) since it exists.
    "receivers": (100, 200, 300, 400, 500, 600, 700),
    "decoding": (5, 10, 15, 20, 25, 30, 40),
    "meeting": (6, 10, 12, 14, 16, 18, 20),
}
QUICK_STEPS = {"publishers": (10, 20), "receivers": (10, 20), "decoding": (5, 10), "meeting": (3, 4)}


class MediaHost:
    """One ``harness.host.media_host`` process pinned to ``cores``, spoken to over its JSON-lines pipe."""

    def __init__(self, name: str, cores: set[int]) -> None:
        self.name = name
        self.cores = cores
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.pid = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._ids = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self, scenario: dict[str, Any], system: dict[str, Any]) -> None:
        cores = self.cores
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "harness.host.media_host", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, limit=2**26, preexec_fn=lambda: os.sched_setaffinity(0, cores))
        self.pid = self._proc.pid
        self._reader = asyncio.ensure_future(self._read())
        await self.request("configure", 60, scenario=scenario, system=system, host=self.name,
                           host_addresses=["127.0.0.1"])

    async def request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        self._ids += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._ids] = future
        self._proc.stdin.write(json.dumps(dict(fields, op=op, id=self._ids)).encode() + b"\n")
        await self._proc.stdin.drain()
        reply = await asyncio.wait_for(future, timeout)
        if not reply.get("ok"):
            raise RuntimeError(f"{self.name}: {op} failed: {reply.get('error')}")
        return dict(reply.get("result") or {})

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            msg = json.loads(line)
            if msg.get("type") == "samples":
                for table, rows in msg["tables"].items():
                    self.rows[table].extend(rows)
            elif msg.get("type") == "reply":
                future = self._waiting.pop(msg.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(msg)

    async def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(Exception):
            await self.request("stop", 30)
        with contextlib.suppress(Exception):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 30)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        if self._reader is not None:
            self._reader.cancel()


@dataclass
class Step:
    """What one step carried and how it went."""

    mode: str
    n: int
    streams: int
    joined: int = 0
    cpu_pct: float = math.nan
    counterpart_cpu_pct: float = math.nan
    fps_min: float = math.nan
    fps_mean: float = math.nan
    streams_seen: int = 0
    lost: int = 0
    skipped: int = 0
    udp_drops: int = 0
    lag_share: float = 0.0
    lag_max_ms: float = 0.0
    packet_rate: float = math.nan
    """Packets a second per received stream (the cost of a stream follows it)."""
    reasons: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.reasons

    @property
    def counterpart_limited(self) -> bool:
        return not self.held and self.counterpart_cpu_pct > COUNTERPART_BUSY_PCT * self.counterpart_cores

    counterpart_cores: int = 1


def scenario(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return parse_scenario({"name": "per-core", "duration_s": 60, "join_timeout_s": 60, "media": {"video": VIDEO},
                           "groups": groups}).to_dict()


def snmp_rcvbuf_errors() -> int:
    """UDP receive-buffer errors of this network namespace (the kernel counts them per namespace)."""
    with open("/proc/net/snmp") as fh:
        udp = [line.split() for line in fh if line.startswith("Udp:")]
    return int(dict(zip(udp[0][1:], udp[1][1:], strict=True))["RcvbufErrors"])


async def join_all(host: MediaHost, group: str, names: Sequence[tuple[str, int]], batch: int = 8) -> int:
    ok = 0
    for i in range(0, len(names), batch):
        replies = await asyncio.gather(*(host.request("join", 120, participant=n, group=group, index=idx)
                                         for n, idx in names[i:i + batch]), return_exceptions=True)
        ok += sum(1 for r in replies if isinstance(r, dict) and r.get("ok"))
    return ok


def window_rows(rows: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    return [r for r in rows if start <= r["ts"] <= end]


def measure(step: Step, measured: MediaHost, counterpart: MediaHost | None, counterpart_pid: int | None,
            receivers: list[MediaHost], start: float, end: float, rcvbuf_delta: int) -> None:
    probes = window_rows(measured.rows["probes"], start, end)
    if probes:
        step.cpu_pct = statistics.mean(p["cpu_pct"] for p in probes)
        lags = [p["loop_lag_ms"] for p in probes if p.get("loop_lag_ms") is not None]
        step.lag_max_ms = max(lags, default=0.0)
        step.lag_share = sum(lag > MAX_LAG_MS for lag in lags) / len(lags) if lags else 0.0
        step.skipped = sum(int(p.get("frames_skipped") or 0) for p in probes)
        step.udp_drops = sum(int(p.get("udp_drops") or 0) for p in probes)
    if counterpart is not None:
        cp = window_rows(counterpart.rows["probes"], start, end)
        step.counterpart_cpu_pct = statistics.mean(p["cpu_pct"] for p in cp) if cp else math.nan
    per_stream: dict[tuple[str, str], list[float]] = defaultdict(list)
    packets = seconds = 0
    for host in receivers:
        for row in window_rows(host.rows["streams"], start, end):
            if row["direction"] == "in" and row["kind"] == "video":
                step.lost += int(row["packets_lost"])
                packets, seconds = packets + int(row["packets"]), seconds + 1
                if row.get("fps") is not None:
                    per_stream[(row["participant"], row["peer"])].append(row["fps"])
    step.packet_rate = packets / seconds if seconds else math.nan
    rates = [statistics.mean(v) for v in per_stream.values()]
    step.streams_seen = len(rates)
    if rates:
        step.fps_min, step.fps_mean = min(rates), statistics.mean(rates)
    if step.joined < step.n:
        step.reasons.append(f"{step.n - step.joined} joins failed")
    if step.streams_seen < step.streams:
        step.reasons.append(f"{step.streams - step.streams_seen} streams missing")
    if rates and step.fps_min < FPS_FLOOR:
        step.reasons.append(f"a stream at {step.fps_min:.1f} fps")
    if step.lost:
        step.reasons.append(f"{step.lost} packets lost")
    if step.skipped:
        step.reasons.append(f"{step.skipped} source frames skipped")
    if step.udp_drops or rcvbuf_delta:
        step.reasons.append(f"{max(step.udp_drops, rcvbuf_delta)} datagrams dropped in receive buffers")
    if step.lag_share > MAX_LAGGING_SHARE:
        step.reasons.append(f"loop lag > {MAX_LAG_MS:g} ms in {step.lag_share:.0%} of seconds")


async def run_step(mode: str, n: int, seconds: float, measured_core: int, others: set[int],
                   broker_url: str) -> Step:
    p2p = {"name": "p2p", "url": broker_url}
    measured = MediaHost("measured", {measured_core})
    counterpart: MediaHost | None = MediaHost("counterpart", others)
    sfu: subprocess.Popen[str] | None = None
    room = f"{mode}-{n}-{time.monotonic_ns()}"
    try:
        if mode == "publishers":
            step = Step(mode, n, streams=n)
            groups = [{"name": "pub", "count": n, "publish": ["video"], "subscribe": False,
                       "publishers_per_encoder": PUBLISHERS_PER_ENCODER},
                      {"name": "sink", "count": 1, "publish": [], "probe_fraction": 0.0}]
            sc = dict(scenario(groups), room=room)
            assert counterpart is not None
            await asyncio.gather(measured.start(sc, p2p), counterpart.start(sc, p2p))
            await join_all(counterpart, "sink", [("sink-0", 0)])
            step.joined = await join_all(measured, "pub", [(f"pub-{i}", 1 + i) for i in range(n)])
            receivers = [counterpart]
        elif mode in ("receivers", "decoding"):
            receivers_n = max(1, n // SOURCES)
            step = Step(mode, receivers_n, streams=receivers_n * SOURCES)
            groups = [{"name": "src", "count": SOURCES, "publish": ["video"], "subscribe": False,
                       "publishers_per_encoder": SOURCES},
                      {"name": "rx", "count": receivers_n, "publish": [],
                       "probe_fraction": 1.0 if mode == "decoding" else 0.0}]
            sc = dict(scenario(groups), room=room)
            assert counterpart is not None
            await asyncio.gather(measured.start(sc, p2p), counterpart.start(sc, p2p))
            await join_all(counterpart, "src", [(f"src-{i}", i) for i in range(SOURCES)])
            step.joined = await join_all(measured, "rx", [(f"rx-{i}", 100 + i) for i in range(receivers_n)])
            receivers = [measured]
        else:  # meeting, through the reference SFU on the counterpart cores
            step = Step(mode, n, streams=n * (n - 1))
            counterpart = None
            sfu = subprocess.Popen([sys.executable, "-m", "harness.reference.server", "--port", "0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                   preexec_fn=lambda: os.sched_setaffinity(0, others))
            assert sfu.stdout is not None
            url = sfu.stdout.readline().split("=", 1)[1].strip()
            groups = [{"name": "m", "count": n, "publish": ["video"], "probe_fraction": 0.1}]
            sc = dict(scenario(groups), room=room)
            await measured.start(sc, {"name": "whip", "url": url + "/"})
            step.joined = await join_all(measured, "m", [(f"m-{i}", i) for i in range(n)], batch=4)
            receivers = [measured]
        step.counterpart_cores = len(others)
        await asyncio.sleep(4.0)  # every connection up, first key frames through, the WHEP room poll done
        before = snmp_rcvbuf_errors()
        start = time.time()
        sfu_proc = None
        if sfu is not None:
            import psutil

            sfu_proc = psutil.Process(sfu.pid)
            sfu_proc.cpu_percent(None)
        profiler = None
        if os.environ.get("PROFILE_DIR"):  # py-spy on the measured host, for finding what to optimise
            profiler = await asyncio.create_subprocess_exec(
                os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-p", str(measured.pid), "-d",
                str(int(seconds)), "-r", "100", "--nonblocking", "-f", "raw", "-o",
                os.path.join(os.environ["PROFILE_DIR"], f"{mode}-{n}.txt"), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        await asyncio.sleep(seconds)
        end = time.time()
        if profiler is not None:
            await profiler.wait()
        if sfu_proc is not None:
            step.counterpart_cpu_pct = sfu_proc.cpu_percent(None)
        await asyncio.sleep(1.5)  # the last second's rows arrive
        measure(step, measured, counterpart, None, receivers, start + 1.0, end, snmp_rcvbuf_errors() - before)
        if VERBOSE:
            for host in (measured, counterpart):
                for p in host.rows["probes"] if host is not None else []:
                    mark = "*" if start + 1.0 <= p["ts"] <= end else " "
                    print(f"    {host.name:>11} {mark} t={p['ts'] - start:6.1f} cpu {p['cpu_pct']:5.0f} lag "
                          f"{p['loop_lag_ms']:6.0f} skipped {p.get('frames_skipped')} drops {p.get('udp_drops')}",
                          flush=True)
            for host in receivers:
                rows = window_rows(host.rows["streams"], start + 1.0, end)
                print(f"    {host.name}: {len(rows)} streams rows in the window, "
                      f"{sum(1 for r in host.rows['streams'])} in all", flush=True)
        return step
    finally:
        await asyncio.gather(measured.stop(), *(h.stop() for h in (counterpart,) if h is not None))
        if sfu is not None:
            sfu.terminate()
            sfu.wait(timeout=10)


def print_step(step: Step) -> None:
    verdict = "holds" if step.held else ("counterpart-limited" if step.counterpart_limited else "fails")
    per_core = step.streams / (step.cpu_pct / 100) if step.cpu_pct > 0 else math.nan
    why = ": " + "; ".join(step.reasons) if step.reasons else ""
    print(f"{step.mode:>10} {step.n:>5} {step.streams:>7} {step.cpu_pct:6.0f} {step.counterpart_cpu_pct:6.0f} "
          f"{step.fps_min:6.1f} {step.fps_mean:6.1f} {step.lost:6} {step.skipped:5} {step.udp_drops:5} "
          f"{step.lag_max_ms:6.0f} {step.packet_rate:5.0f} {per_core:8.0f}  {verdict}{why}",
          flush=True)


async def run_mode(mode: str, steps: Sequence[int], seconds: float, measured_core: int, others: set[int],
                   broker_url: str) -> tuple[Step | None, Step | None]:
    best: Step | None = None
    for n in steps:
        step = await run_step(mode, n, seconds, measured_core, others, broker_url)
        print_step(step)
        if not step.held:
            return best, step
        best = step
    return best, None


UNIT = {"publishers": "publishers", "receivers": "received streams (not decoded)",
        "decoding": "received streams (decoded)", "meeting": "participants"}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window per step (default 10)")
    parser.add_argument("--mode", action="append", choices=list(STEPS), help="modes to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="two small steps per mode (a smoke test)")
    parser.add_argument("--steps", metavar="N,N,...", help="the steps to try instead of the mode's own (e.g. 400,500)")
    parser.add_argument("--core", type=int, default=0, help="the measured core (default 0)")
    parser.add_argument("--verbose", action="store_true", help="print the measured host's probes per second")
    parser.add_argument("--video", default="480x270@400", metavar="WxH@KBPS",
                        help="the publishers' camera: size and bitrate (default 480x270@400; 30 fps VP8)")
    args = parser.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    try:
        size, kbps = args.video.split("@")
        width, height = (int(x) for x in size.split("x"))
        VIDEO.update(width=width, height=height, bitrate_kbps=int(kbps))
    except ValueError:
        raise SystemExit(f"--video must look like 480x270@400, got {args.video!r}") from None
    # Peers that leave at the end of a step make asyncio warn about writes to closed sockets, a line each.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    cores = os.sched_getaffinity(0)
    if len(cores) < 2 or args.core not in cores:
        raise SystemExit("needs at least two cores, one of them --core")
    others = cores - {args.core}
    os.sched_setaffinity(0, others)  # this script and the broker stay off the measured core
    broker = BrokerServer()
    broker.start()
    load = os.getloadavg()
    print(f"participants per core: measured media host on core {args.core}, counterpart on cores "
          f"{sorted(others)}; {VIDEO['width']}x{VIDEO['height']} VP8 30 fps {VIDEO['bitrate_kbps']} kbit/s video; "
          f"{args.seconds:g} s per step; load average before: {load[0]:.2f}")
    print(f"{'mode':>10} {'n':>5} {'streams':>7} {'CPU%':>6} {'cpCPU%':>6} {'fpsmin':>6} {'fps':>6} {'lost':>6} "
          f"{'skip':>5} {'drops':>5} {'lagmax':>6} {'pkt/s':>5} {'str/core':>8}  verdict")
    results = {}
    try:
        for mode in args.mode or list(STEPS):
            steps = QUICK_STEPS[mode] if args.quick else STEPS[mode]
            if args.steps:
                steps = tuple(int(x) for x in args.steps.split(","))
            results[mode] = asyncio.run(run_mode(mode, steps, args.seconds, args.core, others, broker.url))
    finally:
        broker.stop()
    print("\nper core (largest step that held):")
    for mode, (best, failed) in results.items():
        if best is None:
            print(f"  {mode:>10}: no step held ({'; '.join(failed.reasons) if failed else ''})")
            continue
        figure = best.n if mode in ("publishers", "meeting") else best.streams
        bound = ""
        if failed is None:
            bound = " (every step held: at least this)"
        elif failed.counterpart_limited:
            bound = " (the next step was limited by the counterpart's cores: at least this)"
        extra = f", {best.streams} streams received" if mode == "meeting" else ""
        print(f"  {mode:>10}: {figure} {UNIT[mode]}{extra} at {best.cpu_pct:.0f} % of the core{bound}")


if __name__ == "__main__":
    main()
