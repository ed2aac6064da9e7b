"""Namespaces and veth links of the local testbed (needs root; skipped with the reason otherwise)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from harness.errors import TestbedError
from harness.testbed import netns

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


@needs_root
def test_link_carries_udp_both_ways_and_is_removed() -> None:
    with netns.Namespace.create() as ns:
        assert ns.name in _namespaces()
        # A UDP echo inside the namespace, reached over the link from the root namespace.
        echo = subprocess.Popen(ns.exec_argv([sys.executable, "-c", (
            "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
            f"s.bind(('{ns.link.ns_address}',9));print('ready',flush=True);d,a=s.recvfrom(100);s.sendto(d,a)")]),
            stdout=subprocess.PIPE, text=True)
        try:
            assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((ns.link.host_address, 0))
                s.settimeout(5)
                s.sendto(b"ping", (ns.link.ns_address, 9))
                assert s.recvfrom(100)[0] == b"ping"
        finally:
            echo.kill()
            echo.wait(5)
    assert ns.name not in _namespaces()
    assert ns.link.host_ifname not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout


@needs_root
def test_two_namespaces_get_different_links() -> None:
    with netns.Namespace.create() as a, netns.Namespace.create() as b:
        assert a.name != b.name
        assert a.link.host_address != b.link.host_address


@needs_root
def test_stale_namespace_of_a_dead_process_is_removed() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = f"cb{dead.pid}n1"
    netns.ip("netns", "add", name)
    try:
        assert name in netns.remove_stale()
        assert name not in _namespaces()
    finally:
        netns.ip("netns", "delete", name, check=False)


def test_link_refuses_addresses_outside_the_benchmark_block() -> None:
    with pytest.raises(ValueError, match="outside"):
        netns.Link("x", "a", "b", "192.0.2.1", "198.18.0.2")


def test_require_root_says_what_to_do_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(TestbedError, match="needs root.*use X instead"):
        netns.require_root("the thing", "use X instead")
