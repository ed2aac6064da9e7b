"""The synthetic camera: a paced, stamped, moving picture, and the receiving side's stamp reader.

Each frame is a window onto a large precomputed texture that pans along a smooth, non-repeating path, with a
textured disc moving independently on top (global and local motion, edges and fine detail: an encoder has
real work to do, roughly like a handheld camera). The picture is a pure function of the size, the stream id
and the frame number, so :meth:`VideoSource.render` regenerates exactly what was sent, e.g. as a PSNR
reference: ``render(n)`` with ``write_stamp`` applied to its luma rows is bit for bit the frame ``n`` that
left the source.

Cost, measured on the 2-core development VM at 640x360: a whole stamped ``av.VideoFrame`` takes about 0.32 ms
(render 0.3 ms, stamp 0.04 ms), reading the stamp back from a decoded frame about 0.06 ms. Textures are built
once per frame size (about 0.1 s) and shared by all sources of that size.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Protocol

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE
from av import VideoFrame
from av.video.plane import VideoPlane

from .fanout import FanOut, Producer
from .stamp import Stamp, band_height, read_stamp, write_stamp

__all__ = ["Background", "Canvas", "VideoSource", "read_frame"]

logger = logging.getLogger(__name__)

_FRAME_NO_MOD = 1 << 32
# Luma formats whose first plane is 8-bit Y, one byte per pixel: the band can be read straight from it.
_Y8_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray", "yuva420p"}
)
_SHARED: dict[tuple[int, int, int], Background] = {}  # Background.shared's cache: a few per process
PHASE_STEP = 7919
"""Stream ``s`` shows frame ``n + s * PHASE_STEP`` of the shared motion path (see :class:`VideoSource`)."""


class Canvas(Protocol):
    """What a source draws its frames from: :class:`Background` (camera), ``harness.media.screen.ScreenPage``."""

    def render(self, frame_no: int) -> npt.NDArray[np.uint8]:
        """Frame ``frame_no`` as a new yuv420p array."""
        ...

    def render_into(
        self, frame_no: int, y: npt.NDArray[np.uint8], u: npt.NDArray[np.uint8], v: npt.NDArray[np.uint8]
    ) -> None:
        """Draw frame ``frame_no`` into the given planes."""
        ...


class Background:
    """The moving picture under the stamp: deterministic in ``(width, height, seed, frame_no)``.

    Textures are built once from NumPy's PCG64 generator seeded with ``seed`` (stable for a given NumPy
    version); frames are then slices and a small sprite blit, so rendering is cheap. Width and height must be
    even (yuv420p). Instances are immutable; :meth:`shared` hands out one per size and seed.
    """

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        if width < 32 or height < 32 or width % 2 or height % 2:
            raise ValueError(f"frame size must be even and at least 32x32, got {width}x{height}")
        self.width = width
        self.height = height
        self.seed = seed
        rng = np.random.default_rng(seed)
        # The pan range is a quarter of the frame each way; even so that chroma (half size) moves with luma.
        self._ax = 2 * (width // 8)
        self._ay = 2 * (height // 8)
        th, tw = height + 2 * self._ay, width + 2 * self._ax
        self._y = _luma_texture(rng, th, tw)
        self._u = _chroma_texture(rng, th // 2, tw // 2)
        self._v = _chroma_texture(rng, th // 2, tw // 2)
        self._radius = max(4, 2 * (height // 16))  # even, so the sprite's chroma box is exact
        self._sprite_y, self._sprite_mask = _sprite(rng, self._radius)
        self._sprite_uv = (int(rng.integers(40, 90)), int(rng.integers(160, 220)))
        # Chroma rows under the stamp are kept neutral: colour there would only cost the encoder bits.
        self._band_uv_rows = (band_height(width) + 1) // 2
        for array in (self._y, self._u, self._v, self._sprite_y, self._sprite_mask):
            array.setflags(write=False)  # shared between sources: nobody may paint on it

    @staticmethod
    def shared(width: int, height: int, seed: int = 0) -> Background:
        """The one cached instance for this size and seed (building textures costs about 0.1 s)."""
        key = (width, height, seed)
        if key not in _SHARED:
            _SHARED[key] = Background(width, height, seed)
        return _SHARED[key]

    def render(self, frame_no: int) -> npt.NDArray[np.uint8]:
        """Frame ``frame_no`` as a new ``(height * 3 // 2, width)`` yuv420p array (Y rows, then U, then V).

        This is the layout :meth:`av.VideoFrame.from_ndarray` takes for ``yuv420p``.
        """
        w, h = self.width, self.height
        out = np.empty((h * 3 // 2, w), dtype=np.uint8)
        chroma = out[h:].reshape(2, h // 2, w // 2)  # yuv420p packs U then V, each h/2 x w/2, contiguously
        self.render_into(frame_no, out[:h], chroma[0], chroma[1])
        return out

    def render_into(
        self, frame_no: int, y: npt.NDArray[np.uint8], u: npt.NDArray[np.uint8], v: npt.NDArray[np.uint8]
    ) -> None:
        """Draw frame ``frame_no`` into the planes ``y`` (h x w) and ``u``, ``v`` (h/2 x w/2), e.g. views."""
        w, h = self.width, self.height
        ox, oy = self._offset(frame_no)
        y[:] = self._y[oy : oy + h, ox : ox + w]
        u[:] = self._u[oy // 2 : oy // 2 + h // 2, ox // 2 : ox // 2 + w // 2]
        v[:] = self._v[oy // 2 : oy // 2 + h // 2, ox // 2 : ox // 2 + w // 2]
        self._draw_sprite(frame_no, y, u, v)
        u[: self._band_uv_rows] = 128
        v[: self._band_uv_rows] = 128

    def _offset(self, frame_no: int) -> tuple[int, int]:
        # Two incommensurate sines per axis: the motion never settles into an obvious loop, and its speed
        # (up to ~6 px/frame at 640x360) keeps motion search busy without becoming a cut.
        n = float(frame_no)
        fx = 0.7 * math.sin(2 * math.pi * n / 211) + 0.3 * math.sin(2 * math.pi * n / 97)
        fy = 0.7 * math.sin(2 * math.pi * n / 263 + 1.0) + 0.3 * math.sin(2 * math.pi * n / 61)
        ox = self._ax + 2 * round(fx * self._ax / 2)
        oy = self._ay + 2 * round(fy * self._ay / 2)
        return ox, oy

    def _draw_sprite(
        self, frame_no: int, y: npt.NDArray[np.uint8], u: npt.NDArray[np.uint8], v: npt.NDArray[np.uint8]
    ) -> None:
        r, w, h = self._radius, self.width, self.height
        n = float(frame_no)
        # Top-left corner on even coordinates, kept inside the frame.
        x0 = 2 * round((w / 2 - r + (w / 2 - r) * math.sin(2 * math.pi * n / 150)) / 2)
        y0 = 2 * round((h / 2 - r + (h / 2 - r) * math.sin(2 * math.pi * n / 190 + 0.5)) / 2)
        box = y[y0 : y0 + 2 * r, x0 : x0 + 2 * r]
        np.copyto(box, self._sprite_y, where=self._sprite_mask)
        cu, cv = self._sprite_uv
        mask_uv = self._sprite_mask[::2, ::2]
        u[y0 // 2 : y0 // 2 + r, x0 // 2 : x0 // 2 + r][mask_uv] = cu
        v[y0 // 2 : y0 // 2 + r, x0 // 2 : x0 // 2 + r][mask_uv] = cv


class VideoSource(Producer[VideoFrame]):
    """A paced synthetic camera for one stream: yuv420p ``av.VideoFrame`` s, stamped, fanned out to tracks.

    Frame ``n`` is due ``n / fps`` seconds after start on the monotonic clock, so the rate does not drift.
    When the generator falls more than one frame behind (an overloaded event loop), it skips the frames it
    missed instead of bursting: ``frame_no`` (and the RTP-facing ``pts``) keep following the schedule, so
    skipped frames are visible downstream as loss and are counted in :attr:`skipped`. Each frame is stamped
    with ``Stamp.at(stream_id, frame_no, time.time())`` right before it is handed to the consumers.

    ``pts`` counts the 90 kHz clock aiortc uses for video (``time_base`` 1/90000), from 0 at frame 0, and
    is the frame's capture instant on that clock: frame ``n``'s due time plus how late it was made (less than
    a period), as a camera's timestamps are its capture times. :meth:`make_frame` alone gives the due time.
    Sources of one size share a background; each stream starts at its own point of the motion path.
    """

    def __init__(self, stream_id: int, width: int = 640, height: int = 360, fps: float = 30,
                 canvas: Canvas | None = None) -> None:
        Stamp(stream_id, 0, 0)  # validates the id's range with the stamp's own message
        if not 0 < fps <= 120:
            raise ValueError(f"fps must be in (0, 120], got {fps}")
        if height < band_height(width) + 2:
            raise ValueError(f"a {width}x{height} frame has no room below the stamp band")
        self.stream_id = stream_id
        self.width = width
        self.height = height
        self.fps = fps
        self.background: Canvas = canvas if canvas is not None else Background.shared(width, height)
        # Side-by-side streams should not move in lockstep: a path offset is free, new textures are not.
        # Another canvas (a screen) is its own picture: no offset.
        self.phase = stream_id * PHASE_STEP if canvas is None else 0
        self.fanout: FanOut[VideoFrame] = FanOut("video")
        self.produced = 0
        """Frames handed to the fan-out so far."""
        self.skipped = 0
        """Frame numbers skipped because the generator was more than a frame late."""
        self._next_no = 0
        self._task: asyncio.Task[None] | None = None
        self.task_name = f"video-{stream_id}"


    def render(self, frame_no: int) -> npt.NDArray[np.uint8]:
        """The unstamped frame ``frame_no`` as a yuv420p array; see :meth:`Background.render`."""
        return self.background.render(frame_no + self.phase)

    def make_frame(self, frame_no: int, t: float | None = None) -> VideoFrame:
        """Stamped frame ``frame_no``, captured at ``t`` (default: now), built at once without pacing."""
        frame = VideoFrame(self.width, self.height, "yuv420p")
        y, u, v = (_plane_view(p) for p in frame.planes)
        self.background.render_into(frame_no + self.phase, y, u, v)
        stamp = Stamp.at(self.stream_id, frame_no % _FRAME_NO_MOD, time.time() if t is None else t)
        write_stamp(y, stamp)
        frame.pts = round(frame_no * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        return frame

    async def _run(self) -> None:
        period = 1.0 / self.fps
        start_no = self._next_no
        t0 = time.monotonic()
        try:
            while True:
                n = self._next_no
                late = time.monotonic() - (t0 + (n - start_no) * period)
                if late > period:
                    missed = int(late / period)
                    n += missed
                    self.skipped += missed
                elif late < 0:
                    await asyncio.sleep(-late)
                frame = self.make_frame(n)
                # The RTP timestamp is the capture instant, as a camera's is, not the schedule: a frame that a
                # lagging event loop made late (by up to a period, beyond which frames are skipped) says so. On
                # the schedule, every late frame looked to the receiver as if the network had delayed it: in a
                # loaded mixed room Chromium measured 69 ms of interarrival jitter on native senders' video
                # (13 ms on browsers'), grew its video buffer to match, and an SFU that maps RTP to NTP time
                # from the first packet it forwards (Janus) put the stream's lip-sync reference that far off.
                capture_lag = max(time.monotonic() - (t0 + (n - start_no) * period), 0.0)
                frame.pts = round(n * VIDEO_CLOCK_RATE / self.fps + capture_lag * VIDEO_CLOCK_RATE)
                self.fanout.push(frame)
                self.produced += 1
                self._next_no = n + 1
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("video source %d failed", self.stream_id)
        finally:
            # Consumers must not wait forever on a generator that died.
            if self._task is asyncio.current_task():
                self.fanout.close()


def read_frame(frame: VideoFrame) -> Stamp | None:
    """The stamp of a decoded frame, or ``None`` when it has none that passes the checksum.

    Reads only the band rows of the luma plane, in place (no conversion of the frame) when the format keeps
    8-bit luma in its first plane, as decoded VP8/H.264 does.
    """
    width, height = frame.width, frame.height
    if width < 32:
        return None
    if frame.format.name not in _Y8_FORMATS:
        return read_stamp(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
    rows = min(height, band_height(width))
    plane = frame.planes[0]
    band = np.frombuffer(memoryview(plane), dtype=np.uint8, count=plane.line_size * rows)
    return read_stamp(band.reshape(rows, plane.line_size)[:, :width])


def _plane_view(plane: VideoPlane) -> npt.NDArray[np.uint8]:
    """A writable h x w view of an 8-bit plane, skipping the line padding."""
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def _value_noise(rng: np.random.Generator, h: int, w: int, scale: int) -> npt.NDArray[np.float32]:
    """Random values on a grid every ``scale`` pixels, bilinearly interpolated to h x w, in [0, 1)."""
    gh, gw = h // scale + 2, w // scale + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    ry = np.arange(h, dtype=np.float32) / scale
    rx = np.arange(w, dtype=np.float32) / scale
    iy, ix = ry.astype(np.intp), rx.astype(np.intp)
    fy, fx = (ry - iy)[:, None], (rx - ix)[None, :]
    top = grid[iy][:, ix] * (1 - fx) + grid[iy][:, ix + 1] * fx
    bottom = grid[iy + 1][:, ix] * (1 - fx) + grid[iy + 1][:, ix + 1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy, dtype=np.float32)


def _luma_texture(rng: np.random.Generator, h: int, w: int) -> npt.NDArray[np.uint8]:
    # Several scales of detail, from broad shading to pixel grain, plus hard-edged blocks ("objects"): the
    # mix of smooth areas, edges and fine texture that makes real footage cost bits.
    tex = (
        0.40 * _value_noise(rng, h, w, 48)
        + 0.25 * _value_noise(rng, h, w, 12)
        + 0.20 * _value_noise(rng, h, w, 3)
        + 0.15 * rng.random((h, w), dtype=np.float32)
    )
    for _ in range(max(1, h * w // 6000)):
        bh, bw = int(rng.integers(6, h // 6)), int(rng.integers(6, w // 6))
        y0, x0 = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
        tex[y0 : y0 + bh, x0 : x0 + bw] = 0.5 * tex[y0 : y0 + bh, x0 : x0 + bw] + 0.5 * float(rng.random())
    lo, hi = float(tex.min()), float(tex.max())
    return np.asarray(16 + (tex - lo) * (219 / max(hi - lo, 1e-6)), dtype=np.uint8)


def _chroma_texture(rng: np.random.Generator, h: int, w: int) -> npt.NDArray[np.uint8]:
    tex = 0.7 * _value_noise(rng, h, w, 32) + 0.3 * _value_noise(rng, h, w, 6)
    return np.asarray(80 + 96 * tex, dtype=np.uint8)


def _sprite(rng: np.random.Generator, radius: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """A disc of diameter ``2 * radius`` with a high-contrast checker and its mask."""
    d = 2 * radius
    yy, xx = np.mgrid[0:d, 0:d]
    mask = (yy - radius + 0.5) ** 2 + (xx - radius + 0.5) ** 2 <= radius**2
    cell = max(2, radius // 4)
    checker = ((yy // cell + xx // cell) % 2).astype(np.float32)
    shade = 0.6 * checker + 0.4 * rng.random((d, d), dtype=np.float32)
    return np.asarray(30 + 200 * shade, dtype=np.uint8), mask
