"""How a native receiver waits for packets and completes frames: the one place where the harness changes
aiortc's jitter buffer and its receiver's loss handling.

A real client (Chromium's packet buffer, NACK requester and frame buffer; NetEq for audio) never lets one
lost packet hold up every later frame. aiortc does, in three ways, and under loss through a real SFU that
turned a working meeting into seconds of standing delay (the issue on truth through real SFUs: 7.4 s video
p50 through Janus at 3 % loss, where Chromium in the same room saw 32 ms):

1. A frame with a missing packet waits until the packet arrives or the buffer overflows (512 packets of
   video: ~10 s at 50 packets/s; 16 of audio: 320 ms), and
2. after that the buffer hands on at most one frame per arriving packet, so a backlog of roughly one packet
   per frame never drains: the delay stays for the rest of the call.
3. A NACK is sent once, when a gap is first seen; if the NACK or the retransmission is lost, nothing asks again
   until the next new gap.

What replaces it here, for every native receiver and for the reference SFU's relays:

* **Video** (:class:`VideoPlayoutBuffer`): a frame completes on its RTP marker bit (aiortc waits for the next
  frame's first packet: one frame interval added to every figure; the timestamp rule stays the fallback). A
  frame with a gap waits at most :attr:`VideoPlayoutBuffer.wait_s` from the moment the gap was seen:
  ``max(200 ms, 3 x the measured NACK repair time, 1.5 x the slowest of the last 32 repairs)``, at most 3 s.
  Then it is dropped, a key frame is requested (PLI, repeated at most every 300 ms while none comes) and later
  frames are discarded until a key frame starts again, since a decoder cannot use delta frames whose
  reference is gone (Chromium does the same). Every frame that becomes complete is handed on at once, so a
  backlog drains on the next packet. Why that wait: Chromium waits up to 3 s for a delta frame to become
  decodable (200 ms only when it already needs a key frame). Waiting as long as repairs are seen to take keeps
  a late repair (a packet lost before an SFU, repaired by its publisher first: 100-250 ms through LiveKit) a
  short freeze, as in Chromium, where a fixed 200 ms made it a dropped frame, a key frame request and a longer
  freeze (a crosscheck of LiveKit under 3 % loss once counted 13 freezes a minute where Chromium counted
  none). A packet that never comes costs that wait and a key frame, where Chromium would wait up to 3 s.
  A complete key frame does not wait behind an older gap: the frames before it are dropped then, as
  Chromium's frame buffer decodes the first decodable frame it holds (a layer switch behind a lossy link
  otherwise froze for the older frames' whole wait).
* **Audio** (:class:`AudioPlayoutBuffer`): aiortc's playout depth (``prefetch`` packets, 80 ms) is kept; a
  missing packet that playout reaches is skipped (concealed, as NetEq does; aiortc never NACKs audio) instead
  of holding everything behind it.
* **Retransmissions reach their receiver.** aiortc routes an incoming packet by its SSRC, or by its payload
  type when only one receiver has that type, and registers only the media SSRC of each receiver, not its
  retransmission (RTX) SSRC. When one connection carries several video streams (Janus's multistream
  subscriptions: one connection per subscriber), every receiver has the RTX payload type, so every
  retransmission was dropped unrouted: no lost packet was ever repaired. :func:`install` registers the RTX
  SSRC with its receiver, as the SDP's ``ssrc-group:FID`` declares it.
* **NACKs** (:class:`NackRetrier`): each missing video packet is asked for again every ``1.5 x`` the measured
  repair time (at least 20 ms) up to 10 times, like Chromium's NACK requester, until it arrives or playout
  has gone past its frame (handed on or dropped; Chromium clears its NACK list up to the last decoded frame).
  aiortc asks for every packet still missing again at each new gap, frames long dropped included: behind a
  congested link that added retransmissions nobody could use.

:func:`install` puts these in place for receivers created from then on: a factory for aiortc's
``JitterBuffer`` and a wrapper of ``RTCRtpReceiver._handle_rtp_packet`` that hands on the extra frames and
repeats NACKs (private attributes of aiortc 1.x, read here and nowhere else). Remove parts of this module as
aiortc gains them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiortc.rtcdtlstransport as _dtls
import aiortc.rtcrtpreceiver as _receiver
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.utils import uint16_add, uint16_gt

_original = _receiver.JitterBuffer
_original_handle = _receiver.RTCRtpReceiver._handle_rtp_packet
_original_register = _dtls.RTCDtlsTransport._register_rtp_receiver

MIN_WAIT_S = 0.2
"""The shortest time an incomplete video frame waits for its missing packets (Chromium's wait for a frame
when it already needs a key frame)."""
MAX_WAIT_S = 3.0
"""The longest: Chromium's wait for a decodable delta frame before it asks for a key frame."""
REPAIR_WAITS = 3.0
"""An incomplete frame waits this many NACK repair times (the smoothed mean), when that is longer."""
SLOWEST_WAITS = 1.5
"""... and this many times the slowest of the last :data:`RECENT_REPAIRS` repairs: repairs through an SFU
are bimodal (the SFU's own retransmission in ms; a packet it never had, repaired by the publisher first, in
100-250 ms), and a mean of the two waits too little for the slow ones."""
RECENT_REPAIRS = 32
PLI_INTERVAL_S = 0.3
"""Key-frame requests for one stream are repeated at most this often while no key frame comes."""
NACK_RETRIES = 10
MIN_NACK_INTERVAL_S = 0.02
INITIAL_REPAIR_S = 0.05
"""The NACK repair time assumed before one has been measured."""
KEYED = ("video/vp8", "video/h264")
"""Codecs whose key frames :func:`frame_start` recognises: only for these are frames held back for a key frame."""
MAX_MISORDER = 100
"""A packet this far behind the frame being completed is a restart of the stream, not a late packet."""


