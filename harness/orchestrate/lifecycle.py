"""A run's results folder from opening to closing: the ``running`` manifest, then summary and final status.

Shared by ``confbench run`` (:mod:`harness.orchestrate.run`), the capacity search and runs started by plain
``locust`` (:mod:`harness.orchestrate.direct`), so every run folder is opened and closed the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.analysis.health import health_reasons, steady_window
from harness.analysis.summary import summarize
from harness.orchestrate.calibration import instrument_floor
from harness.orchestrate.system_calibration import last_calibration
from harness.probes.environment import harness_facts, host_facts
from harness.scenario.scenario import Scenario
from harness.store.manifest import claim_folder, new_run_id, update_manifest, utc_iso, write_manifest, write_summary
from harness.store.reader import RunReader
from harness.systems import SystemSpec
from harness.systems.base import Deployment

__all__ = ["finish_run", "open_run", "record_workers"]


def open_run(results_root: Path, scenario: Scenario, spec: SystemSpec,
             deployment: Deployment | None = None) -> Path:
    """Create ``results/<run-id>/`` with a ``running`` manifest and the resolved scenario."""
    # A fresh id per attempt: two runs at once into one results folder, in the same second, may draw the same.
    run_dir = claim_folder(Path(results_root), lambda attempt: new_run_id(spec.name))
    run_id = run_dir.name
    info = dict(deployment.info) if deployment else {}
    manifest: dict[str, Any] = {
        "run_id": run_id, "status": "running", "started_utc": utc_iso(), "ended_utc": None,
        "scenario": scenario.to_dict(), "scenario_sha256": scenario.sha256(),
        # Only the name and URL are recorded: tokens come from the environment and never reach the results.
        "system": {"name": spec.name, "url": deployment.url if deployment else spec.url,
                   "version": info.get("version"), "info": info},
        "harness": harness_facts(), "host": host_facts(),
        "clock_sync": {"state": "single-host", "detail": "senders and receivers share this host's clock"},
        # Measured before any load: the part of every latency figure that is the instrument's own.
        "instrument_floor": instrument_floor(scenario.video),
        # The last check of the instrument through this system on this machine (confbench calibrate --system).
        "system_calibration": last_calibration(spec.name), "errors": [], "invalid_reasons": [],
        "pid": os.getpid(),
    }
    write_manifest(run_dir, manifest)
    (run_dir / "scenario.json").write_text(json.dumps(scenario.to_dict(), indent=2))
    return run_dir


def finish_run(run_dir: Path, scenario: Scenario, status: str, errors: list[str]) -> dict[str, Any]:
    """Decide the final status, write summary.json and close the manifest; returns the summary."""
    # ended_utc first: the summary's duration_s is read from the manifest.
    update_manifest(run_dir, ended_utc=utc_iso())
    reader = RunReader(run_dir)
    window = steady_window(reader, scenario.duration_s)
    invalid = health_reasons(reader, window) if status == "completed" else []
    clock_reasons = record_workers(run_dir)
    if status == "completed":
        invalid += clock_reasons
    if status == "completed" and invalid:
        status = "invalid"
    # Media figures describe the steady meeting, as the health check does.
    summary = summarize(reader, planned_participants=scenario.participants, thresholds=scenario.thresholds,
                        status=status, window=window)
    if status == "completed" and summary["participants"]["joined"] == 0:
        status = "failed"
        errors = [*errors, "no participant joined"]
        summary["status"] = status
    attempted = reader.table("joins")["participant"].nunique()
    if status == "completed" and attempted < scenario.participants:
        # Locust's run time ran out before every participant was started (its media hosts started late on a
        # loaded machine): the figures describe a smaller meeting than planned.
        invalid = [*invalid, f"only {attempted} of the {scenario.participants} planned participants tried to join "
                   "before the run ended (the load generator started late)"]
        status = summary["status"] = "invalid"
    write_summary(run_dir, summary)
    update_manifest(run_dir, status=status, errors=errors, invalid_reasons=invalid)
    return summary


def record_workers(run_dir: Path) -> list[str]:
    """Copy ``workers.json`` (where participants ran, their clocks) into the manifest; returns reasons to mark
    the run invalid (participants on several hosts whose clocks are not known to agree)."""
    from harness.probes.clocksync import combine

    try:
        workers = json.loads((Path(run_dir) / "workers.json").read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(workers, list):
        return []
    clock_sync, reasons = combine(workers)
    changes: dict[str, Any] = {"workers": workers}
    if clock_sync is not None:
        changes["clock_sync"] = clock_sync
    update_manifest(run_dir, **changes)
    return reasons
