"""The report's Outages section: per run and fault, how the participants came back (``summary["outages"]``,
computed by :mod:`harness.analysis.outages`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.report.charts import format_number
from harness.report.data import RunData

_DASH = "—"


def _ms(figures: object, key: str) -> str:
    value = figures.get(key) if isinstance(figures, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _DASH
    return format_number(float(value))


def _count(value: object) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else _DASH


def outage_rows(runs: Sequence[RunData]) -> list[dict[str, Any]] | None:
    """One row per run and fault, as text cells; None when no run had a fault."""
    rows = []
    for run in runs:
        outages = (run.summary or {}).get("outages")
        faults = outages.get("faults") if isinstance(outages, Mapping) else None
        for fault in faults if isinstance(faults, list) else []:
            if not isinstance(fault, Mapping):
                continue
            at = fault.get("at_s")
            dropped = fault.get("dropped")
            names = [str(n) for n in dropped] if isinstance(dropped, list) else []
            rows.append({
                "run": run.label,
                "fault": str(fault.get("label", fault.get("kind", "?"))),
                "at": format_number(float(at)) if isinstance(at, int | float) and not isinstance(at, bool) else _DASH,
                "streams": f"{_count(fault.get('recovered'))} / {_count(fault.get('streams'))}",
                "recovery": f"{_ms(fault.get('recovery_ms'), 'p50')} / {_ms(fault.get('recovery_ms'), 'max')}",
                "reconnected": f"{_count(fault.get('reconnected'))} "
                               f"({_ms(fault.get('reconnect_ms'), 'p50')} / {_ms(fault.get('reconnect_ms'), 'max')})",
                "dropped": ", ".join(names) if names else "none",
            })
    return rows or None
