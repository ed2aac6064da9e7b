"""The reference SFU's rooms: publishers, subscribers, and the relays between them (no HTTP here).

A publisher's peer connection receives its tracks; each track is tapped by an :class:`EncodedRelay` before
it starts, so its encoded frames are never decoded. A subscriber's peer connection gets one relay track per
kind of the publisher it asked for; aiortc's senders then re-packetize per subscriber. Several rooms live side
by side; a publisher that leaves ends its subscribers' tracks.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from harness.reference.relay import EncodedRelay
from harness.rtc import jitter, ntpclock, sdes
from harness.rtc.collect import CycleCollector, session_ended

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 60.0
"""A session whose connection is not up this long after its answer is dropped: its client left (or crashed)
before DELETE, or while its offer was in flight and never learnt the resource URL. ICE on any link a scenario
can shape connects within seconds; without this, such sessions stayed for ever (found by benchmarks/churn.py)."""


class SfuError(Exception):
    """A request the SFU refuses; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Publisher:
    """One WHIP session: its connection and a relay per received kind."""

    room: str
    name: str
    pc: RTCPeerConnection
    relays: dict[str, EncodedRelay] = field(default_factory=dict)
    codecs: dict[str, str] = field(default_factory=dict)


@dataclass
class Resource:
    """A WHIP or WHEP session, addressed by its resource URL."""

    id: str
    kind: str  # "whip" | "whep"
    room: str
    participant: str
    pc: RTCPeerConnection
    etag: str = field(default_factory=lambda: f'"{secrets.token_hex(8)}"')
    deadline: asyncio.TimerHandle | None = None
    """The check that drops the session if it never connects; cancelled when the session ends (it would keep the
    closed connection, and what it holds, for :data:`CONNECT_TIMEOUT_S` more: under churn, a minute of them)."""


def _check_offer(sdp: str) -> RTCSessionDescription:
    if "v=0" not in sdp or "m=" not in sdp:
        raise SfuError(400, "the body is not an SDP offer (no v= or m= line)")
    return RTCSessionDescription(sdp=sdp, type="offer")


def _codec_of(transceiver: RTCRtpTransceiver) -> str | None:
    # aiortc keeps the negotiated codecs of a transceiver privately; the first is the one in use.
    codecs = getattr(transceiver, "_codecs", [])
    return codecs[0].mimeType if codecs else None


