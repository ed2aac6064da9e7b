"""The user-space wire: a router between TUN devices that applies each link's network profile.

This kernel has no ``netem``, so impairment is done here, in a process of its own that needs nothing but the
standard library (and iproute2 in the controller that sets the devices up). Each *port* is a TUN device the
wire opens in the root namespace; the controller then moves it into a participant group's namespace (or leaves
it in the root namespace) and gives it addresses. A packet read from port A whose destination belongs to port
B goes through A's ``up`` shaper, then B's ``down`` shaper (:mod:`harness.testbed.shaping`), and is written
into B at the time they decide. No kernel forwarding is involved anywhere, so the host's own settings are
never touched.

Timing: a heap of packets ordered by departure time; the loop sleeps in ``select`` (microsecond timeouts, so
a packet leaves within a fraction of a millisecond of its time) until the next departure or the next readable
device. How late each packet actually left is measured and reported: the run is declared invalid when the
wire falls behind (``harness.testbed.impairment``).

Protocol (JSON lines). The first line on stdin is the configuration::

    {"ports": [{"name": "root", "ifname": "cbw123p0", "addresses": ["198.19.4.1"]}, ...], "seed": 0}

then commands, each answered by a ``{"type": "reply", "id": …, "ok": …}`` line on stdout::

    {"op": "shape", "id": 1, "port": "mobile", "up": {...Shape...}, "down": {...}}
    {"op": "add_port", "id": 2, "name": "server", "ifname": "cbw123p3", "addresses": ["198.19.4.4"]}
    {"op": "route", "id": 3, "port": "server", "address": "198.18.0.2"}
    {"op": "stop", "id": 4}

Once the devices exist the wire says ``{"type": "ready", "pid": …}``; every second it writes a ``stats`` line
(packets, drops and queueing per port and direction, lateness, backlog, CPU). End of input stops it: the wire
never outlives the controller.

Run: ``python -m harness.testbed.wire`` (as root).
"""

from __future__ import annotations

import errno
import fcntl
import gc
import heapq
import ipaddress
import itertools
import json
import os
import random
import select
import struct
import sys
import time
from dataclasses import asdict
from typing import Any, BinaryIO

from harness.scenario.network import Shape, shape_from_dict
from harness.testbed.shaping import Shaper

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65536
READ_BATCH = 256
"""Packets read from one device per wake-up, at most: a flooded port cannot starve the others."""
STATS_INTERVAL_S = 1.0
EARLY_S = 50e-6
"""A packet due within this much is sent now: waking up for it would make it later, not more exact."""
LATE_MS = 5.0
"""Lateness counted in ``late_packets``: a departure more than this after its time. A few milliseconds is what
a virtual machine's vCPU can lose to its hypervisor at any instant, even with this process real-time; the run's
health judges the share of held packets this late (``harness.analysis.health``)."""


