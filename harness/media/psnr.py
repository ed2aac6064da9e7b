"""Video quality: PSNR of a received frame against the frame that was sent, regenerated exactly.

The synthetic camera is deterministic (``harness.media.video``): frame ``n`` of stream ``s`` at a given size
is ``Background.shared(w, h).render(n + s * PHASE_STEP)`` with the stamp written into its top rows. The
receiver reads the stamp (stream id, frame number, capture time), so it can rebuild the sent frame bit for
bit and compare. Only luma is compared (Y-PSNR, the usual figure for codec quality; the eye is most
sensitive to it), over the whole frame, peak 255. A frame received at another size than it was sent (a
server that scaled it) has no PSNR: rescaling would measure the scaler, not the stream.

Cost at 640x360: about 1 ms per frame (rendering the reference and the squared error), which is why
participants sample one frame a second per decoded stream.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from av import VideoFrame

from harness.media.screen import ScreenPage
from harness.media.stamp import Stamp, write_stamp
from harness.media.video import PHASE_STEP, Background

MAX_PSNR_DB = 100.0
"""Reported for a frame identical to its reference (the PSNR would be infinite)."""


def reference_luma(width: int, height: int, stamp: Stamp, screen: bool = False) -> npt.NDArray[np.uint8]:
    """The luma plane (height x width) of the frame the source sent with ``stamp`` (a screen share's, if
    ``screen``: ``harness.media.screen``)."""
    if screen:
        frame = ScreenPage.shared(width, height).render(stamp.frame_no)
    else:
        frame = Background.shared(width, height).render(stamp.frame_no + stamp.stream_id * PHASE_STEP)
    y = frame[:height]
    write_stamp(y, stamp)
    return y


def luma(frame: VideoFrame) -> npt.NDArray[np.uint8]:
    """The decoded frame's luma plane as an h x w view (no copy for 8-bit planar formats)."""
    if frame.format.name in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "nv12", "gray"):
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8, count=plane.line_size * frame.height)
        return rows.reshape(frame.height, plane.line_size)[:, : frame.width]
    return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)


def psnr(received: npt.NDArray[np.uint8], reference: npt.NDArray[np.uint8]) -> float:
    """PSNR in dB of two equally sized 8-bit planes (peak 255); :data:`MAX_PSNR_DB` when identical."""
    if received.shape != reference.shape:
        raise ValueError(f"planes differ in size: {received.shape} and {reference.shape}")
    diff = received.astype(np.int16) - reference.astype(np.int16)
    mse = float(np.mean(np.square(diff, dtype=np.int32)))
    if mse == 0:
        return MAX_PSNR_DB
    return min(MAX_PSNR_DB, 10 * math.log10(255.0**2 / mse))


def frame_psnr(frame: VideoFrame, stamp: Stamp, sent_width: int, sent_height: int,
               screen: bool = False) -> float | None:
    """Y-PSNR of a decoded frame against what was sent, or None when it arrived at another size."""
    if (frame.width, frame.height) != (sent_width, sent_height):
        return None
    return psnr(luma(frame), reference_luma(sent_width, sent_height, stamp, screen))
