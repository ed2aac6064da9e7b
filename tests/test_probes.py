"""Process probes: CPU and RSS of real processes (a busy child and its own child), once per interval."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from harness.probes.probes import ProcessProbe

BUSY = "import subprocess, sys, time\n" \
       "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n" \
       "end = time.time() + 30\n" \
       "while time.time() < end: pass\n"


def test_probe_follows_a_server_and_its_children() -> None:
    server = subprocess.Popen([sys.executable, "-c", BUSY])
    rows: list[dict[str, Any]] = []
    probe = ProcessProbe([server.pid], "sut", rows.extend, interval_s=0.2)
    try:
        time.sleep(0.5)  # let the server start its child
        probe.start()
        time.sleep(2.0)
    finally:
        probe.stop()
        server.kill()
        server.wait(timeout=10)
    assert probe.finished.is_set()
    pids = {r["pid"] for r in rows}
    assert server.pid in pids and len(pids) == 2  # the child was discovered too
    busy = [r["cpu_pct"] for r in rows if r["pid"] == server.pid]
    assert max(busy) > 50  # a spinning loop uses most of a core
    assert all(r["role"] == "sut" and r["rss_mb"] > 1 for r in rows)


def test_probe_survives_a_process_that_exits() -> None:
    short = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    rows: list[dict[str, Any]] = []
    probe = ProcessProbe([short.pid], "sut", rows.extend, interval_s=0.2)
    probe.start()
    short.wait(timeout=10)
    time.sleep(0.6)
    probe.stop()
    assert probe.finished.is_set()
    assert len(rows) >= 1
