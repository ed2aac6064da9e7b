"""Who writes ``progress.json``: the writer of the run only (a unit test on the Locust plugin's state)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from harness.loadgen.plugin import PROGRESS_FILE, HarnessState


def _state(run_dir: Path) -> HarnessState:
    state = HarnessState()
    state.run_dir = run_dir
    runner = SimpleNamespace(user_count=2, state="running")
    state.environment = SimpleNamespace(runner=runner, stats=SimpleNamespace(entries={}))  # type: ignore[assignment]
    return state


def test_a_worker_sharing_the_run_folder_leaves_progress_to_the_writer(tmp_path: Path) -> None:
    worker = _state(tmp_path)  # forked by --processes: the run folder is set, the writer is not
    worker.load_started = 1.0
    worker.write_progress()
    assert not (tmp_path / PROGRESS_FILE).exists()


def test_the_writer_writes_progress_without_leftovers(tmp_path: Path) -> None:
    writer = _state(tmp_path)
    writer.writer = object()  # type: ignore[assignment]
    writer.load_started = 1.0
    writer.write_progress()
    assert '"load_started": 1.0' in (tmp_path / PROGRESS_FILE).read_text()
    assert [p.name for p in tmp_path.iterdir()] == [PROGRESS_FILE]
