"""The System interface: how the harness joins one conferencing system.

A new conferencing system is one module that subclasses :class:`System` and registers it under the entry
point group ``confbench.systems`` (the built-ins register the same way, DESIGN.md §5.5). The participant
engine hands a :class:`SessionContext` to :meth:`System.session`; the adapter does the signalling, creates the
peer connections, adds the tracks it gets from ``ctx.media`` and reports what it creates and receives through
``ctx.listener``. Everything it measures is the engine's business, not the adapter's.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcrtptransceiver import RTCRtpTransceiver


class MediaFactory(Protocol):
    """Gives an adapter fresh tracks for one peer connection (aiortc needs one track per sender)."""

    def tracks(self) -> list[MediaStreamTrack]:
        """New tracks carrying this participant's published media (empty when it publishes nothing)."""
        ...


class SessionListener(Protocol):
    """What an adapter tells the participant engine."""

    def on_connection(self, pc: RTCPeerConnection, remote: str) -> None:
        """A peer connection was created; ``remote`` names the far end (a participant, or the server)."""
        ...

    def on_track(self, track: MediaStreamTrack, remote: str, receiver: RTCRtpReceiver | None = None) -> None:
        """A remote track arrived; ``remote`` is the publishing participant when the adapter knows it.

        Adapters call it from the connection's ``track`` event and pass the track's receiver, so that the
        engine may measure the stream without decoding it (``harness.media.tap``).
        """
        ...

    def on_event(self, kind: str, detail: str) -> None:
        """Something worth recording in the ``events`` table (peer joined/left, renegotiation, ...)."""
        ...


@dataclass(frozen=True, slots=True)
class SessionContext:
    """Everything an adapter needs to bring one participant into one room."""

    room: str
    participant: str
    media: MediaFactory
    listener: SessionListener
    subscribe: bool = True
    timeout_s: float = 20.0
    video_codec: str = "VP8"
    publish: tuple[str, ...] = ("audio", "video")
    """Kinds this participant publishes (``ctx.media.tracks()`` gives one track of each)."""
    own: tuple[str, ...] = ()
    """Other publishers that are this participant's own (its screen share, ``harness.host.participant``):
    not to be subscribed to."""
    speakers: bool = False
    """Whether the scenario has an active-speaker pattern: an adapter turns on the system's active-speaker
    signals where it must ask for them, and reports them as events."""
    simulcast: tuple[str, ...] = ()
    """The simulcast layers this participant's video track carries (``harness.media.simulcast``); empty:
    one encoding. An adapter that cannot send them says so in one line (:class:`harness.errors.SystemError_`)."""
    prefer_layer: str | None = None
    """The simulcast layer this participant asks the system for, through the system's own mechanism; None:
    the system's choice."""

    def __post_init__(self) -> None:
        if not self.room or not self.participant:
            raise ValueError("room and participant must not be empty")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


class Session(abc.ABC):
    """One participant's presence in a room of a system."""

    @abc.abstractmethod
    async def join(self) -> None:
        """Signal until media can flow; raise :class:`harness.errors.SystemError_` on refusal or timeout."""

    @abc.abstractmethod
    async def leave(self) -> None:
        """Leave the room and close every peer connection; never raises, bounded in time."""


def prefer_video_codec(transceiver: RTCRtpTransceiver, codec: str) -> None:
    """Offer ``codec`` (e.g. ``"VP8"``, ``"H264"``) only, with its retransmission format, on a video transceiver.

    Publishers send packets of one shared encoder (``harness.media.encoder``), so the negotiated codec
    must be the one that encoder produces.
    """
    if transceiver.kind != "video":
        return
    wanted = f"video/{codec}".lower()
    caps = RTCRtpSender.getCapabilities("video").codecs
    chosen = [c for c in caps if c.mimeType.lower() == wanted]
    if not chosen:
        raise ValueError(f"aiortc cannot send {codec}")
    rtx = [c for c in caps if c.mimeType.lower() == "video/rtx"]
    transceiver.setCodecPreferences(chosen + rtx)


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the controller knows about a system's server side for one run."""

    url: str | None = None
    server_pids: tuple[int, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)
    host_addresses: tuple[str, ...] = ()
    """Where participants must gather their ICE candidates (e.g. their end of a testbed link); empty: loopback."""


class System(abc.ABC):
    """A conferencing system the harness can join.

    One instance lives in the controller (``deploy``/``undeploy`` around the run, e.g. to start a local
    server) and one in each media host (``session`` per participant). Adapters must not keep state across
    these two places except what ``Deployment`` carries.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    simulcast: ClassVar[bool] = False
    """Whether the adapter sends a publisher's simulcast layers (``SessionContext.simulcast``) as the system
    expects them; runs with simulcast groups refuse systems without it, in one line."""

    def __init__(self, url: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.options: Mapping[str, Any] = dict(options or {})

    @abc.abstractmethod
    def session(self, ctx: SessionContext) -> Session:
        """A new, not yet joined session for one participant."""

    def deploy(self) -> Deployment:
        """Controller side, before the run: start or locate the server. Default: nothing to start."""
        return Deployment(url=self.url)

    def undeploy(self) -> None:
        """Controller side, after the run (also after a failure): stop what :meth:`deploy` started."""
        return None

    def fault_support(self) -> str | None:
        """Controller side: None when :meth:`server_fault` works on what :meth:`deploy` started, else why not
        (one line, for a scenario that plans a server restart or kill)."""
        return f"confbench cannot restart or kill the {self.name} server: it did not start one"

    def server_fault(self, action: str, down_s: float = 0.0) -> tuple[int, ...]:
        """Controller side, during the run: ``kill`` the server :meth:`deploy` started, or ``restart`` it (kill,
        wait ``down_s``, start it again on the same address and wait until it answers). Returns the pids of
        the server processes now running (none after a kill). Raises ``SystemError_`` on failure."""
        raise NotImplementedError(self.fault_support() or "server_fault is not implemented")

    async def close(self) -> None:
        """Media-host side, at the end: release shared client resources."""
        return None

    def web_client(self) -> str | None:
        """The web platform (``harness.browser.platform``) that browser participants use to join this system.

        A built-in platform name or a platform file; ``None`` when the system has no web client (then browser
        participants need ``[browser] platform`` in the scenario). Browsers open it with ``{base}`` = ``url``.
        """
        return None
