"""The report page: one self-contained HTML file comparing runs, with every chart also saved as a PNG.

The page is a pure function of the runs (DESIGN.md §5.7): no clock, no randomness, no network, so the same
results always give the same bytes. It needs no external asset and no JavaScript; charts are embedded as
``data:`` URIs. Every string from the results is escaped, and manifest facts are shown from a whitelist
only, because a manifest is data from elsewhere and a report gets passed around. Python computes what the page
shows; its markup is the Jinja2 template `templates/run.html.j2`.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from markupsafe import Markup
from matplotlib.figure import Figure

import harness
from harness.analysis.health import MAX_LATE_MS
from harness.errors import ReportError
from harness.report.charts import charts_for, format_number
from harness.report.data import RunData, load_runs, with_unique_labels
from harness.report.outages import outage_rows
from harness.report.templating import render
from harness.store.manifest import parse_utc

INDEX = "index.html"

# (summary key, what it is, unit) for the distributions summary.json carries as {"p50", "p95", …}.
_DISTRIBUTIONS: tuple[tuple[str, str, str], ...] = (
    ("join_ms", "Join time", "ms"),
    ("video_latency_ms", "Video latency", "ms"),
    ("audio_latency_ms", "Audio latency", "ms"),
    ("rtt_ms", "Round-trip time", "ms"),
    ("jitter_ms", "Jitter", "ms"),
    ("fps", "Frame rate", "fps"),
    ("bitrate_kbps", "Bitrate received", "kbit/s"),
    ("audio_mos", "Audio MOS (E-model)", "1–4.5"),
    ("video_psnr_db", "Video PSNR (luma)", "dB"),
)
_PLAIN: tuple[tuple[str, str, str], ...] = (
    ("packet_loss_pct", "Packet loss", "%"),
    ("frame_loss_pct", "Frame loss", "%"),
    ("freezes_per_min", "Freezes", "per stream-minute"),
)
_CPU: tuple[tuple[str, str], ...] = (
    ("sut_cpu_pct", "Server CPU"),
    ("loadgen_cpu_pct", "Load generator CPU"),
    ("machine_cpu_pct", "Whole machine CPU"),
    ("machine_steal_pct", "Machine CPU withheld by its hypervisor: steal"),
    ("machine_other_cpu_pct", "Machine CPU of processes outside the run"),
)
_STATUS_CLASS = {"completed": "ok", "failed": "bad", "invalid": "bad"}
_DASH = "—"



@dataclass(frozen=True, slots=True)
class RenderedChart:
    """One chart of a report: its registry name (and PNG file name), caption and PNG bytes."""

    name: str
    caption: str
    png: bytes

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ReportError(f"bad chart name {self.name!r}")


def build_report(run_dirs: Sequence[Path], out_dir: Path, *, title: str | None = None) -> Path:
    """Load the results folders ``run_dirs`` and write their report into ``out_dir``.

    Writes ``out_dir/index.html`` and every chart as ``out_dir/<name>.png``; returns the path of the page.
    Raises :class:`ReportError` when a folder is not readable results.
    """
    return render_report(load_runs(run_dirs), out_dir, title)


def render_report(runs: Sequence[RunData], out_dir: Path, title: str | None = None) -> Path:
    """Write the report of already loaded ``runs`` into ``out_dir`` (see :func:`build_report`)."""
    if not runs:
        raise ReportError("a report needs at least one run")
    runs = with_unique_labels(runs)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        charts = render_charts(runs)
        for rendered in charts:
            (out_dir / f"{rendered.name}.png").write_bytes(rendered.png)
        index = out_dir / INDEX
        # Written under a temporary name and renamed, so a reader never sees half a page.
        partial = out_dir / f".{INDEX}.partial"
        partial.write_text(render_page(runs, charts, title), encoding="utf-8")
        os.replace(partial, index)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from exc
    return index


def render_charts(runs: Sequence[RunData]) -> list[RenderedChart]:
    """Every chart that applies to ``runs``, drawn to PNG, in page order."""
    rendered: list[RenderedChart] = []
    for name, func in charts_for(runs):
        # The caption is the first line of the chart's docstring, without its reST literal markup.
        caption = (func.__doc__ or name).strip().splitlines()[0].replace("``", "")
        rendered.append(RenderedChart(name=name, caption=caption, png=figure_png(func(runs))))
    return rendered


def figure_png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes; the figure is cleared afterwards so its memory goes at once."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100, facecolor="white")
    finally:
        fig.clear()
    return buffer.getvalue()


# --- the page (its markup: templates/run.html.j2) ---------------------------------------------------------


def render_page(runs: Sequence[RunData], charts: Sequence[RenderedChart], title: str | None = None) -> str:
    """The HTML page for ``runs`` with ``charts`` embedded (``templates/run.html.j2``); a pure function of its
    arguments."""
    scenario_names = _unique(run.scenario_name for run in runs)
    heading = title or " / ".join(scenario_names) or "confbench report"
    return render(
        "run.html.j2", shorten=True, heading=heading, runs_text=_plural(len(runs), "run"),
        systems=", ".join(run.label for run in runs), notes=_consistency_notes(runs, scenario_names),
        invalid=_invalid_banners(runs), status=_status_list(runs), labels=[run.label for run in runs],
        summary=_summary_rows(runs), engines=_engines_section(runs), thresholds=_threshold_rows(runs),
        outages=outage_rows(runs),
        charts=[{"name": c.name, "caption": c.caption, "png": Markup(base64.b64encode(c.png).decode("ascii"))}
                for c in charts],
        facts=[{"label": run.label, "rows": _facts(run)} for run in runs], version=harness.__version__,
    )


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    """``value`` when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _num(value: object, unit: str = "") -> str:
    number = _number(value)
    if number is None:
        return _DASH
    return f"{format_number(number)}{' ' + unit if unit else ''}"


