"""``janus``: the Janus WebRTC server's VideoRoom plugin, over Janus's WebSocket API (or HTTP long-poll).

``--system janus`` starts a local Janus for the run (:mod:`harness.testbed.janus`, needs root);
``janus=ws://HOST:8188`` joins a running one over WebSocket, ``janus=http://HOST:8088/janus`` over HTTP
long-poll. Each participant has its own Janus session (kept alive) with two VideoRoom handles:

- a publisher handle, which joins the room (creating it if missing) and publishes on one peer connection;
  participants that publish nothing join as publishers all the same, because that is how a VideoRoom
  participant learns who publishes;
- a subscriber handle using multistream subscriptions: one peer connection carries every feed; publishers
  that arrive later are added with ``update`` and those who leave removed, each change answered by a
  renegotiation that Janus offers.

Room names become Janus's numeric room ids (a name of digits is used as is, others are hashed, see
:func:`room_id`). Rooms created by the harness allow many publishers and the scenario's codec. Secrets come
from the environment, never from the scenario or the URL: ``CONFBENCH_JANUS_API_SECRET``,
``CONFBENCH_JANUS_TOKEN`` (see :mod:`harness.systems.janus_api`), ``CONFBENCH_JANUS_ROOM_SECRET`` and
``CONFBENCH_JANUS_ROOM_PIN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
)

from harness.errors import SystemError_
from harness.media.simulcast import munge_offer, rid_of, substream
from harness.media.tap import inbound_counts, receiver_of, watch_transit
from harness.systems import IMPAIRED_NETWORK
from harness.systems.base import Deployment, Session, SessionContext, System, prefer_video_codec
from harness.systems.guard import apply_answer, apply_offer
from harness.systems.janus_api import JanusClient, JanusHandle, JanusRefused, Message, PluginReply
from harness.systems.layer_choice import AUTO, LayerChoice, StandingQueue
from harness.systems.local import LocalServerFaults

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
ROOM_SECRET_ENV = "CONFBENCH_JANUS_ROOM_SECRET"
ROOM_PIN_ENV = "CONFBENCH_JANUS_ROOM_PIN"
#: Janus's default is 3 publishers per room; a benchmark room must hold every participant.
MAX_PUBLISHERS = 1000
ROOM_EXISTS = 427
NO_SUCH_FEED = 428
SPEECH_LEVEL_DBOV = 45
"""``audio_level_average`` of rooms created for a speaker pattern: talking when the average level is louder."""
ACTIVE_PACKETS = 50
"""``audio_active_packets``: Janus averages the level over this many packets (1 s of 20 ms Opus frames)."""
LAYER_TICK_S = 0.1
"""How often an automatic subscriber (``prefer_layer = "auto"``) looks at what it received: loss is judged over
the last second and a standing queue over the last 250 ms at each look, so a short tick only answers sooner
(a failed probe undone about 0.1 s earlier than with 250 ms ticks)."""


def room_id(room: str) -> int:
    """Janus's numeric room id for a scenario's room name (digits as is; otherwise a stable 31-bit hash)."""
    if room.isdigit():
        return int(room)
    return zlib.crc32(room.encode()) & 0x7FFFFFFF or 1


def _env_secrets(env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    return {k: v for k, v in (("secret", env.get(ROOM_SECRET_ENV)), ("pin", env.get(ROOM_PIN_ENV))) if v}


async def server_info(url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """Janus's version and plugins, checking that VideoRoom is there; raises ``SystemError_`` otherwise."""
    client = JanusClient(url, timeout_s=timeout_s)
    try:
        await client.open()
        info = await client.info()
    finally:
        await client.close()
    plugins = sorted(info.get("plugins", {}))
    if VIDEOROOM not in plugins:
        raise SystemError_(f"the Janus at {url} has no VideoRoom plugin (plugins: {', '.join(plugins) or 'none'})")
    return {"server": "janus", "version": info.get("version_string"), "plugins": plugins,
            "transports": sorted(info.get("transports", {})), "name": info.get("name")}


