"""Native receivers against a real browser in the same room: do they see the same meeting?

A figure is only true on a path checked against what a person would see (DESIGN.md §3). The cross-check puts
one headless Chromium receiver beside the native (aiortc) receivers of a room and compares, per sender, what
both kinds measured of that sender's video:

- **latency**: the natives' p50 against the browser's p50 less what Chromium adds on top of a native receiver:
  its adaptive jitter buffer *in the same room* (its own ``jitterBufferDelay`` per emitted frame,
  ``jitter_buffer_ms``: a playout policy native receivers do not have) and its *render floor*, what it adds
  beyond that buffer (decode, delivery to the page), measured in a quiet room just before as its p50 less
  the natives' p50 on the same senders, less its buffer there. The quiet room's buffer is not a constant to
  carry over: Chromium's buffer settled at 158 ms in one quiet LiveKit room and 18 ms in the judged room
  after it, its latency following it both times (so an earlier rule that took off only the buffer's growth,
  never a shrink, put the browser 120 ms below the natives);
- **frame rate**: the natives' ``fps`` against Chromium's decoded ``framesPerSecond`` (``decoded_fps``: the
  page-counted rate merges frames that arrive between two rendering opportunities);
- **freezes** per stream-minute: of the same order (neither more than 3x the other plus 3 a minute, plus two
  standard deviations of the counting noise of two Poisson rates over the minutes counted). The
  browser's are the freezes Chromium itself counted (``reported_freezes``, its ``freezeCount``) where it
  reports them: the page sees frames only at its rendering opportunities, and a busy page's own stalls would
  count as the stream's; the page-counted figure is shown beside it;
- **packet loss**: within three binomial standard deviations of each other (and 0.5 percentage points), three
  for the room as a whole: with k senders each is held to the two-sided level of three sigmas divided by k
  (Bonferroni: 3.2 sigmas for 2 senders), else a room of many senders would disagree by chance more often
  than a room of one (a CI run checks six).

Pure functions of a run's tables (``harness.orchestrate.crosscheck`` runs the rooms).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import pandas as pd

from harness.analysis.summary import participant_engines, stream_owners


@dataclass(frozen=True, slots=True)
class Bounds:
    """How far native and browser figures may differ before the check fails."""

    latency_ms: float = 20.0
    fps: float = 2.0
    freeze_factor: float = 3.0
    freeze_slack_per_min: float = 3.0
    freeze_sigmas: float = 2.0
    """Counting noise allowed on top: this many standard deviations of the difference of two Poisson rates
    (a 30 s room counts a handful of freezes: 5 against 1 is not a disagreement)."""
    loss_sigmas: float = 3.0
    """For the room as a whole: each of its k senders is held to :func:`family_sigmas` of it."""
    loss_floor_pct: float = 0.5

    def __post_init__(self) -> None:
        if min(asdict(self).values()) < 0:
            raise ValueError("cross-check bounds must not be negative")


@dataclass(frozen=True, slots=True)
class SenderCheck:
    """What native receivers and the browser measured of one sender's video, and what disagreed."""

    sender: str
    native_p50_ms: float | None
    browser_p50_ms: float | None
    browser_buffer_ms: float | None
    browser_adjusted_ms: float | None
    native_fps: float | None
    browser_fps: float | None
    native_freezes_per_min: float | None
    browser_freezes_per_min: float | None
    browser_page_freezes_per_min: float | None
    native_loss_pct: float | None
    browser_loss_pct: float | None
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when every figure agreed within the bounds."""
        return not self.failures


def _p50(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.median()) if len(values) else None


def _window(table: pd.DataFrame, window: dict[str, Any] | None) -> pd.DataFrame:
    if not window or table.empty:
        return table
    return table[(table["ts"] >= window["start"]) & (table["ts"] <= window["end"])]


class _Room:
    """A run's video rows labelled by the publishing participant and by each receiver's engine."""

    def __init__(self, tables: dict[str, pd.DataFrame], window: dict[str, Any] | None) -> None:
        joins = tables["joins"]
        self.engine = participant_engines(joins)
        owners = stream_owners(joins)
        # Receivers may know a sender by its stamp's stream id, a display name of letters and digits, or its name.
        self._names = {**{f"stream-{sid}": p for sid, p in owners.items()},
                       **{"".join(ch for ch in p if ch.isalnum()): p for p in owners.values()},
                       **{p: p for p in owners.values()}}
        frames = _window(tables["frames"], window)
        self.frames = frames.assign(sender=[owners.get(int(sid), name) for sid, name in
                                            zip(frames["stream_id"], frames["sender"], strict=True)])
        streams = _window(tables["streams"], window)
        streams = streams[(streams["direction"] == "in") & (streams["kind"] == "video")]
        self.streams = streams.assign(sender=streams["peer"].map(lambda s: self._names.get(s, s)))

    def frames_of(self, sender: str, engine: str) -> pd.DataFrame:
        f = self.frames
        return f[(f["sender"] == sender) & (f["receiver"].map(self.engine.get) == engine)]

    def streams_of(self, sender: str, engine: str) -> pd.DataFrame:
        s = self.streams
        return s[(s["sender"] == sender) & (s["participant"].map(self.engine.get) == engine)]

    def native_senders(self) -> list[str]:
        return sorted({s for s in self.frames["sender"] if self.engine.get(s) == "native"})


@dataclass(frozen=True, slots=True)
class Floor:
    """What the browser receiver adds in a quiet room: latency over the natives', and its jitter buffer."""

    latency_ms: float
    buffer_ms: float


