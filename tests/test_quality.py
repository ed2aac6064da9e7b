"""Quality scores: the E-model MOS (ITU-T G.107) and the PSNR of received frames against regenerated ones."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
from av import CodecContext, VideoFrame

from harness.analysis.emodel import OPUS_BPL, OPUS_IE, audio_mos, delay_impairment, mos_from_r, r_factor
from harness.media.psnr import MAX_PSNR_DB, frame_psnr, psnr, reference_luma
from harness.media.video import VideoSource, read_frame


def test_g107_defaults_give_the_documented_rating() -> None:
    # G.107: with every parameter at its default, R = 93.2 (MOS 4.41).
    assert r_factor(0, 0) == pytest.approx(93.2, abs=0.05)
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.01)
    assert (mos_from_r(-5), mos_from_r(120)) == (1.0, 4.5)


def test_delay_costs_little_below_150_ms_and_much_beyond() -> None:
    assert delay_impairment(100) - delay_impairment(0) < 4
    assert r_factor(300, 0) < r_factor(150, 0) - 10
    ratings = [r_factor(d, 0) for d in range(0, 600, 25)]
    assert ratings == sorted(ratings, reverse=True)


def test_loss_with_opus_values() -> None:
    assert (OPUS_IE, OPUS_BPL) == (0.0, 25.1)
    # Ie,eff = 95 * Ppl / (Ppl + Bpl): 5 % loss costs 95 * 5 / 30.1 = 15.78 points of R.
    assert r_factor(0, 0) - r_factor(0, 5) == pytest.approx(95 * 5 / 30.1)
    scores = [audio_mos(80, 2, loss) for loss in (0, 1, 2, 5, 10, 20)]
    assert scores == sorted(scores, reverse=True)


def test_jitter_counts_as_jitter_buffer_delay() -> None:
    assert audio_mos(100, 50, 0) == pytest.approx(audio_mos(200, 0, 0))


def test_psnr_of_identical_and_of_noisy_planes() -> None:
    reference = np.full((90, 160), 128, dtype=np.uint8)
    assert psnr(reference, reference) == MAX_PSNR_DB
    noisy = reference.copy()
    noisy[::2] += 10  # half the pixels off by 10: MSE 50
    assert psnr(noisy, reference) == pytest.approx(10 * np.log10(255**2 / 50))


def test_the_sent_frame_is_regenerated_bit_for_bit() -> None:
    source = VideoSource(stream_id=6, width=320, height=180)
    frame = source.make_frame(1234)
    stamp = read_frame(frame)
    assert stamp is not None and (stamp.stream_id, stamp.frame_no) == (6, 1234)
    sent = frame.to_ndarray(format="yuv420p")[:180]
    assert np.array_equal(sent, reference_luma(320, 180, stamp))
    assert frame_psnr(frame, stamp, 320, 180) == MAX_PSNR_DB
    assert frame_psnr(frame, stamp, 640, 360) is None  # another size than sent: no figure


def test_psnr_after_a_real_vp8_round_trip_is_a_codec_figure() -> None:
    source = VideoSource(stream_id=2, width=320, height=180)
    encoder = CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 180, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.bit_rate = 300_000
    decoder = CodecContext.create("libvpx", "r")
    scores = []
    for n in range(30):
        for packet in encoder.encode(source.make_frame(n)):
            for decoded in decoder.decode(packet):
                assert isinstance(decoded, VideoFrame)
                stamp = read_frame(decoded)
                if stamp is not None:
                    score = frame_psnr(decoded, stamp, 320, 180)
                    assert score is not None
                    scores.append(score)
    assert len(scores) >= 20
    # Lossy but good: a real codec at this rate lands in the 25-50 dB band, never at the identical-frame cap.
    assert 25 < float(np.median(scores)) < 50
