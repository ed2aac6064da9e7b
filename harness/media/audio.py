"""The synthetic microphone: silence with a loud tone burst on every wall-clock grid point, and its detector.

Audio latency is measured like a clapperboard. The source's sample clock is the wall clock: sample ``s`` (an
absolute count since the UNIX epoch) belongs to time ``s / sample_rate``, a frame is handed to its consumers
at the time of its first sample, and a 20 ms, 1 kHz burst at half of full scale starts exactly on every
multiple of ``pulse_period_s``. The receiver timestamps each decoded frame as it arrives, finds the first loud
sample after a quiet stretch, and the latency is that sample's arrival time minus the grid point before it.

Consequences worth knowing:

- Latency is only known modulo the pulse period: a delay of 1.05 s with a 1 s period reads as 50 ms. Keep the
  period well above any plausible latency (the default 1 s is).
- Sender and receiver must share a clock (same host, or synchronised hosts): the grid is wall-clock time.
- The figure includes codec delay: Opus (aiortc's settings, ``application=voip``) delays the signal by its
  look-ahead, 312 samples = 6.5 ms at 48 kHz, which the decoder does not trim from raw RTP payloads.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from av import AudioFrame

from .fanout import FanOut, Producer
from .speakers import speech

__all__ = ["PULSE_AMPLITUDE", "PULSE_HZ", "PULSE_MS", "AudioSource", "PulseDetector"]

logger = logging.getLogger(__name__)

PULSE_HZ = 1000
"""Tone frequency of the burst."""
PULSE_MS = 20
"""Burst length."""
PULSE_AMPLITUDE = 0.5
"""Burst peak as a fraction of full scale: loud and unmistakable, with headroom for codec overshoot."""

_FULL_SCALE = 32767
_FADE_MS = 2  # the burst ends on a short fade: an abrupt stop would splatter energy across the spectrum


class AudioSource(Producer[AudioFrame]):
    """A paced synthetic microphone for one stream: mono s16 ``av.AudioFrame`` s, fanned out to tracks.

    Frames of ``ptime_ms`` are handed over at the wall-clock time of their first sample (or ``lead_s`` before
    it, for consumers that send them at that time from elsewhere). Pacing follows
    ``time.time()`` (not the monotonic clock) because the pulse grid is wall-clock time: if the clock is
    slewed, the pulses stay on the grid. When the generator falls more than a frame behind it skips the missed
    frames (counted in :attr:`skipped`) rather than bursting; if the wall clock steps backwards it re-anchors.

    aiortc's Opus encoder accepts s16 mono or stereo at any rate and resamples to 48 kHz stereo itself.

    ``speaking``, when given, says for a UNIX time whether this microphone's owner is talking then
    (``harness.media.speakers.SpeakerSchedule.speaking``); a frame that starts while they talk carries the
    speech-like sound of ``harness.media.speakers`` under the pulses.
    """

    def __init__(
        self, stream_id: int, sample_rate: int = 48000, ptime_ms: int = 20, pulse_period_s: float = 1.0,
        speaking: Callable[[float], bool] | None = None,
    ) -> None:
        if not 0 <= stream_id <= 0xFFFF:
            raise ValueError(f"stream_id must be in 0..65535, got {stream_id}")
        if sample_rate <= 0 or sample_rate * ptime_ms % 1000:
            raise ValueError(f"{ptime_ms} ms is not a whole number of samples at {sample_rate} Hz")
        period_samples = round(pulse_period_s * sample_rate)
        if period_samples <= 0 or abs(period_samples - pulse_period_s * sample_rate) > 1e-6:
            raise ValueError(f"pulse period {pulse_period_s} s is not a whole number of samples")
        burst = round(PULSE_MS * sample_rate / 1000)
        if period_samples < 2 * burst:
            raise ValueError(f"pulse period {pulse_period_s} s leaves no quiet between {PULSE_MS} ms pulses")
        self.stream_id = stream_id
        self.sample_rate = sample_rate
        self.ptime_ms = ptime_ms
        self.pulse_period_s = pulse_period_s
        self.speaking = speaking
        self.samples_per_frame = sample_rate * ptime_ms // 1000
        self.fanout: FanOut[AudioFrame] = FanOut("audio", maxsize=5)
        self.produced = 0
        """Frames handed to the fan-out so far."""
        self.skipped = 0
        """Frames skipped because the generator was more than a frame late."""
        self._period = period_samples
        self._burst = _burst(sample_rate, burst)
        self._time_base = fractions.Fraction(1, sample_rate)
        self._origin: int | None = None  # first sample ever produced: pts count from here
        self._next: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.task_name = f"audio-{stream_id}"
        self.lead_s = 0.0
        """How long before its first sample's time a frame is handed over at least (0: at that time; frames
        then come in bursts of up to half as much more). Set by a consumer whose packets can leave at their time
        whenever they are made (``harness.media.send_clock``)."""


    @property
    def origin(self) -> int | None:
        """Absolute index of the first sample produced (``pts`` 0), or ``None`` before the first frame.

        Frame ``f`` starts at absolute sample ``origin + f.pts``, i.e. at UNIX time
        ``(origin + f.pts) / sample_rate``. Only a backward step of the wall clock moves it (so that ``pts``
        stays monotonic while the samples follow the clock).
        """
        return self._origin

    def samples(self, first: int, count: int) -> npt.NDArray[np.int16]:
        """``count`` samples starting at absolute sample ``first`` (sample ``s`` is at time ``s / rate``)."""
        phase = (first + np.arange(count, dtype=np.int64)) % self._period
        if self.speaking is not None and self.speaking(first / self.sample_rate):
            out = np.round(_FULL_SCALE * speech(first, count, self.sample_rate)).astype(np.int16)
        else:
            out = np.zeros(count, dtype=np.int16)
        loud = phase < self._burst.size
        out[loud] = self._burst[phase[loud]]
        return out

    def frame_at(self, first: int) -> AudioFrame:
        """The frame whose first sample is absolute sample ``first``, without pacing."""
        if self._origin is None:
            self._origin = first
        n = self.samples_per_frame
        frame = AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(self.samples(first, n).tobytes())
        frame.sample_rate = self.sample_rate
        frame.pts = first - self._origin
        frame.time_base = self._time_base
        return frame

    def _now_sample(self) -> int:
        # On the wall clock's grid of frames: the microphones of one process then have their frames due at the
        # same instants, which the sending clock serves in one wake-up.
        n = self.samples_per_frame
        return math.ceil(time.time() * self.sample_rate / n) * n

    async def _run(self) -> None:
        n, rate = self.samples_per_frame, self.sample_rate
        ptime = n / rate
        try:
            if self._next is None or self._next < self._now_sample():
                self._next = self._now_sample()  # first start, or a restart: begin now, not in the past
            while True:
                first = self._next
                # Late against the frame's own time (with ``lead_s``, it is handed over ahead of it, see below).
                late = time.time() - first / rate
                if late > ptime:
                    missed = int(late / ptime)
                    first += missed * n
                    self.skipped += missed
                elif late < -2 * ptime - 1.5 * self.lead_s and self._origin is not None:
                    # The wall clock stepped back: follow it, moving the origin so that pts stays monotonic.
                    now = self._now_sample()
                    self._origin += now - first
                    first = now
                elif late < -1.5 * self.lead_s:
                    # Made ahead, frames come in bursts, from ``lead_s`` to 1.5 times that ahead of their time:
                    # fewer wake-ups of the loop and of the process that sends them (``harness.media.send_clock``).
                    # Without a lead, one at its time.
                    await asyncio.sleep(-late - self.lead_s)
                self.fanout.push(self.frame_at(first))
                self.produced += 1
                self._next = first + n
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("audio source %d failed", self.stream_id)
        finally:
            if self._task is asyncio.current_task():
                self.fanout.close()  # consumers must not wait forever on a generator that died


class PulseDetector:
    """Finds the source's pulses in received audio and turns them into latencies.

    ``feed`` takes each decoded frame with ``arrival_ts``, the wall-clock time its first sample arrived (when
    ``recv()`` returned it). An onset is the first sample whose magnitude, on any channel, reaches
    ``threshold`` (a fraction of full scale) after at least ``min_quiet_s`` below it; its time is
    ``arrival_ts + offset / rate``. The latency is that time minus the latest grid point
    ``k * pulse_period_s`` at or before it, so it is only known modulo the period (see the module docstring).
    The required quiet stops the burst's own cycles and a codec's ringing from counting twice; detection
    starts only once that much quiet has been seen, so joining mid-burst is harmless.

    Accepts packed or planar s16, s32, flt and dbl frames, mono or multi-channel (aiortc's Opus decoder gives
    packed s16 stereo at 48 kHz). Offsets use each frame's own ``sample_rate``.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        pulse_period_s: float = 1.0,
        threshold: float = 0.1,
        min_quiet_s: float = 0.2,
    ) -> None:
        if sample_rate <= 0 or pulse_period_s <= 0:
            raise ValueError("sample_rate and pulse_period_s must be positive")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold is a fraction of full scale in (0, 1), got {threshold}")
        if not 0 <= min_quiet_s < pulse_period_s:
            raise ValueError(f"min_quiet_s must be in [0, pulse_period_s), got {min_quiet_s}")
        self.sample_rate = sample_rate
        self.pulse_period_s = pulse_period_s
        self.threshold = threshold
        self.min_quiet_s = min_quiet_s
        self.onsets = 0
        """Pulse onsets found so far."""
        self._quiet_s = 0.0  # length of the quiet stretch ending at the last sample fed

    def feed(self, frame: AudioFrame, arrival_ts: float) -> list[float]:
        """Latencies (ms) of the pulse onsets in ``frame``, whose first sample arrived at ``arrival_ts``."""
        rate = frame.sample_rate or self.sample_rate
        loud = _loud_samples(frame, self.threshold)
        if loud.size == 0:
            self._quiet_s += frame.samples / rate
            return []
        # Quiet run before each loud sample: from the previous loud sample (or the carried-over stretch).
        previous = np.concatenate(([-1 - round(self._quiet_s * rate)], loud[:-1]))
        onsets = loud[(loud - previous - 1) >= self.min_quiet_s * rate]
        self._quiet_s = (frame.samples - 1 - int(loud[-1])) / rate
        latencies = []
        for offset in onsets:
            onset = arrival_ts + int(offset) / rate
            grid = math.floor(onset / self.pulse_period_s) * self.pulse_period_s
            latencies.append((onset - grid) * 1000.0)
        self.onsets += len(latencies)
        return latencies


