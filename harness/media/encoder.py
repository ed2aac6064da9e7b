"""One encoder per published video stream, its packets fanned out to every peer connection.

aiortc gives every RTCRtpSender its own encoder, so a participant who sends to N peers (a full mesh, or an
SFU that wants several layers) encodes each frame N times. Encoding is the dominant cost of a synthetic
participant (``benchmarks/media_costs.py``: VP8 at 640x360 costs about 3.6 ms a frame against 1 ms to
decode), and a load generator that spends its CPU on duplicate encodes measures itself, not the system.
aiortc's senders also accept already encoded frames, so this module encodes each frame once, packetizes it
once (``harness.media.packetize``) and hands the same RTP payloads to every sender.

Audio is shared the same way: aiortc would run one Opus encoder (and one audio-level computation) per
sender, which in the default meeting took about a seventh of the media host's event-loop time.

What that changes, on purpose and documented: the bitrate is fixed by the scenario (``bitrate_kbps``)
instead of following each receiver's REMB estimate, which makes runs repeatable; key frames are produced
when any receiver asks (PLI/FIR) or a new consumer subscribes, so all receivers of a stream get them.

The one patch of aiortc lives here: ``RTCRtpSender._send_keyframe`` (where aiortc handles PLI and FIR) is
wrapped so that a request reaches the shared encoder of the sender's track. Remove it when aiortc lets a
track observe key-frame requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import AUDIO_PTIME, VIDEO_TIME_BASE, MediaStreamError
from aiortc.rtcrtpsender import RTCRtpSender
from av.video.frame import PictureType

from .audio import AudioSource
from .fanout import FanOut, FanOutTrack, Producer
from .pacer import pacing_rate_bps
from .packetize import PacketizedFrame, Packetizer
from .packetize import install as install_packetized_senders
from .send_clock import SEND_LEAD_S, send_clock
from .speakers import audio_level_dbov
from .video import VideoSource

__all__ = ["CODECS", "INLINE_ENCODE_MS", "SharedAudioEncoder", "SharedVideoEncoder", "install_keyframe_forwarding"]

log = logging.getLogger(__name__)

CODECS = ("VP8", "H264")
INLINE_ENCODE_MS = 1.0
"""A video stream whose frames encode in less than this (CPU time, a moving average) is encoded on the event loop, in
its source's step, instead of in a thread. The thread costs two passes of the loop per frame (the hand-over
and the result's return), and on a busy loop each pass is tens of ms, at a varying delay: in a mixed room on a
full machine (160x90) native video left 4-10 ms late against its capture times (send jitter p50; browsers
about 1 ms), and Chromium's video jitter buffer aimed 20-70 ms for its arrivals (browsers' video: 12-25 ms).
Encoded on the loop it left within 1 ms. Larger pictures stay in the thread: their milliseconds on the loop
would delay every other stream's packets (``benchmarks/media_costs.py``: 640x360 VP8 about 3.6 ms)."""
_COST_WEIGHT = 0.1
# Encoded frames depend on each other: a consumer that lost one shows artefacts until the next key frame, so
# queues are deeper than for raw frames and a drop asks for a key frame.
PACKET_QUEUE = 30


def _vp8_context(width: int, height: int, bitrate: int) -> Any:
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.bit_rate = bitrate
    ctx.gop_size = 3000  # key frames only on request, as aiortc does
    ctx.qmin, ctx.qmax = 2, 56
    # Real-time CBR as aiortc configures its own VP8 encoder, with two differences measured by
    # benchmarks/media_costs.py (640x360, paced at 30 fps): no temporal denoiser (the source is synthetic and
    # noiseless; the denoiser also left stamp cells half updated) and speed -12 instead of -6. Together they
    # take an encode from 4.8 to 2.9 ms at the same bitrate, which is what lets a 2-core machine carry the
    # default meeting without the load generator becoming what is measured.
    ctx.options = {
        "deadline": "realtime", "cpu-used": "-12", "lag-in-frames": "0", "bufsize": str(bitrate),
        "minrate": str(bitrate), "maxrate": str(bitrate), "undershoot-pct": "100", "overshoot-pct": "15",
        "noise-sensitivity": "0", "static-thresh": "1", "partitions": "0",
    }
    ctx.thread_count = 1  # one thread per stream: many streams share few cores
    return ctx