def _count(value: float | None) -> str:
    return _DASH if value is None else f"{value:.0f}"


def _scalar(value: object) -> str | None:
    """Text for a plain JSON scalar; None for anything else (nested data is never shown unasked)."""
    if value is None or isinstance(value, Mapping | list | tuple):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _consistency_notes(runs: Sequence[RunData], scenario_names: Sequence[str]) -> list[str]:
    """Warnings for comparisons that are not like for like."""
    notes: list[str] = []
    if len(scenario_names) > 1:
        notes.append("These runs come from different scenarios; their figures are not directly comparable.")
    elif len(_unique(_scalar(run.manifest.get("scenario_sha256")) for run in runs)) > 1:
        notes.append("These runs share a scenario name but not its content (the scenario sha256 differs).")
    return notes


def _invalid_banners(runs: Sequence[RunData]) -> list[dict[str, str]]:
    """A red box per invalid run, above everything else: its figures measure the load generator."""
    banners = []
    for run in runs:
        if run.status != "invalid":
            continue
        reasons = _strings(run.manifest.get("invalid_reasons")) or ["no reason recorded"]
        banners.append({"label": run.label, "reasons": "; ".join(reasons)})
    return banners


def _status_list(runs: Sequence[RunData]) -> list[dict[str, Any]]:
    items = []
    for run in runs:
        status = run.status
        css = _STATUS_CLASS.get(status, "warn")
        detail = [_scalar(run.manifest.get("run_id")) or run.run_dir.name]
        duration = _duration(run)
        if duration:
            detail.append(duration)
        if run.summary is None:
            detail.append("no summary.json")
        problems = [
            *(f"error: {text}" for text in _strings(run.manifest.get("errors"))),
            *(f"invalid: {text}" for text in _strings(run.manifest.get("invalid_reasons"))),
            *(f"reading the results: {text}" for text in run.warnings),
        ]
        items.append({"label": run.label, "css": css, "status": status, "detail": " · ".join(detail),
                      "problems": problems})
    return items


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if item is not None]


def _duration(run: RunData) -> str | None:
    start = parse_utc(run.manifest.get("started_utc"))
    end = parse_utc(run.manifest.get("ended_utc"))
    if start is None or end is None or end < start:
        return None
    seconds = end - start
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


Cell = dict[str, Any]
"""One cell of a figures table: ``{"kind": "dist" | "participants" | "not watched" | "text", "value": …}``."""


def _text(value: str) -> Cell:
    return {"kind": "text", "value": value}