def _burst(sample_rate: int, length: int) -> npt.NDArray[np.int16]:
    t = np.arange(length) / sample_rate
    # Starting at phase 0 keeps the onset sample exact (no click before it); the fade keeps the end clean.
    wave = PULSE_AMPLITUDE * _FULL_SCALE * np.sin(2 * np.pi * PULSE_HZ * t)
    fade = min(length, round(_FADE_MS * sample_rate / 1000))
    wave[length - fade :] *= 0.5 * (1 + np.cos(np.pi * (np.arange(fade) + 1) / fade))
    return np.round(wave).astype(np.int16)


def _loud_samples(frame: AudioFrame, threshold: float) -> npt.NDArray[np.intp]:
    """Sorted indices of the samples where any channel reaches ``threshold`` (fraction of full scale)."""
    data = frame.to_ndarray()  # planar: one row per channel; packed: one row of interleaved samples
    integer = np.issubdtype(data.dtype, np.signedinteger)
    limit = threshold * 2 ** (8 * data.dtype.itemsize - 1) if integer else threshold
    # Comparing in the native type avoids a float copy and abs() overflowing on the most negative s16 value.
    hits = np.flatnonzero((data >= limit) | (data <= -limit))
    if hits.size == 0:
        return hits
    if frame.format.is_planar:
        return np.unique(hits % frame.samples)
    return np.unique(hits // frame.layout.nb_channels)
