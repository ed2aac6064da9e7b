"""Locust hooks of the harness: options, the media host per process, the sample path, progress.

The sample path follows Locust's own topology (DESIGN.md §1): in a local runner the rows go straight to the
results writer; a worker sends them to the master as ``confbench_samples`` custom messages (so a distributed
run needs no shared disk) and the master writes them. Join time and latency are also fired as Locust
requests, so Locust's UI and ``--csv`` show them next to everything else.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import psutil
from gevent.event import AsyncResult
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.errors import HarnessError
from harness.loadgen.host_client import MediaHostClient, MediaHostError
from harness.loadgen.roster import Roster
from harness.scenario.scenario import Scenario
from harness.store.manifest import atomic_write_bytes
from harness.store.writer import RunWriter
from harness.systems import SystemSpec
from harness.testbed.impairment import read_layout

log = logging.getLogger(__name__)

SAMPLES_MESSAGE = "confbench_samples"
# A joining participant asks the roster (master or local runner) for its index and probe duties; the roster
# answers it, tells receivers already present which newcomer they must decode, and hears who left.
ADMIT_MESSAGE = "confbench_admit"
ADMITTED_MESSAGE = "confbench_admitted"
PROBE_MESSAGE = "confbench_probe"
DEPART_MESSAGE = "confbench_depart"
# Each process that hosts participants tells the writer where it runs and how its clock stands (workers.json).
WORKER_MESSAGE = "confbench_worker"
WORKERS_FILE = "workers.json"
ADMIT_TIMEOUT_S = 30.0
PROGRESS_FILE = "progress.json"


@dataclass(frozen=True, slots=True)
class DirectRun:
    """How a run started by plain ``locust`` opens and closes its results folder.

    Installed by the locustfiles (``harness.orchestrate.direct.install``): opening a run folder measures the
    instrument's floor and closing it writes the summary, which is orchestration, a layer above this one.
    """

    open: Callable[[HarnessState], Path]
    close: Callable[[HarnessState], None]


class HarnessState:
    """Per Locust process: the scenario, the media host, the writer (master/local) and counters."""

    def __init__(self) -> None:
        self.environment: Environment | None = None
        self.scenario: Scenario | None = None
        self.system = SystemSpec("p2p")
        self.host_addresses: list[str] = ["127.0.0.1"]
        self.run_dir: Path | None = None
        self.writer: RunWriter | None = None
        self.network: dict[str, Any] | None = None
        """The run's impaired network (``network.json``): which groups live in which namespace."""
        self.media_hosts: dict[str, MediaHostClient] = {}
        """Per placement ("" for the root namespace, else a group's namespace): this process's media host."""
        self._placement: dict[str, str] = {}  # participant → placement of its media host
        self._early_probes: dict[str, list[str]] = {}  # participant → senders designated before its join was sent
        self._media_host_lock = gevent.lock.Semaphore()
        self.started = time.time()
        self.hostname = socket.gethostname()
        self._greenlets: list[gevent.Greenlet] = []
        self.load_started: float | None = None
        """When Locust began starting participants (UNIX seconds): where a run's timelines count from."""
        self.progress_extra: dict[str, Any] = {}
        """More for the progress file (the capacity search's state)."""
        self.roster: Roster | None = None
        """The run's roster: on the master, or in a local runner (None on a worker)."""
        self._admissions: dict[str, AsyncResult] = {}
        self.workers: dict[str, dict[str, Any]] = {}
        """Where participants run (written to ``workers.json`` by the writer of the run)."""
        self.facts_sent = False
        self.direct_run: DirectRun | None = None
        """Set by a locustfile: opens a results folder when the controller did not give one."""
        self._request_ids = 0

    # -- media host ------------------------------------------------------------------------------------
    @property
    def media_host(self) -> MediaHostClient | None:
        """The media host of the root namespace (None until started)."""
        return self.media_hosts.get("")

    def _where(self, group: str | None) -> tuple[str, list[str]]:
        """(placement, ICE host addresses) of a group's media host: its namespace when its link is impaired.

        Participants of impaired groups run inside their group's namespace (``harness.testbed.impairment``
        says why); the others stay in the root namespace and gather candidates on the impaired network's
        root address too, so that impaired participants can reach them.
        """
        net = self.network
        if net is None:
            return "", list(self.host_addresses)
        port = net.get("groups", {}).get(group) if group is not None else None
        if port is not None:
            return str(port["namespace"]), [str(port["address"])]
        return "", [*self.host_addresses, str(net["root_address"])]

    def media_host_client(self, group: str | None = None) -> MediaHostClient:
        """The media host for ``group``'s participants in this Locust process, started and configured on first use."""
        placement, addresses = self._where(group)
        with self._media_host_lock:
            client = self.media_hosts.get(placement)
            if client is None:
                assert self.scenario is not None
                stderr = None
                if self.run_dir is not None:
                    label = f"-{placement}" if placement else ""
                    stderr = open(self.run_dir / f"media_host-{os.getpid()}{label}.log", "ab")  # noqa: SIM115
                prefix = ["ip", "netns", "exec", placement] if placement else []
                client = MediaHostClient(self.on_samples, stderr=stderr, argv_prefix=prefix)
                client.start()
                client.request("configure", timeout=60, scenario=self.scenario.to_dict(),
                               system={"name": self.system.name, "url": self.system.url},
                               host_addresses=addresses, host=self.hostname)
                self.media_hosts[placement] = client
            return client

    def client_of(self, participant: str) -> MediaHostClient | None:
        """The media host a participant joined through."""
        return self.media_hosts.get(self._placement.get(participant, ""))

    def stop_media_host(self) -> None:
        """Stop this process's media hosts (all their participants leave)."""
        with self._media_host_lock:
            for client in self.media_hosts.values():
                client.stop()
            self.media_hosts.clear()

    # -- samples ---------------------------------------------------------------------------------------
    def on_samples(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        """Rows from this process's media host: into Locust's stats, then to the writer or the master."""
        fire = events.request.fire
        for row in tables.get("frames", ()):
            fire(request_type="VIDEO", name="glass-to-glass latency", response_time=row["latency_ms"],
                 response_length=0, exception=None, context={})
        for row in tables.get("audio", ()):
            fire(request_type="AUDIO", name="pulse latency", response_time=row["latency_ms"],
                 response_length=0, exception=None, context={})
        self.deliver(tables)

    def deliver(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        """Send rows towards the single writer of the run."""
        env = self.environment
        if env is not None and isinstance(env.runner, WorkerRunner):
            env.runner.send_message(SAMPLES_MESSAGE, tables)
        else:
            self.write(tables)

    def write(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        """Append rows to the results (master or local runner only)."""
        if self.writer is None:
            return
        for table, rows in tables.items():
            if rows:
                self.writer.append(table, rows)

    # -- roster ----------------------------------------------------------------------------------------
    def admit(self, group: str) -> dict[str, Any]:
        """Ask the roster (through Locust, wherever it runs) for a newcomer's index and probe duties."""
        env = self.environment
        assert env is not None and env.runner is not None and self.scenario is not None
        spec = next(g for g in self.scenario.groups if g.name == group)
        self._request_ids += 1
        request = f"{os.getpid()}-{self._request_ids}"
        result = AsyncResult()
        self._admissions[request] = result
        try:
            env.runner.send_message(ADMIT_MESSAGE, {
                "id": request, "group": group, "sends": bool(spec.publish), "receives": spec.subscribe,
                "decodes": spec.probe_fraction > 0})
            return dict(result.get(timeout=ADMIT_TIMEOUT_S))
        except gevent.Timeout:
            raise MediaHostError(f"the Locust master did not admit a participant of {group!r} within "
                                 f"{ADMIT_TIMEOUT_S:g} s") from None
        finally:
            self._admissions.pop(request, None)

    def on_admit(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Roster side: admit a newcomer, answer its node, tell the receivers that must decode it."""
        if self.roster is None:
            return
        data, node = msg.data, getattr(msg, "node_id", "local")
        admission = self.roster.admit(str(data["group"]), node, sends=bool(data["sends"]),
                                      receives=bool(data["receives"]), decodes=bool(data["decodes"]))
        runner = environment.runner
        assert runner is not None
        # Receivers first: they must know before the newcomer's stream can reach them.
        for receiver, receiver_node, sender in admission.notify:
            runner.send_message(PROBE_MESSAGE, {"receiver": receiver, "sender": sender}, client_id=receiver_node)
        runner.send_message(ADMITTED_MESSAGE, {"id": data["id"], "index": admission.index, "name": admission.name,
                                               "probes": list(admission.probes)}, client_id=node)

    def on_admitted(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Worker side: the roster's answer to one of this process's requests."""
        waiter = self._admissions.get(str(msg.data.get("id")))
        if waiter is not None:
            waiter.set(msg.data)

    def on_probe(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Worker side: one of this process's participants must decode a newcomer."""
        receiver = str(msg.data["receiver"])
        client = self.client_of(receiver)
        if client is None:
            # Admitted here but its join has not been sent yet: it takes the designation along when it is.
            self._early_probes.setdefault(receiver, []).append(str(msg.data["sender"]))
            return
        try:
            client.request("probe", timeout=10, participant=msg.data["receiver"], sender=msg.data["sender"])
        except MediaHostError as exc:
            log.warning("probe designation of %s for %s: %s", msg.data["receiver"], msg.data["sender"], exc)

    def on_worker(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Writer side: a process hosting participants said where it runs; kept in ``workers.json``."""
        self.workers[str(getattr(msg, "node_id", "local"))] = dict(msg.data)
        if self.run_dir is not None:
            try:
                atomic_write_bytes(self.run_dir / WORKERS_FILE,
                                   json.dumps(sorted(self.workers.values(), key=lambda w: w.get("index", 0)),
                                              indent=2).encode())
            except OSError:
                log.exception("writing %s failed", WORKERS_FILE)

    def on_depart(self, environment: Environment, msg: Any, **_: Any) -> None:
        """Roster side: a participant left."""
        if self.roster is not None:
            self.roster.depart(str(msg.data["name"]))

    # -- background ------------------------------------------------------------------------------------
    def start_background(self) -> None:
        """Self-probe of this Locust process, writer flushing and the progress file."""
        self._greenlets.append(gevent.spawn(self._probe_loop))
        if self.writer is not None:
            self._greenlets.append(gevent.spawn(self._flush_loop))

    def _probe_loop(self) -> None:
        proc = psutil.Process()
        proc.cpu_percent(None)
        while True:
            gevent.sleep(1.0)
            with proc.oneshot():
                row = {"ts": time.time(), "host": self.hostname, "role": "locust", "pid": proc.pid,
                       "name": "locust", "cpu_pct": proc.cpu_percent(None),
                       "rss_mb": proc.memory_info().rss / 2**20, "loop_lag_ms": None}
            self.deliver({"probes": [row]})

    def _flush_loop(self) -> None:
        while True:
            gevent.sleep(0.5)
            try:
                if self.writer is not None:
                    self.writer.maybe_flush()
                self.write_progress()
            except Exception:
                log.exception("flushing results failed")

    def write_progress(self) -> None:
        """Write ``progress.json``: only the writer of the run does. A worker forked by ``--processes`` shares
        the run folder; its own counts are partial, and two processes renaming one temporary file race (the
        loser's exception once kept a worker from announcing itself)."""
        if self.run_dir is None or self.writer is None or self.environment is None or self.environment.runner is None:
            return
        runner = self.environment.runner
        # Locust's stats are aggregated from every worker on the master, so they count the whole run.
        entries = self.environment.stats.entries
        join = entries.get(("join", "JOIN"))
        video = entries.get(("glass-to-glass latency", "VIDEO"))
        progress = {
            "ts": time.time(), "elapsed_s": time.time() - self.started, "users": runner.user_count,
            "state": str(runner.state),
            "joined": int(join.num_requests - join.num_failures) if join else 0,
            "failed": int(join.num_failures) if join else 0,
            "frames": int(video.num_requests) if video else 0,
            "load_started": self.load_started,
            **self.progress_extra,
        }
        tmp = self.run_dir / f"{PROGRESS_FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(progress))
        os.replace(tmp, self.run_dir / PROGRESS_FILE)

    def close(self) -> None:
        """Stop background work and flush everything that arrived."""
        self.stop_media_host()
        for g in self._greenlets:
            g.kill(block=False)
        if self.writer is not None:
            self.writer.close()
            self.write_progress()
            self.writer = None


STATE = HarnessState()


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser  # Locust's include_in_web_ui works on the parser itself, not on argument groups
    group.add_argument("--confbench-scenario", default=os.environ.get("CONFBENCH_SCENARIO", ""),
                       help="scenario TOML (default: scenarios/default.toml)", include_in_web_ui=False)
    group.add_argument("--confbench-system", default=os.environ.get("CONFBENCH_SYSTEM", ""),
                       help="system under test: NAME or NAME=URL (default: p2p, or what the locustfile says)",
                       include_in_web_ui=False)
    group.add_argument("--confbench-run-dir", default=os.environ.get("CONFBENCH_RUN_DIR", ""),
                       help="results folder of this run (created by confbench run)", include_in_web_ui=False)
    group.add_argument("--confbench-capacity", action="store_true", default=False,
                       help="run a capacity search (the locustfile adds its load shape)", include_in_web_ui=False)
    group.add_argument("--confbench-host-address", action="append",
                       default=None, help="pin ICE host candidates to this address (repeatable)",
                       include_in_web_ui=False)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    STATE.environment = environment
    opts = environment.parsed_options
    if opts is not None:
        if opts.confbench_system:
            STATE.system = SystemSpec.parse(opts.confbench_system)
        # CONFBENCH_HOST_ADDRESS (comma-separated) serves containers, where the address is known at start only.
        from_env = [a for a in os.environ.get("CONFBENCH_HOST_ADDRESS", "").split(",") if a.strip()]
        STATE.host_addresses = opts.confbench_host_address or from_env or ["127.0.0.1"]
        if opts.confbench_run_dir:
            STATE.run_dir = Path(opts.confbench_run_dir)
            STATE.network = read_layout(STATE.run_dir)
    runner = environment.runner
    if STATE.scenario is not None and STATE.scenario.impaired and STATE.network is None:
        # Only the controller creates namespaces and links (it needs root, and it owns their life cycle).
        log.warning("this scenario's network profiles are applied by `confbench run` only: "
                    "participants of this Locust run are not impaired")
    if not isinstance(runner, MasterRunner) and runner is not None:
        runner.register_message(ADMITTED_MESSAGE, STATE.on_admitted)
        # Concurrent: telling a media host waits for its answer, and must not hold up the worker's messages.
        runner.register_message(PROBE_MESSAGE, STATE.on_probe, concurrent=True)
    if isinstance(runner, WorkerRunner):
        pass
    else:
        STATE.roster = Roster()
        if runner is not None:
            runner.register_message(ADMIT_MESSAGE, STATE.on_admit)
            runner.register_message(DEPART_MESSAGE, STATE.on_depart)
        if STATE.run_dir is None:  # a run started by plain `locust`
            if STATE.direct_run is None:
                raise HarnessError("no results folder: pass --confbench-run-dir, or use a locustfile of the harness")
            STATE.run_dir = STATE.direct_run.open(STATE)
        writer_id = f"locust{os.getpid()}"
        STATE.writer = RunWriter(STATE.run_dir, writer_id=writer_id, flush_interval_s=1.0)
        if isinstance(runner, MasterRunner):
            runner.register_message(SAMPLES_MESSAGE, lambda msg, **_kw: STATE.write(msg.data))
        if runner is not None:
            runner.register_message(WORKER_MESSAGE, STATE.on_worker)
    STATE.start_background()


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if STATE.load_started is None:
        STATE.load_started = time.time()
        STATE.write_progress()  # at once: the controller starts the run's timelines from it
    # Every process that will host participants (a worker, or a local runner) says where it runs, once.
    runner = environment.runner
    if runner is None or isinstance(runner, MasterRunner) or STATE.facts_sent:
        return
    STATE.facts_sent = True
    runner.send_message(WORKER_MESSAGE, worker_facts(getattr(runner, "worker_index", 0)))


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    # Leaving is part of the run: every participant's leave is done before the writer closes.
    if not isinstance(environment.runner, MasterRunner):
        STATE.stop_media_host()


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    STATE.close()
    if STATE.direct_run is not None:
        STATE.direct_run.close(STATE)


def worker_facts(index: int) -> dict[str, Any]:
    """This process's host, pid, Locust worker index and clock state (``harness.probes.clocksync``)."""
    from harness.probes.clocksync import clock_sync_state
    from harness.probes.environment import host_facts

    facts = host_facts()
    return {"index": index, "host": facts["hostname"], "pid": os.getpid(), "cores": facts["cores"],
            "cpu_model": facts["cpu_model"], "kernel": facts["kernel"], "python": facts["python"],
            "clock_sync": clock_sync_state()}


def join_participant(group: str, timeout: float) -> tuple[str, dict[str, Any]]:
    """Join one participant of ``group`` through this process's media host; fires the Locust request."""
    start = time.time()
    name = group
    try:
        admission = STATE.admit(group)
        name = str(admission["name"])
        client = STATE.media_host_client(group)
        STATE._placement[name] = STATE._where(group)[0]
        probes = [*admission["probes"], *STATE._early_probes.pop(name, [])]
        row = client.request("join", timeout=timeout, participant=name, group=group,
                             index=int(admission["index"]), probes=probes)
        error = None if row.get("ok") else row.get("error") or "join failed"
    except MediaHostError as exc:
        row, error = {}, str(exc)
    elapsed_ms = (time.time() - start) * 1000
    events.request.fire(request_type="JOIN", name="join", response_time=row.get("join_ms") or elapsed_ms,
                        response_length=0, exception=MediaHostError(error) if error else None, context={})
    return name, row


def leave_participant(name: str) -> None:
    """Leave one participant (bounded)."""
    client = STATE.client_of(name)
    STATE._placement.pop(name, None)
    env = STATE.environment
    if env is not None and env.runner is not None:
        env.runner.send_message(DEPART_MESSAGE, {"name": name})
    if client is None:
        return
    try:
        client.request("leave", timeout=15, participant=name)
    except MediaHostError as exc:
        log.warning("leave of %s: %s", name, exc)
