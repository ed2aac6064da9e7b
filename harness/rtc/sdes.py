"""RTCP source descriptions read as RFC 3550 writes them: the one place that replaces aiortc's SDES parser.

RFC 3550 §6.5 ends a chunk's item list with one null octet (item type 0, *no* length octet), followed by more
null octets up to the next 32-bit boundary. aiortc 1.x reads the null item as if it had a length octet, so
when a chunk's items end one octet before a boundary it takes the next chunk's SSRC for a length, and the
chunk after that for items: "RTCP SDES item is truncated". aiortc then drops the *whole compound packet*, and
with it the sender reports that came first in it.

Servers built on pion (LiveKit, Galène) send one compound packet per connection: a sender report per stream
followed by one SDES packet with a chunk per stream, so with two streams or more every sender report was
lost. Our receivers then answered with receiver reports whose "last SR" was 0; LiveKit could not measure the
round-trip time to them, assumed its default (70 ms) and held every retransmission back until 100 ms after
the packet's first sending (its sequencer ignores NACKs for a packet until ``min(100 ms, 2 x RTT)`` after
it was sent). Repairs took 90-110 ms through LiveKit where Chromium, whose reports LiveKit could read, got
them in a few ms, and native receivers counted many times the freezes a browser counted in the same room.

:func:`install` replaces ``RtcpSdesPacket.parse`` with one that follows the RFC; items and chunks come out as
aiortc's do. Remove this module when aiortc parses SDES padding itself.
"""

from __future__ import annotations

from struct import unpack_from
from typing import Any

from aiortc import rtp

__all__ = ["install", "parse_sdes"]

END = 0
"""The item type that ends a chunk's item list (RFC 3550 §6.5)."""
AIORTC_PARSE = rtp.RtcpSdesPacket.__dict__["parse"]
"""aiortc's own parser (this module is imported before anything installs the replacement)."""


def parse_sdes(data: bytes, count: int) -> rtp.RtcpSdesPacket:
    """An SDES packet's ``count`` chunks from its payload ``data`` (after the 4-byte RTCP header).

    Raises ``ValueError`` (as aiortc's parser does) when a chunk or an item runs past the end.
    """
    pos = 0
    chunks = []
    for _ in range(count):
        if len(data) < pos + 4:
            raise ValueError("RTCP SDES source is truncated")
        ssrc = unpack_from("!L", data, pos)[0]
        pos += 4
        items: list[tuple[Any, bytes]] = []
        while pos < len(data):
            kind = data[pos]
            if kind == END:
                pos = (pos + 4) & ~3  # the null octet and the padding up to the next 32-bit boundary
                break
            if len(data) < pos + 2:
                raise ValueError("RTCP SDES item is truncated")
            length = data[pos + 1]
            if len(data) < pos + 2 + length:
                raise ValueError("RTCP SDES item is truncated")
            items.append((kind, data[pos + 2:pos + 2 + length]))
            pos += 2 + length
        chunks.append(rtp.RtcpSourceInfo(ssrc=ssrc, items=items))
    return rtp.RtcpSdesPacket(chunks=chunks)


def _parse(cls: type[rtp.RtcpSdesPacket], data: bytes, count: int) -> rtp.RtcpSdesPacket:
    return parse_sdes(data, count)


def install() -> None:
    """Make aiortc parse SDES chunks as RFC 3550 lays them out (idempotent; every connection in the process)."""
    rtp.RtcpSdesPacket.parse = classmethod(_parse)  # type: ignore[method-assign, assignment]
