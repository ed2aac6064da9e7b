"""``whip``: join any server that speaks WHIP (RFC 9725) for publishing and WHEP for subscribing.

The URL is either the base of a server laid out like confbench's reference SFU (``http://host:port/``:
``/whip/{room}/{participant}``, ``/whep/{room}/{publisher}``, ``/rooms/{room}``, ``/health``), or a WHIP
endpoint template containing ``{room}`` and/or ``{participant}``; then ``CONFBENCH_WHEP_URL`` (a template
with ``{room}`` and ``{participant}`` = the publisher) and ``CONFBENCH_ROOMS_URL`` (a template with
``{room}`` answering ``{"publishers": [...]}``) enable subscribing, since WHEP itself cannot tell who
publishes in a room. The bearer token comes from ``CONFBENCH_WHIP_TOKEN`` and is never recorded.

Each participant publishes on one peer connection (WHIP) and subscribes to each other publisher on one peer
connection each (WHEP), polling the room listing once a second for publishers that come and go; leaving
DELETEs every session. aiortc gathers every ICE candidate before it offers and cannot restart ICE, so there
is nothing to trickle and no ICE restart: a server's PATCH support is not needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import aiohttp
import psutil
from aiortc import MediaStreamTrack, RTCPeerConnection

from harness.errors import SystemError_
from harness.media.tap import receiver_of
from harness.systems.base import Deployment, Session, SessionContext, System, prefer_video_codec
from harness.systems.guard import apply_answer, read_body

log = logging.getLogger(__name__)

TOKEN_ENV = "CONFBENCH_WHIP_TOKEN"
WHEP_ENV = "CONFBENCH_WHEP_URL"
ROOMS_ENV = "CONFBENCH_ROOMS_URL"
HTTP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Endpoints:
    """URL templates of one WHIP/WHEP server."""

    whip: str
    whep: str | None = None
    rooms: str | None = None
    health: str | None = None

    def __post_init__(self) -> None:
        for url in (self.whip, self.whep, self.rooms, self.health):
            if url is not None and urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"not an http(s) URL: {url!r}")

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> Endpoints:
        """Endpoints from a base URL (reference layout) or a WHIP template (+ environment)."""
        env = os.environ if env is None else env
        if "{" in url:
            return cls(whip=url, whep=env.get(WHEP_ENV) or None, rooms=env.get(ROOMS_ENV) or None)
        base = url.rstrip("/")
        return cls(whip=f"{base}/whip/{{room}}/{{participant}}", whep=f"{base}/whep/{{room}}/{{participant}}",
                   rooms=f"{base}/rooms/{{room}}", health=f"{base}/health")


def fill(template: str, room: str, participant: str = "") -> str:
    """A template with its placeholders replaced (names are URL-safe in confbench)."""
    return template.replace("{room}", room).replace("{participant}", participant)


def _headers(token: str | None, content_type: str | None = None) -> dict[str, str]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    return headers


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _refusal(what: str, url: str, status: int, text: str) -> SystemError_:
    if status in (401, 403):
        return SystemError_(f"{what} {url} refused the bearer token (HTTP {status}); set {TOKEN_ENV}")
    reason = text.strip().splitlines()[0] if text.strip() else "no reason given"
    return SystemError_(f"{what} {url} answered HTTP {status}: {reason}")


class WhipSystem(System):
    """Any WHIP/WHEP server."""

    name: ClassVar[str] = "whip"
    description: ClassVar[str] = "any server speaking WHIP (publish) and WHEP (subscribe): whip=URL"
    starts_server: ClassVar[bool] = False
    """True for subclasses whose :meth:`deploy` starts the server and so provides the URL."""

    def __init__(self, url: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        if url is None and not self.starts_server:
            raise SystemError_(f"the {self.name} system needs a URL: {self.name}=http://HOST:PORT/ or a WHIP "
                               "endpoint template with {room} and {participant}")
        super().__init__(url, options)
        self.endpoints = self._endpoints(url) if url is not None else None
        self.token = os.environ.get(TOKEN_ENV) or None
        self._http: aiohttp.ClientSession | None = None

    def _endpoints(self, url: str) -> Endpoints:
        try:
            return Endpoints.from_url(url)
        except ValueError as exc:
            raise SystemError_(f"{self.name}: {exc}") from None

    # -- controller side ----------------------------------------------------------------------------------
    def deploy(self) -> Deployment:
        """Check that the server answers (and accepts the token) before any participant starts."""
        return self._check(self.url)

    def _check(self, url: str | None) -> Deployment:
        ep = self.endpoints
        assert ep is not None, "no URL to check"
        probe = ep.health or fill(ep.whip, "confbench-probe", "confbench-probe")
        method = "GET" if ep.health else "OPTIONS"
        request = urllib.request.Request(probe, method=method, headers=_headers(self.token))
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:
                body = answer.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403) or ep.health:
                raise _refusal("the server at", probe, exc.code, exc.read().decode(errors="replace")) from None
            body = ""  # a WHIP endpoint without OPTIONS still exists
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SystemError_(f"cannot reach the {self.name} server at {probe}: {reason}") from None
        info: dict[str, Any] = {}
        pids: tuple[int, ...] = ()
        if ep.health:
            with contextlib.suppress(ValueError):
                info = dict(json.loads(body))
            pids = self._local_pid(probe, info.get("pid"))
        return Deployment(url=url, server_pids=pids, info=info)

    @staticmethod
    def _local_pid(url: str, pid: Any) -> tuple[int, ...]:
        # A server on this machine's loopback can be probed by pid, like one the harness started itself.
        host = urlsplit(url).hostname or ""
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = host == "localhost"
        if local and isinstance(pid, int) and psutil.pid_exists(pid):
            return (pid,)
        return ()

    # -- media-host side ----------------------------------------------------------------------------------
    def http(self) -> aiohttp.ClientSession:
        """The HTTP client of this media host (created on first use, inside its event loop)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))
        return self._http

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.close()

    def session(self, ctx: SessionContext) -> Session:
        """A WHIP/WHEP session for one participant."""
        if self.endpoints is None:
            raise SystemError_(f"the {self.name} system has no URL yet (deploy it first)")
        return WhipSession(ctx, self, self.endpoints)


