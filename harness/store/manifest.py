"""A run's JSON documents (``manifest.json``, ``summary.json``), run ids, UTC times and atomic writes.

Every file is written under a temporary name, fsynced and renamed into place, so a run killed at any moment
leaves only whole files. Every document carries its schema version: a reader upgrades older ones and refuses
newer ones (``docs/results.md``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import StoreError

__all__ = [
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "STATUSES",
    "SUMMARY_FILE",
    "atomic_write_bytes",
    "claim_folder",
    "new_run_id",
    "parse_utc",
    "stamped_folder",
    "read_manifest",
    "update_manifest",
    "utc_iso",
    "write_manifest",
    "write_summary",
]

SCHEMA_VERSION = 1
"""Version of every file this harness writes; bump it together with an upgrade function below."""


MANIFEST_FILE = "manifest.json"


SUMMARY_FILE = "summary.json"


STATUSES = frozenset({"running", "completed", "aborted", "failed", "invalid"})
"""The values ``manifest.json``'s ``status`` may take."""


# Upgrades from version v to v + 1. Version 1 is the first, so there are none yet; a reader applies them in
# order and refuses a version it has no path from, rather than guessing.
_MANIFEST_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


_SUMMARY_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


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


def claim_folder(parent: Path, name: Callable[[int], str], attempts: int = 20) -> Path:
    """Create a folder under ``parent`` that no one else has: ``name(0)``, else ``name(1)``, … (the first that
    did not exist). The creation itself is the claim (``mkdir``), so two processes asking at the same moment
    — two runs at once into one results or reports folder — never get the same one.

    :class:`StoreError` when the folder cannot be created, or every one of ``attempts`` names is taken.
    """
    for attempt in range(attempts):
        folder = Path(parent) / name(attempt)
        try:
            folder.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        except OSError as exc:
            raise StoreError(f"cannot create folder {folder}: {exc.strerror or exc}") from None
        return folder
    raise StoreError(f"cannot create a folder in {parent}: {attempts} names tried, all taken "
                     f"(last {name(attempts - 1)})")


def stamped_folder(parent: Path, prefix: str, now: datetime | None = None) -> Path:
    """Create and return ``<parent>/<prefix>-<UTC time>/`` (a report's folder), ``…-2``, ``-3`` … when a run
    finishing in the same second took it: two runs at once never write one report over the other's."""
    stamp = f"{prefix}-{_as_utc(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}"
    return claim_folder(parent, lambda attempt: stamp if attempt == 0 else f"{stamp}-{attempt + 1}")


def utc_iso(when: datetime | None = None) -> str:
    """Format ``when`` (default: now) as the manifest's UTC timestamp, e.g. ``2026-11-28T21:45:01.123Z``."""
    moment = _as_utc(when if when is not None else datetime.now(UTC))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


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
