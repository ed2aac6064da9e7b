"""What a native sender adds to its packets' timing on a busy event loop, as it is and as it was.

A browser receiving from a native sender adapts its playout to the jitter it sees (Chromium's video jitter
buffer, NetEq for audio) and delays a sender's video to play it in sync with its audio: whatever jitter the
sender adds shows up in native→browser latency. This runs one synthetic camera (160x90, 10 fps, VP8 at
150 kbit/s, the mixed room's) and one microphone through the shared encoders into sinks that note each
packet's departure, on an event loop that a busy task blocks for a random 0..``--block-ms`` every
0..``--every-ms`` (what other participants' work does to a media host's loop), and prints RFC 3550 jitter
of departures against RTP time (``send_jitter_ms``, ``harness/media/departures.py``), median over seconds:

- video with RTP time = the capture instant (the source as it is) against RTP time = the frame's due time
  (as it was before 2026-12-06; recomputed from the same frames: the due time is the capture time rounded
  down to the frame period, since a frame is never made a whole period late);
- audio made ahead and sent at its time by the sending clock, a process of its own (as it is since
  2026-12-07, ``harness/media/send_clock.py``; its departures are those the child reports, on a real
  loopback socket), against audio encoded and sent in the source's own step (as it was from 2026-12-06) and a
  third microphone encoded by a task fed through the source's queue (as it was before: one event-loop pass
  between microphone and wire).

Both variants of each run side by side on the same loop, so the ratios hold whatever the machine's load.

Run: .venv/bin/python benchmarks/sender_timing.py [--seconds 20] [--block-ms 60] [--every-ms 150]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import time

from harness.media.audio import AudioSource
from harness.media.departures import Departures
from harness.media.encoder import SharedAudioEncoder, SharedVideoEncoder
from harness.media.packetize import PacketizedFrame
from harness.media.send_clock import SEND_LEAD_S, send_clock
from harness.media.video import VideoSource

FPS = 10
TICKS_PER_FRAME = 90000 // FPS


async def _busy(block_ms: float, every_ms: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(random.uniform(0, every_ms) / 1000)
        time.sleep(random.uniform(0, block_ms) / 1000)  # the loop does nothing else meanwhile


def _sink(*departures: tuple[Departures, object]) -> object:
    def deliver(frame: PacketizedFrame) -> None:
        now = time.monotonic()
        for log, stamp in departures:
            ts = stamp(frame.timestamp)  # type: ignore[operator]
            for _ in frame.payloads:
                log.note(now, ts)
    return deliver


async def _queued_audio(source: AudioSource, encoder: SharedAudioEncoder, log: Departures) -> None:
    """The shared Opus encoder as it was: a task awaiting the source's queue, then encoding and sending."""
    track = source.track()
    while True:
        frame = await track.recv()
        packet = encoder._encode(frame, False)
        if packet is not None:
            _, timestamp = encoder.packetizer._packer.pack(packet)
            log.note(time.monotonic(), int(timestamp))


async def main(seconds: float, block_ms: float, every_ms: float) -> dict[str, list[float]]:
    video = SharedVideoEncoder(VideoSource(1, width=160, height=90, fps=FPS), "VP8", 150_000, pacing=False)
    captured, due = Departures(90000), Departures(90000)
    vtrack = video.track()
    # aiortc's VP8 timestamps may be one tick short of the pts (PyAV rebases through microseconds).
    vtrack.deliver = _sink((captured, lambda ts: ts), (due, lambda ts: (ts + 1) // TICKS_PER_FRAME * TICKS_PER_FRAME))
    clocked, inline, queued = Departures(48000), Departures(48000), Departures(48000)
    clock = send_clock()
    if clock is None:
        raise SystemExit("the sending clock did not start (see the warning above)")
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    wire, _ = await asyncio.get_running_loop().create_datagram_endpoint(asyncio.DatagramProtocol,
                                                                       local_addr=("127.0.0.1", 0))
    ahead = SharedAudioEncoder(AudioSource(5))
    ahead_track = ahead.track()

    def send_ahead(frame: PacketizedFrame) -> None:
        for payload in frame.payloads:
            if frame.due is None or not clock.send_at(frame.due, wire, receiver.getsockname(), payload,
                                                      lambda t, ts=frame.timestamp: clocked.note(t, ts)):
                clocked.note(time.monotonic(), frame.timestamp)

    ahead_track.deliver = send_ahead
    step_source = AudioSource(2)
    audio = SharedAudioEncoder(step_source)
    atrack = audio.track()
    atrack.deliver = _sink((inline, lambda ts: ts))
    old_source, old_encoder = AudioSource(3), SharedAudioEncoder(AudioSource(4))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_busy(block_ms, every_ms, stop)),
             asyncio.create_task(_queued_audio(old_source, old_encoder, queued))]
    await video.start()
    await audio.start()
    await ahead.start()
    figures: dict[str, list[float]] = {"video, RTP time = capture": [], "video, RTP time = due time": [],
                                       "audio, by the sending clock": [],
                                       "audio, sent in the source's step": [], "audio, through a queue": []}
    logs = [captured, due, clocked, inline, queued]
    await asyncio.sleep(1.0)
    step_source.lead_s = 0.0  # as it was: handed over at its time, sent from the loop at once
    await asyncio.sleep(2 * SEND_LEAD_S)
    for log in logs:
        log.take()  # start measuring once everything runs
    for _ in range(int(seconds)):
        await asyncio.sleep(1.0)
        for name, log in zip(figures, logs, strict=True):
            value = log.take()["send_jitter_ms"]
            if value is not None:
                figures[name].append(value)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await video.stop()
    await audio.stop()
    await ahead.stop()
    await old_source.stop()
    wire.close()
    receiver.close()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--block-ms", type=float, default=60, help="longest block of the loop")
    parser.add_argument("--every-ms", type=float, default=150, help="longest wait between blocks")
    args = parser.parse_args()
    result = asyncio.run(main(args.seconds, args.block_ms, args.every_ms))
    print(f"send jitter (ms, median over {int(args.seconds)} s) on a loop blocked 0..{args.block_ms:g} ms "
          f"every 0..{args.every_ms:g} ms:")
    medians = {name: statistics.median(values) if values else float("nan") for name, values in result.items()}
    for name, value in medians.items():
        print(f"  {name:<36} {value:6.1f}")
    names = list(medians)
    print(f"video due-time / capture: {medians[names[1]] / medians[names[0]]:.2f}; "
          f"audio in the source's step / by the sending clock: {medians[names[3]] / medians[names[2]]:.2f}; "
          f"audio queued / in the source's step: {medians[names[4]] / medians[names[3]]:.2f}")
