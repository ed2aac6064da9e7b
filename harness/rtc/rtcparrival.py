"""Round-trip time from the kernel's arrival time of RTCP: the one place where the harness bends aiortc's RTT.

aiortc's sender computes RTT from a receiver report as ``time.time() - LSR time - DLSR`` when it *handles*
the report, on the event loop. On a busy load generator the loop handles a datagram tens of milliseconds
after it arrived, so a native participant's RTT grew with its own event-loop lag (21-27 ms against 3-4 ms
measured by Chromium in the same room): the generator measuring itself.

Here every datagram socket of the process asks the kernel to timestamp arrivals (``SO_TIMESTAMPNS``), the
batched reader (:mod:`harness.rtc.netio`) keeps the timestamp of each datagram that looks like SRTCP (RTCP
packet types 200-207 in the clear header), aioice's ``Connection.recv`` hands it over when the DTLS transport
takes that datagram, and while the transport handles it aiortc's sender reads the clock through a stand-in
for its ``time`` module that returns the arrival time. Everything else in aiortc keeps the real clock.

:func:`install` must run before any connection starts (the media host calls it with ``netio.install``).
Remove it when aiortc timestamps RTCP on arrival itself.
"""

from __future__ import annotations

import socket
import struct
import time
import types
from collections import OrderedDict
from typing import Any

__all__ = ["arrival_of", "install", "installed", "note_arrival", "reads_with_timestamps"]

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ANCILLARY_BYTES = socket.CMSG_SPACE(16)  # struct timespec: two 64-bit fields
MAX_PENDING = 1024
"""Arrival times kept for datagrams not yet handled; RTCP is a few packets a second per connection."""

_pending: OrderedDict[bytes, float] = OrderedDict()
_taken: float | None = None  # arrival of the datagram aioice last handed to a DTLS transport (RTCP only)
_handling: float | None = None  # while a DTLS transport handles that datagram: its arrival time
_installed = False


def reads_with_timestamps(sock: socket.socket) -> bool:
    """Ask the kernel to timestamp ``sock``'s arrivals; False when it refuses (then nothing changes)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return True
    except OSError:
        return False


def arrival_of(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's arrival time (UNIX seconds) in a ``recvmsg`` ancillary list, None when absent."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", data)
            return seconds + nanoseconds / 1e9
    return None


def note_arrival(data: bytes, ancillary: list[tuple[int, int, bytes]]) -> None:
    """Keep the kernel's arrival time of ``data`` (from its ``recvmsg`` ancillary data) when it looks like SRTCP,
    the only datagrams whose time matters here. Called for every datagram read: the cheap test comes first."""
    if len(data) >= 8 and 199 < data[1] < 208 and 127 < data[0] < 192:
        arrival = arrival_of(ancillary)
        if arrival is not None:
            _pending[data] = arrival
            if len(_pending) > MAX_PENDING:
                _pending.popitem(last=False)


class _SenderClock(types.ModuleType):
    """Stands in for the ``time`` module inside ``aiortc.rtcrtpsender``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def time() -> float:
        return _handling if _handling is not None else time.time()


def installed() -> bool:
    """Whether :func:`install` ran in this process (then new datagram sockets are timestamped)."""
    return _installed


def install() -> None:
    """Route RTCP arrival times to aiortc's RTT computation (idempotent; before any connection starts)."""
    global _installed
    if _installed:
        return
    from aioice.ice import Connection
    from aiortc import rtcdtlstransport, rtcrtpsender

    original_recv = Connection.recv
    original_handle = rtcdtlstransport.RTCDtlsTransport._handle_rtcp_data

    async def recv(self: Any) -> bytes:
        global _taken
        data: bytes = await original_recv(self)
        _taken = _pending.pop(data, None) if _pending else None
        return data

    async def handle_rtcp_data(self: Any, data: bytes) -> None:
        # Called right after the transport took the datagram from recv() and unprotected it.
        global _handling, _taken
        _handling, _taken = _taken, None
        try:
            await original_handle(self, data)
        finally:
            _handling = None

    Connection.recv = recv  # type: ignore[method-assign]
    rtcdtlstransport.RTCDtlsTransport._handle_rtcp_data = handle_rtcp_data  # type: ignore[method-assign]
    rtcrtpsender.time = _SenderClock("time")  # type: ignore[attr-defined]
    _installed = True
