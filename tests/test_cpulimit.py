"""The CPU budget of servers confbench starts (cgroups; root)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import TestbedError
from harness.testbed.cpulimit import CPUS_ENV, limit_servers, requested_cpus


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CPUS_ENV, raising=False)
    assert requested_cpus() is None and limit_servers([123]) is None
    monkeypatch.setenv(CPUS_ENV, "half")
    with pytest.raises(TestbedError, match="number of cores"):
        requested_cpus()
    monkeypatch.setenv(CPUS_ENV, "0.25")
    assert requested_cpus() == 0.25
    with pytest.raises(TestbedError, match="only servers confbench starts"):
        limit_servers([])  # a remote server: nothing here to limit


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")
def test_a_server_is_put_under_its_budget_and_released(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPUS_ENV, "0.25")
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        limit = limit_servers([server.pid])
        assert limit is not None and limit.cpus == 0.25
        assert str(server.pid) in (limit.folder / "cgroup.procs").read_text().split()
        quota = limit.folder / ("cpu.max" if (limit.folder / "cpu.max").exists() else "cpu.cfs_quota_us")
        assert quota.read_text().split()[0] == "25000"  # 25 ms of every 100 ms
        limit.close()
        assert not limit.folder.exists()
        assert server.poll() is None  # the server itself is left running, only released
    finally:
        server.kill()
        server.wait()


def test_a_command_run_in_process_leaves_no_budget_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's --server-cpus once stayed in os.environ: every later run started from the tests' process (a
    # subprocess inherits it) got that budget, and test_hostile_run.py failed after test_bad_input.py.
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CPUS_ENV, raising=False)
    assert main(["run", "missing.toml", "--server-cpus", "0.5"]) == 2
    assert CPUS_ENV not in os.environ
    monkeypatch.setenv(CPUS_ENV, "1")
    main(["run", "missing.toml", "--server-cpus", "0.5"])
    assert os.environ[CPUS_ENV] == "1"
