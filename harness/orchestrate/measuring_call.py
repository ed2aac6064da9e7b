"""A measuring call: two participants, each in a media host of its own, on the ``p2p`` path or through a system.

The instrument measured by calibration is the one every run uses: participants in media hosts
(``python -m harness.host.media_host``), joined over ``p2p`` (no server), decoding everything they receive. The
measured direction is from the ``sender`` (audio and video), whose media host may run in a namespace
(``sender_prefix``, e.g. ``ip netns exec NS``) behind an emulated link, to the ``receiver``, which always
runs in the root namespace unless ``receiver_prefix`` puts it in one too. Through a system (``system``: its
name and the URL of a deployment, e.g. a local Janus), both join the system's room ``room``; without one, the
call's own p2p broker connects them. The receiver sends audio back: half again as many packets for loss counts, at
little cost (a second video stream would make both media hosts encode and decode video, and a latency
figure on a small machine more sensitive to what else it runs).

Rows arrive as in a run (``docs/results.md``) and are kept in memory: a call lasts minutes, not hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.probes.procs import die_with_parent
from harness.scenario.scenario import AudioSettings, Group, Scenario, VideoSettings
from harness.systems.p2p import BrokerServer

START_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 20.0


class CallError(HarnessError):
    """The measuring call could not be set up."""


class _Host:
    """One media host process, spoken to over its pipe (the protocol of ``harness.host.media_host``)."""

    def __init__(self, prefix: Sequence[str], rows: dict[str, list[dict[str, Any]]]) -> None:
        self._prefix = list(prefix)
        self._rows = rows
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._prefix, sys.executable, "-m", "harness.host.media_host", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, limit=2**24,
            preexec_fn=die_with_parent)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            message = json.loads(line)
            if message.get("type") == "samples":
                for table, rows in message["tables"].items():
                    self._rows[table].extend(rows)
            elif message.get("type") == "reply":
                waiter = self._waiting.pop(message.get("id"), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_result({"ok": False, "error": "the media host exited"})

    async def request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        rid = next(self._ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = waiter
        self._proc.stdin.write(json.dumps(dict(fields, op=op, id=rid)).encode() + b"\n")
        await self._proc.stdin.drain()
        try:
            reply = await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise CallError(f"the media host did not answer {op!r} within {timeout:g} s") from None
        if not reply.get("ok"):
            raise CallError(f"the media host refused {op!r}: {reply.get('error')}")
        return dict(reply.get("result") or {})

    async def close(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(CallError, ConnectionError):
            await self.request("stop", timeout=10)
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)


class MeasuringCall:
    """Sender → receiver over p2p, measured like a run; use ``async with``."""


    def __init__(self, video: VideoSettings, *, broker_host: str = "127.0.0.1",
                 sender_prefix: Sequence[str] = (), sender_addresses: Sequence[str] = ("127.0.0.1",),
                 receiver_addresses: Sequence[str] = ("127.0.0.1",), audio: AudioSettings | None = None,
                 receiver_prefix: Sequence[str] = (), system: tuple[str, str | None] | None = None,
                 room: str = "calibration") -> None:
        self.video = video
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._broker = BrokerServer(broker_host) if system is None else None
        self._system = system
        self._room = room
        self._closed = False
        self._audio = audio or AudioSettings()
        self._hosts = [(_Host(sender_prefix, self.rows), list(sender_addresses), "sender"),
                       (_Host(receiver_prefix, self.rows), list(receiver_addresses), "receiver")]

    def _scenario(self) -> Scenario:
        return Scenario(name="calibration", room=self._room, video=self.video, audio=self._audio,
                        join_timeout_s=JOIN_TIMEOUT_S,
                        groups=(Group("sender", 1), Group("receiver", 1, publish=("audio",))))

    async def __aenter__(self) -> MeasuringCall:
        if self._broker is not None:
            self._broker.start()
        name, url = self._system or ("p2p", self._broker.url if self._broker is not None else None)
        try:
            scenario = self._scenario().to_dict()
            for host, addresses, _ in self._hosts:
                await host.start()
                await host.request("configure", START_TIMEOUT_S, scenario=scenario,
                                   system={"name": name, "url": url}, host_addresses=addresses,
                                   host="calibration")
            for index, (host, _, group) in enumerate(self._hosts):
                row = await host.request("join", JOIN_TIMEOUT_S + 10, participant=group, group=group, index=index)
                if not row.get("ok"):
                    raise CallError(f"the {group} of the measuring call could not join: {row.get('error')}")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._closed:
            return  # idempotent: a call may be ended early and again on the way out
        self._closed = True
        await asyncio.gather(*(host.close() for host, _, _ in self._hosts), return_exceptions=True)
        if self._broker is not None:
            self._broker.stop()

    def table(self, name: str, start: float, end: float, receiver: str | None = "receiver") -> pd.DataFrame:
        """Rows of ``name`` with ``start <= ts < end`` measured by ``receiver`` (None: by either participant)."""
        frame = pd.DataFrame(self.rows.get(name, []))
        if frame.empty:
            return frame
        frame = frame[(frame["ts"] >= start) & (frame["ts"] < end)]
        if receiver is not None:
            column = "participant" if "participant" in frame.columns else "receiver"
            frame = frame[frame[column] == receiver]
        return frame
