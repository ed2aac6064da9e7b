"""Broken and hostile servers for ``tests/test_hostile_servers.py``: one small fake per failure, on 127.0.0.1.

Each fake runs in a thread with its own event loop, so that the adapter under test has its loop to itself and
a test can tell the adapter's tasks and threads from the fake's.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

TEN_MB = 10 << 20
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FakeServer:
    """A TCP or HTTP/WebSocket server on 127.0.0.1 in a thread of its own; use as a context manager."""

    def __init__(self, tcp: Handler | None = None, app: web.Application | None = None) -> None:
        self._tcp, self._app = tcp, app
        self._loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._loop.run_forever, name="fake-server", daemon=True)
        self.port = 0
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def __enter__(self) -> FakeServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self.thread.join(timeout=5)

    async def _start(self) -> None:
        if self._tcp is not None:
            server = await asyncio.start_server(self._tcp, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]

            async def close_tcp() -> None:
                server.close()

            self._closers.append(close_tcp)
        else:
            assert self._app is not None
            runner = web.AppRunner(self._app, handle_signals=False, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._closers.append(runner.cleanup)

    async def _stop(self) -> None:
        for close in self._closers:
            await close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()


# -- TCP behaviours (any protocol) ------------------------------------------------------------------------------
async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accepts, reads, never answers."""
    while await reader.read(65536):
        pass
    writer.close()


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the first bytes of the handshake, then closes."""
    await reader.read(10)
    writer.close()


def replies(*chunks: bytes, then_close: bool = True) -> Handler:
    """Reads the first request (a line, or an HTTP head), writes ``chunks``, then closes (or stays silent)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        for chunk in chunks:
            writer.write(chunk)
        await writer.drain()
        if then_close:
            writer.close()
        else:
            await silent(reader, writer)

    return handler


# -- SDP -----------------------------------------------------------------------------------------------------------
def answer_without_candidates(offer: str) -> str:
    """A plausible answer to ``offer`` with every ICE candidate taken out (so none will ever come)."""
    lines = [line for line in offer.splitlines() if not line.startswith("a=candidate")]
    text = "\r\n".join(lines) + "\r\n"
    text = text.replace("a=setup:actpass", "a=setup:active")
    return re.sub(r"a=(sendonly|sendrecv)", "a=recvonly", text)


# -- WHIP (HTTP) -------------------------------------------------------------------------------------------------
def whip_app(answer: Callable[[str], str | bytes] | None = None, stream: bytes | None = None) -> web.Application:
    """A WHIP endpoint that answers 201 with ``answer(offer)``, or streams ``stream`` without a length."""

    async def post(request: web.Request) -> web.StreamResponse:
        offer = await request.text()
        headers = {"Location": "/resource/1", "Content-Type": "application/sdp"}
        if stream is not None:
            response = web.StreamResponse(status=201, headers=headers)
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(stream), 1 << 16):
                await response.write(stream[start:start + (1 << 16)])
            return response
        assert answer is not None
        body = answer(offer)
        return web.Response(status=201, headers=headers, body=body.encode() if isinstance(body, str) else body)

    async def delete(request: web.Request) -> web.Response:
        return web.Response(status=200)

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/whip/{room}/{participant}", post)
    app.router.add_delete("/resource/1", delete)
    return app


def janus_http_app(body: bytes) -> web.Application:
    """Janus's REST API (long-poll transport) answering every request with ``body``."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/janus{tail:.*}", answer)
    return app


# -- WebSocket (Janus JSON, LiveKit protobuf) --------------------------------------------------------------------
WsScript = Callable[[web.WebSocketResponse], Awaitable[None]]


def ws_app(path: str, script: WsScript, protocols: tuple[str, ...] = ()) -> web.Application:
    """A WebSocket endpoint at ``path`` that runs ``script`` on each connection."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=protocols, max_msg_size=0)
        await ws.prepare(request)
        try:
            await script(ws)
        except (ConnectionError, RuntimeError):
            pass
        return ws

    app = web.Application()
    app.router.add_get(path, handle)
    return app