def _summary_rows(runs: Sequence[RunData]) -> list[dict[str, Any]] | None:
    """The summary table's rows (label, summary key, a cell per run); None when no run has a summary."""
    if all(run.summary is None for run in runs):
        return None
    rows: list[dict[str, Any]] = []

    def row(label: str, key: str, cells: Iterable[Cell]) -> None:
        rows.append({"label": label, "key": key, "cells": list(cells)})

    summaries = [run.summary or {} for run in runs]
    for key, what, unit in _DISTRIBUTIONS:
        row(f"{what} ({unit}), p50 / p95", key, (_distribution(s.get(key)) for s in summaries))
    for key, what, unit in _PLAIN:
        row(f"{what} ({unit})", key, (_text(_num(s.get(key))) for s in summaries))
    if any(s.get("video_resolution") for s in summaries):
        row("Video resolution received", "video_resolution",
            (_text(_scalar(s.get("video_resolution")) or _DASH) for s in summaries))
    joined = (_participants(s.get("participants")) for s in summaries)
    row("Participants joined / planned", "participants", joined)
    for key, what in _CPU:
        if key.startswith("machine_") and not any(key in s for s in summaries):
            continue  # runs from before the machine was watched
        row(f"{what} (% of one core), mean / max", key, (_cpu(s, key) for s in summaries))
    if any(isinstance(s.get("loadgen_health"), Mapping) for s in summaries):
        row("Load generator: frames skipped % / seconds lagging > 100 ms % / UDP drops / samples lost",
            "loadgen_health", (_health(s.get("loadgen_health")) for s in summaries))
    if any(isinstance(s.get("wire_health"), Mapping) for s in summaries):
        row(f"Network wire: packets held / % sent over {MAX_LATE_MS:g} ms late / latest (ms)", "wire_health",
            (_wire(s.get("wire_health")) for s in summaries))
    if any(run.manifest.get("instrument_floor") is not None for run in runs):
        floors = (_floor(run.manifest.get("instrument_floor")) for run in runs)
        row("Instrument floor", "instrument_floor", floors)
    row("Calibration through this system (largest errors)", "system_calibration",
        (_calibration(run.manifest.get("system_calibration"), run.manifest) for run in runs))
    return rows


_ENGINE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("video_latency_ms", "Video latency as received (ms), p50 / p95", "dist"),
    ("audio_latency_ms", "Audio latency as received (ms), p50 / p95", "dist"),
    ("rtt_ms", "Round-trip time (ms), p50 / p95", "dist"),
    ("jitter_ms", "Jitter (ms), p50 / p95", "dist"),
    ("fps", "Frame rate received, p50 / p95", "dist"),
    ("packet_loss_pct", "Packet loss (%)", "num"),
    ("cpu_pct_per_participant", "CPU per participant (% of one core)", "num"),
    ("rss_mb_per_participant", "Memory per participant (MB)", "num"),
)


def _engines_section(runs: Sequence[RunData]) -> dict[str, Any] | None:
    """Native and browser participants side by side, when a run had browser participants."""
    columns: list[tuple[str, Mapping[str, Any]]] = []
    for run in runs:
        engines = _mapping((run.summary or {}).get("engines"))
        if "browser" not in engines:
            continue
        for engine, figures in engines.items():
            columns.append((f"{run.label}: {engine}", _mapping(figures)))
    if not columns:
        return None
    rows = [{"label": "Participants in the call", "key": None,
             "cells": [_text(_count(_number(f.get("participants")))) for _, f in columns]}]
    for key, what, kind in _ENGINE_ROWS:
        cells = [_distribution(f.get(key)) if kind == "dist" else _text(_num(f.get(key))) for _, f in columns]
        rows.append({"label": what, "key": key, "cells": cells})
    paths_tables = []
    for run in runs:
        paths = _mapping((run.summary or {}).get("video_latency_by_path_ms"))
        if not paths or "browser" not in _mapping((run.summary or {}).get("engines")):
            continue
        paths_tables.append({"label": run.label, "rows": [
            {"name": path.replace(">", " → "), "value": _distribution(d)["value"]} for path, d in paths.items()]})
    return {"labels": [label for label, _ in columns], "rows": rows, "paths": paths_tables}


def _health(value: object) -> Cell:
    health = _mapping(value)
    if not health:
        return _text(_DASH)
    figures = [_num(health.get(k)) for k in ("frames_skipped_pct", "loop_lag_over_100ms_pct", "udp_drops",
                                              "samples_dropped")]
    return _text(" / ".join(figures))


def _wire(value: object) -> Cell:
    wire = _mapping(value)
    if not wire:
        return _text(_DASH)
    return _text(" / ".join(_num(wire.get(k)) for k in ("packets_held", "late_pct", "late_ms_max")))


