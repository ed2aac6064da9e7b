"""The results folder of one run: manifest, Parquet tables written in parts, summary.

This module is the only code that knows the on-disk layout described in ``docs/results.md``. A run writes
through :class:`RunWriter` while it goes and everything afterwards (summary, reports, comparisons) reads
through :class:`RunReader`, so a schema change and its upgrade live in one place.

Crash safety is the main design constraint: every file is written under a temporary name and renamed into
place, so a run killed at any moment leaves only whole files that a reader can use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import StoreError

__all__ = [
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "STATUSES",
    "SUMMARY_FILE",
    "TABLES",
    "RunReader",
    "RunWriter",
    "new_run_id",
    "read_manifest",
    "update_manifest",
    "utc_iso",
    "write_manifest",
    "write_summary",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of every file this harness writes; bump it together with an upgrade function below."""

MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.json"

STATUSES = frozenset({"running", "completed", "aborted", "failed", "invalid"})
"""The values ``manifest.json``'s ``status`` may take."""

_META_VERSION = b"confbench.schema_version"
_META_TABLE = b"confbench.table"

# The table columns, spelled as in the table of docs/results.md ("?" = nullable) so the two are easy to
# compare by eye; tests/test_store.py also compares them mechanically.
_TABLE_SPECS: dict[str, str] = {
    "joins": "ts f64, participant str, group str, host str, attempt i64, ok bool, signalling_ms f64?, "
    "ice_ms f64?, join_ms f64?, first_frame_ms f64?, error str?, engine str?, stream_id i64?",
    "frames": "ts f64, receiver str, sender str, stream_id i64, frame_no i64, capture_ts f64, "
    "latency_ms f64, gap_ms f64?, width i64, height i64",
    "streams": "ts f64, participant str, peer str, direction str, kind str, ssrc i64, packets i64, "
    "packets_lost i64, loss_pct f64?, jitter_ms f64?, rtt_ms f64?, bitrate_kbps f64?, fps f64?, freezes i64, "
    "freeze_ms f64, frames_unreadable i64, jitter_buffer_ms f64?, decoded_fps f64?, frames_dropped i64?, "
    "quality_limitation str?, width i64?, height i64?, psnr_db f64?, mos f64?",
    "audio": "ts f64, receiver str, sender str, latency_ms f64",
    "probes": "ts f64, host str, role str, pid i64, name str, cpu_pct f64, rss_mb f64, loop_lag_ms f64?, "
              "frames_produced i64?, frames_skipped i64?, udp_drops i64?, udp_rcvbuf_errors i64?, "
              "samples_dropped i64?",
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

# Upgrades from version v to v + 1. Version 1 is the first, so there are none yet; a reader applies them in
# order and refuses a version it has no path from, rather than guessing.
_MANIFEST_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
_SUMMARY_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
_TABLE_UPGRADES: dict[int, Callable[[str, pa.Table], pa.Table]] = {}


# --- run ids and timestamps -----------------------------------------------------------------------------


def new_run_id(system: str, now: datetime | None = None) -> str:
    """Return a fresh run id such as ``20261128T214501Z-p2p-ab12``.

    The system name is lower-cased and every run of characters outside ``[a-z0-9-]`` becomes one ``-``,
    so the id is safe as a folder name and in URLs. ``now`` defaults to the current time; a naive datetime
    is taken to be UTC. Raises ``ValueError`` when nothing of the name is left after sanitising.
    """
    name = re.sub(r"[^a-z0-9-]+", "-", system.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")[:40].strip("-")
    if not name:
        raise ValueError(f"system name {system!r} has no characters usable in a run id ([a-z0-9-])")
    when = _as_utc(now if now is not None else datetime.now(UTC))
    return f"{when:%Y%m%dT%H%M%SZ}-{name}-{secrets.token_hex(2)}"


def utc_iso(when: datetime | None = None) -> str:
    """Format ``when`` (default: now) as the manifest's UTC timestamp, e.g. ``2026-11-28T21:45:01.123Z``."""
    moment = _as_utc(when if when is not None else datetime.now(UTC))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


# --- JSON documents (manifest, summary) -----------------------------------------------------------------


def _json_default(value: Any) -> Any:
    # Only types with one obvious JSON form; anything else is a caller's bug worth an error.
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened, hence best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    Temporary file, fsync, rename, fsync of the folder; :class:`StoreError` on failure. Every JSON file of
    the results (manifests, summaries, run sets) is written through here.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(f"cannot write {path}: {exc}") from exc
    _fsync_dir(path.parent)


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    if not isinstance(document, Mapping):
        raise TypeError(f"{path.name} must be a mapping, got {type(document).__name__}")
    version = document.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path.name}: cannot write schema_version {version!r}, this harness writes {SCHEMA_VERSION}"
        )
    body = {"schema_version": SCHEMA_VERSION, **document}
    try:
        # allow_nan=False: NaN/Infinity are not JSON and other tools choke on them; callers must use None.
        text = json.dumps(body, indent=2, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot write {path}: {exc}") from exc
    atomic_write_bytes(path, (text + "\n").encode())


def _read_json(
    path: Path, upgrades: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]]
) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StoreError(f"{path} does not exist") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path} is unreadable or not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise StoreError(f"{path} is not a JSON object")
    version = document.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise StoreError(f"{path} has no integer schema_version")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema_version {version}, newer than this harness's {SCHEMA_VERSION}; "
            "upgrade confbench to read it"
        )
    while version < SCHEMA_VERSION:
        upgrade = upgrades.get(version)
        if upgrade is None:
            raise StoreError(f"{path} has schema_version {version}, which this harness cannot upgrade")
        document = upgrade(document)
        version += 1
        document["schema_version"] = version
    return document


