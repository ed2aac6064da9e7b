"""Tests for harness.media.audio: pulses on the wall-clock grid, their detection, pacing, and real Opus."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
import pytest
from aiortc.codecs import CODECS, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame

from harness.media.audio import PULSE_AMPLITUDE, PULSE_HZ, PULSE_MS, AudioSource, PulseDetector

RATE = 48000
EPOCH_SAMPLE = 1_790_000_000 * RATE  # a grid point (whole second) in 2026


def test_pulses_start_exactly_on_the_grid() -> None:
    src = AudioSource(1, pulse_period_s=0.5)
    samples = src.samples(EPOCH_SAMPLE - 100, 2 * RATE)
    loud = np.flatnonzero(samples)
    # The sine is 0 on the grid sample itself (phase 0), so each burst's first non-zero sample is one later.
    starts = loud[np.concatenate(([True], np.diff(loud) > 100))] - 100 - 1
    assert list(starts) == [0, RATE // 2, RATE, 3 * RATE // 2]
    burst = samples[100 : 100 + RATE // 2]
    assert burst[0] == 0 and burst[1] > 0  # sine from phase 0: the first sample after the grid point rises
    assert np.abs(burst).max() == pytest.approx(PULSE_AMPLITUDE * 32767, rel=0.01)
    assert np.count_nonzero(burst) == pytest.approx(PULSE_MS * RATE / 1000, abs=RATE // PULSE_HZ)
    # The same absolute sample gives the same value whichever frame it falls in.
    assert np.array_equal(src.samples(EPOCH_SAMPLE + 7, 500), samples[107:607])


def test_frame_format() -> None:
    src = AudioSource(2)
    frame = src.frame_at(EPOCH_SAMPLE)
    assert (frame.format.name, frame.layout.name) == ("s16", "mono")
    assert (frame.samples, frame.sample_rate) == (960, RATE)
    assert frame.pts == 0 and frame.time_base == fractions.Fraction(1, RATE)
    assert src.origin == EPOCH_SAMPLE
    assert src.frame_at(EPOCH_SAMPLE + 960).pts == 960
    assert np.array_equal(frame.to_ndarray()[0], src.samples(EPOCH_SAMPLE, 960))
    assert AudioSource(3, sample_rate=16000, ptime_ms=10).frame_at(0).samples == 160


def test_validation() -> None:
    with pytest.raises(ValueError):
        AudioSource(1, sample_rate=44100, ptime_ms=15)  # not a whole number of samples
    with pytest.raises(ValueError):
        AudioSource(1, pulse_period_s=0.03)  # no quiet between pulses
    with pytest.raises(ValueError):
        AudioSource(-1)
    with pytest.raises(ValueError):
        PulseDetector(threshold=1.5)
    with pytest.raises(ValueError):
        PulseDetector(pulse_period_s=0.1, min_quiet_s=0.2)


def audio_frame(mono: np.ndarray, fmt: str = "s16", layout: str = "stereo") -> av.AudioFrame:
    """A frame carrying ``mono`` on every channel, in the given sample format and layout."""
    channels = 2 if layout == "stereo" else 1
    if fmt.startswith("flt"):
        data = (mono / 32768).astype(np.float32)
    else:
        data = mono.astype(np.int16)
    if fmt.endswith("p"):
        array = np.tile(data, (channels, 1))
    else:
        array = np.repeat(data, channels).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(array, format=fmt, layout=layout)
    frame.sample_rate = RATE
    return frame


@pytest.mark.parametrize(
    ("fmt", "layout"),
    [("s16", "stereo"), ("s16p", "stereo"), ("fltp", "stereo"), ("flt", "mono"), ("s16", "mono")],
)
def test_detector_reads_every_layout(fmt: str, layout: str) -> None:
    src = AudioSource(1)
    detector = PulseDetector()
    found = []
    # 1.3 s of frames starting 0.7 s before a grid point, arriving 40 ms late (all our frames are 20 ms).
    for k in range(65):
        first = EPOCH_SAMPLE - 33600 + k * 960
        mono = src.samples(first, 960)
        found += detector.feed(audio_frame(mono, fmt, layout), first / RATE + 0.040)
    assert len(found) == 1
    assert found[0] == pytest.approx(40.0, abs=0.1)  # the threshold is crossed within 2 samples of the onset
    assert detector.onsets == 1


def test_detector_needs_quiet_first() -> None:
    detector = PulseDetector(min_quiet_s=0.2)
    tone = (16000 * np.sin(2 * np.pi * 1000 * np.arange(960) / RATE)).astype(np.int16)
    silence = np.zeros(960, dtype=np.int16)
    t = 1_790_000_000.0
    assert detector.feed(audio_frame(tone), t) == []  # joined mid-burst: not an onset
    for k in range(1, 5):  # 80 ms of quiet: not enough
        assert detector.feed(audio_frame(silence), t + 0.02 * k) == []
    assert detector.feed(audio_frame(tone), t + 0.1) == []
    for k in range(6, 17):  # 220 ms of quiet
        assert detector.feed(audio_frame(silence), t + 0.02 * k) == []
    assert detector.feed(audio_frame(tone), t + 0.34) == [pytest.approx(340.0, abs=0.1)]


def test_latency_is_modulo_the_period() -> None:
    src = AudioSource(1)
    detector = PulseDetector()
    found = []
    for k in range(60):
        first = EPOCH_SAMPLE - 24000 + k * 960
        found += detector.feed(audio_frame(src.samples(first, 960)), first / RATE + 1.25)  # 1.25 s late
    assert found == [pytest.approx(250.0, abs=0.1)]


def test_opus_round_trip_keeps_pulse_timing() -> None:
    """Source → aiortc's Opus encoder → its decoder → detector: the latency is the injected delay plus
    Opus' look-ahead (6.5 ms)."""
    codec = next(c for c in CODECS["audio"] if c.mimeType == "audio/opus")
    encoder, decoder = get_encoder(codec), get_decoder(codec)
    src = AudioSource(4)
    detector = PulseDetector()
    delay = 0.0371
    first = EPOCH_SAMPLE - 12345
    decoded = 0
    latencies = []
    for k in range(250):
        payloads, timestamp = encoder.encode(src.frame_at(first + k * 960))
        for payload in payloads:
            for frame in decoder.decode(JitterFrame(data=payload, timestamp=timestamp)):
                assert isinstance(frame, av.AudioFrame)
                assert (frame.format.name, frame.layout.name, frame.sample_rate) == ("s16", "stereo", RATE)
                # Decoded frame i carries source frame i's samples; it "arrives" `delay` after their time.
                latencies += detector.feed(frame, (first + decoded * 960) / RATE + delay)
                decoded += 1
    assert len(latencies) == 5  # 5 s of audio starting 0.26 s (enough quiet) before the first grid point
    for latency in latencies:
        assert latency == pytest.approx(delay * 1000 + 6.5, abs=1.0)
    assert max(latencies) - min(latencies) < 0.1


