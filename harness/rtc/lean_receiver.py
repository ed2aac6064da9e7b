"""A lean receive path for streams that are measured but not decoded: SRTP straight from the ICE connection.

Why. aiortc's receive path costs 40-115 µs a packet (a queue and coroutine layers from the ICE connection to
the receiver, an ``RtpPacket`` object per packet, routing, NACK generation, depayloading, a jitter buffer of
packet objects): hundreds of undecoded streams fill a media host's core, and the generator measures itself.

What. :func:`attach` gives the packets of a receiver whose stream is not decoded a shorter way: the ICE
connection's sockets hand RTP (first byte 128-191, RFC 7983) straight to a hook that looks at the SSRC; a lean
stream's packet is unprotected at once with the DTLS transport's own libsrtp session (pylibsrtp) and read in
place (sequence number, timestamp, marker, payload offset, the VP8/H.264 descriptor's frame-start and key-frame
bits). DTLS, STUN, RTCP and other streams (decoded probes) go on to aiortc unchanged. It keeps what the
``streams`` table had through aiortc (``harness.media.tap``):

* RFC 3550 counters per SSRC (:class:`LeanStatistics`, computed as aiortc's ``StreamStatistics``), filed in the
  receiver's own table of remote streams, where ``inbound_counts``, ``getStats`` and aiortc's receiver reports
  (with LSR/DLSR from the sender reports aiortc still handles) read them;
* payload bytes per media SSRC, retransmissions under the stream they repair (``count_received``'s counter);
* complete video frames (:class:`LeanFrames`, the rules of ``harness.rtc.jitter.VideoPlayoutBuffer``: in order,
  a frame with a gap waits ``wait_s`` then is dropped, undecodable frames are discarded until a key frame), a
  callback each, for fps and freezes; and packets given up on: loss after retransmission.

It answers as a receiver: NACKs for recent gaps (as ``harness.rtc.jitter.NackRetrier``, at most
:data:`MAX_NACK_LIST` a request), PLI on a dropped frame or a stall (:data:`STALL_S`), receiver reports from
aiortc's RTCP loop. No REMB/TWCC (none of the systems needs it to keep sending).

Bends against aiortc 1.x, aioice and pylibsrtp (private names read here and nowhere else):
``RTCDtlsTransport._rx_srtp``, whose ``_srtp``, ``_cdata`` and ``_buffer`` are handed to libsrtp's
``srtp_unprotect`` directly (pylibsrtp's ``unprotect`` copies the packet twice and allocates per call);
aioice's ``Connection.data_received`` and its protocols' ``datagram_received`` (replaced on those instances);
``RTCRtpReceiver.__codecs``, ``__rtx_ssrc`` (read), ``__remote_streams`` (lean counters put in),
``_send_rtcp_nack`` / ``_send_rtcp_pli`` (called). Lean packets skip the DTLS transport's own packet counters
and the receiver's decoder thread, which idles until the receiver stops.

Remove when aiortc grows a receive path for undecoded streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc import RTCRtpReceiver
from aiortc.codecs import is_rtx

from harness.media.tap import count_received
from harness.rtc.jitter import FRAME_KEY, FRAME_STARTS, frame_flags

log = logging.getLogger(__name__)
_unprotect = pylibsrtp.lib.srtp_unprotect

MIN_WAIT_S = 0.2
REPAIR_WAITS = 3.0
PLI_INTERVAL_S = 0.3
NACK_RETRIES = 10
MIN_NACK_INTERVAL_S = 0.02
INITIAL_REPAIR_S = 0.05
MAX_MISORDER = 100
CAPACITY = 512
"""Sequence numbers a video stream keeps track of (a frame with a gap waits ``wait_s``, far fewer packets)."""
MAX_NACK_LIST = 64
"""At most this many packets are asked for in one NACK (the oldest wait for the next one)."""
STALL_S = 1.0
"""A stream that has brought packets but no complete frame for this long asks for a key frame."""
TICK_S = 0.1
"""How often stalls are checked, for all lean streams of the process at once."""

# Flags per sequence-number slot (a bytearray: no object per packet).
_PRESENT, _MARKER, _STARTS, _KEY = 1, 2, FRAME_STARTS, FRAME_KEY


def _gt(a: int, b: int) -> bool:
    """16-bit sequence number ``a`` is after ``b`` (RFC 1982)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class LeanStatistics:
    """RFC 3550 receiver counters of one SSRC, computed as aiortc's ``StreamStatistics`` computes them (same
    properties, read by its receiver reports and ``getStats``), fed with header fields instead of a packet."""

    __slots__ = ("base_seq", "max_seq", "cycles", "packets_received", "_clockrate", "_jitter_q4",
                 "_last_arrival", "_last_timestamp", "_expected_prior", "_received_prior")

    def __init__(self, clockrate: int) -> None:
        self.base_seq: int | None = None
        self.max_seq: int | None = None
        self.cycles = 0
        self.packets_received = 0
        self._clockrate = clockrate
        self._jitter_q4 = 0
        self._last_arrival = 0
        self._last_timestamp: int | None = None
        self._expected_prior = 0
        self._received_prior = 0

    def add(self, seq: Any, timestamp: int | None = None, now: float | None = None) -> None:
        """Count one packet arrived at ``now`` (wall clock, as aiortc); or an ``RtpPacket`` alone, as aiortc
        counts: packets aiortc queued before the lean path took their stream over reach it later."""
        if timestamp is None:
            seq, timestamp, now = seq.sequence_number, seq.timestamp, time.time()
        assert now is not None
        max_seq = self.max_seq
        self.packets_received += 1
        if self.base_seq is None:
            self.base_seq = seq
        if max_seq is None or (seq != max_seq and ((seq - max_seq) & 0xFFFF) < 0x8000):
            arrival = int(now * self._clockrate)
            if max_seq is not None and seq < max_seq:
                self.cycles += 1 << 16
            self.max_seq = seq
            if timestamp != self._last_timestamp and self.packets_received > 1:
                assert self._last_timestamp is not None
                diff = abs((arrival - self._last_arrival) - (timestamp - self._last_timestamp))
                self._jitter_q4 += diff - ((self._jitter_q4 + 8) >> 4)
            self._last_arrival = arrival
            self._last_timestamp = timestamp

    @property
    def fraction_lost(self) -> int:
        expected = self.packets_expected
        expected_interval, self._expected_prior = expected - self._expected_prior, expected
        received_interval = self.packets_received - self._received_prior
        self._received_prior = self.packets_received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            return 0
        return (lost_interval << 8) // expected_interval

    @property
    def jitter(self) -> int:
        return self._jitter_q4 >> 4

    @property
    def packets_expected(self) -> int:
        if self.max_seq is None or self.base_seq is None:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def packets_lost(self) -> int:
        # RFC 3550's 24-bit signed field, as aiortc clamps it.
        return max(-0x800000, min(self.packets_expected - self.packets_received, 0x7FFFFF))


