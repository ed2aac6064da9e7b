"""One source, many consumers: a frame pushed once reaches every subscribed track.

aiortc pulls frames: each RTCRtpSender awaits ``track.recv()`` in its own loop, so one track shared by several
senders would hand each frame to whichever sender asked first. A :class:`FanOut` instead gives every consumer
its own :class:`FanOutTrack` with its own bounded queue.

Every consumer also gets its own frame object. aiortc's encoders mutate the frame they encode (PyAV rebases
``pts``/``time_base`` to the codec's time base; the H.264 and VP8 encoders set ``pict_type`` to force key
frames) and they run in executor threads, so one shared object would let one sender's key-frame request leak
into, or be cleared by, another's. The first consumer receives the pushed frame itself and the others a copy
(about 25 µs for a 640x360 yuv420p frame), so one consumer costs nothing extra.

A consumer that does not keep up loses its oldest queued frame, never the newest: latency stays bounded and
the loss shows up in :attr:`FanOutTrack.dropped` (and :attr:`FanOut.dropped`) so the harness can report that
the load generator, not the system under test, lost the frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame
from av.frame import Frame
from av.packet import Packet

from .packetize import PacketizedFrame

__all__ = ["FanOut", "FanOutTrack", "Producer", "clone_frame"]

T = TypeVar("T", bound=Frame | Packet | PacketizedFrame)
"""What one fan-out carries: raw frames, encoded packets, or frames already cut into RTP payloads."""
F = TypeVar("F", VideoFrame, AudioFrame)


def clone_frame(frame: F) -> F:
    """A deep copy of a video or audio frame: same format, pixels/samples, pts and time base."""
    copy: VideoFrame | AudioFrame
    if isinstance(frame, VideoFrame):
        copy = VideoFrame(frame.width, frame.height, frame.format.name)
    else:
        copy = AudioFrame(format=frame.format.name, layout=frame.layout.name, samples=frame.samples)
        copy.sample_rate = frame.sample_rate
    planes = list(zip(frame.planes, copy.planes, strict=True))
    if all(src.buffer_size == dst.buffer_size for src, dst in planes):
        # Same format, size and line sizes: a plain buffer copy keeps the layout.
        for src, dst in planes:
            dst.update(src)  # type: ignore[arg-type]  # any buffer works; the stub says bytes
    elif isinstance(frame, VideoFrame):
        # A frame from elsewhere (a decoder) may pad its lines differently; go through numpy.
        copy = VideoFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name)
    else:
        copy = AudioFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name, layout=frame.layout.name)
        copy.sample_rate = frame.sample_rate
    copy.pts = frame.pts
    if frame.time_base is not None:  # PyAV refuses None, and a new frame has none already
        copy.time_base = frame.time_base
    return copy


class FanOutTrack(MediaStreamTrack, Generic[T]):
    """A track fed by a :class:`FanOut`: ``recv()`` returns every item pushed after it subscribed.

    Stopping the track unsubscribes it. Once the track has ended (stopped, or its fan-out closed),
    ``recv()`` raises :class:`aiortc.mediastreams.MediaStreamError`, which is how aiortc's sender loop expects
    a source to end.
    """

    def __init__(self, fanout: FanOut[T], kind: str, maxsize: int) -> None:
        super().__init__()
        self.kind = kind
        self.dropped = 0
        """Items this consumer lost because its queue was full when a newer one arrived."""
        self.deliver: Callable[[T], None] | None = None
        """When set, items are handed to this callable as they are pushed instead of being queued for
        ``recv()`` (a consumer that does its work synchronously, e.g. ``harness.media.packetize``'s senders:
        no task switch per item). It must not raise."""
        self._fanout: FanOut[T] = fanout
        # None is the end-of-stream marker, queued so that a recv() already waiting wakes up.
        self._queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize)

    async def recv(self) -> T:  # type: ignore[override]  # aiortc's senders also take packetized frames
        """The next frame, waiting for the source if none is queued."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self._put(None)  # leave the marker for any other waiter
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        """End the track and unsubscribe it from its fan-out."""
        if self.readyState == "live":
            self._fanout._remove(self)
            self._put(None)
        super().stop()

    def _put(self, frame: T | None) -> None:
        if frame is not None and self.deliver is not None:
            self.deliver(frame)
            return
        if self._queue.full():
            old = self._queue.get_nowait()
            if old is None:  # ended: nothing more is delivered, and the marker must stay
                self._queue.put_nowait(None)
                return
            if frame is not None:
                self.dropped += 1
                self._fanout.dropped += 1
        self._queue.put_nowait(frame)


class FanOut(Generic[T]):
    """Distributes frames from one source to any number of :class:`FanOutTrack` consumers.

    ``kind`` is ``"audio"`` or ``"video"`` (the tracks' kind); ``maxsize`` bounds each consumer's queue, in
    items. ``copy`` makes the item for each consumer after the first: :func:`clone_frame` by default, because
    encoders mutate frames; ``None`` hands every consumer the same object, for items nobody mutates (encoded
    ``av.Packet`` s, which aiortc's ``Encoder.pack`` only reads). Not thread-safe: push, subscribe and stop
    from the event loop's thread.
    """

    def __init__(
        self, kind: str, maxsize: int = 3, copy: Callable[[Any], Any] | None = clone_frame
    ) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, got {maxsize}")
        self.kind = kind
        self.maxsize = maxsize
        self.copy = copy
        self.pushed = 0
        """Frames pushed so far."""
        self.dropped = 0
        """Frames dropped so far, summed over all consumers (a consumer counts each frame it lost)."""
        self._tracks: list[FanOutTrack[T]] = []

    @property
    def consumers(self) -> int:
        """How many tracks are subscribed."""
        return len(self._tracks)

    def track(self) -> FanOutTrack[T]:
        """A new live track that receives every frame pushed from now on."""
        track = FanOutTrack(self, self.kind, self.maxsize)
        self._tracks.append(track)
        return track

    def push(self, item: T) -> None:
        """Hand ``item`` to every consumer; the caller must not touch it afterwards."""
        self.pushed += 1
        for i, track in enumerate(list(self._tracks)):
            track._put(item if i == 0 or self.copy is None else self.copy(item))

    def close(self) -> None:
        """End every current track (their ``recv()`` raises); tracks made later work as usual."""
        for track in list(self._tracks):
            track.stop()

    def _remove(self, track: FanOutTrack[T]) -> None:
        try:
            self._tracks.remove(track)
        except ValueError:
            pass


class Producer(Generic[T]):
    """Feeds a :class:`FanOut` from a background task of the event loop: a paced source, a shared encoder.

    Subclasses set ``self.fanout`` and implement :meth:`_run`; the life cycle (lazy start on the first
    track, idempotent start and stop, ending every track on stop) is the same for all of them.
    """

    fanout: FanOut[Any]
    task_name: str = "producer"
    _task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the background task is producing."""
        return self._task is not None and not self._task.done()

    def track(self) -> FanOutTrack[Any]:
        """A new track receiving what this produces; starts the task if an event loop is running."""
        track = self.fanout.track()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return track
        self._ensure_started()
        return track

    async def start(self) -> None:
        """Start producing (no-op when already running)."""
        self._ensure_started()

    async def stop(self) -> None:
        """Stop producing and end every current track (no-op when stopped)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self.fanout.close()

    def _ensure_started(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.task_name)

    async def _run(self) -> None:
        raise NotImplementedError
