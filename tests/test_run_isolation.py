"""A run keeps to itself: its sockets stay on loopback (or the run's own namespace addresses), and two runs at
once on one machine do not mix.

Real runs through ``confbench run`` (subprocesses, real Locust, media hosts and WebRTC), kept small and short.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import confbench, only_run, spoiled_by_the_machine

from harness.store.reader import RunReader
from harness.testbed.netns import BENCHMARK_BLOCK

pytestmark = pytest.mark.integration

SMALL = """
name = "isolation"
duration_s = {duration}
spawn_rate = 5
[media.video]
width = 160
height = 90
fps = 10
[[groups]]
name = "{group}"
count = 2
{extra}"""

IMPAIRED = """
[[groups]]
name = "far"
count = 1
[groups.network]
delay_ms = 20
"""
"""A group in a network namespace of its own behind the emulated wire (root), reached on 198.18.x.y."""

ALLOWED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"), BENCHMARK_BLOCK)
"""Loopback, and the block the run's network namespaces take their addresses from (harness.testbed.netns)."""


def scenario(tmp_path: Path, duration: int, group: str = "talkers", extra: str = "") -> Path:
    path = tmp_path / f"{group}.toml"
    path.write_text(SMALL.format(duration=duration, group=group, extra=extra))
    return path


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


_TCP_STATES = {"01": "ESTABLISHED", "0A": "LISTEN"}


def _hex_address(text: str) -> str:
    """An address of ``/proc/net/{tcp,udp}{,6}`` (``0100007F:1F90``) as text; the kernel writes 32-bit words in
    host order (little-endian here)."""
    raw = bytes.fromhex(text.partition(":")[0])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def _sockets(pid: int) -> set[tuple[str, str, str, str]]:
    """``(process name, kind, address, state)`` of every inet socket of ``pid`` and its descendants: local and
    remote addresses.

    Read from ``/proc/<pid>/net/*``, the tables of the process's own network namespace (psutil reads the
    caller's, so it would miss the sockets of a media host inside a run's namespace).
    """
    found = set()
    for process in _tree(pid):
        try:
            name = " ".join(process.cmdline()[1:4]) or process.name()
            inodes = {os.readlink(f"/proc/{process.pid}/fd/{fd}")[8:-1]
                      for fd in os.listdir(f"/proc/{process.pid}/fd")
                      if os.readlink(f"/proc/{process.pid}/fd/{fd}").startswith("socket:[")}
            tables = {kind: Path(f"/proc/{process.pid}/net/{kind}").read_text().splitlines()[1:]
                      for kind in ("tcp", "tcp6", "udp", "udp6")}
        except (psutil.Error, OSError):
            continue  # it ended meanwhile
        for kind, lines in tables.items():
            for line in lines:
                fields = line.split()
                if fields[9] not in inodes:
                    continue
                state = _TCP_STATES.get(fields[3], fields[3]) if kind.startswith("tcp") else "NONE"
                local, remote = _hex_address(fields[1]), _hex_address(fields[2])
                found.add((name, kind.rstrip("6"), local, state))
                if not ipaddress.ip_address(remote).is_unspecified:  # 0.0.0.0:0: not connected
                    found.add((name, kind.rstrip("6"), remote, state))
    return found


