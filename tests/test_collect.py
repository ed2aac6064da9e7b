"""harness.rtc.collect: a full collection soon after a session ended, none when nothing ended."""

from __future__ import annotations

import asyncio
import gc
import weakref

from harness.rtc.collect import CycleCollector, session_ended


class _Session:
    """Stands for a closed peer connection: a reference cycle."""

    def __init__(self) -> None:
        self.me = self


async def _watch(end: bool) -> tuple[bool, CycleCollector]:
    CycleCollector().collect()  # clears a session ended by an earlier test in this process
    collector = CycleCollector(interval_s=0.05)
    collector.start()
    session = _Session()
    held = weakref.ref(session)
    del session
    if end:
        session_ended()
    await asyncio.sleep(0.2)
    collector.stop()
    return held() is None, collector


def test_an_ended_session_is_collected_at_the_next_tick_and_the_pause_is_kept() -> None:
    gc.disable()  # only the collector may find the cycle
    try:
        freed, collector = asyncio.run(_watch(end=True))
    finally:
        gc.enable()
    assert freed and collector.collections == 1 and collector.freed >= 1
    pause = collector.take_pause_ms()
    assert pause is not None and pause >= 0 and collector.take_pause_ms() is None


def test_nothing_ended_nothing_collected() -> None:
    gc.disable()
    try:
        freed, collector = asyncio.run(_watch(end=False))
    finally:
        gc.enable()
        gc.collect()
    assert not freed and collector.collections == 0 and collector.take_pause_ms() is None