class WhipSession(Session):
    """One participant: a WHIP publication and a WHEP subscription per other publisher."""

    def __init__(self, ctx: SessionContext, system: WhipSystem, endpoints: Endpoints) -> None:
        self.ctx = ctx
        self._system = system
        self._ep = endpoints
        self._resources: dict[str, tuple[str, RTCPeerConnection]] = {}  # key: "" for ours, else publisher
        self._poller: asyncio.Task[None] | None = None
        self._left = False

    @property
    def _wait_s(self) -> float:
        # Each request is bounded by the join's own timeout too, so that a silent server is named as such.
        return min(self.ctx.timeout_s, HTTP_TIMEOUT_S)

    async def join(self) -> None:
        """Publish, then subscribe to everyone already publishing."""
        ctx = self.ctx
        tracks = ctx.media.tracks()
        if tracks:
            pc = RTCPeerConnection()
            for track in tracks:
                transceiver = pc.addTransceiver(track, direction="sendonly")
                prefer_video_codec(transceiver, ctx.video_codec)
            ctx.listener.on_connection(pc, "server")
            url = fill(self._ep.whip, ctx.room, ctx.participant)
            self._resources[""] = (await self._negotiate("the WHIP endpoint", url, pc), pc)
        if ctx.subscribe and self._ep.whep and self._ep.rooms:
            try:
                await self._refresh()
            except aiohttp.ClientError as exc:
                raise SystemError_(f"cannot reach the room listing: {_one_line(exc)}") from None
            except TimeoutError:
                raise SystemError_(f"the room listing did not answer within {self._wait_s:g} s") from None
            self._poller = asyncio.ensure_future(self._poll())
        elif ctx.subscribe:
            ctx.listener.on_event("no_discovery", f"set {WHEP_ENV} and {ROOMS_ENV} to subscribe")

    async def leave(self) -> None:
        """DELETE every session and close every connection; bounded, never raises."""
        if self._left:
            return
        self._left = True
        if self._poller is not None:
            self._poller.cancel()
        await asyncio.gather(*(self._drop(key) for key in list(self._resources)), return_exceptions=True)

    async def _negotiate(self, what: str, url: str, pc: RTCPeerConnection) -> str:
        await pc.setLocalDescription(await pc.createOffer())
        token = self._system.token
        wait_s = self._wait_s
        try:
            async with self._system.http().post(url, data=pc.localDescription.sdp,
                                                headers=_headers(token, "application/sdp"),
                                                timeout=aiohttp.ClientTimeout(total=wait_s)) as answer:
                text = await read_body(answer, f"{what} {url}")
                if answer.status != 201:
                    raise _refusal(what, url, answer.status, text)
                location = answer.headers.get("Location")
            if not location:
                raise SystemError_(f"{what} {url} answered 201 without a Location header")
            await apply_answer(pc, text, f"{what} {url}")
        except aiohttp.ClientError as exc:
            await pc.close()
            raise SystemError_(f"cannot reach {what} {url}: {_one_line(exc)}") from None
        except TimeoutError:
            await pc.close()
            raise SystemError_(f"{what} {url} did not answer within {wait_s:g} s") from None
        except SystemError_:
            await pc.close()
            raise
        except asyncio.CancelledError:
            # The participant left while this was in flight (churn): its connection must not outlive it. A
            # session the server created meanwhile is unknown here; the reference SFU drops it once it has not
            # connected in time (harness.reference.sfu.CONNECT_TIMEOUT_S).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), timeout=5)
            raise
        return urljoin(url, location)

    async def _publishers(self) -> list[str]:
        assert self._ep.rooms is not None
        url = fill(self._ep.rooms, self.ctx.room)
        async with self._system.http().get(url, headers=_headers(self._system.token),
                                           timeout=aiohttp.ClientTimeout(total=self._wait_s)) as answer:
            if answer.status == 404:
                return []
            text = await read_body(answer, f"the room listing {url}")
            if answer.status != 200:
                raise _refusal("the room listing", url, answer.status, text)
        try:
            data = json.loads(text)
            return [str(p) for p in data.get("publishers", [])]
        except (ValueError, AttributeError, TypeError):
            raise SystemError_(f"the room listing {url} answered no JSON object with a list of publishers") from None

    async def _refresh(self) -> None:
        present = set(await self._publishers()) - {self.ctx.participant, *self.ctx.own}
        subscribed = set(self._resources) - {""}
        for gone in subscribed - present:
            await self._drop(gone)
        await asyncio.gather(*(self._subscribe(p) for p in sorted(present - subscribed)))

    async def _poll(self) -> None:
        while not self._left:
            await asyncio.sleep(POLL_INTERVAL_S)
            try:
                await self._refresh()
            except (SystemError_, aiohttp.ClientError, TimeoutError) as exc:
                self.ctx.listener.on_event("discovery_failed", str(exc))

    async def _subscribe(self, publisher: str) -> None:
        assert self._ep.whep is not None
        pc = RTCPeerConnection()
        for kind in ("audio", "video"):
            pc.addTransceiver(kind, direction="recvonly")
        listener = self.ctx.listener

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            listener.on_track(track, publisher, receiver_of(pc, track))

        url = fill(self._ep.whep, self.ctx.room, publisher)
        try:
            resource = await self._negotiate("the WHEP endpoint", url, pc)
        except SystemError_ as exc:
            # A publisher that left between the listing and our request is not a failure.
            listener.on_event("subscribe_failed", f"{publisher}: {exc}")
            return
        self._resources[publisher] = (resource, pc)
        if self._left:
            # The participant left while subscribing: the server's session must go too (DELETE), or it stays
            # on the server until the server notices the connection never came.
            await self._drop(publisher)
            return
        listener.on_connection(pc, publisher)
        listener.on_event("subscribed", publisher)

    async def _drop(self, key: str) -> None:
        entry = self._resources.pop(key, None)
        if entry is None:
            return
        resource, pc = entry
        if key:
            self.ctx.listener.on_event("unsubscribed", key)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self._system.http().delete(resource, headers=_headers(self._system.token)):
                pass
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pc.close(), timeout=5)
