"""``janus-whip``: publish over standard WHIP through simple-whip-server (Meetecho's, Debian's package) into Janus.

The standard WHIP path, tested against a WHIP implementation confbench did not write: each participant
publishes with the :mod:`harness.systems.whip` code (one peer connection, one SDP offer POSTed, DELETE on leave)
to a WHIP endpoint of simple-whip-server, which publishes it into a Janus VideoRoom, and subscribes to everyone
through Janus itself, with the :mod:`harness.systems.janus` code (one multistream subscription, followed as
publishers come and go). simple-whip-server has no subscribing side (no WHEP) and no room listing.

simple-whip-server creates endpoints with a request of its own (``POST {base}/create`` with an id, the Janus
room and a label, which becomes the publisher's display name in the room, :data:`LABEL_MARK`); the session
creates one per participant, publishes to ``{base}/endpoint/<id>`` and destroys it when it leaves. The room
must exist in Janus before anyone publishes into it: the participant's Janus session creates it first, as the
``janus`` adapter does.

``--system janus-whip`` starts both locally (:mod:`harness.testbed.simple_whip`, root): Janus in a namespace and
simple-whip-server beside it. ``janus-whip=http://HOST:7080/whip`` joins a running pair, with Janus's WebSocket
API at ``ws://HOST:8188`` or wherever ``?janus=ws://…`` says. A bearer token, if the endpoints should require
one, comes from ``CONFBENCH_WHIP_TOKEN``; the room's pin from ``CONFBENCH_JANUS_ROOM_PIN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
from aiortc import MediaStreamTrack

from harness.errors import SystemError_
from harness.systems import IMPAIRED_NETWORK
from harness.systems.base import Deployment, Session, SessionContext
from harness.systems.janus import JanusSession, _env_secrets, room_id, server_info
from harness.systems.whip import HTTP_TIMEOUT_S, Endpoints, WhipSession, WhipSystem, _headers, _refusal

JANUS_WS_PORT = 8188


def split_url(url: str) -> tuple[str, str]:
    """The WHIP server's REST base and the Janus WebSocket URL behind it, from ``janus-whip``'s URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemError_(f"janus-whip: not an http(s) URL of simple-whip-server's API: {url!r} "
                           "(e.g. http://HOST:7080/whip)")
    janus = parse_qs(parts.query).get("janus", [f"ws://{parts.hostname}:{JANUS_WS_PORT}"])[0]
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, janus


LABEL_MARK = "~"
"""simple-whip-server names its Janus publishers by the endpoint's label, and hangs up an earlier publisher of
the same label: labels are ``<participant>~<random>``, unique per server, and read back as the participant."""


class _NoMedia:
    """What the Janus session publishes itself: nothing (the participant's media goes through WHIP)."""

    def tracks(self) -> list[MediaStreamTrack]:
        return []


