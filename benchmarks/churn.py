"""Long runs under churn: does anything the load generator or the reference SFU holds keep growing?

Runs ``confbench run scenarios/churn.toml --system reference`` (two participants stay, four others leave after
15 s and are replaced at once by newcomers, all run long) for ``--minutes`` (default 30), one Locust process.
Every ``--sample-s`` seconds it reads, from /proc through psutil, each process's RSS, open file descriptors,
sockets (descriptors that are sockets) and threads, for two sides:

- ``generator``: the Locust process and its media host, summed;
- ``sfu``: the reference SFU's process.

and the asyncio tasks alive in each: the media host writes its count into its ``probes`` rows (column
``tasks``, read from the run folder as it grows), the SFU reports it at ``GET /health``.

Every minute it prints each figure's median over that minute (churn makes bursts and dips of sockets and tasks
as participants come and go; a leak raises the median, see ``harness.analysis.growth``); every sample is kept
in ``churn-samples.csv`` of the results folder. At the end
it says for every figure whether it levelled off: over 6 minutes or more, the slope of the last half against
a tolerance per minute (the slope of the first minutes printed beside it); over fewer, the growth from minute
1 to the last against a bound (the CI form, ``--minutes 3``). Exit status 1 when a figure did not level off
or the run failed, 0 otherwise.

Run: nice -n 10 .venv/bin/python benchmarks/churn.py [--minutes M] [--sample-s S] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pyarrow.parquet as pq

from harness.analysis.growth import judge
from harness.scenario.scenario import load_scenario

CLI = [sys.executable, "-m", "harness.cli"]
SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "churn.toml"
FIGURES = ("rss_mb", "fds", "sockets", "threads", "tasks")
SIDES = ("generator", "sfu")
WARMUP_S = 15.0
"""Minute 1 starts this long after the scenario's participants first were all in the call: past the first churn
cycle (stay_s 15 s), with every subscription made."""
TOLERANCE_PER_MIN = {"rss_mb": 1.0, "fds": 1.0, "sockets": 1.0, "threads": 1.0, "tasks": 2.0}
"""Long runs: the largest slope per minute over the last half that still counts as level. A leak of one socket
or task per churned participant grows by ~15 a minute here; RSS of CPython processes creeps a little for a long
time (allocator arenas) even without a leak."""
BOUND = {"rss_mb": 150.0, "fds": 12, "sockets": 12, "threads": 12, "tasks": 40}
"""Short runs: the most a figure may grow from minute 1 to the last. Counts: generous against noise (a join in
flight at every sample of a minute; a media host runs ~15 threads per participant), tight against a leak of one
object per churned participant (~15 a minute). RSS: the media host's grows by tens of MB a minute in its first
minutes (decoders, buffers, allocator arenas), so a short run catches only a gross leak; the long run judges it."""


@dataclass(slots=True)
class Window:
    """The samples of one minute: per side and figure, the values seen."""

    values: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def median(self, side: str, figure: str) -> float | None:
        seen = self.values.get((side, figure))
        return statistics.median(seen) if seen else None


def _children(root: psutil.Process) -> tuple[list[psutil.Process], psutil.Process | None]:
    """(generator processes, SFU process) under the controller."""
    generator: list[psutil.Process] = []
    sfu = None
    try:
        procs = root.children(recursive=True)
    except psutil.Error:
        return [], None
    for proc in procs:
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "harness.reference.server" in cmd:
            sfu = proc
        elif "locust" in cmd or "harness.host.media_host" in cmd:
            generator.append(proc)
    return generator, sfu


def _sockets(proc: psutil.Process) -> int:
    count = 0
    try:
        for fd in os.listdir(f"/proc/{proc.pid}/fd"):
            try:
                if os.readlink(f"/proc/{proc.pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:
                continue  # closed meanwhile
    except OSError:
        pass
    return count


def _footprint(procs: Iterable[psutil.Process]) -> dict[str, float] | None:
    """RSS, fds, sockets and threads summed over ``procs`` (None when none could be read)."""
    total = {"rss_mb": 0.0, "fds": 0.0, "sockets": 0.0, "threads": 0.0}
    read = False
    for proc in procs:
        try:
            with proc.oneshot():
                total["rss_mb"] += proc.memory_info().rss / 2**20
                total["fds"] += proc.num_fds()
                total["threads"] += proc.num_threads()
            total["sockets"] += _sockets(proc)
            read = True
        except psutil.Error:
            continue
    return total if read else None


def _sfu_tasks(sfu: psutil.Process) -> int | None:
    try:
        ports = [c.laddr.port for c in sfu.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    except psutil.Error:
        return None
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                return int(json.load(response)["tasks"])
        except (OSError, ValueError, KeyError):
            continue
    return None


class MediaHostTasks:
    """The media host's ``tasks`` from the run's ``probes`` parts, reading each part once."""

    def __init__(self, results: Path) -> None:
        self._results = results
        self._seen: set[Path] = set()
        self.rows: list[tuple[float, int, int]] = []
        """(ts, pid, tasks)."""

    def poll(self) -> None:
        for part in sorted(self._results.glob("*/probes/part-*.parquet")):
            if part in self._seen:
                continue
            self._seen.add(part)
            try:
                table = pq.read_table(part).to_pydict()
            except Exception:  # noqa: BLE001 - a part being renamed into place: read it next time
                self._seen.discard(part)
                continue
            if "tasks" not in table:
                continue
            for ts, role, pid, tasks in zip(table["ts"], table["role"], table["pid"], table["tasks"], strict=True):
                if role == "media_host" and tasks is not None:
                    self.rows.append((float(ts), int(pid), int(tasks)))

    def median(self, start: float, end: float) -> float | None:
        """Sum over media hosts of each one's median count between ``start`` and ``end`` (UNIX seconds)."""
        seen: dict[int, list[int]] = defaultdict(list)
        for ts, pid, tasks in self.rows:
            if start <= ts < end:
                seen[pid].append(tasks)
        return float(sum(statistics.median(v) for v in seen.values())) if seen else None


