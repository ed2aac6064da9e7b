"""The probing receive-side estimate (``harness.rtc.probe_estimate``): a burst the link carries lifts the estimate
at once and is reported several times; the same burst through a narrower link does not."""

from __future__ import annotations

from harness.rtc.probe_estimate import ProbingEstimator

MEDIA_BPS = 150_000
PACKET = 1000  # bytes


def _packets(seconds: float, probe_at: float, probe_bps: int) -> list[tuple[float, int]]:
    """(send ms, bytes): media at MEDIA_BPS, plus padding during 200 ms from ``probe_at`` to reach ``probe_bps``."""
    out = []
    gap = PACKET * 8 * 1000 / MEDIA_BPS
    t = 0.0
    while t < seconds * 1000:
        out.append((t, PACKET))
        t += gap
    pad_gap = PACKET * 8 * 1000 / (probe_bps - MEDIA_BPS)
    t = probe_at * 1000
    while t < probe_at * 1000 + 200:
        out.append((t, PACKET))
        t += pad_gap
    return sorted(out)


def _through(packets: list[tuple[float, int]], link_bps: int, delay_ms: float = 20) -> list[tuple[float, float, int]]:
    """(send ms, arrival ms, bytes) through a FIFO link of ``link_bps``."""
    out, free_at = [], 0.0
    for send, size in packets:
        free_at = max(send + delay_ms, free_at) + size * 8 * 1000 / link_bps
        out.append((send, free_at, size))
    return out


def _run(link_bps: int) -> tuple[ProbingEstimator, list[tuple[float, int]]]:
    estimator = ProbingEstimator()
    reports = []
    for send, arrival, size in _through(_packets(10, probe_at=8, probe_bps=500_000), link_bps):
        abs_send_time = int(send / 1000 * (1 << 18)) % (1 << 24)
        result = estimator.add(arrival_time_ms=int(arrival), abs_send_time=abs_send_time, payload_size=size, ssrc=1)
        if result is not None:
            reports.append((arrival, result[0]))
    return estimator, reports


def test_a_probe_the_link_carries_lifts_the_estimate_and_is_reported_several_times() -> None:
    _, reports = _run(link_bps=2_000_000)
    before = [bps for t, bps in reports if t < 8000]
    during = [bps for t, bps in reports if 8000 <= t < 8700]
    assert before and max(before) < 1.6 * MEDIA_BPS + 10_000  # aiortc's own creep, at most 1.5x what arrives
    assert max(during) > 400_000  # the burst's rate
    assert len(during) >= 3  # a probing SFU (LiveKit) wants three reports within its probe


def test_the_same_probe_through_a_narrower_link_does_not() -> None:
    _, reports = _run(link_bps=300_000)
    during = [bps for t, bps in reports if 8000 <= t < 9000]
    assert all(bps < 300_000 for bps in during), during