def write_manifest(run_dir: Path | str, manifest: Mapping[str, Any]) -> None:
    """Write ``<run_dir>/manifest.json`` atomically (temporary file, fsync, rename).

    ``schema_version`` is set to :data:`SCHEMA_VERSION`; the folder is created if needed. Raises
    ``ValueError`` for a ``status`` outside :data:`STATUSES` or another schema_version, and
    :class:`StoreError` when the file cannot be written or a value is not JSON (NaN included).
    """
    status = manifest.get("status")
    if status is not None and status not in STATUSES:
        raise ValueError(f"manifest status {status!r} is not one of {sorted(STATUSES)}")
    _write_json(Path(run_dir) / MANIFEST_FILE, manifest)


def read_manifest(run_dir: Path | str) -> dict[str, Any]:
    """Read ``<run_dir>/manifest.json``, upgraded to the current schema version.

    Raises :class:`StoreError` naming the file when it is missing, corrupt, or newer than this harness.
    """
    return _read_json(Path(run_dir) / MANIFEST_FILE, _MANIFEST_UPGRADES)


def update_manifest(run_dir: Path | str, **changes: Any) -> dict[str, Any]:
    """Replace top-level keys of the manifest, write it atomically and return the new manifest."""
    manifest = read_manifest(run_dir)
    manifest.update(changes)
    write_manifest(run_dir, manifest)
    return manifest


def write_summary(run_dir: Path | str, summary: Mapping[str, Any]) -> None:
    """Write ``<run_dir>/summary.json`` atomically; NaN is refused (:class:`StoreError`), use None."""
    _write_json(Path(run_dir) / SUMMARY_FILE, summary)


# --- writing tables -------------------------------------------------------------------------------------

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    # bool and str are refused: a flag or a text in a numeric column is a bug upstream, not a number.
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


def _as_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"expected an integer, got bool {value!r}")
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        number = int(value)
    else:
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r}")
    if not _I64_MIN <= number <= _I64_MAX:
        raise TypeError(f"integer {number} does not fit in int64")
    return number


def _as_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise TypeError(f"expected a bool, got {type(value).__name__} {value!r}")


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (Mapping, list, tuple)):
        # e.g. an event's `detail`: the contract says "free text or JSON".
        return json.dumps(value, sort_keys=True, default=_json_default)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__} {value!r}")


# Per Arrow type: the Python type that needs no conversion (the fast path) and the converter for the rest.
_COERCERS: dict[pa.DataType, tuple[type, Callable[[Any], Any]]] = {
    pa.float64(): (float, _as_float),
    pa.int64(): (int, _as_int),
    pa.bool_(): (bool, _as_bool),
    pa.string(): (str, _as_str),
}

