"""Process probes: CPU and memory of the system under test, sampled once a second into ``probes``.

The load generator's processes probe themselves (the Locust processes in ``harness.loadgen.plugin``, the media
hosts in ``harness.host.media_host``, which also measure their event-loop lag), so that a distributed run needs no
probing across machines. This module watches processes the controller knows by pid: local servers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence

import psutil

from harness.probes.periodic import PeriodicProbe, Row


def sample_processes(procs: dict[int, psutil.Process], role: str, host: str) -> list[Row]:
    """One row per live process; processes that are gone are dropped from ``procs``."""
    rows = []
    now = time.time()
    for pid, proc in list(procs.items()):
        try:
            with proc.oneshot():
                rows.append({"ts": now, "host": host, "role": role, "pid": pid, "name": proc.name(),
                             "cpu_pct": proc.cpu_percent(None), "rss_mb": proc.memory_info().rss / 2**20,
                             "loop_lag_ms": None})
        except psutil.Error:
            procs.pop(pid, None)
    return rows


class ProcessProbe(PeriodicProbe):
    """Samples a set of processes and (unless ``children`` is false) their children every ``interval_s`` in a
    thread."""

    def __init__(self, pids: Sequence[int], role: str, emit: Callable[[list[Row]], None],
                 interval_s: float = 1.0, children: bool = True) -> None:
        super().__init__(role, emit, interval_s)
        self._roots = list(pids)
        self._children = children
        self._procs: dict[int, psutil.Process] = {}
        self._host = socket.gethostname()

    def follow(self, pids: Sequence[int]) -> None:
        """Sample ``pids`` (and their children) from now on: a restarted server runs under new pids."""
        self._roots = list(pids)

    def prepare(self) -> None:
        """Find the processes, so that their first CPU figure covers the first interval."""
        self._discover()

    def sample(self) -> list[Row]:
        """One row per live process."""
        self._discover()
        return sample_processes(self._procs, self.name, self._host)

    def _discover(self) -> None:
        # Servers fork workers (Janus threads are fine, but others use processes): follow children.
        for pid in self._roots:
            try:
                root = psutil.Process(pid)
                for proc in [root, *(root.children(recursive=True) if self._children else [])]:
                    if proc.pid not in self._procs:
                        proc.cpu_percent(None)
                        self._procs[proc.pid] = proc
            except psutil.Error:
                continue
