"""Helpers shared by the tests that start ``confbench`` as a user would."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

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


MACHINE_REASONS = ("load generator saturated", "network wire fell behind")
"""Why the harness marks a run invalid when the machine, not the system under test, fell behind."""


def run_until_valid(args: list[str], cwd: Path, results: Path, attempts: int = 2,
                    timeout_s: float = 300) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``confbench run ARGS --results RESULTS/attempt-N``, once more when the harness itself declared the run
    invalid because this shared machine fell behind (a saturated generator, a late emulated wire); any other
    outcome, or a second such verdict, is returned as it is. Returns the process and the run folder."""
    import json

    for attempt in range(1, attempts + 1):
        folder = results / f"attempt-{attempt}"
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", *args, "--results", str(folder)],
                              cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
        run = only_run(folder)
        manifest = json.loads((run / "manifest.json").read_text())
        reasons = manifest.get("invalid_reasons") or []
        machine = bool(reasons) and all(any(m in r for m in MACHINE_REASONS) for r in reasons)
        if not (manifest.get("status") == "invalid" and machine):
            break
    return proc, run


class ListSink:
    """A participant's sink for the tests: collects its rows per table (a media host batches them to Locust)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def emit(self, table: str, row: dict[str, Any]) -> None:
        self.rows[table].append(row)

    def events(self, participant: str, kind: str) -> list[dict[str, Any]]:
        """The ``events`` rows of one kind that ``participant`` wrote."""
        return [r for r in self.rows["events"] if r["participant"] == participant and r["kind"] == kind]
