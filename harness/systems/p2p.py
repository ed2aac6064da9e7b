"""``p2p``: a full-mesh call with an embedded signalling broker — the default system and the floor.

No media server is involved: every pair of participants has its own peer connection, so a figure measured
here is the instrument's own (encode, loopback, decode) plus the load generator's contention.

Signalling goes through a tiny broker (:class:`Broker`): a newcomer learns who is in the room and offers to
each of them; offers and answers are relayed; leaving (or a dropped link) is announced. The broker runs
in-process when all participants share a media host (``P2PSystem()`` with no URL), or the controller serves
it on 127.0.0.1 for a run (:meth:`P2PSystem.deploy`) so that participants in several media hosts — several
cores — meet in one room. Messages are JSON objects, one per line over TCP::

    → {"op": "join", "room": "r", "participant": "a", "publish": ["video"], "subscribe": true}
                                                          ← {"op": "members", "members": ["b", ...],
                                                             "roles": {"b": {"publish": [...], "subscribe": ...}}}
    → {"op": "signal", "to": "b", "data": {...}}         ← (to b) {"op": "signal", "from": "a", "data": {...}}
    → {"op": "leave"}                                    ← (to the others) {"op": "left", "participant": "a"}

A newcomer connects only to members it exchanges media with (it publishes what they subscribe to, or the
other way round), with one transceiver per kind that flows: two receive-only participants have nothing to
say to each other, and in a room of many receivers a connection per pair would cost more than the media.
A member whose join carried no roles is taken to publish everything and subscribe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from aiortc import MediaStreamTrack, RTCPeerConnection

from harness.errors import SystemError_
from harness.media.tap import receiver_of
from harness.systems import SERVE_ADDRESS
from harness.systems.base import Deployment, Session, SessionContext, System, prefer_video_codec
from harness.systems.guard import FloodGuard, apply_answer, apply_offer, fail_waiting, json_object

log = logging.getLogger(__name__)

KINDS = ("audio", "video")
MAX_LINE = 1 << 20  # an SDP is a few kB; anything near this is not ours
URL_SCHEME = "tcp://"


class Channel(Protocol):
    """One participant's link to the broker."""

    async def send(self, msg: dict[str, Any]) -> None:
        """Send one message."""
        ...

    async def recv(self) -> dict[str, Any]:
        """The next message; raises ``EOFError`` when the link is closed."""
        ...

    async def close(self) -> None:
        """Close the link (the broker then announces the participant as gone)."""
        ...


