"""Charts: pure functions from runs to a matplotlib :class:`~matplotlib.figure.Figure`.

Every chart takes the runs being compared (one per system, usually) and draws all of them, one colour per
run in the order given, so that the same system has the same colour in every chart. Figures are built with
:class:`matplotlib.figure.Figure` directly rather than pyplot: nothing is registered globally, no window can
open, and a figure is freed like any other object once the caller drops it.

A new metric is one new function decorated with :func:`chart`; :data:`CHARTS` keeps them in page order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

import matplotlib
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from harness.analysis.seconds import per_process_seconds
from harness.report.data import RunData
from harness.report.series import (
    as_floats,
    bin_width,
    binned_quantiles,
    finite_values,
    seconds_since_start,
    select_rows,
    time_bins,
    with_gaps,
)

ChartFunc = Callable[[Sequence[RunData]], Figure]
FloatArray = npt.NDArray[np.float64]

#: Every chart, name → function, in the order the page shows them. The name is also the PNG's file name.
CHARTS: dict[str, ChartFunc] = {}

# Charts that only make sense when some run has rows in a given table (name → table); the page leaves them
# out otherwise instead of showing an empty panel for a metric the scenario never measured.
_ONLY_WITH: dict[str, str] = {}
_ONLY_IF: dict[str, Callable[[RunData], bool]] = {}

NO_DATA = "no data"

_WIDTH = 10.0
_HEIGHT = 5.5
_HEIGHT_TWO_ROWS = 7.5
# The most points a line needs: a CDF of a million frames looks the same drawn through 4000 quantiles.
_MAX_CDF_POINTS = 4000
_MAX_STRIP_POINTS = 1500
_LOADGEN_ROLES = ("locust", "media_host")
_SUT_ROLES = ("sut",)


def chart(name: str, *, only_with: str | None = None,
          only_if: Callable[[RunData], bool] | None = None) -> Callable[[ChartFunc], ChartFunc]:
    """Register a chart function under ``name`` (its PNG file name) in :data:`CHARTS`.

    ``only_with`` names a table: the chart is left out of a report in which no run has rows in it;
    ``only_if``: left out unless some run passes the test.
    """

    def register(func: ChartFunc) -> ChartFunc:
        if name in CHARTS:
            raise ValueError(f"chart {name!r} is registered twice")
        CHARTS[name] = func
        if only_with is not None:
            _ONLY_WITH[name] = only_with
        if only_if is not None:
            _ONLY_IF[name] = only_if
        return func

    return register


def charts_for(runs: Sequence[RunData]) -> list[tuple[str, ChartFunc]]:
    """The charts a report of ``runs`` shows, in page order."""
    selected: list[tuple[str, ChartFunc]] = []
    for name, func in CHARTS.items():
        table, test = _ONLY_WITH.get(name), _ONLY_IF.get(name)
        if ((table is None or any(len(run.table(table)) for run in runs))
                and (test is None or any(test(run) for run in runs))):
            selected.append((name, func))
    return selected


# --- helpers -----------------------------------------------------------------------------------------------


def color(index: int) -> tuple[float, float, float, float]:
    """The colour of the ``index``-th run, the same in every chart."""
    rgba = matplotlib.colormaps["tab10"](index % 10)
    return (float(rgba[0]), float(rgba[1]), float(rgba[2]), float(rgba[3]))


def _figure(
    nrows: int = 1, ncols: int = 1, *, sharex: bool = False, width_ratios: Sequence[float] | None = None
) -> tuple[Figure, list[Axes]]:
    height = _HEIGHT_TWO_ROWS if nrows > 1 else _HEIGHT
    fig = Figure(figsize=(_WIDTH, height), layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex, width_ratios=width_ratios)
    return fig, list(grid.ravel())


def format_number(value: float) -> str:
    """A figure with the digits a chart or table needs: 3 significant-ish digits, "–" when not finite."""
    if not math.isfinite(value):
        return "–"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _proxy(index: int) -> Artist:
    """A legend handle for a run that has nothing to draw in a chart."""
    return Line2D([], [], color=color(index), linestyle="none", marker="x")


def _no_data(ax: Axes, note: str = NO_DATA) -> None:
    ax.text(
        0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", fontsize=14, color="0.45",
        bbox={"boxstyle": "round", "facecolor": "0.95", "edgecolor": "0.8"},
    )


def _legend(fig: Figure, entries: Sequence[tuple[Artist, str]]) -> None:
    """One legend under the plot, naming every run: a legend never hides data and always lists all systems."""
    handles = [handle for handle, _ in entries]
    labels = [label for _, label in entries]
    longest = max((len(label) for label in labels), default=0)
    ncols = max(1, min(len(entries), 3 if longest < 30 else 2 if longest < 60 else 1))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, frameon=False)


def _from_zero(ax: Axes) -> None:
    """Start the y axis at zero (a drop from 30 to 28 must not look like a collapse), with headroom on top."""
    top = ax.get_ylim()[1] if ax.has_data() else 1.0
    ax.set_ylim(0.0, top * 1.06 if top > 0 else 1.0)


def _label_no_data(run: RunData, what: str = NO_DATA) -> str:
    return f"{run.label} ({what})"


def _plot_band(
    ax: Axes, series: pd.DataFrame, centre: float, low: float, high: float, index: int
) -> Artist:
    x = series.index.to_numpy(dtype=np.float64)
    (line,) = ax.plot(x, series[centre].to_numpy(dtype=np.float64), color=color(index), linewidth=1.6)
    ax.fill_between(
        x, series[low].to_numpy(dtype=np.float64), series[high].to_numpy(dtype=np.float64),
        color=color(index), alpha=0.18, linewidth=0,
    )
    return line


# --- charts ------------------------------------------------------------------------------------------------


def _latency_cdf(runs: Sequence[RunData], table: str, what: str, unit_of: str) -> Figure:
    fig, (ax,) = _figure()
    entries: list[tuple[Artist, str]] = []
    lows: list[float] = []
    highs: list[float] = []
    for index, run in enumerate(runs):
        values = np.sort(finite_values(run.table(table), "latency_ms"))
        if values.size == 0:
            entries.append((_proxy(index), _label_no_data(run)))
            continue
        fraction = 100.0 * np.arange(1, values.size + 1, dtype=np.float64) / values.size
        if values.size > _MAX_CDF_POINTS:
            keep = np.linspace(0, values.size - 1, _MAX_CDF_POINTS).astype(np.int64)
            x, y = values[keep], fraction[keep]
        else:
            x, y = values, fraction
        p50, p95 = (float(v) for v in np.percentile(values, [50, 95]))
        (line,) = ax.plot(x, y, color=color(index), drawstyle="steps-post", linewidth=1.6)
        ax.plot([p50, p95], [50.0, 95.0], linestyle="none", marker="o", color=color(index))
        for value, level in ((p50, 50.0), (p95, 95.0)):
            ax.annotate(
                f"{format_number(value)} ms", (value, level), textcoords="offset points", xytext=(5, -12),
                fontsize=8, color=color(index),
            )
        figures = f"p50 {format_number(p50)} ms, p95 {format_number(p95)} ms"
        entries.append((line, f"{run.label}: {figures} (n={values.size})"))
        lows.append(float(np.percentile(values, 1)))
        highs.append(float(values[-1]))
    ax.set_title(f"{what} latency CDF")
    ax.set_xlabel(f"{what.lower()} latency (ms)")
    ax.set_ylabel(f"{unit_of} with this latency or less (%)")
    ax.set_ylim(0.0, 102.0)
    ax.grid(True, alpha=0.3)
    if not highs:
        _no_data(ax)
    else:
        for level, name in ((50.0, "p50"), (95.0, "p95")):
            ax.axhline(level, color="0.6", linestyle=":", linewidth=0.8)
            ax.text(1.0, level, f" {name}", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
        low, high = min(lows), max(highs)
        # A log axis only when the spread is wide (a long tail); it cannot show zero or negative latencies,
        # which unsynchronised clocks can produce, so those keep a linear axis.
        if low > 0 and high / low > 20:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
    _legend(fig, entries)
    return fig


@chart("video_latency_cdf")
def video_latency_cdf(runs: Sequence[RunData]) -> Figure:
    """CDF of glass-to-glass video latency (``frames.latency_ms``) per run, p50 and p95 marked."""
    return _latency_cdf(runs, "frames", "Video", "frames")


@chart("latency_over_time")
def latency_over_time(runs: Sequence[RunData]) -> Figure:
    """Video latency per time bin: median line and a band up to p95, one line per run."""
    width = bin_width(runs)
    fig, (ax,) = _figure()
    entries: list[tuple[Artist, str]] = []
    for index, run in enumerate(runs):
        frames = run.table("frames")
        series = binned_quantiles(seconds_since_start(run, frames), as_floats(frames, "latency_ms"), width, (0.5, 0.95))
        if series.empty:
            entries.append((_proxy(index), _label_no_data(run)))
            continue
        entries.append((_plot_band(ax, series, 0.5, 0.5, 0.95, index), run.label))
    ax.set_title(f"Video latency over time (median per {width:g} s; shaded up to p95)")
    ax.set_xlabel("time since run start (s)")
    ax.set_ylabel("video latency (ms)")
    ax.grid(True, alpha=0.3)
    if not ax.lines:
        _no_data(ax)
    _mark_network_changes(ax, runs)
    _legend(fig, entries)
    return fig


def network_changes(run: RunData) -> list[tuple[float, str]]:
    """(seconds since the run's start, what changed) for each timeline change of its network profiles, and
    each server fault (killed; back after a restart)."""
    table = run.table("events")
    events = table[table["kind"].isin(("network_change", "server_restart", "server_kill"))] \
        if "kind" in table else table
    origin = run.time_origin()
    out = []
    for ts, kind, detail in zip(as_floats(events, "ts"), events.get("kind", pd.Series(dtype=str)),
                                events.get("detail", pd.Series(dtype=str)), strict=False):
        try:
            change = json.loads(detail)
        except (TypeError, ValueError):
            continue
        if not isinstance(change, dict) or not change.get("at_s") or origin is None or not math.isfinite(ts):
            continue  # the shapes a run starts with are not a change
        if kind == "server_kill":
            out.append((float(ts) - origin, "server killed"))
        elif kind == "server_restart":
            killed = change.get("killed_ts")
            if isinstance(killed, int | float) and math.isfinite(killed):
                out.append((float(killed) - origin, "server killed (restart)"))
            out.append((float(ts) - origin, "server back" if change.get("ok") else "server did not come back"))
        elif change.get("outage"):
            out.append((float(ts) - origin, f"{change.get('group')}: outage (link down)"))
        else:
            out.append((float(ts) - origin, f"{change.get('group')}: {change.get('summary', '')}"))
    return out


def _mark_network_changes(ax: Axes, runs: Sequence[RunData]) -> None:
    """A dashed line where a run's network changed (its timeline), labelled with the new shapes."""
    for index, run in enumerate(runs):
        for x, label in network_changes(run):
            ax.axvline(x, color=color(index), linestyle="--", linewidth=1.0, alpha=0.8)
            ax.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
                        textcoords="offset points", fontsize=7, va="top", rotation=90, color=color(index))


