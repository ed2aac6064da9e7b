"""Tests for rankings (harness.analysis.ranking): fake sides for the logic, synthetic runs for the derived CPU."""

from __future__ import annotations

from pathlib import Path

from synthetic_runs import write_run, write_set

from harness.analysis.compare import Metric, Side
from harness.analysis.ranking import CPU_PER_STREAM, HEADLINE, rank_metric, rank_systems, with_cpu_per_stream
from harness.analysis.runset import RunRecord, find_runs

LATENCY = Metric("lat", "Latency", "ms", min_abs=1.0)
FPS = Metric("fps", "Frame rate", "fps", lower_is_better=False, min_abs=0.5)


def _side(system: str, values: list[float | None], status: str = "completed", key: str = "lat") -> Side:
    runs = tuple(
        RunRecord(Path(f"/r/{system}{i}"), f"{system}{i}", system, status,
                  summary={key: value} if value is not None else {})
        for i, value in enumerate(values)
    )
    if status != "completed":
        return Side(system, system, (), tuple(f"{r.run_id} left out (status {status})" for r in runs))
    return Side(system, system, runs)


def test_ranks_best_first_with_verdicts_between_neighbours() -> None:
    ranking = rank_metric(LATENCY, [
        _side("slow", [80.0, 81.0, 82.0]),
        _side("fast", [50.0, 51.0, 52.0]),
        _side("fast2", [50.5, 51.5, 52.5]),
    ], seed=1)
    assert [s.system for s in ranking.standings] == ["fast", "fast2", "slow"]
    assert [s.rank for s in ranking.standings] == [1, 2, 3]
    first, second, third = ranking.standings
    assert first.verdict is None and first.above is None and first.median == 51.0
    assert first.ci is not None and first.ci.low <= 51.0 <= first.ci.high
    assert (second.above, second.verdict) == ("fast", "same")
    assert (third.above, third.verdict) == ("fast2", "worse")
    assert "significant" in third.reason


def test_higher_is_better_ranks_descending() -> None:
    ranking = rank_metric(FPS, [_side("a", [20.0] * 3, key="fps"), _side("b", [30.0] * 3, key="fps")])
    assert [s.system for s in ranking.standings] == ["b", "a"]
    assert ranking.standings[1].verdict == "worse"


def test_one_repetition_ranks_with_unknown_verdicts() -> None:
    ranking = rank_metric(LATENCY, [_side("a", [10.0]), _side("b", [20.0])])
    assert [(s.system, s.rank, s.verdict) for s in ranking.standings] == [("a", 1, None), ("b", 2, "unknown")]


def test_invalid_and_unmeasured_systems_are_listed_never_ranked() -> None:
    ranking = rank_metric(LATENCY, [
        _side("bad", [1.0, 1.0, 1.0], status="invalid"),
        _side("noserver", [None, None, None]),
        _side("ok", [10.0, 11.0, 12.0]),
    ])
    assert [(s.system, s.rank) for s in ranking.standings] == [("ok", 1), ("bad", None), ("noserver", None)]
    assert "invalid" in ranking.standings[1].note
    assert "not measured" in ranking.standings[2].note
    data = ranking.to_dict()
    assert data["standings"][0]["ci"] is not None and data["standings"][1]["rank"] is None


def test_ties_keep_the_plan_order() -> None:
    ranking = rank_metric(LATENCY, [_side("x", [5.0] * 3), _side("y", [5.0] * 3)])
    assert [s.system for s in ranking.standings] == ["x", "y"]
    assert ranking.standings[1].verdict == "same"


def test_rank_systems_on_synthetic_runs_derives_cpu_per_stream(tmp_path: Path) -> None:
    set_dir = write_set(tmp_path, {"fast": 50.0, "slow": 80.0}, 3, seed=5)
    write_run(set_dir, "floor", seed=99, latency_ms=40.0, sut_cpu=None)  # p2p-like: no server
    runs = [with_cpu_per_stream(r) for r in find_runs(set_dir)]
    # One received video stream per synthetic run: CPU per stream is the server's mean CPU.
    fast = next(r for r in runs if r.system == "fast")
    assert fast.summary is not None
    assert abs(fast.summary[CPU_PER_STREAM] - fast.summary["sut_cpu_pct"]["mean"]) < 1e-3
    groups = [(name, [r for r in runs if r.system == name]) for name in ("slow", "fast", "floor")]
    rankings = {r.metric.key: r for r in rank_systems(groups, seed=3)}
    assert [r.metric.key for r in rank_systems(groups)] == [m.key for m in HEADLINE]
    video = rankings["video_latency_ms.p50"]
    assert [(s.system, s.rank) for s in video.standings] == [("floor", 1), ("fast", 2), ("slow", 3)]
    assert video.standings[1].verdict == "unknown"  # one floor run: too few to judge
    assert video.standings[2].verdict == "worse"
    cpu = rankings[CPU_PER_STREAM]
    assert [s.rank for s in cpu.standings] == [1, 2, None]
    assert cpu.standings[2].system == "floor" and "not measured" in cpu.standings[2].note


def test_server_cpu_of_neighbours_under_different_budgets_is_not_comparable() -> None:
    cpu = next(metric for metric in HEADLINE if metric.key == CPU_PER_STREAM)

    def side(system: str, values: list[float], budget: float | None) -> Side:
        return Side(system, system, tuple(
            RunRecord(Path(f"/r/{system}{i}"), f"{system}{i}", system, "completed", summary={CPU_PER_STREAM: v},
                      server_cpus=budget) for i, v in enumerate(values)))

    ranking = rank_metric(cpu, [side("janus", [2.0, 2.1, 2.2], None), side("reference", [1.0, 1.1, 1.2], 0.25),
                                side("livekit", [3.0, 3.1, 3.2], None)], seed=1)
    by_system = {s.system: s for s in ranking.standings}
    assert by_system["reference"].rank == 1
    assert by_system["janus"].verdict == "not comparable" and "0.25 core" in by_system["janus"].reason
    assert by_system["livekit"].verdict == "worse"  # janus and livekit: both without a budget
