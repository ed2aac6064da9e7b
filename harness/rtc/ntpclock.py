"""NTP time from ``time.time()``: the one place where the harness replaces aiortc's clock functions.

aiortc computes the NTP time through ``datetime`` arithmetic (``aiortc.clock``: an aware ``datetime.now``,
a subtraction from 1900-01-01 and ``timedelta.total_seconds``), and its senders do so for every RTP packet
(the abs-send-time header extension, the RTCP sender-report clock) and its DTLS transport for every packet
received (the arrival time in ms). On a media host sending and receiving thousands of packets a second that
was a few per cent of its time for a value the wall clock gives directly. :func:`install` replaces
``current_ntp_time`` and ``current_ms`` with equal values computed from ``time.time()``; aiortc reads them
through the module (``clock.current_ntp_time()``), so the replacement reaches every caller. Remove it when
aiortc computes its clock cheaply.
"""

from __future__ import annotations

import time

from aiortc import clock

__all__ = ["current_ms", "current_ntp_time", "install"]

NTP_UNIX_OFFSET_S = 2_208_988_800
"""Seconds from the NTP epoch (1900-01-01) to the UNIX epoch (1970-01-01)."""


def current_ntp_time() -> int:
    """Now as a 64-bit NTP timestamp (32 bits of seconds since 1900, 32 bits of fraction)."""
    now = time.time()
    seconds = int(now)
    return ((seconds + NTP_UNIX_OFFSET_S) << 32) | int((now - seconds) * 4294967296.0)


def current_ms() -> int:
    """Milliseconds since the NTP epoch, as ``aiortc.clock.current_ms``."""
    return int((time.time() + NTP_UNIX_OFFSET_S) * 1000)


def install() -> None:
    """Make aiortc's clock functions compute from ``time.time()`` (idempotent)."""
    clock.current_ntp_time = current_ntp_time
    clock.current_ms = current_ms
