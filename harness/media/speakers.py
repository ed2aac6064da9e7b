"""Who is speaking: a round-robin schedule on the wall clock, and the speech-like sound a speaker makes.

With ``[media.audio] speakers = "round-robin"`` one participant at a time talks. Time is cut into slots of
``speaker_switch_s`` seconds counted from the UNIX epoch, and slot ``k`` belongs to the participant whose
index is ``k`` modulo the scenario's planned number of participants (its *seats*). Every participant works out
its own turns from the clock and its index alone, so no coordination is needed and hosts that share a clock
agree. A slot whose seat is empty (a participant that has not joined, left, or publishes no audio) is silent.

The sound is a voice-like tone (a fundamental around 160 Hz wandering slowly in pitch, under a syllable-rate
envelope) at :data:`SPEECH_AMPLITUDE` of full scale: about -28 dBov RMS, like speech at a normal level, and
far above the near-silence of the others (digital zero). Its peak stays below the pulse detector's default
threshold (``harness.media.audio.PulseDetector``, 0.1), so latency pulses keep being measured while people talk.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SPEECH_AMPLITUDE", "SpeakerSchedule", "announce_turns", "audio_level_dbov", "speech"]

SPEECH_AMPLITUDE = 0.07
"""Peak of the speech-like sound as a fraction of full scale."""
_FULL_SCALE = 32767
_F0_HZ = 160.0  # a speaking voice's fundamental
_SYLLABLE_HZ = 4.0  # syllables per second, roughly


@dataclass(frozen=True, slots=True)
class SpeakerSchedule:
    """The round-robin turns: slot ``k`` (``switch_s`` long, from the epoch) belongs to seat ``k % seats``."""

    switch_s: float
    seats: int
    seat: int
    """This participant's seat (its index modulo ``seats``)."""

    def __post_init__(self) -> None:
        if self.switch_s <= 0:
            raise ValueError(f"switch_s must be positive, got {self.switch_s}")
        if self.seats < 1 or not 0 <= self.seat < self.seats:
            raise ValueError(f"seat must be in 0..{self.seats - 1}, got {self.seat} of {self.seats}")

    @classmethod
    def for_index(cls, switch_s: float, seats: int, index: int) -> SpeakerSchedule:
        """The schedule of the participant with ``index`` among ``seats`` planned participants."""
        seats = max(1, seats)
        return cls(switch_s, seats, index % seats)

    def slot(self, t: float) -> int:
        """The slot that UNIX time ``t`` falls in."""
        return math.floor(t / self.switch_s)

    def speaker_at(self, t: float) -> int:
        """The seat that speaks at UNIX time ``t``."""
        return self.slot(t) % self.seats

    def speaking(self, t: float) -> bool:
        """Whether this participant speaks at UNIX time ``t``."""
        return self.speaker_at(t) == self.seat

    def next_change(self, t: float) -> float:
        """The first time after ``t`` at which this participant starts or stops speaking."""
        k = self.slot(t)
        if self.seats == 1:
            return math.inf  # the only seat speaks all the time
        if self.speaking(t):
            return (k + 1) * self.switch_s
        ahead = (self.seat - k % self.seats) % self.seats
        return (k + ahead) * self.switch_s


def speech(first: int, count: int, sample_rate: int) -> npt.NDArray[np.float64]:
    """``count`` samples of the speech-like sound from absolute sample ``first`` (fraction of full scale).

    A pure function of the absolute sample index, so consecutive frames join without a click.
    """
    t = (first + np.arange(count, dtype=np.float64)) / sample_rate
    # Phase of a tone whose frequency wanders +-15 % at 0.5 Hz: the integral of f(t), in closed form.
    wander = 0.15 * _F0_HZ / (2 * math.pi * 0.5)
    phase = 2 * math.pi * (_F0_HZ * t - wander * np.cos(2 * math.pi * 0.5 * t))
    envelope = 0.55 + 0.45 * np.abs(np.sin(math.pi * _SYLLABLE_HZ * t))
    return np.asarray(SPEECH_AMPLITUDE * envelope * np.sin(phase), dtype=np.float64)


def audio_level_dbov(samples: npt.NDArray[Any]) -> int:
    """RFC 6465 audio level of s16 samples: 0 (loudest) to 127 (silence), dB below full scale."""
    if samples.size == 0:
        return 127
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64)))) / _FULL_SCALE
    if rms <= 0:
        return 127
    return min(127, max(0, round(-20 * math.log10(rms))))


async def announce_turns(turns: SpeakerSchedule, clock: Callable[[], float],
                         on_event: Callable[[str, str], None]) -> None:
    """Call ``on_event("speaking_started" | "speaking_stopped", detail)`` at the turns of ``turns`` until
    cancelled (what the participant's microphone sends); a turn cut short by cancelling ends with ``left``."""
    speaking = False
    try:
        while True:
            now = clock()
            if turns.speaking(now) != speaking:
                speaking = not speaking
                on_event("speaking_started" if speaking else "speaking_stopped", f"slot {turns.slot(now)}")
            # A millisecond past the change, so that the clock reads the new turn when it wakes.
            await asyncio.sleep(min(max(turns.next_change(now) - now, 0.0) + 0.001, 3600.0))
    finally:
        if speaking:
            on_event("speaking_stopped", "left")
