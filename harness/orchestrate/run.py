"""Executes a scenario against one system: owns the start/stop order and the manifest's status.

Order: results folder and manifest (``running``) → system deployed → server probes → Locust (headless, this
package's locustfile) → wait with progress → Locust stopped (participants leave, writers flush) → probes
stopped → status decided → summary and thresholds → manifest closed → system undeployed. Every wait is bounded.
A SIGKILL at any point leaves whole Parquet parts and a manifest saying ``running``; SIGINT/SIGTERM leave
``aborted`` with the data measured so far.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

import harness.loadgen
from harness.browser.confinement import confined_groups
from harness.errors import HarnessError, SystemError_
from harness.orchestrate.faults import ServerFaults, check_support
from harness.orchestrate.lifecycle import finish_run, open_run
from harness.probes.local_server import listening_pids
from harness.probes.machine import MachineProbe, settle
from harness.probes.probes import ProcessProbe
from harness.probes.procs import die_with_parent
from harness.probes.prometheus import METRICS_URL_ENV, MetricsProbe
from harness.scenario.scenario import Scenario
from harness.store.manifest import update_manifest
from harness.store.reader import RunReader
from harness.store.writer import RunWriter
from harness.systems import IMPAIRED_NETWORK, SERVE_ADDRESS, SystemSpec, create_system
from harness.systems.base import Deployment, System
from harness.testbed.cpulimit import limit_servers
from harness.testbed.impairment import RunNetwork, open_network
from harness.testbed.link import ImpairedNetwork

log = logging.getLogger(__name__)

LOCUSTFILE = Path(harness.loadgen.__file__).with_name("locustfile.py")
# After the planned run time, Locust still has to stop users (they leave), flush and write its CSV.
STOP_GRACE_S = 90.0

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What one run left behind."""

    run_dir: Path
    status: str
    summary: dict[str, Any]
    reasons: tuple[str, ...] = ()
    """Why the run is not ``completed`` (errors, or the load generator's saturation)."""

    @property
    def thresholds_ok(self) -> bool:
        """True when every threshold of the scenario held."""
        return all(t.get("ok") for t in self.summary.get("thresholds", []))

    @property
    def why(self) -> str:
        """:attr:`reasons` in one line, for a message saying why the run did not complete."""
        return "; ".join(self.reasons) or "see its manifest"


class RunAborted(HarnessError):
    """The run was interrupted by the user (SIGINT/SIGTERM)."""


def default_processes() -> int:
    """One Locust process (hence one media host) per core: a media host's event loop uses one core."""
    return max(1, os.cpu_count() or 1)


def _locust_command(scenario: Scenario, spec: SystemSpec, run_dir: Path, run_time_s: int,
                    processes: int, host_addresses: tuple[str, ...] = (), extra_args: Sequence[str] = (),
                    most_participants: int | None = None, locustfile: Path = LOCUSTFILE) -> list[str]:
    extra: list[str] = [arg for address in host_addresses for arg in ("--confbench-host-address", address)]
    most = most_participants or scenario.participants
    if processes > 1:
        # More processes than participants would only start idle media hosts. Each run's master gets a port
        # of its own on loopback: with Locust's default (5557 on every interface) two runs at once would
        # exchange workers, and the master would listen beyond this machine.
        port = _free_port()
        extra += ["--processes", str(min(processes, most)), "--master-bind-host", "127.0.0.1",
                 "--master-bind-port", str(port), "--master-host", "127.0.0.1", "--master-port", str(port)]
    return [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
        "--users", str(scenario.participants), "--spawn-rate", f"{scenario.spawn_rate:g}",
        "--run-time", f"{run_time_s}s", "--stop-timeout", "30", "--exit-code-on-error", "0",
        "--csv", str(run_dir / "locust"), "--only-summary", "--loglevel", "WARNING",
        "--confbench-scenario", str(run_dir / "scenario.json"), "--confbench-run-dir", str(run_dir),
        "--confbench-system", str(spec), *extra, *extra_args,
    ]


