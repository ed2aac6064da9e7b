"""Bad input everywhere a user types or a file is read (issue 15): property-based tests with Hypothesis.

The property is the same everywhere: the outcome is a valid result, or one line on stderr and the exit status
``harness/cli.py`` gives the error (2 for usage and scenario errors, 1 for results that cannot be read or
written) — never a traceback. Examples that once broke it are kept as ``@example``s (docs/reliability.md,
"Bad input").
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.errors import ScenarioError, StoreError
from harness.scenario.network import NetworkProfile, ProfileError, parse_profile, preset_names
from harness.scenario.scenario import Scenario, load_scenario, scenario_from_dict
from harness.store.manifest import MANIFEST_FILE, SCHEMA_VERSION
from harness.store.reader import RunReader
from harness.store.tables import TABLES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TOML = (REPO / "scenarios" / "default.toml").read_text(encoding="utf-8")
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- a small TOML writer (inline tables only), so mutated documents can be written back ---------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # close to a TOML basic string; when not, the TOML is bad
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(document: dict[str, Any]) -> str:
    """Every top-level key as ``key = value`` with inline tables and arrays."""
    return "".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml_value(v)}\n" for k, v in document.items())


BASE: dict[str, Any] = tomllib.loads(DEFAULT_TOML)
NETWORK_BASE: dict[str, Any] = {"preset": "good-wifi", "delay_ms": 30, "down": {"rate_kbps": 2000},
                                "timeline": [{"at_s": 5, "duration_s": 3, "down": {"rate_kbps": 500}}]}

scalars = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63), 1e308, -0.0, 0.5, 100, 10_000_001]),
    st.text(max_size=20),
    st.sampled_from(["", "VP8", "H264", "native", "browser", "audio", "video", "3g", "< 150", "== 0", "p2p",
                     "=x", "../x", "\x00", "\n", "é", "\U0001f600"]),
)
keys = st.one_of(st.sampled_from(["name", "count", "groups", "network", "media", "video", "delay_ms", "up", "down",
                                  "timeline", "at_s", "burst", "p_pct", "slo", "thresholds", "preset"]),
                 st.text(max_size=12))
garbage = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with a few changes: a value replaced by garbage, a key deleted, an unknown key added."""
    document = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(garbage)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(garbage)
        else:
            parent.append(draw(garbage))
    return document


def _finite_numbers(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite_numbers(v) for v in value)
    return True


