"""The impaired network for real: namespaces, TUN devices, the user-space wire (root; skipped otherwise).

UDP traffic between the root namespace and groups' namespaces crosses the wire; the checks are on what
arrives (how much, in what order of magnitude of time), with bounds that a loaded machine cannot break:
delays are checked from below (a wire cannot deliver early), losses within binomial bounds.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.health import MAX_LATE_MS, network_reasons
from harness.errors import TestbedError
from harness.scenario.network import NetworkProfile, Shape, parse_profile
from harness.testbed import impairment, link, netns, wire
from harness.testbed.impairment import NetworkRecorder, create_network

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the emulated network needs root (namespaces, TUN)")

ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 9000))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    s.sendto(data, peer)
"""


def _echo(namespace: str, address: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c", ECHO, address],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


EchoNetwork = tuple[link.ImpairedNetwork, subprocess.Popen[str]]


@pytest.fixture
def echo_network() -> Iterator[EchoNetwork]:
    network = create_network({"far": parse_profile({"up": {"delay_ms": 40}, "down": {"delay_ms": 10}}),
                              "lossy": parse_profile({"down": {"loss_pct": 20}})}, backend="wire")
    echo = _echo(network.ports["far"].namespace, network.ports["far"].address)
    try:
        yield network, echo
    finally:
        echo.kill()
        echo.wait(5)
        network.close()


def _rtts(source: str, target: str, count: int) -> list[float]:
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(5)
        for _ in range(count):
            start = time.monotonic()
            s.sendto(b"x" * 200, (target, 9000))
            s.recvfrom(4096)
            out.append(time.monotonic() - start)
    return out


@needs_root
def test_delay_per_direction_and_cleanup(echo_network: EchoNetwork) -> None:
    network, _ = echo_network
    far = network.ports["far"]
    rtts = _rtts(network.root_address, far.address, 20)
    # down 10 ms towards the group, up 40 ms back: never less than 50 ms round trip.
    assert min(rtts) >= 0.050
    assert sorted(rtts)[10] < 0.050 + 0.5  # and it does come back
    layout = network.layout()
    assert layout["backend"] == "wire" and layout["groups"]["far"]["address"] == far.address
    names = [ns.name for ns in network.namespaces]
    network.close()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(name in left for name in names)
    assert f"cbw{os.getpid()}p" not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


@needs_root
def test_loss_and_the_wire_counts_what_it_did(echo_network: EchoNetwork) -> None:
    network, _ = echo_network
    lossy = network.ports["lossy"]
    # Nobody listens in "lossy": count what the wire let through towards it from its own report.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((network.root_address, 0))
        for _ in range(3000):
            s.sendto(b"y" * 100, (lossy.address, 9))
            time.sleep(0.0002)
    rows = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tables = network.poll(1.5)
        rows += (tables or {}).get("network", [])
        down = [r for r in rows if r["group"] == "lossy" and r["direction"] == "down"]
        if sum(r["packets"] + r["lost"] for r in down) >= 3000:
            break
    down = [r for r in rows if r["group"] == "lossy" and r["direction"] == "down"]
    lost = sum(r["lost"] for r in down)
    assert sum(r["packets"] for r in down) + lost >= 3000
    assert 480 < lost < 720  # binomial(3000, 0.2): mean 600, sigma 22
    assert any(r["group"] == "@root" and r["direction"] == "up" and r["packets"] for r in rows)


@needs_root
def test_rate_limit_on_the_way_down() -> None:
    network = create_network({"slow": parse_profile({"down": {"rate_kbps": 200, "queue_ms": 100}})}, backend="wire")
    try:
        slow = network.ports["slow"]
        receiver = subprocess.Popen(["ip", "netns", "exec", slow.namespace, sys.executable, "-c",
                                     "import socket,sys\ns=socket.socket(2,2);s.bind((sys.argv[1],9000));"
                                     "s.settimeout(1.5);print('ready',flush=True);n=0\n"
                                     "try:\n while True: n+=len(s.recv(4096))\nexcept OSError: print(n)",
                                     slow.address], stdout=subprocess.PIPE, text=True)
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((network.root_address, 0))
            start = time.monotonic()
            while time.monotonic() - start < 2.0:  # 1000 bytes every 10 ms: 800 kbit/s offered
                s.sendto(b"z" * 1000, (slow.address, 9000))
                time.sleep(0.01)
        got = int(receiver.communicate(timeout=10)[0].strip())
        # At most what 200 kbit/s carries in the time it had (2 s plus the queue's 100 ms plus one
        # bucket), whatever the machine's load; far less than the 200 kB offered.
        assert got <= (200_000 / 8) * 2.1 + 3000 + 1000
        assert got >= 5000  # and the link does carry
    finally:
        network.close()


@needs_root
def test_a_server_namespace_attaches_and_groups_reach_its_other_address() -> None:
    network = create_network({"g": parse_profile({"delay_ms": 5})}, backend="wire")
    server = netns.Namespace.create()  # a veth namespace, as the Janus testbed makes
    try:
        address = network.attach(server, owns=[server.link.ns_address])
        echo = _echo(server.name, "0.0.0.0")
        try:
            g = network.ports["g"]
            for target in (address, server.link.ns_address):
                done = subprocess.run(
                    ["ip", "netns", "exec", g.namespace, sys.executable, "-c",
                     "import socket,sys\ns=socket.socket(2,2);s.settimeout(5);s.sendto(b'hi',(sys.argv[1],9000));"
                     "print(s.recvfrom(100)[0].decode())", target], capture_output=True, text=True, timeout=20)
                assert done.stdout.strip() == "hi", done.stderr
        finally:
            echo.kill()
            echo.wait(5)
    finally:
        server.delete()
        network.close()


@needs_root
def test_the_recorder_applies_the_timeline_and_records_it() -> None:
    profile = parse_profile({"delay_ms": 1, "timeline": [{"at_s": 1.0, "duration_s": 1.0, "down": {"loss_pct": 100}}]})
    network = create_network({"g": profile}, backend="wire")
    rows: dict[str, list[dict[str, object]]] = {}
    t0 = time.time()
    recorder = NetworkRecorder(network, {"g": profile}, t0, lambda table, new: rows.setdefault(table, []).extend(new))
    try:
        recorder.start()
        time.sleep(3.5)
    finally:
        recorder.stop()
        network.close()
    changes = [e["detail"] for e in rows["events"]]  # the results writer stores them as JSON text
    assert all(isinstance(c, dict) for c in changes)
    assert [c["at_s"] for c in changes] == [0.0, 1.0, 2.0]  # type: ignore[index]
    assert changes[1]["down"]["loss_pct"] == 100  # type: ignore[index]
    assert changes[2]["down"]["loss_pct"] == 0  # type: ignore[index]
    event_ts = [float(e["ts"]) for e in rows["events"]]  # type: ignore[arg-type]
    assert event_ts[1] == pytest.approx(t0 + 1.0) and event_ts[2] == pytest.approx(t0 + 2.0)
    assert rows["network"] and rows["probes"][0]["role"] == "wire"
    assert not recorder.errors


def test_without_root_one_line_says_impairment_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TestbedError, match=r"^network impairment needs root") as info:
        create_network({"g": NetworkProfile(up=Shape(delay_ms=5))})
    assert "\n" not in str(info.value)


