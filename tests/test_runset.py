"""Tests for harness.analysis.runset (plan, runset.json, finding runs), analysis.junit, the [min_effect] table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from synthetic_runs import SCENARIO, write_run, write_set

from harness.analysis.junit import Case, threshold_cases, to_xml, write_junit
from harness.analysis.runset import find_runs, interleave, read_run_set
from harness.errors import ScenarioError, UsageError
from harness.scenario.scenario import parse_scenario, scenario_from_dict


def test_interleaved_order() -> None:
    assert interleave(["a", "b"], 3) == [(1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "a"), (3, "b")]
    with pytest.raises(UsageError):
        interleave(["a"], 0)


def test_run_set_file_and_finding_runs(tmp_path: Path) -> None:
    set_dir = write_set(tmp_path, {"a": 50.0, "b": 60.0}, 2, seed=1)
    document = read_run_set(set_dir)
    assert document["status"] == "completed" and document["repeat"] == 2
    assert [(r["system"], r["repetition"]) for r in document["runs"]] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    runs = find_runs(set_dir)
    assert sorted(r.system for r in runs) == ["a", "a", "b", "b"]
    assert all(r.summary is not None and r.scenario_name == "synthetic" for r in runs)
    # A whole results folder: runs directly in it and runs inside sets.
    write_run(tmp_path, "c", seed=5)
    assert len(find_runs(tmp_path)) == 5
    with pytest.raises(UsageError, match="no such"):
        find_runs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no run"):
        find_runs(tmp_path / "empty")


def test_threshold_cases_and_xml(tmp_path: Path) -> None:
    run = write_run(tmp_path, "p2p", seed=1, latency_ms=150.0)  # fails "video_latency_ms.p95 < 100"
    (record,) = find_runs(run)
    cases = threshold_cases(record.summary or {}, "synthetic", "p2p", "rep1")
    assert len(cases) == 1 and cases[0].failure is not None and "video_latency_ms.p95 < 100" in cases[0].failure
    path = tmp_path / "junit.xml"
    write_junit(path, "suite", [*cases, Case("confbench.x", "ok"), Case("confbench.x", "skip", skipped="why")])
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    assert b"<failure" in to_xml("s", cases)
    with pytest.raises(ValueError):
        Case("c", "n", failure="f", skipped="s")


def test_scenario_min_effect() -> None:
    plain = parse_scenario(SCENARIO)
    assert "min_effect" not in plain.to_dict()
    tuned = parse_scenario(dict(SCENARIO, min_effect={"video_latency_ms.p95": 0.05}))
    assert tuned.min_effect == (("video_latency_ms.p95", 0.05),)
    assert tuned.to_dict()["min_effect"] == {"video_latency_ms.p95": 0.05}
    assert tuned.sha256() != plain.sha256()
    assert scenario_from_dict(tuned.to_dict()).min_effect == tuned.min_effect
    with pytest.raises(ScenarioError, match="min_effect.nosuch"):
        parse_scenario(dict(SCENARIO, min_effect={"nosuch": 0.1}))
    with pytest.raises(ScenarioError, match="fraction"):
        parse_scenario(dict(SCENARIO, min_effect={"packet_loss_pct": "10%"}))