class LeanFrames:
    """Frame completion, drops and NACKs of one video stream, on sequence numbers, marker bits and timestamps:
    the rules of ``harness.rtc.jitter.VideoPlayoutBuffer`` and ``NackRetrier`` without packet objects."""

    def __init__(self, keyed: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.keyed = keyed
        self.frames = 0
        """Frames completed and decodable."""
        self.dropped = 0
        """Frames dropped incomplete or undecodable."""
        self.repaired = 0
        """Packets that arrived after being asked for."""
        self.unrepaired = 0
        """Packets given up on: lost after retransmission."""
        self.wait_s = MIN_WAIT_S
        self.repair_s = INITIAL_REPAIR_S
        self.last_frame_at = clock()
        self._clock = clock
        self._flags = bytearray(CAPACITY)
        self._ts = [0] * CAPACITY
        self._origin: int | None = None
        self._highest = 0
        self._missing: dict[int, list[float]] = {}  # seq -> [gap seen, last asked, times asked]
        self._need_key = True
        self._last_ts = -1
        self._ticked_highest = -1
        self._last_pli: float | None = None
        self.want_pli = False
        """Set when a key frame should be asked for (the caller sends the PLI and clears it)."""

    def add(self, seq: int, timestamp: int, flags: int) -> int:
        """One packet; returns how many frames it completed."""
        origin = self._origin
        if origin is None:
            origin = self._origin = self._highest = seq
        delta = (seq - origin) & 0xFFFF
        behind = (origin - seq) & 0xFFFF
        if behind < delta:
            if behind < MAX_MISORDER:
                return 0  # late: its frame was handed on or dropped already
            self._restart(seq)
        elif delta >= CAPACITY:
            self._restart(seq)
        slot = seq % CAPACITY
        if self._flags[slot] & _PRESENT:
            return 0  # a duplicate (two answers to one NACK)
        highest = self._highest
        next_in_order = seq == (highest + 1) & 0xFFFF
        if seq != highest and ((seq - highest) & 0xFFFF) < 0x8000:
            if (seq - highest) & 0xFFFF > 1:
                now = self._clock()
                gap = (highest + 1) & 0xFFFF
                while gap != seq:
                    self._missing[gap] = [now, 0.0, 0]
                    gap = (gap + 1) & 0xFFFF
            self._highest = seq
        elif seq in self._missing:
            first = self._missing.pop(seq)
            if first[2]:
                self.repaired += 1
                elapsed = self._clock() - first[0]
                if elapsed < 1.0:
                    self.repair_s += 0.125 * (elapsed - self.repair_s)
                self.wait_s = max(MIN_WAIT_S, REPAIR_WAITS * self.repair_s)
        self._flags[slot] = flags | _PRESENT
        self._ts[slot] = timestamp
        if next_in_order and not flags & _MARKER and timestamp == self._last_ts and not self._missing:
            return 0  # the middle of a frame, nothing missing: nothing can complete or drop
        self._last_ts = timestamp
        done = self._drain()
        if self._need_key and self._last_pli is not None and self._clock() - self._last_pli >= PLI_INTERVAL_S:
            self._want_key()
        return done

    def nacks(self) -> list[int]:
        """Sequence numbers to ask for now (new gaps and repeats), oldest first, at most MAX_NACK_LIST."""
        if not self._missing:
            return []
        now = self._clock()
        interval = max(MIN_NACK_INTERVAL_S, 1.5 * self.repair_s)
        due = []
        for seq, state in self._missing.items():
            if state[2] < NACK_RETRIES and (not state[2] or now - state[1] >= interval):
                state[1], state[2] = now, state[2] + 1
                due.append(seq)
                if len(due) >= MAX_NACK_LIST:
                    break
        return due

    def _want_key(self) -> None:
        self._need_key = True
        now = self._clock()
        if self._last_pli is None or now - self._last_pli >= PLI_INTERVAL_S:
            self._last_pli = now
            self.want_pli = True

    def _restart(self, origin: int) -> None:
        self.unrepaired += len(self._missing)
        self._missing.clear()
        self._flags[:] = bytes(CAPACITY)
        self._origin = self._highest = origin
        self._want_key()

    def _drain(self) -> int:
        done = 0
        while True:
            outcome = self._next_frame()
            if outcome is None:
                return done
            if outcome == 1:
                done += 1
            else:
                self.dropped += 1
                self._want_key()

    def _next_frame(self) -> int | None:
        """1: a frame handed on; 0: one dropped; None: nothing to do yet."""
        origin = self._origin
        assert origin is not None
        highest = self._highest
        if origin != highest and ((origin - highest) & 0xFFFF) < 0x8000:
            return None
        span = ((highest - origin) & 0xFFFF) + 1
        flags_of, ts_of = self._flags, self._ts
        first_ts: int | None = None
        for count in range(min(span, CAPACITY)):
            seq = (origin + count) & 0xFFFF
            slot = seq % CAPACITY
            flags = flags_of[slot]
            if not flags & _PRESENT:
                state = self._missing.get(seq)
                if state is not None and self._clock() - state[0] < self.wait_s:
                    return None
                self._skip_past_gap(count)
                return 0
            if first_ts is None:
                first_ts = ts_of[slot]
            elif ts_of[slot] != first_ts:
                return self._complete(count)
            if flags & _MARKER:
                return self._complete(count + 1)
        return None

    def _complete(self, count: int) -> int:
        assert self._origin is not None
        first = self._flags[self._origin % CAPACITY]
        self._forget(count)
        if self._need_key and self.keyed and not (first & _KEY and first & _STARTS):
            return 0
        self._need_key = False
        self.last_frame_at = self._clock()
        return 1

    def _skip_past_gap(self, gap: int) -> None:
        assert self._origin is not None
        broken = {self._ts[(self._origin + i) % CAPACITY] for i in range(gap)
                  if self._flags[((self._origin + i) & 0xFFFF) % CAPACITY] & _PRESENT}
        self._forget(gap + 1, gave_up=True)
        end = (self._highest + 1) & 0xFFFF
        while self._origin != end:
            slot = self._origin % CAPACITY
            flags = self._flags[slot]
            if not flags & _PRESENT:
                return
            if flags & _STARTS and self._ts[slot] not in broken:
                return
            broken.add(self._ts[slot])
            self._forget(1)

    def _forget(self, count: int, gave_up: bool = False) -> None:
        origin = self._origin
        assert origin is not None
        for _ in range(count):
            if self._missing.pop(origin, None) is not None and gave_up:
                self.unrepaired += 1
            self._flags[origin % CAPACITY] = 0
            origin = (origin + 1) & 0xFFFF
        self._origin = origin

    def stalled(self, now: float) -> None:
        """Called on the tick: a stream whose packets still come but that completed no frame for STALL_S asks
        for a key frame (one whose packets stopped, a sender gone or muted, is not asked again and again)."""
        arriving, self._ticked_highest = self._highest != self._ticked_highest, self._highest
        if arriving and now - self.last_frame_at >= STALL_S and self._origin is not None:
            self._want_key()


class _Stream:
    """What the hook needs per SSRC (media or retransmission)."""

    __slots__ = ("lean", "stats", "media_ssrc", "rtx", "mime", "frames")

    def __init__(self, lean: LeanReceiver, stats: LeanStatistics, media_ssrc: int, rtx: bool, mime: str,
                 frames: LeanFrames | None) -> None:
        self.lean, self.stats, self.media_ssrc, self.rtx, self.mime = lean, stats, media_ssrc, rtx, mime
        self.frames = frames


class _ConnectionHook:
    """The replaced ``data_received`` of one aioice connection: lean SSRCs here, the rest to aiortc.

    Packets that took aiortc's way all the same (queued before DTLS was done, or teed) reach the lean path from
    the DTLS transport's ``_handle_rtp_data``, replaced too: a stream's packets all land in one place.
    """

    def __init__(self, dtls: Any) -> None:
        self.dtls = dtls
        self.streams: dict[int, _Stream] = {}
        self.others: set[int] = set()  # SSRCs known not to be lean (looked up once)
        self.receivers: list[LeanReceiver] = []
        connection = self._connection = dtls.transport._connection
        self._original = connection.data_received
        connection.data_received = self.data_received
        self._wrapped: set[int] = set()  # id() of the protocols whose datagrams come here first
        self._srtp: Any = None
        self._view = memoryview(b"")
        self._size = pylibsrtp.ffi.new("int *")
        self._original_rtp = dtls._handle_rtp_data
        dtls._handle_rtp_data = self.handle_rtp_data

    def _wrap_protocols(self) -> None:
        # aioice tries to parse every datagram as STUN first, and a failed parse is an exception: RTP goes past
        # that here (STUN's first byte is 0-3, RTP's 128-191, RFC 7983).
        for protocol in self._connection._protocols:
            if id(protocol) in self._wrapped:
                continue
            self._wrapped.add(id(protocol))
            stun_first = protocol.datagram_received
            component = protocol.local_candidate.component if protocol.local_candidate else 1

            def datagram_received(data: bytes, addr: Any, stun_first: Any = stun_first,
                                  component: int = component) -> None:
                if data and 127 < data[0] < 192:
                    self.data_received(data, component)
                else:
                    stun_first(data, addr)

            protocol.datagram_received = datagram_received

    def data_received(self, data: bytes, component: int) -> None:
        if len(self._wrapped) != len(self._connection._protocols):  # protocols come while ICE gathers
            self._wrap_protocols()
        srtp = self.dtls._rx_srtp  # None until DTLS is done: aiortc then drops SRTP, as it would
        if srtp is not None and len(data) >= 12 and 127 < data[0] < 192 and not 191 < data[1] < 209:
            ssrc = int.from_bytes(data[8:12], "big")
            stream = self.streams.get(ssrc)
            if stream is None and ssrc not in self.others:
                stream = self._lookup(ssrc, data[1] & 0x7F)
            if stream is not None and not stream.lean.tee:  # teed, it takes aiortc's way to handle_rtp_data
                # pylibsrtp's unprotect without its copies: the packet is read where libsrtp left it.
                if srtp is not self._srtp:
                    self._srtp, self._view = srtp, memoryview(srtp._buffer)
                if len(data) > len(self._view):
                    return
                size = self._size
                size[0] = len(data)
                self._view[:len(data)] = data
                if _unprotect(srtp._srtp[0], srtp._cdata, size):
                    return  # as aiortc: a packet that fails authentication (or a replay) is dropped
                stream.lean.handle(stream, self._view[:size[0]])
                return
        self._original(data, component)

    async def handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
        """An RTP packet aiortc unprotected: a lean stream's goes to the lean path (and on, teed)."""
        if len(data) >= 12:
            ssrc = int.from_bytes(data[8:12], "big")
            stream = self.streams.get(ssrc)
            if stream is None and ssrc not in self.others:
                stream = self._lookup(ssrc, data[1] & 0x7F)
            if stream is not None:
                stream.lean.handle(stream, data)
                if not stream.lean.tee:
                    return
        await self._original_rtp(data, arrival_time_ms)

    def _lookup(self, ssrc: int, payload_type: int) -> _Stream | None:
        for lean in self.receivers:
            stream = lean.stream_for(ssrc, payload_type)
            if stream is not None:
                self.streams[ssrc] = stream
                return stream
        if self.dtls._rtp_router.ssrc_table.get(ssrc) is not None:
            self.others.add(ssrc)  # another receiver's for good (an unknown one is looked up again)
        return None


_leans: weakref.WeakSet[LeanReceiver] = weakref.WeakSet()
_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = weakref.WeakKeyDictionary()


async def _tick() -> None:
    # One task for every lean stream of the process: stalls need a clock, packets bring none when they stop.
    while True:
        await asyncio.sleep(TICK_S)
        _tick_all()


def _tick_all() -> None:
    # A function of its own: a loop variable in _tick's frame would keep the last stream alive across the sleep,
    # and its connection with it after its call ended.
    for lean in list(_leans):
        try:
            lean.tick()
        except Exception:  # one stream's bug must not end the others' feedback
            log.exception("lean receiver tick failed")


class LeanReceiver:
    """The lean path of one ``RTCRtpReceiver`` (see the module docstring); made by :func:`attach`."""

    def __init__(self, receiver: RTCRtpReceiver, on_frame: Callable[[], None] | None, tee: bool,
                 clock: Callable[[], float]) -> None:
        self.receiver = receiver
        self.on_frame = on_frame
        self.tee = tee
        self.feedback = not tee
        self._clock = clock
        # Teed, aiortc keeps its own counters in the receiver: the lean ones stay here.
        self.bytes: dict[int, int] = {} if tee else count_received(receiver).by_ssrc
        """Payload bytes per media SSRC."""
        self.stats: dict[int, LeanStatistics] = {}
        """RFC 3550 counters per SSRC (media and retransmission)."""
        self._streams: dict[int, _Stream] = {}
        self._frames: dict[int, LeanFrames] = {}

    # -- set-up -------------------------------------------------------------------------------------------
    def stream_for(self, ssrc: int, payload_type: int) -> _Stream | None:
        """This receiver's stream for a new SSRC: announced, or routed by payload type as aiortc routes it."""
        receiver = self.receiver
        codecs = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        codec = codecs.get(payload_type)
        if codec is None:
            return None
        router = self._hook_router()
        owner = router.ssrc_table.get(ssrc)
        if owner is None:
            candidates = router.payload_type_table.get(payload_type, set())
            if len(candidates) != 1:
                return None
            owner = next(iter(candidates))
        if owner is not receiver:
            return None
        rtx_map: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
        stats = self.stats[ssrc] = LeanStatistics(codec.clockRate)
        if not self.tee:
            receiver._RTCRtpReceiver__remote_streams[ssrc] = stats  # type: ignore[attr-defined]
        if is_rtx(codec):
            media_ssrc = rtx_map.get(ssrc)
            if media_ssrc is None:
                return None
            apt = codec.parameters.get("apt")
            media_codec = codecs.get(apt)
            mime = media_codec.mimeType.lower() if media_codec is not None else ""
            stream = _Stream(self, stats, media_ssrc, True, mime, self._frames_of(media_ssrc, mime))
        else:
            mime = codec.mimeType.lower()
            stream = _Stream(self, stats, ssrc, False, mime, self._frames_of(ssrc, mime))
        self._streams[ssrc] = stream
        return stream

    def _frames_of(self, media_ssrc: int, mime: str) -> LeanFrames | None:
        if not mime.startswith("video/"):
            return None
        frames = self._frames.get(media_ssrc)
        if frames is None:
            frames = self._frames[media_ssrc] = LeanFrames(mime in ("video/vp8", "video/h264"))
        return frames

    def _hook_router(self) -> Any:
        return self.receiver.transport._rtp_router

    # -- per packet ---------------------------------------------------------------------------------------
    def handle(self, stream: _Stream, data: bytes | memoryview) -> None:
        """One unprotected RTP packet of one of this receiver's SSRCs."""
        b0 = data[0]
        seq = (data[2] << 8) | data[3]
        timestamp = int.from_bytes(data[4:8], "big")
        offset = 12 + 4 * (b0 & 0x0F)
        end = len(data)
        if b0 & 0x10:
            if offset + 4 > end:
                return
            offset += 4 + 4 * ((data[offset + 2] << 8) | data[offset + 3])
        if b0 & 0x20:
            end -= data[-1]
        if offset > end:
            return
        stream.stats.add(seq, timestamp, self._clock())
        media = stream.media_ssrc
        self.bytes[media] = self.bytes.get(media, 0) + end - offset
        frames = stream.frames
        if frames is None:
            return
        if stream.rtx:
            if end - offset < 2:
                return
            seq = (data[offset] << 8) | data[offset + 1]
            offset += 2
        flags = frame_flags(stream.mime, data, offset)
        if data[1] & 0x80:
            flags |= _MARKER
        done = frames.add(seq, timestamp, flags)
        if done and self.on_frame is not None:
            for _ in range(done):
                self.on_frame()
        if frames._missing and self.feedback:
            due = frames.nacks()
            if due:
                asyncio.ensure_future(self.receiver._send_rtcp_nack(media, due))
        if frames.want_pli:
            frames.want_pli = False
            if self.feedback:
                asyncio.ensure_future(self.receiver._send_rtcp_pli(media))

    def tick(self) -> None:
        """Stall check (on the shared ticker)."""
        now = time.monotonic()
        for media, frames in self._frames.items():
            frames.stalled(now)
            if frames.want_pli:
                frames.want_pli = False
                if self.feedback:
                    asyncio.ensure_future(self.receiver._send_rtcp_pli(media))

    # -- figures ------------------------------------------------------------------------------------------
    def unrepaired(self) -> dict[int, int]:
        """Packets lost after retransmission, per media SSRC (cumulative)."""
        return {ssrc: f.unrepaired for ssrc, f in self._frames.items()}


def attach(receiver: RTCRtpReceiver, on_frame: Callable[[], None] | None = None, tee: bool = False,
           clock: Callable[[], float] = time.time) -> LeanReceiver:
    """Receive ``receiver``'s packets through the lean path from now on (see the module docstring).

    ``on_frame`` is called once per complete decodable video frame. ``tee=True`` measures beside aiortc
    instead of in its place: packets take aiortc's way, and each is read by the lean path right before
    aiortc's receiver gets it, which keeps its own counters and answers the sender; the lean path sends
    nothing (the agreement test compares the two on the same packets, at the same moments).
    Call it in the ``track`` event or later: the receiver's DTLS transport must be set.
    """
    lean = LeanReceiver(receiver, on_frame, tee, clock)
    dtls = receiver.transport
    # Kept on the transport itself: a table keyed by transport would keep every transport alive through its hook.
    hook: _ConnectionHook | None = getattr(dtls, "_confbench_lean_hook", None)
    if hook is None:
        hook = dtls._confbench_lean_hook = _ConnectionHook(dtls)  # type: ignore[attr-defined]
    hook.receivers.append(lean)
    hook.others.clear()  # SSRCs refused before may be this receiver's
    _leans.add(lean)
    loop = asyncio.get_running_loop()
    ticker = _tickers.get(loop)
    if ticker is None or ticker.done():
        _tickers[loop] = asyncio.ensure_future(_tick())
    return lean
