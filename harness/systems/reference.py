"""``reference``: confbench's own SFU (``harness.reference``), started by the harness for a run.

``--system reference`` starts ``confbench serve-reference`` on a free port of 127.0.0.1 as a process of its
own (so its CPU and memory are probed like any server's) and stops it afterwards; ``reference=URL`` joins one
started separately. Participants join it through the standard WHIP/WHEP adapter: our server gets no
special treatment.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any, ClassVar
from urllib.parse import urlsplit

from harness.errors import SystemError_
from harness.probes.procs import die_with_parent
from harness.reference.server import READY_PREFIX
from harness.systems import SERVE_ADDRESS
from harness.systems.base import Deployment
from harness.systems.whip import WhipSystem

START_TIMEOUT_S = 30.0


def _first_lines(stream: IO[str], out: queue.Queue[str | None]) -> None:
    for line in stream:
        out.put(line)
    out.put(None)


class ReferenceSystem(WhipSystem):
    """The reference SFU, joined over WHIP/WHEP."""

    name: ClassVar[str] = "reference"
    description: ClassVar[str] = "confbench's reference SFU (aiortc, forwards without decoding), started locally"

    starts_server: ClassVar[bool] = True

    def __init__(self, url: str | None = None, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self._proc: subprocess.Popen[str] | None = None

    def deploy(self) -> Deployment:
        """Start a local reference SFU unless a URL was given; check it answers."""
        if self.url is not None:
            return self._check(self.url)
        url = self._start(0)
        self.url = url
        self.endpoints = self._endpoints(url)
        deployment = self._check(url)
        assert self._proc is not None
        return Deployment(url=url, server_pids=(self._proc.pid,), info=deployment.info)

    def _start(self, port: int) -> str:
        """Start the SFU on ``port`` (0: any free one) of the serve address; returns its URL once it is ready."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.reference.server", "--port", str(port),
             "--host", str(self.options.get(SERVE_ADDRESS, "127.0.0.1"))],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=die_with_parent,
        )
        assert self._proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_first_lines, args=(self._proc.stdout, lines), daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=START_TIMEOUT_S)
                if line is None:
                    raise SystemError_(f"the reference SFU exited with code {self._proc.wait(5)} while starting")
                if line.startswith(READY_PREFIX):
                    return line[len(READY_PREFIX):].strip()
        except queue.Empty:
            self.undeploy()
            raise SystemError_(f"the reference SFU did not start within {START_TIMEOUT_S:g} s") from None

    def fault_support(self) -> str | None:
        """None once this system started its own SFU (see ``System.fault_support``)."""
        if self._proc is None:
            return f"confbench cannot restart or kill the reference SFU at {self.url}: it did not start it"
        return None

    def server_fault(self, action: str, down_s: float = 0.0) -> tuple[int, ...]:
        """Kill the SFU (SIGKILL, as a crash), or kill it and start it again on the same port."""
        reason = self.fault_support()
        if reason is not None or self._proc is None or self.url is None:
            raise SystemError_(reason or "the reference SFU is not running")
        self._proc.kill()
        self._proc.wait(10)
        if action == "kill":
            return ()
        time.sleep(down_s)
        port = urlsplit(self.url).port or 0
        url = self._start(port)
        if url != self.url:  # e.g. the port was taken meanwhile: the participants would not find it
            raise SystemError_(f"the reference SFU came back at {url}, not at {self.url}")
        return (self._proc.pid,)

    def web_client(self) -> str | None:
        """The SFU's own web client (served at ``/app/``), for browser participants."""
        return "reference"

    def undeploy(self) -> None:
        """Stop the SFU this system started (bounded)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
