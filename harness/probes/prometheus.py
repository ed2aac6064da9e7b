"""CPU and memory of a remote server under test, scraped from a Prometheus endpoint into ``probes``.

A server the harness did not start has no pid to watch. Where it exposes Prometheus metrics, set
``CONFBENCH_SERVER_METRICS_URL`` (e.g. ``http://HOST:9100/metrics``) and the controller scrapes it once a
second during the run, writing ``probes`` rows with role ``sut`` like the local process probe does, so that
``sut_cpu_pct`` and the server charts work the same. Two kinds of exporter are understood:

- a process exporter (any client library's default process metrics, or a process-exporter), read from
  ``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` (summed over series);
- a node exporter, read from ``node_cpu_seconds_total`` (every mode but ``idle`` and ``iowait``) and
  ``MemTotal - MemAvailable``: the whole machine, which is what a dedicated server box costs.

CPU is in percent of one core, as everywhere in ``probes``.

The text format is parsed by ``prometheus_client``'s own parser (the Prometheus project's Python client), not by
hand: it knows escaped label values, ``}`` inside them, timestamps, ``NaN`` and ``+Inf``. Before the regular
expressions it replaces were removed, both were run on the same scrapes (this test suite's exporters, a real
client library's exposition of a process, a node exporter's text with escapes and timestamps) and gave the
same samples. On malformed text the library refuses the scrape (``ValueError``: the probe counts a failed
scrape, the check before a run says the endpoint is unusable) where the expressions skipped the lines they
did not understand.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from harness.probes.periodic import PeriodicProbe, Row

log = logging.getLogger(__name__)

METRICS_URL_ENV = "CONFBENCH_SERVER_METRICS_URL"
SCRAPE_TIMEOUT_S = 2.0
_IDLE_MODES = {"idle", "iowait"}


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of each sample of the Prometheus text format; raises ``ValueError`` when the
    text is not in that format."""
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise ValueError(f"not the Prometheus text format: {exc}") from None
    for family in families:
        for sample in family.samples:
            yield sample.name, dict(sample.labels), float(sample.value)


@dataclass(frozen=True, slots=True)
class Reading:
    """What one scrape says: CPU seconds used so far and resident memory (None where not exposed)."""

    cpu_seconds: float | None
    rss_bytes: float | None
    kind: str  # "process" or "node"


def read(text: str) -> Reading:
    """Interpret a scrape; raises ``ValueError`` when it has neither process nor node CPU metrics."""
    process_cpu = process_rss = node_cpu = mem_total = mem_available = None

    def add(current: float | None, value: float) -> float:
        return value if current is None else current + value

    for name, labels, value in samples(text):
        if math.isnan(value):
            continue
        if name == "process_cpu_seconds_total":
            process_cpu = add(process_cpu, value)
        elif name == "process_resident_memory_bytes":
            process_rss = add(process_rss, value)
        elif name == "node_cpu_seconds_total" and labels.get("mode") not in _IDLE_MODES:
            node_cpu = add(node_cpu, value)
        elif name == "node_memory_MemTotal_bytes":
            mem_total = value
        elif name == "node_memory_MemAvailable_bytes":
            mem_available = value
    if process_cpu is not None:
        return Reading(process_cpu, process_rss, "process")
    if node_cpu is not None:
        used = mem_total - mem_available if mem_total is not None and mem_available is not None else None
        return Reading(node_cpu, used, "node")
    raise ValueError("no process_cpu_seconds_total or node_cpu_seconds_total in the metrics")


class MetricsProbe(PeriodicProbe):
    """Scrapes ``url`` every ``interval_s`` in a thread and emits one ``probes`` row per scrape (from the second:
    a CPU figure needs two)."""

    def __init__(self, url: str, emit: Callable[[list[Row]], None], role: str = "sut",
                 interval_s: float = 1.0) -> None:
        super().__init__("metrics", emit, interval_s, stop_timeout_s=SCRAPE_TIMEOUT_S + 3)
        self.url = url
        self._role = role
        self._host = urlsplit(url).hostname or url
        self._previous: tuple[float, float] | None = None  # (monotonic time, cpu seconds)

    def check(self) -> Reading:
        """One scrape now; raises ``OSError``/``ValueError`` with the reason when the endpoint is unusable."""
        with urllib.request.urlopen(self.url, timeout=SCRAPE_TIMEOUT_S) as answer:
            return read(answer.read().decode(errors="replace"))

    def prepare(self) -> None:
        """The first scrape, at once: the baseline of the CPU counter."""
        self.sample()

    def sample(self) -> list[Row]:
        """One scrape's row; none for the first or after a failed scrape (counted, logged)."""
        try:
            reading = self.check()
        except (OSError, ValueError) as exc:
            self.failures += 1
            log.warning("scraping %s failed: %s", self.url, exc)
            return []
        row = self._row(reading, self._host)
        return [row] if row is not None else []

    def _row(self, reading: Reading, host: str) -> Row | None:
        now = time.monotonic()
        previous, self._previous = self._previous, (now, reading.cpu_seconds or 0.0)
        if previous is None or reading.cpu_seconds is None or now <= previous[0]:
            return None
        cpu_pct = max(reading.cpu_seconds - previous[1], 0.0) / (now - previous[0]) * 100
        rss_mb = reading.rss_bytes / 2**20 if reading.rss_bytes is not None else math.nan
        return {"ts": time.time(), "host": host, "role": self._role, "pid": 0, "name": f"{reading.kind}-metrics",
                "cpu_pct": cpu_pct, "rss_mb": rss_mb, "loop_lag_ms": None}
