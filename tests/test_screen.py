"""The synthetic screen share: text-like, mostly still, and its stamp survives VP8 at 1080p."""

from __future__ import annotations

import av
import numpy as np
import pytest

from harness.host.screen import SCREEN_SUFFIX, source_of
from harness.media.encoder import _vp8_context
from harness.media.psnr import frame_psnr
from harness.media.screen import SLIDE_EVERY, ScreenPage, ScreenSource
from harness.media.stamp import band_height
from harness.media.video import read_frame


def changed(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a != b))


def test_frames_change_a_little_and_slides_change_a_lot() -> None:
    page = ScreenPage(1920, 1080)
    frames = [page.render(n) for n in range(SLIDE_EVERY + 2)]
    steps = [changed(frames[n], frames[n + 1]) for n in range(SLIDE_EVERY + 1)]
    # Every frame changes (typing, the pointer) ...
    assert min(steps) > 0
    # ... but only a little: well under 1 % of the samples, like a real shared screen.
    assert max(steps[: SLIDE_EVERY - 1]) < 0.01
    # The slide change is the big one.
    assert steps[SLIDE_EVERY - 1] > 0.05
    # Text-like: mostly paper, with sharp dark glyphs, not the camera's continuous tones.
    luma = frames[0][:1080][band_height(1920):]
    assert np.mean(luma == 235) > 0.6 and np.mean(luma == 30) > 0.05


def test_render_is_a_pure_function_of_the_frame_number() -> None:
    a, b = ScreenPage(640, 360), ScreenPage(640, 360)
    for n in (0, 7, SLIDE_EVERY * 2 + 3):
        assert np.array_equal(a.render(n), b.render(n))
    assert ScreenPage.shared(640, 360) is ScreenPage.shared(640, 360)
    with pytest.raises(ValueError):
        ScreenPage(63, 360)


def test_stamps_survive_vp8_at_1080p_and_psnr_rebuilds_the_sent_frame() -> None:
    source = ScreenSource(stream_id=9, width=1920, height=1080, fps=5)
    encoder = _vp8_context(1920, 1080, 1_500_000)  # the settings the shared encoder uses
    decoder = av.CodecContext.create("libvpx", "r")
    read, psnrs = [], []
    frame_nos = [*range(12), SLIDE_EVERY - 1, SLIDE_EVERY, SLIDE_EVERY + 1]
    for n in frame_nos:
        for packet in encoder.encode(source.make_frame(n)):
            for decoded in decoder.decode(packet):
                stamp = read_frame(decoded)
                assert stamp is not None
                read.append((stamp.stream_id, stamp.frame_no))
                psnrs.append(frame_psnr(decoded, stamp, 1920, 1080, screen=True))
    assert read == [(9, n) for n in frame_nos]
    # Rebuilt from the stamp: the screen's own picture (the camera's compares at about 8 dB).
    assert all(p is not None and p > 25 for p in psnrs), psnrs
    camera = frame_psnr(decoded, stamp, 1920, 1080)
    assert camera is not None and camera < 20


def test_screen_publishers_are_told_apart_by_name() -> None:
    assert source_of("presenter-3" + SCREEN_SUFFIX) == "screen"
    assert source_of("presenter-3") == "camera"
