"""Settings and fixtures every test shares."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import warnings
from collections.abc import Iterator

import pytest

LOCUST_IMPORTED = ("imported Locust into the pytest process (gevent monkey-patches the interpreter and later "
                   "tests fail); run the Locust side in a subprocess")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Importing Locust monkey-patches the whole interpreter (gevent): threads become greenlets of the main
    thread, sharing its running event loop, and later tests fail far from the cause (35 tests of
    test_hostile_servers.py in CI on 2026-12-06, after a test module imported the Locust plugin). A test of
    Locust-side code runs it in a subprocess (see tests/test_progress_file.py); a test that imports it while it
    runs is failed by :func:`_nothing_left_behind`."""
    if "locust" in sys.modules:
        raise pytest.UsageError(f"a test module {LOCUST_IMPORTED}")


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


@pytest.fixture(autouse=True)
def _nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """What one test can leave in the pytest process that makes later tests fail far from it: Locust imported
    (see :func:`pytest_collection_finish`) fails the test that did it; an event loop left marked as running in
    the main thread (every later ``asyncio.run`` would fail) is cleared and the test named in a warning."""
    yield
    if "locust" in sys.modules:
        pytest.fail(f"{request.node.nodeid} {LOCUST_IMPORTED}")
    if asyncio._get_running_loop() is not None:
        asyncio.events._set_running_loop(None)
        warnings.warn(f"{request.node.nodeid} left an event loop marked as running in the main thread",
                      RuntimeWarning, stacklevel=1)


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


def livekit_skip_reason() -> str | None:
    """Why the local LiveKit testbed cannot run here (None when it can); builds the server once if it must."""
    from harness.testbed.livekit import unavailable_reason

    return unavailable_reason()


@pytest.fixture(scope="module")
def local_livekit() -> Iterator[object]:
    """A real LiveKit server (built from its Go module) in its own network namespace, for one module's tests."""
    reason = livekit_skip_reason()
    if reason:
        pytest.skip(reason)
    from harness.testbed.livekit import LocalLiveKit

    server = LocalLiveKit.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser_testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A namespace for the Chromiums of one module's tests, linked to the root namespace by a veth pair.

    Chromium gathers no ICE candidate on loopback, so outside a namespace it would send its media from the
    machine's own address. Here its only interface is the link: servers the test starts listen on
    ``address`` (the root end), native participants pin their candidates there, and ``chromium`` is an
    executable that starts Debian's Chromium inside the namespace (``ip netns exec`` execs it in place, so
    the browser's process is still found by its profile folder).
    """
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("browser tests need root and 'ip': their Chromium runs in a network namespace")
    from types import SimpleNamespace

    from harness.browser.chromium import find_chromium
    from harness.testbed.netns import Link, Namespace

    namespace = Namespace.create()
    try:
        link = namespace.link
        assert isinstance(link, Link)
        wrapper = tmp_path_factory.mktemp("chromium") / "chromium-in-namespace"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {namespace.name} {find_chromium()} "$@"\n')
        wrapper.chmod(0o755)
        yield SimpleNamespace(address=link.host_address, browser_address=link.ns_address, chromium=str(wrapper))
    finally:
        namespace.delete()
