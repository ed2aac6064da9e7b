"""Tests for harness.report: synthetic runs in memory (and one through the store) → charts and page."""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from harness.errors import ReportError
from harness.report import (
    CHARTS,
    RunData,
    build_report,
    charts_for,
    load_run,
    render_report,
    with_unique_labels,
)
from harness.report.charts import NO_DATA, bin_width
from harness.report.html import safe_url

T0 = 1_780_000_000.0  # run start, UNIX seconds
STARTED = "2026-05-28T20:26:40.000Z"  # the same moment as an ISO string
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --- synthetic results ----------------------------------------------------------------------------------


def make_tables(
    seed: int,
    *,
    duration: int = 30,
    participants: int = 3,
    latency_ms: float = 80.0,
    fps: float = 10.0,
    with_sut: bool = True,
    with_audio: bool = True,
) -> dict[str, pd.DataFrame]:
    """Every table of docs/results.md with plausible rows: a small call of ``participants`` people."""
    rng = np.random.default_rng(seed)
    names = [f"p{i}" for i in range(participants)]
    pairs = [(rx, tx) for rx in names for tx in names if rx != tx]

    joins = pd.DataFrame(
        {
            "ts": T0 + np.arange(participants, dtype=float) * 0.5,
            "participant": names,
            "group": "all",
            "host": "lg1",
            "attempt": 1,
            "ok": True,
            "signalling_ms": rng.uniform(20, 60, participants),
            "ice_ms": rng.uniform(50, 150, participants),
            "join_ms": rng.uniform(200, 600, participants),
            "first_frame_ms": rng.uniform(400, 900, participants),
            "error": None,
        }
    )
    failed = pd.DataFrame(
        [{"ts": T0 + 1, "participant": "late", "group": "all", "host": "lg1", "attempt": 1, "ok": False,
          "signalling_ms": None, "ice_ms": None, "join_ms": None, "first_frame_ms": None, "error": "timeout"}]
    )
    joins = pd.concat([joins, failed], ignore_index=True)

    frame_rows = []
    for stream_id, (rx, tx) in enumerate(pairs):
        count = int(duration * fps)
        capture = T0 + 2 + np.arange(count) / fps
        latency = latency_ms * rng.lognormal(0.0, 0.25, count)
        latency[count // 2 : count // 2 + 10] *= 4  # a burst late in the run, for the over-time chart
        frame_rows.append(
            pd.DataFrame(
                {
                    "ts": capture + latency / 1000.0,
                    "receiver": rx,
                    "sender": tx,
                    "stream_id": stream_id,
                    "frame_no": np.arange(count),
                    "capture_ts": capture,
                    "latency_ms": latency,
                    "gap_ms": 1000.0 / fps,
                    "width": 640,
                    "height": 360,
                }
            )
        )
    frames = pd.concat(frame_rows, ignore_index=True)

    stream_rows: list[dict[str, Any]] = []
    for second in range(1, duration + 1):
        for rx, tx in pairs:
            for kind in ("video", "audio"):
                lost = int(rng.poisson(0.5))
                stream_rows.append(
                    {"ts": T0 + second, "participant": rx, "peer": tx, "direction": "in", "kind": kind,
                     "ssrc": hash((rx, tx, kind)) % 10_000, "packets": 50, "packets_lost": lost,
                     "loss_pct": 100.0 * lost / (50 + lost), "jitter_ms": float(rng.gamma(2.0, 3.0)),
                     "rtt_ms": None, "bitrate_kbps": 400.0 if kind == "video" else 32.0,
                     "fps": float(fps - rng.integers(0, 2)) if kind == "video" else None,
                     "freezes": int(rng.random() < 0.02) if kind == "video" else 0,
                     "freeze_ms": 0.0, "frames_unreadable": 0}
                )
    streams = pd.DataFrame(stream_rows)

    probe_rows = []
    processes = [("locust", 100), ("media_host", 200), ("media_host", 201)]
    if with_sut:
        processes.append(("sut", 300))
    for second in range(duration):
        for role, pid in processes:
            probe_rows.append(
                {"ts": T0 + second + 0.5, "host": "lg1", "role": role, "pid": pid, "name": role,
                 "cpu_pct": float(rng.uniform(20, 60)), "rss_mb": 120.0, "loop_lag_ms": None}
            )
    probes = pd.DataFrame(probe_rows)

    audio = pd.DataFrame(
        {
            "ts": T0 + 2 + np.arange(duration * len(pairs), dtype=float) / len(pairs),
            "receiver": [rx for _ in range(duration) for rx, _tx in pairs],
            "sender": [tx for _ in range(duration) for _rx, tx in pairs],
            "latency_ms": latency_ms * 0.8 * rng.lognormal(0.0, 0.15, duration * len(pairs)),
        }
    ) if with_audio else pd.DataFrame(columns=["ts", "receiver", "sender", "latency_ms"])

    events = pd.DataFrame([{"ts": T0, "kind": "start", "participant": None, "detail": "{}"}])
    return {"joins": joins, "frames": frames, "streams": streams, "audio": audio, "probes": probes,
            "events": events}


def make_manifest(system: str, *, status: str = "completed", run_id: str | None = None) -> dict[str, Any]:
    """A manifest with every key of docs/results.md."""
    return {
        "schema_version": 1,
        "run_id": run_id or f"20260528T202640Z-{system}-ab12",
        "status": status,
        "started_utc": STARTED,
        "ended_utc": "2026-05-28T20:27:20.000Z",
        "scenario": {"name": "small-call", "participants": 3},
        "scenario_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "system": {"name": system, "url": f"http://10.0.0.1:8080/{system}", "version": "1.2.3"},
        "harness": {"version": "0.1.0", "git_commit": "0123456789abcdef"},
        "host": {"hostname": "bench-1", "cpu_model": "Test CPU @ 3 GHz", "cores": 8, "kernel": "6.1.0",
                 "python": "3.11.2", "packages": {"aiortc": "1.16.0", "locust": "2.47.0"}},
        "clock_sync": {"state": "same-host", "detail": "sender and receiver share a clock"},
        "instrument_floor": None,
        "errors": [],
        "invalid_reasons": [],
    }


def _distribution(p50: float | None, p95: float | None, samples: int) -> dict[str, Any]:
    return {"p50": p50, "p95": p95, "p99": None, "mean": p50 and p50 * 1.1, "samples": samples}


def make_summary(
    system: str, *, sut: bool = True, thresholds: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """A summary.json with every key of docs/results.md."""
    return {
        "schema_version": 1,
        "run_id": f"20260528T202640Z-{system}-ab12",
        "system": system,
        "status": "completed",
        "join_ms": _distribution(400, 580, 3),
        "video_latency_ms": _distribution(81.2, 130.5, 1800),
        "audio_latency_ms": _distribution(64.0, 90.0, 180),
        "rtt_ms": _distribution(None, None, 0),
        "jitter_ms": _distribution(5.2, 12.1, 360),
        "fps": _distribution(10, 10, 180),
        "bitrate_kbps": _distribution(400, 410, 180),
        "packet_loss_pct": 0.98,
        "frame_loss_pct": 0.1,
        "freezes_per_min": 1.2,
        "participants": {"planned": 4, "joined": 3, "failed": 1},
        "sut_cpu_pct": {"mean": 40.0, "max": 59.9} if sut else None,
        "loadgen_cpu_pct": {"mean": 120.0, "max": 170.0},
        # p0's downlink narrowed 10 s in and widened 20 s in (make_tables' frames keep one size).
        "layer_switch_ms": {"down": [None], "up": [0.0], "changes": [
            {"group": "all", "receiver": "p0", "sender": "p1", "at_s": 10.0, "change": "restricted",
             "width_before": 640, "switch_ms": None, "width_after": None},
            {"group": "all", "receiver": "p0", "sender": "p1", "at_s": 20.0, "change": "restored",
             "width_before": 640, "switch_ms": 0.0, "width_after": None}]},
        "thresholds": list(thresholds),
    }


def make_run(system: str, seed: int = 0, **kwargs: Any) -> RunData:
    """A RunData built directly from synthetic tables (no store involved)."""
    status = kwargs.pop("status", "completed")
    sut = kwargs.get("with_sut", True)
    thresholds = kwargs.pop("thresholds", ())
    return RunData(
        label=system,
        run_dir=Path(f"/results/20260528T202640Z-{system}-ab12"),
        manifest=make_manifest(system, status=status),
        summary=make_summary(system, sut=sut, thresholds=thresholds),
        tables=make_tables(seed, **kwargs),
    )


def two_runs() -> list[RunData]:
    expr = "video_latency_ms.p95 < 200"
    return [
        make_run("reference", 1, thresholds=[{"expr": expr, "value": 130.5, "ok": True}]),
        make_run("janus", 2, latency_ms=140.0, with_sut=False,
                 thresholds=[{"expr": expr, "value": 231.0, "ok": False}]),
    ]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def figure_texts(fig: Figure) -> list[str]:
    """Every piece of text drawn on a figure: titles, labels, legend entries, annotations."""
    return [text.get_text() for text in fig.findobj(Text) if isinstance(text, Text) and text.get_text()]


# --- the page -------------------------------------------------------------------------------------------


def test_report_of_two_systems(tmp_path: Path) -> None:
    runs = two_runs()
    index = render_report(runs, tmp_path / "report", "Small call")

    assert index == tmp_path / "report" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "<h1>Small call</h1>" in page
    assert "reference" in page and "janus" in page
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    names = [name for name, _ in charts_for(runs)]
    assert len(embedded) == len(names) == len(CHARTS)  # audio rows exist, so every chart is shown
    for name, encoded in zip(names, embedded, strict=True):
        png = (tmp_path / "report" / f"{name}.png").read_bytes()
        assert base64.b64decode(encoded) == png
        width, height = png_size(png)
        assert width >= 800 and height >= 400
    # Self-contained: nothing is fetched and nothing runs.
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert not list((tmp_path / "report").glob(".*partial"))


def test_page_shows_summary_thresholds_and_facts() -> None:
    runs = two_runs()
    page = _page(runs)
    for key in ("join_ms", "video_latency_ms", "audio_latency_ms", "rtt_ms", "jitter_ms", "fps",
                "bitrate_kbps", "packet_loss_pct", "frame_loss_pct", "freezes_per_min", "participants",
                "sut_cpu_pct", "loadgen_cpu_pct"):
        assert f'class="key">{key}<' in page
    assert "81.2 / 130<br><small>n=1800</small>" in page  # p50 / p95 with the sample count
    assert "3 / 4" in page  # participants joined / planned
    assert "not watched" in page  # janus has sut_cpu_pct null
    assert '<td class="num pass"><b>pass</b> <small>(130)</small>' in page
    assert '<td class="num fail"><b>fail</b> <small>(231)</small>' in page
    sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    for fact in ("Test CPU @ 3 GHz", "6.1.0", "aiortc 1.16.0", "same-host", "0123456789abcdef",
                 "2026-05-28T20:26:40.000Z", sha):
        assert fact in page
    assert "bench-1" not in page  # the hostname is not on the whitelist


def test_the_whole_machine_and_its_steal_are_shown_once_watched() -> None:
    runs = two_runs()
    assert 'class="key">machine_steal_pct<' not in _page(runs)  # runs from before: no empty row
    runs[0].summary["machine_cpu_pct"] = {"mean": 150.0, "max": 190.0}
    runs[0].summary["machine_steal_pct"] = {"mean": 23.0, "max": 61.0}
    page = _page(runs)
    assert 'class="key">machine_cpu_pct<' in page and 'class="key">machine_steal_pct<' in page
    assert "Machine CPU withheld by its hypervisor: steal" in page and "23.0 / 61.0" in page


def test_status_failed_and_invalid_in_red() -> None:
    failed = make_run("reference", 1, status="failed")
    failed.manifest["errors"] = ["server went away"]
    invalid = make_run("janus", 2, status="invalid")
    invalid.manifest["invalid_reasons"] = ["load generator saturated (media host at 100 % CPU)"]
    page = _page([failed, invalid])
    assert '<span class="bad">failed</span>' in page
    assert '<span class="bad">invalid</span>' in page
    assert "error: server went away" in page
    assert "invalid: load generator saturated" in page
    # Above everything else, a red box says that the invalid run's figures are the generator's.
    banner = page.index('<p class="invalid">janus')
    assert banner < page.index("<h2>Summary</h2>") and "describe the load generator" in page[banner:]
    assert '<p class="invalid">reference' not in page  # failed is not invalid


def test_strings_from_results_are_escaped() -> None:
    run = make_run("<script>alert(1)</script>", 1, status="failed")
    run.manifest["errors"] = ['<img src=x onerror="alert(2)">']
    run.manifest["scenario"]["name"] = "</title><script>alert(3)</script>"
    run.manifest["host"]["cpu_model"] = "<b>bold</b>"
    page = _page([run])
    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page


def test_secrets_in_the_manifest_are_not_shown() -> None:
    run = make_run("janus", 1)
    run.manifest["system"]["url"] = "wss://admin:hunter2@janus.example:8989/janus?apisecret=s3cret#frag"
    run.manifest["system"]["api_token"] = "tok-123"
    run.manifest["secrets"] = {"turn_password": "pw-456"}
    run.manifest["scenario"]["system_options"] = {"token": "tok-789"}
    page = _page([run])
    for secret in ("hunter2", "admin", "s3cret", "tok-123", "pw-456", "tok-789", "frag"):
        assert secret not in page
    assert "wss://janus.example:8989/janus?…" in page


def test_safe_url() -> None:
    assert safe_url("http://u:p@[::1]:80/x?y=1") == "http://[::1]:80/x?…"
    assert safe_url("ws://10.0.0.1:8188/") == "ws://10.0.0.1:8188/"
    assert safe_url("http://host:notaport/") == "(not shown: unparseable URL)"
    assert safe_url(None) is None


def test_runs_of_the_same_system_get_unique_labels(tmp_path: Path) -> None:
    first, second = make_run("reference", 1), make_run("reference", 2)
    second.manifest["run_id"] = "20260528T210000Z-reference-cd34"
    labels = [run.label for run in with_unique_labels([first, second])]
    assert labels == ["reference [ab12]", "reference [cd34]"]
    # The same run twice still gets two names.
    assert len({run.label for run in with_unique_labels([first, first])}) == 2
    page = render_report([first, second], tmp_path).read_text(encoding="utf-8")
    assert "reference [ab12]" in page and "reference [cd34]" in page


def test_page_is_a_pure_function_of_the_data(tmp_path: Path) -> None:
    runs = two_runs()
    first = render_report(runs, tmp_path / "a").read_bytes()
    second = render_report(runs, tmp_path / "b").read_bytes()
    assert first == second


def test_different_scenarios_are_flagged() -> None:
    first, second = two_runs()
    second.manifest["scenario"]["name"] = "big-call"
    page = _page([first, second])
    assert "different scenarios" in page
    assert "<h1>small-call / big-call</h1>" in page


def test_instrument_floor_is_shown() -> None:
    measured, unmeasured = two_runs()
    measured.manifest["instrument_floor"] = 42.5
    page = _page([measured, unmeasured])
    assert 'class="key">instrument_floor<' in page
    assert "42.5 ms" in page
    assert "not measured (no calibration in this run)" in page


def test_run_without_summary() -> None:
    run = make_run("reference", 1)
    running = RunData(label=run.label, run_dir=run.run_dir, manifest={**run.manifest, "status": "running"},
                      summary=None, tables=run.tables)
    page = _page([running])
    assert "no summary.json" in page
    assert '<span class="warn">running</span>' in page


def test_no_runs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError):
        render_report([], tmp_path)
    with pytest.raises(ReportError):
        build_report([], tmp_path)


def _page(runs: Sequence[RunData]) -> str:
    from harness.report.html import render_page

    return render_page(with_unique_labels(runs), [], None)


# --- charts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CHARTS))
def test_every_chart_has_title_units_and_legend(name: str) -> None:
    runs = two_runs()
    fig = CHARTS[name](runs)
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert axes
    for ax in axes:
        assert ax.get_title(), f"{name}: a panel without title"
        assert ax.get_xlabel() and ax.get_ylabel(), f"{name}: a panel without axis labels"
        assert "(" in ax.get_ylabel(), f"{name}: y axis without unit: {ax.get_ylabel()!r}"
    legend_texts = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    for run in runs:
        assert any(text.startswith(run.label) for text in legend_texts), f"{name}: {run.label} not in legend"
    assert NO_DATA not in figure_texts(fig)


@pytest.mark.parametrize("name", list(CHARTS))
def test_empty_tables_give_no_data_charts(name: str) -> None:
    bare = RunData(label="bare", run_dir=Path("/r/bare"), manifest={}, summary=None, tables={})
    schema_only = make_run("schema-only", 3)
    schema_only = RunData(
        label=schema_only.label, run_dir=schema_only.run_dir, manifest=schema_only.manifest, summary=None,
        tables={name: frame.iloc[0:0] for name, frame in schema_only.tables.items()},
    )
    fig = CHARTS[name]([bare, schema_only])
    texts = figure_texts(fig)
    assert any(NO_DATA in text or "no server process watched" in text for text in texts)
    assert any("bare (no data)" in text for text in texts)
    assert png_size(_png(fig))[0] > 0


def test_empty_runs_render_a_whole_report(tmp_path: Path) -> None:
    bare = RunData(label="bare", run_dir=Path("/r/bare"), manifest={}, summary=None, tables={})
    index = render_report([bare], tmp_path)
    page = index.read_text(encoding="utf-8")
    assert "confbench report" in page and "unknown" in page
    assert "audio_latency_cdf" not in page  # no audio rows anywhere: the chart is left out
    assert "layer_switches" not in page  # no network change: neither is this one
    expected = {f"{name}.png" for name in CHARTS if name not in ("audio_latency_cdf", "layer_switches")}
    assert {path.name for path in tmp_path.glob("*.png")} == expected


def test_one_run_with_data_and_one_without() -> None:
    runs = [make_run("reference", 1), RunData(label="bare", run_dir=Path("/r/b"), manifest={}, summary=None,
                                              tables={})]
    for name, func in charts_for(runs):
        texts = figure_texts(func(runs))
        assert any(text.startswith("reference") for text in texts), name
        assert any("bare (no data)" in text for text in texts), name


def test_audio_chart_only_when_audio_rows_exist() -> None:
    without = [make_run("reference", 1, with_audio=False)]
    assert "audio_latency_cdf" not in dict(charts_for(without))
    assert "audio_latency_cdf" in dict(charts_for([*without, make_run("janus", 2)]))


def test_server_not_watched_is_said() -> None:
    fig = CHARTS["cpu"]([make_run("janus", 2, with_sut=False)])
    texts = figure_texts(fig)
    assert "janus (no server process watched)" in texts
    assert "no server process watched" in texts


def test_cpu_sums_processes_sampling_out_of_step() -> None:
    # Two media hosts at a steady 80 % and 60 %, sampling once a second with offsets and jitter that
    # straddle the clock's seconds: summing by whole second would show dips to 60-80 % and spikes to 220 %.
    rng = np.random.default_rng(1)
    rows = []
    for pid, level, offset in ((1, 80.0, 0.05), (2, 60.0, 0.93)):
        for k in range(20):
            rows.append({"ts": T0 + k + offset + rng.uniform(-0.08, 0.08), "host": "h", "role": "media_host",
                         "pid": pid, "name": "media_host", "cpu_pct": level, "rss_mb": 100.0,
                         "loop_lag_ms": 1.0})
    run = RunData(label="p2p", run_dir=Path("/r/p"), manifest={"started_utc": STARTED}, summary=None,
                  tables={"probes": pd.DataFrame(rows)})
    fig = CHARTS["cpu"]([run])
    load_line = fig.get_axes()[0].get_lines()[0]
    values = np.asarray(load_line.get_ydata(), dtype=float)
    inner = values[~np.isnan(values)][1:-1]  # the first and last second may hold one process only
    assert len(inner) >= 15
    np.testing.assert_allclose(inner, 140.0)


def test_long_runs_get_wider_bins() -> None:
    run = make_run("reference", 1, duration=5)
    assert bin_width([run]) == 1.0
    long_probes = pd.DataFrame({"ts": [T0, T0 + 7200.0], "host": "h", "role": "sut", "pid": 1, "name": "x",
                                "cpu_pct": 1.0, "rss_mb": 1.0, "loop_lag_ms": None})
    long_run = RunData(label="long", run_dir=Path("/r/l"), manifest={"started_utc": STARTED}, summary=None,
                       tables={"probes": long_probes})
    assert bin_width([long_run]) == 15.0


def test_time_origin_from_manifest_or_data() -> None:
    run = make_run("reference", 1)
    assert run.start_ts() == pytest.approx(T0)
    no_start = RunData(label="x", run_dir=Path("/r/x"), manifest={}, summary=None,
                       tables={"audio": pd.DataFrame({"ts": [T0 + 5, T0 + 3]})})
    assert no_start.time_origin() == pytest.approx(T0 + 3)


def _png(fig: Figure) -> bytes:
    from harness.report.html import figure_png

    return figure_png(fig)


# --- loading from disk ----------------------------------------------------------------------------------


def test_load_run_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such results folder") as caught:
        load_run(tmp_path / "nope")
    assert "\n" not in str(caught.value)


def test_load_run_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no manifest.json"):
        load_run(tmp_path)


def test_build_report_through_the_store(tmp_path: Path) -> None:
    from harness.store.manifest import write_manifest, write_summary
    from harness.store.writer import RunWriter

    run_dirs = []
    for seed, system in enumerate(("reference", "janus")):
        run_dir = tmp_path / "results" / f"20260528T202640Z-{system}-ab1{seed}"
        write_manifest(run_dir, make_manifest(system, run_id=run_dir.name))
        write_summary(run_dir, make_summary(system))
        with RunWriter(run_dir) as writer:
            for table, frame in make_tables(seed, duration=10).items():
                rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
                        for row in frame.to_dict("records")]
                writer.append(table, rows)
        run_dirs.append(run_dir)

    loaded = load_run(run_dirs[0])
    assert loaded.label == "reference"
    assert loaded.summary is not None and loaded.summary["system"] == "reference"
    assert len(loaded.table("frames")) > 0

    index = build_report(run_dirs, tmp_path / "report", title="From disk")
    page = index.read_text(encoding="utf-8")
    assert "<h1>From disk</h1>" in page
    assert "reference" in page and "janus" in page
    assert page.count("data:image/png;base64,") == len(CHARTS)
    for name in CHARTS:
        png_size((tmp_path / "report" / f"{name}.png").read_bytes())
