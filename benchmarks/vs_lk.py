"""confbench side by side with LiveKit's own load tester (``lk load-test``), against one local LiveKit.

One invocation (root: the server runs in a namespace, as in a run): a local LiveKit is started once
(:mod:`harness.testbed.livekit`), then for each shape

1. fan-out: one video publisher and N subscribers,
2. meeting: P participants who all publish video and subscribe to each other,

the shape is driven first by ``lk load-test`` (LiveKit's CLI, built from its Go module like the server), then
by confbench (``confbench run --system livekit=URL``, N-1 subscribers undecoded and one decoding, as lk's do
not decode either). For each it prints the generator's CPU (the whole process tree, per subscribed video
stream), the server's CPU (sampled by pid every second), loss, and what each tool reports; then the ratio of
confbench's generator CPU per stream to lk's. lk prints bitrate and loss per track, no latency, freezes or
per-stream frame rate. The versions of the server and of both tools are printed.

If ``lk`` cannot be built here (a refused module), its column says why in one line and the ratio is not
computed: confbench's figures are still measured and printed.

Run: sudo .venv/bin/python benchmarks/vs_lk.py [--subscribers N] [--publishers P] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.errors import TestbedError
from harness.probes.environment import harness_facts
from harness.systems.livekit import API_KEY_ENV, API_SECRET_ENV
from harness.testbed.gobuild import ensure_built
from harness.testbed.livekit import LIVEKIT_CLI, LIVEKIT_SERVER, LocalLiveKit

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, FPS, KBPS = 480, 270, 30, 400


@dataclass
class Figures:
    """What one tool measured of one shape."""

    tool: str
    generator_cpu_pct: float | None = None
    server_cpu_pct: float | None = None
    streams: int = 0
    loss_pct: float | None = None
    reports: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def per_stream(self) -> float | None:
        """Generator CPU (% of a core) per subscribed video stream."""
        if self.generator_cpu_pct is None or not self.streams:
            return None
        return self.generator_cpu_pct / self.streams


class CpuSampler:
    """CPU of a process tree (% of one core), sampled every second in a thread; mean over a time window."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _total(self) -> float:
        try:
            root = psutil.Process(self._pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        last, at = self._total(), time.monotonic()
        while not self._stop.wait(1.0):
            now, total = time.monotonic(), self._total()
            self.samples.append((time.time(), 100.0 * (total - last) / max(now - at, 1e-6)))
            last, at = total, now

    def mean(self, start: float = 0.0, end: float = float("inf")) -> float | None:
        """Mean CPU % over the samples taken between ``start`` and ``end`` (UNIX times)."""
        window = [cpu for ts, cpu in self.samples if start <= ts <= end]
        return sum(window) / len(window) if window else None


def run_lk(lk: Path | None, reason: str | None, server: LocalLiveKit, room: str, publishers: int,
           subscribers: int, seconds: int, streams: int) -> Figures:
    """``lk load-test`` on the shape; its own CPU and the server's over its run."""
    figures = Figures("lk load-test", streams=streams)
    if lk is None:
        figures.error = reason
        return figures
    argv = [str(lk), "load-test", "--url", server.ws_url, "--api-key", server.api_key, "--api-secret",
            server.api_secret, "--room", room, "--video-publishers", str(publishers), "--subscribers",
            str(subscribers), "--duration", f"{seconds}s", "--video-resolution", "medium", "--no-simulcast"]
    with CpuSampler(server.pid) as server_cpu:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with CpuSampler(proc.pid) as own_cpu:
            started = time.time()
            out, _ = proc.communicate(timeout=seconds + 120)
    settle = started + 5  # joins and first key frames
    figures.generator_cpu_pct = own_cpu.mean(settle)
    figures.server_cpu_pct = server_cpu.mean(settle, started + seconds + 5)
    figures.reports = [line for line in out.splitlines() if line.strip()][-12:]
    if proc.returncode != 0:
        figures.error = f"lk exited with {proc.returncode}: {figures.reports[-1] if figures.reports else ''}"
    return figures


def run_confbench(server: LocalLiveKit, room: str, publishers: int, subscribers: int, seconds: int,
                  streams: int) -> Figures:
    """The same shape as a confbench run; its generator CPU from its own probes, the server's by pid."""
    figures = Figures("confbench", streams=streams)
    # In the meeting each sender still gets one designated decoding receiver (a tiny probe fraction keeps
    # the designation on; 0 would decode nothing): latency for every stream, the rest measured undecoded.
    groups = (f'[[groups]]\nname = "pub"\ncount = {publishers}\npublish = ["video"]\n'
              f"subscribe = {'true' if subscribers == 0 else 'false'}\n"
              f"probe_fraction = {0.0 if subscribers else 0.01}\n")
    if subscribers:
        # Every publisher keeps one decoding receiver (latency, frame loss); the rest are measured undecoded.
        groups += ('[[groups]]\nname = "probe"\ncount = 1\npublish = []\nprobe_fraction = 1.0\n'
                   f'[[groups]]\nname = "sub"\ncount = {subscribers - 1}\npublish = []\nprobe_fraction = 0.0\n')
    scenario = (f'name = "vs-lk-{room}"\nduration_s = {seconds}\nspawn_rate = 10\nroom = "{room}"\n'
                f"[media.video]\nwidth = {WIDTH}\nheight = {HEIGHT}\nfps = {FPS}\nbitrate_kbps = {KBPS}\n{groups}")
    env = dict(os.environ, **{API_KEY_ENV: server.api_key, API_SECRET_ENV: server.api_secret},
               CONFBENCH_FLOOR_CHECK="0", CONFBENCH_HOST_ADDRESS=server.host_address)
    with tempfile.TemporaryDirectory(prefix="vs-lk-") as tmp:
        path = Path(tmp) / "scenario.toml"
        path.write_text(scenario)
        with CpuSampler(server.pid) as server_cpu:
            done = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "--system",
                                   f"livekit={server.ws_url}", "--processes", "1", "--results", str(Path(tmp) / "r"),
                                   "--no-report"], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=seconds + 300)
        runs = [p for p in (Path(tmp) / "r").iterdir() if p.is_dir()] if (Path(tmp) / "r").exists() else []
        if not runs or not (runs[0] / "summary.json").exists():
            figures.error = (done.stderr.strip().splitlines() or ["no results"])[-1]
            return figures
        summary: dict[str, Any] = json.loads((runs[0] / "summary.json").read_text())
    window = summary.get("window") or {}
    figures.generator_cpu_pct = (summary.get("loadgen_cpu_pct") or {}).get("mean")
    figures.server_cpu_pct = server_cpu.mean(window.get("start", 0.0), window.get("end", float("inf")))
    figures.loss_pct = summary.get("packet_loss_pct")
    latency, fps = summary.get("video_latency_ms") or {}, summary.get("fps") or {}
    figures.reports = [
        f"status {summary.get('status')}, joined {summary.get('participants', {}).get('joined')}",
        f"video latency p50 {latency.get('p50')} / p95 {latency.get('p95')} ms, fps p50 {fps.get('p50')}",
        f"packet loss {summary.get('packet_loss_pct')} %, frame loss {summary.get('frame_loss_pct')} %, "
        f"freezes {summary.get('freezes_per_min')}/min, jitter p50 {(summary.get('jitter_ms') or {}).get('p50')} ms",
    ]
    return figures


