"""The synthetic screen share: a page of text-like content, mostly still, stamped like the camera.

What a shared screen looks like to an encoder is unlike a camera: large flat areas, sharp high-contrast edges
(glyphs), and from one frame to the next almost nothing changes: someone types, a pointer moves, and now and
then the slide changes. :class:`ScreenPage` draws that: a page of "words" (random glyph bitmaps on a light
background, in lines, with a coloured title bar every few dozen lines), :data:`SLIDES` screens tall,
precomputed once per size. Frame ``n`` shows slide ``n // SLIDE_EVERY`` (one screen of the page, in turn);
on it the lines from two thirds of the way down appear as if typed, :data:`TYPED_PER_FRAME` glyph cells a
frame, and a pointer moves a little every frame. No font is rendered per frame: a frame is a slice copy, a
blanked tail and a small blit, like :class:`harness.media.video.Background`.

Why typing, not scrolling: a scroll by a text line shifts the whole picture, and libvpx in real-time mode at
the harness's speed setting does not find that motion: each scrolled 1080p frame came out at 200-370 kB
(more than a key frame), 1.5 to 2.5 s of a 1.5 Mbit/s budget, which no real screen share sends every 2 s.

Like the camera, a frame is a pure function of the size and the frame number, so a receiver can rebuild
what was sent (``render``) and the stamp (``harness.media.stamp``) is written into the top rows by the
source. Screen streams carry the participant's second stream id (``harness.host.participant``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .stamp import band_height
from .video import VideoSource

__all__ = ["SLIDE_EVERY", "TYPED_PER_FRAME", "ScreenPage", "ScreenSource"]

SLIDE_EVERY = 150
"""Frames per slide (30 s at the default 5 fps): the one large change, like a presenter's next slide."""
SLIDES = 3
"""Distinct slides (the page is this many screens tall); they come round in turn."""
TYPED_PER_FRAME = 3
"""Glyph cells that appear per frame in the typed part of a slide (15 a second at 5 fps, a fast typist)."""
_PAPER = 235  # luma of the background (video-range white)
_INK = 30  # luma of glyphs
_GLYPHS = 96  # distinct glyph bitmaps
_SHARED: dict[tuple[int, int], ScreenPage] = {}


