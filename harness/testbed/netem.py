"""The kernel's network emulator, where it exists: veth links on a bridge, shaped by ``tc netem`` and ``tbf``.

Same topology as the user-space wire (``harness.testbed.impairment``), built from kernel parts: a hub
namespace holds a bridge; each group's namespace and the root namespace join it with a veth pair (one /24,
no routing, so no forwarding setting changes anywhere). A group's ``up`` shape sits on its own end of the
veth (egress out of the group), ``down`` on the hub's end (egress towards the group): ``netem`` for delay,
jitter and loss, with a ``tbf`` child for the rate limit and its bounded queue (``latency`` = ``queue_ms``).

Only :func:`netem_argv` and :func:`tbf_argv` decide what the kernel is told; they are unit-tested. The kernel
this project is developed on has no netem, so this backend is exercised only where it exists.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from harness.errors import TestbedError
from harness.scenario.network import Shape
from harness.testbed import netns
from harness.testbed.link import GroupPort, ImpairedNetwork

TC_TIMEOUT_S = 10.0
NETEM_LIMIT = 100_000
"""Packets netem may hold (it holds every delayed packet: the default 1000 is a few hundred ms of video)."""


def netem_argv(shape: Shape) -> list[str]:
    """The ``netem`` options for a shape's delay, jitter and loss (``rate`` goes to a tbf child)."""
    argv = ["netem", "limit", str(NETEM_LIMIT)]
    if shape.delay_ms:
        argv += ["delay", f"{shape.delay_ms:g}ms"]
        if shape.jitter_ms:
            argv += [f"{shape.jitter_ms:g}ms"]  # netem's default distribution is uniform, as the wire's
    burst = shape.burst
    if burst is not None:
        # netem takes one loss model: random loss folds into both states of the Gilbert–Elliott model.
        keep = 1 - shape.loss_pct / 100
        bad = 100 * (1 - (1 - burst.loss_bad_pct / 100) * keep)
        good = 100 * (1 - (1 - burst.loss_good_pct / 100) * keep)
        argv += ["loss", "gemodel", f"{burst.p_pct:g}%", f"{burst.r_pct:g}%", f"{bad:g}%", f"{good:g}%"]
    elif shape.loss_pct:
        argv += ["loss", "random", f"{shape.loss_pct:g}%"]
    return argv


def tbf_argv(shape: Shape) -> list[str] | None:
    """The ``tbf`` options for a shape's rate limit and queue, or None without a limit."""
    if shape.rate_kbps is None:
        return None
    burst = max(3000, int(shape.rate_kbps * 1000 / 8 * 0.005))  # as the wire's bucket: 5 ms, >= 2 packets
    return ["tbf", "rate", f"{shape.rate_kbps:g}kbit", "burst", str(burst), "latency", f"{shape.queue_ms:g}ms"]