def _distribution(value: object) -> Cell:
    """p50 / p95 (and the sample count) of a summary distribution; the value is None when it has neither."""
    figures = _mapping(value)
    p50, p95 = _number(figures.get("p50")), _number(figures.get("p95"))
    if p50 is None and p95 is None:
        return {"kind": "dist", "value": None}
    samples = _number(figures.get("samples"))
    return {"kind": "dist", "value": {"p50": _num(p50), "p95": _num(p95),
                                      "samples": f"{samples:.0f}" if samples is not None else None}}


def _participants(value: object) -> Cell:
    counts = _mapping(value)
    joined, planned, failed = (_number(counts.get(k)) for k in ("joined", "planned", "failed"))
    if joined is None and planned is None:
        return {"kind": "participants", "value": None}
    return {"kind": "participants", "value": {
        "text": f"{_count(joined)} / {_count(planned)}",
        "bad": joined is not None and planned is not None and joined < planned,
        "failed": _count(failed) if failed else None}}


def _cpu(summary: Mapping[str, Any], key: str) -> Cell:
    if key not in summary:
        return _text(_DASH)
    figures = summary.get(key)
    if figures is None:
        # summary.json uses null for "no server process was watched", which is not the same as 0 %.
        return {"kind": "not watched", "value": None} if key == "sut_cpu_pct" else _text(_DASH)
    values = _mapping(figures)
    return _text(f"{_num(values.get('mean'))} / {_num(values.get('max'))}")


def _prose(head: str, detail: str = "") -> Cell:
    """A sentence rather than a figure: wrapped, so that one long cell never pushes the other systems'
    columns off-screen."""
    return {"kind": "prose", "value": {"head": head, "detail": detail}}


def _calibration(value: object, manifest: Mapping[str, Any]) -> Cell:
    """The last ``confbench calibrate --system`` of the run's system: verdict, date and largest errors."""
    name = _mapping(manifest.get("system")).get("name") or "NAME"
    if not isinstance(value, Mapping):
        return _prose("not calibrated here", f"confbench calibrate --system {name}")
    parts = []
    for key, figure in sorted(_mapping(value.get("worst")).items()):
        error = _mapping(figure).get("error")
        if isinstance(error, int | float):
            text = f"{error:+.1f} ms" if _mapping(figure).get("unit") == "ms" else f"{100 * error:+.0f} %"
            parts.append(f"{key} {text}")
    verdict = "passed" if value.get("ok") else "FAILED"
    return _prose(f"{verdict} {str(value.get('measured_utc') or '')[:10]}".strip(), "; ".join(parts))


def _floor(value: object) -> Cell:
    """The instrument floor: a number (ms), or the numeric figures of a flat object; nothing else is shown."""
    if value is None:
        return _text(_DASH)
    return _prose(_floor_text({"instrument_floor": value}) or _DASH)


def _threshold_rows(runs: Sequence[RunData]) -> list[dict[str, Any]] | None:
    """Each threshold expression with a cell per run (None where the run did not check it); None when no
    run checked any."""
    results: list[dict[str, Mapping[str, Any]]] = []
    exprs: list[str] = []
    for run in runs:
        by_expr: dict[str, Mapping[str, Any]] = {}
        entries = (run.summary or {}).get("thresholds")
        for entry in entries if isinstance(entries, list) else []:
            entry = _mapping(entry)
            expr = entry.get("expr")
            if isinstance(expr, str) and expr:
                by_expr[expr] = entry
                if expr not in exprs:
                    exprs.append(expr)
        results.append(by_expr)
    if not exprs:
        return None
    rows = []
    for expr in exprs:
        cells: list[dict[str, str] | None] = []
        for by_expr in results:
            entry = by_expr.get(expr)
            if entry is None:
                cells.append(None)
                continue
            ok = entry.get("ok")
            verdict, css = ("pass", "pass") if ok is True else ("fail", "fail") if ok is False else ("?", "")
            value = _scalar(entry.get("value"))
            number = _number(entry.get("value"))
            shown = format_number(number) if number is not None else value or _DASH
            cells.append({"verdict": verdict, "css": css, "shown": shown})
        rows.append({"expr": expr, "cells": cells})
    return rows


