"""Process probes: CPU and RSS of real processes (a busy child and its own child), once per interval."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Any

import pytest

from harness.probes.periodic import PeriodicProbe
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


class Flaky(PeriodicProbe):
    """Fails on its 2nd and 3rd samples, then samples again."""

    def __init__(self, emit: Any) -> None:
        super().__init__("flaky", emit, interval_s=0.05)
        self.count = 0

    def sample(self) -> list[dict[str, Any]]:
        self.count += 1
        if self.count in (2, 3):
            raise RuntimeError("no sample this time")
        return [{"n": self.count}]


def test_a_probe_goes_on_after_a_failed_sample_or_write(caplog: pytest.LogCaptureFixture) -> None:
    rows: list[dict[str, Any]] = []
    writes = 0

    def emit(batch: list[dict[str, Any]]) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:  # e.g. a full disk, once
            raise OSError("no space left on device")
        rows.extend(batch)

    probe = Flaky(emit)
    with caplog.at_level(logging.WARNING, logger="harness.probes.periodic"):
        probe.start()
        deadline = time.monotonic() + 10
        while probe.count < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        probe.stop()
    assert probe.finished.is_set() and probe.failures == 3
    assert [r["n"] for r in rows][:3] == [1, 5, 6]  # 2 and 3 failed to sample, 4 failed to be written
    assert "no sample this time" in caplog.text and "Traceback" in caplog.text  # the first with its traceback
    assert "failed again (3 times): no space left on device" in caplog.text
