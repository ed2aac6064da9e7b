"""Marker-bit frame completion (unit: hand-made RTP packets, no network)."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from harness.rtc.jitter import MarkerJitterBuffer


def pkt(seq: int, ts: int, marker: bool, data: bytes) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker))
    p._data = data  # type: ignore[attr-defined]  # what aiortc's receiver sets after depayloading
    return p


def test_frame_completes_on_its_marker_packet() -> None:
    jb = MarkerJitterBuffer(capacity=128, is_video=True)
    assert jb.add(pkt(10, 3000, False, b"a"))[1] is None
    _, frame = jb.add(pkt(11, 3000, True, b"b"))
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 3000
    _, frame = jb.add(pkt(12, 6000, True, b"c"))  # a one-packet frame
    assert frame is not None and frame.data == b"c"


def test_gap_waits_for_the_missing_packet() -> None:
    jb = MarkerJitterBuffer(capacity=128, is_video=True)
    jb.add(pkt(10, 3000, False, b"a"))
    assert jb.add(pkt(12, 3000, True, b"c"))[1] is None  # 11 is missing
    _, frame = jb.add(pkt(11, 3000, False, b"b"))  # the retransmission arrives
    assert frame is not None and frame.data == b"abc"


def test_lost_marker_falls_back_to_timestamp_change() -> None:
    jb = MarkerJitterBuffer(capacity=128, is_video=True)
    jb.add(pkt(10, 3000, False, b"a"))
    jb.add(pkt(11, 3000, False, b"b"))  # its marker never came
    _, frame = jb.add(pkt(12, 6000, False, b"c"))
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 3000


def test_relay_audio_is_handed_on_at_once() -> None:
    from harness.rtc.jitter import ForwardingAudioBuffer

    jb = ForwardingAudioBuffer(capacity=16)
    for seq in range(3):
        _, frame = jb.add(pkt(seq, seq * 960, False, bytes([seq])))
        assert frame is not None and frame.data == bytes([seq]) and frame.timestamp == seq * 960
