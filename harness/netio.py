"""Datagram reading that keeps up with media: the one place where the harness bends asyncio's UDP transport.

asyncio's selector event loop reads **one** datagram per socket each time the socket is reported readable,
that is once per loop iteration. A media host runs dozens of tasks, so an iteration takes milliseconds while a
640x360 video stream brings a packet every few milliseconds per socket: packets then wait in the kernel's
receive buffer. Measured on the default meeting (3-4 participants, full mesh): the loopback receive queues
grew by ~35 KB a second, latency by ~170 ms a second, until the buffers overflowed and packets were lost —
the load generator measuring itself. Reading every queued datagram (up to a bound, so one flooded socket
cannot starve the others) on each wake-up removes that queue.

:func:`install` replaces ``_SelectorDatagramTransport._read_ready`` for the process; it is idempotent and
changes nothing else of the transport. Remove it when asyncio reads datagrams in batches itself.
"""

from __future__ import annotations

import asyncio.selector_events as _selector_events
from typing import Any

MAX_DATAGRAMS_PER_WAKEUP = 64

_Transport: Any = _selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]


def _read_ready_batched(self: Any) -> None:
    # Same error handling as asyncio's own _read_ready, repeated until the socket is empty.
    for _ in range(MAX_DATAGRAMS_PER_WAKEUP):
        if self._conn_lost:
            return
        try:
            data, addr = self._sock.recvfrom(self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
            return
        self._protocol.datagram_received(data, addr)


def install() -> None:
    """Make every asyncio datagram transport of this process drain its socket on each wake-up."""
    _Transport._read_ready = _read_ready_batched
