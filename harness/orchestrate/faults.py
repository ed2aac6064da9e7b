"""A run's server faults, carried out on time: the server under test killed, or restarted, mid-run.

The scenario plans them (``[[timeline]]``, :mod:`harness.scenario.faults`); the system does them
(:meth:`harness.systems.base.System.server_fault`); this module times them from a thread of the controller
and records each as an ``events`` row:

- ``server_kill`` at the kill (detail: ``at_s``);
- ``server_restart`` once the server answers again (detail: ``at_s``, ``killed_ts``, ``down_ms`` from the kill
  to the server answering again, ``ok``, and ``error`` when it did not come back).

While a fault is under way the run must not take the server's absence for a crash: :attr:`ServerFaults.expected_down`
says so, and :attr:`ServerFaults.pids` are the server's processes now (a restarted server has new ones).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import HarnessError, SystemError_
from harness.scenario.faults import ServerFault
from harness.systems.base import System

log = logging.getLogger(__name__)

EventsFn = Callable[[list[dict[str, Any]]], None]


def check_support(system: System, faults: Sequence[ServerFault], url: str | None) -> None:
    """One line (``SystemError_``) before anything starts when ``system`` cannot carry out ``faults``."""
    if not faults:
        return
    if type(system).server_fault is System.server_fault:
        raise SystemError_(f"the scenario restarts or kills the server, and the {system.name} system has no "
                           "server confbench could restart (its [[timeline]] needs reference, janus or livekit)")
    if url is not None:
        raise SystemError_(f"the scenario restarts or kills the server: confbench can only do that to a server it "
                           f"started, not to the one at {url} (name the system without a URL)")


class ServerFaults:
    """Carries out ``faults`` on ``system``'s server at their times, counted from ``t0`` (UNIX seconds)."""

    def __init__(self, system: System, faults: Sequence[ServerFault], pids: Sequence[int], t0: float,
                 on_events: EventsFn, on_pids: Callable[[tuple[int, ...]], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._system = system
        self._faults = sorted(faults, key=lambda f: f.at_s)
        self._t0 = t0
        self._on_events = on_events
        self._on_pids = on_pids
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-faults", daemon=True)
        self._lock = threading.Lock()
        self._pids = tuple(pids)
        self._down = False
        self._started = False
        self.errors: list[str] = []
        """Faults that could not be carried out (the run is then a failure: its plan did not happen)."""

    @property
    def pids(self) -> tuple[int, ...]:
        """The server's processes now."""
        with self._lock:
            return self._pids

    @property
    def expected_down(self) -> bool:
        """Whether the server is down on purpose (killed, or between a restart's kill and its answer)."""
        with self._lock:
            return self._down

    def watched(self) -> tuple[int, ...]:
        """The server processes that must be running now: none while it is down on purpose (read together,
        so that a restart finishing in between cannot make the old, killed pid look like a crash)."""
        with self._lock:
            return () if self._down else self._pids

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called."""
        return self._started

    def start(self) -> None:
        """Start timing the faults (nothing to do when there are none)."""
        self._started = True
        if self._faults:
            self._thread.start()

    def stop(self) -> list[str]:
        """Stop (a fault under way finishes first, bounded by the system's own timeouts); returns the errors."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        return list(self.errors)

    def _run(self) -> None:
        for fault in self._faults:
            wait = self._t0 + fault.at_s - self._clock()
            if self._stop.wait(max(wait, 0.0)):
                return
            self._carry_out(fault)
        # A restarted server was started from this thread, and it dies with the thread that started it
        # (PR_SET_PDEATHSIG, harness.probes.procs.die_with_parent, follows the forking thread): stay until the
        # run ends.
        self._stop.wait()

    def _carry_out(self, fault: ServerFault) -> None:
        with self._lock:
            self._down = True
        killed = self._clock()
        if fault.action == "kill":
            self._on_events([{"ts": killed, "kind": "server_kill", "participant": None,
                              "detail": {"at_s": fault.at_s}}])
        detail: dict[str, Any] = {"at_s": fault.at_s, "down_s": fault.down_s}
        try:
            pids = self._system.server_fault(fault.action, fault.down_s)
        except (HarnessError, NotImplementedError, OSError) as exc:
            # The server is left as the fault left it; the run goes on and measures what follows.
            message = f"server {fault.action} at {fault.at_s:g} s failed: {exc}"
            log.warning("%s", message)
            self.errors.append(message)
            detail.update(ok=False, error=str(exc))
            if fault.action == "restart":
                self._on_events([{"ts": self._clock(), "kind": "server_restart", "participant": None,
                                  "detail": detail}])
            return
        with self._lock:
            self._pids = pids
            self._down = fault.action == "kill"
        if self._on_pids is not None:
            self._on_pids(pids)
        if fault.action == "restart":
            back = self._clock()
            detail.update(ok=True, down_ms=round((back - killed) * 1000, 1), killed_ts=killed)
            self._on_events([{"ts": back, "kind": "server_restart", "participant": None, "detail": detail}])
