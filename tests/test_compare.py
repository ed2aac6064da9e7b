"""Tests for harness.analysis.compare, harness.analysis.verdicts and ``confbench compare`` on synthetic run sets."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from synthetic_runs import SCENARIO, write_run, write_set

from harness.analysis.compare import METRICS, Metric, compare_metric, compare_paths
from harness.analysis.verdicts import format_markdown, format_table, junit_cases
from harness.cli import main
from harness.errors import CompareError

LATENCY = Metric("video_latency_ms.p50", "Video latency p50", "ms", min_abs=2.0)


def test_five_repeated_pairs_of_the_same_system_are_all_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for pair in range(5):
        base = write_set(tmp_path / f"a{pair}", {"p2p": 50.0}, 5, seed=10 * pair + 1)
        cand = write_set(tmp_path / f"b{pair}", {"p2p": 50.0}, 5, seed=10 * pair + 2)
        (comparison,) = compare_paths(str(base), str(cand))
        verdicts = {r.metric.key: r.verdict for r in comparison.results}
        assert set(verdicts.values()) <= {"same", "unknown"}, verdicts
        assert verdicts["video_latency_ms.p50"] == "same"
        assert main(["compare", str(base), str(cand)]) == 0
    assert "no metric is worse" in capsys.readouterr().out


def test_candidate_30ms_slower_is_worse_and_fails_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_set(tmp_path / "base", {"p2p": 50.0}, 5, seed=1)
    cand = write_set(tmp_path / "cand", {"p2p": 80.0}, 5, seed=2)
    junit, markdown = tmp_path / "out.xml", tmp_path / "out.md"
    code = main(["compare", str(base), str(cand), "--junit", str(junit), "--markdown", str(markdown)])
    assert code == 1
    out = capsys.readouterr().out
    assert "WORSE" in out and "video_latency_ms.p50" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests", "0")) == len(METRICS)
    failed = {case.get("name"): case.find("failure") for case in suite.iter("testcase")
              if case.find("failure") is not None}
    assert {"video_latency_ms.p50", "video_latency_ms.p95", "audio_latency_ms.p50"} <= set(failed)
    message = failed["video_latency_ms.p50"].get("message", "")  # type: ignore[union-attr]
    assert "Mann-Whitney" in message and "minimum effect 10%" in message and "baseline" in message
    assert all(case.get("classname") == "confbench.synthetic.p2p" for case in suite.iter("testcase"))
    assert "**worse**" in markdown.read_text()


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_set(tmp_path / "base", {"p2p": 50.0}, 3, seed=1)
    cand = write_set(tmp_path / "cand", {"p2p": 80.0}, 3, seed=2)
    assert main(["compare", str(base), str(cand), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    latency = next(m for m in document["comparisons"][0]["metrics"] if m["metric"] == "video_latency_ms.p50")
    # Three repetitions a side: the rank test could never reach 0.05, so the intervals decide.
    assert latency["verdict"] == "worse" and latency["method"] == "ci-overlap"
    assert 1.4 < latency["ratio"] < 1.8 and len(latency["ratio_ci"]) == 2
    assert "p2p:video_latency_ms.p50" in document["worse"]


def test_systems_within_a_comparison_run_set(tmp_path: Path) -> None:
    both = write_set(tmp_path, {"fast": 50.0, "slow": 80.0}, 3, seed=4)
    (comparison,) = compare_paths("fast", "slow", within=both)
    assert comparison.baseline.system == "fast" and comparison.candidate.system == "slow"
    assert len(comparison.baseline.runs) == 3
    latency = next(r for r in comparison.results if r.metric.key == "video_latency_ms.p50")
    assert latency.verdict == "worse"
    assert main(["compare", "fast", "slow", "--in", str(both)]) == 1
    assert main(["compare", "fast", "nosuch", "--in", str(both)]) == 2


def test_different_scenarios_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_run(tmp_path / "a", "p2p", seed=1)
    other = dict(SCENARIO, duration_s=20)
    cand = write_run(tmp_path / "b", "p2p", seed=2, scenario=other)
    with pytest.raises(CompareError, match="different scenarios"):
        compare_paths(str(base), str(cand))
    assert main(["compare", str(base), str(cand)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different scenarios" in err[0]


def test_single_runs_give_unknown_and_exit_0(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", "p2p", seed=1)
    cand = write_run(tmp_path / "b", "p2p", seed=2, latency_ms=200.0)
    (comparison,) = compare_paths(str(base), str(cand))
    assert {r.verdict for r in comparison.results} == {"unknown"}
    assert main(["compare", str(base), str(cand)]) == 0
    assert all(case.skipped for case in junit_cases([comparison]))


def test_failed_runs_are_left_out_with_a_note(tmp_path: Path) -> None:
    base = write_set(tmp_path / "base", {"p2p": 50.0}, 2, seed=1)
    write_run(base, "p2p", seed=99, status="failed", latency_ms=500.0)
    cand = write_set(tmp_path / "cand", {"p2p": 50.0}, 2, seed=2)
    (comparison,) = compare_paths(str(base), str(cand))
    assert len(comparison.baseline.runs) == 2
    assert any("status failed" in note for note in comparison.notes)
    assert "left out" in format_table([comparison])


def test_minimum_effect_is_needed_and_settable_in_the_scenario(tmp_path: Path) -> None:
    base = [100.0, 101.0, 99.0, 100.5, 99.5]
    cand = [106.0, 107.0, 105.0, 106.5, 105.5]  # clearly different, but only 6 %
    assert compare_metric(LATENCY, base, cand).verdict == "same"
    assert "smaller than the minimum effect" in compare_metric(LATENCY, base, cand).reason
    assert compare_metric(LATENCY, base, cand, min_effect=0.05).verdict == "worse"
    # Higher is better for frame rate: a drop is worse, a rise better.
    fps = Metric("fps.p50", "Frame rate", "fps", lower_is_better=False)
    assert compare_metric(fps, [30.0] * 3 + [29.9, 30.1], [20.0, 20.5, 19.5, 20.2, 19.8]).verdict == "worse"
    assert compare_metric(LATENCY, cand, base, min_effect=0.05).verdict == "better"
    # And from the scenario's [min_effect] table, through the manifest.
    scenario = dict(SCENARIO, min_effect={"video_latency_ms.p50": 0.01})
    a = write_set(tmp_path / "a", {"p2p": 50.0}, 5, seed=1, scenario=scenario, noise=0.002)
    b = write_set(tmp_path / "b", {"p2p": 54.0}, 5, seed=2, scenario=scenario, noise=0.002)
    (comparison,) = compare_paths(str(a), str(b))
    latency = next(r for r in comparison.results if r.metric.key == "video_latency_ms.p50")
    assert latency.min_effect == 0.01 and latency.verdict == "worse"


def test_zero_baseline_uses_the_absolute_floor() -> None:
    loss = Metric("packet_loss_pct", "Packet loss", "%", min_abs=0.1)
    tiny = compare_metric(loss, [0.0] * 5, [0.01, 0.02, 0.01, 0.02, 0.03])
    assert tiny.verdict == "same" and tiny.ratio == float("inf")
    assert compare_metric(loss, [0.0] * 5, [1.0, 1.2, 0.9, 1.1, 1.0]).verdict == "worse"
    assert compare_metric(loss, [0.0] * 5, [0.0] * 5).ratio == 1.0


def test_markdown_has_a_row_per_metric(tmp_path: Path) -> None:
    base = write_set(tmp_path / "base", {"p2p": 50.0}, 2, seed=1)
    comparisons = compare_paths(str(base), str(base))
    text = format_markdown(comparisons)
    assert text.count("\n| `") == len(METRICS)


def test_server_cpu_under_different_budgets_is_not_comparable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The candidate's server was held to a quarter of a core: its CPU is lower because it could spend no more.
    base = write_set(tmp_path / "base", {"reference": 50.0}, 3, seed=1, sut_cpu=60.0)
    cand = write_set(tmp_path / "cand", {"reference": 50.0}, 3, seed=2, sut_cpu=25.0, server_cpus=0.25)
    (comparison,) = compare_paths(str(base), str(cand))
    verdicts = {r.metric.key: r for r in comparison.results}
    cpu = verdicts["sut_cpu_pct.mean"]
    assert cpu.verdict == "not comparable"
    assert "different CPU budgets" in cpu.reason and "no budget" in cpu.reason and "0.25 core" in cpu.reason
    assert cpu.baseline_median is not None and cpu.candidate_median is not None  # the figures stay
    # Every other metric is compared as usual, and the comparison says why CPU is not.
    assert verdicts["video_latency_ms.p50"].verdict == "same"
    assert any(note.startswith("server CPU not compared: the servers had different CPU budgets")
               for note in comparison.notes)
    assert main(["compare", str(base), str(cand), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    cpu_json = next(m for m in document["comparisons"][0]["metrics"] if m["metric"] == "sut_cpu_pct.mean")
    assert cpu_json["verdict"] == "not comparable"
    assert "not comparable" in format_table([comparison]) and "| not comparable |" in format_markdown([comparison])
    (case,) = [c for c in junit_cases([comparison]) if c.name == "sut_cpu_pct.mean"]
    assert case.skipped and not case.failure


def test_server_cpu_under_one_budget_is_compared(tmp_path: Path) -> None:
    base = write_set(tmp_path / "base", {"reference": 50.0}, 3, seed=1, sut_cpu=60.0, server_cpus=0.5)
    cand = write_set(tmp_path / "cand", {"reference": 50.0}, 3, seed=2, sut_cpu=25.0, server_cpus=0.5)
    (comparison,) = compare_paths(str(base), str(cand))
    cpu = next(r for r in comparison.results if r.metric.key == "sut_cpu_pct.mean")
    assert cpu.verdict == "better" and not any("budget" in note for note in comparison.notes)


def test_a_side_mixing_budgets_is_not_comparable(tmp_path: Path) -> None:
    base = write_set(tmp_path / "base", {"reference": 50.0}, 3, seed=1, server_cpus=0.5)
    write_run(base, "reference", seed=7, server_cpus=1.0)
    cand = write_set(tmp_path / "cand", {"reference": 50.0}, 3, seed=2, server_cpus=0.5)
    (comparison,) = compare_paths(str(base), str(cand))
    cpu = next(r for r in comparison.results if r.metric.key == "sut_cpu_pct.mean")
    assert cpu.verdict == "not comparable" and "baseline 0.5 core(s) and 1 core(s)" in cpu.reason