FRAME_STARTS, FRAME_KEY = 4, 8
"""The bits :func:`frame_flags` answers with (the lean receive path keeps them per packet in a bytearray)."""


def frame_start(mime: str | None, payload: bytes) -> tuple[bool, bool]:
    """Whether an RTP payload begins a frame, and whether that frame is a key frame (VP8 RFC 7741, H.264
    RFC 6184). Unknown codecs: every packet may begin a frame, and none is known to be a key frame."""
    flags = frame_flags(mime, payload, 0)
    return bool(flags & FRAME_STARTS), bool(flags & FRAME_KEY)


def frame_flags(mime: str | None, data: bytes | bytearray | memoryview, index: int, end: int | None = None) -> int:
    """:func:`frame_start` of the payload at ``data[index:end]``, read in place, as ``FRAME_*`` bits."""
    size = len(data) if end is None else end
    if index >= size:
        return 0
    first = data[index]
    if mime == "video/vp8":
        if not first & 0x10 or first & 0x07:  # S bit with partition 0: the frame's first packet
            return 0
        at = index + 1
        if first & 0x80:  # X: extension flags follow
            if at >= size:
                return FRAME_STARTS
            flags = data[at]
            at += 1
            if flags & 0x80:  # I: picture id, 7 or 15 bits
                at += 2 if at < size and data[at] & 0x80 else 1
            if flags & 0x40:  # L: TL0PICIDX
                at += 1
            if flags & 0x30:  # T or K: TID/KEYIDX byte
                at += 1
        return FRAME_STARTS | FRAME_KEY if at < size and not data[at] & 0x01 else FRAME_STARTS  # P bit 0: key
    if mime == "video/h264":
        kind = first & 0x1F
        if kind == 28:  # FU-A: starts with its S bit
            if index + 1 >= size or not data[index + 1] & 0x80:
                return 0
            return FRAME_STARTS | FRAME_KEY if data[index + 1] & 0x1F in (5, 7) else FRAME_STARTS
        if kind == 24:  # STAP-A: a run of (size, NAL) pairs
            key, at = False, index + 1
            while at + 2 < size:
                key = key or data[at + 2] & 0x1F in (5, 7)
                at += 2 + ((data[at] << 8) | data[at + 1])
            return FRAME_STARTS | FRAME_KEY if key else FRAME_STARTS
        return (FRAME_STARTS if 1 <= kind <= 23 else 0) | (FRAME_KEY if kind in (5, 7) else 0)
    return FRAME_STARTS


