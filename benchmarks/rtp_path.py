"""CPU per RTP packet, aiortc as it comes vs with the harness's changes: the before/after of the send and receive paths.

Two processes, each pinned to a core: one sends N video streams (one shared 480x270 VP8 encoder, 400 kbit/s,
30 fps, fanned out to N peer connections), the other receives them without decoding (tapped receivers, as a
media host's non-probe streams). Each side's CPU time over the window is divided by the packets received:

- send, aiortc: every sender packetizes the encoded frame and builds each packet itself (``Encoder.pack``,
  ``RtpPacket.serialize``, four coroutine layers down to the socket);
- send, harness: frames packetized once and pushed to a lean loop (``harness/media/packetize.py``), NTP time
  from ``time.time()`` (``harness/rtc/ntpclock.py``), paced as browsers pace (``harness/media/pacer.py``; at
  this rate a delta frame fits in the pacer's 40 ms burst, so most packets leave at once);
- send, unpaced: the same without the pacer (a group's ``pacing = false``), and send, strict: the pacer with
  no burst at all (every packet after a frame's first goes through its timer): what pacing costs per packet,
  in the common case and at worst;
- receive, aiortc: with its per-packet bandwidth estimator and datetime clock;
- receive, harness: no REMB estimator (``harness/rtc/remb.py``), NTP time from ``time.time()``;
- receive, lean: the harness's lean path for undecoded streams (``harness/rtc/lean_receiver.py``): SRTP taken
  from the ICE connection, counters and frames kept without packet objects;
- each of the harness's two receive paths once more with uvloop as both processes' event loop (``+uvloop``);
- floor: the lean path's sockets, event loop and hook, every packet dropped before libsrtp: what receiving a
  datagram costs whatever is done with it (the part no receive path can save);
- lean and floor once more with reads delayed (``/5ms``): the receiver's event loop polls its sockets at most
  every :data:`DELAYED_READS_MS`, so one wake-up reads the datagrams of several streams. What fewer wake-ups
  per packet would save; not adopted (a read that late needs the kernel's arrival time to keep jitter and
  latency true, and it delays the decoded probes sharing the loop).

The verdict line compares, in this one run, the lean path's receive cost per packet with aiortc's tapped path
(as media hosts used it before the lean path), best of two measurements each.

CPU time, not wall time, so another process on the same core inflates the figures less (it still does).

Run: .venv/bin/python benchmarks/rtp_path.py [STREAMS] [SECONDS] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import Connection
from typing import Any


async def _arecv(conn: Connection) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


async def _connected(pcs: list[Any]) -> None:
    deadline = time.monotonic() + 60
    while any(pc.connectionState != "connected" for pc in pcs):
        if time.monotonic() > deadline:
            raise TimeoutError(f"peer connections did not connect within 60 s: {[pc.connectionState for pc in pcs]}")
        await asyncio.sleep(0.2)


def _run(main: Any, use_uvloop: bool) -> None:
    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def sender(conn: Connection, n: int, core: int, harness: bool, use_uvloop: bool = False,
           pacing: str = "paced") -> None:
    os.sched_setaffinity(0, {core})

    async def main() -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from harness.media.encoder import SharedVideoEncoder
        from harness.media.video import VideoSource
        from harness.rtc import netio, ntpclock
        from harness.rtc.ice import pin_host_addresses

        pin_host_addresses(["127.0.0.1"])
        netio.install()
        if harness:
            ntpclock.install()
        from harness.media import pacer

        if pacing == "strict":
            pacer.BURST_S = 0.0
        source = VideoSource(1, width=480, height=270, fps=30)
        encoder = SharedVideoEncoder(source, bitrate_bps=400_000, pacing=pacing != "unpaced")
        if not harness:
            # aiortc's own path: the fan-out carries encoded packets and every sender packetizes them.
            encoder.packetizer.pack = lambda packet, keyframe=False, audio_level=None: packet  # type: ignore[method-assign]
        pcs, offers = [], []
        for _ in range(n):
            track = encoder.track()
            track.packetized = harness  # type: ignore[attr-defined]
            pc = RTCPeerConnection()
            pc.addTransceiver(track, direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            pcs.append(pc)
            offers.append(pc.localDescription.sdp)
        conn.send(offers)
        for pc, answer in zip(pcs, await _arecv(conn), strict=True):
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await _connected(pcs)
        conn.send("up")
        await _arecv(conn)
        start = time.process_time()
        await _arecv(conn)
        conn.send(time.process_time() - start)
        for pc in pcs:
            await pc.close()
        await encoder.stop()
        await source.stop()

    _run(main, use_uvloop)


DELAYED_READS_MS = 5.0
"""The interval of the ``/5ms`` rows: the receiver's loop polls its sockets at most this often."""