def _row(minute: int, window: Window) -> str:
    cells = []
    for side in SIDES:
        parts = []
        for figure in FIGURES:
            value = window.median(side, figure)
            parts.append("-" if value is None else (f"{value:.1f}" if figure == "rss_mb" else f"{value:.0f}"))
        cells.append(" ".join(f"{p:>7}" for p in parts))
    return f"{minute:>6}  " + "  |".join(cells)


def _header() -> str:
    names = " ".join(f"{f.replace('_mb', ''):>7}" for f in FIGURES)
    return (f"{'':>6}  {'generator (Locust + media host)':^39}  |{'reference SFU':^39}\n"
            f"{'minute':>6}  {names}  |{names}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=30, help="minutes measured (default: 30)")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples (default: 5)")
    parser.add_argument("--scenario", type=Path, default=SCENARIO, help="default: scenarios/churn.toml")
    parser.add_argument("--results", type=Path, help="results folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.minutes < 1 or not 0.5 <= args.sample_s <= 60:
        parser.error("--minutes must be at least 1 and --sample-s 0.5..60")
    with tempfile.TemporaryDirectory(prefix="confbench-churn-") as tmp:
        results = args.results or Path(tmp)
        results.mkdir(parents=True, exist_ok=True)
        return _run(args.scenario, args.minutes, args.sample_s, results)


def _run(scenario: Path, minutes: int, sample_s: float, results: Path) -> int:
    # The run lasts past the last minute measured: the ramp and warm-up before minute 1, and a small margin after
    # it (the CI form must end within 4 minutes).
    duration = int(minutes * 60 + WARMUP_S + 10)
    cmd = [*CLI, "run", str(scenario), "--system", "reference", "--duration", str(duration), "--processes", "1",
           "--results", str(results), "--no-report"]
    print(f"churn: {' '.join(cmd[2:])} ({minutes} min measured, a sample every {sample_s:g} s)", flush=True)
    log_path = results / "churn-run.log"
    with open(log_path, "wb") as log:
        controller = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            windows = _watch(controller, minutes, sample_s, results, load_scenario(scenario).participants)
        finally:
            try:
                code = controller.wait(timeout=duration + 300)
            except subprocess.TimeoutExpired:
                controller.kill()
                code = controller.wait(timeout=30)
    return _verdict(windows, code, log_path)


def _joined(results: Path) -> int:
    """Joins so far, from the run's progress file (0 before it exists)."""
    for progress in results.glob("*/progress.json"):
        try:
            return int(json.loads(progress.read_text()).get("joined", 0))
        except (OSError, ValueError, TypeError):
            return 0
    return 0


def _watch(controller: subprocess.Popen[bytes], minutes: int, sample_s: float, results: Path,
           planned: int) -> list[Window]:
    root = psutil.Process(controller.pid)
    tasks = MediaHostTasks(results)
    windows: list[Window] = []
    printed = 0
    start: float | None = None  # UNIX time minute 1 begins
    print(_header(), flush=True)
    give_up = time.time() + 180  # the first participants must be in the call within this
    while controller.poll() is None:
        time.sleep(sample_s)
        generator, sfu = _children(root)
        now = time.time()
        if start is None:
            if _joined(results) >= planned:
                start = now + WARMUP_S
            elif now > give_up:
                print(f"churn: the first {planned} participants were not in the call within 180 s", flush=True)
                break
            continue
        if now < start:
            continue
        minute = int((now - start) // 60)
        if minute >= len(windows):
            if windows:  # the previous minute ended
                _close(windows, tasks, start)
                printed = len(windows)
            if minute >= minutes:
                break
            windows.extend(Window() for _ in range(minute + 1 - len(windows)))
        window = windows[minute]
        sample: list[tuple[str, str, float]] = []
        for side, procs in (("generator", generator), ("sfu", [sfu] if sfu else [])):
            sample += [(side, figure, value) for figure, value in (_footprint(procs) or {}).items()]
        if sfu is not None and (count := _sfu_tasks(sfu)) is not None:
            sample.append(("sfu", "tasks", count))
        with open(results / "churn-samples.csv", "a") as csv:
            for side, figure, value in sample:
                window.values[side, figure].append(value)
                csv.write(f"{now:.1f},{minute + 1},{side},{figure},{value:g}\n")
    if len(windows) > printed:  # the run ended during a minute: what it has
        _close(windows, tasks, start)
    return windows


def _close(windows: list[Window], tasks: MediaHostTasks, start: float | None) -> None:
    """Add the media host's task median to the last window and print its row."""
    assert start is not None
    index = len(windows) - 1
    tasks.poll()
    median = tasks.median(start + 60 * index, start + 60 * (index + 1))
    if median is not None:
        windows[index].values["generator", "tasks"].append(median)
    print(_row(index + 1, windows[index]), flush=True)


def _run_status(results: Path) -> tuple[str, list[str]]:
    """The run's status and the reasons the manifest gives for it (``unknown`` without a manifest)."""
    for manifest in sorted(results.glob("*/manifest.json")):
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        reasons = [*data.get("errors", []), *data.get("invalid_reasons", [])]
        try:
            summary = json.loads((manifest.parent / "summary.json").read_text())
        except (OSError, ValueError):
            summary = {}
        broken = [t for t in summary.get("thresholds", []) if not t.get("ok")]
        reasons += [f"threshold {t.get('expr')} broken (value {t.get('value')})"
                    for t in broken]
        status = str(data.get("status"))
        return ("failed" if broken and status in ("completed", "invalid") else status), reasons
    return "unknown", []


def _verdict(windows: list[Window], code: int, log_path: Path) -> int:
    ok = True
    status, reasons = _run_status(log_path.parent)
    # An invalid run (the generator saturated on a busy machine) measured less well, but what it leaked is
    # still what it leaked; a failed one (a server died, participants failed) is a failure here too.
    print(f"churn: run {status}{': ' + '; '.join(reasons) if reasons else ''} (exit code {code})", flush=True)
    if status not in ("completed", "invalid"):
        ok = False
        print(f"churn: the run did not complete; its output: {log_path}", flush=True)
        print(log_path.read_text(errors="replace")[-2000:], flush=True)
    if not windows:
        print("churn: nothing measured", flush=True)
        return 1
    print(f"levelled off? ({len(windows)} minutes; figures are per-minute medians)")
    for side in SIDES:
        for figure in FIGURES:
            series = [v for v in (w.median(side, figure) for w in windows) if v is not None]
            if len(series) < len(windows):
                print(f"  {side:<9} {figure:<8} missing in {len(windows) - len(series)} of {len(windows)} minutes")
                ok = False
                continue
            growth = judge(series, TOLERANCE_PER_MIN[figure], BOUND[figure])
            ok = ok and growth.levelled
            print(f"  {side:<9} {figure:<8} {growth.first:>8.1f} -> {growth.last:>8.1f}  early slope "
                  f"{growth.early_slope:+7.2f}/min  {growth.rule}  {'yes' if growth.levelled else 'NO'}")
    print(f"churn: {'every figure levelled off' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
