"""The shared Opus encoder's RTP clock follows the source's sample clock across frames the source skipped."""

from __future__ import annotations

from harness.media.audio import AudioSource
from harness.media.encoder import SharedAudioEncoder


def test_skipped_source_frames_are_a_jump_in_rtp_time_not_a_drift() -> None:
    source = AudioSource(1, sample_rate=48000)
    encoder = SharedAudioEncoder(source)
    stamps = []
    first = 48000 * 1_800_000_000  # an absolute sample index (a UNIX time)
    # Frames at 0, 20, 40 ms, then the source skipped two (a late generator), then 100 and 120 ms.
    for n in (0, 1, 2, 5, 6):
        packet = encoder._encode(source.frame_at(first + 960 * n), False)
        assert packet is not None
        stamps.append(int(packet.pts or 0))
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert steps == [960, 960, 3 * 960, 960]
