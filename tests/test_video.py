"""Tests for harness.media.video and harness.media.fanout: the picture, pacing, fan-out, and real codecs."""

from __future__ import annotations

import asyncio
import fractions
import statistics
import time
from collections.abc import Callable

import av
import numpy as np
import pytest
from aiortc.codecs import CODECS, depayload, get_decoder, get_encoder, h264, vpx
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from harness.media.fanout import FanOut, clone_frame
from harness.media.stamp import Stamp, band_height, write_stamp
from harness.media.video import Background, VideoSource, read_frame

T0 = 1_790_000_000.0


def test_render_is_deterministic_and_moves() -> None:
    a, b = VideoSource(5), VideoSource(5)
    assert a.render(0).shape == (540, 640)
    assert np.array_equal(a.render(17), b.render(17))
    assert np.array_equal(a.render(17), a.render(17))
    assert not np.array_equal(a.render(17)[100:], a.render(18)[100:])  # moving below the band
    assert not np.array_equal(a.render(17), VideoSource(6).render(17))  # streams differ
    assert Background.shared(640, 360) is Background.shared(640, 360)
    # The texture is busy: plenty of detail, the full luma range used.
    y = a.render(3)[band_height(640) : 360].astype(np.int16)
    assert np.abs(np.diff(y, axis=1)).mean() > 4 and y.std() > 25


def test_frame_is_render_plus_stamp() -> None:
    src = VideoSource(3)
    frame = src.make_frame(77, t=T0)
    assert (frame.width, frame.height, frame.format.name) == (640, 360, "yuv420p")
    assert frame.pts == 77 * 3000 and frame.time_base == fractions.Fraction(1, 90000)
    stamp = read_frame(frame)
    assert stamp == Stamp.at(3, 77, T0)
    reference = src.render(77)
    write_stamp(reference[:360], stamp)
    assert np.array_equal(reference, frame.to_ndarray())
    # Chroma under the band is neutral (U and V are 180 x 320 each, packed after the luma rows).
    chroma = reference[360:].reshape(2, 180, 320)
    assert (chroma[:, :40] == 128).all() and not (chroma[:, 40:] == 128).all()


def test_frame_numbers_wrap_at_32_bits() -> None:
    frame = VideoSource(1).make_frame((1 << 32) + 5, t=T0)
    stamp = read_frame(frame)
    assert stamp is not None and stamp.frame_no == 5


def test_read_frame_handles_padding_and_other_formats() -> None:
    s = Stamp.at(2, 9, T0)
    y = np.random.default_rng(0).integers(0, 256, (360, 600), dtype=np.uint8)
    write_stamp(y, s)
    yuv = np.vstack([y, np.full((180, 600), 128, dtype=np.uint8)])
    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    assert frame.planes[0].line_size > 600  # padded lines: the reader must honour line_size
    assert read_frame(frame) == s
    assert read_frame(frame.reformat(format="rgb24")) == s  # converted, the slow way
    assert read_frame(frame.reformat(format="nv12")) == s
    assert read_frame(av.VideoFrame(16, 16, "yuv420p")) is None


def test_generation_and_read_cost() -> None:
    src = VideoSource(1)
    src.make_frame(0)
    make, read = [], []
    for n in range(60):
        start = time.perf_counter()
        frame = src.make_frame(n)
        make.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert read_frame(frame) is not None
        read.append(time.perf_counter() - start)
    # About 0.32 ms and 0.06 ms on the 2-core development VM.
    assert statistics.median(make) < 2e-3, f"make_frame took {statistics.median(make) * 1e3:.2f} ms"
    assert statistics.median(read) < 1e-3, f"read_frame took {statistics.median(read) * 1e3:.2f} ms"


def test_validation() -> None:
    with pytest.raises(ValueError):
        VideoSource(70000)
    with pytest.raises(ValueError):
        VideoSource(1, fps=0)
    with pytest.raises(ValueError):
        VideoSource(1, width=641)
    with pytest.raises(ValueError):
        VideoSource(1, width=640, height=80)  # nothing left under the band


# --- real codecs ------------------------------------------------------------------------------------------