@contextlib.contextmanager
def _in(directory: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(old)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``confbench ARGV`` in this process: (exit status, stdout, stderr); an exception escaping fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's --version and --help, which exit 0 after printing
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def assert_one_line_or_ok(code: int, err: str, allowed: tuple[int, ...] = (0, 2)) -> None:
    assert code in allowed, (code, err)
    if code != 0:
        assert "Traceback" not in err
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("confbench: "), err
        assert not lines[0].startswith("confbench: confbench"), err  # argparse's prog printed twice


# --- scenario files --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-input")


def _load_text(directory: Path, text: str | bytes) -> Scenario | None:
    path = directory / "scenario.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        assert str(path) in str(exc)
        return None
    # A valid result is usable: its digest, its resolved form, finite numbers, and it parses back the same.
    assert _finite_numbers(scenario.to_dict())
    # Its name can name a report folder (cli: reports/<name>-<time>, capacity-<name>-…) inside reports/.
    reports = directory / "reports"
    page = reports / f"capacity-{scenario.name}-20261206T000000Z"
    page.mkdir(parents=True)
    assert page.resolve().parent == reports.resolve()
    page.rmdir()
    assert scenario_from_dict(json.loads(json.dumps(scenario.to_dict()))).sha256() == scenario.sha256()
    return scenario


@SETTINGS
@given(document=mutated(BASE))
@example(document={**BASE, "groups": [{**BASE["groups"][0], "join_delay_s": math.nan}]})  # nan passed `< 0`
@example(document={**BASE, "groups": [{**BASE["groups"][0], "stay_s": math.inf}]})
@example(document={**BASE, "spawn_rate": math.nan})
@example(document={**BASE, "name": "../../outside"})  # a report folder outside reports/
@example(document={**BASE, "name": "a\x00b"})  # ValueError (embedded null byte) after the whole run
@example(document={**BASE, "name": "x" * 300})  # a folder name past 255 bytes
@example(document={**BASE, "name": ".."})
@example(document={**BASE, "name": "\U0001f600" * 70})  # 70 characters, 280 bytes
def test_mutated_scenario_is_valid_or_one_scenario_error(workdir: Path, document: dict[str, Any]) -> None:
    _load_text(workdir, to_toml(document))


@SETTINGS
@given(text=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
@example(text=DEFAULT_TOML.replace("count = 4", "count = " + "9" * 5000))  # int beyond Python's 4300 digits
@example(text="x = " + "[" * 5000 + "]" * 5000)  # tomllib recursion
@example(text="x = " + "{a = " * 2000 + "1" + "}" * 2000)
@example(text=b"\xff\xfe")
def test_arbitrary_bytes_are_not_a_traceback(workdir: Path, text: str | bytes) -> None:
    _load_text(workdir, text)


@SETTINGS
@given(document=mutated(BASE))
@example(document={**BASE, "groups": [{**BASE["groups"][0], "bad\nkey": 1}]})  # a newline in a field name
def test_scenario_errors_through_the_cli_are_one_line(workdir: Path, document: dict[str, Any]) -> None:
    # `master --workers 0` loads the scenario first and then refuses the workers: it never starts a run.
    path = workdir / "cli.toml"
    path.write_text(to_toml(document), encoding="utf-8")
    code, _, err = run_cli(["master", str(path), "--system", "p2p", "--workers", "0"])
    assert_one_line_or_ok(code, err, allowed=(2,))


# --- network profiles --------------------------------------------------------------------------------------

@SETTINGS
@given(table=st.one_of(mutated(NETWORK_BASE), garbage, st.text(max_size=30)))
@example(table={"delay_ms": 10, "jitter_ms": 10, "timeline": [{"at_s": 1, "delay_ms": 5}]})
@example(table={"timeline": [{"at_s": 1, "up": {"burst": {"p_pct": 1}}}]})
@example(table="../3g")
@example(table="3g\x00")
def test_network_profile_is_valid_or_profile_error(table: Any) -> None:
    try:
        profile = parse_profile(table)
    except ProfileError as exc:
        assert isinstance(exc.field, str)
        return
    assert isinstance(profile, NetworkProfile)
    for t in profile.changes():
        profile.at(t)  # every moment of a valid profile has valid shapes
    assert _finite_numbers(profile.to_dict())
    assert parse_profile(profile.to_dict(), search=()).to_dict() == profile.to_dict()
    profile.up.describe(), profile.down.describe(), profile.clean  # noqa: B018 - they must not raise


@SETTINGS
@given(network=st.one_of(mutated(NETWORK_BASE), garbage, st.sampled_from(preset_names())))
def test_network_in_a_scenario_is_valid_or_scenario_error(workdir: Path, network: Any) -> None:
    _load_text(workdir, to_toml({**BASE, "groups": [{**BASE["groups"][0], "network": network}]}))


@SETTINGS
@given(text=st.one_of(st.binary(max_size=200), st.text(max_size=200), mutated(NETWORK_BASE).map(to_toml)))
@example(text="delay_ms = " + "9" * 5000)  # ValueError from tomllib in a preset file: now a ProfileError
@example(text="delay_ms = " + "[" * 5000 + "]" * 5000)
def test_preset_files_next_to_the_scenario_are_valid_or_scenario_error(workdir: Path, text: str | bytes) -> None:
    presets = workdir / "networks"
    presets.mkdir(exist_ok=True)
    (presets / "mine.toml").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    _load_text(workdir, to_toml({**BASE, "groups": [{**BASE["groups"][0], "network": "mine"}]}))


# --- command lines ---------------------------------------------------------------------------------------------

MISSING = "no-such-dir/nothing.toml"
OPTION_VALUES = st.one_of(
    st.integers(-2, 5).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "", "x", "=", "p2p", "p2p=", "=x", "nosuch", MISSING,
                     "garbage.toml", "empty", "é", "\n", "--", "-", "2" * 5000]),
    st.integers().map(str),
    st.text(max_size=8),
)
COMMANDS: dict[str, list[str]] = {
    # Every positional that names a file is missing, garbage or an empty folder, so nothing can start.
    "run": ["--system", "--duration", "--participants", "--processes", "--results", "--reports", "--no-report",
            "--server-cpus", "--repeat", "--junit"],
    "compare": ["--in", "--markdown", "--junit", "--json", "--report"],
    "report": ["--out"],
    "calibrate": ["--json", "--quick", "--system", "--floor-only"],
    "evaluate": ["--repeat", "--capacity", "--duration", "--processes", "--results", "--reports"],
    "capacity": ["--system", "--processes", "--start", "--step", "--step-s", "--max-participants",
                 "--max-minutes", "--no-report", "--server-cpus"],
    "history": ["--metric", "--scenario", "--system", "--out"],
}
ARITY = {"run": 1, "compare": 2, "report": 1, "calibrate": 0, "evaluate": 1, "capacity": 1, "history": 1}
FLAGS = {"--no-report", "--json", "--quick", "--floor-only"}
POSITIONALS = st.sampled_from([MISSING, "garbage.toml", "empty", "nosuch-system", "", "-", "é", "--x"])


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    # Mostly as many positionals as the command takes, so that most command lines get past argparse.
    arity = draw(st.sampled_from([ARITY[command], ARITY[command], ARITY[command], 0, 3]))
    argv = [command] + draw(st.lists(POSITIONALS, min_size=arity, max_size=arity))
    for option in draw(st.lists(st.sampled_from(COMMANDS[command] + ["-v", "--bogus"]), max_size=4)):
        argv.append(option)
        if option not in FLAGS and option not in ("-v", "--bogus") or draw(st.booleans()):
            argv.append(draw(OPTION_VALUES))
    if command == "calibrate":
        argv += ["--scenario", draw(st.sampled_from([MISSING, "garbage.toml", "empty"]))]  # fails before measuring
    if command == "capacity" and "--system" not in argv:
        argv += ["--system", draw(st.sampled_from(["p2p", "nosuch", "p2p=x"]))]  # required
    if command == "evaluate" and "--systems" not in argv:
        argv += ["--systems", draw(st.sampled_from(["p2p", "nosuch", "", ","]))]
    return argv


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli")
    (directory / "garbage.toml").write_bytes(b"\x00[[[not toml")
    (directory / "empty").mkdir()
    return directory


