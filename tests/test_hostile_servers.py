"""Broken and hostile servers, for every adapter family (docs/reliability.md).

Each case drives one participant's :class:`Session` against one fake (``tests/fakes_hostile.py``) with a short
join timeout and checks what a user would see: the join fails with one :class:`SystemError_` line naming the
cause, within the timeout; nothing is logged with a traceback; leaving leaves no asyncio task and no thread.
No media flows (no connection ever comes up), so these tests are light.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from fakes_hostile import (
    TEN_MB,
    FakeServer,
    answer_without_candidates,
    broker_with_peer,
    hang_up,
    janus_http_app,
    janus_script,
    replies,
    silent,
    whip_app,
    ws_app,
    ws_close,
    ws_first_reply,
    ws_flood,
    ws_greet,
    ws_silent,
)
from livekit.protocol import models, rtc

from harness.errors import SystemError_
from harness.systems.base import SessionContext, System
from harness.systems.janus import JanusSystem
from harness.systems.livekit import API_KEY_ENV, API_SECRET_ENV, LiveKitSystem
from harness.systems.p2p import P2PSystem
from harness.systems.whip import WhipSystem

TIMEOUT_S = 2.0
SLACK_S = 0.5  # the join must fail within its timeout, plus what closing a peer connection takes


class Media:
    def __init__(self, publish: bool) -> None:
        self.publish = publish

    def tracks(self) -> list[MediaStreamTrack]:
        return [AudioStreamTrack(), VideoStreamTrack()] if self.publish else []


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_connection(self, pc: Any, remote: str) -> None:
        pass

    def on_track(self, track: Any, remote: str, receiver: Any = None) -> None:
        pass

    def on_event(self, kind: str, detail: str) -> None:
        self.events.append((kind, detail))


async def _attempt(system: System, publish: bool) -> tuple[str, float, list[asyncio.Task[Any]]]:
    ctx = SessionContext(room="room", participant="a", media=Media(publish), listener=Listener(),
                         timeout_s=TIMEOUT_S)
    session = system.session(ctx)
    start = time.monotonic()
    try:
        # The outer bound only keeps a broken adapter from hanging the test; the adapter must beat it.
        await asyncio.wait_for(session.join(), TIMEOUT_S + 5)
    except SystemError_ as exc:
        error, elapsed = str(exc), time.monotonic() - start
    else:
        error, elapsed = "", time.monotonic() - start
    await session.leave()
    await system.close()
    left: list[asyncio.Task[Any]] = []
    for _ in range(40):  # closing transports takes a few loop turns
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        if not left:
            break
        await asyncio.sleep(0.05)
    return error, elapsed, left


def check(system: System, fake: FakeServer, expected: str, caplog: pytest.LogCaptureFixture,
          publish: bool = True) -> str:
    """Join through ``system`` against the running ``fake``; assert the one-line failure and a clean exit."""
    before = set(threading.enumerate())
    with caplog.at_level(logging.WARNING):
        error, elapsed, left = asyncio.run(_attempt(system, publish))
    ours = [r for r in caplog.records if r.threadName != fake.thread.name]  # not what the fake logs
    assert error, "the join succeeded against a broken server"
    assert "\n" not in error and len(error) < 400, error
    assert expected in error, error
    assert elapsed < TIMEOUT_S + SLACK_S, f"failed after {elapsed:.1f} s: {error}"
    assert not left, f"tasks left behind: {left}"
    tracebacks = [r for r in ours if r.exc_info or "Traceback" in r.getMessage()]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert not [r for r in ours if r.name == "asyncio"], [r.getMessage() for r in ours]
    new_threads = set(threading.enumerate()) - before - {fake.thread}
    assert not [t for t in new_threads if t.is_alive()], new_threads
    return error


def _tcp_url(scheme: str, fake: FakeServer, path: str = "") -> str:
    return f"{scheme}://127.0.0.1:{fake.port}{path}"


# -- WHIP ------------------------------------------------------------------------------------------------------------
WHIP_HEAD = b"HTTP/1.1 201 Created\r\nLocation: /resource/1\r\nContent-Type: application/sdp\r\n"

WHIP_CASES: dict[str, tuple[Callable[[], FakeServer], str]] = {
    "never answers": (lambda: FakeServer(tcp=silent), "did not answer within 2 s"),
    "closes mid-handshake": (lambda: FakeServer(tcp=hang_up), "cannot reach the WHIP endpoint"),
    "garbage": (lambda: FakeServer(app=whip_app(lambda offer: "garbage\r\n\x00\xff")), "answered an SDP"),
    "truncated body": (lambda: FakeServer(tcp=replies(WHIP_HEAD + b"Content-Length: 5000\r\n\r\nv=0\r\no=")),
                       "cannot reach the WHIP endpoint"),
    "10 MB SDP, declared": (lambda: FakeServer(app=whip_app(lambda offer: "a=x\r\n" * (TEN_MB // 5))),
                            "more than the 1048576 an adapter reads"),
    "10 MB SDP, chunked": (lambda: FakeServer(app=whip_app(stream=b"a=x\r\n" * (TEN_MB // 5))),
                           "more than the 1048576 bytes an adapter reads"),
    "no usable candidate": (lambda: FakeServer(app=whip_app(answer_without_candidates)),
                            "without a usable ICE candidate"),
}


@pytest.mark.parametrize("case", list(WHIP_CASES))
def test_whip_against_a_broken_server(case: str, caplog: pytest.LogCaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    make, expected = WHIP_CASES[case]
    with make() as fake:
        # A WHIP template without discovery: the publication is what is tested.
        monkeypatch.delenv("CONFBENCH_WHEP_URL", raising=False)
        system = WhipSystem(_tcp_url("http", fake, "/whip/{room}/{participant}"))
        check(system, fake, expected, caplog)


# -- Janus (JSON over WebSocket) -----------------------------------------------------------------------------------
def _janus(script: Any) -> FakeServer:
    return FakeServer(app=ws_app("/", script, protocols=("janus-protocol",)))


JANUS_CASES: dict[str, tuple[Callable[[], FakeServer], str]] = {
    "never answers": (lambda: _janus(ws_silent), "Janus did not answer a session within 2 s"),
    "closes mid-handshake": (lambda: FakeServer(tcp=hang_up), "cannot reach Janus"),
    "closes the WebSocket at once": (lambda: _janus(ws_close), "Janus at ws://127.0.0.1"),
    "garbage": (lambda: _janus(ws_first_reply("garbage{{")), "sent a message that is not JSON"),
    "truncated JSON": (lambda: _janus(ws_first_reply('{"janus": "success", "transaction": "')),
                       "sent a message that is not JSON"),
    "JSON of the wrong shape": (lambda: _janus(ws_first_reply("[1, 2, 3]")), "JSON that is not an object"),
    "10 MB message": (lambda: _janus(ws_first_reply('{"janus": "event", "x": "' + "a" * TEN_MB + '"}')),
                      "broke the WebSocket"),
    "floods": (lambda: _janus(ws_flood('{"janus": "event", "sender": 99}')), "flooded the signalling"),
    "garbage SDP answer": (lambda: _janus(janus_script(lambda offer: "garbage")), "SDP aiortc cannot use"),
}


@pytest.mark.parametrize("case", list(JANUS_CASES))
def test_janus_against_a_broken_server(case: str, caplog: pytest.LogCaptureFixture) -> None:
    make, expected = JANUS_CASES[case]
    with make() as fake:
        check(JanusSystem(_tcp_url("ws", fake)), fake, expected, caplog)


JANUS_HTTP_CASES: dict[str, tuple[bytes, str]] = {
    "garbage": (b"garbage{{", "sent a message that is not JSON"),
    "10 MB body": (b'{"janus": "success", "x": "' + b"a" * TEN_MB + b'"}', "more than the 1048576"),
}


@pytest.mark.parametrize("case", list(JANUS_HTTP_CASES))
def test_janus_long_poll_against_a_broken_server(case: str, caplog: pytest.LogCaptureFixture) -> None:
    body, expected = JANUS_HTTP_CASES[case]
    with FakeServer(app=janus_http_app(body)) as fake:
        check(JanusSystem(_tcp_url("http", fake, "/janus")), fake, expected, caplog)


# -- the p2p broker (JSON lines over TCP) --------------------------------------------------------------------------
P2P_CASES: dict[str, tuple[Callable[[], FakeServer], str]] = {
    "never answers": (lambda: FakeServer(tcp=silent), "did not finish within 2 s"),
    "closes mid-handshake": (lambda: FakeServer(tcp=hang_up), "closed the link of a"),
    "garbage": (lambda: FakeServer(tcp=replies(b"garbage\n")), "a line that is not JSON"),
    "truncated JSON": (lambda: FakeServer(tcp=replies(b'{"op": "memb')), "a line that is not JSON"),
    "10 MB line": (lambda: FakeServer(tcp=replies(b"x" * TEN_MB + b"\n", then_close=False)),
                   "a line longer than"),
    "no usable candidate": (lambda: FakeServer(tcp=broker_with_peer(answer_without_candidates)),
                            "without a usable ICE candidate"),
    "garbage SDP answer": (lambda: FakeServer(tcp=broker_with_peer(lambda offer: "garbage")),
                           "without a usable ICE candidate"),
    "floods": (lambda: FakeServer(tcp=broker_with_peer(flood=True)), "flooded the signalling"),
}


@pytest.mark.parametrize("case", list(P2P_CASES))
def test_p2p_against_a_broken_broker(case: str, caplog: pytest.LogCaptureFixture) -> None:
    make, expected = P2P_CASES[case]
    with make() as fake:
        check(P2PSystem(_tcp_url("tcp", fake)), fake, expected, caplog, publish=False)


# -- LiveKit (protobuf over WebSocket) -----------------------------------------------------------------------------
def _join_response() -> bytes:
    join = rtc.JoinResponse(participant=models.ParticipantInfo(sid="PA_a", identity="a"), ping_interval=30,
                            server_version="fake")
    return rtc.SignalResponse(join=join).SerializeToString()


def _livekit_publisher(answer_sdp: Callable[[str], str]) -> Any:
    """Joins, accepts each track, answers the publisher's offer with ``answer_sdp(offer)``."""

    async def script(ws: Any) -> None:
        await ws.send_bytes(_join_response())
        async for msg in ws:
            req = rtc.SignalRequest.FromString(msg.data)
            kind = req.WhichOneof("message")
            if kind == "add_track":
                info = models.TrackInfo(sid=f"TR_{req.add_track.cid[:8]}", name=req.add_track.name)
                await ws.send_bytes(rtc.SignalResponse(track_published=rtc.TrackPublishedResponse(
                    cid=req.add_track.cid, track=info)).SerializeToString())
            elif kind == "offer":
                await ws.send_bytes(rtc.SignalResponse(answer=rtc.SessionDescription(
                    type="answer", sdp=answer_sdp(req.offer.sdp))).SerializeToString())

    return script


