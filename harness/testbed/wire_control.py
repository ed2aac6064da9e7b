"""The controller's side of the user-space wire (:mod:`harness.testbed.wire`): start it, place its devices.

:class:`WireNetwork` starts the wire process with one TUN device per group plus one for the root namespace,
moves each group's device into a fresh namespace, addresses everything, and turns the wire's per-second
reports into rows. The TUN devices belong to the wire's open file descriptors: when the wire ends, for any
reason, they are gone with it; the namespaces are removed by :meth:`WireNetwork.close`, or by the next run's
stale clean-up (``netns.remove_stale``) after a SIGKILL.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

import psutil

from harness.errors import TestbedError
from harness.probes.procs import die_with_parent
from harness.scenario.network import Shape
from harness.testbed import netns
from harness.testbed.link import GroupPort, ImpairedNetwork

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
REPLY_TIMEOUT_S = 5.0
ROOT_PORT = "@root"
"""The root namespace's port (``@`` cannot start a group name)."""


class WireNetwork(ImpairedNetwork):
    """Groups in namespaces, joined by TUN devices to the user-space wire."""

    backend = "wire"

    def __init__(self, subnet: ipaddress.IPv4Network) -> None:
        super().__init__(subnet)
        self._proc: subprocess.Popen[bytes] | None = None
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._stats: queue.Queue[dict[str, Any]] = queue.Queue()
        self._ids = itertools.count(1)
        self._write_lock = threading.Lock()
        self._ifnames: dict[str, tuple[str, str | None]] = {}  # port → (device, namespace or None)
        self._kernel_drops: dict[str, int] = {}
        self._ports = itertools.count()
        self.exit_reason: str | None = None

    @property
    def pid(self) -> int | None:
        """The wire process's id."""
        return self._proc.pid if self._proc is not None else None

    def _ifname(self) -> str:
        return f"cbw{os.getpid()}p{next(self._ports)}"[:15]


    def _start(self, groups: Sequence[str]) -> None:
        """Start the wire with a port per group and one for the root namespace; nothing is shaped yet."""
        root_if = self._ifname()
        ports = [{"name": ROOT_PORT, "ifname": root_if, "addresses": [self.root_address]}]
        planned = []
        for group in groups:
            address, ifname = self.next_address(), self._ifname()
            ports.append({"name": group, "ifname": ifname, "addresses": [address]})
            planned.append((group, address, ifname))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.testbed.wire"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None, preexec_fn=die_with_parent,
        )
        threading.Thread(target=self._read_loop, name="wire-reader", daemon=True).start()
        self._send({"ports": ports, "seed": 0})
        self._await_ready()
        netns.configure_tun(root_if, self.root_address, self.subnet.prefixlen)
        self._ifnames[ROOT_PORT] = (root_if, None)
        for group, address, ifname in planned:
            ns = netns.Namespace.create(veth=False)
            self.namespaces.append(ns)
            ns.add_tun(ifname, address, self.root_address, self.subnet.prefixlen, default_route=True)
            self._ifnames[group] = (ifname, ns.name)
            self.ports[group] = GroupPort(group, ns.name, address)

    def _await_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                message = self._stats.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TestbedError(f"the network wire did not start within {START_TIMEOUT_S:g} s") from None
            if message.get("type") == "ready":
                return
            if message.get("type") in ("error", "exit"):
                raise TestbedError(f"the network wire did not start: {message.get('error')}")

    # -- talking to the wire -------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise TestbedError("the network wire is not running")
        try:
            with self._write_lock:
                proc.stdin.write(json.dumps(message).encode() + b"\n")
                proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise TestbedError(f"the network wire is gone ({self.exit_reason or 'pipe closed'})") from None

    def _request(self, op: str, **fields: Any) -> None:
        rid = next(self._ids)
        answer: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        self._replies[rid] = answer
        try:
            self._send(dict(fields, op=op, id=rid))
            try:
                reply = answer.get(timeout=REPLY_TIMEOUT_S)
            except queue.Empty:
                raise TestbedError(f"the network wire did not answer {op!r} within {REPLY_TIMEOUT_S:g} s") from None
        finally:
            self._replies.pop(rid, None)
        if not reply.get("ok"):
            raise TestbedError(f"the network wire refused {op!r}: {reply.get('error')}")

    def _read_loop(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        out: IO[bytes] = proc.stdout
        for raw in out:
            try:
                message = json.loads(raw)
            except ValueError:
                log.warning("the wire wrote a line that is not JSON: %r", raw[:200])
                continue
            if message.get("type") == "reply":
                waiter = self._replies.get(message.get("id"))
                if waiter is not None:
                    waiter.put(message)
            else:
                self._stats.put(message)
        code = proc.wait()
        self.exit_reason = f"the network wire exited with code {code}"
        self._stats.put({"type": "exit", "error": self.exit_reason})
        for waiter in list(self._replies.values()):
            waiter.put({"ok": False, "error": self.exit_reason})

    # -- the ImpairedNetwork interface -------------------------------------------------------------------
    def set_shapes(self, group: str, up: Shape, down: Shape) -> None:
        """Shape ``group``'s link (both directions) from now on."""
        self._request("shape", port=group, up=up.to_dict(), down=down.to_dict())

    def attach(self, namespace: netns.Namespace, owns: Sequence[str] = ()) -> str:
        """Give a server's namespace a port on the wire (unshaped); ``owns`` are routed to it too."""
        name = f"@{namespace.name}"
        address, ifname = self.next_address(), self._ifname()
        self._request("add_port", name=name, ifname=ifname, addresses=[address])
        namespace.add_tun(ifname, address, self.root_address, self.subnet.prefixlen)
        self._ifnames[name] = (ifname, namespace.name)
        for other in owns:
            self._request("route", port=name, address=str(ipaddress.IPv4Address(other)))
        return address

    def poll(self, timeout: float) -> dict[str, list[dict[str, Any]]] | None:
        """The next per-second report of the wire as ``network`` and ``probes`` rows (None on timeout)."""
        try:
            message = self._stats.get(timeout=timeout)
        except queue.Empty:
            return None
        if message.get("type") == "exit":
            self._stats.put(message)  # every later poll sees it too
            raise TestbedError(str(message.get("error")))
        if message.get("type") != "stats":
            return None
        return self._rows(message)

    def _rows(self, stats: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        ts = float(stats["ts"])
        drops = self._read_kernel_drops()
        network = []
        for port, both in stats.get("ports", {}).items():
            for direction in ("up", "down"):
                c = both[direction]
                network.append({
                    "ts": ts, "group": port, "direction": direction, "packets": c["packets"], "bytes": c["bytes"],
                    "lost": c["lost"], "queue_drops": c["queue_drops"], "queue_ms_max": c["max_queue_ms"],
                    "kernel_drops": drops.get(port, 0) if direction == "up" else 0,
                })
        rss = None
        if self.pid is not None:
            try:
                rss = psutil.Process(self.pid).memory_info().rss / 2**20
            except psutil.Error:
                rss = None
        probe = {"ts": ts, "host": os.uname().nodename, "role": "wire", "pid": self.pid or 0, "name": "wire",
                 "cpu_pct": float(stats["cpu_pct"]), "rss_mb": rss if rss is not None else 0.0,
                 "loop_lag_ms": float(stats["late_ms_max"]), "packets_held": int(stats.get("released", 0)),
                 "packets_late": int(stats.get("late_packets", 0))}
        return {"network": network, "probes": [probe]}

    def _read_kernel_drops(self) -> dict[str, int]:
        """Per port, packets its device dropped since the last call because the wire read too slowly."""
        out = {}
        for port, (ifname, namespace) in self._ifnames.items():
            try:
                info = json.loads(netns.ip("-s", "-j", "link", "show", "dev", ifname, namespace=namespace))
                total = int(info[0]["stats64"]["tx"]["dropped"])
            except (TestbedError, ValueError, KeyError, IndexError):
                continue  # the device is gone (end of run): nothing more to count
            out[port] = total - self._kernel_drops.get(port, 0)
            self._kernel_drops[port] = total
        return out

    def close(self) -> None:
        """Stop the wire (its devices go with it), then delete the namespaces; never raises."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # end of input: the wire stops
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    log.error("the network wire (pid %s) would not die", proc.pid)
        for ns in self.namespaces:
            ns.delete()
        self.namespaces.clear()