def open_tun(ifname: str) -> int:
    """Create the TUN device ``ifname`` (layer 3, no packet-info header) and return its non-blocking fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class Port:
    """One TUN device of the wire, with the shapers of both directions of its link."""

    def __init__(self, name: str, ifname: str, fd: int, seed: int) -> None:
        self.name = name
        self.ifname = ifname
        self.fd = fd
        # Each direction draws its own reproducible random numbers: same seed, same loss pattern.
        self.up = Shaper(Shape(), random.Random(f"{seed}/{name}/up"))
        self.down = Shaper(Shape(), random.Random(f"{seed}/{name}/down"))
        self.clean = True
        self.read_packets = 0

    def set(self, up: Shape, down: Shape) -> None:
        self.up.set_shape(up)
        self.down.set_shape(down)
        self.clean = up.clean and down.clean


class Wire:
    """The router: ports, routes, the departure heap and the loop that runs them."""

    def __init__(self, out: BinaryIO, seed: int = 0) -> None:
        self.out = out
        self.seed = seed
        self.ports: dict[str, Port] = {}
        self.by_fd: dict[int, Port] = {}
        self.routes: dict[bytes, Port] = {}
        self.heap: list[tuple[float, int, int, bytes]] = []
        self._seq = itertools.count()
        self.stopping = False
        self._ctl_buffer = b""
        self._reset_stats()

    def _reset_stats(self) -> None:
        self.late_max_s = 0.0
        self.late_sum_s = 0.0
        self.released = 0
        self.late_packets = 0
        self.unroutable = 0
        self.write_errors = 0
        self.busy_s = 0.0
        self.max_batch = 0

    # -- set-up --------------------------------------------------------------------------------------------
    def add_port(self, name: str, ifname: str, addresses: list[str]) -> Port:
        if name in self.ports:
            raise ValueError(f"port {name!r} exists")
        port = Port(name, ifname, open_tun(ifname), self.seed)
        self.ports[name] = port
        self.by_fd[port.fd] = port
        for address in addresses:
            self.route(address, name)
        return port

    def route(self, address: str, port: str) -> None:
        self.routes[ipaddress.IPv4Address(address).packed] = self.ports[port]

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self, ctl_fd: int) -> None:
        os.set_blocking(ctl_fd, False)
        self._commands()  # any that arrived with the configuration
        cpu0 = _cpu_s()
        next_stats = time.monotonic() + STATS_INTERVAL_S
        while not self.stopping:
            now = time.monotonic()
            timeout = next_stats - now
            if self.heap:
                timeout = min(timeout, self.heap[0][0] - now)
            readable, _, _ = select.select([ctl_fd, *self.by_fd], [], [], max(timeout, 0.0))
            start = time.monotonic()
            for fd in readable:
                if fd == ctl_fd:
                    self._control(ctl_fd)
                else:
                    self._read(self.by_fd[fd], start)
            self._release(time.monotonic())
            end = time.monotonic()
            self.busy_s += end - start
            if end >= next_stats:
                cpu = _cpu_s()
                self._stats(end - next_stats + STATS_INTERVAL_S, cpu - cpu0)
                cpu0 = cpu
                next_stats += STATS_INTERVAL_S
                if next_stats < end:  # a stall longer than an interval: report once, then move on
                    next_stats = end + STATS_INTERVAL_S

    def _read(self, port: Port, now: float) -> None:
        fd = port.fd
        heap = self.heap
        batch = 0
        for _ in range(READ_BATCH):
            try:
                packet = os.read(fd, MAX_PACKET)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                break
            batch += 1
            if len(packet) < 20 or packet[0] >> 4 != 4:
                continue  # not IPv4 (e.g. IPv6 neighbour discovery of a device coming up): not routed
            target = self.routes.get(packet[16:20])
            if target is None or target is port:
                self.unroutable += 1
                continue
            size = len(packet)
            due = now
            if not port.clean:
                left = port.up.admit(now, size)
                if left is None:
                    continue
                due = left
            else:
                port.up.counters.packets += 1
                port.up.counters.bytes += size
            if not target.clean:
                left = target.down.admit(due, size)
                if left is None:
                    continue
                due = left
            else:
                target.down.counters.packets += 1
                target.down.counters.bytes += size
            if due <= now + EARLY_S:
                self._write(target.fd, packet)
            else:
                heapq.heappush(heap, (due, next(self._seq), target.fd, packet))
        port.read_packets += batch
        self.max_batch = max(self.max_batch, batch)

    def _release(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now + EARLY_S:
            due, _, fd, packet = heapq.heappop(heap)
            self._write(fd, packet)
            late = time.monotonic() - due
            if late > 0:
                self.late_sum_s += late
                if late > self.late_max_s:
                    self.late_max_s = late
                if late * 1000 > LATE_MS:
                    self.late_packets += 1
            self.released += 1

    def _write(self, fd: int, packet: bytes) -> None:
        try:
            os.write(fd, packet)
        except OSError:
            self.write_errors += 1  # the device went away or refused it: the packet is lost, and counted

    # -- control and reports -------------------------------------------------------------------------------
    def _control(self, ctl_fd: int) -> None:
        try:
            chunk = os.read(ctl_fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self.stopping = True  # the controller is gone
            return
        self._ctl_buffer += chunk
        self._commands()

    def _commands(self) -> None:
        while b"\n" in self._ctl_buffer:
            line, self._ctl_buffer = self._ctl_buffer.split(b"\n", 1)
            if line.strip():
                self._command(line)

    def _command(self, line: bytes) -> None:
        cmd: dict[str, Any] = {}
        try:
            cmd = json.loads(line)
            op = cmd.get("op")
            if op == "shape":
                self.ports[cmd["port"]].set(shape_from_dict(cmd.get("up", {})), shape_from_dict(cmd.get("down", {})))
            elif op == "add_port":
                self.add_port(cmd["name"], cmd["ifname"], list(cmd.get("addresses", [])))
            elif op == "route":
                self.route(cmd["address"], cmd["port"])
            elif op == "stop":
                self.stopping = True
            else:
                raise ValueError(f"unknown op {op!r}")
            self.send({"type": "reply", "id": cmd.get("id"), "ok": True})
        except Exception as exc:  # a bad command is answered, never fatal: the wire carries a run
            self.send({"type": "reply", "id": cmd.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"})

    def send(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.out.flush()

    def _stats(self, interval_s: float, cpu_s: float) -> None:
        ports = {}
        for port in self.ports.values():
            ports[port.name] = {"up": asdict(port.up.take_counters()), "down": asdict(port.down.take_counters()),
                                "read": port.read_packets}
            port.read_packets = 0
        self.send({
            "type": "stats", "ts": time.time(), "interval_s": interval_s, "ports": ports,
            "cpu_pct": 100.0 * cpu_s / max(interval_s, 1e-6), "busy_pct": 100.0 * self.busy_s / max(interval_s, 1e-6),
            "released": self.released, "late_ms_max": self.late_max_s * 1000,
            "late_ms_mean": self.late_sum_s * 1000 / self.released if self.released else 0.0,
            "late_packets": self.late_packets, "backlog": len(self.heap), "unroutable": self.unroutable,
            "write_errors": self.write_errors, "max_batch": self.max_batch,
        })
        self._reset_stats()


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


RT_PRIORITY = 10
"""SCHED_FIFO priority of the wire: above every ordinary process, far below the kernel's own threads."""


