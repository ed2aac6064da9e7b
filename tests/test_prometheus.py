"""Scraping a server's Prometheus endpoint into ``probes`` (an exporter served on loopback)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.probes import prometheus

PROCESS = """# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total {cpu}
process_resident_memory_bytes 104857600
"""
NODE = """node_cpu_seconds_total{{cpu="0",mode="idle"}} 1000
node_cpu_seconds_total{{cpu="0",mode="user"}} {cpu}
node_cpu_seconds_total{{cpu="1",mode="system"}} {cpu}
node_cpu_seconds_total{{cpu="1",mode="iowait"}} 5
node_memory_MemTotal_bytes 2e9
node_memory_MemAvailable_bytes 1.5e9
"""


def test_reads_process_and_node_exporters() -> None:
    process = prometheus.read(PROCESS.format(cpu=12.5))
    assert process == prometheus.Reading(12.5, 104857600, "process")
    node = prometheus.read(NODE.format(cpu=3))
    assert node.kind == "node" and node.cpu_seconds == 6 and node.rss_bytes == 0.5e9
    with pytest.raises(ValueError, match="no process_cpu_seconds_total"):
        prometheus.read("up 1\n")


def test_reads_what_real_exporters_write() -> None:
    # Timestamps, escaped quotes and a "}" inside label values, NaN and +Inf: the text format as exporters use it.
    text = NODE.format(cpu=3) + (
        'node_uname_info{release="6.1.0",version="#1 SMP \\"Debian\\" {6.1}"} 1\n'
        'node_memory_MemAvailable_bytes 1.5e9 1700000000000\n'
        'go_gc_duration_seconds{quantile="0.5"} NaN\n'
        'http_request_duration_seconds_bucket{le="+Inf"} 7\n'
    )
    assert prometheus.read(text) == prometheus.Reading(6.0, 0.5e9, "node")
    labels = {name: found for name, found, _ in prometheus.samples(text)}
    assert labels["node_uname_info"]["version"] == '#1 SMP "Debian" {6.1}'
    with pytest.raises(ValueError, match="not the Prometheus text format"):
        prometheus.read("process_cpu_seconds_total{mode=idle} 1\n")


@pytest.fixture
def exporter() -> Iterator[str]:
    """An endpoint whose process burns half a core: its CPU counter grows by 0.5 s per wall second."""
    started = time.monotonic()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = PROCESS.format(cpu=0.5 * (time.monotonic() - started)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()


def test_probe_turns_counters_into_percent_of_a_core(exporter: str) -> None:
    rows: list[dict[str, object]] = []
    probe = prometheus.MetricsProbe(exporter, rows.extend, interval_s=0.2)
    probe.start()
    time.sleep(1.5)
    probe.stop()
    assert len(rows) >= 4 and probe.failures == 0
    assert all(r["role"] == "sut" and r["host"] == "127.0.0.1" for r in rows)
    assert all(abs(float(r["cpu_pct"]) - 50) < 5 for r in rows)  # type: ignore[arg-type]
    assert rows[0]["rss_mb"] == 100


def test_unreachable_endpoint_is_one_line_before_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import SystemError_
    from harness.orchestrate.run import _checked_metrics_url

    monkeypatch.setenv(prometheus.METRICS_URL_ENV, "http://127.0.0.1:9/metrics")
    with pytest.raises(SystemError_, match=r"cannot use the server metrics at http://127.0.0.1:9/metrics"):
        _checked_metrics_url()
    monkeypatch.delenv(prometheus.METRICS_URL_ENV)
    assert _checked_metrics_url() is None