class PlayoutFrame(JitterFrame):
    """A complete encoded frame, with the payload type it came with (to hand extra frames to the decoder)."""

    def __init__(self, data: bytes, timestamp: int, payload_type: int) -> None:
        super().__init__(data=data, timestamp=timestamp)
        self.payload_type = payload_type


class VideoPlayoutBuffer(JitterBuffer):
    """aiortc's video jitter buffer, completing frames on the marker bit and never waiting unboundedly."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch, is_video=is_video)
        self.mime: str | None = None
        """The codec's MIME type, lower case (set by the receiver wrapper; needed to find key frames)."""
        self.wait_s = MIN_WAIT_S
        """How long a frame with a gap waits before it is dropped (kept up to date by :class:`NackRetrier`)."""
        self.ready: deque[PlayoutFrame] = deque()
        """Frames completed beyond the one :meth:`add` returns, to be handed on at once."""
        self.dropped_frames = 0
        """Frames dropped incomplete or undecodable (waiting for a key frame)."""
        self._clock = clock
        self._highest: int | None = None
        self._missing_since: dict[int, float] = {}
        # A decoder starts on a key frame: until one comes, frames are discarded as a browser discards them.
        self._need_key = True
        self._last_pli: float | None = None  # key-frame requests repeat only once one was made
        # First packets of key frames that arrived while a packet before them was missing: the frames that may
        # jump the queue (:meth:`_key_after_gap`).
        self._key_starts: list[int] = []

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        now = self._clock()
        pli = False
        if self._origin is None:
            self._origin = self._highest = packet.sequence_number
        delta = uint16_add(packet.sequence_number, -self._origin)
        behind = uint16_add(self._origin, -packet.sequence_number)
        if behind < delta:  # older than the frame being completed
            if behind < MAX_MISORDER:
                return False, None  # a late duplicate or a repair for a frame already handed on or dropped
            self._restart(packet.sequence_number)  # the stream restarted
            delta = 0
            pli = self._want_key(now)
        elif delta >= self.capacity:
            # Cannot happen while frames wait only wait_s, unless the packet rate exceeds capacity / wait_s.
            self._restart(packet.sequence_number)
            delta = 0
            pli = self._want_key(now)
        assert self._highest is not None
        if uint16_gt(packet.sequence_number, self._highest):
            seq = uint16_add(self._highest, 1)
            while seq != packet.sequence_number:
                self._missing_since[seq] = now
                seq = uint16_add(seq, 1)
            self._highest = packet.sequence_number
        else:
            self._missing_since.pop(packet.sequence_number, None)
        self._packets[packet.sequence_number % self._capacity] = packet
        if self._missing_since and self.mime in KEYED and frame_start(self.mime, packet.payload) == (True, True):
            self._key_starts.append(packet.sequence_number)
        pli = self._drain(now) or pli
        if self._need_key and self._last_pli is not None and now - self._last_pli >= PLI_INTERVAL_S:
            pli = self._want_key(now) or pli
        first = self.ready.popleft() if self.ready else None
        return pli, first

    def _want_key(self, now: float) -> bool:
        self._need_key = True
        if self._last_pli is not None and now - self._last_pli < PLI_INTERVAL_S:
            return False
        self._last_pli = now
        return True

    def _restart(self, origin: int) -> None:
        self._packets = [None] * self._capacity
        self._origin = self._highest = origin
        self._missing_since.clear()
        self._key_starts.clear()

    def _drain(self, now: float) -> bool:
        """Hand on every frame that is complete or dropped; True when a key frame should be requested."""
        pli = False
        while True:
            outcome = self._next_frame(now)
            if outcome is None:
                return pli
            if outcome == "skipped":  # frames before a complete key frame: dropped, and no key frame to ask for
                continue
            if outcome != "frame":  # dropped incomplete, or undecodable: the decoder needs a key frame
                self.dropped_frames += 1
                pli = self._want_key(now) or pli

    def _next_frame(self, now: float) -> str | None:
        assert self._origin is not None and self._highest is not None
        if uint16_gt(self._origin, self._highest):
            return None  # everything received has been handed on
        span = uint16_add(self._highest, -self._origin) + 1
        packets: list[Any] = []
        for count in range(min(span, self._capacity)):
            seq = uint16_add(self._origin, count)
            packet = self._packets[seq % self._capacity]
            if packet is None:
                if now - self._missing_since.get(seq, now) < self.wait_s:
                    # Wait for the packet (or its retransmission), unless a key frame after it is complete.
                    return "skipped" if self._key_after_gap(count) else None
                self._skip_past_gap(count)
                return "dropped"
            if packets and packet.timestamp != packets[0].timestamp:
                # The previous frame's marker never came (senders that do not set it): complete it here.
                return self._complete(packets, count)
            packets.append(packet)
            if packet.marker:
                return self._complete(packets, count + 1)
        return None

    def _complete(self, packets: list[Any], count: int) -> str:
        starts, key = frame_start(self.mime, packets[0].payload)
        self.remove(count)
        if self._need_key and self.mime in KEYED and not (key and starts):
            return "undecodable"  # its reference frame is gone (or there never was one)
        self._need_key = False
        self.ready.append(PlayoutFrame(data=b"".join(p._data for p in packets), timestamp=packets[0].timestamp,
                                       payload_type=packets[0].payload_type))
        return "frame"

    def passed(self, seqs: set[int]) -> set[int]:
        """Those of ``seqs`` that playout has gone past (their frames were handed on or dropped)."""
        origin = self._origin
        if origin is None:
            return set()
        return {seq for seq in seqs if uint16_gt(origin, seq)}

    def _key_after_gap(self, gap: int) -> bool:
        """Drop everything before the first complete key frame after the gap at ``origin + gap``, if there is
        one: a decoder can start again there, and Chromium's frame buffer decodes it at once, dropping the
        older incomplete frames (where waiting out their repairs turned a layer switch behind a lossy link into
        a freeze of a second and more)."""
        assert self._origin is not None
        origin = self._origin
        self._key_starts = [s for s in self._key_starts if gap < uint16_add(s, -origin) < self._capacity]
        for start in self._key_starts:
            offset = uint16_add(start, -origin)
            first = self._packets[start % self._capacity]
            if first is None or not self._complete_from(offset, first.timestamp):
                continue
            skipped = {p.timestamp for i in range(offset)
                       if (p := self._packets[uint16_add(origin, i) % self._capacity]) is not None}
            self.dropped_frames += max(len(skipped), 1)
            self._forget(offset)  # the starts noted before it go with the next call's filter
            return True
        return False

    def _complete_from(self, offset: int, timestamp: int) -> bool:
        """Whether the frame starting at ``origin + offset`` has all its packets."""
        assert self._origin is not None and self._highest is not None
        for count in range(offset, uint16_add(self._highest, -self._origin) + 1):
            packet = self._packets[uint16_add(self._origin, count) % self._capacity]
            if packet is None:
                return False
            if packet.timestamp != timestamp or packet.marker:
                return True  # its marker, or (a sender that sets none) the next frame's first packet
        return False

    def _skip_past_gap(self, gap: int) -> None:
        """Drop the frame with the gap at ``origin + gap``, and the rest of any frame whose start was lost."""
        assert self._origin is not None
        broken = {p.timestamp for i in range(gap)
                  if (p := self._packets[uint16_add(self._origin, i) % self._capacity]) is not None}
        self._forget(gap + 1)
        while self._origin != uint16_add(self._highest or 0, 1):
            packet = self._packets[self._origin % self._capacity]
            if packet is None:
                return  # another gap: it waits on its own clock
            starts, _ = frame_start(self.mime, packet.payload)
            if starts and packet.timestamp not in broken:
                return
            broken.add(packet.timestamp)
            self._forget(1)

    def _forget(self, count: int) -> None:
        assert self._origin is not None
        for _ in range(count):
            self._missing_since.pop(self._origin, None)
            self._packets[self._origin % self._capacity] = None
            self._origin = uint16_add(self._origin, 1)


