"""Network namespaces and veth links that only exist inside this machine.

Local servers that will not use the loopback device (Janus's libnice gathers no ICE candidates on ``lo``)
run inside a namespace of their own, joined to the participants by a veth pair. Both ends get addresses
from 198.18.0.0/16, part of the block RFC 2544 reserves for benchmarking: it is never routed anywhere, so
nothing the harness sends can leave the machine. Each link is a /30 of that block.

Names carry the creating process's pid (``cb<pid>n<k>``), so that a later run can delete what a run
killed with SIGKILL left behind (:func:`remove_stale`). Everything here needs root; without it,
:func:`require_root` raises one line saying so.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import TestbedError

#: The part of the benchmarking block (RFC 2544) this module hands out, one /30 per link.
LINK_BLOCK = ipaddress.ip_network("198.18.0.0/16")
IP_TIMEOUT_S = 10.0
_NAME = re.compile(r"^cb(\d+)n(\d+)$")
_counter = itertools.count(1)


def require_root(what: str, alternative: str) -> None:
    """Raise :class:`TestbedError` unless this process may create namespaces (root, with ``ip``)."""
    if os.geteuid() != 0:
        raise TestbedError(f"{what} needs root (it creates a network namespace); {alternative}")
    if shutil.which("ip") is None:
        raise TestbedError(f"{what} needs the 'ip' command: install Debian's iproute2 package; {alternative}")


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    """Run one ``ip`` command (inside ``namespace`` when given) and return its output; bounded in time."""
    argv = ["ip", *(["-n", namespace] if namespace else []), *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TestbedError(f"'{' '.join(argv)}' did not finish within {IP_TIMEOUT_S:g} s") from None
    if check and done.returncode != 0:
        raise TestbedError(f"'{' '.join(argv)}' failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


@dataclass(frozen=True, slots=True)
class Link:
    """A veth pair between the root namespace (``host_*``) and ``namespace`` (``ns_*``)."""

    namespace: str
    host_ifname: str
    ns_ifname: str
    host_address: str
    ns_address: str
    prefixlen: int = 30

    def __post_init__(self) -> None:
        for address in (self.host_address, self.ns_address):
            if ipaddress.ip_address(address) not in LINK_BLOCK:
                raise ValueError(f"{address} is outside {LINK_BLOCK}, the block links may use")


#: The whole benchmarking block (RFC 2544): every address a link of this module may carry.
BENCHMARK_BLOCK = ipaddress.ip_network("198.18.0.0/15")


@dataclass(frozen=True, slots=True)
class TunLink:
    """A TUN device in ``namespace`` (``ns_*``) whose far end is a user-space process, the impairment wire.

    ``host_address`` is the wire's address in the root namespace, through which the namespace reaches it,
    so that code written for a veth :class:`Link` (``.host_address``, ``.ns_address``) works unchanged.
    """

    namespace: str
    ns_ifname: str
    ns_address: str
    host_address: str
    prefixlen: int = 24

    def __post_init__(self) -> None:
        for address in (self.host_address, self.ns_address):
            if ipaddress.ip_address(address) not in BENCHMARK_BLOCK:
                raise ValueError(f"{address} is outside {BENCHMARK_BLOCK}, the block links may use")


class Namespace:
    """One network namespace with a link to the root namespace; :meth:`delete` removes both.

    The link is a veth pair (:meth:`create`), or a TUN device of the impairment wire (``create(veth=False)``
    and then :meth:`add_tun`). Use it as a context manager, or call :meth:`delete` in a ``finally``: the
    namespace must not outlive the run, also when the run fails.
    """

    def __init__(self, name: str, link: Link | TunLink | None = None) -> None:
        self.name = name
        self._link = link
        self.tun_links: list[TunLink] = []

    @property
    def link(self) -> Link | TunLink:
        """The namespace's (first) link to the root namespace."""
        if self._link is None:
            raise TestbedError(f"namespace {self.name} has no link yet")
        return self._link

    @classmethod
    def create(cls, veth: bool = True) -> Namespace:
        """Create a namespace with ``lo`` up and, unless ``veth`` is False, a veth link on a free /30 of
        :data:`LINK_BLOCK`."""
        remove_stale()
        name = f"cb{os.getpid()}n{next(_counter)}"
        ip("netns", "add", name)
        try:
            if not veth:
                ip("link", "set", "lo", "up", namespace=name)
                return cls(name)
            return cls(name, _add_link(name))
        except BaseException:
            _delete(name)
            raise

    def add_tun(self, ifname: str, address: str, host_address: str, prefixlen: int = 24,
                default_route: bool = False) -> TunLink:
        """Move the TUN device ``ifname`` (opened by the wire in the root namespace) in here and address it.

        ``default_route``: send everything outside the device's subnet to the wire too (participant
        namespaces, whose only way out it is).
        """
        link = TunLink(self.name, ifname, address, host_address, prefixlen)
        ip("link", "set", ifname, "netns", self.name)
        configure_tun(ifname, address, prefixlen, namespace=self.name)
        if default_route:
            ip("route", "add", "default", "dev", ifname, namespace=self.name)
        self.tun_links.append(link)
        if self._link is None:
            self._link = link
        return link

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside this namespace (``ip netns exec`` execs it in place)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def delete(self) -> None:
        """Remove the namespace and its link; never raises (it runs in ``finally`` blocks)."""
        _delete(self.name, self._link.host_ifname if isinstance(self._link, Link) else None)

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


