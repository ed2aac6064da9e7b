"""UDP datagrams the kernel dropped because a receive buffer was full: the load generator's own loss.

Two counts, both Linux-only (elsewhere they read as ``None``):

- :func:`rcvbuf_errors`: ``Udp: RcvbufErrors`` (and ``Udp6:``) of ``/proc/net/snmp``: every datagram dropped
  for a full receive buffer in this network namespace, whoever's socket it was. With a local server under
  test that includes the server's drops, so it is recorded, not blamed on the generator.
- :class:`SocketDrops`: the ``drops`` column of ``/proc/net/udp`` and ``/proc/net/udp6`` for the sockets this
  process holds (found through ``/proc/self/fd``): datagrams the kernel threw away because *this* process
  did not read them in time. That is generator-induced loss, and the run is invalid when it happens.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SocketDrops", "rcvbuf_errors"]

SNMP = (Path("/proc/net/snmp"), Path("/proc/net/snmp6"))
REFRESH_EVERY = 30


def rcvbuf_errors(snmp: Path = SNMP[0], snmp6: Path = SNMP[1]) -> int | None:
    """UDP receive-buffer errors of this network namespace so far (IPv4 + IPv6), or None where unknown."""
    total = None
    try:
        lines = snmp.read_text().splitlines()
    except OSError:
        return None
    udp = [line.split() for line in lines if line.startswith("Udp:")]
    if len(udp) >= 2 and "RcvbufErrors" in udp[0]:
        total = int(udp[1][udp[0].index("RcvbufErrors")])
    try:
        for line in snmp6.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "Udp6RcvbufErrors":
                total = (total or 0) + int(value.strip())
    except (OSError, ValueError):
        pass
    return total


def _socket_inodes(fd_dir: Path, known: dict[str, int | None]) -> set[int]:
    """Inodes of the sockets among ``fd_dir``'s descriptors; ``known`` caches descriptor -> inode (None: not a
    socket), so only new descriptors cost a ``readlink`` (a media host holds hundreds)."""
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return set()
    for gone in set(known) - set(names):
        del known[gone]
    for name in names:
        if name in known:
            continue
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue  # closed between listing and reading
        known[name] = int(target[8:-1]) if target.startswith("socket:[") else None
    return {inode for inode in known.values() if inode is not None}


def _drops_by_inode(tables: tuple[Path, ...], inodes: set[int]) -> dict[int, int]:
    drops: dict[int, int] = {}
    for table in tables:
        try:
            lines = table.read_text().splitlines()
        except OSError:
            continue
        header = lines[0].split() if lines else []
        # The header names fewer columns than the rows have (tx_queue:rx_queue and tr:tm->when are one name
        # each but two fields); "drops" is the last field and "inode" the tenth either way.
        for line in lines[1:]:
            fields = line.split()
            if len(fields) < 10 or not header:
                continue
            inode = int(fields[9])
            if inode in inodes:
                drops[inode] = int(fields[-1])
    return drops


class SocketDrops:
    """Datagrams dropped on this process's UDP sockets: :meth:`delta` since the previous call."""

    def __init__(self, fd_dir: Path = Path("/proc/self/fd"),
                 tables: tuple[Path, ...] = (Path("/proc/net/udp"), Path("/proc/net/udp6"))) -> None:
        self._fd_dir = fd_dir
        self._tables = tables
        self._last: dict[int, int] = {}
        self._fds: dict[str, int | None] = {}
        self._calls = 0
        self.available = all(p.exists() for p in (fd_dir, *tables[:1]))

    def delta(self) -> int | None:
        """Drops on the process's sockets since the last call (a new socket counts all of its own)."""
        if not self.available:
            return None
        self._calls += 1
        if self._calls % REFRESH_EVERY == 0:
            self._fds.clear()  # a descriptor number reused by another socket is noticed within this many calls
        now = _drops_by_inode(self._tables, _socket_inodes(self._fd_dir, self._fds))
        total = sum(max(count - self._last.get(inode, 0), 0) for inode, count in now.items())
        self._last = now
        return total