def test_the_wire_needs_nothing_but_the_standard_library() -> None:
    code = ("import sys, harness.testbed.wire\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'pandas', 'aiortc', 'av', 'psutil'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "[]", done.stderr


def test_a_late_wire_or_a_dropping_device_makes_the_run_invalid() -> None:
    # Two seconds in which the wire sent 40 of the 100 packets it held late each: 8 % of 1000, over the limit.
    probes = pd.DataFrame({"ts": [float(t) for t in range(10)], "role": ["wire"] * 10,
                           "loop_lag_ms": [0.3] * 8 + [40.0, 60.0], "packets_held": [100] * 10,
                           "packets_late": [0] * 8 + [40, 40]})
    network = pd.DataFrame({"ts": [8.0, 8.0], "group": ["g", "g"], "direction": ["up", "down"],
                            "packets": [1000, 1000], "lost": [0, 0], "queue_drops": [0, 0],
                            "kernel_drops": [50, 0]})
    reasons = network_reasons(probes, network, None)
    assert len(reasons) == 2
    assert "8.0% of the packets it held left more than 5 ms after their time" in reasons[0], reasons
    assert "latest 60 ms" in reasons[0] and "dropped 50 packets" in reasons[1]
    assert network_reasons(probes, network, (0.0, 7.5)) == []  # outside the steady window: not counted
    calm = probes.assign(loop_lag_ms=0.3, packets_late=0)
    assert network_reasons(calm, network.assign(kernel_drops=0), None) == []


def test_a_few_late_packets_in_many_seconds_are_hiccups_not_a_late_wire() -> None:
    """A link a sender overflows keeps the wire's queue full, so each instant the hypervisor takes the vCPU makes
    a late packet: in half of the seconds here, yet 0.5 % of the packets. That wire kept its times."""
    probes = pd.DataFrame({"ts": [float(t) for t in range(10)], "role": ["wire"] * 10,
                           "loop_lag_ms": [0.3, 9.0] * 5, "packets_held": [200] * 10,
                           "packets_late": [0, 2] * 5})
    no_drops = pd.DataFrame(columns=["ts", "direction", "packets", "lost", "queue_drops", "kernel_drops"])
    assert network_reasons(probes, no_drops, None) == []
    assert network_reasons(probes.assign(packets_late=[0, 5] * 5), no_drops, None)  # 1.25 %: late


def test_runs_recorded_before_the_wire_counted_late_packets_are_judged_by_their_seconds() -> None:
    probes = pd.DataFrame({"ts": [float(t) for t in range(10)], "role": ["wire"] * 10,
                           "loop_lag_ms": [0.3] * 8 + [40.0, 60.0]})
    no_drops = pd.DataFrame(columns=["ts", "direction", "packets", "lost", "queue_drops", "kernel_drops"])
    reasons = network_reasons(probes, no_drops, None)
    assert len(reasons) == 1 and "late in 20% of seconds" in reasons[0]


def test_the_health_rule_counts_late_packets_as_the_wire_does() -> None:
    assert MAX_LATE_MS == wire.LATE_MS


@needs_root
def test_backend_choice_is_stated(monkeypatch: pytest.MonkeyPatch) -> None:
    backend, reason = impairment.choose_backend()
    if impairment.netem_available():
        assert backend == "netem"
    else:
        assert backend == "wire" and "no tc netem" in reason
        monkeypatch.setenv(impairment.BACKEND_ENV, "netem")
        with pytest.raises(TestbedError, match="no tc netem"):
            impairment.choose_backend()
    monkeypatch.setenv(impairment.BACKEND_ENV, "wire")
    assert impairment.choose_backend() == ("wire", "CONFBENCH_IMPAIRMENT=wire")


@needs_root
def test_the_netem_topology_carries_traffic() -> None:
    """The kernel backend's bridge and veths (shaping them needs netem, which this kernel may not have)."""
    from harness.testbed.netem import NetemNetwork

    with impairment._allocation_lock():
        subnet = impairment._free_subnet()
    network = NetemNetwork.start(subnet, ["g"])
    try:
        g = network.ports["g"]
        echo = _echo(g.namespace, g.address)
        try:
            assert len(_rtts(network.root_address, g.address, 3)) == 3
        finally:
            echo.kill()
            echo.wait(5)
        if impairment.netem_available():
            network.set_shapes("g", Shape(delay_ms=30), Shape())
            echo = _echo(g.namespace, g.address)
            try:
                assert min(_rtts(network.root_address, g.address, 5)) >= 0.030
            finally:
                echo.kill()
                echo.wait(5)
    finally:
        network.close()
    assert g.namespace not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
