"""``livekit``: the LiveKit SFU, over its own signalling (protobuf messages on a WebSocket).

``--system livekit`` builds (once) and starts a local LiveKit server for the run (:mod:`harness.testbed.livekit`,
needs root and Go); ``livekit=ws://HOST:7880`` joins a running one. The API key and secret that sign the access
tokens come from the environment only, never from the scenario, the URL or the results:
``CONFBENCH_LIVEKIT_API_KEY`` and ``CONFBENCH_LIVEKIT_API_SECRET`` (the local testbed generates a pair per run
and puts it there for the run's processes).

The messages (``SignalRequest``/``SignalResponse``) are LiveKit's own, from the ``livekit-protocol`` package, and
the access tokens come from ``livekit-api``. A participant has LiveKit's two peer connections:

- the publisher connection, which the participant offers after announcing each track (``AddTrackRequest``,
  answered by ``TrackPublishedResponse``); created only when it publishes;
- the subscriber connection, which the *server* offers and renegotiates whenever a track is added or removed:
  with ``auto_subscribe`` the server subscribes the participant to every track of the room, also to those of
  participants who join later, so following the room is answering its offers.

Remote tracks are named by LiveKit's track ids (the ``msid`` of the server's offer); the participant updates
map them to the publishing participant's identity. Keep-alive pings go at the interval the server asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol
from urllib.parse import urlencode

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
)
from aiortc.sdp import candidate_from_sdp
from google.protobuf.message import DecodeError
from livekit.api.access_token import AccessToken, VideoGrants
from livekit.protocol import models, rtc

from harness.errors import SystemError_
from harness.media.simulcast import munge_offer
from harness.media.tap import receiver_of
from harness.rtc import remb
from harness.systems import IMPAIRED_NETWORK
from harness.systems.base import Deployment, Session, SessionContext, System, prefer_video_codec
from harness.systems.guard import MAX_MESSAGE, FloodGuard, apply_answer, apply_offer, fail_waiting
from harness.systems.layer_choice import AUTO
from harness.systems.livekit_tracks import QUALITY, add_track_request
from harness.systems.local import LocalServerFaults

log = logging.getLogger(__name__)

API_KEY_ENV = "CONFBENCH_LIVEKIT_API_KEY"
API_SECRET_ENV = "CONFBENCH_LIVEKIT_API_SECRET"
#: The signalling protocol version this adapter speaks (two peer connections, server offers the subscriber).
PROTOCOL = 15
#: How long a remote track may wait for the participant update that names its publisher.
NAME_WAIT_S = 3.0
PROBE_IDENTITY = "confbench-probe"


def credentials(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The API key and secret from the environment; :class:`SystemError_` in one line when either is missing."""
    env = os.environ if env is None else env
    key, secret = env.get(API_KEY_ENV), env.get(API_SECRET_ENV)
    if not key or not secret:
        raise SystemError_(f"LiveKit needs its API key and secret in {API_KEY_ENV} and {API_SECRET_ENV}")
    return key, secret


def access_token(room: str, identity: str, publish: bool, subscribe: bool, hidden: bool = False,
                 env: Mapping[str, str] | None = None) -> str:
    """A signed access token for one participant of ``room`` (``livekit-api``'s ``AccessToken``)."""
    key, secret = credentials(env)
    grants = VideoGrants(room_join=True, room=room, can_publish=publish, can_subscribe=subscribe,
                         can_publish_data=False, hidden=hidden)
    return AccessToken(key, secret).with_identity(identity).with_name(identity).with_grants(grants).to_jwt()


def signal_url(base: str, token: str, auto_subscribe: bool) -> str:
    """The signalling WebSocket URL (``/rtc``: LiveKit's protocol with two peer connections)."""
    query = {"access_token": token, "auto_subscribe": "1" if auto_subscribe else "0", "protocol": str(PROTOCOL),
             "sdk": "confbench", "version": "0.1", "adaptive_stream": "0"}
    return f"{base.rstrip('/')}/rtc?{urlencode(query)}"