_PORT_FLOOR = 20000
_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _free_port() -> int:
    """A free TCP port of 127.0.0.1 for Locust's master, below the kernel's ephemeral range when there is room.

    Locust binds it a second or two later (after its imports); a port of the ephemeral range could meanwhile be
    given to any outgoing connection, such as another run's participants reaching their broker or its Locust
    workers reaching their master. Below that range only a listening socket can take it.
    """
    try:
        low = int(_PORT_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    rng = random.SystemRandom()
    for _ in range(50 if low - _PORT_FLOOR >= 1000 else 0):
        port = rng.randrange(_PORT_FLOOR, low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_progress(run_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((run_dir / "progress.json").read_text()))
    except (OSError, ValueError):
        return {}


@dataclass(frozen=True, slots=True)
class MasterSettings:
    """A distributed run: this controller's Locust is a master, and ``workers`` Locust workers (``confbench
    worker --master HOST:PORT``, anywhere) carry the participants."""

    workers: int
    bind: str = "127.0.0.1"
    port: int = 5557
    wait_s: float = 300.0
    """How long the master waits for its workers before the run fails."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {self.workers}")
        if not 0 < self.port < 65536:
            raise ValueError(f"--port must be 1..65535, got {self.port}")
        if not 1 <= self.wait_s <= 3600:
            raise ValueError(f"--wait must be 1..3600 seconds, got {self.wait_s:g}")

    def locust_args(self) -> list[str]:
        """Locust's master options."""
        return ["--master", "--expect-workers", str(self.workers), "--expect-workers-max-wait",
                f"{self.wait_s:g}", "--master-bind-host", self.bind, "--master-bind-port", str(self.port)]


def measure_until_valid(run_once: Callable[[], RunOutcome], retries: int, what: str, say: Callable[[str], None],
                        wait: Callable[[], str] = settle) -> RunOutcome:
    """``run_once()``, then again, up to ``retries`` more times, while its run ends ``invalid`` (the machine fell
    behind; the invalid runs stay on disk, marked so). Before each new run, ``say`` is given a line on the
    invalid one (``what`` names it) and the line of ``wait()``, which waits for a quiet machine. Returns the
    last outcome."""
    outcome = run_once()
    for attempt in range(1, retries + 1):
        if outcome.status != "invalid":
            break
        say(f"{what} ended invalid ({outcome.why}); measuring it again ({attempt} of {retries}) once the machine "
            f"is quiet (the invalid run stays in {outcome.run_dir})")
        say(wait())
        outcome = run_once()
    return outcome


def execute(scenario: Scenario, spec: SystemSpec, results_root: Path,
            progress: ProgressFn | None = None, processes: int | None = None,
            announce: Callable[[Path], None] | None = None, master: MasterSettings | None = None) -> RunOutcome:
    """Run ``scenario`` against the system ``spec`` and return where the results are.

    ``processes``: Locust processes, each with its own media host (default: one per core). ``announce`` is
    called with the run folder once the system is deployed and answering, before any participant starts.
    ``master``: a distributed run instead, whose workers connect to this controller's Locust master.
    """
    # Impaired groups get their namespaces and links first: a server started for the run listens on the
    # network's root address, where they can reach it.
    confined, confinement = confined_groups(scenario, spec)
    if scenario.timeline:
        check_support(create_system(spec), scenario.timeline, spec.url)
    network = open_network({g.name: g.network for g in scenario.groups if g.network is not None}, confined)
    try:
        options = {SERVE_ADDRESS: network.root_address, IMPAIRED_NETWORK: network} if network else None
        system = create_system(spec, options)
        if scenario.browser_groups:
            from harness.browser.engines import preflight

            preflight(scenario, system)  # one line saying what to install or name, before anything starts
        with deployed_run(system, scenario, spec, results_root, announce) as (deployment, run_dir, metrics_url):
            layout = network.layout() if network else None
            if confinement:
                layout = {**(layout or {}), "browsers_confined": bool(confined), "browsers": confinement}
            # The load generator joins what was deployed (e.g. a broker or server started for this run).
            target = SystemSpec(spec.name, deployment.url)
            if master is not None:
                from harness.loadgen.runfile import write_runfile

                update_manifest(run_dir, network=layout, loadgen={
                    "mode": "master", "workers": master.workers, "bind": master.bind, "port": master.port})
                # The workers download this file from the master (Locust's -f -): scenario and system inside.
                return _drive(scenario, target, run_dir, deployment, progress, 1, metrics_url, network,
                              extra_args=master.locust_args(), locustfile=write_runfile(run_dir, scenario, target),
                              startup_s=master.wait_s, system=system)
            update_manifest(run_dir, loadgen={"processes": processes or default_processes()}, network=layout)
            return _drive(scenario, target, run_dir, deployment, progress, processes or default_processes(),
                          metrics_url, network, system=system)
    finally:
        if network is not None:
            network.close()


@contextlib.contextmanager
def deployed_run(system: System, scenario: Scenario, spec: SystemSpec, results_root: Path,
                 announce: Callable[[Path], None] | None = None) -> Iterator[tuple[Deployment, Path, str | None]]:
    """Deploy ``system``, give the servers it started their CPU budget (``CONFBENCH_SERVER_CPUS``, before
    anything is measured), check the server metrics endpoint, open the run folder and announce it; yields the
    deployment, the run folder and the metrics URL. The budget is lifted and the system undeployed at the end,
    also when the run fails."""
    simulcast = [g.name for g in scenario.groups if g.simulcast]
    if simulcast and not system.simulcast:
        raise SystemError_(f"simulcast (groups {', '.join(simulcast)}) is not supported yet on {system.name}")
    deployment = system.deploy()
    budget = None
    try:
        budget = limit_servers(deployment.server_pids)
        metrics_url = _checked_metrics_url()
        run_dir = open_run(results_root, scenario, spec, deployment)
        if budget is not None:
            update_manifest(run_dir, server_cpus=budget.cpus)
        if announce is not None:
            announce(run_dir)
        yield deployment, run_dir, metrics_url
    finally:
        if budget is not None:
            budget.close()
        system.undeploy()


def _checked_metrics_url() -> str | None:
    """The server's Prometheus endpoint, if one is configured, once it answered a scrape (else one line)."""
    url = os.environ.get(METRICS_URL_ENV)
    if not url:
        return None
    try:
        MetricsProbe(url, emit=lambda rows: None).check()
    except (OSError, ValueError) as exc:
        raise SystemError_(f"cannot use the server metrics at {url} ({METRICS_URL_ENV}): "
                           f"{getattr(exc, 'reason', exc)}") from None
    return url


FinishFn = Callable[[Path, Scenario, str, list[str]], dict[str, Any]]


def _drive(scenario: Scenario, spec: SystemSpec, run_dir: Path, deployment: Deployment,
           progress: ProgressFn | None, processes: int, metrics_url: str | None = None,
           network: ImpairedNetwork | None = None, *,
           run_time: int | None = None, extra_args: Sequence[str] = (), finish: FinishFn | None = None,
           most_participants: int | None = None, locustfile: Path = LOCUSTFILE,
           startup_s: float = 0.0, system: System | None = None) -> RunOutcome:
    """Run Locust on ``run_dir`` until it ends (bounded), then ``finish`` the run (default: :func:`finish_run`).

    ``network``: the run's impaired network, shaped while Locust runs. ``run_time``: the Locust run time in
    seconds (default: the scenario's ramp and duration); ``extra_args`` go to Locust's command line (e.g. a
    capacity search's flag); ``most_participants`` bounds the number of Locust processes (default: the
    scenario's participants); ``startup_s`` is added to the time Locust is given (a master waiting for its
    workers). ``system``: the deployed system, which carries out the scenario's server faults (if any).
    """
    errors: list[str] = []
    status = "completed"
    shaping = None
    load_started: float | None = None
    if network is not None:
        shaping = RunNetwork(network, {g.name: g.network for g in scenario.groups if g.network}, run_dir)
    probe_writer = RunWriter(run_dir, writer_id="controller", flush_interval_s=1.0)
    # The whole machine beside its processes: what an invalid run lost to other processes or to the hypervisor.
    machine = MachineProbe(lambda rows: probe_writer.append("probes", rows))
    machine.start()
    # This process too (alone: Locust and local servers are its children, probed as themselves), so that what
    # the machine spent beside the run's own processes is what others took (health.other_work).
    controller = ProcessProbe([os.getpid()], "controller", lambda rows: probe_writer.append("probes", rows),
                              children=False)
    controller.start()
    probe = None
    # A server the user started on this machine, given by URL, is measured too (probed only, never faulted).
    sut_pids = deployment.server_pids or (listening_pids(deployment.url) if deployment.url else ())
    if sut_pids:
        probe = ProcessProbe(sut_pids, "sut", lambda rows: probe_writer.append("probes", rows))
        probe.start()
    faults: ServerFaults | None = None
    metrics = None
    if metrics_url is not None:
        metrics = MetricsProbe(metrics_url, lambda rows: probe_writer.append("probes", rows))
        metrics.start()
    if run_time is None:
        run_time = math.ceil(scenario.ramp_s + scenario.duration_s)
    cmd = _locust_command(scenario, spec, run_dir, run_time, processes, deployment.host_addresses, extra_args,
                          most_participants, locustfile)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log_file = open(run_dir / "locust.log", "ab")  # noqa: SIM115 - closed in finally
    # A session of its own: Ctrl-C reaches the controller only, which then stops Locust in order. And Locust
    # dies with the controller, even after a SIGKILL of the latter.
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True, preexec_fn=die_with_parent)
    deadline = time.monotonic() + run_time + startup_s + 60 + STOP_GRACE_S
    previous = _install_signal_handlers()
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                errors.append(f"Locust did not finish within {run_time + startup_s + 60 + STOP_GRACE_S:.0f} s; "
                              "killed")
                status = "failed"
                _stop(proc, graceful=False)
                break
            time.sleep(0.5)
            latest = _read_progress(run_dir)
            if load_started is None and isinstance(latest.get("load_started"), int | float):
                # The timelines (network changes, outages, server faults) count from here, not from the run
                # folder's opening: Locust and its media hosts take seconds to start, tens on a loaded machine.
                load_started = float(latest["load_started"])
                update_manifest(run_dir, load_started_utc=datetime.fromtimestamp(load_started, UTC).isoformat())
                if shaping is not None:
                    shaping.start(load_started)
                if system is not None:
                    faults = ServerFaults(system, scenario.timeline, deployment.server_pids, load_started,
                                          lambda rows: probe_writer.append("events", rows),
                                          probe.follow if probe is not None else None)
                    faults.start()
            gone = first_dead(faults.watched() if faults is not None else deployment.server_pids)
            if gone is not None:
                # The server under test died: what was measured so far stays, the run is a failure.
                errors.append(f"the {spec.name} server (pid {gone}) exited during the run")
                status = "failed"
                _stop(proc, graceful=True)
                break
            probe_writer.maybe_flush()
            if progress is not None:
                progress(dict(latest, planned=scenario.participants, run_time_s=run_time))
        if proc.returncode not in (0, None) and status == "completed":
            status = "failed"
            errors.append(f"Locust exited with code {proc.returncode}; see {run_dir / 'locust.log'}")
    except RunAborted:
        status = "aborted"
        errors.append("interrupted by the user")
        _stop(proc, graceful=True)
    finally:
        _restore_signal_handlers(previous)
        if proc.poll() is None:
            _stop(proc, graceful=False)
        if faults is not None:
            fault_errors = faults.stop()
            if fault_errors and status == "completed":
                status = "failed"
            errors.extend(fault_errors)
        for running in (machine, controller, probe, metrics):
            if running is not None:
                running.stop()
        if shaping is not None:
            network_errors = shaping.stop()
            if network_errors and status == "completed":
                status = "failed"
            errors.extend(network_errors)
        probe_writer.close()
        log_file.close()
    summary = (finish or finish_run)(run_dir, scenario, status, errors)
    manifest = RunReader(run_dir).manifest
    reasons = tuple(manifest.get("errors", [])) + tuple(manifest.get("invalid_reasons", []))
    return RunOutcome(run_dir=run_dir, status=summary["status"], summary=summary, reasons=reasons)


def first_dead(pids: tuple[int, ...]) -> int | None:
    """The first of ``pids`` that no longer runs (an exited child is a zombie until reaped), else None."""
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            pass
        return pid
    return None


def _stop(proc: subprocess.Popen[bytes], graceful: bool) -> None:
    """SIGTERM lets Locust stop its users and flush (bounded); SIGKILL after that."""
    if graceful:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=STOP_GRACE_S)
            return
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise SystemError_(f"Locust process {proc.pid} would not die") from None


def _raise_aborted(signum: int, frame: Any) -> None:
    raise RunAborted(f"interrupted by signal {signum}")


def _install_signal_handlers() -> dict[int, Any]:
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, _raise_aborted)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
