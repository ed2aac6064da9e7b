"""``confbench run --retry-invalid N``: a run the machine spoiled is measured again, after a wait for quiet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.analysis import runset
from harness.orchestrate import run as orchestrate_run
from harness.orchestrate.run import RunOutcome
from harness.probes import machine

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "default.toml"


def _fake_runs(monkeypatch: pytest.MonkeyPatch, statuses: list[str]) -> tuple[list[Path], list[str]]:
    made: list[Path] = []
    waits: list[str] = []
    outcomes = iter(statuses)

    def execute(scenario: Any, spec: Any, results: Path, *, progress: Any = None, processes: Any = None,
                announce: Callable[[Path], None] | None = None) -> RunOutcome:
        status = next(outcomes)
        run_dir = Path(results) / f"run-{len(made)}"
        run_dir.mkdir(parents=True)
        made.append(run_dir)
        reasons = ("load generator saturated: its sources skipped 3.3% of their frames",) \
            if status == "invalid" else ()
        return RunOutcome(run_dir, status, {"status": status}, reasons)

    def settle() -> str:
        waits.append("waited")
        return "waited 2 s for the machine: quiet"

    monkeypatch.setattr(orchestrate_run, "execute", execute)
    monkeypatch.setattr(machine, "settle", settle)
    return made, waits


@pytest.mark.parametrize(("statuses", "retries", "runs", "code"), [
    (["invalid", "completed"], 2, 2, 0),  # spoiled once: measured again, and the run counts
    (["invalid", "invalid", "invalid"], 2, 3, 1),  # spoiled every time: exit 1, as an invalid run
    (["failed", "completed"], 2, 1, 1),  # a failed run is the system's, not measured again
    (["invalid", "completed"], 0, 1, 1),  # the default: no retry
])
def test_an_invalid_run_is_measured_again_up_to_n_times(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str], statuses: list[str],
                                                         retries: int, runs: int, code: int) -> None:
    made, waits = _fake_runs(monkeypatch, statuses)
    argv = ["run", str(SCENARIO), "--system", "p2p", "--results", str(tmp_path), "--no-report"]
    assert cli.main([*argv, "--retry-invalid", str(retries)]) == code
    out, err = capsys.readouterr()
    assert len(made) == runs and len(waits) == runs - 1  # each new run waited for a quiet machine first
    assert err.count("measuring it again") == runs - 1
    assert f"results: {made[-1]}" in out  # the last run is the one reported


def test_in_a_run_set_every_attempt_is_recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _fake_runs(monkeypatch, ["invalid", "completed", "completed"])
    argv = ["run", str(SCENARIO), "--system", "p2p", "--results", str(tmp_path), "--no-report", "--repeat", "2"]
    assert cli.main([*argv, "--retry-invalid", "1"]) == 0
    (set_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    recorded = runset.read_run_set(set_dir)["runs"]
    assert [(r["repetition"], r["status"]) for r in recorded] == [(1, "invalid"), (1, "completed"), (2, "completed")]


def test_a_negative_count_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", str(SCENARIO), "--retry-invalid", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "confbench: --retry-invalid must be at least 0, got -1"
