"""A mixed room, browsers beside native participants: does each kind measure the same meeting alike?

Runs ``scenarios/mixed-browser.toml`` (4 native + 2 browser participants, everyone publishing and receiving
everyone) on each system given, then prints from the results alone: who joined, whether every stream was
measured by its receiver, video latency per sender→receiver path with each receiving side's floor taken off,
RTT / jitter / loss / fps as each kind measured them, and CPU and memory per participant of each kind.

Floors (ms, video p50): pass the figures of ``benchmarks/floor.py`` (native) and ``benchmarks/browser_floor.py``
(browser) measured on the same machine, e.g. ``--native-floor 8 --browser-floor 29``; a path's floor is taken
as the mean of its sender's and receiver's, since each end contributes its own half of the pipeline (capture
and encode at the sender, jitter buffer, decode and delivery at the receiver).

``--path-floors`` measures the floors instead, per path kind, on the same system and media: three quiet
rooms of two (native+native, browser+browser, native+browser), short and in turn, before the judged room.
A path's floor is then the p50 of that kind of path in its quiet room, which holds what the split above
cannot: a browser's receive side differs from its send side, and Chromium delays a native sender's video to
play it in sync with its audio (lip sync), which aiortc never does.

Run: .venv/bin/python benchmarks/mixed_room.py [--scenario FILE] [--system reference] [--system janus] [--duration 30]
         [--native-floor MS] [--browser-floor MS] [--path-floors] [--results DIR] [--processes N]
         [--participants N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pandas as pd

from harness.analysis.summary import participant_engines, stream_owners
from harness.store.reader import RunReader

ROOT = Path(__file__).resolve().parent.parent
SAME_ROOM_MS = 30.0
"""How close native→browser video latency must be to browser→browser in one room (the issue on realistic senders)."""


def _run(scenario: Path, system: str, duration: float, results: Path, extra: list[str]) -> Path:
    before = set(results.iterdir()) if results.exists() else set()
    subprocess.run([sys.executable, "-m", "harness.cli", "run", str(scenario),
                    "--system", system, "--duration", f"{duration:g}", "--results", str(results), "--no-report",
                    *extra],
                   check=False, timeout=duration + 400)
    fresh = sorted(set(results.iterdir()) - before)
    if not fresh:
        raise SystemExit(f"no results for {system}")
    return fresh[-1]


def _pair_scenario(scenario: Path, native: int, browser: int, out: Path) -> Path:
    """A room of two with ``scenario``'s media and timing: ``native`` + ``browser`` participants."""
    base = tomllib.loads(scenario.read_text())
    lines = [f'name = "{base.get("name", "mixed")}-floor-{native}n{browser}b"', "spawn_rate = 2",
             f"join_timeout_s = {base.get('join_timeout_s', 30)}"]
    for kind in ("video", "audio"):
        table = (base.get("media") or {}).get(kind)
        if table:
            lines.append(f"[media.{kind}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    for name, count, engine in (("native", native, "native"), ("browser", browser, "browser")):
        if count:
            lines += ["[[groups]]", f'name = "{name}"', f"count = {count}", f'engine = "{engine}"']
    out.write_text("\n".join(lines) + "\n")
    return out


def path_floors(scenario: Path, system: str, results: Path) -> dict[tuple[str, str], float]:
    """Video latency p50 per (sender kind, receiver kind) in quiet rooms of two on ``system``."""
    floors: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for native, browser in ((2, 0), (0, 2), (1, 1)):
            room = _pair_scenario(scenario, native, browser, Path(tmp) / f"floor-{native}-{browser}.toml")
            run_dir = _run(room, system, 15, results, [])
            reader = RunReader(run_dir)
            frames, joins, summary = reader.table("frames"), reader.table("joins"), reader.summary() or {}
            window = summary.get("window") or {}
            if window:
                frames = frames[(frames["ts"] >= window["start"]) & (frames["ts"] <= window["end"])]
            engine = participant_engines(joins)
            owners = stream_owners(joins)
            senders = pd.Series([owners.get(int(sid), name) for sid, name in
                                 zip(frames["stream_id"], frames["sender"], strict=True)], index=frames.index)
            for key, group in frames.groupby([senders.map(engine.get), frames["receiver"].map(engine.get)]):
                floors[key] = _p(group["latency_ms"], 0.5)
            print(f"floor room {native} native + {browser} browser on {system} ({summary.get('status')}): "
                  + ", ".join(f"{s}>{r} {v:.1f} ms" for (s, r), v in sorted(floors.items())))
    return floors


def _p(values: pd.Series, q: float) -> float:
    values = values.dropna()
    return float(values.quantile(q)) if len(values) else float("nan")


def report(run_dir: Path, floors: dict[str, float], by_path: dict[tuple[str, str], float] | None = None) -> None:
    reader = RunReader(run_dir)
    joins, frames, streams, audio, probes = (reader.table(t) for t in ("joins", "frames", "streams", "audio",
                                                                        "probes"))
    summary = reader.summary() or {}
    engine = participant_engines(joins)
    owners = stream_owners(joins)
    # Who sent a frame: its stamp's stream id (receivers may know a sender by a display name only).
    frames = frames.assign(sender=[owners.get(int(sid), name) for sid, name in
                                   zip(frames["stream_id"], frames["sender"], strict=True)])
    by_name = {**{f"stream-{sid}": p for sid, p in owners.items()},
               **{"".join(ch for ch in p if ch.isalnum()): p for p in owners.values()}}
    window = summary.get("window") or {}
    if window:
        frames = frames[(frames["ts"] >= window["start"]) & (frames["ts"] <= window["end"])]
        streams = streams[(streams["ts"] >= window["start"]) & (streams["ts"] <= window["end"])]
        audio = audio[(audio["ts"] >= window["start"]) & (audio["ts"] <= window["end"])]
        if not probes.empty:
            probes = probes[(probes["ts"] >= window["start"]) & (probes["ts"] <= window["end"])]
    ok = joins[joins["ok"] == True]  # noqa: E712
    joined = sorted(set(ok["participant"]))
    print(f"== {summary.get('system')} — {summary.get('status')} — {run_dir}")
    kinds = {e: sum(1 for p in joined if engine[p] == e) for e in ("native", "browser")}
    print(f"joined: {kinds['native']} native, {kinds['browser']} browser; failed {summary['participants']['failed']},"
          f" dropped {summary['participants'].get('dropped')}")
    pairs = set(zip(frames["sender"], frames["receiver"], strict=True))
    # A stream a receiver did not decode (probe_fraction < 1) is still measured: frame rate, freezes, loss
    # and jitter from its encoded frames and RTP.
    video_in = streams[(streams["direction"] == "in") & (streams["kind"] == "video") & (streams["fps"] > 0)]
    undecoded = set(zip(video_in["peer"].map(lambda s: by_name.get(s, s)), video_in["participant"], strict=True))
    missing = [(s, r) for r in joined for s in joined if s != r and (s, r) not in pairs | undecoded]
    decoded = sum(1 for r in joined for s in joined if s != r and (s, r) in pairs)
    print(f"video streams measured by their receiver: {len(joined) * (len(joined) - 1) - len(missing)}"
          f" of {len(joined) * (len(joined) - 1)} ({decoded} decoded for latency)"
          + (f"; missing {missing}" if missing else ""))
    # Audio carries no stamp: its sender is the name the receiver knew (display names stripped to letters
    # and digits by some web apps, or stream-<id>), mapped back to the participant where it can be.
    apairs = set(zip(audio["sender"].map(lambda s: by_name.get(s, s)), audio["receiver"], strict=True))
    amissing = [(s, r) for r in joined for s in joined if s != r and (s, r) not in apairs]
    print(f"audio streams with pulses at their receiver: {len(joined) * (len(joined) - 1) - len(amissing)}"
          f" of {len(joined) * (len(joined) - 1)}")
    # Chromium's jitter buffer grows with the jitter it sees (its target delay adapts); the floor was measured
    # without jitter. Its reported delay per received stream (jitterBufferDelay / emitted) shows how much of a
    # browser receiver's excess over the floor is its own buffering rather than the path.
    video_in = video_in.assign(sender=video_in["peer"].map(lambda s: by_name.get(s, s)))
    buffer = video_in.groupby([video_in["sender"].map(engine.get), video_in["participant"].map(engine.get)])[
        "jitter_buffer_ms"].median()
    print(f"{'path (sender>receiver)':<24} {'p50':>7} {'p95':>7} {'floor':>6} {'p50-floor':>10} {'rx buffer':>10} "
          f"{'frames':>7}")
    p50s: dict[tuple[str, str], float] = {}
    for (s_eng, r_eng), group in frames.groupby([frames["sender"].map(engine.get), frames["receiver"].map(engine.get)]):
        floor = (by_path or {}).get((s_eng, r_eng),
                                    (floors.get(s_eng, float("nan")) + floors.get(r_eng, float("nan"))) / 2)
        p50 = p50s[(s_eng, r_eng)] = _p(group["latency_ms"], 0.5)
        print(f"{s_eng + '>' + r_eng:<24} {p50:7.1f} {_p(group['latency_ms'], 0.95):7.1f} {floor:6.1f} "
              f"{p50 - floor:10.1f} {buffer.get((s_eng, r_eng), float('nan')):10.1f} {len(group):7d}")
    # The question this room answers for a browser receiver: does a native sender look like a browser to it?
    gap = p50s.get(("native", "browser"), float("nan")) - p50s.get(("browser", "browser"), float("nan"))
    if gap == gap:  # both paths measured
        print(f"native>browser minus browser>browser video p50: {gap:+.1f} ms (within {SAME_ROOM_MS:g} ms: "
              f"{'yes' if abs(gap) <= SAME_ROOM_MS else 'NO'}; run {summary.get('status')})")
    # fps: frames handed to the receiver (a browser's page sees at most one per rendering opportunity, so frames
    # arriving close together are merged); decoded fps: Chromium's framesPerSecond, what native fps counts.
    print(f"{'measured by':<12} {'rtt p50':>8} {'jitter p50':>11} {'loss %':>7} {'fps p50':>8} {'decoded':>8} "
          f"{'audio p50':>10} {'cpu %/part':>10} {'rss MB/part':>11}")
    for kind, figures in (summary.get("engines") or {}).items():
        mine = {p for p in joined if engine[p] == kind}
        inbound = streams[(streams["direction"] == "in") & streams["participant"].isin(mine)]
        outbound = streams[(streams["direction"] == "out") & streams["participant"].isin(mine)]
        lost, got = inbound["packets_lost"].sum(), inbound["packets"].sum()
        print(f"{kind:<12} {_p(outbound['rtt_ms'], .5):8.1f} {_p(inbound['jitter_ms'], .5):11.1f} "
              f"{100 * lost / max(lost + got, 1):7.2f} {_p(inbound[inbound['kind'] == 'video']['fps'], .5):8.1f} "
              f"{_p(inbound[inbound['kind'] == 'video'].get('decoded_fps', pd.Series(dtype=float)), .5):8.1f} "
              f"{_p(audio[audio['receiver'].isin(mine)]['latency_ms'], .5):10.1f} "
              f"{figures.get('cpu_pct_per_participant') or float('nan'):10.1f} "
              f"{figures.get('rss_mb_per_participant') or float('nan'):11.0f}")
    # How the native senders' packets left (harness/media/departures.py): a paced video stream bursts only
    # within 40 ms of its pacing rate; audio should leave every 20 ms, so long or bunched audio gaps mean the
    # generator's event loop held packets back, which Chromium's NetEq (and, for lip sync, its video) absorbs.
    at_native = streams["participant"].map(lambda p: engine.get(p) == "native").astype(bool)
    sent = streams[(streams["direction"] == "out") & at_native]
    for kind in ("video", "audio"):
        rows = sent[sent["kind"] == kind]
        if "send_gap_p95_ms" in rows and rows["send_gap_p95_ms"].notna().any():
            print(f"native {kind} sent: gap p50 {_p(rows['send_gap_p50_ms'], .5):.1f} ms, p95 "
                  f"{_p(rows['send_gap_p95_ms'], .5):.1f} ms, max {_p(rows['send_gap_max_ms'], .5):.1f} ms, "
                  f"within 1 ms of the previous {_p(rows['send_burst_pct'], .5):.1f} % (medians over rows)"
                  + (f"; send jitter p50 {_p(rows['send_jitter_ms'], .5):.1f} ms, p95 "
                     f"{_p(rows['send_jitter_ms'], .95):.1f} ms" if "send_jitter_ms" in rows else ""))
    # What a browser receiver saw of each kind of sender (its getStats): interarrival jitter and the delay of
    # its jitter buffers, per medium. Chromium delays a sender's video to play it in sync with its audio, so a
    # native sender's audio timing shows in its video's buffer.
    at_browser = streams["participant"].map(lambda p: engine.get(p) == "browser").astype(bool)
    received = streams[(streams["direction"] == "in") & at_browser]
    received = received.assign(sender=received["peer"].map(lambda s: engine.get(by_name.get(s, s))))
    for (s_eng, kind), rows in received.groupby(["sender", "kind"]):
        print(f"at browsers, from {s_eng} {kind}: jitter p50 {_p(rows['jitter_ms'], .5):.1f} ms, "
              f"jitter buffer p50 {_p(rows['jitter_buffer_ms'], .5):.1f} ms"
              + (f"; aimed at {_p(rows['jitter_buffer_target_ms'], .5):.1f} ms"
                 if "jitter_buffer_target_ms" in rows else "")
              + (f", for the arrivals alone {_p(rows['jitter_buffer_min_ms'], .5):.1f} ms (the rest: lip sync)"
                 if "jitter_buffer_min_ms" in rows else ""))
    # How late each kind of measuring instrument ran, a second's worst: the natives' event loops, and the
    # browsers' pages, which time the frames they receive (their lateness is in browser-measured latency).
    for label, role in (("media hosts' event loops", "media_host"), ("browser pages", "browser")):
        lag = probes.loc[probes["role"] == role, "loop_lag_ms"] if not probes.empty else pd.Series(dtype=float)
        if lag.notna().any():
            print(f"{label} late (worst of each second): p50 {_p(lag, .5):.1f} ms, p90 {_p(lag, .9):.1f} ms, "
                  f"max {lag.max():.1f} ms")
    print(f"server CPU mean {((summary.get('sut_cpu_pct') or {}).get('mean'))} %, load generator CPU mean "
          f"{((summary.get('loadgen_cpu_pct') or {}).get('mean'))} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "mixed-browser.toml")
    parser.add_argument("--system", action="append", help="system (default: reference)")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--native-floor", type=float, default=float("nan"))
    parser.add_argument("--browser-floor", type=float, default=float("nan"))
    parser.add_argument("--path-floors", action="store_true",
                        help="measure each path kind's floor in quiet rooms of two first (see the docstring)")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--run", type=Path, action="append", help="report an existing run instead of running")
    # One Locust process by default: on a 2-core machine this room fills both cores, and a second process
    # brings a second Locust and two more media hosts (its natives' and its browser group's) whose upkeep the
    # browsers and the natives' event loop then lack. Interleaved on 2026-12-07 (9 pairs, Janus):
    # native>browser minus browser>browser within 30 ms in 6 of 9 runs with one process (mean +17 ms), 2 of 9
    # with one per core (mean +48 ms); the machine 145-184 % busy against 164-190 %. docs/browser.md.
    parser.add_argument("--processes", type=int, default=1,
                        help="Locust processes, each with its own media hosts (default 1; 0: confbench's "
                             "default, one per core)")
    parser.add_argument("--participants", type=int, help="scale the scenario's groups to this many participants")
    args = parser.parse_args()
    floors = {"native": args.native_floor, "browser": args.browser_floor}
    if args.processes < 0:
        parser.error(f"--processes must be 0 or more, got {args.processes}")
    extra = [*(["--processes", str(args.processes)] if args.processes else []),
             *(["--participants", str(args.participants)] if args.participants else [])]
    if args.run:
        for run_dir in args.run:
            report(run_dir, floors)
        return
    for system in args.system or ["reference"]:
        by_path = path_floors(args.scenario, system, args.results) if args.path_floors else None
        report(_run(args.scenario, system, args.duration, args.results, extra), floors, by_path)


if __name__ == "__main__":
    main()