def test_source_paces_frames_on_the_wall_clock() -> None:
    async def main() -> None:
        src = AudioSource(5)
        a, b = src.track(), src.track()
        assert a.kind == "audio" and src.running
        frames = []
        for _ in range(10):
            frame = await a.recv()
            frames.append((time.time(), frame))
            assert (await b.recv()).pts == frame.pts
        await src.stop()
        origin = src.origin
        assert origin is not None
        pts = [int(f.pts or 0) for _, f in frames]
        assert pts == list(range(pts[0], pts[0] + 9600, 960))
        for received, frame in frames:
            first_sample_time = (origin + int(frame.pts or 0)) / RATE
            # Handed over at the time of its first sample, not before and not much after.
            assert -0.002 < received - first_sample_time < 0.03

    asyncio.run(main())


def test_source_live_pulse_detection() -> None:
    """The paced source and the detector agree on the grid: near-zero latency with no codec in between."""

    async def main() -> None:
        src = AudioSource(6, pulse_period_s=0.3)
        detector = PulseDetector(pulse_period_s=0.3, min_quiet_s=0.2)
        track = src.track()
        found: list[float] = []
        deadline = time.time() + 1.5
        while not found and time.time() < deadline:
            frame = await track.recv()
            found += detector.feed(frame, time.time())
        await src.stop()
        assert found and 0 <= found[0] < 15  # event-loop wake-up and scheduling only

    asyncio.run(main())


def test_source_skips_when_late_and_survives_a_clock_step_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.media.audio as audio_module

    class SteppingClock:
        """time.time() that can be stepped back, as an NTP correction would."""

        offset = 0.0

        def time(self) -> float:
            return time.time() - self.offset

    clock = SteppingClock()
    monkeypatch.setattr(audio_module, "time", clock)

    async def main() -> None:
        src = AudioSource(7)
        track = src.track()
        pts = [int((await track.recv()).pts or 0) for _ in range(3)]
        time.sleep(0.1)  # block the event loop: five frame periods
        pts += [int((await track.recv()).pts or 0) for _ in range(3)]
        assert src.skipped >= 3
        clock.offset = 10.0  # the wall clock jumps back 10 s
        start = time.monotonic()
        pts += [int((await track.recv()).pts or 0) for _ in range(8)]
        assert time.monotonic() - start < 1.0  # followed the clock instead of waiting 10 s
        await src.stop()
        assert pts == sorted(pts) and len(set(pts)) == len(pts)
        origin = src.origin
        assert origin is not None
        # After the step, samples sit on the (new) wall clock again: the grid stays where the clock says.
        assert abs((origin + pts[-1]) / RATE - clock.time()) < 0.1

    asyncio.run(main())
