"""A small client for the Janus API (sessions, handles, plugin messages) over WebSocket or HTTP long-poll.

Janus answers a request in one of three ways, matched by its ``transaction``: ``success``/``server_info``
(synchronous), ``ack`` followed later by an ``event`` carrying the same transaction (asynchronous plugin
requests such as ``join`` or ``publish``), or ``error``. Everything else the server pushes (plugin events
nobody asked for, ``webrtcup``, ``hangup``, ``media``, ``slowlink``) is addressed to a handle by ``sender`` and
lands in that handle's queue. Both transports feed the same :meth:`JanusClient._dispatch`, so the VideoRoom
logic above does not know which one carries it.

Secrets: ``CONFBENCH_JANUS_API_SECRET`` (Janus's ``apisecret``) and ``CONFBENCH_JANUS_TOKEN`` (token auth) are
read here, added to each request, and never logged or returned.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from harness.errors import SystemError_
from harness.systems.guard import MAX_MESSAGE, FloodGuard, json_object, read_body

log = logging.getLogger(__name__)

API_SECRET_ENV = "CONFBENCH_JANUS_API_SECRET"
TOKEN_ENV = "CONFBENCH_JANUS_TOKEN"
REQUEST_TIMEOUT_S = 10.0
#: Janus drops a session after 60 s without traffic by default; a keep-alive every 25 s stays well inside.
KEEPALIVE_S = 25.0
LONG_POLL_MAX_EVENTS = 10

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PluginReply:
    """What a plugin answered: its ``plugindata.data`` and the JSEP (SDP) that came with it, if any."""

    data: Mapping[str, Any]
    jsep: Mapping[str, Any] | None = None


class JanusRefused(SystemError_):
    """Janus (or its plugin) answered with an error; ``code`` is Janus's numeric error code."""

    def __init__(self, what: str, code: int, reason: str) -> None:
        super().__init__(f"Janus refused {what}: {reason} (code {code})")
        self.code = code


class _Transport(abc.ABC):
    """How messages reach Janus; replies and events go to ``dispatch``."""

    def __init__(self, url: str, dispatch: Any) -> None:
        self.url = url
        self.dispatch = dispatch

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect (bounded in time)."""

    @abc.abstractmethod
    async def send(self, msg: Message, session: int | None, handle: int | None) -> None:
        """Send one request; its reply arrives through ``dispatch``."""

    def on_session(self, session: int) -> None:  # noqa: B027 - optional hook
        """A session now exists (the HTTP transport starts polling it)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect; never raises."""


class _WebSocket(_Transport):
    def __init__(self, url: str, dispatch: Any) -> None:
        super().__init__(url, dispatch)
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        # The connect is bounded; the socket itself may stay quiet for long (keep-alives are ours to send).
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=REQUEST_TIMEOUT_S))
        try:
            self._ws = await self._http.ws_connect(self.url, protocols=("janus-protocol",), max_msg_size=MAX_MESSAGE,
                                                   timeout=aiohttp.ClientWSTimeout(ws_close=REQUEST_TIMEOUT_S))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self._http.close()
            raise SystemError_(f"cannot reach Janus at {self.url}: {exc or type(exc).__name__}") from None
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        reason = ""
        guard = FloodGuard(f"Janus at {self.url}")
        try:
            async for frame in self._ws:
                guard.count()
                if frame.type == aiohttp.WSMsgType.TEXT:
                    self.dispatch(_message(frame.data, self.url))
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    raise SystemError_(f"Janus at {self.url} broke the WebSocket: {frame.data}")
        except SystemError_ as exc:  # a broken or hostile server: the connection ends, and says why
            reason = str(exc)
        except Exception:  # a reader must always say it finished (DESIGN.md §5.6)
            log.exception("Janus WebSocket reader failed")
        finally:
            self.dispatch({"janus": "transport_closed", "reason": reason})
            if reason and self._http is not None:
                # A server that floods or breaks the protocol gets no closing handshake: drop the connection.
                await self._http.close()

    async def send(self, msg: Message, session: int | None, handle: int | None) -> None:
        if self._ws is None or self._ws.closed:
            raise SystemError_(f"the WebSocket to Janus at {self.url} is closed")
        if session is not None:
            msg["session_id"] = session
        if handle is not None:
            msg["handle_id"] = handle
        await self._ws.send_str(json.dumps(msg))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        try:
            with contextlib.suppress(Exception):
                if self._ws is not None:
                    await asyncio.wait_for(self._ws.close(), REQUEST_TIMEOUT_S)
        finally:  # also when the closing task is cancelled: the session must not outlive the participant
            if self._http is not None:
                await self._http.close()


class _LongPoll(_Transport):
    """Janus's REST API: requests are POSTs to /janus[/session[/handle]]; events come from a GET long-poll."""

    def __init__(self, url: str, dispatch: Any) -> None:
        super().__init__(url.rstrip("/"), dispatch)
        self._http: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S + 35))

    def _path(self, session: int | None, handle: int | None) -> str:
        return "/".join([self.url, *(str(x) for x in (session, handle) if x is not None)])

    async def send(self, msg: Message, session: int | None, handle: int | None) -> None:
        assert self._http is not None
        url = self._path(session, handle)
        try:
            if msg.get("janus") == "info":
                async with self._http.get(f"{url}/info", timeout=_total(REQUEST_TIMEOUT_S)) as answer:
                    reply = _message(await read_body(answer, f"Janus at {url}"), url)
                reply["transaction"] = msg["transaction"]  # GET /info carries no transaction of ours
            else:
                async with self._http.post(url, json=msg, timeout=_total(REQUEST_TIMEOUT_S)) as answer:
                    reply = _message(await read_body(answer, f"Janus at {url}"), url)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise SystemError_(f"cannot reach Janus at {url}: {exc or type(exc).__name__}") from None
        self.dispatch(reply)

    def on_session(self, session: int) -> None:
        self._poller = asyncio.ensure_future(self._poll(session))

    async def _poll(self, session: int) -> None:
        # Janus holds a GET for up to 30 s and answers with the events queued for the session; each poll
        # also keeps the session alive, so this transport needs no keep-alives.
        assert self._http is not None
        url = f"{self._path(session, None)}?maxev={LONG_POLL_MAX_EVENTS}"
        try:
            while True:
                try:
                    async with self._http.get(url) as answer:
                        events = json.loads(await read_body(answer, f"Janus at {url}", MAX_MESSAGE))
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError, SystemError_) as exc:
                    log.warning("Janus long-poll failed: %s", exc)
                    break
                for event in events if isinstance(events, list) else [events]:
                    if isinstance(event, dict) and event.get("janus") != "keepalive":
                        self.dispatch(event)
        finally:
            self.dispatch({"janus": "transport_closed"})

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        if self._http is not None:
            await self._http.close()