def _h264_context(width: int, height: int, bitrate: int, fps: float) -> Any:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.bit_rate = bitrate
    ctx.framerate = Fraction(round(fps), 1)
    ctx.time_base = Fraction(1, round(fps))
    ctx.profile = "Baseline"  # what every WebRTC endpoint decodes (packetization-mode 1, constrained baseline)
    ctx.options = {"level": "31", "tune": "zerolatency", "preset": "veryfast"}
    ctx.thread_count = 1
    return ctx


class _SharedEncoder(Producer[Any]):
    """Pulls frames from one source track, encodes each once, pushes the packet to every consumer."""

    kind = "video"

    def __init__(self, source: VideoSource | AudioSource, mime_type: str) -> None:
        install_keyframe_forwarding()
        install_packetized_senders()
        self.source = source
        self.packetizer = Packetizer(mime_type)
        self.fanout: FanOut[PacketizedFrame] = FanOut(self.kind, maxsize=PACKET_QUEUE, copy=None)
        self.encoded = 0
        """Frames encoded so far (one per source frame, whatever the number of consumers)."""
        self.keyframes = 0
        """Key frames produced so far (video)."""
        self._ctx: Any = None
        self._want_keyframe = True
        self._task: asyncio.Task[None] | None = None
        self.task_name = f"{self.kind}-encoder-{source.stream_id}"
        self._lost_at_last_check = 0
        self.encode_ms: float | None = None
        """A moving average of the CPU time one frame's encoding took (on the loop or in a thread): what it
        would cost the loop, whether or not the machine let the thread run at once."""
        self._source_track: FanOutTrack[Any] | None = None

    def track(self) -> FanOutTrack[Any]:
        """A new track of packetized frames for one sender (video: it starts with a key frame)."""
        track = super().track()
        track.packetized = True  # type: ignore[attr-defined]
        track.request_keyframe = self.request_keyframe  # type: ignore[attr-defined]
        self.request_keyframe()
        return track

    def request_keyframe(self) -> None:
        """Make the next encoded frame a key frame (PLI/FIR from any receiver, a new consumer)."""
        self._want_keyframe = True

    def _encode(self, frame: Any, keyframe: bool) -> av.Packet | None:
        raise NotImplementedError

    def _level(self, frame: Any) -> int | None:
        """The frame's RFC 6465 audio level (audio), sent in the ssrc-audio-level header extension."""
        return None

    def _next_keyframe(self) -> bool:
        if self.fanout.dropped != self._lost_at_last_check:
            # A consumer lost packets: its decoder needs a fresh start.
            self._lost_at_last_check = self.fanout.dropped
            self._want_keyframe = True
        keyframe, self._want_keyframe = self._want_keyframe, False
        return keyframe

    def _due(self, frame: Any) -> float | None:
        """When the frame's packets should leave (``time.monotonic``), if it was made ahead of its time."""
        return None

    def _push(self, frame: Any, packet: av.Packet | None, keyframe: bool) -> None:
        if packet is not None:
            self.encoded += 1
            self.keyframes += keyframe
            self.fanout.push(self.packetizer.pack(packet, keyframe, self._level(frame), self._due(frame)))

    def _encode_now(self, frame: Any) -> None:
        """Encode ``frame`` and send its packets on the caller's stack (the source's ``deliver``)."""
        try:
            keyframe = self._next_keyframe()
            packet, seconds = self._timed_encode(frame, keyframe)
            self._cost(seconds)
            self._push(frame, packet, keyframe)
        except Exception:
            log.exception("shared %s encoder of stream %d failed on a frame", self.kind, self.source.stream_id)

    def _timed_encode(self, frame: Any, keyframe: bool) -> tuple[av.Packet | None, float]:
        # CPU time of the calling thread (the loop's or the executor's): in a thread, the loop's passes before
        # the result is back are not the encoder's cost.
        started = time.thread_time()
        packet = self._encode(frame, keyframe)
        return packet, time.thread_time() - started

    def _cost(self, seconds: float) -> None:
        """Note what a frame's encoding took; a video encoder moves between the loop and a thread on it."""
        self.encode_ms = seconds * 1000 if self.encode_ms is None else (
            (1 - _COST_WEIGHT) * self.encode_ms + _COST_WEIGHT * seconds * 1000)
        if self.kind != "video" or self._source_track is None:
            return
        if self.encode_ms < INLINE_ENCODE_MS:
            self._source_track.deliver = self._encode_now
        elif self.encode_ms > 2 * INLINE_ENCODE_MS:
            self._source_track.deliver = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        source_track = self.source.track()
        if self.kind == "audio":
            # Audio is encoded and sent in the source's own step, the moment its frame is due: an Opus frame
            # takes well under a millisecond, and a queue between the two would cost a pass of the event loop
            # per frame, on a busy loop tens of ms that the packet then leaves late. Chromium's NetEq takes
            # such lateness for network jitter and grows its buffer, and with it, for lip sync, the sender's
            # video. Frames reach ``deliver``; recv() only returns when the source ends.
            source_track.deliver = self._encode_now
            if isinstance(self.source, AudioSource) and send_clock() is not None:
                self.source.lead_s = SEND_LEAD_S
        self._source_track = source_track
        try:
            while True:
                try:
                    frame = await source_track.recv()
                except MediaStreamError:
                    return
                keyframe = self._next_keyframe()
                # In a thread: libvpx and libx264 release the GIL, and the loop must keep serving RTP. A small
                # picture is encoded on the loop instead (``_cost``), in the source's own step.
                packet, seconds = await loop.run_in_executor(None, self._timed_encode, frame, keyframe)
                self._cost(seconds)
                self._push(frame, packet, keyframe)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared %s encoder of stream %d failed", self.kind, self.source.stream_id)
        finally:
            source_track.stop()
            if self._task is asyncio.current_task():
                self.fanout.close()