def _livekit(script: Any) -> FakeServer:
    return FakeServer(app=ws_app("/rtc", script))


def _pong() -> bytes:
    return rtc.SignalResponse(pong=1).SerializeToString()


LIVEKIT_CASES: dict[str, tuple[Callable[[], FakeServer], str]] = {
    "never answers": (lambda: _livekit(ws_silent), "sent no JoinResponse within 2 s"),
    "closes mid-handshake": (lambda: FakeServer(tcp=hang_up), "cannot reach LiveKit"),
    "closes before joining": (lambda: _livekit(ws_close), "the connection closed"),
    "garbage": (lambda: _livekit(ws_greet(b"\xff\xff\xff\xffgarbage")), "not a SignalResponse"),
    "truncated protobuf": (lambda: _livekit(ws_greet(_join_response()[:-7])), "not a SignalResponse"),
    "10 MB message": (lambda: _livekit(ws_greet(b"\x00" * TEN_MB)), "broke the WebSocket"),
    "floods": (lambda: _livekit(ws_flood(_pong(), first=_join_response())), "flooded the signalling"),
    "garbage SDP answer": (lambda: _livekit(_livekit_publisher(lambda offer: "garbage")), "SDP aiortc cannot use"),
}


@pytest.mark.parametrize("case", list(LIVEKIT_CASES))
def test_livekit_against_a_broken_server(case: str, caplog: pytest.LogCaptureFixture,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "key")
    monkeypatch.setenv(API_SECRET_ENV, "secret-secret-secret-secret-secret")
    make, expected = LIVEKIT_CASES[case]
    with make() as fake:
        check(LiveKitSystem(_tcp_url("ws", fake)), fake, expected, caplog)


