"""Verdicts and change points on the test suite's synthetic run sets stay what they were.

The reference (``tests/data/analysis_reference.json``) was recorded with the hand-written statistics and
E-divisive means before any of them was replaced by a library; a replacement must give the same verdict, by
the same method, for every metric of every comparison below, the same Mann–Whitney U p-values (to rounding),
and the same change points. ``python tests/test_analysis_reference.py --write`` records the reference again:
do that only for a deliberate change of method, and say so in the commit.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synthetic_runs import SCENARIO, write_run, write_set

from harness.analysis.changepoint import e_divisive
from harness.analysis.compare import compare_paths
from harness.analysis.history import history
from harness.analysis.runset import find_runs

REFERENCE = Path(__file__).resolve().parent / "data" / "analysis_reference.json"


def _comparisons(root: Path) -> dict[str, Any]:
    """Every synthetic comparison the test suite makes, as {case: {metric: (verdict, method, p, ratio)}}."""
    cases: dict[str, tuple[str, str, Path | None]] = {}
    for pair in range(5):
        base = write_set(root / f"a{pair}", {"p2p": 50.0}, 5, seed=10 * pair + 1)
        cand = write_set(root / f"b{pair}", {"p2p": 50.0}, 5, seed=10 * pair + 2)
        cases[f"same-system-5x-pair{pair}"] = (str(base), str(cand), None)
    cases["30ms-slower-5x"] = (str(write_set(root / "s5b", {"p2p": 50.0}, 5, seed=1)),
                               str(write_set(root / "s5c", {"p2p": 80.0}, 5, seed=2)), None)
    cases["30ms-slower-3x"] = (str(write_set(root / "s3b", {"p2p": 50.0}, 3, seed=1)),
                               str(write_set(root / "s3c", {"p2p": 80.0}, 3, seed=2)), None)
    both = write_set(root / "within", {"fast": 50.0, "slow": 80.0}, 3, seed=4)
    cases["within-a-set-3x"] = ("fast", "slow", both)
    scenario = dict(SCENARIO, min_effect={"video_latency_ms.p50": 0.01})
    cases["8pct-min-effect-1pct-5x"] = (
        str(write_set(root / "me_a", {"p2p": 50.0}, 5, seed=1, scenario=scenario, noise=0.002)),
        str(write_set(root / "me_b", {"p2p": 54.0}, 5, seed=2, scenario=scenario, noise=0.002)), None)
    cases["4pct-2x"] = (str(write_set(root / "r2b", {"p2p": 50.0}, 2, seed=1)),
                        str(write_set(root / "r2c", {"p2p": 52.0}, 2, seed=2)), None)
    pairs = write_set(root / "ab", {"a": 50.0, "b": 60.0}, 2, seed=1)
    cases["20pct-within-2x"] = ("a", "b", pairs)
    found: dict[str, Any] = {}
    for name, (baseline, candidate, within) in cases.items():
        (comparison,) = compare_paths(baseline, candidate, within=within)
        found[name] = {r.metric.key: {"verdict": r.verdict, "method": r.method, "p_value": r.p_value,
                                      "ratio": r.ratio} for r in comparison.results}
    return found


def _change_points(root: Path) -> dict[str, list[int]]:
    """Change points of the test suite's series: steps, pure noise, and a nightly history."""
    rng = np.random.default_rng(0)
    series: dict[str, Any] = {
        "steps-50-60-55": np.concatenate([rng.normal(50, 1.5, 20), rng.normal(60, 1.5, 15), rng.normal(55, 1.5, 20)]),
        "too-short": [1.0, 2.0, 3.0],
    }
    for seed in range(5):
        series[f"noise-seed{seed + 10}"] = np.random.default_rng(seed + 10).normal(50, 1.5, 40)
    for seed in range(5):  # steps of a few percent, as nightly medians show them
        noise = np.random.default_rng(100 + seed)
        series[f"nightly-step-seed{seed}"] = np.concatenate([noise.normal(50, 0.8, 12), noise.normal(53, 0.8, 10)])
    found = {name: [c.index for c in e_divisive(values)] for name, values in series.items()}
    start = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    for night in range(12):
        write_run(root / "nights", "p2p", seed=night, latency_ms=50.0 if night < 7 else 80.0,
                  start=start + timedelta(days=night))
    for metric in ("video_latency_ms.p50", "video_latency_ms.p95"):
        found[f"history-{metric}"] = [c.index for c in history(find_runs(root / "nights"), metric).changes]
    return found


def measure(root: Path) -> dict[str, Any]:
    """Today's verdicts and change points on the synthetic inputs (written below ``root``)."""
    return {"comparisons": _comparisons(root / "cmp"), "change_points": _change_points(root / "cp")}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return measure(tmp_path_factory.mktemp("reference"))


def test_verdicts_are_unchanged(measured: dict[str, Any]) -> None:
    reference = json.loads(REFERENCE.read_text())["comparisons"]
    assert set(measured["comparisons"]) == set(reference)
    for case, metrics in reference.items():
        for key, expected in metrics.items():
            got = measured["comparisons"][case][key]
            where = f"{case} {key}"
            assert (got["verdict"], got["method"]) == (expected["verdict"], expected["method"]), where
            if expected["p_value"] is None:
                assert got["p_value"] is None, where
            else:
                assert got["p_value"] == pytest.approx(expected["p_value"], rel=1e-9, abs=1e-12), where


def test_change_points_are_unchanged(measured: dict[str, Any]) -> None:
    assert measured["change_points"] == json.loads(REFERENCE.read_text())["change_points"]


if __name__ == "__main__":
    import tempfile

    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python tests/test_analysis_reference.py --write")
    with tempfile.TemporaryDirectory() as tmp:
        document = measure(Path(tmp))
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(document, indent=1, sort_keys=True, default=float) + "\n")
    print(f"wrote {REFERENCE}")