def codec_round_trip(mime: str, bitrate: int, frames: int = 90, stream_id: int = 4) -> tuple[int, int, int]:
    """Encode stamped frames with aiortc's encoder, decode as its receiver would: (exact, none, wrong)."""
    codec = next(c for c in CODECS["video"] if c.mimeType == mime)
    encoder = get_encoder(codec)
    encoder.target_bitrate = bitrate  # type: ignore[attr-defined]
    assert encoder.target_bitrate == bitrate  # type: ignore[attr-defined]
    decoder = get_decoder(codec)
    src = VideoSource(stream_id)
    sent: dict[int, Stamp | None] = {}
    exact = none = wrong = 0
    for n in range(frames):
        frame = src.make_frame(n, t=T0 + n / 30)
        sent[n] = read_frame(frame)
        payloads, timestamp = encoder.encode(frame)
        # What RTCRtpReceiver does: depayload every RTP payload, join those of one timestamp, decode.
        data = b"".join(depayload(codec, payload) for payload in payloads)
        for out in decoder.decode(JitterFrame(data=data, timestamp=timestamp)):
            assert isinstance(out, av.VideoFrame) and out.pts is not None
            # aiortc's VP8 timestamps may be one 90 kHz tick short (PyAV rebases pts to µs, aiortc truncates).
            got, expected = read_frame(out), sent[round(out.pts * 30 / 90000)]
            if got is None:
                none += 1
            elif got == expected:
                exact += 1
            else:
                wrong += 1
    return exact, none, wrong


def test_survives_vp8_at_150_kbps(monkeypatch: pytest.MonkeyPatch) -> None:
    # aiortc clamps VP8 to >= 250 kbit/s (what REMB can ask for); lower the floor to test the harder case.
    monkeypatch.setattr(vpx, "MIN_BITRATE", 100_000)
    exact, none, wrong = codec_round_trip("video/VP8", 150_000)
    assert wrong == 0
    assert exact >= 0.95 * 90, (exact, none)


def test_survives_h264_at_300_kbps(monkeypatch: pytest.MonkeyPatch) -> None:
    # aiortc clamps H.264 to >= 500 kbit/s; lower the floor to test below it.
    monkeypatch.setattr(h264, "MIN_BITRATE", 100_000)
    exact, none, wrong = codec_round_trip("video/H264", 300_000)
    assert wrong == 0
    assert exact >= 0.95 * 90, (exact, none)


# --- fan-out ----------------------------------------------------------------------------------------------


def numbered(n: int) -> av.VideoFrame:
    frame = av.VideoFrame(64, 48, "yuv420p")
    frame.planes[0].update(bytes([n % 256]) * frame.planes[0].buffer_size)
    frame.pts = n
    frame.time_base = fractions.Fraction(1, 90000)
    return frame


def first_byte(frame: av.VideoFrame | av.AudioFrame) -> int:
    return bytes(frame.planes[0])[0]


