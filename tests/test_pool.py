"""The encoder pool: slots of shared sources and encoders, their life cycle and counters (no network)."""

from __future__ import annotations

import asyncio

import pytest

from harness.media.pool import MAX_PUBLISHERS_PER_ENCODER, EncoderPool
from harness.scenario.scenario import AudioSettings, VideoSettings

VIDEO = VideoSettings(width=160, height=96, fps=30)


def test_slots_fill_up_to_the_share_and_end_with_their_last_user() -> None:
    async def run() -> None:
        pool = EncoderPool()
        leases = [pool.acquire("g", 2, 2 * i, ("audio", "video"), VIDEO, AudioSettings()) for i in range(5)]
        assert pool.slots == 3  # 2 + 2 + 1
        assert leases[0].slot is leases[1].slot and leases[2].slot is not leases[1].slot
        assert leases[0].slot.video is not None and leases[0].slot.video.stream_id == 0
        assert leases[2].slot.video is not None and leases[2].slot.video.stream_id == 4
        tracks = leases[0].tracks()
        assert [t.kind for t in tracks] == ["audio", "video"]  # the encoders start with their first track
        await asyncio.sleep(0.3)
        for t in tracks:
            t.stop()
        await pool.release(leases[0])
        await pool.release(leases[0])  # twice is once
        assert pool.slots == 3
        produced_before, _ = pool.counters()
        await pool.release(leases[1])
        assert pool.slots == 2
        assert pool.counters()[0] >= produced_before > 0  # an ended slot's frames stay counted
        other = pool.acquire("other", 2, 40, ("video",), VIDEO, AudioSettings())
        assert other.slot is not leases[3].slot and pool.slots == 3  # groups never share
        for lease in (*leases[2:], other):
            await pool.release(lease)
        assert pool.slots == 0

    asyncio.run(run())


def test_share_is_capped() -> None:
    pool = EncoderPool()
    with pytest.raises(ValueError, match="publishers_per_encoder"):
        pool.acquire("g", MAX_PUBLISHERS_PER_ENCODER + 1, 0, ("video",), VIDEO, AudioSettings())


def test_a_leaving_publisher_takes_its_unsent_tracks_off_the_shared_encoder() -> None:
    # A connection closed before it came up never ran its sender, and aiortc stops a sender's track only then.
    async def run() -> tuple[int, int, int]:
        pool = EncoderPool()
        stayer, leaver = (pool.acquire("g", 2, 2 * i, ("video",), VIDEO, AudioSettings()) for i in range(2))
        assert stayer.slot is leaver.slot and stayer.slot.encoder is not None
        fanout = stayer.slot.encoder.fanout
        stayer.tracks()
        leaver.tracks()
        leaver.tracks()  # a second connection (a rejoin), the first never connected
        during = fanout.consumers
        await pool.release(leaver)
        after = fanout.consumers
        await pool.release(stayer)
        return during, after, fanout.consumers

    assert asyncio.run(run()) == (3, 1, 0)
