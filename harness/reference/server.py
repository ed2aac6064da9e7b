"""The reference SFU's HTTP side: WHIP (RFC 9725) to publish, WHEP to subscribe, on 127.0.0.1 by default.

Endpoints (``{room}`` and ``{participant}`` are free names)::

    POST    /whip/{room}/{participant}   application/sdp offer → 201, answer, Location, ETag
    POST    /whep/{room}/{publisher}     application/sdp offer (receive-only) → 201, answer, Location, ETag
    PATCH   /resource/{id}               → 405: no trickle ICE or ICE restart (answers carry every candidate)
    DELETE  /resource/{id}               → 200, the session ends
    OPTIONS /whip/… and /whep/…           → 204, Accept-Post, Link for ICE servers when configured
    GET     /rooms/{room}                → 200 {"room", "publishers"}: who publishes (WHEP has no discovery)
    GET     /health                      → 200 {"pid", "version", "rooms", "resources", "tasks"}
    GET     /app/?room={room}            → the minimal web client (``harness/reference/web/``): a person or a
                                           browser participant types a name and joins over WHIP/WHEP

With a token (``--token-file`` or ``CONFBENCH_REFERENCE_TOKEN``) every request but OPTIONS needs
``Authorization: Bearer <token>`` (401 otherwise). Bad requests get their status and a one-line reason:
415 wrong content type, 400 malformed SDP, 404 unknown room/publisher/resource, 409 a name already
publishing, 406 a subscriber that cannot receive the publisher's codec.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path

from aiohttp import web

import harness
from harness.reference.sfu import Sfu, SfuError
from harness.rtc import netio
from harness.rtc.ice import pin_host_addresses

log = logging.getLogger(__name__)

TOKEN_ENV = "CONFBENCH_REFERENCE_TOKEN"
READY_PREFIX = "CONFBENCH_REFERENCE_URL="
MAX_BODY = 256 * 1024  # an SDP offer is a few kB
SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, reason: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=reason + "\n", content_type="text/plain", headers=headers)


def make_app(sfu: Sfu, token: str | None = None, ice_servers: Sequence[str] = ()) -> web.Application:
    """The aiohttp application serving ``sfu``."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None and request.method != "OPTIONS":
            given = request.headers.get("Authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": 'Bearer realm="confbench"'})
        try:
            return await handler(request)
        except SfuError as exc:
            return _error(exc.status, exc.reason)

    links = [f'<{url}>; rel="ice-server"' for url in ice_servers]

    def with_links(headers: dict[str, str]) -> dict[str, str]:
        if links:
            headers["Link"] = ", ".join(links)
        return headers

    async def read_offer(request: web.Request) -> str:
        if request.content_type != SDP:
            raise SfuError(415, f"Content-Type must be {SDP}, got {request.content_type or 'none'}")
        body = await request.text()
        if not body.strip():
            raise SfuError(400, "empty SDP offer")
        return body

    def created(resource_id: str, etag: str, answer: str) -> web.Response:
        return web.Response(status=201, text=answer, content_type=SDP,
                            headers=with_links({"Location": f"/resource/{resource_id}", "ETag": etag}))

    async def whip(request: web.Request) -> web.Response:
        offer = await read_offer(request)
        resource, answer = await sfu.publish(request.match_info["room"], request.match_info["participant"], offer)
        return created(resource.id, resource.etag, answer)

    async def whep(request: web.Request) -> web.Response:
        offer = await read_offer(request)
        resource, answer = await sfu.subscribe(request.match_info["room"], request.match_info["participant"],
                                               offer)
        return created(resource.id, resource.etag, answer)

    async def patch(request: web.Request) -> web.Response:
        sfu.resource(request.match_info["id"])
        if request.content_type != TRICKLE:
            raise SfuError(415, f"Content-Type must be {TRICKLE}")
        # aiortc answers with every candidate gathered, so there is nothing to trickle; an ICE restart would
        # need a new peer connection. RFC 9725 §4.3.1: a server without these answers 405.
        return _error(405, "trickle ICE and ICE restart are not supported by this server", Allow="DELETE, OPTIONS")

    async def delete(request: web.Request) -> web.Response:
        await sfu.delete(request.match_info["id"])
        return web.Response(status=200)

    async def options(request: web.Request) -> web.Response:
        return web.Response(status=204, headers=with_links({"Accept-Post": SDP, "Allow": "OPTIONS, POST"}))

    async def rooms(request: web.Request) -> web.Response:
        room = request.match_info["room"]
        return web.json_response({"room": room, "publishers": sfu.publishers(room)})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"pid": os.getpid(), "version": f"confbench-reference {harness.__version__}",
                                  "rooms": len(sfu.rooms), "resources": len(sfu.resources),
                                  # for leak checks (benchmarks/churn.py): tasks alive in the SFU's loop
                                  "tasks": len(asyncio.all_tasks()),
                                  # what collecting ended sessions cost (harness.rtc.collect)
                                  "gc": {"collections": sfu.collector.collections,
                                         "longest_pause_ms": round(sfu.collector.longest_pause_ms, 1)}})

    async def app_redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"/app/?{request.query_string}" if request.query_string else "/app/")

    async def app_page(request: web.Request) -> web.Response:
        return _web_file("index.html")

    async def app_file(request: web.Request) -> web.Response:
        return _web_file(request.match_info["file"])

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY)
    app.add_routes([
        web.post("/whip/{room}/{participant}", whip), web.options("/whip/{room}/{participant}", options),
        web.post("/whep/{room}/{participant}", whep), web.options("/whep/{room}/{participant}", options),
        web.patch("/resource/{id}", patch), web.delete("/resource/{id}", delete),
        web.get("/rooms/{room}", rooms), web.get("/health", health),
        web.get("/app", app_redirect), web.get("/app/", app_page), web.get("/app/{file}", app_file),
    ])

    async def on_shutdown(_: web.Application) -> None:
        await sfu.close()

    app.on_shutdown.append(on_shutdown)
    return app