class SharedVideoEncoder(_SharedEncoder):
    """Encodes a :class:`VideoSource` once (VP8 or H.264); every :meth:`track` gets the same packets."""

    kind = "video"
    vp8_qmax = 56
    """VP8's highest quantizer (aiortc's setting; simulcast layers use 63 to keep to their rates)."""

    def __init__(self, source: VideoSource, codec: str = "VP8", bitrate_bps: int = 500_000,
                 pacing: bool = True) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
        if not 30_000 <= bitrate_bps <= 20_000_000:
            raise ValueError(f"bitrate must be between 30 kbit/s and 20 Mbit/s, got {bitrate_bps} bit/s")
        super().__init__(source, f"video/{codec}")
        self.video_source = source
        self.codec = codec
        self.bitrate_bps = bitrate_bps
        self.pacing = pacing
        """Whether senders pace the packets (``harness.media.pacer``) as browsers do, or send each frame at once."""
        self._x264_pts = 0  # libx264's own frame count (see _encode)

    def track(self) -> FanOutTrack[Any]:
        """A new track of packetized frames for one sender (it starts with a key frame); paced unless told not."""
        track = super().track()
        track.pacing_bps = pacing_rate_bps(self.bitrate_bps) if self.pacing else None  # type: ignore[attr-defined]
        return track

    def _encode(self, frame: av.VideoFrame, keyframe: bool) -> av.Packet | None:
        if self._ctx is None:
            w, h = frame.width, frame.height
            self._ctx = (_vp8_context(w, h, self.bitrate_bps) if self.codec == "VP8"
                         else _h264_context(w, h, self.bitrate_bps, self.video_source.fps))
            if self.codec == "VP8":
                self._ctx.qmax = self.vp8_qmax
        pts = frame.pts
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        if self.codec == "H264":
            # libx264 wants timestamps in its own time base, strictly increasing: a frame count (the source's
            # pts are capture instants, two of which may round to one frame); the RTP timestamp is ``pts``.
            frame.pts = self._x264_pts
            self._x264_pts += 1
            frame.time_base = self._ctx.time_base
        data = b"".join(bytes(p) for p in self._ctx.encode(frame))
        if not data:
            return None
        packet = av.Packet(data)
        packet.pts = pts
        packet.time_base = VIDEO_TIME_BASE
        return packet


