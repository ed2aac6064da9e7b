"""The sending clock: a real child process sends packets at their time on a real loopback socket.

Also what feeds it: the synthetic microphone hands frames over ahead of their time, the shared audio encoder
stamps them with their departure, and a small picture is encoded on the loop rather than in a thread.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
from typing import Any

from harness.media import send_clock as clocks
from harness.media.audio import AudioSource
from harness.media.encoder import INLINE_ENCODE_MS, SharedAudioEncoder, SharedVideoEncoder
from harness.media.video import VideoSource

TIMEOUT_S = 5.0


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(TIMEOUT_S)
    return sock


async def _sender() -> Any:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    return transport


def test_packets_leave_at_their_time_in_order_and_their_departures_are_reported() -> None:
    receiver = _receiver()

    async def main() -> tuple[list[tuple[bytes, float]], dict[bytes, float], list[float]]:
        clock = clocks.send_clock()
        assert clock is not None and clock.alive
        assert clocks.send_clock() is clock  # one per event loop
        transport = await _sender()
        start = time.monotonic()
        dues = {b"third": start + 0.30, b"first": start + 0.10, b"second": start + 0.20}
        reported: dict[bytes, float] = {}
        for data, due in dues.items():  # handed over out of order
            assert clock.send_at(due, transport, receiver.getsockname(), data,
                                 lambda t, d=data: reported.__setitem__(d, t))
        got = []
        loop = asyncio.get_running_loop()
        for _ in dues:
            data = await loop.run_in_executor(None, receiver.recv, 100)
            got.append((data, time.monotonic()))
        deadline = time.monotonic() + TIMEOUT_S
        while len(reported) < len(dues) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        transport.close()
        return got, reported, [dues[d] for d, _ in got]

    got, reported, due_of_got = asyncio.run(main())
    assert [d for d, _ in got] == [b"first", b"second", b"third"]
    for (data, arrived), due in zip(got, due_of_got, strict=True):
        assert arrived >= due - 0.001, f"{data!r} arrived {1000 * (due - arrived):.1f} ms early"
        assert due - 0.001 <= reported[data] <= arrived + 0.001


def test_without_its_child_the_clock_refuses_and_a_new_loop_gets_a_new_one() -> None:
    receiver = _receiver()

    async def main() -> tuple[bool, bool]:
        clock = clocks.send_clock()
        assert clock is not None
        transport = await _sender()
        clock._process.kill()
        clock._process.wait(timeout=TIMEOUT_S)
        deadline = time.monotonic() + TIMEOUT_S
        while clock.alive and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the loop reads the control socket's end
        taken = clock.send_at(time.monotonic(), transport, receiver.getsockname(), b"x")
        transport.close()
        return clock.alive, taken

    alive, taken = asyncio.run(main())
    assert not alive and not taken

    async def again() -> bool:
        clock = clocks.send_clock()
        return clock is not None and clock.alive

    assert asyncio.run(again())


def test_the_child_lets_go_of_a_socket_its_transport_closed() -> None:
    async def main() -> tuple[int, int]:
        clock = clocks.send_clock()
        assert clock is not None
        # Counted only once the child runs its loop (a packet of another socket has left): while Python
        # starts up, its own descriptors come and go.
        warm, left_at = await _sender(), asyncio.get_running_loop().create_future()
        assert clock.send_at(time.monotonic(), warm, ("127.0.0.1", 9), b"warm", left_at.set_result)
        await asyncio.wait_for(left_at, TIMEOUT_S)
        fds = f"/proc/{clock._process.pid}/fd"
        before = len(os.listdir(fds))
        transport = await _sender()
        assert clock.send_at(time.monotonic() + 10, transport, ("127.0.0.1", 9), b"never")
        deadline = time.monotonic() + TIMEOUT_S
        while len(os.listdir(fds)) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        held = len(os.listdir(fds))
        transport.close()
        await asyncio.sleep(0)
        del transport
        gc.collect()
        while len(os.listdir(fds)) > before and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        warm.close()
        return held - before, len(os.listdir(fds)) - before

    held, left = asyncio.run(main())
    assert held == 1 and left == 0


def test_the_microphone_hands_frames_over_ahead_and_the_encoder_says_when_they_leave() -> None:
    async def main() -> list[tuple[float, float]]:
        source = AudioSource(7)
        encoder = SharedAudioEncoder(source)
        track = encoder.track()
        await encoder.start()
        seen = []
        for _ in range(30):
            frame = await asyncio.wait_for(track.recv(), TIMEOUT_S)
            seen.append((time.monotonic(), frame.due))
        assert source.lead_s == clocks.SEND_LEAD_S  # the clock runs here, so frames are made ahead
        await encoder.stop()
        return seen

    # The first frames start now and the microphone then gets ahead (a lead's worth at once); then frames come
    # in bursts, each handed over between a lead and one and a half before its time.
    for handed, due in asyncio.run(main())[-10:]:
        assert due is not None
        assert clocks.SEND_LEAD_S - 0.03 < due - handed <= 1.5 * clocks.SEND_LEAD_S + 0.001


def test_a_small_picture_is_encoded_on_the_loop_and_a_large_one_in_a_thread() -> None:
    async def run(width: int, height: int) -> tuple[float | None, bool]:
        encoder = SharedVideoEncoder(VideoSource(3, width=width, height=height, fps=30), bitrate_bps=300_000)
        track = encoder.track()
        await encoder.start()
        for _ in range(30):
            await asyncio.wait_for(track.recv(), TIMEOUT_S)
        inline = encoder._source_track is not None and encoder._source_track.deliver is not None
        await encoder.stop()
        return encoder.encode_ms, inline

    small_ms, small_inline = asyncio.run(run(160, 90))
    large_ms, large_inline = asyncio.run(run(1280, 720))
    assert small_ms is not None and large_ms is not None
    assert small_inline == (small_ms < INLINE_ENCODE_MS) and small_inline, f"160x90: {small_ms:.2f} ms a frame"
    assert not large_inline, f"1280x720 encoded on the loop at {large_ms:.2f} ms a frame"