_WEB_TYPES = {".html": "text/html", ".js": "application/javascript"}


def _web_file(name: str) -> web.Response:
    """A file of the web client (only the files shipped beside this module; no path leaves that folder)."""
    suffix = Path(name).suffix
    if "/" in name or name.startswith(".") or suffix not in _WEB_TYPES:
        raise SfuError(404, f"no file {name!r}")
    entry = resources.files("harness.reference").joinpath("web", name)
    if not entry.is_file():
        raise SfuError(404, f"no file {name!r}")
    return web.Response(text=entry.read_text(encoding="utf-8"), content_type=_WEB_TYPES[suffix])


def read_token(token_file: Path | None) -> str | None:
    """The bearer token from a file (first line) or the environment; None when neither is set."""
    if token_file is not None:
        try:
            token = token_file.read_text().strip().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise SystemExit(f"confbench serve-reference: cannot read a token from {token_file}: {exc}") from None
        return token or None
    return os.environ.get(TOKEN_ENV) or None


async def serve(host: str, port: int, token: str | None, ice_servers: Sequence[str] = ()) -> None:
    """Serve until SIGINT/SIGTERM; prints one ready line (``CONFBENCH_REFERENCE_URL=…``) on stdout."""
    netio.install()  # the SFU receives every stream of every room: it must drain its sockets
    try:
        address = ipaddress.ip_address(host)
        pin_host_addresses([str(address)] if not address.is_unspecified else ["127.0.0.1"])
    except ValueError:
        pin_host_addresses(["127.0.0.1"])
    sfu = Sfu()
    sfu.collector.start(freeze=True)
    runner = web.AppRunner(make_app(sfu, token, ice_servers), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None)  # aiohttp does not expose the bound port otherwise
    bound = sockets[0].getsockname() if sockets else (host, port)
    url = f"http://{bound[0]}:{bound[1]}"
    print(f"{READY_PREFIX}{url}", flush=True)
    print(f"reference SFU (pid {os.getpid()}) listening on {url}: WHIP {url}/whip/{{room}}/{{participant}}, "
          f"WHEP {url}/whep/{{room}}/{{publisher}}{' (bearer token required)' if token else ''}",
          file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m harness.reference.server`` (also ``confbench serve-reference``)."""
    parser = argparse.ArgumentParser(prog="confbench serve-reference", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8189, help="port (default: 8189; 0: any free port)")
    parser.add_argument("--token-file", type=Path, help=f"bearer token file (default: ${TOKEN_ENV}, else none)")
    parser.add_argument("--ice-server", action="append", default=[], metavar="URL",
                        help="announce an ICE server in Link headers (repeatable; none by default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CONFBENCH_LOG", "WARNING"), stream=sys.stderr,
                        format="reference %(levelname)s %(name)s: %(message)s")
    token = read_token(args.token_file)
    try:
        asyncio.run(serve(args.host, args.port, token, args.ice_server))
    except OSError as exc:
        raise SystemExit(f"confbench serve-reference: cannot listen on {args.host}:{args.port}: "
                         f"{exc.strerror or exc}") from None


if __name__ == "__main__":
    main()
