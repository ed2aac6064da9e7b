"""Tests for harness.pytest_plugin: options, skipping without a scenario, and the fixtures' wiring.

The run itself is replaced by a fake in the inner session (tests/test_compare_cli.py runs real ones).
"""

from __future__ import annotations

import pytest

# Imported here, before any inner session: pytester drops modules an inner run imported, and numpy's C
# extension cannot be loaded twice in one process.
import harness.orchestrate.run  # noqa: F401
import harness.scenario.scenario  # noqa: F401

pytest_plugins = ["pytester"]

FAKE = '''
import pytest
import harness.orchestrate.run
from pathlib import Path

@pytest.fixture(autouse=True, scope="session")
def fake_execute():
    calls = []
    def execute(scenario, spec, results, progress=None, processes=None):
        calls.append((scenario.name, spec.name, scenario.duration_s))
        return harness.orchestrate.run.RunOutcome(run_dir=Path(results) / "x", status="completed",
                                      summary={"video_latency_ms": {"p95": 42.0}, "thresholds": [], "calls": calls})
    original = harness.orchestrate.run.execute
    harness.orchestrate.run.execute = execute
    yield
    harness.orchestrate.run.execute = original
'''

SCENARIO = 'name = "tiny"\nduration_s = 5\n[[groups]]\nname = "a"\ncount = 2\n'


def test_fixture_runs_the_given_scenario_once(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE)
    pytester.makefile(".toml", tiny=SCENARIO)
    pytester.makepyfile("""
        def test_one(confbench_run):
            assert confbench_run.summary["video_latency_ms"]["p95"] < 100
            assert confbench_run.thresholds_ok

        def test_two(confbench_run, confbench_runner):
            assert confbench_run.summary["calls"] == [("tiny", "janus", 5.0)]
            assert confbench_runner("tiny.toml", duration_s=2).summary["calls"][-1] == ("tiny", "p2p", 2.0)
    """)
    result = pytester.runpytest_inprocess("-p", "harness.pytest_plugin", "--confbench", "tiny.toml",
                                          "--confbench-system", "janus=ws://127.0.0.1:1")
    result.assert_outcomes(passed=2)


def test_fixture_skips_without_a_scenario(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(confbench_run):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "harness.pytest_plugin")
    result.assert_outcomes(skipped=1)