@chart("bitrate_over_time")
def bitrate_over_time(runs: Sequence[RunData]) -> Figure:
    """Received video bitrate per stream and time bin: median line, band p5–p95; network changes marked."""
    width = bin_width(runs)
    fig, (ax,) = _figure()
    entries: list[tuple[Artist, str]] = []
    for index, run in enumerate(runs):
        video = _inbound(run, "video")
        series = binned_quantiles(seconds_since_start(run, video), as_floats(video, "bitrate_kbps"), width,
                                  (0.05, 0.5, 0.95))
        if series.empty:
            entries.append((_proxy(index), _label_no_data(run)))
            continue
        entries.append((_plot_band(ax, series, 0.5, 0.05, 0.95, index), run.label))
    ax.set_title(f"Video bitrate received over time (per stream; median per {width:g} s, shaded p5–p95)")
    ax.set_xlabel("time since run start (s)")
    ax.set_ylabel("bitrate received (kbit/s)")
    ax.grid(True, alpha=0.3)
    _from_zero(ax)
    if not ax.lines:
        _no_data(ax)
    _mark_network_changes(ax, runs)
    _legend(fig, entries)
    return fig


def _switches(run: RunData) -> Sequence[dict[str, object]]:
    """The summary's layer_switch_ms rows (a run whose network changed), or none."""
    switch = (run.summary or {}).get("layer_switch_ms")
    changes = switch.get("changes") if isinstance(switch, dict) else None
    return [c for c in changes if isinstance(c, dict)] if isinstance(changes, list) else []