class AudioPlayoutBuffer(JitterBuffer):
    """aiortc's audio buffer (``prefetch`` packets of playout delay), skipping lost packets instead of waiting
    for them: every packet is one Opus frame, and a receiver conceals what never came."""

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch, is_video=False)
        self.ready: deque[PlayoutFrame] = deque()
        self._highest: int | None = None

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        if self._origin is None:
            self._origin = self._highest = packet.sequence_number
        delta = uint16_add(packet.sequence_number, -self._origin)
        behind = uint16_add(self._origin, -packet.sequence_number)
        if behind < delta:
            if behind < MAX_MISORDER:
                return False, None  # too late: playout has passed it
            delta = 0
            self._packets = [None] * self._capacity
            self._origin = self._highest = packet.sequence_number
        if delta >= self.capacity:  # a jump: start again here
            delta = 0
            self._packets = [None] * self._capacity
            self._origin = self._highest = packet.sequence_number
        assert self._highest is not None
        if uint16_gt(packet.sequence_number, self._highest):
            self._highest = packet.sequence_number
        self._packets[packet.sequence_number % self._capacity] = packet
        # Play out while more than ``prefetch`` newer packets are due: a missing one is skipped.
        while uint16_add(self._highest, -self._origin) >= max(self._prefetch, 1):
            slot = self._origin % self._capacity
            played: Any = self._packets[slot]
            self.remove(1)
            if played is not None:
                self.ready.append(PlayoutFrame(data=played._data, timestamp=played.timestamp,
                                               payload_type=played.payload_type))
        return False, self.ready.popleft() if self.ready else None


