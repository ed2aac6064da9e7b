"""Every page confbench writes fits a 1280-px-wide window: nothing wider than the window, no table wider than its box.

The pages are built from synthetic runs of four systems (the widest tables the project draws: a column per run
in the single-run report, a row per system elsewhere) and measured in headless Chromium (``tests/layout.py``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from layout import CHROMIUM, measure
from synthetic_runs import write_run, write_set

from harness.analysis.runset import find_runs
from harness.report.comparison import build_comparison_report
from harness.report.evaluation import build_evaluation_report
from harness.report.history import build_history
from harness.report.html import build_report

# Skipped on a developer machine without Chromium; never in CI, whose .ci/run installs it.
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                reason="headless Chromium not installed (apt-get install chromium)")

SYSTEMS = {"p2p": 40.0, "reference": 50.0, "janus": 55.0, "livekit": 80.0}


@pytest.fixture(scope="module")
def run_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layout")
    set_dir = write_set(root, SYSTEMS, 3, seed=11)
    write_run(set_dir, "janus", seed=5, status="invalid")
    (set_dir / "evaluate.json").write_text(json.dumps({"unavailable": [{
        "system": "galene", "reason": "Galène cannot be built here: its Go module github.com/jech/galene is "
        "refused by the module proxy (403 Forbidden for every version tried, and latest)"}]}))
    return set_dir


def _fits(page: Path, shot: Path) -> None:
    result = measure(page, shot)
    assert not result["problems"], f"{page} does not fit 1280 px: {result['problems']}"
    assert shot.stat().st_size > 10_000


def test_single_run_report_of_twelve_runs_fits(tmp_path: Path) -> None:
    """A column per run: ``confbench report`` of twelve runs side by side still fits."""
    set_dir = write_set(tmp_path, {f"system-{i}": 40.0 + i for i in range(12)}, 1, seed=2)
    runs = [run.run_dir for run in find_runs(set_dir)]
    _fits(build_report(runs, tmp_path / "report"), tmp_path / "report.png")


def test_comparison_page_fits(run_set: Path, tmp_path: Path) -> None:
    _fits(build_comparison_report(run_set, tmp_path / "comparison"), tmp_path / "comparison.png")


def test_evaluate_page_fits_and_leads_with_the_ranking(run_set: Path, tmp_path: Path) -> None:
    page = build_evaluation_report(run_set, tmp_path / "evaluate")
    _fits(page, tmp_path / "evaluate.png")
    text = page.read_text()
    assert text.index("<h2") == text.index('<h2 id="ranking"')  # the first section is the ranking
    _fits(page.parent / "comparison" / "index.html", tmp_path / "evaluate-comparison.png")


def test_history_page_fits(run_set: Path, tmp_path: Path) -> None:
    page, _ = build_history(run_set, ["video_latency_ms.p95"], tmp_path / "history", system="janus")
    _fits(page, tmp_path / "history.png")


def test_the_check_sees_a_table_that_overflows(tmp_path: Path) -> None:
    page = tmp_path / "wide.html"
    cells = "".join(f"<td>{'x' * 40}</td>" for _ in range(12))
    page.write_text(f"<!DOCTYPE html><body style='max-width:1080px'><table><tr>{cells}</tr></table></body>")
    problems = measure(page)["problems"]
    assert any("document" in p for p in problems) and any(p.startswith("table") for p in problems)


CAPACITY = """
name = "tiny-capacity"
duration_s = 5
spawn_rate = 4
[media.video]
width = 160
height = 90
fps = 10
[[groups]]
name = "everyone"
count = 2
probe_fraction = 0.5
[capacity]
start = 2
step = 2
step_s = 5
settle_s = 2
max_participants = 4
max_duration_s = 60
"""


@pytest.mark.integration
def test_capacity_page_fits(tmp_path: Path) -> None:
    """The capacity page needs a real search (its steps are judged from the tables): a tiny one on reference."""
    from helpers import confbench

    (tmp_path / "cap.toml").write_text(CAPACITY)
    proc = confbench("capacity", "cap.toml", "--system", "reference", "--results", "results", "--reports",
                     "reports", cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    pages = list((tmp_path / "reports").glob("capacity-*/index.html"))
    assert len(pages) == 1, out + err
    page = pages[0]
    _fits(page, tmp_path / "capacity.png")