async def ws_silent(ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass


def ws_first_reply(reply: str | bytes | Callable[[Any], str | bytes], close: bool = False) -> WsScript:
    """Waits for the first message, answers ``reply`` (or ``reply(message)``), then stays silent or closes."""

    async def script(ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            data = reply(msg) if callable(reply) else reply
            await (ws.send_str(data) if isinstance(data, str) else ws.send_bytes(data))
            if close:
                await ws.close()
                return
            await ws_silent(ws)
            return

    return script


async def ws_close(ws: web.WebSocketResponse) -> None:
    """Accepts the WebSocket and closes it at once."""
    await ws.close()


def ws_greet(first: bytes) -> WsScript:
    """Sends ``first`` on connecting (as a LiveKit server sends its JoinResponse), then stays silent."""

    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(first)
        await ws_silent(ws)

    return script


def ws_flood(message: str | bytes, first: str | bytes | None = None) -> WsScript:
    """Sends ``first`` (if any), then ``message`` over and over until the client goes."""

    async def script(ws: web.WebSocketResponse) -> None:
        if first is not None:
            await (ws.send_str(first) if isinstance(first, str) else ws.send_bytes(first))
        while not ws.closed:
            for _ in range(100):
                await (ws.send_str(message) if isinstance(message, str) else ws.send_bytes(message))
            await asyncio.sleep(0)

    return script


def janus_script(publish_answer: Callable[[str], str]) -> WsScript:
    """Enough of Janus's API for a publisher to get to its SDP answer, which is ``publish_answer(offer)``."""

    async def script(ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            req = json.loads(msg.data)
            txn, kind = req.get("transaction"), req.get("janus")
            body = req.get("body", {})
            reply: dict[str, Any] = {"janus": "success", "transaction": txn}
            if kind == "create":
                reply["data"] = {"id": 1}
            elif kind == "attach":
                reply["data"] = {"id": 2}
            elif kind == "keepalive":
                reply = {"janus": "ack", "transaction": txn}
            elif kind == "message":
                request = body.get("request")
                data: dict[str, Any] = {"videoroom": "success"}
                if request == "exists":
                    data["exists"] = True
                elif request == "join":
                    data = {"videoroom": "joined", "id": 5, "private_id": 6, "publishers": []}
                reply = {"janus": "event", "transaction": txn, "sender": 2,
                         "plugindata": {"plugin": "janus.plugin.videoroom", "data": data}}
                if request == "publish":
                    reply["jsep"] = {"type": "answer", "sdp": publish_answer(req["jsep"]["sdp"])}
            await ws.send_str(json.dumps(reply))

    return script


# -- the p2p broker's protocol (JSON lines over TCP) ---------------------------------------------------------------
def broker_with_peer(answer: Callable[[str], str] | None = None, flood: bool = False) -> Handler:
    """A broker whose room holds ``b``: ``b`` answers an offer with ``answer(offer)``, or the broker floods."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(json.dumps({"op": "members", "members": ["b"], "roles": {}}).encode() + b"\n")
        await writer.drain()
        if flood:
            noise = json.dumps({"op": "noise", "pad": "x" * 100}).encode() + b"\n"
            try:
                while not reader.at_eof() and not writer.is_closing():
                    writer.write(noise * 50)
                    await writer.drain()
                    await asyncio.sleep(0)
            except ConnectionError:
                pass  # the participant hung up on the flood, as it should
            return
        assert answer is not None
        while line := await reader.readline():
            msg = json.loads(line)
            if msg.get("op") == "signal" and msg["data"].get("type") == "offer":
                reply = {"op": "signal", "from": "b", "data": {"type": "answer", "sdp": answer(msg["data"]["sdp"])}}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        writer.close()

    return handler
