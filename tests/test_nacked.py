"""Packets a receiver asked a sender for again (harness/media/tap.count_nacked): distinct, per media SSRC."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import rtp

from harness.media.tap import NackedPackets, count_nacked


class _Sender:
    """Stands in for an RTCRtpSender: records what reaches aiortc's RTCP handler."""

    def __init__(self) -> None:
        self.handled: list[Any] = []

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        self.handled.append(packet)


def _nack(ssrc: int, lost: list[int]) -> rtp.RtcpRtpfbPacket:
    return rtp.RtcpRtpfbPacket(fmt=rtp.RTCP_RTPFB_NACK, ssrc=1, media_ssrc=ssrc, lost=lost)


def test_a_packet_asked_for_again_counts_once() -> None:
    counter = NackedPackets()
    counter.asked(7, [1, 2, 3])
    counter.asked(7, [2, 3, 4])
    counter.asked(8, [2])
    assert counter.by_ssrc == {7: 4, 8: 1}


def test_memory_is_bounded_and_forgets_the_oldest() -> None:
    counter = NackedPackets()
    counter.asked(7, list(range(NackedPackets.NACK_MEMORY + 10)))
    counter.asked(7, [0, NackedPackets.NACK_MEMORY + 9])  # 0 was forgotten: asked for again, a new loss
    assert counter.by_ssrc[7] == NackedPackets.NACK_MEMORY + 11


def test_the_wrapped_sender_counts_nacks_and_still_handles_every_packet() -> None:
    sender: Any = _Sender()
    counter = count_nacked(sender)
    assert count_nacked(sender) is counter  # idempotent
    pli = rtp.RtcpPsfbPacket(fmt=rtp.RTCP_PSFB_PLI, ssrc=1, media_ssrc=9)
    for packet in (_nack(9, [10, 11]), pli, _nack(9, [11, 12])):
        asyncio.run(sender._handle_rtcp_packet(packet))
    assert counter.by_ssrc == {9: 3}
    assert len(sender.handled) == 3