def _ms(value: object) -> str:
    return f"{float(value) / 1000:.1f} s" if isinstance(value, int | float) else "never"


@chart("layer_switches", only_if=lambda run: bool(_switches(run)))
def layer_switches(runs: Sequence[RunData]) -> Figure:
    """Decoded video width over time at the receivers whose network changed (simulcast layers show as steps),
    with the switch times of ``layer_switch_ms`` in the legend; network changes marked."""
    fig, (ax,) = _figure()
    entries: list[tuple[Artist, str]] = []
    for index, run in enumerate(runs):
        rows = _switches(run)
        frames = run.table("frames")
        pairs = {(str(r["receiver"]), str(r["sender"])) for r in rows}
        drawn = False
        for receiver, sender in sorted(pairs):
            got = select_rows(select_rows(frames, receiver=receiver), sender=sender)
            if not got.empty:
                x = seconds_since_start(run, got).to_numpy()
                y = as_floats(got, "width").to_numpy()
                # A second without a frame breaks the line: a freeze shows as a hole, not as a flat step.
                holes = np.flatnonzero(np.diff(x) > 1.0) + 1
                ax.plot(np.insert(x, holes, np.nan), np.insert(y, holes, np.nan), drawstyle="steps-post",
                        color=color(index), linewidth=1.2)
                drawn = True
        times = "; ".join(f"{r['change']} at {r['at_s']:g} s: {_ms(r['switch_ms'])}"
                          for r in rows if isinstance(r.get("at_s"), int | float))
        entries.append((_proxy(index), f"{run.label} ({times})" if drawn else _label_no_data(run)))
    ax.set_title("Decoded video width at the receivers whose network changed (simulcast layers as steps)")
    ax.set_xlabel("time since run start (s)")
    ax.set_ylabel("decoded width (px)")
    ax.grid(True, alpha=0.3)
    _from_zero(ax)
    if not ax.lines:
        _no_data(ax)
    _mark_network_changes(ax, runs)
    _legend(fig, entries)
    return fig