def realtime() -> str:
    """Make this process real-time (SCHED_FIFO), else as nice as allowed; returns what it got.

    The wire holds every packet for a precise time: waiting for a core behind the media hosts it carries
    (which keep both cores of a small machine busy) would add milliseconds to the delays it emulates. The
    wire uses a few per cent of a core, and the kernel caps real-time tasks at 95 % of each second
    (``sched_rt_runtime_us``), so a real-time wire cannot starve the machine.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        return f"SCHED_FIFO {RT_PRIORITY}"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-10)
        return "nice -10"
    except OSError:
        return "normal"


def main() -> None:
    """Entry point of ``python -m harness.testbed.wire``: configuration, devices, ready line, loop."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the protocol only
    scheduling = realtime()
    ctl = sys.stdin.fileno()
    buffer = b""
    while b"\n" not in buffer:  # raw reads: a buffered reader would swallow the commands that follow
        chunk = os.read(ctl, 65536)
        if not chunk:
            return
        buffer += chunk
    first, rest = buffer.split(b"\n", 1)
    config = json.loads(first)
    wire = Wire(out, seed=int(config.get("seed", 0)))
    wire._ctl_buffer = rest
    try:
        for port in config.get("ports", []):
            wire.add_port(port["name"], port["ifname"], list(port.get("addresses", [])))
    except (OSError, ValueError, KeyError) as exc:
        wire.send({"type": "error", "error": f"cannot create the wire's devices: {exc}"})
        raise SystemExit(1) from None
    wire.send({"type": "ready", "pid": os.getpid(), "scheduling": scheduling})
    # The loop makes no reference cycles (packets, tuples, counters): the cycle collector would only add
    # pauses to the packets' times.
    gc.freeze()
    gc.disable()
    try:
        wire.run(ctl)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