def _delay_reads(interval_s: float) -> None:
    """Make this process's selector loops poll at most every ``interval_s`` (a benchmark's bend, nothing else's):
    the wait left before a poll is slept, bounded by the loop's own timeout (its next timer)."""
    import selectors

    select = selectors.EpollSelector.select
    next_poll = [0.0]

    def delayed(self: Any, timeout: float | None = None) -> Any:
        wait = next_poll[0] - time.monotonic()
        if wait > 0 and timeout is not None:
            wait = min(wait, timeout)
            timeout -= wait
        if wait > 0:
            time.sleep(wait)
        ready = select(self, timeout)
        next_poll[0] = time.monotonic() + interval_s
        return ready

    selectors.EpollSelector.select = delayed  # type: ignore[method-assign]


def receiver(conn: Connection, core: int, harness: bool, lean: bool = False, use_uvloop: bool = False,
             floor: bool = False, read_every_ms: float = 0.0) -> None:
    os.sched_setaffinity(0, {core})
    if read_every_ms:
        _delay_reads(read_every_ms / 1000)
    logging.basicConfig(level=logging.WARNING, format="receiver %(name)s: %(message)s")  # why a connection failed

    async def main() -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from harness.media.tap import inbound_counts, tap
        from harness.rtc import jitter, lean_receiver, netio, ntpclock, remb
        from harness.rtc.ice import pin_host_addresses

        pin_host_addresses(["127.0.0.1"])
        netio.install()
        jitter.install()
        if harness:
            ntpclock.install()
            remb.install()
        pcs, answers, receivers = [], [], []
        for offer in await _arecv(conn):
            pc = RTCPeerConnection()

            def on_track(track: Any, pc: Any = pc) -> None:
                receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
                if lean:
                    receivers.append(lean_receiver.attach(receiver, lambda: None).receiver)
                else:
                    receivers.append(receiver)
                    tap(receiver, lambda c, f: None)

            pc.on("track", on_track)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            pcs.append(pc)
            answers.append(pc.localDescription.sdp)
        conn.send(answers)
        await _connected(pcs)

        arrived = [0]
        if floor:  # every lean packet stops before libsrtp, counted: what reading the sockets costs
            def unprotect(*args: Any) -> int:
                arrived[0] += 1
                return 1

            lean_receiver._unprotect = unprotect

        async def received() -> tuple[int, int]:
            if floor:
                return arrived[0], 0
            # Per media SSRC (getStats hides a media stream behind its retransmission stream: harness.media.tap).
            counts = [c for r in receivers for c in inbound_counts(r)]
            return sum(c.packets_received for c in counts), sum(c.packets_lost for c in counts)

        conn.send("up")
        await _arecv(conn)
        got0, lost0 = await received()
        profile = None
        if os.environ.get("PROFILE_DIR"):  # where the receive side's time goes (cProfile: slows it down)
            import cProfile

            profile = cProfile.Profile()
            profile.enable()
        start = time.process_time()
        await _arecv(conn)
        cpu = time.process_time() - start
        if profile is not None:
            profile.disable()
            profile.dump_stats(os.path.join(os.environ["PROFILE_DIR"], f"receive-{'lean' if lean else 'aiortc'}.prof"))
        got1, lost1 = await received()
        conn.send((cpu, got1 - got0, lost1 - lost0))
        for pc in pcs:
            await pc.close()

    _run(main, use_uvloop)


def _get(conn: Connection, timeout: float = 120.0) -> Any:
    """The next message from a child, or TimeoutError (a child that died must not hang the benchmark)."""
    if not conn.poll(timeout):
        raise TimeoutError(f"no answer from a measuring process within {timeout:g} s")
    return conn.recv()


def measure(n: int, seconds: float, harness: bool, lean: bool = False, use_uvloop: bool = False,
            floor: bool = False, pacing: str = "paced", read_every_ms: float = 0.0) -> tuple[float, float, int, int]:
    """(send µs/packet, receive µs/packet, packets, lost) for one configuration."""
    ctx = mp.get_context("spawn")
    s_parent, s_child = ctx.Pipe()
    r_parent, r_child = ctx.Pipe()
    cores = sorted(os.sched_getaffinity(0))
    ps = ctx.Process(target=sender, args=(s_child, n, cores[0], harness, use_uvloop, pacing))
    pr = ctx.Process(target=receiver, args=(r_child, cores[-1], harness, lean, use_uvloop, floor, read_every_ms))
    ps.start()
    pr.start()
    try:
        r_parent.send(_get(s_parent))
        s_parent.send(_get(r_parent))
        assert _get(s_parent) == "up" and _get(r_parent) == "up"
        time.sleep(3)  # first key frames, steady state
        for p in (s_parent, r_parent):
            p.send("start")
        time.sleep(seconds)
        for p in (s_parent, r_parent):
            p.send("stop")
        send_cpu = _get(s_parent)
        recv_cpu, packets, lost = _get(r_parent)
    finally:
        for proc in (ps, pr):
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    return 1e6 * send_cpu / max(packets, 1), 1e6 * recv_cpu / max(packets, 1), packets, lost