class ForwardingAudioBuffer(JitterBuffer):
    """For relays: every audio packet is a whole Opus frame, handed on at once.

    aiortc's audio buffer prefetches four frames (80 ms) and holds each until the next arrives: playout
    buffering, which belongs to the receiving participant, not to a server in the middle.
    """

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


class NackRetrier:
    """Asks again for video packets that are still missing, and measures how long a repair takes.

    aiortc's receiver sends one NACK when it first sees a gap. Here each missing packet is asked for again
    every ``1.5 x`` the measured repair time (at least 20 ms), at most :data:`NACK_RETRIES` times; the repair
    time (first NACK to the packet's arrival, smoothed) also sets how long an incomplete frame waits.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._asked: dict[int, tuple[float, float, int]] = {}  # seq -> (first asked, last asked, times)
        self.repair_s = INITIAL_REPAIR_S
        self._recent: deque[float] = deque(maxlen=RECENT_REPAIRS)  # the last repair times, for wait_s
        self.repaired = 0
        """Packets that arrived after being asked for."""

    def due(self, missing: set[int]) -> list[int]:
        """Update from the receiver's set of missing sequence numbers; those to ask for again now."""
        now = self._clock()
        for seq in list(self._asked):
            if seq not in missing:
                first, _, _ = self._asked.pop(seq)
                if now - first < 1.0:  # repaired (packets forgotten as too old leave much later)
                    self.repaired += 1
                    self.repair_s += 0.125 * (now - first - self.repair_s)
                    self._recent.append(now - first)
        interval = max(MIN_NACK_INTERVAL_S, 1.5 * self.repair_s)
        again: list[int] = []
        for seq in missing:
            asked = self._asked.get(seq)
            if asked is None:
                self._asked[seq] = (now, now, 1)  # aiortc has just asked for it
            elif asked[2] < NACK_RETRIES and now - asked[1] >= interval:
                self._asked[seq] = (asked[0], now, asked[2] + 1)
                again.append(seq)
        return sorted(again)

    def forget(self, seqs: set[int]) -> None:
        """Stop asking for ``seqs`` (their frames are gone): not counted as repaired."""
        for seq in seqs:
            self._asked.pop(seq, None)

    @property
    def pending(self) -> bool:
        """Whether some packet asked for has neither arrived nor been given up."""
        return bool(self._asked)

    @property
    def wait_s(self) -> float:
        """How long an incomplete frame should wait for its repairs (see the module's docstring)."""
        slowest = max(self._recent, default=0.0)
        return min(MAX_WAIT_S, max(MIN_WAIT_S, REPAIR_WAITS * self.repair_s, SLOWEST_WAITS * slowest))


