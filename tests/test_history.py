"""Tests for harness.analysis.changepoint (E-divisive means) and harness.analysis.history / ``confbench history``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from synthetic_runs import write_run

from harness.analysis.changepoint import e_divisive
from harness.analysis.history import history
from harness.analysis.runset import find_runs
from harness.cli import main
from harness.errors import UsageError
from harness.report.history import build_history


def test_finds_steps_and_nothing_in_noise() -> None:
    rng = np.random.default_rng(0)
    steps = np.concatenate([rng.normal(50, 1.5, 20), rng.normal(60, 1.5, 15), rng.normal(55, 1.5, 20)])
    changes = e_divisive(steps)
    assert [c.index for c in changes] == [20, 35]
    assert changes[0].before == pytest.approx(50, abs=1.5) and changes[0].after == pytest.approx(60, abs=1.5)
    assert changes[0].relative_change == pytest.approx(0.2, abs=0.05)
    for seed in range(5):
        assert e_divisive(np.random.default_rng(seed + 10).normal(50, 1.5, 40)) == []
    assert e_divisive([1.0, 2.0, 3.0]) == []  # too short to split into two levels of 3
    assert e_divisive(steps) == changes  # seeded: the same answer every time


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        e_divisive([1.0, 2.0], min_size=1)
    with pytest.raises(ValueError):
        e_divisive([1.0, float("nan")])


def test_history_of_nightly_runs_marks_the_night_latency_moved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    for night in range(12):
        latency = 50.0 if night < 7 else 80.0
        write_run(tmp_path / "results", "p2p", seed=night, latency_ms=latency, start=start + timedelta(days=night))
    runs = find_runs(tmp_path / "results")
    item = history(runs, "video_latency_ms.p50")
    assert len(item.points) == 12 and [c.index for c in item.changes] == [7]
    page, _ = build_history(tmp_path / "results", ["video_latency_ms.p50"], tmp_path / "page")
    assert (tmp_path / "page" / "video_latency_ms_p50.png").stat().st_size > 1000
    assert "change at 2026-11-08" in page.read_text()
    assert main(["history", str(tmp_path / "results"), "--metric", "video_latency_ms.p95",
                 "--out", str(tmp_path / "p2")]) == 0
    assert "<- change" in capsys.readouterr().out
    write_run(tmp_path / "results", "other", seed=99)
    with pytest.raises(UsageError, match="--system"):
        history(find_runs(tmp_path / "results"), "video_latency_ms.p50")
    assert main(["history", str(tmp_path / "results"), "--metric", "nosuch"]) == 2