class Sfu:
    """Rooms of publishers and subscribers; every method is called on the server's event loop."""

    def __init__(self) -> None:
        # The SFU's receivers only forward: video frames complete on the marker bit, audio is not buffered.
        jitter.install(relay=True)
        ntpclock.install()  # aiortc's per-packet NTP clock without datetime arithmetic
        sdes.install()  # RFC 3550's SDES padding: a compound RTCP packet is not dropped whole (harness/rtc/sdes.py)
        self.rooms: dict[str, dict[str, Publisher]] = {}
        self.resources: dict[str, Resource] = {}
        self.collector = CycleCollector()
        """Collects ended sessions soon after they end, once started on the server's loop (``harness.rtc.collect``)."""

    def publishers(self, room: str) -> list[str]:
        """Names publishing in ``room`` (unknown room: :class:`SfuError` 404)."""
        if room not in self.rooms:
            raise SfuError(404, f"no room {room!r}")
        return sorted(self.rooms[room])

    async def publish(self, room: str, name: str, sdp: str) -> tuple[Resource, str]:
        """Accept a WHIP offer; returns the resource and the SDP answer."""
        offer = _check_offer(sdp)
        if name in self.rooms.get(room, {}):
            raise SfuError(409, f"{name!r} already publishes in room {room!r}")
        pc = RTCPeerConnection()
        publisher = Publisher(room=room, name=name, pc=pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            publisher.relays[track.kind] = EncodedRelay.tap(transceiver.receiver, track.kind)
            codec = _codec_of(transceiver)
            if codec:
                publisher.codecs[track.kind] = codec

        answer = await self._answer(pc, offer)
        if not publisher.relays:
            await pc.close()
            raise SfuError(400, "the offer publishes no audio or video track")
        self.rooms.setdefault(room, {})[name] = publisher
        resource = self._add_resource("whip", room, name, pc)
        self._watch(resource)
        return resource, answer

    async def subscribe(self, room: str, publisher_name: str, sdp: str) -> tuple[Resource, str]:
        """Accept a WHEP offer for the tracks of one publisher; returns the resource and the SDP answer."""
        offer = _check_offer(sdp)
        publisher = self.rooms.get(room, {}).get(publisher_name)
        if publisher is None:
            raise SfuError(404, f"nobody named {publisher_name!r} publishes in room {room!r}")
        pc = RTCPeerConnection()
        await self._set_offer(pc, offer)
        for transceiver in pc.getTransceivers():
            relay = publisher.relays.get(transceiver.kind)
            if relay is None:
                transceiver.direction = "inactive"
                continue
            transceiver.sender.replaceTrack(relay.track())
            transceiver.direction = "sendonly"
            codec = publisher.codecs.get(transceiver.kind)
            if codec:
                # Forwarded frames are in the publisher's codec: the subscriber must get exactly that one.
                try:
                    self._prefer(transceiver, codec)
                except SfuError:
                    await pc.close()
                    raise
        answer = await self._local_answer(pc)
        resource = self._add_resource("whep", room, publisher_name, pc)
        self._watch(resource)
        return resource, answer

    async def delete(self, resource_id: str) -> None:
        """End a WHIP or WHEP session (unknown: :class:`SfuError` 404)."""
        resource = self.resources.pop(resource_id, None)
        if resource is None:
            raise SfuError(404, f"no resource {resource_id!r}")
        if resource.kind == "whip":
            room = self.rooms.get(resource.room, {})
            publisher = room.pop(resource.participant, None)
            if publisher is not None:
                for relay in publisher.relays.values():
                    relay.close()
            if not room:
                self.rooms.pop(resource.room, None)
        if resource.deadline is not None:
            resource.deadline.cancel()
            resource.deadline = None
        # aiortc stops a sender's track only if the sender ran: a subscription dropped before it connected would
        # leave its track in the publisher's fan-out, queueing frames for nobody as long as the publisher stays.
        for transceiver in resource.pc.getTransceivers():
            if transceiver.sender.track is not None:
                transceiver.sender.track.stop()
        await resource.pc.close()
        session_ended()  # a closed connection is a reference cycle: collect it soon (harness.rtc.collect)

    def resource(self, resource_id: str) -> Resource:
        """A live resource (unknown: :class:`SfuError` 404)."""
        found = self.resources.get(resource_id)
        if found is None:
            raise SfuError(404, f"no resource {resource_id!r}")
        return found

    async def close(self) -> None:
        """End every session."""
        for resource_id in list(self.resources):
            await self.delete(resource_id)

    # -- helpers ------------------------------------------------------------------------------------------
    async def _set_offer(self, pc: RTCPeerConnection, offer: RTCSessionDescription) -> None:
        try:
            await pc.setRemoteDescription(offer)
        except Exception as exc:  # aiortc raises several kinds for SDP it cannot use; all are the client's
            await pc.close()
            raise SfuError(400, f"malformed SDP offer: {exc}") from None

    async def _answer(self, pc: RTCPeerConnection, offer: RTCSessionDescription) -> str:
        await self._set_offer(pc, offer)
        for transceiver in pc.getTransceivers():
            transceiver.direction = "recvonly"
        return await self._local_answer(pc)

    async def _local_answer(self, pc: RTCPeerConnection) -> str:
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            await pc.close()
            raise SfuError(400, f"cannot answer this offer: {exc}") from None
        return str(pc.localDescription.sdp)

    @staticmethod
    def _prefer(transceiver: RTCRtpTransceiver, mime: str) -> None:
        # The answerer's codecs were fixed by setRemoteDescription (aiortc keeps them in ``_codecs``): keep
        # the publisher's codec and its retransmission format only, or refuse the offer.
        codecs = getattr(transceiver, "_codecs", [])
        primary = [c for c in codecs if c.mimeType.lower() == mime.lower()]
        if not primary:
            raise SfuError(406, f"the offer does not accept {mime}, the codec this publisher sends")
        kept = {c.payloadType for c in primary}
        rtx = [c for c in codecs if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in kept]
        transceiver._codecs = primary + rtx

    def _add_resource(self, kind: str, room: str, participant: str, pc: RTCPeerConnection) -> Resource:
        resource = Resource(id=secrets.token_urlsafe(12), kind=kind, room=room, participant=participant, pc=pc)
        self.resources[resource.id] = resource
        return resource

    def _watch(self, resource: Resource) -> None:
        # A peer that vanishes without DELETE (crashed client) must not leave a publisher in the room for ever.
        connected = False

        @resource.pc.on("connectionstatechange")
        def on_state() -> None:
            nonlocal connected
            connected = connected or resource.pc.connectionState == "connected"
            if resource.pc.connectionState in ("failed", "closed") and resource.id in self.resources:
                asyncio.ensure_future(self._drop(resource.id))

        def never_connected() -> None:
            # Only sessions that never connected: one that is merely disconnected for a while may come back.
            if resource.id in self.resources and not connected:
                log.info("dropping %s session %s of %s: not connected after %g s", resource.kind, resource.id,
                         resource.participant, CONNECT_TIMEOUT_S)
                asyncio.ensure_future(self._drop(resource.id))

        resource.deadline = asyncio.get_running_loop().call_later(CONNECT_TIMEOUT_S, never_connected)

    async def _drop(self, resource_id: str) -> None:
        try:
            await self.delete(resource_id)
        except SfuError:
            pass
