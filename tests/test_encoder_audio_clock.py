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


def test_an_audio_frame_is_sent_in_the_source_step_that_produced_it() -> None:
    """No event-loop pass between microphone and wire: on a busy loop each one made the packet leave late."""
    import asyncio

    async def main() -> list[tuple[int, int]]:
        source = AudioSource(2, sample_rate=48000)
        encoder = SharedAudioEncoder(source)
        sent: list[object] = []
        track = encoder.track()
        track.deliver = sent.append  # what a packetized sender does with each packet
        seen: list[tuple[int, int]] = []  # packets sent before and after each frame the source pushed
        push = source.fanout.push

        def watched(frame: object) -> None:
            before = len(sent)
            push(frame)  # type: ignore[arg-type]
            seen.append((before, len(sent)))

        source.fanout.push = watched  # type: ignore[method-assign]
        await encoder.start()
        await asyncio.sleep(0.15)
        await encoder.stop()
        await source.stop()
        return seen

    seen = asyncio.run(main())
    assert len(seen) >= 5
    assert all(after == before + 1 for before, after in seen[1:]), seen  # each frame's packet left at once
