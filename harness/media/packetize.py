"""RTP payloads made once per encoded frame, and a lean send loop for them: where the harness bends aiortc's sender.

aiortc's ``RTCRtpSender`` packetizes each encoded frame it sends with its own packetizer (``Encoder.pack``:
the VP8 payload descriptor, H.264 FU-A/STAP-A, Opus as is) and then, per packet, builds an ``RtpPacket``,
computes its header extensions through the generic ``HeaderExtensionsMap`` and serializes it. A shared
encoder (``harness.media.encoder``) or a relay (``harness.reference.relay``) hands the same frame to many
senders: the payloads do not depend on the sender, and the header differs only in SSRC, sequence number,
payload type, timestamp offset and the abs-send-time value. Measured on a media host publishing 50 streams,
packetizing per sender was about an eighth of its time and the per-packet header work about a third.

So :class:`Packetizer` packetizes each frame once (one aiortc packetizer per stream, hence one VP8
picture-id sequence, as a single sender would make), the fan-out carries :class:`PacketizedFrame` s, and
:func:`install` replaces ``RTCRtpSender._run_rtp`` for senders whose track is marked ``packetized`` with
:func:`_send_packetized`: the header is packed with ``struct`` from a per-sender template, the extension block
(mid, abs-send-time, and for audio ssrc-audio-level, one block per level) is computed once by aiortc's own map
and only abs-send-time is patched per packet.
Everything else stays aiortc's: SRTP and ICE through the DTLS transport, the retransmission history (an
``RtpPacket`` per packet, which NACKs and RTX read), the counters its RTCP sender reports use, its start and
stop events. A track with a ``pacing_bps`` attribute has its packets spread out by ``harness.media.pacer`` as
a browser's pacer would; every packet's departure is noted for the ``out`` rows' burstiness figures
(``harness.media.departures``). Other tracks run aiortc's loop unchanged. Remove this module when aiortc can send ready
payloads (or becomes cheaper per packet).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import clock
from aiortc.codecs import get_encoder
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RTP_HISTORY_SIZE,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)
from av.packet import Packet

from .adapt import UplinkAdaptation
from .departures import Departures
from .pacer import PACKET_OVERHEAD_BYTES, PacedQueue, pacer
from .send_clock import send_clock, send_later

__all__ = ["RID_URI", "LayerSender", "PacketizedFrame", "Packetizer", "install"]

log = logging.getLogger(__name__)

_CLOCK_RATES = {"video/vp8": 90000, "video/h264": 90000, "audio/opus": 48000}
_HEADER = struct.Struct("!BBHLL")
_ABS_SEND_TIME_MARK = 0xA5C3E1  # a value whose three bytes are easy to find in the extension block
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TRACK_CHECK_S = 0.5
"""How often a packetized sender looks whether its track was replaced or ended."""
LAYER_REPORT_S = 1.0
"""How often the lower simulcast layers send their sender reports (aiortc's own: every 0.5-1.5 s)."""


@dataclass(frozen=True, slots=True)
class PacketizedFrame:
    """One encoded frame as RTP payloads, and its RTP timestamp relative to the stream's start."""

    payloads: tuple[bytes, ...]
    timestamp: int
    keyframe: bool = False
    audio_level: int | None = None
    """RFC 6465 level (0 loudest .. 127 silence) for the ssrc-audio-level header extension (audio only)."""
    due: float | None = None
    """When its packets should leave (``time.monotonic``), for a frame made ahead of its time (audio, see
    ``harness.media.send_clock``); None: at once."""

    @property
    def size(self) -> int:
        """Payload bytes of the frame."""
        return sum(len(p) for p in self.payloads)


class Packetizer:
    """Packetizes the frames of one stream with aiortc's packetizer for ``mime_type`` (e.g. ``video/VP8``)."""

    def __init__(self, mime_type: str) -> None:
        clock_rate = _CLOCK_RATES.get(mime_type.lower())
        if clock_rate is None:
            raise ValueError(f"cannot packetize {mime_type!r} (known: {', '.join(sorted(_CLOCK_RATES))})")
        self.mime_type = mime_type
        self._packer: Any = get_encoder(RTCRtpCodecParameters(mimeType=mime_type, clockRate=clock_rate))

    def pack(self, packet: Packet, keyframe: bool = False, audio_level: int | None = None,
             due: float | None = None) -> PacketizedFrame:
        """The payloads of one encoded frame (``packet`` carries ``pts`` and ``time_base``)."""
        payloads, timestamp = self._packer.pack(packet)
        return PacketizedFrame(tuple(payloads), int(timestamp), keyframe, audio_level, due)


class _HeaderTemplate:
    """The fixed parts of one sender's RTP headers, and where abs-send-time goes in the extension block.

    With an ``audio_level``, the block also carries ssrc-audio-level when it was negotiated (one template per
    level, made on first use: at most 128).
    """

    def __init__(self, sender: Any, payload_type: int, audio_level: int | None = None) -> None:
        values = HeaderExtensions()
        values.mid = sender._RTCRtpSender__mid
        values.abs_send_time = _ABS_SEND_TIME_MARK
        if audio_level is not None:
            values.audio_level = (False, audio_level)
        profile, block = sender._RTCRtpSender__rtp_header_extensions_map.set(values)
        self.payload_type = payload_type
        self.first_byte = 0x80 | (0x10 if block else 0)  # version 2, extension bit, no padding or CSRC
        self.extension = bytearray(struct.pack("!HH", profile, len(block) >> 2) + block) if block else None
        mark = _ABS_SEND_TIME_MARK.to_bytes(3, "big")
        at = self.extension.find(mark) if self.extension is not None else -1
        self.abs_send_time_at = at if at >= 4 else None
        self.mid = values.mid

    def header(self, marker: int, sequence_number: int, timestamp: int, ssrc: int, abs_send_time: int) -> bytes:
        head = _HEADER.pack(self.first_byte, (marker << 7) | self.payload_type, sequence_number, timestamp, ssrc)
        if self.extension is None:
            return head
        if self.abs_send_time_at is not None:
            self.extension[self.abs_send_time_at:self.abs_send_time_at + 3] = abs_send_time.to_bytes(3, "big")
        return head + self.extension


class _Wire:
    """Where one sender's packets go: SRTP, then the nominated ICE pair's socket.

    Straight to what aiortc's ``RTCDtlsTransport._send_rtp`` and aioice's ``Connection.send`` end up doing
    (``protect``, ``transport.sendto``), without their four coroutine layers per packet; the transport's
    packet and byte counters (its stats) are kept the same way.
    """

    def __init__(self, sender: Any) -> None:
        self._dtls = sender.transport
        self._connection = self._dtls.transport._connection

    def send(self, data: bytes) -> None:
        """Protect ``data`` and send it now."""
        protected, pair = self._protect(data)
        pair.protocol.transport.sendto(protected, pair.remote_addr)

    def send_at(self, due: float, data: bytes, on_sent: Callable[[float], None]) -> None:
        """Protect ``data`` now and send it at ``due`` (``time.monotonic``): by the sending clock, or else
        (none, or it refused) by the event loop's timer; ``on_sent`` gets the time it left."""
        protected, pair = self._protect(data)
        transport, addr = pair.protocol.transport, pair.remote_addr
        clock = send_clock()  # asked here, not before: a process that sends nothing ahead starts none
        if clock is None or not clock.send_at(due, transport, addr, protected, on_sent):
            send_later(due, transport, addr, protected, on_sent)

    def _protect(self, data: bytes) -> tuple[bytes, Any]:
        dtls = self._dtls
        if dtls._state != DtlsState.CONNECTED:
            raise ConnectionError("Cannot send encrypted RTP, not connected")
        pair = self._connection._nominated.get(1)
        if pair is None or pair.protocol.transport is None:
            raise ConnectionError("Cannot send data, not connected")
        protected = dtls._tx_srtp.protect(data)
        dtls._RTCDtlsTransport__tx_bytes += len(protected)
        dtls._RTCDtlsTransport__tx_packets += 1
        return protected, pair


class _PacketizedSender:
    """One sender's state while it sends :class:`PacketizedFrame` s pushed by its fan-out."""

    def __init__(self, sender: Any, codec: RTCRtpCodecParameters) -> None:
        self.sender = sender
        self.payload_type = int(codec.payloadType or 0)  # negotiated codecs always have one
        self.template = _HeaderTemplate(sender, self.payload_type)
        self.leveled: dict[int, _HeaderTemplate] = {}  # audio level -> its template
        self.history: dict[int, RtpPacket] = sender._RTCRtpSender__rtp_history
        self.wire = _Wire(sender)
        self.sequence_number = random.randint(0, 0xFFFF)
        self.timestamp_origin = random.randint(0, 0xFFFFFFFF)
        self.ended = asyncio.Event()
        self.departures = Departures(int(codec.clockRate or 0) or None)
        sender._confbench_departures = self.departures
        self.queue: PacedQueue[tuple[bytes, int, int, int | None]] | None = None

    def pace(self, pacing_bps: float | None) -> None:
        """Send through the event loop's pacer at ``pacing_bps`` (None: every packet at once, unpaced)."""
        if self.queue is not None:
            self.queue.close()
            self.queue = None
        if pacing_bps:
            self.queue = pacer().queue(pacing_bps, self._send_queued)

    def deliver(self, frame: Any) -> None:
        """Send one frame's packets, or queue them for the pacer (called by the fan-out); never raises."""
        if self.ended.is_set() or not self.sender._enabled or not isinstance(frame, PacketizedFrame):
            return
        timestamp = (self.timestamp_origin + frame.timestamp) & 0xFFFFFFFF
        last = len(frame.payloads) - 1
        queue, level = self.queue, frame.audio_level
        if queue is None:
            # A frame made ahead of its time (audio) leaves at it; one already due, at once.
            due = frame.due if frame.due is not None and frame.due > time.monotonic() else None
            for i, payload in enumerate(frame.payloads):
                if not self._send(payload, 1 if i == last else 0, timestamp, level, due):
                    return
            return
        for i, payload in enumerate(frame.payloads):
            queue.push((payload, 1 if i == last else 0, timestamp, level), len(payload) + PACKET_OVERHEAD_BYTES)

    def _send_queued(self, item: tuple[bytes, int, int, int | None]) -> None:
        self._send(*item)

    def _send(self, payload: bytes, marker: int, timestamp: int, level: int | None = None,
              due: float | None = None) -> bool:
        """Put one packet on the wire now, or at ``due`` through the sending clock; False once the sender has
        ended (then nothing more is sent)."""
        if self.ended.is_set():
            return False
        sender = self.sender
        template = self.template
        if level is not None:
            template = self.leveled.get(level) or self.leveled.setdefault(
                level, _HeaderTemplate(sender, self.payload_type, level))
        ssrc = sender._ssrc
        try:
            now = clock.current_ntp_time()
            if due is not None:  # it leaves then: its abs-send-time and the sender reports' NTP time say so
                now += int(max(due - time.monotonic(), 0.0) * (1 << 32))
            abs_send_time = (now >> 14) & 0x00FFFFFF
            seq = self.sequence_number
            # The history keeps aiortc's own packet object: NACK answers and RTX re-serialize it.
            packet = RtpPacket(payload_type=self.payload_type, marker=marker, sequence_number=seq,
                               timestamp=timestamp, ssrc=ssrc, payload=payload)
            packet.extensions.mid = template.mid
            packet.extensions.abs_send_time = abs_send_time
            if level is not None:
                packet.extensions.audio_level = (False, level)
            self.history[seq % RTP_HISTORY_SIZE] = packet
            data = template.header(marker, seq, timestamp, ssrc, abs_send_time) + payload
            if due is None:
                self.wire.send(data)
                self.departures.note(timestamp=timestamp)
            else:
                self.wire.send_at(due, data, self._departed(timestamp))
            sender._RTCRtpSender__ntp_timestamp = now
            sender._RTCRtpSender__rtp_timestamp = timestamp
            sender._RTCRtpSender__octet_count += len(payload)
            sender._RTCRtpSender__packet_count += 1
            self.sequence_number = (seq + 1) & 0xFFFF
            return True
        except ConnectionError:
            self.end()
        except Exception:
            log.exception("sending a packetized frame failed")
            self.end()
        return False

    def _departed(self, timestamp: int) -> Callable[[float], None]:
        # The sending clock says when the packet really left: the departure figures are measured, not assumed.
        return lambda sent_at: self.departures.note(now=sent_at, timestamp=timestamp)

    def end(self) -> None:
        """Send nothing more (what the pacer holds is dropped)."""
        self.ended.set()
        if self.queue is not None:
            self.queue.close()


# -- the RTP of one layer -------------------------------------------------------------------------------
class LayerSender:
    """One simulcast layer's RTP on ``sender``'s transport (``harness.media.simulcast``): its own SSRC and
    sequence numbers, MID and RID on every packet, and answers to the PLIs and NACKs sent for its SSRC.

    The top layer passes the sender's own SSRC and shares its history, so aiortc's sender reports, RTT and
    retransmissions keep describing it; the lower layers register in aiortc's RTCP router under their SSRC.
    """

    def __init__(self, sender: Any, payload_type: int, rid: str, rid_extension_id: int, track: Any,
                 ssrc: int | None = None) -> None:
        self.sender = sender
        self.active = True
        """Whether the layer is sent (an adapting publisher drops its top layers, ``harness.media.adapt``)."""
        self.adapter: _Adapter | None = None
        self.rid = rid
        self.track = track
        self.payload_type = payload_type
        self.ssrc = ssrc if ssrc is not None else random.randint(1, 0xFFFFFFFF)
        self.sequence_number = random.randint(0, 0xFFFF)
        self.timestamp_origin = random.randint(0, 0xFFFFFFFF)
        self.history: dict[int, RtpPacket] = (sender._RTCRtpSender__rtp_history if ssrc is not None else {})
        ids = sender._RTCRtpSender__rtp_header_extensions_map._HeaderExtensionsMap__ids
        self.extensions = HeaderExtensionsMap()
        self.extensions.configure(RTCRtpParameters(headerExtensions=[
            ext for ext in (RTCRtpHeaderExtensionParameters(id=ids.mid, uri=MID_URI) if ids.mid else None,
                            RTCRtpHeaderExtensionParameters(id=ids.abs_send_time, uri=ABS_SEND_TIME_URI)
                            if ids.abs_send_time else None,
                            RTCRtpHeaderExtensionParameters(id=rid_extension_id, uri=RID_URI))
            if ext is not None]))
        self.mid = sender._RTCRtpSender__mid
        self.packets = 0
        self.octets = 0
        self.last_sent: tuple[int, int] | None = None
        """(NTP time, RTP timestamp) of the last packet sent: what a sender report maps."""
        if ssrc is None:
            # RTCP about this SSRC (PLI, NACK) reaches this object; aiortc's router calls _handle_rtcp_packet.
            sender.transport._rtp_router.register_sender(self, self.ssrc)

    def packet(self, payload: bytes, marker: int, timestamp: int, abs_send_time: int) -> RtpPacket:
        """The next packet of this layer (kept in the layer's history for NACKs)."""
        seq = self.sequence_number
        packet = RtpPacket(payload_type=self.payload_type, marker=marker, sequence_number=seq,
                           timestamp=(self.timestamp_origin + timestamp) & 0xFFFFFFFF, ssrc=self.ssrc,
                           payload=payload)
        packet.extensions.mid = self.mid
        packet.extensions.rtp_stream_id = self.rid
        packet.extensions.abs_send_time = abs_send_time
        self.history[seq % RTP_HISTORY_SIZE] = packet
        self.sequence_number = (seq + 1) & 0xFFFF
        self.packets += 1
        self.octets += len(payload)
        return packet

    def serialize(self, packet: RtpPacket) -> bytes:
        """The packet's bytes, with this layer's header extensions."""
        return packet.serialize(self.extensions)

    def sender_report(self) -> RtcpSrPacket | None:
        """An RTCP sender report of this layer (None before its first packet).

        A browser reports on every SSRC it sends. LiveKit needs them on each layer: it switches a subscriber
        between layers by mapping RTP timestamps through the layers' reports, and refuses a switch to a layer
        without one ("unavailable layer ref", ``pkg/sfu/forwarder.go``). The top layer's come from aiortc.
        """
        if self.last_sent is None:
            return None
        ntp, rtp = self.last_sent
        return RtcpSrPacket(ssrc=self.ssrc, sender_info=RtcpSenderInfo(
            ntp_timestamp=ntp, rtp_timestamp=rtp, packet_count=self.packets & 0xFFFFFFFF,
            octet_count=self.octets & 0xFFFFFFFF))

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        """RTCP the SFU sent about this layer's SSRC: key-frame requests and NACKs (called by aiortc's router);
        reports and REMB go to the publisher's adaptation, if it adapts."""
        if self.adapter is not None:
            self.adapter.feedback(self, packet)
        if self.ssrc == self.sender._ssrc:  # the top layer, registered here only to adapt: aiortc's own handling
            await self.sender._handle_rtcp_packet(packet)
            return
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            request = getattr(self.track, "request_keyframe", None)
            if request is not None:
                request()
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            for seq in packet.lost:
                old = self.history.get(seq % RTP_HISTORY_SIZE)
                if old is not None and old.sequence_number == seq:
                    try:
                        await self.sender.transport._send_rtp(self.serialize(old))
                    except ConnectionError:
                        return

    def unregister(self) -> None:
        """Stop receiving RTCP for this SSRC."""
        router = self.sender.transport._rtp_router
        if router.senders.get(self.ssrc) is self:
            del router.senders[self.ssrc]


class _Adapter:
    """One publisher's :class:`~harness.media.adapt.UplinkAdaptation` applied to its layers."""

    def __init__(self, layers: list[LayerSender], bitrates_bps: list[int]) -> None:
        self.layers = layers
        self.rule = UplinkAdaptation(bitrates_bps)
        loop = asyncio.get_running_loop()
        self._now = loop.time
        for layer in layers:
            layer.adapter = self
            # The top layer's RTCP goes through its LayerSender first (which hands it on to aiortc's sender).
            layer.sender.transport._rtp_router.register_sender(layer, layer.ssrc)

    def feedback(self, layer: LayerSender, packet: Any) -> None:
        active = None
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc == layer.ssrc:
                    active = self.rule.report(self._now(), self.layers.index(layer), report.fraction_lost)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if layer is self.layers[-1]:  # one REMB covers every SSRC: count it once
                active = self.rule.remb(self._now(), bitrate)
        if active is not None:
            for i, each in enumerate(self.layers):
                resumed = i < active and not each.active
                each.active = i < active
                if resumed:
                    request = getattr(each.track, "request_keyframe", None)
                    if request is not None:
                        request()  # a layer that comes back starts with a key frame


def _deliver_layer(state: _PacketizedSender, layer: LayerSender, frame: Any) -> None:
    """Send one frame of one simulcast layer (the fan-out's ``deliver`` of that layer's track)."""
    sender = state.sender
    if state.ended.is_set() or not sender._enabled or not isinstance(frame, PacketizedFrame) or not layer.active:
        return
    last = len(frame.payloads) - 1
    try:
        for i, payload in enumerate(frame.payloads):
            now = clock.current_ntp_time()
            packet = layer.packet(payload, 1 if i == last else 0, frame.timestamp, (now >> 14) & 0x00FFFFFF)
            state.wire.send(layer.serialize(packet))
            layer.last_sent = (now, packet.timestamp)
            if layer.ssrc == sender._ssrc:  # the top layer: what aiortc's sender reports describe
                sender._RTCRtpSender__ntp_timestamp = now
                sender._RTCRtpSender__rtp_timestamp = packet.timestamp
                sender._RTCRtpSender__octet_count += len(payload)
                sender._RTCRtpSender__packet_count += 1
    except ConnectionError:
        state.ended.set()
    except Exception:
        log.exception("sending a simulcast frame failed")
        state.ended.set()


def _bind(track: Any, state: _PacketizedSender) -> list[LayerSender]:
    """Point ``track`` (and, for a simulcast track, each of its layers) at ``state``'s sending."""
    layers = getattr(track, "layers", None)
    rid_id = getattr(track, "rid_extension_id", None)
    if not layers or rid_id is None:
        state.pace(getattr(track, "pacing_bps", None))
        track.deliver = state.deliver
        return []
    out = []
    for rid, layer_track in layers:
        top = layer_track is track
        layer = LayerSender(state.sender, state.payload_type, rid, rid_id, layer_track,
                            ssrc=state.sender._ssrc if top else None)
        layer_track.deliver = lambda frame, layer=layer: _deliver_layer(state, layer, frame)
        out.append(layer)
    track.layer_senders = out  # what the participant's stats poll reads (per-layer `out` rows)
    bitrates = getattr(track, "adapt_bitrates", None)
    if bitrates:
        _Adapter(out, list(bitrates))
    return out


def _unbind(track: Any, layers: list[LayerSender]) -> None:
    track.deliver = None
    track.layer_senders = []
    for rid_track in (t for _, t in getattr(track, "layers", ())):
        rid_track.deliver = None
    for layer in layers:
        layer.unregister()


async def _report_layers(sender: Any, layers: list[LayerSender]) -> None:
    """Send the sender reports of the active lower layers (the top layer's are aiortc's)."""
    for layer in layers:
        report = layer.sender_report() if layer.active and layer.ssrc != sender._ssrc else None
        if report is not None:
            try:
                await sender.transport._send_rtp(bytes(report))
            except ConnectionError:
                return


async def _send_packetized(sender: Any, codec: RTCRtpCodecParameters) -> None:
    """``RTCRtpSender._run_rtp`` for a track of :class:`PacketizedFrame` s (see the module's docstring).

    The fan-out pushes each frame to :meth:`_PacketizedSender.deliver`, which sends it at once or, when the
    track says ``pacing_bps``, hands its packets to the event loop's pacer (``harness.media.pacer``); this task only
    follows the track (replaced, ended) and performs aiortc's start and exit protocol.
    """
    sender._RTCRtpSender__rtp_started.set()
    state = _PacketizedSender(sender, codec)
    bound = None
    layers: list[LayerSender] = []
    loop = asyncio.get_running_loop()
    reported = loop.time()
    try:
        while not state.ended.is_set():
            track = sender._RTCRtpSender__track
            if track is not bound:
                if bound is not None:
                    _unbind(bound, layers)
                layers = _bind(track, state) if track is not None else []
                bound = track
            if track is not None and track.readyState != "live":
                break
            if layers and loop.time() - reported >= LAYER_REPORT_S:
                reported = loop.time()
                await _report_layers(sender, layers)
            await asyncio.sleep(TRACK_CHECK_S)
    except asyncio.CancelledError:
        pass
    finally:
        state.end()
        if bound is not None:
            _unbind(bound, layers)
        track = sender._RTCRtpSender__track
        if track is not None:
            track.stop()
            sender._RTCRtpSender__track = None
        sender._RTCRtpSender__rtp_exited.set()


_installed = False


def install() -> None:
    """Send tracks marked ``packetized`` with :func:`_send_packetized`; others as aiortc does (idempotent)."""
    global _installed
    if _installed:
        return
    original = RTCRtpSender._run_rtp

    async def run_rtp(self: RTCRtpSender, codec: RTCRtpCodecParameters) -> None:
        if getattr(self.track, "packetized", False):
            await _send_packetized(self, codec)
        else:
            await original(self, codec)

    RTCRtpSender._run_rtp = run_rtp  # type: ignore[method-assign]
    _installed = True
