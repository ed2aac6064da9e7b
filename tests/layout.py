"""Does a page fit a 1280-px-wide window? Opened in headless Chromium (Debian's, through Playwright), measured.

Used by ``tests/test_page_layout.py`` and by hand (``python tests/layout.py PAGE.html [SHOT.png]`` prints what
overflows and saves a full-page screenshot).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH = 1280

# Everything that sticks out: the document wider than the window, a table wider than the box it sits in, and
# any element whose right edge passes the window's (an image, a long unbroken word in a cell).
_MEASURE = """() => {
  const win = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '');
  // The box a table must fit: its container's content box (its width less its padding).
  const room = (el) => { const s = getComputedStyle(el);
      return el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); };
  const tables = [...document.querySelectorAll('table')]
      .filter((t) => Math.max(t.scrollWidth, t.getBoundingClientRect().width) > room(t.parentElement) + 1
                     || t.getBoundingClientRect().right > win + 1)
      .map((t) => `table in ${name(t.parentElement)}: ${t.scrollWidth} px in ${Math.round(room(t.parentElement))} px`);
  const elements = [...document.body.querySelectorAll('*')]
      .filter((el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.right > win + 1; })
      .slice(0, 10).map((el) => `${name(el)} reaches ${Math.round(el.getBoundingClientRect().right)} px`);
  return {document: document.documentElement.scrollWidth, window: win, tables, elements};
}"""


def measure(page: Path, screenshot: Path | None = None, width: int = WIDTH) -> dict[str, Any]:
    """Load ``page`` at ``width`` px and return what overflows (``problems``: empty when the page fits)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            tab = browser.new_page(viewport={"width": width, "height": 900})
            tab.goto(page.resolve().as_uri())
            found: dict[str, Any] = tab.evaluate(_MEASURE)
            if screenshot is not None:
                tab.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    problems = list(found["tables"]) + list(found["elements"])
    if found["document"] > found["window"]:
        problems.insert(0, f"document {found['document']} px wide in a {found['window']} px window")
    return {**found, "problems": problems}


if __name__ == "__main__":
    result = measure(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    print("\n".join(result["problems"]) or f"fits {WIDTH} px")