class Signal:
    """One LiveKit signalling connection: protobuf ``SignalRequest`` out, ``SignalResponse`` in."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._guard = FloodGuard(f"LiveKit at {url}")

    async def open(self, token: str, auto_subscribe: bool) -> rtc.JoinResponse:
        """Connect and return the server's ``JoinResponse``; refusals become one-line :class:`SystemError_`."""
        # The connect is bounded; the socket itself lives as long as the participant (no total timeout).
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout_s))
        try:
            self._ws = await self._http.ws_connect(signal_url(self.url, token, auto_subscribe),
                                                   timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                                                   max_msg_size=MAX_MESSAGE, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            await self.close()
            if exc.status == 401:
                raise SystemError_(f"LiveKit at {self.url} refused the access token (401 Unauthorized): check "
                                   f"{API_KEY_ENV} and {API_SECRET_ENV}") from None
            raise SystemError_(f"LiveKit at {self.url} refused the connection: {exc.status} {exc.message}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self.close()
            raise SystemError_(f"cannot reach LiveKit at {self.url}: {exc or type(exc).__name__}") from None
        try:
            first = await asyncio.wait_for(self.receive(), timeout=self.timeout_s)
        except TimeoutError:
            raise SystemError_(f"LiveKit at {self.url} sent no JoinResponse within {self.timeout_s:g} s") from None
        if first is None or first.WhichOneof("message") != "join":
            what = "the connection closed" if first is None else f"got {first.WhichOneof('message')}"
            raise SystemError_(f"LiveKit at {self.url} did not let the participant join ({what})")
        return first.join

    async def send(self, request: rtc.SignalRequest) -> None:
        """Send one request (silently dropped once the connection is gone: leaving must not raise)."""
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws.send_bytes(request.SerializeToString())

    async def receive(self) -> rtc.SignalResponse | None:
        """The next response, or None when the connection closed; :class:`SystemError_` for a message that is
        not a ``SignalResponse``, one too large, or a flood."""
        assert self._ws is not None
        while True:
            msg = await self._ws.receive()
            self._guard.count()
            if msg.type == aiohttp.WSMsgType.BINARY:
                try:
                    return rtc.SignalResponse.FromString(msg.data)
                except DecodeError:
                    raise SystemError_(f"LiveKit at {self.url} sent a message that is not a SignalResponse "
                                       f"({len(msg.data)} bytes)") from None
            if msg.type == aiohttp.WSMsgType.ERROR:
                raise SystemError_(f"LiveKit at {self.url} broke the WebSocket: {msg.data}")
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return None

    async def close(self, graceful: bool = True) -> None:
        """Close the WebSocket and its HTTP session (bounded); not ``graceful``: without a closing handshake
        (a server that floods or breaks the protocol gets none)."""
        ws, http, self._ws, self._http = self._ws, self._http, None, None
        try:
            with contextlib.suppress(Exception):
                if ws is not None and graceful:
                    await asyncio.wait_for(ws.close(), timeout=2.0)
        finally:  # also when the closing task is cancelled: the session must not outlive the participant
            if http is not None:
                await http.close()


async def server_info(url: str, timeout_s: float = 10.0, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """LiveKit's version and protocol, learnt by joining a probe room as a hidden participant (this also
    checks the API key and secret); :class:`SystemError_` in one line otherwise."""
    signal = Signal(url, timeout_s)
    token = access_token(f"{PROBE_IDENTITY}-{os.getpid()}", PROBE_IDENTITY, publish=False, subscribe=False,
                         hidden=True, env=env)
    try:
        join = await asyncio.wait_for(signal.open(token, auto_subscribe=False), timeout=timeout_s)
        await signal.send(rtc.SignalRequest(leave=rtc.LeaveRequest(reason=models.DisconnectReason.CLIENT_INITIATED)))
    except TimeoutError:
        raise SystemError_(f"LiveKit at {url} did not answer within {timeout_s:g} s") from None
    finally:
        await signal.close()
    info = join.server_info
    return {"server": "livekit", "version": info.version or join.server_version or None,
            "protocol": info.protocol, "edition": models.ServerInfo.Edition.Name(info.edition),
            "node_id": info.node_id or None}


class LiveKitSystem(LocalServerFaults, System):
    """A LiveKit server, locally built and started, or at a given URL."""

    name: ClassVar[str] = "livekit"
    simulcast: ClassVar[bool] = True
    description: ClassVar[str] = ("LiveKit SFU (two peer connections); built from its Go module and started "
                                  "locally in a namespace, or livekit=ws://HOST:7880")

    def __init__(self, url: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self._local: Any = None  # harness.testbed.livekit.LocalLiveKit while this system runs one
        self._saved_env: dict[str, str | None] = {}

    def deploy(self) -> Deployment:
        """Start a local LiveKit (no URL given) or check the given one; record its version."""
        pids: tuple[int, ...] = ()
        hosts: tuple[str, ...] = ()
        if self.url is None:
            from harness.testbed.livekit import LocalLiveKit  # only the controller of a local run needs it

            self._local = LocalLiveKit.start(network=self.options.get(IMPAIRED_NETWORK))
            self.url = self._local.ws_url
            pids, hosts = (self._local.pid,), (self._local.host_address,)
            # The run's processes (Locust, media hosts) inherit the generated keys through the environment.
            for name, value in ((API_KEY_ENV, self._local.api_key), (API_SECRET_ENV, self._local.api_secret)):
                self._saved_env[name] = os.environ.get(name)
                os.environ[name] = value
        try:
            info = asyncio.run(server_info(self.url))
        except BaseException:
            self.undeploy()
            raise
        return Deployment(url=self.url, server_pids=pids, info=info, host_addresses=hosts)

    def undeploy(self) -> None:
        """Stop the local LiveKit and remove its namespace (if this system started one); restore the keys."""
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        local, self._local = self._local, None
        if local is not None:
            local.stop()

    def web_client(self) -> str | None:
        """The join page built on LiveKit's JavaScript SDK (``harness.testbed.livekit_page``; installed once)."""
        from harness.testbed.livekit_page import ensure_page  # only runs with browser participants need it

        return str(ensure_page())

    def session(self, ctx: SessionContext) -> Session:
        """A LiveKit session for one participant."""
        if self.url is None:
            raise SystemError_("the livekit system has no URL yet (deploy it first)")
        return LiveKitSession(ctx, self.url)


class _Meeting(Protocol):
    """What the page's prepare hook reads of ``harness.browser.platform.Meeting``."""

    room: str
    participant: str


async def issue_token(meeting: _Meeting, video_codec: str, timeout_s: float) -> dict[str, str]:
    """The LiveKit join page's ``prepare`` hook: this participant's access token, and the codec the page
    publishes (typed into the page by its join steps, never put in its URL)."""
    token = access_token(meeting.room, meeting.participant, publish=True, subscribe=True)
    return {"livekit_token": token, "codec": video_codec.lower()}


def subscriber_connection() -> RTCPeerConnection:
    """The subscriber peer connection, bent for LiveKit's offers.

    LiveKit's server offers every subscribed track as an m-line of one bundled transport. aiortc's default
    "balanced" bundle policy gives a second m-line of the same kind a transport of its own before moving the
    m-lines onto the bundle, and that stream never starts (the same bend as the Janus subscriber); with
    max-bundle every m-line shares the first transport from the start.
    """
    return RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class LiveKitSession(Session):
    """One participant in a LiveKit room: the signalling connection and the two peer connections."""

    def __init__(self, ctx: SessionContext, url: str) -> None:
        self.ctx = ctx
        self._signal = Signal(url, timeout_s=min(ctx.timeout_s, 10.0))
        self._pub_pc: RTCPeerConnection | None = None
        self._sub_pc: RTCPeerConnection | None = None
        self._my_sid = ""
        self._names: dict[str, str] = {}  # participant sid -> identity
        self._track_owner: dict[str, str] = {}  # track sid -> participant sid
        self._present: set[str] = set()  # identities of the others in the room
        self._subscribed: set[str] = set()  # identities whose tracks this participant receives
        self._named = asyncio.Event()  # set whenever a participant update arrives
        self._published: dict[str, asyncio.Future[rtc.TrackPublishedResponse]] = {}  # track cid -> reply
        self._pub_answer: asyncio.Future[rtc.SessionDescription] | None = None
        self._first_offer = asyncio.Event()
        self._pending: dict[int, list[dict[str, Any]]] = {rtc.PUBLISHER: [], rtc.SUBSCRIBER: []}
        self._offers: asyncio.Queue[rtc.SessionDescription] = asyncio.Queue()  # the server's, answered in order
        self._tasks: list[asyncio.Task[None]] = []
        self._broken = ""  # why the signalling connection ended, once it has
        self._left = False
        self._declined: set[str] = set()  # track sids of our own other publications, unsubscribed
        self._speaking: dict[str, bool] = {}  # participant -> active, as LiveKit last said
        self._active: list[str] = []
        self._video_sids: list[str] = []  # LiveKit's track sids of the remote video tracks received

    # -- joining -------------------------------------------------------------------------------------------
    async def join(self) -> None:
        """Connect, publish this participant's tracks, and follow the room (the server subscribes us)."""
        token = access_token(self.ctx.room, self.ctx.participant, publish=bool(self.ctx.publish),
                             subscribe=self.ctx.subscribe)
        join = await self._signal.open(token, auto_subscribe=self.ctx.subscribe)
        self._my_sid = join.participant.sid
        self._learn(join.other_participants, announce=False)
        self._tasks.append(asyncio.ensure_future(self._read()))
        self._tasks.append(asyncio.ensure_future(self._answer_offers()))
        self._tasks.append(asyncio.ensure_future(self._keepalive(max(join.ping_interval, 1))))
        tracks = self.ctx.media.tracks()
        if tracks:
            await self._publish(tracks)
        elif self.ctx.subscribe and join.subscriber_primary:
            # A receive-only participant is in the call once the server's first subscriber offer is answered.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_offer.wait(), timeout=self.ctx.timeout_s / 2)

    async def _publish(self, tracks: list[MediaStreamTrack]) -> None:
        pc = self._pub_pc = RTCPeerConnection()
        loop = asyncio.get_running_loop()
        for track in tracks:
            prefer_video_codec(pc.addTransceiver(track, direction="sendonly"), self.ctx.video_codec)
            self._published[track.id] = loop.create_future()
            if self._broken:
                fail_waiting([self._published[track.id]], self._broken)
            await self._signal.send(rtc.SignalRequest(add_track=add_track_request(track, self.ctx.video_codec)))
        self.ctx.listener.on_connection(pc, "server")
        for cid, future in self._published.items():
            try:
                await asyncio.wait_for(future, timeout=self.ctx.timeout_s)
            except TimeoutError:
                raise SystemError_(f"LiveKit did not accept the publication of track {cid}") from None
        await pc.setLocalDescription(await pc.createOffer())
        if self._broken:
            raise SystemError_(self._broken)
        self._pub_answer = loop.create_future()
        # Simulcast: LiveKit (pion) reads the layers from a=rid/a=simulcast and each packet's RID, as from a
        # browser (harness.media.simulcast); aiortc keeps its own description.
        offer = munge_offer(pc.localDescription.sdp, [t.sender.track for t in pc.getTransceivers()])
        await self._signal.send(rtc.SignalRequest(offer=rtc.SessionDescription(type="offer", sdp=offer)))
        try:
            answer = await asyncio.wait_for(self._pub_answer, timeout=self.ctx.timeout_s)
        except TimeoutError:
            raise SystemError_("LiveKit sent no answer to the publisher's offer") from None
        await apply_answer(pc, answer.sdp, f"LiveKit at {self._signal.url}", need_candidates=False)
        await self._add_candidates(rtc.PUBLISHER)

    # -- what the server tells us --------------------------------------------------------------------------
    async def _read(self) -> None:
        """Handle every response until the connection closes; a failure is an event, not a crash."""
        while not self._left:
            reason = f"the connection to LiveKit at {self._signal.url} was lost"
            hostile = False
            try:
                msg = await self._signal.receive()
            except SystemError_ as exc:  # a broken or hostile server
                msg, reason, hostile = None, str(exc), True
            except Exception as exc:  # DESIGN.md §5.6: the connection is gone; say so once
                msg = None
                log.debug("LiveKit signalling read failed: %s", exc)
            if msg is None:
                # A join waiting for a reply fails now, with the reason, rather than at its timeout.
                self._broken = reason
                fail_waiting((*self._published.values(), self._pub_answer), reason)
                if not self._left:
                    self.ctx.listener.on_event("server_lost", reason)
                await self._signal.close(graceful=not hostile)
                return
            try:
                await self._handle(msg)
            except (SystemError_, TimeoutError) as exc:
                self.ctx.listener.on_event("renegotiation_failed", str(exc))
            except Exception as exc:
                log.exception("handling a LiveKit message failed")
                self.ctx.listener.on_event("renegotiation_failed", f"{type(exc).__name__}: {exc}")

    async def _handle(self, msg: rtc.SignalResponse) -> None:
        kind = msg.WhichOneof("message")
        if kind == "offer":
            self._offers.put_nowait(msg.offer)
        elif kind == "answer":
            if self._pub_answer is not None and not self._pub_answer.done():
                self._pub_answer.set_result(msg.answer)
        elif kind == "trickle":
            await self._trickle(msg.trickle)
        elif kind == "track_published":
            future = self._published.get(msg.track_published.cid)
            if future is not None and not future.done():
                future.set_result(msg.track_published)
        elif kind == "update":
            self._learn(msg.update.participants, announce=True)
        elif kind == "track_unpublished":
            self._unsubscribed(self._names.get(self._track_owner.get(msg.track_unpublished.track_sid, ""), ""))
        elif kind == "leave":
            self.ctx.listener.on_event("hangup", models.DisconnectReason.Name(msg.leave.reason))
        elif kind == "speakers_changed" and self.ctx.speakers:
            # LiveKit's own active-speaker detection (from the audio level header extension). It sends levels
            # several times a second; only a change of who is active is recorded (an event per participant).
            names = {**self._names, self._my_sid: self.ctx.participant}
            for sp in msg.speakers_changed.speakers:
                self._speaking[names.get(sp.sid, sp.sid)] = sp.active
            active = sorted(name for name, on in self._speaking.items() if on)
            if active != self._active:
                self._active = active
                self.ctx.listener.on_event("system_speakers", json.dumps(active))

    def _learn(self, participants: Any, announce: bool) -> None:
        """Record who is in the room and which tracks are theirs; report arrivals and departures."""
        for info in participants:
            if info.sid == self._my_sid or info.identity == PROBE_IDENTITY:
                continue
            self._names[info.sid] = info.identity
            for track in info.tracks:
                self._track_owner[track.sid] = info.sid
            if info.identity in self.ctx.own and info.tracks:
                # Our own screen share: the server subscribes everyone to everything; say no to it.
                sids = [t.sid for t in info.tracks if t.sid not in self._declined]
                if sids:
                    self._declined.update(sids)
                    self._tasks.append(asyncio.ensure_future(self._signal.send(rtc.SignalRequest(
                        subscription=rtc.UpdateSubscription(track_sids=sids, subscribe=False)))))
            if info.state == models.ParticipantInfo.DISCONNECTED:
                if info.identity in self._present:
                    self._present.discard(info.identity)
                    self.ctx.listener.on_event("peer_left", info.identity)
                self._unsubscribed(info.identity)
            elif info.identity not in self._present:
                self._present.add(info.identity)
                if announce:
                    self.ctx.listener.on_event("peer_joined", info.identity)
        self._named.set()
        self._named = asyncio.Event()

    async def _answer_offers(self) -> None:
        """Answer the server's subscriber offers one at a time, in a task of their own (the reader must go on
        reading the candidates the first answer's connection needs).

        aiortc starts a connection's receivers once its DTLS transport is up, in a task per negotiation; a
        renegotiation while the first handshake is under way (LiveKit re-offers as soon as a track is added)
        starts one more such task, which finds the transport connecting and skips every receiver, and the
        streams never reach them (seen with participants behind the impairment wire). So after the first
        answer the next offer waits until the connection is up (bounded by the join timeout).
        """
        first = True
        while not self._left:
            offer = await self._offers.get()
            try:
                await self._answer(offer)
                if first and self._sub_pc is not None:
                    first = False
                    await self._connected(self._sub_pc)
            except (SystemError_, TimeoutError) as exc:
                self.ctx.listener.on_event("renegotiation_failed", str(exc))
            except Exception as exc:  # DESIGN.md §5.6: log it, and keep answering
                log.exception("answering a LiveKit offer failed")
                self.ctx.listener.on_event("renegotiation_failed", f"{type(exc).__name__}: {exc}")

    async def _connected(self, pc: RTCPeerConnection) -> None:
        """Wait until ``pc`` is connected (or failed, or the join timeout passed)."""
        deadline = time.monotonic() + self.ctx.timeout_s
        while pc.connectionState not in ("connected", "failed", "closed") and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def _unsubscribed(self, identity: str) -> None:
        if identity in self._subscribed:
            self._subscribed.discard(identity)
            self.ctx.listener.on_event("unsubscribed", identity)

    async def _answer(self, offer: rtc.SessionDescription) -> None:
        """Answer the server's (re)offer of the subscriber connection."""
        pc = self._sub_pc
        if pc is None:
            pc = self._sub_pc = subscriber_connection()
            self.ctx.listener.on_connection(pc, "server")

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self._tasks.append(asyncio.ensure_future(self._announce_track(pc, track)))

        await apply_offer(pc, offer.sdp, f"LiveKit at {self._signal.url}")
        await pc.setLocalDescription(await pc.createAnswer())
        await self._signal.send(rtc.SignalRequest(answer=rtc.SessionDescription(
            type="answer", sdp=pc.localDescription.sdp, id=offer.id)))
        await self._add_candidates(rtc.SUBSCRIBER)
        self._first_offer.set()

    async def _announce_track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        """Tell the engine about a remote track once its publisher is known (the msid's track id is LiveKit's
        track sid; the participant update that owns it may come a moment after the offer)."""
        deadline = time.monotonic() + NAME_WAIT_S
        while track.id not in self._track_owner and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._named.wait(), timeout=max(deadline - time.monotonic(), 0.01))
        owner = self._names.get(self._track_owner.get(track.id, ""), "server")
        if owner != "server" and owner not in self._subscribed:
            self._subscribed.add(owner)
            self.ctx.listener.on_event("subscribed", owner)
        receiver = receiver_of(pc, track)
        if track.kind == "video":
            self._video_sids.append(track.id)
            await self._choose_layer(track.id, receiver)
        self.ctx.listener.on_track(track, owner, receiver)

    async def _choose_layer(self, track_sid: str, receiver: Any) -> None:
        """Apply the group's ``prefer_layer`` to one remote video track, LiveKit's way.

        A layer name caps what the SFU forwards (``UpdateTrackSettings.quality``; a publisher of one encoding
        is unaffected). ``"auto"`` leaves the choice to the SFU, which allocates layers per subscriber from the
        subscriber's bandwidth estimate, and confbench's receivers send none by default
        (:mod:`harness.rtc.remb`): this receiver gets an estimator back, aiortc's plus a rise on the SFU's probes
        (:mod:`harness.rtc.probe_estimate`, without which LiveKit never moves it back up), so that LiveKit
        receives REMB (its default ``remote_bwe``; TWCC only with ``use_send_side_bwe``, which aiortc cannot send).
        """
        layer = self.ctx.prefer_layer
        if layer == AUTO:
            if receiver is not None:
                remb.estimate(receiver)
        elif layer is not None:
            await self.choose_layer(layer, [track_sid])

    def remote_video(self) -> list[str]:
        """LiveKit's track sids of the remote video tracks this participant received."""
        return list(self._video_sids)

    async def choose_layer(self, rid: str, track_sids: list[str]) -> None:
        """Ask LiveKit for at most simulcast layer ``rid`` of the remote video tracks ``track_sids``."""
        if rid not in QUALITY:
            raise ValueError(f"no simulcast layer {rid!r} (layers: {', '.join(QUALITY)})")
        await self._signal.send(rtc.SignalRequest(track_setting=rtc.UpdateTrackSettings(
            track_sids=track_sids, quality=QUALITY[rid])))

    async def _trickle(self, trickle: rtc.TrickleRequest) -> None:
        if not trickle.candidateInit:
            return
        try:
            init = json.loads(trickle.candidateInit)
            target = self._pending[trickle.target]
        except (ValueError, KeyError):
            self.ctx.listener.on_event("bad_candidate", trickle.candidateInit[:100])
            return
        if not isinstance(init, dict):
            self.ctx.listener.on_event("bad_candidate", trickle.candidateInit[:100])
            return
        target.append(init)
        await self._add_candidates(trickle.target)

    async def _add_candidates(self, target: int) -> None:
        """Hand the server's trickled ICE candidates to a connection once it has the remote description."""
        pc = self._pub_pc if target == rtc.PUBLISHER else self._sub_pc
        if pc is None or pc.remoteDescription is None:
            return
        pending, self._pending[target] = self._pending[target], []
        for init in pending:
            text = str(init.get("candidate") or "")
            if not text:
                continue
            with contextlib.suppress(Exception):  # a candidate aiortc cannot use (e.g. TCP, garbage) is skipped
                candidate = candidate_from_sdp(text.removeprefix("candidate:"))
                candidate.sdpMid = init.get("sdpMid")
                candidate.sdpMLineIndex = init.get("sdpMLineIndex")
                await pc.addIceCandidate(candidate)

    async def _keepalive(self, interval_s: int) -> None:
        while not self._left:
            await asyncio.sleep(interval_s)
            now_ms = int(time.time() * 1000)
            await self._signal.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=now_ms)))

    # -- leaving -------------------------------------------------------------------------------------------
    async def leave(self) -> None:
        """Say goodbye, close both peer connections and the signalling connection (bounded)."""
        if self._left:
            return
        self._left = True
        for task in self._tasks:
            task.cancel()
        await self._signal.send(rtc.SignalRequest(leave=rtc.LeaveRequest(
            reason=models.DisconnectReason.CLIENT_INITIATED)))
        for pc in (self._pub_pc, self._sub_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pc.close(), timeout=5)
        await self._signal.close()