def _participants_joined(joins: pd.DataFrame) -> tuple[int, int]:
    """(participants with a successful join, participants that tried) in a joins table."""
    if "participant" not in joins.columns:
        return 0, 0
    tried = joins["participant"].nunique()
    ok = select_rows(joins, ok=True)
    return int(ok["participant"].nunique()) if len(ok) else 0, int(tried)


@chart("join_time")
def join_time(runs: Sequence[RunData]) -> Figure:
    """Join time and time to first frame per run: box (quartiles, whiskers 1.5 IQR) over every join."""
    fig, axes = _figure(1, 2)
    rng = np.random.default_rng(0)  # a fixed seed: the strip's jitter must not change between renders
    positions = np.arange(1, len(runs) + 1, dtype=np.float64)
    has_data = [False] * len(runs)
    panels = (
        (axes[0], "join_ms", "Join time", "join time (ms)"),
        (axes[1], "first_frame_ms", "Time to first video frame", "time from join start to first frame (ms)"),
    )
    for ax, column, title, ylabel in panels:
        data = [finite_values(run.table("joins"), column) for run in runs]
        filled = [i for i, values in enumerate(data) if values.size]
        if filled:
            ax.boxplot(
                [data[i] for i in filled], positions=positions[filled], widths=0.5, showfliers=False,
                manage_ticks=False, medianprops={"color": "black"},
            )
        for i in filled:
            has_data[i] = True
            values = data[i]
            if values.size > _MAX_STRIP_POINTS:
                values = rng.choice(values, _MAX_STRIP_POINTS, replace=False)
            x = positions[i] + rng.uniform(-0.18, 0.18, values.size)
            ax.scatter(x, values, s=16, alpha=0.6, color=color(i), linewidths=0, zorder=3)
        ticks = []
        for run in runs:
            if column == "join_ms":
                joined, tried = _participants_joined(run.table("joins"))
                ticks.append(f"{run.label}\n{joined}/{tried} joined")
            else:
                ticks.append(run.label)
        ax.set_xticks(positions, ticks)
        ax.set_xlim(0.4, len(runs) + 0.6)
        ax.set_title(title)
        ax.set_xlabel("system")
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.3)
        if not filled:
            _no_data(ax)
    fig.suptitle("Join time per system (box: quartiles, whiskers 1.5×IQR; dots: joins)")
    _legend(
        fig,
        [
            (Patch(color=color(i)), run.label if has_data[i] else _label_no_data(run))
            for i, run in enumerate(runs)
        ],
    )
    return fig


def _inbound(run: RunData, kind: str | None = None) -> pd.DataFrame:
    streams = select_rows(run.table("streams"), direction="in")
    return select_rows(streams, kind=kind) if kind is not None else streams


