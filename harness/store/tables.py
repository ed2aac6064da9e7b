"""The run's tables: their Arrow schemas (spelled as in ``docs/results.md``) and their part files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType

import pyarrow as pa

from harness.store.manifest import SCHEMA_VERSION

__all__ = ["TABLES"]

_META_VERSION = b"confbench.schema_version"


_META_TABLE = b"confbench.table"


# The table columns, spelled as in the table of docs/results.md ("?" = nullable) so the two are easy to
# compare by eye; tests/test_store.py also compares them mechanically.
_TABLE_SPECS: dict[str, str] = {
    "joins": "ts f64, participant str, group str, host str, attempt i64, ok bool, signalling_ms f64?, "
    "ice_ms f64?, join_ms f64?, first_frame_ms f64?, error str?, engine str?, stream_id i64?",
    "frames": "ts f64, receiver str, sender str, stream_id i64, frame_no i64, capture_ts f64, "
    "latency_ms f64, gap_ms f64?, width i64, height i64, source str?",
    "streams": "ts f64, participant str, peer str, direction str, kind str, ssrc i64, packets i64, "
    "packets_lost i64, loss_pct f64?, jitter_ms f64?, rtt_ms f64?, bitrate_kbps f64?, fps f64?, freezes i64, "
    "freeze_ms f64, frames_unreadable i64, jitter_buffer_ms f64?, decoded_fps f64?, frames_dropped i64?, "
    "reported_freezes i64?, quality_limitation str?, width i64?, height i64?, psnr_db f64?, mos f64?, "
    "packets_nacked i64?, source str?, send_gap_p50_ms f64?, send_gap_p95_ms f64?, send_gap_max_ms f64?, "
    "send_burst_pct f64?, layer str?, packets_unrepaired i64?, send_jitter_ms f64?, jitter_buffer_min_ms f64?, "
    "jitter_buffer_target_ms f64?",
    "audio": "ts f64, receiver str, sender str, latency_ms f64",
    "probes": "ts f64, host str, role str, pid i64, name str, cpu_pct f64, rss_mb f64, loop_lag_ms f64?, "
              "frames_produced i64?, frames_skipped i64?, udp_drops i64?, udp_rcvbuf_errors i64?, "
              "samples_dropped i64?, tasks i64?, gc_pause_ms f64?, steal_pct f64?, idle_pct f64?, packets_held i64?, "
              "packets_late i64?",
    "events": "ts f64, kind str, participant str?, detail str",
    "network": "ts f64, group str, direction str, packets i64, bytes i64, lost i64, queue_drops i64, "
               "queue_ms_max f64?, kernel_drops i64",
}


_ARROW_TYPES: dict[str, pa.DataType] = {
    "f64": pa.float64(),
    "i64": pa.int64(),
    "str": pa.string(),
    "bool": pa.bool_(),
}


def _build_schema(table: str, spec: str) -> pa.Schema:
    fields = []
    for column in spec.split(","):
        name, type_name = column.split()
        nullable = type_name.endswith("?")
        fields.append(pa.field(name, _ARROW_TYPES[type_name.rstrip("?")], nullable=nullable))
    return pa.schema(
        fields, metadata={_META_VERSION: str(SCHEMA_VERSION).encode(), _META_TABLE: table.encode()}
    )


TABLES: Mapping[str, pa.Schema] = MappingProxyType(
    {name: _build_schema(name, spec) for name, spec in _TABLE_SPECS.items()}
)
"""Arrow schema of each table (``joins``, ``frames``, ``streams``, ``audio``, ``probes``, ``events``).

Each schema carries the key-value metadata ``confbench.schema_version`` and ``confbench.table`` that every
part file is written with. Non-nullable fields are the columns without ``?`` in docs/results.md.
"""


_TABLE_UPGRADES: dict[int, Callable[[str, pa.Table], pa.Table]] = {}


_PART_RE = re.compile(r"^part-(?P<writer>.+)-(?P<seq>\d{6,})\.parquet$")