# (name, nullable, exact type, converter) per column, taken out of the Arrow schemas once: reading
# attributes of a pyarrow Field costs more than everything else the append loop does with a value.
_COLUMNS: dict[str, tuple[tuple[str, bool, type, Callable[[Any], Any]], ...]] = {
    name: tuple((field.name, field.nullable, *_COERCERS[field.type]) for field in schema)
    for name, schema in TABLES.items()
}
_COLUMN_NAMES: dict[str, frozenset[str]] = {name: frozenset(schema.names) for name, schema in TABLES.items()}

_PART_RE = re.compile(r"^part-(?P<writer>.+)-(?P<seq>\d{6,})\.parquet$")
_WRITER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_utc(value: object) -> float | None:
    """A UTC time from a manifest (ISO 8601 string or UNIX seconds) as UNIX seconds; None if unparseable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class RunWriter:
    """Appends sample rows to the tables of one run and writes them out as Parquet parts.

    Rows are buffered per table, column by column, and :meth:`flush` writes each table's buffer as a new
    complete file ``<run_dir>/<table>/part-<writer_id>-<seq:06d>.parquet`` (temporary name, fsync,
    rename), so a killed process loses at most the rows since the last flush and never leaves a file a
    reader would see half-written. :meth:`append` flushes by itself once ``flush_interval_s`` has passed
    or ``max_buffered_rows`` rows are buffered, which bounds both memory and loss.

    Rows are validated and coerced in :meth:`append`, so a bad row fails at the call that made it:
    numbers are converted between int and float (an int column takes only integral floats), numpy scalars
    become Python values, JSON-able dicts/lists in a string column become JSON text; bools and strings are
    never taken as numbers. A missing or None nullable column is null; a missing or None non-nullable
    column is a :class:`StoreError`. Keys that are not columns are ignored and counted in
    :attr:`ignored_keys` (and logged once per key) so a typo in a producer shows up without losing the row.

    Not thread-safe: use one writer per thread or process, each with its own ``writer_id``. A writer that
    is reopened with the same ``writer_id`` continues the part numbering instead of overwriting parts.
    """

    def __init__(
        self,
        run_dir: Path | str,
        writer_id: str = "main",
        flush_interval_s: float = 1.0,
        max_buffered_rows: int = 20000,
    ) -> None:
        if not _WRITER_ID_RE.match(writer_id):
            raise ValueError(f"writer_id {writer_id!r} must match {_WRITER_ID_RE.pattern}")
        if not flush_interval_s >= 0:
            raise ValueError(f"flush_interval_s must be >= 0, got {flush_interval_s!r}")
        if max_buffered_rows < 1:
            raise ValueError(f"max_buffered_rows must be >= 1, got {max_buffered_rows!r}")
        self.run_dir = Path(run_dir)
        self.writer_id = writer_id
        self.flush_interval_s = flush_interval_s
        self.max_buffered_rows = max_buffered_rows
        # Buffers in schema column order, one list per column: converting a list per column is what
        # pyarrow does fastest at flush time.
        self._columns: dict[str, list[list[Any]]] = {
            name: [[] for _ in schema] for name, schema in TABLES.items()
        }
        self._buffered: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._buffered_total = 0
        self._rows_written: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._parts_written = 0
        self._ignored: dict[str, dict[str, int]] = {name: {} for name in TABLES}
        self._next_seq: dict[str, int] = {}
        self._last_flush = time.monotonic()
        self._closed = False

    @property
    def rows_written(self) -> dict[str, int]:
        """Rows written to part files so far, per table (buffered rows are not counted)."""
        return dict(self._rows_written)

    @property
    def rows_buffered(self) -> dict[str, int]:
        """Rows appended but not yet written, per table."""
        return dict(self._buffered)

    @property
    def parts_written(self) -> int:
        """Number of part files this writer has written."""
        return self._parts_written

    @property
    def ignored_keys(self) -> dict[str, dict[str, int]]:
        """Per table, keys that were not columns and how many rows carried them (only tables with any)."""
        return {name: dict(keys) for name, keys in self._ignored.items() if keys}

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def append(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Buffer ``rows`` for ``table``: the whole batch, or on a :class:`StoreError` none of it.

        May write parts (see :meth:`maybe_flush`).
        """
        if self._closed:
            raise StoreError(f"RunWriter for {self.run_dir} is closed")
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}; tables are {', '.join(TABLES)}")
        if not rows:
            return
        known = _COLUMN_NAMES[table]
        columns = _COLUMNS[table]
        staged: list[list[Any]] = [[] for _ in columns]
        extra_rows = []
        index = 0
        # Row by row, value by value, with everything bound to locals: this is the writer's hot path, and a
        # plain loop beats per-column comprehensions for the small batches producers tend to send.
        try:
            for index, row in enumerate(rows):
                if not known.issuperset(row):
                    extra_rows.append(row)
                for (name, nullable, exact, convert), out in zip(columns, staged, strict=True):
                    value = row.get(name)
                    if value.__class__ is not exact or (
                        value.__class__ is int and not _I64_MIN <= value <= _I64_MAX
                    ):
                        if value is None:
                            if not nullable:
                                raise StoreError(f"{table}: row {index} has no value for column {name!r}")
                        else:
                            try:
                                value = convert(value)
                            except TypeError as exc:
                                raise StoreError(f"{table}: row {index}, column {name!r}: {exc}") from exc
                    out.append(value)
        except (AttributeError, TypeError) as exc:
            # Only a row that is not a mapping gets here (no .get, or not iterable for issuperset).
            raise StoreError(f"{table}: row {index} is not a mapping ({exc})") from exc
        if extra_rows:
            self._count_ignored(table, known, extra_rows)
        for buffer, values in zip(self._columns[table], staged, strict=True):
            buffer.extend(values)
        self._buffered[table] += len(rows)
        self._buffered_total += len(rows)
        self.maybe_flush()

    def _count_ignored(self, table: str, known: frozenset[str], rows: list[Mapping[str, Any]]) -> None:
        counts = self._ignored[table]
        for row in rows:
            for key in row.keys() - known:
                if key not in counts:
                    log.warning("store: ignoring key %r that is not a column of table %r", key, table)
                    counts[key] = 0
                counts[key] += 1

    def maybe_flush(self) -> bool:
        """Flush when ``flush_interval_s`` has passed since the last flush or the buffer is full.

        Returns whether it flushed. Cheap enough to call on every tick of a loop.
        """
        if self._buffered_total == 0:
            return False
        if (
            self._buffered_total >= self.max_buffered_rows
            or time.monotonic() - self._last_flush >= self.flush_interval_s
        ):
            self.flush()
            return True
        return False

    def flush(self) -> None:
        """Write each table's buffered rows as one new part file.

        On a :class:`StoreError` (disk full, permissions) the rows of the failing table stay buffered, so
        nothing is dropped silently and a later flush can retry.
        """
        self._last_flush = time.monotonic()
        for table, count in self._buffered.items():
            if count:
                self._write_part(table)

    def _write_part(self, table: str) -> None:
        schema = TABLES[table]
        buffers = self._columns[table]
        directory = self.run_dir / table
        try:
            directory.mkdir(parents=True, exist_ok=True)
            seq = self._next_seq.get(table)
            if seq is None:
                seq = self._first_free_seq(directory)
            arrays = [pa.array(values, type=f.type) for values, f in zip(buffers, schema, strict=True)]
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot write table {table!r} in {directory}: {exc}") from exc
        final = directory / f"part-{self.writer_id}-{seq:06d}.parquet"
        # Readers only look at part-*.parquet, so the temporary name is invisible to them even if the
        # process dies between writing and renaming.
        tmp = final.with_name(final.name + ".tmp")
        try:
            with open(tmp, "wb") as handle:
                pq.write_table(pa.Table.from_arrays(arrays, schema=schema), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except (OSError, pa.ArrowException) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(f"cannot write {final}: {exc}") from exc
        count = self._buffered[table]
        self._next_seq[table] = seq + 1
        self._rows_written[table] += count
        self._parts_written += 1
        self._buffered_total -= count
        self._buffered[table] = 0
        for values in buffers:
            values.clear()

    def _first_free_seq(self, directory: Path) -> int:
        highest = -1
        for path in directory.iterdir():
            match = _PART_RE.match(path.name)
            if match and match["writer"] == self.writer_id:
                highest = max(highest, int(match["seq"]))
        return highest + 1

    def close(self) -> None:
        """Flush what is buffered and refuse further appends; closing twice is harmless."""
        if self._closed:
            return
        self.flush()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Flush even when the body failed: the rows gathered so far are still valid measurements.
        self.close()


# --- reading ----------------------------------------------------------------------------------------------


class RunReader:
    """Reads a results folder written by :class:`RunWriter` and the manifest/summary functions.

    The manifest is read (and checked) on construction, so a folder that is not a run fails early with a
    :class:`StoreError`. Tables are read on every :meth:`table` call; nothing is cached.
    """

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self.warnings: list[str] = []
        """Problems that did not stop reading, e.g. a corrupt part that was skipped."""
        self.manifest: dict[str, Any] = read_manifest(self.run_dir)

    def parts(self, name: str) -> list[Path]:
        """The part files of table ``name`` in the order :meth:`table` reads them (by file name)."""
        if name not in TABLES:
            raise StoreError(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
        directory = self.run_dir / name
        if not directory.is_dir():
            return []
        return sorted(p for p in directory.iterdir() if _PART_RE.match(p.name))

    def table(self, name: str) -> pd.DataFrame:
        """All rows of table ``name`` as a DataFrame with the schema's columns, in part-name order.

        Parts are ordered by writer id then sequence number, not by time; sort by ``ts`` where it matters.
        A table without parts gives an empty DataFrame with the same columns and dtypes. A part that cannot
        be read is skipped and noted in :attr:`warnings`; a part with a newer schema version raises
        :class:`StoreError` because its meaning is unknown.
        """
        parts = self.parts(name)  # rejects unknown names
        schema = TABLES[name]
        tables = [t for t in (self._read_part(name, path) for path in parts) if t is not None]
        if not tables:
            return schema.empty_table().to_pandas()
        return pa.concat_tables(tables).to_pandas()

    def summary(self) -> dict[str, Any] | None:
        """The content of ``summary.json``, or None when the run has none (yet)."""
        path = self.run_dir / SUMMARY_FILE
        if not path.exists():
            return None
        return _read_json(path, _SUMMARY_UPGRADES)

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            log.warning("store: %s", message)
            self.warnings.append(message)

    def _read_part(self, name: str, path: Path) -> pa.Table | None:
        try:
            parquet = pq.ParquetFile(path)
            metadata = parquet.metadata.metadata or {}
        except (OSError, pa.ArrowException) as exc:
            self._warn(f"skipped unreadable part {path}: {exc}")
            return None
        raw_version = metadata.get(_META_VERSION)
        try:
            version = int(raw_version) if raw_version is not None else None
        except ValueError:
            version = None
        if version is None:
            self._warn(f"skipped part {path}: no valid {_META_VERSION.decode()} metadata")
            return None
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema_version {version}, newer than this harness's {SCHEMA_VERSION}; "
                "upgrade confbench to read it"
            )
        stored_table = metadata.get(_META_TABLE, b"").decode(errors="replace")
        if stored_table != name:
            self._warn(f"skipped part {path}: it belongs to table {stored_table!r}, not {name!r}")
            return None
        try:
            table = parquet.read()
        except (OSError, pa.ArrowException) as exc:
            self._warn(f"skipped unreadable part {path}: {exc}")
            return None
        while version < SCHEMA_VERSION:
            upgrade = _TABLE_UPGRADES.get(version)
            if upgrade is None:
                raise StoreError(f"{path} has schema_version {version}, which this harness cannot upgrade")
            table = upgrade(name, table)
            version += 1
        return self._conform(name, path, table)

    def _conform(self, name: str, path: Path, table: pa.Table) -> pa.Table | None:
        # Every part is brought to exactly the current schema so concat_tables accepts them together.
        schema = TABLES[name]
        columns = []
        for field in schema:
            if field.name in table.column_names:
                try:
                    columns.append(table.column(field.name).cast(field.type))
                except pa.ArrowException as exc:
                    self._warn(f"skipped part {path}: column {field.name!r}: {exc}")
                    return None
            elif field.nullable:
                columns.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)]))
            else:
                self._warn(f"skipped part {path}: required column {field.name!r} is missing")
                return None
        return pa.Table.from_arrays(columns, schema=schema)
