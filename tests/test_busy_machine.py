"""A run beside other work that saturates the machine is ``invalid``, and says so; the same amount of work at
low priority (niced), which yields to the run, is not held against it.

Real runs through ``confbench run`` (p2p, small and short) beside real busy processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import OTHERS, confbench, only_run

pytestmark = pytest.mark.integration

SMALL = """
name = "busy-machine"
duration_s = 8
spawn_rate = 5
[media.video]
width = 160
height = 90
fps = 10
[[groups]]
name = "talkers"
count = 2
"""


@contextmanager
def busy_loops(niceness: int) -> Iterator[None]:
    """One more busy process than the machine has cores, at ``niceness``, for as long as the block runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                              preexec_fn=lambda: os.nice(niceness))  # noqa: PLW1509 - runs before exec only
             for _ in range((os.cpu_count() or 1) + 1)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait(timeout=10)


def run_beside(tmp_path: Path, niceness: int) -> tuple[dict, dict]:
    (tmp_path / "s.toml").write_text(SMALL)
    with busy_loops(niceness):
        proc = confbench("run", "s.toml", "--system", "p2p", "--results", "results", "--reports", "reports",
                         cwd=tmp_path)
        out, err = proc.communicate(timeout=240)
    run = only_run(tmp_path / "results")
    return json.loads((run / "manifest.json").read_text()), json.loads((run / "summary.json").read_text())


def test_a_run_beside_work_that_saturates_the_machine_is_invalid(tmp_path: Path) -> None:
    manifest, summary = run_beside(tmp_path, niceness=0)
    assert manifest["status"] == "invalid", manifest
    assert any(r.startswith(OTHERS) for r in manifest["invalid_reasons"]), manifest["invalid_reasons"]
    assert summary["machine_other_cpu_pct"]["mean"] >= 50, summary["machine_other_cpu_pct"]


def test_niced_work_beside_a_run_is_not_held_against_it(tmp_path: Path) -> None:
    manifest, summary = run_beside(tmp_path, niceness=19)
    # The run may still be invalid for a reason of its own on a shared machine, never for this one.
    assert not any(OTHERS in r for r in manifest.get("invalid_reasons") or []), manifest["invalid_reasons"]
    assert summary["machine_other_cpu_pct"]["mean"] >= 50, summary["machine_other_cpu_pct"]  # yet it was there