class _QueueChannel:
    """One end of an in-process link."""

    def __init__(self, inbox: asyncio.Queue[dict[str, Any] | None],
                 outbox: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._inbox, self._outbox = inbox, outbox
        self._closed = False

    async def send(self, msg: dict[str, Any]) -> None:
        if not self._closed:
            self._outbox.put_nowait(msg)

    async def recv(self) -> dict[str, Any]:
        msg = await self._inbox.get()
        if msg is None:
            self._inbox.put_nowait(None)
            raise EOFError
        return msg

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._outbox.put_nowait(None)
            self._inbox.put_nowait(None)


class _StreamChannel:
    """A TCP link, JSON lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def send(self, msg: dict[str, Any]) -> None:
        try:
            self._writer.write(json.dumps(msg).encode() + b"\n")
            await self._writer.drain()
        except (ConnectionError, RuntimeError):
            pass  # the peer is gone; the reader side reports it

    async def recv(self) -> dict[str, Any]:
        # The EOFError's message says why the link ended, for the one line a failed join gets.
        try:
            line = await self._reader.readline()
        except (asyncio.LimitOverrunError, ValueError):
            raise EOFError(f"a line longer than {MAX_LINE} bytes") from None
        except ConnectionError as exc:
            raise EOFError(str(exc) or type(exc).__name__) from None
        if not line:
            raise EOFError
        try:
            return json_object(line, "a line")
        except ValueError as exc:
            raise EOFError(str(exc)) from None

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._writer.wait_closed(), timeout=2)


class Broker:
    """Room membership and message relay; transport-agnostic (serves any :class:`Channel`)."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, Channel]] = {}
        self.roles: dict[str, dict[str, dict[str, Any]]] = {}

    def connect(self) -> Channel:
        """An in-process link to this broker (served by a task of the running loop)."""
        to_broker: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        to_client: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        asyncio.ensure_future(self.serve(_QueueChannel(to_broker, to_client)))
        return _QueueChannel(to_client, to_broker)

    async def serve(self, channel: Channel) -> None:
        """Handle one participant's link until it leaves or drops."""
        room: str | None = None
        name: str | None = None
        try:
            while True:
                msg = await channel.recv()
                op = msg.get("op")
                if op == "join" and name is None:
                    room, name = str(msg.get("room")), str(msg.get("participant"))
                    members = self.rooms.setdefault(room, {})
                    if name in members:
                        await channel.send({"op": "error", "error": f"{name!r} is already in room {room!r}"})
                        name = None
                        continue
                    roles = self.roles.setdefault(room, {})
                    await channel.send({"op": "members", "members": list(members),
                                        "roles": {m: roles[m] for m in members if m in roles}})
                    members[name] = channel
                    if "publish" in msg or "subscribe" in msg:
                        roles[name] = {"publish": list(msg.get("publish") or []),
                                       "subscribe": bool(msg.get("subscribe", True))}
                elif op == "signal" and name is not None and room is not None:
                    target = self.rooms.get(room, {}).get(str(msg.get("to")))
                    if target is not None:
                        await target.send({"op": "signal", "from": name, "data": msg.get("data")})
                elif op == "leave":
                    return
        except EOFError:
            return
        finally:
            if room is not None and name is not None:
                members = self.rooms.get(room, {})
                if members.get(name) is channel:
                    del members[name]
                    self.roles.get(room, {}).pop(name, None)
                for other in list(members.values()):
                    await other.send({"op": "left", "participant": name})
            await channel.close()


class BrokerServer:
    """The broker served over TCP on a loopback address, in a thread with its own event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="p2p-broker", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._links: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}  # the task serving each link
        self.broker = Broker()

    @property
    def url(self) -> str:
        """``tcp://host:port`` of the listening socket."""
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{URL_SCHEME}{host}:{port}"

    def start(self) -> None:
        """Listen (bounded wait)."""
        self._thread.start()

        async def listen() -> asyncio.base_events.Server:
            return await asyncio.start_server(self._handle, self._host, self._port, limit=MAX_LINE)

        self._server = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links[task] = writer
        try:
            await self.broker.serve(_StreamChannel(reader, writer))
        finally:
            self._links.pop(task, None)

    def stop(self) -> None:
        """Stop listening, end every link still served, end the thread and close its loop (bounded wait).

        Links still open at the end (a media host that has not hung up yet) are served by pending tasks:
        left in a stopped loop they would be destroyed pending at exit, and the loop never closed.
        """
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        # Hang up on every link, so that each serving task ends as on any hang-up (Python 3.11's stream
        # server reports a cancelled client task as an error with its traceback: no cancelling here).
        for writer in list(self._links.values()):
            writer.close()
        if self._links:
            await asyncio.wait(list(self._links), timeout=3)


def _direction(send: bool, recv: bool) -> str:
    return {(True, True): "sendrecv", (True, False): "sendonly", (False, True): "recvonly"}.get(
        (send, recv), "inactive"
    )


def _parse_url(url: str) -> tuple[str, int]:
    if not url.startswith(URL_SCHEME):
        raise SystemError_(f"p2p broker URL must look like {URL_SCHEME}127.0.0.1:PORT, got {url!r}")
    host, _, port = url[len(URL_SCHEME):].rpartition(":")
    if not host or not port.isdigit():
        raise SystemError_(f"p2p broker URL must look like {URL_SCHEME}127.0.0.1:PORT, got {url!r}")
    return host, int(port)


class P2PSystem(System):
    """Full mesh between participants; signalling through an embedded broker."""

    name: ClassVar[str] = "p2p"
    description: ClassVar[str] = "full mesh, embedded signalling broker, no media server (the floor)"

    def __init__(self, url: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        if url is not None:
            _parse_url(url)
        super().__init__(url, options)
        self._local: Broker | None = None
        self._server: BrokerServer | None = None

    def deploy(self) -> Deployment:
        """Serve the broker on 127.0.0.1 so that participants in several media hosts meet."""
        if self.url is not None:
            return Deployment(url=self.url)
        self._server = BrokerServer(host=str(self.options.get(SERVE_ADDRESS, "127.0.0.1")))
        self._server.start()
        return Deployment(url=self._server.url, info={"broker": "embedded, served by the controller"})

    def undeploy(self) -> None:
        """Stop the broker served by :meth:`deploy`."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    async def connect(self) -> Channel:
        """A link to the broker: over TCP when the system has a URL, else to an in-process broker."""
        if self.url is None:
            if self._local is None:
                self._local = Broker()
            return self._local.connect()
        host, port = _parse_url(self.url)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=MAX_LINE), 10)
        except (OSError, TimeoutError) as exc:
            raise SystemError_(f"cannot reach the p2p broker at {self.url}: {exc}") from None
        return _StreamChannel(reader, writer)

    def session(self, ctx: SessionContext) -> Session:
        """A participant session in the room ``ctx.room``."""
        return P2PSession(ctx, self)


class P2PSession(Session):
    """One participant of the mesh: a peer connection per other member."""

    def __init__(self, ctx: SessionContext, system: P2PSystem) -> None:
        self.ctx = ctx
        self._system = system
        self._channel: Channel | None = None
        self._pcs: dict[str, RTCPeerConnection] = {}
        self._tracks: dict[str, list[MediaStreamTrack]] = {}
        self._answers: dict[str, asyncio.Future[str]] = {}  # remote -> its answer's SDP
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._broken = ""  # why the link to the broker ended, once it has
        self._left = False

    @property
    def name(self) -> str:
        """The participant's name."""
        return self.ctx.participant

    async def join(self) -> None:
        """Enter the room and connect to every member already present."""
        timeout = self.ctx.timeout_s
        try:
            async with asyncio.timeout(timeout):
                self._channel = await self._system.connect()
                await self._channel.send({"op": "join", "room": self.ctx.room, "participant": self.name,
                                          "publish": list(self.ctx.publish), "subscribe": self.ctx.subscribe})
                reply = await self._channel.recv()
                members = reply.get("members")
                if reply.get("op") != "members" or not isinstance(members, list):
                    raise SystemError_(f"p2p broker refused {self.name}: {str(reply.get('error', reply))[:200]}")
                self._reader = asyncio.ensure_future(self._read_loop())
                roles = reply.get("roles")
                roles = roles if isinstance(roles, Mapping) else {}
                offers = []
                for member in (str(m) for m in members):
                    if member in self.ctx.own:
                        continue  # our own screen share (harness.host.screen): no call with ourselves
                    role = roles.get(member)
                    kinds = self._flows(role if isinstance(role, Mapping) else None)
                    if any(send or recv for send, recv in kinds.values()):
                        offers.append(self._offer_to(member, kinds))
                gathered = asyncio.gather(*offers)
                try:
                    await gathered
                finally:  # one failed offer fails the join: the others must not live on
                    gathered.cancel()
        except TimeoutError:
            raise SystemError_(f"p2p signalling for {self.name} did not finish within {timeout:g} s") from None
        except EOFError as exc:
            why = f" after {exc}" if str(exc) else ""
            raise SystemError_(f"the p2p broker closed the link of {self.name}{why}") from None

    async def leave(self) -> None:
        """Leave the room: tell the broker, close every connection; bounded, never raises."""
        if self._left:
            return
        self._left = True
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.send({"op": "leave"})
                await self._channel.close()
        if self._reader is not None:
            self._reader.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(self._drop(r) for r in list(self._pcs)), return_exceptions=True)

    async def _read_loop(self) -> None:
        assert self._channel is not None
        guard = FloodGuard("the p2p broker")
        try:
            while True:
                msg = await self._channel.recv()
                guard.count()
                op = msg.get("op")
                if op == "signal":
                    data = msg.get("data")
                    self._on_signal(str(msg.get("from")), data if isinstance(data, Mapping) else {})
                elif op == "left":
                    self._spawn(self._drop(str(msg.get("participant"))))
        except (EOFError, SystemError_) as exc:
            reason = str(exc) if isinstance(exc, SystemError_) else (
                f"the p2p broker closed the link of {self.name}" + (f" after {exc}" if str(exc) else ""))
            self._broken = reason
            fail_waiting(self._answers.values(), reason)  # a join waiting for answers fails with the reason
            if isinstance(exc, SystemError_) and self._channel is not None:
                await self._channel.close()
            if not self._left:
                self.ctx.listener.on_event("broker_lost", reason)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("p2p signalling task of %s failed", self.name, exc_info=task.exception())

    def _on_signal(self, remote: str, data: Mapping[str, Any]) -> None:
        kind, sdp = data.get("type"), str(data.get("sdp", ""))
        if kind == "offer":
            role = data.get("role")
            self._spawn(self._answer(remote, sdp, self._flows(role if isinstance(role, Mapping) else None)))
        elif kind == "answer":
            future = self._answers.pop(remote, None)
            if future is not None and not future.done():
                future.set_result(sdp)

    def _new_pc(self, remote: str) -> RTCPeerConnection:
        pc = RTCPeerConnection()
        self._pcs[remote] = pc
        listener = self.ctx.listener

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            listener.on_track(track, remote, receiver_of(pc, track))

        listener.on_connection(pc, remote)
        return pc

    def _flows(self, role: Mapping[str, Any] | None) -> dict[str, tuple[bool, bool]]:
        """Per kind, whether this participant sends it to a member with ``role``, and receives it."""
        theirs = set(role.get("publish", KINDS)) if role is not None else set(KINDS)
        they_subscribe = bool(role.get("subscribe", True)) if role is not None else True
        return {kind: (kind in self.ctx.publish and they_subscribe, kind in theirs and self.ctx.subscribe)
                for kind in KINDS}

    def _own_tracks(self, remote: str, kinds: set[str]) -> dict[str, MediaStreamTrack]:
        # Fan-out tracks queue frames from the moment they exist: one that no sender reads would fill up and
        # count as frames the generator dropped, so those of kinds not sent to ``remote`` end at once.
        tracks = {}
        for track in self.ctx.media.tracks():
            if track.kind in kinds:
                tracks[track.kind] = track
            else:
                track.stop()
        self._tracks[remote] = list(tracks.values())
        return tracks

    async def _offer_to(self, remote: str, kinds: Mapping[str, tuple[bool, bool]]) -> None:
        assert self._channel is not None
        pc = self._new_pc(remote)
        tracks = self._own_tracks(remote, {kind for kind, (send, _) in kinds.items() if send})
        for kind in KINDS:
            track = tracks.get(kind)
            direction = _direction(track is not None, kinds[kind][1])
            if direction != "inactive":
                transceiver = pc.addTransceiver(track if track is not None else kind, direction=direction)
                prefer_video_codec(transceiver, self.ctx.video_codec)
        await pc.setLocalDescription(await pc.createOffer())
        if self._broken:
            raise SystemError_(self._broken)
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._answers[remote] = answer
        await self._channel.send({"op": "signal", "to": remote,
                                  "data": {"type": "offer", "sdp": pc.localDescription.sdp,
                                           "role": {"publish": list(self.ctx.publish),
                                                    "subscribe": self.ctx.subscribe}}})
        sdp = await answer
        if not self._left:
            await apply_answer(pc, sdp, f"{remote} (through the p2p broker)")
            self.ctx.listener.on_event("peer_connected", remote)

    async def _answer(self, remote: str, offer: str, kinds: Mapping[str, tuple[bool, bool]]) -> None:
        if self._left or self._channel is None:
            return
        pc = self._new_pc(remote)
        try:
            await apply_offer(pc, offer, f"{remote} (through the p2p broker)")
        except SystemError_ as exc:  # one broken peer costs its connection, not this participant
            self.ctx.listener.on_event("negotiation_failed", str(exc))
            await self._drop(remote)
            return
        offered = {t.kind for t in pc.getTransceivers()}
        tracks = self._own_tracks(remote, {kind for kind in offered if kinds.get(kind, (True, True))[0]})
        for transceiver in pc.getTransceivers():
            track = tracks.get(transceiver.kind)
            if track is not None:
                transceiver.sender.replaceTrack(track)
            transceiver.direction = _direction(track is not None, self.ctx.subscribe)
        await pc.setLocalDescription(await pc.createAnswer())
        await self._channel.send({"op": "signal", "to": remote,
                                  "data": {"type": "answer", "sdp": pc.localDescription.sdp}})
        self.ctx.listener.on_event("peer_joined", remote)

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
