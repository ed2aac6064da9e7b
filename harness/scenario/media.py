"""What publishers send: the synthetic camera, the screen share and the microphone of a scenario's ``[media]``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SPEAKER_PATTERNS", "VIDEO_CODECS", "AudioSettings", "ScreenSettings", "VideoSettings"]

VIDEO_CODECS = ("VP8", "H264")


@dataclass(frozen=True, slots=True)
class VideoSettings:
    """The synthetic camera every publisher runs."""

    width: int = 640
    height: int = 360
    fps: int = 30
    codec: str = "VP8"
    bitrate_kbps: int = 500

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 3840 and self.width % 2 == 0):
            raise ValueError("width must be an even number of pixels between 16 and 3840")
        if not (16 <= self.height <= 2160 and self.height % 2 == 0):
            raise ValueError("height must be an even number of pixels between 16 and 2160")
        if not (1 <= self.fps <= 120):
            raise ValueError("fps must be between 1 and 120")
        if self.codec not in VIDEO_CODECS:
            raise ValueError(f"codec must be one of {', '.join(VIDEO_CODECS)}")
        if not (30 <= self.bitrate_kbps <= 20000):
            raise ValueError("bitrate_kbps must be between 30 and 20000")


@dataclass(frozen=True, slots=True)
class ScreenSettings:
    """``[media.screen]``: the synthetic screen share of groups with ``screen_share = true``
    (``harness.media.screen``); its codec is the camera's."""

    width: int = 1920
    height: int = 1080
    fps: int = 5
    bitrate_kbps: int = 1500

    def __post_init__(self) -> None:
        if not (64 <= self.width <= 3840 and self.width % 2 == 0):
            raise ValueError("width must be an even number of pixels between 64 and 3840")
        if not (64 <= self.height <= 2160 and self.height % 2 == 0):
            raise ValueError("height must be an even number of pixels between 64 and 2160")
        if not (1 <= self.fps <= 60):
            raise ValueError("fps must be between 1 and 60")
        if not (30 <= self.bitrate_kbps <= 20000):
            raise ValueError("bitrate_kbps must be between 30 and 20000")


SPEAKER_PATTERNS = ("none", "round-robin")


@dataclass(frozen=True, slots=True)
class AudioSettings:
    """The synthetic microphone: silence with timed pulses for audio latency, and who is speaking."""

    pulse_period_s: float = 1.0
    speakers: str = "none"
    """``none``: every microphone is silent between pulses; ``round-robin``: one participant at a time talks
    (speech-like sound under the pulses, ``harness.media.speakers``), the next one every ``speaker_switch_s``."""
    speaker_switch_s: float = 5.0

    def __post_init__(self) -> None:
        if not (0.25 <= self.pulse_period_s <= 10):
            raise ValueError("pulse_period_s must be between 0.25 and 10")
        if self.speakers not in SPEAKER_PATTERNS:
            raise ValueError(f"speakers must be one of {', '.join(SPEAKER_PATTERNS)}, got {self.speakers!r}")
        if not (1 <= self.speaker_switch_s <= 3600):
            raise ValueError("speaker_switch_s must be between 1 and 3600")
