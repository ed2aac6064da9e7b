"""Settings and fixtures every test shares."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _floor_checks_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs started by tests skip the quick floor check (a few seconds each) and never touch the user's
    calibration file; ``tests/test_calibration.py`` turns the check on where it is what is tested."""
    saved = {k: os.environ.get(k) for k in ("CONFBENCH_FLOOR_CHECK", "CONFBENCH_CALIBRATION")}
    os.environ["CONFBENCH_FLOOR_CHECK"] = "0"
    os.environ["CONFBENCH_CALIBRATION"] = str(tmp_path_factory.mktemp("calibration") / "calibration.json")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def janus_skip_reason() -> str | None:
    """Why the local Janus testbed cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "the local Janus testbed needs root (network namespaces)"
    if shutil.which("janus") is None:
        return "Debian's janus package is not installed (apt-get install janus)"
    return None


@pytest.fixture(scope="module")
def local_janus() -> Iterator[object]:
    """A real Janus in its own network namespace, for the tests of one module."""
    reason = janus_skip_reason()
    if reason:
        pytest.skip(reason)
    from harness.testbed.janus import LocalJanus

    janus = LocalJanus.start()
    try:
        yield janus
    finally:
        janus.stop()