@chart("loss_and_jitter")
def loss_and_jitter(runs: Sequence[RunData]) -> Figure:
    """Inbound packet loss % (all streams pooled) and RTP jitter (median, band to p95) over time."""
    width = bin_width(runs)
    fig, (loss_ax, jitter_ax) = _figure(2, 1, sharex=True)
    entries: list[tuple[Artist, str]] = []
    for index, run in enumerate(runs):
        streams = _inbound(run)
        elapsed = seconds_since_start(run, streams)
        drawn: Artist | None = None
        # Pooled counts rather than a mean of per-stream percentages, so that a quiet stream with one lost
        # packet does not outweigh a busy one. Interval loss can be negative in RTCP (duplicates); clip it.
        counts = pd.DataFrame(
            {
                "bin": time_bins(elapsed, width),
                "received": as_floats(streams, "packets"),
                "lost": as_floats(streams, "packets_lost").clip(lower=0),
            }
        ).dropna()
        if len(counts):
            sums = counts.groupby("bin")[["received", "lost"]].sum()
            expected = sums["received"] + sums["lost"]
            loss = pd.DataFrame({"loss": (100.0 * sums["lost"] / expected.where(expected > 0))})
            loss = with_gaps(loss, width)
            (drawn,) = loss_ax.plot(loss.index, loss["loss"], color=color(index), linewidth=1.4)
        jitter = binned_quantiles(elapsed, as_floats(streams, "jitter_ms"), width, (0.5, 0.95))
        if not jitter.empty:
            line = _plot_band(jitter_ax, jitter, 0.5, 0.5, 0.95, index)
            drawn = drawn or line
        entries.append((drawn, run.label) if drawn is not None else (_proxy(index), _label_no_data(run)))
    loss_ax.set_title(f"Packet loss (inbound RTP, all streams, per {width:g} s)")
    loss_ax.set_ylabel("packet loss (%)")
    jitter_ax.set_title(f"Jitter (inbound RTP; median per {width:g} s, shaded up to p95)")
    jitter_ax.set_ylabel("jitter (ms)")
    jitter_ax.set_xlabel("time since run start (s)")
    for ax in (loss_ax, jitter_ax):
        ax.grid(True, alpha=0.3)
        _from_zero(ax)
        if not ax.lines:
            _no_data(ax)
    loss_ax.tick_params(labelbottom=True)
    loss_ax.set_xlabel("time since run start (s)")
    fig.suptitle("Packet loss and jitter over time")
    _legend(fig, entries)
    return fig


@chart("fps_and_freezes")
def fps_and_freezes(runs: Sequence[RunData]) -> Figure:
    """Received frame rate over time (median, band p5–p95 over streams) and freezes per run."""
    width = bin_width(runs)
    fig, (fps_ax, freeze_ax) = _figure(1, 2, width_ratios=(3, 1))
    entries: list[tuple[Artist, str]] = []
    totals: list[float] = []
    rates: list[float] = []
    for index, run in enumerate(runs):
        video = _inbound(run, "video")
        fps = binned_quantiles(seconds_since_start(run, video), as_floats(video, "fps"), width, (0.05, 0.5, 0.95))
        freezes = as_floats(video, "freezes")
        # Each streams row is one stream-second, so rows / 60 is stream-minutes (the summary's denominator).
        minutes = len(video) / 60.0
        totals.append(float(freezes.sum()) if freezes.notna().any() else math.nan)
        rates.append(totals[-1] / minutes if minutes else math.nan)
        if fps.empty and not freezes.notna().any():
            entries.append((_proxy(index), _label_no_data(run)))
            continue
        if not fps.empty:
            _plot_band(fps_ax, fps, 0.5, 0.05, 0.95, index)
        entries.append((Patch(color=color(index)), run.label))
    fps_ax.set_title(f"Frame rate (inbound video; median per {width:g} s, shaded p5–p95)")
    fps_ax.set_xlabel("time since run start (s)")
    fps_ax.set_ylabel("decoded frames per second (fps)")
    fps_ax.grid(True, alpha=0.3)
    _from_zero(fps_ax)
    if not fps_ax.lines:
        _no_data(fps_ax)

    positions = np.arange(len(runs), dtype=np.float64)
    heights = [0.0 if math.isnan(total) else total for total in totals]
    freeze_ax.bar(positions, heights, color=[color(i) for i in range(len(runs))], width=0.6)
    for x, total, rate in zip(positions, totals, rates, strict=True):
        if not math.isnan(total):
            freeze_ax.annotate(
                f"{total:.0f}\n({format_number(rate)} per\nstream-min)", (x, total),
                textcoords="offset points", xytext=(0, 3), ha="center", va="bottom", fontsize=8,
            )
    freeze_ax.set_xticks(positions, [run.label for run in runs], rotation=30, ha="right")
    freeze_ax.set_title("Freezes (inbound video)")
    freeze_ax.set_xlabel("system")
    freeze_ax.set_ylabel("freezes in the run (count)")
    freeze_ax.margins(y=0.25)
    freeze_ax.grid(True, axis="y", alpha=0.3)
    if all(math.isnan(total) for total in totals):
        _no_data(freeze_ax)
    fig.suptitle("Frame rate and freezes")
    _legend(fig, entries)
    return fig