def safe_url(value: object) -> str | None:
    """A system URL fit to print: no user name or password, no query string or fragment.

    Credentials and tokens in a URL usually sit in exactly those places; the scheme, host, port and path are
    what a reader needs to know which server was measured.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(not shown: unparseable URL)"
    if ":" in host:  # an IPv6 literal needs its brackets back
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = "…" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _facts(run: RunData) -> list[tuple[str, str]]:
    """Whitelisted facts of one run's manifest (never all of it: it may hold things not to publish)."""
    manifest = run.manifest
    system = run.system
    harness_facts = _mapping(manifest.get("harness"))
    host = _mapping(manifest.get("host"))
    clock = _mapping(manifest.get("clock_sync"))
    clock_text = " — ".join(t for t in (_scalar(clock.get("state")), _scalar(clock.get("detail"))) if t)
    facts: list[tuple[str, str | None]] = [
        ("Run id", _scalar(manifest.get("run_id"))),
        ("Results folder", run.run_dir.name if run.run_dir.name != manifest.get("run_id") else None),
        ("Status", run.status),
        ("System", _scalar(system.get("name"))),
        ("System URL", safe_url(system.get("url"))),
        ("System version", _scalar(system.get("version"))),
        ("Started (UTC)", _scalar(manifest.get("started_utc"))),
        ("Ended (UTC)", _scalar(manifest.get("ended_utc"))),
        ("Duration", _duration(run)),
        ("Scenario", run.scenario_name),
        ("Scenario sha256", _scalar(manifest.get("scenario_sha256"))),
        ("Harness version", _scalar(harness_facts.get("version"))),
        ("Harness commit", _scalar(harness_facts.get("git_commit"))),
        ("CPU model", _scalar(host.get("cpu_model"))),
        ("Cores", _scalar(host.get("cores"))),
        ("Kernel", _scalar(host.get("kernel"))),
        ("Python", _scalar(host.get("python"))),
        ("Packages", _packages(host.get("packages"))),
        ("Clock sync", clock_text or None),
        ("Instrument floor", _floor_text(manifest)),
        ("Network emulation", _network_text(manifest)),
        ("Schema version", _scalar(manifest.get("schema_version"))),
    ]
    return [(name, value) for name, value in facts if value]


def _floor_text(manifest: Mapping[str, Any]) -> str | None:
    if "instrument_floor" not in manifest:
        return None
    floor = manifest["instrument_floor"]
    if floor is None:
        # Said explicitly: without it a reader cannot tell how much of a latency is the instrument's own.
        return "not measured (no calibration in this run)"
    number = _number(floor)
    if number is not None:
        return f"{format_number(number)} ms"
    values = _mapping(floor)
    p50 = _number(values.get("video_p50_ms"))
    if p50 is not None:  # the record harness.orchestrate.calibration writes
        p95, audio = _number(values.get("video_p95_ms")), _number(values.get("audio_p50_ms"))
        parts = [f"video p50 {format_number(p50)} ms" + (f" (p95 {format_number(p95)})" if p95 is not None else "")]
        if audio is not None:
            parts.append(f"audio p50 {format_number(audio)} ms")
        where = ", ".join(str(values[k]) for k in ("source", "video", "measured_utc") if _scalar(values.get(k)))
        return "; ".join(parts) + (f" — {where}" if where else "")
    if values.get("error"):
        return f"not measured: {values.get('error')}"
    figures = [(str(k), _number(v)) for k, v in values.items()]
    return ", ".join(f"{k} {format_number(v)}" for k, v in figures if v is not None) or None


def _network_text(manifest: Mapping[str, Any]) -> str | None:
    """Which groups had which link, and what emulated it (null when no group was impaired)."""
    network = _mapping(manifest.get("network"))
    if not network:
        return None
    groups = [g for g in _mapping(manifest.get("scenario")).get("groups", []) if isinstance(g, Mapping)]
    links = [f"{g.get('name')}: {_mapping(g.get('network')).get('name', 'custom')}" for g in groups
             if g.get("network")]
    backend = " — ".join(t for t in (_scalar(network.get("backend")), _scalar(network.get("reason"))) if t)
    browsers = _scalar(network.get("browsers"))  # harness.browser.confinement: where browsers' media went
    parts = [*links, backend, f"browsers: {browsers}" if browsers else ""]
    return "; ".join(p for p in parts if p) if backend or browsers else None


def _packages(value: object) -> str | None:
    packages = _mapping(value)
    shown = [f"{name} {version}" for name, version in sorted(packages.items()) if _scalar(version)]
    return ", ".join(shown) or None
