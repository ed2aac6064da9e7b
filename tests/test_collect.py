"""harness.rtc.collect: a full collection soon after a session ended, none when nothing ended."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import weakref

import pytest

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


RELEASE = """
import os, sys, threading
from harness.rtc.collect import release_free_heap

def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

kept = []
def churn() -> None:  # in a thread of its own, as the codec threads allocate: a heap of its own in glibc
    chunks = [bytes(2000) for _ in range(60_000)]  # 120 MB of chunks from the C allocator (over 512 bytes)
    kept.extend(chunks[::200])  # one kept in 200: the heap cannot shrink from its top
thread = threading.Thread(target=churn)
thread.start()
thread.join()
before = rss_mb()
if not release_free_heap():
    print("unsupported")
    sys.exit(0)
print(before, rss_mb())
"""


def test_freed_memory_goes_back_to_the_system() -> None:
    proc = subprocess.run([sys.executable, "-c", RELEASE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    if proc.stdout.strip() == "unsupported":
        pytest.skip("this C library has no malloc_trim")
    before, after = map(float, proc.stdout.split())
    assert before - after > 60, (before, after)  # of the ~120 MB freed and kept by the allocator