class JanusWhipSystem(WhipSystem):
    """simple-whip-server in front of Janus: publish over WHIP, subscribe through Janus's VideoRoom."""

    name: ClassVar[str] = "janus-whip"
    description: ClassVar[str] = ("Janus fed over WHIP by Debian's simple-whip-server; started locally in a "
                                  "namespace, or janus-whip=http://HOST:7080/whip")
    starts_server: ClassVar[bool] = True

    def __init__(self, url: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self._janus: Any = None  # harness.testbed.janus.LocalJanus while this system runs one
        self._whip: Any = None  # harness.testbed.simple_whip.SimpleWhipServer while it runs

    def _endpoints(self, url: str) -> Endpoints:
        base, _ = split_url(url)
        return Endpoints(whip=f"{base}/endpoint/{{participant}}", health=f"{base}/healthcheck")

    # -- controller side ----------------------------------------------------------------------------------
    def deploy(self) -> Deployment:
        """Start Janus and simple-whip-server locally (no URL) or check the given pair; record both versions."""
        pids: tuple[int, ...] = ()
        hosts: tuple[str, ...] = ()
        version = "unknown (a running server does not say)"
        try:
            if self.url is None:
                from harness.testbed.janus import LocalJanus  # only the controller of a local run needs them
                from harness.testbed.simple_whip import VERSION, SimpleWhipServer

                self._janus = LocalJanus.start(network=self.options.get(IMPAIRED_NETWORK))
                self._whip = SimpleWhipServer.start(self._janus)
                self.url = self._whip.base_url
                self.endpoints = self._endpoints(self.url)
                pids = (self._janus.pid, self._whip.pid)
                hosts = (self._janus.host_address,)
                version = VERSION
            assert self.url is not None
            base, janus_url = split_url(self.url)
            self._healthy(f"{base}/healthcheck")
            janus = asyncio.run(server_info(janus_url))
        except BaseException:
            self.undeploy()
            raise
        info = {"server": "simple-whip-server", "version": version, "janus": janus}
        return Deployment(url=self.url, server_pids=pids, info=info, host_addresses=hosts)

    def _healthy(self, url: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S):
                pass
        except urllib.error.HTTPError as exc:
            raise _refusal("simple-whip-server at", url, exc.code, exc.read().decode(errors="replace")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SystemError_(f"cannot reach simple-whip-server at {url}: {getattr(exc, 'reason', exc)}") from None

    def undeploy(self) -> None:
        """Stop the local simple-whip-server, then Janus and its namespace (if this system started them)."""
        whip, self._whip = self._whip, None
        janus, self._janus = self._janus, None
        try:
            if whip is not None:
                whip.stop()
        finally:
            if janus is not None:
                janus.stop()

    def web_client(self) -> str | None:
        """None: browsers would need a WHIP client page; they can join the same room through ``janus``."""
        return None

    # -- media-host side ----------------------------------------------------------------------------------
    def session(self, ctx: SessionContext) -> Session:
        """A WHIP publication plus a Janus subscription for one participant."""
        if self.url is None:
            raise SystemError_("the janus-whip system has no URL yet (deploy it first)")
        base, janus_url = split_url(self.url)
        return JanusWhipSession(ctx, self, base, janus_url)


class _WhipFedJanusSession(JanusSession):
    """A Janus session whose room is fed over WHIP: feeds are named by simple-whip-server's labels."""

    def _name(self, display: str) -> str:
        name, mark, _ = display.rpartition(LABEL_MARK)
        return name if mark else display


class JanusWhipSession(Session):
    """One participant: a simple-whip-server endpoint it publishes to, and a Janus session it receives on."""

    def __init__(self, ctx: SessionContext, system: JanusWhipSystem, base: str, janus_url: str) -> None:
        self.ctx = ctx
        self._system = system
        self._base = base
        # Unique per join: a long-running server keeps endpoints, and a participant may rejoin.
        unique = secrets.token_hex(4)
        self._endpoint = f"{ctx.participant}-{unique}"
        self._label = f"{ctx.participant}{LABEL_MARK}{unique}"
        self._created = False
        self._janus = _WhipFedJanusSession(dataclasses.replace(ctx, media=_NoMedia()), janus_url,
                                           own_display=self._label)
        self._whip: WhipSession | None = None

    async def join(self) -> None:
        """Join Janus (creating the room), subscribe to everyone there, then publish over WHIP."""
        await self._janus.join()
        if not self.ctx.publish:
            return
        await self._create_endpoint()
        self._whip = WhipSession(dataclasses.replace(self.ctx, subscribe=False), self._system,
                                 Endpoints(whip=f"{self._base}/endpoint/{self._endpoint}"))
        await self._whip.join()

    async def _create_endpoint(self) -> None:
        url = f"{self._base}/create"
        body: dict[str, Any] = {"id": self._endpoint, "room": room_id(self.ctx.room), "label": self._label,
                                **{k: v for k, v in _env_secrets().items() if k == "pin"}}
        if self._system.token:
            body["token"] = self._system.token
        try:
            async with self._system.http().post(url, json=body, headers=_headers(self._system.token)) as answer:
                if answer.status != 200:
                    raise _refusal("simple-whip-server's /create at", url, answer.status, await answer.text())
        except aiohttp.ClientError as exc:
            raise SystemError_(f"cannot reach simple-whip-server at {url}: {exc}") from None
        except TimeoutError:
            raise SystemError_(f"simple-whip-server at {url} did not answer within {HTTP_TIMEOUT_S:g} s") from None
        self._created = True

    async def leave(self) -> None:
        """Leave Janus, stop publishing (DELETE the WHIP resource), destroy the endpoint; never raises."""
        with contextlib.suppress(Exception):
            await self._janus.leave()
        if self._whip is not None:
            with contextlib.suppress(Exception):
                await self._whip.leave()
        if self._created:
            self._created = False
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._system.http().delete(f"{self._base}/endpoint/{self._endpoint}",
                                                      headers=_headers(self._system.token)):
                    pass