@pytest.fixture(scope="module")
def no_work(cli_dir: Path) -> Iterator[None]:
    """Anything that would start a run, a search or a measurement fails the test instead."""
    import harness.orchestrate.calibration as calibration
    import harness.orchestrate.capacity as capacity
    import harness.orchestrate.evaluate as evaluate
    import harness.orchestrate.run as run

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("bad input started work")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run, "execute", refuse)
        mp.setattr(capacity, "run_capacity", refuse)
        mp.setattr(evaluate, "run_evaluation", refuse)
        mp.setattr(calibration, "calibrate", refuse)
        mp.setattr(calibration, "measure_floor", refuse)
        yield


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=argvs())
@example(argv=["run", "--duration", "nan"])
@example(argv=["report", "é\n"])
@example(argv=["capacity", "garbage.toml", "--system", "p2p"])
@example(argv=["history", "empty", "--out", "garbage.toml/x"])
@example(argv=["run", "--bogus"])  # once "confbench: confbench run: unrecognized arguments"
def test_command_lines_are_valid_or_one_line(cli_dir: Path, no_work: None, argv: list[str]) -> None:
    with _in(cli_dir):
        code, _, err = run_cli(argv)
    # 1: a command that ran and judged (history on an empty folder, say) or a results folder it cannot use.
    assert_one_line_or_ok(code, err, allowed=(0, 1, 2))


# --- results folders -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.synthetic_runs import write_run

    return write_run(tmp_path_factory.mktemp("runs"), "reference", seed=1)


def _copy(run: Path, into: Path) -> Path:
    import shutil

    target = into / run.name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run, target)
    return target


