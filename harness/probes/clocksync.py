"""Is this host's clock synchronized? Latency across hosts is only as good as their clocks.

Glass-to-glass latency subtracts the sender's capture time from the receiver's clock. On one host both are
the same clock; across hosts (a distributed run) they are as far apart as the hosts' clocks, so every worker
reports its clock's state and the manifest lists them (DESIGN.md §3: never mix clocks silently).

The kernel knows: ``adjtimex(2)`` (read-only, no privilege needed) says whether a time daemon (chrony, ntpd,
systemd-timesyncd) keeps the clock synchronized (``STA_UNSYNC`` clear, state ``TIME_OK``) and with which error
bounds. ``chronyc tracking`` adds the daemon's own view when chrony is there. Where neither answers (not
Linux), the state is ``unknown``, and it says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from typing import Any

__all__ = ["clock_sync_state"]

STA_UNSYNC = 0x0040
TIME_ERROR = 5
STATES = ("synchronized", "unsynchronized", "unknown")


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h> on Linux (64-bit longs); the tail is padding the kernel may use.
    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]


def _adjtimex() -> dict[str, Any] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()  # modes 0: read only
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return {"state": state, "unsync": bool(timex.status & STA_UNSYNC), "maxerror_us": int(timex.maxerror),
            "esterror_us": int(timex.esterror)}


def _chrony() -> str | None:
    if shutil.which("chronyc") is None:
        return None
    try:
        out = subprocess.run(["chronyc", "-n", "tracking"], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.stdout.splitlines())}
    if out.returncode != 0 or "System time" not in lines:
        return None
    return f"chrony: {lines.get('Reference ID', '?')}, system time {lines['System time']}, " \
           f"leap status {lines.get('Leap status', '?')}"


def clock_sync_state() -> dict[str, Any]:
    """``{"state": "synchronized" | "unsynchronized" | "unknown", "detail": str, ...}`` for this host."""
    kernel = _adjtimex()
    chrony = _chrony()
    if kernel is None:
        return {"state": "unknown", "detail": chrony or "the kernel clock state cannot be read (adjtimex)"}
    synced = not kernel["unsync"] and kernel["state"] != TIME_ERROR
    detail = (f"adjtimex: {'synchronized' if synced else 'not synchronized (STA_UNSYNC)'}, estimated error "
              f"{kernel['esterror_us']} us, maximum error {kernel['maxerror_us']} us")
    if chrony:
        detail += f"; {chrony}"
    return {"state": "synchronized" if synced else "unsynchronized", "detail": detail,
            "esterror_us": kernel["esterror_us"], "maxerror_us": kernel["maxerror_us"]}


def combine(workers: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[str]]:
    """The run's ``clock_sync`` from the processes that hosted participants, and reasons to mark it invalid.

    One host: one clock, whatever its state (None: the manifest keeps its single-host entry). Several hosts:
    ``synchronized`` only when every host says so; otherwise the latencies between hosts compare different
    clocks, and that is a reason for ``invalid``.
    """
    hosts: dict[str, dict[str, Any]] = {}
    for worker in workers:
        host = str(worker.get("host") or "?")
        raw = worker.get("clock_sync")
        sync: dict[str, Any] = raw if isinstance(raw, dict) else {}
        hosts.setdefault(host, {"state": sync.get("state", "unknown"), "detail": sync.get("detail", "")})
    if len(hosts) <= 1:
        return None, []
    states = {h: v["state"] for h, v in hosts.items()}
    if all(state == "synchronized" for state in states.values()):
        return {"state": "synchronized", "detail": "every host's clock is synchronized", "hosts": hosts}, []
    bad = sorted(h for h, state in states.items() if state != "synchronized")
    state = "unsynchronized" if any(states[h] == "unsynchronized" for h in bad) else "unknown"
    reason = (f"participants ran on {len(hosts)} hosts and the clocks of {', '.join(bad)} are not known to be "
              "synchronized: latencies between hosts compare different clocks")
    return {"state": state, "detail": reason, "hosts": hosts}, [reason]
