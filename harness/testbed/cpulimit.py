"""A CPU budget for the servers confbench starts itself: a cgroup with a CFS quota.

Why. On a machine shared by the load generator and the server under test, the generator runs out of cores
long before a server like Janus does, and a capacity search can then only say "the generator was the
limit". Giving the server a fixed budget (``CONFBENCH_SERVER_CPUS=0.25``, or ``--server-cpus 0.25``) moves
its knee within the generator's reach: the capacity found is the capacity *per that budget*, recorded in the
manifest (``server_cpus``) beside every figure. A multi-threaded server's capacity does not always scale
linearly with its budget; measure at two budgets before extrapolating.

Only processes confbench started (the reference SFU, the Janus testbed) are limited, never a remote
server. Works with cgroup v2 (``cpu.max``) and v1 (``cpu.cfs_quota_us``); needs root.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness.errors import TestbedError

__all__ = ["CPUS_ENV", "CpuLimit", "limit_servers", "requested_cpus", "server_cpus"]

CPUS_ENV = "CONFBENCH_SERVER_CPUS"
CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
PROCS_FILE = "cgroup.procs"  # the same name in cgroup v1 and v2


def requested_cpus() -> float | None:
    """The budget asked for in :data:`CPUS_ENV` (None: no limit); :class:`TestbedError` when malformed."""
    raw = os.environ.get(CPUS_ENV, "").strip()
    if not raw:
        return None
    try:
        cpus = float(raw)
    except ValueError:
        raise TestbedError(f"{CPUS_ENV} must be a number of cores such as 0.5, got {raw!r}") from None
    if not 0.01 <= cpus <= 1024:
        raise TestbedError(f"{CPUS_ENV} must be between 0.01 and 1024 cores, got {raw!r}")
    return cpus


@contextlib.contextmanager
def server_cpus(cpus: float | None) -> Iterator[None]:
    """Sets :data:`CPUS_ENV` to ``cpus`` for the block (None: left as it is) and restores it after, so that a
    command run in-process (tests, ``evaluate``'s capacity step) leaves no budget behind for the next one."""
    if cpus is None:
        yield
        return
    previous = os.environ.get(CPUS_ENV)
    os.environ[CPUS_ENV] = f"{cpus:g}"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(CPUS_ENV, None)
        else:
            os.environ[CPUS_ENV] = previous


class CpuLimit:
    """One cgroup holding the limited processes; :meth:`close` moves them out and removes it."""

    def __init__(self, folder: Path, cpus: float) -> None:
        self.folder = folder
        self.cpus = cpus

    @classmethod
    def apply(cls, pids: Sequence[int], cpus: float) -> CpuLimit:
        """Put ``pids`` (with all their threads) under a budget of ``cpus`` cores."""
        if os.geteuid() != 0:
            raise TestbedError(f"a server CPU budget ({CPUS_ENV}) needs root (it creates a cgroup)")
        quota = max(1000, round(cpus * PERIOD_US))
        name = f"confbench-{os.getpid()}"
        if (CGROUP_ROOT / "cgroup.controllers").exists():  # v2: one hierarchy
            folder = CGROUP_ROOT / name
            with contextlib.suppress(OSError):  # the cpu controller may already be on for children
                (CGROUP_ROOT / "cgroup.subtree_control").write_text("+cpu")
            settings = [("cpu.max", f"{quota} {PERIOD_US}")]
        else:  # v1: the cpu controller's own hierarchy
            if not (CGROUP_ROOT / "cpu").is_dir():
                raise TestbedError(f"no cgroup cpu controller under {CGROUP_ROOT}: cannot give the server a budget")
            folder = CGROUP_ROOT / "cpu" / name
            settings = [("cpu.cfs_period_us", str(PERIOD_US)), ("cpu.cfs_quota_us", str(quota))]
        limit = cls(folder, cpus)
        try:
            folder.mkdir(exist_ok=True)
            for file, value in settings:
                (folder / file).write_text(value)
        except OSError as exc:
            limit.close()
            raise TestbedError(f"could not create the server's cgroup {folder}: {exc}") from None
        for pid in pids:
            try:
                (folder / PROCS_FILE).write_text(str(pid))
            except OSError as exc:
                limit.close()
                raise TestbedError(f"could not put the server (pid {pid}) under its CPU budget: {exc}") from None
        return limit

    def close(self) -> None:
        """Remove the cgroup (processes still in it go back to the parent first); never raises."""
        if not self.folder.is_dir():
            return
        parent = self.folder.parent / PROCS_FILE
        with contextlib.suppress(OSError):
            for pid in (self.folder / PROCS_FILE).read_text().split():
                with contextlib.suppress(OSError):
                    parent.write_text(pid)
        with contextlib.suppress(OSError):
            self.folder.rmdir()


def limit_servers(pids: Sequence[int]) -> CpuLimit | None:
    """Apply the budget of :data:`CPUS_ENV` (if any) to the servers a run started (``pids``).

    :class:`TestbedError` in one line when a budget is asked for a server confbench did not start.
    """
    cpus = requested_cpus()
    if cpus is None:
        return None
    if not pids:
        raise TestbedError(f"{CPUS_ENV} limits only servers confbench starts itself (reference, the Janus "
                           "testbed); this system runs elsewhere: give its machine the budget instead")
    return CpuLimit.apply(pids, cpus)
