"""What receiving a UDP datagram costs on this machine before any RTP work: the floor under every receive path.

One process, pinned to a core, sends plain 1,200-byte datagrams to N loopback sockets as N video streams would
(two datagrams per frame, 30 frames a second, streams spread over the frame interval); another, pinned to the
other core, reads them in one of three ways and reports its CPU time per datagram and its wake-ups:

- ``epoll``: a bare loop, ``epoll.poll`` then ``recvfrom_into`` until each ready socket is empty;
- ``epoll/5ms``: the same loop sleeping 5 ms before each poll, so one wake-up reads several streams' datagrams;
- ``asyncio``: asyncio's selector loop with one ``add_reader`` callback per socket (what the lean receive path
  does, ``harness.rtc.netio.take_reads``), reading until the socket is empty.

The three are interleaved ``ROUNDS`` times (a noisy minute does not land on one of them), best of the rounds
printed. ``benchmarks/rtp_path.py``'s ``floor`` row is the same measurement with aiortc's connections around it.

Run: .venv/bin/python benchmarks/datagram_floor.py [STREAMS] [SECONDS] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import select
import socket
import sys
import time
from typing import Any

PAYLOAD = b"\x80" + bytes(1199)
FPS = 30
PER_FRAME = 2
SETTLE_S = 2.0
MODES = ("epoll", "epoll/5ms", "asyncio")


def _sender(ports: list[int], core: int) -> None:
    os.sched_setaffinity(0, {core})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gap = 1 / FPS / len(ports)
    next_send = time.monotonic()
    while True:
        for port in ports:
            for _ in range(PER_FRAME):
                sock.sendto(PAYLOAD, ("127.0.0.1", port))
            next_send += gap
            delay = next_send - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def _sockets(n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    return socks


def _epoll(socks: list[socket.socket], seconds: float, sleep_s: float) -> tuple[float, int, int]:
    poller = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    buffer = bytearray(65536)
    datagrams = wakeups = 0
    start_at = time.monotonic() + SETTLE_S
    end_at = start_at + seconds
    cpu0 = None
    while True:
        if sleep_s:
            time.sleep(sleep_s)
        events = poller.poll(0 if sleep_s else 0.1)
        now = time.monotonic()
        if cpu0 is None and now >= start_at:
            cpu0, datagrams, wakeups = time.process_time(), 0, 0
        if now >= end_at:
            return time.process_time() - (cpu0 or 0.0), datagrams, wakeups
        wakeups += 1
        for fd, _ in events:
            sock = by_fd[fd]
            while True:
                try:
                    sock.recvfrom_into(buffer)
                except BlockingIOError:
                    break
                datagrams += 1


def _asyncio(socks: list[socket.socket], seconds: float) -> tuple[float, int, int]:
    counts = [0, 0]  # datagrams, reader calls

    async def main() -> float:
        loop = asyncio.get_running_loop()
        buffer = bytearray(65536)

        def read(sock: socket.socket) -> None:
            counts[1] += 1
            while True:
                try:
                    sock.recvfrom_into(buffer)
                except BlockingIOError:
                    return
                counts[0] += 1

        for s in socks:
            loop.add_reader(s.fileno(), read, s)
        await asyncio.sleep(SETTLE_S)
        counts[0] = counts[1] = 0
        cpu0 = time.process_time()
        await asyncio.sleep(seconds)
        return time.process_time() - cpu0

    cpu = asyncio.run(main())
    return cpu, counts[0], counts[1]


def _receiver(conn: Any, n: int, core: int, mode: str, seconds: float) -> None:
    os.sched_setaffinity(0, {core})
    socks = _sockets(n)
    conn.send([s.getsockname()[1] for s in socks])
    if mode == "asyncio":
        conn.send(_asyncio(socks, seconds))
    else:
        conn.send(_epoll(socks, seconds, 0.005 if mode == "epoll/5ms" else 0.0))


def measure(n: int, seconds: float, mode: str) -> tuple[float, int, int]:
    """(µs of receiver CPU per datagram, datagrams, wake-ups or reader calls) for one way of reading."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    cores = sorted(os.sched_getaffinity(0))
    receiver = ctx.Process(target=_receiver, args=(child, n, cores[-1], mode, seconds))
    receiver.start()
    sender = None
    try:
        if not parent.poll(30):
            raise TimeoutError("the receiver did not start within 30 s")
        sender = ctx.Process(target=_sender, args=(parent.recv(), cores[0]), daemon=True)
        sender.start()
        if not parent.poll(seconds + SETTLE_S + 30):
            raise TimeoutError("the receiver did not report")
        cpu, datagrams, wakeups = parent.recv()
    finally:
        if sender is not None:
            sender.kill()
        receiver.join(10)
        if receiver.is_alive():
            receiver.kill()
    return 1e6 * cpu / max(datagrams, 1), datagrams, wakeups


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    print(f"{n} streams, {PER_FRAME} datagrams of {len(PAYLOAD)} bytes a frame at {FPS} fps "
          f"({n * PER_FRAME * FPS} a second), {seconds:g} s per measurement; load average {os.getloadavg()[0]:.2f}")
    print(f"{'':>10} {'us/datagram':>12} {'datagrams':>10} {'wake-ups':>9}")
    best: dict[str, float] = {}
    for _ in range(rounds):
        for mode in MODES:
            cost, datagrams, wakeups = measure(n, seconds, mode)
            best[mode] = min(best.get(mode, cost), cost)
            print(f"{mode:>10} {cost:12.1f} {datagrams:10d} {wakeups:9d}", flush=True)
    print(f"\nbest of {rounds}: " + ", ".join(f"{m} {best[m]:.1f}" for m in MODES) + " us/datagram; "
          f"asyncio / epoll {best['asyncio'] / best['epoll']:.2f}, epoll/5ms / epoll "
          f"{best['epoll/5ms'] / best['epoll']:.2f}")


if __name__ == "__main__":
    main()
