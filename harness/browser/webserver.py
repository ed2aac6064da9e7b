"""A loopback web server for platforms whose app is a folder of static files (Janus's demo pages).

Serves ``root`` (symbolic links followed: Debian's janus-demos links its ``javascript/`` to
``/usr/share/javascript``) on 127.0.0.1, with some files replaced by filled-in templates, e.g. a
``settings.js`` that points the demo at the system under test.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

from harness.browser.platform import Meeting, Serve
from harness.errors import BrowserError


class StaticSite:
    """One running site; :meth:`start` returns its base URL."""

    def __init__(self, serve: Serve, meeting_vars: Meeting) -> None:
        self._root = Path(serve.root)
        self._override = {name: meeting_vars.fill(text) for name, text in serve.override}
        self._runner: web.AppRunner | None = None
        self.url: str | None = None

    async def start(self) -> str:
        """Start serving on a free port of 127.0.0.1."""
        if not self._root.is_dir():
            raise BrowserError(f"the web platform's files are missing: {self._root} (Debian: apt-get install "
                               "janus-demos libjs-janus-gateway)")
        app = web.Application()
        app.router.add_get("/{path:.*}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = getattr(site._server, "sockets", None)  # aiohttp does not expose the bound port otherwise
        port = sockets[0].getsockname()[1] if sockets else 0
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def _get(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"] or "index.html"
        if path in self._override:
            kind = mimetypes.guess_type(path)[0] or "text/plain"
            return web.Response(text=self._override[path], content_type=kind)
        parts = Path(path).parts
        if any(part in ("..", "") for part in parts):
            raise web.HTTPNotFound()
        # Resolved through the links under root (that is how the package lays its files out), never above it
        # by a "..": the request path has none.
        target = self._root.joinpath(*parts)
        if not target.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(target)

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
