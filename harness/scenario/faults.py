"""Faults a scenario plans for the server side: a server confbench started is killed or restarted mid-run.

In a scenario they are the entries of the top-level timeline::

    [[timeline]]
    at_s = 30            # seconds from the start of the run
    server = "restart"   # "restart": stopped (SIGKILL, as a crash) and started again on the same address;
    down_s = 2           #   optional: how long it stays down first (default 0)
    [[timeline]]
    at_s = 50
    server = "kill"      # stopped for good: the participants are dropped, or fail to reconnect

A group's link going down is a network outage instead (``outage_s`` in the group's network timeline,
:mod:`harness.scenario.network`). How participants come back from either is measured by
:mod:`harness.analysis.outages`. Standard library only, like :mod:`harness.scenario.network`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SERVER_ACTIONS", "FaultError", "ServerFault", "parse_timeline"]

SERVER_ACTIONS = ("restart", "kill")
MAX_AT_S = 7 * 24 * 3600
MAX_DOWN_S = 3600.0


class FaultError(ValueError):
    """A timeline entry is wrong; ``field`` is its path inside the scenario (``timeline[0].server``)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True, slots=True)
class ServerFault:
    """At ``at_s``, the server under test is killed (``kill``) or killed and started again (``restart``)."""

    at_s: float
    action: str
    down_s: float = 0.0
    """For a restart: seconds between the kill and the start again."""

    def __post_init__(self) -> None:
        if self.action not in SERVER_ACTIONS:
            raise FaultError("server", f"must be one of {', '.join(SERVER_ACTIONS)}, got {self.action!r}")
        if not 0 <= self.at_s <= MAX_AT_S:
            raise FaultError("at_s", f"must be between 0 and {MAX_AT_S} s from the start of the run, got {self.at_s:g}")
        if not 0 <= self.down_s <= MAX_DOWN_S:
            raise FaultError("down_s", f"must be between 0 and {MAX_DOWN_S:g} s, got {self.down_s:g}")
        if self.action == "kill" and self.down_s:
            raise FaultError("down_s", "only a restart has a down time (a killed server stays down)")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as a ``[[timeline]]`` entry."""
        data: dict[str, Any] = {"at_s": self.at_s, "server": self.action}
        if self.down_s:
            data["down_s"] = self.down_s
        return data


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultError(where, f"must be a number, got {value!r}")
    return float(value)


def parse_timeline(raw: Any) -> tuple[ServerFault, ...]:
    """The server faults of a scenario's ``[[timeline]]`` list, in time order; :class:`FaultError`."""
    if not isinstance(raw, list):
        raise FaultError("timeline", f"must be a list of tables ([[timeline]]), got {type(raw).__name__}")
    faults = []
    for i, entry in enumerate(raw):
        where = f"timeline[{i}]"
        if not isinstance(entry, Mapping):
            raise FaultError(where, "must be a table ([[timeline]])")
        unknown = sorted(set(entry) - {"at_s", "server", "down_s"})
        if unknown:
            hint = " (a group's link outage is outage_s in [[groups.network.timeline]])" \
                if unknown[0] == "outage_s" else ""
            raise FaultError(f"{where}.{unknown[0]}", f"unknown key (known: at_s, down_s, server){hint}")
        if "at_s" not in entry or "server" not in entry:
            raise FaultError(where, "needs at_s and server (\"restart\" or \"kill\")")
        if not isinstance(entry["server"], str):
            raise FaultError(f"{where}.server", f"must be \"restart\" or \"kill\", got {entry['server']!r}")
        try:
            fault = ServerFault(_number(f"{where}.at_s", entry["at_s"]), entry["server"],
                                _number(f"{where}.down_s", entry.get("down_s", 0.0)))
        except FaultError as exc:
            if exc.field.startswith(where):
                raise
            raise FaultError(f"{where}.{exc.field}", str(exc)) from None
        faults.append(fault)
    ordered = tuple(sorted(faults, key=lambda f: f.at_s))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.action == "kill":
            raise FaultError("timeline", f"the server is killed at {a.at_s:g} s: nothing can happen to it at "
                             f"{b.at_s:g} s")
        if b.at_s < a.at_s + a.down_s:
            raise FaultError("timeline", f"the restart at {a.at_s:g} s keeps the server down until "
                             f"{a.at_s + a.down_s:g} s, past the next entry at {b.at_s:g} s")
    return ordered
