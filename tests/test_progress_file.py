"""Who writes ``progress.json``: the writer of the run only (a unit test on the Locust plugin's state).

The plugin is exercised in a process of its own: importing Locust monkey-patches the whole interpreter (gevent),
and in the pytest process that turned every later thread into a greenlet sharing the main thread's running
event loop (35 tests of test_hostile_servers.py failed on it in CI, 2026-12-06)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
from pathlib import Path
from types import SimpleNamespace
from harness.loadgen.plugin import PROGRESS_FILE, HarnessState

run_dir, role = Path(sys.argv[1]), sys.argv[2]
state = HarnessState()
state.run_dir = run_dir
state.environment = SimpleNamespace(runner=SimpleNamespace(user_count=2, state="running"),
                                    stats=SimpleNamespace(entries={}))
if role == "writer":
    state.writer = object()
state.load_started = 1.0
state.write_progress()
print(PROGRESS_FILE)
"""


def _write_progress(run_dir: Path, role: str) -> str:
    """Runs ``write_progress`` of a plugin state in role ``writer`` or ``worker``; returns the file's name."""
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(run_dir), role], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_a_worker_sharing_the_run_folder_leaves_progress_to_the_writer(tmp_path: Path) -> None:
    # Forked by --processes: the run folder is set, the writer is not.
    name = _write_progress(tmp_path, "worker")
    assert not (tmp_path / name).exists()


def test_the_writer_writes_progress_without_leftovers(tmp_path: Path) -> None:
    name = _write_progress(tmp_path, "writer")
    assert '"load_started": 1.0' in (tmp_path / name).read_text()
    assert [p.name for p in tmp_path.iterdir()] == [name]
