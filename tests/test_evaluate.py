"""``confbench evaluate``: bad input in one line, systems that cannot start listed, and one real evaluation of
p2p and the reference SFU (two short repetitions each) whose page fits a 1280-px window in headless Chromium."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from helpers import confbench
from layout import CHROMIUM, measure

from harness.analysis.runset import read_run_set
from harness.cli import main
from harness.orchestrate.evaluate import UNAVAILABLE, check_starts, select_systems
from harness.systems import SystemSpec

TINY = """
name = "tiny"
duration_s = 4
spawn_rate = 5
[media.video]
width = 320
height = 180
fps = 15
[[groups]]
name = "talkers"
count = 2
"""


@pytest.mark.parametrize("args", [
    ["evaluate"],
    ["evaluate", "scenarios/default.toml", "--systems", "nosuch"],
    ["evaluate", "scenarios/default.toml", "--systems", "p2p,,reference"],
    ["evaluate", "scenarios/default.toml", "--systems", "p2p,p2p"],
    ["evaluate", "scenarios/default.toml", "--repeat", "0"],
    ["evaluate", "scenarios/default.toml", "--duration", "-1"],
    ["evaluate", "no-such-scenario.toml"],
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("confbench: ") and err.count("\n") == 1


def test_all_means_the_local_systems_and_the_unavailable_ones() -> None:
    assert [s.name for s in select_systems("all")] == ["p2p", "reference", "janus", "livekit", "janus-whip", "galene"]
    assert [str(s) for s in select_systems("p2p, janus=ws://h:8188")] == ["p2p", "janus=ws://h:8188"]


def test_a_system_that_cannot_start_gives_one_line() -> None:
    assert check_starts(SystemSpec("galene")) == UNAVAILABLE["galene"]
    reason = check_starts(SystemSpec("whip"))  # needs a URL
    assert reason is not None and "URL" in reason and "\n" not in reason
    assert check_starts(SystemSpec("p2p")) is None


@pytest.mark.integration
def test_evaluate_p2p_and_reference(tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY)
    proc = confbench("evaluate", str(scenario), "--systems", "p2p,reference,galene", "--repeat", "2",
                     "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports"), cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode in (0, 1), out + err  # 1 only when the busy machine made a run invalid
    assert "galene is not available: Galène cannot be built here" in err
    assert "[1/4] p2p repetition 1" in err and "[4/4] reference repetition 2" in err  # progress lines
    (set_dir,) = (tmp_path / "results").glob("*-set-*")
    document = read_run_set(set_dir)
    assert [(o["repetition"], o["system"]) for o in document["order"]] == [
        (1, "p2p"), (1, "reference"), (2, "p2p"), (2, "reference")]
    (report,) = (tmp_path / "reports").glob("evaluate-tiny-*")
    evaluation = json.loads((report / "evaluation.json").read_text())
    assert evaluation["unavailable"][0]["system"] == "galene"
    video = evaluation["rankings"][0]
    assert video["metric"] == "video_latency_ms.p50"
    ranked = [s for s in video["standings"] if s["rank"] is not None]
    completed = {r["system"] for r in evaluation["runs"] if r["status"] == "completed"}
    assert {s["system"] for s in ranked} == completed
    assert all(s["verdict"] in (None, "unknown") for s in ranked)  # two repetitions: too few for a verdict
    assert "Video latency p50" in out  # the ranking on the terminal
    runs = pd.read_parquet(report / "runs.parquet")
    assert len(runs) == 4 and set(runs["system"]) == {"p2p", "reference"}
    assert set(pd.read_parquet(report / "ranking.parquet")["metric"]) >= {"video_latency_ms.p95", "join_ms.p50"}
    page = report / "index.html"
    assert "<h2 id=\"ranking\">Ranking</h2>" in page.read_text()
    if Path(CHROMIUM).exists() or os.environ.get("CI"):
        result = measure(page, tmp_path / "evaluate.png")
        assert not result["problems"], result["problems"]


def test_a_capacity_search_that_cannot_run_is_listed_with_why(tmp_path: Path) -> None:
    """p2p has no server to hold to a CPU budget: its search is "not run", with why."""
    from harness.orchestrate.evaluate import _capacity
    from harness.scenario.scenario import parse_scenario

    scenario = parse_scenario({"name": "tiny", "duration_s": 4, "groups": [{"name": "talkers", "count": 2}]})
    entry = _capacity(scenario, SystemSpec("p2p"), tmp_path / "set", 0.5, 1, lambda text: None)
    assert entry["status"] == "not run" and entry["server_cpus"] == 0.5
    assert "p2p has no server" in entry["reason"]
    assert not (tmp_path / "set-capacity").exists()


def test_page_of_one_repetition_renders_and_invalid_runs_are_never_ranked(tmp_path: Path) -> None:
    from synthetic_runs import write_run, write_set

    from harness.report.evaluation import build_evaluation_report

    set_dir = write_set(tmp_path, {"a": 50.0, "b": 60.0}, 1, seed=4)
    write_run(set_dir, "b", seed=9, latency_ms=10.0, status="invalid")  # fastest, but measured the generator
    page = build_evaluation_report(set_dir, tmp_path / "page")
    evaluation = json.loads((page.parent / "evaluation.json").read_text())
    video = evaluation["rankings"][0]["standings"]
    assert [(s["system"], s["rank"], s["verdict"], len(s["values"])) for s in video] == [
        ("a", 1, None, 1), ("b", 2, "unknown", 1)]
    assert sorted(r["status"] for r in evaluation["runs"]) == ["completed", "completed", "invalid"]
    text = page.read_text()
    assert ">invalid<" in text and "1 of 3 runs did not complete" in text
    assert "unknown" in text
