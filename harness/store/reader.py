"""Reading a results folder: the manifest, every table as a DataFrame (older parts upgraded), the summary.

Everything after a run (summary, reports, comparisons) reads through :class:`RunReader`; a corrupt part is
skipped and noted, a part or document newer than this harness is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import StoreError
from harness.store.manifest import _SUMMARY_UPGRADES, SCHEMA_VERSION, SUMMARY_FILE, _read_json, read_manifest
from harness.store.tables import _META_TABLE, _META_VERSION, _PART_RE, _TABLE_UPGRADES, TABLES

log = logging.getLogger(__name__)

__all__ = ["RunReader"]

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
