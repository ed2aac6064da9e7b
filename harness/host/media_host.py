"""The media host: a plain-asyncio process that hosts participants for one Locust process.

Why a process of its own: ``import locust`` monkey-patches the interpreter for gevent while aiortc needs a
real asyncio loop and real threads (DESIGN.md §1). The Locust side (``harness.loadgen.host_client``) starts
``python -m harness.host.media_host`` and talks to it over its standard input and output, one JSON object a line:

commands (stdin)::

    {"op": "configure", "id": 1, "scenario": {...}, "system": {"name": "p2p", "url": null},
     "host_addresses": ["127.0.0.1"], "host": "loadgen-1"}
    {"op": "join",  "id": 2, "participant": "everyone-0", "group": "everyone", "index": 0,
     "probes": ["everyone-3"]}                       (senders it must decode, whatever probe_fraction draws)
    {"op": "probe", "id": 3, "participant": "everyone-0", "sender": "everyone-7"}   (one more such sender)
    {"op": "leave", "id": 4, "participant": "everyone-0"}
    {"op": "stop",  "id": 5}

messages (stdout)::

    {"type": "reply", "id": 2, "ok": true, "result": {...}}      one per command
    {"type": "samples", "tables": {"frames": [...], ...}}      batched rows (docs/results.md)

Anything else the process prints goes to stderr: stdout carries the protocol only. End of input (the Locust
process died) stops every participant and ends the process, so no orphan keeps sending media.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import socket
import sys
import time
from collections import defaultdict
from typing import Any, BinaryIO

import psutil

from harness.browser.engines import Engines, HostedParticipant
from harness.browser.participant import BrowserParticipant
from harness.errors import HarnessError
from harness.host.participant import Participant, ParticipantSpec
from harness.media.pool import EncoderPool
from harness.media.send_clock import running_clock
from harness.rtc import netio, udpstats
from harness.rtc.collect import CycleCollector
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import Scenario, scenario_from_dict
from harness.systems import SystemSpec, create_system
from harness.systems.base import System

log = logging.getLogger("harness.host.media_host")

# Samples are batched: one pipe write per interval instead of one per frame.
BATCH_INTERVAL_S = 0.25
# A Locust process that stops reading must not make the media host grow without bound.
MAX_BUFFERED_ROWS = 500_000
LAG_TICK_S = 0.05
# Python's cyclic collector stops the loop while it scans; see _tune_gc.
GC_THRESHOLDS = (20_000, 20, 20)


class _Outbox:
    """Batches rows per table and writes protocol lines to the real stdout."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._count = 0
        self.dropped = 0

    def emit(self, table: str, row: dict[str, Any]) -> None:
        if self._count >= MAX_BUFFERED_ROWS:
            self.dropped += 1
            return
        self._rows[table].append(row)
        self._count += 1

    def send(self, message: dict[str, Any]) -> None:
        self._out.write(json.dumps(message, separators=(",", ":"), default=_json_default).encode() + b"\n")
        self._out.flush()

    def flush(self) -> None:
        if not self._count:
            return
        rows, self._rows, self._count = self._rows, defaultdict(list), 0
        self.send({"type": "samples", "tables": rows})