async def _handle_rtp_packet(self: Any, packet: Any, arrival_time_ms: int) -> None:
    """aiortc's packet handler, then: hand on every further frame the packet completed, and repeat NACKs."""
    buffer = self._RTCRtpReceiver__jitter_buffer
    codecs = self._RTCRtpReceiver__codecs
    if isinstance(buffer, VideoPlayoutBuffer) and buffer.mime is None:
        codec = codecs.get(packet.payload_type)
        if codec is not None and not is_rtx(codec):
            buffer.mime = codec.mimeType.lower()
    await _original_handle(self, packet, arrival_time_ms)
    ready = getattr(buffer, "ready", None)
    if ready:
        queue = self._RTCRtpReceiver__decoder_queue
        mapper = self._RTCRtpReceiver__timestamp_mapper
        started = self._RTCRtpReceiver__decoder_thread is not None
        while ready:
            frame = ready.popleft()
            codec = codecs.get(frame.payload_type)
            if started and codec is not None:
                frame.timestamp = mapper.map(frame.timestamp)
                queue.put((codec, frame))
    nacks = self._RTCRtpReceiver__nack_generator
    if nacks is not None and isinstance(buffer, VideoPlayoutBuffer):
        retrier: NackRetrier | None = getattr(self, "_confbench_nack", None)
        if retrier is None:
            retrier = self._confbench_nack = NackRetrier()
        if not nacks.missing and not retrier.pending:
            return  # nothing lost: the common case costs one check
        # Packets of frames already handed on or dropped are asked for no more, by the retrier or by aiortc
        # (which asks for every missing packet again at each new gap): Chromium clears its NACK list up to
        # the last decoded frame.
        passed = buffer.passed(nacks.missing)
        if passed:
            nacks.missing -= passed
            retrier.forget(passed)
        again = retrier.due(nacks.missing)
        buffer.wait_s = retrier.wait_s
        if again:
            await self._send_rtcp_nack(nacks_ssrc(self, packet), again)


def nacks_ssrc(receiver: Any, packet: Any) -> int:
    """The media SSRC a NACK names: the repaired stream's, also when ``packet`` is a retransmission."""
    rtx: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc
    return rtx.get(packet.ssrc, packet.ssrc)


def _register_rtp_receiver(self: Any, receiver: Any, parameters: Any) -> None:
    """aiortc's registration, plus each encoding's retransmission SSRC (routed to the same receiver)."""
    _original_register(self, receiver, parameters)
    router = self._rtp_router
    for encoding in parameters.encodings:
        if encoding.rtx is not None:
            router.ssrc_table[encoding.rtx.ssrc] = receiver


def _factory(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
    if is_video:
        return VideoPlayoutBuffer(capacity=capacity, prefetch=prefetch)
    return AudioPlayoutBuffer(capacity=capacity, prefetch=prefetch)


def _relay_factory(capacity: int, prefetch: int = 0, is_video: bool = False) -> JitterBuffer:
    if is_video:
        return VideoPlayoutBuffer(capacity=capacity, prefetch=prefetch)
    return ForwardingAudioBuffer(capacity=capacity)


def install(relay: bool = False) -> None:
    """Make aiortc's receivers created from now on behave as above (idempotent).

    ``relay=True`` is for processes whose receivers only forward (the reference SFU): audio is then not
    buffered either.
    """
    _receiver.JitterBuffer = _relay_factory if relay else _factory  # type: ignore[assignment,misc]
    _receiver.RTCRtpReceiver._handle_rtp_packet = _handle_rtp_packet  # type: ignore[method-assign]
    _dtls.RTCDtlsTransport._register_rtp_receiver = _register_rtp_receiver  # type: ignore[method-assign]


def uninstall() -> None:
    """Back to aiortc's own buffer and packet handler (benchmarks comparing both)."""
    _receiver.JitterBuffer = _original  # type: ignore[misc]
    _receiver.RTCRtpReceiver._handle_rtp_packet = _original_handle  # type: ignore[method-assign]
    _dtls.RTCDtlsTransport._register_rtp_receiver = _original_register  # type: ignore[method-assign]
