"""Screen share: published as a participant of its own, ``<participant>-screen``, measured with its owner.

The screen (``harness.media.screen``) is a second video stream. Rather than a second video track in the
participant's own publication, it joins the room as a publisher of its own, through the same adapter: the
way Janus's screen-sharing demo and many clients do it, and the one every adapter supports (an SFU
that keys a publisher's tracks by kind, like the reference SFU, has room for one video). What its session
creates is measured by the owning participant, its rows marked ``source = "screen"``. Adapters only have to
leave out the participant's own screen when they subscribe (``SessionContext.own``). A reconnection
(``harness.host.reconnect``) brings back the participant's own session, not its screen's.
"""

from __future__ import annotations

from typing import Protocol

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver

from harness.media.pool import Lease

__all__ = ["SCREEN_SUFFIX", "ScreenListener", "ScreenMedia", "source_of"]

SCREEN_SUFFIX = "-screen"
"""What a screen share's publisher name adds to its participant's. Participant names the harness makes end in
their index, so the suffix cannot be mistaken for a participant's own name."""


def source_of(sender: str) -> str:
    """``screen`` when ``sender`` (a publisher's name) is someone's screen share, else ``camera``."""
    return "screen" if sender.endswith(SCREEN_SUFFIX) else "camera"


class Owner(Protocol):
    """The participant a screen share belongs to."""

    screen_pcs: set[int]
    """``id()`` of the screen share's peer connections (their ``streams`` rows say ``source = "screen"``)."""

    def on_connection(self, pc: RTCPeerConnection, remote: str) -> None:
        """Watch a new peer connection."""
        ...

    def on_event(self, kind: str, detail: str) -> None:
        """Record an event."""
        ...


class ScreenMedia:
    """The screen share session's tracks (MediaFactory)."""

    def __init__(self, lease: Lease) -> None:
        self._lease = lease

    def tracks(self) -> list[MediaStreamTrack]:
        """Fresh tracks of the screen share for one peer connection."""
        return list(self._lease.tracks())


class ScreenListener:
    """What the screen share's session reports goes to its participant (SessionListener): its connections
    are measured with the participant's, their rows marked ``source = screen``."""

    def __init__(self, owner: Owner) -> None:
        self._owner = owner

    def on_connection(self, pc: RTCPeerConnection, remote: str) -> None:
        """Its connections are the owner's, marked as the screen's."""
        self._owner.screen_pcs.add(id(pc))
        self._owner.on_connection(pc, remote)

    def on_track(self, track: MediaStreamTrack, remote: str, receiver: RTCRtpReceiver | None = None) -> None:
        """Nothing to measure: the screen share subscribes to nothing."""
        return None

    def on_event(self, kind: str, detail: str) -> None:
        """The owner's events, the detail prefixed ``screen:``."""
        self._owner.on_event(kind, f"screen: {detail}")