def _cpu(run: RunData, roles: Sequence[str], width: float) -> pd.DataFrame:
    """CPU per time bin for the processes of ``roles``: the sum over processes and the busiest one.

    Per-process seconds come from :func:`harness.analysis.seconds.per_process_seconds` (the same alignment the
    summary's figures use); each process is then averaged within a bin, so a bin wider than the 1 s
    sampling does not add up several samples of one process.
    """
    probes = run.table("probes")
    if probes.empty or not {"pid", "role", "ts", "cpu_pct"} <= set(probes.columns):
        return pd.DataFrame(columns=["sum", "max"], dtype="float64")
    if "host" not in probes.columns:
        probes = probes.assign(host="")
    table = per_process_seconds(probes.assign(cpu_pct=as_floats(probes, "cpu_pct")), roles, "cpu_pct")
    if table.empty:
        return pd.DataFrame(columns=["sum", "max"], dtype="float64")
    origin = run.time_origin()
    if origin is None:
        return pd.DataFrame(columns=["sum", "max"], dtype="float64")
    bins = time_bins(pd.Series(table.index.to_numpy() - origin, index=table.index), width)
    per_bin = table.groupby(bins.to_numpy()).mean()
    result = pd.DataFrame({"sum": per_bin.sum(axis=1, min_count=1), "max": per_bin.max(axis=1)}).dropna()
    return with_gaps(result, width)


@chart("cpu")
def cpu(runs: Sequence[RunData]) -> Figure:
    """CPU over time: the load generator (Locust + media hosts, summed) and the server under test."""
    width = bin_width(runs)
    fig, (load_ax, sut_ax) = _figure(2, 1, sharex=True)
    entries: list[tuple[Artist, str]] = []
    for index, run in enumerate(runs):
        load = _cpu(run, _LOADGEN_ROLES, width)
        sut = _cpu(run, _SUT_ROLES, width)
        handle: Artist | None = None
        if not load.empty:
            (handle,) = load_ax.plot(load.index, load["sum"], color=color(index), linewidth=1.5)
            # The busiest single process shows saturation, which a sum over many processes hides.
            load_ax.plot(load.index, load["max"], color=color(index), linewidth=0.9, linestyle=":")
        if not sut.empty:
            (line,) = sut_ax.plot(sut.index, sut["sum"], color=color(index), linewidth=1.5)
            handle = handle or line
        if handle is None:
            entries.append((_proxy(index), _label_no_data(run)))
        elif sut.empty:
            entries.append((handle, _label_no_data(run, "no server process watched")))
        else:
            entries.append((handle, run.label))
    load_ax.set_title(
        f"Load generator CPU (Locust + media hosts, sum per {width:g} s; dotted: busiest process)"
    )
    load_ax.set_ylabel("CPU (% of one core)")
    sut_ax.set_title(f"Server under test CPU (per {width:g} s)")
    sut_ax.set_ylabel("CPU (% of one core)")
    sut_ax.set_xlabel("time since run start (s)")
    load_ax.set_xlabel("time since run start (s)")
    load_ax.tick_params(labelbottom=True)
    for ax in (load_ax, sut_ax):
        ax.grid(True, alpha=0.3)
        _from_zero(ax)
    if not load_ax.lines:
        _no_data(load_ax)
    if not sut_ax.lines:
        _no_data(sut_ax, "no server process watched")
    fig.suptitle("CPU over time")
    _legend(fig, entries)
    return fig


@chart("audio_latency_cdf", only_with="audio")
def audio_latency_cdf(runs: Sequence[RunData]) -> Figure:
    """CDF of audio latency (``audio.latency_ms``, pulse onset to detection) per run, p50 and p95 marked."""
    return _latency_cdf(runs, "audio", "Audio", "pulses")