def _read_everything(run: Path) -> None:
    """What reports, summaries and comparisons do with a folder: a StoreError is the only failure allowed."""
    try:
        reader = RunReader(run)
        for name in TABLES:
            frame = reader.table(name)
            assert list(frame.columns) == TABLES[name].names
        reader.summary()
    except StoreError as exc:
        assert "\n" not in str(exc)


def _damage_a_part(run: Path, data: st.DataObject) -> None:
    """Truncate a part, fill it with bytes, or replace it by a foreign Parquet file (or one from the future)."""
    parts = sorted(run.glob("*/part-*.parquet"))
    part = data.draw(st.sampled_from(parts))
    kind = data.draw(st.sampled_from(["truncate", "foreign", "bytes", "newer"]))
    if kind == "truncate":
        raw = part.read_bytes()
        part.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
    elif kind == "bytes":
        part.write_bytes(data.draw(st.binary(max_size=200)))
    else:
        columns = data.draw(st.dictionaries(st.sampled_from(["ts", "participant", "latency_ms", "x", "ok"]),
                                            st.sampled_from([pa.int64(), pa.string(), pa.bool_(), pa.float64()]),
                                            max_size=4))
        table = pa.table({k: pa.nulls(2, t) for k, t in columns.items()}) if columns else pa.table({"x": [1, 2]})
        meta = {b"confbench.schema_version": str(SCHEMA_VERSION + 1).encode(),
                b"confbench.table": part.parent.name.encode()}
        pq.write_table(table.replace_schema_metadata(meta if kind == "newer" else None), part)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_parts_are_skipped_or_refused(good_run: Path, tmp_path_factory: pytest.TempPathFactory,
                                              data: st.DataObject) -> None:
    run = _copy(good_run, tmp_path_factory.getbasetemp() / "damaged")
    _damage_a_part(run, data)
    _read_everything(run)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a report takes ~1 s
@given(data=st.data())
def test_report_of_a_damaged_run_is_a_page_or_one_line(good_run: Path, tmp_path_factory: pytest.TempPathFactory,
                                                       data: st.DataObject) -> None:
    run = _copy(good_run, tmp_path_factory.getbasetemp() / "damaged-report")
    _damage_a_part(run, data)
    code, out, err = run_cli(["report", str(run), "--out", str(tmp_path_factory.getbasetemp() / "damaged-page")])
    assert_one_line_or_ok(code, err, allowed=(0, 1, 2))
    assert code != 0 or "report: " in out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 2000), junk=st.binary(max_size=40),
       version=st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.none()))
@example(cut=2000, junk=b"", version=SCHEMA_VERSION + 1)
@example(cut=2000, junk=b"", version=True)
def test_damaged_manifest_is_refused_in_one_line(good_run: Path, tmp_path_factory: pytest.TempPathFactory,
                                                 cut: int, junk: bytes, version: Any) -> None:
    run = _copy(good_run, tmp_path_factory.getbasetemp() / "manifest")
    manifest = json.loads((run / MANIFEST_FILE).read_text(encoding="utf-8"))
    text = json.dumps({**manifest, "schema_version": version}).encode()
    (run / MANIFEST_FILE).write_bytes(text[:cut] + junk)
    _read_everything(run)
    code, _, err = run_cli(["compare", str(run), str(run)])
    assert_one_line_or_ok(code, err, allowed=(0, 1, 2))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # compare: ~0.6 s
@given(data=st.data(), which=st.sampled_from(["manifest.json", "summary.json"]))
def test_documents_with_fields_of_the_wrong_kind_are_read_or_one_line(
        good_run: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, which: str) -> None:
    run = _copy(good_run, tmp_path_factory.getbasetemp() / "fields")
    document = json.loads((run / which).read_text(encoding="utf-8"))
    document = data.draw(mutated({k: v for k, v in document.items() if k != "schema_version"}))
    (run / which).write_text(json.dumps({"schema_version": SCHEMA_VERSION, **document}), encoding="utf-8")
    page = tmp_path_factory.getbasetemp() / "fields-history"
    for argv in (["compare", str(run), str(run)], ["history", str(run.parent), "--out", str(page)]):
        code, _, err = run_cli(argv)
        assert_one_line_or_ok(code, err, allowed=(0, 1, 2))


