"""RTCP SDES chunks read as RFC 3550 lays them out (harness/rtc/sdes.py), on the compound packets pion sends."""

from __future__ import annotations

from struct import pack

import pytest
from aiortc import rtp

from harness.rtc import sdes

SSRC_A, SSRC_B = 0xF972CFB5, 0x791E9565


def sender_report(ssrc: int) -> bytes:
    """A sender report with no report blocks: NTP time, RTP time, packet and octet counts."""
    body = pack("!LQLLL", ssrc, 0xEEBF16253056609F, 0x0F4D36AE, 130, 119330)
    return pack("!BBH", 0x80, rtp.RTCP_SR, len(body) // 4) + body


def chunk(ssrc: int, cname: bytes) -> bytes:
    """One SDES chunk as RFC 3550 writes it: items, one null octet, null padding to 32 bits."""
    items = pack("!L", ssrc) + bytes([1, len(cname)]) + cname + b"\x00"
    return items + b"\x00" * (-len(items) % 4)


def compound(cnames: tuple[bytes, bytes]) -> bytes:
    """What LiveKit sends a subscriber of two streams: two sender reports and one SDES with two chunks."""
    payload = chunk(SSRC_A, cnames[0]) + chunk(SSRC_B, cnames[1])
    sdes_packet = pack("!BBH", 0x80 | 2, rtp.RTCP_SDES, len(payload) // 4) + payload
    return sender_report(SSRC_A) + sender_report(SSRC_B) + sdes_packet


# The first chunk's items end one octet before a 32-bit boundary: the null octet is the only padding.
PION_LIKE = compound((b"abcdefghijklmnopq", b"0123456789abcdef"))


@pytest.fixture
def original_parser():
    """aiortc's parser, whatever other tests in this process installed; the state before is restored after."""
    saved = rtp.RtcpSdesPacket.__dict__["parse"]
    yield sdes.AIORTC_PARSE
    rtp.RtcpSdesPacket.parse = saved


def test_aiortc_alone_drops_the_whole_compound_and_its_sender_reports(original_parser) -> None:
    """Why the bend exists: when this starts failing, aiortc parses SDES itself and the module can go."""
    rtp.RtcpSdesPacket.parse = original_parser
    with pytest.raises(ValueError, match="SDES"):
        rtp.RtcpPacket.parse(PION_LIKE)


def test_sender_reports_and_every_chunk_survive(original_parser) -> None:
    sdes.install()
    packets = rtp.RtcpPacket.parse(PION_LIKE)
    assert [type(p) for p in packets] == [rtp.RtcpSrPacket, rtp.RtcpSrPacket, rtp.RtcpSdesPacket]
    assert [p.ssrc for p in packets[:2]] == [SSRC_A, SSRC_B]
    chunks = packets[2].chunks
    assert [(c.ssrc, c.items) for c in chunks] == [
        (SSRC_A, [(1, b"abcdefghijklmnopq")]), (SSRC_B, [(1, b"0123456789abcdef")])]


@pytest.mark.parametrize("length", range(0, 12))
def test_every_padding_length_and_aiortcs_own_packets(original_parser, length: int) -> None:
    sdes.install()
    cname = b"x" * length
    one = compound((cname, b"y" * (length + 1)))
    assert [c.items for c in rtp.RtcpPacket.parse(one)[2].chunks] == [[(1, cname)], [(1, b"y" * (length + 1))]]
    own = bytes(rtp.RtcpSdesPacket(chunks=[rtp.RtcpSourceInfo(ssrc=SSRC_A, items=[(1, cname)])]))
    assert rtp.RtcpPacket.parse(own)[0].chunks[0].items == [(1, cname)]


def test_a_truncated_chunk_is_refused_as_aiortc_refuses_it() -> None:
    payload = pack("!L", SSRC_A) + bytes([1, 40]) + b"short"
    with pytest.raises(ValueError, match="truncated"):
        sdes.parse_sdes(payload, 1)
    with pytest.raises(ValueError, match="source is truncated"):
        sdes.parse_sdes(pack("!L", SSRC_A) + b"\x00\x00\x00\x00", 2)