CONFIGURATIONS = (
    # label, harness bends, lean receive path, uvloop, floor, pacing of the sender, reads at most every (ms)
    ("aiortc", False, False, False, False, "unpaced", 0.0),
    ("harness", True, False, False, False, "paced", 0.0),
    ("unpaced", True, False, False, False, "unpaced", 0.0),
    ("strict", True, False, False, False, "strict", 0.0),
    ("lean", True, True, False, False, "paced", 0.0),
    ("harness+uvloop", True, False, True, False, "paced", 0.0),
    ("lean+uvloop", True, True, True, False, "paced", 0.0),
    ("floor", True, True, False, True, "paced", 0.0),
    ("lean/5ms", True, True, False, False, "paced", DELAYED_READS_MS),
    ("floor/5ms", True, True, False, True, "paced", DELAYED_READS_MS),
)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    print(f"{n} streams 480x270 VP8 30 fps 400 kbit/s, {seconds:g} s per measurement, sender and receiver pinned "
          f"to cores {sorted(os.sched_getaffinity(0))[0]} and {sorted(os.sched_getaffinity(0))[-1]}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'':>15} {'send us/pkt':>12} {'receive us/pkt':>15} {'packets':>8} {'lost':>5}")
    results: dict[str, list[tuple[float, float]]] = {}
    configurations = CONFIGURATIONS
    try:
        import uvloop  # noqa: F401  (not a dependency of confbench: measured here, not adopted)
    except ImportError:
        print("uvloop is not installed: its two configurations are left out (pip install uvloop)")
        configurations = tuple(c for c in CONFIGURATIONS if not c[3])
    for _ in range(rounds):  # interleaved, so that a noisy minute does not land on one configuration only
        for label, harness, lean, use_uvloop, floor, pacing, every in configurations:
            try:
                send, recv, packets, lost = measure(n, seconds, harness, lean, use_uvloop, floor, pacing, every)
            except TimeoutError as exc:  # on a crowded machine a DTLS handshake of the 2 x N may fail: once more
                print(f"{label:>15} {exc}; measuring again", flush=True)
                send, recv, packets, lost = measure(n, seconds, harness, lean, use_uvloop, floor, pacing, every)
            results.setdefault(label, []).append((send, recv))
            print(f"{label:>15} {send:12.1f} {recv:15.1f} {packets:8d} {lost:5d}", flush=True)
    best = {k: (min(s for s, _ in v), min(r for _, r in v)) for k, v in results.items()}
    print(f"\nbest of {rounds}: send {best['aiortc'][0]:.0f} -> {best['harness'][0]:.0f} us/packet "
          f"({1 - best['harness'][0] / best['aiortc'][0]:.0%} less), receive {best['aiortc'][1]:.0f} -> "
          f"{best['harness'][1]:.0f} us/packet ({1 - best['harness'][1] / best['aiortc'][1]:.0%} less)")
    print(f"pacing's cost per packet sent: paced / unpaced {best['harness'][0] / best['unpaced'][0]:.2f}, "
          f"strict (every packet through the timer) / unpaced {best['strict'][0] / best['unpaced'][0]:.2f}")
    for label in (k for k in ("lean", "harness+uvloop", "lean+uvloop") if k in best):
        print(f"receive {label}: {best[label][1]:.1f} us/packet = {best[label][1] / best['harness'][1]:.2f} x the "
              f"tapped aiortc path (harness), {best[label][1] / best['aiortc'][1]:.2f} x aiortc as it comes")
    print(f"floor (sockets, event loop, the hook; no SRTP, no counting): {best['floor'][1]:.1f} us/packet; above it: "
          f"lean {best['lean'][1] - best['floor'][1]:.1f}, harness {best['harness'][1] - best['floor'][1]:.1f}, "
          f"aiortc {best['aiortc'][1] - best['floor'][1]:.1f} us/packet")
    print(f"reads delayed to one poll per {DELAYED_READS_MS:g} ms (fewer wake-ups; not adopted): floor "
          f"{best['floor'][1]:.1f} -> {best['floor/5ms'][1]:.1f}, lean {best['lean'][1]:.1f} -> "
          f"{best['lean/5ms'][1]:.1f} us/packet")
    for name, label in (("aiortc as it comes", "aiortc"), ("aiortc's tapped path (media hosts before)", "harness")):
        ratio = best["lean"][1] / best[label][1]
        print(f"lean receive cost at most a third of {name}: {'yes' if ratio <= 1 / 3 else 'NO'} ({ratio:.2f})")


if __name__ == "__main__":
    main()
