"""One synthetic participant: joins through a system adapter, sends stamped media, measures what it receives.

Everything it measures leaves as rows (``docs/results.md``) through a :class:`SampleSink`; the participant
keeps no results of its own, so a participant that dies loses nothing already emitted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError
from aiortc.stats import (
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
)
from av import VideoFrame

from harness.analysis.emodel import audio_mos
from harness.errors import SystemError_
from harness.host.counters import SsrcState, VideoCounters
from harness.host.reconnect import LOST_EVENTS, Reconnecting
from harness.host.screen import SCREEN_SUFFIX, ScreenListener, ScreenMedia, source_of
from harness.media.audio import PulseDetector
from harness.media.departures import departures_of
from harness.media.pool import EncoderPool, Lease
from harness.media.psnr import frame_psnr
from harness.media.simulcast import layer_of
from harness.media.speakers import SpeakerSchedule, announce_turns
from harness.media.tap import count_nacked, count_received, inbound_counts
from harness.media.video import read_frame
from harness.rtc import jitter, lean_receiver, netio, ntpclock, remb, rtcparrival, sdes
from harness.rtc.collect import session_ended
from harness.scenario.scenario import AudioSettings, ScreenSettings, VideoSettings
from harness.systems.base import Session, SessionContext, System

log = logging.getLogger(__name__)

CLOCK_RATES = {"audio": 48000, "video": 90000}
ICE_UP = ("connected", "completed")
AUDIO_SAMPLE_RATE = 48000
PSNR_INTERVAL_S = 1.0
"""One received frame a second per decoded video stream is compared with what was sent."""
RESUMED_GAP_MS = 1000.0
"""A video stream whose frames stop for longer than this records a ``media_resumed`` event when they come
back: what outage recovery is measured from (``harness.analysis.outages``)."""


class SampleSink(Protocol):
    """Where a participant's rows go (the media host batches them to its Locust process)."""

    def emit(self, table: str, row: dict[str, Any]) -> None:
        """Hand over one row of ``table``."""
        ...


def alnum_name(name: str) -> str:
    """``name`` with only its ASCII letters and digits: how web apps that refuse anything else show a
    participant (the ``{participant_alnum}`` of a web platform's join steps, ``harness.browser.platform``)."""
    return "".join(ch for ch in name if ch.isascii() and ch.isalnum())