def _id(reply: Message, what: str, url: str) -> int:
    """The ``data.id`` of a ``success`` (a session's or a handle's id)."""
    data = reply.get("data")
    try:
        return int(data["id"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        raise SystemError_(f"Janus at {url} answered {what} without an id") from None


def _message(text: str, url: str) -> Message:
    """One message from Janus: a JSON object, else :class:`SystemError_` naming what came instead."""
    try:
        return json_object(text, "a message")
    except ValueError as exc:
        raise SystemError_(f"Janus at {url} sent {exc}") from None


def _total(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


def transport_for(url: str) -> type[_Transport]:
    """WebSocket for ``ws://``/``wss://``, long-poll for ``http://``/``https://``."""
    scheme = urlsplit(url).scheme
    if scheme in ("ws", "wss"):
        return _WebSocket
    if scheme in ("http", "https"):
        return _LongPoll
    raise SystemError_(f"not a Janus URL: {url!r} (use ws://HOST:8188 or http://HOST:8088/janus)")


class JanusHandle:
    """One attached plugin handle: send it messages, read what it is told unasked from :attr:`events`."""

    def __init__(self, client: JanusClient, handle_id: int) -> None:
        self.client = client
        self.id = handle_id
        self.events: asyncio.Queue[Message] = asyncio.Queue()

    async def message(self, body: Mapping[str, Any], jsep: Mapping[str, Any] | None = None,
                      what: str | None = None) -> PluginReply:
        """Send a plugin request and wait for its answer (synchronous ``success`` or asynchronous ``event``).

        A plugin-level error (``error_code`` in the data) raises :class:`JanusRefused` like a Janus error.
        """
        msg: Message = {"janus": "message", "body": dict(body)}
        if jsep is not None:
            msg["jsep"] = dict(jsep)
        reply = await self.client.request(msg, handle=self.id, final=("success", "event"),
                                          what=what or str(body.get("request")))
        plugindata = reply.get("plugindata")
        data = plugindata.get("data") if isinstance(plugindata, dict) else None
        jsep = reply.get("jsep")
        if not isinstance(data, dict) or not isinstance(jsep, dict | None):
            raise SystemError_(f"Janus answered {what or body.get('request')} with a malformed plugin reply")
        if "error_code" in data:
            raise JanusRefused(what or str(body.get("request")), int(data["error_code"]), str(data.get("error")))
        return PluginReply(data, jsep)

    async def trickle_completed(self) -> None:
        """Tell Janus that no more candidates will come (all of aiortc's are in its SDP)."""
        await self.client.request({"janus": "trickle", "candidate": {"completed": True}}, handle=self.id,
                                  final=("ack",), what="trickle")

    async def detach(self) -> None:
        """Detach (bounded); never raises."""
        with contextlib.suppress(SystemError_, TimeoutError):
            await self.client.request({"janus": "detach"}, handle=self.id, final=("success",), what="detach")


class JanusClient:
    """A Janus session over one transport, with keep-alives, bounded requests and per-handle event queues."""

    def __init__(self, url: str, timeout_s: float = REQUEST_TIMEOUT_S,
                 env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.url = url
        self.timeout_s = timeout_s
        self._auth = {k: v for k, v in (("apisecret", env.get(API_SECRET_ENV)), ("token", env.get(TOKEN_ENV)))
                      if v}
        self._transport = transport_for(url)(url, self._dispatch)
        self._pending: dict[str, tuple[asyncio.Future[Message], tuple[str, ...]]] = {}
        self._handles: dict[int, JanusHandle] = {}
        self.session_id: int | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def open(self) -> None:
        """Connect and create a session."""
        await asyncio.wait_for(self._transport.open(), self.timeout_s + 5)
        reply = await self.request({"janus": "create"}, final=("success",), what="a session")
        self.session_id = _id(reply, "a session", self.url)
        self._transport.on_session(self.session_id)
        if isinstance(self._transport, _WebSocket):
            self._keepalive = asyncio.ensure_future(self._keep_alive())

    async def info(self) -> Message:
        """The server's ``info`` (version, plugins, transports)."""
        return await self.request({"janus": "info"}, final=("server_info",), what="info", with_session=False)

    async def attach(self, plugin: str) -> JanusHandle:
        """Attach a handle to ``plugin`` (e.g. ``janus.plugin.videoroom``)."""
        reply = await self.request({"janus": "attach", "plugin": plugin}, final=("success",), what=plugin)
        handle = JanusHandle(self, _id(reply, plugin, self.url))
        self._handles[handle.id] = handle
        return handle

    async def request(self, msg: Message, final: tuple[str, ...], what: str, handle: int | None = None,
                      with_session: bool = True) -> Message:
        """Send ``msg`` and wait (bounded) for a reply of a ``final`` kind; raise on ``error`` or timeout."""
        txn = secrets.token_hex(8)
        msg = dict(msg, transaction=txn, **self._auth)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[txn] = (future, final)
        try:
            await self._transport.send(msg, self.session_id if with_session else None, handle)
            reply = await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise SystemError_(f"Janus did not answer {what} within {self.timeout_s:g} s") from None
        finally:
            self._pending.pop(txn, None)
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusRefused(what, int(error.get("code", 0)), str(error.get("reason", "unknown error")))
        return reply

    def _dispatch(self, msg: Message) -> None:
        kind = msg.get("janus")
        if kind == "transport_closed":
            self.closed.set()
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_exception(SystemError_(msg.get("reason")
                                                      or f"the connection to Janus at {self.url} was lost"))
            for handle in self._handles.values():
                handle.events.put_nowait(msg)
            return
        pending = self._pending.get(str(msg.get("transaction", "")))
        if pending is not None:
            future, final = pending
            if (kind in final or kind == "error") and not future.done():
                future.set_result(msg)
                return
            if kind == "ack":
                return
        sender = msg.get("sender")
        target = self._handles.get(sender) if isinstance(sender, int) else None
        if target is not None:
            target.events.put_nowait(msg)

    async def _keep_alive(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(KEEPALIVE_S)
            try:
                await self.request({"janus": "keepalive"}, final=("ack",), what="keepalive")
            except SystemError_ as exc:
                log.warning("Janus keep-alive failed: %s", exc)

    async def close(self) -> None:
        """Destroy the session and disconnect (bounded); never raises."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self.session_id is not None and not self.closed.is_set():
            with contextlib.suppress(SystemError_, TimeoutError):
                await self.request({"janus": "destroy"}, final=("success",), what="destroy")
        await self._transport.close()
        self.closed.set()
