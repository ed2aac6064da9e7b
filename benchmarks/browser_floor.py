"""The browser's own floor: glass-to-glass latency of Chromium sending to itself, no server, no network.

One page, two RTCPeerConnections connected inside it; the sender publishes confbench's synthetic camera and
microphone (the same injected instrument as browser participants: canvas + stamp, WebAudio pulses), the
receiver reads stamps with requestVideoFrameCallback and pulses with an AudioWorklet. What remains is
Chromium's capture, encode, jitter buffer, decode and frame delivery: the part of any browser-measured
latency that is the instrument's, as benchmarks/floor.py measures it for native participants.

Chromium gathers ICE candidates only on non-loopback interfaces, so the browser runs in a network namespace
of its own whose only interfaces are the two ends of a veth pair on 198.19.255.0/30 (benchmarking block):
the two connections talk to each other there and nothing can leave it. Needs root (for the namespace) and Chromium.

For comparison it also measures the native floor at the same sizes (benchmarks/floor.py's 2-party p2p call
on loopback, marker-bit completion), and prints audio latency for both (the native figure includes Opus's
6.5 ms look-ahead, as every audio figure does).

Run: .venv/bin/python benchmarks/browser_floor.py [SECONDS] [FPS]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.browser import chromium, inject
from harness.browser.stats import PageRows
from harness.scenario.scenario import VideoSettings

NAMESPACE = f"cbfloor{os.getpid()}"
ADDRESSES = ("198.19.255.1/30", "198.19.255.2/30")

LOOPBACK = """async () => {
  const media = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  for (const t of media.getTracks()) a.addTrack(t, media);
  await a.setLocalDescription(); await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(); await a.setRemoteDescription(b.localDescription);
}"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class _Sink:
    def __init__(self) -> None:
        self.frames: list[float] = []
        self.audio: list[float] = []
        self.fps: list[float] = []

    def emit(self, table: str, row: dict[str, Any]) -> None:
        if table == "frames":
            self.frames.append(row["latency_ms"])
        elif table == "audio":
            self.audio.append(row["latency_ms"])
        elif table == "streams" and row["direction"] == "in" and row["kind"] == "video" and row.get("fps"):
            self.fps.append(row["fps"])


async def _measure(wrapper: str, video: VideoSettings, seconds: float) -> _Sink:
    from playwright.async_api import async_playwright

    sink = _Sink()
    rows = PageRows("receiver", sink.emit, lambda sid: "sender")
    profile = chromium.new_profile("floor")
    try:
        async with async_playwright() as pw:
            ctx = await chromium.launch(pw, wrapper, profile, timeout_s=60)
            try:
                await ctx.add_init_script(script=inject.script(inject.PageMedia(video_stream_id=2, video=video)))
                page = ctx.pages[0]
                # getUserMedia needs a secure context; http://localhost is one. Playwright answers the request
                # itself, so no server (and no network) is involved.
                await page.route("http://localhost/**", lambda route: route.fulfill(
                    body="<!DOCTYPE html><title>floor</title><body></body>", content_type="text/html"))
                await page.goto("http://localhost/floor")
                await page.evaluate(LOOPBACK)
                await asyncio.sleep(2.0)  # encoder ramp-up and first key frame
                await page.evaluate("__confbench.collect()")
                for _ in range(int(seconds)):
                    await asyncio.sleep(1.0)
                    rows.take(await page.evaluate("__confbench.collect()"))
            finally:
                await ctx.close()
    finally:
        chromium.remove_profile(profile)
    return sink


def _native(video: VideoSettings, seconds: float) -> tuple[list[float], list[float], list[float]]:
    """benchmarks/floor.py's measurement (2 native participants, p2p, loopback) at this size, with audio."""
    from harness.host.participant import Participant, ParticipantSpec
    from harness.rtc.ice import pin_host_addresses
    from harness.systems.p2p import P2PSystem

    sink = _Sink()

    async def call() -> None:
        system = P2PSystem()
        people = [Participant(ParticipantSpec(name=f"p{i}", group="g", index=i, room="floor", video=video),
                              system, sink) for i in range(2)]
        try:
            for p in people:
                await p.join()
            await asyncio.sleep(2.0)
            sink.frames.clear()
            sink.audio.clear()
            sink.fps.clear()
            await asyncio.sleep(seconds)
        finally:
            await asyncio.gather(*(p.leave() for p in people))

    pin_host_addresses(["127.0.0.1"])
    asyncio.run(call())
    return sink.frames, sink.audio, sink.fps


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    fps = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    executable = chromium.find_chromium()
    _ip("netns", "add", NAMESPACE)
    try:
        _ip("-n", NAMESPACE, "link", "set", "lo", "up")
        _ip("-n", NAMESPACE, "link", "add", "cbfloor0", "type", "veth", "peer", "name", "cbfloor1")
        for index, address in enumerate(ADDRESSES):
            _ip("-n", NAMESPACE, "addr", "add", address, "dev", f"cbfloor{index}")
            _ip("-n", NAMESPACE, "link", "set", f"cbfloor{index}", "up")
        with tempfile.TemporaryDirectory() as tmp:
            wrapper = Path(tmp) / "chromium"
            wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {NAMESPACE} {executable} "$@"\n')
            wrapper.chmod(0o755)
            print(f"floors: Chromium to itself in one page, and 2 native participants p2p; VP8 at {fps} fps, "
                  f"{seconds:g} s per size")
            print(f"{'engine':>8} {'size':>9} {'video p50':>10} {'p95':>8} {'audio p50':>10} {'p95':>8} {'fps':>6} "
                  f"{'frames':>7}")
            for width, height, kbps in ((160, 90, 150), (320, 180, 300), (640, 360, 500)):
                video = VideoSettings(width=width, height=height, fps=fps, bitrate_kbps=kbps)
                sink = asyncio.run(_measure(str(wrapper), video, seconds))
                native = _native(video, seconds)
                for engine, (frames, audio, fps_values) in (("browser", (sink.frames, sink.audio, sink.fps)),
                                                             ("native", native)):
                    rate = statistics.mean(fps_values) if fps_values else float("nan")
                    print(f"{engine:>8} {width}x{height:<5} {_pct(frames, .5):10.1f} {_pct(frames, .95):8.1f} "
                          f"{_pct(audio, .5):10.1f} {_pct(audio, .95):8.1f} {rate:6.1f} {len(frames):7d}")
    finally:
        subprocess.run(["ip", "netns", "delete", NAMESPACE], capture_output=True, timeout=10)


if __name__ == "__main__":
    main()
