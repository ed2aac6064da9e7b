"""Encoded frames and counters of aiortc's receivers and senders: the one place that touches their internals
for counting.

aiortc's RTCRtpReceiver reassembles complete encoded frames (depacketized, not decoded) and hands them to
its decoder thread through a queue. :func:`tap` puts a stand-in in place of that queue before the receiver
starts (when the ``track`` event fires): every complete frame goes to a callback on the event loop instead,
and the decoder thread idles until the receiver stops. Used by the reference SFU to forward frames and by
participants that measure a stream without decoding it (frame boundaries, rate and freezes from the frames
themselves; packets, loss, jitter from RTCP as usual). Remove when aiortc exposes encoded frames.
:func:`count_received`, :func:`count_nacked` and :func:`inbound_counts` give counts aiortc keeps badly or
not at all (bytes received, packets asked for again, per-SSRC receiver counters); :func:`watch_transit`
the packets' transit minima a subscriber's layer rule reads.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket

FrameCallback = Callable[[RTCRtpCodecParameters, Any], None]
"""Called with the codec and the complete encoded frame (``.data`` bytes, ``.timestamp`` RTP time)."""


class _DecoderQueueTap:
    """Stands in for the receiver's decoder queue."""

    def __init__(self, on_frame: FrameCallback) -> None:
        self._on_frame = on_frame
        self._ended = threading.Event()

    def put(self, item: tuple[RTCRtpCodecParameters, Any] | None) -> None:
        # Called on the event loop by the receiver, once per complete encoded frame; None when it stops.
        if item is None:
            self._ended.set()
            return
        self._on_frame(*item)

    def get(self) -> None:
        # Called by the receiver's decoder thread: it waits here until the receiver stops, then ends the
        # receiver's own track as it would have.
        self._ended.wait()
        return None


def tap(receiver: RTCRtpReceiver, on_frame: FrameCallback) -> None:
    """Send ``receiver``'s complete encoded frames to ``on_frame`` instead of its decoder.

    Must be called before the receiver starts, i.e. in the peer connection's ``track`` event.
    """
    if getattr(receiver, "_RTCRtpReceiver__started", False):
        raise RuntimeError("tap the receiver in the track event, before it starts")
    receiver._RTCRtpReceiver__decoder_queue = _DecoderQueueTap(on_frame)  # type: ignore[attr-defined]


def receiver_of(pc: Any, track: Any) -> RTCRtpReceiver | None:
    """The receiver of ``track`` among ``pc``'s transceivers (None when it is not there)."""
    for transceiver in pc.getTransceivers():
        if transceiver.receiver.track is track:
            return transceiver.receiver  # type: ignore[no-any-return]
    return None


class ReceivedBytes:
    """RTP payload bytes a receiver got per media SSRC (retransmissions counted under the SSRC they repair)."""

    def __init__(self) -> None:
        self.by_ssrc: dict[int, int] = {}


def count_received(receiver: RTCRtpReceiver) -> ReceivedBytes:
    """Count what ``receiver`` receives, from now on (idempotent: the same counter for the same receiver).

    aiortc's inbound statistics have packet counts but no byte counts, and the bitrate a sender reports in
    its RTCP sender reports is what it sent, not what arrived: behind a rate-limited link the two differ.
    The receiver's packet handler is wrapped (on this instance only) to add each packet's payload size.
    """
    existing: ReceivedBytes | None = getattr(receiver, "_confbench_received", None)
    if existing is not None:
        return existing
    counter = ReceivedBytes()
    rtx: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    counts = counter.by_ssrc

    def count(packet: Any, arrival_time_ms: int) -> None:
        ssrc = rtx.get(packet.ssrc, packet.ssrc)
        counts[ssrc] = counts.get(ssrc, 0) + len(packet.payload)

    _before_each_packet(receiver, count)
    receiver._confbench_received = counter  # type: ignore[attr-defined]
    return counter


def _before_each_packet(receiver: RTCRtpReceiver, note: Callable[[Any, int], None]) -> None:
    """Call ``note(packet, arrival_time_ms)`` on every RTP packet ``receiver`` gets, before aiortc handles it:
    its packet handler is wrapped on this instance only."""
    handle = receiver._handle_rtp_packet

    async def noting(packet: Any, arrival_time_ms: int) -> None:
        note(packet, arrival_time_ms)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = noting  # type: ignore[method-assign]


