"""What forwarding costs the reference SFU: streams per core at 30 fps, and latency added over p2p.

1. Forwarding cost. The SFU runs as its own process (as in a run) and is measured by pid. Publishers here
   send stamped 480x270 VP8 at 30 fps (400 kbit/s, one shared encoder each) over WHIP; subscribers take
   every publisher over WHEP but do not decode (their receivers are tapped like the SFU's own, and only count
   frames), so this process stays light and the SFU is what is loaded. For growing numbers of forwarded
   streams it prints the SFU's CPU, streams per core, the frame rate every subscriber got and RTP loss.
2. Added latency. One publisher and one decoding subscriber through the SFU, against the same pair
   connected directly (p2p): glass-to-glass p50 and p95 of both, and the difference.

Run: .venv/bin/python benchmarks/sfu_forwarding.py [SECONDS_PER_STEP]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp
import psutil
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.stats import RTCInboundRtpStreamStats

from harness.media.encoder import SharedVideoEncoder
from harness.media.video import VideoSource, read_frame
from harness.reference.relay import EncodedRelay
from harness.reference.server import READY_PREFIX
from harness.rtc import jitter, netio
from harness.rtc.ice import pin_host_addresses

WIDTH, HEIGHT, FPS, KBPS = 480, 270, 30, 400
STEPS = ((1, 4), (2, 4), (4, 4), (4, 8))  # (publishers, subscribers): forwarded streams = product


async def post(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(url, data=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}) as r:
        assert r.status == 201, await r.text()
        answer = await r.text()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def publisher(http: aiohttp.ClientSession, base: str, room: str, name: str,
                    index: int) -> tuple[RTCPeerConnection, VideoSource, SharedVideoEncoder]:
    source = VideoSource(index, width=WIDTH, height=HEIGHT, fps=FPS)
    encoder = SharedVideoEncoder(source, bitrate_bps=KBPS * 1000)
    pc = RTCPeerConnection()
    pc.addTransceiver(encoder.track(), direction="sendonly")
    await post(http, f"{base}/whip/{room}/{name}", pc)
    return pc, source, encoder


async def counting_subscriber(http: aiohttp.ClientSession, base: str, room: str,
                              name: str) -> tuple[RTCPeerConnection, list[EncodedRelay]]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    taps: list[EncodedRelay] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        taps.append(EncodedRelay.tap(receiver, track.kind))  # counts frames, decodes nothing

    await post(http, f"{base}/whep/{room}/{name}", pc)
    return pc, taps


async def inbound_loss(pcs: list[RTCPeerConnection]) -> tuple[int, int]:
    received = lost = 0
    for pc in pcs:
        for s in (await pc.getStats()).values():
            if isinstance(s, RTCInboundRtpStreamStats):
                received += s.packetsReceived
                lost += max(s.packetsLost, 0)
    return received, lost


async def forwarding_step(base: str, sfu: psutil.Process, publishers: int, subscribers: int,
                          seconds: float) -> dict[str, float]:
    room = f"step-{publishers}x{subscribers}"
    async with aiohttp.ClientSession() as http:
        pubs = [await publisher(http, base, room, f"p{i}", i) for i in range(publishers)]
        subs = [await counting_subscriber(http, base, room, f"p{i}") for i in range(publishers)
                for _ in range(subscribers)]
        await asyncio.sleep(2.0)  # connections up, first key frames through
        taps = [tap for _, ts in subs for tap in ts]
        before = [t.forwarded for t in taps]
        me = psutil.Process()
        sfu.cpu_percent(None)
        me.cpu_percent(None)
        start = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - start
        sfu_cpu = sfu.cpu_percent(None)
        gen_cpu = me.cpu_percent(None)
        fps = [(t.forwarded - b) / elapsed for t, b in zip(taps, before, strict=True)]
        received, lost = await inbound_loss([pc for pc, _ in subs])
        for pc, _ in subs:
            await pc.close()
        for pc, source, encoder in pubs:
            await encoder.stop()
            await source.stop()
            await pc.close()
    streams = publishers * subscribers
    return {"streams": streams, "sfu_cpu": sfu_cpu, "gen_cpu": gen_cpu, "fps_min": min(fps),
            "fps_mean": statistics.mean(fps), "loss_pct": 100 * lost / max(received + lost, 1),
            "per_core": streams / (sfu_cpu / 100) if sfu_cpu > 0 else float("inf")}


async def decoding_latency(pc_in: RTCPeerConnection, seconds: float) -> list[float]:
    latencies: list[float] = []
    done = asyncio.Event()

    @pc_in.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def read() -> None:
            while not done.is_set():
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                stamp = read_frame(frame)  # type: ignore[arg-type]
                if stamp is not None:
                    now = time.time()
                    latencies.append((now - stamp.capture_time(now)) * 1000)

        asyncio.ensure_future(read())

    return latencies


async def latency_via_sfu(base: str, seconds: float) -> list[float]:
    async with aiohttp.ClientSession() as http:
        pc, source, encoder = await publisher(http, base, "latency", "talker", 99)
        sub = RTCPeerConnection()
        sub.addTransceiver("video", direction="recvonly")
        latencies = await decoding_latency(sub, seconds)
        await post(http, f"{base}/whep/latency/talker", sub)
        await asyncio.sleep(1.0)
        latencies.clear()
        await asyncio.sleep(seconds)
        result = list(latencies)
        for p in (sub, pc):
            await p.close()
        await encoder.stop()
        await source.stop()
    return result


async def latency_direct(seconds: float) -> list[float]:
    source = VideoSource(98, width=WIDTH, height=HEIGHT, fps=FPS)
    encoder = SharedVideoEncoder(source, bitrate_bps=KBPS * 1000)
    out, sub = RTCPeerConnection(), RTCPeerConnection()
    out.addTransceiver(encoder.track(), direction="sendonly")
    latencies = await decoding_latency(sub, seconds)
    await out.setLocalDescription(await out.createOffer())
    await sub.setRemoteDescription(out.localDescription)
    await sub.setLocalDescription(await sub.createAnswer())
    await out.setRemoteDescription(sub.localDescription)
    await asyncio.sleep(1.0)
    latencies.clear()
    await asyncio.sleep(seconds)
    result = list(latencies)
    for p in (out, sub):
        await p.close()
    await encoder.stop()
    await source.stop()
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    pin_host_addresses(["127.0.0.1"])
    netio.install()
    jitter.install()
    server = subprocess.Popen([sys.executable, "-m", "harness.reference.server", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        base = line[len(READY_PREFIX):].strip()
        sfu = psutil.Process(server.pid)
        print(f"reference SFU forwarding {WIDTH}x{HEIGHT} VP8 at {FPS} fps, {KBPS} kbit/s a stream, "
              f"{seconds:g} s per step (SFU CPU: 100 % = one core)")
        print(f"{'streams':>8} {'SFU CPU %':>10} {'streams/core':>13} {'fps min':>8} {'fps mean':>9} "
              f"{'loss %':>7} {'generator CPU %':>16}")
        rows: list[dict[str, Any]] = []
        for publishers, subscribers in STEPS:
            r = asyncio.run(forwarding_step(base, sfu, publishers, subscribers, seconds))
            rows.append(r)
            print(f"{r['streams']:8.0f} {r['sfu_cpu']:10.1f} {r['per_core']:13.0f} {r['fps_min']:8.1f} "
                  f"{r['fps_mean']:9.1f} {r['loss_pct']:7.2f} {r['gen_cpu']:16.1f}")
        healthy = [r for r in rows if r["fps_min"] >= FPS - 1.5 and r["loss_pct"] == 0]
        if healthy:
            best = max(healthy, key=lambda r: r["streams"])
            print(f"-> at {best['streams']:.0f} streams (the largest step at {FPS} fps with no loss) the SFU "
                  f"forwards {best['per_core']:.0f} streams per core")
        via = asyncio.run(latency_via_sfu(base, seconds))
        direct = asyncio.run(latency_direct(seconds))
        print(f"\nglass-to-glass, 1 publisher -> 1 decoding subscriber, {len(via)} and {len(direct)} frames:")
        print(f"  direct (p2p): p50 {pct(direct, .5):6.1f} ms   p95 {pct(direct, .95):6.1f} ms")
        print(f"  via the SFU:  p50 {pct(via, .5):6.1f} ms   p95 {pct(via, .95):6.1f} ms")
        print(f"  added:        p50 {pct(via, .5) - pct(direct, .5):6.1f} ms   "
              f"p95 {pct(via, .95) - pct(direct, .95):6.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
