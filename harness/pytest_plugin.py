"""A pytest plugin so that a vendor can assert on a confbench run from its own test suite.

Enable it with ``-p harness.pytest_plugin`` (or ``pytest_plugins = ["harness.pytest_plugin"]`` in a
conftest), then::

    pytest --confbench scenarios/default.toml --confbench-system janus=ws://…

    def test_latency(confbench_run):
        assert confbench_run.status == "completed"
        assert confbench_run.summary["video_latency_ms"]["p95"] < 200
        assert confbench_run.thresholds_ok

``confbench_run`` runs the scenario once per test session (the run is the expensive part) and is skipped when
``--confbench`` is not given, so an ordinary ``pytest`` stays fast. ``confbench_runner`` runs any scenario
from a test (``confbench_runner("s.toml", system="p2p", duration_s=10)``). Results go to
``--confbench-results`` (default: a session temporary folder) and are kept, so a CI job can archive them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.orchestrate.run import RunOutcome

__all__ = ["confbench_run", "confbench_runner", "pytest_addoption"]

Runner = Callable[..., "RunOutcome"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--confbench SCENARIO``, ``--confbench-system NAME[=URL]``, ``--confbench-results DIR``."""
    group = parser.getgroup("confbench", "confbench benchmark runs")
    group.addoption("--confbench", metavar="SCENARIO", default=None,
                    help="run this confbench scenario once for the confbench_run fixture")
    group.addoption("--confbench-system", metavar="NAME[=URL]", default="p2p",
                    help="system under test for confbench_run (default: p2p)")
    group.addoption("--confbench-results", metavar="DIR", default=None,
                    help="where run folders go (default: a temporary folder of the session)")


@pytest.fixture(scope="session")
def confbench_runner(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """A function ``(scenario, system="p2p", duration_s=None, participants=None, processes=None)`` → RunOutcome."""
    from harness.orchestrate.run import execute
    from harness.scenario.scenario import load_scenario
    from harness.systems import SystemSpec

    option = request.config.getoption("--confbench-results")
    results = Path(option) if option else tmp_path_factory.mktemp("confbench-results")

    def run(scenario: str | Path, system: str = "p2p", duration_s: float | None = None,
            participants: int | None = None, processes: int | None = None) -> RunOutcome:
        loaded = load_scenario(scenario).with_overrides(duration_s=duration_s, participants=participants)
        return execute(loaded, SystemSpec.parse(system), results, processes=processes)

    return run


@pytest.fixture(scope="session")
def confbench_run(request: pytest.FixtureRequest, confbench_runner: Runner) -> RunOutcome:
    """The outcome of the ``--confbench`` scenario on ``--confbench-system``, run once per session."""
    scenario = request.config.getoption("--confbench")
    if not scenario:
        pytest.skip("no --confbench SCENARIO given")
    return confbench_runner(scenario, system=request.config.getoption("--confbench-system"))
