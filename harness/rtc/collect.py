"""Collecting ended peer connections soon after they end, not whenever CPython's collector gets round to it.

Why. An aiortc ``RTCPeerConnection`` is a web of reference cycles (its transports, senders and receivers
point back at it through event handlers and bound methods), so a closed one is never freed by reference
counting: it waits for a full (generation 2) collection. Processes that handle many packets make those rare
on purpose (``harness.host.media_host`` raises the collector's thresholds: full scans stop the event loop),
and CPython counts objects, not bytes: what a closed connection holds outside Python's object count (DTLS and
SRTP contexts, codec contexts, frame buffers) is not seen. Under churn the load generator then grew by 25 MB
a minute, stepping up at every late full collection (``benchmarks/churn.py``, 2026-12-06, Locust and media
host: 399 -> 527 MB in 5 minutes; with a full collection every 15 s, 402 -> 429 MB beside it).

What. Code that ends a session (a participant leaves, a subscription or a server's session is dropped) calls
:func:`session_ended`. :class:`CycleCollector` then runs one full collection on the process's event loop at
its next tick (every :data:`INTERVAL_S`), so it never races a callback of that loop, and keeps the longest
pause since it was last read, for the process's probes: a collection stops the loop, and a run must show what
that cost. A run where nobody leaves gets no extra collection at all.

And the memory back. What a collection frees goes back to the C allocator, and glibc's keeps it: freed
chunks between live ones, in one heap per thread that allocated (the media host's codec and executor threads
make many), are not returned to the system. After the fixes above the load generator still grew 2.4 MB a
minute under churn; the Python heap did not (tracemalloc between minutes 6 and 18 of a churn run: 7.4 MB
traced and shrinking, while the media host's RSS rose to 302 MB) and one ``malloc_trim(0)`` then took the media
host from 302 to 202 MB (2026-12-06, 10:06 UTC). So each collection after a session ended is followed by
:func:`release_free_heap`, inside the measured pause.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import time
from collections.abc import Callable

__all__ = ["INTERVAL_S", "CycleCollector", "release_free_heap", "session_ended"]

log = logging.getLogger(__name__)

INTERVAL_S = 10.0
"""Most often a collection runs: short enough that ended sessions do not pile up (a churned participant every
few seconds), long enough that the pauses (a few ms to tens of ms) stay rare."""

_ended = False


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc's; musl and other C libraries have none
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim  # type: ignore[no-any-return]


_malloc_trim = _find_malloc_trim()


def release_free_heap() -> bool:
    """Give the C allocator's free memory back to the system (glibc's ``malloc_trim(0)``: free pages of every
    heap, not only the top); False where the C library has no such call."""
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


def session_ended() -> None:
    """Say that a session (a peer connection and what hangs on it) ended in this process: collect soon."""
    global _ended
    _ended = True


class CycleCollector:
    """A full garbage collection at most every ``interval_s``, when a session ended; see the module docstring."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.collections = 0
        """Full collections run so far."""
        self.freed = 0
        """Unreachable objects found by them, in all."""
        self.longest_pause_ms = 0.0
        """The longest pause of them, in ms."""
        self._max_pause_s: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, freeze: bool = False) -> None:
        """Start watching for ended sessions (call from a coroutine on the process's loop). ``freeze``: first move
        everything alive now (modules, the loop) into CPython's permanent generation (``gc.freeze``), never
        scanned again, so that each pause is spent on the objects of sessions; for a process started empty,
        where nothing alive at start becomes garbage later."""
        if self._task is None:
            if freeze:
                gc.collect()
                gc.freeze()
            self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        """Stop (CPython's own collections go on)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def take_pause_ms(self) -> float | None:
        """The longest pause of a collection since the last call, in ms (None: none ran meanwhile)."""
        pause, self._max_pause_s = self._max_pause_s, None
        return None if pause is None else pause * 1000

    def collect(self) -> int:
        """One full collection now, then the freed memory back to the system (:func:`release_free_heap`);
        returns the unreachable objects it found."""
        global _ended
        _ended = False
        started = time.perf_counter()
        found = gc.collect()
        release_free_heap()
        pause = time.perf_counter() - started
        self._max_pause_s = pause if self._max_pause_s is None else max(self._max_pause_s, pause)
        self.collections += 1
        self.freed += found
        self.longest_pause_ms = max(self.longest_pause_ms, pause * 1000)
        return found

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if not _ended:
                continue
            try:
                self.collect()
            except Exception:  # a finalizer that raises must not end the watch
                log.exception("a garbage collection after a session ended failed")
