"""The machine probe: busy and stolen CPU of the whole machine, and waiting for a quiet one."""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.probes import machine
from harness.probes.machine import Load, MachineLog, MachineProbe, Sampler, wait_until_quiet


class FakeSampler(Sampler):
    """Hands out the given loads, one per window."""

    def __init__(self, loads: list[Load]) -> None:
        self._loads = iter(loads)

    def load(self) -> Load:
        return next(self._loads)


def test_waiting_ends_at_the_first_quiet_window() -> None:
    slept: list[float] = []
    loads = [Load(150.0, 0.0), Load(20.0, 40.0), Load(20.0, 10.0), Load(0.0, 0.0)]
    quiet, waited, load = wait_until_quiet(60, sleep=slept.append, sampler=FakeSampler(loads))
    assert quiet and waited == 6.0 and load == Load(20.0, 10.0) and slept == [2.0, 2.0, 2.0]


def test_waiting_is_bounded_when_the_machine_stays_busy() -> None:
    slept: list[float] = []
    quiet, waited, load = wait_until_quiet(5, sleep=slept.append, sampler=FakeSampler([Load(10.0, 90.0)] * 10))
    assert not quiet and waited == 6.0 and len(slept) == 3 and load.taken_cores == 1.0


def test_the_sampler_scales_to_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # 4 core-seconds: 2 cores for 2 s
    times = iter([(100.0, 10.0, 890.0, 1000.0), (101.5, 10.5, 890.25, 1004.0)])
    monkeypatch.setattr(machine, "_times", lambda: next(times))
    monkeypatch.setattr(machine.psutil, "cpu_count", lambda: 2)
    assert Sampler().load() == Load(busy_pct=75.0, steal_pct=25.0, idle_pct=12.5)


def test_the_probe_writes_a_row_a_second_for_the_whole_machine() -> None:
    rows: list[dict[str, Any]] = []
    probe = MachineProbe(rows.extend, interval_s=0.2)
    probe.start()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:  # keep one core busy: the machine's busy share must show it
        pass
    probe.stop()
    assert len(rows) >= 3
    assert all(r["role"] == "machine" and r["pid"] == 0 and r["steal_pct"] >= 0 and r["rss_mb"] > 0 for r in rows)
    assert all(0 <= r["idle_pct"] <= 100 * (machine.psutil.cpu_count() or 1) for r in rows)
    assert max(r["cpu_pct"] for r in rows) > 50


def test_a_log_gives_the_steal_of_a_window() -> None:
    log = MachineLog()
    log.rows.extend({"ts": 100.0 + s, "steal_pct": float(s)} for s in range(10))
    assert log.steal_pct(102.0, 105.0) == 4.0  # rows of 103, 104 and 105 (a row describes the second before it)
    assert log.steal_pct(200.0, 210.0) is None
