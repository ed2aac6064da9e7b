"""The cache outside the repository where testbeds keep what they build or install once, and its lock.

Systems built from source (DESIGN.md §2) are built once per machine and reused by later runs and CI: Go-built
servers (``harness.testbed.gobuild``), LiveKit's join page (``harness.testbed.livekit_page``), and Debian's
simple-whip-server with its Node modules (``harness.testbed.simple_whip``). Two runs may start at once: the
first builds under an exclusive lock, the second waits and finds the result.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["cache_home", "locked"]


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/confbench`` (default ``~/.cache/confbench``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "confbench"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) while the block runs."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
