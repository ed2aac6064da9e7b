"""Whole runs (``confbench run --system NAME=URL``) against broken servers: the run ends with its data, a
manifest saying ``failed``, exit status 1 and one line per failed participant; nothing prints a traceback.

The fakes are those of ``tests/test_hostile_servers.py``; two representative cases, since each is a whole run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fakes_hostile import FakeServer, replies, whip_app
from helpers import confbench, only_run, spoiled_by_the_machine

from harness.store.reader import RunReader

pytestmark = pytest.mark.integration

SCENARIO = """
name = "hostile"
duration_s = 4
spawn_rate = 5
join_timeout_s = 3
[media.video]
width = 160
height = 96
fps = 10
[[groups]]
name = "talkers"
count = 2
"""

CASES: dict[str, tuple[Callable[[], FakeServer], str, str]] = {
    "whip answers garbage": (lambda: FakeServer(app=whip_app(lambda offer: "garbage")),
                             "whip=http://127.0.0.1:{port}/whip/{{room}}/{{participant}}", "answered an SDP"),
    "p2p broker answers truncated JSON": (lambda: FakeServer(tcp=replies(b'{"op": "memb')),
                                          "p2p=tcp://127.0.0.1:{port}", "a line that is not JSON"),
}


SECRETS = {"CONFBENCH_WHIP_TOKEN": "whip-token-7f3a9c", "CONFBENCH_JANUS_API_SECRET": "janus-secret-51d2e8",
           "CONFBENCH_LIVEKIT_API_SECRET": "livekit-secret-c0ffee"}


@pytest.mark.parametrize("case", list(CASES))
def test_a_run_against_a_broken_server_fails_cleanly(case: str, tmp_path: Path) -> None:
    make, system, expected = CASES[case]
    (tmp_path / "s.toml").write_text(SCENARIO)
    with make() as fake:
        proc = confbench("run", "s.toml", "--system", system.format(port=fake.port), "--results", "results",
                         "--reports", "reports", cwd=tmp_path, env={**os.environ, **SECRETS})
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, out + err  # README: 1 when the run failed
    assert not [n for n in ("Traceback", "Task was destroyed", "Event loop is closed") if n in err], err
    run = only_run(tmp_path / "results")
    manifest = json.loads((run / "manifest.json").read_text())
    # "invalid" only when this shared machine fell behind meanwhile (the run says so, and it takes precedence).
    assert manifest["status"] == "failed" or spoiled_by_the_machine(manifest), manifest
    assert manifest["ended_utc"]
    assert (run / "summary.json").exists()
    joins = RunReader(run).table("joins")
    assert len(joins) == 2 and not joins["ok"].any()
    for error in joins["error"]:
        assert expected in error and "\n" not in error, error
    for log in run.glob("*.log"):
        assert "Traceback" not in log.read_text(), log
    assert list((tmp_path / "reports").glob("*/index.html"))
    # Secrets from the environment reach neither the results (tables, logs, manifest) nor the report.
    for path in [*(tmp_path / "results").rglob("*"), *(tmp_path / "reports").rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in SECRETS.values() if s.encode() in data], path
    assert not [s for s in SECRETS.values() if s in out + err]