def render_floor(tables: dict[str, pd.DataFrame], window: dict[str, Any] | None = None) -> Floor | None:
    """The browser's floor in a quiet room: the median over native senders of its p50 less the natives' p50,
    and its median jitter buffer (None when the room has no sender both kinds received)."""
    room = _Room(tables, window)
    excess, buffers = [], []
    for sender in room.native_senders():
        native = _p50(room.frames_of(sender, "native")["latency_ms"])
        browser = _p50(room.frames_of(sender, "browser")["latency_ms"])
        if native is not None and browser is not None:
            excess.append(browser - native)
            buffer = _p50(room.streams_of(sender, "browser").get("jitter_buffer_ms", pd.Series(dtype=float)))
            buffers.append(buffer or 0.0)
    if not excess:
        return None
    return Floor(float(pd.Series(excess).median()), float(pd.Series(buffers).median()))


def _loss(streams: pd.DataFrame) -> tuple[float | None, float]:
    lost, got = float(streams["packets_lost"].sum()), float(streams["packets"].sum())
    return (100.0 * lost / (lost + got) if lost + got else None), lost + got


def _minutes(streams: pd.DataFrame) -> float:
    """Stream-minutes the rows cover (one row per stream and second)."""
    return max(len(streams), 1) / 60.0


def _freezes(streams: pd.DataFrame, column: str = "freezes") -> float | None:
    if column not in streams.columns or not len(streams) or streams[column].isna().all():
        return None
    return float(streams[column].sum()) / (len(streams) / 60.0)


def family_sigmas(sigmas: float, comparisons: int) -> float:
    """The standard deviations each of ``comparisons`` tests must allow so that all of them together raise a
    false alarm no more often than one test at ``sigmas`` does (Bonferroni, two-sided, normal)."""
    if comparisons <= 1:
        return sigmas
    normal = NormalDist()
    one = 2 * (1 - normal.cdf(sigmas))
    return normal.inv_cdf(1 - one / (2 * comparisons))


