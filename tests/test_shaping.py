"""What a link does to packets (harness.testbed.shaping), on a made-up clock; and what netem would be told."""

from __future__ import annotations

import random
import statistics

import pytest

from harness.scenario.network import BurstLoss, Shape
from harness.testbed.netem import netem_argv, qdisc_counts, tbf_argv
from harness.testbed.shaping import Shaper


def run(shaper: Shaper, packets: int, interval_s: float, size: int = 1200) -> list[float | None]:
    return [shaper.admit(i * interval_s, size) for i in range(packets)]


def test_a_clean_shape_changes_nothing() -> None:
    shaper = Shaper(Shape())
    assert run(shaper, 100, 0.01) == [i * 0.01 for i in range(100)]
    assert shaper.counters.packets == 100 and shaper.counters.bytes == 120000


def test_delay_and_uniform_jitter() -> None:
    shaper = Shaper(Shape(delay_ms=50, jitter_ms=10), random.Random(1))
    delays = [(t - i * 0.001) * 1000 for i, t in enumerate(run(shaper, 20000, 0.001)) if t is not None]
    assert 40 <= min(delays) and max(delays) <= 60
    assert statistics.mean(delays) == pytest.approx(50, abs=0.2)
    # Uniform on ±10 ms: standard deviation 10 / sqrt(3).
    assert statistics.pstdev(delays) == pytest.approx(10 / 3**0.5, rel=0.03)


def test_random_loss_rate() -> None:
    shaper = Shaper(Shape(loss_pct=5), random.Random(2))
    lost = run(shaper, 40000, 0.001).count(None)
    # Binomial: mean 2000, sigma 44.
    assert 1780 < lost < 2220
    assert shaper.counters.lost == lost


def test_gilbert_elliott_loss_comes_in_bursts() -> None:
    burst = BurstLoss(p_pct=1, r_pct=20, loss_bad_pct=100)
    shaper = Shaper(Shape(burst=burst), random.Random(3))
    outcome = run(shaper, 100000, 0.001)
    lost = outcome.count(None)
    assert lost / len(outcome) * 100 == pytest.approx(burst.mean_loss_pct, rel=0.1)
    runs, current = [], 0
    for t in outcome:
        if t is None:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    assert statistics.mean(runs) == pytest.approx(100 / burst.r_pct, rel=0.15)  # mean burst: 1 / r packets


def test_rate_limit_holds_its_rate_and_bounds_its_queue() -> None:
    # 1200-byte packets offered at 960 kbit/s into 480 kbit/s with a 100 ms queue, for 10 s.
    shaper = Shaper(Shape(rate_kbps=480, queue_ms=100))
    times = run(shaper, 1000, 0.01)
    passed = [t for t in times if t is not None]
    assert len(passed) * 1200 * 8 / 10 / 1000 == pytest.approx(480, rel=0.03)
    waits = [t - i * 0.01 for i, t in enumerate(times) if t is not None]
    assert max(waits) <= 0.1 + 1e-9
    assert shaper.counters.queue_drops == times.count(None) > 0
    assert all(b >= a for a, b in zip(passed, passed[1:], strict=False))  # a queue keeps the order


def test_rate_limit_lets_a_short_burst_through_at_once() -> None:
    shaper = Shaper(Shape(rate_kbps=1000))
    # After an idle second the bucket holds 5 ms of traffic (625 bytes) or 3000 bytes, whichever is more.
    assert shaper.admit(1.0, 1200) == 1.0
    assert shaper.admit(1.0, 1200) == 1.0
    third = shaper.admit(1.0, 1200)  # 600 bytes left: it waits for the other 600 at 1 Mbit/s
    assert third is not None and third == pytest.approx(1.0 + 600 * 8 / 1e6)


def test_a_new_shape_applies_from_then_on() -> None:
    shaper = Shaper(Shape(delay_ms=10))
    assert shaper.admit(0.0, 100) == pytest.approx(0.01)
    shaper.set_shape(Shape(delay_ms=200))
    assert shaper.admit(1.0, 100) == pytest.approx(1.2)
    assert shaper.take_counters().packets == 2 and shaper.counters.packets == 0


def test_netem_is_told_the_same_shape() -> None:
    assert netem_argv(Shape(delay_ms=50, jitter_ms=10, loss_pct=2)) == [
        "netem", "limit", "100000", "delay", "50ms", "10ms", "loss", "random", "2%"]
    # netem has one loss model: random loss folds into both Gilbert–Elliott states.
    argv = netem_argv(Shape(loss_pct=10, burst=BurstLoss(p_pct=1, r_pct=25, loss_bad_pct=50)))
    assert argv[-6:] == ["loss", "gemodel", "1%", "25%", "55%", "10%"]
    assert tbf_argv(Shape()) is None
    assert tbf_argv(Shape(rate_kbps=800, queue_ms=150)) == ["tbf", "rate", "800kbit", "burst", "3000",
                                                           "latency", "150ms"]


def test_qdisc_counters_are_read_from_tc_json() -> None:
    text = ('[{"kind":"netem","handle":"1:","bytes":1000,"packets":10,"drops":2},'
            '{"kind":"tbf","handle":"10:","parent":"1:1","bytes":900,"packets":9,"drops":1}]')
    assert qdisc_counts(text) == (10, 1000, 2, 1)
    assert qdisc_counts("") == (0, 0, 0, 0)
