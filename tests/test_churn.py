"""Long runs under churn: the leak check (``harness.analysis.growth``) and the CI form of ``benchmarks/churn.py``.

The CI form runs the churn scenario (participants leaving after 15 s and replaced at once) on the reference
SFU for 3 measured minutes, about 3.7 minutes in all, and requires that nothing the load generator or the SFU
holds grew from minute 1 to minute 3 by more than the benchmark's bounds (``BOUND``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.analysis.growth import MIN_MINUTES_FOR_SLOPE, judge, slope
from harness.scenario.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def test_slope_is_the_least_squares_slope_per_minute() -> None:
    assert slope([1, 3, 5, 7]) == pytest.approx(2.0)
    assert slope([4, 4, 4]) == 0.0
    assert slope([9]) == 0.0


def test_a_series_that_warms_up_then_stays_level_levelled_off() -> None:
    warm = [100, 140, 160, 165, 166, 165, 167, 166, 166, 167, 166, 166]
    growth = judge(warm, tolerance_per_min=0.5, bound=10)
    assert growth.levelled and growth.early_slope > 10 and abs(growth.late_slope) < 0.5


def test_a_series_that_keeps_growing_did_not_level_off() -> None:
    leak = [100 + 3 * i for i in range(12)]  # 3 a minute for ever: a leak
    growth = judge(leak, tolerance_per_min=0.5, bound=10)
    assert not growth.levelled and growth.late_slope == pytest.approx(3.0)


def test_a_short_series_is_judged_by_its_growth_against_the_bound() -> None:
    assert len([1, 2, 3]) < MIN_MINUTES_FOR_SLOPE
    assert judge([50, 58, 55], tolerance_per_min=0.5, bound=8).levelled
    assert not judge([50, 58, 61], tolerance_per_min=0.5, bound=8).levelled
    with pytest.raises(ValueError):
        judge([], tolerance_per_min=0.5, bound=8)


def test_the_churn_scenario_replaces_leavers() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "churn.toml")
    churners = [g for g in scenario.groups if g.rejoin]
    assert churners and all(g.stay_s for g in churners) and scenario.systems == ("reference",)


@pytest.mark.integration
@pytest.mark.timeout(290)
def test_three_minutes_of_churn_leave_nothing_growing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "churn.py"), "--minutes", "3", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=280, cwd=ROOT)
    out = proc.stdout
    rows = [line for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert len(rows) == 3, out + proc.stderr
    assert "churn: run completed" in out or "churn: run invalid" in out, out
    # More than the 6 participants of the scenario joined: leavers were replaced.
    joins = [line for line in (tmp_path / "churn-run.log").read_text().splitlines() if "participants" in line]
    assert joins and int(joins[-1].split("participants")[1].split("/")[0]) > 12, joins[-1:]
    assert proc.returncode == 0, out
    assert "every figure levelled off" in out
