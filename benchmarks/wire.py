"""The user-space wire's capacity and precision: packet rate, CPU, and how exactly it holds packets.

A sender in one group's namespace sends UDP datagrams of 1200 bytes (a video packet) at a fixed rate through
the wire to a receiver in another group's namespace; the sender's link adds a one-way delay. Each datagram
carries its send time (CLOCK_MONOTONIC, shared by every process of the host), so the receiver knows each
one's one-way delay. Printed per offered rate: what arrived, the wire's CPU (% of one core), the one-way
delay minus the injected one (p50 / p99 / max: what the wire adds), and its own lateness report.

For scale: a 640x360 video stream at 500 kbit/s is about 60 packets/s; a 10-person meeting on an SFU, every
participant behind the wire, moves about 10 × (60 + 50 audio) × (1 up + 9 down) ≈ 11 000 packets/s.

Run (as root): .venv/bin/python benchmarks/wire.py [SECONDS_PER_RATE]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any

from harness.scenario.network import parse_profile
from harness.testbed.impairment import create_network

DELAY_MS = 20.0
RATES = (1000, 5000, 10000, 20000, 40000)
SIZE = 1200
PORT = 9000

_RECEIVER = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(2.0)
print("ready", flush=True)
delays = []
while True:
    try:
        data = s.recv(2048)
    except socket.timeout:
        break
    delays.append(time.monotonic() - struct.unpack_from("d", data)[0])
print(" ".join(f"{d * 1000:.3f}" for d in delays), flush=True)
"""

_SENDER = r"""
import socket, struct, sys, time
target, port, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seconds, size = float(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
pad = bytes(size - 8)
start = time.monotonic()
sent = 0
while True:
    now = time.monotonic()
    if now - start >= seconds:
        break
    due = int((now - start) * rate)
    while sent < due:
        s.sendto(struct.pack("d", time.monotonic()) + pad, (target, port))
        sent += 1
    time.sleep(0.0005)
print(sent, flush=True)
"""


def _one(rate: int, seconds: float) -> dict[str, Any]:
    profile = parse_profile({"up": {"delay_ms": DELAY_MS}})
    network = create_network({"send": profile, "recv": parse_profile({"down": {"delay_ms": 0.0, "loss_pct": 0.0}})},
                             backend="wire")
    try:
        send, recv = network.ports["send"], network.ports["recv"]
        # "recv" has a clean profile, so the wire applies only the sender's uplink delay.
        receiver = subprocess.Popen(["ip", "netns", "exec", recv.namespace, sys.executable, "-c", _RECEIVER,
                                     recv.address, str(PORT)], stdout=subprocess.PIPE, text=True)
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        sender = subprocess.run(["ip", "netns", "exec", send.namespace, sys.executable, "-c", _SENDER,
                                 recv.address, str(PORT), str(rate), str(seconds), str(SIZE)],
                                capture_output=True, text=True, timeout=seconds + 30)
        sent = int(sender.stdout.strip() or 0)
        out, _ = receiver.communicate(timeout=30)
        delays = [float(x) for x in out.split()]
        stats = []
        while True:
            tables = network.poll(0.2)
            if tables is None:
                break
            stats.append(tables)
    finally:
        network.close()
    probes = [row for t in stats for row in t.get("probes", [])]
    busy = [row["cpu_pct"] for row in probes]
    lateness = [row["loop_lag_ms"] for row in probes]
    drops = sum(row["kernel_drops"] for t in stats for row in t.get("network", []))
    extra = sorted(d - DELAY_MS for d in delays)
    return {
        "rate": rate, "sent": sent, "received": len(delays), "cpu": max(busy) if busy else float("nan"),
        "p50": statistics.median(extra) if extra else float("nan"),
        "p99": extra[int(0.99 * (len(extra) - 1))] if extra else float("nan"),
        "max": extra[-1] if extra else float("nan"), "late_max": max(lateness) if lateness else float("nan"),
        "kernel_drops": drops, "seconds": seconds,
    }


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    print(f"wire: {SIZE}-byte UDP datagrams between two namespaces, {DELAY_MS:g} ms injected one way, "
          f"{seconds:g} s per rate")
    print(f"{'offered/s':>10} {'delivered/s':>12} {'loss %':>7} {'wire CPU %':>11} "
          f"{'added p50 ms':>13} {'p99 ms':>7} {'max ms':>7} {'late max ms':>12} {'kernel drops':>13}")
    for rate in RATES:
        r = _one(rate, seconds)
        loss = 100 * (1 - r["received"] / r["sent"]) if r["sent"] else float("nan")
        print(f"{r['sent'] / seconds:10.0f} {r['received'] / seconds:12.0f} {loss:7.2f} {r['cpu']:11.1f} "
              f"{r['p50']:13.3f} {r['p99']:7.3f} {r['max']:7.3f} {r['late_max']:12.3f} {r['kernel_drops']:13d}")


if __name__ == "__main__":
    main()