def _tune_gc() -> None:
    """Fewer, cheaper pauses of the cyclic garbage collector, which stops the event loop while it scans.

    A media host allocates per packet (RTP objects, futures), so with the default thresholds the collector
    ran several times a second and its full scans of every live object took 70-190 ms on the development VM
    with 50 received streams: loop lag that delays packets and frames. Everything alive once the process is
    configured (modules, the scenario) is moved out of the collector's sight (``gc.freeze``), and young
    objects are collected after 20 000 allocations instead of 700, so that full scans come rarely. Memory
    freed by reference counting (nearly all per-packet garbage) is unaffected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _json_default(value: Any) -> Any:
    # numpy scalars and similar sneak into rows; they all know float().
    return float(value)


class MediaHost:
    """Hosts participants, answers commands, ships samples."""

    def __init__(self, outbox: _Outbox) -> None:
        self.outbox = outbox
        self.scenario: Scenario | None = None
        self.system: System | None = None
        self.host = socket.gethostname()
        self.participants: dict[str, HostedParticipant] = {}
        self.engines: Engines | None = None
        self.pool = EncoderPool()
        self._browser_frames: dict[str, tuple[int, int]] = {}  # browser participant -> (produced, skipped)
        # Designations that arrived before their receiver exists here: the master tells a receiver to decode a
        # newcomer as soon as the newcomer is admitted, which can be while the receiver is still being created.
        self._early_designations: dict[str, set[str]] = {}
        self._stopping = asyncio.Event()
        self._max_lag_s = 0.0
        self._clock_proc: psutil.Process | None = None
        self.collector = CycleCollector()
        """Collects ended participants' connections soon after they end (``harness.rtc.collect``)."""

    async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Execute one command and return its result (raises on failure)."""
        op = cmd.get("op")
        if op == "configure":
            self.scenario = scenario_from_dict(cmd["scenario"])
            _tune_gc()
            netio.install()  # batched reads and large receive buffers, before any socket exists
            spec = SystemSpec(**cmd["system"])
            pin_host_addresses(cmd.get("host_addresses") or ["127.0.0.1"])
            self.system = create_system(spec)
            self.host = cmd.get("host") or self.host
            self.engines = Engines(self.scenario, self.system, self.outbox, self._stream_owner, pool=self.pool)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                rcvbuf = netio.raise_rcvbuf(probe)
            facts = {"pid": os.getpid(), "udp_rcvbuf_bytes": rcvbuf, "udp_rcvbuf_requested": netio.RCVBUF_BYTES}
            self.outbox.emit("events", {"ts": time.time(), "kind": "media_host_started", "participant": None,
                                        "detail": json.dumps(facts)})
            return facts
        if op == "join":
            return await self._join(cmd)
        if op == "probe":
            p = self.participants.get(cmd["participant"])
            if p is None:
                self._early_designations.setdefault(str(cmd["participant"]), set()).add(str(cmd["sender"]))
            elif isinstance(p, Participant):  # a browser decodes every stream it receives anyway
                p.designate(str(cmd["sender"]))
            return {}
        if op == "leave":
            p = self.participants.pop(cmd["participant"], None)
            if p is not None:
                await p.leave()
            return {}
        if op == "stop":
            self._stopping.set()
            return {}
        raise ValueError(f"unknown op {op!r}")

    async def _join(self, cmd: dict[str, Any]) -> dict[str, Any]:
        if self.scenario is None or self.system is None or self.engines is None:
            raise RuntimeError("join before configure")
        group = next(g for g in self.scenario.groups if g.name == cmd["group"])
        spec = ParticipantSpec(
            name=cmd["participant"], group=group.name, index=int(cmd["index"]), room=self.scenario.room,
            publish=group.publish, subscribe=group.subscribe, probe_fraction=group.probe_fraction,
            join_timeout_s=self.scenario.join_timeout_s,
            video=self.scenario.video, audio=self.scenario.audio, host=self.host,
            publishers_per_encoder=group.publishers_per_encoder, pacing=group.pacing,
            screen=self.scenario.screen, screen_share=group.screen_share,
            speaker_seats=self.scenario.participants,
            simulcast=group.simulcast, prefer_layer=group.prefer_layer, adapt=group.adapt,
            reconnect_after_s=self.scenario.reconnect_after_s, reconnect_within_s=self.scenario.reconnect_within_s,
        )
        try:
            participant = await self.engines.create(spec, group.engine)
        except HarnessError as exc:  # e.g. no Chromium: this participant fails, in one line, like a refusal
            row = {"ts": time.time(), "participant": spec.name, "group": spec.group, "host": spec.host,
                   "attempt": 1, "ok": False, "error": str(exc), "engine": group.engine,
                   "stream_id": spec.video_stream_id}
            self.outbox.emit("joins", row)
            return row
        early = self._early_designations.pop(spec.name, set())
        if isinstance(participant, Participant):  # browsers decode every stream they receive anyway
            for sender in [*(cmd.get("probes") or ()), *sorted(early)]:
                participant.designate(str(sender))
        self.participants[spec.name] = participant
        row = await participant.join()
        if not row["ok"]:
            self.participants.pop(spec.name, None)
        return row

    async def stop_all(self) -> None:
        """Every participant leaves (bounded), then the system's client side closes."""
        parts = list(self.participants.values())
        self.participants.clear()
        if parts:
            await asyncio.wait([asyncio.ensure_future(p.leave()) for p in parts], timeout=15)
        if self.system is not None:
            await self.system.close()
        if self.engines is not None:
            await self.engines.close()

    def _stream_owner(self, stream_id: int) -> str | None:
        """The participant of this host whose video carries ``stream_id`` (how browsers name senders)."""
        for name, p in self.participants.items():
            if p.spec.video_stream_id == stream_id:
                return name
        return None

    async def probe_loop(self) -> None:
        """One ``probes`` row a second about this process: CPU, RSS, event-loop lag and generator health."""
        proc = psutil.Process()
        proc.cpu_percent(None)
        sockets = udpstats.SocketDrops()
        sockets.delta()
        last_rcvbuf = udpstats.rcvbuf_errors()
        last = (0, 0)
        last_dropped = 0
        while True:
            await asyncio.sleep(1.0)
            lag, self._max_lag_s = self._max_lag_s, 0.0
            # The pool's totals keep the counts of streams that ended, so the deltas never go negative; the
            # browsers' page cameras are kept the same way (last count of each, also after it left).
            for name, p in self.participants.items():
                if isinstance(p, BrowserParticipant):
                    self._browser_frames[name] = p.source_counters()
            produced, skipped = self.pool.counters()
            total = (produced + sum(c[0] for c in self._browser_frames.values()),
                     skipped + sum(c[1] for c in self._browser_frames.values()))
            rcvbuf = udpstats.rcvbuf_errors()
            dropped = self.outbox.dropped
            with proc.oneshot():
                self.outbox.emit("probes", {
                    "ts": time.time(), "host": self.host, "role": "media_host", "pid": proc.pid,
                    "name": "media_host", "cpu_pct": proc.cpu_percent(None) + self._clock_cpu_pct(),
                    "rss_mb": proc.memory_info().rss / 2**20, "loop_lag_ms": lag * 1000,
                    "frames_produced": total[0] - last[0], "frames_skipped": total[1] - last[1],
                    "udp_drops": sockets.delta(),
                    "udp_rcvbuf_errors": rcvbuf - last_rcvbuf if rcvbuf is not None and last_rcvbuf is not None
                    else None,
                    "samples_dropped": dropped - last_dropped,
                    # asyncio tasks alive: a leak of them (a participant's loop never cancelled) shows here
                    # long before it shows in memory (benchmarks/churn.py watches it).
                    "tasks": len(asyncio.all_tasks()),
                    "gc_pause_ms": self.collector.take_pause_ms(),
                })
            last, last_rcvbuf, last_dropped = total, rcvbuf, dropped
            if self.engines is not None:
                # Walking browsers' process trees reads /proc for every process: not on the event loop.
                rows = await asyncio.to_thread(self.engines.probe_rows, self.host, list(self.participants.values()))
                for row in rows:
                    self.outbox.emit("probes", row)

    def _clock_cpu_pct(self) -> float:
        """CPU of this host's sending clock (``harness.media.send_clock``), a child that does part of its work."""
        clock = running_clock()
        if clock is None:
            return 0.0
        try:
            if self._clock_proc is None or self._clock_proc.pid != clock.pid:
                self._clock_proc = psutil.Process(clock.pid)
                self._clock_proc.cpu_percent(None)  # the first reading only starts the interval
            return float(self._clock_proc.cpu_percent(None))
        except psutil.Error:
            return 0.0

    async def lag_loop(self) -> None:
        """Measures how late the loop wakes up: the media host's own saturation signal."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_TICK_S)
            self._max_lag_s = max(self._max_lag_s, loop.time() - before - LAG_TICK_S)

    async def flush_loop(self) -> None:
        """Ship batched samples."""
        while True:
            await asyncio.sleep(BATCH_INTERVAL_S)
            self.outbox.flush()

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Read commands until ``stop`` or end of input."""
        background = [asyncio.ensure_future(c) for c in (self.probe_loop(), self.lag_loop(), self.flush_loop())]
        self.collector.start()
        pending: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                line_task = asyncio.ensure_future(reader.readline())
                stop_task = asyncio.ensure_future(self._stopping.wait())
                await asyncio.wait({line_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                stop_task.cancel()
                if not line_task.done():
                    line_task.cancel()
                    break
                line = line_task.result()
                if not line:
                    log.info("input closed: stopping")
                    break
                try:
                    cmd = json.loads(line)
                except json.JSONDecodeError:
                    log.error("ignoring a line that is not JSON: %r", line[:200])
                    continue
                # Commands run concurrently: one slow join must not hold up the others.
                task = asyncio.ensure_future(self._run_command(cmd))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            await self.stop_all()
            for task in background:
                task.cancel()
            self.collector.stop()
            self.outbox.flush()
            for task in list(pending):
                task.cancel()

    async def _run_command(self, cmd: dict[str, Any]) -> None:
        try:
            result = await self.handle(cmd)
            self.outbox.send({"type": "reply", "id": cmd.get("id"), "ok": True, "result": result})
        except Exception as exc:
            log.exception("command %s failed", cmd.get("op"))
            self.outbox.send({"type": "reply", "id": cmd.get("id"), "ok": False,
                              "error": f"{type(exc).__name__}: {exc}"})


async def _main() -> None:
    # Keep the real stdout for the protocol; route stray prints (libraries, warnings) to stderr.
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await MediaHost(_Outbox(protocol_out)).serve(reader)


def main() -> None:
    """Entry point of ``python -m harness.host.media_host``."""
    logging.basicConfig(level=os.environ.get("CONFBENCH_LOG", "WARNING"), stream=sys.stderr,
                        format="media_host %(levelname)s %(name)s: %(message)s")
    asyncio.run(_main())


if __name__ == "__main__":
    main()
