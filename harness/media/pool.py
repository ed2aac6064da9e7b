"""Publishers sharing sources and encoders: the media a media host's publishers send, made once per slot.

Encoding is a publisher's largest cost; sending the encoded packets to one more peer connection is small
(``harness.media.encoder``, ``harness.media.packetize``). A scenario group may therefore let up to
``publishers_per_encoder`` of its publishers on one media host send the same stream: one camera, one video
encoder and one audio encoder per *slot*, each publisher a consumer of it with its own peer connections,
SSRCs and sequence numbers. The system under test sees that many publishers; only the pictures are the
same. Stamps stay correct (capture time and frame number are the slot's; the stamped stream id is the
slot's first publisher's, and receivers record the sender they got it from).

The cap, :data:`MAX_PUBLISHERS_PER_ENCODER`: a key frame requested by any receiver of any publisher of a slot
(PLI/FIR, a new subscriber) is sent to all of them, so the more publishers share an encoder, the more key
frames each receiver gets while people join; past a few dozen publishers a join wave turns every stream into
key frames. 1 (the default) gives every publisher its own stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.media.audio import AudioSource
from harness.media.encoder import SharedAudioEncoder, SharedVideoEncoder
from harness.media.fanout import FanOutTrack
from harness.media.screen import ScreenSource
from harness.media.simulcast import SimulcastEncoder
from harness.media.video import VideoSource
from harness.scenario.scenario import MAX_PUBLISHERS_PER_ENCODER, AudioSettings, ScreenSettings, VideoSettings

__all__ = ["MAX_PUBLISHERS_PER_ENCODER", "EncoderPool", "Lease"]
AUDIO_SAMPLE_RATE = 48000


@dataclass(eq=False)
class _Slot:
    """One shared stream: its sources, encoders and how many publishers use it."""

    key: str
    video: VideoSource | None = None
    encoder: SharedVideoEncoder | SimulcastEncoder | None = None
    audio: AudioSource | None = None
    audio_encoder: SharedAudioEncoder | None = None
    users: int = 0

    def counters(self) -> tuple[int, int]:
        """(video frames produced, frames skipped or dropped before any sender) so far."""
        if self.video is None:
            return 0, 0
        skipped = self.video.skipped + self.video.fanout.dropped
        if isinstance(self.encoder, SimulcastEncoder):
            skipped += self.encoder.dropped
        elif self.encoder is not None:
            skipped += self.encoder.fanout.dropped
        return self.video.produced, skipped


@dataclass(eq=False)
class Lease:
    """One publisher's use of a slot: where its tracks come from."""

    slot: _Slot
    released: bool = field(default=False)
    given: list[FanOutTrack[Any]] = field(default_factory=list)
    """Every track handed out, stopped when the lease ends: aiortc stops a sender's track only if the sender ran,
    so a connection closed before it came up (a participant leaving mid-join) would leave its track in the
    shared encoder's fan-out, queueing frames for nobody as long as anyone else uses the slot."""

    def tracks(self) -> list[FanOutTrack[Any]]:
        """Fresh tracks (audio, then video) for one peer connection."""
        out: list[FanOutTrack[Any]] = []
        if self.slot.audio_encoder is not None:
            out.append(self.slot.audio_encoder.track())
        if self.slot.encoder is not None:
            out.append(self.slot.encoder.track())
        self.given = [t for t in self.given if t.readyState == "live"] + out
        return out


class EncoderPool:
    """The slots of one media host (or of one participant, when it has a pool of its own)."""

    def __init__(self) -> None:
        self._slots: dict[str, list[_Slot]] = {}
        self._gone = (0, 0)

    def acquire(self, group: str, share: int, stream_id: int, publish: tuple[str, ...],
                video: VideoSettings, audio: AudioSettings,
                speaking: Callable[[float], bool] | None = None, pacing: bool = True,
                simulcast: tuple[str, ...] = (), adapt: bool = False) -> Lease:
        """A lease on a slot of ``group`` with room (fewer than ``share`` users), or on a new one.

        A new slot's video stream id is ``stream_id`` (its audio ``stream_id + 1``); its microphone talks when
        ``speaking`` says so (``harness.media.speakers``: the slot's first publisher's turns); ``pacing``:
        whether its video is paced as a browser's (``harness.media.pacer``; single encodings only); with
        ``simulcast`` layers, its video is a :class:`SimulcastEncoder` (every layer encoded once for the slot),
        whose publishers drop top layers on loss when ``adapt``.
        """
        key = f"{group}:{','.join(sorted(publish))}:{'paced' if pacing else 'unpaced'}"
        slot = self._free_slot(key, share)
        if slot is None:
            slot = _Slot(key)
            if "video" in publish:
                slot.video = VideoSource(stream_id, width=video.width, height=video.height, fps=video.fps)
                if simulcast:
                    slot.encoder = SimulcastEncoder(slot.video, simulcast, codec=video.codec,
                                                    bitrate_bps=video.bitrate_kbps * 1000, adapt=adapt)
                else:
                    slot.encoder = SharedVideoEncoder(slot.video, codec=video.codec,
                                                      bitrate_bps=video.bitrate_kbps * 1000, pacing=pacing)
            if "audio" in publish:
                slot.audio = AudioSource(stream_id + 1, sample_rate=AUDIO_SAMPLE_RATE,
                                         pulse_period_s=audio.pulse_period_s, speaking=speaking)
                slot.audio_encoder = SharedAudioEncoder(slot.audio)
            self._slots[key].append(slot)
        slot.users += 1
        return Lease(slot)

    def acquire_screen(self, group: str, share: int, stream_id: int, screen: ScreenSettings,
                       codec: str) -> Lease:
        """A lease on a screen-share slot of ``group`` (``harness.media.screen``), stamped ``stream_id``."""
        key = f"{group}:screen"
        slot = self._free_slot(key, share)
        if slot is None:
            slot = _Slot(key)
            slot.video = ScreenSource(stream_id, width=screen.width, height=screen.height, fps=screen.fps)
            slot.encoder = SharedVideoEncoder(slot.video, codec=codec, bitrate_bps=screen.bitrate_kbps * 1000)
            self._slots[key].append(slot)
        slot.users += 1
        return Lease(slot)

    def _free_slot(self, key: str, share: int) -> _Slot | None:
        if not 1 <= share <= MAX_PUBLISHERS_PER_ENCODER:
            raise ValueError(f"publishers_per_encoder must be 1..{MAX_PUBLISHERS_PER_ENCODER}, got {share}")
        return next((s for s in self._slots.setdefault(key, []) if s.users < share), None)

    async def release(self, lease: Lease) -> None:
        """End a lease; the last user of a slot stops its encoders and sources."""
        if lease.released:
            return
        lease.released = True
        for track in lease.given:
            track.stop()
        lease.given = []
        slot = lease.slot
        slot.users -= 1
        if slot.users > 0:
            return
        self._slots[slot.key].remove(slot)
        produced, skipped = slot.counters()
        self._gone = (self._gone[0] + produced, self._gone[1] + skipped)
        for part in (slot.encoder, slot.audio_encoder, slot.video, slot.audio):
            if part is not None:
                await part.stop()

    @property
    def slots(self) -> int:
        """Slots in use (distinct streams being encoded)."""
        return sum(len(s) for s in self._slots.values())

    def counters(self) -> tuple[int, int]:
        """(video frames produced, frames skipped) by every slot so far, released ones included."""
        produced, skipped = self._gone
        for slots in self._slots.values():
            for slot in slots:
                p, s = slot.counters()
                produced, skipped = produced + p, skipped + s
        return produced, skipped
