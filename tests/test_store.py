"""Tests for harness.store (manifest, tables, writer, reader): run ids, documents, tables, crash safety."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.errors import StoreError
from harness.store import manifest as manifest_mod
from harness.store import reader as reader_mod
from harness.store import tables as tables_mod
from harness.store import writer as writer_mod
from harness.store.manifest import (
    SCHEMA_VERSION,
    new_run_id,
    read_manifest,
    update_manifest,
    utc_iso,
    write_manifest,
    write_summary,
)
from harness.store.reader import RunReader
from harness.store.tables import TABLES
from harness.store.writer import RunWriter

ROOT = Path(__file__).resolve().parents[1]


def frame(n: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ts": 1000.0 + n / 30,
        "receiver": "p1",
        "sender": "p2",
        "stream_id": 7,
        "frame_no": n,
        "capture_ts": 1000.0 + n / 30 - 0.05,
        "latency_ms": 50.0 + n,
        "gap_ms": 33.3,
        "width": 640,
        "height": 360,
    }
    row.update(overrides)
    return row


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    write_manifest(path, {"run_id": "r1", "status": "running"})
    return path


# --- run ids ---------------------------------------------------------------------------------------------


def test_new_run_id_format() -> None:
    run_id = new_run_id("p2p", datetime(2026, 11, 28, 21, 45, 1, tzinfo=UTC))
    assert re.fullmatch(r"20261128T214501Z-p2p-[0-9a-f]{4}", run_id)


def test_new_run_id_sanitises_and_converts_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    run_id = new_run_id("Janus SFU / v1.2!", datetime(2026, 1, 2, 3, 4, 5, tzinfo=plus_two))
    assert re.fullmatch(r"20260102T010405Z-janus-sfu-v1-2-[0-9a-f]{4}", run_id)
    # Naive datetimes are taken as UTC.
    assert new_run_id("x", datetime(2026, 1, 2, 3, 4, 5)).startswith("20260102T030405Z-x-")


def test_new_run_id_is_unique_and_rejects_empty_names() -> None:
    assert len({new_run_id("p2p") for _ in range(50)}) > 40
    with pytest.raises(ValueError, match="system name"):
        new_run_id("///")


def test_utc_iso() -> None:
    assert utc_iso(datetime(2026, 11, 28, 21, 45, 1, 123456, tzinfo=UTC)) == "2026-11-28T21:45:01.123Z"
    assert datetime.fromisoformat(utc_iso()).tzinfo is not None


# --- schemas ---------------------------------------------------------------------------------------------


def test_tables_match_docs() -> None:
    """The schemas and the table in docs/results.md say the same thing (DESIGN.md: fix one of them)."""
    doc = (ROOT / "docs" / "results.md").read_text()
    types = {"f64": pa.float64(), "i64": pa.int64(), "str": pa.string(), "bool": pa.bool_()}
    documented = {}
    for match in re.finditer(r"^\| `(\w+)` \| (.+) \|$", doc, re.MULTILINE):
        columns = re.findall(r"`(\w+)` (f64|i64|str|bool)(\??)", match.group(2))
        documented[match.group(1)] = [(name, types[t], q == "?") for name, t, q in columns]
    assert set(documented) == set(TABLES)
    for name, schema in TABLES.items():
        assert [(f.name, f.type, f.nullable) for f in schema] == documented[name], name
        assert schema.metadata[b"confbench.table"] == name.encode()
        assert schema.metadata[b"confbench.schema_version"] == str(SCHEMA_VERSION).encode()


# --- manifest and summary files ------------------------------------------------------------------------


def test_manifest_round_trip_is_atomic(tmp_path: Path) -> None:
    run = tmp_path / "new" / "run"
    started = datetime(2026, 11, 28, 21, 45, 1, tzinfo=UTC)
    write_manifest(run, {"run_id": "r", "status": "running", "started_utc": started, "scenario": {"n": 2}})
    manifest = read_manifest(run)
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["started_utc"] == "2026-11-28T21:45:01.000Z"
    assert manifest["scenario"] == {"n": 2}
    assert sorted(p.name for p in run.iterdir()) == ["manifest.json"]  # no temporary file left

    updated = update_manifest(run, status="completed", ended_utc="2026-11-28T21:46:01.000Z")
    assert updated["status"] == "completed"
    assert read_manifest(run) == updated
    assert list(json.loads((run / "manifest.json").read_text()))[0] == "schema_version"


def test_manifest_refuses_bad_values(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="status"):
        write_manifest(run_dir, {"status": "done"})
    with pytest.raises(ValueError, match="schema_version"):
        write_manifest(run_dir, {"schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(StoreError, match="manifest.json"):
        write_manifest(run_dir, {"instrument_floor": math.nan})
    with pytest.raises(StoreError, match="manifest.json"):
        write_manifest(run_dir, {"thing": object()})
    assert read_manifest(run_dir)["status"] == "running"  # the old manifest is untouched


def test_read_manifest_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"manifest\.json does not exist"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"schema_version": 1, "status": ')
    with pytest.raises(StoreError, match=r"manifest\.json is unreadable or not JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="not a JSON object"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"status": "running"}')
    with pytest.raises(StoreError, match="no integer schema_version"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(StoreError, match="newer than this harness"):
        read_manifest(tmp_path)
    with pytest.raises(StoreError, match="newer"):
        RunReader(tmp_path)


def test_older_manifest_is_upgraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_manifest(tmp_path, {"run_id": "r", "status": "running", "host": "box"})

    def v1_to_v2(document: dict[str, Any]) -> dict[str, Any]:
        document["host"] = {"hostname": document["host"]}
        return document

    monkeypatch.setattr(manifest_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(manifest_mod._MANIFEST_UPGRADES, SCHEMA_VERSION, v1_to_v2)
    manifest = read_manifest(tmp_path)
    assert manifest["schema_version"] == SCHEMA_VERSION + 1
    assert manifest["host"] == {"hostname": "box"}


def test_version_without_upgrade_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 0}))
    with pytest.raises(StoreError, match="cannot upgrade"):
        read_manifest(tmp_path)


def test_summary_file(run_dir: Path) -> None:
    reader = RunReader(run_dir)
    assert reader.summary() is None
    write_summary(run_dir, {"run_id": "r1", "packet_loss_pct": None})
    assert reader.summary() == {"schema_version": SCHEMA_VERSION, "run_id": "r1", "packet_loss_pct": None}
    with pytest.raises(StoreError, match="summary.json"):
        write_summary(run_dir, {"packet_loss_pct": math.nan})
    assert reader.summary() is not None
    (run_dir / "summary.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(StoreError, match="newer"):
        reader.summary()


# --- writing and reading tables ------------------------------------------------------------------------


def test_write_and_read_back(run_dir: Path) -> None:
    with RunWriter(run_dir, flush_interval_s=3600) as writer:
        writer.append("frames", [frame(n) for n in range(5)])
        writer.append(
            "joins",
            [
                {
                    "ts": 1.0,
                    "participant": "p1",
                    "group": "g",
                    "host": "h",
                    "attempt": 1,
                    "ok": True,
                    "join_ms": 812.5,
                }
            ],
        )
        assert writer.rows_written["frames"] == 0
        assert writer.rows_buffered["frames"] == 5
    assert writer.closed
    assert writer.rows_written == dict.fromkeys(TABLES, 0) | {"joins": 1, "frames": 5}
    assert sorted(p.name for p in (run_dir / "frames").iterdir()) == ["part-main-000000.parquet"]
    assert not (run_dir / "streams").exists()

    reader = RunReader(run_dir)
    assert reader.manifest["run_id"] == "r1"
    assert reader.run_dir == run_dir
    frames = reader.table("frames")
    assert list(frames.columns) == TABLES["frames"].names
    assert frames["frame_no"].tolist() == [0, 1, 2, 3, 4]
    assert frames["latency_ms"].tolist() == [50.0, 51.0, 52.0, 53.0, 54.0]
    joins = reader.table("joins")
    assert joins["ok"].tolist() == [True]
    assert joins["join_ms"].tolist() == [812.5]
    # Nullable columns that were not given are null.
    assert joins["signalling_ms"].isna().all()
    assert joins["error"].isna().all()
    assert reader.warnings == []


def test_part_metadata(run_dir: Path) -> None:
    with RunWriter(run_dir, writer_id="worker-3") as writer:
        writer.append("audio", [{"ts": 1.0, "receiver": "a", "sender": "b", "latency_ms": 120.0}])
    metadata = pq.read_metadata(run_dir / "audio" / "part-worker-3-000000.parquet").metadata
    assert metadata[b"confbench.schema_version"] == str(SCHEMA_VERSION).encode()
    assert metadata[b"confbench.table"] == b"audio"


def test_empty_table_has_the_same_columns_and_dtypes(run_dir: Path) -> None:
    with RunWriter(run_dir) as writer:
        writer.append("frames", [frame(0)])
        writer.append(
            "joins",
            [
                {
                    "ts": 1.0,
                    "participant": "p1",
                    "group": "g",
                    "host": "h",
                    "attempt": 1,
                    "ok": False,
                    "error": "timeout",
                    # An all-null int64 column reads back as float64 (pandas has no null int by default).
                    "stream_id": 0,
                }
            ],
        )
    reader = RunReader(run_dir)
    (other := run_dir.parent / "empty").mkdir()
    write_manifest(other, {"status": "running"})
    empty_reader = RunReader(other)
    for name in ("frames", "joins"):
        full, empty = reader.table(name), empty_reader.table(name)
        assert len(empty) == 0
        assert list(empty.columns) == list(full.columns)
        assert empty.dtypes.to_dict() == full.dtypes.to_dict()


def test_types_are_coerced(run_dir: Path) -> None:
    with RunWriter(run_dir) as writer:
        writer.append(
            "streams",
            [
                {
                    "ts": 10,  # int into f64
                    "participant": "p1",
                    "peer": 4,  # number into str
                    "direction": "in",
                    "kind": "video",
                    "ssrc": np.uint32(4_000_000_000),  # numpy integer
                    "packets": 90.0,  # integral float into i64
                    "packets_lost": np.int64(2),
                    "jitter_ms": np.float32(1.5),
                    "fps": None,
                    "freezes": 0,
                    "freeze_ms": 0,
                    "frames_unreadable": 0,
                }
            ],
        )
        writer.append("events", [{"ts": 1.0, "kind": "note", "detail": {"b": 1, "a": [1, 2]}}])
        writer.append(
            "joins",
            [{"ts": 1.0, "participant": "p", "group": "g", "host": "h", "attempt": 1, "ok": np.bool_(True)}],
        )
    reader = RunReader(run_dir)
    streams = reader.table("streams").iloc[0]
    assert streams["ts"] == 10.0
    assert streams["peer"] == "4"
    assert streams["ssrc"] == 4_000_000_000
    assert streams["packets"] == 90
    assert streams["jitter_ms"] == 1.5
    assert math.isnan(streams["fps"])
    assert reader.table("events")["detail"].tolist() == ['{"a": [1, 2], "b": 1}']
    assert reader.table("joins")["ok"].tolist() == [True]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("latency_ms", "12", "expected a number"),
        ("latency_ms", True, "expected a number"),
        ("frame_no", 1.5, "expected an integer"),
        ("frame_no", 2**70, "does not fit in int64"),
        ("frame_no", False, "expected an integer"),
        ("receiver", b"p1", "expected a string"),
        ("receiver", None, "no value for column 'receiver'"),
    ],
)
def test_bad_values_are_refused_with_the_batch(run_dir: Path, column: str, value: Any, message: str) -> None:
    writer = RunWriter(run_dir)
    with pytest.raises(StoreError, match=message) as info:
        writer.append("frames", [frame(0), frame(1, **{column: value})])
    assert "row 1" in str(info.value)
    assert writer.rows_buffered["frames"] == 0  # all or nothing
    writer.append("frames", [frame(2)])
    writer.close()
    assert RunReader(run_dir).table("frames")["frame_no"].tolist() == [2]


def test_missing_required_column_and_bad_tables(run_dir: Path) -> None:
    writer = RunWriter(run_dir)
    row = frame(0)
    del row["latency_ms"]
    with pytest.raises(StoreError, match="latency_ms"):
        writer.append("frames", [row])
    with pytest.raises(StoreError, match="unknown table 'videos'"):
        writer.append("videos", [frame(0)])
    with pytest.raises(StoreError, match="not a mapping"):
        writer.append("frames", [42])  # type: ignore[list-item]
    writer.append("frames", [])
    writer.close()
    with pytest.raises(StoreError, match="closed"):
        writer.append("frames", [frame(0)])
    writer.close()  # twice is harmless
    with pytest.raises(StoreError, match="unknown table"):
        RunReader(run_dir).table("videos")


def test_unknown_keys_are_ignored_and_counted(run_dir: Path) -> None:
    with RunWriter(run_dir) as writer:
        writer.append("frames", [frame(0, latncy=1), frame(1, latncy=2, extra="x"), frame(2)])
        assert writer.ignored_keys == {"frames": {"latncy": 2, "extra": 1}}
    frames = RunReader(run_dir).table("frames")
    assert len(frames) == 3
    assert "latncy" not in frames.columns


def test_writer_arguments_are_checked(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="writer_id"):
        RunWriter(run_dir, writer_id="../x")
    with pytest.raises(ValueError, match="flush_interval_s"):
        RunWriter(run_dir, flush_interval_s=-1)
    with pytest.raises(ValueError, match="max_buffered_rows"):
        RunWriter(run_dir, max_buffered_rows=0)


def test_flushes_on_size_and_on_interval(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(writer_mod.time, "monotonic", lambda: clock[0])
    writer = RunWriter(run_dir, flush_interval_s=1.0, max_buffered_rows=10)
    assert writer.maybe_flush() is False  # nothing buffered
    writer.append("frames", [frame(n) for n in range(9)])
    assert writer.parts_written == 0
    writer.append("frames", [frame(9)])  # the buffer is full
    assert writer.parts_written == 1
    assert writer.rows_written["frames"] == 10
    writer.append("frames", [frame(10)])
    assert writer.maybe_flush() is False
    clock[0] += 1.0
    assert writer.maybe_flush() is True
    assert writer.rows_written["frames"] == 11
    writer.append("frames", [frame(11)])
    clock[0] += 2.0
    writer.append("frames", [frame(12)])  # append itself notices the interval has passed
    assert writer.rows_written["frames"] == 13
    assert writer.parts_written == 3
    writer.close()
    assert RunReader(run_dir).table("frames")["frame_no"].tolist() == list(range(13))


def test_reopened_writer_continues_numbering(run_dir: Path) -> None:
    for batch in range(3):
        with RunWriter(run_dir) as writer:
            writer.append("frames", [frame(batch)])
    with RunWriter(run_dir, writer_id="other") as writer:
        writer.append("frames", [frame(99)])
    names = sorted(p.name for p in (run_dir / "frames").iterdir())
    assert names == [
        "part-main-000000.parquet",
        "part-main-000001.parquet",
        "part-main-000002.parquet",
        "part-other-000000.parquet",
    ]
    assert RunReader(run_dir).table("frames")["frame_no"].tolist() == [0, 1, 2, 99]


def test_failed_flush_keeps_the_rows(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = RunWriter(run_dir, flush_interval_s=3600)
    writer.append("frames", [frame(0)])

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(writer_mod.pq, "write_table", disk_full)
        with pytest.raises(StoreError, match="No space left"):
            writer.flush()
    assert writer.rows_buffered["frames"] == 1
    assert list((run_dir / "frames").iterdir()) == []  # the temporary file was removed
    writer.close()
    assert RunReader(run_dir).table("frames")["frame_no"].tolist() == [0]


# --- damaged and foreign parts -------------------------------------------------------------------------


def test_truncated_part_is_skipped_with_a_warning(run_dir: Path) -> None:
    for n in range(3):
        with RunWriter(run_dir) as writer:
            writer.append("frames", [frame(n)])
    damaged = run_dir / "frames" / "part-main-000001.parquet"
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    reader = RunReader(run_dir)
    assert reader.table("frames")["frame_no"].tolist() == [0, 2]
    assert len(reader.warnings) == 1
    assert "part-main-000001.parquet" in reader.warnings[0]
    reader.table("frames")
    assert len(reader.warnings) == 1  # not repeated on a second read


def test_garbage_and_foreign_parts_are_skipped(run_dir: Path) -> None:
    with RunWriter(run_dir) as writer:
        writer.append("frames", [frame(0)])
    (run_dir / "frames" / "part-x-000000.parquet").write_bytes(b"not parquet at all")
    pq.write_table(pa.table({"a": [1]}), run_dir / "frames" / "part-y-000000.parquet")  # no metadata
    (run_dir / "frames" / "notes.txt").write_text("ignored, not a part")
    reader = RunReader(run_dir)
    assert reader.table("frames")["frame_no"].tolist() == [0]
    assert len(reader.warnings) == 2


def test_part_of_another_table_is_skipped(run_dir: Path) -> None:
    with RunWriter(run_dir) as writer:
        writer.append("audio", [{"ts": 1.0, "receiver": "a", "sender": "b", "latency_ms": 1.0}])
    (run_dir / "frames").mkdir()
    name = "part-main-000000.parquet"
    os.replace(run_dir / "audio" / name, run_dir / "frames" / name)
    reader = RunReader(run_dir)
    assert reader.table("frames").empty
    assert "belongs to table 'audio'" in reader.warnings[0]


def test_newer_part_is_refused(run_dir: Path) -> None:
    with RunWriter(run_dir) as writer:
        writer.append("frames", [frame(0)])
    schema = TABLES["frames"].with_metadata(
        {b"confbench.schema_version": str(SCHEMA_VERSION + 1).encode(), b"confbench.table": b"frames"}
    )
    newer = pa.Table.from_pylist([frame(1)], schema=schema)
    pq.write_table(newer, run_dir / "frames" / "part-main-000001.parquet")
    with pytest.raises(StoreError, match=r"part-main-000001\.parquet has schema_version 2, newer"):
        RunReader(run_dir).table("frames")


def test_older_part_is_upgraded(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with RunWriter(run_dir) as writer:
        writer.append("frames", [frame(0)])

    def v1_to_v2(name: str, table: pa.Table) -> pa.Table:
        return table.set_column(
            table.column_names.index("latency_ms"),
            "latency_ms",
            pa.compute.multiply(table.column("latency_ms"), 2.0),
        )

    # The reader compares parts with its own name for the version; the manifest module with its own.
    monkeypatch.setattr(manifest_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(reader_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(manifest_mod._MANIFEST_UPGRADES, SCHEMA_VERSION, lambda document: document)
    monkeypatch.setitem(tables_mod._TABLE_UPGRADES, SCHEMA_VERSION, v1_to_v2)
    assert RunReader(run_dir).table("frames")["latency_ms"].tolist() == [100.0]


def test_part_missing_a_nullable_column_is_filled_with_nulls(run_dir: Path) -> None:
    old_fields = [f for f in TABLES["frames"] if f.name != "gap_ms"]
    schema = pa.schema(old_fields, metadata=TABLES["frames"].metadata)
    row = frame(0)
    del row["gap_ms"]
    (run_dir / "frames").mkdir()
    pq.write_table(pa.Table.from_pylist([row], schema=schema), run_dir / "frames" / "part-old-000000.parquet")
    frames = RunReader(run_dir).table("frames")
    assert list(frames.columns) == TABLES["frames"].names
    assert frames["gap_ms"].isna().all()


# --- crash safety ----------------------------------------------------------------------------------------


def test_writer_never_closed_leaves_readable_parts(run_dir: Path) -> None:
    writer = RunWriter(run_dir, flush_interval_s=3600)
    writer.append("frames", [frame(n) for n in range(3)])
    writer.flush()
    writer.append("frames", [frame(n) for n in range(3, 5)])
    writer.flush()
    writer.append("frames", [frame(5)])  # buffered only: lost with the process
    # What a kill in the middle of a flush leaves behind: a temporary file with half a part.
    (run_dir / "frames" / "part-main-000002.parquet.tmp").write_bytes(b"PAR1\x00\x01")
    reader = RunReader(run_dir)
    assert reader.table("frames")["frame_no"].tolist() == [0, 1, 2, 3, 4]
    assert reader.warnings == []
    del writer


def test_killed_process_leaves_readable_parts(run_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from harness.store.writer import RunWriter
        writer = RunWriter({str(run_dir)!r}, flush_interval_s=0.0)
        n = 0
        while True:
            writer.append("frames", [dict(ts=1.0, receiver="r", sender="s", stream_id=1, frame_no=n + i,
                                          capture_ts=0.9, latency_ms=100.0, width=2, height=2)
                                     for i in range(500)])
            n += 500
            if writer.parts_written == 5:
                print("ready", flush=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    reader = RunReader(run_dir)
    frames = reader.table("frames")
    assert reader.warnings == []
    assert len(frames) >= 5 * 500
    assert len(frames) % 500 == 0  # only whole parts
    assert frames["frame_no"].tolist() == list(range(len(frames)))


def test_claim_folder_never_hands_out_a_taken_folder(tmp_path: Path) -> None:
    # Two runs at once into one results folder, in the same second, may draw the same run id.
    names = iter(["20261206T000000Z-p2p-abcd", "20261206T000000Z-p2p-abcd", "20261206T000000Z-p2p-beef"])
    first = manifest_mod.claim_folder(tmp_path, lambda attempt: next(names))
    second = manifest_mod.claim_folder(tmp_path, lambda attempt: next(names))
    assert (first.name, second.name) == ("20261206T000000Z-p2p-abcd", "20261206T000000Z-p2p-beef")
    with pytest.raises(StoreError, match="3 names tried, all taken"):
        manifest_mod.claim_folder(tmp_path, lambda attempt: first.name, attempts=3)


def test_stamped_folders_of_one_second_are_distinct(tmp_path: Path) -> None:
    when = datetime(2026, 12, 6, 0, 0, 1, tzinfo=UTC)
    folders = [manifest_mod.stamped_folder(tmp_path, "small", when) for _ in range(3)]
    assert [f.name for f in folders] == ["small-20261206T000001Z", "small-20261206T000001Z-2",
                                         "small-20261206T000001Z-3"]
    assert all(f.is_dir() for f in folders)


def test_threads_appending_while_another_flushes_lose_no_row(tmp_path: Path) -> None:
    # The controller's probes append from their threads while its loop flushes: unserialized, two flushes
    # wrote one part name twice and rows were lost (a run's sut rows had gaps of seconds).
    import threading

    write_manifest(tmp_path, {"run_id": "r", "status": "running"})
    writer = RunWriter(tmp_path, writer_id="controller", flush_interval_s=0.0)
    per_thread = 2000

    def produce(role: str) -> None:
        for i in range(per_thread):
            writer.append("probes", [{"ts": float(i), "host": "h", "role": role, "pid": 1, "name": role,
                                      "cpu_pct": 1.0, "rss_mb": 1.0}])

    threads = [threading.Thread(target=produce, args=(role,)) for role in ("sut", "machine", "wire")]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        writer.maybe_flush()
    writer.close()
    probes = RunReader(tmp_path).table("probes")
    assert probes.groupby("role").size().to_dict() == {"machine": per_thread, "sut": per_thread, "wire": per_thread}
