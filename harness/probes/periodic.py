"""What every probe of the controller shares: a thread that takes a sample every interval until stopped.

The controller's probes (local server processes, the controller itself, the whole machine, a remote server's
metrics endpoint) differ only in what a sample is. :class:`PeriodicProbe` owns the thread, the stop, and the
rule for failures: a sample or a write that fails is logged (with its traceback the first time, a line after
that) and counted, and the probe goes on with the next interval. A probe that stopped at its first failure
would leave the rest of the run without its rows, silently; one whose thread died of an exception would print
a traceback on the user's terminal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["PeriodicProbe", "Row"]

log = logging.getLogger(__name__)

Row = dict[str, Any]


class PeriodicProbe:
    """Calls :meth:`sample` every ``interval_s`` in a thread and hands its rows to ``emit``.

    Subclasses implement :meth:`sample` and may override :meth:`prepare` (run once in the thread before the
    first interval, e.g. to take the baseline of a counter).
    """

    def __init__(self, name: str, emit: Callable[[list[Row]], None], interval_s: float = 1.0,
                 stop_timeout_s: float = 5.0) -> None:
        self.name = name
        """Names the probe in logs and its thread (a process probe's is the role its rows carry)."""
        self._emit = emit
        self._interval_s = interval_s
        self._stop_timeout_s = stop_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{name}", daemon=True)
        self.failures = 0
        """Samples or writes that failed so far."""
        self.finished = threading.Event()
        """Set when the thread has ended."""

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait (boundedly) for the thread."""
        self._stop.set()
        self._thread.join(timeout=self._stop_timeout_s)

    def prepare(self) -> None:
        """Run once in the thread before the first interval (nothing by default)."""

    def sample(self) -> list[Row]:
        """The rows of one interval (none is fine)."""
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self._guarded(self.prepare)
            while not self._stop.wait(self._interval_s):
                self._guarded(self._sample_and_emit)
        finally:
            self.finished.set()

    def _sample_and_emit(self) -> None:
        rows = self.sample()
        if rows:
            self._emit(rows)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:
            self.failures += 1
            if self.failures == 1:
                log.warning("probe %s failed; it goes on with the next interval", self.name, exc_info=True)
            else:
                log.warning("probe %s failed again (%d times): %s", self.name, self.failures, exc)
