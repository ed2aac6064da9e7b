"""Impaired networks for a run: one namespace and one shaped access link per participant group.

Topology. Every group with a network profile gets a network namespace of its own, and its participants' media
hosts run inside it (``ip netns exec``; see ``harness.loadgen.plugin``). The namespace's only way out is its
access link, shaped by the group's profile in both directions. The root namespace, where the controller,
Locust, local servers and the participants of unimpaired groups live, has an address on the same network
(:attr:`ImpairedNetwork.root_address`): servers listen there, unimpaired participants pin their ICE candidates
there. A server in a namespace of its own (a testbed's Janus) is reached through :meth:`ImpairedNetwork.attach`.

Why namespaces rather than per-group source addresses: two participants in one namespace talk over its
loopback, never through a device, so a p2p call (the calibration path) could not be impaired at all; a media
host pins its ICE candidates once for the whole process (``harness/rtc/ice.py``), so one address per participant
would mean bending aioice per connection; and in a namespace *everything* a participant sends, signalling
included, crosses its access link, as on a real client's link. The price is one media host per group and
Locust process, and that members of one group share their link (like people behind one Wi-Fi router: a
group's ``rate_kbps`` is the group's, and two members of a group reach each other inside it, unimpaired).

Backends. ``netem`` (veth pairs on a bridge in a hub namespace, ``tc netem`` and ``tbf`` on the veths) where
the kernel has it; otherwise ``wire`` (TUN devices and the user-space router :mod:`harness.testbed.wire`).
``CONFBENCH_IMPAIRMENT=wire|netem|auto`` chooses (default ``auto``). The manifest records which one ran and why.

Addresses: a free /24 of 198.19.0.0/16 (the second half of the RFC 2544 benchmarking block; the Janus testbed
uses 198.18.0.0/16): ``.1`` is the root namespace, groups follow.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.errors import TestbedError
from harness.scenario.network import NetworkProfile
from harness.testbed import netns
from harness.testbed.link import ImpairedNetwork

log = logging.getLogger(__name__)

WIRE_BLOCK = ipaddress.ip_network("198.19.0.0/16")
LOCK_FILE = Path("/run/confbench-impairment.lock")
BACKEND_ENV = "CONFBENCH_IMPAIRMENT"
LAYOUT_FILE = "network.json"
"""Written into the run folder: where each group lives, for the Locust processes."""


RowsFn = Callable[[str, list[dict[str, Any]]], None]


# --- choosing and creating ---------------------------------------------------------------------------------

_netem: bool | None = None


def netem_available() -> bool:
    """Whether this kernel has ``tc netem`` (tried once per process, on a veth in a scratch namespace)."""
    global _netem
    if _netem is None:
        import shutil
        import subprocess

        _netem = False
        if shutil.which("tc") is not None and os.geteuid() == 0:
            with netns.Namespace.create(veth=False) as scratch:
                netns.ip("link", "add", "cbprobe0", "type", "veth", "peer", "name", "cbprobe1",
                         namespace=scratch.name)
                done = subprocess.run(["ip", "netns", "exec", scratch.name, "tc", "qdisc", "add", "dev",
                                       "cbprobe0", "root", "netem", "delay", "1ms"], capture_output=True, timeout=10)
                _netem = done.returncode == 0
    return _netem


def choose_backend() -> tuple[str, str]:
    """(backend, why): ``netem`` where the kernel has it, else the user-space ``wire``; env may force one."""
    wanted = os.environ.get(BACKEND_ENV, "auto").strip() or "auto"
    if wanted not in ("auto", "wire", "netem"):
        raise TestbedError(f"{BACKEND_ENV} must be auto, wire or netem, got {wanted!r}")
    if wanted == "wire":
        return "wire", f"{BACKEND_ENV}=wire"
    available = netem_available()
    if wanted == "netem":
        if not available:
            raise TestbedError(f"{BACKEND_ENV}=netem, but this kernel has no tc netem; use wire or auto")
        return "netem", f"{BACKEND_ENV}=netem"
    if available:
        return "netem", "the kernel has tc netem"
    return "wire", "the kernel has no tc netem: user-space wire (TUN devices)"


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    # Two runs choosing a /24 at the same moment would both take the first free one.
    with open(LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_subnet() -> ipaddress.IPv4Network:
    used = set()
    for line in netns.ip("-o", "-4", "addr", "show").splitlines():
        parts = line.split()
        if "inet" in parts:
            address = ipaddress.ip_interface(parts[parts.index("inet") + 1]).ip
            if address in WIRE_BLOCK:
                used.add(ipaddress.ip_network(f"{address}/24", strict=False))
    for subnet in WIRE_BLOCK.subnets(new_prefix=24):
        if subnet not in used:
            return ipaddress.IPv4Network(subnet)
    raise TestbedError(f"no free /24 left in {WIRE_BLOCK} for an impaired network")


def create_network(profiles: Mapping[str, NetworkProfile], backend: str | None = None) -> ImpairedNetwork:
    """Namespaces and shaped links for the groups of ``profiles``, shaped as at the start of the run.

    Raises :class:`TestbedError` with one line (e.g. without root) and leaves nothing behind on failure.
    """
    netns.require_root("network impairment", "run confbench as root, or remove the groups' network profiles")
    reason = ""
    if backend is None:
        backend, reason = choose_backend()
    if backend == "wire":
        from harness.testbed.wire_control import WireNetwork as cls
    elif backend == "netem":
        from harness.testbed.netem import NetemNetwork as cls  # type: ignore[assignment]
    else:
        raise TestbedError(f"unknown impairment backend {backend!r}")
    with _allocation_lock():
        network = cls.start(_free_subnet(), list(profiles))
    network.reason = reason or f"{backend} requested"
    try:
        for group, profile in profiles.items():
            network.set_shapes(group, *profile.at(0.0))
    except BaseException:
        network.close()
        raise
    return network


# --- during the run: timeline, measurements ----------------------------------------------------------------


class NetworkRecorder:
    """A thread that applies the profiles' timelines and turns the network's measurements into rows.

    Rows go to ``on_rows(table, rows)`` from this thread only: ``network`` (per link and direction and
    second), ``probes`` (the wire process, role ``wire``) and ``events`` (``network_change`` whenever a
    group's shapes change, with the time since the start ``t0`` and both shapes in ``detail``).
    """

    def __init__(self, network: ImpairedNetwork, profiles: Mapping[str, NetworkProfile], t0: float,
                 on_rows: RowsFn, clock: Callable[[], float] = time.time) -> None:
        self.network = network
        self.profiles = dict(profiles)
        self.t0 = t0
        self._on_rows = on_rows
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="network-recorder", daemon=True)
        self._changes = sorted({t for p in self.profiles.values() for t in p.changes()})
        self.errors: list[str] = []

    def start(self) -> None:
        """Record the initial shapes and start the thread."""
        self._apply(0.0)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (bounded) after it wrote what it had."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _apply(self, at_s: float) -> None:
        rows = []
        for group, profile in self.profiles.items():
            before = profile.at(at_s - 1e-9) if at_s > 0 else None
            up, down = profile.at(at_s)
            if before == (up, down):
                continue
            if at_s > 0:
                self.network.set_shapes(group, up, down)
            rows.append({"ts": self.t0 + at_s if at_s > 0 else self._clock(), "kind": "network_change",
                         "participant": None,
                         "detail": {"group": group, "at_s": at_s, "profile": profile.name,
                                    "outage": any(s.outage and s.at_s <= at_s < s.end_s for s in profile.timeline),
                                    "up": up.to_dict(), "down": down.to_dict(),
                                    "summary": f"up {up.describe()}; down {down.describe()}"}})
        if rows:
            self._on_rows("events", rows)

    def _run(self) -> None:
        pending = [t for t in self._changes if t > 0]
        try:
            while not self._stop.is_set():
                now = self._clock() - self.t0
                while pending and pending[0] <= now:
                    self._apply(pending.pop(0))
                wait = min(1.0, pending[0] - now) if pending else 1.0
                tables = self.network.poll(max(wait, 0.0))
                for table, rows in (tables or {}).items():
                    if rows:
                        self._on_rows(table, rows)
        except Exception as exc:  # recorded and reported; the run decides what it means
            log.exception("the network recorder failed")
            self.errors.append(f"network recorder failed: {type(exc).__name__}: {exc}")


def write_layout(run_dir: Path, network: ImpairedNetwork) -> None:
    """``network.json`` in the run folder: read by every Locust process to place its media hosts."""
    (run_dir / LAYOUT_FILE).write_text(json.dumps(network.layout(), indent=2))


def read_layout(run_dir: Path | None) -> dict[str, Any] | None:
    """The layout written by :func:`write_layout`, or None when the run has no impaired network."""
    if run_dir is None:
        return None
    try:
        return dict(json.loads((Path(run_dir) / LAYOUT_FILE).read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TestbedError(f"{run_dir / LAYOUT_FILE} is unreadable: {exc}") from None


# --- one run's network, as run.py uses it ------------------------------------------------------------------


def open_network(profiles: Mapping[str, NetworkProfile], confined: Sequence[str] = ()) -> ImpairedNetwork | None:
    """The impaired network for groups with a profile that changes something, and for the ``confined`` groups
    (a namespace whose only way out is a clean link: see ``harness.browser.confinement``); None when no group
    needs one."""
    shaped = {group: profile for group, profile in profiles.items() if not profile.clean}
    for group in confined:
        shaped.setdefault(group, NetworkProfile(name="clean", description="confined to a namespace, unshaped"))
    return create_network(shaped) if shaped else None


class RunNetwork:
    """An impaired network during one run: its layout in the run folder, its rows in the results."""

    def __init__(self, network: ImpairedNetwork, profiles: Mapping[str, NetworkProfile], run_dir: Path,
                 t0: float) -> None:
        from harness.store.writer import RunWriter

        self.network = network
        self._writer = RunWriter(run_dir, writer_id="network", flush_interval_s=1.0)
        self._recorder = NetworkRecorder(network, {g: p for g, p in profiles.items() if g in network.ports},
                                         t0, self._append)
        write_layout(run_dir, network)

    def _append(self, table: str, rows: list[dict[str, Any]]) -> None:
        self._writer.append(table, rows)
        self._writer.maybe_flush()

    def start(self) -> None:
        """Apply and record the timeline from now on."""
        self._recorder.start()

    def stop(self) -> list[str]:
        """Stop recording; returns errors that make the run a failure (e.g. the wire died)."""
        self._recorder.stop()
        self._writer.close()
        return list(self._recorder.errors)
