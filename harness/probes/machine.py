"""The machine itself: how busy all its cores were, and how much of them its hypervisor withheld.

A load generator, a local server and the emulated wire share a small machine. On a virtual machine a fourth
party shares it too: other tenants of the same host, whose work shows inside this machine only as *steal*,
time a core was ready to run here and the hypervisor ran something else. A run the harness marks ``invalid``
because its generator or wire fell behind says, with these figures, whether the machine's own processes took
the cores (``cpu_pct``: busy, every process together) or the host took them away (``steal_pct``), and
``idle_pct`` says whether anything was left over: a machine with none left was saturated, and whatever beside
the run kept it busy then took CPU the run's processes wanted (``harness.analysis.health``).

:class:`MachineProbe` writes one ``probes`` row a second (role ``machine``); :func:`wait_until_quiet` lets a
caller that is about to measure again (a cross-check room, a test) wait, for a bounded time, until the machine
is quiet enough to be worth it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from harness.probes.periodic import PeriodicProbe, Row

__all__ = ["MACHINE_ROLE", "QUIET_CORES", "QUIET_WAIT_S", "Load", "MachineLog", "MachineProbe", "Sampler", "settle",
           "wait_until_quiet"]

MACHINE_ROLE = "machine"
QUIET_CORES = 0.5
"""Busy plus stolen CPU, in cores, below which the machine counts as quiet (an idle server stays far below)."""
QUIET_WAIT_S = 60.0
"""Longest wait for a quiet machine before a run that ended ``invalid`` is measured again (:func:`settle`)."""

@dataclass(frozen=True)
class Load:
    """The machine over one interval, in per cent of one core (100 = one core busy the whole interval)."""

    busy_pct: float
    """Every process and the kernel's own work (user, nice, system, irq, softirq), all cores together."""
    steal_pct: float
    """Time the hypervisor gave to something other than this machine while it had work ready (0 off a VM)."""
    idle_pct: float | None = None
    """CPU a normal process could have had at once: idle, waiting for the disk, or running low-priority
    (positive nice) work, which yields to it. None when not measured."""

    @property
    def taken_cores(self) -> float:
        """Cores not available to a new measurement: busy ones and stolen ones."""
        return (self.busy_pct + self.steal_pct) / 100.0


def _times() -> tuple[float, float, float, float]:
    """(busy, steal, spare, total) CPU seconds since boot, all cores summed (spare: see :attr:`Load.idle_pct`)."""
    t = psutil.cpu_times()
    steal = float(getattr(t, "steal", 0.0))
    # iowait counts as idle: a core waiting for the disk could have run a packet.
    busy = sum(float(getattr(t, name, 0.0)) for name in ("user", "nice", "system", "irq", "softirq"))
    # Niced work is busy, but it yields to a normal process at once: it is spare for the run's processes.
    spare = sum(float(getattr(t, name, 0.0)) for name in ("idle", "iowait", "nice"))
    total = float(sum(t)) - float(getattr(t, "guest", 0.0)) - float(getattr(t, "guest_nice", 0.0))
    return busy, steal, spare, total


class Sampler:
    """The machine's load between successive calls to :meth:`load` (the first covers the time since creation)."""

    def __init__(self) -> None:
        self._last = _times()
        self._cores = psutil.cpu_count() or 1

    def load(self) -> Load:
        """The machine's load since the previous call."""
        busy, steal, spare, total = _times()
        last_busy, last_steal, last_spare, last_total = self._last
        self._last = (busy, steal, spare, total)
        elapsed = total - last_total
        if elapsed <= 0:
            return Load(0.0, 0.0)
        # Scaled to cores: ``elapsed`` holds every core's seconds, so a share of it times the cores is cores.
        scale = 100.0 * self._cores / elapsed
        return Load(busy_pct=(busy - last_busy) * scale, steal_pct=(steal - last_steal) * scale,
                    idle_pct=(spare - last_spare) * scale)


class MachineProbe(PeriodicProbe):
    """Writes the machine's :class:`Load` as a ``probes`` row (role ``machine``, ``pid`` 0) every second."""

    def __init__(self, emit: Callable[[list[Row]], None], interval_s: float = 1.0) -> None:
        super().__init__(MACHINE_ROLE, emit, interval_s)
        self._host = socket.gethostname()
        self._sampler: Sampler | None = None

    def prepare(self) -> None:
        """Take the counters' baseline: the first row covers the first interval."""
        self._sampler = Sampler()

    def sample(self) -> list[Row]:
        """The row of the interval since the previous one."""
        if self._sampler is None:  # the baseline failed: take it now, the row comes next interval
            self.prepare()
            return []
        load = self._sampler.load()
        memory = psutil.virtual_memory()
        return [{"ts": time.time(), "host": self._host, "role": MACHINE_ROLE, "pid": 0, "name": "machine",
                 "cpu_pct": round(load.busy_pct, 1), "steal_pct": round(load.steal_pct, 1),
                 "idle_pct": round(load.idle_pct, 1) if load.idle_pct is not None else None,
                 "rss_mb": (memory.total - memory.available) / 2**20, "loop_lag_ms": None}]


class MachineLog:
    """A :class:`MachineProbe` that keeps its rows, for a caller that judges windows of time itself (a
    calibration judging whether a cell was measured on a busy machine)."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.rows: list[Row] = []
        self._probe = MachineProbe(self.rows.extend, interval_s)

    def start(self) -> None:
        """Start sampling."""
        self._probe.start()

    def stop(self) -> None:
        """Stop sampling (the rows stay)."""
        self._probe.stop()

    def steal_pct(self, start: float, end: float) -> float | None:
        """Mean CPU the hypervisor withheld (100 = one core) over the rows of ``start`` .. ``end`` (a row
        describes the interval before its ``ts``); None when none fell there."""
        inside = [r["steal_pct"] for r in list(self.rows) if start < r["ts"] <= end + 0.5]
        return sum(inside) / len(inside) if inside else None


def wait_until_quiet(max_wait_s: float, quiet_cores: float = QUIET_CORES, window_s: float = 2.0,
                     sleep: Callable[[float], None] = time.sleep, sampler: Sampler | None = None
                     ) -> tuple[bool, float, Load]:
    """Wait until the machine's busy and stolen CPU over ``window_s`` is below ``quiet_cores``, at most about
    ``max_wait_s``. Returns whether it got quiet, the seconds waited and the last window's load."""
    sampler = sampler or Sampler()
    waited = 0.0
    while True:
        sleep(window_s)
        waited += window_s
        load = sampler.load()
        if load.taken_cores < quiet_cores:
            return True, waited, load
        if waited >= max_wait_s:
            return False, waited, load


def settle(max_wait_s: float = QUIET_WAIT_S) -> str:
    """Wait for a quiet machine (:func:`wait_until_quiet`) before measuring again; a line saying how it went."""
    quiet, waited, load = wait_until_quiet(max_wait_s)
    state = "quiet" if quiet else "still busy"
    return (f"waited {waited:.0f} s for the machine: {state} ({load.busy_pct:.0f}% of a core busy, "
            f"{load.steal_pct:.0f}% withheld by its hypervisor)")
