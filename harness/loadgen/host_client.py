"""The Locust side of the media-host pipe (see ``harness.host.media_host`` for the protocol).

Runs under gevent: the subprocess and its pipes are gevent's, so waiting for a reply blocks only the calling
greenlet (one Locust user), never the Locust process.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

import gevent
from gevent import subprocess as gsubprocess
from gevent.event import AsyncResult
from gevent.lock import Semaphore

from harness.errors import HarnessError
from harness.probes.procs import die_with_parent

log = logging.getLogger(__name__)

SamplesCallback = Callable[[dict[str, list[dict[str, Any]]]], None]


class MediaHostError(HarnessError):
    """The media host refused a command, died, or did not answer in time."""


class MediaHostClient:
    """Starts one media host process and exchanges commands and samples with it."""

    def __init__(self, on_samples: SamplesCallback, *, stderr: IO[bytes] | None = None,
                 argv_prefix: Sequence[str] = ()) -> None:
        self._on_samples = on_samples
        self._argv_prefix = list(argv_prefix)  # e.g. ``ip netns exec NS``: a media host of an impaired group
        self._ids = itertools.count(1)
        self._waiting: dict[int, AsyncResult] = {}
        self._write_lock = Semaphore()
        self._stderr = stderr
        self._proc: gsubprocess.Popen | None = None
        self._reader: gevent.Greenlet | None = None
        self.exit_reason: str | None = None

    @property
    def pid(self) -> int | None:
        """The media host's process id once started."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the process (idempotent)."""
        if self._proc is not None:
            return
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._proc = gsubprocess.Popen(
            [*self._argv_prefix, sys.executable, "-m", "harness.host.media_host"], stdin=gsubprocess.PIPE,
            stdout=gsubprocess.PIPE, stderr=self._stderr, env=env, preexec_fn=die_with_parent,
        )
        self._reader = gevent.spawn(self._read_loop)

    def request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """Send a command and wait for its reply; raises :class:`MediaHostError`."""
        if self._proc is None or self._proc.stdin is None:
            raise MediaHostError("media host not started")
        if self.exit_reason is not None:
            raise MediaHostError(self.exit_reason)
        rid = next(self._ids)
        result = AsyncResult()
        self._waiting[rid] = result
        line = json.dumps(dict(fields, op=op, id=rid)).encode() + b"\n"
        try:
            with self._write_lock:
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
            reply = result.get(timeout=timeout)
        except gevent.Timeout:
            raise MediaHostError(f"media host did not answer {op!r} within {timeout:g} s") from None
        except (BrokenPipeError, OSError) as exc:
            raise MediaHostError(f"media host is gone ({exc})") from None
        finally:
            self._waiting.pop(rid, None)
        if not reply.get("ok"):
            raise MediaHostError(str(reply.get("error", "unknown error")))
        return dict(reply.get("result") or {})

    def _read_loop(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            for raw in self._proc.stdout:
                try:
                    msg = json.loads(raw)
                except json.JSONDecodeError:
                    log.warning("media host wrote a line that is not JSON: %r", raw[:200])
                    continue
                if msg.get("type") == "samples":
                    try:
                        self._on_samples(msg["tables"])
                    except Exception:  # a sink failure must not stop the pipe; it is logged loudly
                        log.exception("handling samples from the media host failed")
                elif msg.get("type") == "reply":
                    waiter = self._waiting.get(msg.get("id"))
                    if waiter is not None:
                        waiter.set(msg)
        finally:
            code = self._proc.wait()
            self.exit_reason = f"media host exited with code {code}"
            for waiter in list(self._waiting.values()):
                waiter.set({"ok": False, "error": self.exit_reason})

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the media host to leave every room and exit; kill it if it does not within ``timeout``."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self.request("stop", timeout=5)
            except MediaHostError:
                pass
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=timeout)
            except gsubprocess.TimeoutExpired:
                log.warning("media host %s did not exit within %g s: killing it", proc.pid, timeout)
                proc.kill()
                proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
