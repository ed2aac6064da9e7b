"""The impaired network's interface: what every impairment backend provides, and where a group lives.

Both backends (:mod:`harness.testbed.netem` and :mod:`harness.testbed.wire_control`) implement
:class:`ImpairedNetwork`; :mod:`harness.testbed.impairment` chooses one. The interface lives apart from the
choice so that the backends import it without importing the module that imports them.
"""

from __future__ import annotations

import abc
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

from harness.errors import TestbedError
from harness.scenario.network import Shape
from harness.testbed import netns

__all__ = ["GroupPort", "ImpairedNetwork"]


@dataclass(frozen=True, slots=True)
class GroupPort:
    """Where one participant group lives: its namespace and its address there."""

    group: str
    namespace: str
    address: str


class ImpairedNetwork(abc.ABC):
    """The network of one run (see the module docstring); :meth:`close` removes everything it made."""

    backend: str = ""

    def __init__(self, subnet: ipaddress.IPv4Network) -> None:
        self.subnet = subnet
        hosts = subnet.hosts()
        self.root_address = str(next(hosts))
        self._free = hosts
        self.ports: dict[str, GroupPort] = {}
        self.namespaces: list[netns.Namespace] = []
        self.reason = ""
        """Why this backend was chosen (recorded in the manifest)."""

    @classmethod
    def start(cls, subnet: ipaddress.IPv4Network, groups: Sequence[str]) -> Self:
        """The network with a shaped-to-be link per group and one for the root namespace; nothing is shaped
        yet. Whatever was made is removed again when starting fails."""
        network = cls(subnet)
        try:
            network._start(groups)
        except BaseException:
            network.close()
            raise
        return network

    @abc.abstractmethod
    def _start(self, groups: Sequence[str]) -> None:
        """Make the namespaces, links and anything else the backend needs (called once, by :meth:`start`)."""

    def next_address(self) -> str:
        """A free address of this network."""
        try:
            return str(next(self._free))
        except StopIteration:
            raise TestbedError(f"no address left in {self.subnet} (at most 253 groups and servers)") from None

    @abc.abstractmethod
    def set_shapes(self, group: str, up: Shape, down: Shape) -> None:
        """Shape ``group``'s link from now on."""

    @abc.abstractmethod
    def attach(self, namespace: netns.Namespace, owns: Sequence[str] = ()) -> str:
        """Connect a server's namespace (unshaped) and return its address here; ``owns``: its other
        addresses (e.g. its veth address), which groups then reach through this link too."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> dict[str, list[dict[str, Any]]] | None:
        """Wait up to ``timeout`` s for the next second of measurements: rows per table, or None."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop shaping and remove the namespaces and devices; never raises."""

    def layout(self) -> dict[str, Any]:
        """Where groups live, as plain data (``network.json`` for the Locust processes, and the manifest)."""
        return {"backend": self.backend, "reason": self.reason, "subnet": str(self.subnet),
                "root_address": self.root_address,
                "groups": {p.group: {"namespace": p.namespace, "address": p.address} for p in self.ports.values()}}

    def __enter__(self) -> ImpairedNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
