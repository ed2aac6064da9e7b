"""Who is in the run: one index per participant, and a designated probe for every sender.

A participant decodes a received stream when it is one of its *probes* (``harness.host.participant``):
``probe_fraction`` of the pairs, drawn per receiver–sender pair. A draw alone can leave a sender without any
probe (in a room of six at 0.2, two of six senders were never decoded), and then that sender has no latency
or frame-loss figure at all. So every sender also gets one *designated* receiver, which decodes it whatever
the draw says. The designation needs a view of everyone, which only the Locust master (or the local runner)
has; this class is that view, and it knows nothing of Locust (``harness.loadgen.plugin`` carries its
decisions to the workers as Locust messages).

Rules: a newcomer that receives and decodes (its group's ``probe_fraction`` > 0) becomes the designated
probe of every sender present that has none; a newcomer that sends gets the decoding receiver present with
the fewest designations (that receiver is told before the newcomer starts joining, so it knows when the
stream arrives). A designated receiver that leaves frees its senders for the next decoding newcomer: a
stream already received undecoded cannot start decoding halfway.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

__all__ = ["Admission", "Roster"]


@dataclass(frozen=True, slots=True)
class Admission:
    """What a joining participant is told: its index and name, and which senders it must decode."""

    index: int
    name: str
    probes: tuple[str, ...] = ()
    notify: tuple[tuple[str, str, str], ...] = ()
    """(receiver, its node, sender): receivers already in the run that must decode this newcomer."""


@dataclass(slots=True)
class _Member:
    name: str
    node: str
    sends: bool
    decodes: bool
    designated: set[str] = field(default_factory=set)
    """Senders this member is the designated probe of."""


class Roster:
    """Indices and probe designations for one run (not thread-safe: the master's greenlets share it)."""

    def __init__(self, first_index: int = 0) -> None:
        self._next = itertools.count(first_index)
        self._members: dict[str, _Member] = {}
        self._probe_of: dict[str, str] = {}
        """sender -> its designated receiver."""

    def admit(self, group: str, node: str, *, sends: bool, receives: bool, decodes: bool) -> Admission:
        """Give a newcomer of ``group`` (hosted by Locust node ``node``) its index and probe duties."""
        index = next(self._next)
        name = f"{group}-{index}"
        member = _Member(name, node, sends=sends, decodes=receives and decodes)
        probes: list[str] = []
        if member.decodes:
            for other in self._members.values():
                if other.sends and other.name not in self._probe_of:
                    probes.append(other.name)
                    self._probe_of[other.name] = name
                    member.designated.add(other.name)
        notify: list[tuple[str, str, str]] = []
        if sends:
            receivers = [m for m in self._members.values() if m.decodes]
            if receivers:
                chosen = min(receivers, key=lambda m: len(m.designated))
                chosen.designated.add(name)
                self._probe_of[name] = chosen.name
                notify.append((chosen.name, chosen.node, name))
        self._members[name] = member
        return Admission(index=index, name=name, probes=tuple(probes), notify=tuple(notify))

    def depart(self, name: str) -> None:
        """Forget a participant that left; its senders wait for the next decoding newcomer."""
        member = self._members.pop(name, None)
        if member is None:
            return
        for sender in member.designated:
            if self._probe_of.get(sender) == name:
                del self._probe_of[sender]
        receiver = self._probe_of.pop(name, None)
        if receiver is not None and receiver in self._members:
            self._members[receiver].designated.discard(name)

    def probe_of(self, sender: str) -> str | None:
        """The designated probe of ``sender`` (None when it has none now)."""
        return self._probe_of.get(sender)

    @property
    def members(self) -> int:
        """Participants admitted and not departed."""
        return len(self._members)