def _tc(namespace: str, *args: str, check: bool = True) -> str:
    argv = ["ip", "netns", "exec", namespace, "tc", *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TC_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TestbedError(f"'{' '.join(argv)}' did not finish within {TC_TIMEOUT_S:g} s") from None
    if check and done.returncode != 0:
        raise TestbedError(f"'{' '.join(argv)}' failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


class NetemNetwork(ImpairedNetwork):
    """Groups in namespaces, joined by veth pairs to a bridge in a hub namespace, shaped by the kernel."""

    backend = "netem"

    def __init__(self, subnet: ipaddress.IPv4Network) -> None:
        super().__init__(subnet)
        self.hub: netns.Namespace | None = None
        self._links: dict[str, tuple[str, str, str]] = {}  # group → (its namespace, its end, the hub's end)
        self._root_if: str | None = None
        self._counter = itertools.count()
        self._counts: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        self._last_poll = time.monotonic()

    def _names(self) -> tuple[str, str]:
        k = next(self._counter)
        return f"cbe{os.getpid()}a{k}"[:15], f"cbe{os.getpid()}b{k}"[:15]


    def _start(self, groups: Sequence[str]) -> None:
        """The hub, its bridge, the root namespace's link and one namespace and link per group."""
        self.hub = netns.Namespace.create(veth=False)
        self.namespaces.append(self.hub)
        hub = self.hub.name
        netns.ip("link", "add", "br0", "type", "bridge", namespace=hub)
        netns.ip("link", "set", "br0", "up", namespace=hub)
        outer, inner = self._names()
        netns.ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        self._root_if = outer
        self._plug(inner)
        netns.ip("addr", "add", f"{self.root_address}/{self.subnet.prefixlen}", "dev", outer)
        netns.ip("link", "set", outer, "up")
        for group in groups:
            ns = netns.Namespace.create(veth=False)
            self.namespaces.append(ns)
            address = self.next_address()
            own, theirs = self._connect(ns, address)
            self._links[group] = (ns.name, own, theirs)
            self.ports[group] = GroupPort(group, ns.name, address)

    def _plug(self, ifname: str) -> None:
        assert self.hub is not None
        netns.ip("link", "set", ifname, "netns", self.hub.name)
        netns.ip("link", "set", ifname, "master", "br0", namespace=self.hub.name)
        netns.ip("link", "set", ifname, "up", namespace=self.hub.name)

    def _connect(self, ns: netns.Namespace, address: str) -> tuple[str, str]:
        own, theirs = self._names()
        netns.ip("link", "add", own, "type", "veth", "peer", "name", theirs)
        netns.ip("link", "set", own, "netns", ns.name)
        self._plug(theirs)
        netns.ip("addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", own, namespace=ns.name)
        netns.ip("link", "set", own, "up", namespace=ns.name)
        return own, theirs

    def set_shapes(self, group: str, up: Shape, down: Shape) -> None:
        """netem (and tbf under it) on both ends of the group's veth."""
        assert self.hub is not None
        namespace, own, theirs = self._links[group]
        for ns, ifname, shape in ((namespace, own, up), (self.hub.name, theirs, down)):
            _tc(ns, "qdisc", "replace", "dev", ifname, "root", "handle", "1:", *netem_argv(shape))
            tbf = tbf_argv(shape)
            if tbf is None:
                _tc(ns, "qdisc", "del", "dev", ifname, "parent", "1:1", "handle", "10:", check=False)
            else:
                _tc(ns, "qdisc", "replace", "dev", ifname, "parent", "1:1", "handle", "10:", *tbf)

    def attach(self, namespace: netns.Namespace, owns: Sequence[str] = ()) -> str:
        """A veth from the server's namespace to the bridge; groups reach ``owns`` through it."""
        address = self.next_address()
        self._connect(namespace, address)
        for other in owns:
            for port in self.ports.values():
                netns.ip("route", "add", f"{ipaddress.IPv4Address(other)}/32", "via", address,
                         namespace=port.namespace)
        return address

    def poll(self, timeout: float) -> dict[str, list[dict[str, Any]]] | None:
        """Once a second: what netem and tbf passed and dropped per group and direction."""
        time.sleep(max(0.0, min(timeout, self._last_poll + 1.0 - time.monotonic())))
        if time.monotonic() < self._last_poll + 1.0:
            return None
        self._last_poll = time.monotonic()
        assert self.hub is not None
        ts = time.time()
        rows = []
        for group, (namespace, own, theirs) in self._links.items():
            for direction, ns, ifname in (("up", namespace, own), ("down", self.hub.name, theirs)):
                counts = qdisc_counts(_tc(ns, "-s", "-j", "qdisc", "show", "dev", ifname, check=False))
                last = self._counts.get((group, direction), (0, 0, 0, 0))
                self._counts[(group, direction)] = counts
                packets, bytes_, lost, queue_drops = (now - before for now, before in zip(counts, last, strict=True))
                rows.append({"ts": ts, "group": group, "direction": direction, "packets": packets,
                             "bytes": bytes_, "lost": lost, "queue_drops": queue_drops, "queue_ms_max": None,
                             "kernel_drops": 0})
        return {"network": rows}

    def close(self) -> None:
        """Delete the namespaces (their veths go with them) and the root namespace's veth; never raises."""
        if self._root_if is not None:
            netns.ip("link", "del", self._root_if, check=False)
            self._root_if = None
        for ns in self.namespaces:
            ns.delete()
        self.namespaces.clear()


def qdisc_counts(text: str) -> tuple[int, int, int, int]:
    """(packets sent, bytes sent, netem drops, tbf drops) from ``tc -s -j qdisc show`` output."""
    try:
        qdiscs = json.loads(text) if text.strip() else []
    except ValueError:
        return 0, 0, 0, 0
    packets = bytes_ = lost = queued = 0
    for q in qdiscs:
        if q.get("kind") == "netem":
            packets, bytes_ = int(q.get("packets", 0)), int(q.get("bytes", 0))
            lost = int(q.get("drops", 0))
        elif q.get("kind") == "tbf":
            queued = int(q.get("drops", 0))
    return packets, bytes_, lost, queued