# -- through the participant engine: signalling succeeds, media never can ------------------------------------------
def _answer_with_dead_candidate(offer: str) -> str:
    """An answer whose only candidate is a port where nothing listens (usable on paper, never reachable)."""
    answer = answer_without_candidates(offer)
    candidate = "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
    return answer.replace("a=ice-pwd:", candidate + "a=ice-pwd:", 1)


def test_a_peer_whose_candidates_never_answer_fails_the_join_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from helpers import ListSink

    from harness.host.participant import Participant, ParticipantSpec
    from harness.rtc.ice import pin_host_addresses

    async def attempt(url: str) -> tuple[dict[str, Any], float, list[asyncio.Task[Any]]]:
        pin_host_addresses(["127.0.0.1"])
        spec = ParticipantSpec(name="a", group="g", index=0, room="r", publish=(), join_timeout_s=TIMEOUT_S)
        person = Participant(spec, P2PSystem(url), ListSink())
        start = time.monotonic()
        row = await person.join()
        elapsed = time.monotonic() - start
        await person.leave()
        await asyncio.sleep(0.2)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        return row, elapsed, left

    with FakeServer(tcp=broker_with_peer(_answer_with_dead_candidate)) as fake, caplog.at_level(logging.WARNING):
        row, elapsed, left = asyncio.run(attempt(_tcp_url("tcp", fake)))
    assert not row["ok"]
    assert row["error"] in ("ICE towards b did not connect within 2 s", "ICE failed towards b"), row["error"]
    assert elapsed < TIMEOUT_S + SLACK_S + 1, elapsed  # the engine's own bound, plus closing
    assert not left, left
    assert not [r for r in caplog.records if r.exc_info and r.threadName != fake.thread.name]
