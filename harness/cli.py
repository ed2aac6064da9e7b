"""``confbench``: argument parsing only; the work is done by plain functions elsewhere.

Exit codes: 0 run completed and thresholds held; 1 a threshold failed or the run failed/was aborted/invalid;
2 usage or scenario errors. A :class:`HarnessError` is printed as one line, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import HarnessError, UsageError

DEFAULT_SCENARIO = Path("scenarios/default.toml")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors take the one-line path too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``confbench``."""
    parser = _Parser(prog="confbench", description="Benchmark video-conferencing systems over WebRTC.")
    parser.add_argument("--version", action="version", version=f"confbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the harness does")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a scenario against one or more systems and build a report")
    run.add_argument("scenario", nargs="?", default=str(DEFAULT_SCENARIO),
                     help=f"scenario TOML (default: {DEFAULT_SCENARIO})")
    run.add_argument("--system", action="append", metavar="NAME[=URL]",
                     help="system under test; repeat to compare several (default: p2p)")
    run.add_argument("--duration", type=float, metavar="S", help="override the scenario's duration_s")
    run.add_argument("--participants", type=int, metavar="N",
                     help="override the number of participants (spread over groups in proportion)")
    run.add_argument("--processes", type=int, metavar="N",
                     help="Locust processes, each with its own media host (default: one per core)")
    run.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                     help="where run folders go (default: results)")
    run.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR",
                     help="where the report folder goes (default: reports)")
    run.add_argument("--no-report", action="store_true", help="do not build a report")

    report = sub.add_parser("report", help="build a report from run folders (several runs: side by side)")
    report.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=Path, metavar="DIR", help="report folder (default: reports/<name>)")

    sub.add_parser("systems", help="list the systems confbench can benchmark")

    broker = sub.add_parser("broker", help="serve the p2p signalling broker (for Locust runs with --processes)")
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    broker.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``confbench`` command."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="confbench %(levelname)s %(name)s: %(message)s")
        if args.command == "run":
            return cmd_run(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "systems":
            return cmd_systems()
        if args.command == "broker":
            return cmd_broker(args)
        raise UsageError(f"unknown command {args.command!r}")
    except HarnessError as exc:
        print(f"confbench: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("confbench: interrupted", file=sys.stderr)
        return 1


def cmd_systems() -> int:
    """Print the registered systems."""
    from harness.systems import available_systems

    for name, cls in available_systems().items():
        print(f"{name:<12} {cls.description}")
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    """Serve the p2p broker until interrupted; prints the --confbench-system value to use."""
    from harness.systems.p2p import BrokerServer

    server = BrokerServer(args.host, args.port)
    try:
        server.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print(f"p2p broker listening; use: --confbench-system p2p={server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()


def _progress_printer(label: str) -> Any:
    start = time.monotonic()
    tty = sys.stderr.isatty()

    def show(p: dict[str, Any]) -> None:
        elapsed = time.monotonic() - start
        line = (f"[{label}] {elapsed:5.0f}/{p.get('run_time_s', 0)} s  participants "
                f"{p.get('joined', 0)}/{p.get('planned', '?')} joined, {p.get('failed', 0)} failed  "
                f"frames {p.get('frames', 0)}")
        if tty:
            sys.stderr.write("\r" + line.ljust(100))
        elif int(elapsed) % 5 == 0 and int(elapsed) != getattr(show, "last", -1):
            show.last = int(elapsed)  # type: ignore[attr-defined]
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show


def cmd_run(args: argparse.Namespace) -> int:
    """``confbench run``: one run per system, then one report comparing them."""
    from harness.run import execute
    from harness.scenario import load_scenario
    from harness.summary import format_table
    from harness.systems import SystemSpec, create_system

    scenario = load_scenario(args.scenario).with_overrides(duration_s=args.duration,
                                                          participants=args.participants)
    if args.processes is not None and args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    specs = [SystemSpec.parse(s) for s in (args.system or ["p2p"])]
    for spec in specs:
        create_system(spec)  # unknown names fail now, before any run starts
    outcomes = []
    for spec in specs:
        print(f"confbench: running {scenario.name!r} on {spec} ({scenario.participants} participants, "
              f"{scenario.duration_s:g} s)", file=sys.stderr)
        outcome = execute(scenario, spec, args.results, progress=_progress_printer(str(spec)),
                          processes=args.processes)
        sys.stderr.write("\n")
        outcomes.append(outcome)
        print(f"\n== {spec} — {outcome.status} — {outcome.run_dir}")
        for reason in outcome.reasons:
            print(f"   {outcome.status}: {reason}")
        print(format_table(outcome.summary))
    if not args.no_report:
        from harness.report.html import build_report

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = args.reports / f"{scenario.name}-{stamp}"
        page = build_report([o.run_dir for o in outcomes], out)
        print(f"\nreport: {page}")
    print("results: " + ", ".join(str(o.run_dir) for o in outcomes))
    ok = all(o.status == "completed" and o.thresholds_ok for o in outcomes)
    return 0 if ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    """``confbench report``: rebuild a report from results alone."""
    from harness.report.html import build_report

    for run in args.runs:
        if not (run / "manifest.json").is_file():
            raise UsageError(f"{run}: not a run folder (no manifest.json)")
    out = args.out
    if out is None:
        out = Path("reports") / (args.runs[0].name if len(args.runs) == 1 else
                                 "compare-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    page = build_report(list(args.runs), out)
    print(f"report: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
