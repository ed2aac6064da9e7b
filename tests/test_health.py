"""Load-generator health: UDP drops on the generator's own sockets, lost samples, larger receive buffers."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.health import health_reasons, other_work
from harness.rtc import netio
from harness.rtc.udpstats import SocketDrops, rcvbuf_errors
from harness.store.manifest import write_manifest
from harness.store.reader import RunReader
from harness.store.writer import RunWriter


def host_row(second: int, **extra: Any) -> dict[str, Any]:
    row = {"ts": 1000.0 + second, "host": "h", "role": "media_host", "pid": 1, "name": "media_host",
           "cpu_pct": 50.0, "rss_mb": 100.0, "loop_lag_ms": 5.0, "frames_produced": 30, "frames_skipped": 0}
    row.update(extra)
    return row


def reasons_for(tmp_path: Path, rows: list[dict[str, Any]]) -> list[str]:
    write_manifest(tmp_path, {"run_id": "r", "status": "running"})
    with RunWriter(tmp_path) as writer:
        writer.append("probes", rows)
    return health_reasons(RunReader(tmp_path), window=(1000.0, 1010.0))


def test_a_healthy_generator_has_no_reasons(tmp_path: Path) -> None:
    rows = [host_row(s, udp_drops=0, udp_rcvbuf_errors=7, samples_dropped=0) for s in range(10)]
    assert reasons_for(tmp_path, rows) == []  # namespace-wide errors (a local server's) are not the generator's


def test_drops_on_its_own_sockets_make_it_invalid(tmp_path: Path) -> None:
    rows = [host_row(s, udp_drops=3 if s == 4 else 0, samples_dropped=0) for s in range(10)]
    rows.append(host_row(20, udp_drops=500))  # outside the window: ignored
    (reason,) = reasons_for(tmp_path, rows)
    assert "dropped 3 datagrams" in reason and "receive buffers" in reason


def test_lost_samples_make_it_invalid(tmp_path: Path) -> None:
    rows = [host_row(s, samples_dropped=10 if s == 2 else 0) for s in range(10)]
    (reason,) = reasons_for(tmp_path, rows)
    assert "lost 10 samples" in reason


def test_older_runs_without_the_columns_still_judge(tmp_path: Path) -> None:
    assert reasons_for(tmp_path, [host_row(s) for s in range(10)]) == []


def test_socket_drops_count_only_this_processs_sockets() -> None:
    drops = SocketDrops()
    assert drops.delta() is not None
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # tiny: a burst overflows it
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    before = rcvbuf_errors()
    try:
        for _ in range(300):
            sender.sendto(b"x" * 1000, receiver.getsockname())
        dropped = drops.delta()
        assert dropped is not None and 200 < dropped <= 300
        assert drops.delta() == 0  # a delta, not a total
        after = rcvbuf_errors()
        assert before is not None and after is not None and after - before >= dropped
    finally:
        receiver.close()
        sender.close()


def test_datagram_transports_get_a_large_receive_buffer() -> None:
    netio.install()

    async def make() -> int:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        try:
            return int(transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        finally:
            transport.close()

    size = asyncio.run(make())
    with open("/proc/sys/net/core/rmem_max") as fh:
        rmem_max = int(fh.read())
    # Forced to the full size where the process may (root here), else the kernel's cap; never the default.
    assert size == netio.granted_rcvbuf and size >= min(netio.RCVBUF_BYTES, rmem_max)


def machine_row(second: int, steal: float) -> dict[str, Any]:
    return {"ts": 1000.0 + second, "host": "h", "role": "machine", "pid": 0, "name": "machine", "cpu_pct": 150.0,
            "steal_pct": steal, "rss_mb": 900.0, "loop_lag_ms": None}


def test_an_invalid_run_says_when_the_hypervisor_took_the_cores(tmp_path: Path) -> None:
    lagging = [host_row(s, frames_produced=20, frames_skipped=10) for s in range(10)]
    stolen = [machine_row(s, steal=40.0 if s < 5 else 10.0) for s in range(10)]
    reasons = reasons_for(tmp_path, lagging + stolen)
    assert len(reasons) == 2 and "load generator saturated" in reasons[0]
    assert reasons[1] == ("machine shared: its hypervisor gave 25% of a core to other tenants on average meanwhile "
                          "(steal; max 40%)")


def test_steal_alone_never_invalidates_and_a_little_is_not_named(tmp_path: Path) -> None:
    assert reasons_for(tmp_path, [host_row(s) for s in range(10)] + [machine_row(s, 60.0) for s in range(10)]) == []
    lagging = [host_row(s, frames_produced=20, frames_skipped=10) for s in range(10)]
    reasons = reasons_for(tmp_path / "b", lagging + [machine_row(s, 5.0) for s in range(10)])
    assert len(reasons) == 1 and "load generator saturated" in reasons[0]


def busy_machine(second: int, busy: float, spare: float) -> dict[str, Any]:
    return {**machine_row(second, steal=0.0), "cpu_pct": busy, "idle_pct": spare}


def process_row(second: int, role: str, pid: int, cpu: float, host: str = "h") -> dict[str, Any]:
    return {"ts": 1000.0 + second, "host": host, "role": role, "pid": pid, "name": role, "cpu_pct": cpu,
            "rss_mb": 50.0, "loop_lag_ms": None}


def test_other_work_is_the_machine_less_the_runs_processes_on_it() -> None:
    rows = [busy_machine(s, 190.0, 5.0) for s in range(5)]
    rows += [host_row(s, cpu_pct=60.0) for s in range(5)] + [process_row(s, "sut", 2, 30.0) for s in range(5)]
    rows += [process_row(s, "controller", 3, 10.0) for s in range(5)]
    rows += [process_row(s, "media_host", 9, 80.0, host="elsewhere") for s in range(5)]  # another machine's
    other = other_work(pd.DataFrame(rows))
    assert other is not None and list(other) == [90.0] * 5


def test_a_saturated_machine_with_others_at_work_makes_it_invalid(tmp_path: Path) -> None:
    ours = [host_row(s, cpu_pct=100.0) for s in range(10)]
    reasons = reasons_for(tmp_path, ours + [busy_machine(s, 198.0, 2.0) for s in range(10)])
    assert reasons == ["machine saturated by other work: processes outside this run took 98% of a core on "
                       "average (max 98%) while 2% of a core was left spare"]


def test_a_run_that_fills_the_machine_itself_or_others_beside_a_spare_core_are_not_flagged(tmp_path: Path) -> None:
    itself = [host_row(s, cpu_pct=190.0) for s in range(10)] + [busy_machine(s, 195.0, 5.0) for s in range(10)]
    assert reasons_for(tmp_path, itself) == []
    beside = [host_row(s, cpu_pct=60.0) for s in range(10)] + [busy_machine(s, 140.0, 60.0) for s in range(10)]
    assert reasons_for(tmp_path / "b", beside) == []
    niced = [host_row(s, cpu_pct=60.0) for s in range(10)] + [busy_machine(s, 200.0, 140.0) for s in range(10)]
    assert reasons_for(tmp_path / "c", niced) == []  # niced work is spare: it yields to the run at once


def test_a_machine_that_stopped_makes_it_invalid(tmp_path: Path) -> None:
    seconds = [s for s in range(10) if not 3 < s < 8]  # every process skipped 4-7: the machine stood still
    rows = [host_row(s) for s in seconds] + [machine_row(s, steal=0.0) for s in seconds]
    rows += [process_row(s, "controller", 3, 2.0) for s in seconds]
    assert reasons_for(tmp_path, rows) == [
        "machine stopped: none of the run's processes on it sampled anything for 5.0 s (from 3 s into the "
        "window; limit 3 s), as when its hypervisor pauses it"]


def test_a_probe_that_skips_seconds_alone_or_another_machine_is_not_a_stop(tmp_path: Path) -> None:
    rows = [host_row(s) for s in range(10)] + [machine_row(s, steal=0.0) for s in range(10) if not 3 < s < 8]
    assert reasons_for(tmp_path, rows) == []  # the media host went on sampling: the machine ran
    elsewhere = [process_row(s, "media_host", 9, 50.0, host="worker") for s in range(10) if s in (0, 9)]
    rows = [host_row(s) for s in range(10)] + [machine_row(s, steal=0.0) for s in range(10)] + elsewhere
    assert reasons_for(tmp_path / "b", rows) == []
    assert reasons_for(tmp_path / "c", [host_row(s) for s in (0, 9)]) == []  # no machine rows: an older run


def page_row(second: int, name: str, lag_ms: float | None) -> dict[str, Any]:
    return {"ts": 1000.0 + second, "host": "h", "role": "browser", "pid": 7, "name": name, "cpu_pct": 45.0,
            "rss_mb": 600.0, "loop_lag_ms": lag_ms}


def test_browser_pages_that_run_late_make_it_invalid(tmp_path: Path) -> None:
    hosts = [host_row(s) for s in range(10)]
    late = [page_row(s, "browser-1", 150.0 if s in (2, 5) else 20.0) for s in range(10)]
    late += [page_row(s, "browser-2", 30.0) for s in range(10)]
    assert reasons_for(tmp_path, hosts + late) == []  # 2 of 20 page-seconds: 10 %, at the limit, not past it
    later = [page_row(s, "browser-1", 150.0 if s in (2, 5, 7) else 20.0) for s in range(10)]
    later += [page_row(s, "browser-2", 30.0) for s in range(10)]
    (reason,) = reasons_for(tmp_path / "b", hosts + later)
    assert reason == ("browser participants saturated: their pages ran > 100 ms late in 15% of seconds (max 150 "
                      "ms), late by as much on the frames they timed")


def test_pages_that_keep_up_and_rows_without_a_page_lag_are_not_flagged(tmp_path: Path) -> None:
    hosts = [host_row(s) for s in range(10)]
    fine = [page_row(s, "browser-1", 60.0) for s in range(10)]
    # The Playwright driver's row and rows of runs before the page reported its lag carry none.
    silent = [page_row(s, "playwright-driver", None) for s in range(10)]
    assert reasons_for(tmp_path, hosts + fine + silent) == []
    assert reasons_for(tmp_path / "b", hosts + [page_row(s, "browser-1", None) for s in range(10)]) == []
