"""A lean receive path for streams that are measured but not decoded: SRTP straight from the ICE connection.

Why. aiortc's receive path costs 40-115 µs a packet (a queue and coroutine layers from the ICE connection to
the receiver, an ``RtpPacket`` object per packet, routing, NACK generation, depayloading, a jitter buffer of
packet objects): hundreds of undecoded streams fill a media host's core, and the generator measures itself.

What. :func:`attach` gives the packets of a receiver whose stream is not decoded a shorter way: the ICE
connection's sockets hand RTP (first byte 128-191, RFC 7983) straight to a hook that looks at the SSRC; a lean
stream's packet is unprotected at once with the DTLS transport's own libsrtp session (pylibsrtp) and read in
place (sequence number, timestamp, marker, payload offset, the VP8/H.264 descriptor's frame-start and key-frame
bits). DTLS, STUN, RTCP and other streams (decoded probes) go on to aiortc unchanged. On asyncio's selector
loop the hook reads the sockets itself (``harness.rtc.netio.take_reads``, batched as netio reads): a datagram
lands in one buffer per thread, which libsrtp unprotects in place, so a lean packet costs no bytes object, no
wrapper calls and no copy; other datagrams leave it as bytes, as the transport would hand them on.
It keeps what the ``streams`` table had through aiortc (``harness.media.tap``):

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
``RTCDtlsTransport._rx_srtp``, whose session ``_srtp`` is handed to libsrtp's ``srtp_unprotect`` directly
with the hook's own buffer (pylibsrtp's ``unprotect`` copies the packet twice and allocates per call);
aioice's ``Connection.data_received`` and its protocols' ``datagram_received`` (replaced on those instances
where the loop's reader is not taken), their ``transport`` (whose socket the reader reads);
``RTCRtpReceiver.__codecs``, ``__rtx_ssrc`` (read), ``__remote_streams`` (lean counters put in),
``_send_rtcp_nack`` / ``_send_rtcp_pli`` (called). Lean packets skip the DTLS transport's own packet counters
and the receiver's decoder thread, which idles until the receiver stops.

Remove when aiortc grows a receive path for undecoded streams.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc import RTCRtpReceiver
from aiortc.codecs import is_rtx

from harness.media.tap import count_received
from harness.rtc import netio, rtcparrival
from harness.rtc.jitter import frame_flags
from harness.rtc.lean_frames import FLAG_MARKER, LeanFrames, LeanStatistics

log = logging.getLogger(__name__)
_unprotect = pylibsrtp.lib.srtp_unprotect
_SSRC = struct.Struct("!I")
_HEADER = struct.Struct("!BBHI")  # first byte, marker and payload type, sequence number, timestamp
_buffers = threading.local()


def _rx_buffer() -> tuple[bytearray, Any]:
    """This thread's receive buffer (any UDP datagram fits) and libsrtp's pointer to it: a datagram is read,
    unprotected and handled before the next is read, on one event loop per thread."""
    try:
        return _buffers.pair  # type: ignore[no-any-return]
    except AttributeError:
        buffer = bytearray(65536)
        _buffers.pair = (buffer, pylibsrtp.ffi.from_buffer("char[]", buffer))
        return _buffers.pair  # type: ignore[no-any-return]

TICK_S = 0.1
"""How often stalls are checked, for all lean streams of the process at once."""


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
            transport = getattr(protocol, "transport", None)
            # Where the event loop lets it, the socket is read here, into one buffer that libsrtp works in:
            # no bytes object, address or copy per lean packet, and no layer of calls between socket and hook.
            if transport is not None and netio.take_reads(transport, self._read, transport, protocol, stun_first,
                                                          component, getattr(transport, "_confbench_stamped", False)):
                continue

            def datagram_received(data: bytes, addr: Any, stun_first: Any = stun_first,
                                  component: int = component) -> None:
                if data and 127 < data[0] < 192:
                    self.data_received(data, component)
                else:
                    stun_first(data, addr)

            protocol.datagram_received = datagram_received

    def _read(self, transport: Any, protocol: Any, stun_first: Any, component: int, stamped: bool) -> None:
        """The socket of one of the connection's protocols is readable: read what it holds (a bounded batch, as
        ``harness.rtc.netio`` reads: one flooded socket must not starve the others), lean packets handled in
        place, the rest handed on as bytes, as the transport would have."""
        # Something put in front of the protocol since (an impaired link in a test) stays in front: every
        # datagram goes to it as bytes, and the lean ones come back through data_received.
        in_front = protocol.__dict__.get("datagram_received")
        buffer, cdata = _rx_buffer()
        sock = transport._sock
        streams, others, size = self.streams, self.others, self._size
        unprotect = _unprotect  # read per batch: the floor of benchmarks/rtp_path.py replaces it
        ancillary: Any = None
        for _ in range(netio.MAX_DATAGRAMS_PER_WAKEUP):
            if transport._conn_lost:
                return
            try:
                if stamped:  # the kernel's arrival time comes along (harness.rtc.rtcparrival: RTCP only)
                    n, ancillary, _flags, addr = sock.recvmsg_into((buffer,), rtcparrival.ANCILLARY_BYTES)
                else:
                    n, addr = sock.recvfrom_into(buffer)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                transport._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                transport._fatal_error(exc, "Fatal read error on datagram transport")
                return
            if n >= 12 and 127 < buffer[0] < 192 and not 191 < buffer[1] < 209 and in_front is None:
                srtp = self.dtls._rx_srtp  # None until DTLS is done: aiortc then drops SRTP, as it would
                if srtp is not None:
                    ssrc = _SSRC.unpack_from(buffer, 8)[0]
                    stream = streams.get(ssrc)
                    if stream is None and ssrc not in others:
                        stream = self._lookup(ssrc, buffer[1] & 0x7F)
                    if stream is not None and not stream.lean.tee:  # teed: aiortc's way, to handle_rtp_data
                        size[0] = n
                        # A packet that fails authentication (or a replay) is dropped, as aiortc drops it.
                        if not unprotect(srtp._srtp[0], cdata, size):
                            stream.lean.handle(stream, buffer, size[0])
                        continue
            data = bytes(memoryview(buffer)[:n])
            if stamped:
                rtcparrival.note_arrival(data, ancillary)
            if in_front is not None:
                in_front(data, addr)
            elif 127 < data[0] < 192:
                self._original(data, component)
            else:
                stun_first(data, addr)

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
                buffer, cdata = _rx_buffer()
                if len(data) > len(buffer):
                    return
                size = self._size
                size[0] = len(data)
                buffer[:len(data)] = data
                if _unprotect(srtp._srtp[0], cdata, size):
                    return  # as aiortc: a packet that fails authentication (or a replay) is dropped
                stream.lean.handle(stream, buffer, size[0])
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
                stream.lean.handle(stream, data, len(data))
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
    now = time.monotonic()  # one clock read for every stream of the tick
    for lean in list(_leans):
        try:
            lean.tick(now)
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
    def handle(self, stream: _Stream, data: bytes | bytearray, end: int) -> None:
        """One unprotected RTP packet of one of this receiver's SSRCs, ``data[:end]``."""
        b0, b1, seq, timestamp = _HEADER.unpack_from(data)
        offset = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            if offset + 4 > end:
                return
            offset += 4 + 4 * ((data[offset + 2] << 8) | data[offset + 3])
        if b0 & 0x20:
            end -= data[end - 1]
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
        flags = frame_flags(stream.mime, data, offset, end)
        if b1 & 0x80:
            flags |= FLAG_MARKER
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

    def tick(self, now: float | None = None) -> None:
        """Stall check (on the shared ticker), at ``now`` (``time.monotonic()``)."""
        if now is None:
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
