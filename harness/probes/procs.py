"""Child processes that do not outlive their parent.

A benchmark killed with SIGKILL must not leave a load generator running on: the controller's Locust process
and each Locust process's media host ask the kernel for SIGTERM when their parent dies (Linux
``PR_SET_PDEATHSIG``), and then stop the way they stop on Ctrl-C, flushing what they measured.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: SIGTERM this child when the parent dies (no-op off Linux)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
