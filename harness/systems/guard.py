"""What every adapter does with what a server sends it: bounded in size, in rate and in time.

A server under test may be broken or hostile (docs/reliability.md): it may answer 10 MB where an SDP is a few
kB, flood a WebSocket, or answer with an SDP that aiortc cannot use. Each adapter reads through these helpers so
that such a server costs the participant one line (a :class:`SystemError_`), never a traceback, a stuck join or
the media host's memory.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription

from harness.errors import SystemError_

MAX_BODY = 1 << 20
"""The largest HTTP body an adapter reads (an SDP is a few kB, a room listing a few more)."""
MAX_MESSAGE = 4 << 20
"""The largest signalling message (WebSocket frame, JSON line) an adapter accepts: a join response that lists
a thousand participants stays well below it."""
FLOOD_MESSAGES = 10000
"""More messages than this within :data:`FLOOD_WINDOW_S` is a flood, not signalling."""
FLOOD_WINDOW_S = 1.0


async def read_body(response: aiohttp.ClientResponse, what: str, limit: int = MAX_BODY) -> str:
    """The body of ``response`` as text, refusing one longer than ``limit`` bytes (before reading it, when
    the server declares its length)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise SystemError_(f"{what} answered {declared} bytes, more than the {limit} an adapter reads")
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise SystemError_(f"{what} answered more than the {limit} bytes an adapter reads")
    body = b"".join(chunks)
    return body.decode(response.get_encoding() if response.charset else "utf-8", errors="replace")


class FloodGuard:
    """Counts messages; :meth:`count` raises :class:`SystemError_` once more than ``limit`` arrive within
    ``window_s`` seconds (a fixed window: cheap, and a real server never comes near it)."""

    def __init__(self, what: str, limit: int = FLOOD_MESSAGES, window_s: float = FLOOD_WINDOW_S) -> None:
        self.what = what
        self.limit = limit
        self.window_s = window_s
        self._start = time.monotonic()
        self._seen = 0

    def count(self) -> None:
        """One more message arrived."""
        now = time.monotonic()
        if now - self._start > self.window_s:
            self._start, self._seen = now, 0
        self._seen += 1
        if self._seen > self.limit:
            raise SystemError_(f"{self.what} flooded the signalling with more than {self.limit} messages "
                               f"in {self.window_s:g} s")


def fail_waiting(futures: Iterable[asyncio.Future[Any] | None], reason: str) -> None:
    """Fail every pending future in ``futures`` with ``reason`` (a join waiting for a reply ends now, not at
    its timeout); those nobody awaits any more are not reported as never retrieved."""
    for future in futures:
        if future is not None and not future.done():
            future.set_exception(SystemError_(reason))
            future.exception()  # marks it retrieved; an await still raises it


def usable_candidates(sdp: str) -> int:
    """How many ICE candidates in ``sdp`` aiortc could try (UDP, of a known type); raises ``ValueError`` for
    an SDP aiortc cannot parse."""
    parsed = SessionDescription.parse(sdp)
    return sum(1 for media in parsed.media for c in media.ice_candidates
               if c.protocol.lower() == "udp" and c.ip and c.port)


async def apply_answer(pc: RTCPeerConnection, sdp: str, what: str, need_candidates: bool = True) -> None:
    """Set ``sdp`` as the remote answer of ``pc``; an SDP aiortc cannot use (garbage, truncated, no media, or
    with ``need_candidates`` no UDP candidate: the server trickles none afterwards) is one :class:`SystemError_`."""
    try:
        if need_candidates and not usable_candidates(sdp):
            raise SystemError_(f"{what} answered an SDP without a usable ICE candidate")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    except SystemError_:
        raise
    except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError... for a broken SDP
        raise SystemError_(f"{what} answered an SDP aiortc cannot use: {_first_line(exc)}") from None


async def apply_offer(pc: RTCPeerConnection, sdp: str, what: str) -> None:
    """Set ``sdp`` as the remote offer of ``pc``; a broken SDP is one :class:`SystemError_`."""
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except Exception as exc:
        raise SystemError_(f"{what} offered an SDP aiortc cannot use: {_first_line(exc)}") from None



def json_object(text: str | bytes, what: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object; else ``ValueError("<what> that is not JSON: …")`` or
    ``ValueError("JSON that is not an object: …")``, quoting its start (the adapters' one line)."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"{what} that is not JSON: {text[:60]!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"JSON that is not an object: {text[:60]!r}")
    return value

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