def _outside(sockets: set[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    def allowed(ip: str) -> bool:
        address = ipaddress.ip_address(ip.split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in ALLOWED)

    return sorted(s for s in sockets if not allowed(s[2]))


@pytest.mark.parametrize(("system", "extra"), [
    pytest.param("p2p", "", id="p2p"), pytest.param("reference", "", id="reference"),
    pytest.param("p2p", IMPAIRED, id="p2p-impaired",
                 marks=pytest.mark.skipif(os.geteuid() != 0, reason="the emulated network needs root")),
])
def test_every_socket_of_a_run_is_on_loopback_or_its_own_network(tmp_path: Path, system: str, extra: str) -> None:
    seen: set[tuple[str, str, str, str]] = set()

    def watch(proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            seen.update(_sockets(proc.pid))
            time.sleep(0.3)

    proc = confbench("run", str(scenario(tmp_path, 8, extra=extra)), "--system", system, "--no-report",
                     "--results", str(tmp_path / "results"), cwd=tmp_path)
    try:
        watch(proc)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    manifest = json.loads((only_run(tmp_path / "results") / "manifest.json").read_text())
    # Which sockets a run opens does not depend on its timing: a run this shared machine made invalid (a late
    # wire, a saturated generator, stolen cores: its reasons say so) opened the same ones, and counts here.
    assert manifest["status"] == "completed" or spoiled_by_the_machine(manifest), out + err
    if extra:
        assert any(ipaddress.ip_address(ip) in BENCHMARK_BLOCK for _, _, ip, _ in seen), seen
    # The run did open sockets while it was watched: UDP for the media, TCP for signalling.
    assert {kind for _, kind, _, _ in seen} == {"udp", "tcp"}, seen
    assert any(state == "LISTEN" for *_, state in seen), seen
    assert _outside(seen) == []


def test_the_checker_sees_a_socket_on_every_interface(tmp_path: Path) -> None:
    # The test above is only worth what its checker sees: a UDP socket bound to 0.0.0.0 in a child is caught.

    code = "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 0)); " \
           "print('bound', flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "bound"
        outside = _outside(_sockets(child.pid))
    finally:
        child.kill()
        child.wait()
    assert [(kind, ip) for _, kind, ip, _ in outside] == [("udp", "0.0.0.0")]


def test_two_runs_at_once_do_not_mix(tmp_path: Path) -> None:
    # Two p2p runs started together, each with Locust's default processes (so each has a Locust master and its
    # port), each into its own results folder, both reports into one folder (same scenario: same report name
    # when they end in the same second); participants named after their run's group.
    reports = tmp_path / "reports"
    procs = {
        group: confbench("run", str(scenario(tmp_path, 8, group=group)), "--results", str(tmp_path / group),
                         "--reports", str(reports), cwd=tmp_path)
        for group in ("alpha", "beta")
    }
    outputs = {group: proc.communicate(timeout=300) for group, proc in procs.items()}
    runs = {}
    for group, proc in procs.items():
        out, err = outputs[group]
        assert proc.returncode == 0, f"{group}: {out}{err}"
        assert "Address already in use" not in err
        run = only_run(tmp_path / group)
        reader = RunReader(run)
        manifest = reader.manifest
        assert manifest["status"] == "completed" and manifest["ended_utc"], manifest
        assert manifest["scenario"]["name"] == "isolation"
        assert "Address already in use" not in (run / "locust.log").read_text()
        joins = reader.table("joins")
        assert len(joins) == 2 and joins["ok"].all() and set(joins["group"]) == {group}
        frames = reader.table("frames")
        assert len(frames) > 0
        # Every frame was sent and received by this run's own participants.
        for column in ("sender", "receiver"):
            assert set(frames[column].str.rsplit("-", n=1).str[0]) == {group}, (group, column)
        runs[group] = manifest
    alpha, beta = runs["alpha"], runs["beta"]
    assert alpha["run_id"] != beta["run_id"]
    # They did run at the same time.
    assert alpha["started_utc"] < beta["ended_utc"] and beta["started_utc"] < alpha["ended_utc"]
    # Each has a report of its own.
    pages = [page.read_text() for page in reports.glob("*/index.html")]
    assert len(pages) == 2
    assert sorted(alpha["run_id"] in page for page in pages) == [False, True]
    assert sorted(beta["run_id"] in page for page in pages) == [False, True]


def test_the_locust_master_port_is_outside_the_ephemeral_range() -> None:
    # Between the pick and Locust's bind, an outgoing connection of another run could be given a port of the
    # ephemeral range; none is ever given one below it.
    from harness.orchestrate.run import _free_port

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {_free_port() for _ in range(20)}
    assert all(20000 <= port < low for port in ports), (low, ports)
    assert len(ports) > 1  # drawn at random: two runs asking at once rarely get the same
