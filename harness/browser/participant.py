"""The browser engine: one participant is one Chromium, joining a web app as a person would.

It offers the media host what a native :class:`harness.host.participant.Participant` offers (``spec``, ``join``,
``leave``, ``source_counters``), so both kinds live in the same media host and their rows take the same
path to the store. The page carries confbench's instrument (``media.js``, injected before any page script):
the participant only drives the join steps of the web platform, then drains what the page measured once a
second (:class:`harness.browser.stats.PageRows`) and probes the CPU and memory of its browser's processes.

Join timing starts once the browser is up (a person with the browser open clicks the meeting link): the
browser's own start-up is recorded as an ``events`` row (``browser_started``), not as join time.
A browser that closes or crashes while in the call is a participant failure (``participant_failed`` event),
never a failure of the media host.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from harness.browser import chromium, inject
from harness.browser.platform import Meeting, WebPlatform
from harness.browser.stats import Directory, PageRows
from harness.errors import BrowserError, SystemError_
from harness.host.participant import ParticipantSpec, SampleSink

log = logging.getLogger(__name__)

COLLECT_INTERVAL_S = 1.0
COLLECT_TIMEOUT_S = 10.0
CONNECT_POLL_S = 0.1
LEAVE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class BrowserTarget:
    """Where browser participants go: the platform and the base URL of the system under test."""

    platform: WebPlatform
    base_url: str
    system_url: str = ""
    ice_servers: tuple[str, ...] = ()


class BrowserRuntime:
    """One Playwright driver per media host, shared by its browser participants (started on first use)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self._pw: Any = None
        self._manager: Any = None
        self._lock = asyncio.Lock()
        self._driver: psutil.Process | None = None

    async def playwright(self) -> Any:
        """The running Playwright instance."""
        async with self._lock:
            if self._pw is None:
                chromium.check_playwright()
                from playwright.async_api import async_playwright

                self._manager = async_playwright()
                self._pw = await self._manager.start()
                self._driver = _driver_process()
            return self._pw

    def driver_row(self, host: str) -> dict[str, Any] | None:
        """A ``probes`` row for Playwright's driver process (a Node.js child of the media host)."""
        proc = self._driver
        if proc is None:
            return None
        try:
            with proc.oneshot():
                return {"ts": time.time(), "host": host, "role": "browser", "pid": proc.pid,
                        "name": "playwright-driver", "cpu_pct": proc.cpu_percent(None),
                        "rss_mb": proc.memory_info().rss / 2**20}
        except psutil.Error:
            return None

    async def close(self) -> None:
        """Stop the driver (every browser must be closed before)."""
        if self._manager is not None:
            try:
                await asyncio.wait_for(self._manager.__aexit__(None, None, None), timeout=15)
            except Exception:
                log.warning("the Playwright driver did not stop cleanly", exc_info=True)
            self._manager = self._pw = None


def _driver_process() -> psutil.Process | None:
    # The driver is the one child of this process started by Playwright (a node binary running its cli).
    try:
        for child in psutil.Process().children():
            cmdline = " ".join(child.cmdline())
            if "playwright" in cmdline:
                child.cpu_percent(None)
                return child
    except psutil.Error:
        pass
    return None


