"""Does spreading participants over Locust processes or workers change what a run measures?

Runs one meeting K times in each of three ways, interleaved (one, two, master, one, two, master, ...) so that
a drift of the machine hits all three alike:

- ``one``: ``confbench run --processes 1`` (one Locust process, one media host);
- ``two``: ``confbench run --processes 2`` (Locust's local master and a worker process, two media hosts);
- ``master``: ``confbench master --workers 2`` and two ``confbench worker --master 127.0.0.1:PORT`` processes
  on this machine (the distributed path: samples reach the master as Locust messages, no shared disk).

It checks that every run of ``two`` and ``master`` holds samples from two media hosts, prints the medians of
the main figures per way, and asks ``confbench compare`` (bootstrap interval of the ratio of medians, Mann-
Whitney U from 5 repetitions a side) whether ``two`` and ``master`` differ from ``one``: "same" on every
metric is the expected answer. Exit status 1 when a run failed or lacked a worker's samples.

Run: .venv/bin/python benchmarks/workers_equivalence.py [--repeat K] [--duration S] [--results DIR]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.store.reader import RunReader

CLI = [sys.executable, "-m", "harness.cli"]
WAYS = ("one", "two", "master")
SCENARIO = """
name = "workers-equivalence"
description = "4 participants, everyone publishing and receiving everyone"
duration_s = {duration}
spawn_rate = 4
[media.video]
width = 320
height = 180
fps = 15
bitrate_kbps = 300
[[groups]]
name = "everyone"
count = 4
probe_fraction = 0.5
"""
FIGURES = (("video_latency_ms", "p50"), ("video_latency_ms", "p95"), ("audio_latency_ms", "p50"),
           ("rtt_ms", "p50"), ("jitter_ms", "p50"), ("fps", "p50"), ("bitrate_kbps", "p50"),
           ("packet_loss_pct", None), ("frame_loss_pct", None))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _new_run(folder: Path, before: set[Path]) -> Path | None:
    fresh = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.exists() else []
    fresh = [p for p in fresh if p not in before]
    return fresh[-1] if fresh else None


def run_once(way: str, scenario: Path, folder: Path, timeout: float) -> Path | None:
    """One run of ``way`` into ``folder``; its run folder (None when nothing was written)."""
    before = set(folder.iterdir()) if folder.exists() else set()
    common = ["--system", "reference", "--results", str(folder), "--no-report"]
    if way in ("one", "two"):
        processes = "1" if way == "one" else "2"
        subprocess.run([*CLI, "run", str(scenario), "--processes", processes, *common],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
        return _new_run(folder, before)
    port = _free_port()
    master = subprocess.Popen([*CLI, "master", str(scenario), "--workers", "2", "--port", str(port),
                               "--wait", "60", *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [subprocess.Popen([*CLI, "worker", "--master", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        master.wait(timeout=timeout)
        for worker in workers:
            worker.wait(timeout=60)
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return _new_run(folder, before)


def media_hosts(run_dir: Path) -> int:
    """How many media hosts' samples the run holds."""
    probes = RunReader(run_dir).table("probes")
    return int(probes[probes["role"] == "media_host"]["pid"].nunique()) if not probes.empty else 0


def figure(summary: dict, key: str, stat: str | None) -> float:
    value = summary.get(key)
    if stat is not None:
        value = (value or {}).get(stat)
    return float(value) if isinstance(value, int | float) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per way (default 5: Mann-Whitney U applies)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run (default 20)")
    parser.add_argument("--results", type=Path, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args()
    root = args.results or Path(tempfile.mkdtemp(prefix="confbench-workers-"))
    scenario = root / "scenario.toml"
    root.mkdir(parents=True, exist_ok=True)
    scenario.write_text(SCENARIO.format(duration=f"{args.duration:g}"))
    print(f"workers equivalence: 4 participants on reference, {args.duration:g} s, {args.repeat} runs per way, "
          f"into {root}", flush=True)
    summaries: dict[str, list[dict]] = {way: [] for way in WAYS}
    problems = 0
    for repetition in range(args.repeat):
        for way in WAYS:
            run_dir = run_once(way, scenario, root / way, timeout=args.duration + 300)
            summary = json.loads((run_dir / "summary.json").read_text()) if run_dir else {}
            hosts = media_hosts(run_dir) if run_dir else 0
            status = summary.get("status", "no results")
            wanted = 1 if way == "one" else 2
            if status != "completed" or hosts != wanted:
                problems += 1
            summaries[way].append(summary)
            print(f"  {repetition + 1}/{args.repeat} {way:<7} {status:<10} media hosts {hosts} (want {wanted})  "
                  f"video p50 {figure(summary, 'video_latency_ms', 'p50'):6.1f} ms", flush=True)
    print(f"\n{'median of runs':<22}" + "".join(f"{way:>10}" for way in WAYS))
    for key, stat in FIGURES:
        label = f"{key}.{stat}" if stat else key
        cells = []
        for way in WAYS:
            values = [v for v in (figure(s, key, stat) for s in summaries[way]) if v == v]
            cells.append(f"{statistics.median(values):10.2f}" if values else f"{'-':>10}")
        print(f"{label:<22}" + "".join(cells))
    for candidate in ("two", "master"):
        print(f"\nconfbench compare one {candidate}:", flush=True)
        subprocess.run([*CLI, "compare", str(root / "one"), str(root / candidate)], check=False, timeout=300)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
