"""A server given by URL that runs on this machine: found by the port it listens on, so it is probed too.

A run against ``--system janus=ws://127.0.0.1:8188`` (a server the user started) has no pid from the harness,
so the server's CPU was not measured, and a machine it saturated together with the generator looked busy with
work outside the run (``harness.analysis.health.other_work``). When the URL's host is a loopback address, the
processes listening on its port are the server: their pids are probed like a started server's, never
stopped or restarted (faults stay for servers confbench started). A server in another network namespace, or on
another machine, is not visible here and is left alone.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

import psutil

__all__ = ["listening_pids"]

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def listening_pids(url: str) -> tuple[int, ...]:
    """The pids listening on ``url``'s port when its host is a loopback address (not this process); else ()."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return ()
    if host is None or port is None:
        return ()
    try:
        if not ipaddress.ip_address(host).is_loopback:
            return ()
    except ValueError:
        if host != "localhost":
            return ()
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return ()
    pids = {c.pid for c in connections
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}
    pids.discard(os.getpid())
    return tuple(sorted(pids))
