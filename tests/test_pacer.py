"""The pacer's timing on a fake clock, the departure figures, and paced vs unpaced senders over real WebRTC."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from harness.media import pacer as pacing
from harness.media.departures import Departures
from harness.media.pacer import BURST_S, MAX_QUEUE_S, MIN_SLEEP_S, START_PROBE_BPS, Pacer, pacing_rate_bps


class FakeLoop:
    """A clock and ``call_later`` that run only when the test advances time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], None], FakeLoop.Handle]] = []

    class Handle:
        def __init__(self) -> None:
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def clock(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeLoop.Handle:
        handle = FakeLoop.Handle()
        self.timers.append((self.now + delay, callback, handle))
        return handle

    def run_until(self, end: float) -> None:
        while True:
            live = sorted((t for t in self.timers if not t[2].cancelled), key=lambda t: t[0])
            if not live or live[0][0] > end:
                break
            when, callback, handle = live[0]
            self.timers.remove(live[0])
            self.now = when
            callback()
        self.now = end

    @property
    def armed(self) -> int:
        return sum(1 for t in self.timers if not t[2].cancelled)


def paced(loop: FakeLoop, rate_bps: float) -> tuple[Pacer, Any, list[tuple[float, int]]]:
    sent: list[tuple[float, int]] = []
    p = Pacer(clock=loop.clock, schedule=loop.call_later)
    return p, p.queue(rate_bps, lambda item: sent.append((loop.now, item))), sent


def test_a_frame_larger_than_the_burst_is_spread_at_the_pacing_rate() -> None:
    loop = FakeLoop()
    rate = 800_000  # 100 kB/s: a 1000-byte packet every 10 ms once the burst is spent
    _, queue, sent = paced(loop, rate)
    burst = rate / 8 * BURST_S  # 4000 bytes
    for i in range(20):
        queue.push(i, 1000)
    # Sent at once: while the debt is within the burst (0, 1000, … 4000 bytes ahead): five packets.
    assert [t for t, _ in sent] == [0.0] * 5
    loop.run_until(1.0)
    assert [item for _, item in sent] == list(range(20))  # in order, nothing lost
    times = [t for t, _ in sent]
    gaps = [b - a for a, b in zip(times[5:], times[6:], strict=False)]
    # Then one every 10 ms, up to the timer's granularity (packets due within MIN_SLEEP_S leave early).
    assert all(0.010 - MIN_SLEEP_S - 1e-9 <= g <= 0.010 + MIN_SLEEP_S + 1e-9 for g in gaps), gaps
    # 20 kB at 100 kB/s with a 4 kB head start: the last leaves at about 0.15 s.
    assert 0.15 - 2 * MIN_SLEEP_S <= times[-1] <= 0.15 + 1e-9
    assert burst == 4000


def test_an_idle_queue_regains_its_burst_and_the_debt_never_goes_below_zero() -> None:
    loop = FakeLoop()
    _, queue, sent = paced(loop, 800_000)
    for i in range(5):
        queue.push(i, 1000)
    loop.run_until(10.0)  # long idle: the debt drains to zero, not to a credit of ten seconds
    for i in range(5, 15):
        queue.push(i, 1000)
    at_once = [item for t, item in sent if t == 10.0]
    assert at_once == [5, 6, 7, 8, 9]


def test_a_queue_longer_than_the_limit_drains_faster_than_the_rate() -> None:
    loop = FakeLoop()
    _, queue, sent = paced(loop, 80_000)  # 10 kB/s
    for i in range(60):  # 60 kB: six seconds at the rate, beyond MAX_QUEUE_S
        queue.push(i, 1000)
    loop.run_until(MAX_QUEUE_S + 0.5)
    assert len(sent) == 60 and sent[-1][0] <= MAX_QUEUE_S
    # Still spread out: the burst at the faster rate (30 kB/s for 40 ms) is at most two packets at once.
    times = [t for t, _ in sent]
    assert max(times.count(t) for t in times) <= 2


def test_one_timer_serves_every_queue() -> None:
    loop = FakeLoop()
    p = Pacer(clock=loop.clock, schedule=loop.call_later)
    sent: list[int] = []
    queues = [p.queue(800_000, sent.append) for _ in range(200)]
    for q in queues:
        for i in range(10):
            q.push(i, 1000)
    assert loop.armed == 1 and p.waiting == 200
    loop.run_until(1.0)
    assert len(sent) == 2000 and p.waiting == 0
    # The queues are due at the same moments: one wake-up serves all of them.
    assert p.wakeups <= 10


def test_a_closed_queue_sends_nothing_more_and_a_failing_one_does_not_stop_the_others() -> None:
    loop = FakeLoop()
    p = Pacer(clock=loop.clock, schedule=loop.call_later)
    good: list[int] = []

    def broken(item: int) -> None:
        if item > 5:
            raise RuntimeError("boom")

    bad, ok, closed = p.queue(800_000, broken), p.queue(800_000, good.append), p.queue(800_000, good.append)
    for i in range(10):
        bad.push(i, 1000)
        ok.push(i, 1000)
        closed.push(100 + i, 1000)
    closed.close()
    loop.run_until(1.0)
    # The closed queue sent its first burst before it was closed, nothing after; the good one everything.
    assert sorted(good) == list(range(10)) + [100 + i for i in range(5)]
    assert bad.closed and p.waiting == 0


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer().queue(0, print)


def test_departure_figures_of_a_bursty_and_a_paced_sender() -> None:
    bursty, even = Departures(), Departures()
    for frame in range(10):
        for i in range(5):
            bursty.note(frame * 0.1 + i * 0.0001)
            even.note(frame * 0.1 + i * 0.02)
    b, e = bursty.take(), even.take()
    assert b["send_burst_pct"] == pytest.approx(100 * 40 / 49)
    assert b["send_gap_p50_ms"] == pytest.approx(0.1)
    assert b["send_gap_max_ms"] == pytest.approx(100 - 0.4)
    assert e["send_burst_pct"] == 0 and e["send_gap_p50_ms"] == pytest.approx(20)
    assert e["send_gap_p95_ms"] == pytest.approx(20)
    # The next interval's first gap spans from this one's last packet; nothing new: no figures.
    even.note(0.9 + 0.08 + 0.02)
    assert even.take()["send_gap_max_ms"] == pytest.approx(20)
    assert even.take() == {"send_gap_p50_ms": None, "send_gap_p95_ms": None, "send_gap_max_ms": None,
                           "send_burst_pct": None, "send_jitter_ms": None}


def test_send_jitter_is_rfc3550_jitter_of_departures_against_rtp_time() -> None:
    # Audio, 20 ms frames at 48 kHz. On time: packets leave exactly as far apart as their RTP time says.
    on_time, held, untimed = Departures(48000), Departures(48000), Departures()
    for i in range(200):
        on_time.note(10.0 + i * 0.02, timestamp=(0xFFFFF000 + i * 960) & 0xFFFFFFFF)  # wraps around 2^32
        # Every fifth packet held back 40 ms by a busy sender (the next ones leave on time again).
        held.note(10.0 + i * 0.02 + (0.04 if i % 5 == 0 else 0.0), timestamp=i * 960)
        untimed.note(10.0 + i * 0.02)
    assert on_time.take()["send_jitter_ms"] == pytest.approx(0, abs=1e-6)
    # Two of every five differences are 40 ms off: RFC 3550's running mean settles near 40 * 2 / 5 = 16 ms.
    assert 12 < held.take()["send_jitter_ms"] < 20
    assert untimed.take()["send_jitter_ms"] is None  # no clock rate, no timestamps: no figure


def test_each_event_loop_has_one_pacer() -> None:
    async def two() -> tuple[Pacer, Pacer]:
        return pacing.pacer(), pacing.pacer()

    a, b = asyncio.run(two())
    c, _ = asyncio.run(two())
    assert a is b and c is not a


def test_the_group_key_turns_pacing_off_and_its_default_keeps_old_digests() -> None:
    from harness.media.pool import EncoderPool
    from harness.scenario.scenario import AudioSettings, VideoSettings, parse_scenario

    base = {"name": "s", "groups": [{"name": "g", "count": 2}]}
    off = {"name": "s", "groups": [{"name": "g", "count": 2, "pacing": False}]}
    on = {"name": "s", "groups": [{"name": "g", "count": 2, "pacing": True}]}
    assert parse_scenario(base).groups[0].pacing is True
    assert parse_scenario(on).sha256() == parse_scenario(base).sha256()  # the default is left out of it
    assert parse_scenario(off).groups[0].pacing is False
    assert parse_scenario(off).sha256() != parse_scenario(base).sha256()
    pool = EncoderPool()
    paced = pool.acquire("g", 2, 0, ("video",), VideoSettings(), AudioSettings())
    unpaced = pool.acquire("g", 2, 2, ("video",), VideoSettings(), AudioSettings(), pacing=False)
    assert paced.slot is not unpaced.slot  # never one encoder for both
    assert [t.pacing_bps for t in paced.tracks()] == [pacing_rate_bps(500_000)]  # type: ignore[attr-defined]
    assert [t.pacing_bps for t in unpaced.tracks()] == [None]  # type: ignore[attr-defined]


def test_the_pacing_rate_follows_a_browsers_estimate_not_the_encoders_bitrate() -> None:
    # A small stream keeps the start-up probes' estimate: a 160x90 key frame of ~7 kB fits one 40 ms burst,
    # as Chromium sends its own (at 2.5 x 150 kbit/s it took 75-240 ms).
    assert pacing_rate_bps(150_000) == 2.5 * START_PROBE_BPS
    assert pacing_rate_bps(150_000) / 8 * BURST_S > 7_000
    # A large one: GCC's cap on an application-limited sender, 1.5 x what it sends + 10 kbit/s.
    assert pacing_rate_bps(2_000_000) == 2.5 * 3_010_000
    assert pacing_rate_bps(2_000_000) > pacing_rate_bps(1_000_000) > pacing_rate_bps(100_000)