class JanusSystem(LocalServerFaults, System):
    """Janus's VideoRoom, locally started or at a given URL."""

    name: ClassVar[str] = "janus"
    description: ClassVar[str] = "Janus VideoRoom (multistream); started locally in a namespace, or janus=ws://HOST:8188"
    simulcast: ClassVar[bool] = True

    def __init__(self, url: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self._local: Any = None  # harness.testbed.janus.LocalJanus while this system runs one

    def deploy(self) -> Deployment:
        """Start a local Janus (no URL given) or check the given one; record its version and plugins."""
        pids: tuple[int, ...] = ()
        hosts: tuple[str, ...] = ()
        if self.url is None:
            from harness.testbed.janus import LocalJanus  # only the controller of a local run needs it

            self._local = LocalJanus.start(network=self.options.get(IMPAIRED_NETWORK))
            self.url = self._local.ws_url
            pids, hosts = (self._local.pid,), (self._local.host_address,)
        try:
            info = asyncio.run(server_info(self.url))
        except BaseException:
            self.undeploy()
            raise
        return Deployment(url=self.url, server_pids=pids, info=info, host_addresses=hosts)

    def undeploy(self) -> None:
        """Stop the local Janus and remove its namespace (if this system started one)."""
        local, self._local = self._local, None
        if local is not None:
            local.stop()

    def web_client(self) -> str | None:
        """Janus's VideoRoom demo page (Debian's janus-demos), for browser participants (docs/browser.md)."""
        return "janus-videoroom"

    def session(self, ctx: SessionContext) -> Session:
        """A VideoRoom session for one participant."""
        if self.url is None:
            raise SystemError_("the janus system has no URL yet (deploy it first)")
        return JanusSession(ctx, self.url)


class JanusSession(Session):
    """One participant in a VideoRoom: a publisher handle, and one multistream subscription."""

    def __init__(self, ctx: SessionContext, url: str, own_display: str | None = None) -> None:
        """``own_display``: the display name under which this participant's media reaches the room by another
        path (a WHIP endpoint in front of Janus, :mod:`harness.systems.janus_whip`); such feeds are its own."""
        self.ctx = ctx
        self._own_display = own_display
        self._own_feeds: set[int] = set()
        self.room = room_id(ctx.room)
        self._client = JanusClient(url, timeout_s=min(ctx.timeout_s, 10.0))
        self._secrets = _env_secrets()
        self._pub: JanusHandle | None = None
        self._sub: JanusHandle | None = None
        self._pub_pc: RTCPeerConnection | None = None
        self._sub_pc: RTCPeerConnection | None = None
        self._private_id: int | None = None
        self._my_id: int | None = None
        self._feeds: dict[int, str] = {}  # subscribed feed id -> display name
        self._displays: dict[int, str] = {}  # feed id -> display name, of every publisher seen
        self._mids: dict[str, str] = {}  # subscription mid -> display name of its feed
        self._video_mids: set[str] = set()  # subscription mids carrying video
        self._choice: LayerChoice | None = None  # prefer_layer = "auto": the client's own layer choice
        self._lock = asyncio.Lock()  # one subscription change (and its renegotiation) at a time
        self._tasks: list[asyncio.Task[None]] = []
        self._left = False

    async def join(self) -> None:
        """Join (creating the room if needed), publish, and subscribe to everyone publishing."""
        await self._client.open()
        self._pub = await self._client.attach(VIDEOROOM)
        await self._ensure_room(self._pub)
        joined = await self._pub.message({"request": "join", "ptype": "publisher", "room": self.room,
                                          "display": self.ctx.participant, **_only(self._secrets, "pin")},
                                         what=f"joining room {self.room}")
        if not isinstance(joined.data.get("id"), int):
            raise SystemError_(f"Janus answered joining room {self.room} without a participant id")
        self._my_id = joined.data["id"]
        self._displays.update(_publishers(joined.data))
        self._private_id = joined.data.get("private_id")
        tracks = self.ctx.media.tracks()
        if tracks:
            await self._publish(self._pub, tracks)
        self._tasks.append(asyncio.ensure_future(self._follow(self._pub, self._on_room_event)))
        if self.ctx.subscribe:
            await self._subscribe(_publishers(joined.data))

    async def _ensure_room(self, handle: JanusHandle) -> None:
        exists = await handle.message({"request": "exists", "room": self.room}, what="the room check")
        if exists.data.get("exists"):
            return
        create = {"request": "create", "room": self.room, "publishers": MAX_PUBLISHERS, "bitrate": 0,
                  "videocodec": self.ctx.video_codec.lower(), "audiocodec": "opus", "notify_joining": True,
                  "description": f"confbench {self.ctx.room}", **self._secrets}
        if self.ctx.speakers:
            # Talking events from the publishers' ssrc-audio-level extension. Janus's default threshold (an
            # average of 25 dB below full scale) would take a shout; normal speech sits around 30 dB below and
            # the harness's near-silence at 127, so 45 separates them (harness.media.speakers).
            create.update(audiolevel_event=True, audio_level_average=SPEECH_LEVEL_DBOV,
                          audio_active_packets=ACTIVE_PACKETS)
        try:
            await handle.message(create, what=f"creating room {self.room}")
        except JanusRefused as exc:
            if exc.code != ROOM_EXISTS:  # another participant created it first: fine
                raise

    async def _publish(self, handle: JanusHandle, tracks: list[MediaStreamTrack]) -> None:
        pc = RTCPeerConnection()
        self._pub_pc = pc
        for track in tracks:
            prefer_video_codec(pc.addTransceiver(track, direction="sendonly"), self.ctx.video_codec)
        self.ctx.listener.on_connection(pc, "server")
        await pc.setLocalDescription(await pc.createOffer())
        # Simulcast: Janus reads the layers from a=rid/a=simulcast, as from a browser (harness.media.simulcast).
        offer = munge_offer(pc.localDescription.sdp, [t.sender.track for t in pc.getTransceivers()])
        reply = await handle.message({"request": "publish", "display": self.ctx.participant},
                                     jsep={"type": "offer", "sdp": offer}, what="publishing")
        if not reply.jsep:
            raise SystemError_("Janus accepted the publication without an SDP answer")
        await apply_answer(pc, str(reply.jsep.get("sdp", "")), "Janus", need_candidates=False)

    # -- subscriptions -------------------------------------------------------------------------------------
    async def _subscribe(self, publishers: Mapping[int, str]) -> None:
        """Add ``publishers`` (feed id -> display) to the subscription, creating it on first use."""
        async with self._lock:
            wanted = {f: d for f, d in self._others(publishers).items() if f not in self._feeds}
            if not wanted or self._left:
                return
            streams = [{"feed": feed} for feed in wanted]
            if self._sub is None:
                self._sub = await self._client.attach(VIDEOROOM)
                reply = await self._sub.message(
                    {"request": "join", "ptype": "subscriber", "room": self.room, "streams": streams,
                     "use_msid": False, **_only(self._secrets, "pin"),
                     **({"private_id": self._private_id} if self._private_id else {})},
                    what="the subscription")
                self._tasks.append(asyncio.ensure_future(self._follow(self._sub, self._on_subscriber_event)))
            else:
                reply = await self._sub.message({"request": "update", "subscribe": streams},
                                                 what="a subscription update")
            self._feeds.update(wanted)
            for display in wanted.values():
                self.ctx.listener.on_event("subscribed", display)
            await self._answer(reply)

    def _others(self, publishers: Mapping[int, str]) -> dict[int, str]:
        """The feeds of ``publishers`` that are not this participant's own."""
        self._own_feeds.update(f for f, d in publishers.items() if d == self._own_display)
        self._displays.update(publishers)
        return {f: self._name(d) for f, d in publishers.items()
                if f != self._my_id and f not in self._own_feeds and self._name(d) not in self.ctx.own}

    def _name(self, display: str) -> str:
        """The participant a feed's display name stands for (the display itself, unless a subclass knows better)."""
        return display

    async def _unsubscribe(self, feed: int) -> None:
        async with self._lock:
            display = self._feeds.pop(feed, None)
            if display is None or self._sub is None or self._left:
                return
            self.ctx.listener.on_event("unsubscribed", display)
            try:
                reply = await self._sub.message({"request": "update", "unsubscribe": [{"feed": feed}]},
                                                what="a subscription update")
            except JanusRefused as exc:
                if exc.code != NO_SUCH_FEED:
                    raise
                return
            await self._answer(reply)

    async def _answer(self, reply: PluginReply | Message) -> None:
        """Answer the offer Janus made for the subscription (a first one, or a renegotiation)."""
        data = reply.data if isinstance(reply, PluginReply) else reply.get("plugindata", {}).get("data", {})
        jsep = reply.jsep if isinstance(reply, PluginReply) else reply.get("jsep")
        self._learn_streams(data)
        if not jsep or jsep.get("type") != "offer":
            return
        assert self._sub is not None
        pc = self._sub_pc
        if pc is None:
            # aiortc's default "balanced" bundle policy gives a second video m-line of an offer the transport
            # of the first one before it bundles them, then skips it when it moves every m-line onto the
            # first transport: that stream never starts. Janus bundles everything, so say so up front.
            pc = self._sub_pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
            listener = self.ctx.listener
            self.ctx.listener.on_connection(pc, "server")

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
                listener.on_track(track, self._mids.get(mid or "", "server"), receiver_of(pc, track))

        await apply_offer(pc, str(jsep.get("sdp", "")), "Janus")
        await pc.setLocalDescription(await pc.createAnswer())
        await self._sub.message({"request": "start"}, jsep={"type": "answer", "sdp": pc.localDescription.sdp},
                                what="starting the subscription")
        if self.ctx.prefer_layer == AUTO:
            if self._choice is None:
                self._choice = LayerChoice()
                self._tasks.append(asyncio.ensure_future(self._choose_automatically(pc, self._choice)))
            await self.choose_layer(self._choice.layer)
        elif self.ctx.prefer_layer is not None:
            await self.choose_layer(self.ctx.prefer_layer)

    async def _choose_automatically(self, pc: RTCPeerConnection, choice: LayerChoice) -> None:
        """Fall to the lowest layer on loss or a standing queue, come back when calm and probe up
        (:class:`LayerChoice`), as Janus's web clients choose: VideoRoom forwards the layer asked for and does not
        adapt a subscriber's layer by itself. Each change is a ``layer_choice`` event (the layer and why)."""
        seen: dict[int, tuple[int, int]] = {}
        queue = StandingQueue()
        loop = asyncio.get_running_loop()
        while not self._left:
            await asyncio.sleep(LAYER_TICK_S)
            packets = lost = 0
            minima: dict[int, float] = {}
            for transceiver in pc.getTransceivers():
                if transceiver.kind != "video":
                    continue
                # Watched from the first tick it is seen on (streams come and go with renegotiations).
                minima.update(watch_transit(transceiver.receiver).take())
                for s in inbound_counts(transceiver.receiver):
                    before = seen.get(s.ssrc, (s.packets_received, s.packets_lost))
                    packets += max(s.packets_received - before[0], 0)
                    lost += max(s.packets_lost - before[1], 0)
                    seen[s.ssrc] = (s.packets_received, s.packets_lost)
            now = loop.time()
            layer = choice.observe(now, packets, lost, queue.observe(now, minima))
            if layer is not None:
                queue.reset()  # the new layer's time base may differ from the old one's
                self.ctx.listener.on_event("layer_choice", json.dumps({"layer": layer, "why": choice.why}))
                try:
                    async with self._lock:
                        await self.choose_layer(layer)
                except (SystemError_, TimeoutError) as exc:
                    self.ctx.listener.on_event("renegotiation_failed", str(exc))

    async def choose_layer(self, rid: str, mids: list[str] | None = None) -> None:
        """Ask Janus for simulcast layer ``rid`` on every video stream of the subscription (or on ``mids``),
        through VideoRoom's own mechanism: ``configure`` with ``substream``. Streams of publishers that send
        one encoding are unaffected."""
        if self._sub is None:
            return
        mids = mids if mids is not None else list(self._video_mids)
        if not mids:
            return
        await self._sub.message({"request": "configure",
                                 "streams": [{"mid": mid, "substream": substream(rid)} for mid in mids]},
                                what=f"choosing layer {rid}")

    def _learn_streams(self, data: Mapping[str, Any]) -> None:
        for stream in data.get("streams", []) or []:
            if "mid" in stream and stream.get("feed_display"):
                self._mids[str(stream["mid"])] = self._name(str(stream["feed_display"]))
                if stream.get("type") == "video":
                    self._video_mids.add(str(stream["mid"]))

    # -- what Janus tells us unasked ----------------------------------------------------------------------
    async def _follow(self, handle: JanusHandle, react: Any) -> None:
        """Hand each unsolicited event of ``handle`` to ``react``; a failure is an event, not a crash."""
        while not self._left:
            msg = await handle.events.get()
            if msg.get("janus") == "transport_closed":
                if not self._left:
                    self.ctx.listener.on_event("server_lost", str(self._client.url))
                return
            try:
                await react(msg)
            except (SystemError_, TimeoutError) as exc:
                self.ctx.listener.on_event("renegotiation_failed", str(exc))
            except Exception as exc:  # DESIGN.md §5.6: log it, and keep following
                log.exception("handling a Janus event failed")
                self.ctx.listener.on_event("renegotiation_failed", f"{type(exc).__name__}: {exc}")

    async def _on_room_event(self, msg: Message) -> None:
        kind = msg.get("janus")
        if kind == "hangup":
            self.ctx.listener.on_event("hangup", str(msg.get("reason", "")))
            return
        data = msg.get("plugindata", {}).get("data", {})
        if data.get("videoroom") in ("talking", "stopped-talking"):
            if not self.ctx.speakers:
                return  # a room someone else made with audiolevel_event, or a screen share's session: not asked
            feed = data.get("id")
            who = self.ctx.participant if feed == self._my_id else self._name(self._displays.get(feed, str(feed)))
            kind = "system_talking" if data["videoroom"] == "talking" else "system_stopped_talking"
            self.ctx.listener.on_event(kind, json.dumps({"participant": who, "dbov": data.get("audio-level-dBov-avg")}))
            return
        if data.get("videoroom") != "event":
            return
        arrived = self._others(_publishers(data))
        if arrived:
            for display in arrived.values():
                self.ctx.listener.on_event("peer_joined", display)
            if self.ctx.subscribe:
                await self._subscribe(arrived)
        for key in ("unpublished", "leaving"):
            feed = data.get(key)
            if isinstance(feed, int) and feed != self._my_id and feed not in self._own_feeds:
                # A participant publishing over WHIP also has a silent handle in the room: its leaving names
                # no publisher.
                if (key == "leaving" and self._own_display is None) or feed in self._feeds:
                    self.ctx.listener.on_event("peer_left", self._feeds.get(feed, str(feed)))
                await self._unsubscribe(feed)

    async def _on_subscriber_event(self, msg: Message) -> None:
        data = msg.get("plugindata", {}).get("data", {})
        if data.get("videoroom") == "event" and isinstance(data.get("substream"), int):
            # Which layer Janus forwards now (it switches at a key frame, after the request): beside the
            # layer_choice events, the switch as the SFU made it.
            mid = str(data.get("mid", ""))
            self.ctx.listener.on_event("layer_forwarded", json.dumps(
                {"mid": mid, "sender": self._mids.get(mid, ""), "layer": rid_of(data["substream"])}))
        # Janus may renegotiate a subscription on its own (e.g. a feed it carried went away).
        if msg.get("jsep", {}).get("type") == "offer":
            async with self._lock:
                await self._answer(msg)

    async def leave(self) -> None:
        """Hang up: leave the room, close both peer connections and the Janus session (bounded)."""
        if self._left:
            return
        self._left = True
        for task in self._tasks:
            task.cancel()
        if self._pub is not None and not self._client.closed.is_set():
            with contextlib.suppress(SystemError_, TimeoutError):
                await self._pub.message({"request": "leave"}, what="leaving")
        for pc in (self._pub_pc, self._sub_pc):
            if pc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pc.close(), timeout=5)
        await self._client.close()


def _publishers(data: Mapping[str, Any]) -> dict[int, str]:
    """Feed id -> display name of the publishers listed in a VideoRoom ``joined`` or ``event``."""
    return {int(p["id"]): str(p.get("display") or p["id"]) for p in data.get("publishers", []) or []
            if "id" in p}


def _only(mapping: Mapping[str, str], *keys: str) -> dict[str, str]:
    return {k: mapping[k] for k in keys if k in mapping}
