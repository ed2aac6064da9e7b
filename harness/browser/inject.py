"""The script injected into every page of a browser participant, and the settings it is built from.

``media.js`` (beside this module) is the in-page instrument; this module fills in its ``CONFIG`` object from
the Python side, so that the block code's constants come from :mod:`harness.media.stamp` and the audio pulse's
from :mod:`harness.media.audio` — one place for each, whichever engine draws or reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from harness.media import audio, stamp
from harness.scenario.scenario import AudioSettings, VideoSettings

PLACEHOLDER = "CONFIG;  // replaced by inject.py with a JSON object"

# The receiver's pulse detector uses the same settings as harness.media.audio.PulseDetector's defaults.
DETECT_THRESHOLD = 0.1
DETECT_MIN_QUIET_S = 0.2


@dataclass(frozen=True, slots=True)
class PageMedia:
    """What one browser participant's page publishes and how it reaches the network."""

    video_stream_id: int
    publish: tuple[str, ...] = ("audio", "video")
    video: VideoSettings = VideoSettings()
    audio: AudioSettings = AudioSettings()
    ice_servers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.video_stream_id <= 0xFFFF:
            raise ValueError("video_stream_id must fit in 16 bits")


def stamp_constants() -> dict[str, Any]:
    """The block code's geometry and levels, as ``media.js`` expects them."""
    return {
        "columns": stamp.COLUMNS, "rows": stamp.ROWS, "dark": stamp.DARK, "light": stamp.LIGHT,
        "threshold": stamp.THRESHOLD, "core": stamp._CORE, "doubt": stamp._DOUBT,
        "max_flips": stamp._MAX_FLIPS, "max_samples": stamp._MAX_SAMPLES,
    }


def config(media: PageMedia) -> dict[str, Any]:
    """The ``CONFIG`` object of ``media.js`` for one participant."""
    v = media.video
    return {
        "stamp": stamp_constants(),
        "publish": list(media.publish),
        "video": {"width": v.width, "height": v.height, "fps": v.fps, "codec": v.codec,
                  "bitrate_kbps": v.bitrate_kbps, "stream_id": media.video_stream_id},
        "audio": {"pulse_period_s": media.audio.pulse_period_s, "pulse_hz": audio.PULSE_HZ,
                  "pulse_ms": audio.PULSE_MS, "amplitude": audio.PULSE_AMPLITUDE,
                  "threshold": DETECT_THRESHOLD, "min_quiet_s": DETECT_MIN_QUIET_S},
        "ice_servers": list(media.ice_servers),
    }


def script(media: PageMedia) -> str:
    """The complete init script for one participant's pages."""
    source = resources.files("harness.browser").joinpath("media.js").read_text(encoding="utf-8")
    if PLACEHOLDER not in source:
        raise RuntimeError("media.js lost its CONFIG placeholder")
    return source.replace(PLACEHOLDER, json.dumps(config(media)) + ";")
