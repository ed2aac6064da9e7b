"""Runs started by plain ``locust -f harness/loadgen/locustfile.py`` (web UI, ``--processes N``).

``confbench run`` opens and closes the results folder itself; a run started by Locust directly gets the same
folder here, so its data is never lost: opened when Locust initialises, closed (summary, final status) when
Locust quits. A direct run has no controller, so the locust process decides the status.

The Locust hooks (:mod:`harness.loadgen.plugin`, a lower layer) do not import this module: every locustfile
(an entry point) calls :func:`install`, which hands the two functions below to the hooks.
"""

from __future__ import annotations

from pathlib import Path

from harness.loadgen.plugin import STATE, DirectRun, HarnessState
from harness.orchestrate.lifecycle import finish_run, open_run

RESULTS_ROOT = Path("results")
_opened: dict[int, Path] = {}


def open_direct_run(state: HarnessState) -> Path:
    """Create a results folder for a run started by Locust itself."""
    assert state.scenario is not None
    run_dir = open_run(RESULTS_ROOT, state.scenario, state.system)
    _opened[id(state)] = run_dir
    print(f"confbench: results of this Locust run go to {run_dir}", flush=True)
    return run_dir


def close_direct_run(state: HarnessState) -> None:
    """Write the summary and the final status of a run this module opened (no-op otherwise)."""
    run_dir = _opened.pop(id(state), None)
    if run_dir is None or state.scenario is None:
        return
    finish_run(run_dir, state.scenario, "completed", [])
    print(f"confbench: run finished; results in {run_dir}", flush=True)


def install() -> None:
    """Let this Locust process open (and close) a results folder when no controller gave it one."""
    STATE.direct_run = DirectRun(open=open_direct_run, close=close_direct_run)