OPUS_RATE = 48000


class SharedAudioEncoder(_SharedEncoder):
    """Encodes an :class:`AudioSource` once as Opus (48 kHz stereo, 20 ms, as aiortc's own encoder)."""

    kind = "audio"

    def __init__(self, source: AudioSource, bitrate_bps: int = 96_000) -> None:
        super().__init__(source, "audio/opus")
        self.bitrate_bps = bitrate_bps
        self._resampler = av.AudioResampler(format="s16", layout="stereo", rate=OPUS_RATE,
                                            frame_size=int(OPUS_RATE * AUDIO_PTIME))
        self._next_pts: int | None = None

    def _due(self, frame: av.AudioFrame) -> float | None:
        # Made ahead of its time (``AudioSource.lead_s``): it leaves at its first sample's time.
        source = self.source
        if not isinstance(source, AudioSource) or not source.lead_s or source.origin is None:
            return None
        origin = source.origin
        due_wall = (origin + int(frame.pts or 0)) / (frame.sample_rate or OPUS_RATE)
        return time.monotonic() + (due_wall - time.time())

    def _level(self, frame: av.AudioFrame) -> int | None:
        # What aiortc's own sender computes per frame (rtp.compute_audio_level_dbov), with NumPy: SFUs read it
        # to tell who is speaking (Janus's talking events, LiveKit's active speakers).
        return audio_level_dbov(frame.to_ndarray().reshape(-1)) if frame.format.name == "s16" else None

    def _encode(self, frame: av.AudioFrame, keyframe: bool) -> av.Packet | None:
        if self._ctx is None:
            ctx = av.CodecContext.create("libopus", "w")
            ctx.bit_rate = self.bitrate_bps
            ctx.format, ctx.layout, ctx.sample_rate = "s16", "stereo", OPUS_RATE
            ctx.time_base = Fraction(1, OPUS_RATE)
            ctx.options = {"application": "voip"}
            self._ctx = ctx
        # RTP time follows the source's sample clock, so the receiver's timeline matches the sender's. Frames
        # the source skipped (a late generator) or a full queue dropped are a jump in it, as in a real
        # microphone's: counting on from the last frame instead made the RTP clock fall behind the wall clock
        # by 20 ms per missing frame, and a receiver that adapts its playout (Chromium's NetEq) took that
        # drift for growing network delay: its buffer grew to most of a second, and with it, to keep lip
        # sync, the sender's video (mixed rooms on a loaded machine, tests/test_encoder_audio_clock.py).
        source_pts = int(frame.pts or 0) * OPUS_RATE // (frame.sample_rate or OPUS_RATE)
        if self._next_pts is None or source_pts - self._next_pts >= int(OPUS_RATE * AUDIO_PTIME):
            self._next_pts = source_pts
        data = b""
        for chunk in self._resampler.resample(frame):
            data += b"".join(bytes(p) for p in self._ctx.encode(chunk))
        if not data:
            return None
        packet = av.Packet(data)
        packet.pts = self._next_pts
        packet.time_base = Fraction(1, OPUS_RATE)
        self._next_pts += int(OPUS_RATE * AUDIO_PTIME)
        return packet


_installed = False


def install_keyframe_forwarding() -> None:
    """Wrap aiortc's PLI/FIR handling so that it also reaches a shared encoder (idempotent)."""
    global _installed
    if _installed:
        return
    original = RTCRtpSender._send_keyframe

    def send_keyframe(self: RTCRtpSender) -> None:
        original(self)
        request = getattr(self.track, "request_keyframe", None)
        if request is not None:
            request()

    RTCRtpSender._send_keyframe = send_keyframe  # type: ignore[method-assign]
    _installed = True