def configure_tun(ifname: str, address: str, prefixlen: int, namespace: str | None = None) -> None:
    """Give a TUN device its address and bring it up; no IPv6 link-local address (the wire routes IPv4)."""
    # Without this the device would send IPv6 neighbour discovery into the wire as soon as it comes up.
    ip("link", "set", ifname, "addrgenmode", "none", namespace=namespace, check=False)
    ip("addr", "add", f"{address}/{prefixlen}", "dev", ifname, namespace=namespace)
    ip("link", "set", ifname, "up", namespace=namespace)


def _add_link(namespace: str) -> Link:
    """Create the veth pair on the first /30 that no interface of this machine uses yet."""
    used = _used_networks()
    suffix = namespace[2:]
    host_if, ns_if = f"cbh{suffix}"[:15], f"cbn{suffix}"[:15]
    for subnet in LINK_BLOCK.subnets(new_prefix=30):
        if subnet in used:
            continue
        host_addr, ns_addr = (str(a) for a in itertools.islice(subnet.hosts(), 2))
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        try:
            ip("link", "set", ns_if, "netns", namespace)
            ip("addr", "add", f"{host_addr}/30", "dev", host_if)
            ip("link", "set", host_if, "up")
            ip("addr", "add", f"{ns_addr}/30", "dev", ns_if, namespace=namespace)
            ip("link", "set", ns_if, "up", namespace=namespace)
            ip("link", "set", "lo", "up", namespace=namespace)
        except TestbedError:
            ip("link", "del", host_if, check=False)
            raise
        return Link(namespace, host_if, ns_if, host_addr, ns_addr)
    raise TestbedError(f"no free /30 left in {LINK_BLOCK} for a test link")


def _used_networks() -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The /30s of :data:`LINK_BLOCK` that an interface of the root namespace already has."""
    used: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    for line in ip("-o", "-4", "addr", "show").splitlines():
        match = re.search(r"inet (\S+)", line)
        if match:
            iface = ipaddress.ip_interface(match.group(1))
            if iface.ip in LINK_BLOCK:
                used.add(ipaddress.ip_network(f"{iface.ip}/30", strict=False))
    return used


def _delete(name: str, host_ifname: str | None = None) -> None:
    # Deleting the namespace destroys its veth end, and with it the root end; the explicit delete covers a
    # link whose namespace end never moved.
    ip("netns", "delete", name, check=False)
    if host_ifname:
        ip("link", "del", host_ifname, check=False)


def remove_stale() -> list[str]:
    """Delete namespaces this module created for processes that no longer exist; return their names."""
    removed: list[str] = []
    if shutil.which("ip") is None:
        return removed
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        match = _NAME.match(name)
        if match and not _alive(int(match.group(1))):
            _delete(name, f"cbh{name[2:]}"[:15])
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