def run(coro_fn: Callable[[], object]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


def test_fanout_every_consumer_gets_every_frame() -> None:
    async def main() -> None:
        fan: FanOut[av.VideoFrame] = FanOut("video", maxsize=8)
        a, b = fan.track(), fan.track()
        assert (a.kind, fan.consumers) == ("video", 2)
        for n in range(5):
            fan.push(numbered(n))
        got_a = [await a.recv() for _ in range(5)]
        got_b = [await b.recv() for _ in range(5)]
        assert [first_byte(f) for f in got_a] == [first_byte(f) for f in got_b] == list(range(5))
        assert [f.pts for f in got_b] == list(range(5))
        assert all(fa is not fb for fa, fb in zip(got_a, got_b, strict=True))  # each encoder mutates its own
        assert fan.dropped == 0 and fan.pushed == 5
        late = fan.track()  # a late subscriber sees only what comes after it
        fan.push(numbered(9))
        assert first_byte(await late.recv()) == 9

    run(main)


def test_fanout_without_copy_shares_items() -> None:
    async def main() -> None:
        fan: FanOut[av.Packet] = FanOut("video", copy=None)  # e.g. encoded packets, which nobody mutates
        a, b = fan.track(), fan.track()
        packet = av.Packet(b"abc")
        fan.push(packet)
        assert await a.recv() is packet and await b.recv() is packet

    run(main)


def test_fanout_slow_consumer_drops_oldest() -> None:
    async def main() -> None:
        fan: FanOut[av.VideoFrame] = FanOut("video", maxsize=3)
        fast, slow = fan.track(), fan.track()
        for n in range(10):
            fan.push(numbered(n))
            assert first_byte(await fast.recv()) == n
        assert [first_byte(await slow.recv()) for _ in range(3)] == [7, 8, 9]
        assert (slow.dropped, fast.dropped, fan.dropped) == (7, 0, 7)

    run(main)


def test_fanout_stop_and_close() -> None:
    async def main() -> None:
        fan: FanOut[av.VideoFrame] = FanOut("audio")
        a, b = fan.track(), fan.track()
        waiting = asyncio.ensure_future(a.recv())
        await asyncio.sleep(0)
        a.stop()
        with pytest.raises(MediaStreamError):
            await waiting  # a recv() in progress wakes up and ends
        assert fan.consumers == 1
        with pytest.raises(MediaStreamError):
            await a.recv()
        fan.close()
        assert b.readyState == "ended" and fan.consumers == 0
        with pytest.raises(MediaStreamError):
            await b.recv()
        fan.push(numbered(1))  # nobody listening: fine
        c = fan.track()
        fan.push(numbered(2))
        assert first_byte(await c.recv()) == 2

    run(main)


def test_clone_frame_is_deep() -> None:
    frame = numbered(3)
    copy = clone_frame(frame)
    assert copy is not frame and first_byte(copy) == 3 and copy.pts == 3 and copy.time_base == frame.time_base
    frame.planes[0].update(bytes(frame.planes[0].buffer_size))
    assert first_byte(copy) == 3
    audio = av.AudioFrame(format="s16", layout="stereo", samples=960)
    audio.planes[0].update(bytes([5]) * audio.planes[0].buffer_size)
    audio.sample_rate = 48000
    copied = clone_frame(audio)
    assert isinstance(copied, av.AudioFrame)
    assert (copied.samples, copied.sample_rate, copied.layout.name) == (960, 48000, "stereo")
    assert first_byte(copied) == 5


# --- the paced source -------------------------------------------------------------------------------------


def test_source_paces_and_two_tracks_see_the_same_frames() -> None:
    async def main() -> None:
        src = VideoSource(8, width=320, height=180, fps=50)
        a, b = src.track(), src.track()  # the first track starts the generator
        assert src.running
        received: list[tuple[float, Stamp | None, int | None]] = []
        for _ in range(12):
            frame = await a.recv()
            received.append((time.time(), read_frame(frame), frame.pts))
            other = await b.recv()
            assert read_frame(other) == received[-1][1]
        await src.stop()
        await src.stop()  # idempotent
        assert not src.running
        with pytest.raises(MediaStreamError):
            await a.recv()
        stamps = [s for _, s, _ in received]
        assert all(s is not None and s.stream_id == 8 for s in stamps)
        numbers = [s.frame_no for s in stamps if s is not None]
        assert numbers == list(range(numbers[0], numbers[0] + 12))
        # pts are the capture instants: each frame's due time (n * 1800 at 50 fps) plus how late it was made.
        pts = [p for _, _, p in received]
        assert all(p is not None and n * 1800 <= p < (n + 1) * 1800 for p, n in zip(pts, numbers, strict=True))
        for t_recv, s, _ in received:
            assert s is not None
            assert 0 <= t_recv - s.capture_time(t_recv) < 0.05  # stamped at production, handed over at once
        span = received[-1][0] - received[0][0]
        assert 11 / 50 * 0.8 < span < 11 / 50 * 1.5
        # Restarting resumes the numbering.
        c = src.track()
        stamp = read_frame(await c.recv())
        assert stamp is not None and stamp.frame_no > numbers[-1]
        await src.stop()

    run(main)


def test_late_frames_carry_their_capture_time_as_rtp_time() -> None:
    """A frame that a busy event loop made late has that lateness in its pts, as a camera's capture time.

    On the schedule instead, a receiver took every late frame for network delay (Chromium's interarrival
    jitter on native senders' video in a loaded mixed room: 69 ms, against 13 ms on browsers')."""
    async def main() -> None:
        src = VideoSource(10, width=320, height=180, fps=5)  # a 200 ms period
        track = src.track()
        frames = [await track.recv()]
        time.sleep(0.3)  # block the loop: the next frame is made ~100 ms after its due time (not skipped)
        frames.append(await track.recv())
        frames.append(await track.recv())  # and the one after, on time again
        await src.stop()
        stamps = [read_frame(f) for f in frames]
        assert all(s is not None for s in stamps)
        assert [s.frame_no for s in stamps if s is not None] == [stamps[0].frame_no + i for i in range(3)]  # type: ignore[union-attr]
        now = time.time()
        captured = [s.capture_time(now) for s in stamps if s is not None]
        pts = [f.pts for f in frames]
        assert all(p is not None for p in pts)
        # RTP time between frames equals capture time between them (the stamp's clock has 1 ms steps).
        for i in (1, 2):
            rtp_s = (pts[i] - pts[i - 1]) / 90000  # type: ignore[operator]
            assert abs(rtp_s - (captured[i] - captured[i - 1])) < 0.006, (i, rtp_s, captured)
        assert (pts[1] - pts[0]) / 90000 > 0.25  # type: ignore[operator]  # the late frame, not the 0.2 s schedule

    run(main)


def test_source_skips_frames_when_late() -> None:
    async def main() -> None:
        src = VideoSource(9, width=320, height=180, fps=50)
        track = src.track()
        first = read_frame(await track.recv())
        time.sleep(0.2)  # block the event loop: ten frame periods
        numbers = []
        for _ in range(4):
            stamp = read_frame(await track.recv())
            assert stamp is not None
            numbers.append(stamp.frame_no)
        await src.stop()
        assert first is not None
        assert src.skipped >= 5
        assert numbers[-1] - first.frame_no >= 10  # the schedule kept counting
        # No burst: after the stall, frames are at most the queue's worth ahead of the skip.
        assert src.fanout.dropped <= 3

    run(main)


# --- through a real peer connection ---------------------------------------------------------------------


@pytest.mark.integration
def test_through_aiortc_peer_connection() -> None:
    """Both sources through two aiortc peer connections on this host: stamps and pulses come out intact."""
    from aiortc import RTCPeerConnection
    from aiortc.mediastreams import MediaStreamTrack

    from harness.media.audio import AudioSource, PulseDetector
    from harness.rtc.ice import pin_host_addresses

    # Loopback only: never let ICE use the machine's real interfaces.
    pin_host_addresses(["127.0.0.1"])

    async def main() -> None:
        sender, receiver = RTCPeerConnection(), RTCPeerConnection()
        video, audio = VideoSource(11), AudioSource(11, pulse_period_s=0.5)
        sender.addTrack(video.track())
        sender.addTrack(audio.track())
        remote: dict[str, MediaStreamTrack] = {}
        both = asyncio.Event()

        @receiver.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            remote[track.kind] = track
            if len(remote) == 2:
                both.set()

        try:
            await sender.setLocalDescription(await sender.createOffer())
            await receiver.setRemoteDescription(sender.localDescription)
            await receiver.setLocalDescription(await receiver.createAnswer())
            await sender.setRemoteDescription(receiver.localDescription)
            await asyncio.wait_for(both.wait(), 10)
            stamps: list[Stamp | None] = []
            latencies: list[float] = []
            pulses: list[float] = []
            detector = PulseDetector(pulse_period_s=0.5, min_quiet_s=0.2)
            end = time.time() + 3

            async def watch_video() -> None:
                while time.time() < end:
                    frame = await remote["video"].recv()
                    now = time.time()
                    assert isinstance(frame, av.VideoFrame)
                    stamp = read_frame(frame)
                    stamps.append(stamp)
                    if stamp is not None:
                        latencies.append((now - stamp.capture_time(now)) * 1000)

            async def watch_audio() -> None:
                while time.time() < end:
                    frame = await remote["audio"].recv()
                    assert isinstance(frame, av.AudioFrame)
                    pulses.extend(detector.feed(frame, time.time()))

            await asyncio.wait_for(asyncio.gather(watch_video(), watch_audio()), 15)
        finally:
            await video.stop()
            await audio.stop()
            await sender.close()
            await receiver.close()
        readable = [s for s in stamps if s is not None]
        # aiortc's own VP8 encoder runs libvpx's temporal denoiser, which now and then leaves a whole stamp
        # macroblock from the previous frame: every cell reads confidently and the CRC refuses the mix. Here
        # 0-6 % of frames (9 runs, with and without two busy cores); the harness's encoder has no denoiser.
        assert len(readable) >= 0.85 * len(stamps) and len(readable) > 30
        assert {s.stream_id for s in readable} == {11}
        numbers = [s.frame_no for s in readable]
        assert numbers == sorted(numbers)
        assert all(0 < latency < 500 for latency in latencies)
        # Loopback floor: about 45 ms for video; audio ~90 ms (aiortc's jitter buffer prefetches 4 x 20 ms).
        assert len(pulses) >= 3 and all(0 < p < 300 for p in pulses)

    try:
        asyncio.run(main())
    finally:
        pin_host_addresses(None)
