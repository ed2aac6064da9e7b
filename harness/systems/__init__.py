"""Conferencing systems: the registry of adapters (entry point group ``confbench.systems``).

Same layer as :mod:`harness.reference` and :mod:`harness.testbed`, which it may import, with :mod:`harness.media`,
:mod:`harness.rtc`, :mod:`harness.probes`, :mod:`harness.analysis`, :mod:`harness.store`,
:mod:`harness.scenario` and :mod:`harness.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from harness.errors import UsageError
from harness.systems.base import System

ENTRY_POINT_GROUP = "confbench.systems"


@dataclass(frozen=True, slots=True)
class SystemSpec:
    """A system as named on the command line: ``NAME`` or ``NAME=URL``."""

    name: str
    url: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("system name must not be empty")

    @classmethod
    def parse(cls, text: str) -> SystemSpec:
        """Parse ``NAME[=URL]``; raises :class:`UsageError` for an empty name."""
        name, sep, url = text.partition("=")
        name = name.strip()
        if not name or (sep and not url.strip()):
            raise UsageError(f"--system {text!r}: expected NAME or NAME=URL")
        return cls(name=name, url=url.strip() or None)

    def __str__(self) -> str:
        return self.name if self.url is None else f"{self.name}={self.url}"


def available_systems() -> dict[str, type[System]]:
    """Every registered system class by name (built-ins and plugins alike)."""
    found: dict[str, type[System]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if isinstance(cls, type) and issubclass(cls, System):
            found[ep.name] = cls
    return dict(sorted(found.items()))


SERVE_ADDRESS = "serve_address"
"""System option: the address a server the system starts itself must listen on (default 127.0.0.1); an
impaired network gives its root address, which participants in the groups' namespaces can reach."""
IMPAIRED_NETWORK = "impaired_network"
"""System option: the run's ``harness.testbed.link.ImpairedNetwork`` when groups are impaired. A system
whose server runs in a namespace of its own calls ``network.attach(namespace, owns=[its other addresses])``
so that impaired participants reach it (and lets the server gather ICE candidates on the address it gets)."""


def create_system(spec: SystemSpec, options: Mapping[str, Any] | None = None) -> System:
    """Instantiate the system a spec names; unknown names get one line listing the known ones."""
    systems = available_systems()
    cls = systems.get(spec.name)
    if cls is None:
        known = ", ".join(systems) or "none (is confbench installed? try: pip install -e .)"
        raise UsageError(f"unknown system {spec.name!r}; known systems: {known}")
    return cls(url=spec.url, options=options)