@dataclass(frozen=True, slots=True)
class ParticipantSpec:
    """Who a participant is and what it does."""

    name: str
    group: str
    index: int
    room: str
    publish: tuple[str, ...] = ("audio", "video")
    subscribe: bool = True
    probe_fraction: float = 1.0
    join_timeout_s: float = 20.0
    video: VideoSettings = field(default_factory=VideoSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    host: str = "localhost"
    publishers_per_encoder: int = 1
    """How many publishers of the group (on one media host) send the same encoded stream
    (``harness.media.pool``)."""
    screen: ScreenSettings = field(default_factory=ScreenSettings)
    """The scenario's screen share: what this participant sends if ``screen_share``, and what it expects
    to receive from others' (to rebuild sent frames for PSNR)."""
    screen_share: bool = False
    speaker_seats: int = 1
    """Planned participants of the scenario: the seats of the round-robin speaker schedule
    (``harness.media.speakers``), used when ``audio.speakers`` asks for one."""
    simulcast: tuple[str, ...] = ()
    """Simulcast layers the video carries (``harness.media.simulcast``); empty: one encoding."""
    prefer_layer: str | None = None
    """The layer this participant asks the system for when it receives simulcast (None: the system's choice)."""
    adapt: bool = True
    """Whether its simulcast layers follow the SFU's loss reports (``harness.media.adapt``)."""
    reconnect_after_s: float = 8.0
    """Silence (no receiver report on what it sends) after which a publishing participant starts a new session."""
    reconnect_within_s: float = 30.0
    """How long a reconnection keeps trying before the participant gives up (``reconnect_failed``)."""
    pacing: bool = True
    """Whether the video is paced as a browser's (``harness.media.pacer``)."""

    def __post_init__(self) -> None:
        if not (0 <= self.index < 32768):
            raise ValueError("index must be in 0..32767 (two 16-bit stream ids per participant)")

    @property
    def video_stream_id(self) -> int:
        """Stream id stamped into this participant's video frames."""
        return 2 * self.index

    @property
    def audio_stream_id(self) -> int:
        """Stream id of this participant's audio."""
        return 2 * self.index + 1

    @property
    def screen_stream_id(self) -> int:
        """Stream id stamped into this participant's screen share: the audio's (audio carries no stamps)."""
        return 2 * self.index + 1

    @property
    def screen_name(self) -> str:
        """The name its screen share publishes under."""
        return self.name + SCREEN_SUFFIX

    def speakers(self) -> SpeakerSchedule | None:
        """This participant's speaking turns, when the scenario has a speaker pattern and it sends audio."""
        if self.audio.speakers != "round-robin" or "audio" not in self.publish:
            return None
        return SpeakerSchedule.for_index(self.audio.speaker_switch_s, self.speaker_seats, self.index)


class Participant(Reconnecting):
    """A synthetic participant in one room of one system."""

    def __init__(self, spec: ParticipantSpec, system: System, sink: SampleSink,
                 clock: Callable[[], float] = time.time, stats_interval_s: float = 1.0,
                 pool: EncoderPool | None = None) -> None:
        netio.install()  # without it the loop falls behind the packet rate (see harness/rtc/netio.py)
        jitter.install()  # frames complete on the marker bit, not one frame later (see harness/rtc/jitter.py)
        ntpclock.install()  # aiortc's per-packet clock without datetime arithmetic (see harness/rtc/ntpclock.py)
        remb.install()  # no bandwidth estimate nobody reads (see harness/rtc/remb.py)
        rtcparrival.install()  # RTT from the kernel's arrival time of RTCP, not the loop's (harness/rtc/rtcparrival.py)
        sdes.install()  # pion's sender reports reach their receivers (see harness/rtc/sdes.py)
        self.spec = spec
        self._system = system
        self._sink = sink
        self._clock = clock
        self._stats_interval_s = stats_interval_s
        # A media host's publishers may share encoders; a participant on its own has a pool of its own.
        self._pool = pool if pool is not None else EncoderPool()
        self._lease: Lease | None = None
        self._screen_lease: Lease | None = None
        self._screen_session: Session | None = None
        self.screen_pcs: set[int] = set()
        """``id()`` of the screen share's peer connections (``harness.host.screen``)."""
        self._designated: set[str] = set()  # designated senders, by alnum_name (see designate)
        self._session: Session | None = None
        self._pcs: list[tuple[str, RTCPeerConnection]] = []
        self._counters: dict[int, VideoCounters] = {}
        self._leans: dict[int, lean_receiver.LeanReceiver] = {}  # id(receiver) -> its lean path (undecoded)
        self._audio_latency: dict[int, float] = {}  # id(track) → latest pulse latency (ms), for the MOS
        self._track_remote: dict[int, str] = {}  # id(track) -> publishing participant, from on_track
        self._ssrc: dict[tuple[int, str, int], SsrcState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._first_frame = asyncio.Event()
        self._first_frame_at: float | None = None
        self._last_poll = 0.0
        self._join_row: dict[str, Any] | None = None
        self._ctx: SessionContext | None = None
        self._reported_at: float | None = None  # the last receiver report on what this participant sends
        self._reports: dict[int, Any] = {}  # id(sender) -> timestamp of the last receiver report seen
        self._reconnecting = False
        self._reconnects = 0

    # -- what the adapter sees ---------------------------------------------------------------------------
    def tracks(self) -> list[MediaStreamTrack]:
        """Fresh fan-out tracks of this participant's sources (MediaFactory)."""
        return list(self._lease.tracks()) if self._lease is not None else []

    def on_connection(self, pc: RTCPeerConnection, remote: str) -> None:
        """Watch a new peer connection (SessionListener)."""
        self._pcs.append((remote, pc))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "failed":
                self.on_event("connection_failed", remote)
                if any(known is pc for _, known in self._pcs):  # not one of a session already replaced
                    self._lost(f"connection towards {remote} failed")
            elif pc.connectionState == "closed":
                self._forget(pc)

    def _forget(self, pc: RTCPeerConnection) -> None:
        """Drop a closed connection and what was kept per track and SSRC of it: a participant that stays while
        others come and go (a subscription per publisher) would otherwise keep every closed connection, its
        decoders and buffers with it (benchmarks/churn.py: the media host's memory grew without end)."""
        self._pcs = [(r, known) for r, known in self._pcs if known is not pc]
        session_ended()  # the closed connection is a reference cycle: collect it soon (harness.rtc.collect)
        for transceiver in pc.getTransceivers():
            receiver, track = transceiver.receiver, transceiver.receiver.track
            self._leans.pop(id(receiver), None)
            self._reports.pop(id(transceiver.sender), None)
            if track is not None:
                for kept in (self._counters, self._track_remote, self._audio_latency):
                    kept.pop(id(track), None)
        for key in [k for k in self._ssrc if k[0] == id(pc)]:
            del self._ssrc[key]

    def on_track(self, track: MediaStreamTrack, remote: str, receiver: RTCRtpReceiver | None = None) -> None:
        """Start measuring a remote track (SessionListener): decoded if it is a probe, else from its frames."""
        if remote == self.spec.screen_name:
            return  # our own screen share, where an adapter could not decline it: not measured
        if receiver is not None:
            count_received(receiver)
        # One connection may carry several publishers' streams (multistream SFUs): label rows by track.
        self._track_remote[id(track)] = remote
        if receiver is not None and not self.is_probe(remote):
            self._measure_undecoded(track, receiver)
        elif track.kind == "video":
            self._spawn(self._read_video(track, remote))
        elif track.kind == "audio":
            self._spawn(self._read_audio(track, remote))

    def designate(self, sender: str) -> None:
        """Decode what ``sender`` sends, whatever the draw: this participant is its designated probe
        (``harness.loadgen.roster``: every sender has one). Streams already being received stay as they are."""
        # Web apps may show a participant under a display name of letters and digits only (Janus's demo page:
        # "browser-0" becomes "browser0"), and that is the name a receiver then knows the sender by: senders
        # are kept, and remotes compared, by that form.
        self._designated.add(alnum_name(sender))

    def is_probe(self, remote: str) -> bool:
        """Whether this participant decodes what ``remote`` sends: it is ``remote``'s designated probe, or
        the pair's draw (stable for a pair, like a hash) fell under ``probe_fraction``."""
        fraction = self.spec.probe_fraction
        if fraction >= 1.0 or alnum_name(remote) in self._designated:
            return True
        draw = zlib.crc32(f"{self.spec.name}>{remote}".encode()) / 2**32
        return draw < fraction

    def _measure_undecoded(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        # The lean path (harness/rtc/lean_receiver.py): the same counters at a fraction of aiortc's cost a packet.
        if track.kind != "video":
            self._leans[id(receiver)] = lean_receiver.attach(receiver)
            return
        counters = self._counters.setdefault(id(track), VideoCounters())
        counters.taken_at = self._clock()

        def on_frame() -> None:
            now = self._clock()
            self._resumed(track, counters.arrived(now))
            if self._first_frame_at is None:
                self._first_frame_at = now
                self._first_frame.set()

        self._leans[id(receiver)] = lean_receiver.attach(receiver, on_frame)

    def on_event(self, kind: str, detail: Any) -> None:
        """Record an adapter event (SessionListener)."""
        self._sink.emit("events", {"ts": self._clock(), "kind": kind, "participant": self.spec.name,
                                   "detail": detail})
        if kind in LOST_EVENTS:  # the adapter says the session is gone: no need to wait for the silence
            self._lost(f"{kind} {detail}")

    def _resumed(self, track: MediaStreamTrack, gap_ms: float | None) -> None:
        """Events that outage recovery is measured from: a stream's frames back after a gap, or a stream's
        first frame on a session that replaced a lost one."""
        if gap_ms is not None and gap_ms > RESUMED_GAP_MS:
            self.on_event("media_resumed", {"sender": self._track_remote.get(id(track)), "gap_ms": round(gap_ms, 1)})
        elif gap_ms is None and self._reconnects:  # no gap: the track's first frame
            self.on_event("media_started", {"sender": self._track_remote.get(id(track))})

    # -- life cycle --------------------------------------------------------------------------------------
    async def join(self) -> dict[str, Any]:
        """Join and wait until in the call; returns (and emits) the ``joins`` row. Never raises."""
        spec = self.spec
        turns = spec.speakers()
        if spec.publish:
            self._lease = self._pool.acquire(spec.group, spec.publishers_per_encoder, spec.video_stream_id,
                                             spec.publish, spec.video, spec.audio,
                                             speaking=turns.speaking if turns is not None else None,
                                             pacing=spec.pacing, simulcast=spec.simulcast, adapt=spec.adapt)
        own = (spec.screen_name,) if spec.screen_share else ()
        ctx = self._ctx = SessionContext(room=spec.room, participant=spec.name, media=self, listener=self,
                                         subscribe=spec.subscribe, timeout_s=spec.join_timeout_s,
                                         video_codec=spec.video.codec, publish=spec.publish, own=own,
                                         speakers=spec.audio.speakers != "none",
                                         simulcast=spec.simulcast, prefer_layer=spec.prefer_layer)
        start = self._clock()
        row: dict[str, Any] = {"ts": start, "participant": spec.name, "group": spec.group, "host": spec.host,
                               "attempt": 1, "ok": False}
        try:
            if spec.simulcast and not self._system.simulcast:
                raise SystemError_(f"simulcast is not supported yet on {self._system.name}")
            self._session = self._system.session(ctx)
            await asyncio.wait_for(self._session.join(), timeout=spec.join_timeout_s)
            if spec.screen_share:
                await self._share_screen(spec.join_timeout_s - (self._clock() - start))
            row["signalling_ms"] = (self._clock() - start) * 1000
            remaining = spec.join_timeout_s - (self._clock() - start)
            await self._wait_ice(max(remaining, 0.1))
            row["ice_ms"] = row["join_ms"] = (self._clock() - start) * 1000
            row["ok"] = True
        except TimeoutError:
            row["error"] = f"join did not finish within {spec.join_timeout_s:g} s"
        except SystemError_ as exc:
            row["error"] = str(exc)
        except Exception as exc:  # an adapter bug must cost one participant, not the media host
            log.exception("join of %s failed", spec.name)
            row["error"] = f"{type(exc).__name__}: {exc}"
        if row["ok"]:
            self._join_row = row
            self._spawn(self._poll_stats())
            self._spawn(self._first_frame_timer(start))
            if turns is not None:
                self._spawn(announce_turns(turns, self._clock, self.on_event))
        else:
            self._sink.emit("joins", row)
            await self.leave()
        return row

    async def _share_screen(self, timeout: float) -> None:
        """Publish the screen share as a participant of its own (see :data:`SCREEN_SUFFIX`)."""
        spec = self.spec
        self._screen_lease = self._pool.acquire_screen(spec.group, spec.publishers_per_encoder,
                                                       spec.screen_stream_id, spec.screen, spec.video.codec)
        ctx = SessionContext(room=spec.room, participant=spec.screen_name, media=ScreenMedia(self._screen_lease),
                             listener=ScreenListener(self), subscribe=False, timeout_s=spec.join_timeout_s,
                             video_codec=spec.video.codec, publish=("video",), own=(spec.name,))
        self._screen_session = self._system.session(ctx)
        await asyncio.wait_for(self._screen_session.join(), timeout=max(timeout, 0.1))

    async def _first_frame_timer(self, start: float) -> None:
        # The joins row waits for the first frame (or its timeout) so that it is written once, complete.
        if any(pc.getReceivers() for _, pc in self._pcs):
            try:
                await asyncio.wait_for(self._first_frame.wait(), timeout=self.spec.join_timeout_s)
            except TimeoutError:
                pass
        self._flush_join_row()

    def _flush_join_row(self) -> None:
        row, self._join_row = self._join_row, None
        if row is None:
            return
        if self._first_frame_at is not None:
            row["first_frame_ms"] = (self._first_frame_at - row["ts"]) * 1000
        self._sink.emit("joins", row)

    async def _wait_ice(self, timeout: float) -> None:
        pcs = [pc for _, pc in self._pcs]
        if not pcs:
            return
        done = asyncio.Event()

        def check() -> None:
            if all(pc.iceConnectionState in ICE_UP for pc in pcs):
                done.set()
            elif any(pc.iceConnectionState == "failed" for pc in pcs):
                done.set()

        for pc in pcs:
            pc.on("iceconnectionstatechange", check)
        check()
        try:
            await asyncio.wait_for(done.wait(), timeout=timeout)
        except TimeoutError:
            # Signalling finished, media never could: say towards whom (e.g. a server whose candidates are
            # unreachable), not just that the join timed out.
            waiting = [r for r, pc in self._pcs if pc.iceConnectionState not in ICE_UP]
            raise SystemError_(f"ICE towards {', '.join(waiting)} did not connect within "
                               f"{self.spec.join_timeout_s:g} s") from None
        finally:
            # The check holds every connection of the join: left on a connection that stays, it would keep the
            # others (closed when their publishers leave) alive for the whole call.
            for pc in pcs:
                pc.remove_listener("iceconnectionstatechange", check)
        failed = [r for r, pc in self._pcs if pc.iceConnectionState == "failed"]
        if failed:
            raise SystemError_(f"ICE failed towards {', '.join(failed)}")

    async def leave(self) -> None:
        """Leave the room, stop the sources and every measuring task; bounded in time, never raises."""
        self._flush_join_row()
        session, self._session = self._session, None
        self._ctx = None  # no reconnection from now on
        await self._leave_session(session)
        screen, self._screen_session = self._screen_session, None
        await self._leave_session(screen)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for lease in (self._lease, self._screen_lease):
            if lease is not None:
                await self._pool.release(lease)
        self._lease = self._screen_lease = None

    # -- measuring ---------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("task of %s failed", self.spec.name, exc_info=t.exception())

        task.add_done_callback(finished)

    async def _received(self, track: MediaStreamTrack) -> AsyncIterator[tuple[Any, float]]:
        """Each decoded frame of ``track`` with the time it was handed over, until the track ends."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            yield frame, self._clock()

    async def _read_video(self, track: MediaStreamTrack, remote: str) -> None:
        counters = self._counters.setdefault(id(track), VideoCounters())
        counters.taken_at = self._clock()
        me = self.spec.name
        source = source_of(remote)
        async for frame, now in self._received(track):
            assert isinstance(frame, VideoFrame)  # aiortc's video receiver yields decoded frames
            stamp = read_frame(frame)
            if stamp is None:
                counters.unreadable += 1
                continue
            gap_ms = counters.arrived(now)
            self._resumed(track, gap_ms)
            capture = stamp.capture_time(now)
            counters.size = (frame.width, frame.height)
            if now - counters.psnr_at >= PSNR_INTERVAL_S:
                # Sampled: rebuilding the sent frame and comparing costs about 1 ms (harness/media/psnr.py).
                counters.psnr_at = now
                sent = self.spec.screen if source == "screen" else self.spec.video
                counters.psnr_db = frame_psnr(frame, stamp, sent.width, sent.height, screen=source == "screen")
            if self._first_frame_at is None:
                self._first_frame_at = now
                self._first_frame.set()
            self._sink.emit("frames", {
                "ts": now, "receiver": me, "sender": remote, "stream_id": stamp.stream_id,
                "frame_no": stamp.frame_no, "capture_ts": capture, "latency_ms": (now - capture) * 1000,
                "gap_ms": gap_ms, "width": frame.width, "height": frame.height, "source": source,
            })

    async def _read_audio(self, track: MediaStreamTrack, remote: str) -> None:
        detector = PulseDetector(AUDIO_SAMPLE_RATE, self.spec.audio.pulse_period_s)
        me = self.spec.name
        async for frame, now in self._received(track):
            for latency_ms in detector.feed(frame, now):
                self._audio_latency[id(track)] = latency_ms
                self._sink.emit("audio", {"ts": now, "receiver": me, "sender": remote,
                                          "latency_ms": latency_ms})

    async def _poll_stats(self) -> None:
        # Participants that joined together would poll together, once a second, for all their connections at
        # once: a burst that a busy media host's loop feels as lag. A random phase spreads them out.
        await asyncio.sleep(random.uniform(0, self._stats_interval_s))
        self._last_poll = self._clock()
        while True:
            await asyncio.sleep(self._stats_interval_s)
            now = self._clock()
            interval = max(now - self._last_poll, 1e-3)
            self._last_poll = now
            for remote, pc in list(self._pcs):
                if pc.connectionState == "closed":
                    continue
                try:
                    await asyncio.wait_for(self._poll_pc(remote, pc, now, interval), timeout=5)
                except Exception:  # one bad poll must not end the measurement of the others
                    log.warning("stats poll of %s towards %s failed", self.spec.name, remote, exc_info=True)
            if self._silent(now):
                self._lost(f"no receiver report for {now - (self._reported_at or now):.1f} s")

    async def _poll_pc(self, remote: str, pc: RTCPeerConnection, now: float, interval: float) -> None:
        for transceiver in pc.getTransceivers():
            if transceiver.currentDirection in ("recvonly", "sendrecv"):
                await self._inbound_rows(transceiver, remote, pc, now)
            if transceiver.currentDirection in ("sendonly", "sendrecv"):
                await self._outbound_rows(transceiver, remote, pc, now, interval)

    async def _inbound_rows(self, transceiver: Any, remote: str, pc: RTCPeerConnection, now: float) -> None:
        """One ``streams`` row per received SSRC: RTP counts, loss, jitter, received bitrate, frames, quality."""
        kind = transceiver.kind
        clock = CLOCK_RATES.get(kind, 90000)
        receiver = transceiver.receiver
        received = count_received(receiver).by_ssrc  # from now on, if the adapter did not pass the receiver
        # Not getStats: it reports one SSRC per receiver, which hides the media stream behind its RTX stream.
        for s in inbound_counts(receiver):
            st = self._ssrc.setdefault((id(pc), "in", s.ssrc), SsrcState())
            packets = max(s.packets_received - st.packets, 0)
            lost = max(s.packets_lost - st.lost, 0)
            st.packets, st.lost = s.packets_received, max(s.packets_lost, st.lost)
            # What arrived, per this SSRC's own interval (a sender's own report would say what it sent, which
            # a rate-limited link does not deliver). Retransmission SSRCs count under the stream they repair.
            bitrate = None
            if s.ssrc in received:
                polled = self._clock()
                if st.polled_at is not None and polled - st.polled_at > 0.05:
                    bitrate = (received[s.ssrc] - st.received) * 8 / (polled - st.polled_at) / 1000
                st.received, st.polled_at = received[s.ssrc], polled
            peer = self._track_remote.get(id(receiver.track), remote)
            row: dict[str, Any] = {
                "ts": now, "participant": self.spec.name, "direction": "in", "kind": kind,
                "peer": peer, "source": source_of(peer) if kind == "video" else None,
                "ssrc": s.ssrc, "packets": packets, "packets_lost": lost,
                "loss_pct": 100 * lost / (packets + lost) if packets + lost else None,
                "jitter_ms": s.jitter / clock * 1000, "bitrate_kbps": bitrate,
                "freezes": 0, "freeze_ms": 0.0, "frames_unreadable": 0,
            }
            lean = self._leans.get(id(receiver))
            if lean is not None and kind == "video":
                # Loss after retransmission next to packets_lost (before it): only the lean path knows it.
                gave_up = lean.unrepaired().get(s.ssrc, st.unrepaired)
                row["packets_unrepaired"], st.unrepaired = max(gave_up - st.unrepaired, 0), gave_up
            counters = self._counters.get(id(receiver.track)) if receiver.track else None
            if kind == "video" and counters is not None and s.ssrc in received:
                row.update(counters.take(self._clock()))
                if row.get("width"):
                    row["layer"] = layer_of(row["width"], self.spec.video.width)
            latency = self._audio_latency.get(id(receiver.track)) if receiver.track else None
            if kind == "audio" and latency is not None and row["loss_pct"] is not None:
                row["mos"] = audio_mos(latency, row["jitter_ms"], row["loss_pct"])
            self._sink.emit("streams", row)

    async def _outbound_rows(self, transceiver: Any, remote: str, pc: RTCPeerConnection, now: float,
                             interval: float) -> None:
        """One ``streams`` row per sent SSRC: RTP counts, bitrate, and the receiver's report (loss, RTT)."""
        kind = transceiver.kind
        clock = CLOCK_RATES.get(kind, 90000)
        report = await transceiver.sender.getStats()
        # aiortc files the receiver's report under the reporter's SSRC, not ours; a sender's own
        # report holds at most one, and it is about this sender.
        ri = next((s for s in report.values() if isinstance(s, RTCRemoteInboundRtpStreamStats)), None)
        if ri is not None and self._reports.get(id(transceiver.sender)) != ri.timestamp:
            self._reports[id(transceiver.sender)] = ri.timestamp
            self._reported_at = now
        nacked = count_nacked(transceiver.sender).by_ssrc  # from now on: the first poll comes within a second
        departures = departures_of(transceiver.sender)
        # One sender, one SSRC: its departures are those of the one media stream its report describes.
        bursts = departures.take() if departures is not None else {}
        layers = {layer.ssrc: layer for layer in getattr(transceiver.sender.track, "layer_senders", ())}
        for s in report.values():
            if not isinstance(s, RTCOutboundRtpStreamStats):
                continue
            st = self._ssrc.setdefault((id(pc), "out", s.ssrc), SsrcState())
            packets = max(s.packetsSent - st.packets, 0)
            sent = max(s.bytesSent - st.bytes_sent, 0)
            st.packets, st.bytes_sent = s.packetsSent, s.bytesSent
            asked = nacked.get(s.ssrc, 0)
            packets_nacked, st.nacked = asked - st.nacked, asked
            # Its own interval: this connection's poll may have come late on a busy loop.
            polled = self._clock()
            elapsed = polled - st.polled_at if st.polled_at is not None else interval
            st.polled_at = polled
            rtt = ri.roundTripTime if ri is not None else None
            self._sink.emit("streams", {
                "ts": now, "participant": self.spec.name, "peer": remote, "direction": "out", "kind": kind,
                "source": ("screen" if id(pc) in self.screen_pcs else "camera") if kind == "video" else None,
                "ssrc": s.ssrc, "packets": packets, "packets_lost": 0,
                # aiortc reports fractionLost as RFC 3550's 8-bit fraction (0..255).
                "loss_pct": 100 * ri.fractionLost / 256 if ri is not None else None,
                "jitter_ms": ri.jitter / clock * 1000 if ri is not None else None,
                "rtt_ms": rtt * 1000 if rtt is not None else None,
                "bitrate_kbps": sent * 8 / max(elapsed, 1e-3) / 1000,
                "freezes": 0, "freeze_ms": 0.0, "frames_unreadable": 0, "packets_nacked": packets_nacked,
                **bursts,
                **({"layer": layers[s.ssrc].rid} if s.ssrc in layers else {}),
            })
        for layer in layers.values():
            if layer.ssrc != transceiver.sender._ssrc:
                self._layer_row(layer, remote, pc, now, interval)

    def _layer_row(self, layer: Any, remote: str, pc: RTCPeerConnection, now: float, interval: float) -> None:
        """The ``out`` row of a lower simulcast layer (``harness.media.packetize.LayerSender``): aiortc's stats
        know only the sender's own SSRC, the top layer's."""
        st = self._ssrc.setdefault((id(pc), "out", layer.ssrc), SsrcState())
        packets, sent = layer.packets - st.packets, layer.octets - st.bytes_sent
        st.packets, st.bytes_sent = layer.packets, layer.octets
        polled = self._clock()
        elapsed = polled - st.polled_at if st.polled_at is not None else interval
        st.polled_at = polled
        self._sink.emit("streams", {
            "ts": now, "participant": self.spec.name, "peer": remote, "direction": "out", "kind": "video",
            "ssrc": layer.ssrc, "packets": packets, "packets_lost": 0,
            "bitrate_kbps": sent * 8 / max(elapsed, 1e-3) / 1000, "layer": layer.rid,
            "freezes": 0, "freeze_ms": 0.0, "frames_unreadable": 0,
        })
