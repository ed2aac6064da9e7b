"""A server confbench started itself, in a network namespace of its own: what every local testbed shares.

A testbed module (``janus``, ``livekit``) writes its server's configuration into a temporary folder and starts
the server in a new namespace; :class:`NamespacedServer` then waits for its port, watches the process, and on
:meth:`~NamespacedServer.stop` ends it and removes the namespace and the folder (also after a failed start,
:func:`discard`).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

from harness.errors import TestbedError
from harness.probes.procs import die_with_parent
from harness.testbed.netns import Namespace

STOP_TIMEOUT_S = 10.0
RESTART_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class _Launch:
    argv: tuple[str, ...]
    env: dict[str, str] | None
    cwd: Path | None


# How each server process was started, so that a fault (harness.orchestrate.faults) can start it again as it was.
_launches: weakref.WeakKeyDictionary[subprocess.Popen[bytes], _Launch] = weakref.WeakKeyDictionary()


class NamespacedServer:
    """A server process in its own namespace, with its configuration folder and its log."""

    NAME: ClassVar[str] = "the server"
    """How errors name it (``Janus``, ``LiveKit``)."""
    LOG: ClassVar[str] = "server.log"
    """Its log's file name in the folder."""
    READY_PORT: ClassVar[int] = 0
    READY_WHAT: ClassVar[str] = "its port"
    """The TCP port that answers once the server is ready, and how errors call it."""

    def __init__(self, namespace: Namespace, proc: subprocess.Popen[bytes], folder: Path) -> None:
        self.namespace = namespace
        self.proc = proc
        self.folder = folder

    @property
    def address(self) -> str:
        """The server's address (its end of the link)."""
        return self.namespace.link.ns_address

    @property
    def host_address(self) -> str:
        """The participants' end of the link: pin their ICE candidates to it."""
        return self.namespace.link.host_address

    @property
    def pid(self) -> int:
        """The server's process id (``ip netns exec`` execs it in place)."""
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        """The server's own log of this run."""
        return self.folder / self.LOG

    @classmethod
    def launch(cls, namespace: Namespace, folder: Path, argv: Sequence[str],
               env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside ``namespace``, its output into :attr:`LOG` in ``folder``; it dies with us."""
        launch = _Launch(tuple(namespace.exec_argv(list(argv))), dict(env) if env is not None else None, cwd)
        proc = cls._start(folder, launch)
        _launches[proc] = launch
        return proc

    @classmethod
    def _start(cls, folder: Path, launch: _Launch) -> subprocess.Popen[bytes]:
        # Appends: a restarted server's log follows the first one's.
        with open(folder / cls.LOG, "ab") as log:
            return subprocess.Popen(list(launch.argv), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=launch.env, cwd=launch.cwd,
                                    preexec_fn=die_with_parent)

    def kill(self) -> None:
        """Kill the server as a crash would (SIGKILL); the namespace and configuration stay."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)

    def restart(self, down_s: float = 0.0, timeout_s: float = RESTART_TIMEOUT_S) -> None:
        """Kill the server (if it runs), wait ``down_s``, start it again as it was first started, in the same
        namespace with the same configuration, and wait until it is ready (:class:`TestbedError` if not)."""
        launch = _launches.get(self.proc)
        if launch is None:
            raise TestbedError(f"{self.NAME} was not started by launch(): it cannot be restarted")
        self.kill()
        time.sleep(down_s)
        self.proc = self._start(self.folder, launch)
        _launches[self.proc] = launch
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        """Return once :attr:`READY_PORT` accepts a connection; one line if the server exits or never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:]
                raise TestbedError(f"{self.NAME} exited with code {self.proc.returncode} while starting: "
                                   f"{tail[0] if tail else 'no output'}")
            try:
                with socket.create_connection((self.address, self.READY_PORT), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.1)
        raise TestbedError(f"{self.NAME} did not open {self.READY_WHAT} within {timeout_s:g} s; "
                           f"see {self.log_path}")

    def alive(self) -> bool:
        """Whether the server still runs."""
        return self.proc.poll() is None

    def stop(self, keep_log: Path | None = None) -> None:
        """Stop the server, remove the namespace and the configuration (copying its log to ``keep_log``)."""
        try:
            end_process(self.proc)
            if keep_log is not None and self.log_path.exists():
                shutil.copyfile(self.log_path, keep_log)
        finally:
            discard(self.namespace, self.folder)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def end_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc``, kill it if it does not end within :data:`STOP_TIMEOUT_S`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


def discard(namespace: Namespace, folder: Path, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Undo a start: end ``proc`` if there is one, delete the namespace and the configuration folder."""
    try:
        if proc is not None:
            end_process(proc)
    finally:
        namespace.delete()
        shutil.rmtree(folder, ignore_errors=True)
