"""Helpers shared by the tests that start ``confbench`` as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def confbench(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``confbench ARGS`` (the installed code, by module) with its output piped."""
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, text=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def only_run(results: Path) -> Path:
    """The one run folder under ``results``."""
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]
