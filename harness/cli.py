"""``confbench``: argument parsing only; the work is done by plain functions elsewhere.

Exit codes: 0 run completed and thresholds held; 1 a threshold failed or the run failed/was aborted/invalid, or
results or an output file could not be read or written; 2 usage or scenario errors. A :class:`HarnessError` (or
an ``OSError`` from a file the command writes) is printed as one line, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import HarnessError, UsageError
from harness.testbed.cpulimit import server_cpus

DEFAULT_SCENARIO = Path("scenarios/default.toml")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors take the one-line path too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # main() prints "confbench: " before every error: name the subcommand only ("run: …"), not the prog twice.
        command = self.prog.removeprefix("confbench").strip()
        raise UsageError(f"{command}: {message}" if command else message)


def _add_server_cpus(parser: argparse.ArgumentParser) -> None:
    """The ``--server-cpus`` option of every command that may start a server (``run``, ``master``, ``capacity``)."""
    parser.add_argument("--server-cpus", type=float, metavar="CORES",
                        help="CPU budget of a server confbench starts itself, e.g. 0.5 "
                             "(root; sets CONFBENCH_SERVER_CPUS)")


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
                     help="system under test; repeat to compare several (default: the scenario's systems)")
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
    _add_server_cpus(run)
    run.add_argument("--repeat", type=int, default=1, metavar="K",
                     help="run K repetitions per system (interleaved: A B A B …) into one run set folder")
    run.add_argument("--junit", type=Path, metavar="FILE", help="write the thresholds' results as JUnit XML")
    run.add_argument("--retry-invalid", type=int, default=0, metavar="N",
                     help="measure a run that ended invalid (the machine fell behind) again, up to N more times, "
                          "each after waiting for a quiet machine (default: 0)")

    master = sub.add_parser("master", help="run a scenario on Locust workers started elsewhere (confbench worker)")
    master.add_argument("scenario", help="scenario TOML")
    master.add_argument("--system", required=True, metavar="NAME[=URL]", help="system under test")
    master.add_argument("--workers", type=int, required=True, metavar="N", help="workers to wait for")
    master.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                        help="address the master listens on for workers (default: 127.0.0.1, this machine only)")
    master.add_argument("--port", type=int, default=5557, help="port for the workers (default: 5557)")
    master.add_argument("--wait", type=float, default=300.0, metavar="S",
                        help="how long to wait for the workers (default: 300)")
    master.add_argument("--duration", type=float, metavar="S", help="override the scenario's duration_s")
    master.add_argument("--participants", type=int, metavar="N", help="override the number of participants")
    master.add_argument("--results", type=Path, default=Path("results"), metavar="DIR")
    master.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR")
    master.add_argument("--no-report", action="store_true", help="do not build a report")
    _add_server_cpus(master)

    worker = sub.add_parser("worker", help="carry participants for a confbench master (a Locust worker)")
    worker.add_argument("--master", required=True, metavar="HOST[:PORT]", help="the master (default port 5557)")
    worker.add_argument("--host-address", action="append", metavar="ADDR",
                        help="this machine's address for ICE host candidates (repeatable; default 127.0.0.1)")
    worker.add_argument("--processes", type=int, default=1, metavar="N",
                        help="Locust worker processes on this machine, each with its own media host (default 1)")

    cap = sub.add_parser("capacity", help="ramp participants in steps until the SLO breaks; report the capacity")
    cap.add_argument("scenario", help="scenario TOML (its groups give the proportions, [capacity] the search)")
    cap.add_argument("--system", required=True, metavar="NAME[=URL]", help="system under test")
    cap.add_argument("--processes", type=int, metavar="N",
                     help="Locust processes, each with its own media host (default: one per core)")
    cap.add_argument("--start", type=int, metavar="N", help="participants at the first step")
    cap.add_argument("--step", type=int, metavar="N", help="participants added per step")
    cap.add_argument("--step-s", type=float, metavar="S", help="measured seconds per step")
    cap.add_argument("--max-participants", type=int, metavar="N", help="never more participants than this")
    cap.add_argument("--max-minutes", type=float, metavar="M", help="stop the search after this long")
    cap.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                     help="where run folders go (default: results)")
    cap.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR",
                     help="where the report folder goes (default: reports)")
    cap.add_argument("--no-report", action="store_true", help="do not build a report")
    _add_server_cpus(cap)

    compare = sub.add_parser("compare", help="verdicts per metric: a candidate's runs against a baseline's")
    compare.add_argument("baseline", metavar="BASELINE", help="run or run set folder (or a system, with --in)")
    compare.add_argument("candidate", metavar="CANDIDATE", help="run or run set folder (or a system, with --in)")
    compare.add_argument("--in", dest="within", type=Path, metavar="DIR",
                         help="a comparison run set whose systems BASELINE and CANDIDATE name")
    compare.add_argument("--markdown", type=Path, metavar="FILE", help="also write the verdicts as Markdown")
    compare.add_argument("--junit", type=Path, metavar="FILE",
                         help="also write JUnit XML (one testcase per system x scenario x metric)")
    compare.add_argument("--json", nargs="?", const="-", metavar="FILE",
                         help="print JSON instead of the table (or write it to FILE)")
    compare.add_argument("--report", type=Path, metavar="DIR", help="also build the comparison page in DIR")

    report = sub.add_parser("report", help="build a report from run folders (several runs: side by side)")
    report.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    report.add_argument("--out", type=Path, metavar="DIR", help="report folder (default: reports/<name>)")

    hist = sub.add_parser("history", help="a metric over time with change points (all runs below a folder)")
    hist.add_argument("results_dir", type=Path, metavar="RESULTS_DIR")
    hist.add_argument("--metric", action="append", metavar="M",
                      help="summary key, e.g. video_latency_ms.p95; repeatable (default: video latency p50, p95)")
    hist.add_argument("--scenario", metavar="NAME", help="only runs of this scenario")
    hist.add_argument("--system", metavar="NAME", help="only runs of this system")
    hist.add_argument("--out", type=Path, metavar="DIR", help="page folder (default: reports/history-<system>)")

    ev = sub.add_parser("evaluate", help="run a scenario on every system available here, interleaved "
                        "repetitions, and build one page ranking them")
    ev.add_argument("scenario", help="scenario TOML")
    ev.add_argument("--systems", default="all", metavar="all|A,B,...",
                    help="systems to evaluate, NAME or NAME=URL (default: all: p2p, reference, janus, livekit, "
                         "janus-whip, galene)")
    ev.add_argument("--repeat", type=int, default=3, metavar="K", help="repetitions per system (default: 3)")
    ev.add_argument("--capacity", type=float, metavar="CORES",
                    help="also search each system's capacity with its server held to CORES cores (root)")
    ev.add_argument("--duration", type=float, metavar="S", help="override the scenario's duration_s")
    ev.add_argument("--processes", type=int, metavar="N", help="Locust processes (default: one per core)")
    ev.add_argument("--results", type=Path, default=Path("results"), metavar="DIR", help="default: results")
    ev.add_argument("--reports", type=Path, default=Path("reports"), metavar="DIR", help="default: reports")

    sub.add_parser("systems", help="list the systems confbench can benchmark")

    cal = sub.add_parser("calibrate", help="measure the instrument: its floor and how it tracks injected "
                         "delay and loss (p2p; needs root for the emulated network)")
    cal.add_argument("--json", action="store_true", help="print the calibration as JSON")
    cal.add_argument("--scenario", type=Path, metavar="FILE", help="take the video settings from this scenario "
                     "(default: 640x360 at 30 fps, VP8, 500 kbit/s)")
    cal.add_argument("--quick", action="store_true", help="fewer and shorter cells (a smoke test, not a figure)")
    cal.add_argument("--floor-only", action="store_true", help="only the floor (no emulated network, no root)")
    cal.add_argument("--system", metavar="NAME", help="calibrate through this system, started locally (reference, "
                     "janus, ...): delay and loss on the uplink, the downlink and both (default: p2p, no server)")

    cross = sub.add_parser("crosscheck", help="a real Chromium receiver beside the native ones in the scenario's "
                           "room: do both kinds measure the same meeting? (exit 1 when they disagree)")
    cross.add_argument("scenario", type=Path, help="scenario TOML of native participants (impaired groups allowed)")
    cross.add_argument("--system", default=None, metavar="NAME[=URL]",
                       help="system under test (default: the scenario's first system)")
    cross.add_argument("--duration", type=float, metavar="S", help="override the scenario's duration_s")
    cross.add_argument("--results", type=Path, default=Path("results"), help="where run folders go "
                       "(default: results)")
    cross.add_argument("--bound-ms", type=float, default=20.0, metavar="MS",
                       help="largest latency difference allowed, browser less its buffer and floor (default 20)")
    cross.add_argument("--processes", type=int, help="Locust processes (default: one per core)")

    serve = sub.add_parser("serve-reference", help="run the reference SFU (WHIP/WHEP) until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8189, help="port (default: 8189; 0: any free port)")
    serve.add_argument("--token-file", type=Path,
                       help="require this bearer token (default: $CONFBENCH_REFERENCE_TOKEN, else none)")
    serve.add_argument("--ice-server", action="append", default=[], metavar="URL",
                       help="announce an ICE server in Link headers (repeatable)")

    broker = sub.add_parser("broker", help="serve the p2p signalling broker (for Locust runs with --processes)")
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    broker.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    """Runs the command ``args`` names."""
    if args.command == "systems":
        return cmd_systems()
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run, "report": cmd_report, "capacity": cmd_capacity, "master": cmd_master,
        "worker": cmd_worker, "compare": cmd_compare, "history": cmd_history, "evaluate": cmd_evaluate,
        "calibrate": cmd_calibrate, "crosscheck": cmd_crosscheck, "broker": cmd_broker,
        "serve-reference": cmd_serve_reference}
    if args.command not in commands:
        raise UsageError(f"unknown command {args.command!r}")
    return commands[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``confbench`` command."""
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="confbench %(levelname)s %(name)s: %(message)s")
        # The environment carries the budget (harness.testbed.cpulimit), like the other testbed settings; it
        # is restored after the command, so that an in-process caller (the tests) does not keep it.
        with server_cpus(getattr(args, "server_cpus", None)):
            return _dispatch(args)
    except HarnessError as exc:
        print(f"confbench: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # A file the command writes itself (--markdown, --json FILE, --junit …) on a full disk or a read-only
        # folder: the same one line and status as a results folder that cannot be written (StoreError).
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"confbench: {one_line(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("confbench: interrupted", file=sys.stderr)
        return 1


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped: a message quoting a file name or a
    scenario key as typed (``"a\\nb" = 1``) stays the one line the CLI promises."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def cmd_systems() -> int:
    """Print the registered systems."""
    from harness.systems import available_systems

    for name, cls in available_systems().items():
        print(f"{name:<12} {cls.description}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """``confbench calibrate``: the floor and the grid; exit 1 when a cell is outside its limit."""
    import asyncio
    import json

    from harness.orchestrate import calibration as cal
    from harness.scenario.scenario import VideoSettings, load_scenario
    from harness.testbed.netns import require_root

    video = load_scenario(args.scenario).video if args.scenario else VideoSettings()
    say = None if args.json else (lambda text: print(f"calibrating: {text}", file=sys.stderr, flush=True))
    if args.floor_only:
        floor = asyncio.run(cal.measure_floor(video, cal.QUICK_FLOOR_S if args.quick else cal.FLOOR_S))
        cal.remember(floor, video)
        print(json.dumps(floor.to_manifest(), indent=2) if args.json else
              cal.format_calibration(cal.Calibration(floor.video, "none", floor)))
        return 0
    require_root("calibration through an emulated network", "--floor-only measures the floor without it")
    if args.system:
        return _calibrate_system(args, video, say)
    grid: dict[str, Any] = {}
    if args.quick:
        grid = {"delays": (0, 50), "losses": (10,), "cell_s": 3.0, "floor_s": 4.0, "extras": False,
                "target_lost": 30}
    result = asyncio.run(cal.calibrate(video, progress=say, **grid))
    cal.remember(result.floor, video, result)
    from harness.orchestrate import system_calibration

    result.machine["system"] = "p2p"  # the p2p path is a system like any other in the runs' manifests
    system_calibration.remember(result)
    print(json.dumps(result.to_dict(), indent=2) if args.json else cal.format_calibration(result))
    return 0 if result.ok else 1


def _calibrate_system(args: argparse.Namespace, video: Any, say: Any) -> int:
    """``confbench calibrate --system NAME``: the grid through a locally started system."""
    import json

    from harness.orchestrate import system_calibration as sc

    result = sc.calibrate_named(args.system, video, quick=args.quick, progress=say)
    print(json.dumps(result.to_dict(), indent=2) if args.json else sc.format_system_calibration(result))
    return 0 if result.ok else 1


def cmd_crosscheck(args: argparse.Namespace) -> int:
    """``confbench crosscheck``: native receivers against a browser in the same room; exit 1 on disagreement."""
    from harness.orchestrate.crosscheck import crosscheck_command

    text, ok = crosscheck_command(args.scenario, args.system, duration=args.duration, results=args.results,
                                  bound_ms=args.bound_ms, processes=args.processes)
    print(text)
    return 0 if ok else 1


def cmd_serve_reference(args: argparse.Namespace) -> int:
    """Run the reference SFU in the foreground (Ctrl-C stops it)."""
    from harness.reference import server

    argv = ["--host", args.host, "--port", str(args.port)]
    if args.token_file is not None:
        argv += ["--token-file", str(args.token_file)]
    for url in args.ice_server:
        argv += ["--ice-server", url]
    try:
        server.main(argv)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise UsageError(str(exc.code).removeprefix("confbench serve-reference: ")) from None
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


def cmd_run(args: argparse.Namespace) -> int:
    """``confbench run``: one run per system, then one report comparing them."""
    from harness.analysis.summary import format_table
    from harness.orchestrate.progress import progress_printer
    from harness.orchestrate.run import RunOutcome, execute, measure_until_valid
    from harness.probes.machine import settle
    from harness.scenario.scenario import load_scenario
    from harness.systems import SystemSpec, create_system

    scenario = load_scenario(args.scenario).with_overrides(duration_s=args.duration,
                                                          participants=args.participants)
    if args.processes is not None and args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    if args.retry_invalid < 0:
        raise UsageError(f"--retry-invalid must be at least 0, got {args.retry_invalid}")
    specs = [SystemSpec.parse(s) for s in (args.system or list(scenario.systems))]
    for spec in specs:
        create_system(spec)  # unknown names fail now, before any run starts
    from harness.analysis import runset

    order = runset.interleave([str(spec) for spec in specs], args.repeat)
    by_text = {str(spec): spec for spec in specs}
    root = args.results
    if args.repeat > 1:
        root = runset.open_run_set(args.results, scenario.name, scenario.sha256(), list(by_text), args.repeat)
        print(f"confbench: run set {root} ({args.repeat} repetitions per system, interleaved)", file=sys.stderr)
    outcomes = []
    for repetition, text in order:
        spec = by_text[text]
        label = f"{spec} #{repetition}" if args.repeat > 1 else str(spec)
        def announce(run_dir: Path, label: str = label) -> None:
            # Only once the system is deployed and answering: a refusal is then the only line printed.
            print(f"confbench: running {scenario.name!r} on {label} ({scenario.participants} participants, "
                  f"{scenario.duration_s:g} s) into {run_dir}", file=sys.stderr)

        def once(spec: SystemSpec = spec, label: str = label, repetition: int = repetition,
                 announce: Callable[[Path], None] = announce) -> RunOutcome:
            try:
                outcome = execute(scenario, spec, root, progress=progress_printer(label),
                                  processes=args.processes, announce=announce)
            except BaseException:
                if root is not args.results:
                    runset.close_run_set(root, "aborted")
                raise
            sys.stderr.write("\n")
            if root is not args.results:
                runset.record_run(root, outcome.run_dir, spec.name, repetition, outcome.status)
            print(f"\n== {spec} — {outcome.status} — {outcome.run_dir}")
            for reason in outcome.reasons:
                print(f"   {outcome.status}: {reason}")
            print(format_table(outcome.summary))
            return outcome

        # An invalid run stays where it is, marked so (a comparison counts completed runs only).
        outcomes.append(measure_until_valid(once, args.retry_invalid, label,
                                            lambda line: print(f"confbench: {line}", file=sys.stderr), settle))
    if root is not args.results:
        runset.close_run_set(root, "completed")
    if args.junit is not None:
        from harness.analysis.junit import threshold_cases, write_junit

        cases = [case for o in outcomes for case in threshold_cases(
            o.summary, scenario.name, str(o.summary.get("system") or "unknown"), o.run_dir.name)]
        write_junit(args.junit, f"confbench {scenario.name} thresholds", cases)
    if not args.no_report:
        from harness.store.manifest import stamped_folder

        out = stamped_folder(args.reports, scenario.name)
        if root is not args.results:
            from harness.report.comparison import build_comparison_report

            page = build_comparison_report(root, out)
        else:
            from harness.report.html import build_report

            page = build_report([o.run_dir for o in outcomes], out)
        print(f"\nreport: {page}")
    if root is not args.results:
        print(f"run set: {root}")
    print("results: " + ", ".join(str(o.run_dir) for o in outcomes))
    ok = all(o.status == "completed" and o.thresholds_ok for o in outcomes)
    return 0 if ok else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``confbench evaluate``: exit 0 when every run completed, 1 otherwise (the page is built either way)."""
    from harness.orchestrate.evaluate import evaluate_command
    from harness.report.evaluation import build_evaluation_report

    return evaluate_command(args, build_page=build_evaluation_report)


def cmd_master(args: argparse.Namespace) -> int:
    """``confbench master``: one run whose participants live on ``--workers`` Locust workers."""
    from harness.analysis.summary import format_table
    from harness.orchestrate.progress import progress_printer
    from harness.orchestrate.run import MasterSettings, execute
    from harness.scenario.scenario import load_scenario
    from harness.systems import SystemSpec, create_system

    scenario = load_scenario(args.scenario).with_overrides(duration_s=args.duration,
                                                          participants=args.participants)
    try:
        settings = MasterSettings(args.workers, args.bind, args.port, args.wait)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    spec = SystemSpec.parse(args.system)
    create_system(spec)

    def announce(run_dir: Path) -> None:
        print(f"confbench: running {scenario.name!r} on {spec} with {settings.workers} worker(s); start them "
              f"with: confbench worker --master {settings.bind}:{settings.port}  (results: {run_dir})",
              file=sys.stderr, flush=True)

    outcome = execute(scenario, spec, args.results, progress=progress_printer(str(spec)), announce=announce,
                      master=settings)
    sys.stderr.write("\n")
    print(f"\n== {spec} — {outcome.status} — {outcome.run_dir}")
    for reason in outcome.reasons:
        print(f"   {outcome.status}: {reason}")
    print(format_table(outcome.summary))
    if not args.no_report:
        from harness.report.html import build_report
        from harness.store.manifest import stamped_folder

        print(f"\nreport: {build_report([outcome.run_dir], stamped_folder(args.reports, scenario.name))}")
    print(f"results: {outcome.run_dir}")
    return 0 if outcome.status == "completed" and outcome.thresholds_ok else 1


def cmd_worker(args: argparse.Namespace) -> int:
    """``confbench worker``: a Locust worker of a confbench master; it downloads the run's locustfile."""
    import subprocess

    host, _, port = args.master.rpartition(":") if ":" in args.master else (args.master, "", "5557")
    if not host or not port.isdigit():
        raise UsageError(f"--master must be HOST or HOST:PORT, got {args.master!r}")
    if args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    cmd = [sys.executable, "-m", "locust", "-f", "-", "--worker", "--master-host", host, "--master-port", port,
           "--loglevel", "WARNING"]
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    for address in args.host_address or []:
        cmd += ["--confbench-host-address", address]
    print(f"confbench: worker of {host}:{port} (Ctrl-C to leave)", file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=60)
        raise


def cmd_capacity(args: argparse.Namespace) -> int:
    """``confbench capacity``: exit 0 when a capacity was found, 1 when none (or the generator was the limit)."""
    from dataclasses import replace

    from harness.analysis.capacity_steps import settings_of
    from harness.errors import ScenarioError
    from harness.orchestrate.capacity import run_capacity
    from harness.orchestrate.progress import capacity_progress
    from harness.scenario.scenario import load_scenario
    from harness.systems import SystemSpec, create_system

    scenario = load_scenario(args.scenario)
    if args.processes is not None and args.processes < 1:
        raise UsageError(f"--processes must be at least 1, got {args.processes}")
    changes = {key: value for key, value in (
        ("start", args.start), ("step", args.step), ("step_s", args.step_s),
        ("max_participants", args.max_participants),
        ("max_duration_s", args.max_minutes * 60 if args.max_minutes is not None else None)) if value is not None}
    try:
        scenario = replace(scenario, capacity=replace(settings_of(scenario), **changes))
    except ValueError as exc:
        raise ScenarioError(f"{scenario.source}: command-line override: {exc}") from None
    spec = SystemSpec.parse(args.system)
    create_system(spec)  # an unknown name fails now
    settings = settings_of(scenario)

    def announce(run_dir: Path) -> None:
        print(f"confbench: capacity search of {scenario.name!r} on {spec} (up to {settings.max_participants} "
              f"participants, at most {settings.max_duration_s / 60:g} min) into {run_dir}", file=sys.stderr)

    outcome = run_capacity(scenario, spec, args.results, processes=args.processes,
                           progress=capacity_progress(str(spec)), announce=announce)
    sys.stderr.write("\n")
    result = outcome.summary.get("capacity") or {}
    print(f"\n== {spec} — {outcome.status} — {outcome.run_dir}")
    for reason in outcome.reasons:
        print(f"   {outcome.status}: {reason}")
    print(result.get("statement") or "no capacity: the search did not finish")
    if not args.no_report:
        from harness.report.capacity import build_capacity_report
        from harness.store.manifest import stamped_folder

        page = build_capacity_report(outcome.run_dir, stamped_folder(args.reports, f"capacity-{scenario.name}"))
        print(f"report: {page}")
    print(f"results: {outcome.run_dir}")
    found = outcome.status == "completed" and result.get("outcome") in ("found", "max_reached")
    return 0 if found else 1


def cmd_compare(args: argparse.Namespace) -> int:
    """``confbench compare``: exit 1 when any metric of any candidate is worse, else 0."""
    from harness.analysis.compare import compare_paths
    from harness.analysis.verdicts import format_markdown, format_table, junit_cases, to_json

    comparisons = compare_paths(args.baseline, args.candidate, within=args.within)
    if args.json is None:
        print(format_table(comparisons))
    elif args.json == "-":
        sys.stdout.write(to_json(comparisons))
    else:
        Path(args.json).write_text(to_json(comparisons), encoding="utf-8")
        print(format_table(comparisons))
    if args.markdown is not None:
        args.markdown.write_text(format_markdown(comparisons), encoding="utf-8")
    if args.junit is not None:
        from harness.analysis.junit import write_junit

        write_junit(args.junit, "confbench compare", junit_cases(comparisons))
    if args.report is not None:
        from harness.report.comparison import render_comparison_report

        page = render_comparison_report(comparisons, args.report)
        print(f"report: {page}", file=sys.stderr)
    return 1 if any(c.worse for c in comparisons) else 0


def cmd_history(args: argparse.Namespace) -> int:
    """``confbench history``: trend charts and change points; prints them and the page's path."""
    from harness.analysis.history import DEFAULT_METRICS, format_history
    from harness.report.history import build_history

    out = args.out or Path("reports") / f"history-{args.system or 'all'}"
    page, items = build_history(args.results_dir, args.metric or list(DEFAULT_METRICS), out,
                                scenario=args.scenario, system=args.system)
    for item in items:
        print(format_history(item))
    print(f"report: {page}")
    return 0


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
    if len(args.runs) == 1 and (args.runs[0] / "capacity.json").is_file():
        from harness.report.capacity import build_capacity_report  # a capacity search has a page of its own

        page = build_capacity_report(args.runs[0], out)
    else:
        page = build_report(list(args.runs), out)
    print(f"report: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
