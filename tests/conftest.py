"""Fixtures shared by the integration tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest


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
