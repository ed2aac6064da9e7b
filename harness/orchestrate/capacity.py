"""Capacity search, the controller's side: deploy the system, run Locust with the search's load shape, close.

``confbench capacity SCENARIO --system S`` ends here. The search itself (steps, SLO, the knee) is
:mod:`harness.analysis.capacity_steps`, run on the Locust master by :mod:`harness.loadgen.shape`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.analysis.capacity_steps import read_capacity, settings_of
from harness.analysis.summary import summarize
from harness.orchestrate.lifecycle import record_workers
from harness.orchestrate.run import ProgressFn, RunOutcome, _drive, default_processes, deployed_run
from harness.scenario.scenario import Scenario
from harness.store.manifest import update_manifest, utc_iso, write_summary
from harness.store.reader import RunReader
from harness.systems import SystemSpec, create_system

STOP_MARGIN_S = 120.0
"""Beyond max_duration_s: the last step's evaluation, participants leaving, Locust's own shutdown."""


def run_capacity(scenario: Scenario, spec: SystemSpec, results_root: Path, *, processes: int | None = None,
                 progress: ProgressFn | None = None,
                 announce: Callable[[Path], None] | None = None) -> RunOutcome:
    """Run a capacity search of ``scenario`` against ``spec``; the outcome's summary has a ``capacity`` key."""
    settings = settings_of(scenario)
    system = create_system(spec)
    with deployed_run(system, scenario, spec, results_root, announce) as (deployment, run_dir, metrics_url):
        procs = processes or default_processes()
        update_manifest(run_dir, loadgen={"processes": procs}, mode="capacity")
        target = SystemSpec(spec.name, deployment.url)
        return _drive(scenario, target, run_dir, deployment, progress, procs, metrics_url,
                      run_time=math.ceil(settings.max_duration_s + STOP_MARGIN_S),
                      extra_args=["--confbench-capacity"], finish=finish_capacity,
                      most_participants=settings.max_participants)


def finish_capacity(run_dir: Path, scenario: Scenario, status: str, errors: list[str]) -> dict[str, Any]:
    """Close a capacity search: the status from its outcome, a summary of the whole run with the result."""
    update_manifest(run_dir, ended_utc=utc_iso())
    document = read_capacity(run_dir)
    result = (document or {}).get("result")
    invalid: list[str] = []
    clock_reasons = record_workers(run_dir)
    if status == "completed" and clock_reasons:
        status, invalid = "invalid", clock_reasons
    if status == "completed":
        if result is None:
            status = "failed"
            errors = [*errors, "the capacity search did not finish (no result in capacity.json)"]
        elif result.get("outcome") == "generator_limited":
            status = "invalid"
            invalid = [str(result.get("statement"))]
    summary = summarize(RunReader(run_dir), planned_participants=scenario.participants, status=status)
    summary["capacity"] = result
    write_summary(run_dir, summary)
    update_manifest(run_dir, status=status, errors=errors, invalid_reasons=invalid)
    return summary
