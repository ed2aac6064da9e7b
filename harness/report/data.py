"""The data a report is drawn from: one :class:`RunData` per results folder.

Reports are pure functions of this data (DESIGN.md §5.7): everything the charts and the page show comes
from the manifest, the tables and ``summary.json`` of a run, loaded once here through
:class:`harness.store.reader.RunReader`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import ReportError, StoreError
from harness.store.manifest import parse_utc

#: The tables of docs/results.md, in the order the contract lists them.
TABLES: tuple[str, ...] = ("joins", "frames", "streams", "audio", "probes", "events")

_MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class RunData:
    """One run as a report sees it.

    ``label`` is the name the report shows for the run: the system's name, made unique when several runs of
    the same system are compared. ``tables`` maps a table name to its rows; a missing name means no rows.
    ``warnings`` are problems the store read past (e.g. a corrupt part it skipped); the page shows them.
    """

    label: str
    run_dir: Path
    manifest: dict[str, Any]
    summary: dict[str, Any] | None
    tables: Mapping[str, pd.DataFrame]
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ReportError(f"{self.run_dir}: a run needs a non-empty label")
        if not isinstance(self.manifest, dict):
            raise ReportError(f"{self.run_dir}: manifest must be a JSON object")
        if self.summary is not None and not isinstance(self.summary, dict):
            raise ReportError(f"{self.run_dir}: summary must be a JSON object")
        for name, frame in self.tables.items():
            if not isinstance(frame, pd.DataFrame):
                raise ReportError(f"{self.run_dir}: table {name!r} is not a DataFrame")

    def table(self, name: str) -> pd.DataFrame:
        """The rows of table ``name``; an empty frame when the run has none."""
        frame = self.tables.get(name)
        return frame if frame is not None else pd.DataFrame()

    @property
    def system(self) -> Mapping[str, Any]:
        """``manifest["system"]`` (name, url, version), or an empty mapping when absent."""
        return _mapping(self.manifest.get("system"))

    @property
    def status(self) -> str:
        """The run's status as the manifest records it (``unknown`` when it does not)."""
        status = self.manifest.get("status")
        return status if isinstance(status, str) and status else "unknown"

    @property
    def scenario_name(self) -> str | None:
        """``manifest["scenario"]["name"]`` when present."""
        name = _mapping(self.manifest.get("scenario")).get("name")
        return name if isinstance(name, str) and name else None

    def start_ts(self) -> float | None:
        """The run's start as UNIX seconds, from ``manifest["started_utc"]``; None when unknown.

        The contract does not fix the format, so ISO 8601 (with or without ``Z``) and plain UNIX seconds are
        both accepted; a naive ISO time is taken as UTC because the key says so.
        """
        return parse_utc(self.manifest.get("started_utc"))

    def time_origin(self) -> float | None:
        """Where "time since run start" counts from.

        When the load started (``load_started_utc``: Locust began starting participants; the origin of the
        run's timelines, ``harness.orchestrate.run``), else the manifest's start (runs before it was recorded),
        else the earliest ``ts`` in any table (a run whose manifest lost its start can still be drawn), else
        None (no data at all).
        """
        start = parse_utc(self.manifest.get("load_started_utc")) or self.start_ts()
        if start is not None:
            return start
        earliest: float | None = None
        for frame in self.tables.values():
            if "ts" in frame.columns and len(frame):
                low = pd.to_numeric(frame["ts"], errors="coerce").min()
                if pd.notna(low) and (earliest is None or float(low) < earliest):
                    earliest = float(low)
        return earliest


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def load_run(run_dir: Path) -> RunData:
    """Load the results folder ``run_dir`` (manifest, every table, summary) for a report.

    Raises :class:`ReportError` with one line naming the folder when it is missing, has no manifest, or the
    store cannot read it (e.g. a schema newer than this harness).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such results folder")
    if not (run_dir / _MANIFEST).is_file():
        raise ReportError(f"{run_dir}: not a results folder (no {_MANIFEST})")

    # Imported here so that charts and pages can be built from in-memory RunData without the store.
    from harness.store.reader import RunReader

    try:
        reader = RunReader(run_dir)
        manifest = reader.manifest
        tables = {name: reader.table(name) for name in TABLES}
        summary = reader.summary()
    except StoreError as exc:
        # The store's messages already name the file at fault.
        raise ReportError(str(exc)) from exc
    if not isinstance(manifest, dict):
        raise ReportError(f"{run_dir}: {_MANIFEST} is not a JSON object")

    name = _mapping(manifest.get("system")).get("name")
    label = name if isinstance(name, str) and name.strip() else run_dir.name
    warnings = tuple(reader.warnings)
    return RunData(
        label=label, run_dir=run_dir, manifest=manifest, summary=summary, tables=tables, warnings=warnings
    )


def with_unique_labels(runs: Sequence[RunData]) -> list[RunData]:
    """``runs`` with labels made unique, so that every legend entry and table column names one run.

    Runs that share a label all get a suffix (not only the second one), so that no run looks like "the"
    run of that system: the short random suffix of the run id (``…-<system>-a1b2``), else a number.
    """
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    labels: list[str] = []
    for index, run in enumerate(runs):
        if counts[run.label] == 1:
            labels.append(run.label)
            continue
        run_id = run.manifest.get("run_id")
        suffix = run_id.rsplit("-", 1)[-1] if isinstance(run_id, str) and "-" in run_id else str(index + 1)
        labels.append(f"{run.label} [{suffix}]")
    # A suffix can still collide (same run compared twice); numbering is the last resort.
    seen: set[str] = set()
    for index, label in enumerate(labels):
        if label in seen or labels.count(label) > 1:
            labels[index] = f"{label} #{index + 1}"
        seen.add(labels[index])
    return [dataclasses.replace(run, label=label) for run, label in zip(runs, labels, strict=True)]


def load_runs(run_dirs: Sequence[Path]) -> list[RunData]:
    """:func:`load_run` for every folder, with unique labels; at least one folder is required."""
    if not run_dirs:
        raise ReportError("a report needs at least one results folder")
    return with_unique_labels([load_run(Path(run_dir)) for run_dir in run_dirs])