class NackedPackets:
    """Distinct packets of one sender that its receiver asked for again (NACK), per media SSRC.

    What the link towards the receiver (a server, for a publisher) lost before any repair: a server that
    repairs its uplink by NACK reports, in its receiver reports, only what stayed lost after the repair
    (LiveKit does), so this is the sender's own view of its uplink loss. Repeated requests for one packet
    count once (the last :data:`NACK_MEMORY` sequence numbers are remembered per SSRC).
    """

    NACK_MEMORY = 4096

    def __init__(self) -> None:
        self.by_ssrc: dict[int, int] = {}
        self._seen: dict[int, deque[int]] = {}
        self._seen_set: dict[int, set[int]] = {}

    def asked(self, ssrc: int, seqs: list[int]) -> None:
        """Note one NACK's sequence numbers for media SSRC ``ssrc``."""
        seen, members = self._seen.setdefault(ssrc, deque()), self._seen_set.setdefault(ssrc, set())
        for seq in seqs:
            if seq in members:
                continue
            members.add(seq)
            seen.append(seq)
            if len(seen) > self.NACK_MEMORY:
                members.discard(seen.popleft())
            self.by_ssrc[ssrc] = self.by_ssrc.get(ssrc, 0) + 1


def count_nacked(sender: RTCRtpSender) -> NackedPackets:
    """Count the distinct packets ``sender``'s receiver asks for again, from now on (idempotent).

    aiortc's sender answers NACKs (it retransmits) but counts none of them: its RTCP handler is wrapped (on
    this instance only) to note each NACK's sequence numbers before aiortc handles it.
    """
    existing: NackedPackets | None = getattr(sender, "_confbench_nacked", None)
    if existing is not None:
        return existing
    counter = NackedPackets()
    handle = sender._handle_rtcp_packet

    async def counting(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            counter.asked(packet.media_ssrc, list(packet.lost))
        await handle(packet)

    sender._handle_rtcp_packet = counting  # type: ignore[method-assign]
    sender._confbench_nacked = counter  # type: ignore[attr-defined]
    return counter


@dataclass(frozen=True, slots=True)
class InboundCounts:
    """RFC 3550 receiver counters of one received media stream (jitter in RTP clock units)."""

    ssrc: int
    packets_received: int
    packets_lost: int
    jitter: int


def inbound_counts(receiver: RTCRtpReceiver) -> list[InboundCounts]:
    """The receiver counters of every media SSRC ``receiver`` gets (retransmission SSRCs left out).

    aiortc's ``getStats`` files every inbound SSRC of a receiver under the same stats id, so once a
    retransmission (RTX) stream exists the report holds only one of them, often the RTX one: the media
    stream's packets and losses vanish from it. The per-SSRC counters are read here instead. A
    retransmission stream is left out: its bytes count in its media stream's bitrate
    (:func:`count_received`), and the media stream's loss is what the network dropped.
    """
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    rtx: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    return [InboundCounts(ssrc, s.packets_received, s.packets_lost, s.jitter)
            for ssrc, s in list(streams.items()) if ssrc not in rtx]


class TransitMinima:
    """Per media SSRC, the least transit time (arrival minus RTP time, in ms, plus an unknown constant) of
    the packets received since the last :meth:`take`.

    A minimum over a few hundred ms rises only when a queue stands on the path (one packet delayed by
    jitter does not raise it): what a subscriber's layer rule reads to see a link's queue grow before it
    overflows (``harness.systems.layer_choice.StandingQueue``). Arrivals are stamped when aiortc reads the
    datagram, so a receiver whose event loop lags shows that lag as transit too.
    """

    def __init__(self, clock_rate: int = 90000) -> None:
        self._per_ms = clock_rate / 1000
        self._unwrapped: dict[int, tuple[int, int]] = {}  # ssrc -> (last RTP timestamp, its unwrapped value)
        self.minima: dict[int, float] = {}

    def add(self, ssrc: int, timestamp: int, arrival_ms: float) -> None:
        """One packet of media SSRC ``ssrc``."""
        last = self._unwrapped.get(ssrc)
        if last is None:
            unwrapped = timestamp
        else:
            step = (timestamp - last[0]) & 0xFFFFFFFF
            unwrapped = last[1] + (step - (1 << 32) if step >= 1 << 31 else step)
        self._unwrapped[ssrc] = (timestamp, unwrapped)
        transit = arrival_ms - unwrapped / self._per_ms
        if transit < self.minima.get(ssrc, float("inf")):
            self.minima[ssrc] = transit

    def take(self) -> dict[int, float]:
        """The minima since the last call, and start again."""
        minima, self.minima = self.minima, {}
        return minima


def watch_transit(receiver: RTCRtpReceiver) -> TransitMinima:
    """Note the transit of every media packet ``receiver`` gets, from now on (idempotent, like
    :func:`count_received`). Retransmissions are left out: they are late by design, not by a queue."""
    existing: TransitMinima | None = getattr(receiver, "_confbench_transit", None)
    if existing is not None:
        return existing
    watch = TransitMinima()
    rtx: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]

    def note(packet: Any, arrival_time_ms: int) -> None:
        if packet.ssrc not in rtx:
            watch.add(packet.ssrc, packet.timestamp, arrival_time_ms)

    _before_each_packet(receiver, note)
    receiver._confbench_transit = watch  # type: ignore[attr-defined]
    return watch