def _failing_writes(mp: pytest.MonkeyPatch, code: int) -> None:
    """Every write into a file fails with ``code`` (ENOSPC: a full disk; EROFS/EACCES: a read-only folder).

    Root ignores permission bits and no tmpfs is mounted for the tests, so the failure is injected where Python
    opens files for writing (``open``, ``Path.write_*``, ``os.open``, pyarrow's writer where a test says so).
    """
    real_open = io.open

    def failing_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            raise OSError(code, os.strerror(code), str(file))
        return real_open(file, mode, *args, **kwargs)

    def failing_write(self: Path, *_: Any, **__: Any) -> Any:
        raise OSError(code, os.strerror(code), str(self))

    real_os_open = os.open

    def failing_os_open(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):  # tempfile.mkstemp: the atomic writes
            raise OSError(code, os.strerror(code), str(file))
        return real_os_open(file, flags, *args, **kwargs)

    mp.setattr("builtins.open", failing_open)
    mp.setattr(os, "open", failing_os_open)
    mp.setattr(Path, "write_text", failing_write)
    mp.setattr(Path, "write_bytes", failing_write)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_report_into_an_unwritable_folder_is_one_line(good_run: Path, tmp_path: Path, code: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        _failing_writes(mp, code)
        status, _, err = run_cli(["report", str(good_run), "--out", str(tmp_path / "page")])
    assert_one_line_or_ok(status, err, allowed=(1, 2))
    assert os.strerror(code) in err


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_compare_outputs_into_an_unwritable_folder_are_one_line(good_run: Path, tmp_path: Path, code: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        _failing_writes(mp, code)
        status, _, err = run_cli(["compare", str(good_run), str(good_run), "--markdown", str(tmp_path / "v.md")])
    assert_one_line_or_ok(status, err, allowed=(1, 2))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_run_writing_on_a_full_disk_or_read_only_folder_raises_store_error(tmp_path: Path, code: int) -> None:
    """What ``confbench run`` writes into its results folder: parts, manifest, summary (then one line, exit 1)."""
    from harness.store.manifest import write_manifest, write_summary
    from harness.store.writer import RunWriter

    with pytest.MonkeyPatch.context() as mp:
        _failing_writes(mp, code)
        mp.setattr(pq, "write_table", lambda *_, **__: (_ for _ in ()).throw(OSError(code, os.strerror(code))))
        with pytest.raises(StoreError), RunWriter(tmp_path / "run") as writer:
            writer.append("events", [{"ts": 1.0, "kind": "k", "detail": "d"}])
            writer.flush()
        with pytest.raises(StoreError):
            write_manifest(tmp_path / "run", {"status": "running"})
        with pytest.raises(StoreError):
            write_summary(tmp_path / "run", {})


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs: a real full disk (and, remounted read-only, a real read-only folder even for root)."""
    import shutil
    import subprocess

    mount = shutil.which("mount")
    where = tmp_path / "tiny"
    where.mkdir()
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_real_full_disk_and_read_only_folder_are_one_line(good_run: Path, tiny_tmpfs: Path) -> None:
    import subprocess

    from harness.store.writer import RunWriter

    code, _, err = run_cli(["report", str(good_run), "--out", str(tiny_tmpfs / "page")])  # charts exceed 64 KiB
    assert_one_line_or_ok(code, err, allowed=(1,))
    assert os.strerror(errno.ENOSPC) in err
    code, _, err = run_cli(["compare", str(good_run), str(good_run), "--markdown", str(tiny_tmpfs / "v.md"),
                            "--junit", str(tiny_tmpfs / "j.xml")])
    assert_one_line_or_ok(code, err, allowed=(0, 1))
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    code, _, err = run_cli(["compare", str(good_run), str(good_run), "--json", str(tiny_tmpfs / "v.json")])
    assert_one_line_or_ok(code, err, allowed=(1,))
    assert os.strerror(errno.EROFS) in err
    with pytest.raises(StoreError), RunWriter(tiny_tmpfs / "run") as writer:
        writer.append("events", [{"ts": 1.0, "kind": "k", "detail": "d"}])
