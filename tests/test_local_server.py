"""A server given by URL on this machine's loopback is found by its listening port (and probed as ``sut``)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from harness.probes.local_server import listening_pids

LISTEN = "import socket, sys, time\n" \
         "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n" \
         "print(s.getsockname()[1], flush=True)\n" \
         "time.sleep(30)\n"


def test_the_process_listening_on_a_loopback_urls_port_is_found() -> None:
    server = subprocess.Popen([sys.executable, "-c", LISTEN], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        assert listening_pids(f"ws://127.0.0.1:{port}") == (server.pid,)
        assert listening_pids(f"http://localhost:{port}/whip/{{room}}/{{participant}}") == (server.pid,)
        # Not on loopback, or nothing listening there: nothing to probe.
        assert listening_pids(f"ws://192.0.2.7:{port}") == ()
        assert listening_pids(f"ws://server.example:{port}") == ()
        assert listening_pids("not a url") == ()
    finally:
        server.kill()
        server.wait(timeout=10)
    deadline = time.monotonic() + 5
    while listening_pids(f"ws://127.0.0.1:{port}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening_pids(f"ws://127.0.0.1:{port}") == ()


def test_this_process_is_never_its_own_server() -> None:
    with socket.socket() as own:
        own.bind(("127.0.0.1", 0))
        own.listen()
        assert listening_pids(f"tcp://127.0.0.1:{own.getsockname()[1]}") == ()