def check_room(tables: dict[str, pd.DataFrame], floor: Floor, bounds: Bounds | None = None,
               window: dict[str, Any] | None = None) -> list[SenderCheck]:
    """Per native sender, native receivers against the browser receiver (``floor``: its quiet-room floor)."""
    bounds = bounds or Bounds()
    room = _Room(tables, window)
    checks = []
    loss_sigmas = family_sigmas(bounds.loss_sigmas, len(room.native_senders()))
    for sender in room.native_senders():
        native_frames, browser_frames = room.frames_of(sender, "native"), room.frames_of(sender, "browser")
        native_rows, browser_rows = room.streams_of(sender, "native"), room.streams_of(sender, "browser")
        if native_frames.empty or browser_frames.empty:
            continue  # one kind did not receive this sender (it was the only native, say)
        native_p50 = _p50(native_frames["latency_ms"])
        browser_p50 = _p50(browser_frames["latency_ms"])
        buffer = _p50(browser_rows.get("jitter_buffer_ms", pd.Series(dtype=float)))
        # = p50 - this room's buffer - (quiet excess - quiet buffer): the render floor, the buffer as it is here
        growth = (buffer or 0.0) - floor.buffer_ms
        adjusted = None if browser_p50 is None else browser_p50 - floor.latency_ms - growth
        native_fps = _p50(native_rows["fps"])
        browser_fps = _p50(browser_rows.get("decoded_fps", browser_rows["fps"]))
        native_freezes, page_freezes = _freezes(native_rows), _freezes(browser_rows)
        browser_freezes = _freezes(browser_rows, "reported_freezes")
        if browser_freezes is None:
            browser_freezes = page_freezes
        (native_loss, n_native), (browser_loss, n_browser) = _loss(native_rows), _loss(browser_rows)
        failures = []
        if native_p50 is None or adjusted is None:
            failures.append("latency: not measured by both kinds")
        elif abs(adjusted - native_p50) > bounds.latency_ms:
            failures.append(f"latency: native p50 {native_p50:.1f} ms, browser {adjusted:.1f} ms less its buffer "
                            f"and render floor (bound ±{bounds.latency_ms:g} ms)")
        if native_fps is None or browser_fps is None or abs(native_fps - browser_fps) > bounds.fps:
            failures.append(f"fps: native {native_fps}, browser {browser_fps} (bound ±{bounds.fps:g})")
        if native_freezes is not None and browser_freezes is not None:
            low, high = sorted((native_freezes, browser_freezes))
            noise = math.sqrt(native_freezes / _minutes(native_rows) + browser_freezes / _minutes(browser_rows))
            if high > bounds.freeze_factor * low + bounds.freeze_slack_per_min + bounds.freeze_sigmas * noise:
                failures.append(f"freezes: native {native_freezes:.1f}/min, browser {browser_freezes:.1f}/min "
                                f"(not of the same order)")
        if native_loss is not None and browser_loss is not None:
            pooled = (native_loss * n_native + browser_loss * n_browser) / 100.0 / (n_native + n_browser)
            sigma = 100.0 * math.sqrt(max(pooled * (1 - pooled), 0.0) * (1 / n_native + 1 / n_browser))
            allowed = max(loss_sigmas * sigma, bounds.loss_floor_pct)
            if abs(native_loss - browser_loss) > allowed:
                failures.append(f"loss: native {native_loss:.2f} %, browser {browser_loss:.2f} % "
                                f"(bound ±{allowed:.2f} points)")
        checks.append(SenderCheck(sender, native_p50, browser_p50, buffer, adjusted, native_fps, browser_fps,
                                  native_freezes, browser_freezes, page_freezes, native_loss, browser_loss,
                                  tuple(failures)))
    return checks


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_checks(checks: list[SenderCheck], floor: Floor) -> str:
    """A table a person reads: one line per sender, then what disagreed."""
    lines = [f"browser render floor {floor.latency_ms - floor.buffer_ms:.1f} ms (quiet room: {floor.latency_ms:.1f} ms "
             f"over native, of which jitter buffer {floor.buffer_ms:.1f} ms); 'adjusted' is the browser's p50 less "
             "its buffer here and its render floor",
             f"{'sender':<16} {'native p50':>10} {'browser':>8} {'buffer':>7} {'adjusted':>8} {'fps n/b':>11} "
             f"{'freezes/min n/b(page)':>21} {'loss % n/b':>11}  verdict"]
    for c in checks:
        freezes = (f"{_fmt(c.native_freezes_per_min)}/{_fmt(c.browser_freezes_per_min)}"
                   f"({_fmt(c.browser_page_freezes_per_min)})")
        lines.append(f"{c.sender:<16} {_fmt(c.native_p50_ms):>10} {_fmt(c.browser_p50_ms):>8} "
                     f"{_fmt(c.browser_buffer_ms):>7} {_fmt(c.browser_adjusted_ms):>8} "
                     f"{_fmt(c.native_fps) + '/' + _fmt(c.browser_fps):>11} "
                     f"{freezes:>21} "
                     f"{_fmt(c.native_loss_pct, 2) + '/' + _fmt(c.browser_loss_pct, 2):>11}  "
                     f"{'agree' if c.ok else 'DISAGREE'}")
    for c in checks:
        lines += [f"  {c.sender}: {failure}" for failure in c.failures]
    return "\n".join(lines)


def to_json(checks: list[SenderCheck], floor: Floor, bounds: Bounds) -> dict[str, Any]:
    """The cross-check as data (``crosscheck.json`` beside the judged run's tables)."""
    return {"schema_version": 1, "floor": asdict(floor), "bounds": asdict(bounds),
            "ok": bool(checks) and all(c.ok for c in checks),
            "senders": [{**asdict(c), "ok": c.ok} for c in checks]}