class BrowserParticipant:
    """A participant that is a real browser on a web platform."""

    engine = "browser"

    def __init__(self, spec: ParticipantSpec, target: BrowserTarget, runtime: BrowserRuntime, sink: SampleSink,
                 directory: Directory, clock: Callable[[], float] = time.time) -> None:
        self.spec = spec
        self._target = target
        self._runtime = runtime
        self._sink = sink
        self._clock = clock
        self._rows = PageRows(spec.name, sink.emit, directory)
        self._profile: Path | None = None
        self._context: Any = None
        self._page: Any = None
        self._meeting = Meeting(base=target.base_url, room=spec.room, participant=spec.name,
                                system_url=target.system_url)
        self._tasks: set[asyncio.Task[None]] = set()
        self._join_row: dict[str, Any] | None = None
        self._joining: dict[str, Any] | None = None
        self._joined = False
        self._leaving = False
        self.failed: str | None = None
        """Why the browser went away while in the call (None while it is fine)."""
        self._procs: dict[int, psutil.Process] = {}
        self._root: psutil.Process | None = None

    def source_counters(self) -> tuple[int, int]:
        """(frames produced, frames skipped) of the page's synthetic camera so far."""
        return self._rows.produced, self._rows.skipped

    # -- life cycle --------------------------------------------------------------------------------------
    async def join(self) -> dict[str, Any]:
        """Start the browser, take the platform's join steps, wait for media; returns the ``joins`` row."""
        spec = self.spec
        row: dict[str, Any] = {"ts": self._clock(), "participant": spec.name, "group": spec.group,
                               "host": spec.host, "attempt": 1, "ok": False, "engine": self.engine,
                               "stream_id": spec.video_stream_id}
        self._joining = row
        try:
            await self._start_browser()
            start = row["ts"] = self._clock()
            platform = self._target.platform
            steps_timeout = platform.in_call_timeout_s or spec.join_timeout_s
            await asyncio.wait_for(platform.join(self._page, self._meeting, steps_timeout, spec.video.codec),
                                   timeout=spec.join_timeout_s)
            row["signalling_ms"] = (self._clock() - start) * 1000
            remaining = spec.join_timeout_s - (self._clock() - start)
            await self._wait_connected(max(remaining, 0.5))
            row["ice_ms"] = row["join_ms"] = (self._clock() - start) * 1000
            row["ok"] = True
        except TimeoutError:
            row["error"] = f"join did not finish within {spec.join_timeout_s:g} s"
        except (SystemError_, BrowserError) as exc:
            row["error"] = str(exc)
        except Exception as exc:  # a platform script's bug must cost one participant, not the media host
            log.exception("browser join of %s failed", spec.name)
            row["error"] = f"{type(exc).__name__}: {exc}"
        if self.failed and not row["ok"]:
            row["error"] = self.failed
        if self._leaving and not self._joining:
            return row  # leave() already wrote this attempt's row: the run ended while it was joining
        self._joining = None
        if row["ok"]:
            self._joined = True
            self._join_row = row
            self._spawn(self._collect_loop())
            self._spawn(self._first_frame_timer())
        else:
            self._sink.emit("joins", row)
            await self.leave()
        return row

    async def _start_browser(self) -> None:
        pw = await self._runtime.playwright()
        began = self._clock()
        self._profile = chromium.new_profile(self.spec.name)
        self._context = await chromium.launch(pw, self._runtime.executable, self._profile,
                                              timeout_s=self.spec.join_timeout_s,
                                              secure=chromium.secure_origins(self._meeting.fill("{base}"),
                                                                             self._meeting.system_url))
        self._context.set_default_timeout(self.spec.join_timeout_s * 1000)
        media = inject.PageMedia(video_stream_id=self.spec.video_stream_id, publish=self.spec.publish,
                                 video=self.spec.video, audio=self.spec.audio,
                                 ice_servers=self._target.ice_servers)
        await self._context.add_init_script(script=inject.script(media))
        self._page = self._context.pages[0] if self._context.pages else await self._context.new_page()
        self._context.on("close", lambda *_: self._gone("the browser closed"))
        self._page.on("close", lambda *_: self._gone("the page closed"))
        self._page.on("crash", lambda *_: self._gone("the page crashed"))
        self._root = await asyncio.to_thread(chromium.browser_root, self._profile)  # scans /proc: off the loop
        self._sink.emit("events", {"ts": self._clock(), "kind": "browser_started", "participant": self.spec.name,
                                   "detail": f"{(self._clock() - began) * 1000:.0f} ms, pid "
                                             f"{self._root.pid if self._root else '?'}"})

    def _gone(self, why: str) -> None:
        if self._leaving or self.failed is not None:
            return
        self.failed = why
        self._sink.emit("events", {"ts": self._clock(), "kind": "participant_failed",
                                   "participant": self.spec.name, "detail": why})
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    async def _wait_connected(self, timeout: float) -> None:
        """Until the page has a connection and every one it made is ICE-connected."""
        deadline = self._clock() + timeout
        while True:
            if self.failed:
                raise SystemError_(self.failed)
            conns = await asyncio.wait_for(self._page.evaluate("__confbench.connections()"), timeout=timeout)
            live = [c for c in conns if c["state"] != "closed"]
            if any(c["ice"] == "failed" for c in live):
                raise SystemError_("ICE failed on a connection of the page")
            if live and all(c["ice"] in ("connected", "completed") for c in live):
                return
            if self._clock() > deadline:
                raise SystemError_("the page made no connection" if not live else
                                   "the page's connections did not connect")
            await asyncio.sleep(CONNECT_POLL_S)

    async def _first_frame_timer(self) -> None:
        # The joins row waits for the first frame (or its timeout) so that it is written once, complete.
        deadline = self._clock() + self.spec.join_timeout_s
        while self._rows.first_frame_ts is None and self._clock() < deadline and not self.failed:
            await asyncio.sleep(0.2)
        self._flush_join_row()

    def _flush_join_row(self) -> None:
        row, self._join_row = self._join_row, None
        if row is None:
            return
        first = self._rows.first_frame_ts
        if first is not None:
            row["first_frame_ms"] = max(first - row["ts"], 0.0) * 1000
        self._sink.emit("joins", row)

    async def _collect(self) -> None:
        if self._page is None or self._page.is_closed():
            return
        batch = await asyncio.wait_for(self._page.evaluate("__confbench.collect()"), timeout=COLLECT_TIMEOUT_S)
        self._rows.take(batch)

    async def _collect_loop(self) -> None:
        while not self.failed:
            await asyncio.sleep(COLLECT_INTERVAL_S)
            try:
                await self._collect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.failed or self._leaving:
                    return
                log.warning("collecting from %s's page failed: %s", self.spec.name, exc)

    async def leave(self) -> None:
        """Take the leave steps, close the browser and remove its profile; bounded, never raises."""
        if self._leaving:
            return
        self._leaving = True
        joining, self._joining = self._joining, None
        if joining is not None:
            # Told to leave while still joining (the run ended, or Locust stopped this user): the attempt
            # failed, and its row must be written now, before the media host stops shipping rows.
            self._sink.emit("joins", dict(joining, error="left before the join finished"))
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._page is not None and not self.failed and self._joined:
            try:
                await self._collect()  # the last second's rows
            except Exception:
                log.debug("last collect of %s failed", self.spec.name, exc_info=True)
            self._rows.flush()
            try:
                await asyncio.wait_for(self._target.platform.leave(self._page, self._meeting, LEAVE_TIMEOUT_S),
                                       timeout=LEAVE_TIMEOUT_S + 1)
            except Exception as exc:
                log.info("leave steps of %s: %s", self.spec.name, exc)
        self._flush_join_row()
        if self._context is not None:
            try:
                await asyncio.wait_for(self._context.close(), timeout=LEAVE_TIMEOUT_S)
            except Exception:
                log.warning("the browser of %s did not close cleanly", self.spec.name, exc_info=True)
                if self._root is not None:
                    for proc in chromium.process_tree(self._root):
                        try:
                            proc.kill()
                        except psutil.Error:
                            pass
            self._context = None
        if self._profile is not None:
            chromium.remove_profile(self._profile)
            self._profile = None

    # -- probing -----------------------------------------------------------------------------------------
    def probe_row(self, host: str) -> dict[str, Any] | None:
        """One ``probes`` row: CPU and memory of this browser's process tree, and how late its page ran (None when
        the browser is gone).

        CPU is summed over the processes. Memory is each process's private memory (resident minus shared
        pages) plus the largest shared set once: Chromium's processes share most of their pages (its code,
        shared buffers), and their RSS summed would count those once per process, about twice the real
        footprint; PSS would be exact but costs ~0.1 s per browser to read. Blocking: call it from a thread.
        """
        if self._root is None or self.failed or self._leaving:
            return None
        tree = chromium.process_tree(self._root)
        if not tree:
            return None
        cpu = private = shared = 0.0
        alive: dict[int, psutil.Process] = {}
        for proc in tree:
            known = self._procs.get(proc.pid, proc)
            try:
                with known.oneshot():
                    value = known.cpu_percent(None)
                    memory = known.memory_info()
            except psutil.Error:
                continue
            # A process seen for the first time has no interval yet: it counts from the next second.
            cpu += value if proc.pid in self._procs else 0.0
            private += memory.rss - getattr(memory, "shared", 0)
            shared = max(shared, float(getattr(memory, "shared", 0)))
            alive[proc.pid] = known
        self._procs = alive
        return {"ts": time.time(), "host": host, "role": "browser", "pid": self._root.pid,
                "name": self.spec.name, "cpu_pct": cpu, "rss_mb": (private + shared) / 2**20,
                "loop_lag_ms": self._rows.take_lag_ms()}

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("task of %s failed", self.spec.name, exc_info=t.exception())

        task.add_done_callback(finished)
