"""What the simulcast tests of every system share: one publisher's picture, the people in the room, the widths seen."""

from __future__ import annotations

from helpers import ListSink

from harness.host.participant import Participant, ParticipantSpec
from harness.scenario.scenario import VideoSettings
from harness.systems.base import System

VIDEO = VideoSettings(width=640, height=360, fps=15, bitrate_kbps=600)


def person(name: str, index: int, system: System, sink: ListSink, **kw: object) -> Participant:
    """A native participant of the room ``simulcast`` sending :data:`VIDEO`."""
    spec = ParticipantSpec(name=name, group=name, index=index, room="simulcast", video=VIDEO, **kw)  # type: ignore[arg-type]
    return Participant(spec, system, sink)


def widths(sink: ListSink, receiver: str, after: float, before: float = float("inf")) -> list[int]:
    """Widths of the frames ``receiver`` got from ``pub`` between ``after`` and ``before``."""
    return [f["width"] for f in sink.rows["frames"]
            if f["receiver"] == receiver and f["sender"] == "pub" and after < f["ts"] < before]