def show(shape: str, results: list[Figures]) -> None:
    """Print one shape's table and the ratio."""
    print(f"\n== {shape}")
    for f in results:
        if f.error and f.generator_cpu_pct is None:
            print(f"  {f.tool:<14} unavailable: {f.error}")
            continue
        cpu = "-" if f.generator_cpu_pct is None else f"{f.generator_cpu_pct:.1f} %"
        per = "-" if f.per_stream is None else f"{f.per_stream:.2f} %"
        srv = "-" if f.server_cpu_pct is None else f"{f.server_cpu_pct:.1f} %"
        loss = "-" if f.loss_pct is None else f"{f.loss_pct:.2f} %"
        print(f"  {f.tool:<14} generator {cpu} of a core ({per} per subscribed stream, {f.streams} streams); "
              f"server {srv}; loss {loss}")
        for line in f.reports:
            print(f"  {'':<14}   {line}")
    ours, theirs = results[1].per_stream, results[0].per_stream
    if ours is not None and theirs:
        print(f"  ratio confbench/lk (generator CPU per subscribed stream): {ours / theirs:.2f}")
    else:
        print("  ratio confbench/lk: not computed (lk did not run)")


def main() -> int:
    """Start LiveKit, run both shapes with both tools, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--publishers", type=int, default=4, help="participants of the meeting shape")
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    try:
        lk: Path | None = ensure_built(LIVEKIT_CLI)
        reason = None
    except TestbedError as exc:
        lk, reason = None, str(exc)
    print(f"LiveKit server {LIVEKIT_SERVER.version}; lk {LIVEKIT_CLI.version} "
          f"({'built' if lk else 'unavailable'}); confbench {harness_facts().get('version')}")
    try:
        server = LocalLiveKit.start()
    except TestbedError as exc:
        print(f"cannot start LiveKit: {exc}")
        return 1
    try:
        n, p = args.subscribers, args.publishers
        for shape, pubs, subs, streams in ((f"fan-out: 1 publisher, {n} subscribers", 1, n, n),
                                           (f"meeting: {p} publishers who all subscribe", p, 0, p * (p - 1))):
            room = "fanout" if subs else "meeting"
            # lk's testers publish when among the first --video-publishers and subscribe when among the first
            # --subscribers: the meeting is P testers that do both.
            results = [run_lk(lk, reason, server, f"lk-{room}", pubs, subs or pubs, args.seconds, streams),
                       run_confbench(server, f"cb-{room}", pubs, subs, args.seconds, streams)]
            show(shape, results)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
