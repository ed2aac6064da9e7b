"""The native receiver's playout policy (unit: hand-made RTP packets and a hand-turned clock, no network)."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from harness.rtc.jitter import AudioPlayoutBuffer, ForwardingAudioBuffer, NackRetrier, VideoPlayoutBuffer, frame_start


def pkt(seq: int, ts: int, marker: bool, data: bytes, payload: bytes = b"") -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker), payload=payload)
    p._data = data  # type: ignore[attr-defined]  # what aiortc's receiver sets after depayloading
    return p


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def vp8(seq: int, frame: int, part: int, parts: int, key: bool = False) -> RtpPacket:
    """Packet ``part`` of ``parts`` of VP8 frame number ``frame`` (RFC 7741 descriptor, no extensions)."""
    descriptor = bytes([0x10 if part == 0 else 0x00])
    header = bytes([0x00 if key else 0x01]) if part == 0 else b""
    body = header + bytes([frame % 256, part])
    return pkt(seq, frame * 3000, part == parts - 1, body, descriptor + body)


def test_frame_completes_on_its_marker_packet() -> None:
    jb = VideoPlayoutBuffer(capacity=128)
    assert jb.add(pkt(10, 3000, False, b"a"))[1] is None
    _, frame = jb.add(pkt(11, 3000, True, b"b"))
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 3000
    _, frame = jb.add(pkt(12, 6000, True, b"c"))  # a one-packet frame
    assert frame is not None and frame.data == b"c"


def test_gap_waits_for_the_missing_packet() -> None:
    clock = Clock()
    jb = VideoPlayoutBuffer(capacity=128, clock=clock)
    jb.add(pkt(10, 3000, False, b"a"))
    assert jb.add(pkt(12, 3000, True, b"c"))[1] is None  # 11 is missing
    clock.now += 0.15  # within the wait
    _, frame = jb.add(pkt(11, 3000, False, b"b"))  # the retransmission arrives
    assert frame is not None and frame.data == b"abc"


def test_lost_marker_falls_back_to_timestamp_change() -> None:
    jb = VideoPlayoutBuffer(capacity=128)
    jb.add(pkt(10, 3000, False, b"a"))
    jb.add(pkt(11, 3000, False, b"b"))  # its marker never came
    _, frame = jb.add(pkt(12, 6000, False, b"c"))
    assert frame is not None and frame.data == b"ab" and frame.timestamp == 3000


def test_a_repair_hands_on_every_frame_it_completes_at_once() -> None:
    """The backlog behind a gap drains on the packet that fills it (aiortc: one frame per later packet)."""
    clock = Clock()
    jb = VideoPlayoutBuffer(capacity=128, clock=clock)
    jb.mime = "video/vp8"
    assert jb.add(vp8(1, 1, 0, 1, key=True))[1] is not None
    for seq in range(3, 8):  # frame 2 (seq 2) lost; frames 3..7 wait behind it
        assert jb.add(vp8(seq, seq, 0, 1))[1] is None
    _, frame = jb.add(vp8(2, 2, 0, 1))
    assert frame is not None and frame.timestamp == 2 * 3000
    assert [f.timestamp // 3000 for f in jb.ready] == [3, 4, 5, 6, 7]


def test_an_unrepaired_frame_is_dropped_after_the_wait_and_a_key_frame_requested() -> None:
    clock = Clock()
    jb = VideoPlayoutBuffer(capacity=128, clock=clock)
    jb.mime = "video/vp8"
    jb.add(vp8(1, 1, 0, 2, key=True))
    assert jb.add(vp8(2, 1, 1, 2, key=True))[1] is not None
    jb.add(vp8(3, 2, 0, 2))  # frame 2's second packet (seq 4) is lost
    clock.now += 0.01
    pli, frame = jb.add(vp8(5, 3, 0, 1))
    assert (pli, frame) == (False, None)  # frame 3 waits behind frame 2
    clock.now += jb.wait_s
    pli, frame = jb.add(vp8(6, 4, 0, 1))  # the wait is over: frame 2 goes, and 3 and 4 cannot be decoded
    assert pli is True and frame is None and not jb.ready
    assert jb.dropped_frames == 3
    clock.now += 0.01
    pli, frame = jb.add(vp8(7, 5, 0, 1))  # still no key frame: discarded, no second request yet
    assert (pli, frame) == (False, None)
    clock.now += 0.3
    pli, frame = jb.add(vp8(8, 6, 0, 1))  # a repeated request while none comes
    assert pli is True and frame is None
    _, frame = jb.add(vp8(9, 7, 0, 1, key=True))
    assert frame is not None and frame.timestamp == 7 * 3000
    _, frame = jb.add(vp8(10, 8, 0, 1))
    assert frame is not None  # decodable again
    jb.add(vp8(4, 2, 1, 2))  # the repair of a dropped frame, far too late: ignored
    assert not jb.ready


def test_the_rest_of_a_frame_whose_start_was_lost_is_dropped_with_it() -> None:
    clock = Clock()
    jb = VideoPlayoutBuffer(capacity=128, clock=clock)
    jb.mime = "video/vp8"
    assert jb.add(vp8(1, 1, 0, 1, key=True))[1] is not None
    jb.add(vp8(3, 2, 1, 3))  # frame 2's first packet (seq 2) is lost
    jb.add(vp8(4, 2, 2, 3))
    clock.now += 1.0
    _, frame = jb.add(vp8(5, 3, 0, 1, key=True))
    assert frame is not None and frame.timestamp == 3 * 3000 and jb.dropped_frames == 1


def test_a_complete_key_frame_behind_a_gap_is_handed_on_at_once() -> None:
    """As Chromium's frame buffer does: a decoder can start again at a key frame, so the older incomplete frames
    are dropped then, not when their repairs are given up (a layer switch behind a lossy link)."""
    clock = Clock()
    jb = VideoPlayoutBuffer(capacity=128, clock=clock)
    jb.mime = "video/vp8"
    assert jb.add(vp8(1, 1, 0, 1, key=True))[1] is not None
    jb.add(vp8(3, 2, 1, 2))  # frame 2's first packet (seq 2) is lost
    assert jb.add(vp8(4, 3, 0, 1))[1] is None  # frame 3 waits behind it
    assert jb.add(vp8(5, 4, 0, 3, key=True))[1] is None  # the key frame is not complete yet
    clock.now += 0.01
    assert jb.add(vp8(7, 4, 2, 3, key=True))[1] is None  # nor now (seq 6 missing)
    pli, frame = jb.add(vp8(6, 4, 1, 3, key=True))  # long before the gap's wait is over
    assert pli is False and frame is not None and frame.timestamp == 4 * 3000
    assert jb.dropped_frames == 2  # frames 2 and 3
    _, frame = jb.add(vp8(8, 5, 0, 1))
    assert frame is not None  # the frames after it are decodable
    jb.add(vp8(2, 2, 0, 2))  # the late repair of a dropped frame: ignored
    assert not jb.ready


def test_packets_of_frames_playout_has_passed_are_not_asked_for_again() -> None:
    clock = Clock()
    jb = VideoPlayoutBuffer(capacity=128, clock=clock)
    jb.mime = "video/vp8"
    jb.add(vp8(1, 1, 0, 1, key=True))
    jb.add(vp8(3, 3, 0, 1))  # seq 2 lost
    retrier = NackRetrier(clock=clock)
    assert retrier.due({2}) == [] and retrier.pending  # aiortc has just asked for it
    assert jb.passed({2}) == set()  # its frame still waits
    jb.add(vp8(4, 4, 0, 1, key=True))  # a key frame: playout goes past seq 2
    assert jb.passed({2, 6}) == {2}
    retrier.forget({2})
    assert not retrier.pending and retrier.repaired == 0  # given up, not counted as a repair


def test_a_delta_frame_behind_a_gap_still_waits() -> None:
    clock = Clock()
    jb = VideoPlayoutBuffer(capacity=128, clock=clock)
    jb.mime = "video/vp8"
    jb.add(vp8(1, 1, 0, 1, key=True))
    assert jb.add(vp8(3, 3, 0, 1))[1] is None  # seq 2 lost: a complete delta frame cannot jump it
    _, frame = jb.add(vp8(2, 2, 0, 1))
    assert frame is not None and frame.timestamp == 2 * 3000 and [f.timestamp for f in jb.ready] == [3 * 3000]


def test_the_first_frame_a_decoder_gets_is_a_key_frame() -> None:
    jb = VideoPlayoutBuffer(capacity=128)
    jb.mime = "video/vp8"
    pli, frame = jb.add(vp8(1, 1, 0, 1))  # joined mid-stream: a delta frame first
    assert pli is True and frame is None
    assert jb.add(vp8(2, 2, 0, 1, key=True))[1] is not None


def test_frame_start_reads_vp8_and_h264() -> None:
    assert frame_start("video/vp8", bytes([0x10, 0x00])) == (True, True)
    assert frame_start("video/vp8", bytes([0x10, 0x01])) == (True, False)
    assert frame_start("video/vp8", bytes([0x00, 0x00])) == (False, False)  # a continuation
    # X with I (15-bit picture id) and L and T: four bytes before the VP8 header.
    assert frame_start("video/vp8", bytes([0x90, 0xE0, 0x80, 0x01, 0x05, 0x00, 0x00])) == (True, True)
    assert frame_start("video/h264", bytes([0x65])) == (True, True)  # IDR slice
    assert frame_start("video/h264", bytes([0x41])) == (True, False)
    assert frame_start("video/h264", bytes([0x7C, 0x85])) == (True, True)  # FU-A start of an IDR
    assert frame_start("video/h264", bytes([0x7C, 0x05])) == (False, False)
    stap = bytes([0x78, 0x00, 0x01, 0x67, 0x00, 0x01, 0x68])  # STAP-A with SPS and PPS
    assert frame_start("video/h264", stap) == (True, True)


def test_audio_skips_a_lost_packet_instead_of_holding_the_rest() -> None:
    jb = AudioPlayoutBuffer(capacity=16, prefetch=4)
    out = []
    for seq in [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]:  # 3 never comes
        _, frame = jb.add(pkt(seq, seq * 960, False, bytes([seq])))
        out += ([frame] if frame is not None else []) + list(jb.ready)
        jb.ready.clear()
    assert [f.data[0] for f in out] == [0, 1, 2, 4, 5, 6]  # a playout depth of 4 packets, 3 skipped


def test_nacks_are_repeated_until_repaired_and_repairs_are_timed() -> None:
    clock = Clock()
    retrier = NackRetrier(clock=clock)
    assert retrier.due({5}) == []  # aiortc has just asked
    clock.now += 0.01
    assert retrier.due({5}) == []
    clock.now += 1.5 * retrier.repair_s
    assert retrier.due({5}) == [5]
    clock.now += 0.01
    assert retrier.due(set()) == [] and retrier.repaired == 1 and not retrier.pending
    assert retrier.wait_s >= 0.2


def test_a_frame_waits_as_long_as_the_slow_repairs_take() -> None:
    """Repairs through an SFU are bimodal: most in ms, a few (lost before the SFU) in hundreds of ms. The wait
    covers the slow ones, where a mean of both would drop those frames; and never beyond Chromium's 3 s."""
    clock = Clock()
    retrier = NackRetrier(clock=clock)
    for seq, took in enumerate([0.005] * 20 + [0.25] + [0.005] * 10):
        retrier.due({seq})
        clock.now += took
        retrier.due(set())
    assert retrier.repair_s < 0.05  # the mean alone would wait the 200 ms floor
    assert retrier.wait_s == pytest.approx(1.5 * 0.25)
    retrier.due({99})
    clock.now += 0.9  # a repair that took almost a second
    retrier.due(set())
    assert retrier.wait_s <= 3.0


def test_relay_audio_is_handed_on_at_once() -> None:
    jb = ForwardingAudioBuffer(capacity=16)
    for seq in range(3):
        _, frame = jb.add(pkt(seq, seq * 960, False, bytes([seq])))
        assert frame is not None and frame.data == bytes([seq]) and frame.timestamp == seq * 960
