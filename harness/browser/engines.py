"""Which engine a participant runs on: ``native`` (aiortc, in the media host) or ``browser`` (Chromium).

The media host asks :class:`Engines` for a participant of a group's engine and gets back something with the
same face (:class:`HostedParticipant`), so joining, leaving, sources' health and rows work alike for both.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Protocol

from harness.browser.participant import BrowserParticipant, BrowserRuntime, BrowserTarget
from harness.browser.platform import Meeting
from harness.browser.stats import Directory
from harness.browser.webserver import StaticSite
from harness.errors import BrowserError
from harness.host.participant import Participant, ParticipantSpec, SampleSink
from harness.media.pool import EncoderPool
from harness.scenario.scenario import Scenario
from harness.systems.base import System


class HostedParticipant(Protocol):
    """What the media host needs of a participant, whatever its engine."""

    spec: ParticipantSpec

    async def join(self) -> dict[str, Any]:
        """Join and return the ``joins`` row (never raises)."""
        ...

    async def leave(self) -> None:
        """Leave (bounded, never raises)."""
        ...


def browser_target(scenario: Scenario, system: System) -> BrowserTarget:
    """The web platform and base URL browser participants of ``scenario`` use on ``system``.

    Raises :class:`BrowserError` with one line when there is none (a system without a web client and no
    ``[browser] platform``), or when the platform file is wrong.
    """
    from harness.browser.platform import load_platform

    name = scenario.browser.platform or system.web_client()
    if name is None:
        raise BrowserError(f"the {system.name} system has no web client for browser participants; "
                           "name one with [browser] platform in the scenario")
    if not system.url:
        raise BrowserError(f"the {system.name} system has no URL for browser participants to open")
    return BrowserTarget(platform=load_platform(name), base_url=system.url, system_url=system.url,
                         ice_servers=scenario.browser.ice_servers)


def preflight(scenario: Scenario, system: System) -> None:
    """Controller side, before deploying: Chromium, Playwright and the web platform are all there.

    Raises :class:`BrowserError` with one line (what to install, or which platform to name).
    """
    from harness.browser.chromium import check_playwright, find_chromium
    from harness.browser.platform import load_platform

    find_chromium(scenario.browser.chromium)
    check_playwright()
    name = scenario.browser.platform or system.web_client()
    if name is None:
        raise BrowserError(f"the {system.name} system has no web client for browser participants; "
                           "name one with [browser] platform in the scenario")
    load_platform(name)


class _JoinTags:
    """A sink that adds the engine and the video stream id to a native participant's ``joins`` row.

    Browser pages name senders by the stream id in their stamps; with this column the run's readers can tell
    whose stream ``stream-<id>`` was, whichever media host the sender lived on.
    """

    def __init__(self, sink: SampleSink, tags: dict[str, Any]) -> None:
        self._sink = sink
        self._tags = tags

    def emit(self, table: str, row: dict[str, Any]) -> None:
        self._sink.emit(table, {**row, **self._tags} if table == "joins" else row)


class Engines:
    """Creates participants of either engine for one media host."""

    def __init__(self, scenario: Scenario, system: System, sink: SampleSink, directory: Directory,
                 pool: EncoderPool | None = None) -> None:
        self._scenario = scenario
        self._pool = pool  # native publishers of this host share encoders through it (harness.media.pool)
        self._system = system
        self._sink = sink
        self._directory = directory
        self._runtime: BrowserRuntime | None = None
        self._target: BrowserTarget | None = None
        self._site: StaticSite | None = None
        self._setup = asyncio.Lock()

    async def create(self, spec: ParticipantSpec, engine: str) -> HostedParticipant:
        """A not yet joined participant; a browser one only when Chromium and the platform are usable."""
        if engine == "native":
            tags = {"engine": "native", "stream_id": spec.video_stream_id}
            return Participant(spec, self._system, _JoinTags(self._sink, tags), pool=self._pool)
        if engine != "browser":
            raise BrowserError(f"unknown engine {engine!r}")
        async with self._setup:  # joins run concurrently: one runtime (and one static site) per media host
            if self._runtime is None:
                await self._set_up()
        assert self._target is not None and self._runtime is not None
        return BrowserParticipant(spec, self._target, self._runtime, self._sink, self._directory)

    async def _set_up(self) -> None:
        from harness.browser.chromium import find_chromium

        target = browser_target(self._scenario, self._system)
        executable = find_chromium(self._scenario.browser.chromium)
        if target.platform.serve is not None:
            # The app is static files: serve them here and open them from here.
            site = StaticSite(target.platform.serve, Meeting(base="", room=self._scenario.room,
                                                             participant="", system_url=target.system_url))
            target = dataclasses.replace(target, base_url=await site.start())
            self._site = site
        self._target = target
        self._runtime = BrowserRuntime(executable)

    def probe_rows(self, host: str, participants: list[HostedParticipant]) -> list[dict[str, Any]]:
        """``probes`` rows of every browser (its process tree) and of the Playwright driver (blocking)."""
        rows: list[dict[str, Any]] = []
        if self._runtime is None:
            return rows  # no browser on this media host: nothing to walk
        for p in participants:
            if isinstance(p, BrowserParticipant):
                row = p.probe_row(host)
                if row is not None:
                    rows.append(row)
        if self._runtime is not None:
            driver = self._runtime.driver_row(host)
            if driver is not None:
                rows.append(driver)
        return rows

    async def close(self) -> None:
        """Stop the Playwright driver (after every participant left)."""
        if self._runtime is not None:
            await self._runtime.close()
        if self._site is not None:
            await self._site.close()
