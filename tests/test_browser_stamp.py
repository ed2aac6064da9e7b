"""The block code in the browser (media.js) and in Python (harness.media.stamp) agree, both ways.

Runs the real injected script in headless Chromium: stamps drawn by the page are read by the Python reader,
and stamps written by Python are read by the page's reader, at several frame widths (including ones whose
cell edges round half to even).
"""

from __future__ import annotations

import asyncio
import base64
import shutil
from typing import Any

import numpy as np
import pytest

from harness.browser import chromium, inject
from harness.media.stamp import Stamp, band_height, read_stamp, write_stamp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which(chromium.DEFAULT_CHROMIUM) is None, reason="Chromium not installed"),
]

WIDTHS = (640, 480, 336, 1280, 48)


async def _in_page(work: Any) -> Any:
    from playwright.async_api import async_playwright

    script = inject.script(inject.PageMedia(video_stream_id=4))
    profile = chromium.new_profile("stamp-test")
    try:
        async with async_playwright() as pw:
            ctx = await chromium.launch(pw, chromium.find_chromium(), profile, timeout_s=60)
            try:
                await ctx.add_init_script(script=script)
                page = ctx.pages[0] if ctx.pages else await ctx.new_page()
                await page.goto("about:blank")
                return await work(page)
            finally:
                await ctx.close()
    finally:
        chromium.remove_profile(profile)


def _luma(rgba: np.ndarray) -> np.ndarray:
    # The same BT.601 limited-range conversion a video encoder applies to the canvas.
    y = 16 + 0.257 * rgba[..., 0] + 0.504 * rgba[..., 1] + 0.098 * rgba[..., 2]
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


DRAW = """([w, sid, no, ms]) => {
  const c = document.createElement('canvas'); c.width = w; c.height = __confbench.bandHeight(w) + 2;
  const g = c.getContext('2d'); g.fillStyle = '#808080'; g.fillRect(0, 0, c.width, c.height);
  __confbench.drawStamp(g, w, sid, no, ms);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let s = ''; for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i]);
  return [c.height, btoa(s)];
}"""

READ = """([w, h, b64]) => {
  const raw = atob(b64), d = new Uint8ClampedArray(raw.length);
  for (let i = 0; i < raw.length; i++) d[i] = raw.charCodeAt(i);
  const st = __confbench.readStamp(d, w, h);
  return st && [st.sid, st.no, st.us];
}"""


def test_page_stamps_read_in_python_and_python_stamps_read_in_page() -> None:
    stamps = [Stamp.at(4, 123456, 1_780_000_000.123456), Stamp(65535, 2**32 - 1, 2**48 - 1), Stamp(0, 0, 0)]

    async def work(page: Any) -> list[tuple[int, Stamp, Any, Any]]:
        results = []
        for width in WIDTHS:
            for st in stamps:
                height, b64 = await page.evaluate(DRAW, [width, st.stream_id, st.frame_no, st.capture_us / 1000])
                rgba = np.frombuffer(base64.b64decode(b64), dtype=np.uint8).reshape(height, width, 4)
                from_page = read_stamp(_luma(rgba))
                y = np.full((band_height(width) + 2, width), 128, dtype=np.uint8)
                write_stamp(y, st)
                grey = np.round((y.astype(float) - 16) * 255 / 219).clip(0, 255).astype(np.uint8)
                rgba_py = np.stack([grey, grey, grey, np.full_like(grey, 255)], axis=-1)
                got = await page.evaluate(READ, [width, y.shape[0], base64.b64encode(rgba_py.tobytes()).decode()])
                results.append((width, st, from_page, got))
        return results

    for width, st, from_page, got in asyncio.run(_in_page(work)):
        assert from_page == st, f"Python could not read the page's stamp at width {width}"
        assert got == [st.stream_id, st.frame_no, st.capture_us], f"the page could not read Python's at {width}"


def test_page_reader_refuses_damage_and_repairs_doubtful_cells() -> None:
    st = Stamp.at(7, 99, 1_780_000_000.5)
    width = 640
    y = np.full((band_height(width), width), 128, dtype=np.uint8)
    write_stamp(y, st)
    cell = width // 32
    confident = y.copy()
    for c in range(3):  # three cells confidently wrong: beyond repair, must be refused
        block = confident[:cell, c * cell:(c + 1) * cell]
        block[:] = 224 if block[cell // 2, cell // 2] < 128 else 32
    doubtful = y.copy()
    doubtful[:cell, 5 * cell:6 * cell] = 128 + (8 if y[cell // 2, 5 * cell + cell // 2] < 128 else -8)

    def rgba(plane: np.ndarray) -> str:
        grey = np.round((plane.astype(float) - 16) * 255 / 219).clip(0, 255).astype(np.uint8)
        return base64.b64encode(np.stack([grey, grey, grey, np.full_like(grey, 255)], -1).tobytes()).decode()

    async def work(page: Any) -> tuple[Any, Any]:
        bad = await page.evaluate(READ, [width, y.shape[0], rgba(confident)])
        fixed = await page.evaluate(READ, [width, y.shape[0], rgba(doubtful)])
        return bad, fixed

    bad, fixed = asyncio.run(_in_page(work))
    assert read_stamp(confident) is None and bad is None
    assert read_stamp(doubtful) == st
    assert fixed == [st.stream_id, st.frame_no, st.capture_us]