class ScreenPage:
    """A text-like page and the frames that show it: deterministic in ``(width, height, frame_no)``.

    Glyphs are 5 x 7 random bitmaps scaled to the line height (about 1/54 of the frame height: a 1080-row
    screen shows 20 px glyphs, like 11 pt text); words are 2 to 9 glyphs; some lines are short (paragraph
    ends). Chroma is neutral except for title bars. Instances are immutable; :meth:`shared` hands out one per size.
    """

    def __init__(self, width: int, height: int, seed: int = 1) -> None:
        if width < 64 or height < 64 or width % 2 or height % 2:
            raise ValueError(f"screen size must be even and at least 64x64, got {width}x{height}")
        self.width = width
        self.height = height
        rng = np.random.default_rng(seed)
        scale = max(1, height // 360)  # glyph pixel size: 3 at 1080 rows
        self.glyph_h, self.glyph_w = 7 * scale, 5 * scale
        self.line = 2 * ((self.glyph_h * 3 // 2 + 1) // 2)  # line pitch, even so chroma scrolls with luma
        self._slide_h = height
        page_h = SLIDES * height
        y = np.full((page_h, width), _PAPER, dtype=np.uint8)
        u = np.full((page_h // 2, width // 2), 128, dtype=np.uint8)
        v = np.full((page_h // 2, width // 2), 128, dtype=np.uint8)
        bitmaps = rng.random((_GLYPHS, 7, 5)) < 0.45
        glyphs = np.where(np.kron(bitmaps, np.ones((1, scale, scale), dtype=bool)), _INK, _PAPER).astype(np.uint8)
        margin = width // 20
        self._margin = margin
        self._cell = self.glyph_w + scale  # a glyph and the gap after it
        self._cells_per_line = (width - 2 * margin) // self._cell
        self._typed_top = (height * 2 // 3) // self.line * self.line  # first typed line, in the slide
        for row, top in enumerate(range(0, page_h - self.line + 1, self.line)):
            if row % 37 == 0:  # a title bar: a coloured band across the page, as slides and editors have
                y[top : top + self.line] = 90
                u[top // 2 : (top + self.line) // 2] = int(rng.integers(90, 170))
                v[top // 2 : (top + self.line) // 2] = int(rng.integers(90, 170))
                continue
            end = width - margin if rng.random() > 0.2 else int(rng.integers(margin, width - margin))
            x = margin + (self.glyph_w * 4 if row % 7 == 1 else 0)  # indented first lines
            while True:
                word = int(rng.integers(2, 10))
                if x + word * (self.glyph_w + scale) > end:
                    break
                for g in rng.integers(0, _GLYPHS, size=word):
                    y[top : top + self.glyph_h, x : x + self.glyph_w] = glyphs[g]
                    x += self.glyph_w + scale
                x += 3 * self.glyph_w
        self._y, self._u, self._v = y, u, v
        size = 2 * (max(8, height // 40) // 2)
        yy, xx = np.mgrid[0:size, 0:size]
        self._pointer_mask = (xx <= yy) & (xx + yy // 3 < size * 2 // 3)  # an arrow-ish wedge
        self._pointer_size = size
        self._band_uv_rows = (band_height(width) + 1) // 2
        for array in (self._y, self._u, self._v, self._pointer_mask):
            array.setflags(write=False)

    @staticmethod
    def shared(width: int, height: int) -> ScreenPage:
        """The one cached page of this size (building it takes about 0.2 s at 1920x1080)."""
        key = (width, height)
        if key not in _SHARED:
            _SHARED[key] = ScreenPage(width, height)
        return _SHARED[key]

    def slide(self, frame_no: int) -> int:
        """The slide frame ``frame_no`` shows (0 .. SLIDES - 1)."""
        return frame_no // SLIDE_EVERY % SLIDES

    def caret(self, frame_no: int) -> tuple[int, int]:
        """Where typing has got to in frame ``frame_no``: (row of the line's top, x), in the frame."""
        cells = frame_no % SLIDE_EVERY * TYPED_PER_FRAME
        line, column = divmod(cells, self._cells_per_line)
        return self._typed_top + line * self.line, self._margin + column * self._cell

    def pointer(self, frame_no: int) -> tuple[int, int]:
        """Top-left corner (even x, y) of the pointer in frame ``frame_no``."""
        w, h, s = self.width, self.height, self._pointer_size
        n = float(frame_no)
        # A slow Lissajous path: the pointer moves some tens of pixels a frame, like a hand on a mouse.
        x = (w - s) / 2 * (1 + math.sin(2 * math.pi * n / 47))
        y = band_height(w) + (h - band_height(w) - s) / 2 * (1 + math.sin(2 * math.pi * n / 61 + 1.0))
        return 2 * int(x // 2), 2 * int(y // 2)

    def render(self, frame_no: int) -> npt.NDArray[np.uint8]:
        """Frame ``frame_no`` as a new ``(height * 3 // 2, width)`` yuv420p array (Y rows, then U, then V)."""
        w, h = self.width, self.height
        out = np.empty((h * 3 // 2, w), dtype=np.uint8)
        chroma = out[h:].reshape(2, h // 2, w // 2)
        self.render_into(frame_no, out[:h], chroma[0], chroma[1])
        return out

    def render_into(
        self, frame_no: int, y: npt.NDArray[np.uint8], u: npt.NDArray[np.uint8], v: npt.NDArray[np.uint8]
    ) -> None:
        """Draw frame ``frame_no`` into the planes ``y`` (h x w) and ``u``, ``v`` (h/2 x w/2), e.g. views."""
        h = self.height
        top = self.slide(frame_no) * self._slide_h
        y[:] = self._y[top : top + h]
        u[:] = self._u[top // 2 : (top + h) // 2]
        v[:] = self._v[top // 2 : (top + h) // 2]
        # Not yet typed: the rest of the caret's line and every line below it, blank paper (chroma stays
        # neutral there unless a title bar was cut, which only the luma would show: blank it too).
        row, x = self.caret(frame_no)
        if row < h:
            y[row : row + self.line, x:] = _PAPER
            y[row + self.line :] = _PAPER
            u[(row + self.line) // 2 :] = 128
            v[(row + self.line) // 2 :] = 128
        px, py = self.pointer(frame_no)
        s = self._pointer_size
        np.copyto(y[py : py + s, px : px + s], np.uint8(16), where=self._pointer_mask)
        u[: self._band_uv_rows] = 128
        v[: self._band_uv_rows] = 128


class ScreenSource(VideoSource):
    """A paced, stamped screen share: :class:`harness.media.video.VideoSource` showing a :class:`ScreenPage`.

    Pacing, skipping and stamping are the camera's; only the picture differs (and there is no per-stream
    phase: every screen of a size shows the same page, which costs nothing since each is encoded apart).
    """

    def __init__(self, stream_id: int, width: int = 1920, height: int = 1080, fps: float = 5) -> None:
        super().__init__(stream_id, width=width, height=height, fps=fps, canvas=ScreenPage.shared(width, height))
        self.task_name = f"screen-{stream_id}"
