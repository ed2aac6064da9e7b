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

The same wrapper also gives every datagram socket a larger receive buffer when it is created
(:data:`RCVBUF_BYTES`): a burst that arrives while the loop is busy waits in the kernel instead of being
dropped. Linux caps ``SO_RCVBUF`` at ``net.core.rmem_max`` (208 KiB by default) unless the process may use
``SO_RCVBUFFORCE`` (CAP_NET_ADMIN, e.g. root); :data:`granted_rcvbuf` records what the kernel gave, and
datagrams dropped anyway are counted per socket (``harness.rtc.udpstats``) and make a run invalid.
"""

from __future__ import annotations

import asyncio.selector_events as _selector_events
import socket
from collections.abc import Callable
from typing import Any

from harness.rtc import rtcparrival

MAX_DATAGRAMS_PER_WAKEUP = 64
RCVBUF_BYTES = 4 * 2**20
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

granted_rcvbuf: int | None = None
"""Receive buffer (bytes, as the kernel reports it) of the last datagram socket made; None before any."""

_Transport: Any = _selector_events._SelectorDatagramTransport  # type: ignore[attr-defined]


def _read_ready_batched(self: Any) -> None:
    # Same error handling as asyncio's own _read_ready, repeated until the socket is empty.
    stamped = getattr(self, "_confbench_stamped", False)
    for _ in range(MAX_DATAGRAMS_PER_WAKEUP):
        if self._conn_lost:
            return
        try:
            if stamped:  # the kernel's arrival time comes along (harness.rtc.rtcparrival: RTCP only)
                data, ancillary, _flags, addr = self._sock.recvmsg(self.max_size, rtcparrival.ANCILLARY_BYTES)
                rtcparrival.note_arrival(data, ancillary)
            else:
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


def take_reads(transport: Any, reader: Callable[..., None], *args: Any) -> bool:
    """Have ``reader(*args)`` called in place of ``transport``'s own read whenever its socket is readable (the
    lean receive path reads its datagrams into a buffer of its own: ``harness.rtc.lean_receiver``). The reader
    then owns the socket's reads, error handling included. Only for asyncio's selector datagram transports
    (uvloop's are left alone); returns whether it was done. Call it once the transport is connected: asyncio
    registers its own reader with ``call_soon`` when the transport is made, which would replace this one."""
    if not isinstance(transport, _Transport) or transport._conn_lost:
        return False
    transport._loop._add_reader(transport._sock_fd, reader, *args)
    return True


def raise_rcvbuf(sock: socket.socket, size: int = RCVBUF_BYTES) -> int:
    """Ask for a ``size``-byte receive buffer (forced where the process may); returns what the kernel gave."""
    for option in (SO_RCVBUFFORCE, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            break
        except OSError:
            continue
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


_original_init = _Transport.__init__


def _init_with_buffer(self: Any, *args: Any, **kwargs: Any) -> None:
    global granted_rcvbuf
    _original_init(self, *args, **kwargs)
    try:
        granted_rcvbuf = raise_rcvbuf(self._sock)
    except OSError:
        pass  # a socket that refuses options keeps its default buffer; the drop counters still watch it
    if rtcparrival.installed():
        self._confbench_stamped = rtcparrival.reads_with_timestamps(self._sock)


def install() -> None:
    """Make every asyncio datagram transport of this process drain its socket on each wake-up, and give
    new ones a large receive buffer."""
    _Transport._read_ready = _read_ready_batched
    _Transport.__init__ = _init_with_buffer
