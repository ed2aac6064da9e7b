"""``p2p``: a full-mesh call with an in-process signalling broker — the embedded default and the floor.

No server is involved: every pair of participants has its own peer connection, so a figure measured here is
the instrument's own (encode, loopback, decode) plus the load generator's contention. Participants must share
one media host process because the broker lives in it; the controller runs p2p with one media host.

Signalling: a newcomer offers to every member already in the room; each member answers. Offers carry one
transceiver per media kind whose direction says what each side sends and receives.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from harness.errors import SystemError_
from harness.systems.base import Session, SessionContext, System, prefer_video_codec

log = logging.getLogger(__name__)

KINDS = ("audio", "video")


def _direction(send: bool, recv: bool) -> str:
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (send, recv), "inactive"
    )


class _Broker:
    """The members of one room in this process."""

    def __init__(self) -> None:
        self.members: dict[str, P2PSession] = {}


class P2PSystem(System):
    """Full mesh between participants of the same media host, with in-process signalling."""

    name: ClassVar[str] = "p2p"
    description: ClassVar[str] = "full mesh, in-process signalling, no server (the measurement floor)"

    def __init__(self, url: str | None = None, options: object = None) -> None:
        if url is not None:
            raise SystemError_("the p2p system takes no URL: it runs inside the load generator")
        super().__init__(None, None)
        self._brokers: dict[str, _Broker] = {}

    def session(self, ctx: SessionContext) -> Session:
        """A participant session in the room ``ctx.room`` of this process's broker."""
        broker = self._brokers.setdefault(ctx.room, _Broker())
        return P2PSession(ctx, broker)


class P2PSession(Session):
    """One participant of the mesh: a peer connection per other member."""

    def __init__(self, ctx: SessionContext, broker: _Broker) -> None:
        self.ctx = ctx
        self._broker = broker
        self._pcs: dict[str, RTCPeerConnection] = {}
        self._tracks: dict[str, list[MediaStreamTrack]] = {}
        self._left = False

    @property
    def name(self) -> str:
        """The participant's name."""
        return self.ctx.participant

    async def join(self) -> None:
        """Register with the broker and connect to every member already present."""
        if self.name in self._broker.members:
            raise SystemError_(f"participant {self.name!r} is already in room {self.ctx.room!r}")
        others = list(self._broker.members.values())
        self._broker.members[self.name] = self
        try:
            await asyncio.wait_for(
                asyncio.gather(*(self._offer_to(m) for m in others)), timeout=self.ctx.timeout_s
            )
        except TimeoutError:
            raise SystemError_(
                f"p2p signalling for {self.name} did not finish within {self.ctx.timeout_s:g} s"
            ) from None

    async def leave(self) -> None:
        """Leave the room: close our connections and tell the others to close theirs to us."""
        if self._left:
            return
        self._left = True
        self._broker.members.pop(self.name, None)
        await asyncio.gather(
            *(m._drop(self.name) for m in list(self._broker.members.values())), return_exceptions=True
        )
        await asyncio.gather(*(self._drop(r) for r in list(self._pcs)), return_exceptions=True)

    def _new_pc(self, remote: str) -> RTCPeerConnection:
        pc = RTCPeerConnection()
        self._pcs[remote] = pc
        listener = self.ctx.listener

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            listener.on_track(track, remote)

        listener.on_connection(pc, remote)
        return pc

    def _own_tracks(self) -> dict[str, MediaStreamTrack]:
        return {t.kind: t for t in self.ctx.media.tracks()}

    async def _offer_to(self, member: P2PSession) -> None:
        pc = self._new_pc(member.name)
        tracks = self._own_tracks()
        self._tracks[member.name] = list(tracks.values())
        for kind in KINDS:
            track = tracks.get(kind)
            direction = _direction(track is not None, self.ctx.subscribe)
            if direction != "inactive":
                transceiver = pc.addTransceiver(track if track is not None else kind, direction=direction)
                prefer_video_codec(transceiver, self.ctx.video_codec)
        await pc.setLocalDescription(await pc.createOffer())
        answer = await member._answer(self.name, pc.localDescription)
        if self._left:
            return
        await pc.setRemoteDescription(answer)
        self.ctx.listener.on_event("peer_connected", member.name)

    async def _answer(self, remote: str, offer: RTCSessionDescription) -> RTCSessionDescription:
        if self._left:
            raise SystemError_(f"{self.name} left the room before answering {remote}")
        pc = self._new_pc(remote)
        await pc.setRemoteDescription(offer)
        tracks = self._own_tracks()
        self._tracks[remote] = list(tracks.values())
        for transceiver in pc.getTransceivers():
            track = tracks.get(transceiver.kind)
            if track is not None:
                transceiver.sender.replaceTrack(track)
            transceiver.direction = _direction(track is not None, self.ctx.subscribe)
        await pc.setLocalDescription(await pc.createAnswer())
        self.ctx.listener.on_event("peer_joined", remote)
        return pc.localDescription

    async def _drop(self, remote: str) -> None:
        pc = self._pcs.pop(remote, None)
        for track in self._tracks.pop(remote, []):
            track.stop()
        if pc is not None:
            self.ctx.listener.on_event("peer_left", remote)
            try:
                await asyncio.wait_for(pc.close(), timeout=5)
            except Exception:  # closing must never stop a leave; the connection is gone either way
                log.warning("closing the connection of %s to %s failed", self.name, remote, exc_info=True)
