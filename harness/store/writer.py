"""Writing a run's tables while it goes: rows appended, buffered and written out as whole Parquet parts.

Crash safety is the main design constraint: every part is written under a temporary name and renamed into
place, so a run killed at any moment leaves only whole files that a reader can use.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import StoreError
from harness.store.manifest import _json_default
from harness.store.tables import _PART_RE, TABLES

__all__ = ["RunWriter"]

log = logging.getLogger(__name__)


# --- run ids and timestamps -----------------------------------------------------------------------------


# --- JSON documents (manifest, summary) -----------------------------------------------------------------


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

_WRITER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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

    Its calls are serialized by a lock: the controller's probes append from their threads while its main
    loop flushes, and two flushes at once would write the same part name, one over the other (rows lost,
    and the losing thread's error ended its probe). Each process still has writers of its own, each with its
    own ``writer_id``. A writer that is reopened with the same ``writer_id`` continues the part numbering
    instead of overwriting parts.
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
        self._lock = threading.Lock()

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
        with self._lock:
            self._append(table, rows)

    def _append(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
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
        self._maybe_flush()

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
        with self._lock:
            return self._maybe_flush()

    def _maybe_flush(self) -> bool:
        if self._buffered_total == 0:
            return False
        if (
            self._buffered_total >= self.max_buffered_rows
            or time.monotonic() - self._last_flush >= self.flush_interval_s
        ):
            self._flush()
            return True
        return False

    def flush(self) -> None:
        """Write each table's buffered rows as one new part file.

        On a :class:`StoreError` (disk full, permissions) the rows of the failing table stay buffered, so
        nothing is dropped silently and a later flush can retry.
        """
        with self._lock:
            self._flush()

    def _flush(self) -> None:
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
        with self._lock:
            if self._closed:
                return
            self._flush()
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


